// The service loop's state machine, walked transition by transition with fakes for every port,
// in simulated time: waits advance a ManualClock instead of sleeping.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <deque>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>

#include "common/clock.hpp"
#include "common/progress.hpp"
#include "service/service_loop.hpp"

namespace djinn::service {
namespace {

using namespace std::chrono_literals;

struct FakeDb final : Database {
    std::deque<std::string> open_results;  // front first; empty: success
    Check check_result;
    std::deque<Lock> acquire_results;       // empty: held
    std::deque<Lock> verify_results;        // empty: held
    std::function<void(const char*)> hook;  // called at the start of every call (may throw)
    bool open_session = false;
    bool broken = false;
    int opens = 0, closes = 0, checks = 0, acquires = 0, verifies = 0, releases = 0;

    void call(const char* what) {
        if (hook)
            hook(what);
    }
    Check open() override {
        call("open");
        ++opens;
        std::string r;
        if (!open_results.empty()) {
            r = open_results.front();
            open_results.pop_front();
        }
        open_session = r.empty();
        broken = false;
        if (r.empty())
            return {};
        return {false, r == "pooler" ? "pooler" : "database_connection", r};
    }
    void close() override {
        call("close");
        ++closes;
        open_session = false;
    }
    bool usable() const override { return open_session && !broken; }
    Check check() override {
        call("check");
        ++checks;
        return check_result;
    }
    Lock try_acquire() override {
        call("acquire");
        ++acquires;
        if (acquire_results.empty())
            return Lock::held;
        Lock r = acquire_results.front();
        acquire_results.pop_front();
        return r;
    }
    Lock verify() override {
        call("verify");
        ++verifies;
        if (verify_results.empty())
            return Lock::held;
        Lock r = verify_results.front();
        verify_results.pop_front();
        return r;
    }
    bool release() override {
        call("release");
        ++releases;
        return true;
    }
    std::string last_error() const override { return "fake error"; }
};

struct FakeQueue final : QueueProbe {
    bool ok = true;
    int pings = 0;
    bool ping() override {
        ++pings;
        return ok;
    }
};

struct FakePasses final : PassRunner {
    std::vector<TimePoint> runs;  // wall time of each pass
    std::function<PassOutcome()> next;
    int recoveries = 0;
    const Clock* clock = nullptr;
    std::chrono::microseconds takes{0};  // simulated duration of a pass
    ManualClock* manual = nullptr;
    PassOutcome run(const std::atomic<bool>&) override {
        runs.push_back(clock->now());
        if (manual != nullptr)
            manual->advance(takes);
        return next ? next() : PassOutcome{};
    }
    void request_recovery() override { ++recoveries; }
};

// Waits are simulated: the clock moves by the wait, nothing sleeps.
struct SimWaiter final : Waiter {
    explicit SimWaiter(ManualClock& c) : clock(c) {}
    ManualClock& clock;
    std::atomic<bool> stop_{false};
    std::vector<std::chrono::milliseconds> waits;
    bool wait_for(std::chrono::milliseconds d) override {
        waits.push_back(d);
        clock.advance(d);
        return !stop_.load();
    }
    void stop() override { stop_.store(true); }
    const std::atomic<bool>& stopping() const override { return stop_; }
};

struct FakeObserver final : LoopObserver {
    std::vector<bool> leadership_changes;
    std::map<std::string, int> errors;
    void leadership(bool l) override { leadership_changes.push_back(l); }
    void error(const std::string& kind) override { ++errors[kind]; }
};

class ServiceLoopTest : public ::testing::Test {
  protected:
    ServiceLoopTest()
        : clock(TimePoint(std::chrono::seconds(1'800'000'030))),  // hh:mm:30
          waiter(clock),
          progress(clock),
          log(std::make_shared<spdlog::logger>(
              "t", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text))) {
        passes.clock = &clock;
        passes.manual = &clock;
        options.interval = 60s;
        options.retry_interval = 2s;
        options.heartbeat = 3s;
        options.redis_ping_every = 5s;
        options.max_wait = 1s;
        log->set_pattern("%l %v");
        loop = std::make_unique<ServiceLoop>(options, db, queue, passes, waiter, clock, progress,
                                             observer, log);
    }

    // Steps until `pred` holds (at most `max` steps); false if it never did.
    bool step_until(const std::function<bool()>& pred, int max = 1000) {
        for (int i = 0; i < max; ++i) {
            if (pred())
                return true;
            loop->step();
        }
        return pred();
    }
    void lead() {
        ASSERT_TRUE(step_until([&] { return loop->state() == State::leading; }));
    }
    int count_in_log(const std::string& needle) const {
        const std::string text = log_text.str();
        int n = 0;
        for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
            ++n;
        return n;
    }

    ManualClock clock;
    SimWaiter waiter;
    Progress progress;
    std::ostringstream log_text;
    std::shared_ptr<spdlog::logger> log;
    FakeDb db;
    FakeQueue queue;
    FakePasses passes;
    FakeObserver observer;
    LoopOptions options;
    std::unique_ptr<ServiceLoop> loop;
};

TEST_F(ServiceLoopTest, HealthyStartConnectsChecksCompetesLeadsAndPassesAtOnce) {
    EXPECT_EQ(loop->state(), State::connecting);
    EXPECT_FALSE(loop->ready().first);
    loop->step();
    EXPECT_EQ(loop->state(), State::checking);
    EXPECT_EQ(db.opens, 1);
    EXPECT_FALSE(loop->ready().first);
    loop->step();
    EXPECT_EQ(loop->state(), State::competing);
    EXPECT_EQ(db.checks, 1);
    EXPECT_EQ(loop->ready(), std::make_pair(true, std::string("ready (standby)")));
    loop->step();
    EXPECT_EQ(loop->state(), State::leading);
    EXPECT_EQ(loop->ready(), std::make_pair(true, std::string("ready (leader)")));
    EXPECT_EQ(observer.leadership_changes, std::vector<bool>{true});
    EXPECT_EQ(passes.recoveries, 1);  // a new leader re-offers committed builds first
    EXPECT_TRUE(passes.runs.empty());
    loop->step();  // the previous leader may have died mid-pass: catch up at once
    ASSERT_EQ(passes.runs.size(), 1u);
    EXPECT_EQ(passes.runs[0], TimePoint(std::chrono::seconds(1'800'000'030)));
}

TEST_F(ServiceLoopTest, OpenFailureRetriesEveryRetryIntervalLoggingOnceCountingEach) {
    db.open_results = {"refused", "refused", "refused"};
    for (int i = 0; i < 3; ++i) {
        loop->step();
        EXPECT_EQ(loop->state(), State::connecting);
        EXPECT_EQ(waiter.waits.back(), 1s);  // a retry wait, in chunks of max_wait at most
    }
    EXPECT_EQ(db.opens, 3);
    EXPECT_EQ(observer.errors["database_connection"], 3);
    EXPECT_EQ(count_in_log("cannot connect to PostgreSQL: refused"), 1);
    EXPECT_EQ(loop->ready(),
              std::make_pair(false, std::string("cannot connect to PostgreSQL: refused")));
    loop->step();
    EXPECT_EQ(loop->state(), State::checking);
}

TEST_F(ServiceLoopTest, CheckFailureClosesTheSessionAndIsNotReadyWithItsReason) {
    db.check_result = {false, "read_only", "PostgreSQL is read-only (in recovery)"};
    loop->step();
    loop->step();
    EXPECT_EQ(loop->state(), State::connecting);
    EXPECT_EQ(db.closes, 1);
    EXPECT_EQ(observer.errors["read_only"], 1);
    EXPECT_EQ(loop->ready(),
              std::make_pair(false, std::string("PostgreSQL is read-only (in recovery)")));
    // The reason stays while it reconnects, and is logged once however often it repeats.
    loop->step();
    EXPECT_EQ(loop->state(), State::checking);
    loop->step();
    EXPECT_EQ(count_in_log("PostgreSQL is read-only (in recovery)"), 1);
    EXPECT_EQ(db.acquires, 0);  // never competes on such a session
    db.check_result = {};
    ASSERT_TRUE(step_until([&] { return loop->state() == State::competing; }));
    EXPECT_TRUE(loop->ready().first);
}

TEST_F(ServiceLoopTest, StandbyRetriesWhileAnotherHoldsTheLock) {
    db.acquire_results = {Database::Lock::not_held, Database::Lock::not_held};
    loop->step();
    loop->step();
    loop->step();
    EXPECT_EQ(loop->state(), State::competing);
    EXPECT_EQ(loop->ready(), std::make_pair(true, std::string("ready (standby)")));
    loop->step();
    EXPECT_EQ(loop->state(), State::competing);
    EXPECT_EQ(db.acquires, 2);
    loop->step();
    EXPECT_EQ(loop->state(), State::leading);
}

TEST_F(ServiceLoopTest, LockErrorOnALiveSessionRetriesOnABrokenOneReconnects) {
    db.acquire_results = {Database::Lock::error};
    loop->step();
    loop->step();
    loop->step();
    EXPECT_EQ(loop->state(), State::competing);
    EXPECT_EQ(observer.errors["leader_lock"], 1);
    db.acquire_results = {Database::Lock::error};
    db.hook = [&](const char* what) {
        if (std::string(what) == "acquire")
            db.broken = true;
    };
    loop->step();
    EXPECT_EQ(loop->state(), State::connecting);
    EXPECT_EQ(db.closes, 1);
    EXPECT_FALSE(loop->ready().first);
}

TEST_F(ServiceLoopTest, LeaderVerifiesEveryHeartbeatOnTheMonotonicClock) {
    lead();
    loop->step();  // catch-up pass
    const int before = db.verifies;
    const MonoTime start = clock.monotonic();
    ASSERT_TRUE(step_until([&] { return db.verifies == before + 3; }));
    const auto elapsed = clock.monotonic() - start;
    EXPECT_GE(elapsed, 9s);
    EXPECT_LT(elapsed, 10s);
    EXPECT_EQ(loop->state(), State::leading);
}

TEST_F(ServiceLoopTest, LockNoLongerHeldStepsDownToAFreshSession) {
    lead();
    db.verify_results = {Database::Lock::not_held};
    ASSERT_TRUE(step_until([&] { return loop->state() != State::leading; }));
    EXPECT_EQ(loop->state(), State::connecting);
    EXPECT_EQ(observer.leadership_changes, (std::vector<bool>{true, false}));
    EXPECT_EQ(db.closes, 1);
    EXPECT_EQ(count_in_log("leadership lost: the lock is no longer held"), 1);
    EXPECT_FALSE(loop->ready().first);
}

TEST_F(ServiceLoopTest, VerifyErrorStepsDownAndCounts) {
    lead();
    db.verify_results = {Database::Lock::error};
    ASSERT_TRUE(step_until([&] { return loop->state() != State::leading; }));
    EXPECT_EQ(loop->state(), State::connecting);
    EXPECT_EQ(observer.errors["leader_lock"], 1);
}

TEST_F(ServiceLoopTest, BrokenSessionStepsDown) {
    lead();
    db.broken = true;
    loop->step();
    EXPECT_EQ(loop->state(), State::connecting);
    EXPECT_EQ(observer.leadership_changes, (std::vector<bool>{true, false}));
}

TEST_F(ServiceLoopTest, PassThatLostItsSessionStepsDown) {
    passes.next = [] { return PassOutcome{false, true, false}; };
    lead();
    loop->step();
    EXPECT_EQ(passes.runs.size(), 1u);
    EXPECT_EQ(loop->state(), State::connecting);
    EXPECT_EQ(count_in_log("database session lost during the pass"), 1);
}

TEST_F(ServiceLoopTest, FailedPassKeepsLeadingAndTheNextTickRetries) {
    passes.next = [] { return PassOutcome{false, false, false}; };
    lead();
    loop->step();
    EXPECT_EQ(loop->state(), State::leading);
    ASSERT_TRUE(step_until([&] { return passes.runs.size() == 2; }));
    EXPECT_EQ(passes.runs[1], TimePoint(std::chrono::seconds(1'800'000'060)));  // next :00
}

TEST_F(ServiceLoopTest, InternalPassErrorChecksTheLockAtOnce) {
    passes.next = [] { return PassOutcome{false, false, true}; };
    lead();
    const int before = db.verifies;
    loop->step();  // the pass
    loop->step();  // a verify at once, not a heartbeat later
    EXPECT_EQ(db.verifies, before + 1);
    EXPECT_EQ(loop->state(), State::leading);
}

TEST_F(ServiceLoopTest, PassesRunOnWallClockBoundaries) {
    lead();
    ASSERT_TRUE(step_until([&] { return passes.runs.size() == 4; }));
    // 1'800'000'030 is hh:mm:30; the boundaries of 60 s are at 1'800'000'000 + k*60.
    EXPECT_EQ(passes.runs[1], TimePoint(std::chrono::seconds(1'800'000'060)));
    EXPECT_EQ(passes.runs[2], TimePoint(std::chrono::seconds(1'800'000'120)));
    EXPECT_EQ(passes.runs[3], TimePoint(std::chrono::seconds(1'800'000'180)));
}

TEST_F(ServiceLoopTest, LongPassIsFollowedByTheNextBoundaryNotABacklogOfTicks) {
    passes.takes = 150s;  // two and a half intervals
    lead();
    ASSERT_TRUE(step_until([&] { return passes.runs.size() == 3; }));
    // The pass at :30 ends at +150 s (1'800'000'180): the next one is at the boundary after.
    EXPECT_EQ(passes.runs[1], TimePoint(std::chrono::seconds(1'800'000'240)));
}

TEST_F(ServiceLoopTest, WallClockStepBackwardsChangesOnlyTheTickSchedule) {
    lead();
    ASSERT_TRUE(step_until([&] { return passes.runs.size() == 2; }));  // at 1'800'000'060
    const int verifies = db.verifies;
    const MonoTime mono_start = clock.monotonic();
    clock.step_wall(-1h);
    ASSERT_TRUE(step_until([&] { return passes.runs.size() == 4; }));
    // Without the step detection the next pass would wait an hour; it comes at the next
    // boundary of the new time instead, then every interval.
    EXPECT_EQ(passes.runs[2], TimePoint(std::chrono::seconds(1'800'000'120 - 3600)));
    EXPECT_EQ(passes.runs[3], TimePoint(std::chrono::seconds(1'800'000'180 - 3600)));
    EXPECT_LE(clock.monotonic() - mono_start, 121s);
    // Verify kept its pace (every 3 s of monotonic time), leadership never changed.
    EXPECT_GE(db.verifies - verifies, 35);
    EXPECT_EQ(loop->state(), State::leading);
    EXPECT_EQ(observer.leadership_changes, std::vector<bool>{true});
}

TEST_F(ServiceLoopTest, WallClockStepForwardsRunsAPassAtOnceAndKeepsTheHeartbeat) {
    lead();
    ASSERT_TRUE(step_until([&] { return passes.runs.size() == 2; }));  // at 1'800'000'060
    const MonoTime mono_start = clock.monotonic();
    const int verifies = db.verifies;
    clock.step_wall(1h);
    ASSERT_TRUE(step_until([&] { return passes.runs.size() == 3; }));
    EXPECT_LT(clock.monotonic() - mono_start, 2s);  // at once: it is past the next boundary
    ASSERT_TRUE(step_until([&] { return passes.runs.size() == 4; }));
    EXPECT_EQ(passes.runs[3], TimePoint(std::chrono::seconds(1'800'000'120 + 3600)));
    EXPECT_LE(clock.monotonic() - mono_start, 61s);
    EXPECT_GE(db.verifies - verifies, 15);  // every 3 s of real time, as before the step
    EXPECT_EQ(observer.leadership_changes, std::vector<bool>{true});
}

TEST_F(ServiceLoopTest, ExceptionsFromEveryPortAreContainedAndTheLoopGoesOn) {
    for (const char* port : {"open", "check", "acquire", "verify"}) {
        SCOPED_TRACE(port);
        bool thrown = false;
        db.hook = [&, port](const char* what) {
            if (!thrown && std::string(what) == port) {
                thrown = true;
                throw std::logic_error(std::string("injected in ") + port);
            }
        };
        const int internal = observer.errors["internal"];
        if (std::string(port) != "verify")
            db.broken = true;  // a new session: open, check and acquire run again
        ASSERT_TRUE(step_until([&] { return thrown; }));
        EXPECT_EQ(observer.errors["internal"], internal + 1);
        EXPECT_EQ(count_in_log(std::string("injected in ") + port), 1);
        EXPECT_NE(loop->state(), State::leading);  // a fresh session is opened after it
        ASSERT_TRUE(step_until([&] { return loop->state() == State::leading; }));
        db.hook = nullptr;
        ASSERT_TRUE(step_until([&] { return db.verifies > 0; }));
    }
    // A pass runner that breaks its promise not to throw; and something that is not an
    // exception type of the standard library.
    bool thrown = false;
    passes.next = [&]() -> PassOutcome {
        if (!thrown) {
            thrown = true;
            throw 7;
        }
        return {};
    };
    const auto runs = passes.runs.size();
    ASSERT_TRUE(step_until([&] { return thrown; }));
    EXPECT_EQ(count_in_log("an exception that is not a std::exception"), 1);
    ASSERT_TRUE(step_until([&] { return passes.runs.size() > runs + 1; }));
    EXPECT_EQ(loop->state(), State::leading);
}

TEST_F(ServiceLoopTest, RedisUnreachableIsNotReadyAndPingsEveryFiveSeconds) {
    queue.ok = false;
    lead();
    EXPECT_EQ(loop->ready(), std::make_pair(false, std::string("Redis unreachable")));
    const int pings = queue.pings;
    const MonoTime start = clock.monotonic();
    ASSERT_TRUE(step_until([&] { return queue.pings == pings + 2; }));
    EXPECT_GE(clock.monotonic() - start, 10s);
    queue.ok = true;
    ASSERT_TRUE(step_until([&] { return loop->ready().first; }));
    EXPECT_EQ(count_in_log("Redis reachable again"), 1);
}

TEST_F(ServiceLoopTest, ProgressBeatsAtEveryStepAndNoWaitIsLongerThanMaxWait) {
    lead();
    for (int i = 0; i < 200; ++i) {
        loop->step();
        EXPECT_LE(progress.since_last(), 1s);
    }
    for (auto w : waiter.waits)
        EXPECT_LE(w, 1s);
}

TEST_F(ServiceLoopTest, StopReleasesTheLeadersLockAndClosesTheSession) {
    lead();
    waiter.stop();
    EXPECT_EQ(loop->ready(), std::make_pair(false, std::string("stopping")));
    loop->run();  // returns at once: stop was requested
    EXPECT_EQ(loop->state(), State::stopped);
    EXPECT_EQ(db.releases, 1);
    EXPECT_FALSE(db.open_session);
    EXPECT_EQ(observer.leadership_changes, (std::vector<bool>{true, false}));
}

TEST_F(ServiceLoopTest, StopOfAStandbyReleasesNothing) {
    db.acquire_results = {Database::Lock::not_held};
    loop->step();
    loop->step();
    loop->step();
    ASSERT_EQ(loop->state(), State::competing);
    waiter.stop();
    loop->run();
    EXPECT_EQ(db.releases, 0);
    EXPECT_EQ(loop->state(), State::stopped);
    EXPECT_TRUE(observer.leadership_changes.empty());
}

TEST(TickSchedule, BoundariesAreWallClockMultiplesOfTheInterval) {
    using std::chrono::seconds;
    EXPECT_EQ(TickSchedule::boundary_after(TimePoint(seconds(125)), seconds(60)),
              TimePoint(seconds(180)));
    EXPECT_EQ(TickSchedule::boundary_after(TimePoint(seconds(120)), seconds(60)),
              TimePoint(seconds(180)));  // strictly after
    EXPECT_EQ(TickSchedule::boundary_after(TimePoint(seconds(-30)), seconds(60)),
              TimePoint(seconds(0)));
}

TEST(TickSchedule, SmallBackwardJitterIsNotAStep) {
    ManualClock clock(TimePoint(std::chrono::seconds(1000)));
    TickSchedule t(60s);
    t.passed(clock.now(), clock.monotonic());
    EXPECT_EQ(t.next(), TimePoint(std::chrono::seconds(1020)));
    clock.advance(10s);
    clock.step_wall(-500ms);
    EXPECT_FALSE(t.due(clock.now(), clock.monotonic()));
    EXPECT_EQ(t.next(), TimePoint(std::chrono::seconds(1020)));
}

}  // namespace
}  // namespace djinn::service
