#include "logging/logging.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace djinn::logging {
namespace {

// Length of the valid UTF-8 sequence at text[i], or 0 when it is not one.
std::size_t utf8_sequence(std::string_view text, std::size_t i) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
    const unsigned char lead = byte(0);
    std::size_t length = 0;
    std::uint32_t min = 0;
    std::uint32_t code = 0;
    if (lead < 0x80) {
        return 1;
    } else if ((lead & 0xE0) == 0xC0) {
        length = 2;
        min = 0x80;
        code = lead & 0x1Fu;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3;
        min = 0x800;
        code = lead & 0x0Fu;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4;
        min = 0x10000;
        code = lead & 0x07u;
    } else {
        return 0;
    }
    if (i + length > text.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < length; ++k) {
        if ((byte(k) & 0xC0) != 0x80) {
            return 0;
        }
        code = (code << 6) | (byte(k) & 0x3Fu);
    }
    // Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8.
    if (code < min || (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) {
        return 0;
    }
    return length;
}

void append_escaped(std::string_view text, std::string& out, bool json) {
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x80) {
            std::size_t length = utf8_sequence(text, i);
            if (length == 0) {
                out += "\xEF\xBF\xBD";  // U+FFFD: JSON readers reject invalid UTF-8
                ++i;
            } else {
                out.append(text.substr(i, length));
                i += length;
            }
            continue;
        }
        ++i;
        switch (c) {
            case '"':
                out += json ? "\\\"" : "\"";
                continue;
            case '\\':
                out += json ? "\\\\" : "\\";
                continue;
            case '\n':
                out += "\\n";
                continue;
            case '\r':
                out += "\\r";
                continue;
            case '\t':
                out += json ? "\\t" : "\t";
                continue;
            case '\b':
                out += "\\b";
                continue;
            case '\f':
                out += "\\f";
                continue;
            default:
                break;
        }
        if (c < 0x20 || (!json && c == 0x7f)) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
}

// %J: the message as the inside of a JSON string.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
  public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        std::string escaped;
        append_escaped(std::string_view(msg.payload.data(), msg.payload.size()), escaped, true);
        dest.append(escaped.data(), escaped.data() + escaped.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<JsonMessageFlag>();
    }
};

// %q: the message on one line (control characters escaped, the rest as it is).
class OneLineMessageFlag final : public spdlog::custom_flag_formatter {
  public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        std::string escaped;
        append_escaped(std::string_view(msg.payload.data(), msg.payload.size()), escaped, false);
        dest.append(escaped.data(), escaped.data() + escaped.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<OneLineMessageFlag>();
    }
};

// %K: the level with the config's names (spdlog says "warning", "critical").
class LevelFlag final : public spdlog::custom_flag_formatter {
  public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        std::string_view name;
        switch (msg.level) {
            case spdlog::level::trace:
                name = "trace";
                break;
            case spdlog::level::debug:
                name = "debug";
                break;
            case spdlog::level::info:
                name = "info";
                break;
            case spdlog::level::warn:
                name = "warn";
                break;
            case spdlog::level::err:
                name = "error";
                break;
            case spdlog::level::critical:
                name = "fatal";
                break;
            default:
                name = "off";
                break;
        }
        dest.append(name.data(), name.data() + name.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<LevelFlag>();
    }
};

constexpr const char* kTime = "%Y-%m-%dT%H:%M:%S.%eZ";

}  // namespace

void append_json_escaped(std::string_view text, std::string& out) {
    append_escaped(text, out, true);
}

spdlog::level::level_enum to_spdlog(config::LogLevel level) {
    switch (level) {
        case config::LogLevel::debug:
            return spdlog::level::debug;
        case config::LogLevel::info:
            return spdlog::level::info;
        case config::LogLevel::warn:
            return spdlog::level::warn;
        case config::LogLevel::error:
            return spdlog::level::err;
    }
    return spdlog::level::info;
}

std::unique_ptr<spdlog::formatter> make_formatter(config::LogFormat format) {
    const std::string pattern =
        format == config::LogFormat::json
            ? std::string("{\"time\":\"") + kTime + "\",\"level\":\"%K\",\"msg\":\"%J\"}"
            : std::string(kTime) + " %K %q";
    // UTC is a constructor argument in spdlog 1.10; "\n" whatever the platform.
    auto formatter = std::make_unique<spdlog::pattern_formatter>(
        pattern, spdlog::pattern_time_type::utc, std::string("\n"));
    formatter->add_flag<JsonMessageFlag>('J');
    formatter->add_flag<OneLineMessageFlag>('q');
    formatter->add_flag<LevelFlag>('K');
    // The flags above must be known when the pattern is compiled.
    formatter->set_pattern(pattern);
    return formatter;
}

std::shared_ptr<spdlog::logger> make_logger_with_sink(spdlog::sink_ptr sink,
                                                      const config::LogConfig& log,
                                                      const std::string& name) {
    sink->set_formatter(make_formatter(log.format));
    auto logger = std::make_shared<spdlog::logger>(name, std::move(sink));
    logger->set_level(to_spdlog(log.level));
    // A scheduler logs little; flushing every record keeps files and pipes current and
    // loses nothing on a crash.
    logger->flush_on(spdlog::level::trace);
    return logger;
}

std::variant<std::shared_ptr<spdlog::logger>, std::string> make_logger(const config::LogConfig& log,
                                                                       const std::string& name) {
    spdlog::sink_ptr sink;
    if (log.file == "/dev/stdout") {
        sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    } else if (log.file == "/dev/stderr") {
        sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    } else {
        // Open it ourselves first: spdlog would create missing parent directories, which
        // hides a mistyped path (Djinn fails there too); this also gives errno's words.
        std::FILE* probe = std::fopen(log.file.c_str(), "ab");
        if (probe == nullptr) {
            return "cannot open log file " + log.file + ": " + std::strerror(errno);
        }
        std::fclose(probe);
        try {
            sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(log.file,
                                                                       /*truncate=*/false);
        } catch (const spdlog::spdlog_ex& e) {
            return "cannot open log file " + log.file + ": " + e.what();
        }
    }
    return make_logger_with_sink(std::move(sink), log, name);
}

}  // namespace djinn::logging
