// Privileges under Djinn's exact `djinn_scheduler` role (contract section 1a), beyond
// core_pass_test's ExactDjinnRoleKeepsVariableCronsDueAndSaysWhichGrant: each missing sequence
// grant holds back exactly the crons that need it, the start-up check names only what is
// missing, and a missing table grant is named with its GRANT and loses no cron.
#include <gtest/gtest.h>

#include <string>

#include "test_env.hpp"

namespace djinn::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kDue = "now() AT TIME ZONE 'UTC' - interval '1 minute'";

std::size_t occurrences(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

class SecretsExactRole : public ::testing::Test {
  protected:
    void SetUp() override {
        redis.flushall();
        dir = temp_dir();
        // The role exactly as Djinn v1.3.0 grants it: without the two sequence grants.
        db.exec(
            "REVOKE USAGE ON SEQUENCE build_variables_id_seq, build_keys_id_seq FROM "
            "djinn_scheduler");
        db.exec(
            "INSERT INTO users (id, email, username, password) VALUES "
            "(1, 'env@x', 'env', '\\x00'), (2, 'key@x', 'key', '\\x00'), "
            "(3, 'plain@x', 'plain', '\\x00');"
            "INSERT INTO keys (user_id, author_id, name, key, config) VALUES "
            "(2, 2, 'id_key', '\\x01', '');"
            "INSERT INTO cron (id, user_id, author_id, name, schedule, manifest, next_run) "
            "VALUES (1, 1, 1, 'env only', 'daily', 'driver: {type: docker, image: a, "
            "workspace: /}\nenv: [A=1]', " +
            std::string(kDue) +
            "), "
            "(2, 2, 2, 'key only', 'daily', 'driver: {type: docker, image: a, workspace: /}', " +
            kDue +
            "), (3, 3, 3, 'plain', 'daily', 'driver: {type: docker, image: a, "
            "workspace: /}', " +
            kDue + ")");
    }
    ProcessResult run() {
        ConfigOptions o;
        std::string path = dir + "/scheduler.conf";
        write_file(path, djinn_config(db, o));
        return run_scheduler({"-config", path, "-once"}, {}, 30s);
    }
    std::int64_t builds_of(int cron) {
        return db.count("SELECT count(*) FROM cron_builds WHERE cron_id = " + std::to_string(cron));
    }
    bool still_due(int cron) {
        return db.count("SELECT count(*) FROM cron WHERE id = " + std::to_string(cron) +
                        " AND prev_run IS NULL AND next_run <= now() AT TIME ZONE 'UTC'") == 1;
    }

    TestDatabase db;
    Redis redis;
    std::string dir;
};

TEST_F(SecretsExactRole, EachSequenceGrantHoldsBackOnlyTheCronsThatNeedIt) {
    auto r = run();
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // Exactly the two grants Djinn forgot, nothing else.
    EXPECT_EQ(occurrences(r.output, "GRANT "), 2u) << r.output;
    EXPECT_EQ(builds_of(3), 1) << r.output;
    EXPECT_TRUE(still_due(1));  // env entries are build_variables rows
    EXPECT_TRUE(still_due(2));  // the user's key is a build_keys row
    EXPECT_NE(r.output.find("cron 1 skipped (missing_privilege)"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("cron 2 skipped (missing_privilege)"), std::string::npos) << r.output;
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 1) << "no half-written build";

    db.exec("GRANT USAGE ON SEQUENCE build_variables_id_seq TO djinn_scheduler");
    auto r2 = run();
    ASSERT_EQ(r2.exit_code, 0) << r2.output;
    EXPECT_EQ(occurrences(r2.output, "GRANT "), 1u) << r2.output;
    EXPECT_NE(r2.output.find("GRANT USAGE ON SEQUENCE public.build_keys_id_seq TO "
                             "djinn_scheduler;"),
              std::string::npos)
        << r2.output;
    EXPECT_EQ(builds_of(1), 1) << r2.output;
    EXPECT_EQ(db.scalar("SELECT string_agg(key || '=' || value, ',') FROM build_variables"), "A=1");
    EXPECT_TRUE(still_due(2));

    db.exec("GRANT USAGE ON SEQUENCE build_keys_id_seq TO djinn_scheduler");
    auto r3 = run();
    ASSERT_EQ(r3.exit_code, 0) << r3.output;
    EXPECT_EQ(occurrences(r3.output, "GRANT "), 0u) << r3.output;
    EXPECT_EQ(builds_of(2), 1) << r3.output;
    EXPECT_EQ(db.scalar("SELECT name || '@' || location FROM build_keys"),
              "id_key@/root/.ssh/id_key");
    EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}), 3);
}

TEST_F(SecretsExactRole, MissingTableGrantIsNamedAndLosesNoCron) {
    db.exec("REVOKE INSERT ON build_tags FROM djinn_scheduler");
    auto r = run();
    EXPECT_GE(r.exit_code, 0) << "crashed:\n" << r.output;
    EXPECT_NE(r.output.find("GRANT INSERT ON TABLE public.build_tags TO djinn_scheduler;"),
              std::string::npos)
        << r.output;
    // Nothing half-written, every cron still due for when the grant is given.
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 0) << r.output;
    for (int cron : {1, 2, 3})
        EXPECT_TRUE(still_due(cron)) << cron;
    EXPECT_EQ(redis.integer({"LLEN", "builds_docker:active"}), 0);

    db.exec("GRANT INSERT ON build_tags TO djinn_scheduler");
    auto r2 = run();
    ASSERT_EQ(r2.exit_code, 0) << r2.output;
    EXPECT_EQ(builds_of(3), 1) << r2.output;
}

}  // namespace
}  // namespace djinn::testing
