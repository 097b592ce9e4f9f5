# The library with only its own dependencies (liburing through pkg-config,
# and Threads), run as a ctest script: cmake -DMODE=... -P build_alone.cmake.
#   MODE=alone       configures aio2's source tree by itself, every
#                    AIO2_BUILD_* option OFF, and builds it
#   MODE=subproject  configures tests/subproject, a project that adds aio2
#                    with add_subdirectory (its options at their defaults),
#                    builds it, and runs its programs, which link aio2::aio2
#                    and aio2::aio2_static
# Both make GTest, nlohmann_json and Google Benchmark unfindable (a REQUIRED
# find_package of one of them fails the configure) and then check that the
# cache holds no lookup of any dependency of the tools, tests or benchmarks.
# The other variables: SOURCE_DIR (aio2's source tree), WORK_DIR (emptied,
# then the build tree; removed when the test passes), GENERATOR, MAKE_PROGRAM,
# C_COMPILER, CXX_COMPILER (those of the build that runs the test), JOBS.
cmake_minimum_required(VERSION 3.25)

foreach(v MODE SOURCE_DIR WORK_DIR GENERATOR C_COMPILER CXX_COMPILER JOBS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "build_alone.cmake: ${v} is not set")
  endif()
endforeach()

if(MODE STREQUAL "alone")
  set(project_dir ${SOURCE_DIR})
  set(options -DAIO2_BUILD_TOOLS=OFF -DAIO2_BUILD_TESTS=OFF -DAIO2_BUILD_BENCH=OFF)
elseif(MODE STREQUAL "subproject")
  set(project_dir ${SOURCE_DIR}/tests/subproject)
  set(options -DAIO2_SOURCE_DIR=${SOURCE_DIR})
else()
  message(FATAL_ERROR "build_alone.cmake: MODE must be alone or subproject")
endif()
set(toolchain -G ${GENERATOR} -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
if(MAKE_PROGRAM)
  list(APPEND toolchain -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()

file(REMOVE_RECURSE ${WORK_DIR})
execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${project_dir} -B ${WORK_DIR} ${toolchain} ${options}
    -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON
    -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON
    -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${MODE}: the configure failed (${rc})")
endif()

# Every cache entry a lookup of a dependency the library does not have would
# leave: find_package's <Package>_DIR, pkg_check_modules' and find_path's or
# find_library's variables. The CMAKE_DISABLE_FIND_PACKAGE_* entries are this
# script's own.
file(STRINGS ${WORK_DIR}/CMakeCache.txt entries REGEX "^[A-Za-z_].*=")
set(found "")
foreach(e IN LISTS entries)
  string(REGEX REPLACE "[:=].*" "" key "${e}")
  string(TOUPPER "${key}" upper)
  if(upper MATCHES "^CMAKE_DISABLE_FIND_PACKAGE_")
    continue()
  endif()
  if(upper MATCHES "GTEST|GMOCK|BENCHMARK|NLOHMANN|LIBUV|LIBAIO|BOOST|CONCURRENTQUEUE")
    list(APPEND found ${key})
  endif()
endforeach()
if(found)
  message(FATAL_ERROR "${MODE}: the cache holds lookups of optional dependencies: ${found}")
endif()

execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR} --parallel ${JOBS}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${MODE}: the build failed (${rc})")
endif()

if(MODE STREQUAL "subproject")
  foreach(prog parent_shared parent_static)
    execute_process(COMMAND ${WORK_DIR}/${prog} RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${MODE}: ${prog} failed (${rc})")
    endif()
  endforeach()
endif()

file(REMOVE_RECURSE ${WORK_DIR})
message(STATUS "${MODE}: configured and built with liburing and Threads only")
