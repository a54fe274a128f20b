// PgArray renders every value a batch sends to PostgreSQL: the text-array literal rules
// (array_in): elements quoted, '"' and '\' escaped with '\', everything else verbatim.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "store/pg_array.hpp"

namespace djinn::store {
namespace {

TEST(PgArray, EmptyArray) {
    PgArray a;
    EXPECT_EQ(a.size(), 0u);
    EXPECT_EQ(a.str(), "{}");
}

TEST(PgArray, IntegersBooleansAndNulls) {
    PgArray a;
    a.add(std::int64_t{1}).add(std::int64_t{-9223372036854775807 - 1}).add(std::nullopt);
    a.add(std::optional<std::int64_t>{42}).add(true).add(false).add_null();
    EXPECT_EQ(a.size(), 7u);
    EXPECT_EQ(a.str(), "{1,-9223372036854775808,NULL,42,t,f,NULL}");
}

TEST(PgArray, TextIsQuotedAndOnlyQuoteAndBackslashAreEscaped) {
    PgArray a;
    a.add_text("plain").add_text("").add_text("NULL").add_text("say \"hi\"");
    a.add_text("C:\\dir\\").add_text("{a,b}").add_text("line\nnext\ttab").add_text("ünï ☃");
    EXPECT_EQ(a.size(), 8u);
    EXPECT_EQ(a.str(),
              "{\"plain\",\"\",\"NULL\",\"say \\\"hi\\\"\",\"C:\\\\dir\\\\\",\"{a,b}\","
              "\"line\nnext\ttab\",\"ünï ☃\"}");
}

TEST(PgArray, EscapesAtEveryPositionOfALongValue) {
    // The fast path appends runs between special characters: specials first, last, adjacent.
    std::string v = "\"\\" + std::string(1000, 'x') + "\\\"\"" + std::string(3, 'y') + "\\";
    std::string expected =
        "\\\"\\\\" + std::string(1000, 'x') + "\\\\\\\"\\\"" + std::string(3, 'y') + "\\\\";
    PgArray a;
    a.add_text(v);
    EXPECT_EQ(a.str(), "{\"" + expected + "\"}");
}

TEST(PgArray, TakeGivesTheLiteralStrGives) {
    PgArray a;
    a.add(std::int64_t{7}).add_text("a\"b").add_null();
    const std::string copy = a.str();
    EXPECT_EQ(copy, a.str());  // str() leaves the array as it was
    EXPECT_EQ(std::move(a).take(), copy);
    EXPECT_EQ(a.size(), 3u);  // NOLINT(bugprone-use-after-move): size() survives take()
    EXPECT_EQ(PgArray().take(), "{}");
}

}  // namespace
}  // namespace djinn::store
