#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "manifest/manifest.hpp"

namespace djinn::manifest {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;
using Strings = std::vector<std::string>;

std::string read_fixture(const std::string& name) {
    std::ifstream in(std::string(DJINN_FIXTURES_DIR) + "/manifests/" + name);
    EXPECT_TRUE(in.good()) << name;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

Manifest parse_ok(std::string_view yaml) {
    auto result = parse(yaml);
    if (const auto* err = std::get_if<ParseError>(&result)) {
        ADD_FAILURE() << "unexpected ParseError: " << err->reason << "\nfor: " << yaml;
        return {};
    }
    return std::get<Manifest>(std::move(result));
}

std::string parse_error(std::string_view yaml) {
    const auto result = parse(yaml);
    if (const auto* err = std::get_if<ParseError>(&result)) {
        EXPECT_EQ(err->reason.find('\n'), std::string::npos) << err->reason;
        EXPECT_FALSE(err->reason.empty());
        return err->reason;
    }
    ADD_FAILURE() << "expected a ParseError for: " << yaml;
    return "";
}

TEST(ManifestTest, DockerFixture) {
    const Manifest m = parse_ok(read_fixture("docker.yml"));
    EXPECT_EQ(m.namespace_path, "acme/backend");
    EXPECT_EQ(m.driver, (Pairs{{"image", "golang:1.17"},
                               {"type", "docker"},
                               {"workspace", "/go/src/acme.dev/backend"}}));
    EXPECT_EQ(m.driver_value("type"), "docker");
    EXPECT_EQ(m.driver_value("missing"), "");
    EXPECT_EQ(m.env,
              (Strings{"GOFLAGS=-mod=vendor", "LDFLAGS=-s -w -X main.Version=1.0", "EMPTY="}));
    EXPECT_EQ(m.objects, (Passthrough{{"deploy.key", "/root/.ssh/id_deploy"},
                                      {"config/settings.toml", "settings.toml"}}));
    ASSERT_EQ(m.sources.size(), 2u);
    EXPECT_EQ(m.sources[0], (Source{"https://github.com/acme/backend.git", "v1.3", "backend"}));
    EXPECT_EQ(m.sources[1], (Source{"https://github.com/acme/tools", "", "tools"}));
    EXPECT_EQ(m.stages, (Strings{"test", "build", "Package Release"}));
    EXPECT_EQ(m.allow_failures, (Strings{"Package Release"}));
    ASSERT_EQ(m.jobs.size(), 5u);
    EXPECT_EQ(m.jobs[0].stage, "test");
    EXPECT_EQ(m.jobs[0].name, "");
    EXPECT_EQ(m.jobs[0].commands, (Strings{"go vet ./...", "go test -cover ./..."}));
    EXPECT_EQ(m.jobs[1].name, "Lint All");
    EXPECT_EQ(m.jobs[2].artifacts,
              (Passthrough{{"bin/backend", "backend"}, {"coverage.out", "coverage.txt"}}));
    EXPECT_EQ(m.jobs[3].artifacts,
              (Passthrough{{"backend.tar.gz", "release/backend-linux-amd64.tar.gz"}}));
    EXPECT_EQ(m.jobs[4].stage, "deploy");
}

TEST(ManifestTest, QemuFixture) {
    const Manifest m = parse_ok(read_fixture("qemu.yml"));
    EXPECT_EQ(m.driver, (Pairs{{"arch", "aarch64"},
                               {"image", "debian/oldstable"},
                               {"memory", "2048"},
                               {"type", "qemu"}}));
    ASSERT_EQ(m.sources.size(), 1u);
    EXPECT_EQ(m.sources[0], (Source{"https://git.sr.ht/~acme/site", "main", "site"}));
    ASSERT_EQ(m.jobs.size(), 2u);
    EXPECT_EQ(m.jobs[0].stage, "");
    EXPECT_EQ(m.jobs[1].artifacts, (Passthrough{{"site/public.tar", "public.tar"}}));
    EXPECT_TRUE(m.namespace_path.empty());
    EXPECT_TRUE(m.env.empty());
}

TEST(ManifestTest, SourcesAsV130ParsesThem) {
    const Manifest m = parse_ok(R"(
sources:
- https://github.com/a/b
- https://github.com/a/b.git
- https://github.com/a/b.git v1.0
- https://github.com/a/b main => src
- https://github.com/a/b => src
- https://github.com/a/b main => src dir
- https://github.com/a/b  ma in
- https://github.com/a/b/
- https://github.com/a/b.git.git
- git@github.com:a/b.git feature/x=>into/here
- "https://github.com/a/b\tmain"
- 12345
-
- ""
)");
    const std::vector<Source> want = {
        {"https://github.com/a/b", "", "b"},
        {"https://github.com/a/b.git", "", "b"},
        {"https://github.com/a/b.git", "v1.0", "b"},
        {"https://github.com/a/b", "main", "src"},
        {"https://github.com/a/b", "", "src"},
        {"https://github.com/a/b", "main", "srcdir"},  // spaces after the url are deleted
        {"https://github.com/a/b", "main", "b"},
        {"https://github.com/a/b/", "", ""},  // base of a trailing slash is ""
        {"https://github.com/a/b.git.git", "", "b.git"},
        {"git@github.com:a/b.git", "feature/x", "into/here"},
        {"https://github.com/a/b\tmain", "", "b\tmain"},  // only ' ' separates
        {"12345", "", "12345"},
        {"", "", ""},  // null element: zero Source
        {"", "", ""},
    };
    ASSERT_EQ(m.sources.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(m.sources[i], want[i]) << "source " << i << ": " << m.sources[i].url << " | "
                                         << m.sources[i].ref << " | " << m.sources[i].dir;
    }
}

TEST(ManifestTest, PassthroughAsV130ParsesIt) {
    const Manifest m = parse_ok(R"(
objects:
- "  key.pem   =>   /root/key.pem  "
- data.tar.gz
- dir/sub/file.txt
- a => b => c
- dir/
- key.pem => /etc/key.pem
- "=> x"
-
)");
    EXPECT_EQ(m.objects, (Passthrough{{"key.pem", "/etc/key.pem"},  // first position, last dst
                                      {"data.tar.gz", "data.tar.gz"},
                                      {"dir/sub/file.txt", "file.txt"},
                                      {"a", "b"},
                                      {"dir/", "dir"},
                                      {"", "."}}));
    // "=> x" made the entry "" => "x"; the null element is "" again, and filepath.Base("") is
    // ".", which becomes its (last) destination.
}

TEST(ManifestTest, ScalarsOfOtherTypesBecomeTheirText) {
    const Manifest m = parse_ok(R"(
namespace: 42
driver:
  type: os
  memory: 2048
  cpus: 0x10
  enabled: yes
  ratio: 1.50
  nothing: ~
  empty:
  quoted: "null"
  123: numeric key
stages: [1, true, 2.0]
jobs:
- stage: 1
  name: 3
  commands: [07, off]
)");
    EXPECT_EQ(m.namespace_path, "42");
    EXPECT_EQ(m.driver, (Pairs{{"123", "numeric key"},
                               {"cpus", "0x10"},
                               {"empty", ""},
                               {"enabled", "yes"},
                               {"memory", "2048"},
                               {"nothing", ""},
                               {"quoted", "null"},
                               {"ratio", "1.50"},
                               {"type", "os"}}));
    EXPECT_EQ(m.stages, (Strings{"1", "true", "2.0"}));
    ASSERT_EQ(m.jobs.size(), 1u);
    EXPECT_EQ(m.jobs[0].stage, "1");
    EXPECT_EQ(m.jobs[0].name, "3");
    EXPECT_EQ(m.jobs[0].commands, (Strings{"07", "off"}));
}

TEST(ManifestTest, UnknownAndMiscasedKeysAreIgnored) {
    const Manifest m = parse_ok(R"(
version: 2
Driver: {type: docker}
driver: {type: os}
image: [whatever, {nested: map}]
jobs:
- stage: a
  Commands: [ignored]
  timeout: 10m
  commands: [kept]
)");
    EXPECT_EQ(m.driver, (Pairs{{"type", "os"}}));
    ASSERT_EQ(m.jobs.size(), 1u);
    EXPECT_EQ(m.jobs[0].commands, (Strings{"kept"}));
}

TEST(ManifestTest, RepeatedKeysReplaceListsAndMergeMaps) {
    const Manifest m = parse_ok(R"(
namespace: first
driver: {type: docker, image: a}
objects: [one]
stages: [x]
namespace: second
driver: {image: b, workspace: /w}
objects: [two]
stages: [y, z]
)");
    EXPECT_EQ(m.namespace_path, "second");
    EXPECT_EQ(m.driver, (Pairs{{"image", "b"}, {"type", "docker"}, {"workspace", "/w"}}));
    EXPECT_EQ(m.objects, (Passthrough{{"one", "one"}, {"two", "two"}}));
    EXPECT_EQ(m.stages, (Strings{"y", "z"}));

    // A null value resets, even what an earlier key set.
    const Manifest reset = parse_ok("driver: {type: docker}\ndriver: ~\nobjects: [a]\nobjects:\n");
    EXPECT_TRUE(reset.driver.empty());
    EXPECT_TRUE(reset.objects.empty());
}

TEST(ManifestTest, NullsAreZeroValues) {
    const Manifest m = parse_ok(R"(
namespace: ~
driver:
env: [~, A=1, null]
objects: ~
sources: ~
stages:
allow_failures: ~
jobs:
-
- ~
- stage: s
  commands: [~, echo]
  artifacts: ~
)");
    EXPECT_EQ(m.namespace_path, "");
    EXPECT_TRUE(m.driver.empty());
    EXPECT_EQ(m.env, (Strings{"", "A=1", ""}));
    EXPECT_TRUE(m.sources.empty());
    EXPECT_TRUE(m.stages.empty());
    ASSERT_EQ(m.jobs.size(), 3u);
    EXPECT_EQ(m.jobs[0].stage, "");
    EXPECT_TRUE(m.jobs[1].commands.empty());
    EXPECT_EQ(m.jobs[2].commands, (Strings{"", "echo"}));
}

TEST(ManifestTest, AnchorsAndMergeKeys) {
    const Manifest m = parse_ok(R"(
driver: &drv
  type: docker
  image: golang
stages: [test]
jobs:
- &base
  stage: test
  name: first
  commands: &cmds [make]
- <<: *base
  name: second
- name: third
  <<: *base
- <<: [{name: from-first}, {name: from-second, stage: test}]
  commands: *cmds
)");
    EXPECT_EQ(m.driver, (Pairs{{"image", "golang"}, {"type", "docker"}}));
    ASSERT_EQ(m.jobs.size(), 4u);
    EXPECT_EQ(m.jobs[1].name, "second");  // explicit key after the merge wins
    EXPECT_EQ(m.jobs[1].commands, (Strings{"make"}));
    EXPECT_EQ(m.jobs[2].name, "first");       // the merge after the explicit key overrides it
    EXPECT_EQ(m.jobs[3].name, "from-first");  // earlier mappings of a merge list win
    EXPECT_EQ(m.jobs[3].stage, "test");
    EXPECT_EQ(m.jobs[3].commands, (Strings{"make"}));
}

TEST(ManifestTest, EmptyDocumentsAreEmptyManifests) {
    // Decision: no document, a comment-only one and an explicit null all decode to an empty
    // Manifest (yaml.Unmarshal semantics); plan_build then skips it as unknown_driver, as
    // v1.3.0 fails a manifest without a driver.
    for (const char* text : {"", "   \n", "# only a comment\n", "~", "null", "---\n", "--- ~\n"}) {
        const Manifest m = parse_ok(text);
        EXPECT_TRUE(m.driver.empty()) << text;
        EXPECT_TRUE(m.jobs.empty()) << text;
    }
}

TEST(ManifestTest, OnlyTheFirstDocumentCounts) {
    const Manifest m = parse_ok("driver: {type: os}\n---\ndriver: {type: docker}\n");
    EXPECT_EQ(m.driver_value("type"), "os");
}

TEST(ManifestTest, QuotedDocumentIsDecodedAsText) {
    // v1.3.0's Manifest is a TextUnmarshaler: a string document is decoded once more.
    const Manifest m = parse_ok("\"driver:\\n  type: docker\\nstages: [a]\\n\"");
    EXPECT_EQ(m.driver_value("type"), "docker");
    EXPECT_EQ(m.stages, (Strings{"a"}));
    parse_error("hello");
    parse_error("\"\\\"nested text\\\"\"");  // only one level: the inner text is a scalar
}

TEST(ManifestTest, BadShapesAreParseErrors) {
    struct Case {
        const char* yaml;
        const char* reason;  // the exact one-line reason
    };
    const Case cases[] = {
        {"jobs: {stage: a}\n", "line 1, column 7: jobs must be a list, not a mapping"},
        {"jobs: run\n", "line 1, column 7: jobs must be a list, not a scalar"},
        {"jobs:\n- commands:\n  - {echo: hi}\n",
         "line 3, column 5: jobs[0].commands[0] must be a string, not a mapping"},
        {"jobs:\n- commands: echo hi\n",
         "line 2, column 13: jobs[0].commands must be a list, not a scalar"},
        {"jobs:\n- echo\n", "line 2, column 3: jobs[0] must be a mapping, not a scalar"},
        {"jobs:\n- [a]\n", "line 2, column 3: jobs[0] must be a mapping, not a list"},
        {"jobs:\n- stage: [a]\n", "line 2, column 10: jobs[0].stage must be a string, not a list"},
        {"jobs:\n- artifacts: out.tar\n",
         "line 2, column 14: jobs[0].artifacts must be a list, not a scalar"},
        {"driver: [docker]\n", "line 1, column 9: driver must be a mapping, not a list"},
        {"driver: docker\n", "line 1, column 9: driver must be a mapping, not a scalar"},
        {"driver:\n  type: [docker]\n",
         "line 2, column 9: driver.type must be a string, not a list"},
        {"env: {A: 1}\n", "line 1, column 6: env must be a list, not a mapping"},
        {"env: A=1\n", "line 1, column 6: env must be a list, not a scalar"},
        {"objects: {a: b}\n", "line 1, column 10: objects must be a list, not a mapping"},
        {"sources: https://x/y\n", "line 1, column 10: sources must be a list, not a scalar"},
        {"sources:\n- {url: x}\n", "line 2, column 3: sources[0] must be a string, not a mapping"},
        {"stages: build\n", "line 1, column 9: stages must be a list, not a scalar"},
        {"allow_failures: {a: 1}\n",
         "line 1, column 17: allow_failures must be a list, not a mapping"},
        {"namespace: {a: b}\n", "line 1, column 12: namespace must be a string, not a mapping"},
        {"[a, b]\n", "line 1, column 1: the manifest must be a mapping, not a list"},
        {"? [a]\n: b\n", "line 1, column 3: manifest key must be a string, not a list"},
        {"jobs:\n- <<: 5\n",
         "line 2, column 7: map merge requires map or sequence of maps as the value"},
        {"jobs:\n- <<: [a]\n",
         "line 2, column 8: map merge requires map or sequence of maps as the value"},
        {"namespace: !!binary aGVsbG8=\n",
         "line 1, column 12: namespace: !!binary values are not supported"},
        {"driver: \xff\n", "line 1, column 9: invalid leading UTF-8 octet"},
        {"driver: a\x01\n", "line 1, column 10: control characters are not allowed"},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(parse_error(c.yaml), c.reason) << c.yaml;
    }
}

TEST(ManifestTest, InvalidYamlReportsLineAndColumn) {
    const std::string reason = parse_error("driver:\n  type: docker\njobs: [a, b\n");
    EXPECT_EQ(reason.rfind("line ", 0), 0u) << reason;
    EXPECT_NE(reason.find("column"), std::string::npos) << reason;
    const std::string tab = parse_error("driver:\n\ttype: docker\n");
    EXPECT_EQ(tab.rfind("line ", 0), 0u) << tab;
    const std::string dup_anchor = parse_error("a: *nowhere\n");
    EXPECT_EQ(dup_anchor.rfind("line 1", 0), 0u) << dup_anchor;
}

TEST(ManifestTest, SelfContainingAnchorsAndDeepNestingAreErrorsNotCrashes) {
    EXPECT_EQ(parse_error("x: &a {<<: *a}\njobs: [*a]\n"),
              "line 1, column 4: anchor 'a' value contains itself");
    EXPECT_EQ(parse_error("&a [*a]\n"),
              "line 1, column 1: the manifest must be a mapping, not a list");
    const std::string deep = "jobs: " + std::string(100000, '[') + std::string(100000, ']');
    EXPECT_EQ(parse_error(deep).rfind("line 1, column ", 0), 0u);
}

TEST(ManifestTest, ExcessiveAliasingIsRefused) {
    std::string yaml = "a0: &a0 {<<: [{x: y}]}\n";
    for (int i = 1; i < 40; ++i) {
        const std::string prev = "*a" + std::to_string(i - 1);
        yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " {<<: [" + prev + ", " +
                prev + "]}\n";
    }
    yaml += "jobs:\n- <<: *a39\n";
    EXPECT_EQ(parse_error(yaml), "document contains excessive aliasing");
}

// The rules where yaml.v2 v2.2.8 differs from the yaml-cpp decoder this one replaced; every
// expectation below is what yaml.v2 itself gives for the input (checked with v2.2.8).
TEST(ManifestTest, Yaml2NullRulesForUnmarshalers) {
    // `Null` reaches Passthrough.UnmarshalYAML, which adds nothing and keeps what it had; `~`
    // (decoder.prepare's null) zeroes it.
    EXPECT_EQ(parse_ok("objects: [a]\nobjects: Null\n").objects, (Passthrough{{"a", "a"}}));
    EXPECT_EQ(parse_ok("jobs:\n- artifacts: [x]\n  artifacts: NULL\n").jobs[0].artifacts,
              (Passthrough{{"x", "x"}}));
    EXPECT_TRUE(parse_ok("objects: [a]\nobjects: ~\n").objects.empty());
    // A quoted "null" or "~" is null to prepare, but then a string that no struct takes.
    parse_error("sources: [\"null\"]\n");
    parse_error("objects: \"~\"\n");
    parse_error("jobs: [\"null\"]\n");
    EXPECT_EQ(parse_ok("sources: [Null, ~, \"\"]\n").sources, (std::vector<Source>(3)));
    EXPECT_TRUE(parse_ok("\"null\"\n").driver.empty());  // UnmarshalText("null")
    // yaml.v2 keeps no tags on collections: `!!null [a]` is a list.
    EXPECT_EQ(parse_ok("stages: !!null [a]\n").stages, (Strings{"a"}));
    EXPECT_EQ(parse_ok("env: Null\n").env, Strings{});
}

TEST(ManifestTest, Yaml2ResolvesExplicitTags) {
    struct Case {
        const char* value;
        const char* text;  // nullptr: a ParseError
    };
    const Case cases[] = {
        {"!!int 0x1F", "0x1F"},
        {"!!int 1_000", "1_000"},
        {"!!int 08", nullptr},
        {"!!float 08", "08"},
        {"!!float 1", "1"},
        {"!!float .5", ".5"},
        {"!!int foo", nullptr},
        {"!!bool yes", "yes"},
        {"!!bool 1", nullptr},
        {"!!null ~", ""},
        {"!!null", ""},
        {"!!null foo", nullptr},
        {"!!str ~", "~"},
        {"! ~", "~"},
        {"!custom 12", "12"},
        {"!!timestamp 2004-2-29 1:2:3.5", "2004-2-29 1:2:3.5"},
        {"!!timestamp 2001-02-29", nullptr},
        {"!!int ~", nullptr},
    };
    for (const auto& c : cases) {
        const std::string yaml = std::string("namespace: ") + c.value + "\n";
        if (c.text == nullptr) {
            EXPECT_NE(parse_error(yaml).find("cannot decode"), std::string::npos) << yaml;
        } else {
            EXPECT_EQ(parse_ok(yaml).namespace_path, c.text) << yaml;
        }
    }
    parse_error("namespace: !!int \"a\\nb\"\n");  // the reason stays one line (parse_error checks)
    EXPECT_EQ(parse_error("driver: {\"a\\nb\": [x]}\n"),
              "line 1, column 18: driver.a b must be a string, not a list");
    EXPECT_EQ(parse_error("driver: {" + std::string(100, 'k') + ": [x]}\n"),
              "line 1, column " + std::to_string(9 + 100 + 3) + ": driver." + std::string(64, 'k') +
                  "... must be a string, not a list");
    EXPECT_EQ(parse_error("namespace: !!int twelve\n"),
              "line 1, column 12: namespace: cannot decode !!str `twelve` as a !!int");
}

TEST(ManifestTest, Yaml2MergeKeyRules) {
    // `<<` of an alias to a list is refused (only mappings merge), a list of aliases to mappings
    // merges; an alias to `<<` used as a key is the plain key "<<".
    EXPECT_EQ(parse_error("l: &l [{a: b}]\ndriver:\n  <<: *l\n"),
              "line 3, column 7: map merge requires map or sequence of maps as the value");
    EXPECT_EQ(parse_ok("a: &a {type: os}\nb: &b {image: x}\ndriver: {<<: [*a, *b]}\n").driver,
              (Pairs{{"image", "x"}, {"type", "os"}}));
    EXPECT_EQ(parse_ok("k: &k <<\ndriver: {*k : x, type: os}\n").driver,
              (Pairs{{"<<", "x"}, {"type", "os"}}));
    parse_error("driver: {\"<<\": {a: b}}\n");  // a quoted `<<` is a key, and {a: b} no string
}

TEST(ManifestTest, LibyamlReadsAsTheYaml2Port) {
    // Where libyaml 0.2.5 and yaml.v2's port of an older libyaml differ (yaml_tree.cpp).
    EXPECT_NE(parse_error("%YAML 1.2\n---\ndriver: {type: os}\n").find("incompatible"),
              std::string::npos);
    EXPECT_EQ(parse_ok("%YAML 1.1\n---\ndriver: {type: os}\n").driver_value("type"), "os");
    EXPECT_EQ(parse_error("stages: [a?b]\n").rfind("line 1, column 10: '?' inside", 0), 0u);
    EXPECT_EQ(parse_ok("stages: [\"a?b\"]\nallow_failures:\n- a?b\n").stages, (Strings{"a?b"}))
        << "quoted or in a block, '?' is fine";
    parse_error("stages: [!t, x]\n");
    EXPECT_EQ(parse_ok("stages: [!t , x]\n").stages, (Strings{"", "x"}));
    parse_error("namespace: \"a\\/b\"\n");
    EXPECT_EQ(parse_ok("namespace: \"a\\\\/b\"\n").namespace_path, "a\\/b");
    parse_error("namespace: \"a\\'b\"\n");  // libyaml 0.2.5 refuses `\'`; yaml.v2 reads it
    // The reader checks what yaml.v2's 512-byte buffer would hold, not more.
    const std::string second = "driver: {type: os}\n---\n";
    parse_error(second + std::string(100, 'x') + "\x01\n");
    EXPECT_EQ(parse_ok(second + std::string(600, 'x') + "\x01\n").driver_value("type"), "os");
    // A leading byte order mark is fine; another U+FEFF is refused (yaml.v2 would drop the
    // first character of following lines: here it read "ksp" as "sp").
    EXPECT_EQ(parse_ok("\xEF\xBB\xBF"
                       "driver: {type: os}\n")
                  .driver_value("type"),
              "os");
    EXPECT_EQ(parse_error("\xEF\xBB\xBF\xEF\xBB\xBF"
                          "driver:\n  a: b\nksp\nkspace: x\n"),
              "line 1, column 1: U+FEFF (a byte order mark) inside the text is misread by "
              "yaml.v2; remove it");
    parse_error(
        "driver: {type: os, image: \"a\xEF\xBB\xBF"
        "b\"}\n");
    // Nesting: 1000 levels under an ignored key are read, 1001 are refused.
    const auto nested = [](int n) {
        return "foo: " + std::string(static_cast<std::size_t>(n), '[') +
               std::string(static_cast<std::size_t>(n), ']') + "\ndriver: {type: os}\n";
    };
    EXPECT_EQ(parse_ok(nested(999)).driver_value("type"), "os");
    EXPECT_EQ(parse_error(nested(1001)), "line 1, column 1005: exceeded max depth of 1000");
}

TEST(ManifestTest, HostileInputIsBoundedAndNeverThrows) {
    // NUL bytes, lone surrogates in escapes, invalid UTF-8 deep in a scalar, a 1 MB scalar,
    // a huge flow list, an anchor fan-out: each a ParseError or a manifest, never a crash.
    EXPECT_EQ(parse_error(std::string("driver: {type: os}\0\n", 20)),
              "line 1, column 19: control characters are not allowed");
    parse_error("namespace: \"\\uD800\"\n");
    parse_error("namespace: \"abc\xC3\x28\"\n");
    const std::string big(1 << 20, 'x');
    EXPECT_EQ(parse_ok("namespace: " + big + "\n").namespace_path, big);
    std::string flow = "stages: [";
    for (int i = 0; i < 100000; ++i) {
        flow += "s, ";
    }
    EXPECT_EQ(parse_ok(flow + "]\n").stages.size(), 100000u);
    std::string fan = "a: &a [x]\nstages: [";
    for (int i = 0; i < 20000; ++i) {
        fan += "*a, ";
    }
    parse_error(fan + "]\n");  // an alias to a list where a string is expected
    std::string laughs = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
    for (int i = 1; i <= 9; ++i) {
        const std::string p = "*a" + std::to_string(i - 1);
        laughs += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + p + ", " + p +
                  ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p +
                  "]\n";
    }
    // yaml.v2 stops at the first alias to a list where a string is expected (a type error): no
    // expansion at all.
    EXPECT_EQ(parse_error(laughs + "env: *a9\n"),
              "line 9, column 5: env[0] must be a string, not a list");
}

}  // namespace
}  // namespace djinn::manifest
