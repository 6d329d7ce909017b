-- Issue 15.5: pairs() sorts the keys, 40,000 of them, on every call.
-- limit: memory=0
-- fire: limit exceeded the instruction budget
local t = {}
for i = 1, 40000 do t[i * 2] = i end
for j = 1, 1000 do for k in pairs(t) do break end end
