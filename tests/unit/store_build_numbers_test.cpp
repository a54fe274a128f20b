// The rules by which build numbers read from `builds` are kept from batch to batch: the users'
// highest numbers, valid relative to a horizon below which no build can still appear.
#include <gtest/gtest.h>

#include "store/build_numbers.hpp"

namespace djinn::store {
namespace {

using Horizon = BuildNumbers::Horizon;
// A batch on session 1 that reads `user`'s highest number from scratch if not known, numbers
// `ids.size()` builds for it with those ids, and commits.
std::vector<std::int64_t> batch(BuildNumbers& n, Horizon h, std::int64_t user, std::int64_t highest,
                                const std::vector<std::int64_t>& ids) {
    n.begin(1, true, h);
    if (!n.known(user))
        n.read(user, highest);
    std::vector<std::int64_t> numbers;
    std::vector<BuildNumbers::Written> written;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        numbers.push_back(n.next(user));
        written.push_back({user, numbers.back()});
    }
    n.ids_taken(ids);
    n.committed(written);
    return numbers;
}

TEST(BuildNumbers, NumbersAreTheHighestPlusOneAndConsecutiveWithinABatch) {
    BuildNumbers n;
    n.begin(1, true, Horizon{100, false});
    n.read(7, 41);
    n.read(8, 0);  // no build yet
    EXPECT_EQ(n.next(7), 42);
    EXPECT_EQ(n.next(7), 43);
    EXPECT_EQ(n.next(8), 1);
    n.give_back(7);  // #43 was not written
    EXPECT_EQ(n.next(7), 43);
}

// What a batch split across dispatch sessions hands its parts: the number each user goes on from,
// without taking one; in a complete set a user not kept has none.
TEST(BuildNumbers, HighestIsWhereNextGoesOnFromWithoutTakingANumber) {
    BuildNumbers n;
    n.begin(1, true, Horizon{100, false});
    n.read_everyone();
    n.read(7, 41);
    EXPECT_EQ(n.highest(7), 41);
    EXPECT_EQ(n.highest(7), 41);
    EXPECT_EQ(n.highest(9), 0);  // complete: no build
    EXPECT_EQ(n.next(7), 42);
    EXPECT_EQ(n.highest(7), 42);
    // Without a usable sequence the numbers are the batch's own.
    BuildNumbers cold;
    cold.begin(1, true, Horizon{std::nullopt, false});
    cold.read(5, 3);
    EXPECT_EQ(cold.highest(5), 3);
}

TEST(BuildNumbers, KeptWhileOnlyThisSessionTakesBuildIdsAndTheHorizonFollowsItsIds) {
    BuildNumbers n;
    EXPECT_EQ(batch(n, Horizon{100, false}, 7, 41, {101, 102}),
              (std::vector<std::int64_t>{42, 43}));
    EXPECT_EQ(n.kept(), 1u);
    EXPECT_EQ(n.horizon(), 102);
    n.begin(1, true, Horizon{102, false});
    ASSERT_TRUE(n.known(7));
    EXPECT_EQ(n.read_from(), 102);  // nothing above our own builds to read
    EXPECT_EQ(n.next(7), 44);
}

TEST(BuildNumbers, BuildsOthersCommittedAboveTheHorizonAreMergedNotDropped) {
    BuildNumbers n;
    batch(n, Horizon{100, false}, 7, 41, {101});
    // The server made build #43 of user 7 (id 102) and #5 of user 9 meanwhile.
    n.begin(1, true, Horizon{103, false});
    ASSERT_EQ(n.read_from(), 101);
    n.merge(7, 43);
    n.merge(9, 5);  // not kept: its older builds are unknown
    EXPECT_TRUE(n.known(7));
    EXPECT_FALSE(n.known(9));
    EXPECT_EQ(n.next(7), 44);
    n.ids_taken({104});
    n.committed({{7, 44}});
    EXPECT_EQ(n.horizon(), 104);
}

TEST(BuildNumbers, TheHighestNumberWinsWhateverOrderTheBuildsCameIn) {
    BuildNumbers n;
    batch(n, Horizon{100, false}, 7, 41, {});
    n.begin(1, true, Horizon{102, false});
    n.merge(7, 39);  // a lower number committed late (the server's race): changes nothing
    EXPECT_EQ(n.next(7), 42);
    n.failed();
    batch(n, Horizon{100, false}, 7, 41, {});
    n.begin(1, true, Horizon{102, false});
    n.merge(7, 60);
    EXPECT_EQ(n.next(7), 61);
}

TEST(BuildNumbers, AnotherWriterAtTheCheckKeepsTheHorizonWhereItWas) {
    BuildNumbers n;
    batch(n, Horizon{100, false}, 7, 41, {101});
    ASSERT_EQ(n.horizon(), 101);
    // Builds id 102 is being inserted by the server (uncommitted); ours is 103.
    n.begin(1, true, Horizon{102, true});
    EXPECT_EQ(n.read_from(), 101);
    EXPECT_EQ(n.next(7), 43);
    n.ids_taken({103});
    n.committed({{7, 43}});
    EXPECT_EQ(n.horizon(), 101);  // 102 may still commit: read above 101 again
    n.begin(1, true, Horizon{103, false});
    EXPECT_EQ(n.read_from(), 101);
    n.merge(7, 42);  // the server's, committed now: older than ours
    n.merge(7, 43);  // ours again: merging is idempotent
    EXPECT_EQ(n.next(7), 44);
}

TEST(BuildNumbers, AnotherWriterAtTheFirstReadKeepsNothing) {
    BuildNumbers n;
    batch(n, Horizon{100, true}, 7, 41, {101});
    EXPECT_EQ(n.kept(), 0u);
    n.begin(1, true, Horizon{101, false});
    EXPECT_FALSE(n.known(7));
}

TEST(BuildNumbers, IdsThatDoNotFollowTheSequenceLeaveTheHorizonAtTheSequence) {
    BuildNumbers n;
    batch(n, Horizon{100, false}, 7, 41, {101, 103});  // 102 was someone else's
    EXPECT_EQ(n.kept(), 1u);
    EXPECT_EQ(n.horizon(), 100);
}

TEST(BuildNumbers, DroppedWhenTheSequenceCannotBeUsed) {
    BuildNumbers n;
    batch(n, Horizon{100, false}, 7, 41, {101});
    n.begin(1, true, Horizon{std::nullopt, false});  // unreadable, or not CACHE 1
    EXPECT_FALSE(n.known(7));
    n.read(7, 42);
    EXPECT_EQ(n.next(7), 43);
    n.committed({{7, 43}});
    EXPECT_EQ(n.kept(), 0u);
}

TEST(BuildNumbers, AFailedBatchDropsEverything) {
    BuildNumbers n;
    batch(n, Horizon{100, false}, 7, 41, {101});
    n.begin(1, true, Horizon{101, false});
    n.next(7);
    n.failed();
    EXPECT_EQ(n.kept(), 0u);
    EXPECT_FALSE(n.horizon().has_value());
}

TEST(BuildNumbers, ANewSessionStartsFromNothing) {
    BuildNumbers n;
    batch(n, Horizon{100, false}, 7, 41, {101});
    n.begin(2, true, Horizon{101, false});
    EXPECT_FALSE(n.known(7));
    EXPECT_FALSE(n.read_from().has_value());
}

TEST(BuildNumbers, WithoutTheCacheNothingIsTakenOrKept) {
    BuildNumbers n;
    batch(n, Horizon{100, false}, 7, 41, {101});
    n.begin(1, false, Horizon{});  // a dry run or an isolated redo
    EXPECT_FALSE(n.known(7));
    EXPECT_FALSE(n.read_from().has_value());
    n.read(7, 42);
    EXPECT_EQ(n.next(7), 43);
    n.committed({{7, 43}});
    EXPECT_EQ(n.kept(), 0u);
}

TEST(BuildNumbers, CommittedOrFailedWithoutABatchChangesNothing) {
    BuildNumbers n;
    batch(n, Horizon{100, false}, 7, 41, {101});
    n.committed({});  // a batch that numbered nothing
    n.failed();
    EXPECT_EQ(n.kept(), 1u);
}

TEST(BuildNumbers, BoundedByMaxUsers) {
    BuildNumbers n;
    n.begin(1, true, Horizon{0, false});
    std::vector<std::int64_t> ids;
    std::vector<BuildNumbers::Written> written;
    for (std::int64_t u = 1; u <= static_cast<std::int64_t>(BuildNumbers::kMaxUsers) + 1; ++u) {
        n.read(u, 0);
        written.push_back({u, n.next(u)});
        ids.push_back(u);
    }
    n.ids_taken(ids);
    n.committed(written);
    EXPECT_EQ(n.kept(), 0u);
}

TEST(BuildNumbers, EveryUserReadMakesACompleteSetInWhichAnUnseenUserHasNoBuild) {
    BuildNumbers n;
    n.begin(1, true, Horizon{100, false});
    ASSERT_TRUE(n.cold());
    n.read_everyone();
    n.read(7, 41);  // the only user with builds
    EXPECT_TRUE(n.known(8));
    EXPECT_EQ(n.next(7), 42);
    EXPECT_EQ(n.next(8), 1);
    n.ids_taken({101, 102});
    n.committed({{7, 42}, {8, 1}});
    EXPECT_TRUE(n.complete());
    EXPECT_EQ(n.horizon(), 102);
    // The next batch: the server committed user 9's first build (#1, id 103) meanwhile; a
    // complete set adds it, and a user never seen still starts at 1.
    n.begin(1, true, Horizon{103, false});
    EXPECT_FALSE(n.cold());
    ASSERT_EQ(n.read_from(), 102);
    n.merge(9, 1);
    EXPECT_TRUE(n.known(9));
    EXPECT_TRUE(n.known(10));
    EXPECT_EQ(n.next(9), 2);
    EXPECT_EQ(n.next(10), 1);
    EXPECT_EQ(n.next(7), 43);
    n.ids_taken({104, 105, 106});
    n.committed({{9, 2}, {10, 1}, {7, 43}});
    EXPECT_TRUE(n.complete());
    EXPECT_EQ(n.kept(), 4u);
}

TEST(BuildNumbers, ACompleteSetIsLostWithTheSetAndNotMadeByAPartialRead) {
    BuildNumbers n;
    n.begin(1, true, Horizon{100, false});
    n.read_everyone();
    n.read(7, 41);
    n.committed({});
    ASSERT_TRUE(n.complete());
    EXPECT_EQ(n.kept(), 1u);
    n.begin(1, true, Horizon{100, false});
    n.failed();
    EXPECT_FALSE(n.complete());
    // Read only the batch's users: known users are kept, the set is not complete.
    n.begin(1, true, Horizon{100, false});
    n.read(7, 41);
    n.committed({});
    EXPECT_EQ(n.kept(), 1u);
    EXPECT_FALSE(n.complete());
    n.begin(1, true, Horizon{100, false});
    EXPECT_FALSE(n.known(8));
    n.merge(8, 3);  // not complete: its older builds are unknown
    EXPECT_FALSE(n.known(8));
    // Another writer at a cold read: nothing is kept, complete or not.
    n.failed();
    n.begin(1, true, Horizon{100, true});
    n.read_everyone();
    n.read(7, 41);
    n.committed({});
    EXPECT_EQ(n.kept(), 0u);
    EXPECT_FALSE(n.complete());
    // Another session: nothing of the first is kept.
    n.begin(1, true, Horizon{100, false});
    n.read_everyone();
    n.committed({});
    ASSERT_TRUE(n.complete());
    n.begin(2, true, Horizon{100, false});
    EXPECT_TRUE(n.cold());
    EXPECT_FALSE(n.known(7));
}

TEST(BuildNumbersDeathTest, EveryUserIsReadOnlyIntoAColdBatch) {
    BuildNumbers n;
    n.begin(1, true, Horizon{100, false});
    n.read_everyone();
    n.committed({});
    n.begin(1, true, Horizon{100, false});
    EXPECT_DEATH(n.read_everyone(), "broken invariant");
}

TEST(BuildNumbersDeathTest, ANumberForAUserNeitherReadNorKeptIsABug) {
    BuildNumbers n;
    n.begin(1, true, Horizon{100, false});
    EXPECT_DEATH(n.next(99), "broken invariant");
}

}  // namespace
}  // namespace djinn::store
