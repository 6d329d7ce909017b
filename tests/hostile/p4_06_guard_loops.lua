-- kind: guard
-- Issue 15.4: as a guard (every listing of what a role may do evaluates it).
-- fire: limit exceeded the instruction budget
xpcall(function() while true do end end, function() while true do end end)
