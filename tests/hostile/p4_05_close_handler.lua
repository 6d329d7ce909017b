-- Issue 15.4: a to-be-closed variable whose __close loops while the budget
-- error unwinds.
-- fire: limit exceeded the instruction budget
local x <close> = setmetatable({}, {__close = function() while true do end end})
while true do end
