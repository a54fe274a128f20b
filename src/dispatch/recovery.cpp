#include "dispatch/recovery.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <unordered_map>
#include <utility>

#include "common/failpoints.hpp"
#include "store/recovery_queries.hpp"

namespace djinn::dispatch {
namespace {

std::string error_kind(const store::PgError& e) {
    return e.kind == store::PgErrorKind::connection || e.kind == store::PgErrorKind::fenced
               ? "database_connection"
               : "database";
}

// The watermark's value in Redis: "<cron_builds id> <Redis's evicted_keys when written>" (-1:
// unknown). A bare id is read as written with unknown evictions.
struct Watermark {
    std::optional<std::int64_t> id;
    std::int64_t evicted = -1;

    static Watermark parse(const std::optional<std::string>& text) {
        Watermark w;
        if (!text)
            return w;
        try {
            std::size_t used = 0;
            const long long id = std::stoll(*text, &used);
            if (id < 0)
                return w;
            if (used < text->size()) {
                std::size_t more = 0;
                const std::string rest = text->substr(used);
                w.evicted = std::stoll(rest, &more);
                if (rest.find_first_not_of(' ', more) != std::string::npos)
                    return Watermark{};
            }
            w.id = id;
        } catch (const std::exception&) {
            return Watermark{};  // not ours: as if absent
        }
        return w;
    }
    std::string text() const {
        return std::to_string(id.value_or(0)) + " " + std::to_string(evicted);
    }
};

// The first few ids, for a log line.
std::string sample(const std::vector<std::int64_t>& ids) {
    constexpr std::size_t kShown = 10;
    std::vector<std::int64_t> head(
        ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), kShown)));
    return fmt::format("{}{}", fmt::join(head, ", "), ids.size() > kShown ? ", ..." : "");
}

}  // namespace

Recovery::Recovery(queue::BuildQueue& queue, Enqueuer& enqueuer,
                   std::shared_ptr<spdlog::logger> log, DispatchEvents& events, Options options)
    : queue_(queue),
      enqueuer_(enqueuer),
      log_(std::move(log)),
      events_(events),
      options_(std::move(options)) {}

std::string Recovery::watermark_key(const std::string& database, std::int64_t oid) {
    return "djinn-scheduler:watermark:" + database + ":" + std::to_string(oid);
}

queue::RedisMemoryInfo Recovery::watch_eviction() {
    queue::RedisMemoryInfo info = queue_.memory_info();
    if (!info.ok)
        return info;  // INFO not allowed (a managed Redis may rename it): nothing to watch
    const bool allkeys = info.policy.rfind("allkeys", 0) == 0;
    if (!policy_warned_ && info.maxmemory > 0 && allkeys) {
        policy_warned_ = true;
        log_->warn(
            "Redis runs with maxmemory-policy {}: under memory pressure it evicts queue jobs "
            "themselves; set noeviction (or a volatile-* policy, which only evicts enqueue "
            "markers) for the Redis of the build queues (docs/deployment.md)",
            info.policy);
    }
    const std::int64_t before = evicted_seen_.value_or(0);
    if (info.evicted_keys > before) {
        const std::int64_t n = info.evicted_keys - before;
        const char* since = evicted_seen_ ? "since the last pass" : "since Redis started";
        if (allkeys) {
            log_->error(
                "Redis evicted {} key(s) {} (maxmemory-policy {}): queue jobs may have "
                "been lost; the recovery sweep checks every queued build of the last {} h",
                n, since, info.policy, options_.window.count());
        } else {
            log_->info(
                "Redis evicted {} key(s) {} (maxmemory-policy {}): only keys with a TTL, such as "
                "enqueue markers, which queued jobs do not need",
                n, since, info.policy);
        }
    }
    evicted_seen_ = info.evicted_keys;
    return info;
}

Recovery::Result Recovery::settle(store::PgConnection& conn,
                                  const std::unordered_set<std::int64_t>& known,
                                  Progress* progress) {
    Result out;
    auto db_failed = [&](const store::PgError& e) {
        out.ok = false;
        out.session_lost = e.kind == store::PgErrorKind::connection;
        out.error = "recovery: " + e.message;
        events_.error(error_kind(e));
        return out;
    };
    auto redis_failed = [&](const std::string& what) {
        out.ok = false;
        out.error = "recovery: " + what;
        events_.error("enqueue");
        return out;
    };

    DJINN_FAILPOINT("recovery.start");
    if (key_.empty() || scope_session_ != conn.session_id()) {
        auto scope = store::RecoveryQueries::scope(conn);
        if (auto* e = std::get_if<store::PgError>(&scope))
            return db_failed(*e);
        const auto& s = std::get<store::DatabaseScope>(scope);
        key_ = watermark_key(s.name, s.oid);
        scope_session_ = conn.session_id();
    }
    const queue::RedisMemoryInfo memory = watch_eviction();
    auto [stored, read_error] = queue_.read_key(key_);
    if (!read_error.empty())
        return redis_failed(read_error);
    const Watermark w = Watermark::parse(stored);
    auto point = store::RecoveryQueries::settle_point(conn);
    if (auto* e = std::get_if<store::PgError>(&point))
        return db_failed(*e);
    const store::SettlePoint p = std::get<store::SettlePoint>(point);
    beat(progress);
    const std::optional<std::int64_t> watermark = w.id;

    // Keys evicted under an allkeys-* policy since the watermark was written: jobs below it may
    // be gone; look at all of them again.
    const bool evicted =
        memory.ok && memory.policy.rfind("allkeys", 0) == 0 &&
        (w.evicted < 0 ? memory.evicted_keys > 0 : memory.evicted_keys != w.evicted);
    if (!watermark || !p.in_order || *watermark > p.last_id || evicted) {
        out.fallback = true;
        if (!p.in_order) {
            log_->warn(
                "recovery: cron_builds_id_seq is not CACHE 1, its ids are not in commit order: "
                "sweeping the cron builds of the last {} h",
                options_.window.count());
        } else if (watermark && *watermark > p.last_id) {
            log_->warn(
                "recovery: the watermark ({}) is above cron_builds_id_seq ({}): the database was "
                "restored or replaced; sweeping the cron builds of the last {} h",
                *watermark, p.last_id, options_.window.count());
        } else if (watermark) {
            log_->warn(
                "recovery: Redis evicted keys since the watermark was written; sweeping the "
                "cron builds of the last {} h",
                options_.window.count());
        } else {
            log_->info(
                "recovery: no watermark in Redis ({}): sweeping the cron builds of the last {} h",
                key_, options_.window.count());
        }
    } else if (*watermark == p.last_id) {
        return out;  // nothing committed since
    }

    // The rows above the watermark (or of the window), page by page, and what Redis holds for
    // those still queued that this process did not enqueue itself.
    std::vector<std::int64_t> candidates, marked;
    const TimePoint since = p.db_now - options_.window;
    std::int64_t after = out.fallback ? 0 : *watermark;
    for (;;) {
        DJINN_FAILPOINT("recovery.page");
        auto page = out.fallback ? store::RecoveryQueries::cron_builds_since(
                                       conn, since, after, p.last_id, options_.page)
                                 : store::RecoveryQueries::cron_builds_range(conn, after, p.last_id,
                                                                             options_.page);
        beat(progress);
        if (auto* e = std::get_if<store::PgError>(&page))
            return db_failed(*e);
        const auto& rows = std::get<std::vector<store::CronBuildRow>>(page);
        if (rows.empty())
            break;
        out.read += rows.size();
        after = rows.back().id;
        std::vector<std::int64_t> check;
        for (const auto& r : rows) {
            if (r.queued && known.count(r.build_id) == 0)
                check.push_back(r.build_id);
        }
        if (!check.empty()) {
            const queue::ProbeResult probe = queue_.probe(check, options_.drivers);
            beat(progress);
            if (!probe.error.empty())
                return redis_failed(probe.error);
            out.checked += check.size();
            for (std::size_t i = 0; i < check.size(); ++i) {
                switch (probe.states[i]) {
                    case queue::JobState::queued:
                        break;
                    case queue::JobState::restored:
                        ++out.restored;
                        break;
                    case queue::JobState::marked_no_job:
                        marked.push_back(check[i]);
                        break;
                    case queue::JobState::missing:
                        candidates.push_back(check[i]);
                        break;
                }
            }
        }
        if (static_cast<std::int64_t>(rows.size()) < options_.page)
            break;
    }

    // A marker without its job: the job left Redis without the build running (a worker that
    // ran it would have changed its status before acknowledging it): lost, e.g. evicted. Such a
    // build is treated as one without a job, and counted.
    const std::unordered_set<std::int64_t> was_marked(marked.begin(), marked.end());
    candidates.insert(candidates.end(), marked.begin(), marked.end());

    if (!candidates.empty()) {
        DJINN_FAILPOINT("recovery.candidates");
        auto drivers = store::RecoveryQueries::drivers_of(conn, candidates);
        if (auto* e = std::get_if<store::PgError>(&drivers))
            return db_failed(*e);
        std::map<std::string, std::unordered_set<std::int64_t>> by_queue;
        for (const auto& b : std::get<std::vector<store::PendingBuild>>(drivers))
            by_queue[b.queue_driver].insert(b.build_id);
        std::vector<std::int64_t> no_driver;
        {
            std::unordered_set<std::int64_t> have;
            for (const auto& [d, ids] : by_queue)
                have.insert(ids.begin(), ids.end());
            for (auto id : candidates) {
                if (have.count(id) == 0)
                    no_driver.push_back(id);
            }
        }
        if (!no_driver.empty()) {
            log_->warn(
                "recovery: {} queued cron build(s) have no build_drivers row (not written whole by "
                "whoever made them): not enqueued: builds {}",
                no_driver.size(), sample(no_driver));
        }
        // Before enqueueing anything: whoever else may have put a job there (the original
        // scheduler, or one of ours whose marker was lost and whose job id is not ours).
        std::vector<queue::QueueJob> missing;
        std::vector<std::pair<std::int64_t, std::string>> adopt;
        for (const auto& [driver, wanted] : by_queue) {
            const queue::QueueScan scan = queue_.scan_jobs(driver, wanted);
            beat(progress);
            if (!scan.error.empty())
                return redis_failed(scan.error);
            if (scan.undecodable > 0) {
                log_->warn(
                    "recovery: {} of {} message(s) in builds_{}:data are no curlyq build "
                    "message; ignored",
                    scan.undecodable, scan.scanned, driver);
            }
            for (auto id : wanted) {
                auto it = scan.jobs.find(id);
                if (it == scan.jobs.end()) {
                    // Its id still on the active list without data (evicted): write the data
                    // back only, so that the id is not on the list twice.
                    // Its marker, if any, is no proof: its job is in no queue.
                    missing.push_back({id, driver, scan.stray.count(id) == 0, false});
                    continue;
                }
                if (it->second.size() > 1) {
                    log_->error(
                        "recovery: build {} already has {} jobs on builds_{} (written by another "
                        "producer): {}",
                        id, it->second.size(), driver, fmt::join(it->second, ", "));
                }
                adopt.emplace_back(id, it->second.front());
            }
        }
        if (!adopt.empty()) {
            if (std::string e = queue_.adopt(adopt); !e.empty())
                return redis_failed(e);
            out.adopted = adopt.size();
            events_.adopted(adopt.size());
            log_->info(
                "recovery: adopted {} job(s) that another writer (the original scheduler?) had "
                "put on the queues for committed builds; they are not enqueued again",
                adopt.size());
        }
        if (!missing.empty()) {
            std::vector<std::int64_t> ids;
            ids.reserve(missing.size());
            for (const auto& m : missing)
                ids.push_back(m.build_id);
            auto still = store::RecoveryQueries::still_queued(conn, ids);
            if (auto* e = std::get_if<store::PgError>(&still))
                return db_failed(*e);
            const auto& queued = std::get<std::vector<std::int64_t>>(still);
            const std::unordered_set<std::int64_t> keep(queued.begin(), queued.end());
            std::vector<queue::QueueJob> jobs;
            std::vector<std::int64_t> lost;
            std::size_t stray = 0;
            for (auto& m : missing) {
                if (keep.count(m.build_id) == 0)
                    continue;
                if (was_marked.count(m.build_id) != 0)
                    lost.push_back(m.build_id);
                stray += m.push ? 0 : 1;
                jobs.push_back(std::move(m));
            }
            if (!lost.empty()) {
                out.lost = lost.size();
                events_.jobs_lost(lost.size());
                log_->error(
                    "recovery: {} queued build(s) had an enqueue marker but their job is in no "
                    "queue: it was lost inside Redis (evicted?) without running; enqueued again "
                    "({} of them with their id still on the active list, data written back): "
                    "builds {}",
                    lost.size(), stray, sample(lost));
            }
            DJINN_FAILPOINT("recovery.enqueue");
            Enqueuer::Result r = enqueuer_.enqueue(jobs, progress);
            out.enqueued = r.enqueued;
            if (r.enqueued > 0)
                events_.recovered(r.enqueued);
            if (!r.all)
                return redis_failed("Redis unavailable");
        }
    }

    if (p.others_writing) {
        log_->debug("recovery: another session is writing cron builds; watermark kept at {}",
                    watermark ? std::to_string(*watermark) : std::string("none"));
        return out;
    }
    DJINN_FAILPOINT("recovery.advance");
    const Watermark next{p.last_id, memory.ok ? memory.evicted_keys : -1};
    if (std::string e = queue_.write_key(key_, next.text()); !e.empty())
        return redis_failed(e);
    out.advanced = true;
    return out;
}

}  // namespace djinn::dispatch
