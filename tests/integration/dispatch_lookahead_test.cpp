// DispatchStore reads the due cursor one batch ahead and parses the next batch's manifests while
// the current one is written. The parsed result is only a cache: these tests drive batches by
// hand against a real PostgreSQL 15, as the djinn_scheduler role, and change, break or delete
// crons between two batches, after their manifests were read ahead.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "store/dispatch_store.hpp"
#include "store/pg_connection.hpp"
#include "test_env.hpp"

namespace djinn::testing {
namespace {

constexpr const char* kDocker =
    "driver: {type: docker, image: alpine}\nstages: [test]\njobs:\n"
    "- {stage: test, commands: [make]}\n";
constexpr const char* kQemu =
    "driver: {type: qemu, image: debian/stable}\nstages: [test]\njobs:\n"
    "- {stage: test, commands: [make check]}\n";

class DispatchLookahead : public ::testing::Test {
  protected:
    void SetUp() override {
        db.exec(
            "INSERT INTO users (id, email, username, password) VALUES "
            "(1, 'alice@example.com', 'alice', '\\x00');"
            "SELECT setval('users_id_seq', 1);");
        auto r = store::PgConnection::open(db.scheduler_config(), {});
        ASSERT_TRUE(std::holds_alternative<std::unique_ptr<store::PgConnection>>(r))
            << std::get<store::PgError>(r).message;
        conn = std::move(std::get<std::unique_ptr<store::PgConnection>>(r));
    }

    // `n` due crons (all of user 1, due one second apart: the batches take them in id order).
    std::vector<std::int64_t> add_crons(int n) {
        std::vector<std::int64_t> ids;
        pqxx::work tx(db.admin());
        for (int i = 0; i < n; ++i) {
            auto row = tx.exec_params1(
                "INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run) "
                "VALUES (1, 1, $1, 'daily', $2, (now() AT TIME ZONE 'UTC') - interval '1 day' "
                "+ $3 * interval '1 second') RETURNING id",
                "cron " + std::to_string(i), std::string(kDocker), i);
            ids.push_back(row[0].as<std::int64_t>());
        }
        tx.commit();
        return ids;
    }

    store::BatchOutcome batch(std::int64_t limit) {
        auto r = dispatch.dispatch_batch(*conn, limit, {}, false);
        if (auto* e = std::get_if<store::PgError>(&r)) {
            ADD_FAILURE() << e->message;
            return {};
        }
        return std::move(std::get<store::BatchOutcome>(r));
    }

    std::string scalar(const std::string& sql) { return db.scalar(sql); }

    TestDatabase db;
    SystemClock clock;
    store::DispatchStore dispatch{{"docker", "qemu-x86_64"}, "salt", clock};
    std::unique_ptr<store::PgConnection> conn;
};

TEST_F(DispatchLookahead, LaterBatchesArePlannedAheadAndWriteTheSameRows) {
    add_crons(25);
    auto b1 = batch(10);
    auto b2 = batch(10);
    auto b3 = batch(10);
    auto b4 = batch(10);
    EXPECT_EQ(b1.taken, 10u);
    EXPECT_EQ(b1.planned_ahead, 0u);  // nothing was read ahead of the first batch
    EXPECT_EQ(b2.taken, 10u);
    EXPECT_EQ(b2.planned_ahead, 10u);
    EXPECT_EQ(b3.taken, 5u);
    EXPECT_EQ(b3.planned_ahead, 5u);
    EXPECT_EQ(b4.taken, 0u);
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 25);
    // Rows of a build planned ahead are those of a build planned in its own batch.
    EXPECT_EQ(db.count("SELECT count(DISTINCT (type::text, config::text)) FROM build_drivers"), 1);
    EXPECT_EQ(db.count("SELECT count(*) FROM build_jobs WHERE commands = 'make'"), 25);
    EXPECT_EQ(db.count("SELECT count(*) FROM cron WHERE next_run <= now() AT TIME ZONE 'UTC'"), 0);
}

TEST_F(DispatchLookahead, ManifestChangedAfterItWasReadAheadIsParsedAgain) {
    auto ids = add_crons(20);
    auto b1 = batch(10);
    ASSERT_EQ(b1.taken, 10u);
    // The next batch's manifests were read (and are being parsed) already; a user edits one.
    const std::int64_t edited = ids[13];
    {
        pqxx::work tx(db.admin());
        tx.exec_params("UPDATE cron SET manifest = $1 WHERE id = $2", std::string(kQemu), edited);
        tx.commit();
    }
    auto b2 = batch(10);
    ASSERT_EQ(b2.taken, 10u);
    EXPECT_EQ(b2.planned_ahead, 9u);
    std::string build;
    for (const auto& b : b2.builds) {
        if (b.cron_id == edited) {
            EXPECT_EQ(b.queue_driver, "qemu-x86_64");
            build = std::to_string(b.build_id);
        } else {
            EXPECT_EQ(b.queue_driver, "docker") << "cron " << b.cron_id;
        }
    }
    ASSERT_FALSE(build.empty());
    EXPECT_EQ(scalar("SELECT manifest FROM builds WHERE id = " + build), kQemu);
    EXPECT_EQ(scalar("SELECT type::text FROM build_drivers WHERE build_id = " + build), "qemu");
    EXPECT_EQ(db.count("SELECT count(*) FROM build_jobs WHERE commands = 'make check'"), 1);
    EXPECT_EQ(db.count("SELECT count(*) FROM build_jobs WHERE commands = 'make check' AND "
                       "build_id = " +
                       build),
              1);
}

TEST_F(DispatchLookahead, CronBrokenOrDeletedAfterItWasReadAheadIsHandledAsRead) {
    auto ids = add_crons(20);
    ASSERT_EQ(batch(10).taken, 10u);
    const std::int64_t broken = ids[11];
    const std::int64_t deleted = ids[12];
    const std::int64_t advanced = ids[14];
    {
        pqxx::work tx(db.admin());
        tx.exec_params("UPDATE cron SET manifest = 'driver: [' WHERE id = $1", broken);
        tx.exec_params("DELETE FROM cron WHERE id = $1", deleted);
        // Dispatched by someone else meanwhile: no longer due.
        tx.exec_params(
            "UPDATE cron SET next_run = (now() AT TIME ZONE 'UTC') + interval '1 day' "
            "WHERE id = $1",
            advanced);
        tx.commit();
    }
    auto b2 = batch(10);
    EXPECT_EQ(b2.taken, 8u);
    EXPECT_EQ(b2.planned_ahead, 7u);
    ASSERT_EQ(b2.skipped.size(), 1u);
    EXPECT_EQ(b2.skipped[0].cron_id, broken);
    EXPECT_EQ(b2.skipped[0].kind, "bad_manifest");
    EXPECT_EQ(b2.builds.size(), 7u);
    EXPECT_EQ(
        db.count("SELECT count(*) FROM cron_builds WHERE cron_id IN (" + std::to_string(broken) +
                 "," + std::to_string(deleted) + "," + std::to_string(advanced) + ")"),
        0);
    EXPECT_EQ(batch(10).taken, 0u);
    EXPECT_EQ(db.count("SELECT count(*) FROM builds"), 17);
}

}  // namespace
}  // namespace djinn::testing
