#pragma once
// The scheduler process: ordered start, the service loop, ordered stop.
//
// run(): the HTTP endpoints, then the service loop (service::ServiceLoop: connect, check,
// compete for the advisory lock, lead: a pass on each tick), wired to PostgreSQL, Redis and the
// pass pipeline. Dispatch transactions run on the lock's own session, so a replica that lost the
// lock cannot commit (fencing); each batch also checks that its session holds the lock.
// Stop (SIGTERM/SIGINT): /readyz turns 503 first, the batch in flight finishes and is enqueued,
// the lock is released, the pidfile removed, exit 0. A drain that overruns drain_timeout ends the
// process (exit 1): PostgreSQL rolls back the open transaction, nothing is half-written.
//
// /healthz is progress, not pass boundaries: every statement of a batch, every recovery page,
// enqueue round and wait of the loop beats; the loop is stuck only when nothing beat for
// http.liveness_timeout.
//
// Thread safety: run()/run_once() on one thread; request_stop() from any thread (signal thread);
// live()/ready() from HTTP worker threads.
#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include <spdlog/logger.h>

#include "common/clock.hpp"
#include "common/progress.hpp"
#include "config/config.hpp"
#include "service/service_loop.hpp"

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
    // The `pidfile` directive: false (logged) when it cannot be written.
    bool open_pidfile(std::unique_ptr<Pidfile>& out);

    config::Config config_;
    std::shared_ptr<spdlog::logger> log_;
    const Clock& clock_;
    std::unique_ptr<metrics::Metrics> metrics_;
    Progress progress_;
    service::StopWaiter waiter_;
    // Set once by run(); lives as long as the app, so that HTTP threads may read its state at
    // any time (the server is stopped before the ports the loop uses are gone).
    std::unique_ptr<service::ServiceLoop> loop_holder_;
    std::atomic<const service::ServiceLoop*> loop_{nullptr};
    std::atomic<int> http_port_{0};
};

}  // namespace djinn::app
