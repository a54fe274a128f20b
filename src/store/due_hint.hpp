#pragma once
// What an idle pass learnt about the cron table, so that the next one can skip the scan.
//
// Without an index on cron.next_run, finding that nothing is due is a sequential scan of every
// cron: on a table of a million crons about half a second of a PostgreSQL core, every pass, all
// day. A pass that scanned and found nothing due keeps, beside the watermark in Redis, the
// earliest next_run it saw and the table's statistics counters read just before that scan (rows
// inserted, updated and deleted, the server's start and the database's last statistics reset). A
// later pass reads the counters again: if they are the same, no write to cron has been reported
// since the scan, so while the database clock is before that earliest next_run nothing can be
// due, and the pass does not scan.
//
// Why no due cron is missed (docs/reliability.md, "The idle pass"): the counters were read before
// the scan, so a change the scan did not see committed after that read and reaches the counters
// after it (a backend reports its counts after its transaction ends). What the counters cannot
// cover bounds the hint: it is not used when track_counts is off, nor when it is older than
// kMaxAge (a backend that keeps its counts unreported: they are reported at the latest when it
// next goes idle), so a cron is dispatched at most kMaxAge late, never lost.
//
// Thread safety: a value. Failure: parse() of anything it did not write gives nullopt.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace djinn::store {

// The cron table's statistics as one pass's probe read them (database clock, epoch µs).
struct CronStats {
    bool counting = false;  // track_counts is on
    std::string counters;   // server start, statistics reset, table oid, rows ins/upd/del
    std::int64_t db_now_us = 0;
};

class DueHint {
  public:
    static constexpr std::chrono::minutes kMaxAge{10};

    // After a scan that found nothing due: `earliest` the smallest finite next_run (epoch µs;
    // nullopt: no cron, or only +infinity), `before` what the counters said before the scan.
    static std::optional<DueHint> after_scan(const CronStats& before,
                                             std::optional<std::int64_t> earliest_us);

    // True when `now` (read after the hint) shows that nothing can be due yet.
    bool nothing_due(const CronStats& now) const;
    // True when `now` shows that the cron of the earliest next_run is due, unchanged since the
    // scan: the pass can open its cursor without looking for the earliest next_run first (at
    // midnight, the burst pass after a day of idle ones).
    bool surely_due(const CronStats& now) const;

    std::string str() const;
    static std::optional<DueHint> parse(std::string_view text);

    std::optional<std::int64_t> earliest_us() const { return earliest_us_; }
    std::int64_t scanned_us() const { return scanned_us_; }

  private:
    // The counters are the same and the hint is not too old to be trusted.
    bool unchanged(const CronStats& now) const;

    std::string counters_;
    std::optional<std::int64_t> earliest_us_;
    std::int64_t scanned_us_ = 0;
};

}  // namespace djinn::store
