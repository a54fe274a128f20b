#include "store/dispatch_store.hpp"

#include <openssl/rand.h>
#include <sys/resource.h>
#include <unistd.h>

#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "common/go_json.hpp"
#include "manifest/build_plan.hpp"
#include "manifest/manifest.hpp"
#include "schedule/schedule.hpp"
#include "store/pg_array.hpp"

namespace djinn::store {
namespace {

using std::int64_t;

// Oldest first, locked so that no other scheduler takes them; `now()` is the database clock and
// the session time zone is UTC, so now()::timestamp is UTC wall-clock time like next_run.
constexpr const char* kDueSql = R"sql(
SELECT c.id, c.user_id, c.namespace_id, c.name, c.schedule::text, c.manifest, c.next_run::text,
       u.id IS NULL, u.deleted_at IS NOT NULL, u.email, u.username, now()::timestamp::text
FROM cron c LEFT JOIN users u ON u.id = c.user_id
WHERE c.next_run <= now()::timestamp AND c.id <> ALL($2::int[])
ORDER BY c.next_run, c.id
LIMIT $1
FOR UPDATE OF c SKIP LOCKED)sql";

// The due crons of a pass in one scan: without an index on cron.next_run every due query is a
// sequential scan of the whole table, once per batch (quadratic over a burst). The first batch
// of a pass declares this cursor (ids only, materialized by the server when that transaction
// commits: WITH HOLD); each batch then fetches the next batch_size ids and locks them by primary
// key, re-checking that they are still due. When it is drained the pass ends with kDueSql, which
// also finds crons that fell due during the pass.
constexpr const char* kDueCursorName = "djinn_scheduler_due";
constexpr const char* kDeclareDueCursor = R"sql(
DECLARE djinn_scheduler_due NO SCROLL CURSOR WITH HOLD FOR
SELECT id FROM cron WHERE next_run <= now()::timestamp ORDER BY next_run, id)sql";
constexpr const char* kAnyDueSql =
    "SELECT EXISTS (SELECT 1 FROM cron WHERE next_run <= now()::timestamp)";
// The manifests of the next batch, read without a lock: only a hint for parsing ahead.
constexpr const char* kManifestsSql = "SELECT id, manifest FROM cron WHERE id = ANY($1::int[])";
constexpr const char* kDueByIdSql = R"sql(
SELECT c.id, c.user_id, c.namespace_id, c.name, c.schedule::text, c.manifest, c.next_run::text,
       u.id IS NULL, u.deleted_at IS NOT NULL, u.email, u.username, now()::timestamp::text
FROM cron c LEFT JOIN users u ON u.id = c.user_id
WHERE c.id = ANY($3::int[]) AND c.next_run <= now()::timestamp AND c.id <> ALL($2::int[])
ORDER BY c.next_run, c.id
LIMIT $1
FOR UPDATE OF c SKIP LOCKED)sql";

// The user's latest build number (Djinn: ORDER BY created_at DESC LIMIT 1). The third column
// says whether that build is dated after now (then it stays the latest after ours: not cached).
constexpr const char* kNumbersSql = R"sql(
SELECT DISTINCT ON (user_id) user_id, number, created_at > now()::timestamp FROM builds
WHERE user_id = ANY($1::int[]) ORDER BY user_id, created_at DESC, id DESC)sql";

// Whether the per-user numbers cached from earlier batches still hold (see NumberCache): the
// builds sequence first, then whether another session is writing builds right now.
constexpr const char* kNumbersCheckSql = R"sql(
SELECT pg_sequence_last_value('public.builds_id_seq'::regclass),
       EXISTS (SELECT 1 FROM pg_catalog.pg_locks
               WHERE locktype = 'relation' AND relation = 'public.builds'::regclass
                 AND mode = 'RowExclusiveLock' AND pid <> pg_backend_pid()))sql";

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
SELECT b.build_id, o.id, b.dest, o.name, now()::timestamp FROM (
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
SELECT t.user_id, t.build_id, t.job_id, t.hash, t.source, t.name, now()::timestamp
FROM unnest($1::int[], $2::int[], $3::int[], $4::text[], $5::text[], $6::text[])
  AS t(user_id, build_id, job_id, hash, source, name))sql";

// Each cron by id, and only if next_run is still the value read (v1.3.0 updated every cron).
constexpr const char* kAdvance = R"sql(
UPDATE cron c SET next_run = t.next_run,
                  prev_run = CASE WHEN t.ran THEN now()::timestamp ELSE c.prev_run END
FROM unnest($1::int[], $2::timestamp[], $3::timestamp[], $4::bool[])
  AS t(id, old_next_run, next_run, ran)
WHERE c.id = t.id AND c.next_run = t.old_next_run)sql";

constexpr const char* kHasVariables = R"sql(
SELECT t.ord FROM unnest($1::int[], $2::int[]) WITH ORDINALITY AS t(user_id, namespace_id, ord)
WHERE EXISTS (SELECT 1 FROM variables v WHERE v.user_id = t.user_id AND v.namespace_id IS NULL)
   OR EXISTS (SELECT 1 FROM variables v WHERE v.namespace_id = t.namespace_id))sql";

constexpr const char* kHasKeys = R"sql(
SELECT t.ord FROM unnest($1::int[], $2::int[]) WITH ORDINALITY AS t(user_id, namespace_id, ord)
WHERE EXISTS (SELECT 1 FROM keys k WHERE k.user_id = t.user_id AND k.namespace_id IS NULL)
   OR EXISTS (SELECT 1 FROM keys k WHERE k.namespace_id = t.namespace_id))sql";

constexpr const char* kQueuedCronBuilds = R"sql(
SELECT b.id, d.type::text FROM builds b
JOIN cron_builds cb ON cb.build_id = b.id
JOIN build_drivers d ON d.build_id = b.id
WHERE b.status = 'queued' AND b.created_at >= $1::timestamp AND b.id > $2
ORDER BY b.id LIMIT $3)sql";

enum class Area { essential, variables, keys };

struct Need {
    const char* kind;  // "table" / "sequence"
    const char* name;
    const char* privilege;
    Area area;
};

// Everything a dispatch reads and writes (the GRANTs Djinn v1.3.0 gives, plus the two sequence
// grants it forgot).
constexpr Need kNeeds[] = {
    {"table", "cron", "SELECT", Area::essential},
    {"table", "cron", "UPDATE", Area::essential},
    {"table", "users", "SELECT", Area::essential},
    {"table", "variables", "SELECT", Area::essential},
    {"table", "keys", "SELECT", Area::essential},
    {"table", "objects", "SELECT", Area::essential},
    {"table", "builds", "SELECT", Area::essential},
    {"table", "builds", "INSERT", Area::essential},
    {"table", "build_triggers", "INSERT", Area::essential},
    {"table", "build_tags", "INSERT", Area::essential},
    {"table", "cron_builds", "SELECT", Area::essential},
    {"table", "cron_builds", "INSERT", Area::essential},
    {"table", "build_drivers", "SELECT", Area::essential},
    {"table", "build_drivers", "INSERT", Area::essential},
    {"table", "build_objects", "INSERT", Area::essential},
    {"table", "build_stages", "INSERT", Area::essential},
    {"table", "build_jobs", "INSERT", Area::essential},
    {"table", "build_artifacts", "INSERT", Area::essential},
    {"sequence", "builds_id_seq", "USAGE", Area::essential},
    {"sequence", "build_triggers_id_seq", "USAGE", Area::essential},
    {"sequence", "build_tags_id_seq", "USAGE", Area::essential},
    {"sequence", "cron_builds_id_seq", "USAGE", Area::essential},
    {"sequence", "build_drivers_id_seq", "USAGE", Area::essential},
    {"sequence", "build_objects_id_seq", "USAGE", Area::essential},
    {"sequence", "build_stages_id_seq", "USAGE", Area::essential},
    {"sequence", "build_jobs_id_seq", "USAGE", Area::essential},
    {"sequence", "build_artifacts_id_seq", "USAGE", Area::essential},
    {"table", "build_variables", "INSERT", Area::variables},
    {"sequence", "build_variables_id_seq", "USAGE", Area::variables},
    {"table", "build_keys", "INSERT", Area::keys},
    {"sequence", "build_keys_id_seq", "USAGE", Area::keys},
};

struct DueCron {
    int64_t id = 0;
    int64_t user_id = 0;
    std::optional<int64_t> namespace_id;
    std::string name;
    schedule::Schedule schedule = schedule::Schedule::daily;
    std::string manifest;
    std::string next_run_text;
    TimePoint next_run;
    bool bad_next_run = false;  // -infinity, BC, ...: not a time any schedule can come from
    bool owner_missing = false;
    bool owner_deleted = false;
    std::string email;
    std::string username;
};

struct Work {
    const DueCron* cron = nullptr;
    manifest::BuildPlan plan;
    int64_t number = 0;
    int64_t build_id = 0;
    std::vector<int64_t> stage_ids;
    std::vector<int64_t> job_ids;
    TimePoint created;
    TimePoint next_run;
};

// Runs `sql` as the prepared statement `name`: libpqxx keeps the definitions per connection
// object and sends PREPARE the first time a (new) session uses one, so a replaced PgConnection
// prepares again by itself. Saves PostgreSQL the parse and plan of every statement of every batch.
template <typename... Args>
pqxx::result exec_prepared(pqxx::transaction_base& tx, const char* name, const char* sql,
                           Args&&... args) {
    tx.conn().prepare(name, sql);  // idempotent for the same definition
    return tx.exec_prepared(name, std::forward<Args>(args)...);
}

// The users' latest build numbers, carried from one batch to the next so that each batch does
// not scan all of `builds` again (Djinn has no index on builds.user_id: that scan grew with every
// batch, quadratic over a burst). Only numbers that provably are still the latest are kept:
// - a number read from `builds` is cached only if, when it was read, no other session was
//   writing `builds` (pg_locks: no RowExclusiveLock held by another backend, checked before the
//   read) and it is not dated after now; every build with an id up to the sequence value read
//   then is therefore committed and was seen;
// - afterwards the cache stays valid only while nobody else takes a builds id: builds_id_seq
//   must stand exactly where this session's own allocations left it. Anything else (a build
//   made by the server, a failed or isolated batch, another session) drops the cache.
// One slot per thread (DispatchStore is per thread), keyed by store, connection and backend;
// bounded by kNumberCacheMax users. Dry runs do not use it.
struct NumberCache {
    static constexpr std::size_t kNumberCacheMax = 200000;
    const void* store = nullptr;
    const void* connection = nullptr;
    int backend = 0;
    bool valid = false;
    int64_t expected_last_id = 0;  // builds_id_seq.last_value if only we took ids since
    std::unordered_map<int64_t, int64_t> latest;
    // The batch in flight, applied when it commits.
    bool staged_ok = false;
    int64_t staged_last_id = 0;
    std::unordered_map<int64_t, int64_t> staged;

    void drop() {
        valid = false;
        latest.clear();
        staged.clear();
        staged_ok = false;
    }
};

thread_local NumberCache t_numbers;

// Where this thread's session is in the due cursor (kDeclareDueCursor). One slot per thread,
// keyed like NumberCache; a session that changed has lost its cursor.
// The cursor is read one batch ahead: `ahead` holds the ids of the next batch, whose manifests
// are parsed while this one is written. closed: the cursor was read to its end (and closed);
// once `ahead` is empty too, the pass goes on with kDueSql until nothing is due.
struct DueCursor {
    enum class State { none, open, closed };
    const void* store = nullptr;
    const void* connection = nullptr;
    int backend = 0;
    State state = State::none;
    std::vector<int64_t> ahead;
};

thread_local DueCursor t_due;

// A cron's manifest, parsed and planned: a plan, or why it is skipped.
struct Planned {
    std::optional<manifest::BuildPlan> plan;
    std::string skip_kind;
    std::string skip_reason;
};

Planned plan_one(const std::string& text, const std::set<std::string>& drivers) {
    Planned p;
    auto parsed = manifest::parse(text);
    if (auto* err = std::get_if<manifest::ParseError>(&parsed)) {
        p.skip_kind = "bad_manifest";
        p.skip_reason = "manifest does not parse: " + err->reason;
        return p;
    }
    auto planned = manifest::plan_build(std::get<manifest::Manifest>(parsed), drivers);
    if (auto* s = std::get_if<manifest::Skip>(&planned)) {
        p.skip_kind = std::string(manifest::to_string(s->kind));
        p.skip_reason = s->reason;
        return p;
    }
    p.plan = std::move(std::get<manifest::BuildPlan>(planned));
    return p;
}

// Cores to parse on (at most 4).
std::size_t parse_cores() {
    return std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 4);
}

// Parses and plans manifests[i] into out[i] on up to `threads` threads (nullptr: not needed, left
// as it is). YAML decoding is most of the scheduler's own CPU time (callgrind: ~90%). Pure
// functions of the manifest text; an exception in a worker is rethrown here.
void plan_all(const std::vector<const std::string*>& manifests, std::vector<Planned>& out,
              const std::set<std::string>& drivers, std::size_t threads) {
    constexpr std::size_t kChunk = 32;
    if (manifests.empty())
        return;
    std::atomic<std::size_t> next{0};
    std::vector<std::exception_ptr> errors;
    std::mutex errors_mu;
    auto worker = [&]() {
        try {
            for (;;) {
                const std::size_t begin = next.fetch_add(kChunk);
                if (begin >= manifests.size())
                    return;
                const std::size_t end = std::min(begin + kChunk, manifests.size());
                for (std::size_t i = begin; i < end; ++i) {
                    if (manifests[i] != nullptr)
                        out[i] = plan_one(*manifests[i], drivers);
                }
            }
        } catch (...) {
            std::lock_guard lock(errors_mu);
            errors.push_back(std::current_exception());
        }
    };
    threads = std::clamp<std::size_t>(threads, 1, (manifests.size() + kChunk - 1) / kChunk);
    std::vector<std::thread> pool;
    for (std::size_t t = 1; t < threads; ++t)
        pool.emplace_back(worker);
    worker();
    for (auto& th : pool)
        th.join();
    if (!errors.empty())
        std::rethrow_exception(errors.front());
}

// Lowers the calling thread's scheduling priority (Linux: nice is per thread; threads it starts
// inherit it). Parsing ahead has a whole batch of slack; on a machine with few cores it must not
// take the CPU from PostgreSQL's backend or from the dispatching thread, which are the critical
// path. Best effort: failure changes nothing but speed.
void yield_cpu_to_others() {
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
}

// A cron of the next batch with its manifest as read ahead (see DispatchStore::Lookahead).
struct Ahead {
    int64_t id = 0;
    std::string manifest;
    Planned planned;
};

std::string random_secret() {
    unsigned char buf[16];
    if (RAND_bytes(buf, sizeof buf) != 1) {
        // No CSPRNG: a broken machine, not an outcome to handle.
        throw std::runtime_error("RAND_bytes failed: no secure random source");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char b : buf) {
        out += hex[b >> 4];
        out += hex[b & 0xF];
    }
    return out;
}

std::string ts(TimePoint t) {
    return schedule::format_pg_timestamp(t);
}

TimePoint parse_ts(const std::string& text) {
    auto t = schedule::parse_pg_timestamp(text);
    if (!t)
        throw std::logic_error("unparsable timestamp from PostgreSQL: " + text);
    return *t;
}

std::optional<int64_t> opt_int(const pqxx::field& f) {
    if (f.is_null())
        return std::nullopt;
    return f.as<int64_t>();
}

std::string tag_name(const std::string& cron_name) {
    std::string out = "cron:";
    for (char c : cron_name)
        out += (c == ' ') ? '-' : c;
    return out;
}

// Ids for the builds, stages and jobs of a batch in one round trip (they reference each other,
// so they are taken before the rows are written).
constexpr const char* kNextIds = R"sql(
SELECT 1, nextval('builds_id_seq') FROM generate_series(1, $1::int)
UNION ALL SELECT 2, nextval('build_stages_id_seq') FROM generate_series(1, $2::int)
UNION ALL SELECT 3, nextval('build_jobs_id_seq') FROM generate_series(1, $3::int))sql";

struct BatchIds {
    std::vector<int64_t> builds, stages, jobs;
};

BatchIds next_ids(pqxx::transaction_base& tx, std::size_t builds, std::size_t stages,
                  std::size_t jobs) {
    BatchIds ids;
    ids.builds.reserve(builds);
    ids.stages.reserve(stages);
    ids.jobs.reserve(jobs);
    auto r = exec_prepared(tx, "djinn_next_ids", kNextIds, static_cast<int64_t>(builds),
                           static_cast<int64_t>(stages), static_cast<int64_t>(jobs));
    for (const auto& row : r) {
        const int kind = row[0].as<int>();
        auto& into = kind == 1 ? ids.builds : kind == 2 ? ids.stages : ids.jobs;
        into.push_back(row[1].as<int64_t>());
    }
    return ids;
}

std::string quote_ident(const std::string& s) {
    bool plain = !s.empty() && !(s[0] >= '0' && s[0] <= '9');
    for (char c : s) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            plain = false;
    }
    if (plain)
        return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"')
            out += '"';
        out += c;
    }
    return out + "\"";
}

// Writes the builds of `items` (ids are allocated here) with one statement per table.
void write_builds(pqxx::transaction_base& tx, std::vector<Work*>& items, ArtifactHasher& hasher) {
    std::size_t n_stages = 0, n_jobs = 0;
    for (Work* w : items) {
        n_stages += w->plan.stages.size();
        n_jobs += w->plan.jobs.size();
    }
    BatchIds ids = next_ids(tx, items.size(), n_stages, n_jobs);
    const auto& build_ids = ids.builds;
    const auto& stage_ids = ids.stages;
    const auto& job_ids = ids.jobs;
    // The numbers cache needs our builds ids to follow the sequence value it checked.
    for (std::size_t i = 0; i < build_ids.size(); ++i) {
        if (t_numbers.staged_ok && build_ids[i] != t_numbers.staged_last_id + 1) {
            t_numbers.staged_ok = false;
        }
        t_numbers.staged_last_id = build_ids[i];
    }

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
    for (std::size_t i = 0; i < items.size(); ++i) {
        Work& w = *items[i];
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
        g_name.add_text(tag_name(c.name));

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
        w.stage_ids.clear();
        for (std::size_t k = 0; k < w.plan.stages.size(); ++k) {
            const auto& st = w.plan.stages[k];
            int64_t id = stage_ids[si++];
            w.stage_ids.push_back(id);
            s_id.add(id);
            s_build.add(w.build_id);
            s_name.add_text(k == 0 ? manifest::setup_stage_name(w.number) : st.name);
            s_fail.add(st.can_fail);
            s_created.add_text(ts(w.created + std::chrono::microseconds(++tick)));
        }
        w.job_ids.clear();
        for (const auto& job : w.plan.jobs) {
            int64_t id = job_ids[ji++];
            w.job_ids.push_back(id);
            j_id.add(id);
            j_build.add(w.build_id);
            j_stage.add(w.stage_ids.at(job.stage_index));
            j_name.add_text(job.name);
            j_commands.add_text(job.commands);
            j_created.add_text(ts(w.created + std::chrono::microseconds(++tick)));
            for (const auto& art : job.artifacts) {
                a_user.add(c.user_id);
                a_build.add(w.build_id);
                a_job.add(id);
                a_hash.add_text(hasher.next());
                a_source.add_text(art.source);
                a_name.add_text(art.name);
            }
        }
    }

    auto written =
        exec_prepared(tx, "djinn_insert_builds", kInsertBuilds, b_id.str(), b_user.str(),
                      b_ns.str(), b_number.str(), b_cron.str(), b_secret.str(), b_created.str());
    if (written.affected_rows() != items.size()) {
        // The crons are locked FOR UPDATE by this transaction: none can have gone.
        throw std::logic_error("builds insert wrote " + std::to_string(written.affected_rows()) +
                               " rows, expected " + std::to_string(items.size()));
    }
    exec_prepared(tx, "djinn_insert_triggers", kInsertTriggers, t_build.str(), t_comment.str(),
                  t_data.str());
    exec_prepared(tx, "djinn_insert_tags", kInsertTags, g_user.str(), g_build.str(), g_name.str());
    exec_prepared(tx, "djinn_insert_cron_builds", kInsertCronBuilds, cb_cron.str(), cb_build.str());
    exec_prepared(tx, "djinn_insert_drivers", kInsertDrivers, d_build.str(), d_type.str(),
                  d_config.str());
    exec_prepared(tx, "djinn_insert_variables", kInsertVariables, v_build.str(), v_user.str(),
                  v_ns.str());
    if (e_build.size() > 0)
        exec_prepared(tx, "djinn_insert_env", kInsertEnv, e_build.str(), e_key.str(),
                      e_value.str());
    exec_prepared(tx, "djinn_insert_keys", kInsertKeys, v_build.str(), v_user.str(), v_ns.str());
    if (o_build.size() > 0) {
        exec_prepared(tx, "djinn_insert_objects", kInsertObjects, o_build.str(), o_user.str(),
                      o_ns.str(), o_name.str(), o_dest.str());
    }
    exec_prepared(tx, "djinn_insert_stages", kInsertStages, s_id.str(), s_build.str(), s_name.str(),
                  s_fail.str(), s_created.str());
    exec_prepared(tx, "djinn_insert_jobs", kInsertJobs, j_id.str(), j_build.str(), j_stage.str(),
                  j_name.str(), j_commands.str(), j_created.str());
    if (a_build.size() > 0) {
        exec_prepared(tx, "djinn_insert_artifacts", kInsertArtifacts, a_user.str(), a_build.str(),
                      a_job.str(), a_hash.str(), a_source.str(), a_name.str());
    }
}

// '{1,2,3}' for an int[] parameter.
std::string id_array(const std::vector<int64_t>& ids) {
    PgArray arr;
    for (int64_t id : ids)
        arr.add(id);
    return arr.str();
}

// Locks the next due crons of the pass (see kDeclareDueCursor). `taken`: the cursor ids this
// batch took, reused as they are when `from_cursor` (the redo of a batch). `upcoming`: the crons
// of the next batch with their manifests as they are now, to be parsed ahead.
pqxx::result take_due(pqxx::transaction_base& tx, const void* store, bool dry_run,
                      std::int64_t limit, const std::string& exclude, bool& from_cursor,
                      std::vector<std::int64_t>& taken, std::vector<Ahead>& upcoming) {
    DueCursor& cur = t_due;
    if (cur.store != store || cur.connection != &tx.conn() ||
        cur.backend != tx.conn().backendpid()) {
        cur = DueCursor{store, &tx.conn(), tx.conn().backendpid(), DueCursor::State::none, {}};
    }
    auto by_ids = [&](const std::vector<int64_t>& ids) {
        return exec_prepared(tx, "djinn_due_by_id", kDueByIdSql, limit, exclude, id_array(ids));
    };
    auto by_query = [&]() {
        auto rows = exec_prepared(tx, "djinn_due", kDueSql, limit, exclude);
        if (rows.empty())
            cur.state = DueCursor::State::none;  // the pass is over
        return rows;
    };
    if (from_cursor)
        return by_ids(taken);  // the redo of a batch
    // Dry runs roll every batch back, and the cursor with them: they scan per batch.
    if (dry_run || (cur.state == DueCursor::State::closed && cur.ahead.empty()))
        return by_query();
    const std::string fetch = "FETCH FORWARD " + std::to_string(limit) + " FROM " + kDueCursorName;
    auto fetch_ahead = [&]() {
        cur.ahead.clear();
        for (const auto& row : tx.exec(fetch))
            cur.ahead.push_back(row[0].as<int64_t>());
        if (static_cast<std::int64_t>(cur.ahead.size()) < limit) {
            tx.exec(std::string("CLOSE ") + kDueCursorName);
            cur.state = DueCursor::State::closed;
        }
    };
    if (cur.state == DueCursor::State::none) {
        // Anything due at all? A plain query may scan in parallel (a cursor never does), and
        // stops at the first due cron: the idle pass over a large table costs about half.
        if (!exec_prepared(tx, "djinn_any_due", kAnyDueSql)[0][0].as<bool>())
            return by_ids({});
        // A cursor left by a pass that ended early (an error, a stop) is stale.
        const std::string stale =
            std::string("SELECT count(*) > 0 FROM pg_cursors WHERE name = '") + kDueCursorName +
            "'";
        if (tx.exec1(stale)[0].as<bool>())
            tx.exec(std::string("CLOSE ") + kDueCursorName);
        tx.exec(kDeclareDueCursor);
        cur.state = DueCursor::State::open;
        fetch_ahead();
        if (cur.ahead.empty()) {
            // Nothing due at this transaction's now(): an idle pass costs one scan, not two.
            cur.state = DueCursor::State::none;
            return by_ids({});
        }
    }
    for (;;) {
        if (cur.ahead.empty() && cur.state == DueCursor::State::open)
            fetch_ahead();
        if (cur.ahead.empty())
            break;
        std::vector<int64_t> ids = std::move(cur.ahead);
        cur.ahead.clear();
        if (cur.state == DueCursor::State::open)
            fetch_ahead();  // the next batch's ids, one batch ahead
        auto rows = by_ids(ids);
        if (rows.empty())
            continue;  // all taken by another scheduler or no longer due: the next ones
        from_cursor = true;
        taken = std::move(ids);
        if (!cur.ahead.empty()) {
            for (const auto& row :
                 exec_prepared(tx, "djinn_manifests", kManifestsSql, id_array(cur.ahead)))
                upcoming.push_back({row[0].as<int64_t>(), row[1].as<std::string>(), {}});
        }
        return rows;
    }
    // Read to its end: the crons that fell due during the pass (or that the cursor did not list).
    return by_query();
}

}  // namespace

// The next batch's manifests, parsed on a background thread while this batch is written, so
// that the parser's CPU time hides behind PostgreSQL's. Only a cache: a result is used for a cron
// only if the manifest it locks is, byte for byte, the text that was parsed.
struct DispatchStore::Lookahead {
    std::future<std::vector<Ahead>> pending;

    void start(std::vector<Ahead> items, std::set<std::string> drivers) {
        discard();
        pending = std::async(
            std::launch::async, [items = std::move(items), drivers = std::move(drivers)]() mutable {
                yield_cpu_to_others();
                std::vector<const std::string*> texts;
                texts.reserve(items.size());
                for (const Ahead& a : items)
                    texts.push_back(&a.manifest);
                std::vector<Planned> planned(items.size());
                // One core fewer than a batch's own parse: PostgreSQL is writing on one meanwhile.
                plan_all(texts, planned, drivers, std::max<std::size_t>(parse_cores() - 1, 1));
                for (std::size_t i = 0; i < items.size(); ++i)
                    items[i].planned = std::move(planned[i]);
                return std::move(items);
            });
    }
    // The parsed crons (waiting for them), or nothing if none were started.
    std::vector<Ahead> take() {
        if (!pending.valid())
            return {};
        return pending.get();
    }
    // Forget a parse nobody will ask for (its exception too: parsing again rethrows it).
    void discard() {
        if (pending.valid())
            pending.wait();
        pending = {};
    }
    ~Lookahead() { discard(); }
};

struct DispatchStore::Attempt {
    pqxx::work* tx = nullptr;
    std::int64_t limit = 0;
    const std::vector<std::int64_t>* exclude = nullptr;
    bool dry_run = false;
    BatchOutcome outcome;
    // The cron ids this batch took from the due cursor: a redo (isolation) takes the same ones.
    bool from_cursor = false;
    std::vector<std::int64_t> cursor_ids;
};

DispatchStore::DispatchStore(std::set<std::string> drivers, std::string crypto_salt,
                             const Clock& clock)
    : drivers_(std::move(drivers)),
      hasher_(std::move(crypto_salt), clock),
      lookahead_(std::make_unique<Lookahead>()) {}

DispatchStore::~DispatchStore() = default;

std::variant<Privileges, PgError> DispatchStore::check_privileges(PgConnection& conn) const {
    Privileges p;
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        std::string role = tx.exec1("SELECT current_user")[0].as<std::string>();
        for (const Need& n : kNeeds) {
            std::string fn =
                std::string(n.kind) == "table" ? "has_table_privilege" : "has_sequence_privilege";
            bool ok = tx.exec_params1("SELECT " + fn + "($1, $2)", std::string("public.") + n.name,
                                      std::string(n.privilege))[0]
                          .as<bool>();
            if (ok)
                continue;
            std::string on = std::string(n.kind) == "table" ? "TABLE" : "SEQUENCE";
            p.missing.push_back({std::string(n.privilege) + " on " + n.kind + " " + n.name,
                                 "GRANT " + std::string(n.privilege) + " ON " + on + " public." +
                                     n.name + " TO " + quote_ident(role) + ";"});
            if (n.area == Area::variables)
                p.can_copy_variables = false;
            if (n.area == Area::keys)
                p.can_copy_keys = false;
            if (n.area == Area::essential)
                p.can_dispatch = false;
        }
    });
    if (auto* e = std::get_if<PgError>(&r))
        return *e;
    return p;
}

std::variant<BatchOutcome, PgError> DispatchStore::dispatch_batch(
    PgConnection& conn, std::int64_t limit, const std::vector<std::int64_t>& exclude,
    bool dry_run) {
    Attempt a;
    a.limit = limit;
    a.exclude = &exclude;
    a.dry_run = dry_run;
    auto attempt = [&](bool isolate) {
        return conn.run([&](pqxx::connection& c) {
            pqxx::work tx(c);
            a.tx = &tx;
            a.outcome = BatchOutcome{};
            run_attempt(a, isolate);
            a.tx = nullptr;
            if (dry_run) {
                tx.abort();
            } else {
                tx.commit();
            }
        });
    };
    auto r = attempt(false);
    NumberCache& cache = t_numbers;
    if (!dry_run && !std::holds_alternative<PgError>(r) && cache.staged_ok) {
        // Committed: the batch's numbers are the users' latest now.
        cache.valid = true;
        cache.expected_last_id = cache.staged_last_id;
        for (const auto& [user, number] : cache.staged)
            cache.latest[user] = number;
        cache.staged.clear();
        cache.staged_ok = false;
        if (cache.latest.size() > NumberCache::kNumberCacheMax)
            cache.drop();
    } else if (!dry_run) {
        cache.drop();
    }
    if (std::holds_alternative<PgError>(r) && t_due.state == DueCursor::State::open) {
        // The cursor may have been declared in the rolled-back transaction, or have moved: the
        // next batch starts a new one (closing a stale one first). The redo below uses the ids
        // this batch took.
        t_due.state = DueCursor::State::none;
        t_due.ahead.clear();
    }
    if (auto* e = std::get_if<PgError>(&r)) {
        if (e->kind == PgErrorKind::connection)
            return *e;
        // A set-based statement failed: find the culprit(s) cron by cron.
        std::string cause = e->message;
        r = attempt(true);
        if (auto* e2 = std::get_if<PgError>(&r))
            return *e2;
        a.outcome.isolated = true;
        a.outcome.isolation_cause = cause;
    }
    return std::move(a.outcome);
}

void DispatchStore::run_attempt(Attempt& a, bool isolate) {
    pqxx::work& tx = *a.tx;
    BatchOutcome& out = a.outcome;
    // A batch that takes no build id keeps the numbers cache as it is.
    t_numbers.staged.clear();
    t_numbers.staged_ok = t_numbers.valid;
    t_numbers.staged_last_id = t_numbers.expected_last_id;

    std::vector<Ahead> upcoming;
    pqxx::result rows = take_due(tx, this, a.dry_run, a.limit, id_array(*a.exclude), a.from_cursor,
                                 a.cursor_ids, upcoming);
    out.taken = rows.size();
    if (rows.empty())
        return;

    std::vector<DueCron> crons;
    crons.reserve(rows.size());
    for (const auto& row : rows) {
        DueCron c;
        c.id = row[0].as<int64_t>();
        c.user_id = row[1].as<int64_t>();
        c.namespace_id = opt_int(row[2]);
        c.name = row[3].as<std::string>();
        auto sched = schedule::parse_schedule(row[4].as<std::string>());
        if (!sched)
            throw std::logic_error("cron.schedule outside Djinn's enum");
        c.schedule = *sched;
        c.manifest = row[5].as<std::string>();
        c.next_run_text = row[6].as<std::string>();
        // Hostile rows (written by hand: Djinn never writes these) must not stop the pass.
        auto next_run = schedule::parse_pg_timestamp(c.next_run_text);
        c.bad_next_run = !next_run;
        c.next_run = next_run.value_or(TimePoint{});
        c.owner_missing = row[7].as<bool>();
        c.owner_deleted = !c.owner_missing && row[8].as<bool>();
        if (!c.owner_missing) {
            c.email = row[9].as<std::string>();
            c.username = row[10].as<std::string>();
        }
        out.db_now = parse_ts(row[11].as<std::string>());
        crons.push_back(std::move(c));
    }
    const TimePoint now = out.db_now;

    // Advance list: (cron, new next_run, ran).
    PgArray adv_id, adv_old, adv_new, adv_ran;
    auto advance = [&](const DueCron& c, TimePoint next, bool ran) {
        adv_id.add(c.id);
        adv_old.add_text(c.next_run_text);
        adv_new.add_text(ts(next));
        adv_ran.add(ran);
    };
    auto skip = [&](const DueCron& c, std::string kind, std::string reason, bool advanced) {
        if (advanced)
            advance(c, schedule::next_after(c.schedule, now), false);
        out.skipped.push_back({c.id, std::move(kind), std::move(reason), advanced});
    };

    // Plan every cron; the ones that cannot become a build are skipped (and advanced). Most were
    // parsed ahead, while the previous batch was written; the others are parsed now.
    std::vector<Planned> planned(crons.size());
    {
        std::vector<Ahead> ready = isolate ? std::vector<Ahead>{} : lookahead_->take();
        std::unordered_map<int64_t, Ahead*> by_id;
        for (Ahead& r : ready)
            by_id.emplace(r.id, &r);
        std::vector<const std::string*> todo(crons.size(), nullptr);
        for (std::size_t i = 0; i < crons.size(); ++i) {
            const DueCron& c = crons[i];
            if (c.owner_missing || c.owner_deleted)
                continue;
            auto it = by_id.find(c.id);
            if (it != by_id.end() && it->second->manifest == c.manifest) {
                planned[i] = std::move(it->second->planned);
                ++out.planned_ahead;
            } else {
                todo[i] = &c.manifest;
            }
        }
        plan_all(todo, planned, drivers_, parse_cores());
    }
    if (!upcoming.empty())
        lookahead_->start(std::move(upcoming), drivers_);
    std::vector<Work> work;
    work.reserve(crons.size());
    for (std::size_t i = 0; i < crons.size(); ++i) {
        const DueCron& c = crons[i];
        if (c.bad_next_run) {
            skip(c, "bad_next_run",
                 "next_run \"" + c.next_run_text + "\" is not a finite timestamp", true);
            continue;
        }
        if (c.owner_missing || c.owner_deleted) {
            skip(c, "deleted_owner",
                 c.owner_missing ? "owner user " + std::to_string(c.user_id) + " does not exist"
                                 : "owner user " + std::to_string(c.user_id) + " is deleted",
                 true);
            continue;
        }
        Planned& p = planned[i];
        if (!p.plan) {
            skip(c, std::move(p.skip_kind), std::move(p.skip_reason), true);
            continue;
        }
        Work w;
        w.cron = &c;
        w.plan = std::move(*p.plan);
        w.next_run = schedule::next_after(c.schedule, now);
        work.push_back(std::move(w));
    }
    planned.clear();

    // Without the grants to copy variables or keys, the crons that need them stay due (and are
    // reported) instead of failing the batch.
    if (!work.empty() && (!privileges_.can_copy_variables || !privileges_.can_copy_keys)) {
        PgArray users, nss;
        for (const Work& w : work) {
            users.add(w.cron->user_id);
            nss.add(w.cron->namespace_id);
        }
        std::vector<bool> blocked(work.size(), false);
        std::vector<std::string> why(work.size());
        auto mark = [&](const char* sql, const char* what) {
            for (const auto& row : tx.exec_params(sql, users.str(), nss.str())) {
                auto i = static_cast<std::size_t>(row[0].as<int64_t>() - 1);
                blocked.at(i) = true;
                why[i] = what;
            }
        };
        if (!privileges_.can_copy_variables) {
            for (std::size_t i = 0; i < work.size(); ++i) {
                if (!work[i].plan.env.empty()) {
                    blocked[i] = true;
                    why[i] = "variables";
                }
            }
            mark(kHasVariables, "variables");
        }
        if (!privileges_.can_copy_keys)
            mark(kHasKeys, "keys");
        std::vector<Work> kept;
        for (std::size_t i = 0; i < work.size(); ++i) {
            if (!blocked[i]) {
                kept.push_back(std::move(work[i]));
                continue;
            }
            std::string table = why[i] == "keys" ? "build_keys" : "build_variables";
            skip(*work[i].cron, "missing_privilege",
                 "the build copies " + why[i] + " but the scheduler's role lacks INSERT on " +
                     table + " or USAGE on " + table + "_id_seq",
                 false);
        }
        work = std::move(kept);
    }

    // Build numbers: the user's latest + 1, consecutive within the batch.
    std::unordered_map<int64_t, int64_t> latest;
    if (!work.empty()) {
        NumberCache& cache = t_numbers;
        const bool use_cache = !a.dry_run && !isolate;
        cache.staged.clear();
        cache.staged_ok = false;
        bool cacheable = false;  // the numbers read now may be cached
        if (use_cache) {
            if (cache.store != this || cache.connection != &tx.conn() ||
                cache.backend != tx.conn().backendpid()) {
                cache.drop();
                cache.store = this;
                cache.connection = &tx.conn();
                cache.backend = tx.conn().backendpid();
            }
            auto check = exec_prepared(tx, "djinn_numbers_check", kNumbersCheckSql)[0];
            const bool seq_known = !check[0].is_null();
            const int64_t last_id = seq_known ? check[0].as<int64_t>() : 0;
            const bool others_writing = check[1].as<bool>();
            if (cache.valid && (!seq_known || last_id != cache.expected_last_id))
                cache.drop();
            if (cache.valid || (seq_known && !others_writing)) {
                cache.staged_ok = true;
                cache.staged_last_id = last_id;
            }
            cacheable = seq_known && !others_writing;
        } else {
            cache.drop();
        }
        PgArray users;
        std::size_t missing = 0;
        for (const Work& w : work) {
            const int64_t u = w.cron->user_id;
            if (cache.valid) {
                auto it = cache.latest.find(u);
                if (it != cache.latest.end()) {
                    latest[u] = it->second;
                    cache.staged[u] = it->second;
                    continue;
                }
            }
            users.add(u);
            ++missing;
        }
        if (missing > 0) {
            std::unordered_map<int64_t, bool> seen;  // user -> latest build dated after now
            for (const auto& row : exec_prepared(tx, "djinn_numbers", kNumbersSql, users.str())) {
                const int64_t u = row[0].as<int64_t>();
                latest[u] = row[1].as<int64_t>();
                seen[u] = row[2].as<bool>();
            }
            if (cacheable) {
                for (const Work& w : work) {
                    const int64_t u = w.cron->user_id;
                    if (cache.staged.count(u) > 0)
                        continue;  // from the cache
                    auto it = seen.find(u);
                    if (it == seen.end()) {
                        cache.staged[u] = 0;  // no build yet
                    } else if (!it->second) {
                        cache.staged[u] = latest[u];
                    }
                }
            }
        }
    }
    // created_at strictly increasing across builds too (Djinn numbers by created_at DESC).
    TimePoint base = std::max(now, last_build_created_ + std::chrono::microseconds(1));
    std::int64_t seq = 0;
    auto stamp = [&](Work& w) {
        w.created = base + std::chrono::microseconds(seq);
        seq += 1;
    };

    if (a.dry_run) {
        for (Work& w : work) {
            w.number = ++latest[w.cron->user_id];
            out.builds.push_back({0, w.number, w.cron->id, w.cron->user_id, w.cron->name,
                                  w.plan.queue_driver, w.cron->next_run, w.next_run});
        }
        return;
    }

    auto record = [&](const Work& w) {
        out.builds.push_back({w.build_id, w.number, w.cron->id, w.cron->user_id, w.cron->name,
                              w.plan.queue_driver, w.cron->next_run, w.next_run});
        advance(*w.cron, w.next_run, true);
        last_build_created_ = std::max(last_build_created_, w.created);
    };

    if (!isolate) {
        std::vector<Work*> items;
        for (Work& w : work) {
            w.number = ++latest[w.cron->user_id];
            stamp(w);
            items.push_back(&w);
        }
        if (!items.empty())
            write_builds(tx, items, hasher_);
        for (const Work& w : work) {
            auto it = t_numbers.staged.find(w.cron->user_id);
            if (it != t_numbers.staged.end())
                it->second = w.number;
        }
        for (const Work& w : work)
            record(w);
    } else {
        for (Work& w : work) {
            w.number = latest[w.cron->user_id] + 1;
            stamp(w);
            std::vector<Work*> one{&w};
            // Explicit savepoints: libpqxx 6.4's subtransaction only issues its SAVEPOINT on
            // exec(), never on exec_params(), so it would not isolate anything here.
            tx.exec("SAVEPOINT djinn_cron");
            try {
                write_builds(tx, one, hasher_);
                tx.exec("RELEASE SAVEPOINT djinn_cron");
            } catch (...) {
                PgError e = translate_current_exception();
                if (e.kind == PgErrorKind::connection)
                    throw;
                tx.exec("ROLLBACK TO SAVEPOINT djinn_cron");
                bool priv = e.kind == PgErrorKind::privilege;
                skip(*w.cron, priv ? "missing_privilege" : "write_failed",
                     "build not written: " + e.message, false);
                continue;
            }
            latest[w.cron->user_id] = w.number;
            record(w);
        }
    }

    if (adv_id.size() > 0) {
        auto r = exec_prepared(tx, "djinn_advance", kAdvance, adv_id.str(), adv_old.str(),
                               adv_new.str(), adv_ran.str());
        if (r.affected_rows() != adv_id.size()) {
            // The rows are locked FOR UPDATE by this transaction: nobody can have moved them.
            throw std::logic_error("cron advance touched " + std::to_string(r.affected_rows()) +
                                   " rows, expected " + std::to_string(adv_id.size()));
        }
    }
}

std::variant<std::vector<PendingBuild>, PgError> DispatchStore::queued_cron_builds(
    PgConnection& conn, TimePoint since, std::int64_t after_id, std::int64_t limit) const {
    std::vector<PendingBuild> out;
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        for (const auto& row : tx.exec_params(kQueuedCronBuilds, ts(since), after_id, limit)) {
            std::string type = row[1].as<std::string>();
            // The queue is named after the `drivers` entry: qemu builds run on qemu-x86_64.
            out.push_back({row[0].as<int64_t>(), type == "qemu" ? "qemu-x86_64" : type});
        }
    });
    if (auto* e = std::get_if<PgError>(&r))
        return *e;
    return out;
}

std::variant<std::int64_t, PgError> DispatchStore::count_due(PgConnection& conn) const {
    std::int64_t n = 0;
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        n = tx.exec1("SELECT count(*) FROM cron WHERE next_run <= now()::timestamp")[0]
                .as<int64_t>();
    });
    if (auto* e = std::get_if<PgError>(&r))
        return *e;
    return n;
}

std::variant<TimePoint, PgError> DispatchStore::db_now(PgConnection& conn) const {
    TimePoint t;
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        t = parse_ts(tx.exec1("SELECT now()::timestamp::text")[0].as<std::string>());
    });
    if (auto* e = std::get_if<PgError>(&r))
        return *e;
    return t;
}

}  // namespace djinn::store
