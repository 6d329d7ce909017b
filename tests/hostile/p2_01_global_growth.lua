-- Issue 15.2: a global grown a little on every call reached 424 MB.  Nothing a
-- call leaves survives it: the assignment is refused every time, and the heap
-- stays where it was.
-- repeat: 500
-- fire: script '_VERSION' is a sandbox global
-- heap: 1000000
-- check: _VERSION == 'Lua 5.4'
_VERSION = _VERSION .. string.rep('x', 10000)
