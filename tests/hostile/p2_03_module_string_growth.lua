-- kind: module
-- Issue 15.2: ... and on a module-level string.
-- load: script assigns 's'
local s = ''
return {attack = function(case) s = s .. string.rep('x', 10000) case.x = #s end}
