// Hashids must produce exactly what go-hashids v2 (Djinn v1.3.0) produces. The expectations
// below were generated once with python3-hashids 1.3.1 (Debian package python3-hashids, whose
// algorithm matches go-hashids for non-negative numbers and duplicate-free alphabets), e.g.
//   /usr/bin/python3 -c "import hashids; print(hashids.Hashids(salt='1a2b3c4d5e6f7g8h',
//       min_length=8, alphabet='a..zA..Z0..9').encode(1, 2, 3))"
// and are committed as literals so the test needs no Python.
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/hashids.hpp"

namespace djinn {
namespace {

using Numbers = std::vector<std::int64_t>;

// Decimal digits of a nanosecond UNIX time, least significant first (what HashNow hashes).
const Numbers kNanosDigits = {9, 8, 7, 6, 5, 4, 3, 2, 1, 1, 7, 0, 8, 3, 2, 4, 6, 7, 1};
const Numbers kNanosDigitsPlusOne = {0, 9, 7, 6, 5, 4, 3, 2, 1, 1, 7, 0, 8, 3, 2, 4, 6, 7, 1};
constexpr std::int64_t kMaxInt64 = 9223372036854775807;

struct Vector {
    Numbers numbers;
    const char* expected;
};

void expect_vectors(const Hashids& h, const std::vector<Vector>& vectors) {
    for (const auto& v : vectors) {
        EXPECT_EQ(h.encode(v.numbers), v.expected) << "first number " << v.numbers.front();
    }
}

TEST(HashidsTest, DjinnSaltAndAlphabetMinLength8) {
    const Hashids h("1a2b3c4d5e6f7g8h", 8, Hashids::kDjinnAlphabet);
    expect_vectors(h, {
                          {{0}, "wpZRoqkv"},
                          {{1}, "NrZ13nWb"},
                          {{12345}, "rZ1mleZW"},
                          {{kMaxInt64}, "z2yWVNgPQrxg2"},
                          {{1, 2, 3}, "8k6FLijn"},
                          {{0, 0, 0, 0}, "Roh6hGh4"},
                          {{0, 0, 0, 1}, "1yhehDhN"},
                          {kNanosDigits, "56ToHpfkU5cQIBSJi9FyFafkhwHMSxieI9U4fb"},
                          {kNanosDigitsPlusOne, "pMhLTYf5UdcaIKS6iQFAF9fPhmHOS0iYIGU4f2"},
                      });
}

TEST(HashidsTest, DefaultAlphabet) {
    const Hashids h("1a2b3c4d5e6f7g8h", 8);
    expect_vectors(h, {
                          {{0}, "65ZRrZa4"},
                          {{1}, "agq27nXp"},
                          {{12345}, "gq2Gd3nX"},
                          {{kMaxInt64}, "zPyWVNgb3rzgP"},
                          {{1, 2, 3}, "9kXFMilZ"},
                          {{0, 0, 0, 0}, "Rrhgh4h6"},
                          {{0, 0, 0, 1}, "21h3hdhM"},
                          {kNanosDigits, "6VT2HPf8UDc0IMSwijFLFYfXhdH1SXiKIQU1f7"},
                      });
}

TEST(HashidsTest, EmptySaltNoMinLength) {
    const Hashids h("", 0);
    expect_vectors(h, {
                          {{0}, "gY"},
                          {{1}, "jR"},
                          {{12345}, "j0gW"},
                          {{kMaxInt64}, "p21ZD04m8GQ42"},
                          {{1, 2, 3}, "o2fXhV"},
                          {{0, 0, 0, 0}, "gYcxcrc6"},
                          {kNanosDigits, "7nHQF0Cxugtyspi1h9flfNCycJFXiJhrsmu3Cr"},
                      });
}

TEST(HashidsTest, ReferenceSaltWithAndWithoutPadding) {
    const Hashids plain("this is my salt", 0);
    expect_vectors(plain, {
                              {{0}, "5x"},
                              {{1}, "NV"},
                              {{12345}, "NkK9"},
                              {{kMaxInt64}, "jvNx4BjM5KYjv"},
                              {{1, 2, 3}, "laHquq"},
                              {{0, 0, 0, 1}, "N4UQUYUM"},
                          });
    // Min length 20 exercises both guards and the alphabet-wrapping padding loop.
    const Hashids padded("this is my salt", 20);
    expect_vectors(padded, {
                               {{0}, "4RKP9Xzjd5xAvOElgbLe"},
                               {{1}, "9aJEDngB0NV05ev1WwPN"},
                               {{12345}, "aJEDngB0NkK9A5ev1WwP"},
                               {{kMaxInt64}, "LWMdjvNx4BjM5KYjvdrb"},
                               {{1, 2, 3}, "zNb59LGlaHquq06DmlyM"},
                               {{0, 0, 0, 0}, "ZrMa7d5xUEUKUqAejp29"},
                               {{0, 0, 0, 1}, "85mMN0N4UQUYUMdpnPZl"},
                               {kNanosDigits, "PgsPC7ToIwcrtvhEuyHJHRTmUeCghku7tWIvTv"},
                           });
}

TEST(HashidsTest, ShortAlphabetBorrowsSeparators) {
    // Only c and f are separators here: the alphabet must lend two more.
    const Hashids h("salt", 10, "0123456789abcdef");
    expect_vectors(h, {
                          {{0}, "8bd368a6e5"},
                          {{1}, "457d6e56be"},
                          {{12345}, "7d6e94d46b"},
                          {{kMaxInt64}, "58edb77da95d82547a4e"},
                          {{1, 2, 3}, "ed638ca0e6"},
                          {{0, 0, 0, 0}, "68af9f4fd6"},
                          {kNanosDigits, "54c2f41507c4fb1405c2c213fafd1b0bf40d18"},
                      });
}

TEST(HashidsTest, NonAsciiSaltWorksOnCodePoints) {
    const Hashids h("s\xC3\xA4lz \xE2\x9C\x93", 12, Hashids::kDjinnAlphabet);  // "sälz ✓"
    expect_vectors(h, {
                          {{0}, "qX8Ar3XjR5go"},
                          {{1}, "J2damlxmkpoZ"},
                          {{12345}, "2damlgJ1jkpo"},
                          {{kMaxInt64}, "ZLW7X4K18ZRKL"},
                          {{1, 2, 3}, "A5jRaipI4rdk"},
                          {{0, 0, 0, 1}, "vml2fYfPfkr7"},
                          {kNanosDigits, "0zh4SWU6CBskuzt9IoiqiOUzfzS4teIRulCAU1"},
                      });
}

// encode reads the alphabets it shuffles per number from a table built at construction for
// the first 20 numbers and alphabets of up to 64 characters, and shuffles as it goes past them.
// These cover the paths past the table; the expectations are from the implementation before the
// table (which matched python3-hashids on the vectors above), checked equal on 1.2 million
// random inputs when the table was introduced.
TEST(HashidsTest, PastTheTabledNumbersAndAlphabets) {
    const Numbers digits25 = {9, 8, 7, 6, 5, 4, 3, 2, 1, 1, 7, 0, 8,
                              3, 2, 4, 6, 7, 1, 5, 5, 0, 9, 3, 2};
    const Hashids h("1a2b3c4d5e6f7g8h", 8, Hashids::kDjinnAlphabet);
    expect_vectors(h, {
                          {digits25, "lvTDHlf3URckIASziAF0F9fWhyHzSJi7IPUjfrFLcPcBhOT7S5"},
                          {{123456789, 0, 42, kMaxInt64}, "y0dpXVfMhahmg7XylbQ9Jlm"},
                      });
    // 82 characters: no table.
    const Hashids wide("1a2b3c4d5e6f7g8h", 30,
                       "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                       "!#$%&()*+,-./:;<=>?@");
    expect_vectors(wide, {
                             {digits25, "(!TWHDf1UWcOIXSYilFEF%f2h6H.SWi%I;U$fDFzc?cGh$T0SW"},
                             {{7}, "N8y*w0G-<xD&/+kM+VY3Bz76vM)(WE"},
                         });
}

TEST(HashidsTest, RejectsBadAlphabetsAndInputs) {
    EXPECT_THROW(Hashids("s", 0, "abcdefghijklmno"), std::invalid_argument);    // 15 characters
    EXPECT_THROW(Hashids("s", 0, "abcdefghijklmno p"), std::invalid_argument);  // space
    EXPECT_THROW(Hashids("s", 0, "abcdefghijklmnopa"), std::invalid_argument);  // duplicate
    const Hashids h("s", 0);
    EXPECT_THROW((void)h.encode({}), std::invalid_argument);
    EXPECT_THROW((void)h.encode({1, -1}), std::invalid_argument);
}

TEST(HashidsTest, ArtifactHasherHashesNanosecondDigits) {
    // 1764238071123456 us = 1764238071123456000 ns; values generated as above with the Djinn
    // alphabet, salt "1a2b3c4d5e6f7g8h", min length 8, digits least significant first.
    const ManualClock clock(TimePoint(std::chrono::microseconds(1764238071123456)));
    ArtifactHasher hasher("1a2b3c4d5e6f7g8h", clock);
    EXPECT_EQ(hasher.next(), "KQhohNhPUOceIOSPiRFdFAfkhkHQSGivIDUJfB");
    // The clock did not move: the next hashes use +1 ns, +2 ns.
    EXPECT_EQ(hasher.next(), "XQF6h4hDU2cmIaSMiWFXFWf9hDHmSxiLIBUofY");
    EXPECT_EQ(hasher.next(), "xGiOhmhbUmcdI5S3iJFxFefNheHYSWiWIXUJfb");
}

TEST(HashidsTest, ArtifactHasherNeverRepeatsWithStoppedClock) {
    const ManualClock clock(TimePoint(std::chrono::microseconds(1764238071123456)));
    ArtifactHasher hasher("1a2b3c4d5e6f7g8h", clock);
    constexpr int kThreads = 4;
    constexpr int kPerThread = 500;
    std::vector<std::vector<std::string>> produced(kThreads);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kPerThread; ++i) {
                produced[t].push_back(hasher.next());
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    std::set<std::string> unique;
    for (const auto& v : produced) {
        unique.insert(v.begin(), v.end());
    }
    EXPECT_EQ(unique.size(), static_cast<std::size_t>(kThreads * kPerThread));
}

TEST(HashidsTest, ArtifactHasherFollowsClockWhenItMovesAhead) {
    ManualClock clock(TimePoint(std::chrono::microseconds(1)));
    ArtifactHasher hasher("1a2b3c4d5e6f7g8h", clock);
    const std::string first = hasher.next();  // 1000 ns
    clock.set(TimePoint(std::chrono::microseconds(1764238071123456)));
    EXPECT_EQ(hasher.next(), "KQhohNhPUOceIOSPiRFdFAfkhkHQSGivIDUJfB");
    EXPECT_EQ(first, Hashids("1a2b3c4d5e6f7g8h", 8, Hashids::kDjinnAlphabet).encode({0, 0, 0, 1}));
}

}  // namespace
}  // namespace djinn
