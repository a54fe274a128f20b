#include "common/go_json.hpp"

#include "common/utf8.hpp"

#include <algorithm>
#include <cstdint>

namespace djinn {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_u(std::string& out, unsigned code) {
    out += "\\u";
    out += kHex[(code >> 12) & 0xF];
    out += kHex[(code >> 8) & 0xF];
    out += kHex[(code >> 4) & 0xF];
    out += kHex[code & 0xF];
}

// go_json_string's text, appended to `out`.
void append_go_json_string(std::string& out, std::string_view s) {
    out.reserve(out.size() + s.size() + 2);
    out += '"';
    std::size_t i = 0;
    while (i < s.size()) {
        char32_t cp = 0;
        std::size_t n = utf8_decode(s, i, cp);
        if (n == 0) {
            out += "\\ufffd";
            ++i;
            continue;
        }
        if (n == 1) {
            char c = s[i];
            switch (c) {
                case '"':
                    out += "\\\"";
                    break;
                case '\\':
                    out += "\\\\";
                    break;
                case '\n':
                    out += "\\n";
                    break;
                case '\r':
                    out += "\\r";
                    break;
                case '\t':
                    out += "\\t";
                    break;
                case '<':
                case '>':
                case '&':
                    append_u(out, static_cast<unsigned char>(c));
                    break;
                default:
                    if (static_cast<unsigned char>(c) < 0x20) {
                        append_u(out, static_cast<unsigned char>(c));
                    } else {
                        out += c;
                    }
            }
        } else if (cp == 0x2028 || cp == 0x2029) {
            append_u(out, cp);
        } else {
            out.append(s.substr(i, n));
        }
        i += n;
    }
    out += '"';
}

}  // namespace

std::string go_json_string(std::string_view s) {
    std::string out;
    append_go_json_string(out, s);
    return out;
}

std::string go_json_object(std::vector<std::pair<std::string, std::string>> pairs) {
    // Stable sort keeps insertion order among equal keys, so "last wins" is the last of a run.
    std::stable_sort(pairs.begin(), pairs.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string out = "{";
    bool first = true;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
        if (i + 1 < pairs.size() && pairs[i + 1].first == pairs[i].first)
            continue;
        if (!first)
            out += ',';
        first = false;
        append_go_json_string(out, pairs[i].first);
        out += ':';
        append_go_json_string(out, pairs[i].second);
    }
    out += '}';
    return out;
}

}  // namespace djinn
