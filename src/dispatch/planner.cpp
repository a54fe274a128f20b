#include "dispatch/planner.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>
#include <variant>

#include "common/failpoints.hpp"
#include "manifest/build_plan.hpp"
#include "manifest/manifest.hpp"

namespace djinn::dispatch {
namespace {

// Lowers the calling thread's scheduling priority (Linux: nice is per thread; threads it starts
// inherit it). Best effort: failure changes nothing but speed.
void yield_cpu_to_others() {
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
}

// Plans candidates[i] into out[i] on up to `threads` threads.
void plan_all(const std::vector<store::Candidate>& candidates, std::vector<store::PlanResult>& out,
              const std::set<std::string>& drivers, std::size_t threads) {
    constexpr std::size_t kChunk = 32;
    out.resize(candidates.size());
    if (candidates.empty())
        return;
    std::atomic<std::size_t> next{0};
    auto worker = [&]() noexcept {
        for (;;) {
            const std::size_t begin = next.fetch_add(kChunk);
            if (begin >= candidates.size())
                return;
            const std::size_t end = std::min(begin + kChunk, candidates.size());
            for (std::size_t i = begin; i < end; ++i)
                out[i] = Planner::plan_one(candidates[i].manifest, drivers);
        }
    };
    threads = std::clamp<std::size_t>(threads, 1, (candidates.size() + kChunk - 1) / kChunk);
    std::vector<std::thread> pool;
    try {
        for (std::size_t t = 1; t < threads; ++t)
            pool.emplace_back(worker);
    } catch (const std::system_error&) {
        // No thread to be had: this one does all the work.
    }
    worker();
    for (auto& th : pool)
        th.join();
}

store::PlannedManifests collect(std::vector<store::Candidate> candidates,
                                std::vector<store::PlanResult> results) {
    store::PlannedManifests out;
    out.reserve(candidates.size());
    for (std::size_t i = 0; i < candidates.size(); ++i)
        out.emplace(candidates[i].id,
                    store::PlannedManifest{std::move(candidates[i].manifest), std::move(results[i]),
                                           candidates[i].user_id});
    return out;
}

}  // namespace

Planner::Planner(std::set<std::string> drivers, std::size_t threads)
    : drivers_(std::move(drivers)), threads_(std::max<std::size_t>(threads, 1)) {}

Planner::~Planner() {
    discard();
}

std::size_t Planner::default_threads() {
    return std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 4);
}

store::PlanResult Planner::plan_one(const std::string& manifest,
                                    const std::set<std::string>& drivers) noexcept {
    store::PlanResult p;
    try {
        DJINN_FAILPOINT("plan.manifest");
        auto parsed = manifest::parse(manifest);
        if (auto* err = std::get_if<manifest::ParseError>(&parsed)) {
            p.skip_kind = "bad_manifest";
            p.skip_reason = "manifest does not parse: " + err->reason;
            return p;
        }
        auto planned = manifest::plan_build(std::get<manifest::Manifest>(parsed), drivers);
        if (auto* s = std::get_if<manifest::Skip>(&planned)) {
            p.skip_kind = std::string(manifest::to_string(s->kind));
            p.skip_reason = s->reason;
            return p;
        }
        p.plan = std::move(std::get<manifest::BuildPlan>(planned));
        return p;
    } catch (const std::exception& e) {
        p = store::PlanResult{};
        p.skip_kind = "plan_failed";
        p.skip_reason = std::string("planning the manifest failed: ") + e.what();
        p.retry = true;
    } catch (...) {
        p = store::PlanResult{};
        p.skip_kind = "plan_failed";
        p.skip_reason = "planning the manifest failed: an exception that is not a std::exception";
        p.retry = true;
    }
    return p;
}

store::PlannedManifests Planner::plan(const std::vector<store::Candidate>& candidates) const {
    std::vector<store::PlanResult> results;
    plan_all(candidates, results, drivers_, threads_);
    return collect(candidates, std::move(results));
}

void Planner::plan_ahead(std::vector<store::Candidate> candidates) {
    discard();
    if (candidates.empty())
        return;
    // One thread fewer than plan(): PostgreSQL is writing the current batch on a core meanwhile.
    const std::size_t threads = std::max<std::size_t>(threads_ - 1, 1);
    ahead_ = std::async(std::launch::async,
                        [this, threads, candidates = std::move(candidates)]() mutable {
                            yield_cpu_to_others();
                            std::vector<store::PlanResult> results;
                            plan_all(candidates, results, drivers_, threads);
                            return collect(std::move(candidates), std::move(results));
                        });
}

store::PlannedManifests Planner::take_ahead() {
    if (!ahead_.valid())
        return {};
    return ahead_.get();
}

bool Planner::ahead_ready(std::chrono::milliseconds wait) const {
    return !ahead_.valid() || ahead_.wait_for(wait) == std::future_status::ready;
}

void Planner::discard() {
    if (ahead_.valid())
        ahead_.wait();
    ahead_ = {};
}

}  // namespace djinn::dispatch
