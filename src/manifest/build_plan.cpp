#include "manifest/build_plan.hpp"

#include "common/utf8.hpp"

#include <algorithm>
#include <array>
#include <map>

#include "common/go_json.hpp"

namespace djinn::manifest {
namespace {

// The values of the build_drivers.type enum (driver.driversMap in v1.3.0). Anything else must
// never reach the database.
constexpr std::array<std::string_view, 4> kKnownDrivers = {"ssh", "qemu", "docker", "os"};

bool is_known_driver(std::string_view type) {
    return std::find(kKnownDrivers.begin(), kKnownDrivers.end(), type) != kKnownDrivers.end();
}

Skip skip(SkipKind kind, std::string reason) {
    return Skip{kind, std::move(reason)};
}

}  // namespace

std::string_view to_string(SkipKind k) {
    switch (k) {
        case SkipKind::bad_manifest:
            return "bad_manifest";
        case SkipKind::driver_disabled:
            return "driver_disabled";
        case SkipKind::unknown_driver:
            return "unknown_driver";
    }
    return "bad_manifest";  // unreachable: every enumerator is handled above
}

std::string setup_stage_name(long long build_number) {
    return "setup - #" + std::to_string(build_number);
}

std::string slug(std::string_view s) {
    // v1.3.0: TrimSpace, then every rune outside [a-zA-Z0-9.] becomes '-', runs of '-' become
    // one, one leading and one trailing '-' go, then lower-case. TrimSpace needs no code of its
    // own: spaces turn into a '-' that the trimming removes anyway. An invalid UTF-8 byte is
    // one rune (U+FFFD) to Go's regexp, so it becomes one '-'.
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        const bool keep =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.';
        std::size_t width = 1;
        if (c >= 0x80) {
            char32_t cp = 0;
            width = std::max<std::size_t>(utf8_decode(s, i, cp), 1);
        }
        if (keep) {
            out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
        } else if (out.empty() || out.back() != '-') {
            out.push_back('-');
        }
        i += width;
    }
    if (!out.empty() && out.back() == '-') {
        out.pop_back();
    }
    if (!out.empty() && out.front() == '-') {
        out.erase(out.begin());
    }
    return out;
}

std::variant<BuildPlan, Skip> plan_build(const Manifest& m,
                                         const std::set<std::string>& enabled_drivers) {
    BuildPlan plan;

    // Driver: as Store.Create/Submit, but a driver Djinn knows and that is not enabled is
    // "disabled" for qemu too (v1.3.0 looks up "qemu-x86_64" in driversMap and calls it
    // unknown).
    std::map<std::string, std::string> config(m.driver.begin(), m.driver.end());
    plan.driver_type = m.driver_value("type");
    plan.queue_driver = plan.driver_type;
    if (plan.driver_type == "qemu") {
        // Djinn only runs x86_64 guests: the arch is forced, whatever the manifest says.
        config["arch"] = "x86_64";
        plan.queue_driver = "qemu-x86_64";
    }
    if (!is_known_driver(plan.driver_type)) {
        return skip(SkipKind::unknown_driver,
                    plan.driver_type.empty() ? "manifest names no driver type"
                                             : "unknown driver type \"" + plan.driver_type + "\"");
    }
    if (enabled_drivers.count(plan.queue_driver) == 0) {
        return skip(SkipKind::driver_disabled,
                    "driver \"" + plan.queue_driver + "\" is not in the drivers config");
    }
    // build_drivers.config: json.Marshal of the map (v1.3.0's json.Encoder adds a "\n" that the
    // json column keeps; it is left out here, which every JSON reader ignores).
    plan.driver_config_json = go_json_object(
        std::vector<std::pair<std::string, std::string>>(config.begin(), config.end()));

    // v1.3.0 indexes parts[1] of SplitN(env, "=", 2) and panics without '=': refuse instead.
    plan.env.reserve(m.env.size());
    for (std::size_t i = 0; i < m.env.size(); ++i) {
        const std::string& entry = m.env[i];
        const auto eq = entry.find('=');
        if (eq == std::string::npos) {
            return skip(SkipKind::bad_manifest,
                        "env[" + std::to_string(i) + "] has no '=' (KEY=VALUE expected)");
        }
        plan.env.emplace_back(entry.substr(0, eq), entry.substr(eq + 1));
    }

    plan.objects = m.objects;

    // Stages: setup first (named later, when the build number is known), then the manifest's.
    // A repeated stage name gives a stage row each time, as in v1.3.0, but jobs go to the last
    // one: v1.3.0 maps name -> id and the last insert wins.
    plan.stages.reserve(1 + m.stages.size());
    plan.stages.push_back(PlannedStage{});
    std::map<std::string, std::size_t> stage_index;
    for (const std::string& name : m.stages) {
        const bool can_fail = std::find(m.allow_failures.begin(), m.allow_failures.end(), name) !=
                              m.allow_failures.end();
        stage_index[name] = plan.stages.size();
        plan.stages.push_back(PlannedStage{name, can_fail});
    }

    plan.jobs.reserve(1 + m.sources.size() + m.jobs.size());  // jobs of unlisted stages dropped
    plan.jobs.push_back(PlannedJob{0, "create-driver", "", {}});
    for (std::size_t i = 0; i < m.sources.size(); ++i) {
        const Source& src = m.sources[i];
        // An absent ref gives "git checkout " as in v1.3.0: git then stays on the default
        // branch and exits 0.
        plan.jobs.push_back(PlannedJob{0,
                                       "clone." + std::to_string(i + 1),
                                       "mkdir -p " + src.dir + "\ngit clone -q " + src.url + " " +
                                           src.dir + "\ncd " + src.dir + "\ngit checkout " +
                                           src.ref,
                                       {}});
    }

    // Default names count jobs per run of consecutive same-stage jobs (v1.3.0 restarts n when
    // the stage differs from the previous kept job's), so a stage split in two runs can repeat
    // a name; kept as is. Like v1.3.0 the "previous stage" starts as "" with n = 1, so a first
    // job in a stage named "" is number 2.
    std::string current_stage;
    long long number = 1;
    for (const Job& job : m.jobs) {
        const auto found = stage_index.find(job.stage);
        if (found == stage_index.end()) {
            continue;  // a job whose stage is not listed is dropped, as in v1.3.0
        }
        if (job.stage != current_stage) {
            current_stage = job.stage;
            number = 1;
        } else {
            ++number;
        }
        PlannedJob planned;
        planned.stage_index = found->second;
        planned.name = slug(job.name.empty() ? job.stage + "." + std::to_string(number) : job.name);
        std::size_t commands_size = job.commands.size();  // the newlines, one too many
        for (const std::string& command : job.commands) {
            commands_size += command.size();
        }
        planned.commands.reserve(commands_size);
        for (std::size_t c = 0; c < job.commands.size(); ++c) {
            if (c > 0) {
                planned.commands.push_back('\n');
            }
            planned.commands += job.commands[c];
        }
        planned.artifacts.reserve(job.artifacts.size());
        for (const auto& [source, name] : job.artifacts) {
            planned.artifacts.push_back(PlannedArtifact{source, name});
        }
        plan.jobs.push_back(std::move(planned));
    }
    return plan;
}

}  // namespace djinn::manifest
