// Inputs the libFuzzer targets of tests/fuzz found crashing or hanging the config loaders, each
// run in a child process with a time bound so that a regression fails instead of hanging the
// suite. The same inputs are in the fuzz seed corpora (tests/fuzz/corpus/*/regression-*).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "config/config.hpp"

namespace djinn::config {
namespace {

// Runs `body` in a child process killed after `seconds`; returns the child's wait status.
int run_bounded(const std::function<void()>& body, unsigned seconds = 10) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::alarm(seconds);
        body();
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
}

bool exited_cleanly(int status) {
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string all_errors(const LoadResult& r) {
    std::string out;
    for (const auto& e : r.errors)
        out += e.to_string() + "\n";
    return out;
}

// A '}' at the top level left the parser where it was: it reported "expected a name" for
// ever, growing the error list until memory ran out (config_djinn fuzz target, timeout).
TEST(ConfigFuzzRegression, StrayClosingBraceAtTopLevelIsOneError) {
    ASSERT_TRUE(exited_cleanly(run_bounded([] {
        const LoadResult r = load_djinn("}\n", "stray.conf");
        if (r.errors.size() != 1)
            ::_exit(3);
    })));
    const LoadResult r = load_djinn("interval 1m\n}\nbatch_size 5 }\nbatch_size 7\n", "s.conf");
    ASSERT_FALSE(r.config.has_value());
    // The stray '}', the '}' after a value, and the key set twice: parsing went on after each.
    EXPECT_EQ(r.errors.size(), 3u) << all_errors(r);
    EXPECT_EQ(r.errors.at(0).to_string(), "s.conf:2:1: expected a name, got '}'") << all_errors(r);
}

TEST(ConfigFuzzRegression, FuzzerInputWithStrayBracesTerminates) {
    const std::string input =
        "databaseert \"client.crt\"; key \"client.key\" } }\nInterval 10S\nBATCH_SIZE 100000\n"
        "unknown_key { nested { deeper^[1, 2.5, true, false, 1MB { ssl { ca \"ca.crt\"; cert "
        "\"client.crt\"; key \"client.key\" } }\nInterval 10S\nBATCH_SIZE 100000\nunknown_key { "
        "nested { deeper^[1, 2.5, true, false, 1MB, 3h, \"s\",] } }\n";
    EXPECT_TRUE(exited_cleanly(run_bounded([&] {
        const LoadResult r = load_djinn(input, "fuzz.conf");
        if (r.config.has_value() || r.errors.empty() || r.errors.size() > 100)
            ::_exit(3);
    })));
}

// yaml-cpp makes `&a [*a]` a node that contains itself: converting it recursed until the stack
// overflowed (config_yaml fuzz target, ASan stack-overflow).
TEST(ConfigFuzzRegression, YamlAliasThatContainsItselfIsAnError) {
    ASSERT_TRUE(exited_cleanly(run_bounded([] {
        const LoadResult r = load_yaml("a: &a [*a]\n", "cycle.yaml");
        if (r.config.has_value() || r.errors.empty())
            ::_exit(3);
    })));
    const LoadResult r = load_yaml("a: &a [*a]\n", "cycle.yaml");
    ASSERT_EQ(r.errors.size(), 1u) << all_errors(r);
    EXPECT_NE(r.errors[0].to_string().find("levels deep"), std::string::npos) << all_errors(r);
    const LoadResult m = load_yaml("drivers: &d {x: *d}\n", "cycle.yaml");
    EXPECT_FALSE(m.config.has_value());
}

// Nested aliases expand exponentially (9^8 scalars here): refused after a bounded amount of
// work, in well under the time bound.
TEST(ConfigFuzzRegression, YamlBillionLaughsIsRefusedQuickly) {
    std::string bomb = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
    for (int i = 1; i <= 8; ++i) {
        const std::string p = "*a" + std::to_string(i - 1);
        bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + p + ", " + p + ", " +
                p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + "]\n";
    }
    bomb += "drivers: *a8\n";
    ASSERT_TRUE(exited_cleanly(run_bounded([&] {
        const LoadResult r = load_yaml(bomb, "bomb.yaml");
        if (r.config.has_value())
            ::_exit(3);
    })));
    const LoadResult r = load_yaml(bomb, "bomb.yaml");
    ASSERT_EQ(r.errors.size(), 1u) << all_errors(r);
    EXPECT_NE(r.errors[0].message.find("values"), std::string::npos) << all_errors(r);
}

// Deep but legitimate-looking nesting below the bound still loads to the usual unknown-key
// error, so the bound does not change what valid configs mean.
TEST(ConfigFuzzRegression, YamlAliasesWithinBoundsStillWork) {
    const LoadResult r =
        load_yaml("x: &drivers [docker, qemu-x86_64]\ndrivers: *drivers\n", "ok.yaml");
    ASSERT_FALSE(r.config.has_value());  // `x` is an unknown key
    ASSERT_EQ(r.errors.size(), 1u) << all_errors(r);
    EXPECT_NE(r.errors[0].to_string().find("ok.yaml:1:1: x:"), std::string::npos) << all_errors(r);
}

}  // namespace
}  // namespace djinn::config
