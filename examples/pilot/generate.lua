--[[
examples/pilot/generate.lua — a deterministic caseload shaped after the Ter Apel pilot.

  lua5.4 examples/pilot/generate.lua [OUTDIR]     (default: examples/pilot)

Writes OUTDIR/pilot.jsonl (the event log, one JSON object per line, in time order,
for `casectl import`) and OUTDIR/expected.json (the figures built in).  No clock, no
os.time, no math.random: its own PRNG (xorshift32) with a fixed seed, so the output
is the same byte for byte on every run.

The figures (shared/domain/asielketen.md, Part A; reference date 15 June 2023):
260 cases from 5 September 2022, 90 in spoor 1 (Dublin); 180 closed; 10 transferred
(Dublin); 100 appeals: 50 open, 30 ongegrond, 8 gegrond (fewer than 10), and 12 that
ended without a ruling (the person absconded and the IND closed the file).  The pilot
lane (interventieteam) takes about 14 days from start to end; 30 cases that the IND
found unsuitable for the lane run the regular way and wait months for the AA.

Each case follows one of the paths below (counts fixed, PRNG only picks dates and
minor variations).  Cases are created in order of their start date; the paths that
must still be open on 15 June 2023 go to the latest cases, the regular (slow) ones to
the earliest.  Times are Europe/Amsterdam local times with their UTC offset.

Dublin: every overdrachtsbesluit follows the voornemen and either the zienswijze
(zienswijze_ontvangen, IND, within the 2-week term and before the decision) or the end of
that term (the even-numbered dublin_transfer cases), as the workflow's guard
zienswijze_afgerond asks (Vw 39, Vb 3.109c); expected.json counts both.

Signals: every case in the lane has a COA incident report; a fixed share of them also gets a
signal from the police (every 7th case), the municipality (every 11th) or the OM (every
13th), each fired by its own role (POLITIE, GEMEENTE, OM) so the report counts signals per
source; expected.json has the counts.

Note: the replay runs on version 1 of workflows/asielprocedure.yaml, the law of
1 January 2026; the dates are 2022-2023.  The replay is a test of the shape of the
caseload, not a legal claim about 2022.

"10 to 20 cases a week": 260 cases over 41 weeks is 6.3 new cases a week; we read the
evaluation's "10-20 a week" as the cases the team works on in a week and report that
figure (cases with at least one event per week) in expected.json, not as new cases.
]]

local outdir = arg[1] or "examples/pilot"

-- ---------------------------------------------------------------- PRNG (xorshift32)
local state = 20220905
local function rnd()
  state = state ~ ((state << 13) & 0xffffffff)
  state = state ~ (state >> 17)
  state = state ~ ((state << 5) & 0xffffffff)
  return state
end
local function uniform(a, b) return a + rnd() % (b - a + 1) end

-- ---------------------------------------------------------------- dates (Europe/Amsterdam)
local function days_from_civil(y, m, d)
  y = (m <= 2) and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m > 2) and (m - 3) or (m + 9)
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end
local function civil_from_days(z)
  z = z + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  return (m <= 2) and y + 1 or y, m, d
end
local function weekday(day) return (day + 3) % 7 end -- 0 = Monday
local function last_sunday(y, m)
  local last = days_from_civil(y, m, 31)
  return last - (weekday(last) + 1) % 7
end
-- UTC offset in hours of local date `day` at 10:00-18:00 (never near 02:00 switches).
local function offset(day)
  local y = civil_from_days(day)
  return (day > last_sunday(y, 3) and day <= last_sunday(y, 10)) and 2 or 1
end
local function stamp(day, minutes)
  local y, m, d = civil_from_days(day)
  local hh, mm = 9 + minutes // 60, minutes % 60
  return string.format("%04d-%02d-%02dT%02d:%02d:00+%02d:00", y, m, d, hh, mm, offset(day))
end
local function sortkey(day, minutes) return (day * 1440 + 9 * 60 + minutes - offset(day) * 60) end

-- Atw holidays 2022-2023 near which the generator keeps decision days away.
local HOLIDAYS = {}
for _, s in ipairs({"2022-12-25", "2022-12-26", "2023-01-01", "2023-04-07", "2023-04-10",
                    "2023-04-27", "2023-05-05", "2023-05-18", "2023-05-29"}) do
  local y, m, d = s:match("(%d+)-(%d+)-(%d+)")
  HOLIDAYS[days_from_civil(tonumber(y), tonumber(m), tonumber(d))] = true
end
-- The first working day on or after `day` whose next 9 days hold no holiday, so a
-- 1-week term from it ends without an Atw shift.
local function clear_weekday(day)
  while true do
    local ok = weekday(day) < 5
    for k = 0, 9 do if HOLIDAYS[day + k] then ok = false end end
    if ok then return day end
    day = day + 1
  end
end

-- The last day of a term of `days` calendar days from `day` (day 1 is the day after) on
-- the atw clock: a last day on a Saturday, Sunday or holiday moves to the next working day
-- (Algemene termijnenwet art. 1).
local function atw_last_day(day, days)
  local last = day + days
  while weekday(last) >= 5 or HOLIDAYS[last] do last = last + 1 end
  return last
end

-- ---------------------------------------------------------------- JSON
local function json(v)
  local t = type(v)
  if t == "table" then
    if v[1] ~= nil or next(v) == nil and getmetatable(v) == "array" then
      local parts = {}
      for i = 1, #v do parts[i] = json(v[i]) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = json(k) .. ":" .. json(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  elseif t == "number" then
    return math.type(v) == "integer" and tostring(v) or string.format("%.1f", v)
  elseif t == "boolean" then
    return tostring(v)
  end
  return "null"
end

-- ---------------------------------------------------------------- the caseload
local START = days_from_civil(2022, 9, 5)      -- Monday 5 September 2022
local REF = days_from_civil(2023, 6, 15)       -- the reference date
local WEEKS = (REF - START) // 7               -- 40 full weeks, plus 3 days
local NCASES = 260

-- New cases per week: 4 to 9 (PRNG), then adjusted to 260 in total.
local perweek = {}
local total = 0
for w = 1, WEEKS do perweek[w] = uniform(4, 9); total = total + perweek[w] end
local w = 1
while total ~= NCASES do
  if total < NCASES and perweek[w] < 10 then perweek[w] = perweek[w] + 1; total = total + 1
  elseif total > NCASES and perweek[w] > 3 then perweek[w] = perweek[w] - 1; total = total - 1 end
  w = w % WEEKS + 1
end
local starts = {}
for wk = 1, WEEKS do
  for _ = 1, perweek[wk] do
    -- Cases of the last weeks start at least 12 days before the reference date.
    starts[#starts + 1] = math.min(START + (wk - 1) * 7 + uniform(0, 4), REF - 12)
  end
end
table.sort(starts)

-- Paths, with how many cases take each (see the header).  `open` paths must still be
-- running on the reference date; `regular` paths are outside the pilot lane.
local PATHS = {
  -- spoor 1, Dublin (90)
  {name = "dublin_transfer",          n = 6,  spoor = 1},
  {name = "dublin_appeal_transfer",   n = 4,  spoor = 1, appeal = "ongegrond"},
  {name = "dublin_mob",               n = 45, spoor = 1},
  {name = "dublin_appeal_mob",        n = 5,  spoor = 1, appeal = "ended_without_ruling"},
  {name = "dublin_appeal_open",       n = 10, spoor = 1, appeal = "open", open = true},
  {name = "dublin_open",              n = 20, spoor = 1, open = true},
  -- spoor 2 and 4
  {name = "spoor2_departure",         n = 20, spoor = 2},
  {name = "aa_departure",             n = 12, spoor = 4},
  {name = "regular_departure",        n = 20, spoor = 4, regular = true},
  {name = "aa_appeal_ongegrond",      n = 26, spoor = 4, appeal = "ongegrond"},
  {name = "aa_appeal_gegrond_permit", n = 5,  spoor = 4, appeal = "gegrond"},
  {name = "aa_appeal_gegrond_va",     n = 3,  spoor = 4, appeal = "gegrond", open = true},
  {name = "aa_appeal_mob",            n = 7,  spoor = 4, appeal = "ended_without_ruling"},
  {name = "aa_appeal_open",           n = 40, spoor = 4, appeal = "open", open = true},
  {name = "regular_permit",           n = 10, spoor = 4, regular = true},
  {name = "aa_mob",                   n = 20, spoor = 4},
  {name = "regular_waiting",          n = 7,  spoor = 4, regular = true, open = true},
}

-- Assign paths to cases by start date: regular closed paths first (earliest), open
-- paths last (latest); the rest shuffled in between.
local slots = {}
local function take(filter)
  local list = {}
  for _, p in ipairs(PATHS) do
    if filter(p) then for _ = 1, p.n do list[#list + 1] = p end end
  end
  return list
end
local early = take(function(p) return p.regular and not p.open end)
local middle = take(function(p) return not p.regular and not p.open end)
local late = take(function(p) return p.open end)
for i = #middle, 2, -1 do local j = uniform(1, i); middle[i], middle[j] = middle[j], middle[i] end
for i = #late, 2, -1 do local j = uniform(1, i); late[i], late[j] = late[j], late[i] end
-- Open paths that need the most days before the reference date come first.
local NEED = {aa_appeal_gegrond_va = 4, dublin_appeal_open = 3, aa_appeal_open = 2, dublin_open = 1,
              regular_waiting = 0}
for i, p in ipairs(late) do p.rank = i end
table.sort(late, function(a, b)
  if NEED[a.name] ~= NEED[b.name] then return NEED[a.name] > NEED[b.name] end
  return a.name < b.name
end)
for _, l in ipairs({early, middle, late}) do for _, p in ipairs(l) do slots[#slots + 1] = p end end
assert(#slots == NCASES, "paths must add up to 260, got " .. #slots)

local rows = {}
local function ev(c, day, event, role, payload, extra)
  c.minute = (c.day == day) and c.minute + 3 or (c.index % 60) * 3 -- spread over the morning
  c.day = day
  local r = {time = stamp(day, c.minute), case = c.id, event = event, role = role,
             actor = role and (role:lower() .. "-" .. (c.index % 7 + 1)) or nil, payload = payload}
  if extra then for k, v in pairs(extra) do r[k] = v end end
  rows[#rows + 1] = {key = sortkey(day, c.minute), seq = #rows, row = r}
  if day > c.last then c.last = day end
end

local figures = {cases = 0, closed = 0, open = 0, transferred = 0,
                 appeals = {lodged = 0, open = 0, ongegrond = 0, gegrond = 0, ended_without_ruling = 0},
                 by_track = {}, lanes = {accelerated = 0, regular = 0}, paths = {},
                 dublin_zienswijze = {received = 0, term_ran_out = 0},
                 signals_per_source = {COA = 0, POLITIE = 0, GEMEENTE = 0, OM = 0}}
local EXTRA_SIGNALEN = {
  {elke = 7, event = "signaal_politie", role = "POLITIE", soort = "winkeldiefstal"},
  {elke = 11, event = "signaal_gemeente", role = "GEMEENTE", soort = "overlast in het dorp"},
  {elke = 13, event = "signaal_zsm", role = "OM", soort = "ZSM-afdoening"},
}

for i, start in ipairs(starts) do
  local p = slots[i]
  local c = {id = string.format("TA-%04d", i), index = i, day = -1, minute = 0, last = start}
  local d = start
  ev(c, d, "create", "IND", nil, {workflow = "asielprocedure", version = 1, location = "ter_apel",
                                   data = {v_nummer = string.format("V%09d", 300000000 + i * 7919)}})
  ev(c, d, "ir_afgerond", "AVIM", p.spoor == 1 and {eurodac_treffer = true} or nil)
  d = d + uniform(1, 2)
  ev(c, d, "aanmeldgehoor_afgenomen", "IND")
  if not p.regular then
    -- The pilot lane: a COA incident report, a weak claim, reported at the meldpunt.
    ev(c, d, "incident_gemeld", "COA", {rapport = string.format("IR-%04d", i), soort = "overlast"})
    figures.signals_per_source.COA = figures.signals_per_source.COA + 1
    -- Police, municipality and OM pass their own signals (roles POLITIE, GEMEENTE, OM; the
    -- evaluation's sources), on a fixed share of the lane's cases and without a PRNG draw,
    -- so the other dates stay as they were.
    for _, s in ipairs(EXTRA_SIGNALEN) do
      if i % s.elke == 0 then
        ev(c, d, s.event, s.role, {soort = s.soort})
        figures.signals_per_source[s.role] = figures.signals_per_source[s.role] + 1
      end
    end
    ev(c, d, "kansarm_beoordeeld", "IND", {kansarm = true})
    ev(c, d, "gemeld_bij_meldpunt", "COA")
    ev(c, d, "geschikt_bevonden", "IND", {procesregisseur = "PR-" .. (i % 5 + 1)})
  end
  local function abscond(day)
    ev(c, day, "onttrokken", "COA")
    ev(c, day + 2, "bericht_van_vertrek", "AVIM")
    ev(c, day + 3, "dossier_gesloten_mob", "IND")
  end
  -- The AA in three calendar days from a clear weekday; returns the decision day.
  local function aa(day, decision)
    day = clear_weekday(day)
    ev(c, day, "aa_gestart", "IND")
    ev(c, day, "nader_gehoor_afgenomen", "IND")
    ev(c, day + 1, "correcties_ontvangen", "IND")
    if decision == "beschikking_inwilliging" then
      ev(c, day + 2, decision, "IND")
    else
      ev(c, day + 1, "voornemen_uitgebracht", "IND")
      ev(c, day + 2, "zienswijze_ontvangen", "IND")
      ev(c, day + 2, decision, "IND")
    end
    return day + 2
  end
  -- After a 30b decision: no appeal; the 1-week term and the 0-day vertrektermijn run
  -- out, then DT&V removes the person.
  local function departure(day)
    ev(c, day, uniform(1, 3) == 1 and "zelfstandig_vertrokken" or "uitgezet", "DTV")
  end
  if p.spoor == 1 then
    ev(c, d, "spoor_1_dublin", "IND")
    local stop = p.name == "dublin_open" and uniform(1, 4) or 99
    ev(c, d + 1, "claim_verzonden", "IND", {soort = "terugname"})
    if p.name == "dublin_mob" then
      abscond(d + uniform(2, 8))
    elseif stop > 1 then
      ev(c, d + 6, "claim_aanvaard", "IND")
      if stop > 2 then
        local v = d + 7
        ev(c, v, "voornemen_uitgebracht", "IND")
        if stop > 3 then
          -- The overdrachtsbesluit needs the zienswijze or its term run out (Vw 39,
          -- Vb 3.109c; guard zienswijze_afgerond).  Most lawyers send it: received on
          -- the last working day before the decision (or that morning when there is
          -- none after the voornemen).  In the transfers of even-numbered cases nothing
          -- comes: the 2-week term (atw) runs out and the IND decides on the first clear
          -- working day after it.  No PRNG draw, so the other dates stay as they were.
          local b
          if p.name == "dublin_transfer" and c.index % 2 == 0 then
            local last = atw_last_day(v, 14)
            b = clear_weekday(last + 1)
            figures.dublin_zienswijze.term_ran_out = figures.dublin_zienswijze.term_ran_out + 1
          else
            b = clear_weekday(d + 10)
            local z = b - 1
            while weekday(z) >= 5 or HOLIDAYS[z] do z = z - 1 end
            if z <= v then z = b end
            ev(c, z, "zienswijze_ontvangen", "IND")
            figures.dublin_zienswijze.received = figures.dublin_zienswijze.received + 1
          end
          ev(c, b, "overdrachtsbesluit", "IND")
          if p.appeal then
            ev(c, b + 3, "beroep_ingesteld", "RECHTBANK")
            if p.appeal == "ongegrond" then
              ev(c, b + 18, "uitspraak_ongegrond", "RECHTBANK")
              ev(c, b + 20, "overdracht_gepland", "DTV", {datum = "later"})
              ev(c, b + 26, "overgedragen", "KMAR")
            elseif p.appeal == "ended_without_ruling" then
              abscond(b + 8)
            end
          elseif p.name == "dublin_transfer" then
            ev(c, b + 10, "overdracht_gepland", "DTV", {datum = "later"})
            ev(c, b + 16, "overgedragen", "KMAR")
          end
        end
      end
    end
  elseif p.spoor == 2 then
    ev(c, d, "spoor_2_veilig_land", "IND")
    local g = clear_weekday(d + 1)
    ev(c, g, "gehoor_spoor_2_afgenomen", "IND")
    ev(c, g, "voornemen_uitgebracht", "IND")
    ev(c, g + 1, "zienswijze_ontvangen", "IND")
    ev(c, g + 2, "afwijzing_kennelijk_ongegrond", "IND")
    departure(g + 2 + 12)
  else
    if p.regular then
      ev(c, d, "ongeschikt_bevonden_placeholder", nil) -- removed below: regular cases are not reported
      rows[#rows] = nil
      ev(c, d + 1, "spoor_4_aa", "IND")
      -- The RVT runs out by itself (6 days); then months of waiting for the AA.
      local wait = p.open and uniform(20, 40) or uniform(60, 150)
      if p.open then
        -- still waiting on the reference date: nothing more.
      else
        local b = aa(d + 8 + wait, p.name == "regular_permit" and "beschikking_inwilliging"
                                   or "afwijzing_kennelijk_ongegrond")
        if p.name == "regular_departure" then departure(b + 12) end
      end
    else
      ev(c, d, "spoor_4_aa", "IND")
      ev(c, d, "rvt_onthouden", "IND", {grond = "overlast"})
      if p.name == "aa_mob" then
        abscond(d + uniform(1, 3))
      else
        local b = aa(d + 1, "afwijzing_kennelijk_ongegrond")
        if not p.appeal then
          departure(b + 12)
        else
          ev(c, b + 3, "beroep_ingesteld", "RECHTBANK")
          ev(c, b + 4, "spoeduitspraak_verzocht", "IND")
          if p.appeal == "ongegrond" then
            ev(c, b + 4 + uniform(6, 14), "uitspraak_ongegrond", "RECHTBANK")
            departure(c.last + 12)
          elseif p.appeal == "gegrond" then
            ev(c, b + 4 + uniform(6, 14), "uitspraak_gegrond", "RECHTBANK")
            if not p.open then ev(c, c.last + uniform(20, 40), "beschikking_inwilliging", "IND") end
          elseif p.appeal == "ended_without_ruling" then
            abscond(b + 6)
          end
        end
      end
    end
  end
  assert(c.last < REF, c.id .. " (" .. p.name .. ") runs past the reference date: start " .. start)
  figures.cases = figures.cases + 1
  if p.open then figures.open = figures.open + 1 else figures.closed = figures.closed + 1 end
  if p.name:find("transfer") then figures.transferred = figures.transferred + 1 end
  if p.appeal then
    figures.appeals.lodged = figures.appeals.lodged + 1
    figures.appeals[p.appeal] = figures.appeals[p.appeal] + 1
  end
  local t = tostring(p.spoor)
  figures.by_track[t] = figures.by_track[t] or {cases = 0, open = 0, closed = 0}
  local bt = figures.by_track[t]
  bt.cases = bt.cases + 1
  if p.open then bt.open = bt.open + 1 else bt.closed = bt.closed + 1 end
  local lane = p.regular and "regular" or "accelerated"
  figures.lanes[lane] = figures.lanes[lane] + 1
  figures.paths[p.name] = (figures.paths[p.name] or 0) + 1
end

table.sort(rows, function(a, b) if a.key ~= b.key then return a.key < b.key end return a.seq < b.seq end)

-- Cases the team works on per week (at least one event), for the "10-20 a week" reading.
local active = {}
for _, r in ipairs(rows) do
  local y, m, dd = r.row.time:match("(%d+)-(%d+)-(%d+)")
  local wk = (days_from_civil(tonumber(y), tonumber(m), tonumber(dd)) - START) // 7
  active[wk] = active[wk] or {}
  active[wk][r.row.case] = true
end
local amin, amax, asum, an = math.huge, 0, 0, 0
for wk = 0, WEEKS - 1 do
  local n = 0
  for _ in pairs(active[wk] or {}) do n = n + 1 end
  amin, amax, asum, an = math.min(amin, n), math.max(amax, n), asum + n, an + 1
end

local f = assert(io.open(outdir .. "/pilot.jsonl", "w"))
for _, r in ipairs(rows) do f:write(json(r.row), "\n") end
f:close()

local nmin, nmax = math.huge, 0
for wk = 1, WEEKS do nmin = math.min(nmin, perweek[wk]); nmax = math.max(nmax, perweek[wk]) end
figures.reference_date = "2023-06-15"
figures.first_case = stamp(starts[1], 0):sub(1, 10)
figures.events = #rows
figures.new_per_week = {min = nmin, max = nmax, mean = NCASES / WEEKS}
figures.active_per_week = {min = amin, max = amax, mean = asum / an}
figures.lead_time_days = {
  accelerated = {median_min = 7.0, median_max = 21.0},
  regular = {median_min = 60.0},
}
figures.seed = 20220905
figures.workflow = "asielprocedure version 1"
f = assert(io.open(outdir .. "/expected.json", "w"))
f:write(json(figures), "\n")
f:close()
io.stderr:write(string.format("generate.lua: %d cases, %d rows -> %s/pilot.jsonl, expected.json\n",
                              figures.cases, #rows, outdir))
