#pragma once
// Test support for the differential tests of the manifest decoders: the first document of a
// YAML text as a normalized event stream, as libyaml reads it and as yaml-cpp reads it, and the
// judgement whether a disagreement of the two decoders is one of the documented differences.
// Pure; thread-safe.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "manifest/manifest.hpp"

namespace djinn::manifest::testing {

// Events of the first document, one record per event: kind, tag (non-specific tags as yaml-cpp
// names them: "?" plain, "!" quoted), anchor number (definitions counted from 1, an alias names
// the latest one), value; a plain untagged null (`~`, `null`, `Null`, `NULL`, empty) as a null
// event, as yaml-cpp reports it. nullopt when the parser fails (for yaml-cpp also when the text
// is not UTF-8 without control characters, which the reference decoder checks first).
std::optional<std::string> libyaml_events(std::string_view yaml);
std::optional<std::string> yamlcpp_events(std::string_view yaml);

// Equal outcomes: both ParseErrors, or equal Manifests.
bool same_outcome(const std::variant<Manifest, ParseError>& a,
                  const std::variant<Manifest, ParseError>& b);

// Why the libyaml decoder (traced) and the yaml-cpp reference may disagree on `yaml` by
// design: "reader" when the text has invalid UTF-8 or a control character somewhere (the
// reference refuses it wherever it is, libyaml only where yaml.v2's reader gets to: not past
// 512 bytes after the first document); "parser" when the two YAML parsers read different
// events (libyaml, i.e. yaml.v2, is the reference there); else the names of the detail::Rule
// bits the decode applied; "" when nothing explains it (a bug).
std::string documented_difference(std::string_view yaml, std::uint32_t rules);

// "outcome: manifest summary" or "ParseError: reason", for failure messages.
std::string describe(const std::variant<Manifest, ParseError>& r);

}  // namespace djinn::manifest::testing
