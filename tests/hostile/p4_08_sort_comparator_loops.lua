-- Issue 15.4: a comparator that never returns.
-- fire: limit exceeded the instruction budget
table.sort({3, 2, 1}, function() while true do end end)
