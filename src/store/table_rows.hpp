#pragma once
// One table's rows of a batch, and how they reach PostgreSQL: by COPY ... FROM STDIN (the
// set-based write: less work for the server than INSERT ... SELECT FROM unnest of array
// parameters, BENCHMARKS.md) or by that INSERT (the cron-by-cron redo of a failed batch: a
// failed COPY leaves libpqxx 6.4's transaction closed, where a failed INSERT can be rolled back
// to its savepoint). The same fields are added either way, in column order.
//
// Thread safety: none. Failure: send() lets libpqxx exceptions pass.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/copy_rows.hpp"
#include "store/pg_array.hpp"
#include "store/sql_runner.hpp"

namespace djinn::store {

class TableRows {
  public:
    enum class Via { copy, insert };

    TableRows(Via via, std::size_t columns);

    TableRows& add(std::int64_t v);
    TableRows& add(std::optional<std::int64_t> v);
    TableRows& add(bool v);
    TableRows& add_text(std::string_view v);
    TableRows& add_null();
    void end_row();
    std::size_t rows() const { return rows_; }

    // COPY `table` (`columns`) FROM STDIN, or the prepared statement `name`: `insert_sql` with
    // one array parameter per column ($1 = the first column's values, ...). Nothing without rows.
    void send(SqlRunner& sql, const char* table, const std::vector<std::string>& columns,
              const char* name, const char* insert_sql);

  private:
    PgArray& next_column();

    Via via_;
    CopyRows copy_;
    std::vector<PgArray> arrays_;
    std::size_t column_ = 0;
    std::size_t rows_ = 0;
};

}  // namespace djinn::store
