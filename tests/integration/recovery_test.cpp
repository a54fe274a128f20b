// The recovery sweep and the switch from the original scheduler, end to end with the real binary
// against PostgreSQL 15 and Redis 7: the sweep reads only what came after the watermark (on a
// database with history), falls back to the recovery window when the watermark is unusable,
// never moves past another writer's open transaction; jobs written the original's way (random
// ids, no marker) are adopted, never duplicated, also with SIGKILLs during the first pass; Redis
// under maxmemory with volatile-lru and allkeys-lru never gets a build twice.
#include <gtest/gtest.h>
#include <signal.h>

#include <functional>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "queue/curlyq_codec.hpp"
#include "test_env.hpp"

namespace djinn::testing {
namespace {

using namespace std::chrono_literals;

class RecoveryTest : public ::testing::Test {
  protected:
    void SetUp() override {
        redis.flushall();
        dir = temp_dir();
        db.exec("SET TIME ZONE 'UTC'");
        add_users(db, 10);
        cfg = write_config({});
    }

    std::string write_config(ConfigOptions o) {
        o.log_level = "debug";
        if (o.batch_size == 1000)
            o.batch_size = 100;
        const std::string path = dir + "/scheduler" + std::to_string(configs_++) + ".conf";
        write_file(path, djinn_config(db, o));
        return path;
    }

    // `n` crons due now, of users 1..10 in turn.
    void add_due(int n) {
        db.exec(
            "INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run) "
            "SELECT 1 + i % 10, 1 + i % 10, 'cron ' || i || ' ' || md5(random()::text), 'daily', "
            "$m$" +
            std::string(kDockerManifest) +
            "$m$, (now() AT TIME ZONE 'UTC') - interval '1 minute' FROM generate_series(1, " +
            std::to_string(n) + ") AS i");
    }

    // A database that has lived: `n` finished builds of a year ago, numbered 1..k per user, half
    // of them cron builds, each with its driver row (what the sweep could read).
    void add_history(int n) {
        db.exec(
            "INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run) VALUES "
            "(1, 1, 'old cron', 'daily', $m$" +
            std::string(kDockerManifest) +
            "$m$, (now() AT TIME ZONE 'UTC') + interval '1 day');"
            "CREATE TEMP TABLE h AS SELECT i AS id, 1 + (i - 1) % 10 AS user_id, "
            "1 + (i - 1) / 10 AS number, (now() AT TIME ZONE 'UTC') - interval '400 days' "
            "+ i * interval '1 minute' AS at FROM generate_series(1, " +
            std::to_string(n) +
            ") AS i;"
            "INSERT INTO builds (id, user_id, number, manifest, status, secret, created_at, "
            "started_at, finished_at) SELECT id, user_id, number, 'driver: {type: docker}', "
            "'passed', md5(id::text), at, at, at + interval '1 minute' FROM h;"
            "SELECT setval('builds_id_seq', " +
            std::to_string(n) +
            ");"
            "INSERT INTO build_drivers (build_id, type, config) SELECT id, 'docker', '{}' FROM h;"
            "INSERT INTO cron_builds (cron_id, build_id, created_at) "
            "SELECT (SELECT id FROM cron WHERE name = 'old cron'), id, at FROM h "
            "WHERE id % 2 = 0 ORDER BY h.id;"
            "DROP TABLE h; ANALYZE");
    }

    ProcessResult once(const std::string& path,
                       const std::map<std::string, std::string>& env = {}) {
        return run_scheduler({"-config", path, "-once"}, env);
    }
    ProcessResult once(const std::map<std::string, std::string>& env = {}) {
        return once(cfg, env);
    }

    std::string watermark_key() {
        return "djinn-scheduler:watermark:" + db.name() + ":" +
               db.scalar("SELECT oid FROM pg_database WHERE datname = current_database()");
    }

    std::int64_t cron_builds_seq() { return db.count("SELECT last_value FROM cron_builds_id_seq"); }

    std::vector<std::int64_t> queued_cron_builds() {
        std::vector<std::int64_t> out;
        pqxx::nontransaction tx(db.admin());
        for (const auto& row : tx.exec("SELECT b.id FROM builds b JOIN cron_builds cb "
                                       "ON cb.build_id = b.id WHERE b.status = 'queued' "
                                       "ORDER BY b.id"))
            out.push_back(row[0].as<std::int64_t>());
        return out;
    }

    // Builds committed by "the original" (ours in one batch, with the enqueue failing), and jobs
    // written for all but `lost` of them exactly as the original writes them: random ids, no
    // marker; and no watermark (the original keeps none: ours starts for the first time).
    struct Original {
        std::vector<std::int64_t> with_job;
        std::vector<std::int64_t> lost;
        std::map<std::int64_t, std::string> job_of;
    };
    Original make_original(int n, int lost) {
        Original o;
        add_due(n);
        ConfigOptions one_batch;
        one_batch.batch_size = 5000;
        auto r =
            once(write_config(one_batch), {{"DJINN_FAILPOINTS", "enqueue.round=runtime_error"}});
        EXPECT_EQ(r.exit_code, 1) << r.output;
        redis.command({"DEL", watermark_key()});
        const auto ids = queued_cron_builds();
        EXPECT_EQ(static_cast<int>(ids.size()), n);
        EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}), 0);
        for (std::size_t i = 0; i < ids.size(); ++i) {
            if (static_cast<int>(i) < lost) {
                o.lost.push_back(ids[i]);
            } else {
                o.with_job.push_back(ids[i]);
                o.job_of[ids[i]] = enqueue_like_the_original(redis, "docker", ids[i]);
            }
        }
        return o;
    }

    // Every queued cron build has exactly one job, no build has two, no id is on the list twice,
    // and every id on the list has its data.
    void expect_one_job_each(Redis& r, const std::vector<std::int64_t>& builds) {
        const QueueContents q = queue_contents(r, "docker");
        EXPECT_EQ(q.duplicated(), std::vector<std::int64_t>{}) << "a build enqueued twice";
        EXPECT_EQ(q.active_twice(), 0u) << "a job id twice on builds_docker:active";
        EXPECT_EQ(q.active_without_data(r, "docker"), 0u);
        std::size_t without = 0;
        for (auto b : builds)
            without += q.jobs_of.count(b) == 0 ? 1U : 0U;
        EXPECT_EQ(without, 0u) << "queued build(s) without a job";
    }

    std::vector<std::string> markers(Redis& r) {
        std::vector<std::string> out;
        std::string cursor = "0";
        do {
            auto page =
                r.command({"SCAN", cursor, "MATCH", "djinn-scheduler:enqueued:*", "COUNT", "1000"});
            cursor = page.at(0);
            out.insert(out.end(), page.begin() + 1, page.end());
        } while (cursor != "0");
        return out;
    }

    TestDatabase db;
    Redis redis;
    std::string dir;
    std::string cfg;
    int configs_ = 0;
};

TEST_F(RecoveryTest, AfterACrashTheSweepReadsOnlyWhatCameAfterTheWatermark) {
    add_history(100000);
    add_due(300);
    auto first = once();
    ASSERT_EQ(first.exit_code, 0) << first.output;
    EXPECT_NE(first.output.find("recovery: no watermark in Redis"), std::string::npos)
        << first.output;
    EXPECT_EQ(
        redis.get_str({"GET", watermark_key()}).rfind(std::to_string(cron_builds_seq()) + " ", 0),
        0u)
        << "the pass moved the watermark past its own builds";
    // The numbers go on from the history (10,000 builds per user).
    EXPECT_EQ(db.count("SELECT min(number) FROM builds WHERE id > 100000 AND user_id = 1"), 10001);

    // A crash between the commit and the enqueue (the enqueue throws): 50 builds without jobs.
    add_due(50);
    auto crashed = once({{"DJINN_FAILPOINTS", "enqueue.round=runtime_error"}});
    ASSERT_EQ(crashed.exit_code, 1) << crashed.output;
    ASSERT_EQ(queued_cron_builds().size(), 350u);

    // The next pass reads the 50 cron builds above the watermark, nothing of the 300 before them
    // or of the 50,000 of history, and enqueues the 50.
    auto r = once();
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("recovery: enqueued 50 committed build(s) that had no queue job, "
                            "adopted 0 job(s) of another writer (50 queued build(s) checked in "
                            "Redis of 50 cron build(s) read)"),
              std::string::npos)
        << r.output;
    expect_one_job_each(redis, queued_cron_builds());
    EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}), 350);

    // Idle: nothing to read.
    auto idle = once();
    ASSERT_EQ(idle.exit_code, 0) << idle.output;
    EXPECT_EQ(idle.output.find("checked in Redis"), std::string::npos) << idle.output;
    EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}), 350);
    EXPECT_EQ(db.count("SELECT count(*) FROM (SELECT user_id, number FROM builds GROUP BY "
                       "user_id, number HAVING count(*) > 1) d"),
              0);
}

TEST_F(RecoveryTest, WithoutAUsableWatermarkTheWindowIsSweptAndNothingIsEnqueuedTwice) {
    add_due(200);
    ASSERT_EQ(once().exit_code, 0);
    ASSERT_EQ(redis.integer({"LLEN", "builds_docker:active"}), 200);

    // Lost (a flushed or restored Redis, or the first start): the recovery window is swept.
    redis.command({"DEL", watermark_key()});
    auto lost = once();
    ASSERT_EQ(lost.exit_code, 0) << lost.output;
    EXPECT_NE(lost.output.find("recovery: no watermark in Redis"), std::string::npos);
    EXPECT_NE(lost.output.find("recovery: 200 cron build(s) read, 200 checked in Redis, none "
                               "without a job (recovery window)"),
              std::string::npos)
        << lost.output;
    EXPECT_FALSE(redis.get_str({"GET", watermark_key()}).empty());

    // Above the sequence: the database was restored from a backup, say.
    redis.command({"SET", watermark_key(), "999999999 0"});
    auto restored = once();
    ASSERT_EQ(restored.exit_code, 0) << restored.output;
    EXPECT_NE(restored.output.find("is above cron_builds_id_seq"), std::string::npos)
        << restored.output;

    // And with every marker gone too: the jobs themselves say "enqueued".
    redis.command({"DEL", watermark_key()});
    for (const auto& m : markers(redis))
        redis.command({"DEL", m});
    auto bare = once();
    ASSERT_EQ(bare.exit_code, 0) << bare.output;
    EXPECT_NE(bare.output.find("recovery: 200 enqueue marker(s) written back"), std::string::npos)
        << bare.output;
    EXPECT_EQ(markers(redis).size(), 200u);
    EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}), 200);
    expect_one_job_each(redis, queued_cron_builds());
}

TEST_F(RecoveryTest, TheWatermarkNeverMovesPastAnOpenTransactionOfAnotherWriter) {
    add_due(20);
    ASSERT_EQ(once().exit_code, 0);
    // Another writer of cron builds (a -once beside, the original scheduler) has taken a
    // cron_builds id and not committed yet.
    auto other = db.new_admin_session();
    pqxx::work open(*other);
    const std::int64_t foreign =
        open.exec1(
                "INSERT INTO builds (user_id, number, manifest, status, secret) VALUES "
                "(3, 100, 'driver: {type: docker}', 'queued', 'x') RETURNING id")[0]
            .as<std::int64_t>();
    open.exec("INSERT INTO build_drivers (build_id, type, config) VALUES (" +
              std::to_string(foreign) + ", 'docker', '{}')");
    open.exec("INSERT INTO cron_builds (cron_id, build_id) VALUES ((SELECT min(id) FROM cron), " +
              std::to_string(foreign) + ")");
    // A pass beside it: its own builds take later ids and commit.
    add_due(5);
    auto beside = once();
    ASSERT_EQ(beside.exit_code, 0) << beside.output;
    EXPECT_NE(beside.output.find("another session is writing cron builds; watermark kept"),
              std::string::npos)
        << beside.output;
    open.commit();
    // The next sweep still reads above the old watermark, so it finds the build committed late.
    auto after = once();
    ASSERT_EQ(after.exit_code, 0) << after.output;
    EXPECT_NE(after.output.find("recovery: enqueued 1 committed build(s)"), std::string::npos)
        << after.output;
    const QueueContents q = queue_contents(redis, "docker");
    ASSERT_EQ(q.jobs_of.count(foreign), 1u) << "the late build never got a job";
    EXPECT_EQ(q.jobs_of.at(foreign), std::vector<std::string>{queue::build_job_id(foreign)});
    expect_one_job_each(redis, queued_cron_builds());
}

TEST_F(RecoveryTest, SwitchOverAdoptsTheOriginalsJobsAndEnqueuesOnlyWhatItLost) {
    Original o = make_original(60, 10);
    // Also on the queue: a manual build's job (the server's, not a cron build) and bytes that are
    // no curlyq message.
    enqueue_like_the_original(redis, "docker", 424242);
    redis.command({"HSET", "builds_docker:data", "not-a-job", "garbage"});

    auto r = once();
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("recovery: adopted 50 job(s)"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("recovery: enqueued 10 committed build(s) that had no queue job, "
                            "adopted 50 job(s) of another writer"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("are no curlyq build message"), std::string::npos) << r.output;
    redis.command({"HDEL", "builds_docker:data", "not-a-job"});
    const QueueContents q = queue_contents(redis, "docker");
    for (auto b : o.with_job) {
        ASSERT_EQ(q.jobs_of.count(b), 1u) << b;
        EXPECT_EQ(q.jobs_of.at(b), std::vector<std::string>{o.job_of.at(b)}) << b;
        EXPECT_EQ(redis.get_str({"GET", "djinn-scheduler:enqueued:" + std::to_string(b)}),
                  o.job_of.at(b));
    }
    for (auto b : o.lost) {
        ASSERT_EQ(q.jobs_of.count(b), 1u) << b;
        EXPECT_EQ(q.jobs_of.at(b), std::vector<std::string>{queue::build_job_id(b)});
    }
    EXPECT_EQ(q.jobs_of.count(424242), 1u);
    expect_one_job_each(redis, queued_cron_builds());
    EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}), 61);

    // Again, then with every marker evicted and no watermark: still one job each.
    ASSERT_EQ(once().exit_code, 0);
    for (const auto& m : markers(redis))
        redis.command({"DEL", m});
    redis.command({"DEL", watermark_key()});
    auto evicted = once();
    ASSERT_EQ(evicted.exit_code, 0) << evicted.output;
    EXPECT_NE(evicted.output.find("recovery: 10 enqueue marker(s) written back"), std::string::npos)
        << evicted.output;
    EXPECT_NE(evicted.output.find("recovery: adopted 50 job(s)"), std::string::npos)
        << evicted.output;
    expect_one_job_each(redis, queued_cron_builds());
    EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}), 61);
}

#ifdef DJINN_FAILPOINTS
TEST_F(RecoveryTest, SwitchOverKilledDuringItsFirstPassAndRestartedNeverDuplicates) {
    Original o = make_original(400, 40);
    add_due(300);  // due as ours starts: its first pass dispatches them too
    // SIGKILL (as kill -9 would) at each place of the first pass where a crash could duplicate:
    // after adopting, before enqueueing what the original lost; after that, before the watermark;
    // while the first batch is enqueued (committed, not yet queued); after a later batch.
    for (const char* spec : {"recovery.enqueue=kill", "recovery.advance=kill",
                             "enqueue.round=kill*1", "batch.commit=kill*2"}) {
        SCOPED_TRACE(spec);
        auto r = once({{"DJINN_FAILPOINTS", spec}});
        EXPECT_EQ(r.exit_code, -SIGKILL) << r.output;
        const QueueContents q = queue_contents(redis, "docker");
        EXPECT_EQ(q.duplicated(), std::vector<std::int64_t>{});
        EXPECT_EQ(q.active_twice(), 0u);
    }
    // And at moments no failpoint chooses: the service, killed 50-600 ms after each start.
    std::mt19937 rng(13);
    ConfigOptions svc;
    svc.interval = "1s";
    const std::string service = write_config(svc);
    for (int round = 0; round < 6; ++round) {
        add_due(100);
        SchedulerProcess p({"-config", service});
        std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 550));
        p.signal(SIGKILL);
        EXPECT_EQ(p.wait(10s), -SIGKILL);
        const QueueContents q = queue_contents(redis, "docker");
        EXPECT_EQ(q.duplicated(), std::vector<std::int64_t>{}) << "round " << round;
        EXPECT_EQ(q.active_twice(), 0u) << "round " << round;
    }
    auto last = once();
    ASSERT_EQ(last.exit_code, 0) << last.output;
    EXPECT_EQ(db.count("SELECT count(*) FROM cron WHERE next_run <= now() AT TIME ZONE 'UTC'"), 0);
    const auto queued = queued_cron_builds();
    EXPECT_EQ(queued.size(), 400u + 300u + 600u);
    expect_one_job_each(redis, queued);
    EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}),
              static_cast<long long>(queued.size()));
    const QueueContents q = queue_contents(redis, "docker");
    for (auto b : o.with_job)
        EXPECT_EQ(q.jobs_of.at(b), std::vector<std::string>{o.job_of.at(b)}) << b;
}
#endif

// Redis under memory pressure: `policy`, maxmemory 2 MB above what it holds now, and another
// component writing 1 KB values (with a TTL or without) until `done` (or 200 MB written).
void squeeze(Redis& r, const std::string& policy, bool filler_ttl,
             const std::function<bool()>& done) {
    const std::string info = r.get_str({"INFO", "memory"});
    const std::int64_t used = std::stoll(info.substr(info.find("used_memory:") + 12));
    r.command({"CONFIG", "SET", "maxmemory", std::to_string(used + (2 << 20))});
    r.command({"CONFIG", "SET", "maxmemory-policy", policy});
    const std::string value(1024, 'x');
    for (int i = 0; i < 200000 && !done(); i += 500) {
        for (int k = i; k < i + 500; ++k) {
            std::vector<std::string> set = {"SET", "other:" + std::to_string(k), value};
            if (filler_ttl)
                set.insert(set.end(), {"EX", "3600"});
            r.command(set);
        }
    }
}

std::int64_t evicted_keys(Redis& r) {
    const std::string stats = r.get_str({"INFO", "stats"});
    return std::stoll(stats.substr(stats.find("evicted_keys:") + 13));
}

TEST_F(RecoveryTest, VolatileLruEvictsOnlyMarkersAndNoBuildIsEnqueuedTwice) {
    RedisServer own;
    ConfigOptions o;
    o.redis_addr = own.addr();
    cfg = write_config(o);
    auto r = own.client();
    add_due(2000);
    ASSERT_EQ(once().exit_code, 0);
    ASSERT_EQ(markers(*r).size(), 2000u);
    // Keys with a TTL go first: our markers (then the other component's own keys), never the
    // jobs or the watermark, which have none.
    squeeze(*r, "volatile-lru", true, [&] { return markers(*r).size() < 100; });
    const std::size_t left = markers(*r).size();
    EXPECT_LT(left, 100u) << "the markers were not evicted: the test shows nothing";
    EXPECT_GT(evicted_keys(*r), 1900);
    EXPECT_EQ(r->integer({"HLEN", "builds_docker:data"}), 2000);
    EXPECT_FALSE(r->get_str({"GET", watermark_key()}).empty());

    add_due(100);
    auto after = once();
    ASSERT_EQ(after.exit_code, 0) << after.output;
    EXPECT_NE(after.output.find("since Redis started (maxmemory-policy volatile-lru): only keys "
                                "with a TTL"),
              std::string::npos)
        << after.output;
    expect_one_job_each(*r, queued_cron_builds());
    EXPECT_EQ(r->integer({"LLEN", "builds_docker:active"}), 2100);

    // The worst case: no watermark either (a first start): every build is checked, its job
    // found by its id, its marker written back.
    r->command({"DEL", watermark_key()});
    auto bare = once();
    ASSERT_EQ(bare.exit_code, 0) << bare.output;
    EXPECT_NE(bare.output.find("enqueue marker(s) written back"), std::string::npos) << bare.output;
    EXPECT_EQ(bare.output.find("recovery: enqueued"), std::string::npos) << bare.output;
    expect_one_job_each(*r, queued_cron_builds());
    EXPECT_EQ(r->integer({"LLEN", "builds_docker:active"}), 2100);
}

TEST_F(RecoveryTest, AllkeysLruNeverEnqueuesABuildTwiceAndReportsWhatItLost) {
    RedisServer own;
    ConfigOptions o;
    o.redis_addr = own.addr();
    cfg = write_config(o);
    auto r = own.client();
    add_due(2000);
    ASSERT_EQ(once().exit_code, 0);
    // Anything goes: markers, the watermark, the queue's data hash, its active list.
    squeeze(*r, "allkeys-lru", false, [&] {
        return evicted_keys(*r) > 2500 &&
               (r->integer({"EXISTS", "builds_docker:data"}) == 0 || markers(*r).size() < 1000);
    });
    const bool data_gone = r->integer({"EXISTS", "builds_docker:data"}) == 0;
    const bool list_gone = r->integer({"EXISTS", "builds_docker:active"}) == 0;
    const std::size_t marks = markers(*r).size();
    SCOPED_TRACE("after eviction: data hash " + std::string(data_gone ? "gone" : "there") +
                 ", active list " + (list_gone ? "gone" : "there") + ", " + std::to_string(marks) +
                 " marker(s), watermark " +
                 (r->get_str({"GET", watermark_key()}).empty() ? "gone" : "there"));

    // A pass while Redis is still full and evicting (its own writes included): whatever goes,
    // never two jobs for one build, never an id twice on the list; and it is said.
    add_due(100);
    auto under = once();
    ASSERT_EQ(under.exit_code, 0) << under.output;
    EXPECT_NE(under.output.find("Redis runs with maxmemory-policy allkeys-lru"), std::string::npos)
        << under.output;
    EXPECT_NE(under.output.find("since Redis started (maxmemory-policy allkeys-lru): queue jobs "
                                "may have been lost"),
              std::string::npos)
        << under.output;
    if (data_gone && marks > 0) {
        EXPECT_NE(under.output.find("had an enqueue marker but their job is in no queue"),
                  std::string::npos)
            << under.output;
    }
    {
        const QueueContents q = queue_contents(*r, "docker");
        EXPECT_EQ(q.duplicated(), std::vector<std::int64_t>{}) << "a build enqueued twice";
        EXPECT_EQ(q.active_twice(), 0u) << "a job id twice on builds_docker:active";
    }
    // Memory to spare again: the next pass sees the evictions since its watermark, sweeps the
    // window, and every build lost is back, once.
    r->command({"CONFIG", "SET", "maxmemory", "0"});
    auto relieved = once();
    ASSERT_EQ(relieved.exit_code, 0) << relieved.output;
    expect_one_job_each(*r, queued_cron_builds());
    // Ids whose list entry alone was evicted cannot be told from jobs a worker holds: they are
    // not pushed again (see docs/deployment.md), so the list holds at most one id per build.
    EXPECT_LE(r->integer({"LLEN", "builds_docker:active"}), 2100);
    auto again = once();
    ASSERT_EQ(again.exit_code, 0) << again.output;
    expect_one_job_each(*r, queued_cron_builds());
}

}  // namespace
}  // namespace djinn::testing
