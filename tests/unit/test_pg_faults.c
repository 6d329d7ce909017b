/* The PostgreSQL store's bad input and faults (issue 10, "Bad input and
 * faults"): a wrong URI, a refused login, no such database, a server that is
 * down or restarts (mid-batch too), a schema newer than the library, a schema
 * of another program.  Each gives an error naming the store and what to do,
 * never a half-written case, and the next call after the server is back works
 * without reopening the store.
 *
 * The bad-input tests use $CASE_TEST_STORE (the fixture's cluster); the
 * server faults start a cluster of their own (scripts/pg-cluster start DIR),
 * because stopping the shared one would fail the tests that run beside them.
 * Without $CASE_TEST_STORE naming a server, or without PostgreSQL installed,
 * the tests fail: they never skip. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "libcase/libcase.h"
#include "libcase/store.h"
#include "store_uri.h"

/* 2026-03-02T09:00:00Z */
#define T0 INT64_C(1772442000)

static const char *DEF =
    "workflow: teller\n"
    "version: 1\n"
    "roles: [IND]\n"
    "data:\n"
    "  n: {type: integer, default: 0}\n"
    "initial: open\n"
    "states:\n"
    "  open:\n"
    "    on:\n"
    "      tel: {roles: [IND], actions: [case.n = case.n + 1]}\n";

static char own_dir[64];  /* the private cluster of the server faults */
static char own_uri[300];

static const char *base(void) {
  const char *b = ts_pg_base();
  if (!b) fail_msg("CASE_TEST_STORE does not name a PostgreSQL server: this test needs one "
                   "(ctest runs it with the fixture's cluster)");
  return b;
}

static int cluster(const char *cmd) {
  char line[512];
  snprintf(line, sizeof line, "%s/scripts/pg-cluster %s %s >/dev/null", CASE_SOURCE_DIR, cmd,
           own_dir);
  return system(line);
}

/* Opening `loc` fails with `rc`, and the message names the store and says `what`. */
static void open_fails(const char *loc, int flags, int rc, const char *shown, const char *what) {
  case_engine *e;
  case_store *s = (case_store *)1;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  int got = case_store_open(e, loc, flags, &s);
  const char *msg = case_errmsg(e);
  if (got != rc) fail_msg("open %s: %d (%s), expected %d", loc, got, msg, rc);
  assert_null(s);
  char named[700];
  snprintf(named, sizeof named, "store '%s'", shown ? shown : loc);
  if (!strstr(msg, named)) fail_msg("the message does not name the store (%s): %s", named, msg);
  if (!strstr(msg, what)) fail_msg("the message does not say '%s': %s", what, msg);
  case_engine_close(e);
}

static void test_bad_locations(void **state) {
  (void)state;
  const char *b = base();
  char loc[700];
  /* Not a URI libpq can read. */
  open_fails("postgresql://[nohost", CASE_STORE_CREATE, CASE_INVALID, NULL,
             "not a valid PostgreSQL location");
  open_fails("host=/tmp dbname", CASE_STORE_CREATE, CASE_INVALID, NULL,
             "not a valid PostgreSQL location");
  /* A schema name that is not one. */
  snprintf(loc, sizeof loc, "%s&schema=Bad-Name", b);
  open_fails(loc, CASE_STORE_CREATE, CASE_INVALID, NULL, "not a valid schema name");
  /* No server there. */
  open_fails("postgresql://postgres@/postgres?host=/tmp/libcase-no-server&port=5432",
             CASE_STORE_CREATE, CASE_IO, NULL, "no PostgreSQL server answers there: start it");
  /* A login the server refuses (no such role). */
  char *user = strdup(b);
  char *at = strstr(user, "postgres@");
  assert_non_null(at);
  snprintf(loc, sizeof loc, "%.*sno_such_login@%s", (int)(at - user), user, at + 9);
  open_fails(loc, CASE_STORE_CREATE, CASE_DENIED, NULL, "the server refused this login");
  /* A password is never shown. */
  snprintf(loc, sizeof loc, "%.*sno_such_login:geheim@%s", (int)(at - user), user, at + 9);
  char shown[700];
  snprintf(shown, sizeof shown, "%.*sno_such_login:***@%s", (int)(at - user), user, at + 9);
  open_fails(loc, CASE_STORE_CREATE, CASE_DENIED, shown, "refused this login");
  free(user);
  /* As a program that prints the location shows it: conninfo's spaces and quotes too. */
  static const char *const masked[][2] = {
      {"host=h password=geheim user=u", "host=h password=*** user=u"},
      {"host=h password = 'ge heim\\' x' user=u", "host=h password = *** user=u"},
      {"postgresql://u:geheim@h/db?password=geheim&schema=s",
       "postgresql://u:***@h/db?password=***&schema=s"},
      {"pilot.db", "pilot.db"},
  };
  for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++) {
    char *got = case_store_shown_location(masked[i][0]);
    assert_non_null(got);
    assert_string_equal(got, masked[i][1]);
    case_free(got);
  }
  assert_null(case_store_shown_location(NULL));
  /* No such database. */
  snprintf(loc, sizeof loc, "%s", b);
  char *db = strstr(loc, "@/postgres");
  assert_non_null(db);
  memmove(db + 12, db + 10, strlen(db + 10) + 1);
  memcpy(db, "@/no_such_db", 12);
  open_fails(loc, CASE_STORE_CREATE, CASE_NOTFOUND, NULL, "no such database");
  /* No store in the schema, without CASE_STORE_CREATE. */
  ts_location(loc, sizeof loc, "pgf_none");
  open_fails(loc, 0, CASE_NOTFOUND, NULL, "no such store");
  open_fails(loc, CASE_STORE_READONLY, CASE_NOTFOUND, NULL, "no such store");
  assert_int_equal(ts_count(loc, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE "
                                 "'t_pgf_none_%'"), 0); /* nothing was created */
}

static void test_foreign_and_newer_schema(void **state) {
  (void)state;
  base();
  char loc[700], err[600];
  /* A schema with another program's tables. */
  ts_location(loc, sizeof loc, "pgf_other");
  char schema[80];
  free(ts_pg_split(loc, schema, sizeof schema));
  char sql[300];
  snprintf(sql, sizeof sql, "CREATE SCHEMA %s; CREATE TABLE %s.t(x int)", schema, schema);
  {
    char *b = ts_pg_split(loc, schema, sizeof schema);
    PGconn *c = PQconnectdb(b);
    free(b);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
  }
  open_fails(loc, CASE_STORE_CREATE, CASE_CORRUPT, NULL, "is not a libcase store");
  /* ... even when one of them is called meta (it used to be "column "value" does not
   * exist ... the schema was changed by hand?"). */
  snprintf(sql, sizeof sql, "CREATE TABLE %s.meta(x int)", schema);
  {
    char *b = ts_pg_split(loc, schema, sizeof schema);
    PGconn *c = PQconnectdb(b);
    free(b);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
  }
  open_fails(loc, CASE_STORE_CREATE, CASE_CORRUPT, NULL, "is not a libcase store");
  open_fails(loc, CASE_STORE_READONLY, CASE_CORRUPT, NULL, "is not a libcase store");
  ts_remove(loc);
  /* A schema newer than the library. */
  ts_location(loc, sizeof loc, "pgf_newer");
  case_engine *e;
  case_store *s;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  assert_int_equal(case_store_open(e, loc, CASE_STORE_CREATE, &s), CASE_OK);
  case_store_close(s);
  case_engine_close(e);
  if (ts_exec(loc, "UPDATE meta SET value='99' WHERE key='schema_version'", err, sizeof err) != 0)
    fail_msg("%s", err);
  open_fails(loc, 0, CASE_CORRUPT, NULL, "newer than this library's");
  open_fails(loc, CASE_STORE_READONLY, CASE_CORRUPT, NULL, "use that version of libcase");
  ts_remove(loc);
}

/* ---- the server goes away ---- */

static int64_t revision(case_store *s, const char *id) {
  case_instance *c = NULL;
  int rc = case_store_get(s, id, &c);
  if (rc != CASE_OK) fail_msg("get %s (%d)", id, rc);
  return case_instance_revision(c);
}

static void fire_ok(case_engine *e, case_store *s, const char *id, int64_t at) {
  int rc = case_store_fire(s, id, "tel", NULL, "jan", "IND", at, -1, NULL, NULL);
  if (rc != CASE_OK) fail_msg("fire at %s (%d): %s", id, rc, case_errmsg(e));
}

static void verify_clean(case_engine *e, case_store *s) {
  char *rep = NULL;
  int rc = case_store_verify(s, &rep);
  if (rc != CASE_OK || !strstr(rep, "\"problems\":[]"))
    fail_msg("verify (%d): %s", rc, rep ? rep : case_errmsg(e));
  case_free(rep);
}

static void test_server_down_and_back(void **state) {
  (void)state;
  snprintf(own_dir, sizeof own_dir, "/tmp/libcase-pgf-%ld", (long)getpid());
  snprintf(own_uri, sizeof own_uri,
           "postgresql://postgres@/postgres?host=%s&port=5432&schema=faults", own_dir);
  if (cluster("start") != 0)
    fail_msg("scripts/pg-cluster start %s failed (is PostgreSQL installed? scripts/bootstrap)",
             own_dir);
  case_engine *e;
  case_store *s;
  const case_def *d;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  assert_int_equal(case_def_load_string(e, DEF, strlen(DEF), "teller.yaml", &d), CASE_OK);
  if (case_store_open(e, own_uri, CASE_STORE_CREATE, &s) != CASE_OK)
    fail_msg("open: %s", case_errmsg(e));
  assert_int_equal(case_store_create(s, d, "K1", NULL, NULL, "jan", "IND", T0, NULL), CASE_OK);
  fire_ok(e, s, "K1", T0 + 60);
  assert_int_equal(revision(s, "K1"), 1);

  /* Down: a fire fails, naming the store and saying what to do. */
  assert_int_equal(cluster("down"), 0);
  int rc = case_store_fire(s, "K1", "tel", NULL, "jan", "IND", T0 + 120, -1, NULL, NULL);
  assert_int_equal(rc, CASE_IO);
  const char *msg = case_errmsg(e);
  if (!strstr(msg, "store 'postgresql://postgres@/postgres?host=") ||
      !strstr(msg, "no PostgreSQL server answers there: start it"))
    fail_msg("the message says neither the store nor what to do: %s", msg);
  /* Still down: the next call fails as clearly. */
  assert_int_equal(case_store_fire(s, "K1", "tel", NULL, "jan", "IND", T0 + 130, -1, NULL, NULL),
                   CASE_IO);
  assert_non_null(strstr(case_errmsg(e), "start it"));

  /* Back: the next fire works on the same handle (it reconnects), and nothing
   * of the failed ones was written. */
  assert_int_equal(cluster("up"), 0);
  fire_ok(e, s, "K1", T0 + 180);
  assert_int_equal(revision(s, "K1"), 2);
  assert_int_equal(ts_count(own_uri, "SELECT count(*) FROM journal WHERE case_id='K1'"), 3);

  /* A restart between two fires (the connection the handle holds is dead):
   * the fire reconnects and runs once. */
  assert_int_equal(cluster("down"), 0);
  assert_int_equal(cluster("up"), 0);
  fire_ok(e, s, "K1", T0 + 240);
  assert_int_equal(revision(s, "K1"), 3);
  assert_int_equal(ts_count(own_uri, "SELECT count(*) FROM journal WHERE case_id='K1'"), 4);

  /* A restart while a transaction is open (a batch holds it across calls):
   * the commit fails, says the batch was not written, and leaves no half of
   * it; the committed fires before it are all there; the next fire works. */
  assert_int_equal(case_store_batch_begin(s), CASE_OK);
  fire_ok(e, s, "K1", T0 + 300);
  assert_int_equal(case_store_create(s, d, "K2", NULL, NULL, "jan", "IND", T0 + 300, NULL),
                   CASE_OK);
  assert_int_equal(cluster("down"), 0);
  assert_int_equal(cluster("up"), 0);
  rc = case_store_batch_commit(s);
  assert_int_equal(rc, CASE_IO);
  msg = case_errmsg(e);
  if (!strstr(msg, "connection to the PostgreSQL server was lost"))
    fail_msg("the batch's failure does not say the connection was lost: %s", msg);
  assert_int_equal(ts_count(own_uri, "SELECT count(*) FROM journal WHERE case_id='K1'"), 4);
  assert_int_equal(ts_count(own_uri, "SELECT count(*) FROM cases WHERE id='K2'"), 0);
  assert_int_equal(revision(s, "K1"), 3);
  fire_ok(e, s, "K1", T0 + 360);
  assert_int_equal(revision(s, "K1"), 4);
  verify_clean(e, s);

  /* The server ends this session (an administrator's pg_terminate_backend):
   * the next fire reconnects. */
  {
    PGconn *k = ts_pg_connect(own_uri);
    assert_non_null(k);
    PGresult *r = PQexec(k, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE pid <> pg_backend_pid() AND datname = 'postgres'");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(k);
  }
  fire_ok(e, s, "K1", T0 + 420);
  assert_int_equal(revision(s, "K1"), 5);
  verify_clean(e, s);
  case_store_close(s);
  case_engine_close(e);

  /* A login the server asks a password of (scram-sha-256 in pg_hba.conf): none
   * given is a refused login that says to give one, not an I/O error. */
  {
    PGconn *k = ts_pg_connect(own_uri);
    assert_non_null(k);
    PGresult *r = PQexec(k, "CREATE ROLE pgf_pw LOGIN PASSWORD 'juist'");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    char hba[128];
    snprintf(hba, sizeof hba, "%s/data/pg_hba.conf", own_dir);
    FILE *f = fopen(hba, "r");
    assert_non_null(f);
    char old[8192];
    size_t n = fread(old, 1, sizeof old - 1, f);
    old[n] = '\0';
    fclose(f);
    f = fopen(hba, "w");
    assert_non_null(f);
    fprintf(f, "local all pgf_pw scram-sha-256\n%s", old); /* first match wins */
    fclose(f);
    r = PQexec(k, "SELECT pg_reload_conf()");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(k);
    char loc[400], shown[400];
    const char *at = strstr(own_uri, "postgres@");
    assert_non_null(at);
    snprintf(loc, sizeof loc, "%.*spgf_pw@%s", (int)(at - own_uri), own_uri, at + 9);
    setenv("PGPASSFILE", "/nonexistent", 1); /* no ~/.pgpass gives one either */
    open_fails(loc, CASE_STORE_CREATE, CASE_DENIED, NULL, "asks this login for a password");
    snprintf(loc, sizeof loc, "%.*spgf_pw:fout@%s", (int)(at - own_uri), own_uri, at + 9);
    snprintf(shown, sizeof shown, "%.*spgf_pw:***@%s", (int)(at - own_uri), own_uri, at + 9);
    open_fails(loc, CASE_STORE_CREATE, CASE_DENIED, shown, "the server refused this login");
  }
  cluster("stop");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_locations),
      cmocka_unit_test(test_foreign_and_newer_schema),
      cmocka_unit_test(test_server_down_and_back),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (own_dir[0]) cluster("stop"); /* after a failure too */
  return failed;
}
