#include "queue/build_queue.hpp"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <exception>
#include <stdexcept>
#include <utility>

#include "queue/curlyq_codec.hpp"

namespace djinn::queue {
namespace {

// The marker, then curlyq v0.4.0's push_job.lua (HSETNX <queue>:data id message; RPUSH
// <queue>:active id only when that set a new field; nothing else). The job id is derived from the
// build id, so a job already in <queue>:data means "already enqueued" even with no marker (it was
// evicted): the marker is written back and nothing else. Writes are undone when a later step
// fails, so a failed enqueue never leaves data without its active entry; the marker is written
// last (a failure to write it, out of memory, leaves a job that still answers for itself).
constexpr std::string_view kEnqueueScript = R"lua(-- djinn-scheduler enqueue v2
-- KEYS[1] marker  KEYS[2] <queue>:data  KEYS[3] <queue>:active
-- ARGV[1] job id (derived from the build id)  ARGV[2] message  ARGV[3] marker ttl in seconds
-- ARGV[4] "0": the id is on <queue>:active already (its data was lost): write the data only
-- ARGV[5] "0": the marker is no proof (the caller knows the job was lost): disregard it
-- Returns 1 enqueued, 0 already enqueued (marker exists), 2 already queued (marker written back).
if ARGV[5] ~= "0" and redis.call("exists", KEYS[1]) == 1 then
  return 0
end
if redis.call("hexists", KEYS[2], ARGV[1]) == 1 then
  redis.pcall("set", KEYS[1], ARGV[1], "EX", ARGV[3])
  return 2
end
local set = redis.pcall("hsetnx", KEYS[2], ARGV[1], ARGV[2])
if type(set) == "table" and set.err then
  return set
end
if ARGV[4] ~= "0" then
  local pushed = redis.pcall("rpush", KEYS[3], ARGV[1])
  if type(pushed) == "table" and pushed.err then
    redis.call("hdel", KEYS[2], ARGV[1])
    return pushed
  end
end
redis.pcall("set", KEYS[1], ARGV[1], "EX", ARGV[3])
return 1
)lua";

// What Redis holds for one build: its marker (whose value is the id of the job it marks: ours,
// or an adopted job of another writer) and that job, or the build's own job id, in any queue.
constexpr std::string_view kProbeScript = R"lua(-- djinn-scheduler probe v1
-- KEYS[1] marker  KEYS[2..] <queue>:data of every queue to look in
-- ARGV[1] the build's own job id  ARGV[2] marker ttl in seconds
-- Returns 1 marker and job, 2 job without marker (marker written back), 3 marker without job,
-- 0 neither.
local marked = redis.call("get", KEYS[1])
for i = 2, #KEYS do
  if marked and redis.call("hexists", KEYS[i], marked) == 1 then
    return 1
  end
  if redis.call("hexists", KEYS[i], ARGV[1]) == 1 then
    if not marked then
      redis.pcall("set", KEYS[1], ARGV[1], "EX", ARGV[2])
      return 2
    end
    return 1
  end
end
if marked then
  return 3
end
return 0
)lua";

constexpr std::string_view kMarkerPrefix = "djinn-scheduler:enqueued:";

struct ReplyDeleter {
    void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
    void operator()(redisContext* context) const noexcept { redisFree(context); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

// hiredis 0.14 writes with write(2): a peer that has gone away raises SIGPIPE, whose default
// action ends the process. Block it in this thread while talking to Redis, and swallow one
// that our own writes raised (EPIPE is reported through hiredis as an I/O error anyway).
class SigpipeGuard {
  public:
    SigpipeGuard() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        sigset_t pending;
        sigemptyset(&pending);
        was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
        blocked_ = pthread_sigmask(SIG_BLOCK, &pipe_, &previous_) == 0;
    }
    ~SigpipeGuard() {
        if (!blocked_) {
            return;
        }
        sigset_t pending;
        sigemptyset(&pending);
        if (!was_pending_ && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
            const timespec no_wait{0, 0};
            while (sigtimedwait(&pipe_, nullptr, &no_wait) == -1 && errno == EINTR) {
            }
        }
        pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
    }
    SigpipeGuard(const SigpipeGuard&) = delete;
    SigpipeGuard& operator=(const SigpipeGuard&) = delete;

  private:
    sigset_t pipe_{};
    sigset_t previous_{};
    bool was_pending_ = false;
    bool blocked_ = false;
};

timeval to_timeval(std::chrono::milliseconds timeout) {
    // A zero timeval means "block forever" to hiredis: never pass one.
    const auto ms = std::max<std::chrono::milliseconds::rep>(timeout.count(), 1);
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
    return tv;
}

std::string_view reply_text(const redisReply& reply) {
    return {reply.str, reply.len};
}

// One job's command arguments, owned.
struct PreparedJob {
    std::size_t index = 0;
    std::string marker;
    std::string data_key;
    std::string active_key;
    std::string job_id;
    std::string message;
    bool push = true;
    bool trust_marker = true;
};

// One EVALSHA/EVAL call's KEYS and ARGV (views into strings owned by the caller).
struct ScriptCall {
    std::vector<std::string_view> keys;
    std::vector<std::string_view> args;
};

// A Lua script and its SHA on the current connection (empty: not loaded, send EVAL).
struct Script {
    std::string_view source;
    std::string sha;
    bool load_tried = false;
};

bool parse_info_int(std::string_view info, std::string_view field, std::int64_t& out) {
    const std::string needle = std::string(field) + ":";
    for (std::size_t at = info.find(needle); at != std::string_view::npos;
         at = info.find(needle, at + 1)) {
        if (at != 0 && info[at - 1] != '\n') {
            continue;
        }
        std::size_t pos = at + needle.size();
        std::int64_t v = 0;
        bool any = false;
        while (pos < info.size() && info[pos] >= '0' && info[pos] <= '9') {
            v = v * 10 + (info[pos] - '0');
            ++pos;
            any = true;
        }
        if (any) {
            out = v;
        }
        return any;
    }
    return false;
}

std::string info_text(std::string_view info, std::string_view field) {
    const std::string needle = "\n" + std::string(field) + ":";
    const std::size_t at = info.find(needle);
    if (at == std::string_view::npos) {
        return {};
    }
    const std::size_t from = at + needle.size();
    std::size_t to = from;
    while (to < info.size() && info[to] != '\r' && info[to] != '\n') {
        ++to;
    }
    return std::string(info.substr(from, to - from));
}

}  // namespace

std::size_t EnqueueResult::failed() const {
    return static_cast<std::size_t>(
        std::count(outcomes.begin(), outcomes.end(), JobOutcome::failed));
}

std::size_t EnqueueResult::enqueued() const {
    return static_cast<std::size_t>(
        std::count(outcomes.begin(), outcomes.end(), JobOutcome::enqueued));
}

std::size_t EnqueueResult::already_enqueued() const {
    return static_cast<std::size_t>(
        std::count(outcomes.begin(), outcomes.end(), JobOutcome::already_enqueued));
}

// The hiredis adapter: every hiredis status and error is turned into text here, once.
struct BuildQueue::Impl {
    RedisEndpoint endpoint;
    std::string ttl_seconds;
    ContextPtr context;
    Script enqueue_script{kEnqueueScript, {}, false};
    Script probe_script{kProbeScript, {}, false};

    Impl(RedisEndpoint ep, std::chrono::seconds ttl)
        : endpoint(std::move(ep)),
          ttl_seconds(std::to_string(std::max<std::chrono::seconds::rep>(ttl.count(), 1))) {}

    // The password must never reach a log: remove it from any text that leaves this class.
    std::string scrub(std::string text) const {
        const std::string& secret = endpoint.password;
        if (secret.empty()) {
            return text;
        }
        for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
            text.replace(at, secret.size(), "***");
            at += 3;
        }
        return text;
    }

    std::string where() const {
        return "redis " + endpoint.host + ":" + std::to_string(endpoint.port);
    }

    std::string io_error(const redisContext& ctx) const {
        return scrub(where() + ": " + (ctx.errstr[0] != '\0' ? ctx.errstr : "I/O error"));
    }

    void forget_scripts() {
        for (Script* s : {&enqueue_script, &probe_script}) {
            s->sha.clear();
            s->load_tried = false;
        }
    }

    void drop() {
        context.reset();
        forget_scripts();
    }

    // Sends one command on `ctx` and waits for its reply; nullptr when the connection is dead
    // (the caller must drop it), with the reason in `error`.
    ReplyPtr command(redisContext& ctx, const std::vector<std::string_view>& args,
                     std::string& error) const {
        std::vector<const char*> argv;
        std::vector<std::size_t> argvlen;
        for (const auto arg : args) {
            argv.push_back(arg.data());
            argvlen.push_back(arg.size());
        }
        void* raw =
            redisCommandArgv(&ctx, static_cast<int>(argv.size()), argv.data(), argvlen.data());
        if (raw == nullptr) {
            error = io_error(ctx);
            return nullptr;
        }
        return ReplyPtr(static_cast<redisReply*>(raw));
    }

    // One command on the live connection (dialled if needed); nullptr with `error` when the
    // connection is dead (then dropped).
    ReplyPtr call(const std::vector<std::string_view>& args, std::string& error) {
        error = connect();
        if (!error.empty()) {
            return nullptr;
        }
        ReplyPtr reply = command(*context, args, error);
        if (!reply) {
            drop();
        }
        return reply;
    }

    // Dials when there is no live connection. Empty on success, else the error.
    std::string connect() {
        if (context) {
            return {};
        }
        const timeval tv = to_timeval(endpoint.timeout);
        ContextPtr ctx(redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, tv));
        if (!ctx) {
            return where() + ": cannot allocate a connection";
        }
        if (ctx->err != 0) {
            return io_error(*ctx);
        }
        if (redisSetTimeout(ctx.get(), tv) != REDIS_OK ||
            redisEnableKeepAlive(ctx.get()) != REDIS_OK) {
            return io_error(*ctx);
        }
        if (!endpoint.password.empty()) {
            std::string error;
            const ReplyPtr reply = command(*ctx, {"AUTH", endpoint.password}, error);
            if (!reply) {
                return error;
            }
            if (reply->type == REDIS_REPLY_ERROR) {
                return scrub(where() + ": AUTH failed: " + std::string(reply_text(*reply)));
            }
        }
        // A PING first: a Redis that wants a password answers it with NOAUTH, where a first
        // script call (more than 10 arguments) would get "Protocol error: unauthenticated
        // multibulk length" and a closed connection, which names no cause.
        {
            std::string error;
            const ReplyPtr pong = command(*ctx, {"PING"}, error);
            if (!pong) {
                return error;
            }
            if (pong->type == REDIS_REPLY_ERROR) {
                return scrub(where() + ": " + std::string(reply_text(*pong)) +
                             (endpoint.password.empty() ? " (redis.password is not set)" : ""));
            }
        }
        context = std::move(ctx);
        forget_scripts();
        return {};
    }

    // SCRIPT LOAD once per connection. An error reply (scripting denied by ACL, say) is not
    // fatal: the calls then go by EVAL and report their own errors. False: connection dead.
    bool load(Script& script, std::string& error) {
        if (script.load_tried) {
            return true;
        }
        script.load_tried = true;
        const ReplyPtr reply = command(*context, {"SCRIPT", "LOAD", script.source}, error);
        if (!reply) {
            drop();
            return false;
        }
        if (reply->type == REDIS_REPLY_STRING) {
            script.sha.assign(reply_text(*reply));
        }
        return true;
    }

    // Pipelines one EVALSHA (EVAL when the script is not loaded) per call and reads every reply
    // into `replies` (same order). A NOSCRIPT reply (the script cache was flushed: SCRIPT FLUSH,
    // a restarted server behind the same address) means the script did not run: those calls are
    // sent again by EVAL. False when the connection died (then dropped; `error` says why, and
    // the replies not read are null).
    bool eval(Script& script, const std::vector<ScriptCall>& calls, std::vector<ReplyPtr>& replies,
              std::string& error) {
        replies.clear();
        replies.resize(calls.size());
        error = connect();
        if (!error.empty() || !load(script, error)) {
            return false;
        }
        std::vector<std::size_t> pending(calls.size());
        for (std::size_t i = 0; i < pending.size(); ++i) {
            pending[i] = i;
        }
        for (int round = 0; round < 2 && !pending.empty(); ++round) {
            const bool by_sha = round == 0 && !script.sha.empty();
            if (round == 1 && !script.sha.empty()) {
                script.sha.clear();  // flushed: load it again on the next call
                script.load_tried = false;
            }
            const std::string_view verb = by_sha ? "EVALSHA" : "EVAL";
            const std::string_view body = by_sha ? std::string_view(script.sha) : script.source;
            std::vector<const char*> argv;
            std::vector<std::size_t> argvlen;
            for (const std::size_t i : pending) {
                const ScriptCall& c = calls[i];
                const std::string numkeys = std::to_string(c.keys.size());
                argv = {verb.data(), body.data(), numkeys.data()};
                argvlen = {verb.size(), body.size(), numkeys.size()};
                for (const auto k : c.keys) {
                    argv.push_back(k.data());
                    argvlen.push_back(k.size());
                }
                for (const auto a : c.args) {
                    argv.push_back(a.data());
                    argvlen.push_back(a.size());
                }
                // hiredis copies the arguments into its output buffer here.
                if (redisAppendCommandArgv(context.get(), static_cast<int>(argv.size()),
                                           argv.data(), argvlen.data()) != REDIS_OK) {
                    error = io_error(*context);
                    drop();
                    return false;
                }
            }
            std::vector<std::size_t> noscript;
            for (const std::size_t i : pending) {
                void* raw = nullptr;
                if (redisGetReply(context.get(), &raw) != REDIS_OK || raw == nullptr) {
                    error = io_error(*context);
                    drop();
                    return false;
                }
                ReplyPtr reply(static_cast<redisReply*>(raw));
                if (by_sha && reply->type == REDIS_REPLY_ERROR &&
                    reply_text(*reply).substr(0, 8) == "NOSCRIPT") {
                    noscript.push_back(i);
                } else {
                    replies[i] = std::move(reply);
                }
            }
            pending = std::move(noscript);
        }
        return true;
    }

    static void fail(EnqueueResult& result, std::size_t index, const std::string& error) {
        result.outcomes[index] = JobOutcome::failed;
        if (result.error.empty()) {
            result.error = error;
        }
    }

    EnqueueResult enqueue(const std::vector<QueueJob>& jobs) {
        EnqueueResult result;
        result.outcomes.assign(jobs.size(), JobOutcome::failed);
        result.job_ids.assign(jobs.size(), std::string());
        if (jobs.empty()) {
            return result;
        }
        const SigpipeGuard sigpipe_guard;
        try {
            std::vector<PreparedJob> prepared;
            prepared.reserve(jobs.size());
            for (std::size_t i = 0; i < jobs.size(); ++i) {
                const QueueJob& job = jobs[i];
                if (job.driver.empty()) {
                    fail(result, i, "build " + std::to_string(job.build_id) + ": empty driver");
                    continue;
                }
                PreparedJob p;
                p.index = i;
                p.marker = marker_key(job.build_id);
                const std::string queue = queue_name(job.driver);
                p.data_key = queue + ":data";
                p.active_key = queue + ":active";
                p.job_id = build_job_id(job.build_id);
                p.message = curlyq_message(p.job_id, gob_payload(kPayloadHost, job.build_id));
                p.push = job.push;
                p.trust_marker = job.trust_marker;
                prepared.push_back(std::move(p));
            }
            if (prepared.empty()) {
                return result;
            }
            std::vector<ScriptCall> calls;
            calls.reserve(prepared.size());
            for (const PreparedJob& p : prepared) {
                calls.push_back({{p.marker, p.data_key, p.active_key},
                                 {p.job_id, p.message, ttl_seconds, p.push ? "1" : "0",
                                  p.trust_marker ? "1" : "0"}});
            }
            std::vector<ReplyPtr> replies;
            std::string error;
            const bool alive = eval(enqueue_script, calls, replies, error);
            for (std::size_t k = 0; k < prepared.size(); ++k) {
                const PreparedJob& job = prepared[k];
                const ReplyPtr& reply = replies[k];
                const std::string build = "build " + std::to_string(jobs[job.index].build_id);
                if (!reply) {
                    fail(result, job.index, alive ? where() + ": " + build + ": no reply" : error);
                } else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
                    result.outcomes[job.index] = JobOutcome::enqueued;
                    result.job_ids[job.index] = job.job_id;
                } else if (reply->type == REDIS_REPLY_INTEGER &&
                           (reply->integer == 0 || reply->integer == 2)) {
                    result.outcomes[job.index] = JobOutcome::already_enqueued;
                } else if (reply->type == REDIS_REPLY_ERROR) {
                    fail(result, job.index,
                         scrub(where() + ": " + build + ": " + std::string(reply_text(*reply))));
                } else {
                    fail(result, job.index,
                         where() + ": " + build + ": unexpected reply type " +
                             std::to_string(reply->type));
                }
            }
        } catch (const std::exception& e) {
            // Only allocation or hashing failures get here. Replies may be left unread on the
            // connection, so it cannot be reused.
            drop();
            for (std::size_t i = 0; i < jobs.size(); ++i) {
                if (result.outcomes[i] == JobOutcome::failed) {
                    fail(result, i, scrub(std::string("enqueue: ") + e.what()));
                }
            }
        }
        return result;
    }

    ProbeResult probe(const std::vector<std::int64_t>& build_ids,
                      const std::vector<std::string>& drivers) {
        ProbeResult out;
        if (build_ids.empty()) {
            return out;
        }
        const SigpipeGuard sigpipe_guard;
        try {
            std::vector<std::string> data_keys;
            data_keys.reserve(drivers.size());
            for (const auto& d : drivers) {
                data_keys.push_back(queue_name(d) + ":data");
            }
            constexpr std::size_t kChunk = 5000;
            out.states.reserve(build_ids.size());
            for (std::size_t from = 0; from < build_ids.size(); from += kChunk) {
                const std::size_t to = std::min(build_ids.size(), from + kChunk);
                std::vector<std::string> markers, ids;
                markers.reserve(to - from);
                ids.reserve(to - from);
                std::vector<ScriptCall> calls;
                calls.reserve(to - from);
                for (std::size_t i = from; i < to; ++i) {
                    markers.push_back(marker_key(build_ids[i]));
                    ids.push_back(build_job_id(build_ids[i]));
                }
                for (std::size_t i = 0; i < markers.size(); ++i) {
                    ScriptCall c;
                    c.keys.emplace_back(markers[i]);
                    for (const auto& k : data_keys) {
                        c.keys.emplace_back(k);
                    }
                    c.args = {ids[i], ttl_seconds};
                    calls.push_back(std::move(c));
                }
                std::vector<ReplyPtr> replies;
                if (!eval(probe_script, calls, replies, out.error)) {
                    out.states.clear();
                    return out;
                }
                for (std::size_t i = 0; i < replies.size(); ++i) {
                    const ReplyPtr& r = replies[i];
                    if (!r || r->type != REDIS_REPLY_INTEGER || r->integer < 0 || r->integer > 3) {
                        out.error = scrub(where() + ": probe of build " +
                                          std::to_string(build_ids[from + i]) + ": " +
                                          (r && r->type == REDIS_REPLY_ERROR
                                               ? std::string(reply_text(*r))
                                               : std::string("unexpected reply")));
                        out.states.clear();
                        return out;
                    }
                    static constexpr std::array<JobState, 4> kStates = {
                        JobState::missing, JobState::queued, JobState::restored,
                        JobState::marked_no_job};
                    out.states.push_back(kStates.at(static_cast<std::size_t>(r->integer)));
                }
            }
        } catch (const std::exception& e) {
            drop();
            out.states.clear();
            out.error = scrub(std::string("probe: ") + e.what());
        }
        return out;
    }

    QueueScan scan_jobs(std::string_view driver, const std::unordered_set<std::int64_t>& wanted) {
        QueueScan out;
        const SigpipeGuard sigpipe_guard;
        try {
            const std::string key = queue_name(driver) + ":data";
            std::string cursor = "0";
            do {
                const ReplyPtr reply = call({"HSCAN", key, cursor, "COUNT", "1000"}, out.error);
                if (!reply) {
                    return out;
                }
                if (reply->type == REDIS_REPLY_ERROR) {
                    out.error =
                        scrub(where() + ": HSCAN " + key + ": " + std::string(reply_text(*reply)));
                    return out;
                }
                if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
                    reply->element[0]->type != REDIS_REPLY_STRING ||
                    reply->element[1]->type != REDIS_REPLY_ARRAY) {
                    out.error = where() + ": HSCAN " + key + ": unexpected reply";
                    return out;
                }
                cursor.assign(reply_text(*reply->element[0]));
                const redisReply& pairs = *reply->element[1];
                for (std::size_t i = 0; i + 1 < pairs.elements; i += 2) {
                    ++out.scanned;
                    const std::optional<std::int64_t> build =
                        decode_build_id(reply_text(*pairs.element[i + 1]));
                    if (!build) {
                        ++out.undecodable;
                        continue;
                    }
                    if (wanted.count(*build) != 0) {
                        out.jobs[*build].emplace_back(reply_text(*pairs.element[i]));
                    }
                }
            } while (cursor != "0");
            // The wanted builds without data whose own job id is still on the active list.
            std::unordered_map<std::string, std::int64_t> orphan;
            for (const std::int64_t build : wanted) {
                if (out.jobs.count(build) == 0)
                    orphan.emplace(build_job_id(build), build);
            }
            const std::string active = queue_name(driver) + ":active";
            constexpr long long kPage = 10000;
            for (long long from = 0; !orphan.empty(); from += kPage) {
                const std::string first = std::to_string(from);
                const std::string last = std::to_string(from + kPage - 1);
                const ReplyPtr reply = call({"LRANGE", active, first, last}, out.error);
                if (!reply) {
                    return out;
                }
                if (reply->type != REDIS_REPLY_ARRAY) {
                    out.error =
                        scrub(where() + ": LRANGE " + active + ": " +
                              (reply->type == REDIS_REPLY_ERROR ? std::string(reply_text(*reply))
                                                                : std::string("unexpected reply")));
                    return out;
                }
                for (std::size_t i = 0; i < reply->elements; ++i) {
                    auto it = orphan.find(std::string(reply_text(*reply->element[i])));
                    if (it != orphan.end())
                        out.stray.insert(it->second);
                }
                if (reply->elements < static_cast<std::size_t>(kPage))
                    break;
            }
        } catch (const std::exception& e) {
            drop();
            out.error = scrub(std::string("scan: ") + e.what());
        }
        // HSCAN may return an entry twice (a rehash during the scan): one job is one id.
        for (auto& [build, ids] : out.jobs) {
            std::sort(ids.begin(), ids.end());
            ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        }
        return out;
    }

    std::string adopt(const std::vector<std::pair<std::int64_t, std::string>>& jobs) {
        if (jobs.empty()) {
            return {};
        }
        const SigpipeGuard sigpipe_guard;
        try {
            std::string error = connect();
            if (!error.empty()) {
                return error;
            }
            std::vector<std::string> markers;
            markers.reserve(jobs.size());
            for (const auto& j : jobs) {
                markers.push_back(marker_key(j.first));
            }
            for (std::size_t i = 0; i < jobs.size(); ++i) {
                const std::array<const char*, 6> argv = {
                    "SET", markers[i].data(), jobs[i].second.data(), "NX",
                    "EX",  ttl_seconds.data()};
                const std::array<std::size_t, 6> len = {
                    3, markers[i].size(), jobs[i].second.size(), 2, 2, ttl_seconds.size()};
                std::array<const char*, 6> args = argv;
                if (redisAppendCommandArgv(context.get(), 6, args.data(), len.data()) != REDIS_OK) {
                    error = io_error(*context);
                    drop();
                    return error;
                }
            }
            std::string first;
            for (std::size_t i = 0; i < jobs.size(); ++i) {
                void* raw = nullptr;
                if (redisGetReply(context.get(), &raw) != REDIS_OK || raw == nullptr) {
                    error = io_error(*context);
                    drop();
                    return error;
                }
                const ReplyPtr reply(static_cast<redisReply*>(raw));
                if (reply->type == REDIS_REPLY_ERROR && first.empty()) {
                    first = scrub(where() + ": marker of build " + std::to_string(jobs[i].first) +
                                  ": " + std::string(reply_text(*reply)));
                }
            }
            return first;
        } catch (const std::exception& e) {
            drop();
            return scrub(std::string("adopt: ") + e.what());
        }
    }

    std::pair<std::optional<std::string>, std::string> read_key(const std::string& key) {
        const SigpipeGuard sigpipe_guard;
        std::string error;
        try {
            const ReplyPtr reply = call({"GET", key}, error);
            if (!reply) {
                return {std::nullopt, error};
            }
            if (reply->type == REDIS_REPLY_ERROR) {
                return {std::nullopt,
                        scrub(where() + ": GET " + key + ": " + std::string(reply_text(*reply)))};
            }
            if (reply->type != REDIS_REPLY_STRING) {
                return {std::nullopt, ""};  // absent
            }
            return {std::string(reply_text(*reply)), ""};
        } catch (const std::exception& e) {
            drop();
            return {std::nullopt, scrub(std::string("read: ") + e.what())};
        }
    }

    std::string write_key(const std::string& key, const std::string& value) {
        const SigpipeGuard sigpipe_guard;
        std::string error;
        try {
            const ReplyPtr reply = call({"SET", key, value}, error);
            if (!reply) {
                return error;
            }
            if (reply->type == REDIS_REPLY_ERROR) {
                return scrub(where() + ": SET " + key + ": " + std::string(reply_text(*reply)));
            }
            return {};
        } catch (const std::exception& e) {
            drop();
            return scrub(std::string("write: ") + e.what());
        }
    }

    RedisMemoryInfo memory_info() {
        RedisMemoryInfo out;
        const SigpipeGuard sigpipe_guard;
        try {
            std::string error;
            const ReplyPtr memory = call({"INFO", "memory"}, error);
            if (!memory || memory->type != REDIS_REPLY_STRING) {
                return out;
            }
            const ReplyPtr stats = call({"INFO", "stats"}, error);
            if (!stats || stats->type != REDIS_REPLY_STRING) {
                return out;
            }
            const std::string m = "\n" + std::string(reply_text(*memory));
            const std::string st = "\n" + std::string(reply_text(*stats));
            out.ok = parse_info_int(m, "maxmemory", out.maxmemory) &&
                     parse_info_int(st, "evicted_keys", out.evicted_keys);
            out.policy = info_text(m, "maxmemory_policy");
            out.ok = out.ok && !out.policy.empty();
        } catch (const std::exception&) {
            drop();
            out.ok = false;
        }
        return out;
    }

    bool ping() {
        const SigpipeGuard sigpipe_guard;
        try {
            std::string error;
            const ReplyPtr reply = call({"PING"}, error);
            return reply && reply->type == REDIS_REPLY_STATUS && reply_text(*reply) == "PONG";
        } catch (const std::exception&) {
            return false;
        }
    }
};

BuildQueue::BuildQueue(RedisEndpoint endpoint, std::chrono::seconds marker_ttl)
    : impl_(std::make_unique<Impl>(std::move(endpoint), marker_ttl)) {}

BuildQueue::~BuildQueue() = default;

EnqueueResult BuildQueue::enqueue(const std::vector<QueueJob>& jobs) {
    try {
        return impl_->enqueue(jobs);
    } catch (...) {
        // Allocating the result itself failed (out of memory): report all jobs failed if even
        // that is possible.
        EnqueueResult result;
        try {
            result.outcomes.assign(jobs.size(), JobOutcome::failed);
            result.job_ids.assign(jobs.size(), std::string());
            result.error = "enqueue: out of memory";
        } catch (...) {
        }
        return result;
    }
}

bool BuildQueue::ping() {
    return impl_->ping();
}

ProbeResult BuildQueue::probe(const std::vector<std::int64_t>& build_ids,
                              const std::vector<std::string>& drivers) {
    try {
        return impl_->probe(build_ids, drivers);
    } catch (...) {
        ProbeResult out;
        out.error = "probe: out of memory";
        return out;
    }
}

QueueScan BuildQueue::scan_jobs(std::string_view driver,
                                const std::unordered_set<std::int64_t>& wanted) {
    try {
        return impl_->scan_jobs(driver, wanted);
    } catch (...) {
        QueueScan out;
        out.error = "scan: out of memory";
        return out;
    }
}

std::string BuildQueue::adopt(const std::vector<std::pair<std::int64_t, std::string>>& jobs) {
    return impl_->adopt(jobs);
}

std::pair<std::optional<std::string>, std::string> BuildQueue::read_key(const std::string& key) {
    return impl_->read_key(key);
}

std::string BuildQueue::write_key(const std::string& key, const std::string& value) {
    return impl_->write_key(key, value);
}

RedisMemoryInfo BuildQueue::memory_info() {
    return impl_->memory_info();
}

std::string BuildQueue::marker_key(std::int64_t build_id) {
    return std::string(kMarkerPrefix) + std::to_string(build_id);
}

std::string BuildQueue::queue_name(std::string_view driver) {
    return "builds_" + std::string(driver);
}

std::string_view BuildQueue::enqueue_script() {
    return kEnqueueScript;
}

std::string_view BuildQueue::probe_script() {
    return kProbeScript;
}

}  // namespace djinn::queue
