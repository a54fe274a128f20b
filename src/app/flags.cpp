#include "app/flags.hpp"

namespace djinn::app {

std::variant<Flags, FlagError> parse_flags(const std::vector<std::string>& args) {
    Flags f;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string a = args[i];
        if (a == "--") {
            if (i + 1 < args.size())
                return FlagError{"unexpected argument: " + args[i + 1]};
            break;
        }
        if (a.size() < 2 || a[0] != '-')
            return FlagError{"unexpected argument: " + a};
        std::string name = a.substr(a[1] == '-' ? 2 : 1);
        std::string value;
        bool has_value = false;
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            has_value = true;
        }
        auto boolean = [&](bool& target) -> std::variant<std::monostate, FlagError> {
            if (!has_value || value == "true" || value == "1") {
                target = true;
            } else if (value == "false" || value == "0") {
                target = false;
            } else {
                return FlagError{"invalid boolean value \"" + value + "\" for flag -" + name};
            }
            return std::monostate{};
        };
        std::variant<std::monostate, FlagError> r;
        if (name == "config") {
            if (!has_value) {
                if (i + 1 >= args.size())
                    return FlagError{"flag needs an argument: -config"};
                value = args[++i];
            }
            f.config = value;
        } else if (name == "version") {
            r = boolean(f.version);
        } else if (name == "check-config") {
            r = boolean(f.check_config);
        } else if (name == "once") {
            r = boolean(f.once);
        } else if (name == "dry-run") {
            r = boolean(f.dry_run);
        } else if (name == "h" || name == "help") {
            f.help = true;
        } else {
            return FlagError{"flag provided but not defined: -" + name};
        }
        if (auto* e = std::get_if<FlagError>(&r))
            return *e;
    }
    if (f.dry_run && !f.once)
        return FlagError{"-dry-run needs -once"};
    return f;
}

std::string usage(const std::string& program) {
    return "Usage of " + program +
           ":\n"
           "  -config string\n"
           "        the config file to use (default \"djinn-scheduler.conf\"); *.yaml/*.yml is "
           "YAML\n"
           "  -version\n"
           "        show the version and exit\n"
           "  -check-config\n"
           "        parse and validate the config, print every problem, exit 0 or 1\n"
           "  -once\n"
           "        run one pass (dispatch everything due now) and exit\n"
           "  -dry-run\n"
           "        with -once: print what would be dispatched, write nothing\n";
}

}  // namespace djinn::app
