// LeaderLock against a real PostgreSQL 15 (scripts/lib/services.sh exports DJINN_TEST_*).
// Each test gets its own database made from the Djinn template and competes as the
// djinn_scheduler role, so everything used here works with the scheduler's real grants.
#include <gtest/gtest.h>

#include <unistd.h>

#include <pqxx/pqxx>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "leader/leader_lock.hpp"
#include "store/pg_connection.hpp"

namespace djinn::leader {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using store::PgConnection;
using Result = LeaderLock::AcquireResult;

constexpr std::int64_t kKey = 0x646a696e6e736368;  // the default lock key, "djinnsch"

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v == nullptr ? std::string() : std::string(v);
}

double seconds(Clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

void report(const std::string& what, double value) {
    std::cout << "[ MEASURED ] " << what << ": " << value << " s" << std::endl;
    ::testing::Test::RecordProperty(what, std::to_string(value));
}

class LeaderLockTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (env("DJINN_TEST_PGHOST").empty() || env("DJINN_TEST_PGPORT").empty()) {
            GTEST_FAIL() << "DJINN_TEST_PGHOST/DJINN_TEST_PGPORT unset: run under "
                            "scripts/lib/services.sh (services_start)";
        }
        addr_ = env("DJINN_TEST_PGHOST") + ":" + env("DJINN_TEST_PGPORT");
        std::string template_db = env("DJINN_TEST_PGTEMPLATE");
        if (template_db.empty())
            template_db = "djinn_template";
        superuser_ = open(superuser_config("postgres"));
        ASSERT_NE(superuser_, nullptr);
        static int counter = 0;
        db_ = "leader_test_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
        exec(*superuser_, "CREATE DATABASE " + db_ + " TEMPLATE " + template_db);
    }

    void TearDown() override {
        if (superuser_ != nullptr && !db_.empty()) {
            exec(*superuser_, "DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)");
        }
    }

    config::DatabaseConfig superuser_config(const std::string& db) const {
        config::DatabaseConfig c;
        c.addr = addr_;
        c.name = db;
        c.username =
            env("DJINN_TEST_PGSUPERUSER").empty() ? "postgres" : env("DJINN_TEST_PGSUPERUSER");
        return c;
    }

    config::DatabaseConfig scheduler_config() const {
        config::DatabaseConfig c;
        c.addr = addr_;
        c.name = db_;
        c.username = "djinn_scheduler";
        c.password = "secret";
        return c;
    }

    static std::unique_ptr<PgConnection> open(const config::DatabaseConfig& c,
                                              const store::SessionOptions& opts = {}) {
        auto r = PgConnection::open(c, opts);
        if (auto* e = std::get_if<store::PgError>(&r)) {
            ADD_FAILURE() << "cannot connect as " << c.username << ": " << e->message;
            return nullptr;
        }
        return std::move(std::get<std::unique_ptr<PgConnection>>(r));
    }

    std::unique_ptr<PgConnection> scheduler(const store::SessionOptions& opts = {}) const {
        return open(scheduler_config(), opts);
    }

    static void exec(PgConnection& c, const std::string& sql) {
        auto r = c.run([&](pqxx::connection& conn) {
            pqxx::nontransaction tx(conn);
            tx.exec(sql);
        });
        if (auto* e = std::get_if<store::PgError>(&r))
            ADD_FAILURE() << sql << ": " << e->message;
    }

    // Polls try_acquire on `session` until it leads or `deadline` passes; returns the time taken.
    static std::optional<Clock::duration> acquire_within(LeaderLock& lock, PgConnection& session,
                                                         Clock::time_point start,
                                                         Clock::duration deadline) {
        while (Clock::now() - start < deadline) {
            Result r = lock.try_acquire(session);
            if (r == Result::acquired)
                return Clock::now() - start;
            EXPECT_NE(r, Result::error) << lock.last_error()->message;
            std::this_thread::sleep_for(10ms);
        }
        return std::nullopt;
    }

    std::string addr_;
    std::string db_;
    std::unique_ptr<PgConnection> superuser_;
};

TEST_F(LeaderLockTest, KeySplitMatchesPgLocksOnTheServer) {
    const std::vector<std::int64_t> keys{kKey,
                                         -2,
                                         1,
                                         std::int64_t{1} << 32,
                                         std::numeric_limits<std::int64_t>::min(),
                                         std::numeric_limits<std::int64_t>::max()};
    auto session = scheduler();
    ASSERT_NE(session, nullptr);
    for (std::int64_t key : keys) {
        LeaderLock lock(key);
        ASSERT_EQ(lock.try_acquire(*session), Result::acquired) << key;
        ASSERT_TRUE(lock.verify(*session)) << key;
        // What the server itself shows, read by another session.
        std::int64_t classid = -1, objid = -1, objsubid = -1;
        auto r = superuser_->run([&](pqxx::connection& c) {
            pqxx::nontransaction tx(c);
            auto rows = tx.exec_params(
                "SELECT classid::bigint, objid::bigint, objsubid::bigint FROM pg_locks"
                " WHERE locktype = 'advisory' AND pid = $1 AND granted",
                session->backend_pid());
            ASSERT_EQ(rows.size(), 1U);
            classid = rows[0][0].as<std::int64_t>();
            objid = rows[0][1].as<std::int64_t>();
            objsubid = rows[0][2].as<std::int64_t>();
        });
        ASSERT_TRUE(std::holds_alternative<std::monostate>(r));
        const auto id = LeaderLock::pg_lock_id(key);
        EXPECT_EQ(classid, id.classid) << key;
        EXPECT_EQ(objid, id.objid) << key;
        EXPECT_EQ(objsubid, id.objsubid) << key;
        EXPECT_TRUE(lock.release(*session)) << key;
        EXPECT_FALSE(lock.verify(*session)) << key;
        EXPECT_FALSE(lock.last_error().has_value());
    }
    EXPECT_EQ(LeaderLock::pg_lock_id(-2).classid, 0xffffffffU);
    EXPECT_EQ(LeaderLock::pg_lock_id(-2).objid, 0xfffffffeU);
}

TEST_F(LeaderLockTest, ExactlyOneOfThreeSessionsAcquires) {
    auto a = scheduler(), b = scheduler(), c = scheduler();
    ASSERT_TRUE(a && b && c);
    LeaderLock la(kKey), lb(kKey), lc(kKey);
    EXPECT_EQ(la.try_acquire(*a), Result::acquired);
    EXPECT_EQ(lb.try_acquire(*b), Result::held_by_other);
    EXPECT_EQ(lc.try_acquire(*c), Result::held_by_other);
    EXPECT_TRUE(la.verify(*a));
    EXPECT_FALSE(lb.verify(*b));
    EXPECT_FALSE(lc.verify(*c));
    EXPECT_FALSE(lb.last_error().has_value());  // not held is not an error
}

TEST_F(LeaderLockTest, DifferentKeysDoNotConflict) {
    auto a = scheduler(), b = scheduler();
    ASSERT_TRUE(a && b);
    LeaderLock la(kKey), lb(kKey + 1);
    EXPECT_EQ(la.try_acquire(*a), Result::acquired);
    EXPECT_EQ(lb.try_acquire(*b), Result::acquired);
}

TEST_F(LeaderLockTest, ReleaseLetsAnotherAcquire) {
    auto a = scheduler(), b = scheduler();
    ASSERT_TRUE(a && b);
    LeaderLock la(kKey), lb(kKey);
    ASSERT_EQ(la.try_acquire(*a), Result::acquired);
    ASSERT_EQ(lb.try_acquire(*b), Result::held_by_other);
    EXPECT_TRUE(la.release(*a));
    EXPECT_FALSE(la.verify(*a));
    EXPECT_EQ(lb.try_acquire(*b), Result::acquired);
    EXPECT_FALSE(la.release(*a));  // not held: nothing to release, and no error
    EXPECT_FALSE(la.last_error().has_value());
    EXPECT_EQ(la.try_acquire(*a), Result::held_by_other);
}

TEST_F(LeaderLockTest, AcquiringTwiceNeedsOneRelease) {
    auto a = scheduler(), b = scheduler();
    ASSERT_TRUE(a && b);
    LeaderLock la(kKey), lb(kKey);
    ASSERT_EQ(la.try_acquire(*a), Result::acquired);
    ASSERT_EQ(la.try_acquire(*a), Result::acquired);  // the loop retries while leading
    ASSERT_TRUE(la.release(*a));
    EXPECT_EQ(lb.try_acquire(*b), Result::acquired);
}

TEST_F(LeaderLockTest, TerminatedHolderLosesLockSessionAndCommits) {
    auto a = scheduler(), b = scheduler();
    ASSERT_TRUE(a && b);
    LeaderLock la(kKey), lb(kKey);
    ASSERT_EQ(la.try_acquire(*a), Result::acquired);
    ASSERT_EQ(lb.try_acquire(*b), Result::held_by_other);

    const auto killed = Clock::now();
    exec(*superuser_, "SELECT pg_terminate_backend(" + std::to_string(a->backend_pid()) + ")");
    auto took = acquire_within(lb, *b, killed, 10s);
    ASSERT_TRUE(took.has_value()) << "the standby did not acquire within 10 s";
    report("pg_terminate_backend -> standby acquired", seconds(*took));

    // The old holder finds out at its next statement, and its session stays dead: libpqxx
    // must not reconnect it (a new backend would not hold the lock).
    EXPECT_FALSE(la.verify(*a));
    EXPECT_TRUE(a->broken());
    ASSERT_TRUE(la.last_error().has_value());
    EXPECT_EQ(la.last_error()->kind, store::PgErrorKind::connection);
    EXPECT_EQ(la.try_acquire(*a), Result::error);
    EXPECT_FALSE(la.release(*a));

    // Fencing: nothing can be committed on the lost session.
    bool committed = false;
    auto r = a->run([&](pqxx::connection& c) {
        pqxx::work tx(c);
        tx.exec("SELECT 1");
        tx.commit();
        committed = true;
    });
    EXPECT_FALSE(committed);
    ASSERT_TRUE(std::holds_alternative<store::PgError>(r));
    EXPECT_EQ(std::get<store::PgError>(r).kind, store::PgErrorKind::connection);

    // The standby leads on a live session.
    EXPECT_TRUE(lb.verify(*b));
}

TEST_F(LeaderLockTest, IdleSessionTimeoutReleasesASilentHolder) {
    store::SessionOptions bounded;
    bounded.idle_session_timeout = 1000ms;
    bounded.idle_in_transaction_timeout = 1000ms;
    auto a = scheduler(bounded), b = scheduler();
    ASSERT_TRUE(a && b);
    LeaderLock la(kKey), lb(kKey);
    ASSERT_EQ(la.try_acquire(*a), Result::acquired);
    const auto last_statement = Clock::now();  // from here on `a` stays silent

    auto took = acquire_within(lb, *b, last_statement, 10s);
    ASSERT_TRUE(took.has_value()) << "the server did not end the silent session within 10 s";
    report("idle_session_timeout=1s: silence -> standby acquired", seconds(*took));
    EXPECT_GE(*took, 900ms);  // not before the timeout
    EXPECT_LT(*took, 5s);

    EXPECT_FALSE(la.verify(*a));
    EXPECT_TRUE(a->broken());
    EXPECT_TRUE(lb.verify(*b));
}

TEST_F(LeaderLockTest, HeartbeatsKeepTheIdleTimeoutAway) {
    store::SessionOptions bounded;
    bounded.idle_session_timeout = 1000ms;
    bounded.idle_in_transaction_timeout = 1000ms;
    auto a = scheduler(bounded), b = scheduler();
    ASSERT_TRUE(a && b);
    LeaderLock la(kKey), lb(kKey);
    ASSERT_EQ(la.try_acquire(*a), Result::acquired);
    // Heartbeat every timeout/3 for 2.5 timeouts: the leader keeps the lock throughout.
    const auto start = Clock::now();
    while (Clock::now() - start < 2500ms) {
        std::this_thread::sleep_for(333ms);
        ASSERT_TRUE(la.verify(*a)) << (la.last_error() ? la.last_error()->message : "");
        ASSERT_EQ(lb.try_acquire(*b), Result::held_by_other);
    }
    EXPECT_FALSE(a->broken());
}

TEST_F(LeaderLockTest, SuperuserSessionSeesTheSameLock) {
    // Advisory locks are per database: a session on the same database as another role
    // competes for the same lock.
    auto a = scheduler();
    auto s = open(superuser_config(db_));
    ASSERT_TRUE(a && s);
    LeaderLock la(kKey), ls(kKey);
    EXPECT_EQ(ls.try_acquire(*s), Result::acquired);
    EXPECT_EQ(la.try_acquire(*a), Result::held_by_other);
    // ...while the same key on another database is a different lock.
    auto other_db = open(superuser_config("postgres"));
    ASSERT_NE(other_db, nullptr);
    LeaderLock lo(kKey);
    EXPECT_EQ(lo.try_acquire(*other_db), Result::acquired);
    EXPECT_TRUE(lo.release(*other_db));
}

}  // namespace
}  // namespace djinn::leader
