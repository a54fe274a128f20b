#include "config/lexer.hpp"

#include <cstdio>
#include <utility>

#include "config/literals.hpp"

namespace djinn::config {
namespace {

bool is_letter(int c) {
    // Bytes of multi-byte UTF-8 sequences count as letters: Djinn allows Unicode letters in
    // names (labels such as `block 标签`); telling letters from other symbols would need
    // Unicode tables, and no scheduler key uses them anyway.
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

bool is_digit(int c) {
    return c >= '0' && c <= '9';
}

bool is_delimiter(int c) {
    switch (c) {
        case ' ':
        case '\t':
        case '\r':
        case '\n':
        case ';':
        case ',':
        case '{':
        case '}':
        case '[':
        case ']':
        case '"':
        case '#':
        case 0:
            return true;
        default:
            return false;
    }
}

std::string describe_char(std::string_view text, std::size_t offset) {
    auto c = static_cast<unsigned char>(text[offset]);
    if (c < 0x20 || c == 0x7f) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(c));
        return buf;
    }
    std::size_t length = 1;
    while (offset + length < text.size() &&
           (static_cast<unsigned char>(text[offset + length]) & 0xC0) == 0x80) {
        ++length;
    }
    return "'" + std::string(text.substr(offset, length)) + "'";
}

}  // namespace

const char* token_name(Token token) {
    switch (token) {
        case Token::eof:
            return "end of file";
        case Token::name:
            return "name";
        case Token::literal:
            return "value";
        case Token::semi:
            return "newline or ';'";
        case Token::comma:
            return "','";
        case Token::lbrace:
            return "'{'";
        case Token::rbrace:
            return "'}'";
        case Token::lbrack:
            return "'['";
        case Token::rbrack:
            return "']'";
    }
    return "token";
}

Lexer::Lexer(std::string_view text, std::string file, ErrorHandler on_error)
    : text_(text), file_(std::move(file)), on_error_(std::move(on_error)) {}

int Lexer::peek(std::size_t ahead) const {
    std::size_t at = offset_ + ahead;
    return at < text_.size() ? static_cast<unsigned char>(text_[at]) : -1;
}

void Lexer::advance() {
    if (offset_ >= text_.size()) {
        return;
    }
    auto c = static_cast<unsigned char>(text_[offset_++]);
    if (c == '\n') {
        ++line_;
        column_ = 1;
    } else if ((c & 0xC0) != 0x80) {
        // Continuation bytes do not start a character: columns count code points.
        ++column_;
    }
}

ast::Position Lexer::here() const {
    return ast::Position{file_, line_, column_};
}

void Lexer::error(const ast::Position& pos, const std::string& message) {
    if (on_error_) {
        on_error_(pos, message);
    }
}

Lexeme Lexer::next() {
    const bool newline_ends = std::exchange(newline_ends_statement_, false);
    Lexeme out;
    for (;;) {
        int c = peek();
        if (c == ' ' || c == '\t' || c == '\r' || (c == '\n' && !newline_ends)) {
            advance();
            continue;
        }
        if (c == '#') {
            // Unlike Djinn's scanner, the comment stops before the newline, so
            // `addr "x" # note` still ends its statement (there the next line would be
            // glued onto it).
            while (peek() != -1 && peek() != '\n') {
                advance();
            }
            continue;
        }
        if (c == 0) {
            error(here(), "invalid NUL byte");
            advance();
            continue;
        }
        out.pos = here();
        if (c == -1) {
            out.token = Token::eof;
            return out;
        }
        if (c == '\n' || c == ';') {
            advance();
            out.token = Token::semi;
            return out;
        }
        if (is_letter(c)) {
            name(out);
            return out;
        }
        if (is_digit(c) || c == '-') {
            number(out);
            return out;
        }
        switch (c) {
            case '"':
                string(out);
                return out;
            case ',':
                advance();
                out.token = Token::comma;
                return out;
            case '{':
                advance();
                out.token = Token::lbrace;
                return out;
            case '}':
                advance();
                out.token = Token::rbrace;
                newline_ends_statement_ = true;
                return out;
            case '[':
                advance();
                out.token = Token::lbrack;
                return out;
            case ']':
                advance();
                out.token = Token::rbrack;
                newline_ends_statement_ = true;
                return out;
            default:
                break;
        }
        // Most often an unquoted string (`pidfile /run/x.pid`): take the whole word as one
        // bad value so that it is reported once.
        std::string message = "unexpected character " + describe_char(text_, offset_);
        std::size_t start = offset_;
        while (peek() != -1 && !is_delimiter(peek())) {
            advance();
        }
        if (offset_ == start) {
            advance();
        }
        out.token = Token::literal;
        out.kind = ast::Kind::string;
        out.text = std::string(text_.substr(start, offset_ - start));
        out.bad = true;
        newline_ends_statement_ = true;
        if (c == '/' || c == '.' || c == ':') {
            message += " (strings need double quotes)";
        }
        error(out.pos, message);
        return out;
    }
}

void Lexer::name(Lexeme& out) {
    std::size_t start = offset_;
    while (is_letter(peek()) || is_digit(peek())) {
        advance();
    }
    out.token = Token::name;
    out.text = std::string(text_.substr(start, offset_ - start));
    newline_ends_statement_ = true;
}

void Lexer::number(Lexeme& out) {
    std::size_t start = offset_;
    advance();  // the digit or '-'
    // Take the whole run of number-ish characters so that `1x` is one bad literal rather
    // than a number followed by a name.
    while (is_digit(peek()) || is_letter(peek()) || peek() == '.') {
        advance();
    }
    out.token = Token::literal;
    out.text = std::string(text_.substr(start, offset_ - start));
    newline_ends_statement_ = true;
    switch (classify_number(out.text)) {
        case NumberShape::integer:
            out.kind = ast::Kind::integer;
            return;
        case NumberShape::floating:
            out.kind = ast::Kind::floating;
            return;
        case NumberShape::duration:
            out.kind = ast::Kind::duration;
            return;
        case NumberShape::size:
            out.kind = ast::Kind::size;
            return;
        case NumberShape::invalid:
            break;
    }
    error(out.pos, "invalid number \"" + out.text + "\"");
    // Keep a literal so that the parser does not report the same place again.
    out.kind = ast::Kind::integer;
    out.bad = true;
}

void Lexer::string(Lexeme& out) {
    advance();  // opening quote
    std::size_t start = offset_;
    out.token = Token::literal;
    out.kind = ast::Kind::string;
    newline_ends_statement_ = true;
    for (;;) {
        int c = peek();
        if (c == -1) {
            error(out.pos, "string not terminated");
            out.bad = true;
            out.text = std::string(text_.substr(start, offset_ - start));
            return;
        }
        if (c == '\n') {
            error(out.pos, "newline in string");
            out.bad = true;
            out.text = std::string(text_.substr(start, offset_ - start));
            return;
        }
        if (c == '"') {
            out.text = std::string(text_.substr(start, offset_ - start));
            advance();
            return;
        }
        if (c == '\\' && peek(1) != -1 && peek(1) != '\n') {
            advance();
        }
        advance();
    }
}

}  // namespace djinn::config
