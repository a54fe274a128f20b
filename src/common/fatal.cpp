#include "common/fatal.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace djinn {
namespace {

std::atomic<FatalHandler> g_handler{nullptr};
std::atomic<bool> g_dying{false};

}  // namespace

void set_fatal_handler(FatalHandler handler) noexcept {
    g_handler.store(handler);
}

void fatal(std::string_view message) noexcept {
    if (!g_dying.exchange(true)) {
        if (FatalHandler h = g_handler.load())
            h(message);
        else
            std::fprintf(stderr, "fatal: %.*s\n", static_cast<int>(message.size()), message.data());
    }
    std::abort();
}

void invariant_failed(const char* condition, std::string_view what, const char* file,
                      int line) noexcept {
    std::string m;
    try {
        m = "broken invariant (a bug of djinn-scheduler): " + std::string(what) + " [" + condition +
            " at " + file + ":" + std::to_string(line) + "]";
    } catch (...) {
        fatal("broken invariant (a bug of djinn-scheduler), and no memory to describe it");
    }
    fatal(m);
}

}  // namespace djinn
