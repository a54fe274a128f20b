#include "http/http_server.hpp"

#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <exception>
#include <sstream>
#include <string_view>

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
    std::string ports;  // civetweb's listening_ports value
    std::string error;  // set when `addr` is not usable
};

// "host:port" → civetweb's listening_ports value.
Listen listening_ports(const std::string& addr) {
    auto colon = addr.rfind(':');
    if (colon == std::string::npos)
        return {"", "missing \":port\""};
    std::string host = addr.substr(0, colon);
    std::string port = addr.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
        return {"", "port must be a number from 0 to 65535"};
    }
    if (host.empty())
        return {port, ""};  // all IPv4 interfaces
    std::array<unsigned char, 16> buf{};
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        std::string v6 = host.substr(1, host.size() - 2);
        if (inet_pton(AF_INET6, v6.c_str(), buf.data()) != 1) {
            return {"", "not an IPv6 address: " + v6};
        }
        if (mg_check_feature(8) == 0)
            return {"", "civetweb was built without IPv6"};
        return {host + ":" + port, ""};
    }
    if (inet_pton(AF_INET, host.c_str(), buf.data()) != 1) {
        return {"", "host must be an IP address (or empty for all interfaces): " + host};
    }
    return {host + ":" + port, ""};
}

}  // namespace

HttpServer::HttpServer(Handlers handlers) : handlers_(std::move(handlers)) {}

HttpServer::~HttpServer() {
    stop();
}

void HttpServer::stop() {
    if (ctx_ == nullptr)
        return;
    mg_stop(ctx_);
    ctx_ = nullptr;
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
