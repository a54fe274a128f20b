// Secrets are never logged: full runs at `log debug`, in text and JSON, with distinctive database
// and Redis passwords (set on Djinn's role with ALTER ROLE, and with requirepass on a Redis of
// this test's own), every line checked. Redis AUTH end to end, the password read from ${VAR}.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "test_env.hpp"

namespace djinn::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kDbPassword = "Db-Pa55-q7Zx!'\\\"-k2";
constexpr const char* kRedisPassword = "Redis-Pa55-w9Yv-m4";

// A Redis that demands AUTH.
class AuthRedis {
  public:
    AuthRedis() : port(free_port()) {
        std::string cmd = required_env("DJINN_TEST_REDIS_SERVER") + " --port " +
                          std::to_string(port) +
                          " --bind 127.0.0.1 --save '' --appendonly no --daemonize yes "
                          "--logfile /dev/null --requirepass " +
                          kRedisPassword;
        if (std::system(cmd.c_str()) != 0)
            throw std::runtime_error("redis-server failed");
        if (!eventually(
                [&] {
                    try {
                        client();
                        return true;
                    } catch (...) {
                        return false;
                    }
                },
                5s)) {
            throw std::runtime_error("redis-server with requirepass did not start");
        }
    }
    ~AuthRedis() {
        try {
            client()->command({"SHUTDOWN", "NOSAVE"});
        } catch (...) {
            // SHUTDOWN closes the connection: the expected "error".
        }
    }
    std::unique_ptr<Redis> client() {
        auto r = std::make_unique<Redis>("127.0.0.1", port);
        r->command({"AUTH", kRedisPassword});
        return r;
    }
    int port;
};

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

class SecretsLogging : public ::testing::Test {
  protected:
    void SetUp() override {
        db.exec_file(fixture_path("seed/demo.sql"));
        // ALTER ROLE is cluster-wide: restored in TearDown for the other tests.
        pqxx::work tx(db.admin());
        tx.exec("ALTER ROLE djinn_scheduler PASSWORD " + tx.quote(kDbPassword));
        tx.commit();
        dir = temp_dir();
    }
    void TearDown() override { db.exec("ALTER ROLE djinn_scheduler PASSWORD 'secret'"); }

    std::string write_config(const std::string& format, const std::string& interval = "1m",
                             const std::string& redis_password = "${DJINN_IT_REDIS_PASSWORD}") {
        ConfigOptions o;
        o.log_level = "debug";
        o.interval = interval;
        o.batch_size = 2;
        o.password = "${DJINN_IT_DB_PASSWORD}";
        o.pidfile = dir + "/scheduler.pid";
        o.extra = "log_format \"" + format + "\"\n";
        std::string cfg = djinn_config(db, o);
        const std::string from = "redis {\n    addr \"" + redis_addr() + "\"\n}\n";
        auto at = cfg.find(from);
        EXPECT_NE(at, std::string::npos);
        cfg.replace(at, from.size(),
                    "redis {\n    addr \"127.0.0.1:" + std::to_string(redis.port) +
                        "\"\n    password \"" + redis_password + "\"\n}\n");
        std::string path = dir + "/scheduler-" + format + ".conf";
        write_file(path, cfg);
        return path;
    }
    std::map<std::string, std::string> env() const {
        return {{"DJINN_IT_DB_PASSWORD", kDbPassword}, {"DJINN_IT_REDIS_PASSWORD", kRedisPassword}};
    }

    // Every line: no password, nor the conninfo keyword that would carry one.
    void expect_no_secret(const std::string& output, const std::string& format,
                          std::size_t min_lines = 1) {
        auto lines = lines_of(output);
        EXPECT_GE(lines.size(), min_lines) << output;
        for (const auto& line : lines) {
            EXPECT_EQ(line.find(kDbPassword), std::string::npos) << line;
            EXPECT_EQ(line.find(kRedisPassword), std::string::npos) << line;
            EXPECT_EQ(line.find("Db-Pa55"), std::string::npos) << line;
            EXPECT_EQ(line.find("Redis-Pa55"), std::string::npos) << line;
            // `database.password=set` says whether one is configured; anything else is a leak.
            for (auto at = line.find("password="); at != std::string::npos;
                 at = line.find("password=", at + 1)) {
                const std::string value =
                    line.substr(at + 9, line.find_first_of(" \"", at + 9) - (at + 9));
                EXPECT_TRUE(value == "set" || value == "unset") << line;
            }
            if (format == "json") {
                EXPECT_TRUE(line.size() >= 2 && line.front() == '{' && line.back() == '}') << line;
            }
        }
    }

    TestDatabase db;
    AuthRedis redis;
    std::string dir;
};

TEST_F(SecretsLogging, DebugRunsInTextAndJsonNeverPrintAPassword) {
    for (const std::string format : {"text", "json"}) {
        SCOPED_TRACE(format);
        auto r = run_scheduler({"-config", write_config(format), "-once"}, env(), 30s);
        ASSERT_EQ(r.exit_code, 0) << r.output;
        expect_no_secret(r.output, format, 10);
        EXPECT_NE(r.output.find("debug"), std::string::npos) << "not at debug level:\n" << r.output;
        // -check-config prints the config's problems and warnings: no secret either.
        auto check = run_scheduler({"-config", write_config(format), "-check-config"}, env(), 30s);
        EXPECT_EQ(check.exit_code, 0) << check.output;
        EXPECT_EQ(check.output.find(kDbPassword), std::string::npos) << check.output;
        EXPECT_EQ(check.output.find(kRedisPassword), std::string::npos) << check.output;
        // Due again for the next format's run (skipped ones included: their lines count too).
        db.exec(
            "UPDATE cron SET next_run = (now() AT TIME ZONE 'UTC') - interval '1 minute' "
            "WHERE id <> 7");
    }
    // Redis AUTH end to end: the jobs are on the password-protected Redis.
    auto q = redis.client();
    EXPECT_EQ(q->integer({"LLEN", "builds_docker:active"}), 4);
    EXPECT_EQ(q->integer({"LLEN", "builds_qemu-x86_64:active"}), 2);
    EXPECT_EQ(db.count("SELECT count(*) FROM cron_builds"), 6);
}

// The service, not just one pass: start, leadership, passes, SIGTERM drain, at debug level.
TEST_F(SecretsLogging, ServiceRunAtDebugNeverPrintsAPassword) {
    SchedulerProcess p({"-config", write_config("text", "1s")}, env());
    ASSERT_TRUE(eventually(
        [&] { return p.output().find(" build(s) committed") != std::string::npos || !p.running(); },
        20s))
        << p.output();
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(25s), 0) << p.output();
    expect_no_secret(p.output(), "text", 10);
    EXPECT_EQ(db.count("SELECT count(*) FROM cron_builds"), 3) << p.output();
}

TEST_F(SecretsLogging, WrongRedisPasswordFailsClearlyWithoutEitherPassword) {
    const std::string wrong = "Wrong-Redis-Pa55-z8";
    auto r = run_scheduler({"-config", write_config("text", "1m", wrong), "-once"}, env(), 30s);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(r.output.find("WRONGPASS") != std::string::npos ||
                r.output.find("AUTH") != std::string::npos ||
                r.output.find("auth") != std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find(wrong), std::string::npos) << r.output;
    expect_no_secret(r.output, "text");
}

TEST_F(SecretsLogging, WrongDatabasePasswordFailsClearlyWithoutIt) {
    auto e = env();
    e["DJINN_IT_DB_PASSWORD"] = "Wrong-Db-Pa55-y3";
    auto r = run_scheduler({"-config", write_config("json"), "-once"}, e, 30s);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("password authentication failed"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("Wrong-Db-Pa55-y3"), std::string::npos) << r.output;
    expect_no_secret(r.output, "json");
}

}  // namespace
}  // namespace djinn::testing
