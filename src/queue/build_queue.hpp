#pragma once
// The Redis side of dispatch: puts build jobs on curlyq queues `builds_<driver>` exactly once, and
// tells the recovery sweep which committed builds already have a job.
//
// The job id of a build is derived from its id (build_job_id: a version-5 UUID), so the job a
// build gets is the same field of `<queue>:data` whoever enqueues it and however often. Each
// enqueue is one Lua script that atomically returns "already" if the per-build marker
// `djinn-scheduler:enqueued:<build id>` exists or if `<queue>:data` already holds the build's job
// id (then it writes the marker back: it was evicted or never written), and otherwise does
// exactly what curlyq v0.4.0's push_job.lua does, HSETNX `<queue>:data` <job id> <message> and
// RPUSH `<queue>:active` <job id>, then sets the marker (SET EX ttl; its value is the job id).
// With the marker evicted (maxmemory-policy volatile-*: markers are the only keys with a TTL) the
// job itself still says "enqueued". The marker outlives the job: curlyq deletes the job's data
// once a worker has run it, the marker then says it was enqueued. If HSETNX or RPUSH fails (a key
// of the wrong type, an out-of-memory Redis) the script undoes what it wrote and sets no marker,
// so the build can be offered again.
//
// For the recovery sweep (dispatch::Recovery): probe() says per build whether it has a marker and
// a job, restoring a missing marker whose job is there; scan_jobs() reads a whole queue's data
// hash (HSCAN) and decodes each message's BuildID, whoever wrote it (the original scheduler's jobs
// have random ids and no marker), and adopt() writes markers for such jobs. The sweep's
// watermark is one key without TTL (read_key / write_key).
//
// A job whose outcome is `failed` may still have been enqueued (the connection died after Redis
// ran the script); offering it again is safe: it then reports `already_enqueued`.
//
// Thread safety: not thread-safe; one instance per thread. Failures are values (EnqueueResult,
// error strings), never exceptions; a dead connection is dropped and re-dialled on the next call.
// Every network wait is bounded by `RedisEndpoint::timeout`. Error texts never contain the
// password.
// SIGPIPE is blocked in the calling thread while it talks to Redis and one raised by its own
// writes is swallowed (hiredis 0.14 writes with write(2), not MSG_NOSIGNAL): defence in depth,
// since hiredis stops at the first socket error; the process should ignore SIGPIPE anyway.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
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
    // false: the job's id is still on `<queue>:active` while its data is gone (evicted): write
    // the data back without pushing the id a second time.
    bool push = true;
    // false: the caller knows the build's job is in no queue although its marker says enqueued
    // (the job was lost inside Redis): the marker is not taken as proof and is rewritten. The
    // build's own job id in `<queue>:data` still is.
    bool trust_marker = true;
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

// What Redis holds for a committed build (probe()).
enum class JobState {
    queued,         // marker and its job present
    restored,       // no marker, but the build's job is in a queue: the marker was written back
    marked_no_job,  // a marker, but its job is in no queue: a worker consumed it, or it was lost
    missing,        // neither a marker nor the build's own job id in any queue
};

struct ProbeResult {
    std::vector<JobState> states;  // one per build, in order (valid only when error is empty)
    std::string error;
};

// A queue read whole (scan_jobs): for each wanted build, the ids of its jobs in `<queue>:data`,
// and the wanted builds whose own job id is on `<queue>:active` without data (`stray`).
struct QueueScan {
    std::unordered_map<std::int64_t, std::vector<std::string>> jobs;
    std::unordered_set<std::int64_t> stray;
    std::size_t scanned = 0;      // data entries read
    std::size_t undecodable = 0;  // entries that are no curlyq message with a BuildID
    std::string error;
};

// INFO memory / stats, for the eviction checks. ok false: INFO failed (disabled, say).
struct RedisMemoryInfo {
    bool ok = false;
    std::int64_t maxmemory = 0;
    std::string policy;
    std::int64_t evicted_keys = 0;
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

    // Per build id: what Redis holds, looking for its job in the data hash of every queue of
    // `drivers` (the build's own job id, or the id its marker names). Pipelined, chunked.
    ProbeResult probe(const std::vector<std::int64_t>& build_ids,
                      const std::vector<std::string>& drivers);

    // Reads `builds_<driver>:data` whole (HSCAN) and returns the jobs of the builds in `wanted`;
    // then `builds_<driver>:active` (LRANGE, by pages) for the wanted builds without data.
    QueueScan scan_jobs(std::string_view driver, const std::unordered_set<std::int64_t>& wanted);

    // Writes the marker of each (build id, job id), replacing one that names another job. "" on
    // success.
    std::string adopt(const std::vector<std::pair<std::int64_t, std::string>>& jobs);

    // A string key without expiry. read_key: nullopt value when the key is absent; the second
    // string is the error ("" when Redis answered).
    std::pair<std::optional<std::string>, std::string> read_key(const std::string& key);
    std::string write_key(const std::string& key, const std::string& value);

    RedisMemoryInfo memory_info();

    // "djinn-scheduler:enqueued:<build id>"
    static std::string marker_key(std::int64_t build_id);
    // "builds_<driver>", the curlyq queue name Djinn's workers consume.
    static std::string queue_name(std::string_view driver);
    // The Lua source run for each job (KEYS: marker, <queue>:data, <queue>:active;
    // ARGV: job id, message, marker ttl seconds, "0" to write the data without pushing the id,
    // "0" to disregard an existing marker;
    // returns 1 enqueued, 0 marker existed, 2 the job was there without a marker, which is
    // written back).
    static std::string_view enqueue_script();
    static std::string_view probe_script();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace djinn::queue
