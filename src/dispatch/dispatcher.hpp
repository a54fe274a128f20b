#pragma once
// One pass of the scheduler, the pipeline of a midnight burst:
//   recovery (when needed): re-offer committed cron builds that may lack a queue job;
//   then batch after batch until nothing is due:
//     plan batch k's manifests (Planner, outside any transaction; parsed ahead during k-1),
//     batch k's transaction (DispatchStore): lock, read k+1's candidates, write, commit,
//     enqueue batch k on a helper thread while batch k+1 is written.
// All of the pass's concurrency lives here: the planner's threads and the one enqueue in
// flight. Each batch, recovery page and enqueue round beats `progress`.
//
// Order within a batch: commit in PostgreSQL first, then enqueue in Redis. A crash or a Redis
// failure between the two leaves committed builds without a job. The recovery sweep (Recovery)
// finds them: every first pass after a start or a new leadership, and every pass after a failure,
// begins with a sweep of the cron builds committed above the recovery watermark; every healthy
// pass ends with one, which moves the watermark past the pass's own builds without asking Redis
// about them (their enqueue outcomes are known). The job id is derived from the build id, so
// offering a build again is idempotent in Redis with or without its marker: each build is enqueued
// exactly once. If an enqueue fails, the pass stops (at most two batches are then without jobs)
// and asks for recovery, so the next pass of the same process re-offers them.
//
// The pass boundary: run_pass() never throws. Any exception from any layer (ours or a library's)
// ends the pass as failed with `internal` set, described with the stage it happened in.
//
// Thread safety: not thread-safe; owned by the thread that runs passes.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_set>

#include <spdlog/logger.h>

#include "common/clock.hpp"
#include "common/progress.hpp"
#include "dispatch/dispatch_events.hpp"
#include "dispatch/enqueuer.hpp"
#include "dispatch/idle_hints.hpp"
#include "dispatch/planner.hpp"
#include "dispatch/recovery.hpp"
#include "queue/build_queue.hpp"
#include "store/dispatch_sessions.hpp"
#include "store/dispatch_store.hpp"
#include "store/pg_connection.hpp"

namespace djinn::dispatch {

struct PassReport {
    bool ok = true;  // false: the pass stopped on an error (see error)
    std::string error;
    bool internal = false;      // the error was an exception, not a database or Redis outcome
    bool session_lost = false;  // the database session is gone (or fenced): step down
    std::size_t batches = 0;
    std::size_t taken = 0;       // due crons taken
    std::size_t dispatched = 0;  // builds committed (a dry run: that would be)
    std::size_t skipped = 0;     // crons skipped (advanced or staying due)
    std::size_t deferred = 0;    // crons whose manifest changed after it was planned
    std::size_t enqueued = 0;    // jobs put on queues
    std::size_t recovered = 0;   // committed builds found without a job and enqueued
    std::size_t adopted = 0;     // jobs of another writer found for committed builds
    std::size_t lost = 0;        // queued builds whose job is gone from Redis (reported)
    std::size_t stayed_due = 0;  // crons taken and left due (a dry run leaves every one due)
    bool stopped = false;        // a stop was requested and the pass ended after a batch
    std::chrono::microseconds duration{0};
};

struct DispatcherOptions {
    std::int64_t batch_size = 1000;
    bool dry_run = false;
    std::chrono::hours recovery_window{24 * 7};
    Enqueuer::Options enqueue;
    std::size_t planner_threads = Planner::default_threads();
    // While a pass waits between transactions (a plan, an enqueue) longer than this, the session
    // is pinged: the server ends a session idle for idle_session_timeout (= lock_timeout), and a
    // leader's lock with it. lock_timeout/4, as the heartbeat.
    std::chrono::milliseconds keepalive{2500};
    // The leader's service loop: an idle pass reads every user's build number ahead of the next
    // burst, once per session (store::DispatchStore::read_numbers_ahead). Not for -once.
    bool numbers_ahead = false;
};

class Dispatcher {
  public:
    Dispatcher(store::DispatchStore& store, queue::BuildQueue& queue, std::set<std::string> drivers,
               std::shared_ptr<spdlog::logger> log, DispatchEvents& events, const Clock& clock,
               DispatcherOptions options);

    // Runs one pass on `conn` (the leader's session). `stop` is checked between batches.
    PassReport run_pass(store::PgConnection& conn, const std::atomic<bool>& stop,
                        Progress* progress = nullptr);

    // Batches split across these dispatch sessions (database.dispatch_sessions > 1), once all of
    // them are open: store::DispatchSessions opens them in the background, so a burst never
    // waits for logins (a pooler's PAUSE holds those back); an idle pass of the leader pings them
    // and has a missing set opened ahead of the next burst. Closed at a new leadership and when
    // it ends (close_sessions()), and when a pass loses its session. Meanwhile, or when they
    // cannot be opened, every batch runs on the pass's own session.
    void set_dispatch_sessions(store::DispatchSessions* sessions) { sessions_ = sessions; }
    void close_sessions();

    // The next pass first re-offers committed cron builds to the queue (after a start, a new
    // leadership, or a failed enqueue). A new leadership also opens new dispatch sessions.
    void request_recovery() {
        recovery_needed_ = true;
        close_sessions();
    }
    bool recovery_needed() const { return recovery_needed_; }

  private:
    // After an idle pass: the build numbers ahead of the next burst, tried once per session.
    void read_numbers_ahead(store::PgConnection& conn, Progress* progress);
    // Waits until `ready(wait)` says so, pinging `conn` between waits of options_.keepalive.
    void keep_alive_until(store::PgConnection& conn,
                          const std::function<bool(std::chrono::milliseconds)>& ready);
    void run_batches(store::PgConnection& conn, const std::atomic<bool>& stop, Progress* progress,
                     PassReport& report, std::string& stage);
    // A recovery sweep; false (with the report filled in) when it failed. `at_start`: the pass
    // cannot go on without it.
    bool recover(store::PgConnection& conn, Progress* progress, PassReport& report, bool at_start);

    // The helpers for this pass's batches (empty: the pass's own session alone).
    std::vector<store::PgConnection*> open_sessions();
    // An idle pass of the leader: the dispatch sessions opened, or pinged, ahead of a burst.
    void warm_sessions();

    store::DispatchStore& store_;
    store::DispatchSessions* sessions_ = nullptr;
    std::shared_ptr<spdlog::logger> log_;
    DispatchEvents& events_;
    const Clock& clock_;
    DispatcherOptions options_;
    Enqueuer enqueuer_;
    Recovery recovery_;
    IdleHints idle_hints_;
    Planner planner_;
    bool recovery_needed_ = true;
    // Builds whose enqueue outcome came back (enqueued, or already there) since the watermark
    // last moved: the sweep needs no Redis round trip for them.
    std::unordered_set<std::int64_t> known_;
    std::uint64_t numbers_tried_ = 0;  // the session whose numbers were read ahead (or tried)
    bool sessions_failed_ = false;     // the last attempt to open the dispatch sessions failed
};

}  // namespace djinn::dispatch
