#include "store/session_state.hpp"

#include <pqxx/pqxx>

namespace djinn::store {

std::variant<SessionState, PgError> SessionState::read(PgConnection& conn) {
    SessionState s;
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        const auto row = tx.exec1(
            "SELECT pg_catalog.pg_is_in_recovery(), "
            "pg_catalog.current_setting('transaction_read_only') = 'on', "
            "pg_catalog.pg_backend_pid(), pg_catalog.current_setting('statement_timeout'), "
            "pg_catalog.current_setting('TimeZone'), pg_catalog.current_setting('DateStyle'), "
            "pg_catalog.current_setting('search_path'), "
            "pg_catalog.current_setting('server_version_num')::int");
        s.in_recovery = row[0].as<bool>();
        s.read_only = row[1].as<bool>();
        s.server_pid = row[2].as<int>();
        s.statement_timeout = row[3].as<std::string>();
        s.time_zone = row[4].as<std::string>();
        s.date_style = row[5].as<std::string>();
        s.search_path = row[6].as<std::string>();
        s.server_version = row[7].as<int>();
    });
    if (auto* e = std::get_if<PgError>(&r))
        return *e;
    return s;
}

std::string SessionState::kind(const PgConnection& conn) const {
    if (server_pid != conn.server_pid())
        return "pooler";
    if (in_recovery || read_only)
        return "read_only";
    return "database";
}

std::string SessionState::problem(const PgConnection& conn, const std::string& where) const {
    if (server_pid != conn.server_pid()) {
        return std::string(kTransactionPoolingHint) + " (the session moved from server process " +
               std::to_string(conn.server_pid()) + " to " + std::to_string(server_pid) + ")";
    }
    if (in_recovery) {
        return "PostgreSQL " + where +
               " is a standby in recovery (read-only): waiting for it to be promoted or for "
               "database.addr to reach the primary; list every host (\"pg-a:5432,pg-b:5432\") "
               "to follow a failover";
    }
    if (read_only) {
        return "PostgreSQL " + where +
               " accepts no writes (transaction_read_only is on, e.g. "
               "default_transaction_read_only set by the server's configuration): the scheduler "
               "needs a writable primary";
    }
    if (server_version < 140000) {
        return "PostgreSQL " + where + " is version " + std::to_string(server_version / 10000) +
               ": djinn-scheduler needs 14 or later (idle_session_timeout bounds a frozen "
               "leader)";
    }
    if (time_zone != "UTC" || date_style.rfind("ISO", 0) != 0 ||
        search_path != "pg_catalog, public") {
        return "the session's settings did not hold (TimeZone " + time_zone + ", DateStyle " +
               date_style + ", search_path " + search_path +
               "): something between the scheduler and PostgreSQL resets them; connect directly "
               "or through a session-pooling port";
    }
    return {};
}

}  // namespace djinn::store
