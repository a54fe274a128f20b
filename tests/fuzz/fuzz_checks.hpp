#pragma once
// Invariants shared by the config fuzz targets: a loaded Config is consistent, errors render,
// and the start-up description never carries a secret.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config/config.hpp"

namespace djinn::fuzz {

[[noreturn]] inline void invariant_failed(const char* what) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
}

// `secret` must not appear in `text` unless it also appears in `innocent` (the other,
// non-secret fields: then a match proves nothing).
inline void expect_not_leaked(const std::string& secret, const std::string& text,
                              const std::string& innocent, const char* what) {
    if (secret.size() < 4 || innocent.find(secret) != std::string::npos)
        return;
    if (text.find(secret) != std::string::npos)
        invariant_failed(what);
}

inline void check_result(const config::LoadResult& r) {
    for (const auto& e : r.errors)
        (void)e.to_string();
    for (const auto& w : r.warnings)
        (void)w.to_string();
    if (r.config.has_value() != r.errors.empty()) {
        invariant_failed("config set if and only if there are no errors");
    }
    if (!r.config)
        return;
    const config::Config& c = *r.config;
    if (c.interval.count() <= 0)
        invariant_failed("interval must be positive");
    if (c.batch_size < 1)
        invariant_failed("batch_size must be positive");
    const std::string text = config::describe(c);
    std::string innocent = c.source + "\n" + c.pidfile + "\n" + c.log.file + "\n" +
                           c.database.addr + "\n" + c.database.name + "\n" + c.database.username +
                           "\n" + c.redis.addr + "\n" + c.http.addr + "\n" +
                           std::to_string(c.batch_size) + "\n" + std::to_string(c.leader.lock_key);
    if (c.database.tls) {
        innocent +=
            "\n" + c.database.tls->ca + "\n" + c.database.tls->cert + "\n" + c.database.tls->key;
    }
    for (const auto& d : c.drivers)
        innocent += "\n" + d;
    auto leaks = [&](const std::string& secret) {
        // describe() prints words and numbers of its own: a short secret made of them is not
        // distinctive enough to tell a leak.
        if (secret.find_first_not_of("abcdefghijklmnopqrstuvwxyz ,:=()/._-0123456789") ==
                std::string::npos &&
            secret.size() < 12) {
            return;
        }
        expect_not_leaked(secret, text, innocent, "describe() prints a secret");
    };
    leaks(c.database.password);
    leaks(c.redis.password);
    leaks(c.crypto_salt);
}

}  // namespace djinn::fuzz
