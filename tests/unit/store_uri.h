/*
 * store_uri.h — the store the store tests run on, so that one suite runs on
 * every backend (STYLE.md: "one seam, one suite").
 *
 * $CASE_TEST_STORE is either unset or "sqlite" (stores are files in /tmp) or a
 * PostgreSQL URI or conninfo (tests/CMakeLists.txt gives the throwaway
 * cluster's): then every store a test makes is a PostgreSQL schema of its own
 * in that database, dropped again by ts_remove().  A PostgreSQL URI that does
 * not answer makes the tests fail, never skip.
 *
 * ts_count() and ts_exec() run SQL on the store as another program would (the
 * sqlite3 API on the file; a libpq connection with the store's schema as
 * search_path), for tests that look at or damage the rows directly.
 */
#ifndef LIBCASE_TEST_STORE_URI_H
#define LIBCASE_TEST_STORE_URI_H

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The PostgreSQL base location, or NULL when the tests run on SQLite. */
static const char *ts_pg_base(void) {
  const char *v = getenv("CASE_TEST_STORE");
  if (!v || !*v || strcmp(v, "sqlite") == 0) return NULL;
  return v;
}

static int ts_pg(void) { return ts_pg_base() != NULL; }

/* 1 when `loc` is a PostgreSQL location (a URI or conninfo), 0 for a file. */
static int ts_is_pg(const char *loc) {
  return strncmp(loc, "postgres", 8) == 0 || strncmp(loc, "host=", 5) == 0 ||
         strncmp(loc, "dbname=", 7) == 0;
}

/* "sqlite" or "postgresql", for messages. */
static const char *ts_backend(void) { return ts_pg() ? "postgresql" : "sqlite"; }

/*
 * A fresh store location for `name` (letters, digits, _): a file
 * /tmp/NAME_PID.db, or the base URI with schema=t_NAME_PID_N.  Removes what a
 * previous run left there.
 */
static void ts_remove(const char *loc);
static void ts_location(char *out, size_t n, const char *name) {
  static int counter;
  const char *base = ts_pg_base();
  if (!base) {
    snprintf(out, n, "/tmp/%s_%ld.db", name, (long)getpid());
  } else if (strstr(base, "://")) {
    snprintf(out, n, "%s%cschema=t_%s_%ld_%d", base, strchr(base, '?') ? '&' : '?', name,
             (long)getpid(), ++counter);
  } else {
    snprintf(out, n, "%s schema=t_%s_%ld_%d", base, name, (long)getpid(), ++counter);
  }
  ts_remove(out);
}

/* The schema named in a PostgreSQL location (into out), and the location
 * without it (malloc'd). */
static char *ts_pg_split(const char *loc, char *schema, size_t n) {
  const char *s = strstr(loc, "schema=");
  size_t len = s ? strcspn(s + 7, "& ") : 0;
  snprintf(schema, n, "%.*s", (int)len, s ? s + 7 : "libcase");
  char *base = strdup(loc);
  if (s && base) {
    size_t at = (size_t)(s - loc);
    if (at > 0 && (loc[at - 1] == '&' || loc[at - 1] == '?' || loc[at - 1] == ' ')) at--;
    size_t end = (size_t)(s - loc) + 7 + len;
    memmove(base + at, loc + end, strlen(loc + end) + 1);
    if (base[at] == '&' && (at == 0 || base[at - 1] != '?')) {
      char *q = strchr(base, '?');
      if (!q || q > base + at) base[at] = '?';
    }
  }
  return base;
}

/* A libpq connection to the store's database with its schema as search_path. */
static PGconn *ts_pg_connect(const char *loc) {
  char schema[80];
  char *base = ts_pg_split(loc, schema, sizeof schema);
  PGconn *c = PQconnectdb(base);
  free(base);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "store_uri.h: cannot connect to %s: %s", loc, PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  char sql[160];
  snprintf(sql, sizeof sql, "SET search_path TO \"%s\"", schema);
  PQclear(PQexec(c, sql));
  return c;
}

/* Removes the store at `loc`: the file and its -wal/-shm, or the schema. */
static void ts_remove(const char *loc) {
  if (ts_is_pg(loc)) {
    char schema[80];
    char *base = ts_pg_split(loc, schema, sizeof schema);
    PGconn *c = PQconnectdb(base);
    free(base);
    if (PQstatus(c) == CONNECTION_OK) {
      char sql[200];
      snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
      PGresult *r = PQexec(c, "SET client_min_messages TO warning");
      PQclear(r);
      r = PQexec(c, sql);
      PQclear(r);
    }
    PQfinish(c);
    return;
  }
  char p[600];
  unlink(loc);
  snprintf(p, sizeof p, "%s-wal", loc);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", loc);
  unlink(p);
}

/* The first column of the first row of `sql` as a number; -1 on failure (and
 * a message on stderr, so that the assertion that follows says why). */
static long long ts_count(const char *loc, const char *sql) {
  if (ts_is_pg(loc)) {
    PGconn *c = ts_pg_connect(loc);
    if (!c) return -1;
    PGresult *r = PQexec(c, sql);
    long long n = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
      n = PQgetisnull(r, 0, 0) ? 0 : atoll(PQgetvalue(r, 0, 0));
    else
      fprintf(stderr, "store_uri.h: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return n;
  }
  sqlite3 *db;
  if (sqlite3_open_v2(loc, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    return -1;
  }
  sqlite3_stmt *st;
  long long n = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  } else {
    fprintf(stderr, "store_uri.h: %s: %s\n", sql, sqlite3_errmsg(db));
  }
  sqlite3_close(db);
  return n;
}

/* Runs `sql` on the store; 0, or -1 with the error in err (may be NULL). */
static int ts_exec(const char *loc, const char *sql, char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  if (ts_is_pg(loc)) {
    PGconn *c = ts_pg_connect(loc);
    if (!c) {
      if (err) snprintf(err, errlen, "cannot connect");
      return -1;
    }
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok && err) snprintf(err, errlen, "%s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
  }
  sqlite3 *db;
  if (sqlite3_open(loc, &db) != SQLITE_OK) {
    if (err) snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    return -1;
  }
  char *msg = NULL;
  int ok = sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK;
  if (!ok && err) snprintf(err, errlen, "%s", msg ? msg : "?");
  sqlite3_free(msg);
  sqlite3_close(db);
  return ok ? 0 : -1;
}

#endif /* LIBCASE_TEST_STORE_URI_H */
