-- kind: module
-- Issue 15.1: the same with the sandbox's own (sorted) pairs.
-- load: script hidden state
local step, t = pairs({a = 1, b = 2, c = 3})
return {attack = function(case) case.s = step(t, nil) end}
