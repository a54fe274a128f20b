// libFuzzer target: the YAML config path (load_yaml: yaml-cpp, the adapter to the syntax tree,
// the shared decoder).
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.hpp"
#include "fuzz_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    djinn::fuzz::check_result(djinn::config::load_yaml(text, "/nonexistent-djinn-fuzz/fuzz.yaml"));
    return 0;
}
