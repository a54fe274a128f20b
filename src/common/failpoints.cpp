#include "common/failpoints.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/fatal.hpp"

namespace djinn::failpoints {
namespace {

struct Armed {
    std::function<void()> action;
    int remaining = -1;  // < 0: forever
};

std::mutex& mu() {
    static std::mutex m;
    return m;
}

std::map<std::string, Armed, std::less<>>& table() {
    static std::map<std::string, Armed, std::less<>> t;
    return t;
}

std::function<void()> action_named(std::string_view action, const std::string& where) {
    if (action == "logic_error")
        return [where] { throw std::logic_error("failpoint " + where + ": injected logic_error"); };
    if (action == "runtime_error")
        return [where] {
            throw std::runtime_error("failpoint " + where + ": injected runtime_error");
        };
    if (action == "bad_alloc")
        return [] { throw std::bad_alloc(); };
    if (action == "int")
        return [] { throw 42; };
    if (action == "invariant")
        return [where] { invariant_failed("false", "failpoint " + where, __FILE__, __LINE__); };
    if (action == "kill")
        return [] { std::raise(SIGKILL); };  // as `kill -9` would, right here
    if (action.substr(0, 5) == "pause" && action.size() > 5 &&
        action.find_first_not_of("0123456789", 5) == std::string_view::npos &&
        action.size() <= 11) {
        // A window for the test to act in (freeze Redis, say), announced on stderr first.
        const long ms = std::stol(std::string(action.substr(5)));
        return [where, ms] {
            std::fprintf(stderr, "failpoint %s: pausing %ld ms\n", where.c_str(), ms);
            std::fflush(stderr);
            std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        };
    }
    return {};
}

}  // namespace

const std::vector<std::string>& known() {
    // Every DJINN_FAILPOINT in src/, in the order a pass meets them (tests/unit checks the list
    // against the sources).
    static const std::vector<std::string> names = {
        "session.open",     "session.check",    "lock.acquire",     "lock.verify",
        "pass.start",       "recovery.start",   "recovery.page",    "recovery.candidates",
        "recovery.enqueue", "recovery.advance", "batch.candidates", "batch.take",
        "batch.rows",       "batch.numbers",    "batch.write",      "batch.advance",
        "batch.commit",     "plan.manifest",    "enqueue.round",    "queue.ping",
        "numbers.ahead",    "fence.barrier",
    };
    return names;
}

std::string configure(std::string_view spec) {
    std::size_t pos = 0;
    while (pos < spec.size()) {
        auto comma = spec.find(',', pos);
        std::string_view entry = spec.substr(
            pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
        pos = comma == std::string_view::npos ? spec.size() : comma + 1;
        if (entry.empty())
            continue;
        auto eq = entry.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return "failpoint entry \"" + std::string(entry) + "\" is not name=action[*count]";
        std::string name(entry.substr(0, eq));
        std::string_view action = entry.substr(eq + 1);
        int count = -1;
        if (auto star = action.find('*'); star != std::string_view::npos) {
            try {
                count = std::stoi(std::string(action.substr(star + 1)));
            } catch (const std::exception&) {
                return "failpoint " + name + ": bad count in \"" + std::string(entry) + "\"";
            }
            action = action.substr(0, star);
        }
        bool exists = false;
        for (const auto& k : known())
            exists = exists || k == name;
        if (!exists)
            return "unknown failpoint \"" + name + "\"";
        auto f = action_named(action, name);
        if (!f)
            return "failpoint " + name + ": unknown action \"" + std::string(action) + "\"";
        arm(name, std::move(f), count);
    }
    return {};
}

void arm(const std::string& name, std::function<void()> action, int count) {
    std::lock_guard lock(mu());
    table()[name] = Armed{std::move(action), count};
}

void clear() {
    std::lock_guard lock(mu());
    table().clear();
}

void hit(const char* name) {
    std::function<void()> run;
    {
        std::lock_guard lock(mu());
        auto& t = table();
        if (t.empty())
            return;
        auto it = t.find(std::string_view(name));
        if (it == t.end() || it->second.remaining == 0)
            return;
        if (it->second.remaining > 0)
            --it->second.remaining;
        run = it->second.action;
    }
    run();
}

}  // namespace djinn::failpoints
