-- Issue 15.5: sorting is charged n log n before it starts.
-- limit: memory=0
-- fire: limit exceeded the instruction budget
local t = {}
for i = 1, 200000 do t[i] = -i end
table.sort(t)
