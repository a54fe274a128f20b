// Running as a fleet: real djinn-scheduler replicas against one PostgreSQL and Redis. Leader
// election, failover on kill -9 / terminated backend / PostgreSQL restart, SIGTERM drain, and
// the HTTP endpoints, with exactly-once dispatch checked from the database and the queues.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <set>
#include <thread>

#include "queue/curlyq_codec.hpp"
#include "test_env.hpp"

namespace djinn::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class Fleet : public ::testing::Test {
  protected:
    void SetUp() override {
        redis.flushall();
        db.exec(
            "SET TIME ZONE 'UTC'; INSERT INTO users (id, email, username, password) VALUES "
            "(1, 'ops@example.com', 'ops', '\\x00')");
        dir = temp_dir();
    }

    // n crons, the first due `first` from now, then one every `step`.
    void add_crons(int n, std::chrono::milliseconds first, std::chrono::milliseconds step) {
        db.exec(
            "INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run) "
            "SELECT 1, 1, 'fleet ' || i, 'daily', 'driver: {type: docker, image: alpine, "
            "workspace: /src}\nstages: [test]\njobs:\n- stage: test\n  commands: [make]', "
            "(now() AT TIME ZONE 'UTC') + make_interval(secs => " +
            std::to_string(std::chrono::duration<double>(first).count()) + " + i * " +
            std::to_string(std::chrono::duration<double>(step).count()) +
            ") FROM generate_series(0, " + std::to_string(n - 1) + ") AS i");
    }

    std::unique_ptr<SchedulerProcess> start(const std::string& name, ConfigOptions o = {}) {
        o.pidfile = dir + "/" + name + ".pid";
        o.http_addr = "127.0.0.1:0";
        if (o.interval == "1m")
            o.interval = "5s";
        std::string path = dir + "/" + name + ".conf";
        write_file(path, djinn_config(db, o));
        auto p = std::make_unique<SchedulerProcess>(std::vector<std::string>{"-config", path});
        EXPECT_TRUE(eventually([&] { return logged_http_port(p->output()) > 0; }, 10s))
            << p->output();
        return p;
    }

    static int port(SchedulerProcess& p) { return logged_http_port(p.output()); }

    static bool leads(SchedulerProcess& p) { return scheduler_leads(p); }

    // Index of the one leader among `ps`, or -1 when there is not exactly one.
    static int sole_leader(std::vector<SchedulerProcess*> ps) {
        int leader = -1, count = 0;
        for (std::size_t i = 0; i < ps.size(); ++i) {
            if (ps[i]->running() && leads(*ps[i])) {
                leader = static_cast<int>(i);
                ++count;
            }
        }
        return count == 1 ? leader : -1;
    }

    // Exactly one build per cron, one queue job per build, and every build whole.
    void expect_exactly_once(int crons) {
        EXPECT_EQ(db.count("SELECT count(*) FROM cron"), crons);
        EXPECT_EQ(db.count("SELECT count(*) FROM cron c LEFT JOIN (SELECT cron_id, count(*) AS n "
                           "FROM cron_builds GROUP BY cron_id) cb ON cb.cron_id = c.id WHERE "
                           "coalesce(cb.n, 0) <> 1"),
                  0)
            << "crons without exactly one build";
        // Whole builds: a trigger, a tag, a driver, the setup and test stages, create-driver and
        // the test job.
        auto per_build = [](const char* table) {
            return std::string("LEFT JOIN (SELECT build_id, count(*) AS n FROM ") + table +
                   " GROUP BY build_id) " + table + " ON " + table + ".build_id = b.id ";
        };
        EXPECT_EQ(db.count("SELECT count(*) FROM builds b " + per_build("build_triggers") +
                           per_build("build_tags") + per_build("build_drivers") +
                           per_build("build_stages") + per_build("build_jobs") +
                           "WHERE coalesce(build_triggers.n, 0) <> 1 OR coalesce(build_tags.n, 0) "
                           "<> 1 OR coalesce(build_drivers.n, 0) <> 1 OR "
                           "coalesce(build_stages.n, 0) <> 2 OR coalesce(build_jobs.n, 0) <> 2"),
                  0)
            << "half-written builds";
        auto ids = redis.command({"LRANGE", "builds_docker:active", "0", "-1"});
        std::multiset<std::int64_t> queued;
        for (const auto& id : ids) {
            std::string msg = redis.get_str({"HGET", "builds_docker:data", id});
            std::int64_t build = message_build_id(msg);
            EXPECT_EQ(msg, queue::curlyq_message(id, queue::gob_payload("djinn-scheduler", build)));
            queued.insert(build);
        }
        std::set<std::int64_t> unique(queued.begin(), queued.end());
        EXPECT_EQ(queued.size(), unique.size()) << "a build was enqueued twice";
        EXPECT_EQ(static_cast<std::int64_t>(queued.size()), db.count("SELECT count(*) FROM builds"))
            << "builds without a job or jobs without a build";
        // Every queued build is a cron build (one set-based check, not one query per build).
        std::string literal = "{";
        for (auto b : unique)
            literal += (literal.size() > 1 ? "," : "") + std::to_string(b);
        literal += "}";
        EXPECT_EQ(db.count("SELECT count(*) FROM unnest('" + literal +
                           "'::bigint[]) AS q(id) WHERE "
                           "NOT EXISTS (SELECT 1 FROM cron_builds cb WHERE cb.build_id = q.id)"),
                  0);
    }

    bool all_dispatched(int crons) {
        return db.count("SELECT count(DISTINCT cron_id) FROM cron_builds") == crons &&
               redis.integer({"LLEN", "builds_docker:active"}) == crons;
    }

    TestDatabase db;
    Redis redis;
    std::string dir;
};

TEST_F(Fleet, ThreeReplicasElectExactlyOneLeaderAndServeEndpoints) {
    auto a = start("a"), b = start("b"), c = start("c");
    std::vector<SchedulerProcess*> all{a.get(), b.get(), c.get()};
    ASSERT_TRUE(eventually([&] { return sole_leader(all) >= 0; }, 10s));
    // Stays exactly one for a while (several standby retries).
    for (int i = 0; i < 10; ++i) {
        EXPECT_GE(sole_leader(all), 0);
        std::this_thread::sleep_for(300ms);
    }
    for (auto* p : all) {
        EXPECT_EQ(http_get(port(*p), "/healthz").status, 200);
        auto ready = http_get(port(*p), "/readyz");
        EXPECT_EQ(ready.status, 200) << ready.body;
        EXPECT_NE(ready.body.find("ready"), std::string::npos);
        EXPECT_EQ(http_get(port(*p), "/nope").status, 404);
    }
    auto metrics = http_get(port(*all[static_cast<std::size_t>(sole_leader(all))]), "/metrics");
    for (const char* name :
         {"djinn_scheduler_leader", "djinn_scheduler_leader_transitions_total",
          "djinn_scheduler_builds_dispatched_total", "djinn_scheduler_crons_skipped_total",
          "djinn_scheduler_enqueue_retries_total", "djinn_scheduler_errors_total",
          "djinn_scheduler_pass_duration_seconds", "djinn_scheduler_dispatch_delay_seconds",
          "djinn_scheduler_due_crons", "djinn_scheduler_last_pass_timestamp_seconds",
          "djinn_scheduler_build_info", "process_cpu_seconds_total",
          "process_resident_memory_bytes"}) {
        EXPECT_NE(metrics.body.find(std::string("\n") + name), std::string::npos) << name;
    }
}

TEST_F(Fleet, KillNineOfTheLeaderLosesAndDuplicatesNothing) {
    const int crons = 200;
    add_crons(crons, 1000ms, 150ms);  // due one after another over 30 s
    auto a = start("a"), b = start("b");
    std::vector<SchedulerProcess*> both{a.get(), b.get()};
    ASSERT_TRUE(eventually([&] { return sole_leader(both) >= 0; }, 10s));
    std::this_thread::sleep_for(12s);  // mid-stream
    int leader = sole_leader(both);
    ASSERT_GE(leader, 0);
    SchedulerProcess* dead = both[static_cast<std::size_t>(leader)];
    SchedulerProcess* standby = both[static_cast<std::size_t>(1 - leader)];
    auto killed_at = Clock::now();
    dead->signal(SIGKILL);
    ASSERT_TRUE(eventually([&] { return leads(*standby); }, 5s))
        << "the standby did not lead within 5 s of kill -9\n"
        << standby->output();
    auto took = std::chrono::duration<double>(Clock::now() - killed_at).count();
    std::printf("[ measure ] kill -9 of the leader -> standby leads after %.2f s\n", took);
    ASSERT_TRUE(eventually([&] { return all_dispatched(crons); }, 40s))
        << "builds " << db.count("SELECT count(*) FROM cron_builds") << ", jobs "
        << redis.integer({"LLEN", "builds_docker:active"}) << "\n"
        << standby->output();
    expect_exactly_once(crons);
}

TEST_F(Fleet, TerminatedLockSessionStepsDownAndCommitsNothingWithoutTheLock) {
    auto a = start("a"), b = start("b");
    std::vector<SchedulerProcess*> both{a.get(), b.get()};
    ASSERT_TRUE(eventually([&] { return sole_leader(both) >= 0; }, 10s));
    int leader = sole_leader(both);
    SchedulerProcess* old = both[static_cast<std::size_t>(leader)];
    add_crons(300, 0ms, 10ms);
    auto at = Clock::now();
    db.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND "
        "granted AND database = (SELECT oid FROM pg_database WHERE datname = "
        "current_database())");
    ASSERT_TRUE(
        eventually([&] { return old->output().find("leadership lost") != std::string::npos; }, 5s))
        << old->output();
    ASSERT_TRUE(eventually([&] { return sole_leader(both) >= 0; }, 10s));
    std::printf("[ measure ] lock session terminated -> a leader again after %.2f s\n",
                std::chrono::duration<double>(Clock::now() - at).count());
    ASSERT_TRUE(eventually([&] { return all_dispatched(300); }, 30s));
    expect_exactly_once(300);
}

TEST_F(Fleet, PostgresRestartDuringAPassLosesAndDuplicatesNothing) {
    const int crons = 3000;
    add_crons(crons, 0ms, 0ms);
    auto a = start("a"), b = start("b");
    ASSERT_TRUE(eventually([&] { return db.count("SELECT count(*) FROM cron_builds") > 0; }, 20s));
    std::string cmd = "runuser -u postgres -- " + required_env("DJINN_TEST_PGBIN") + "/pg_ctl -D " +
                      required_env("DJINN_TEST_PGDATA") + " restart -m fast -w -t 60 >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    ASSERT_TRUE(eventually(
        [&] {
            try {
                return all_dispatched(crons);
            } catch (const std::exception&) {
                return false;  // our own session died with the restart: retry
            }
        },
        60s))
        << a->output() << b->output();
    expect_exactly_once(crons);
    std::vector<SchedulerProcess*> both{a.get(), b.get()};
    EXPECT_TRUE(eventually([&] { return sole_leader(both) >= 0; }, 10s));
}

TEST_F(Fleet, SigtermMidBurstDrainsReleasesAndExitsZero) {
    const int crons = 20000;
    add_crons(crons, 0ms, 0ms);
    auto a = start("a");
    ASSERT_TRUE(eventually([&] { return leads(*a); }, 10s));
    auto b = start("b");
    ASSERT_TRUE(
        eventually([&] { return db.count("SELECT count(*) FROM cron_builds") >= 1000; }, 30s));
    auto at = Clock::now();
    a->signal(SIGTERM);
    int rc = a->wait(10s);
    auto took = std::chrono::duration<double>(Clock::now() - at).count();
    EXPECT_EQ(rc, 0) << a->output();
    std::printf("[ measure ] SIGTERM -> exit after %.2f s\n", took);
    struct stat st {};
    EXPECT_NE(::stat((dir + "/a.pid").c_str(), &st), 0) << "pidfile left behind";
    EXPECT_NE(a->output().find("leadership released"), std::string::npos) << a->output();
    ASSERT_TRUE(eventually([&] { return leads(*b); }, 5s)) << b->output();
    std::printf("[ measure ] SIGTERM -> the other replica leads after %.2f s\n",
                std::chrono::duration<double>(Clock::now() - at).count());
    ASSERT_TRUE(eventually([&] { return all_dispatched(crons); }, 90s));
    expect_exactly_once(crons);
}

// due_crons after a whole pass is what the pass left due (no count(*) over cron per pass): here
// two crons whose builds cannot be written (their owner's build numbers are exhausted), which
// stay due pass after pass, and not the crons due only later.
TEST_F(Fleet, DueCronsGaugeShowsTheCronsAPassLeftDue) {
    db.exec(
        "INSERT INTO users (id, email, username, password) VALUES "
        "(2, 'full@example.com', 'full', '\\x00');"
        "INSERT INTO builds (user_id, number, manifest, status, secret) VALUES "
        "(2, 2147483647, 'driver: {type: docker}', 'passed', 'x');");
    add_crons(3, -60s, 1ms);  // due
    add_crons(4, 3600s, 1s);  // due in an hour
    db.exec(
        "UPDATE cron SET user_id = 2, author_id = 2 WHERE name IN ('fleet 0', 'fleet 1') "
        "AND next_run < now() AT TIME ZONE 'UTC'");
    auto a = start("a");
    auto passes = [&] {
        return metric_value(http_get(port(*a), "/metrics").body,
                            "djinn_scheduler_passes_total{result=\"ok\"}");
    };
    ASSERT_TRUE(eventually([&] { return passes() >= 1; }, 20s)) << a->output();
    const double after = passes();
    // The next pass takes the two again and leaves them due again.
    ASSERT_TRUE(eventually([&] { return passes() > after; }, 20s)) << a->output();
    auto body = http_get(port(*a), "/metrics").body;
    EXPECT_EQ(metric_value(body, "djinn_scheduler_due_crons"), 2) << body;
    EXPECT_EQ(db.count("SELECT count(*) FROM cron_builds"), 1);
    EXPECT_EQ(db.count("SELECT count(*) FROM cron WHERE next_run <= now() AT TIME ZONE 'UTC'"), 2);
}

TEST_F(Fleet, ReadinessFollowsRedis) {
    ConfigOptions o;
    auto a = start("a", o);
    ASSERT_TRUE(eventually([&] { return http_get(port(*a), "/readyz").status == 200; }, 10s));
    // A replica whose Redis is unreachable is alive but not ready.
    std::string cfg = djinn_config(db, o);
    auto pos = cfg.find(redis_addr());
    cfg.replace(pos, redis_addr().size(), "127.0.0.1:1");
    cfg += "http {\n    addr \"127.0.0.1:0\"\n}\n";
    write_file(dir + "/noredis.conf", cfg);
    SchedulerProcess p({"-config", dir + "/noredis.conf"});
    ASSERT_TRUE(eventually([&] { return logged_http_port(p.output()) > 0; }, 10s));
    ASSERT_TRUE(eventually(
        [&] {
            auto r = http_get(logged_http_port(p.output()), "/readyz");
            return r.status == 503 && r.body.find("Redis") != std::string::npos;
        },
        10s))
        << p.output();
    EXPECT_EQ(http_get(logged_http_port(p.output()), "/healthz").status, 200);
}

}  // namespace
}  // namespace djinn::testing
