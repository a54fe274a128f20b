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

std::vector<HostPort> split_addrs(const std::string& addrs) {
    std::vector<HostPort> out;
    std::size_t start = 0;
    for (;;) {
        const auto comma = addrs.find(',', start);
        out.push_back(split_addr(
            addrs.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
        if (comma == std::string::npos)
            return out;
        start = comma + 1;
    }
}

}  // namespace

std::string conninfo(const config::DatabaseConfig& db, const SessionOptions& opts) {
    const std::vector<HostPort> hosts = split_addrs(db.addr);
    std::string host_list, port_list;
    for (const auto& hp : hosts) {
        host_list += (host_list.empty() ? "" : ",") + hp.host;
        port_list += (port_list.empty() ? "" : ",") + hp.port;
    }
    std::ostringstream s;
    s << "host=" << quote(host_list) << " port=" << quote(port_list)
      << " dbname=" << quote(db.name);
    if (hosts.size() > 1) {
        // Several hosts (a primary and its standbys): the first one that accepts writes.
        s << " target_session_attrs=read-write";
    }
    if (!db.username.empty())
        s << " user=" << quote(db.username);
    if (!db.password.empty())
        s << " password=" << quote(db.password);
    // Nothing in the startup packet that a pooler may refuse (PgBouncer refuses `options` by
    // default): application_name is one PgBouncer passes on; every setting the session needs is
    // sent as a statement once connected (session_settings()).
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
    return s.str();
}

std::vector<std::pair<std::string, std::string>> session_settings(const SessionOptions& opts) {
    auto ms = [](std::chrono::milliseconds d) { return std::to_string(d.count()); };
    std::vector<std::pair<std::string, std::string>> out = {
        // What the SQL and its reading depend on, whatever the server, database, role or a
        // pooler carries: UTC (due is `next_run <= now() AT TIME ZONE 'UTC'` anyway), ISO
        // dates, the Djinn schema behind the catalog, the isolation the batch's row locks
        // assume, UTF-8 text, writable transactions.
        {"TimeZone", "'UTC'"},
        {"DateStyle", "'ISO, YMD'"},
        {"IntervalStyle", "postgres"},
        {"client_encoding", "'UTF8'"},
        {"standard_conforming_strings", "on"},
        {"search_path", "pg_catalog, public"},
        {"default_transaction_isolation", "'read committed'"},
        {"default_transaction_read_only", "off"},
        {"default_transaction_deferrable", "off"},
        // Every wait is bounded by statement_timeout; a role's tiny lock_timeout would make
        // batches fail for nothing.
        {"statement_timeout", ms(opts.statement_timeout)},
        {"lock_timeout", "0"},
        // The frozen-leader bound (leader_lock.hpp), on the server's side of the session.
        {"idle_in_transaction_session_timeout", ms(opts.idle_in_transaction_timeout)},
        {"idle_session_timeout", ms(opts.idle_session_timeout)},
        {"tcp_keepalives_idle", std::to_string(opts.keepalive_idle.count())},
        {"tcp_user_timeout", ms(opts.tcp_user_timeout)},
    };
    return out;
}

std::string describe(const config::DatabaseConfig& db) {
    std::string hosts;
    for (const auto& hp : split_addrs(db.addr))
        hosts += (hosts.empty() ? "" : ",") + hp.host + ":" + hp.port;
    std::string out =
        (db.username.empty() ? std::string() : db.username + "@") + hosts + "/" + db.name;
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

namespace {

int server_backend_pid(pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    return tx.exec1("SELECT pg_catalog.pg_backend_pid()")[0].as<int>();
}

std::unique_ptr<pqxx::connection> connect(const std::string& info) {
    auto conn = std::make_unique<pqxx::connection>(info);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    // Never reconnect behind our back: a new backend would not hold our session state.
    conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
    return conn;
}

}  // namespace

const char* const kTransactionPoolingHint =
    "the connection goes through a transaction- or statement-pooling proxy (PgBouncer "
    "pool_mode = transaction or statement): a session advisory lock and session settings cannot "
    "be held through it; point database.addr at PostgreSQL itself or at a session-pooling port "
    "(pool_mode = session)";

std::variant<std::unique_ptr<PgConnection>, PgError> PgConnection::open(
    const config::DatabaseConfig& db, const SessionOptions& opts) {
    const std::string info = conninfo(db, opts);
    try {
        auto conn = connect(info);
        if (conn->server_version() < 140000) {
            return PgError{PgErrorKind::query, "",
                           "PostgreSQL " + std::to_string(conn->server_version() / 10000) +
                               " is too old: djinn-scheduler needs 14 or later "
                               "(idle_session_timeout bounds a frozen leader)"};
        }
        // The server process that serves us. Through a pooler, libpq sees the pooler's own
        // process id instead.
        const int server_pid = server_backend_pid(*conn);
        const bool pooled = server_pid != conn->backendpid();
        if (pooled) {
            // Transaction pooling gives our server connection to the next client as soon as a
            // statement ends. Be that next client: a second connection that gets the very
            // server process our first statement ran on (PgBouncer hands out the most recently
            // used one first) proves that the first connection does not own it.
            auto probe = connect(info);
            const int probe_pid = server_backend_pid(*probe);
            const int again = server_backend_pid(*conn);
            if (probe_pid == server_pid || again != server_pid) {
                return PgError{PgErrorKind::pooler, "",
                               std::string(kTransactionPoolingHint) + " (server process " +
                                   std::to_string(server_pid) + " served another client next)"};
            }
        }
        // Every setting the scheduler's SQL depends on, as ordinary statements: they hold
        // whatever the server, the database, the role or a (session) pooler carries.
        std::string set;
        for (const auto& [name, value] : session_settings(opts))
            set += "SET " + name + " = " + value + ";";
        {
            pqxx::nontransaction tx(*conn);
            tx.exec(set);
        }
        return std::unique_ptr<PgConnection>(new PgConnection(std::move(conn), server_pid, pooled));
    } catch (...) {
        PgError e = translate_current_exception();
        if (e.kind == PgErrorKind::query || e.kind == PgErrorKind::privilege)
            e.message = "setting up the session failed: " + e.message;
        else
            e.kind = PgErrorKind::connection;
        return e;
    }
}

PgConnection::PgConnection(std::unique_ptr<pqxx::connection> conn, int server_pid, bool pooled)
    : conn_(std::move(conn)),
      backend_pid_(conn_->backendpid()),
      server_pid_(server_pid),
      pooled_(pooled) {
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

std::variant<std::monostate, PgError> PgConnection::ping() {
    return run([](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        tx.exec("SELECT 1");
    });
}

}  // namespace djinn::store
