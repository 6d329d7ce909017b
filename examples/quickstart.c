/*
 * quickstart — libcase embedded in a host program, end to end.
 *
 * Loads examples/quickstart/aanmelding.yaml, creates one asylum case, lets each
 * agency ask what it may do, fires events as AVIM, COA and the IND (one of them
 * refused, with the reasons), lets the clock run a legal term out with tick, and
 * prints the case's snapshot.  Run it from the repository root.
 */
#include <stdio.h>
#include <stdlib.h>

#include "libcase/libcase.h"

/* 2026-03-02 09:00 UTC: a Monday. */
#define MONDAY ((int64_t)1772442000)
#define DAY ((int64_t)86400)

static int check(case_engine *e, int rc, const char *what) {
  if (rc != CASE_OK) {
    fprintf(stderr, "quickstart: %s: %s (%s)\n", what, case_errmsg(e), case_errstr(rc));
    exit(1);
  }
  return rc;
}

static void show(const char *label, char *json) {
  printf("  %-14s %s\n", label, json ? json : "?");
  case_free(json);
}

static void on_notify(void *ud, const case_instance *c, const char *name, const char *payload) {
  (void)ud;
  printf("  notification  %s: %s %s\n", case_instance_id(c), name, payload);
}

static void status(case_instance *c, int64_t now) {
  char *s = NULL;
  case_instance_configuration(c, &s);
  show("configuration", s);
  case_instance_data(c, &s);
  show("data", s);
  case_instance_timers(c, &s);
  show("terms", s);
  const char *roles[] = {"IND", "AVIM", "COA"};
  for (int i = 0; i < 3; i++) {
    char label[32];
    snprintf(label, sizeof label, "%s may", roles[i]);
    case_instance_available(c, roles[i], now, &s);
    show(label, s);
  }
}

int main(void) {
  case_engine *e = NULL;
  if (case_engine_open(&e) != CASE_OK) return 1;
  case_engine_set_notify(e, on_notify, NULL);
  printf("libcase %s\n", case_libversion());

  const case_def *d = NULL;
  check(e, case_def_load_file(e, "examples/quickstart/aanmelding.yaml", &d), "load");
  printf("loaded %s version %d (sha256 %.12s...)\n", case_def_id(d), case_def_version(d),
         case_def_hash(d));

  case_instance *c = NULL;
  check(e, case_instance_create(e, d, "Z-2026-0001", NULL, NULL, MONDAY, &c), "create");
  printf("\n[Mon 2 Mar 2026] aanmelding at the IND\n");
  status(c, MONDAY);

  printf("\n[Tue 3 Mar] AVIM registers the applicant\n");
  check(e, case_instance_fire(c, "geregistreerd", NULL, "avim-17", "AVIM", MONDAY + DAY),
        "geregistreerd");
  status(c, MONDAY + DAY);

  printf("\n[Tue 3 Mar] the IND tries to withhold the RVT without an incident report\n");
  int rc = case_instance_fire(c, "rvt_onthouden", NULL, "ind-4", "IND", MONDAY + DAY);
  printf("  refused       %s: %s\n", case_errstr(rc), case_errmsg(e));
  char *why = NULL;
  case_instance_explain(c, "rvt_onthouden", "COA", MONDAY + DAY, &why);
  show("COA asks why", why);

  printf("\n[Wed 4 Mar] COA files an incident report\n");
  check(e, case_instance_fire(c, "incident", "{\"rapport\":\"IR-2026-113\"}", "coa-9", "COA",
                              MONDAY + 2 * DAY),
        "incident");
  check(e, case_instance_fire(c, "rvt_onthouden", NULL, "ind-4", "IND", MONDAY + 2 * DAY),
        "rvt_onthouden");
  status(c, MONDAY + 2 * DAY);

  /* A second case: AVIM does not register within 3 working days. */
  case_instance *late = NULL;
  check(e, case_instance_create(e, d, "Z-2026-0002", NULL, NULL, MONDAY, &late), "create");
  printf("\n[Fri 6 Mar] the clock runs for Z-2026-0002, never registered: tick fires what is due\n");
  int fired = 0;
  check(e, case_instance_tick(late, MONDAY + 3 * DAY, &fired), "tick");
  printf("  Thu 5 Mar     %d timer(s) fired (the term's last day is still running)\n", fired);
  check(e, case_instance_tick(late, MONDAY + 4 * DAY, &fired), "tick");
  printf("  Fri 6 Mar     %d timer(s) fired\n", fired);
  char *terms = NULL;
  case_instance_timers(late, &terms);
  show("terms", terms);

  printf("\n[Fri 6 Mar] the IND decides\n");
  check(e, case_instance_fire(c, "beschikking", NULL, "ind-4", "IND", MONDAY + 4 * DAY),
        "beschikking");
  printf("  done          %d (revision %lld)\n", case_instance_done(c),
         (long long)case_instance_revision(c));
  char *snap = NULL;
  case_instance_snapshot(c, &snap);
  show("snapshot", snap);

  case_engine_close(e);
  return 0;
}
