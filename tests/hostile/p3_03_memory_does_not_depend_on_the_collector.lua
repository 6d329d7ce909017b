-- Issue 15.3: the memory cap counted the heap's growth, so whether a call
-- passed depended on when the collector ran (and so on every call before it on
-- the engine).  It counts what the call allocates: garbage counts too, always.
-- limit: memory=1000000
-- fire: limit exceeded the memory limit
for i = 1, 100 do local s = string.rep('x', 20000 + i) end
