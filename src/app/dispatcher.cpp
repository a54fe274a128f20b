#include "app/dispatcher.hpp"

#include <spdlog/spdlog.h>

#include <future>
#include <optional>
#include <thread>

#include "schedule/schedule.hpp"

namespace djinn::app {
namespace {

double seconds_between(TimePoint from, TimePoint to) {
    return std::chrono::duration<double>(to - from).count();
}

}  // namespace

Dispatcher::Dispatcher(store::DispatchStore& store, queue::BuildQueue& queue,
                       std::shared_ptr<spdlog::logger> log, DispatchEvents& events,
                       const Clock& clock, DispatcherOptions options)
    : store_(store),
      queue_(queue),
      log_(std::move(log)),
      events_(events),
      clock_(clock),
      options_(options) {}

Dispatcher::Enqueued Dispatcher::enqueue(const std::vector<queue::QueueJob>& jobs) {
    Enqueued out;
    std::vector<queue::QueueJob> pending = jobs;
    std::vector<std::size_t> index(jobs.size());
    for (std::size_t i = 0; i < index.size(); ++i)
        index[i] = i;
    out.outcomes.assign(jobs.size(), queue::JobOutcome::failed);
    for (int attempt = 1; !pending.empty(); ++attempt) {
        auto result = queue_.enqueue(pending);
        std::vector<queue::QueueJob> again;
        std::vector<std::size_t> again_index;
        for (std::size_t i = 0; i < pending.size(); ++i) {
            auto o = result.outcomes.at(i);
            if (o == queue::JobOutcome::failed) {
                again.push_back(pending[i]);
                again_index.push_back(index[i]);
                continue;
            }
            out.outcomes[index[i]] = o;
            if (o == queue::JobOutcome::enqueued)
                ++out.enqueued;
        }
        if (again.empty())
            break;
        if (attempt >= options_.enqueue_attempts) {
            log_->error(
                "enqueue failed for {} build(s) after {} attempts: {}; they stay committed "
                "and are enqueued by a later pass",
                again.size(), attempt, result.error);
            events_.error("enqueue");
            out.all = false;
            break;
        }
        events_.enqueue_retry();
        log_->warn("enqueue failed for {} build(s), retrying: {}", again.size(), result.error);
        std::this_thread::sleep_for(options_.enqueue_backoff * attempt);
        pending = std::move(again);
        index = std::move(again_index);
    }
    out.at = clock_.now();
    return out;
}

bool Dispatcher::recover(store::PgConnection& conn, PassReport& report) {
    auto now = store_.db_now(conn);
    if (auto* e = std::get_if<store::PgError>(&now)) {
        report.ok = false;
        report.error = "recovery: " + e->message;
        return false;
    }
    TimePoint since = std::get<TimePoint>(now) - options_.recovery_window;
    std::int64_t after = 0;
    std::size_t recovered = 0, offered = 0;
    constexpr std::int64_t kChunk = 5000;
    for (;;) {
        auto page = store_.queued_cron_builds(conn, since, after, kChunk);
        if (auto* e = std::get_if<store::PgError>(&page)) {
            report.ok = false;
            report.error = "recovery: " + e->message;
            return false;
        }
        auto& builds = std::get<std::vector<store::PendingBuild>>(page);
        if (builds.empty())
            break;
        std::vector<queue::QueueJob> jobs;
        jobs.reserve(builds.size());
        for (const auto& b : builds)
            jobs.push_back({b.build_id, b.queue_driver});
        after = builds.back().build_id;
        offered += jobs.size();
        Enqueued e = enqueue(jobs);
        report.enqueued += e.enqueued;
        recovered += e.enqueued;
        if (!e.all) {
            report.ok = false;
            report.error = "recovery: Redis unavailable";
            return false;
        }
        if (static_cast<std::int64_t>(builds.size()) < kChunk)
            break;
    }
    report.recovered = recovered;
    if (recovered > 0) {
        events_.recovered(recovered);
        log_->warn("recovery: enqueued {} committed build(s) that had no queue job ({} checked)",
                   recovered, offered);
    } else {
        log_->debug("recovery: {} queued cron build(s) checked, all already enqueued", offered);
    }
    recovery_needed_ = false;
    return true;
}

PassReport Dispatcher::run_pass(store::PgConnection& conn, const std::atomic<bool>& stop) {
    PassReport report;
    const TimePoint started = clock_.now();
    auto finish = [&]() {
        report.duration =
            std::chrono::duration_cast<std::chrono::microseconds>(clock_.now() - started);
        return report;
    };

    if (recovery_needed_ && !options_.dry_run && !recover(conn, report))
        return finish();

    // A committed batch is enqueued on its own thread while the next batch is taken and written:
    // Redis's time hides behind PostgreSQL's. At most one batch is in flight; it is waited for
    // before the next one starts enqueueing and before the pass ends (a stop too). If its enqueue
    // fails, the batch committed meanwhile is not enqueued either: both are re-offered by the
    // next pass's recovery, like any committed build without a job.
    struct InFlight {
        store::BatchOutcome batch;
        std::future<Enqueued> result;
    };
    std::optional<InFlight> flight;
    auto land = [&]() -> bool {
        if (!flight)
            return true;
        InFlight f = std::move(*flight);
        flight.reset();
        Enqueued e = f.result.get();
        report.enqueued += e.enqueued;
        for (std::size_t i = 0; i < f.batch.builds.size(); ++i) {
            const auto& b = f.batch.builds[i];
            if (e.outcomes.at(i) == queue::JobOutcome::failed)
                continue;
            events_.dispatched(b.queue_driver, seconds_between(b.scheduled, e.at));
            log_->debug("cron {} -> build {} (#{} of user {}) on builds_{}", b.cron_id, b.build_id,
                        b.build_number, b.user_id, b.queue_driver);
        }
        log_->info("batch: {} cron(s) taken, {} build(s) committed, {} skipped", f.batch.taken,
                   f.batch.builds.size(), f.batch.skipped.size());
        if (e.all)
            return true;
        // Committed builds stay safe in PostgreSQL; stop making more until Redis is back.
        recovery_needed_ = true;
        report.ok = false;
        report.error = "enqueue failed; committed builds will be enqueued by a later pass";
        return false;
    };

    std::vector<std::int64_t> exclude;  // crons that stay due: not taken again in this pass
    while (!stop.load()) {
        auto r = store_.dispatch_batch(conn, options_.batch_size, exclude, options_.dry_run);
        if (auto* e = std::get_if<store::PgError>(&r)) {
            land();
            report.ok = false;
            report.error = e->message;
            events_.error(e->kind == store::PgErrorKind::connection ? "database_connection"
                                                                    : "database");
            log_->error("batch failed, nothing of it was committed: {}", e->message);
            return finish();
        }
        auto& batch = std::get<store::BatchOutcome>(r);
        if (batch.taken == 0)
            break;
        ++report.batches;
        report.taken += batch.taken;
        if (batch.isolated) {
            log_->warn("batch of {} redone cron by cron after: {}", batch.taken,
                       batch.isolation_cause);
        }
        for (const auto& s : batch.skipped) {
            ++report.skipped;
            events_.skipped(s.kind);
            log_->warn("cron {} skipped ({}): {}{}", s.cron_id, s.kind, s.reason,
                       s.advanced ? "; advanced to its next run" : "; stays due");
            if (!s.advanced) {
                exclude.push_back(s.cron_id);
                ++report.stayed_due;
            }
        }
        if (options_.dry_run) {
            // Nothing was written: every cron taken stays due (and is not taken again).
            for (const auto& b : batch.builds) {
                log_->info(
                    "dry run: cron {} \"{}\" would get build #{} of user {} on queue "
                    "builds_{}; next run {}",
                    b.cron_id, b.cron_name, b.build_number, b.user_id, b.queue_driver,
                    schedule::format_pg_timestamp(b.next_run));
                exclude.push_back(b.cron_id);
                ++report.stayed_due;
            }
            for (const auto& s : batch.skipped) {
                if (s.advanced) {
                    exclude.push_back(s.cron_id);
                    ++report.stayed_due;
                }
            }
            report.dispatched += batch.builds.size();
            continue;
        }
        report.dispatched += batch.builds.size();
        if (!land())
            return finish();

        std::vector<queue::QueueJob> jobs;
        jobs.reserve(batch.builds.size());
        for (const auto& b : batch.builds)
            jobs.push_back({b.build_id, b.queue_driver});
        flight.emplace(InFlight{std::move(batch), {}});
        flight->result = std::async(std::launch::async,
                                    [this, jobs = std::move(jobs)]() { return enqueue(jobs); });
    }
    if (!land())
        return finish();
    report.stopped = stop.load();
    return finish();
}

}  // namespace djinn::app
