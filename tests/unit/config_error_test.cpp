#include <gtest/gtest.h>

#include "config/config.hpp"

namespace djinn::config {
namespace {

// The errors of loading `text` as "e.conf", as "file:line:column: key: message".
std::vector<std::string> errors(const std::string& text) {
    auto result = load_djinn(text, "e.conf");
    EXPECT_FALSE(result.config.has_value());
    std::vector<std::string> out;
    for (const auto& e : result.errors) {
        out.push_back(e.to_string());
    }
    return out;
}

std::string error(const std::string& text) {
    auto all = errors(text);
    EXPECT_EQ(all.size(), 1U) << (all.empty() ? "" : all.back());
    return all.empty() ? "" : all.front();
}

TEST(ConfigErrorTest, ToStringShapes) {
    EXPECT_EQ((ConfigError{"a.conf", 3, 7, "database.tls.ca", "required"}).to_string(),
              "a.conf:3:7: database.tls.ca: required");
    EXPECT_EQ(
        (ConfigError{"a.conf", 0, 0, "", "cannot read: No such file or directory"}).to_string(),
        "a.conf: cannot read: No such file or directory");
    EXPECT_EQ((ConfigError{"a.conf", 2, 1, "", "expected a name"}).to_string(),
              "a.conf:2:1: expected a name");
}

TEST(ConfigErrorTest, UnknownKeys) {
    EXPECT_EQ(error("intervall 1m"),
              "e.conf:1:1: intervall: unknown key (did you mean 'interval'?)");
    EXPECT_EQ(error("database {\n  address \"x:1\"\n}"),
              "e.conf:2:3: database.address: unknown key (did you mean 'addr'?)");
    EXPECT_EQ(error("database { usrname \"u\" }"),
              "e.conf:1:12: database.usrname: unknown key (did you mean 'username'?)");
    EXPECT_EQ(error("redis { timeout 5s }"),
              "e.conf:1:9: redis.timeout: unknown key (known here: addr, password)");
    EXPECT_EQ(error("database { tls { capath \"/x\" } }"),
              "e.conf:1:18: database.tls.capath: unknown key (did you mean 'ca'?)");
}

TEST(ConfigErrorTest, WrongTypes) {
    EXPECT_EQ(error("batch_size \"10\""),
              "e.conf:1:12: batch_size: expected an integer, got string \"10\"");
    EXPECT_EQ(error("batch_size 1.5"),
              "e.conf:1:12: batch_size: expected an integer, got float 1.5");
    EXPECT_EQ(error("batch_size 1KB"),
              "e.conf:1:12: batch_size: expected an integer, got size 1KB");
    EXPECT_EQ(error("pidfile 5"), "e.conf:1:9: pidfile: expected a string, got integer 5");
    EXPECT_EQ(error("pidfile true"), "e.conf:1:9: pidfile: expected a string, got boolean true");
    EXPECT_EQ(error("interval 60"),
              "e.conf:1:10: interval: expected a duration, got integer 60 (a duration needs a "
              "unit: 60s, 60m, ...)");
    EXPECT_EQ(error("interval \"1m\""),
              "e.conf:1:10: interval: expected a duration, got string \"1m\" (e.g. 1m, 1h30m, "
              "500ms)");
    EXPECT_EQ(error("database \"localhost\""),
              "e.conf:1:10: database: expected a block { ... }, got string \"localhost\"");
    EXPECT_EQ(error("drivers \"docker\""),
              "e.conf:1:9: drivers: expected an array of strings [\"docker\", ], got string "
              "\"docker\"");
    EXPECT_EQ(error("drivers [\"docker\", 5,]"),
              "e.conf:1:20: drivers[1]: expected a string, got integer 5");
    EXPECT_EQ(error("leader { key \"1\" }"),
              "e.conf:1:14: leader.key: expected an integer, got string \"1\"");
    EXPECT_EQ(error("redis { addr [\"a:1\",] }"),
              "e.conf:1:14: redis.addr: expected a string, got array");
}

TEST(ConfigErrorTest, BadValues) {
    EXPECT_EQ(error("interval -1m"), "e.conf:1:10: interval: must be a positive duration, got -1m");
    EXPECT_EQ(error("interval 0s"), "e.conf:1:10: interval: must be a positive duration, got 0s");
    EXPECT_EQ(error("interval 1h30"),
              "e.conf:1:10: interval: missing unit in duration \"1h30\" (use ns, us, ms, s, m or "
              "h)");
    EXPECT_EQ(error("drain_timeout 10us"),
              "e.conf:1:15: drain_timeout: must be at least 1ms, got 10us");
    EXPECT_EQ(error("leader { lock_timeout -5s }"),
              "e.conf:1:23: leader.lock_timeout: must be a positive duration, got -5s");
    EXPECT_EQ(error("batch_size 0"),
              "e.conf:1:12: batch_size: must be between 1 and 100000, got 0");
    EXPECT_EQ(error("batch_size 100001"),
              "e.conf:1:12: batch_size: must be between 1 and 100000, got 100001");
    EXPECT_EQ(error("batch_size -5"),
              "e.conf:1:12: batch_size: must be between 1 and 100000, got -5");
    EXPECT_EQ(error("leader { key 9223372036854775808 }"),
              "e.conf:1:14: leader.key: integer 9223372036854775808 is out of range");
    EXPECT_EQ(error("database { addr \"localhost\" }"),
              "e.conf:1:17: database.addr: expected \"host:port\", got \"localhost\" (no port)");
    EXPECT_EQ(error("redis { addr \"localhost:99999\" }"),
              "e.conf:1:14: redis.addr: invalid port \"99999\" in \"localhost:99999\" (expected 1 "
              "to 65535)");
    EXPECT_EQ(error("redis { addr \":6379\" }"),
              "e.conf:1:14: redis.addr: expected \"host:port\", got \":6379\" (no host)");
    EXPECT_EQ(error("redis { addr \"::1:6379\" }"),
              "e.conf:1:14: redis.addr: expected \"host:port\", got \"::1:6379\" (put an IPv6 host "
              "in brackets: \"[::1]:5432\")");
    EXPECT_EQ(error("http { addr \"localhost:http\" }"),
              "e.conf:1:13: http.addr: invalid port \"http\" in \"localhost:http\" (expected 0 to "
              "65535)");
    EXPECT_EQ(error("redis { addr \"localhost:0\" }"),
              "e.conf:1:14: redis.addr: invalid port \"0\" in \"localhost:0\" (expected 1 to "
              "65535)");
    EXPECT_EQ(error("database { name \"\" }"), "e.conf:1:17: database.name: must not be empty");
    EXPECT_EQ(error("log_format \"xml\""),
              "e.conf:1:12: log_format: unknown log format \"xml\" (use text or json)");
    EXPECT_EQ(error("pidfile \"${OOPS\""), "e.conf:1:9: pidfile: \"${\" without a closing \"}\"");
    EXPECT_EQ(error("pidfile \"${}\""), "e.conf:1:9: pidfile: empty variable name in \"${}\"");
}

TEST(ConfigErrorTest, Drivers) {
    EXPECT_EQ(error("drivers [\"qemu\",]"),
              "e.conf:1:10: drivers[0]: unknown driver \"qemu\" (the scheduler queues qemu builds "
              "as \"qemu-x86_64\")");
    EXPECT_EQ(error("drivers [\"docker\", \"kvm\",]"),
              "e.conf:1:20: drivers[1]: unknown driver \"kvm\" (known: docker, os, qemu-x86_64, "
              "ssh)");
    EXPECT_EQ(error("drivers [\"docker\", \"docker\",]"),
              "e.conf:1:20: drivers[1]: driver \"docker\" is listed twice");
}

TEST(ConfigErrorTest, Log) {
    EXPECT_EQ(error("log verbose \"/dev/stdout\""),
              "e.conf:1:5: log.verbose: unknown log level 'verbose' (use debug, info, warn or "
              "error)");
    EXPECT_EQ(error("log info \"/a\"\nlog info \"/b\""),
              "e.conf:2:5: log.info: duplicate log level; first set at e.conf:1:5");
    EXPECT_EQ(error("log \"/dev/stdout\""),
              "e.conf:1:5: log: expected `log <level> <file>` (e.g. log info \"/dev/stdout\"), "
              "got string \"/dev/stdout\"");
    EXPECT_EQ(error("log info \"\""),
              "e.conf:1:10: log.info: log file must not be empty (use \"/dev/stdout\")");
    EXPECT_EQ(error("log info 5"), "e.conf:1:10: log.info: expected a string, got integer 5");
}

TEST(ConfigErrorTest, ShapeOfKeys) {
    EXPECT_EQ(error("database main { }"),
              "e.conf:1:10: database: takes no label (found 'main' between key and value)");
    EXPECT_EQ(error("interval 1m\ninterval 2m"),
              "e.conf:2:1: interval: duplicate key; first set at e.conf:1:1");
    EXPECT_EQ(error("database { name \"a\" }\ndatabase { name \"b\" }"),
              "e.conf:2:1: database: duplicate key; first set at e.conf:1:1");
}

TEST(ConfigErrorTest, CrossFieldTlsRules) {
    EXPECT_EQ(error("database {\n  tls {\n    cert \"/c\"\n    key \"/k\"\n  }\n}"),
              "e.conf:2:3: database.tls.ca: required when database.tls is set: the connection "
              "verifies the server (sslmode=verify-full)");
    EXPECT_EQ(error("database {\n  tls {\n    ca \"/ca\"\n    cert \"/c\"\n  }\n}"),
              "e.conf:4:5: database.tls.key: required when database.tls.cert is set: a client "
              "certificate needs its key");
    EXPECT_EQ(error("database { ssl { ca \"/ca\"; key \"/k\" } }"),
              "e.conf:1:28: database.ssl.cert: required when database.ssl.key is set: a client "
              "certificate needs its key");
    EXPECT_EQ(error("database {\n  tls { ca \"/a\" }\n  ssl { ca \"/b\" }\n}"),
              "e.conf:3:3: database.ssl: database.ssl is the deprecated spelling of "
              "database.tls: keep only tls");
    EXPECT_EQ(error("database { tls {} }"),
              "e.conf:1:12: database.tls.ca: required when database.tls is set: the connection "
              "verifies the server (sslmode=verify-full)");
    EXPECT_EQ(error("database { tls { ca \"\" } }"),
              "e.conf:1:21: database.tls.ca: must not be empty (leave the key out instead)");
}

TEST(ConfigErrorTest, ATypeErrorDoesNotAlsoReportARequiredKey) {
    // ca is wrong in pass 1, so pass 2 does not add "ca required" on top.
    EXPECT_EQ(error("database { tls { ca 5 } }"),
              "e.conf:1:21: database.tls.ca: expected a string, got integer 5");
}

TEST(ConfigErrorTest, DispatchSessionsOutsideOneToThirtyTwo) {
    EXPECT_EQ(error("database { dispatch_sessions 0 }"),
              "e.conf:1:30: database.dispatch_sessions: must be between 1 and 32, got 0");
    EXPECT_EQ(error("database {\n  dispatch_sessions 33\n}"),
              "e.conf:2:21: database.dispatch_sessions: must be between 1 and 32, got 33");
    EXPECT_EQ(error("database { dispatch_sessions \"2\" }"),
              "e.conf:1:30: database.dispatch_sessions: expected an integer, got string \"2\"");
}

TEST(ConfigErrorTest, AllErrorsAreReportedTogetherInFileOrder) {
    EXPECT_EQ(errors("interval 0s\n"
                     "batch_size \"many\"\n"
                     "database {\n"
                     "  addr \"nohost\"\n"
                     "  tls { cert \"/c\" }\n"
                     "  colour \"blue\"\n"
                     "}\n"
                     "drivers [\"qemu\", \"docker\",]\n"
                     "log loud \"/dev/stdout\"\n"
                     "leader { retry_interval 5 }\n"),
              (std::vector<std::string>{
                  "e.conf:1:10: interval: must be a positive duration, got 0s",
                  "e.conf:2:12: batch_size: expected an integer, got string \"many\"",
                  "e.conf:4:8: database.addr: expected \"host:port\", got \"nohost\" (no port)",
                  "e.conf:5:3: database.tls.ca: required when database.tls is set: the "
                  "connection verifies the server (sslmode=verify-full)",
                  "e.conf:5:9: database.tls.key: required when database.tls.cert is set: a "
                  "client certificate needs its key",
                  "e.conf:6:3: database.colour: unknown key (known here: addr, name, username, "
                  "password, tls, ssl, statement_timeout, dispatch_sessions)",
                  "e.conf:8:10: drivers[0]: unknown driver \"qemu\" (the scheduler queues qemu "
                  "builds as \"qemu-x86_64\")",
                  "e.conf:9:5: log.loud: unknown log level 'loud' (use debug, info, warn or "
                  "error)",
                  "e.conf:10:25: leader.retry_interval: expected a duration, got integer 5 (a "
                  "duration needs a unit: 5s, 5m, ...)",
              }));
}

TEST(ConfigErrorTest, SyntaxAndTypeErrorsTogether) {
    // A syntax error does not hide the type errors elsewhere in the file.
    EXPECT_EQ(errors("batch_size 0\ndrivers [\"docker\"\n]\ninterval 5\n"),
              (std::vector<std::string>{
                  "e.conf:1:12: batch_size: must be between 1 and 100000, got 0",
                  "e.conf:2:18: drivers: expected ',' or ']': an element followed by a newline "
                  "needs a comma",
                  "e.conf:4:10: interval: expected a duration, got integer 5 (a duration needs a "
                  "unit: 5s, 5m, ...)",
              }));
}

TEST(ConfigErrorTest, UnreadableFile) {
    auto result = load_file("/nonexistent/djinn/scheduler.conf");
    ASSERT_EQ(result.errors.size(), 1U);
    EXPECT_EQ(result.errors[0].to_string(),
              "/nonexistent/djinn/scheduler.conf: cannot read: No such file or directory");
}

}  // namespace
}  // namespace djinn::config

namespace djinn::config {
namespace {

TEST(ConfigErrorTest, LeaderTimingRules) {
    // A standby idles on its lock session between attempts; the server ends sessions idle
    // for lock_timeout, so attempts must be more frequent than that.
    EXPECT_EQ(error("leader {\n  retry_interval 10s\n  lock_timeout 5s\n}"),
              "e.conf:2:3: leader.retry_interval: must be shorter than leader.lock_timeout (5000 "
              "ms)");
    EXPECT_EQ(errors("leader { lock_timeout 500ms }"),
              (std::vector<std::string>{
                  "e.conf:1:10: leader.retry_interval: must be shorter than leader.lock_timeout "
                  "(500 ms)",
                  "e.conf:1:10: leader.lock_timeout: must be at least 1s"}));
    EXPECT_TRUE(
        load_djinn("leader { retry_interval 1s\n lock_timeout 4s }", "ok.conf").errors.empty());
}

// No batch_size the config accepts can outlive the session's timeouts: the client's work between
// two statements of a batch must fit in lock_timeout (idle_in_transaction_session_timeout), and
// the largest statement in statement_timeout.
TEST(ConfigErrorTest, BatchSizeMustFitTheSessionTimeouts) {
    EXPECT_TRUE(load_djinn("batch_size 100000", "ok.conf").errors.empty());  // the defaults
    EXPECT_TRUE(
        load_djinn("batch_size 10000\nleader { retry_interval 500ms\n lock_timeout 1s }", "ok.conf")
            .errors.empty());
    EXPECT_EQ(error("batch_size 20000\nleader { retry_interval 500ms\n lock_timeout 1s }"),
              "e.conf:1:1: batch_size: 20000 crons per transaction need a leader.lock_timeout of "
              "at least 2s: the server ends a session idle in a transaction for lock_timeout, and "
              "a batch's work between two statements grows with it; use batch_size <= 10000 or "
              "raise leader.lock_timeout");
    EXPECT_EQ(error("batch_size 50000\ndatabase { statement_timeout 20s }\nhttp { liveness_timeout "
                    "1m }"),
              "e.conf:1:1: batch_size: 50000 crons per transaction need a "
              "database.statement_timeout of at least 30s: a batch's largest statement grows "
              "with it; use batch_size <= 33333 or raise database.statement_timeout");
}

TEST(ConfigErrorTest, LivenessWindowMustExceedAStatement) {
    EXPECT_TRUE(
        load_djinn("database { statement_timeout 5s }\nhttp { liveness_timeout 15s }", "ok.conf")
            .errors.empty());
    EXPECT_EQ(error("http {\n  liveness_timeout 30s\n}"),
              "e.conf:2:3: http.liveness_timeout: must be at least database.statement_timeout + "
              "10s (70000 ms): a single statement may run that long while the loop is healthy");
    EXPECT_EQ(error("database {\n  statement_timeout 200ms\n}"),
              "e.conf:2:3: database.statement_timeout: must be at least 1s");
}

}  // namespace
}  // namespace djinn::config
