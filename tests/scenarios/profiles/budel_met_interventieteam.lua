-- Test fixture: Budel once the partners run the interventieteam lane there (configured);
-- otherwise lua/locations/budel.lua (with its PBL at Cranendonck).
return { params = { locatie = 'AC Budel-Cranendonck', interventieteam = true, pbl = true,
                    transport_aanvraag_dagen = 14 }, functions = {} }
