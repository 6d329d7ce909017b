/* The caseload report (case_store_report_v2): what a definition's `report:`
 * section declares, open cases with their next term and who must act, terms by
 * urgency with court terms marked, per location, trends, filters and sorting,
 * and cases and terms computed as they were at the reference date (the journal
 * replayed), on a workflow that is not the asylum chain. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "libcase/libcase.h"
#include "libcase/store.h"

/* 2026-03-02T09:00:00Z, a Monday (10:00 in Amsterdam). */
#define T0 INT64_C(1772442000)
#define DAY INT64_C(86400)

/* An objection (bezwaar) procedure: nothing of the asylum chain. */
static const char *BEZWAAR =
    "workflow: bezwaar\n"
    "version: 1\n"
    "roles: [BALIE, JURIST, RECHTER]\n"
    "params:\n"
    "  loket: {value: onbekend}\n"
    "data:\n"
    "  soort: string\n"
    "  spoed: {type: boolean, default: false}\n"
    "  behandelaar: string\n"
    "initial: ontvangen\n"
    "states:\n"
    "  ontvangen:\n"
    "    deadlines:\n"
    "      ontvangstbevestiging: {after: 3 days, clock: plain}\n"
    "    on:\n"
    "      bevestigd: {target: in_behandeling, roles: [BALIE], actions: [case.behandelaar = event.data.behandelaar]}\n"
    "  in_behandeling:\n"
    "    deadlines:\n"
    "      beslistermijn: {after: 6 weeks, clock: plain, source: Awb art. 7:10}\n"
    "    on:\n"
    "      melding: {roles: [BALIE, JURIST]}\n"
    "      versnellen: {roles: [JURIST], actions: [case.spoed = true]}\n"
    "      beslist: {target: afgehandeld, roles: [JURIST]}\n"
    "      beroep: {target: beroep, roles: [JURIST]}\n"
    "  beroep:\n"
    "    deadlines:\n"
    "      uitspraak: {after: 4 weeks, clock: plain}\n"
    "    on:\n"
    "      uitspraak_gegrond: {target: afgehandeld, roles: [RECHTER]}\n"
    "  afgehandeld: {final: true}\n"
    "report:\n"
    "  location_label: loket\n"
    "  track: {field: soort, label: soort}\n"
    "  lane: {field: spoed, label: spoed}\n"
    "  procesregisseur: {field: behandelaar}\n"
    "  courts: [RECHTER]\n"
    "  signals: [melding]\n"
    "  horizon_days: 7\n"
    "  counts:\n"
    "    beroepen: {label: in beroep, event: beroep, outcomes: {uitspraak_gegrond: gegrond}}\n"
    "    klaar: {label: afgehandeld, states: [afgehandeld]}\n"
    "    spoed: {label: met spoed, field: spoed}\n"
    "  state_labels: {in_behandeling: wordt behandeld}\n";

/* The same process without a report section. */
static const char *KAAL =
    "workflow: kaal\n"
    "version: 1\n"
    "roles: [BALIE]\n"
    "initial: open\n"
    "states:\n"
    "  open:\n"
    "    deadlines:\n"
    "      termijn: {after: 2 weeks, clock: plain}\n"
    "    on: {klaar: {target: dicht, roles: [BALIE]}}\n"
    "  dicht: {final: true}\n";

typedef struct fx {
  char path[256];
  case_engine *e;
  case_store *s;
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  snprintf(f->path, sizeof f->path, "/tmp/libcase-test-report-%ld.db", (long)getpid());
  unlink(f->path);
  assert_int_equal(case_engine_open(&f->e), CASE_OK);
  assert_int_equal(case_store_open(f->e, f->path, CASE_STORE_CREATE, &f->s), CASE_OK);
  /* Two locations with empty profiles. */
  static const char *const locs[] = {"ter_apel", "budel"};
  for (int i = 0; i < 2; i++) {
    char lp[300];
    snprintf(lp, sizeof lp, "%s.%s.lua", f->path, locs[i]);
    FILE *pf = fopen(lp, "w");
    assert_non_null(pf);
    /* Ter Apel names its counter; Budel does not (its label is then its id). */
    fputs(i == 0 ? "return {params = {loket = 'Loket Ter Apel'}, functions = {}}\n"
                 : "return {params = {}, functions = {}}\n", pf);
    fclose(pf);
    assert_int_equal(case_engine_load_profile(f->e, locs[i], lp), CASE_OK);
    assert_int_equal(case_store_add_profile(f->s, locs[i]), CASE_OK);
    unlink(lp);
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  case_store_close(f->s);
  case_engine_close(f->e);
  char p[300];
  unlink(f->path);
  snprintf(p, sizeof p, "%s-wal", f->path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", f->path);
  unlink(p);
  free(f);
  return 0;
}

static const case_def *load(fx *f, const char *yaml) {
  const case_def *d = NULL;
  int rc = case_def_load_string(f->e, yaml, strlen(yaml), "mem.yaml", &d);
  if (rc != CASE_OK) fail_msg("load: %s", case_errmsg(f->e));
  assert_int_equal(case_store_add_def(f->s, d), CASE_OK);
  return d;
}

static void create(fx *f, const case_def *d, const char *id, const char *loc, const char *data,
                   int64_t at) {
  int rc = case_store_create(f->s, d, id, loc, data, "balie-1", "BALIE", at, NULL);
  if (rc != CASE_OK) fail_msg("create %s: %s", id, case_errmsg(f->e));
}

static void fire(fx *f, const char *id, const char *event, const char *payload, const char *actor,
                 const char *role, int64_t at) {
  int rc = case_store_fire(f->s, id, event, payload, actor, role, at, -1, NULL, NULL);
  if (rc != CASE_OK) fail_msg("fire %s %s: %s", id, event, case_errmsg(f->e));
}

static json_t *report(fx *f, int64_t at, const char *opts) {
  char *text = NULL;
  int rc = case_store_report_v2(f->s, at, opts, &text);
  if (rc != CASE_OK) fail_msg("report: %s", case_errmsg(f->e));
  json_error_t err;
  json_t *r = json_loads(text, 0, &err);
  case_free(text);
  assert_non_null(r);
  assert_string_equal(json_string_value(json_object_get(r, "report")), "libcase.report.v2");
  return r;
}

static const char *str(json_t *o, const char *path) {
  /* "a.b.c" over objects; a number in the path indexes an array. */
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  json_t *v = o;
  for (char *p = strtok(buf, "."); p && v; p = strtok(NULL, "."))
    v = json_is_array(v) ? json_array_get(v, (size_t)atoi(p)) : json_object_get(v, p);
  return json_string_value(v);
}

static long long num(json_t *o, const char *path) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  json_t *v = o;
  for (char *p = strtok(buf, "."); p && v; p = strtok(NULL, "."))
    v = json_is_array(v) ? json_array_get(v, (size_t)atoi(p)) : json_object_get(v, p);
  if (!json_is_integer(v)) fail_msg("%s is not an integer", path);
  return (long long)json_integer_value(v);
}

static json_t *count_named(json_t *r, const char *name) {
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(r, "counts"), i, c)
    if (!strcmp(json_string_value(json_object_get(c, "name")), name)) return c;
  fail_msg("no count %s", name);
  return NULL;
}

/* A: Ter Apel, confirmed on day 1 (beslistermijn: last day 2026-04-14), a signal
 *    from the JURIST on day 3.
 * B: Budel, created day 2, never confirmed (ontvangstbevestiging: last day 03-07).
 * C: Ter Apel, confirmed day 1, appeal on day 5 (uitspraak: last day 04-04, the
 *    court's), ruled on day 40. */
static void caseload(fx *f) {
  const case_def *d = load(f, BEZWAAR);
  create(f, d, "A", "ter_apel", "{\"soort\":\"regulier\"}", T0);
  create(f, d, "C", "ter_apel", "{\"soort\":\"regulier\"}", T0);
  fire(f, "A", "bevestigd", "{\"behandelaar\":\"J. Jansen\"}", "balie-1", "BALIE", T0 + DAY);
  fire(f, "C", "bevestigd", "{\"behandelaar\":\"P. Pietersen\"}", "balie-1", "BALIE", T0 + DAY);
  create(f, d, "B", "budel", "{\"soort\":\"spoed\"}", T0 + 2 * DAY);
  fire(f, "A", "melding", "{\"toelichting\":\"overlast\"}", "jurist-7", "JURIST", T0 + 3 * DAY);
  fire(f, "C", "beroep", NULL, "jurist-7", "JURIST", T0 + 5 * DAY);
  fire(f, "C", "uitspraak_gegrond", NULL, "rechter-1", "RECHTER", T0 + 40 * DAY);
  int fired = 0;
  assert_int_equal(case_store_tick(f->s, T0 + 60 * DAY, &fired), CASE_OK);
  assert_true(fired >= 2); /* B's and A's terms ran out; the report still sees them */
}

static void test_open_cases_and_terms(void **state) {
  fx *f = *state;
  caseload(f);
  /* Day 10 (2026-03-12), computed after everything up to day 60 was stored. */
  json_t *r = report(f, T0 + 10 * DAY, NULL);
  assert_string_equal(str(r, "date"), "2026-03-12");
  assert_int_equal(num(r, "cases.total"), 3);
  assert_int_equal(num(r, "cases.open"), 3);
  assert_int_equal(num(r, "cases.closed"), 0);
  assert_string_equal(str(r, "track.label"), "soort");
  /* Urgency: B's overdue acknowledgment, then C's court term, then A's. */
  assert_string_equal(str(r, "open_cases.0.case"), "B");
  assert_string_equal(str(r, "open_cases.0.location"), "budel");
  assert_string_equal(str(r, "open_cases.0.next_term.name"), "ontvangstbevestiging");
  assert_string_equal(str(r, "open_cases.0.next_term.status"), "overdue");
  assert_string_equal(str(r, "open_cases.0.next_term.last_day"), "2026-03-07");
  assert_int_equal(num(r, "open_cases.0.next_term.days_overdue"), 5);
  assert_string_equal(str(r, "open_cases.0.must_act"), "BALIE");
  assert_int_equal(num(r, "open_cases.0.days_open"), 8);
  /* B was never confirmed: no behandelaar, so no procesregisseur. */
  assert_true(json_is_null(json_object_get(json_array_get(json_object_get(r, "open_cases"), 0),
                                          "procesregisseur")));
  assert_string_equal(str(r, "open_cases.1.case"), "C");
  assert_string_equal(str(r, "open_cases.1.next_term.name"), "uitspraak");
  assert_string_equal(str(r, "open_cases.1.next_term.status"), "running");
  assert_int_equal(num(r, "open_cases.1.next_term.days_left"), 23);
  assert_true(json_is_true(json_object_get(
      json_object_get(json_array_get(json_object_get(r, "open_cases"), 1), "next_term"), "court")));
  assert_string_equal(str(r, "open_cases.1.must_act"), "RECHTER");
  assert_string_equal(str(r, "open_cases.2.case"), "A");
  assert_string_equal(str(r, "open_cases.2.procesregisseur"), "J. Jansen");
  assert_string_equal(str(r, "open_cases.2.state"), "in_behandeling");
  assert_string_equal(str(r, "open_cases.2.state_label"), "wordt behandeld");
  assert_string_equal(str(r, "open_cases.2.next_term.last_day"), "2026-04-14");
  assert_int_equal(num(r, "open_cases.2.signals"), 1);
  assert_string_equal(str(r, "open_cases.2.track"), "regulier");
  assert_string_equal(str(r, "open_cases.2.lane"), "regular");
  /* An undeclared label is the id in words. */
  assert_string_equal(str(r, "state_labels.ontvangen"), "ontvangen");
  /* Terms within the horizon: only B's. */
  assert_int_equal(num(r, "terms.overdue"), 1);
  assert_int_equal(num(r, "terms.court_overdue"), 0);
  assert_int_equal(num(r, "terms.due_soon"), 0);
  assert_int_equal((long long)json_array_size(json_object_get(json_object_get(r, "terms"), "items")), 1);
  assert_string_equal(str(r, "terms.items.0.case"), "B");
  /* Per location and the declared counts. */
  assert_int_equal(num(r, "by_location.ter_apel.open"), 2);
  assert_string_equal(str(r, "by_location.ter_apel.label"), "Loket Ter Apel");
  assert_string_equal(str(r, "by_location.budel.label"), "budel");
  assert_string_equal(str(r, "open_cases.2.location_label"), "Loket Ter Apel");
  assert_int_equal(num(r, "by_location.budel.overdue"), 1);
  assert_int_equal(num(r, "by_location.ter_apel.signals"), 1);
  assert_int_equal(num(count_named(r, "beroepen"), "cases"), 1);
  assert_int_equal(num(count_named(r, "beroepen"), "open"), 1);
  assert_int_equal(num(count_named(r, "klaar"), "cases"), 0);
  assert_int_equal(num(r, "trends.signals_per_source.JURIST.total"), 1);
  assert_string_equal(str(r, "trends.recent_signals.0.actor"), "jurist-7");
  assert_string_equal(str(r, "trends.recent_signals.0.payload.toelichting"), "overlast");
  json_decref(r);

  /* Day 38 (2026-04-09): C's court term overdue 5 days, A's due within 7 days. */
  r = report(f, T0 + 38 * DAY, NULL);
  assert_int_equal(num(r, "terms.overdue"), 2);
  assert_int_equal(num(r, "terms.court_overdue"), 1);
  assert_int_equal(num(r, "terms.due_soon"), 1);
  assert_string_equal(str(r, "terms.items.0.case"), "B"); /* the most overdue first */
  assert_int_equal(num(r, "terms.items.0.days_overdue"), 33);
  assert_string_equal(str(r, "terms.items.1.case"), "C");
  assert_true(json_is_true(json_object_get(
      json_array_get(json_object_get(json_object_get(r, "terms"), "items"), 1), "court")));
  assert_int_equal(num(r, "terms.items.1.days_overdue"), 5);
  assert_string_equal(str(r, "terms.items.2.case"), "A");
  assert_string_equal(str(r, "terms.items.2.status"), "due_soon");
  assert_int_equal(num(r, "terms.items.2.days_left"), 5);
  assert_int_equal(num(r, "terms.by_agency.RECHTER.overdue"), 1);
  json_decref(r);

  /* Day 45: C is closed (ruled on day 40), A's term overdue 2 days. */
  r = report(f, T0 + 45 * DAY, NULL);
  assert_int_equal(num(r, "cases.closed"), 1);
  assert_int_equal(num(r, "closed.by_state.afgehandeld"), 1);
  assert_null(json_object_get(json_object_get(r, "open_by_state"), "afgehandeld"));
  assert_int_equal(num(count_named(r, "beroepen"), "outcomes.gegrond"), 1);
  assert_int_equal(num(count_named(r, "klaar"), "cases"), 1);
  assert_int_equal(num(r, "terms.overdue"), 2);
  assert_int_equal(num(r, "terms.court_overdue"), 0);
  assert_string_equal(str(r, "terms.items.1.case"), "A");
  assert_int_equal(num(r, "terms.items.1.days_overdue"), 2);
  assert_string_equal(str(r, "trends.lead_time_per_month.0.month"), "2026-04");
  assert_int_equal(num(r, "trends.lead_time_per_month.0.cases"), 1);
  json_decref(r);

  /* Before B existed: two cases. */
  r = report(f, T0 + DAY, NULL);
  assert_int_equal(num(r, "cases.total"), 2);
  json_decref(r);
}

static void test_filters_and_sort(void **state) {
  fx *f = *state;
  caseload(f);
  json_t *r = report(f, T0 + 10 * DAY, "{\"filter\":{\"location\":\"budel\"}}");
  assert_int_equal((long long)json_array_size(json_object_get(r, "open_cases")), 1);
  assert_string_equal(str(r, "open_cases.0.case"), "B");
  assert_int_equal(num(r, "cases.total"), 3); /* the summary counts everything */
  assert_int_equal(num(r, "choices.location.ter_apel"), 2);
  json_decref(r);
  r = report(f, T0 + 10 * DAY, "{\"filter\":{\"agency\":\"RECHTER\"}}");
  assert_int_equal((long long)json_array_size(json_object_get(r, "open_cases")), 1);
  assert_string_equal(str(r, "open_cases.0.case"), "C");
  json_decref(r);
  r = report(f, T0 + 10 * DAY, "{\"filter\":{\"procesregisseur\":\"J. Jansen\"}}");
  assert_int_equal((long long)json_array_size(json_object_get(r, "open_cases")), 1);
  assert_string_equal(str(r, "open_cases.0.case"), "A");
  json_decref(r);
  r = report(f, T0 + 10 * DAY, "{\"filter\":{\"track\":\"spoed\"}}");
  assert_string_equal(str(r, "open_cases.0.case"), "B");
  json_decref(r);
  r = report(f, T0 + 10 * DAY, "{\"sort\":\"case\"}");
  assert_string_equal(str(r, "open_cases.0.case"), "A");
  assert_string_equal(str(r, "open_cases.2.case"), "C");
  json_decref(r);
  r = report(f, T0 + 10 * DAY, "{\"sort\":\"days\"}");
  assert_string_equal(str(r, "open_cases.2.case"), "B"); /* the youngest last */
  json_decref(r);
  r = report(f, T0 + 38 * DAY, "{\"horizon_days\":0}");
  assert_int_equal(num(r, "terms.due_soon"), 0);
  json_decref(r);

  char *text = NULL;
  assert_int_equal(case_store_report_v2(f->s, T0, "{\"sort\":\"nope\"}", &text), CASE_INVALID);
  assert_null(text);
  assert_non_null(strstr(case_errmsg(f->e), "'sort'"));
  assert_int_equal(case_store_report_v2(f->s, T0, "{\"filter\":{\"kleur\":\"x\"}}", &text),
                   CASE_INVALID);
  assert_non_null(strstr(case_errmsg(f->e), "unknown filter 'kleur'"));
  assert_int_equal(case_store_report_v2(f->s, T0, "[1]", &text), CASE_INVALID);
  assert_int_equal(case_store_report_v2(f->s, T0, "{\"x\":1}", &text), CASE_INVALID);
  assert_int_equal(case_store_report_v2(f->s, T0, NULL, NULL), CASE_MISUSE);
  assert_int_equal(case_store_report_v2(NULL, T0, NULL, &text), CASE_MISUSE);
}

/* The lane counts from the first row the field is true; overdue terms per week. */
static void test_trends(void **state) {
  fx *f = *state;
  caseload(f);
  fire(f, "A", "versnellen", NULL, "jurist-7", "JURIST", T0 + 61 * DAY);
  json_t *r = report(f, T0 + 62 * DAY, NULL);
  assert_string_equal(str(r, "open_cases.1.case"), "A");
  assert_string_equal(str(r, "open_cases.1.lane"), "accelerated");
  assert_int_equal(num(count_named(r, "spoed"), "cases"), 1);
  /* Weeks from 2026-W10 (the first case) to the reference date's. */
  json_t *ow = json_object_get(json_object_get(r, "trends"), "overdue_per_week");
  assert_string_equal(str(ow, "0.week"), "2026-W10");
  assert_int_equal(num(ow, "0.overdue"), 1); /* B's, from Sunday 03-08 */
  assert_string_equal(str(ow, "0.date"), "2026-03-08");
  assert_int_equal(num(ow, "3.overdue"), 1);
  /* 2026-W14 ends Sunday 04-05: B's and C's (the court's, from 04-05) are overdue. */
  assert_string_equal(str(ow, "4.week"), "2026-W14");
  assert_int_equal(num(ow, "4.overdue"), 2);
  assert_int_equal(num(ow, "4.court"), 1);
  /* W15 ends 04-12: C was ruled on day 40 (04-11); A's term runs to 04-14. */
  assert_int_equal(num(ow, "5.overdue"), 1);
  assert_int_equal(num(ow, "5.court"), 0);
  /* W16 ends 04-19: B's and A's. */
  assert_int_equal(num(ow, "6.overdue"), 2);
  assert_int_equal(num(ow, "6.court"), 0);
  json_t *nw = json_object_get(json_object_get(r, "trends"), "new_per_week");
  assert_int_equal(num(nw, "0.cases"), 3);
  assert_int_equal(num(nw, "1.cases"), 0);
  assert_int_equal((long long)json_array_size(nw), (long long)json_array_size(ow));
  json_decref(r);
}

/* A workflow without a report section: nothing is made up for it. */
static void test_undeclared(void **state) {
  fx *f = *state;
  const case_def *d = load(f, KAAL);
  create(f, d, "K1", NULL, NULL, T0);
  create(f, d, "K2", "ter_apel", NULL, T0);
  fire(f, "K2", "klaar", NULL, "balie-1", "BALIE", T0 + DAY);
  json_t *r = report(f, T0 + 20 * DAY, NULL);
  assert_true(json_is_null(json_object_get(r, "track")));
  assert_int_equal((long long)json_object_size(json_object_get(r, "by_track")), 0);
  assert_int_equal((long long)json_array_size(json_object_get(r, "counts")), 0);
  assert_string_equal(str(r, "open_cases.0.case"), "K1");
  assert_string_equal(str(r, "open_cases.0.location"), "(none)");
  assert_string_equal(str(r, "open_cases.0.state"), "open");
  assert_string_equal(str(r, "open_cases.0.must_act"), "BALIE");
  assert_true(json_is_null(json_object_get(json_array_get(json_object_get(r, "open_cases"), 0),
                                          "track")));
  /* Last day 03-16 (two weeks from 03-02), the report at 03-22. */
  assert_string_equal(str(r, "open_cases.0.next_term.last_day"), "2026-03-16");
  assert_int_equal(num(r, "open_cases.0.next_term.days_overdue"), 6);
  assert_int_equal(num(r, "terms.overdue"), 1);
  assert_int_equal(num(r, "terms.horizon_days"), 7);
  assert_string_equal(str(r, "lead_time_days.0.track"), "all");
  assert_string_equal(str(r, "lead_time_days.0.lane"), "all");
  json_decref(r);
  /* Version 1 of the report keeps its contract. */
  char *text = NULL;
  assert_int_equal(case_store_report(f->s, f->e, T0 + 20 * DAY, NULL, &text), CASE_OK);
  assert_non_null(strstr(text, "\"libcase.report.v1\""));
  case_free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_open_cases_and_terms, setup, teardown),
      cmocka_unit_test_setup_teardown(test_filters_and_sort, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trends, setup, teardown),
      cmocka_unit_test_setup_teardown(test_undeclared, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
