-- Issue 15.1: the same through _ENV.
-- fire: script 'case' is a sandbox global
-- check: case.ok == false
_ENV.case = setmetatable({}, {__index = function() return true end})
