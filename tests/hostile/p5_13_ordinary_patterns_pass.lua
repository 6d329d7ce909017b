-- Not an attack: the patterns process designers write stay well inside the budget.
-- after: case.s == 'een twee drie|2026|12|IR-2026-113|3'
local text = string.rep('een  twee   drie ', 300)
local words = select(2, text:gsub('%s+', ' '))
local trimmed = ('   een twee drie   '):match('^%s*(.-)%s*$')
local y, m = ('2026-12-02'):match('^(%d+)-(%d+)-(%d+)$')
local id = ('dossier IR-2026-113, zie bijlage'):match('IR%-%d+%-%d+')
local n = 0
for w in ('a,b,,c'):gmatch('[^,]+') do n = n + 1 end
assert(words == 900 and #text == 5100)
case.s = trimmed .. '|' .. y .. '|' .. m .. '|' .. id .. '|' .. n
