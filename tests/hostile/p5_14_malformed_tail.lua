-- Issue 15.5 (found by fuzz_script): a pattern whose last item is malformed is
-- not cheap at all, since Lua raises only when its matcher reaches that item,
-- after all the backtracking of the items before it.
-- fire: limit exceeded the instruction budget
string.find(string.rep('-', 40), string.rep('--', 12) .. 'y%f[')
