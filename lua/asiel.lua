-- Guards and actions for workflows/asielprocedure*.yaml (the asylum chain).
-- Every function is called as fn(case, event, params); guards only read.
-- Sources are cited as in shared/domain/asielketen.md (Vw, Vb, Awb, DIII, AMMR).
-- Location differences come from params (lua/locations/*.lua), never from code here.
local M = {}

-- ---------------------------------------------------------------- dates
-- Days since 1970-01-01 of a "YYYY-MM-DD" string (proleptic Gregorian), or nil.
local function dagnummer(s)
  if type(s) ~= 'string' then return nil end
  local y, m, d = s:match('^(%d%d%d%d)%-(%d%d)%-(%d%d)$')
  if not y then return nil end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if m < 1 or m > 12 or d < 1 or d > 31 then return nil end
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- The "YYYY-MM-DD" string of a day number (the inverse of dagnummer).
local function datum_van(z)
  z = z + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02d', y, m, d)
end

-- The amount of a duration text ("0 days" -> 0), or nil.
local function hoeveelheid(duur)
  return type(duur) == 'string' and tonumber(duur:match('^%s*(%d+)')) or nil
end

-- ---------------------------------------------------------------- signals
-- A signal is {bron = the source role (COA, POLITIE, AVIM, GEMEENTE, OM), soort =
-- 'incident' | 'politie' | 'gemeente' | 'zsm', rapport = id or nil, datum = day, actor}.
local SOORTEN = { incident_gemeld = 'incident', signaal_politie = 'politie',
                  signaal_gemeente = 'gemeente', signaal_zsm = 'zsm' }

-- Action: records a signal with its source (Part A: COA, police, municipality, OM/ZSM),
-- and passes it straight to the team when the case is in the lane.
function M.registreer_signaal(case, event, params)
  local d = event.data or {}
  local lijst = case.signalen or {}
  local s = { bron = event.role, soort = SOORTEN[event.name] or event.name, rapport = d.rapport,
              omschrijving = d.soort, datum = today, actor = event.actor }
  lijst[#lijst + 1] = s
  case.signalen = lijst
  if case.interventieteam then
    emit('interventieteam.signaal', { bron = s.bron, soort = s.soort, procesregisseur = case.procesregisseur })
  end
end

-- Guard: at least one nuisance signal of any kind; in the pilot one offence, one
-- nuisance signal or even a potential one is enough (Part A, no "serious" threshold).
function M.overlast_signaal_aanwezig(case, event, params)
  return case.signalen ~= nil and #case.signalen > 0
end

-- The id of a COA incident report among the signals, or nil.
local function incidentrapport(case)
  for _, s in ipairs(case.signalen or {}) do
    if s.soort == 'incident' and s.rapport ~= nil then return s.rapport end
  end
  return nil
end

function M.incidentrapport_aanwezig(case, event, params)
  return incidentrapport(case) ~= nil
end

-- ---------------------------------------------------------------- kansarm
-- Guard: weak merits (kansarm): marked so by the IND, or from a safe country of origin.
-- Responsibility of another Member State (Dublin) is not weak merits.
function M.is_kansarm(case, event, params)
  return case.kansarm == true or case.veilig_land_van_herkomst == true
end

-- ---------------------------------------------------------------- RVT
-- Guard: the IND may withhold the rust- en voorbereidingstijd (Vb 3.109 lid 7,
-- D02) on one of the grounds in event.data.grond:
--   overlast       nuisance in or around reception, backed by a COA incident report
--   openbare_orde  a risk to public order or national security (a police or ZSM signal)
--   bewaring       detention under Vw 59b or on criminal grounds
--   identiteit     suspected false identity, nationality, origin or ethnicity
function M.rvt_mag_worden_onthouden(case, event, params)
  local grond = event.data and event.data.grond
  if grond == 'overlast' then
    return incidentrapport(case) ~= nil
  elseif grond == 'openbare_orde' then
    for _, s in ipairs(case.signalen or {}) do
      if s.soort == 'politie' or s.soort == 'zsm' then return true end
    end
    return false
  elseif grond == 'bewaring' then
    return (case.in_bewaring == true and case.bewaring_grondslag == '59b')
        or case.strafrechtelijk_gedetineerd == true
  elseif grond == 'identiteit' then
    return case.identiteit_twijfel == true
  end
  return false
end

function M.onthoud_rvt(case, event, params)
  case.rvt_onthouden = event.data.grond
  emit('rvt_onthouden', { grond = event.data.grond, rapport = incidentrapport(case) })
end

-- ---------------------------------------------------------------- interventieteam
-- Guard: the location runs the interventieteam lane (Ter Apel; Budel when configured).
function M.interventieteam_mogelijk(case, event, params)
  return params.interventieteam == true
end

-- The lane's criteria (the evaluation, Part A).  Each is a guard of its own, named in the
-- workflow, which a location profile may replace by a function of the same name.
-- Overlastgevend: at least params.lane_min_signalen signals.
function M.criterium_overlastgevend(case, event, params)
  return #(case.signalen or {}) >= params.lane_min_signalen
end

-- Kansarm for the lane: from a safe country (of origin, or protection elsewhere: spoor 2),
-- a Dublin case (spoor 1, or a Eurodac hit while a claim is still possible), or weak merits
-- in the team's assessment (kansarm_beoordeeld).
-- Version 2 (params.pact) has no sporen: the accelerated, admissibility and border
-- procedures take the place of spoor 2.
local KANSARME_PROCEDURES = { versneld = true, ontvankelijkheid = true, grens = true }

function M.criterium_kansarm(case, event, params)
  if case.kansarm == true or case.veilig_land_van_herkomst == true then return true end
  if params.pact then
    if KANSARME_PROCEDURES[case.procedure] then return true end
  elseif case.spoor == 2 then
    return true
  end
  if case.spoor == 1 then return true end
  return case.eurodac_treffer == true and case.claimtermijn_verstreken ~= true
end

-- Early in the procedure: no first-instance decision yet, not in the VA.
function M.criterium_vroeg_in_procedure(case, event, params)
  if params.pact then return case.beschikking == nil end
  return case.beschikking == nil and case.fase ~= 'VA'
end

-- Present at the location: housed there (or in its PBL), not absconded.  A person housed at
-- an azc elsewhere is hard to accelerate (Part A).
function M.criterium_op_locatie(case, event, params)
  if case.afwezig then return false end
  local v = case.verblijfplaats
  return v == nil or v == params.locatie or v == 'PBL ' .. params.locatie
end

-- Guard: the assessment names the procesregisseur who takes the case (payload procesregisseur).
function M.procesregisseur_genoemd(case, event, params)
  local p = event.data and event.data.procesregisseur
  return type(p) == 'string' and p ~= ''
end

-- The criteria by their global names, so a location profile's replacement is the one used.
local function criteria(case, event, params)
  return { overlastgevend = criterium_overlastgevend(case, event, params),
           kansarm = criterium_kansarm(case, event, params),
           vroeg_in_procedure = criterium_vroeg_in_procedure(case, event, params),
           op_locatie = criterium_op_locatie(case, event, params), datum = today }
end

-- Action: records the criteria as they stand, so the team sees which one holds.
function M.beoordeel_geschiktheid(case, event, params)
  case.geschiktheid = criteria(case, event, params)
end

function M.start_interventieteam(case, event, params)
  local p = event.data.procesregisseur
  case.geschiktheid = criteria(case, event, params)
  case.interventieteam = true
  case.procesregisseur = p
  case.procesregisseur_sinds = today
  local lijst = case.procesregie or {}
  lijst[#lijst + 1] = { procesregisseur = p, sinds = today, door = event.actor }
  case.procesregie = lijst
  emit('interventieteam.gestart', { procesregisseur = p })
end

-- Guard: a handover names another procesregisseur (payload aan) and is made by the
-- current one (role PROCESREGISSEUR, actor = case.procesregisseur) or by the IND.
function M.overdracht_procesregie_toegestaan(case, event, params)
  local aan = event.data and event.data.aan
  if type(aan) ~= 'string' or aan == '' or aan == case.procesregisseur then return false end
  if event.role == 'PROCESREGISSEUR' then return event.actor ~= nil and event.actor == case.procesregisseur end
  return event.role == 'IND'
end

-- The current entry of case.procesregie gets its end; `reden` says why.
local function sluit_regie(case, reden, aan)
  local lijst = case.procesregie or {}
  local laatste = lijst[#lijst]
  if laatste and laatste.tot == nil then
    laatste.tot = today
    laatste.reden = reden
    laatste.overgedragen_aan = aan
  end
  case.procesregie = lijst
end

function M.draag_procesregie_over(case, event, params)
  local van, aan = case.procesregisseur, event.data.aan
  sluit_regie(case, 'overgedragen', aan)
  local lijst = case.procesregie
  lijst[#lijst + 1] = { procesregisseur = aan, sinds = today, door = event.actor }
  case.procesregie = lijst
  case.procesregisseur = aan
  case.procesregisseur_sinds = today
  emit('interventieteam.procesregie_overgedragen', { van = van, aan = aan, door = event.actor })
end

-- Exit of interventieteam_actief: the case leaves the lane or is closed; the procesregie
-- ends with it (the history keeps who had it, from when to when).
function M.sluit_procesregie(case, event, params)
  sluit_regie(case, event.name, nil)
end

function M.stop_interventieteam(case, event, params)
  case.interventieteam = false
  emit('interventieteam.beeindigd', { procesregisseur = case.procesregisseur })
  case.procesregisseur = nil
  case.procesregisseur_sinds = nil
end

-- The core team by agency and function (the evaluation): AVIM is not part of it.
local KERNTEAM = {
  IND = { coordinator = true },
  COA = { locatiemanager_vbl = true, bewonerslogistiek = true },
  DTV = { senior_regievoerder = true },
}

-- Guard: the event comes from the case's procesregisseur, or from a member of the core
-- team naming their function (payload functie).
function M.kernteamlid(case, event, params)
  if event.role == 'PROCESREGISSEUR' then
    return event.actor ~= nil and event.actor == case.procesregisseur
  end
  local f = event.data and event.data.functie
  local t = KERNTEAM[event.role]
  return t ~= nil and f ~= nil and t[f] == true
end

-- Action: a weekly meeting decision or a daily contact, with who recorded it.
function M.registreer_teamoverleg(case, event, params)
  local d = event.data or {}
  local lijst = case.teamoverleg or {}
  lijst[#lijst + 1] = {
    soort = event.name == 'dagelijks_contact' and 'dagelijks' or 'weekoverleg',
    datum = today, actor = event.actor, rol = event.role, functie = d.functie,
    besluit = d.besluit, onderwerp = d.onderwerp, deelnemers = d.deelnemers, met = d.met,
  }
  case.teamoverleg = lijst
  if d.besluit then
    emit('interventieteam.besluit', { besluit = d.besluit, procesregisseur = case.procesregisseur })
  end
end

-- ---------------------------------------------------------------- planning
-- Guard: a gehoor can be planned on event.data.datum: not in the past, and a
-- person housed at an azc elsewhere needs transport ordered
-- params.transport_aanvraag_dagen ahead (Part A), so not sooner than that.
function M.gehoor_planbaar(case, event, params)
  local datum = event.data and dagnummer(event.data.datum)
  local vandaag = dagnummer(today)
  if not datum or datum < vandaag then return false end
  local elders = case.verblijfplaats ~= nil and case.verblijfplaats ~= params.locatie
  if elders then return datum - vandaag >= params.transport_aanvraag_dagen end
  return true
end

function M.plan_gehoor(case, event, params)
  case.gehoor_datum = event.data.datum
  case.versneld = case.interventieteam == true
  if case.verblijfplaats ~= nil and case.verblijfplaats ~= params.locatie then
    emit('coa.vervoer_aanvragen', { datum = event.data.datum, van = case.verblijfplaats })
  end
end

-- Guard: COA may place the person in the PBL (a restricted location for kansarm
-- applicants, Ter Apel from 6 July 2023) where the location has one.
function M.pbl_plaatsing_mogelijk(case, event, params)
  return params.pbl == true and M.is_kansarm(case, event, params)
end

-- ---------------------------------------------------------------- decisions
-- The decision outcome matrix (Vw 69, 82, 62; section 2.4 from 12 June 2026):
-- article, which appeal term applies, whether an appeal suspends removal, vertrektermijn.
local AFWIJZING = {
  afwijzing_niet_ontvankelijk  = { soort = 'niet_ontvankelijk',  artikel = '30a', schorsend = false, vertrek = 'vertrektermijn_regulier' },
  afwijzing_kennelijk_ongegrond = { soort = 'kennelijk_ongegrond', artikel = '30b', schorsend = false, vertrek = 'vertrektermijn_kennelijk_ongegrond' },
  afwijzing_buiten_behandeling = { soort = 'buiten_behandeling', artikel = '30c', schorsend = false, vertrek = 'vertrektermijn_regulier' },
  afwijzing_ongegrond          = { soort = 'ongegrond',          artikel = '31',  schorsend = true,  vertrek = 'vertrektermijn_regulier' },
}

-- Action for every afwijzing_* event: records the beschikking and the terms that follow.
-- event.data (optional): {schorsend = true} for the exceptions 30a(1)(c) and 30b(1)(h);
-- {vertrektermijn = "N days"} when the IND sets another departure period (Vw 62(2)).
-- Version 2 (from 12 June 2026): the decision types of the APR and their appeal terms
-- (Vw 69 from 12 June 2026: 1 week for 30, 30a, 30b, 30c; 2 weeks for ongegrond, 31).
local AFWIJZING_PACT = {
  afwijzing_niet_ontvankelijk     = { soort = 'niet_ontvankelijk', artikel = 'APR 38 (Vw 30a)', beroep = 'beroep_30_30c' },
  afwijzing_kennelijk_ongegrond   = { soort = 'kennelijk_ongegrond', artikel = 'APR 39, 42 (Vw 30b)', beroep = 'beroep_30_30c' },
  afwijzing_ongegrond             = { soort = 'ongegrond', artikel = 'Vw 31', beroep = 'beroep_ongegrond' },
  afwijzing_impliciet_ingetrokken = { soort = 'impliciet_ingetrokken', artikel = 'APR 41 (Vw 30c)', beroep = 'beroep_30_30c' },
}

-- APR art. 68: an appeal suspends (a right to remain) except against a decision in the
-- accelerated (68(3)(a)(i)) or border procedure (68(3)(a)), or an inadmissibility decision
-- (68(3)(b)); an unaccompanied minor in the border procedure keeps the right.  Implicit
-- withdrawal: params.schorsend_impliciet_ingetrokken (unverified).
local function schorsend_pact(case, soort, params)
  if case.procedure == 'grens' then return case.amv == true end
  if soort == 'niet_ontvankelijk' then return false end
  if soort == 'impliciet_ingetrokken' then return params.schorsend_impliciet_ingetrokken end
  if case.procedure == 'versneld' then return false end
  return true
end

-- The vertrektermijn in version 2: in the return border procedure voluntary departure of at
-- most params.vertrektermijn_grens, none after a manifestly unfounded rejection (RBPR);
-- otherwise as before (the post-Pact Vw 62 is unverified).
local function vertrektermijn_pact(case, soort, params)
  if soort == 'kennelijk_ongegrond' then return params.vertrektermijn_kennelijk_ongegrond end
  if case.procedure == 'grens' then return params.vertrektermijn_grens end
  return params.vertrektermijn_regulier
end

function M.registreer_afwijzing(case, event, params)
  local a = params.pact and AFWIJZING_PACT[event.name] or AFWIJZING[event.name]
  local d = event.data or {}
  case.beschikking = a.soort
  case.artikel = a.artikel
  case.beschikking_datum = today
  if params.pact then
    case.beroepstermijn = params[a.beroep]
  elseif a.soort == 'ongegrond' then
    case.beroepstermijn = case.fase == 'VA' and params.beroep_ongegrond_va or params.beroep_ongegrond_aa
  else
    case.beroepstermijn = params.beroep_30_30c
  end
  if case.beroepstermijn == params.beroep_30_30c then
    case.hoger_beroepstermijn = params.hoger_beroep_na_kort
  else
    case.hoger_beroepstermijn = params.hoger_beroep_na_lang
  end
  local schorsend = a.schorsend
  if params.pact then schorsend = schorsend_pact(case, a.soort, params) end
  if d.schorsend ~= nil then case.schorsende_werking = d.schorsend else case.schorsende_werking = schorsend end
  -- Vw 82 lid 1: a suspensive appeal term holds the departure back until it ends.
  case.schorsing = case.schorsende_werking and 'beroep' or nil
  case.vovo = nil
  case.uitspraak = nil
  if params.pact then
    case.vertrektermijn = d.vertrektermijn or vertrektermijn_pact(case, a.soort, params)
  else
    case.vertrektermijn = d.vertrektermijn or params[a.vertrek]
  end
  if hoeveelheid(case.vertrektermijn) == 0 then
    -- Vw 66a lid 1: no vertrektermijn given, so an entry ban goes with the return decision.
    case.inreisverbod = { grond = 'Vw 2000 art. 66a lid 1', duur = params.inreisverbod_duur,
                          datum = today }
    emit('dtv.inreisverbod', { duur = params.inreisverbod_duur, datum = today })
  else
    case.inreisverbod = nil
  end
  local melding = { beschikking = a.soort, artikel = a.artikel, datum = today }
  if case.interventieteam then emit('dtv.beschikking_direct', melding) else emit('dtv.beschikking', melding) end
end

function M.registreer_inwilliging(case, event, params)
  case.beschikking = 'inwilliging'
  case.artikel = '28'
  case.beschikking_datum = today
  emit('coa.huisvesting_statushouder', { datum = today })
end

-- Entry of the appeal term: the term follows the decision type.
function M.start_beroepstermijn(case, event, params)
  case.rechtsmiddel = 'beroepstermijn'
  set_deadline('beroepstermijn', case.beroepstermijn)
end

-- Entry of the appeal.
function M.start_beroep(case, event, params)
  case.rechtsmiddel = 'beroep'
  case.beroep_datum = today
end

-- The suspension of the departure ends (Vw 82 lid 1: the appeal term passed unused or
-- the rechtbank ruled; a granted vovo lapses with the ruling, Awb 8:85).  The vertrek
-- region then starts the vertrektermijn from today.
function M.einde_schorsing(case, event, params)
  case.schorsing = nil
  case.vovo = nil
end

-- A vovo is requested: the person may await its ruling in NL (vovo_afwachten).
function M.registreer_vovo_verzoek(case, event, params)
  case.vovo = 'verzocht'
  emit('dtv.vovo_verzocht', { datum = today })
end

-- A vovo is granted: the return decision is suspended until the ruling; the
-- vertrektermijn starts again from the ruling (D14).
function M.registreer_vovo_toewijzing(case, event, params)
  case.vovo = 'toegewezen'
  case.schorsing = 'vovo'
  emit('dtv.vovo_toegewezen', { datum = today })
end

-- Guard: removal (uitzetting) is possible now: nothing suspends the return decision,
-- no vovo request waits for its ruling (params.vovo_afwachten), and, where
-- params.niet_uitzetten_in_beroepstermijn holds, the window to ask a vovo has closed
-- (case.verzoekvenster_open, the deadline verzoektermijn) or a vovo was refused.  Medical unfitness (Vw 64) is a separate
-- condition in the workflow.  Hoger beroep does not stop removal (Vw 85).
function M.uitzetting_toegestaan(case, event, params)
  if case.schorsing ~= nil then return false end
  if case.vovo == 'verzocht' and params.vovo_afwachten then return false end
  -- The applicant may stay until the window to ask a vovo closes: the appeal term in
  -- version 1 (APD 46(8)), the region verzoekvenster (1 week) in version 2 (APR 68(5)).
  -- In both versions the window is the region verzoekvenster; lodging the appeal does not
  -- close it in version 1 (a vovo may follow the appeal, Awb 8:81).
  if not params.niet_uitzetten_in_beroepstermijn or case.vovo ~= nil then return true end
  return not case.verzoekvenster_open
end

-- Guard: a Dublin transfer is possible now (the same conditions as removal: the appeal
-- against the overdrachtsbesluit does not suspend it, Vw 82 lid 2 sub a; a vovo does).
function M.overdracht_toegestaan(case, event, params)
  if case.vovo == 'toegewezen' then return false end
  if case.vovo == 'verzocht' and params.vovo_afwachten then return false end
  -- The window to ask a suspension is the appeal term against the overdrachtsbesluit (DIII
  -- art. 27(3)(c)); from 12 June 2026 the request comes with the appeal (AMMR art. 43(3),
  -- Vw 69), so an appeal lodged without one closes it.  In version 1 the window is the
  -- whole appeal term (region verzoekvenster_overdracht), also after the appeal is lodged.
  -- A refused vovo (the only value left here) ends the wait in both.
  if not params.niet_uitzetten_in_beroepstermijn or case.vovo ~= nil then return true end
  if params.pact then return case.rechtsmiddel ~= 'beroepstermijn' end
  return not case.verzoekvenster_open and case.rechtsmiddel ~= 'beroepstermijn'
end

-- The vertrektermijn has run out: no lawful stay, COA's reception ends (VBL possible).
function M.einde_vertrektermijn(case, event, params)
  case.vertrektermijn_einde = datum_van(dagnummer(today) - 1)
  emit('coa.opvang_beeindigd', { datum = today })
end

-- Guard: the court's instruction term (Vw 83b, D11) is the short one (4 weeks, state
-- beroep_kort, atw clock) after an appeal in the short category; otherwise the long one
-- (23 weeks, state beroep_lang, plain clock: over 12 weeks the Atw does not apply, art. 4).
function M.uitspraaktermijn_kort(case, event, params)
  if params.pact then
    return case.beroepstermijn == params.beroep_30_30c or case.procedure ~= 'regulier'
  end
  return case.beroepstermijn == params.beroep_30_30c or case.fase == 'AA'
end

function M.start_hoger_beroepstermijn(case, event, params)
  case.rechtsmiddel = 'hoger_beroepstermijn'
  set_deadline('hoger_beroepstermijn', case.hoger_beroepstermijn)
end

-- Entry of `vernietigd` (a gegrond ruling): the IND's own hoger beroep term, the same
-- term as the applicant's would have been (Vw 69, Awb 6:24).
function M.start_hoger_beroepstermijn_ind(case, event, params)
  case.rechtsmiddel = nil
  case.schorsing = nil
  case.vovo = nil
  set_deadline('hoger_beroepstermijn_ind', case.hoger_beroepstermijn)
end

function M.start_vertrektermijn(case, event, params)
  set_deadline('vertrektermijn', case.vertrektermijn)
end

-- Guard: a voorlopige voorziening only where the appeal does not suspend removal (Vw 82).
function M.vovo_nodig(case, event, params)
  if case.schorsende_werking == true then return false end
  -- Version 2: the request to remain within its window (APR 68(5); Vw 69 from 12 June
  -- 2026: 1 week), the deadline verzoektermijn on afgewezen.
  if params.pact then return case.verzoekvenster_open == true end
  return true
end

-- Entry of verzoekvenster_open (version 2): the window for a request to remain runs 1 week
-- from the decision where the appeal does not keep the right to remain (APR 68(5), Vw 69
-- from 12 June 2026).  Where it keeps it, or when the RvS upheld the IND's hoger beroep
-- (afgewezen entered again), it closes at once.
-- Version 1: the window is the decision's appeal term (APD 46(8)); lodging the appeal does
-- not close it, since the vovo may follow the appeal.
function M.start_verzoektermijn(case, event, params)
  case.verzoekvenster_open = case.schorsende_werking ~= true and case.uitspraak ~= 'hoger_beroep_gegrond'
  if not case.verzoekvenster_open then
    return -- closed at once: the state's eventless transition leaves it
  end
  if params.pact then
    set_deadline('verzoektermijn', params.verzoek_blijven_dagen .. ' days')
  else
    set_deadline('verzoektermijn', case.beroepstermijn)
  end
end


-- ---------------------------------------------------------------- AA
-- Entry of the AA: day 6, or day 9 under AA+ (Vb 3.110, 3.115).
function M.start_aa(case, event, params)
  case.fase = 'AA'
  case.aa_start = today
  if case.aa_plus then set_deadline('aa_beschikking', params.aa_plus_dagen .. ' days') end
end

-- Extension after the start (Vb 3.115): grounds a-e to day 18, f to 20, g to 26;
-- with AA+ 21, 23, 29.
local VERLENGING = { a = 'aa_verlengd_ae', b = 'aa_verlengd_ae', c = 'aa_verlengd_ae',
                     d = 'aa_verlengd_ae', e = 'aa_verlengd_ae', f = 'aa_verlengd_f',
                     g = 'aa_verlengd_g' }

function M.aa_verlenging_toegestaan(case, event, params)
  return event.data ~= nil and VERLENGING[event.data.grond] ~= nil
end

function M.verleng_aa(case, event, params)
  local dagen = params[VERLENGING[event.data.grond]]
  if case.aa_plus then dagen = dagen + params.aa_plus_extra end
  case.aa_verlenging = event.data.grond
  set_deadline('aa_beschikking', dagen .. ' days')
end

-- ---------------------------------------------------------------- zienswijze
-- A rejection needs a voornemen and the chance to respond (Vw 39): the IND may reject
-- once the zienswijze is received or its term has run out (Vb 3.109c, 3.109ca, 3.114,
-- 3.116).  The two flags describe the zienswijze on the current voornemen.
function M.zienswijze_afgerond(case, event, params)
  return case.zienswijze_ingediend == true or case.zienswijze_te_laat == true
end

-- Entry of every zienswijze state: a new voornemen, so no zienswijze yet.
function M.start_zienswijze(case, event, params)
  case.zienswijze_ingediend = false
  case.zienswijze_te_laat = false
end

-- Entry of the AA zienswijze: day 1 after the voornemen (day 2 under AA+).
function M.start_aa_zienswijze(case, event, params)
  M.start_zienswijze(case, event, params)
  if case.aa_plus then set_deadline('aa_zienswijze', params.aa_zienswijze_dagen_plus .. ' days') end
end

-- ---------------------------------------------------------------- registration, Dublin
-- Which rules decide responsibility: 'DIII' or 'AMMR'.  Version 2 (params.dublin_verordening
-- 'AMMR') applies the AMMR, except to applications registered before params.ammr_vanaf:
-- for those the DIII criteria decide (AMMR art. 84(2)), and with them the DIII terms.
local function dublin_regime(case, params)
  if params.dublin_verordening ~= 'AMMR' then return 'DIII' end
  if (case.registratie_datum or today) < params.ammr_vanaf then return 'DIII' end
  return 'AMMR'
end

-- A Dublin term param by its base name (claim_treffer, antwoord_overname, ...) for the
-- case's regime: version 2 keeps the DIII values as dublin3_*.
local function dublin_termijn(case, params, naam)
  if params.dublin_verordening == 'AMMR' and dublin_regime(case, params) == 'DIII' then
    return params['dublin3_' .. naam]
  end
  return params['dublin_' .. naam]
end

-- Action of ir_afgerond: the application is registered and lodged (S02); a Eurodac hit
-- in the payload ({eurodac_treffer = true, treffer_soort = 'asielverzoek' |
-- 'grensoverschrijding'}) is received now.
function M.registreer_ir(case, event, params)
  case.ir_datum = today
  local d = event.data or {}
  if d.eurodac_treffer then
    case.eurodac_treffer = true
    case.eurodac_treffer_datum = today
    if d.treffer_soort then case.eurodac_treffer_soort = d.treffer_soort end
  end
end

-- Action of eurodac_treffer_ontvangen: a hit that comes after the lodging.
function M.registreer_eurodac_treffer(case, event, params)
  local d = event.data or {}
  case.eurodac_treffer = true
  case.eurodac_treffer_datum = today
  if d.treffer_soort then case.eurodac_treffer_soort = d.treffer_soort end
end

-- Guard (version 2): the term that runs is a take back notification (a hit on an earlier
-- application elsewhere); when it is late, the responsible state must still take back
-- (AMMR art. 41(1)), so NL does not become responsible.
function M.terugname_notificatie_niet_bindend(case, event, params)
  return dublin_regime(case, params) == 'AMMR' and case.eurodac_treffer == true
     and case.eurodac_treffer_soort == 'asielverzoek'
end

-- Entry of claimtermijn_loopt (region verantwoordelijkheid): the term for a claim, from
-- the lodging or, after a Eurodac hit, from the hit (DIII art. 21(1), 23(2); AMMR art.
-- 39(1), 41(1)).  The state is entered again when a later hit comes in.
function M.start_claimtermijn(case, event, params)
  local regime = dublin_regime(case, params)
  if params.dublin_verordening == 'AMMR' then case.dublin_regime = regime end
  local t
  if not case.eurodac_treffer then
    t = dublin_termijn(case, params, 'claim_zonder_treffer')
  elseif M.terugname_notificatie_niet_bindend(case, event, params) then
    t = params.dublin_terugname_notificatie
  else
    t = dublin_termijn(case, params, 'claim_treffer')
  end
  set_deadline('claimtermijn', t)
end

-- The claim term passed without a request: NL is responsible; a case already in spoor 1
-- leaves it (in_behandeling's nl_verantwoordelijk), later ones cannot enter it.
function M.claimtermijn_verlopen(case, event, params)
  case.claimtermijn_verstreken = true
  emit('ind.claimtermijn_verstreken', { datum = today })
  raise('nl_verantwoordelijk')
end

function M.registreer_claim(case, event, params)
  case.claim_soort = event.data.soort
  case.claim_datum = today
end

-- Entry of the reply term: take charge or take back, Eurodac-based or not (D23, D24;
-- AMMR art. 40, 41).
function M.start_antwoordtermijn(case, event, params)
  local t
  if case.claim_soort == 'terugname' then
    t = dublin_termijn(case, params, case.eurodac_treffer and 'antwoord_terugname_treffer' or 'antwoord_terugname')
  else
    t = dublin_termijn(case, params, case.eurodac_treffer and 'antwoord_overname_treffer' or 'antwoord_overname')
  end
  set_deadline('antwoordtermijn', t)
end

-- Days in a duration text of days or weeks ("6 weeks" -> 42), or nil.
local function dagen(duur)
  local n, eenheid = tostring(duur):match('^%s*(%d+)%s+(%a+)')
  n = tonumber(n)
  if not n then return nil end
  if eenheid == 'day' or eenheid == 'days' then return n end
  if eenheid == 'week' or eenheid == 'weeks' then return 7 * n end
  return nil
end

-- Dublin detention (Vw 59a, DIII art. 28(3)): the transfer must follow within 6 weeks of
-- the acceptance or of the end of a suspensive appeal, so a person detained at that moment
-- has the maximum recounted to that day + 6 weeks (the deadline counts from the order).
local function herbereken_59a(case, params)
  if not (case.in_bewaring and case.bewaring_grondslag == '59a' and case.bewaring_datum) then return end
  local sinds = dagnummer(today) - dagnummer(case.bewaring_datum)
  set_deadline('bewaring_maximum', (sinds + dagen(params.bewaring_max_59a)) .. ' days')
end

-- Entry of claimakkoord: the claim is accepted (or, re-entered, a suspensive appeal ended);
-- the transfer term and a 59a maximum count from today.
function M.start_claimakkoord(case, event, params)
  case.claimakkoord_datum = today
  herbereken_59a(case, params)
end

function M.claim_valide(case, event, params)
  return event.data ~= nil and (event.data.soort == 'overname' or event.data.soort == 'terugname')
end

-- Extension of the transfer deadline (DIII art. 29(2); AMMR from 12 June 2026):
-- imprisonment or absconding, recounted from the start of the term.
function M.overdrachtstermijn_verlenging_toegestaan(case, event, params)
  local grond = event.data and event.data.grond
  if grond == 'onderduiken' then return case.onttrokken == true end
  if grond == 'detentie' then return case.strafrechtelijk_gedetineerd == true end
  return false
end

function M.verleng_overdrachtstermijn(case, event, params)
  local grond = event.data.grond
  case.overdrachtstermijn_verlengd = grond
  if grond == 'onderduiken' then
    set_deadline('overdrachtstermijn', dublin_termijn(case, params, 'overdracht_onderduiken'))
  else
    set_deadline('overdrachtstermijn', dublin_termijn(case, params, 'overdracht_detentie'))
  end
end

function M.start_dublin_zienswijze(case, event, params)
  M.start_zienswijze(case, event, params)
  if case.in_bewaring then set_deadline('dublin_zienswijze', params.dublin_zienswijze_bewaring) end
end

-- ---------------------------------------------------------------- detention
-- Entry of vreemdelingenbewaring: the maximum by legal basis (Vw 59, 59a, 59b, D19),
-- plain clock: the Atw does not apply to deprivation of liberty (art. 4).
local MAXIMUM = { ['59'] = 'bewaring_max_59', ['59a'] = 'bewaring_max_59a',
                  ['59b'] = 'bewaring_max_59b', ['6'] = 'bewaring_max_6' }

function M.grondslag_bekend(case, event, params)
  return event.data ~= nil and MAXIMUM[event.data.grondslag] ~= nil
end

function M.start_bewaring(case, event, params)
  case.in_bewaring = true
  case.afwezig = false
  case.bewaring_datum = today
  set_deadline('bewaring_maximum', params[MAXIMUM[case.bewaring_grondslag]])
  emit('ind.bewaring', { grondslag = case.bewaring_grondslag, datum = today })
end

-- Extension of detention under Vw 59 (6 + 12 months) or 59b (4 + ... ).
function M.bewaring_verlengbaar(case, event, params)
  return case.bewaring_grondslag == '59' or case.bewaring_grondslag == '59b'
end

function M.verleng_bewaring(case, event, params)
  if case.bewaring_grondslag == '59' then
    set_deadline('bewaring_maximum', params.bewaring_max_59_verlengd)
  else
    set_deadline('bewaring_maximum', params.bewaring_max_59b_verlengd)
  end
end

function M.einde_bewaring(case, event, params)
  case.in_bewaring = false
  emit('ind.bewaring_beeindigd', { datum = today })
end

-- Missed reporting duty (D17): two in a row (a Dublin claimant: one) mean the person
-- has absconded; the action raises onttrokken.
function M.meldplicht_gemist(case, event, params)
  case.meldplicht_gemist = (case.meldplicht_gemist or 0) + 1
  local grens = case.spoor == 1 and params.mob_dublin_gemist or params.mob_gemist
  if case.meldplicht_gemist >= grens then raise('onttrokken') end
end

-- ---------------------------------------------------------------- criminal law
-- Entry of zsm_insluiting: arrested, held for the ZSM track; the IND and DT&V are told.
function M.start_zsm(case, event, params)
  case.zsm_ingesloten = true
  emit('ind.zsm_ingesloten', { datum = today })
  emit('dtv.zsm_ingesloten', { datum = today })
end

-- Entry of strafrechtelijke_detentie (payload verwachte_vrijlating optional).
function M.start_detentie(case, event, params)
  case.strafrechtelijk_gedetineerd = true
  local d = event.data or {}
  case.verwachte_vrijlating = d.verwachte_vrijlating
  emit('ind.detentie', { datum = today, verwachte_vrijlating = d.verwachte_vrijlating })
  emit('dtv.detentie', { datum = today, verwachte_vrijlating = d.verwachte_vrijlating })
end

function M.kondig_vrijlating_aan(case, event, params)
  local d = event.data or {}
  case.verwachte_vrijlating = d.datum
  emit('ind.vrijlating_aangekondigd', { datum = d.datum })
  emit('dtv.vrijlating_aangekondigd', { datum = d.datum })
end

-- The release from ZSM custody or criminal detention: the signal the IND misses today
-- (Part A), to the IND and DT&V, with where the person goes (back to the location or
-- straight into vreemdelingenbewaring).
function M.registreer_vrijlating(case, event, params)
  local uit = case.strafrechtelijk_gedetineerd and 'strafrechtelijke_detentie' or 'zsm'
  local naar = event.name == 'inbewaringstelling' and 'vreemdelingenbewaring' or 'opvang'
  local melding = { datum = today, uit = uit, naar = naar,
                    afdoening = event.data and event.data.afdoening }
  emit('ind.vrijlating', melding)
  emit('dtv.vrijlating', melding)
  case.verwachte_vrijlating = nil
end

-- ---------------------------------------------------------------- measures
local VBM = { gebiedsgebod = true, gebiedsverbod = true }

-- Guard: a vrijheidsbeperkende maatregel of its own (Vw 56) names its kind.
function M.vbm_soort_bekend(case, event, params)
  return event.data ~= nil and VBM[event.data.soort] == true
end

function M.registreer_vbm(case, event, params)
  case.vbm = { soort = event.data.soort, gebied = event.data.gebied, sinds = today,
               grondslag = 'Vw 2000 art. 56' }
  emit('avim.vbm', { soort = event.data.soort, gebied = event.data.gebied })
end

-- Entry of htl: the placement comes with a vbm (Vw 56) that keeps the person there.
function M.start_htl(case, event, params)
  case.maatregel = 'htl'
  case.vbm = { soort = 'htl', sinds = today, grondslag = 'Vw 2000 art. 56' }
  emit('ind.maatregel', { maatregel = 'htl', datum = today })
end

-- Exit of htl and vbl: the vbm that went with the placement ends with it.
function M.einde_vbm_maatregel(case, event, params)
  if case.vbm and (case.vbm.soort == 'htl' or case.vbm.soort == 'vbl') then case.vbm = nil end
end

-- The last day a VBL stay may last: params.vbl_weken weeks after the end of the
-- vertrektermijn (D18), as a day number, or nil when no vertrektermijn has run out.
local function vbl_laatste_dag(case, params)
  if not case.vertrektermijn_einde then return nil end
  return dagnummer(case.vertrektermijn_einde) + 7 * params.vbl_weken
end

-- Guard: DT&V may place in the VBL: the vertrektermijn has run out, nothing suspends the
-- departure, and the 12 weeks after its end have not passed (D18).
function M.vbl_plaatsing_mogelijk(case, event, params)
  local laatste = vbl_laatste_dag(case, params)
  return laatste ~= nil and case.schorsing == nil and dagnummer(today) <= laatste
end

-- Entry of vbl: the maximum counts from the end of the vertrektermijn, not from the placement.
function M.start_vbl(case, event, params)
  case.maatregel = 'vbl'
  case.vbm = { soort = 'vbl', sinds = today, grondslag = 'Vw 2000 art. 56' }
  set_deadline('vbl_maximum', (vbl_laatste_dag(case, params) - dagnummer(today)) .. ' days')
  emit('coa.vbl_plaatsing', { datum = today })
end

-- ---------------------------------------------------------------- registration
-- Entry of aanmelding: 3 working days to register, 6 when the request was made to an
-- authority that does not register it (Vb 3.107b).
function M.start_aanmelding(case, event, params)
  if case.aangemeld_bij_andere_autoriteit then
    set_deadline('registratie', params.registratie_werkdagen_andere_autoriteit .. ' working days')
  end
end

function M.markeer_onttrokken(case, event, params)
  case.onttrokken = true
  case.afwezig = true
  emit('ind.onttrokken', { datum = today })
end

-- ---------------------------------------------------------------- version 2 (EU Pact)
-- Screening (SR 2024/1356): its limit by where it happens (art. 8): at the external border
-- 7 days, 4 when the person was held at the border more than 72 hours first, in the
-- territory 3 days (art. 8(4), unverified).  case.screening: 'grens', 'grens_na_72_uur',
-- 'binnenland' or 'geen' (no screening: the person did not enter irregularly).
local SCREENING = { grens = 'screening_grens_dagen', grens_na_72_uur = 'screening_grens_72_uur_dagen',
                    binnenland = 'screening_binnenland_dagen' }

function M.start_screening(case, event, params)
  case.screening_checks = {}
  set_deadline('screeningstermijn', params[SCREENING[case.screening] or 'screening_binnenland_dagen'] .. ' days')
end

-- The four checks of the screening (SR art. 12, 17): health, identity (biometrics and
-- Eurodac), security, vulnerability.  Each event records its check; the identity check
-- may carry a Eurodac hit, the vulnerability check {kwetsbaar, amv}.
local CHECKS = { gezondheidscheck_afgerond = 'gezondheid', identiteit_vastgesteld = 'identiteit',
                 veiligheidscheck_afgerond = 'veiligheid', kwetsbaarheid_beoordeeld = 'kwetsbaarheid' }

function M.registreer_screeningscheck(case, event, params)
  local checks = case.screening_checks or {}
  checks[CHECKS[event.name]] = today
  case.screening_checks = checks
  local d = event.data or {}
  if event.name == 'identiteit_vastgesteld' and d.eurodac_treffer then M.registreer_eurodac_treffer(case, event, params) end
  if event.name == 'kwetsbaarheid_beoordeeld' then
    if d.kwetsbaar ~= nil then case.kwetsbaar = d.kwetsbaar end
    if d.amv ~= nil then case.amv = d.amv end
  end
end

-- Guard: the screening form can be handed over: all four checks are done.
function M.screening_compleet(case, event, params)
  local c = case.screening_checks or {}
  return c.gezondheid ~= nil and c.identiteit ~= nil and c.veiligheid ~= nil and c.kwetsbaarheid ~= nil
end

-- The screening ends (form handed over, or its time passed: SR art. 8): the hand-over to
-- the asylum procedure.
function M.overdracht_screening(case, event, params)
  if event.name ~= 'screening_afgerond' then case.screening_onvolledig = true end
  emit('ind.screening_overgedragen', { datum = today, onvolledig = case.screening_onvolledig })
end

-- Registration (APR 27): the extension to 15 days with a disproportionate number of
-- applications (unverified), 4 weeks in a crisis (CR 10(1)).
function M.registratietermijn_verlenging_toegestaan(case, event, params)
  local g = event.data and event.data.grond
  return g == 'onevenredig_aantal' or g == 'crisis'
end

function M.verleng_registratietermijn(case, event, params)
  if event.data.grond == 'crisis' then
    set_deadline('registratie', params.registratie_crisis_weken .. ' weeks')
  else
    set_deadline('registratie', params.registratie_druk_dagen .. ' days')
  end
end

-- The grounds of the asylum border procedure (APR 44(1), 45): inadmissibility (38) or an
-- accelerated ground of 42(1)(a)-(g), (j) or 42(3)(b).  The letters are unverified; the
-- names say what each ground is.
local GRENSGRONDEN = { niet_ontvankelijk = true, irrelevant = true, ongeloofwaardig = true,
                       misleiding = true, veilig_land_van_herkomst = true, vingerafdrukken = true,
                       veiligheid = true, laat_verzoek = true, erkenningspercentage = true }

-- Guard: the border procedure may be applied (APR 43(1)): screened at the external border
-- (applied at a border crossing point, after apprehension or disembarkation), on a ground
-- of art. 44(1); an unaccompanied minor only on the security ground (42(3)(b), 53).
function M.grensprocedure_mogelijk(case, event, params)
  local d = event.data or {}
  if case.screening ~= 'grens' and case.screening ~= 'grens_na_72_uur' then return false end
  if not GRENSGRONDEN[d.grond] then return false end
  if case.amv and d.grond ~= 'veiligheid' then return false end
  return true
end

-- Action of geregistreerd and geregistreerd_grensprocedure: registration (APR 27); the
-- latter applies the border procedure from now (its 12 weeks run from the registration,
-- APR 51(2)).
function M.registreer_registratie(case, event, params)
  local d = event.data or {}
  case.registratie_datum = today
  if d.eurodac_treffer then M.registreer_eurodac_treffer(case, event, params) end
  if event.name == 'geregistreerd_grensprocedure' then
    case.grensprocedure = true
    case.grensprocedure_grond = d.grond
    if d.hervestigd then case.hervestigd = true end
  end
end

-- Entry of indienen: lodge within 21 days of the registration (APR 28(1)), 5 in the
-- border procedure (APR 51(1), unverified).
function M.start_indienen(case, event, params)
  if case.grensprocedure then set_deadline('indientermijn', params.indienen_grens_dagen .. ' days') end
end

function M.registreer_indiening(case, event, params)
  case.indieningsdatum = today
  case.termijn_vanaf = today
end

-- The day `maanden` months after a "YYYY-MM-DD" date, as a day number (a month without
-- that day ends on its last day, as the calendar counts months).
local function plus_maanden(datum, maanden)
  local y, m, d = datum:match('^(%d+)-(%d+)-(%d+)$')
  y, m, d = tonumber(y), tonumber(m) + maanden, tonumber(d)
  y = y + (m - 1) // 12
  m = (m - 1) % 12 + 1
  local ny, nm = y, m + 1
  if nm == 13 then ny, nm = y + 1, 1 end
  local lengte = dagnummer(string.format('%04d-%02d-01', ny, nm)) - dagnummer(string.format('%04d-%02d-01', y, m))
  if d > lengte then d = lengte end
  return dagnummer(string.format('%04d-%02d-%02d', y, m, d))
end

-- The examination limits of the APR, by procedure, counted from case.termijn_vanaf (the
-- lodging; the day NL became responsible, or a new decision after an annulment):
-- regular 6 months (APR 35, via the Irish mirror), accelerated 3 months (35(3)),
-- admissibility 2 months (35(1)), 10 working days for a late application to frustrate
-- removal (38(1)(e)).  Set on entry of each procedure state; the deadline is beoordeling's.
local LIMIET = { regulier = 'beslistermijn_maanden', versneld = 'versneld_maanden',
                 ontvankelijkheid = 'ontvankelijkheid_maanden' }

function M.zet_beslistermijn(case, event, params)
  case.beslistermijn_verlengd = false
  if case.procedure == 'ontvankelijkheid' and case.ontvankelijkheidsgrond == 'laat_verzoek' then
    set_deadline('beslistermijn', params.ontvankelijkheid_laat_werkdagen .. ' working days')
    return
  end
  -- set_deadline counts from the deadline's start, the entry of beoordeling.
  local eind = plus_maanden(case.termijn_vanaf or today, params[LIMIET[case.procedure]])
  local n = eind - dagnummer(case.beoordeling_sinds or today)
  if n < 0 then n = 0 end
  set_deadline('beslistermijn', n .. ' days')
end

-- Extension (APR 35(2): admissibility by at most 2 months; regular by at most 6 months on
-- the grounds of APR 35 via the Irish mirror); once.
function M.beslistermijn_verlenging_toegestaan(case, event, params)
  return case.beslistermijn_verlengd ~= true
     and (case.procedure == 'regulier' or case.procedure == 'ontvankelijkheid')
end

function M.verleng_beslistermijn(case, event, params)
  case.beslistermijn_verlengd = true
  if case.procedure == 'ontvankelijkheid' then
    extend_deadline('beslistermijn', params.ontvankelijkheid_verlenging)
  else
    extend_deadline('beslistermijn', params.beslistermijn_verlenging)
  end
end

-- The accelerated grounds of APR 42(1) (letters partly unverified) and the grounds of
-- inadmissibility of APR 38 (38(1)(a)-(e), 38(2); letter order unverified).
local VERSNELD = { irrelevant = true, ongeloofwaardig = true, misleiding = true,
                   veilig_land_van_herkomst = true, vingerafdrukken = true, volgend_verzoek = true,
                   veiligheid = true, laat_verzoek = true, vernietigde_documenten = true,
                   erkenningspercentage = true }
local NIET_ONTVANKELIJK = { eerste_land_van_asiel = true, veilig_derde_land = true,
                            bescherming_andere_lidstaat = true, internationaal_tribunaal = true,
                            laat_verzoek = true, volgend_verzoek = true }

function M.versnellingsgrond_bekend(case, event, params)
  return event.data ~= nil and VERSNELD[event.data.grond] == true
end

function M.ontvankelijkheidsgrond_bekend(case, event, params)
  return event.data ~= nil and NIET_ONTVANKELIJK[event.data.grond] == true
end

-- Doubts (twijfel): only then the IND uses an extra interview, a medical examination or a
-- voornemen (ind.nl, the Pact launched); payload over = identiteit | medisch |
-- geloofwaardigheid.
function M.registreer_twijfel(case, event, params)
  local lijst = case.twijfel or {}
  lijst[#lijst + 1] = { over = event.data and event.data.over, datum = today }
  case.twijfel = lijst
end

function M.twijfel_over(case, event, params)
  for _, t in ipairs(case.twijfel or {}) do
    if t.over == 'medisch' then return true end
  end
  return false
end

-- Guard: the IND decides without a voornemen, as a rule from 12 June 2026; where it had
-- doubts it must first give a voornemen and the chance to respond (the zienswijze).
function M.zonder_voornemen(case, event, params)
  return case.twijfel == nil or #case.twijfel == 0
end

-- APR 41(1): the grounds of an implicit withdrawal (a) not lodged, (b) data or biometrics
-- withheld, (c) no address, (d) interview missed, (e) reporting duties broken or not
-- available, (f) not staying in the Member State required by AMMR 17.
local INTREKKING = { niet_ingediend = true, gegevens_onthouden = true, geen_adres = true,
                     gehoor_gemist = true, niet_beschikbaar = true, verkeerde_lidstaat = true }

function M.impliciete_intrekking_grond(case, event, params)
  local g = event.data and event.data.grond
  if g == 'niet_ingediend' then return case.niet_ingediend == true end
  if g == 'niet_beschikbaar' then return case.afwezig == true or case.mob == true end
  return INTREKKING[g] == true
end

-- Border procedure (APR 43-54): the border region's 12 weeks from the registration
-- (16 after relocation under AMMR 67(11), APR 51(2)).
function M.start_grensprocedure(case, event, params)
  if case.hervestigd then set_deadline('grensprocedure_maximum', params.grensprocedure_hervestiging_weken .. ' weeks') end
  emit('kmar.grensprocedure', { datum = today })
end

-- Guard: the applicant no longer has a right to remain (APR 68): a rejection no remedy
-- holds back any more (the request window passed, no request or it was refused, or the
-- appeal was ruled on).
function M.verblijfsrecht_verloren(case, event, params)
  if case.rechtsmiddel == nil then return false end
  return M.uitzetting_toegestaan(case, event, params)
end

-- Guard at the end of the 12 weeks (APR 43(3)): no entry when the applicant has no right to
-- remain under APR 10(4)(a) or (c) (case.verblijfsrecht_uitgesloten) or lost it.
function M.toegang_geweigerd(case, event, params)
  return case.verblijfsrecht_uitgesloten ~= nil or M.verblijfsrecht_verloren(case, event, params)
end

-- The border procedure ends with entry authorised (APR 43(2), 53): the procedure goes on in
-- the territory.
function M.verleen_toegang(case, event, params)
  case.toegang_verleend = true
  emit('kmar.toegang_verleend', { datum = today, grond = event.name })
  emit('ind.toegang_verleend', { datum = today })
end

-- Action of the overdrachtsbesluit (version 2): the transfer decision (AMMR art. 42; the
-- Dutch beschikking not to examine, Vw 30); its appeal does not suspend the transfer by
-- itself (AMMR art. 43(3)).
function M.registreer_overdrachtsbesluit(case, event, params)
  case.beschikking = 'niet_in_behandeling'
  case.uitspraak = nil
  case.vovo = nil
  case.artikel = 'AMMR 42 (Vw 30)'
  case.beschikking_datum = today
  case.schorsende_werking = false
  local melding = { beschikking = 'overdrachtsbesluit', datum = today }
  if case.interventieteam then emit('dtv.beschikking_direct', melding) else emit('dtv.beschikking', melding) end
end

-- Guard: the rejection fits the procedure the case is in (version 2): ongegrond in the
-- regular procedure, kennelijk ongegrond or ongegrond in the accelerated one, niet-
-- ontvankelijk in the admissibility examination.
local PAST = {
  regulier = { afwijzing_ongegrond = true },
  versneld = { afwijzing_kennelijk_ongegrond = true, afwijzing_ongegrond = true },
  ontvankelijkheid = { afwijzing_niet_ontvankelijk = true },
}

function M.afwijzing_past_bij_procedure(case, event, params)
  local p = PAST[case.procedure]
  return p ~= nil and p[event.name] == true
end

return M
