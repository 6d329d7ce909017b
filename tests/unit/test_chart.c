/* Statechart semantics through the public API (SCXML Appendix D behaviour). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "libcase/libcase.h"

/* 2026-03-02T09:00:00Z, a Monday. */
#define T0 INT64_C(1772442000)
#define DAY INT64_C(86400)

typedef struct fx {
  case_engine *e;
  const case_def *d;
  case_instance *c;
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  assert_int_equal(case_engine_open(&f->e), CASE_OK);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  case_engine_close(f->e);
  free(f);
  return 0;
}

static void load(fx *f, const char *yaml) {
  int rc = case_def_load_string(f->e, yaml, strlen(yaml), "test.yaml", &f->d);
  if (rc != CASE_OK) fail_msg("load failed: %s", case_errmsg(f->e));
}

static void create(fx *f, const char *data) {
  int rc = case_instance_create(f->e, f->d, "c1", NULL, data, T0, &f->c);
  if (rc != CASE_OK) fail_msg("create failed: %s", case_errmsg(f->e));
}

static void fire_ok(fx *f, const char *ev, const char *role) {
  int rc = case_instance_fire(f->c, ev, NULL, "tester", role, T0);
  if (rc != CASE_OK) fail_msg("fire %s failed (%d): %s", ev, rc, case_errmsg(f->e));
}

static void assert_config(fx *f, const char *expected) {
  char *cfg = NULL;
  assert_int_equal(case_instance_configuration(f->c, &cfg), CASE_OK);
  assert_string_equal(cfg, expected);
  case_free(cfg);
}

/* The value of data field `field` as compact JSON. */
static char *field(fx *f, const char *name) {
  char *data = NULL;
  assert_int_equal(case_instance_data(f->c, &data), CASE_OK);
  char key[64];
  snprintf(key, sizeof key, "\"%s\":", name);
  const char *k = strstr(data, key);
  assert_non_null(k);
  k += strlen(key);
  const char *end = k;
  if (*end == '"') {
    end = strchr(end + 1, '"') + 1;
  } else {
    while (*end && *end != ',' && *end != '}') end++;
  }
  char *v = strndup(k, (size_t)(end - k));
  case_free(data);
  return v;
}

static void assert_field(fx *f, const char *name, const char *expected) {
  char *v = field(f, name);
  assert_string_equal(v, expected);
  free(v);
}

/* ---- hierarchy, entry/exit order ---- */

static const char *HIER =
    "workflow: hier\n"
    "version: 1\n"
    "roles: [IND]\n"
    "data:\n"
    "  trace: {type: string, default: ''}\n"
    "initial: a\n"
    "states:\n"
    "  a:\n"
    "    initial: a1\n"
    "    entry: case.trace = case.trace .. ' +a'\n"
    "    exit: case.trace = case.trace .. ' -a'\n"
    "    on:\n"
    "      up: b\n"
    "    states:\n"
    "      a1:\n"
    "        entry: case.trace = case.trace .. ' +a1'\n"
    "        exit: case.trace = case.trace .. ' -a1'\n"
    "        on:\n"
    "          next: {target: a2, actions: [\"case.trace = case.trace .. ' t'\"]}\n"
    "      a2:\n"
    "        entry: case.trace = case.trace .. ' +a2'\n"
    "        exit: case.trace = case.trace .. ' -a2'\n"
    "  b:\n"
    "    initial: b1\n"
    "    entry: case.trace = case.trace .. ' +b'\n"
    "    states:\n"
    "      b1:\n"
    "        entry: case.trace = case.trace .. ' +b1'\n"
    "        on:\n"
    "          done: end\n"
    "  end: {final: true}\n";

static void test_entry_exit_order(void **state) {
  fx *f = *state;
  load(f, HIER);
  create(f, NULL);
  assert_config(f, "[\"a\",\"a1\"]");
  assert_field(f, "trace", "\" +a +a1\"");
  fire_ok(f, "next", "IND");
  assert_config(f, "[\"a\",\"a2\"]");
  /* exit source child, transition content, entry of target; parent untouched */
  assert_field(f, "trace", "\" +a +a1 -a1 t +a2\"");
  /* A transition of the parent is taken from the child: innermost exits first. */
  fire_ok(f, "up", "IND");
  assert_config(f, "[\"b\",\"b1\"]");
  assert_field(f, "trace", "\" +a +a1 -a1 t +a2 -a2 -a +b +b1\"");
  assert_int_equal(case_instance_revision(f->c), 2);
  fire_ok(f, "done", "IND");
  assert_int_equal(case_instance_done(f->c), 1);
  assert_int_equal(case_instance_fire(f->c, "up", NULL, NULL, "IND", T0), CASE_DONE);
}

/* ---- priority: deepest source first, then document order ---- */

static void test_priority(void **state) {
  fx *f = *state;
  load(f,
       "workflow: prio\nversion: 1\n"
       "data: {who: {type: string}}\n"
       "initial: p\n"
       "states:\n"
       "  p:\n"
       "    initial: c\n"
       "    on:\n"
       "      go: {target: x, actions: [case.who = 'parent']}\n"
       "    states:\n"
       "      c:\n"
       "        on:\n"
       "          go:\n"
       "            - {guard: 'false', target: y, actions: [case.who = 'child-false']}\n"
       "            - {target: y, actions: [case.who = 'child-first']}\n"
       "            - {target: x, actions: [case.who = 'child-second']}\n"
       "      y: {on: {back: c}}\n"
       "  x: {}\n");
  create(f, NULL);
  fire_ok(f, "go", NULL);
  assert_field(f, "who", "\"child-first\"");
  assert_config(f, "[\"p\",\"y\"]");
  /* In y the child has no `go`: the parent's transition is taken. */
  fire_ok(f, "go", NULL);
  assert_field(f, "who", "\"parent\"");
  assert_config(f, "[\"x\"]");
}

/* ---- parallel regions and done.state ---- */

static const char *PAR =
    "workflow: par\nversion: 1\n"
    "data: {n: {type: integer, default: 0}}\n"
    "initial: both\n"
    "states:\n"
    "  both:\n"
    "    parallel: true\n"
    "    on:\n"
    "      done.state.both: after\n"
    "    states:\n"
    "      left:\n"
    "        initial: l1\n"
    "        states:\n"
    "          l1: {on: {tick: l2}}\n"
    "          l2: {on: {finish: ldone}}\n"
    "          ldone: {final: true}\n"
    "      right:\n"
    "        initial: r1\n"
    "        states:\n"
    "          r1: {on: {tick: r2}}\n"
    "          r2: {on: {finish: rdone}}\n"
    "          rdone: {final: true}\n"
    "  after:\n"
    "    entry: case.n = case.n + 1\n";

static void test_parallel_done(void **state) {
  fx *f = *state;
  load(f, PAR);
  create(f, NULL);
  assert_config(f, "[\"both\",\"left\",\"l1\",\"right\",\"r1\"]");
  /* One event, a transition in each region. */
  fire_ok(f, "tick", NULL);
  assert_config(f, "[\"both\",\"left\",\"l2\",\"right\",\"r2\"]");
  /* Both regions reach final states: done.state.left, .right, then .both */
  fire_ok(f, "finish", NULL);
  assert_config(f, "[\"after\"]");
  assert_field(f, "n", "1");
}

/* ---- history ---- */

static const char *HIST =
    "workflow: hist\nversion: 1\n"
    "initial: work\n"
    "states:\n"
    "  work:\n"
    "    initial: s1\n"
    "    on: {pause: paused}\n"
    "    states:\n"
    "      h: {history: shallow, default: s1}\n"
    "      hd: {history: deep, default: s1}\n"
    "      s1: {on: {next: s2}}\n"
    "      s2:\n"
    "        initial: s2a\n"
    "        states:\n"
    "          s2a: {on: {next: s2b}}\n"
    "          s2b: {}\n"
    "  paused:\n"
    "    on:\n"
    "      resume: h\n"
    "      resume_deep: hd\n";

static void test_history(void **state) {
  fx *f = *state;
  load(f, HIST);
  create(f, NULL);
  /* First entry via history uses the default. */
  fire_ok(f, "pause", NULL);
  fire_ok(f, "resume", NULL);
  assert_config(f, "[\"work\",\"s1\"]");
  fire_ok(f, "next", NULL);
  fire_ok(f, "next", NULL);
  assert_config(f, "[\"work\",\"s2\",\"s2b\"]");
  /* Shallow: s2 is restored, its own initial s2a is entered. */
  fire_ok(f, "pause", NULL);
  fire_ok(f, "resume", NULL);
  assert_config(f, "[\"work\",\"s2\",\"s2a\"]");
  /* Deep: the exact leaf is restored. */
  fire_ok(f, "next", NULL);
  fire_ok(f, "pause", NULL);
  fire_ok(f, "resume_deep", NULL);
  assert_config(f, "[\"work\",\"s2\",\"s2b\"]");
}

/* ---- eventless transitions and internal events ---- */

static void test_eventless_chain_and_internal_events(void **state) {
  fx *f = *state;
  load(f,
       "workflow: ev\nversion: 1\n"
       "data:\n"
       "  score: {type: integer, default: 0}\n"
       "  trace: {type: string, default: ''}\n"
       "initial: start\n"
       "states:\n"
       "  start:\n"
       "    on:\n"
       "      go:\n"
       "        target: a\n"
       "        actions:\n"
       "          - raise('second')\n"
       "          - raise('third')\n"
       "          - case.trace = case.trace .. ' go'\n"
       "  a:\n"
       "    always:\n"
       "      - {guard: case.score > 5, target: high}\n"
       "      - {target: b}\n"
       "  b:\n"
       "    on:\n"
       "      second: {actions: [\"case.trace = case.trace .. ' second'\"]}\n"
       "      third: {target: c, actions: [\"case.trace = case.trace .. ' third'\"]}\n"
       "  c: {}\n"
       "  high: {}\n");
  create(f, NULL);
  fire_ok(f, "go", NULL);
  /* a -> b eventlessly before the internal events, which run in order. */
  assert_config(f, "[\"c\"]");
  assert_field(f, "trace", "\" go second third\"");
  assert_int_equal(case_instance_revision(f->c), 1);
}

static void test_eventless_loop_is_bounded(void **state) {
  fx *f = *state;
  load(f,
       "workflow: loop\nversion: 1\n"
       "data: {n: {type: integer, default: 0}}\n"
       "initial: s\n"
       "states:\n"
       "  s: {on: {spin: x}}\n"
       "  x: {always: [{target: y, actions: [case.n = case.n + 1]}]}\n"
       "  y: {always: [{target: x}]}\n");
  create(f, NULL);
  case_engine_limit(f->e, CASE_LIMIT_MICROSTEPS, 50);
  assert_int_equal(case_instance_fire(f->c, "spin", NULL, NULL, NULL, T0), CASE_LIMIT);
  assert_non_null(strstr(case_errmsg(f->e), "more than 50 microsteps"));
  /* Nothing of the failed macrostep remains. */
  assert_config(f, "[\"s\"]");
  assert_field(f, "n", "0");
  assert_int_equal(case_instance_revision(f->c), 0);
}

/* Issue 12.1: timers that keep running out are bounded per case per tick or
 * fire (CASE_LIMIT_EXPIRIES); past it the case is left as it was. */
static int notified;
static void count_notify(void *ud, const case_instance *c, const char *name, const char *p) {
  (void)ud, (void)c, (void)name, (void)p;
  notified++;
}

static void test_expiry_loop_is_bounded(void **state) {
  fx *f = *state;
  load(f,
       "workflow: loop\nversion: 1\nroles: [IND]\n"
       "data: {n: {type: integer, default: 0}}\n"
       "initial: s\n"
       "states:\n"
       "  s:\n"
       "    after: [{delay: 0 seconds, target: s, actions: [\"case.n = case.n + 1\", "
       "\"emit('tik')\"]}]\n"
       "    on: {stop: t}\n"
       "  t: {final: true}\n");
  create(f, NULL);
  case_engine_set_notify(f->e, count_notify, NULL);
  case_engine_limit(f->e, CASE_LIMIT_EXPIRIES, 20);
  notified = 0;
  int fired = -1;
  assert_int_equal(case_instance_tick(f->c, T0 + 1, &fired), CASE_LIMIT);
  assert_non_null(strstr(case_errmsg(f->e), "case 'c1': more than 20 timer expiries in one "
                                            "tick ('after.s.0' of state 's'"));
  assert_int_equal(fired, 0);
  assert_field(f, "n", "0");
  assert_int_equal(case_instance_revision(f->c), 0);
  assert_int_equal(notified, 0); /* nothing is told of what was not kept */
  char *timers = NULL;
  assert_int_equal(case_instance_timers(f->c, &timers), CASE_OK);
  assert_non_null(strstr(timers, "\"id\":\"t1\""));
  case_free(timers);
  /* fire runs the due timers first: the same limit, the case unchanged. */
  assert_int_equal(case_instance_fire(f->c, "stop", NULL, "x", "IND", T0 + 1), CASE_LIMIT);
  assert_non_null(strstr(case_errmsg(f->e), "in one fire"));
  assert_config(f, "[\"s\"]");
  assert_int_equal(case_instance_revision(f->c), 0);
  assert_int_equal(notified, 0);
  /* A tick within the limit keeps what it fired: a timer due at T0 + 1 that
   * is re-entered stays due, so 20 fit only with a higher limit. */
  assert_int_equal(case_engine_limit(f->e, CASE_LIMIT_EXPIRIES, 0), 20);
  assert_int_equal(case_engine_limit(f->e, CASE_LIMIT_EXPIRIES, -1), 1); /* 0 is raised to 1 */
}

/* A failing timer before an event leaves the case as it was (fire's contract). */
static void test_fire_timer_failure_leaves_case(void **state) {
  fx *f = *state;
  load(f,
       "workflow: tf\nversion: 1\nroles: [IND]\n"
       "data: {n: {type: integer, default: 0}}\n"
       "initial: s\n"
       "states:\n"
       "  s:\n"
       "    after:\n"
       "      - {delay: 1 hour, target: u, actions: [case.n = case.n + 1]}\n"
       "    on: {x: t}\n"
       "  u:\n"
       "    after:\n"
       "      - {delay: 1 hour, target: t, actions: [\"error('stuk')\"]}\n"
       "    on: {x: t}\n"
       "  t: {final: true}\n");
  create(f, NULL);
  assert_int_equal(case_instance_fire(f->c, "x", NULL, "x", "IND", T0 + 3 * 3600), CASE_SCRIPT);
  assert_config(f, "[\"s\"]");
  assert_field(f, "n", "0");
  assert_int_equal(case_instance_revision(f->c), 0);
}

/* Issue 12.4: a runtime error in a one-line guard is reported on the guard's
 * line (Lua puts the failing index on the line of the closing ")" the guard is
 * wrapped in), and one in a double-quoted guard with \n escapes on the YAML
 * line it is on, not as many lines below as there are escapes. */
static void test_runtime_error_positions(void **state) {
  fx *f = *state;
  load(f,
       "workflow: pos\nversion: 1\nroles: [IND]\n"
       "data: {m: {type: map}, n: {type: integer, default: 0}}\n"
       "initial: s\n"
       "states:\n"
       "  s:\n"
       "    on:\n"
       "      een: {target: t, guard: case.m.x}\n"
       "      twee: {target: t, guard: \"case.n == 0 and\\n case.n < 1 and\\n case.m.y\"}\n"
       "  t: {final: true}\n");
  create(f, NULL);
  assert_int_equal(case_instance_fire(f->c, "een", NULL, "x", "IND", T0), CASE_SCRIPT);
  const char *m = case_errmsg(f->e);
  if (strncmp(m, "test.yaml:9:31: guard 'case.m.x' failed: ", 41) != 0)
    fail_msg("one-line guard: %s", m);
  assert_non_null(strstr(m, "attempt to index a nil value (field 'm')"));
  int line = 0, col = 0;
  assert_int_equal(case_errpos(f->e, NULL, &line, &col), CASE_OK);
  assert_int_equal(line, 9);
  assert_int_equal(case_instance_fire(f->c, "twee", NULL, "x", "IND", T0), CASE_SCRIPT);
  m = case_errmsg(f->e);
  /* Lua line 3 of the guard starts after the second \n escape, on line 10. */
  if (strncmp(m, "test.yaml:10:67: guard ", 23) != 0) fail_msg("double-quoted guard: %s", m);
  assert_int_equal(case_errpos(f->e, NULL, &line, &col), CASE_OK);
  assert_int_equal(line, 10);
  assert_int_equal(col, 67);
}

/* Issue 12.5/12.6: what a person is offered never holds the engine's own
 * events, and the _v2 questions know who asks and see the terms due by then. */
static void test_available_and_explain_with_actor(void **state) {
  fx *f = *state;
  int rc = case_def_load_file(f->e, CASE_TEST_DATA "/ask/ask.yaml", &f->d);
  if (rc != CASE_OK) fail_msg("load: %s", case_errmsg(f->e));
  create(f, NULL);
  char *j = NULL;
  /* done.state.zaak is open to every role but raised by the engine; verlopen
   * belongs to the clock: neither is offered. */
  assert_int_equal(case_instance_available(f->c, "COA", T0, &j), CASE_OK);
  assert_string_equal(j, "[{\"event\":\"klaar\",\"source\":\"open\",\"target\":[\"dicht\"]}]");
  case_free(j);
  /* besluit's guard reads event.actor: the old question cannot pass it. */
  assert_int_equal(case_instance_available(f->c, "IND", T0, &j), CASE_OK);
  assert_null(strstr(j, "besluit"));
  case_free(j);
  assert_int_equal(case_instance_available_v2(f->c, "IND", "ind-1", T0, &j), CASE_OK);
  assert_non_null(strstr(j, "\"besluit\""));
  assert_null(strstr(j, "done.state"));
  case_free(j);
  assert_int_equal(case_instance_available_v2(f->c, "IND", "ind-2", T0, &j), CASE_OK);
  assert_null(strstr(j, "besluit"));
  case_free(j);
  /* Three days on the term has run out: a fire then finds the case in te_laat. */
  int64_t later = T0 + 3 * DAY;
  assert_int_equal(case_instance_available_v2(f->c, "IND", "ind-1", later, &j), CASE_OK);
  assert_string_equal(j, "[{\"event\":\"heropen\",\"source\":\"te_laat\",\"target\":[\"zaak\"]}]");
  case_free(j);
  assert_config(f, "[\"zaak\",\"open\"]"); /* asking changed nothing */
  /* explain_v2: every blocker, with the actor and payload the guards see. */
  assert_int_equal(case_instance_explain_v2(f->c, "besluit", "IND", "ind-2", NULL, T0, &j),
                   CASE_OK);
  json_t *x = json_loads(j, 0, NULL);
  case_free(j);
  assert_false(json_is_true(json_object_get(x, "possible")));
  assert_string_equal(json_string_value(json_object_get(x, "actor")), "ind-2");
  json_t *b0 = json_array_get(json_object_get(x, "blockers"), 0);
  assert_string_equal(json_string_value(json_object_get(b0, "code")), "guard");
  json_decref(x);
  assert_int_equal(case_instance_explain_v2(f->c, "besluit", "IND", "ind-1", "{\"a\":1}", T0, &j),
                   CASE_OK);
  assert_non_null(strstr(j, "\"possible\":true"));
  case_free(j);
  assert_int_equal(case_instance_explain_v2(f->c, "besluit", "COA", "coa-1", NULL, T0, &j),
                   CASE_OK);
  assert_non_null(strstr(j, "\"code\":\"role\""));
  case_free(j);
  assert_int_equal(case_instance_explain_v2(f->c, "done.state.zaak", "IND", NULL, NULL, T0, &j),
                   CASE_OK);
  assert_non_null(strstr(j, "\"code\":\"reserved\""));
  case_free(j);
  assert_int_equal(case_instance_explain_v2(f->c, "klaar", "IND", NULL, NULL, later, &j), CASE_OK);
  assert_non_null(strstr(j, "\"code\":\"not_handled\"")); /* te_laat has no klaar */
  case_free(j);
  assert_int_equal(case_instance_explain_v2(f->c, "klaar", "IND", NULL, "{x", T0, &j),
                   CASE_INVALID);
  assert_null(j);
  /* The fire agrees with the answers. */
  assert_int_equal(case_instance_fire(f->c, "besluit", NULL, "ind-2", "IND", T0), CASE_GUARD);
  assert_int_equal(case_instance_fire(f->c, "besluit", NULL, "ind-1", "IND", T0), CASE_OK);
  assert_config(f, "[\"einde\"]");
  assert_int_equal(case_instance_explain_v2(f->c, "klaar", "IND", NULL, NULL, T0 - 1, &j), CASE_OK);
  assert_non_null(strstr(j, "\"code\":\"time\""));
  case_free(j);
}

/* ---- targetless and internal transitions ---- */

static void test_targetless_and_internal(void **state) {
  fx *f = *state;
  load(f,
       "workflow: tl\nversion: 1\n"
       "data: {trace: {type: string, default: ''}}\n"
       "initial: p\n"
       "states:\n"
       "  p:\n"
       "    initial: p1\n"
       "    entry: case.trace = case.trace .. ' +p'\n"
       "    exit: case.trace = case.trace .. ' -p'\n"
       "    on:\n"
       "      note: {actions: [\"case.trace = case.trace .. ' note'\"]}\n"
       "      inner: {target: p2, type: internal}\n"
       "      outer: {target: p2}\n"
       "    states:\n"
       "      p1: {}\n"
       "      p2: {}\n");
  create(f, NULL);
  fire_ok(f, "note", NULL);
  assert_field(f, "trace", "\" +p note\"");
  assert_config(f, "[\"p\",\"p1\"]");
  fire_ok(f, "inner", NULL); /* p is not exited */
  assert_field(f, "trace", "\" +p note\"");
  assert_config(f, "[\"p\",\"p2\"]");
  fire_ok(f, "outer", NULL); /* external: p is exited and entered again */
  assert_field(f, "trace", "\" +p note -p +p\"");
}

/* A targetless transition enters nothing, also when another transition of
 * the same microstep has targets (found by a tester: the ancestors of the
 * other's targets were entered again). */
static void test_targetless_beside_targeted(void **state) {
  fx *f = *state;
  load(f,
       "workflow: b2\nversion: 1\n"
       "data: {n: {type: integer, default: 0}}\n"
       "initial: p\n"
       "states:\n"
       "  p:\n"
       "    parallel: true\n"
       "    entry: case.n = case.n + 1\n"
       "    states:\n"
       "      r1: {initial: r1a, states: {r1a: {on: {e: r1b}}, r1b: {on: {e: r1a}}}}\n"
       "      r2: {initial: r2a, states: {r2a: {on: {g: r2b}}, "
       "r2b: {on: {e: {actions: 'emit(\"t\")'}, g: r2a}}}}\n");
  create(f, NULL);
  fire_ok(f, "g", NULL);
  fire_ok(f, "e", NULL);
  assert_config(f, "[\"p\",\"r1\",\"r1b\",\"r2\",\"r2b\"]");
  assert_field(f, "n", "1");
}

/* ... and across microsteps: an internal event handled targetlessly after a
 * targeted transition does not re-enter (and restart the deadline of) the
 * target's parent. */
static void test_targetless_after_targeted_microstep(void **state) {
  fx *f = *state;
  load(f,
       "workflow: b1\nversion: 1\n"
       "data: {n: {type: integer, default: 0}}\n"
       "initial: c\n"
       "states:\n"
       "  c:\n"
       "    initial: c1\n"
       "    entry: case.n = case.n + 1\n"
       "    deadlines: {term: {after: 10 days, on_expiry: late}}\n"
       "    on: {late: c}\n"
       "    states:\n"
       "      c1: {on: {go: {target: c2, actions: 'raise(\"t\")'}}}\n"
       "      c2: {on: {t: {actions: 'emit(\"x\")'}}}\n");
  create(f, NULL);
  fire_ok(f, "go", NULL);
  assert_field(f, "n", "1");
  char *tj = NULL;
  assert_int_equal(case_instance_timers(f->c, &tj), CASE_OK);
  assert_non_null(strstr(tj, "\"id\":\"t1\""));
  assert_null(strstr(tj, "\"id\":\"t2\""));
  case_free(tj);
}

/* ---- event descriptors ---- */

static void test_event_prefix_match(void **state) {
  fx *f = *state;
  load(f,
       "workflow: pm\nversion: 1\n"
       "data: {last: {type: string}}\n"
       "initial: s\n"
       "states:\n"
       "  s:\n"
       "    on:\n"
       "      signaal: {actions: [case.last = event.name]}\n"
       "      '*': {actions: [\"case.last = 'any'\"]}\n");
  create(f, NULL);
  fire_ok(f, "signaal.coa", NULL);
  assert_field(f, "last", "\"signaal.coa\"");
  fire_ok(f, "signaalx", NULL); /* not a token prefix: only '*' matches */
  assert_field(f, "last", "\"any\"");
}

/* ---- roles, guards, refusals, explain, available ---- */

static const char *ROLES =
    "workflow: roles\nversion: 1\n"
    "roles: [IND, AVIM, COA]\n"
    "data:\n"
    "  incidentrapport: {type: string}\n"
    "  n: {type: integer, default: 0}\n"
    "initial: aanmelding\n"
    "states:\n"
    "  aanmelding:\n"
    "    on:\n"
    "      geregistreerd: {target: rust_en_voorbereiding, roles: [AVIM]}\n"
    "  rust_en_voorbereiding:\n"
    "    on:\n"
    "      rvt_onthouden:\n"
    "        target: procedure\n"
    "        roles: [IND]\n"
    "        guard: case.incidentrapport ~= nil\n"
    "      incident: {roles: [COA], actions: [case.incidentrapport = event.data.id]}\n"
    "      fout: {roles: [IND], actions: [case.n = 99, error('kapot')]}\n"
    "  procedure: {}\n";

static void test_roles_and_refusals(void **state) {
  fx *f = *state;
  load(f, ROLES);
  assert_int_equal(case_def_role_count(f->d), 3);
  assert_string_equal(case_def_role(f->d, 1), "AVIM");
  assert_int_equal(case_def_state_count(f->d), 3);
  assert_string_equal(case_def_state_id(f->d, 2), "procedure");
  create(f, NULL);
  assert_int_equal(case_instance_fire(f->c, "geregistreerd", NULL, "x", "IND", T0), CASE_DENIED);
  assert_non_null(strstr(case_errmsg(f->e), "AVIM"));
  assert_int_equal(case_instance_fire(f->c, "geregistreerd", NULL, "x", "KMAR", T0), CASE_DENIED);
  assert_non_null(strstr(case_errmsg(f->e), "not declared"));
  assert_int_equal(case_instance_fire(f->c, "onbekend", NULL, "x", "IND", T0), CASE_NOTHANDLED);
  assert_int_equal(case_instance_revision(f->c), 0);
  fire_ok(f, "geregistreerd", "AVIM");

  /* guard false */
  assert_int_equal(case_instance_fire(f->c, "rvt_onthouden", NULL, "x", "IND", T0), CASE_GUARD);
  assert_non_null(strstr(case_errmsg(f->e), "case.incidentrapport ~= nil"));

  /* explain lists the blocker with the guard's position */
  char *why = NULL;
  assert_int_equal(case_instance_explain(f->c, "rvt_onthouden", "IND", T0, &why), CASE_OK);
  assert_non_null(strstr(why, "\"possible\":false"));
  assert_non_null(strstr(why, "\"code\":\"guard\""));
  assert_non_null(strstr(why, "\"line\":17"));
  case_free(why);
  assert_int_equal(case_instance_explain(f->c, "rvt_onthouden", "COA", T0, &why), CASE_OK);
  assert_non_null(strstr(why, "\"code\":\"role\""));
  assert_non_null(strstr(why, "\"allowed\":[\"IND\"]"));
  case_free(why);

  /* what may each role do now? */
  char *av = NULL;
  assert_int_equal(case_instance_available(f->c, "COA", T0, &av), CASE_OK);
  assert_string_equal(av, "[{\"event\":\"incident\",\"source\":\"rust_en_voorbereiding\","
                          "\"target\":[]}]");
  case_free(av);
  assert_int_equal(case_instance_available(f->c, "IND", T0, &av), CASE_OK);
  assert_string_equal(av, "[{\"event\":\"fout\",\"source\":\"rust_en_voorbereiding\","
                          "\"target\":[]}]");
  case_free(av);

  assert_int_equal(case_instance_fire(f->c, "incident", "{\"id\":\"IR-7\"}", "coa1", "COA", T0),
                   CASE_OK);
  assert_int_equal(case_instance_explain(f->c, "rvt_onthouden", "IND", T0, &why), CASE_OK);
  assert_string_equal(why, "{\"event\":\"rvt_onthouden\",\"role\":\"IND\",\"possible\":true,"
                           "\"blockers\":[]}");
  case_free(why);

  /* An action that errors after changing data: the case is left as it was. */
  int64_t rev = case_instance_revision(f->c);
  assert_int_equal(case_instance_fire(f->c, "fout", NULL, "x", "IND", T0), CASE_SCRIPT);
  assert_non_null(strstr(case_errmsg(f->e), "kapot"));
  assert_non_null(strstr(case_errmsg(f->e), "test.yaml:19:"));
  const char *file = NULL;
  int line = 0, col = 0;
  assert_int_equal(case_errpos(f->e, &file, &line, &col), CASE_OK);
  assert_string_equal(file, "test.yaml");
  assert_int_equal(line, 19);
  assert_field(f, "n", "0");
  assert_int_equal(case_instance_revision(f->c), rev);

  fire_ok(f, "rvt_onthouden", "IND");
  assert_config(f, "[\"procedure\"]");
  assert_field(f, "incidentrapport", "\"IR-7\"");
}

/* ---- notifications ---- */

typedef struct notes {
  int n;
  char last[128];
} notes;

static void on_note(void *ud, const case_instance *c, const char *name, const char *payload) {
  notes *ns = ud;
  ns->n++;
  snprintf(ns->last, sizeof ns->last, "%s %s %s", case_instance_id(c), name, payload);
}

static void test_notifications_after_commit(void **state) {
  fx *f = *state;
  notes ns = {0, ""};
  case_engine_set_notify(f->e, on_note, &ns);
  load(f,
       "workflow: nt\nversion: 1\n"
       "initial: s\n"
       "states:\n"
       "  s:\n"
       "    on:\n"
       "      ok: {actions: [\"emit('beschikking', {soort = 'afwijzing'})\"]}\n"
       "      bad: {actions: [\"emit('nooit')\", error('stop')]}\n");
  create(f, NULL);
  assert_int_equal(case_instance_fire(f->c, "bad", NULL, NULL, NULL, T0), CASE_SCRIPT);
  assert_int_equal(ns.n, 0);
  fire_ok(f, "ok", NULL);
  assert_int_equal(ns.n, 1);
  assert_string_equal(ns.last, "c1 beschikking {\"soort\":\"afwijzing\"}");
}

/* ---- native guards and actions ---- */

static int native_guard(void *ud, case_call *call, int *result) {
  const char *n = case_call_get(call, "n");
  /* Every string handed out stays valid until the callback returns. */
  const char *all = case_call_get(call, NULL);
  const char *payload = case_call_payload(call);
  if (!n || !all || !payload || strstr(all, "\"n\":") == NULL) return CASE_ERROR;
  *result = atoi(n) >= *(int *)ud;
  return CASE_OK;
}

static int native_bad_code(void *ud, case_call *call) {
  (void)ud;
  (void)call;
  return 12345;
}

static int native_action(void *ud, case_call *call) {
  (void)ud;
  const char *n = case_call_get(call, "n");
  char buf[32];
  snprintf(buf, sizeof buf, "%d", atoi(n) + 10);
  int rc = case_call_set(call, "n", buf);
  if (rc == CASE_OK) rc = case_call_set(call, "n", "\"not an integer\"") == CASE_INVALID ? CASE_OK : CASE_ERROR;
  if (rc == CASE_OK) rc = case_call_set(call, "onbekend", "1") == CASE_NOTFOUND ? CASE_OK : CASE_ERROR;
  return rc;
}

static void test_native_guard_and_action(void **state) {
  fx *f = *state;
  int threshold = 10;
  assert_int_equal(case_engine_register_guard(f->e, "genoeg", native_guard, &threshold), CASE_OK);
  assert_int_equal(case_engine_register_action(f->e, "ophogen", native_action, NULL), CASE_OK);
  assert_int_equal(case_engine_register_guard(f->e, "not valid", native_guard, NULL), CASE_INVALID);
  assert_int_equal(case_engine_register_guard(f->e, "true", native_guard, NULL), CASE_INVALID);
  assert_int_equal(case_engine_register_action(f->e, "vreemd", native_bad_code, NULL), CASE_OK);
  load(f,
       "workflow: nat\nversion: 1\n"
       "data: {n: {type: integer, default: 0}}\n"
       "initial: s\n"
       "states:\n"
       "  s:\n"
       "    on:\n"
       "      plus: {actions: [ophogen]}\n"
       "      raar: {actions: [vreemd]}\n"
       "      klaar: {guard: genoeg, target: t}\n"
       "  t: {}\n");
  create(f, NULL);
  assert_int_equal(case_instance_fire(f->c, "klaar", NULL, NULL, NULL, T0), CASE_GUARD);
  fire_ok(f, "plus", NULL);
  assert_field(f, "n", "10");
  /* A native action returning something that is not a result code: CASE_ERROR. */
  assert_int_equal(case_instance_fire(f->c, "raar", NULL, NULL, NULL, T0), CASE_ERROR);
  assert_non_null(strstr(case_errmsg(f->e), "12345"));
  fire_ok(f, "klaar", NULL);
  assert_config(f, "[\"t\"]");
}

/* ---- timers ---- */

static void test_after_and_deadlines(void **state) {
  fx *f = *state;
  load(f,
       "workflow: tm\nversion: 1\n"
       "roles: [IND]\n"
       "params: {rvt_days: 6}\n"
       "initial: rvt\n"
       "states:\n"
       "  rvt:\n"
       "    after:\n"
       "      - {delay: '${rvt_days} days', target: aa}\n"
       "    on: {vroeg: {target: aa, roles: [IND]}}\n"
       "  aa:\n"
       "    deadlines:\n"
       "      beslistermijn: {after: 6 months, clock: plain, source: Vw 2000 art. 42 lid 1,\n"
       "                      on_expiry: verstreken}\n"
       "    on: {verstreken: te_laat}\n"
       "  te_laat: {}\n");
  create(f, NULL);
  char *tj = NULL;
  assert_int_equal(case_instance_timers(f->c, &tj), CASE_OK);
  /* T0 is Mon 2026-03-02 (10:00 Amsterdam); day 1 = Tue 03-03, day 6 = Sun 03-08;
     the term runs out at local midnight after it: 2026-03-09T00:00+01:00 = 2026-03-08T23:00Z. */
  assert_non_null(strstr(tj, "\"last_day\":\"2026-03-08\""));
  assert_non_null(strstr(tj, "\"due\":1773010800"));
  case_free(tj);
  int fired = -1;
  assert_int_equal(case_instance_tick(f->c, T0 + 5 * DAY, &fired), CASE_OK);
  assert_int_equal(fired, 0);
  assert_config(f, "[\"rvt\"]");
  assert_int_equal(case_instance_tick(f->c, INT64_C(1773010800), &fired), CASE_OK);
  assert_int_equal(fired, 1);
  assert_config(f, "[\"aa\"]");
  /* The deadline started at the timer's due time, local date 2026-03-09:
     6 months on the plain clock end on 2026-09-09. */
  assert_int_equal(case_instance_timers(f->c, &tj), CASE_OK);
  assert_non_null(strstr(tj, "\"name\":\"beslistermijn\""));
  assert_non_null(strstr(tj, "\"last_day\":\"2026-09-09\""));
  assert_non_null(strstr(tj, "\"source\":\"Vw 2000 art. 42 lid 1\""));
  case_free(tj);
  /* `verstreken` only listens to the deadline: the clock's, not a role's. */
  char *av = NULL;
  assert_int_equal(case_instance_available(f->c, "IND", T0, &av), CASE_OK);
  assert_string_equal(av, "[]");
  case_free(av);
  int64_t later = INT64_C(1773010800) + 60;
  assert_int_equal(case_instance_fire(f->c, "verstreken", NULL, "x", "IND", later), CASE_DENIED);
  assert_non_null(strstr(case_errmsg(f->e), "fired by a timer"));
  /* Not by a host firing as the system (NULL role) either: only the clock. */
  assert_int_equal(case_instance_fire(f->c, "verstreken", NULL, "x", NULL, later), CASE_DENIED);
  /* Time goes forward: an event before the case's last one is refused. */
  assert_int_equal(case_instance_fire(f->c, "verstreken", NULL, "x", "IND", T0), CASE_INVALID);
  assert_non_null(strstr(case_errmsg(f->e), "earlier than the case's last event"));
  /* A repeated tick fires nothing more. */
  assert_int_equal(case_instance_tick(f->c, INT64_C(1773010800), &fired), CASE_OK);
  assert_int_equal(fired, 0);
  assert_int_equal(case_instance_tick(f->c, T0 + 400 * DAY, &fired), CASE_OK);
  assert_int_equal(fired, 1);
  assert_config(f, "[\"te_laat\"]");
}

static void test_timer_cancelled_on_exit(void **state) {
  fx *f = *state;
  load(f,
       "workflow: tc\nversion: 1\n"
       "initial: rvt\n"
       "states:\n"
       "  rvt:\n"
       "    after: [{delay: 6 days, target: aa}]\n"
       "    on: {vroeg: klaar}\n"
       "  aa: {}\n"
       "  klaar: {}\n");
  create(f, NULL);
  fire_ok(f, "vroeg", NULL);
  char *tj = NULL;
  assert_int_equal(case_instance_timers(f->c, &tj), CASE_OK);
  assert_string_equal(tj, "[]");
  case_free(tj);
  int fired = -1;
  assert_int_equal(case_instance_tick(f->c, T0 + 30 * DAY, &fired), CASE_OK);
  assert_int_equal(fired, 0);
  assert_config(f, "[\"klaar\"]");
}

/* ---- snapshots ---- */

static void test_snapshot_roundtrip(void **state) {
  fx *f = *state;
  load(f, HIST);
  create(f, NULL);
  fire_ok(f, "next", NULL);
  fire_ok(f, "next", NULL);
  fire_ok(f, "pause", NULL);
  char *snap = NULL;
  assert_int_equal(case_instance_snapshot(f->c, &snap), CASE_OK);
  assert_non_null(strstr(snap, "\"history\":{\"h\":[\"s2\"],\"hd\":[\"s2b\"]}"));
  assert_int_equal(case_instance_restore(f->e, snap, &f->c), CASE_EXISTS);
  case_instance_free(case_instance_find(f->e, "c1"));
  assert_int_equal(case_instance_restore(f->e, snap, &f->c), CASE_OK);
  assert_config(f, "[\"paused\"]");
  assert_int_equal(case_instance_revision(f->c), 3);
  fire_ok(f, "resume_deep", NULL);
  assert_config(f, "[\"work\",\"s2\",\"s2b\"]");

  /* The same id and version without state s2: restore names the lost state. */
  case_engine *e2;
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  const char *v1b = "workflow: hist\nversion: 1\ninitial: paused\nstates:\n  paused: {}\n";
  assert_int_equal(case_def_load_string(e2, v1b, strlen(v1b), "b.yaml", NULL), CASE_OK);
  case_instance *c2 = NULL;
  assert_int_equal(case_instance_restore(e2, snap, &c2), CASE_NOTFOUND);
  assert_non_null(strstr(case_errmsg(e2), "history state 'h' no longer exists"));
  assert_null(c2);
  case_engine_close(e2);
  case_free(snap);
}

/* The data's JSON keeps the key order it always had (fields in declaration
 * order; a restored snapshot's own order), whatever the slots underneath. */
static char *replaced(const char *s, const char *from, const char *to);

static char *data_of(case_instance *c) {
  char *d = NULL;
  assert_int_equal(case_instance_data(c, &d), CASE_OK);
  return d;
}

static void test_snapshot_data_order(void **state) {
  fx *f = *state;
  load(f,
       "workflow: ord\nversion: 1\ninitial: a\n"
       "data:\n"
       "  n: {type: integer, default: 1}\n"
       "  lijst: {type: list, default: []}\n"
       "  naam: {type: string}\n"
       "states:\n"
       "  a:\n"
       "    on:\n"
       "      zet: {actions: 'case.n = case.n + 1 table.insert(case.lijst, case.naam or \"-\")'}\n");
  create(f, "{\"naam\":\"x\",\"n\":5}");
  char *d = data_of(f->c);
  assert_string_equal(d, "{\"n\":5,\"lijst\":[],\"naam\":\"x\"}");
  case_free(d);
  fire_ok(f, "zet", NULL);
  d = data_of(f->c);
  assert_string_equal(d, "{\"n\":6,\"lijst\":[\"x\"],\"naam\":\"x\"}");
  case_free(d);
  /* A second case starts from the definition's default: the first one's write
   * replaced its own slot, it did not change the shared [] in place. */
  case_instance *c2 = NULL;
  assert_int_equal(case_instance_create(f->e, f->d, "c2", NULL, NULL, T0, &c2), CASE_OK);
  d = data_of(c2);
  assert_string_equal(d, "{\"n\":1,\"lijst\":[],\"naam\":null}");
  case_free(d);

  /* A snapshot with its data in another order (and without `lijst`, added to
   * the definition since) is written back in its own order, the new field last. */
  char *snap = NULL;
  assert_int_equal(case_instance_snapshot(c2, &snap), CASE_OK);
  case_instance_free(c2);
  char *other = replaced(snap, "\"data\":{\"n\":1,\"lijst\":[],\"naam\":null}",
                         "\"data\":{\"naam\":\"y\",\"n\":3}");
  assert_int_equal(case_instance_restore(f->e, other, &c2), CASE_OK);
  d = data_of(c2);
  assert_string_equal(d, "{\"naam\":\"y\",\"n\":3,\"lijst\":[]}");
  case_free(d);
  char *again = NULL;
  assert_int_equal(case_instance_snapshot(c2, &again), CASE_OK);
  assert_non_null(strstr(again, "\"data\":{\"naam\":\"y\",\"n\":3,\"lijst\":[]}"));
  assert_int_equal(case_instance_fire(c2, "zet", NULL, "tester", NULL, T0), CASE_OK);
  d = data_of(c2);
  assert_string_equal(d, "{\"naam\":\"y\",\"n\":4,\"lijst\":[\"y\"]}");
  case_free(d);
  /* A snapshot in declaration order is written back byte for byte. */
  case_free(again);
  assert_int_equal(case_instance_restore(f->e, snap, &c2), CASE_EXISTS);
  case_instance_free(case_instance_find(f->e, "c2"));
  assert_int_equal(case_instance_restore(f->e, snap, &c2), CASE_OK);
  assert_int_equal(case_instance_snapshot(c2, &again), CASE_OK);
  assert_string_equal(again, snap);
  case_free(again);
  case_free(other);
  case_free(snap);
}

/* Restore refuses snapshots that no run of the chart can produce. */
static char *replaced(const char *s, const char *from, const char *to) {
  const char *p = strstr(s, from);
  assert_non_null(p);
  size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
  char *out = malloc(n);
  assert_non_null(out);
  snprintf(out, n, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
  return out;
}

static void test_restore_refuses_inconsistent(void **state) {
  fx *f = *state;
  load(f, HIST);
  create(f, NULL);
  fire_ok(f, "next", NULL);
  fire_ok(f, "next", NULL);
  fire_ok(f, "pause", NULL);
  char *snap = NULL;
  assert_int_equal(case_instance_snapshot(f->c, &snap), CASE_OK);
  case_instance_free(f->c);
  f->c = NULL;
  struct {
    const char *from, *to, *why;
  } bad[] = {
      {"\"h\":[\"s2\"]", "\"h\":[\"s2a\"]", "outside its parent"},
      {"\"hd\":[\"s2b\"]", "\"hd\":[\"s2\"]", "not a leaf"},
      {"\"internal_queue\":[]", "\"internal_queue\":[{\"name\":\"x\"}]", "pending internal"},
      {"\"done\":false", "\"done\":true", "'done' is true"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *b = replaced(snap, bad[i].from, bad[i].to);
    case_instance *c = NULL;
    assert_int_equal(case_instance_restore(f->e, b, &c), CASE_CORRUPT);
    assert_non_null(strstr(case_errmsg(f->e), bad[i].why));
    assert_null(c);
    free(b);
  }
  assert_int_equal(case_instance_restore(f->e, snap, &f->c), CASE_OK);
  case_free(snap);
  /* Timers: a state that is not active, a duplicated id. */
  case_instance_free(f->c);
  load(f, "workflow: tmr\nversion: 1\ninitial: a\nstates:\n"
          "  a: {after: [{delay: 1 hour, target: b}], on: {go: b}}\n  b: {}\n");
  create(f, NULL);
  assert_int_equal(case_instance_snapshot(f->c, &snap), CASE_OK);
  case_instance_free(f->c);
  f->c = NULL;
  char *b = replaced(snap, "\"configuration\":[\"a\"]", "\"configuration\":[\"b\"]");
  case_instance *c = NULL;
  assert_int_equal(case_instance_restore(f->e, b, &c), CASE_CORRUPT);
  assert_non_null(strstr(case_errmsg(f->e), "not active"));
  free(b);
  b = replaced(snap, "\"timer_seq\":1", "\"timer_seq\":0");
  assert_int_equal(case_instance_restore(f->e, b, &c), CASE_CORRUPT);
  free(b);
  /* Counters no run reaches (issue 15.11: a revision of INT64_MAX overflowed on
   * the next fire). */
  b = replaced(snap, "\"revision\":0", "\"revision\":9223372036854775807");
  assert_int_equal(case_instance_restore(f->e, b, &c), CASE_CORRUPT);
  assert_non_null(strstr(case_errmsg(f->e), "out of the range a run reaches"));
  free(b);
  b = replaced(snap, "\"revision\":0", "\"revision\":-1");
  assert_int_equal(case_instance_restore(f->e, b, &c), CASE_CORRUPT);
  free(b);
  b = replaced(snap, "\"timer_seq\":1", "\"timer_seq\":9223372036854775807");
  assert_int_equal(case_instance_restore(f->e, b, &c), CASE_CORRUPT);
  free(b);
  b = replaced(snap, "\"revision\":0", "\"revision\":4611686018427387903");
  assert_int_equal(case_instance_restore(f->e, b, &c), CASE_OK);
  free(b);
  assert_int_equal(case_instance_fire(c, "go", NULL, NULL, NULL, T0), CASE_OK);
  assert_int_equal(case_instance_revision(c), INT64_C(4611686018427387904));
  case_free(snap);
  assert_int_equal(case_instance_snapshot(c, &snap), CASE_OK);
  case_instance_free(c);
  assert_int_equal(case_instance_restore(f->e, snap, &c), CASE_CORRUPT); /* at 2^62 */
  case_free(snap);
}

/* Issue 15.10: an event the workflow raises itself, on a transition without
 * roles, is the workflow's own step: no role may fire it, and it is not offered. */
static void test_raise_only_events(void **state) {
  fx *f = *state;
  load(f, "workflow: intern\nversion: 1\nroles: [IND]\n"
          "initial: a\nstates:\n  a:\n    on:\n"
          "      start: {roles: [IND], actions: [\"raise('stap.klaar')\"]}\n"
          "      stap.klaar: b\n"
          "      open: {target: a}\n"
          "  b:\n    on:\n      terug: a\n      stap.klaar: {roles: [IND], target: a}\n");
  create(f, NULL);
  assert_int_equal(case_instance_fire(f->c, "stap.klaar", NULL, "x", "IND", T0), CASE_DENIED);
  assert_non_null(strstr(case_errmsg(f->e), "'stap.klaar' is raised by the workflow's own "
                                            "actions, not fired by a role"));
  assert_int_equal(case_instance_fire(f->c, "stap.klaar", NULL, NULL, NULL, T0), CASE_DENIED);
  char *av = NULL;
  assert_int_equal(case_instance_available(f->c, "IND", T0, &av), CASE_OK);
  assert_null(strstr(av, "stap.klaar"));
  assert_non_null(strstr(av, "\"open\"")); /* not raised: still open to every role */
  case_free(av);
  fire_ok(f, "start", "IND"); /* the raise takes it */
  assert_config(f, "[\"b\"]");
  /* With roles listed it is the role's to fire, raised or not. */
  fire_ok(f, "stap.klaar", "IND");
  assert_config(f, "[\"a\"]");
}

/* Issue 15.6: payloads and case data are bounded (CASE_LIMIT_PAYLOAD,
 * CASE_LIMIT_DATA), and a case over a lowered limit may still shrink. */
static void test_payload_and_data_limits(void **state) {
  fx *f = *state;
  load(f, "workflow: big\nversion: 1\nroles: [IND]\n"
          "data: {s: {type: string}, n: {type: integer, default: 0}}\n"
          "initial: a\nstates:\n  a:\n    on:\n"
          "      put: {actions: [case.s = event.data.s]}\n"
          "      grow: {actions: [\"case.s = string.rep('x', event.data.n)\"]}\n"
          "      count: {actions: [case.n = case.n + 1]}\n"
          "      note: {actions: [\"raise('noted', {s = event.data.s})\"]}\n"
          "      noted: {}\n");
  assert_int_equal(case_engine_limit(f->e, CASE_LIMIT_PAYLOAD, -1), 1048576);
  assert_int_equal(case_engine_limit(f->e, CASE_LIMIT_DATA, -1), 4194304);
  assert_int_equal(case_engine_limit(f->e, CASE_LIMIT_TIME, -1), 1000);
  case_engine_limit(f->e, CASE_LIMIT_PAYLOAD, 100);
  case_engine_limit(f->e, CASE_LIMIT_DATA, 200);
  create(f, NULL);
  char p[512];
  snprintf(p, sizeof p, "{\"s\":\"%091d\"}", 0); /* 99 bytes */
  assert_int_equal(case_instance_fire(f->c, "put", p, NULL, "IND", T0), CASE_OK);
  snprintf(p, sizeof p, "{\"s\":\"%092d\"}", 0); /* 100 bytes */
  assert_int_equal(case_instance_fire(f->c, "put", p, NULL, "IND", T0), CASE_OK);
  snprintf(p, sizeof p, "{\"s\":\"%093d\"}", 0); /* 101 bytes */
  assert_int_equal(case_instance_fire(f->c, "put", p, NULL, "IND", T0), CASE_LIMIT);
  assert_non_null(strstr(case_errmsg(f->e), "takes 101 bytes, more than the limit of 100 "
                                            "(CASE_LIMIT_PAYLOAD)"));
  assert_int_equal(case_instance_fire(f->c, "note", "{\"s\":\"x\"}", NULL, "IND", T0),
                   CASE_OK);
  /* {"n":0,"s":"..."}: 14 bytes around the string */
  snprintf(p, sizeof p, "{\"n\": %d}", 186);
  assert_int_equal(case_instance_fire(f->c, "grow", p, NULL, "IND", T0), CASE_OK);
  char *d = NULL;
  assert_int_equal(case_instance_data(f->c, &d), CASE_OK);
  assert_int_equal(strlen(d), 200);
  case_free(d);
  int64_t rev = case_instance_revision(f->c);
  snprintf(p, sizeof p, "{\"n\": %d}", 187);
  assert_int_equal(case_instance_fire(f->c, "grow", p, NULL, "IND", T0), CASE_LIMIT);
  assert_non_null(strstr(case_errmsg(f->e), "its data would take 201 bytes as JSON, more than "
                                            "the limit of 200 (CASE_LIMIT_DATA)"));
  assert_int_equal(case_instance_revision(f->c), rev); /* refused: nothing changed */
  /* Lowered below what the case holds: it may shrink, and stay, not grow. */
  case_engine_limit(f->e, CASE_LIMIT_DATA, 50);
  assert_int_equal(case_instance_fire(f->c, "count", NULL, NULL, "IND", T0), CASE_OK);
  assert_int_equal(case_instance_fire(f->c, "grow", "{\"n\": 10}", NULL, "IND", T0), CASE_OK);
  assert_int_equal(case_instance_fire(f->c, "grow", "{\"n\": 40}", NULL, "IND", T0),
                   CASE_LIMIT);
  /* A restored case is measured at its first change. */
  char *snap = NULL;
  assert_int_equal(case_instance_snapshot(f->c, &snap), CASE_OK);
  case_instance_free(f->c);
  assert_int_equal(case_instance_restore(f->e, snap, &f->c), CASE_OK);
  case_free(snap);
  assert_int_equal(case_instance_fire(f->c, "grow", "{\"n\": 40}", NULL, "IND", T0),
                   CASE_LIMIT);
  assert_int_equal(case_instance_fire(f->c, "grow", "{\"n\": 20}", NULL, "IND", T0), CASE_OK);
  /* Initial data too. */
  case_instance *c2 = NULL;
  assert_int_equal(case_instance_create(f->e, f->d, "c2", NULL,
                                        "{\"s\": \"0123456789012345678901234567890123456789\"}",
                                        T0, &c2),
                   CASE_LIMIT);
  assert_null(c2);
  assert_non_null(strstr(case_errmsg(f->e), "its initial data takes"));
  /* 0: no limit. */
  case_engine_limit(f->e, CASE_LIMIT_DATA, 0);
  case_engine_limit(f->e, CASE_LIMIT_PAYLOAD, 0);
  assert_int_equal(case_instance_fire(f->c, "grow", "{\"n\": 100000}", NULL, "IND", T0),
                   CASE_OK);
  assert_int_equal(case_engine_limit(f->e, CASE_LIMIT_DATA + 1, -1), -1); /* no such limit */
}

/* Many cases on one engine: found by id through the index as they come and go. */
static void test_many_cases(void **state) {
  fx *f = *state;
  load(f, "workflow: many\nversion: 1\ninitial: a\nstates:\n  a: {on: {go: b}}\n  b: {}\n");
  enum { N = 3000 };
  char id[32];
  for (int i = 0; i < N; i++) {
    snprintf(id, sizeof id, "Z-%05d", i);
    case_instance *c = NULL;
    assert_int_equal(case_instance_create(f->e, f->d, id, NULL, NULL, T0, &c), CASE_OK);
  }
  for (int i = 0; i < N; i += 2) {
    snprintf(id, sizeof id, "Z-%05d", i);
    case_instance_free(case_instance_find(f->e, id));
  }
  for (int i = 0; i < N; i++) {
    snprintf(id, sizeof id, "Z-%05d", i);
    case_instance *c = case_instance_find(f->e, id);
    if (i % 2) {
      assert_non_null(c);
      assert_string_equal(case_instance_id(c), id);
    } else {
      assert_null(c);
    }
  }
  /* A freed id can be used again. */
  assert_int_equal(case_instance_create(f->e, f->d, "Z-00000", NULL, NULL, T0, &f->c), CASE_OK);
  assert_ptr_equal(case_instance_find(f->e, "Z-00000"), f->c);
  assert_int_equal(case_instance_create(f->e, f->d, "Z-00001", NULL, NULL, T0, &f->c),
                   CASE_EXISTS);
}

/* ---- misuse ---- */

static void test_misuse(void **state) {
  fx *f = *state;
  char *s = NULL;
  assert_int_equal(case_engine_open(NULL), CASE_MISUSE);
  assert_int_equal(case_errcode(NULL), CASE_MISUSE);
  assert_non_null(case_errmsg(NULL));
  assert_int_equal(case_def_load_string(NULL, "x", 1, NULL, NULL), CASE_MISUSE);
  assert_int_equal(case_def_load_string(f->e, NULL, 0, NULL, NULL), CASE_MISUSE);
  assert_int_equal(case_def_load_file(f->e, "/nonexistent/x.yaml", NULL), CASE_IO);
  assert_int_equal(case_instance_fire(NULL, "x", NULL, NULL, NULL, 0), CASE_MISUSE);
  assert_int_equal(case_instance_configuration(NULL, &s), CASE_MISUSE);
  assert_int_equal(case_instance_tick(NULL, 0, NULL), CASE_MISUSE);
  assert_int_equal(case_instance_restore(f->e, "{}", &f->c), CASE_INVALID);
  assert_int_equal(case_instance_restore(f->e, "not json", &f->c), CASE_INVALID);
  assert_null(case_instance_find(f->e, "nope"));
  assert_null(case_def_find(f->e, "nope", 0));
  case_instance_free(NULL);
  case_engine_close(NULL);
  load(f, HIER);
  assert_int_equal(case_instance_create(f->e, f->d, "c1", NULL, "{\"onbekend\":1}", T0, &f->c),
                   CASE_INVALID);
  assert_non_null(strstr(case_errmsg(f->e), "onbekend"));
  assert_int_equal(case_instance_create(f->e, f->d, "c1", NULL, "{\"trace\":5}", T0, &f->c),
                   CASE_INVALID);
  assert_int_equal(case_instance_create(f->e, f->d, "c1", "nergens", NULL, T0, &f->c), CASE_NOTFOUND);
  create(f, NULL);
  case_instance *dup = (case_instance *)1;
  assert_int_equal(case_instance_create(f->e, f->d, "c1", NULL, NULL, T0, &dup), CASE_EXISTS);
  assert_null(dup);
  assert_int_equal(case_instance_fire(f->c, "next", "{bad", NULL, NULL, T0), CASE_INVALID);
  assert_int_equal(case_instance_fire(f->c, NULL, NULL, NULL, NULL, T0), CASE_MISUSE);
  /* Names the engine raises itself, or that are not event names, are refused. */
  assert_int_equal(case_instance_fire(f->c, "", NULL, NULL, NULL, T0), CASE_INVALID);
  assert_int_equal(case_instance_fire(f->c, "a..b", NULL, NULL, NULL, T0), CASE_INVALID);
  assert_int_equal(case_instance_fire(f->c, "*", NULL, NULL, NULL, T0), CASE_INVALID);
  assert_int_equal(case_instance_fire(f->c, "done.state.a", NULL, NULL, NULL, T0), CASE_INVALID);
  assert_int_equal(case_instance_fire(f->c, "after.a.0", NULL, NULL, NULL, T0), CASE_INVALID);
  assert_non_null(strstr(case_errmsg(f->e), "delayed transitions"));
  assert_string_equal(case_errstr(CASE_GUARD), "guard is false");
  assert_string_equal(case_errstr(12345), "unknown error");
  assert_string_equal(case_errname(CASE_NOTHANDLED), "not_handled");
  assert_string_equal(case_errname(CASE_DONE), "done");
  assert_string_equal(case_errname(-1), "unknown");
  for (int rc = CASE_OK; rc <= CASE_DONE; rc++) assert_string_not_equal(case_errname(rc), "unknown");
  assert_int_equal(case_libversion_number(), CASE_VERSION_NUMBER);
}

/* ---- the clock's transitions are scoped to their own states ---- */

static void test_timer_event_scope(void **state) {
  fx *f = *state;
  load(f,
       "workflow: sc\nversion: 1\nroles: [IND]\n"
       "initial: a\n"
       "states:\n"
       "  a: {on: {termijn_verstreken: b}}\n"
       "  b:\n"
       "    deadlines: {t: {after: 3 days, on_expiry: termijn_verstreken}}\n"
       "    on: {termijn_verstreken: c}\n"
       "  c: {}\n");
  create(f, NULL);
  /* In a, the name is an ordinary event: IND may fire it. */
  fire_ok(f, "termijn_verstreken", "IND");
  assert_config(f, "[\"b\"]");
  /* In b, it is the deadline's own event: only the clock fires it. */
  assert_int_equal(case_instance_fire(f->c, "termijn_verstreken", NULL, "x", "IND", T0),
                   CASE_DENIED);
  int fired = 0;
  assert_int_equal(case_instance_tick(f->c, T0 + 10 * DAY, &fired), CASE_OK);
  assert_int_equal(fired, 1);
  assert_config(f, "[\"c\"]");
}

/* A delayed transition's event is its own: a '*' handler of the same state or
 * of a child does not take it, and users may not name events after.* */
static void test_after_event_not_captured(void **state) {
  fx *f = *state;
  load(f,
       "workflow: st\nversion: 1\n"
       "data: {log: {type: list, default: []}}\n"
       "initial: a\n"
       "states:\n"
       "  a:\n"
       "    initial: a1\n"
       "    after: [{delay: 1 hour, target: b}]\n"
       "    on: {'*': {actions: ['table.insert(case.log, event.name)']}}\n"
       "    states:\n"
       "      a1: {on: {'*': {actions: ['table.insert(case.log, \"kind \" .. event.name)']}}}\n"
       "  b: {}\n");
  create(f, NULL);
  int fired = 0;
  assert_int_equal(case_instance_tick(f->c, T0 + 7200, &fired), CASE_OK);
  assert_int_equal(fired, 1);
  assert_config(f, "[\"b\"]");
  assert_field(f, "log", "[]");
  const char *bad = "workflow: st2\nversion: 1\ninitial: a\nstates:\n  a: {on: {after.a.0: a}}\n";
  assert_int_equal(case_def_load_string(f->e, bad, strlen(bad), "st2.yaml", NULL), CASE_INVALID);
  assert_non_null(strstr(case_errmsg(f->e), "reserved"));
}

/* ---- versions in force ---- */

static void test_version_in_force(void **state) {
  fx *f = *state;
  const char *v1 = "workflow: w\nversion: 1\ninitial: a\nstates: {a: {}}\n";
  const char *v2 = "workflow: w\nversion: 2\nin_force_from: 2026-06-12\ninitial: b\n"
                   "states: {b: {}}\n";
  const case_def *d1 = NULL, *d2 = NULL;
  assert_int_equal(case_def_load_string(f->e, v1, strlen(v1), "v1.yaml", &d1), CASE_OK);
  assert_int_equal(case_def_load_string(f->e, v2, strlen(v2), "v2.yaml", &d2), CASE_OK);
  assert_string_equal(case_def_in_force_from(d1), "");
  assert_string_equal(case_def_in_force_from(d2), "2026-06-12");
  /* 2026-06-11T21:59:59Z is 23:59:59 on 11 June in Amsterdam (CEST): still version 1. */
  assert_ptr_equal(case_def_in_force(f->e, "w", INT64_C(1781215199)), d1);
  /* 2026-06-11T22:00:00Z is midnight starting 12 June in Amsterdam: version 2. */
  assert_ptr_equal(case_def_in_force(f->e, "w", INT64_C(1781215200)), d2);
  assert_ptr_equal(case_def_find(f->e, "w", 0), d2);
  /* Listing: newest first, then NULL. */
  assert_ptr_equal(case_def_next(f->e, NULL), d2);
  assert_ptr_equal(case_def_next(f->e, d2), d1);
  assert_null(case_def_next(f->e, d1));
  assert_int_equal(case_def_state_count(d2), 1);
  assert_string_equal(case_def_state_id(d2, 0), "b");
  assert_null(case_def_state_id(d2, 1));
  assert_null(case_def_state_id(d2, -1));
  assert_int_equal(case_def_role_count(d1), 0);
  assert_null(case_def_role(d1, 0));
  assert_null(case_def_in_force(f->e, "x", INT64_C(1781215200)));
  assert_null(case_def_in_force(NULL, "w", 0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_entry_exit_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_priority, setup, teardown),
      cmocka_unit_test_setup_teardown(test_parallel_done, setup, teardown),
      cmocka_unit_test_setup_teardown(test_history, setup, teardown),
      cmocka_unit_test_setup_teardown(test_eventless_chain_and_internal_events, setup, teardown),
      cmocka_unit_test_setup_teardown(test_eventless_loop_is_bounded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expiry_loop_is_bounded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fire_timer_failure_leaves_case, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runtime_error_positions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_available_and_explain_with_actor, setup, teardown),
      cmocka_unit_test_setup_teardown(test_targetless_and_internal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_targetless_beside_targeted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_targetless_after_targeted_microstep, setup, teardown),
      cmocka_unit_test_setup_teardown(test_event_prefix_match, setup, teardown),
      cmocka_unit_test_setup_teardown(test_roles_and_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_notifications_after_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_native_guard_and_action, setup, teardown),
      cmocka_unit_test_setup_teardown(test_after_and_deadlines, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timer_cancelled_on_exit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_roundtrip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_data_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restore_refuses_inconsistent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_payload_and_data_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_raise_only_events, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_cases, setup, teardown),
      cmocka_unit_test_setup_teardown(test_misuse, setup, teardown),
      cmocka_unit_test_setup_teardown(test_version_in_force, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timer_event_scope, setup, teardown),
      cmocka_unit_test_setup_teardown(test_after_event_not_captured, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
