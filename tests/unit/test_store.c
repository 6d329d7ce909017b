/* The durable store: round trips, crashes, concurrent writers, idempotency,
 * timers across restarts, tamper evidence, definition upgrades, outbox, feed. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <errno.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "libcase/libcase.h"
#include "libcase/store.h"
#include "internal.h" /* the engine's loaded definitions (lazy loading) */
#include "store_schema.h" /* older schemas, for the migration tests */
#include "store_uri.h" /* the backend under test: $CASE_TEST_STORE */

/* 2026-03-02T09:00:00Z, a Monday (10:00 in Amsterdam). */
#define T0 INT64_C(1772442000)
#define DAY INT64_C(86400)
/* The `after: 2 days` timer of ZAAK started at T0 runs out at local midnight
 * after day 2 (Wed 2026-03-04): 2026-03-05T00:00+01:00 = 2026-03-04T23:00Z. */
#define DUE_AFTER INT64_C(1772665200)

static const char *ZAAK =
    "workflow: zaak\n"
    "version: 1\n"
    "roles: [IND, COA]\n"
    "data:\n"
    "  n: {type: integer, default: 0}\n"
    "  note: {type: string}\n"
    "initial: open\n"
    "states:\n"
    "  open:\n"
    "    after:\n"
    "      - {delay: 2 days, target: wacht}\n"
    "    on:\n"
    "      tel: {roles: [IND], actions: [\"case.n = case.n + 1\", \"emit('geteld', {n = case.n})\"]}\n"
    "      notitie: {actions: [case.note = event.data.tekst]}\n"
    "      sluit: {guard: case.n > 0, target: dicht}\n"
    "      nee: {roles: [COA], target: dicht}\n"
    "  wacht:\n"
    "    deadlines:\n"
    "      termijn: {after: 8 weeks, clock: atw, source: Awb art. 4:13, on_expiry: verlopen}\n"
    "    on:\n"
    "      verlopen: te_laat\n"
    "      tel: {actions: [case.n = case.n + 1]}\n"
    "      verleng: {actions: [\"extend_deadline('termijn', event.data.duur)\"]}\n"
    "      zet: {actions: [\"set_deadline('termijn', '12 months')\"]}\n"
    "      terug: open\n"
    "  te_laat: {}\n"
    "  dicht: {final: true}\n";

/* Version 2: a new state and field; version 1 cases run on unchanged. */
static const char *ZAAK2 =
    "workflow: zaak\n"
    "version: 2\n"
    "roles: [IND, COA]\n"
    "data:\n"
    "  n: {type: integer, default: 100}\n"
    "initial: intake\n"
    "states:\n"
    "  intake:\n"
    "    on:\n"
    "      tel: {actions: [case.n = case.n + 1]}\n"
    "      door: dicht\n"
    "  dicht: {final: true}\n";

typedef struct fx {
  char path[600]; /* the store's location: a file, or a PostgreSQL URI (store_uri.h) */
  case_engine *e;
  case_store *s;
  const case_def *d;
  int64_t now; /* event time used by fire(); cases process events in time order */
  int64_t clock; /* the store's clock (case_store_set_clock()) */
} fx;

/* The tests' store clock: fixed, two years after T0, so that no test depends on
 * the date of the machine it runs on (terms up to then may be ticked). */
#define TEST_CLOCK (T0 + 730 * DAY)

static int64_t test_clock(void *ud) { return ((fx *)ud)->clock; }

static void open_all(fx *f) {
  assert_int_equal(case_engine_open(&f->e), CASE_OK);
  int rc = case_store_open(f->e, f->path, CASE_STORE_CREATE, &f->s);
  if (rc != CASE_OK) fail_msg("store open: %s", case_errmsg(f->e));
  if (!f->clock) f->clock = TEST_CLOCK;
  assert_int_equal(case_store_set_clock(f->s, test_clock, f), CASE_OK);
  f->d = case_def_find(f->e, "zaak", 1);
}

/* SQL that takes a schema 8 store back to schema 7: one profile per name, no pins. */
#define UNDO_SCHEMA_8                                                                        \
  UNDO_SCHEMA_10                                                                              \
  "CREATE TABLE p6(name TEXT PRIMARY KEY, source TEXT NOT NULL, hash TEXT NOT NULL, "        \
  "file TEXT, added INTEGER NOT NULL);"                                                      \
  "INSERT INTO p6 SELECT name,source,hash,file,added FROM profiles WHERE version=1;"         \
  "DROP TABLE profiles; ALTER TABLE p6 RENAME TO profiles;"                                  \
  "ALTER TABLE cases DROP COLUMN profile_version; ALTER TABLE cases DROP COLUMN profile_first;"

static void close_all(fx *f) {
  case_store_close(f->s);
  case_engine_close(f->e);
  f->s = NULL;
  f->e = NULL;
  f->d = NULL;
}

static void reopen(fx *f) {
  close_all(f);
  open_all(f);
}

static void remove_db(const char *path) { ts_remove(path); }

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  ts_location(f->path, sizeof f->path, "test_store");
  open_all(f);
  int rc = case_def_load_string(f->e, ZAAK, strlen(ZAAK), "zaak.yaml", &f->d);
  if (rc != CASE_OK) fail_msg("load: %s", case_errmsg(f->e));
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

static void create(fx *f, const char *id, const char *data) {
  int rc = case_store_create(f->s, f->d, id, NULL, data, "tester", "IND", T0, NULL);
  if (rc != CASE_OK) fail_msg("create %s: %s", id, case_errmsg(f->e));
}

static int64_t fire(fx *f, const char *id, const char *ev, const char *payload, const char *role) {
  int64_t seq = 0;
  int rc = case_store_fire(f->s, id, ev, payload, "tester", role, f->now ? f->now : T0 + 60, -1,
                           NULL, &seq);
  if (rc != CASE_OK) fail_msg("fire %s at %s (%d): %s", ev, id, rc, case_errmsg(f->e));
  return seq;
}

static char *config_of(fx *f, const char *id) {
  case_instance *c = NULL;
  assert_int_equal(case_store_get(f->s, id, &c), CASE_OK);
  char *cfg = NULL;
  assert_int_equal(case_instance_configuration(c, &cfg), CASE_OK);
  return cfg;
}

static void assert_config(fx *f, const char *id, const char *expected) {
  char *cfg = config_of(f, id);
  assert_string_equal(cfg, expected);
  case_free(cfg);
}

static void assert_data(fx *f, const char *id, const char *expected) {
  case_instance *c = NULL;
  assert_int_equal(case_store_get(f->s, id, &c), CASE_OK);
  char *data = NULL;
  assert_int_equal(case_instance_data(c, &data), CASE_OK);
  assert_string_equal(data, expected);
  case_free(data);
}

static int64_t revision_of(fx *f, const char *id) {
  case_instance *c = NULL;
  assert_int_equal(case_store_get(f->s, id, &c), CASE_OK);
  return case_instance_revision(c);
}

/* A count from the raw store (another connection, as another program would). */
static long long count_sql(fx *f, const char *sql) {
  long long n = ts_count(f->path, sql);
  if (n < 0) fail_msg("count on %s failed: %s", ts_backend(), sql);
  return n;
}

static void exec_sql(fx *f, const char *sql) {
  char err[600];
  if (ts_exec(f->path, sql, err, sizeof err) != 0) fail_msg("sql: %s: %s", sql, err);
}

/* The store's schema version as its own table says (PRAGMA user_version on
 * SQLite, the meta row on PostgreSQL). */
static long long schema_version(fx *f) {
  return count_sql(f, ts_pg() ? "SELECT value::int FROM meta WHERE key='schema_version'"
                              : "PRAGMA user_version");
}

static void verify_clean(fx *f, int cases, int events) {
  char *rep = NULL;
  int rc = case_store_verify(f->s, &rep);
  if (rc != CASE_OK) fail_msg("verify (%d): %s", rc, rep ? rep : case_errmsg(f->e));
  /* The report also carries the tree head (schema 6): its size is the journal's. */
  char want[128];
  snprintf(want, sizeof want, "{\"cases\":%d,\"events\":%d,\"tree\":{\"size\":%d,\"root\":\"",
           cases, events, events);
  if (strncmp(rep, want, strlen(want)) != 0) fail_msg("report %s, expected it to start %s", rep, want);
  const char *end = "\"complete\":true},\"problems\":[]}";
  if (strlen(rep) < strlen(end) || strcmp(rep + strlen(rep) - strlen(end), end) != 0)
    fail_msg("report %s, expected it to end %s", rep, end);
  case_free(rep);
}

/* ---- the feed, collected ---- */

typedef struct rows {
  int64_t seq[512];
  char *json[512];
  int n;
  int stop_after;
} rows;

static int collect_row(void *ud, int64_t seq, const char *json) {
  rows *r = ud;
  if (r->n >= 512) return 99;
  r->seq[r->n] = seq;
  r->json[r->n] = strdup(json);
  r->n++;
  return (r->stop_after && r->n == r->stop_after) ? 7 : 0;
}

static void rows_free(rows *r) {
  for (int i = 0; i < r->n; i++) free(r->json[i]);
  r->n = 0;
}

/* ------------------------------------------------------------------ */

static void test_roundtrip(void **state) {
  fx *f = *state;
  create(f, "z1", "{\"note\":\"eerste\"}");
  int64_t a = fire(f, "z1", "tel", NULL, "IND");
  int64_t b = fire(f, "z1", "tel", NULL, "IND");
  int64_t c = fire(f, "z1", "notitie", "{\"tekst\":\"gehoord\"}", "COA");
  assert_int_equal(a, 2); /* seq 1 is the creation */
  assert_int_equal(b, 3);
  assert_int_equal(c, 4);
  reopen(f);
  assert_non_null(f->d);
  assert_int_equal(revision_of(f, "z1"), 3);
  assert_config(f, "z1", "[\"open\"]");
  assert_data(f, "z1", "{\"n\":2,\"note\":\"gehoord\"}");
  /* The engine had no copy: the store restored it, and firing goes on. */
  assert_int_equal(fire(f, "z1", "tel", NULL, "IND"), 5);
  assert_data(f, "z1", "{\"n\":3,\"note\":\"gehoord\"}");
  verify_clean(f, 1, 5);
  /* A second program reads the same file. */
  case_engine *e2;
  case_store *s2;
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  assert_int_equal(case_store_open(e2, f->path, CASE_STORE_READONLY, &s2), CASE_OK);
  case_instance *x = NULL;
  assert_int_equal(case_store_get(s2, "z1", &x), CASE_OK);
  assert_int_equal(case_instance_revision(x), 4);
  assert_int_equal(case_store_fire(s2, "z1", "tel", NULL, "a", "IND", T0, -1, NULL, NULL),
                   CASE_MISUSE);
  case_store_close(s2);
  case_engine_close(e2);
  /* Unknown case, existing id. */
  assert_int_equal(case_store_fire(f->s, "nope", "tel", NULL, "a", "IND", T0, -1, NULL, NULL),
                   CASE_NOTFOUND);
  assert_int_equal(case_store_create(f->s, f->d, "z1", NULL, NULL, "a", "IND", T0, NULL),
                   CASE_EXISTS);
}

static void test_open_errors(void **state) {
  fx *f = *state;
  case_engine *e;
  case_store *s = (case_store *)1;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  assert_int_equal(case_store_open(e, "/tmp/no/such/dir/x.db", 0, &s), CASE_NOTFOUND);
  assert_null(s);
  if (ts_pg()) { /* the files below are SQLite's: test_pg_open_errors has PostgreSQL's */
    assert_int_equal(case_store_config(f->s, 7, 100), CASE_INVALID);
    assert_int_equal(case_store_config(f->s, CASE_STORE_SYNC_FULL, 2000), CASE_OK);
    assert_int_equal(schema_version(f), 10);
    case_engine_close(e);
    return;
  }
  /* Not a libcase store: a SQLite file with other tables. */
  char other[300];
  snprintf(other, sizeof other, "%s.other", f->path);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  assert_int_equal(case_store_open(e, other, CASE_STORE_CREATE, &s), CASE_CORRUPT);
  assert_non_null(strstr(case_errmsg(e), "not a libcase store"));
  /* A schema newer than this library. */
  assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "DROP TABLE t; PRAGMA user_version=99", NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  assert_int_equal(case_store_open(e, other, CASE_STORE_CREATE, &s), CASE_CORRUPT);
  unlink(other);
  /* Settings. */
  assert_int_equal(case_store_config(f->s, 7, 100), CASE_INVALID);
  assert_int_equal(case_store_config(f->s, CASE_STORE_SYNC_FULL, 2000), CASE_OK);
  assert_int_equal(schema_version(f), 10);
  case_engine_close(e);
}

static void test_refused_recorded(void **state) {
  fx *f = *state;
  create(f, "z1", NULL);
  int64_t seq = -1;
  /* Guard false (n is 0). */
  assert_int_equal(case_store_fire(f->s, "z1", "sluit", NULL, "jan", "IND", T0, -1, NULL, &seq),
                   CASE_GUARD);
  assert_int_equal(seq, 0);
  assert_non_null(strstr(case_errmsg(f->e), "case.n > 0"));
  /* Role may not. */
  assert_int_equal(case_store_fire(f->s, "z1", "tel", NULL, "piet", "COA", T0, -1, NULL, NULL),
                   CASE_DENIED);
  assert_int_equal(case_store_fire(f->s, "z1", "onbekend", NULL, "piet", "COA", T0, -1, NULL,
                                   NULL),
                   CASE_NOTHANDLED);
  assert_int_equal(revision_of(f, "z1"), 0);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal"), 1);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM refused WHERE case_id='z1'"), 3);
  assert_int_equal(count_sql(f, "SELECT code FROM refused WHERE event='sluit' AND actor='jan' "
                                "AND role='IND' AND revision=0"),
                   CASE_GUARD);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM refused WHERE event='tel' AND "
                                "message LIKE '%may not%'"),
                   1);
  /* The timer actor name is reserved, with a role as well (issue 15.10: a
   * person's rows must not look fired by the clock). */
  assert_int_equal(case_store_fire(f->s, "z1", "tel", NULL, "timer", NULL, T0, -1, NULL, NULL),
                   CASE_MISUSE);
  assert_int_equal(case_store_fire(f->s, "z1", "tel", NULL, "timer", "IND", T0, -1, NULL, NULL),
                   CASE_INVALID);
  assert_non_null(strstr(case_errmsg(f->e), "reserved for the clock"));
  assert_int_equal(case_store_create(f->s, f->d, "z9", NULL, NULL, "timer", "IND", T0, NULL),
                   CASE_INVALID);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal WHERE actor='timer'"), 0);
  /* Issue 15.6: a refusal keeps a bounded row, whatever the payload, actor,
   * event name or message. */
  size_t big = 3u << 20;
  char *p = malloc(big + 16), *actor = malloc(100001);
  memset(p, 'x', big + 16);
  memcpy(p, "{\"s\": \"", 7);
  memcpy(p + big + 16 - 3, "\"}", 3);
  memset(actor, 'a', 100000);
  actor[100000] = 0;
  case_engine_limit(f->e, CASE_LIMIT_PAYLOAD, 0);
  assert_int_equal(case_store_fire(f->s, "z1", "sluit", p, actor, "IND", T0, -1, NULL, NULL),
                   CASE_GUARD);
  case_engine_limit(f->e, CASE_LIMIT_PAYLOAD, 1048576);
  assert_int_equal(case_store_fire(f->s, "z1", "tel", p, "jan", "IND", T0, -1, NULL, NULL),
                   CASE_LIMIT);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM refused WHERE length(payload) > 2048 OR "
                                "length(actor) > 1024 OR length(message) > 1100"),
                   0);
  assert_int_equal(count_sql(f, ts_pg() ? "SELECT count(*) FROM refused WHERE (payload::json->"
                                "'refused_payload_cut'->>'bytes')::bigint = 3145743 AND "
                                "length(payload::json->'refused_payload_cut'->>'sha256') = 64"
                                : "SELECT count(*) FROM refused WHERE json_extract(payload, "
                                "'$.refused_payload_cut.bytes') = 3145743 AND "
                                "length(json_extract(payload, '$.refused_payload_cut.sha256')) = 64"),
                   2);
  free(p);
  free(actor);
  verify_clean(f, 1, 1);
}

static void test_idempotency(void **state) {
  fx *f = *state;
  create(f, "z1", NULL);
  create(f, "z2", NULL);
  int64_t s1 = 0, s2 = 0;
  assert_int_equal(case_store_fire(f->s, "z1", "tel", NULL, "a", "IND", T0, -1, "req-1", &s1),
                   CASE_OK);
  assert_int_equal(case_store_fire(f->s, "z1", "tel", NULL, "a", "IND", T0, -1, "req-1", &s2),
                   CASE_OK);
  assert_int_equal(s1, 3);
  assert_int_equal(s2, s1);
  assert_int_equal(revision_of(f, "z1"), 1);
  assert_data(f, "z1", "{\"n\":1,\"note\":null}");
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal WHERE case_id='z1'"), 2);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM outbox"), 1);
  /* Also after a restart, and even with a stale expected revision. */
  reopen(f);
  s2 = 0;
  assert_int_equal(case_store_fire(f->s, "z1", "tel", NULL, "a", "IND", T0, 0, "req-1", &s2),
                   CASE_OK);
  assert_int_equal(s2, s1);
  assert_int_equal(revision_of(f, "z1"), 1);
  /* A key belongs to one request, so to one case (CASE_EXISTS since issue 12 §7:
   * the key is taken; it used to be CASE_MISUSE for another case only). */
  assert_int_equal(case_store_fire(f->s, "z2", "tel", NULL, "a", "IND", T0, -1, "req-1", NULL),
                   CASE_EXISTS);
  assert_int_equal(revision_of(f, "z2"), 0);
  verify_clean(f, 2, 3);
}

/* Named consumers: each gets every row once, leases keep two processes of one
 * consumer apart, a lease that runs out hands the row out again. */
static void test_outbox_consumers(void **state) {
  fx *f = *state;
  create(f, "z1", NULL);
  for (int i = 0; i < 5; i++) fire(f, "z1", "tel", NULL, "IND");
  char *a = NULL, *b = NULL;
  assert_int_equal(case_store_outbox_claim(f->s, "mailer", 2, 30, &a), CASE_OK);
  assert_non_null(strstr(a, "[{\"id\":1,\"case\":\"z1\",\"seq\":2,\"name\":\"geteld\","
                            "\"payload\":{\"n\":1},\"created\":"));
  assert_non_null(strstr(a, "{\"id\":2,"));
  assert_null(strstr(a, "\"id\":3"));
  /* A second process of the same consumer: the next rows, not the leased ones. */
  assert_int_equal(case_store_outbox_claim(f->s, "mailer", 10, 30, &b), CASE_OK);
  assert_null(strstr(b, "\"id\":1,"));
  assert_null(strstr(b, "\"id\":2,"));
  assert_non_null(strstr(b, "[{\"id\":3,"));
  assert_non_null(strstr(b, "{\"id\":5,"));
  case_free(a);
  case_free(b);
  assert_int_equal(case_store_outbox_claim(f->s, "mailer", 10, 30, &a), CASE_OK);
  assert_string_equal(a, "[]");
  case_free(a);
  /* Another consumer gets everything, and the unnamed outbox is untouched. */
  assert_int_equal(case_store_outbox_claim(f->s, "archief", 10, 0, &a), CASE_OK);
  assert_non_null(strstr(a, "[{\"id\":1,"));
  assert_non_null(strstr(a, "{\"id\":5,"));
  case_free(a);
  assert_int_equal(case_store_outbox(f->s, 0, &a), CASE_OK);
  assert_non_null(strstr(a, "[{\"id\":1,"));
  case_free(a);
  /* Done rows never come back; 1 and 3 done, 2 not: after the lease only 2, 4, 5. */
  assert_int_equal(case_store_outbox_done(f->s, "mailer", 1), CASE_OK);
  assert_int_equal(case_store_outbox_done(f->s, "mailer", 3), CASE_OK);
  assert_int_equal(case_store_outbox_done(f->s, "mailer", 3), CASE_OK); /* twice is fine */
  assert_int_equal(case_store_outbox_done(f->s, "mailer", 42), CASE_NOTFOUND);
  assert_int_equal(count_sql(f, "SELECT upto FROM outbox_consumers WHERE name='mailer'"), 1);
  f->clock += 31;
  assert_int_equal(case_store_outbox_claim(f->s, "mailer", 10, 30, &a), CASE_OK);
  assert_non_null(strstr(a, "[{\"id\":2,"));
  assert_null(strstr(a, "\"id\":3,"));
  assert_non_null(strstr(a, "{\"id\":4,"));
  assert_non_null(strstr(a, "{\"id\":5,"));
  case_free(a);
  for (int id = 2; id <= 5; id++) assert_int_equal(case_store_outbox_done(f->s, "mailer", id), CASE_OK);
  /* Folded into the cursor: nothing left in flight. */
  assert_int_equal(count_sql(f, "SELECT upto FROM outbox_consumers WHERE name='mailer'"), 5);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM outbox_claims WHERE consumer='mailer'"), 0);
  fire(f, "z1", "tel", NULL, "IND");
  f->clock += 31;
  assert_int_equal(case_store_outbox_claim(f->s, "mailer", 10, 30, &a), CASE_OK);
  assert_non_null(strstr(a, "[{\"id\":6,"));
  assert_null(strstr(a, "\"id\":5,"));
  case_free(a);
  /* Bad arguments say what. */
  assert_int_equal(case_store_outbox_claim(f->s, "", 1, 0, &a), CASE_INVALID);
  assert_non_null(strstr(case_errmsg(f->e), "1 to 128"));
  assert_int_equal(case_store_outbox_claim(f->s, "m", 0, 0, &a), CASE_INVALID);
  assert_int_equal(case_store_outbox_claim(f->s, "m", 1, -5, &a), CASE_INVALID);
  assert_int_equal(case_store_outbox_claim(f->s, "\xff", 1, 0, &a), CASE_INVALID);
  assert_int_equal(case_store_outbox_claim(f->s, "m", 1, 0, NULL), CASE_MISUSE);
  verify_clean(f, 1, 7);
}

static void test_stale_revision_conflict(void **state) {
  fx *f = *state;
  create(f, "z1", NULL);
  assert_int_equal(case_store_fire(f->s, "z1", "tel", NULL, "a", "IND", T0, 0, NULL, NULL),
                   CASE_OK);
  assert_int_equal(case_store_fire(f->s, "z1", "tel", NULL, "a", "IND", T0, 0, NULL, NULL),
                   CASE_CONFLICT);
  assert_non_null(strstr(case_errmsg(f->e), "revision 1, not 0"));
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal"), 2);
  assert_int_equal(case_store_fire(f->s, "z1", "tel", NULL, "a", "IND", T0, 1, NULL, NULL),
                   CASE_OK);
  assert_int_equal(revision_of(f, "z1"), 2);
}

static void test_outbox_and_follow(void **state) {
  fx *f = *state;
  create(f, "z1", NULL);
  fire(f, "z1", "tel", NULL, "IND");
  fire(f, "z1", "tel", NULL, "IND");
  char *ob = NULL;
  assert_int_equal(case_store_outbox(f->s, 0, &ob), CASE_OK);
  char want[512];
  snprintf(want, sizeof want, "[{\"id\":1,\"case\":\"z1\",\"seq\":2,\"name\":\"geteld\","
           "\"payload\":{\"n\":1},\"created\":");
  assert_memory_equal(ob, want, strlen(want));
  assert_non_null(strstr(ob, "{\"id\":2,\"case\":\"z1\",\"seq\":3,\"name\":\"geteld\","
                             "\"payload\":{\"n\":2}"));
  case_free(ob);
  assert_int_equal(case_store_outbox_ack(f->s, 1), CASE_OK);
  assert_int_equal(case_store_outbox_ack(f->s, 1), CASE_OK); /* twice is fine */
  assert_int_equal(case_store_outbox_ack(f->s, 42), CASE_NOTFOUND);
  assert_int_equal(case_store_outbox(f->s, 0, &ob), CASE_OK);
  assert_non_null(strstr(ob, "\"id\":2"));
  assert_null(strstr(ob, "\"id\":1,"));
  case_free(ob);
  assert_int_equal(case_store_outbox(f->s, 1, &ob), CASE_OK);
  assert_int_equal(case_store_outbox_ack(f->s, 2), CASE_OK);
  case_free(ob);
  assert_int_equal(case_store_outbox(f->s, 0, &ob), CASE_OK);
  assert_string_equal(ob, "[]");
  case_free(ob);

  /* The feed: every row from a sequence on, in order. */
  rows r = {0};
  int64_t last = -1;
  assert_int_equal(case_store_follow(f->s, 0, 0, collect_row, &r, &last), CASE_OK);
  assert_int_equal(r.n, 3);
  assert_int_equal(last, 3);
  assert_int_equal(r.seq[0], 1);
  assert_int_equal(r.seq[2], 3);
  assert_non_null(strstr(r.json[0], "{\"seq\":1,\"case\":\"z1\",\"revision\":0,\"event\":"
                                    "\"create\",\"payload\":null,\"actor\":\"tester\","
                                    "\"role\":\"IND\",\"time\":1772442000,"));
  assert_non_null(strstr(r.json[2], "\"revision\":2,\"event\":\"tel\""));
  assert_non_null(strstr(r.json[2], "\"configuration\":[\"open\"],\"data\":{\"n\":2,"
                                    "\"note\":null}"));
  rows_free(&r);
  assert_int_equal(case_store_follow(f->s, 1, 1, collect_row, &r, &last), CASE_OK);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.seq[0], 2);
  assert_int_equal(last, 2);
  rows_free(&r);
  r.stop_after = 2;
  assert_int_equal(case_store_follow(f->s, 0, 0, collect_row, &r, &last), 7);
  assert_int_equal(r.n, 2);
  assert_int_equal(last, 1); /* the row that stopped it was delivered but not counted */
  rows_free(&r);
  assert_int_equal(case_store_follow(f->s, 3, 0, collect_row, &r, &last), CASE_OK);
  assert_int_equal(r.n, 0);
  assert_int_equal(last, 3);
}

/* ---- timers ---- */

static void test_timers_across_reopen(void **state) {
  fx *f = *state;
  create(f, "z1", NULL);
  create(f, "z2", NULL);
  /* z2 leaves `open` at once: its delayed transition is cancelled. */
  assert_int_equal(case_store_fire(f->s, "z2", "nee", NULL, "a", "COA", T0 + 10, -1, NULL, NULL),
                   CASE_OK);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM timers WHERE case_id='z2'"), 0);
  assert_int_equal(count_sql(f, "SELECT due FROM timers WHERE case_id='z1'"), DUE_AFTER);
  reopen(f);
  int fired = -1;
  assert_int_equal(case_store_tick(f->s, DUE_AFTER - 1, &fired), CASE_OK);
  assert_int_equal(fired, 0);
  assert_config(f, "z1", "[\"open\"]");
  reopen(f);
  assert_int_equal(case_store_tick(f->s, DUE_AFTER + 3600, &fired), CASE_OK);
  assert_int_equal(fired, 1);
  assert_config(f, "z1", "[\"wacht\"]");
  assert_config(f, "z2", "[\"dicht\"]");
  assert_int_equal(count_sql(f, "SELECT time FROM journal WHERE event='after.open.0' AND "
                                "actor='timer' AND role IS NULL"),
                   DUE_AFTER);
  /* A repeated (at-least-once) tick fires nothing twice. */
  assert_int_equal(case_store_tick(f->s, DUE_AFTER + 3600, &fired), CASE_OK);
  assert_int_equal(fired, 0);
  reopen(f);
  assert_int_equal(case_store_tick(f->s, DUE_AFTER + 7200, &fired), CASE_OK);
  assert_int_equal(fired, 0);
  /* The deadline of `wacht`: 8 weeks on the Atw clock from Thu 2026-03-05. */
  assert_int_equal(count_sql(f, "SELECT count(*) FROM timers WHERE case_id='z1' AND "
                                "name='termijn' AND last_day='2026-04-30' AND fired=0"),
                   1);
  /* Everything due up to far ahead: the deadline expires exactly once. */
  assert_int_equal(case_store_tick(f->s, T0 + 400 * DAY, &fired), CASE_OK);
  assert_int_equal(fired, 1);
  assert_config(f, "z1", "[\"te_laat\"]");
  assert_int_equal(case_store_tick(f->s, T0 + 400 * DAY, &fired), CASE_OK);
  assert_int_equal(fired, 0);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal WHERE actor='timer'"), 2);
  verify_clean(f, 2, 5);
}

static void test_deadline_extension(void **state) {
  fx *f = *state;
  create(f, "z1", NULL);
  int fired = 0;
  assert_int_equal(case_store_tick(f->s, DUE_AFTER, &fired), CASE_OK);
  assert_int_equal(fired, 1);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM timers WHERE last_day='2026-04-30'"), 1);
  f->now = DUE_AFTER + 60; /* after the timer: events are processed in time order */
  /* Extending by 2 weeks counts on from the last day (Thu 2026-04-30): day 14
     is Thu 2026-05-14, Ascension Day (Easter is 5 April 2026); Fri 2026-05-15
     is a decree day (Stcrt. 2025, 24713), then a weekend: the term ends on
     Monday 2026-05-18. */
  int64_t seq = fire(f, "z1", "verleng", "{\"duur\":\"2 weeks\"}", "IND");
  assert_int_equal(count_sql(f, "SELECT count(*) FROM timers WHERE last_day='2026-05-18'"), 1);
  /* 9 months more: Thu 2027-02-18 (a term over 3 months is outside the Atw,
     art. 4, and would not move). */
  fire(f, "z1", "verleng", "{\"duur\":\"9 months\"}", "IND");
  assert_int_equal(count_sql(f, "SELECT count(*) FROM timers WHERE last_day='2027-02-18'"), 1);
  /* A bad duration refuses the event and changes nothing. */
  assert_int_equal(case_store_fire(f->s, "z1", "verleng", "{\"duur\":\"9 fortnights\"}", "a",
                                   "IND", f->now, -1, NULL, NULL),
                   CASE_INVALID);
  assert_non_null(strstr(case_errmsg(f->e), "bad duration '9 fortnights'"));
  case_instance *c = NULL;
  assert_int_equal(case_store_get(f->s, "z1", &c), CASE_OK);
  char *tj = NULL;
  assert_int_equal(case_instance_timers(c, &tj), CASE_OK);
  assert_non_null(strstr(tj, "\"last_day\":\"2027-02-18\""));
  assert_non_null(strstr(tj, "\"source\":\"Awb art. 4:13\""));
  case_free(tj);
  /* The change is journalled with the event. */
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM journal WHERE seq=%lld AND event='verleng'",
           (long long)seq);
  assert_int_equal(count_sql(f, sql), 1);
  /* Setting 12 months recounts from the start (Thu 2026-03-05): Fri 2027-03-05. */
  fire(f, "z1", "zet", NULL, "IND");
  assert_int_equal(count_sql(f, "SELECT count(*) FROM timers WHERE last_day='2027-03-05'"), 1);
  /* Not expired at the old date any more. */
  assert_int_equal(case_store_tick(f->s, T0 + 200 * DAY, &fired), CASE_OK);
  assert_int_equal(fired, 0);
  reopen(f);
  verify_clean(f, 1, 5);
}

/* A timer whose macrostep fails is recorded as refused and does not hold up
 * the timers of other cases; the next tick tries it again. */
static void test_failing_timer_does_not_block(void **state) {
  fx *f = *state;
  static const char *KAPOT =
      "workflow: kapot\nversion: 1\ninitial: a\nstates:\n"
      "  a:\n"
      "    after:\n"
      "      - {delay: 1 hour, target: b, actions: [\"error('stuk')\"]}\n"
      "  b: {}\n";
  const case_def *k = NULL;
  assert_int_equal(case_def_load_string(f->e, KAPOT, strlen(KAPOT), "kapot.yaml", &k), CASE_OK);
  assert_int_equal(case_store_create(f->s, k, "k1", NULL, NULL, "a", NULL, T0, NULL), CASE_OK);
  create(f, "z1", NULL);
  int fired = -1;
  assert_int_equal(case_store_tick(f->s, DUE_AFTER, &fired), CASE_SCRIPT);
  assert_non_null(strstr(case_errmsg(f->e), "stuk"));
  assert_int_equal(fired, 1);
  assert_config(f, "z1", "[\"wacht\"]");
  assert_config(f, "k1", "[\"a\"]");
  assert_int_equal(count_sql(f, "SELECT count(*) FROM refused WHERE case_id='k1' AND "
                                "event='after.a.0' AND actor='timer'"),
                   1);
  assert_int_equal(case_store_tick(f->s, DUE_AFTER, &fired), CASE_SCRIPT);
  assert_int_equal(fired, 0);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM refused WHERE case_id='k1'"), 2);
  verify_clean(f, 2, 3);
}

/* Issue 12.1: a delay of 0 that re-enters its state ran out for ever (tick
 * wrote ~15,000 rows a second, fire hung).  Each case may now have at most
 * CASE_LIMIT_EXPIRIES expiries per tick or fire: past it nothing of that case
 * is committed, the other cases go on and the error names the case. */
static const char *LUS =
    "workflow: lus\nversion: 1\nroles: [IND]\ninitial: a\nstates:\n"
    "  a:\n"
    "    after:\n"
    "      - {delay: 0 seconds, target: a}\n"
    "    on: {stop: b}\n"
    "  b: {final: true}\n";

static void test_expiry_limit_tick(void **state) {
  fx *f = *state;
  const case_def *l = NULL;
  assert_int_equal(case_def_load_string(f->e, LUS, strlen(LUS), "lus.yaml", &l), CASE_OK);
  assert_int_equal(case_def_warning_count(l), 1); /* and the loader said so */
  assert_non_null(strstr(case_def_warning(l, 0), "lus.yaml:8:17: delay '0 seconds' is zero"));
  assert_int_equal(case_store_create(f->s, l, "l1", NULL, NULL, "a", "IND", T0, NULL), CASE_OK);
  create(f, "z1", NULL);
  assert_int_equal(case_engine_limit(f->e, CASE_LIMIT_EXPIRIES, 50), 1000);
  int fired = -1;
  assert_int_equal(case_store_tick(f->s, DUE_AFTER, &fired), CASE_LIMIT);
  assert_non_null(strstr(case_errmsg(f->e), "case 'l1': more than 50 timer expiries in one "
                                            "tick ('after.a.0' of state 'a'"));
  assert_int_equal(fired, 1); /* z1's timer fired */
  assert_config(f, "z1", "[\"wacht\"]");
  /* Nothing of l1 was committed: only its creation row, one refusal. */
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal WHERE case_id='l1'"), 1);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM refused WHERE case_id='l1' AND code=11"),
                   1);
  assert_int_equal(revision_of(f, "l1"), 0);
  /* Firing at it stops at the limit too, and writes nothing. */
  int64_t seq = -1;
  assert_int_equal(case_store_fire(f->s, "l1", "stop", NULL, "x", "IND", T0 + 60, -1, NULL,
                                   &seq),
                   CASE_LIMIT);
  assert_non_null(strstr(case_errmsg(f->e), "in one fire"));
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal WHERE case_id='l1'"), 1);
  assert_int_equal(revision_of(f, "l1"), 0);
  /* A limit above what a case needs lets its timers run. */
  assert_int_equal(case_engine_limit(f->e, CASE_LIMIT_EXPIRIES, 1000000), 50);
  verify_clean(f, 2, 3);
}

/* Issue 12.8: a path that is no store says what it is, whatever opens it. */
static void test_open_wrong_files(void **state) {
  fx *f = *state;
  case_engine *e;
  case_store *s = (case_store *)1;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  char p[300], want[600];
  /* a directory */
  snprintf(p, sizeof p, "%s.dir", f->path);
  assert_int_equal(mkdir(p, 0700), 0);
  for (int flags = 0; flags <= CASE_STORE_READONLY; flags++) {
    assert_int_equal(case_store_open(e, p, flags, &s), CASE_IO);
    snprintf(want, sizeof want, "store '%s': is a directory, not a store", p);
    if (strncmp(case_errmsg(e), want, strlen(want)) != 0) fail_msg("%s", case_errmsg(e));
  }
  rmdir(p);
  /* an empty file: no store, unless created in it */
  snprintf(p, sizeof p, "%s.empty", f->path);
  FILE *fp = fopen(p, "w");
  assert_non_null(fp);
  fclose(fp);
  assert_int_equal(case_store_open(e, p, 0, &s), CASE_CORRUPT);
  snprintf(want, sizeof want, "store '%s': is an empty file (0 bytes), not a libcase store", p);
  if (strncmp(case_errmsg(e), want, strlen(want)) != 0) fail_msg("%s", case_errmsg(e));
  assert_int_equal(case_store_open(e, p, CASE_STORE_READONLY, &s), CASE_CORRUPT);
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_size, 0); /* nothing was written to it */
  assert_int_equal(case_store_open(e, p, CASE_STORE_CREATE, &s), CASE_OK);
  case_store_close(s);
  remove_db(p);
  /* a file that is not SQLite */
  snprintf(p, sizeof p, "%s.txt", f->path);
  fp = fopen(p, "w");
  assert_non_null(fp);
  fputs("zaak;event\n", fp);
  fclose(fp);
  assert_int_equal(case_store_open(e, p, 0, &s), CASE_CORRUPT);
  snprintf(want, sizeof want, "store '%s': is not a libcase store: not an SQLite database (it "
           "starts with \"zaak;event\\x0a\")", p);
  assert_string_equal(case_errmsg(e), want);
  assert_null(strstr(case_errmsg(e), "synchronous"));
  unlink(p);
  case_engine_close(e);
}

/* Issue 12.2: a role the workflow does not declare cannot create a case (it
 * was accepted and journalled); NULL creates as the system. */
static void test_create_role_checked(void **state) {
  fx *f = *state;
  assert_int_equal(case_store_create(f->s, f->d, "h1", NULL, NULL, "x", "HACKER", T0, NULL),
                   CASE_DENIED);
  assert_non_null(strstr(case_errmsg(f->e), "role 'HACKER' is not declared by workflow 'zaak' "
                                            "(roles: IND, COA); nothing was written"));
  assert_null(case_instance_find(f->e, "h1"));
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal WHERE case_id='h1'"), 0);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM cases"), 0);
  assert_int_equal(case_store_create(f->s, f->d, "h2", NULL, NULL, "sys", NULL, T0, NULL),
                   CASE_OK);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal WHERE case_id='h2' AND role IS NULL"),
                   1);
}

/* ---- tamper evidence ---- */

static void test_tampered_row_named(void **state) {
  fx *f = *state;
  create(f, "z1", NULL);
  create(f, "z2", NULL);
  fire(f, "z1", "tel", NULL, "IND");
  int64_t seq = fire(f, "z1", "tel", NULL, "IND");
  fire(f, "z2", "tel", NULL, "IND");
  fire(f, "z1", "tel", NULL, "IND");
  verify_clean(f, 2, 6);
  char sql[256];
  snprintf(sql, sizeof sql, "UPDATE journal SET data='{\"n\":99,\"note\":null}' WHERE seq=%lld",
           (long long)seq);
  /* With the sqlite3 shell when it is installed, as an intruder would; else the API. */
  char file[700], cmd[1500];
  int shell = !ts_pg() && system("command -v sqlite3 >/dev/null 2>&1") == 0;
  if (shell) {
    snprintf(file, sizeof file, "%s.sql", f->path);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fprintf(fp, "%s;\n", sql);
    fclose(fp);
    snprintf(cmd, sizeof cmd, "sqlite3 '%s' < '%s'", f->path, file);
    assert_int_equal(system(cmd), 0);
    unlink(file);
  } else {
    exec_sql(f, sql);
  }
  print_message("journal row %lld edited with the %s\n", (long long)seq,
                shell ? "sqlite3 shell" : ts_pg() ? "libpq" : "sqlite3 API");
  char *rep = NULL;
  assert_int_equal(case_store_verify(f->s, &rep), CASE_CORRUPT);
  char want[128];
  snprintf(want, sizeof want, "{\"case\":\"z1\",\"seq\":%lld,\"problem\":\"hash\"",
           (long long)seq);
  if (!strstr(rep, want)) fail_msg("report lacks %s: %s", want, rep);
  assert_null(strstr(rep, "\"case\":\"z2\""));
  case_free(rep);
  /* Recomputing the row's hash does not help: the next row's chain breaks. */
  exec_sql(f, "UPDATE journal SET prev_hash='0000' WHERE case_id='z2' AND revision=1");
  assert_int_equal(case_store_verify(f->s, &rep), CASE_CORRUPT);
  assert_non_null(strstr(rep, "\"case\":\"z2\",\"seq\":5,\"problem\":\"chain\""));
  assert_non_null(strstr(rep, "\"cases\":2,\"events\":6"));
  case_free(rep);
}

static void test_tampered_case_row(void **state) {
  fx *f = *state;
  create(f, "z1", NULL);
  fire(f, "z1", "tel", NULL, "IND");
  /* The stored state (not part of the row's hash) edited behind the
   * journal's back: a fire would load a case with a timer counter it never had. */
  exec_sql(f, "UPDATE journal SET state=replace(state, '\"timer_seq\":1', '\"timer_seq\":9') "
              "WHERE seq=2");
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal WHERE seq=2 AND state LIKE "
                                "'%\"timer_seq\":9%'"), 1);
  char *rep = NULL;
  assert_int_equal(case_store_verify(f->s, &rep), CASE_CORRUPT);
  assert_non_null(strstr(rep, "{\"case\":\"z1\",\"seq\":2,\"problem\":\"state\""));
  case_free(rep);
}

/* ---- definition upgrade ---- */

static void test_definition_upgrade(void **state) {
  fx *f = *state;
  create(f, "old", NULL);
  fire(f, "old", "tel", NULL, "IND");
  const case_def *d2 = NULL;
  assert_int_equal(case_def_load_string(f->e, ZAAK2, strlen(ZAAK2), "zaak2.yaml", &d2), CASE_OK);
  assert_int_equal(case_store_add_def(f->s, d2), CASE_OK);
  assert_int_equal(case_store_create(f->s, d2, "new", NULL, NULL, "a", "IND", T0, NULL), CASE_OK);
  fire(f, "old", "tel", NULL, "IND");
  fire(f, "new", "tel", NULL, "IND");
  reopen(f);
  assert_non_null(case_def_find(f->e, "zaak", 1));
  assert_int_equal(case_def_version(case_def_find(f->e, "zaak", 0)), 2);
  case_instance *c = NULL;
  assert_int_equal(case_store_get(f->s, "old", &c), CASE_OK);
  assert_int_equal(case_def_version(case_instance_def(c)), 1);
  assert_config(f, "old", "[\"open\"]");
  assert_data(f, "old", "{\"n\":2,\"note\":null}");
  assert_int_equal(case_store_get(f->s, "new", &c), CASE_OK);
  assert_int_equal(case_def_version(case_instance_def(c)), 2);
  assert_data(f, "new", "{\"n\":101}");
  /* Old cases go on on version 1. */
  fire(f, "old", "tel", NULL, "IND");
  assert_int_equal(count_sql(f, "SELECT count(*) FROM definitions WHERE id='zaak'"), 2);
  assert_int_equal(count_sql(f, "SELECT version FROM cases WHERE id='old'"), 1);
  assert_int_equal(count_sql(f, "SELECT version FROM cases WHERE id='new'"), 2);
  verify_clean(f, 2, 6);
  /* The same id and version with other content is refused. */
  size_t len = strlen(ZAAK2);
  char *bad = malloc(len + 16);
  assert_non_null(bad);
  memcpy(bad, ZAAK2, len);
  strcpy(bad + len, "# changed\n");
  case_engine *e2;
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  const case_def *dx = NULL;
  assert_int_equal(case_def_load_string(e2, bad, strlen(bad), "bad.yaml", &dx), CASE_OK);
  case_store *s2 = NULL;
  assert_int_equal(case_store_open(e2, f->path, 0, &s2), CASE_EXISTS);
  case_engine_close(e2);
  free(bad);
}

/* ---- processes ---- */

static void write_all(int fd, const void *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) _exit(3);
    p = (const char *)p + w;
    n -= (size_t)w;
  }
}

/* Child: fires `tel` at z1 until killed, writing each committed seq. */
static void crash_child(const char *path, int fd) {
  case_engine *e;
  case_store *s;
  if (case_engine_open(&e) != CASE_OK) _exit(2);
  if (case_store_open(e, path, 0, &s) != CASE_OK) _exit(2);
  for (int i = 0;; i++) {
    int64_t seq = 0;
    int rc = case_store_fire(s, "z1", "tel", NULL, "kind", "IND", T0 + i, -1, NULL, &seq);
    if (rc == CASE_BUSY) continue;
    if (rc != CASE_OK) _exit(4);
    write_all(fd, &seq, sizeof seq);
  }
}

static void test_sigkill_mid_stream(void **state) {
  fx *f = *state;
  create(f, "z1", NULL);
  close_all(f); /* no SQLite connection may cross fork() */
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    crash_child(f->path, p[1]);
  }
  close(p[1]);
  int64_t seqs[4096];
  int n = 0;
  while (n < 40) {
    ssize_t r = read(p[0], &seqs[n], sizeof seqs[0]);
    assert_int_equal(r, sizeof seqs[0]);
    n++;
  }
  kill(pid, SIGKILL);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  /* What the child reported before it died. */
  for (;;) {
    ssize_t r = read(p[0], &seqs[n], sizeof seqs[0]);
    if (r != sizeof seqs[0] || n >= 4095) break;
    n++;
  }
  close(p[0]);
  open_all(f);
  rows r = {0};
  int64_t last = 0;
  /* Every reported seq is in the journal, in order; at most one more committed
     row (killed between COMMIT and the report) follows the last reported one. */
  int64_t after = 0;
  int found = 0;
  for (;;) {
    rows_free(&r);
    assert_int_equal(case_store_follow(f->s, after, 500, collect_row, &r, &last), CASE_OK);
    if (r.n == 0) break;
    for (int i = 0; i < r.n; i++)
      for (int k = found; k < n; k++)
        if (seqs[k] == r.seq[i]) found = k + 1;
    after = last;
  }
  rows_free(&r);
  assert_int_equal(found, n);
  assert_true(last == seqs[n - 1] || last == seqs[n - 1] + 1);
  int64_t rev = revision_of(f, "z1");
  assert_int_equal(rev, last - 1); /* seq 1 is the creation */
  char want[64];
  snprintf(want, sizeof want, "{\"n\":%lld,\"note\":null}", (long long)rev);
  assert_data(f, "z1", want);
  char *rep = NULL;
  assert_int_equal(case_store_verify(f->s, &rep), CASE_OK);
  case_free(rep);
  print_message("killed after %d reported fires; journal ends at seq %lld\n", n, (long long)last);
}

/* Child: batches of 9 fires (`tel` at z1, z2, z3 in turn, each with its
 * outbox row) and one refused fire (`nee` by a role that may not), until
 * killed; after each commit it writes the number of batches committed. */
enum { BATCH_FIRES = 9 };
static void batch_crash_child(const char *path, int fd) {
  case_engine *e;
  case_store *s;
  if (case_engine_open(&e) != CASE_OK) _exit(2);
  if (case_store_open(e, path, 0, &s) != CASE_OK) _exit(2);
  static const char *const ids[] = {"z1", "z2", "z3"};
  for (int64_t b = 0;; b++) {
    int rc;
    while ((rc = case_store_batch_begin(s)) == CASE_BUSY) {
    }
    if (rc != CASE_OK) _exit(5);
    for (int j = 0; j < BATCH_FIRES; j++) {
      rc = case_store_fire(s, ids[j % 3], "tel", NULL, "kind", "IND", T0 + b * 100 + j, -1,
                           NULL, NULL);
      if (rc != CASE_OK) _exit(4);
      if (j == 4 && case_store_fire(s, "z1", "nee", NULL, "kind", "IND", T0 + b * 100 + j, -1,
                                    NULL, NULL) != CASE_DENIED)
        _exit(6); /* refused inside the batch: its neighbours stay */
    }
    if (case_store_batch_commit(s) != CASE_OK) _exit(7);
    int64_t done = b + 1;
    write_all(fd, &done, sizeof done);
  }
}

/* Issue 14: a process killed in the middle of a batch loses the batch's
 * uncommitted fires, all of them, and nothing else: the store holds whole
 * committed batches only, each fire with its journal row, outbox row and case
 * state together, and verifies clean. */
static void test_sigkill_mid_batch(void **state) {
  fx *f = *state;
  create(f, "z1", NULL);
  create(f, "z2", NULL);
  create(f, "z3", NULL);
  close_all(f);
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    batch_crash_child(f->path, p[1]);
  }
  close(p[1]);
  int64_t reported = 0, v;
  while (reported < 25) {
    assert_int_equal(read(p[0], &v, sizeof v), sizeof v);
    reported = v;
  }
  kill(pid, SIGKILL);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  while (read(p[0], &v, sizeof v) == sizeof v) reported = v;
  close(p[0]);
  open_all(f);
  long long rows = count_sql(f, "SELECT count(*) FROM journal");
  long long fired = rows - 3;
  /* Whole batches: the reported ones, and one more if the kill came between
   * its COMMIT and its report. */
  assert_int_equal(fired % BATCH_FIRES, 0);
  long long batches = fired / BATCH_FIRES;
  assert_true(batches == reported || batches == reported + 1);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM outbox"), fired);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM refused"), batches);
  char want[64];
  snprintf(want, sizeof want, "{\"n\":%lld,\"note\":null}", batches * 3);
  assert_data(f, "z1", want);
  assert_data(f, "z2", want);
  assert_data(f, "z3", want);
  assert_int_equal(revision_of(f, "z3"), batches * 3);
  verify_clean(f, 3, (int)rows);
  print_message("killed after %lld reported batches; the store holds %lld whole batches\n",
                (long long)reported, batches);
}

/* Child: `n` fires at z1 with expected_revision -1, retrying on BUSY. */
static int writer_child(const char *path, int n) {
  case_engine *e;
  case_store *s;
  if (case_engine_open(&e) != CASE_OK) return 2;
  if (case_store_open(e, path, 0, &s) != CASE_OK) return 2;
  for (int i = 0; i < n; i++) {
    /* One shared business time: each writer's events are in time order. */
    int rc = case_store_fire(s, "z1", "tel", NULL, "w", "IND", T0 + 60, -1, NULL, NULL);
    if (rc == CASE_BUSY) {
      i--;
      continue;
    }
    if (rc != CASE_OK) return 4;
  }
  case_store_close(s);
  case_engine_close(e);
  return 0;
}

/* case_store_wait(): a row another process commits ends the wait at once (on
 * PostgreSQL by its notification), and nothing else does before the timeout. */
static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void test_wait(void **state) {
  fx *f = *state;
  create(f, "z1", NULL);
  int ready = -1;
  assert_int_equal(case_store_wait(f->s, 0, 0, &ready), CASE_OK);
  assert_int_equal(ready, 1); /* row 1 is there */
  assert_int_equal(case_store_wait(f->s, 1, 0, &ready), CASE_OK);
  assert_int_equal(ready, 0);
  double t0 = now_ms();
  assert_int_equal(case_store_wait(f->s, 1, 300, &ready), CASE_OK);
  assert_int_equal(ready, 0);
  assert_true(now_ms() - t0 >= 290);
  assert_int_equal(case_store_wait(NULL, 1, 0, &ready), CASE_MISUSE);
  assert_int_equal(case_store_wait(f->s, 1, 0, NULL), CASE_MISUSE);
  /* Another process fires after 400 ms; the wait (bound 20 s) ends soon after. */
  close_all(f); /* no connection may cross fork() */
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct timespec nap = {0, 400 * 1000000L};
    nanosleep(&nap, NULL);
    _exit(writer_child(f->path, 1));
  }
  open_all(f);
  t0 = now_ms();
  assert_int_equal(case_store_wait(f->s, 1, 20000, &ready), CASE_OK);
  double took = now_ms() - t0;
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(ready, 1);
  print_message("the other process's commit ended the wait after %.0f ms (%s)\n", took,
                ts_backend());
  assert_true(took < 5000);
  rows r = {0};
  int64_t last = 0;
  assert_int_equal(case_store_follow(f->s, 1, 0, collect_row, &r, &last), CASE_OK);
  assert_int_equal(r.n, 1);
  assert_int_equal(last, 2);
  assert_non_null(strstr(r.json[0], "\"event\":\"tel\""));
  rows_free(&r);
}

static void test_two_processes(void **state) {
  fx *f = *state;
  enum { N = 40 };
  create(f, "z1", NULL);
  close_all(f);
  pid_t kids[2];
  for (int k = 0; k < 2; k++) {
    kids[k] = fork();
    assert_true(kids[k] >= 0);
    if (kids[k] == 0) _exit(writer_child(f->path, N));
  }
  for (int k = 0; k < 2; k++) {
    int status;
    assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
  }
  open_all(f);
  assert_int_equal(revision_of(f, "z1"), 2 * N);
  char want[64];
  snprintf(want, sizeof want, "{\"n\":%d,\"note\":null}", 2 * N);
  assert_data(f, "z1", want);
  verify_clean(f, 1, 2 * N + 1);

  /* A stale revision: this process read revision R, another wrote R+1. */
  int64_t r = revision_of(f, "z1");
  close_all(f); /* no SQLite connection may cross fork() */
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) _exit(writer_child(f->path, 1));
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_int_equal(WEXITSTATUS(status), 0);
  open_all(f);
  long long before = count_sql(f, "SELECT count(*) FROM journal");
  assert_int_equal(case_store_fire(f->s, "z1", "tel", NULL, "a", "IND", T0 + 60, r, NULL, NULL),
                   CASE_CONFLICT);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal"), before);
  /* Read again and retry. */
  assert_int_equal(revision_of(f, "z1"), r + 1);
  assert_int_equal(case_store_fire(f->s, "z1", "tel", NULL, "a", "IND", T0 + 60, r + 1, NULL,
                                   NULL),
                   CASE_OK);
  assert_int_equal(revision_of(f, "z1"), r + 2);
}

typedef struct heard {
  int n;
  char last[128];
} heard;

static void on_notify(void *ud, const case_instance *c, const char *name, const char *payload) {
  heard *h = ud;
  h->n++;
  snprintf(h->last, sizeof h->last, "%s %s %s", case_instance_id(c), name, payload);
}

static void test_notify_after_commit(void **state) {
  fx *f = *state;
  heard h = {0};
  assert_int_equal(case_engine_set_notify(f->e, on_notify, &h), CASE_OK);
  create(f, "z1", NULL);
  fire(f, "z1", "tel", NULL, "IND");
  assert_int_equal(h.n, 1);
  assert_string_equal(h.last, "z1 geteld {\"n\":1}");
  /* A conflict delivers nothing. */
  assert_int_equal(case_store_fire(f->s, "z1", "tel", NULL, "a", "IND", T0, 0, NULL, NULL),
                   CASE_CONFLICT);
  assert_int_equal(h.n, 1);
}

/* Events are processed in time order: a fire first fires the terms that ran
 * out before it, each as its own journal row, and an earlier event is refused. */
static void test_fire_runs_due_timers_first(void **state) {
  fx *f = *state;
  create(f, "z1", NULL);
  /* No tick: `tel` at DUE_AFTER + 60 meets the 2-day timer first (open -> wacht). */
  f->now = DUE_AFTER + 60;
  int64_t seq = fire(f, "z1", "tel", NULL, "IND");
  assert_config(f, "z1", "[\"wacht\"]");
  assert_data(f, "z1", "{\"n\":1,\"note\":null}");
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal WHERE case_id='z1'"), 3);
  char sql[200];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM journal WHERE seq=%lld-1 AND event='after.open.0' "
           "AND actor='timer' AND time=%lld AND revision=1",
           (long long)seq, (long long)DUE_AFTER);
  assert_int_equal(count_sql(f, sql), 1);
  /* An event dated before the case's last one is refused and recorded. */
  assert_int_equal(case_store_fire(f->s, "z1", "tel", NULL, "a", "IND", T0 + 120, -1, NULL, NULL),
                   CASE_INVALID);
  assert_non_null(strstr(case_errmsg(f->e), "earlier than the case's last event"));
  assert_int_equal(count_sql(f, "SELECT count(*) FROM refused WHERE case_id='z1'"), 1);
  char *report = NULL;
  assert_int_equal(case_store_verify(f->s, &report), CASE_OK);
  case_free(report);
  reopen(f);
  assert_data(f, "z1", "{\"n\":1,\"note\":null}");
}

/* A definition's Lua module is pinned with it: replay and reopen use the code
 * the cases ran with, and changed code under the same version is refused. */
static void write_file(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

static void test_modules_pinned(void **state) {
  fx *f = *state;
  char dir[128], mod[160], yaml[160];
  snprintf(dir, sizeof dir, "/tmp/test_store_mod_%ld", (long)getpid());
  mkdir(dir, 0700);
  snprintf(mod, sizeof mod, "%s/regels.lua", dir);
  snprintf(yaml, sizeof yaml, "%s/pin.yaml", dir);
  write_file(mod, "return { stap = function(case) return 1 end }\n");
  write_file(yaml, "workflow: pin\nversion: 1\nlua: [regels.lua]\n"
                   "data: {n: {type: integer, default: 0}}\n"
                   "initial: s\nstates:\n  s: {on: {tel: {actions: [case.n = case.n + stap(case)]}}}\n");
  const case_def *d = NULL;
  assert_int_equal(case_def_load_file(f->e, yaml, &d), CASE_OK);
  assert_int_equal(case_store_add_def(f->s, d), CASE_OK);
  assert_int_equal(case_store_create(f->s, d, "p1", NULL, NULL, "t", NULL, T0, NULL), CASE_OK);
  assert_int_equal(case_store_fire(f->s, "p1", "tel", NULL, "t", NULL, T0, -1, NULL, NULL),
                   CASE_OK);
  /* The module on disk changes (and moves out of reach). */
  write_file(mod, "return { stap = function(case) return 1000 end }\n");
  /* Another program opens the store without the files: the pinned code runs. */
  case_engine *e2 = NULL;
  case_store *s2 = NULL;
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  assert_int_equal(case_engine_set_lua_root(e2, "/nonexistent"), CASE_OK);
  int rc = case_store_open(e2, f->path, 0, &s2);
  if (rc != CASE_OK) fail_msg("open: %s", case_errmsg(e2));
  assert_int_equal(case_store_fire(s2, "p1", "tel", NULL, "t", NULL, T0 + 60, -1, NULL, NULL),
                   CASE_OK);
  case_instance *c = NULL;
  assert_int_equal(case_store_get(s2, "p1", &c), CASE_OK);
  char *data = NULL;
  assert_int_equal(case_instance_data(c, &data), CASE_OK);
  assert_string_equal(data, "{\"n\":2}");
  case_free(data);
  char *report = NULL;
  assert_int_equal(case_store_verify(s2, &report), CASE_OK);
  case_free(report);
  case_store_close(s2);
  case_engine_close(e2);
  /* A program that loads the changed file under the same version is refused. */
  case_engine *e3 = NULL;
  assert_int_equal(case_engine_open(&e3), CASE_OK);
  assert_int_equal(case_def_load_file(e3, yaml, NULL), CASE_OK);
  assert_int_equal(case_store_open(e3, f->path, 0, &s2), CASE_EXISTS);
  assert_non_null(strstr(case_errmsg(e3), "other Lua module code"));
  case_engine_close(e3);
  unlink(mod);
  unlink(yaml);
  rmdir(dir);
}

/* Location profiles travel with the store: another program, and replay, use
 * the stored text without the file. */
static void test_profiles_stored(void **state) {
  fx *f = *state;
  char prof[160];
  snprintf(prof, sizeof prof, "/tmp/test_store_prof_%ld.lua", (long)getpid());
  write_file(prof, "return { params = { stap = 5 } }\n");
  const char *y = "workflow: loc\nversion: 1\nparams: {stap: 1}\n"
                  "data: {n: {type: integer, default: 0}}\n"
                  "initial: s\nstates:\n  s: {on: {tel: {actions: [case.n = case.n + params.stap]}}}\n";
  const case_def *d = NULL;
  assert_int_equal(case_def_load_string(f->e, y, strlen(y), "loc.yaml", &d), CASE_OK);
  assert_int_equal(case_store_add_def(f->s, d), CASE_OK);
  assert_int_equal(case_store_add_profile(f->s, "budel"), CASE_NOTFOUND);
  int rc = case_engine_load_profile(f->e, "budel", prof);
  assert_int_equal(rc, CASE_OK);
  assert_int_equal(case_store_add_profile(f->s, "budel"), CASE_OK);
  assert_int_equal(case_store_add_profile(f->s, "budel"), CASE_OK); /* again: no change */
  assert_int_equal(count_sql(f, "SELECT count(*) FROM profiles WHERE name='budel'"), 1);
  rc = case_store_create(f->s, d, "b1", "budel", NULL, "t", NULL, T0, NULL);
  if (rc != CASE_OK) fail_msg("create: %s", case_errmsg(f->e));
  assert_int_equal(case_store_fire(f->s, "b1", "tel", NULL, "t", NULL, T0, -1, NULL, NULL),
                   CASE_OK);
  unlink(prof);
  /* Another program, without the file. */
  case_engine *e2 = NULL;
  case_store *s2 = NULL;
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  rc = case_store_open(e2, f->path, 0, &s2);
  if (rc != CASE_OK) fail_msg("open: %s", case_errmsg(e2));
  assert_int_equal(case_store_fire(s2, "b1", "tel", NULL, "t", NULL, T0 + 60, -1, NULL, NULL),
                   CASE_OK);
  case_instance *c = NULL;
  assert_int_equal(case_store_get(s2, "b1", &c), CASE_OK);
  char *data = NULL;
  assert_int_equal(case_instance_data(c, &data), CASE_OK);
  assert_string_equal(data, "{\"n\":10}");
  case_free(data);
  char *report = NULL;
  rc = case_store_verify(s2, &report);
  if (rc != CASE_OK) fail_msg("verify: %s", report ? report : case_errmsg(e2));
  case_free(report);
  case_store_close(s2);
  case_engine_close(e2);

  /* Profiles are loaded when something needs them, as definitions are (issue
   * 12.14): opening parses none, so a stored profile that no longer loads
   * breaks only what uses it, not every command. */
  rc = case_store_create(f->s, d, "z1", NULL, NULL, "t", NULL, T0, NULL);
  if (rc != CASE_OK) fail_msg("create: %s", case_errmsg(f->e));
  exec_sql(f, "UPDATE profiles SET source = 'return {' WHERE name = 'budel'");
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  rc = case_store_open(e2, f->path, 0, &s2);
  if (rc != CASE_OK) fail_msg("open with a broken profile: %s", case_errmsg(e2));
  assert_null(eng_profile_find(e2, "budel")); /* nothing parsed at open */
  assert_int_equal(case_store_fire(s2, "z1", "tel", NULL, "t", NULL, T0 + 60, -1, NULL, NULL),
                   CASE_OK);
  /* the case at budel needs it: refused with the profile's error, nothing written */
  rc = case_store_fire(s2, "b1", "tel", NULL, "t", NULL, T0 + 120, -1, NULL, NULL);
  assert_int_not_equal(rc, CASE_OK);
  if (!strstr(case_errmsg(e2), "location profile does not compile"))
    fail_msg("rc %d: %s", rc, case_errmsg(e2));
  case_store_close(s2);
  case_engine_close(e2);
}

/* A decree day added to a store counts for every program that opens it. */
static void test_holidays_stored(void **state) {
  fx *f = *state;
  /* Wed 2026-03-04 made a holiday: the 3-working-day term of wkd from Mon
     2026-03-02 (day 1 Tue 03-03, Wed skipped, Thu 03-05, Fri 03-06) ends on
     Friday 2026-03-06 instead of Thursday 2026-03-05. */
  const char *y = "workflow: hol\nversion: 1\ninitial: s\nstates:\n"
                  "  s:\n    deadlines: {wkd: {after: 3 working days, clock: atw, on_expiry: x}}\n"
                  "    on: {x: s}\n";
  const case_def *d = NULL;
  assert_int_equal(case_def_load_string(f->e, y, strlen(y), "hol.yaml", &d), CASE_OK);
  assert_int_equal(case_store_add_def(f->s, d), CASE_OK);
  assert_int_equal(case_store_add_holiday(f->s, "2026-02-30", NULL), CASE_INVALID);
  assert_int_equal(case_store_add_holiday(f->s, "2026-03-04", "testdag"), CASE_OK);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM holidays WHERE day='2026-03-04'"), 1);
  close_all(f);
  open_all(f);
  d = case_def_find(f->e, "hol", 1);
  assert_non_null(d);
  assert_int_equal(case_store_create(f->s, d, "h1", NULL, NULL, "t", NULL, T0, NULL), CASE_OK);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM timers WHERE case_id='h1' AND "
                                "last_day='2026-03-06'"), 1);
}

/* A store of schema 1 (no pinned modules) is migrated on open. */
static void test_migration_from_schema_1(void **state) {
  fx *f = *state;
  create(f, "m1", NULL);
  close_all(f);
  exec_sql(f, UNDO_SCHEMA_10 "DROP TABLE tokens; DROP TABLE holidays; DROP TABLE profiles; "
              "ALTER TABLE definitions DROP COLUMN modules; "
              "ALTER TABLE idempotency DROP COLUMN request; "
              "ALTER TABLE journal DROP COLUMN node; DROP TABLE meta; DROP INDEX outbox_case; "
              "ALTER TABLE cases DROP COLUMN profile_version; "
              "ALTER TABLE cases DROP COLUMN profile_first; PRAGMA user_version=1;");
  assert_int_equal(count_sql(f, "PRAGMA user_version"), 1);
  open_all(f);
  assert_int_equal(count_sql(f, "PRAGMA user_version"), 10);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM pragma_table_info('definitions') "
                                "WHERE name='modules'"), 1);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM tokens"), 0);
  assert_config(f, "m1", "[\"open\"]");
}

/* One text from an SQLite file (the first column of the first row). */
static int ts_text(const char *path, const char *sql, char *out, size_t n) {
  sqlite3 *db;
  sqlite3_stmt *st;
  out[0] = '\0';
  if (sqlite3_open(path, &db) != SQLITE_OK) return -1;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
                   sqlite3_step(st) == SQLITE_ROW
               ? 0 : -1;
  if (rc == 0) snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
  else fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rc;
}

/* A store of schema 9 (the case's state in its case row, snapshot and all)
 * migrates to 10: each case's latest journal row gets its done and state from
 * the old case row, and the cases then load, fire, tick and verify as if they
 * had been written by this version; case_state shows what the case row did. */
static void test_migration_from_schema_9(void **state) {
  fx *f = *state;
  create(f, "m1", NULL);
  create(f, "m2", NULL);
  create(f, "m3", NULL);
  fire(f, "m1", "tel", NULL, "IND");
  fire(f, "m1", "notitie", "{\"tekst\":\"voor de migratie\"}", "IND");
  fire(f, "m2", "tel", NULL, "IND");
  fire(f, "m2", "sluit", NULL, "IND"); /* done */
  char before[4096];
  assert_int_equal(ts_text(f->path, "SELECT group_concat(id||'|'||revision||'|'||configuration||'|'"
                                    "||done||'|'||last_hash||'|'||data||'|'||updated, ';') FROM "
                                    "(SELECT * FROM case_state ORDER BY id)", before,
                           sizeof before), 0);
  int64_t size = 0;
  char root[65], root2[65];
  assert_int_equal(case_store_tree_head(f->s, &size, root), CASE_OK);
  close_all(f);
  exec_sql(f, UNDO_SCHEMA_10);
  assert_int_equal(count_sql(f, "PRAGMA user_version"), 9);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM pragma_table_info('cases') "
                                "WHERE name='snapshot'"), 1);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM timers"), 2); /* m1, m3: after 2 days */
  open_all(f);
  assert_int_equal(count_sql(f, "PRAGMA user_version"), 10);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM pragma_table_info('cases') "
                                "WHERE name='snapshot'"), 0);
  /* Only each case's latest row has a state: 3 of the 7 rows. */
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal WHERE state IS NOT NULL"), 3);
  assert_int_equal(count_sql(f, "SELECT done FROM journal WHERE case_id='m2' AND revision=2"), 1);
  char after[4096];
  assert_int_equal(ts_text(f->path, "SELECT group_concat(id||'|'||revision||'|'||configuration||'|'"
                                    "||done||'|'||last_hash||'|'||data||'|'||updated, ';') FROM "
                                    "(SELECT * FROM case_state ORDER BY id)", after,
                           sizeof after), 0);
  assert_string_equal(after, before);
  assert_int_equal(case_store_tree_head(f->s, &size, root2), CASE_OK);
  assert_string_equal(root2, root); /* the journal's rows and tree are as they were */
  verify_clean(f, 3, 7);
  assert_data(f, "m1", "{\"n\":1,\"note\":\"voor de migratie\"}");
  assert_config(f, "m2", "[\"dicht\"]");
  /* The migrated cases go on: a fire, and the timers kept through the rebuild. */
  fire(f, "m1", "tel", NULL, "IND");
  int fired = 0;
  assert_int_equal(case_store_tick(f->s, DUE_AFTER + 3600, &fired), CASE_OK);
  assert_int_equal(fired, 2);
  assert_config(f, "m1", "[\"wacht\"]");
  assert_config(f, "m3", "[\"wacht\"]");
  verify_clean(f, 3, 10);
}

/* Schema 6 gives every journal row a node of the journal's Merkle tree: the
 * migration fills them for older rows exactly as fires write them. */
static void test_tree_migration(void **state) {
  fx *f = *state;
  char id[16];
  for (int i = 0; i < 7; i++) {
    snprintf(id, sizeof id, "m%d", i);
    create(f, id, NULL);
  }
  for (int k = 0; k < 300; k++) {
    snprintf(id, sizeof id, "m%d", k % 7);
    fire(f, id, "tel", NULL, "IND");
  }
  int64_t size = 0;
  char root[65], root2[65];
  assert_int_equal(case_store_tree_head(f->s, &size, root), CASE_OK);
  assert_int_equal(size, 307);
  verify_clean(f, 7, 307);
  char *rep = NULL;
  assert_int_equal(case_store_verify(f->s, &rep), CASE_OK);
  assert_non_null(strstr(rep, root)); /* the head the nodes give is the one the rows give */
  case_free(rep);
  close_all(f);
  exec_sql(f, "DROP TABLE tokens; " UNDO_SCHEMA_8
              "ALTER TABLE journal DROP COLUMN node; DROP TABLE meta; DROP INDEX outbox_case; "
              "PRAGMA user_version=5;");
  open_all(f);
  assert_int_equal(count_sql(f, "PRAGMA user_version"), 10);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal WHERE length(node) = 32"), 307);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM meta WHERE key='store_id' AND "
                                "length(value) = 32"), 1);
  assert_int_equal(case_store_tree_head(f->s, &size, root2), CASE_OK);
  assert_int_equal(size, 307);
  assert_string_equal(root2, root);
  fire(f, "m1", "tel", NULL, "IND");
  verify_clean(f, 7, 308);
  /* An empty store: the tree of nothing. */
  close_all(f);
  remove_db(f->path);
  open_all(f);
  assert_int_equal(case_store_tree_head(f->s, &size, root), CASE_OK);
  assert_int_equal(size, 0);
  assert_string_equal(root, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* Two handles on one file take turns: each keeps the tree's frontier from its
 * own last commit only while the other did not write, so every row's node is
 * still right (verify recomputes them all); a rolled-back fire leaves nothing. */
static void test_tree_two_handles(void **state) {
  fx *f = *state;
  create(f, "a", NULL);
  create(f, "b", NULL);
  case_engine *e2;
  case_store *s2;
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  assert_int_equal(case_store_open(e2, f->path, 0, &s2), CASE_OK);
  for (int i = 0; i < 40; i++) {
    fire(f, "a", "tel", NULL, "IND");
    if (i % 3 == 0) fire(f, "a", "tel", NULL, "IND");
    assert_int_equal(case_store_fire(s2, "b", "tel", NULL, "t", "IND", T0 + 60, -1, NULL, NULL),
                     CASE_OK);
    /* A refusal after the due timer fired in the same transaction: all rolled back. */
    if (i == 20)
      assert_int_equal(case_store_fire(s2, "b", "nee", NULL, "t", "IND", DUE_AFTER + 60, -1, NULL,
                                       NULL),
                       CASE_NOTHANDLED); /* in wacht, where the timer took it */
  }
  case_store_close(s2);
  case_engine_close(e2);
  verify_clean(f, 2, 2 + 40 + 14 + 40);
}

/* Issue 12 §13: the allowed form of a case id, refused at every create; strings
 * that are not UTF-8 are CASE_INVALID naming the argument, never "out of memory". */
static void test_case_ids(void **state) {
  fx *f = *state;
  char why[160];
  static const char *const good[] = {"Z-2026-0001", "TA/0256", "zaak-\xc3\x9f-\xe2\x9c\x93", "x",
                                     "V302027264"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    if (case_id_check(good[i], why, sizeof why) != CASE_OK) fail_msg("%s: %s", good[i], why);
    assert_string_equal(why, "");
  }
  struct { const char *id, *msg; } bad[] = {
      {"", "must not be empty"},
      {"Z\t1", "byte 2 of the case id is a tab (U+0009)"},
      {"Z1\n", "byte 3 of the case id is a line break"},
      {"Z 1", "white space (U+0020)"},
      {"Z\xc2\xa0" "1", "white space (U+00A0)"},
      {"Z\xe2\x80\x8b" "1", "invisible formatting character (U+200B)"},
      {"Z\xe2\x80\xae" "1", "invisible formatting character (U+202E)"},
      {"Z\x7f", "control character (U+007F)"},
      {"Z\xff" "1", "byte 2 of the case id (0xFF) is not valid UTF-8"},
      {"Z\xc3", "byte 2 of the case id (0xC3) is not valid UTF-8"},       /* cut short */
      {"Z\xc0\xaf", "byte 2 of the case id (0xC0) is not valid UTF-8"},   /* overlong '/' */
      {"Z\xed\xa0\x80", "byte 2 of the case id (0xED) is not valid UTF-8"}, /* a surrogate */
      {"Z\xef\xbf\xbe", "noncharacter (U+FFFE)"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(case_id_check(bad[i].id, why, sizeof why), CASE_INVALID);
    if (!strstr(why, bad[i].msg)) fail_msg("id %zu: '%s' lacks '%s'", i, why, bad[i].msg);
  }
  char longid[CASE_ID_MAX + 2];
  memset(longid, 'a', sizeof longid);
  longid[CASE_ID_MAX] = '\0';
  assert_int_equal(case_id_check(longid, NULL, 0), CASE_OK);
  longid[CASE_ID_MAX] = 'a';
  longid[CASE_ID_MAX + 1] = '\0';
  assert_int_equal(case_id_check(longid, why, sizeof why), CASE_INVALID);
  assert_non_null(strstr(why, "at most 128 bytes, this one has 129"));
  assert_int_equal(case_id_check(NULL, why, sizeof why), CASE_MISUSE);
  /* Every create refuses them, and nothing is written. */
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(case_store_create(f->s, f->d, bad[i].id, NULL, NULL, "a", "IND", T0, NULL),
                     CASE_INVALID);
    case_instance *c = (case_instance *)1;
    assert_int_equal(case_instance_create(f->e, f->d, bad[i].id, NULL, NULL, T0, &c),
                     CASE_INVALID);
    assert_null(c);
  }
  assert_int_equal(case_store_create(f->s, f->d, longid, NULL, NULL, "a", "IND", T0, NULL),
                   CASE_INVALID);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal"), 0);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM cases"), 0);
  create(f, "zaak-\xc3\x9f-\xe2\x9c\x93", NULL);
  /* Other text that goes into the journal must be UTF-8 too. */
  assert_int_equal(case_store_create(f->s, f->d, "z2", NULL, NULL, "a\xff", "IND", T0, NULL),
                   CASE_INVALID);
  assert_string_equal(case_errmsg(f->e), "the actor: byte 2 (0xFF) is not valid UTF-8");
  create(f, "z2", NULL);
  assert_int_equal(case_store_fire(f->s, "z2", "tel", NULL, "\xe2\x82", "IND", T0, -1, NULL, NULL),
                   CASE_INVALID);
  assert_non_null(strstr(case_errmsg(f->e), "the actor: byte 1 (0xE2)"));
  assert_int_equal(case_store_fire(f->s, "z2", "tel", NULL, "a", "IND", T0, -1, "k\xff", NULL),
                   CASE_INVALID);
  assert_non_null(strstr(case_errmsg(f->e), "the idempotency key"));
  /* ... and one line of printable text: an actor with a line break printed a
   * forged history row in casectl show (a person's row that looked fired by
   * the clock), one with ESC reached the terminal, a bidirectional override
   * reorders what is shown.  Spaces are fine (a person's name). */
  static const struct { const char *actor, *msg; } lines[] = {
      {"a\n     9 2026-11-25 14:00  verlopen   -   timer",
       "the actor: byte 2 is a line break (U+000A)"},
      {"x\x1b[2Ky", "the actor: byte 2 is a control character (U+001B)"},
      {"x\te", "the actor: byte 2 is a tab (U+0009)"},
      {"ab\xc2\x85", "the actor: byte 3 is a line break (U+0085)"},
      {"a\xe2\x80\xa8", "the actor: byte 2 is a line break (U+2028)"},
      {"\xe2\x80\xaeremit", "the actor: byte 1 is an invisible formatting character (U+202E)"},
      {"ti\xe2\x80\x8bmer", "the actor: byte 3 is an invisible formatting character (U+200B)"},
  };
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
    assert_int_equal(case_store_fire(f->s, "z2", "tel", NULL, lines[i].actor, "IND", T0, -1,
                                     NULL, NULL),
                     CASE_INVALID);
    assert_non_null(strstr(case_errmsg(f->e), lines[i].msg));
    assert_int_equal(case_store_create(f->s, f->d, "z3", NULL, NULL, lines[i].actor, "IND", T0,
                                       NULL),
                     CASE_INVALID);
    assert_int_equal(case_store_set_profile(f->s, "z2", 0, lines[i].actor, "IND", T0, NULL),
                     CASE_INVALID);
  }
  assert_int_equal(case_store_create(f->s, f->d, "z3", "loc\nx", NULL, "a", "IND", T0, NULL),
                   CASE_INVALID);
  assert_string_equal(case_errmsg(f->e), "the location: byte 4 is a line break (U+000A): a "
                                         "journal text is one line of printable text");
  assert_int_equal(case_store_fire(f->s, "z2", "tel", NULL, "a", "IND", T0, -1, "k\r1", NULL),
                   CASE_INVALID);
  assert_non_null(strstr(case_errmsg(f->e), "the idempotency key: byte 2 is a line break"));
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal"), 2);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM refused"), 0);
  assert_int_equal(case_store_fire(f->s, "z2", "tel", NULL, "Jan de Vries", "IND", T0, -1, NULL,
                                   NULL),
                   CASE_OK);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal"), 3);
  verify_clean(f, 2, 3);
}

/* Issue 12 §7: a reused idempotency key.  The same key with another request is
 * refused and says what differs; the same request is a retry and says so. */
static void test_key_reuse(void **state) {
  fx *f = *state;
  create(f, "k1", NULL);
  create(f, "k2", NULL);
  int64_t seq = 0;
  int replayed = -1;
  assert_int_equal(case_store_fire_v2(f->s, "k1", "tel", NULL, "ind-1", "IND", T0 + 60, -1, "abc",
                                      0, &seq, &replayed), CASE_OK);
  assert_int_equal(seq, 3);
  assert_int_equal(replayed, 0);
  long long rows = count_sql(f, "SELECT count(*) FROM journal");
  /* Another event under the same key: the false success of issue 12 §7. */
  seq = 99;
  assert_int_equal(case_store_fire_v2(f->s, "k1", "notitie", "{\"tekst\":\"x\"}", "ind-1", "IND",
                                      T0 + 120, -1, "abc", 0, &seq, &replayed), CASE_EXISTS);
  assert_int_equal(seq, 0);
  assert_int_equal(replayed, 0);
  assert_string_equal(case_errmsg(f->e),
                      "idempotency key 'abc' was first used for event 'tel' on case 'k1' (journal "
                      "seq 3); this request differs in its event and payload: refused, nothing "
                      "written (a new request needs a new key)");
  /* Each part of the request counts. */
  assert_int_equal(case_store_fire(f->s, "k2", "tel", NULL, "ind-1", "IND", T0 + 60, -1, "abc",
                                   NULL), CASE_EXISTS);
  assert_non_null(strstr(case_errmsg(f->e), "differs in its case:"));
  assert_int_equal(case_store_fire(f->s, "k1", "tel", "{\"a\":1}", "ind-1", "IND", T0 + 60, -1,
                                   "abc", NULL), CASE_EXISTS);
  assert_non_null(strstr(case_errmsg(f->e), "differs in its payload:"));
  assert_int_equal(case_store_fire(f->s, "k1", "tel", NULL, "ind-2", "IND", T0 + 60, -1, "abc",
                                   NULL), CASE_EXISTS);
  assert_non_null(strstr(case_errmsg(f->e), "differs in its actor:"));
  assert_int_equal(case_store_fire(f->s, "k1", "tel", NULL, NULL, "IND", T0 + 60, -1, "abc",
                                   NULL), CASE_EXISTS);
  assert_non_null(strstr(case_errmsg(f->e), "differs in its actor:"));
  assert_int_equal(case_store_fire(f->s, "k1", "nee", NULL, "ind-1", "COA", T0 + 60, -1, "abc",
                                   NULL), CASE_EXISTS);
  assert_non_null(strstr(case_errmsg(f->e), "differs in its event and role:"));
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal"), rows);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM refused"), 0);
  /* The same request is a retry: the first seq, nothing written, and it says so.
   * The payload is compared as JSON, and the time does not count by default. */
  seq = 0;
  assert_int_equal(case_store_fire_v2(f->s, "k1", "tel", "null", "ind-1", "IND", T0 + 3600, 1,
                                      "abc", 0, &seq, &replayed), CASE_OK);
  assert_int_equal(seq, 3);
  assert_int_equal(replayed, 1);
  assert_int_equal(case_store_fire(f->s, "k2", "notitie", "{\"tekst\":\"a\",\"n\":[1, 2]}", "x",
                                   "COA", T0 + 60, -1, "def", &seq), CASE_OK);
  int64_t first = seq;
  assert_int_equal(case_store_fire_v2(f->s, "k2", "notitie", " { \"n\":[1,2], \"tekst\":\"a\"}",
                                      "x", "COA", T0 + 60, -1, "def", 0, &seq, &replayed),
                   CASE_OK);
  assert_int_equal(seq, first);
  assert_int_equal(replayed, 1);
  /* CASE_FIRE_KEY_TIME: the time is part of the request. */
  assert_int_equal(case_store_fire_v2(f->s, "k2", "notitie", "{\"n\":[1,2],\"tekst\":\"a\"}", "x",
                                      "COA", T0 + 61, -1, "def", CASE_FIRE_KEY_TIME, &seq,
                                      &replayed), CASE_EXISTS);
  assert_non_null(strstr(case_errmsg(f->e), "differs in its time:"));
  assert_int_equal(case_store_fire_v2(f->s, "k2", "notitie", "{\"n\":[1,2],\"tekst\":\"a\"}", "x",
                                      "COA", T0 + 60, -1, "def", CASE_FIRE_KEY_TIME, &seq,
                                      &replayed), CASE_OK);
  assert_int_equal(replayed, 1);
  assert_int_equal(case_store_fire_v2(f->s, "k2", "tel", NULL, "x", "IND", T0 + 60, -1, "t", 8,
                                      &seq, &replayed), CASE_MISUSE);
  assert_int_equal(case_store_fire(f->s, "k2", "tel", NULL, "x", "IND", T0 + 60, -1, "", &seq),
                   CASE_INVALID);
  /* A refused event does not use up its key. */
  assert_int_equal(case_store_fire(f->s, "k2", "nee", NULL, "x", "IND", T0 + 60, -1, "ghi", &seq),
                   CASE_DENIED);
  assert_int_equal(case_store_fire_v2(f->s, "k2", "tel", NULL, "x", "IND", T0 + 60, -1, "ghi", 0,
                                      &seq, &replayed), CASE_OK);
  assert_int_equal(replayed, 0);
  /* A key stored before schema 5 has no request: only its case is compared. */
  exec_sql(f, "UPDATE idempotency SET request=NULL WHERE key='abc'");
  assert_int_equal(case_store_fire_v2(f->s, "k1", "notitie", NULL, "y", "COA", T0 + 60, -1, "abc",
                                      0, &seq, &replayed), CASE_OK);
  assert_int_equal(seq, 3);
  assert_int_equal(replayed, 1);
  assert_int_equal(case_store_fire(f->s, "k2", "tel", NULL, "ind-1", "IND", T0 + 60, -1, "abc",
                                   NULL), CASE_EXISTS);
  assert_non_null(strstr(case_errmsg(f->e), "first used for event 'tel' on case 'k1'"));
  verify_clean(f, 2, 5);
}

/* Issue 12 §12: one far-future row moved the whole store.  An event or tick time
 * more than the limit (a day) after the store's clock is refused unless allowed. */
static void test_future_bound(void **state) {
  fx *f = *state;
  f->clock = T0 + 10 * DAY; /* the store's clock: 2026-03-12T09:00:00Z */
  create(f, "f1", NULL);
  create(f, "f2", NULL);    /* its `after: 2 days` timer is due at DUE_AFTER */
  long long rows = count_sql(f, "SELECT count(*) FROM journal");
  const int64_t Y2100 = INT64_C(4102477200); /* 2100-01-01T09:00:00Z */
  assert_int_equal(case_store_fire(f->s, "f1", "tel", NULL, "a", "IND", Y2100, -1, NULL, NULL),
                   CASE_INVALID);
  assert_string_equal(case_errmsg(f->e),
                      "the event time 2100-01-01T09:00:00Z is more than 1 day(s) after the "
                      "store's clock (2026-03-12T09:00:00Z): refused, nothing written (is the "
                      "date right? a time that far ahead needs case_store_set_future_limit(), "
                      "casectl --allow-future)");
  assert_int_equal(case_store_tick(f->s, Y2100, NULL), CASE_INVALID);
  assert_non_null(strstr(case_errmsg(f->e), "the tick time 2100-01-01T09:00:00Z"));
  assert_int_equal(case_store_create(f->s, f->d, "f3", NULL, NULL, "a", "IND", Y2100, NULL),
                   CASE_INVALID);
  /* Nothing moved: no row, no refusal, f2's timer still pending. */
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal"), rows);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM refused"), 0);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM timers WHERE case_id='f2' AND fired=0"), 1);
  /* The bound is inclusive: exactly a day ahead is fine, a second more is not. */
  f->now = f->clock + DAY + 1;
  assert_int_equal(case_store_fire(f->s, "f1", "tel", NULL, "a", "IND", f->now, -1, NULL, NULL),
                   CASE_INVALID);
  f->now = f->clock + DAY;
  fire(f, "f1", "tel", NULL, "IND");
  /* Another limit; 0 refuses any time after the clock; < 0 allows all. */
  assert_int_equal(case_store_set_future_limit(f->s, 0), CASE_STORE_FUTURE_LIMIT);
  assert_int_equal(case_store_tick(f->s, f->clock + 1, NULL), CASE_INVALID);
  assert_non_null(strstr(case_errmsg(f->e), "more than 0 second(s) after"));
  int fired = 0;
  assert_int_equal(case_store_tick(f->s, f->clock, &fired), CASE_OK);
  assert_int_equal(fired, 1); /* f2's `after` timer (f1's fired before its event) */
  assert_int_equal(case_store_set_future_limit(f->s, -5), 0);
  assert_int_equal(case_store_set_future_limit(f->s, -1), -1);
  assert_int_equal(case_store_tick(f->s, Y2100, &fired), CASE_OK);
  assert_int_equal(fired, 2); /* allowed: both `wacht` deadlines run out */
  /* The store's clock is the wall clock unless a program sets one. */
  assert_int_equal(case_store_clock(f->s), f->clock);
  assert_int_equal(case_store_set_clock(f->s, NULL, NULL), CASE_OK);
  int64_t wall = (int64_t)time(NULL);
  assert_true(case_store_clock(f->s) >= wall && case_store_clock(f->s) <= wall + 5);
  assert_int_equal(case_store_set_clock(NULL, NULL, NULL), CASE_MISUSE);
  assert_int_equal(case_store_set_future_limit(NULL, 5), -1);
  /* A new handle starts with the default limit. */
  reopen(f);
  assert_int_equal(case_store_tick(f->s, Y2100 + DAY, NULL), CASE_INVALID);
  verify_clean(f, 2, 7);
}

/* ---- read-only stores (issue 12 §9) ---- */

/* Reads the store at `path` as an unprivileged user (as nobody when run as root:
 * root ignores file permissions) and checks case r1 is at `want_rev`, or with
 * `want_err` that the open fails with CASE_IO saying so.  An exit code. */
static int ro_reader(const char *path, int64_t want_rev, const char *want_err) {
  if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0))
    return 90;
  if (geteuid() == 0) return 91;
  case_engine *e;
  case_store *s = NULL;
  if (case_engine_open(&e) != CASE_OK) return 92;
  int rc = case_store_open(e, path, CASE_STORE_READONLY, &s), ex = 0;
  if (want_err) {
    if (rc != CASE_IO || !strstr(case_errmsg(e), want_err)) {
      fprintf(stderr, "reader: open gave %d: %s\n", rc, case_errmsg(e));
      ex = 10;
    }
    case_store_close(s);
    case_engine_close(e);
    return ex;
  }
  if (rc != CASE_OK) {
    fprintf(stderr, "reader: open: %s\n", case_errmsg(e));
    case_engine_close(e);
    return 11;
  }
  case_instance *c = NULL;
  rows r = {0};
  char *rep = NULL, *report = NULL;
  if (case_store_get(s, "r1", &c) != CASE_OK || case_instance_revision(c) != want_rev)
    ex = 12;
  else if (case_store_follow(s, 0, 0, collect_row, &r, NULL) != CASE_OK || r.n != want_rev + 1)
    ex = 13;
  else if (case_store_verify(s, &rep) != CASE_OK)
    ex = 14;
  else if (case_store_report(s, e, T0 + 30 * DAY, NULL, &report) != CASE_OK)
    ex = 15;
  else if (case_store_fire(s, "r1", "tel", NULL, "a", "IND", T0 + DAY, -1, NULL, NULL) !=
           CASE_MISUSE)
    ex = 16;
  if (ex) fprintf(stderr, "reader: step %d: %s\n", ex, case_errmsg(e));
  rows_free(&r);
  case_free(rep);
  case_free(report);
  case_store_close(s);
  case_engine_close(e);
  return ex;
}

static int run_reader(const char *path, int64_t want_rev, const char *want_err) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) _exit(ro_reader(path, want_rev, want_err));
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return 99;
  return WEXITSTATUS(status);
}

static int exists(const char *path, const char *suffix) {
  char p[400];
  snprintf(p, sizeof p, "%s%s", path, suffix);
  return access(p, F_OK) == 0;
}

static void test_readonly_store(void **state) {
  fx *f = *state;
  char dir[256], path[300], dir2[256], path2[300], cmd[1200];
  snprintf(dir, sizeof dir, "/tmp/test_store_ro_%ld", (long)getpid());
  snprintf(dir2, sizeof dir2, "%s_copy", dir);
  snprintf(path, sizeof path, "%s/s.db", dir);
  snprintf(path2, sizeof path2, "%s/s.db", dir2);
  snprintf(cmd, sizeof cmd, "chmod -R u+w %s %s 2>/dev/null; rm -rf %s %s", dir, dir2, dir, dir2);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(mkdir(dir, 0755), 0);
  /* A store written and closed cleanly: no -wal, no -shm. */
  case_engine *e;
  case_store *s;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  assert_int_equal(case_store_open(e, path, CASE_STORE_CREATE, &s), CASE_OK);
  assert_int_equal(case_store_set_clock(s, test_clock, f), CASE_OK);
  const case_def *d;
  assert_int_equal(case_def_load_string(e, ZAAK, strlen(ZAAK), "zaak.yaml", &d), CASE_OK);
  assert_int_equal(case_store_create(s, d, "r1", NULL, NULL, "a", "IND", T0, NULL), CASE_OK);
  assert_int_equal(case_store_fire(s, "r1", "tel", NULL, "a", "IND", T0 + 60, -1, NULL, NULL),
                   CASE_OK);
  case_store_close(s);
  case_engine_close(e);
  assert_false(exists(path, "-wal"));
  assert_false(exists(path, "-shm"));
  /* 1. On read-only media, or a read-only file in a read-only directory: the WAL
   *    index cannot be created, and every transaction is in the file. */
  assert_int_equal(chmod(path, 0444), 0);
  assert_int_equal(chmod(dir, 0555), 0);
  assert_int_equal(run_reader(path, 1, NULL), 0);
  assert_false(exists(path, "-shm"));
  /* 2. A file the user may only read, in a directory it may write: read, and no
   *    -shm/-wal left behind that the file's owner could not write. */
  assert_int_equal(chmod(dir, 0777), 0);
  assert_int_equal(run_reader(path, 1, NULL), 0);
  assert_false(exists(path, "-shm"));
  assert_false(exists(path, "-wal"));
  /* 3. Its owner is writing (transactions in the -wal, a -shm the reader may only
   *    read): the reader sees the last commit. */
  assert_int_equal(chmod(dir, 0755), 0);
  assert_int_equal(chmod(path, 0644), 0);
  assert_int_equal(case_engine_open(&e), CASE_OK);
  assert_int_equal(case_store_open(e, path, 0, &s), CASE_OK);
  assert_int_equal(case_store_set_clock(s, test_clock, f), CASE_OK);
  assert_int_equal(case_store_fire(s, "r1", "tel", NULL, "a", "IND", T0 + 120, -1, NULL, NULL),
                   CASE_OK);
  assert_int_equal(case_store_fire(s, "r1", "tel", NULL, "a", "IND", T0 + 180, -1, NULL, NULL),
                   CASE_OK);
  assert_true(exists(path, "-shm"));
  assert_true(exists(path, "-wal"));
  assert_int_equal(run_reader(path, 3, NULL), 0);
  /* 4. A -wal with transactions and no -shm, in a read-only directory: reading the
   *    file alone would miss them, so it is refused with the reason. */
  assert_int_equal(mkdir(dir2, 0755), 0);
  snprintf(cmd, sizeof cmd, "cp %s %s-wal %s/", path, path, dir2);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(chmod(path2, 0444), 0);
  snprintf(cmd, sizeof cmd, "%s-wal", path2);
  assert_int_equal(chmod(cmd, 0444), 0);
  assert_int_equal(chmod(dir2, 0555), 0);
  assert_int_equal(run_reader(path2, 3, "holds transactions not yet in the file"), 0);
  assert_false(exists(path2, "-shm"));
  case_store_close(s);
  case_engine_close(e);
  snprintf(cmd, sizeof cmd, "chmod -R u+w %s %s; rm -rf %s %s", dir, dir2, dir, dir2);
  assert_int_equal(system(cmd), 0);
}

/* ---- lazy definition loading (issue 12 §14) ---- */

/* The definitions the engine has parsed (internal: case_def_next() would load
 * every stored one). */
static int loaded(case_engine *e) {
  int n = 0;
  for (const case_def *d = e->defs; d; d = d->next) n++;
  return n;
}

static const char *OTHER =
    "workflow: ander\nversion: 1\nroles: [IND]\ninitial: a\nstates:\n"
    "  a: {on: {klaar: b}}\n  b: {final: true}\n";

static void test_lazy_definitions(void **state) {
  fx *f = *state;
  const case_def *d2, *o;
  assert_int_equal(case_def_load_string(f->e, ZAAK2, strlen(ZAAK2), "zaak2.yaml", &d2), CASE_OK);
  assert_int_equal(case_def_load_string(f->e, OTHER, strlen(OTHER), "ander.yaml", &o), CASE_OK);
  assert_int_equal(case_store_add_def(f->s, d2), CASE_OK);
  assert_int_equal(case_store_add_def(f->s, o), CASE_OK);
  create(f, "l1", NULL); /* on zaak 1 */
  assert_int_equal(case_store_create(f->s, d2, "l2", NULL, NULL, "a", "IND", T0, NULL), CASE_OK);
  reopen(f);
  /* Opening parses nothing: open_all's case_def_find("zaak", 1) loaded one. */
  assert_int_equal(loaded(f->e), 1);
  close_all(f);
  assert_int_equal(case_engine_open(&f->e), CASE_OK);
  assert_int_equal(case_store_open(f->e, f->path, 0, &f->s), CASE_OK);
  assert_int_equal(case_store_set_clock(f->s, test_clock, f), CASE_OK);
  assert_int_equal(loaded(f->e), 0);
  /* A case loads its own definition, and only that. */
  case_instance *c = NULL;
  assert_int_equal(case_store_get(f->s, "l2", &c), CASE_OK);
  assert_int_equal(loaded(f->e), 1);
  assert_int_equal(case_def_version(case_instance_def(c)), 2);
  /* A lookup by id loads that id's versions; in force, the highest. */
  assert_int_equal(case_def_version(case_def_find(f->e, "zaak", 0)), 2);
  assert_int_equal(loaded(f->e), 2);
  assert_non_null(case_def_in_force(f->e, "ander", T0));
  assert_int_equal(loaded(f->e), 3);
  assert_null(case_def_find(f->e, "nope", 0));
  assert_null(case_def_find(f->e, "zaak", 7));
  assert_int_equal(loaded(f->e), 3);
  /* A definition stored by another program after the open is found too. */
  case_engine *e2;
  case_store *s2;
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  assert_int_equal(case_store_open(e2, f->path, 0, &s2), CASE_OK);
  const char *late = "workflow: laat\nversion: 1\nroles: [IND]\ninitial: a\nstates: {a: {}}\n";
  const case_def *ld;
  assert_int_equal(case_def_load_string(e2, late, strlen(late), "laat.yaml", &ld), CASE_OK);
  assert_int_equal(case_store_add_def(s2, ld), CASE_OK);
  case_store_close(s2);
  case_engine_close(e2);
  assert_non_null(case_def_find(f->e, "laat", 1));
  /* Listing them all loads them all. */
  int n = 0;
  for (const case_def *d = case_def_next(f->e, NULL); d; d = case_def_next(f->e, d)) n++;
  assert_int_equal(n, 4);
  close_all(f);
  /* A stored definition that no longer parses breaks only what uses it:
   * cases on other definitions load and fire; verify names it. */
  exec_sql(f, "UPDATE definitions SET source='workflow: [' WHERE id='ander'");
  assert_int_equal(case_engine_open(&f->e), CASE_OK);
  assert_int_equal(case_store_open(f->e, f->path, 0, &f->s), CASE_OK);
  assert_int_equal(case_store_set_clock(f->s, test_clock, f), CASE_OK);
  assert_int_equal(case_store_get(f->s, "l1", &c), CASE_OK);
  assert_int_equal(case_store_fire(f->s, "l1", "tel", NULL, "a", "IND", T0 + 60, -1, NULL, NULL),
                   CASE_OK);
  assert_null(case_def_find(f->e, "ander", 1));
  assert_int_not_equal(case_errcode(f->e), CASE_OK);
  char *rep = NULL;
  /* verify goes on past it and names it among its problems (issue 15 §7). */
  assert_int_equal(case_store_verify(f->s, &rep), CASE_CORRUPT);
  if (!strstr(rep, "\"problem\":\"corrupt\",\"table\":\"definitions\"") || !strstr(rep, "ander.yaml"))
    fail_msg("report: %s", rep);
  case_free(rep);
}

/* ---- profile versions (issue 12 §11) ---- */

static const char *PROF =
    "workflow: prof\nversion: 1\nroles: [IND]\n"
    "params:\n  drempel: 1\n"
    "data:\n  n: {type: integer, default: 0}\n"
    "initial: open\nstates:\n"
    "  open:\n"
    "    on:\n"
    "      tel: {actions: [\"case.n = case.n + 1\"]}\n"
    "      sluit: {guard: \"case.n >= params.drempel\", target: dicht}\n"
    "  dicht: {final: true}\n";

/* Loads profile `budel` with drempel = n from a file on the store's engine. */
static void budel(fx *f, int n) {
  char path[300], text[100];
  snprintf(path, sizeof path, "/tmp/test_store_budel_%ld.lua", (long)getpid());
  snprintf(text, sizeof text, "return { params = { drempel = %d } }\n", n);
  write_file(path, text);
  int rc = case_engine_load_profile(f->e, "budel", path);
  if (rc != CASE_OK) fail_msg("profile: %s", case_errmsg(f->e));
  unlink(path);
}

static void test_profile_versions(void **state) {
  fx *f = *state;
  const case_def *d;
  assert_int_equal(case_def_load_string(f->e, PROF, strlen(PROF), "prof.yaml", &d), CASE_OK);
  /* Version 1: one count closes a case. */
  budel(f, 1);
  assert_int_equal(case_store_add_profile(f->s, "budel"), CASE_OK);
  assert_int_equal(case_store_create(f->s, d, "p1", "budel", NULL, "a", "IND", T0, NULL), CASE_OK);
  f->now = T0 + 60;
  fire(f, "p1", "tel", NULL, "IND");
  /* Version 2 (three counts) is stored: p1 stays on 1, nothing is overwritten. */
  budel(f, 3);
  assert_int_equal(case_store_add_profile(f->s, "budel"), CASE_OK);
  assert_int_equal(case_store_add_profile(f->s, "budel"), CASE_OK); /* the same text: no v3 */
  assert_int_equal(count_sql(f, "SELECT count(*) FROM profiles WHERE name='budel'"), 2);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM profiles WHERE name='budel' AND "
                                "version=1 AND source LIKE '%drempel = 1%'"), 1);
  assert_int_equal(case_store_create(f->s, d, "p2", "budel", NULL, "a", "IND", T0, NULL), CASE_OK);
  assert_int_equal(count_sql(f, "SELECT profile_version*10+profile_first FROM cases WHERE id='p1'"),
                   11);
  assert_int_equal(count_sql(f, "SELECT profile_version*10+profile_first FROM cases WHERE id='p2'"),
                   22);
  /* Each runs on its own version, in this program and in a fresh one. */
  fire(f, "p2", "tel", NULL, "IND");
  case_instance *c = NULL;
  assert_int_equal(case_store_get(f->s, "p1", &c), CASE_OK);
  assert_int_equal(case_instance_profile_version(c), 1);
  char *av = NULL;
  assert_int_equal(case_instance_available(c, "IND", f->now, &av), CASE_OK);
  assert_non_null(strstr(av, "\"sluit\""));
  case_free(av);
  assert_int_equal(case_store_fire(f->s, "p2", "sluit", NULL, "a", "IND", f->now, -1, NULL, NULL),
                   CASE_GUARD);
  reopen(f);
  d = case_def_find(f->e, "prof", 1);
  fire(f, "p1", "sluit", NULL, "IND"); /* drempel 1: n = 1 closes */
  assert_int_equal(case_store_fire(f->s, "p2", "sluit", NULL, "a", "IND", f->now, -1, NULL, NULL),
                   CASE_GUARD);
  /* The issue's failure: a changed profile used to replace the stored one, and
   * verify then replayed every earlier case with the new rules. */
  verify_clean(f, 2, 5);
  /* A new case in the fresh program gets the latest version (2). */
  assert_int_equal(case_store_create(f->s, d, "p3", "budel", NULL, "a", "IND", T0, NULL), CASE_OK);
  assert_int_equal(case_store_get(f->s, "p3", &c), CASE_OK);
  assert_int_equal(case_instance_profile_version(c), 2);
  /* Moving p2 back to version 1 is an explicit, journalled step. */
  int64_t seq = -1;
  f->now = T0 + 120;
  assert_int_equal(case_store_set_profile(f->s, "p2", 1, "beheer", "IND", f->now, &seq), CASE_OK);
  assert_true(seq > 0);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM journal WHERE case_id='p2' AND "
                                "event='libcase:profile' AND actor='beheer' AND payload LIKE "
                                "'%\"from\":2%' AND payload LIKE '%\"to\":1%'"), 1);
  assert_int_equal(case_store_get(f->s, "p2", &c), CASE_OK);
  assert_int_equal(case_instance_profile_version(c), 1);
  assert_int_equal(case_instance_revision(c), 2);
  fire(f, "p2", "sluit", NULL, "IND"); /* now drempel 1 */
  /* Again to the same version: nothing written. */
  seq = -1;
  assert_int_equal(case_store_set_profile(f->s, "p3", 2, "beheer", NULL, f->now, &seq), CASE_OK);
  assert_int_equal(seq, 0);
  /* Errors. */
  assert_int_equal(case_store_set_profile(f->s, "p3", 7, "beheer", NULL, f->now, &seq),
                   CASE_NOTFOUND);
  assert_int_equal(case_store_set_profile(f->s, "nope", 1, "beheer", NULL, f->now, &seq),
                   CASE_NOTFOUND);
  assert_int_equal(case_store_set_profile(f->s, "p1", 2, "beheer", NULL, f->now, &seq), CASE_DONE);
  assert_int_equal(case_store_set_profile(f->s, "p3", 1, "beheer", NULL, T0 - 1, &seq),
                   CASE_INVALID);
  assert_int_equal(case_store_set_profile(f->s, "p3", -1, "beheer", NULL, f->now, &seq),
                   CASE_INVALID);
  create(f, "nolocation", NULL);
  assert_int_equal(case_store_set_profile(f->s, "nolocation", 1, "b", NULL, f->now, &seq),
                   CASE_INVALID);
  /* There and back (0: the latest); replay follows every step. */
  assert_int_equal(case_store_set_profile(f->s, "p3", 1, "beheer", NULL, f->now, &seq), CASE_OK);
  assert_int_equal(case_store_set_profile(f->s, "p3", 0, "beheer", NULL, f->now + 1, &seq),
                   CASE_OK);
  assert_int_equal(case_store_get(f->s, "p3", &c), CASE_OK);
  assert_int_equal(case_instance_profile_version(c), 2);
  verify_clean(f, 4, 11);
  /* The pin is checked: a case row pinned elsewhere than its journal says. */
  close_all(f);
  exec_sql(f, "UPDATE cases SET profile_version=2 WHERE id='p2'");
  open_all(f);
  char *rep = NULL;
  assert_int_equal(case_store_verify(f->s, &rep), CASE_CORRUPT);
  assert_non_null(strstr(rep, "pinned to profile version 2, its journal leaves it on version 1"));
  case_free(rep);
}

/* Older stores: the one stored profile becomes version 1 and its cases are
 * pinned to it (profile_first stays 0: their creation rows name no profile). */
static void test_profile_migration_from_schema_5(void **state) {
  fx *f = *state;
  const case_def *d;
  assert_int_equal(case_def_load_string(f->e, PROF, strlen(PROF), "prof.yaml", &d), CASE_OK);
  budel(f, 1);
  assert_int_equal(case_store_add_profile(f->s, "budel"), CASE_OK);
  assert_int_equal(case_store_create(f->s, d, "m1", "budel", NULL, "a", "IND", T0, NULL), CASE_OK);
  create(f, "m2", NULL);
  close_all(f);
  /* Back to schema 5 (the tree is recomputed when it migrates to 6, as for a
   * real schema 5 store, whose creation leaves name no profile). */
  exec_sql(f, UNDO_SCHEMA_8 "ALTER TABLE journal DROP COLUMN node; DROP TABLE meta; "
              "DROP INDEX outbox_case; PRAGMA user_version=5;");
  open_all(f);
  assert_int_equal(count_sql(f, "PRAGMA user_version"), 10);
  assert_int_equal(count_sql(f, "SELECT version FROM profiles WHERE name='budel'"), 1);
  assert_int_equal(count_sql(f, "SELECT profile_version FROM cases WHERE id='m1'"), 1);
  assert_int_equal(count_sql(f, "SELECT profile_first FROM cases WHERE id='m1'"), 0);
  assert_int_equal(count_sql(f, "SELECT profile_version FROM cases WHERE id='m2'"), 0);
  verify_clean(f, 2, 2);
}

/* case_store_copy(): everything a store holds, into a new store (of this
 * backend, and on PostgreSQL also into an SQLite file and back): the copy
 * verifies clean, the journal is row for row the same, and what is not in the
 * journal (delivered outbox rows, revoked tokens, refusals, keys, profile
 * versions, holidays, the store's identity) comes along. */
static long long count_at(const char *loc, const char *sql) {
  long long n = ts_count(loc, sql);
  if (n < 0) fail_msg("count on %s failed: %s", loc, sql);
  return n;
}

static void copy_checked(fx *f, const char *from, const char *to) {
  case_engine *e1, *e2;
  case_store *s1, *s2;
  assert_int_equal(case_engine_open(&e1), CASE_OK);
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  assert_int_equal(case_store_open(e1, from, CASE_STORE_READONLY, &s1), CASE_OK);
  int rc = case_store_open(e2, to, CASE_STORE_CREATE, &s2);
  if (rc != CASE_OK) fail_msg("open %s: %s", to, case_errmsg(e2));
  char *counts = NULL;
  rc = case_store_copy(s1, s2, &counts);
  if (rc != CASE_OK) fail_msg("copy %s -> %s: %s", from, to, case_errmsg(e1));
  assert_string_equal(counts, "{\"definitions\":1,\"profiles\":2,\"holidays\":1,\"cases\":2,"
                              "\"journal\":6,\"timers\":2,\"outbox\":3,\"idempotency\":1,"
                              "\"refused\":1,\"tokens\":2}");
  case_free(counts);
  /* Again into the same (now full) store: refused, nothing written. */
  assert_int_equal(case_store_copy(s1, s2, NULL), CASE_EXISTS);
  assert_non_null(strstr(case_errmsg(e1), "not empty"));
  assert_int_equal(case_store_copy(s1, s1, NULL), CASE_MISUSE);
  char *rep = NULL;
  rc = case_store_verify(s2, &rep);
  if (rc != CASE_OK) fail_msg("verify the copy: %s", rep ? rep : case_errmsg(e2));
  case_free(rep);
  case_instance *c = NULL;
  assert_int_equal(case_store_get(s2, "z1", &c), CASE_OK);
  assert_int_equal(case_instance_revision(c), 3);
  case_store_close(s2);
  case_store_close(s1);
  case_engine_close(e2);
  case_engine_close(e1);
  const char *const same[] = {
      "SELECT count(*) FROM journal WHERE node IS NOT NULL",
      "SELECT sum(seq * length(hash)) FROM journal",
      "SELECT count(*) FROM outbox WHERE delivered IS NOT NULL",
      "SELECT count(*) FROM tokens WHERE revoked IS NOT NULL",
      "SELECT count(*) FROM refused WHERE code=9",
      "SELECT count(*) FROM idempotency WHERE request IS NOT NULL",
      "SELECT max(version) FROM profiles WHERE name='budel'",
      "SELECT count(*) FROM holidays",
      "SELECT count(*) FROM timers WHERE fired=0",
  };
  for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
    long long a = count_at(from, same[i]), b = count_at(to, same[i]);
    if (a != b || a == 0) fail_msg("%s: %lld in %s, %lld in the copy %s", same[i], a, from, b, to);
  }
  (void)f;
}

static void test_copy(void **state) {
  fx *f = *state;
  create(f, "z1", NULL);
  create(f, "z2", NULL);
  fire(f, "z1", "tel", NULL, "IND"); /* emits geteld */
  int64_t seq = 0;
  assert_int_equal(case_store_fire(f->s, "z1", "tel", NULL, "jan", "IND", T0 + 60, -1, "key-1",
                                   &seq), CASE_OK);
  fire(f, "z1", "notitie", "{\"tekst\":\"x\"}", "COA");
  assert_int_equal(case_store_fire(f->s, "z2", "sluit", NULL, "jan", "IND", T0 + 60, -1, NULL,
                                   NULL), CASE_GUARD); /* refused */
  assert_int_equal(case_store_outbox_ack(f->s, 1), CASE_OK);
  budel(f, 1);
  assert_int_equal(case_store_add_profile(f->s, "budel"), CASE_OK);
  budel(f, 2);
  assert_int_equal(case_store_add_profile(f->s, "budel"), CASE_OK);
  assert_int_equal(case_store_add_holiday(f->s, "2026-03-04", "testdag"), CASE_OK);
  char *tok = NULL;
  assert_int_equal(case_store_token_create(f->s, "politie", "IND", CASE_TOKEN_READ, &tok), CASE_OK);
  case_free(tok);
  assert_int_equal(case_store_token_revoke(f->s, "politie"), CASE_OK);
  assert_int_equal(case_store_token_create(f->s, "politie", "IND", CASE_TOKEN_READ, &tok), CASE_OK);
  case_free(tok);
  assert_int_equal(case_store_fire(f->s, "z2", "tel", NULL, "jan", "IND", T0 + 120, -1, NULL,
                                   NULL), CASE_OK);
  close_all(f);
  char to[600];
  ts_location(to, sizeof to, "test_copy");
  copy_checked(f, f->path, to);
  if (ts_pg()) { /* across backends: into an SQLite file, and from it into PostgreSQL again */
    char file[300], again[600];
    snprintf(file, sizeof file, "/tmp/test_copy_%ld.db", (long)getpid());
    ts_remove(file);
    ts_location(again, sizeof again, "test_copy_again");
    copy_checked(f, to, file);
    copy_checked(f, file, again);
    ts_remove(file);
    ts_remove(again);
  }
  ts_remove(to);
  open_all(f);
}

/* The last day of case `id`'s running term `termijn` ("YYYY-MM-DD"). */
static void last_day_of(fx *f, const char *id, char out[11]) {
  case_instance *c = NULL;
  assert_int_equal(case_store_get(f->s, id, &c), CASE_OK);
  char *t = NULL;
  assert_int_equal(case_instance_timers(c, &t), CASE_OK);
  const char *p = strstr(t, "\"last_day\":\"");
  if (!p) fail_msg("no last day in %s", t);
  memcpy(out, p + 12, 10);
  out[10] = 0;
  case_free(t);
}

/* Issue 15 review: a holiday added by decree counts from when it is stored.  A
 * term computed before it keeps its last day in the live run, so verify's
 * replay must compute it without the holiday too: it used to replay every row
 * with today's calendar and report an untampered store (a "timers" problem, or
 * "replay has no timer due" once the term had run out).  And moving a stored
 * holiday's time back, so that it would have counted, is seen. */
static void test_holiday_counts_from_when_stored(void **state) {
  fx *f = *state;
  create(f, "h1", NULL);
  assert_int_equal(case_store_tick(f->s, DUE_AFTER, NULL), CASE_OK); /* h1 waits: 8 weeks */
  char before[11], after[11];
  last_day_of(f, "h1", before);
  /* A decree makes the term's last day a holiday: terms counted from now on
   * end a working day later; h1's, counted before, does not change. */
  assert_int_equal(case_store_add_holiday(f->s, before, "bij KB aangewezen"), CASE_OK);
  /* It counts for rows recorded from then on (recorded is the wall clock;
   * the store waited for the second after h1's row). */
  create(f, "h2", NULL);
  assert_int_equal(case_store_tick(f->s, DUE_AFTER, NULL), CASE_OK);
  last_day_of(f, "h1", after);
  assert_string_equal(after, before);
  last_day_of(f, "h2", after);
  assert_true(strcmp(after, before) > 0);
  verify_clean(f, 2, 4);
  reopen(f); /* the holiday as the store gives it, with its time */
  verify_clean(f, 2, 4);
  /* Stored again (casectl --holiday on every command): it keeps its time. */
  long long added = count_sql(f, "SELECT added FROM holidays");
  assert_int_equal(case_store_add_holiday(f->s, before, "hernoemd"), CASE_OK);
  assert_int_equal(count_sql(f, "SELECT added FROM holidays"), added);
  assert_int_equal(count_sql(f, "SELECT count(*) FROM holidays WHERE name = 'hernoemd'"), 1);
  verify_clean(f, 2, 4);
  /* h1's term runs out on its own last day; h2's a working day later. */
  assert_int_equal(case_store_tick(f->s, DUE_AFTER + 60 * DAY, NULL), CASE_OK);
  assert_config(f, "h1", "[\"te_laat\"]");
  assert_config(f, "h2", "[\"te_laat\"]");
  verify_clean(f, 2, 6);
  /* An insider dates the holiday back: h1's replay now counts it and differs. */
  exec_sql(f, "UPDATE holidays SET added = 0");
  reopen(f);
  char *rep = NULL;
  assert_int_equal(case_store_verify(f->s, &rep), CASE_CORRUPT);
  assert_non_null(strstr(rep, "\"case\":\"h1\""));
  assert_null(strstr(rep, "\"case\":\"h2\""));
  case_free(rep);
}

/* A holiday another program stores counts for this handle's next write too: a
 * handle opened before it used to compute the next terms without it, and
 * verify's replay (which counts it) then reported the untampered case. */
static void test_holiday_from_another_handle(void **state) {
  fx *f = *state;
  create(f, "h1", NULL);
  assert_int_equal(case_store_tick(f->s, DUE_AFTER, NULL), CASE_OK);
  char before[11], after[11];
  last_day_of(f, "h1", before);
  case_engine *e2 = NULL;
  case_store *s2 = NULL;
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  if (case_store_open(e2, f->path, CASE_STORE_CREATE, &s2) != CASE_OK)
    fail_msg("second handle: %s", case_errmsg(e2));
  assert_int_equal(case_store_set_clock(s2, test_clock, f), CASE_OK);
  assert_int_equal(case_store_add_holiday(s2, before, "bij KB aangewezen"), CASE_OK);
  case_store_close(s2);
  case_engine_close(e2);
  create(f, "h2", NULL);
  assert_int_equal(case_store_tick(f->s, DUE_AFTER, NULL), CASE_OK);
  last_day_of(f, "h1", after);
  assert_string_equal(after, before);
  last_day_of(f, "h2", after);
  assert_true(strcmp(after, before) > 0);
  verify_clean(f, 2, 4);
}

int main(void) {
  /* One suite for every backend (store_uri.h); the tests of SQLite's files
   * (wrong files, old schema versions, read-only files) run on SQLite only, and
   * test_store_pg.c has PostgreSQL's own (locations, logins, restarts, grants). */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_recorded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stale_revision_conflict, setup, teardown),
      cmocka_unit_test_setup_teardown(test_outbox_and_follow, setup, teardown),
      cmocka_unit_test_setup_teardown(test_outbox_consumers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_notify_after_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timers_across_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deadline_extension, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failing_timer_does_not_block, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expiry_limit_tick, setup, teardown),
      cmocka_unit_test_setup_teardown(test_create_role_checked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tampered_row_named, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tampered_case_row, setup, teardown),
      cmocka_unit_test_setup_teardown(test_definition_upgrade, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sigkill_mid_stream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sigkill_mid_batch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wait, setup, teardown),
      cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fire_runs_due_timers_first, setup, teardown),
      cmocka_unit_test_setup_teardown(test_modules_pinned, setup, teardown),
      cmocka_unit_test_setup_teardown(test_profiles_stored, setup, teardown),
      cmocka_unit_test_setup_teardown(test_holidays_stored, setup, teardown),
      cmocka_unit_test_setup_teardown(test_case_ids, setup, teardown),
      cmocka_unit_test_setup_teardown(test_key_reuse, setup, teardown),
      cmocka_unit_test_setup_teardown(test_future_bound, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lazy_definitions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_profile_versions, setup, teardown),
  };
  const struct CMUnitTest sqlite_tests[] = {
      cmocka_unit_test_setup_teardown(test_open_wrong_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_migration_from_schema_1, setup, teardown),
      cmocka_unit_test_setup_teardown(test_migration_from_schema_9, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tree_migration, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tree_two_handles, setup, teardown),
      cmocka_unit_test_setup_teardown(test_readonly_store, setup, teardown),
      cmocka_unit_test_setup_teardown(test_profile_migration_from_schema_5, setup, teardown),
      cmocka_unit_test_setup_teardown(test_holiday_counts_from_when_stored, setup, teardown),
      cmocka_unit_test_setup_teardown(test_holiday_from_another_handle, setup, teardown),
  };
  print_message("store tests on %s%s%s\n", ts_backend(), ts_pg() ? ": " : "",
                ts_pg() ? ts_pg_base() : "");
  int failed = cmocka_run_group_tests_name(ts_backend(), tests, NULL, NULL);
  if (!ts_pg()) failed += cmocka_run_group_tests_name("sqlite files", sqlite_tests, NULL, NULL);
  return failed;
}
