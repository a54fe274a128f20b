#pragma once
// The pass's CPU work: decoding manifests and planning their builds (manifest::parse and
// plan_build: pure functions of the text, most of the scheduler's own CPU time), on a small pool
// of threads, outside every database transaction.
//
// plan() plans now, on up to `threads` threads (the caller's included). plan_ahead() plans the
// next batch's candidates on a background thread at low priority while the current batch is
// written (it has a whole batch of slack, and on a small machine it must not take the CPU from
// PostgreSQL's backend); take_ahead() waits for it.
//
// One cron's manifest never fails a pass: anything thrown while planning it becomes that cron's
// skip (plan_failed, with what was thrown).
//
// Thread safety: one owner thread calls every method; the pool's threads share nothing but the
// input and their own output slots. Failure: none (see above).
#include <chrono>
#include <cstddef>
#include <future>
#include <set>
#include <string>
#include <vector>

#include "store/batch_types.hpp"
#include "store/dispatch_store.hpp"

namespace djinn::dispatch {

class Planner {
  public:
    Planner(std::set<std::string> drivers, std::size_t threads);
    ~Planner();
    Planner(const Planner&) = delete;
    Planner& operator=(const Planner&) = delete;

    store::PlannedManifests plan(const std::vector<store::Candidate>& candidates) const;

    void plan_ahead(std::vector<store::Candidate> candidates);
    // The plans of the last plan_ahead() (waiting for them); empty if none was started.
    store::PlannedManifests take_ahead();
    // Whether the last plan_ahead() is done (or none was started), waiting at most `wait`.
    bool ahead_ready(std::chrono::milliseconds wait) const;
    // Waits for and forgets a plan_ahead() nobody will take.
    void discard();

    // One manifest (the unit every thread runs).
    static store::PlanResult plan_one(const std::string& manifest,
                                      const std::set<std::string>& drivers) noexcept;

    // Threads to plan on: the cores there are, at most 4.
    static std::size_t default_threads();

  private:
    std::set<std::string> drivers_;
    std::size_t threads_;
    std::future<store::PlannedManifests> ahead_;
};

}  // namespace djinn::dispatch
