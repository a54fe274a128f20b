#pragma once
// Rows for COPY ... FROM STDIN in PostgreSQL's text format (tab-separated fields, \N for NULL,
// backslash escapes for backslash, tab, newline and carriage return), and the statement that
// sends them. COPY inserts a table's rows in multi-row batches without parsing array literals or
// planning an INSERT: PostgreSQL's own work per row is smaller than INSERT ... SELECT FROM
// unnest(...) of the same rows (BENCHMARKS.md).
//
// Text must be UTF-8 (the session's client_encoding is UTF8): a multi-byte sequence never holds
// one of the escaped bytes, so escaping byte by byte is exact.
//
// Thread safety: none. Failure: copy_into() lets libpqxx exceptions pass (the caller's
// PgConnection::run translates them).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/sql_runner.hpp"

namespace djinn::store {

class CopyRows {
  public:
    CopyRows& add(std::int64_t v);
    CopyRows& add(std::optional<std::int64_t> v);
    CopyRows& add(bool v);
    CopyRows& add_text(std::string_view v);
    CopyRows& add_null();
    void end_row();
    std::size_t rows() const { return rows_; }
    // The rows, separated (not ended) by newlines.
    const std::string& data() const { return data_; }

  private:
    void sep();
    std::string data_;
    std::size_t rows_ = 0;
    bool row_open_ = false;
};

// COPY <table> (<columns>) FROM STDIN with `rows`; nothing when there are none.
void copy_into(SqlRunner& sql, const char* table, const std::vector<std::string>& columns,
               const CopyRows& rows);

}  // namespace djinn::store
