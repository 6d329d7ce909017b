-- Test fixture: a location that asks two signals before a case may enter the lane
-- (param lane_min_signalen) and also takes people housed at an azc elsewhere (its own
-- criterium_op_locatie), to show the lane's criteria are a profile's to change.
return {
  params = { locatie = 'COL Ter Apel', interventieteam = true, pbl = true,
             transport_aanvraag_dagen = 14, lane_min_signalen = 2 },
  functions = {
    criterium_op_locatie = function(case, event, params) return not case.afwezig end,
  },
}
