# Compiler warnings and sanitizers, in one place.
option(DJINN_WERROR "Treat compiler warnings as errors (CI turns this on)" OFF)
option(DJINN_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(DJINN_TSAN "Build with ThreadSanitizer" OFF)

set(DJINN_WARNING_FLAGS
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
    -Wunused -Woverloaded-virtual -Wconversion -Wsign-conversion -Wnull-dereference
    -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough -Wmisleading-indentation
    -Wduplicated-cond -Wduplicated-branches -Wlogical-op)
if(DJINN_WERROR)
    list(APPEND DJINN_WARNING_FLAGS -Werror)
endif()

function(djinn_target_warnings target)
    target_compile_options(${target} PRIVATE ${DJINN_WARNING_FLAGS})
endfunction()

if(DJINN_SANITIZE AND DJINN_TSAN)
    message(FATAL_ERROR "DJINN_SANITIZE and DJINN_TSAN cannot be combined")
endif()
if(DJINN_SANITIZE)
    add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    add_link_options(-fsanitize=address,undefined)
endif()
if(DJINN_TSAN)
    add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
    add_link_options(-fsanitize=thread)
endif()
