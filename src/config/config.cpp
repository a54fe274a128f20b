#include "config/config.hpp"

#include <algorithm>
#include <cstring>

#include "config/decoder.hpp"
#include "config/literals.hpp"
#include "config/parser.hpp"
#include "config/source_file.hpp"
#include "config/yaml_adapter.hpp"

namespace djinn::config {
namespace {

bool ends_with_ci(const std::string& s, std::string_view suffix) {
    if (s.size() < suffix.size()) {
        return false;
    }
    return std::equal(suffix.begin(), suffix.end(),
                      s.end() - static_cast<std::ptrdiff_t>(suffix.size()), [](char a, char b) {
                          auto lower = [](char c) {
                              return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
                          };
                          return lower(a) == lower(b);
                      });
}

// Errors come from the parser (by place) and two decoder passes: order them by file (in
// the order files were read), then line and column; those about a file as a whole (line 0)
// come after the ones with a place in it.
void sort_by_place(std::vector<ConfigError>& list, const std::vector<std::string>& files) {
    auto file_index = [&](const std::string& file) {
        auto it = std::find(files.begin(), files.end(), file);
        return static_cast<std::size_t>(it - files.begin());
    };
    std::stable_sort(list.begin(), list.end(), [&](const ConfigError& a, const ConfigError& b) {
        auto ka = std::make_tuple(file_index(a.file), a.line == 0, a.line, a.column);
        auto kb = std::make_tuple(file_index(b.file), b.line == 0, b.line, b.column);
        return ka < kb;
    });
}

LoadResult finish(const ast::Node& root, const std::string& name, bool syntax_ok,
                  std::vector<ConfigError> errors, const std::vector<std::string>& files) {
    LoadResult result;
    Decoder decoder(&errors, &result.warnings);
    Config config = decoder.decode(root, syntax_ok);
    config.source = name;
    sort_by_place(errors, files);
    sort_by_place(result.warnings, files);
    result.errors = std::move(errors);
    if (result.errors.empty()) {
        result.config = std::move(config);
    }
    return result;
}

}  // namespace

std::string ConfigError::to_string() const {
    std::string out = file;
    if (line > 0) {
        out += ":" + std::to_string(line);
        if (column > 0) {
            out += ":" + std::to_string(column);
        }
    }
    out += ": ";
    if (!key.empty()) {
        out += key + ": ";
    }
    return out + message;
}

LoadResult load_djinn(const std::string& text, const std::string& name) {
    std::vector<ConfigError> errors;
    Parser parser(&errors);
    ast::Node root = parser.parse(text, name);
    const bool syntax_ok = errors.empty();
    return finish(root, name, syntax_ok, std::move(errors), parser.files());
}

LoadResult load_yaml(const std::string& text, const std::string& name) {
    std::vector<ConfigError> errors;
    YamlAdapter adapter(&errors);
    ast::Node root = adapter.parse(text, name);
    const bool syntax_ok = errors.empty();
    return finish(root, name, syntax_ok, std::move(errors), {name});
}

LoadResult load_file(const std::string& path) {
    auto read = read_source_file(path);
    if (auto* e = std::get_if<SourceFileError>(&read)) {
        LoadResult result;
        result.errors.push_back(ConfigError{path, 0, 0, "", "cannot read: " + e->reason});
        return result;
    }
    const std::string& text = std::get<std::string>(read);
    if (ends_with_ci(path, ".yaml") || ends_with_ci(path, ".yml")) {
        return load_yaml(text, path);
    }
    return load_djinn(text, path);
}

const std::vector<std::string>& known_drivers() {
    static const std::vector<std::string> kDrivers = {"docker", "os", "qemu-x86_64", "ssh"};
    return kDrivers;
}

std::string to_string(LogLevel level) {
    switch (level) {
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warn:
            return "warn";
        case LogLevel::error:
            return "error";
    }
    return "info";
}

std::string to_string(LogFormat format) {
    return format == LogFormat::json ? "json" : "text";
}

std::string describe(const Config& config) {
    auto set_or_not = [](const std::string& secret) { return secret.empty() ? "unset" : "set"; };
    std::string drivers;
    for (const auto& driver : config.drivers) {
        drivers += (drivers.empty() ? "" : ",") + driver;
    }
    std::string out = "config " + config.source;
    out += ": interval=" + format_duration(config.interval);
    out += " batch_size=" + std::to_string(config.batch_size);
    out += " drivers=[" + drivers + "]";
    out += " log=" + to_string(config.log.level) + ":" + config.log.file +
           " log_format=" + to_string(config.log.format);
    out += " pidfile=" + (config.pidfile.empty() ? std::string("none") : config.pidfile);
    out += " crypto.salt=" + std::string(set_or_not(config.crypto_salt));
    out += " database=" + config.database.username + "@" + config.database.addr + "/" +
           config.database.name;
    out += " database.password=" + std::string(set_or_not(config.database.password));
    out += " database.statement_timeout=" + format_duration(config.database.statement_timeout);
    if (config.database.dispatch_sessions != 1)
        out += " database.dispatch_sessions=" + std::to_string(config.database.dispatch_sessions);
    if (config.database.tls) {
        out += " database.tls=ca:" + config.database.tls->ca;
        if (!config.database.tls->cert.empty()) {
            out += ",cert:" + config.database.tls->cert + ",key:" + config.database.tls->key;
        }
    } else {
        out += " database.tls=off";
    }
    out += " redis=" + config.redis.addr +
           " redis.password=" + std::string(set_or_not(config.redis.password));
    out += " http=" + (config.http.addr.empty() ? std::string("off") : config.http.addr);
    out += " http.liveness_timeout=" + format_duration(config.http.liveness_timeout);
    out += " leader.key=" + std::to_string(config.leader.lock_key) +
           " leader.retry_interval=" + format_duration(config.leader.retry_interval) +
           " leader.lock_timeout=" + format_duration(config.leader.lock_timeout);
    out += " drain_timeout=" + format_duration(config.drain_timeout);
    return out;
}

}  // namespace djinn::config
