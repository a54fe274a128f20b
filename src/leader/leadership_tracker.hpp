#pragma once
// The replica's leadership state, as the tick loop last observed it, readable from any thread
// (/readyz reason, metrics, logs). The loop reports every outcome of try_acquire/verify;
// observe() says whether that was a change worth logging.
//
// Thread safety: observe() from one thread (the loop); the getters from any thread.
// Failure: none.
#include <atomic>
#include <cstdint>

#include "common/clock.hpp"

namespace djinn::leader {

class LeadershipTracker {
  public:
    enum class Change { none, gained, lost };

    // `leading`: this replica holds the lock now (acquired, or verified on a live session).
    Change observe(bool leading, TimePoint now);

    bool leading() const { return leading_.load(std::memory_order_acquire); }
    // Changes so far, both directions.
    std::uint64_t transitions() const { return transitions_.load(std::memory_order_relaxed); }
    // When the current state began; the epoch until the first change.
    TimePoint since() const {
        return TimePoint(std::chrono::microseconds(since_us_.load(std::memory_order_relaxed)));
    }

  private:
    std::atomic<bool> leading_{false};
    std::atomic<std::uint64_t> transitions_{0};
    std::atomic<std::int64_t> since_us_{0};
};

}  // namespace djinn::leader
