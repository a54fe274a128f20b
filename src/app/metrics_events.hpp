#pragma once
// The pass's and the loop's events, as Prometheus metrics; every event also counts as progress
// for /healthz. Thread-safe (Metrics is); never throws but std::bad_alloc.
#include <string>

#include "common/progress.hpp"
#include "dispatch/dispatch_events.hpp"
#include "metrics/metrics.hpp"
#include "service/ports.hpp"

namespace djinn::app {

class MetricsEvents final : public dispatch::DispatchEvents, public service::LoopObserver {
  public:
    MetricsEvents(metrics::Metrics& m, Progress& progress) : m_(m), progress_(progress) {}

    void dispatched(const std::string& driver, double delay) override {
        m_.dispatched(driver);
        m_.dispatch_delay(metrics::Metrics::Seconds(delay));
    }
    void skipped(const std::string& reason) override { m_.skipped(reason); }
    void enqueue_retry() override { m_.enqueue_retry(); }
    void recovered(std::size_t n) override {
        m_.recovered(n);
        progress_.beat();
    }
    void adopted(std::size_t n) override {
        m_.adopted(n);
        progress_.beat();
    }
    void jobs_lost(std::size_t n) override { m_.jobs_lost(n); }
    void due_scan(bool skipped) override { m_.due_scan(skipped); }
    void error(const std::string& kind) override { m_.error(kind); }
    void leadership(bool leading) override { m_.set_leader(leading); }

  private:
    metrics::Metrics& m_;
    Progress& progress_;
};

}  // namespace djinn::app
