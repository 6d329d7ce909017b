-- Issue 15.4: recursion without end: its stack reaches the memory cap (or Lua's
-- own stack limit) long before anything hangs.
-- fire: limit exceeded the memory limit
local function f(n) return 1 + f(n + 1) end
f(1)
