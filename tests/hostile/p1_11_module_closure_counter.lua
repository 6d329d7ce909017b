-- kind: module
-- Issue 15.1: the same through a closure made while the module loaded.
-- load: script assigns 'n'
local function counter()
  local n = 0
  return function() n = n + 1 return n end
end
local next_number = counter()
return {attack = function(case) case.x = next_number() end}
