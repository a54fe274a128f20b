// libFuzzer target: a cron's manifest text to the build the scheduler writes (manifest::parse,
// then plan_build with every driver enabled), checking the plan's invariants: the setup stage
// first, every job in an existing stage, env split at the first '=', driver config is JSON of
// a known driver type.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <variant>

#include "manifest/build_plan.hpp"
#include "manifest/manifest.hpp"

namespace {

[[noreturn]] void invariant_failed(const char* what) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
}

void check_plan(const djinn::manifest::Manifest& m, const djinn::manifest::BuildPlan& plan) {
    if (plan.stages.empty() || !plan.stages[0].name.empty() || plan.stages[0].can_fail) {
        invariant_failed("stage 0 is the setup stage");
    }
    if (plan.stages.size() != m.stages.size() + 1)
        invariant_failed("one stage per listed stage");
    if (plan.jobs.empty() || plan.jobs[0].name != "create-driver") {
        invariant_failed("create-driver comes first");
    }
    if (plan.jobs.size() > 1 + m.sources.size() + m.jobs.size())
        invariant_failed("extra jobs");
    for (const auto& job : plan.jobs) {
        if (job.stage_index >= plan.stages.size())
            invariant_failed("job in a missing stage");
        if (job.name.find_first_of(" \t\n/") != std::string::npos) {
            invariant_failed("job name not slugified");
        }
    }
    if (plan.env.size() != m.env.size())
        invariant_failed("every env entry planned");
    for (const auto& [key, value] : plan.env) {
        if (key.find('=') != std::string::npos)
            invariant_failed("env split at the first '='");
    }
    if (plan.driver_config_json.size() < 2 || plan.driver_config_json.front() != '{' ||
        plan.driver_config_json.back() != '}') {
        invariant_failed("driver config is a JSON object");
    }
    if (plan.driver_type == "qemu" &&
        plan.driver_config_json.find("\"arch\":\"x86_64\"") == std::string::npos) {
        invariant_failed("qemu arch forced to x86_64");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = djinn::manifest::parse(text);
    if (const auto* err = std::get_if<djinn::manifest::ParseError>(&parsed)) {
        if (err->reason.empty())
            invariant_failed("a parse error says why");
        if (err->reason.find('\n') != std::string::npos)
            invariant_failed("reason is one line");
        return 0;
    }
    const auto& m = std::get<djinn::manifest::Manifest>(parsed);
    static const std::set<std::string> all = {"docker", "qemu-x86_64", "ssh", "os"};
    auto planned = djinn::manifest::plan_build(m, all);
    if (const auto* plan = std::get_if<djinn::manifest::BuildPlan>(&planned)) {
        check_plan(m, *plan);
    } else if (std::get<djinn::manifest::Skip>(planned).reason.empty()) {
        invariant_failed("a skip says why");
    }
    (void)djinn::manifest::slug(text);
    return 0;
}
