-- Location profile: aanmeldcentrum Budel (Cranendonck).
-- Budel is exploring the accelerated street of Ter Apel (Part A): the interventieteam
-- lane runs only when configured (set interventieteam = true below once the partners
-- start).  Budel has a procesbeschikbaarheidslocatie (PBL) at Cranendonck, as the budget
-- and the ministry's note on the Ter Apel approach describe (issue 11, point 7; the
-- documents are not in shared/domain, so unverified there).  Transport from an azc
-- elsewhere needs the same two weeks.
return {
  params = {
    locatie = 'AC Budel-Cranendonck',
    interventieteam = false,
    pbl = true,
    transport_aanvraag_dagen = 14,
  },
  functions = {},
}
