// The service loop of the real binary against a real PostgreSQL 15 and Redis 7, when things go
// wrong: a slow database, a stuck one, faults injected at every layer, a broken invariant, data
// the scheduler does not know, a leader whose lock is gone, Redis down in the middle of a pass,
// SIGTERM in the middle of a batch, two passes at once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <pqxx/pqxx>

#include <cstdio>
#include <memory>
#include <set>
#include <thread>

#include "queue/curlyq_codec.hpp"
#include "test_env.hpp"

namespace djinn::testing {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

constexpr const char* kManifest =
    "driver: {type: docker, image: alpine, workspace: /src}\nstages: [test]\njobs:\n"
    "- stage: test\n  commands: [make]";

class Service : public ::testing::Test {
  protected:
    void SetUp() override {
        redis.flushall();
        db.exec(
            "INSERT INTO users (id, email, username, password) VALUES "
            "(1, 'ops@example.com', 'ops', '\\x00')");
        dir = temp_dir();
    }

    // n crons due `first` from now (negative: already due), one every `step` after it.
    void add_crons(int n, std::chrono::milliseconds first = -60s,
                   std::chrono::milliseconds step = 0ms, const std::string& name = "svc") {
        db.exec(
            "INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run) "
            "SELECT 1, 1, '" +
            name + " ' || i, 'daily', '" + kManifest +
            "', (now() AT TIME ZONE 'UTC') + make_interval(secs => " +
            std::to_string(std::chrono::duration<double>(first).count()) + " + i * " +
            std::to_string(std::chrono::duration<double>(step).count()) +
            ") FROM generate_series(0, " + std::to_string(n - 1) + ") AS i");
    }

    std::string config(const std::string& name, ConfigOptions o) {
        o.pidfile = dir + "/" + name + ".pid";
        if (o.http_addr.empty())
            o.http_addr = "127.0.0.1:0";
        std::string path = dir + "/" + name + ".conf";
        write_file(path, djinn_config(db, o));
        return path;
    }

    std::unique_ptr<SchedulerProcess> start(const std::string& name, ConfigOptions o = {},
                                            const std::map<std::string, std::string>& env = {}) {
        if (o.interval == "1m")
            o.interval = "2s";
        auto p = std::make_unique<SchedulerProcess>(
            std::vector<std::string>{"-config", config(name, o)}, env);
        EXPECT_TRUE(eventually([&] { return logged_http_port(p->output()) > 0; }, 15s))
            << p->output();
        return p;
    }

    static int port(SchedulerProcess& p) { return logged_http_port(p.output()); }
    static double metric(SchedulerProcess& p, const std::string& name) {
        return scheduler_metric(p, name);
    }
    static bool leads(SchedulerProcess& p) { return scheduler_leads(p); }

    std::int64_t builds() { return db.count("SELECT count(*) FROM builds"); }
    std::int64_t due() {
        return db.count("SELECT count(*) FROM cron WHERE next_run <= now() AT TIME ZONE 'UTC'");
    }

    // Every cron has exactly one build and every build exactly one job on `r`.
    void expect_exactly_once(Redis& r, std::int64_t crons) {
        EXPECT_EQ(db.count("SELECT count(*) FROM cron c WHERE (SELECT count(*) FROM cron_builds cb "
                           "WHERE cb.cron_id = c.id) <> 1"),
                  0)
            << "crons without exactly one build";
        EXPECT_EQ(builds(), crons);
        std::multiset<std::int64_t> queued;
        for (const auto& id : r.command({"LRANGE", "builds_docker:active", "0", "-1"}))
            queued.insert(message_build_id(r.get_str({"HGET", "builds_docker:data", id})));
        EXPECT_EQ(static_cast<std::int64_t>(queued.size()), crons) << "jobs";
        EXPECT_EQ(std::set<std::int64_t>(queued.begin(), queued.end()).size(), queued.size())
            << "a build was enqueued twice";
    }
    void expect_exactly_once(std::int64_t crons) { expect_exactly_once(redis, crons); }

    // The backend pid of the scheduler session that runs a statement matching `like`, or 0.
    int busy_backend(const std::string& like) {
        auto other = db.new_admin_session();
        pqxx::nontransaction tx(*other);
        auto r = tx.exec_params(
            "SELECT pid FROM pg_stat_activity WHERE usename = 'djinn_scheduler' AND state = "
            "'active' AND query LIKE $1 LIMIT 1",
            like);
        return r.empty() ? 0 : r[0][0].as<int>();
    }

    // Every statement that updates cron takes `seconds` longer (an AFTER ... FOR EACH STATEMENT
    // trigger of the test's own: each batch advances its crons in one statement).
    void slow_cron_updates(double seconds) {
        db.exec(
            "CREATE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM pg_sleep(" +
            std::to_string(seconds) +
            "); RETURN NULL; END $$; CREATE TRIGGER test_slow AFTER UPDATE ON cron FOR EACH "
            "STATEMENT EXECUTE FUNCTION test_slow()");
    }

    TestDatabase db;
    Redis redis;
    std::string dir;
};

// A pass of about three minutes (9 batches of 20 s) on a slowed database: the probes that the
// chart's Deployment runs answer 200 all along (liveness is progress, not pass boundaries).
TEST_F(Service, APassOfMinutesOnASlowDatabaseKeepsEveryEndpointAnswering) {
    slow_cron_updates(20);
    add_crons(90);
    ConfigOptions o;
    o.batch_size = 10;
    o.interval = "10m";
    auto p = start("slow", o);
    ASSERT_TRUE(eventually([&] { return leads(*p); }, 15s)) << p->output();
    const auto started = Steady::now();
    int probes = 0;
    std::vector<std::string> failures;
    while (db.count("SELECT count(*) FROM cron_builds") < 90 && Steady::now() - started < 300s) {
        for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
            auto r = http_get(port(*p), path, 3000ms);
            ++probes;
            if (r.status != 200) {
                failures.push_back(std::string(path) + " " + std::to_string(r.status) + " at +" +
                                   std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                      Steady::now() - started)
                                                      .count()) +
                                   " s: " + r.body.substr(0, 80));
            }
        }
        std::this_thread::sleep_for(2s);
    }
    const double took = std::chrono::duration<double>(Steady::now() - started).count();
    std::printf("[ measure ] slow pass of 9 batches: %.0f s, %d probes, %zu not 200\n", took,
                probes, failures.size());
    EXPECT_GE(took, 150);  // the database really was slow: a pass longer than the window
    EXPECT_TRUE(failures.empty()) << failures.front();
    EXPECT_TRUE(p->running());
    expect_exactly_once(90);
}

// A database that stops answering in the middle of a statement (its backend frozen): /healthz
// turns 503 within the liveness window, and 200 again once the database is back.
TEST_F(Service, ADatabaseThatStopsAnsweringTurnsHealthz503WithinTheWindow) {
    slow_cron_updates(3);
    add_crons(30);
    ConfigOptions o;
    o.batch_size = 10;
    // A short window: statement_timeout 5 s, liveness 15 s (the shortest the config accepts).
    o.database_extra = "statement_timeout 5s";
    o.http_extra = "liveness_timeout 15s";
    SchedulerProcess p({"-config", config("stuck", o)});
    ASSERT_TRUE(eventually([&] { return logged_http_port(p.output()) > 0; }, 15s)) << p.output();
    int pid = 0;
    ASSERT_TRUE(eventually([&] { return (pid = busy_backend("%UPDATE cron c SET%")) > 0; }, 20s))
        << p.output();
    ASSERT_EQ(::kill(pid, SIGSTOP), 0);
    const auto frozen = Steady::now();
    const bool went_503 = eventually(
        [&] { return http_get(logged_http_port(p.output()), "/healthz", 1000ms).status == 503; },
        25s);
    const double after = std::chrono::duration<double>(Steady::now() - frozen).count();
    ::kill(pid, SIGCONT);
    ASSERT_TRUE(went_503) << p.output();
    std::printf("[ measure ] backend frozen mid-statement -> /healthz 503 after %.1f s\n", after);
    EXPECT_GE(after, 10);  // not before the window (15 s less the batch's head start)
    EXPECT_LE(after, 17);
    // Back: the statement ends (or is cancelled), the loop makes progress again.
    EXPECT_TRUE(eventually(
        [&] { return http_get(logged_http_port(p.output()), "/healthz", 1000ms).status == 200; },
        30s))
        << p.output();
    EXPECT_TRUE(p.running());
}

#ifdef DJINN_FAILPOINTS
// One process meets a fault at every layer, once each: opening the session, checking it, taking
// and verifying the lock, starting a pass, reading the due crons, every step of a batch, planning
// a manifest, enqueueing, pinging Redis. It keeps running, counts what failed, says what happened,
// and still dispatches every cron exactly once.
class ServiceFaults : public Service, public ::testing::WithParamInterface<const char*> {};

TEST_P(ServiceFaults, EveryLayerFailsOnceAndTheServiceGoesOn) {
    const std::string action = GetParam();
    const std::vector<std::string> points = {
        "session.open",  "session.check",    "lock.acquire",  "lock.verify",   "pass.start",
        "recovery.page", "batch.candidates", "batch.take",    "batch.rows",    "batch.write",
        "batch.advance", "batch.commit",     "plan.manifest", "enqueue.round", "queue.ping"};
    std::string spec;
    for (const auto& point : points)
        spec += (spec.empty() ? "" : ",") + point + "=" + action + "*1";
    add_crons(40, -60s);
    add_crons(20, 3s, 100ms, "later");
    ConfigOptions o;
    o.batch_size = 7;
    auto p = start("faults", o, {{"DJINN_FAILPOINTS", spec}});
    ASSERT_TRUE(eventually([&] { return due() == 0 && builds() == 60; }, 60s))
        << "builds " << builds() << ", due " << due() << "\n"
        << p->output();
    ASSERT_TRUE(eventually(
        [&] {
            return redis.integer({"LLEN", "builds_docker:active"}) == 60;
        },
        30s))
        << p->output();
    expect_exactly_once(60);
    EXPECT_TRUE(p->running()) << p->output();
    const std::string log = p->output();
    const std::string what = action == "int"         ? "not a std::exception"
                             : action == "bad_alloc" ? "bad_alloc"
                                                     : "injected " + action;
    EXPECT_NE(log.find(what), std::string::npos) << log;
    EXPECT_NE(log.find("internal error while"), std::string::npos) << log;
    if (action == "logic_error" || action == "runtime_error") {
        // Each fault was met, and the log names where. (A manifest's plan may belong to a batch
        // that another fault failed: PlanFailureKeepsTheCronDue shows that one alone.)
        for (const auto& point : points) {
            if (point == "plan.manifest")
                continue;
            EXPECT_NE(log.find("failpoint " + point + ": injected " + action), std::string::npos)
                << point << "\n"
                << log;
        }
    }
    EXPECT_GE(metric(*p, "djinn_scheduler_errors_total{kind=\"internal\"}"), 3) << log;
    EXPECT_GE(metric(*p, "djinn_scheduler_passes_total{result=\"error\"}"), 1) << log;
    EXPECT_EQ(http_get(port(*p), "/healthz").status, 200);
    p->signal(SIGTERM);
    EXPECT_EQ(p->wait(20s), 0) << p->output();
}

INSTANTIATE_TEST_SUITE_P(Actions, ServiceFaults,
                         ::testing::Values("logic_error", "runtime_error", "bad_alloc", "int"));

// Planning one manifest throws (out of memory, a bug): that cron is skipped for this pass and
// stays due, the others are dispatched, and the next pass dispatches it.
TEST_F(Service, PlanFailureKeepsTheCronDueForTheNextPass) {
    add_crons(5);
    ConfigOptions o;
    o.interval = "1s";
    auto p = start("plan", o, {{"DJINN_FAILPOINTS", "plan.manifest=runtime_error*1"}});
    ASSERT_TRUE(eventually([&] { return builds() == 5 && due() == 0; }, 20s)) << p->output();
    ASSERT_TRUE(eventually(
        [&] {
            return redis.integer({"LLEN", "builds_docker:active"}) == 5;
        },
        10s));
    expect_exactly_once(5);
    EXPECT_NE(p->output().find("skipped (plan_failed): planning the manifest failed: failpoint "
                               "plan.manifest: injected runtime_error; stays due"),
              std::string::npos)
        << p->output();
    EXPECT_EQ(metric(*p, "djinn_scheduler_crons_skipped_total{reason=\"plan_failed\"}"), 1);
}

// Reading the build numbers ahead throws (out of memory, a bug) in the leader's first, idle pass:
// that pass fails at its boundary, is counted, and is not retried in the session; the burst that
// follows reads the numbers itself and numbers on from the history.
TEST_F(Service, AFailedReadAheadOfTheNumbersLeavesThemToTheBurst) {
    db.exec(
        "INSERT INTO builds (user_id, number, manifest, status, secret) SELECT 1, n, 'm', "
        "'passed', 's' FROM generate_series(1, 4) AS n");
    add_crons(5, 3s);
    ConfigOptions o;
    o.interval = "1s";
    auto p = start("ahead", o, {{"DJINN_FAILPOINTS", "numbers.ahead=runtime_error*1"}});
    ASSERT_TRUE(eventually([&] { return builds() == 5 + 4 && due() == 0; }, 30s)) << p->output();
    ASSERT_TRUE(eventually(
        [&] {
            return redis.integer({"LLEN", "builds_docker:active"}) == 5;
        },
        10s));
    EXPECT_EQ(db.count("SELECT count(*) FROM cron c WHERE (SELECT count(*) FROM cron_builds cb "
                       "WHERE cb.cron_id = c.id) <> 1"),
              0);
    const std::string log = p->output();
    EXPECT_NE(log.find("internal error while reading the build numbers ahead: failpoint "
                       "numbers.ahead: injected runtime_error"),
              std::string::npos)
        << log;
    EXPECT_EQ(log.find("read ahead of the next burst"), std::string::npos) << log;
    EXPECT_EQ(db.count("SELECT count(*) FROM builds WHERE user_id = 1 AND number BETWEEN 5 AND 9"),
              5);
    EXPECT_GE(metric(*p, "djinn_scheduler_errors_total{kind=\"internal\"}"), 1) << log;
    EXPECT_TRUE(p->running());
}

// A broken invariant of our own is the one thing that may end the process: loudly, into the
// configured log, with the pidfile removed.
TEST_F(Service, ABrokenInvariantCrashesLoudlyIntoTheLogAndRemovesThePidfile) {
    add_crons(3);
    ConfigOptions o;
    o.log_file = dir + "/scheduler.log";
    auto path = config("crash", o);
    SchedulerProcess p({"-config", path}, {{"DJINN_FAILPOINTS", "batch.take=invariant"}});
    const int rc = p.wait(30s);
    EXPECT_EQ(rc, -SIGABRT) << p.output();
    const std::string log = read_file(dir + "/scheduler.log");
    EXPECT_NE(log.find("fatal broken invariant (a bug of djinn-scheduler): failpoint "
                       "batch.take"),
              std::string::npos)
        << log;
    struct stat st {};
    EXPECT_NE(::stat((dir + "/crash.pid").c_str(), &st), 0) << "pidfile left behind";
    EXPECT_EQ(builds(), 0);
    EXPECT_EQ(due(), 3);  // nothing half-written: the batch's transaction never committed
}
#else
TEST(ServiceFaults, NeedAFailpointBuild) {
    FAIL() << "configure with -DDJINN_FAILPOINTS=ON (scripts/test.sh does) to run the fault "
              "injection tests";
}
#endif

// A value the scheduler does not know (a newer Djinn's schedule) skips that cron with the reason;
// the others are dispatched; the process never dies of data.
TEST_F(Service, AnUnknownScheduleSkipsThatCronAndTheOthersAreDispatched) {
    db.exec("ALTER TYPE schedule ADD VALUE 'hourly'");
    add_crons(4);
    db.exec("UPDATE cron SET schedule = 'hourly' WHERE name = 'svc 2'");
    const std::string cron = db.scalar("SELECT id FROM cron WHERE name = 'svc 2'");
    ConfigOptions o;
    auto r = run_scheduler({"-config", config("enum", o), "-once"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(builds(), 3);
    EXPECT_NE(r.output.find("cron " + cron +
                            " skipped (bad_schedule): schedule \"hourly\" is "
                            "not daily, weekly or monthly; stays due"),
              std::string::npos)
        << r.output;
    EXPECT_EQ(due(), 1);
}

// A batch as big as a short lock_timeout allows (half of the config's bound here, for the
// sanitized builds' sake) commits in one transaction: nothing is parsed inside it and the
// client's work between two statements stays far below idle_in_transaction_session_timeout.
TEST_F(Service, ABigBatchDoesNotOutliveTheSessionTimeouts) {
    add_crons(10000);
    ConfigOptions o;
    o.batch_size = 10000;
    o.extra = "leader {\n    retry_interval 500ms\n    lock_timeout 2s\n}\n";
    auto r = run_scheduler({"-config", config("big", o), "-once"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("10000 cron(s) taken in 1 batch(es), 10000 build(s) made"),
              std::string::npos)
        << r.output;
    EXPECT_EQ(due(), 0);
    // And one that could not work is refused before it connects, saying why.
    o.batch_size = 30000;
    auto refused = run_scheduler({"-config", config("too-big", o), "-check-config"});
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_NE(refused.output.find("batch_size: 30000 crons per transaction need a "
                                  "leader.lock_timeout of at least 3s"),
              std::string::npos)
        << refused.output;
}

// Two `-once` passes at the same time (the README says -once is safe beside a fleet): each cron
// is built once, neither waits on the other's row locks, both succeed.
TEST_F(Service, ConcurrentPassesBuildEachCronOnce) {
    add_crons(3000);
    ConfigOptions o;
    o.batch_size = 100;
    const auto a = config("a", o), b = config("b", o);
    ProcessResult ra, rb;
    const auto started = Steady::now();
    std::thread ta([&] { ra = run_scheduler({"-config", a, "-once"}); });
    std::thread tb([&] { rb = run_scheduler({"-config", b, "-once"}); });
    ta.join();
    tb.join();
    std::printf("[ measure ] two concurrent -once passes over 3000 crons: %.1f s\n",
                std::chrono::duration<double>(Steady::now() - started).count());
    EXPECT_EQ(ra.exit_code, 0) << ra.output;
    EXPECT_EQ(rb.exit_code, 0) << rb.output;
    EXPECT_EQ(due(), 0);
    expect_exactly_once(3000);
}

// A leader whose lock session was ended and whose lock another session took at once: it steps
// down, and commits nothing while it does not hold the lock, however many crons fall due.
TEST_F(Service, ALeaderThatLostItsLockStepsDownAndCommitsNothing) {
    ConfigOptions o;
    o.interval = "1s";
    auto p = start("a", o);
    ASSERT_TRUE(eventually([&] { return leads(*p); }, 15s)) << p->output();
    auto thief = db.new_admin_session();
    constexpr std::int64_t kKey = 0x646a696e6e736368;
    db.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND "
        "granted AND database = (SELECT oid FROM pg_database WHERE datname = "
        "current_database())");
    ASSERT_TRUE(eventually(
        [&] {
            pqxx::nontransaction tx(*thief);
            return tx.exec_params1("SELECT pg_try_advisory_lock($1)", kKey)[0].as<bool>();
        },
        5s));
    add_crons(20);
    ASSERT_TRUE(eventually([&] { return !leads(*p); }, 10s)) << p->output();
    std::this_thread::sleep_for(6s);  // six ticks of 1 s
    EXPECT_EQ(builds(), 0) << p->output();
    EXPECT_EQ(metric(*p, "djinn_scheduler_leader"), 0);
    EXPECT_NE(p->output().find("leadership lost"), std::string::npos) << p->output();
    auto ready = http_get(port(*p), "/readyz");
    EXPECT_EQ(ready.status, 200);
    EXPECT_NE(ready.body.find("standby"), std::string::npos) << ready.body;
    // The lock is free again: it leads and dispatches every cron once.
    pqxx::nontransaction(*thief).exec_params("SELECT pg_advisory_unlock($1)", kKey);
    ASSERT_TRUE(eventually([&] { return builds() == 20; }, 15s)) << p->output();
    ASSERT_TRUE(eventually(
        [&] {
            return redis.integer({"LLEN", "builds_docker:active"}) == 20;
        },
        10s));
    expect_exactly_once(20);
}

#ifdef DJINN_FAILPOINTS
// Redis frozen while a pass commits its batch: the enqueue fails, the builds stay committed, and
// the same process (no restart, no other replica) enqueues them once Redis is back. The batch
// pauses before its commit (a failpoint) so that Redis freezes exactly then: a Redis already
// frozen when a pass starts fails that pass's sweep, and nothing is committed at all.
TEST_F(Service, RedisDownDuringAPassIsRecoveredByTheSameProcess) {
    RedisServer own;
    ConfigOptions o;
    o.interval = "2s";
    auto path = config("redis", o);
    std::string text = read_file(path);
    text.replace(text.find(redis_addr()), redis_addr().size(), own.addr());
    write_file(path, text);
    SchedulerProcess p({"-config", path}, {{"DJINN_FAILPOINTS", "batch.commit=pause3000*1"}});
    ASSERT_TRUE(eventually([&] { return logged_http_port(p.output()) > 0; }, 15s)) << p.output();
    ASSERT_TRUE(eventually([&] { return leads(p); }, 15s)) << p.output();
    add_crons(25);
    ASSERT_TRUE(eventually(
        [&] { return p.output().find("failpoint batch.commit: pausing") != std::string::npos; },
        20s))
        << p.output();
    own.signal(SIGSTOP);
    ASSERT_TRUE(eventually([&] { return builds() == 25; }, 20s)) << p.output();
    ASSERT_TRUE(eventually(
        [&] { return p.output().find("they stay committed") != std::string::npos; }, 30s))
        << p.output();
    EXPECT_EQ(builds(), 25);
    // Restarted rather than resumed: a resumed Redis would still run the scripts buffered on the
    // connections the scheduler gave up on, and the jobs would appear without any recovery.
    own.stop();
    own.start();
    auto q = own.client();
    ASSERT_TRUE(eventually(
        [&] {
            return q->integer({"LLEN", "builds_docker:active"}) == 25;
        },
        30s))
        << p.output();
    EXPECT_TRUE(p.running());
    // The line is written once the sweep's enqueue has returned: shortly after the jobs appear.
    EXPECT_TRUE(
        eventually([&] { return p.output().find("recovery: enqueued") != std::string::npos; }, 10s))
        << p.output();
    std::this_thread::sleep_for(5s);  // more passes: nothing enqueued twice
    expect_exactly_once(*q, 25);
}
#endif

// SIGTERM while a batch is being written: the stopping replica finishes that batch, enqueues it,
// takes no other, releases its lock and exits 0.
TEST_F(Service, SigtermFinishesAndEnqueuesTheBatchInFlight) {
    slow_cron_updates(3);
    add_crons(200);
    ConfigOptions o;
    o.batch_size = 50;
    o.interval = "10m";
    auto p = start("drain", o);
    ASSERT_TRUE(eventually([&] { return busy_backend("%UPDATE cron c SET%") > 0; }, 20s))
        << p->output();
    p->signal(SIGTERM);
    const int rc = p->wait(20s);
    EXPECT_EQ(rc, 0) << p->output();
    // The batch in flight was committed and enqueued, nothing after it was taken.
    EXPECT_EQ(builds(), 50) << p->output();
    EXPECT_EQ(due(), 150);
    EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}), 50);
    EXPECT_NE(p->output().find("batch 1: 50 cron(s) taken, 50 build(s) committed"),
              std::string::npos)
        << p->output();
    EXPECT_NE(p->output().find("leadership released"), std::string::npos) << p->output();
    struct stat st {};
    EXPECT_NE(::stat((dir + "/drain.pid").c_str(), &st), 0) << "pidfile left behind";
}

}  // namespace
}  // namespace djinn::testing
