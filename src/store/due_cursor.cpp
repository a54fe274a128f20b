#include "store/due_cursor.hpp"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "store/pg_array.hpp"

namespace djinn::store {
namespace {

// All timestamps are UTC wall-clock times without a zone: `now() AT TIME ZONE 'UTC'` is the
// database clock in UTC whatever the session's TimeZone.
constexpr const char* kCursorName = "djinn_scheduler_due";
constexpr const char* kAnyDue =
    "SELECT EXISTS (SELECT 1 FROM cron WHERE next_run <= (now() AT TIME ZONE 'UTC'))";
// The cron table's statistics counters (store/due_hint.hpp), read before the scan they vouch for.
constexpr const char* kStats = R"sql(
SELECT pg_catalog.current_setting('track_counts')::bool,
       pg_catalog.concat_ws(' ',
         (extract(epoch FROM pg_catalog.pg_postmaster_start_time()) * 1000000)::int8,
         coalesce((extract(epoch FROM pg_catalog.pg_stat_get_db_stat_reset_time(d.oid))
                   * 1000000)::int8, 0),
         c.oid::int8,
         pg_catalog.pg_stat_get_tuples_inserted(c.oid),
         pg_catalog.pg_stat_get_tuples_updated(c.oid),
         pg_catalog.pg_stat_get_tuples_deleted(c.oid)),
       (extract(epoch FROM now()) * 1000000)::int8
FROM pg_catalog.pg_database d, (SELECT 'public.cron'::pg_catalog.regclass::oid AS oid) c
WHERE d.datname = pg_catalog.current_database())sql";
// The earliest next_run: due, and (when not) until when nothing is (NULL: no finite next_run).
// Like EXISTS it may scan in parallel; it reads the whole table, as EXISTS does when none is due.
constexpr const char* kEarliest = R"sql(
SELECT coalesce(m <= (now() AT TIME ZONE 'UTC'), false),
       CASE WHEN isfinite(m) THEN (extract(epoch FROM m) * 1000000)::int8 END
FROM (SELECT min(next_run) AS m FROM cron) s)sql";
constexpr const char* kStale =
    "SELECT count(*) > 0 FROM pg_catalog.pg_cursors WHERE name = 'djinn_scheduler_due'";
constexpr const char* kDeclare = R"sql(
DECLARE djinn_scheduler_due NO SCROLL CURSOR WITH HOLD FOR
SELECT id FROM cron WHERE next_run <= (now() AT TIME ZONE 'UTC') ORDER BY next_run, id)sql";
// The manifests of the next batch, read without a lock: only what the pipeline plans ahead; the
// batch locks the rows and uses a plan only for the same text.
constexpr const char* kManifests =
    "SELECT id, manifest, user_id FROM cron WHERE id = ANY($1::int[])";
constexpr const char* kSweep = R"sql(
SELECT id, manifest, user_id FROM cron
WHERE next_run <= (now() AT TIME ZONE 'UTC') AND id <> ALL($2::int[])
ORDER BY next_run, id LIMIT $1)sql";

std::string id_array(const std::vector<std::int64_t>& ids) {
    PgArray a;
    for (auto id : ids)
        a.add(id);
    return std::move(a).take();
}

}  // namespace

DueCursor::Opened DueCursor::open(SqlRunner& sql, const DueHint* previous, bool hints) {
    state_ = State::none;
    Opened out;
    if (hints) {
        const pqxx::row st = sql.prepared("djinn_cron_stats", kStats)[0];
        const CronStats stats{st[0].as<bool>(), st[1].as<std::string>(), st[2].as<std::int64_t>()};
        if (previous != nullptr && previous->nothing_due(stats)) {
            out.scan_skipped = true;
            return out;
        }
        // Otherwise the earliest next_run, unless the hint already says a cron is due: a burst
        // then scans cron once (the cursor), as without hints. (If that cron changed meanwhile
        // and the counters do not say so yet, the cursor may be empty: no hint this pass, the
        // next one looks for the earliest again.)
        if (previous == nullptr || !previous->surely_due(stats)) {
            const pqxx::row e = sql.prepared("djinn_earliest_due", kEarliest)[0];
            if (!e[0].as<bool>()) {
                out.hint = DueHint::after_scan(
                    stats, e[1].is_null() ? std::nullopt
                                          : std::optional<std::int64_t>(e[1].as<std::int64_t>()));
                return out;
            }
        }
    } else if (!sql.prepared("djinn_any_due", kAnyDue)[0][0].as<bool>()) {
        // A plain EXISTS may scan in parallel (a cursor never does) and stops at the first due
        // cron: an idle pass costs about half of declaring the cursor.
        return out;
    }
    if (sql.exec(kStale)[0][0].as<bool>())
        sql.exec(std::string("CLOSE ") + kCursorName);
    sql.exec(kDeclare);
    state_ = State::open;
    out.due = true;
    return out;
}

std::vector<Candidate> DueCursor::next(SqlRunner& sql, std::int64_t limit,
                                       const std::vector<std::int64_t>& exclude) {
    std::vector<Candidate> out;
    if (state_ == State::open) {
        const std::unordered_set<std::int64_t> skip(exclude.begin(), exclude.end());
        const std::string fetch = "FETCH FORWARD " + std::to_string(limit) + " FROM " + kCursorName;
        for (;;) {
            std::vector<std::int64_t> ids;
            const pqxx::result rows = sql.exec(fetch);
            for (const auto& row : rows) {
                const auto id = row[0].as<std::int64_t>();
                if (skip.count(id) == 0)
                    ids.push_back(id);
            }
            if (static_cast<std::int64_t>(rows.size()) < limit) {
                sql.exec(std::string("CLOSE ") + kCursorName);
                state_ = State::swept;
            }
            if (!ids.empty()) {
                for (const auto& row : sql.prepared("djinn_manifests", kManifests, id_array(ids)))
                    out.push_back({row[0].as<std::int64_t>(), row[1].as<std::string>(),
                                   row[2].as<std::int64_t>()});
                // Keep the cursor's order (next_run, id): ANY() returns rows in table order.
                std::unordered_map<std::int64_t, std::size_t> pos;
                for (std::size_t i = 0; i < ids.size(); ++i)
                    pos.emplace(ids[i], i);
                std::sort(out.begin(), out.end(), [&](const Candidate& a, const Candidate& b) {
                    return pos[a.id] < pos[b.id];
                });
            }
            if (!out.empty() || state_ != State::open)
                break;
            // Every id of that fetch was excluded, or deleted since: the next ones.
        }
        if (!out.empty())
            return out;
    }
    if (state_ == State::none)
        return out;
    for (const auto& row : sql.prepared("djinn_sweep", kSweep, limit, id_array(exclude)))
        out.push_back(
            {row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::int64_t>()});
    return out;
}

}  // namespace djinn::store
