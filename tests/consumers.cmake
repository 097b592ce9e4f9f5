# The library built by itself, and used by a project outside it
# (tests/consumer, in C) each way a user gets it: run as a ctest script,
# cmake -DMODE=... -P consumers.cmake.
#   MODE=alone       configures aio2's source tree by itself, every
#                    AIO2_BUILD_* option OFF, and builds it
#   MODE=subproject  configures tests/consumer, which adds aio2 with
#                    add_subdirectory (its options at their defaults),
#                    builds it, and runs its programs, which link aio2::aio2
#                    and aio2::aio2_static
#   MODE=installed   installs the build tree BUILD_DIR into WORK_DIR/prefix
#                    (cmake --install --prefix), checks what is there, then
#                    builds and runs the consumer against that prefix: with
#                    find_package(aio2) (aio2::aio2 and aio2::aio2_static),
#                    and with pkg-config, linked to libaio2.so and, with
#                    `pkg-config --static` and -static, to libaio2.a; with
#                    the libaio replacement (AIO2_BUILD_COMPAT) and
#                    <libaio.h>, a libaio program (consumer/libaio_consumer.c)
#                    runs on the installed libaio.so.1 through LD_LIBRARY_PATH
#   MODE=system      the same against the system's aio2 (/usr, as the Debian
#                    packages install it), with find_package, pkg-config and
#                    the libaio replacement; scripts/deb.sh runs it
# Each CMake configure makes GTest, nlohmann_json and Google Benchmark
# unfindable (a REQUIRED find_package of one of them fails it) and then
# checks that the cache holds no lookup of any dependency of the tools,
# tests or benchmarks. The other variables: SOURCE_DIR (aio2's source
# tree), WORK_DIR (emptied, then the build trees; removed when the test
# passes), GENERATOR, MAKE_PROGRAM, C_COMPILER, CXX_COMPILER (those of the
# build that runs the test), JOBS; BUILD_DIR and TOOLS (ON when the build
# tree has the aio2 command), COMPAT (ON when it has the libaio
# replacement), LIBDIR, INCLUDEDIR, BINDIR and MANDIR (its
# GNUInstallDirs directories, relative to the prefix) for MODE=installed.
cmake_minimum_required(VERSION 3.25)

foreach(v MODE SOURCE_DIR WORK_DIR GENERATOR C_COMPILER CXX_COMPILER JOBS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "consumers.cmake: ${v} is not set")
  endif()
endforeach()
if(NOT MODE MATCHES "^(alone|subproject|installed|system)$")
  message(FATAL_ERROR "consumers.cmake: MODE must be alone, subproject, installed or system")
endif()
set(toolchain -G ${GENERATOR} -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
if(MAKE_PROGRAM)
  list(APPEND toolchain -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()

# Runs a command; a failure fails the test with `what`.
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${MODE}: ${what} failed (${rc})")
  endif()
endfunction()

# Configures project_dir into build_dir with `options`, checks its cache,
# and builds it.
function(configure_and_build project_dir build_dir)
  run("the configure of ${project_dir}" ${CMAKE_COMMAND} -S ${project_dir} -B ${build_dir}
    ${toolchain} ${ARGN} --no-warn-unused-cli
    -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON
    -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON
    -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON)

  # Every cache entry a lookup of a dependency the library does not have
  # would leave: find_package's <Package>_DIR, pkg_check_modules' and
  # find_path's or find_library's variables. The CMAKE_DISABLE_FIND_PACKAGE_*
  # entries are this script's own.
  file(STRINGS ${build_dir}/CMakeCache.txt entries REGEX "^[A-Za-z_].*=")
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

  run("the build of ${project_dir}" ${CMAKE_COMMAND} --build ${build_dir} --parallel ${JOBS})
endfunction()

# The consumer, found with find_package(aio2) (with `options`), built and
# run; aio2's package must be the one under `prefix`.
function(consume_with_find_package prefix)
  set(dir ${WORK_DIR}/find_package)
  configure_and_build(${SOURCE_DIR}/tests/consumer ${dir} ${ARGN})
  file(STRINGS ${dir}/CMakeCache.txt aio2_dir REGEX "^aio2_DIR:")
  string(REGEX REPLACE "^[^=]*=" "" aio2_dir "${aio2_dir}")
  cmake_path(IS_PREFIX prefix "${aio2_dir}" NORMALIZE under)
  if(NOT under)
    message(FATAL_ERROR "${MODE}: find_package(aio2) found ${aio2_dir}, not the package under ${prefix}")
  endif()
  foreach(prog consumer_shared consumer_static)
    run("find_package's ${prog}" ${dir}/${prog})
  endforeach()
  message(STATUS "${MODE}: find_package(aio2) found ${aio2_dir}; aio2::aio2 and aio2::aio2_static work")
endfunction()

# The consumer compiled by the C compiler with the flags `pkg-config aio2`
# gives: linked to libaio2.so, and with --static and -static to libaio2.a
# and everything it needs. aio2.pc must be the one under `prefix`, and
# `libdir` is where it puts the libraries.
function(consume_with_pkg_config prefix libdir)
  execute_process(COMMAND pkg-config --variable=prefix aio2 RESULT_VARIABLE rc
    OUTPUT_VARIABLE pc_prefix OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0 OR NOT pc_prefix STREQUAL prefix)
    message(FATAL_ERROR "${MODE}: pkg-config found aio2 with prefix '${pc_prefix}', not ${prefix}")
  endif()
  foreach(kind shared static)
    if(kind STREQUAL "static")
      set(pc_args --static)
      set(link_args -static)
    else()
      set(pc_args "")
      set(link_args "")
    endif()
    execute_process(COMMAND pkg-config ${pc_args} --cflags --libs aio2 RESULT_VARIABLE rc
      OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${MODE}: pkg-config ${pc_args} --cflags --libs aio2 failed (${rc})")
    endif()
    separate_arguments(flags UNIX_COMMAND "${flags}")
    if(NOT libdir MATCHES "^/usr/lib")
      list(APPEND link_args -Wl,-rpath,${libdir})
    endif()
    set(prog ${WORK_DIR}/pkg_config_${kind})
    run("the C compiler with pkg-config ${pc_args} aio2" ${C_COMPILER} -std=c11 -Wall -Wextra
      -Werror ${link_args} -o ${prog} ${SOURCE_DIR}/tests/consumer/consumer.c ${flags})
    run("pkg-config's ${kind} program" ${prog})
    list(JOIN flags " " shown)
    message(STATUS "${MODE}: linked ${kind} with pkg-config's flags: ${shown}")
  endforeach()
endfunction()

# A libaio program, built against the system's libaio (libaio-dev), run
# with LD_LIBRARY_PATH=`libdir`/aio2: it must get aio2's libaio.so.1 from
# there, and read with it.
function(consume_libaio libdir)
  if(NOT EXISTS /usr/include/libaio.h)
    message(STATUS "${MODE}: <libaio.h> is missing (libaio-dev): the libaio replacement is not tried")
    return()
  endif()
  set(prog ${WORK_DIR}/libaio_consumer)
  run("the C compiler with -laio" ${C_COMPILER} -std=c11 -Wall -Wextra -Werror -o ${prog}
    ${SOURCE_DIR}/tests/consumer/libaio_consumer.c -laio)
  run("the libaio program on ${libdir}/aio2/libaio.so.1"
    ${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${libdir}/aio2 ${prog} ${libdir}/aio2)
  message(STATUS "${MODE}: a libaio program ran on ${libdir}/aio2/libaio.so.1")
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

if(MODE STREQUAL "alone")
  configure_and_build(${SOURCE_DIR} ${WORK_DIR}/build
    -DAIO2_BUILD_TOOLS=OFF -DAIO2_BUILD_TESTS=OFF -DAIO2_BUILD_BENCH=OFF)
  message(STATUS "${MODE}: configured and built with liburing and Threads only")

elseif(MODE STREQUAL "subproject")
  set(dir ${WORK_DIR}/build)
  configure_and_build(${SOURCE_DIR}/tests/consumer ${dir} -DAIO2_SOURCE_DIR=${SOURCE_DIR})
  foreach(prog consumer_shared consumer_static)
    run("${prog}" ${dir}/${prog})
  endforeach()
  message(STATUS "${MODE}: add_subdirectory(aio2) with liburing and Threads only; both libraries work")

elseif(MODE STREQUAL "installed")
  foreach(v BUILD_DIR TOOLS COMPAT LIBDIR INCLUDEDIR BINDIR MANDIR)
    if(NOT DEFINED ${v})
      message(FATAL_ERROR "consumers.cmake: ${v} is not set")
    endif()
  endforeach()
  set(prefix ${WORK_DIR}/prefix)
  run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

  # What the prefix must hold.
  set(expected)
  foreach(f aio2.h abi.h ring.h aio2.hpp)
    list(APPEND expected ${INCLUDEDIR}/aio2/${f})
  endforeach()
  foreach(f libaio2.so libaio2.so.0 libaio2.a cmake/aio2/aio2Config.cmake
      cmake/aio2/aio2ConfigVersion.cmake cmake/aio2/aio2Targets.cmake pkgconfig/aio2.pc)
    list(APPEND expected ${LIBDIR}/${f})
  endforeach()
  if(TOOLS)
    list(APPEND expected ${BINDIR}/aio2)
  endif()
  if(COMPAT)
    list(APPEND expected ${LIBDIR}/aio2/libaio.so.1 ${LIBDIR}/aio2/libaio-aio2.so.1)
  endif()
  file(GLOB pages RELATIVE ${SOURCE_DIR}/man ${SOURCE_DIR}/man/*.[137])
  foreach(page IN LISTS pages)
    string(REGEX MATCH "[137]$" section "${page}")
    list(APPEND expected ${MANDIR}/man${section}/${page})
  endforeach()
  set(missing "")
  foreach(f IN LISTS expected)
    if(NOT EXISTS ${prefix}/${f})
      list(APPEND missing ${f})
    endif()
  endforeach()
  if(missing)
    message(FATAL_ERROR "${MODE}: cmake --install left out ${missing}")
  endif()
  list(LENGTH pages n_pages)
  message(STATUS "${MODE}: the prefix holds the libraries, headers, CMake package, aio2.pc and ${n_pages} man pages")

  consume_with_find_package(${prefix} -DCMAKE_PREFIX_PATH=${prefix})
  set(ENV{PKG_CONFIG_PATH} ${prefix}/${LIBDIR}/pkgconfig)
  consume_with_pkg_config(${prefix} ${prefix}/${LIBDIR})
  if(COMPAT)
    consume_libaio(${prefix}/${LIBDIR})
  endif()

elseif(MODE STREQUAL "system")
  consume_with_find_package(/usr)
  execute_process(COMMAND pkg-config --variable=libdir aio2 OUTPUT_VARIABLE libdir
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  consume_with_pkg_config(/usr "${libdir}")
  consume_libaio("${libdir}")
endif()

file(REMOVE_RECURSE ${WORK_DIR})
