#include "app/pg_database.hpp"

#include "app/endpoints.hpp"
#include "common/failpoints.hpp"
#include "store/session_state.hpp"

namespace djinn::app {

void log_privileges(spdlog::logger& log, const store::Privileges& p) {
    for (const auto& m : p.missing)
        log.error("missing privilege: {}; fix with: {}", m.what, m.grant);
    if (!p.can_copy_variables) {
        log.warn(
            "builds that copy variables (or have env entries) stay due until the grants "
            "above are given");
    }
    if (!p.can_copy_keys)
        log.warn("builds that copy keys stay due until the grants above are given");
}

PgDatabase::PgDatabase(const config::Config& config, std::shared_ptr<spdlog::logger> log)
    : config_(config), log_(std::move(log)), lock_(config.leader.lock_key) {}

service::Database::Check PgDatabase::open() {
    conn_.reset();
    DJINN_FAILPOINT("session.open");
    auto opened = store::PgConnection::open(config_.database, session_options(config_));
    if (auto* e = std::get_if<store::PgError>(&opened)) {
        last_error_ = e->message;
        return {false, e->kind == store::PgErrorKind::pooler ? "pooler" : "database_connection",
                store::describe(config_.database) + ": " + e->message};
    }
    conn_ = std::move(std::get<std::unique_ptr<store::PgConnection>>(opened));
    if (conn_->pooled()) {
        log_->info("connected to PostgreSQL {} through a session-pooling proxy (server process {})",
                   store::describe(config_.database), conn_->server_pid());
    } else {
        log_->info("connected to PostgreSQL {} (backend {})", store::describe(config_.database),
                   conn_->server_pid());
    }
    return {};
}

void PgDatabase::close() {
    conn_.reset();
}

bool PgDatabase::usable() const {
    return conn_ && !conn_->broken();
}

service::Database::Check PgDatabase::check() {
    DJINN_FAILPOINT("session.check");
    if (!usable())
        return {false, "database_connection", "the PostgreSQL session is gone"};
    auto privs = store::PrivilegeCheck::run(*conn_);
    if (auto* e = std::get_if<store::PgError>(&privs)) {
        last_error_ = e->message;
        return {false,
                e->kind == store::PgErrorKind::connection ? "database_connection" : "database",
                "privilege check failed: " + e->message};
    }
    privileges_ = std::get<store::Privileges>(privs);
    if (!logged_privileges_ || !(*logged_privileges_ == privileges_)) {
        log_privileges(*log_, privileges_);
        logged_privileges_ = privileges_;
    }
    // A standby, a read-only server or a pooler that moves the session: not a session to lead
    // on (nor to be ready on). The loop closes it and tries again.
    auto state = store::SessionState::read(*conn_);
    if (auto* e = std::get_if<store::PgError>(&state)) {
        last_error_ = e->message;
        return {false,
                e->kind == store::PgErrorKind::connection ? "database_connection" : "database",
                "reading the session's state failed: " + e->message};
    }
    const auto& s = std::get<store::SessionState>(state);
    if (std::string why = s.problem(*conn_, store::describe(config_.database)); !why.empty())
        return {false, s.kind(*conn_), why};
    return {};
}

service::Database::Lock PgDatabase::try_acquire() {
    DJINN_FAILPOINT("lock.acquire");
    if (!usable())
        return Lock::error;
    switch (lock_.try_acquire(*conn_)) {
        case leader::LeaderLock::AcquireResult::acquired:
            return Lock::held;
        case leader::LeaderLock::AcquireResult::held_by_other:
            return Lock::not_held;
        case leader::LeaderLock::AcquireResult::error:
            break;
    }
    last_error_ = lock_.last_error() ? lock_.last_error()->message : "unknown error";
    return Lock::error;
}

service::Database::Lock PgDatabase::verify() {
    DJINN_FAILPOINT("lock.verify");
    if (!usable())
        return Lock::error;
    if (lock_.verify(*conn_))
        return Lock::held;
    if (lock_.last_error()) {
        last_error_ = lock_.last_error()->message;
        return Lock::error;
    }
    // Not held by the server process our statements reach now. If the process this session
    // started on holds it, a transaction-pooling proxy moved the session (the check at connect
    // can miss one that hands out another idle server connection): that lock belongs to no
    // client any more and would block every replica until the pooler closes the connection.
    // End it (the same role may) and say why.
    if (auto h = lock_.holder(*conn_); h && *h == conn_->server_pid()) {
        const bool ended = lock_.terminate(*conn_, *h);
        last_error_ = std::string(store::kTransactionPoolingHint) +
                      " (the lock stayed with server "
                      "process " +
                      std::to_string(*h) + ", " +
                      (ended ? "now ended" : "which could not be ended") + ")";
        return Lock::error;
    }
    return Lock::not_held;
}

bool PgDatabase::release() {
    if (!usable())
        return false;
    return lock_.release(*conn_);
}

}  // namespace djinn::app
