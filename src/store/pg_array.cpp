#include "store/pg_array.hpp"

namespace djinn::store {

void PgArray::sep() {
    if (count_++ > 0)
        body_ += ',';
}

PgArray& PgArray::add(std::int64_t v) {
    sep();
    body_ += std::to_string(v);
    return *this;
}

PgArray& PgArray::add(std::optional<std::int64_t> v) {
    if (v)
        return add(*v);
    return add_null();
}

PgArray& PgArray::add(bool v) {
    sep();
    body_ += v ? "t" : "f";
    return *this;
}

PgArray& PgArray::add_text(std::string_view v) {
    sep();
    body_ += '"';
    // Runs without a quote or backslash are appended whole (most text has none).
    std::size_t at = 0;
    while (at < v.size()) {
        std::size_t end = at;
        while (end < v.size() && v[end] != '"' && v[end] != '\\')
            ++end;
        body_.append(v.data() + at, end - at);
        if (end == v.size())
            break;
        body_ += '\\';
        body_ += v[end];
        at = end + 1;
    }
    body_ += '"';
    return *this;
}

PgArray& PgArray::add_null() {
    sep();
    body_ += "NULL";
    return *this;
}

}  // namespace djinn::store
