#pragma once
// service::PassRunner over the pass pipeline: runs a Dispatcher pass on PgDatabase's session,
// logs it, and records it in the metrics (passes_total, pass_duration_seconds, due_crons).
//
// Thread safety: the loop's thread only. Failure: never throws (Dispatcher::run_pass is the
// pass boundary; this adds a last catch-all for its own bookkeeping).
#include <memory>

#include <spdlog/logger.h>

#include "app/pg_database.hpp"
#include "common/clock.hpp"
#include "common/progress.hpp"
#include "dispatch/dispatcher.hpp"
#include "metrics/metrics.hpp"
#include "service/ports.hpp"
#include "store/dispatch_store.hpp"

namespace djinn::app {

class DispatchPassRunner final : public service::PassRunner {
  public:
    DispatchPassRunner(PgDatabase& db, store::DispatchStore& store,
                       dispatch::Dispatcher& dispatcher, metrics::Metrics& metrics,
                       Progress& progress, const Clock& clock, std::shared_ptr<spdlog::logger> log);

    service::PassOutcome run(const std::atomic<bool>& stop) override;
    void request_recovery() override { dispatcher_.request_recovery(); }
    void stepped_down() override { dispatcher_.close_sessions(); }

  private:
    PgDatabase& db_;
    store::DispatchStore& store_;
    dispatch::Dispatcher& dispatcher_;
    metrics::Metrics& metrics_;
    Progress& progress_;
    const Clock& clock_;
    std::shared_ptr<spdlog::logger> log_;
};

// The one-line summary both `-once` and the service log after a pass.
void log_pass(spdlog::logger& log, const dispatch::PassReport& r, bool dry_run);

}  // namespace djinn::app
