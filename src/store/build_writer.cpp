#include "store/build_writer.hpp"

#include <openssl/rand.h>

#include <stdexcept>
#include <string>

#include "common/go_json.hpp"
#include "schedule/schedule.hpp"
#include "store/pg_array.hpp"

namespace djinn::store {

using std::int64_t;

std::string random_secret() {
    unsigned char buf[16];
    if (RAND_bytes(buf, sizeof buf) != 1) {
        // No CSPRNG: a broken machine. Fails the batch (nothing is written); the pass reports it.
        throw std::runtime_error("RAND_bytes failed: no secure random source");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(32);
    for (unsigned char b : buf) {
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

std::string ts(TimePoint t) {
    // ISO 8601 text, which PostgreSQL reads the same under every DateStyle.
    return schedule::format_pg_timestamp(t);
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

std::vector<std::int64_t> BuildWriter::write(SqlRunner& sql, const std::vector<BuildRow*>& items) {
    std::size_t n_stages = 0, n_jobs = 0;
    for (const BuildRow* w : items) {
        n_stages += w->plan.stages.size();
        n_jobs += w->plan.jobs.size();
    }
    BatchIds ids = next_ids(sql, items.size(), n_stages, n_jobs);
    const auto& build_ids = ids.builds;
    const auto& stage_ids = ids.stages;
    const auto& job_ids = ids.jobs;

    PgArray b_id, b_user, b_ns, b_number, b_cron, b_secret, b_created;
    PgArray t_build, t_comment, t_data;
    PgArray g_user, g_build, g_name;
    PgArray cb_cron, cb_build;
    PgArray d_build, d_type, d_config;
    PgArray v_build, v_user, v_ns;
    PgArray e_build, e_key, e_value;
    PgArray o_build, o_user, o_ns, o_name, o_dest;
    PgArray s_id, s_build, s_name, s_fail, s_created;
    PgArray j_id, j_build, j_stage, j_name, j_commands, j_created;
    PgArray a_user, a_build, a_job, a_hash, a_source, a_name;

    std::size_t si = 0, ji = 0;
    std::vector<std::int64_t> stage_of;  // this build's stage ids, by plan index
    for (std::size_t i = 0; i < items.size(); ++i) {
        BuildRow& w = *items[i];
        const DueCron& c = *w.cron;
        w.build_id = build_ids[i];
        b_id.add(w.build_id);
        b_user.add(c.user_id);
        b_ns.add(c.namespace_id);
        b_number.add(w.number);
        b_cron.add(c.id);
        b_secret.add_text(random_secret());
        b_created.add_text(ts(w.created));

        t_build.add(w.build_id);
        t_comment.add_text(c.name + ": Scheduled build, next run " +
                           schedule::format_go_time(w.next_run));
        t_data.add_text(go_json_object({{"email", c.email}, {"username", c.username}}));

        g_user.add(c.user_id);
        g_build.add(w.build_id);
        g_name.add_text(cron_tag(c.name));

        cb_cron.add(c.id);
        cb_build.add(w.build_id);

        d_build.add(w.build_id);
        d_type.add_text(w.plan.driver_type);
        d_config.add_text(w.plan.driver_config_json);

        v_build.add(w.build_id);
        v_user.add(c.user_id);
        v_ns.add(c.namespace_id);
        for (const auto& [key, value] : w.plan.env) {
            e_build.add(w.build_id);
            e_key.add_text(key);
            e_value.add_text(value);
        }
        for (const auto& [name, dest] : w.plan.objects) {
            o_build.add(w.build_id);
            o_user.add(c.user_id);
            o_ns.add(c.namespace_id);
            o_name.add_text(name);
            o_dest.add_text(dest);
        }

        // Stages, then jobs, strictly after the build and each other: the worker orders by
        // created_at.
        std::int64_t tick = 0;
        stage_of.clear();
        for (std::size_t k = 0; k < w.plan.stages.size(); ++k) {
            const auto& st = w.plan.stages[k];
            int64_t id = stage_ids[si++];
            stage_of.push_back(id);
            s_id.add(id);
            s_build.add(w.build_id);
            s_name.add_text(k == 0 ? manifest::setup_stage_name(w.number) : st.name);
            s_fail.add(st.can_fail);
            s_created.add_text(ts(w.created + std::chrono::microseconds(++tick)));
        }
        for (const auto& job : w.plan.jobs) {
            int64_t id = job_ids[ji++];
            j_id.add(id);
            j_build.add(w.build_id);
            j_stage.add(stage_of.at(job.stage_index));
            j_name.add_text(job.name);
            j_commands.add_text(job.commands);
            j_created.add_text(ts(w.created + std::chrono::microseconds(++tick)));
            for (const auto& art : job.artifacts) {
                a_user.add(c.user_id);
                a_build.add(w.build_id);
                a_job.add(id);
                a_hash.add_text(hasher_.next());
                a_source.add_text(art.source);
                a_name.add_text(art.name);
            }
        }
    }

    auto written =
        sql.prepared("djinn_insert_builds", kInsertBuilds, b_id.str(), b_user.str(), b_ns.str(),
                     b_number.str(), b_cron.str(), b_secret.str(), b_created.str());
    if (written.affected_rows() != items.size()) {
        // The crons are locked by this transaction, so only something in the database (a
        // trigger of the operator's) can make rows vanish: an error of this batch, not a bug.
        throw std::runtime_error("builds insert wrote " + std::to_string(written.affected_rows()) +
                                 " rows, expected " + std::to_string(items.size()));
    }
    sql.prepared("djinn_insert_triggers", kInsertTriggers, t_build.str(), t_comment.str(),
                 t_data.str());
    sql.prepared("djinn_insert_tags", kInsertTags, g_user.str(), g_build.str(), g_name.str());
    sql.prepared("djinn_insert_cron_builds", kInsertCronBuilds, cb_cron.str(), cb_build.str());
    sql.prepared("djinn_insert_drivers", kInsertDrivers, d_build.str(), d_type.str(),
                 d_config.str());
    sql.prepared("djinn_insert_variables", kInsertVariables, v_build.str(), v_user.str(),
                 v_ns.str());
    if (e_build.size() > 0)
        sql.prepared("djinn_insert_env", kInsertEnv, e_build.str(), e_key.str(), e_value.str());
    sql.prepared("djinn_insert_keys", kInsertKeys, v_build.str(), v_user.str(), v_ns.str());
    if (o_build.size() > 0) {
        sql.prepared("djinn_insert_objects", kInsertObjects, o_build.str(), o_user.str(),
                     o_ns.str(), o_name.str(), o_dest.str());
    }
    sql.prepared("djinn_insert_stages", kInsertStages, s_id.str(), s_build.str(), s_name.str(),
                 s_fail.str(), s_created.str());
    sql.prepared("djinn_insert_jobs", kInsertJobs, j_id.str(), j_build.str(), j_stage.str(),
                 j_name.str(), j_commands.str(), j_created.str());
    if (a_build.size() > 0) {
        sql.prepared("djinn_insert_artifacts", kInsertArtifacts, a_user.str(), a_build.str(),
                     a_job.str(), a_hash.str(), a_source.str(), a_name.str());
    }
    return build_ids;
}

}  // namespace djinn::store
