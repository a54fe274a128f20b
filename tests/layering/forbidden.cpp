// djinn_schedule depends on djinn_common only: the store is not visible from here.
#include "schedule/schedule.hpp"
#include "store/pg_connection.hpp"

int layering_probe() {
    return 0;
}
