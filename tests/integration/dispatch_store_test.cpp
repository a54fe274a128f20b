// The batch transaction against a real PostgreSQL 15, as the djinn_scheduler role, driven batch
// by batch the way the pass pipeline drives it (candidates read one batch ahead, planned outside
// the transaction), with crons changed, broken, deleted, locked or advanced between the read and
// the batch; the fence; build numbers.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/failpoints.hpp"
#include "dispatch/planner.hpp"
#include "leader/leader_lock.hpp"
#include "store/dispatch_store.hpp"
#include "store/pg_connection.hpp"
#include "test_env.hpp"

namespace djinn::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kDocker =
    "driver: {type: docker, image: alpine}\nstages: [test]\njobs:\n"
    "- {stage: test, commands: [make]}\n";
constexpr const char* kQemu =
    "driver: {type: qemu, image: debian/stable}\nstages: [test]\njobs:\n"
    "- {stage: test, commands: [make check]}\n";

// The pass pipeline's use of the store, by hand: open the pass, then batch after batch, each
// planned before its transaction.
class Driver {
  public:
    Driver(store::DispatchStore& s, store::PgConnection& c, std::int64_t limit)
        : store_(s), conn_(c), limit_(limit), planner_({"docker", "qemu-x86_64"}, 2) {}

    void open() {
        auto r = store_.open_pass(conn_, limit_, nullptr);
        ASSERT_TRUE(std::holds_alternative<store::PassStart>(r))
            << std::get<store::PgError>(r).message;
        take(std::get<store::PassStart>(r).first);
    }
    bool more() const { return !ids_.empty(); }

    std::variant<store::BatchOutcome, store::PgError> try_batch() {
        store::BatchRequest req;
        req.ids = ids_;
        req.plans = &plans_;
        req.exclude = &exclude_;
        req.next_limit = limit_;
        std::vector<store::Candidate> next;
        req.on_next = [&](std::vector<store::Candidate> c) { next = std::move(c); };
        auto r = store_.dispatch_batch(conn_, req);
        if (auto* b = std::get_if<store::BatchOutcome>(&r)) {
            // As the pipeline does: a deferred cron is offered first in the next batch.
            next.insert(next.begin(), b->deferred.begin(), b->deferred.end());
            for (auto id : b->not_taken)
                exclude_.push_back(id);
            for (const auto& s : b->skipped) {
                if (!s.advanced)
                    exclude_.push_back(s.cron_id);
            }
        }
        take(next);
        return r;
    }
    store::BatchOutcome batch() {
        auto r = try_batch();
        if (auto* e = std::get_if<store::PgError>(&r)) {
            ADD_FAILURE() << e->message;
            return {};
        }
        return std::get<store::BatchOutcome>(r);
    }

  private:
    void take(const std::vector<store::Candidate>& c) {
        ids_.clear();
        for (const auto& x : c)
            ids_.push_back(x.id);
        plans_ = planner_.plan(c);
    }
    store::DispatchStore& store_;
    store::PgConnection& conn_;
    std::int64_t limit_;
    dispatch::Planner planner_;
    std::vector<std::int64_t> ids_;
    store::PlannedManifests plans_;
    std::vector<std::int64_t> exclude_;
};

class DispatchStoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        db.exec(
            "INSERT INTO users (id, email, username, password) VALUES "
            "(1, 'alice@example.com', 'alice', '\\x00'), (2, 'bob@example.com', 'bob', '\\x00');"
            "SELECT setval('users_id_seq', 2);");
        conn = open_session();
    }

    std::unique_ptr<store::PgConnection> open_session() {
        // A statement that waits on a lock fails after 5 s instead of hanging the test.
        store::SessionOptions o;
        o.statement_timeout = std::chrono::milliseconds(5000);
        auto r = store::PgConnection::open(db.scheduler_config(), o);
        EXPECT_TRUE(std::holds_alternative<std::unique_ptr<store::PgConnection>>(r))
            << std::get<store::PgError>(r).message;
        return std::move(std::get<std::unique_ptr<store::PgConnection>>(r));
    }

    // `n` due crons of `user`, due one second apart (the batches take them in id order).
    std::vector<std::int64_t> add_crons(int n, int user = 1) {
        std::vector<std::int64_t> ids;
        pqxx::work tx(db.admin());
        for (int i = 0; i < n; ++i) {
            auto row = tx.exec_params1(
                "INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run) "
                "VALUES ($4, $4, $1, 'daily', $2, (now() AT TIME ZONE 'UTC') - interval '1 day' "
                "+ $3 * interval '1 second') RETURNING id",
                "cron " + std::to_string(i), std::string(kDocker), i, user);
            ids.push_back(row[0].as<std::int64_t>());
        }
        tx.commit();
        return ids;
    }

    void admin_exec(const std::string& sql) {
        pqxx::work tx(db.admin());
        tx.exec(sql);
        tx.commit();
    }

    std::int64_t due() {
        return db.count("SELECT count(*) FROM cron WHERE next_run <= now() AT TIME ZONE 'UTC'");
    }

    TestDatabase db;
    SystemClock clock;
    store::DispatchStore store{"salt", clock, std::nullopt};
    std::unique_ptr<store::PgConnection> conn;
};

TEST_F(DispatchStoreTest, BatchesPlannedAheadWriteEveryCronOnceAndTheSweepEndsThePass) {
    add_crons(25);
    Driver d(store, *conn, 10);
    d.open();
    std::vector<std::size_t> taken;
    while (d.more())
        taken.push_back(d.batch().taken);
    EXPECT_EQ(taken, (std::vector<std::size_t>{10, 10, 5}));
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 25);
    EXPECT_EQ(db.count("SELECT count(DISTINCT cron_id) FROM cron_builds"), 25);
    EXPECT_EQ(db.count("SELECT count(*) FROM build_jobs WHERE commands = 'make'"), 25);
    EXPECT_EQ(due(), 0);
}

TEST_F(DispatchStoreTest, ManifestChangedAfterItWasPlannedIsDeferredThenWrittenFromTheNewText) {
    auto ids = add_crons(20);
    Driver d(store, *conn, 10);
    d.open();
    ASSERT_EQ(d.batch().taken, 10u);
    // Batch 2's manifests were read and planned already; a user edits one.
    const std::int64_t edited = ids[13];
    {
        pqxx::work tx(db.admin());
        tx.exec_params("UPDATE cron SET manifest = $1 WHERE id = $2", std::string(kQemu), edited);
        tx.commit();
    }
    auto b2 = d.batch();
    EXPECT_EQ(b2.taken, 10u);
    ASSERT_EQ(b2.deferred.size(), 1u);  // never the plan of the old text
    EXPECT_EQ(b2.deferred[0].id, edited);
    EXPECT_EQ(b2.deferred[0].manifest, kQemu);
    EXPECT_EQ(b2.builds.size(), 9u);
    EXPECT_EQ(
        db.count("SELECT count(*) FROM cron_builds WHERE cron_id = " + std::to_string(edited)), 0);
    // Planned from its new text, offered in the next batch, written.
    ASSERT_TRUE(d.more());
    auto b3 = d.batch();
    ASSERT_EQ(b3.builds.size(), 1u);
    EXPECT_EQ(b3.builds[0].cron_id, edited);
    EXPECT_EQ(b3.builds[0].queue_driver, "qemu-x86_64");
    const std::string build = std::to_string(b3.builds[0].build_id);
    EXPECT_EQ(db.scalar("SELECT manifest FROM builds WHERE id = " + build), kQemu);
    EXPECT_EQ(db.scalar("SELECT type::text FROM build_drivers WHERE build_id = " + build), "qemu");
    EXPECT_FALSE(d.more());
    EXPECT_EQ(due(), 0);
}

TEST_F(DispatchStoreTest, CronBrokenDeletedOrAdvancedAfterItWasReadAheadIsHandledAsItIsNow) {
    auto ids = add_crons(20);
    Driver d(store, *conn, 10);
    d.open();
    ASSERT_EQ(d.batch().taken, 10u);
    const std::int64_t broken = ids[11];
    const std::int64_t deleted = ids[12];
    const std::int64_t advanced = ids[14];
    {
        pqxx::work tx(db.admin());
        tx.exec_params("UPDATE cron SET manifest = 'driver: [' WHERE id = $1", broken);
        tx.exec_params("DELETE FROM cron WHERE id = $1", deleted);
        // Dispatched by someone else meanwhile: no longer due.
        tx.exec_params(
            "UPDATE cron SET next_run = (now() AT TIME ZONE 'UTC') + interval '1 day' "
            "WHERE id = $1",
            advanced);
        tx.commit();
    }
    auto b2 = d.batch();
    EXPECT_EQ(b2.taken, 8u);
    EXPECT_EQ(b2.builds.size(), 7u);
    ASSERT_EQ(b2.deferred.size(), 1u);
    EXPECT_EQ(b2.deferred[0].id, broken);
    std::set<std::int64_t> not_taken(b2.not_taken.begin(), b2.not_taken.end());
    EXPECT_EQ(not_taken, (std::set<std::int64_t>{deleted, advanced}));
    auto b3 = d.batch();  // the broken manifest, planned now
    ASSERT_EQ(b3.skipped.size(), 1u);
    EXPECT_EQ(b3.skipped[0].cron_id, broken);
    EXPECT_EQ(b3.skipped[0].kind, "bad_manifest");
    EXPECT_TRUE(b3.skipped[0].advanced);
    EXPECT_FALSE(d.more());
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 17);
    EXPECT_EQ(
        db.count("SELECT count(*) FROM cron_builds WHERE cron_id IN (" + std::to_string(broken) +
                 "," + std::to_string(deleted) + "," + std::to_string(advanced) + ")"),
        0);
}

TEST_F(DispatchStoreTest, ACronLockedByAnotherSessionIsSkippedNotWaitedFor) {
    auto ids = add_crons(5);
    // Another session (a concurrent -once, an operator's UPDATE) holds one due cron's row lock.
    auto other = db.new_admin_session();
    pqxx::work holder(*other);
    holder.exec_params("SELECT 1 FROM cron WHERE id = $1 FOR UPDATE", ids[2]);
    Driver d(store, *conn, 10);
    d.open();
    const auto start = std::chrono::steady_clock::now();
    auto b = d.batch();
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_LT(took, 2s) << "the batch waited for the foreign row lock";
    EXPECT_EQ(b.taken, 4u);
    EXPECT_EQ(b.not_taken, std::vector<std::int64_t>{ids[2]});
    EXPECT_EQ(b.builds.size(), 4u);
    // Not offered again in this pass (it is another session's), so the pass ends.
    if (d.more()) {
        EXPECT_EQ(d.batch().taken, 0u);
    }
    EXPECT_FALSE(d.more());
    EXPECT_EQ(
        db.count("SELECT count(*) FROM cron_builds WHERE cron_id = " + std::to_string(ids[2])), 0);
    holder.abort();
    // The lock is gone: the next pass dispatches it.
    Driver again(store, *conn, 10);
    again.open();
    EXPECT_EQ(again.batch().builds.size(), 1u);
    EXPECT_EQ(due(), 0);
}

TEST_F(DispatchStoreTest, WithAFenceKeyNothingIsWrittenOnASessionWithoutTheLeaderLock) {
    add_crons(3);
    constexpr std::int64_t kKey = 0x7465737466656e63;
    store::DispatchStore fenced("salt", clock, kKey);
    {
        Driver d(fenced, *conn, 10);
        d.open();
        auto r = d.try_batch();
        ASSERT_TRUE(std::holds_alternative<store::PgError>(r));
        EXPECT_EQ(std::get<store::PgError>(r).kind, store::PgErrorKind::fenced);
    }
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 0);
    EXPECT_EQ(due(), 3);
    // Another session holding the lock does not help this one.
    auto other = db.new_admin_session();
    pqxx::nontransaction(*other).exec_params("SELECT pg_advisory_lock($1)", kKey);
    {
        Driver d(fenced, *conn, 10);
        d.open();
        auto r = d.try_batch();
        ASSERT_TRUE(std::holds_alternative<store::PgError>(r));
        EXPECT_EQ(std::get<store::PgError>(r).kind, store::PgErrorKind::fenced);
    }
    pqxx::nontransaction(*other).exec_params("SELECT pg_advisory_unlock($1)", kKey);
    // With the lock on its own session it dispatches.
    leader::LeaderLock lock(kKey);
    ASSERT_EQ(lock.try_acquire(*conn), leader::LeaderLock::AcquireResult::acquired);
    Driver d(fenced, *conn, 10);
    d.open();
    EXPECT_EQ(d.batch().builds.size(), 3u);
    EXPECT_EQ(due(), 0);
}

TEST_F(DispatchStoreTest, BuildNumbersContinueEachUsersNumbersAcrossBatchesAndOtherWriters) {
    // Alice has builds #1..#3 already; Bob none.
    admin_exec(
        "INSERT INTO builds (user_id, number, manifest, status, secret, created_at) "
        "SELECT 1, n, 'm', 'passed', 's', (now() AT TIME ZONE 'UTC') - interval '2 days' "
        "+ n * interval '1 minute' FROM generate_series(1, 3) n");
    add_crons(7, 1);
    add_crons(5, 2);
    Driver d(store, *conn, 4);
    d.open();
    d.batch();
    d.batch();
    // The Djinn server makes a build for Alice between two batches.
    admin_exec(
        "INSERT INTO builds (user_id, number, manifest, status, secret, created_at) "
        "SELECT 1, max(number) + 1, 'm', 'queued', 's', now() AT TIME ZONE 'UTC' FROM builds "
        "WHERE user_id = 1");
    while (d.more())
        d.batch();
    EXPECT_EQ(due(), 0);
    // Every build of a user has its own number, and they are 1..n without a gap.
    for (int user : {1, 2}) {
        SCOPED_TRACE(user);
        const std::string u = std::to_string(user);
        EXPECT_EQ(
            db.count("SELECT count(*) - count(DISTINCT number) FROM builds WHERE user_id = " + u),
            0);
        EXPECT_EQ(db.count("SELECT max(number) FROM builds WHERE user_id = " + u),
                  db.count("SELECT count(*) FROM builds WHERE user_id = " + u));
    }
    EXPECT_EQ(db.count("SELECT count(*) FROM builds WHERE user_id = 1"), 11);  // 3 + 1 + 7
    EXPECT_EQ(db.count("SELECT count(*) FROM builds WHERE user_id = 2"), 5);
}

// The Djinn server's way of making a build (v1.3.0 build.Store.Create): the user's latest number
// read, then the build inserted, each statement on its own (autocommit), without any lock.
struct ServerBuild {
    std::int64_t id = 0;
    std::int64_t user = 0;
    std::int64_t number = 0;
};
ServerBuild server_build(pqxx::connection& c, std::int64_t user) {
    pqxx::nontransaction tx(c);
    auto r = tx.exec_params(
        "SELECT number FROM builds WHERE user_id = $1 ORDER BY created_at DESC LIMIT 1", user);
    const std::int64_t number = r.empty() ? 1 : r[0][0].as<std::int64_t>() + 1;
    const std::int64_t id =
        tx.exec_params1(
              "INSERT INTO builds (user_id, number, manifest, status, secret, created_at) "
              "VALUES ($1, $2, 'driver: {type: docker}', 'queued', 's', "
              "now() AT TIME ZONE 'UTC') RETURNING id",
              user, number)[0]
            .as<std::int64_t>();
    return {id, user, number};
}

// Builds of one user that share a number: (user, number) -> build ids.
std::map<std::pair<std::int64_t, std::int64_t>, std::vector<std::int64_t>> shared_numbers(
    TestDatabase& db) {
    std::map<std::pair<std::int64_t, std::int64_t>, std::vector<std::int64_t>> out;
    pqxx::nontransaction tx(db.admin());
    for (const auto& row : tx.exec("SELECT b.user_id, b.number, b.id FROM builds b JOIN (SELECT "
                                   "user_id, number FROM builds GROUP BY 1, 2 HAVING count(*) > "
                                   "1) d USING (user_id, number) ORDER BY 1, 2, 3"))
        out[{row[0].as<std::int64_t>(), row[1].as<std::int64_t>()}].push_back(
            row[2].as<std::int64_t>());
    return out;
}

#ifdef DJINN_FAILPOINTS
TEST_F(DispatchStoreTest, NoBuildRepeatsANumberTheServerCommittedBeforeItsBatchReadTheNumbers) {
    admin_exec(
        "INSERT INTO builds (user_id, number, manifest, status, secret, created_at) "
        "SELECT 1, n, 'm', 'passed', 's', (now() AT TIME ZONE 'UTC') - interval '2 days' "
        "+ n * interval '1 minute' FROM generate_series(1, 3) n");
    add_crons(25, 1);
    add_crons(25, 2);
    auto server = db.new_admin_session();
    int batch = 0;
    std::map<std::int64_t, int> before_read, while_written;  // server build -> batch
    // The server commits builds of both users just before each batch reads the numbers (they
    // must never be repeated), and one of Alice's while the batch is written (its number was read
    // before ours committed: the server's own race; it may repeat a number of this batch only).
    failpoints::arm("batch.numbers", [&] {
        for (std::int64_t user : {1, 2})
            before_read[server_build(*server, user).id] = batch;
    });
    failpoints::arm("batch.write", [&] { while_written[server_build(*server, 1).id] = batch; });
    std::map<std::int64_t, int> ours;
    Driver d(store, *conn, 5);
    d.open();
    while (d.more()) {
        ++batch;
        for (const auto& b : d.batch().builds)
            ours[b.build_id] = batch;
    }
    failpoints::clear();
    EXPECT_EQ(due(), 0);
    EXPECT_EQ(ours.size(), 50u);
    ASSERT_GE(before_read.size(), 20u);
    for (const auto& [key, ids] : shared_numbers(db)) {
        SCOPED_TRACE("user " + std::to_string(key.first) + " #" + std::to_string(key.second));
        // One of ours (of batch k) and one of the server's, which must have been committed after
        // batch k read the numbers: before a later batch read them, or while batch k or a later
        // one was written. (Then the server repeated our number: its own race.)
        ASSERT_EQ(ids.size(), 2u);
        const std::int64_t mine = ours.count(ids[0]) ? ids[0] : ids[1];
        const std::int64_t theirs = mine == ids[0] ? ids[1] : ids[0];
        ASSERT_EQ(ours.count(mine), 1u) << "two server builds: the server's own race";
        const int k = ours.at(mine);
        if (before_read.count(theirs)) {
            EXPECT_GT(before_read.at(theirs), k)
                << "build " << mine << " of batch " << k << " repeats server build " << theirs
                << ", committed before batch " << before_read.at(theirs) << " read the numbers";
        } else {
            ASSERT_EQ(while_written.count(theirs), 1u);
            EXPECT_GE(while_written.at(theirs), k)
                << "build " << mine << " of batch " << k << " repeats server build " << theirs
                << ", committed while batch " << while_written.at(theirs) << " was written";
        }
    }
    // Ours never share a number among themselves.
    EXPECT_EQ(db.count("SELECT count(*) FROM (SELECT user_id, number FROM builds b JOIN "
                       "cron_builds cb ON cb.build_id = b.id GROUP BY 1, 2 HAVING count(*) > 1) d"),
              0);
}
#endif

TEST_F(DispatchStoreTest, AServerMakingBuildsAllThroughABurstGetsNoNumberRepeatedAfterItCommitted) {
    add_crons(150, 1);
    add_crons(150, 2);
    using Clock = std::chrono::steady_clock;
    struct Made {
        ServerBuild build;
        Clock::time_point committed;  // the INSERT had returned: committed by then
    };
    std::mutex mu;
    std::vector<Made> made;
    std::atomic<bool> stop{false};
    std::thread server([&] {
        auto c = db.new_admin_session();
        std::mt19937 rng(7);
        while (!stop.load()) {
            ServerBuild b = server_build(*c, 1 + static_cast<std::int64_t>(rng() % 2));
            const auto at = Clock::now();
            std::lock_guard lock(mu);
            made.push_back({b, at});
        }
    });
    std::map<std::int64_t, Clock::time_point> batch_start;  // our build -> its batch's start
    Driver d(store, *conn, 20);
    d.open();
    while (d.more()) {
        const auto start = Clock::now();
        for (const auto& b : d.batch().builds)
            batch_start[b.build_id] = start;
    }
    stop = true;
    server.join();
    EXPECT_EQ(due(), 0);
    ASSERT_EQ(batch_start.size(), 300u);
    ASSERT_GT(made.size(), 20u) << "the server made too few builds to show anything";
    std::map<std::int64_t, Clock::time_point> server_committed;
    for (const auto& m : made)
        server_committed[m.build.id] = m.committed;
    for (const auto& [key, ids] : shared_numbers(db)) {
        SCOPED_TRACE("user " + std::to_string(key.first) + " #" + std::to_string(key.second));
        std::vector<std::int64_t> mine;
        for (auto id : ids) {
            if (batch_start.count(id))
                mine.push_back(id);
        }
        ASSERT_LE(mine.size(), 1u) << "two of ours share a number";
        if (mine.empty())
            continue;  // server builds among themselves: the server's own race
        for (auto id : ids) {
            if (id != mine[0]) {
                EXPECT_GE(server_committed.at(id), batch_start.at(mine[0]))
                    << "build " << mine[0] << " repeats server build " << id
                    << ", committed before the batch began";
            }
        }
    }
}

}  // namespace
}  // namespace djinn::testing
