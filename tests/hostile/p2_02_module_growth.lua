-- kind: module
-- Issue 15.2: the same on a module-level table.
-- repeat: 500
-- fire: script 'keep' is read-only
-- heap: 1000000
local keep = {}
return {attack = function(case) keep[#keep + 1] = string.rep('x', 10000) end}
