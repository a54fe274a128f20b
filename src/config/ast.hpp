#pragma once
// The syntax tree shared by both config languages: Djinn's own (parser.hpp) and YAML
// (yaml_adapter.hpp) are both turned into these nodes, so one Decoder types them.
// Thread safety: plain values.
#include <string>
#include <vector>

namespace djinn::config::ast {

struct Position {
    std::string file;
    int line = 0;    // 1-based; 0 when unknown
    int column = 0;  // 1-based, in characters (code points)
};

enum class Kind {
    string,    // Djinn: raw text between the quotes (escapes not yet applied)
    integer,   // text as written, e.g. "-12"
    floating,  // "1.5"
    boolean,   // "true" / "false"
    duration,  // "1h30m"
    size,      // "1KB"
    block,     // `{ … }` / a YAML mapping: `params`
    array,     // `[ … ]` / a YAML sequence: `items`
    null,      // YAML only: `~`, `null` or nothing
};

struct Param;

struct Node {
    Position pos;
    Kind kind = Kind::null;
    std::string text;  // literals only
    // YAML only. `yaml` changes how strings are read (no backslash escapes; a scalar
    // that was not quoted may be read as a string whatever it looks like).
    bool yaml = false;
    bool yaml_plain = false;    // an unquoted YAML scalar
    std::vector<Node> items;    // Kind::array
    std::vector<Param> params;  // Kind::block
};

struct Name {
    Position pos;
    std::string text;
};

// `name [label] value`, e.g. `log info "/dev/stdout"`.
struct Param {
    Name name;
    bool has_label = false;
    Name label;
    Node value;
};

// A short word for messages: "string", "integer", "block", ...
const char* kind_name(const Node& node);

}  // namespace djinn::config::ast
