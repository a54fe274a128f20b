#include "pg_servers.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "test_env.hpp"

namespace djinn::testing {
namespace {

using namespace std::chrono_literals;

// `cmd` as the postgres user when we are root (PostgreSQL and PgBouncer refuse to run as root).
std::string as_postgres(const std::string& cmd) {
    return ::geteuid() == 0 ? "runuser -u postgres -- " + cmd : cmd;
}

void run(const std::string& cmd) {
    if (std::system(cmd.c_str()) != 0)
        throw std::runtime_error("failed: " + cmd);
}

std::string pg_bin(const std::string& tool) {
    return required_env("DJINN_TEST_PGBIN") + "/" + tool;
}

std::string owned_temp_dir() {
    std::string dir = temp_dir();
    if (::geteuid() == 0)
        run("chown postgres " + dir);
    return dir;
}

std::string psql(int port, const std::string& db) {
    return "psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p " + std::to_string(port) +
           " -U postgres -d " + db;
}

}  // namespace

std::unique_ptr<PgCluster> PgCluster::primary() {
    std::unique_ptr<PgCluster> c(new PgCluster());
    c->dir_ = owned_temp_dir();
    c->data_ = c->dir_ + "/data";
    run(as_postgres(pg_bin("initdb") + " -D " + c->data_ +
                    " -U postgres -A trust -E UTF8 --locale=C.UTF-8 >" + c->dir_ +
                    "/initdb.log 2>&1"));
    write_file(c->data_ + "/pg_hba.conf",
               "local all postgres trust\n"
               "host all postgres 127.0.0.1/32 trust\n"
               "host replication postgres 127.0.0.1/32 trust\n"
               "host all all 127.0.0.1/32 scram-sha-256\n");
    c->port_ = free_port();
    c->start();
    run(psql(c->port_, "postgres") + " -c 'CREATE DATABASE djinn' >/dev/null");
    run(psql(c->port_, "djinn") + " -f " + fixture_path("djinn-v1.3.0-schema.sql") + " >/dev/null");
    run(psql(c->port_, "djinn") + " -v dbname=djinn -f " +
        fixture_path("djinn-v1.3.0-scheduler-role.sql") + " >/dev/null");
    c->exec("GRANT USAGE ON SEQUENCE build_variables_id_seq, build_keys_id_seq TO djinn_scheduler");
    return c;
}

std::unique_ptr<PgCluster> PgCluster::standby_of(const PgCluster& primary) {
    std::unique_ptr<PgCluster> c(new PgCluster());
    c->dir_ = owned_temp_dir();
    c->data_ = c->dir_ + "/data";
    run(as_postgres(pg_bin("pg_basebackup") + " -h 127.0.0.1 -p " + std::to_string(primary.port_) +
                    " -U postgres -D " + c->data_ + " -R -X stream -c fast >" + c->dir_ +
                    "/basebackup.log 2>&1"));
    c->port_ = free_port();
    c->start();
    return c;
}

void PgCluster::start() {
    // The standby needs the primary's max_connections (a lower value refuses to start).
    run(as_postgres(pg_bin("pg_ctl") + " -D " + data_ + " -l " + dir_ + "/postgres.log -w -t 60" +
                    " -o '-c listen_addresses=127.0.0.1 -p " + std::to_string(port_) + " -k " +
                    dir_ +
                    " -c fsync=off -c full_page_writes=off -c max_connections=50"
                    " -c wal_level=replica -c max_wal_senders=5 -c hot_standby=on'"
                    " start >/dev/null"));
    running_ = true;
}

void PgCluster::stop(const std::string& mode) {
    if (!running_)
        return;
    (void)std::system(as_postgres(pg_bin("pg_ctl") + " -D " + data_ + " -m " + mode +
                                  " -w -t 60 stop >/dev/null 2>&1")
                          .c_str());
    running_ = false;
}

void PgCluster::promote() {
    run(as_postgres(pg_bin("pg_ctl") + " -D " + data_ + " -w -t 60 promote >/dev/null"));
}

PgCluster::~PgCluster() {
    stop("immediate");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::unique_ptr<pqxx::connection> PgCluster::admin(const std::string& db) const {
    return std::make_unique<pqxx::connection>("host=127.0.0.1 port=" + std::to_string(port_) +
                                              " user=postgres dbname=" + db +
                                              " options='-c TimeZone=UTC'");
}

void PgCluster::exec(const std::string& sql, const std::string& db) const {
    auto c = admin(db);
    pqxx::work tx(*c);
    tx.exec(sql);
    tx.commit();
}

std::int64_t PgCluster::count(const std::string& sql) const {
    auto c = admin();
    pqxx::nontransaction tx(*c);
    return tx.exec1(sql)[0].as<std::int64_t>();
}

PgBouncer::PgBouncer(const std::string& pg_host, int pg_port, const std::string& pool_mode,
                     const std::string& extra) {
    dir_ = owned_temp_dir();
    port_ = free_port();
    write_file(dir_ + "/userlist.txt", "\"djinn_scheduler\" \"secret\"\n\"postgres\" \"\"\n");
    write_file(
        dir_ + "/pgbouncer.ini",
        "[databases]\n* = host=" + pg_host + " port=" + std::to_string(pg_port) +
            "\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = " + std::to_string(port_) +
            "\nunix_socket_dir =\nauth_type = md5\nauth_file = " + dir_ +
            "/userlist.txt\npool_mode = " + pool_mode + "\nlogfile = " + dir_ +
            "/pgbouncer.log\npidfile = " + dir_ + "/pgbouncer.pid\nadmin_users = postgres\n" +
            extra);
    if (::geteuid() == 0)
        run("chown -R postgres " + dir_);
    pid_ = ::fork();
    if (pid_ == 0) {
        // Its log goes to the file; keep the tests' output clean.
        const int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 1);
        ::dup2(null, 2);
        const std::string ini = dir_ + "/pgbouncer.ini";
        if (::geteuid() == 0) {
            ::execlp("runuser", "runuser", "-u", "postgres", "--", "pgbouncer", ini.c_str(),
                     static_cast<char*>(nullptr));
        } else {
            ::execlp("pgbouncer", "pgbouncer", ini.c_str(), static_cast<char*>(nullptr));
        }
        ::_exit(127);
    }
    if (!eventually(
            [&] {
                try {
                    pqxx::connection c("host=127.0.0.1 port=" + std::to_string(port_) +
                                       " user=djinn_scheduler password=secret dbname=postgres "
                                       "connect_timeout=2");
                    return true;
                } catch (const std::exception&) {
                    return false;
                }
            },
            10s)) {
        throw std::runtime_error("pgbouncer did not start: " + log());
    }
}

PgBouncer::~PgBouncer() {
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);  // runuser passes it on
        (void)::waitpid(pid_, nullptr, 0);
    }
    (void)std::system(("pkill -f 'pgbouncer " + dir_ + "/pgbouncer.ini' >/dev/null 2>&1").c_str());
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::string PgBouncer::log() const {
    try {
        return read_file(dir_ + "/pgbouncer.log");
    } catch (const std::exception&) {
        return "";
    }
}

}  // namespace djinn::testing
