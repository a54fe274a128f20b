#pragma once
// Standard Prometheus process metrics for the running process, read from /proc on every scrape:
//   process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
//   process_start_time_seconds, process_open_fds, process_max_fds.
//
// Thread safety: Collect() may run concurrently from any number of threads (it keeps no state
// besides the constant clock-tick and page sizes).
// Failure: never throws; a /proc file that cannot be read leaves its metrics out of the scrape.
#include <filesystem>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

namespace djinn::metrics {

class ProcessCollector final : public prometheus::Collectable {
  public:
    // `proc_dir` is the /proc directory of the process to describe (tests may point elsewhere).
    explicit ProcessCollector(std::filesystem::path proc_dir = "/proc/self",
                              std::filesystem::path proc_stat = "/proc/stat");

    std::vector<prometheus::MetricFamily> Collect() const override;

  private:
    std::filesystem::path proc_dir_;
    std::filesystem::path proc_stat_;
    double ticks_per_second_;
    double page_size_bytes_;
};

}  // namespace djinn::metrics
