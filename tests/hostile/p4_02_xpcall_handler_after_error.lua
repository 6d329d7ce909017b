-- Issue 15.4: a handler that loops after an ordinary error.
-- fire: limit exceeded the instruction budget
xpcall(error, function() while true do end end)
