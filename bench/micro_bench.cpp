// Micro-benchmarks of the scheduler's pure, per-cron work: manifest decoding (libyaml, and the
// yaml-cpp decoder it replaced for comparison) and build planning,
// the curlyq message (gob + msgpack), next-run arithmetic, artifact hashes, PostgreSQL array
// literals. Run: build-bench/bench/djinn_micro_bench (see BENCHMARKS.md).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <variant>

#include "common/clock.hpp"
#include "common/hashids.hpp"
#include "manifest/build_plan.hpp"
#include "manifest/manifest.hpp"
#include "manifest_yamlcpp_reference.hpp"
#include "queue/curlyq_codec.hpp"
#include "schedule/schedule.hpp"
#include "store/pg_array.hpp"

namespace {

// The shape bench/run.sh seeds: 2 sources, 2 stages, 3 jobs, an artifact, 2 env entries.
constexpr const char* kManifest = R"(driver:
  type: docker
  image: golang:1.21
  workspace: /go/src/example.com/app
env:
- CGO_ENABLED=0
- GOFLAGS=-mod=vendor
sources:
- https://github.com/example/app.git main => app
- https://github.com/example/tools.git v1.2
stages:
- test
- build
jobs:
- stage: test
  commands:
  - go vet ./...
  - go test -cover ./...
- stage: test
  name: lint
  commands:
  - golangci-lint run
- stage: build
  commands:
  - go build -o bin/app ./cmd/app
  artifacts:
  - bin/app
)";

const std::set<std::string> kDrivers{"docker", "qemu-x86_64"};

// A large manifest (about 90 KB): 5000 commands in one job, then 500 one-line jobs, as in
// tests/integration/hostile_data_test.cpp.
std::string large_manifest() {
    std::string m =
        "driver: {type: docker, image: alpine, workspace: /}\nstages: [a, b]\n"
        "jobs:\n- stage: a\n  commands:\n";
    for (int i = 0; i < 5000; ++i) {
        m += "  - step " + std::to_string(i) + "\n";
    }
    for (int j = 0; j < 500; ++j) {
        m += "- {stage: b, commands: [job " + std::to_string(j) + "]}\n";
    }
    return m;
}

// manifest::parse, libyaml's event parser with yaml.v2's rules.
void BM_ManifestParse(benchmark::State& state) {
    for (auto _ : state) {
        auto m = djinn::manifest::parse(kManifest);
        benchmark::DoNotOptimize(m);
    }
}
BENCHMARK(BM_ManifestParse);

// The yaml-cpp decoder it replaced (tests/unit/manifest_yamlcpp_reference.cpp).
void BM_ManifestParseYamlCpp(benchmark::State& state) {
    for (auto _ : state) {
        auto m = djinn::manifest::reference::parse_with_yamlcpp(kManifest);
        benchmark::DoNotOptimize(m);
    }
}
BENCHMARK(BM_ManifestParseYamlCpp);

void BM_ManifestParseLarge(benchmark::State& state) {
    const std::string text = large_manifest();
    for (auto _ : state) {
        auto m = djinn::manifest::parse(text);
        benchmark::DoNotOptimize(m);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(text.size()));
}
BENCHMARK(BM_ManifestParseLarge)->Unit(benchmark::kMicrosecond);

void BM_ManifestParseLargeYamlCpp(benchmark::State& state) {
    const std::string text = large_manifest();
    for (auto _ : state) {
        auto m = djinn::manifest::reference::parse_with_yamlcpp(text);
        benchmark::DoNotOptimize(m);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(text.size()));
}
BENCHMARK(BM_ManifestParseLargeYamlCpp)->Unit(benchmark::kMicrosecond);

void BM_PlanBuild(benchmark::State& state) {
    auto parsed = djinn::manifest::parse(kManifest);
    const auto& m = std::get<djinn::manifest::Manifest>(parsed);
    for (auto _ : state) {
        auto plan = djinn::manifest::plan_build(m, kDrivers);
        benchmark::DoNotOptimize(plan);
    }
}
BENCHMARK(BM_PlanBuild);

void BM_ParseAndPlan(benchmark::State& state) {
    for (auto _ : state) {
        auto parsed = djinn::manifest::parse(kManifest);
        auto plan =
            djinn::manifest::plan_build(std::get<djinn::manifest::Manifest>(parsed), kDrivers);
        benchmark::DoNotOptimize(plan);
    }
}
BENCHMARK(BM_ParseAndPlan);

void BM_ParseAndPlanYamlCpp(benchmark::State& state) {
    for (auto _ : state) {
        auto parsed = djinn::manifest::reference::parse_with_yamlcpp(kManifest);
        auto plan =
            djinn::manifest::plan_build(std::get<djinn::manifest::Manifest>(parsed), kDrivers);
        benchmark::DoNotOptimize(plan);
    }
}
BENCHMARK(BM_ParseAndPlanYamlCpp);

// A fixed number of iterations, for instruction counts that do not depend on this machine's
// load (BENCHMARKS.md): valgrind --tool=callgrind --toggle-collect='*ParseAndPlanCounted*'
// djinn_micro_bench --benchmark_filter='ParseAndPlanCounted', then Ir / 200.
void BM_ParseAndPlanCounted(benchmark::State& state) {
    BM_ParseAndPlan(state);
}
BENCHMARK(BM_ParseAndPlanCounted)->Iterations(200);

void BM_ParseAndPlanYamlCppCounted(benchmark::State& state) {
    BM_ParseAndPlanYamlCpp(state);
}
BENCHMARK(BM_ParseAndPlanYamlCppCounted)->Iterations(200);

void BM_GobPayload(benchmark::State& state) {
    std::int64_t id = state.range(0);
    for (auto _ : state) {
        auto p = djinn::queue::gob_payload("djinn-scheduler", id);
        benchmark::DoNotOptimize(p);
    }
}
BENCHMARK(BM_GobPayload)->Arg(1)->Arg(100000)->Arg(1LL << 40);

void BM_CurlyqMessage(benchmark::State& state) {
    for (auto _ : state) {
        auto id = djinn::queue::new_job_id();
        auto msg =
            djinn::queue::curlyq_message(id, djinn::queue::gob_payload("djinn-scheduler", 123456));
        benchmark::DoNotOptimize(msg);
    }
}
BENCHMARK(BM_CurlyqMessage);

void BM_NewJobId(benchmark::State& state) {
    for (auto _ : state) {
        auto id = djinn::queue::new_job_id();
        benchmark::DoNotOptimize(id);
    }
}
BENCHMARK(BM_NewJobId);

void BM_NextRun(benchmark::State& state) {
    auto sched = static_cast<djinn::schedule::Schedule>(state.range(0));
    djinn::TimePoint t =
        std::chrono::sys_days{std::chrono::year{2024} / 1 / 31} + std::chrono::hours(13);
    for (auto _ : state) {
        t = djinn::schedule::next_after(sched, t);
        benchmark::DoNotOptimize(t);
    }
}
BENCHMARK(BM_NextRun)
    ->Arg(static_cast<int>(djinn::schedule::Schedule::daily))
    ->Arg(static_cast<int>(djinn::schedule::Schedule::weekly))
    ->Arg(static_cast<int>(djinn::schedule::Schedule::monthly));

void BM_FormatGoTime(benchmark::State& state) {
    djinn::TimePoint t = std::chrono::sys_days{std::chrono::year{2024} / 2 / 29};
    for (auto _ : state) {
        auto s = djinn::schedule::format_go_time(t);
        benchmark::DoNotOptimize(s);
    }
}
BENCHMARK(BM_FormatGoTime);

void BM_PgTimestampRoundTrip(benchmark::State& state) {
    djinn::TimePoint t = std::chrono::sys_days{std::chrono::year{2024} / 2 / 29} +
                         std::chrono::microseconds(123456789);
    for (auto _ : state) {
        auto s = djinn::schedule::format_pg_timestamp(t);
        auto back = djinn::schedule::parse_pg_timestamp(s);
        benchmark::DoNotOptimize(back);
    }
}
BENCHMARK(BM_PgTimestampRoundTrip);

void BM_HashidsEncode(benchmark::State& state) {
    djinn::Hashids h("1a2b3c4d5e6f7g8h", 8, djinn::Hashids::kDjinnAlphabet);
    std::vector<std::int64_t> digits{1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    for (auto _ : state) {
        auto s = h.encode(digits);
        benchmark::DoNotOptimize(s);
    }
}
BENCHMARK(BM_HashidsEncode);

void BM_ArtifactHasherNext(benchmark::State& state) {
    djinn::SystemClock clock;
    djinn::ArtifactHasher hasher("1a2b3c4d5e6f7g8h", clock);
    for (auto _ : state) {
        auto s = hasher.next();
        benchmark::DoNotOptimize(s);
    }
}
BENCHMARK(BM_ArtifactHasherNext);

// One batch column of manifests (1000 x ~600 bytes), the largest array literal of a batch.
void BM_PgArrayManifests(benchmark::State& state) {
    for (auto _ : state) {
        djinn::store::PgArray a;
        for (int i = 0; i < 1000; ++i)
            a.add_text(kManifest);
        auto s = a.str();
        benchmark::DoNotOptimize(s);
    }
}
BENCHMARK(BM_PgArrayManifests);

void BM_PgArrayInts(benchmark::State& state) {
    for (auto _ : state) {
        djinn::store::PgArray a;
        for (std::int64_t i = 0; i < 1000; ++i)
            a.add(1000000 + i);
        auto s = a.str();
        benchmark::DoNotOptimize(s);
    }
}
BENCHMARK(BM_PgArrayInts);

}  // namespace

BENCHMARK_MAIN();
