// Hostile data in the Djinn database: the real binary, `-once`, against PostgreSQL 15 with the
// v1.3.0 schema as the djinn_scheduler role. Every hostile cron must end as a correct build (its
// bytes intact) or a clear skip naming the cron id and the reason, never as a crash, a hang or a
// blocked batch: a plain cron due in the same batch is always dispatched.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "test_env.hpp"

namespace djinn::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kDue = "now() AT TIME ZONE 'UTC' - interval '1 minute'";
constexpr const char* kPlainManifest =
    "driver: {type: docker, image: alpine, workspace: /}\nstages: [s]\njobs:\n- stage: s\n"
    "  commands: [true]\n";

std::string md5_hex(const std::string& bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(bytes.data(), bytes.size(), digest, &n, EVP_md5(), nullptr);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < n; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 15];
    }
    return out;
}

// A YAML double-quoted scalar holding `s` exactly (the manifest language is YAML).
std::string yaml_quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\')
            out += '\\';
        out += c;
    }
    return out + "\"";
}

class HostileData : public ::testing::Test {
  protected:
    void SetUp() override {
        redis.flushall();
        dir = temp_dir();
        db.exec(
            "INSERT INTO users (id, email, username, password) VALUES "
            "(1, 'alice@example.com', 'alice', '\\x00'), (2, 'bob@example.com', 'bob', '\\x00');"
            "SELECT setval('users_id_seq', 2);"
            "INSERT INTO namespaces (id, user_id, root_id, parent_id, name, path, level) VALUES "
            "(1, 1, 1, NULL, 'acme', 'acme', 1); SELECT setval('namespaces_id_seq', 1);");
        plain = add_cron("plain control", kPlainManifest);
    }

    // Inserts a due cron with the exact bytes given (bound parameters); returns its id.
    std::int64_t add_cron(const std::string& name, const std::string& manifest, int user = 1,
                          const std::string& next_run_sql = kDue) {
        pqxx::work tx(db.admin());
        auto row = tx.exec_params1(
            "INSERT INTO cron (user_id, author_id, name, schedule, "
            "manifest, next_run) VALUES ($1, $1, $2, 'daily', $3, " +
                next_run_sql + ") RETURNING id",
            user, name, manifest);
        tx.commit();
        return row[0].as<std::int64_t>();
    }

    ProcessResult run_once(int batch_size = 1000, std::chrono::seconds bound = 30s) {
        ConfigOptions o;
        o.batch_size = batch_size;
        o.drivers = {"docker", "qemu-x86_64", "ssh", "os"};
        std::string path = dir + "/scheduler.conf";
        write_file(path, djinn_config(db, o));
        auto started = std::chrono::steady_clock::now();
        ProcessResult r = run_scheduler({"-config", path, "-once"}, {}, bound);
        elapsed = std::chrono::steady_clock::now() - started;
        return r;
    }

    std::int64_t builds_of(std::int64_t cron) {
        return db.count("SELECT count(*) FROM cron_builds WHERE cron_id = " + std::to_string(cron));
    }
    std::string build_of(std::int64_t cron) {
        return db.scalar("SELECT build_id FROM cron_builds WHERE cron_id = " +
                         std::to_string(cron));
    }
    // Text values of a one-column query, in order, exact bytes.
    std::vector<std::string> column(const std::string& sql) {
        pqxx::work tx(db.admin());
        std::vector<std::string> out;
        for (const auto& row : tx.exec(sql))
            out.push_back(row[0].c_str());
        return out;
    }
    std::int64_t queued_jobs() {
        std::int64_t n = 0;
        for (const char* d : {"docker", "qemu-x86_64", "ssh", "os"}) {
            n += redis.integer({"LLEN", std::string("builds_") + d + ":active"});
        }
        return n;
    }
    // The control cron of every test: dispatched, whatever its neighbours hold.
    void expect_plain_dispatched(const ProcessResult& r) {
        EXPECT_EQ(builds_of(plain), 1) << r.output;
        EXPECT_EQ(db.count("SELECT count(*) FROM cron WHERE id = " + std::to_string(plain) +
                           " AND prev_run IS NOT NULL AND next_run > now() AT TIME ZONE 'UTC'"),
                  1);
    }
    // Every build has its trigger, tag, driver, setup stage and create-driver job, and a job.
    void expect_whole_builds() {
        EXPECT_EQ(db.count("SELECT count(*) FROM builds b WHERE (NOT EXISTS (SELECT 1 FROM "
                           "build_triggers t WHERE t.build_id = b.id) OR NOT EXISTS (SELECT 1 "
                           "FROM build_tags g WHERE g.build_id = b.id) OR NOT EXISTS (SELECT 1 "
                           "FROM build_drivers d WHERE d.build_id = b.id) OR NOT EXISTS (SELECT 1 "
                           "FROM build_jobs j WHERE j.build_id = b.id AND j.name = "
                           "'create-driver')) AND b.id IN (SELECT build_id FROM cron_builds)"),
                  0);
        EXPECT_EQ(db.count("SELECT count(*) FROM cron_builds"), queued_jobs());
    }
    void expect_skipped(const ProcessResult& r, std::int64_t cron, const std::string& kind,
                        const std::string& reason_part = "") {
        std::string line = "cron " + std::to_string(cron) + " skipped (" + kind + ")";
        auto at = r.output.find(line);
        ASSERT_NE(at, std::string::npos) << "no \"" << line << "\" in:\n" << r.output;
        if (!reason_part.empty()) {
            auto eol = r.output.find('\n', at);
            EXPECT_NE(r.output.substr(at, eol - at).find(reason_part), std::string::npos)
                << r.output.substr(at, eol - at);
        }
        EXPECT_EQ(builds_of(cron), 0);
    }

    TestDatabase db;
    Redis redis;
    std::string dir;
    std::int64_t plain = 0;
    std::chrono::steady_clock::duration elapsed{};
};

// A manifest of several MB (a job of 40,000 commands), and a job with thousands of commands in
// a build of hundreds of jobs: written whole, byte for byte.
TEST_F(HostileData, EnormousManifestAndThousandsOfCommands) {
    std::string huge =
        "driver: {type: docker, image: alpine, workspace: /}\nstages: [big]\n"
        "jobs:\n- stage: big\n  commands:\n";
    std::string huge_commands;
    for (int i = 0; i < 40000; ++i) {
        std::string cmd = "echo " + std::to_string(i) + " " + std::string(140, 'x');
        huge += "  - " + cmd + "\n";
        huge_commands += (i ? "\n" : "") + cmd;
    }
    ASSERT_GT(huge.size(), 5u << 20);
    const auto huge_cron = add_cron("huge", huge);

    std::string many =
        "driver: {type: docker, image: alpine, workspace: /}\nstages: [a, b]\n"
        "jobs:\n- stage: a\n  commands:\n";
    std::string many_commands;
    for (int i = 0; i < 5000; ++i) {
        many += "  - step " + std::to_string(i) + "\n";
        many_commands += (i ? "\n" : "") + ("step " + std::to_string(i));
    }
    for (int j = 0; j < 500; ++j)
        many += "- {stage: b, commands: [job " + std::to_string(j) + "]}\n";
    const auto many_cron = add_cron("many", many);

    auto r = run_once();
    ASSERT_EQ(r.exit_code, 0) << r.output.substr(0, 4000);
    EXPECT_LT(elapsed, 25s);
    expect_plain_dispatched(r);
    ASSERT_EQ(builds_of(huge_cron), 1);
    ASSERT_EQ(builds_of(many_cron), 1);
    EXPECT_EQ(db.scalar("SELECT md5(manifest) FROM builds WHERE id = " + build_of(huge_cron)),
              md5_hex(huge));
    EXPECT_EQ(
        db.scalar("SELECT md5(commands) FROM build_jobs WHERE name = 'big.1' AND build_id = " +
                  build_of(huge_cron)),
        md5_hex(huge_commands));
    EXPECT_EQ(db.scalar("SELECT md5(commands) FROM build_jobs WHERE name = 'a.1' AND build_id = " +
                        build_of(many_cron)),
              md5_hex(many_commands));
    // create-driver + a.1 + 500 jobs of stage b, in order of creation.
    EXPECT_EQ(db.count("SELECT count(*) FROM build_jobs WHERE build_id = " + build_of(many_cron)),
              502);
    EXPECT_EQ(db.scalar("SELECT string_agg(name, ',' ORDER BY created_at) FROM (SELECT name, "
                        "created_at FROM build_jobs WHERE build_id = " +
                        build_of(many_cron) + " ORDER BY created_at LIMIT 4) j"),
              "create-driver,a.1,b.1,b.2");
    expect_whole_builds();
}

// What a UTF8 database accepts that is closest to invalid UTF-8: U+FFFD, control characters in
// names (a manifest may not hold them: YAML refuses them), bidi overrides, zero-width characters,
// 4-byte emoji. Every byte survives into the build's rows.
TEST_F(HostileData, UnicodeAndControlCharactersSurvive) {
    const std::string odd =
        "\xEF\xBF\xBD \xE2\x80\xAE"
        "evil\xE2\x80\xAC \xE2\x80\x8B"
        "zw \xF0\x9F\x98\x80 \xF0\x9F\x9A\x80 caf\xC3\xA9 \xD7\xA9\xD7\x9C";
    const std::string name = "odd\x01\x07\x1b[31m\t\x7f " + odd;
    const std::string cmd = "echo " + odd;
    const std::string manifest =
        "driver: {type: docker, image: " + yaml_quoted(odd) + ", workspace: /}\n" + "env: [" +
        yaml_quoted("K_" + odd + "=" + odd) + "]\n" + "stages: [" + yaml_quoted(odd) +
        "]\njobs:\n- stage: " + yaml_quoted(odd) + "\n  name: " + yaml_quoted(odd) +
        "\n  commands: [" + yaml_quoted(cmd) + "]\n  artifacts: [" +
        yaml_quoted("out/" + odd + " => " + odd) + "]\n";
    const auto cron = add_cron(name, manifest);
    // A control character inside the manifest is refused by the YAML reader (as yaml.v2 does).
    const auto ctl = add_cron("control in manifest",
                              "driver: {type: docker, image: \"a\x01b\", workspace: /}\n");
    // Line breaks in a cron name must not forge log lines.
    const auto forged =
        add_cron("x\n2030-01-01T00:00:00Z [error] forged line", "driver: {type: nope}\n");

    auto r = run_once();
    ASSERT_EQ(r.exit_code, 0) << r.output;
    expect_plain_dispatched(r);
    ASSERT_EQ(builds_of(cron), 1) << r.output;
    const std::string b = build_of(cron);
    EXPECT_EQ(column("SELECT manifest FROM builds WHERE id = " + b), std::vector{manifest});
    EXPECT_EQ(column("SELECT name FROM build_tags WHERE build_id = " + b),
              std::vector<std::string>{"cron:odd\x01\x07\x1b[31m\t\x7f-" + [&] {
                  std::string s = odd;
                  for (char& c : s)
                      if (c == ' ')
                          c = '-';
                  return s;
              }()});
    auto comment = column("SELECT comment FROM build_triggers WHERE build_id = " + b);
    ASSERT_EQ(comment.size(), 1u);
    EXPECT_EQ(comment[0].rfind(name + ": Scheduled build, next run ", 0), 0u) << comment[0];
    EXPECT_EQ(
        column("SELECT name FROM build_stages WHERE build_id = " + b + " ORDER BY created_at"),
        (std::vector<std::string>{"setup - #2", odd}));
    EXPECT_EQ(column("SELECT commands FROM build_jobs WHERE build_id = " + b +
                     " AND stage_id = (SELECT id FROM build_stages WHERE build_id = " + b +
                     " AND name <> 'setup - #2')"),
              std::vector{cmd});
    EXPECT_EQ(column("SELECT key || '|' || value FROM build_variables WHERE build_id = " + b),
              std::vector<std::string>{"K_" + odd + "|" + odd});
    EXPECT_EQ(column("SELECT source || '|' || name FROM build_artifacts WHERE build_id = " + b),
              std::vector<std::string>{"out/" + odd + "|" + odd});
    EXPECT_EQ(column("SELECT config::jsonb ->> 'image' FROM build_drivers WHERE build_id = " + b),
              std::vector{odd});
    expect_skipped(r, ctl, "bad_manifest");
    expect_skipped(r, forged, "unknown_driver");
    for (const char* forged_line : {"\n2030-01-01T00:00:00Z [error] forged line"}) {
        EXPECT_EQ(r.output.find(forged_line), std::string::npos) << "a cron name broke a log line";
    }
    expect_whole_builds();
}

// Quotes, backslashes, braces, commas and the word NULL in every text that goes through the
// array literals of the set-based statements (pg_array.cpp) and into JSON.
TEST_F(HostileData, SqlAndArrayLiteralMetacharactersAreData) {
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
    db.exec(
        "INSERT INTO users (id, email, username, password) VALUES (3, "
        "'q\"''\\@example.com', 'o''\"\\{},NULL', '\\x00')");
    std::string stages, jobs, env, objects;
    std::vector<std::string> expect_commands, expect_env, expect_objects;
    for (std::size_t i = 0; i < nasty.size(); ++i) {
        const std::string& s = nasty[i];
        stages += (i ? ", " : "") + yaml_quoted("st" + std::to_string(i) + s);
        jobs += "- stage: " + yaml_quoted("st" + std::to_string(i) + s) + "\n  commands: [" +
                yaml_quoted(s) + ", " + yaml_quoted("x" + s) + "]\n";
        expect_commands.push_back(s + "\nx" + s);
        env += (i ? ", " : "") + yaml_quoted("K" + std::to_string(i) + "=" + s);
        expect_env.push_back("K" + std::to_string(i) + "|" + s);
        const std::string object = "obj" + std::to_string(i) + s;
        // The `name => path` notation trims spaces around each side: leave the padded one out.
        if (s != " padded ") {
            objects += (objects.empty() ? "" : ", ") + yaml_quoted(object + " => /dst/" + s);
            expect_objects.push_back(object + "|/dst/" + s);
        }
        pqxx::work tx(db.admin());
        tx.exec_params(
            "INSERT INTO objects (user_id, author_id, hash, name, type, size, md5, "
            "sha256) VALUES (3, 3, $1, $2, 'text/plain', 1, '\\x00', '\\x00')",
            "h" + std::to_string(i), object);
        tx.commit();
    }
    const std::string manifest = "driver: {type: docker, image: " + yaml_quoted(nasty[0]) + ", " +
                                 yaml_quoted("k\"\\{") + ": " + yaml_quoted("NULL") +
                                 ", workspace: /}\nenv: [" + env + "]\nobjects: [" + objects +
                                 "]\nstages: [" + stages + "]\njobs:\n" + jobs;
    std::vector<std::int64_t> crons;
    for (const auto& s : nasty)
        crons.push_back(add_cron(s.empty() ? "x" : s, manifest, 3));

    auto r = run_once(4);  // several batches, hostile names spread over them
    ASSERT_EQ(r.exit_code, 0) << r.output;
    expect_plain_dispatched(r);
    EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'builds'"), 1);
    for (std::size_t k = 0; k < crons.size(); ++k) {
        SCOPED_TRACE("cron name " + nasty[k]);
        ASSERT_EQ(builds_of(crons[k]), 1) << r.output;
        const std::string b = build_of(crons[k]);
        std::string tag = "cron:" + (nasty[k].empty() ? std::string("x") : nasty[k]);
        for (char& c : tag)
            if (c == ' ')
                c = '-';
        EXPECT_EQ(column("SELECT name FROM build_tags WHERE build_id = " + b),
                  std::vector<std::string>{tag});
        EXPECT_EQ(column("SELECT data::text FROM build_triggers WHERE build_id = " + b),
                  std::vector<std::string>{
                      "{\"email\":\"q\\\"'\\\\@example.com\",\"username\":\"o'\\\"\\\\{},NULL\"}"});
        EXPECT_EQ(column("SELECT manifest FROM builds WHERE id = " + b), std::vector{manifest});
        EXPECT_EQ(column("SELECT commands FROM build_jobs WHERE build_id = " + b +
                         " AND name <> 'create-driver' ORDER BY created_at"),
                  expect_commands);
        EXPECT_EQ(column("SELECT key || '|' || value FROM build_variables WHERE build_id = " + b +
                         " ORDER BY id"),
                  expect_env);
        EXPECT_EQ(column("SELECT name || '|' || source FROM build_objects WHERE build_id = " + b +
                         " ORDER BY id"),
                  expect_objects);
        std::vector<std::string> expect_stages{"setup - #" + std::to_string(k + 1)};
        for (std::size_t i = 0; i < nasty.size(); ++i) {
            expect_stages.push_back("st" + std::to_string(i) + nasty[i]);
        }
        EXPECT_EQ(
            column("SELECT name FROM build_stages WHERE build_id = " + b + " ORDER BY created_at"),
            expect_stages);
        EXPECT_EQ(column("SELECT (config::jsonb ->> 'image') || '|' || (config::jsonb ->> "
                         "'k\"\\{') FROM build_drivers WHERE build_id = " +
                         b),
                  std::vector<std::string>{nasty[0] + "|NULL"});
    }
    expect_whole_builds();
}

// Repeated stages (a stage row each time; jobs go to the last one, as v1.3.0 maps name -> id),
// repeated job names and allow_failures entries, jobs of stages not listed.
TEST_F(HostileData, DuplicateStagesAndJobNames) {
    const auto cron =
        add_cron("dups",
                 "driver: {type: docker, image: alpine, workspace: /}\n"
                 "stages: [test, build, test, test]\nallow_failures: [test, test, nope]\njobs:\n"
                 "- {stage: test, name: same, commands: [a]}\n"
                 "- {stage: test, name: same, commands: [b]}\n"
                 "- {stage: build, commands: [c]}\n"
                 "- {stage: missing, commands: [d]}\n");
    auto r = run_once();
    ASSERT_EQ(r.exit_code, 0) << r.output;
    expect_plain_dispatched(r);
    ASSERT_EQ(builds_of(cron), 1) << r.output;
    const std::string b = build_of(cron);
    EXPECT_EQ(db.scalar("SELECT string_agg(name || ':' || can_fail, ',' ORDER BY created_at) FROM "
                        "build_stages WHERE build_id = " +
                        b),
              "setup - #2:false,test:true,build:false,test:true,test:true");
    // Both "same" jobs, in the last "test" stage; build.1 in "build"; the "missing" one dropped.
    EXPECT_EQ(db.scalar("SELECT string_agg(j.name || '@' || s.name || '#' || (SELECT count(*) "
                        "FROM build_stages s2 WHERE s2.build_id = s.build_id AND s2.created_at "
                        "<= s.created_at), ',' ORDER BY j.created_at) FROM build_jobs j JOIN "
                        "build_stages s ON s.id = j.stage_id WHERE j.build_id = " +
                        b),
              "create-driver@setup - #2#1,same@test#5,same@test#5,build.1@build#3");
    expect_whole_builds();
}

// Manifests that cannot become a build: each skipped with its id and reason, and advanced; a
// YAML bomb and deep nesting are refused quickly.
TEST_F(HostileData, UnbuildableManifestsAreSkippedWithAReason) {
    // Billion laughs: aliases of lists of aliases (cheap to parse, refused where decoded) ...
    std::string bomb = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
    for (int i = 1; i <= 9; ++i) {
        const std::string p = "*a" + std::to_string(i - 1);
        bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + p + ", " + p + ", " +
                p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + "]\n";
    }
    bomb += "driver: {type: docker, image: alpine}\nstages: *a9\n";
    const auto bomb_cron = add_cron("bomb", bomb);
    // ... and of merge keys, which the decoder must expand: 9^9 keys if nothing stopped it.
    std::string laughs = "m0: &m0 {a: lol, b: lol, c: lol, d: lol, e: lol, f: lol}\n";
    for (int i = 1; i <= 9; ++i) {
        const std::string p = "*m" + std::to_string(i - 1);
        laughs += "m" + std::to_string(i) + ": &m" + std::to_string(i) + " {<<: [" + p + ", " + p +
                  ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p +
                  "]}\n";
    }
    laughs += "driver:\n  <<: *m9\n  type: docker\n";
    const auto laughs_cron = add_cron("merge laughs", laughs);
    const auto merge_bomb = add_cron("merge bomb",
                                     "a: &a {x: 1}\nb: &b {<<: [*a, *a, *a, *a]}\n"
                                     "driver: &d {<<: *d, type: docker}\n");
    const auto deep =
        add_cron("deep", "driver: {type: docker}\nstages: " + std::string(100000, '[') +
                             std::string(100000, ']') + "\n");
    const auto no_eq = add_cron("env without =", std::string(kPlainManifest) + "env: [A=1, B]\n");
    const auto empty = add_cron("empty", "");
    const auto scalar = add_cron("scalar", "just words");
    const auto wrong_types = add_cron("wrong types", "driver: [docker]\njobs: {a: b}\n");
    const auto binary = add_cron("binary", "driver: {type: !!binary ZG9ja2Vy}\n");

    auto r = run_once(3);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_LT(elapsed, 20s);
    expect_plain_dispatched(r);
    expect_skipped(r, bomb_cron, "bad_manifest");
    expect_skipped(r, laughs_cron, "bad_manifest", "aliasing");
    expect_skipped(r, merge_bomb, "bad_manifest");
    expect_skipped(r, deep, "bad_manifest");
    expect_skipped(r, no_eq, "bad_manifest", "env[1]");
    expect_skipped(r, empty, "unknown_driver");
    expect_skipped(r, scalar, "bad_manifest");
    expect_skipped(r, wrong_types, "bad_manifest");
    expect_skipped(r, binary, "bad_manifest", "binary");
    // Skipped crons advance (no prev_run): the next pass does not see them again.
    EXPECT_EQ(db.count("SELECT count(*) FROM cron WHERE id <> " + std::to_string(plain) +
                       " AND (prev_run IS NOT NULL OR next_run <= now() AT TIME ZONE 'UTC')"),
              0);
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 1);
    expect_whole_builds();
}

// References to what does not exist: objects the user does not have (or another user has),
// a `namespace` the manifest names that does not exist, an owner whose row is gone.
TEST_F(HostileData, ReferencesToMissingObjects) {
    db.exec(
        "INSERT INTO objects (user_id, author_id, hash, name, type, size, md5, sha256) VALUES "
        "(2, 2, 'bobs', 'bob.bin', 'x', 1, '\\x00', '\\x00'), "
        "(1, 1, 'mine', 'mine.bin', 'x', 1, '\\x00', '\\x00')");
    const auto cron = add_cron("refs",
                               "namespace: does/not/exist\n"
                               "driver: {type: docker, image: alpine, workspace: /}\n"
                               "objects: [missing.bin, bob.bin => /x, mine.bin]\n"
                               "sources: [\"\", \"https://x.invalid/r.git\"]\n");
    // A cron whose user row was deleted (Djinn soft-deletes; a hard delete is hostile).
    db.exec(
        "INSERT INTO users (id, email, username, password) VALUES (9, 'gone@x', 'gone', "
        "'\\x00')");
    const auto orphan = add_cron("orphan", kPlainManifest, 9);
    db.exec("SET LOCAL session_replication_role = replica; DELETE FROM users WHERE id = 9");
    auto r = run_once();
    ASSERT_EQ(r.exit_code, 0) << r.output;
    expect_plain_dispatched(r);
    ASSERT_EQ(builds_of(cron), 1) << r.output;
    const std::string b = build_of(cron);
    EXPECT_EQ(column("SELECT name || '|' || source FROM build_objects WHERE build_id = " + b),
              std::vector<std::string>{"mine.bin|mine.bin"});
    EXPECT_EQ(db.scalar("SELECT coalesce(namespace_id::text, 'none') FROM builds WHERE id = " + b),
              "none");
    EXPECT_EQ(db.scalar("SELECT string_agg(name, ',' ORDER BY created_at) FROM build_jobs WHERE "
                        "build_id = " +
                        b),
              "create-driver,clone.1,clone.2");
    EXPECT_EQ(builds_of(orphan), 0) << r.output;
    EXPECT_NE(r.output.find("cron " + std::to_string(orphan) + " skipped"), std::string::npos)
        << r.output;
    expect_whole_builds();
}

// A build that cannot be written because of the data (the user's build number is at the top
// of `integer`): that cron stays due and is reported, the rest of its batch goes.
TEST_F(HostileData, UnwritableBuildNumberStaysDueAndDoesNotBlockTheBatch) {
    db.exec(
        "INSERT INTO builds (user_id, number, manifest, status, secret) VALUES "
        "(2, 2147483647, 'driver: {type: docker}', 'passed', 'x')");
    const auto full = add_cron("numbers exhausted", kPlainManifest, 2);
    const auto other = add_cron("another", kPlainManifest, 1);
    auto r = run_once();
    ASSERT_EQ(r.exit_code, 0) << r.output;
    expect_plain_dispatched(r);
    EXPECT_EQ(builds_of(other), 1);
    EXPECT_EQ(builds_of(full), 0);
    EXPECT_NE(r.output.find("cron " + std::to_string(full) + " skipped"), std::string::npos)
        << r.output;
    EXPECT_EQ(db.count("SELECT count(*) FROM cron WHERE id = " + std::to_string(full) +
                       " AND prev_run IS NULL AND next_run <= now() AT TIME ZONE 'UTC'"),
              1);
    expect_whole_builds();
}

// next_run values PostgreSQL accepts but Djinn never writes: -infinity and dates BC sort first
// among the due crons. They used to block every pass:
// DispatchStore::dispatch_batch parses c.next_run::text with parse_pg_timestamp, which refuses
// "-infinity" and "... BC", and parse_ts throws std::logic_error out of the batch; as these
// rows sort first, every pass fails at the same row and no cron is ever dispatched again.
// Fix (src/store/dispatch_store.cpp, kDueSql + the loop over rows): select
// `isfinite(c.next_run) AND c.next_run >= '0001-01-01'` as an extra column and turn a cron
// whose next_run is not a finite AD timestamp (or does not parse) into a skip "bad_next_run"
// advanced to schedule::next_after(schedule, now); the UPDATE's `c.next_run = t.old_next_run`
// matches the text as read ('-infinity'::timestamp = '-infinity' holds).
TEST_F(HostileData, NonFiniteAndBcNextRunDoNotBlockThePass) {
    const auto minus_inf = add_cron("minus infinity", kPlainManifest, 1, "'-infinity'");
    const auto bc = add_cron("before christ", kPlainManifest, 1, "'0044-03-15 00:00:00 BC'");
    const auto plus_inf = add_cron("plus infinity", kPlainManifest, 1, "'infinity'");
    auto r = run_once();
    EXPECT_EQ(r.exit_code, 0) << r.output;
    expect_plain_dispatched(r);
    for (auto cron : {minus_inf, bc}) {
        EXPECT_NE(r.output.find("cron " + std::to_string(cron) + " skipped"), std::string::npos)
            << r.output;
        EXPECT_EQ(db.count("SELECT count(*) FROM cron WHERE id = " + std::to_string(cron) +
                           " AND isfinite(next_run) AND next_run > now() AT TIME ZONE 'UTC'"),
                  1);
    }
    EXPECT_EQ(builds_of(plus_inf), 0);  // never due
}

}  // namespace
}  // namespace djinn::testing
