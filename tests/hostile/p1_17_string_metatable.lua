-- Issue 15.1: the string metatable is shared by every string of every case.
-- fire: script is read-only
-- check: ('a'):upper() == 'A'
getmetatable('').__index.upper = function() return 'pwned' end
