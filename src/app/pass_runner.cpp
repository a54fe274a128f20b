#include "app/pass_runner.hpp"

#include <exception>

#include "store/recovery_queries.hpp"

namespace djinn::app {

void log_pass(spdlog::logger& log, const dispatch::PassReport& r, bool dry_run) {
    const double seconds = std::chrono::duration<double>(r.duration).count();
    if (r.taken > 0 || !r.ok || r.recovered > 0 || dry_run) {
        log.info(
            "pass {}: {} cron(s) taken in {} batch(es), {} build(s) {}, {} skipped, {} "
            "enqueued, {} recovered, {:.3f} s",
            r.ok ? "done" : "failed", r.taken, r.batches, r.dispatched,
            dry_run ? "would be made" : "made", r.skipped, r.enqueued, r.recovered, seconds);
    } else {
        log.debug("pass done: nothing due, {:.3f} s", seconds);
    }
    if (!r.ok)
        log.error("pass failed: {}", r.error);
}

DispatchPassRunner::DispatchPassRunner(PgDatabase& db, store::DispatchStore& store,
                                       dispatch::Dispatcher& dispatcher, metrics::Metrics& metrics,
                                       Progress& progress, const Clock& clock,
                                       std::shared_ptr<spdlog::logger> log)
    : db_(db),
      store_(store),
      dispatcher_(dispatcher),
      metrics_(metrics),
      progress_(progress),
      clock_(clock),
      log_(std::move(log)) {}

service::PassOutcome DispatchPassRunner::run(const std::atomic<bool>& stop) {
    service::PassOutcome out;
    store::PgConnection* conn = db_.session();
    if (conn == nullptr) {
        out.ok = false;
        out.session_lost = true;
        return out;
    }
    store_.set_privileges(db_.privileges());
    const dispatch::PassReport r = dispatcher_.run_pass(*conn, stop, &progress_);
    out.ok = r.ok;
    out.session_lost = r.session_lost || conn->broken();
    out.internal = r.internal;
    try {
        progress_.beat();
        metrics_.pass_finished(r.ok ? "ok" : "error", std::chrono::duration<double>(r.duration),
                               std::chrono::system_clock::time_point(
                                   std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                       clock_.now().time_since_epoch())));
        log_pass(*log_, r, false);
        if (r.ok && !r.stopped) {
            // A whole pass took everything due: what is still due is what it left due. (A count
            // would be one more scan of the whole cron table per pass without an index.)
            metrics_.set_due_crons(static_cast<std::int64_t>(r.stayed_due));
        } else if (!stop.load() && !out.session_lost) {
            auto due = store::RecoveryQueries::count_due(*conn);
            if (auto* n = std::get_if<std::int64_t>(&due))
                metrics_.set_due_crons(*n);
            out.session_lost = conn->broken();
        }
    } catch (...) {
        // Bookkeeping only: the pass itself is over. Logged and counted like any internal error.
        try {
            std::rethrow_exception(std::current_exception());
        } catch (const std::exception& e) {
            log_->error("internal error after the pass: {}", e.what());
        } catch (...) {
            log_->error("internal error after the pass");
        }
        metrics_.error("internal");
        out.internal = true;
    }
    return out;
}

}  // namespace djinn::app
