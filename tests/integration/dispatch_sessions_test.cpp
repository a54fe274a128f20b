// database.dispatch_sessions: batches split by user across several sessions of one process, each
// part its own transaction, fenced by the leader's lock (store/dispatch_store.hpp). Real
// PostgreSQL and Redis; the scheduler binary.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "test_env.hpp"

namespace djinn::testing {
namespace {

using namespace std::chrono_literals;

// Users 1..users with `history` builds each (numbers 1..history), and `crons` crons of theirs
// (round robin), due a minute ago (or in an hour: `due` false).
void seed(TestDatabase& db, int users, int history, int crons, bool due = true) {
    add_users(db, users);
    db.exec(
        "SET TIME ZONE 'UTC';"
        "INSERT INTO builds (user_id, number, manifest, status, secret, created_at) "
        "SELECT u, n, 'm', 'passed', 's', now() - interval '1 day' + n * interval '1 second' "
        "FROM generate_series(1, " +
        std::to_string(users) + ") AS u, generate_series(1, " + std::to_string(history) +
        ") AS n;"
        "INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run) "
        "SELECT 1 + i % " +
        std::to_string(users) + ", 1 + i % " + std::to_string(users) + ", 'n ' || i, 'daily', '" +
        std::string(kDockerManifest) + "', (now() AT TIME ZONE 'UTC') " +
        (due ? "- interval '1 minute'" : "+ interval '1 hour'") + " FROM generate_series(1, " +
        std::to_string(crons) + ") AS i");
}

// Every cron has exactly one cron build, each user's cron builds number on from its history
// without a repeat or a gap, and every build has its job.
void expect_exactly_once(TestDatabase& db, Redis& redis, int crons, int history) {
    EXPECT_EQ(db.count("SELECT count(*) FROM (SELECT c.id FROM cron c LEFT JOIN cron_builds cb "
                       "ON cb.cron_id = c.id GROUP BY c.id HAVING count(cb.id) <> 1) x"),
              0)
        << "a cron without exactly one build";
    EXPECT_EQ(build_number_problems(db), "");
    EXPECT_EQ(db.count("SELECT min(b.number) FROM builds b JOIN cron_builds cb ON cb.build_id = "
                       "b.id"),
              history + 1);
    EXPECT_TRUE(eventually(
        [&] {
            return redis.integer({"LLEN", "builds_docker:active"}) == crons;
        },
        30s))
        << redis.integer({"LLEN", "builds_docker:active"}) << " jobs for " << crons << " crons";
}

// A -once burst on three sessions: every part commits, the numbers go on from each user's
// history as on one session, and the sessions really ran side by side.
TEST(DispatchSessions, ABurstOnThreeSessionsDispatchesEveryCronOnceNumberingOnFromTheHistory) {
    TestDatabase db;
    Redis redis;
    redis.flushall();
    seed(db, 30, 4, 900);
    ConfigOptions o;
    o.batch_size = 200;
    o.database_extra = "dispatch_sessions 3";
    const std::string path = temp_dir() + "/once.conf";
    write_file(path, djinn_config(db, o));
    auto r = run_scheduler({"-config", path, "-once"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("batches split across 3 dispatch sessions"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("900 build(s) made"), std::string::npos) << r.output;
    expect_exactly_once(db, redis, 900, 4);
    // created_at follows the numbers within each user (Djinn numbers by the latest created_at).
    EXPECT_EQ(db.count("SELECT count(*) FROM builds a JOIN builds b ON a.user_id = b.user_id AND "
                       "a.number < b.number WHERE a.created_at >= b.created_at"),
              0);
}

// A new leader waits for the dispatch fence before its first recovery sweep: while another
// session holds it shared (as a part of an older leader does, in its transaction), the leader
// dispatches nothing; once that transaction ends, it dispatches everything.
TEST(DispatchSessions, ANewLeaderDispatchesNothingWhileAPartOfAnOlderLeaderMayStillCommit) {
    TestDatabase db;
    Redis redis;
    redis.flushall();
    seed(db, 5, 1, 20);
    auto holder = db.new_admin_session();
    pqxx::work part(*holder);
    part.exec("SELECT pg_advisory_xact_lock_shared(1684696686, 1717923427)");
    ConfigOptions o;
    o.interval = "1s";
    o.database_extra = "dispatch_sessions 2";
    const std::string dir = temp_dir();
    o.pidfile = dir + "/leader.pid";
    write_file(dir + "/leader.conf", djinn_config(db, o));
    SchedulerProcess leader({"-config", dir + "/leader.conf"});
    ASSERT_TRUE(eventually(
        [&] {
            return db.count(
                       "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                       "classid = 1684696686 AND objid = 1717923427 AND NOT granted") > 0;
        },
        20s))
        << "the leader never waited for the fence\n"
        << leader.output();
    EXPECT_EQ(db.count("SELECT count(*) FROM cron_builds"), 0) << leader.output();
    part.commit();
    ASSERT_TRUE(eventually([&] { return db.count("SELECT count(*) FROM cron_builds") == 20; }, 20s))
        << leader.output();
    expect_exactly_once(db, redis, 20, 1);
}

#ifdef DJINN_FAILPOINTS
// The leader's lock session is ended while a part is between its writes and its commit: that part
// finds the lock gone at its check and commits nothing (the process says so), the leader steps
// down, leads again and dispatches what was left. Every cron exactly once, numbers unique.
TEST(DispatchSessions, APartWhoseLeaderLostTheLockBeforeItCommittedWritesNothing) {
    TestDatabase db;
    Redis redis;
    redis.flushall();
    seed(db, 10, 2, 100, false);
    ConfigOptions o;
    o.interval = "1s";
    o.batch_size = 50;
    o.database_extra = "dispatch_sessions 2";
    const std::string dir = temp_dir();
    o.pidfile = dir + "/leader.pid";
    write_file(dir + "/leader.conf", djinn_config(db, o));
    // The first part to write pauses there (one hit): the test ends the lock session meanwhile.
    SchedulerProcess leader(
        {"-config", dir + "/leader.conf"},
        std::map<std::string, std::string>{{"DJINN_FAILPOINTS", "batch.advance=pause3000*1"}});
    // The idle passes open the dispatch sessions ahead of the burst; then the crons fall due.
    ASSERT_TRUE(eventually(
        [&] {
            return db.count(
                       "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                       "current_database() AND application_name = 'djinn-scheduler "
                       "dispatch'") == 2;
        },
        20s))
        << leader.output();
    db.exec("UPDATE cron SET next_run = (now() AT TIME ZONE 'UTC') - interval '1 minute'");
    db.exec("SELECT pg_stat_force_next_flush()");  // the idle hint sees the write at once
    ASSERT_TRUE(eventually(
        [&] {
            return leader.output().find("failpoint batch.advance: pausing") != std::string::npos;
        },
        30s))
        << leader.output();
    const auto ended = db.count(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
        "datname = current_database() AND application_name = 'djinn-scheduler') t");
    ASSERT_EQ(ended, 1) << "the leader's lock session";
    ASSERT_TRUE(
        eventually([&] { return db.count("SELECT count(*) FROM cron_builds") == 100; }, 40s))
        << leader.output();
    const std::string out = leader.output();
    EXPECT_NE(out.find("dispatch session"), std::string::npos) << out;
    EXPECT_NE(out.find("does not hold the leader lock: nothing written"), std::string::npos) << out;
    expect_exactly_once(db, redis, 100, 2);
}
#endif

}  // namespace
}  // namespace djinn::testing
