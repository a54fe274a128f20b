#pragma once
// YAML (yaml-cpp 0.7) to the syntax tree of ast.hpp, so that one Decoder reads both
// languages with the same keys. A mapping is a block, a sequence an array. A quoted
// scalar is a string; an unquoted one is typed by its looks as Djinn's lexer would
// (1000 integer, 1m duration, true boolean, ~ or null null, anything else a string).
// `log: {info: /dev/stdout}` is the YAML shape of `log info "/dev/stdout"`; the decoder also
// reads `log: {level: info, file: /dev/stdout}` (config.hpp).
//
// Thread safety: one call per thread. Failure: yaml-cpp exceptions are caught here, once,
// and become ConfigErrors with the place yaml-cpp reports; the tree returned is then empty.
#include <string>
#include <vector>

#include "config/ast.hpp"
#include "config/config.hpp"

namespace djinn::config {

class YamlAdapter {
  public:
    explicit YamlAdapter(std::vector<ConfigError>* errors) : errors_(errors) {}

    ast::Node parse(const std::string& text, const std::string& name);

  private:
    std::vector<ConfigError>* errors_;
};

}  // namespace djinn::config
