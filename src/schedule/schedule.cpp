#include "schedule/schedule.hpp"

#include <array>
#include <charconv>
#include <cstdio>

namespace djinn::schedule {
namespace {

using std::chrono::days;
using std::chrono::floor;
using std::chrono::microseconds;
using std::chrono::sys_days;

constexpr std::array<const char*, 7> kWeekdays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

struct Civil {
    std::chrono::year_month_day date;
    std::chrono::hh_mm_ss<microseconds> time;
};

Civil civil(TimePoint t) {
    const sys_days day = floor<days>(t);
    return {std::chrono::year_month_day(day), std::chrono::hh_mm_ss<microseconds>(t - day)};
}

// Reads exactly `width` decimal digits (or at least `width` when `at_least`) from the front.
bool take_number(std::string_view& s, std::size_t width, bool at_least, long long& out) {
    std::size_t n = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') {
        ++n;
    }
    if (n < width || (!at_least && n != width) || n > 9) {
        return false;
    }
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + n, out);
    if (ec != std::errc() || ptr != s.data() + n) {
        return false;
    }
    s.remove_prefix(n);
    return true;
}

bool take_char(std::string_view& s, char c) {
    if (s.empty() || s.front() != c) {
        return false;
    }
    s.remove_prefix(1);
    return true;
}

}  // namespace

std::optional<Schedule> parse_schedule(std::string_view text) {
    if (text == "daily") {
        return Schedule::daily;
    }
    if (text == "weekly") {
        return Schedule::weekly;
    }
    if (text == "monthly") {
        return Schedule::monthly;
    }
    return std::nullopt;
}

std::string_view to_string(Schedule s) {
    switch (s) {
        case Schedule::daily:
            return "daily";
        case Schedule::weekly:
            return "weekly";
        case Schedule::monthly:
            return "monthly";
    }
    return "daily";  // unreachable: every enumerator is handled above
}

TimePoint next_after(Schedule s, TimePoint after) {
    // `day` is midnight at or before `after`, so every candidate below is strictly after it.
    const sys_days day = floor<days>(after);
    switch (s) {
        case Schedule::daily:
            return day + days(1);
        case Schedule::weekly: {
            // Sunday is 0: from Sunday the next one is 7 days away, from Saturday 1.
            const unsigned wd = std::chrono::weekday(day).c_encoding();
            return day + days(7 - wd);
        }
        case Schedule::monthly: {
            const std::chrono::year_month_day ymd(day);
            const std::chrono::year_month next = ymd.year() / ymd.month() + std::chrono::months(1);
            return sys_days(next / std::chrono::day(1));
        }
    }
    return day + days(1);  // unreachable
}

std::string format_go_time(TimePoint t) {
    const Civil c = civil(t);
    const std::chrono::weekday wd(sys_days(c.date));
    char buf[64];
    const int n = std::snprintf(
        buf, sizeof buf, "%s %s %u %02lld:%02lld:%02lld %04d", kWeekdays[wd.c_encoding()],
        kMonths[static_cast<unsigned>(c.date.month()) - 1], static_cast<unsigned>(c.date.day()),
        static_cast<long long>(c.time.hours().count()),
        static_cast<long long>(c.time.minutes().count()),
        static_cast<long long>(c.time.seconds().count()), static_cast<int>(c.date.year()));
    return std::string(buf, static_cast<std::size_t>(n > 0 ? n : 0));
}

std::optional<TimePoint> parse_pg_timestamp(std::string_view text) {
    std::string_view s = text;
    long long year = 0;
    long long month = 0;
    long long day = 0;
    long long hour = 0;
    long long minute = 0;
    long long second = 0;
    if (!take_number(s, 4, true, year) || !take_char(s, '-') || !take_number(s, 2, false, month) ||
        !take_char(s, '-') || !take_number(s, 2, false, day) || !take_char(s, ' ') ||
        !take_number(s, 2, false, hour) || !take_char(s, ':') ||
        !take_number(s, 2, false, minute) || !take_char(s, ':') ||
        !take_number(s, 2, false, second)) {
        return std::nullopt;
    }
    long long micros = 0;
    if (take_char(s, '.')) {
        std::size_t n = 0;
        while (n < s.size() && s[n] >= '0' && s[n] <= '9') {
            ++n;
        }
        // PostgreSQL keeps microseconds: more digits are not something it writes.
        if (n == 0 || n > 6) {
            return std::nullopt;
        }
        for (std::size_t i = 0; i < 6; ++i) {
            micros = micros * 10 + (i < n ? s[i] - '0' : 0);
        }
        s.remove_prefix(n);
    }
    if (!s.empty() || year < 1 || hour > 23 || minute > 59 || second > 59) {
        return std::nullopt;  // also "infinity", " BC" and zone suffixes: not a UTC timestamp
    }
    const std::chrono::year_month_day ymd{std::chrono::year(static_cast<int>(year)),
                                          std::chrono::month(static_cast<unsigned>(month)),
                                          std::chrono::day(static_cast<unsigned>(day))};
    if (!ymd.ok()) {
        return std::nullopt;
    }
    return TimePoint(sys_days(ymd)) + std::chrono::hours(hour) + std::chrono::minutes(minute) +
           std::chrono::seconds(second) + microseconds(micros);
}

std::size_t format_pg_timestamp(TimePoint t, char (&buf)[kPgTimestampMax]) {
    // By hand: snprintf cost more than the rest of a build's rows together (callgrind).
    const Civil c = civil(t);
    char* p = buf;
    auto two = [&](long long v) {
        *p++ = static_cast<char>('0' + v / 10);
        *p++ = static_cast<char>('0' + v % 10);
    };
    long long year = static_cast<int>(c.date.year());
    if (year < 0) {
        *p++ = '-';
        year = -year;
    }
    char digits[12];
    int n = 0;
    do {
        digits[n++] = static_cast<char>('0' + year % 10);
        year /= 10;
    } while (year > 0 && n < 12);
    for (int i = n; i < 4; ++i)
        *p++ = '0';  // at least four digits, as PostgreSQL and %04d
    while (n > 0)
        *p++ = digits[--n];
    *p++ = '-';
    two(static_cast<unsigned>(c.date.month()));
    *p++ = '-';
    two(static_cast<unsigned>(c.date.day()));
    *p++ = ' ';
    two(c.time.hours().count());
    *p++ = ':';
    two(c.time.minutes().count());
    *p++ = ':';
    two(c.time.seconds().count());
    long long fraction = c.time.subseconds().count();
    if (fraction != 0) {
        // PostgreSQL prints the microseconds and drops trailing zeros (".5", ".000001").
        *p++ = '.';
        char f[6];
        for (int i = 5; i >= 0; --i) {
            f[i] = static_cast<char>('0' + fraction % 10);
            fraction /= 10;
        }
        int last = 5;
        while (f[last] == '0')
            --last;
        for (int i = 0; i <= last; ++i)
            *p++ = f[i];
    }
    return static_cast<std::size_t>(p - buf);
}

std::string format_pg_timestamp(TimePoint t) {
    char buf[kPgTimestampMax];
    return std::string(buf, format_pg_timestamp(t, buf));
}

}  // namespace djinn::schedule
