// DueHint: when an idle pass's hint lets the next pass skip the scan of cron, and when it must
// not (store/due_hint.hpp).
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

#include "store/due_hint.hpp"

namespace djinn::store {
namespace {

constexpr std::int64_t kSecond = 1000000;
constexpr std::int64_t kT0 = 1'780'000'000 * kSecond;  // the scan
constexpr const char* kCounters = "1700000000000000 0 16400 200 31 0";

CronStats stats(std::int64_t now, std::string counters = kCounters, bool counting = true) {
    return CronStats{counting, std::move(counters), now};
}

DueHint hint(std::optional<std::int64_t> earliest) {
    auto h = DueHint::after_scan(stats(kT0), earliest);
    EXPECT_TRUE(h.has_value());
    return *h;
}

TEST(DueHint, NothingWrittenAndBeforeTheEarliestNextRunNothingIsDue) {
    const DueHint h = hint(kT0 + 3600 * kSecond);
    EXPECT_TRUE(h.nothing_due(stats(kT0)));
    EXPECT_TRUE(h.nothing_due(stats(kT0 + 60 * kSecond)));
}

TEST(DueHint, TheEarliestNextRunReachedMeansScanning) {
    const DueHint h = hint(kT0 + 90 * kSecond);
    EXPECT_TRUE(h.nothing_due(stats(kT0 + 90 * kSecond - 1)));
    EXPECT_FALSE(h.nothing_due(stats(kT0 + 90 * kSecond)));
    EXPECT_FALSE(h.nothing_due(stats(kT0 + 91 * kSecond)));
}

TEST(DueHint, UnchangedAndPastTheEarliestNextRunACronIsSurelyDue) {
    const DueHint h = hint(kT0 + 90 * kSecond);
    EXPECT_FALSE(h.surely_due(stats(kT0 + 90 * kSecond - 1)));
    EXPECT_TRUE(h.surely_due(stats(kT0 + 90 * kSecond)));
    // Not when anything changed, the hint is too old, or there was no cron at all.
    EXPECT_FALSE(h.surely_due(stats(kT0 + 91 * kSecond, "1700000000000000 0 16400 201 31 0")));
    EXPECT_FALSE(h.surely_due(stats(kT0 + 91 * kSecond, kCounters, false)));
    const auto max_age =
        std::chrono::duration_cast<std::chrono::microseconds>(DueHint::kMaxAge).count();
    EXPECT_FALSE(h.surely_due(stats(kT0 + max_age)));
    EXPECT_FALSE(hint(std::nullopt).surely_due(stats(kT0 + kSecond)));
}

TEST(DueHint, AnyChangeOfTheCountersMeansScanning) {
    const DueHint h = hint(kT0 + 3600 * kSecond);
    EXPECT_FALSE(h.nothing_due(stats(kT0 + kSecond, "1700000000000000 0 16400 200 32 0")));
    EXPECT_FALSE(h.nothing_due(stats(kT0 + kSecond, "1700000000000000 0 16400 201 31 0")));
    EXPECT_FALSE(h.nothing_due(stats(kT0 + kSecond, "1700000000000000 0 16400 200 31 1")));
    // A restart (or a promoted standby), a statistics reset, another table: all differ.
    EXPECT_FALSE(h.nothing_due(stats(kT0 + kSecond, "1700000099000000 0 16400 200 31 0")));
    EXPECT_FALSE(h.nothing_due(stats(kT0 + kSecond, "1700000000000000 5 16400 200 31 0")));
    EXPECT_FALSE(h.nothing_due(stats(kT0 + kSecond, "1700000000000000 0 16401 200 31 0")));
}

TEST(DueHint, NotCountingMeansScanningAndNoHint) {
    const DueHint h = hint(kT0 + 3600 * kSecond);
    EXPECT_FALSE(h.nothing_due(stats(kT0 + kSecond, kCounters, false)));
    EXPECT_FALSE(DueHint::after_scan(stats(kT0, kCounters, false), kT0 + kSecond).has_value());
    EXPECT_FALSE(DueHint::after_scan(stats(kT0, ""), kT0 + kSecond).has_value());
}

TEST(DueHint, AHintOlderThanItsMaximumAgeMeansScanning) {
    const DueHint h = hint(std::nullopt);  // no cron at all, or none with a finite next_run
    const auto max_age =
        std::chrono::duration_cast<std::chrono::microseconds>(DueHint::kMaxAge).count();
    EXPECT_TRUE(h.nothing_due(stats(kT0 + max_age - 1)));
    EXPECT_FALSE(h.nothing_due(stats(kT0 + max_age)));
}

TEST(DueHint, AClockBeforeTheScanMeansScanning) {
    const DueHint h = hint(kT0 + 3600 * kSecond);
    EXPECT_FALSE(h.nothing_due(stats(kT0 - 1)));
}

TEST(DueHint, RoundTripsThroughItsText) {
    for (const auto& earliest :
         {std::optional<std::int64_t>(kT0 + 5), std::optional<std::int64_t>()}) {
        const DueHint h = hint(earliest);
        const auto back = DueHint::parse(h.str());
        ASSERT_TRUE(back.has_value()) << h.str();
        EXPECT_EQ(back->str(), h.str());
        EXPECT_EQ(back->earliest_us(), earliest);
        EXPECT_EQ(back->scanned_us(), kT0);
        EXPECT_TRUE(back->nothing_due(stats(kT0 + 1)));
    }
}

TEST(DueHint, AnythingElseDoesNotParse) {
    for (const char* text : {"", "v1", "v1|", "v1|c|1", "v2|c|1|2", "v1||1|2", "v1|c|x|2",
                             "v1|c|1|", "v1|c|1|2|3", "v1|c|-|2x", "v1|c| 1|2"}) {
        EXPECT_FALSE(DueHint::parse(text).has_value()) << text;
    }
    EXPECT_TRUE(DueHint::parse("v1|c|-|2").has_value());
}

}  // namespace
}  // namespace djinn::store
