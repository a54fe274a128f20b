#include "store/advisory_lock.hpp"

namespace djinn::store {

PgLockId pg_lock_id(std::int64_t key) {
    auto bits = static_cast<std::uint64_t>(key);
    return PgLockId{static_cast<std::uint32_t>(bits >> 32),
                    static_cast<std::uint32_t>(bits & 0xffffffffU), 1};
}

std::string advisory_lock_held_sql(int classid_param, int objid_param, const std::string& pid_sql) {
    return "EXISTS (SELECT 1 FROM pg_catalog.pg_locks"
           " WHERE locktype = 'advisory' AND pid = " +
           pid_sql +
           " AND granted"
           " AND database = (SELECT oid FROM pg_catalog.pg_database"
           "                 WHERE datname = pg_catalog.current_database())"
           " AND classid = $" +
           std::to_string(classid_param) + "::bigint::oid AND objid = $" +
           std::to_string(objid_param) + "::bigint::oid AND objsubid = 1)";
}

}  // namespace djinn::store
