#include "dispatch/idle_hints.hpp"

#include <variant>

#include "store/recovery_queries.hpp"

namespace djinn::dispatch {

IdleHints::IdleHints(queue::BuildQueue& queue, std::shared_ptr<spdlog::logger> log)
    : queue_(queue), log_(std::move(log)) {}

std::string IdleHints::key(const std::string& database, std::int64_t oid) {
    return "djinn-scheduler:due-hint:" + database + ":" + std::to_string(oid);
}

const std::string& IdleHints::key_for(store::PgConnection& conn) {
    if (key_.empty() || session_ != conn.session_id()) {
        key_.clear();
        auto scope = store::RecoveryQueries::scope(conn);
        if (const auto* s = std::get_if<store::DatabaseScope>(&scope)) {
            key_ = key(s->name, s->oid);
            session_ = conn.session_id();
        }
    }
    return key_;
}

std::optional<store::DueHint> IdleHints::read(store::PgConnection& conn) {
    const std::string& k = key_for(conn);
    if (k.empty())
        return std::nullopt;
    auto [value, error] = queue_.read_key(k);
    if (!error.empty()) {
        log_->debug("due hint: not read ({}): scanning", error);
        return std::nullopt;
    }
    return value ? store::DueHint::parse(*value) : std::nullopt;
}

void IdleHints::write(store::PgConnection& conn, const store::DueHint& hint) {
    const std::string& k = key_for(conn);
    if (k.empty())
        return;
    if (const std::string error = queue_.write_key(k, hint.str()); !error.empty())
        log_->debug("due hint: not written ({}): the next pass scans", error);
}

}  // namespace djinn::dispatch
