#include "manifest/manifest.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "manifest/yaml_tree.hpp"

// Decoding follows gopkg.in/yaml.v2 v2.2.8 (decode.go, resolve.go) unmarshalling into v1.3.0's
// manifest.Manifest through manifest.Scan (yaml.NewDecoder(...).Decode), whose fields and custom
// unmarshalers are:
//   namespace string, driver map[string]string, env []string, objects Passthrough,
//   sources []Source, stages []string, allow_failures []string, jobs []Job
//   (Job: stage string, name string, commands []string, artifacts Passthrough;
//    Source and Passthrough have UnmarshalYAML, Manifest has UnmarshalText).
// The text is read by YamlTree (libyaml, first document only); the Decoder below walks it as
// decode.go's decoder walks its node tree, one function per Go type, each starting where
// decoder.unmarshal starts (it counts the step and follows an alias). The rules:
// - keys are matched exactly (case-sensitive); unknown keys are ignored and their values never
//   decoded; a repeated key is applied again in document order: scalars and lists are
//   replaced, the driver map and Passthrough values are merged into (last destination wins);
// - null: a plain `~`, `null`, `Null`, `NULL` or empty scalar, or a `!!null` one, sets the zero
//   value: "" / empty list / empty map; a null list element is kept as a zero element;
// - any other scalar decodes into a string as its text (`memory: 2048` -> "2048", `x: yes` ->
//   "yes"); a scalar with an explicit `!!bool`, `!!int`, `!!float`, `!!null` or `!!timestamp`
//   tag must resolve to that type (`!!int 12` -> "12", `!!int twelve` is an error, as yaml.v2's
//   "cannot decode !!str `twelve` as a !!int");
// - Source and Passthrough decode through their UnmarshalYAML, which yaml.v2 skips when its
//   `prepare` sees a null scalar: only `~`, `null` (in any style: `"null"` counts), a plain
//   empty one, or a `!!null` one. The value is then decoded into the struct itself, so `"null"`
//   or `"~"` there is an error; `Null` and `NULL` do reach UnmarshalYAML, where Passthrough
//   keeps what it had. (yaml.v2 keeps no tag on mappings and sequences: `!!null [a]` is a list.)
// - `<<` merge keys (a plain, `! <<` or `!!merge` `<<`, not an alias to one) take a mapping, an
// alias
//   to a mapping, or a list of those (earlier ones take precedence); they are applied where
//   they stand, so a later explicit key overrides them and an earlier one is overridden by them;
// - any type mismatch (a map where a string or list is expected, ...) fails the whole decode;
// - aliases: an alias being expanded inside itself fails ("anchor value contains itself"), and
//   decode.go's bound on alias expansion applies as it is (more than 100 alias steps, more than
//   1000 steps, and an alias share above allowedAliasRatio: "document contains excessive
//   aliasing"), so billion laughs fails within a few thousand steps;
// - the text must be UTF-8 without control characters (libyaml's reader, as yaml.v2's);
// - a scalar document goes through Manifest.UnmarshalText: its text is decoded once more as a
//   manifest, with yaml.Unmarshal (so a quoted YAML document works, a plain word fails).
// Decisions that are not yaml.v2's:
// - `!!binary` scalars are refused (yaml.v2 would base64-decode them);
// - an empty, blank or comment-only text is an empty Manifest (yaml.v2's Decoder returns io.EOF
//   for the latter two: an error in Djinn; skipped here as unknown_driver, also a skip);
// - merges nested more than 64 deep are refused (yaml.v2 recurses as deep as Go's stack lets
//   it), which bounds this decoder's recursion.
// Where yaml.v2 differs from the yaml-cpp decoder this replaced (kept as the reference of the
// differential tests in tests/unit/manifest_yamlcpp_reference.cpp), the decode records which of
// these rules it applied (detail::Rule); the tests use that to tell intent from a bug.

namespace djinn::manifest {
namespace {

using NodeId = YamlTree::NodeId;
using Kind = YamlTree::Kind;
using Tag = YamlTree::Tag;

constexpr std::size_t kMaxMergeDepth = 64;

// Internal failure carrying a ready one-line reason; converted to ParseError in parse().
struct DecodeFailure {
    std::string reason;
};

// Where a value is in the manifest ("jobs[0].commands[1]"), built on the stack as the decoder
// descends and rendered only for an error message.
class Path {
  public:
    static Path root(std::string_view name) { return Path(nullptr, Step::field, name, 0); }
    Path field(std::string_view name) const { return Path(this, Step::field, name, 0); }
    Path item(std::size_t index) const { return Path(this, Step::item, {}, index); }
    Path key() const { return Path(this, Step::key, {}, 0); }

    std::string str() const {
        std::string out = parent_ != nullptr ? parent_->str() : std::string();
        switch (step_) {
            case Step::field:
                if (!out.empty()) {
                    out += '.';
                }
                append_name(out);
                break;
            case Step::item:
                out += "[" + std::to_string(index_) + "]";
                break;
            case Step::key:
                out += " key";
                break;
        }
        return out;
    }

  private:
    enum class Step { field, item, key };

    // A key from the document, kept to one line and 64 bytes (whole UTF-8 characters): the
    // reason goes to the log.
    void append_name(std::string& out) const {
        std::size_t n = std::min<std::size_t>(name_.size(), 64);
        while (n < name_.size() && n > 0 &&
               (static_cast<unsigned char>(name_[n]) & 0xC0u) == 0x80u) {
            --n;
        }
        for (std::size_t i = 0; i < n; ++i) {
            const char c = name_[i];
            out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
        }
        if (n < name_.size()) {
            out += "...";
        }
    }
    Path(const Path* parent, Step step, std::string_view name, std::size_t index)
        : parent_(parent), step_(step), name_(name), index_(index) {}

    const Path* parent_;
    Step step_;
    std::string_view name_;
    std::size_t index_;
};

std::string where(const YamlTree::Node& n) {
    return "line " + std::to_string(n.line + 1) + ", column " + std::to_string(n.column + 1) + ": ";
}

const char* kind_name(Kind kind) {
    switch (kind) {
        case Kind::mapping:
            return "a mapping";
        case Kind::sequence:
            return "a list";
        default:
            return "a scalar";
    }
}

const char* tag_name(Tag tag) {
    switch (tag) {
        case Tag::null:
            return "!!null";
        case Tag::boolean:
            return "!!bool";
        case Tag::integer:
            return "!!int";
        case Tag::floating:
            return "!!float";
        case Tag::timestamp:
            return "!!timestamp";
        default:
            return "!!str";
    }
}

bool is_null_text(std::string_view s) {
    return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// --- resolve.go for explicitly tagged scalars ----------------------------------------------
// Only an explicit tag makes the resolved type matter: an untagged scalar decodes into a string
// as its text whatever it resolves to, unless it is null.

// strconv.ParseUint(s, base, 64) on text without underscores (yaml.v2 removes them first).
bool parse_uint(std::string_view s, int base, std::uint64_t& out) {
    if (s.empty()) {
        return false;
    }
    std::uint64_t v = 0;
    for (const char c : s) {
        int d = 0;
        if (is_digit(c)) {
            d = c - '0';
        } else if (c >= 'a' && c <= 'z') {
            d = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'Z') {
            d = c - 'A' + 10;
        } else {
            return false;
        }
        if (d >= base) {
            return false;
        }
        const auto b = static_cast<std::uint64_t>(base);
        if (v > (UINT64_MAX - static_cast<std::uint64_t>(d)) / b) {
            return false;  // ErrRange
        }
        v = v * b + static_cast<std::uint64_t>(d);
    }
    out = v;
    return true;
}

// strconv.ParseUint(s, 0, 64): the base from a 0x/0o/0b prefix, a leading 0 means octal.
bool parse_uint_base0(std::string_view s, std::uint64_t& out) {
    if (s.empty()) {
        return false;
    }
    int base = 10;
    if (s[0] == '0') {
        const char p = s.size() >= 3 ? static_cast<char>(s[1] | 0x20) : '\0';
        if (p == 'b' || p == 'o' || p == 'x') {
            base = p == 'b' ? 2 : p == 'o' ? 8 : 16;
            s.remove_prefix(2);
        } else {
            base = 8;
            s.remove_prefix(1);
            if (s.empty()) {
                out = 0;
                return true;
            }
        }
    }
    return parse_uint(s, base, out);
}

// strconv.ParseInt(s, 0, 64).
bool parse_int_base0(std::string_view s, bool allow_sign = true) {
    bool negative = false;
    if (allow_sign && !s.empty() && (s[0] == '+' || s[0] == '-')) {
        negative = s[0] == '-';
        s.remove_prefix(1);
    }
    std::uint64_t u = 0;
    if (!parse_uint_base0(s, u)) {
        return false;
    }
    return negative ? u <= (std::uint64_t{1} << 63) : u < (std::uint64_t{1} << 63);
}

// The decimal floats of yamlStyleFloat, `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`,
// that strconv.ParseFloat accepts (it refuses only an overflow to infinity).
bool is_yaml_float(std::string_view s) {
    std::size_t i = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        ++i;
    }
    std::size_t digits = 0;
    while (i < s.size() && is_digit(s[i])) {
        ++i;
        ++digits;
    }
    if (i < s.size() && s[i] == '.') {
        ++i;
        std::size_t fraction = 0;
        while (i < s.size() && is_digit(s[i])) {
            ++i;
            ++fraction;
        }
        if (digits == 0 && fraction == 0) {
            return false;
        }
    } else if (digits == 0) {
        return false;
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
            ++i;
        }
        std::size_t exponent = 0;
        while (i < s.size() && is_digit(s[i])) {
            ++i;
            ++exponent;
        }
        if (exponent == 0) {
            return false;
        }
    }
    if (i != s.size()) {
        return false;
    }
    const std::string copy(s);
    return !std::isinf(std::strtod(copy.c_str(), nullptr));
}

// Go's getnum(s, false): one or two digits.
bool get_number(std::string_view& s, int& out) {
    if (s.empty() || !is_digit(s[0])) {
        return false;
    }
    out = s[0] - '0';
    s.remove_prefix(1);
    if (!s.empty() && is_digit(s[0])) {
        out = out * 10 + (s[0] - '0');
        s.remove_prefix(1);
    }
    return true;
}

bool leap(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

// parseTimestamp: time.Parse with "2006-1-2T15:4:5.999999999Z07:00" (also with 't'),
// "2006-1-2 15:4:5.999999999" and "2006-1-2", with Go's digit counts and range checks.
bool is_timestamp(std::string_view s) {
    if (s.size() < 5 || !std::all_of(s.begin(), s.begin() + 4, is_digit) || s[4] != '-') {
        return false;
    }
    const int year = std::atoi(std::string(s.substr(0, 4)).c_str());
    s.remove_prefix(5);
    int month = 0;
    int day = 0;
    if (!get_number(s, month) || month < 1 || month > 12 || s.empty() || s[0] != '-') {
        return false;
    }
    s.remove_prefix(1);
    if (!get_number(s, day)) {
        return false;
    }
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const int days = kDays[month - 1] + (month == 2 && leap(year) ? 1 : 0);
    if (day < 1 || day > days) {
        return false;
    }
    if (s.empty()) {
        return true;  // "2006-1-2"
    }
    const char separator = s[0];
    if (separator != 'T' && separator != 't' && separator != ' ') {
        return false;
    }
    s.remove_prefix(1);
    int hour = 0;
    int minute = 0;
    int second = 0;
    if (!get_number(s, hour) || hour > 23 || s.empty() || s[0] != ':') {
        return false;
    }
    s.remove_prefix(1);
    if (!get_number(s, minute) || minute > 59 || s.empty() || s[0] != ':') {
        return false;
    }
    s.remove_prefix(1);
    if (!get_number(s, second) || second > 59) {
        return false;
    }
    if (s.size() >= 2 && (s[0] == '.' || s[0] == ',') && is_digit(s[1])) {
        std::size_t n = 1;
        while (n < s.size() && n <= 9 && is_digit(s[n])) {
            ++n;
        }
        s.remove_prefix(n);
    }
    if (separator == ' ') {
        return s.empty();
    }
    if (s == "Z") {
        return true;
    }
    // ±hh:mm
    return s.size() == 6 && (s[0] == '+' || s[0] == '-') && is_digit(s[1]) && is_digit(s[2]) &&
           s[3] == ':' && is_digit(s[4]) && is_digit(s[5]) &&
           (s[1] - '0') * 10 + (s[2] - '0') <= 24 && (s[4] - '0') * 10 + (s[5] - '0') <= 60;
}

// resolve(tag, in)'s resolved tag for one of the resolvable explicit tags (never str).
Tag resolved_tag(Tag tag, std::string_view in) {
    const char first = in.empty() ? 'N' : in[0];
    const bool sign = first == '+' || first == '-';
    const bool hinted = in.empty() || sign || is_digit(first) || first == '.' ||
                        std::string_view("yYnNtTfFoO~").find(first) != std::string_view::npos;
    if (!hinted) {
        return Tag::str;
    }
    static const std::unordered_map<std::string_view, Tag> kMap = {
        {"y", Tag::boolean},      {"Y", Tag::boolean},      {"yes", Tag::boolean},
        {"Yes", Tag::boolean},    {"YES", Tag::boolean},    {"true", Tag::boolean},
        {"True", Tag::boolean},   {"TRUE", Tag::boolean},   {"on", Tag::boolean},
        {"On", Tag::boolean},     {"ON", Tag::boolean},     {"n", Tag::boolean},
        {"N", Tag::boolean},      {"no", Tag::boolean},     {"No", Tag::boolean},
        {"NO", Tag::boolean},     {"false", Tag::boolean},  {"False", Tag::boolean},
        {"FALSE", Tag::boolean},  {"off", Tag::boolean},    {"Off", Tag::boolean},
        {"OFF", Tag::boolean},    {"", Tag::null},          {"~", Tag::null},
        {"null", Tag::null},      {"Null", Tag::null},      {"NULL", Tag::null},
        {".nan", Tag::floating},  {".NaN", Tag::floating},  {".NAN", Tag::floating},
        {".inf", Tag::floating},  {".Inf", Tag::floating},  {".INF", Tag::floating},
        {"+.inf", Tag::floating}, {"+.Inf", Tag::floating}, {"+.INF", Tag::floating},
        {"-.inf", Tag::floating}, {"-.Inf", Tag::floating}, {"-.INF", Tag::floating},
    };
    if (const auto it = kMap.find(in); it != kMap.end()) {
        return it->second;
    }
    if (first == '.') {
        return is_yaml_float(in) ? Tag::floating : Tag::str;
    }
    if (!sign && !is_digit(first)) {
        return Tag::str;
    }
    if (tag == Tag::timestamp && is_timestamp(in)) {
        return Tag::timestamp;
    }
    std::string plain(in);
    plain.erase(std::remove(plain.begin(), plain.end(), '_'), plain.end());
    std::uint64_t unused = 0;
    if (parse_int_base0(plain) || parse_uint_base0(plain, unused)) {
        return Tag::integer;
    }
    if (is_yaml_float(plain)) {
        return Tag::floating;
    }
    const std::string_view p(plain);
    if (p.substr(0, 2) == "0b") {
        const std::string_view bits = p.substr(2);
        const bool negative = !bits.empty() && bits[0] == '-';
        if (parse_uint(negative ? bits.substr(1) : bits, 2, unused)) {
            // ParseInt(plain[2:], 2) with its sign, or ParseUint
            return Tag::integer;
        }
    } else if (p.substr(0, 3) == "-0b") {
        if (parse_uint(p.substr(3), 2, unused) && unused <= (std::uint64_t{1} << 63)) {
            return Tag::integer;
        }
    }
    return Tag::str;
}

// Go's strings.TrimSpace: Unicode White_Space at both ends (values are valid UTF-8).
std::size_t space_length_at(std::string_view s, std::size_t i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == ' ' || (c >= '\t' && c <= '\r')) {
        return 1;
    }
    if (c < 0xC2) {
        return 0;
    }
    static constexpr std::string_view kMultiByteSpaces[] = {
        "\xC2\x85",     "\xC2\xA0",     "\xE1\x9A\x80", "\xE2\x80\x80", "\xE2\x80\x81",
        "\xE2\x80\x82", "\xE2\x80\x83", "\xE2\x80\x84", "\xE2\x80\x85", "\xE2\x80\x86",
        "\xE2\x80\x87", "\xE2\x80\x88", "\xE2\x80\x89", "\xE2\x80\x8A", "\xE2\x80\xA8",
        "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\x9F", "\xE3\x80\x80"};
    for (const auto sp : kMultiByteSpaces) {
        if (s.substr(i, sp.size()) == sp) {
            return sp.size();
        }
    }
    return 0;
}

std::string trim_space(std::string_view s) {
    std::size_t begin = 0;
    while (begin < s.size()) {
        const std::size_t n = space_length_at(s, begin);
        if (n == 0) {
            break;
        }
        begin += n;
    }
    std::size_t end = s.size();
    while (end > begin) {
        std::size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0u) == 0x80u) {
            --start;
        }
        const std::size_t n = space_length_at(s, start);
        if (n == 0 || start + n != end) {
            break;
        }
        end = start;
    }
    return std::string(s.substr(begin, end - begin));
}

// Go's path/filepath.Base on Linux.
std::string filepath_base(std::string_view path) {
    if (path.empty()) {
        return ".";
    }
    while (path.size() > 1 && path.back() == '/') {
        path.remove_suffix(1);
    }
    if (path == "/") {
        return "/";
    }
    const auto slash = path.find_last_of('/');
    return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// The part after the last '/' (v1.3.0's manifest.base, which keeps a trailing slash's "").
std::string_view last_segment(std::string_view s) {
    const auto slash = s.rfind('/');
    return slash == std::string_view::npos ? s : s.substr(slash + 1);
}

// runner.Passthrough under construction: manifest order, a repeated source keeps its first
// position and takes the last destination. Indexed once it is large, so that a list of many
// thousand entries stays linear.
class PassthroughBuilder {
  public:
    explicit PassthroughBuilder(Passthrough& out) : out_(out) {}

    void set(std::string src, std::string dst) {
        if (index_.empty() && out_.size() < 32) {
            for (auto& kv : out_) {
                if (kv.first == src) {
                    kv.second = std::move(dst);
                    return;
                }
            }
            out_.emplace_back(std::move(src), std::move(dst));
            return;
        }
        if (index_.empty()) {
            for (std::size_t i = 0; i < out_.size(); ++i) {
                index_.emplace(out_[i].first, i);
            }
        }
        const auto [it, inserted] = index_.emplace(src, out_.size());
        if (inserted) {
            out_.emplace_back(std::move(src), std::move(dst));
        } else {
            out_[it->second].second = std::move(dst);
        }
    }

    void clear() {
        out_.clear();
        index_.clear();
    }

  private:
    Passthrough& out_;
    std::unordered_map<std::string, std::size_t> index_;
};

class Decoder {
  public:
    Decoder(const YamlTree& tree, std::uint32_t& rules) : t_(tree), rules_(rules) {}

    // decoder.unmarshal(document) into *Manifest; `text_document`: Manifest.UnmarshalText is
    // available (the Decode of the stored text), not for the re-decode of a scalar document.
    Manifest document(bool text_document) {
        Manifest m;
        std::map<std::string, std::string> driver;
        step();  // decoder.unmarshal of the document node
        if (t_.root() != YamlTree::kNone) {
            manifest(t_.root(), m, driver, text_document);
        }
        m.driver.assign(driver.begin(), driver.end());
        return m;
    }

  private:
    const YamlTree::Node& node(NodeId id) const { return t_.node(id); }

    // The start of decoder.unmarshal: count the step, bound alias expansion.
    void step() {
        ++decode_count_;
        if (alias_depth_ > 0) {
            ++alias_count_;
        }
        if (alias_count_ > 100 && decode_count_ > 1000 &&
            static_cast<double>(alias_count_) / static_cast<double>(decode_count_) >
                allowed_alias_ratio(decode_count_)) {
            rules_ |= detail::kAliasRatio;
            throw DecodeFailure{"document contains excessive aliasing"};
        }
    }

    static double allowed_alias_ratio(std::int64_t decode_count) {
        constexpr std::int64_t kLow = 400'000;
        constexpr std::int64_t kHigh = 4'000'000;
        if (decode_count <= kLow) {
            return 0.99;
        }
        if (decode_count >= kHigh) {
            return 0.10;
        }
        return 0.99 - 0.89 * (static_cast<double>(decode_count - kLow) /
                              static_cast<double>(kHigh - kLow));
    }

    // decoder.alias: expand `alias` with `decode(target)`.
    template <typename Decode>
    void alias(NodeId alias, Decode&& decode) {
        if (active_alias_.empty()) {
            active_alias_.resize(t_.size(), 0);
        }
        if (active_alias_[alias] != 0) {
            rules_ |= detail::kAliasCycle;
            throw DecodeFailure{where(node(node(alias).target)) + "anchor '" +
                                std::string(t_.value(alias)) + "' value contains itself"};
        }
        active_alias_[alias] = 1;
        ++alias_depth_;
        decode(node(alias).target);
        --alias_depth_;
        active_alias_[alias] = 0;
    }

    [[noreturn]] void mismatch(NodeId id, const Path& path, const char* wanted) const {
        throw DecodeFailure{where(node(id)) + path.str() + " must be " + wanted + ", not " +
                            kind_name(node(id).kind)};
    }

    // decoder.prepare's null test: decides whether UnmarshalYAML runs. yaml.v2's parser keeps
    // no tag on a mapping or sequence, so only scalars can be null here.
    bool prepare_null(NodeId id) const {
        const YamlTree::Node& n = node(id);
        if (n.kind != Kind::scalar) {
            return false;
        }
        if (n.tag == Tag::null) {
            return true;
        }
        if (n.tag != Tag::none) {
            return false;
        }
        const std::string_view v = t_.value(id);
        return v == "null" || v == "~" || (v.empty() && n.implicit);
    }

    // decoder.scalar's resolution: true when the scalar is null (the zero value is set), false
    // when it has a value; throws where resolve() fails.
    bool resolves_to_null(NodeId id, const Path& path) {
        const YamlTree::Node& n = node(id);
        const std::string_view v = t_.value(id);
        switch (n.tag) {
            case Tag::none:
                return n.implicit && is_null_text(v);  // quoted: !!str without resolving
            case Tag::str:
            case Tag::merge:
            case Tag::other:
                return false;  // str, or a tag resolve() leaves alone
            case Tag::binary:
                // An explicit tag checked: yaml.v2 would base64-decode (`~` fails there too).
                rules_ |= detail::kTagResolution;
                throw DecodeFailure{where(n) + path.str() + ": !!binary values are not supported"};
            default:
                break;
        }
        rules_ |= detail::kTagResolution;
        const Tag resolved = resolved_tag(n.tag, v);
        if (resolved != n.tag && !(n.tag == Tag::floating && resolved == Tag::integer)) {
            std::string shown(v.substr(0, 64));  // one line: the reason goes to the log
            std::replace_if(
                shown.begin(), shown.end(),
                [](char c) { return static_cast<unsigned char>(c) < 0x20; }, ' ');
            throw DecodeFailure{where(n) + path.str() + ": cannot decode " + tag_name(resolved) +
                                " `" + shown + "` as a " + tag_name(n.tag)};
        }
        return resolved == Tag::null;
    }

    // unmarshal into a Go string: the text (a view into the tree), "" for null.
    std::string_view text(NodeId id, const Path& path) {
        step();
        const YamlTree::Node& n = node(id);
        if (n.kind == Kind::alias) {
            std::string_view out;
            alias(id, [&](NodeId target) { out = text(target, path); });
            return out;
        }
        if (n.kind != Kind::scalar) {
            mismatch(id, path, "a string");
        }
        return resolves_to_null(id, path) ? std::string_view() : t_.value(id);
    }

    void string(NodeId id, const Path& path, std::string& out) { out.assign(text(id, path)); }

    // The scalar case of a list, map or struct target: null sets the zero value (returns
    // true), anything else is a type error.
    bool scalar_is_null(NodeId id, const Path& path, const char* wanted) {
        if (resolves_to_null(id, path)) {
            return true;
        }
        mismatch(id, path, wanted);
    }

    // unmarshal into []string (replaced).
    void string_list(NodeId id, const Path& path, std::vector<std::string>& out) {
        step();
        const YamlTree::Node& n = node(id);
        if (n.kind == Kind::alias) {
            alias(id, [&](NodeId target) { string_list(target, path, out); });
            return;
        }
        if (n.kind == Kind::scalar) {
            scalar_is_null(id, path, "a list");
            out.clear();
            return;
        }
        if (n.kind != Kind::sequence) {
            mismatch(id, path, "a list");
        }
        std::vector<std::string> items(n.child_count);
        std::size_t i = 0;
        for (NodeId c = n.first_child; c != YamlTree::kNone; c = node(c).next_sibling, ++i) {
            string(c, path.item(i), items[i]);
        }
        out = std::move(items);
    }

    // decoder.merge: `value` of a `<<` key, applied with `apply(mapping)`.
    template <typename Apply>
    void merge(NodeId value, Apply&& apply) {
        if (merge_depth_ >= kMaxMergeDepth) {
            throw DecodeFailure{where(node(value)) + "map merges nested too deeply"};
        }
        ++merge_depth_;
        const YamlTree::Node& n = node(value);
        const auto want_map = [&](NodeId at) {
            throw DecodeFailure{where(node(at)) +
                                "map merge requires map or sequence of maps as the value"};
        };
        switch (n.kind) {
            case Kind::mapping:
                apply(value);
                break;
            case Kind::alias:
                if (node(n.target).kind != Kind::mapping) {
                    rules_ |= detail::kMergeOfNonMapping;
                    want_map(value);
                }
                apply(value);
                break;
            case Kind::sequence: {
                std::vector<NodeId> items;
                items.reserve(n.child_count);
                for (NodeId c = n.first_child; c != YamlTree::kNone; c = node(c).next_sibling) {
                    items.push_back(c);
                }
                // Earlier mappings take precedence, so they are applied last.
                for (auto it = items.rbegin(); it != items.rend(); ++it) {
                    const YamlTree::Node& item = node(*it);
                    if (item.kind == Kind::alias ? node(item.target).kind != Kind::mapping
                                                 : item.kind != Kind::mapping) {
                        if (item.kind == Kind::alias) {
                            rules_ |= detail::kMergeOfNonMapping;
                        }
                        want_map(*it);
                    }
                    apply(*it);
                }
                break;
            }
            default:
                want_map(value);
        }
        --merge_depth_;
    }

    bool is_merge_key(NodeId key) {
        const YamlTree::Node& k = node(key);
        if (k.kind == Kind::alias) {
            const YamlTree::Node& target = node(k.target);
            if (target.kind == Kind::scalar && t_.value(k.target) == "<<") {
                rules_ |= detail::kAliasKey;  // yaml.v2: an alias is never a merge key
            }
            return false;
        }
        if (k.kind != Kind::scalar || t_.value(key) != "<<")
            return false;
        // libyaml (and yaml.v2's port of it) calls a plain scalar with the non-specific tag `!`
        // implicit, and yaml.v2's isMerge takes any implicit `<<`: `! <<` merges.
        if (k.implicit && k.tag != Tag::none)
            rules_ |= detail::kMergeKeyBangTag;
        return k.implicit || k.tag == Tag::merge;
    }

    // decoder.mapping into map[string]string (merged into).
    void string_map(NodeId id, const Path& path, std::map<std::string, std::string>& out) {
        step();
        const YamlTree::Node& n = node(id);
        if (n.kind == Kind::alias) {
            alias(id, [&](NodeId target) { string_map(target, path, out); });
            return;
        }
        if (n.kind == Kind::scalar) {
            scalar_is_null(id, path, "a mapping");
            out.clear();
            return;
        }
        if (n.kind != Kind::mapping) {
            mismatch(id, path, "a mapping");
        }
        for (NodeId k = n.first_child; k != YamlTree::kNone;) {
            const NodeId v = node(k).next_sibling;
            if (is_merge_key(k)) {
                merge(v, [&](NodeId m) { string_map(m, path, out); });
            } else {
                const std::string_view key = text(k, path.key());
                out[std::string(key)] = std::string(text(v, path.field(key)));
            }
            k = node(v).next_sibling;
        }
    }

    // mappingStruct: each pair in order, merge keys expanded; `field(key, value)` decodes a
    // known field (unknown ones are never decoded).
    template <typename Field>
    void struct_fields(NodeId id, const Path& path, Field&& field) {
        const YamlTree::Node& n = node(id);
        for (NodeId k = n.first_child; k != YamlTree::kNone;) {
            const NodeId v = node(k).next_sibling;
            if (is_merge_key(k)) {
                merge(v, [&](NodeId m) { struct_value(m, path, field); });
            } else {
                field(text(k, path.key()), v);
            }
            k = node(v).next_sibling;
        }
    }

    // unmarshal of a struct without unmarshalers (Job, and what a merge applies): a mapping
    // sets fields, null leaves the zero value to the caller (returns true).
    template <typename Field>
    bool struct_value(NodeId id, const Path& path, Field& field) {
        step();
        const YamlTree::Node& n = node(id);
        if (n.kind == Kind::alias) {
            bool null = false;
            alias(id, [&](NodeId target) { null = struct_value(target, path, field); });
            return null;
        }
        if (n.kind == Kind::scalar) {
            return scalar_is_null(id, path, "a mapping");
        }
        if (n.kind != Kind::mapping) {
            mismatch(id, path, "a mapping");
        }
        struct_fields(id, path, field);
        return false;
    }

    // A scalar that decoder.prepare takes for null where a type with UnmarshalYAML is expected:
    // decoded into the struct itself, where only a null resolves (`"null"` or `"~"` quoted is a
    // type error). Returns true for the zero value.
    void null_into_struct(NodeId id, const Path& path, const char* wanted) {
        if (!resolves_to_null(id, path)) {
            rules_ |= detail::kNullIntoStruct;
            mismatch(id, path, wanted);
        }
    }

    // unmarshal into runner.Passthrough (its UnmarshalYAML adds "src => dst" entries).
    void passthrough(NodeId id, const Path& path, PassthroughBuilder& out) {
        step();
        const YamlTree::Node& n = node(id);
        if (n.kind == Kind::alias) {
            alias(id, [&](NodeId target) { passthrough(target, path, out); });
            return;
        }
        if (prepare_null(id)) {
            null_into_struct(id, path, "a list");
            out.clear();
            return;
        }
        std::vector<std::string> entries;
        string_list(id, path, entries);
        if (n.kind == Kind::scalar) {
            rules_ |= detail::kNullSpelling;  // Null or NULL: nothing added, nothing removed
        }
        for (const std::string& entry : entries) {
            const auto arrow = entry.find("=>");
            std::string src = trim_space(std::string_view(entry).substr(0, arrow));
            std::string dst;
            if (arrow == std::string::npos) {
                dst = filepath_base(src);
            } else {
                const std::string_view rest = std::string_view(entry).substr(arrow + 2);
                dst = trim_space(rest.substr(0, rest.find("=>")));
            }
            out.set(std::move(src), std::move(dst));
        }
    }

    // manifest.Source.UnmarshalYAML, including its quirks: the url ends at the first ' ';
    // every ' ' after it is deleted (so "main => src dir" gives ref "main", dir "srcdir");
    // the ref stays empty when absent.
    void source(NodeId id, const Path& path, Source& s) {
        step();
        const YamlTree::Node& n = node(id);
        if (n.kind == Kind::alias) {
            alias(id, [&](NodeId target) { source(target, path, s); });
            return;
        }
        if (prepare_null(id)) {
            null_into_struct(id, path, "a string");
            s = Source{};
            return;
        }
        std::string text;
        string(id, path, text);
        const auto space = text.find(' ');
        s.url = text.substr(0, space);
        s.dir = std::string(last_segment(s.url));
        if (s.dir.size() >= 4 && s.dir.compare(s.dir.size() - 4, 4, ".git") == 0) {
            s.dir.resize(s.dir.size() - 4);
        }
        std::string rest;
        if (space != std::string::npos) {
            for (const char c : std::string_view(text).substr(space)) {
                if (c != ' ') {
                    rest.push_back(c);
                }
            }
        }
        const auto arrow = rest.find("=>");
        if (arrow != std::string::npos) {
            s.dir = rest.substr(arrow + 2);
            rest.resize(arrow);
        }
        if (!rest.empty()) {
            s.ref = rest;
        }
    }

    // unmarshal into []Source or []Job (replaced); `item` decodes one element into a zero one.
    template <typename T, typename Item>
    void list(NodeId id, const Path& path, std::vector<T>& out, Item&& item) {
        step();
        const YamlTree::Node& n = node(id);
        if (n.kind == Kind::alias) {
            alias(id, [&](NodeId target) { list(target, path, out, item); });
            return;
        }
        if (n.kind == Kind::scalar) {
            scalar_is_null(id, path, "a list");
            out.clear();
            return;
        }
        if (n.kind != Kind::sequence) {
            mismatch(id, path, "a list");
        }
        std::vector<T> items(n.child_count);
        std::size_t i = 0;
        for (NodeId c = n.first_child; c != YamlTree::kNone; c = node(c).next_sibling, ++i) {
            item(c, path.item(i), items[i]);
        }
        out = std::move(items);
    }

    void job(NodeId id, const Path& path, Job& j) {
        PassthroughBuilder artifacts(j.artifacts);  // one index for all `artifacts` keys
        auto field = [&](std::string_view key, NodeId value) {
            if (key == "stage") {
                string(value, path.field("stage"), j.stage);
            } else if (key == "name") {
                string(value, path.field("name"), j.name);
            } else if (key == "commands") {
                string_list(value, path.field("commands"), j.commands);
            } else if (key == "artifacts") {
                passthrough(value, path.field("artifacts"), artifacts);
            }
        };
        if (struct_value(id, path, field)) {
            j = Job{};
        }
    }

    void manifest(NodeId id, Manifest& m, std::map<std::string, std::string>& driver,
                  bool text_document) {
        step();
        const YamlTree::Node& n = node(id);
        if (n.kind == Kind::scalar) {
            if (resolves_to_null(id, Path::root("manifest"))) {
                return;
            }
            if (!text_document) {
                throw DecodeFailure{where(n) + "the manifest must be a mapping, not a scalar"};
            }
            // Manifest implements encoding.TextUnmarshaler: yaml.v2 hands it the scalar's text,
            // which it decodes with yaml.Unmarshal (no second UnmarshalText).
            text_ = std::string(t_.value(id));
            return;
        }
        if (n.kind != Kind::mapping) {
            throw DecodeFailure{where(n) + "the manifest must be a mapping, not " +
                                kind_name(n.kind)};
        }
        PassthroughBuilder objects(m.objects);
        auto field = [&](std::string_view key, NodeId value) {
            if (key == "namespace") {
                string(value, Path::root("namespace"), m.namespace_path);
            } else if (key == "driver") {
                string_map(value, Path::root("driver"), driver);
            } else if (key == "env") {
                string_list(value, Path::root("env"), m.env);
            } else if (key == "objects") {
                passthrough(value, Path::root("objects"), objects);
            } else if (key == "sources") {
                list(value, Path::root("sources"), m.sources,
                     [&](NodeId item, const Path& path, Source& s) { source(item, path, s); });
            } else if (key == "stages") {
                string_list(value, Path::root("stages"), m.stages);
            } else if (key == "allow_failures") {
                string_list(value, Path::root("allow_failures"), m.allow_failures);
            } else if (key == "jobs") {
                list(value, Path::root("jobs"), m.jobs,
                     [&](NodeId item, const Path& path, Job& j) { job(item, path, j); });
            }
            // Other keys: yaml.v2 ignores fields the struct does not have.
        };
        struct_fields(id, Path::root("manifest"), field);
    }

  public:
    // The text handed to Manifest.UnmarshalText, when the document was a non-null scalar.
    const std::optional<std::string>& scalar_text() const { return text_; }

  private:
    const YamlTree& t_;
    std::uint32_t& rules_;
    std::vector<std::uint8_t> active_alias_;  // decoder.aliases: aliases being expanded
    std::int64_t decode_count_ = 0;
    std::int64_t alias_count_ = 0;
    int alias_depth_ = 0;
    std::size_t merge_depth_ = 0;
    std::optional<std::string> text_;
};

// Decodes `yaml` into a Manifest; `text_document`: a scalar document is decoded once more.
Manifest decode(std::string_view yaml, bool text_document, std::uint32_t& rules) {
    auto loaded = YamlTree::load(yaml, &rules);
    if (auto* err = std::get_if<ParseError>(&loaded)) {
        throw DecodeFailure{std::move(err->reason)};
    }
    const YamlTree& tree = std::get<YamlTree>(loaded);
    Decoder decoder(tree, rules);
    Manifest m = decoder.document(text_document);
    if (decoder.scalar_text()) {
        return decode(*decoder.scalar_text(), false, rules);
    }
    return m;
}

}  // namespace

std::string Manifest::driver_value(std::string_view key) const {
    const auto it =
        std::lower_bound(driver.begin(), driver.end(), key,
                         [](const auto& kv, std::string_view k) { return kv.first < k; });
    return it != driver.end() && it->first == key ? it->second : std::string();
}

namespace detail {

Traced parse_traced(std::string_view yaml) {
    Traced t;
    try {
        t.result = decode(yaml, true, t.rules);
    } catch (const DecodeFailure& e) {
        t.result = ParseError{e.reason};
    } catch (const std::exception& e) {
        t.result = ParseError{std::string("invalid manifest: ") + e.what()};
    }
    return t;
}

}  // namespace detail

std::variant<Manifest, ParseError> parse(std::string_view yaml) {
    return detail::parse_traced(yaml).result;
}

}  // namespace djinn::manifest
