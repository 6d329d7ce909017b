-- Issue 15.3: Lua's table.sort picks pivots from the clock on unbalanced
-- partitions, so the order of equal elements could differ between the live run
-- and its replay.  table.sort is a stable sort: ties keep their order.
-- after: case.ok == true
local t = {}
for i = 1, 600 do t[i] = {k = i % 3 == 0 and 1 or (i % 7), n = i} end
table.sort(t, function(a, b) return a.k < b.k end)
local ok = true
for i = 2, #t do
  if t[i - 1].k > t[i].k or (t[i - 1].k == t[i].k and t[i - 1].n > t[i].n) then ok = false end
end
case.ok = ok
