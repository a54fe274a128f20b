// BuildQueue without a Redis: names, the script's shape, and failure as values when nothing
// listens. Behaviour against a real Redis is in tests/integration/queue_build_queue_test.cpp.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "queue/build_queue.hpp"

namespace djinn::queue {
namespace {

// A loopback port that refuses connections: bound (so nobody else gets it) but not listening.
class RefusingPort {
  public:
    RefusingPort() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        socklen_t len = sizeof addr;
        auto* generic = reinterpret_cast<sockaddr*>(&addr);
        if (fd_ < 0 || ::bind(fd_, generic, len) != 0 || ::getsockname(fd_, generic, &len) != 0) {
            port_ = -1;
            return;
        }
        port_ = ntohs(addr.sin_port);
    }
    ~RefusingPort() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    RefusingPort(const RefusingPort&) = delete;
    RefusingPort& operator=(const RefusingPort&) = delete;
    int port() const { return port_; }

  private:
    int fd_ = -1;
    int port_ = -1;
};

TEST(QueueBuildQueueNames, MarkerAndQueueNames) {
    EXPECT_EQ(BuildQueue::marker_key(42), "djinn-scheduler:enqueued:42");
    EXPECT_EQ(BuildQueue::marker_key(-7), "djinn-scheduler:enqueued:-7");
    EXPECT_EQ(BuildQueue::queue_name("qemu-x86_64"), "builds_qemu-x86_64");
    EXPECT_EQ(BuildQueue::queue_name("docker"), "builds_docker");
}

TEST(QueueBuildQueueScript, ChecksMarkerAndJobThenDoesWhatCurlyqPushJobDoesThenMarks) {
    const std::string script(BuildQueue::enqueue_script());
    const auto marked = script.find(R"(redis.call("exists", KEYS[1]))");
    const auto present = script.find(R"(redis.call("hexists", KEYS[2], ARGV[1]))");
    const auto hsetnx = script.find(R"(redis.pcall("hsetnx", KEYS[2], ARGV[1], ARGV[2]))");
    const auto rpush = script.find(R"(redis.pcall("rpush", KEYS[3], ARGV[1]))");
    const auto mark = script.rfind(R"(redis.pcall("set", KEYS[1], ARGV[1], "EX", ARGV[3]))");
    ASSERT_NE(marked, std::string::npos);
    ASSERT_NE(present, std::string::npos);
    ASSERT_NE(hsetnx, std::string::npos);
    ASSERT_NE(rpush, std::string::npos);
    ASSERT_NE(mark, std::string::npos);
    EXPECT_LT(marked, present);
    EXPECT_LT(present, hsetnx);
    EXPECT_LT(hsetnx, rpush);
    EXPECT_LT(rpush, mark);
}

TEST(QueueEnqueueResult, Counts) {
    EnqueueResult r;
    r.outcomes = {JobOutcome::enqueued, JobOutcome::failed, JobOutcome::already_enqueued,
                  JobOutcome::enqueued};
    EXPECT_EQ(r.enqueued(), 2U);
    EXPECT_EQ(r.failed(), 1U);
    EXPECT_EQ(r.already_enqueued(), 1U);
}

TEST(QueueBuildQueueOffline, NoJobsIsNoWork) {
    BuildQueue queue(RedisEndpoint{"127.0.0.1", 1, "", std::chrono::milliseconds(100)});
    const EnqueueResult r = queue.enqueue({});
    EXPECT_TRUE(r.outcomes.empty());
    EXPECT_TRUE(r.error.empty());
}

TEST(QueueBuildQueueOffline, RefusedConnectionFailsEveryJobQuicklyWithoutThePassword) {
    RefusingPort port;
    ASSERT_GT(port.port(), 0);
    const std::string password = "s3cret-passw0rd-do-not-log";
    BuildQueue queue(
        RedisEndpoint{"127.0.0.1", port.port(), password, std::chrono::milliseconds(500)});
    const auto start = std::chrono::steady_clock::now();
    const EnqueueResult r = queue.enqueue({{1, "docker"}, {2, "qemu-x86_64"}, {3, "docker"}});
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(r.outcomes.size(), 3U);
    EXPECT_EQ(r.failed(), 3U);
    EXPECT_EQ(r.job_ids, (std::vector<std::string>(3)));
    EXPECT_FALSE(r.error.empty());
    EXPECT_EQ(r.error.find(password), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("127.0.0.1:" + std::to_string(port.port())), std::string::npos)
        << r.error;
    EXPECT_LT(elapsed, std::chrono::seconds(2));
    EXPECT_FALSE(queue.ping());
}

TEST(QueueBuildQueueOffline, EmptyDriverFailsThatJobOnly) {
    RefusingPort port;
    ASSERT_GT(port.port(), 0);
    BuildQueue queue(RedisEndpoint{"127.0.0.1", port.port(), "", std::chrono::milliseconds(200)});
    const EnqueueResult r = queue.enqueue({{5, ""}});
    ASSERT_EQ(r.outcomes.size(), 1U);
    EXPECT_EQ(r.outcomes[0], JobOutcome::failed);
    EXPECT_NE(r.error.find("empty driver"), std::string::npos) << r.error;
}

}  // namespace
}  // namespace djinn::queue
