#include "dispatch/enqueuer.hpp"

#include <thread>

#include "common/failpoints.hpp"

namespace djinn::dispatch {

Enqueuer::Enqueuer(queue::BuildQueue& queue, std::shared_ptr<spdlog::logger> log,
                   DispatchEvents& events, const Clock& clock, Options options, Sleep sleep)
    : queue_(queue),
      log_(std::move(log)),
      events_(events),
      clock_(clock),
      options_(options),
      sleep_(sleep ? std::move(sleep)
                   : Sleep([](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); })) {}

Enqueuer::Result Enqueuer::enqueue(const std::vector<queue::QueueJob>& jobs, Progress* progress) {
    Result out;
    out.outcomes.assign(jobs.size(), queue::JobOutcome::failed);
    std::vector<queue::QueueJob> pending = jobs;
    std::vector<std::size_t> index(jobs.size());
    for (std::size_t i = 0; i < index.size(); ++i)
        index[i] = i;
    for (int round = 1; !pending.empty(); ++round) {
        DJINN_FAILPOINT("enqueue.round");
        queue::EnqueueResult result = queue_.enqueue(pending);
        beat(progress);
        std::vector<queue::QueueJob> again;
        std::vector<std::size_t> again_index;
        for (std::size_t i = 0; i < pending.size(); ++i) {
            const auto o = result.outcomes.at(i);
            if (o == queue::JobOutcome::failed) {
                again.push_back(pending[i]);
                again_index.push_back(index[i]);
                continue;
            }
            out.outcomes[index[i]] = o;
            if (o == queue::JobOutcome::enqueued)
                ++out.enqueued;
        }
        if (again.empty())
            break;
        if (round >= options_.attempts) {
            log_->error(
                "enqueue failed for {} build(s) after {} attempts: {}; they stay committed "
                "and are enqueued by a later pass",
                again.size(), round, result.error);
            events_.error("enqueue");
            out.all = false;
            break;
        }
        events_.enqueue_retry();
        log_->warn("enqueue failed for {} build(s), retrying: {}", again.size(), result.error);
        sleep_(options_.backoff * round);
        pending = std::move(again);
        index = std::move(again_index);
    }
    out.at = clock_.now();
    return out;
}

}  // namespace djinn::dispatch
