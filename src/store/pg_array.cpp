#include "store/pg_array.hpp"

#include <charconv>
#include <cstring>

namespace djinn::store {

namespace {

// The first `c` in [from, end), or end.
const char* find(const char* from, const char* end, char c) {
    if (from == end)
        return end;
    const void* at = std::memchr(from, c, static_cast<std::size_t>(end - from));
    return at != nullptr ? static_cast<const char*>(at) : end;
}

}  // namespace

std::string PgArray::str() const {
    std::string out;
    out.reserve(literal_.size() + 1);
    out += literal_;
    out += '}';
    return out;
}

std::string PgArray::take() && {
    literal_ += '}';
    return std::move(literal_);
}

void PgArray::sep() {
    if (count_++ > 0)
        literal_ += ',';
}

PgArray& PgArray::add(std::int64_t v) {
    sep();
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    literal_.append(buf, r.ptr);
    return *this;
}

PgArray& PgArray::add(std::optional<std::int64_t> v) {
    if (v)
        return add(*v);
    return add_null();
}

PgArray& PgArray::add(bool v) {
    sep();
    literal_ += v ? 't' : 'f';
    return *this;
}

PgArray& PgArray::add_text(std::string_view v) {
    sep();
    literal_ += '"';
    // Runs between quotes and backslashes are appended whole (most text has none); the next of
    // each is found with memchr and looked for again only once passed.
    const char* at = v.data();
    const char* const end = at + v.size();
    const char* quote = find(at, end, '"');
    const char* backslash = find(at, end, '\\');
    while (true) {
        const char* special = quote < backslash ? quote : backslash;
        literal_.append(at, static_cast<std::size_t>(special - at));
        if (special == end)
            break;
        literal_ += '\\';
        literal_ += *special;
        at = special + 1;
        if (special == quote)
            quote = find(at, end, '"');
        else
            backslash = find(at, end, '\\');
    }
    literal_ += '"';
    return *this;
}

PgArray& PgArray::add_null() {
    sep();
    literal_ += "NULL";
    return *this;
}

}  // namespace djinn::store
