#pragma once
// What a pass reports as it goes, for metrics. The app implements it over Metrics; tests count.
// Implementations must be cheap, thread-safe (the enqueue thread reports too) and must not throw.
#include <cstddef>
#include <string>

namespace djinn::dispatch {

class DispatchEvents {
  public:
    virtual ~DispatchEvents() = default;
    virtual void dispatched(const std::string& driver, double delay_seconds) = 0;
    virtual void skipped(const std::string& reason) = 0;
    virtual void enqueue_retry() = 0;
    virtual void recovered(std::size_t builds) = 0;
    virtual void adopted(std::size_t jobs) = 0;
    virtual void jobs_lost(std::size_t builds) = 0;
    // A pass's probe for due crons: skipped (the idle hint vouched for it) or scanned.
    virtual void due_scan(bool skipped) = 0;
    virtual void error(const std::string& kind) = 0;
};

class NoEvents final : public DispatchEvents {
  public:
    void dispatched(const std::string&, double) override {}
    void skipped(const std::string&) override {}
    void enqueue_retry() override {}
    void recovered(std::size_t) override {}
    void adopted(std::size_t) override {}
    void jobs_lost(std::size_t) override {}
    void due_scan(bool) override {}
    void error(const std::string&) override {}
};

}  // namespace djinn::dispatch
