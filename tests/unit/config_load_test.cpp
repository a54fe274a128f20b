#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "config/config.hpp"

namespace djinn::config {
namespace {

using namespace std::chrono_literals;

const std::string kFixtures = std::string(DJINN_FIXTURES_DIR) + "/config/";

Config load_ok(const LoadResult& result) {
    for (const auto& e : result.errors) {
        ADD_FAILURE() << e.to_string();
    }
    return result.config.value_or(Config{});
}

std::vector<std::string> strings(const std::vector<ConfigError>& list) {
    std::vector<std::string> out;
    for (const auto& e : list) {
        out.push_back(e.to_string());
    }
    return out;
}

TEST(ConfigLoadTest, SeedDocumentExampleLoadsWithDefaultsForTheRest) {
    const std::string path = kFixtures + "seed-scheduler.conf";
    Config c = load_ok(load_file(path));
    EXPECT_EQ(c.source, path);
    EXPECT_EQ(c.pidfile, "/var/run/djinn/scheduler.pid");
    EXPECT_EQ(c.log.level, LogLevel::info);
    EXPECT_EQ(c.log.file, "/var/log/djinn/scheduler.log");
    EXPECT_EQ(c.log.format, LogFormat::text);
    EXPECT_EQ(c.drivers, (std::vector<std::string>{"docker", "qemu-x86_64"}));
    EXPECT_EQ(c.database.addr, "localhost:5432");
    EXPECT_EQ(c.database.name, "djinn");
    EXPECT_EQ(c.database.username, "djinn-scheduler");
    EXPECT_EQ(c.database.password, "secret");
    EXPECT_FALSE(c.database.tls.has_value());
    EXPECT_EQ(c.redis.addr, "localhost:6379");
    EXPECT_EQ(c.redis.password, "");
    // Not in the example: the defaults (v1.3.0 has no default interval and crashes).
    EXPECT_EQ(c.interval, 1min);
    EXPECT_EQ(c.batch_size, 1000);
    EXPECT_EQ(c.crypto_salt, "");
    EXPECT_EQ(c.http.addr, "");
    EXPECT_EQ(c.leader.lock_key, 0x646a696e6e736368);
    EXPECT_EQ(c.leader.retry_interval, 2s);
    EXPECT_EQ(c.leader.lock_timeout, 10s);
    EXPECT_EQ(c.drain_timeout, 20s);
}

TEST(ConfigLoadTest, SeedExampleWarnsAboutTheMissingSalt) {
    auto result = load_file(kFixtures + "seed-scheduler.conf");
    EXPECT_EQ(strings(result.warnings),
              (std::vector<std::string>{
                  kFixtures +
                  "seed-scheduler.conf: crypto.salt: not set: artifact hashes are made with an "
                  "empty salt"}));
}

TEST(ConfigLoadTest, DjinnV130DistSchedulerConfLoads) {
    auto result = load_file(kFixtures + "djinn-v1.3.0-scheduler.conf");
    Config c = load_ok(result);
    EXPECT_TRUE(result.warnings.empty()) << strings(result.warnings)[0];
    EXPECT_EQ(c.pidfile, "/var/run/djinn/scheduler.pid");
    EXPECT_EQ(c.log.file, "/var/log/djinn/scheduler.log");
    EXPECT_EQ(c.drivers, (std::vector<std::string>{"qemu-x86_64"}));
    EXPECT_EQ(c.crypto_salt, "1a2b3c4d5e6f7g8h");
    EXPECT_EQ(c.database.username, "djinn_scheduler");
    EXPECT_EQ(c.database.password, "secret");
    EXPECT_FALSE(c.database.tls.has_value());  // the ssl block is commented out
    EXPECT_EQ(c.redis.addr, "localhost:6379");
    EXPECT_EQ(c.interval, 1min);
}

void expect_full(const Config& c) {
    EXPECT_EQ(c.pidfile, "/run/djinn/scheduler.pid");
    EXPECT_EQ(c.interval, 30s);
    EXPECT_EQ(c.batch_size, 250);
    EXPECT_EQ(c.log.level, LogLevel::debug);
    EXPECT_EQ(c.log.file, "/dev/stderr");
    EXPECT_EQ(c.log.format, LogFormat::json);
    EXPECT_EQ(c.drivers, (std::vector<std::string>{"docker", "qemu-x86_64", "ssh", "os"}));
    EXPECT_EQ(c.crypto_salt, "s3cr3t-salt");
    EXPECT_EQ(c.database.addr, "db.internal:6432");
    EXPECT_EQ(c.database.name, "djinn_prod");
    EXPECT_EQ(c.database.username, "djinn_scheduler");
    EXPECT_EQ(c.database.password, "db-pass-123");
    ASSERT_TRUE(c.database.tls.has_value());
    EXPECT_EQ(c.database.tls->ca, "/etc/ssl/ca.crt");
    EXPECT_EQ(c.database.tls->cert, "/etc/ssl/client.crt");
    EXPECT_EQ(c.database.tls->key, "/etc/ssl/client.key");
    EXPECT_EQ(c.redis.addr, "redis.internal:6380");
    EXPECT_EQ(c.redis.password, "redis-pass-456");
    EXPECT_EQ(c.http.addr, "127.0.0.1:9090");
    EXPECT_EQ(c.leader.lock_key, 42);
    EXPECT_EQ(c.leader.retry_interval, 1500ms);
    EXPECT_EQ(c.leader.lock_timeout, 15s);
    EXPECT_EQ(c.drain_timeout, 90s);
}

TEST(ConfigLoadTest, EveryKey) {
    auto result = load_file(kFixtures + "full.conf");
    expect_full(load_ok(result));
    EXPECT_TRUE(result.warnings.empty());
}

TEST(ConfigLoadTest, DispatchSessionsDefaultsToOneAndTakesItsValue) {
    EXPECT_EQ(load_ok(load_djinn("database { name \"n\" }\n", "c.conf")).database.dispatch_sessions,
              1);
    EXPECT_EQ(load_ok(load_djinn("database { dispatch_sessions 4 }\n", "c.conf"))
                  .database.dispatch_sessions,
              4);
}

TEST(ConfigLoadTest, KeysMatchCaseInsensitively) {
    Config c = load_ok(load_djinn(
        "PIDFILE \"/p\"\nInterval 2m\nBatch_Size 5\nLOG WARN \"/dev/stdout\"\n"
        "Database { ADDR \"h:1\"; Name \"n\" }\nREDIS { Addr \"r:2\" }\nLog_Format \"JSON\"\n"
        "DRIVERS [\"docker\",]\nLeader { KEY 7 }\n",
        "c.conf"));
    EXPECT_EQ(c.pidfile, "/p");
    EXPECT_EQ(c.interval, 2min);
    EXPECT_EQ(c.batch_size, 5);
    EXPECT_EQ(c.log.level, LogLevel::warn);
    EXPECT_EQ(c.database.addr, "h:1");
    EXPECT_EQ(c.database.name, "n");
    EXPECT_EQ(c.redis.addr, "r:2");
    EXPECT_EQ(c.log.format, LogFormat::json);
    EXPECT_EQ(c.leader.lock_key, 7);
}

TEST(ConfigLoadTest, SemicolonsAndOneLineBlocks) {
    Config c = load_ok(load_djinn(
        "interval 5m; batch_size 10; database { addr \"a:1\"; name \"d\" }; drivers [\"os\"]",
        "c.conf"));
    EXPECT_EQ(c.interval, 5min);
    EXPECT_EQ(c.batch_size, 10);
    EXPECT_EQ(c.database.name, "d");
    EXPECT_EQ(c.drivers, (std::vector<std::string>{"os"}));
}

TEST(ConfigLoadTest, EnvironmentVariablesInStrings) {
    ::setenv("DJINN_TEST_DB_PASSWORD", "p@ss \"word\"", 1);
    ::setenv("DJINN_TEST_HOST", "db.example", 1);
    ::unsetenv("DJINN_TEST_UNSET");
    auto result = load_djinn(
        "database {\n"
        "    addr \"${DJINN_TEST_HOST}:5432\"\n"
        "    password \"${DJINN_TEST_DB_PASSWORD}\"\n"
        "    username \"x${DJINN_TEST_UNSET}y\"\n"
        "    name \"cost\\${DJINN_TEST_HOST}\"\n"
        "}\n",
        "env.conf");
    Config c = load_ok(result);
    EXPECT_EQ(c.database.addr, "db.example:5432");
    EXPECT_EQ(c.database.password, "p@ss \"word\"");
    // Like Djinn: an unset variable is the empty string (and here also a warning).
    EXPECT_EQ(c.database.username, "xy");
    EXPECT_EQ(c.database.name, "cost${DJINN_TEST_HOST}");
    EXPECT_EQ(strings(result.warnings),
              (std::vector<std::string>{
                  "env.conf:4:14: database.username: environment variable DJINN_TEST_UNSET is "
                  "not set: it expands to \"\"",
                  "env.conf: crypto.salt: not set: artifact hashes are made with an empty salt",
                  "env.conf: drivers: no drivers: no cron will be dispatched",
              }));
    ::unsetenv("DJINN_TEST_DB_PASSWORD");
    ::unsetenv("DJINN_TEST_HOST");
}

TEST(ConfigLoadTest, StringEscapes) {
    Config c = load_ok(load_djinn(R"(pidfile "a\"b\\c\n")", "c.conf"));
    EXPECT_EQ(c.pidfile, "a\"b\\cn");
}

TEST(ConfigLoadTest, LogForms) {
    EXPECT_EQ(load_ok(load_djinn("log error \"/var/log/s.log\"", "c.conf")).log.level,
              LogLevel::error);
    // The block form is also Djinn syntax (a block decodes into Djinn's map), and YAML's shape.
    Config block = load_ok(load_djinn("log { warn \"/dev/stderr\" }", "c.conf"));
    EXPECT_EQ(block.log.level, LogLevel::warn);
    EXPECT_EQ(block.log.file, "/dev/stderr");
    // Several levels: Djinn uses the most verbose one and its file.
    auto several = load_djinn("log info \"/a\"\nlog debug \"/b\"\nlog error \"/c\"\n", "c.conf");
    Config c = load_ok(several);
    EXPECT_EQ(c.log.level, LogLevel::debug);
    EXPECT_EQ(c.log.file, "/b");
    EXPECT_EQ(strings(several.warnings)[0],
              "c.conf:2:5: log: several log entries: like Djinn, only the most verbose one is "
              "used (debug to /b)");
}

TEST(ConfigLoadTest, DeprecatedSslSpellingIsAcceptedWithAWarning) {
    auto result = load_djinn(
        "database {\n  ssl {\n    ca \"/ca\"\n    cert \"/c\"\n    key \"/k\"\n  }\n}\n", "c.conf");
    Config c = load_ok(result);
    ASSERT_TRUE(c.database.tls.has_value());
    EXPECT_EQ(c.database.tls->ca, "/ca");
    EXPECT_EQ(c.database.tls->cert, "/c");
    EXPECT_EQ(c.database.tls->key, "/k");
    EXPECT_EQ(strings(result.warnings)[0],
              "c.conf:2:3: database.ssl: ssl is deprecated, use tls instead");
}

TEST(ConfigLoadTest, TlsWithOnlyTheCa) {
    Config c = load_ok(load_djinn("database { tls { ca \"/ca\" } }", "c.conf"));
    ASSERT_TRUE(c.database.tls.has_value());
    EXPECT_EQ(c.database.tls->cert, "");
}

TEST(ConfigLoadTest, CryptoKeysOfOtherDjinnComponentsAreIgnoredWithAWarning) {
    auto result = load_djinn(
        "crypto {\n  hash \"h\"\n  block \"0123456789abcdef\"\n  salt \"s\"\n  auth \"a\"\n}\n",
        "c.conf");
    EXPECT_EQ(load_ok(result).crypto_salt, "s");
    EXPECT_EQ(result.warnings.size(), 4U);  // hash, block, auth, no drivers
}

TEST(ConfigLoadTest, AddressForms) {
    Config c = load_ok(
        load_djinn("database { addr \"/var/run/postgresql\" }\nredis { addr \"[::1]:6379\" }\n"
                   "http { addr \":9090\" }\n",
                   "c.conf"));
    EXPECT_EQ(c.database.addr, "/var/run/postgresql");
    EXPECT_EQ(c.redis.addr, "[::1]:6379");
    EXPECT_EQ(c.http.addr, ":9090");
}

TEST(ConfigLoadTest, EmptyFileIsAllDefaults) {
    Config c = load_ok(load_djinn("", "empty.conf"));
    EXPECT_EQ(c.interval, 1min);
    EXPECT_EQ(c.log.file, "/dev/stdout");
}

TEST(ConfigLoadTest, DescribeNeverShowsSecrets) {
    Config c = load_ok(load_file(kFixtures + "full.conf"));
    const std::string line = describe(c);
    EXPECT_EQ(line.find("db-pass-123"), std::string::npos) << line;
    EXPECT_EQ(line.find("redis-pass-456"), std::string::npos) << line;
    EXPECT_EQ(line.find("s3cr3t-salt"), std::string::npos) << line;
    EXPECT_NE(line.find("djinn_scheduler@db.internal:6432/djinn_prod"), std::string::npos) << line;
    EXPECT_NE(line.find("database.password=set"), std::string::npos) << line;
    EXPECT_NE(line.find("redis=redis.internal:6380"), std::string::npos) << line;
    EXPECT_NE(line.find("interval=30s"), std::string::npos) << line;
    EXPECT_NE(line.find("drivers=[docker,qemu-x86_64,ssh,os]"), std::string::npos) << line;
}

TEST(ConfigLoadTest, KnownDrivers) {
    EXPECT_EQ(known_drivers(), (std::vector<std::string>{"docker", "os", "qemu-x86_64", "ssh"}));
}

}  // namespace
}  // namespace djinn::config

namespace djinn::config {
namespace {

// The configs this project ships (dist/, deploy/) must load as they are.
TEST(ConfigLoadTest, ShippedConfigsLoad) {
    const std::string root = DJINN_SOURCE_DIR;
    for (const char* relative :
         {"/dist/scheduler.conf", "/dist/scheduler.yaml", "/deploy/base/scheduler.yaml",
          "/deploy/overlays/example/scheduler.yaml"}) {
        const std::string path = root + relative;
        if (!std::ifstream(path)) {
            continue;  // not written yet
        }
        auto result = load_file(path);
        for (const auto& e : result.errors) {
            ADD_FAILURE() << e.to_string();
        }
    }
}

}  // namespace
}  // namespace djinn::config
