#include "http/http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <sstream>
#include <string_view>
#include <thread>

#include <civetweb.h>
#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>

namespace djinn::http {
namespace {

constexpr const char* kTextContentType = "text/plain; charset=utf-8";

const char* reason_phrase(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 500:
            return "Internal Server Error";
        case 503:
            return "Service Unavailable";
        default:
            return "Unknown";
    }
}

// Writes a complete response; the connection closes after it (keep-alive is off).
int respond(mg_connection* conn, int status, std::string_view content_type, std::string_view body,
            bool head, std::string_view extra_headers = {}) {
    std::ostringstream h;
    h << "HTTP/1.1 " << status << ' ' << reason_phrase(status) << "\r\n"
      << "Content-Type: " << content_type << "\r\n"
      << "Content-Length: " << body.size() << "\r\n"
      << "Cache-Control: no-store\r\n"
      << "Connection: close\r\n"
      << extra_headers << "\r\n";
    std::string header = h.str();
    mg_write(conn, header.data(), header.size());
    if (!head && !body.empty())
        mg_write(conn, body.data(), body.size());
    return status;
}

std::string one_line(std::string s) {
    for (char& c : s) {
        if (c == '\r' || c == '\n')
            c = ' ';
    }
    return s;
}

struct Listen {
    std::string ports;      // civetweb's listening_ports value
    std::string error;      // set when `addr` is not usable
    std::string wake_host;  // where stop() can reach the listener
    bool wake_v6 = false;
};

Listen invalid(std::string why) {
    return {"", std::move(why), "", false};
}

// "host:port" → civetweb's listening_ports value.
Listen listening_ports(const std::string& addr) {
    auto colon = addr.rfind(':');
    if (colon == std::string::npos)
        return invalid("missing \":port\"");
    std::string host = addr.substr(0, colon);
    std::string port = addr.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
        return invalid("port must be a number from 0 to 65535");
    }
    if (host.empty() || host == "0.0.0.0") {  // all IPv4 interfaces
        return {host.empty() ? port : host + ":" + port, "", "127.0.0.1", false};
    }
    std::array<unsigned char, 16> buf{};
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        std::string v6 = host.substr(1, host.size() - 2);
        if (inet_pton(AF_INET6, v6.c_str(), buf.data()) != 1) {
            return invalid("not an IPv6 address: " + v6);
        }
        if (mg_check_feature(8) == 0)
            return invalid("civetweb was built without IPv6");
        return {host + ":" + port, "", v6 == "::" ? "::1" : v6, true};
    }
    if (inet_pton(AF_INET, host.c_str(), buf.data()) != 1) {
        return invalid("host must be an IP address (or empty for all interfaces): " + host);
    }
    return {host + ":" + port, "", host, false};
}

}  // namespace

HttpServer::HttpServer(Handlers handlers) : handlers_(std::move(handlers)) {}

HttpServer::~HttpServer() {
    stop();
}

void HttpServer::stop() {
    if (ctx_ == nullptr)
        return;
    std::atomic<bool> stopped{false};
    std::thread stopper([this, &stopped] {
        mg_stop(ctx_);
        stopped.store(true);
    });
    // A connection wakes civetweb's master thread from its 2 s poll so that it sees the stop
    // flag. One made before mg_stop set the flag is served (and closed) normally: keep trying.
    while (!stopped.load()) {
        wake_listener();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stopper.join();
    ctx_ = nullptr;
}

void HttpServer::wake_listener() const {
    // Blocking, so that the handshake completes before close (a half-open connection never
    // reaches accept()); the local peer answers at once, the timeout is a guard.
    int fd = ::socket(wake_v6_ ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    timeval guard{0, 200000};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &guard, sizeof guard);
    if (wake_v6_) {
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(static_cast<std::uint16_t>(port_));
        if (inet_pton(AF_INET6, wake_host_.c_str(), &a.sin6_addr) == 1) {
            (void)::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
        }
    } else {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(port_));
        if (inet_pton(AF_INET, wake_host_.c_str(), &a.sin_addr) == 1) {
            (void)::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
        }
    }
    ::close(fd);
}

std::variant<std::unique_ptr<HttpServer>, HttpStartError> HttpServer::start(const std::string& addr,
                                                                            Handlers handlers) {
    const Listen listen = listening_ports(addr);
    if (!listen.error.empty())
        return HttpStartError{"http addr \"" + addr + "\": " + listen.error};

    std::unique_ptr<HttpServer> server(new HttpServer(std::move(handlers)));
    const char* options[] = {
        "listening_ports", listen.ports.c_str(), "num_threads", "4",    "request_timeout_ms",
        "10000",           "enable_keep_alive",  "no",          nullptr};
    mg_callbacks callbacks{};
    callbacks.begin_request = &HttpServer::on_request;
    mg_init_data init{};
    init.callbacks = &callbacks;
    init.user_data = server.get();
    init.configuration_options = options;
    unsigned code = 0;
    std::array<char, 256> text{};
    mg_error_data error{};
    error.code = &code;
    error.text = text.data();
    error.text_buffer_size = text.size();

    server->ctx_ = mg_start2(&init, &error);
    if (server->ctx_ == nullptr) {
        std::string why = one_line(text.data());
        return HttpStartError{"http addr \"" + addr + "\": cannot listen: " +
                              (why.empty() ? "civetweb error " + std::to_string(code) : why)};
    }
    std::array<mg_server_port, 4> bound{};
    int n = mg_get_server_ports(server->ctx_, static_cast<int>(bound.size()), bound.data());
    if (n < 1 || bound[0].port <= 0) {
        return HttpStartError{"http addr \"" + addr + "\": cannot read the bound port"};
    }
    server->port_ = bound[0].port;
    server->wake_host_ = listen.wake_host;
    server->wake_v6_ = listen.wake_v6;
    return server;
}

int HttpServer::on_request(mg_connection* conn) {
    const mg_request_info* info = mg_get_request_info(conn);
    auto* self = static_cast<HttpServer*>(info->user_data);
    return self->handle(conn);
}

int HttpServer::handle(mg_connection* conn) {
    const mg_request_info* info = mg_get_request_info(conn);
    std::string_view method = info->request_method != nullptr ? info->request_method : "";
    std::string_view path = info->local_uri != nullptr ? info->local_uri : "";
    const bool head = method == "HEAD";
    if (method != "GET" && !head) {
        return respond(conn, 405, kTextContentType, "method not allowed\n", false,
                       "Allow: GET, HEAD\r\n");
    }
    try {
        if (path == "/healthz") {
            bool alive = !handlers_.liveness || handlers_.liveness();
            return alive ? respond(conn, 200, kTextContentType, "ok\n", head)
                         : respond(conn, 503, kTextContentType, "unhealthy\n", head);
        }
        if (path == "/readyz") {
            std::pair<bool, std::string> ready{false, "not ready"};
            if (handlers_.readiness)
                ready = handlers_.readiness();
            std::string body = one_line(ready.second.empty() ? (ready.first ? "ready" : "not ready")
                                                             : ready.second) +
                               "\n";
            return respond(conn, ready.first ? 200 : 503, kTextContentType, body, head);
        }
        if (path == "/metrics" && handlers_.metrics) {
            std::ostringstream out;
            prometheus::TextSerializer().Serialize(out, handlers_.metrics->Collect());
            return respond(conn, 200, kMetricsContentType, out.str(), head);
        }
    } catch (const std::exception& e) {
        return respond(conn, 500, kTextContentType, one_line(e.what()) + "\n", head);
    } catch (...) {
        return respond(conn, 500, kTextContentType, "internal error\n", head);
    }
    return respond(conn, 404, kTextContentType, "not found\n", head);
}

}  // namespace djinn::http
