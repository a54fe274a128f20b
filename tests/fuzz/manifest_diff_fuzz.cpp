// libFuzzer target: the libyaml manifest decoder (manifest::parse) against the yaml-cpp decoder
// it replaced (tests/unit/manifest_yamlcpp_reference.cpp). Both must agree (both a ParseError,
// or equal Manifests, and then equal plans) unless the disagreement is documented: the two YAML
// parsers read different events (libyaml, the C original of yaml.v2, is the reference), or the
// decode applied one of the yaml.v2 rules the reference lacks (manifest::detail::Rule). Anything
// else aborts with both outcomes printed.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <variant>

#include "manifest/build_plan.hpp"
#include "manifest/manifest.hpp"
#include "manifest_event_streams.hpp"
#include "manifest_yamlcpp_reference.hpp"

namespace {

using djinn::manifest::BuildPlan;
using djinn::manifest::Manifest;
using djinn::manifest::ParseError;
using djinn::manifest::Skip;

[[noreturn]] void disagreement(std::string_view text, const std::string& what) {
    std::fprintf(stderr, "manifest decoders disagree: %s\ninput (%zu bytes): %.*s\n", what.c_str(),
                 text.size(), static_cast<int>(text.size() > 2000 ? 2000 : text.size()),
                 text.data());
    std::abort();
}

bool same_plan(const std::variant<BuildPlan, Skip>& a, const std::variant<BuildPlan, Skip>& b) {
    if (a.index() != b.index()) {
        return false;
    }
    if (const auto* sa = std::get_if<Skip>(&a)) {
        return sa->kind == std::get<Skip>(b).kind;
    }
    const auto& pa = std::get<BuildPlan>(a);
    const auto& pb = std::get<BuildPlan>(b);
    return pa.driver_type == pb.driver_type && pa.queue_driver == pb.queue_driver &&
           pa.driver_config_json == pb.driver_config_json && pa.env == pb.env &&
           pa.objects == pb.objects && pa.stages == pb.stages && pa.jobs == pb.jobs;
}

// Disagreements excused, per documented reason; printed at exit (the fuzz figures).
std::map<std::string, long>& excused() {
    // Never destroyed: print_excused() runs from atexit, after static destructors may have run.
    static auto* counts = new std::map<std::string, long>;
    return *counts;
}

void print_excused() {
    long total = 0;
    for (const auto& [why, n] : excused()) {
        std::fprintf(stderr, "manifest_diff: %ld documented disagreements: %s\n", n, why.c_str());
        total += n;
    }
    std::fprintf(stderr, "manifest_diff: %ld documented disagreements in all\n", total);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    std::atexit(print_excused);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto traced = djinn::manifest::detail::parse_traced(text);
    const auto reference = djinn::manifest::reference::parse_with_yamlcpp(text);
    if (const auto* err = std::get_if<ParseError>(&traced.result)) {
        if (err->reason.empty() || err->reason.find('\n') != std::string::npos) {
            disagreement(text, "a ParseError's reason must be one non-empty line");
        }
    }
    namespace t = djinn::manifest::testing;
    if (!t::same_outcome(traced.result, reference)) {
        const std::string why = t::documented_difference(text, traced.rules);
        if (why.empty()) {
            disagreement(text, "libyaml " + t::describe(traced.result) + "\nyaml-cpp " +
                                   t::describe(reference));
        }
        ++excused()[why];
        return 0;
    }
    if (const auto* m = std::get_if<Manifest>(&traced.result)) {
        static const std::set<std::string> all = {"docker", "qemu-x86_64", "ssh", "os"};
        if (!same_plan(djinn::manifest::plan_build(*m, all),
                       djinn::manifest::plan_build(std::get<Manifest>(reference), all))) {
            disagreement(text, "equal manifests, different plans");
        }
    }
    return 0;
}
