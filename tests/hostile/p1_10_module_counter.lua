-- kind: module
-- Issue 15.1: a module-level local assigned by a function keeps state between cases.
-- load: script assigns 'n', a local of the file
local M = {}
local n = 0
function M.attack(case)
  n = n + 1
  case.x = n
end
return M
