#include "leader/leader_lock.hpp"

#include <pqxx/pqxx>

#include <string>

namespace djinn::leader {
namespace {

// "This session holds the advisory lock $2/$3 (classid/objid of the bigint key $1)".
const std::string& held_by_session() {
    static const std::string sql = store::advisory_lock_held_sql(2, 3);
    return sql;
}

}  // namespace

std::optional<bool> LeaderLock::ask(store::PgConnection& session, const std::string& sql) {
    const PgLockId id = pg_lock_id(key_);
    bool answer = false;
    auto result = session.run([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        auto rows = tx.exec_params(sql, key_, static_cast<std::int64_t>(id.classid),
                                   static_cast<std::int64_t>(id.objid));
        answer = rows.at(0).at(0).as<bool>();
    });
    if (auto* e = std::get_if<store::PgError>(&result)) {
        last_error_ = *e;
        return std::nullopt;
    }
    last_error_.reset();
    return answer;
}

LeaderLock::AcquireResult LeaderLock::try_acquire(store::PgConnection& session) {
    // CASE evaluates lazily, and pg_try_advisory_lock is volatile: it runs only when this
    // session does not hold the lock yet.
    auto held = ask(session, std::string("SELECT CASE WHEN ") + held_by_session() +
                                 " THEN true ELSE pg_catalog.pg_try_advisory_lock($1) END");
    if (!held)
        return AcquireResult::error;
    return *held ? AcquireResult::acquired : AcquireResult::held_by_other;
}

bool LeaderLock::verify(store::PgConnection& session) {
    return ask(session, std::string("SELECT ") + held_by_session() + ", $1::bigint")
        .value_or(false);
}

std::optional<int> LeaderLock::holder(store::PgConnection& session) {
    const PgLockId id = pg_lock_id(key_);
    std::optional<int> pid;
    auto result = session.run([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        auto rows = tx.exec_params(
            "SELECT pid FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_catalog.pg_database"
            "                 WHERE datname = pg_catalog.current_database())"
            " AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1",
            static_cast<std::int64_t>(id.classid), static_cast<std::int64_t>(id.objid));
        if (!rows.empty())
            pid = rows[0][0].as<int>();
    });
    if (auto* e = std::get_if<store::PgError>(&result)) {
        last_error_ = *e;
        return std::nullopt;
    }
    return pid;
}

bool LeaderLock::terminate(store::PgConnection& session, int pid) {
    bool done = false;
    auto result = session.run([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        done = tx.exec_params1("SELECT pg_catalog.pg_terminate_backend($1)", pid)[0].as<bool>();
    });
    return !std::holds_alternative<store::PgError>(result) && done;
}

bool LeaderLock::release(store::PgConnection& session) {
    if (session.broken())
        return false;
    // pg_advisory_unlock warns (and returns false) when the lock is not held: ask first.
    return ask(session, std::string("SELECT CASE WHEN ") + held_by_session() +
                            " THEN pg_catalog.pg_advisory_unlock($1) ELSE false END")
        .value_or(false);
}

}  // namespace djinn::leader
