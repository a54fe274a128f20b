#include <gtest/gtest.h>

#include "config/parser.hpp"

namespace djinn::config {
namespace {

struct Parsed {
    ast::Node root;
    std::vector<std::string> errors;  // ConfigError::to_string()
};

Parsed parse(std::string_view text) {
    std::vector<ConfigError> errors;
    Parser parser(&errors);
    Parsed out{parser.parse(text, "p.conf"), {}};
    for (const auto& e : errors) {
        out.errors.push_back(e.to_string());
    }
    return out;
}

std::string at(const ast::Position& pos) {
    return std::to_string(pos.line) + ":" + std::to_string(pos.column);
}

TEST(ConfigParserTest, StatementsLabelsBlocksAndArrays) {
    auto parsed = parse(
        "pidfile \"/run/x.pid\"\n"
        "log info \"/dev/stdout\"\n"
        "database {\n"
        "    addr \"localhost:5432\"; name \"djinn\"\n"
        "    tls { ca \"/ca\" }\n"
        "}\n"
        "drivers [\"docker\", \"qemu-x86_64\",]\n"
        "nested [[1, 2], {a 1}]\n"
        "flag true\n"
        "other false; last 1m\n");
    ASSERT_TRUE(parsed.errors.empty()) << parsed.errors[0];
    const auto& params = parsed.root.params;
    ASSERT_EQ(params.size(), 8U);

    EXPECT_EQ(params[0].name.text, "pidfile");
    EXPECT_EQ(at(params[0].name.pos), "1:1");
    EXPECT_EQ(params[0].value.kind, ast::Kind::string);
    EXPECT_EQ(params[0].value.text, "/run/x.pid");
    EXPECT_EQ(at(params[0].value.pos), "1:9");

    EXPECT_TRUE(params[1].has_label);
    EXPECT_EQ(params[1].label.text, "info");
    EXPECT_EQ(at(params[1].label.pos), "2:5");
    EXPECT_EQ(at(params[1].value.pos), "2:10");

    const auto& db = params[2].value;
    EXPECT_EQ(db.kind, ast::Kind::block);
    EXPECT_EQ(at(db.pos), "3:10");
    ASSERT_EQ(db.params.size(), 3U);
    EXPECT_EQ(db.params[1].name.text, "name");
    EXPECT_EQ(at(db.params[1].name.pos), "4:28");
    EXPECT_EQ(db.params[2].value.params.at(0).value.text, "/ca");

    const auto& drivers = params[3].value;
    ASSERT_EQ(drivers.kind, ast::Kind::array);
    ASSERT_EQ(drivers.items.size(), 2U);
    EXPECT_EQ(drivers.items[1].text, "qemu-x86_64");
    EXPECT_EQ(at(drivers.items[1].pos), "7:20");

    const auto& nested = params[4].value;
    ASSERT_EQ(nested.items.size(), 2U);
    EXPECT_EQ(nested.items[0].kind, ast::Kind::array);
    EXPECT_EQ(nested.items[1].kind, ast::Kind::block);

    EXPECT_FALSE(params[5].has_label);
    EXPECT_EQ(params[5].value.kind, ast::Kind::boolean);
    EXPECT_EQ(params[5].value.text, "true");
    EXPECT_EQ(params[6].value.text, "false");
    EXPECT_EQ(params[7].value.kind, ast::Kind::duration);
}

TEST(ConfigParserTest, ArrayElementBeforeNewlineNeedsTrailingComma) {
    auto parsed = parse("drivers [\n  \"docker\",\n  \"qemu-x86_64\"\n]\n");
    ASSERT_EQ(parsed.errors.size(), 1U);
    EXPECT_EQ(parsed.errors[0],
              "p.conf:3:16: drivers: expected ',' or ']': an element followed by a newline "
              "needs a comma");
}

TEST(ConfigParserTest, MultiLineArraysWithTrailingCommasAndEmptyArrays) {
    auto parsed = parse("a [\n  1,\n  2,\n]\nb []\nc [1, 2]\n");
    ASSERT_TRUE(parsed.errors.empty());
    EXPECT_EQ(parsed.root.params[0].value.items.size(), 2U);
    EXPECT_TRUE(parsed.root.params[1].value.items.empty());
}

TEST(ConfigParserTest, StatementsNeedSeparators) {
    auto parsed = parse("a 1 b 2\n");
    ASSERT_EQ(parsed.errors.size(), 1U);
    EXPECT_EQ(parsed.errors[0],
              "p.conf:1:5: expected newline or ';' after the value, got name 'b'");
}

TEST(ConfigParserTest, ErrorsAreCollectedAndParsingGoesOn) {
    auto parsed = parse(
        "pidfile /run/x.pid\n"  // unquoted string
        "database {\n"
        "    addr \"x\" name \"y\"\n"  // missing separator inside a block
        "    port 5432\n"
        "}\n"
        "interval\n"  // no value
        "redis { addr \"r:1\" }\n"
        "drivers [\"a\" \"b\"]\n");
    EXPECT_EQ(parsed.errors,
              (std::vector<std::string>{
                  "p.conf:1:9: pidfile: unexpected character '/' (strings need double quotes)",
                  "p.conf:3:14: database: expected newline or ';' or '}' after the value, got "
                  "name 'name'",
                  "p.conf:6:9: interval: expected a value, got newline or ';'",
                  "p.conf:8:14: drivers: expected ',' or ']', got string \"b\"",
              }));
    // The statements without errors are kept.
    std::vector<std::string> names;
    for (const auto& p : parsed.root.params) {
        names.push_back(p.name.text);
    }
    EXPECT_EQ(names, (std::vector<std::string>{"database", "redis", "drivers"}));
    EXPECT_EQ(parsed.root.params[0].value.params.size(), 2U);  // addr and port
}

TEST(ConfigParserTest, UnclosedBlockAndArray) {
    EXPECT_EQ(parse("database {\n addr \"x\"\n").errors,
              (std::vector<std::string>{
                  "p.conf:3:1: database: expected '}' to close the block opened at 1:10"}));
    EXPECT_EQ(parse("drivers [\"a\",").errors,
              (std::vector<std::string>{
                  "p.conf:1:14: drivers: expected ']' to close the array opened at 1:9"}));
}

TEST(ConfigParserTest, NestingIsBounded) {
    const std::string deep = "a " + std::string(100, '[') + std::string(100, ']') + "\nb 1\n";
    auto parsed = parse(deep);
    std::string key = "a";
    for (int i = 0; i < 64; ++i) {
        key += "[0]";
    }
    EXPECT_EQ(parsed.errors, (std::vector<std::string>{"p.conf:1:67: " + key +
                                                       ": nested more than 64 levels deep"}));
    ASSERT_EQ(parsed.root.params.size(), 2U);
    EXPECT_EQ(parsed.root.params[1].name.text, "b");
}

TEST(ConfigParserTest, EmptyAndCommentOnlyFiles) {
    EXPECT_TRUE(parse("").root.params.empty());
    EXPECT_TRUE(parse("# nothing\n\n;;\n").root.params.empty());
}

}  // namespace
}  // namespace djinn::config
