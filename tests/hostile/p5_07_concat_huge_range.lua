-- Issue 15.5: table.concat over a huge range of a table that answers every index.
-- fire: limit exceeded the instruction budget
table.concat(setmetatable({}, {__index = function() return 'x' end}), '', 1, 1e12)
