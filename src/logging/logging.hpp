#pragma once
// The process logger (spdlog 1.10) built from config::LogConfig.
//
// Formats, one record per line, timestamps in UTC with milliseconds:
//   text: 2024-05-01T12:00:00.123Z info message            (control characters in the
//         message are escaped, \n as "\n", so a record never spans lines)
//   json: {"time":"2024-05-01T12:00:00.123Z","level":"info","msg":"message"}
//         (the message is escaped as a JSON string by a custom flag formatter: a plain
//         %v pattern would not be JSON; invalid UTF-8 becomes U+FFFD)
// Level names are the config's: debug, info, warn, error.
//
// Thread safety: the loggers use spdlog's _mt sinks, safe to share between threads. The
// logger is not registered in spdlog's registry (no name clashes); call
// spdlog::set_default_logger yourself if you want it as the default.
// Failure: make_logger returns an error message (never throws) when the file cannot be
// opened for appending.
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>

#include "config/config.hpp"

namespace djinn::logging {

// "/dev/stdout" and "/dev/stderr" write to the standard streams; any other path is
// opened for appending (created with the process umask).
std::variant<std::shared_ptr<spdlog::logger>, std::string> make_logger(
    const config::LogConfig& log, const std::string& name = "djinn-scheduler");

// A logger on a given sink (tests: spdlog::sinks::ostream_sink_mt) with the level and
// format of `log`; `log.file` is ignored.
std::shared_ptr<spdlog::logger> make_logger_with_sink(spdlog::sink_ptr sink,
                                                      const config::LogConfig& log,
                                                      const std::string& name = "djinn-scheduler");

// The formatter make_logger puts on its sink, for callers that build their own sinks.
std::unique_ptr<spdlog::formatter> make_formatter(config::LogFormat format);

spdlog::level::level_enum to_spdlog(config::LogLevel level);

// `text` as the inside of a JSON string (no quotes added).
void append_json_escaped(std::string_view text, std::string& out);

}  // namespace djinn::logging
