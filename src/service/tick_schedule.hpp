#pragma once
// When the next pass is due: on every wall-clock boundary of `interval` (every minute at :00),
// as the contract says. Wall time only decides the boundaries; whether the wall clock stepped is
// judged on the monotonic clock: a step backwards (an NTP step, `date -s`) would otherwise hold
// the next pass back by the size of the step, so the schedule moves to the first boundary after
// the new time; a step forwards simply makes the pass due at once.
//
// Thread safety: none (the loop's). Failure: none.
#include <chrono>

#include "common/clock.hpp"

namespace djinn::service {

class TickSchedule {
  public:
    explicit TickSchedule(std::chrono::milliseconds interval);

    // A pass is due now (a new leadership catches up at once: the previous leader may have died
    // in the middle of a pass).
    void now_due(TimePoint wall, MonoTime mono);
    // A pass finished: the next one is due at the first boundary after `wall`.
    void passed(TimePoint wall, MonoTime mono);
    bool due(TimePoint wall, MonoTime mono);
    // Until the next pass is due (0 if it is), after the same correction as due().
    std::chrono::microseconds until(TimePoint wall, MonoTime mono);

    TimePoint next() const { return next_; }
    // The first boundary of `interval` strictly after `t`.
    static TimePoint boundary_after(TimePoint t, std::chrono::microseconds interval);

  private:
    void observe(TimePoint wall, MonoTime mono);

    std::chrono::microseconds interval_;
    TimePoint next_{};
    TimePoint anchor_wall_{};
    MonoTime anchor_mono_{};
    bool anchored_ = false;
};

}  // namespace djinn::service
