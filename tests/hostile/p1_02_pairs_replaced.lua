-- Issue 15.1: replacing pairs for every later evaluation.
-- fire: script 'pairs' is a sandbox global
-- check: (function() local n = 0 for _ in pairs({a = 1, b = 2}) do n = n + 1 end return n end)() == 2
pairs = function() return function() end end
