#pragma once
// JSON text exactly as Go's encoding/json.Marshal writes strings and map[string]string values:
// HTML-safe escaping (< > & as \u003c \u003e \u0026), U+2028/U+2029 escaped, control characters
// as \u00XX except \n \r \t, invalid UTF-8 replaced by \ufffd; maps with sorted keys, no spaces.
// Pure; thread-safe.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace djinn {

// A quoted JSON string.
std::string go_json_string(std::string_view s);

// {"k":"v",...}; `pairs` are sorted by key here (duplicate keys: the last wins, like a Go map).
std::string go_json_object(std::vector<std::pair<std::string, std::string>> pairs);

}  // namespace djinn
