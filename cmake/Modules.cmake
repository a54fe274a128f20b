# One static library per module of src/, with its dependencies declared (djinn_module below).
#
# Layering is enforced by include paths: a module's headers are reachable only through an
# include directory of its own (<build>/modules/<target>/<dir> -> src/<dir>), which is PUBLIC to
# the targets that link it. A source file that includes "store/..." from a module that does not
# depend on djinn_store therefore fails to compile ("No such file or directory"), instead of
# building because every header sits under one src/ include root.
# tests/layering checks that this holds.

# djinn_module(<target> DIR <src subdir> [DEPS <targets and imported libraries>...])
function(djinn_module target)
    cmake_parse_arguments(M "" "DIR" "DEPS" ${ARGN})
    set(src_dir ${PROJECT_SOURCE_DIR}/src/${M_DIR})
    file(GLOB sources CONFIGURE_DEPENDS ${src_dir}/*.cpp)
    file(GLOB headers CONFIGURE_DEPENDS ${src_dir}/*.hpp)
    set(include_root ${CMAKE_BINARY_DIR}/modules/${target})
    file(MAKE_DIRECTORY ${include_root})
    if(NOT EXISTS ${include_root}/${M_DIR})
        file(CREATE_LINK ${src_dir} ${include_root}/${M_DIR} SYMBOLIC)
    endif()
    if(sources)
        add_library(${target} STATIC ${sources} ${headers})
        target_include_directories(${target} PUBLIC ${include_root})
        target_link_libraries(${target} PUBLIC ${M_DEPS})
        djinn_target_warnings(${target})
    else()
        add_library(${target} INTERFACE ${headers})
        target_include_directories(${target} INTERFACE ${include_root})
        target_link_libraries(${target} INTERFACE ${M_DEPS})
    endif()
endfunction()
