#include "metrics/process_collector.hpp"

#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>

namespace djinn::metrics {
namespace {

prometheus::MetricFamily single(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
    prometheus::ClientMetric m;
    if (type == prometheus::MetricType::Counter) {
        m.counter.value = value;
    } else {
        m.gauge.value = value;
    }
    return prometheus::MetricFamily{std::move(name), std::move(help), type, {m}};
}

std::optional<std::string> read_file(const std::filesystem::path& p) {
    std::ifstream in(p);
    if (!in)
        return std::nullopt;
    std::string text;
    std::getline(in, text, '\0');  // the whole file: /proc text files hold no NUL
    return text;
}

// The fields of /proc/<pid>/stat after the command name, which may itself contain spaces and
// parentheses: everything after the last ')'. fields[0] is field 3 (state) of proc(5).
std::optional<std::vector<std::string>> stat_fields(const std::filesystem::path& proc_dir) {
    auto text = read_file(proc_dir / "stat");
    if (!text)
        return std::nullopt;
    auto close = text->rfind(')');
    if (close == std::string::npos)
        return std::nullopt;
    std::istringstream rest(text->substr(close + 1));
    std::vector<std::string> fields;
    for (std::string f; rest >> f;)
        fields.push_back(f);
    if (fields.size() < 22)
        return std::nullopt;
    return fields;
}

std::optional<double> to_double(const std::string& s) {
    try {
        std::size_t used = 0;
        double v = std::stod(s, &used);
        if (used != s.size())
            return std::nullopt;
        return v;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::optional<double> boot_time_seconds(const std::filesystem::path& proc_stat) {
    std::ifstream in(proc_stat);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("btime ", 0) == 0)
            return to_double(line.substr(6));
    }
    return std::nullopt;
}

std::optional<double> max_open_files(const std::filesystem::path& proc_dir) {
    std::ifstream in(proc_dir / "limits");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("Max open files", 0) != 0)
            continue;
        std::istringstream words(line.substr(14));
        std::string soft;
        words >> soft;
        if (soft == "unlimited")
            return std::nullopt;
        return to_double(soft);
    }
    return std::nullopt;
}

std::optional<double> open_fds(const std::filesystem::path& proc_dir, bool self) {
    std::error_code ec;
    std::filesystem::directory_iterator it(proc_dir / "fd", ec);
    if (ec)
        return std::nullopt;
    double n = 0;
    for (const auto& entry : it) {
        (void)entry;
        n += 1;
    }
    // When describing ourselves, the directory handle used for counting is one of the entries;
    // it is closed again by now, so do not count it.
    return self && n > 0 ? n - 1 : n;
}

}  // namespace

ProcessCollector::ProcessCollector(std::filesystem::path proc_dir, std::filesystem::path proc_stat)
    : proc_dir_(std::move(proc_dir)),
      proc_stat_(std::move(proc_stat)),
      ticks_per_second_(static_cast<double>(::sysconf(_SC_CLK_TCK))),
      page_size_bytes_(static_cast<double>(::sysconf(_SC_PAGESIZE))) {}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
    using prometheus::MetricType;
    std::vector<prometheus::MetricFamily> out;
    if (auto f = stat_fields(proc_dir_)) {
        // proc(5) field numbers: utime 14, stime 15, starttime 22, vsize 23, rss 24.
        auto field = [&](std::size_t number) { return to_double((*f)[number - 3]); };
        auto utime = field(14);
        auto stime = field(15);
        if (utime && stime && ticks_per_second_ > 0) {
            out.push_back(single("process_cpu_seconds_total",
                                 "Total user and system CPU time spent in seconds.",
                                 MetricType::Counter, (*utime + *stime) / ticks_per_second_));
        }
        if (auto rss = field(24); rss && page_size_bytes_ > 0) {
            out.push_back(single("process_resident_memory_bytes", "Resident memory size in bytes.",
                                 MetricType::Gauge, *rss * page_size_bytes_));
        }
        if (auto vsize = field(23)) {
            out.push_back(single("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                 MetricType::Gauge, *vsize));
        }
        auto start = field(22);
        auto btime = boot_time_seconds(proc_stat_);
        if (start && btime && ticks_per_second_ > 0) {
            out.push_back(single("process_start_time_seconds",
                                 "Start time of the process since unix epoch in seconds.",
                                 MetricType::Gauge, *btime + *start / ticks_per_second_));
        }
    }
    if (auto fds = open_fds(proc_dir_, proc_dir_ == "/proc/self")) {
        out.push_back(single("process_open_fds", "Number of open file descriptors.",
                             MetricType::Gauge, *fds));
    }
    if (auto max = max_open_files(proc_dir_)) {
        out.push_back(single("process_max_fds", "Maximum number of open file descriptors.",
                             MetricType::Gauge, *max));
    }
    return out;
}

}  // namespace djinn::metrics
