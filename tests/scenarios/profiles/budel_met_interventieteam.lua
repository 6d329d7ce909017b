-- Test fixture: Budel once the partners run the interventieteam lane there (configured).
return { params = { locatie = 'AC Budel', interventieteam = true, pbl = false,
                    transport_aanvraag_dagen = 14 }, functions = {} }
