#include "common/hashids.hpp"

#include "common/utf8.hpp"

#include <algorithm>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace djinn {
namespace {

constexpr std::u32string_view kSeparatorCandidates = U"cfhistuCFHISTU";
constexpr std::size_t kMinAlphabetLength = 16;

// Go converts strings to []rune and Python works on code points, so the algorithm runs on code
// points; for an ASCII salt and alphabet this is byte-for-byte the same. Invalid UTF-8 bytes
// become U+FFFD each, as Go's []rune(string) conversion does.
std::u32string decode_utf8(std::string_view s) {
    std::u32string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        char32_t cp = 0;
        const std::size_t len = utf8_decode(s, i, cp);
        if (len != 0) {
            out.push_back(cp);
            i += len;
        } else {
            out.push_back(U'\uFFFD');
            ++i;
        }
    }
    return out;
}

std::string encode_utf8(std::u32string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char32_t cp : s) {
        if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0u | (cp >> 6)));
            out.push_back(static_cast<char>(0x80u | (cp & 0x3Fu)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xE0u | (cp >> 12)));
            out.push_back(static_cast<char>(0x80u | ((cp >> 6) & 0x3Fu)));
            out.push_back(static_cast<char>(0x80u | (cp & 0x3Fu)));
        } else {
            out.push_back(static_cast<char>(0xF0u | (cp >> 18)));
            out.push_back(static_cast<char>(0x80u | ((cp >> 12) & 0x3Fu)));
            out.push_back(static_cast<char>(0x80u | ((cp >> 6) & 0x3Fu)));
            out.push_back(static_cast<char>(0x80u | (cp & 0x3Fu)));
        }
    }
    return out;
}

// The hashids "consistent shuffle" of `alphabet` keyed by `salt` (Seq: a string of code points,
// or indices into one, shuffled alike).
template <typename Seq>
void consistent_shuffle(Seq& alphabet, std::u32string_view salt) {
    if (salt.empty() || alphabet.empty()) {
        return;
    }
    std::size_t v = 0;
    std::size_t p = 0;
    for (std::size_t i = alphabet.size() - 1; i > 0; --i) {
        const auto code = static_cast<std::size_t>(salt[v]);
        p += code;
        const std::size_t j = (code + v + p) % i;
        std::swap(alphabet[i], alphabet[j]);
        v = (v + 1) % salt.size();
    }
}

// ceil(a / divisor) for the two ratios of the algorithm (3.5 and 12), in integers:
// ceil(a / 3.5) == ceil(2a / 7).
std::size_t ceil_div(std::size_t numerator, std::size_t denominator) {
    return (numerator + denominator - 1) / denominator;
}

// encode's key for the shuffle before each number: (lottery + salt + alphabet)[:|alphabet|].
void shuffle_key(std::u32string& key, char32_t lottery, std::u32string_view salt,
                 std::u32string_view alphabet) {
    key.assign(1, lottery);
    key += salt;
    key += alphabet;
    key.resize(alphabet.size());
}

}  // namespace

Hashids::Hashids(std::string salt, std::size_t min_length, const std::string& alphabet)
    : salt_(std::move(salt)), min_length_(min_length) {
    const std::u32string given = decode_utf8(alphabet);
    if (given.size() < kMinAlphabetLength) {
        throw std::invalid_argument("hashids: alphabet must contain at least 16 characters");
    }
    if (given.find(U' ') != std::u32string::npos) {
        throw std::invalid_argument("hashids: alphabet may not contain spaces");
    }
    for (std::size_t i = 0; i < given.size(); ++i) {
        if (given.find(given[i]) != i) {
            // go-hashids refuses duplicates (python-hashids drops them): refuse, as Djinn would.
            throw std::invalid_argument("hashids: duplicate character in alphabet");
        }
    }
    const std::u32string salt32 = decode_utf8(salt_);

    std::u32string seps;
    for (const char32_t c : kSeparatorCandidates) {
        if (given.find(c) != std::u32string::npos) {
            seps.push_back(c);
        }
    }
    std::u32string alpha;
    for (const char32_t c : given) {
        if (seps.find(c) == std::u32string::npos) {
            alpha.push_back(c);
        }
    }
    consistent_shuffle(seps, salt32);

    // Enough separators that |alphabet| / |seps| <= 3.5.
    const std::size_t wanted_seps = ceil_div(2 * alpha.size(), 7);
    if (seps.empty() || wanted_seps > seps.size()) {
        const std::size_t length = wanted_seps == 1 ? 2 : wanted_seps;
        if (length > seps.size()) {
            const std::size_t diff = std::min(length - seps.size(), alpha.size());
            seps += alpha.substr(0, diff);
            alpha.erase(0, diff);
        } else {
            seps.resize(length);
        }
    }
    consistent_shuffle(alpha, salt32);

    const std::size_t guard_count = ceil_div(alpha.size(), 12);
    std::u32string guards;
    if (alpha.size() < 3) {
        guards = seps.substr(0, guard_count);
        seps.erase(0, guard_count);
    } else {
        guards = alpha.substr(0, guard_count);
        alpha.erase(0, guard_count);
    }
    alphabet_ = encode_utf8(alpha);
    separators_ = encode_utf8(seps);
    guards_ = encode_utf8(guards);
    salt32_ = salt32;
    alphabet32_ = std::move(alpha);
    separators32_ = std::move(seps);
    guards32_ = std::move(guards);

    const std::size_t n = alphabet32_.size();
    if (n > kMaxTabledAlphabet) {
        return;
    }
    shuffled_.resize(n * kTabledSteps * n);
    std::u32string key;
    key.reserve(1 + salt32_.size() + n);
    std::vector<std::uint8_t> indices(n);
    for (std::size_t lottery = 0; lottery < n; ++lottery) {
        std::u32string shuffled = alphabet32_;
        for (std::size_t k = 0; k < n; ++k) {
            indices[k] = static_cast<std::uint8_t>(k);
        }
        for (std::size_t step = 0; step < kTabledSteps; ++step) {
            shuffle_key(key, alphabet32_[lottery], salt32_, shuffled);
            consistent_shuffle(shuffled, key);
            consistent_shuffle(indices, key);
            std::copy(indices.begin(), indices.end(),
                      shuffled_.begin() +
                          static_cast<std::ptrdiff_t>((lottery * kTabledSteps + step) * n));
        }
    }
}

std::string Hashids::encode(const std::vector<std::int64_t>& numbers) const {
    if (numbers.empty()) {
        throw std::invalid_argument("hashids: nothing to encode");
    }
    for (const std::int64_t n : numbers) {
        if (n < 0) {
            throw std::invalid_argument("hashids: negative numbers cannot be encoded");
        }
    }
    const std::u32string& salt = salt32_;
    const std::u32string& seps = separators32_;
    const std::u32string& guards = guards32_;
    const std::size_t n = alphabet32_.size();

    std::int64_t numbers_hash = 0;
    for (std::size_t i = 0; i < numbers.size(); ++i) {
        numbers_hash += numbers[i] % static_cast<std::int64_t>(i + 100);
    }
    const auto alpha_size = static_cast<std::int64_t>(n);
    const auto lottery_index = static_cast<std::size_t>(numbers_hash % alpha_size);
    const char32_t lottery = alphabet32_[lottery_index];
    std::u32string result;
    result.reserve(1 + 2 * numbers.size() + min_length_);
    result.push_back(lottery);

    // The alphabet as shuffled so far: from the table (indices into alphabet32_) while it
    // lasts, then as code points.
    const std::uint8_t* table =
        shuffled_.empty() ? nullptr : shuffled_.data() + lottery_index * kTabledSteps * n;
    const std::uint8_t* tabled = nullptr;
    std::u32string alphabet;
    if (table == nullptr) {
        alphabet = alphabet32_;
    }
    const auto untable = [&] {
        if (tabled != nullptr) {
            alphabet.resize(n);
            for (std::size_t k = 0; k < n; ++k) {
                alphabet[k] = alphabet32_[tabled[k]];
            }
            tabled = nullptr;
        }
    };
    std::u32string number_key;
    for (std::size_t i = 0; i < numbers.size(); ++i) {
        if (table != nullptr && i < kTabledSteps) {
            tabled = table + i * n;
        } else {
            untable();
            shuffle_key(number_key, lottery, salt, alphabet);
            consistent_shuffle(alphabet, number_key);
        }
        // Base-|alphabet| digits of the number, most significant first.
        const std::size_t first = result.size();
        std::int64_t input = numbers[i];
        do {
            const auto digit = static_cast<std::size_t>(input % alpha_size);
            result.push_back(tabled != nullptr ? alphabet32_[tabled[digit]] : alphabet[digit]);
            input /= alpha_size;
        } while (input != 0);
        std::reverse(result.begin() + static_cast<std::ptrdiff_t>(first), result.end());
        if (i + 1 < numbers.size()) {
            const std::int64_t m = numbers[i] % (static_cast<std::int64_t>(result[first]) +
                                                 static_cast<std::int64_t>(i));
            result.push_back(seps[static_cast<std::size_t>(m) % seps.size()]);
        }
    }
    untable();

    if (result.size() < min_length_) {
        const auto guard_count = static_cast<std::int64_t>(guards.size());
        auto index = (numbers_hash + static_cast<std::int64_t>(result[0])) % guard_count;
        result.insert(result.begin(), guards[static_cast<std::size_t>(index)]);
        if (result.size() < min_length_) {
            index = (numbers_hash + static_cast<std::int64_t>(result[2])) % guard_count;
            result.push_back(guards[static_cast<std::size_t>(index)]);
        }
    }

    const std::size_t half = alphabet.size() / 2;
    while (result.size() < min_length_) {
        const std::u32string key = alphabet;
        consistent_shuffle(alphabet, key);
        result = alphabet.substr(half) + result + alphabet.substr(0, half);
        if (result.size() > min_length_) {
            const std::size_t excess = result.size() - min_length_;
            result = result.substr(excess / 2, min_length_);
        }
    }
    return encode_utf8(result);
}

ArtifactHasher::ArtifactHasher(std::string salt, const Clock& clock)
    : hashids_(std::move(salt), 8, Hashids::kDjinnAlphabet), clock_(clock) {}

std::string ArtifactHasher::next() {
    const auto now_us = clock_.now().time_since_epoch().count();
    const std::int64_t now_ns = now_us * 1000;
    std::int64_t last = last_nanos_.load();
    std::int64_t chosen = 0;
    do {
        chosen = std::max(now_ns, last + 1);
    } while (!last_nanos_.compare_exchange_weak(last, chosen));

    std::vector<std::int64_t> digits;
    for (std::int64_t rest = chosen; rest != 0; rest /= 10) {
        digits.push_back(rest % 10);
    }
    return hashids_.encode(digits);
}

}  // namespace djinn
