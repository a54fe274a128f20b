#pragma once
// What a session is, read back from the server once it is set up: whether the server accepts
// writes (a standby in recovery, or a read-only primary, does not), whether the settings the
// scheduler sent hold, and whether the statements still reach the server process the session
// started on (a transaction-pooling proxy would move them).
//
// Thread safety: stateless. Failure: database errors come back as PgError.
#include <string>
#include <variant>

#include "store/pg_connection.hpp"

namespace djinn::store {

struct SessionState {
    bool in_recovery = false;       // pg_is_in_recovery(): a hot standby
    bool read_only = false;         // transaction_read_only (default_transaction_read_only is off)
    int server_pid = 0;             // pg_backend_pid() now
    std::string statement_timeout;  // as the server shows them
    std::string time_zone;
    std::string date_style;
    std::string search_path;
    int server_version = 0;  // server_version_num

    // "" when the session may lead, else why not (the cause and the fix), for a session opened
    // with `opts` on `conn`.
    std::string problem(const PgConnection& conn, const std::string& where) const;
    // The errors_total{kind} of problem(): "read_only", "pooler" or "database".
    std::string kind(const PgConnection& conn) const;

    static std::variant<SessionState, PgError> read(PgConnection& conn);
};

}  // namespace djinn::store
