-- Issue 15.3: __mode added to a metatable after setmetatable made a weak table,
-- whose contents then depend on the collector (replay differed from the live run).
-- after: case.ok == true
local mt = {}
local t = setmetatable({}, mt)
mt.__mode = 'v'
t[1] = {}
for i = 1, 50000 do local garbage = {i} end
case.ok = t[1] ~= nil
