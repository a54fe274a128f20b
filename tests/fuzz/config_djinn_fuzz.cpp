// libFuzzer target: Djinn's config language (load_djinn: lexer, parser, literals, ${VAR},
// decoder). The file name points into a directory that does not exist, so relative includes
// fail cleanly instead of reading the fuzzer's working directory.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.hpp"
#include "fuzz_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    djinn::fuzz::check_result(djinn::config::load_djinn(text, "/nonexistent-djinn-fuzz/fuzz.conf"));
    return 0;
}
