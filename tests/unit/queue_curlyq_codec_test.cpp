// The queue encoders against the messages the Go original wrote (tests/fixtures), and against
// small decoders written here from the gob and MessagePack specifications, independently of the
// encoders.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "queue/curlyq_codec.hpp"

namespace djinn::queue {
namespace {

std::string from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) {
        throw std::invalid_argument("odd hex length");
    }
    std::string out;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    }
    return out;
}

std::string to_hex(std::string_view bytes) {
    static constexpr std::string_view kDigits = "0123456789abcdef";
    std::string out;
    for (const char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        out.push_back(kDigits[b >> 4U]);
        out.push_back(kDigits[b & 0x0fU]);
    }
    return out;
}

struct FixtureMessage {
    std::int64_t build_id = 0;
    std::string job_id;
    std::string message;
    std::string payload;
};

std::vector<FixtureMessage> load_fixtures() {
    std::ifstream in(DJINN_FIXTURES_DIR "/curlyq-messages.txt");
    if (!in) {
        throw std::runtime_error("cannot open " DJINN_FIXTURES_DIR "/curlyq-messages.txt");
    }
    std::vector<FixtureMessage> out;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') {
            continue;
        }
        std::istringstream fields(line);
        FixtureMessage m;
        std::string message_hex;
        std::string payload_hex;
        if (!(fields >> m.build_id >> m.job_id >> message_hex >> payload_hex)) {
            throw std::runtime_error("bad fixture line: " + line);
        }
        m.message = from_hex(message_hex);
        m.payload = from_hex(payload_hex);
        out.push_back(std::move(m));
    }
    return out;
}

// ---- A minimal gob decoder, from https://pkg.go.dev/encoding/gob ("Encoding details"). ----

class GobReader {
  public:
    explicit GobReader(std::string_view bytes) : bytes_(bytes) {}
    bool done() const { return pos_ == bytes_.size(); }
    std::uint8_t byte() {
        if (pos_ >= bytes_.size()) {
            throw std::runtime_error("gob: truncated");
        }
        return static_cast<std::uint8_t>(bytes_[pos_++]);
    }
    std::uint64_t uint() {
        const std::uint8_t first = byte();
        if (first < 0x80) {
            return first;
        }
        const int count = 256 - first;
        if (count > 8) {
            throw std::runtime_error("gob: uint longer than 8 bytes");
        }
        std::uint64_t value = 0;
        for (int i = 0; i < count; ++i) {
            value = (value << 8U) | byte();
        }
        return value;
    }
    std::int64_t integer() {
        const std::uint64_t u = uint();
        // Bit 0 is the sign; the rest is the value, complemented when negative.
        const std::uint64_t magnitude = u >> 1U;
        return (u & 1U) != 0 ? static_cast<std::int64_t>(~magnitude)
                             : static_cast<std::int64_t>(magnitude);
    }
    std::string string() {
        const std::uint64_t size = uint();
        if (size > bytes_.size() - pos_) {
            throw std::runtime_error("gob: string past the end");
        }
        std::string out(bytes_.substr(pos_, size));
        pos_ += size;
        return out;
    }
    std::string_view take(std::uint64_t size) {
        if (size > bytes_.size() - pos_) {
            throw std::runtime_error("gob: message past the end");
        }
        const std::string_view out = bytes_.substr(pos_, size);
        pos_ += size;
        return out;
    }

  private:
    std::string_view bytes_;
    std::size_t pos_ = 0;
};

struct GobField {
    std::string name;
    std::int64_t type_id = 0;
};

struct GobStruct {
    std::string name;
    std::int64_t id = 0;
    std::vector<GobField> fields;
};

// wireType { ArrayT; SliceT; StructT *structType; MapT; ... } with structType { CommonType;
// Field []fieldType }, CommonType { Name string; Id typeId }, fieldType { Name string; Id }.
GobStruct decode_struct_definition(GobReader& in) {
    GobStruct def;
    if (in.uint() != 3) {
        throw std::runtime_error("gob: type definition is not a struct");
    }
    int struct_field = -1;
    for (std::uint64_t delta = in.uint(); delta != 0; delta = in.uint()) {
        struct_field += static_cast<int>(delta);
        if (struct_field == 0) {  // CommonType
            int common_field = -1;
            for (std::uint64_t d = in.uint(); d != 0; d = in.uint()) {
                common_field += static_cast<int>(d);
                if (common_field == 0) {
                    def.name = in.string();
                } else if (common_field == 1) {
                    def.id = in.integer();
                } else {
                    throw std::runtime_error("gob: unknown CommonType field");
                }
            }
        } else if (struct_field == 1) {  // Field []fieldType
            const std::uint64_t count = in.uint();
            for (std::uint64_t i = 0; i < count; ++i) {
                GobField field;
                int field_field = -1;
                for (std::uint64_t d = in.uint(); d != 0; d = in.uint()) {
                    field_field += static_cast<int>(d);
                    if (field_field == 0) {
                        field.name = in.string();
                    } else if (field_field == 1) {
                        field.type_id = in.integer();
                    } else {
                        throw std::runtime_error("gob: unknown fieldType field");
                    }
                }
                def.fields.push_back(field);
            }
        } else {
            throw std::runtime_error("gob: unknown structType field");
        }
    }
    if (in.uint() != 0) {  // end of wireType
        throw std::runtime_error("gob: wireType not terminated");
    }
    return def;
}

struct DecodedPayload {
    GobStruct type;
    std::string host;
    std::int64_t build_id = 0;
    int messages = 0;
};

DecodedPayload decode_payload(std::string_view stream) {
    constexpr std::int64_t kStringTypeId = 6;
    constexpr std::int64_t kIntTypeId = 2;
    DecodedPayload out;
    GobReader messages(stream);
    bool have_value = false;
    while (!messages.done()) {
        GobReader message(messages.take(messages.uint()));
        ++out.messages;
        const std::int64_t type_id = message.integer();
        if (type_id < 0) {
            out.type = decode_struct_definition(message);
            if (out.type.id != -type_id) {
                throw std::runtime_error("gob: definition id mismatch");
            }
        } else {
            if (type_id != out.type.id || out.type.id == 0) {
                throw std::runtime_error("gob: value of an undefined type");
            }
            std::size_t field = std::numeric_limits<std::size_t>::max();  // -1
            for (std::uint64_t delta = message.uint(); delta != 0; delta = message.uint()) {
                field += delta;
                if (field >= out.type.fields.size()) {
                    throw std::runtime_error("gob: field out of range");
                }
                const GobField& f = out.type.fields[field];
                if (f.type_id == kStringTypeId) {
                    out.host = message.string();
                } else if (f.type_id == kIntTypeId) {
                    out.build_id = message.integer();
                } else {
                    throw std::runtime_error("gob: unexpected field type");
                }
            }
            have_value = true;
        }
        if (!message.done()) {
            throw std::runtime_error("gob: trailing bytes in a message");
        }
    }
    if (!have_value) {
        throw std::runtime_error("gob: no value message");
    }
    return out;
}

// ---- A minimal MessagePack decoder for the message's shape (https://msgpack.org spec). ----

struct DecodedMessage {
    std::vector<std::string> keys;
    std::map<std::string, std::string> strings;  // str values
    std::map<std::string, std::string> bins;     // bin values
    std::map<std::string, std::int64_t> ints;
};

class MsgpackReader {
  public:
    explicit MsgpackReader(std::string_view bytes) : bytes_(bytes) {}
    bool done() const { return pos_ == bytes_.size(); }
    std::uint8_t byte() {
        if (pos_ >= bytes_.size()) {
            throw std::runtime_error("msgpack: truncated");
        }
        return static_cast<std::uint8_t>(bytes_[pos_++]);
    }
    std::uint64_t big_endian(int count) {
        std::uint64_t v = 0;
        for (int i = 0; i < count; ++i) {
            v = (v << 8U) | byte();
        }
        return v;
    }
    std::string take(std::uint64_t size) {
        if (size > bytes_.size() - pos_) {
            throw std::runtime_error("msgpack: past the end");
        }
        std::string out(bytes_.substr(pos_, size));
        pos_ += size;
        return out;
    }

  private:
    std::string_view bytes_;
    std::size_t pos_ = 0;
};

DecodedMessage decode_message(std::string_view bytes) {
    MsgpackReader in(bytes);
    const std::uint8_t head = in.byte();
    if ((head & 0xf0U) != 0x80U) {
        throw std::runtime_error("msgpack: not a fixmap");
    }
    DecodedMessage out;
    for (unsigned i = 0; i < (head & 0x0fU); ++i) {
        const std::uint8_t key_head = in.byte();
        if ((key_head & 0xe0U) != 0xa0U) {
            throw std::runtime_error("msgpack: key is not a fixstr");
        }
        const std::string key = in.take(key_head & 0x1fU);
        out.keys.push_back(key);
        const std::uint8_t tag = in.byte();
        if ((tag & 0xe0U) == 0xa0U) {
            out.strings[key] = in.take(tag & 0x1fU);
        } else if (tag == 0xd9 || tag == 0xda || tag == 0xdb) {
            out.strings[key] = in.take(in.big_endian(1 << (tag - 0xd9)));
        } else if (tag == 0xc4 || tag == 0xc5 || tag == 0xc6) {
            out.bins[key] = in.take(in.big_endian(1 << (tag - 0xc4)));
        } else if (tag == 0xd3) {
            out.ints[key] = static_cast<std::int64_t>(in.big_endian(8));
        } else if (tag < 0x80) {
            out.ints[key] = tag;
        } else {
            throw std::runtime_error("msgpack: unexpected tag");
        }
    }
    if (!in.done()) {
        throw std::runtime_error("msgpack: trailing bytes");
    }
    return out;
}

std::string payload_int_bytes(std::int64_t build_id) {
    // The bytes of the BuildID field's value: the payload minus the constant 43-byte type
    // definition, the length, type id, Host field, and the trailing field delta/terminator.
    const std::string payload = gob_payload(kPayloadHost, build_id);
    const std::size_t host_end = payload.find(std::string(kPayloadHost)) + kPayloadHost.size();
    return payload.substr(host_end + 1, payload.size() - host_end - 2);  // skip delta and 00
}

// ---- Tests ----

TEST(QueueGobPayload, ContractVectorForBuildId1) {
    const std::string expected = from_hex(
        "2aff81030101075061796c6f616401ff820001020104486f7374010c00"
        "01074275696c6449440104000000"
        "16ff82010f646a696e6e2d7363686564756c6572010200");
    ASSERT_EQ(expected.size(), 66U);
    EXPECT_EQ(to_hex(gob_payload(kPayloadHost, 1)), to_hex(expected));
}

TEST(QueueGobPayload, EqualsEveryFixturePayload) {
    const auto fixtures = load_fixtures();
    ASSERT_GE(fixtures.size(), 11U);
    for (const auto& f : fixtures) {
        SCOPED_TRACE("build id " + std::to_string(f.build_id));
        EXPECT_EQ(to_hex(gob_payload(kPayloadHost, f.build_id)), to_hex(f.payload));
        const DecodedPayload decoded = decode_payload(f.payload);
        EXPECT_EQ(decoded.host, kPayloadHost);
        EXPECT_EQ(decoded.build_id, f.build_id);
    }
}

TEST(QueueGobPayload, FixtureDecoderSeesGoTypeDefinition) {
    const DecodedPayload decoded = decode_payload(gob_payload(kPayloadHost, 1000));
    EXPECT_EQ(decoded.messages, 2);
    EXPECT_EQ(decoded.type.name, "Payload");
    EXPECT_EQ(decoded.type.id, 65);
    ASSERT_EQ(decoded.type.fields.size(), 2U);
    EXPECT_EQ(decoded.type.fields[0].name, "Host");
    EXPECT_EQ(decoded.type.fields[0].type_id, 6);
    EXPECT_EQ(decoded.type.fields[1].name, "BuildID");
    EXPECT_EQ(decoded.type.fields[1].type_id, 2);
}

TEST(QueueGobPayload, IntegerEncodingAtBoundaries) {
    EXPECT_EQ(to_hex(payload_int_bytes(1000)), "fe07d0");  // contract example
    EXPECT_EQ(to_hex(payload_int_bytes(-1)), "01");
    EXPECT_EQ(to_hex(payload_int_bytes(-64)), "7f");
    EXPECT_EQ(to_hex(payload_int_bytes(-65)), "ff81");
    EXPECT_EQ(to_hex(payload_int_bytes(std::int64_t{1} << 31)), "fb0100000000");
    EXPECT_EQ(to_hex(payload_int_bytes(std::int64_t{1} << 53)), "f940000000000000");
    EXPECT_EQ(to_hex(payload_int_bytes(std::numeric_limits<std::int64_t>::max())),
              "f8fffffffffffffffe");
    EXPECT_EQ(to_hex(payload_int_bytes(std::numeric_limits<std::int64_t>::min())),
              "f8ffffffffffffffff");
}

TEST(QueueGobPayload, MessageLengthGrowsWithTheValue) {
    // Value message length: 0x16 for one-byte ids, +1 per extra byte; INT64 extremes take 9.
    EXPECT_EQ(static_cast<unsigned char>(gob_payload(kPayloadHost, 1)[43]), 0x16);
    EXPECT_EQ(static_cast<unsigned char>(gob_payload(kPayloadHost, 1000)[43]), 0x18);
    EXPECT_EQ(static_cast<unsigned char>(
                  gob_payload(kPayloadHost, std::numeric_limits<std::int64_t>::min())[43]),
              0x1e);
    EXPECT_EQ(gob_payload(kPayloadHost, std::numeric_limits<std::int64_t>::max()).size(), 74U);
}

TEST(QueueGobPayload, RoundTripsEveryKindOfInt64) {
    const std::vector<std::int64_t> ids = {
        1,
        -1,
        63,
        64,
        -64,
        -65,
        127,
        128,
        255,
        256,
        65535,
        65536,
        (std::int64_t{1} << 31) - 1,
        std::int64_t{1} << 31,
        -(std::int64_t{1} << 31),
        std::int64_t{1} << 32,
        (std::int64_t{1} << 53) - 1,
        std::int64_t{1} << 53,
        (std::int64_t{1} << 53) + 1,
        std::numeric_limits<std::int64_t>::max(),
        std::numeric_limits<std::int64_t>::max() - 1,
        std::numeric_limits<std::int64_t>::min(),
        std::numeric_limits<std::int64_t>::min() + 1,
    };
    for (const std::int64_t id : ids) {
        SCOPED_TRACE("build id " + std::to_string(id));
        const DecodedPayload decoded = decode_payload(gob_payload(kPayloadHost, id));
        EXPECT_EQ(decoded.host, kPayloadHost);
        EXPECT_EQ(decoded.build_id, id);
    }
}

TEST(QueueGobPayload, ZeroFieldsAreOmittedLikeGob) {
    // gob sends no zero-valued field: build id 0 leaves just Host; an empty Host shifts the
    // BuildID field delta to 2.
    EXPECT_EQ(to_hex(gob_payload(kPayloadHost, 0).substr(43)),
              "14ff82010f646a696e6e2d7363686564756c657200");
    EXPECT_EQ(to_hex(gob_payload("", 1).substr(43)), "05ff82020200");
    const DecodedPayload zero = decode_payload(gob_payload(kPayloadHost, 0));
    EXPECT_EQ(zero.build_id, 0);
    EXPECT_EQ(decode_payload(gob_payload("", 7)).build_id, 7);
}

TEST(QueueGobPayload, LongHostUsesMultiByteLengths) {
    const std::string host(300, 'h');
    const std::string payload = gob_payload(host, 42);
    // Message length 2+1+3+300+1+1+1 = 309 → fe 01 35; string length 300 → fe 01 2c.
    EXPECT_EQ(to_hex(payload.substr(43, 9)), "fe0135ff8201fe012c");
    const DecodedPayload decoded = decode_payload(payload);
    EXPECT_EQ(decoded.host, host);
    EXPECT_EQ(decoded.build_id, 42);
}

TEST(QueueCurlyqMessage, EqualsEveryFixtureMessage) {
    for (const auto& f : load_fixtures()) {
        SCOPED_TRACE("build id " + std::to_string(f.build_id));
        EXPECT_EQ(to_hex(curlyq_message(f.job_id, gob_payload(kPayloadHost, f.build_id))),
                  to_hex(f.message));
    }
}

TEST(QueueCurlyqMessage, FreshJobIdIsTheOnlyDifference) {
    for (const auto& f : load_fixtures()) {
        SCOPED_TRACE("build id " + std::to_string(f.build_id));
        const std::string job_id = new_job_id();
        std::string message = curlyq_message(job_id, gob_payload(kPayloadHost, f.build_id));
        const std::size_t at = message.find(job_id);
        ASSERT_NE(at, std::string::npos);
        message.replace(at, job_id.size(), f.job_id);
        EXPECT_EQ(to_hex(message), to_hex(f.message));
    }
}

TEST(QueueCurlyqMessage, DecodesToTheThreeFieldsInOrder) {
    const std::string job_id = new_job_id();
    const std::string payload = gob_payload(kPayloadHost, 8192);
    const DecodedMessage decoded = decode_message(curlyq_message(job_id, payload));
    EXPECT_EQ(decoded.keys, (std::vector<std::string>{"ID", "Data", "Attempt"}));
    EXPECT_EQ(decoded.strings.at("ID"), job_id);
    EXPECT_EQ(decoded.bins.at("Data"), payload);
    EXPECT_EQ(decoded.ints.at("Attempt"), 0);
}

TEST(QueueCurlyqMessage, StrHeaderIsTheSmallestThatFits) {
    const std::vector<std::pair<std::size_t, std::string>> cases = {
        {0, "a0"},       {31, "bf"},        {32, "d920"},          {255, "d9ff"},
        {256, "da0100"}, {65535, "daffff"}, {65536, "db00010000"},
    };
    for (const auto& [size, header] : cases) {
        SCOPED_TRACE("id length " + std::to_string(size));
        const std::string id(size, 'x');
        const std::string message = curlyq_message(id, "p");
        // 83 a2 "ID" then the header.
        EXPECT_EQ(to_hex(message.substr(4, header.size() / 2)), header);
        EXPECT_EQ(decode_message(message).strings.at("ID"), id);
    }
}

TEST(QueueCurlyqMessage, BinHeaderIsTheSmallestThatFits) {
    const std::vector<std::pair<std::size_t, std::string>> cases = {
        {0, "c400"}, {255, "c4ff"}, {256, "c50100"}, {65535, "c5ffff"}, {65536, "c600010000"},
    };
    for (const auto& [size, header] : cases) {
        SCOPED_TRACE("payload length " + std::to_string(size));
        const std::string payload(size, '\x01');
        const std::string message = curlyq_message("id", payload);
        // 83 a2 "ID" a2 "id" a4 "Data" then the header.
        EXPECT_EQ(to_hex(message.substr(12, header.size() / 2)), header);
        const DecodedMessage decoded = decode_message(message);
        EXPECT_EQ(decoded.bins.at("Data"), payload);
        EXPECT_EQ(decoded.ints.at("Attempt"), 0);
    }
}

// xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx, lowercase hex. (No std::regex: GCC 12 warns
// inside <regex> under the sanitizers, and warnings are errors.)
bool is_canonical_uuid_v4(const std::string& id) {
    if (id.size() != 36) {
        return false;
    }
    for (std::size_t i = 0; i < id.size(); ++i) {
        const char c = id[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') {
                return false;
            }
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return id[14] == '4' && std::string_view("89ab").find(id[19]) != std::string_view::npos;
}

TEST(QueueJobId, IsCanonicalLowercaseVersion4) {
    EXPECT_TRUE(is_canonical_uuid_v4("7e4e28e5-da64-4b30-9711-1987f29151c1"));  // fixture's
    EXPECT_FALSE(is_canonical_uuid_v4("7E4E28E5-DA64-4B30-9711-1987F29151C1"));
    EXPECT_FALSE(is_canonical_uuid_v4("7e4e28e5-da64-1b30-9711-1987f29151c1"));
    for (int i = 0; i < 1000; ++i) {
        const std::string id = new_job_id();
        ASSERT_TRUE(is_canonical_uuid_v4(id)) << id;
    }
}

TEST(QueueJobId, IsUnique) {
    std::set<std::string> seen;
    for (int i = 0; i < 20000; ++i) {
        ASSERT_TRUE(seen.insert(new_job_id()).second);
    }
}

TEST(QueueJobId, UsesEveryRandomNibble) {
    // Weak generators show up as constant positions; every random nibble must vary.
    std::vector<std::set<char>> per_position(36);
    for (int i = 0; i < 500; ++i) {
        const std::string id = new_job_id();
        for (std::size_t p = 0; p < id.size(); ++p) {
            per_position[p].insert(id[p]);
        }
    }
    for (std::size_t p = 0; p < 36; ++p) {
        SCOPED_TRACE("position " + std::to_string(p));
        if (p == 8 || p == 13 || p == 18 || p == 23) {
            EXPECT_EQ(per_position[p], std::set<char>{'-'});
        } else if (p == 14) {
            EXPECT_EQ(per_position[p], std::set<char>{'4'});
        } else if (p == 19) {
            EXPECT_EQ(per_position[p].size(), 4U);
        } else {
            EXPECT_GE(per_position[p].size(), 12U);
        }
    }
}

}  // namespace
}  // namespace djinn::queue

namespace djinn::queue {
namespace {

// Version 5 name-based UUIDs of the build id's decimal text in kJobIdNamespace, as Python's
// uuid.uuid5 computes them (an implementation independent of ours).
TEST(QueueBuildJobId, IsTheVersion5UuidOfTheBuildId) {
    EXPECT_EQ(build_job_id(1), "1ad07707-39ac-5504-96c5-91e0059654b2");
    EXPECT_EQ(build_job_id(9223372036854775807), "69df0cbb-9614-5060-8511-862becd755ca");
    EXPECT_EQ(build_job_id(1), build_job_id(1));
    std::set<std::string> seen;
    for (std::int64_t b = 1; b <= 20000; ++b) {
        const std::string id = build_job_id(b);
        ASSERT_EQ(id.size(), 36U);
        ASSERT_EQ(id[14], '5') << id;
        ASSERT_NE(std::string_view("89ab").find(id[19]), std::string_view::npos) << id;
        ASSERT_TRUE(seen.insert(id).second) << b;
    }
}

TEST(QueueDecodeBuildId, ReadsEveryFixtureTheOriginalWrote) {
    for (const auto& f : load_fixtures()) {
        SCOPED_TRACE("build id " + std::to_string(f.build_id));
        EXPECT_EQ(decode_build_id(f.message), f.build_id);
    }
}

TEST(QueueDecodeBuildId, ReadsOursWhateverTheHostAndBuildId) {
    for (const std::int64_t b :
         {std::int64_t{0}, std::int64_t{1}, std::int64_t{-5}, std::int64_t{8192},
          std::int64_t{1} << 40, std::numeric_limits<std::int64_t>::max(),
          std::numeric_limits<std::int64_t>::min()}) {
        for (const std::string_view host : {"djinn-scheduler", "", "https://djinn.example.com"}) {
            SCOPED_TRACE(std::to_string(b) + " " + std::string(host));
            EXPECT_EQ(decode_build_id(curlyq_message(build_job_id(7), gob_payload(host, b))), b);
        }
    }
}

TEST(QueueDecodeBuildId, FindsTheFieldByNameInTheTypeDefinition) {
    // A payload type with the fields the other way round: {BuildID int; Host string}, as a Go
    // struct declared in that order would be sent.
    const std::string definition = from_hex(
        "2aff81030101075061796c6f616401ff8200010201074275696c644944010400010448"
        "6f7374010c000000");
    const std::string value = from_hex("16ff820102010f") + "djinn-scheduler" + from_hex("00");
    const std::string message = curlyq_message("x", definition + value);
    EXPECT_EQ(decode_build_id(message), 1);
}

TEST(QueueDecodeBuildId, RejectsWhatIsNotSuchAMessageWithoutReadingPastIt) {
    const std::string good = curlyq_message(build_job_id(3), gob_payload(kPayloadHost, 1000));
    EXPECT_EQ(decode_build_id(""), std::nullopt);
    EXPECT_EQ(decode_build_id("not msgpack"), std::nullopt);
    EXPECT_EQ(decode_build_id(from_hex("81a4446174610a")), std::nullopt);  // Data: 10
    // A struct without BuildID.
    const std::string no_build =
        from_hex("1aff81030101034a6f6201ff820001010104486f7374010c00000006ff8201016800");
    EXPECT_EQ(decode_build_id(curlyq_message("x", no_build)), std::nullopt);
    // Every truncation of a good message: never a crash or a read past the end.
    for (std::size_t n = 0; n < good.size(); ++n) {
        const std::optional<std::int64_t> got = decode_build_id(good.substr(0, n));
        EXPECT_TRUE(!got.has_value() || *got == 1000) << n;
    }
    // Every single-byte corruption: any answer but a crash (ASan watches the reads).
    for (std::size_t at = 0; at < good.size(); ++at) {
        std::string bad = good;
        bad[at] = static_cast<char>(bad[at] ^ 0x5a);
        (void)decode_build_id(bad);
    }
}

}  // namespace
}  // namespace djinn::queue
