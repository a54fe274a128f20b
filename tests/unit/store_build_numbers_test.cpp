// The rules by which build numbers read from `builds` may be carried to the next batch.
#include <gtest/gtest.h>

#include "store/build_numbers.hpp"

namespace djinn::store {
namespace {

using Seq = BuildNumbers::SequenceState;

// A batch on session 1 that reads `user`'s latest number and takes `ids`, then commits.
void batch(BuildNumbers& n, Seq seq, std::int64_t user, std::int64_t latest,
           const std::vector<std::int64_t>& ids, bool dated_after_now = false) {
    n.begin(1, true, seq);
    if (!n.known(user))
        n.read(user, latest, dated_after_now);
    for (std::size_t i = 0; i < ids.size(); ++i)
        n.next(user);
    n.ids_taken(ids);
    n.committed();
}

TEST(BuildNumbers, NumbersAreTheLatestPlusOneAndConsecutiveWithinABatch) {
    BuildNumbers n;
    n.begin(1, true, Seq{100, false});
    n.read(7, 41, false);
    n.read(8, 0, false);  // no build yet
    EXPECT_EQ(n.next(7), 42);
    EXPECT_EQ(n.next(7), 43);
    EXPECT_EQ(n.next(8), 1);
    n.give_back(7);  // #43 was not written
    EXPECT_EQ(n.next(7), 43);
}

TEST(BuildNumbers, KeptWhileOnlyThisSessionTakesBuildIds) {
    BuildNumbers n;
    batch(n, Seq{100, false}, 7, 41, {101, 102});
    EXPECT_EQ(n.kept(), 1u);
    n.begin(1, true, Seq{102, false});
    ASSERT_TRUE(n.known(7));
    EXPECT_EQ(n.next(7), 44);  // no read: 42 and 43 were ours
}

TEST(BuildNumbers, DroppedWhenSomebodyElseTookABuildId) {
    BuildNumbers n;
    batch(n, Seq{100, false}, 7, 41, {101, 102});
    n.begin(1, true, Seq{103, false});  // the server made a build meanwhile
    EXPECT_FALSE(n.known(7));
    EXPECT_EQ(n.kept(), 0u);
}

TEST(BuildNumbers, DroppedWhenTheSequenceCannotBeRead) {
    BuildNumbers n;
    batch(n, Seq{100, false}, 7, 41, {101});
    n.begin(1, true, Seq{std::nullopt, false});
    EXPECT_FALSE(n.known(7));
}

TEST(BuildNumbers, NotKeptWhenAnotherSessionWasWritingBuildsAtTheRead) {
    BuildNumbers n;
    batch(n, Seq{100, true}, 7, 41, {101});
    EXPECT_EQ(n.kept(), 0u);
    n.begin(1, true, Seq{101, false});
    EXPECT_FALSE(n.known(7));
}

TEST(BuildNumbers, NotKeptWhenThisBatchsIdsDoNotFollowTheSequence) {
    BuildNumbers n;
    batch(n, Seq{100, false}, 7, 41, {101, 103});  // 102 went to someone else
    EXPECT_EQ(n.kept(), 0u);
}

TEST(BuildNumbers, AUserWhoseLatestBuildIsDatedAfterNowIsNeverKept) {
    BuildNumbers n;
    n.begin(1, true, Seq{100, false});
    n.read(7, 41, true);
    n.read(8, 5, false);
    n.next(7);
    n.next(8);
    n.ids_taken({101, 102});
    n.committed();
    n.begin(1, true, Seq{102, false});
    EXPECT_FALSE(n.known(7));
    EXPECT_TRUE(n.known(8));
}

TEST(BuildNumbers, AFailedBatchDropsEverything) {
    BuildNumbers n;
    batch(n, Seq{100, false}, 7, 41, {101});
    n.begin(1, true, Seq{101, false});
    n.next(7);
    n.failed();
    EXPECT_EQ(n.kept(), 0u);
}

TEST(BuildNumbers, ANewSessionStartsFromNothing) {
    BuildNumbers n;
    batch(n, Seq{100, false}, 7, 41, {101});
    n.begin(2, true, Seq{101, false});
    EXPECT_FALSE(n.known(7));
}

TEST(BuildNumbers, WithoutTheCacheNothingIsTakenOrKept) {
    BuildNumbers n;
    batch(n, Seq{100, false}, 7, 41, {101});
    n.begin(1, false, Seq{});  // a dry run or an isolated redo
    EXPECT_FALSE(n.known(7));
    n.read(7, 42, false);
    EXPECT_EQ(n.next(7), 43);
    n.committed();
    EXPECT_EQ(n.kept(), 0u);
}

TEST(BuildNumbers, CommittedOrFailedWithoutABatchChangesNothing) {
    BuildNumbers n;
    batch(n, Seq{100, false}, 7, 41, {101});
    n.committed();  // a batch that numbered nothing
    n.failed();
    EXPECT_EQ(n.kept(), 1u);
}

TEST(BuildNumbers, BoundedByMaxUsers) {
    BuildNumbers n;
    n.begin(1, true, Seq{0, false});
    std::vector<std::int64_t> ids;
    for (std::int64_t u = 1; u <= static_cast<std::int64_t>(BuildNumbers::kMaxUsers) + 1; ++u) {
        n.read(u, 0, false);
        n.next(u);
        ids.push_back(u);
    }
    n.ids_taken(ids);
    n.committed();
    EXPECT_EQ(n.kept(), 0u);
}

TEST(BuildNumbersDeathTest, ANumberForAUserNeitherReadNorKeptIsABug) {
    BuildNumbers n;
    n.begin(1, true, Seq{100, false});
    EXPECT_DEATH(n.next(99), "broken invariant");
}

}  // namespace
}  // namespace djinn::store
