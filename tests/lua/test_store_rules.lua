-- The store's rules from Lua (issue 12): case ids, idempotency keys, read-only
-- stores, the far-future bound, profile versions.
local libcase = require "libcase"
local T = require "t"
local MONDAY, DAY = T.MONDAY, T.DAY

local path = T.dbpath("rules")

-- Case ids (§13): printable UTF-8 without spaces; a NUL byte, which C would cut
-- the id at, is refused too.
do
  local s <close> = libcase.open_store(path, { create = true, lua_root = T.SRC })
  local e = s:engine()
  local d = e:load(T.DEF)
  s:add_def(d)
  for _, id in ipairs({ "Z\t1", "Z\n1", "Z 1", "Z\xff", "", "Z\0evil", string.rep("a", 129) }) do
    T.raises("invalid", s.create, s, d, id, { at = MONDAY, role = "IND" })
    T.raises("invalid", e.create, e, d, id, { at = MONDAY })
  end
  local err = T.raises("invalid", s.create, s, d, "Z\t1", { at = MONDAY, role = "IND" })
  T.ok(err.message:find("is a tab (U+0009)", 1, true), "the tab is named: " .. err.message)
  err = T.raises("invalid", s.create, s, d, "Z\0evil", { at = MONDAY, role = "IND" })
  T.ok(err.message:find("NUL", 1, true), "the NUL byte is named: " .. err.message)
  T.eq(s:create(d, "zaak-ß-✓", { at = MONDAY, role = "IND" }).id, "zaak-ß-✓", "a UTF-8 id")
  T.eq(s:create(d, string.rep("a", 128), { at = MONDAY, role = "IND" }).revision, 0,
       "128 bytes is allowed")
  local n = 0
  for _ in s:follow(0) do n = n + 1 end
  T.eq(n, 2, "only the two good ids were journalled")
end

-- Idempotency keys (§7): another request under a used key is refused ("exists"),
-- the same one is a retry and says so (a second result, true).
do
  local s <close> = libcase.open_store(path, { lua_root = T.SRC })
  local e = s:engine()
  local d = e:find("aanmelding_demo")
  s:create(d, "K1", { at = MONDAY, role = "IND" })
  local seq, replayed = s:fire("K1", "geregistreerd", "AVIM", { at = MONDAY + DAY, key = "abc" })
  T.eq(replayed, false, "a first fire is not a retry")
  local err = T.raises("exists", s.fire, s, "K1", "incident", "COA",
                       { at = MONDAY + DAY, key = "abc", payload = { rapport = "x" } })
  T.ok(err.message:find("differs in its event, payload and role", 1, true), err.message)
  local again, re = s:fire("K1", "geregistreerd", "AVIM", { at = MONDAY + 2 * DAY, key = "abc" })
  T.eq(again, seq, "a retry gives the first seq")
  T.eq(re, true, "and says it is one")
  T.raises("exists", s.fire, s, "K1", "geregistreerd", "AVIM",
           { at = MONDAY + 2 * DAY, key = "abc", key_time = true })
  T.eq(s:get("K1").revision, 1, "one event written")
end

-- The far-future bound (§12): an event or tick time more than a day after the
-- store's clock (the wall clock) is refused unless allowed.
do
  local s <close> = libcase.open_store(path, { lua_root = T.SRC })
  local d = s:engine():find("aanmelding_demo")
  local far = os.time() + 400 * DAY
  local err = T.raises("invalid", s.create, s, d, "F1", { at = far, role = "IND" })
  T.ok(err.message:find("after the store's clock", 1, true), err.message)
  T.raises("invalid", s.tick, s, far)
  T.raises("invalid", s.fire, s, "K1", "incident", "COA", { at = far })
  T.eq(s:set_future_limit(-1), 86400, "the default limit is a day")
  T.eq(s:create(d, "F1", { at = far, role = "IND" }).revision, 0, "allowed after set_future_limit(-1)")
end
do
  local s <close> = libcase.open_store(path, { lua_root = T.SRC, allow_future = true })
  T.eq(s:set_future_limit(10), -1, "allow_future opens without a limit")
end

-- Profile versions (§11): a stored case keeps the version it was created with;
-- s:set_profile moves it, journalled.
do
  local dir = T.TMP .. "/prof"
  os.execute("mkdir -p " .. dir)
  local function profile(n)
    local f = assert(io.open(dir .. "/loc.lua", "w"))
    f:write("return { params = { drempel = " .. n .. " } }\n")
    f:close()
    return dir .. "/loc.lua"
  end
  local ppath = T.dbpath("profiles")
  local s <close> = libcase.open_store(ppath, { create = true })
  local e = s:engine()
  local d = e:load_string([[
workflow: drempel
version: 1
roles: [IND]
params: {drempel: 1}
data: {n: {type: integer, default: 0}}
initial: open
states:
  open:
    on:
      tel: {actions: ["case.n = case.n + 1"]}
      sluit: {guard: "case.n >= params.drempel", target: dicht}
  dicht: {final: true}
]], "drempel.yaml")
  e:load_profile("loc", profile(1))
  local a = s:create(d, "A", { at = MONDAY, role = "IND", location = "loc" })
  T.eq(a.profile_version, 1, "pinned to version 1")
  e:load_profile("loc", profile(3))
  local b = s:create(d, "B", { at = MONDAY, role = "IND", location = "loc" })
  T.eq(b.profile_version, 2, "a changed profile is stored as version 2 for the new case")
  s:fire("A", "tel", "IND", { at = MONDAY + 60 })
  s:fire("B", "tel", "IND", { at = MONDAY + 60 })
  T.raises("guard", s.fire, s, "B", "sluit", "IND", { at = MONDAY + 60 })
  T.eq(s:set_profile("B", { version = 1, actor = "beheer", at = MONDAY + 120 }) > 0, true,
       "the move is journalled")
  T.eq(s:set_profile("B", { version = 1, actor = "beheer", at = MONDAY + 120 }), 0,
       "moving again writes nothing")
  T.eq(s:get("B").profile_version, 1, "B is on version 1")
  s:fire("B", "sluit", "IND", { at = MONDAY + 180 })
  s:fire("A", "sluit", "IND", { at = MONDAY + 180 })
  T.ok(s:verify(), "verify replays each case on its versions")
  T.raises("done", s.set_profile, s, "A", { version = 2, actor = "x" })
  T.raises("notfound", s.set_profile, s, "Z9", { actor = "x" })
end

T.done("lua.store_rules")
