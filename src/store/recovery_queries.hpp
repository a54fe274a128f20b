#pragma once
// The reads of the recovery sweep (dispatch::Recovery) and of the loop's bookkeeping.
//
// The sweep settles cron builds by cron_builds.id, the primary key: it remembers (in Redis) a
// watermark W below which every cron build is known to have its queue job, and reads only the
// rows above it. settle_point() gives the id it may advance W to: cron_builds_id_seq's last value
// L, and whether any other backend holds a RowExclusiveLock on cron_builds right after L was
// read. Every writer of cron_builds (this scheduler, the original one) inserts with the column's
// default, nextval(), which it calls while holding that lock (taken when the INSERT is parsed,
// released after its transaction is visible as committed). So with no such lock seen, every id
// <= L is settled: committed, and visible to any later statement, or never to be. Reading the
// rows in (W, L] in a later statement sees all of them. With the sequence not CACHE 1, ids would
// not be handed out in time order: settle_point() then says so (in_order false) and the sweep
// falls back to the recovery window.
//
// Thread safety: stateless. Failure: database errors come back as PgError.
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "common/clock.hpp"
#include "store/batch_types.hpp"
#include "store/pg_connection.hpp"

namespace djinn::store {

// Names this database for state kept outside it (the watermark's Redis key).
struct DatabaseScope {
    std::int64_t oid = 0;
    std::string name;
};

struct SettlePoint {
    std::int64_t last_id = 0;     // cron_builds_id_seq's last value (0: never used)
    bool in_order = true;         // the sequence is CACHE 1
    bool others_writing = false;  // another backend held RowExclusiveLock on cron_builds after
    TimePoint db_now;
};

struct CronBuildRow {
    std::int64_t id = 0;  // cron_builds.id
    std::int64_t build_id = 0;
    bool queued = false;  // builds.status = 'queued' (false too when the build is gone)
};

class RecoveryQueries {
  public:
    static std::variant<DatabaseScope, PgError> scope(PgConnection& conn);

    // The sequence first, then the lock check: two statements, in this order.
    static std::variant<SettlePoint, PgError> settle_point(PgConnection& conn);

    // cron_builds rows with after_id < id <= through_id, by id, at most `limit` (a range of the
    // primary key), with whether their build is still queued.
    static std::variant<std::vector<CronBuildRow>, PgError> cron_builds_range(
        PgConnection& conn, std::int64_t after_id, std::int64_t through_id, std::int64_t limit);

    // The same, restricted to rows created at or after `since` (the recovery window: the sweep
    // without a watermark). A scan of cron_builds, a narrow table; builds by primary key.
    static std::variant<std::vector<CronBuildRow>, PgError> cron_builds_since(
        PgConnection& conn, TimePoint since, std::int64_t after_id, std::int64_t through_id,
        std::int64_t limit);

    // The queue of each build that has a build_drivers row (builds without one are not whole:
    // they are left out). A scan of build_drivers (no index on build_id): only for builds found
    // without any job, which is rare.
    static std::variant<std::vector<PendingBuild>, PgError> drivers_of(
        PgConnection& conn, const std::vector<std::int64_t>& build_ids);

    // Those of `build_ids` whose build is still queued now.
    static std::variant<std::vector<std::int64_t>, PgError> still_queued(
        PgConnection& conn, const std::vector<std::int64_t>& build_ids);

    // Crons due now (database clock). A scan of the whole table without an index on next_run.
    static std::variant<std::int64_t, PgError> count_due(PgConnection& conn);

    // The database clock (UTC, microseconds).
    static std::variant<TimePoint, PgError> db_now(PgConnection& conn);
};

}  // namespace djinn::store
