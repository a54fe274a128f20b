#include "store/dispatch_store.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <exception>
#include <future>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <unordered_set>

#include "common/failpoints.hpp"
#include "schedule/schedule.hpp"
#include "store/advisory_lock.hpp"
#include "store/build_writer.hpp"
#include "store/pg_array.hpp"

namespace djinn::store {
namespace {

using std::int64_t;

// The offered crons that are still due, locked (SKIP LOCKED: a cron another session holds is
// not waited for, it is simply not this batch's), oldest first. Timestamps as epoch
// microseconds: no text whose format depends on DateStyle, and UTC whatever the TimeZone
// (next_run is a UTC wall-clock time without a zone). Non-finite next_run: NULL.
constexpr const char* kLockDue = R"sql(
SELECT c.id, c.user_id, c.namespace_id, c.name, c.schedule::text, c.manifest,
       CASE WHEN isfinite(c.next_run) THEN (extract(epoch FROM c.next_run) * 1000000)::int8 END,
       u.id IS NULL, u.deleted_at IS NOT NULL, u.email, u.username,
       (extract(epoch FROM now()) * 1000000)::int8
FROM cron c LEFT JOIN users u ON u.id = c.user_id
WHERE c.id = ANY($1::int[]) AND c.next_run <= (now() AT TIME ZONE 'UTC')
  AND c.id <> ALL($2::int[])
ORDER BY c.next_run, c.id
FOR UPDATE OF c SKIP LOCKED)sql";

// Serialises the numbering of our own sessions (the leader, a -once beside it): taken before the
// numbers are read, held until the batch commits or rolls back. The two-int4 form, so that it
// can never be a bigint key (leader.key) an operator configured. Constants "djnn", "nums".
constexpr const char* kNumbersLockSql =
    "SELECT pg_catalog.pg_advisory_xact_lock(1684696686, 1853189491)";

// The dispatch fence (see the header): shared by every part transaction of a batch split across
// dispatch sessions, taken exclusively by a new leader before its first recovery sweep. Constants
// "djnn", "fenc".
constexpr const char* kFenceSharedSql =
    "SELECT pg_catalog.pg_advisory_xact_lock_shared(1684696686, 1717923427)";
constexpr const char* kFenceBarrierSql =
    "SELECT pg_catalog.pg_advisory_xact_lock(1684696686, 1717923427)";

// The leader's own server process, for its parts' fence checks; and the coordinating
// transaction's now() (the floor of the batch's created_at).
constexpr const char* kLeaderIdentitySql = R"sql(
SELECT pg_catalog.pg_backend_pid(),
       (SELECT (extract(epoch FROM a.backend_start) * 1000000)::int8
        FROM pg_catalog.pg_stat_activity a WHERE a.pid = pg_catalog.pg_backend_pid()),
       (extract(epoch FROM now()) * 1000000)::int8)sql";

// pg_stat_activity is a snapshot kept until the end of the transaction: a part's checks must see
// the server as it is.
constexpr const char* kClearSnapshotSql = "SELECT pg_catalog.pg_stat_clear_snapshot()";

// builds_id_seq's last value, only if the sequence hands out ids in time order (CACHE 1, as in
// Djinn's schema), else NULL. Read under the numbering lock, before kBuildsWritersSql.
constexpr const char* kNumbersSeqSql = R"sql(
SELECT CASE WHEN (SELECT s.cache_size FROM pg_catalog.pg_sequences s
                  WHERE s.schemaname = 'public' AND s.sequencename = 'builds_id_seq') = 1
            THEN pg_catalog.pg_sequence_last_value('public.builds_id_seq'::regclass) END)sql";

// Whether another backend is writing builds in this database right now (an INSERT holds the
// lock from before it takes its id until it ends). A statement of its own, after the sequence
// read: see BuildNumbers.
constexpr const char* kBuildsWritersSql = R"sql(
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks
               WHERE locktype = 'relation' AND relation = 'public.builds'::regclass
                 AND database = (SELECT oid FROM pg_catalog.pg_database
                                 WHERE datname = pg_catalog.current_database())
                 AND mode = 'RowExclusiveLock'
                 AND pid IS DISTINCT FROM pg_catalog.pg_backend_pid()))sql";

// The builds committed above the kept horizon, each user's highest number among them: a range of
// the primary key (what others committed since the last batch, and our own last batch).
constexpr const char* kNumbersSinceSql =
    "SELECT user_id, max(number) FROM builds WHERE id > $1 GROUP BY user_id";

// The users' highest build numbers from scratch (see BuildNumbers: the number of Djinn's latest
// build whenever numbers follow created_at). A scan of the whole table: Djinn has no index on
// builds.user_id; a hash aggregate over the users, no sort.
constexpr const char* kNumbersSql = "SELECT user_id, max(number) FROM builds WHERE user_id = ANY";

// Every user's highest build number, for a complete set (see BuildNumbers): the same one scan of
// `builds` as kNumbersSql, at most $1 rows.
constexpr const char* kEveryoneSql =
    "SELECT user_id, max(number) FROM builds GROUP BY user_id LIMIT $1";

// Each cron by id, and only if next_run is still the value read (v1.3.0 updated every cron).
constexpr const char* kAdvance = R"sql(
UPDATE cron c SET next_run = t.next_run,
                  prev_run = CASE WHEN t.ran THEN (now() AT TIME ZONE 'UTC') ELSE c.prev_run END
FROM unnest($1::int[], $2::int8[], $3::timestamp[], $4::bool[])
  AS t(id, old_us, next_run, ran)
WHERE c.id = t.id
  AND (CASE WHEN isfinite(c.next_run) THEN (extract(epoch FROM c.next_run) * 1000000)::int8 END)
      IS NOT DISTINCT FROM t.old_us)sql";

constexpr const char* kHasVariables = R"sql(
SELECT t.ord FROM unnest($1::int[], $2::int[]) WITH ORDINALITY AS t(user_id, namespace_id, ord)
WHERE EXISTS (SELECT 1 FROM variables v WHERE v.user_id = t.user_id AND v.namespace_id IS NULL)
   OR EXISTS (SELECT 1 FROM variables v WHERE v.namespace_id = t.namespace_id))sql";

constexpr const char* kHasKeys = R"sql(
SELECT t.ord FROM unnest($1::int[], $2::int[]) WITH ORDINALITY AS t(user_id, namespace_id, ord)
WHERE EXISTS (SELECT 1 FROM keys k WHERE k.user_id = t.user_id AND k.namespace_id IS NULL)
   OR EXISTS (SELECT 1 FROM keys k WHERE k.namespace_id = t.namespace_id))sql";

// Thrown inside the transaction when the fence check fails; turned into PgErrorKind::fenced.
struct FenceLost {};

// A part's check: the server process $3 that started at $4 (epoch us) holds the leader lock.
const std::string& leader_holds_sql() {
    static const std::string sql =
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = $3 AND "
        "(extract(epoch FROM a.backend_start) * 1000000)::int8 = $4) AND " +
        advisory_lock_held_sql(1, 2, "$3");
    return sql;
}

// The batch's own session holds the leader lock `key`.
void check_fence(SqlRunner& sql, std::int64_t key) {
    const PgLockId id = pg_lock_id(key);
    static const std::string fence = "SELECT " + advisory_lock_held_sql(1, 2);
    if (!sql.prepared("djinn_fence", fence.c_str(), static_cast<int64_t>(id.classid),
                      static_cast<int64_t>(id.objid))[0][0]
             .as<bool>())
        throw FenceLost{};
}

const char* const kFencedMessage = "this session does not hold the leader lock: nothing written";

std::string id_array(const std::vector<int64_t>& ids) {
    PgArray arr;
    for (int64_t id : ids)
        arr.add(id);
    return std::move(arr).take();
}

std::optional<int64_t> opt_int(const pqxx::field& f) {
    if (f.is_null())
        return std::nullopt;
    return f.as<int64_t>();
}

TimePoint from_us(int64_t us) {
    return TimePoint(std::chrono::microseconds(us));
}

// Reads one locked row. What this scheduler cannot work with in a row's values is recorded on
// the cron (fault_kind), never thrown: one cron's data never fails its batch.
DueCron read_row(const pqxx::row& row) {
    DJINN_FAILPOINT("batch.rows");
    DueCron c;
    c.id = row[0].as<int64_t>();
    c.user_id = row[1].as<int64_t>();
    c.namespace_id = opt_int(row[2]);
    c.name = row[3].as<std::string>();
    const std::string sched = row[4].as<std::string>();
    if (auto s = schedule::parse_schedule(sched)) {
        c.schedule = *s;
    } else {
        c.fault_kind = "bad_schedule";
        c.fault_reason = "schedule \"" + sched + "\" is not daily, weekly or monthly";
    }
    c.manifest = row[5].as<std::string>();
    c.next_run_us = opt_int(row[6]);
    // Before year 1 (BC): not a time any schedule can come from.
    constexpr int64_t kYearOneUs = -62135596800LL * 1000000;
    if (c.next_run_us && *c.next_run_us >= kYearOneUs)
        c.next_run = from_us(*c.next_run_us);
    c.owner_missing = row[7].as<bool>();
    c.owner_deleted = !c.owner_missing && row[8].as<bool>();
    if (!c.owner_missing) {
        c.email = row[9].is_null() ? std::string() : row[9].as<std::string>();
        c.username = row[10].is_null() ? std::string() : row[10].as<std::string>();
    }
    return c;
}

}  // namespace

// The leader's session as its parts check it (several dispatch sessions, fenced).
struct LeaderIdentity {
    std::int64_t pid = 0;
    std::int64_t backend_start_us = 0;
    PgLockId lock{};
};

namespace {

// A part's check that its leader's server process still holds the leader lock (see the header).
void check_leader(SqlRunner& sql, const LeaderIdentity& leader) {
    sql.prepared("djinn_clear_snapshot", kClearSnapshotSql);
    if (!sql.prepared("djinn_leader_holds", leader_holds_sql().c_str(),
                      static_cast<int64_t>(leader.lock.classid),
                      static_cast<int64_t>(leader.lock.objid), leader.pid,
                      leader.backend_start_us)[0][0]
             .as<bool>())
        throw FenceLost{};
}

}  // namespace

struct DispatchStore::Attempt {
    const BatchRequest* request = nullptr;
    std::uint64_t session = 0;
    bool next_read = false;  // the next batch's candidates were read (never twice: FETCH moves)
    BatchOutcome outcome;
    // A part of a batch split across dispatch sessions: the highest build number of each of its
    // users (read by the coordinating transaction, under the numbering lock), the first
    // created_at of its builds, and the leader to check (none: not fenced). Without `base` the
    // batch numbers its builds itself (numbers_).
    const std::unordered_map<int64_t, int64_t>* base = nullptr;
    std::unordered_map<int64_t, int64_t> part_next;  // user -> its latest number in this attempt
    std::optional<TimePoint> created_base;
    const LeaderIdentity* leader = nullptr;
    // Out: the builds ids taken (in allocation order) and the latest created_at stamped.
    std::vector<int64_t> ids;
    TimePoint last_created{};
};

// One part of a batch split across dispatch sessions, run on its own thread.
struct DispatchStore::Part {
    PgConnection* conn = nullptr;
    std::size_t index = 0;  // 1-based, for messages
    BatchRequest request;   // its ids; no look-ahead
    std::unordered_map<int64_t, int64_t> base;
    Attempt attempt;
    bool ran = false;  // its transaction was started (the coordinator got that far)
    std::variant<std::monostate, PgError> result;
};

DispatchStore::DispatchStore(std::string crypto_salt, const Clock& clock,
                             std::optional<std::int64_t> fence_key)
    : hasher_(std::move(crypto_salt), clock), fence_key_(fence_key) {}

std::variant<PassStart, PgError> DispatchStore::open_pass(PgConnection& conn, std::int64_t limit,
                                                          Progress* progress,
                                                          const DueHints& hints) {
    PassStart start;
    cursor_.reset();
    auto r = conn.run([&](pqxx::connection& c) {
        DJINN_FAILPOINT("batch.candidates");
        start = PassStart{};
        pqxx::work tx(c);  // DECLARE ... WITH HOLD needs the transaction to commit
        SqlRunner sql(tx, progress);
        DueCursor::Opened o = cursor_.open(sql, hints.previous, hints.use);
        if (o.due)
            start.first = cursor_.next(sql, limit, {});
        start.scan_skipped = o.scan_skipped;
        start.hint = std::move(o.hint);
        tx.commit();
    });
    if (auto* e = std::get_if<PgError>(&r)) {
        cursor_.reset();
        return *e;
    }
    return start;
}

std::variant<std::monostate, PgError> DispatchStore::attempt_batch(PgConnection& conn, Attempt& a) {
    const BatchRequest& request = *a.request;
    auto attempt = [&](bool isolate) {
        return conn.run([&](pqxx::connection& c) {
            pqxx::work tx(c);
            SqlRunner sql(tx, request.progress);
            a.outcome = BatchOutcome{};
            a.part_next.clear();
            a.ids.clear();
            run_attempt(sql, a, isolate);
            DJINN_FAILPOINT("batch.commit");
            // The last moment a part can find its leader gone: past it, only the fence (held to
            // the commit) makes a new leader wait for this commit.
            if (a.leader != nullptr)
                check_leader(sql, *a.leader);
            if (request.dry_run) {
                tx.abort();
            } else {
                tx.commit();
            }
        });
    };
    // An attempt whose failure is a value: fenced, a database error, or anything else thrown
    // (maybe one cron's data, which the redo cron by cron finds).
    auto guarded = [&](bool isolate) -> std::variant<std::monostate, PgError> {
        try {
            return attempt(isolate);
        } catch (const FenceLost&) {
            return PgError{PgErrorKind::fenced, "", kFencedMessage};
        } catch (const std::exception& e) {
            return PgError{PgErrorKind::query, "", std::string("internal error: ") + e.what()};
        }
    };
    std::variant<std::monostate, PgError> r = guarded(false);
    auto* e = std::get_if<PgError>(&r);
    if (e == nullptr || e->kind == PgErrorKind::connection || e->kind == PgErrorKind::fenced)
        return r;
    if (a.base == nullptr && !request.dry_run)
        numbers_.failed();  // the set-based attempt's numbers are not kept
    // A set-based statement failed: find the culprit(s) cron by cron, from the same offer.
    const std::string cause = e->message;
    r = guarded(true);
    if (auto* e2 = std::get_if<PgError>(&r)) {
        // Both attempts failed: say why each did (a fence lost says only that).
        if (e2->kind != PgErrorKind::fenced)
            e2->message = cause + "; and redone cron by cron: " + e2->message;
        return r;
    }
    a.outcome.isolated = true;
    a.outcome.isolation_cause = cause;
    return r;
}

std::variant<BatchOutcome, PgError> DispatchStore::dispatch_batch(
    PgConnection& conn, const BatchRequest& request, const std::vector<PgConnection*>& helpers) {
    if (helpers.size() >= 2 && !request.dry_run)
        return dispatch_parts(conn, request, helpers);
    Attempt a;
    a.request = &request;
    a.session = conn.session_id();
    auto r = attempt_batch(conn, a);
    last_build_created_ = std::max(last_build_created_, a.last_created);
    if (!request.dry_run) {
        if (std::holds_alternative<PgError>(r) || a.outcome.isolated) {
            numbers_.failed();  // an isolated batch never keeps numbers
        } else {
            std::vector<BuildNumbers::Written> written;
            written.reserve(a.outcome.builds.size());
            for (const auto& b : a.outcome.builds)
                written.push_back({b.user_id, b.build_number});
            numbers_.committed(written);
        }
    }
    if (auto* e = std::get_if<PgError>(&r))
        return *e;
    return std::move(a.outcome);
}

std::variant<std::monostate, PgError> DispatchStore::fence_barrier(PgConnection& conn) {
    return conn.run([&](pqxx::connection& c) {
        DJINN_FAILPOINT("fence.barrier");
        pqxx::work tx(c);
        tx.exec(kFenceBarrierSql);
        tx.commit();
    });
}

void DispatchStore::run_part(Part& part) {
    try {
        part.result = attempt_batch(*part.conn, part.attempt);
    } catch (...) {
        // attempt_batch translates what it can; anything else (bad_alloc) fails this part only.
        part.result = PgError{PgErrorKind::query, "", "internal error in a dispatch session"};
    }
    if (auto* e = std::get_if<PgError>(&part.result)) {
        e->message = "dispatch session " + std::to_string(part.index) + ": " + e->message;
        // A dispatch session that broke is replaced by the next batch; it is not the leader's.
        if (e->kind == PgErrorKind::connection)
            e->kind = PgErrorKind::query;
    }
}

std::variant<BatchOutcome, PgError> DispatchStore::dispatch_parts(
    PgConnection& conn, const BatchRequest& request, const std::vector<PgConnection*>& helpers) {
    const std::size_t k = helpers.size();
    // Declared in this order so that, whatever ends this function, the running parts are waited
    // for (futures of std::async) before the parts and the leader they read are destroyed.
    LeaderIdentity leader;
    std::vector<std::unique_ptr<Part>> parts;
    std::vector<std::future<void>> running;
    BatchOutcome out;
    auto wait_parts = [&](pqxx::work* tx) {
        for (auto& f : running) {
            // The coordinating transaction stays open while its parts run: pinged, so that it
            // is never idle in transaction for long. A failed ping (the leader's session is
            // gone) leaves the parts to their fence checks.
            while (tx != nullptr && f.wait_for(request.keepalive) != std::future_status::ready)
                tx->exec("SELECT 1");
            f.wait();
        }
    };
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::work tx(c);
        SqlRunner sql(tx, request.progress);
        DJINN_FAILPOINT("batch.take");
        sql.exec("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
        if (fence_key_)
            check_fence(sql, *fence_key_);
        const std::vector<int64_t> none;
        const std::vector<int64_t>& exclude = request.exclude ? *request.exclude : none;
        if (request.next_limit > 0) {
            std::vector<int64_t> not_again = exclude;
            not_again.insert(not_again.end(), request.ids.begin(), request.ids.end());
            std::vector<Candidate> next = cursor_.next(sql, request.next_limit, not_again);
            if (request.on_next)
                request.on_next(std::move(next));
        }
        // Each candidate to the part of its owner as read (a plan always exists for an offered
        // id; one without goes to the first part, which defers it).
        for (std::size_t i = 0; i < k; ++i) {
            auto p = std::make_unique<Part>();
            p->conn = helpers[i];
            p->index = i + 1;
            p->request.plans = request.plans;
            p->request.exclude = request.exclude;
            p->request.progress = request.progress;
            parts.push_back(std::move(p));
        }
        std::vector<int64_t> users;
        users.reserve(request.ids.size());
        for (int64_t id : request.ids) {
            std::int64_t user = -1;
            if (request.plans != nullptr) {
                auto it = request.plans->find(id);
                if (it != request.plans->end())
                    user = it->second.user_id;
            }
            const std::size_t bucket =
                user < 0 ? 0 : static_cast<std::size_t>(user % static_cast<int64_t>(k));
            parts[bucket]->request.ids.push_back(id);
            if (user >= 0) {
                users.push_back(user);
                parts[bucket]->base.emplace(user, 0);
            }
        }
        read_numbers(sql, conn.session_id(), true, true, users);
        const pqxx::row me = sql.prepared("djinn_leader_identity", kLeaderIdentitySql)[0];
        leader.pid = me[0].as<int64_t>();
        leader.backend_start_us = me[1].is_null() ? 0 : me[1].as<int64_t>();
        if (fence_key_)
            leader.lock = pg_lock_id(*fence_key_);
        // Every part's builds get created_at values of their own, above the last batch's.
        TimePoint created = std::max(from_us(me[2].as<int64_t>()),
                                     last_build_created_ + std::chrono::microseconds(1));
        for (auto& p : parts) {
            for (auto& [user, highest] : p->base)
                highest = numbers_.highest(user);
            p->attempt.request = &p->request;
            p->attempt.session = p->conn->session_id();
            p->attempt.next_read = true;
            p->attempt.base = &p->base;
            p->attempt.created_base = created;
            p->attempt.leader = fence_key_ ? &leader : nullptr;
            created += std::chrono::microseconds(p->request.ids.size());
        }
        for (auto& p : parts) {
            if (!p->request.ids.empty()) {
                Part* part = p.get();
                part->ran = true;
                running.push_back(
                    std::async(std::launch::async, [this, part] { run_part(*part); }));
            }
        }
        wait_parts(&tx);
        running.clear();
        DJINN_FAILPOINT("batch.commit");
        tx.commit();  // the numbering lock, held over every part's commit
    });
    // Whatever happened to the coordinating transaction, no part outlives the batch.
    wait_parts(nullptr);
    running.clear();

    std::vector<BuildNumbers::Written> written;
    std::vector<int64_t> ids;
    bool all_clean = true;
    for (auto& p : parts) {
        BatchOutcome& o = p->attempt.outcome;
        last_build_created_ = std::max(last_build_created_, p->attempt.last_created);
        if (!p->ran)
            continue;
        if (auto* e = std::get_if<PgError>(&p->result)) {
            all_clean = false;
            if (e->kind == PgErrorKind::fenced)
                out.session_lost = true;
            if (!out.error)
                out.error = e->message;
            continue;  // nothing of this part was written: its crons stay due
        }
        all_clean = all_clean && !o.isolated;
        out.taken += o.taken;
        out.db_now = std::max(out.db_now, o.db_now);
        if (o.isolated && !out.isolated) {
            out.isolated = true;
            out.isolation_cause =
                "dispatch session " + std::to_string(p->index) + ": " + o.isolation_cause;
        }
        for (auto& b : o.builds)
            written.push_back({b.user_id, b.build_number});
        ids.insert(ids.end(), p->attempt.ids.begin(), p->attempt.ids.end());
        std::move(o.builds.begin(), o.builds.end(), std::back_inserter(out.builds));
        std::move(o.skipped.begin(), o.skipped.end(), std::back_inserter(out.skipped));
        out.not_taken.insert(out.not_taken.end(), o.not_taken.begin(), o.not_taken.end());
        std::move(o.deferred.begin(), o.deferred.end(), std::back_inserter(out.deferred));
    }
    if (auto* e = std::get_if<PgError>(&r)) {
        numbers_.failed();
        if (out.builds.empty() && !out.error)
            return *e;  // nothing of the batch was committed
        out.error = (out.error ? *out.error + "; " : std::string()) + e->message;
        out.session_lost = out.session_lost || e->kind == PgErrorKind::connection ||
                           e->kind == PgErrorKind::fenced;
        return out;
    }
    if (all_clean && !out.error) {
        std::sort(ids.begin(), ids.end());
        numbers_.ids_taken(ids);
        numbers_.committed(written);
    } else {
        numbers_.failed();
    }
    return out;
}

bool DispatchStore::read_everyone(SqlRunner& sql) {
    const pqxx::result rows = sql.prepared("djinn_numbers_everyone", kEveryoneSql,
                                           static_cast<int64_t>(BuildNumbers::kMaxUsers + 1));
    if (rows.size() > BuildNumbers::kMaxUsers)
        return false;  // too many to keep: the batch reads its own users
    numbers_.read_everyone();
    for (const auto& row : rows)
        numbers_.read(row[0].as<int64_t>(), row[1].as<int64_t>());
    return true;
}

std::variant<NumbersAhead, PgError> DispatchStore::read_numbers_ahead(PgConnection& conn,
                                                                      Progress* progress) {
    NumbersAhead out;
    if (numbers_.session() == conn.session_id()) {
        out.already = true;
        out.kept = numbers_.kept();
        return out;
    }
    auto r = conn.run([&](pqxx::connection& c) {
        DJINN_FAILPOINT("numbers.ahead");
        out = NumbersAhead{};
        pqxx::work tx(c);
        SqlRunner sql(tx, progress);
        sql.exec("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
        // As a batch reads them: under the numbering lock, after the horizon.
        sql.prepared("djinn_numbers_lock", kNumbersLockSql);
        BuildNumbers::Horizon horizon;
        auto seq = sql.prepared("djinn_numbers_seq", kNumbersSeqSql)[0];
        if (!seq[0].is_null())
            horizon.last_id = seq[0].as<int64_t>();
        horizon.others_writing =
            sql.prepared("djinn_numbers_writers", kBuildsWritersSql)[0][0].as<bool>();
        numbers_.begin(conn.session_id(), true, horizon);
        out.read = numbers_.cold() && read_everyone(sql);
        tx.commit();
    });
    if (auto* e = std::get_if<PgError>(&r)) {
        numbers_.failed();
        return *e;
    }
    if (out.read) {
        numbers_.committed({});
    } else {
        numbers_.failed();  // nothing to keep: too many users, or no usable sequence
    }
    out.kept = numbers_.kept();
    out.read = numbers_.complete();
    return out;
}

void DispatchStore::read_numbers(SqlRunner& sql, std::uint64_t session, bool lock, bool use_cache,
                                 const std::vector<int64_t>& users) {
    DJINN_FAILPOINT("batch.numbers");
    if (lock)
        sql.prepared("djinn_numbers_lock", kNumbersLockSql);
    BuildNumbers::Horizon horizon;
    if (use_cache) {
        auto seq = sql.prepared("djinn_numbers_seq", kNumbersSeqSql)[0];
        if (!seq[0].is_null())
            horizon.last_id = seq[0].as<int64_t>();
        horizon.others_writing =
            sql.prepared("djinn_numbers_writers", kBuildsWritersSql)[0][0].as<bool>();
    }
    numbers_.begin(session, use_cache, horizon);
    if (auto from = numbers_.read_from()) {
        for (const auto& row : sql.prepared("djinn_numbers_since", kNumbersSinceSql, *from))
            numbers_.merge(row[0].as<int64_t>(), row[1].as<int64_t>());
    } else if (numbers_.cold()) {
        (void)read_everyone(sql);
    }
    PgArray unknown;
    std::unordered_set<int64_t> asked;
    for (int64_t u : users) {
        if (!numbers_.known(u) && asked.insert(u).second)
            unknown.add(u);
    }
    if (unknown.size() > 0) {
        // Not prepared: with the array a constant the planner hashes the users (a generic
        // plan would compare each build with every user of the batch).
        for (const auto& row :
             sql.exec(std::string(kNumbersSql) + "(" + sql.tx().quote(unknown.str()) +
                      "::int[]) GROUP BY user_id")) {
            const int64_t u = row[0].as<int64_t>();
            numbers_.read(u, row[1].as<int64_t>());
            asked.erase(u);
        }
        for (int64_t u : asked)
            numbers_.read(u, 0);  // no build yet
    }
}

std::int64_t DispatchStore::next_number(Attempt& a, std::int64_t user) {
    if (a.base == nullptr)
        return numbers_.next(user);
    auto it = a.part_next.find(user);
    if (it == a.part_next.end())
        it = a.part_next.emplace(user, a.base->at(user)).first;
    return ++it->second;
}

void DispatchStore::run_attempt(SqlRunner& sql, Attempt& a, bool isolate) {
    const BatchRequest& req = *a.request;
    BatchOutcome& out = a.outcome;
    DJINN_FAILPOINT("batch.take");
    // Each statement sees what was committed before it (the numbers, after the numbering lock
    // wait), whatever default_transaction_isolation the database or role sets.
    sql.exec("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
    if (a.leader != nullptr) {
        // A part: the fence first (a new leader's barrier waits for it), then the leader.
        sql.prepared("djinn_fence_shared", kFenceSharedSql);
        check_leader(sql, *a.leader);
    } else if (fence_key_ && a.base == nullptr) {
        check_fence(sql, *fence_key_);
    }
    const std::vector<int64_t> none;
    const std::vector<int64_t>& exclude = req.exclude ? *req.exclude : none;
    const pqxx::result rows =
        sql.prepared("djinn_lock_due", kLockDue, id_array(req.ids), id_array(exclude));

    // The next batch's candidates, while this one is written (not on a redo: a FETCH moves).
    if (!a.next_read && req.next_limit > 0) {
        a.next_read = true;
        std::vector<int64_t> not_again = exclude;
        not_again.insert(not_again.end(), req.ids.begin(), req.ids.end());
        std::vector<Candidate> next = cursor_.next(sql, req.next_limit, not_again);
        if (req.on_next)
            req.on_next(std::move(next));
    }

    out.taken = rows.size();
    std::vector<DueCron> crons;
    crons.reserve(rows.size());
    for (const auto& row : rows) {
        crons.push_back(read_row(row));
        out.db_now = from_us(row[11].as<int64_t>());
    }
    {
        std::unordered_set<int64_t> got;
        for (const DueCron& c : crons)
            got.insert(c.id);
        for (int64_t id : req.ids) {
            if (got.count(id) == 0)
                out.not_taken.push_back(id);
        }
    }
    if (crons.empty())
        return;
    const TimePoint now = out.db_now;

    // Advance list: (cron, its next_run as read, new next_run, ran).
    PgArray adv_id, adv_old, adv_new, adv_ran;
    auto advance = [&](const DueCron& c, TimePoint next, bool ran) {
        adv_id.add(c.id);
        adv_old.add(c.next_run_us);  // NULL for a non-finite next_run
        adv_new.add_text(schedule::format_pg_timestamp(next));
        adv_ran.add(ran);
    };
    auto skip = [&](const DueCron& c, std::string kind, std::string reason, bool advanced) {
        if (advanced)
            advance(c, schedule::next_after(c.schedule, now), false);
        out.skipped.push_back({c.id, std::move(kind), std::move(reason), advanced});
    };

    std::vector<BuildRow> work;
    work.reserve(crons.size());
    for (const DueCron& c : crons) {
        if (!c.fault_kind.empty()) {
            skip(c, c.fault_kind, c.fault_reason, false);  // no schedule: cannot advance it
            continue;
        }
        if (!c.next_run) {
            skip(c, "bad_next_run", "next_run is not a finite timestamp of the common era", true);
            continue;
        }
        if (c.owner_missing || c.owner_deleted) {
            skip(c, "deleted_owner",
                 "owner user " + std::to_string(c.user_id) +
                     (c.owner_missing ? " does not exist" : " is deleted"),
                 true);
            continue;
        }
        const PlannedManifest* planned = nullptr;
        if (req.plans != nullptr) {
            auto it = req.plans->find(c.id);
            if (it != req.plans->end() && it->second.manifest == c.manifest)
                planned = &it->second;
        }
        // Changed since it was planned, or (a part) owned by a user who is not the part's:
        // untouched, and planned again.
        if (planned == nullptr || (a.base != nullptr && a.base->count(c.user_id) == 0)) {
            out.deferred.push_back({c.id, c.manifest, c.user_id});
            continue;
        }
        if (!planned->result.plan) {
            skip(c, planned->result.skip_kind, planned->result.skip_reason, !planned->result.retry);
            continue;
        }
        BuildRow w;
        w.cron = &c;
        w.plan = *planned->result.plan;
        w.next_run = schedule::next_after(c.schedule, now);
        work.push_back(std::move(w));
    }

    // Without the grants to copy variables or keys, the crons that need them stay due (and are
    // reported) instead of failing the batch.
    if (!work.empty() && (!privileges_.can_copy_variables || !privileges_.can_copy_keys)) {
        PgArray users, nss;
        for (const BuildRow& w : work) {
            users.add(w.cron->user_id);
            nss.add(w.cron->namespace_id);
        }
        std::vector<const char*> why(work.size(), nullptr);
        auto mark = [&](const char* name, const char* query, const char* what) {
            for (const auto& row : sql.prepared(name, query, users.str(), nss.str())) {
                const auto i = static_cast<std::size_t>(row[0].as<int64_t>() - 1);
                why.at(i) = what;
            }
        };
        if (!privileges_.can_copy_variables) {
            for (std::size_t i = 0; i < work.size(); ++i) {
                if (!work[i].plan.env.empty())
                    why[i] = "variables";
            }
            mark("djinn_has_variables", kHasVariables, "variables");
        }
        if (!privileges_.can_copy_keys)
            mark("djinn_has_keys", kHasKeys, "keys");
        std::vector<BuildRow> kept;
        for (std::size_t i = 0; i < work.size(); ++i) {
            if (why[i] == nullptr) {
                kept.push_back(std::move(work[i]));
                continue;
            }
            const std::string what = why[i];
            const std::string table = what == "keys" ? "build_keys" : "build_variables";
            skip(*work[i].cron, "missing_privilege",
                 "the build copies " + what + " but the scheduler's role lacks INSERT on " + table +
                     " or USAGE on " + table + "_id_seq",
                 false);
        }
        work = std::move(kept);
    }

    if (!work.empty() && a.base == nullptr) {
        // Build numbers: the user's latest + 1, consecutive within the batch, under the
        // numbering lock (see BuildNumbers). A dry run writes nothing and takes no lock.
        std::vector<int64_t> users;
        users.reserve(work.size());
        for (const BuildRow& w : work)
            users.push_back(w.cron->user_id);
        read_numbers(sql, a.session, !req.dry_run, !req.dry_run && !isolate, users);
    }

    // created_at strictly increasing across builds too (Djinn numbers by created_at DESC).
    const TimePoint base = a.created_base
                               ? *a.created_base
                               : std::max(now, last_build_created_ + std::chrono::microseconds(1));
    std::int64_t seq_us = 0;
    auto stamp = [&](BuildRow& w) {
        w.created = base + std::chrono::microseconds(seq_us);
        seq_us += 1;
    };
    auto record = [&](const BuildRow& w) {
        out.builds.push_back({w.build_id, w.number, w.cron->id, w.cron->user_id, w.cron->name,
                              w.plan.queue_driver, *w.cron->next_run, w.next_run});
    };

    if (req.dry_run) {
        for (BuildRow& w : work) {
            w.number = next_number(a, w.cron->user_id);
            record(w);
        }
        return;
    }

    BuildWriter writer(hasher_);
    DJINN_FAILPOINT("batch.write");
    if (!isolate) {
        std::vector<BuildRow*> items;
        items.reserve(work.size());
        for (BuildRow& w : work) {
            w.number = next_number(a, w.cron->user_id);
            stamp(w);
            items.push_back(&w);
        }
        if (!items.empty()) {
            std::vector<int64_t> ids = writer.write(sql, items);
            a.ids.insert(a.ids.end(), ids.begin(), ids.end());
            if (a.base == nullptr)
                numbers_.ids_taken(ids);
        }
        for (const BuildRow& w : work) {
            record(w);
            advance(*w.cron, w.next_run, true);
            a.last_created = std::max(a.last_created, w.created);
        }
    } else {
        for (BuildRow& w : work) {
            w.number = next_number(a, w.cron->user_id);
            stamp(w);
            std::vector<BuildRow*> one{&w};
            // Explicit savepoints: libpqxx 6.4's subtransaction only issues its SAVEPOINT on
            // exec(), never on exec_params(), so it would not isolate anything here.
            sql.exec("SAVEPOINT djinn_cron");
            std::string failure;
            bool privilege = false;
            try {
                writer.write(sql, one);
                sql.exec("RELEASE SAVEPOINT djinn_cron");
            } catch (const pqxx::failure&) {
                PgError e = translate_current_exception();
                if (e.kind == PgErrorKind::connection)
                    throw;
                privilege = e.kind == PgErrorKind::privilege;
                failure = e.message;
            } catch (const std::exception& e) {
                failure = e.what();
            }
            if (!failure.empty()) {
                sql.exec("ROLLBACK TO SAVEPOINT djinn_cron");
                // The next build of this user takes the number.
                if (a.base != nullptr) {
                    --a.part_next.at(w.cron->user_id);
                } else {
                    numbers_.give_back(w.cron->user_id);
                }
                skip(*w.cron, privilege ? "missing_privilege" : "write_failed",
                     "build not written: " + failure, false);
                continue;
            }
            a.ids.push_back(w.build_id);
            record(w);
            advance(*w.cron, w.next_run, true);
            a.last_created = std::max(a.last_created, w.created);
        }
    }

    DJINN_FAILPOINT("batch.advance");
    if (const std::size_t advanced = adv_id.size(); advanced > 0) {
        auto r = sql.prepared("djinn_advance", kAdvance, std::move(adv_id).take(),
                              std::move(adv_old).take(), std::move(adv_new).take(),
                              std::move(adv_ran).take());
        if (r.affected_rows() != advanced) {
            // The rows are locked by this transaction: only something in the database (an
            // operator's trigger) can keep an advance from happening. The batch fails whole.
            throw std::runtime_error("cron advance touched " + std::to_string(r.affected_rows()) +
                                     " rows, expected " + std::to_string(advanced));
        }
    }
}

}  // namespace djinn::store
