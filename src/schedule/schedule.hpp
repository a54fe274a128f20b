#pragma once
// Cron schedules and their boundaries: pure functions of time, all in UTC.
// daily = @daily, weekly = @weekly (Sunday), monthly = @monthly (the 1st), at 00:00 UTC.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.hpp"

namespace djinn::schedule {

enum class Schedule { daily, weekly, monthly };

// "daily" / "weekly" / "monthly" (the values of Djinn's `schedule` enum); nullopt otherwise.
std::optional<Schedule> parse_schedule(std::string_view text);
std::string_view to_string(Schedule s);

// The first boundary of `s` strictly after `after`. After downtime a cron fires once and its
// next run is next_after(schedule, now).
TimePoint next_after(Schedule s, TimePoint after);

// Go's time.Format("Mon Jan 2 15:04:05 2006") of a UTC time, e.g. "Sun Dec 6 00:00:00 2026".
std::string format_go_time(TimePoint t);

// PostgreSQL `timestamp` text <-> TimePoint (UTC wall clock, microseconds):
// "2026-11-27 10:07:51.123456" or without fraction. nullopt when the text is not a timestamp.
std::optional<TimePoint> parse_pg_timestamp(std::string_view text);
std::string format_pg_timestamp(TimePoint t);
// The same into a caller's buffer (no allocation); returns its length.
inline constexpr std::size_t kPgTimestampMax = 40;
std::size_t format_pg_timestamp(TimePoint t, char (&buf)[kPgTimestampMax]);

}  // namespace djinn::schedule
