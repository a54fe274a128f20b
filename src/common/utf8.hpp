#pragma once
// UTF-8 decoding with Go's rules (utf8.DecodeRuneInString): shortest form only, no surrogates,
// nothing above U+10FFFF. One place for what Go JSON escaping, yaml.v2's text check, job-name
// slugs and hashids (salt and alphabet are runes) all need. Pure; thread-safe.
#include <cstddef>
#include <string_view>

namespace djinn {

// Length (1 to 4) of the valid UTF-8 sequence at s[i], with its code point in `cp`; 0 when the
// bytes there are not valid UTF-8 (Go then reads one byte as U+FFFD). Requires i < s.size().
inline std::size_t utf8_decode(std::string_view s, std::size_t i, char32_t& cp) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    if (b0 < 0x80) {
        cp = b0;
        return 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2;
        cp = b0 & 0x1Fu;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        cp = b0 & 0x0Fu;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        cp = b0 & 0x07u;
    } else {
        return 0;
    }
    if (i + len > s.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < len; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0u) != 0x80u) {
            return 0;
        }
        cp = (cp << 6) | (b & 0x3Fu);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
        return 0;
    }
    return len;
}

}  // namespace djinn
