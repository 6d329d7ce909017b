/* Several consumers drain the outbox at once (issue 10 §3): a writer process
 * fires events that emit notifications while two named consumers, each run by
 * two processes at once, claim, deliver and mark them done.  Every consumer must
 * get every notification exactly once (no row handed to two processes of one
 * consumer, none skipped), whatever the interleaving.  Runs on the backend of
 * $CASE_TEST_STORE (tests/unit/store_uri.h): SQLite, and PostgreSQL. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <setjmp.h>
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
#include <jansson.h>

#include "libcase/libcase.h"
#include "libcase/store.h"
#include "store_uri.h"

#define T0 INT64_C(1772442000)

static const char *MELD =
    "workflow: meld\n"
    "version: 1\n"
    "roles: [IND]\n"
    "data:\n"
    "  n: {type: integer, default: 0}\n"
    "initial: open\n"
    "states:\n"
    "  open:\n"
    "    on:\n"
    "      tel: {roles: [IND], actions: [\"case.n = case.n + 1\", \"emit('geteld', {n = case.n})\"]}\n";

enum { CASES = 4, FIRES = 300, CONSUMERS = 2, PER_CONSUMER = 2, MAXID = FIRES + 16 };

static char loc[600];

/* One line a consumer process writes per row it got: consumer index and id. */
typedef struct got {
  int consumer;
  long long id;
} got;

static int open_store(case_engine **e, case_store **s, int flags) {
  if (case_engine_open(e) != CASE_OK) return CASE_NOMEM;
  int rc = case_store_open(*e, loc, flags, s);
  if (rc != CASE_OK) fprintf(stderr, "open %s: %s\n", loc, case_errmsg(*e));
  return rc;
}

static int writer(void) {
  case_engine *e;
  case_store *s;
  if (open_store(&e, &s, 0) != CASE_OK) return 2;
  for (int i = 0; i < FIRES; i++) {
    char id[16];
    snprintf(id, sizeof id, "m%d", i % CASES);
    int rc = case_store_fire(s, id, "tel", NULL, "w", "IND", T0 + 60 + i, -1, NULL, NULL);
    if (rc != CASE_OK) {
      fprintf(stderr, "writer: %s (%s)\n", case_errmsg(e), case_errstr(rc));
      return 3;
    }
  }
  case_store_close(s);
  case_engine_close(e);
  return 0;
}

/* Claims a few rows at a time until the writer is done (`flag` exists) and a
 * claim comes back empty; each row to fd, then marked done. */
static int consumer(int fd, int which, const char *flag) {
  case_engine *e;
  case_store *s;
  if (open_store(&e, &s, 0) != CASE_OK) return 2;
  char name[32];
  snprintf(name, sizeof name, "consumer-%d", which);
  for (;;) {
    int finished = access(flag, F_OK) == 0;
    char *json = NULL;
    int rc = case_store_outbox_claim(s, name, 3, 600, &json);
    if (rc != CASE_OK) {
      fprintf(stderr, "%s: %s (%s)\n", name, case_errmsg(e), case_errstr(rc));
      return 3;
    }
    json_t *a = json_loads(json, 0, NULL);
    case_free(json);
    if (!a) return 4;
    size_t n = json_array_size(a);
    for (size_t i = 0; i < n; i++) {
      got g = {which, (long long)json_integer_value(json_object_get(json_array_get(a, i), "id"))};
      if (write(fd, &g, sizeof g) != (ssize_t)sizeof g) return 5;
      if (case_store_outbox_done(s, name, g.id) != CASE_OK) {
        fprintf(stderr, "%s: done %lld: %s\n", name, g.id, case_errmsg(e));
        return 6;
      }
    }
    json_decref(a);
    if (n == 0) {
      if (finished) break;
      struct timespec nap = {0, 2 * 1000000L};
      nanosleep(&nap, NULL);
    }
  }
  case_store_close(s);
  case_engine_close(e);
  return 0;
}

static int setup(void **state) {
  (void)state;
  ts_location(loc, sizeof loc, "test_outbox");
  case_engine *e;
  case_store *s;
  assert_int_equal(open_store(&e, &s, CASE_STORE_CREATE), CASE_OK);
  const case_def *d;
  assert_int_equal(case_def_load_string(e, MELD, strlen(MELD), "meld.yaml", &d), CASE_OK);
  assert_int_equal(case_store_add_def(s, d), CASE_OK);
  for (int i = 0; i < CASES; i++) {
    char id[16];
    snprintf(id, sizeof id, "m%d", i);
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

static void test_consumers_at_once(void **state) {
  (void)state;
  char flag[64];
  snprintf(flag, sizeof flag, "/tmp/test_outbox_done_%ld", (long)getpid());
  unlink(flag);
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t kids[1 + CONSUMERS * PER_CONSUMER];
  int nk = 0;
  for (int c = 0; c < CONSUMERS * PER_CONSUMER; c++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(p[0]);
      _exit(consumer(p[1], c % CONSUMERS, flag));
    }
    kids[nk++] = pid;
  }
  close(p[1]);
  pid_t w = fork();
  assert_true(w >= 0);
  if (w == 0) _exit(writer());
  int status;
  assert_int_equal(waitpid(w, &status, 0), w);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  FILE *f = fopen(flag, "w");
  assert_non_null(f);
  fclose(f);
  static int seen[CONSUMERS][MAXID];
  memset(seen, 0, sizeof seen);
  got g;
  long total = 0;
  while (read(p[0], &g, sizeof g) == (ssize_t)sizeof g) {
    assert_true(g.consumer >= 0 && g.consumer < CONSUMERS);
    assert_true(g.id >= 1 && g.id < MAXID);
    if (seen[g.consumer][g.id]++)
      fail_msg("outbox row %lld handed to consumer-%d twice", g.id, g.consumer);
    total++;
  }
  close(p[0]);
  for (int k = 0; k < nk; k++) {
    assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      fail_msg("consumer process %d ended with status %d", k, status);
  }
  unlink(flag);
  long long rows = ts_count(loc, "SELECT count(*) FROM outbox");
  assert_int_equal(rows, FIRES);
  for (int c = 0; c < CONSUMERS; c++)
    for (long long id = 1; id <= rows; id++)
      if (seen[c][id] != 1) fail_msg("consumer-%d got outbox row %lld %d times", c, id, seen[c][id]);
  assert_int_equal(total, CONSUMERS * FIRES);
  /* Everything done is folded into the cursors: nothing stays in flight. */
  assert_int_equal(ts_count(loc, "SELECT count(*) FROM outbox_claims"), 0);
  assert_int_equal(ts_count(loc, "SELECT min(upto) FROM outbox_consumers"), FIRES);
  /* The unnamed outbox is another consumer: untouched. */
  assert_int_equal(ts_count(loc, "SELECT count(*) FROM outbox WHERE delivered IS NULL"), FIRES);
  printf("%d consumers x %d processes: %ld rows handed out, each once per consumer (%s)\n",
         CONSUMERS, PER_CONSUMER, total, ts_backend());
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_consumers_at_once, setup, teardown),
  };
  return cmocka_run_group_tests_name(ts_backend(), tests, NULL, NULL);
}
