#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "config/config.hpp"
#include "config/source_file.hpp"

namespace djinn::config {
namespace {

namespace fs = std::filesystem;

class ConfigIncludeTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "djinn-config-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        // Canonical, so that messages naming canonical paths can be compared.
        dir_ = fs::canonical(pattern);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string write(const std::string& name, const std::string& text) {
        fs::path path = dir_ / name;
        fs::create_directories(path.parent_path());
        std::ofstream(path) << text;
        return path.string();
    }

    std::vector<std::string> errors(const LoadResult& result) {
        std::vector<std::string> out;
        for (const auto& e : result.errors) {
            out.push_back(e.to_string());
        }
        return out;
    }

    fs::path dir_;
};

TEST_F(ConfigIncludeTest, StringAndArrayFormsRelativeToTheIncludingFile) {
    write("db.conf", "database {\n  name \"from_include\"\n}\n");
    write("redis.conf", "redis { addr \"r:1\" }\n");
    write("sub/log.conf", "log debug \"/dev/stderr\"\ninclude \"../more/drivers.conf\"\n");
    write("more/drivers.conf", "drivers [\"docker\",]\n");
    const std::string main = write("scheduler.conf",
                                   "interval 2m\n"
                                   "include \"db.conf\"\n"
                                   "include [\n"
                                   "    \"redis.conf\",\n"
                                   "    \"sub/log.conf\",\n"
                                   "]\n"
                                   "batch_size 7\n");
    auto result = load_file(main);
    ASSERT_TRUE(result.errors.empty()) << errors(result)[0];
    const Config& c = *result.config;
    EXPECT_EQ(c.source, main);
    EXPECT_EQ(c.interval, std::chrono::minutes(2));
    EXPECT_EQ(c.database.name, "from_include");
    EXPECT_EQ(c.redis.addr, "r:1");
    EXPECT_EQ(c.log.level, LogLevel::debug);
    EXPECT_EQ(c.drivers, (std::vector<std::string>{"docker"}));
    EXPECT_EQ(c.batch_size, 7);
}

TEST_F(ConfigIncludeTest, EnvironmentVariablesInTheIncludePath) {
    write("conf.d/redis.conf", "redis { addr \"r:2\" }\n");
    ::setenv("DJINN_TEST_CONF_DIR", "conf.d", 1);
    auto result = load_file(write("main.conf", "include \"${DJINN_TEST_CONF_DIR}/redis.conf\"\n"));
    ::unsetenv("DJINN_TEST_CONF_DIR");
    ASSERT_TRUE(result.errors.empty()) << errors(result)[0];
    EXPECT_EQ(result.config->redis.addr, "r:2");
}

TEST_F(ConfigIncludeTest, ErrorsInIncludedFilesNameThatFile) {
    const std::string db = write("db.conf", "database {\n  addr \"nohost\"\n}\n");
    const std::string main = write("main.conf", "include \"db.conf\"\nintervall 1m\n");
    EXPECT_EQ(errors(load_file(main)),
              (std::vector<std::string>{
                  // Files in the order they were read: the including file first.
                  main + ":2:1: intervall: unknown key (did you mean 'interval'?)",
                  db + ":2:8: database.addr: expected \"host:port\", got \"nohost\" (no port)",
              }));
}

TEST_F(ConfigIncludeTest, Cycle) {
    const std::string a = write("a.conf", "include \"b.conf\"\n");
    const std::string b = write("b.conf", "interval 1m\ninclude \"a.conf\"\n");
    EXPECT_EQ(errors(load_file(a)), (std::vector<std::string>{b + ":2:9: include: include cycle: " +
                                                              a + " -> " + b + " -> " + a}));
}

TEST_F(ConfigIncludeTest, SelfInclude) {
    const std::string a = write("a.conf", "include [\"./a.conf\",]\n");
    EXPECT_EQ(errors(load_file(a)),
              (std::vector<std::string>{a + ":1:10: include: include cycle: " + a + " -> " + a}));
}

TEST_F(ConfigIncludeTest, SameFileTwice) {
    write("common.conf", "redis { addr \"r:1\" }\n");
    write("b.conf", "include \"common.conf\"\n");
    const std::string a = write("a.conf", "include [\"common.conf\", \"b.conf\",]\n");
    EXPECT_EQ(errors(load_file(a)),
              (std::vector<std::string>{(dir_ / "b.conf").string() +
                                        ":1:9: include: " + (dir_ / "common.conf").string() +
                                        " is already included from " + a}));
}

TEST_F(ConfigIncludeTest, MissingFileAndBadForms) {
    const std::string a = write("a.conf",
                                "include \"nope.conf\"\n"
                                "include 5\n"
                                "include [\"x\", 5,]\n"
                                "database { include \"db.conf\" }\n");
    EXPECT_EQ(errors(load_file(a)),
              (std::vector<std::string>{
                  a + ":1:9: include: cannot read " + (dir_ / "nope.conf").string() +
                      ": No such file or directory",
                  a + ":2:9: include: include takes strings, got integer",
                  a + ":3:10: include: cannot read " + (dir_ / "x").string() +
                      ": No such file or directory",
                  a + ":3:15: include: include takes strings, got integer",
                  a + ":4:12: database: include is only allowed at the top level",
              }));
}

// A device, a FIFO or a directory is not a configuration file: `include "/dev/zero"` used to read
// forever at start-up, and a FIFO without a writer blocked in open().
TEST_F(ConfigIncludeTest, OnlyRegularFilesAreRead) {
    const std::string fifo = (dir_ / "pipe").string();
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    fs::create_directories(dir_ / "adir");
    const std::string a = write("a.conf",
                                "include \"/dev/zero\"\n"
                                "include \"pipe\"\n"
                                "include \"adir\"\n");
    EXPECT_EQ(errors(load_file(a)),
              (std::vector<std::string>{
                  a + ":1:9: include: cannot read /dev/zero: a character device, not a regular "
                      "file",
                  a + ":2:9: include: cannot read " + fifo + ": a FIFO, not a regular file",
                  a + ":3:9: include: cannot read " + (dir_ / "adir").string() +
                      ": a directory, not a regular file",
              }));
    EXPECT_EQ(errors(load_file("/dev/zero")),
              (std::vector<std::string>{
                  "/dev/zero: cannot read: a character device, not a regular file"}));
    EXPECT_EQ(errors(load_file(fifo)),
              (std::vector<std::string>{fifo + ": cannot read: a FIFO, not a regular file"}));
}

TEST_F(ConfigIncludeTest, OversizedFileIsRefused) {
    const std::string big = write("big.conf", std::string(kMaxConfigBytes + 1, '#'));
    const std::string a = write("a.conf", "include \"big.conf\"\n");
    EXPECT_EQ(errors(load_file(a)),
              (std::vector<std::string>{a + ":1:9: include: cannot read " + big + ": " +
                                        std::to_string(kMaxConfigBytes + 1) +
                                        " bytes; a configuration file is at most " +
                                        std::to_string(kMaxConfigBytes) + " bytes"}));
    // Exactly at the limit: read (and parsed: a file of comments is an empty configuration).
    write("big.conf", std::string(kMaxConfigBytes, '#'));
    EXPECT_TRUE(load_file(big).errors.empty()) << errors(load_file(big))[0];
}

TEST_F(ConfigIncludeTest, AbsolutePaths) {
    const std::string db = write("elsewhere/db.conf", "database { name \"abs\" }\n");
    auto result = load_file(write("a.conf", "include \"" + db + "\"\n"));
    ASSERT_TRUE(result.errors.empty()) << errors(result)[0];
    EXPECT_EQ(result.config->database.name, "abs");
}

}  // namespace
}  // namespace djinn::config
