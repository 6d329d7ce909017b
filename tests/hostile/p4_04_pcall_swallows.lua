-- Issue 15.4: once the budget ran out, every instruction fails: pcall cannot
-- swallow it, nor can a loop of them.
-- fire: limit exceeded the instruction budget
while true do pcall(function() while true do end end) end
