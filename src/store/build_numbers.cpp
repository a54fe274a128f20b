#include "store/build_numbers.hpp"

#include "common/fatal.hpp"

namespace djinn::store {

void BuildNumbers::drop() {
    valid_ = false;
    latest_.clear();
}

void BuildNumbers::begin(std::uint64_t session, bool use_cache, SequenceState sequence) {
    batch_.clear();
    keep_.clear();
    active_ = true;
    use_cache_ = use_cache;
    cacheable_ = false;
    staged_ok_ = false;
    if (session != session_) {
        drop();
        session_ = session;
    }
    if (!use_cache) {
        drop();
        return;
    }
    const bool seq_known = sequence.last_id.has_value();
    const std::int64_t last_id = sequence.last_id.value_or(0);
    if (valid_ && (!seq_known || last_id != expected_last_id_))
        drop();  // somebody else took a builds id since our last batch
    cacheable_ = seq_known && !sequence.others_writing;
    if (valid_ || cacheable_) {
        staged_ok_ = true;
        staged_last_id_ = last_id;
    }
}

bool BuildNumbers::known(std::int64_t user) const {
    return batch_.count(user) > 0 || (valid_ && latest_.count(user) > 0);
}

void BuildNumbers::read(std::int64_t user, std::int64_t number, bool dated_after_now) {
    batch_[user] = number;
    keep_[user] = cacheable_ && !dated_after_now;
}

std::int64_t BuildNumbers::next(std::int64_t user) {
    auto it = batch_.find(user);
    if (it == batch_.end()) {
        auto kept = valid_ ? latest_.find(user) : latest_.end();
        DJINN_INVARIANT(kept != latest_.end(),
                        "build number asked for a user neither read nor kept");
        it = batch_.emplace(user, kept->second).first;
        keep_[user] = true;
    }
    return ++it->second;
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

void BuildNumbers::committed() {
    if (!active_)
        return;
    active_ = false;
    if (!use_cache_) {
        batch_.clear();
        keep_.clear();
        return;
    }
    if (!staged_ok_) {
        drop();
        return;
    }
    valid_ = true;
    expected_last_id_ = staged_last_id_;
    for (const auto& [user, number] : batch_) {
        if (keep_[user])
            latest_[user] = number;
        else
            latest_.erase(user);
    }
    batch_.clear();
    keep_.clear();
    if (latest_.size() > kMaxUsers)
        drop();
}

void BuildNumbers::failed() {
    if (!active_)
        return;
    active_ = false;
    batch_.clear();
    keep_.clear();
    drop();
}

}  // namespace djinn::store
