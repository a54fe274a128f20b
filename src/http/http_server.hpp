#pragma once
// Plain-HTTP endpoints for probes and Prometheus, served by civetweb:
//   GET /healthz  200 "ok" while liveness() is true, else 503 "unhealthy"
//   GET /readyz   200 / 503 from readiness(), body: its reason (or "ready" / "not ready")
//   GET /metrics  the metrics collectable in the Prometheus text format 0.0.4
//   any other path 404; a method other than GET or HEAD 405 (with Allow: GET, HEAD).
// HEAD answers like GET without the body. Responses are small and never cached.
//
// TLS is not offered (civetweb's HTTPS crashes with Debian 12's OpenSSL 3); put a proxy in
// front if the endpoints must be encrypted.
//
// Thread safety: the callbacks run on civetweb's worker threads, possibly concurrently with
// each other and with the app: they must be thread-safe, fast and non-blocking (read atomics
// kept by the loops; never query a database from them). A callback that throws answers 500.
// start() and the destructor are called from one thread.
// Failure: start() returns an HttpStartError value (bad address, port in use); nothing throws.
// Stopping waits for requests in flight; it does not wait out civetweb's 2 s accept poll (see
// stop()).
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>

namespace prometheus {
class Collectable;
}
struct mg_context;
struct mg_connection;

namespace djinn::http {

struct Handlers {
    // Liveness: true while the process's loops make progress. Empty: always alive.
    std::function<bool()> liveness;
    // Readiness and a short one-line reason for humans. Empty: never ready.
    std::function<std::pair<bool, std::string>()> readiness;
    // What /metrics exposes. Null: /metrics answers 404.
    std::shared_ptr<const prometheus::Collectable> metrics;
};

struct HttpStartError {
    std::string message;  // one line, names the address
};

class HttpServer {
  public:
    static constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

    // `addr` is "host:port", "[v6]:port" or ":port" (all interfaces); host must be an IP
    // literal; port 0 picks a free port (see port()).
    static std::variant<std::unique_ptr<HttpServer>, HttpStartError> start(const std::string& addr,
                                                                           Handlers handlers);
    ~HttpServer();  // stops serving (see stop())
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // The bound TCP port.
    int port() const { return port_; }

    // Stops accepting, waits for requests in flight. Idempotent. civetweb's master thread looks
    // at its stop flag only when its poll() on the listening socket returns, which takes up to
    // 2 s; stop() connects to its own port to wake it, so stopping takes milliseconds.
    void stop();

  private:
    explicit HttpServer(Handlers handlers);
    static int on_request(mg_connection* conn);
    int handle(mg_connection* conn);

    Handlers handlers_;
    void wake_listener() const;

    mg_context* ctx_ = nullptr;
    int port_ = 0;
    std::string wake_host_;  // an IP literal this server accepts on (loopback for "any")
    bool wake_v6_ = false;
};

}  // namespace djinn::http
