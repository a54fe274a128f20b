#pragma once
// The previous production manifest decoder (yaml-cpp 0.7), kept only as the reference that the
// differential tests compare the libyaml decoder (manifest::parse) against. Same contract as
// manifest::parse: never throws, every failure is a ParseError. Pure; thread-safe.
#include <string_view>
#include <variant>

#include "manifest/manifest.hpp"

namespace djinn::manifest::reference {

std::variant<Manifest, ParseError> parse_with_yamlcpp(std::string_view yaml);

}  // namespace djinn::manifest::reference
