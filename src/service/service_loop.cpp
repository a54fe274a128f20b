#include "service/service_loop.hpp"

#include <algorithm>
#include <exception>

namespace djinn::service {
namespace {

using namespace std::chrono_literals;

std::string describe_current_exception() {
    try {
        throw;
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an exception that is not a std::exception";
    }
}

std::chrono::milliseconds ms(std::chrono::microseconds d) {
    return std::chrono::ceil<std::chrono::milliseconds>(d);
}

}  // namespace

const char* to_string(State s) {
    switch (s) {
        case State::connecting:
            return "connecting";
        case State::checking:
            return "checking the session";
        case State::competing:
            return "competing";
        case State::leading:
            return "leading";
        case State::stopped:
            return "stopped";
    }
    return "unknown";
}

ServiceLoop::ServiceLoop(LoopOptions options, Database& db, QueueProbe& queue, PassRunner& passes,
                         Waiter& waiter, const Clock& clock, Progress& progress,
                         LoopObserver& observer, std::shared_ptr<spdlog::logger> log)
    : options_(options),
      db_(db),
      queue_(queue),
      passes_(passes),
      waiter_(waiter),
      clock_(clock),
      progress_(progress),
      observer_(observer),
      log_(std::move(log)),
      ticks_(options.interval) {}

std::pair<bool, std::string> ServiceLoop::ready() const {
    if (waiter_.stopping().load())
        return {false, "stopping"};
    const State s = state_.load();
    if (s != State::competing && s != State::leading) {
        std::lock_guard lock(why_mu_);
        return {false, not_ready_why_};
    }
    if (!pinged_.load())
        return {false, "checking Redis"};
    if (!redis_ok_.load())
        return {false, "Redis unreachable"};
    return {true, s == State::leading ? "ready (leader)" : "ready (standby)"};
}

void ServiceLoop::set_not_ready(std::string why) {
    std::lock_guard lock(why_mu_);
    not_ready_why_ = std::move(why);
}

void ServiceLoop::log_once(const std::string& message) {
    if (message == last_logged_)
        return;
    last_logged_ = message;
    log_->error("{}", message);
}

void ServiceLoop::to(State s) {
    state_.store(s);
}

void ServiceLoop::wait(std::chrono::milliseconds d) {
    progress_.beat();
    waiter_.wait_for(std::clamp(d, 1ms, options_.max_wait));
    progress_.beat();
}

void ServiceLoop::reset_session() {
    db_.close();
    to(State::connecting);
    set_not_ready("connecting to PostgreSQL");
}

void ServiceLoop::step_down(const std::string& why) {
    log_->warn("leadership lost: {}; stopped dispatching, competing again", why);
    observer_.leadership(false);
    passes_.stepped_down();
    // Never reuse a session that lost the lock or errored: a fresh one competes again.
    reset_session();
}

void ServiceLoop::ping_queue() {
    const MonoTime now = clock_.monotonic();
    if (pinged_.load() && now - last_ping_ < options_.redis_ping_every)
        return;
    last_ping_ = now;
    const bool ok = queue_.ping();
    progress_.beat();
    if (pinged_.load() && ok != redis_ok_.load()) {
        if (ok)
            log_->info("Redis reachable again");
        else
            log_->warn("Redis unreachable");
    } else if (!pinged_.load() && !ok) {
        log_->warn("Redis unreachable");
    }
    redis_ok_.store(ok);
    pinged_.store(true);
}

void ServiceLoop::run() {
    while (!waiter_.stopping().load())
        step();
    finish();
}

void ServiceLoop::step() {
    const State before = state_.load();
    try {
        step_once();
    } catch (...) {
        // The loop's boundary: whatever a port threw. Log once with the state, count, start
        // from a fresh session.
        log_->error("internal error while {}: {}; the session is dropped and the loop goes on",
                    to_string(before), describe_current_exception());
        try {
            observer_.error("internal");
            if (state_.load() == State::leading) {
                step_down("internal error");
            } else {
                reset_session();
            }
        } catch (...) {
            to(State::connecting);
        }
        wait(options_.retry_interval);
    }
}

void ServiceLoop::step_once() {
    progress_.beat();
    if (waiter_.stopping().load())
        return;
    ping_queue();
    switch (state_.load()) {
        case State::connecting: {
            const Database::Check opened = db_.open();
            progress_.beat();
            if (!opened.ok) {
                log_once("cannot connect to PostgreSQL: " + opened.reason);
                observer_.error(opened.kind.empty() ? "database_connection" : opened.kind);
                set_not_ready("cannot connect to PostgreSQL: " + opened.reason);
                wait(options_.retry_interval);
                return;
            }
            to(State::checking);
            set_not_ready("checking the PostgreSQL session");
            return;
        }
        case State::checking: {
            const Database::Check c = db_.check();
            progress_.beat();
            if (!c.ok) {
                // Readiness says why; the replica neither leads nor stands by on this session.
                log_once(c.reason);
                observer_.error(c.kind.empty() ? "database" : c.kind);
                db_.close();
                to(State::connecting);
                set_not_ready(c.reason);
                wait(options_.retry_interval);
                return;
            }
            last_logged_.clear();  // healthy again: the next failure is news
            to(State::competing);
            return;
        }
        case State::competing: {
            if (!db_.usable()) {
                reset_session();
                return;
            }
            const Database::Lock r = db_.try_acquire();
            progress_.beat();
            if (r == Database::Lock::held) {
                to(State::leading);
                observer_.leadership(true);
                log_->info("leadership acquired: dispatching");
                passes_.request_recovery();
                ticks_.now_due(clock_.now(), clock_.monotonic());
                last_verify_ = clock_.monotonic();
                return;
            }
            if (r == Database::Lock::error) {
                observer_.error("leader_lock");
                log_->warn("leader lock attempt failed: {}", db_.last_error());
                if (!db_.usable()) {
                    reset_session();
                    return;
                }
            }
            wait(options_.retry_interval);
            return;
        }
        case State::leading: {
            if (!db_.usable()) {
                step_down("database session lost");
                return;
            }
            if (ticks_.due(clock_.now(), clock_.monotonic())) {
                const PassOutcome out = passes_.run(waiter_.stopping());
                progress_.beat();
                ticks_.passed(clock_.now(), clock_.monotonic());
                if (out.session_lost || !db_.usable()) {
                    step_down("database session lost during the pass");
                    return;
                }
                if (out.internal)
                    last_verify_ = MonoTime{};  // make sure of the session at once
                return;
            }
            const MonoTime now = clock_.monotonic();
            if (now - last_verify_ >= options_.heartbeat) {
                const Database::Lock r = db_.verify();
                progress_.beat();
                if (r != Database::Lock::held) {
                    if (r == Database::Lock::error)
                        observer_.error("leader_lock");
                    step_down(r == Database::Lock::error ? "lock check failed: " + db_.last_error()
                                                         : "the lock is no longer held");
                    return;
                }
                last_verify_ = clock_.monotonic();
                return;
            }
            const auto until_tick = ticks_.until(clock_.now(), now);
            const auto until_verify = options_.heartbeat - (now - last_verify_);
            wait(ms(std::min<std::chrono::microseconds>(until_tick, until_verify)));
            return;
        }
        case State::stopped:
            return;
    }
}

void ServiceLoop::finish() {
    try {
        if (state_.load() == State::leading) {
            if (db_.usable() && db_.release())
                log_->info("leadership released");
            observer_.leadership(false);
        }
        db_.close();
    } catch (...) {
        log_->error("internal error while stopping: {}", describe_current_exception());
    }
    to(State::stopped);
}

bool StopWaiter::wait_for(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, d, [&] { return stop_.load(); });
    return !stop_.load();
}

void StopWaiter::stop() {
    {
        std::lock_guard lock(mu_);
        stop_.store(true);
    }
    cv_.notify_all();
}

}  // namespace djinn::service
