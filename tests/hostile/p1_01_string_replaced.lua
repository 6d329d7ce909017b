-- Issue 15.1: a guard or action replaced a shared global, and later cases saw it.
-- fire: script 'string' is a sandbox global and cannot be assigned
-- check: string.upper('a') == 'A'
-- check: ('b'):upper() == 'B'
string = {upper = function() return 'pwned' end}
