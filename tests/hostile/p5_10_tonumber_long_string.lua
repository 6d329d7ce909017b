-- Issue 15.5: tonumber scans its whole argument and allocates nothing.
-- limit: memory=64000000
-- fire: limit exceeded the instruction budget
local s = string.rep('1', 4 * 1024 * 1024)
for i = 1, 1000 do tonumber(s) end
