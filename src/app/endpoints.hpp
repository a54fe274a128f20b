#pragma once
// How the config becomes connection settings: the PostgreSQL session's options and the Redis
// endpoint, both bounded by leader.lock_timeout (a leader must not idle its lock session past it
// while it talks to Redis or waits on a statement).
#include <chrono>

#include "config/config.hpp"
#include "queue/build_queue.hpp"
#include "store/pg_connection.hpp"

namespace djinn::app {

store::SessionOptions session_options(const config::Config& c);
queue::RedisEndpoint redis_endpoint(const config::Config& c);

// Enqueue runs between transactions, with the lock session idle: its whole retry budget
// (3 attempts, 200 + 400 ms backoff) must stay well inside lock_timeout, the session's
// idle_session_timeout, or a hung Redis costs the leader its lock. lock_timeout/8 per network
// wait gives 3 x lock_timeout/8 + 0.6 s: 4.35 s of the default 10 s, 2.1 s of 4 s.
std::chrono::milliseconds redis_timeout(std::chrono::milliseconds lock_timeout);

}  // namespace djinn::app
