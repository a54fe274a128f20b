#include "config/source_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace djinn::config {
namespace {

const char* kind_of(mode_t mode) {
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "a special file";
}

// Closes the descriptor on every path.
struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0)
            ::close(fd);
    }
};

}  // namespace

std::variant<std::string, SourceFileError> read_source_file(const std::string& path) {
    auto failure = []() { return SourceFileError{std::strerror(errno)}; };
    Fd file{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)};
    if (file.fd < 0)
        return failure();
    struct stat st {};
    if (::fstat(file.fd, &st) != 0)
        return failure();
    if (!S_ISREG(st.st_mode))
        return SourceFileError{std::string(kind_of(st.st_mode)) + ", not a regular file"};
    if (static_cast<std::size_t>(st.st_size) > kMaxConfigBytes) {
        return SourceFileError{std::to_string(st.st_size) +
                               " bytes; a configuration file is at most " +
                               std::to_string(kMaxConfigBytes) + " bytes"};
    }
    std::string text;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(file.fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return failure();
        }
        if (n == 0)
            break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > kMaxConfigBytes) {  // it grew while being read
            return SourceFileError{"more than " + std::to_string(kMaxConfigBytes) +
                                   " bytes; a configuration file is at most that"};
        }
    }
    return text;
}

}  // namespace djinn::config
