#include "app/fatal_handler.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>
#include <exception>
#include <string_view>

#include "common/fatal.hpp"

namespace djinn::app::fatal_handler {
namespace {

std::shared_ptr<spdlog::logger> g_log;  // set once before threads start
std::array<char, 4096> g_pidfile{};     // a fixed buffer: read from the crash path
std::atomic<bool> g_has_pidfile{false};

void on_fatal(std::string_view message) noexcept {
    try {
        if (g_log) {
            g_log->critical("{}; aborting", message);
            g_log->flush();
        }
    } catch (...) {
    }
    (void)::write(STDERR_FILENO, "djinn-scheduler: fatal: ", 24);
    (void)::write(STDERR_FILENO, message.data(), message.size());
    (void)::write(STDERR_FILENO, "\n", 1);
    if (g_has_pidfile.load())
        (void)::unlink(g_pidfile.data());
}

[[noreturn]] void on_terminate() noexcept {
    std::string what = "std::terminate: an exception escaped every boundary";
    try {
        if (auto e = std::current_exception()) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                what += std::string(" (") + ex.what() + ")";
            } catch (...) {
            }
        }
    } catch (...) {
    }
    djinn::fatal(what);
}

}  // namespace

void install(std::shared_ptr<spdlog::logger> log) {
    g_log = std::move(log);
    djinn::set_fatal_handler(&on_fatal);
    std::set_terminate(&on_terminate);
}

void set_pidfile(const std::string& path) {
    if (path.empty() || path.size() >= g_pidfile.size()) {
        g_has_pidfile.store(false);
        return;
    }
    std::memcpy(g_pidfile.data(), path.c_str(), path.size() + 1);
    g_has_pidfile.store(true);
}

}  // namespace djinn::app::fatal_handler
