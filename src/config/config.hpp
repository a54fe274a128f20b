#pragma once
// The scheduler's typed configuration, loaded from Djinn's own config language
// (scheduler.conf, contract section 4) or from YAML with the same keys (*.yaml / *.yml).
// Keys match case-insensitively; unknown keys, wrong types and bad values are errors that
// name file:line:column and the dotted key, all reported together (docs: parser.hpp for
// the grammar, decoder.hpp for the checks, string_expansion.hpp for ${VAR}).
//
// Keys (Djinn syntax; YAML has the same names). `log` has a second shape, a mapping of
// level, file and format as Kubernetes-style configs write it: in YAML
// `log: {level: info, file: /dev/stdout, format: json}` (format is log_format; set one of
// the two), in Djinn's language `log { level "info"; file "/dev/stdout" }`. The Djinn shape
// in YAML, `log: {info: /dev/stdout}`, loads too; the two shapes do not mix.
//
//   pidfile "<path>"                  interval <duration > 0>       batch_size <1..100000>
//   log <debug|info|warn|error> "<file>"   ("/dev/stdout", "/dev/stderr" or a path; several
//                                          entries: the most verbose one wins, as in Djinn)
//   log_format "text"|"json"          drivers ["docker", "os", "qemu-x86_64", "ssh",]
//   crypto { salt }                   (auth, block, hash: accepted and ignored, as Djinn's
//                                      shared crypto block has them)
//   database { addr name username password statement_timeout dispatch_sessions
//              tls { ca cert key } }
//                                     (`ssl` = deprecated tls)
//   redis { addr password }           http { addr liveness_timeout }  drain_timeout <duration>
//   leader { key <int64> retry_interval <duration> lock_timeout <duration> }
//
// Thread safety: Config is a plain value. The load functions may be called from any
// thread, but they read the environment (getenv) for ${VAR}: not while another thread
// calls setenv. Failure: never throws for bad input; problems come back in LoadResult.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace djinn::config {

enum class LogLevel { debug, info, warn, error };
enum class LogFormat { text, json };

struct TlsConfig {
    std::string ca;
    std::string cert;
    std::string key;
};

struct DatabaseConfig {
    // host:port, or an absolute unix-socket directory; or several, comma separated
    // ("pg-a:5432,pg-b:5432"): libpq tries them in order for a writable primary.
    std::string addr = "localhost:5432";
    std::string name = "djinn";
    std::string username;
    std::string password;          // never logged
    std::optional<TlsConfig> tls;  // `tls { }` or the deprecated `ssl { }`
    // The session's statement_timeout: no statement runs longer, whatever the server's,
    // database's or role's setting.
    std::chrono::milliseconds statement_timeout{60000};
    // Sessions a batch is split across (by user), each its own transaction in parallel; 1: the
    // leader's own session only. Not Djinn's: a key of this scheduler.
    int dispatch_sessions = 1;
};

struct RedisConfig {
    std::string addr = "localhost:6379";
    std::string password;  // never logged
};

struct LogConfig {
    LogLevel level = LogLevel::info;
    std::string file = "/dev/stdout";  // "/dev/stdout" (and "/dev/stderr") mean the stream
    LogFormat format = LogFormat::text;
};

struct HttpConfig {
    std::string addr;  // "host:port"; empty: no HTTP server
    // /healthz answers 503 once the service loop has made no progress for this long. At least
    // database.statement_timeout + 10s (one statement may take that long).
    std::chrono::milliseconds liveness_timeout{120000};
};

struct LeaderConfig {
    std::int64_t lock_key = 0x646a696e6e736368;  // "djinnsch"; pg_try_advisory_lock(bigint)
    std::chrono::milliseconds retry_interval{2000};
    // Server-side bound on a leader that stopped talking: idle_session_timeout of the lock
    // session; the leader heartbeats well inside it.
    std::chrono::milliseconds lock_timeout{10000};
};

struct Config {
    std::string source;  // the file it came from
    std::string pidfile;
    std::chrono::milliseconds interval{60000};
    std::int64_t batch_size = 1000;
    LogConfig log;
    std::vector<std::string> drivers;
    std::string crypto_salt;
    DatabaseConfig database;
    RedisConfig redis;
    HttpConfig http;
    LeaderConfig leader;
    std::chrono::milliseconds drain_timeout{20000};  // SIGTERM: bound to finish the batch
};

struct ConfigError {
    std::string file;
    int line = 0;     // 1-based; 0 when not tied to a place
    int column = 0;   // 1-based
    std::string key;  // dotted path, e.g. "database.tls.ca"
    std::string message;
    // "file:line:column: key: message"
    std::string to_string() const;
};

struct LoadResult {
    std::optional<Config> config;     // set only when errors is empty
    std::vector<ConfigError> errors;  // every problem found, in file order
    // Loaded anyway, but worth a log line at start: deprecated `ssl`, ${VAR} not set, no
    // crypto.salt, no drivers, several `log` entries, crypto keys the scheduler ignores.
    std::vector<ConfigError> warnings;
};

// Reads `path` (YAML when it ends in .yaml/.yml, else Djinn's language), expands ${VAR} from
// the environment, checks types and cross-field rules.
LoadResult load_file(const std::string& path);

// The same from text; `name` is used in errors and for relative includes.
LoadResult load_djinn(const std::string& text, const std::string& name);
LoadResult load_yaml(const std::string& text, const std::string& name);

// The drivers a `drivers` entry may name, as v1.3.0 queues them: builds_<driver>.
// ("qemu" builds go to builds_qemu-x86_64, so the entry is "qemu-x86_64".)
const std::vector<std::string>& known_drivers();

std::string to_string(LogLevel level);    // "debug", "info", "warn", "error"
std::string to_string(LogFormat format);  // "text", "json"

// One line for the start-up log: source, interval, batch size, drivers, log, database
// addr/name/username, TLS files, redis addr, http addr, leader settings. Never a password
// or the crypto salt (only whether they are set).
std::string describe(const Config& config);

}  // namespace djinn::config
