-- kind: module
-- Issue 15.1/15.2: a module-level table, changed by every call, is seen by the next case.
-- payload: {"s": "123456782"}
-- fire: script 'seen' is read-only
-- repeat: 3
local M = {}
local seen = {}
function M.attack(case, event)
  seen[#seen + 1] = event.data.s
  case.x = #seen
end
return M
