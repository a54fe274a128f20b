#pragma once
// The PostgreSQL side of a pass: one batch = one transaction on the caller's session (the
// leader's lock session, which fences it), in which the batch's crons are locked, their builds
// written in Djinn's exact shape (BuildWriter) and the crons advanced. Builds and advances commit
// together or not at all.
//
// What a batch takes: the pass pipeline offers the ids of the batch's candidates (read one batch
// ahead, without a lock) with their planned manifests. The transaction locks those of them that
// are still due, oldest next_run first, FOR UPDATE SKIP LOCKED (a cron locked by another session
// is skipped, never waited for), and uses a plan only where the locked manifest is the text that
// was planned; any other cron is left untouched (deferred) and planned again by the pipeline.
// Nothing is parsed inside a transaction, so no batch_size makes a transaction idle for long.
// Each cron is advanced by id and only if its next_run is still the value read.
//
// In the same transaction, before writing, the next batch's candidates are read (DueCursor) and
// handed to the pipeline, which plans them while this batch is written.
//
// Fencing: with a fence key, each batch first checks that its own session holds that advisory
// lock (the leader's), and writes nothing otherwise (PgErrorKind::fenced).
//
// Isolation: if the set-based write fails for a reason other than a lost session, the batch is
// redone with one savepoint per cron, so a cron that cannot be written (a missing privilege,
// hostile data) is skipped for this pass and stays due, while every other cron is dispatched.
//
// Several dispatch sessions (database.dispatch_sessions K > 1): the batch's candidates are split
// by user (user_id % K) into K parts, each locked, written and committed by one transaction on
// a dispatch session of its own, in parallel, so that each user's builds are numbered by one
// session. The leader's session runs the batch's coordinating transaction around them: the
// fence check, the next batch's candidates, the numbering lock and every user's highest number
// (all as above); it hands each part the highest numbers of its users, stays open (pinged)
// while the parts run, and commits last, so the numbering lock covers every part's commit.
// Fencing a part: each part's transaction takes the dispatch fence (a shared transaction-level
// advisory lock) and checks, when it starts and again just before it commits, that the leader's
// server process (its pid and backend_start) still holds the leader lock; it writes nothing
// otherwise (PgErrorKind::fenced). A new leader takes the fence exclusively (fence_barrier())
// before its first recovery sweep, which therefore waits for every part transaction of an older
// leader to end: any part that committed is seen by that sweep, and any part that had not yet
// committed finds the old leader's lock gone at its check and rolls back. A part that fails is
// redone cron by cron on its own session, like a batch; a part that still fails leaves its
// crons due, and the other parts' builds are reported with the error (BatchOutcome::error).
//
// Thread safety: not thread-safe; one DispatchStore per session owner.
// Failure: session-level and SQL failures come back as PgError; nothing is committed then.
// Exceptions that are not libpqxx's pass through (the pass boundary catches them).
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "common/clock.hpp"
#include "common/hashids.hpp"
#include "common/progress.hpp"
#include "store/batch_types.hpp"
#include "store/build_numbers.hpp"
#include "store/due_cursor.hpp"
#include "store/due_hint.hpp"
#include "store/pg_connection.hpp"
#include "store/privileges.hpp"

namespace djinn::store {

using PlannedManifests = std::unordered_map<std::int64_t, PlannedManifest>;

struct BatchRequest {
    std::vector<std::int64_t> ids;                       // this batch's candidates, oldest first
    const PlannedManifests* plans = nullptr;             // id -> the text planned and its plan
    const std::vector<std::int64_t>* exclude = nullptr;  // never to be offered again this pass
    std::int64_t next_limit = 0;  // read the next batch's candidates (0: do not)
    // Receives the next batch's candidates, inside the transaction, before the writes.
    std::function<void(std::vector<Candidate>)> on_next;
    bool dry_run = false;  // plan everything, write nothing (the transaction is rolled back)
    Progress* progress = nullptr;
    // Several dispatch sessions: how often the coordinating transaction is pinged while its
    // parts run (it must not sit idle in transaction for idle_in_transaction_session_timeout).
    std::chrono::milliseconds keepalive{2500};
};

// How a pass's probe may use the statistics of the cron table (store/due_hint.hpp).
struct DueHints {
    bool use = false;                   // read them, and make a hint when nothing is due
    const DueHint* previous = nullptr;  // the last idle pass's, if any
};

// What a pass starts with: its first batch's candidates (empty: nothing is due).
struct PassStart {
    std::vector<Candidate> first;
    bool scan_skipped = false;    // the previous hint vouched that nothing is due
    std::optional<DueHint> hint;  // nothing was due: for the next pass
};

// What reading the build numbers ahead did.
struct NumbersAhead {
    bool already = false;  // this session keeps numbers already: nothing was read
    bool read = false;     // every user's highest number was read and is kept
    std::size_t kept = 0;  // users kept
};

class DispatchStore {
  public:
    // fence_key: the leader lock's key; none for `-once`, which runs without election.
    DispatchStore(std::string crypto_salt, const Clock& clock,
                  std::optional<std::int64_t> fence_key);
    DispatchStore(const DispatchStore&) = delete;
    DispatchStore& operator=(const DispatchStore&) = delete;

    void set_privileges(Privileges p) { privileges_ = std::move(p); }
    // Whether batches check the leader lock (a leader's store, not -once's).
    bool fenced() const { return fence_key_.has_value(); }
    const Privileges& privileges() const { return privileges_; }

    // Starts a pass on `conn`: the due cursor and the first batch's candidates (at most
    // `limit`), in one short read transaction. No candidates: nothing is due.
    std::variant<PassStart, PgError> open_pass(PgConnection& conn, std::int64_t limit,
                                               Progress* progress, const DueHints& hints = {});

    // One batch on `conn`; with two or more `helpers` (dispatch sessions), split across them
    // (see above). A dry run always runs on `conn` alone.
    std::variant<BatchOutcome, PgError> dispatch_batch(
        PgConnection& conn, const BatchRequest& request,
        const std::vector<PgConnection*>& helpers = {});

    // A new leader, before its first recovery sweep: waits until no dispatch session of any
    // leader is inside a dispatch transaction (takes and releases the dispatch fence).
    std::variant<std::monostate, PgError> fence_barrier(PgConnection& conn);

    // In an idle pass of the leader: reads every user's highest build number now (one scan of
    // `builds`) unless this session keeps them already, so that the next burst's first batch
    // does not scan the history (see BuildNumbers). Writes nothing.
    std::variant<NumbersAhead, PgError> read_numbers_ahead(PgConnection& conn, Progress* progress);

  private:
    struct Attempt;
    struct Part;
    std::variant<BatchOutcome, PgError> dispatch_parts(PgConnection& conn,
                                                       const BatchRequest& request,
                                                       const std::vector<PgConnection*>& helpers);
    // Runs `a` on `conn` (set-based, then cron by cron if that fails) without touching the kept
    // build numbers: the caller does.
    std::variant<std::monostate, PgError> attempt_batch(PgConnection& conn, Attempt& a);
    void run_part(Part& part);
    std::int64_t next_number(Attempt& a, std::int64_t user);
    // Under the numbering lock (`lock`; a dry run takes none): makes every one of `users` known
    // to numbers_ for a batch of `session`, reading `builds` as BuildNumbers says.
    void read_numbers(SqlRunner& sql, std::uint64_t session, bool lock, bool use_cache,
                      const std::vector<std::int64_t>& users);
    // In a cold batch: every user's highest number, if there are at most kMaxUsers of them.
    bool read_everyone(SqlRunner& sql);
    void run_attempt(SqlRunner& sql, Attempt& a, bool isolate);

    ArtifactHasher hasher_;
    std::optional<std::int64_t> fence_key_;
    Privileges privileges_;
    DueCursor cursor_;
    BuildNumbers numbers_;
    TimePoint last_build_created_{};
};

}  // namespace djinn::store
