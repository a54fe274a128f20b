#pragma once
// How a session-level advisory lock on a bigint key is seen in pg_locks, shared by the leader
// lock (which takes it) and the dispatch transaction's fence (which checks it before writing).
// pg_locks shows a bigint key as classid = high 32 bits, objid = low 32 bits (both unsigned),
// objsubid = 1.
//
// Thread safety: pure. Failure: none.
#include <cstdint>
#include <string>

namespace djinn::store {

struct PgLockId {
    std::uint32_t classid;
    std::uint32_t objid;
    std::uint32_t objsubid;
};

PgLockId pg_lock_id(std::int64_t key);

// The SQL predicate "the session with backend pid <pid_sql> holds the advisory lock whose
// classid and objid are the bigint parameters $<classid_param> and $<objid_param>", in this
// database. pid_sql is an SQL expression ("pg_catalog.pg_backend_pid()").
std::string advisory_lock_held_sql(int classid_param, int objid_param,
                                   const std::string& pid_sql = "pg_catalog.pg_backend_pid()");

}  // namespace djinn::store
