#include "app/endpoints.hpp"

#include <algorithm>
#include <cstdlib>

namespace djinn::app {

std::chrono::milliseconds redis_timeout(std::chrono::milliseconds lock_timeout) {
    return std::clamp<std::chrono::milliseconds>(lock_timeout / 8, std::chrono::milliseconds(100),
                                                 std::chrono::milliseconds(2000));
}

queue::RedisEndpoint redis_endpoint(const config::Config& c) {
    const config::RedisConfig& r = c.redis;
    queue::RedisEndpoint e;
    auto colon = r.addr.rfind(':');
    e.host = colon == std::string::npos ? r.addr : r.addr.substr(0, colon);
    if (colon != std::string::npos)
        e.port = std::atoi(r.addr.c_str() + colon + 1);
    if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']')
        e.host = e.host.substr(1, e.host.size() - 2);
    if (e.host.empty())
        e.host = "127.0.0.1";
    e.password = r.password;
    e.timeout = redis_timeout(c.leader.lock_timeout);
    return e;
}

store::SessionOptions session_options(const config::Config& c) {
    store::SessionOptions o;
    o.idle_session_timeout = c.leader.lock_timeout;
    o.idle_in_transaction_timeout = c.leader.lock_timeout;
    // A leader must notice a dead network before the server can give its lock away: its next
    // heartbeat comes within lock_timeout/4 (a Redis ping of at most lock_timeout/8 may come
    // first) and hangs at most tcp_user_timeout, so it steps down within 7/8 of lock_timeout,
    // before any standby can lead (the server ends the silent session at lock_timeout).
    o.tcp_user_timeout = std::max<std::chrono::milliseconds>(c.leader.lock_timeout / 2,
                                                             std::chrono::milliseconds(500));
    o.statement_timeout = c.database.statement_timeout;
    return o;
}

}  // namespace djinn::app
