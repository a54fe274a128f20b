// Liveness and readiness of the app, driven by an injected clock (no services, no sleeps).
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "app/flags.hpp"
#include "app/scheduler_app.hpp"

namespace djinn::app {
namespace {

using namespace std::chrono_literals;

TEST(SchedulerAppHealth, LiveUntilTheLoopStopsBeatingThenNot) {
    ManualClock clock(TimePoint(std::chrono::seconds(1'800'000'000)));
    auto log =
        std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::null_sink_mt>());
    SchedulerApp app(config::Config{}, log, clock);
    EXPECT_TRUE(app.live());
    clock.advance(119s);
    EXPECT_TRUE(app.live());
    clock.advance(2s);  // no progress for more than 2 minutes: stuck
    EXPECT_FALSE(app.live());
}

TEST(SchedulerAppHealth, NotReadyBeforeStartAndWhileStopping) {
    ManualClock clock(TimePoint(std::chrono::seconds(1'800'000'000)));
    auto log =
        std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::null_sink_mt>());
    SchedulerApp app(config::Config{}, log, clock);
    auto [ready, why] = app.ready();
    EXPECT_FALSE(ready);
    EXPECT_EQ(why, "starting");
    app.request_stop();
    auto [ready2, why2] = app.ready();
    EXPECT_FALSE(ready2);
    EXPECT_EQ(why2, "stopping");
}

TEST(Flags, GoStyleFlags) {
    auto f = std::get<Flags>(parse_flags({"--config=/etc/d.yaml", "-once", "-dry-run"}));
    EXPECT_EQ(f.config, "/etc/d.yaml");
    EXPECT_TRUE(f.once);
    EXPECT_TRUE(f.dry_run);
    auto g = std::get<Flags>(parse_flags({"-config", "x.conf", "--check-config"}));
    EXPECT_EQ(g.config, "x.conf");
    EXPECT_TRUE(g.check_config);
    EXPECT_EQ(std::get<Flags>(parse_flags({})).config, "djinn-scheduler.conf");
    EXPECT_TRUE(std::get<Flags>(parse_flags({"-version"})).version);
    EXPECT_EQ(std::get<FlagError>(parse_flags({"-dry-run"})).message, "-dry-run needs -once");
    EXPECT_EQ(std::get<FlagError>(parse_flags({"-bogus"})).message,
              "flag provided but not defined: -bogus");
    EXPECT_EQ(std::get<FlagError>(parse_flags({"-config"})).message,
              "flag needs an argument: -config");
    EXPECT_EQ(std::get<FlagError>(parse_flags({"-once=maybe"})).message,
              "invalid boolean value \"maybe\" for flag -once");
}

}  // namespace
}  // namespace djinn::app
