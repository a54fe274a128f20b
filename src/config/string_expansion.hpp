#pragma once
// The value of a config string: backslash escapes (Djinn syntax only) and ${VAR} from the
// environment.
//
// Djinn (andrewpillar/config with the Envvars option) replaces an unset variable with the
// empty string, without error; so does this. The names of unset variables are returned so
// the loader can warn about them. A `${` without its `}` is an error here (Djinn silently
// drops the rest of the string).
//
// Escapes: a backslash makes the next character literal: `\"` is a quote, `\\` a
// backslash, `\$` a dollar sign that starts no variable, `\n` the letter n (Djinn has no
// escape sequences either; it drops every backslash, so `\\` is nothing there).
//
// Thread safety: reads the environment with getenv; do not call while another thread
// calls setenv. Failure: `error` set, `value` unspecified.
#include <string>
#include <string_view>
#include <vector>

namespace djinn::config {

struct ExpandedString {
    std::string value;
    std::string error;                    // empty when it worked
    std::vector<std::string> unset_vars;  // referenced but not set: expanded to ""
};

ExpandedString expand_string(std::string_view raw, bool backslash_escapes);

}  // namespace djinn::config
