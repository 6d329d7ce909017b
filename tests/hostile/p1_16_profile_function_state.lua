-- kind: profile
-- Issue 15.1: a profile's function keeping what it saw.
-- fire: script 'calls' is read-only
local calls = {}
return {functions = {attack = function(case, event) calls[#calls + 1] = event.name end}}
