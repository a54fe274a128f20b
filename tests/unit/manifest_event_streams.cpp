#include "manifest_event_streams.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>
#include <yaml.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/utf8.hpp"

namespace djinn::manifest::testing {
namespace {

bool is_null_string(std::string_view v) {
    return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
}

void record(std::string& out, char kind, std::string_view tag, std::size_t anchor,
            std::string_view value) {
    out += kind;
    out += '\x1f';
    out += tag;
    out += '\x1f';
    out += std::to_string(anchor);
    out += '\x1f';
    out += value;
    out += '\x1e';
}

class YamlCppEvents : public YAML::EventHandler {
  public:
    std::string out;
    int documents = 0;

    void OnDocumentStart(const YAML::Mark&) override { ++documents; }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t anchor) override {
        record(out, 'N', "", anchor, "");
    }
    void OnAlias(const YAML::Mark&, YAML::anchor_t anchor) override {
        record(out, '*', "", anchor, "");
    }
    void OnScalar(const YAML::Mark&, const std::string& tag, YAML::anchor_t anchor,
                  const std::string& value) override {
        record(out, '=', tag, anchor, value);
    }
    void OnSequenceStart(const YAML::Mark&, const std::string& tag, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value) override {
        record(out, '[', tag, anchor, "");
    }
    void OnSequenceEnd() override { record(out, ']', "", 0, ""); }
    void OnMapStart(const YAML::Mark&, const std::string& tag, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value) override {
        record(out, '{', tag, anchor, "");
    }
    void OnMapEnd() override { record(out, '}', "", 0, ""); }
};

// The reference decoder's own check before yaml-cpp sees the text.
bool printable_utf8(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        char32_t cp = 0;
        const std::size_t len = utf8_decode(text, i, cp);
        if (len == 0) {
            return false;
        }
        const bool printable =
            cp == 0x09 || cp == 0x0A || cp == 0x0D || (cp >= 0x20 && cp <= 0x7E) || cp == 0x85 ||
            (cp >= 0xA0 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) || cp >= 0x10000;
        if (!printable) {
            return false;
        }
        i += len;
    }
    return true;
}

const char* rule_name(std::uint32_t bit) {
    switch (bit) {
        case detail::kTagResolution:
            return "tag-resolution";
        case detail::kNullSpelling:
            return "null-spelling";
        case detail::kNullIntoStruct:
            return "null-into-struct";
        case detail::kMergeOfNonMapping:
            return "merge-of-non-mapping";
        case detail::kAliasKey:
            return "alias-key";
        case detail::kAliasRatio:
            return "alias-ratio";
        case detail::kAliasCycle:
            return "alias-cycle";
        case detail::kSyntax:
            return "libyaml-vs-port";
        case detail::kMergeKeyBangTag:
            return "merge-key-bang-tag";
        default:
            return "unknown-rule";
    }
}

std::string summary(const Manifest& m) {
    std::ostringstream s;
    s << "namespace=" << m.namespace_path << " driver={";
    for (const auto& [k, v] : m.driver) {
        s << k << ":" << v << ",";
    }
    s << "} env=" << m.env.size() << " objects={";
    for (const auto& [k, v] : m.objects) {
        s << k << "=>" << v << ",";
    }
    s << "} sources=[";
    for (const auto& src : m.sources) {
        s << src.url << "|" << src.ref << "|" << src.dir << ",";
    }
    s << "] stages=" << m.stages.size() << " allow_failures=" << m.allow_failures.size()
      << " jobs=[";
    for (const auto& j : m.jobs) {
        s << "{" << j.stage << "|" << j.name << "|" << j.commands.size() << " commands|"
          << j.artifacts.size() << " artifacts},";
    }
    s << "]";
    return s.str();
}

}  // namespace

std::optional<std::string> libyaml_events(std::string_view yaml) {
    yaml_parser_t parser;
    if (yaml_parser_initialize(&parser) == 0) {
        return std::nullopt;
    }
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(yaml.data()),
                                 yaml.size());
    std::string out;
    std::map<std::string, std::size_t> anchors;
    std::size_t next_anchor = 0;
    auto define = [&](const yaml_char_t* name) -> std::size_t {
        if (name == nullptr) {
            return 0;
        }
        return anchors[reinterpret_cast<const char*>(name)] = ++next_anchor;
    };
    auto tag_of = [](const yaml_char_t* tag, bool plain) -> std::string {
        if (tag != nullptr) {
            return reinterpret_cast<const char*>(tag);
        }
        return plain ? "?" : "!";
    };
    bool ok = true;
    for (bool done = false; !done;) {
        yaml_event_t e;
        if (yaml_parser_parse(&parser, &e) == 0) {
            ok = false;
            break;
        }
        switch (e.type) {
            case YAML_STREAM_END_EVENT:
            case YAML_DOCUMENT_END_EVENT:
                done = true;
                break;
            case YAML_SCALAR_EVENT: {
                const std::string_view value(reinterpret_cast<const char*>(e.data.scalar.value),
                                             e.data.scalar.length);
                const bool plain = e.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                const std::size_t anchor = define(e.data.scalar.anchor);
                if (e.data.scalar.tag == nullptr && plain && is_null_string(value)) {
                    record(out, 'N', "", anchor, "");
                } else {
                    record(out, '=', tag_of(e.data.scalar.tag, plain), anchor, value);
                }
                break;
            }
            case YAML_ALIAS_EVENT: {
                const auto it = anchors.find(reinterpret_cast<const char*>(e.data.alias.anchor));
                record(out, '*', "", it == anchors.end() ? 0 : it->second, "");
                break;
            }
            case YAML_SEQUENCE_START_EVENT: {
                const std::size_t anchor = define(e.data.sequence_start.anchor);
                record(out, '[', tag_of(e.data.sequence_start.tag, true), anchor, "");
                break;
            }
            case YAML_MAPPING_START_EVENT: {
                const std::size_t anchor = define(e.data.mapping_start.anchor);
                record(out, '{', tag_of(e.data.mapping_start.tag, true), anchor, "");
                break;
            }
            case YAML_SEQUENCE_END_EVENT:
                record(out, ']', "", 0, "");
                break;
            case YAML_MAPPING_END_EVENT:
                record(out, '}', "", 0, "");
                break;
            default:
                break;
        }
        yaml_event_delete(&e);
    }
    yaml_parser_delete(&parser);
    if (!ok) {
        return std::nullopt;
    }
    return out;
}

std::optional<std::string> yamlcpp_events(std::string_view yaml) {
    if (!printable_utf8(yaml)) {
        return std::nullopt;
    }
    try {
        std::istringstream in{std::string(yaml)};
        YAML::Parser parser(in);
        YamlCppEvents events;
        parser.HandleNextDocument(events);
        return events.out;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

bool same_outcome(const std::variant<Manifest, ParseError>& a,
                  const std::variant<Manifest, ParseError>& b) {
    if (a.index() != b.index()) {
        return false;
    }
    return std::holds_alternative<ParseError>(a) || std::get<Manifest>(a) == std::get<Manifest>(b);
}

namespace {

// `nested`: the text of a scalar document, which both decoders decode once more, never twice.
std::string difference(std::string_view yaml, std::uint32_t rules, bool nested) {
    if (!printable_utf8(yaml)) {
        return "reader";  // the reference checks the whole text, libyaml what yaml.v2 reads
    }
    const auto events = libyaml_events(yaml);
    if (events != yamlcpp_events(yaml)) {
        return "parser";
    }
    // A scalar document is decoded once more (Manifest.UnmarshalText): compare its text too.
    if (!nested && events && events->size() > 1 && (*events)[0] == '=' &&
        std::count(events->begin(), events->end(), '\x1e') == 1) {
        const std::size_t value = events->find('\x1f', events->find('\x1f', 2) + 1) + 1;
        const std::string inner = events->substr(value, events->size() - value - 1);
        if (const std::string why = difference(inner, 0, true); !why.empty()) {
            return why;
        }
    }
    std::string names;
    for (std::uint32_t bit = 1; bit != 0; bit <<= 1) {
        if ((rules & bit) != 0) {
            names += (names.empty() ? "" : ",") + std::string(rule_name(bit));
        }
    }
    return names;
}

}  // namespace

std::string documented_difference(std::string_view yaml, std::uint32_t rules) {
    return difference(yaml, rules, false);
}

std::string describe(const std::variant<Manifest, ParseError>& r) {
    if (const auto* e = std::get_if<ParseError>(&r)) {
        return "ParseError: " + e->reason;
    }
    return "Manifest: " + summary(std::get<Manifest>(r));
}

}  // namespace djinn::manifest::testing
