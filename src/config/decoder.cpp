#include "config/decoder.hpp"

#include <algorithm>
#include <utility>

#include "config/literals.hpp"
#include "config/string_expansion.hpp"

namespace djinn::config {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

std::string join(const std::string& prefix, std::string_view name) {
    return prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
}

std::string where(const ast::Position& pos) {
    return pos.file + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t above = row[j];
            row[j] =
                std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0U : 1U)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string without_underscores(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c != '_') {
            out += c;
        }
    }
    return out;
}

bool is_scalar(ast::Kind kind) {
    return kind != ast::Kind::block && kind != ast::Kind::array && kind != ast::Kind::null;
}

std::string shown(const ast::Node& node) {
    std::string out = ast::kind_name(node);
    if (is_scalar(node.kind) && node.text.size() <= 40) {
        out += node.kind == ast::Kind::string ? " \"" + node.text + "\"" : " " + node.text;
    }
    return out;
}

std::optional<LogLevel> parse_level(std::string_view text) {
    std::string name = lower(text);
    if (name == "debug") {
        return LogLevel::debug;
    }
    if (name == "info") {
        return LogLevel::info;
    }
    if (name == "warn") {
        return LogLevel::warn;
    }
    if (name == "error") {
        return LogLevel::error;
    }
    return std::nullopt;
}

// The keys of the mapping form of `log`, as Kubernetes-style configs spell them. (A function:
// constructing a namespace-scope vector could throw before main.)
const std::vector<std::string_view>& log_field_names() {
    static const std::vector<std::string_view> kFields = {"level", "file", "format"};
    return kFields;
}

bool is_log_field(std::string_view name) {
    const auto& fields = log_field_names();
    return std::find(fields.begin(), fields.end(), lower(name)) != fields.end();
}

// The field of {level, file, format} that an unknown key in `log` probably meant: words other
// configs use for the same thing, then misspellings. "" when nothing is close.
std::string_view meant_log_field(std::string_view written) {
    static const std::vector<std::pair<std::string_view, std::string_view>> kSynonyms = {
        {"lvl", "level"},        {"loglevel", "level"},  {"log_level", "level"},
        {"severity", "level"},   {"verbosity", "level"}, {"path", "file"},
        {"filename", "file"},    {"output", "file"},     {"out", "file"},
        {"destination", "file"}, {"target", "file"},     {"to", "file"},
        {"encoding", "format"},  {"fmt", "format"},      {"style", "format"},
        {"log_format", "format"}};
    const std::string name = lower(written);
    for (const auto& [synonym, field] : kSynonyms) {
        if (name == synonym) {
            return field;
        }
    }
    for (auto field : log_field_names()) {
        if (edit_distance(name, field) <= 2) {
            return field;
        }
    }
    return {};
}

// What `log` looks like in each language, for the messages of a near miss.
std::string log_usage(bool yaml, std::string_view level = "info",
                      std::string_view file = "/dev/stdout") {
    if (yaml) {
        return "log: use {level: " + std::string(level) + ", file: " + std::string(file) + "}";
    }
    return "use log " + std::string(level) + " \"" + std::string(file) + "\"";
}

// "host:port" with a numeric port; IPv6 hosts in brackets. Returns an error or "".
// A listening address (allow_empty_host) may also have port 0: an ephemeral port, logged at
// start (what tests use).
std::string check_host_port(std::string_view addr, bool allow_empty_host) {
    std::string_view host;
    std::string_view port;
    if (!addr.empty() && addr.front() == '[') {
        auto close = addr.find(']');
        if (close == std::string_view::npos || close + 1 >= addr.size() || addr[close + 1] != ':') {
            return "expected \"[ipv6]:port\", got \"" + std::string(addr) + "\"";
        }
        host = addr.substr(1, close - 1);
        port = addr.substr(close + 2);
    } else {
        auto colon = addr.rfind(':');
        if (colon == std::string_view::npos) {
            return "expected \"host:port\", got \"" + std::string(addr) + "\" (no port)";
        }
        host = addr.substr(0, colon);
        port = addr.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return "expected \"host:port\", got \"" + std::string(addr) +
                   "\" (put an IPv6 host in brackets: \"[::1]:5432\")";
        }
    }
    if (host.empty() && !allow_empty_host) {
        return "expected \"host:port\", got \"" + std::string(addr) + "\" (no host)";
    }
    if (host.find_first_of(" \t/") != std::string_view::npos) {
        return "invalid host in \"" + std::string(addr) + "\"";
    }
    std::string ignored;
    auto number = parse_integer(port, &ignored);
    if (port.empty() || port.front() == '+' || port.front() == '-' || !number ||
        *number < (allow_empty_host ? 0 : 1) || *number > 65535) {
        return "invalid port \"" + std::string(port) + "\" in \"" + std::string(addr) +
               (allow_empty_host ? "\" (expected 0 to 65535)" : "\" (expected 1 to 65535)");
    }
    return "";
}

}  // namespace

Decoder::Decoder(std::vector<ConfigError>* errors, std::vector<ConfigError>* warnings)
    : errors_(errors), warnings_(warnings) {}

void Decoder::error(const ast::Position& pos, const std::string& key, const std::string& message) {
    errors_->push_back(ConfigError{pos.file, pos.line, pos.column, key, message});
    invalid_.insert(key);
}

void Decoder::warn(const ast::Position& pos, const std::string& key, const std::string& message) {
    warnings_->push_back(ConfigError{pos.file, pos.line, pos.column, key, message});
}

// Calls visit(canonical_name, param, dotted_key) for each known key of `block`; reports
// unknown keys, labels where none belong, and repeated keys. The key named `labelled`
// takes a label and may repeat (with different labels).
template <typename Visit>
void Decoder::each_key(const ast::Node& block, const std::string& prefix,
                       const std::vector<std::string_view>& names, const std::string& labelled,
                       Visit&& visit) {
    for (const ast::Param& param : block.params) {
        const std::string name = lower(param.name.text);
        auto known = std::find(names.begin(), names.end(), name);
        if (known == names.end()) {
            std::string message = "unknown key";
            std::string_view best;
            std::size_t best_distance = 4;
            for (auto candidate : names) {
                // camelCase for snake_case ("batchSize", as Kubernetes configs spell keys) is
                // the closest; "address" for "addr", "capath" for "ca": a known key as a
                // prefix is close.
                std::size_t distance =
                    without_underscores(name) == without_underscores(candidate) ? 0
                    : name.rfind(candidate, 0) == 0 || candidate.rfind(name, 0) == 0
                        ? 1
                        : edit_distance(name, candidate);
                // Short keys are close to everything short.
                std::size_t limit = std::min(candidate.size(), name.size()) <= 3 ? 1 : 3;
                if (distance <= limit && distance < best_distance) {
                    best_distance = distance;
                    best = candidate;
                }
            }
            if (!best.empty()) {
                message += " (did you mean '" + std::string(best) + "'?)";
            } else {
                message += " (known here: ";
                for (std::size_t i = 0; i < names.size(); ++i) {
                    message += (i == 0 ? "" : ", ") + std::string(names[i]);
                }
                message += ")";
            }
            error(param.name.pos, join(prefix, param.name.text), message);
            // Probably a misspelt known key: "X is required" for this block would be noise.
            incomplete_.insert(prefix);
            continue;
        }
        const std::string key = join(prefix, name);
        if (param.has_label && name != labelled) {
            error(param.label.pos, key,
                  "takes no label (found '" + param.label.text + "' between key and value)");
            continue;
        }
        if (name != labelled) {
            auto [it, inserted] = seen_.emplace(key, param.name.pos);
            if (!inserted) {
                error(param.name.pos, key, "duplicate key; first set at " + where(it->second));
                continue;
            }
        }
        visit(name, param, key);
    }
}

bool Decoder::expect_block(const ast::Node& node, const std::string& key) {
    if (node.kind == ast::Kind::block) {
        return true;
    }
    error(node.pos, key,
          std::string(node.yaml ? "expected a mapping" : "expected a block { ... }") + ", got " +
              shown(node));
    return false;
}

std::optional<std::string> Decoder::string_value(const ast::Node& node, const std::string& key) {
    // An unquoted YAML scalar is text whatever it looks like (`password: 1234`).
    bool text =
        node.kind == ast::Kind::string || (node.yaml && node.yaml_plain && is_scalar(node.kind));
    if (!text) {
        error(node.pos, key, "expected a string, got " + shown(node));
        return std::nullopt;
    }
    ExpandedString expanded = expand_string(node.text, /*backslash_escapes=*/!node.yaml);
    if (!expanded.error.empty()) {
        error(node.pos, key, expanded.error);
        return std::nullopt;
    }
    for (const auto& name : expanded.unset_vars) {
        warn(node.pos, key, "environment variable " + name + " is not set: it expands to \"\"");
    }
    return std::move(expanded.value);
}

std::optional<std::string> Decoder::address_value(const ast::Node& node, const std::string& key,
                                                  bool allow_empty_host, bool allow_socket_dir) {
    auto value = string_value(node, key);
    if (!value) {
        return std::nullopt;
    }
    if (allow_socket_dir && !value->empty() && value->front() == '/') {
        return value;  // a unix-socket directory
    }
    std::string problem = check_host_port(*value, allow_empty_host);
    if (!problem.empty()) {
        error(node.pos, key, problem);
        return std::nullopt;
    }
    return value;
}

std::optional<std::string> Decoder::database_addresses(const ast::Node& node,
                                                       const std::string& key) {
    auto value = string_value(node, key);
    if (!value) {
        return std::nullopt;
    }
    // libpq's multi-host form: "pg-a:5432,pg-b:5432" (tried in order for a writable primary).
    if (value->empty()) {
        error(node.pos, key, "must not be empty");
        return std::nullopt;
    }
    std::size_t start = 0;
    int index = 0;
    for (;;) {
        const auto comma = value->find(',', start);
        const std::string one =
            value->substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (one.empty() || one.front() != '/') {
            std::string problem = check_host_port(one, false);
            if (!problem.empty()) {
                const bool several = comma != std::string::npos || index > 0;
                error(node.pos, key,
                      (several ? "entry " + std::to_string(index + 1) + " of \"" + *value + "\": "
                               : std::string()) +
                          problem);
                return std::nullopt;
            }
        }
        if (comma == std::string::npos)
            break;
        start = comma + 1;
        ++index;
    }
    return value;
}

std::optional<std::int64_t> Decoder::integer_value(const ast::Node& node, const std::string& key) {
    if (node.kind != ast::Kind::integer) {
        error(node.pos, key, "expected an integer, got " + shown(node));
        return std::nullopt;
    }
    std::string problem;
    auto value = parse_integer(node.text, &problem);
    if (!value) {
        error(node.pos, key, problem);
    }
    return value;
}

std::optional<std::int64_t> Decoder::integer_between(const ast::Node& node, const std::string& key,
                                                     std::int64_t lo, std::int64_t hi) {
    auto v = integer_value(node, key);
    if (v && (*v < lo || *v > hi)) {
        error(node.pos, key,
              "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
                  std::to_string(*v));
        return std::nullopt;
    }
    return v;
}

std::optional<std::chrono::milliseconds> Decoder::duration_value(const ast::Node& node,
                                                                 const std::string& key) {
    // YAML has no duration type: there a duration is a string, quoted or not ("1m", 1m).
    bool readable =
        node.kind == ast::Kind::duration || (node.yaml && node.kind == ast::Kind::string);
    if (!readable) {
        std::string hint =
            node.kind == ast::Kind::integer
                ? " (a duration needs a unit: " + node.text + "s, " + node.text + "m, ...)"
                : " (e.g. 1m, 1h30m, 500ms)";
        error(node.pos, key, "expected a duration, got " + shown(node) + hint);
        return std::nullopt;
    }
    std::string problem;
    auto value = parse_duration(node.text, &problem);
    if (!value) {
        error(node.pos, key, problem);
        return std::nullopt;
    }
    if (value->count() <= 0) {
        error(node.pos, key, "must be a positive duration, got " + node.text);
        return std::nullopt;
    }
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(*value);
    if (millis.count() == 0) {
        error(node.pos, key, "must be at least 1ms, got " + node.text);
        return std::nullopt;
    }
    return millis;
}

Config Decoder::decode(const ast::Node& root, bool cross_field_rules) {
    Config config;
    root_pos_ = ast::Position{root.pos.file, 0, 0};
    if (root.kind != ast::Kind::null && expect_block(root, "")) {
        top_level(root, config);
    }
    if (tls_) {
        config.database.tls = tls_;
    } else if (ssl_) {
        config.database.tls = ssl_;
    }
    if (cross_field_rules) {
        cross_field(config);
    }
    return config;
}

void Decoder::top_level(const ast::Node& root, Config& config) {
    static const std::vector<std::string_view> kNames = {
        "pidfile", "interval", "batch_size", "log",  "log_format", "drivers",
        "crypto",  "database", "redis",      "http", "leader",     "drain_timeout"};
    each_key(root, "", kNames, "log",
             [&](const std::string& name, const ast::Param& param, const std::string& key) {
                 const ast::Node& value = param.value;
                 if (name == "pidfile") {
                     if (auto v = string_value(value, key)) {
                         config.pidfile = *v;
                     }
                 } else if (name == "interval") {
                     if (auto v = duration_value(value, key)) {
                         config.interval = *v;
                     }
                 } else if (name == "batch_size") {
                     if (auto v = integer_between(value, key, 1, 100000)) {
                         config.batch_size = *v;
                     }
                 } else if (name == "log") {
                     if (param.has_label) {
                         log_entry(param, param.label, value, key + "." + param.label.text);
                     } else if (value.kind == ast::Kind::block) {
                         log_block(value, key, config);
                     } else if (value.yaml) {
                         // `log: info` or `log: /dev/stdout`: say the mapping it meant.
                         const bool is_level = is_scalar(value.kind) && parse_level(value.text);
                         const bool is_path = is_scalar(value.kind) && !value.text.empty() &&
                                              value.text.front() == '/';
                         error(value.pos, key,
                               "expected a mapping, got " + shown(value) + ": " +
                                   log_usage(true, is_level ? lower(value.text) : "info",
                                             is_path ? value.text : "/dev/stdout"));
                     } else {
                         error(value.pos, key,
                               "expected `log <level> <file>` (e.g. log info \"/dev/stdout\"), "
                               "got " +
                                   shown(value));
                     }
                 } else if (name == "log_format") {
                     log_format_ = param.name.pos;
                     if (auto v = string_value(value, key)) {
                         if (lower(*v) == "text") {
                             config.log.format = LogFormat::text;
                         } else if (lower(*v) == "json") {
                             config.log.format = LogFormat::json;
                         } else {
                             error(value.pos, key,
                                   "unknown log format \"" + *v + "\" (use text or json)");
                         }
                     }
                 } else if (name == "drivers") {
                     drivers(value, config);
                 } else if (name == "crypto") {
                     crypto(value, config);
                 } else if (name == "database") {
                     database(value, config);
                 } else if (name == "redis") {
                     redis(value, config);
                 } else if (name == "http") {
                     http(value, config);
                 } else if (name == "leader") {
                     leader(value, config);
                 } else if (name == "drain_timeout") {
                     if (auto v = duration_value(value, key)) {
                         config.drain_timeout = *v;
                     }
                 }
             });

    if (log_format_ && log_dot_format_) {
        error(*log_dot_format_, "log.format",
              "log_format is also set (at " + where(*log_format_) + "): keep one of them");
    }
    // Djinn allows one `log` per level and writes to the file of the most verbose one.
    if (!log_entries_.empty()) {
        auto chosen = std::min_element(
            log_entries_.begin(), log_entries_.end(),
            [](const LogEntry& a, const LogEntry& b) { return a.level < b.level; });
        config.log.level = chosen->level;
        config.log.file = chosen->file;
        if (log_entries_.size() > 1) {
            warn(chosen->pos, "log",
                 "several log entries: like Djinn, only the most verbose one is used (" +
                     to_string(chosen->level) + " to " + chosen->file + ")");
        }
    }
}

void Decoder::log_entry(const ast::Param& param, const ast::Name& level, const ast::Node& file,
                        const std::string& key) {
    if (log_fields_) {
        error(level.pos, key, "log is set twice; first set at " + where(*log_fields_));
        return;
    }
    auto parsed = parse_level(level.text);
    if (!parsed) {
        std::string message =
            "unknown log level '" + level.text + "' (use debug, info, warn or error)";
        if (is_log_field(level.text) && param.has_label) {
            // `log level "info"`: the YAML keys written as a Djinn label.
            message += ": " + log_usage(false);
        }
        error(level.pos, key, message);
        return;
    }
    for (const LogEntry& earlier : log_entries_) {
        if (earlier.level == *parsed) {
            error(level.pos, key, "duplicate log level; first set at " + where(earlier.pos));
            return;
        }
    }
    auto path = string_value(file, key);
    if (!path) {
        return;
    }
    if (path->empty()) {
        error(file.pos, key, "log file must not be empty (use \"/dev/stdout\")");
        return;
    }
    log_entries_.push_back(LogEntry{*parsed, *path, level.pos});
}

// A `log` mapping has one of two shapes: Djinn's {<level>: <file>} (what `log info "file"`
// becomes in YAML), or {level, file, format} as a Kubernetes-style config writes it. Any of
// level/file/format picks the second; an entry that fits neither is answered with the shape
// it most likely meant.
void Decoder::log_block(const ast::Node& block, const std::string& key, Config& config) {
    const bool fields = std::any_of(block.params.begin(), block.params.end(),
                                    [](const ast::Param& p) { return is_log_field(p.name.text); });
    if (fields) {
        log_fields(block, key, config);
        return;
    }
    for (const ast::Param& entry : block.params) {
        const std::string entry_key = key + "." + entry.name.text;
        if (entry.has_label) {
            error(entry.label.pos, entry_key, "takes no label");
            continue;
        }
        if (!parse_level(entry.name.text)) {
            const std::string_view meant = meant_log_field(entry.name.text);
            if (!meant.empty()) {
                error(entry.name.pos, entry_key,
                      "unknown key (did you mean '" + std::string(meant) +
                          "'?): " + log_usage(block.yaml));
                continue;
            }
            std::string message =
                "unknown log level '" + entry.name.text + "' (use debug, info, warn or error)";
            if (block.yaml) {
                message += "; or " + log_usage(true);
            }
            error(entry.name.pos, entry_key, message);
            continue;
        }
        log_entry(entry, entry.name, entry.value, entry_key);
    }
}

void Decoder::log_fields(const ast::Node& block, const std::string& key, Config& config) {
    if (log_fields_ || !log_entries_.empty()) {
        const ast::Position first = log_fields_ ? *log_fields_ : log_entries_.front().pos;
        error(block.pos, key, "log is set twice; first set at " + where(first));
        return;
    }
    log_fields_ = block.pos;
    // Entries that belong to the other shapes are reported here, with what to write instead;
    // each_key reports the rest.
    ast::Node known = block;
    known.params.clear();
    for (const ast::Param& entry : block.params) {
        const std::string entry_key = key + "." + entry.name.text;
        if (is_log_field(entry.name.text)) {
            known.params.push_back(entry);
            continue;
        }
        if (parse_level(entry.name.text)) {
            error(entry.name.pos, entry_key,
                  "mixes {<level>: <file>} with {level: ..., file: ...}: " +
                      (block.yaml
                           ? log_usage(true, lower(entry.name.text))
                           : std::string("use level \"") + lower(entry.name.text) + "\" and file"));
            continue;
        }
        const std::string_view meant = meant_log_field(entry.name.text);
        std::string message = "unknown key";
        message += meant.empty() ? " (known here: level, file, format)"
                                 : " (did you mean '" + std::string(meant) + "'?)";
        error(entry.name.pos, entry_key, message);
        incomplete_.insert(key);
    }
    LogLevel level = LogLevel::info;
    std::string file = "/dev/stdout";
    each_key(
        known, key, log_field_names(), "",
        [&](const std::string& name, const ast::Param& param, const std::string& field_key) {
            const ast::Node& value = param.value;
            auto text = string_value(value, field_key);
            if (!text) {
                return;
            }
            if (name == "level") {
                if (auto parsed = parse_level(*text)) {
                    level = *parsed;
                } else {
                    error(value.pos, field_key,
                          "unknown log level \"" + *text + "\" (use debug, info, warn or error)");
                }
            } else if (name == "file") {
                if (text->empty()) {
                    error(value.pos, field_key, "must not be empty (use /dev/stdout)");
                } else if (*text == "stdout" || *text == "stderr" || *text == "-") {
                    // A relative file named "stdout" in the working directory is never
                    // what was meant (and a read-only root filesystem refuses it).
                    error(value.pos, field_key,
                          "\"" + *text + "\" would be a file in the working directory: use " +
                              (*text == "stderr" ? "/dev/stderr" : "/dev/stdout"));
                } else {
                    file = *text;
                }
            } else {
                log_dot_format_ = param.name.pos;
                if (lower(*text) == "text") {
                    config.log.format = LogFormat::text;
                } else if (lower(*text) == "json") {
                    config.log.format = LogFormat::json;
                } else {
                    error(value.pos, field_key,
                          "unknown log format \"" + *text + "\" (use text or json)");
                }
            }
        });
    config.log.level = level;
    config.log.file = file;
}

void Decoder::drivers(const ast::Node& node, Config& config) {
    const std::string key = "drivers";
    if (node.kind != ast::Kind::array) {
        error(node.pos, key,
              std::string(node.yaml ? "expected a sequence of strings"
                                    : "expected an array of strings [\"docker\", ]") +
                  ", got " + shown(node));
        return;
    }
    const auto& known = known_drivers();
    for (std::size_t i = 0; i < node.items.size(); ++i) {
        const ast::Node& item = node.items[i];
        const std::string item_key = key + "[" + std::to_string(i) + "]";
        auto name = string_value(item, item_key);
        if (!name) {
            continue;
        }
        if (std::find(known.begin(), known.end(), *name) == known.end()) {
            std::string message = "unknown driver \"" + *name + "\"";
            if (*name == "qemu") {
                message += " (the scheduler queues qemu builds as \"qemu-x86_64\")";
            } else {
                message += " (known: docker, os, qemu-x86_64, ssh)";
            }
            error(item.pos, item_key, message);
            continue;
        }
        if (std::find(config.drivers.begin(), config.drivers.end(), *name) !=
            config.drivers.end()) {
            error(item.pos, item_key, "driver \"" + *name + "\" is listed twice");
            continue;
        }
        config.drivers.push_back(*name);
    }
}

void Decoder::crypto(const ast::Node& node, Config& config) {
    if (!expect_block(node, "crypto")) {
        return;
    }
    // auth, block and hash belong to Djinn's shared crypto block (server, worker); a
    // scheduler.conf that copied it loads in Djinn, so it loads here too.
    each_key(node, "crypto", {"salt", "auth", "block", "hash"}, "",
             [&](const std::string& name, const ast::Param& param, const std::string& key) {
                 auto value = string_value(param.value, key);
                 if (!value) {
                     return;
                 }
                 if (name == "salt") {
                     config.crypto_salt = *value;
                 } else {
                     warn(param.name.pos, key, "not used by the scheduler; ignored");
                 }
             });
}

void Decoder::database(const ast::Node& node, Config& config) {
    if (!expect_block(node, "database")) {
        return;
    }
    each_key(node, "database",
             {"addr", "name", "username", "password", "tls", "ssl", "statement_timeout",
              "dispatch_sessions"},
             "", [&](const std::string& name, const ast::Param& param, const std::string& key) {
                 const ast::Node& value = param.value;
                 if (name == "addr") {
                     if (auto v = database_addresses(value, key)) {
                         config.database.addr = *v;
                     }
                 } else if (name == "name") {
                     if (auto v = string_value(value, key)) {
                         if (v->empty()) {
                             error(value.pos, key, "must not be empty");
                         } else {
                             config.database.name = *v;
                         }
                     }
                 } else if (name == "username") {
                     if (auto v = string_value(value, key)) {
                         config.database.username = *v;
                     }
                 } else if (name == "password") {
                     if (auto v = string_value(value, key)) {
                         config.database.password = *v;
                     }
                 } else if (name == "statement_timeout") {
                     if (auto v = duration_value(value, key)) {
                         config.database.statement_timeout = *v;
                     }
                 } else if (name == "dispatch_sessions") {
                     if (auto v = integer_between(value, key, 1, 32)) {
                         config.database.dispatch_sessions = static_cast<int>(*v);
                     }
                 } else if (name == "tls") {
                     if (expect_block(value, key)) {
                         tls(value, key, tls_.emplace());
                     }
                 } else if (name == "ssl") {
                     warn(param.name.pos, key, "ssl is deprecated, use tls instead");
                     if (expect_block(value, key)) {
                         tls(value, key, ssl_.emplace());
                     }
                 }
             });
}

void Decoder::tls(const ast::Node& node, const std::string& prefix, TlsConfig& tls) {
    each_key(node, prefix, {"ca", "cert", "key"}, "",
             [&](const std::string& name, const ast::Param& param, const std::string& key) {
                 auto value = string_value(param.value, key);
                 if (!value) {
                     return;
                 }
                 if (value->empty()) {
                     error(param.value.pos, key, "must not be empty (leave the key out instead)");
                     return;
                 }
                 (name == "ca" ? tls.ca : name == "cert" ? tls.cert : tls.key) = *value;
             });
}

void Decoder::redis(const ast::Node& node, Config& config) {
    if (!expect_block(node, "redis")) {
        return;
    }
    each_key(node, "redis", {"addr", "password"}, "",
             [&](const std::string& name, const ast::Param& param, const std::string& key) {
                 if (name == "addr") {
                     if (auto v = address_value(param.value, key, false, false)) {
                         config.redis.addr = *v;
                     }
                 } else if (auto v = string_value(param.value, key)) {
                     config.redis.password = *v;
                 }
             });
}

void Decoder::http(const ast::Node& node, Config& config) {
    if (!expect_block(node, "http")) {
        return;
    }
    each_key(node, "http", {"addr", "liveness_timeout"}, "",
             [&](const std::string& name, const ast::Param& param, const std::string& key) {
                 if (name == "liveness_timeout") {
                     if (auto v = duration_value(param.value, key)) {
                         config.http.liveness_timeout = *v;
                     }
                     return;
                 }
                 auto text = string_value(param.value, key);
                 if (!text) {
                     return;
                 }
                 if (text->empty()) {
                     config.http.addr.clear();  // no HTTP server
                     return;
                 }
                 // ":9090" listens on every interface.
                 if (address_value(param.value, key, true, false)) {
                     config.http.addr = *text;
                 }
             });
}

void Decoder::leader(const ast::Node& node, Config& config) {
    if (!expect_block(node, "leader")) {
        return;
    }
    each_key(node, "leader", {"key", "retry_interval", "lock_timeout"}, "",
             [&](const std::string& name, const ast::Param& param, const std::string& key) {
                 if (name == "key") {
                     if (auto v = integer_value(param.value, key)) {
                         config.leader.lock_key = *v;
                     }
                 } else if (auto v = duration_value(param.value, key)) {
                     (name == "retry_interval" ? config.leader.retry_interval
                                               : config.leader.lock_timeout) = *v;
                 }
             });
}

namespace {
constexpr std::chrono::milliseconds kLivenessMargin{10000};
// What one cron of a batch costs inside its transaction, with a margin of 4 over what was
// measured (docs/reliability.md, "Big batches"): the client's work between two statements
// (one table's array literals: about 12 us a cron) must stay within half of lock_timeout, the
// server's idle_in_transaction_session_timeout; the largest statement (the jobs insert: about
// 150 us a cron) within statement_timeout.
constexpr std::chrono::microseconds kIdleWorkPerCron{50};
constexpr std::chrono::microseconds kStatementWorkPerCron{600};
}  // namespace

void Decoder::cross_field(const Config& config) {
    if (tls_ && ssl_) {
        error(seen_["database.ssl"], "database.ssl",
              "database.ssl is the deprecated spelling of database.tls: keep only tls");
    }
    const std::string prefix = tls_ ? "database.tls" : "database.ssl";
    if (const auto& chosen = tls_ ? tls_ : ssl_) {
        const ast::Position block_pos = seen_[prefix];
        const bool judged = !incomplete_.count(prefix);
        const bool ca_ok = !invalid_.count(prefix + ".ca");
        const bool cert_ok = !invalid_.count(prefix + ".cert");
        const bool key_ok = !invalid_.count(prefix + ".key");
        if (judged && ca_ok && chosen->ca.empty()) {
            error(block_pos, prefix + ".ca",
                  "required when " + prefix +
                      " is set: the connection verifies the server (sslmode=verify-full)");
        }
        if (judged && cert_ok && key_ok && chosen->cert.empty() != chosen->key.empty()) {
            const bool has_cert = !chosen->cert.empty();
            const std::string present = prefix + (has_cert ? ".cert" : ".key");
            const std::string missing = prefix + (has_cert ? ".key" : ".cert");
            error(seen_[present], missing,
                  "required when " + present + " is set: a client certificate needs its key");
        }
    }
    // A standby sits idle on its lock session between attempts; the session's
    // idle_session_timeout is lock_timeout, so attempts must come more often than that.
    if (config.leader.retry_interval >= config.leader.lock_timeout &&
        !invalid_.count("leader.retry_interval") && !invalid_.count("leader.lock_timeout")) {
        auto at = seen_.count("leader.retry_interval") ? seen_["leader.retry_interval"]
                  : seen_.count("leader.lock_timeout") ? seen_["leader.lock_timeout"]
                                                       : root_pos_;
        error(at, "leader.retry_interval",
              "must be shorter than leader.lock_timeout (" +
                  std::to_string(config.leader.lock_timeout.count()) + " ms)");
    }
    if (config.leader.lock_timeout < std::chrono::milliseconds(1000) &&
        !invalid_.count("leader.lock_timeout")) {
        error(seen_.count("leader.lock_timeout") ? seen_["leader.lock_timeout"] : root_pos_,
              "leader.lock_timeout", "must be at least 1s");
    }
    auto place = [&](const std::string& key) {
        auto it = seen_.find(key);
        return it == seen_.end() ? root_pos_ : it->second;
    };
    if (config.database.statement_timeout < std::chrono::milliseconds(1000) &&
        !invalid_.count("database.statement_timeout")) {
        error(place("database.statement_timeout"), "database.statement_timeout",
              "must be at least 1s");
    }
    // Progress is reported between statements: one statement may legitimately take up to
    // statement_timeout, and /healthz must not call that stuck.
    if (config.http.liveness_timeout < config.database.statement_timeout + kLivenessMargin &&
        !invalid_.count("http.liveness_timeout") && !invalid_.count("database.statement_timeout")) {
        error(place(seen_.count("http.liveness_timeout") ? "http.liveness_timeout"
                                                         : "database.statement_timeout"),
              "http.liveness_timeout",
              "must be at least database.statement_timeout + 10s (" +
                  std::to_string((config.database.statement_timeout + kLivenessMargin).count()) +
                  " ms): a single statement may run that long while the loop is healthy");
    }
    if (!invalid_.count("batch_size") && !invalid_.count("leader.lock_timeout")) {
        const auto idle = kIdleWorkPerCron * config.batch_size;
        if (idle * 2 > config.leader.lock_timeout) {
            const auto most = (config.leader.lock_timeout / 2) / kIdleWorkPerCron;
            error(place("batch_size"), "batch_size",
                  std::to_string(config.batch_size) + " crons per transaction need a " +
                      "leader.lock_timeout of at least " +
                      std::to_string(std::chrono::ceil<std::chrono::seconds>(idle * 2).count()) +
                      "s: the server ends a session idle in a transaction for lock_timeout, and "
                      "a batch's work between two statements grows with it; use batch_size <= " +
                      std::to_string(most) + " or raise leader.lock_timeout");
        }
    }
    if (!invalid_.count("batch_size") && !invalid_.count("database.statement_timeout")) {
        const auto work = kStatementWorkPerCron * config.batch_size;
        if (work > config.database.statement_timeout) {
            error(place("batch_size"), "batch_size",
                  std::to_string(config.batch_size) + " crons per transaction need a " +
                      "database.statement_timeout of at least " +
                      std::to_string(std::chrono::ceil<std::chrono::seconds>(work).count()) +
                      "s: a batch's largest statement grows with it; use batch_size <= " +
                      std::to_string(config.database.statement_timeout / kStatementWorkPerCron) +
                      " or raise database.statement_timeout");
        }
    }
    if (config.crypto_salt.empty() && !invalid_.count("crypto.salt")) {
        auto crypto = seen_.find("crypto");
        warn(crypto == seen_.end() ? root_pos_ : crypto->second, "crypto.salt",
             "not set: artifact hashes are made with an empty salt");
    }
    if (config.drivers.empty() && !invalid_.count("drivers")) {
        warn(seen_.count("drivers") ? seen_["drivers"] : root_pos_, "drivers",
             "no drivers: no cron will be dispatched");
    }
}

}  // namespace djinn::config
