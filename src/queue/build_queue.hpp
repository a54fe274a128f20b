#pragma once
// The Redis side of dispatch: puts build jobs on curlyq queues `builds_<driver>` exactly once.
//
// Exactly once: each enqueue is one Lua script that atomically (1) claims a per-build marker key
// `djinn-scheduler:enqueued:<build id>` (SET NX EX ttl), and only if it was new (2) HSETNX
// `<queue>:data` <job id> <message> and, only when that set a new field, (3) RPUSH
// `<queue>:active` <job id>. Enqueueing the same build again is therefore a no-op, which is what
// lets the dispatcher re-offer every committed-but-maybe-not-enqueued build after a crash or a
// Redis outage without duplicating any. Steps (2) and (3) are exactly what curlyq v0.4.0's own
// push_job.lua does (it touches no other key). If (2) or (3) fails (a key of the wrong type, an
// out-of-memory Redis) or the fresh job id already exists, the script undoes what it wrote,
// marker included, so the build can be offered again.
//
// A job whose outcome is `failed` may still have been enqueued (the connection died after Redis
// ran the script); offering it again is safe: it then reports `already_enqueued`.
// The marker expires after `marker_ttl`: a build must not be re-offered after that long.
//
// Thread safety: not thread-safe; one instance per thread. Failures are values (EnqueueResult),
// never exceptions; a dead connection is dropped and re-dialled on the next call. Every network
// wait is bounded by `RedisEndpoint::timeout`. Error texts never contain the password.
// SIGPIPE is blocked in the calling thread while it talks to Redis and one raised by its own
// writes is swallowed (hiredis 0.14 writes with write(2), not MSG_NOSIGNAL): defence in depth,
// since hiredis stops at the first socket error; the process should ignore SIGPIPE anyway.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace djinn::queue {

struct RedisEndpoint {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string password;  // empty: no AUTH
    std::chrono::milliseconds timeout{5000};
};

struct QueueJob {
    std::int64_t build_id = 0;
    std::string driver;  // entry of the `drivers` config, e.g. "docker", "qemu-x86_64"
};

enum class JobOutcome { enqueued, already_enqueued, failed };

struct EnqueueResult {
    std::vector<JobOutcome> outcomes;  // one per job, in order
    std::vector<std::string> job_ids;  // curlyq job id per job; empty unless `enqueued`
    std::string error;                 // first error when any job failed, else empty
    std::size_t failed() const;
    std::size_t enqueued() const;
    std::size_t already_enqueued() const;
};

class BuildQueue {
  public:
    // marker_ttl is clamped to at least one second. Does not connect (the first call does).
    explicit BuildQueue(RedisEndpoint endpoint,
                        std::chrono::seconds marker_ttl = std::chrono::hours(24 * 30));
    ~BuildQueue();
    BuildQueue(const BuildQueue&) = delete;
    BuildQueue& operator=(const BuildQueue&) = delete;

    // Enqueues all jobs in one pipeline (EVALSHA, falling back to EVAL on NOSCRIPT).
    // Redis unreachable: every job `failed`, within about one timeout.
    EnqueueResult enqueue(const std::vector<QueueJob>& jobs);

    // PING; true when Redis answered.
    bool ping();

    // "djinn-scheduler:enqueued:<build id>"
    static std::string marker_key(std::int64_t build_id);
    // "builds_<driver>", the curlyq queue name Djinn's workers consume.
    static std::string queue_name(std::string_view driver);
    // The Lua source run for each job (KEYS: marker, <queue>:data, <queue>:active;
    // ARGV: job id, message, marker ttl seconds; returns 1 enqueued, 0 marker existed,
    // -1 job id already present).
    static std::string_view enqueue_script();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace djinn::queue
