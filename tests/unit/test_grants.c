/* Who may write what, enforced by the database too (issue 10 §4).  On the
 * throwaway PostgreSQL cluster (unit.grants.pg) the test creates real logins of
 * its own, maps them with case_store_grant() as the schema's owner, and then
 * connects as them: through the library (a fire under a role not mapped to the
 * login is refused by the server even though the library lets it through) and
 * with plain SQL, as a host program that skips the library would (every
 * refusal is checked, and that nothing changed).  On SQLite (unit.grants) the
 * calls are refused as PostgreSQL-only. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "libcase/libcase.h"
#include "libcase/store.h"
#include "store_uri.h"

#define T0 INT64_C(1772442000)

/* Both agencies act on the case; the timer is the store's own row. */
static const char *KETEN =
    "workflow: keten\n"
    "version: 1\n"
    "roles: [IND, COA]\n"
    "data:\n"
    "  n: {type: integer, default: 0}\n"
    "initial: open\n"
    "states:\n"
    "  open:\n"
    "    after:\n"
    "      - {delay: 1 hour, target: open, actions: [\"emit('uur', {n = case.n})\"]}\n"
    "    on:\n"
    "      tel: {roles: [IND], actions: [\"case.n = case.n + 1\", \"emit('geteld', {n = case.n})\"]}\n"
    "      opvang: {roles: [COA], actions: [case.n = case.n + 10]}\n";

static char loc[600];   /* the store, as its owner (postgres) */
static char ind[64], coa[64], other[64]; /* the logins, per process */

/* The location with `login` as the user instead of postgres. */
static void as_login(char *out, size_t n, const char *login) {
  const char *at = strstr(loc, "postgres@");
  assert_non_null(at);
  snprintf(out, n, "%.*s%s@%s", (int)(at - loc), loc, login, at + strlen("postgres@"));
}

static void owner_sql(const char *sql) {
  char err[600];
  if (ts_exec(loc, sql, err, sizeof err) != 0) fail_msg("%s: %s", sql, err);
}

/* Runs `sql` as `login` with the store's schema as search_path; returns the
 * SQLSTATE of its failure ("" when it succeeded) in state. */
static void login_sql(const char *login, const char *sql, char state[6], char *msg, size_t n) {
  char l[700];
  as_login(l, sizeof l, login);
  PGconn *c = ts_pg_connect(l);
  assert_non_null(c);
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  state[0] = '\0';
  if (msg) snprintf(msg, n, "%s", PQerrorMessage(c));
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(state, 6, "%s", s ? s : "?????");
  }
  PQclear(r);
  PQfinish(c);
}

/* `sql` as `login` must be refused with insufficient_privilege. */
static void refused(const char *login, const char *sql, const char *says) {
  char st[6], msg[1000];
  login_sql(login, sql, st, msg, sizeof msg);
  if (strcmp(st, "42501") != 0)
    fail_msg("as %s: %s: expected a refusal (42501), got '%s' %s", login, sql, st, msg);
  if (says && !strstr(msg, says)) fail_msg("as %s: %s: the refusal says %s, not '%s'", login, sql, msg, says);
}

static long long count(const char *sql) {
  long long n = ts_count(loc, sql);
  if (n < 0) fail_msg("count failed: %s", sql);
  return n;
}

static case_store *open_as(case_engine **e, const char *login, int flags) {
  char l[700];
  if (login) as_login(l, sizeof l, login);
  assert_int_equal(case_engine_open(e), CASE_OK);
  case_store *s = NULL;
  int rc = case_store_open(*e, login ? l : loc, flags, &s);
  if (rc != CASE_OK) fail_msg("open as %s: %s", login ? login : "owner", case_errmsg(*e));
  return s;
}

static int setup(void **state) {
  (void)state;
  ts_location(loc, sizeof loc, "test_grants");
  if (!ts_pg()) return 0;
  long pid = (long)getpid();
  snprintf(ind, sizeof ind, "ind_login_%ld", pid);
  snprintf(coa, sizeof coa, "coa_login_%ld", pid);
  snprintf(other, sizeof other, "dtv_login_%ld", pid);
  char sql[400];
  const char *all[] = {ind, coa, other};
  for (int i = 0; i < 3; i++) {
    snprintf(sql, sizeof sql, "SET client_min_messages TO warning; DROP ROLE IF EXISTS %s; "
             "CREATE ROLE %s LOGIN", all[i], all[i]);
    owner_sql(sql);
  }
  case_engine *e;
  case_store *s = open_as(&e, NULL, CASE_STORE_CREATE);
  const case_def *d;
  assert_int_equal(case_def_load_string(e, KETEN, strlen(KETEN), "keten.yaml", &d), CASE_OK);
  assert_int_equal(case_store_add_def(s, d), CASE_OK);
  case_store_close(s);
  case_engine_close(e);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  ts_remove(loc);
  if (!ts_pg()) return 0;
  const char *all[] = {ind, coa, other};
  char sql[300];
  for (int i = 0; i < 3; i++) {
    snprintf(sql, sizeof sql, "DROP OWNED BY %s; DROP ROLE IF EXISTS %s", all[i], all[i]);
    ts_exec(loc, sql, NULL, 0);
  }
  return 0;
}

/* SQLite: every grant call is refused, saying why. */
static void sqlite_refuses(void) {
  case_engine *e;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  case_store *s;
  assert_int_equal(case_store_open(e, loc, CASE_STORE_CREATE, &s), CASE_OK);
  assert_int_equal(case_store_grant(s, "IND", "ind_login"), CASE_INVALID);
  assert_non_null(strstr(case_errmsg(e), "PostgreSQL-only"));
  assert_int_equal(case_store_revoke(s, "IND", "ind_login"), CASE_INVALID);
  char *json = NULL;
  assert_int_equal(case_store_grants(s, &json), CASE_INVALID);
  assert_null(json);
  case_store_close(s);
  case_engine_close(e);
}

static void logins(void) {
  case_engine *e;
  case_store *s = open_as(&e, NULL, 0);
  /* The owner maps; bad names and unknown logins say what. */
  assert_int_equal(case_store_grant(s, "IND", ind), CASE_OK);
  assert_int_equal(case_store_grant(s, "IND", ind), CASE_OK); /* again: nothing changes */
  assert_int_equal(case_store_grant(s, "COA", coa), CASE_OK);
  assert_int_equal(case_store_grant(s, "IND", "no_such_login_x"), CASE_NOTFOUND);
  assert_non_null(strstr(case_errmsg(e), "CREATE ROLE"));
  assert_int_equal(case_store_grant(s, "", ind), CASE_INVALID);
  assert_int_equal(case_store_grant(s, "IND\n", ind), CASE_INVALID);
  char *json = NULL, want[300];
  assert_int_equal(case_store_grants(s, &json), CASE_OK);
  snprintf(want, sizeof want, "[{\"login\":\"%s\",\"role\":\"COA\",\"granted\":", coa);
  if (strncmp(json, want, strlen(want)) != 0) fail_msg("grants %s", json);
  snprintf(want, sizeof want, "{\"login\":\"%s\",\"role\":\"IND\",\"granted\":", ind);
  assert_non_null(strstr(json, want));
  case_free(json);
  case_store_close(s);
  case_engine_close(e);

  /* IND's tool, through the library: its own role works, the timer's row too. */
  case_engine *ie;
  case_store *is = open_as(&ie, ind, 0);
  const case_def *d = case_def_find(ie, "keten", 1);
  assert_non_null(d);
  int rc = case_store_create(is, d, "K1", NULL, NULL, "medewerker-1", "IND", T0, NULL);
  if (rc != CASE_OK) fail_msg("create as IND: %s", case_errmsg(ie));
  rc = case_store_fire(is, "K1", "tel", NULL, "medewerker-1", "IND", T0 + 60, -1, "req-1", NULL);
  if (rc != CASE_OK) fail_msg("fire as IND: %s", case_errmsg(ie));
  int fired = 0;
  rc = case_store_tick(is, T0 + 3600 + 1800, &fired);
  if (rc != CASE_OK) fail_msg("tick as IND: %s", case_errmsg(ie));
  assert_int_equal(fired, 1);
  char *ob = NULL;
  rc = case_store_outbox_claim(is, "ind-mailer", 10, 0, &ob);
  if (rc != CASE_OK) fail_msg("claim as IND: %s", case_errmsg(ie));
  assert_non_null(strstr(ob, "\"name\":\"geteld\""));
  case_free(ob);
  assert_int_equal(case_store_outbox_ack(is, 1), CASE_OK);
  assert_int_equal(count("SELECT count(*) FROM journal"), 3);

  /* A forged role: the library's check passes (COA may fire opvang), the
   * server refuses the row, and nothing is written. */
  rc = case_store_fire(is, "K1", "opvang", NULL, "medewerker-1", "COA", T0 + 7300, -1, NULL, NULL);
  assert_int_equal(rc, CASE_DENIED);
  if (!strstr(case_errmsg(ie), "row-level security"))
    fail_msg("the refusal says: %s", case_errmsg(ie));
  assert_int_equal(count("SELECT count(*) FROM journal"), 3);
  assert_int_equal(count("SELECT count(*) FROM journal WHERE role = 'COA'"), 0);
  /* The store still works for this login afterwards. */
  rc = case_store_fire(is, "K1", "tel", NULL, "medewerker-1", "IND", T0 + 7400, -1, NULL, NULL);
  if (rc != CASE_OK) fail_msg("fire as IND after the refusal: %s", case_errmsg(ie));
  /* A login that lifts the library's future limit still may not date a row (nor
   * run a term out) more than a day after the server's clock. */
  long long before = count("SELECT count(*) FROM journal");
  case_store_set_future_limit(is, -1);
  rc = case_store_create(is, d, "KF", NULL, NULL, "medewerker-1", "IND",
                         (int64_t)time(NULL) + 5 * 86400, NULL);
  if (rc != CASE_DENIED) fail_msg("a case created 5 days ahead: %d %s", rc, case_errmsg(ie));
  if (!strstr(case_errmsg(ie), "more than a day"))
    fail_msg("the refusal says: %s", case_errmsg(ie));
  assert_int_equal(count("SELECT count(*) FROM journal"), before);
  case_store_set_future_limit(is, CASE_STORE_FUTURE_LIMIT);
  /* A batch (savepoints: rows written in a subtransaction are this
   * transaction's too) and a batched tick, as the login. */
  assert_int_equal(case_store_batch_begin(is), CASE_OK);
  rc = case_store_create(is, d, "K2", NULL, NULL, "medewerker-1", "IND", T0, NULL);
  if (rc != CASE_OK) fail_msg("create in a batch as IND: %s", case_errmsg(ie));
  rc = case_store_fire(is, "K2", "tel", NULL, "medewerker-1", "IND", T0 + 10, -1, NULL, NULL);
  if (rc != CASE_OK) fail_msg("fire in a batch as IND: %s", case_errmsg(ie));
  assert_int_equal(case_store_batch_commit(is), CASE_OK);
  rc = case_store_tick_v2(is, T0 + 3601, 0, &fired); /* K2's timer, not K1's */
  if (rc != CASE_OK) fail_msg("batched tick as IND: %s", case_errmsg(ie));
  assert_int_equal(fired, 1);
  assert_int_equal(count("SELECT count(*) FROM journal WHERE case_id = 'K2'"), 3);
  /* Only the owner maps logins. */
  assert_int_equal(case_store_grant(is, "COA", ind), CASE_DENIED);
  assert_non_null(strstr(case_errmsg(ie), "owner"));
  assert_int_equal(case_store_grants(is, &json), CASE_DENIED);
  case_store_close(is);
  case_engine_close(ie);

  /* COA's tool fires as COA on the same case: the shared record. */
  case_engine *ce;
  case_store *cs = open_as(&ce, coa, 0);
  rc = case_store_fire(cs, "K1", "opvang", NULL, "medewerker-9", "COA", T0 + 7500, -1, NULL, NULL);
  if (rc != CASE_OK) fail_msg("fire as COA: %s", case_errmsg(ce));
  assert_int_equal(case_store_fire(cs, "K1", "tel", NULL, "medewerker-9", "IND", T0 + 7600, -1,
                                   NULL, NULL),
                   CASE_DENIED);
  char *rep = NULL;
  rc = case_store_verify(cs, &rep);
  if (rc != CASE_OK) fail_msg("verify as COA (%d): %s", rc, rep ? rep : case_errmsg(ce));
  case_free(rep);
  case_store_close(cs);
  case_engine_close(ce);
  /* K1: create, tel, the timer, (the forged row refused), the timer again and tel,
   * opvang; K2: create, tel, its timer */
  assert_int_equal(count("SELECT count(*) FROM journal WHERE case_id = 'K1'"), 6);
  assert_int_equal(count("SELECT count(*) FROM journal"), 9);
  long long rows = 9;

  /* A host program that skips the library: plain SQL as IND's login. */
  char last_hash[80] = "";
  {
    PGconn *c = ts_pg_connect(loc);
    PGresult *r = PQexec(c, "SELECT hash FROM journal WHERE case_id='K1' ORDER BY revision DESC LIMIT 1");
    snprintf(last_hash, sizeof last_hash, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
  }
  char sql[1200];
  snprintf(sql, sizeof sql,
           "INSERT INTO journal(seq,case_id,revision,event,payload,actor,role,time,recorded,"
           "configuration,data,prev_hash,hash) VALUES(10,'K1',6,'opvang','null','x','%s',%lld,0,"
           "'[\"open\"]','{}','%s','f')",
           "COA", (long long)T0 + 8000, last_hash);
  refused(ind, sql, "row-level security"); /* another agency's role */
  snprintf(sql, sizeof sql,
           "INSERT INTO journal(seq,case_id,revision,event,payload,actor,role,time,recorded,"
           "configuration,data,prev_hash,hash) VALUES(10,'K1',6,'tel','null','timer','IND',%lld,0,"
           "'[\"open\"]','{}','%s','f')",
           (long long)T0 + 8000, last_hash);
  refused(ind, sql, "row-level security"); /* the timer's actor under a role */
  snprintf(sql, sizeof sql,
           "INSERT INTO journal(seq,case_id,revision,event,payload,actor,role,time,recorded,"
           "configuration,data,prev_hash,hash) VALUES(10,'K1',6,'tel','null','mallory',NULL,%lld,0,"
           "'[\"open\"]','{}','%s','f')",
           (long long)T0 + 8000, last_hash);
  refused(ind, sql, "row-level security"); /* no role, not the store's own row */
  snprintf(sql, sizeof sql,
           "INSERT INTO journal(seq,case_id,revision,event,payload,actor,role,time,recorded,"
           "configuration,data,prev_hash,hash) VALUES(10,'K1',6,'tel','null','x','IND',%lld,0,"
           "'[\"open\"]','{}','%s','f')",
           (long long)T0 + 8000, "0000");
  refused(ind, sql, "does not follow"); /* off the chain */
  snprintf(sql, sizeof sql,
           "INSERT INTO journal(seq,case_id,revision,event,payload,actor,role,time,recorded,"
           "configuration,data,prev_hash,hash) VALUES(10,'K1',6,'tel','null','timer',NULL,"
           "extract(epoch FROM now())::bigint + 86400 * 5,0,'[\"open\"]','{}','%s','f')",
           last_hash);
  refused(ind, sql, "more than a day"); /* a term run out early, as the store's timer */
  refused(ind, "UPDATE journal SET event = 'tel' WHERE seq = 4", "permission denied");
  refused(ind, "DELETE FROM journal WHERE seq = 5", "permission denied");
  refused(ind, "TRUNCATE journal", "permission denied");
  refused(ind, "DELETE FROM cases", "permission denied");
  refused(ind, "UPDATE cases SET location = 'budel'", "only the columns that follow its journal");
  refused(ind, "UPDATE cases SET profile_version = 7", "a case row is written only with a journal row");
  refused(ind, "DELETE FROM timers", "was not moved on by this transaction");
  refused(ind, "UPDATE timers SET due = due + 86400", "was not moved on by this transaction");
  refused(ind, "INSERT INTO outbox(case_id,seq,name,payload,created) VALUES('K1',2,'x','{}',0)",
          "was not moved on by this transaction");
  refused(ind, "UPDATE outbox SET payload = '{}'", "permission denied");
  refused(ind, "INSERT INTO idempotency(key,case_id,seq,recorded) VALUES('k9','K1',2,0)",
          "was not moved on by this transaction");
  refused(ind, "INSERT INTO definitions(id,version,hash,source,added) VALUES('x',1,'h','s',0)",
          "permission denied");
  refused(ind, "UPDATE meta SET value = 'x'", "permission denied");
  refused(ind, "SELECT * FROM grants", "permission denied");
  refused(ind, "SELECT * FROM tokens", "permission denied");
  refused(ind, "INSERT INTO grants VALUES(current_user, 'COA', 0)", "permission denied");
  refused(ind, "INSERT INTO refused(case_id,revision,event,actor,role,time,recorded,code,message)"
               " VALUES('K1',6,'x','a','COA',0,0,8,'m')", "row-level security");
  /* ... and SET ROLE does not help: the mapping is the session's login's. */
  snprintf(sql, sizeof sql,
           "SET ROLE %s; INSERT INTO journal(seq,case_id,revision,event,payload,actor,role,time,"
           "recorded,configuration,data,prev_hash,hash) VALUES(10,'K1',6,'opvang','null','x','COA',"
           "%lld,0,'[\"open\"]','{}','%s','f')",
           ind, (long long)T0 + 8000, last_hash);
  refused(ind, sql, NULL);
  /* Reading the shared record is the point. */
  char st[6];
  login_sql(ind, "SELECT count(*) FROM journal", st, NULL, 0);
  assert_string_equal(st, "");
  login_sql(ind, "SELECT * FROM cases, timers, outbox, definitions", st, NULL, 0);
  assert_string_equal(st, "");
  assert_int_equal(count("SELECT count(*) FROM journal"), rows);
  assert_int_equal(count("SELECT count(*) FROM journal WHERE seq = 4 AND event = 'tel'"), 0);

  /* A login with no role mapped sees nothing at all (not even the schema). */
  char schema[80], qualified[200];
  free(ts_pg_split(loc, schema, sizeof schema));
  snprintf(qualified, sizeof qualified, "SELECT count(*) FROM \"%s\".journal", schema);
  refused(other, qualified, "permission denied for schema");

  /* Revoked: COA's login may no longer write as COA, and reads nothing. */
  s = open_as(&e, NULL, 0);
  assert_int_equal(case_store_revoke(s, "COA", coa), CASE_OK);
  assert_int_equal(case_store_revoke(s, "COA", coa), CASE_NOTFOUND);
  case_store_close(s);
  case_engine_close(e);
  refused(coa, qualified, "permission denied for schema");
  assert_int_equal(count("SELECT count(*) FROM grants"), 1);

  /* The owner's view: verify is clean after all of it. */
  s = open_as(&e, NULL, 0);
  rc = case_store_verify(s, &rep);
  if (rc != CASE_OK) fail_msg("verify (%d): %s", rc, rep ? rep : case_errmsg(e));
  case_free(rep);
  case_store_close(s);
  case_engine_close(e);
}

/* Each backend gives its own answer: nothing is skipped. */
static void test_grants(void **state) {
  (void)state;
  if (ts_pg()) logins();
  else sqlite_refuses();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_grants, setup, teardown),
  };
  return cmocka_run_group_tests_name(ts_backend(), tests, NULL, NULL);
}
