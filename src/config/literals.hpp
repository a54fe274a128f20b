#pragma once
// Reading and writing the literal forms of Djinn's config language: numbers, durations
// (Go's time.ParseDuration syntax: "1m", "1h30m", "500ms", "1.5h") and sizes ("1KB" = 1024).
// Thread safety: pure functions. Failure: an empty optional and a message in *error.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace djinn::config {

// What a token that starts with a digit or '-' is, judged by its shape only (as the
// Djinn scanner does); the value is checked when it is decoded.
enum class NumberShape { integer, floating, duration, size, invalid };
NumberShape classify_number(std::string_view text);

std::optional<std::int64_t> parse_integer(std::string_view text, std::string* error);
std::optional<double> parse_float(std::string_view text, std::string* error);
// Units ns, us (µs), ms, s, m, h; several may follow each other ("1h30m45s").
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text, std::string* error);
// A whole number followed by B, KB, MB, GB or TB (powers of 1024).
std::optional<std::int64_t> parse_size(std::string_view text, std::string* error);

// The shortest form parse_duration reads back: "1m", "1h30m", "500ms", "0s".
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace djinn::config
