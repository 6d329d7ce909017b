-- Issue 15.5: table.insert(t, 1, v) moves every element, a loop of them is quadratic.
-- limit: memory=0
-- fire: limit exceeded the instruction budget
local t = {}
for i = 1, 100000 do table.insert(t, 1, i) end
