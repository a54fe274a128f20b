// Every manifest the project has (fixtures, seeds, the bench manifest, the fuzz corpora, the
// manifests of the unit and integration tests) decoded by the libyaml decoder (manifest::parse)
// and by the yaml-cpp decoder it replaced, then planned: both must give the same plan, or the
// same skip kind, or both a ParseError. The manifests where they differ on purpose are listed
// in kIntended with the reason; for them the difference must be there and be explained by the
// rule the decode reports.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "manifest/build_plan.hpp"
#include "manifest/manifest.hpp"
#include "manifest_event_streams.hpp"
#include "manifest_yamlcpp_reference.hpp"

namespace djinn::manifest {
namespace {

namespace fs = std::filesystem;

struct Case {
    std::string name;
    std::string text;
};

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << path;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The $m$...$m$ bodies of a SQL file.
std::vector<std::string> dollar_quoted(const std::string& sql) {
    std::vector<std::string> out;
    for (std::size_t at = sql.find("$m$"); at != std::string::npos;) {
        const std::size_t end = sql.find("$m$", at + 3);
        if (end == std::string::npos) {
            break;
        }
        out.push_back(sql.substr(at + 3, end - at - 3));
        at = sql.find("$m$", end + 3);
    }
    return out;
}

// The raw string literals R"(...)" of a C++ source.
std::vector<std::string> raw_strings(const std::string& source) {
    std::vector<std::string> out;
    for (std::size_t at = source.find("R\"("); at != std::string::npos;) {
        const std::size_t end = source.find(")\"", at + 3);
        if (end == std::string::npos) {
            break;
        }
        out.push_back(source.substr(at + 3, end - at - 3));
        at = source.find("R\"(", end + 2);
    }
    return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (std::size_t at = s.find(from); at != std::string::npos;
         at = s.find(from, at + to.size())) {
        s.replace(at, from.size(), to);
    }
    return s;
}

// The manifests of tests/integration/hostile_data_test.cpp, built the same way.
std::vector<Case> hostile_manifests() {
    std::vector<Case> out;
    const std::string plain =
        "driver: {type: docker, image: alpine, workspace: /}\nstages: [s]\njobs:\n- stage: s\n"
        "  commands: [true]\n";
    out.push_back({"hostile plain", plain});
    std::string huge =
        "driver: {type: docker, image: alpine, workspace: /}\nstages: [big]\n"
        "jobs:\n- stage: big\n  commands:\n";
    for (int i = 0; i < 40000; ++i) {
        huge += "  - echo " + std::to_string(i) + " " + std::string(140, 'x') + "\n";
    }
    out.push_back({"hostile huge", huge});
    std::string many =
        "driver: {type: docker, image: alpine, workspace: /}\nstages: [a, b]\n"
        "jobs:\n- stage: a\n  commands:\n";
    for (int i = 0; i < 5000; ++i) {
        many += "  - step " + std::to_string(i) + "\n";
    }
    for (int j = 0; j < 500; ++j) {
        many += "- {stage: b, commands: [job " + std::to_string(j) + "]}\n";
    }
    out.push_back({"hostile many", many});
    const auto quoted = [](const std::string& s) {
        std::string q = "\"";
        for (const char c : s) {
            if (c == '"' || c == '\\') {
                q += '\\';
            }
            q += c;
        }
        return q + "\"";
    };
    const std::string odd =
        "\xEF\xBF\xBD \xE2\x80\xAE"
        "evil\xE2\x80\xAC \xE2\x80\x8B"
        "zw \xF0\x9F\x98\x80 \xF0\x9F\x9A\x80 caf\xC3\xA9 \xD7\xA9\xD7\x9C";
    out.push_back({"hostile unicode",
                   "driver: {type: docker, image: " + quoted(odd) + ", workspace: /}\nenv: [" +
                       quoted("K_" + odd + "=" + odd) + "]\nstages: [" + quoted(odd) +
                       "]\njobs:\n- stage: " + quoted(odd) + "\n  name: " + quoted(odd) +
                       "\n  commands: [" + quoted("echo " + odd) + "]\n  artifacts: [" +
                       quoted("out/" + odd + " => " + odd) + "]\n"});
    out.push_back({"hostile control", "driver: {type: docker, image: \"a\x01b\", workspace: /}\n"});
    out.push_back({"hostile forged", "driver: {type: nope}\n"});
    const std::vector<std::string> nasty = {"'; DROP TABLE builds; --",
                                            "\"",
                                            "\\",
                                            "{",
                                            "}",
                                            "a,b",
                                            "NULL",
                                            "null",
                                            "{\"x\",NULL}",
                                            " padded ",
                                            "",
                                            "\\\"",
                                            "$1",
                                            "%s%n",
                                            "}\\{"};
    std::string stages, jobs, env, objects;
    for (std::size_t i = 0; i < nasty.size(); ++i) {
        const std::string& s = nasty[i];
        stages += (i ? ", " : "") + quoted("st" + std::to_string(i) + s);
        jobs += "- stage: " + quoted("st" + std::to_string(i) + s) + "\n  commands: [" + quoted(s) +
                ", " + quoted("x" + s) + "]\n";
        env += (i ? ", " : "") + quoted("K" + std::to_string(i) + "=" + s);
        if (s != " padded ") {
            objects += (objects.empty() ? "" : ", ") +
                       quoted("obj" + std::to_string(i) + s + " => /dst/" + s);
        }
    }
    out.push_back({"hostile metacharacters",
                   "driver: {type: docker, image: " + quoted(nasty[0]) + ", " + quoted("k\"\\{") +
                       ": " + quoted("NULL") + ", workspace: /}\nenv: [" + env + "]\nobjects: [" +
                       objects + "]\nstages: [" + stages + "]\njobs:\n" + jobs});
    out.push_back({"hostile duplicates",
                   "driver: {type: docker, image: alpine, workspace: /}\n"
                   "stages: [test, build, test, test]\nallow_failures: [test, test, nope]\njobs:\n"
                   "- {stage: test, name: same, commands: [a]}\n"
                   "- {stage: test, name: same, commands: [b]}\n"
                   "- {stage: build, commands: [c]}\n"
                   "- {stage: missing, commands: [d]}\n"});
    std::string bomb = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
    for (int i = 1; i <= 9; ++i) {
        const std::string p = "*a" + std::to_string(i - 1);
        bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + p + ", " + p + ", " +
                p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + "]\n";
    }
    out.push_back({"hostile bomb", bomb + "driver: {type: docker, image: alpine}\nstages: *a9\n"});
    std::string laughs = "m0: &m0 {a: lol, b: lol, c: lol, d: lol, e: lol, f: lol}\n";
    for (int i = 1; i <= 9; ++i) {
        const std::string p = "*m" + std::to_string(i - 1);
        laughs += "m" + std::to_string(i) + ": &m" + std::to_string(i) + " {<<: [" + p + ", " + p +
                  ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p +
                  "]}\n";
    }
    out.push_back({"hostile merge laughs", laughs + "driver:\n  <<: *m9\n  type: docker\n"});
    out.push_back({"hostile merge bomb",
                   "a: &a {x: 1}\nb: &b {<<: [*a, *a, *a, *a]}\n"
                   "driver: &d {<<: *d, type: docker}\n"});
    out.push_back({"hostile deep", "driver: {type: docker}\nstages: " + std::string(100000, '[') +
                                       std::string(100000, ']') + "\n"});
    out.push_back({"hostile env without =", plain + "env: [A=1, B]\n"});
    out.push_back({"hostile empty", ""});
    out.push_back({"hostile scalar", "just words"});
    out.push_back({"hostile wrong types", "driver: [docker]\njobs: {a: b}\n"});
    out.push_back({"hostile binary", "driver: {type: !!binary ZG9ja2Vy}\n"});
    out.push_back({"hostile references",
                   "namespace: does/not/exist\n"
                   "driver: {type: docker, image: alpine, workspace: /}\n"
                   "objects: [missing.bin, bob.bin => /x, mine.bin]\n"
                   "sources: [\"\", \"https://x.invalid/r.git\"]\n"});
    return out;
}

// Manifests written as plain string literals in the unit and integration tests.
std::vector<Case> literal_manifests() {
    const char* texts[] = {
        // integration tests
        "driver: {type: docker, image: alpine}\nstages: [test]\njobs:\n"
        "- {stage: test, commands: [make]}\n",
        "driver: {type: qemu, image: debian/stable}\nstages: [test]\njobs:\n"
        "- {stage: test, commands: [make check]}\n",
        "driver: [",
        "driver: {type: docker, image: alpine, workspace: /}",
        "driver: {type: docker, image: alpine, workspace: /src}\nstages: [test]\njobs:\n"
        "- stage: test\n  commands: [make]",
        "driver: {type: docker}",
        "driver: {type: docker, image: a, workspace: /}\nenv: [A=1]",
        "driver: {type: docker, image: a, workspace: /}",
        // manifest_test.cpp
        "driver: {type: docker}\ndriver: ~\nobjects: [a]\nobjects:\n",
        "",
        "   \n",
        "# only a comment\n",
        "~",
        "null",
        "---\n",
        "--- ~\n",
        "driver: {type: os}\n---\ndriver: {type: docker}\n",
        "\"driver:\\n  type: docker\\nstages: [a]\\n\"",
        "hello",
        "\"\\\"nested text\\\"\"",
        "jobs: {stage: a}\n",
        "jobs: run\n",
        "jobs:\n- commands:\n  - {echo: hi}\n",
        "jobs:\n- commands: echo hi\n",
        "jobs:\n- echo\n",
        "jobs:\n- [a]\n",
        "jobs:\n- stage: [a]\n",
        "jobs:\n- artifacts: out.tar\n",
        "driver: [docker]\n",
        "driver: docker\n",
        "driver:\n  type: [docker]\n",
        "env: {A: 1}\n",
        "env: A=1\n",
        "objects: {a: b}\n",
        "sources: https://x/y\n",
        "sources:\n- {url: x}\n",
        "stages: build\n",
        "allow_failures: {a: 1}\n",
        "namespace: {a: b}\n",
        "[a, b]\n",
        "? [a]\n: b\n",
        "jobs:\n- <<: 5\n",
        "jobs:\n- <<: [a]\n",
        "namespace: !!binary aGVsbG8=\n",
        "driver: \xff\n",
        "driver: a\x01\n",
        "driver:\n  type: docker\njobs: [a, b\n",
        "driver:\n\ttype: docker\n",
        "a: *nowhere\n",
        "x: &a {<<: *a}\njobs: [*a]\n",
        "&a [*a]\n",
        // build_plan_test.cpp
        "driver: {type: docker, image: a, workspace: /}\nenv: [A=1, B]\n",
    };
    std::vector<Case> out;
    int i = 0;
    for (const char* t : texts) {
        out.push_back({"literal " + std::to_string(i++), t});
    }
    return out;
}

std::vector<Case> all_manifests() {
    const fs::path root(DJINN_SOURCE_DIR);
    std::vector<Case> out;
    for (const auto* dir : {"tests/fixtures/manifests", "tests/fuzz/corpus/manifest_plan",
                            "tests/fuzz/corpus/manifest_diff"}) {
        std::vector<fs::path> files;
        for (const auto& entry : fs::directory_iterator(root / dir)) {
            files.push_back(entry.path());
        }
        std::sort(files.begin(), files.end());
        for (const auto& f : files) {
            out.push_back({std::string(dir) + "/" + f.filename().string(), read_file(f)});
        }
    }
    int n = 0;
    for (const auto& m : dollar_quoted(read_file(root / "tests/fixtures/seed/demo.sql"))) {
        out.push_back({"demo.sql cron " + std::to_string(++n), m});
    }
    // bench/sql/seed.sql formats one manifest per cron: %1$s is the cron id, %2$s the user.
    for (const auto& m : dollar_quoted(read_file(root / "bench/sql/seed.sql"))) {
        for (const auto& [i, u] : std::vector<std::pair<int, int>>{{1, 1}, {54321, 321}}) {
            out.push_back({"seed.sql cron " + std::to_string(i),
                           replace_all(replace_all(m, "%1$s", std::to_string(i)), "%2$s",
                                       std::to_string(u))});
        }
    }
    for (const auto* source : {"bench/micro_bench.cpp", "tests/unit/manifest_test.cpp",
                               "tests/unit/build_plan_test.cpp"}) {
        n = 0;
        for (const auto& m : raw_strings(read_file(root / source))) {
            out.push_back({std::string(source) + " raw string " + std::to_string(++n), m});
        }
    }
    for (auto& c : hostile_manifests()) {
        out.push_back(std::move(c));
    }
    for (auto& c : literal_manifests()) {
        out.push_back(std::move(c));
    }
    return out;
}

// The outcome that matters to the scheduler: a plan, a skip kind, or a ParseError.
std::string outcome(const std::variant<Manifest, ParseError>& parsed) {
    if (std::holds_alternative<ParseError>(parsed)) {
        return "parse error";
    }
    static const std::set<std::string> all = {"docker", "qemu-x86_64", "ssh", "os"};
    const auto planned = plan_build(std::get<Manifest>(parsed), all);
    if (const auto* s = std::get_if<Skip>(&planned)) {
        return "skip " + std::string(to_string(s->kind));
    }
    const BuildPlan& p = std::get<BuildPlan>(planned);
    std::string out = "plan " + p.driver_type + " " + p.queue_driver + " " + p.driver_config_json;
    for (const auto& [k, v] : p.env) {
        out += "\nenv " + k + "=" + v;
    }
    for (const auto& [k, v] : p.objects) {
        out += "\nobject " + k + " => " + v;
    }
    for (const auto& s : p.stages) {
        out += "\nstage " + s.name + (s.can_fail ? " (can fail)" : "");
    }
    for (const auto& j : p.jobs) {
        out += "\njob " + std::to_string(j.stage_index) + " " + j.name + " [" + j.commands + "]";
        for (const auto& a : j.artifacts) {
            out += " {" + a.source + " => " + a.name + "}";
        }
    }
    return out;
}

// Manifests whose outcome differs on purpose, with the documented_difference() they must show.
const std::string kDiff = "tests/fuzz/corpus/manifest_diff/";
const std::map<std::string, std::string> kIntended = {
    // yaml.v2: an alias is never a merge key, `*k` (k: `<<`) is the key "<<" (here with a
    // mapping value: a type error); yaml-cpp merged it.
    {kDiff + "intended-alias-key.yml", "alias-key"},
    {kDiff + "intended-alias-key-plain.yml", "alias-key"},  // driver {"<<": x}; yaml-cpp merged
    // yaml.v2: `<<: *list` is "map merge requires map or sequence of maps"; yaml-cpp merged the
    // list's mappings.
    {kDiff + "intended-merge-of-alias-to-list.yml", "merge-of-non-mapping"},
    // yaml.v2 (libyaml): `! <<`, the non-specific tag on a plain `<<`, is implicit, so a merge
    // key; yaml-cpp kept it as the key "<<" (here a type error: a mapping as a driver value).
    {kDiff + "intended-merge-key-bang-tag.yml", "merge-key-bang-tag"},
    // yaml.v2: `objects: Null` reaches Passthrough.UnmarshalYAML, which keeps the entries of the
    // earlier `objects` key; yaml-cpp cleared them.
    {kDiff + "intended-null-spelling-keeps-objects.yml", "null-spelling"},
    // yaml.v2: a quoted "null" is null to decoder.prepare, so Source.UnmarshalYAML is skipped and
    // the string cannot go into the struct: a type error; yaml-cpp made a source "null".
    {kDiff + "intended-quoted-null-source.yml", "null-into-struct"},
    // yaml.v2 resolves explicitly tagged scalars and fails on a mismatch; yaml-cpp ignored tags.
    {kDiff + "intended-tag-int-not-a-number.yml", "tag-resolution"},
    {kDiff + "intended-tag-null-with-text.yml", "tag-resolution"},
    {kDiff + "intended-tag-timestamp-bad-date.yml", "tag-resolution"},
    {kDiff + "intended-tag-int-octal-08.yml", "tag-resolution"},  // 08 is a float to Go
    // A scalar document whose text is itself a tagged scalar (`! !!null \`): its text is decoded
    // once more (never twice), and `!!null \` is not null to yaml.v2. Once made the differential
    // fuzz target's helper recurse without end.
    {kDiff + "intended-tag-null-in-a-scalar-document.yml", "tag-resolution"},
    // `!!binary` is refused (yaml.v2 would base64-decode it, and fails on `~`); yaml-cpp read
    // this document as null: an empty manifest.
    {kDiff + "intended-tag-binary-document.yml", "tag-resolution"},
    // yaml.v2's scanner (an older libyaml) refuses `%YAML 1.2` and the `\\/` escape, and reads a
    // `,` after a tag in a flow collection as part of the tag (refused here, see yaml_tree.cpp).
    {kDiff + "intended-yaml-1.2-directive.yml", "libyaml-vs-port"},
    {kDiff + "intended-slash-escape.yml", "libyaml-vs-port"},
    {kDiff + "intended-tag-before-comma.yml", "libyaml-vs-port"},
    // libyaml 0.2.5 rejects `\\'` in double quotes (yaml.v2 reads a quote, as yaml-cpp does):
    // one of the few inputs Djinn reads and this decoder refuses.
    {kDiff + "intended-double-quoted-escaped-quote.yml", "parser"},
    // The document "!!binary" (quoted) is re-decoded as text: an empty !!binary scalar, which
    // yaml-cpp reads as null (an empty manifest) and yaml.v2 as a string that no manifest takes
    // (an error; refused here as !!binary anyway). Found by the differential fuzzer.
    {kDiff + "intended-binary-text-document.yml", "parser"},
    // A control character 600 bytes into a second document: yaml.v2 never reads that far, the
    // yaml-cpp decoder checked the whole text first.
    {kDiff + "intended-control-char-after-first-document.yml", "reader"},
};

TEST(ManifestEquivalenceTest, BothDecodersGiveTheSamePlanForEveryKnownManifest) {
    const std::vector<Case> cases = all_manifests();
    std::size_t compared = 0;
    std::set<std::string> seen_intended;
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        const auto traced = detail::parse_traced(c.text);
        const auto reference = reference::parse_with_yamlcpp(c.text);
        const std::string got = outcome(traced.result);
        const std::string want = outcome(reference);
        ++compared;
        const auto intended = kIntended.find(c.name);
        if (intended == kIntended.end()) {
            EXPECT_EQ(got, want) << "libyaml " << testing::describe(traced.result) << "\nyaml-cpp "
                                 << testing::describe(reference);
            continue;
        }
        seen_intended.insert(c.name);
        EXPECT_NE(got, want) << "listed as an intended difference, but both agree";
        EXPECT_NE(testing::documented_difference(c.text, traced.rules).find(intended->second),
                  std::string::npos)
            << testing::documented_difference(c.text, traced.rules);
    }
    EXPECT_EQ(seen_intended.size(), kIntended.size()) << "an intended difference names no case";
    // 153 when written: fixtures, both corpora, demo.sql, seed.sql, raw strings of the bench
    // and the unit tests, the hostile-data manifests and the literals above.
    EXPECT_GE(compared, 150u);
    std::printf("[ compared ] %zu manifests, %zu intended differences\n", compared,
                kIntended.size());
}

}  // namespace
}  // namespace djinn::manifest
