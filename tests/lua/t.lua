-- Small assertion helpers for the Lua tests (tests/lua/test_*.lua).
local libcase = require "libcase"
local T = {}

T.MONDAY = 1772442000 -- 2026-03-02 09:00 UTC, a Monday
T.DAY = 86400
T.SRC = os.getenv("CASE_SOURCE_DIR") or "."
T.TMP = os.getenv("CASE_TMP") or "/tmp"
T.DEF = T.SRC .. "/examples/quickstart/aanmelding.yaml"

local checks = 0

function T.eq(got, want, what)
  checks = checks + 1
  if got ~= want then
    error(string.format("%s: expected %s, got %s", what or "value", tostring(want),
                        tostring(got)), 2)
  end
end

function T.ok(v, what)
  checks = checks + 1
  if not v then error((what or "check") .. " failed", 2) end
end

-- Calls fn(...) and checks that it raises a libcase error with code `code`;
-- returns the error object.
function T.raises(code, fn, ...)
  checks = checks + 1
  local ok, err = pcall(fn, ...)
  if ok then error("expected a '" .. code .. "' error, got none", 2) end
  if not libcase.is_error(err) then
    error("expected a libcase error '" .. code .. "', got: " .. tostring(err), 2)
  end
  if err.code ~= code then
    error(string.format("expected code '%s', got '%s': %s", code, err.code, err.message), 2)
  end
  T.eq(err.rc, libcase.codes[code], "rc of " .. code)
  T.eq(type(err.message), "string", "message type")
  return err
end

-- $CASE_TEST_STORE naming a PostgreSQL server (tests/CMakeLists.txt: the
-- fixture's cluster): every store of the test is a schema of its own there.
T.PG = os.getenv("CASE_TEST_STORE")
if T.PG == "" or T.PG == "sqlite" then T.PG = nil end
local schemas = {}

local function psql(sql)
  local cmd = string.format("psql -X -q %q -c %q >/dev/null 2>&1", T.PG,
                            "SET client_min_messages TO warning; " .. sql)
  return os.execute(cmd)
end

-- A fresh store location: a file under the test's own directory, or (on
-- PostgreSQL) a schema named after the test script and `name`, dropped first.
function T.dbpath(name)
  if T.PG then
    local script = (arg and arg[0] or "lua"):match("([%w_]+)%.lua$") or "lua"
    local schema = ("lua_" .. script .. "_" .. name):lower():gsub("[^%w_]", "_")
    psql("DROP SCHEMA IF EXISTS " .. schema .. " CASCADE")
    schemas[#schemas + 1] = schema
    return T.PG .. (T.PG:find("?", 1, true) and "&" or "?") .. "schema=" .. schema
  end
  local p = T.TMP .. "/" .. name .. ".db"
  os.remove(p); os.remove(p .. "-wal"); os.remove(p .. "-shm")
  return p
end

-- Runs SQL on the store at `loc` as another program would (the sqlite3 shell,
-- or psql with the store's schema first on the search path); ok, its output.
function T.sql(loc, sql)
  local cmd
  if T.PG and loc:find("schema=", 1, true) then
    local schema = loc:match("schema=([%w_]+)")
    local base = loc:gsub("[?&]schema=[%w_]+", "")
    cmd = string.format("psql -X -q -v ON_ERROR_STOP=1 %q -c %q 2>&1", base,
                        "SET search_path TO " .. schema .. "; " .. sql)
  else
    cmd = string.format("sqlite3 %q %q 2>&1", loc, sql)
  end
  local f = io.popen(cmd)
  local out = f:read("a")
  return f:close(), out
end

function T.done(name)
  for _, schema in ipairs(schemas) do psql("DROP SCHEMA IF EXISTS " .. schema .. " CASCADE") end
  print(string.format("%s: %d checks passed", name, checks))
end

return T
