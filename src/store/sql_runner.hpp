#pragma once
// Runs the statements of one transaction: prepared once per session (libpqxx keeps the
// definitions per connection object and sends PREPARE the first time a session uses one), and
// a Progress beat after each, so that a long batch of many statements keeps /healthz alive while
// a single statement that never returns does not.
//
// Thread safety: none (one transaction, one thread). Failure: libpqxx exceptions pass through;
// PgConnection::run translates them.
#include <pqxx/pqxx>

#include <string>
#include <utility>

#include "common/progress.hpp"

namespace djinn::store {

class SqlRunner {
  public:
    SqlRunner(pqxx::transaction_base& tx, Progress* progress) : tx_(tx), progress_(progress) {}

    template <typename... Args>
    pqxx::result prepared(const char* name, const char* sql, Args&&... args) {
        tx_.conn().prepare(name, sql);  // idempotent for the same definition
        pqxx::result r = tx_.exec_prepared(name, std::forward<Args>(args)...);
        beat(progress_);
        return r;
    }

    pqxx::result exec(const std::string& sql) {
        pqxx::result r = tx_.exec(sql);
        beat(progress_);
        return r;
    }

    pqxx::transaction_base& tx() { return tx_; }
    Progress* progress() const { return progress_; }

  private:
    pqxx::transaction_base& tx_;
    Progress* progress_;
};

}  // namespace djinn::store
