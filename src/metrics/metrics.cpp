#include "metrics/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <sstream>

#include "metrics/process_collector.hpp"

namespace djinn::metrics {
namespace {

constexpr const char* kPrefix = "djinn_scheduler_";

std::string name(const char* suffix) {
    return std::string(kPrefix) + suffix;
}

// The registry and the process collector, collected as one.
class Exposition final : public prometheus::Collectable {
  public:
    explicit Exposition(std::shared_ptr<prometheus::Registry> registry)
        : registry_(std::move(registry)) {}

    std::vector<prometheus::MetricFamily> Collect() const override {
        auto families = registry_->Collect();
        auto process = process_.Collect();
        families.insert(families.end(), std::make_move_iterator(process.begin()),
                        std::make_move_iterator(process.end()));
        return families;
    }

  private:
    std::shared_ptr<prometheus::Registry> registry_;
    ProcessCollector process_;
};

prometheus::Family<prometheus::Counter>& counter_family(prometheus::Registry& r, const char* suffix,
                                                        const char* help) {
    return prometheus::BuildCounter().Name(name(suffix)).Help(help).Register(r);
}

prometheus::Family<prometheus::Gauge>& gauge_family(prometheus::Registry& r, const char* suffix,
                                                    const char* help) {
    return prometheus::BuildGauge().Name(name(suffix)).Help(help).Register(r);
}

prometheus::Histogram& histogram(prometheus::Registry& r, const char* suffix, const char* help,
                                 const std::vector<double>& buckets) {
    return prometheus::BuildHistogram().Name(name(suffix)).Help(help).Register(r).Add({}, buckets);
}

}  // namespace

const std::vector<double>& Metrics::pass_duration_buckets() {
    static const std::vector<double> buckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,   0.25,   0.5,   1,    2.5,   5,
                                             10,    30,     60,    120,  300,   600};
    return buckets;
}

const std::vector<double>& Metrics::dispatch_delay_buckets() {
    static const std::vector<double> buckets{0.01, 0.05, 0.1,  0.25,  0.5,   1,    2.5,
                                             5,    10,   30,   60,    120,   300,  600,
                                             1800, 3600, 7200, 14400, 43200, 86400};
    return buckets;
}

Metrics::Metrics(std::string_view version, const KnownLabels& known)
    : registry_(std::make_shared<prometheus::Registry>()),
      exposition_(std::make_shared<Exposition>(registry_)),
      leader_(gauge_family(*registry_, "leader",
                           "1 while this replica holds the leader lock and dispatches, else 0.")
                  .Add({})),
      leader_transitions_(counter_family(*registry_, "leader_transitions_total",
                                         "Changes of this replica's leadership (gained or lost).")
                              .Add({})),
      dispatched_(counter_family(*registry_, "builds_dispatched_total",
                                 "Builds created and enqueued, by driver.")),
      skipped_(counter_family(*registry_, "crons_skipped_total",
                              "Due crons that produced no build, by reason.")),
      enqueue_retries_(counter_family(*registry_, "enqueue_retries_total",
                                      "Retried attempts to enqueue a build on Redis.")
                           .Add({})),
      errors_(counter_family(*registry_, "errors_total", "Errors, by kind.")),
      recovered_(counter_family(*registry_, "builds_recovered_total",
                                "Builds found committed but not enqueued, and enqueued later.")
                     .Add({})),
      adopted_(counter_family(*registry_, "jobs_adopted_total",
                              "Queue jobs of another writer found for committed builds and "
                              "marked instead of enqueued again.")
                   .Add({})),
      jobs_lost_(counter_family(*registry_, "jobs_lost_total",
                                "Queued builds whose enqueue marker exists but whose job is in no "
                                "queue (evicted from Redis, or consumed without running).")
                     .Add({})),
      due_scans_(counter_family(*registry_, "due_scans_total",
                                "Probes of a pass for due crons, by result: scanned (the cron "
                                "table was read) or skipped (nothing was written to it since an "
                                "idle pass's scan, and nothing is due yet).")),
      due_scanned_(due_scans_.Add({{"result", "scanned"}})),
      due_skipped_(due_scans_.Add({{"result", "skipped"}})),
      passes_(counter_family(*registry_, "passes_total", "Passes of the tick loop, by result.")),
      pass_duration_(histogram(*registry_, "pass_duration_seconds",
                               "Wall time of one pass of the tick loop.", pass_duration_buckets())),
      dispatch_delay_(histogram(*registry_, "dispatch_delay_seconds",
                                "Enqueue time minus the cron's scheduled next run.",
                                dispatch_delay_buckets())),
      due_crons_(gauge_family(*registry_, "due_crons",
                              "Crons due and not yet dispatched, seen by the last pass.")
                     .Add({})),
      last_pass_timestamp_(gauge_family(*registry_, "last_pass_timestamp_seconds",
                                        "Unix time at which the last pass ended.")
                               .Add({})) {
    gauge_family(*registry_, "build_info", "Build information; the value is always 1.")
        .Add({{"version", std::string(version)}})
        .Set(1);
    for (const auto& v : known.drivers)
        dispatched_.Add({{"driver", v}});
    for (const auto& v : known.skip_reasons)
        skipped_.Add({{"reason", v}});
    for (const auto& v : known.error_kinds)
        errors_.Add({{"kind", v}});
    for (const auto& v : known.pass_results)
        passes_.Add({{"result", v}});
}

Metrics::Metrics(std::string_view version, const std::vector<std::string>& drivers)
    : Metrics(version, KnownLabels{drivers, {}, {}, {}}) {}

Metrics::~Metrics() = default;

void Metrics::set_leader(bool leading) {
    // The gauge is the state; compare-and-swap on it so that concurrent reports of the same
    // state count one transition.
    double want = leading ? 1 : 0;
    std::lock_guard lock(leader_mutex_);
    if (leader_.Value() == want)
        return;
    leader_.Set(want);
    leader_transitions_.Increment();
}

bool Metrics::leader() const {
    return leader_.Value() != 0;
}

void Metrics::dispatched(std::string_view driver, std::uint64_t builds) {
    dispatched_.Add({{"driver", std::string(driver)}}).Increment(static_cast<double>(builds));
}

void Metrics::skipped(std::string_view reason, std::uint64_t crons) {
    skipped_.Add({{"reason", std::string(reason)}}).Increment(static_cast<double>(crons));
}

void Metrics::enqueue_retry(std::uint64_t n) {
    enqueue_retries_.Increment(static_cast<double>(n));
}

void Metrics::error(std::string_view kind) {
    errors_.Add({{"kind", std::string(kind)}}).Increment();
}

void Metrics::recovered(std::uint64_t builds) {
    recovered_.Increment(static_cast<double>(builds));
}

void Metrics::adopted(std::uint64_t jobs) {
    adopted_.Increment(static_cast<double>(jobs));
}

void Metrics::jobs_lost(std::uint64_t builds) {
    jobs_lost_.Increment(static_cast<double>(builds));
}

void Metrics::due_scan(bool skipped) {
    (skipped ? due_skipped_ : due_scanned_).Increment();
}

void Metrics::pass_finished(std::string_view result, Seconds duration,
                            std::chrono::system_clock::time_point finished_at) {
    passes_.Add({{"result", std::string(result)}}).Increment();
    pass_duration_.Observe(std::max(duration.count(), 0.0));
    last_pass_timestamp_.Set(std::chrono::duration<double>(finished_at.time_since_epoch()).count());
}

void Metrics::dispatch_delay(Seconds delay) {
    dispatch_delay_.Observe(std::max(delay.count(), 0.0));
}

void Metrics::set_due_crons(std::int64_t n) {
    due_crons_.Set(static_cast<double>(n));
}

std::string Metrics::serialize() const {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, exposition_->Collect());
    return out.str();
}

}  // namespace djinn::metrics
