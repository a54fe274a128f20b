#include "config/ast.hpp"

namespace djinn::config::ast {

const char* kind_name(const Node& node) {
    switch (node.kind) {
        case Kind::string:
            return "string";
        case Kind::integer:
            return "integer";
        case Kind::floating:
            return "float";
        case Kind::boolean:
            return "boolean";
        case Kind::duration:
            return "duration";
        case Kind::size:
            return "size";
        case Kind::block:
            return node.yaml ? "mapping" : "block";
        case Kind::array:
            return node.yaml ? "sequence" : "array";
        case Kind::null:
            return "null";
    }
    return "value";
}

}  // namespace djinn::config::ast
