#pragma once
// The due crons of a pass, read in one scan. Without an index on cron.next_run (Djinn has none)
// every due query is a sequential scan of the whole table: once per batch, that is quadratic
// over a burst. So a pass declares a cursor over the ids of the crons due now (WITH HOLD: the
// server materializes it when the declaring transaction commits, and it survives the batch
// transactions) and fetches the next batch's ids from it, one batch ahead. Once it is read to its
// end, the pass goes on with a sweep (a plain query, excluding what the pass already handled)
// until nothing is due: that finds the crons that fell due during the pass, and those a batch
// left due.
//
// A FETCH is not undone by a rollback: the ids of a failed batch are found again by the sweep.
// The cursor belongs to the session that declared it; open() closes one left by an earlier pass
// that ended early.
//
// The idle probe: see due_hint.hpp for how a pass that finds nothing due lets the next one skip
// the scan.
//
// Thread safety: none (one session, one thread). Failure: libpqxx exceptions pass through.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/batch_types.hpp"
#include "store/due_hint.hpp"
#include "store/sql_runner.hpp"

namespace djinn::store {

class DueCursor {
  public:
    struct Opened {
        bool due = false;           // the cursor is open
        bool scan_skipped = false;  // `previous` showed that nothing can be due: not scanned
        // Nothing was due: what the next pass may skip the scan with (none: track_counts off).
        std::optional<DueHint> hint;
    };
    // Starts a pass's scan: `due` false (and no cursor) when nothing is due. With `hints`, the
    // probe reads the cron table's statistics first, skips the scan when `previous` (may be
    // null) vouches for it, and otherwise returns a hint for the next pass when nothing is due.
    Opened open(SqlRunner& sql, const DueHint* previous = nullptr, bool hints = false);

    // The next up to `limit` due crons (ids and manifests, read without a lock) not in `exclude`:
    // from the cursor while it lasts, then from the sweep. Empty: nothing (else) is due.
    std::vector<Candidate> next(SqlRunner& sql, std::int64_t limit,
                                const std::vector<std::int64_t>& exclude);

    // Forgets the pass (the session is gone or the pass ended).
    void reset() { state_ = State::none; }

    bool scanning() const { return state_ == State::open; }

  private:
    enum class State { none, open, swept };
    State state_ = State::none;
};

}  // namespace djinn::store
