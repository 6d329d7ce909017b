/*
 * Coverage of process tests and scenario skeletons (include/libcase/scenario.h,
 * docs/process-tests.md "Coverage").  The figures are those of
 * tests/data/coverage/fixture.yaml under a.yaml and b.yaml, worked out by hand
 * from the chart (each scenario's comments say why each term runs out or not);
 * positions are line:column in fixture.yaml.
 */
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
#include "libcase/scenario.h"

#define DATA CASE_TEST_DATA "/coverage/"
/* 2026-03-02 10:00 Europe/Amsterdam (09:00Z), a Monday. */
#define T0 INT64_C(1772442000)

static case_engine *engine(case_coverage *cov) {
  case_engine *e = NULL;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  if (cov) assert_int_equal(case_engine_set_coverage(e, cov), CASE_OK);
  return e;
}

static void run(case_engine *e, const char *path) {
  int failures = -1;
  char *report = NULL;
  int rc = case_scenario_run_file(e, path, &failures, &report);
  if (rc != CASE_OK) fail_msg("%s: %s", path, case_errmsg(e));
  if (failures) fail_msg("%s", report);
  case_free(report);
}

static json_t *report_json(case_coverage *cov) {
  char *s = NULL;
  assert_int_equal(case_coverage_report(cov, CASE_COVERAGE_JSON, &s), CASE_OK);
  json_error_t err;
  json_t *v = json_loads(s, 0, &err);
  case_free(s);
  assert_non_null(v);
  return v;
}

static char *report_text(case_coverage *cov) {
  char *s = NULL;
  assert_int_equal(case_coverage_report(cov, CASE_COVERAGE_TEXT, &s), CASE_OK);
  assert_non_null(s);
  return s;
}

/* The only definition of the report. */
static json_t *only_def(json_t *rep) {
  json_t *defs = json_object_get(rep, "definitions");
  assert_int_equal(json_array_size(defs), 1);
  return json_array_get(defs, 0);
}

static long num(const json_t *o, const char *a, const char *b) {
  const json_t *x = b ? json_object_get(json_object_get(o, a), b) : json_object_get(o, a);
  if (!json_is_integer(x)) fail_msg("no integer at %s.%s", a, b ? b : "");
  return (long)json_integer_value(x);
}

/* "line:col,line:col,..." of an untested list. */
static char *positions(const json_t *d, const char *kind) {
  static char buf[512];
  buf[0] = '\0';
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(json_object_get(d, kind), "untested"), i, x) {
    char one[32];
    snprintf(one, sizeof one, "%s%lld:%lld", i ? "," : "",
             (long long)json_integer_value(json_object_get(x, "line")),
             (long long)json_integer_value(json_object_get(x, "column")));
    strcat(buf, one);
  }
  return buf;
}

static int untested_at(const json_t *d, const char *kind, int line, int col) {
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(json_object_get(d, kind), "untested"), i, x) {
    if (json_integer_value(json_object_get(x, "line")) == line &&
        json_integer_value(json_object_get(x, "column")) == col)
      return 1;
  }
  return 0;
}

/* ---- counting ---- */

static void one_scenario_exact(void **state) {
  (void)state;
  case_coverage *cov = NULL;
  assert_int_equal(case_coverage_open(&cov), CASE_OK);
  case_engine *e = engine(cov);
  run(e, DATA "a.yaml");
  json_t *rep = report_json(cov);
  json_t *d = only_def(rep);
  assert_false(json_is_true(json_object_get(rep, "incomplete")));
  assert_string_equal(json_string_value(json_object_get(d, "workflow")), "cov_fixture");
  assert_int_equal(num(d, "version", NULL), 1);
  assert_int_equal(num(d, "cases", NULL), 1);
  /* start, wait, late, done entered; hidden is only reached through odd. */
  assert_int_equal(num(d, "states", "total"), 5);
  assert_int_equal(num(d, "states", "covered"), 4);
  assert_string_equal(positions(d, "states"), "32:3");
  /* go, termijn_verstreken, retry, answer taken; skip, odd, poke.* (line 31), the
   * shadowed poke and hidden's eventless transition not. */
  assert_int_equal(num(d, "transitions", "total"), 9);
  assert_int_equal(num(d, "transitions", "covered"), 4);
  assert_string_equal(positions(d, "transitions"), "18:7,27:7,31:45,31:61,34:9");
  /* go's guard was false (refused step 1) and true (step 2); odd's only false. */
  assert_int_equal(num(d, "guards", "total"), 2);
  assert_int_equal(num(d, "guards", "covered"), 1);
  assert_string_equal(positions(d, "guards"), "27:32");
  json_t *g = json_array_get(json_object_get(json_object_get(d, "guards"), "untested"), 0);
  assert_string_equal(json_string_value(json_object_get(g, "guard")), "case.n > 5");
  assert_int_equal(num(g, "true", NULL), 0);
  assert_int_equal(num(g, "false", NULL), 1);
  /* termijn ran out (tick to 6 Mar) and was met (the second one, left by answer);
   * herstel was met (retry) but never ran out. */
  assert_int_equal(num(d, "deadlines", "total"), 2);
  assert_int_equal(num(d, "deadlines", "ran_out"), 1);
  assert_int_equal(num(d, "deadlines", "met"), 2);
  assert_string_equal(positions(d, "deadlines"), "30:7");
  json_t *dl = json_array_get(json_object_get(json_object_get(d, "deadlines"), "untested"), 0);
  assert_string_equal(json_string_value(json_object_get(dl, "deadline")), "herstel");
  assert_string_equal(json_string_value(json_object_get(dl, "state")), "late");
  assert_int_equal(num(dl, "ran_out", NULL), 0);
  assert_int_equal(num(dl, "met", NULL), 1);
  json_decref(rep);

  char *text = report_text(cov);
  const char *want =
      "cov_fixture version 1 (" DATA "fixture.yaml): 1 case\n"
      "  states entered           4/5 (80.0%)\n"
      "  transitions taken        4/9 (44.4%)\n"
      "  guards true and false    1/2 (50.0%)\n"
      "  deadlines ran out        1/2 (50.0%)\n"
      "  deadlines met            2/2 (100.0%)\n"
      "  untested:\n"
      "    " DATA "fixture.yaml:18:7: transition on 'skip' from 'start' to 'wait' never taken\n"
      "    " DATA "fixture.yaml:27:7: transition on 'odd' from 'wait' to 'hidden' never taken\n"
      "    " DATA "fixture.yaml:27:32: guard 'case.n > 5' (of the transition on 'odd' from 'wait') never true (false once)\n"
      "    " DATA "fixture.yaml:30:7: deadline 'herstel' of 'late' never ran out\n"
      "    " DATA "fixture.yaml:31:45: transition on 'poke' from 'late' to 'late' never taken\n"
      "    " DATA "fixture.yaml:31:61: transition on 'poke' from 'late' to 'done' never taken\n"
      "    " DATA "fixture.yaml:32:3: state 'hidden' never entered\n"
      "    " DATA "fixture.yaml:34:9: eventless transition from 'hidden' to 'done' never taken\n";
  assert_string_equal(text, want);
  case_free(text);
  case_engine_close(e);
  case_coverage_close(cov);
}

/* b.yaml on a second engine adds skip and herstel running out; the engines and
 * the record are closed in either order. */
static void merged_over_engines(void **state) {
  (void)state;
  case_coverage *cov = NULL;
  assert_int_equal(case_coverage_open(&cov), CASE_OK);
  case_engine *e1 = engine(cov);
  run(e1, DATA "a.yaml");
  case_engine_close(e1);
  case_engine *e2 = engine(cov);
  run(e2, DATA "b.yaml");
  case_coverage_close(cov); /* e2 still holds it */
  cov = NULL;
  case_coverage *again = NULL;
  assert_int_equal(case_coverage_open(&again), CASE_OK);
  assert_int_equal(case_engine_set_coverage(e2, again), CASE_OK); /* lets the first go */
  case_coverage_close(again);
  case_engine_close(e2); /* frees `again` */

  assert_int_equal(case_coverage_open(&cov), CASE_OK);
  e1 = engine(cov);
  run(e1, DATA "a.yaml");
  case_engine_close(e1);
  e2 = engine(cov);
  run(e2, DATA "b.yaml");
  json_t *rep = report_json(cov);
  json_t *d = only_def(rep);
  assert_int_equal(num(d, "cases", NULL), 2);
  assert_int_equal(num(d, "states", "covered"), 4);
  assert_int_equal(num(d, "transitions", "covered"), 5);
  assert_string_equal(positions(d, "transitions"), "27:7,31:45,31:61,34:9");
  assert_int_equal(num(d, "guards", "covered"), 1);
  assert_int_equal(num(d, "deadlines", "ran_out"), 2);
  assert_int_equal(num(d, "deadlines", "met"), 2);
  assert_string_equal(positions(d, "deadlines"), "");
  json_decref(rep);
  case_coverage_close(cov);
  case_engine_close(e2);
}

static const char *ROLLBACK_YAML =
    "workflow: rb\nversion: 1\nroles: [A]\n"
    "data: {n: {type: integer, default: 0}}\n"
    "initial: a\n"
    "states:\n"
    "  a:\n"
    "    on:\n"
    "      boom: {roles: [A], target: b, actions: [\"error('no')\"]}\n"
    "      ask: {roles: [A], guard: case.n > 0, target: b}\n"
    "  b: {final: true}\n";

/* A rolled-back macrostep, a refused role, explain and available count nothing. */
static void failures_count_nothing(void **state) {
  (void)state;
  case_coverage *cov = NULL;
  assert_int_equal(case_coverage_open(&cov), CASE_OK);
  case_engine *e = engine(NULL);
  const case_def *d = NULL;
  assert_int_equal(case_def_load_string(e, ROLLBACK_YAML, strlen(ROLLBACK_YAML), "rb.yaml", &d),
                   CASE_OK);
  /* Set after the load: the definition is reported all the same. */
  assert_int_equal(case_engine_set_coverage(e, cov), CASE_OK);
  json_t *rep = report_json(cov);
  assert_int_equal(num(only_def(rep), "cases", NULL), 0);
  assert_int_equal(num(only_def(rep), "states", "covered"), 0);
  json_decref(rep);
  case_instance *c = NULL;
  assert_int_equal(case_instance_create(e, d, "c", NULL, NULL, T0, &c), CASE_OK);
  assert_int_equal(case_instance_fire(c, "boom", NULL, NULL, "A", T0), CASE_SCRIPT);
  char *s = NULL;
  assert_int_equal(case_instance_available(c, "A", T0, &s), CASE_OK);
  case_free(s);
  assert_int_equal(case_instance_explain(c, "ask", "A", T0, &s), CASE_OK);
  case_free(s);
  rep = report_json(cov);
  json_t *x = only_def(rep);
  assert_int_equal(num(x, "cases", NULL), 1);
  assert_int_equal(num(x, "states", "covered"), 1);         /* a only: b was rolled back */
  assert_int_equal(num(x, "transitions", "covered"), 0);
  json_t *g = json_array_get(json_object_get(json_object_get(x, "guards"), "untested"), 0);
  assert_int_equal(num(g, "true", NULL), 0);                /* available/explain: not counted */
  assert_int_equal(num(g, "false", NULL), 0);
  json_decref(rep);
  /* The refused ask counts its guard false; with no coverage set nothing counts. */
  assert_int_equal(case_instance_fire(c, "ask", NULL, NULL, "A", T0), CASE_GUARD);
  assert_int_equal(case_engine_set_coverage(e, NULL), CASE_OK);
  assert_int_equal(case_instance_fire(c, "ask", NULL, NULL, "A", T0), CASE_GUARD);
  rep = report_json(cov);
  g = json_array_get(json_object_get(json_object_get(only_def(rep), "guards"), "untested"), 0);
  assert_int_equal(num(g, "false", NULL), 1);
  json_decref(rep);
  case_engine_close(e);
  case_coverage_close(cov);
}

static void report_misuse(void **state) {
  (void)state;
  char *s = (char *)"x";
  assert_int_equal(case_coverage_report(NULL, CASE_COVERAGE_TEXT, &s), CASE_MISUSE);
  assert_null(s);
  case_coverage *cov = NULL;
  assert_int_equal(case_coverage_open(&cov), CASE_OK);
  assert_int_equal(case_coverage_report(cov, 7, &s), CASE_MISUSE);
  assert_int_equal(case_coverage_report(cov, CASE_COVERAGE_JSON, NULL), CASE_MISUSE);
  assert_int_equal(case_coverage_report(cov, CASE_COVERAGE_TEXT, &s), CASE_OK);
  assert_string_equal(s, ""); /* nothing seen yet */
  case_free(s);
  assert_int_equal(case_coverage_open(NULL), CASE_MISUSE);
  assert_int_equal(case_engine_set_coverage(NULL, cov), CASE_MISUSE);
  case_coverage_close(cov);
  case_coverage_close(NULL);
}

/* ---- skeletons ---- */

static const case_def *load_fixture(case_engine *e) {
  const case_def *d = NULL;
  if (case_def_load_file(e, DATA "fixture.yaml", &d) != CASE_OK) fail_msg("%s", case_errmsg(e));
  return d;
}

static char *skeleton(case_engine *e, const case_def *d, int line, int col) {
  char *y = NULL;
  int rc = case_coverage_skeleton(e, d, line, col, DATA "fixture.yaml", NULL, T0, &y);
  if (rc != CASE_OK) fail_msg("skeleton %d:%d: %s", line, col, case_errmsg(e));
  return y;
}

/* Replaces the first `from` in *s by `to` (the test filling in a TODO). */
static void fill(char **s, const char *from, const char *to) {
  char *at = strstr(*s, from);
  if (!at) fail_msg("'%s' not in the skeleton:\n%s", from, *s);
  size_t n = strlen(*s) - strlen(from) + strlen(to) + 1;
  char *r = malloc(n);
  assert_non_null(r);
  memcpy(r, *s, (size_t)(at - *s));
  strcpy(r + (at - *s), to);
  strcat(r, at + strlen(from));
  free(*s);
  *s = r;
}

static char *dup_lib(char *s) {
  char *r = strdup(s);
  case_free(s);
  return r;
}

/* Runs a skeleton (written to a temporary file) with coverage; returns the report. */
static json_t *run_skeleton(const char *yaml) {
  char path[] = "/tmp/libcase-skeleton-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs(yaml, f);
  fclose(f);
  case_coverage *cov = NULL;
  assert_int_equal(case_coverage_open(&cov), CASE_OK);
  case_engine *e = engine(cov);
  int failures = -1;
  char *report = NULL;
  int rc = case_scenario_run_file(e, path, &failures, &report);
  if (rc != CASE_OK) fail_msg("the skeleton does not run: %s\n%s", case_errmsg(e), yaml);
  if (failures) fail_msg("%s\n%s", report, yaml);
  case_free(report);
  unlink(path);
  json_t *rep = report_json(cov);
  case_engine_close(e);
  case_coverage_close(cov);
  return rep;
}

/* odd (27:7) needs go with its guard true, then odd with n > 5. */
static void skeleton_through_guards(void **state) {
  (void)state;
  case_engine *e = engine(NULL);
  const case_def *d = load_fixture(e);
  char *y = dup_lib(skeleton(e, d, 27, 7));
  assert_non_null(strstr(y, "workflow: \"" DATA "fixture.yaml\"\nversion: 1\nstart: \"2026-03-02\"\n"));
  assert_non_null(strstr(y, "  - event: go\n    role: A\n"));
  assert_non_null(strstr(y, "  - event: odd\n    role: B\n"));
  assert_non_null(strstr(y, "guard 'event.data ~= nil and event.data.ok == true' (" DATA
                            "fixture.yaml:16:16) must be true"));
  assert_non_null(strstr(y, "guard 'case.n > 5' (" DATA "fixture.yaml:27:32) must be true"));
  assert_non_null(strstr(y, "this step takes the target transition\n"
                            "    configuration: {includes: [done]}\n"));
  assert_null(strstr(y, "tick:"));
  /* As generated, go's guard is false: the skeleton runs, its first step fails. */
  fill(&y, "data: {}  # TODO", "data: {n: 6}  # TODO");
  fill(&y, "payload: {}  # TODO", "payload: {ok: true}  # TODO");
  json_t *rep = run_skeleton(y);
  json_t *x = only_def(rep);
  assert_false(untested_at(x, "transitions", 27, 7)); /* the target was taken */
  assert_false(untested_at(x, "transitions", 34, 9)); /* and hidden's eventless one after it */
  assert_false(untested_at(x, "states", 32, 3));
  json_decref(rep);
  free(y);
  case_engine_close(e);
}

/* retry (31:10) needs termijn to run out: a tick to the day after its last day. */
static void skeleton_through_a_term(void **state) {
  (void)state;
  case_engine *e = engine(NULL);
  const case_def *d = load_fixture(e);
  char *y = dup_lib(skeleton(e, d, 31, 10));
  /* termijn: 3 days plain from Mon 2 Mar (day 1 Tue 3, day 3 Thu 5): runs out at the
   * start of Fri 6 Mar, so the tick goes to 6 Mar (10:00). */
  assert_non_null(strstr(y, "  - tick: \"2026-03-06\"\n    # term 'termijn' of 'wait' (" DATA
                            "fixture.yaml:21:7) runs out: last day 2026-03-05"));
  assert_non_null(strstr(y, "  - event: retry\n    role: A\n    date: \"2026-03-06\""));
  fill(&y, "payload: {}  # TODO", "payload: {ok: true}  # TODO");
  json_t *rep = run_skeleton(y);
  json_t *x = only_def(rep);
  assert_false(untested_at(x, "transitions", 31, 10));
  assert_int_equal(num(x, "deadlines", "ran_out"), 1);
  json_decref(rep);
  free(y);
  case_engine_close(e);
}

static void skeleton_errors(void **state) {
  (void)state;
  case_engine *e = engine(NULL);
  const case_def *d = load_fixture(e);
  char *y = (char *)"x";
  /* Three transitions on line 31. */
  assert_int_equal(case_coverage_skeleton(e, d, 31, 0, NULL, NULL, T0, &y), CASE_INVALID);
  assert_null(y);
  assert_non_null(strstr(case_errmsg(e), "fixture.yaml:31: 3 transitions on this line (at 31:10, "
                                         "31:45, 31:61): give the column"));
  /* poke.* always takes poke first. */
  assert_int_equal(case_coverage_skeleton(e, d, 31, 61, NULL, NULL, T0, &y), CASE_NOTFOUND);
  assert_non_null(strstr(case_errmsg(e), "fixture.yaml:31:61: no event path from the initial "
                                         "configuration takes the transition on 'poke' from "
                                         "'late' to 'done'"));
  assert_int_equal(case_coverage_skeleton(e, d, 5, 0, NULL, NULL, T0, &y), CASE_NOTFOUND);
  assert_non_null(strstr(case_errmsg(e), "fixture.yaml:5:1: no transition of workflow "
                                         "'cov_fixture' version 1 here"));
  assert_int_equal(case_coverage_skeleton(e, NULL, 31, 10, NULL, NULL, T0, &y), CASE_MISUSE);
  assert_int_equal(case_coverage_skeleton(NULL, d, 31, 10, NULL, NULL, T0, &y), CASE_MISUSE);
  case_engine *other = engine(NULL);
  assert_int_equal(case_coverage_skeleton(other, d, 31, 10, NULL, NULL, T0, &y), CASE_MISUSE);
  case_engine_close(other);
  /* A coverage set on the engine is left as it was. */
  case_coverage *cov = NULL;
  assert_int_equal(case_coverage_open(&cov), CASE_OK);
  assert_int_equal(case_engine_set_coverage(e, cov), CASE_OK);
  y = skeleton(e, d, 31, 10);
  case_free(y);
  json_t *rep = report_json(cov);
  assert_int_equal(num(only_def(rep), "cases", NULL), 0);
  assert_int_equal(num(only_def(rep), "states", "covered"), 0);
  json_decref(rep);
  case_coverage_close(cov);
  case_engine_close(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(one_scenario_exact),
      cmocka_unit_test(merged_over_engines),
      cmocka_unit_test(failures_count_nothing),
      cmocka_unit_test(report_misuse),
      cmocka_unit_test(skeleton_through_guards),
      cmocka_unit_test(skeleton_through_a_term),
      cmocka_unit_test(skeleton_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
