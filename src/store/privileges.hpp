#pragma once
// The privileges a dispatch needs (contract section 1a), checked with has_table_privilege and
// has_sequence_privilege, each missing one reported with the GRANT that fixes it. Djinn v1.3.0's
// role lacks USAGE on build_variables_id_seq and build_keys_id_seq: without them the builds that
// copy variables or keys stay due (reported), the others are dispatched.
//
// Thread safety: stateless. Failure: database errors come back as PgError.
#include <string>
#include <variant>
#include <vector>

#include "store/pg_connection.hpp"

namespace djinn::store {

struct MissingPrivilege {
    std::string what;   // "INSERT on table build_variables"
    std::string grant;  // the GRANT statement that fixes it
};

struct Privileges {
    bool can_dispatch = true;        // everything but variables and keys is there
    bool can_copy_variables = true;  // INSERT build_variables + USAGE build_variables_id_seq
    bool can_copy_keys = true;       // INSERT build_keys + USAGE build_keys_id_seq
    std::vector<MissingPrivilege> missing;

    friend bool operator==(const Privileges& a, const Privileges& b) {
        if (a.can_dispatch != b.can_dispatch || a.can_copy_variables != b.can_copy_variables ||
            a.can_copy_keys != b.can_copy_keys || a.missing.size() != b.missing.size())
            return false;
        for (std::size_t i = 0; i < a.missing.size(); ++i) {
            if (a.missing[i].what != b.missing[i].what)
                return false;
        }
        return true;
    }
};

class PrivilegeCheck {
  public:
    static std::variant<Privileges, PgError> run(PgConnection& conn);
};

}  // namespace djinn::store
