#pragma once
// Leader election on a PostgreSQL session-level advisory lock.
//
// The lock lives on a PgConnection that the caller owns and on which the app also runs its
// dispatch transactions. That is the fencing: the lock and the commits share one server
// session, so when the session ends (backend terminated, server restart, network loss, idle
// timeout) the lock is released AND no later commit can happen on it; PgConnection never
// reconnects behind our back, it marks itself broken(). A replica that sees broken() or a
// false verify() has lost leadership: it stops dispatching, drops the PgConnection, opens a
// new one and competes again.
//
// Bound on a frozen or partitioned leader. The app opens the lock session with
//   SessionOptions{.idle_session_timeout = lock_timeout,
//                  .idle_in_transaction_timeout = lock_timeout,
//                  .tcp_user_timeout = lock_timeout / 2}
// and calls verify() (a heartbeat query) every lock_timeout / 4 when it has nothing else to
// run on the session. Then:
//   - server side: a leader that stops talking (process frozen, SIGSTOP, VM paused, network
//     partition) leaves its session idle, and the server itself ends the session after
//     lock_timeout of silence (idle_session_timeout, PostgreSQL >= 14; or after lock_timeout
//     idle inside a transaction), which releases the lock. A standby that retries every
//     retry_interval leads at most lock_timeout + retry_interval after the leader's last
//     statement. A leader that wakes up later finds its session gone: it cannot commit.
//   - client side: a leader whose server went away notices at its next statement; TCP
//     keepalives and tcp_user_timeout bound how long that statement can hang on a dead peer,
//     so it steps down within heartbeat interval + a Redis ping (lock_timeout / 8) +
//     tcp_user_timeout = 7/8 of lock_timeout: before the server can hand the lock to a standby.
//   Not bounded by these settings: one statement that runs for a long time while the client is
//   alive (the session is active, not idle); the app bounds those with statement_timeout.
//
// Advisory locks are per database: every replica must connect to the same database.
// Key: pg_try_advisory_lock(bigint). pg_locks shows a bigint key as classid = high 32 bits,
// objid = low 32 bits (both unsigned), objsubid = 1.
//
// Thread safety: none (like the PgConnection it runs on); one thread uses a LeaderLock.
// Failure: nothing throws; database errors come back as values (AcquireResult::error, false)
// and last_error() describes the latest one.
#include <cstdint>
#include <optional>
#include <string>

#include "store/advisory_lock.hpp"
#include "store/pg_connection.hpp"

namespace djinn::leader {

class LeaderLock {
  public:
    enum class AcquireResult {
        acquired,       // this session holds the lock (now or already)
        held_by_other,  // another session holds it
        error,          // the query failed; see last_error() (broken() if the session is gone)
    };

    using PgLockId = store::PgLockId;

    explicit LeaderLock(std::int64_t key) : key_(key) {}

    std::int64_t key() const { return key_; }

    // How pg_locks shows this key.
    static PgLockId pg_lock_id(std::int64_t key) { return store::pg_lock_id(key); }

    // pg_try_advisory_lock(key) unless this session already holds it (session locks stack;
    // taking it twice would need two unlocks). Never blocks on the lock.
    AcquireResult try_acquire(store::PgConnection& session);

    // Heartbeat: true only if this session is alive and still holds the lock (pg_locks, granted,
    // pid = pg_backend_pid()). False on any error.
    bool verify(store::PgConnection& session);

    // pg_advisory_unlock(key). True if this session held the lock and released it. On a broken
    // session there is nothing to do: the server released the lock when the session ended.
    bool release(store::PgConnection& session);

    // The server process holding the lock now (any session), if one does.
    std::optional<int> holder(store::PgConnection& session);

    // Ends the server process `pid` (pg_terminate_backend: allowed for the scheduler's own role).
    // For a lock left on a pooled server connection that no client session owns any more.
    bool terminate(store::PgConnection& session, int pid);

    // The error of the latest failed call, cleared by the next successful one.
    const std::optional<store::PgError>& last_error() const { return last_error_; }

  private:
    // Runs a one-row boolean query with $1 = key, $2/$3 = its pg_locks classid/objid; nullopt
    // (and last_error()) on failure.
    std::optional<bool> ask(store::PgConnection& session, const std::string& sql);

    std::int64_t key_;
    std::optional<store::PgError> last_error_;
};

}  // namespace djinn::leader
