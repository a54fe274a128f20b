#pragma once
// Parser of Djinn's config language into the syntax tree of ast.hpp, after the grammar of
// andrewpillar/config v1.0.0 (spec.md there):
//
//   file      = { statement ( newline | ";" ) } .
//   statement = "include" ( string | array ) | parameter .
//   parameter = name [ label ] operand .           (a bare `name true` is a boolean)
//   operand   = literal | block | array | "true" | "false" .
//   block     = "{" { parameter ( newline | ";" ) } "}" .
//   array     = "[" [ operand { "," operand } [ "," ] ] "]" .
//
// Differences, on purpose: statements at the top level must be separated too (Djinn lets
// `a 1 b 2` through there but not in blocks); `include` paths are relative to the
// including file (Djinn opens them relative to the working directory) and may use ${VAR};
// an include cycle or a file included twice is an error naming the chain.
//
// Thread safety: one Parser per thread. Failure: every syntax error is appended to the
// error list with file:line:column and the dotted key it is in; parsing goes on after
// each one (a statement with an error is left out of the tree), so one pass reports all.
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/ast.hpp"
#include "config/config.hpp"

namespace djinn::config {

class Parser {
  public:
    explicit Parser(std::vector<ConfigError>* errors);

    // The top level of `text`, with included files' statements spliced in where the
    // `include` stands. `name` is used in positions and to resolve relative includes.
    ast::Node parse(std::string_view text, const std::string& name);

    // Every file read, the top one first: error lists are ordered by it.
    const std::vector<std::string>& files() const { return files_; }

  private:
    friend class FileParser;

    std::vector<ConfigError>* errors_;
    std::vector<std::string> files_;
    std::vector<std::string> include_stack_;                     // canonical names, outermost first
    std::vector<std::pair<std::string, std::string>> included_;  // canonical name, includer
};

}  // namespace djinn::config
