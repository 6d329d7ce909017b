-- Location profile: COL Ter Apel (Westerwolde).
-- The interventieteam (core team: IND coordinator, COA location manager of the VBL, COA
-- resident logistics, DT&V senior regievoerder; AVIM formally does not take part) works
-- here since September 2022, and the
-- procesbeschikbaarheidslocatie (PBL) for kansarm applicants opened on 6 July 2023
-- (shared/domain/asielketen.md, Part A).  Params override the defaults of
-- workflows/asielprocedure*.yaml for cases created with location "ter_apel".
return {
  params = {
    locatie = 'COL Ter Apel',
    interventieteam = true,
    pbl = true,
    -- Transport from an azc elsewhere is ordered two weeks before the appointment.
    transport_aanvraag_dagen = 14,
  },
  functions = {},
}
