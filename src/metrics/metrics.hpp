#pragma once
// The scheduler's Prometheus metrics (prefix djinn_scheduler_) plus the standard process_*
// metrics, owned in one prometheus::Registry and exposed through collectable().
//
// Label values must come from small fixed sets (driver names from the config, reason and kind
// words chosen by the caller): never a cron id, build id, namespace or user name, which would
// make the number of series unbounded.
//
// Thread safety: every method may be called concurrently from any thread (prometheus-cpp
// metrics are atomic and its families lock when a new label value is added).
// Failure: nothing here throws after construction, except std::bad_alloc.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace djinn::metrics {

// Label values known up front. Each is created at 0, so its series exists from the first
// scrape (rate() and absent() work, dashboards show 0 rather than nothing). A labelled family
// with no known value appears only once it is first used.
struct KnownLabels {
    std::vector<std::string> drivers;       // builds_dispatched_total{driver}
    std::vector<std::string> skip_reasons;  // crons_skipped_total{reason}
    std::vector<std::string> error_kinds;   // errors_total{kind}
    std::vector<std::string> pass_results;  // passes_total{result}
};

class Metrics {
  public:
    using Seconds = std::chrono::duration<double>;

    // Bucket upper bounds, in seconds.
    static const std::vector<double>& pass_duration_buckets();   // 1 ms .. 10 min
    static const std::vector<double>& dispatch_delay_buckets();  // 10 ms .. 1 day

    // `version` becomes build_info{version}.
    explicit Metrics(std::string_view version, const KnownLabels& known = {});
    // Shorthand for KnownLabels{.drivers = drivers}.
    Metrics(std::string_view version, const std::vector<std::string>& drivers);
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;
    ~Metrics();

    // djinn_scheduler_leader := 0/1; djinn_scheduler_leader_transitions_total counts every
    // change of this replica's state (gaining and losing), not repeated reports of the same one.
    void set_leader(bool leading);
    bool leader() const;

    void dispatched(std::string_view driver, std::uint64_t builds = 1);  // builds_dispatched_total
    void skipped(std::string_view reason, std::uint64_t crons = 1);      // crons_skipped_total
    void enqueue_retry(std::uint64_t n = 1);                             // enqueue_retries_total
    void error(std::string_view kind);                                   // errors_total
    void recovered(std::uint64_t builds);                                // builds_recovered_total
    // jobs_adopted_total: queue jobs of another writer (the original scheduler) found for
    // committed builds and marked as theirs instead of enqueueing them again.
    void adopted(std::uint64_t jobs);
    // jobs_lost_total: queued builds whose enqueue marker exists but whose job is in no queue
    // (consumed without running, or lost inside Redis: evicted).
    void jobs_lost(std::uint64_t builds);
    // due_scans_total{result}: a pass's probe for due crons scanned the cron table ("scanned")
    // or knew from the idle hint that nothing is due ("skipped").
    void due_scan(bool skipped);

    // One pass of the tick loop ended: passes_total{result}++, pass_duration_seconds observes
    // `duration`, last_pass_timestamp_seconds := `finished_at`.
    void pass_finished(std::string_view result, Seconds duration,
                       std::chrono::system_clock::time_point finished_at);

    // dispatch_delay_seconds: enqueue time minus the cron's scheduled next_run. A negative delay
    // (clock skew between hosts) is recorded as 0.
    void dispatch_delay(Seconds delay);

    void set_due_crons(std::int64_t n);  // due_crons gauge

    // The registry with the djinn_scheduler_* metrics only.
    const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

    // Everything to expose on /metrics: the registry and the process_* metrics.
    std::shared_ptr<const prometheus::Collectable> collectable() const { return exposition_; }

    // collectable() serialized in the Prometheus text format 0.0.4.
    std::string serialize() const;

  private:
    std::shared_ptr<prometheus::Registry> registry_;
    std::shared_ptr<const prometheus::Collectable> exposition_;

    std::mutex leader_mutex_;  // makes set_leader's compare-and-set one step
    prometheus::Gauge& leader_;
    prometheus::Counter& leader_transitions_;
    prometheus::Family<prometheus::Counter>& dispatched_;
    prometheus::Family<prometheus::Counter>& skipped_;
    prometheus::Counter& enqueue_retries_;
    prometheus::Family<prometheus::Counter>& errors_;
    prometheus::Counter& recovered_;
    prometheus::Counter& adopted_;
    prometheus::Counter& jobs_lost_;
    prometheus::Family<prometheus::Counter>& due_scans_;
    prometheus::Counter& due_scanned_;
    prometheus::Counter& due_skipped_;
    prometheus::Family<prometheus::Counter>& passes_;
    prometheus::Histogram& pass_duration_;
    prometheus::Histogram& dispatch_delay_;
    prometheus::Gauge& due_crons_;
    prometheus::Gauge& last_pass_timestamp_;
};

}  // namespace djinn::metrics
