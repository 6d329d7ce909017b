# cmake -P script run by the `install` test (tests/install/CMakeLists.txt).
cmake_minimum_required(VERSION 3.22)

function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install test: ${what} failed (${rc}):\n  ${ARGN}\n${out}")
  endif()
  message(STATUS "ok: ${what}")
endfunction()

function(capture var what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install test: ${what} failed (${rc}):\n  ${ARGN}\n${out}${err}")
  endif()
  set(${var} "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${CASE_WORK_DIR}/prefix)
set(libdir ${prefix}/${CASE_LIBDIR})
file(REMOVE_RECURSE ${CASE_WORK_DIR})
file(MAKE_DIRECTORY ${CASE_WORK_DIR})

# 1. Install.
set(config_args)
if(CASE_CONFIG)
  set(config_args --config ${CASE_CONFIG})
endif()
step("cmake --install into ${prefix}"
     ${CMAKE_COMMAND} --install ${CASE_BUILD_DIR} --prefix ${prefix} ${config_args})

foreach(f include/libcase/libcase.h
          ${CASE_LIBDIR}/libcase.so
          ${CASE_LIBDIR}/libcase.so.${CASE_SOVERSION}
          ${CASE_LIBDIR}/libcase.so.${CASE_VERSION}
          ${CASE_LIBDIR}/libcase.a
          ${CASE_LIBDIR}/pkgconfig/libcase.pc
          ${CASE_LIBDIR}/cmake/libcase/libcaseConfig.cmake
          ${CASE_LIBDIR}/cmake/libcase/libcaseConfigVersion.cmake
          ${CASE_LIBDIR}/cmake/libcase/libcaseTargets.cmake)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "install test: ${f} was not installed")
  endif()
endforeach()
if(EXISTS ${prefix}/include/libcase/internal.h OR EXISTS ${prefix}/include/internal.h)
  message(FATAL_ERROR "install test: internal.h must not be installed")
endif()
message(STATUS "ok: installed files present")

# 2. Only the API is exported: every defined dynamic symbol is case_* (or the
#    Lua binding's luaopen_libcase); hidden visibility keeps the rest inside.
if(CASE_NM)
  capture(syms "nm -D libcase.so"
          ${CASE_NM} -D --defined-only ${libdir}/libcase.so.${CASE_VERSION})
  string(REPLACE "\n" ";" syms "${syms}")
  set(stray)
  set(api 0)
  foreach(line IN LISTS syms)
    if(line MATCHES "^[0-9a-fA-F]* +[A-Za-z] +([^ @]+)")
      set(s ${CMAKE_MATCH_1})
      if(s MATCHES "^case_|^luaopen_libcase$")
        math(EXPR api "${api} + 1")
      elseif(NOT s MATCHES "^(_init|_fini|_edata|_end|__bss_start)$")
        list(APPEND stray ${s})
      endif()
    endif()
  endforeach()
  if(stray)
    message(FATAL_ERROR "install test: libcase.so exports non-API symbols: ${stray}")
  endif()
  if(api EQUAL 0)
    message(FATAL_ERROR "install test: libcase.so exports no case_* symbol")
  endif()
  message(STATUS "ok: libcase.so exports ${api} API symbols and nothing else")
endif()

# 3. pkg-config consumer, shared and static.
separate_arguments(cflags UNIX_COMMAND "${CASE_CFLAGS}")
separate_arguments(ldflags UNIX_COMMAND "${CASE_LDFLAGS}")
set(pc ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${libdir}/pkgconfig ${CASE_PKG_CONFIG})
capture(modversion "pkg-config --modversion" ${pc} --modversion libcase)
if(NOT modversion STREQUAL CASE_VERSION)
  message(FATAL_ERROR "install test: pkg-config says ${modversion}, expected ${CASE_VERSION}")
endif()
capture(pc_cflags "pkg-config --cflags" ${pc} --cflags libcase)
capture(pc_libs "pkg-config --libs" ${pc} --libs libcase)
capture(pc_static "pkg-config --static --libs" ${pc} --static --libs libcase)
separate_arguments(pc_cflags UNIX_COMMAND "${pc_cflags}")
separate_arguments(pc_libs UNIX_COMMAND "${pc_libs}")
separate_arguments(pc_static UNIX_COMMAND "${pc_static}")
list(REMOVE_ITEM pc_static -lcase)

set(src ${CASE_CONSUMER_DIR}/consumer.c)
set(exe ${CASE_WORK_DIR}/consumer_pc_shared)
step("compile with pkg-config (shared)"
     ${CASE_CC} ${cflags} ${pc_cflags} -o ${exe} ${src} ${ldflags} ${pc_libs})
step("run pkg-config consumer (shared)"
     ${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${libdir} ${exe})

set(exe ${CASE_WORK_DIR}/consumer_pc_static)
step("compile with pkg-config --static"
     ${CASE_CC} ${cflags} ${pc_cflags} -o ${exe} ${src} ${ldflags} ${libdir}/libcase.a ${pc_static})
step("run pkg-config consumer (static, no LD_LIBRARY_PATH)" ${exe})

# 4. CMake consumer: find_package(libcase) and libcase::libcase / libcase::libcase_static.
set(bin ${CASE_WORK_DIR}/consumer-cmake)
step("configure consumer with find_package(libcase)"
     ${CMAKE_COMMAND} -S ${CASE_CONSUMER_DIR} -B ${bin} -G ${CASE_GENERATOR}
     -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${CASE_CC}
     "-DCMAKE_C_FLAGS=${CASE_CFLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${CASE_LDFLAGS}"
     -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
step("build CMake consumer" ${CMAKE_COMMAND} --build ${bin})
# The imported shared target gives the consumer an RPATH: no LD_LIBRARY_PATH here.
step("run CMake consumer (libcase::libcase)" ${bin}/consumer_shared)
step("run CMake consumer (libcase::libcase_static)" ${bin}/consumer_static)
