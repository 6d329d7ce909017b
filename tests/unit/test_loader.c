/*
 * Tests of the definition loader (libcase/loader.c) through the public API.
 *
 * Data-driven: every file under tests/data/defs/invalid/ is one error class.
 * Its first line says what the load must report:
 *   # expect: 7:9: unknown target 'rust'          (CASE_INVALID)
 *   # expect LIMIT: 6:3: nesting too deep         (CASE_LIMIT; also SCRIPT, IO)
 * The message must start with "<path>:7:9: " and contain the rest of the line;
 * case_errpos() must give the same file, line and column.  Each file runs as its
 * own test, named after the file.  Valid definitions under tests/data/defs/valid/
 * are loaded and their model is checked fact by fact.
 *
 * Every file under tests/data/defs/warn/ loads, with exactly the warnings its
 * first lines list, in order:
 *   # warn: 8:17: delay '0 seconds' is zero
 * each must start with "<path>:8:17: " and contain the rest.  A line
 *   # profile: NAME=FILE
 * (FILE next to the definition) loads that location profile first.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "internal.h"

#define DEFS CASE_TEST_DATA "/defs"
#define VALID DEFS "/valid"
#define INVALID DEFS "/invalid"
#define WARN DEFS "/warn"

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      char *b = realloc(buf, cap);
      if (!b) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = b;
    }
    size_t k = fread(buf + n, 1, 4096, f);
    n += k;
    if (k == 0) break;
  }
  fclose(f);
  buf[n] = '\0';
  if (len) *len = n;
  return buf;
}

static void sha256_of_file(const char *path, char out[65]) {
  size_t len;
  char *text = read_all(path, &len);
  assert_non_null(text);
  unsigned char md[32];
  unsigned int mdlen = 0;
  assert_int_equal(EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL), 1);
  assert_int_equal(mdlen, 32);
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
  free(text);
}

static int engine_setup(void **state) {
  case_engine *e = NULL;
  if (case_engine_open(&e) != CASE_OK) return -1;
  *state = e;
  return 0;
}

static int engine_teardown(void **state) {
  case_engine_close(*state);
  return 0;
}

static const case_def *load_valid(case_engine *e, const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", VALID, name);
  const case_def *d = NULL;
  int rc = case_def_load_file(e, path, &d);
  if (rc != CASE_OK) fail_msg("%s: %s (%s)", name, case_errmsg(e), case_errstr(rc));
  assert_non_null(d);
  return d;
}

static int sidx(const case_def *d, const char *id) {
  for (int i = 0; i < d->nstates; i++)
    if (strcmp(d->states[i].id, id) == 0) return i;
  fail_msg("no state '%s'", id);
  return -1;
}

/* ------------------------------------------------------------------ */
/* Invalid definitions, one file per error class                       */
/* ------------------------------------------------------------------ */

typedef struct expect {
  int code, line, col;
  char text[600];
} expect;

static int parse_expect(const char *text, expect *x) {
  const char *p = text;
  if (strncmp(p, "# expect", 8) != 0) return -1;
  p += 8;
  x->code = CASE_INVALID;
  if (*p == ' ') {
    static const struct {
      const char *name;
      int code;
    } codes[] = {{"LIMIT", CASE_LIMIT}, {"SCRIPT", CASE_SCRIPT}, {"IO", CASE_IO},
                 {"INVALID", CASE_INVALID}};
    p++;
    size_t i;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
      size_t l = strlen(codes[i].name);
      if (strncmp(p, codes[i].name, l) == 0 && p[l] == ':') {
        x->code = codes[i].code;
        p += l;
        break;
      }
    }
    if (i == sizeof codes / sizeof codes[0]) return -1;
  }
  if (*p++ != ':') return -1;
  int used = 0;
  if (sscanf(p, " %d:%d:%n", &x->line, &x->col, &used) != 2 || used == 0) return -1;
  p += used;
  while (*p == ' ') p++;
  size_t n = strcspn(p, "\n");
  if (n >= sizeof x->text) return -1;
  memcpy(x->text, p, n);
  x->text[n] = '\0';
  return 0;
}

static void test_invalid_file(void **state) {
  const char *path = *state;
  size_t len;
  char *text = read_all(path, &len);
  assert_non_null(text);
  expect x;
  if (parse_expect(text, &x) != 0) fail_msg("%s: first line is not '# expect[ CODE]: L:C: text'", path);
  free(text);

  case_engine *e = NULL;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  const case_def *d = (const case_def *)1;
  int rc = case_def_load_file(e, path, &d);
  const char *msg = case_errmsg(e);
  if (rc != x.code)
    fail_msg("%s: expected %s, got %s: %s", path, case_errstr(x.code), case_errstr(rc), msg);
  assert_null(d);
  assert_int_equal(case_errcode(e), x.code);

  char prefix[1200];
  snprintf(prefix, sizeof prefix, "%s:%d:%d: ", path, x.line, x.col);
  if (strncmp(msg, prefix, strlen(prefix)) != 0)
    fail_msg("message does not start with '%s':\n  %s", prefix, msg);
  if (!strstr(msg + strlen(prefix), x.text))
    fail_msg("message lacks '%s':\n  %s", x.text, msg);

  const char *file = NULL;
  int line = 0, col = 0;
  assert_int_equal(case_errpos(e, &file, &line, &col), CASE_OK);
  assert_string_equal(file, path);
  assert_int_equal(line, x.line);
  assert_int_equal(col, x.col);
  /* Nothing was registered. */
  assert_null(e->defs);
  case_engine_close(e);
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One file of tests/data/defs/warn/: loads with exactly the listed warnings. */
static void test_warning_file(void **state) {
  const char *path = *state;
  char *text = read_all(path, NULL);
  assert_non_null(text);
  case_engine *e = NULL;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  expect want[16];
  int nwant = 0;
  const char *p = text;
  while (strncmp(p, "# ", 2) == 0) {
    if (strncmp(p, "# warn:", 7) == 0) {
      if (nwant == 16) fail_msg("%s: too many warn lines", path);
      expect *x = &want[nwant++];
      int used = 0;
      if (sscanf(p + 7, " %d:%d:%n", &x->line, &x->col, &used) != 2 || used == 0)
        fail_msg("%s: bad line '%.40s'", path, p);
      const char *t = p + 7 + used;
      while (*t == ' ') t++;
      size_t n = strcspn(t, "\n");
      if (n >= sizeof x->text) fail_msg("%s: warn text too long", path);
      memcpy(x->text, t, n);
      x->text[n] = '\0';
    } else if (strncmp(p, "# profile: ", 11) == 0) {
      const char *spec = p + 11;
      size_t n = strcspn(spec, "\n");
      const char *eq = memchr(spec, '=', n);
      if (!eq) fail_msg("%s: bad profile line", path);
      char name[64], file[1200];
      snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
      snprintf(file, sizeof file, "%s/%.*s", WARN, (int)(n - (size_t)(eq + 1 - spec)), eq + 1);
      int rc = case_engine_load_profile(e, name, file);
      if (rc != CASE_OK) fail_msg("%s: profile %s: %s", path, file, case_errmsg(e));
    }
    p += strcspn(p, "\n");
    if (*p) p++;
  }
  free(text);
  if (nwant == 0) fail_msg("%s: no '# warn: L:C: text' line", path);
  const case_def *d = NULL;
  int rc = case_def_load_file(e, path, &d);
  if (rc != CASE_OK) fail_msg("%s: does not load: %s", path, case_errmsg(e));
  int n = case_def_warning_count(d);
  for (int i = 0; i < n; i++) fprintf(stderr, "  got: %s\n", case_def_warning(d, i));
  assert_int_equal(n, nwant);
  for (int i = 0; i < nwant; i++) {
    char prefix[1200];
    snprintf(prefix, sizeof prefix, "%s:%d:%d: ", path, want[i].line, want[i].col);
    const char *w = case_def_warning(d, i);
    if (strncmp(w, prefix, strlen(prefix)) != 0)
      fail_msg("warning %d does not start with '%s':\n  %s", i, prefix, w);
    if (!strstr(w + strlen(prefix), want[i].text))
      fail_msg("warning %d lacks '%s':\n  %s", i, want[i].text, w);
  }
  case_engine_close(e);
}

/* Issue 12.3: a location profile's params are checked against the definition's
 * declared params, whichever of the two is loaded first. */
#define PROFILES DEFS "/profiles"

static void test_profile_checked_against_definition(void **state) {
  case_engine *e = *state;
  const case_def *d = NULL;
  assert_int_equal(case_def_load_file(e, PROFILES "/drempel.yaml", &d), CASE_OK);
  /* drempel = "16" where the definition declares 16: refused, at the param. */
  assert_int_equal(case_engine_load_profile(e, "budel", PROFILES "/bad_type.lua"), CASE_INVALID);
  const char *want = PROFILES "/bad_type.lua:5:5: profile 'budel' sets param 'drempel' to a "
                     "string (\"16\"), but workflow 'drempelproef' declares it an integer (16) "
                     "at " PROFILES "/drempel.yaml:5:3";
  if (strncmp(case_errmsg(e), want, strlen(want)) != 0) fail_msg("got %s", case_errmsg(e));
  const char *file = NULL;
  int line = 0, col = 0;
  assert_int_equal(case_errpos(e, &file, &line, &col), CASE_OK);
  assert_string_equal(file, PROFILES "/bad_type.lua");
  assert_int_equal(line, 5);
  assert_int_equal(col, 5);
  char *json = NULL;
  assert_int_equal(case_def_check_profile(d, "budel", &json), CASE_NOTFOUND); /* not loaded */
  assert_null(json);
  /* A term param that is no whole number. */
  assert_int_equal(case_engine_load_profile(e, "budel", PROFILES "/bad_term.lua"), CASE_INVALID);
  assert_non_null(strstr(case_errmsg(e), "bad_term.lua:1:21: profile 'budel' sets param "
                                         "'wacht' to a number (2.5)"));
  /* Zero and a typo load, with warnings at their positions. */
  assert_int_equal(case_engine_load_profile(e, "budel", PROFILES "/zero_and_typo.lua"), CASE_OK);
  assert_int_equal(case_def_check_profile(d, "budel", &json), CASE_OK);
  json_t *list = json_loads(json, 0, NULL);
  case_free(json);
  assert_int_equal(json_array_size(list), 2);
  json_t *w0 = json_array_get(list, 0), *w1 = json_array_get(list, 1);
  assert_string_equal(json_string_value(json_object_get(w0, "severity")), "warning");
  assert_int_equal(json_integer_value(json_object_get(w0, "line")), 4);
  assert_int_equal(json_integer_value(json_object_get(w0, "column")), 5);
  assert_non_null(strstr(json_string_value(json_object_get(w0, "message")),
                         "sets param 'drempl', which workflow 'drempelproef' does not declare "
                         "(did you mean 'drempel'?)"));
  assert_int_equal(json_integer_value(json_object_get(w1, "line")), 3);
  assert_non_null(strstr(json_string_value(json_object_get(w1, "message")),
                         "sets param 'wacht' to 0, which makes the delay 'after.a.0'"));
  json_decref(list);
  case_engine_close(e);

  /* The other order: the profile first, then the definition it breaks. */
  assert_int_equal(case_engine_open(&e), CASE_OK);
  *state = e;
  assert_int_equal(case_engine_load_profile(e, "budel", PROFILES "/bad_type.lua"), CASE_OK);
  assert_int_equal(case_def_load_file(e, PROFILES "/drempel.yaml", &d), CASE_INVALID);
  if (strncmp(case_errmsg(e), want, strlen(want)) != 0) fail_msg("got %s", case_errmsg(e));
  assert_null(case_def_find(e, "drempelproef", 1));
}

/* The sorted paths of DIR/ *.yaml; NULL-terminated. */
static char **yaml_files(const char *where, int *n) {
  DIR *dir = opendir(where);
  if (!dir) return NULL;
  char **v = NULL;
  int k = 0;
  struct dirent *ent;
  while ((ent = readdir(dir))) {
    size_t l = strlen(ent->d_name);
    if (l < 6 || strcmp(ent->d_name + l - 5, ".yaml") != 0) continue;
    char **nv = realloc(v, (size_t)(k + 2) * sizeof *v);
    if (!nv) break;
    v = nv;
    size_t need = strlen(where) + l + 2;
    v[k] = malloc(need);
    if (!v[k]) break;
    snprintf(v[k], need, "%s/%s", where, ent->d_name);
    v[++k] = NULL;
  }
  closedir(dir);
  if (v) qsort(v, (size_t)k, sizeof *v, name_cmp);
  *n = k;
  return v;
}

/* ------------------------------------------------------------------ */
/* Valid definitions: model facts                                      */
/* ------------------------------------------------------------------ */

static void test_asielprocedure(void **state) {
  case_engine *e = *state;
  const case_def *d = load_valid(e, "asielprocedure.yaml");
  char hash[65];
  sha256_of_file(VALID "/asielprocedure.yaml", hash);
  assert_string_equal(case_def_hash(d), hash);
  assert_string_equal(case_def_id(d), "asielprocedure");
  assert_int_equal(case_def_version(d), 1);
  assert_string_equal(d->description, "First asylum application, from registration to decision.");
  assert_int_equal(d->clock, CLOCK_ATW);
  assert_string_equal(d->file, VALID "/asielprocedure.yaml");
  assert_string_equal(d->dir, VALID);
  size_t len;
  char *src = read_all(VALID "/asielprocedure.yaml", &len);
  assert_int_equal(d->source_len, len);
  assert_memory_equal(d->source, src, len);
  free(src);
  assert_int_equal(case_def_warning_count(d), 0);

  /* States in pre-order; [0] the root. */
  static const char *const ids[] = {"", "aanmelding", "identificatie", "rust_en_voorbereiding",
                                    "procedure", "spoor_bepalen", "dublin",
                                    "algemene_asielprocedure", "vergunning", "vertrokken"};
  static const cs_kind kinds[] = {CS_COMPOUND, CS_ATOMIC, CS_ATOMIC, CS_ATOMIC, CS_COMPOUND,
                                  CS_ATOMIC,   CS_ATOMIC, CS_ATOMIC, CS_FINAL,  CS_FINAL};
  static const int parents[] = {-1, 0, 0, 0, 0, 4, 4, 4, 0, 0};
  assert_int_equal(d->nstates, 10);
  for (int i = 0; i < 10; i++) {
    assert_string_equal(d->states[i].id, ids[i]);
    assert_int_equal(d->states[i].index, i);
    assert_int_equal(d->states[i].kind, kinds[i]);
    assert_int_equal(d->states[i].parent, parents[i]);
    assert_int_equal(d->states[i].depth, i == 0 ? 0 : parents[i] == 0 ? 1 : 2);
  }
  assert_int_equal(d->states[0].nchildren, 6);
  assert_int_equal(d->states[0].children[3], 4);
  assert_int_equal(d->states[0].ninitial, 1);
  assert_int_equal(d->states[0].initial[0], 1);
  assert_int_equal(d->states[4].nchildren, 3);
  assert_int_equal(d->states[4].ninitial, 1);
  assert_int_equal(d->states[4].initial[0], 5);
  assert_int_equal(d->states[1].pos.line, 23);
  assert_int_equal(d->states[1].pos.col, 3);
  assert_int_equal(d->states[6].pos.line, 57);
  assert_int_equal(d->states[6].pos.col, 7);

  /* Entry and exit scripts. */
  assert_int_equal(d->states[2].nonentry, 1);
  assert_int_equal(d->states[2].onentry[0].kind, SCRIPT_BLOCK);
  assert_string_equal(d->states[2].onentry[0].text, "case.kansarm = false");
  assert_int_equal(d->states[2].onentry[0].pos.line, 27);
  assert_int_equal(d->states[2].onentry[0].pos.col, 12);
  assert_true(d->states[2].onentry[0].ref > 0);
  assert_int_equal(d->states[7].nonexit, 2);
  assert_string_equal(d->states[7].onexit[1].text, "local n = 1\ncase.score = case.score + n\n");
  /* A block scalar's text starts on the line after '|'. */
  assert_int_equal(d->states[7].onexit[1].pos.line, 62);
  assert_int_equal(d->states[7].onexit[1].pos.col, 13);

  /* Transitions grouped by source in pre-order; on, then always, then after. */
  struct {
    int source;
    const char *event;
    int nevents;
    int target;
    int role;
  } tr[] = {
      {1, "aangemeld", 1, 2, 0},
      {2, "geregistreerd", 1, 3, 1},
      {2, "signaal", 2, -1, -1},
      {3, "rvt_onthouden", 1, 4, 0},
      {3, "after.rust_en_voorbereiding.0", 1, 4, -1},
      {4, "beslistermijn_verstreken", 1, 7, -1},
      {4, "ingewilligd", 1, 8, -1},
      {4, "afgewezen", 1, 9, 0},
      {5, NULL, 0, 6, -1},
      {5, NULL, 0, 7, -1},
  };
  assert_int_equal(d->ntransitions, 10);
  for (int i = 0; i < 10; i++) {
    const cs_transition *t = &d->transitions[i];
    assert_int_equal(t->index, i);
    assert_int_equal(t->source, tr[i].source);
    assert_int_equal(t->nevents, tr[i].nevents);
    if (tr[i].event)
      assert_string_equal(t->events[0], tr[i].event);
    else
      assert_null(t->events);
    assert_int_equal(t->ntargets, tr[i].target < 0 ? 0 : 1);
    if (tr[i].target >= 0) assert_int_equal(t->targets[0], tr[i].target);
    assert_int_equal(t->nroles, tr[i].role < 0 ? 0 : 1);
    if (tr[i].role >= 0) assert_int_equal(t->roles[0], tr[i].role);
    assert_int_equal(t->timer, i == 4 ? 0 : -1);
    assert_int_equal(t->internal, i == 5);
  }
  assert_string_equal(d->transitions[2].events[1], "signaal.coa");
  assert_int_equal(d->transitions[2].nactions, 1);
  assert_string_equal(d->transitions[2].actions[0].text, "case.kansarm = true");
  assert_int_equal(d->transitions[3].guard->kind, SCRIPT_EXPR);
  assert_string_equal(d->transitions[3].guard->text, "case.incidentrapport ~= nil");
  assert_int_equal(d->transitions[3].guard->pos.line, 39);
  assert_int_equal(d->transitions[3].guard->pos.col, 16);
  assert_null(d->transitions[9].guard);
  assert_int_equal(d->transitions[8].guard->kind, SCRIPT_EXPR);
  assert_int_equal(d->states[4].ntransitions, 3);
  assert_int_equal(d->states[4].transitions[0], 5);
  assert_int_equal(d->states[3].ntransitions, 2);

  /* Timers: the after entry, then the two deadlines of `procedure`. */
  assert_int_equal(d->ntimers, 3);
  const cs_timer *t0 = &d->timers[0], *t1 = &d->timers[1], *t2 = &d->timers[2];
  assert_int_equal(t0->kind, TIMER_AFTER);
  assert_string_equal(t0->name, "after.rust_en_voorbereiding.0");
  assert_string_equal(t0->event, "after.rust_en_voorbereiding.0");
  assert_int_equal(t0->state, 3);
  assert_string_equal(t0->dur.param, "rvt_days");
  assert_int_equal(t0->dur.unit, UNIT_DAYS);
  assert_int_equal(t0->dur.clock, CLOCK_ATW);
  assert_int_equal(t0->dur.same_day, 0);
  assert_int_equal(t1->kind, TIMER_DEADLINE);
  assert_string_equal(t1->name, "beslistermijn");
  assert_string_equal(t1->event, "beslistermijn_verstreken");
  assert_string_equal(t1->source, "Vw 2000 art. 42 lid 1");
  assert_int_equal(t1->state, 4);
  assert_null(t1->dur.param);
  assert_int_equal(t1->dur.amount, 6);
  assert_int_equal(t1->dur.unit, UNIT_MONTHS);
  assert_int_equal(t1->dur.clock, CLOCK_ATW);
  assert_int_equal(t1->dur.pos.line, 44);
  assert_int_equal(t1->dur.pos.col, 16);
  assert_string_equal(t2->name, "rapportage");
  assert_null(t2->event);
  assert_null(t2->source);
  assert_int_equal(t2->dur.amount, 2);
  assert_int_equal(t2->dur.unit, UNIT_WORKING_DAYS);
  assert_int_equal(t2->dur.clock, CLOCK_PROCEDURE);
  assert_int_equal(t2->dur.same_day, 1);
  assert_int_equal(d->states[3].ntimers, 1);
  assert_int_equal(d->states[4].ntimers, 2);
  assert_int_equal(d->states[4].timers[1], 2);

  /* Roles, params, data. */
  assert_int_equal(d->nroles, 3);
  assert_string_equal(d->roles[0], "IND");
  assert_string_equal(d->roles[2], "COA");
  assert_int_equal(d->nparams, 3);
  assert_string_equal(d->params[0].name, "rvt_days");
  assert_int_equal(json_integer_value(d->params[0].value), 6);
  assert_string_equal(d->params[1].source, "Vw 2000 art. 42 lid 1");
  assert_string_equal(d->params[1].description, "Statutory decision term in months.");
  assert_int_equal(d->params[1].unverified, 0);
  assert_string_equal(json_string_value(d->params[2].value), "Ter Apel");
  assert_int_equal(d->params[2].unverified, 1);
  assert_int_equal(d->nfields, 5);
  assert_string_equal(d->fields[0].name, "kansarm");
  assert_int_equal(d->fields[0].type, TYPE_BOOLEAN);
  assert_true(json_is_false(d->fields[0].def));
  assert_int_equal(d->fields[1].type, TYPE_STRING);
  assert_true(json_is_null(d->fields[1].def));
  assert_int_equal(d->fields[2].type, TYPE_DATE);
  assert_string_equal(json_string_value(d->fields[2].def), "2024-01-15");
  assert_int_equal(d->fields[3].type, TYPE_LIST);
  assert_int_equal(json_array_size(d->fields[3].def), 2);
  assert_string_equal(json_string_value(json_array_get(d->fields[3].def, 1)), "politie");
  assert_int_equal(d->fields[4].type, TYPE_NUMBER);
  assert_true(json_is_real(d->fields[4].def));
  assert_int_equal(d->nmodules, 0);
}

static void test_parallel_history(void **state) {
  case_engine *e = *state;
  const case_def *d = load_valid(e, "parallel_history.yaml");
  assert_int_equal(d->version, 2);
  assert_int_equal(d->nstates, 15);
  assert_int_equal(d->states[0].ninitial, 1);
  assert_int_equal(d->states[0].initial[0], sidx(d, "opvang"));
  assert_int_equal(d->states[sidx(d, "opvang")].kind, CS_PARALLEL);
  assert_int_equal(d->states[sidx(d, "opvang")].ninitial, 0);
  int wt = sidx(d, "wonen_terug"), ee = sidx(d, "eerder");
  assert_int_equal(wt, 3);
  assert_int_equal(d->states[wt].kind, CS_HISTORY_DEEP);
  assert_int_equal(d->states[ee].kind, CS_HISTORY_SHALLOW);
  /* No default: the parent's initial. */
  assert_int_equal(d->states[wt].ninitial, 1);
  assert_int_equal(d->states[wt].initial[0], sidx(d, "azc"));
  assert_int_equal(d->states[ee].ninitial, 1);
  assert_int_equal(d->states[ee].initial[0], sidx(d, "intake"));
  /* History pseudo-states are children, in document order. */
  const cs_state *wonen = &d->states[sidx(d, "wonen")];
  assert_int_equal(wonen->nchildren, 3);
  assert_int_equal(wonen->children[0], wt);

  assert_int_equal(d->ntransitions, 11);
  const cs_transition *back = &d->transitions[6];
  assert_int_equal(back->source, sidx(d, "vertrokken"));
  assert_int_equal(back->ntargets, 2);
  assert_int_equal(back->targets[0], wt);
  assert_int_equal(back->targets[1], sidx(d, "meldplicht"));
  assert_int_equal(back->roles[0], 1);
  const cs_transition *arrest = &d->transitions[7];
  assert_int_equal(arrest->nevents, 2);
  assert_string_equal(arrest->events[0], "signaal"); /* "signaal.*" means "signaal" */
  assert_string_equal(arrest->events[1], "aangehouden");
  /* Two transitions on one event: list order. */
  assert_int_equal(d->transitions[9].source, sidx(d, "verblijf"));
  assert_int_equal(d->transitions[9].guard->kind, SCRIPT_EXPR); /* "true" is not a name */
  assert_null(d->transitions[10].guard);

  assert_int_equal(d->ntimers, 2);
  assert_string_equal(d->timers[0].name, "after.meldplicht.0");
  assert_string_equal(d->timers[0].description, "weekly review");
  assert_int_equal(d->timers[0].dur.amount, 1);
  assert_int_equal(d->timers[0].dur.unit, UNIT_WEEKS);
  assert_int_equal(d->timers[0].dur.clock, CLOCK_PLAIN);
  assert_string_equal(d->timers[1].name, "after.meldplicht.1");
  assert_int_equal(d->timers[1].dur.unit, UNIT_HOURS);
  assert_int_equal(d->transitions[4].timer, 0);
  assert_int_equal(d->transitions[5].timer, 1);
  assert_int_equal(d->transitions[5].ntargets, 0);
  assert_string_equal(d->transitions[5].events[0], "after.meldplicht.1");
  assert_int_equal(case_def_warning_count(d), 0);
}

static void test_dead_end_warning(void **state) {
  case_engine *e = *state;
  const case_def *d = load_valid(e, "dead_end.yaml");
  assert_int_equal(case_def_warning_count(d), 1);
  const char *w = case_def_warning(d, 0);
  assert_non_null(w);
  assert_string_equal(w, VALID "/dead_end.yaml:8:3: state 'wachten' has no way out: no "
                         "transition, after or deadline with on_expiry on it or an enclosing "
                         "state (add final: true if cases end here)");
  assert_null(case_def_warning(d, 1));
  assert_null(case_def_warning(d, -1));
  /* A warning is not an error. */
  assert_int_equal(case_errcode(e), CASE_OK);
  assert_string_equal(case_errmsg(e), "");
}

/* `on: {go: [b, c]}` is two alternatives, not two targets: the second is
 * never taken, which is worth a warning (a tester fell into it). */
static void test_shadowed_transition_warning(void **state) {
  case_engine *e = *state;
  const char *y = "workflow: sh\nversion: 1\ninitial: a\nstates:\n"
                  "  a: {on: {go: [b, c], gaan: [{guard: 'false', target: b}, c]}}\n"
                  "  b: {final: true}\n  c: {final: true}\n";
  const case_def *d = NULL;
  assert_int_equal(case_def_load_string(e, y, strlen(y), "sh.yaml", &d), CASE_OK);
  assert_int_equal(case_def_warning_count(d), 1);
  assert_string_equal(case_def_warning(d, 0),
                      "sh.yaml:5:20: this transition for 'go' in state 'a' is never taken: the "
                      "one at 5:17 takes the event first (it has no guard and is open to every "
                      "role)");
}

static int native_guard(void *ud, case_call *call, int *result) {
  (void)ud;
  (void)call;
  *result = 1;
  return CASE_OK;
}

static int native_action(void *ud, case_call *call) {
  (void)ud;
  (void)call;
  return CASE_OK;
}

static void test_with_lua(void **state) {
  case_engine *e = *state;
  assert_int_equal(case_engine_register_guard(e, "native_check", native_guard, NULL), CASE_OK);
  assert_int_equal(case_engine_register_action(e, "native_act", native_action, NULL), CASE_OK);
  const case_def *d = load_valid(e, "with_lua.yaml");
  assert_int_equal(d->nmodules, 1);
  assert_string_equal(d->modules[0], VALID "/../../lua/loader_helpers.lua");
  assert_true(d->functions_ref > 0);
  const cs_transition *door = &d->transitions[0], *nat = &d->transitions[1];
  assert_int_equal(door->guard->kind, SCRIPT_NAMED);
  assert_string_equal(door->guard->text, "is_kansarm");
  assert_int_equal(door->actions[0].kind, SCRIPT_NAMED);
  assert_int_equal(nat->guard->kind, SCRIPT_NATIVE);
  assert_int_equal(nat->guard->ref, eng_native_find(e, "native_check", 0));
  assert_int_equal(nat->nactions, 2);
  assert_int_equal(nat->actions[0].kind, SCRIPT_NATIVE);
  assert_int_equal(nat->actions[0].ref, eng_native_find(e, "native_act", 1));
  assert_int_equal(nat->actions[1].kind, SCRIPT_BLOCK);
}

/* Without the natives the same names are module functions, which do not exist. */
static void test_unknown_native(void **state) {
  case_engine *e = *state;
  const case_def *d = NULL;
  assert_int_equal(case_def_load_file(e, VALID "/with_lua.yaml", &d), CASE_INVALID);
  assert_null(d);
  assert_non_null(strstr(case_errmsg(e), "unknown guard function 'native_check'"));
  int line = 0, col = 0;
  assert_int_equal(case_errpos(e, NULL, &line, &col), CASE_OK);
  assert_int_equal(line, 16);
  assert_int_equal(col, 16);
}

static void test_lua_root(void **state) {
  case_engine *e = *state;
  static const char text[] = "workflow: w\nversion: 1\nlua: [loader_helpers.lua]\n"
                             "initial: a\nstates:\n  a:\n    on: {x: {guard: is_kansarm, target: b}}\n"
                             "  b: {final: true}\n";
  const case_def *d = NULL;
  /* Not found in the default root (the current directory). */
  assert_int_equal(case_def_load_string(e, text, strlen(text), "root.yaml", &d), CASE_IO);
  assert_non_null(strstr(case_errmsg(e), "root.yaml:3:7: Lua module 'loader_helpers.lua' not found"));
  assert_int_equal(case_engine_set_lua_root(e, CASE_TEST_DATA "/lua"), CASE_OK);
  assert_int_equal(case_def_load_string(e, text, strlen(text), "root.yaml", &d), CASE_OK);
  assert_string_equal(d->modules[0], CASE_TEST_DATA "/lua/loader_helpers.lua");
  assert_null(d->dir);
  assert_string_equal(d->file, "root.yaml");
}

/* Issue 12.3: the functions of lua: modules that guards and actions name are
 * scanned as inline scripts are: a case field or param the definition does
 * not declare is a warning at its place in the module (a module may serve
 * several versions and branch on a param, so not an error), naming the
 * guard or action that calls it; helpers the case is passed to are followed. */
static void test_module_refs(void **state) {
  case_engine *e = *state;
  static const char text[] =
      "workflow: w\nversion: 1\nlua: [modrefs.lua]\n"
      "params: {drempel: 3, nieuw: false}\n"
      "data: {aantal: {type: integer, default: 0}}\n"
      "initial: a\nstates:\n"
      "  a:\n    on:\n"
      "      x: {guard: telt, target: b}\n"
      "      y: {guard: netjes, actions: [zet, herbind], target: b}\n"
      "  b: {final: true}\n";
  assert_int_equal(case_engine_set_lua_root(e, CASE_TEST_DATA "/lua"), CASE_OK);
  const case_def *d = NULL;
  if (case_def_load_string(e, text, strlen(text), "mod.yaml", &d) != CASE_OK)
    fail_msg("does not load: %s", case_errmsg(e));
  static const char *const want[] = {
      CASE_TEST_DATA "/lua/modrefs.lua:5:35: function telt (the guard at mod.yaml:10:18) "
      "reads case.aantl, which is not a declared data field of w version 1: a case that runs "
      "this line fails (declared: aantal; did you mean 'aantal'?)",
      CASE_TEST_DATA "/lua/modrefs.lua:8:27: function telt (the guard at mod.yaml:10:18) "
      "reads params.drempl, which is not a declared param of w version 1: a case that runs "
      "this line fails (declared: drempel, nieuw; did you mean 'drempel'?)",
      CASE_TEST_DATA "/lua/modrefs.lua:12:8: function zet (the action at mod.yaml:11:36) "
      "assigns case.nosuchfield, which is not a declared data field of w version 1: a case "
      "that runs this line fails (declared: aantal)",
  };
  int n = case_def_warning_count(d);
  for (int i = 0; i < n; i++) fprintf(stderr, "  got: %s\n", case_def_warning(d, i));
  assert_int_equal(n, 3);
  for (int i = 0; i < 3; i++) assert_string_equal(case_def_warning(d, i), want[i]);
}

/* Several definitions side by side; the same id and version again. */
static void test_side_by_side(void **state) {
  case_engine *e = *state;
  assert_int_equal(case_engine_register_guard(e, "native_check", native_guard, NULL), CASE_OK);
  assert_int_equal(case_engine_register_action(e, "native_act", native_action, NULL), CASE_OK);
  const case_def *a = load_valid(e, "asielprocedure.yaml");
  const case_def *b = load_valid(e, "parallel_history.yaml");
  const case_def *c = load_valid(e, "dead_end.yaml");
  const case_def *l = load_valid(e, "with_lua.yaml");
  assert_ptr_equal(case_def_find(e, "asielprocedure", 1), a);
  assert_ptr_equal(case_def_find(e, "toezicht", 2), b);
  assert_ptr_equal(case_def_find(e, "doodlopend", 0), c);
  assert_ptr_equal(case_def_find(e, "met_lua", 1), l);
  assert_null(case_def_find(e, "toezicht", 1));

  /* The same content again: the loaded definition. */
  const case_def *again = NULL;
  assert_int_equal(case_def_load_file(e, VALID "/asielprocedure.yaml", &again), CASE_OK);
  assert_ptr_equal(again, a);
  size_t len;
  char *text = read_all(VALID "/asielprocedure.yaml", &len);
  assert_non_null(text);
  assert_int_equal(case_def_load_string(e, text, len, "copy.yaml", &again), CASE_OK);
  assert_ptr_equal(again, a);

  /* Other content under the same id and version: refused, the old one stays. */
  char *changed = malloc(len + 32);
  assert_non_null(changed);
  memcpy(changed, text, len);
  memcpy(changed + len, "# changed\n", 11);
  assert_int_equal(case_def_load_string(e, changed, len + 10, "changed.yaml", &again), CASE_EXISTS);
  assert_null(again);
  assert_ptr_equal(case_def_find(e, "asielprocedure", 1), a);

  /* A new version is a new definition; version 0 finds the highest. */
  char *v2 = strstr(changed, "version: 1");
  assert_non_null(v2);
  v2[9] = '2';
  assert_int_equal(case_def_load_string(e, changed, len + 10, "v2.yaml", &again), CASE_OK);
  assert_ptr_not_equal(again, a);
  assert_int_equal(case_def_version(again), 2);
  assert_ptr_equal(case_def_find(e, "asielprocedure", 0), again);
  assert_ptr_equal(case_def_find(e, "asielprocedure", 1), a);
  assert_string_not_equal(case_def_hash(again), case_def_hash(a));
  free(changed);
  free(text);
}

static void test_depth_limit(void **state) {
  case_engine *e = *state;
  const case_def *d = NULL;
  /* azc is 3 deep: opvang > wonen > azc. */
  assert_int_equal(case_engine_limit(e, CASE_LIMIT_DEPTH, 2), 64);
  assert_int_equal(case_def_load_file(e, VALID "/parallel_history.yaml", &d), CASE_LIMIT);
  assert_non_null(strstr(case_errmsg(e), ":15:11: state 'wonen_terug' is nested 3 deep (the limit is 2)"));
  assert_int_equal(case_engine_limit(e, CASE_LIMIT_DEPTH, 3), 2);
  assert_int_equal(case_def_load_file(e, VALID "/parallel_history.yaml", &d), CASE_OK);
}

/* ------------------------------------------------------------------ */
/* Inputs that might crash a loader                                    */
/* ------------------------------------------------------------------ */

static void expect_error(case_engine *e, const char *text, size_t len, int code, int line,
                         int col, const char *part) {
  const case_def *d = (const case_def *)1;
  int rc = case_def_load_string(e, text, len, NULL, &d);
  if (rc != code)
    fail_msg("expected %s, got %s: %s", case_errstr(code), case_errstr(rc), case_errmsg(e));
  assert_null(d);
  const char *file = NULL;
  int l = 0, c = 0;
  assert_int_equal(case_errpos(e, &file, &l, &c), CASE_OK);
  assert_string_equal(file, "<string>");
  assert_int_equal(l, line);
  assert_int_equal(c, col);
  if (!strstr(case_errmsg(e), part)) fail_msg("message lacks '%s': %s", part, case_errmsg(e));
}

static void test_empty_and_odd_inputs(void **state) {
  case_engine *e = *state;
  expect_error(e, "", 0, CASE_INVALID, 1, 1, "<string>:1:1: empty definition");
  expect_error(e, "   \n\n", 5, CASE_INVALID, 1, 1, "empty definition");
  expect_error(e, "~", 1, CASE_INVALID, 1, 1, "empty definition");
  expect_error(e, "---\n...\n", 8, CASE_INVALID, 1, 1, "empty definition");
  expect_error(e, "42", 2, CASE_INVALID, 1, 1, "the definition is an integer");
  expect_error(e, "workflow: w\0version: 1", 22, CASE_INVALID, 1, 12,
               "control characters are not allowed");
  expect_error(e, "{", 1, CASE_INVALID, 2, 1, "YAML: did not find expected node content");
  expect_error(e, "workflow: w\nworkflow: w\n", 24, CASE_INVALID, 2, 1, "duplicate key 'workflow'");
  expect_error(e, "%YAML 1.1\n%YAML 1.1\n---\n", 23, CASE_INVALID, 2, 1, "YAML:");
  expect_error(e, "a: *x\n", 6, CASE_INVALID, 1, 4, "alias");
  /* A huge number where a count is expected, and where a value is expected. */
  expect_error(e, "workflow: w\nversion: 2147483648\n", 32, CASE_INVALID, 2, 10, "out of range");
  static const char big[] = "workflow: w\nversion: 1\nparams: {p: 123456789012345678901234567890}\n"
                            "initial: a\nstates: {a: {final: true}}\n";
  expect_error(e, big, strlen(big), CASE_INVALID, 3, 13, "integer 123456789012345678901234567890 is out of range");
  /* Very long keys and event names are fine, only wrong. */
  char *longkey = malloc(100020);
  assert_non_null(longkey);
  memset(longkey, 'k', 100000);
  memcpy(longkey + 100000, ": 1\n", 5);
  expect_error(e, longkey, strlen(longkey), CASE_INVALID, 1, 100001,
               "a key is at most 1024 characters long");
  memcpy(longkey, "workflow: ", 10);
  memcpy(longkey + 100000, "\n", 2); /* a valid, very long id */
  expect_error(e, longkey, strlen(longkey), CASE_INVALID, 1, 1, "missing version");
  free(longkey);
}

/* Thousands of top-level keys (duplicate check must not be quadratic-slow or
 * wrong) and thousands of states. */
static void test_many_states(void **state) {
  case_engine *e = *state;
  sbuf b;
  sbuf_init(&b);
  sbuf_puts(&b, "workflow: veel\nversion: 1\ninitial: s0\nstates:\n");
  for (int i = 0; i < 3000; i++)
    sbuf_printf(&b, "  s%d: {on: {verder: s%d}}\n", i, i + 1);
  sbuf_puts(&b, "  s3000: {final: true}\n");
  size_t len = b.len;
  char *text = sbuf_take(&b);
  assert_non_null(text);
  const case_def *d = NULL;
  assert_int_equal(case_def_load_string(e, text, len, "veel.yaml", &d), CASE_OK);
  assert_int_equal(d->nstates, 3002);
  assert_int_equal(d->ntransitions, 3000);
  assert_int_equal(d->transitions[2999].targets[0], 3001);
  /* The same with one duplicate near the end. */
  char *dup = strstr(text, "  s2998:");
  assert_non_null(dup);
  dup[5] = '7'; /* s2998 -> s2978 */
  expect_error(e, text, len, CASE_INVALID, 3003, 3, "duplicate key 's2978' (first at line 2983");
  free(text);
}

/* Mutations of a valid definition: every load either succeeds or reports an
 * error with a message; under ASan/UBSan nothing may crash or leak. */
static void test_mutations(void **state) {
  case_engine *e = *state;
  size_t len;
  char *orig = read_all(VALID "/parallel_history.yaml", &len);
  assert_non_null(orig);
  char *buf = malloc(len + 1);
  assert_non_null(buf);
  uint32_t seed = 12345;
  static const char pool[] = ":-[]{}&*!|>'\"#%@`,? \n\t0aZ~";
  int ok = 0, failed = 0;
  for (int round = 0; round < 400; round++) {
    memcpy(buf, orig, len + 1);
    int edits = 1 + round % 4;
    for (int k = 0; k < edits; k++) {
      seed = seed * 1103515245u + 12345u;
      size_t at = (seed >> 8) % len;
      seed = seed * 1103515245u + 12345u;
      buf[at] = round % 5 == 4 ? (char)(seed >> 16) : pool[(seed >> 16) % (sizeof pool - 1)];
    }
    size_t n = round % 7 == 6 ? (seed >> 4) % len : len; /* sometimes truncated */
    const case_def *d = NULL;
    int rc = case_def_load_string(e, buf, n, "mut.yaml", &d);
    if (rc == CASE_OK) {
      assert_non_null(d);
      ok++;
    } else {
      assert_null(d);
      assert_true(rc == CASE_INVALID || rc == CASE_LIMIT || rc == CASE_SCRIPT || rc == CASE_EXISTS);
      assert_true(case_errmsg(e)[0] != '\0');
      failed++;
    }
  }
  assert_int_equal(ok + failed, 400);
  assert_true(failed > 200);
  free(buf);
  free(orig);
}

static void test_misuse(void **state) {
  case_engine *e = *state;
  case_def *d = (case_def *)1;
  assert_int_equal(def_parse(NULL, "x", 1, "f", NULL, &d), CASE_MISUSE);
  assert_int_equal(def_parse(e, NULL, 0, "f", NULL, &d), CASE_MISUSE);
  assert_null(d);
  def_free(NULL);
  /* def_parse directly: the caller owns the result. */
  static const char text[] = "workflow: w\nversion: 1\ninitial: a\nstates: {a: {final: true}}\n";
  assert_int_equal(def_parse(e, text, strlen(text), NULL, NULL, &d), CASE_OK);
  assert_string_equal(d->file, "<string>");
  assert_int_equal(d->nstates, 2);
  assert_int_equal(d->functions_ref, -1);
  def_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_asielprocedure, engine_setup, engine_teardown),
      cmocka_unit_test_setup_teardown(test_parallel_history, engine_setup, engine_teardown),
    cmocka_unit_test_setup_teardown(test_shadowed_transition_warning, engine_setup, engine_teardown),
    cmocka_unit_test_setup_teardown(test_dead_end_warning, engine_setup, engine_teardown),
      cmocka_unit_test_setup_teardown(test_with_lua, engine_setup, engine_teardown),
      cmocka_unit_test_setup_teardown(test_unknown_native, engine_setup, engine_teardown),
      cmocka_unit_test_setup_teardown(test_lua_root, engine_setup, engine_teardown),
      cmocka_unit_test_setup_teardown(test_module_refs, engine_setup, engine_teardown),
      cmocka_unit_test_setup_teardown(test_side_by_side, engine_setup, engine_teardown),
      cmocka_unit_test_setup_teardown(test_depth_limit, engine_setup, engine_teardown),
      cmocka_unit_test_setup_teardown(test_empty_and_odd_inputs, engine_setup, engine_teardown),
      cmocka_unit_test_setup_teardown(test_many_states, engine_setup, engine_teardown),
      cmocka_unit_test_setup_teardown(test_mutations, engine_setup, engine_teardown),
      cmocka_unit_test_setup_teardown(test_misuse, engine_setup, engine_teardown),
      cmocka_unit_test_setup_teardown(test_profile_checked_against_definition, engine_setup,
                                      engine_teardown),
  };
  int failed = cmocka_run_group_tests_name("loader", tests, NULL, NULL);

  int n = 0;
  char **files = yaml_files(INVALID, &n);
  if (!files || n < 50) {
    fprintf(stderr, "expected at least 50 files under %s, found %d\n", INVALID, n);
    return 1;
  }
  struct CMUnitTest *inv = calloc((size_t)n, sizeof *inv);
  if (!inv) return 1;
  for (int i = 0; i < n; i++) {
    inv[i].name = strrchr(files[i], '/') + 1;
    inv[i].test_func = test_invalid_file;
    inv[i].initial_state = files[i];
  }
  failed += _cmocka_run_group_tests("loader_invalid_definitions", inv, (size_t)n, NULL, NULL);
  for (int i = 0; i < n; i++) free(files[i]);
  free(files);
  free(inv);

  files = yaml_files(WARN, &n);
  if (!files || n < 1) {
    fprintf(stderr, "expected files under %s, found %d\n", WARN, n);
    return 1;
  }
  inv = calloc((size_t)n, sizeof *inv);
  if (!inv) return 1;
  for (int i = 0; i < n; i++) {
    inv[i].name = strrchr(files[i], '/') + 1;
    inv[i].test_func = test_warning_file;
    inv[i].initial_state = files[i];
  }
  failed += _cmocka_run_group_tests("loader_warnings", inv, (size_t)n, NULL, NULL);
  for (int i = 0; i < n; i++) free(files[i]);
  free(files);
  free(inv);
  return failed;
}
