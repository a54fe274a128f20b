#pragma once
// Types the syntax tree of either config language into a Config, in two passes:
//   1. shape and types: each key is looked up (case-insensitively) where it stands;
//      unknown keys, repeated keys, wrong types and bad single values (a negative
//      duration, a batch_size out of range, an address without a port) are errors;
//   2. rules across keys (database.tls needs ca; cert and key together; tls and its
//      deprecated spelling ssl not both), only over keys that passed the first pass.
// Every error carries file:line:column and the dotted key; decoding never stops early,
// so all of them are reported together.
//
// Thread safety: one Decoder per thread; string values read the environment (${VAR}).
// Failure: errors and warnings are appended to the lists given; the returned Config is
// meaningful only when no error was added.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "config/ast.hpp"
#include "config/config.hpp"

namespace djinn::config {

class Decoder {
  public:
    Decoder(std::vector<ConfigError>* errors, std::vector<ConfigError>* warnings);

    // `cross_field_rules` is false when the text had syntax errors: statements were left
    // out, so "X is required" would be noise.
    Config decode(const ast::Node& root, bool cross_field_rules);

  private:
    struct LogEntry {
        LogLevel level;
        std::string file;
        ast::Position pos;
    };

    void error(const ast::Position& pos, const std::string& key, const std::string& message);
    void warn(const ast::Position& pos, const std::string& key, const std::string& message);

    template <typename Visit>
    void each_key(const ast::Node& block, const std::string& prefix,
                  const std::vector<std::string_view>& names, const std::string& labelled,
                  Visit&& visit);

    bool expect_block(const ast::Node& node, const std::string& key);
    std::optional<std::string> string_value(const ast::Node& node, const std::string& key);
    std::optional<std::string> address_value(const ast::Node& node, const std::string& key,
                                             bool allow_empty_host, bool allow_socket_dir);
    // database.addr: one address (host:port or a unix-socket directory) or several, comma
    // separated (libpq's multi-host form).
    std::optional<std::string> database_addresses(const ast::Node& node, const std::string& key);
    std::optional<std::int64_t> integer_value(const ast::Node& node, const std::string& key);
    // An integer in [lo, hi]; anything else is an error at the value.
    std::optional<std::int64_t> integer_between(const ast::Node& node, const std::string& key,
                                                std::int64_t lo, std::int64_t hi);
    std::optional<std::chrono::milliseconds> duration_value(const ast::Node& node,
                                                            const std::string& key);

    void top_level(const ast::Node& root, Config& config);
    void log_entry(const ast::Param& param, const ast::Name& level, const ast::Node& file,
                   const std::string& key);
    void log_block(const ast::Node& block, const std::string& key, Config& config);
    void log_fields(const ast::Node& block, const std::string& key, Config& config);
    void drivers(const ast::Node& node, Config& config);
    void crypto(const ast::Node& node, Config& config);
    void database(const ast::Node& node, Config& config);
    void tls(const ast::Node& node, const std::string& prefix, TlsConfig& tls);
    void redis(const ast::Node& node, Config& config);
    void http(const ast::Node& node, Config& config);
    void leader(const ast::Node& node, Config& config);

    void cross_field(const Config& config);

    std::vector<ConfigError>* errors_;
    std::vector<ConfigError>* warnings_;
    ast::Position root_pos_;                       // the file, for problems not tied to a line
    std::map<std::string, ast::Position> seen_;    // dotted key -> where it was set
    std::set<std::string> invalid_;                // keys whose value was rejected
    std::set<std::string> incomplete_;             // blocks with an unknown key
    std::vector<LogEntry> log_entries_;            // `log <level> <file>` / {<level>: <file>}
    std::optional<ast::Position> log_fields_;      // where {level, file, format} was set
    std::optional<ast::Position> log_format_;      // where top-level log_format was set
    std::optional<ast::Position> log_dot_format_;  // where log.format was set
    std::optional<TlsConfig> tls_;                 // database.tls as written
    std::optional<TlsConfig> ssl_;                 // database.ssl as written
};

}  // namespace djinn::config
