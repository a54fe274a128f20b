// TLS to PostgreSQL with sslmode=verify-full (contract section 4: `tls { ca cert key }` and the
// deprecated `ssl { }`), against a second PostgreSQL 15 of this test's own that only accepts the
// scheduler over TLS with a client certificate (hostssl + scram + clientcert=verify-full).
// Certificates are made here with openssl, in a temporary directory (nothing committed).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "test_env.hpp"

namespace djinn::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPassword = "Tls-Pg-Pa55w0rd-9f3e1c";

void sh(const std::string& cmd) {
    int rc = std::system(("set -e; " + cmd).c_str());
    if (rc != 0)
        throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + cmd);
}

bool is_root() {
    return ::geteuid() == 0;
}

// PostgreSQL refuses to run as root: its commands go through runuser, like scripts/lib/services.sh.
std::string as_postgres(const std::string& cmd) {
    return is_root() ? "runuser -u postgres -- " + cmd : cmd;
}

// A CA, a server certificate for 127.0.0.1/localhost, a client certificate for djinn_scheduler,
// and an unrelated CA; then a PostgreSQL with ssl=on that trusts only the first CA.
class TlsPostgres {
  public:
    TlsPostgres() {
        dir = temp_dir();
        pki = dir + "/pki";
        pgdata = dir + "/pgdata";
        port = free_port();
        const std::string bin = required_env("DJINN_TEST_PGBIN");
        const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        sh("mkdir -p " + pki + " && cd " + pki +
           " && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext"
           " && openssl req -x509 " +
           ec +
           " -keyout ca.key -out ca.crt -days 2 "
           "-subj /CN=djinn-test-ca 2>/dev/null"
           " && openssl req -x509 " +
           ec +
           " -keyout wrong-ca.key -out wrong-ca.crt -days 2 "
           "-subj /CN=djinn-test-ca 2>/dev/null"
           " && openssl req " +
           ec +
           " -keyout server.key -out server.csr -subj /CN=127.0.0.1 "
           "2>/dev/null"
           " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
           "-out server.crt -days 2 -extfile server.ext 2>/dev/null"
           " && openssl req " +
           ec +
           " -keyout client.key -out client.csr "
           "-subj /CN=djinn_scheduler 2>/dev/null"
           " && openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
           "-out client.crt -days 2 2>/dev/null"
           " && chmod 600 client.key server.key");
        if (is_root())
            sh("chown -R postgres " + dir + " && chown root " + pki + "/client.key");
        sh(as_postgres(bin + "/initdb -D " + pgdata +
                       " -U postgres -A trust -E UTF8 --locale=C.UTF-8 >" + dir +
                       "/initdb.log 2>&1"));
        write_file(pgdata + "/pg_hba.conf",
                   "local all all trust\n"
                   "hostssl all postgres 127.0.0.1/32 trust\n"
                   "hostssl all djinn_scheduler 127.0.0.1/32 scram-sha-256 clientcert=verify-full\n"
                   "host all all 127.0.0.1/32 reject\n");
        if (is_root())
            sh("chown postgres " + pgdata + "/pg_hba.conf");
        sh(as_postgres(bin + "/pg_ctl -D " + pgdata + " -l " + dir +
                       "/postgres.log -w -t 60 -o \"" + "-c listen_addresses=127.0.0.1 -p " +
                       std::to_string(port) + " -k " + dir +
                       " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c ssl=on "
                       "-c log_connections=on"
                       " -c ssl_cert_file=" +
                       pki + "/server.crt -c ssl_key_file=" + pki +
                       "/server.key -c ssl_ca_file=" + pki + "/ca.crt\" start >/dev/null"));
        started = true;
        const std::string psql = "psql -X -q -v ON_ERROR_STOP=1 -h " + dir + " -p " +
                                 std::to_string(port) + " -U postgres";
        sh(psql + " -d postgres -c 'CREATE DATABASE djinn' >/dev/null");
        sh(psql + " -d djinn -f " + fixture_path("djinn-v1.3.0-schema.sql") + " >/dev/null");
        sh(psql + " -d djinn -v dbname=djinn -f " +
           fixture_path("djinn-v1.3.0-scheduler-role.sql") + " >/dev/null");
        sh(psql + " -d djinn -c \"ALTER ROLE djinn_scheduler PASSWORD '" + kPassword +
           "'\" >/dev/null");
        admin_psql = psql + " -d djinn";
    }
    ~TlsPostgres() {
        if (started) {
            std::system(as_postgres(required_env("DJINN_TEST_PGBIN") + "/pg_ctl -D " + pgdata +
                                    " -m immediate stop >/dev/null 2>&1")
                            .c_str());
        }
        std::system(("rm -rf " + dir).c_str());
    }
    std::string query(const std::string& sql) {
        std::string out = dir + "/q.out";
        sh(admin_psql + " -At -c \"" + sql + "\" > " + out);
        std::string r = read_file(out);
        while (!r.empty() && r.back() == '\n')
            r.pop_back();
        return r;
    }

    std::string dir, pki, pgdata, admin_psql;
    int port = 0;
    bool started = false;
};

class TlsPostgresTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { pg = new TlsPostgres(); }
    static void TearDownTestSuite() {
        delete pg;
        pg = nullptr;
    }
    void SetUp() override {
        redis.flushall();
        pg->query("TRUNCATE cron, users, builds, cron_builds CASCADE");
        pg->query(
            "INSERT INTO users (id, email, username, password) VALUES (1, 'a@x', 'a', "
            "'\\x00')");
        pg->query(
            "INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run) "
            "VALUES (1, 1, 'over tls', 'daily', 'driver: {type: docker, image: alpine, "
            "workspace: /}', now() AT TIME ZONE 'UTC' - interval '1 minute')");
    }

    std::string config(const std::string& block, const std::string& ca,
                       const std::string& addr = "127.0.0.1") {
        std::string path = temp_dir() + "/scheduler.conf";
        write_file(path,
                   "log debug \"/dev/stdout\"\ndrivers [\"docker\",]\n"
                   "database {\n    addr \"" +
                       addr + ":" + std::to_string(pg->port) +
                       "\"\n    name \"djinn\"\n    username \"djinn_scheduler\"\n"
                       "    password \"${DJINN_IT_TLS_PASSWORD}\"\n    " +
                       block + " {\n        ca \"" + ca + "\"\n        cert \"" + pg->pki +
                       "/client.crt\"\n        key \"" + pg->pki +
                       "/client.key\"\n    }\n}\nredis {\n    addr \"" + redis_addr() + "\"\n}\n");
        return path;
    }
    ProcessResult run(const std::string& path) {
        return run_scheduler({"-config", path, "-once"}, {{"DJINN_IT_TLS_PASSWORD", kPassword}},
                             30s);
    }

    static TlsPostgres* pg;
    Redis redis;
};
TlsPostgres* TlsPostgresTest::pg = nullptr;

TEST_F(TlsPostgresTest, TlsBlockConnectsWithVerifyFullAndDispatches) {
    auto r = run(config("tls", pg->pki + "/ca.crt"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("(tls verify-full)"), std::string::npos) << r.output;
    // The server's word for it: the scheduler's session was authorized over TLS.
    const std::string server_log = read_file(pg->dir + "/postgres.log");
    const auto at = server_log.find("connection authorized: user=djinn_scheduler database=djinn");
    ASSERT_NE(at, std::string::npos) << server_log;
    const std::string line = server_log.substr(at, server_log.find('\n', at) - at);
    EXPECT_NE(line.find("SSL enabled"), std::string::npos) << line;
    EXPECT_EQ(pg->query("SELECT count(*) FROM cron_builds"), "1") << r.output;
    EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}), 1);
    EXPECT_EQ(r.output.find(kPassword), std::string::npos) << r.output;
}

TEST_F(TlsPostgresTest, HostNameIsCheckedAgainstTheCertificate) {
    // localhost is in the certificate's SAN too: verify-full accepts it.
    auto r = run(config("tls", pg->pki + "/ca.crt", "localhost"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(pg->query("SELECT count(*) FROM cron_builds"), "1");
}

TEST_F(TlsPostgresTest, DeprecatedSslBlockWorksAndIsFlagged) {
    auto r = run(config("ssl", pg->pki + "/ca.crt"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("ssl"), std::string::npos);
    EXPECT_NE(r.output.find("deprecated"), std::string::npos) << r.output;
    EXPECT_EQ(pg->query("SELECT count(*) FROM cron_builds"), "1");
    EXPECT_EQ(r.output.find(kPassword), std::string::npos) << r.output;
}

TEST_F(TlsPostgresTest, WrongCaFailsClearlyWithoutThePassword) {
    auto started = std::chrono::steady_clock::now();
    auto r = run(config("tls", pg->pki + "/wrong-ca.crt"));
    EXPECT_LT(std::chrono::steady_clock::now() - started, 20s);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("certificate verify failed"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(kPassword), std::string::npos) << r.output;
    EXPECT_EQ(pg->query("SELECT count(*) FROM cron_builds"), "0");
    EXPECT_EQ(pg->query("SELECT count(*) FROM cron WHERE prev_run IS NULL"), "1");
}

TEST_F(TlsPostgresTest, ServerRefusesTheSchedulerWithoutTls) {
    // The same server without a tls block: libpq's sslmode=prefer still negotiates TLS but sends
    // no client certificate, and clientcert=verify-full refuses the login.
    std::string path = temp_dir() + "/plain.conf";
    write_file(path, "drivers [\"docker\",]\ndatabase {\n    addr \"127.0.0.1:" +
                         std::to_string(pg->port) +
                         "\"\n    name \"djinn\"\n    username \"djinn_scheduler\"\n"
                         "    password \"${DJINN_IT_TLS_PASSWORD}\"\n}\nredis {\n    addr \"" +
                         redis_addr() + "\"\n}\n");
    auto r = run(path);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("certificate"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(kPassword), std::string::npos) << r.output;
}

}  // namespace
}  // namespace djinn::testing
