#include "leader/leadership_tracker.hpp"

namespace djinn::leader {

LeadershipTracker::Change LeadershipTracker::observe(bool leading, TimePoint now) {
    if (leading_.load(std::memory_order_relaxed) == leading)
        return Change::none;
    since_us_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    transitions_.fetch_add(1, std::memory_order_relaxed);
    leading_.store(leading, std::memory_order_release);
    return leading ? Change::gained : Change::lost;
}

}  // namespace djinn::leader
