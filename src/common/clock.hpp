#pragma once
// Injected time sources. Production code asks a Clock; unit tests use ManualClock.
//
// Two kinds of time, never mixed:
// - wall time (now()): UTC, for timestamps and for the tick boundaries of `interval`. It can
//   jump (NTP steps, an operator's `date -s`), so it never measures a duration;
// - monotonic time (monotonic()): only ever moves forward at the pace of real time; every
//   duration (heartbeat, lock verify, retries, liveness, drain) is measured on it.
//
// Thread safety: SystemClock is stateless; ManualClock is safe for concurrent use.
#include <atomic>
#include <chrono>
#include <cstdint>

namespace djinn {

using TimePoint = std::chrono::sys_time<std::chrono::microseconds>;
using MonoTime = std::chrono::time_point<std::chrono::steady_clock, std::chrono::microseconds>;

class Clock {
  public:
    virtual ~Clock() = default;
    virtual TimePoint now() const = 0;
    virtual MonoTime monotonic() const = 0;
};

class SystemClock final : public Clock {
  public:
    TimePoint now() const override {
        return std::chrono::time_point_cast<std::chrono::microseconds>(
            std::chrono::system_clock::now());
    }
    MonoTime monotonic() const override {
        return std::chrono::time_point_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now());
    }
};

// Simulated time: advance() moves both clocks (time passes); step_wall() moves the wall clock
// alone (a clock step), which is what a test of clock steps needs.
class ManualClock final : public Clock {
  public:
    explicit ManualClock(TimePoint start, MonoTime mono_start = MonoTime(std::chrono::hours(1)))
        : now_(start.time_since_epoch().count()), mono_(mono_start.time_since_epoch().count()) {}
    TimePoint now() const override { return TimePoint(std::chrono::microseconds(now_.load())); }
    MonoTime monotonic() const override {
        return MonoTime(std::chrono::microseconds(mono_.load()));
    }
    void set(TimePoint t) { now_.store(t.time_since_epoch().count()); }
    void advance(std::chrono::microseconds d) {
        now_.fetch_add(d.count());
        mono_.fetch_add(d.count());
    }
    void step_wall(std::chrono::microseconds d) { now_.fetch_add(d.count()); }

  private:
    std::atomic<std::int64_t> now_;
    std::atomic<std::int64_t> mono_;
};

}  // namespace djinn
