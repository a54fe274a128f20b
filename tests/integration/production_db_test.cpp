// The scheduler against PostgreSQL as production runs it: database- and role-level settings that
// differ from the defaults, Debian's PgBouncer in front (session and transaction pooling, md5
// auth, PgBouncer's defaults), a hot standby, and a failover to it.
#include <gtest/gtest.h>
#include <signal.h>

#include <pqxx/pqxx>

#include <cstdio>
#include <memory>
#include <set>
#include <thread>

#include "pg_servers.hpp"
#include "queue/curlyq_codec.hpp"
#include "test_env.hpp"

namespace djinn::testing {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

constexpr const char* kManifest =
    "driver: {type: docker, image: alpine, workspace: /src}\nstages: [test]\njobs:\n"
    "- stage: test\n  commands: [make]";

// Everything a pass wrote that does not depend on when or by which session it ran: ids,
// secrets, artifact hashes and creation times left out, timestamps as UTC text of the
// superuser's UTC session.
std::vector<std::string> canonical_rows(pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'");
    std::vector<std::string> out;
    const char* queries[] = {
        "SELECT 'build', cr.name, b.user_id, b.namespace_id, b.number, b.manifest, b.status "
        "FROM builds b JOIN cron_builds cb ON cb.build_id = b.id JOIN cron cr ON cr.id = "
        "cb.cron_id ORDER BY cr.name",
        "SELECT 'trigger', cr.name, t.type, t.comment, t.data::text FROM build_triggers t JOIN "
        "cron_builds cb ON cb.build_id = t.build_id JOIN cron cr ON cr.id = cb.cron_id ORDER BY 2",
        "SELECT 'tag', cr.name, g.name, g.user_id FROM build_tags g JOIN cron_builds cb ON "
        "cb.build_id = g.build_id JOIN cron cr ON cr.id = cb.cron_id ORDER BY 2, 3",
        "SELECT 'driver', cr.name, d.type, d.config::text FROM build_drivers d JOIN cron_builds "
        "cb ON cb.build_id = d.build_id JOIN cron cr ON cr.id = cb.cron_id ORDER BY 2",
        "SELECT 'variable', cr.name, v.key, v.value, v.masked, v.variable_id IS NULL FROM "
        "build_variables v JOIN cron_builds cb ON cb.build_id = v.build_id JOIN cron cr ON cr.id "
        "= cb.cron_id ORDER BY 2, v.id",
        "SELECT 'key', cr.name, k.name, k.location FROM build_keys k JOIN cron_builds cb ON "
        "cb.build_id = k.build_id JOIN cron cr ON cr.id = cb.cron_id ORDER BY 2, k.id",
        "SELECT 'object', cr.name, o.source, o.name FROM build_objects o JOIN cron_builds cb ON "
        "cb.build_id = o.build_id JOIN cron cr ON cr.id = cb.cron_id ORDER BY 2, o.id",
        "SELECT 'stage', cr.name, s.name, s.can_fail FROM build_stages s JOIN cron_builds cb ON "
        "cb.build_id = s.build_id JOIN cron cr ON cr.id = cb.cron_id ORDER BY 2, s.created_at",
        "SELECT 'job', cr.name, j.name, j.commands, j.status FROM build_jobs j JOIN cron_builds "
        "cb ON cb.build_id = j.build_id JOIN cron cr ON cr.id = cb.cron_id ORDER BY 2, "
        "j.created_at",
        "SELECT 'artifact', cr.name, a.source, a.name, length(a.hash) FROM build_artifacts a JOIN "
        "cron_builds cb ON cb.build_id = a.build_id JOIN cron cr ON cr.id = cb.cron_id ORDER BY "
        "2, a.id",
        // A cron that did not run keeps the next_run it was seeded with (relative to the seed).
        "SELECT 'cron', name, CASE WHEN prev_run IS NULL THEN 'not run' ELSE next_run::text END "
        "FROM cron ORDER BY name",
    };
    for (const char* q : queries) {
        for (const auto& row : tx.exec(q)) {
            std::string line;
            for (const auto& f : row)
                line += std::string(f.is_null() ? "NULL" : f.c_str()) + " | ";
            out.push_back(line);
        }
    }
    return out;
}

class ProductionDb : public ::testing::Test {
  protected:
    void SetUp() override {
        redis.flushall();
        dir = temp_dir();
    }

    std::string config(const std::string& name, ConfigOptions o, const std::string& addr,
                       const std::string& dbname) {
        o.pidfile = dir + "/" + name + ".pid";
        if (o.http_addr.empty())
            o.http_addr = "127.0.0.1:0";
        std::string text = djinn_config(db, o);
        text.replace(text.find(db.addr()), db.addr().size(), addr);
        const std::string quoted = "name \"" + db.name() + "\"";
        text.replace(text.find(quoted), quoted.size(), "name \"" + dbname + "\"");
        std::string path = dir + "/" + name + ".conf";
        write_file(path, text);
        return path;
    }

    std::unique_ptr<SchedulerProcess> start(const std::string& path) {
        auto p = std::make_unique<SchedulerProcess>(std::vector<std::string>{"-config", path});
        EXPECT_TRUE(eventually([&] { return logged_http_port(p->output()) > 0; }, 15s))
            << p->output();
        return p;
    }
    static int port(SchedulerProcess& p) { return logged_http_port(p.output()); }
    static double metric(SchedulerProcess& p, const std::string& name) {
        return scheduler_metric(p, name);
    }
    static bool leads(SchedulerProcess& p) { return scheduler_leads(p); }

    // Each of `crons` crons has one build, each build one job (on the test Redis).
    template <typename Count>
    void expect_exactly_once(Count count, std::int64_t crons) {
        EXPECT_EQ(count("SELECT count(*) FROM cron c WHERE (SELECT count(*) FROM cron_builds cb "
                        "WHERE cb.cron_id = c.id) <> 1"),
                  0)
            << "crons without exactly one build";
        EXPECT_EQ(count("SELECT count(*) FROM builds"), crons);
        std::multiset<std::int64_t> queued;
        for (const auto& id : redis.command({"LRANGE", "builds_docker:active", "0", "-1"}))
            queued.insert(message_build_id(redis.get_str({"HGET", "builds_docker:data", id})));
        EXPECT_EQ(static_cast<std::int64_t>(queued.size()), crons) << "jobs";
        EXPECT_EQ(std::set<std::int64_t>(queued.begin(), queued.end()).size(), queued.size())
            << "a build was enqueued twice";
    }

    static std::string due_sql(int n, double first_s, double step_s) {
        return "INSERT INTO users (id, email, username, password) VALUES (1, 'ops@example.com', "
               "'ops', '\\x00') ON CONFLICT DO NOTHING; INSERT INTO cron (user_id, author_id, "
               "name, schedule, manifest, next_run) SELECT 1, 1, 'p ' || i, 'daily', '" +
               std::string(kManifest) + "', (now() AT TIME ZONE 'UTC') + make_interval(secs => " +
               std::to_string(first_s) + " + i * " + std::to_string(step_s) +
               ") FROM generate_series(0, " + std::to_string(n - 1) + ") AS i";
    }

    TestDatabase db;  // the shared test server's database (pooler tests)
    Redis redis;
    std::string dir;
};

// Operators' settings on the database and on the role: -once writes exactly what it writes on a
// default database, timestamps in UTC, next runs at 00:00 UTC.
TEST_F(ProductionDb, DatabaseAndRoleSettingsChangeNothing) {
    TestDatabase odd;
    db.exec_file(fixture_path("seed/demo.sql"));
    odd.exec_file(fixture_path("seed/demo.sql"));
    odd.exec("ALTER DATABASE " + odd.name() + " SET DateStyle = 'SQL, DMY'; ALTER DATABASE " +
             odd.name() + " SET TimeZone = 'Europe/Berlin'; ALTER DATABASE " + odd.name() +
             " SET IntervalStyle = 'sql_standard'");
    for (const char* setting :
         {"statement_timeout = '30ms'", "lock_timeout = '5ms'", "search_path = 'nowhere'",
          "default_transaction_isolation = 'serializable'", "default_transaction_read_only = on",
          "idle_in_transaction_session_timeout = '20ms'", "client_encoding = 'LATIN1'"}) {
        odd.exec("ALTER ROLE djinn_scheduler IN DATABASE " + odd.name() + " SET " + setting);
    }
    ConfigOptions o;
    o.batch_size = 2;  // several batches, and the numbers carried between them
    auto plain = run_scheduler({"-config", config("plain", o, db.addr(), db.name()), "-once"});
    ASSERT_EQ(plain.exit_code, 0) << plain.output;
    const auto plain_jobs = redis.integer({"LLEN", "builds_docker:active"});
    redis.flushall();
    auto r = run_scheduler({"-config", config("odd", o, odd.addr(), odd.name()), "-once"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}), plain_jobs);
    EXPECT_GT(plain_jobs, 0);
    const auto expected = canonical_rows(db.admin());
    const auto got = canonical_rows(odd.admin());
    EXPECT_GT(expected.size(), 20u);
    EXPECT_EQ(got.size(), expected.size());
    for (std::size_t i = 0; i < std::min(got.size(), expected.size()); ++i)
        EXPECT_EQ(got[i], expected[i]) << "row " << i;
    // UTC wall-clock times, as Djinn writes them, whatever the database's TimeZone.
    EXPECT_EQ(odd.count("SELECT count(*) FROM builds b JOIN cron_builds cb ON cb.build_id = b.id "
                        "WHERE abs(extract(epoch FROM b.created_at - (now() AT TIME ZONE 'UTC'))) "
                        "> 120"),
              0);
    EXPECT_EQ(odd.count("SELECT count(*) FROM cron c JOIN cron_builds cb ON cb.cron_id = c.id "
                        "WHERE c.next_run::time <> '00:00' OR c.next_run <= now() AT TIME ZONE "
                        "'UTC' OR abs(extract(epoch FROM c.prev_run - (now() AT TIME ZONE "
                        "'UTC'))) > 120"),
              0);
}

#ifdef DJINN_FAILPOINTS
// The set-based write (one statement per table for the whole batch) and the cron-by-cron redo
// of a failed batch (a savepoint and the same statements per cron) write the same rows.
TEST_F(ProductionDb, TheCronByCronRedoWritesWhatTheSetBasedWriteWrites) {
    TestDatabase redone;
    db.exec_file(fixture_path("seed/demo.sql"));
    redone.exec_file(fixture_path("seed/demo.sql"));
    ConfigOptions o;
    auto set_based = run_scheduler({"-config", config("copy", o, db.addr(), db.name()), "-once"});
    ASSERT_EQ(set_based.exit_code, 0) << set_based.output;
    redis.flushall();
    auto r = run_scheduler({"-config", config("insert", o, redone.addr(), redone.name()), "-once"},
                           {{"DJINN_FAILPOINTS", "batch.write=runtime_error*1"}});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("redone cron by cron"), std::string::npos) << r.output;
    const auto expected = canonical_rows(db.admin());
    const auto got = canonical_rows(redone.admin());
    EXPECT_GT(expected.size(), 20u);
    EXPECT_EQ(got.size(), expected.size());
    for (std::size_t i = 0; i < std::min(got.size(), expected.size()); ++i)
        EXPECT_EQ(got[i], expected[i]) << "row " << i;
}
#endif

// Through PgBouncer with its defaults (md5 auth, session pooling, `options` refused): two
// replicas, the leader killed with SIGKILL while crons fall due; each exactly once.
TEST_F(ProductionDb, SessionPoolingThroughPgBouncerSurvivesAKilledLeader) {
    PgBouncer bouncer("127.0.0.1", std::stoi(required_env("DJINN_TEST_PGPORT")), "session");
    db.exec(due_sql(150, 1, 0.12));  // due one after the other over 18 s
    ConfigOptions o;
    o.interval = "1s";
    auto a = start(config("a", o, bouncer.addr(), db.name()));
    auto b = start(config("b", o, bouncer.addr(), db.name()));
    ASSERT_TRUE(eventually([&] { return leads(*a) || leads(*b); }, 15s))
        << a->output() << b->output() << bouncer.log();
    EXPECT_NE(a->output().find("through a session-pooling proxy"), std::string::npos)
        << a->output();
    std::this_thread::sleep_for(6s);
    SchedulerProcess* leader = leads(*a) ? a.get() : b.get();
    SchedulerProcess* standby = leader == a.get() ? b.get() : a.get();
    const auto killed = Steady::now();
    leader->signal(SIGKILL);
    ASSERT_TRUE(eventually([&] { return leads(*standby); }, 8s)) << standby->output();
    std::printf(
        "[ measure ] through PgBouncer: kill -9 of the leader -> standby leads after %.2f s\n",
        std::chrono::duration<double>(Steady::now() - killed).count());
    ASSERT_TRUE(eventually(
        [&] {
            return db.count("SELECT count(DISTINCT cron_id) FROM cron_builds") == 150 &&
                   redis.integer({"LLEN", "builds_docker:active"}) == 150;
        },
        40s))
        << standby->output();
    expect_exactly_once([&](const std::string& q) { return db.count(q); }, 150);
}

// The frozen-leader bound through PgBouncer: a leader that stops talking loses its lock within
// lock_timeout (the server ends its session), a standby takes over, the frozen one wakes up to
// a dead session and commits nothing.
TEST_F(ProductionDb, AFrozenLeaderBehindPgBouncerLosesTheLockWithinLockTimeout) {
    PgBouncer bouncer("127.0.0.1", std::stoi(required_env("DJINN_TEST_PGPORT")), "session");
    ConfigOptions o;
    o.interval = "1s";
    o.extra = "leader {\n    retry_interval 1s\n    lock_timeout 4s\n}\n";
    auto a = start(config("a", o, bouncer.addr(), db.name()));
    ASSERT_TRUE(eventually([&] { return leads(*a); }, 15s)) << a->output();
    auto b = start(config("b", o, bouncer.addr(), db.name()));
    ASSERT_TRUE(eventually([&] { return http_get(port(*b), "/readyz").status == 200; }, 15s));
    a->signal(SIGSTOP);
    const auto frozen = Steady::now();
    ASSERT_TRUE(eventually([&] { return leads(*b); }, 12s)) << b->output() << bouncer.log();
    const double took = std::chrono::duration<double>(Steady::now() - frozen).count();
    std::printf("[ measure ] through PgBouncer: leader frozen -> standby leads after %.2f s\n",
                took);
    EXPECT_LE(took, 4 + 1 + 2.5);  // lock_timeout + retry_interval + slack
    db.exec(due_sql(20, -1, 0));
    ASSERT_TRUE(eventually([&] { return db.count("SELECT count(*) FROM builds") == 20; }, 15s));
    a->signal(SIGCONT);
    ASSERT_TRUE(
        eventually([&] { return a->output().find("leadership lost") != std::string::npos; }, 15s))
        << a->output();
    std::this_thread::sleep_for(3s);
    ASSERT_TRUE(eventually(
        [&] {
            return redis.integer({"LLEN", "builds_docker:active"}) == 20;
        },
        10s));
    expect_exactly_once([&](const std::string& q) { return db.count(q); }, 20);
}

// Transaction pooling cannot carry a session advisory lock: refused, clearly, and retried; no
// dispatch, not ready, counted, and no lock left behind on a pooled server connection.
class TransactionPooling : public ProductionDb,
                           public ::testing::WithParamInterface<const char*> {};

TEST_P(TransactionPooling, IsRefusedWithTheCauseAndTheFix) {
    PgBouncer bouncer("127.0.0.1", std::stoi(required_env("DJINN_TEST_PGPORT")), "transaction",
                      GetParam());
    db.exec(due_sql(5, -1, 0));
    ConfigOptions o;
    o.interval = "1s";
    o.extra = "leader {\n    retry_interval 1s\n    lock_timeout 4s\n}\n";
    auto p = start(config("tx", o, bouncer.addr(), db.name()));
    ASSERT_TRUE(eventually(
        [&] {
            return metric(*p, "djinn_scheduler_errors_total{kind=\"pooler\"}") >= 3;  // retried
        },
        20s))
        << p->output();
    auto ready = http_get(port(*p), "/readyz");
    EXPECT_EQ(ready.status, 503);
    EXPECT_NE(ready.body.find("transaction- or statement-pooling proxy"), std::string::npos)
        << ready.body;
    const std::string log = p->output();
    const std::string hint =
        "point database.addr at PostgreSQL itself or at a session-pooling port";
    std::size_t lines = 0;
    for (auto at = log.find(hint); at != std::string::npos; at = log.find(hint, at + 1))
        ++lines;
    EXPECT_EQ(lines, 1u) << log;  // logged once, however often it retried
    EXPECT_EQ(metric(*p, "djinn_scheduler_leader"), 0);
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 0);
    EXPECT_EQ(db.count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), 0);
    EXPECT_TRUE(p->running());
}

// PgBouncer's defaults; and server connections handed out round robin from a warm pool, where
// the next statement usually reaches another server process than the one before.
INSTANTIATE_TEST_SUITE_P(PgBouncer, TransactionPooling,
                         ::testing::Values("", "server_round_robin = 1\nmin_pool_size = 4\n"));

// Pointed at a hot standby the replica neither leads nor is ready, and says why once; promoted,
// the standby is a primary and the replica dispatches.
TEST_F(ProductionDb, AStandbyIsWaitedOnUntilItIsPromoted) {
    auto primary = PgCluster::primary();
    primary->exec(due_sql(10, -1, 0));
    auto standby = PgCluster::standby_of(*primary);
    ASSERT_TRUE(eventually([&] { return standby->count("SELECT count(*) FROM cron") == 10; }, 20s));
    ConfigOptions o;
    o.interval = "1s";
    o.extra = "leader {\n    retry_interval 1s\n    lock_timeout 4s\n}\n";
    auto p = start(config("s", o, standby->addr(), "djinn"));
    ASSERT_TRUE(eventually(
        [&] {
            auto r = http_get(port(*p), "/readyz");
            return r.status == 503 && r.body.find("standby in recovery") != std::string::npos;
        },
        15s))
        << p->output();
    std::this_thread::sleep_for(3s);  // several retries
    EXPECT_EQ(metric(*p, "djinn_scheduler_leader"), 0);
    EXPECT_EQ(standby->count("SELECT count(*) FROM builds"), 0);
    const std::string log = p->output();
    const auto first = log.find("is a standby in recovery");
    ASSERT_NE(first, std::string::npos) << log;
    EXPECT_EQ(log.find("is a standby in recovery", first + 1), std::string::npos) << log;
    primary->stop("fast");
    standby->promote();
    ASSERT_TRUE(
        eventually([&] { return standby->count("SELECT count(*) FROM builds") == 10; }, 20s))
        << p->output();
    ASSERT_TRUE(eventually(
        [&] {
            return redis.integer({"LLEN", "builds_docker:active"}) == 10;
        },
        10s));
    expect_exactly_once([&](const std::string& q) { return standby->count(q); }, 10);
    EXPECT_EQ(http_get(port(*p), "/readyz").status, 200);
}

// Both hosts listed: the replica leads on the primary; the primary stops in the middle of a run
// of due crons and its standby is promoted; the replica follows and every cron is dispatched
// exactly once.
TEST_F(ProductionDb, AFailoverToTheListedStandbyDispatchesEveryCronOnce) {
    auto primary = PgCluster::primary();
    auto standby = PgCluster::standby_of(*primary);
    primary->exec(due_sql(120, 1, 0.1));  // due over 12 s
    ConfigOptions o;
    o.interval = "1s";
    o.extra = "leader {\n    retry_interval 1s\n    lock_timeout 4s\n}\n";
    auto p = start(config("f", o, primary->addr() + "," + standby->addr(), "djinn"));
    ASSERT_TRUE(
        eventually([&] { return primary->count("SELECT count(*) FROM builds") >= 30; }, 20s))
        << p->output();
    const auto stopped = Steady::now();
    primary->stop("fast");  // sends the rest of its WAL to the standby first
    standby->promote();
    ASSERT_TRUE(eventually(
        [&] {
            try {
                return standby->count("SELECT count(DISTINCT cron_id) FROM cron_builds") == 120;
            } catch (const std::exception&) {
                return false;
            }
        },
        40s))
        << p->output();
    std::printf(
        "[ measure ] primary stopped -> all 120 crons dispatched on the promoted standby "
        "%.1f s later\n",
        std::chrono::duration<double>(Steady::now() - stopped).count());
    ASSERT_TRUE(eventually(
        [&] {
            return redis.integer({"LLEN", "builds_docker:active"}) == 120;
        },
        15s));
    expect_exactly_once([&](const std::string& q) { return standby->count(q); }, 120);
}

}  // namespace
}  // namespace djinn::testing
