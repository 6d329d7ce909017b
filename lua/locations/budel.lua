-- Location profile: aanmeldcentrum Budel (Cranendonck).
-- Budel is exploring the accelerated street of Ter Apel (Part A): the interventieteam
-- lane runs only when configured (set interventieteam = true below once the partners
-- start); there is no PBL.  Transport from an azc elsewhere needs the same two weeks.
return {
  params = {
    locatie = 'AC Budel',
    interventieteam = false,
    pbl = false,
    transport_aanvraag_dagen = 14,
  },
  functions = {},
}
