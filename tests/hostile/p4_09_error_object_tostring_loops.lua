-- Issue 15.4: an error object whose __tostring loops is never converted.
-- fire: script
error(setmetatable({}, {__tostring = function() while true do end end}))
