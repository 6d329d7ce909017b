-- Issue 15.1: the environment's metatable cannot be replaced or reached.
-- fire: script cannot change a protected metatable
-- check: getmetatable(_ENV) == 'locked' and rawget(_ENV, 'string') == nil
setmetatable(_ENV, {__index = function() return true end})
