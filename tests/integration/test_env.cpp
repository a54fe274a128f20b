#include "test_env.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "queue/curlyq_codec.hpp"

extern char** environ;

namespace djinn::testing {

std::string required_env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') {
        throw std::runtime_error(std::string(name) +
                                 " is not set: run integration tests through scripts/test.sh, "
                                 "which starts PostgreSQL and Redis");
    }
    return v;
}

std::string fixture_path(const std::string& relative) {
    return std::string(DJINN_FIXTURES_DIR) + "/" + relative;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out)
        throw std::runtime_error("cannot write " + path);
}

namespace {

// Every directory temp_dir() made, removed when the test process exits (a failed assertion
// returns from the test, the process still exits normally). scripts/test.sh also runs the
// tests under a TMPDIR of its own that it removes, for a process that dies.
struct TempDirs {
    std::mutex mutex;  // tests start schedulers from several threads at once
    std::vector<std::string> paths;
    ~TempDirs() {
        for (const auto& p : paths) {
            std::error_code ignored;
            std::filesystem::remove_all(p, ignored);
        }
    }
};
TempDirs& temp_dirs() {
    static TempDirs dirs;
    return dirs;
}

}  // namespace

std::string temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/djinn-it.XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr)
        throw std::runtime_error("mkdtemp failed");
    chmod(tmpl.c_str(), 0755);
    {
        TempDirs& dirs = temp_dirs();
        const std::lock_guard<std::mutex> lock(dirs.mutex);
        dirs.paths.push_back(tmpl);
    }
    return tmpl;
}

namespace {

std::string admin_conninfo(const std::string& db) {
    return "host=" + required_env("DJINN_TEST_PGHOST") +
           " port=" + required_env("DJINN_TEST_PGPORT") +
           " user=" + required_env("DJINN_TEST_PGSUPERUSER") + " dbname=" + db +
           " options='-c TimeZone=UTC'";
}

std::atomic<int> db_counter{0};

}  // namespace

TestDatabase::TestDatabase() {
    name_ = "djinn_it_" + std::to_string(::getpid()) + "_" + std::to_string(db_counter++);
    pqxx::connection c(admin_conninfo("postgres"));
    pqxx::nontransaction tx(c);
    tx.exec("CREATE DATABASE " + name_ + " TEMPLATE " + required_env("DJINN_TEST_PGTEMPLATE"));
    admin_ = std::make_unique<pqxx::connection>(admin_conninfo(name_));
}

TestDatabase::~TestDatabase() {
    admin_.reset();
    try {
        pqxx::connection c(admin_conninfo("postgres"));
        pqxx::nontransaction tx(c);
        tx.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception&) {
        // Best effort: the throwaway server is deleted at the end of the run anyway.
    }
}

std::unique_ptr<pqxx::connection> TestDatabase::new_admin_session() const {
    return std::make_unique<pqxx::connection>(admin_conninfo(name_));
}

pqxx::connection& TestDatabase::admin() {
    if (!admin_->is_open())
        admin_ = std::make_unique<pqxx::connection>(admin_conninfo(name_));
    return *admin_;
}

void TestDatabase::exec(const std::string& sql) {
    pqxx::work tx(admin());
    tx.exec(sql);
    tx.commit();
}

std::int64_t TestDatabase::count(const std::string& sql) {
    pqxx::work tx(admin());
    return tx.exec1(sql)[0].as<std::int64_t>();
}

std::string TestDatabase::scalar(const std::string& sql) {
    pqxx::work tx(admin());
    auto f = tx.exec1(sql)[0];
    return f.is_null() ? std::string("<null>") : f.as<std::string>();
}

void TestDatabase::exec_file(const std::string& path) {
    exec(read_file(path));
}

std::string TestDatabase::addr() const {
    return required_env("DJINN_TEST_PGHOST") + ":" + required_env("DJINN_TEST_PGPORT");
}

config::DatabaseConfig TestDatabase::scheduler_config() const {
    config::DatabaseConfig d;
    d.addr = addr();
    d.name = name_;
    d.username = "djinn_scheduler";
    d.password = "secret";
    return d;
}

Redis::Redis()
    : Redis(required_env("DJINN_TEST_REDIS_HOST"),
            std::stoi(required_env("DJINN_TEST_REDIS_PORT"))) {}

Redis::Redis(const std::string& h, int p) : host(h), port(p) {
    timeval tv{5, 0};
    ctx_ = redisConnectWithTimeout(host.c_str(), port, tv);
    if (ctx_ == nullptr || ctx_->err) {
        if (ctx_ != nullptr)
            redisFree(ctx_);  // the destructor does not run when we throw
        ctx_ = nullptr;
        throw std::runtime_error("cannot connect to test Redis");
    }
}

Redis::~Redis() {
    if (ctx_)
        redisFree(ctx_);
}

namespace {
void render(const redisReply* r, std::vector<std::string>& out) {
    switch (r->type) {
        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
            out.emplace_back(r->str, r->len);
            break;
        case REDIS_REPLY_INTEGER:
            out.push_back(std::to_string(r->integer));
            break;
        case REDIS_REPLY_ARRAY:
            for (std::size_t i = 0; i < r->elements; ++i)
                render(r->element[i], out);
            break;
        case REDIS_REPLY_ERROR:
            throw std::runtime_error(std::string("redis error: ") + std::string(r->str, r->len));
        default:
            break;
    }
}
}  // namespace

std::vector<std::string> Redis::command(const std::vector<std::string>& argv) {
    std::vector<const char*> args;
    std::vector<std::size_t> lens;
    for (const auto& a : argv) {
        args.push_back(a.data());
        lens.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lens.data()));
    if (reply == nullptr)
        throw std::runtime_error("redis connection lost");
    std::vector<std::string> out;
    try {
        render(reply, out);
    } catch (...) {
        freeReplyObject(reply);
        throw;
    }
    freeReplyObject(reply);
    return out;
}

std::string Redis::get_str(const std::vector<std::string>& argv) {
    auto r = command(argv);
    return r.empty() ? std::string() : r[0];
}

long long Redis::integer(const std::vector<std::string>& argv) {
    auto r = command(argv);
    return r.empty() ? 0 : std::stoll(r[0]);
}

void Redis::flushall() {
    command({"FLUSHALL"});
}

std::string redis_addr() {
    return required_env("DJINN_TEST_REDIS_HOST") + ":" + required_env("DJINN_TEST_REDIS_PORT");
}

namespace {

std::vector<std::string> merged_env(const std::map<std::string, std::string>& extra) {
    std::map<std::string, std::string> all;
    for (char** e = environ; *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos)
            all[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : extra)
        all[k] = v;
    std::vector<std::string> out;
    for (const auto& [k, v] : all)
        out.push_back(k + "=" + v);
    return out;
}

pid_t spawn(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
            const std::string& log_path) {
    std::vector<std::string> argv_s{DJINN_SCHEDULER_BIN};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    auto env_s = merged_env(env);
    std::vector<char*> envp;
    for (auto& e : env_s)
        envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    sigset_t dfl;
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        throw std::runtime_error("posix_spawn failed for " + argv_s[0]);
    return pid;
}

int decode_status(int status) {
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return -WTERMSIG(status);
    return -1;
}

}  // namespace

RedisServer::RedisServer(std::string password) : password_(std::move(password)) {
    start();
}

RedisServer::~RedisServer() {
    stop();
}

void RedisServer::start() {
    const std::string server = required_env("DJINN_TEST_REDIS_SERVER");
    for (int attempt = 0; attempt < 3; ++attempt) {
        if (port_ <= 0)
            port_ = free_port();
        std::vector<std::string> args = {
            server,         "--port", std::to_string(port_), "--bind", "127.0.0.1",  "--save", "",
            "--appendonly", "no",     "--daemonize",         "no",     "--loglevel", "warning"};
        if (!password_.empty())
            args.insert(args.end(), {"--requirepass", password_});
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        const int rc = posix_spawn(&pid_, server.c_str(), &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0)
            throw std::runtime_error("cannot spawn " + server);
        const bool up = eventually(
            [&] {
                int status = 0;
                if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                    pid_ = -1;
                    return true;  // exited (port taken): stop waiting
                }
                try {
                    return client()->get_str({"PING"}) == "PONG";
                } catch (const std::exception&) {
                    return false;
                }
            },
            std::chrono::seconds(10));
        if (up && pid_ > 0)
            return;
        stop();
        port_ = -1;  // taken meanwhile: another one
    }
    throw std::runtime_error("redis-server did not start");
}

void RedisServer::stop() {
    if (pid_ > 0) {
        // SIGKILL ends a stopped process too; SIGCONT first would let it run what is buffered.
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
}

void RedisServer::signal(int sig) const {
    if (pid_ > 0)
        ::kill(pid_, sig);
}

std::unique_ptr<Redis> RedisServer::client() const {
    auto r = std::make_unique<Redis>("127.0.0.1", port_);
    if (!password_.empty())
        r->command({"AUTH", password_});
    return r;
}

ProcessResult run_scheduler(const std::vector<std::string>& args,
                            const std::map<std::string, std::string>& env,
                            std::chrono::seconds timeout) {
    SchedulerProcess p(args, env);
    int rc = p.wait(std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
    ProcessResult r;
    r.exit_code = rc;
    r.output = p.output();
    return r;
}

SchedulerProcess::SchedulerProcess(const std::vector<std::string>& args,
                                   const std::map<std::string, std::string>& env) {
    log_path_ = temp_dir() + "/scheduler.log";
    pid_ = spawn(args, env, log_path_);
}

SchedulerProcess::~SchedulerProcess() {
    if (!exited_ && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status_, 0);
    }
}

void SchedulerProcess::signal(int sig) {
    if (!exited_)
        ::kill(pid_, sig);
}

bool SchedulerProcess::running() {
    if (exited_)
        return false;
    pid_t r = ::waitpid(pid_, &status_, WNOHANG);
    if (r == pid_)
        exited_ = true;
    return !exited_;
}

int SchedulerProcess::wait(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (running()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return -1000;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return decode_status(status_);
}

std::string SchedulerProcess::output() const {
    try {
        return read_file(log_path_);
    } catch (const std::exception&) {
        return "";
    }
}

std::string build_number_problems(TestDatabase& db) {
    std::string out;
    const auto repeated = db.count(
        "SELECT count(DISTINCT user_id) FROM (SELECT user_id, number FROM builds GROUP BY 1, 2 "
        "HAVING count(*) > 1) d");
    if (repeated > 0)
        out += "numbers repeated for " + std::to_string(repeated) + " user(s); ";
    const auto gaps = db.count(
        "SELECT count(*) FROM (SELECT user_id, count(*) AS c, max(number) AS m FROM builds "
        "GROUP BY 1) x WHERE c <> m");
    if (gaps > 0)
        out += "numbers not 1..n for " + std::to_string(gaps) + " user(s)";
    return out;
}

void add_users(TestDatabase& db, int n) {
    db.exec(
        "INSERT INTO users (id, email, username, password) "
        "SELECT u, 'u' || u || '@example.com', 'user' || u, '\\x00' "
        "FROM generate_series(1, " +
        std::to_string(n) + ") AS u; SELECT setval('users_id_seq', " + std::to_string(n) + ")");
}

std::string djinn_config(const TestDatabase& db, const ConfigOptions& o) {
    std::ostringstream s;
    if (!o.pidfile.empty())
        s << "pidfile \"" << o.pidfile << "\"\n";
    s << "interval " << o.interval << "\n";
    s << "batch_size " << o.batch_size << "\n";
    s << "log " << o.log_level << " \"" << o.log_file << "\"\n";
    s << "drivers [\n";
    for (const auto& d : o.drivers)
        s << "    \"" << d << "\",\n";
    s << "]\n";
    s << "crypto {\n    salt \"1a2b3c4d5e6f7g8h\"\n}\n";
    s << "database {\n    addr \"" << db.addr() << "\"\n    name \"" << db.name()
      << "\"\n    username \"djinn_scheduler\"\n    password \"" << o.password << "\"\n";
    if (!o.database_extra.empty())
        s << "    " << o.database_extra << "\n";
    s << "}\n";
    s << "redis {\n    addr \"" << (o.redis_addr.empty() ? redis_addr() : o.redis_addr)
      << "\"\n}\n";
    if (!o.http_addr.empty())
        s << "http {\n    addr \"" << o.http_addr << "\"\n"
          << (o.http_extra.empty() ? "" : "    " + o.http_extra + "\n") << "}\n";
    s << o.extra;
    return s.str();
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
}

}  // namespace djinn::testing

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

namespace djinn::testing {

int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    auto* generic = reinterpret_cast<sockaddr*>(&addr);
    int port = -1;
    if (fd >= 0 && ::bind(fd, generic, len) == 0 && ::getsockname(fd, generic, &len) == 0)
        port = ntohs(addr.sin_port);
    if (fd >= 0)
        ::close(fd);
    if (port <= 0)
        throw std::runtime_error("free_port: no free loopback port");
    return port;
}

HttpResponse http_get(int port, const std::string& path, std::chrono::milliseconds timeout) {
    HttpResponse r;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return r;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return r;
    }
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) < 0) {
        ::close(fd);
        return r;
    }
    std::string data;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (::poll(&p, 1, static_cast<int>(std::max<long long>(1, left.count()))) <= 0)
            break;
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        data.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (data.rfind("HTTP/1.", 0) != 0 || data.size() < 12)
        return r;
    r.status = std::stoi(data.substr(9, 3));
    auto body = data.find("\r\n\r\n");
    if (body != std::string::npos)
        r.body = data.substr(body + 4);
    return r;
}

int logged_http_port(const std::string& log) {
    // No std::regex: GCC 12 warns falsely inside <regex> in sanitizer builds.
    const std::string marker = "serving /healthz /readyz /metrics on port ";
    auto at = log.find(marker);
    if (at == std::string::npos)
        return 0;
    std::size_t i = at + marker.size(), j = i;
    while (j < log.size() && log[j] >= '0' && log[j] <= '9')
        ++j;
    return j > i ? std::stoi(log.substr(i, j - i)) : 0;
}

double metric_value(const std::string& exposition, const std::string& name) {
    std::istringstream in(exposition);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(name + " ", 0) == 0)
            return std::stod(line.substr(name.size() + 1));
    }
    return -1;
}

}  // namespace djinn::testing

namespace djinn::testing {

// An independent reader of the gob payload (not our encoder run backwards): the stream holds
// the type definition message, then the value message {Host string; BuildID int64}.

static std::uint64_t gob_uint(const std::string& b, std::size_t& i) {
    auto c = static_cast<unsigned char>(b.at(i++));
    if (c < 0x80)
        return c;
    int n = 256 - c;
    std::uint64_t v = 0;
    for (int k = 0; k < n; ++k)
        v = (v << 8) | static_cast<unsigned char>(b.at(i++));
    return v;
}

GobValue decode_gob_payload(const std::string& b) {
    std::size_t i = 0;
    std::uint64_t len = gob_uint(b, i);  // type definition message
    i += len;
    std::uint64_t vlen = gob_uint(b, i);
    std::size_t end = i + vlen;
    std::uint64_t type = gob_uint(b, i);
    if (type != 130u)
        throw std::runtime_error("gob: unexpected type id");  // zig-zag of 65
    GobValue v;
    int field = -1;
    while (i < end) {
        std::uint64_t delta = gob_uint(b, i);
        if (delta == 0)
            break;
        field += static_cast<int>(delta);
        if (field == 0) {
            std::uint64_t n = gob_uint(b, i);
            v.host = b.substr(i, n);
            i += n;
        } else if (field == 1) {
            std::uint64_t u = gob_uint(b, i);
            v.build_id =
                (u & 1) ? ~static_cast<std::int64_t>(u >> 1) : static_cast<std::int64_t>(u >> 1);
        }
    }
    if (i != end)
        throw std::runtime_error("gob: trailing bytes in the value message");
    return v;
}

std::int64_t message_build_id(const std::string& message) {
    if (message.size() < 49)
        throw std::runtime_error("queue message too short");
    std::size_t n = static_cast<unsigned char>(message[48]);
    return decode_gob_payload(message.substr(49, n)).build_id;
}

QueueContents queue_contents(Redis& r, const std::string& driver) {
    QueueContents q;
    const std::string data = "builds_" + driver + ":data";
    std::string cursor = "0";
    do {
        // HSCAN replies [cursor, [field, value, ...]]; Redis::command flattens the nested array.
        auto page = r.command({"HSCAN", data, cursor, "COUNT", "1000"});
        if (page.empty())
            break;
        cursor = page[0];
        for (std::size_t i = 1; i + 1 < page.size(); i += 2) {
            q.jobs_of[message_build_id(page[i + 1])].push_back(page[i]);
            ++q.data;
        }
    } while (cursor != "0");
    for (auto& [build, ids] : q.jobs_of) {
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    }
    q.active = r.command({"LRANGE", "builds_" + driver + ":active", "0", "-1"});
    return q;
}

std::vector<std::int64_t> QueueContents::duplicated() const {
    std::vector<std::int64_t> out;
    for (const auto& [build, ids] : jobs_of) {
        if (ids.size() > 1)
            out.push_back(build);
    }
    return out;
}

std::size_t QueueContents::active_twice() const {
    std::set<std::string> seen;
    std::size_t twice = 0;
    for (const auto& id : active)
        twice += seen.insert(id).second ? 0U : 1U;
    return twice;
}

std::size_t QueueContents::active_without_data(Redis& r, const std::string& driver) const {
    std::size_t n = 0;
    for (const auto& id : active)
        n += r.integer({"HEXISTS", "builds_" + driver + ":data", id}) == 0 ? 1U : 0U;
    return n;
}

std::string enqueue_like_the_original(Redis& r, const std::string& driver, std::int64_t build_id) {
    const std::string id = queue::new_job_id();
    const std::string message =
        queue::curlyq_message(id, queue::gob_payload("djinn-scheduler", build_id));
    r.command({"HSETNX", "builds_" + driver + ":data", id, message});
    r.command({"RPUSH", "builds_" + driver + ":active", id});
    return id;
}

double scheduler_metric(SchedulerProcess& p, const std::string& name) {
    const HttpResponse r =
        http_get(logged_http_port(p.output()), "/metrics", std::chrono::milliseconds(2000));
    return r.status == 200 ? metric_value(r.body, name) : -1;
}

bool scheduler_leads(SchedulerProcess& p) {
    return scheduler_metric(p, "djinn_scheduler_leader") == 1;
}

}  // namespace djinn::testing
