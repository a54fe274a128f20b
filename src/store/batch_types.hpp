#pragma once
// The values that cross the store's boundary in a pass: what is read about due crons, what the
// pass pipeline planned for them, and what a batch transaction did.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "manifest/build_plan.hpp"
#include "schedule/schedule.hpp"

namespace djinn::store {

// A due cron as read without a lock (one batch ahead): the id and the manifest text to plan.
struct Candidate {
    std::int64_t id = 0;
    std::string manifest;
    std::int64_t user_id = 0;  // its owner as read (splits a batch across dispatch sessions)
};

// A manifest, planned: a plan, or why the cron is skipped (metric label and one line).
struct PlanResult {
    std::optional<manifest::BuildPlan> plan;
    std::string skip_kind;  // bad_manifest, driver_disabled, unknown_driver, plan_failed
    std::string skip_reason;
    // The skip says nothing about the manifest (planning failed on our side: out of memory, a
    // bug): the cron stays due and is tried again next pass instead of losing this run.
    bool retry = false;
};

// A candidate's manifest text with its plan. A batch uses the plan only for a cron whose
// manifest, locked, is byte for byte this text.
struct PlannedManifest {
    std::string manifest;
    PlanResult result;
    std::int64_t user_id = 0;  // the candidate's owner as read
};

// A due cron as its batch locked it.
struct DueCron {
    std::int64_t id = 0;
    std::int64_t user_id = 0;
    std::optional<std::int64_t> namespace_id;
    std::string name;
    schedule::Schedule schedule = schedule::Schedule::daily;
    std::string manifest;
    std::optional<TimePoint> next_run;  // nullopt: not a finite timestamp of the common era
    // As stored (epoch microseconds; nullopt: +-infinity), for the advance's "still the value
    // read" check.
    std::optional<std::int64_t> next_run_us;
    bool owner_missing = false;
    bool owner_deleted = false;
    std::string email;
    std::string username;
    // A value of the row this scheduler cannot work with (an unknown schedule): the cron is
    // skipped and stays due; the reason says what.
    std::string fault_kind;
    std::string fault_reason;
};

struct DispatchedBuild {
    std::int64_t build_id = 0;  // 0 in a dry run
    std::int64_t build_number = 0;
    std::int64_t cron_id = 0;
    std::int64_t user_id = 0;
    std::string cron_name;
    std::string queue_driver;  // "docker", "qemu-x86_64"
    TimePoint scheduled;       // the cron's next_run that fell due
    TimePoint next_run;        // the cron's new next_run
};

struct SkippedCron {
    std::int64_t cron_id = 0;
    std::string kind;       // metric label: bad_manifest, driver_disabled, unknown_driver,
                            // deleted_owner, missing_privilege, write_failed, bad_next_run,
                            // bad_schedule, plan_failed
    std::string reason;     // one line
    bool advanced = false;  // false: the cron stays due and is retried on the next pass
};

struct BatchOutcome {
    std::size_t taken = 0;  // crons this batch locked
    std::vector<DispatchedBuild> builds;
    std::vector<SkippedCron> skipped;
    // Offered but not locked: taken by another session (SKIP LOCKED) or no longer due.
    std::vector<std::int64_t> not_taken;
    // Locked, but the manifest changed after it was planned: left untouched (still due), with
    // the text it has now, for the pipeline to plan and offer again in the next batch. Nothing
    // is parsed inside a transaction.
    std::vector<Candidate> deferred;
    bool isolated = false;  // the batch was redone cron by cron after a set-based failure
    std::string isolation_cause;
    TimePoint db_now;
    // Several dispatch sessions: some parts committed (their builds above) and then this failed
    // (a part, or the coordinating transaction). The pass enqueues the builds and stops.
    std::optional<std::string> error;
    bool session_lost = false;  // with error: the leader's own session is gone (or fenced)
};

// A committed cron build whose job may be missing from the queue.
struct PendingBuild {
    std::int64_t build_id = 0;
    std::string queue_driver;
};

}  // namespace djinn::store
