#pragma once
// Byte-exact encoders for the Djinn build queue (contract section 3): the Go encoding/gob
// payload and the curlyq v0.4.0 MessagePack message. Pure functions; thread-safe.
//
// Ground truth is tests/fixtures/curlyq-messages.txt (messages the Go original wrote); the
// unit tests check every vector there byte for byte.
#include <cstdint>
#include <optional>
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

// The job id of a build: the name-based (version 5, SHA-1) UUID of the build id's decimal text
// in kJobIdNamespace, canonical lowercase 36 characters. curlyq only needs a unique string as the
// field of `<queue>:data` (and djinn-worker only logs it), so a job id derived from the build id
// makes `HSETNX <queue>:data <id>` idempotent per build by itself, with or without any marker.
// Throws std::runtime_error only if OpenSSL's SHA-1 fails.
inline constexpr std::string_view kJobIdNamespace = "80004c3a-e102-4db9-b2ec-6097100475db";
std::string build_job_id(std::int64_t build_id);

// The BuildID of a curlyq message whoever wrote it (the original scheduler, the Djinn server, this
// one): the MessagePack map's "Data" (bin or str), decoded as a gob stream whose type definition
// is read (not assumed), so that a payload with other field names, other field order or an
// omitted zero field decodes by name. nullopt when the bytes are not such a message or the struct
// has no int field named BuildID (a zero BuildID, omitted by gob, decodes as 0). Never throws but
// std::bad_alloc; reads at most the bytes given.
std::optional<std::int64_t> decode_build_id(std::string_view message);

}  // namespace djinn::queue
