#pragma once
// Injected time source. Production code asks a Clock for the time; unit tests use ManualClock.
// Thread safety: SystemClock is stateless; ManualClock is safe for concurrent use.
#include <atomic>
#include <chrono>

namespace djinn {

using TimePoint = std::chrono::sys_time<std::chrono::microseconds>;

class Clock {
  public:
    virtual ~Clock() = default;
    virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
  public:
    TimePoint now() const override {
        return std::chrono::time_point_cast<std::chrono::microseconds>(
            std::chrono::system_clock::now());
    }
};

class ManualClock final : public Clock {
  public:
    explicit ManualClock(TimePoint start) : now_(start.time_since_epoch().count()) {}
    TimePoint now() const override { return TimePoint(std::chrono::microseconds(now_.load())); }
    void set(TimePoint t) { now_.store(t.time_since_epoch().count()); }
    void advance(std::chrono::microseconds d) { now_.fetch_add(d.count()); }

  private:
    std::atomic<std::int64_t> now_;
};

}  // namespace djinn
