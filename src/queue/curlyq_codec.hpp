#pragma once
// Byte-exact encoders for the Djinn build queue (contract section 3): the Go encoding/gob
// payload and the curlyq v0.4.0 MessagePack message. Pure functions; thread-safe.
#include <cstdint>
#include <string>
#include <string_view>

namespace djinn::queue {

inline constexpr std::string_view kPayloadHost = "djinn-scheduler";

// gob stream of struct Payload { Host string; BuildID int64 } with its type definition first.
std::string gob_payload(std::string_view host, std::int64_t build_id);

// MessagePack map {"ID": str, "Data": bin, "Attempt": int64 0} in that order, as curlyq writes.
std::string curlyq_message(std::string_view job_id, std::string_view payload);

// A random (version 4) UUID, canonical lowercase 36 characters.
std::string new_job_id();

}  // namespace djinn::queue
