#include "config/literals.hpp"

#include <array>
#include <charconv>
#include <limits>
#include <system_error>

namespace djinn::config {
namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// digits, optionally '.' digits; at least one digit overall. Returns the length read.
std::size_t scan_decimal(std::string_view s, std::size_t i, bool* had_point) {
    std::size_t start = i;
    bool digits = false;
    *had_point = false;
    while (i < s.size() && is_digit(s[i])) {
        ++i;
        digits = true;
    }
    if (i < s.size() && s[i] == '.') {
        *had_point = true;
        ++i;
        while (i < s.size() && is_digit(s[i])) {
            ++i;
            digits = true;
        }
    }
    return digits ? i - start : 0;
}

struct Unit {
    std::string_view name;
    std::int64_t nanoseconds;
};

// Longest names first so that "ms" is not read as "m" followed by "s".
constexpr std::array<Unit, 8> kUnits{{
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000},  // U+00B5 micro sign
    {"\xce\xbcs", 1000},  // U+03BC Greek mu
    {"ms", 1000000},
    {"s", 1000000000},
    {"m", 60LL * 1000000000},
    {"h", 3600LL * 1000000000},
}};

}  // namespace

NumberShape classify_number(std::string_view text) {
    std::size_t i = 0;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) {
        ++i;
    }
    bool point = false;
    std::size_t n = scan_decimal(text, i, &point);
    if (n == 0) {
        return NumberShape::invalid;
    }
    i += n;
    if (i == text.size()) {
        return point ? NumberShape::floating : NumberShape::integer;
    }
    std::string_view rest = text.substr(i);
    if (!point && (rest == "B" || rest == "KB" || rest == "MB" || rest == "GB" || rest == "TB")) {
        return NumberShape::size;
    }
    // A duration: the rest is numbers and unit letters only; parse_duration judges the order.
    if (is_digit(rest.front()) || rest.front() == '.') {
        return NumberShape::invalid;  // "1.2.3"
    }
    for (std::size_t j = 0; j < rest.size(); ++j) {
        char c = rest[j];
        bool unit_char = c == 'n' || c == 'u' || c == 'm' || c == 's' || c == 'h' || c == '.' ||
                         is_digit(c) || static_cast<unsigned char>(c) >= 0x80;
        if (!unit_char) {
            return NumberShape::invalid;
        }
    }
    return NumberShape::duration;
}

std::optional<std::int64_t> parse_integer(std::string_view text, std::string* error) {
    std::string_view digits = text;
    if (!digits.empty() && digits.front() == '+') {
        digits.remove_prefix(1);
    }
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec == std::errc::result_out_of_range) {
        *error = "integer " + std::string(text) + " is out of range";
        return std::nullopt;
    }
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty()) {
        *error = "invalid integer " + std::string(text);
        return std::nullopt;
    }
    return value;
}

std::optional<double> parse_float(std::string_view text, std::string* error) {
    std::string_view digits = text;
    if (!digits.empty() && digits.front() == '+') {
        digits.remove_prefix(1);
    }
    double value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty()) {
        *error = "invalid number " + std::string(text);
        return std::nullopt;
    }
    return value;
}

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text, std::string* error) {
    const std::string quoted = "\"" + std::string(text) + "\"";
    std::size_t i = 0;
    bool negative = false;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) {
        negative = text[i] == '-';
        ++i;
    }
    if (text.substr(i) == "0") {
        return std::chrono::nanoseconds{0};
    }
    if (i == text.size()) {
        *error = "invalid duration " + quoted;
        return std::nullopt;
    }
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    std::int64_t total = 0;
    while (i < text.size()) {
        // Whole part.
        std::int64_t whole = 0;
        std::size_t start = i;
        while (i < text.size() && is_digit(text[i])) {
            int digit = text[i] - '0';
            if (whole > (kMax - digit) / 10) {
                *error = "duration " + quoted + " is out of range";
                return std::nullopt;
            }
            whole = whole * 10 + digit;
            ++i;
        }
        bool had_whole = i > start;
        // Fraction, kept as digits / scale (up to 18 digits; more cannot matter).
        std::int64_t fraction = 0;
        std::int64_t scale = 1;
        bool had_fraction = false;
        if (i < text.size() && text[i] == '.') {
            ++i;
            while (i < text.size() && is_digit(text[i])) {
                if (scale < 1000000000000000000LL) {
                    fraction = fraction * 10 + (text[i] - '0');
                    scale *= 10;
                }
                had_fraction = true;
                ++i;
            }
        }
        if (!had_whole && !had_fraction) {
            *error = "invalid duration " + quoted;
            return std::nullopt;
        }
        const Unit* unit = nullptr;
        for (const Unit& candidate : kUnits) {
            if (text.substr(i, candidate.name.size()) == candidate.name) {
                // "m" must not take the "m" of "ms".
                if (unit == nullptr || candidate.name.size() > unit->name.size()) {
                    unit = &candidate;
                }
            }
        }
        if (unit == nullptr) {
            bool at_end = i == text.size();
            *error = (at_end ? "missing unit in duration " : "unknown unit in duration ") + quoted +
                     " (use ns, us, ms, s, m or h)";
            return std::nullopt;
        }
        i += unit->name.size();
        if (whole > kMax / unit->nanoseconds) {
            *error = "duration " + quoted + " is out of range";
            return std::nullopt;
        }
        std::int64_t part = whole * unit->nanoseconds;
        // fraction/scale < 1, so this stays below one unit.
        auto fractional = static_cast<std::int64_t>(static_cast<long double>(fraction) /
                                                    static_cast<long double>(scale) *
                                                    static_cast<long double>(unit->nanoseconds));
        if (part > kMax - fractional || total > kMax - part - fractional) {
            *error = "duration " + quoted + " is out of range";
            return std::nullopt;
        }
        total += part + fractional;
    }
    return std::chrono::nanoseconds{negative ? -total : total};
}

std::optional<std::int64_t> parse_size(std::string_view text, std::string* error) {
    std::size_t unit_start = text.size();
    while (unit_start > 0 && !is_digit(text[unit_start - 1])) {
        --unit_start;
    }
    std::string_view number = text.substr(0, unit_start);
    std::string_view unit = text.substr(unit_start);
    int shift = 0;
    if (unit == "B") {
        shift = 0;
    } else if (unit == "KB") {
        shift = 10;
    } else if (unit == "MB") {
        shift = 20;
    } else if (unit == "GB") {
        shift = 30;
    } else if (unit == "TB") {
        shift = 40;
    } else {
        *error = "invalid size \"" + std::string(text) + "\" (use B, KB, MB, GB or TB)";
        return std::nullopt;
    }
    std::string ignored;
    auto value = parse_integer(number, &ignored);
    if (!value) {
        *error = "invalid size \"" + std::string(text) + "\": a size is a whole number of bytes";
        return std::nullopt;
    }
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    std::int64_t multiplier = std::int64_t{1} << shift;
    if (*value > kMax / multiplier || *value < -(kMax / multiplier)) {
        *error = "size \"" + std::string(text) + "\" is out of range";
        return std::nullopt;
    }
    return *value * multiplier;
}

std::string format_duration(std::chrono::milliseconds duration) {
    std::int64_t ms = duration.count();
    if (ms == 0) {
        return "0s";
    }
    std::string out;
    if (ms < 0) {
        out = "-";
        ms = -ms;
    }
    const std::int64_t hours = ms / 3600000;
    const std::int64_t minutes = ms / 60000 % 60;
    const std::int64_t seconds = ms / 1000 % 60;
    const std::int64_t millis = ms % 1000;
    if (hours != 0) {
        out += std::to_string(hours) + "h";
    }
    if (minutes != 0) {
        out += std::to_string(minutes) + "m";
    }
    if (seconds != 0) {
        out += std::to_string(seconds) + "s";
    }
    if (millis != 0) {
        out += std::to_string(millis) + "ms";
    }
    return out;
}

}  // namespace djinn::config
