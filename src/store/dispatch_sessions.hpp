#pragma once
// The extra PostgreSQL sessions a leader dispatches on (database.dispatch_sessions K > 1): each
// batch is split by user across them and their transactions run in parallel (DispatchStore).
//
// They only speed a burst up, so waiting for them never holds one back: ready() hands them out
// only when all K are open; otherwise it starts opening a new set on a thread of its own (a login
// can wait for seconds: a pooler's PAUSE holds new logins back, a server may be slow to accept)
// and the caller dispatches on its own session meanwhile. The set is kept between passes and
// closed by its owner (dispatch::Dispatcher: when leadership ends). The sessions hold no
// session-level lock, so they run without idle_session_timeout.
//
// Thread safety: one owner thread calls every member; only the opening runs on a thread of its
// own, and hands its sessions over through a future. Failure: the last opening's error comes
// back once from take_error().
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <variant>
#include <vector>

#include "store/pg_connection.hpp"

namespace djinn::store {

class DispatchSessions {
  public:
    // Must be callable from another thread.
    using Opener = std::function<std::variant<std::unique_ptr<PgConnection>, PgError>()>;

    // `count` sessions (at least 2: with one, batches run on the leader's own session).
    DispatchSessions(std::size_t count, Opener open);
    ~DispatchSessions();  // waits for an opening in flight (each login is bounded)
    DispatchSessions(const DispatchSessions&) = delete;
    DispatchSessions& operator=(const DispatchSessions&) = delete;

    // All K sessions, open and none known broken; or none (then a new set is being opened).
    std::vector<PgConnection*> ready();

    // Pings every open session (between passes): a dead one is marked broken, and the next
    // ready() opens a new set.
    void ping();

    // Why the last opening failed, once.
    std::optional<PgError> take_error();

    // Closes every session; an opening in flight is discarded when it ends.
    void close();

    // Waits for an opening in flight to end (at shutdown; tests).
    void wait_opening();

  private:
    using Opened = std::variant<std::vector<std::unique_ptr<PgConnection>>, PgError>;
    void collect();  // takes the result of a finished opening

    std::size_t count_;
    Opener open_;
    std::vector<std::unique_ptr<PgConnection>> sessions_;
    std::future<Opened> opening_;
    bool discard_ = false;  // close() was called while opening_ ran
    std::optional<PgError> error_;
};

}  // namespace djinn::store
