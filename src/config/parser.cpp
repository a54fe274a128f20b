#include "config/parser.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

#include "config/lexer.hpp"
#include "config/source_file.hpp"
#include "config/string_expansion.hpp"

namespace djinn::config {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
               return lower(x) == lower(y);
           });
}

std::string canonical_name(const std::string& path) {
    std::error_code ec;
    auto canonical = std::filesystem::weakly_canonical(path, ec);
    if (ec) {
        return std::filesystem::absolute(path, ec).lexically_normal().string();
    }
    return canonical.string();
}

std::string describe(const Lexeme& lexeme) {
    switch (lexeme.token) {
        case Token::name:
            return "name '" + lexeme.text + "'";
        case Token::literal:
            return std::string(lexeme.kind == ast::Kind::string ? "string" : "value") + " " +
                   (lexeme.kind == ast::Kind::string ? "\"" + lexeme.text + "\"" : lexeme.text);
        default:
            return token_name(lexeme.token);
    }
}

}  // namespace

// One file's tokens; shares the include state of its Parser.
class FileParser {
  public:
    FileParser(Parser& owner, std::string_view text, std::string name)
        : owner_(owner),
          name_(std::move(name)),
          lexer_(text, name_, [this](const ast::Position& pos, const std::string& message) {
              error(pos, message);
          }) {
        next();
    }
    FileParser(const FileParser&) = delete;
    FileParser& operator=(const FileParser&) = delete;

    ast::Node parse_top() {
        ast::Node root;
        root.kind = ast::Kind::block;
        root.pos = ast::Position{name_, 1, 1};
        while (tok_.token != Token::eof) {
            if (tok_.token == Token::semi) {
                next();
                continue;
            }
            if (tok_.token != Token::name) {
                report_unless_bad("expected a name, got " + describe(tok_));
                skip_statement();
                if (tok_.token == Token::rbrace) {
                    next();  // a stray '}' closes nothing here: without this, no progress
                }
                continue;
            }
            if (iequals(tok_.text, "include")) {
                include(root);
            } else if (auto param = parameter()) {
                root.params.push_back(std::move(*param));
            }
            end_statement();
        }
        return root;
    }

  private:
    void next() { tok_ = lexer_.next(); }

    std::string key() const {
        std::string out;
        for (const auto& part : path_) {
            if (!out.empty() && part.front() != '[') {
                out += '.';
            }
            out += part;
        }
        return out;
    }

    void error(const ast::Position& pos, const std::string& message) {
        owner_.errors_->push_back(ConfigError{pos.file, pos.line, pos.column, key(), message});
    }

    // The lexer has already reported a bad token.
    void report_unless_bad(const std::string& message) {
        if (!tok_.bad) {
            error(tok_.pos, message);
        }
    }

    // Skips a `{`/`[` and everything up to its matching close, iteratively.
    void skip_nested() {
        int depth = 0;
        do {
            if (tok_.token == Token::lbrace || tok_.token == Token::lbrack) {
                ++depth;
            } else if (tok_.token == Token::rbrace || tok_.token == Token::rbrack) {
                --depth;
            }
            next();
        } while (depth > 0 && tok_.token != Token::eof);
    }

    // Skips to the end of the statement: a separator or a closing brace at this depth.
    void skip_statement() {
        int depth = 0;
        while (tok_.token != Token::eof) {
            if (depth == 0 && (tok_.token == Token::semi || tok_.token == Token::rbrace)) {
                return;
            }
            if (tok_.token == Token::lbrace || tok_.token == Token::lbrack) {
                ++depth;
            } else if ((tok_.token == Token::rbrace || tok_.token == Token::rbrack) && depth > 0) {
                --depth;
            }
            next();
        }
    }

    // After a statement: a newline, ';', or the end of the file (or of the block).
    void end_statement(bool in_block = false) {
        if (tok_.token == Token::semi) {
            next();
            return;
        }
        if (tok_.token == Token::eof || (in_block && tok_.token == Token::rbrace)) {
            return;
        }
        report_unless_bad(std::string("expected newline or ';'") + (in_block ? " or '}'" : "") +
                          " after the value, got " + describe(tok_));
        skip_statement();
        if (tok_.token == Token::semi || (!in_block && tok_.token == Token::rbrace)) {
            next();
        }
    }

    std::optional<ast::Param> parameter() {
        ast::Param param;
        param.name = ast::Name{tok_.pos, tok_.text};
        path_.push_back(tok_.text);
        next();
        bool ok = true;
        if (tok_.token == Token::name) {
            Lexeme label = tok_;
            next();
            bool is_bool = label.text == "true" || label.text == "false";
            if (is_bool && (tok_.token == Token::semi || tok_.token == Token::rbrace ||
                            tok_.token == Token::eof)) {
                param.value.kind = ast::Kind::boolean;
                param.value.pos = label.pos;
                param.value.text = label.text;
                path_.pop_back();
                return param;
            }
            param.has_label = true;
            param.label = ast::Name{label.pos, label.text};
            path_.back() += "." + label.text;
        }
        param.value = operand(&ok);
        path_.pop_back();
        if (!ok) {
            return std::nullopt;
        }
        return param;
    }

    // Sets *ok to false when there was no usable value.
    ast::Node operand(bool* ok) {
        ast::Node node;
        node.pos = tok_.pos;
        switch (tok_.token) {
            case Token::literal:
                node.kind = tok_.kind;
                node.text = tok_.text;
                if (tok_.bad) {
                    *ok = false;
                }
                next();
                return node;
            case Token::lbrace:
            case Token::lbrack:
                if (depth_ >= kMaxDepth) {
                    // Recursion has a bound: skip the whole value without descending.
                    error(tok_.pos,
                          "nested more than " + std::to_string(kMaxDepth) + " levels deep");
                    skip_nested();
                    *ok = false;
                    return node;
                } else {
                    ++depth_;
                    ast::Node nested = tok_.token == Token::lbrace ? block() : array();
                    --depth_;
                    return nested;
                }
            case Token::name:
                if (tok_.text == "true" || tok_.text == "false") {
                    node.kind = ast::Kind::boolean;
                    node.text = tok_.text;
                } else {
                    error(tok_.pos, "unexpected name '" + tok_.text +
                                        "' where a value belongs (strings need double quotes)");
                    *ok = false;
                }
                next();
                return node;
            default:
                error(tok_.pos, "expected a value, got " + describe(tok_));
                *ok = false;
                return node;
        }
    }

    ast::Node block() {
        ast::Node node;
        node.kind = ast::Kind::block;
        node.pos = tok_.pos;
        next();  // '{'
        for (;;) {
            while (tok_.token == Token::semi) {
                next();
            }
            if (tok_.token == Token::rbrace) {
                next();
                return node;
            }
            if (tok_.token == Token::eof) {
                error(tok_.pos, "expected '}' to close the block opened at " +
                                    std::to_string(node.pos.line) + ":" +
                                    std::to_string(node.pos.column));
                return node;
            }
            if (tok_.token != Token::name) {
                report_unless_bad("expected a name, got " + describe(tok_));
                skip_statement();
                continue;
            }
            if (iequals(tok_.text, "include")) {
                error(tok_.pos, "include is only allowed at the top level");
                skip_statement();
                continue;
            }
            if (auto param = parameter()) {
                node.params.push_back(std::move(*param));
            }
            end_statement(/*in_block=*/true);
        }
    }

    ast::Node array() {
        ast::Node node;
        node.kind = ast::Kind::array;
        node.pos = tok_.pos;
        next();  // '['
        for (;;) {
            if (tok_.token == Token::rbrack) {
                next();
                return node;
            }
            if (tok_.token == Token::eof) {
                error(tok_.pos, "expected ']' to close the array opened at " +
                                    std::to_string(node.pos.line) + ":" +
                                    std::to_string(node.pos.column));
                return node;
            }
            bool ok = true;
            path_.push_back("[" + std::to_string(node.items.size()) + "]");
            ast::Node item = operand(&ok);
            path_.pop_back();
            if (ok) {
                node.items.push_back(std::move(item));
            }
            if (tok_.token == Token::comma) {
                next();
            } else if (tok_.token == Token::rbrack) {
                // closed on the next round
            } else if (tok_.token == Token::semi) {
                error(tok_.pos,
                      "expected ',' or ']': an element followed by a newline needs a comma");
                next();
            } else if (tok_.token != Token::eof) {
                report_unless_bad("expected ',' or ']', got " + describe(tok_));
                next();
            }
        }
    }

    void include(ast::Node& root) {
        path_.emplace_back("include");
        next();  // the keyword
        std::vector<ast::Node> paths;
        bool ok = true;
        if (tok_.token == Token::literal || tok_.token == Token::lbrack) {
            ast::Node value = operand(&ok);
            if (value.kind == ast::Kind::array) {
                paths = std::move(value.items);
            } else if (ok) {
                paths.push_back(std::move(value));
            }
        } else {
            error(tok_.pos, "include takes a string or an array of strings, got " + describe(tok_));
            skip_statement();
        }
        for (const auto& path : paths) {
            if (path.kind != ast::Kind::string) {
                error(path.pos, std::string("include takes strings, got ") + ast::kind_name(path));
                continue;
            }
            include_file(root, path);
        }
        path_.pop_back();
    }

    void include_file(ast::Node& root, const ast::Node& path_node) {
        ExpandedString expanded = expand_string(path_node.text, /*backslash_escapes=*/true);
        if (!expanded.error.empty()) {
            error(path_node.pos, expanded.error);
            return;
        }
        std::filesystem::path target(expanded.value);
        if (target.is_relative()) {
            target = (std::filesystem::path(name_).parent_path() / target).lexically_normal();
        }
        const std::string file = target.string();
        const std::string canonical = canonical_name(file);
        auto& stack = owner_.include_stack_;
        if (std::find(stack.begin(), stack.end(), canonical) != stack.end()) {
            std::string chain;
            auto from = std::find(stack.begin(), stack.end(), canonical);
            for (auto it = from; it != stack.end(); ++it) {
                chain += *it + " -> ";
            }
            error(path_node.pos, "include cycle: " + chain + canonical);
            return;
        }
        for (const auto& [seen, includer] : owner_.included_) {
            if (seen == canonical) {
                error(path_node.pos, file + " is already included from " + includer);
                return;
            }
        }
        auto read = read_source_file(file);
        if (auto* e = std::get_if<SourceFileError>(&read)) {
            error(path_node.pos, "cannot read " + file + ": " + e->reason);
            return;
        }
        const std::string text = std::move(std::get<std::string>(read));
        owner_.included_.emplace_back(canonical, name_);
        owner_.files_.push_back(file);
        stack.push_back(canonical);
        FileParser child(owner_, text, file);
        ast::Node included = child.parse_top();
        stack.pop_back();
        for (auto& param : included.params) {
            root.params.push_back(std::move(param));
        }
    }

    Parser& owner_;
    std::string name_;
    Lexer lexer_;
    Lexeme tok_;
    std::vector<std::string> path_;
    int depth_ = 0;
    static constexpr int kMaxDepth = 64;
};

Parser::Parser(std::vector<ConfigError>* errors) : errors_(errors) {}

ast::Node Parser::parse(std::string_view text, const std::string& name) {
    files_.push_back(name);
    const std::string canonical = canonical_name(name);
    include_stack_.push_back(canonical);
    included_.emplace_back(canonical, name);
    FileParser parser(*this, text, name);
    ast::Node root = parser.parse_top();
    include_stack_.pop_back();
    return root;
}

}  // namespace djinn::config
