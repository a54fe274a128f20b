#pragma once
// Tokens of Djinn's config language (andrewpillar/config v1.0.0, contract section 4).
// A newline ends a statement only after a name, a literal, `}` or `]`, as in that scanner;
// elsewhere it is white space. Thread safety: one Lexer per thread. Failure: errors go to
// the callback and the offending character is skipped; next() always makes progress.
#include <functional>
#include <string>
#include <string_view>

#include "config/ast.hpp"

namespace djinn::config {

enum class Token { eof, name, literal, semi, comma, lbrace, rbrace, lbrack, rbrack };

const char* token_name(Token token);

struct Lexeme {
    Token token = Token::eof;
    ast::Kind kind = ast::Kind::null;  // Token::literal only
    std::string text;  // name; literal text (a string without its quotes, escapes kept)
    ast::Position pos;
    bool bad = false;  // an error was reported for it: its statement is dropped
};

class Lexer {
  public:
    using ErrorHandler = std::function<void(const ast::Position&, const std::string&)>;

    // `text` must outlive the Lexer.
    Lexer(std::string_view text, std::string file, ErrorHandler on_error);

    Lexeme next();

  private:
    int peek(std::size_t ahead = 0) const;
    void advance();
    ast::Position here() const;
    void error(const ast::Position& pos, const std::string& message);

    void name(Lexeme& out);
    void number(Lexeme& out);
    void string(Lexeme& out);

    std::string_view text_;
    std::string file_;
    ErrorHandler on_error_;
    std::size_t offset_ = 0;
    int line_ = 1;
    int column_ = 1;
    bool newline_ends_statement_ = false;
};

}  // namespace djinn::config
