#include "store/privileges.hpp"

#include <pqxx/pqxx>

namespace djinn::store {
namespace {

enum class Area { essential, variables, keys };

struct Need {
    const char* kind;  // "table" / "sequence"
    const char* name;
    const char* privilege;
    Area area;
};

// Everything a dispatch reads and writes (the GRANTs Djinn v1.3.0 gives, plus the two sequence
// grants it forgot).
constexpr Need kNeeds[] = {
    {"table", "cron", "SELECT", Area::essential},
    {"table", "cron", "UPDATE", Area::essential},
    {"table", "users", "SELECT", Area::essential},
    {"table", "variables", "SELECT", Area::essential},
    {"table", "keys", "SELECT", Area::essential},
    {"table", "objects", "SELECT", Area::essential},
    {"table", "builds", "SELECT", Area::essential},
    {"table", "builds", "INSERT", Area::essential},
    {"table", "build_triggers", "INSERT", Area::essential},
    {"table", "build_tags", "INSERT", Area::essential},
    {"table", "cron_builds", "SELECT", Area::essential},
    {"table", "cron_builds", "INSERT", Area::essential},
    {"table", "build_drivers", "SELECT", Area::essential},
    {"table", "build_drivers", "INSERT", Area::essential},
    {"table", "build_objects", "INSERT", Area::essential},
    {"table", "build_stages", "INSERT", Area::essential},
    {"table", "build_jobs", "INSERT", Area::essential},
    {"table", "build_artifacts", "INSERT", Area::essential},
    {"sequence", "builds_id_seq", "USAGE", Area::essential},
    {"sequence", "build_triggers_id_seq", "USAGE", Area::essential},
    {"sequence", "build_tags_id_seq", "USAGE", Area::essential},
    {"sequence", "cron_builds_id_seq", "USAGE", Area::essential},
    {"sequence", "build_drivers_id_seq", "USAGE", Area::essential},
    {"sequence", "build_objects_id_seq", "USAGE", Area::essential},
    {"sequence", "build_stages_id_seq", "USAGE", Area::essential},
    {"sequence", "build_jobs_id_seq", "USAGE", Area::essential},
    {"sequence", "build_artifacts_id_seq", "USAGE", Area::essential},
    {"table", "build_variables", "INSERT", Area::variables},
    {"sequence", "build_variables_id_seq", "USAGE", Area::variables},
    {"table", "build_keys", "INSERT", Area::keys},
    {"sequence", "build_keys_id_seq", "USAGE", Area::keys},
};

std::string quote_ident(const std::string& s) {
    bool plain = !s.empty() && !(s[0] >= '0' && s[0] <= '9');
    for (char c : s) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            plain = false;
    }
    if (plain)
        return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"')
            out += '"';
        out += c;
    }
    return out + "\"";
}

}  // namespace

std::variant<Privileges, PgError> PrivilegeCheck::run(PgConnection& conn) {
    Privileges p;
    auto r = conn.run([&](pqxx::connection& c) {
        pqxx::read_transaction tx(c);
        const std::string role = tx.exec1("SELECT current_user")[0].as<std::string>();
        for (const Need& n : kNeeds) {
            const bool table = std::string_view(n.kind) == "table";
            const std::string fn = table ? "has_table_privilege" : "has_sequence_privilege";
            const bool ok =
                tx.exec_params1("SELECT pg_catalog." + fn + "($1, $2)",
                                std::string("public.") + n.name, std::string(n.privilege))[0]
                    .as<bool>();
            if (ok)
                continue;
            p.missing.push_back({std::string(n.privilege) + " on " + n.kind + " " + n.name,
                                 "GRANT " + std::string(n.privilege) + " ON " +
                                     (table ? "TABLE" : "SEQUENCE") + " public." + n.name + " TO " +
                                     quote_ident(role) + ";"});
            if (n.area == Area::variables)
                p.can_copy_variables = false;
            if (n.area == Area::keys)
                p.can_copy_keys = false;
            if (n.area == Area::essential)
                p.can_dispatch = false;
        }
    });
    if (auto* e = std::get_if<PgError>(&r))
        return *e;
    return p;
}

}  // namespace djinn::store
