#include <gtest/gtest.h>

#include <vector>

#include "config/lexer.hpp"

namespace djinn::config {
namespace {

struct Lexed {
    std::vector<Lexeme> tokens;
    std::vector<std::string> errors;  // "line:column: message"
};

Lexed lex(std::string_view text) {
    Lexed out;
    Lexer lexer(text, "t.conf", [&](const ast::Position& pos, const std::string& message) {
        out.errors.push_back(std::to_string(pos.line) + ":" + std::to_string(pos.column) + ": " +
                             message);
    });
    for (;;) {
        Lexeme lexeme = lexer.next();
        out.tokens.push_back(lexeme);
        if (lexeme.token == Token::eof) {
            return out;
        }
    }
}

std::vector<Token> tokens(std::string_view text) {
    std::vector<Token> out;
    for (const auto& lexeme : lex(text).tokens) {
        out.push_back(lexeme.token);
    }
    return out;
}

TEST(ConfigLexerTest, NewlineEndsAStatementOnlyAfterAValue) {
    using T = Token;
    // After `[` and `,` newlines are white space; after a literal, `}` or `]` they end it.
    EXPECT_EQ(
        tokens("drivers [\n\"a\",\n]\n"),
        (std::vector<T>{T::name, T::lbrack, T::literal, T::comma, T::rbrack, T::semi, T::eof}));
    EXPECT_EQ(tokens("a [\n\"x\"\n]"),
              (std::vector<T>{T::name, T::lbrack, T::literal, T::semi, T::rbrack, T::eof}));
    EXPECT_EQ(tokens("b {\n\n  c 1\n}\n\n"),
              (std::vector<T>{T::name, T::lbrace, T::name, T::literal, T::semi, T::rbrace, T::semi,
                              T::eof}));
    EXPECT_EQ(tokens("a 1; b 2"),
              (std::vector<T>{T::name, T::literal, T::semi, T::name, T::literal, T::eof}));
}

TEST(ConfigLexerTest, LiteralKindsAndText) {
    auto lexed = lex(R"(x "s\"q" 12 -3 1.5 1h30m 500ms 1KB true)");
    ASSERT_TRUE(lexed.errors.empty());
    const auto& t = lexed.tokens;
    ASSERT_EQ(t.size(), 10U);
    EXPECT_EQ(t[1].kind, ast::Kind::string);
    EXPECT_EQ(t[1].text, R"(s\"q)");  // escapes are applied when the string is read
    EXPECT_EQ(t[2].kind, ast::Kind::integer);
    EXPECT_EQ(t[3].kind, ast::Kind::integer);
    EXPECT_EQ(t[3].text, "-3");
    EXPECT_EQ(t[4].kind, ast::Kind::floating);
    EXPECT_EQ(t[5].kind, ast::Kind::duration);
    EXPECT_EQ(t[5].text, "1h30m");
    EXPECT_EQ(t[6].kind, ast::Kind::duration);
    EXPECT_EQ(t[7].kind, ast::Kind::size);
    EXPECT_EQ(t[8].token, Token::name);  // true/false are names until the parser sees them
}

TEST(ConfigLexerTest, CommentsRunToTheEndOfTheLineAndKeepTheNewline) {
    using T = Token;
    EXPECT_EQ(tokens("# top\na \"x\" # note\nb 1 # at the end without newline"),
              (std::vector<T>{T::name, T::literal, T::semi, T::name, T::literal, T::eof}));
}

TEST(ConfigLexerTest, PositionsAreOneBasedAndCountCharacters) {
    auto lexed = lex("a 1\n\tblock 标签 \"é\" x");
    const auto& t = lexed.tokens;
    EXPECT_EQ(t[0].pos.line, 1);
    EXPECT_EQ(t[0].pos.column, 1);
    EXPECT_EQ(t[1].pos.column, 3);
    EXPECT_EQ(t[3].pos.line, 2);
    EXPECT_EQ(t[3].pos.column, 2);  // after the tab
    EXPECT_EQ(t[4].text, "标签");
    EXPECT_EQ(t[4].pos.column, 8);
    EXPECT_EQ(t[5].pos.column, 11);  // two characters, six bytes, then a space
    EXPECT_EQ(t[6].pos.column, 15);
}

TEST(ConfigLexerTest, Errors) {
    auto lexed = lex("a 1x\nb \"open\nc @ 2\nd \"never closed");
    EXPECT_EQ(lexed.errors, (std::vector<std::string>{
                                "1:3: invalid number \"1x\"",
                                "2:3: newline in string",
                                "3:3: unexpected character '@'",
                                "4:3: string not terminated",
                            }));
}

}  // namespace
}  // namespace djinn::config
