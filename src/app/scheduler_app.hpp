#pragma once
// The scheduler process: ordered start, the tick loop, ordered stop.
//
// Loop (one thread, owning the PostgreSQL session): open a session (lock timeouts set), compete
// for the advisory lock every retry_interval; as leader, run a pass at once and then on each
// wall-clock boundary of `interval`, heartbeat the lock between passes, and treat any broken
// session as lost leadership (stop, reconnect, compete again). Dispatch transactions run on the
// lock's own session, so a replica that lost the lock cannot commit (fencing).
// Stop (SIGTERM/SIGINT): /readyz turns 503 first, the batch in flight finishes and is enqueued,
// the lock is released, the pidfile removed, exit 0. A drain that overruns drain_timeout ends the
// process (exit 1): PostgreSQL rolls back the open transaction, nothing is half-written.
//
// Thread safety: run()/run_once() on one thread; request_stop() from any thread (signal thread);
// live()/ready() from HTTP worker threads.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <spdlog/logger.h>

#include "common/clock.hpp"
#include "config/config.hpp"

namespace djinn::metrics {
class Metrics;
}

namespace djinn::app {

class Pidfile;

class SchedulerApp {
  public:
    SchedulerApp(config::Config config, std::shared_ptr<spdlog::logger> log, const Clock& clock);
    ~SchedulerApp();

    // One pass without leader election (safe beside a running fleet: crons are row-locked).
    // 0 when the pass completed, 1 otherwise.
    int run_once(bool dry_run);

    // The service: HTTP endpoints, leader election, passes, until request_stop(). Exit code.
    int run();

    void request_stop();
    bool live() const;
    std::pair<bool, std::string> ready() const;
    int http_port() const { return http_port_.load(); }

  private:
    void beat();
    // The `pidfile` directive: false (logged) when it cannot be written.
    bool open_pidfile(std::unique_ptr<Pidfile>& out);
    bool wait_for(std::chrono::milliseconds d);  // false when stop was requested

    config::Config config_;
    std::shared_ptr<spdlog::logger> log_;
    const Clock& clock_;
    std::unique_ptr<metrics::Metrics> metrics_;

    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::condition_variable cv_;
    std::atomic<std::int64_t> heartbeat_us_{0};
    std::atomic<bool> db_ok_{false};
    std::atomic<bool> redis_ok_{false};
    std::atomic<bool> started_{false};
    std::atomic<int> http_port_{0};
};

}  // namespace djinn::app
