#include <gtest/gtest.h>

#include "config/literals.hpp"

namespace djinn::config {
namespace {

using namespace std::chrono_literals;

std::chrono::nanoseconds duration(const char* text) {
    std::string error;
    auto value = parse_duration(text, &error);
    EXPECT_TRUE(value.has_value()) << text << ": " << error;
    return value.value_or(std::chrono::nanoseconds{-1});
}

std::string duration_error(const char* text) {
    std::string error;
    EXPECT_FALSE(parse_duration(text, &error).has_value()) << text;
    return error;
}

TEST(ConfigLiteralsTest, DurationsInGoSyntax) {
    EXPECT_EQ(duration("1m"), 1min);
    EXPECT_EQ(duration("1h30m"), 90min);
    EXPECT_EQ(duration("500ms"), 500ms);
    EXPECT_EQ(duration("1h30m45s"), 1h + 30min + 45s);
    EXPECT_EQ(duration("1.5h"), 90min);
    EXPECT_EQ(duration("2s500ms"), 2500ms);
    EXPECT_EQ(duration("10us"), 10us);
    EXPECT_EQ(duration("10\xc2\xb5s"), 10us);
    EXPECT_EQ(duration("7ns"), 7ns);
    EXPECT_EQ(duration("-1m"), -1min);
    EXPECT_EQ(duration("0"), 0s);
    EXPECT_EQ(duration(".5s"), 500ms);
}

TEST(ConfigLiteralsTest, BadDurations) {
    EXPECT_EQ(duration_error("1h30"),
              "missing unit in duration \"1h30\" (use ns, us, ms, s, m or h)");
    EXPECT_EQ(duration_error("1d"), "unknown unit in duration \"1d\" (use ns, us, ms, s, m or h)");
    EXPECT_EQ(duration_error(""), "invalid duration \"\"");
    EXPECT_EQ(duration_error("m"), "invalid duration \"m\"");
    EXPECT_EQ(duration_error("99999999999h"), "duration \"99999999999h\" is out of range");
}

TEST(ConfigLiteralsTest, SizesArePowersOf1024) {
    std::string error;
    EXPECT_EQ(parse_size("1B", &error), 1);
    EXPECT_EQ(parse_size("1KB", &error), 1024);
    EXPECT_EQ(parse_size("3MB", &error), 3 * 1024 * 1024);
    EXPECT_EQ(parse_size("4GB", &error), 4LL << 30);
    EXPECT_EQ(parse_size("5TB", &error), 5LL << 40);
    EXPECT_FALSE(parse_size("1.5KB", &error));
    EXPECT_FALSE(parse_size("1PB", &error));
}

TEST(ConfigLiteralsTest, NumberShapes) {
    EXPECT_EQ(classify_number("12"), NumberShape::integer);
    EXPECT_EQ(classify_number("-12"), NumberShape::integer);
    EXPECT_EQ(classify_number("1.5"), NumberShape::floating);
    EXPECT_EQ(classify_number("1h30m"), NumberShape::duration);
    EXPECT_EQ(classify_number("500ms"), NumberShape::duration);
    EXPECT_EQ(classify_number("1KB"), NumberShape::size);
    EXPECT_EQ(classify_number("1x"), NumberShape::invalid);
    EXPECT_EQ(classify_number("-"), NumberShape::invalid);
    EXPECT_EQ(classify_number("1.2.3"), NumberShape::invalid);
}

TEST(ConfigLiteralsTest, IntegersOutOfRangeAreErrors) {
    std::string error;
    EXPECT_EQ(parse_integer("9223372036854775807", &error), INT64_MAX);
    EXPECT_FALSE(parse_integer("9223372036854775808", &error));
    EXPECT_EQ(error, "integer 9223372036854775808 is out of range");
}

TEST(ConfigLiteralsTest, FormatDurationReadsBack) {
    EXPECT_EQ(format_duration(0ms), "0s");
    EXPECT_EQ(format_duration(1min), "1m");
    EXPECT_EQ(format_duration(90min), "1h30m");
    EXPECT_EQ(format_duration(500ms), "500ms");
    EXPECT_EQ(format_duration(61500ms), "1m1s500ms");
    for (auto d : {1ms, 999ms, 1000ms, 3600000ms, 3661001ms}) {
        std::string error;
        EXPECT_EQ(parse_duration(format_duration(d), &error), std::chrono::nanoseconds(d));
    }
}

}  // namespace
}  // namespace djinn::config
