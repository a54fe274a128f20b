#pragma once
// Reads a configuration file (the -config file or an include) whole, refusing what is not one:
// a FIFO, a device (/dev/zero would never end), a directory, or anything over kMaxConfigBytes.
// The file is opened non-blocking and checked with fstat on the opened descriptor, so nothing can
// swap it between the check and the read, and opening a FIFO without a writer does not hang.
//
// Thread safety: a pure function of the file system.
#include <cstddef>
#include <string>
#include <variant>

namespace djinn::config {

inline constexpr std::size_t kMaxConfigBytes = 4 * 1024 * 1024;

struct SourceFileError {
    // Why the file cannot be read, without the file's name: "No such file or directory",
    // "a FIFO, not a regular file". Callers say "cannot read" and name the file their own way.
    std::string reason;
};

std::variant<std::string, SourceFileError> read_source_file(const std::string& path);

}  // namespace djinn::config
