#pragma once
// The recovery sweep: makes sure every committed cron build that is still queued has exactly one
// job on its queue, reading only what may lack one.
//
// The watermark. Redis holds, per database (key djinn-scheduler:watermark:<name>:<oid>, no TTL),
// a cron_builds id W such that every cron build with cron_builds.id <= W is known to have had its
// job. A sweep reads cron_builds above W by the primary key, up to the settle point L (see
// store::RecoveryQueries: every id <= L is committed or never will be, if no other backend was
// writing cron_builds right after L was read), makes sure each queued build there has a job, and
// then moves W to L (not when another backend was writing: the rows read are still made whole,
// and the next sweep reads from the same W). So the first pass of a new leader, and every pass
// after a failure, costs what was committed since the last healthy pass, not the history or the
// backlog. Without a usable watermark (absent: first start, Redis flushed or restored; or above
// the sequence: the database was restored; or the sequence is not CACHE 1) the sweep covers the
// recovery window instead (cron builds of the last 7 days) and sets W at its end.
//
// Which builds are checked: the queued ones in the range, except those this process enqueued
// since the watermark last moved (`known`: their outcome came back from Redis). Checking is
// BuildQueue::probe (the marker, else the build's own job id, in every configured queue; a
// missing marker of a present job is written back). A build with neither is a candidate: before
// anything is enqueued, the candidates' queues are read whole (HSCAN) and each message's BuildID
// decoded, and a job found for a candidate, whoever wrote it (the original scheduler gives its
// jobs random ids and no marker), is adopted: its marker is written, nothing is enqueued. Only
// candidates still queued after that (read again from the database: a job acked meanwhile means
// its build ran) are enqueued. A build whose marker exists but whose job is in no queue while it
// is still queued lost its job inside Redis (a worker changes the build's status before it
// acknowledges, which deletes the data): it is reported (jobs_lost_total) and enqueued again like
// a candidate. A candidate whose own job id is still on `<queue>:active` without its data gets
// the data written back, not a second id on the list.
//
// Redis eviction is watched too: INFO's evicted_keys, with maxmemory-policy, logged when it
// grows (allkeys-*: an error, jobs themselves can be evicted; volatile-*: only markers, which
// the jobs do not need). The watermark records evicted_keys as it was when it was written; if it
// changed since under an allkeys-* policy, jobs below the watermark may be gone and the sweep
// covers the recovery window instead.
//
// Thread safety: not thread-safe; owned by the pass thread, which must not enqueue on the same
// BuildQueue concurrently. Failure: values (Result); nothing thrown but std::bad_alloc.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include <spdlog/logger.h>

#include "common/progress.hpp"
#include "dispatch/dispatch_events.hpp"
#include "dispatch/enqueuer.hpp"
#include "queue/build_queue.hpp"
#include "store/pg_connection.hpp"

namespace djinn::dispatch {

class Recovery {
  public:
    struct Options {
        std::chrono::hours window{24 * 7};
        std::vector<std::string> drivers;  // the queues to look in (the `drivers` config)
        std::int64_t page = 10000;         // cron_builds rows per read
    };
    struct Result {
        bool ok = true;
        bool session_lost = false;
        std::string error;
        bool fallback = false;     // no usable watermark: the recovery window was swept
        bool advanced = false;     // the watermark moved
        std::size_t read = 0;      // cron_builds rows read
        std::size_t checked = 0;   // queued builds probed in Redis
        std::size_t restored = 0;  // markers written back for jobs that were there
        std::size_t adopted = 0;   // jobs of another writer adopted
        std::size_t enqueued = 0;  // builds that had no job, enqueued
        std::size_t lost = 0;      // marked builds without a job (see above)
    };

    Recovery(queue::BuildQueue& queue, Enqueuer& enqueuer, std::shared_ptr<spdlog::logger> log,
             DispatchEvents& events, Options options);

    // One sweep on `conn`. `known`: builds this process enqueued since the watermark last moved
    // (cleared by the caller when `advanced`).
    Result settle(store::PgConnection& conn, const std::unordered_set<std::int64_t>& known,
                  Progress* progress);

    // The Redis key of the watermark for a database.
    static std::string watermark_key(const std::string& database, std::int64_t oid);

  private:
    queue::RedisMemoryInfo watch_eviction();

    queue::BuildQueue& queue_;
    Enqueuer& enqueuer_;
    std::shared_ptr<spdlog::logger> log_;
    DispatchEvents& events_;
    Options options_;
    std::uint64_t scope_session_ = 0;
    std::string key_;
    std::optional<std::int64_t> evicted_seen_;
    bool policy_warned_ = false;
};

}  // namespace djinn::dispatch
