/* The store's bulk paths: the bounded case cache, listing cases and reading
 * one case's history in pages, the latest event time, tick memory. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "libcase/libcase.h"
#include "libcase/store.h"
#include "internal.h" /* the engine's count of loaded cases */

/* 2026-03-02T09:00:00Z, a Monday. */
#define T0 INT64_C(1772442000)
#define DAY INT64_C(86400)

static const char *ZAAK =
    "workflow: zaak\n"
    "version: 1\n"
    "roles: [IND]\n"
    "data:\n"
    "  n: {type: integer, default: 0}\n"
    "initial: open\n"
    "states:\n"
    "  open:\n"
    "    after:\n"
    "      - {delay: 2 hours, target: wacht}\n"
    "    on:\n"
    "      tel: {roles: [IND], actions: [case.n = case.n + 1, \"emit('geteld', {n = case.n})\"]}\n"
    "      sluit: {roles: [IND], target: dicht}\n"
    "      boem: {roles: [IND], actions: [\"error('kapot')\"]}\n"
    "  wacht:\n"
    "    on:\n"
    "      tel: {roles: [IND], actions: [case.n = case.n + 1, \"emit('geteld', {n = case.n})\"]}\n"
    "  dicht: {final: true}\n";

typedef struct fx {
  char path[256];
  case_engine *e;
  case_store *s;
  const case_def *d;
} fx;

static int64_t fixed_clock(void *ud) {
  (void)ud;
  return T0 + 365 * DAY;
}

static void remove_db(const char *path) {
  char p[300];
  unlink(path);
  snprintf(p, sizeof p, "%s-wal", path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", path);
  unlink(p);
}

static void open_all(fx *f) {
  assert_int_equal(case_engine_open(&f->e), CASE_OK);
  if (case_store_open(f->e, f->path, CASE_STORE_CREATE, &f->s) != CASE_OK)
    fail_msg("store open: %s", case_errmsg(f->e));
  assert_int_equal(case_store_set_clock(f->s, fixed_clock, NULL), CASE_OK);
  f->d = case_def_find(f->e, "zaak", 1);
}

static void close_all(fx *f) {
  case_store_close(f->s);
  case_engine_close(f->e);
  f->s = NULL;
  f->e = NULL;
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  snprintf(f->path, sizeof f->path, "/tmp/test_store_bulk_%ld.db", (long)getpid());
  remove_db(f->path);
  open_all(f);
  if (case_def_load_string(f->e, ZAAK, strlen(ZAAK), "zaak.yaml", &f->d) != CASE_OK)
    fail_msg("load: %s", case_errmsg(f->e));
  assert_int_equal(case_store_add_def(f->s, f->d), CASE_OK);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  close_all(f);
  remove_db(f->path);
  free(f);
  return 0;
}

static void create(fx *f, const char *id, int64_t at) {
  if (case_store_create(f->s, f->d, id, NULL, NULL, "tester", "IND", at, NULL) != CASE_OK)
    fail_msg("create %s: %s", id, case_errmsg(f->e));
}

static void fire(fx *f, const char *id, const char *ev, int64_t at) {
  int rc = case_store_fire(f->s, id, ev, NULL, "tester", "IND", at, -1, NULL, NULL);
  if (rc != CASE_OK) fail_msg("fire %s at %s (%d): %s", ev, id, rc, case_errmsg(f->e));
}

static long loaded(fx *f) {
  long n = -2;
  case_store_cache(f->s, &n);
  return n;
}

static long long n_of(fx *f, const char *id) {
  case_instance *c = NULL;
  assert_int_equal(case_store_get(f->s, id, &c), CASE_OK);
  char *data = NULL;
  assert_int_equal(case_instance_data(c, &data), CASE_OK);
  json_t *v = json_loads(data, 0, NULL);
  case_free(data);
  long long n = json_integer_value(json_object_get(v, "n"));
  json_decref(v);
  return n;
}

/* ------------------------------------------------------------------ */

static void test_cache_bounded(void **state) {
  fx *f = *state;
  assert_int_equal(case_store_cache(f->s, NULL), CASE_STORE_CACHE_DEFAULT);
  assert_int_equal(case_store_set_cache(f->s, 3), CASE_STORE_CACHE_DEFAULT);
  assert_int_equal(case_store_cache(f->s, NULL), 3);
  char id[16];
  for (int i = 0; i < 10; i++) {
    snprintf(id, sizeof id, "Z%02d", i);
    create(f, id, T0);
    assert_true(loaded(f) <= 3);
  }
  assert_int_equal(loaded(f), 3);
  assert_int_equal(f->e->ncases, 3);
  /* The three most recent stay; the rest were evicted, oldest first. */
  assert_null(case_instance_find(f->e, "Z00"));
  assert_null(case_instance_find(f->e, "Z06"));
  assert_non_null(case_instance_find(f->e, "Z07"));
  assert_non_null(case_instance_find(f->e, "Z09"));
  /* An evicted case is restored when used: the result is the same. */
  fire(f, "Z00", "tel", T0 + 60);
  fire(f, "Z00", "tel", T0 + 61);
  assert_int_equal(n_of(f, "Z00"), 2);
  assert_non_null(case_instance_find(f->e, "Z00"));
  assert_null(case_instance_find(f->e, "Z07")); /* now the least recent */
  assert_int_equal(loaded(f), 3);
  /* The pointer a call hands out stays valid until the next call. */
  case_instance *c = NULL;
  assert_int_equal(case_store_get(f->s, "Z01", &c), CASE_OK);
  assert_string_equal(case_instance_id(c), "Z01");
  assert_int_equal(case_instance_revision(c), 0);
  /* A host freeing a cached case takes it out of the cache. */
  case_instance_free(c);
  assert_int_equal(loaded(f), 2);
  /* Cases the host made on the engine are never the store's to free. */
  case_instance *mine = NULL;
  assert_int_equal(case_instance_create(f->e, f->d, "MINE", NULL, NULL, T0, &mine), CASE_OK);
  for (int i = 0; i < 10; i++) {
    snprintf(id, sizeof id, "Z%02d", i);
    assert_int_equal(n_of(f, id), i == 0 ? 2 : 0);
  }
  assert_int_equal(loaded(f), 3);
  assert_ptr_equal(case_instance_find(f->e, "MINE"), mine);
  assert_int_equal(f->e->ncases, 4);
  /* Size 0: only the case of the last call. */
  assert_int_equal(case_store_set_cache(f->s, 0), 3);
  assert_int_equal(loaded(f), 0);
  assert_int_equal(case_store_get(f->s, "Z05", &c), CASE_OK);
  assert_int_equal(loaded(f), 1);
  assert_ptr_equal(case_instance_find(f->e, "Z05"), c);
  /* No bound: every case stays, as before the cache. */
  assert_int_equal(case_store_set_cache(f->s, -1), 0);
  assert_int_equal(case_store_cache(f->s, NULL), -1);
  for (int i = 0; i < 10; i++) {
    snprintf(id, sizeof id, "Z%02d", i);
    assert_int_equal(case_store_get(f->s, id, &c), CASE_OK);
  }
  assert_int_equal(loaded(f), 10);
  /* Closing the store leaves its cases on the engine, as the host's. */
  case_store_close(f->s);
  f->s = NULL;
  assert_int_equal(f->e->ncases, 11);
  case_instance_free(case_instance_find(f->e, "Z03")); /* no store to tell: fine */
  assert_int_equal(f->e->ncases, 10);
  assert_int_equal(case_store_open(f->e, f->path, 0, &f->s), CASE_OK);
  assert_int_equal(case_store_set_cache(NULL, 5), -1);
  assert_int_equal(case_store_cache(NULL, NULL), -1);
}

/* A host that touches many cases holds at most the cache's size of them, also
 * through ticks that fire many timers. */
static void test_cache_flat_under_load(void **state) {
  fx *f = *state;
  case_store_set_cache(f->s, 8);
  char id[16];
  for (int i = 0; i < 300; i++) {
    snprintf(id, sizeof id, "L%03d", i);
    create(f, id, T0);
    if (i % 3 == 0) fire(f, id, "tel", T0 + 1);
    assert_true(f->e->ncases <= 8);
  }
  /* Every case has an `after: 2 hours` timer: one tick fires 300. */
  int fired = 0;
  assert_int_equal(case_store_tick(f->s, T0 + 3 * 3600, &fired), CASE_OK);
  assert_int_equal(fired, 300);
  assert_true(f->e->ncases <= 8);
  assert_int_equal(n_of(f, "L000"), 1);
  assert_int_equal(n_of(f, "L001"), 0);
  case_instance *c = NULL;
  assert_int_equal(case_store_get(f->s, "L150", &c), CASE_OK);
  assert_int_equal(case_instance_in(c, "wacht"), 1);
  assert_int_equal(case_instance_revision(c), 2); /* create, tel, the timer */
}

/* ---- history ---- */

typedef struct got {
  int n, stop_at;
  int64_t seq[1024], rev[1024];
  char events[1024][16];
  char cases[1024][16];
  case_store *s; /* when set: the callback reads the store meanwhile */
} got;

static int on_row(void *ud, int64_t seq, const char *row_json) {
  got *g = ud;
  json_t *r = json_loads(row_json, 0, NULL);
  assert_non_null(r);
  assert_true(g->n < 1024);
  g->seq[g->n] = seq;
  g->rev[g->n] = json_integer_value(json_object_get(r, "revision"));
  assert_int_equal(json_integer_value(json_object_get(r, "seq")), seq);
  snprintf(g->events[g->n], 16, "%s", json_string_value(json_object_get(r, "event")));
  snprintf(g->cases[g->n], 16, "%s", json_string_value(json_object_get(r, "case")));
  assert_int_equal(strlen(json_string_value(json_object_get(r, "hash"))), 64);
  json_decref(r);
  if (g->s) {
    case_instance *c = NULL;
    assert_int_equal(case_store_get(g->s, "H1", &c), CASE_OK);
  }
  g->n++;
  return g->stop_at && g->n == g->stop_at ? 42 : 0;
}

static void test_history(void **state) {
  fx *f = *state;
  create(f, "H1", T0);
  create(f, "H2", T0);
  for (int i = 1; i <= 300; i++) { /* more than a page (256) */
    fire(f, "H1", "tel", T0 + i);
    if (i % 100 == 0) fire(f, "H2", "tel", T0 + i);
  }
  got *g = calloc(1, sizeof *g);
  assert_non_null(g);
  int64_t last = -7;
  g->s = f->s; /* the callback may call the store */
  assert_int_equal(case_store_history(f->s, "H1", -1, on_row, g, &last), CASE_OK);
  assert_int_equal(g->n, 301);
  assert_int_equal(last, 300);
  for (int i = 0; i < g->n; i++) {
    assert_int_equal(g->rev[i], i);
    assert_string_equal(g->cases[i], "H1");
    if (i > 0) assert_true(g->seq[i] > g->seq[i - 1]);
  }
  assert_string_equal(g->events[0], "create");
  assert_string_equal(g->events[300], "tel");
  /* From a revision on; only that case's rows. */
  memset(g, 0, sizeof *g);
  assert_int_equal(case_store_history(f->s, "H2", 1, on_row, g, &last), CASE_OK);
  assert_int_equal(g->n, 2);
  assert_int_equal(g->rev[0], 2);
  assert_int_equal(g->rev[1], 3);
  assert_int_equal(last, 3);
  /* The callback stops it: its value is returned. */
  memset(g, 0, sizeof *g);
  g->stop_at = 5;
  assert_int_equal(case_store_history(f->s, "H1", 250, on_row, g, &last), 42);
  assert_int_equal(g->n, 5);
  assert_int_equal(last, 255);
  /* Past the end: nothing, CASE_OK. */
  memset(g, 0, sizeof *g);
  assert_int_equal(case_store_history(f->s, "H1", 300, on_row, g, &last), CASE_OK);
  assert_int_equal(g->n, 0);
  assert_int_equal(last, 300);
  assert_int_equal(case_store_history(f->s, "NOPE", -1, on_row, g, NULL), CASE_NOTFOUND);
  assert_int_equal(case_store_history(f->s, NULL, -1, on_row, g, NULL), CASE_MISUSE);
  assert_int_equal(case_store_history(f->s, "H1", -1, NULL, g, NULL), CASE_MISUSE);
  assert_int_equal(case_store_history(NULL, "H1", -1, on_row, g, NULL), CASE_MISUSE);
  free(g);
}

/* ---- list ---- */

typedef struct listed {
  int n, stop_at;
  char ids[700][16];
  long long revision[700];
  fx *f; /* when set: the callback fires at each case */
} listed;

static int on_case(void *ud, const char *id, const char *row_json) {
  listed *l = ud;
  json_t *r = json_loads(row_json, 0, NULL);
  assert_non_null(r);
  assert_string_equal(json_string_value(json_object_get(r, "case")), id);
  assert_string_equal(json_string_value(json_object_get(r, "workflow")), "zaak");
  assert_int_equal(json_integer_value(json_object_get(r, "version")), 1);
  assert_true(json_is_null(json_object_get(r, "location")));
  assert_true(json_is_boolean(json_object_get(r, "done")));
  assert_true(json_is_array(json_object_get(r, "configuration")));
  assert_true(json_is_integer(json_object_get(r, "created")));
  assert_true(json_is_integer(json_object_get(r, "updated")));
  assert_true(l->n < 700);
  snprintf(l->ids[l->n], 16, "%s", id);
  l->revision[l->n] = json_integer_value(json_object_get(r, "revision"));
  json_decref(r);
  if (l->f) fire(l->f, id, "tel", T0 + 100); /* writing while listing */
  l->n++;
  return l->stop_at && l->n == l->stop_at ? 9 : 0;
}

static void test_list(void **state) {
  fx *f = *state;
  case_store_set_cache(f->s, 4);
  char id[16];
  /* Created out of id order; more than two pages. */
  for (int i = 0; i < 600; i++) {
    snprintf(id, sizeof id, "C%03d", (i * 7) % 600);
    create(f, id, T0);
  }
  fire(f, "C123", "sluit", T0 + 5);
  listed *l = calloc(1, sizeof *l);
  assert_non_null(l);
  assert_int_equal(case_store_list(f->s, NULL, 0, on_case, l), CASE_OK);
  assert_int_equal(l->n, 600);
  for (int i = 0; i < 600; i++) {
    snprintf(id, sizeof id, "C%03d", i);
    assert_string_equal(l->ids[i], id);
    assert_int_equal(l->revision[i], i == 123 ? 1 : 0);
  }
  assert_true(f->e->ncases <= 4); /* listing loads no case */
  /* After an id, with a limit. */
  memset(l, 0, sizeof *l);
  assert_int_equal(case_store_list(f->s, "C299", 260, on_case, l), CASE_OK);
  assert_int_equal(l->n, 260);
  assert_string_equal(l->ids[0], "C300");
  assert_string_equal(l->ids[259], "C559");
  memset(l, 0, sizeof *l);
  assert_int_equal(case_store_list(f->s, "C5", 0, on_case, l), CASE_OK);
  assert_int_equal(l->n, 100);
  assert_string_equal(l->ids[0], "C500");
  memset(l, 0, sizeof *l);
  assert_int_equal(case_store_list(f->s, "C599", 0, on_case, l), CASE_OK);
  assert_int_equal(l->n, 0);
  /* Stopped by the callback: its value. */
  memset(l, 0, sizeof *l);
  l->stop_at = 3;
  assert_int_equal(case_store_list(f->s, NULL, 0, on_case, l), 9);
  assert_int_equal(l->n, 3);
  /* The callback may write to the store: each case is listed once. */
  memset(l, 0, sizeof *l);
  l->f = f;
  assert_int_equal(case_store_list(f->s, "C589", 0, on_case, l), CASE_OK);
  assert_int_equal(l->n, 10);
  assert_int_equal(n_of(f, "C595"), 1);
  assert_int_equal(case_store_list(f->s, NULL, -1, on_case, l), CASE_INVALID);
  assert_int_equal(case_store_list(f->s, NULL, 0, NULL, l), CASE_MISUSE);
  assert_int_equal(case_store_list(NULL, NULL, 0, on_case, l), CASE_MISUSE);
  free(l);
}

static int keep_json(void *ud, const char *id, const char *row_json) {
  (void)id;
  json_t **out = ud;
  json_array_append_new(*out, json_loads(row_json, 0, NULL));
  return 0;
}

/* A damaged case row (an id that is not UTF-8, written behind the store's
 * back) is listed with "corrupt" saying so; the list goes on. */
static void test_list_damaged_row(void **state) {
  fx *f = *state;
  create(f, "A1", T0);
  create(f, "B1", T0);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "UPDATE cases SET id = 'A' || x'ff' || '1' WHERE id = 'A1';"
                                    "UPDATE journal SET case_id = 'A' || x'ff' || '1', "
                                    "configuration = 'nope' WHERE case_id = 'A1'",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  json_t *rows = json_array();
  assert_int_equal(case_store_list(f->s, NULL, 0, keep_json, &rows), CASE_OK);
  assert_int_equal(json_array_size(rows), 2);
  json_t *bad = json_array_get(rows, 0);
  assert_string_equal(json_string_value(json_object_get(bad, "case")), "A\xEF\xBF\xBD" "1");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(bad, "corrupt"), "case")), "not UTF-8");
  assert_true(json_is_null(json_object_get(bad, "configuration")));
  assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "case")), "B1");
  assert_null(json_object_get(json_array_get(rows, 1), "corrupt"));
  json_decref(rows);
}

static void test_latest_time(void **state) {
  fx *f = *state;
  int64_t t = -1;
  assert_int_equal(case_store_latest_time(f->s, &t), CASE_NOTFOUND);
  assert_int_equal(t, 0);
  create(f, "A", T0);
  create(f, "B", T0 + 50);
  fire(f, "A", "tel", T0 + 20); /* not the latest */
  assert_int_equal(case_store_latest_time(f->s, &t), CASE_OK);
  assert_int_equal(t, T0 + 50);
  int fired = 0;
  assert_int_equal(case_store_tick(f->s, T0 + 3 * 3600, &fired), CASE_OK);
  assert_int_equal(fired, 2);
  assert_int_equal(case_store_latest_time(f->s, &t), CASE_OK);
  assert_int_equal(t, T0 + 50 + 2 * 3600); /* B's timer fired at its due time */
  assert_int_equal(case_store_latest_time(f->s, NULL), CASE_MISUSE);
  assert_int_equal(case_store_latest_time(NULL, &t), CASE_MISUSE);
}

static void test_next_due(void **state) {
  fx *f = *state;
  int64_t due = -1;
  assert_int_equal(case_store_next_due(f->s, &due), CASE_NOTFOUND);
  assert_int_equal(due, 0);
  create(f, "A", T0 + 600);
  create(f, "B", T0);
  assert_int_equal(case_store_next_due(f->s, &due), CASE_OK);
  assert_int_equal(due, T0 + 2 * 3600); /* B's `after: 2 hours` */
  int fired = -1;
  assert_int_equal(case_store_tick(f->s, T0 + 2 * 3600 - 1, &fired), CASE_OK);
  assert_int_equal(fired, 0);
  assert_int_equal(case_store_tick(f->s, T0 + 2 * 3600, &fired), CASE_OK);
  assert_int_equal(fired, 1);
  assert_int_equal(case_store_next_due(f->s, &due), CASE_OK);
  assert_int_equal(due, T0 + 600 + 2 * 3600);
  fire(f, "A", "sluit", T0 + 700); /* its timer is cancelled */
  assert_int_equal(case_store_next_due(f->s, &due), CASE_NOTFOUND);
  assert_int_equal(case_store_next_due(f->s, NULL), CASE_MISUSE);
  assert_int_equal(case_store_next_due(NULL, &due), CASE_MISUSE);
}

/* A tick that leaves a due timer alone (its macrostep fails) goes on past it
 * to the ones after, each looked at once. */
static void test_tick_skips_failing(void **state) {
  fx *f = *state;
  static const char *BAD =
      "workflow: bad\n"
      "version: 1\n"
      "roles: [IND]\n"
      "initial: a\n"
      "states:\n"
      "  a:\n"
      "    after:\n"
      "      - {delay: 1 hours, target: b, actions: [\"error('kapot')\"]}\n"
      "  b: {}\n";
  const case_def *bad = NULL;
  if (case_def_load_string(f->e, BAD, strlen(BAD), "bad.yaml", &bad) != CASE_OK)
    fail_msg("load: %s", case_errmsg(f->e));
  assert_int_equal(case_store_add_def(f->s, bad), CASE_OK);
  char id[16];
  for (int i = 0; i < 20; i++) {
    snprintf(id, sizeof id, "X%02d", i);
    assert_int_equal(case_store_create(f->s, bad, id, NULL, NULL, "t", "IND", T0, NULL), CASE_OK);
    snprintf(id, sizeof id, "G%02d", i);
    create(f, id, T0 + 60);
  }
  int fired = -1;
  assert_int_equal(case_store_tick(f->s, T0 + 3 * 3600, &fired), CASE_SCRIPT);
  assert_int_equal(fired, 20);
  assert_non_null(strstr(case_errmsg(f->e), "19 more failures"));
  /* The failing ones are still due; the good ones fired. */
  int64_t due = 0;
  assert_int_equal(case_store_next_due(f->s, &due), CASE_OK);
  assert_int_equal(due, T0 + 3600);
  case_instance *c = NULL;
  assert_int_equal(case_store_get(f->s, "G07", &c), CASE_OK);
  assert_int_equal(case_instance_in(c, "wacht"), 1);
}

/* ---- batches ---- */

static long long count_sql(fx *f, const char *sql) {
  sqlite3 *db;
  assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  long long n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

static void verify_clean(fx *f) {
  char *rep = NULL;
  int rc = case_store_verify(f->s, &rep);
  if (rc != CASE_OK) fail_msg("verify (%d): %s", rc, rep ? rep : case_errmsg(f->e));
  case_free(rep);
}

typedef struct notes {
  int n;
  char what[64][32];
} notes;

static void on_note(void *ud, const case_instance *c, const char *name, const char *payload) {
  notes *k = ud;
  if (k->n < 64) snprintf(k->what[k->n++], 32, "%s:%s:%s", case_instance_id(c), name, payload);
}

static int64_t rev_of(fx *f, const char *id) {
  case_instance *c = NULL;
  assert_int_equal(case_store_get(f->s, id, &c), CASE_OK);
  return case_instance_revision(c);
}

/* Fires in one transaction; a refused or failing one is rolled back alone. */
static void test_batch_commit(void **state) {
  fx *f = *state;
  create(f, "A", T0);
  create(f, "B", T0);
  notes k = {0};
  case_engine_set_notify(f->e, on_note, &k);
  assert_int_equal(case_store_in_batch(f->s), 0);
  assert_int_equal(case_store_batch_begin(f->s), CASE_OK);
  assert_int_equal(case_store_in_batch(f->s), 1);
  assert_int_equal(case_store_batch_begin(f->s), CASE_MISUSE);
  fire(f, "A", "tel", T0 + 10);
  assert_int_equal(case_store_fire(f->s, "A", "nope", NULL, "t", "IND", T0 + 11, -1, NULL, NULL),
                   CASE_NOTHANDLED);
  assert_int_equal(case_store_fire(f->s, "B", "boem", NULL, "t", "IND", T0 + 12, -1, NULL, NULL),
                   CASE_SCRIPT);
  fire(f, "B", "tel", T0 + 13);
  fire(f, "A", "tel", T0 + 14);
  /* A due timer fires first, then the event is refused: both rolled back. */
  assert_int_equal(
      case_store_fire(f->s, "B", "nope", NULL, "t", "IND", T0 + 3 * 3600, -1, NULL, NULL),
      CASE_NOTHANDLED);
  create(f, "C", T0 + 20);
  fire(f, "C", "tel", T0 + 21);
  /* Reads in the batch see it; nothing is durable yet, nothing notified. */
  assert_int_equal(rev_of(f, "A"), 2);
  assert_int_equal(rev_of(f, "B"), 1);
  assert_int_equal(k.n, 0);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal"), 2);
  assert_int_equal(case_store_batch_commit(f->s), CASE_OK);
  assert_int_equal(case_store_in_batch(f->s), 0);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal"), 7);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM refused"), 3);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM outbox"), 4);
  /* Held notifications, in call order, after the commit. */
  assert_int_equal(k.n, 4);
  assert_string_equal(k.what[0], "A:geteld:{\"n\":1}");
  assert_string_equal(k.what[1], "B:geteld:{\"n\":1}");
  assert_string_equal(k.what[2], "A:geteld:{\"n\":2}");
  assert_string_equal(k.what[3], "C:geteld:{\"n\":1}");
  assert_int_equal(n_of(f, "A"), 2);
  assert_int_equal(n_of(f, "B"), 1);
  /* The journal's tree and hash chains hold, also across a handle that reopens. */
  verify_clean(f);
  assert_int_equal(case_store_batch_commit(f->s), CASE_MISUSE);
  assert_int_equal(case_store_batch_rollback(f->s), CASE_OK); /* none open: nothing */
  close_all(f);
  open_all(f);
  fire(f, "A", "tel", T0 + 30);
  verify_clean(f);
  case_engine_set_notify(f->e, NULL, NULL);
}

/* Rolled back: nothing written, notifications dropped, the engine's copies
 * of the cases it changed dropped (memory never ahead of the disk). */
static void test_batch_rollback(void **state) {
  fx *f = *state;
  create(f, "A", T0);
  notes k = {0};
  case_engine_set_notify(f->e, on_note, &k);
  assert_int_equal(case_store_batch_begin(f->s), CASE_OK);
  fire(f, "A", "tel", T0 + 10);
  create(f, "N", T0 + 11);
  case_instance *a = case_instance_find(f->e, "A");
  assert_non_null(a);
  assert_int_equal(case_instance_revision(a), 1);
  assert_int_equal(case_store_batch_rollback(f->s), CASE_OK);
  assert_null(case_instance_find(f->e, "A"));
  assert_null(case_instance_find(f->e, "N"));
  assert_int_equal(k.n, 0);
  assert_int_equal(rev_of(f, "A"), 0);
  case_instance *c = NULL;
  assert_int_equal(case_store_get(f->s, "N", &c), CASE_NOTFOUND);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal"), 1);
  /* A batch left open is rolled back when the store closes. */
  assert_int_equal(case_store_batch_begin(f->s), CASE_OK);
  fire(f, "A", "tel", T0 + 20);
  close_all(f);
  open_all(f);
  assert_int_equal(rev_of(f, "A"), 0);
  fire(f, "A", "tel", T0 + 30);
  assert_int_equal(n_of(f, "A"), 1);
  verify_clean(f);
  case_engine_set_notify(f->e, NULL, NULL);
}

/* Two handles on one file, taking turns with batches and single fires: the
 * tree each handle keeps from its own commits must never be trusted after the
 * other wrote. */
static void test_batch_two_handles(void **state) {
  fx *f = *state;
  create(f, "A", T0);
  case_engine *e2;
  case_store *s2;
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  assert_int_equal(case_store_open(e2, f->path, 0, &s2), CASE_OK);
  assert_int_equal(case_store_set_clock(s2, fixed_clock, NULL), CASE_OK);
  for (int round = 0; round < 4; round++) {
    assert_int_equal(case_store_batch_begin(f->s), CASE_OK);
    for (int i = 0; i < 5; i++) fire(f, "A", "tel", T0 + 100 * round + i);
    if (round == 2) assert_int_equal(case_store_batch_rollback(f->s), CASE_OK);
    else assert_int_equal(case_store_batch_commit(f->s), CASE_OK);
    assert_int_equal(case_store_batch_begin(s2), CASE_OK);
    for (int i = 0; i < 3; i++)
      assert_int_equal(case_store_fire(s2, "A", "tel", NULL, "t", "IND", T0 + 100 * round + 50,
                                       -1, NULL, NULL),
                       CASE_OK);
    assert_int_equal(case_store_batch_commit(s2), CASE_OK);
    fire(f, "A", "tel", T0 + 100 * round + 60);
  }
  case_store_close(s2);
  case_engine_close(e2);
  assert_int_equal(n_of(f, "A"), 3 * 5 + 4 * 3 + 4);
  verify_clean(f);
}

/* case_store_tick_v2(): batches of timers, a failing one alone rolled back. */
static void test_tick_batches(void **state) {
  fx *f = *state;
  static const char *BAD =
      "workflow: bad\n"
      "version: 1\n"
      "roles: [IND]\n"
      "initial: a\n"
      "states:\n"
      "  a:\n"
      "    after:\n"
      "      - {delay: 1 hours, target: b, actions: [\"error('kapot')\"]}\n"
      "  b: {}\n";
  const case_def *bad = NULL;
  if (case_def_load_string(f->e, BAD, strlen(BAD), "bad.yaml", &bad) != CASE_OK)
    fail_msg("load: %s", case_errmsg(f->e));
  assert_int_equal(case_store_add_def(f->s, bad), CASE_OK);
  case_store_set_cache(f->s, 16);
  char id[16];
  assert_int_equal(case_store_batch_begin(f->s), CASE_OK); /* creations in batches too */
  for (int i = 0; i < 250; i++) {
    snprintf(id, sizeof id, "T%03d", i);
    create(f, id, T0 + i);
    if (i % 50 == 7) {
      snprintf(id, sizeof id, "X%03d", i);
      assert_int_equal(case_store_create(f->s, bad, id, NULL, NULL, "t", "IND", T0, NULL),
                       CASE_OK);
    }
  }
  assert_int_equal(case_store_batch_commit(f->s), CASE_OK);
  int fired = -1;
  assert_int_equal(case_store_tick_v2(f->s, T0 + 3 * 3600, -1, &fired), CASE_INVALID);
  assert_int_equal(case_store_tick_v2(f->s, T0 + 3 * 3600, 40, &fired), CASE_SCRIPT);
  assert_int_equal(fired, 250);
  assert_non_null(strstr(case_errmsg(f->e), "4 more failures"));
  assert_true(f->e->ncases <= 16);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM refused"), 5);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM timers"), 5);
  case_instance *c = NULL;
  assert_int_equal(case_store_get(f->s, "T199", &c), CASE_OK);
  assert_int_equal(case_instance_in(c, "wacht"), 1);
  /* Nothing due: nothing, and no batch left open. */
  assert_int_equal(case_store_tick_v2(f->s, T0 + 1800, 0, &fired), CASE_OK);
  assert_int_equal(fired, 0);
  assert_int_equal(case_store_in_batch(f->s), 0);
  verify_clean(f);
}

/* A child that fires in batches of 10 (a savepoint each) at three cases and
 * reports the journal seq of each committed batch's last row. */
static void batch_child(const char *path, int fd) {
  case_engine *e;
  case_store *s;
  if (case_engine_open(&e) != CASE_OK) _exit(2);
  if (case_store_open(e, path, 0, &s) != CASE_OK) _exit(2);
  static const char *ids[] = {"k1", "k2", "k3"};
  for (int i = 0;; i++) {
    if (case_store_batch_begin(s) != CASE_OK) _exit(3);
    int64_t seq = 0;
    for (int j = 0; j < 10; j++) {
      int rc = case_store_fire(s, ids[(i + j) % 3], "tel", NULL, "kind", "IND", T0 + i, -1,
                               NULL, &seq);
      if (rc != CASE_OK) _exit(4);
    }
    if (case_store_batch_commit(s) != CASE_OK) _exit(5);
    ssize_t w = write(fd, &seq, sizeof seq);
    if (w != (ssize_t)sizeof seq) _exit(6);
  }
}

/* SIGKILL in the middle of a stream of batches: every reported batch is in
 * the journal, at most one more whole batch follows, never part of one, and
 * every case is exactly as its journal says. */
static void test_sigkill_mid_batch(void **state) {
  fx *f = *state;
  create(f, "k1", T0);
  create(f, "k2", T0);
  create(f, "k3", T0);
  close_all(f); /* no SQLite connection may cross fork() */
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    batch_child(f->path, p[1]);
  }
  close(p[1]);
  int64_t last = 0;
  int n = 0;
  while (n < 25) {
    ssize_t r = read(p[0], &last, sizeof last);
    assert_int_equal(r, sizeof last);
    n++;
  }
  kill(pid, SIGKILL);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  int64_t more;
  while (read(p[0], &more, sizeof more) == (ssize_t)sizeof more) {
    last = more;
    n++;
  }
  close(p[0]);
  open_all(f);
  long long rows = count_sql(f, "SELECT count(*) FROM journal");
  long long top = count_sql(f, "SELECT max(seq) FROM journal");
  assert_int_equal(rows, top);
  /* Three creations, then whole batches of ten. */
  assert_int_equal((rows - 3) % 10, 0);
  assert_true(top == last || top == last + 10);
  long long total = 0;
  static const char *ids[] = {"k1", "k2", "k3"};
  for (int i = 0; i < 3; i++) {
    long long nn = n_of(f, ids[i]);
    assert_int_equal(nn, rev_of(f, ids[i])); /* a fire is its row and its data, or neither */
    total += nn;
  }
  assert_int_equal(total, rows - 3);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM outbox"), rows - 3);
  verify_clean(f);
  print_message("killed after %d reported batches; journal ends at seq %lld\n", n, top);
}

/* Two processes writing batches to one store at once: every fire of both is
 * there, each batch whole. */
static int batch_writer(const char *path, int batches) {
  case_engine *e;
  case_store *s;
  if (case_engine_open(&e) != CASE_OK) return 2;
  if (case_store_open(e, path, 0, &s) != CASE_OK) return 2;
  for (int i = 0; i < batches; i++) {
    int rc = case_store_batch_begin(s);
    if (rc == CASE_BUSY) {
      i--;
      continue;
    }
    if (rc != CASE_OK) return 3;
    for (int j = 0; j < 7; j++)
      if (case_store_fire(s, "w", "tel", NULL, "w", "IND", T0 + 60, -1, NULL, NULL) != CASE_OK)
        return 4;
    rc = case_store_batch_commit(s);
    if (rc != CASE_OK) return 5;
  }
  case_store_close(s);
  case_engine_close(e);
  return 0;
}

static void test_batch_two_processes(void **state) {
  fx *f = *state;
  create(f, "w", T0);
  close_all(f);
  pid_t kids[2];
  for (int k = 0; k < 2; k++) {
    kids[k] = fork();
    assert_true(kids[k] >= 0);
    if (kids[k] == 0) _exit(batch_writer(f->path, 15));
  }
  for (int k = 0; k < 2; k++) {
    int status;
    assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
  }
  open_all(f);
  assert_int_equal(n_of(f, "w"), 2 * 15 * 7);
  assert_int_equal(rev_of(f, "w"), 2 * 15 * 7);
  verify_clean(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_cache_bounded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cache_flat_under_load, setup, teardown),
      cmocka_unit_test_setup_teardown(test_history, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list_damaged_row, setup, teardown),
      cmocka_unit_test_setup_teardown(test_latest_time, setup, teardown),
      cmocka_unit_test_setup_teardown(test_next_due, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tick_skips_failing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_rollback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_two_handles, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tick_batches, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sigkill_mid_batch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_two_processes, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
