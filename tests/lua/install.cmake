# lua.install: installs the build into a temporary prefix and requires the Lua
# module from <prefix>/<libdir>/lua/5.4 (LUA_CPATH as docs/lua.md says for prefixes
# that are not on the interpreter's default path), then loads a definition with it.
file(REMOVE_RECURSE ${CASE_WORK_DIR})
set(prefix ${CASE_WORK_DIR}/prefix)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${CASE_BUILD_DIR} --prefix ${prefix}
                        --config ${CASE_CONFIG}
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
set(mod ${prefix}/${CASE_LIBDIR}/lua/5.4/libcase.so)
if(NOT EXISTS ${mod})
  message(FATAL_ERROR "the module is not installed at ${mod}")
endif()
set(ENV{LUA_CPATH} "${prefix}/${CASE_LIBDIR}/lua/5.4/?.so")
file(WRITE ${CASE_WORK_DIR}/check.lua [=[
local c = require "libcase"
assert(package.searchpath("libcase", package.cpath):find("/lua/5.4/libcase.so", 1, true))
local e <close> = c.open()
local d = e:load(arg[1])
assert(d.id == "aanmelding_demo" and d.version == 1, tostring(d))
print("libcase " .. c.version .. " from " .. package.searchpath("libcase", package.cpath))
]=])
execute_process(COMMAND ${CASE_LUA} ${CASE_WORK_DIR}/check.lua
                        ${CASE_SOURCE_DIR}/examples/quickstart/aanmelding.yaml
                WORKING_DIRECTORY ${CASE_SOURCE_DIR}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "require \"libcase\" from the installed prefix failed")
endif()
