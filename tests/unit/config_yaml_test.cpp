#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "config/config.hpp"

namespace djinn::config {
namespace {

using namespace std::chrono_literals;

const std::string kFixtures = std::string(DJINN_FIXTURES_DIR) + "/config/";

std::vector<std::string> strings(const std::vector<ConfigError>& list) {
    std::vector<std::string> out;
    for (const auto& e : list) {
        out.push_back(e.to_string());
    }
    return out;
}

Config load_ok(const LoadResult& result) {
    for (const auto& e : result.errors) {
        ADD_FAILURE() << e.to_string();
    }
    return result.config.value_or(Config{});
}

std::vector<std::string> errors(const std::string& yaml) {
    auto result = load_yaml(yaml, "e.yaml");
    EXPECT_FALSE(result.config.has_value());
    return strings(result.errors);
}

// Everything a Config holds, secrets included, for comparing two loads.
std::string everything(Config c) {
    c.source.clear();
    return describe(c) + " salt=" + c.crypto_salt + " dbpw=" + c.database.password +
           " redispw=" + c.redis.password;
}

TEST(ConfigYamlTest, SameConfigAsTheDjinnSyntax) {
    Config from_yaml = load_ok(load_file(kFixtures + "full.yaml"));
    Config from_conf = load_ok(load_file(kFixtures + "full.conf"));
    EXPECT_EQ(everything(from_yaml), everything(from_conf));
    EXPECT_EQ(from_yaml.interval, 30s);
    EXPECT_EQ(from_yaml.leader.retry_interval, 1500ms);
    EXPECT_EQ(from_yaml.leader.lock_timeout, 15s);
    EXPECT_EQ(from_yaml.log.level, LogLevel::debug);
    EXPECT_EQ(from_yaml.log.format, LogFormat::json);
    EXPECT_EQ(from_yaml.source, kFixtures + "full.yaml");

    Config seed_yaml = load_ok(load_file(kFixtures + "seed-scheduler.yaml"));
    Config seed_conf = load_ok(load_file(kFixtures + "seed-scheduler.conf"));
    EXPECT_EQ(everything(seed_yaml), everything(seed_conf));
}

TEST(ConfigYamlTest, ScalarsAndExpansion) {
    ::setenv("DJINN_TEST_YAML_PW", "from-env", 1);
    Config c =
        load_ok(load_yaml("database:\n"
                          "  password: ${DJINN_TEST_YAML_PW}\n"
                          "  username: \"u-${DJINN_TEST_YAML_PW}\"\n"
                          "  name: 1234\n"  // unquoted, yet a string is wanted: its text
                          "redis:\n"
                          "  password: 'a\\b'\n"  // no backslash escapes in YAML strings
                          "interval: \"90s\"\n"
                          "Batch_Size: 12\n",
                          "s.yaml"));
    ::unsetenv("DJINN_TEST_YAML_PW");
    EXPECT_EQ(c.database.password, "from-env");
    EXPECT_EQ(c.database.username, "u-from-env");
    EXPECT_EQ(c.database.name, "1234");
    EXPECT_EQ(c.redis.password, "a\\b");
    EXPECT_EQ(c.interval, 90s);
    EXPECT_EQ(c.batch_size, 12);
}

TEST(ConfigYamlTest, EmptyDocumentIsAllDefaults) {
    Config c = load_ok(load_yaml("", "empty.yaml"));
    EXPECT_EQ(c.interval, 1min);
    Config comments = load_ok(load_yaml("# nothing here\n", "empty.yaml"));
    EXPECT_EQ(comments.batch_size, 1000);
}

TEST(ConfigYamlTest, ErrorsWithPlaces) {
    EXPECT_EQ(errors("interval: 60\n"),
              (std::vector<std::string>{
                  "e.yaml:1:11: interval: expected a duration, got integer 60 (a duration needs a "
                  "unit: 60s, 60m, ...)"}));
    EXPECT_EQ(errors("interval: soon\n"),
              (std::vector<std::string>{"e.yaml:1:11: interval: invalid duration \"soon\""}));
    EXPECT_EQ(errors("interval: [1m]\n"),
              (std::vector<std::string>{
                  "e.yaml:1:11: interval: expected a duration, got sequence (e.g. 1m, 1h30m, "
                  "500ms)"}));
    EXPECT_EQ(
        errors("database:\n  adr: x\n"),
        (std::vector<std::string>{"e.yaml:2:3: database.adr: unknown key (did you mean 'addr'?)"}));
    EXPECT_EQ(errors("database:\n"),
              (std::vector<std::string>{"e.yaml:1:1: database: expected a mapping, got null"}));
    EXPECT_EQ(errors("batch_size: \"10\"\n"),
              (std::vector<std::string>{
                  "e.yaml:1:13: batch_size: expected an integer, got string \"10\""}));
    EXPECT_EQ(errors("log: /dev/stdout\n"),
              (std::vector<std::string>{"e.yaml:1:6: log: expected a mapping, got string "
                                        "\"/dev/stdout\": log: use {level: info, file: "
                                        "/dev/stdout}"}));
    EXPECT_EQ(errors("log:\n  loud: /dev/stdout\n"),
              (std::vector<std::string>{
                  "e.yaml:2:3: log.loud: unknown log level 'loud' (use debug, info, warn or "
                  "error); or log: use {level: info, file: /dev/stdout}"}));
    EXPECT_EQ(errors("drivers:\n  - docker\n  - qemu\n"),
              (std::vector<std::string>{
                  "e.yaml:3:5: drivers[1]: unknown driver \"qemu\" (the scheduler queues qemu "
                  "builds as \"qemu-x86_64\")"}));
    EXPECT_EQ(errors("- a\n- b\n"),
              (std::vector<std::string>{"e.yaml:1:1: expected a mapping, got sequence"}));
    EXPECT_EQ(errors("database:\n  tls:\n    cert: /c\n"),
              (std::vector<std::string>{
                  "e.yaml:2:3: database.tls.ca: required when database.tls is set: the "
                  "connection verifies the server (sslmode=verify-full)",
                  "e.yaml:3:5: database.tls.key: required when database.tls.cert is set: a "
                  "client certificate needs its key"}));
    EXPECT_EQ(
        errors("interval: 1m\ninterval: 2m\n"),
        (std::vector<std::string>{"e.yaml:2:1: interval: duplicate key; first set at e.yaml:1:1"}));
}

TEST(ConfigYamlTest, SyntaxErrorsComeFromYamlCppWithTheirPlace) {
    auto all = errors("database:\n  addr: [a, b\n");
    ASSERT_EQ(all.size(), 1U);
    EXPECT_EQ(all[0].rfind("e.yaml:3:1: ", 0), 0U) << all[0];
    EXPECT_NE(all[0].find("end of sequence flow not found"), std::string::npos) << all[0];
}

TEST(ConfigYamlTest, ChosenByTheFileEnding) {
    namespace fs = std::filesystem;
    std::string pattern = (fs::temp_directory_path() / "djinn-yaml-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    const fs::path dir = pattern;
    std::ofstream(dir / "s.yml") << "interval: 5m\n";
    std::ofstream(dir / "s.YAML") << "interval: 6m\n";
    std::ofstream(dir / "s.conf") << "interval 7m\n";
    EXPECT_EQ(load_ok(load_file((dir / "s.yml").string())).interval, 5min);
    EXPECT_EQ(load_ok(load_file((dir / "s.YAML").string())).interval, 6min);
    EXPECT_EQ(load_ok(load_file((dir / "s.conf").string())).interval, 7min);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace djinn::config
