#pragma once
// service::Database over PostgreSQL: one PgConnection at a time (never reconnected behind the
// loop's back), the leader lock on it, and the checks a session must pass before it may lead
// (the privileges, logged with their GRANTs when they change).
//
// Thread safety: the loop's thread only. Failure: values, as service::Database says.
#include <memory>
#include <optional>
#include <string>

#include <spdlog/logger.h>

#include "config/config.hpp"
#include "leader/leader_lock.hpp"
#include "service/ports.hpp"
#include "store/pg_connection.hpp"
#include "store/privileges.hpp"

namespace djinn::app {

class PgDatabase final : public service::Database {
  public:
    PgDatabase(const config::Config& config, std::shared_ptr<spdlog::logger> log);

    Check open() override;
    void close() override;
    bool usable() const override;
    Check check() override;
    Lock try_acquire() override;
    Lock verify() override;
    bool release() override;
    std::string last_error() const override { return last_error_; }

    // The open session (nullptr when closed), for the passes.
    store::PgConnection* session() { return conn_.get(); }
    // The privileges of the last successful check.
    const store::Privileges& privileges() const { return privileges_; }

  private:
    const config::Config& config_;
    std::shared_ptr<spdlog::logger> log_;
    leader::LeaderLock lock_;
    std::unique_ptr<store::PgConnection> conn_;
    store::Privileges privileges_;
    std::optional<store::Privileges> logged_privileges_;
    std::string last_error_;
};

// Logs each missing privilege with the GRANT that fixes it.
void log_privileges(spdlog::logger& log, const store::Privileges& p);

}  // namespace djinn::app
