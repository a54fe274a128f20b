#include "store/pg_connection.hpp"

#include <pqxx/pqxx>

#include <atomic>
#include <sstream>

namespace djinn::store {
namespace {

// libpq keyword/value quoting: single quotes, backslash-escape ' and \.
std::string quote(const std::string& v) {
    std::string out = "'";
    for (char c : v) {
        if (c == '\'' || c == '\\')
            out += '\\';
        out += c;
    }
    out += '\'';
    return out;
}

struct HostPort {
    std::string host;
    std::string port;
};

HostPort split_addr(const std::string& addr) {
    if (!addr.empty() && addr.front() == '/')
        return {addr, "5432"};                   // unix socket directory
    if (!addr.empty() && addr.front() == '[') {  // [v6]:port
        auto close = addr.find(']');
        if (close != std::string::npos) {
            std::string host = addr.substr(1, close - 1);
            std::string port = close + 2 <= addr.size() ? addr.substr(close + 2) : "";
            return {host, port.empty() ? "5432" : port};
        }
    }
    auto colon = addr.rfind(':');
    if (colon == std::string::npos)
        return {addr, "5432"};
    return {addr.substr(0, colon), addr.substr(colon + 1)};
}

std::string one_line(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    for (char& c : s) {
        if (c == '\n' || c == '\t')
            c = ' ';
    }
    return s;
}

}  // namespace

std::string conninfo(const config::DatabaseConfig& db, const SessionOptions& opts) {
    HostPort hp = split_addr(db.addr);
    std::ostringstream s;
    s << "host=" << quote(hp.host) << " port=" << quote(hp.port) << " dbname=" << quote(db.name);
    if (!db.username.empty())
        s << " user=" << quote(db.username);
    if (!db.password.empty())
        s << " password=" << quote(db.password);
    s << " application_name=" << quote(opts.application_name)
      << " connect_timeout=" << opts.connect_timeout.count() << " keepalives=1"
      << " keepalives_idle=" << opts.keepalive_idle.count() << " keepalives_interval=2"
      << " keepalives_count=3"
      << " tcp_user_timeout=" << opts.tcp_user_timeout.count();
    if (db.tls) {
        s << " sslmode=verify-full sslrootcert=" << quote(db.tls->ca);
        if (!db.tls->cert.empty())
            s << " sslcert=" << quote(db.tls->cert);
        if (!db.tls->key.empty())
            s << " sslkey=" << quote(db.tls->key);
    } else {
        s << " sslmode=prefer";
    }
    // Session settings travel in the startup packet, so they hold from the first statement.
    std::string options = "-c TimeZone=UTC";
    if (opts.idle_session_timeout.count() > 0)
        options += " -c idle_session_timeout=" + std::to_string(opts.idle_session_timeout.count());
    if (opts.idle_in_transaction_timeout.count() > 0)
        options += " -c idle_in_transaction_session_timeout=" +
                   std::to_string(opts.idle_in_transaction_timeout.count());
    if (opts.statement_timeout.count() > 0)
        options += " -c statement_timeout=" + std::to_string(opts.statement_timeout.count());
    s << " options=" << quote(options);
    return s.str();
}

std::string describe(const config::DatabaseConfig& db) {
    HostPort hp = split_addr(db.addr);
    std::string out = (db.username.empty() ? std::string() : db.username + "@") + hp.host + ":" +
                      hp.port + "/" + db.name;
    if (db.tls)
        out += " (tls verify-full)";
    return out;
}

PgError translate_current_exception() {
    try {
        throw;
    } catch (const pqxx::broken_connection& e) {
        // libpq's own words ("Could not obtain client encoding: not connected") do not say what
        // happened: the server, a timeout or the network ended the session.
        return {PgErrorKind::connection, "",
                "the PostgreSQL session is gone (ended by the server, a timeout or the network): " +
                    one_line(e.what())};
    } catch (const pqxx::in_doubt_error& e) {
        return {PgErrorKind::connection, "",
                "the PostgreSQL session broke during COMMIT; the batch may or may not have "
                "committed (a committed batch is found by the recovery sweep): " +
                    one_line(e.what())};
    } catch (const pqxx::serialization_failure& e) {
        return {PgErrorKind::serialization, "40001", one_line(e.what())};
    } catch (const pqxx::deadlock_detected& e) {
        return {PgErrorKind::serialization, "40P01", one_line(e.what())};
    } catch (const pqxx::insufficient_privilege& e) {
        return {PgErrorKind::privilege, e.sqlstate(), one_line(e.what())};
    } catch (const pqxx::sql_error& e) {
        const std::string& state = e.sqlstate();
        // 57P01 admin shutdown / 57P02 crash shutdown / 57P03 cannot connect now / 08xxx:
        // the session is gone.
        bool gone = state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0;
        return {gone ? PgErrorKind::connection : PgErrorKind::query, state, one_line(e.what())};
    } catch (const pqxx::failure& e) {
        return {PgErrorKind::query, "", one_line(e.what())};
    }
}

std::variant<std::unique_ptr<PgConnection>, PgError> PgConnection::open(
    const config::DatabaseConfig& db, const SessionOptions& opts) {
    try {
        auto conn = std::make_unique<pqxx::connection>(conninfo(db, opts));
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        // Never reconnect behind our back: a new backend would not hold our session state.
        conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
        return std::unique_ptr<PgConnection>(new PgConnection(std::move(conn)));
    } catch (...) {
        PgError e = translate_current_exception();
        e.kind = PgErrorKind::connection;
        return e;
    }
}

PgConnection::PgConnection(std::unique_ptr<pqxx::connection> conn)
    : conn_(std::move(conn)), backend_pid_(conn_->backendpid()) {
    static std::atomic<std::uint64_t> next_session{1};
    session_id_ = next_session.fetch_add(1);
}

PgConnection::~PgConnection() = default;

std::variant<std::monostate, PgError> PgConnection::run(
    const std::function<void(pqxx::connection&)>& work) {
    if (broken_ || !conn_->is_open() || conn_->backendpid() != backend_pid_) {
        broken_ = true;
        return PgError{PgErrorKind::connection, "", "database session lost"};
    }
    try {
        work(*conn_);
    } catch (...) {
        PgError e = translate_current_exception();
        if (e.kind == PgErrorKind::connection)
            broken_ = true;
        return e;
    }
    if (!conn_->is_open() || conn_->backendpid() != backend_pid_) {
        broken_ = true;
        return PgError{PgErrorKind::connection, "", "database session lost"};
    }
    return std::monostate{};
}

}  // namespace djinn::store
