#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <nlohmann/json.hpp>

#include <stdlib.h>
#include <time.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "logging/logging.hpp"

namespace djinn::logging {
namespace {

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

struct Captured {
    std::ostringstream stream;
    std::shared_ptr<spdlog::logger> logger;
};

std::unique_ptr<Captured> capture(config::LogFormat format,
                                  config::LogLevel level = config::LogLevel::debug) {
    auto out = std::make_unique<Captured>();
    config::LogConfig log;
    log.level = level;
    log.format = format;
    out->logger = make_logger_with_sink(
        std::make_shared<spdlog::sinks::ostream_sink_mt>(out->stream), log, "test");
    return out;
}

TEST(LoggingTest, TextLineIsUtcTimeLevelMessage) {
    auto c = capture(config::LogFormat::text);
    c->logger->info("dispatched {} crons", 3);
    c->logger->warn("slow");
    auto got = lines(c->stream.str());
    ASSERT_EQ(got.size(), 2U);
    const std::regex shape(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info dispatched 3 crons)");
    EXPECT_TRUE(std::regex_match(got[0], shape)) << got[0];
    EXPECT_NE(got[1].find("Z warn slow"), std::string::npos) << got[1];
}

TEST(LoggingTest, TextRecordsStayOnOneLine) {
    auto c = capture(config::LogFormat::text);
    c->logger->error("first\nsecond\r\x01 \"q\" é");
    auto got = lines(c->stream.str());
    ASSERT_EQ(got.size(), 1U);
    EXPECT_NE(got[0].find("error first\\nsecond\\r\\u0001 \"q\" é"), std::string::npos) << got[0];
}

TEST(LoggingTest, LevelFilter) {
    auto c = capture(config::LogFormat::text, config::LogLevel::warn);
    c->logger->debug("no");
    c->logger->info("no");
    c->logger->warn("yes");
    c->logger->error("yes");
    EXPECT_EQ(lines(c->stream.str()).size(), 2U);
    EXPECT_EQ(to_spdlog(config::LogLevel::error), spdlog::level::err);
}

TEST(LoggingTest, JsonLinesParseAsJson) {
    auto c = capture(config::LogFormat::json);
    const std::vector<std::string> messages = {
        "plain",
        "quote \" backslash \\ slash /",
        "newline\nreturn\rtab\tbell\a nul-free control \x01\x1f del \x7f",
        "unicode é ☃ 😀 \xe2\x80\xa8",
        "{\"looks\":\"like json\"}",
        "",
    };
    for (const auto& m : messages) {
        c->logger->info("{}", m);
    }
    c->logger->warn("w");
    c->logger->debug("d");
    auto got = lines(c->stream.str());
    ASSERT_EQ(got.size(), messages.size() + 2);
    for (std::size_t i = 0; i < messages.size(); ++i) {
        nlohmann::json record = nlohmann::json::parse(got[i]);  // throws if not JSON
        EXPECT_EQ(record.size(), 3U);
        EXPECT_EQ(record.at("msg"), messages[i]);
        EXPECT_EQ(record.at("level"), "info");
        const std::string time = record.at("time");
        EXPECT_TRUE(std::regex_match(time, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
            << time;
    }
    EXPECT_EQ(nlohmann::json::parse(got[messages.size()]).at("level"), "warn");
    EXPECT_EQ(nlohmann::json::parse(got[messages.size() + 1]).at("level"), "debug");
}

TEST(LoggingTest, JsonReplacesInvalidUtf8) {
    auto c = capture(config::LogFormat::json);
    c->logger->info("bad \xff byte, cut \xe2\x82 and overlong \xc0\xaf");
    nlohmann::json record = nlohmann::json::parse(lines(c->stream.str()).at(0));
    EXPECT_EQ(record.at("msg"),
              "bad \xEF\xBF\xBD byte, cut \xEF\xBF\xBD\xEF\xBF\xBD and overlong "
              "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(LoggingTest, TimestampsAreUtc) {
    // Another zone for the process: the log must still say UTC.
    const char* old = std::getenv("TZ");
    const std::string saved = old ? old : "";
    ::setenv("TZ", "Pacific/Kiritimati", 1);  // UTC+14
    ::tzset();
    auto c = capture(config::LogFormat::json);
    const std::time_t before = std::time(nullptr);
    c->logger->info("now");
    const std::time_t after = std::time(nullptr);
    if (old) {
        ::setenv("TZ", saved.c_str(), 1);
    } else {
        ::unsetenv("TZ");
    }
    ::tzset();
    const std::string time = nlohmann::json::parse(lines(c->stream.str()).at(0)).at("time");
    std::tm tm{};
    ASSERT_NE(::strptime(time.c_str(), "%Y-%m-%dT%H:%M:%S", &tm), nullptr);
    const std::time_t logged = ::timegm(&tm);
    EXPECT_GE(logged, before - 1);
    EXPECT_LE(logged, after);
}

TEST(LoggingTest, FileIsAppendedTo) {
    namespace fs = std::filesystem;
    std::string pattern = (fs::temp_directory_path() / "djinn-log-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    const fs::path file = fs::path(pattern) / "scheduler.log";
    std::ofstream(file) << "earlier line\n";
    config::LogConfig log;
    log.file = file.string();
    auto made = make_logger(log);
    ASSERT_TRUE(std::holds_alternative<std::shared_ptr<spdlog::logger>>(made))
        << std::get<std::string>(made);
    auto logger = std::get<std::shared_ptr<spdlog::logger>>(made);
    EXPECT_EQ(logger->name(), "djinn-scheduler");
    logger->info("appended");
    logger->flush();
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    auto got = lines(text.str());
    ASSERT_EQ(got.size(), 2U);
    EXPECT_EQ(got[0], "earlier line");
    EXPECT_NE(got[1].find("info appended"), std::string::npos);
    fs::remove_all(pattern);
}

TEST(LoggingTest, UnopenableFileIsAnErrorValue) {
    namespace fs = std::filesystem;
    config::LogConfig log;
    // A missing directory is not created (spdlog alone would create it).
    std::string pattern = (fs::temp_directory_path() / "djinn-log-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    log.file = pattern + "/missing/scheduler.log";
    auto made = make_logger(log);
    ASSERT_TRUE(std::holds_alternative<std::string>(made));
    EXPECT_EQ(std::get<std::string>(made),
              "cannot open log file " + log.file + ": No such file or directory");
    EXPECT_FALSE(fs::exists(pattern + "/missing"));
    // Not a directory, even for root.
    log.file = "/dev/null/scheduler.log";
    made = make_logger(log);
    ASSERT_TRUE(std::holds_alternative<std::string>(made));
    EXPECT_EQ(std::get<std::string>(made),
              "cannot open log file /dev/null/scheduler.log: Not a directory");
    fs::remove_all(pattern);
}

TEST(LoggingTest, StandardStreams) {
    config::LogConfig log;
    log.file = "/dev/stdout";
    EXPECT_TRUE(std::holds_alternative<std::shared_ptr<spdlog::logger>>(make_logger(log)));
    log.file = "/dev/stderr";
    EXPECT_TRUE(std::holds_alternative<std::shared_ptr<spdlog::logger>>(make_logger(log, "x")));
}

TEST(LoggingTest, JsonEscapingHelper) {
    std::string out;
    append_json_escaped("a\"b\\c\n\x02", out);
    EXPECT_EQ(out, "a\\\"b\\\\c\\n\\u0002");
}

}  // namespace
}  // namespace djinn::logging
