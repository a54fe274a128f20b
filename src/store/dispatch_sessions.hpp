#pragma once
// The extra PostgreSQL sessions a leader dispatches on (database.dispatch_sessions K > 1): each
// batch is split by user across them and their transactions run in parallel (DispatchStore). They
// are opened when first needed, replaced when broken, and closed when their owner says so
// (dispatch::Dispatcher: at the end of a leadership). They hold no session-level lock, so they
// run without idle_session_timeout.
//
// Thread safety: the pass thread owns the set; each session is used by one thread at a time.
// Failure: ready() returns the error of a session that cannot be opened.
#include <cstddef>
#include <functional>
#include <memory>
#include <variant>
#include <vector>

#include "store/pg_connection.hpp"

namespace djinn::store {

class DispatchSessions {
  public:
    using Opener = std::function<std::variant<std::unique_ptr<PgConnection>, PgError>()>;

    // `count` sessions (at least 2: with one, batches run on the leader's own session).
    DispatchSessions(std::size_t count, Opener open);

    std::size_t count() const { return sessions_.size(); }

    // Every session open and not broken (opening or replacing those that are not).
    std::variant<std::vector<PgConnection*>, PgError> ready();

    // Closes every session.
    void close();

  private:
    Opener open_;
    std::vector<std::unique_ptr<PgConnection>> sessions_;
};

}  // namespace djinn::store
