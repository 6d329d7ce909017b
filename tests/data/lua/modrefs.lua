-- Functions whose case and params references the loader checks (issue 12.3):
-- tests/unit/test_loader.c test_module_refs.  Line numbers are asserted.
local M = {}

local function teller(z) return z.aantl end            -- line 5: a typo, via a helper

function M.telt(zaak, ev, p)
  return teller(zaak) > p.drempl                       -- line 8: a typo in a param
end

function M.zet(case, event, params)
  case.nosuchfield = params.drempel                     -- line 12: assigns an undeclared field
  if params.nieuw then return case.alleen_nieuw end     -- a branch a param decides: no claim
  return case["ook_niet"]                               -- line 14: after it, unclaimed too
end

function M.herbind(case, event, params)
  local case = {}                                       -- rebound: no claims in this function
  case.whatever = 1
end

M.netjes = function(case, event, params)
  return case.aantal >= params.drempel and event.data ~= nil
end

return M
