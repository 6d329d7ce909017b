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

-- A fresh database path under the test's own directory.
function T.dbpath(name)
  local p = T.TMP .. "/" .. name .. ".db"
  os.remove(p); os.remove(p .. "-wal"); os.remove(p .. "-shm")
  return p
end

function T.done(name)
  print(string.format("%s: %d checks passed", name, checks))
end

return T
