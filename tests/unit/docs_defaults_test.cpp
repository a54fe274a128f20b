// The README's table of config keys states the defaults the code has: an example written
// from it behaves like a replica left at the defaults (a wrong leader.key there once made
// two replicas lead at the same time).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "config/config.hpp"
#include "config/literals.hpp"

namespace djinn::config {
namespace {

// `key` -> the default column of the README's "| key | default | meaning |" table.
std::map<std::string, std::string> readme_defaults() {
    std::ifstream in(std::string(DJINN_SOURCE_DIR) + "/README.md");
    std::stringstream text;
    text << in.rdbuf();
    std::map<std::string, std::string> out;
    std::string line;
    bool in_table = false;
    while (std::getline(text, line)) {
        if (line.rfind("| key | default | meaning |", 0) == 0) {
            in_table = true;
            continue;
        }
        if (!in_table) {
            continue;
        }
        if (line.rfind("|", 0) != 0) {
            break;
        }
        // | `key` | default | meaning |
        const auto second = line.find('|', 1);
        const auto third = line.find('|', second + 1);
        if (second == std::string::npos || third == std::string::npos) {
            continue;
        }
        auto cell = [](std::string s) {
            while (!s.empty() && s.front() == ' ')
                s.erase(0, 1);
            while (!s.empty() && s.back() == ' ')
                s.pop_back();
            return s;
        };
        out[cell(line.substr(1, second - 1))] = cell(line.substr(second + 1, third - second - 1));
    }
    return out;
}

std::string ticked(const std::string& s) {
    return "`" + s + "`";
}

TEST(DocsDefaultsTest, TheReadmeTableStatesTheCodesDefaults) {
    if (!std::ifstream(std::string(DJINN_SOURCE_DIR) + "/README.md")) {
        // The image's build stage compiles without the documentation (.dockerignore);
        // scripts/test.sh unit runs this from the repository.
        GTEST_SKIP() << "README.md is not in this source tree";
    }
    const auto table = readme_defaults();
    ASSERT_GE(table.size(), 14U) << "the README's config table was not found";
    const Config c;
    auto hex = [](std::int64_t v) {
        std::ostringstream s;
        s << "0x" << std::hex << v;
        return s.str();
    };
    const std::map<std::string, std::string> expected = {
        {"`pidfile`", "none"},
        {"`log <level> <file>`", ticked(to_string(c.log.level) + " " + c.log.file)},
        {"`log_format`", ticked(to_string(c.log.format))},
        {"`interval`", ticked(format_duration(c.interval))},
        {"`batch_size`", ticked(std::to_string(c.batch_size))},
        {"`drivers`", c.drivers.empty() ? "none" : "?"},
        {"`crypto.salt`", c.crypto_salt.empty() ? "empty" : "?"},
        {"`database.*`", ticked(c.database.addr) + ", " + ticked(c.database.name)},
        {"`redis.*`", ticked(c.redis.addr)},
        {"`http.addr`", c.http.addr.empty() ? "none" : "?"},
        {"`leader.key`", ticked(hex(c.leader.lock_key))},
        {"`leader.retry_interval`", ticked(format_duration(c.leader.retry_interval))},
        {"`leader.lock_timeout`", ticked(format_duration(c.leader.lock_timeout))},
        {"`drain_timeout`", ticked(format_duration(c.drain_timeout))},
    };
    for (const auto& [key, value] : expected) {
        auto it = table.find(key);
        ASSERT_NE(it, table.end()) << key << " is not in the README's table";
        EXPECT_EQ(it->second, value) << key;
    }
    EXPECT_EQ(c.pidfile, "");
    // The decimal spelling the README's examples use.
    EXPECT_EQ(c.leader.lock_key, 7235711674344498024);
}

}  // namespace
}  // namespace djinn::config
