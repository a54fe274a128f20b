#include "store/table_rows.hpp"

#include "common/fatal.hpp"

namespace djinn::store {

TableRows::TableRows(Via via, std::size_t columns) : via_(via) {
    if (via_ == Via::insert)
        arrays_.resize(columns);
}

PgArray& TableRows::next_column() {
    DJINN_INVARIANT(column_ < arrays_.size(), "more fields than the table's columns");
    return arrays_[column_++];
}

TableRows& TableRows::add(std::int64_t v) {
    if (via_ == Via::copy)
        copy_.add(v);
    else
        next_column().add(v);
    return *this;
}

TableRows& TableRows::add(std::optional<std::int64_t> v) {
    if (via_ == Via::copy)
        copy_.add(v);
    else
        next_column().add(v);
    return *this;
}

TableRows& TableRows::add(bool v) {
    if (via_ == Via::copy)
        copy_.add(v);
    else
        next_column().add(v);
    return *this;
}

TableRows& TableRows::add_text(std::string_view v) {
    if (via_ == Via::copy)
        copy_.add_text(v);
    else
        next_column().add_text(v);
    return *this;
}

TableRows& TableRows::add_null() {
    if (via_ == Via::copy)
        copy_.add_null();
    else
        next_column().add_null();
    return *this;
}

void TableRows::end_row() {
    if (via_ == Via::copy) {
        copy_.end_row();
    } else {
        DJINN_INVARIANT(column_ == arrays_.size(), "a row with fewer fields than columns");
        column_ = 0;
    }
    ++rows_;
}

void TableRows::send(SqlRunner& sql, const char* table, const std::vector<std::string>& columns,
                     const char* name, const char* insert_sql) {
    if (rows_ == 0)
        return;
    if (via_ == Via::copy) {
        copy_into(sql, table, columns, copy_);
        return;
    }
    std::vector<std::string> params;
    params.reserve(arrays_.size());
    for (const PgArray& a : arrays_)
        params.push_back(a.str());
    sql.tx().conn().prepare(name, insert_sql);
    sql.tx().exec_prepared(name, pqxx::prepare::make_dynamic_params(params));
    beat(sql.progress());
}

}  // namespace djinn::store
