-- Issue 15.5: thirty optional items before thirty required ones: 2^30 tries.
-- fire: limit exceeded the instruction budget
string.match(string.rep('a', 30), string.rep('a?', 30) .. string.rep('a', 30) .. 'b')
