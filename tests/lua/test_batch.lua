-- Batches from Lua: s:batch(fn) commits when fn returns and rolls back when it
-- raises; begin/commit/rollback by hand; refusals inside a batch roll back alone;
-- s:tick(now, per_txn); a batch left open when the store closes is not written.
local libcase = require "libcase"
local T = require "t"
local MONDAY, DAY = T.MONDAY, T.DAY

local path = T.dbpath("batch")

local function count(s)
  local n = 0
  for _ in s:follow(0) do n = n + 1 end
  return n
end

do
  local s <close> = libcase.open_store(path, { create = true, lua_root = T.SRC })
  local e = s:engine()
  local d = e:load(T.DEF)
  s:add_def(d)

  -- committed when the function returns; its results come back
  local a, b = s:batch(function(x)
    s:create(d, "Z1", { at = MONDAY, role = "IND" })
    s:create(d, "Z2", { at = MONDAY, role = "IND" })
    T.eq(s:in_batch(), true, "in the batch")
    -- a refused fire is rolled back alone; the batch goes on
    T.raises("nothandled", s.fire, s, "Z1", "incident", "COA", { at = MONDAY + DAY })
    s:fire("Z1", "geregistreerd", "AVIM", { at = MONDAY + DAY })
    return x, "klaar"
  end, 7)
  T.eq(a, 7, "first result")
  T.eq(b, "klaar", "second result")
  T.eq(s:in_batch(), false, "batch closed")
  T.eq(count(s), 3, "two creations and a fire")
  T.eq(s:get("Z1"):show().revision, 1, "Z1 fired once")

  -- rolled back when the function raises, and the error raised again
  local ok, err = pcall(s.batch, s, function()
    s:fire("Z2", "geregistreerd", "AVIM", { at = MONDAY + DAY })
    error("stop here")
  end)
  T.ok(not ok and tostring(err):find("stop here", 1, true), "the error comes through")
  T.eq(s:in_batch(), false, "no batch left open")
  T.eq(count(s), 3, "nothing of it written")
  T.eq(s:get("Z2"):show().revision, 0, "Z2 as stored")

  -- by hand
  s:begin_batch()
  T.raises("misuse", s.begin_batch, s)
  s:fire("Z2", "geregistreerd", "AVIM", { at = MONDAY + DAY })
  s:rollback_batch()
  T.eq(s:get("Z2"):show().revision, 0, "rolled back by hand")
  s:begin_batch()
  s:fire("Z2", "geregistreerd", "AVIM", { at = MONDAY + DAY })
  s:commit_batch()
  T.eq(s:get("Z2"):show().revision, 1, "committed by hand")
  T.raises("misuse", s.commit_batch, s)

  -- timers in batches
  T.raises("invalid", s.tick, s, MONDAY + 30 * DAY, -1)
  local fired = s:tick(MONDAY + 30 * DAY, 100)
  T.eq(fired, 2, "both rust- en voorbereidingstijden ran out")
  local ok2, report = s:verify()
  T.ok(ok2, "verify: " .. libcase.encode(report))
end

-- a batch left open when the store closes is rolled back
do
  local s = libcase.open_store(path, { lua_root = T.SRC })
  local before = count(s)
  s:begin_batch()
  s:create(s:engine():load(T.DEF), "Z3", { at = MONDAY + 40 * DAY, role = "IND" })
  s:close()
  local r <close> = libcase.open_store(path, { readonly = true, lua_root = T.SRC })
  T.eq(count(r), before, "the open batch was not written")
  T.raises("notfound", r.get, r, "Z3")
end

T.done("batch")
