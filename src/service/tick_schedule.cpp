#include "service/tick_schedule.hpp"

#include <algorithm>

namespace djinn::service {
namespace {

// A backward jump larger than this is a clock step, not drift (NTP slews at most 0.5 ms/s).
constexpr std::chrono::microseconds kStepTolerance = std::chrono::seconds(1);

}  // namespace

TickSchedule::TickSchedule(std::chrono::milliseconds interval)
    : interval_(std::max<std::chrono::microseconds>(interval, std::chrono::milliseconds(1))) {}

TimePoint TickSchedule::boundary_after(TimePoint t, std::chrono::microseconds interval) {
    const auto since = t.time_since_epoch();
    auto k = since / interval;
    if (since.count() < 0 && since % interval != std::chrono::microseconds(0))
        --k;  // floor for times before the epoch
    return TimePoint((k + 1) * interval);
}

void TickSchedule::observe(TimePoint wall, MonoTime mono) {
    if (anchored_) {
        const TimePoint expected = anchor_wall_ + (mono - anchor_mono_);
        if (wall < expected - kStepTolerance) {
            // The wall clock went back: keep the boundaries, move to the next one from here.
            next_ = std::min(next_, boundary_after(wall, interval_));
        }
    }
    anchor_wall_ = wall;
    anchor_mono_ = mono;
    anchored_ = true;
}

void TickSchedule::now_due(TimePoint wall, MonoTime mono) {
    observe(wall, mono);
    next_ = wall;
}

void TickSchedule::passed(TimePoint wall, MonoTime mono) {
    observe(wall, mono);
    next_ = boundary_after(wall, interval_);
}

bool TickSchedule::due(TimePoint wall, MonoTime mono) {
    observe(wall, mono);
    return wall >= next_;
}

std::chrono::microseconds TickSchedule::until(TimePoint wall, MonoTime mono) {
    observe(wall, mono);
    return std::max<std::chrono::microseconds>(next_ - wall, std::chrono::microseconds(0));
}

}  // namespace djinn::service
