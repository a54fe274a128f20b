#pragma once
// Integration test support: the real PostgreSQL and Redis that scripts/test.sh starts (through
// DJINN_TEST_* environment variables), per-test databases made from the Djinn v1.3.0 template,
// and djinn-scheduler processes run as a user would run them.
#include <hiredis/hiredis.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace djinn::testing {

// The value of an environment variable the test script must set; fails the test run loudly
// (std::runtime_error) when it is missing, so integration tests never pass by skipping.
std::string required_env(const char* name);

std::string fixture_path(const std::string& relative);  // under tests/fixtures
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);
std::string temp_dir();  // a fresh directory under /tmp
// A TCP port on 127.0.0.1 that was free a moment ago (for a server the test starts itself).
int free_port();

// A database created from the Djinn v1.3.0 template; dropped at destruction.
class TestDatabase {
  public:
    TestDatabase();
    ~TestDatabase();
    const std::string& name() const { return name_; }
    // A superuser session on this database, for seeding and assertions.
    pqxx::connection& admin();
    // Another superuser session of its own (a concurrent writer, a lock holder).
    std::unique_ptr<pqxx::connection> new_admin_session() const;
    void exec(const std::string& sql);
    std::int64_t count(const std::string& sql);  // SELECT count(*)-like scalar
    std::string scalar(const std::string& sql);
    // The djinn_scheduler role's connection settings (password "secret").
    config::DatabaseConfig scheduler_config() const;
    std::string addr() const;
    // Run a psql-style SQL file as superuser.
    void exec_file(const std::string& path);

  private:
    std::string name_;
    std::unique_ptr<pqxx::connection> admin_;
};

// A minimal Redis client for assertions.
class Redis {
  public:
    Redis();  // the test Redis
    Redis(const std::string& host, int port);
    ~Redis();
    // Runs a command; returns the reply's string/integer/array rendered as strings.
    std::vector<std::string> command(const std::vector<std::string>& argv);
    std::string get_str(const std::vector<std::string>& argv);  // first element or ""
    long long integer(const std::vector<std::string>& argv);
    void flushall();
    std::string host;
    int port = 0;

  private:
    redisContext* ctx_ = nullptr;
};

std::string redis_addr();  // "host:port" of the test Redis

// A redis-server of the test's own (DJINN_TEST_REDIS_SERVER) on a free loopback port, to stop,
// freeze (SIGSTOP) and start again on the same port. Killed at destruction.
class RedisServer {
  public:
    explicit RedisServer(std::string password = "");
    ~RedisServer();
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;
    void start();  // (again) on the same port; throws when it does not answer within 10 s
    void stop();   // SIGKILL (its data is gone: it never saves)
    void signal(int sig) const;
    int port() const { return port_; }
    std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }
    std::unique_ptr<Redis> client() const;  // authenticated when there is a password

  private:
    std::string password_;
    int port_ = -1;
    pid_t pid_ = -1;
};

struct ProcessResult {
    int exit_code = -1;  // -signal when killed by a signal
    std::string output;  // stdout + stderr
};

// Runs djinn-scheduler with `args` to completion (bounded by `timeout`).
ProcessResult run_scheduler(const std::vector<std::string>& args,
                            const std::map<std::string, std::string>& env = {},
                            std::chrono::seconds timeout = std::chrono::seconds(120));

// A djinn-scheduler running in the background; killed (SIGKILL) at destruction if still running.
class SchedulerProcess {
  public:
    SchedulerProcess(const std::vector<std::string>& args,
                     const std::map<std::string, std::string>& env = {});
    ~SchedulerProcess();
    pid_t pid() const { return pid_; }
    void signal(int sig);
    // Waits for exit; returns the exit code (-signal), or nullopt-like -1000 on timeout.
    int wait(std::chrono::milliseconds timeout);
    bool running();
    std::string output() const;  // what it wrote so far
    const std::string& log_path() const { return log_path_; }

  private:
    pid_t pid_ = -1;
    int status_ = 0;
    bool exited_ = false;
    std::string log_path_;
};

// Djinn-format scheduler config for the test services.
struct ConfigOptions {
    std::string pidfile;
    std::string interval = "1m";
    int batch_size = 1000;
    std::vector<std::string> drivers = {"docker", "qemu-x86_64"};
    std::string password = "secret";  // may be "${VAR}"
    std::string log_level = "info";
    std::string log_file = "/dev/stdout";
    std::string http_addr;       // empty: no http block
    std::string extra;           // appended verbatim
    std::string database_extra;  // lines inside database { }, e.g. "statement_timeout 5s"
    std::string http_extra;      // lines inside http { }
    std::string redis_addr;      // empty: the test Redis
};
std::string djinn_config(const TestDatabase& db, const ConfigOptions& o);

// A docker manifest of one stage and one job (the crons of the recovery and idle-pass tests).
inline constexpr const char* kDockerManifest =
    "driver: {type: docker, image: alpine, workspace: /src}\nstages: [test]\njobs:\n"
    "- stage: test\n  commands: [make]";
// Users 1..n (user<i>, u<i>@example.com), users_id_seq set past them.
void add_users(TestDatabase& db, int n);

// What is wrong with the build numbers: "" when every user's builds are numbered 1..n, each
// number once; else which rule broke, with how many users.
std::string build_number_problems(TestDatabase& db);

// Polls `pred` every 20 ms until it is true or `timeout` passes.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

}  // namespace djinn::testing

namespace djinn::testing {

struct HttpResponse {
    int status = 0;  // 0: no answer
    std::string body;
};

// GET http://127.0.0.1:<port><path> with a plain socket (bounded by `timeout`).
HttpResponse http_get(int port, const std::string& path,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

// The HTTP port a scheduler logged ("serving /healthz /readyz /metrics on port N"), or 0.
int logged_http_port(const std::string& log);

// The value of an unlabelled metric sample in a Prometheus text exposition, or -1.
double metric_value(const std::string& exposition, const std::string& name);

// A running scheduler's /metrics value of `name` (-1 when absent or unreachable), and whether it
// reports itself leader (djinn_scheduler_leader 1).
double scheduler_metric(SchedulerProcess& p, const std::string& name);
bool scheduler_leads(SchedulerProcess& p);

}  // namespace djinn::testing

namespace djinn::testing {

// An independent reader of the gob payload (not our encoder run backwards): the stream holds
// the type definition message, then the value message {Host string; BuildID int64}.
struct GobValue {
    std::string host;
    std::int64_t build_id = 0;
};
GobValue decode_gob_payload(const std::string& bytes);

// The build id of a curlyq message as the scheduler writes it (fixmap, ID str8(36), Data bin8).
std::int64_t message_build_id(const std::string& message);

// builds_<driver> as a worker would find it: every entry of <queue>:data decoded (build id ->
// its job ids) and the ids on <queue>:active.
struct QueueContents {
    std::map<std::int64_t, std::vector<std::string>> jobs_of;
    std::vector<std::string> active;
    std::size_t data = 0;
    // Builds with more than one job, ids twice on the list, list ids without data.
    std::vector<std::int64_t> duplicated() const;
    std::size_t active_twice() const;
    std::size_t active_without_data(Redis& r, const std::string& driver) const;
};
QueueContents queue_contents(Redis& r, const std::string& driver);

// Puts a job for `build_id` on builds_<driver> exactly as the original Go scheduler (curlyq's
// producer) does: a random version-4 id, HSETNX <queue>:data + RPUSH <queue>:active, no marker.
// Returns the job id.
std::string enqueue_like_the_original(Redis& r, const std::string& driver, std::int64_t build_id);

}  // namespace djinn::testing
