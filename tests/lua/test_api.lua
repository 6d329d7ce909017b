-- The engine-side API of the Lua module: definitions, cases, fire, show,
-- available, explain, tick, notifications, snapshots, JSON conversion and errors.
local libcase = require "libcase"
local T = require "t"
local MONDAY, DAY = T.MONDAY, T.DAY

-- module
T.eq(libcase.version, "0.1.0", "version")
T.eq(libcase.codes.ok, 0, "codes.ok")
T.eq(libcase.codes.denied, 8, "codes.denied")
T.eq(libcase.codes.done, 16, "codes.done")
T.eq(libcase.errstr(99), "unknown error", "errstr of an unknown code")
T.ok(#libcase.errstr(9) > 0, "errstr(9)")

local e <close> = libcase.open({ lua_root = T.SRC })
T.eq(tostring(e), "libcase.engine (open)", "engine tostring")
T.eq(e:limit("instructions"), 1000000, "default instruction limit")
T.eq(e:limit("microsteps", 500), 1000, "old microstep limit")
T.eq(e:limit("microsteps"), 500, "new microstep limit")
T.eq(e:limit("time"), 1000, "default time limit (ms)")
T.eq(e:limit("payload"), 1048576, "default payload limit")
T.eq(e:limit("data"), 4194304, "default data limit")

-- definitions
local d = e:load(T.DEF)
T.eq(d.id, "aanmelding_demo", "def id")
T.eq(d.version, 1, "def version")
T.eq(#d.hash, 64, "def hash length")
T.eq(type(d.warnings), "table", "warnings")
T.eq(tostring(d), "libcase.def aanmelding_demo v1", "def tostring")
T.eq(e:find("aanmelding_demo").hash, d.hash, "find")
T.eq(e:find("aanmelding_demo", 2), nil, "find unknown version")
local err = T.raises("invalid", e.load_string, e, "workflow: x\nversion: 1\nstates: [\n", "bad.yaml")
T.eq(err.file, "bad.yaml", "error file")
T.ok(err.line >= 1 and err.column >= 1, "error position")
T.ok(tostring(err):find("bad.yaml:", 1, true), "error __tostring has the position")
T.raises("io", e.load, e, T.TMP .. "/no-such-file.yaml")
T.raises("io", e.load_profile, e, "nergens", T.TMP .. "/no-such-profile.lua")
T.raises("invalid", e.add_holiday, e, "2026-02-30")
T.eq(e:add_holiday("2026-06-01", "test day"), e, "add_holiday returns the engine")

-- a case
local notes = {}
e:on_notify(function(id, name, payload) notes[#notes + 1] = { id, name, payload } end)
local c = e:create(d, "Z-1", { at = MONDAY })
T.eq(tostring(c), "libcase.case Z-1", "case tostring")
T.eq(c.id, "Z-1", "case id")
T.eq(c.revision, 0, "revision after create")
T.eq(c.done, false, "done after create")
T.eq(c.workflow, "aanmelding_demo", "case workflow")
T.eq(c.location, nil, "no location")
T.eq(c:configuration()[1], "aanmelding", "configuration")
T.ok(c:is_in("aanmelding") and not c:is_in("beschikt"), "is_in")
local data = c:data()
T.eq(data.kansarm, false, "default data")
T.eq(data.incidentrapport, nil, "null field is nil")
local timers = c:timers()
T.eq(#timers, 1, "one term")
T.eq(timers[1].name, "registratie", "term name")
T.eq(timers[1].kind, "deadline", "term kind")
T.eq(timers[1].last_day, "2026-03-05", "3 working days from Mon 2 Mar")

local av = c:available("AVIM", MONDAY)
T.eq(#av, 1, "AVIM may do one thing")
T.eq(av[1].event, "geregistreerd", "AVIM may register")
T.eq(av[1].target[1], "rust_en_voorbereiding", "target")
T.eq(#c:available("IND", MONDAY), 0, "IND may do nothing yet")

-- refusals: the case is unchanged
err = T.raises("denied", c.fire, c, "geregistreerd", "IND", { at = MONDAY + DAY })
T.ok(err.message:find("AVIM", 1, true), "denied message names the allowed role")
T.raises("denied", c.fire, c, "geregistreerd", "NOBODY", { at = MONDAY + DAY })
T.raises("nothandled", c.fire, c, "beschikking", "IND", { at = MONDAY + DAY })
T.raises("invalid", c.fire, c, "geregistreerd", "AVIM", { at = MONDAY, payload_json = "{bad" })
T.eq(c.revision, 0, "refusals change nothing")

T.eq(c:fire("geregistreerd", "AVIM", { at = MONDAY + DAY, actor = "avim-17" }), 1, "fire")
T.eq(c:data().aanmelddatum, "2026-03-03", "action wrote today")
T.eq(c:configuration()[1], "rust_en_voorbereiding", "moved on")

local why = c:explain("rvt_onthouden", "IND", MONDAY + DAY)
T.eq(why.possible, false, "rvt_onthouden not possible")
T.eq(why.blockers[1].code, "guard", "blocked by the guard")
why = c:explain("rvt_onthouden", "COA", MONDAY + DAY)
T.eq(why.blockers[1].code, "role", "COA blocked by role")
T.eq(why.blockers[1].allowed[1], "IND", "allowed role")
T.raises("guard", c.fire, c, "rvt_onthouden", "IND", { at = MONDAY + DAY })

c:fire("incident", "COA", { at = MONDAY + 2 * DAY, payload = { rapport = "IR-2026-113" } })
T.eq(c:data().incidentrapport, "IR-2026-113", "payload reached the action")
T.eq(c:explain("rvt_onthouden", "IND", MONDAY + 2 * DAY).possible, true, "now possible")
T.eq(#notes, 0, "no notifications yet")
c:fire("rvt_onthouden", "IND", { at = MONDAY + 2 * DAY })
T.eq(#notes, 1, "one notification")
T.eq(notes[1][1], "Z-1", "notification case")
T.eq(notes[1][2], "rvt_onthouden", "notification name")
T.eq(notes[1][3].rapport, "IR-2026-113", "notification payload")

local show = c:show()
T.eq(show.id, "Z-1", "show id")
T.eq(show.revision, 3, "show revision")
T.eq(show.configuration[1], "algemene_asielprocedure", "show configuration")
T.eq(show.data.incidentrapport, "IR-2026-113", "show data")
T.eq(#show.timers, 0, "no terms running")
T.eq(show.done, false, "not done")

-- snapshot and restore
local snap = c:snapshot()
T.eq(type(snap), "string", "snapshot is JSON text")
T.eq(libcase.decode(snap).revision, 3, "snapshot revision")
c:free()
T.eq(e:case("Z-1"), nil, "freed")
T.raises("notfound", c.show, c)
T.raises("notfound", c.fire, c, "beschikking", "IND")
local c2 = e:restore(snap)
T.eq(c2.revision, 3, "restored revision")
T.raises("exists", e.restore, e, libcase.decode(snap)) -- a table works as well
c2:fire("beschikking", "IND", { at = MONDAY + 4 * DAY })
T.eq(c2.done, true, "done")
T.raises("done", c2.fire, c2, "beschikking", "IND", { at = MONDAY + 4 * DAY })
T.raises("exists", e.create, e, d, "Z-1", { at = MONDAY })

-- timers
local late = e:create(d, "Z-2", { at = MONDAY })
notes = {}
e:on_notify(function(id, name, payload) notes[#notes + 1] = name .. ":" .. payload.soort end)
T.eq(late:tick(MONDAY + 3 * DAY), 0, "Thu 5 Mar: the last day still runs")
T.eq(late:tick(MONDAY + 4 * DAY), 1, "Fri 6 Mar: the term ran out")
T.eq(notes[1], "signaal:registratie_te_laat", "expiry notification")
e:on_notify(nil)

-- create with data, bad data
local c3 = e:create(d, "Z-3", { at = MONDAY, data = { kansarm = true, incidentrapport = "IR-1" } })
T.eq(c3:data().kansarm, true, "initial data")
T.raises("invalid", e.create, e, d, "Z-4", { at = MONDAY, data = { onbekend = 1 } })
T.raises("invalid", e.create, e, d, "Z-4", { at = MONDAY, data = { kansarm = "ja" } })
T.raises("invalid", e.create, e, d, "Z-4", { at = MONDAY, data_json = "{\"kansarm\": tru" })
T.eq(e:case("Z-4"), nil, "no case from bad data")

-- JSON conversion
T.eq(libcase.encode({ a = { 1, 2, libcase.null } }), '{"a":[1,2,null]}', "encode")
T.eq(libcase.encode(libcase.array()), "[]", "empty array")
T.eq(libcase.encode({}), "{}", "empty table is an object")
T.eq(libcase.encode(1.5), "1.5", "real")
T.eq(libcase.encode("é"), '"é"', "UTF-8 string")
local arr = libcase.decode('[1,null,"x",{"k":null}]')
T.eq(arr[2], libcase.null, "null in an array")
T.eq(arr[4].k, nil, "null in an object")
T.eq(libcase.encode(libcase.decode("[]")), "[]", "[] round trip")
T.raises("invalid", libcase.decode, "{")
T.raises("invalid", libcase.encode, { print })
T.raises("invalid", libcase.encode, { [1] = 1, [3] = 3 })
T.raises("invalid", libcase.encode, { 1, x = 2 })
T.raises("invalid", libcase.encode, 0 / 0)
T.raises("invalid", libcase.encode, "\xff")
local deep = {}
for _ = 1, 300 do deep = { deep } end
T.raises("limit", libcase.encode, deep)
T.raises("limit", libcase.decode, string.rep("[", 300) .. string.rep("]", 300))

-- argument errors are ordinary Lua errors
T.ok(not pcall(c3.fire, c3, nil), "event name required")
T.ok(not pcall(e.create, e, "not a def", "Z-9"), "definition required")
T.ok(not pcall(e.limit, e, "bogus"), "unknown limit")

-- an error object
err = T.raises("guard", function()
  local x = e:create(d, "Z-5", { at = MONDAY })
  x:fire("geregistreerd", "AVIM", { at = MONDAY + DAY })
  x:fire("rvt_onthouden", "IND", { at = MONDAY + DAY })
end)
T.ok(libcase.is_error(err) and not libcase.is_error("x"), "is_error")
T.ok(tostring(err):match("^libcase: .*%(guard%)$"), "error tostring: " .. tostring(err))

-- diagrams
local dot = d:graph()
T.ok(dot:find("digraph", 1, true), "DOT graph")
local mer = d:graph("mermaid", { "aanmelding" })
T.ok(mer:find("stateDiagram", 1, true), "Mermaid graph")
T.ok(mer:find("active", 1, true), "the configuration is highlighted")
T.eq(type(d:graph("dot", {})), "string", "empty configuration")
T.raises("notfound", d.graph, d, "dot", { "geen_staat" })
T.ok(not pcall(d.graph, d, "svg"), "unknown format")

T.done("lua.api")
