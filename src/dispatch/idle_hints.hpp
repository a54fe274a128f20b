#pragma once
// Where the idle pass's hint (store/due_hint.hpp) lives between passes, and between processes (a
// `-once` after another, a new leader after the old one): in Redis, beside the recovery
// watermark, under "djinn-scheduler:due-hint:<database>:<oid>". A hint that cannot be read (Redis
// down, evicted, written by another version) means scanning, never skipping; one that cannot be
// written only costs the next pass its scan.
//
// Thread safety: not thread-safe; used by the pass's thread while no enqueue is in flight (the
// queue connection is the pass's).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/logger.h>

#include "queue/build_queue.hpp"
#include "store/due_hint.hpp"
#include "store/pg_connection.hpp"

namespace djinn::dispatch {

class IdleHints {
  public:
    IdleHints(queue::BuildQueue& queue, std::shared_ptr<spdlog::logger> log);

    std::optional<store::DueHint> read(store::PgConnection& conn);
    void write(store::PgConnection& conn, const store::DueHint& hint);

    static std::string key(const std::string& database, std::int64_t oid);

  private:
    // The key of conn's database (read once per session); empty when it could not be read.
    const std::string& key_for(store::PgConnection& conn);

    queue::BuildQueue& queue_;
    std::shared_ptr<spdlog::logger> log_;
    std::uint64_t session_ = 0;
    std::string key_;
};

}  // namespace djinn::dispatch
