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

-- Profiles a scenario loads never carry over to the next scenario on the same engine
-- (issue 11): s24 gives budel a profile with the interventieteam lane, s23 expects
-- lua/locations/budel.lua, which has none.
local e2 <close> = libcase.open({ lua_root = T.SRC })
local sdir = T.SRC .. "/tests/scenarios/"
local s23, s24 = sdir .. "s23_budel_zonder_interventieteam.yaml", sdir .. "s24_budel_met_interventieteam.yaml"
for _, f in ipairs({s24, s23, s24, s23}) do
  local n, rep = e2:run_scenario(f)
  T.eq(n, 0, "in a row on one engine: " .. rep)
end
-- A profile the host gave the engine is what a scenario without `profile:` uses, and it
-- is back after a scenario that brought its own.
e2:load_profile("budel", sdir .. "profiles/budel_met_interventieteam.lua")
local n, rep = e2:run_scenario(s23)
T.ok(n > 0, "s23 runs on the host's budel profile (with the lane): " .. rep)
T.eq((e2:run_scenario(s24)), 0, "s24 with its own profile")
T.eq((e2:run_scenario(s23)), n, "the host's profile is back after s24")

T.done("lua.scenario")
