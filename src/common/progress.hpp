#pragma once
// The service's heartbeat for /healthz: every unit of work that completes (a statement of a
// batch, a recovery page, an enqueue round, a wait of the loop) calls beat(). The loop is stuck
// only when nothing beat for the whole liveness window, however long a healthy pass runs.
//
// Thread safety: beat() and since_last() from any thread (one atomic).
// Failure: none.
#include <atomic>
#include <chrono>
#include <cstdint>

#include "common/clock.hpp"

namespace djinn {

class Progress {
  public:
    explicit Progress(const Clock& clock) : clock_(clock) { beat(); }
    void beat() noexcept {
        last_us_.store(clock_.monotonic().time_since_epoch().count(), std::memory_order_relaxed);
    }
    // How long since the last beat, on the monotonic clock.
    std::chrono::microseconds since_last() const noexcept {
        const auto now = clock_.monotonic().time_since_epoch().count();
        return std::chrono::microseconds(now - last_us_.load(std::memory_order_relaxed));
    }

  private:
    const Clock& clock_;
    std::atomic<std::int64_t> last_us_{0};
};

// Calls beat() on a Progress that may be absent.
inline void beat(Progress* p) noexcept {
    if (p != nullptr)
        p->beat();
}

}  // namespace djinn
