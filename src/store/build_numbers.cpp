#include "store/build_numbers.hpp"

#include "common/fatal.hpp"

namespace djinn::store {

void BuildNumbers::drop() {
    valid_ = false;
    clean_ = 0;
    latest_.clear();
    complete_ = false;
}

void BuildNumbers::begin(std::uint64_t session, bool use_cache, Horizon horizon) {
    batch_.clear();
    active_ = true;
    use_cache_ = use_cache;
    pending_clean_.reset();
    read_everyone_ = false;
    staged_ok_ = false;
    staged_last_id_ = 0;
    if (session != session_) {
        drop();
        session_ = session;
    }
    if (!use_cache || !horizon.last_id) {
        drop();
        use_cache_ = use_cache && horizon.last_id.has_value();
        // Without a usable sequence nothing read now can be kept: numbers come from scratch.
        if (!use_cache_)
            return;
    }
    if (!valid_)
        latest_.clear();  // rebuilt by this batch's reads
    if (!horizon.others_writing) {
        pending_clean_ = *horizon.last_id;
        staged_ok_ = true;
        staged_last_id_ = *horizon.last_id;
    } else if (valid_) {
        pending_clean_ = clean_;
    }
}

std::optional<std::int64_t> BuildNumbers::horizon() const {
    if (!valid_)
        return std::nullopt;
    return clean_;
}

std::optional<std::int64_t> BuildNumbers::read_from() const {
    if (!active_ || !use_cache_ || !valid_)
        return std::nullopt;
    return clean_;
}

void BuildNumbers::read_everyone() {
    DJINN_INVARIANT(cold(), "every user's number read in a batch that keeps a set already");
    read_everyone_ = true;
}

void BuildNumbers::merge(std::int64_t user, std::int64_t number) {
    if (everyone()) {
        auto [it, fresh] = latest_.emplace(user, number);
        if (!fresh && number > it->second)
            it->second = number;
        return;
    }
    auto it = latest_.find(user);
    if (it != latest_.end() && number > it->second)
        it->second = number;
}

bool BuildNumbers::known(std::int64_t user) const {
    return batch_.count(user) > 0 || (use_cache_ && (latest_.count(user) > 0 || everyone()));
}

void BuildNumbers::read(std::int64_t user, std::int64_t highest) {
    if (use_cache_) {
        latest_[user] = highest;
    } else {
        batch_[user] = highest;
    }
}

std::int64_t BuildNumbers::next(std::int64_t user) {
    auto it = batch_.find(user);
    if (it == batch_.end()) {
        auto kept = use_cache_ ? latest_.find(user) : latest_.end();
        std::int64_t highest = 0;  // not in a complete set: the user has no build
        if (kept != latest_.end()) {
            highest = kept->second;
        } else {
            DJINN_INVARIANT(everyone(), "build number asked for a user neither read nor kept");
        }
        it = batch_.emplace(user, highest).first;
    }
    return ++it->second;
}

std::int64_t BuildNumbers::highest(std::int64_t user) const {
    if (auto it = batch_.find(user); it != batch_.end())
        return it->second;
    if (use_cache_) {
        if (auto kept = latest_.find(user); kept != latest_.end())
            return kept->second;
    }
    DJINN_INVARIANT(everyone(), "build number asked for a user neither read nor kept");
    return 0;  // not in a complete set: the user has no build
}

void BuildNumbers::give_back(std::int64_t user) {
    auto it = batch_.find(user);
    DJINN_INVARIANT(it != batch_.end(), "build number given back for a user without one");
    --it->second;
}

void BuildNumbers::ids_taken(const std::vector<std::int64_t>& ids) {
    for (std::int64_t id : ids) {
        if (staged_ok_ && id != staged_last_id_ + 1)
            staged_ok_ = false;  // another session took ids in between
        staged_last_id_ = id;
    }
}

void BuildNumbers::committed(const std::vector<Written>& written) {
    if (!active_)
        return;
    active_ = false;
    batch_.clear();
    if (!use_cache_)
        return;
    if (!pending_clean_) {
        drop();  // the set read now has no horizon: another writer at the first read
        return;
    }
    for (const Written& w : written) {
        auto [it, fresh] = latest_.emplace(w.user, w.number);
        if (!fresh && w.number > it->second)
            it->second = w.number;
    }
    complete_ = (valid_ && complete_) || read_everyone_;
    valid_ = true;
    clean_ = staged_ok_ ? staged_last_id_ : *pending_clean_;
    if (latest_.size() > kMaxUsers)
        drop();
}

void BuildNumbers::failed() {
    if (!active_)
        return;
    active_ = false;
    batch_.clear();
    drop();
}

}  // namespace djinn::store
