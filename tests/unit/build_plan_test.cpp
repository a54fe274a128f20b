#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "manifest/build_plan.hpp"

namespace djinn::manifest {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

const std::set<std::string> kAllDrivers = {"docker", "qemu-x86_64", "ssh", "os"};

Manifest fixture(const std::string& name) {
    std::ifstream in(std::string(DJINN_FIXTURES_DIR) + "/manifests/" + name);
    std::ostringstream s;
    s << in.rdbuf();
    auto parsed = parse(s.str());
    if (const auto* err = std::get_if<ParseError>(&parsed)) {
        ADD_FAILURE() << name << ": " << err->reason;
        return {};
    }
    return std::get<Manifest>(std::move(parsed));
}

BuildPlan plan_ok(const Manifest& m, const std::set<std::string>& enabled = kAllDrivers) {
    auto result = plan_build(m, enabled);
    if (const auto* s = std::get_if<Skip>(&result)) {
        ADD_FAILURE() << "unexpected skip " << to_string(s->kind) << ": " << s->reason;
        return {};
    }
    return std::get<BuildPlan>(std::move(result));
}

Skip plan_skip(const Manifest& m, const std::set<std::string>& enabled = kAllDrivers) {
    auto result = plan_build(m, enabled);
    if (auto* s = std::get_if<Skip>(&result)) {
        EXPECT_EQ(s->reason.find('\n'), std::string::npos);
        return *s;
    }
    ADD_FAILURE() << "expected a skip";
    return {};
}

Manifest with_driver(Pairs driver) {
    Manifest m;
    m.driver = std::move(driver);
    return m;
}

std::string describe(const PlannedJob& j) {
    std::string s = std::to_string(j.stage_index) + " " + j.name + " [" + j.commands + "]";
    for (const auto& a : j.artifacts) {
        s += " {" + a.source + " => " + a.name + "}";
    }
    return s;
}

void expect_jobs(const BuildPlan& plan, const std::vector<PlannedJob>& want) {
    ASSERT_EQ(plan.jobs.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(plan.jobs[i], want[i]) << "job " << i << "\n got: " << describe(plan.jobs[i])
                                         << "\nwant: " << describe(want[i]);
    }
}

TEST(BuildPlanTest, DockerManifestRowsAsContractSection2) {
    const BuildPlan plan = plan_ok(fixture("docker.yml"));
    EXPECT_EQ(plan.driver_type, "docker");
    EXPECT_EQ(plan.queue_driver, "docker");
    EXPECT_EQ(plan.driver_config_json,
              R"({"image":"golang:1.17","type":"docker","workspace":"/go/src/acme.dev/backend"})");
    EXPECT_EQ(plan.env, (Pairs{{"GOFLAGS", "-mod=vendor"},
                               {"LDFLAGS", "-s -w -X main.Version=1.0"},
                               {"EMPTY", ""}}));
    EXPECT_EQ(plan.objects, (Passthrough{{"deploy.key", "/root/.ssh/id_deploy"},
                                         {"config/settings.toml", "settings.toml"}}));
    EXPECT_EQ(plan.stages,
              (std::vector<PlannedStage>{
                  {"", false}, {"test", false}, {"build", false}, {"Package Release", true}}));
    expect_jobs(plan,
                {
                    {0, "create-driver", "", {}},
                    {0,
                     "clone.1",
                     "mkdir -p backend\ngit clone -q https://github.com/acme/backend.git backend\n"
                     "cd backend\ngit checkout v1.3",
                     {}},
                    {0,
                     "clone.2",
                     "mkdir -p tools\ngit clone -q https://github.com/acme/tools tools\ncd tools\n"
                     "git checkout ",
                     {}},
                    {1, "test.1", "go vet ./...\ngo test -cover ./...", {}},
                    {1, "lint-all", "golangci-lint run", {}},
                    {2,
                     "build.1",
                     "go build -o bin/backend ./cmd/backend",
                     {{"bin/backend", "backend"}, {"coverage.out", "coverage.txt"}}},
                    {3,
                     "package-release.1",
                     "tar czf backend.tar.gz bin",
                     {{"backend.tar.gz", "release/backend-linux-amd64.tar.gz"}}},
                    // the "deploy" job is dropped: its stage is not listed
                });
}

TEST(BuildPlanTest, QemuForcesArchAndQueue) {
    const BuildPlan plan = plan_ok(fixture("qemu.yml"), {"qemu-x86_64"});
    EXPECT_EQ(plan.driver_type, "qemu");
    EXPECT_EQ(plan.queue_driver, "qemu-x86_64");
    EXPECT_EQ(plan.driver_config_json,
              R"({"arch":"x86_64","image":"debian/oldstable","memory":"2048","type":"qemu"})");
    EXPECT_EQ(plan.stages, (std::vector<PlannedStage>{{"", false}, {"build", false}}));
    expect_jobs(plan, {
                          {0, "create-driver", "", {}},
                          {0,
                           "clone.1",
                           "mkdir -p site\ngit clone -q https://git.sr.ht/~acme/site site\n"
                           "cd site\ngit checkout main",
                           {}},
                          {1, "build.1", "cd site\nmake", {{"site/public.tar", "public.tar"}}},
                      });
    // Without an arch in the manifest, one is added.
    EXPECT_EQ(plan_ok(with_driver({{"image", "x"}, {"type", "qemu"}})).driver_config_json,
              R"({"arch":"x86_64","image":"x","type":"qemu"})");
}

TEST(BuildPlanTest, DriverSkips) {
    const Manifest docker = with_driver({{"type", "docker"}});
    Skip s = plan_skip(docker, {"qemu-x86_64"});
    EXPECT_EQ(s.kind, SkipKind::driver_disabled);
    EXPECT_NE(s.reason.find("docker"), std::string::npos);

    // The queue of qemu is "qemu-x86_64": a config listing "qemu" does not enable it.
    s = plan_skip(with_driver({{"type", "qemu"}}), {"qemu", "docker"});
    EXPECT_EQ(s.kind, SkipKind::driver_disabled);
    EXPECT_NE(s.reason.find("qemu-x86_64"), std::string::npos);

    // Types outside the build_drivers enum never pass, even when the config lists them.
    EXPECT_EQ(plan_skip(with_driver({{"type", "kubernetes"}}), {"kubernetes"}).kind,
              SkipKind::unknown_driver);
    EXPECT_EQ(plan_skip(with_driver({{"type", "qemu-x86_64"}}), {"qemu-x86_64"}).kind,
              SkipKind::unknown_driver);
    EXPECT_EQ(plan_skip(with_driver({{"type", "Docker"}})).kind, SkipKind::unknown_driver);
    EXPECT_EQ(plan_skip(with_driver({{"image", "x"}})).kind, SkipKind::unknown_driver);
    // An empty manifest has no driver: unknown_driver, as v1.3.0.
    const auto empty = parse("");
    ASSERT_TRUE(std::holds_alternative<Manifest>(empty));
    EXPECT_EQ(plan_skip(std::get<Manifest>(empty)).kind, SkipKind::unknown_driver);

    for (const char* type : {"ssh", "os", "docker"}) {
        const BuildPlan p = plan_ok(with_driver({{"type", type}}));
        EXPECT_EQ(p.driver_type, type);
        EXPECT_EQ(p.queue_driver, type);
    }
}

TEST(BuildPlanTest, EnvSplitsAtFirstEqualsAndRefusesEntriesWithout) {
    Manifest m = with_driver({{"type", "os"}});
    m.env = {"A=1", "B==2=3", "C=", "=D"};
    EXPECT_EQ(plan_ok(m).env, (Pairs{{"A", "1"}, {"B", "=2=3"}, {"C", ""}, {"", "D"}}));

    m.env = {"A=1", "JUSTKEY"};
    const Skip s = plan_skip(m);
    EXPECT_EQ(s.kind, SkipKind::bad_manifest);
    EXPECT_NE(s.reason.find("env[1]"), std::string::npos) << s.reason;
}

TEST(BuildPlanTest, StagesJobsAndDefaultNames) {
    Manifest m = with_driver({{"type", "os"}});
    m.stages = {"a", "b"};
    m.allow_failures = {"b", "not-a-stage"};
    m.jobs = {
        {"a", "", {"1"}, {}},
        {"x", "", {"dropped"}, {}},  // not listed: dropped, and does not count
        {"a", "", {"2"}, {}},
        {"b", "", {"3"}, {}},
        {"a", "", {"4"}, {}},  // the stage changed: n restarts, so the name repeats "a.1"
        {"b", "Named Job", {"5", "6"}, {}},
        {"b", "", {}, {}},
    };
    const BuildPlan plan = plan_ok(m);
    EXPECT_EQ(plan.stages, (std::vector<PlannedStage>{{"", false}, {"a", false}, {"b", true}}));
    expect_jobs(plan, {
                          {0, "create-driver", "", {}},
                          {1, "a.1", "1", {}},
                          {1, "a.2", "2", {}},
                          {2, "b.1", "3", {}},
                          {1, "a.1", "4", {}},
                          {2, "named-job", "5\n6", {}},
                          {2, "b.2", "", {}},  // "Named Job" was n = 1 of this run
                      });
}

TEST(BuildPlanTest, DuplicateStagesKeepBothRowsAndJobsGoToTheLast) {
    // v1.3.0 inserts a stage row per listed name and maps name -> id, the last insert winning.
    Manifest m = with_driver({{"type", "os"}});
    m.stages = {"a", "b", "a"};
    m.allow_failures = {"a"};
    m.jobs = {{"a", "", {"1"}, {}}, {"b", "", {"2"}, {}}, {"a", "", {"3"}, {}}};
    const BuildPlan plan = plan_ok(m);
    EXPECT_EQ(plan.stages,
              (std::vector<PlannedStage>{{"", false}, {"a", true}, {"b", false}, {"a", true}}));
    expect_jobs(plan, {
                          {0, "create-driver", "", {}},
                          {3, "a.1", "1", {}},
                          {2, "b.1", "2", {}},
                          {3, "a.1", "3", {}},
                      });
}

TEST(BuildPlanTest, EmptyStageNameQuirk) {
    // v1.3.0 starts with "previous stage" = "" and n = 1, so a first job in a listed stage ""
    // is number 2, and the slug of ".2" is ".2".
    Manifest m = with_driver({{"type", "os"}});
    m.stages = {""};
    m.jobs = {{"", "", {}, {}}, {"", "", {}, {}}};
    const BuildPlan plan = plan_ok(m);
    ASSERT_EQ(plan.jobs.size(), 3u);
    EXPECT_EQ(plan.jobs[1].name, ".2");
    EXPECT_EQ(plan.jobs[2].name, ".3");
    EXPECT_EQ(plan.jobs[1].stage_index, 1u);
}

TEST(BuildPlanTest, SourceWithoutRefOrDir) {
    Manifest m = with_driver({{"type", "os"}});
    m.sources = {{"https://x/y/", "", ""}};
    const BuildPlan plan = plan_ok(m);
    ASSERT_EQ(plan.jobs.size(), 2u);
    EXPECT_EQ(plan.jobs[1].commands,
              "mkdir -p \ngit clone -q https://x/y/ \ncd \ngit checkout ");  // as v1.3.0
}

TEST(BuildPlanTest, DriverConfigJsonEscapesAsGo) {
    const Manifest m = with_driver({
        {"B", "upper first"},
        {"a", "<b>&amp;</b>"},
        {"ctl", std::string("\x01\x1f\x7f\b\f", 5)},
        {"nul", std::string("a\0b", 3)},
        {"quote", "say \"hi\" \\ bye"},
        {"sep", "\xE2\x80\xA8|\xE2\x80\xA9"},
        {"type", "os"},
        {"utf8", "\xC3\xA9\xE2\x9C\x93\xF0\x9F\x98\x80"},
        {"ws", "line\nbreak\ttab\rcr"},
        {"z\xFF", "bad \xFF\xFE end \xE2\x9C"},
        {"\xC3\xA9", "key after z in byte order"},
    });
    EXPECT_EQ(plan_ok(m).driver_config_json,
              "{\"B\":\"upper first\","
              "\"a\":\"\\u003cb\\u003e\\u0026amp;\\u003c/b\\u003e\","
              "\"ctl\":\"\\u0001\\u001f\x7f\\u0008\\u000c\","
              "\"nul\":\"a\\u0000b\","
              "\"quote\":\"say \\\"hi\\\" \\\\ bye\","
              "\"sep\":\"\\u2028|\\u2029\","
              "\"type\":\"os\","
              "\"utf8\":\"\xC3\xA9\xE2\x9C\x93\xF0\x9F\x98\x80\","
              "\"ws\":\"line\\nbreak\\ttab\\rcr\","
              "\"z\\ufffd\":\"bad \\ufffd\\ufffd end \\ufffd\\ufffd\","
              "\"\xC3\xA9\":\"key after z in byte order\"}");
}

TEST(BuildPlanTest, SetupStageNameAndSkipLabels) {
    EXPECT_EQ(setup_stage_name(1), "setup - #1");
    EXPECT_EQ(setup_stage_name(12345), "setup - #12345");
    EXPECT_EQ(to_string(SkipKind::bad_manifest), "bad_manifest");
    EXPECT_EQ(to_string(SkipKind::driver_disabled), "driver_disabled");
    EXPECT_EQ(to_string(SkipKind::unknown_driver), "unknown_driver");
}

TEST(SlugTest, AsV130) {
    EXPECT_EQ(slug("Lint All"), "lint-all");
    EXPECT_EQ(slug("build.1"), "build.1");
    EXPECT_EQ(slug("  Build (Linux/amd64)  "), "build-linux-amd64");
    EXPECT_EQ(slug("--a--b--"), "a-b");
    EXPECT_EQ(slug("a_b c\td"), "a-b-c-d");
    EXPECT_EQ(slug("v1.2.3"), "v1.2.3");
    EXPECT_EQ(slug("-.-"), ".");
    EXPECT_EQ(slug("..."), "...");
    EXPECT_EQ(slug(""), "");
    EXPECT_EQ(slug("!!!"), "");
    EXPECT_EQ(slug("-"), "");
    EXPECT_EQ(slug("\xC3\x9Cn\xC3\xAF"
                   "code \xE2\x9C\x93 name"),
              "n-code-name");  // Ünïcode ✓ name
    EXPECT_EQ(slug("a\xE2\x9C\x93"
                   "b"),
              "a-b");  // one rune, one dash
    EXPECT_EQ(slug("a\xFF\xFE"
                   "b"),
              "a-b");  // invalid bytes: one dash each, squeezed
    EXPECT_EQ(slug("\xC2\xA0"
                   "x\xE3\x80\x80"),
              "x");  // Unicode spaces
    EXPECT_EQ(slug("Package Release.1"), "package-release.1");
}

}  // namespace
}  // namespace djinn::manifest
