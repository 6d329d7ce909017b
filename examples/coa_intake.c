/*
 * coa_intake — COA's incident intake, as an agency tool would embed libcase.
 *
 *   coa_intake [--seed] store.db incidents.txt
 *
 * Reads incident reports (one per line: date, case id, report id, kind; '#'
 * starts a comment) and files each as the event `incident_gemeld` by role COA on
 * the stored case, with the report id as idempotency key, so that running the
 * intake twice files nothing twice.  After each report it prints what the IND
 * may do next on that case, and whether the case waits for the interventieteam
 * decision.  A refused report
 * (unknown case, event not possible) is printed and the intake goes on.
 *
 * --seed first stores workflows/asielprocedure.yaml and three demo cases (once).
 * Run it from the repository root: the definition and location profiles are
 * named relative to it.  Exit status: 0 when every line was read (refusals
 * included), 1 on a store or file error, 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcase/libcase.h"
#include "libcase/store.h"

#define DAY ((int64_t)86400)

/* Seconds since the epoch of 09:00 UTC (10:00 in Amsterdam in winter) on y-m-d. */
static int64_t at_nine(int y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return (era * 146097 + doe - 719468) * DAY + 9 * 3600;
}

static int fail(case_engine *e, int rc, const char *what) {
  fprintf(stderr, "coa_intake: %s: %s (%s)\n", what, case_errmsg(e), case_errstr(rc));
  return 1;
}

/* Prints the "event" values of a JSON list as case_instance_available() gives it. */
static void print_events(const char *json) {
  const char *p = json;
  int n = 0;
  while ((p = strstr(p, "\"event\":\"")) != NULL) {
    p += 9;
    const char *q = strchr(p, '"');
    if (!q) break;
    printf("%s%.*s", n++ ? ", " : "", (int)(q - p), p);
    p = q;
  }
  printf("%s\n", n ? "" : "nothing");
}

/* What the IND may do now on case `id`; and the interventieteam decision. */
static void ind_next(case_store *s, case_engine *e, const char *id, int64_t at) {
  case_instance *c = NULL;
  char *json = NULL;
  if (case_store_get(s, id, &c) != CASE_OK) return;
  if (case_instance_available(c, "IND", at, &json) == CASE_OK) {
    printf("    IND may now:  ");
    print_events(json);
  }
  case_free(json);
  if (case_instance_in(c, "geschiktheid_beoordelen"))
    printf("    interventieteam: the IND decides: geschikt_bevonden (naming a procesregisseur) "
           "or ongeschikt_bevonden\n");
  (void)e;
}

typedef struct seed_case {
  const char *id, *location, *data;
  int day; /* March 2026 */
  const char *events[3][2]; /* event, role */
} seed_case;

static int seed(case_store *s, case_engine *e) {
  static const seed_case cases[] = {
      {"Z-2026-0101", "ter_apel", "{\"verblijfplaats\":\"COL Ter Apel\"}", 2,
       {{"ir_afgerond", "AVIM"}, {NULL, NULL}}},
      {"Z-2026-0102", "budel", "{\"verblijfplaats\":\"POL Budel\"}", 4, {{NULL, NULL}}},
      {"Z-2026-0103", "ter_apel", "{\"verblijfplaats\":\"COL Ter Apel\",\"kansarm\":true}", 2,
       {{"ir_afgerond", "AVIM"}, {"gemeld_bij_meldpunt", "COA"}, {NULL, NULL}}},
  };
  const case_def *d = NULL;
  int rc = case_def_load_file(e, "workflows/asielprocedure.yaml", &d);
  if (rc != CASE_OK) return fail(e, rc, "load");
  if ((rc = case_store_add_def(s, d)) != CASE_OK) return fail(e, rc, "add_def");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const seed_case *sc = &cases[i];
    case_instance *c = NULL;
    if (case_store_get(s, sc->id, &c) == CASE_OK) continue; /* seeded before */
    int64_t at = at_nine(2026, 3, sc->day);
    rc = case_store_create(s, d, sc->id, sc->location, sc->data, "ind-aanmelding", "IND", at,
                           NULL);
    if (rc != CASE_OK) return fail(e, rc, sc->id);
    for (int j = 0; j < 3 && sc->events[j][0]; j++) {
      rc = case_store_fire(s, sc->id, sc->events[j][0], NULL, "seed", sc->events[j][1], at, -1,
                           NULL, NULL);
      if (rc != CASE_OK) return fail(e, rc, sc->events[j][0]);
    }
    printf("seeded %s at %s\n", sc->id, sc->location);
  }
  return 0;
}

int main(int argc, char **argv) {
  int with_seed = argc > 1 && strcmp(argv[1], "--seed") == 0;
  if (argc != 3 + with_seed) {
    fprintf(stderr, "usage: coa_intake [--seed] store.db incidents.txt\n");
    return 2;
  }
  const char *db = argv[1 + with_seed], *input = argv[2 + with_seed];

  case_engine *e = NULL;
  case_store *s = NULL;
  if (case_engine_open(&e) != CASE_OK) return 1;
  int status = 1, rc;
  /* Stored definitions are loaded back from their text; their `lua: ../lua/asiel.lua`
   * then resolves against the Lua root, so the root is the definition's directory. */
  if ((rc = case_engine_set_lua_root(e, "workflows")) != CASE_OK) {
    fail(e, rc, "lua root");
    goto out;
  }
  /* Profiles are not stored: each program registers the locations it serves. */
  if ((rc = case_engine_load_profile(e, "ter_apel", "lua/locations/ter_apel.lua")) != CASE_OK ||
      (rc = case_engine_load_profile(e, "budel", "lua/locations/budel.lua")) != CASE_OK) {
    fail(e, rc, "profile");
    goto out;
  }
  if ((rc = case_store_open(e, db, CASE_STORE_CREATE, &s)) != CASE_OK) {
    fail(e, rc, db);
    goto out;
  }
  if (with_seed && seed(s, e) != 0) goto out;

  FILE *f = fopen(input, "r");
  if (!f) {
    perror(input);
    goto out;
  }
  char line[512];
  int lineno = 0, filed = 0, refused = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char id[64], report[64], kind[64];
    int y, m, d;
    if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line)) continue;
    if (sscanf(line, "%d-%d-%d %63s %63s %63s", &y, &m, &d, id, report, kind) != 6) {
      fprintf(stderr, "%s:%d: expected: date case report kind\n", input, lineno);
      refused++;
      continue;
    }
    int64_t at = at_nine(y, m, d);
    char payload[256], key[96];
    snprintf(payload, sizeof payload, "{\"rapport\":\"%s\",\"soort\":\"%s\"}", report, kind);
    snprintf(key, sizeof key, "coa-intake:%s", report);
    int64_t seq = 0;
    rc = case_store_fire(s, id, "incident_gemeld", payload, "coa-intake", "COA", at, -1, key,
                         &seq);
    printf("%04d-%02d-%02d %s %s: ", y, m, d, id, report);
    if (rc == CASE_OK) {
      printf("filed (journal seq %lld)\n", (long long)seq);
      filed++;
      ind_next(s, e, id, at);
    } else if (rc == CASE_BUSY || rc == CASE_IO || rc == CASE_CORRUPT || rc == CASE_NOMEM) {
      printf("\n");
      fail(e, rc, "fire");
      fclose(f);
      goto out;
    } else {
      printf("refused: %s: %s\n", case_errstr(rc), case_errmsg(e));
      refused++;
    }
  }
  fclose(f);
  printf("%d filed, %d refused\n", filed, refused);
  status = 0;
out:
  case_store_close(s);
  case_engine_close(e);
  return status;
}
