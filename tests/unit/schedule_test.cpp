#include <gtest/gtest.h>

#include <string>

#include "schedule/schedule.hpp"

namespace djinn::schedule {
namespace {

using namespace std::chrono;  // NOLINT(google-build-using-namespace): calendar literals

TimePoint at(year_month_day d, hours h = hours(0), minutes m = minutes(0), seconds s = seconds(0),
             microseconds us = microseconds(0)) {
    return TimePoint(sys_days(d)) + h + m + s + us;
}

TEST(ScheduleTest, ParseAndToString) {
    for (const auto s : {Schedule::daily, Schedule::weekly, Schedule::monthly}) {
        EXPECT_EQ(parse_schedule(to_string(s)), s);
    }
    EXPECT_EQ(parse_schedule("Daily"), std::nullopt);
    EXPECT_EQ(parse_schedule(""), std::nullopt);
    EXPECT_EQ(parse_schedule("hourly"), std::nullopt);
}

TEST(ScheduleTest, DailyIsNextMidnightStrictlyAfter) {
    EXPECT_EQ(next_after(Schedule::daily, at(2026y / 11 / 27, hours(10), minutes(7))),
              at(2026y / 11 / 28));
    EXPECT_EQ(next_after(Schedule::daily, at(2026y / 11 / 27)), at(2026y / 11 / 28));
    EXPECT_EQ(next_after(Schedule::daily, at(2026y / 11 / 27) - microseconds(1)),
              at(2026y / 11 / 27));
    EXPECT_EQ(next_after(Schedule::daily, at(2026y / 11 / 30, hours(23))), at(2026y / 12 / 1));
    EXPECT_EQ(next_after(Schedule::daily, at(2026y / 12 / 31, hours(12))), at(2027y / 1 / 1));
    EXPECT_EQ(next_after(Schedule::daily, at(2028y / 2 / 28, hours(1))), at(2028y / 2 / 29));
    EXPECT_EQ(next_after(Schedule::daily, at(2028y / 2 / 29, hours(1))), at(2028y / 3 / 1));
    EXPECT_EQ(next_after(Schedule::daily, at(2027y / 2 / 28, hours(1))), at(2027y / 3 / 1));
}

TEST(ScheduleTest, WeeklyIsNextSundayFromEveryWeekday) {
    // 2026-11-22 is a Sunday; the next is 2026-11-29.
    ASSERT_EQ(weekday(sys_days(2026y / 11 / 22)), Sunday);
    for (int d = 22; d <= 28; ++d) {
        const auto day = 2026y / November / std::chrono::day(static_cast<unsigned>(d));
        EXPECT_EQ(next_after(Schedule::weekly, at(day, hours(13), minutes(30))),
                  at(2026y / 11 / 29))
            << "from day " << d;
        EXPECT_EQ(next_after(Schedule::weekly,
                             at(day, hours(23), minutes(59), seconds(59), microseconds(999999))),
                  at(2026y / 11 / 29));
    }
    // Exactly on Sunday 00:00 is not "after": the next Sunday.
    EXPECT_EQ(next_after(Schedule::weekly, at(2026y / 11 / 22)), at(2026y / 11 / 29));
    EXPECT_EQ(next_after(Schedule::weekly, at(2026y / 11 / 22) - microseconds(1)),
              at(2026y / 11 / 22));
    // Across a year end and a leap day.
    EXPECT_EQ(next_after(Schedule::weekly, at(2026y / 12 / 31)), at(2027y / 1 / 3));
    EXPECT_EQ(next_after(Schedule::weekly, at(2028y / 2 / 24)), at(2028y / 2 / 27));
    EXPECT_EQ(next_after(Schedule::weekly, at(2028y / 2 / 28)), at(2028y / 3 / 5));
}

TEST(ScheduleTest, MonthlyIsTheFirstStrictlyAfter) {
    EXPECT_EQ(next_after(Schedule::monthly, at(2027y / 1 / 31, hours(12))), at(2027y / 2 / 1));
    EXPECT_EQ(next_after(Schedule::monthly, at(2027y / 1 / 1)), at(2027y / 2 / 1));
    EXPECT_EQ(next_after(Schedule::monthly, at(2027y / 2 / 1) - microseconds(1)),
              at(2027y / 2 / 1));
    EXPECT_EQ(next_after(Schedule::monthly, at(2028y / 2 / 29, hours(23))), at(2028y / 3 / 1));
    EXPECT_EQ(next_after(Schedule::monthly, at(2028y / 1 / 31)), at(2028y / 2 / 1));
    EXPECT_EQ(next_after(Schedule::monthly, at(2026y / 12 / 31, hours(23))), at(2027y / 1 / 1));
    EXPECT_EQ(next_after(Schedule::monthly, at(2026y / 12 / 1)), at(2027y / 1 / 1));
    EXPECT_EQ(next_after(Schedule::monthly, at(2026y / 4 / 30)), at(2026y / 5 / 1));
    // Chained from the boundary, twelve months land on the 1st of every month: no drift.
    TimePoint t = at(2027y / 1 / 1);
    for (unsigned m = 2; m <= 13; ++m) {
        t = next_after(Schedule::monthly, t);
        const year_month_day d(floor<days>(t));
        EXPECT_EQ(d.day(), std::chrono::day(1));
        EXPECT_EQ(d.month(), month(m > 12 ? m - 12 : m));
        EXPECT_EQ(t, TimePoint(floor<days>(t)));
    }
}

TEST(ScheduleTest, GoTimeFormat) {
    EXPECT_EQ(format_go_time(at(2026y / 12 / 6)), "Sun Dec 6 00:00:00 2026");
    EXPECT_EQ(format_go_time(
                  at(2026y / 11 / 27, hours(10), minutes(7), seconds(51), microseconds(123456))),
              "Fri Nov 27 10:07:51 2026");
    EXPECT_EQ(format_go_time(at(2028y / 2 / 29, hours(23), minutes(59), seconds(59))),
              "Tue Feb 29 23:59:59 2028");
    EXPECT_EQ(format_go_time(at(2027y / 1 / 1, hours(9), minutes(5), seconds(3))),
              "Fri Jan 1 09:05:03 2027");
    EXPECT_EQ(format_go_time(TimePoint{}), "Thu Jan 1 00:00:00 1970");
}

TEST(ScheduleTest, PgTimestampFormat) {
    EXPECT_EQ(format_pg_timestamp(
                  at(2026y / 11 / 27, hours(10), minutes(7), seconds(51), microseconds(123456))),
              "2026-11-27 10:07:51.123456");
    EXPECT_EQ(format_pg_timestamp(at(2026y / 11 / 27, hours(10), minutes(7), seconds(51))),
              "2026-11-27 10:07:51");
    EXPECT_EQ(format_pg_timestamp(
                  at(2026y / 1 / 2, hours(3), minutes(4), seconds(5), microseconds(500000))),
              "2026-01-02 03:04:05.5");
    EXPECT_EQ(
        format_pg_timestamp(at(2026y / 1 / 2, hours(0), minutes(0), seconds(0), microseconds(1))),
        "2026-01-02 00:00:00.000001");
    EXPECT_EQ(
        format_pg_timestamp(at(2026y / 1 / 2, hours(0), minutes(0), seconds(0), microseconds(120))),
        "2026-01-02 00:00:00.00012");
    EXPECT_EQ(format_pg_timestamp(TimePoint{}), "1970-01-01 00:00:00");
}

TEST(ScheduleTest, PgTimestampParse) {
    EXPECT_EQ(parse_pg_timestamp("2026-11-27 10:07:51.123456"),
              at(2026y / 11 / 27, hours(10), minutes(7), seconds(51), microseconds(123456)));
    EXPECT_EQ(parse_pg_timestamp("2026-11-27 10:07:51"),
              at(2026y / 11 / 27, hours(10), minutes(7), seconds(51)));
    EXPECT_EQ(parse_pg_timestamp("2026-11-27 10:07:51.5"),
              at(2026y / 11 / 27, hours(10), minutes(7), seconds(51), microseconds(500000)));
    EXPECT_EQ(parse_pg_timestamp("2028-02-29 00:00:00"), at(2028y / 2 / 29));
    for (const char* bad :
         {"", "2026-11-27", "2026-11-27T10:07:51", "2026-11-27 10:07:51.", "2026-11-27 10:07",
          "2026-11-27 10:07:51.1234567", "2026-13-01 00:00:00", "2027-02-29 00:00:00",
          "2026-11-27 24:00:00", "2026-11-27 10:60:00", "2026-11-27 10:07:60", "infinity",
          "-infinity", "2026-11-27 10:07:51 BC", "2026-11-27 10:07:51+00", " 2026-11-27 10:07:51",
          "2026-1-27 10:07:51", "0000-01-01 00:00:00", "2026-11-27 10:07:51x"}) {
        EXPECT_EQ(parse_pg_timestamp(bad), std::nullopt) << bad;
    }
}

TEST(ScheduleTest, PgTimestampRoundTrips) {
    for (const TimePoint t :
         {at(2026y / 11 / 27, hours(10), minutes(7), seconds(51), microseconds(123456)),
          at(2026y / 11 / 27),
          at(2028y / 2 / 29, hours(23), minutes(59), seconds(59), microseconds(999999)),
          at(2026y / 12 / 31, hours(0), minutes(0), seconds(0), microseconds(10)), TimePoint{},
          at(9999y / 12 / 31, hours(23), minutes(59), seconds(59), microseconds(999999)),
          at(1y / 1 / 1)}) {
        const std::string text = format_pg_timestamp(t);
        EXPECT_EQ(parse_pg_timestamp(text), t) << text;
    }
}

}  // namespace
}  // namespace djinn::schedule
