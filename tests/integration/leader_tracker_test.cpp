// LeadershipTracker: pure logic (it lives in the integration binary only because the leader
// tests are grouped under Leader*; it needs no services).
#include <gtest/gtest.h>

#include <chrono>

#include "leader/leadership_tracker.hpp"

namespace djinn::leader {
namespace {

using namespace std::chrono_literals;
using Change = LeadershipTracker::Change;

const TimePoint t0{std::chrono::seconds(1'700'000'000)};

TEST(LeaderTracker, StartsAsStandbyAtTheEpoch) {
    LeadershipTracker t;
    EXPECT_FALSE(t.leading());
    EXPECT_EQ(t.transitions(), 0U);
    EXPECT_EQ(t.since(), TimePoint{});
    EXPECT_EQ(t.observe(false, t0), Change::none);
    EXPECT_EQ(t.transitions(), 0U);
}

TEST(LeaderTracker, ReportsEachChangeOnce) {
    LeadershipTracker t;
    EXPECT_EQ(t.observe(true, t0), Change::gained);
    EXPECT_EQ(t.observe(true, t0 + 1s), Change::none);
    EXPECT_TRUE(t.leading());
    EXPECT_EQ(t.since(), t0);
    EXPECT_EQ(t.observe(false, t0 + 5s), Change::lost);
    EXPECT_EQ(t.observe(false, t0 + 6s), Change::none);
    EXPECT_FALSE(t.leading());
    EXPECT_EQ(t.since(), t0 + 5s);
    EXPECT_EQ(t.observe(true, t0 + 9s), Change::gained);
    EXPECT_EQ(t.transitions(), 3U);
}

}  // namespace
}  // namespace djinn::leader
