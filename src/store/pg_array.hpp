#pragma once
// Builds PostgreSQL array literals ('{1,NULL,"a\"b"}') so that a whole batch travels as one
// parameter per column and is expanded with unnest(): one statement per table per batch.
// Not thread-safe; cheap to copy.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace djinn::store {

class PgArray {
  public:
    PgArray& add(std::int64_t v);
    PgArray& add(std::optional<std::int64_t> v);
    PgArray& add(bool v);
    PgArray& add_text(std::string_view v);
    PgArray& add_null();
    std::size_t size() const { return count_; }
    // The literal, e.g. "{1,2}"; "{}" when empty.
    std::string str() const;
    // The literal without copying it (a batch's literals are up to megabytes): leaves the array
    // spent, size() still counting what was added; nothing may be added or taken after.
    std::string take() &&;

  private:
    void sep();
    std::string literal_ = "{";  // without the closing brace
    std::size_t count_ = 0;
};

}  // namespace djinn::store
