#pragma once
// PostgreSQL servers of a test's own, for what the shared test server cannot do: a primary with
// a streaming standby to promote (PgCluster), and Debian's PgBouncer in front of a server
// (PgBouncer). All on free loopback ports, run as the postgres user when the tests run as root,
// stopped and deleted at destruction.
#include <sys/types.h>

#include <pqxx/pqxx>

#include <memory>
#include <string>

namespace djinn::testing {

class PgCluster {
  public:
    // initdb + start, with the Djinn v1.3.0 schema and its scheduler role (password "secret",
    // plus the two sequence grants Djinn forgot) in database "djinn"; ready for standbys.
    static std::unique_ptr<PgCluster> primary();
    // pg_basebackup -R of `primary`, started as a hot standby on its own port.
    static std::unique_ptr<PgCluster> standby_of(const PgCluster& primary);
    ~PgCluster();
    PgCluster(const PgCluster&) = delete;
    PgCluster& operator=(const PgCluster&) = delete;

    void start();
    void stop(const std::string& mode = "fast");  // pg_ctl stop -m <mode>
    void promote();                               // pg_ctl promote -w
    bool running() const { return running_; }
    int port() const { return port_; }
    std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }
    std::unique_ptr<pqxx::connection> admin(const std::string& db = "djinn") const;
    void exec(const std::string& sql, const std::string& db = "djinn") const;
    std::int64_t count(const std::string& sql) const;

  private:
    PgCluster() = default;
    std::string dir_;
    std::string data_;
    int port_ = 0;
    bool running_ = false;
};

// PgBouncer 1.18 in front of host:port, md5 auth for djinn_scheduler/"secret", with PgBouncer's
// defaults otherwise (it refuses an `options` startup parameter).
class PgBouncer {
  public:
    // `extra`: more [pgbouncer] settings, one per line.
    PgBouncer(const std::string& pg_host, int pg_port, const std::string& pool_mode,
              const std::string& extra = "");
    ~PgBouncer();
    PgBouncer(const PgBouncer&) = delete;
    PgBouncer& operator=(const PgBouncer&) = delete;
    int port() const { return port_; }
    std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }
    std::string log() const;

  private:
    std::string dir_;
    int port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace djinn::testing
