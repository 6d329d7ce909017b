-- kind: profile
-- Issue 15.1: a stored location profile's top level replaced `case` for every
-- workflow (another workflow's guard case.ok == true passed while ok was false).
-- load: script 'case' is a sandbox global
-- check: case.ok == false
case = setmetatable({}, {__index = function() return true end, __newindex = function() end})
return {params = {}, functions = {}}
