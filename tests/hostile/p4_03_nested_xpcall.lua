-- Issue 15.4: handlers within handlers.
-- fire: limit exceeded the instruction budget
local function h() xpcall(function() while true do end end, h) while true do end end
xpcall(function() while true do end end, h)
