-- The durable store from Lua: create, fire (idempotency, optimistic lock), the feed
-- iterator, the case list, verify, outbox, tick, <close>; and that a Lua error in a
-- host script never leaves the store half-written.
local libcase = require "libcase"
local T = require "t"
local MONDAY, DAY = T.MONDAY, T.DAY

local path = T.dbpath("store")

local function open(create)
  local s = libcase.open_store(path, { create = create, lua_root = T.SRC })
  return s, s:engine()
end

-- Every journal row of the store as {seq, case, revision, event}.
local function journal()
  local s <close> = libcase.open_store(path, { readonly = true, lua_root = T.SRC })
  local rows = {}
  for seq, row in s:follow(0) do
    rows[#rows + 1] = { seq = seq, case = row.case, revision = row.revision, event = row.event }
  end
  local ok, report = s:verify()
  T.ok(ok, "verify: " .. libcase.encode(report))
  return rows
end

T.raises("notfound", libcase.open_store, path, { lua_root = T.SRC }) -- no file, no create

do
  local s <close>, e = open(true)
  T.eq(tostring(s), "libcase.store (open)", "store tostring")
  local d = e:load(T.DEF)
  s:add_def(d)
  local c = s:create(d, "Z1", { at = MONDAY, actor = "ind-1", role = "IND" })
  T.eq(tostring(c), "libcase.case Z1 (stored)", "stored case tostring")
  T.eq(c.stored, true, "stored")
  T.raises("exists", s.create, s, d, "Z1", { at = MONDAY, role = "IND" })
  s:create(d, "Z2", { at = MONDAY, role = "IND", data = { kansarm = true } })

  local seq = s:fire("Z1", "geregistreerd", "AVIM", { at = MONDAY + DAY, key = "req-1" })
  T.eq(seq, 3, "journal seq after two creations")
  T.eq(s:fire("Z1", "geregistreerd", "AVIM", { at = MONDAY + DAY, key = "req-1" }), 3,
       "idempotent retry gives the first seq")
  T.raises("conflict", s.fire, s, "Z1", "incident", "COA",
           { at = MONDAY + DAY, expected_revision = 0 })
  T.raises("notfound", s.fire, s, "Z9", "incident", "COA", { at = MONDAY + DAY })
  T.raises("denied", s.fire, s, "Z1", "incident", "IND", { at = MONDAY + DAY })
  T.raises("guard", s.fire, s, "Z1", "rvt_onthouden", "IND", { at = MONDAY + DAY })
  T.raises("notfound", s.get, s, "Z9")
  T.raises("misuse", c.tick, c)

  -- a stored case handle fires through the store
  T.eq(c:fire("incident", "COA", { at = MONDAY + 2 * DAY, payload = { rapport = "IR-7" },
                                   expected_revision = 1 }), 4, "case:fire on a stored case")
  local got = s:get("Z1"):show()
  T.eq(got.revision, 2, "stored revision")
  T.eq(got.data.incidentrapport, "IR-7", "stored data")

  -- the feed
  local seen = {}
  for sq, row in s:follow(0) do seen[#seen + 1] = sq .. ":" .. row.case .. ":" .. row.event end
  T.eq(table.concat(seen, " "), "1:Z1:create 2:Z2:create 3:Z1:geregistreerd 4:Z1:incident",
       "feed rows in order")
  seen = {}
  for sq in s:follow(2, 1) do seen[#seen + 1] = sq end
  T.eq(table.concat(seen, " "), "3", "after and limit")
  for sq, row in s:follow(1) do
    T.eq(row.seq, sq, "row seq")
    T.eq(row.configuration[1], "aanmelding", "row configuration")
    T.eq(row.data.kansarm, true, "row data")
    T.eq(#row.hash, 64, "row hash")
    break
  end

  -- the case list
  local cases = s:cases()
  T.eq(#cases, 2, "two cases")
  T.eq(cases[1].id, "Z1", "sorted by id")
  T.eq(cases[1].revision, 2, "list revision")
  T.eq(cases[1].configuration[1], "rust_en_voorbereiding", "list configuration")
  T.eq(cases[1].workflow, "aanmelding_demo", "list workflow")
  T.eq(cases[2].timers[1].last_day, "2026-03-05", "list timers")
  T.eq(cases[2].done, false, "list done")

  -- tick, outbox
  T.eq(s:tick(MONDAY + 3 * DAY), 0, "nothing due on Thu")
  T.eq(s:tick(MONDAY + 4 * DAY), 1, "Z2's registration term ran out")
  local out = s:outbox()
  T.eq(#out, 1, "one notification in the outbox")
  T.eq(out[1].name, "signaal", "outbox name")
  T.eq(out[1].payload.soort, "registratie_te_laat", "outbox payload")
  s:ack(out[1].id)
  T.eq(#s:outbox(), 0, "acknowledged")
  T.raises("notfound", s.ack, s, 999)
  -- named consumers: their own view of the outbox, acknowledged or not
  local got = s:claim("archief")
  T.eq(#got, 1, "a new consumer gets every notification")
  T.eq(got[1].name, "signaal", "claimed name")
  T.eq(#s:claim("archief"), 0, "leased: not handed out twice")
  T.eq(s:done("archief", got[1].id), s, "done")
  T.raises("notfound", s.done, s, "archief", 999)
  T.raises("invalid", s.claim, s, "", 1)
  T.eq(s:config({ sync = "full", busy_ms = 1000 }), s, "config")
  T.raises("invalid", s.config, s, { sync = "sometimes" })
end

-- <close> closed it; a closed handle gives an error, not a crash
local kept
do
  local s <close> = libcase.open_store(path, { lua_root = T.SRC })
  kept = s
end
T.eq(tostring(kept), "libcase.store (closed)", "closed by <close>")
T.raises("misuse", kept.fire, kept, "Z1", "incident", "COA")
T.raises("misuse", kept.follow, kept, 0)
kept:close() -- twice is fine

local before = journal()
T.eq(#before, 5, "five rows before the failing scripts")

-- 1. A script that errors between two fires: the first is stored, the second never happens.
local ok, msg = pcall(function()
  local s <close>, e = open(false)
  s:fire("Z1", "rvt_onthouden", "IND", { at = MONDAY + 2 * DAY })
  error("the host script fails here")
  s:fire("Z1", "beschikking", "IND", { at = MONDAY + 4 * DAY }) -- luacheck: ignore
end)
T.ok(not ok and msg:find("fails here"), "the script failed")
local rows = journal()
T.eq(#rows, 6, "one more row")
T.eq(rows[6].event, "rvt_onthouden", "the first fire is stored")

-- 2. The same in a separate process that dies with the error (no pcall, no <close>).
local lua = os.getenv("CASE_LUA") or "lua5.4"
local script = T.TMP .. "/dies.lua"
local f = assert(io.open(script, "w"))
f:write(string.format([[
local libcase = require "libcase"
local s = libcase.open_store(%q, { lua_root = %q })
s:fire("Z2", "geregistreerd", "AVIM", { at = %d })
error("dies between two fires")
]], path, T.SRC, MONDAY + 5 * DAY))
f:close()
local okx = os.execute(lua .. " " .. script .. " 2>/dev/null")
T.ok(not okx, "the child script failed")
rows = journal()
T.eq(#rows, 7, "the child's first fire is stored")
T.eq(rows[7].case .. ":" .. rows[7].event, "Z2:geregistreerd", "child row")

-- 3. An error inside a feed iteration whose body writes: each fire is whole.
ok = pcall(function()
  local s <close> = open(false)
  for seq, row in s:follow(0) do
    if row.case == "Z2" and row.event == "geregistreerd" then
      s:fire("Z2", "incident", "COA", { at = MONDAY + 5 * DAY, payload = { rapport = "IR-9" } })
      error("stop in the middle of the feed")
    end
  end
end)
T.ok(not ok, "the feed loop failed")
rows = journal()
T.eq(#rows, 8, "the fire in the loop body is stored once")
T.eq(rows[8].event, "incident", "incident row")

-- 4. An error in a notification function: the event is committed, the notification
-- is in the outbox, the error reaches the script, and the engine stays usable.
do
  local s <close>, e = open(false)
  e:on_notify(function(id, name) error("notification handler fails for " .. name) end)
  local okn, err = pcall(s.fire, s, "Z2", "rvt_onthouden", "IND", { at = MONDAY + 5 * DAY })
  T.ok(not okn and tostring(err):find("notification handler fails for rvt_onthouden", 1, true),
       "the handler's error is raised: " .. tostring(err))
  T.eq(s:get("Z2").revision, 4, "the event is committed")
  local out = s:outbox()
  T.eq(#out, 2, "its notification is in the outbox (after Z1's from script 1)")
  T.eq(out[2].case .. ":" .. out[2].name, "Z2:rvt_onthouden", "the outbox row")
  -- a notification function may not call the engine: misuse, and nothing breaks
  e:on_notify(nil)
  local d = e:find("aanmelding_demo")
  s:create(d, "Z3", { at = MONDAY, role = libcase.SYSTEM })
  s:fire("Z3", "geregistreerd", "AVIM", { at = MONDAY + DAY })
  s:fire("Z3", "incident", "COA", { at = MONDAY + DAY, payload = { rapport = "IR-3" } })
  e:on_notify(function() s:fire("Z1", "beschikking", "IND", { at = MONDAY + 6 * DAY }) end)
  local bad = T.raises("misuse", s.fire, s, "Z3", "rvt_onthouden", "IND", { at = MONDAY + 2 * DAY })
  T.ok(bad.message:find("busy", 1, true), "busy message")
  e:on_notify(nil)
  T.eq(s:get("Z1").revision, 3, "the nested fire did not happen")
  T.eq(s:get("Z3"):configuration()[1], "algemene_asielprocedure", "the outer fire did")
  T.eq(s:fire("Z1", "beschikking", "IND", { at = MONDAY + 6 * DAY }), 14, "the engine works on")
end
rows = journal()
T.eq(#rows, 14, "every row whole")

-- the caseload report
do
  local s <close> = open(false)
  local r = s:report(MONDAY + 7 * DAY)
  T.eq(r.report, "libcase.report.v1", "report format")
  T.eq(r.cases.total, 3, "three cases in the report")
  T.raises("invalid", s.report, s, MONDAY, { onbekend = 1 })
end

-- the overview's report (case_store_report_v2): the same caseload, terms and the filter
do
  local s <close> = open(false)
  local r = s:report_v2(MONDAY + 7 * DAY)
  T.eq(r.report, "libcase.report.v2", "report_v2 format")
  T.eq(r.cases.total, 3, "three cases in report_v2")
  T.eq(r.cases.open + r.cases.closed, 3, "open and closed add up")
  T.eq(#r.open_cases, r.cases.open, "every open case listed")
  T.eq(r.selection.filtered, false, "no filter")
  T.eq(r.selection.open, r.cases.open, "without a filter the selection is the caseload")
  local f = s:report_v2(MONDAY + 7 * DAY, { filter = { location = "nergens" }, sort = "case" })
  T.eq(#f.open_cases, 0, "a filter that keeps nothing")
  T.eq(f.selection.open, 0, "and its selection counts nothing")
  T.eq(f.cases.total, 3, "while the summary counts every case")
  local j = s:report_v2(MONDAY + 7 * DAY, '{"horizon_days": 3}')
  T.eq(j.terms.horizon_days, 3, "options as JSON text")
  T.raises("invalid", s.report_v2, s, MONDAY, { sort = "onbekend" })
end

T.done("lua.store")
