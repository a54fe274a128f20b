#pragma once
// Hashids (hashids.org, v1 algorithm as in github.com/speps/go-hashids v2, the library
// Djinn v1.3.0 uses) and Djinn's artifact hasher. Thread safety: Hashids is immutable after
// construction; ArtifactHasher::next is safe for concurrent use.
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.hpp"

namespace djinn {

class Hashids {
  public:
    static constexpr const char* kDefaultAlphabet =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ1234567890";
    // Djinn's crypto.Hasher alphabet (note: 0 first, unlike kDefaultAlphabet).
    static constexpr const char* kDjinnAlphabet =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    // Throws std::invalid_argument for an alphabet of fewer than 16 characters, containing
    // spaces, or containing a character twice (go-hashids refuses duplicates too). Salt and
    // alphabet are UTF-8; the algorithm runs on code points as Go ([]rune) and Python do.
    Hashids(std::string salt, std::size_t min_length,
            const std::string& alphabet = kDefaultAlphabet);
    // Throws std::invalid_argument for an empty list or a negative number (go-hashids returns
    // an error for both).
    std::string encode(const std::vector<std::int64_t>& numbers) const;

  private:
    std::string salt_;
    std::size_t min_length_;
    std::string alphabet_;
    std::string separators_;
    std::string guards_;
    // The same as code points, decoded once (encode runs once per artifact of every build).
    std::u32string salt32_;
    std::u32string alphabet32_;
    std::u32string separators32_;
    std::u32string guards32_;
    // encode shuffles the alphabet once per number, keyed by the lottery character, the salt
    // and the alphabet as shuffled so far: the alphabet before number i depends only on the
    // lottery and i, not on the numbers. For every lottery and the first kTabledSteps numbers
    // the shuffled alphabets are computed once here, as indices into alphabet32_:
    // shuffled_[(lottery * kTabledSteps + i) * |alphabet| + k] (empty for an alphabet of over
    // kMaxTabledAlphabet characters; encode then shuffles as it goes, as it does past step
    // kTabledSteps). 20 steps cover the 19 decimal digits of an int64 (ArtifactHasher).
    static constexpr std::size_t kTabledSteps = 20;
    static constexpr std::size_t kMaxTabledAlphabet = 64;
    std::vector<std::uint8_t> shuffled_;
};

// Djinn's Hasher.HashNow: hashids (salt = crypto.salt, min length 8, alphabet a-zA-Z0-9) of the
// decimal digits of the UNIX time in nanoseconds, least significant first. Unlike v1.3.0 the
// nanosecond value is forced strictly increasing per process, so hashes never repeat (the
// column is UNIQUE) even when many are made in one microsecond.
class ArtifactHasher {
  public:
    // `clock` must outlive the hasher.
    ArtifactHasher(std::string salt, const Clock& clock);
    // max(now in ns, previous + 1), CAS loop: unique per hasher across threads.
    std::string next();

  private:
    Hashids hashids_;
    const Clock& clock_;
    std::atomic<std::int64_t> last_nanos_{0};
};

}  // namespace djinn
