// Failpoints: the spec the scheduler reads from DJINN_FAILPOINTS, and the list of names, which
// must be exactly the DJINN_FAILPOINT sites in src/ (a failpoint no test can name is useless, a
// name no code has is a test that tests nothing).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "common/failpoints.hpp"

namespace djinn::failpoints {
namespace {

TEST(Failpoints, KnownNamesAreExactlyTheSitesInTheSources) {
    std::set<std::string> sites;
    const std::regex site(R"re(DJINN_FAILPOINT\("([a-z._]+)"\))re");
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(std::string(DJINN_SOURCE_DIR) + "/src")) {
        if (!entry.is_regular_file() || entry.path().extension() != ".cpp")
            continue;
        std::ifstream in(entry.path());
        std::stringstream text;
        text << in.rdbuf();
        const std::string s = text.str();
        for (std::sregex_iterator it(s.begin(), s.end(), site), end; it != end; ++it)
            sites.insert((*it)[1]);
    }
    const std::set<std::string> names(known().begin(), known().end());
    EXPECT_EQ(sites, names);
    EXPECT_GE(names.size(), 10u);
}

#ifdef DJINN_FAILPOINTS
TEST(Failpoints, SpecArmsActionsWithCounts) {
    clear();
    ASSERT_EQ(configure("batch.take=logic_error*2,queue.ping=int"), "");
    EXPECT_THROW(hit("batch.take"), std::logic_error);
    EXPECT_THROW(hit("batch.take"), std::logic_error);
    EXPECT_NO_THROW(hit("batch.take"));  // fired twice, now spent
    EXPECT_THROW(hit("queue.ping"), int);
    EXPECT_THROW(hit("queue.ping"), int);  // no count: every hit
    EXPECT_NO_THROW(hit("batch.write"));
    clear();
    EXPECT_NO_THROW(hit("queue.ping"));
}

TEST(Failpoints, BadSpecsAreRefusedWithTheReason) {
    EXPECT_EQ(configure("nosuch=int"), "unknown failpoint \"nosuch\"");
    EXPECT_EQ(configure("batch.take=explode"), "failpoint batch.take: unknown action \"explode\"");
    EXPECT_EQ(configure("batch.take=pause"), "failpoint batch.take: unknown action \"pause\"");
    EXPECT_EQ(configure("batch.take=pause1s"), "failpoint batch.take: unknown action \"pause1s\"");
    EXPECT_EQ(configure("batch.take=pause99999999"),
              "failpoint batch.take: unknown action \"pause99999999\"");
    EXPECT_EQ(configure("batch.take=pause0*1"), "");
    EXPECT_EQ(configure("batch.take"), "failpoint entry \"batch.take\" is not name=action[*count]");
    EXPECT_EQ(configure("batch.take=int*x"),
              "failpoint batch.take: bad count in \"batch.take=int*x\"");
    clear();
}
#endif

}  // namespace
}  // namespace djinn::failpoints
