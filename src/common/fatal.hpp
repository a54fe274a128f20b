#pragma once
// Broken invariants of our own: the only reason the process may die. They crash loudly: the
// handler the app installs writes the message to the configured log and removes the pidfile,
// then the process aborts (a core dump where the system keeps them). Everything that comes from
// data or the environment is an error value or an exception caught at a loop boundary instead.
//
// Thread safety: set_fatal_handler() once at start, before other threads run; fatal() from any
// thread. Failure: fatal() never returns.
#include <string_view>

namespace djinn {

// Must not throw; called at most once per process (a second fatal() while the first runs
// aborts at once).
using FatalHandler = void (*)(std::string_view message) noexcept;

void set_fatal_handler(FatalHandler handler) noexcept;

[[noreturn]] void fatal(std::string_view message) noexcept;

[[noreturn]] void invariant_failed(const char* condition, std::string_view what, const char* file,
                                   int line) noexcept;

}  // namespace djinn

// DJINN_INVARIANT(cond, what): `cond` must hold unless this program has a bug.
#define DJINN_INVARIANT(cond, what)                                       \
    do {                                                                  \
        if (!(cond))                                                      \
            ::djinn::invariant_failed(#cond, (what), __FILE__, __LINE__); \
    } while (false)
