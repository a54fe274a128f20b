#pragma once
// Translation of a manifest into the rows of one Djinn build (contract section 2), without
// database ids: the store assigns ids and writes them. Pure; thread-safe.
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "manifest/manifest.hpp"

namespace djinn::manifest {

struct PlannedArtifact {
    std::string source;  // path in the guest
    std::string name;    // default: base name of source

    friend bool operator==(const PlannedArtifact&, const PlannedArtifact&) = default;
};

struct PlannedStage {
    std::string name;  // stage 0 is the setup stage: its name is setup_stage_name(number)
    bool can_fail = false;

    friend bool operator==(const PlannedStage&, const PlannedStage&) = default;
};

struct PlannedJob {
    std::size_t stage_index = 0;  // index into BuildPlan::stages
    std::string name;             // slugified as v1.3.0 does ("create-driver", "clone.1", ...)
    std::string commands;         // newline-joined
    std::vector<PlannedArtifact> artifacts;

    friend bool operator==(const PlannedJob&, const PlannedJob&) = default;
};

struct BuildPlan {
    std::string driver_type;         // value of build_drivers.type: "qemu", "docker", "ssh", "os"
    std::string queue_driver;        // entry of the `drivers` config: "qemu-x86_64", "docker"
    std::string driver_config_json;  // JSON of the driver map (qemu: arch forced to x86_64)
    std::vector<std::pair<std::string, std::string>> env;  // manifest env, split at first '='
    Passthrough objects;                                   // object name => destination path
    std::vector<PlannedStage> stages;  // [0] = setup stage, then the manifest's stages in order
    std::vector<PlannedJob> jobs;      // setup jobs first, then the manifest's jobs in order
};

enum class SkipKind { bad_manifest, driver_disabled, unknown_driver };

struct Skip {
    SkipKind kind;
    std::string reason;  // one line, for the log
};

std::string_view to_string(SkipKind k);  // metric label: "bad_manifest", "driver_disabled", ...

// `enabled_drivers` is the `drivers` list of the config ("docker", "qemu-x86_64", ...).
// Skips (expected outcomes, never thrown):
// - unknown_driver: driver.type is not one of ssh, qemu, docker, os (the build_drivers enum),
//   including a manifest without a driver; checked before the config, so nothing outside the
//   enum reaches the database even if the config lists it;
// - driver_disabled: a known type whose queue ("qemu-x86_64" for qemu) is not enabled;
// - bad_manifest: an env entry without '=' (v1.3.0 panics there); the reason names env[i].
// Decisions where v1.3.0 is quirky, reproduced unless noted:
// - a stage listed twice gets two stage rows, and its jobs all go to the last one (v1.3.0 maps
//   name -> last inserted id); default job numbers restart whenever the stage changes from
//   the previous kept job, so they can repeat;
// - a source without a ref gives "git checkout " (git stays on the default branch);
// - not reproduced: v1.3.0 also puts the setup stage's name in its name -> id map, so a
//   manifest stage or job literally named "setup - #<this build's number>" would collide with
//   it; here setup jobs always belong to stage 0 and manifest jobs to manifest stages.
std::variant<BuildPlan, Skip> plan_build(const Manifest& m,
                                         const std::set<std::string>& enabled_drivers);

std::string setup_stage_name(long long build_number);  // "setup - #<n>"

// v1.3.0's job-name slug: trim, [^a-zA-Z0-9.] -> '-' (per code point; an invalid UTF-8 byte
// is one), squeeze '-', trim one '-' at each end, lower-case. May return "" (as v1.3.0).
std::string slug(std::string_view s);

}  // namespace djinn::manifest
