-- Issue 12 through the Lua binding: definitions and profiles that must not surprise
-- (profile checks), roles, what a person is offered, explain with the actor.
local libcase = require "libcase"
local T = require "t"
local P = T.SRC .. "/tests/data/defs/profiles"

-- 12.3: a profile is checked against the definition, in both load orders.
do
  local e <close> = libcase.open()
  local d = e:load(P .. "/drempel.yaml")
  local err = T.raises("invalid", e.load_profile, e, "budel", P .. "/bad_type.lua")
  T.eq(err.line, 5, "the error is at the param in the profile")
  T.ok(err.message:find("sets param 'drempel' to a string", 1, true), err.message)
  e:load_profile("budel", P .. "/zero_and_typo.lua")
  local w = d:check_profile("budel")
  T.eq(#w, 2, "two warnings")
  T.eq(w[1].severity, "warning", "severity")
  T.eq(w[1].line, 4, "line of drempl")
  T.ok(w[1].message:find("did you mean 'drempel'", 1, true), w[1].message)
  T.eq(w[2].line, 3, "line of wacht")
  T.raises("notfound", d.check_profile, d, "nergens")
end

-- 12.2: who creates a stored case is a declared role, or explicitly the system.
do
  local s <close> = libcase.open_store(T.dbpath("defs_roles"), { create = true, lua_root = T.SRC })
  local d = s:engine():load(T.DEF)
  local err = T.raises("invalid", s.create, s, d, "R1", { at = T.MONDAY })
  T.ok(err.message:find("store:create needs role=", 1, true), err.message)
  T.raises("invalid", s.create, s, d, "R1")
  err = T.raises("denied", s.create, s, d, "R1", { at = T.MONDAY, role = "HACKER" })
  T.ok(err.message:find("role 'HACKER' is not declared", 1, true), err.message)
  T.raises("notfound", s.get, s, "R1")
  T.eq(s:create(d, "R2", { at = T.MONDAY, role = libcase.SYSTEM }).revision, 0, "as the system")
  T.eq(s:create(d, "R3", { at = T.MONDAY, role = "IND" }).revision, 0, "as a declared role")
end

-- 12.5/12.6: available and explain with the actor, never the engine's events.
do
  local e <close> = libcase.open()
  local d = e:load(T.SRC .. "/tests/data/ask/ask.yaml")
  local c = e:create(d, "A1", { at = T.MONDAY })
  local function events(list)
    local t = {}
    for _, x in ipairs(list) do t[#t + 1] = x.event end
    table.sort(t)
    return table.concat(t, ",")
  end
  T.eq(events(c:available("COA", T.MONDAY)), "klaar", "COA: no done.state, no clock event")
  T.eq(events(c:available("IND", { at = T.MONDAY, actor = "ind-1" })), "besluit,klaar", "as ind-1")
  T.eq(events(c:available("IND", { at = T.MONDAY, actor = "ind-2" })), "klaar", "as ind-2")
  T.eq(events(c:available("IND", { at = T.MONDAY + 3 * T.DAY })), "heropen", "after the term")
  local x = c:explain("besluit", "IND", { at = T.MONDAY, actor = "ind-2", payload = { a = 1 } })
  T.eq(x.possible, false, "refused as ind-2")
  T.eq(x.actor, "ind-2", "explain names the actor")
  T.eq(x.blockers[1].code, "guard", "the guard blocks")
  T.eq(c:explain("besluit", "IND", { at = T.MONDAY, actor = "ind-1" }).possible, true, "ind-1")
  T.eq(c:explain("done.state.zaak", "IND", T.MONDAY).blockers[1].code, "reserved", "reserved")
end

T.done("test_defs")
