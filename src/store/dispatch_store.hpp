#pragma once
// The PostgreSQL side of dispatch: takes due crons in batches and writes their builds in Djinn's
// exact shape (contract section 2), advancing the crons in the same transaction.
//
// One batch = one transaction on the caller's session (the leader's lock session, which fences
// it): due crons are taken oldest next_run first with FOR UPDATE SKIP LOCKED; every table is
// written with one set-based statement (unnest of array parameters); each cron is advanced by id
// and only if its next_run is still the value read. If the set-based write fails for a reason
// other than a lost session, the batch is redone with one savepoint per cron, so a cron that
// cannot be written (a missing privilege, hostile data) is skipped for this pass and stays due,
// while every other cron is dispatched.
//
// The due crons of a pass are read one batch ahead: while a batch is written, the next batch's
// manifests (read without a lock) are parsed on a background thread, and used only for crons
// whose manifest, read again under the row lock, is the same text.
//
// Thread safety: not thread-safe (ArtifactHasher is, the rest is per-instance state).
// Failure: session-level failures are returned as PgError; nothing is committed then.
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "common/clock.hpp"
#include "common/hashids.hpp"
#include "store/pg_connection.hpp"

namespace djinn::store {

struct MissingPrivilege {
    std::string what;   // "INSERT on table build_variables"
    std::string grant;  // the GRANT statement that fixes it
};

struct Privileges {
    bool can_dispatch = true;        // everything but variables and keys is there
    bool can_copy_variables = true;  // INSERT build_variables + USAGE build_variables_id_seq
    bool can_copy_keys = true;       // INSERT build_keys + USAGE build_keys_id_seq
    std::vector<MissingPrivilege> missing;
};

struct DispatchedBuild {
    std::int64_t build_id = 0;  // 0 in a dry run
    std::int64_t build_number = 0;
    std::int64_t cron_id = 0;
    std::int64_t user_id = 0;
    std::string cron_name;
    std::string queue_driver;  // "docker", "qemu-x86_64"
    TimePoint scheduled;       // the cron's next_run that fell due
    TimePoint next_run;        // the cron's new next_run
};

struct SkippedCron {
    std::int64_t cron_id = 0;
    std::string kind;       // metric label: bad_manifest, driver_disabled, unknown_driver,
                            // deleted_owner, missing_privilege, write_failed, bad_next_run
    std::string reason;     // one line
    bool advanced = false;  // false: the cron stays due and is retried on the next pass
};

struct BatchOutcome {
    std::size_t taken = 0;  // due crons taken in this batch; 0 = nothing (else) is due
    std::vector<DispatchedBuild> builds;
    std::vector<SkippedCron> skipped;
    std::size_t planned_ahead = 0;  // crons whose manifest was parsed while the previous batch
                                    // was written (the same text, read again under the lock)
    bool isolated = false;          // the batch was redone cron by cron after a set-based failure
    std::string isolation_cause;
    TimePoint db_now;
};

struct PendingBuild {
    std::int64_t build_id = 0;
    std::string queue_driver;
};

class DispatchStore {
  public:
    DispatchStore(std::set<std::string> drivers, std::string crypto_salt, const Clock& clock);
    ~DispatchStore();
    DispatchStore(const DispatchStore&) = delete;
    DispatchStore& operator=(const DispatchStore&) = delete;

    // has_table_privilege / has_sequence_privilege for everything a dispatch writes.
    std::variant<Privileges, PgError> check_privileges(PgConnection& conn) const;
    void set_privileges(Privileges p) { privileges_ = std::move(p); }

    // Takes up to `limit` due crons (not in `exclude`) and dispatches them in one transaction.
    // dry_run: plans everything, writes nothing (the transaction is rolled back).
    std::variant<BatchOutcome, PgError> dispatch_batch(PgConnection& conn, std::int64_t limit,
                                                       const std::vector<std::int64_t>& exclude,
                                                       bool dry_run);

    // Cron builds still queued, created at or after `since`, with id > after_id, by id: the
    // candidates for re-enqueueing after a crash or a Redis outage (enqueue is idempotent).
    std::variant<std::vector<PendingBuild>, PgError> queued_cron_builds(PgConnection& conn,
                                                                        TimePoint since,
                                                                        std::int64_t after_id,
                                                                        std::int64_t limit) const;

    // Crons due now (database clock).
    std::variant<std::int64_t, PgError> count_due(PgConnection& conn) const;

    // The database clock (UTC).
    std::variant<TimePoint, PgError> db_now(PgConnection& conn) const;

  private:
    struct Attempt;
    struct Lookahead;
    void run_attempt(Attempt& a, bool isolate);

    std::set<std::string> drivers_;
    ArtifactHasher hasher_;
    Privileges privileges_;
    TimePoint last_build_created_{};
    std::unique_ptr<Lookahead> lookahead_;  // last: destroyed first, waiting for its thread
};

}  // namespace djinn::store
