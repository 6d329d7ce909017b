/* Access tokens (case_store_token_*): the secret is returned once and only its
 * SHA-256 is stored; check, revoke, list; names, roles and scopes checked; a
 * store of schema 6 gets the table on open. */
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
#include <sqlite3.h>

#include "libcase/libcase.h"
#include "store_schema.h"
#include "libcase/store.h"

static const char *WF = "workflow: w\nversion: 1\nroles: [IND, POLITIE]\ninitial: a\n"
                        "states:\n  a: {on: {x: {target: b, roles: [POLITIE]}}}\n  b: {final: true}\n";

typedef struct fx {
  char path[256];
  case_engine *e;
  case_store *s;
} fx;

static void open_all(fx *f) {
  assert_int_equal(case_engine_open(&f->e), CASE_OK);
  assert_int_equal(case_store_open(f->e, f->path, CASE_STORE_CREATE, &f->s), CASE_OK);
}

static void close_all(fx *f) {
  case_store_close(f->s);
  case_engine_close(f->e);
  f->s = NULL;
  f->e = NULL;
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  snprintf(f->path, sizeof f->path, "/tmp/libcase-test-token-%ld.db", (long)getpid());
  unlink(f->path);
  open_all(f);
  const case_def *d;
  assert_int_equal(case_def_load_string(f->e, WF, strlen(WF), "w.yaml", &d), CASE_OK);
  assert_int_equal(case_store_add_def(f->s, d), CASE_OK);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  close_all(f);
  char p[300];
  unlink(f->path);
  snprintf(p, sizeof p, "%s-wal", f->path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", f->path);
  unlink(p);
  free(f);
  return 0;
}

static long long count_sql(fx *f, const char *sql) {
  sqlite3 *db;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  long long n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

static void test_create_check_revoke(void **state) {
  fx *f = *state;
  char *tok = NULL, *again = NULL, *json = NULL;
  assert_int_equal(case_store_token_create(f->s, "politie-noord", "POLITIE", CASE_TOKEN_SIGNAL,
                                           &tok), CASE_OK);
  assert_non_null(tok);
  assert_int_equal((int)strlen(tok), 47);
  assert_memory_equal(tok, "lct_", 4);
  /* Only the hash is stored: the secret appears nowhere in the file's tables. */
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM tokens WHERE hash = '%s' OR name = '%s'", tok,
           tok);
  assert_int_equal(count_sql(f, sql), 0);
  assert_int_equal(count_sql(f, "SELECT length(hash) FROM tokens"), 64);

  assert_int_equal(case_store_token_check(f->s, tok, &json), CASE_OK);
  assert_non_null(strstr(json, "\"name\":\"politie-noord\""));
  assert_non_null(strstr(json, "\"role\":\"POLITIE\""));
  assert_non_null(strstr(json, "\"scopes\":[\"signal\"]"));
  case_free(json);
  json = NULL;

  /* One character off, a prefix, garbage: refused. */
  char bad[64];
  snprintf(bad, sizeof bad, "%s", tok);
  bad[10] = bad[10] == 'A' ? 'B' : 'A';
  assert_int_equal(case_store_token_check(f->s, bad, &json), CASE_DENIED);
  assert_null(json);
  assert_string_equal(case_errmsg(f->e), "unknown or revoked access token");
  assert_int_equal(case_store_token_check(f->s, "lct_short", &json), CASE_DENIED);
  assert_int_equal(case_store_token_check(f->s, "", &json), CASE_DENIED);
  assert_int_equal(case_store_token_check(f->s, NULL, &json), CASE_DENIED);

  /* The name is in use until revoked. */
  assert_int_equal(case_store_token_create(f->s, "politie-noord", "POLITIE", CASE_TOKEN_SIGNAL,
                                           &again), CASE_EXISTS);
  assert_null(again);
  assert_int_equal(case_store_token_revoke(f->s, "politie-noord"), CASE_OK);
  assert_int_equal(case_store_token_check(f->s, tok, &json), CASE_DENIED);
  assert_int_equal(case_store_token_revoke(f->s, "politie-noord"), CASE_NOTFOUND);
  assert_int_equal(case_store_token_create(f->s, "politie-noord", "POLITIE",
                                           CASE_TOKEN_SIGNAL | CASE_TOKEN_READ, &again), CASE_OK);
  assert_string_not_equal(tok, again);
  assert_int_equal(case_store_token_check(f->s, again, &json), CASE_OK);
  assert_non_null(strstr(json, "\"scopes\":[\"read\",\"signal\"]"));
  case_free(json);

  /* The list: both, the first revoked, no secret or hash in it. */
  assert_int_equal(case_store_token_list(f->s, &json), CASE_OK);
  assert_non_null(strstr(json, "\"revoked\":"));
  assert_null(strstr(json, tok + 4));
  assert_null(strstr(json, "hash"));
  case_free(json);

  /* Survives reopening. */
  close_all(f);
  open_all(f);
  assert_int_equal(case_store_token_check(f->s, again, &json), CASE_OK);
  case_free(json);
  case_free(tok);
  case_free(again);
}

static void test_refused_arguments(void **state) {
  fx *f = *state;
  char *tok = NULL;
  assert_int_equal(case_store_token_create(f->s, "x", "DTV", CASE_TOKEN_SIGNAL, &tok),
                   CASE_INVALID);
  assert_non_null(strstr(case_errmsg(f->e), "role 'DTV' is not declared"));
  assert_int_equal(case_store_token_create(f->s, "met spatie", "IND", CASE_TOKEN_READ, &tok),
                   CASE_INVALID);
  assert_int_equal(case_store_token_create(f->s, "", "IND", CASE_TOKEN_READ, &tok), CASE_INVALID);
  assert_int_equal(case_store_token_create(f->s, "ok", "IND", 0, &tok), CASE_INVALID);
  assert_int_equal(case_store_token_create(f->s, "ok", "IND", 8, &tok), CASE_INVALID);
  assert_int_equal(case_store_token_create(f->s, "ok", "IND", CASE_TOKEN_READ, NULL),
                   CASE_MISUSE);
  assert_int_equal(case_store_token_create(NULL, "ok", "IND", CASE_TOKEN_READ, &tok),
                   CASE_MISUSE);
  assert_null(tok);
  assert_int_equal(case_store_token_revoke(f->s, NULL), CASE_MISUSE);
  assert_int_equal(case_store_token_check(f->s, "x", NULL), CASE_MISUSE);
  assert_int_equal(case_store_token_list(f->s, NULL), CASE_MISUSE);
  /* Read-only stores make no tokens. */
  case_store *ro = NULL;
  assert_int_equal(case_store_open(f->e, f->path, CASE_STORE_READONLY, &ro), CASE_OK);
  assert_int_equal(case_store_token_create(ro, "ok", "IND", CASE_TOKEN_READ, &tok), CASE_MISUSE);
  case_store_close(ro);
}

/* A store of schema 6 gets the tokens table when opened. */
static void test_migration(void **state) {
  fx *f = *state;
  close_all(f);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  /* Back to schema 6: no tokens, and schema 8's profile versions undone too. */
  assert_int_equal(sqlite3_exec(db,
                                UNDO_SCHEMA_10 "DROP TABLE tokens; "
                                "CREATE TABLE p6(name TEXT PRIMARY KEY, source TEXT NOT NULL, "
                                "hash TEXT NOT NULL, file TEXT, added INTEGER NOT NULL);"
                                "INSERT INTO p6 SELECT name,source,hash,file,added FROM profiles "
                                "WHERE version=1;"
                                "DROP TABLE profiles; ALTER TABLE p6 RENAME TO profiles;"
                                "ALTER TABLE cases DROP COLUMN profile_version;"
                                "ALTER TABLE cases DROP COLUMN profile_first;"
                                "PRAGMA user_version=6",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  open_all(f);
  assert_int_equal(count_sql(f, "PRAGMA user_version"), 10);
  char *tok = NULL;
  /* The stored workflow (loaded by the open) declares IND. */
  assert_int_equal(case_store_token_create(f->s, "a", "IND", CASE_TOKEN_READ, &tok), CASE_OK);
  char *json = NULL;
  assert_int_equal(case_store_token_check(f->s, tok, &json), CASE_OK);
  case_free(json);
  case_free(tok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_check_revoke, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_arguments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_migration, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
