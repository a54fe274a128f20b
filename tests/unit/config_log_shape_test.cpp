// The two shapes of `log` (Djinn's {<level>: <file>} and the Kubernetes-style
// {level, file, format}), and what a near miss is told.
#include <gtest/gtest.h>

#include "config/config.hpp"

namespace djinn::config {
namespace {

Config yaml_ok(const std::string& text) {
    auto result = load_yaml(text, "s.yaml");
    for (const auto& e : result.errors) {
        ADD_FAILURE() << e.to_string();
    }
    return result.config.value_or(Config{});
}

Config djinn_ok(const std::string& text) {
    auto result = load_djinn(text, "s.conf");
    for (const auto& e : result.errors) {
        ADD_FAILURE() << e.to_string();
    }
    return result.config.value_or(Config{});
}

std::vector<std::string> messages(const LoadResult& result) {
    EXPECT_FALSE(result.config.has_value());
    std::vector<std::string> out;
    for (const auto& e : result.errors) {
        out.push_back(e.to_string());
    }
    return out;
}

std::vector<std::string> yaml_errors(const std::string& text) {
    return messages(load_yaml(text, "e.yaml"));
}

std::vector<std::string> djinn_errors(const std::string& text) {
    return messages(load_djinn(text, "e.conf"));
}

using Strings = std::vector<std::string>;

TEST(ConfigLogShapeTest, KubernetesStyleMapping) {
    Config c = yaml_ok("log: {level: info, file: /dev/stdout}\n");
    EXPECT_EQ(c.log.level, LogLevel::info);
    EXPECT_EQ(c.log.file, "/dev/stdout");
    EXPECT_EQ(c.log.format, LogFormat::text);

    Config all =
        yaml_ok("log:\n  level: debug\n  file: /var/log/djinn/scheduler.log\n  format: json\n");
    EXPECT_EQ(all.log.level, LogLevel::debug);
    EXPECT_EQ(all.log.file, "/var/log/djinn/scheduler.log");
    EXPECT_EQ(all.log.format, LogFormat::json);
}

TEST(ConfigLogShapeTest, OmittedFieldsKeepTheDefaults) {
    Config level_only = yaml_ok("log: {level: warn}\n");
    EXPECT_EQ(level_only.log.level, LogLevel::warn);
    EXPECT_EQ(level_only.log.file, "/dev/stdout");

    Config file_only = yaml_ok("log: {file: /dev/stderr}\n");
    EXPECT_EQ(file_only.log.level, LogLevel::info);
    EXPECT_EQ(file_only.log.file, "/dev/stderr");

    Config format_only = yaml_ok("log: {format: json}\n");
    EXPECT_EQ(format_only.log.level, LogLevel::info);
    EXPECT_EQ(format_only.log.format, LogFormat::json);
}

TEST(ConfigLogShapeTest, KeysAndLevelsMatchCaseInsensitively) {
    Config c = yaml_ok("log: {Level: ERROR, File: /dev/stderr, FORMAT: Json}\n");
    EXPECT_EQ(c.log.level, LogLevel::error);
    EXPECT_EQ(c.log.file, "/dev/stderr");
    EXPECT_EQ(c.log.format, LogFormat::json);
}

TEST(ConfigLogShapeTest, DjinnShapedYamlStillLoads) {
    Config c = yaml_ok("log: {info: /dev/stdout}\nlog_format: json\n");
    EXPECT_EQ(c.log.level, LogLevel::info);
    EXPECT_EQ(c.log.file, "/dev/stdout");
    EXPECT_EQ(c.log.format, LogFormat::json);
    Config debug = yaml_ok("log:\n  debug: /var/log/s.log\n");
    EXPECT_EQ(debug.log.level, LogLevel::debug);
    EXPECT_EQ(debug.log.file, "/var/log/s.log");
}

TEST(ConfigLogShapeTest, TheSameFieldsInDjinnsLanguage) {
    Config c = djinn_ok("log { level \"debug\"; file \"/dev/stderr\"; format \"json\" }\n");
    EXPECT_EQ(c.log.level, LogLevel::debug);
    EXPECT_EQ(c.log.file, "/dev/stderr");
    EXPECT_EQ(c.log.format, LogFormat::json);
    Config labelled = djinn_ok("log debug \"/dev/stderr\"\nlog_format \"json\"\n");
    EXPECT_EQ(describe(labelled), describe(c));
}

TEST(ConfigLogShapeTest, NearMissesSayWhatWasMeant) {
    EXPECT_EQ(yaml_errors("log: {lvl: info}\n"),
              (Strings{"e.yaml:1:7: log.lvl: unknown key (did you mean 'level'?): log: use "
                       "{level: info, file: /dev/stdout}"}));
    EXPECT_EQ(yaml_errors("log: {levle: info}\n"),
              (Strings{"e.yaml:1:7: log.levle: unknown key (did you mean 'level'?): log: use "
                       "{level: info, file: /dev/stdout}"}));
    EXPECT_EQ(yaml_errors("log: {path: /var/log/s.log}\n"),
              (Strings{"e.yaml:1:7: log.path: unknown key (did you mean 'file'?): log: use "
                       "{level: info, file: /dev/stdout}"}));
    EXPECT_EQ(yaml_errors("log: {level: info, path: /var/log/s.log}\n"),
              (Strings{"e.yaml:1:20: log.path: unknown key (did you mean 'file'?)"}));
    EXPECT_EQ(yaml_errors("log: {level: info, colour: true}\n"),
              (Strings{"e.yaml:1:20: log.colour: unknown key (known here: level, file, format)"}));
    EXPECT_EQ(yaml_errors("log: {warning: /dev/stdout}\n"),
              (Strings{"e.yaml:1:7: log.warning: unknown log level 'warning' (use debug, info, "
                       "warn or error); or log: use {level: info, file: /dev/stdout}"}));
}

TEST(ConfigLogShapeTest, MixingTheShapesIsAnError) {
    EXPECT_EQ(yaml_errors("log: {level: info, debug: /dev/stdout}\n"),
              (Strings{"e.yaml:1:20: log.debug: mixes {<level>: <file>} with {level: ..., file: "
                       "...}: log: use {level: debug, file: /dev/stdout}"}));
    EXPECT_EQ(djinn_errors("log { level \"info\" }\nlog debug \"/dev/stdout\"\n"),
              (Strings{"e.conf:2:5: log.debug: log is set twice; first set at e.conf:1:5"}));
    EXPECT_EQ(djinn_errors("log debug \"/dev/stdout\"\nlog { level \"info\" }\n"),
              (Strings{"e.conf:2:5: log: log is set twice; first set at e.conf:1:5"}));
}

TEST(ConfigLogShapeTest, BadFieldValues) {
    EXPECT_EQ(yaml_errors("log: {level: verbose}\n"),
              (Strings{"e.yaml:1:14: log.level: unknown log level \"verbose\" (use debug, info, "
                       "warn or error)"}));
    EXPECT_EQ(yaml_errors("log: {level: info, file: stdout}\n"),
              (Strings{"e.yaml:1:26: log.file: \"stdout\" would be a file in the working "
                       "directory: use /dev/stdout"}));
    EXPECT_EQ(yaml_errors("log: {file: \"\"}\n"),
              (Strings{"e.yaml:1:13: log.file: must not be empty (use /dev/stdout)"}));
    EXPECT_EQ(yaml_errors("log: {format: xml}\n"),
              (Strings{"e.yaml:1:15: log.format: unknown log format \"xml\" (use text or json)"}));
    EXPECT_EQ(yaml_errors("log: {level: [info]}\n"),
              (Strings{"e.yaml:1:14: log.level: expected a string, got sequence"}));
    EXPECT_EQ(yaml_errors("log: {level: info, level: debug}\n"),
              (Strings{"e.yaml:1:20: log.level: duplicate key; first set at e.yaml:1:7"}));
}

TEST(ConfigLogShapeTest, FormatSetTwice) {
    EXPECT_EQ(yaml_errors("log_format: text\nlog: {format: json}\n"),
              (Strings{"e.yaml:2:7: log.format: log_format is also set (at e.yaml:1:1): keep one "
                       "of them"}));
    EXPECT_EQ(yaml_errors("log: {format: json}\nlog_format: json\n"),
              (Strings{"e.yaml:1:7: log.format: log_format is also set (at e.yaml:2:1): keep one "
                       "of them"}));
}

TEST(ConfigLogShapeTest, AScalarIsAnsweredWithTheMapping) {
    EXPECT_EQ(yaml_errors("log: info\n"),
              (Strings{"e.yaml:1:6: log: expected a mapping, got string \"info\": log: use "
                       "{level: info, file: /dev/stdout}"}));
    EXPECT_EQ(yaml_errors("log: DEBUG\n"),
              (Strings{"e.yaml:1:6: log: expected a mapping, got string \"DEBUG\": log: use "
                       "{level: debug, file: /dev/stdout}"}));
    EXPECT_EQ(yaml_errors("log: /var/log/s.log\n"),
              (Strings{"e.yaml:1:6: log: expected a mapping, got string \"/var/log/s.log\": log: "
                       "use {level: info, file: /var/log/s.log}"}));
}

TEST(ConfigLogShapeTest, DjinnLabelThatIsAYamlKey) {
    EXPECT_EQ(djinn_errors("log level \"info\"\n"),
              (Strings{"e.conf:1:5: log.level: unknown log level 'level' (use debug, info, warn or "
                       "error): use log info \"/dev/stdout\""}));
}

// Kubernetes configs spell keys in camelCase; the scheduler's keys are Djinn's snake_case.
// Each camelCase spelling is an error that names the key.
TEST(ConfigLogShapeTest, CamelCaseKeysAreNamed) {
    EXPECT_EQ(yaml_errors("batchSize: 10\n"),
              (Strings{"e.yaml:1:1: batchSize: unknown key (did you mean 'batch_size'?)"}));
    EXPECT_EQ(yaml_errors("drainTimeout: 20s\n"),
              (Strings{"e.yaml:1:1: drainTimeout: unknown key (did you mean 'drain_timeout'?)"}));
    EXPECT_EQ(yaml_errors("logFormat: json\n"),
              (Strings{"e.yaml:1:1: logFormat: unknown key (did you mean 'log_format'?)"}));
    EXPECT_EQ(yaml_errors("leader: {retryInterval: 2s, lockTimeout: 10s}\n"),
              (Strings{"e.yaml:1:10: leader.retryInterval: unknown key (did you mean "
                       "'retry_interval'?)",
                       "e.yaml:1:29: leader.lockTimeout: unknown key (did you mean "
                       "'lock_timeout'?)"}));
}

}  // namespace
}  // namespace djinn::config
