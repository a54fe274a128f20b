#pragma once
// Crash loudly: installs the process's handler for broken invariants (djinn::fatal) and for
// std::terminate (an exception nobody caught, which containment should make impossible). Either
// writes the message to the configured log (flushed), removes the pidfile, and aborts.
//
// Thread safety: install() once at start, before other threads run; set_pidfile() from the
// main thread before the service starts.
#include <memory>
#include <string>

#include <spdlog/logger.h>

namespace djinn::app::fatal_handler {

void install(std::shared_ptr<spdlog::logger> log);
// The pidfile to remove on a crash ("" for none).
void set_pidfile(const std::string& path);

}  // namespace djinn::app::fatal_handler
