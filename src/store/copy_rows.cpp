#include "store/copy_rows.hpp"

#include <charconv>

#include <pqxx/tablewriter>

namespace djinn::store {

void CopyRows::sep() {
    if (row_open_) {
        data_ += '\t';
    } else if (rows_ > 0) {
        data_ += '\n';  // between rows: write_raw_line ends the last one
    }
    row_open_ = true;
}

CopyRows& CopyRows::add(std::int64_t v) {
    sep();
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    data_.append(buf, r.ptr);
    return *this;
}

CopyRows& CopyRows::add(std::optional<std::int64_t> v) {
    return v ? add(*v) : add_null();
}

CopyRows& CopyRows::add(bool v) {
    sep();
    data_ += v ? 't' : 'f';
    return *this;
}

CopyRows& CopyRows::add_text(std::string_view v) {
    sep();
    std::size_t run = 0;  // bytes since the last escaped one, appended in one go
    for (std::size_t i = 0; i < v.size(); ++i) {
        const char c = v[i];
        const char* esc = c == '\\'   ? "\\\\"
                          : c == '\t' ? "\\t"
                          : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r"
                                      : nullptr;
        if (esc == nullptr)
            continue;
        data_.append(v.data() + run, i - run);
        data_.append(esc, 2);
        run = i + 1;
    }
    data_.append(v.data() + run, v.size() - run);
    return *this;
}

CopyRows& CopyRows::add_null() {
    sep();
    data_ += "\\N";
    return *this;
}

void CopyRows::end_row() {
    row_open_ = false;
    ++rows_;
}

void copy_into(SqlRunner& sql, const char* table, const std::vector<std::string>& columns,
               const CopyRows& rows) {
    if (rows.rows() == 0)
        return;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    // libpqxx 6.4's stream_to cannot take a prepared line; tablewriter can. One call for the
    // whole table (rows separated by newlines; write_raw_line ends the last one).
    pqxx::tablewriter w(sql.tx(), table, columns.begin(), columns.end());
    w.write_raw_line(rows.data());
    w.complete();
#pragma GCC diagnostic pop
    beat(sql.progress());
}

}  // namespace djinn::store
