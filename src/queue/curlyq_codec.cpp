#include "queue/curlyq_codec.hpp"

#include <openssl/rand.h>

#include <array>
#include <cstddef>
#include <limits>
#include <stdexcept>

namespace djinn::queue {
namespace {

// The type definition message a fresh gob.Encoder writes before the first Payload value:
//   2a                        message length 42
//   ff 81                     type id -65: a definition of type 65 follows (a wireType)
//   03 01 01 07 "Payload"     wireType.StructT > CommonType.Name
//   01 ff 82 00               CommonType.Id = 65, end of CommonType
//   01 02                     structType.Field: a slice of 2 fieldTypes
//   01 04 "Host" 01 0c 00     {Name "Host", Id 6 (string)}
//   01 07 "BuildID" 01 04 00  {Name "BuildID", Id 2 (int)}
//   00 00                     end of structType, end of wireType
// It depends on nothing but the struct's shape, so it is a constant.
constexpr std::array<unsigned char, 43> kPayloadTypeDefinition = {
    0x2a, 0xff, 0x81, 0x03, 0x01, 0x01, 0x07, 'P', 'a',  'y',  'l',  'o',  'a',  'd',  0x01,
    0xff, 0x82, 0x00, 0x01, 0x02, 0x01, 0x04, 'H', 'o',  's',  't',  0x01, 0x0c, 0x00, 0x01,
    0x07, 'B',  'u',  'i',  'l',  'd',  'I',  'D', 0x01, 0x04, 0x00, 0x00, 0x00};

// gob's type id of Payload in the stream above.
constexpr std::int64_t kPayloadTypeId = 65;

void put_byte(std::string& out, unsigned value) {
    out.push_back(static_cast<char>(static_cast<unsigned char>(value & 0xffU)));
}

// gob unsigned integer: below 128 one byte; else the negated byte count, then the value's
// big-endian bytes without leading zeros.
void put_gob_uint(std::string& out, std::uint64_t value) {
    if (value < 0x80U) {
        put_byte(out, static_cast<unsigned>(value));
        return;
    }
    std::array<unsigned char, 8> bytes{};
    std::size_t count = 0;
    for (std::uint64_t rest = value; rest != 0; rest >>= 8U) {
        bytes[count++] = static_cast<unsigned char>(rest & 0xffU);
    }
    put_byte(out, 0x100U - static_cast<unsigned>(count));
    while (count > 0) {
        put_byte(out, bytes[--count]);
    }
}

// gob signed integer: zig-zag (bit 0 = sign, complemented when negative), then as unsigned.
// Computed on the unsigned representation so that INT64_MIN has no overflow.
void put_gob_int(std::string& out, std::int64_t value) {
    const auto bits = static_cast<std::uint64_t>(value);
    const std::uint64_t zigzag = value < 0 ? ((~bits) << 1U) | 1U : bits << 1U;
    put_gob_uint(out, zigzag);
}

void put_big_endian(std::string& out, std::uint64_t value, int bytes) {
    for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) {
        put_byte(out, static_cast<unsigned>((value >> static_cast<unsigned>(shift)) & 0xffU));
    }
}

void put_msgpack_str(std::string& out, std::string_view text) {
    const std::size_t size = text.size();
    if (size < 32U) {
        put_byte(out, 0xa0U | static_cast<unsigned>(size));
    } else if (size <= 0xffU) {
        put_byte(out, 0xd9U);
        put_big_endian(out, size, 1);
    } else if (size <= 0xffffU) {
        put_byte(out, 0xdaU);
        put_big_endian(out, size, 2);
    } else if (size <= std::numeric_limits<std::uint32_t>::max()) {
        put_byte(out, 0xdbU);
        put_big_endian(out, size, 4);
    } else {
        throw std::length_error("msgpack str longer than 2^32-1 bytes");
    }
    out.append(text);
}

void put_msgpack_bin(std::string& out, std::string_view data) {
    const std::size_t size = data.size();
    if (size <= 0xffU) {
        put_byte(out, 0xc4U);
        put_big_endian(out, size, 1);
    } else if (size <= 0xffffU) {
        put_byte(out, 0xc5U);
        put_big_endian(out, size, 2);
    } else if (size <= std::numeric_limits<std::uint32_t>::max()) {
        put_byte(out, 0xc6U);
        put_big_endian(out, size, 4);
    } else {
        throw std::length_error("msgpack bin longer than 2^32-1 bytes");
    }
    out.append(data);
}

}  // namespace

std::string gob_payload(std::string_view host, std::int64_t build_id) {
    // Value message body: type id, then (field delta, value) pairs for the non-zero fields,
    // then 0 to end the struct.
    std::string body;
    put_gob_int(body, kPayloadTypeId);
    unsigned delta = 1;  // from field -1 to Host (field 0)
    if (!host.empty()) {
        put_byte(body, delta);
        put_gob_uint(body, host.size());
        body.append(host);
        delta = 0;
    }
    ++delta;  // to BuildID (field 1)
    if (build_id != 0) {
        put_byte(body, delta);
        put_gob_int(body, build_id);
    }
    put_byte(body, 0);

    std::string out(kPayloadTypeDefinition.begin(), kPayloadTypeDefinition.end());
    put_gob_uint(out, body.size());
    out.append(body);
    return out;
}

std::string curlyq_message(std::string_view job_id, std::string_view payload) {
    std::string out;
    out.reserve(job_id.size() + payload.size() + 32);
    put_byte(out, 0x83U);  // fixmap of 3
    put_msgpack_str(out, "ID");
    put_msgpack_str(out, job_id);
    put_msgpack_str(out, "Data");
    put_msgpack_bin(out, payload);
    put_msgpack_str(out, "Attempt");
    put_byte(out, 0xd3U);  // int64: msgpack v4 writes Go ints at full width
    put_big_endian(out, 0, 8);
    return out;
}

std::string new_job_id() {
    std::array<unsigned char, 16> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
        throw std::runtime_error("CSPRNG failure generating a job id");
    }
    bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0fU) | 0x40U);  // version 4
    bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3fU) | 0x80U);  // RFC 4122 variant
    static constexpr std::string_view kHex = "0123456789abcdef";
    std::string id;
    id.reserve(36);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            id.push_back('-');
        }
        id.push_back(kHex[bytes[i] >> 4U]);
        id.push_back(kHex[bytes[i] & 0x0fU]);
    }
    return id;
}

}  // namespace djinn::queue
