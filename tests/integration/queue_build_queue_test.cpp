// BuildQueue against a real Redis 7 (never a mock).
//
// The shared server comes from DJINN_TEST_REDIS_HOST / DJINN_TEST_REDIS_PORT (scripts/lib/
// services.sh). Other suites use it too, so every test here works on its own driver name and
// on random build ids far above anything else uses, checks only its own keys, and deletes them.
// Tests that stop, restart, reconfigure or flush a server start their own redis-server
// (DJINN_TEST_REDIS_SERVER) on a free port and kill only that process.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "queue/build_queue.hpp"
#include "queue/curlyq_codec.hpp"
#include "test_env.hpp"

extern char** environ;

namespace djinn::queue {
namespace {

using namespace std::chrono_literals;
using djinn::testing::free_port;

std::optional<std::string> env(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') {
        return std::nullopt;
    }
    return std::string(value);
}

std::string random_hex(std::size_t digits) {
    static std::mt19937_64 rng{std::random_device{}()};
    static constexpr std::string_view kHex = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < digits; ++i) {
        out.push_back(kHex[rng() % 16U]);
    }
    return out;
}

// Build ids in [2^40, 2^50): no other suite's builds, no collisions between tests.
std::int64_t random_build_base() {
    static std::mt19937_64 rng{std::random_device{}()};
    std::uniform_int_distribution<std::int64_t> dist(std::int64_t{1} << 40, std::int64_t{1} << 50);
    return dist(rng);
}

struct ReplyDeleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// A plain hiredis client for checking what BuildQueue wrote.
class RawRedis {
  public:
    RawRedis(const std::string& host, int port, const std::string& password = "") {
        context_ = redisConnectWithTimeout(host.c_str(), port, timeval{2, 0});
        if (context_ != nullptr && context_->err == 0 && !password.empty()) {
            run({"AUTH", password});
        }
    }
    ~RawRedis() {
        if (context_ != nullptr) {
            redisFree(context_);
        }
    }
    RawRedis(const RawRedis&) = delete;
    RawRedis& operator=(const RawRedis&) = delete;

    bool ok() const { return context_ != nullptr && context_->err == 0; }

    Reply run(const std::vector<std::string>& args) {
        if (!ok()) {
            return nullptr;
        }
        std::vector<const char*> argv;
        std::vector<std::size_t> argvlen;
        for (const auto& a : args) {
            argv.push_back(a.data());
            argvlen.push_back(a.size());
        }
        return Reply(static_cast<redisReply*>(redisCommandArgv(
            context_, static_cast<int>(argv.size()), argv.data(), argvlen.data())));
    }
    std::optional<std::string> string(const std::vector<std::string>& args) {
        const Reply r = run(args);
        if (!r || r->type != REDIS_REPLY_STRING) {
            return std::nullopt;
        }
        return std::string(r->str, r->len);
    }
    long long integer(const std::vector<std::string>& args) {
        const Reply r = run(args);
        return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -999;
    }
    std::vector<std::string> list(const std::vector<std::string>& args) {
        std::vector<std::string> out;
        const Reply r = run(args);
        if (r && r->type == REDIS_REPLY_ARRAY) {
            for (std::size_t i = 0; i < r->elements; ++i) {
                out.emplace_back(r->element[i]->str, r->element[i]->len);
            }
        }
        return out;
    }

  private:
    redisContext* context_ = nullptr;
};

// A redis-server of this test's own, on a free loopback port; stop() kills only that process.
class OwnRedis {
  public:
    explicit OwnRedis(std::string password = "") : password_(std::move(password)) {}
    ~OwnRedis() { stop(); }
    OwnRedis(const OwnRedis&) = delete;
    OwnRedis& operator=(const OwnRedis&) = delete;

    // Starts (or restarts, on the same port) and waits until it answers.
    bool start() {
        const auto server = env("DJINN_TEST_REDIS_SERVER");
        if (!server) {
            return false;
        }
        for (int attempt = 0; attempt < 3; ++attempt) {
            if (port_ <= 0) {
                port_ = free_port();
            }
            std::vector<std::string> args = {*server,
                                             "--port",
                                             std::to_string(port_),
                                             "--bind",
                                             "127.0.0.1",
                                             "--save",
                                             "",
                                             "--appendonly",
                                             "no",
                                             "--daemonize",
                                             "no",
                                             "--loglevel",
                                             "warning"};
            if (!password_.empty()) {
                args.insert(args.end(), {"--requirepass", password_});
            }
            std::vector<char*> argv;
            for (auto& a : args) {
                argv.push_back(a.data());
            }
            argv.push_back(nullptr);
            posix_spawn_file_actions_t actions;
            posix_spawn_file_actions_init(&actions);
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
            const int rc =
                posix_spawn(&pid_, server->c_str(), &actions, nullptr, argv.data(), environ);
            posix_spawn_file_actions_destroy(&actions);
            if (rc != 0) {
                pid_ = -1;
                return false;
            }
            if (wait_ready()) {
                return true;
            }
            stop();
            port_ = -1;  // probably taken meanwhile: try another
        }
        return false;
    }

    void signal(int sig) const {
        if (pid_ > 0) {
            ::kill(pid_, sig);
        }
    }

    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGCONT);
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

    int port() const { return port_; }
    RedisEndpoint endpoint(std::string password, std::chrono::milliseconds timeout = 1000ms) const {
        return RedisEndpoint{"127.0.0.1", port_, std::move(password), timeout};
    }

  private:
    bool wait_ready() const {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                return false;  // exited: port in use, say
            }
            RawRedis probe("127.0.0.1", port_);
            if (probe.ok() && probe.run({"PING"})) {
                return true;  // any reply (PONG or NOAUTH) means it serves
            }
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }

    std::string password_;
    int port_ = -1;
    pid_t pid_ = -1;
};

class BuildQueueRedis : public ::testing::Test {
  protected:
    void SetUp() override {
        const auto host = env("DJINN_TEST_REDIS_HOST");
        const auto port = env("DJINN_TEST_REDIS_PORT");
        if (!host || !port) {
            GTEST_FAIL() << "DJINN_TEST_REDIS_HOST and DJINN_TEST_REDIS_PORT are not set: run the "
                            "integration tests through scripts/lib/services.sh (services_start)";
        }
        endpoint_ = RedisEndpoint{*host, std::stoi(*port), "", 2000ms};
        raw_ = std::make_unique<RawRedis>(*host, std::stoi(*port));
        ASSERT_TRUE(raw_->ok()) << "cannot reach Redis at " << *host << ":" << *port;
        driver_ = "qtest-" + random_hex(12);
        base_ = random_build_base();
    }

    void TearDown() override {
        if (!raw_ || !raw_->ok()) {
            return;
        }
        for (const auto& driver : drivers_used()) {
            raw_->run({"DEL", data_key(driver), active_key(driver)});
        }
        std::vector<std::string> del = {"DEL"};
        for (const std::int64_t id : builds_used_) {
            del.push_back(BuildQueue::marker_key(id));
            if (del.size() == 1000) {
                raw_->run(del);
                del.resize(1);
            }
        }
        if (del.size() > 1) {
            raw_->run(del);
        }
    }

    std::vector<std::string> drivers_used() const { return {driver_, driver_ + "-b"}; }
    static std::string data_key(const std::string& driver) {
        return BuildQueue::queue_name(driver) + ":data";
    }
    static std::string active_key(const std::string& driver) {
        return BuildQueue::queue_name(driver) + ":active";
    }

    std::vector<QueueJob> jobs(std::int64_t first, std::int64_t count, const std::string& driver) {
        std::vector<QueueJob> out;
        for (std::int64_t i = 0; i < count; ++i) {
            out.push_back(QueueJob{base_ + first + i, driver});
            builds_used_.insert(base_ + first + i);
        }
        return out;
    }

    // Every enqueued job's message in <queue>:data is exactly what the encoders produce.
    void expect_messages(const std::vector<QueueJob>& js, const EnqueueResult& r) {
        ASSERT_EQ(r.job_ids.size(), js.size());
        for (std::size_t i = 0; i < js.size(); ++i) {
            if (r.outcomes[i] != JobOutcome::enqueued) {
                continue;
            }
            const auto message = raw_->string({"HGET", data_key(js[i].driver), r.job_ids[i]});
            ASSERT_TRUE(message.has_value()) << "no message for build " << js[i].build_id;
            EXPECT_EQ(*message,
                      curlyq_message(r.job_ids[i], gob_payload(kPayloadHost, js[i].build_id)));
        }
    }

    RedisEndpoint endpoint_;
    std::unique_ptr<RawRedis> raw_;
    std::string driver_;
    std::int64_t base_ = 0;
    std::set<std::int64_t> builds_used_;
};

TEST_F(BuildQueueRedis, EnqueuesExactMessagesInOrder) {
    BuildQueue queue(endpoint_);
    const auto js = jobs(0, 300, driver_);
    const EnqueueResult r = queue.enqueue(js);
    ASSERT_EQ(r.outcomes.size(), js.size());
    EXPECT_EQ(r.enqueued(), js.size()) << r.error;
    EXPECT_TRUE(r.error.empty()) << r.error;
    EXPECT_EQ(raw_->list({"LRANGE", active_key(driver_), "0", "-1"}), r.job_ids);
    EXPECT_EQ(raw_->integer({"HLEN", data_key(driver_)}), 300);
    EXPECT_EQ(std::set<std::string>(r.job_ids.begin(), r.job_ids.end()).size(), js.size());
    expect_messages(js, r);
    for (std::size_t i = 0; i < js.size(); ++i) {
        EXPECT_EQ(raw_->string({"GET", BuildQueue::marker_key(js[i].build_id)}), r.job_ids[i]);
    }
    EXPECT_TRUE(queue.ping());
}

TEST_F(BuildQueueRedis, SameBuildsAgainAreAlreadyEnqueued) {
    BuildQueue queue(endpoint_);
    const auto first = jobs(0, 5, driver_);
    const EnqueueResult r1 = queue.enqueue(first);
    ASSERT_EQ(r1.enqueued(), 5U) << r1.error;

    const EnqueueResult again = queue.enqueue(first);
    EXPECT_EQ(again.already_enqueued(), 5U) << again.error;
    EXPECT_TRUE(again.error.empty());
    EXPECT_EQ(again.job_ids, std::vector<std::string>(5));

    // Through a second BuildQueue (another scheduler, or this one after a restart) as well,
    // mixed with new builds.
    BuildQueue other(endpoint_);
    auto mixed = jobs(3, 4, driver_);  // builds 3, 4 old; 5, 6 new
    const EnqueueResult r2 = other.enqueue(mixed);
    ASSERT_EQ(r2.outcomes.size(), 4U);
    EXPECT_EQ(r2.outcomes,
              (std::vector<JobOutcome>{JobOutcome::already_enqueued, JobOutcome::already_enqueued,
                                       JobOutcome::enqueued, JobOutcome::enqueued}));
    auto expected_list = r1.job_ids;
    expected_list.push_back(r2.job_ids[2]);
    expected_list.push_back(r2.job_ids[3]);
    EXPECT_EQ(raw_->list({"LRANGE", active_key(driver_), "0", "-1"}), expected_list);
    EXPECT_EQ(raw_->integer({"HLEN", data_key(driver_)}), 7);
    expect_messages(mixed, r2);
}

TEST_F(BuildQueueRedis, SameBuildInOnePipelineIsQueuedOnce) {
    BuildQueue queue(endpoint_);
    auto js = jobs(0, 1, driver_);
    js.push_back(js[0]);
    const EnqueueResult r = queue.enqueue(js);
    EXPECT_EQ(r.outcomes,
              (std::vector<JobOutcome>{JobOutcome::enqueued, JobOutcome::already_enqueued}));
    EXPECT_EQ(raw_->integer({"LLEN", active_key(driver_)}), 1);
}

TEST_F(BuildQueueRedis, DriversGetTheirOwnQueues) {
    BuildQueue queue(endpoint_);
    auto js = jobs(0, 2, driver_);
    const auto other = jobs(2, 2, driver_ + "-b");
    js.insert(js.end(), other.begin(), other.end());
    const EnqueueResult r = queue.enqueue(js);
    ASSERT_EQ(r.enqueued(), 4U) << r.error;
    EXPECT_EQ(raw_->list({"LRANGE", active_key(driver_), "0", "-1"}),
              (std::vector<std::string>{r.job_ids[0], r.job_ids[1]}));
    EXPECT_EQ(raw_->list({"LRANGE", active_key(driver_ + "-b"), "0", "-1"}),
              (std::vector<std::string>{r.job_ids[2], r.job_ids[3]}));
    expect_messages(js, r);
}

TEST_F(BuildQueueRedis, MarkerCarriesTheTtl) {
    BuildQueue hour(endpoint_, std::chrono::hours(1));
    const auto js = jobs(0, 1, driver_);
    ASSERT_EQ(hour.enqueue(js).enqueued(), 1U);
    const long long ttl = raw_->integer({"TTL", BuildQueue::marker_key(js[0].build_id)});
    EXPECT_GT(ttl, 3500);
    EXPECT_LE(ttl, 3600);

    BuildQueue default_ttl(endpoint_);
    const auto more = jobs(1, 1, driver_);
    ASSERT_EQ(default_ttl.enqueue(more).enqueued(), 1U);
    const long long month = raw_->integer({"TTL", BuildQueue::marker_key(more[0].build_id)});
    EXPECT_GT(month, 30LL * 24 * 3600 - 100);
    EXPECT_LE(month, 30LL * 24 * 3600);
    // The queue's own keys get no expiry, as with curlyq.
    EXPECT_EQ(raw_->integer({"TTL", data_key(driver_)}), -1);
    EXPECT_EQ(raw_->integer({"TTL", active_key(driver_)}), -1);
}

TEST_F(BuildQueueRedis, ScriptErrorLeavesNoMarkerAndNoData) {
    // <queue>:active of the wrong type makes RPUSH fail after HSETNX: all of it is undone.
    ASSERT_TRUE(raw_->run({"SET", active_key(driver_), "not a list"}));
    BuildQueue queue(endpoint_);
    const auto js = jobs(0, 2, driver_);
    const EnqueueResult r = queue.enqueue(js);
    EXPECT_EQ(r.failed(), 2U);
    EXPECT_NE(r.error.find("WRONGTYPE"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find(std::to_string(js[0].build_id)), std::string::npos) << r.error;
    EXPECT_EQ(raw_->integer({"EXISTS", BuildQueue::marker_key(js[0].build_id)}), 0);
    EXPECT_EQ(raw_->integer({"EXISTS", data_key(driver_)}), 0);

    // Once the key is fixed, the same builds go through.
    raw_->run({"DEL", active_key(driver_)});
    const EnqueueResult retry = queue.enqueue(js);
    EXPECT_EQ(retry.enqueued(), 2U) << retry.error;
    EXPECT_EQ(raw_->list({"LRANGE", active_key(driver_), "0", "-1"}), retry.job_ids);
}

TEST_F(BuildQueueRedis, ScriptFlushFallsBackToEval) {
    OwnRedis server;
    ASSERT_TRUE(server.start()) << "cannot start redis-server (DJINN_TEST_REDIS_SERVER)";
    RawRedis raw("127.0.0.1", server.port());
    BuildQueue queue(server.endpoint(""));
    ASSERT_EQ(queue.enqueue(jobs(0, 2, driver_)).enqueued(), 2U);
    ASSERT_TRUE(raw.run({"SCRIPT", "FLUSH"}));
    const auto js = jobs(2, 3, driver_);
    const EnqueueResult r = queue.enqueue(js);
    EXPECT_EQ(r.enqueued(), 3U) << r.error;
    EXPECT_EQ(raw.integer({"LLEN", active_key(driver_)}), 5);
    const auto stats = raw.string({"INFO", "commandstats"});
    ASSERT_TRUE(stats.has_value());
    EXPECT_NE(stats->find("cmdstat_eval:calls=3,"), std::string::npos) << *stats;
    // And the next call loads the script again.
    EXPECT_EQ(queue.enqueue(jobs(5, 1, driver_)).enqueued(), 1U);
    EXPECT_EQ(raw.integer({"LLEN", active_key(driver_)}), 6);
}

TEST_F(BuildQueueRedis, RedisDownFailsFastThenReconnects) {
    OwnRedis server;
    ASSERT_TRUE(server.start()) << "cannot start redis-server (DJINN_TEST_REDIS_SERVER)";
    BuildQueue queue(server.endpoint("", 1000ms));
    ASSERT_EQ(queue.enqueue(jobs(0, 1, driver_)).enqueued(), 1U);

    server.stop();  // SIGKILL: the connection BuildQueue holds is now dead
    const auto down = jobs(1, 3, driver_);
    for (int call = 0; call < 2; ++call) {  // first on the dead connection, then dialling
        SCOPED_TRACE("call " + std::to_string(call));
        const auto start = std::chrono::steady_clock::now();
        const EnqueueResult r = queue.enqueue(down);
        EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
        EXPECT_EQ(r.failed(), 3U);
        EXPECT_FALSE(r.error.empty());
    }
    EXPECT_FALSE(queue.ping());

    ASSERT_TRUE(server.start());  // same port, empty (no persistence)
    const EnqueueResult r = queue.enqueue(down);
    EXPECT_EQ(r.enqueued(), 3U) << r.error;
    EXPECT_TRUE(queue.ping());
    RawRedis raw("127.0.0.1", server.port());
    EXPECT_EQ(raw.list({"LRANGE", active_key(driver_), "0", "-1"}), r.job_ids);
}

TEST_F(BuildQueueRedis, LargePipelineOnADeadConnectionFailsFastAndLeavesNoSigpipe) {
    // A pipeline larger than the socket buffers, written into a connection whose server is gone:
    // every job fails quickly, the process survives and no SIGPIPE is left pending (hiredis 0.14
    // writes with write(2); BuildQueue blocks SIGPIPE around its I/O and swallows its own).
    OwnRedis server;
    ASSERT_TRUE(server.start()) << "cannot start redis-server (DJINN_TEST_REDIS_SERVER)";
    BuildQueue queue(server.endpoint("", 1000ms));
    ASSERT_TRUE(queue.ping());
    server.stop();
    const auto js = jobs(0, 20000, driver_);  // about 3 MB of commands
    const auto start = std::chrono::steady_clock::now();
    const EnqueueResult r = queue.enqueue(js);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
    EXPECT_EQ(r.failed(), js.size());
    EXPECT_FALSE(r.error.empty());
    sigset_t pending;
    sigemptyset(&pending);
    ASSERT_EQ(sigpending(&pending), 0);
    EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
}

TEST_F(BuildQueueRedis, HungRedisIsBoundedByTheTimeoutAndNeverDuplicates) {
    OwnRedis server;
    ASSERT_TRUE(server.start()) << "cannot start redis-server (DJINN_TEST_REDIS_SERVER)";
    BuildQueue queue(server.endpoint("", 500ms));
    ASSERT_TRUE(queue.ping());

    server.signal(SIGSTOP);  // accepts bytes, answers nothing
    const auto js = jobs(0, 4, driver_);
    const auto start = std::chrono::steady_clock::now();
    const EnqueueResult hung = queue.enqueue(js);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_EQ(hung.failed(), 4U);
    server.signal(SIGCONT);

    // The stopped server may still have run the scripts it had received: offering the builds
    // again must end with each queued exactly once.
    const EnqueueResult again = queue.enqueue(js);
    EXPECT_EQ(again.failed(), 0U) << again.error;
    RawRedis raw("127.0.0.1", server.port());
    const auto listed = raw.list({"LRANGE", active_key(driver_), "0", "-1"});
    EXPECT_EQ(listed.size(), 4U);
    EXPECT_EQ(raw.integer({"HLEN", data_key(driver_)}), 4);
    for (const auto& job : js) {
        const auto marker = raw.string({"GET", BuildQueue::marker_key(job.build_id)});
        ASSERT_TRUE(marker.has_value());
        EXPECT_EQ(std::count(listed.begin(), listed.end(), *marker), 1);
    }
}

TEST_F(BuildQueueRedis, AuthWithRightPasswordWorksWrongOneFailsWithoutLeakingIt) {
    const std::string right = "right-" + random_hex(16);
    OwnRedis server(right);
    ASSERT_TRUE(server.start()) << "cannot start redis-server (DJINN_TEST_REDIS_SERVER)";

    BuildQueue good(server.endpoint(right));
    const auto js = jobs(0, 2, driver_);
    const EnqueueResult ok = good.enqueue(js);
    EXPECT_EQ(ok.enqueued(), 2U) << ok.error;
    EXPECT_TRUE(good.ping());
    RawRedis raw("127.0.0.1", server.port(), right);
    EXPECT_EQ(raw.list({"LRANGE", active_key(driver_), "0", "-1"}), ok.job_ids);

    const std::string wrong = "wrong-" + random_hex(16);
    BuildQueue bad(server.endpoint(wrong));
    const EnqueueResult denied = bad.enqueue(jobs(2, 2, driver_));
    EXPECT_EQ(denied.failed(), 2U);
    EXPECT_NE(denied.error.find("AUTH"), std::string::npos) << denied.error;
    EXPECT_EQ(denied.error.find(wrong), std::string::npos) << denied.error;
    EXPECT_EQ(denied.error.find(right), std::string::npos) << denied.error;
    EXPECT_FALSE(bad.ping());

    BuildQueue none(server.endpoint(""));
    const EnqueueResult anonymous = none.enqueue(jobs(4, 1, driver_));
    EXPECT_EQ(anonymous.failed(), 1U);
    EXPECT_NE(anonymous.error.find("NOAUTH"), std::string::npos) << anonymous.error;
    EXPECT_EQ(raw.integer({"LLEN", active_key(driver_)}), 2);
}

}  // namespace
}  // namespace djinn::queue
