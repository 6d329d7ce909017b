/* Many writers at once on one store (issue 10 §2): 4 processes fire and 2 tick
 * against the same store for a bounded time; then no fire is lost, no timer
 * fired twice, and verify is clean.  A tick worker killed in the middle loses
 * nothing: the next tick fires what it left.  Runs on the backend of
 * $CASE_TEST_STORE (tests/unit/store_uri.h): SQLite, and PostgreSQL (unit.concurrency.pg). */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "libcase/libcase.h"
#include "libcase/store.h"
#include "store_uri.h"

/* 2026-03-02T09:00:00Z */
#define T0 INT64_C(1772442000)

/* Every case counts its fires (n) and its timer expiries (t); the timer runs
 * out an hour of event time after the case entered `open`, and re-enters it. */
static const char *DRUK =
    "workflow: druk\n"
    "version: 1\n"
    "roles: [IND]\n"
    "data:\n"
    "  n: {type: integer, default: 0}\n"
    "  t: {type: integer, default: 0}\n"
    "initial: open\n"
    "states:\n"
    "  open:\n"
    "    after:\n"
    "      - {delay: 1 hour, target: open, actions: [case.t = case.t + 1]}\n"
    "    on:\n"
    "      tel: {roles: [IND], actions: [case.n = case.n + 1]}\n";

enum { CASES = 16, FIRERS = 4, TICKERS = 2, RUN_MS = 3000 };

static char loc[600];

/* What a worker reports at its end, in one write (atomic on a pipe). */
typedef struct report {
  int ticker;
  long ok[CASES]; /* firer: accepted fires per case */
  long n;         /* firer: refused in time order; ticker: timers fired */
} report;
static struct timespec start;

static double elapsed_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - start.tv_sec) * 1e3 + (t.tv_nsec - start.tv_nsec) / 1e6;
}

/* Event time: 1 ms of the run is 10 s (the 3 s run spans about 8 hours). */
static int64_t event_time(void) { return T0 + 60 + (int64_t)(elapsed_ms() * 10.0); }

static int open_store(case_engine **e, case_store **s, int flags) {
  if (case_engine_open(e) != CASE_OK) return CASE_NOMEM;
  int rc = case_store_open(*e, loc, flags, s);
  if (rc != CASE_OK) fprintf(stderr, "open %s: %s\n", loc, case_errmsg(*e));
  return rc;
}

/* A firer: fires `tel` at random cases until the run ends; writes how many fires
 * each case accepted to fd, and the refusals it met (an event time before the
 * case's last one, when a tick moved it on in between) to stderr. */
static int firer(int fd, unsigned seed) {
  case_engine *e;
  case_store *s;
  if (open_store(&e, &s, 0) != CASE_OK) return 2;
  long ok[CASES] = {0};
  long other = 0;
  while (elapsed_ms() < RUN_MS) {
    int i = (int)(rand_r(&seed) % (CASES / 2)); /* the other half only the ticks move */
    char id[16];
    snprintf(id, sizeof id, "c%d", i);
    int rc = case_store_fire(s, id, "tel", NULL, "firer", "IND", event_time(), -1, NULL, NULL);
    if (rc == CASE_OK) {
      ok[i]++;
    } else if (rc == CASE_INVALID && strstr(case_errmsg(e), "processed in time order")) {
      /* Its time was read before another writer moved the case past it (while
       * this one waited for the lock): refused and recorded, not counted. */
      other++;
    } else {
      fprintf(stderr, "firer: %s: %s (%s)\n", id, case_errmsg(e), case_errstr(rc));
      return 3;
    }
  }
  report r = {0, {0}, other};
  memcpy(r.ok, ok, sizeof ok);
  if (write(fd, &r, sizeof r) != (ssize_t)sizeof r) return 4;
  case_store_close(s);
  case_engine_close(e);
  return 0;
}

/* A ticker: ticks to the current event time until the run ends; writes how
 * many timers it fired to fd. */
static int ticker(int fd) {
  case_engine *e;
  case_store *s;
  if (open_store(&e, &s, 0) != CASE_OK) return 2;
  long fired = 0;
  while (elapsed_ms() < RUN_MS) {
    int n = 0;
    int rc = case_store_tick(s, event_time() - 600, &n);
    if (rc != CASE_OK) {
      fprintf(stderr, "ticker: %s (%s)\n", case_errmsg(e), case_errstr(rc));
      return 3;
    }
    fired += n;
    struct timespec nap = {0, 5 * 1000000L};
    nanosleep(&nap, NULL);
  }
  report r = {1, {0}, fired};
  if (write(fd, &r, sizeof r) != (ssize_t)sizeof r) return 4;
  case_store_close(s);
  case_engine_close(e);
  return 0;
}

static long long count(const char *sql) {
  long long n = ts_count(loc, sql);
  if (n < 0) fail_msg("count failed: %s", sql);
  return n;
}

static int setup(void **state) {
  (void)state;
  ts_location(loc, sizeof loc, "test_conc");
  case_engine *e;
  case_store *s;
  assert_int_equal(open_store(&e, &s, CASE_STORE_CREATE), CASE_OK);
  const case_def *d;
  assert_int_equal(case_def_load_string(e, DRUK, strlen(DRUK), "druk.yaml", &d), CASE_OK);
  assert_int_equal(case_store_add_def(s, d), CASE_OK);
  for (int i = 0; i < CASES; i++) {
    char id[16];
    snprintf(id, sizeof id, "c%d", i);
    assert_int_equal(case_store_create(s, d, id, NULL, NULL, "t", "IND", T0, NULL), CASE_OK);
  }
  case_store_close(s);
  case_engine_close(e);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  ts_remove(loc);
  return 0;
}

static void test_fire_and_tick_at_once(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  clock_gettime(CLOCK_MONOTONIC, &start);
  pid_t kids[FIRERS + TICKERS];
  for (int k = 0; k < FIRERS + TICKERS; k++) {
    kids[k] = fork();
    assert_true(kids[k] >= 0);
    if (kids[k] == 0) {
      close(p[0]);
      _exit(k < FIRERS ? firer(p[1], 7919u * (unsigned)(k + 1)) : ticker(p[1]));
    }
  }
  close(p[1]);
  for (int k = 0; k < FIRERS + TICKERS; k++) {
    int status;
    assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      fail_msg("worker %d ended with status %d", k, status);
  }
  long fires[CASES] = {0}, fired_by_ticks = 0, late = 0;
  int tickers = 0;
  for (int k = 0; k < FIRERS + TICKERS; k++) {
    report r;
    assert_int_equal(read(p[0], &r, sizeof r), (ssize_t)sizeof r);
    if (r.ticker) {
      tickers++;
      fired_by_ticks += r.n;
      continue;
    }
    for (int i = 0; i < CASES; i++) fires[i] += r.ok[i];
    late += r.n;
  }
  assert_int_equal(tickers, TICKERS);
  close(p[0]);

  case_engine *e;
  case_store *s;
  assert_int_equal(open_store(&e, &s, CASE_STORE_READONLY), CASE_OK);
  long total = 0;
  for (int i = 0; i < CASES; i++) {
    char id[16], sql[200];
    snprintf(id, sizeof id, "c%d", i);
    case_instance *c;
    assert_int_equal(case_store_get(s, id, &c), CASE_OK);
    char *data = NULL;
    assert_int_equal(case_instance_data(c, &data), CASE_OK);
    /* No lost update: every accepted fire is in the case's count. */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM journal WHERE case_id='%s' AND actor='timer'",
             id);
    long long timers = count(sql);
    char want[96];
    snprintf(want, sizeof want, "{\"n\":%ld,\"t\":%lld}", fires[i], timers);
    if (strcmp(data, want) != 0) fail_msg("case %s: data %s, expected %s", id, data, want);
    case_free(data);
    total += fires[i];
  }
  /* No timer fired twice: one timer row per (case, due time). */
  assert_int_equal(count("SELECT count(*) FROM (SELECT case_id, time FROM journal WHERE "
                         "actor='timer' GROUP BY case_id, time HAVING count(*) > 1) d"),
                   0);
  long long timer_rows = count("SELECT count(*) FROM journal WHERE actor='timer'");
  /* The ticks fired those of the cases no one fires (and some of the others: a
   * fire runs the terms due before it first). */
  assert_true(fired_by_ticks <= timer_rows);
  assert_true(fired_by_ticks >= count("SELECT count(*) FROM journal WHERE actor='timer' AND "
                                      "case_id IN ('c8','c9','c10','c11','c12','c13','c14','c15')"));
  /* (How many depends on how often the tick workers got the CPU: only that they
   * fired some is certain.) */
  assert_true(count("SELECT count(*) FROM journal WHERE actor='timer' AND case_id IN "
                    "('c8','c9','c10','c11','c12','c13','c14','c15')") > 0);
  assert_true(timer_rows > 0);
  assert_int_equal(count("SELECT count(*) FROM journal WHERE actor='firer'"), total);
  assert_int_equal(count("SELECT count(*) FROM refused WHERE actor='firer'"), late);
  assert_true(total > 3 * late); /* the run mostly fired */
  char *rep = NULL;
  int rc = case_store_verify(s, &rep);
  if (rc != CASE_OK) fail_msg("verify: %s", rep ? rep : case_errmsg(e));
  case_free(rep);
  print_message("%s: %ld fires (%ld refused: their time was passed while they waited) and "
                "%lld timer expiries (%ld by ticks) in %d ms by %d firers and %d tick workers; "
                "verify clean\n",
                ts_backend(), total, late, timer_rows, fired_by_ticks, RUN_MS, FIRERS, TICKERS);
  case_store_close(s);
  case_engine_close(e);
}

/* A tick worker killed while it ticks: what it committed stays, what it had
 * not committed is fired by the next tick, nothing twice. */
static void test_tick_worker_killed(void **state) {
  (void)state;
  clock_gettime(CLOCK_MONOTONIC, &start);
  /* Many timers due: ten days of event time after creation, 240 per case. */
  int64_t now = T0 + 10 * 86400;
  for (int round = 0; round < 3; round++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      case_engine *e;
      case_store *s;
      if (open_store(&e, &s, 0) != CASE_OK) _exit(2);
      int n = 0;
      case_store_tick(s, now, &n);
      _exit(0);
    }
    struct timespec nap = {0, (long)(30 + 60 * round) * 1000000L};
    nanosleep(&nap, NULL);
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
  }
  long long before = count("SELECT count(*) FROM journal WHERE actor='timer'");
  case_engine *e;
  case_store *s;
  assert_int_equal(open_store(&e, &s, 0), CASE_OK);
  int n = 0;
  int rc = case_store_tick(s, now, &n);
  if (rc != CASE_OK) fail_msg("tick: %s", case_errmsg(e));
  long long after = count("SELECT count(*) FROM journal WHERE actor='timer'");
  assert_int_equal(after, before + n);
  /* Every case ran its 240 expiries of those days, once each. */
  assert_int_equal(after, 240 * CASES);
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM timers WHERE fired=0 AND due<=%lld",
           (long long)now);
  assert_int_equal(count(sql), 0);
  assert_int_equal(count("SELECT count(*) FROM (SELECT case_id, time FROM journal WHERE "
                         "actor='timer' GROUP BY case_id, time HAVING count(*) > 1) d"),
                   0);
  char *rep = NULL;
  rc = case_store_verify(s, &rep);
  if (rc != CASE_OK) fail_msg("verify: %s", rep ? rep : case_errmsg(e));
  case_free(rep);
  print_message("%s: killed tick workers had fired %lld of %d expiries; the next tick fired "
                "the other %d\n", ts_backend(), before, 240 * CASES, n);
  case_store_close(s);
  case_engine_close(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_fire_and_tick_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tick_worker_killed, setup, teardown),
  };
  return cmocka_run_group_tests_name(ts_backend(), tests, NULL, NULL);
}
