-- kind: module
-- Issue 15.1: a module function that rewrites the module table for later calls.
-- fire: script is read-only
local M = {}
function M.helper() return 1 end
function M.attack(case)
  M.helper = function() return 2 end
  case.x = M.helper()
end
return M
