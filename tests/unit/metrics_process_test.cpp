// ProcessCollector: parses a /proc snapshot (a fake one, so the numbers are exact).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "metrics/process_collector.hpp"

namespace djinn::metrics {
namespace {

namespace fs = std::filesystem;

class MetricsProcessCollector : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("djinn-proc-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "self" / "fd");
    }
    void TearDown() override { fs::remove_all(dir_); }

    void write(const fs::path& rel, const std::string& text) { std::ofstream(dir_ / rel) << text; }

    std::map<std::string, double> collect() {
        ProcessCollector c(dir_ / "self", dir_ / "stat");
        std::map<std::string, double> out;
        for (const auto& f : c.Collect()) {
            EXPECT_EQ(f.metric.size(), 1U) << f.name;
            const auto& m = f.metric.at(0);
            out[f.name] =
                f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
        }
        return out;
    }

    fs::path dir_;
};

TEST_F(MetricsProcessCollector, ParsesStatWithAnAwkwardCommandName) {
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    // Fields after the command: state(3) ... utime(14)=250 stime(15)=150 ... starttime(22)=5000
    // vsize(23)=123456789 rss(24)=2048.
    write("self/stat",
          "4242 (djinn) (x y)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 0 5000 "
          "123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n");
    write("stat", "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n");
    write("self/limits",
          "Limit                     Soft Limit           Hard Limit           Units\n"
          "Max open files            1024                 524288               files\n");
    for (int i = 0; i < 3; ++i)
        write("self/fd/" + std::to_string(i), "");

    auto s = collect();
    EXPECT_DOUBLE_EQ(s.at("process_cpu_seconds_total"), 400 / ticks);
    EXPECT_DOUBLE_EQ(s.at("process_virtual_memory_bytes"), 123456789);
    EXPECT_DOUBLE_EQ(s.at("process_resident_memory_bytes"), 2048 * page);
    EXPECT_DOUBLE_EQ(s.at("process_start_time_seconds"), 1700000000 + 5000 / ticks);
    EXPECT_DOUBLE_EQ(s.at("process_open_fds"), 3);
    EXPECT_DOUBLE_EQ(s.at("process_max_fds"), 1024);
}

TEST_F(MetricsProcessCollector, MissingFilesLeaveTheirMetricsOut) {
    write("self/stat", "garbage without a closing paren\n");
    auto s = collect();
    EXPECT_EQ(s.count("process_cpu_seconds_total"), 0U);
    EXPECT_EQ(s.count("process_start_time_seconds"), 0U);
    EXPECT_EQ(s.count("process_max_fds"), 0U);
    EXPECT_DOUBLE_EQ(s.at("process_open_fds"), 0);  // the fd directory exists, empty
}

}  // namespace
}  // namespace djinn::metrics
