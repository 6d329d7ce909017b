-- Issue 15.5: comparing two equal 2 MB strings is one instruction that reads
-- 2 MB; the clock stops a loop of them (the budget would take too long).
-- limit: instructions=0
-- limit: time=300
-- limit: memory=64000000
-- fire: limit exceeded the time limit (300 ms)
local a = string.rep('x', 2 * 1024 * 1024)
local b = string.rep('x', 2 * 1024 * 1024)
local n = 0
while true do if a == b then n = n + 1 end end
