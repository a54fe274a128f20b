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
#include <utility>

#include "queue/curlyq_codec.hpp"

namespace djinn::queue {
namespace {

// curlyq v0.4.0's push_job.lua (HSETNX <queue>:data id message; RPUSH <queue>:active id only
// when that set a new field; nothing else), preceded by the per-build marker. Writes are undone
// when a later step fails, so a failed enqueue never leaves a marker without a queued job.
constexpr std::string_view kEnqueueScript = R"lua(-- djinn-scheduler enqueue v1
-- KEYS[1] marker  KEYS[2] <queue>:data  KEYS[3] <queue>:active
-- ARGV[1] job id  ARGV[2] message  ARGV[3] marker ttl in seconds
-- Returns 1 enqueued, 0 already enqueued (marker exists), -1 job id already in <queue>:data.
if not redis.call("set", KEYS[1], ARGV[1], "NX", "EX", ARGV[3]) then
  return 0
end
local set = redis.pcall("hsetnx", KEYS[2], ARGV[1], ARGV[2])
if type(set) == "table" and set.err then
  redis.call("del", KEYS[1])
  return set
end
if set ~= 1 then
  redis.call("del", KEYS[1])
  return -1
end
local pushed = redis.pcall("rpush", KEYS[3], ARGV[1])
if type(pushed) == "table" and pushed.err then
  redis.call("hdel", KEYS[2], ARGV[1])
  redis.call("del", KEYS[1])
  return pushed
end
return 1
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
};

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
    std::string script_sha;  // empty: send EVAL with the whole script
    bool script_load_tried = false;

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

    void drop() {
        context.reset();
        script_sha.clear();
        script_load_tried = false;
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
        context = std::move(ctx);
        script_sha.clear();
        script_load_tried = false;
        return {};
    }

    // SCRIPT LOAD once per connection. An error reply (scripting denied by ACL, say) is not
    // fatal: the jobs then go by EVAL and report their own errors. False: connection dead.
    bool load_script(std::string& error) {
        if (script_load_tried) {
            return true;
        }
        script_load_tried = true;
        const ReplyPtr reply = command(*context, {"SCRIPT", "LOAD", kEnqueueScript}, error);
        if (!reply) {
            drop();
            return false;
        }
        if (reply->type == REDIS_REPLY_STRING) {
            script_sha.assign(reply_text(*reply));
        }
        return true;
    }

    static void fail(EnqueueResult& result, std::size_t index, const std::string& error) {
        result.outcomes[index] = JobOutcome::failed;
        if (result.error.empty()) {
            result.error = error;
        }
    }

    // Pipelines one EVALSHA (or EVAL) per job and reads every reply. Jobs that got NOSCRIPT are
    // returned for a retry by EVAL (NOSCRIPT means the script did not run). On a dead connection
    // the rest of the jobs fail and the connection is dropped.
    std::vector<const PreparedJob*> run(const std::vector<const PreparedJob*>& jobs,
                                        const std::vector<QueueJob>& source, bool by_sha,
                                        EnqueueResult& result) {
        std::vector<const PreparedJob*> noscript;
        const std::string_view verb = by_sha ? "EVALSHA" : "EVAL";
        const std::string_view script = by_sha ? std::string_view(script_sha) : kEnqueueScript;
        for (const PreparedJob* job : jobs) {
            // hiredis 0.14 takes `const char**`, so the array itself is not const.
            std::array<const char*, 9> argv = {
                verb.data(),        script.data(),        "3",
                job->marker.data(), job->data_key.data(), job->active_key.data(),
                job->job_id.data(), job->message.data(),  ttl_seconds.data()};
            const std::array<std::size_t, 9> argvlen = {
                verb.size(),        script.size(),        1,
                job->marker.size(), job->data_key.size(), job->active_key.size(),
                job->job_id.size(), job->message.size(),  ttl_seconds.size()};
            if (redisAppendCommandArgv(context.get(), static_cast<int>(argv.size()), argv.data(),
                                       argvlen.data()) != REDIS_OK) {
                const std::string error = io_error(*context);
                drop();
                for (const PreparedJob* each : jobs) {
                    fail(result, each->index, error);
                }
                return {};
            }
        }
        for (std::size_t k = 0; k < jobs.size(); ++k) {
            const PreparedJob& job = *jobs[k];
            void* raw = nullptr;
            if (redisGetReply(context.get(), &raw) != REDIS_OK || raw == nullptr) {
                const std::string error = io_error(*context);
                drop();
                for (std::size_t rest = k; rest < jobs.size(); ++rest) {
                    fail(result, jobs[rest]->index, error);
                }
                return {};
            }
            const ReplyPtr reply(static_cast<redisReply*>(raw));
            const std::string build = "build " + std::to_string(source[job.index].build_id);
            if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
                result.outcomes[job.index] = JobOutcome::enqueued;
                result.job_ids[job.index] = job.job_id;
            } else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
                result.outcomes[job.index] = JobOutcome::already_enqueued;
            } else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == -1) {
                fail(result, job.index, build + ": job id " + job.job_id + " already queued");
            } else if (reply->type == REDIS_REPLY_ERROR) {
                const std::string_view text = reply_text(*reply);
                if (by_sha && text.substr(0, 8) == "NOSCRIPT") {
                    noscript.push_back(&job);
                } else {
                    fail(result, job.index,
                         scrub(where() + ": " + build + ": " + std::string(text)));
                }
            } else {
                fail(result, job.index,
                     where() + ": " + build + ": unexpected reply type " +
                         std::to_string(reply->type));
            }
        }
        return noscript;
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
                p.job_id = new_job_id();
                p.message = curlyq_message(p.job_id, gob_payload(kPayloadHost, job.build_id));
                prepared.push_back(std::move(p));
            }
            if (prepared.empty()) {
                return result;
            }
            std::string error = connect();
            if (error.empty()) {
                load_script(error);
            }
            if (!error.empty()) {
                for (const PreparedJob& job : prepared) {
                    fail(result, job.index, error);
                }
                return result;
            }
            std::vector<const PreparedJob*> pending;
            pending.reserve(prepared.size());
            for (const PreparedJob& job : prepared) {
                pending.push_back(&job);
            }
            if (!script_sha.empty()) {
                pending = run(pending, jobs, true, result);
                if (!pending.empty()) {
                    // The script cache was flushed (SCRIPT FLUSH, a restarted or failed-over
                    // server behind the same address): reload it on the next call.
                    script_sha.clear();
                    script_load_tried = false;
                }
            }
            if (!pending.empty() && context) {
                run(pending, jobs, false, result);
            }
        } catch (const std::exception& e) {
            // Only allocation or CSPRNG failures get here. Replies may be left unread on the
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

    bool ping() {
        const SigpipeGuard sigpipe_guard;
        try {
            if (!connect().empty()) {
                return false;
            }
            std::string error;
            const ReplyPtr reply = command(*context, {"PING"}, error);
            if (!reply) {
                drop();
                return false;
            }
            return reply->type == REDIS_REPLY_STATUS && reply_text(*reply) == "PONG";
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

std::string BuildQueue::marker_key(std::int64_t build_id) {
    return std::string(kMarkerPrefix) + std::to_string(build_id);
}

std::string BuildQueue::queue_name(std::string_view driver) {
    return "builds_" + std::string(driver);
}

std::string_view BuildQueue::enqueue_script() {
    return kEnqueueScript;
}

}  // namespace djinn::queue
