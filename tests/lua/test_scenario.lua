-- Process tests (the scenario runner) from Lua.
local libcase = require "libcase"
local T = require "t"

local e <close> = libcase.open({ lua_root = T.SRC })
local dir = T.SRC .. "/tests/lua/data/"

local failures, report = e:run_scenario(dir .. "aanmelding_ok.yaml")
T.eq(failures, 0, "passing scenario: " .. report)
T.ok(report:find("2 steps, 0 failing", 1, true), "summary: " .. report)

failures, report = e:run_scenario(dir .. "aanmelding_fails.yaml")
T.eq(failures, 1, "one failing step")
T.ok(report:find("aanmelding_fails.yaml:", 1, true), "report names the file: " .. report)
T.ok(report:find("algemene_asielprocedure", 1, true), "report says what was expected")

T.raises("io", e.run_scenario, e, dir .. "no_such_scenario.yaml")
local err = T.raises("invalid", e.run_scenario, e, T.DEF) -- a definition is no scenario
T.ok(err.line ~= nil, "the error has a position")

T.done("lua.scenario")
