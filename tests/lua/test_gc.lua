-- Handles and the garbage collector: an engine lives as long as anything made
-- from it; closing in any order gives errors, never crashes; __close closes.
local libcase = require "libcase"
local T = require "t"
local MONDAY, DAY = T.MONDAY, T.DAY

-- A case handle keeps its engine (and definitions) alive.
local c, d
do
  local e = libcase.open({ lua_root = T.SRC })
  d = e:load(T.DEF)
  c = e:create(d, "G1", { at = MONDAY })
end
collectgarbage(); collectgarbage()
T.eq(c:fire("geregistreerd", "AVIM", { at = MONDAY + DAY }), 1, "engine alive through its case")
T.eq(d.id, "aanmelding_demo", "engine alive through its definition")
c, d = nil, nil
collectgarbage(); collectgarbage()

-- A store keeps its engine alive; a stored case keeps its store alive.
local sc
do
  local s = libcase.open_store(T.dbpath("gc"), { create = true, lua_root = T.SRC })
  local dd = s:engine():load(T.DEF)
  sc = s:create(dd, "G2", { at = MONDAY, role = "IND" })
end
collectgarbage(); collectgarbage()
T.eq(sc:fire("geregistreerd", "AVIM", { at = MONDAY + DAY }), 2, "store alive through its case")
sc = nil
collectgarbage(); collectgarbage()

-- Closing the engine first: everything made from it reports misuse.
local e = libcase.open({ lua_root = T.SRC })
local dd = e:load(T.DEF)
local s = e:open_store(T.dbpath("gc2"), { create = true })
local k = e:create(dd, "G3", { at = MONDAY })
local stored = s:create(dd, "G4", { at = MONDAY, role = "IND" })
e:close()
T.eq(tostring(e), "libcase.engine (closed)", "engine closed")
T.eq(tostring(s), "libcase.store (closed)", "closing the engine closed its store")
T.raises("misuse", e.load, e, T.DEF)
T.raises("misuse", s.fire, s, "G4", "geregistreerd", "AVIM")
T.raises("misuse", k.show, k)
T.raises("misuse", stored.show, stored)
T.raises("misuse", function() return dd.id end)
T.eq(tostring(k), "libcase.case G3", "tostring of a case of a closed engine")
e:close(); s:close() -- again: nothing happens
e, dd, s, k, stored = nil, nil, nil, nil, nil
collectgarbage(); collectgarbage()

-- __close on an engine with a store still open closes both, in order.
local se
do
  local en <close> = libcase.open({ lua_root = T.SRC })
  se = en:open_store(T.dbpath("gc3"), { create = true })
end
T.eq(tostring(se), "libcase.store (closed)", "__close on the engine closed its store")
se = nil

-- Cycles through the notification function are collected.
do
  local en = libcase.open()
  en:on_notify(function() return en end)
end
collectgarbage(); collectgarbage()

-- Many handles dropped without closing, some left for lua_close at exit.
local many = T.dbpath("gc-many")
for i = 1, 20 do
  local en = libcase.open({ lua_root = T.SRC })
  local st = en:open_store(many, { create = true })
  local df = en:load(T.DEF)
  st:add_def(df)
  if i == 1 then st:create(df, "M", { at = MONDAY, role = "IND" }) end
  local cs = st:get("M")
  T.eq(cs.id, "M", "stored case")
end
collectgarbage(); collectgarbage()
LEFT_OPEN = { libcase.open_store(T.dbpath("gc-exit"), { create = true }), libcase.open() }
LEFT_OPEN[3] = LEFT_OPEN[1]:engine()

T.done("lua.gc")
