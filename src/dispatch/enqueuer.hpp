#pragma once
// Puts committed builds' jobs on their queues, with bounded retries: `attempts` rounds, the
// failed jobs of each round retried after backoff * round. Every round is one pipeline to Redis
// and beats the pass's Progress.
//
// Enqueue runs between transactions, with the lock session idle: the whole retry budget must
// stay well inside lock_timeout (the session's idle_session_timeout), which the app ensures by
// deriving the Redis timeout from it.
//
// Thread safety: one call at a time (BuildQueue is not thread-safe); the pipeline calls it from
// its enqueue thread, one batch after the other. Failure: values (Result), never exceptions
// from Redis.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include <spdlog/logger.h>

#include "common/clock.hpp"
#include "common/progress.hpp"
#include "dispatch/dispatch_events.hpp"
#include "queue/build_queue.hpp"

namespace djinn::dispatch {

class Enqueuer {
  public:
    struct Options {
        int attempts = 3;
        std::chrono::milliseconds backoff{200};
    };
    struct Result {
        bool all = true;  // false: some jobs failed every attempt (they stay committed)
        std::size_t enqueued = 0;
        std::vector<queue::JobOutcome> outcomes;  // per job
        TimePoint at;                             // when the last round ended (wall clock)
    };
    using Sleep = std::function<void(std::chrono::milliseconds)>;

    Enqueuer(queue::BuildQueue& queue, std::shared_ptr<spdlog::logger> log, DispatchEvents& events,
             const Clock& clock, Options options, Sleep sleep = {});

    Result enqueue(const std::vector<queue::QueueJob>& jobs, Progress* progress);

  private:
    queue::BuildQueue& queue_;
    std::shared_ptr<spdlog::logger> log_;
    DispatchEvents& events_;
    const Clock& clock_;
    Options options_;
    Sleep sleep_;
};

}  // namespace djinn::dispatch
