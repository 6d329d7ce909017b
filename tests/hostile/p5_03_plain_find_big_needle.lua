-- Issue 15.5: a plain find of a 1 MB needle in 3 MB compares a megabyte at each of
-- two million places (the old model did not charge plain finds).
-- limit: memory=64000000
-- fire: limit exceeded the instruction budget
local hay = string.rep('a', 3 * 1024 * 1024)
local needle = string.rep('a', 1024 * 1024 - 1) .. 'b'
hay:find(needle, 1, true)
