#include "app/scheduler_app.hpp"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

#include <unistd.h>

#include "app/endpoints.hpp"
#include "app/metrics_events.hpp"
#include "app/pass_runner.hpp"
#include "app/pg_database.hpp"
#include "app/pidfile.hpp"
#include "common/failpoints.hpp"
#include "dispatch/dispatcher.hpp"
#include "http/http_server.hpp"
#include "metrics/metrics.hpp"
#include "queue/build_queue.hpp"
#include "store/dispatch_sessions.hpp"
#include "store/dispatch_store.hpp"

namespace djinn::app {
namespace {

using namespace std::chrono_literals;

// Every label value the app uses, so each series exists (at 0) from the first scrape and
// alerts on rate() work before the first event.
metrics::KnownLabels known_labels(const config::Config& c) {
    metrics::KnownLabels k;
    k.drivers = c.drivers;
    k.skip_reasons = {"bad_manifest",  "driver_disabled",   "unknown_driver",
                      "deleted_owner", "missing_privilege", "write_failed",
                      "bad_next_run",  "bad_schedule",      "plan_failed"};
    k.error_kinds = {"database", "database_connection", "enqueue", "leader_lock", "internal"};
    k.pass_results = {"ok", "error"};
    return k;
}

class RedisProbe final : public service::QueueProbe {
  public:
    explicit RedisProbe(queue::RedisEndpoint e) : queue_(std::move(e)) {}
    bool ping() override {
        DJINN_FAILPOINT("queue.ping");
        return queue_.ping();
    }

  private:
    queue::BuildQueue queue_;
};

// service: the leader's loop (not -once).
dispatch::DispatcherOptions dispatcher_options(const config::Config& c, bool dry_run,
                                               bool service) {
    dispatch::DispatcherOptions o;
    o.batch_size = c.batch_size;
    o.dry_run = dry_run;
    o.numbers_ahead = service;
    o.keepalive = std::max(c.leader.lock_timeout / 4, std::chrono::milliseconds(100));
    return o;
}

// database.dispatch_sessions > 1: the sessions a pass splits its batches across. They hold no
// session-level lock, so no idle_session_timeout (they stay open between passes); a dispatch
// transaction that stops talking is still ended by idle_in_transaction_session_timeout, which
// frees the fence for a new leader.
std::unique_ptr<store::DispatchSessions> dispatch_sessions(const config::Config& c) {
    if (c.database.dispatch_sessions < 2)
        return nullptr;
    store::SessionOptions o = session_options(c);
    o.application_name = "djinn-scheduler dispatch";
    o.idle_session_timeout = std::chrono::milliseconds(0);
    return std::make_unique<store::DispatchSessions>(
        static_cast<std::size_t>(c.database.dispatch_sessions),
        [db = c.database, o] { return store::PgConnection::open(db, o); });
}

std::set<std::string> driver_set(const config::Config& c) {
    return {c.drivers.begin(), c.drivers.end()};
}

}  // namespace

SchedulerApp::SchedulerApp(config::Config config, std::shared_ptr<spdlog::logger> log,
                           const Clock& clock)
    : config_(std::move(config)),
      log_(std::move(log)),
      clock_(clock),
      metrics_(std::make_unique<metrics::Metrics>(DJINN_VERSION, known_labels(config_))),
      progress_(clock) {}

SchedulerApp::~SchedulerApp() = default;

bool SchedulerApp::live() const {
    return progress_.since_last() < config_.http.liveness_timeout;
}

std::pair<bool, std::string> SchedulerApp::ready() const {
    if (waiter_.stopping().load())
        return {false, "stopping"};
    const service::ServiceLoop* loop = loop_.load();
    if (loop == nullptr)
        return {false, "starting"};
    return loop->ready();
}

void SchedulerApp::request_stop() {
    waiter_.stop();
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
    PgDatabase db(config_, log_);
    if (auto opened = db.open(); !opened.ok) {
        log_->error("cannot connect to PostgreSQL: {}", opened.reason);
        return 1;
    }
    if (auto c = db.check(); !c.ok) {
        log_->error("{}", c.reason);
        return 1;
    }
    // No election, so no fence: the row locks keep a pass beside a fleet exactly-once.
    store::DispatchStore store(config_.crypto_salt, clock_, std::nullopt);
    store.set_privileges(db.privileges());
    queue::BuildQueue queue(redis_endpoint(config_));
    dispatch::NoEvents events;
    dispatch::Dispatcher dispatcher(store, queue, driver_set(config_), log_, events, clock_,
                                    dispatcher_options(config_, dry_run, false));
    auto sessions = dispatch_sessions(config_);
    dispatcher.set_dispatch_sessions(sessions.get());
    const dispatch::PassReport r = dispatcher.run_pass(*db.session(), waiter_.stopping());
    log_pass(*log_, r, dry_run);
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

    MetricsEvents events(*metrics_, progress_);
    PgDatabase db(config_, log_);
    store::DispatchStore store(config_.crypto_salt, clock_, config_.leader.lock_key);
    queue::BuildQueue queue(redis_endpoint(config_));
    dispatch::Dispatcher dispatcher(store, queue, driver_set(config_), log_, events, clock_,
                                    dispatcher_options(config_, false, true));
    auto sessions = dispatch_sessions(config_);
    dispatcher.set_dispatch_sessions(sessions.get());
    DispatchPassRunner passes(db, store, dispatcher, *metrics_, progress_, clock_, log_);
    RedisProbe probe(redis_endpoint(config_));
    service::LoopOptions lo;
    lo.interval = config_.interval;
    lo.retry_interval = config_.leader.retry_interval;
    lo.heartbeat = std::max<std::chrono::milliseconds>(config_.leader.lock_timeout / 4, 100ms);
    loop_holder_ = std::make_unique<service::ServiceLoop>(lo, db, probe, passes, waiter_, clock_,
                                                          progress_, events, log_);
    loop_.store(loop_holder_.get());

    // Drain watchdog: once stop is requested the batch in flight has drain_timeout to finish.
    std::mutex mu;
    std::condition_variable cv;
    bool exited = false;
    const std::string pidfile_path = pidfile ? pidfile->path() : std::string();
    std::thread watchdog([&] {
        while (!waiter_.stopping().load()) {
            std::unique_lock lk(mu);
            if (cv.wait_for(lk, 200ms, [&] { return exited; }))
                return;
        }
        std::unique_lock lk(mu);
        if (!cv.wait_for(lk, config_.drain_timeout, [&] { return exited; })) {
            log_->error(
                "drain did not finish within {} ms: exiting; the open transaction is "
                "rolled back by PostgreSQL",
                config_.drain_timeout.count());
            log_->flush();
            if (!pidfile_path.empty())
                ::unlink(pidfile_path.c_str());
            std::_Exit(1);
        }
    });

    log_->info(
        "djinn-scheduler {} started: interval {} ms, batch size {}, drivers [{}], "
        "database {}",
        DJINN_VERSION, config_.interval.count(), config_.batch_size,
        fmt::join(config_.drivers, ", "), store::describe(config_.database));

    loop_holder_->run();
    log_->info("stopping: readiness off, batch in flight finished");
    {
        std::lock_guard lk(mu);
        exited = true;
    }
    cv.notify_all();
    watchdog.join();
    if (server)
        server->stop();
    log_->info("stopped");
    return 0;
}

}  // namespace djinn::app
