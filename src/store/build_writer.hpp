#pragma once
// Writes the rows of a batch's builds in Djinn's exact shape (contract section 2): builds,
// build_triggers, build_tags, cron_builds, build_drivers, build_variables (copied and from env),
// build_keys, build_objects, build_stages, build_jobs, build_artifacts. One set-based statement
// per table for the whole batch (unnest of array parameters), ids taken from the sequences in one
// round trip beforehand because the rows reference each other.
//
// Thread safety: none (one transaction). Failure: libpqxx exceptions pass through (the caller's
// PgConnection::run translates them); a statement that writes fewer build rows than asked (an
// operator's trigger, say) throws std::runtime_error, failing the batch like any SQL error.
#include <cstdint>
#include <vector>

#include "common/clock.hpp"
#include "common/hashids.hpp"
#include "manifest/build_plan.hpp"
#include "store/batch_types.hpp"
#include "store/sql_runner.hpp"
#include "store/table_rows.hpp"

namespace djinn::store {

struct BuildRow {
    const DueCron* cron = nullptr;
    manifest::BuildPlan plan;
    std::int64_t number = 0;
    TimePoint created;          // builds.created_at; its stages and jobs follow it by 1 µs each
    TimePoint next_run;         // the cron's new next_run (named in the trigger's comment)
    std::int64_t build_id = 0;  // set by write()
};

class BuildWriter {
  public:
    explicit BuildWriter(ArtifactHasher& hasher) : hasher_(hasher) {}

    using Via = TableRows::Via;

    // Allocates the ids and writes every row of `rows`: the tables whose rows are all the
    // client's by COPY (`copy`) or by INSERT (`insert`: for a cron-by-cron redo, whose failures
    // must roll back to a savepoint). Returns the builds ids, in `rows` order (also stored in
    // each row).
    std::vector<std::int64_t> write(SqlRunner& sql, const std::vector<BuildRow*>& rows, Via via);

  private:
    ArtifactHasher& hasher_;
};

// n secrets of 32 lowercase hex characters from 16 bytes of the CSPRNG each (builds.secret),
// one after the other.
std::string random_secrets(std::size_t n);

// "cron:<name with spaces replaced by ->" (build_tags.name).
std::string cron_tag(const std::string& cron_name);

}  // namespace djinn::store
