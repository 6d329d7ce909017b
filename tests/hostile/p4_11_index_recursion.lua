-- Issue 15.4: an __index that calls itself through the table.
-- fire: script
local t = setmetatable({}, {__index = function(t, k) return t[k .. 'x'] end})
local _ = t.a
