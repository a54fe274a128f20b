#include "store/recovery_queries.hpp"

#include <pqxx/pqxx>

#include "schedule/schedule.hpp"

namespace djinn::store {
namespace {

constexpr const char* kQueuedCronBuilds = R"sql(
SELECT b.id, d.type::text FROM builds b
JOIN cron_builds cb ON cb.build_id = b.id
JOIN build_drivers d ON d.build_id = b.id
WHERE b.status = 'queued' AND b.created_at >= $1::timestamp AND b.id > $2
ORDER BY b.id LIMIT $3)sql";

}  // namespace

std::variant<std::vector<PendingBuild>, PgError> RecoveryQueries::queued_cron_builds(
    PgConnection& conn, TimePoint since, std::int64_t after_id, std::int64_t limit) {
    std::vector<PendingBuild> out;
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        for (const auto& row : tx.exec_params(
                 kQueuedCronBuilds, schedule::format_pg_timestamp(since), after_id, limit)) {
            std::string type = row[1].as<std::string>();
            // The queue is named after the `drivers` entry: qemu builds run on qemu-x86_64.
            out.push_back({row[0].as<std::int64_t>(), type == "qemu" ? "qemu-x86_64" : type});
        }
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
