#include "config/string_expansion.hpp"

#include <cstdlib>

namespace djinn::config {

ExpandedString expand_string(std::string_view raw, bool backslash_escapes) {
    ExpandedString out;
    out.value.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (backslash_escapes && c == '\\') {
            if (i + 1 < raw.size()) {
                out.value += raw[++i];
            }
            continue;
        }
        if (c == '$' && i + 1 < raw.size() && raw[i + 1] == '{') {
            std::size_t close = raw.find('}', i + 2);
            if (close == std::string_view::npos) {
                out.error = "\"${\" without a closing \"}\"";
                return out;
            }
            std::string name(raw.substr(i + 2, close - i - 2));
            if (name.empty()) {
                out.error = "empty variable name in \"${}\"";
                return out;
            }
            if (const char* value = std::getenv(name.c_str())) {
                out.value += value;
            } else {
                out.unset_vars.push_back(name);
            }
            i = close;
            continue;
        }
        out.value += c;
    }
    return out;
}

}  // namespace djinn::config
