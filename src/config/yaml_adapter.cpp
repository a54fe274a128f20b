#include "config/yaml_adapter.hpp"

#include <yaml-cpp/yaml.h>

#include "config/literals.hpp"

namespace djinn::config {
namespace {

ast::Position position(const YAML::Mark& mark, const std::string& file,
                       const ast::Position& fallback) {
    if (mark.line < 0 || mark.column < 0) {
        return fallback;  // yaml-cpp has no place for nodes it made up (empty values)
    }
    return ast::Position{file, mark.line + 1, mark.column + 1};
}

ast::Kind scalar_kind(const std::string& text) {
    if (text == "true" || text == "false") {
        return ast::Kind::boolean;
    }
    if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
        return ast::Kind::null;
    }
    const char first = text.front();
    if ((first >= '0' && first <= '9') || first == '-' || first == '+') {
        switch (classify_number(text)) {
            case NumberShape::integer:
                return ast::Kind::integer;
            case NumberShape::floating:
                return ast::Kind::floating;
            case NumberShape::duration:
                return ast::Kind::duration;
            case NumberShape::size:
                return ast::Kind::size;
            case NumberShape::invalid:
                break;
        }
    }
    return ast::Kind::string;
}

// yaml-cpp resolves aliases into shared nodes, so `a: &a [*a]` is a cycle and nested aliases
// (billion laughs) expand exponentially: conversion is bounded in depth and in nodes made.
// A scheduler config has a few dozen values.
constexpr int kMaxDepth = 64;
constexpr std::size_t kMaxNodes = 100'000;

struct TooComplex {
    YAML::Mark mark;
    std::string message;
};

// Converts `node` (read only through const references: operator[] on a non-const node
// would insert).
class Converter {
  public:
    explicit Converter(const std::string& file) : file_(file) {}

    ast::Node convert(const YAML::Node& node, const ast::Position& fallback) {
        if (depth_ >= kMaxDepth) {
            throw TooComplex{node.Mark(), "nested more than " + std::to_string(kMaxDepth) +
                                              " levels deep (an alias that contains itself?)"};
        }
        if (++nodes_ > kMaxNodes) {
            throw TooComplex{node.Mark(), "more than " + std::to_string(kMaxNodes) +
                                              " values (aliases expanding without bound?)"};
        }
        ++depth_;
        ast::Node out = convert_node(node, fallback);
        --depth_;
        return out;
    }

  private:
    ast::Node convert_node(const YAML::Node& node, const ast::Position& fallback) {
        const std::string& file = file_;
        ast::Node out;
        out.yaml = true;
        out.pos = position(node.Mark(), file, fallback);
        switch (node.Type()) {
            case YAML::NodeType::Map:
                out.kind = ast::Kind::block;
                // Copies: yaml-cpp's iterators hand out temporaries (it->first would dangle).
                for (const auto& entry : node) {
                    const YAML::Node key = entry.first;
                    const YAML::Node value = entry.second;
                    ast::Param param;
                    param.name.pos = position(key.Mark(), file, out.pos);
                    if (!key.IsScalar()) {
                        // Not a name the decoder knows: it is reported as an unknown key.
                        param.name.text = "<non-scalar key>";
                    } else {
                        param.name.text = key.Scalar();
                    }
                    param.value = convert(value, param.name.pos);
                    out.params.push_back(std::move(param));
                }
                break;
            case YAML::NodeType::Sequence:
                out.kind = ast::Kind::array;
                for (const auto& item : node) {
                    const YAML::Node element = item;
                    out.items.push_back(convert(element, out.pos));
                }
                break;
            case YAML::NodeType::Scalar: {
                out.text = node.Scalar();
                const std::string& tag = node.Tag();
                // "!" marks a quoted (non-plain) scalar; !!str asks for a string explicitly.
                if (tag == "!" || tag == "tag:yaml.org,2002:str") {
                    out.kind = ast::Kind::string;
                } else {
                    out.kind = scalar_kind(out.text);
                    out.yaml_plain = true;
                }
                break;
            }
            case YAML::NodeType::Null:
            case YAML::NodeType::Undefined:
                // yaml-cpp places an empty value where the next token starts (the next line):
                // the key is the better place to point at.
                out.pos = fallback;
                out.kind = ast::Kind::null;
                break;
        }
        return out;
    }

    const std::string& file_;
    int depth_ = 0;
    std::size_t nodes_ = 0;
};

}  // namespace

ast::Node YamlAdapter::parse(const std::string& text, const std::string& name) {
    const ast::Position file_pos{name, 1, 1};
    try {
        const YAML::Node root = YAML::Load(text);
        ast::Node tree = Converter(name).convert(root, file_pos);
        if (tree.kind == ast::Kind::null) {
            // An empty document is an empty configuration, as an empty scheduler.conf is.
            tree.kind = ast::Kind::block;
        }
        return tree;
    } catch (const YAML::Exception& e) {
        ast::Position pos = position(e.mark, name, file_pos);
        errors_->push_back(ConfigError{pos.file, pos.line, pos.column, "", e.msg});
    } catch (const TooComplex& e) {
        ast::Position pos = position(e.mark, name, file_pos);
        errors_->push_back(ConfigError{pos.file, pos.line, pos.column, "", e.message});
    }
    ast::Node empty;
    empty.kind = ast::Kind::block;
    empty.yaml = true;
    empty.pos = file_pos;
    return empty;
}

}  // namespace djinn::config
