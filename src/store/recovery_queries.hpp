#pragma once
// The reads of the recovery sweep and of the loop's bookkeeping: committed cron builds that may
// lack a queue job, the number of due crons, the database clock.
//
// Thread safety: stateless. Failure: database errors come back as PgError.
#include <cstdint>
#include <variant>
#include <vector>

#include "common/clock.hpp"
#include "store/batch_types.hpp"
#include "store/pg_connection.hpp"

namespace djinn::store {

class RecoveryQueries {
  public:
    // Cron builds still queued, created at or after `since`, with id > after_id, by id, at most
    // `limit`: the candidates for re-enqueueing after a crash or a Redis outage.
    static std::variant<std::vector<PendingBuild>, PgError> queued_cron_builds(
        PgConnection& conn, TimePoint since, std::int64_t after_id, std::int64_t limit);

    // Crons due now (database clock). A scan of the whole table without an index on next_run.
    static std::variant<std::int64_t, PgError> count_due(PgConnection& conn);

    // The database clock (UTC, microseconds).
    static std::variant<TimePoint, PgError> db_now(PgConnection& conn);
};

}  // namespace djinn::store
