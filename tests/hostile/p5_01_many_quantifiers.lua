-- Issue 15.5: a pattern with more than four quantifiers on a short string
-- (the old cost model stopped counting at four).
-- fire: limit exceeded the instruction budget
string.find(string.rep('a', 30), string.rep('.-', 12) .. 'x')
