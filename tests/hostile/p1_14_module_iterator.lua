-- kind: module
-- Issue 15.1: an iterator made at load keeps its position between calls.
-- load: script hidden state
local words = string.gmatch('een twee drie', '%a+')
return {attack = function(case) case.s = words() end}
