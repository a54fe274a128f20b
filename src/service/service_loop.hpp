#pragma once
// The scheduler's service loop as a state machine:
//
//   connecting --open ok--> checking --check ok--> competing --lock taken--> leading
//       ^  |                    |                      |   ^                  |  |
//       |  open failed:        check failed:         held by another:        |  pass on each tick,
//       |  wait retry          close, wait retry     wait retry              |  verify every
//       |                                                                    |  lock_timeout/4
//       +------------------- step down: session lost, lock lost, ------------+
//                            a pass that lost its session, an internal error
//   any state --stop--> stopped (a leader releases its lock first)
//
// Time: monotonic for every duration (retries, heartbeats, waits), wall time only for the tick
// boundaries (TickSchedule). Progress beats at every step, so /healthz fails only when one step
// (a connect, one statement of a pass, a Redis round) hangs for the whole liveness window.
//
// Containment: every step runs inside a catch-all. An exception from any port is logged once
// with the state it happened in, counted (errors_total{kind="internal"}), the session is dropped
// (a leader steps down: its session may be in any state) and the loop goes on after
// retry_interval.
//
// Readiness follows the state: ready while competing (standby) or leading with Redis reachable;
// not ready while connecting, checking, after a failed check (the reason is the check's) and
// once stopping.
//
// Thread safety: run()/step()/finish() on one thread; state(), leading(), ready() from any
// thread. Failure: never throws.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <spdlog/logger.h>

#include "common/clock.hpp"
#include "common/progress.hpp"
#include "service/ports.hpp"
#include "service/tick_schedule.hpp"

namespace djinn::service {

enum class State { connecting, checking, competing, leading, stopped };
const char* to_string(State s);

struct LoopOptions {
    std::chrono::milliseconds interval{60000};
    std::chrono::milliseconds retry_interval{2000};
    std::chrono::milliseconds heartbeat{2500};  // lock_timeout / 4
    std::chrono::milliseconds redis_ping_every{5000};
    std::chrono::milliseconds max_wait{1000};  // the longest single wait of the loop
};

class ServiceLoop {
  public:
    ServiceLoop(LoopOptions options, Database& db, QueueProbe& queue, PassRunner& passes,
                Waiter& waiter, const Clock& clock, Progress& progress, LoopObserver& observer,
                std::shared_ptr<spdlog::logger> log);

    // Steps until stop is requested, then finish().
    void run();
    // One transition (or one wait). Public for tests, which walk the machine step by step.
    void step();
    // The stop sequence: a leader releases its lock; the session is closed.
    void finish();

    State state() const { return state_.load(); }
    bool leading() const { return state_.load() == State::leading; }
    std::pair<bool, std::string> ready() const;
    // The tick schedule, for tests.
    const TickSchedule& ticks() const { return ticks_; }

  private:
    void step_once();
    void to(State s);
    void wait(std::chrono::milliseconds d);
    void step_down(const std::string& why);
    void reset_session();
    void ping_queue();
    void set_not_ready(std::string why);
    // Logs `message` at error level unless it is the one logged last (a retry loop logs a
    // failure once, and again only when it changes or after a success).
    void log_once(const std::string& message);

    LoopOptions options_;
    Database& db_;
    QueueProbe& queue_;
    PassRunner& passes_;
    Waiter& waiter_;
    const Clock& clock_;
    Progress& progress_;
    LoopObserver& observer_;
    std::shared_ptr<spdlog::logger> log_;

    std::atomic<State> state_{State::connecting};
    std::atomic<bool> redis_ok_{false};
    std::atomic<bool> pinged_{false};
    mutable std::mutex why_mu_;
    std::string not_ready_why_ = "connecting to PostgreSQL";
    std::string last_logged_;

    TickSchedule ticks_;
    MonoTime last_verify_{};
    MonoTime last_ping_{};
};

// The production Waiter: a condition variable (steady clock) that request_stop() wakes.
class StopWaiter final : public Waiter {
  public:
    bool wait_for(std::chrono::milliseconds d) override;
    void stop() override;
    const std::atomic<bool>& stopping() const override { return stop_; }

  private:
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::condition_variable cv_;
};

}  // namespace djinn::service
