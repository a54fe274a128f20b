// The idle pass's hint (store/due_hint.hpp), end to end with the real binary against PostgreSQL 15
// and Redis 7: a pass that finds nothing due leaves a hint, the next one skips the scan of cron
// while nothing is written to it and nothing falls due, and scans again (and dispatches) as soon
// as either happens; without statistics (track_counts off) every pass scans.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "test_env.hpp"

namespace djinn::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSkipped = "nothing due, not scanned";

class IdlePass : public ::testing::Test {
  protected:
    void SetUp() override {
        redis.flushall();
        dir = temp_dir();
        add_users(db, 10);
        ConfigOptions o;
        o.log_level = "debug";
        cfg = dir + "/scheduler.conf";
        write_file(cfg, djinn_config(db, o));
    }

    // `n` crons whose next run is `in` from now (database clock); counted as written.
    void add_crons(int n, const std::string& in) {
        db.exec(
            "INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run) "
            "SELECT 1 + i % 10, 1 + i % 10, 'cron ' || i || ' ' || md5(random()::text), 'daily', "
            "$m$" +
            std::string(kDockerManifest) + "$m$, (now() AT TIME ZONE 'UTC') + interval '" + in +
            "' FROM generate_series(1, " + std::to_string(n) + ") AS i");
        writes_ += n;
    }

    // Waits until the statistics of cron count every write so far (`extra`: the scheduler's own,
    // one per cron it advanced): a backend reports its counts shortly after its transaction.
    void wait_for_stats(long long extra = 0) {
        writes_ += extra;
        db.exec("SELECT pg_stat_force_next_flush()");
        const std::string sql =
            "SELECT pg_stat_get_tuples_inserted(c) + pg_stat_get_tuples_updated(c) + "
            "pg_stat_get_tuples_deleted(c) FROM (SELECT 'cron'::regclass::oid AS c) s";
        ASSERT_TRUE(eventually([&] { return db.count(sql) >= writes_; }, 15s))
            << db.count(sql) << " of " << writes_ << " writes counted";
    }

    ProcessResult once() { return run_scheduler({"-config", cfg, "-once"}); }

    std::string hint_key() {
        return "djinn-scheduler:due-hint:" + db.name() + ":" +
               db.scalar("SELECT oid FROM pg_database WHERE datname = current_database()");
    }

    TestDatabase db;
    Redis redis;
    std::string dir;
    std::string cfg;
    long long writes_ = 0;
};

TEST_F(IdlePass, ASecondIdlePassSkipsTheScanUntilACronIsWritten) {
    add_crons(500, "1 day");
    wait_for_stats();

    auto first = once();
    ASSERT_EQ(first.exit_code, 0) << first.output;
    EXPECT_EQ(first.output.find(kSkipped), std::string::npos) << first.output;
    EXPECT_EQ(redis.get_str({"GET", hint_key()}).rfind("v1|", 0), 0u)
        << "an idle pass that scanned leaves a hint";

    auto second = once();
    ASSERT_EQ(second.exit_code, 0) << second.output;
    EXPECT_NE(second.output.find(kSkipped), std::string::npos) << second.output;

    // What the server does when a user edits a cron: one row written, due now.
    db.exec(
        "UPDATE cron SET next_run = (now() AT TIME ZONE 'UTC') - interval '1 minute' "
        "WHERE id = (SELECT min(id) FROM cron)");
    wait_for_stats(1);
    auto edited = once();
    ASSERT_EQ(edited.exit_code, 0) << edited.output;
    EXPECT_EQ(edited.output.find(kSkipped), std::string::npos) << edited.output;
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 1);
    EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}), 1);

    // Its own advance is a write too: the next pass scans (and leaves a hint), the one after
    // skips.
    wait_for_stats(1);
    auto after = once();
    ASSERT_EQ(after.exit_code, 0) << after.output;
    EXPECT_EQ(after.output.find(kSkipped), std::string::npos) << after.output;
    auto idle = once();
    ASSERT_EQ(idle.exit_code, 0) << idle.output;
    EXPECT_NE(idle.output.find(kSkipped), std::string::npos) << idle.output;
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 1);
}

TEST_F(IdlePass, ACronFallingDueWithoutAnyWriteIsDispatchedWhenDue) {
    add_crons(100, "1 day");
    add_crons(1, "6 seconds");
    const std::string due_at = db.scalar("SELECT min(next_run) FROM cron");
    wait_for_stats();

    auto first = once();
    ASSERT_EQ(first.exit_code, 0) << first.output;
    auto before = once();
    ASSERT_EQ(before.exit_code, 0) << before.output;
    if (db.count("SELECT count(*) FROM cron WHERE next_run <= (now() AT TIME ZONE 'UTC')") == 0) {
        EXPECT_NE(before.output.find(kSkipped), std::string::npos) << before.output;
    }
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 0);

    ASSERT_TRUE(eventually(
        [&] {
            return db.count(
                       "SELECT count(*) FROM cron WHERE next_run <= (now() AT TIME ZONE "
                       "'UTC')") == 1;
        },
        20s));
    auto due = once();
    ASSERT_EQ(due.exit_code, 0) << due.output;
    EXPECT_EQ(due.output.find(kSkipped), std::string::npos) << due.output;
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 1) << "the cron due at " << due_at;
    EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}), 1);
}

TEST_F(IdlePass, WithoutStatisticsEveryPassScans) {
    db.exec("ALTER DATABASE " + db.name() + " SET track_counts = off");
    add_crons(200, "1 day");
    for (int i = 0; i < 2; ++i) {
        auto r = once();
        ASSERT_EQ(r.exit_code, 0) << r.output;
        EXPECT_EQ(r.output.find(kSkipped), std::string::npos) << r.output;
    }
    EXPECT_EQ(redis.integer({"EXISTS", hint_key()}), 0) << "no hint without counters";
}

TEST_F(IdlePass, AHintItCannotReadMeansScanning) {
    add_crons(200, "1 day");
    wait_for_stats();
    redis.command({"SET", hint_key(), "v1|not the counters of this table|-|1"});
    auto r = once();
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output.find(kSkipped), std::string::npos) << r.output;
    redis.command({"SET", hint_key(), "garbage"});
    r = once();
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output.find(kSkipped), std::string::npos) << r.output;
    EXPECT_EQ(redis.get_str({"GET", hint_key()}).rfind("v1|", 0), 0u) << "written again";
    r = once();
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(kSkipped), std::string::npos) << r.output;
}

}  // namespace
}  // namespace djinn::testing
