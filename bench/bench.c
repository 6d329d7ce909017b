/*
 * libcase_bench — the benchmarks of docs/performance.md (issue 7).
 *
 *   libcase_bench <name> [args...]
 *
 * Each run of one benchmark prints one JSON object on stdout (the figures, the
 * sizes it ran with and the process's peak RSS); bench/run runs each several
 * times and takes medians.  Never registered as a test: it writes big files
 * and takes minutes.  Files go to $LIBCASE_BENCH_TMP (default: the current
 * directory); the charts are read from $LIBCASE_BENCH_SRC (default: the
 * source tree this was built from).
 */
#include "libcase/libcase.h"
#include "libcase/scenario.h"
#include "libcase/store.h"
#include "store_int.h" /* st_tree_backfill() for the cloned stores */

#include <jansson.h>
#include <malloc.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_SRC
#define BENCH_SRC "."
#endif

/* 2026-03-02T09:00:00Z, a Monday: the event time of every fire. */
#define T0 INT64_C(1772442000)

static const char *src_dir(void) {
  const char *d = getenv("LIBCASE_BENCH_SRC");
  return d && *d ? d : BENCH_SRC;
}

static const char *tmp_dir(void) {
  const char *d = getenv("LIBCASE_BENCH_TMP");
  return d && *d ? d : ".";
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("libcase_bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

static void check(case_engine *e, int rc, const char *what) {
  if (rc != CASE_OK) die("%s: %s (%s)", what, case_errstr(rc), case_errmsg(e));
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Peak RSS of this program in KiB: VmHWM, which starts again at exec (Linux
 * keeps ru_maxrss across exec, so a big parent, e.g. bench/run's Python,
 * would show through); getrusage() where there is no /proc. */
static long maxrss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0) kib = strtol(line + 6, NULL, 10);
  if (f) fclose(f);
  if (kib >= 0) return kib;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* Bytes allocated with malloc and not freed (glibc). */
static size_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

static char *path_in(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (!p) die("out of memory");
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* Removes a SQLite file with its -wal and -shm. */
static void remove_db(const char *path) {
  char buf[4096];
  unlink(path);
  snprintf(buf, sizeof buf, "%s-wal", path);
  unlink(buf);
  snprintf(buf, sizeof buf, "%s-shm", path);
  unlink(buf);
}

static long long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The q-quantile (0..1) of n sorted values. */
static double quantile(const double *v, int n, double q) {
  if (n == 0) return 0;
  int i = (int)(q * (n - 1) + 0.5);
  return v[i];
}

/* ------------------------------------------------------------------ */
/* Workloads: a definition, a case to create, setup steps and a loop   */
/* ------------------------------------------------------------------ */

typedef struct step {
  const char *event, *payload, *role;
} step;

typedef struct workload {
  const char *name;
  const char *def;      /* path relative to the source dir */
  const char *profile;  /* location profile file, or NULL */
  const char *location; /* profile name, or NULL */
  const char *data;     /* initial data */
  const step *setup;
  int nsetup;
  const step *loop;     /* fired round and round; each step must be accepted */
  int nloop;
  int guards_per_loop;  /* guard evaluations one round makes */
} workload;

static const step chain_loop[] = {{"next", NULL, "IND"}};
static const step guards_loop[] = {{"e", NULL, "IND"}};

/* The asylum chain: an AVIM registration, a reporting duty, then a loop through
 * detention, reporting, hearing planning and the interventieteam lane that
 * ends in the configuration it started from.  5 of the 8 steps are guarded
 * (grondslag_bekend, bewaring_verlengbaar, case.meldplicht, gehoor_planbaar,
 * interventieteam_mogelijk); entering detention starts two deadlines. */
static const step asylum_setup[] = {
    {"ir_afgerond", NULL, "AVIM"},
    {"meldplicht_opgelegd", NULL, "AVIM"},
};
static const step asylum_loop[] = {
    {"inbewaringstelling", "{\"grondslag\":\"59\"}", "AVIM"},
    {"bewaring_verlengd", NULL, "AVIM"},
    {"bewaring_opgeheven", NULL, "AVIM"},
    {"meldplicht_gemist", NULL, "AVIM"},
    {"meldplicht_nagekomen", NULL, "AVIM"},
    {"gehoor_gepland", "{\"datum\":\"2026-03-20\"}", "IND"},
    {"gemeld_bij_meldpunt", NULL, "IND"},
    {"ongeschikt_bevonden", NULL, "IND"},
};
#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const workload W_CHAIN = {"chain", "bench/charts/chain.yaml", NULL, NULL, NULL,
                                 NULL, 0, chain_loop, 1, 0};
static const workload W_CHAIN_GUARD = {"chain_guard", "bench/charts/chain_guard.yaml", NULL, NULL,
                                       NULL, NULL, 0, chain_loop, 1, 1};
static const workload W_GUARDS = {"guards", "bench/charts/guards.yaml", NULL, NULL, NULL,
                                  NULL, 0, guards_loop, 1, 10};
static const workload W_ASYLUM = {"asylum", "workflows/asielprocedure.yaml",
                                  "lua/locations/ter_apel.lua", "ter_apel",
                                  "{\"v_nummer\":\"V-1234567\"}", asylum_setup,
                                  N_OF(asylum_setup), asylum_loop, N_OF(asylum_loop), 5};
static const workload W_ASYLUM_STANDIN = {"asylum_standin", "bench/charts/asylum_standin.yaml",
                                          NULL, NULL, "{\"v_nummer\":\"V-1234567\"}",
                                          asylum_setup, N_OF(asylum_setup), asylum_loop,
                                          N_OF(asylum_loop), 5};
static const workload W_TIMER = {"timer", "bench/charts/timer.yaml", NULL, NULL, NULL,
                                 NULL, 0, NULL, 0, 0};

static const workload *workload_named(const char *name) {
  const workload *all[] = {&W_CHAIN, &W_CHAIN_GUARD, &W_GUARDS, &W_ASYLUM, &W_ASYLUM_STANDIN};
  for (int i = 0; i < N_OF(all); i++)
    if (strcmp(all[i]->name, name) == 0) return all[i];
  die("unknown workload '%s' (chain, chain_guard, guards, asylum, asylum_standin)", name);
  return NULL;
}

/* Loads the workload's definition (and profile) on e; returns the definition,
 * or NULL with the engine error when it does not load. */
static const case_def *load_workload(case_engine *e, const workload *w) {
  char *p = path_in(src_dir(), w->def);
  const case_def *d = NULL;
  int rc = case_def_load_file(e, p, &d);
  free(p);
  if (rc == CASE_OK && w->profile) {
    p = path_in(src_dir(), w->profile);
    rc = case_engine_load_profile(e, w->location, p);
    free(p);
  }
  return rc == CASE_OK ? d : NULL;
}

/* ------------------------------------------------------------------ */
/* In memory                                                           */
/* ------------------------------------------------------------------ */

static int fire_step(case_instance *c, const step *s) {
  return case_instance_fire(c, s->event, s->payload, "bench", s->role, T0);
}

/* Creates a case of the workload and runs its setup and one loop round.
 * Returns CASE_OK or the first refusal (the message is on the engine). */
static int start_case(case_engine *e, const case_def *d, const workload *w, const char *id,
                      case_instance **out) {
  case_instance *c = NULL;
  int rc = case_instance_create(e, d, id, w->location, w->data, T0, &c);
  for (int i = 0; rc == CASE_OK && i < w->nsetup; i++) rc = fire_step(c, &w->setup[i]);
  for (int i = 0; rc == CASE_OK && i < w->nloop; i++) rc = fire_step(c, &w->loop[i]);
  if (rc != CASE_OK) {
    case_instance_free(c);
    return rc;
  }
  *out = c;
  return CASE_OK;
}

/* The asylum workload falls back to its stand-in while the real definition
 * does not load or refuses the loop; *w and *d say which ran. */
static void open_workload(case_engine *e, const workload **w, const case_def **d) {
  *d = load_workload(e, *w);
  if (*d) return;
  if (*w != &W_ASYLUM) die("%s: %s", (*w)->def, case_errmsg(e));
  fprintf(stderr, "libcase_bench: %s does not load (%s); using the stand-in\n", (*w)->def,
          case_errmsg(e));
  *w = &W_ASYLUM_STANDIN;
  *d = load_workload(e, *w);
  if (!*d) die("%s: %s", (*w)->def, case_errmsg(e));
}

/* `coverage`: a case_coverage set on the engine, to measure what counting costs
 * (docs/process-tests.md); without it nothing counts. */
static int bench_memory_fire(const char *wname, long n, int coverage) {
  const workload *w = workload_named(wname);
  case_engine *e;
  case_coverage *cov = NULL;
  if (coverage && case_coverage_open(&cov) != CASE_OK) die("coverage");
  if (case_engine_open(&e) != CASE_OK) die("engine");
  if (cov) check(e, case_engine_set_coverage(e, cov), "coverage");
  const case_def *d;
  open_workload(e, &w, &d);
  case_instance *c;
  int rc = start_case(e, d, w, "c1", &c);
  if (rc != CASE_OK && w == &W_ASYLUM) {
    fprintf(stderr, "libcase_bench: the asylum loop is refused (%s); using the stand-in\n",
            case_errmsg(e));
    case_engine_close(e);
    if (case_engine_open(&e) != CASE_OK) die("engine");
    if (cov) check(e, case_engine_set_coverage(e, cov), "coverage");
    w = &W_ASYLUM_STANDIN;
    d = load_workload(e, w);
    if (!d) die("%s: %s", w->def, case_errmsg(e));
    rc = start_case(e, d, w, "c1", &c);
  }
  check(e, rc, "start the case");
  long rounds = (n + w->nloop - 1) / w->nloop;
  for (long i = 0; i < rounds / 10 + 1; i++) /* warm-up */
    for (int k = 0; k < w->nloop; k++) check(e, fire_step(c, &w->loop[k]), "warm-up");
  double t = now_s();
  for (long i = 0; i < rounds; i++)
    for (int k = 0; k < w->nloop; k++) {
      rc = fire_step(c, &w->loop[k]);
      if (rc != CASE_OK) check(e, rc, w->loop[k].event);
    }
  t = now_s() - t;
  long fires = rounds * w->nloop;
  printf("{\"bench\":\"memory_fire\",\"workload\":\"%s\",%s\"fires\":%ld,\"seconds\":%.6f,"
         "\"fires_per_s\":%.1f,\"guards_per_fire\":%.3f,\"guard_evals_per_s\":%.1f,"
         "\"maxrss_kib\":%ld}\n",
         w->name, cov ? "\"coverage\":true," : "", fires, t, fires / t,
         (double)w->guards_per_loop / w->nloop, (double)w->guards_per_loop * rounds / t,
         maxrss_kib());
  case_engine_close(e);
  case_coverage_close(cov);
  return 0;
}

/* Library heap per idle case: n cases created, as many bytes as malloc holds more. */
static int bench_idle_memory(const char *wname, long n) {
  const workload *w = workload_named(wname);
  case_engine *e;
  if (case_engine_open(&e) != CASE_OK) die("engine");
  const case_def *d;
  open_workload(e, &w, &d);
  case_instance *c;
  check(e, start_case(e, d, w, "warm", &c), "start the case"); /* Lua state, caches */
  size_t before = heap_in_use();
  char id[32];
  double t = now_s();
  for (long i = 0; i < n; i++) {
    snprintf(id, sizeof id, "c%07ld", i);
    int rc = case_instance_create(e, d, id, w->location, w->data, T0, &c);
    if (rc != CASE_OK) check(e, rc, "create");
  }
  t = now_s() - t;
  size_t after = heap_in_use();
  char *snap = NULL;
  check(e, case_instance_snapshot(c, &snap), "snapshot");
  printf("{\"bench\":\"idle_memory\",\"workload\":\"%s\",\"cases\":%ld,\"bytes_per_case\":%.1f,"
         "\"snapshot_bytes\":%zu,\"creates_per_s\":%.1f,\"maxrss_kib\":%ld}\n",
         w->name, n, (double)(after - before) / (double)n, strlen(snap), n / t, maxrss_kib());
  case_free(snap);
  case_engine_close(e);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Durable                                                             */
/* ------------------------------------------------------------------ */

static void sql_exec(sqlite3 *db, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) die("sqlite: %s: %s", sql, err);
}

static sqlite3_stmt *sql_prepare(sqlite3 *db, const char *sql) {
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
    die("sqlite: %s: %s", sql, sqlite3_errmsg(db));
  return s;
}

static void sql_step(sqlite3 *db, sqlite3_stmt *s) {
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) die("sqlite: %s", sqlite3_errmsg(db));
  sqlite3_reset(s);
}

typedef struct rate {
  double per_s, p50_us, p99_us;
} rate;

static rate summarize(double *lat, int n, double total) {
  qsort(lat, (size_t)n, sizeof *lat, cmp_double);
  rate r = {n / total, quantile(lat, n, 0.5) * 1e6, quantile(lat, n, 0.99) * 1e6};
  return r;
}

/* SQLite's own limit: one-row INSERT transactions under the store's settings
 * (WAL, the same synchronous level, foreign keys on, busy timeout 5000 ms),
 * BEGIN IMMEDIATE; INSERT; COMMIT per row with prepared statements. */
static rate plain_insert(const char *path, int full, int n, double *lat) {
  remove_db(path);
  sqlite3 *db;
  if (sqlite3_open(path, &db) != SQLITE_OK) die("open %s", path);
  sqlite3_busy_timeout(db, 5000);
  sql_exec(db, "PRAGMA journal_mode=WAL");
  sql_exec(db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  sql_exec(db, "PRAGMA foreign_keys=ON");
  sql_exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, case_id TEXT NOT NULL, "
               "time INTEGER NOT NULL, body TEXT NOT NULL)");
  sqlite3_stmt *b = sql_prepare(db, "BEGIN IMMEDIATE"), *c = sql_prepare(db, "COMMIT"),
               *ins = sql_prepare(db, "INSERT INTO t(case_id,time,body) VALUES(?1,?2,?3)");
  /* About the size of a chain journal row's JSON columns. */
  static const char body[] = "{\"event\":\"next\",\"configuration\":[\"s3\"],\"data\":{\"n\":0},"
                             "\"hash\":\"64e6403a1fb3e80b2ff706c287a468a3e969846af4a750eda4bdd256"
                             "241b5d54\"}";
  /* The warm-up wraps the WAL once (about 1000 pages), as the store's does:
   * fsync on a WAL that still grows also writes the file size and is slower. */
  for (int i = -2500; i < n; i++) {
    double t = now_s();
    sql_step(db, b);
    sqlite3_bind_text(ins, 1, "c1", -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 2, T0 + i);
    sqlite3_bind_text(ins, 3, body, -1, SQLITE_STATIC);
    sql_step(db, ins);
    sql_step(db, c);
    if (i >= 0) lat[i] = now_s() - t;
  }
  double total = 0;
  for (int i = 0; i < n; i++) total += lat[i];
  sqlite3_finalize(b);
  sqlite3_finalize(c);
  sqlite3_finalize(ins);
  sqlite3_close(db);
  remove_db(path);
  return summarize(lat, n, total);
}

/* The schema's floor: plain SQLite doing the writes of one fire, with prepared
 * statements and no libcase code: read the case row, append a journal row (with
 * the UNIQUE (case_id, revision) index), update the case row with a snapshot of
 * the chain's size, clear its timers; one BEGIN IMMEDIATE ... COMMIT each. */
/* `variant` 0 is the SQL of schema 9 and before; 1 leaves out the UNIQUE
 * (case_id, revision) index; 2 leaves out the case row update: what each
 * costs of the floor.  3 is schema 10's (the store's now): read the case row
 * and its latest journal row, append a journal row with its done and state (a
 * chain's, 60 bytes); no case row update, no timer statement.
 * For variant 3 only: `rows`, if not NULL, gives the configuration, data and
 * state texts' lengths of the workload's own journal rows (else the chain's
 * literals), and `batch` > 0 puts `batch` fires in one transaction, each in a
 * savepoint, as case_store_batch_begin() does (the figure is then per fire). */
typedef struct {
  size_t configuration, data, state;
} row_sizes;

static char *filler(size_t n) {
  char *t = malloc(n + 1);
  if (!t) die("out of memory");
  memset(t, 'x', n);
  t[n] = '\0';
  return t;
}

/* One schema 10 fire's statements (read the case and its latest row, append
 * a row), inside whatever transaction or savepoint the caller opened. */
static void floor10_fire(sqlite3 *db, sqlite3_stmt *get, sqlite3_stmt *ins10, int64_t rev,
                         int64_t time, const char *hash) {
  sql_step(db, get);
  sqlite3_bind_int64(ins10, 1, rev);
  sqlite3_bind_int64(ins10, 2, time);
  sqlite3_bind_text(ins10, 3, hash, -1, SQLITE_STATIC);
  sql_step(db, ins10);
}

static rate schema_floor_v(const char *path, int full, int variant, int n, double *lat,
                           const row_sizes *rows, int batch) {
  if ((rows || batch > 0) && variant != 3) die("row sizes and batches are for variant 3 only");
  remove_db(path);
  sqlite3 *db;
  if (sqlite3_open(path, &db) != SQLITE_OK) die("open %s", path);
  sqlite3_busy_timeout(db, 5000);
  sql_exec(db, "PRAGMA journal_mode=WAL");
  sql_exec(db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  sql_exec(db, "PRAGMA foreign_keys=ON");
  sql_exec(db, "CREATE TABLE cases(id TEXT PRIMARY KEY, revision INTEGER NOT NULL, "
               "configuration TEXT NOT NULL, snapshot TEXT NOT NULL, last_hash TEXT NOT NULL, "
               "updated INTEGER NOT NULL);"
               "CREATE TABLE journal(seq INTEGER PRIMARY KEY, case_id TEXT NOT NULL, "
               "revision INTEGER NOT NULL, event TEXT NOT NULL, payload TEXT NOT NULL, "
               "actor TEXT, role TEXT, time INTEGER NOT NULL, recorded INTEGER NOT NULL, "
               "configuration TEXT NOT NULL, data TEXT NOT NULL, prev_hash TEXT NOT NULL, "
               "hash TEXT NOT NULL);"
               "CREATE TABLE timers(case_id TEXT NOT NULL, timer_id TEXT NOT NULL, "
               "PRIMARY KEY (case_id, timer_id));"
               "INSERT INTO cases VALUES('c1', 0, '[\"s0\"]', '', '', 0)");
  if (variant != 1)
    sql_exec(db, "CREATE UNIQUE INDEX journal_case ON journal(case_id, revision)");
  if (variant == 3)
    sql_exec(db, "ALTER TABLE journal ADD COLUMN done INTEGER; ALTER TABLE journal ADD COLUMN "
                 "state TEXT; INSERT INTO journal(case_id,revision,event,payload,time,recorded,"
                 "configuration,data,prev_hash,hash) VALUES('c1',0,'create','null',0,0,'[]','{}',"
                 "'','')");
  sqlite3_stmt *b = sql_prepare(db, "BEGIN IMMEDIATE"), *c = sql_prepare(db, "COMMIT"),
               *get = sql_prepare(db, variant == 3
                                          ? "SELECT c.id, j.revision, j.configuration, j.data, "
                                            "j.state, j.hash FROM cases c LEFT JOIN journal j "
                                            "ON j.seq=(SELECT k.seq FROM journal k WHERE "
                                            "k.case_id=c.id ORDER BY k.revision DESC LIMIT 1) "
                                            "WHERE c.id='c1'"
                                          : "SELECT revision, snapshot, last_hash FROM cases "
                                            "WHERE id='c1'"),
               *ins10 = sql_prepare(db, variant == 3
                                            ? "INSERT INTO journal(case_id,revision,event,payload,"
                                              "actor,role,time,recorded,configuration,data,"
                                              "prev_hash,hash,done,state) VALUES('c1',?1,'next',"
                                              "'null','bench','IND',?2,?2,?4,?5,?3,?3,0,?6)"
                                            : "SELECT 1"),
               *sp = sql_prepare(db, "SAVEPOINT fire"), *rel = sql_prepare(db, "RELEASE fire"),
               *ins = sql_prepare(db, "INSERT INTO journal(case_id,revision,event,payload,actor,"
                                      "role,time,recorded,configuration,data,prev_hash,hash) "
                                      "VALUES('c1',?1,'next','null','bench','IND',?2,?2,"
                                      "'[\"s3\"]','{\"n\":0}',?3,?3)"),
               *upd = sql_prepare(db, "UPDATE cases SET revision=?1, configuration='[\"s3\"]', "
                                      "snapshot=?2, last_hash=?3, updated=?4 WHERE id='c1' "
                                      "AND revision=?1-1"),
               *del = sql_prepare(db, "DELETE FROM timers WHERE case_id='c1'");
  static const char hash[] = "64e6403a1fb3e80b2ff706c287a468a3e969846af4a750eda4bdd256241b5d54";
  char snap[281];
  memset(snap, 'x', sizeof snap - 1); /* a chain snapshot is 280 bytes */
  snap[sizeof snap - 1] = '\0';
  char *cfg = rows ? filler(rows->configuration) : strdup("[\"s3\"]"),
       *data = rows ? filler(rows->data) : strdup("{\"n\":0}"),
       *state = rows ? filler(rows->state)
                     : strdup("{\"history\":{},\"internal_queue\":[],\"timers\":[],"
                              "\"timer_seq\":0,\"time\":1}");
  if (!cfg || !data || !state) die("out of memory");
  if (variant == 3) {
    sqlite3_bind_text(ins10, 4, cfg, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins10, 5, data, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins10, 6, state, -1, SQLITE_STATIC);
  }
  int64_t rev = 0;
  double total = 0;
  if (batch > 0) { /* whole transactions of `batch` fires, timed together */
    int warm = (2500 + batch - 1) / batch * batch;
    double t0 = 0;
    for (int i = -warm; i < n; i += batch) {
      if (i == 0) t0 = now_s();
      sql_step(db, b);
      for (int j = 0; j < batch && i + j < n; j++) {
        sql_step(db, sp);
        floor10_fire(db, get, ins10, ++rev, T0 + i + j, hash);
        sql_step(db, rel);
      }
      sql_step(db, c);
    }
    total = now_s() - t0;
    for (int i = 0; i < n; i++) lat[i] = total / n;
  }
  for (int i = -2500; i < n && batch <= 0; i++) {
    double t = now_s();
    sql_step(db, b);
    if (variant == 3) {
      floor10_fire(db, get, ins10, ++rev, T0 + i, hash);
      sql_step(db, c);
      if (i >= 0) total += lat[i] = now_s() - t;
      continue;
    }
    sql_step(db, get);
    rev++;
    sqlite3_bind_int64(ins, 1, rev);
    sqlite3_bind_int64(ins, 2, T0 + i);
    sqlite3_bind_text(ins, 3, hash, -1, SQLITE_STATIC);
    sql_step(db, ins);
    sqlite3_bind_int64(upd, 1, rev);
    sqlite3_bind_text(upd, 2, snap, -1, SQLITE_STATIC);
    sqlite3_bind_text(upd, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(upd, 4, T0 + i);
    if (variant != 2) sql_step(db, upd);
    sql_step(db, del);
    sql_step(db, c);
    if (i >= 0) total += lat[i] = now_s() - t;
  }
  sqlite3_stmt *all[] = {b, c, get, ins, upd, del, ins10, sp, rel};
  for (int i = 0; i < N_OF(all); i++) sqlite3_finalize(all[i]);
  sqlite3_close(db);
  remove_db(path);
  free(cfg);
  free(data);
  free(state);
  return summarize(lat, n, total);
}

static rate schema_floor(const char *path, int full, int variant, int n, double *lat) {
  return schema_floor_v(path, full, variant, n, lat, NULL, 0);
}

/* The mean lengths of the configuration, data and state texts of a store's
 * journal rows after its creation row: what the workload's fires write. */
static row_sizes journal_row_sizes(const char *path) {
  sqlite3 *db;
  sqlite3_stmt *q;
  row_sizes r = {0, 0, 0};
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) die("open %s", path);
  if (sqlite3_prepare_v2(db,
                         "SELECT avg(length(configuration)), avg(length(data)), "
                         "avg(length(coalesce(state,''))) FROM journal WHERE revision > 0",
                         -1, &q, NULL) != SQLITE_OK)
    die("journal sizes: %s", sqlite3_errmsg(db));
  if (sqlite3_step(q) == SQLITE_ROW) {
    r.configuration = (size_t)sqlite3_column_double(q, 0);
    r.data = (size_t)sqlite3_column_double(q, 1);
    r.state = (size_t)sqlite3_column_double(q, 2);
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  return r;
}

/* Opens a fresh store for workload w with one case "c1" (setup done). */
static case_store *fresh_store(case_engine *e, const char *path, int sync, const workload **w,
                               const case_def **d) {
  remove_db(path);
  case_store *s;
  check(e, case_store_open(e, path, CASE_STORE_CREATE, &s), "open the store");
  check(e, case_store_config(s, sync, -1), "configure the store");
  open_workload(e, w, d);
  check(e, case_store_add_def(s, *d), "store the definition");
  return s;
}

static int store_step(case_store *s, const char *id, const step *st) {
  return case_store_fire(s, id, st->event, st->payload, "bench", st->role, T0, -1, NULL, NULL);
}

static int bench_durable(const char *wname, const char *sync_name, int n) {
  int full = strcmp(sync_name, "full") == 0;
  if (!full && strcmp(sync_name, "normal") != 0) die("sync is normal or full");
  const workload *w = workload_named(wname);
  double *lat = malloc(sizeof *lat * (size_t)n);
  if (!lat) die("out of memory");
  char *ipath = path_in(tmp_dir(), "bench-insert.db");
  char *spath = path_in(tmp_dir(), "bench-store.db");
  rate ins = plain_insert(ipath, full, n, lat);
  rate floor = schema_floor(ipath, full, 0, n, lat);
  rate noindex = schema_floor(ipath, full, 1, n, lat);
  rate nocase = schema_floor(ipath, full, 2, n, lat);
  rate floor10 = schema_floor(ipath, full, 3, n, lat);

  case_engine *e;
  if (case_engine_open(&e) != CASE_OK) die("engine");
  const case_def *d;
  case_store *s =
      fresh_store(e, spath, full ? CASE_STORE_SYNC_FULL : CASE_STORE_SYNC_NORMAL, &w, &d);
  check(e, case_store_create(s, d, "c1", w->location, w->data, "bench", "IND", T0, NULL),
        "create");
  for (int i = 0; i < w->nsetup; i++) check(e, store_step(s, "c1", &w->setup[i]), "setup");
  int warm = (500 + w->nloop - 1) / w->nloop * w->nloop; /* whole rounds */
  for (int i = 0; i < warm; i++) /* warm-up: wraps the WAL once */
    check(e, store_step(s, "c1", &w->loop[i % w->nloop]), "warm-up");
  double total = 0;
  for (int i = 0; i < n; i++) {
    double t = now_s();
    int rc = store_step(s, "c1", &w->loop[i % w->nloop]);
    lat[i] = now_s() - t;
    if (rc != CASE_OK) check(e, rc, "fire");
    total += lat[i];
  }
  rate f = summarize(lat, n, total);
  /* Batched: 100 fires per transaction, a savepoint each (case_store_batch_begin). */
  enum { PER_TXN = 100 };
  double tb = now_s();
  int nb = 0;
  for (int i = 0; i < n; i += PER_TXN) {
    check(e, case_store_batch_begin(s), "batch");
    for (int j = 0; j < PER_TXN && i + j < n; j++, nb++) {
      /* Go on round the loop where the unbatched fires left it (n need not be
       * a whole number of rounds). */
      int rc = store_step(s, "c1", &w->loop[(n + i + j) % w->nloop]);
      if (rc != CASE_OK) check(e, rc, "batched fire");
    }
    check(e, case_store_batch_commit(s), "commit");
  }
  tb = now_s() - tb;
  double batch_per_s = nb / tb;
  case_store_close(s);
  case_engine_close(e);
  /* The schema 10 floor again with rows of this workload's own sizes, and in
   * batches like the batched fires: what those two figures can reach. */
  row_sizes rs = journal_row_sizes(spath);
  remove_db(spath);
  rate floor10_batch = schema_floor_v(ipath, full, 3, n, lat, NULL, PER_TXN);
  rate floor10_sized = schema_floor_v(ipath, full, 3, n, lat, &rs, 0);
  rate floor10_sized_batch = schema_floor_v(ipath, full, 3, n, lat, &rs, PER_TXN);
  printf("{\"bench\":\"durable\",\"workload\":\"%s\",\"sync\":\"%s\",\"fires\":%d,"
         "\"fires_per_s\":%.1f,\"fire_p50_us\":%.1f,\"fire_p99_us\":%.1f,"
         "\"insert_per_s\":%.1f,\"insert_p50_us\":%.1f,\"insert_p99_us\":%.1f,"
         "\"ratio\":%.3f,\"floor_per_s\":%.1f,\"floor_p50_us\":%.1f,\"floor_ratio\":%.3f,"
         "\"floor_noindex_per_s\":%.1f,\"floor_nocase_per_s\":%.1f,\"floor10_per_s\":%.1f,"
         "\"floor10_ratio\":%.3f,"
         "\"batch_fires_per_s\":%.1f,\"batch_per_txn\":%d,\"batch_ratio\":%.3f,"
         "\"floor10_batch_per_s\":%.1f,\"row_configuration_bytes\":%zu,"
         "\"row_data_bytes\":%zu,\"row_state_bytes\":%zu,\"floor10_sized_per_s\":%.1f,"
         "\"floor10_sized_ratio\":%.3f,\"floor10_sized_batch_per_s\":%.1f,"
         "\"maxrss_kib\":%ld}\n",
         w->name, sync_name, n, f.per_s, f.p50_us, f.p99_us, ins.per_s, ins.p50_us, ins.p99_us,
         f.per_s / ins.per_s, floor.per_s, floor.p50_us, f.per_s / floor.per_s, noindex.per_s,
         nocase.per_s, floor10.per_s, floor10.per_s / ins.per_s, batch_per_s, PER_TXN,
         batch_per_s / ins.per_s, floor10_batch.per_s, rs.configuration, rs.data, rs.state,
         floor10_sized.per_s, floor10_sized.per_s / ins.per_s, floor10_sized_batch.per_s,
         maxrss_kib());
  free(lat);
  free(ipath);
  free(spath);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Big stores: cloning a template case with SQL                        */
/* ------------------------------------------------------------------ */

/* The columns of `table`, comma-separated, with `id_col` given as the copy's
 * id expression `idx`, `snapshot` as the template's snapshot with the new id,
 * and the journal's seq and tree node left to the database (new rows, no
 * node).  Read from the schema, so a new column is copied as it is. */
static void clone_columns(sqlite3 *db, const char *table, const char *id_col, const char *idx,
                          const char *tpl, char *cols, char *exprs, size_t cap) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT name FROM pragma_table_info('%s')", table);
  sqlite3_stmt *st = sql_prepare(db, sql);
  cols[0] = exprs[0] = '\0';
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *c = (const char *)sqlite3_column_text(st, 0);
    if (!strcmp(table, "journal") && (!strcmp(c, "seq") || !strcmp(c, "node"))) continue;
    char e[512];
    if (!strcmp(c, id_col)) snprintf(e, sizeof e, "%s", idx);
    else if (!strcmp(c, "snapshot"))
      snprintf(e, sizeof e, "replace(snapshot, '\"case\":\"%s\"', '\"case\":\"' || %s || '\"')",
               tpl, idx);
    else snprintf(e, sizeof e, "%s", c);
    if (strlen(cols) + strlen(c) + 2 >= cap || strlen(exprs) + strlen(e) + 2 >= cap)
      die("clone: too many columns");
    if (cols[0]) {
      strcat(cols, ",");
      strcat(exprs, ",");
    }
    strcat(cols, c);
    strcat(exprs, e);
  }
  sqlite3_finalize(st);
}

/*
 * Adds `count` copies of stored case `tpl` under ids printf(prefix "%07d", from + i):
 * the case row (its snapshot with the new id), its journal rows and its timer
 * rows, in one transaction on a second connection.  The copies' journal hashes
 * are the template's (they are not valid for verify, which this is not used
 * for); every other column is what case_store_create() writes, so a fire or a
 * tick on a copy costs what it costs on a created case.
 */
static void clone_cases(const char *path, const char *tpl, const char *prefix, long from,
                        long count) {
  if (count <= 0) return; /* the recursive CTE below always yields its first row */
  sqlite3 *db;
  if (sqlite3_open(path, &db) != SQLITE_OK) die("open %s", path);
  sqlite3_busy_timeout(db, 5000);
  sql_exec(db, "BEGIN IMMEDIATE");
  char idx[64];
  snprintf(idx, sizeof idx, "printf('%s%%07d', i)", prefix);
  static const struct { const char *table, *id_col, *order; } tabs[] = {
      {"cases", "id", ""}, {"journal", "case_id", " ORDER BY i, revision"},
      {"timers", "case_id", ""}};
  for (int k = 0; k < 3; k++) {
    char cols[2048], exprs[4096], sql[8192];
    clone_columns(db, tabs[k].table, tabs[k].id_col, idx, tpl, cols, exprs, sizeof cols);
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT %ld UNION ALL SELECT i + 1 FROM n WHERE i < %ld) "
             "INSERT INTO %s(%s) SELECT %s FROM %s, n WHERE %s='%s'%s",
             from, from + count - 1, tabs[k].table, cols, exprs, tabs[k].table, tabs[k].id_col,
             tpl, tabs[k].order);
    sql_exec(db, sql);
  }
  sql_exec(db, "COMMIT");
  sqlite3_close(db);
}

/* The cloned rows have no tree nodes (clone_cases leaves them to the store):
 * computes them as the schema-6 migration did, so the store is what libcase
 * writes and the first fire does not rebuild the tree from every leaf. */
static void fill_nodes(const char *path) {
  case_engine *e;
  case_store *s;
  if (case_engine_open(&e) != CASE_OK) die("engine");
  check(e, case_store_open(e, path, 0, &s), "reopen the store");
  check(e, st_tree_backfill(s), "compute the tree nodes of the copies");
  case_store_close(s);
  case_engine_close(e);
}

/* Store bytes: the file after the last connection closed (WAL checkpointed). */
static long long store_bytes(const char *path) {
  char wal[4096];
  snprintf(wal, sizeof wal, "%s-wal", path);
  return file_size(path) + file_size(wal);
}

/* Item 4: `total` pending timers, `due` of them due: one tick fires those. */
static int bench_tick(long total, long due, int batched) {
  char *path = path_in(tmp_dir(), "bench-tick.db");
  const workload *w = &W_TIMER;
  case_engine *e;
  if (case_engine_open(&e) != CASE_OK) die("engine");
  const case_def *d;
  case_store *s = fresh_store(e, path, CASE_STORE_SYNC_NORMAL, &w, &d);
  /* Template A is due an hour after T0; template B thirty days later. */
  check(e, case_store_create(s, d, "tplA", NULL, NULL, "bench", "IND", T0, NULL), "create");
  if (due < 1 || total < due) die("tick: 1 <= due <= pending");
  if (total > due)
    check(e, case_store_create(s, d, "tplB", NULL, NULL, "bench", "IND", T0 + 30 * 86400, NULL),
          "create");
  case_store_close(s);
  case_engine_close(e);
  double tb = now_s();
  /* The templates stay (removing their rows would leave a gap in seq, which
   * the tree cannot be built over): each is one of its kind. */
  clone_cases(path, "tplA", "d", 0, due - 1);
  if (total > due) clone_cases(path, "tplB", "p", 0, total - due - 1);
  fill_nodes(path);
  tb = now_s() - tb;

  if (case_engine_open(&e) != CASE_OK) die("engine");
  check(e, case_store_open(e, path, 0, &s), "reopen the store");
  int fired = 0;
  double t = now_s();
  /* batched: case_store_tick_v2() with its default batches (100 timers per
   * transaction, a savepoint each); else one transaction per timer. */
  check(e, batched ? case_store_tick_v2(s, T0 + 2 * 3600, 0, &fired)
                   : case_store_tick(s, T0 + 2 * 3600, &fired), "tick");
  t = now_s() - t;
  if (fired != due) die("tick fired %d timers, expected %ld", fired, due);
  /* Nothing left due: a tick that finds nothing, for the index lookup alone. */
  double t2 = now_s();
  int none = 0;
  check(e, case_store_tick(s, T0 + 2 * 3600, &none), "tick");
  t2 = now_s() - t2;
  case_store_close(s);
  case_engine_close(e);
  printf("{\"bench\":\"tick\",\"pending\":%ld,\"due\":%ld,\"batched\":%s,\"fired\":%d,"
         "\"seconds\":%.4f,\"timers_per_s\":%.1f,\"empty_tick_ms\":%.3f,\"build_seconds\":%.2f,"
         "\"store_bytes\":%lld,\"maxrss_kib\":%ld}\n",
         total, due, batched ? "true" : "false", fired, t, fired / t, t2 * 1e3, tb,
         store_bytes(path), maxrss_kib());
  remove_db(path);
  free(path);
  return 0;
}

/* Item 7: the cost of a fire as the store grows.  At each size: `k` fires at
 * distinct random cases not in memory (read, restore from the snapshot, fire,
 * commit; the engine's copy is freed after each) and `k` fires at one hot case. */
static int bench_scale(int k, int nsizes, long *sizes) {
  char *path = path_in(tmp_dir(), "bench-scale.db");
  const workload *w = &W_CHAIN;
  case_engine *e;
  if (case_engine_open(&e) != CASE_OK) die("engine");
  const case_def *d;
  case_store *s = fresh_store(e, path, CASE_STORE_SYNC_NORMAL, &w, &d);
  check(e, case_store_create(s, d, "tpl", NULL, NULL, "bench", "IND", T0, NULL), "create");
  check(e, case_store_create(s, d, "hot", NULL, NULL, "bench", "IND", T0, NULL), "create");
  case_store_close(s);
  case_engine_close(e);
  double *lat = malloc(sizeof *lat * (size_t)k);
  if (!lat) die("out of memory");
  long have = 0;
  unsigned long long rnd = 88172645463325252ULL;
  printf("{\"bench\":\"scale\",\"fires\":%d,\"sizes\":[", k);
  for (int z = 0; z < nsizes; z++) {
    if (sizes[z] > have) {
      clone_cases(path, "tpl", "c", have, sizes[z] - have);
      fill_nodes(path);
    }
    have = sizes[z];
    if (case_engine_open(&e) != CASE_OK) die("engine");
    check(e, case_store_open(e, path, 0, &s), "reopen the store");
    char id[32];
    for (int i = 0; i < 50; i++) /* warm the hot case and the statement cache */
      check(e, case_store_fire(s, "hot", "next", NULL, "bench", "IND", T0, -1, NULL, NULL),
            "warm-up");
    double total = 0;
    for (int i = 0; i < k; i++) {
      rnd ^= rnd << 13; rnd ^= rnd >> 7; rnd ^= rnd << 17;
      snprintf(id, sizeof id, "c%07llu", rnd % (unsigned long long)have);
      double t = now_s();
      int rc = case_store_fire(s, id, "next", NULL, "bench", "IND", T0, -1, NULL, NULL);
      lat[i] = now_s() - t;
      if (rc != CASE_OK) check(e, rc, "fire");
      total += lat[i];
      case_instance_free(case_instance_find(e, id));
    }
    rate cold = summarize(lat, k, total);
    total = 0;
    for (int i = 0; i < k; i++) {
      double t = now_s();
      int rc = case_store_fire(s, "hot", "next", NULL, "bench", "IND", T0, -1, NULL, NULL);
      lat[i] = now_s() - t;
      if (rc != CASE_OK) check(e, rc, "fire");
      total += lat[i];
    }
    rate hot = summarize(lat, k, total);
    case_store_close(s);
    case_engine_close(e);
    printf("%s{\"cases\":%ld,\"cold_fires_per_s\":%.1f,\"cold_p50_us\":%.1f,\"cold_p99_us\":%.1f,"
           "\"hot_fires_per_s\":%.1f,\"hot_p50_us\":%.1f,\"hot_p99_us\":%.1f,"
           "\"store_bytes\":%lld}",
           z ? "," : "", have, cold.per_s, cold.p50_us, cold.p99_us, hot.per_s, hot.p50_us,
           hot.p99_us, store_bytes(path));
    fflush(stdout);
  }
  printf("],\"maxrss_kib\":%ld}\n", maxrss_kib());
  remove_db(path);
  free(lat);
  free(path);
  return 0;
}

/* Resident memory now (VmRSS), KiB. */
static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
  if (f) fclose(f);
  return kib;
}

/* Item 9: a long-running host.  One store of `cases` chain cases, one engine
 * and store handle kept open (the default case cache), `touches` reads of
 * distinct cases (case_store_get: read, restore) with a fire at every tenth.
 * The resident memory after a tenth of them and at the end says whether it
 * grows with the cases touched. */
static int bench_host(long cases, long touches) {
  char *path = path_in(tmp_dir(), "bench-host.db");
  const workload *w = &W_CHAIN;
  case_engine *e;
  if (case_engine_open(&e) != CASE_OK) die("engine");
  const case_def *d;
  case_store *s = fresh_store(e, path, CASE_STORE_SYNC_NORMAL, &w, &d);
  check(e, case_store_create(s, d, "tpl", NULL, NULL, "bench", "IND", T0, NULL), "create");
  case_store_close(s);
  case_engine_close(e);
  clone_cases(path, "tpl", "c", 0, cases);
  fill_nodes(path);
  if (case_engine_open(&e) != CASE_OK) die("engine");
  check(e, case_store_open(e, path, 0, &s), "reopen the store");
  long stride = 7919; /* a prime: i * stride mod cases visits distinct cases */
  while (cases % stride == 0) stride += 2;
  char id[32];
  long rss_tenth = 0, fires = 0;
  double t = now_s();
  for (long i = 0; i < touches; i++) {
    snprintf(id, sizeof id, "c%07ld", (long)((i * stride) % cases));
    case_instance *c;
    int rc = case_store_get(s, id, &c);
    if (rc != CASE_OK) check(e, rc, "get");
    if (i % 10 == 0) {
      rc = case_store_fire(s, id, "next", NULL, "bench", "IND", T0, -1, NULL, NULL);
      if (rc != CASE_OK) check(e, rc, "fire");
      fires++;
    }
    if (i + 1 == touches / 10) rss_tenth = rss_kib();
  }
  t = now_s() - t;
  long loaded = 0;
  long cache = case_store_cache(s, &loaded);
  long rss_end = rss_kib();
  case_store_close(s);
  case_engine_close(e);
  printf("{\"bench\":\"host\",\"cases\":%ld,\"touched\":%ld,\"fires\":%ld,\"seconds\":%.2f,"
         "\"touches_per_s\":%.1f,\"cache\":%ld,\"loaded\":%ld,\"rss_tenth_kib\":%ld,"
         "\"rss_end_kib\":%ld,\"maxrss_kib\":%ld}\n",
         cases, touches, fires, t, touches / t, cache, loaded, rss_tenth, rss_end, maxrss_kib());
  remove_db(path);
  free(path);
  return 0;
}

typedef struct counted {
  long n;
  size_t bytes;
} counted;

static int count_row(void *ud, int64_t seq, const char *row_json) {
  (void)seq;
  counted *k = ud;
  k->n++;
  k->bytes += strlen(row_json);
  return 0;
}

static int count_case(void *ud, const char *id, const char *row_json) {
  (void)id;
  return count_row(ud, 0, row_json);
}

/* Item 10: reads at scale.  A store of `cases` chain cases and one case with
 * `rows` journal rows: its history (case_store_history), a small case's, a
 * cold case_store_get, the whole case list streamed (case_store_list) and the
 * latest event time.  With `keep` the store stays for bench/run's casectl
 * show and list (its path is printed). */
static int bench_reads(long cases, long rows, int keep) {
  char *path = path_in(tmp_dir(), "bench-reads.db");
  const workload *w = &W_CHAIN;
  case_engine *e;
  if (case_engine_open(&e) != CASE_OK) die("engine");
  const case_def *d;
  case_store *s = fresh_store(e, path, CASE_STORE_SYNC_NORMAL, &w, &d);
  check(e, case_store_create(s, d, "tpl", NULL, NULL, "bench", "IND", T0, NULL), "create");
  check(e, case_store_create(s, d, "big", NULL, NULL, "bench", "IND", T0, NULL), "create");
  for (long i = 1; i < rows; i++) {
    int rc = case_store_fire(s, "big", "next", NULL, "bench", "IND", T0 + i, -1, NULL, NULL);
    if (rc != CASE_OK) check(e, rc, "fire");
  }
  case_store_close(s);
  case_engine_close(e);
  clone_cases(path, "tpl", "c", 0, cases);
  fill_nodes(path);
  if (case_engine_open(&e) != CASE_OK) die("engine");
  check(e, case_store_open(e, path, CASE_STORE_READONLY, &s), "reopen the store");
  counted big = {0, 0}, small = {0, 0}, all = {0, 0};
  double t0 = now_s();
  check(e, case_store_history(s, "big", -1, count_row, &big, NULL), "history");
  double t1 = now_s();
  char sid[32];
  snprintf(sid, sizeof sid, "c%07ld", cases / 2);
  check(e, case_store_history(s, sid, -1, count_row, &small, NULL), "history");
  double t2 = now_s();
  case_instance *c;
  char id[32];
  snprintf(id, sizeof id, "c%07ld", cases / 3);
  check(e, case_store_get(s, id, &c), "get");
  double t3 = now_s();
  long rss0 = rss_kib();
  check(e, case_store_list(s, NULL, 0, count_case, &all), "list");
  double t4 = now_s();
  long rss1 = rss_kib();
  int64_t latest = 0;
  check(e, case_store_latest_time(s, &latest), "latest time");
  double t5 = now_s();
  case_store_close(s);
  case_engine_close(e);
  if (big.n != rows || all.n != cases + 2) die("reads: %ld rows, %ld cases", big.n, all.n);
  printf("{\"bench\":\"reads\",\"cases\":%ld,\"history_rows\":%ld,\"history_ms\":%.3f,"
         "\"history_small_ms\":%.3f,\"get_cold_ms\":%.3f,\"list_seconds\":%.3f,"
         "\"list_cases_per_s\":%.1f,\"list_rss_growth_kib\":%ld,\"latest_time_seconds\":%.3f,"
         "\"store_bytes\":%lld,\"maxrss_kib\":%ld%s%s%s}\n",
         cases, big.n, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, t4 - t3,
         all.n / (t4 - t3), rss1 - rss0, t5 - t4, store_bytes(path), maxrss_kib(),
         keep ? ",\"store\":\"" : "", keep ? path : "", keep ? "\"" : "");
  if (!keep) remove_db(path);
  free(path);
  return 0;
}

/* Item 6: store bytes per 100,000 cases, created through the API. */
static int bench_store_size(const char *wname, long n) {
  const workload *w = workload_named(wname);
  char *path = path_in(tmp_dir(), "bench-size.db");
  case_engine *e;
  if (case_engine_open(&e) != CASE_OK) die("engine");
  const case_def *d;
  case_store *s = fresh_store(e, path, CASE_STORE_SYNC_NORMAL, &w, &d);
  char id[32];
  double t = now_s();
  for (long i = 0; i < n; i++) {
    snprintf(id, sizeof id, "c%07ld", i);
    case_instance *c;
    int rc = case_store_create(s, d, id, w->location, w->data, "bench", "IND", T0, &c);
    if (rc != CASE_OK) check(e, rc, "create");
    case_instance_free(c); /* the engine keeps no copy: this measures the store */
  }
  t = now_s() - t;
  case_store_close(s);
  case_engine_close(e);
  long long bytes = store_bytes(path);
  printf("{\"bench\":\"store_size\",\"workload\":\"%s\",\"cases\":%ld,\"store_bytes\":%lld,"
         "\"bytes_per_100k_cases\":%.0f,\"creates_per_s\":%.1f,\"maxrss_kib\":%ld}\n",
         w->name, n, bytes, (double)bytes * 100000.0 / (double)n, n / t, maxrss_kib());
  remove_db(path);
  free(path);
  return 0;
}

/* Issue 12 §14: the cost of opening a store that holds `versions` versions of
 * the asylum workflow (each with its Lua module) and reading one case, with
 * definitions loaded lazily (only the case's own) against the eager way every
 * open used to work (every stored definition parsed: case_def_next() forces
 * it).  Medians of `runs` fresh engines. */
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int bench_store_open(long versions, long runs) {
  if (versions < 1 || runs < 1 || runs > 1000) die("store_open: versions >= 1, 1 <= runs <= 1000");
  char *path = path_in(tmp_dir(), "bench-open.db");
  remove_db(path);
  char *file = path_in(src_dir(), "workflows/asielprocedure.yaml");
  FILE *f = fopen(file, "rb");
  if (!f) die("%s: cannot open", file);
  static char text[1 << 20];
  size_t len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[len] = '\0';
  char *at = strstr(text, "\nversion: 1\n");
  if (!at) die("%s: no 'version: 1' line", file);
  case_engine *e;
  case_store *s;
  if (case_engine_open(&e) != CASE_OK) die("engine");
  char *root = path_in(src_dir(), "workflows");
  case_engine_set_lua_root(e, root);
  check(e, case_store_open(e, path, CASE_STORE_CREATE, &s), "open");
  const case_def *first = NULL;
  for (long v = 1; v <= versions; v++) {
    /* The same chart under version v (the rest of the text unchanged). */
    static char copy[(1 << 20) + 32];
    size_t head = (size_t)(at - text);
    int n = snprintf(copy, sizeof copy, "%.*s\nversion: %ld\n%s", (int)head, text, v,
                     at + strlen("\nversion: 1\n"));
    const case_def *d;
    check(e, case_def_load_string(e, copy, (size_t)n, file, &d), "load");
    check(e, case_store_add_def(s, d), "add_def");
    if (v == 1) first = d;
  }
  check(e, case_store_create(s, first, "c1", NULL, NULL, "bench", "IND", T0, NULL), "create");
  case_store_close(s);
  case_engine_close(e);
  double lazy_open[1000], lazy_get[1000], eager[1000];
  for (long r = 0; r < runs; r++) {
    for (int mode = 0; mode < 2; mode++) {
      if (case_engine_open(&e) != CASE_OK) die("engine");
      double t0 = now_s();
      check(e, case_store_open(e, path, CASE_STORE_READONLY, &s), "open");
      if (mode == 1) { /* the old way: every stored definition at open */
        int k = 0;
        for (const case_def *d = case_def_next(e, NULL); d; d = case_def_next(e, d)) k++;
        if (k != versions) die("store_open: %d definitions loaded, not %ld", k, versions);
      }
      double t1 = now_s();
      case_instance *c;
      check(e, case_store_get(s, "c1", &c), "get");
      double t2 = now_s();
      if (mode == 0) {
        lazy_open[r] = t1 - t0;
        lazy_get[r] = t2 - t0;
      } else {
        eager[r] = t2 - t0;
      }
      case_store_close(s);
      case_engine_close(e);
    }
  }
  printf("{\"bench\":\"store_open\",\"definitions\":%ld,\"runs\":%ld,"
         "\"open_ms\":%.3f,\"open_and_get_ms\":%.3f,\"eager_open_and_get_ms\":%.3f,"
         "\"maxrss_kib\":%ld}\n",
         versions, runs, 1e3 * median(lazy_open, (int)runs), 1e3 * median(lazy_get, (int)runs),
         1e3 * median(eager, (int)runs), maxrss_kib());
  remove_db(path);
  free(path);
  free(file);
  free(root);
  return 0;
}

/* Item 5: `cases` cases of `per_case` journal rows each (creation + fires),
 * written through the store API, then verified (hash chain + full replay). */
static int bench_import_verify(long cases, long per_case) {
  char *path = path_in(tmp_dir(), "bench-import.db");
  const workload *w = &W_CHAIN;
  case_engine *e;
  if (case_engine_open(&e) != CASE_OK) die("engine");
  const case_def *d;
  case_store *s = fresh_store(e, path, CASE_STORE_SYNC_NORMAL, &w, &d);
  char id[32];
  double t = now_s();
  for (long i = 0; i < cases; i++) {
    snprintf(id, sizeof id, "c%07ld", i);
    case_instance *c;
    check(e, case_store_create(s, d, id, NULL, NULL, "bench", "IND", T0, &c), "create");
    for (long j = 1; j < per_case; j++) {
      int rc = case_store_fire(s, id, "next", NULL, "bench", "IND", T0 + j, -1, NULL, NULL);
      if (rc != CASE_OK) check(e, rc, "fire");
    }
    case_instance_free(case_instance_find(e, id));
  }
  double ti = now_s() - t;
  case_store_close(s);
  case_engine_close(e);

  if (case_engine_open(&e) != CASE_OK) die("engine");
  check(e, case_store_open(e, path, CASE_STORE_READONLY, &s), "open read-only");
  char *report = NULL;
  t = now_s();
  int rc = case_store_verify(s, &report);
  double tv = now_s() - t;
  if (rc != CASE_OK) die("verify: %s: %.300s", case_errstr(rc), report ? report : "");
  long long events = 0;
  const char *p = report ? strstr(report, "\"events\":") : NULL;
  if (p) events = atoll(p + 9);
  case_free(report);
  case_store_close(s);
  case_engine_close(e);
  printf("{\"bench\":\"import_verify\",\"cases\":%ld,\"events\":%lld,\"import_seconds\":%.2f,"
         "\"import_events_per_s\":%.1f,\"verify_seconds\":%.2f,\"verify_events_per_s\":%.1f,"
         "\"store_bytes\":%lld,\"maxrss_kib\":%ld}\n",
         cases, events, ti, cases * per_case / ti, tv, events / tv, store_bytes(path),
         maxrss_kib());
  remove_db(path);
  free(path);
  return 0;
}

/* The journal's Merkle tree at size (issue 15 §8): a store of `cases` cases of
 * `per_case` rows written through the API, then what its proofs cost there: the
 * tree head, a checkpoint, fires on one handle (the frontier kept from its own
 * commits) and on two handles taking turns (the frontier read from the stored
 * nodes each time), a checkpoint --since the first (with its consistency
 * proof), checking the two without the store, one row's audit path and its
 * check, and verify with and without its parts. */
static double per_call(double t0, int n) { return (now_s() - t0) / n * 1e6; }

static int bench_proof(long cases, long per_case) {
  char *path = path_in(tmp_dir(), "bench-proof.db");
  char *key = path_in(tmp_dir(), "bench-proof.key");
  unlink(key);
  const workload *w = &W_CHAIN;
  case_engine *e;
  if (case_engine_open(&e) != CASE_OK) die("engine");
  const case_def *d;
  case_store *s = fresh_store(e, path, CASE_STORE_SYNC_NORMAL, &w, &d);
  char id[32];
  double t = now_s();
  for (long i = 0; i < cases; i++) {
    snprintf(id, sizeof id, "c%07ld", i);
    case_instance *c;
    check(e, case_store_create(s, d, id, NULL, NULL, "bench", "IND", T0, &c), "create");
    for (long j = 1; j < per_case; j++) {
      int rc = case_store_fire(s, id, "next", NULL, "bench", "IND", T0 + j, -1, NULL, NULL);
      if (rc != CASE_OK) check(e, rc, "fire");
    }
    case_instance_free(case_instance_find(e, id));
  }
  double t_import = now_s() - t;
  check(e, case_key_generate(e, key, NULL), "key");
  int64_t size = 0;
  char root[65];
  enum { N = 200 };
  t = now_s();
  for (int i = 0; i < N; i++) check(e, case_store_tree_head(s, &size, root), "tree head");
  double us_head = per_call(t, N);
  char *cp1 = NULL, *cp2 = NULL, *rep = NULL, *proof = NULL;
  t = now_s();
  check(e, case_store_checkpoint(s, key, T0, NULL, &cp1), "checkpoint");
  double us_cp = per_call(t, 1);
  /* Fires on one handle: no read for the tree. */
  enum { F = 2000 };
  t = now_s();
  for (int i = 0; i < F; i++) {
    snprintf(id, sizeof id, "c%07ld", (long)(i % cases));
    int rc = case_store_fire(s, id, "next", NULL, "bench", "IND", T0 + per_case + i, -1, NULL, NULL);
    if (rc != CASE_OK) check(e, rc, "fire");
  }
  double us_fire_one = per_call(t, F);
  /* Two handles taking turns: each fire reads the frontier (O(log n) nodes). */
  case_engine *e2;
  case_store *s2;
  if (case_engine_open(&e2) != CASE_OK) die("engine");
  check(e2, case_store_open(e2, path, 0, &s2), "second handle");
  t = now_s();
  for (int i = 0; i < F; i++) {
    case_store *h = i % 2 ? s2 : s;
    snprintf(id, sizeof id, "c%07ld", (long)((i * 7919) % cases));
    int rc = case_store_fire(h, id, "next", NULL, "bench", "IND", T0 + per_case + F + i, -1,
                             NULL, NULL);
    if (rc != CASE_OK) check(i % 2 ? e2 : e, rc, "fire");
  }
  double us_fire_two = per_call(t, F);
  case_store_close(s2);
  case_engine_close(e2);
  t = now_s();
  check(e, case_store_checkpoint(s, key, T0 + 1, cp1, &cp2), "checkpoint --since");
  double us_cp_since = per_call(t, 1);
  t = now_s();
  for (int i = 0; i < N; i++) {
    check(e, case_checkpoint_check(e, cp1, cp2, NULL, &rep), "check-checkpoint");
    case_free(rep);
  }
  double us_check = per_call(t, N);
  t = now_s();
  for (int i = 0; i < N; i++) {
    case_free(proof);
    check(e, case_store_prove(s, 1 + (int64_t)((i * 104729L) % size), size, &proof), "prove");
  }
  double us_prove = per_call(t, N);
  t = now_s();
  for (int i = 0; i < N; i++) {
    check(e, case_checkpoint_check_row(e, cp1, proof, NULL, &rep), "check row");
    case_free(rep);
  }
  double us_check_row = per_call(t, N);
  case_store_close(s);
  case_engine_close(e);
  /* verify: whole, without SQLite's own check, and against the checkpoint. */
  static const char *const opts[] = {"{\"integrity\":\"none\"}", "{\"integrity\":\"quick\"}",
                                     NULL, "checkpoint"};
  double tv[4];
  long long events = 0;
  for (int k = 0; k < 4; k++) {
    if (case_engine_open(&e) != CASE_OK) die("engine");
    check(e, case_store_open(e, path, CASE_STORE_READONLY, &s), "open read-only");
    char *o = NULL;
    if (k == 3) {
      json_t *j = json_pack("{s:s}", "checkpoint", cp1);
      o = json_dumps(j, 0);
      json_decref(j);
    }
    t = now_s();
    int rc = case_store_verify_v2(s, k == 3 ? o : opts[k], &rep);
    tv[k] = now_s() - t;
    if (rc != CASE_OK) die("verify: %s: %.300s", case_errstr(rc), rep ? rep : "");
    const char *p = strstr(rep, "\"events\":");
    if (p) events = atoll(p + 9);
    free(o);
    case_free(rep);
    case_store_close(s);
    case_engine_close(e);
  }
  printf("{\"bench\":\"proof\",\"rows\":%lld,\"import_seconds\":%.1f,\"tree_head_us\":%.1f,"
         "\"checkpoint_us\":%.1f,\"fire_one_handle_us\":%.1f,\"fire_two_handles_us\":%.1f,"
         "\"checkpoint_since_us\":%.1f,\"check_checkpoints_us\":%.1f,\"prove_us\":%.1f,"
         "\"check_row_us\":%.1f,\"verify_no_integrity_s\":%.2f,\"verify_quick_s\":%.2f,"
         "\"verify_s\":%.2f,\"verify_checkpoint_s\":%.2f,\"store_bytes\":%lld,"
         "\"maxrss_kib\":%ld}\n",
         (long long)size, t_import, us_head, us_cp, us_fire_one, us_fire_two, us_cp_since,
         us_check, us_prove, us_check_row, tv[0], tv[1], tv[2], tv[3], store_bytes(path),
         maxrss_kib());
  (void)events;
  case_free(cp1);
  case_free(cp2);
  case_free(proof);
  remove_db(path);
  unlink(key);
  free(path);
  free(key);
  return 0;
}

/* ------------------------------------------------------------------ */

static long arg_long(int argc, char **argv, int i, long dflt) {
  return i < argc ? strtol(argv[i], NULL, 10) : dflt;
}

static void usage(void) {
  fputs("usage: libcase_bench <benchmark> [args]\n"
        "  memory_fire <chain|chain_guard|guards|asylum> [fires [coverage]]\n"
        "  idle_memory <workload> [cases]\n"
        "  durable <workload> <normal|full> [fires]\n"
        "  tick [pending] [due] [batched]\n"
        "  scale [fires] [cases...]\n"
        "  store_size <workload> [cases]\n"
        "  import_verify [cases] [rows_per_case]\n"
        "  proof [cases] [rows_per_case]\n"
        "  store_open [definition versions] [runs]\n"
        "  host [cases] [touches]\n"
        "  reads [cases] [history rows] [keep]\n"
        "  versions\n",
        stderr);
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  const char *b = argv[1];
  if (strcmp(b, "memory_fire") == 0 && argc >= 3)
    return bench_memory_fire(argv[2], arg_long(argc, argv, 3, 1000000),
                             argc >= 5 && strcmp(argv[4], "coverage") == 0);
  if (strcmp(b, "idle_memory") == 0 && argc >= 3)
    return bench_idle_memory(argv[2], arg_long(argc, argv, 3, 10000));
  if (strcmp(b, "durable") == 0 && argc >= 4)
    return bench_durable(argv[2], argv[3], (int)arg_long(argc, argv, 4, 5000));
  if (strcmp(b, "tick") == 0)
    return bench_tick(arg_long(argc, argv, 2, 1000000), arg_long(argc, argv, 3, 10000),
                      argc > 4 && strcmp(argv[4], "batched") == 0);
  if (strcmp(b, "scale") == 0) {
    long sizes[16] = {10000, 100000, 1000000};
    int n = argc > 3 ? argc - 3 : 3;
    if (n > 16) n = 16;
    for (int i = 0; argc > 3 && i < n; i++) sizes[i] = strtol(argv[3 + i], NULL, 10);
    return bench_scale((int)arg_long(argc, argv, 2, 2000), n, sizes);
  }
  if (strcmp(b, "store_size") == 0 && argc >= 3)
    return bench_store_size(argv[2], arg_long(argc, argv, 3, 100000));
  if (strcmp(b, "proof") == 0)
    return bench_proof(arg_long(argc, argv, 2, 10000), arg_long(argc, argv, 3, 100));
  if (strcmp(b, "import_verify") == 0)
    return bench_import_verify(arg_long(argc, argv, 2, 10000), arg_long(argc, argv, 3, 100));
  if (strcmp(b, "store_open") == 0)
    return bench_store_open(arg_long(argc, argv, 2, 10), arg_long(argc, argv, 3, 20));
  if (strcmp(b, "host") == 0)
    return bench_host(arg_long(argc, argv, 2, 1000000), arg_long(argc, argv, 3, 1000000));
  if (strcmp(b, "reads") == 0)
    return bench_reads(arg_long(argc, argv, 2, 1000000), arg_long(argc, argv, 3, 1000),
                       argc > 4 && strcmp(argv[4], "keep") == 0);
  if (strcmp(b, "versions") == 0) {
    printf("{\"libcase\":\"%s\",\"sqlite\":\"%s\"}\n", case_libversion(), sqlite3_libversion());
    return 0;
  }
  usage();
  return 2;
}
