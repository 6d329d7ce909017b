/*
 * libcase_bench_pg — the store on PostgreSQL beside SQLite (issue 10 §7,
 * docs/performance.md "PostgreSQL"), run by bench/run (bench/pg_bench.py),
 * never by CTest.  Every benchmark takes a store location, so the same code
 * measures both backends: a file path (SQLite) or a PostgreSQL URI (the
 * throwaway cluster bench/run starts with scripts/pg-cluster --durable: fsync on,
 * synchronous_commit on).
 *
 *   libcase_bench_pg insert LOC N        a plain one-row INSERT transaction
 *                                         (BEGIN; INSERT; COMMIT) N times, and
 *                                         on PostgreSQL also the one-statement
 *                                         autocommit INSERT
 *   libcase_bench_pg durable LOC N       N durable fires of the chain workload on
 *                                         one case (one transaction each)
 *   libcase_bench_pg durable_login URI N the same as a login mapped to IND
 *                                         (case_store_grant): the cost of the
 *                                         server's checks
 *   libcase_bench_pg writers LOC K SECS  K processes fire on K different cases for
 *                                         SECS seconds: total fires per second
 *   libcase_bench_pg tick LOC K DUE      DUE cases with a due timer, K processes
 *                                         tick at once until none is left
 *
 * Each prints one JSON line.  A location is made fresh: the file is removed,
 * the schema (?schema=NAME) dropped first.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libcase/libcase.h"
#include "libcase/store.h"

#ifndef BENCH_SRC
#define BENCH_SRC "."
#endif

#define T0 INT64_C(1772442000)

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "libcase_bench_pg: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double quantile(double *v, int n, double q) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  int i = (int)(q * (n - 1) + 0.5);
  return v[i];
}

static int is_pg(const char *loc) {
  return !strncmp(loc, "postgres", 8) || !strncmp(loc, "host=", 5) || !strncmp(loc, "dbname=", 7);
}

/* The URI without its schema= option, and the schema (default libcase). */
static char *pg_base(const char *loc, char *schema, size_t n) {
  const char *s = strstr(loc, "schema=");
  size_t len = s ? strcspn(s + 7, "& ") : 0;
  snprintf(schema, n, "%.*s", (int)len, s ? s + 7 : "libcase");
  char *b = strdup(loc);
  if (s && b) {
    size_t at = (size_t)(s - loc);
    if (at > 0 && (loc[at - 1] == '&' || loc[at - 1] == '?' || loc[at - 1] == ' ')) at--;
    memmove(b + at, loc + (s - loc) + 7 + len, strlen(loc + (s - loc) + 7 + len) + 1);
    /* "...?&x" or "...&x": the first option after '?' keeps its '?' */
    char *q = strchr(b, '?');
    if (q && q[1] == '&') memmove(q + 1, q + 2, strlen(q + 2) + 1);
    if (!q && (q = strchr(b, '&'))) *q = '?';
  }
  return b;
}

static PGconn *pg_connect(const char *loc, char *schema, size_t n) {
  char *base = pg_base(loc, schema, n);
  PGconn *c = PQconnectdb(base);
  free(base);
  if (PQstatus(c) != CONNECTION_OK) die("connect %s: %s", loc, PQerrorMessage(c));
  return c;
}

static void pg_ok(PGconn *c, PGresult *r, const char *what) {
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) die("%s: %s", what, PQerrorMessage(c));
  PQclear(r);
}

/* LIBCASE_BENCH_SYNC=full: SQLite with synchronous=FULL (a commit is on disk
 * when it returns, as PostgreSQL's synchronous_commit=on); else NORMAL. */
static int sync_full(void) {
  const char *v = getenv("LIBCASE_BENCH_SYNC");
  return v && !strcmp(v, "full");
}

static const char *backend(const char *loc) {
  return is_pg(loc) ? "postgresql" : sync_full() ? "sqlite_full" : "sqlite";
}

/* Removes what a location holds: the file and its WAL, or the schema. */
static void fresh(const char *loc) {
  if (is_pg(loc)) {
    char schema[80], sql[200];
    PGconn *c = pg_connect(loc, schema, sizeof schema);
    pg_ok(c, PQexec(c, "SET client_min_messages TO warning"), "set");
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
    pg_ok(c, PQexec(c, sql), "drop schema");
    PQfinish(c);
    return;
  }
  char p[1100];
  unlink(loc);
  snprintf(p, sizeof p, "%s-wal", loc);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", loc);
  unlink(p);
}

/* About the size of a chain journal row's JSON columns (as bench.c's). */
static const char BODY[] = "{\"event\":\"next\",\"configuration\":[\"s3\"],\"data\":{\"n\":0},"
                           "\"hash\":\"64e6403a1fb3e80b2ff706c287a468a3e969846af4a750eda4bdd256"
                           "241b5d54\"}";

typedef struct rate {
  double per_s, p50_us, p99_us;
} rate;

static rate summarize(double *lat, int n) {
  double total = 0;
  for (int i = 0; i < n; i++) total += lat[i];
  rate r = {n / total, 0, 0};
  r.p99_us = quantile(lat, n, 0.99) * 1e6;
  r.p50_us = quantile(lat, n, 0.5) * 1e6;
  return r;
}

/* PostgreSQL: BEGIN; INSERT; COMMIT per row (prepared), or the INSERT alone
 * (autocommit: one round trip), into a table of the journal's key shape. */
static rate pg_insert(const char *loc, int n, int txn, double *lat) {
  char schema[80], sql[400];
  PGconn *c = pg_connect(loc, schema, sizeof schema);
  pg_ok(c, PQexec(c, "SET client_min_messages TO warning"), "set");
  snprintf(sql, sizeof sql,
           "CREATE SCHEMA IF NOT EXISTS \"%s\"; SET search_path TO \"%s\";"
           "DROP TABLE IF EXISTS bench_insert;"
           "CREATE TABLE bench_insert(id bigserial PRIMARY KEY, case_id text NOT NULL,"
           " time bigint NOT NULL, body text NOT NULL)",
           schema, schema);
  pg_ok(c, PQexec(c, sql), "create");
  pg_ok(c, PQprepare(c, "ins", "INSERT INTO bench_insert(case_id, time, body) VALUES($1, $2, $3)",
                     3, NULL),
        "prepare");
  char t[32];
  const char *p[3] = {"c1", t, BODY};
  for (int i = -500; i < n; i++) {
    snprintf(t, sizeof t, "%lld", (long long)(T0 + i));
    double s = now_s();
    if (txn) pg_ok(c, PQexec(c, "BEGIN"), "begin");
    pg_ok(c, PQexecPrepared(c, "ins", 3, p, NULL, NULL, 0), "insert");
    if (txn) pg_ok(c, PQexec(c, "COMMIT"), "commit");
    if (i >= 0) lat[i] = now_s() - s;
  }
  pg_ok(c, PQexec(c, "DROP TABLE bench_insert"), "drop");
  PQfinish(c);
  return summarize(lat, n);
}

/* SQLite under the store's settings (WAL, synchronous=NORMAL), as bench.c's. */
static rate sq_insert(const char *loc, int n, double *lat) {
  fresh(loc);
  sqlite3 *db;
  if (sqlite3_open(loc, &db) != SQLITE_OK) die("open %s", loc);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_exec(db, sync_full() ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                               : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
               NULL, NULL, NULL);
  sqlite3_exec(db, ""
                   "CREATE TABLE t(id INTEGER PRIMARY KEY, case_id TEXT NOT NULL,"
                   " time INTEGER NOT NULL, body TEXT NOT NULL)",
               NULL, NULL, NULL);
  sqlite3_stmt *ins;
  if (sqlite3_prepare_v2(db, "INSERT INTO t(case_id,time,body) VALUES('c1',?1,?2)", -1, &ins,
                         NULL) != SQLITE_OK)
    die("prepare: %s", sqlite3_errmsg(db));
  for (int i = -2500; i < n; i++) {
    double s = now_s();
    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    sqlite3_bind_int64(ins, 1, T0 + i);
    sqlite3_bind_text(ins, 2, BODY, -1, SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE) die("insert: %s", sqlite3_errmsg(db));
    sqlite3_reset(ins);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (i >= 0) lat[i] = now_s() - s;
  }
  sqlite3_finalize(ins);
  sqlite3_close(db);
  fresh(loc);
  return summarize(lat, n);
}

static int bench_insert(const char *loc, int n) {
  double *lat = malloc(sizeof *lat * (size_t)n);
  if (!lat) die("out of memory");
  if (is_pg(loc)) {
    rate t = pg_insert(loc, n, 1, lat);
    rate a = pg_insert(loc, n, 0, lat);
    printf("{\"bench\":\"pg_insert\",\"backend\":\"postgresql\",\"rows\":%d,"
           "\"insert_per_s\":%.1f,\"insert_p50_us\":%.1f,\"insert_p99_us\":%.1f,"
           "\"autocommit_per_s\":%.1f,\"autocommit_p50_us\":%.1f}\n",
           n, t.per_s, t.p50_us, t.p99_us, a.per_s, a.p50_us);
  } else {
    rate t = sq_insert(loc, n, lat);
    printf("{\"bench\":\"pg_insert\",\"backend\":\"%s\",\"rows\":%d,"
           "\"insert_per_s\":%.1f,\"insert_p50_us\":%.1f,\"insert_p99_us\":%.1f}\n",
           backend(loc), n, t.per_s, t.p50_us, t.p99_us);
  }
  free(lat);
  return 0;
}

/* ---- the store ---- */

static void check(case_engine *e, int rc, const char *what) {
  if (rc != CASE_OK) die("%s: %s (%s)", what, case_errmsg(e), case_errstr(rc));
}

static const case_def *load(case_engine *e, const char *file) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", BENCH_SRC, file);
  const case_def *d = NULL;
  check(e, case_def_load_file(e, p, &d), file);
  return d;
}

static case_store *open_loc(case_engine **e, const char *loc, int flags) {
  if (case_engine_open(e) != CASE_OK) die("engine");
  case_store *s = NULL;
  check(*e, case_store_open(*e, loc, flags, &s), "open the store");
  if (!is_pg(loc) && sync_full())
    check(*e, case_store_config(s, CASE_STORE_SYNC_FULL, -1), "synchronous=FULL");
  return s;
}


static int bench_durable(const char *loc, int n) {
  fresh(loc);
  case_engine *e;
  case_store *s = open_loc(&e, loc, CASE_STORE_CREATE);
  const case_def *d = load(e, "bench/charts/chain.yaml");
  check(e, case_store_add_def(s, d), "store the definition");
  check(e, case_store_create(s, d, "c1", NULL, NULL, "bench", "IND", T0, NULL), "create");
  for (int i = 0; i < 500; i++)
    check(e, case_store_fire(s, "c1", "next", NULL, "bench", "IND", T0, -1, NULL, NULL), "warm-up");
  double *lat = malloc(sizeof *lat * (size_t)n);
  if (!lat) die("out of memory");
  for (int i = 0; i < n; i++) {
    double t = now_s();
    int rc = case_store_fire(s, "c1", "next", NULL, "bench", "IND", T0, -1, NULL, NULL);
    lat[i] = now_s() - t;
    check(e, rc, "fire");
  }
  rate f = summarize(lat, n);
  case_store_close(s);
  case_engine_close(e);
  printf("{\"bench\":\"pg_durable\",\"backend\":\"%s\",\"fires\":%d,\"fires_per_s\":%.1f,"
         "\"fire_p50_us\":%.1f,\"fire_p99_us\":%.1f}\n",
         backend(loc), n, f.per_s, f.p50_us, f.p99_us);
  free(lat);
  fresh(loc);
  return 0;
}

/* The same durable fires as a mapped login (case_store_grant): what the
 * server's checks (row-level security, the chain and case triggers) cost. */
static int bench_durable_login(const char *loc, int n) {
  if (!is_pg(loc) || !strstr(loc, "postgres@")) die("durable_login needs a postgres@ URI");
  fresh(loc);
  char schema[80];
  PGconn *c = pg_connect(loc, schema, sizeof schema);
  pg_ok(c, PQexec(c, "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname ="
                     " 'bench_login') THEN CREATE ROLE bench_login LOGIN; END IF; END$$"),
        "create the login");
  PQfinish(c);
  case_engine *e;
  case_store *s = open_loc(&e, loc, CASE_STORE_CREATE);
  const case_def *d = load(e, "bench/charts/chain.yaml");
  check(e, case_store_add_def(s, d), "store the definition");
  check(e, case_store_grant(s, "IND", "bench_login"), "grant");
  case_store_close(s);
  case_engine_close(e);
  char as[1200];
  const char *at = strstr(loc, "postgres@");
  snprintf(as, sizeof as, "%.*sbench_login@%s", (int)(at - loc), loc, at + strlen("postgres@"));
  s = open_loc(&e, as, 0);
  d = case_def_find(e, "bench_chain", 1);
  if (!d) die("the login does not see the definition");
  check(e, case_store_create(s, d, "c1", NULL, NULL, "bench", "IND", T0, NULL), "create");
  for (int i = 0; i < 500; i++)
    check(e, case_store_fire(s, "c1", "next", NULL, "bench", "IND", T0, -1, NULL, NULL), "warm-up");
  double *lat = malloc(sizeof *lat * (size_t)n);
  if (!lat) die("out of memory");
  for (int i = 0; i < n; i++) {
    double t = now_s();
    int rc = case_store_fire(s, "c1", "next", NULL, "bench", "IND", T0, -1, NULL, NULL);
    lat[i] = now_s() - t;
    check(e, rc, "fire");
  }
  rate f = summarize(lat, n);
  case_store_close(s);
  case_engine_close(e);
  printf("{\"bench\":\"pg_durable_login\",\"backend\":\"postgresql\",\"fires\":%d,"
         "\"fires_per_s\":%.1f,\"fire_p50_us\":%.1f,\"fire_p99_us\":%.1f}\n",
         n, f.per_s, f.p50_us, f.p99_us);
  free(lat);
  fresh(loc);
  return 0;
}

/* K writer processes, each on a case of its own, for `secs` seconds. */
static int bench_writers(const char *loc, int k, double secs) {
  fresh(loc);
  case_engine *e;
  case_store *s = open_loc(&e, loc, CASE_STORE_CREATE);
  const case_def *d = load(e, "bench/charts/chain.yaml");
  check(e, case_store_add_def(s, d), "store the definition");
  for (int i = 0; i < k; i++) {
    char id[16];
    snprintf(id, sizeof id, "w%d", i);
    check(e, case_store_create(s, d, id, NULL, NULL, "bench", "IND", T0, NULL), "create");
  }
  case_store_close(s);
  case_engine_close(e);
  int p[2];
  if (pipe(p) != 0) die("pipe");
  /* Every writer opens first, then all start together at `go`. */
  double go = now_s() + 0.5 + 0.1 * k;
  for (int i = 0; i < k; i++) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      close(p[0]);
      case_engine *we;
      case_store *ws = open_loc(&we, loc, 0);
      char id[16];
      snprintf(id, sizeof id, "w%d", i);
      /* Warm: the case restored, the statements prepared. */
      check(we, case_store_fire(ws, id, "next", NULL, "bench", "IND", T0, -1, NULL, NULL), "warm");
      while (now_s() < go) {
        struct timespec nap = {0, 1000000L};
        nanosleep(&nap, NULL);
      }
      long fires = 0, busy = 0;
      double end = go + secs;
      while (now_s() < end) {
        int rc = case_store_fire(ws, id, "next", NULL, "bench", "IND", T0, -1, NULL, NULL);
        if (rc == CASE_OK) fires++;
        else if (rc == CASE_BUSY) busy++;
        else check(we, rc, "fire");
      }
      long out[2] = {fires, busy};
      if (write(p[1], out, sizeof out) != (ssize_t)sizeof out) _exit(4);
      case_store_close(ws);
      case_engine_close(we);
      _exit(0);
    }
  }
  close(p[1]);
  long total = 0, busy = 0, out[2];
  while (read(p[0], out, sizeof out) == (ssize_t)sizeof out) {
    total += out[0];
    busy += out[1];
  }
  close(p[0]);
  int status, bad = 0;
  while (wait(&status) > 0)
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) bad = 1;
  if (bad) die("a writer failed");
  printf("{\"bench\":\"pg_writers\",\"backend\":\"%s\",\"writers\":%d,\"seconds\":%.1f,"
         "\"fires\":%ld,\"fires_per_s\":%.1f,\"busy\":%ld}\n",
         backend(loc), k, secs, total, total / secs, busy);
  fresh(loc);
  return 0;
}

/* `due` cases of the timer chart, each with its timer due; K processes tick
 * at once (case_store_tick, one transaction per timer) until none is left. */
static int bench_tick(const char *loc, int k, int due) {
  fresh(loc);
  case_engine *e;
  case_store *s = open_loc(&e, loc, CASE_STORE_CREATE);
  const case_def *d = load(e, "bench/charts/timer.yaml");
  check(e, case_store_add_def(s, d), "store the definition");
  check(e, case_store_batch_begin(s), "batch");
  for (int i = 0; i < due; i++) {
    char id[16];
    snprintf(id, sizeof id, "t%d", i);
    check(e, case_store_create(s, d, id, NULL, NULL, "bench", "IND", T0, NULL), "create");
  }
  check(e, case_store_batch_commit(s), "commit");
  case_store_close(s);
  case_engine_close(e);
  int p[2];
  if (pipe(p) != 0) die("pipe");
  double go = now_s() + 0.5 + 0.1 * k;
  for (int i = 0; i < k; i++) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      close(p[0]);
      case_engine *we;
      case_store *ws = open_loc(&we, loc, 0);
      while (now_s() < go) {
        struct timespec nap = {0, 1000000L};
        nanosleep(&nap, NULL);
      }
      int fired = 0;
      check(we, case_store_tick(ws, T0 + 2 * 3600, &fired), "tick");
      double took = now_s() - go;
      double out[2] = {fired, took};
      if (write(p[1], out, sizeof out) != (ssize_t)sizeof out) _exit(4);
      case_store_close(ws);
      case_engine_close(we);
      _exit(0);
    }
  }
  close(p[1]);
  double out[2], last = 0;
  long fired = 0;
  while (read(p[0], out, sizeof out) == (ssize_t)sizeof out) {
    fired += (long)out[0];
    if (out[1] > last) last = out[1];
  }
  close(p[0]);
  int status, bad = 0;
  while (wait(&status) > 0)
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) bad = 1;
  if (bad) die("a tick worker failed");
  if (fired != due) die("the workers fired %ld timers, expected %d", fired, due);
  printf("{\"bench\":\"pg_tick\",\"backend\":\"%s\",\"workers\":%d,\"due\":%d,\"fired\":%ld,"
         "\"seconds\":%.3f,\"timers_per_s\":%.1f}\n",
         backend(loc), k, due, fired, last, fired / last);
  fresh(loc);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 4 && !strcmp(argv[1], "insert")) return bench_insert(argv[2], atoi(argv[3]));
  if (argc >= 4 && !strcmp(argv[1], "durable")) return bench_durable(argv[2], atoi(argv[3]));
  if (argc >= 4 && !strcmp(argv[1], "durable_login"))
    return bench_durable_login(argv[2], atoi(argv[3]));
  if (argc >= 5 && !strcmp(argv[1], "writers"))
    return bench_writers(argv[2], atoi(argv[3]), atof(argv[4]));
  if (argc >= 5 && !strcmp(argv[1], "tick"))
    return bench_tick(argv[2], atoi(argv[3]), atoi(argv[4]));
  fprintf(stderr, "usage: libcase_bench_pg insert|durable|durable_login LOC N | writers LOC K SECONDS | "
                  "tick LOC K DUE\n");
  return 2;
}
