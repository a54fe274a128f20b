#pragma once
// Command line, Go flag style like the original: -flag and --flag, `-flag value` and
// `-flag=value`; booleans take no value (or =true/=false). Pure; thread-safe.
#include <string>
#include <variant>
#include <vector>

namespace djinn::app {

struct Flags {
    std::string config = "djinn-scheduler.conf";
    bool version = false;
    bool check_config = false;
    bool once = false;
    bool dry_run = false;
    bool help = false;
};

struct FlagError {
    std::string message;
};

std::variant<Flags, FlagError> parse_flags(const std::vector<std::string>& args);
std::string usage(const std::string& program);

}  // namespace djinn::app
