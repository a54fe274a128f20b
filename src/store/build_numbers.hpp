#pragma once
// Build numbers: a build's number is its user's highest build number + 1, consecutive within a
// batch. Djinn's server takes the number of the user's build with the latest created_at; the two
// agree as long as numbers grow with created_at, which is how every build is numbered. They part
// only after the server's own race (it numbers without a lock, so a build it makes while one of
// our batches is uncommitted can be dated after our builds with a lower number): then "latest +
// 1" would repeat a number of ours, "highest + 1" never repeats a committed one.
//
// Our own sessions (the leader, a `-once` beside it) number under one transaction-level advisory
// lock (DispatchStore takes it before reading numbers and holds it to the commit), so two of them
// never read the same latest number. The Djinn server numbers without any lock; a number of ours
// never repeats one of a build the server committed before our batch read the numbers, because
// the numbers come from what is committed at that read:
//
// Reading the numbers from scratch means scanning `builds` (Djinn has no index on
// builds.user_id), so they are kept from batch to batch as facts about committed builds: for each
// user kept, the highest number of its builds. The set is valid relative to a
// horizon C, such that every build with id <= C was committed or rolled back when the set was
// read (no builds id <= C can still appear). Each batch then only reads the builds with id > C
// (the primary key's range: what others committed since, ours included) and merges them (max); a
// user not kept is read from scratch. C advances:
// - to builds_id_seq's last value S, read under the numbering lock, when right after reading S no
//   other backend holds a RowExclusiveLock on `builds` (an INSERT holds it from before it takes
//   its id until it ends, and our own sessions wait for the numbering lock, which this one holds):
//   every id <= S was then settled;
// - further, to this batch's last id, when this batch's ids followed S one by one (nobody else
//   took one in between) and it committed.
// With another writer at the check, C stays where it was (the next batch reads the builds above
// it again: merging is idempotent).
//
// The first read of a session (no set kept yet) reads every user's highest number, not only the
// batch's users: it costs the same scan, and the set is then complete (every user with a build
// id <= C is in it; a user not in it has none), so no later batch scans `builds` for a user it
// has not seen, and a builds read above C adds the users it finds. The leader makes that read in
// an idle pass (DispatchStore::read_numbers_ahead), so that the first burst of a leadership does
// not scan a year of history. More than kMaxUsers users: the batch's users only, as before.
// Anything unexpected drops the set: a failed batch, a new session, a sequence that cannot be read
// or is not CACHE 1 (ids would not be in time order), a dry run or an isolated redo (which read
// from scratch and keep nothing), more than kMaxUsers.
//
// This class holds the rules; the SQL that feeds it lives in DispatchStore.
// Thread safety: none (one per session's owner). Failure: none (a broken invariant is fatal).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace djinn::store {

class BuildNumbers {
  public:
    static constexpr std::size_t kMaxUsers = 200000;

    // Read under the numbering lock, in this order.
    struct Horizon {
        std::optional<std::int64_t> last_id;  // builds_id_seq's last value; none: not usable
        bool others_writing = false;          // another backend holds RowExclusiveLock on builds
    };

    struct Written {
        std::int64_t user = 0;
        std::int64_t number = 0;
    };

    // Starts a batch on `session` (PgConnection::session_id()). With use_cache false nothing is
    // taken from or kept for later batches (and everything kept so far is dropped).
    void begin(std::uint64_t session, bool use_cache, Horizon horizon);

    // The horizon C above which this batch must read builds and merge() them; none: nothing kept.
    std::optional<std::int64_t> read_from() const;

    // Whether nothing is kept for this batch's session: its first read may read everyone.
    bool cold() const { return active_ && use_cache_ && !valid_; }

    // This batch read every user's highest number (each with read()): the set is complete.
    // Only in a cold() batch.
    void read_everyone();

    // The highest number of `user`'s committed builds above the horizon. Only users already kept
    // are updated, unless the set is complete (then a new user is added).
    void merge(std::int64_t user, std::int64_t number);

    // Whether `user`'s latest number is known without reading `builds` from scratch.
    bool known(std::int64_t user) const;

    // `user`'s highest build number as read from scratch now (0: the user has no build).
    void read(std::int64_t user, std::int64_t highest);

    // The next number of `user` in this batch (highest + 1); the user must be known() or read().
    std::int64_t next(std::int64_t user);

    // `user`'s highest number as next() would continue from, without taking one (the user must
    // be known() or read()).
    std::int64_t highest(std::int64_t user) const;

    // Undoes the last next(user): that build was not written (an isolated cron that failed).
    void give_back(std::int64_t user);

    // The builds ids this batch took, in allocation order.
    void ids_taken(const std::vector<std::int64_t>& ids);

    // The batch's transaction committed with these builds, or did not. No-ops unless begin()
    // started a batch.
    void committed(const std::vector<Written>& written);
    void failed();

    // Users whose numbers are kept for the next batch (tests, metrics).
    std::size_t kept() const { return valid_ ? latest_.size() : 0; }
    // Whether the kept set is complete (tests).
    bool complete() const { return valid_ && complete_; }
    // The session the kept set belongs to (0: none).
    std::uint64_t session() const { return valid_ ? session_ : 0; }
    // The horizon kept (tests).
    std::optional<std::int64_t> horizon() const;

  private:
    void drop();
    bool everyone() const { return use_cache_ && ((valid_ && complete_) || read_everyone_); }

    std::uint64_t session_ = 0;
    bool valid_ = false;  // latest_ holds facts relative to clean_
    std::int64_t clean_ = 0;
    std::unordered_map<std::int64_t, std::int64_t> latest_;  // user -> highest number
    bool complete_ = false;  // latest_ has every user with a build id <= clean_

    // The batch in flight.
    bool active_ = false;
    bool use_cache_ = false;
    std::optional<std::int64_t> pending_clean_;  // the horizon if this batch commits
    bool read_everyone_ = false;  // this batch read every user (the set becomes complete)
    bool staged_ok_ = false;      // this batch's ids follow the sequence read, one by one
    std::int64_t staged_last_id_ = 0;
    std::unordered_map<std::int64_t, std::int64_t> batch_;  // user -> latest number so far
};

}  // namespace djinn::store
