// What djinn_schedule may include: its own headers and djinn_common's.
#include "common/clock.hpp"
#include "schedule/schedule.hpp"

int layering_probe() {
    return 0;
}
