-- daily_overview.lua — a location's daily overview, from the durable store.
--
--   lua5.4 examples/daily_overview.lua store.db [YYYY-MM-DD] [location]
--
-- For every open case (of one location, or of all): where it stands, what each
-- agency may do today, and the legal terms running, with those that run out
-- within a week (or already ran out) marked.  Reads the store only.  Run it from
-- the repository root with the module on LUA_CPATH (docs/lua.md).
local libcase = require "libcase"

local db, date, only = arg[1], arg[2] or os.date("!%Y-%m-%d"), arg[3]
if not db then
  io.stderr:write("usage: daily_overview.lua store.db [YYYY-MM-DD] [location]\n")
  os.exit(2)
end

-- Days since 1970-01-01 of "YYYY-MM-DD".
local function daynum(s)
  local y, m, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  assert(y, "not a date: " .. tostring(s))
  return os.time({ year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 12 }) // 86400
end

local today = daynum(date)
local now = today * 86400 + 9 * 3600 -- 09:00 UTC, 10:00 in Amsterdam in winter
local AGENCIES = { "IND", "AVIM", "COA", "DTV" }

-- Stored definitions name their Lua modules relative to workflows/; location
-- profiles are not stored, so the overview loads those it knows.
local e <close> = libcase.open({ lua_root = "workflows" })
for _, loc in ipairs({ "ter_apel", "budel" }) do
  e:load_profile(loc, "lua/locations/" .. loc .. ".lua")
end
local s <close> = e:open_store(db, { readonly = true })

print(string.format("Daily overview %s%s", date, only and (" for " .. only) or ""))
local open, soon = 0, 0
for _, row in ipairs(s:cases()) do
  if not row.done and (not only or row.location == only) then
    open = open + 1
    local c = s:get(row.id)
    print(string.format("\n%s  (%s, %s v%d, revision %d)", row.id, row.location or "no location",
                        row.workflow, row.version, row.revision))
    print("  states:   " .. table.concat(row.configuration, ", "))
    for _, role in ipairs(AGENCIES) do
      local events = {}
      for _, a in ipairs(c:available(role, now)) do events[#events + 1] = a.event end
      if #events > 0 then print(string.format("  %-5s may %s", role, table.concat(events, ", "))) end
    end
    for _, t in ipairs(row.timers or {}) do
      local last = t.last_day or os.date("!%Y-%m-%d", t.due)
      local left = daynum(last) - today
      local mark = ""
      if t.overdue or left < 0 then
        mark = "  << ran out"
      elseif left <= 7 then
        mark = string.format("  << runs out in %d day%s", left, left == 1 and "" or "s")
        soon = soon + 1
      end
      print(string.format("  term:     %-22s last day %s%s%s", t.name or t.event or t.id, last,
                          t.source and ("  (" .. t.source .. ")") or "", mark))
    end
  end
end
print(string.format("\n%d open case%s, %d term%s running out within a week", open,
                    open == 1 and "" or "s", soon, soon == 1 and "" or "s"))
