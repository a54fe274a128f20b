// The set of dispatch sessions: a caller never waits for a login; a failed opening is said once.
// (Opening real sessions is covered by the integration tests DispatchSessions.*.)
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>

#include "store/dispatch_sessions.hpp"

namespace djinn::store {
namespace {

TEST(DispatchSessions, ReadyNeverWaitsForALoginAndOpensOneSetAtATime) {
    std::promise<void> let_go;
    std::shared_future<void> gate = let_go.get_future().share();
    std::atomic<int> logins{0};
    DispatchSessions s(2, [&, gate]() -> std::variant<std::unique_ptr<PgConnection>, PgError> {
        ++logins;
        gate.wait();  // a login held back (a pooler's PAUSE)
        return PgError{PgErrorKind::connection, "", "refused"};
    });
    EXPECT_TRUE(s.ready().empty());  // returns at once: the caller dispatches alone
    EXPECT_TRUE(s.ready().empty());
    EXPECT_FALSE(s.take_error());  // still opening
    let_go.set_value();
    s.wait_opening();
    // The opening ended with the first session's error, said once; no second opening ran.
    auto e = s.take_error();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->message, "dispatch session 1: refused");
    EXPECT_FALSE(s.take_error());
    EXPECT_EQ(logins.load(), 1);
}

TEST(DispatchSessions, AnOpeningInFlightWhenClosedIsDiscarded) {
    std::promise<void> let_go;
    std::shared_future<void> gate = let_go.get_future().share();
    DispatchSessions s(3, [gate]() -> std::variant<std::unique_ptr<PgConnection>, PgError> {
        gate.wait();
        return PgError{PgErrorKind::connection, "", "refused"};
    });
    EXPECT_TRUE(s.ready().empty());
    s.close();  // leadership ended while logging in
    let_go.set_value();
    s.wait_opening();
    EXPECT_FALSE(s.take_error()) << "the discarded opening's error was reported";
    EXPECT_TRUE(s.ready().empty());  // a new opening starts
}

}  // namespace
}  // namespace djinn::store
