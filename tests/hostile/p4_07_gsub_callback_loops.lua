-- Issue 15.4: Lua code called from C (a gsub replacement, a sort comparator).
-- fire: limit exceeded the instruction budget
string.gsub('aaa', 'a', function() while true do end end)
