// Metrics: names, types, labels and values as Prometheus scrapes them (TextSerializer).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "metrics/metrics.hpp"

namespace djinn::metrics {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Sample lines of the text format: "name{labels} value" → value.
std::map<std::string, double> samples(const std::string& text) {
    std::map<std::string, double> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line.front() == '#')
            continue;
        auto space = line.rfind(' ');
        out[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
    return out;
}

double sample(const Metrics& m, const std::string& key) {
    auto all = samples(m.serialize());
    auto it = all.find(key);
    if (it == all.end()) {
        ADD_FAILURE() << "no sample " << key << " in:\n" << m.serialize();
        return -1;
    }
    return it->second;
}

TEST(MetricsRegistry, EveryFamilyHasItsPrefixedNameAndType) {
    Metrics m("1.2.3", {.drivers = {"docker"},
                        .skip_reasons = {"no_manifest"},
                        .error_kinds = {"redis"},
                        .pass_results = {"ok"}});
    std::string text = m.serialize();
    const std::vector<std::pair<std::string, std::string>> families{
        {"djinn_scheduler_leader", "gauge"},
        {"djinn_scheduler_leader_transitions_total", "counter"},
        {"djinn_scheduler_builds_dispatched_total", "counter"},
        {"djinn_scheduler_crons_skipped_total", "counter"},
        {"djinn_scheduler_enqueue_retries_total", "counter"},
        {"djinn_scheduler_errors_total", "counter"},
        {"djinn_scheduler_builds_recovered_total", "counter"},
        {"djinn_scheduler_jobs_adopted_total", "counter"},
        {"djinn_scheduler_jobs_lost_total", "counter"},
        {"djinn_scheduler_due_scans_total", "counter"},
        {"djinn_scheduler_passes_total", "counter"},
        {"djinn_scheduler_pass_duration_seconds", "histogram"},
        {"djinn_scheduler_dispatch_delay_seconds", "histogram"},
        {"djinn_scheduler_due_crons", "gauge"},
        {"djinn_scheduler_last_pass_timestamp_seconds", "gauge"},
        {"djinn_scheduler_build_info", "gauge"},
        {"process_cpu_seconds_total", "counter"},
        {"process_resident_memory_bytes", "gauge"},
        {"process_virtual_memory_bytes", "gauge"},
        {"process_start_time_seconds", "gauge"},
        {"process_open_fds", "gauge"},
    };
    for (const auto& [name, type] : families) {
        EXPECT_THAT(text, HasSubstr("# TYPE " + name + " " + type + "\n")) << name;
        EXPECT_THAT(text, HasSubstr("# HELP " + name + " ")) << name;
    }
}

TEST(MetricsRegistry, StartsAtZeroWithBuildInfo) {
    Metrics m("1.2.3");
    auto s = samples(m.serialize());
    EXPECT_EQ(s.at("djinn_scheduler_build_info{version=\"1.2.3\"}"), 1);
    EXPECT_EQ(s.at("djinn_scheduler_leader"), 0);
    EXPECT_EQ(s.at("djinn_scheduler_leader_transitions_total"), 0);
    EXPECT_EQ(s.at("djinn_scheduler_enqueue_retries_total"), 0);
    EXPECT_EQ(s.at("djinn_scheduler_builds_recovered_total"), 0);
    EXPECT_EQ(s.at("djinn_scheduler_due_crons"), 0);
    EXPECT_EQ(s.at("djinn_scheduler_pass_duration_seconds_count"), 0);
    EXPECT_EQ(s.at("djinn_scheduler_dispatch_delay_seconds_count"), 0);
}

TEST(MetricsRegistry, KnownLabelValuesArePreCreatedAtZero) {
    Metrics m("1.2.3", {.drivers = {"docker", "qemu"},
                        .skip_reasons = {"no_manifest"},
                        .error_kinds = {"redis", "database"},
                        .pass_results = {"ok", "error"}});
    auto s = samples(m.serialize());
    EXPECT_EQ(s.at("djinn_scheduler_builds_dispatched_total{driver=\"docker\"}"), 0);
    EXPECT_EQ(s.at("djinn_scheduler_builds_dispatched_total{driver=\"qemu\"}"), 0);
    EXPECT_EQ(s.at("djinn_scheduler_crons_skipped_total{reason=\"no_manifest\"}"), 0);
    EXPECT_EQ(s.at("djinn_scheduler_errors_total{kind=\"redis\"}"), 0);
    EXPECT_EQ(s.at("djinn_scheduler_errors_total{kind=\"database\"}"), 0);
    EXPECT_EQ(s.at("djinn_scheduler_passes_total{result=\"ok\"}"), 0);
    EXPECT_EQ(s.at("djinn_scheduler_passes_total{result=\"error\"}"), 0);
}

TEST(MetricsRegistry, DriverListShorthand) {
    const std::vector<std::string> drivers{"docker", "qemu"};
    Metrics m("1.2.3", drivers);
    EXPECT_EQ(sample(m, "djinn_scheduler_builds_dispatched_total{driver=\"qemu\"}"), 0);
}

TEST(MetricsRegistry, UnknownLabelValueAppearsOnFirstUse) {
    Metrics m("1.2.3");
    EXPECT_EQ(m.serialize().find("djinn_scheduler_errors_total"), std::string::npos);
    m.error("queue");
    EXPECT_EQ(sample(m, "djinn_scheduler_errors_total{kind=\"queue\"}"), 1);
}

TEST(MetricsRegistry, LeaderGaugeCountsOnlyChanges) {
    Metrics m("1.2.3");
    m.set_leader(true);
    m.set_leader(true);
    EXPECT_TRUE(m.leader());
    EXPECT_EQ(sample(m, "djinn_scheduler_leader"), 1);
    EXPECT_EQ(sample(m, "djinn_scheduler_leader_transitions_total"), 1);
    m.set_leader(false);
    m.set_leader(false);
    EXPECT_FALSE(m.leader());
    EXPECT_EQ(sample(m, "djinn_scheduler_leader"), 0);
    EXPECT_EQ(sample(m, "djinn_scheduler_leader_transitions_total"), 2);
}

TEST(MetricsRegistry, LabelledCountersAddUp) {
    Metrics m("1.2.3");
    m.dispatched("docker", 3);
    m.dispatched("docker");
    m.dispatched("qemu");
    m.skipped("no_manifest");
    m.skipped("namespace_gone", 2);
    m.error("redis");
    m.error("redis");
    m.error("database");
    m.enqueue_retry();
    m.enqueue_retry(2);
    m.recovered(5);
    auto s = samples(m.serialize());
    EXPECT_EQ(s.at("djinn_scheduler_builds_dispatched_total{driver=\"docker\"}"), 4);
    EXPECT_EQ(s.at("djinn_scheduler_builds_dispatched_total{driver=\"qemu\"}"), 1);
    EXPECT_EQ(s.at("djinn_scheduler_crons_skipped_total{reason=\"no_manifest\"}"), 1);
    EXPECT_EQ(s.at("djinn_scheduler_crons_skipped_total{reason=\"namespace_gone\"}"), 2);
    EXPECT_EQ(s.at("djinn_scheduler_errors_total{kind=\"redis\"}"), 2);
    EXPECT_EQ(s.at("djinn_scheduler_errors_total{kind=\"database\"}"), 1);
    EXPECT_EQ(s.at("djinn_scheduler_enqueue_retries_total"), 3);
    EXPECT_EQ(s.at("djinn_scheduler_builds_recovered_total"), 5);
}

TEST(MetricsRegistry, PassFinishedFeedsCountDurationAndTimestamp) {
    Metrics m("1.2.3");
    const auto at = std::chrono::system_clock::time_point(1'700'000'000s + 250ms);
    m.pass_finished("ok", 30ms, at);
    m.pass_finished("ok", 2s, at + 5s);
    m.pass_finished("error", 700ms, at + 10s);
    m.set_due_crons(17);
    auto s = samples(m.serialize());
    EXPECT_EQ(s.at("djinn_scheduler_passes_total{result=\"ok\"}"), 2);
    EXPECT_EQ(s.at("djinn_scheduler_passes_total{result=\"error\"}"), 1);
    EXPECT_EQ(s.at("djinn_scheduler_pass_duration_seconds_count"), 3);
    EXPECT_NEAR(s.at("djinn_scheduler_pass_duration_seconds_sum"), 2.73, 1e-9);
    EXPECT_EQ(s.at("djinn_scheduler_pass_duration_seconds_bucket{le=\"0.025\"}"), 0);
    EXPECT_EQ(s.at("djinn_scheduler_pass_duration_seconds_bucket{le=\"0.05\"}"), 1);
    EXPECT_EQ(s.at("djinn_scheduler_pass_duration_seconds_bucket{le=\"1\"}"), 2);
    EXPECT_EQ(s.at("djinn_scheduler_pass_duration_seconds_bucket{le=\"2.5\"}"), 3);
    EXPECT_EQ(s.at("djinn_scheduler_pass_duration_seconds_bucket{le=\"+Inf\"}"), 3);
    EXPECT_DOUBLE_EQ(s.at("djinn_scheduler_last_pass_timestamp_seconds"), 1'700'000'010.25);
    EXPECT_EQ(s.at("djinn_scheduler_due_crons"), 17);
}

TEST(MetricsRegistry, DispatchDelayReachesHoursAndClampsNegative) {
    Metrics m("1.2.3");
    m.dispatch_delay(-3s);  // enqueue host's clock behind the database's
    m.dispatch_delay(1500ms);
    m.dispatch_delay(std::chrono::hours(3));
    auto s = samples(m.serialize());
    EXPECT_EQ(s.at("djinn_scheduler_dispatch_delay_seconds_count"), 3);
    EXPECT_DOUBLE_EQ(s.at("djinn_scheduler_dispatch_delay_seconds_sum"), 1.5 + 3 * 3600);
    EXPECT_EQ(s.at("djinn_scheduler_dispatch_delay_seconds_bucket{le=\"0.01\"}"), 1);
    EXPECT_EQ(s.at("djinn_scheduler_dispatch_delay_seconds_bucket{le=\"2.5\"}"), 2);
    EXPECT_EQ(s.at("djinn_scheduler_dispatch_delay_seconds_bucket{le=\"7200\"}"), 2);
    EXPECT_EQ(s.at("djinn_scheduler_dispatch_delay_seconds_bucket{le=\"14400\"}"), 3);
}

TEST(MetricsRegistry, BucketsSpanTheDocumentedRanges) {
    const auto& pass = Metrics::pass_duration_buckets();
    ASSERT_FALSE(pass.empty());
    EXPECT_DOUBLE_EQ(pass.front(), 0.001);
    EXPECT_DOUBLE_EQ(pass.back(), 600);
    EXPECT_TRUE(std::is_sorted(pass.begin(), pass.end()));
    const auto& delay = Metrics::dispatch_delay_buckets();
    ASSERT_FALSE(delay.empty());
    EXPECT_GE(delay.back(), 3600 * 4);
    EXPECT_TRUE(std::is_sorted(delay.begin(), delay.end()));
}

TEST(MetricsRegistry, ProcessMetricsDescribeThisProcess) {
    Metrics m("1.2.3");
    auto s = samples(m.serialize());
    EXPECT_GE(s.at("process_cpu_seconds_total"), 0);
    EXPECT_GT(s.at("process_resident_memory_bytes"), 1024 * 1024);
    EXPECT_GE(s.at("process_virtual_memory_bytes"), s.at("process_resident_memory_bytes"));
    EXPECT_GE(s.at("process_open_fds"), 3);  // stdin, stdout, stderr
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    EXPECT_LE(s.at("process_start_time_seconds"), now + 1);
    EXPECT_GT(s.at("process_start_time_seconds"), now - 24 * 3600);
}

TEST(MetricsRegistry, ConcurrentUpdatesAreAllCounted) {
    Metrics m("1.2.3");
    constexpr int kThreads = 4;
    constexpr int kPerThread = 10000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&m, t] {
            const std::string driver = t % 2 == 0 ? "docker" : "qemu";
            for (int i = 0; i < kPerThread; ++i) {
                m.dispatched(driver);
                m.error("redis");
                m.set_leader(i % 2 == 0);
            }
        });
    }
    for (auto& t : threads)
        t.join();
    auto s = samples(m.serialize());
    EXPECT_EQ(s.at("djinn_scheduler_builds_dispatched_total{driver=\"docker\"}"),
              kThreads / 2 * kPerThread);
    EXPECT_EQ(s.at("djinn_scheduler_errors_total{kind=\"redis\"}"), kThreads * kPerThread);
    // Every transition is a change: the count and the final state agree.
    const double transitions = s.at("djinn_scheduler_leader_transitions_total");
    EXPECT_EQ(static_cast<long>(transitions) % 2,
              static_cast<long>(s.at("djinn_scheduler_leader")));
}

}  // namespace
}  // namespace djinn::metrics
