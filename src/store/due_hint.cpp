#include "store/due_hint.hpp"

#include <charconv>

namespace djinn::store {
namespace {

constexpr std::string_view kVersion = "v1";

std::optional<std::int64_t> number(std::string_view s) {
    std::int64_t v = 0;
    const auto* end = s.data() + s.size();
    const auto r = std::from_chars(s.data(), end, v);
    if (s.empty() || r.ec != std::errc() || r.ptr != end)
        return std::nullopt;
    return v;
}

}  // namespace

std::optional<DueHint> DueHint::after_scan(const CronStats& before,
                                           std::optional<std::int64_t> earliest_us) {
    if (!before.counting || before.counters.empty())
        return std::nullopt;
    DueHint h;
    h.counters_ = before.counters;
    h.earliest_us_ = earliest_us;
    h.scanned_us_ = before.db_now_us;
    return h;
}

bool DueHint::unchanged(const CronStats& now) const {
    if (!now.counting || now.counters != counters_)
        return false;
    if (now.db_now_us < scanned_us_)
        return false;  // the clock went back: trust nothing
    const auto max_age = std::chrono::duration_cast<std::chrono::microseconds>(kMaxAge).count();
    return now.db_now_us - scanned_us_ < max_age;
}

bool DueHint::nothing_due(const CronStats& now) const {
    return unchanged(now) && (!earliest_us_ || now.db_now_us < *earliest_us_);
}

bool DueHint::surely_due(const CronStats& now) const {
    return unchanged(now) && earliest_us_ && now.db_now_us >= *earliest_us_;
}

// "v1|<counters>|<earliest or ->|<scanned>"
std::string DueHint::str() const {
    return std::string(kVersion) + "|" + counters_ + "|" +
           (earliest_us_ ? std::to_string(*earliest_us_) : std::string("-")) + "|" +
           std::to_string(scanned_us_);
}

std::optional<DueHint> DueHint::parse(std::string_view text) {
    const auto a = text.find('|');
    if (a == std::string_view::npos || text.substr(0, a) != kVersion)
        return std::nullopt;
    const auto b = text.find('|', a + 1);
    const auto c = b == std::string_view::npos ? b : text.find('|', b + 1);
    if (c == std::string_view::npos || text.find('|', c + 1) != std::string_view::npos)
        return std::nullopt;
    DueHint h;
    h.counters_ = std::string(text.substr(a + 1, b - a - 1));
    const std::string_view earliest = text.substr(b + 1, c - b - 1);
    if (earliest != "-") {
        h.earliest_us_ = number(earliest);
        if (!h.earliest_us_)
            return std::nullopt;
    }
    const auto scanned = number(text.substr(c + 1));
    if (h.counters_.empty() || !scanned)
        return std::nullopt;
    h.scanned_us_ = *scanned;
    return h;
}

}  // namespace djinn::store
