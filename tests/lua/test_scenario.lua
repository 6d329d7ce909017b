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

-- Coverage merged over two engines (tests/data/coverage: a.yaml alone reaches 4 of
-- the fixture's 9 transitions, b.yaml adds skip; tests/unit/test_coverage.c says why).
local cdir = T.SRC .. "/tests/data/coverage/"
local cov <close> = libcase.coverage()
do
  local e1 <close> = libcase.open()
  e1:set_coverage(cov)
  T.eq(e1:run_scenario(cdir .. "a.yaml"), 0, "a.yaml passes")
end
local ec <close> = libcase.open()
ec:set_coverage(cov)
T.eq(ec:run_scenario(cdir .. "b.yaml"), 0, "b.yaml passes")
local crep = cov:report("json")
local d = crep.definitions[1]
T.eq(#crep.definitions, 1, "one definition")
T.eq(d.workflow, "cov_fixture", "its id")
T.eq(d.cases, 2, "two cases")
T.eq(d.transitions.total, 9, "transitions")
T.eq(d.transitions.covered, 5, "taken")
T.eq(d.states.untested[1].state, "hidden", "the state never entered")
T.eq(d.states.untested[1].line, 32, "its line")
T.ok(cov:report():find("transitions taken        5/9 (55.6%)", 1, true), "the text report")
ec:set_coverage(nil)

-- A skeleton to odd (line 27), filled in, takes it.
local def = ec:load(cdir .. "fixture.yaml")
local y = def:skeleton(27, 7, { workflow_path = cdir .. "fixture.yaml", start = T.MONDAY })
T.ok(y:find("  - event: odd\n    role: B\n", 1, true), "the skeleton fires odd: " .. y)
y = y:gsub("data: {} ", "data: {n: 6} ", 1):gsub("payload: {} ", "payload: {ok: true} ", 1)
local path = T.TMP .. "/libcase-lua-skeleton.yaml"
local f = assert(io.open(path, "w"))
f:write(y)
f:close()
local cov2 <close> = libcase.coverage()
local e3 <close> = libcase.open()
e3:set_coverage(cov2)
T.eq(e3:run_scenario(path), 0, "the filled skeleton passes")
os.remove(path)
for _, t in ipairs(cov2:report("json").definitions[1].transitions.untested) do
  T.ok(not (t.line == 27 and t.column == 7), "odd was taken")
end
T.raises("invalid", def.skeleton, def, 31)
T.raises("notfound", def.skeleton, def, 31, 61)
cov2:close()
T.raises("misuse", cov2.report, cov2)

T.done("lua.scenario")
