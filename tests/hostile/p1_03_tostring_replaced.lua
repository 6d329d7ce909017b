-- Issue 15.1: replacing tostring.
-- fire: script 'tostring' is a sandbox global
-- check: tostring(12) == '12'
tostring = function() return 'x' end
