#include "manifest_yamlcpp_reference.hpp"

#include "common/utf8.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstddef>
#include <exception>
#include <map>
#include <string>
#include <vector>

// The yaml-cpp manifest decoder that production used before libyaml (commit e01a2e2), kept
// unchanged as the reference of the differential tests (manifest_equivalence_test.cpp,
// tests/fuzz/manifest_diff_fuzz.cpp). Not linked into the scheduler.
//
// Decoding follows gopkg.in/yaml.v2 v2.2.8 (decode.go) unmarshalling into v1.3.0's
// manifest.Manifest, whose fields and custom unmarshalers are:
//   namespace string, driver map[string]string, env []string, objects Passthrough,
//   sources []Source, stages []string, allow_failures []string, jobs []Job
//   (Job: stage string, name string, commands []string, artifacts Passthrough).
// yaml.v2 rules reproduced here:
// - keys are matched exactly (case-sensitive); unknown keys are ignored; a repeated key is
//   applied again in document order: scalars and lists are replaced, the driver map and
//   Passthrough values are merged into (last destination wins);
// - a null value (~, null, Null, NULL, empty, !!null) sets the zero value: "" / empty list /
//   empty map; a null list element is kept as a zero element (an empty string, Source or Job);
// - any other scalar decodes into a string as its source text (`memory: 2048` -> "2048",
//   `x: yes` -> "yes");
// - `<<` merge keys (a mapping, or a list of mappings where earlier ones take precedence) are
//   applied where they stand, so a later explicit key overrides them and an earlier one is
//   overridden by them;
// - any type mismatch (a map where a string or list is expected, ...) fails the whole decode;
// - the input must be UTF-8 and free of control characters, as yaml.v2's reader demands;
// - a scalar document goes through Manifest.UnmarshalText: its text is decoded once more as a
//   manifest (so a quoted YAML document works, a plain word fails).
// Not reproduced: !!binary scalars (refused), YAML 1.1 documents in UTF-16.

namespace djinn::manifest::reference {
namespace {

// Internal failure carrying a ready one-line reason; converted to ParseError in parse().
struct DecodeFailure {
    std::string reason;
};

// yaml.v2 gives up on documents whose alias expansion explodes; so do we, more simply.
constexpr std::size_t kMaxDecodeSteps = 200'000;
constexpr std::size_t kMaxMergeDepth = 64;
constexpr const char* kNullTag = "tag:yaml.org,2002:null";
constexpr const char* kMergeTag = "tag:yaml.org,2002:merge";
constexpr const char* kBinaryTag = "tag:yaml.org,2002:binary";

std::string where(const YAML::Mark& mark) {
    if (mark.is_null()) {
        return "";
    }
    return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1) +
           ": ";
}

[[noreturn]] void fail_at(const YAML::Node& node, const std::string& what) {
    throw DecodeFailure{where(node.Mark()) + what};
}

bool is_null(const YAML::Node& node) {
    return !node.IsDefined() || node.IsNull() || (node.IsScalar() && node.Tag() == kNullTag);
}

bool is_merge_key(const YAML::Node& key) {
    return key.IsScalar() && key.Scalar() == "<<" && (key.Tag() == "?" || key.Tag() == kMergeTag);
}

const char* kind_name(const YAML::Node& node) {
    if (node.IsMap()) {
        return "a mapping";
    }
    if (node.IsSequence()) {
        return "a list";
    }
    return "a scalar";
}

// Go's strings.TrimSpace: Unicode White_Space at both ends (input is valid UTF-8 here).
std::size_t space_length_at(std::string_view s, std::size_t i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == ' ' || (c >= '\t' && c <= '\r')) {
        return 1;
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
        // Find the start of the last code point and test it.
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

// yaml.v2 reads UTF-8 and refuses characters outside YAML's printable set.
void check_text(std::string_view text) {
    std::size_t line = 1;
    std::size_t column = 1;
    std::size_t i = 0;
    while (i < text.size()) {
        char32_t cp = 0;
        const std::size_t len = utf8_decode(text, i, cp);
        const bool ok = len != 0;
        const auto at = [&] {
            return "line " + std::to_string(line) + ", column " + std::to_string(column) + ": ";
        };
        if (!ok) {
            throw DecodeFailure{at() + "invalid UTF-8"};
        }
        const bool printable =
            cp == 0x09 || cp == 0x0A || cp == 0x0D || (cp >= 0x20 && cp <= 0x7E) || cp == 0x85 ||
            (cp >= 0xA0 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) || cp >= 0x10000;
        if (!printable) {
            throw DecodeFailure{at() + "control characters are not allowed"};
        }
        if (cp == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
        i += len;
    }
}

class Decoder {
  public:
    Manifest document(const YAML::Node& root, bool allow_text_document) {
        Manifest m;
        step();
        if (is_null(root)) {
            return m;
        }
        if (root.IsScalar()) {
            if (!allow_text_document) {
                fail_at(root, "the manifest must be a mapping, not a scalar");
            }
            // Manifest implements encoding.TextUnmarshaler: yaml.v2 hands it the scalar's text.
            return decode_text(root.Scalar(), false);
        }
        if (!root.IsMap()) {
            fail_at(root, "the manifest must be a mapping, not " + std::string(kind_name(root)));
        }
        manifest_fields(root, m);
        return m;
    }

    Manifest decode_text(const std::string& text, bool allow_text_document) {
        check_text(text);
        const YAML::Node root = YAML::Load(text);
        return document(root, allow_text_document);
    }

  private:
    void step() {
        if (++steps_ > kMaxDecodeSteps) {
            throw DecodeFailure{"document contains excessive aliasing"};
        }
    }

    std::string string_value(const YAML::Node& node, const std::string& path) {
        step();
        if (is_null(node)) {
            return "";
        }
        if (!node.IsScalar()) {
            fail_at(node, path + " must be a string, not " + kind_name(node));
        }
        if (node.Tag() == kBinaryTag) {
            fail_at(node, path + ": !!binary values are not supported");
        }
        return node.Scalar();
    }

    std::vector<std::string> string_list(const YAML::Node& node, const std::string& path) {
        step();
        std::vector<std::string> out;
        if (is_null(node)) {
            return out;
        }
        if (!node.IsSequence()) {
            fail_at(node, path + " must be a list, not " + kind_name(node));
        }
        for (std::size_t i = 0; i < node.size(); ++i) {
            out.push_back(string_value(node[i], path + "[" + std::to_string(i) + "]"));
        }
        return out;
    }

    // A mapping decoded into a Go struct or map: each pair in order, merge keys expanded.
    template <typename OnPair>
    void each_pair(const YAML::Node& mapping, const std::string& path, OnPair&& on_pair) {
        step();
        for (auto it = mapping.begin(); it != mapping.end(); ++it) {
            const YAML::Node key = it->first;
            const YAML::Node value = it->second;
            if (is_merge_key(key)) {
                merge(value, path, on_pair);
                continue;
            }
            on_pair(string_value(key, path + " key"), value);
        }
    }

    template <typename OnPair>
    void merge(const YAML::Node& value, const std::string& path, OnPair& on_pair) {
        step();
        // yaml-cpp registers an anchor before its content, so `&a {<<: *a}` is a cycle;
        // yaml.v2 refuses it ("anchor value contains itself"), and so do we.
        for (const YAML::Node& open : merging_) {
            if (open.is(value)) {
                fail_at(value, "anchor value contains itself");
            }
        }
        if (merging_.size() >= kMaxMergeDepth) {
            fail_at(value, "map merges nested too deeply");
        }
        merging_.push_back(value);
        merge_one(value, path, on_pair);
        merging_.pop_back();
    }

    template <typename OnPair>
    void merge_one(const YAML::Node& value, const std::string& path, OnPair& on_pair) {
        if (value.IsMap()) {
            each_pair(value, path, on_pair);
            return;
        }
        if (value.IsSequence()) {
            // Earlier mappings take precedence, so they are applied last.
            for (std::size_t i = value.size(); i-- > 0;) {
                const YAML::Node item = value[i];
                if (!item.IsMap()) {
                    fail_at(item, "map merge requires map or sequence of maps as the value");
                }
                each_pair(item, path, on_pair);
            }
            return;
        }
        fail_at(value, "map merge requires map or sequence of maps as the value");
    }

    void string_map(const YAML::Node& node, const std::string& path,
                    std::map<std::string, std::string>& out) {
        step();
        if (is_null(node)) {
            out.clear();
            return;
        }
        if (!node.IsMap()) {
            fail_at(node, path + " must be a mapping, not " + kind_name(node));
        }
        each_pair(node, path, [&](const std::string& key, const YAML::Node& value) {
            out[key] = string_value(value, path + "." + key);
        });
    }

    // runner.Passthrough.UnmarshalYAML: a list of "src => dst", dst defaulting to the base of
    // src; entries are added to what is already there.
    void passthrough(const YAML::Node& node, const std::string& path, Passthrough& out) {
        step();
        if (is_null(node)) {
            out.clear();
            return;
        }
        for (const std::string& entry : string_list(node, path)) {
            const auto arrow = entry.find("=>");
            std::string src = trim_space(std::string_view(entry).substr(0, arrow));
            std::string dst;
            if (arrow == std::string::npos) {
                dst = filepath_base(src);
            } else {
                const std::string_view rest = std::string_view(entry).substr(arrow + 2);
                dst = trim_space(rest.substr(0, rest.find("=>")));
            }
            auto existing = std::find_if(out.begin(), out.end(),
                                         [&](const auto& kv) { return kv.first == src; });
            if (existing != out.end()) {
                existing->second = std::move(dst);
            } else {
                out.emplace_back(std::move(src), std::move(dst));
            }
        }
    }

    // manifest.Source.UnmarshalYAML, including its quirks: the url ends at the first ' ';
    // every ' ' after it is deleted (so "main => src dir" gives ref "main", dir "srcdir");
    // the ref stays empty when absent.
    Source source(const YAML::Node& node, const std::string& path) {
        Source s;
        if (is_null(node)) {
            return s;
        }
        const std::string text = string_value(node, path);
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
        s.ref = rest;
        return s;
    }

    Job job(const YAML::Node& node, const std::string& path) {
        step();
        Job j;
        if (is_null(node)) {
            return j;
        }
        if (!node.IsMap()) {
            fail_at(node, path + " must be a mapping, not " + kind_name(node));
        }
        each_pair(node, path, [&](const std::string& key, const YAML::Node& value) {
            if (key == "stage") {
                j.stage = string_value(value, path + ".stage");
            } else if (key == "name") {
                j.name = string_value(value, path + ".name");
            } else if (key == "commands") {
                j.commands = string_list(value, path + ".commands");
            } else if (key == "artifacts") {
                passthrough(value, path + ".artifacts", j.artifacts);
            }
        });
        return j;
    }

    void manifest_fields(const YAML::Node& root, Manifest& m) {
        std::map<std::string, std::string> driver;
        each_pair(root, "manifest", [&](const std::string& key, const YAML::Node& value) {
            if (key == "namespace") {
                m.namespace_path = string_value(value, "namespace");
            } else if (key == "driver") {
                string_map(value, "driver", driver);
            } else if (key == "env") {
                m.env = string_list(value, "env");
            } else if (key == "objects") {
                passthrough(value, "objects", m.objects);
            } else if (key == "sources") {
                m.sources.clear();
                if (!is_null(value) && !value.IsSequence()) {
                    fail_at(value, "sources must be a list, not " + std::string(kind_name(value)));
                }
                for (std::size_t i = 0; !is_null(value) && i < value.size(); ++i) {
                    m.sources.push_back(source(value[i], "sources[" + std::to_string(i) + "]"));
                }
            } else if (key == "stages") {
                m.stages = string_list(value, "stages");
            } else if (key == "allow_failures") {
                m.allow_failures = string_list(value, "allow_failures");
            } else if (key == "jobs") {
                m.jobs.clear();
                if (!is_null(value) && !value.IsSequence()) {
                    fail_at(value, "jobs must be a list, not " + std::string(kind_name(value)));
                }
                for (std::size_t i = 0; !is_null(value) && i < value.size(); ++i) {
                    m.jobs.push_back(job(value[i], "jobs[" + std::to_string(i) + "]"));
                }
            }
            // Other keys: yaml.v2 ignores fields the struct does not have.
        });
        m.driver.assign(driver.begin(), driver.end());
    }

    std::size_t steps_ = 0;
    std::vector<YAML::Node> merging_;  // mappings being merged, outermost first
};

}  // namespace

std::variant<Manifest, ParseError> parse_with_yamlcpp(std::string_view yaml) {
    try {
        return Decoder().decode_text(std::string(yaml), true);
    } catch (const DecodeFailure& e) {
        return ParseError{e.reason};
    } catch (const YAML::Exception& e) {
        return ParseError{where(e.mark) + e.msg};
    } catch (const std::exception& e) {
        return ParseError{std::string("invalid manifest: ") + e.what()};
    }
}

}  // namespace djinn::manifest::reference
