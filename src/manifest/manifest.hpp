#pragma once
// A Djinn build manifest (YAML), decoded as Djinn v1.3.0 decodes it (manifest/manifest.go,
// runner/passthrough.go). Pure; thread-safe (no shared state).
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace djinn::manifest {

struct Source {
    std::string url;
    std::string ref;  // empty when the manifest gives none (v1.3.0 leaves it empty)
    std::string dir;

    friend bool operator==(const Source&, const Source&) = default;
};

// `src => dst` entries in manifest order; a repeated src keeps its first position and its last
// destination (Go map semantics, deterministic order).
using Passthrough = std::vector<std::pair<std::string, std::string>>;

struct Job {
    std::string stage;
    std::string name;
    std::vector<std::string> commands;
    Passthrough artifacts;

    friend bool operator==(const Job&, const Job&) = default;
};

struct Manifest {
    std::string namespace_path;
    std::vector<std::pair<std::string, std::string>> driver;  // sorted by key, unique keys
    std::vector<std::string> env;
    Passthrough objects;
    std::vector<Source> sources;
    std::vector<std::string> stages;
    std::vector<std::string> allow_failures;
    std::vector<Job> jobs;

    // driver["type"], or "" when absent.
    std::string driver_value(std::string_view key) const;

    friend bool operator==(const Manifest&, const Manifest&) = default;
};

struct ParseError {
    std::string reason;  // one line, e.g. "line 3, column 5: jobs must be a list"
};

// Decodes with gopkg.in/yaml.v2 (v2.2.8) semantics, reading the text with libyaml (the C
// library yaml.v2 was ported from); manifest.cpp lists the rules. In short: unknown keys are
// ignored; other scalar types become their text; null is the zero value; merge keys and anchors
// work, alias expansion is bounded as in yaml.v2; a shape mismatch anywhere, invalid YAML,
// invalid UTF-8 or a control character is a ParseError. Nothing is thrown (std::bad_alloc
// aside): libyaml's errors become ParseErrors "line L, column C: ...".
// An empty, comment-only or null document is an empty Manifest, not an error: it has no
// driver, so plan_build skips it as unknown_driver, which is what v1.3.0 does with a manifest
// that names no driver.
std::variant<Manifest, ParseError> parse(std::string_view yaml);

namespace detail {

// The decisions where this decoder (yaml.v2's rules, libyaml's reading) deliberately differs
// from the yaml-cpp decoder it replaced. parse_traced() reports which of them a decode took, so
// that the differential tests can tell an intended difference from a bug; manifest.cpp and
// yaml_tree.cpp explain each.
enum Rule : std::uint32_t {
    kTagResolution =
        1u << 0,  // an explicit !!bool/!!int/!!float/!!null/!!timestamp/!!binary checked
    kNullSpelling = 1u << 1,       // `Null`/`NULL` into objects/artifacts: entries kept
    kNullIntoStruct = 1u << 2,     // "null"/"~"/!!null where a source or passthrough was expected
    kMergeOfNonMapping = 1u << 3,  // `<<` of an alias to a list or scalar
    kAliasKey = 1u << 4,           // an alias to `<<` used as a key: an ordinary key
    kAliasRatio = 1u << 5,         // yaml.v2's bound on alias expansion
    kAliasCycle = 1u << 6,         // "anchor value contains itself", by alias as yaml.v2 tracks it
    kSyntax = 1u << 7,             // a refusal of YamlTree where libyaml 0.2.5 and yaml.v2 differ
    kMergeKeyBangTag = 1u << 8,    // `! <<` (the non-specific tag) as a key: a merge key
};

struct Traced {
    std::variant<Manifest, ParseError> result;
    std::uint32_t rules = 0;  // Rule bits
};

// parse(), also saying which Rules the decode applied. For the differential tests.
Traced parse_traced(std::string_view yaml);

}  // namespace detail

}  // namespace djinn::manifest
