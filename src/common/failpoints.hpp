#pragma once
// Fault injection for tests (the failpoints of FreeBSD, TiKV and FoundationDB): named places in
// the code where a test can make the program fail as it would on a real fault, to show that the
// failure is contained where it should be.
//
// Compiled in only when DJINN_FAILPOINTS is defined (CMake -DDJINN_FAILPOINTS=ON, which the test
// script uses); otherwise DJINN_FAILPOINT(name) is nothing at all and the release binary has no
// trace of them. In a failpoint build the scheduler reads DJINN_FAILPOINTS from its environment
// at start: "name=action[*count][,name=action[*count]...]", where action is one of
//   logic_error runtime_error bad_alloc int   throw that (int: a non-std exception)
//   invariant                                 a broken invariant (fatal: log, pidfile, abort)
//   kill                                      SIGKILL to itself: a crash at exactly that place
//   pause<ms>                                 sleep that long, announced on stderr first
//                                             ("failpoint <name>: pausing <ms> ms")
// and count is how many hits fire (default: every hit). Tests in-process use arm().
//
// Thread safety: hit() from any thread; configure()/arm()/clear() while no hit() runs (tests
// arm before they start the work). Failure: configure() returns a message for a bad spec.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace djinn::failpoints {

// Parses a DJINN_FAILPOINTS spec and arms every entry; "" on success, else what is wrong.
std::string configure(std::string_view spec);

// Arms `name` to run `action` on its next `count` hits (count < 0: every hit).
void arm(const std::string& name, std::function<void()> action, int count = -1);
void clear();

// The call site. Runs the armed action, if any (it may throw).
void hit(const char* name);

// Names of the failpoints the program has, for documentation and tests.
const std::vector<std::string>& known();

}  // namespace djinn::failpoints

#ifdef DJINN_FAILPOINTS
#define DJINN_FAILPOINT(name) ::djinn::failpoints::hit(name)
#else
#define DJINN_FAILPOINT(name) static_cast<void>(0)
#endif
