-- Issue 15.5: %b() on 2 MB of unbalanced parentheses scans to the end from every start.
-- fire: limit exceeded the instruction budget
local s = string.rep('(', 2 * 1024 * 1024)
s:find('%b()')
