// The scheduler core, end to end: the real binary, `-once`, against PostgreSQL 15 loaded with the
// Djinn v1.3.0 schema as the djinn_scheduler role, and a real Redis.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>
#include <thread>

#include "queue/curlyq_codec.hpp"
#include "test_env.hpp"

namespace djinn::testing {
namespace {

using namespace std::chrono_literals;

class CorePass : public ::testing::Test {
  protected:
    void SetUp() override {
        redis.flushall();
        db.exec_file(fixture_path("seed/demo.sql"));
        dir = temp_dir();
    }

    std::string write_config(ConfigOptions o) {
        std::string path = dir + "/scheduler.conf";
        write_file(path, djinn_config(db, o));
        return path;
    }

    // Every job on builds_<driver>: build id -> count, checking each message's bytes.
    std::map<std::int64_t, int> jobs_on(const std::string& driver) {
        std::map<std::int64_t, int> out;
        auto ids = redis.command({"LRANGE", "builds_" + driver + ":active", "0", "-1"});
        for (const auto& id : ids) {
            std::string msg = redis.get_str({"HGET", "builds_" + driver + ":data", id});
            EXPECT_FALSE(msg.empty()) << "job " << id << " has no data";
            // Header of the curlyq message: fixmap(3), "ID" str8(36).
            EXPECT_EQ(static_cast<unsigned char>(msg.at(0)), 0x83);
            EXPECT_EQ(msg.substr(1, 3),
                      "\xa2"
                      "ID");
            EXPECT_EQ(msg.substr(4, 2), "\xd9\x24");
            EXPECT_EQ(msg.substr(6, 36), id);
            EXPECT_EQ(msg.substr(42, 5),
                      "\xa4"
                      "Data");
            std::size_t n = static_cast<unsigned char>(msg.at(48));
            std::string payload = msg.substr(49, n);
            GobValue v = decode_gob_payload(payload);
            EXPECT_EQ(v.host, "djinn-scheduler");
            EXPECT_EQ(msg, queue::curlyq_message(id, payload));
            EXPECT_EQ(payload, queue::gob_payload("djinn-scheduler", v.build_id));
            out[v.build_id]++;
        }
        return out;
    }

    TestDatabase db;
    Redis redis;
    std::string dir;
};

TEST_F(CorePass, OncePassWritesDjinnRowsAndQueueJobs) {
    ConfigOptions o;
    o.pidfile = dir + "/run/scheduler.pid";
    o.batch_size = 2;
    o.password = "${DJINN_TEST_DB_PASSWORD}";
    o.log_level = "debug";
    auto r = run_scheduler({"-config", write_config(o), "-once"},
                           {{"DJINN_TEST_DB_PASSWORD", "secret"}});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    struct stat st {};
    EXPECT_NE(::stat(o.pidfile.c_str(), &st), 0) << "pidfile left behind";
    EXPECT_EQ(r.output.find("secret"), std::string::npos) << "password in the log:\n" << r.output;

    // Exactly one build per dispatchable due cron; none for the skipped ones or the future one.
    EXPECT_EQ(db.count("SELECT count(*) FROM cron_builds"), 3);
    for (int cron : {1, 2, 3}) {
        EXPECT_EQ(
            db.count("SELECT count(*) FROM cron_builds WHERE cron_id = " + std::to_string(cron)), 1)
            << "cron " << cron;
    }
    for (int cron : {4, 5, 6, 7}) {
        EXPECT_EQ(
            db.count("SELECT count(*) FROM cron_builds WHERE cron_id = " + std::to_string(cron)),
            0);
    }
    // Skipped crons advance to the next boundary (daily: tomorrow 00:00) without a prev_run;
    // the cron that is not due is untouched.
    EXPECT_EQ(db.count("SELECT count(*) FROM cron WHERE id IN (4,5,6) AND prev_run IS NULL AND "
                       "next_run = date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 "
                       "day'"),
              3);
    EXPECT_EQ(db.count("SELECT count(*) FROM cron WHERE id = 7 AND prev_run IS NULL AND next_run > "
                       "now() AT TIME ZONE 'UTC'"),
              1);
    // Dispatched crons: @daily, @weekly (Sunday), @monthly (the 1st), strictly after now.
    auto today = "date_trunc('day', now() AT TIME ZONE 'UTC')";
    EXPECT_EQ(db.scalar("SELECT next_run = " + std::string(today) +
                        " + interval '1 day' FROM cron WHERE id = 1"),
              "t");
    EXPECT_EQ(db.scalar("SELECT next_run = " + std::string(today) +
                        " + make_interval(days => 7 - "
                        "extract(dow FROM now() AT TIME ZONE 'UTC')::int) FROM cron WHERE id = 2"),
              "t");
    EXPECT_EQ(db.scalar("SELECT next_run = date_trunc('month', now() AT TIME ZONE 'UTC') + "
                        "interval '1 month' FROM cron WHERE id = 3"),
              "t");
    EXPECT_EQ(db.count("SELECT count(*) FROM cron WHERE id IN (1,2,3) AND prev_run IS NOT NULL"),
              3);

    // The namespaced weekly cron (2): build of the cron's user, in the namespace, numbered after
    // alice's existing build 7; the nightly one (1) gets the next number.
    EXPECT_EQ(db.scalar("SELECT b.user_id || '/' || coalesce(b.namespace_id::text, '-') || '/' || "
                        "b.number || '/' || b.status FROM builds b JOIN cron_builds cb ON "
                        "cb.build_id = b.id WHERE cb.cron_id = 2"),
              "1/1/8/queued");
    EXPECT_EQ(db.scalar("SELECT b.number FROM builds b JOIN cron_builds cb ON cb.build_id = b.id "
                        "WHERE cb.cron_id = 1"),
              "9");
    EXPECT_EQ(db.scalar("SELECT b.number FROM builds b JOIN cron_builds cb ON cb.build_id = b.id "
                        "WHERE cb.cron_id = 3"),
              "1");
    EXPECT_EQ(db.count("SELECT count(*) FROM builds b JOIN cron_builds cb ON cb.build_id = b.id "
                       "JOIN cron c ON c.id = cb.cron_id WHERE b.manifest = c.manifest AND "
                       "b.secret ~ '^[0-9a-f]{32}$'"),
              3);

    // Trigger, tag, driver.
    EXPECT_EQ(db.scalar("SELECT t.type || '|' || t.comment || '|' || t.data::text || '|' || "
                        "coalesce(t.provider_id::text, 'null') FROM build_triggers t JOIN "
                        "cron_builds cb ON cb.build_id = t.build_id WHERE cb.cron_id = 1"),
              "schedule|nightly tests: Scheduled build, next run " +
                  db.scalar("SELECT to_char(next_run, 'Dy Mon FMDD HH24:MI:SS YYYY') FROM cron "
                            "WHERE id = 1") +
                  "|{\"email\":\"alice@example.com\",\"username\":\"alice\"}|null");
    EXPECT_EQ(db.scalar("SELECT string_agg(g.name || ':' || g.user_id, ',') FROM build_tags g "
                        "JOIN cron_builds cb ON cb.build_id = g.build_id WHERE cb.cron_id = 2"),
              "cron:weekly-release:1");
    EXPECT_EQ(db.scalar("SELECT d.type || ' ' || d.config::text FROM build_drivers d JOIN "
                        "cron_builds cb ON cb.build_id = d.build_id WHERE cb.cron_id = 3"),
              "qemu {\"arch\":\"x86_64\",\"image\":\"debian/oldstable\",\"type\":\"qemu\"}");

    // Variables: personal + namespace ones copied as stored, then env (split at the first '=').
    EXPECT_EQ(db.scalar("SELECT string_agg(v.key || '=' || v.value || ':' || v.masked || ':' || "
                        "coalesce(v.variable_id::text, 'env'), ',' ORDER BY v.id) FROM "
                        "build_variables v JOIN cron_builds cb ON cb.build_id = v.build_id WHERE "
                        "cb.cron_id = 2"),
              "GOPROXY=https://proxy.golang.org:false:1,API_TOKEN=c2VjcmV0LWVuY3J5cHRlZA==:true:2,"
              "ACME_REGISTRY=registry.acme.dev:false:3,GOFLAGS=-mod=vendor:false:env");
    EXPECT_EQ(db.scalar("SELECT string_agg(v.key || '=' || v.value, ',' ORDER BY v.id) FROM "
                        "build_variables v JOIN cron_builds cb ON cb.build_id = v.build_id WHERE "
                        "cb.cron_id = 1 AND v.variable_id IS NULL"),
              "CGO_ENABLED=0,GREETING=a=b");
    // Keys: personal (+ namespace for cron 2), at /root/.ssh/<name>.
    EXPECT_EQ(db.scalar("SELECT string_agg(k.name || '@' || k.location || ':' || k.key_id, ',' "
                        "ORDER BY k.id) FROM build_keys k JOIN cron_builds cb ON cb.build_id = "
                        "k.build_id WHERE cb.cron_id = 2"),
              "id_alice@/root/.ssh/id_alice:1,id_acme_deploy@/root/.ssh/id_acme_deploy:2");
    // Objects: only the ones the manifest names, destination in `source`.
    EXPECT_EQ(db.scalar("SELECT string_agg(o.name || '=>' || o.source, ',' ORDER BY o.id) FROM "
                        "build_objects o JOIN cron_builds cb ON cb.build_id = o.build_id WHERE "
                        "cb.cron_id = 2"),
              "deploy.key=>/root/.ssh/id_deploy,config/settings.toml=>settings.toml");

    // Stages and jobs of the weekly build, in created_at order.
    EXPECT_EQ(db.scalar("SELECT string_agg(s.name || ':' || s.can_fail, ',' ORDER BY "
                        "s.created_at) FROM build_stages s JOIN cron_builds cb ON cb.build_id = "
                        "s.build_id WHERE cb.cron_id = 2"),
              "setup - #8:false,test:false,build:false,Package Release:true");
    EXPECT_EQ(db.scalar("SELECT string_agg(s.name || '/' || j.name || '/' || j.status, ',' ORDER "
                        "BY j.created_at) FROM build_jobs j JOIN build_stages s ON s.id = "
                        "j.stage_id JOIN cron_builds cb ON cb.build_id = j.build_id WHERE "
                        "cb.cron_id = 2"),
              "setup - #8/create-driver/queued,setup - #8/clone.1/queued,setup - "
              "#8/clone.2/queued,test/test.1/queued,test/lint-all/queued,build/build.1/"
              "queued,Package Release/package-release.1/queued");
    EXPECT_EQ(db.scalar("SELECT j.commands FROM build_jobs j JOIN cron_builds cb ON cb.build_id "
                        "= j.build_id WHERE cb.cron_id = 2 AND j.name = 'clone.1'"),
              "mkdir -p backend\ngit clone -q https://github.com/acme/backend.git backend\ncd "
              "backend\ngit checkout v1.3");
    EXPECT_EQ(db.scalar("SELECT j.commands FROM build_jobs j JOIN cron_builds cb ON cb.build_id "
                        "= j.build_id WHERE cb.cron_id = 2 AND j.name = 'test.1'"),
              "go vet ./...\ngo test -cover ./...");
    EXPECT_EQ(db.count("SELECT count(*) FROM build_jobs j JOIN cron_builds cb ON cb.build_id = "
                       "j.build_id WHERE j.created_at <= (SELECT max(s.created_at) FROM "
                       "build_stages s WHERE s.build_id = j.build_id) OR j.created_at <= (SELECT "
                       "created_at FROM builds b WHERE b.id = j.build_id)"),
              0)
        << "jobs must come after their build and its stages";
    EXPECT_EQ(db.count("SELECT count(*) FROM (SELECT created_at FROM build_jobs GROUP BY "
                       "build_id, created_at HAVING count(*) > 1) d"),
              0);
    // Artifacts: unique hashids, the build's user, default name = base of the source.
    EXPECT_EQ(db.scalar("SELECT string_agg(a.source || '=>' || a.name || ':' || a.user_id, ',' "
                        "ORDER BY a.id) FROM build_artifacts a JOIN cron_builds cb ON cb.build_id "
                        "= a.build_id WHERE cb.cron_id = 2"),
              "bin/backend=>backend:1,coverage.out=>coverage.txt:1");
    EXPECT_EQ(db.count("SELECT count(*) FROM build_artifacts WHERE hash !~ '^[a-zA-Z0-9]{8,}$'"),
              0);

    // Queues: one job per build on the driver's queue, gob-decodable to the build id.
    auto docker = jobs_on("docker");
    auto qemu = jobs_on("qemu-x86_64");
    auto build_of = [&](int cron) {
        return std::stoll(
            db.scalar("SELECT build_id FROM cron_builds WHERE cron_id = " + std::to_string(cron)));
    };
    EXPECT_EQ(docker, (std::map<std::int64_t, int>{{build_of(1), 1}, {build_of(2), 1}}));
    EXPECT_EQ(qemu, (std::map<std::int64_t, int>{{build_of(3), 1}}));
    EXPECT_NE(r.output.find("cron 4 skipped (bad_manifest)"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("cron 5 skipped (driver_disabled)"), std::string::npos);
    EXPECT_NE(r.output.find("cron 6 skipped (deleted_owner)"), std::string::npos);

    // A second pass adds nothing.
    auto again = run_scheduler({"-config", write_config(o), "-once"},
                               {{"DJINN_TEST_DB_PASSWORD", "secret"}});
    ASSERT_EQ(again.exit_code, 0) << again.output;
    EXPECT_EQ(db.count("SELECT count(*) FROM cron_builds"), 3);
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 4);
    EXPECT_EQ(jobs_on("docker").size(), 2u);
    EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}), 2);
    EXPECT_EQ(redis.integer({"LLEN", "builds_qemu-x86_64:active"}), 1);
}

TEST_F(CorePass, DryRunWritesNothing) {
    auto r = run_scheduler({"-config", write_config({}), "-once", "-dry-run"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("would get build #8 of user 1 on queue builds_docker"),
              std::string::npos)
        << r.output;
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 1);
    EXPECT_EQ(db.count("SELECT count(*) FROM cron WHERE prev_run IS NOT NULL"), 0);
    EXPECT_EQ(redis.command({"KEYS", "*"}).size(), 0u);
}

// A Redis of our own on a free port, to stop and start.
class OwnRedis {
  public:
    OwnRedis() {
        port = 20000 + (::getpid() % 20000);
        start();
    }
    ~OwnRedis() { stop(); }
    void start() {
        std::string cmd = required_env("DJINN_TEST_REDIS_SERVER") + " --port " +
                          std::to_string(port) +
                          " --bind 127.0.0.1 --save '' --appendonly no --daemonize yes "
                          "--logfile /dev/null";
        ASSERT_EQ(std::system(cmd.c_str()), 0);
        ASSERT_TRUE(eventually(
            [&] {
                try {
                    Redis r("127.0.0.1", port);
                    return r.get_str({"PING"}) == "PONG";
                } catch (...) {
                    return false;
                }
            },
            5s));
    }
    void stop() {
        try {
            Redis r("127.0.0.1", port);
            r.command({"SHUTDOWN", "NOSAVE"});
        } catch (...) {
            // SHUTDOWN closes the connection: that is the expected "error".
        }
    }
    int port = 0;
};

TEST_F(CorePass, RedisDownDuringPassIsEnqueuedExactlyOnceLater) {
    OwnRedis own;
    own.stop();  // down before the pass: its recovery sweep cannot run, so nothing is taken
    ConfigOptions o;
    o.extra = "";
    std::string cfg = djinn_config(db, o);
    auto pos = cfg.find(redis_addr());
    cfg.replace(pos, redis_addr().size(), "127.0.0.1:" + std::to_string(own.port));
    std::string path = dir + "/own.conf";
    write_file(path, cfg);

    auto r = run_scheduler({"-config", path, "-once"});
    EXPECT_EQ(r.exit_code, 1) << r.output;  // the pass failed: Redis unreachable
    EXPECT_NE(r.output.find("recovery: "), std::string::npos) << r.output;
    EXPECT_EQ(db.count("SELECT count(*) FROM cron_builds"), 0) << "builds made without Redis";

    own.start();
#ifdef DJINN_FAILPOINTS
    // Redis fails after the commit (the enqueue throws, as a crash there would leave it): the
    // builds are committed without jobs.
    auto broken = run_scheduler({"-config", path, "-once"},
                                {{"DJINN_FAILPOINTS", "enqueue.round=runtime_error"}});
    EXPECT_EQ(broken.exit_code, 1) << broken.output;
    EXPECT_EQ(db.count("SELECT count(*) FROM cron_builds"), 3);
    {
        Redis q("127.0.0.1", own.port);
        EXPECT_EQ(q.integer({"LLEN", "builds_docker:active"}) +
                      q.integer({"LLEN", "builds_qemu-x86_64:active"}),
                  0);
    }
#endif
    auto r2 = run_scheduler({"-config", path, "-once"});
    ASSERT_EQ(r2.exit_code, 0) << r2.output;
    EXPECT_EQ(db.count("SELECT count(*) FROM cron_builds"), 3);
    Redis q("127.0.0.1", own.port);
    auto ids_docker = q.command({"LRANGE", "builds_docker:active", "0", "-1"});
    auto ids_qemu = q.command({"LRANGE", "builds_qemu-x86_64:active", "0", "-1"});
    EXPECT_EQ(ids_docker.size() + ids_qemu.size(), 3u);
    std::set<std::int64_t> built;
    for (const auto& id : ids_docker) {
        built.insert(decode_gob_payload(
                         std::string(q.get_str({"HGET", "builds_docker:data", id})).substr(49))
                         .build_id);
    }
    for (const auto& id : ids_qemu) {
        built.insert(
            decode_gob_payload(q.get_str({"HGET", "builds_qemu-x86_64:data", id}).substr(49))
                .build_id);
    }
    EXPECT_EQ(built.size(), 3u) << "each build exactly once";
#ifdef DJINN_FAILPOINTS
    EXPECT_NE(r2.output.find("recovery: enqueued 3 committed build(s)"), std::string::npos)
        << r2.output;
#endif

    // And once more: nothing new anywhere.
    auto r3 = run_scheduler({"-config", path, "-once"});
    ASSERT_EQ(r3.exit_code, 0) << r3.output;
    EXPECT_EQ(q.integer({"LLEN", "builds_docker:active"}) +
                  q.integer({"LLEN", "builds_qemu-x86_64:active"}),
              3);
}

TEST_F(CorePass, ExactDjinnRoleKeepsVariableCronsDueAndSaysWhichGrant) {
    db.exec(
        "REVOKE USAGE ON SEQUENCE build_variables_id_seq, build_keys_id_seq FROM "
        "djinn_scheduler");
    // A cron whose user has no variables, keys or env can still be dispatched.
    db.exec(
        "INSERT INTO users (id, email, username, password) VALUES (4, 'dan@example.com', "
        "'dan', '\\x00');"
        "INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run) VALUES (4, "
        "4, 'plain', 'daily', 'driver: {type: docker, image: alpine, workspace: /}', now() AT "
        "TIME ZONE 'UTC' - interval '1 minute')");
    auto r = run_scheduler({"-config", write_config({}), "-once"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("GRANT USAGE ON SEQUENCE public.build_variables_id_seq TO "
                            "djinn_scheduler;"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("GRANT USAGE ON SEQUENCE public.build_keys_id_seq TO "
                            "djinn_scheduler;"),
              std::string::npos);
    EXPECT_EQ(db.count("SELECT count(*) FROM cron_builds cb JOIN cron c ON c.id = cb.cron_id "
                       "WHERE c.name = 'plain'"),
              1);
    // Crons 1-3 copy variables/keys: not dispatched, still due, reported.
    EXPECT_EQ(db.count("SELECT count(*) FROM cron WHERE id IN (1,2,3) AND next_run <= now() AT "
                       "TIME ZONE 'UTC' AND prev_run IS NULL"),
              3);
    EXPECT_NE(r.output.find("cron 1 skipped (missing_privilege)"), std::string::npos);

    // Granted: the next pass dispatches them.
    db.exec(
        "GRANT USAGE ON SEQUENCE build_variables_id_seq, build_keys_id_seq TO "
        "djinn_scheduler");
    auto r2 = run_scheduler({"-config", write_config({}), "-once"});
    ASSERT_EQ(r2.exit_code, 0) << r2.output;
    EXPECT_EQ(db.count("SELECT count(*) FROM cron_builds"), 4);
}

TEST_F(CorePass, OneUnwritableCronDoesNotBlockTheBatch) {
    // A job name longer than... no column limit in Djinn's schema, so make one cron fail for real:
    // an env value with a NUL-free but overlong key is fine in PostgreSQL too. Instead revoke
    // INSERT on build_artifacts: only the crons with artifacts fail, cron by cron.
    db.exec("REVOKE INSERT ON build_artifacts FROM djinn_scheduler");
    db.exec(
        "INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run) VALUES (2, "
        "2, 'no artifacts', 'daily', 'driver: {type: docker, image: alpine, workspace: /}', "
        "now() AT TIME ZONE 'UTC' - interval '1 minute')");
    auto r = run_scheduler({"-config", write_config({}), "-once"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("redone cron by cron"), std::string::npos) << r.output;
    EXPECT_EQ(db.count("SELECT count(*) FROM cron_builds cb JOIN cron c ON c.id = cb.cron_id "
                       "WHERE c.name = 'no artifacts'"),
              1);
    // The crons with artifacts stay due, and no half build of theirs exists.
    EXPECT_EQ(db.count("SELECT count(*) FROM cron WHERE id IN (1,2,3) AND prev_run IS NULL"), 3);
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 2);
    EXPECT_EQ(db.count("SELECT count(*) FROM build_jobs j WHERE NOT EXISTS (SELECT 1 FROM "
                       "cron_builds cb WHERE cb.build_id = j.build_id)"),
              0);
    EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}), 1);
}

}  // namespace
}  // namespace djinn::testing
