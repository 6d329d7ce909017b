-- kind: module
-- Issue 15.1: a module's top level may not change the globals either.
-- load: script 'string' is a sandbox global
-- check: string.upper('a') == 'A'
string = {}
return {attack = function() end}
