-- Issue 15.1: replacing `case` with a table whose __index answers true.
-- fire: script 'case' is a sandbox global
-- check: case.ok == false
case = setmetatable({}, {__index = function() return true end, __newindex = function() end})
