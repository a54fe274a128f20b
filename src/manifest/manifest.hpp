#pragma once
// A Djinn build manifest (YAML), decoded as Djinn v1.3.0 decodes it (manifest/manifest.go,
// runner/passthrough.go). Pure; thread-safe (no shared state).
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

// Decodes with gopkg.in/yaml.v2 (v2.2.8) semantics; manifest.cpp lists the rules. In short:
// unknown keys are ignored; other scalar types become their text; null is the zero value;
// merge keys and anchors work; a shape mismatch anywhere, invalid YAML, invalid UTF-8 or a
// control character is a ParseError (yaml-cpp's exceptions never escape).
// An empty, comment-only or null document is an empty Manifest, not an error: it has no
// driver, so plan_build skips it as unknown_driver, which is what v1.3.0 does with a manifest
// that names no driver.
std::variant<Manifest, ParseError> parse(std::string_view yaml);

}  // namespace djinn::manifest
