#pragma once
// The first document of a YAML text as a compact tree, read with libyaml's event parser the way
// gopkg.in/yaml.v2 v2.2.8 (decode.go's parser) reads it: nodes in one arena, an anchor bound to
// its node when the node starts (so `&a [*a]` refers to itself), an alias bound to the latest
// node of its anchor, a reference to an unknown anchor an error, only the first document read.
//
// yaml.v2 is a Go port of libyaml, but of an older libyaml than Debian's 0.2.5; load() makes
// 0.2.5 behave like the port where the two differ in a way that would change a decoded manifest
// (each is explained in yaml_tree.cpp): input is read in 512-byte chunks as the port does, a
// `%YAML 1.2` directive is refused, nesting is bounded (at 1000; the port stops at 10000), and
// three spellings that 0.2.5 reads differently from the port are refused: `?` inside a plain
// scalar in a flow collection, a tag directly followed by `,` in a flow collection, and the
// escape `\/` in a double-quoted scalar; and U+FEFF anywhere but at the start, which the port
// misreads.
//
// Thread safety: a YamlTree is immutable once loaded; load() shares nothing between calls.
// Failure: load() never throws for bad input (std::bad_alloc aside); every libyaml error and
// every refusal is a ParseError "line L, column C: <what>", one line.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "manifest/manifest.hpp"

namespace djinn::manifest {

class YamlTree {
  public:
    using NodeId = std::uint32_t;
    static constexpr NodeId kNone = 0xFFFFFFFFu;
    // Nested collections allowed. yaml.v2 v2.2.8 (scannerc.go) allows 10000 flow levels and
    // 10000 block indents, but libyaml 0.2.5's simple-key check is quadratic in the flow depth
    // (10000 levels cost about a second of CPU, 1000 about 10 ms); manifests nest below 10.
    static constexpr std::size_t kMaxDepth = 1000;

    enum class Kind : std::uint8_t { scalar, mapping, sequence, alias };
    // The node's explicit tag as yaml.v2 tells them apart (resolve.go); `none` is no tag at all.
    enum class Tag : std::uint8_t {
        none,
        str,
        null,
        boolean,
        integer,
        floating,
        timestamp,
        binary,
        merge,
        other
    };

    struct Node {
        Kind kind = Kind::scalar;
        Tag tag = Tag::none;
        bool implicit = false;     // scalar: plain style without a tag (yaml.v2's node.implicit)
        bool plain = false;        // scalar: plain style
        std::uint32_t line = 0;    // 0-based, of the node's first token (anchor or tag included)
        std::uint32_t column = 0;  // 0-based, in characters
        std::uint32_t value_offset = 0;  // scalar text, or an alias's anchor name: a range of
        std::uint32_t value_size = 0;    // text_
        NodeId first_child = kNone;      // mapping: key, value, key, value...; sequence: items
        NodeId next_sibling = kNone;
        std::uint32_t child_count = 0;
        NodeId target = kNone;  // alias: the anchored node
    };

    // Reads `yaml` up to the end of its first document. A stream without a document (empty,
    // blanks and comments only) loads as a tree without root. When one of the refusals above
    // that libyaml itself would not make fails the load, detail::kSyntax is set in `*rules`.
    static std::variant<YamlTree, ParseError> load(std::string_view yaml,
                                                   std::uint32_t* rules = nullptr);

    NodeId root() const { return root_; }
    const Node& node(NodeId id) const { return nodes_[id]; }
    std::string_view value(NodeId id) const {
        const Node& n = nodes_[id];
        return std::string_view(text_).substr(n.value_offset, n.value_size);
    }
    std::size_t size() const { return nodes_.size(); }

  private:
    friend class YamlTreeBuilder;

    std::vector<Node> nodes_;
    std::string text_;  // scalar values and alias names, back to back
    NodeId root_ = kNone;
};

}  // namespace djinn::manifest
