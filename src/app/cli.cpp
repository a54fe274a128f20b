#include "app/cli.hpp"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/utsname.h>

#include <cstdlib>
#include <iostream>
#include <thread>

#include "app/fatal_handler.hpp"
#include "app/flags.hpp"
#include "app/scheduler_app.hpp"
#include "common/failpoints.hpp"
#include "config/config.hpp"
#include "logging/logging.hpp"

namespace djinn::app {
namespace {

std::string platform() {
    utsname u{};
    if (uname(&u) != 0)
        return "linux";
    std::string os = u.sysname;
    for (char& c : os)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return os + "/" + u.machine;
}

// Every batch allocates and frees the same few megabytes (array literals, query results) a few
// times a second. glibc's defaults hand such blocks back to the kernel on free (mmap above a
// moving threshold, heap trimming) and page-fault them in again for the next batch; keep them.
// The peak resident size is the batch's working set either way; only what stays between batches
// changes. One arena for every thread: the planner and enqueue threads otherwise keep arenas of
// their own, each holding its own high-water mark (a 20,000-cron -once peaked at 32.8 MB RSS
// with glibc's default arenas, 29.3 MB with one; the threads' small blocks come from their
// tcaches, so the shared arena's lock is rarely taken).
void keep_batch_memory() {
    (void)mallopt(M_ARENA_MAX, 1);
    (void)mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    (void)mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
}

}  // namespace

int run_cli(int argc, char** argv) {
    keep_batch_memory();
    const std::string program = argc > 0 ? argv[0] : "djinn-scheduler";
    std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
    auto parsed = parse_flags(args);
    if (auto* e = std::get_if<FlagError>(&parsed)) {
        std::cerr << e->message << "\n" << usage(program);
        return 2;
    }
    const Flags flags = std::get<Flags>(parsed);
    if (flags.help) {
        std::cout << usage(program);
        return 0;
    }
    if (flags.version) {
        std::cout << program << " " << DJINN_VERSION << " " << platform() << "\n";
        return 0;
    }

    auto loaded = config::load_file(flags.config);
    if (!loaded.errors.empty()) {
        for (const auto& e : loaded.errors)
            std::cerr << program << ": " << e.to_string() << "\n";
        if (flags.check_config) {
            std::cerr << loaded.errors.size() << " problem(s) in " << flags.config << "\n";
        }
        return 1;
    }
    config::Config cfg = std::move(*loaded.config);
    if (flags.check_config) {
        for (const auto& w : loaded.warnings)
            std::cerr << "warning: " << w.to_string() << "\n";
        std::cout << flags.config << ": OK\n";
        return 0;
    }

    auto made = logging::make_logger(cfg.log);
    if (auto* e = std::get_if<std::string>(&made)) {
        std::cerr << program << ": " << *e << "\n";
        return 1;
    }
    auto log = std::get<std::shared_ptr<spdlog::logger>>(made);
    // From here on a broken invariant or an escaped exception ends up in the configured log.
    fatal_handler::install(log);
#ifdef DJINN_FAILPOINTS
    if (const char* spec = std::getenv("DJINN_FAILPOINTS"); spec != nullptr && *spec != '\0') {
        if (std::string err = failpoints::configure(spec); !err.empty()) {
            log->error("DJINN_FAILPOINTS: {}", err);
            return 2;
        }
        log->warn("failpoints armed (a test build): {}", spec);
    }
#endif
    for (const auto& w : loaded.warnings)
        log->warn("config: {}", w.to_string());
    log->info("{}", config::describe(cfg));

    // Signals are taken by one thread with sigwait; every other thread blocks them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR2);  // internal: wakes the signal thread at exit
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);

    SystemClock clock;
    SchedulerApp app(cfg, log, clock);
    std::thread signals([&] {
        int sig = 0;
        while (sigwait(&set, &sig) == 0) {
            if (sig == SIGUSR2)
                return;
            log->info("signal {} received, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            app.request_stop();
        }
    });
    int rc = flags.once ? app.run_once(flags.dry_run) : app.run();
    pthread_kill(signals.native_handle(), SIGUSR2);
    signals.join();
    log->flush();
    return rc;
}

}  // namespace djinn::app
