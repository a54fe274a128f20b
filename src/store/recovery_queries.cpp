#include "store/recovery_queries.hpp"

#include <pqxx/pqxx>

#include "schedule/schedule.hpp"
#include "store/pg_array.hpp"

namespace djinn::store {
namespace {

constexpr const char* kScope =
    "SELECT oid::int8, datname FROM pg_catalog.pg_database "
    "WHERE datname = pg_catalog.current_database()";

// NULL last value: never used (no id handed out yet).
constexpr const char* kSequence = R"sql(
SELECT pg_catalog.pg_sequence_last_value('public.cron_builds_id_seq'::regclass),
       (SELECT s.cache_size FROM pg_catalog.pg_sequences s
        WHERE s.schemaname = 'public' AND s.sequencename = 'cron_builds_id_seq') = 1,
       (extract(epoch FROM now()) * 1000000)::int8)sql";

constexpr const char* kWriters = R"sql(
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks
               WHERE locktype = 'relation' AND relation = 'public.cron_builds'::regclass
                 AND database = (SELECT oid FROM pg_catalog.pg_database
                                 WHERE datname = pg_catalog.current_database())
                 AND mode = 'RowExclusiveLock'
                 AND pid IS DISTINCT FROM pg_catalog.pg_backend_pid()))sql";

constexpr const char* kRange = R"sql(
SELECT cb.id, cb.build_id, coalesce(b.status = 'queued', false)
FROM cron_builds cb LEFT JOIN builds b ON b.id = cb.build_id
WHERE cb.id > $1 AND cb.id <= $2 ORDER BY cb.id LIMIT $3)sql";

constexpr const char* kSince = R"sql(
SELECT cb.id, cb.build_id, coalesce(b.status = 'queued', false)
FROM cron_builds cb LEFT JOIN builds b ON b.id = cb.build_id
WHERE cb.created_at >= $1::timestamp AND cb.id > $2 AND cb.id <= $3 ORDER BY cb.id LIMIT $4)sql";

constexpr const char* kDrivers =
    "SELECT d.build_id, d.type::text FROM build_drivers d WHERE d.build_id = ANY($1::int[]) "
    "ORDER BY d.build_id, d.id";

constexpr const char* kStillQueued =
    "SELECT id FROM builds WHERE id = ANY($1::int[]) AND status = 'queued' ORDER BY id";

std::string id_array(const std::vector<std::int64_t>& ids) {
    PgArray a;
    for (auto id : ids)
        a.add(id);
    return std::move(a).take();
}

std::vector<CronBuildRow> rows_of(const pqxx::result& r) {
    std::vector<CronBuildRow> out;
    out.reserve(r.size());
    for (const auto& row : r)
        out.push_back({row[0].as<std::int64_t>(), row[1].as<std::int64_t>(), row[2].as<bool>()});
    return out;
}

}  // namespace

std::variant<DatabaseScope, PgError> RecoveryQueries::scope(PgConnection& conn) {
    DatabaseScope s;
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        auto row = tx.exec1(kScope);
        s.oid = row[0].as<std::int64_t>();
        s.name = row[1].as<std::string>();
    });
    if (auto* e = std::get_if<PgError>(&r))
        return *e;
    return s;
}

std::variant<SettlePoint, PgError> RecoveryQueries::settle_point(PgConnection& conn) {
    SettlePoint p;
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        auto seq = tx.exec1(kSequence);
        p.last_id = seq[0].is_null() ? 0 : seq[0].as<std::int64_t>();
        p.in_order = !seq[1].is_null() && seq[1].as<bool>();
        p.db_now = TimePoint(std::chrono::microseconds(seq[2].as<std::int64_t>()));
        // Only now, in a statement of its own: see the header.
        p.others_writing = tx.exec1(kWriters)[0].as<bool>();
    });
    if (auto* e = std::get_if<PgError>(&r))
        return *e;
    return p;
}

std::variant<std::vector<CronBuildRow>, PgError> RecoveryQueries::cron_builds_range(
    PgConnection& conn, std::int64_t after_id, std::int64_t through_id, std::int64_t limit) {
    std::vector<CronBuildRow> out;
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        out = rows_of(tx.exec_params(kRange, after_id, through_id, limit));
    });
    if (auto* e = std::get_if<PgError>(&r))
        return *e;
    return out;
}

std::variant<std::vector<CronBuildRow>, PgError> RecoveryQueries::cron_builds_since(
    PgConnection& conn, TimePoint since, std::int64_t after_id, std::int64_t through_id,
    std::int64_t limit) {
    std::vector<CronBuildRow> out;
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        out = rows_of(tx.exec_params(kSince, schedule::format_pg_timestamp(since), after_id,
                                     through_id, limit));
    });
    if (auto* e = std::get_if<PgError>(&r))
        return *e;
    return out;
}

std::variant<std::vector<PendingBuild>, PgError> RecoveryQueries::drivers_of(
    PgConnection& conn, const std::vector<std::int64_t>& build_ids) {
    std::vector<PendingBuild> out;
    if (build_ids.empty())
        return out;
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        for (const auto& row : tx.exec_params(kDrivers, id_array(build_ids))) {
            const auto id = row[0].as<std::int64_t>();
            if (!out.empty() && out.back().build_id == id)
                continue;  // one driver per build
            std::string type = row[1].as<std::string>();
            // The queue is named after the `drivers` entry: qemu builds run on qemu-x86_64.
            out.push_back({id, type == "qemu" ? "qemu-x86_64" : type});
        }
    });
    if (auto* e = std::get_if<PgError>(&r))
        return *e;
    return out;
}

std::variant<std::vector<std::int64_t>, PgError> RecoveryQueries::still_queued(
    PgConnection& conn, const std::vector<std::int64_t>& build_ids) {
    std::vector<std::int64_t> out;
    if (build_ids.empty())
        return out;
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        for (const auto& row : tx.exec_params(kStillQueued, id_array(build_ids)))
            out.push_back(row[0].as<std::int64_t>());
    });
    if (auto* e = std::get_if<PgError>(&r))
        return *e;
    return out;
}

std::variant<std::int64_t, PgError> RecoveryQueries::count_due(PgConnection& conn) {
    std::int64_t n = 0;
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        n = tx.exec1("SELECT count(*) FROM cron WHERE next_run <= (now() AT TIME ZONE 'UTC')")[0]
                .as<std::int64_t>();
    });
    if (auto* e = std::get_if<PgError>(&r))
        return *e;
    return n;
}

std::variant<TimePoint, PgError> RecoveryQueries::db_now(PgConnection& conn) {
    TimePoint t;
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        // Epoch microseconds: no text whose format depends on DateStyle or TimeZone.
        t = TimePoint(std::chrono::microseconds(
            tx.exec1("SELECT (extract(epoch FROM now()) * 1000000)::int8")[0].as<std::int64_t>()));
    });
    if (auto* e = std::get_if<PgError>(&r))
        return *e;
    return t;
}

}  // namespace djinn::store
