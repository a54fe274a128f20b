#pragma once
// The Redis side of dispatch: puts build jobs on curlyq queues `builds_<driver>` exactly once.
//
// Exactly once: each enqueue is one Lua script that atomically (1) claims a per-build marker key
// `djinn-scheduler:enqueued:<build id>` (SET NX EX ttl), and only if it was new (2) HSETNX
// `<queue>:data` <job id> <message> and, only when that set a new field, (3) RPUSH
// `<queue>:active` <job id>. Enqueueing the same build again is therefore a no-op, which is what
// lets the dispatcher re-offer every committed-but-maybe-not-enqueued build after a crash or a
// Redis outage without duplicating any.
//
// Thread safety: not thread-safe; one instance per thread. Failures are values (EnqueueResult),
// never exceptions; a dead connection is dropped and re-dialled on the next call.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
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
    std::string error;                 // first error when any job failed, else empty
    std::size_t failed() const;
    std::size_t enqueued() const;
};

class BuildQueue {
public:
    explicit BuildQueue(RedisEndpoint endpoint,
                        std::chrono::seconds marker_ttl = std::chrono::hours(24 * 30));
    ~BuildQueue();
    BuildQueue(const BuildQueue&) = delete;
    BuildQueue& operator=(const BuildQueue&) = delete;

    // Enqueues all jobs in one pipeline (EVALSHA, falling back to EVAL on NOSCRIPT).
    EnqueueResult enqueue(const std::vector<QueueJob>& jobs);

    // PING; true when Redis answered.
    bool ping();

    static std::string marker_key(std::int64_t build_id);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace djinn::queue
