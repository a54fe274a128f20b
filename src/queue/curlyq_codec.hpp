#pragma once
// Byte-exact encoders for the Djinn build queue (contract section 3): the Go encoding/gob
// payload and the curlyq v0.4.0 MessagePack message. Pure functions; thread-safe.
//
// Ground truth is tests/fixtures/curlyq-messages.txt (messages the Go original wrote); the
// unit tests check every vector there byte for byte.
#include <cstdint>
#include <string>
#include <string_view>

namespace djinn::queue {

inline constexpr std::string_view kPayloadHost = "djinn-scheduler";

// gob stream of struct Payload { Host string; BuildID int64 } with its type definition first,
// as a fresh Go gob.Encoder writes it (type id 65). Like gob, a zero-valued field (empty host,
// build id 0) is left out of the value message. Never throws except std::bad_alloc.
std::string gob_payload(std::string_view host, std::int64_t build_id);

// MessagePack map {"ID": str, "Data": bin, "Attempt": int64 0} in that order, as curlyq v0.4.0
// (vmihailenco/msgpack v4) writes it: the smallest str/bin header that fits the length
// (fixstr/str8/str16/str32, bin8/bin16/bin32), Attempt always as int64 (`d3` + 8 bytes).
// Throws std::length_error when a length does not fit in 32 bits.
std::string curlyq_message(std::string_view job_id, std::string_view payload);

// A random (version 4) UUID from OpenSSL's CSPRNG, canonical lowercase 36 characters.
// Throws std::runtime_error when the CSPRNG fails (RAND_bytes != 1); never returns a weak id.
std::string new_job_id();

}  // namespace djinn::queue
