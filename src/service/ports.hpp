#pragma once
// What the service loop needs of the world, as interfaces: the app implements them over
// PostgreSQL (store, leader), Redis (queue) and the pass pipeline (dispatch); unit tests
// implement them with fakes and drive the loop in simulated time.
//
// Thread safety: every port is called from the loop's thread only, except Waiter::stop() and
// Waiter::stopping() (any thread). Failure: ports report outcomes as values; an exception from
// a port is a bug or a library surprise, and the loop contains it (logged, counted, retried).
#include <atomic>
#include <chrono>
#include <optional>
#include <string>

namespace djinn::service {

// The database session of the loop, and the leader lock on it.
class Database {
  public:
    enum class Lock { held, not_held, error };
    struct Check {
        bool ok = true;
        std::string kind;    // errors_total{kind} when !ok: "database", "read_only", ...
        std::string reason;  // one line: the cause and, where known, the fix
    };

    virtual ~Database() = default;
    // Opens a new session, closing any previous one. Not ok: why (cause and fix), and the
    // errors_total{kind} to count ("database_connection", "pooler").
    virtual Check open() = 0;
    // Drops the session; the server releases its locks.
    virtual void close() = 0;
    // A session is open and has not broken.
    virtual bool usable() const = 0;
    // Whatever the session must be before it may lead: privileges, a writable primary, a
    // direct or session-pooled connection. Not ok: the loop closes it and tries again later.
    virtual Check check() = 0;
    virtual Lock try_acquire() = 0;
    // Heartbeat: the session is alive and still holds the lock.
    virtual Lock verify() = 0;
    // Releases the lock (stopping). False if there was nothing to release.
    virtual bool release() = 0;
    // The error of the last failed call, for the log.
    virtual std::string last_error() const = 0;
};

class QueueProbe {
  public:
    virtual ~QueueProbe() = default;
    virtual bool ping() = 0;
};

struct PassOutcome {
    bool ok = true;
    bool session_lost = false;  // the session broke or was fenced during the pass: step down
    bool internal = false;      // an exception ended the pass (contained)
};

class PassRunner {
  public:
    virtual ~PassRunner() = default;
    // One pass on the Database's session; checks `stop` between batches. Must not throw.
    virtual PassOutcome run(const std::atomic<bool>& stop) = 0;
    // The next pass re-offers committed builds to the queue first (a new leadership).
    virtual void request_recovery() = 0;
    // Leadership is over: let go of whatever only a leader holds (its dispatch sessions).
    virtual void stepped_down() {}
};

// Waiting, and the stop request. The loop never sleeps any other way.
class Waiter {
  public:
    virtual ~Waiter() = default;
    // Waits up to `d` (monotonic); false when a stop was requested (at once, or during it).
    virtual bool wait_for(std::chrono::milliseconds d) = 0;
    virtual void stop() = 0;
    virtual const std::atomic<bool>& stopping() const = 0;
};

// Metrics of the loop's own events.
class LoopObserver {
  public:
    virtual ~LoopObserver() = default;
    virtual void leadership(bool leading) = 0;
    virtual void error(const std::string& kind) = 0;
};

}  // namespace djinn::service
