// HttpServer: one shared server for the endpoint tests (civetweb alone takes ~2 s to stop;
// HttpServer::stop() avoids that, and StopsPromptly* checks it), reached with a tiny
// raw-socket HTTP/1.1 client.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "http/http_server.hpp"
#include "metrics/metrics.hpp"

namespace djinn::http {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Response {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
};

class Socket {
  public:
    Socket() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {}
    ~Socket() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    int fd() const { return fd_; }

  private:
    int fd_;
};

sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

// Sends `request` verbatim, reads until the server closes, parses the response.
Response round_trip(int port, const std::string& request) {
    Socket s;
    if (s.fd() < 0)
        throw std::runtime_error("socket");
    timeval tv{5, 0};  // a broken server fails the test instead of hanging it
    ::setsockopt(s.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr = loopback(port);
    if (::connect(s.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        throw std::runtime_error("connect");
    }
    if (::send(s.fd(), request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
        throw std::runtime_error("send");
    }
    std::string raw;
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(s.fd(), buf, sizeof buf, 0);
        if (n < 0)
            throw std::runtime_error("recv (timeout?)");
        if (n == 0)
            break;
        raw.append(buf, static_cast<std::size_t>(n));
    }
    Response r;
    auto end = raw.find("\r\n\r\n");
    if (raw.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) {
        throw std::runtime_error("not an HTTP/1.1 response: " + raw);
    }
    r.status = std::stoi(raw.substr(9, 3));
    std::size_t pos = raw.find("\r\n") + 2;
    while (pos < end) {
        std::size_t eol = raw.find("\r\n", pos);
        std::string line = raw.substr(pos, eol - pos);
        auto colon = line.find(':');
        std::string name = line.substr(0, colon);
        for (char& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ')
            value.erase(0, 1);
        r.headers[name] = value;
        pos = eol + 2;
    }
    r.body = raw.substr(end + 4);
    return r;
}

Response request(int port, const std::string& method, const std::string& path) {
    return round_trip(
        port, method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
}

// What the callbacks report; the tests flip it.
struct Probe {
    std::atomic<bool> alive{true};
    std::atomic<bool> throw_in_liveness{false};
    std::mutex mutex;
    bool ready = false;
    std::string reason = "connecting to PostgreSQL";

    void set_ready(bool r, std::string why) {
        std::lock_guard lock(mutex);
        ready = r;
        reason = std::move(why);
    }
};

class HttpServerTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        probe_ = new Probe();
        metrics_ = new metrics::Metrics("9.9.9");
        Handlers h;
        h.liveness = [] {
            if (probe_->throw_in_liveness)
                throw std::runtime_error("boom\nsecond line");
            return probe_->alive.load();
        };
        h.readiness = [] {
            std::lock_guard lock(probe_->mutex);
            return std::make_pair(probe_->ready, probe_->reason);
        };
        h.metrics = metrics_->collectable();
        auto started = HttpServer::start("127.0.0.1:0", std::move(h));
        if (auto* err = std::get_if<HttpStartError>(&started)) {
            FAIL() << err->message;
        }
        server_ = std::get<std::unique_ptr<HttpServer>>(std::move(started)).release();
    }
    static void TearDownTestSuite() {
        delete server_;  // the one slow civetweb stop of this binary
        delete metrics_;
        delete probe_;
    }
    void SetUp() override {
        ASSERT_NE(server_, nullptr);
        probe_->alive = true;
        probe_->throw_in_liveness = false;
        probe_->set_ready(false, "connecting to PostgreSQL");
    }
    static int port() { return server_->port(); }

    static Probe* probe_;
    static metrics::Metrics* metrics_;
    static HttpServer* server_;
};

Probe* HttpServerTest::probe_ = nullptr;
metrics::Metrics* HttpServerTest::metrics_ = nullptr;
HttpServer* HttpServerTest::server_ = nullptr;

TEST_F(HttpServerTest, BindsAnEphemeralPort) {
    EXPECT_GT(port(), 0);
    EXPECT_LT(port(), 65536);
}

TEST_F(HttpServerTest, HealthzFollowsLiveness) {
    Response r = request(port(), "GET", "/healthz");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "ok\n");
    EXPECT_THAT(r.headers["content-type"], StartsWith("text/plain"));
    EXPECT_EQ(r.headers["cache-control"], "no-store");

    probe_->alive = false;
    r = request(port(), "GET", "/healthz");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "unhealthy\n");

    probe_->alive = true;
    EXPECT_EQ(request(port(), "GET", "/healthz?verbose=1").status, 200);  // query ignored
}

TEST_F(HttpServerTest, ReadyzFollowsReadinessWithItsReason) {
    Response r = request(port(), "GET", "/readyz");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "connecting to PostgreSQL\n");

    probe_->set_ready(true, "standby");
    r = request(port(), "GET", "/readyz");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "standby\n");

    probe_->set_ready(false, "stopping\r\nInjected: header");  // one line, whatever it says
    r = request(port(), "GET", "/readyz");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "stopping  Injected: header\n");
    EXPECT_EQ(r.headers.count("injected"), 0U);

    probe_->set_ready(true, "");
    EXPECT_EQ(request(port(), "GET", "/readyz").body, "ready\n");
}

TEST_F(HttpServerTest, MetricsServesTheTextFormat) {
    metrics_->set_leader(true);
    metrics_->dispatched("docker", 2);
    Response r = request(port(), "GET", "/metrics");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(r.headers["content-length"], std::to_string(r.body.size()));
    EXPECT_THAT(r.body,
                HasSubstr("# TYPE djinn_scheduler_leader gauge\ndjinn_scheduler_leader 1\n"));
    EXPECT_THAT(r.body,
                HasSubstr("djinn_scheduler_builds_dispatched_total{driver=\"docker\"} 2\n"));
    EXPECT_THAT(r.body, HasSubstr("djinn_scheduler_build_info{version=\"9.9.9\"} 1\n"));
    EXPECT_THAT(r.body, HasSubstr("# TYPE process_resident_memory_bytes gauge\n"));
    EXPECT_THAT(r.body, HasSubstr("# TYPE process_open_fds gauge\n"));
}

TEST_F(HttpServerTest, HeadAnswersLikeGetWithoutBody) {
    Response get = request(port(), "GET", "/healthz");
    Response head = request(port(), "HEAD", "/healthz");
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.body, "");
    EXPECT_EQ(head.headers["content-length"], std::to_string(get.body.size()));
    EXPECT_EQ(request(port(), "HEAD", "/readyz").status, 503);
}

TEST_F(HttpServerTest, UnknownPathIs404) {
    EXPECT_EQ(request(port(), "GET", "/").status, 404);
    EXPECT_EQ(request(port(), "GET", "/healthz/extra").status, 404);
    EXPECT_EQ(request(port(), "GET", "/../etc/passwd").status, 404);
    EXPECT_EQ(request(port(), "HEAD", "/nope").status, 404);
}

TEST_F(HttpServerTest, OtherMethodsAre405) {
    for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"}) {
        Response r = round_trip(port(), std::string(method) +
                                            " /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                            "Connection: close\r\n\r\n");
        EXPECT_EQ(r.status, 405) << method;
        EXPECT_EQ(r.headers["allow"], "GET, HEAD") << method;
    }
}

TEST_F(HttpServerTest, ThrowingCallbackAnswers500) {
    probe_->throw_in_liveness = true;
    Response r = request(port(), "GET", "/healthz");
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(r.body, "boom second line\n");
    probe_->throw_in_liveness = false;
    EXPECT_EQ(request(port(), "GET", "/healthz").status, 200);  // still serving
}

// Start failures never start civetweb's threads, so they are cheap.
TEST(HttpServerStart, RejectsBadAddressesAsValues) {
    for (const char* addr :
         {"", "8080", "localhost:8080", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536",
          "127.0.0.1:-1", "300.1.1.1:80", "[::zz]:80", "[]:80"}) {
        auto started = HttpServer::start(addr, {});
        ASSERT_TRUE(std::holds_alternative<HttpStartError>(started)) << addr;
        EXPECT_THAT(std::get<HttpStartError>(started).message,
                    HasSubstr("\"" + std::string(addr) + "\""));
    }
}

TEST(HttpServerStart, PortInUseIsAValue) {
    Socket holder;
    int one = 1;
    ::setsockopt(holder.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr = loopback(0);
    ASSERT_EQ(::bind(holder.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(holder.fd(), 1), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::getsockname(holder.fd(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
    const int taken = ntohs(addr.sin_port);

    auto started = HttpServer::start("127.0.0.1:" + std::to_string(taken), {});
    ASSERT_TRUE(std::holds_alternative<HttpStartError>(started));
    EXPECT_THAT(std::get<HttpStartError>(started).message, HasSubstr("cannot listen"));
}

// civetweb's own mg_stop waits up to 2 s for its accept poll; HttpServer wakes it.
TEST(HttpServerStart, StopsPromptlyAfterServing) {
    for (const char* addr : {"127.0.0.1:0", ":0", "0.0.0.0:0"}) {
        auto started = HttpServer::start(addr, {});
        ASSERT_TRUE(std::holds_alternative<std::unique_ptr<HttpServer>>(started)) << addr;
        auto server = std::get<std::unique_ptr<HttpServer>>(std::move(started));
        EXPECT_EQ(request(server->port(), "GET", "/healthz").status, 200) << addr;
        const auto begin = std::chrono::steady_clock::now();
        server.reset();
        EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(1)) << addr;
    }
}

TEST(HttpServerStart, Ipv6LoopbackStopsPromptly) {
    auto started = HttpServer::start("[::1]:0", {});
    if (auto* e = std::get_if<HttpStartError>(&started))
        GTEST_SKIP() << e->message;
    auto server = std::get<std::unique_ptr<HttpServer>>(std::move(started));
    EXPECT_GT(server->port(), 0);
    const auto begin = std::chrono::steady_clock::now();
    server.reset();
    EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(1));
}

}  // namespace
}  // namespace djinn::http
