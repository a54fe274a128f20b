#pragma once
// One pass of the scheduler: re-offer committed-but-maybe-unqueued builds when needed, then take
// due crons batch by batch until none is due, committing each batch's builds and enqueueing them.
//
// Order within a batch: commit in PostgreSQL first, then enqueue in Redis. A crash or a Redis
// failure between the two leaves committed builds without a job; the next pass (and every first
// pass after a start or a new leadership) re-offers the queued cron builds of the recovery window
// to the queue, whose per-build marker makes that idempotent: each build is enqueued exactly once.
//
// Pipelining: a batch's jobs are enqueued on a helper thread while the next batch is written
// (at most one in flight; run_pass waits for it before returning).
//
// Thread safety: not thread-safe; owned by the scheduler thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "app/dispatch_events.hpp"
#include "common/clock.hpp"
#include "queue/build_queue.hpp"
#include "store/dispatch_store.hpp"
#include "store/pg_connection.hpp"

namespace djinn::app {

struct PassReport {
    bool ok = true;  // false: the pass stopped on an error (see error)
    std::string error;
    std::size_t batches = 0;
    std::size_t taken = 0;       // due crons taken
    std::size_t dispatched = 0;  // builds committed
    std::size_t skipped = 0;     // crons skipped (advanced or staying due)
    std::size_t enqueued = 0;    // jobs put on queues
    std::size_t recovered = 0;   // committed builds found without a job and enqueued
    std::size_t stayed_due = 0;  // crons taken and left due (a dry run leaves every one due)
    bool stopped = false;        // a stop was requested and the pass ended after a batch
    std::chrono::microseconds duration{0};
};

struct DispatcherOptions {
    std::int64_t batch_size = 1000;
    bool dry_run = false;
    std::chrono::hours recovery_window{24 * 7};
    int enqueue_attempts = 3;
    std::chrono::milliseconds enqueue_backoff{200};
};

class Dispatcher {
  public:
    Dispatcher(store::DispatchStore& store, queue::BuildQueue& queue,
               std::shared_ptr<spdlog::logger> log, DispatchEvents& events, const Clock& clock,
               DispatcherOptions options);

    // Runs one pass on `conn` (the leader's session). `stop` is checked between batches.
    PassReport run_pass(store::PgConnection& conn, const std::atomic<bool>& stop);

    // The next pass first re-offers committed cron builds to the queue (after a start, a new
    // leadership, or a failed enqueue).
    void request_recovery() { recovery_needed_ = true; }
    bool recovery_needed() const { return recovery_needed_; }

  private:
    struct Enqueued {
        bool all = true;  // false: some jobs failed every attempt
        std::size_t enqueued = 0;
        std::vector<queue::JobOutcome> outcomes;  // per job
        TimePoint at;                             // when the last attempt ended
    };

    bool recover(store::PgConnection& conn, PassReport& report);
    // Enqueues with retries; called from the pass's thread or its enqueue thread (one at a time:
    // BuildQueue is not thread-safe; events and log are).
    Enqueued enqueue(const std::vector<queue::QueueJob>& jobs);

    store::DispatchStore& store_;
    queue::BuildQueue& queue_;
    std::shared_ptr<spdlog::logger> log_;
    DispatchEvents& events_;
    const Clock& clock_;
    DispatcherOptions options_;
    bool recovery_needed_ = true;
};

}  // namespace djinn::app
