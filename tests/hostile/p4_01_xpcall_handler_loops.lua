-- Issue 15.4: the message handler of xpcall ran with the hook off (it runs
-- inside the hook that raised the budget error) and looped for ever.
-- fire: limit exceeded the instruction budget
xpcall(function() while true do end end, function() while true do end end)
