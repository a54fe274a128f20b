#include "manifest/yaml_tree.hpp"

#include <yaml.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>

// Where libyaml 0.2.5 (C) and yaml.v2 v2.2.8's Go port of an older libyaml read the same text
// differently, and what load() does about it (found by reading both scanners side by side):
// - Reading: the port's reader fills a 512-byte raw buffer, 0.2.5's 16 KiB, and both check for
//   invalid UTF-8 and control characters as they fill it. Within the first document that only
//   changes which error is reported first; after its end it decides whether a bad character is
//   seen at all (the port reads at most 512 bytes ahead). The read handler below gives libyaml
//   at most what the port's buffer would hold, so the same characters are checked.
// - `%YAML 1.2`: 0.2.5 accepts it, the port says "found incompatible YAML document". Refused.
// - Depth: the port refuses more than 10000 nested flow collections or block indents ("exceeded
//   max depth of 10000"); 0.2.5 has no bound, and its simple-key check is quadratic in the flow
//   depth. Refused here beyond kMaxDepth (1000) nested collections of any kind: a document
//   nesting 1000 to 10000 deep (possible only under a key the manifest ignores) is a ParseError
//   here and not in Djinn.
// - `?` inside a plain scalar in a flow collection (`[a?b]`): 0.2.5 keeps it in the scalar,
//   the port ends the scalar there. Refused (the decoded manifest would differ).
// - A tag directly followed by `,` in a flow collection (`[!t, x]`): 0.2.5 ends the tag there
//   (an empty tagged node, then a second item), the port reads the `,` as part of the tag (one
//   item). Refused.
// - `\/` in a double-quoted scalar: 0.2.5 reads `/`, the port says "found unknown escape
//   character". Refused the same way.
// - U+FEFF anywhere but as the leading byte order mark: the port's is_bom() tests the first
//   bytes of its buffer instead of the current position, so while its buffer happens to start
//   with a U+FEFF it drops the first character of every line (found by the differential fuzzer
//   against yaml.v2 itself). When that happens depends on its buffer refills; refused.
// Differences that need nothing, because 0.2.5 refuses what the port reads: `\'` in a
// double-quoted scalar; `:` followed by one of `,?[]{}` inside a plain scalar in a flow
// collection ("found unexpected ':'"); `,`, `[` or `]` inside a tag outside `!<...>`. Such a
// manifest is a ParseError here where Djinn would have read it.
// The port's lazy check of stale simple keys (v2.2.8) reports the same errors as 0.2.5's eager
// one, only at another moment.

namespace djinn::manifest {
namespace {

// yaml.v2's input_raw_buffer_size.
constexpr std::size_t kPortRawBuffer = 512;

struct Input {
    std::string_view text;
    std::size_t pos = 0;
    const yaml_parser_t* parser = nullptr;
};

// libyaml read handler that hands out what yaml.v2's 512-byte raw buffer would take: `buffer`
// points just past the bytes libyaml still holds undecoded (an incomplete UTF-8 sequence), which
// the port counts against its 512 as well.
int read_chunk(void* data, unsigned char* buffer, std::size_t size, std::size_t* size_read) {
    auto* in = static_cast<Input*>(data);
    const auto held = static_cast<std::size_t>(buffer - in->parser->raw_buffer.start);
    const std::size_t room = held < kPortRawBuffer ? kPortRawBuffer - held : 1;
    const std::size_t n = std::min({size, room, in->text.size() - in->pos});
    std::memcpy(buffer, in->text.data() + in->pos, n);
    in->pos += n;
    *size_read = n;
    return 1;
}

std::string at(std::size_t line, std::size_t column) {
    return "line " + std::to_string(line + 1) + ", column " + std::to_string(column + 1) + ": ";
}

std::string at(const yaml_mark_t& mark) {
    return at(mark.line, mark.column);
}

// Line and column (0-based, in characters) of a byte offset, for reader errors, which libyaml
// reports as an offset only.
std::pair<std::size_t, std::size_t> line_column(std::string_view text, std::size_t offset) {
    std::size_t line = 0;
    std::size_t column = 0;
    // A leading byte order mark is no character to libyaml's marks.
    const std::size_t start = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
    for (std::size_t i = start; i < offset && i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '\n') {
            ++line;
            column = 0;
        } else if ((c & 0xC0u) != 0x80u) {
            ++column;
        }
    }
    return {line, column};
}

// Byte offsets of libyaml marks' character indexes (0.2.5 counts characters, after a BOM), for
// UTF-8 input. Marks are asked for in (nearly) increasing order, so the walk resumes where the
// last one stopped: linear over a document, however many marks.
class ByteOffsets {
  public:
    explicit ByteOffsets(std::string_view text) : text_(text) {
        if (text.substr(0, 3) == "\xEF\xBB\xBF") {
            start_ = 3;
        } else if (!text.empty() && (static_cast<unsigned char>(text[0]) == 0xFE ||
                                     static_cast<unsigned char>(text[0]) == 0xFF)) {
            utf16_ = true;  // UTF-16: the checks that need offsets do not apply
        }
        byte_ = start_;
    }

    // npos for UTF-16 input or an index past the end.
    std::size_t of(std::size_t char_index) {
        if (utf16_) {
            return std::string_view::npos;
        }
        if (char_index < chars_) {
            chars_ = 0;
            byte_ = start_;
        }
        while (byte_ < text_.size()) {
            if ((static_cast<unsigned char>(text_[byte_]) & 0xC0u) != 0x80u) {
                if (chars_ == char_index) {
                    return byte_;
                }
                ++chars_;
            }
            ++byte_;
        }
        return std::string_view::npos;
    }

  private:
    std::string_view text_;
    std::size_t start_ = 0;
    bool utf16_ = false;
    std::size_t chars_ = 0;  // characters before byte_ (byte_ at a character's first byte)
    std::size_t byte_ = 0;
};

YamlTree::Tag classify_tag(const yaml_char_t* tag) {
    if (tag == nullptr) {
        return YamlTree::Tag::none;
    }
    constexpr std::string_view kPrefix = "tag:yaml.org,2002:";
    const std::string_view t(reinterpret_cast<const char*>(tag));
    if (t.substr(0, kPrefix.size()) != kPrefix) {
        return YamlTree::Tag::other;
    }
    const std::string_view name = t.substr(kPrefix.size());
    if (name == "str")
        return YamlTree::Tag::str;
    if (name == "null")
        return YamlTree::Tag::null;
    if (name == "bool")
        return YamlTree::Tag::boolean;
    if (name == "int")
        return YamlTree::Tag::integer;
    if (name == "float")
        return YamlTree::Tag::floating;
    if (name == "timestamp")
        return YamlTree::Tag::timestamp;
    if (name == "binary")
        return YamlTree::Tag::binary;
    if (name == "merge")
        return YamlTree::Tag::merge;
    return YamlTree::Tag::other;
}

// Thrown inside the builder only; load() turns it into a ParseError. `port_rule`: a refusal
// of this file's own (libyaml would have read on).
struct LoadFailure {
    std::string reason;
    bool port_rule = false;
};

class ParserHandle {
  public:
    ParserHandle() {
        if (yaml_parser_initialize(&parser_) == 0) {
            throw LoadFailure{"libyaml: cannot initialize the parser (out of memory)"};
        }
    }
    ~ParserHandle() { yaml_parser_delete(&parser_); }
    ParserHandle(const ParserHandle&) = delete;
    ParserHandle& operator=(const ParserHandle&) = delete;
    yaml_parser_t* get() { return &parser_; }

  private:
    yaml_parser_t parser_{};
};

class EventHandle {
  public:
    EventHandle() = default;
    ~EventHandle() { yaml_event_delete(&event_); }
    EventHandle(const EventHandle&) = delete;
    EventHandle& operator=(const EventHandle&) = delete;
    yaml_event_t* get() { return &event_; }
    const yaml_event_t& operator*() const { return event_; }

  private:
    yaml_event_t event_{};
};

// libyaml's error state as one located line.
std::string describe_error(const yaml_parser_t& p, std::string_view text) {
    std::string problem = p.problem != nullptr ? p.problem : "unknown problem parsing YAML";
    switch (p.error) {
        case YAML_MEMORY_ERROR:
            return "libyaml: out of memory";
        case YAML_READER_ERROR: {
            const auto [line, column] = line_column(text, p.problem_offset);
            return at(line, column) + problem;
        }
        case YAML_SCANNER_ERROR:
        case YAML_PARSER_ERROR: {
            std::string reason = at(p.problem_mark) + problem;
            if (p.context != nullptr) {
                reason += " (" + std::string(p.context) + " at line " +
                          std::to_string(p.context_mark.line + 1) + ", column " +
                          std::to_string(p.context_mark.column + 1) + ")";
            }
            return reason;
        }
        default:
            return problem;
    }
}

}  // namespace

class YamlTreeBuilder {
  public:
    explicit YamlTreeBuilder(std::string_view text)
        : text_(text),
          has_slash_escape_(text.find("\\/") != std::string_view::npos),
          offsets_(text) {
        tree_.nodes_.reserve(text.size() / 8 + 8);
        open_.reserve(16);
        tree_.text_.reserve(text.size());
    }

    YamlTree build() {
        const std::size_t bom = text_.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
        if (const std::size_t at_byte = text_.find("\xEF\xBB\xBF", bom);
            at_byte != std::string_view::npos) {
            const auto [line, column] = line_column(text_, at_byte);
            throw LoadFailure{at(line, column) +
                                  "U+FEFF (a byte order mark) inside the text is misread by "
                                  "yaml.v2; remove it",
                              true};
        }
        ParserHandle parser;
        Input input{text_, 0, parser.get()};
        yaml_parser_set_input(parser.get(), read_chunk, &input);
        for (;;) {
            EventHandle event;
            if (yaml_parser_parse(parser.get(), event.get()) == 0) {
                throw LoadFailure{describe_error(*parser.get(), text_)};
            }
            const yaml_event_t& e = *event;
            switch (e.type) {
                case YAML_STREAM_END_EVENT:
                case YAML_DOCUMENT_END_EVENT:
                    return std::move(tree_);  // yaml.v2 reads the first document only
                case YAML_DOCUMENT_START_EVENT:
                    if (const auto* v = e.data.document_start.version_directive;
                        v != nullptr && v->minor != 1) {
                        throw LoadFailure{at(e.start_mark) + "found incompatible YAML document",
                                          true};
                    }
                    break;
                case YAML_SCALAR_EVENT:
                    scalar(e);
                    break;
                case YAML_ALIAS_EVENT:
                    alias(e);
                    break;
                case YAML_SEQUENCE_START_EVENT:
                    open(e, YamlTree::Kind::sequence, e.data.sequence_start.anchor,
                         e.data.sequence_start.tag,
                         e.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE);
                    break;
                case YAML_MAPPING_START_EVENT:
                    open(e, YamlTree::Kind::mapping, e.data.mapping_start.anchor,
                         e.data.mapping_start.tag,
                         e.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE);
                    break;
                case YAML_SEQUENCE_END_EVENT:
                case YAML_MAPPING_END_EVENT:
                    open_.pop_back();
                    break;
                default:
                    break;
            }
        }
    }

  private:
    struct Open {
        YamlTree::NodeId id;
        YamlTree::NodeId last_child;
        bool flow;
    };

    bool in_flow() const { return !open_.empty() && open_.back().flow; }

    YamlTree::NodeId add(const yaml_event_t& e, YamlTree::Kind kind, const yaml_char_t* tag) {
        const auto id = static_cast<YamlTree::NodeId>(tree_.nodes_.size());
        YamlTree::Node& n = tree_.nodes_.emplace_back();
        n.kind = kind;
        n.tag = classify_tag(tag);
        n.line = static_cast<std::uint32_t>(e.start_mark.line);
        n.column = static_cast<std::uint32_t>(e.start_mark.column);
        if (open_.empty()) {
            tree_.root_ = id;
        } else {
            Open& parent = open_.back();
            YamlTree::Node& p = tree_.nodes_[parent.id];
            if (parent.last_child == YamlTree::kNone) {
                p.first_child = id;
            } else {
                tree_.nodes_[parent.last_child].next_sibling = id;
            }
            parent.last_child = id;
            ++p.child_count;
        }
        return id;
    }

    void set_text(YamlTree::NodeId id, const yaml_char_t* data, std::size_t size) {
        YamlTree::Node& n = tree_.nodes_[id];
        n.value_offset = static_cast<std::uint32_t>(tree_.text_.size());
        n.value_size = static_cast<std::uint32_t>(size);
        tree_.text_.append(reinterpret_cast<const char*>(data), size);
    }

    void anchor(const yaml_char_t* name, YamlTree::NodeId id) {
        if (name != nullptr) {
            anchors_[reinterpret_cast<const char*>(name)] = id;
        }
    }

    void scalar(const yaml_event_t& e) {
        const auto& s = e.data.scalar;
        const std::string_view value(reinterpret_cast<const char*>(s.value), s.length);
        if (s.style == YAML_PLAIN_SCALAR_STYLE && in_flow()) {
            if (value.find('?') != std::string_view::npos) {
                throw LoadFailure{at(e.start_mark) +
                                      "'?' inside a plain scalar in a flow collection is read "
                                      "differently by yaml.v2; quote the scalar",
                                  true};
            }
            if (s.tag != nullptr && value.empty()) {
                const std::size_t end = offsets_.of(e.end_mark.index);
                if (end != std::string_view::npos && text_[end] == ',') {
                    throw LoadFailure{at(e.start_mark) +
                                          "a tag directly followed by ',' is read differently by "
                                          "yaml.v2; put a space before the ','",
                                      true};
                }
            }
        }
        if (has_slash_escape_ && s.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE) {
            check_slash_escape(e);
        }
        const YamlTree::NodeId id = add(e, YamlTree::Kind::scalar, s.tag);
        YamlTree::Node& n = tree_.nodes_[id];
        n.plain = s.style == YAML_PLAIN_SCALAR_STYLE;
        n.implicit = s.plain_implicit != 0;
        set_text(id, s.value, s.length);
        anchor(s.anchor, id);
    }

    // yaml.v2 knows no `\/` escape (libyaml 0.2.5 does): find one in the scalar's source.
    void check_slash_escape(const yaml_event_t& e) {
        const std::size_t begin = offsets_.of(e.start_mark.index);
        const std::size_t end = offsets_.of(e.end_mark.index);
        if (begin == std::string_view::npos) {
            return;
        }
        const std::string_view source =
            text_.substr(begin, end == std::string_view::npos ? text_.size() - begin : end - begin);
        const std::size_t quote = source.find('"');  // after the tag and anchor, if any
        for (std::size_t i = quote == std::string_view::npos ? source.size() : quote + 1;
             i + 1 < source.size(); ++i) {
            if (source[i] == '\\') {
                if (source[i + 1] == '/') {
                    throw LoadFailure{
                        at(e.start_mark) +
                            "found unknown escape character '/' (yaml.v2 knows no \\/)",
                        true};
                }
                ++i;  // the escaped character, whatever it is, is not a backslash that counts
            }
        }
    }

    void alias(const yaml_event_t& e) {
        const char* name = reinterpret_cast<const char*>(e.data.alias.anchor);
        const auto found = anchors_.find(name);
        if (found == anchors_.end()) {
            throw LoadFailure{at(e.start_mark) + "unknown anchor '" + name + "' referenced"};
        }
        const YamlTree::NodeId id = add(e, YamlTree::Kind::alias, nullptr);
        tree_.nodes_[id].target = found->second;
        set_text(id, e.data.alias.anchor, std::strlen(name));
    }

    void open(const yaml_event_t& e, YamlTree::Kind kind, const yaml_char_t* anchor_name,
              const yaml_char_t* tag, bool flow) {
        if (open_.size() >= YamlTree::kMaxDepth) {
            throw LoadFailure{
                at(e.start_mark) + "exceeded max depth of " + std::to_string(YamlTree::kMaxDepth),
                true};
        }
        const YamlTree::NodeId id = add(e, kind, tag);
        anchor(anchor_name, id);  // before the children: `&a [*a]` is the node itself
        open_.push_back(Open{id, YamlTree::kNone, flow});
    }

    std::string_view text_;
    bool has_slash_escape_;
    ByteOffsets offsets_;
    YamlTree tree_;
    std::vector<Open> open_;
    std::unordered_map<std::string, YamlTree::NodeId> anchors_;
};

std::variant<YamlTree, ParseError> YamlTree::load(std::string_view yaml, std::uint32_t* rules) {
    try {
        return YamlTreeBuilder(yaml).build();
    } catch (const LoadFailure& f) {
        if (f.port_rule && rules != nullptr) {
            *rules |= detail::kSyntax;
        }
        return ParseError{f.reason};
    }
}

}  // namespace djinn::manifest
