-- A fire needs a role: nil, "" or a non-string refuses (invalid) on an engine case,
-- a stored case and store:fire, before anything changes; libcase.SYSTEM fires as
-- the system (no role checks) when a host means it.
local libcase = require "libcase"
local T = require "t"
local MONDAY, DAY = T.MONDAY, T.DAY

T.eq(type(libcase.SYSTEM), "userdata", "libcase.SYSTEM is a light userdata")
T.ok(libcase.SYSTEM ~= libcase.null, "SYSTEM is not null")

do -- an engine case
  local e <close> = libcase.open({ lua_root = T.SRC })
  local d = e:load(T.DEF)
  local c = e:create(d, "Z-1", { at = MONDAY })
  for _, role in ipairs({ "nil", "", 5, "table", "null" }) do
    local r = role
    if role == "nil" then r = nil elseif role == "table" then r = {} elseif role == "null" then r = libcase.null end
    local err = T.raises("invalid", c.fire, c, "geregistreerd", r, { at = MONDAY + DAY })
    T.ok(err.message:find("role name expected", 1, true), "the message says a role is expected: " .. err.message)
    T.eq(c.revision, 0, "nothing fired with role " .. tostring(role))
  end
  T.raises("denied", c.fire, c, "geregistreerd", "COA", { at = MONDAY + DAY })
  T.eq(c:fire("geregistreerd", libcase.SYSTEM, { at = MONDAY + DAY }), 1, "SYSTEM fires")
end

do -- a stored case and store:fire
  local path = T.dbpath("role")
  local s <close> = libcase.open_store(path, { create = true, lua_root = T.SRC })
  local d = s:engine():load(T.DEF)
  s:add_def(d)
  local c = s:create(d, "Z-2", { at = MONDAY, role = "IND" })
  T.raises("invalid", s.fire, s, "Z-2", "geregistreerd", nil, { at = MONDAY + DAY })
  T.raises("invalid", s.fire, s, "Z-2", "geregistreerd")
  T.raises("invalid", c.fire, c, "geregistreerd", nil, { at = MONDAY + DAY })
  T.raises("invalid", c.fire, c, "geregistreerd", 42, { at = MONDAY + DAY })
  local n = 0
  for _ in s:follow(0) do n = n + 1 end
  T.eq(n, 1, "only the create row is journalled")
  T.ok(s:fire("Z-2", "geregistreerd", "AVIM", { at = MONDAY + DAY }) > 0, "a role fires")
end

T.done("test_role")
