#pragma once
// Build numbers: a build's number is its user's latest build number + 1 (Djinn: the build with
// the latest created_at), consecutive within a batch.
//
// Reading the latest numbers means scanning `builds` (Djinn has no index on builds.user_id), so
// the numbers a batch assigned are carried to the next batch of the same session, but only while
// they provably are still the latest:
// - a number read from `builds` may be kept only if, when it was read, no other session was
//   writing `builds` (no RowExclusiveLock on it held by another backend, checked before the read)
//   and that build is not dated after now (it would stay the latest after ours);
// - the kept numbers stay valid only while nobody else takes a builds id: builds_id_seq must
//   stand exactly where this session's own allocations left it, and this batch's ids must follow
//   it one by one. Anything else (a build made by the server, a failed or isolated batch, another
//   session, a new session) drops every kept number.
// Bounded by kMaxUsers users; dry runs and isolated redos keep nothing.
//
// This class holds the rules; the SQL that feeds it lives in DispatchStore.
// Thread safety: none (one per session's owner). Failure: none.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace djinn::store {

class BuildNumbers {
  public:
    static constexpr std::size_t kMaxUsers = 200000;

    struct SequenceState {
        std::optional<std::int64_t> last_id;  // pg_sequence_last_value(builds_id_seq)
        bool others_writing = false;          // another backend holds RowExclusiveLock on builds
    };

    // Starts a batch on `session` (PgConnection::session_id()). With use_cache false nothing is
    // taken from or kept for later batches (and everything kept so far is dropped).
    void begin(std::uint64_t session, bool use_cache, SequenceState sequence);

    // Whether `user`'s latest number is known without reading `builds`.
    bool known(std::int64_t user) const;

    // `user`'s latest number as read from builds now: 0 when the user has no build;
    // dated_after_now when that build's created_at is after now.
    void read(std::int64_t user, std::int64_t number, bool dated_after_now);

    // The next number of `user` in this batch (latest + 1); the user must be known() or read().
    std::int64_t next(std::int64_t user);

    // Undoes the last next(user): that build was not written (an isolated cron that failed).
    void give_back(std::int64_t user);

    // The builds ids this batch took, in allocation order.
    void ids_taken(const std::vector<std::int64_t>& ids);

    // The batch's transaction committed, or did not. No-ops unless begin() started a batch.
    void committed();
    void failed();

    // Users whose numbers are kept for the next batch (tests, metrics).
    std::size_t kept() const { return valid_ ? latest_.size() : 0; }

  private:
    void drop();

    std::uint64_t session_ = 0;
    bool valid_ = false;
    std::int64_t expected_last_id_ = 0;  // builds_id_seq.last_value if only we took ids since
    std::unordered_map<std::int64_t, std::int64_t> latest_;

    // The batch in flight.
    bool active_ = false;
    bool use_cache_ = false;
    bool cacheable_ = false;  // numbers read now may be kept
    bool staged_ok_ = false;  // the sequence is ours: the batch's numbers may be kept
    std::int64_t staged_last_id_ = 0;
    std::unordered_map<std::int64_t, std::int64_t> batch_;  // user -> latest so far
    std::unordered_map<std::int64_t, bool> keep_;           // user -> may be kept
};

}  // namespace djinn::store
