#include "queue/curlyq_codec.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstddef>
#include <limits>
#include <map>
#include <stdexcept>
#include <utility>
#include <vector>

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

std::string format_uuid(const std::array<unsigned char, 16>& bytes) {
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

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

// The 16 bytes of kJobIdNamespace (a constant of ours; parsed once).
std::array<unsigned char, 16> namespace_bytes() {
    std::array<unsigned char, 16> out{};
    std::size_t n = 0;
    for (std::size_t i = 0; i + 1 < kJobIdNamespace.size() && n < out.size();) {
        if (kJobIdNamespace[i] == '-') {
            ++i;
            continue;
        }
        out[n++] = static_cast<unsigned char>(hex_value(kJobIdNamespace[i]) * 16 +
                                              hex_value(kJobIdNamespace[i + 1]));
        i += 2;
    }
    return out;
}

// A bounds-checked reader over bytes: every read fails (returns false) rather than run past the
// end, and once failed stays failed.
class ByteReader {
  public:
    explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}
    bool ok() const { return ok_; }
    bool at_end() const { return pos_ >= bytes_.size(); }
    std::size_t pos() const { return pos_; }

    bool byte(unsigned& out) {
        if (!ok_ || pos_ >= bytes_.size()) {
            return ok_ = false;
        }
        out = static_cast<unsigned char>(bytes_[pos_++]);
        return true;
    }
    bool take(std::size_t n, std::string_view& out) {
        if (!ok_ || bytes_.size() - pos_ < n) {
            return ok_ = false;
        }
        out = bytes_.substr(pos_, n);
        pos_ += n;
        return true;
    }
    bool big_endian(int n, std::uint64_t& out) {
        out = 0;
        for (int i = 0; i < n; ++i) {
            unsigned b = 0;
            if (!byte(b)) {
                return false;
            }
            out = (out << 8U) | b;
        }
        return true;
    }
    // gob: below 128 one byte; else a byte holding the negated byte count, then big-endian.
    bool gob_uint(std::uint64_t& out) {
        unsigned first = 0;
        if (!byte(first)) {
            return false;
        }
        if (first < 0x80U) {
            out = first;
            return true;
        }
        const unsigned count = 0x100U - first;
        if (count > 8) {
            return ok_ = false;
        }
        return big_endian(static_cast<int>(count), out);
    }
    bool gob_int(std::int64_t& out) {
        std::uint64_t u = 0;
        if (!gob_uint(u)) {
            return false;
        }
        const std::uint64_t magnitude = u >> 1U;
        out = (u & 1U) != 0 ? static_cast<std::int64_t>(~magnitude)
                            : static_cast<std::int64_t>(magnitude);
        return true;
    }
    bool gob_string(std::string_view& out) {
        std::uint64_t n = 0;
        return gob_uint(n) && n <= bytes_.size() && take(static_cast<std::size_t>(n), out);
    }

  private:
    std::string_view bytes_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

// gob's predeclared type ids of the field types a payload may have.
constexpr std::int64_t kGobBool = 1;
constexpr std::int64_t kGobInt = 2;
constexpr std::int64_t kGobUint = 3;
constexpr std::int64_t kGobBytes = 5;
constexpr std::int64_t kGobString = 6;

struct GobField {
    std::string name;
    std::int64_t type = 0;
};
using GobStruct = std::vector<GobField>;

// Reads a struct encoding whose fields are handled by `field(index)`; stops at the 0 delta.
template <typename OnField>
bool gob_struct(ByteReader& r, OnField&& field) {
    std::int64_t index = -1;
    for (;;) {
        std::uint64_t delta = 0;
        if (!r.gob_uint(delta)) {
            return false;
        }
        if (delta == 0) {
            return true;
        }
        if (delta > 1000) {
            return false;
        }
        index += static_cast<std::int64_t>(delta);
        if (!field(index)) {
            return false;
        }
    }
}

// CommonType { Name string; Id typeId } and fieldType { Name string; Id typeId } share a shape.
bool gob_name_and_id(ByteReader& r, std::string& name, std::int64_t& id) {
    return gob_struct(r, [&](std::int64_t index) {
        std::string_view text;
        switch (index) {
            case 0:
                if (!r.gob_string(text)) {
                    return false;
                }
                name.assign(text);
                return true;
            case 1:
                return r.gob_int(id);
            default:
                return false;
        }
    });
}

// wireType { ArrayT, SliceT, StructT *structType, MapT, ... }: only StructT is a payload.
bool gob_wire_type(ByteReader& r, std::int64_t& id, GobStruct& fields) {
    bool is_struct = false;
    const bool read = gob_struct(r, [&](std::int64_t index) {
        if (index != 2) {
            return false;
        }
        is_struct = true;
        // structType { CommonType; Field []fieldType }
        return gob_struct(r, [&](std::int64_t st) {
            if (st == 0) {
                std::string name;
                return gob_name_and_id(r, name, id);
            }
            if (st != 1) {
                return false;
            }
            std::uint64_t count = 0;
            if (!r.gob_uint(count) || count > 1000) {
                return false;
            }
            for (std::uint64_t i = 0; i < count; ++i) {
                GobField f;
                if (!gob_name_and_id(r, f.name, f.type)) {
                    return false;
                }
                fields.push_back(std::move(f));
            }
            return true;
        });
    });
    return read && is_struct;
}

std::optional<std::int64_t> gob_build_id(std::string_view stream) {
    ByteReader r(stream);
    std::map<std::int64_t, GobStruct> types;
    while (!r.at_end()) {
        std::uint64_t length = 0;
        std::string_view message;
        if (!r.gob_uint(length) || !r.take(static_cast<std::size_t>(length), message)) {
            return std::nullopt;
        }
        ByteReader m(message);
        std::int64_t type = 0;
        if (!m.gob_int(type)) {
            return std::nullopt;
        }
        if (type < 0) {
            std::int64_t id = 0;
            GobStruct fields;
            if (!gob_wire_type(m, id, fields) || id != -type || !m.at_end()) {
                return std::nullopt;
            }
            types[id] = std::move(fields);
            continue;
        }
        auto it = types.find(type);
        if (it == types.end()) {
            return std::nullopt;
        }
        const GobStruct& fields = it->second;
        std::optional<std::int64_t> build_id;
        bool has_field = false;
        const bool read = gob_struct(m, [&](std::int64_t index) {
            if (index < 0 || static_cast<std::size_t>(index) >= fields.size()) {
                return false;
            }
            const GobField& f = fields[static_cast<std::size_t>(index)];
            std::int64_t i = 0;
            std::uint64_t u = 0;
            std::string_view text;
            switch (f.type) {
                case kGobInt:
                    if (!m.gob_int(i)) {
                        return false;
                    }
                    if (f.name == "BuildID") {
                        build_id = i;
                    }
                    return true;
                case kGobBool:
                case kGobUint:
                    return m.gob_uint(u);
                case kGobBytes:
                case kGobString:
                    return m.gob_string(text);
                default:
                    return false;
            }
        });
        if (!read) {
            return std::nullopt;
        }
        for (const GobField& f : fields) {
            has_field = has_field || (f.name == "BuildID" && f.type == kGobInt);
        }
        if (!has_field) {
            return std::nullopt;
        }
        return build_id.value_or(0);  // gob leaves a zero field out
    }
    return std::nullopt;
}

// Skips one MessagePack value of the kinds a curlyq message holds, or reads a str/bin into
// `text` (when given).
bool msgpack_value(ByteReader& r, std::string_view* text) {
    unsigned tag = 0;
    if (!r.byte(tag)) {
        return false;
    }
    std::uint64_t n = 0;
    std::string_view ignored;
    std::string_view& out = text != nullptr ? *text : ignored;
    if (tag <= 0x7fU || tag >= 0xe0U || tag == 0xc0U || tag == 0xc2U || tag == 0xc3U) {
        return true;  // fixint, nil, bool
    }
    if (tag >= 0xa0U && tag <= 0xbfU) {
        return r.take(tag & 0x1fU, out);
    }
    switch (tag) {
        case 0xd9U:
        case 0xc4U:
            return r.big_endian(1, n) && r.take(static_cast<std::size_t>(n), out);
        case 0xdaU:
        case 0xc5U:
            return r.big_endian(2, n) && r.take(static_cast<std::size_t>(n), out);
        case 0xdbU:
        case 0xc6U:
            return r.big_endian(4, n) && r.take(static_cast<std::size_t>(n), out);
        case 0xccU:
        case 0xd0U:
            return r.big_endian(1, n);
        case 0xcdU:
        case 0xd1U:
            return r.big_endian(2, n);
        case 0xceU:
        case 0xd2U:
        case 0xcaU:
            return r.big_endian(4, n);
        case 0xcfU:
        case 0xd3U:
        case 0xcbU:
            return r.big_endian(8, n);
        default:
            return false;
    }
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
    return format_uuid(bytes);
}

std::string build_job_id(std::int64_t build_id) {
    static const std::array<unsigned char, 16> ns = namespace_bytes();
    std::string input(ns.begin(), ns.end());
    input += std::to_string(build_id);
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (EVP_Digest(input.data(), input.size(), digest.data(), &size, EVP_sha1(), nullptr) != 1 ||
        size < 16) {
        throw std::runtime_error("SHA-1 failed deriving a job id");
    }
    std::array<unsigned char, 16> bytes{};
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        bytes[i] = digest[i];
    }
    bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0fU) | 0x50U);  // version 5
    bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3fU) | 0x80U);  // RFC 4122 variant
    return format_uuid(bytes);
}

std::optional<std::int64_t> decode_build_id(std::string_view message) {
    ByteReader r(message);
    unsigned tag = 0;
    if (!r.byte(tag)) {
        return std::nullopt;
    }
    std::uint64_t entries = 0;
    if (tag >= 0x80U && tag <= 0x8fU) {
        entries = tag & 0x0fU;
    } else if (tag == 0xdeU) {
        r.big_endian(2, entries);
    } else if (tag == 0xdfU) {
        r.big_endian(4, entries);
    } else {
        return std::nullopt;
    }
    for (std::uint64_t i = 0; i < entries && r.ok(); ++i) {
        std::string_view key;
        if (!msgpack_value(r, &key)) {
            return std::nullopt;
        }
        std::string_view value;
        if (!msgpack_value(r, &value)) {
            return std::nullopt;
        }
        if (key == "Data") {
            return gob_build_id(value);
        }
    }
    return std::nullopt;
}

}  // namespace djinn::queue
