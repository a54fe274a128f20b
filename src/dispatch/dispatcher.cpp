#include "dispatch/dispatcher.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <future>
#include <optional>
#include <unordered_set>

#include "common/failpoints.hpp"
#include "schedule/schedule.hpp"

namespace djinn::dispatch {
namespace {

double seconds_between(TimePoint from, TimePoint to) {
    return std::chrono::duration<double>(to - from).count();
}

std::string describe_current_exception() {
    try {
        throw;
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an exception that is not a std::exception";
    }
}

std::string error_kind(const store::PgError& e) {
    return e.kind == store::PgErrorKind::connection || e.kind == store::PgErrorKind::fenced
               ? "database_connection"
               : "database";
}

std::vector<std::string> driver_list(const std::set<std::string>& drivers) {
    return {drivers.begin(), drivers.end()};
}

Recovery::Options recovery_options(const DispatcherOptions& o, const std::set<std::string>& d) {
    Recovery::Options r;
    r.window = o.recovery_window;
    r.drivers = driver_list(d);
    return r;
}

// Bound on the builds remembered as enqueued between two moves of the watermark (a watermark
// that cannot move for long: another session always writing). Past it they are forgotten, which
// only costs Redis round trips in the next sweep.
constexpr std::size_t kMaxKnown = 2000000;

}  // namespace

Dispatcher::Dispatcher(store::DispatchStore& store, queue::BuildQueue& queue,
                       std::set<std::string> drivers, std::shared_ptr<spdlog::logger> log,
                       DispatchEvents& events, const Clock& clock, DispatcherOptions options)
    : store_(store),
      log_(std::move(log)),
      events_(events),
      clock_(clock),
      options_(options),
      enqueuer_(queue, log_, events_, clock_, options_.enqueue),
      recovery_(queue, enqueuer_, log_, events_, recovery_options(options_, drivers)),
      idle_hints_(queue, log_),
      planner_(std::move(drivers), options_.planner_threads) {}

bool Dispatcher::recover(store::PgConnection& conn, Progress* progress, PassReport& report,
                         bool at_start) {
    const Recovery::Result r = recovery_.settle(conn, known_, progress);
    report.recovered += r.enqueued;
    report.enqueued += r.enqueued;
    report.adopted += r.adopted;
    report.lost += r.lost;
    if (r.advanced)
        known_.clear();
    if (r.enqueued > 0 || r.adopted > 0) {
        log_->warn(
            "recovery: enqueued {} committed build(s) that had no queue job, adopted {} job(s) of "
            "another writer ({} queued build(s) checked in Redis of {} cron build(s) read{})",
            r.enqueued, r.adopted, r.checked, r.read, r.fallback ? ", recovery window" : "");
    } else if (r.read > 0) {
        log_->debug("recovery: {} cron build(s) read, {} checked in Redis, none without a job{}",
                    r.read, r.checked, r.fallback ? " (recovery window)" : "");
    }
    if (r.restored > 0)
        log_->info("recovery: {} enqueue marker(s) written back for jobs that were there",
                   r.restored);
    if (!r.ok) {
        recovery_needed_ = true;
        report.session_lost = report.session_lost || r.session_lost;
        if (at_start || r.session_lost) {
            report.ok = false;
            report.error = r.error;
        } else {
            log_->warn("{}; the next pass sweeps again", r.error);
        }
        return false;
    }
    recovery_needed_ = false;
    return true;
}

PassReport Dispatcher::run_pass(store::PgConnection& conn, const std::atomic<bool>& stop,
                                Progress* progress) {
    PassReport report;
    const MonoTime started = clock_.monotonic();
    std::string stage = "starting the pass";
    try {
        DJINN_FAILPOINT("pass.start");
        if (known_.size() > kMaxKnown)
            known_.clear();
        bool go = true;
        if (recovery_needed_ && !options_.dry_run && store_.fenced()) {
            // Before the sweep: no dispatch session of an earlier leader may still commit.
            stage = "waiting for the dispatch fence";
            if (auto r = store_.fence_barrier(conn); auto* e = std::get_if<store::PgError>(&r)) {
                report.ok = false;
                report.session_lost = e->kind == store::PgErrorKind::connection;
                report.error = "waiting for the dispatch fence: " + e->message;
                events_.error(error_kind(*e));
                go = false;
            }
        }
        if (go && recovery_needed_ && !options_.dry_run) {
            stage = "recovery";
            go = recover(conn, progress, report, true);
        }
        if (go) {
            run_batches(conn, stop, progress, report, stage);
            if (report.ok && !options_.dry_run) {
                // Moves the watermark past this pass's builds (and sweeps whatever else was
                // committed meanwhile).
                stage = "settling the recovery watermark";
                recover(conn, progress, report, false);
            }
            if (report.ok && report.taken == 0 && options_.numbers_ahead && !options_.dry_run &&
                !stop) {
                stage = "reading the build numbers ahead";
                read_numbers_ahead(conn, progress);
                stage = "opening the dispatch sessions ahead";
                warm_sessions();
            }
        }
    } catch (...) {
        // The pass boundary: whatever was thrown, by us or a library, in whichever stage.
        // Anything committed is safe; anything not enqueued is found by recovery.
        planner_.discard();
        report.ok = false;
        report.internal = true;
        report.error = "internal error while " + stage + ": " + describe_current_exception();
        recovery_needed_ = true;
        events_.error("internal");
    }
    if (report.session_lost)
        close_sessions();
    report.duration =
        std::chrono::duration_cast<std::chrono::microseconds>(clock_.monotonic() - started);
    return report;
}

void Dispatcher::read_numbers_ahead(store::PgConnection& conn, Progress* progress) {
    if (numbers_tried_ == conn.session_id())
        return;
    numbers_tried_ = conn.session_id();
    const MonoTime t0 = clock_.monotonic();
    auto r = store_.read_numbers_ahead(conn, progress);
    if (auto* e = std::get_if<store::PgError>(&r)) {
        // Not the pass's failure: the next burst's first batch reads the numbers itself.
        events_.error(error_kind(*e));
        log_->warn("reading the build numbers ahead failed (the next burst reads them): {}",
                   e->message);
        return;
    }
    const auto& a = std::get<store::NumbersAhead>(r);
    if (a.already)
        return;
    if (a.read) {
        log_->info("build numbers: {} user(s) read ahead of the next burst in {:.3f} s", a.kept,
                   std::chrono::duration<double>(clock_.monotonic() - t0).count());
    } else {
        log_->info(
            "build numbers: not kept ahead (another session was writing builds, more than {} "
            "users, or builds_id_seq is not CACHE 1): the next burst reads them",
            store::BuildNumbers::kMaxUsers);
    }
}

void Dispatcher::close_sessions() {
    if (sessions_ != nullptr)
        sessions_->close();
}

std::vector<store::PgConnection*> Dispatcher::open_sessions() {
    if (sessions_ == nullptr || options_.dry_run)
        return {};
    std::vector<store::PgConnection*> helpers = sessions_->ready();
    if (auto e = sessions_->take_error()) {
        // Said once until they open; meanwhile every batch runs on the pass's own session.
        if (!sessions_failed_) {
            events_.error(error_kind(*e));
            log_->warn("{}: batches run on the leader's session alone until they open", e->message);
        }
        sessions_failed_ = true;
    } else if (!helpers.empty() && sessions_failed_) {
        log_->info("dispatch sessions open again");
        sessions_failed_ = false;
    }
    return helpers;
}

void Dispatcher::warm_sessions() {
    if (sessions_ == nullptr || options_.dry_run)
        return;
    sessions_->ping();
    (void)open_sessions();  // opens a new set in the background if one is missing or broken
}

void Dispatcher::keep_alive_until(store::PgConnection& conn,
                                  const std::function<bool(std::chrono::milliseconds)>& ready) {
    // Not a beat of liveness: a plan or an enqueue that never ends must still show.
    while (!ready(options_.keepalive)) {
        if (!conn.broken())
            (void)conn.ping();  // a failure marks the session broken; the next statement reports it
    }
}

void Dispatcher::run_batches(store::PgConnection& conn, const std::atomic<bool>& stop,
                             Progress* progress, PassReport& report, std::string& stage) {
    // A committed batch is enqueued on its own thread while the next batch is taken and written:
    // Redis's time hides behind PostgreSQL's. At most one batch is in flight; it is waited for
    // before the next one starts enqueueing and before the pass ends (a stop too). If its enqueue
    // fails, the batch committed meanwhile is not enqueued either: both are re-offered by the
    // next pass's recovery, like any committed build without a job.
    struct InFlight {
        std::vector<store::DispatchedBuild> builds;
        std::size_t number = 0;  // of the batch in the pass
        std::future<Enqueuer::Result> result;
    };
    std::optional<InFlight> flight;
    auto land = [&]() -> bool {
        if (!flight)
            return true;
        InFlight f = std::move(*flight);
        flight.reset();
        keep_alive_until(conn, [&](std::chrono::milliseconds d) {
            return f.result.wait_for(d) == std::future_status::ready;
        });
        Enqueuer::Result e = f.result.get();  // rethrows what the enqueue thread threw
        report.enqueued += e.enqueued;
        for (std::size_t i = 0; i < f.builds.size(); ++i) {
            const auto& b = f.builds[i];
            if (e.outcomes.at(i) == queue::JobOutcome::failed)
                continue;
            known_.insert(b.build_id);
            events_.dispatched(b.queue_driver, seconds_between(b.scheduled, e.at));
            log_->debug("cron {} -> build {} (#{} of user {}) on builds_{}", b.cron_id, b.build_id,
                        b.build_number, b.user_id, b.queue_driver);
        }
        log_->debug("batch {}: {} job(s) enqueued", f.number, e.enqueued);
        if (e.all)
            return true;
        // Committed builds stay safe in PostgreSQL; stop making more until Redis is back, and
        // have the next pass re-offer them.
        recovery_needed_ = true;
        report.ok = false;
        report.error = "enqueue failed; committed builds will be enqueued by a later pass";
        return false;
    };
    // Whatever ends the pass (an exception too), `flight` is destroyed with it, and the future
    // of std::async waits for its enqueue thread: nothing outlives the pass.

    stage = "reading the due crons";
    // The idle pass's hint (store/due_hint.hpp); a dry run leaves Redis alone.
    const bool hints = !options_.dry_run;
    const std::optional<store::DueHint> previous =
        hints ? idle_hints_.read(conn) : std::optional<store::DueHint>();
    auto opened = store_.open_pass(conn, options_.batch_size, progress,
                                   {hints, previous ? &*previous : nullptr});
    if (auto* e = std::get_if<store::PgError>(&opened)) {
        report.ok = false;
        report.session_lost = e->kind == store::PgErrorKind::connection;
        report.error = e->message;
        events_.error(error_kind(*e));
        log_->error("reading the due crons failed: {}", e->message);
        return;
    }
    store::PassStart& start = std::get<store::PassStart>(opened);
    events_.due_scan(start.scan_skipped);
    if (start.scan_skipped) {
        const auto at = [](std::int64_t us) {
            return schedule::format_pg_timestamp(TimePoint(std::chrono::microseconds(us)));
        };
        log_->debug(
            "nothing due, not scanned: no write to cron reported since the scan at {} UTC; the "
            "earliest next_run is {}",
            at(previous->scanned_us()),
            previous->earliest_us() ? at(*previous->earliest_us()) : std::string("none"));
    }
    if (start.hint)
        idle_hints_.write(conn, *start.hint);
    std::vector<std::int64_t> ids;  // the next batch's candidates
    store::PlannedManifests plans;
    {
        const std::vector<store::Candidate>& first = start.first;
        for (const auto& c : first)
            ids.push_back(c.id);
        stage = "planning batch 1";
        // On a thread of its own, so that this one keeps the idle session alive meanwhile.
        auto planned = std::async(std::launch::async, [&] { return planner_.plan(first); });
        keep_alive_until(conn, [&](std::chrono::milliseconds d) {
            return planned.wait_for(d) == std::future_status::ready;
        });
        plans = planned.get();
    }
    // Planned (the plans keep their own copy of each text): the first batch's manifests are not
    // held for the rest of the pass.
    std::vector<store::Candidate>().swap(start.first);

    bool split_said = false;            // "batches split across K dispatch sessions", once a pass
    std::vector<std::int64_t> exclude;  // never offered again in this pass
    std::unordered_set<std::int64_t> excluded;
    std::unordered_set<std::int64_t> deferred_once;
    auto exclude_id = [&](std::int64_t id) {
        if (excluded.insert(id).second)
            exclude.push_back(id);
    };
    while (!stop.load() && !ids.empty()) {
        stage = "batch " + std::to_string(report.batches + 1);
        store::BatchRequest req;
        req.ids = std::move(ids);
        req.plans = &plans;
        req.exclude = &exclude;
        req.next_limit = options_.batch_size;
        req.dry_run = options_.dry_run;
        req.progress = progress;
        req.keepalive = options_.keepalive;
        std::vector<std::int64_t> next_ids;
        req.on_next = [&](std::vector<store::Candidate> next) {
            next_ids.clear();
            for (const auto& c : next)
                next_ids.push_back(c.id);
            planner_.plan_ahead(std::move(next));
        };
        // Several dispatch sessions: used by every batch once all of them are open.
        const std::vector<store::PgConnection*> helpers = open_sessions();
        if (!helpers.empty() && !split_said) {
            log_->info("batches split across {} dispatch sessions", helpers.size());
            split_said = true;
        }
        auto r = store_.dispatch_batch(conn, req, helpers);
        beat(progress);
        if (auto* e = std::get_if<store::PgError>(&r)) {
            planner_.discard();
            land();
            report.ok = false;
            report.session_lost =
                e->kind == store::PgErrorKind::connection || e->kind == store::PgErrorKind::fenced;
            report.error = e->message;
            events_.error(error_kind(*e));
            log_->error("batch failed, nothing of it was committed: {}", e->message);
            return;
        }
        auto& batch = std::get<store::BatchOutcome>(r);
        ++report.batches;
        report.taken += batch.taken;
        if (!options_.dry_run) {
            // Logged as it commits (its enqueue may take a while, or fail, afterwards).
            log_->info("batch {}: {} cron(s) taken, {} build(s) committed, {} skipped",
                       report.batches, batch.taken, batch.builds.size(), batch.skipped.size());
        }
        if (batch.isolated) {
            log_->warn("batch of {} redone cron by cron after: {}", batch.taken,
                       batch.isolation_cause);
        }
        for (auto id : batch.not_taken)
            exclude_id(id);  // another session's, or no longer due
        // Changed after it was planned: planned again from the text it has now, and offered
        // first in the next batch; changed again by then, it stays due until the next pass.
        std::vector<store::Candidate> again;
        for (auto& c : batch.deferred) {
            ++report.deferred;
            if (!deferred_once.insert(c.id).second) {
                exclude_id(c.id);
                ++report.stayed_due;
                log_->warn("cron {} stays due: its manifest changed twice while being dispatched",
                           c.id);
            } else {
                again.push_back(std::move(c));
            }
        }
        for (const auto& s : batch.skipped) {
            ++report.skipped;
            events_.skipped(s.kind);
            log_->warn("cron {} skipped ({}): {}{}", s.cron_id, s.kind, s.reason,
                       s.advanced ? "; advanced to its next run" : "; stays due");
            if (!s.advanced || options_.dry_run) {
                exclude_id(s.cron_id);
                ++report.stayed_due;
            }
        }
        report.dispatched += batch.builds.size();
        if (options_.dry_run) {
            // Nothing was written: every cron taken stays due (and is not taken again).
            for (const auto& b : batch.builds) {
                log_->info(
                    "dry run: cron {} \"{}\" would get build #{} of user {} on queue "
                    "builds_{}; next run {}",
                    b.cron_id, b.cron_name, b.build_number, b.user_id, b.queue_driver,
                    schedule::format_pg_timestamp(b.next_run));
                exclude_id(b.cron_id);
                ++report.stayed_due;
            }
        } else {
            stage = "enqueueing batch " + std::to_string(report.batches - 1);
            if (!land()) {
                planner_.discard();
                return;
            }
            std::vector<queue::QueueJob> jobs;
            jobs.reserve(batch.builds.size());
            for (const auto& b : batch.builds)
                jobs.push_back({b.build_id, b.queue_driver});
            flight.emplace(InFlight{std::move(batch.builds), report.batches, {}});
            flight->result =
                std::async(std::launch::async, [this, progress, jobs = std::move(jobs)]() {
                    return enqueuer_.enqueue(jobs, progress);
                });
        }
        if (batch.error) {
            // Split across dispatch sessions, part of the batch committed and part did not (its
            // crons stay due): what committed is enqueued, and the pass stops.
            planner_.discard();
            report.ok = false;
            report.session_lost = batch.session_lost;
            report.error = *batch.error;
            recovery_needed_ = true;
            events_.error(batch.session_lost ? "database_connection" : "database");
            log_->error("batch {} failed in part ({} build(s) of it committed): {}", report.batches,
                        flight ? flight->builds.size() : 0, *batch.error);
            land();
            return;
        }
        stage = "planning batch " + std::to_string(report.batches + 1);
        keep_alive_until(conn,
                         [&](std::chrono::milliseconds d) { return planner_.ahead_ready(d); });
        plans = planner_.take_ahead();
        ids.clear();
        for (const auto& c : again)
            ids.push_back(c.id);
        for (auto& [id, p] : planner_.plan(again))
            plans.insert_or_assign(id, std::move(p));
        for (auto id : next_ids) {
            if (excluded.count(id) == 0 && std::find(ids.begin(), ids.end(), id) == ids.end())
                ids.push_back(id);
        }
    }
    planner_.discard();
    stage = "enqueueing the last batch";
    if (!land())
        return;
    report.stopped = stop.load();
}

}  // namespace djinn::dispatch
