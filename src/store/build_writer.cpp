#include "store/build_writer.hpp"

#include <openssl/rand.h>

#include <stdexcept>
#include <string>

#include "common/go_json.hpp"
#include "schedule/schedule.hpp"
#include "store/pg_array.hpp"

namespace djinn::store {

using std::int64_t;

std::string random_secrets(std::size_t n) {
    // One call for the batch: OpenSSL 3's per-call overhead was most of a secret's cost.
    std::vector<unsigned char> bytes(16 * n);
    if (n > 0 && RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
        // No CSPRNG: a broken machine. Fails the batch (nothing is written); the pass reports it.
        throw std::runtime_error("RAND_bytes failed: no secure random source");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(32 * n);
    for (unsigned char b : bytes) {
        out += hex[b >> 4];
        out += hex[b & 0xF];
    }
    return out;
}

std::string cron_tag(const std::string& cron_name) {
    std::string out = "cron:";
    for (char c : cron_name)
        out += (c == ' ') ? '-' : c;
    return out;
}

namespace {

// ISO 8601 text, which PostgreSQL reads the same under every DateStyle.
void add_ts(PgArray& a, TimePoint t) {
    char buf[schedule::kPgTimestampMax];
    a.add_text(std::string_view(buf, schedule::format_pg_timestamp(t, buf)));
}

// The manifest is copied from the cron row, which this transaction holds locked since it read
// it: the same text, without sending it back (up to megabytes per batch).
constexpr const char* kInsertBuilds = R"sql(
INSERT INTO builds (id, user_id, namespace_id, number, manifest, status, secret, created_at)
SELECT t.id, t.user_id, t.namespace_id, t.number, c.manifest, 'queued', t.secret, t.created_at
FROM unnest($1::int[], $2::int[], $3::int[], $4::int[], $5::int[], $6::text[], $7::timestamp[])
  AS t(id, user_id, namespace_id, number, cron_id, secret, created_at)
JOIN cron c ON c.id = t.cron_id)sql";

constexpr const char* kInsertTriggers = R"sql(
INSERT INTO build_triggers (build_id, type, comment, data)
SELECT t.build_id, 'schedule', t.comment, t.data::json
FROM unnest($1::int[], $2::text[], $3::text[]) AS t(build_id, comment, data))sql";

constexpr const char* kInsertTags = R"sql(
INSERT INTO build_tags (user_id, build_id, name)
SELECT * FROM unnest($1::int[], $2::int[], $3::text[]))sql";

constexpr const char* kInsertCronBuilds = R"sql(
INSERT INTO cron_builds (cron_id, build_id) SELECT * FROM unnest($1::int[], $2::int[]))sql";

constexpr const char* kInsertDrivers = R"sql(
INSERT INTO build_drivers (build_id, type, config)
SELECT t.build_id, t.type::driver_type, t.config::json
FROM unnest($1::int[], $2::text[], $3::text[]) AS t(build_id, type, config))sql";

// The build user's personal rows plus, for a namespaced build, the namespace's rows: two
// equi-joins (hashable) instead of one OR join.
constexpr const char* kInsertVariables = R"sql(
INSERT INTO build_variables (build_id, variable_id, key, value, masked)
SELECT b.build_id, b.id, b.key, b.value, b.masked FROM (
  SELECT t.ord, t.build_id, v.id, v.key, v.value, v.masked
  FROM unnest($1::int[], $2::int[], $3::int[]) WITH ORDINALITY
    AS t(build_id, user_id, namespace_id, ord)
  JOIN variables v ON v.user_id = t.user_id AND v.namespace_id IS NULL
  UNION ALL
  SELECT t.ord, t.build_id, v.id, v.key, v.value, v.masked
  FROM unnest($1::int[], $2::int[], $3::int[]) WITH ORDINALITY
    AS t(build_id, user_id, namespace_id, ord)
  JOIN variables v ON v.namespace_id = t.namespace_id
) b
ORDER BY b.ord, b.id)sql";

constexpr const char* kInsertEnv = R"sql(
INSERT INTO build_variables (build_id, variable_id, key, value, masked)
SELECT t.build_id, NULL, t.key, t.value, false
FROM unnest($1::int[], $2::text[], $3::text[]) AS t(build_id, key, value))sql";

constexpr const char* kInsertKeys = R"sql(
INSERT INTO build_keys (build_id, key_id, key, name, config, location)
SELECT b.build_id, k.id, k.key, k.name, k.config, '/root/.ssh/' || k.name FROM (
  SELECT t.ord, t.build_id, k.id FROM unnest($1::int[], $2::int[], $3::int[]) WITH ORDINALITY
    AS t(build_id, user_id, namespace_id, ord)
  JOIN keys k ON k.user_id = t.user_id AND k.namespace_id IS NULL
  UNION ALL
  SELECT t.ord, t.build_id, k.id FROM unnest($1::int[], $2::int[], $3::int[]) WITH ORDINALITY
    AS t(build_id, user_id, namespace_id, ord)
  JOIN keys k ON k.namespace_id = t.namespace_id
) b JOIN keys k ON k.id = b.id
ORDER BY b.ord, k.id)sql";

// Only the objects the manifest names (v1.3.0 copied every object of the namespace).
constexpr const char* kInsertObjects = R"sql(
INSERT INTO build_objects (build_id, object_id, source, name, created_at)
SELECT b.build_id, o.id, b.dest, o.name, (now() AT TIME ZONE 'UTC') FROM (
  SELECT t.ord, t.build_id, t.dest, o.id FROM unnest($1::int[], $2::int[], $3::int[], $4::text[],
    $5::text[]) WITH ORDINALITY AS t(build_id, user_id, namespace_id, name, dest, ord)
  JOIN objects o ON o.name = t.name AND o.user_id = t.user_id AND o.namespace_id IS NULL
  UNION ALL
  SELECT t.ord, t.build_id, t.dest, o.id FROM unnest($1::int[], $2::int[], $3::int[], $4::text[],
    $5::text[]) WITH ORDINALITY AS t(build_id, user_id, namespace_id, name, dest, ord)
  JOIN objects o ON o.name = t.name AND o.namespace_id = t.namespace_id
) b JOIN objects o ON o.id = b.id
WHERE o.deleted_at IS NULL
ORDER BY b.ord, o.id)sql";

constexpr const char* kInsertStages = R"sql(
INSERT INTO build_stages (id, build_id, name, can_fail, created_at)
SELECT * FROM unnest($1::int[], $2::int[], $3::text[], $4::bool[], $5::timestamp[]))sql";

constexpr const char* kInsertJobs = R"sql(
INSERT INTO build_jobs (id, build_id, stage_id, name, commands, status, created_at)
SELECT t.id, t.build_id, t.stage_id, t.name, t.commands, 'queued', t.created_at
FROM unnest($1::int[], $2::int[], $3::int[], $4::text[], $5::text[], $6::timestamp[])
  AS t(id, build_id, stage_id, name, commands, created_at))sql";

constexpr const char* kInsertArtifacts = R"sql(
INSERT INTO build_artifacts (user_id, build_id, job_id, hash, source, name, created_at)
SELECT t.user_id, t.build_id, t.job_id, t.hash, t.source, t.name, (now() AT TIME ZONE 'UTC')
FROM unnest($1::int[], $2::int[], $3::int[], $4::text[], $5::text[], $6::text[])
  AS t(user_id, build_id, job_id, hash, source, name))sql";

// Ids for the builds, stages and jobs of a batch in one round trip (they reference each other,
// so they are taken before the rows are written).
constexpr const char* kNextIds = R"sql(
SELECT 1, nextval('builds_id_seq') FROM generate_series(1, $1::int)
UNION ALL SELECT 2, nextval('build_stages_id_seq') FROM generate_series(1, $2::int)
UNION ALL SELECT 3, nextval('build_jobs_id_seq') FROM generate_series(1, $3::int))sql";

struct BatchIds {
    std::vector<int64_t> builds, stages, jobs;
};

BatchIds next_ids(SqlRunner& sql, std::size_t builds, std::size_t stages, std::size_t jobs) {
    BatchIds ids;
    ids.builds.reserve(builds);
    ids.stages.reserve(stages);
    ids.jobs.reserve(jobs);
    auto r = sql.prepared("djinn_next_ids", kNextIds, static_cast<int64_t>(builds),
                          static_cast<int64_t>(stages), static_cast<int64_t>(jobs));
    for (const auto& row : r) {
        const int kind = row[0].as<int>();
        auto& into = kind == 1 ? ids.builds : kind == 2 ? ids.stages : ids.jobs;
        into.push_back(row[1].as<int64_t>());
    }
    return ids;
}

}  // namespace

std::vector<std::int64_t> BuildWriter::write(SqlRunner& sql, const std::vector<BuildRow*>& rows) {
    // One phase per table: build its arrays, send its statement, drop the arrays. The client's
    // work between two statements of the transaction (the time the session sits idle in it, which
    // the server bounds with idle_in_transaction_session_timeout = lock_timeout) is one table's
    // share of the batch, and only one table's literals are in memory at a time.
    std::size_t n_stages = 0, n_jobs = 0;
    std::vector<std::size_t> stage_base(rows.size()), job_base(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        stage_base[i] = n_stages;
        job_base[i] = n_jobs;
        n_stages += rows[i]->plan.stages.size();
        n_jobs += rows[i]->plan.jobs.size();
    }
    BatchIds ids = next_ids(sql, rows.size(), n_stages, n_jobs);
    for (std::size_t i = 0; i < rows.size(); ++i)
        rows[i]->build_id = ids.builds[i];

    {
        PgArray id, user, ns, number, cron, secret, created;
        const std::string secrets = random_secrets(rows.size());
        std::size_t k = 0;
        for (const BuildRow* w : rows) {
            id.add(w->build_id);
            user.add(w->cron->user_id);
            ns.add(w->cron->namespace_id);
            number.add(w->number);
            cron.add(w->cron->id);
            secret.add_text(std::string_view(secrets).substr(32 * k++, 32));
            add_ts(created, w->created);
        }
        auto written = sql.prepared("djinn_insert_builds", kInsertBuilds, std::move(id).take(),
                                    std::move(user).take(), std::move(ns).take(),
                                    std::move(number).take(), std::move(cron).take(),
                                    std::move(secret).take(), std::move(created).take());
        if (written.affected_rows() != rows.size()) {
            // The crons are locked by this transaction, so only something in the database (a
            // trigger of the operator's) can make rows vanish: an error of this batch, not a bug.
            throw std::runtime_error("builds insert wrote " +
                                     std::to_string(written.affected_rows()) + " rows, expected " +
                                     std::to_string(rows.size()));
        }
    }
    {
        PgArray build, comment, data;
        for (const BuildRow* w : rows) {
            build.add(w->build_id);
            comment.add_text(w->cron->name + ": Scheduled build, next run " +
                             schedule::format_go_time(w->next_run));
            data.add_text(
                go_json_object({{"email", w->cron->email}, {"username", w->cron->username}}));
        }
        sql.prepared("djinn_insert_triggers", kInsertTriggers, std::move(build).take(),
                     std::move(comment).take(), std::move(data).take());
    }
    {
        PgArray user, build, name;
        for (const BuildRow* w : rows) {
            user.add(w->cron->user_id);
            build.add(w->build_id);
            name.add_text(cron_tag(w->cron->name));
        }
        sql.prepared("djinn_insert_tags", kInsertTags, std::move(user).take(),
                     std::move(build).take(), std::move(name).take());
    }
    {
        PgArray cron, build;
        for (const BuildRow* w : rows) {
            cron.add(w->cron->id);
            build.add(w->build_id);
        }
        sql.prepared("djinn_insert_cron_builds", kInsertCronBuilds, std::move(cron).take(),
                     std::move(build).take());
    }
    {
        PgArray build, type, config;
        for (const BuildRow* w : rows) {
            build.add(w->build_id);
            type.add_text(w->plan.driver_type);
            config.add_text(w->plan.driver_config_json);
        }
        sql.prepared("djinn_insert_drivers", kInsertDrivers, std::move(build).take(),
                     std::move(type).take(), std::move(config).take());
    }
    {
        // The users' and namespaces' variables and keys, copied by the server from these.
        PgArray build, user, ns;
        for (const BuildRow* w : rows) {
            build.add(w->build_id);
            user.add(w->cron->user_id);
            ns.add(w->cron->namespace_id);
        }
        const std::string b = std::move(build).take(), u = std::move(user).take(),
                          n = std::move(ns).take();
        sql.prepared("djinn_insert_variables", kInsertVariables, b, u, n);
        sql.prepared("djinn_insert_keys", kInsertKeys, b, u, n);
    }
    {
        PgArray build, key, value;
        for (const BuildRow* w : rows) {
            for (const auto& [k, v] : w->plan.env) {
                build.add(w->build_id);
                key.add_text(k);
                value.add_text(v);
            }
        }
        if (build.size() > 0)
            sql.prepared("djinn_insert_env", kInsertEnv, std::move(build).take(),
                         std::move(key).take(), std::move(value).take());
    }
    {
        PgArray build, user, ns, name, dest;
        for (const BuildRow* w : rows) {
            for (const auto& [object, destination] : w->plan.objects) {
                build.add(w->build_id);
                user.add(w->cron->user_id);
                ns.add(w->cron->namespace_id);
                name.add_text(object);
                dest.add_text(destination);
            }
        }
        if (build.size() > 0) {
            sql.prepared("djinn_insert_objects", kInsertObjects, std::move(build).take(),
                         std::move(user).take(), std::move(ns).take(), std::move(name).take(),
                         std::move(dest).take());
        }
    }
    // Stages, then jobs, strictly after the build and each other: the worker orders by
    // created_at. A build's stage k is at +k+1 µs, its job j at +stages+j+1 µs.
    {
        PgArray id, build, name, fail, created;
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const BuildRow& w = *rows[i];
            for (std::size_t k = 0; k < w.plan.stages.size(); ++k) {
                const auto& st = w.plan.stages[k];
                id.add(ids.stages[stage_base[i] + k]);
                build.add(w.build_id);
                name.add_text(k == 0 ? manifest::setup_stage_name(w.number) : st.name);
                fail.add(st.can_fail);
                add_ts(created,
                       w.created + std::chrono::microseconds(static_cast<std::int64_t>(k) + 1));
            }
        }
        sql.prepared("djinn_insert_stages", kInsertStages, std::move(id).take(),
                     std::move(build).take(), std::move(name).take(), std::move(fail).take(),
                     std::move(created).take());
    }
    {
        PgArray id, build, stage, name, commands, created;
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const BuildRow& w = *rows[i];
            const auto first = static_cast<std::int64_t>(w.plan.stages.size()) + 1;
            for (std::size_t j = 0; j < w.plan.jobs.size(); ++j) {
                const auto& job = w.plan.jobs[j];
                id.add(ids.jobs[job_base[i] + j]);
                build.add(w.build_id);
                stage.add(ids.stages.at(stage_base[i] + job.stage_index));
                name.add_text(job.name);
                commands.add_text(job.commands);
                add_ts(created,
                       w.created + std::chrono::microseconds(first + static_cast<std::int64_t>(j)));
            }
        }
        sql.prepared("djinn_insert_jobs", kInsertJobs, std::move(id).take(),
                     std::move(build).take(), std::move(stage).take(), std::move(name).take(),
                     std::move(commands).take(), std::move(created).take());
    }
    {
        PgArray user, build, job, hash, source, name;
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const BuildRow& w = *rows[i];
            for (std::size_t j = 0; j < w.plan.jobs.size(); ++j) {
                for (const auto& art : w.plan.jobs[j].artifacts) {
                    user.add(w.cron->user_id);
                    build.add(w.build_id);
                    job.add(ids.jobs[job_base[i] + j]);
                    hash.add_text(hasher_.next());
                    source.add_text(art.source);
                    name.add_text(art.name);
                }
            }
        }
        if (build.size() > 0) {
            sql.prepared("djinn_insert_artifacts", kInsertArtifacts, std::move(user).take(),
                         std::move(build).take(), std::move(job).take(), std::move(hash).take(),
                         std::move(source).take(), std::move(name).take());
        }
    }
    return ids.builds;
}

}  // namespace djinn::store
