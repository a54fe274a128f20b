#include "app/scheduler_app.hpp"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <set>
#include <thread>

#include "app/dispatcher.hpp"
#include "app/pidfile.hpp"
#include "http/http_server.hpp"
#include "leader/leader_lock.hpp"
#include "leader/leadership_tracker.hpp"
#include "metrics/metrics.hpp"
#include "queue/build_queue.hpp"
#include "store/dispatch_store.hpp"
#include "store/pg_connection.hpp"

namespace djinn::app {
namespace {

using namespace std::chrono_literals;

// No loop progress for this long means the loop is stuck (a pass reports progress per batch).
constexpr auto kLivenessTimeout = 120s;
constexpr auto kRedisPingEvery = 5s;

class MetricsEvents final : public DispatchEvents {
  public:
    MetricsEvents(metrics::Metrics& m, std::function<void()> progress)
        : m_(m), progress_(std::move(progress)) {}
    void dispatched(const std::string& driver, double delay) override {
        m_.dispatched(driver);
        m_.dispatch_delay(metrics::Metrics::Seconds(delay));
    }
    void skipped(const std::string& reason) override { m_.skipped(reason); }
    void enqueue_retry() override { m_.enqueue_retry(); }
    void recovered(std::size_t n) override {
        m_.recovered(n);
        progress_();
    }
    void error(const std::string& kind) override { m_.error(kind); }
    void batch_done() { progress_(); }

  private:
    metrics::Metrics& m_;
    std::function<void()> progress_;
};

// Enqueue runs between transactions, with the lock session idle: its whole retry budget
// (DispatcherOptions: 3 attempts, 200 + 400 ms backoff) must stay well inside lock_timeout, the
// session's idle_session_timeout, or a hung Redis costs the leader its lock. lock_timeout/8 per
// network wait gives 3 x lock_timeout/8 + 0.6 s: 4.35 s of the default 10 s, 2.1 s of 4 s.
std::chrono::milliseconds redis_timeout(std::chrono::milliseconds lock_timeout) {
    return std::clamp<std::chrono::milliseconds>(lock_timeout / 8, std::chrono::milliseconds(100),
                                                 std::chrono::milliseconds(2000));
}

queue::RedisEndpoint redis_endpoint(const config::RedisConfig& r,
                                    std::chrono::milliseconds lock_timeout) {
    queue::RedisEndpoint e;
    auto colon = r.addr.rfind(':');
    e.host = colon == std::string::npos ? r.addr : r.addr.substr(0, colon);
    if (colon != std::string::npos)
        e.port = std::atoi(r.addr.c_str() + colon + 1);
    if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']')
        e.host = e.host.substr(1, e.host.size() - 2);
    if (e.host.empty())
        e.host = "127.0.0.1";
    e.password = r.password;
    e.timeout = redis_timeout(lock_timeout);
    return e;
}

store::SessionOptions session_options(const config::Config& c) {
    store::SessionOptions o;
    o.idle_session_timeout = c.leader.lock_timeout;
    o.idle_in_transaction_timeout = c.leader.lock_timeout;
    o.tcp_user_timeout = c.leader.lock_timeout;
    // One statement may take a while in a midnight burst, but never forever.
    o.statement_timeout = std::max<std::chrono::milliseconds>(c.leader.lock_timeout * 6, 60s);
    return o;
}

// Every label value the app uses, so each series exists (at 0) from the first scrape and
// alerts on rate() work before the first event.
metrics::KnownLabels known_labels(const config::Config& c) {
    metrics::KnownLabels k;
    k.drivers = c.drivers;
    k.skip_reasons = {"bad_manifest",      "driver_disabled", "unknown_driver", "deleted_owner",
                      "missing_privilege", "write_failed",    "bad_next_run"};
    k.error_kinds = {"database", "database_connection", "enqueue", "leader_lock"};
    k.pass_results = {"ok", "error"};
    return k;
}

void log_privileges(spdlog::logger& log, const store::Privileges& p) {
    for (const auto& m : p.missing) {
        log.error("missing privilege: {}; fix with: {}", m.what, m.grant);
    }
    if (!p.can_copy_variables) {
        log.warn(
            "builds that copy variables (or have env entries) stay due until the grants "
            "above are given");
    }
    if (!p.can_copy_keys) {
        log.warn("builds that copy keys stay due until the grants above are given");
    }
}

}  // namespace

SchedulerApp::SchedulerApp(config::Config config, std::shared_ptr<spdlog::logger> log,
                           const Clock& clock)
    : config_(std::move(config)),
      log_(std::move(log)),
      clock_(clock),
      metrics_(std::make_unique<metrics::Metrics>(DJINN_VERSION, known_labels(config_))) {
    beat();
}

SchedulerApp::~SchedulerApp() = default;

void SchedulerApp::beat() {
    heartbeat_us_.store(clock_.now().time_since_epoch().count());
}

bool SchedulerApp::live() const {
    auto last = TimePoint(std::chrono::microseconds(heartbeat_us_.load()));
    return clock_.now() - last < kLivenessTimeout;
}

std::pair<bool, std::string> SchedulerApp::ready() const {
    if (stop_.load())
        return {false, "stopping"};
    if (!started_.load())
        return {false, "starting"};
    if (!db_ok_.load())
        return {false, "no PostgreSQL session"};
    if (!redis_ok_.load())
        return {false, "Redis unreachable"};
    return {true, metrics_->leader() ? "ready (leader)" : "ready (standby)"};
}

void SchedulerApp::request_stop() {
    {
        std::lock_guard lock(mu_);
        stop_.store(true);
    }
    cv_.notify_all();
}

bool SchedulerApp::wait_for(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, d, [&] { return stop_.load(); });
    return !stop_.load();
}

bool SchedulerApp::open_pidfile(std::unique_ptr<Pidfile>& out) {
    if (config_.pidfile.empty())
        return true;
    auto p = Pidfile::create(config_.pidfile);
    if (auto* err = std::get_if<std::string>(&p)) {
        log_->error("{}", *err);
        return false;
    }
    out = std::move(std::get<std::unique_ptr<Pidfile>>(p));
    return true;
}

int SchedulerApp::run_once(bool dry_run) {
    std::unique_ptr<Pidfile> pidfile;
    if (!open_pidfile(pidfile))
        return 1;
    auto opened = store::PgConnection::open(config_.database, session_options(config_));
    if (auto* e = std::get_if<store::PgError>(&opened)) {
        log_->error("cannot connect to PostgreSQL {}: {}", store::describe(config_.database),
                    e->message);
        return 1;
    }
    auto conn = std::move(std::get<std::unique_ptr<store::PgConnection>>(opened));
    log_->info("connected to PostgreSQL {}", store::describe(config_.database));

    store::DispatchStore store(
        std::set<std::string>(config_.drivers.begin(), config_.drivers.end()), config_.crypto_salt,
        clock_);
    auto privs = store.check_privileges(*conn);
    if (auto* e = std::get_if<store::PgError>(&privs)) {
        log_->error("privilege check failed: {}", e->message);
        return 1;
    }
    log_privileges(*log_, std::get<store::Privileges>(privs));
    store.set_privileges(std::get<store::Privileges>(privs));

    queue::BuildQueue queue(redis_endpoint(config_.redis, config_.leader.lock_timeout));
    NoEvents events;
    DispatcherOptions opts;
    opts.batch_size = config_.batch_size;
    opts.dry_run = dry_run;
    Dispatcher dispatcher(store, queue, log_, events, clock_, opts);
    PassReport r = dispatcher.run_pass(*conn, stop_);
    log_->info(
        "pass {}: {} cron(s) taken in {} batch(es), {} build(s) {}, {} skipped, {} "
        "enqueued, {} recovered, {:.3f} s",
        r.ok ? "done" : "failed", r.taken, r.batches, r.dispatched,
        dry_run ? "would be made" : "made", r.skipped, r.enqueued, r.recovered,
        std::chrono::duration<double>(r.duration).count());
    if (!r.ok)
        log_->error("pass failed: {}", r.error);
    return r.ok ? 0 : 1;
}

int SchedulerApp::run() {
    std::unique_ptr<Pidfile> pidfile;
    if (!open_pidfile(pidfile))
        return 1;

    std::unique_ptr<http::HttpServer> server;
    if (!config_.http.addr.empty()) {
        http::Handlers h;
        h.liveness = [this] { return live(); };
        h.readiness = [this] { return ready(); };
        h.metrics = metrics_->collectable();
        auto s = http::HttpServer::start(config_.http.addr, std::move(h));
        if (auto* e = std::get_if<http::HttpStartError>(&s)) {
            log_->error("{}", e->message);
            return 1;
        }
        server = std::move(std::get<std::unique_ptr<http::HttpServer>>(s));
        http_port_.store(server->port());
        log_->info("serving /healthz /readyz /metrics on port {}", server->port());
    }

    store::DispatchStore store(
        std::set<std::string>(config_.drivers.begin(), config_.drivers.end()), config_.crypto_salt,
        clock_);
    queue::BuildQueue queue(redis_endpoint(config_.redis, config_.leader.lock_timeout));
    MetricsEvents events(*metrics_, [this] { beat(); });
    DispatcherOptions opts;
    opts.batch_size = config_.batch_size;
    Dispatcher dispatcher(store, queue, log_, events, clock_, opts);
    leader::LeaderLock lock(config_.leader.lock_key);
    leader::LeadershipTracker tracker;

    // Drain watchdog: once stop is requested the batch in flight has drain_timeout to finish.
    std::atomic<bool> exited{false};
    std::thread watchdog([&] {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stop_.load() || exited.load(); });
        if (exited.load())
            return;
        if (!cv_.wait_for(lk, config_.drain_timeout, [&] { return exited.load(); })) {
            log_->error(
                "drain did not finish within {} ms: exiting; the open transaction is "
                "rolled back by PostgreSQL",
                config_.drain_timeout.count());
            log_->flush();
            std::_Exit(1);
        }
    });

    started_.store(true);
    log_->info(
        "djinn-scheduler {} started: interval {} ms, batch size {}, drivers [{}], "
        "database {}",
        DJINN_VERSION, config_.interval.count(), config_.batch_size,
        fmt::join(config_.drivers, ", "), store::describe(config_.database));

    std::unique_ptr<store::PgConnection> conn;
    bool leading = false;
    bool logged_db_down = false;
    const auto heartbeat_every =
        std::max<std::chrono::milliseconds>(config_.leader.lock_timeout / 3, 100ms);
    TimePoint next_tick{};
    TimePoint last_verify{};
    TimePoint last_redis_ping{};

    auto set_leading = [&](bool now_leading, const std::string& why) {
        auto change = tracker.observe(now_leading, clock_.now());
        leading = now_leading;
        metrics_->set_leader(now_leading);
        if (change == leader::LeadershipTracker::Change::gained) {
            log_->info("leadership acquired (lock key {}): dispatching", config_.leader.lock_key);
        } else if (change == leader::LeadershipTracker::Change::lost) {
            log_->warn("leadership lost: {}; stopped dispatching, competing again", why);
        }
    };
    auto next_boundary = [&](TimePoint now) {
        auto iv = std::chrono::duration_cast<std::chrono::microseconds>(config_.interval);
        auto since = now.time_since_epoch();
        return TimePoint((since / iv + 1) * iv);
    };

    while (!stop_.load()) {
        beat();
        TimePoint now = clock_.now();
        if (now - last_redis_ping >= kRedisPingEvery) {
            bool ok = queue.ping();
            if (ok != redis_ok_.load()) {
                if (ok) {
                    log_->info("Redis {} reachable", config_.redis.addr);
                } else {
                    log_->warn("Redis {} unreachable", config_.redis.addr);
                }
            }
            redis_ok_.store(ok);
            last_redis_ping = now;
        }
        if (!conn || conn->broken()) {
            if (leading)
                set_leading(false, "database session lost");
            conn.reset();
            db_ok_.store(false);
            auto opened = store::PgConnection::open(config_.database, session_options(config_));
            if (auto* e = std::get_if<store::PgError>(&opened)) {
                if (!logged_db_down) {
                    log_->error("cannot connect to PostgreSQL {}: {}",
                                store::describe(config_.database), e->message);
                    logged_db_down = true;
                }
                metrics_->error("database_connection");
                wait_for(config_.leader.retry_interval);
                continue;
            }
            conn = std::move(std::get<std::unique_ptr<store::PgConnection>>(opened));
            logged_db_down = false;
            log_->info("connected to PostgreSQL {} (backend {})", store::describe(config_.database),
                       conn->backend_pid());
            auto privs = store.check_privileges(*conn);
            if (auto* e = std::get_if<store::PgError>(&privs)) {
                log_->error("privilege check failed: {}", e->message);
                continue;  // the session is probably broken: reopen
            }
            log_privileges(*log_, std::get<store::Privileges>(privs));
            store.set_privileges(std::get<store::Privileges>(privs));
            db_ok_.store(true);
        }

        if (!leading) {
            auto r = lock.try_acquire(*conn);
            if (r == leader::LeaderLock::AcquireResult::acquired) {
                set_leading(true, "");
                dispatcher.request_recovery();
                next_tick = now;  // catch up at once: the previous leader may have died mid-pass
                last_verify = now;
            } else {
                if (r == leader::LeaderLock::AcquireResult::error) {
                    metrics_->error("leader_lock");
                    if (lock.last_error()) {
                        log_->warn("leader lock attempt failed: {}", lock.last_error()->message);
                    }
                }
                wait_for(config_.leader.retry_interval);
                continue;
            }
        }

        now = clock_.now();
        if (now >= next_tick) {
            PassReport r = dispatcher.run_pass(*conn, stop_);
            beat();
            const auto finished = clock_.now();
            metrics_->pass_finished(
                r.ok ? "ok" : "error", std::chrono::duration<double>(r.duration),
                std::chrono::system_clock::time_point(
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(
                        finished.time_since_epoch())));
            if (r.taken > 0 || !r.ok || r.recovered > 0) {
                log_->info(
                    "pass {}: {} cron(s) taken in {} batch(es), {} build(s) made, {} "
                    "skipped, {} enqueued, {} recovered, {:.3f} s",
                    r.ok ? "done" : "failed", r.taken, r.batches, r.dispatched, r.skipped,
                    r.enqueued, r.recovered, std::chrono::duration<double>(r.duration).count());
            } else {
                log_->debug("pass done: nothing due, {:.3f} s",
                            std::chrono::duration<double>(r.duration).count());
            }
            if (!r.ok)
                log_->error("pass failed: {}", r.error);
            if (conn->broken()) {
                set_leading(false, "database session lost during the pass");
                continue;
            }
            if (r.ok && !r.stopped) {
                // A whole pass took everything due: what is still due is what it left due. (A
                // count would be one more scan of the whole cron table per pass without an
                // index on next_run.)
                metrics_->set_due_crons(static_cast<std::int64_t>(r.stayed_due));
            } else if (!stop_.load()) {
                auto due = store.count_due(*conn);
                if (auto* n = std::get_if<std::int64_t>(&due))
                    metrics_->set_due_crons(*n);
            }
            next_tick = next_boundary(clock_.now());
            last_verify = clock_.now();
            continue;
        }

        if (now - last_verify >= heartbeat_every) {
            if (!lock.verify(*conn)) {
                set_leading(false, lock.last_error() ? lock.last_error()->message
                                                     : "the lock is no longer held");
                if (!conn->broken())
                    conn.reset();  // start from a fresh session either way
                continue;
            }
            last_verify = now;
        }
        auto until_tick = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - now);
        auto until_verify = std::chrono::duration_cast<std::chrono::milliseconds>(
            heartbeat_every - (now - last_verify));
        wait_for(
            std::clamp(std::min(until_tick, until_verify), 1ms, std::chrono::milliseconds(1000)));
    }

    log_->info("stopping: readiness off, batch in flight finished");
    if (conn && !conn->broken() && leading) {
        if (lock.release(*conn)) {
            log_->info("leadership released (lock key {})", config_.leader.lock_key);
        }
        tracker.observe(false, clock_.now());
        metrics_->set_leader(false);
    }
    conn.reset();
    {
        std::lock_guard lk(mu_);
        exited.store(true);
    }
    cv_.notify_all();
    watchdog.join();
    if (server)
        server->stop();
    log_->info("stopped");
    return 0;
}

}  // namespace djinn::app
