-- Named guards and actions for examples/quickstart/aanmelding.yaml.
local M = {}

-- The RVT may be withheld when an incident report backs the nuisance.
function M.rvt_mag_worden_onthouden(case, event, params)
  return case.incidentrapport ~= nil
end

return M
