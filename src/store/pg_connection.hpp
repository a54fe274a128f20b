#pragma once
// One PostgreSQL session, owned by one thread. The adapter between libpqxx and the rest of the
// program: it never reconnects by itself (libpqxx 6.4 would, silently, losing session state such
// as an advisory lock), so a session that broke stays broken and its owner opens a new one.
//
// Thread safety: none; one PgConnection per thread.
// Failure: open() returns an error value; run() translates libpqxx exceptions into PgError.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "config/config.hpp"

#include <pqxx/connection>

namespace djinn::store {

struct SessionOptions {
    std::string application_name = "djinn-scheduler";
    std::chrono::seconds connect_timeout{5};
    // 0 = server default. idle_session_timeout makes the server end a session that stopped
    // talking (PostgreSQL >= 14), which releases its advisory locks.
    std::chrono::milliseconds idle_session_timeout{0};
    std::chrono::milliseconds idle_in_transaction_timeout{0};
    std::chrono::milliseconds statement_timeout{0};
    // Client side: TCP keepalives and tcp_user_timeout bound how long a dead peer goes unnoticed.
    std::chrono::seconds keepalive_idle{10};
    std::chrono::milliseconds tcp_user_timeout{15000};
};

// libpq connection string for `db` (contains the password: never log it). Several hosts in
// database.addr become libpq's multi-host form with target_session_attrs=read-write. Nothing in
// it that a pooler may refuse: no `options`.
std::string conninfo(const config::DatabaseConfig& db, const SessionOptions& opts);

// The settings every session sets with SET right after connecting (name, value as SQL), so they
// hold whatever the server, database, role or pooler carries: time zone, date and interval
// styles, encoding, search_path, isolation, writability, the timeouts.
std::vector<std::pair<std::string, std::string>> session_settings(const SessionOptions& opts);

// The cause and the fix of PgErrorKind::pooler.
extern const char* const kTransactionPoolingHint;

// "user@host:port/name" (+ " tls"), for logs. No password.
std::string describe(const config::DatabaseConfig& db);

enum class PgErrorKind {
    connection,     // the session is gone: discard the PgConnection
    privilege,      // SQLSTATE 42501
    serialization,  // 40001 / 40P01: retry
    query,          // any other SQL error
    pooler,         // a transaction- or statement-pooling proxy stands between us and PostgreSQL
    fenced,         // a dispatch transaction found that its session does not hold the leader
                    // lock: it wrote nothing; the session must not dispatch
};

struct PgError {
    PgErrorKind kind = PgErrorKind::query;
    std::string sqlstate;
    std::string message;  // one line
};

class PgConnection {
  public:
    // Connects, refuses a transaction-pooling proxy (PgErrorKind::pooler) and sets the session's
    // settings (session_settings()).
    static std::variant<std::unique_ptr<PgConnection>, PgError> open(
        const config::DatabaseConfig& db, const SessionOptions& opts);
    ~PgConnection();
    PgConnection(const PgConnection&) = delete;
    PgConnection& operator=(const PgConnection&) = delete;

    // Runs `work` with the raw connection, translating libpqxx exceptions. After a connection
    // error (or a changed backend pid) the session is marked broken and every later run() fails
    // without touching the network.
    std::variant<std::monostate, PgError> run(const std::function<void(pqxx::connection&)>& work);

    // `SELECT 1` outside any transaction: keeps the session from idle_session_timeout while the
    // caller waits for something else (a slow plan, an enqueue). Only between transactions.
    std::variant<std::monostate, PgError> ping();
    bool broken() const { return broken_; }
    // The process id libpq was given (a pooler's own, through one).
    int backend_pid() const { return backend_pid_; }
    // The PostgreSQL server process serving this session (pg_backend_pid()), and whether a
    // (session-pooling) proxy stands in between.
    int server_pid() const { return server_pid_; }
    bool pooled() const { return pooled_; }
    // Unique per PgConnection of this process: state kept per session (cursors, cached build
    // numbers) is keyed by it, never by an address that a new connection may reuse.
    std::uint64_t session_id() const { return session_id_; }

  private:
    PgConnection(std::unique_ptr<pqxx::connection> conn, int server_pid, bool pooled);
    std::unique_ptr<pqxx::connection> conn_;
    int backend_pid_ = 0;
    int server_pid_ = 0;
    bool pooled_ = false;
    std::uint64_t session_id_ = 0;
    bool broken_ = false;
};

// Translates the exception in flight (call only inside a catch block).
PgError translate_current_exception();

}  // namespace djinn::store
