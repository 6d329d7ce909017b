-- Issue 15.5: utf8.len of 4 MB, in a loop.
-- limit: memory=64000000
-- fire: limit exceeded the instruction budget
local s = string.rep('\u{e9}', 2 * 1024 * 1024)
for i = 1, 1000 do utf8.len(s) end
