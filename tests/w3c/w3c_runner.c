/*
 * w3c_runner — the W3C SCXML conformance tests (IRP, Lua datamodel) on libcase.
 *
 *   w3c_runner [-v] [-o TEST] DIR EXPECTED_FAILURES
 *
 * Runs every runnable test of DIR (testNNN.scxml and testNNNx.scxml; the
 * child documents *sub1.scxml are loaded first, as a host loads the
 * definitions its cases may invoke, and the encoding tests test-enc-* are not
 * tests of their own): a fresh engine per test, the document loaded with
 * case_def_load_scxml_file(), one case created and run to completion with
 * case_engine_tick(), the clock advanced to the next due timer (delayed sends
 * included) whenever nothing is due, until the case is done or nothing is
 * pending.  A test passes when its top-level final state `pass` is active.
 *
 * EXPECTED_FAILURES lists the tests that fail, one per line as
 * "testNNN  reason" ('#' starts a comment).  The run succeeds (exit 0) when
 * exactly those fail: an unlisted failure fails the run, and so does a listed
 * test that passes (the list may only shrink) or that does not exist.  A
 * missing DIR fails the run: the tests are never skipped.  Prints one line
 * per unexpected result and, at the end, "N passed, M failed".
 *
 * The runner is the host: it carries the "basichttp" notifications of the
 * Basic HTTP Event I/O Processor (libcase writes and reads the HTTP requests,
 * the host moves them) back to the case whose URL they are for, with
 * case_instance_fire_http(), as an HTTP server in front of libcase would.
 *
 * A test whose document the recommendation says a processor must reject
 * (test301: a <script src> that cannot be read) passes when the load fails.
 *
 * The instruction budget is raised to 10^8 (the sandbox's worst-case price
 * of string.find on a whole HTTP request is above the default 10^6).
 *
 * -v prints every test's result and the cases' <log> output; -o TEST runs one
 * test only (no list check).
 */
#include "libcase/libcase.h"

#include <jansson.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1767258000       /* 2026-01-01T09:00:00Z */
#define HORIZON (24 * 3600) /* a test that needs a day of simulated time is hung */
#define MAX_ROUNDS 100000

static int verbose;

#define HTTP_BASE "http://localhost:8080/w3c/"

/* Tests whose document must be rejected at load (W3C IRP: "the processor
 * should reject this document"). */
static const char *const must_reject[] = {"test301", NULL};

/* BasicHTTP requests the cases sent, to carry after the tick. */
static json_t *outgoing;

static void on_notify(void *ud, const case_instance *c, const char *name, const char *payload) {
  (void)ud;
  (void)c;
  if (strcmp(name, "basichttp") != 0) return;
  json_t *p = json_loads(payload, 0, NULL);
  if (p) json_array_append_new(outgoing, p);
}

/* Hands each request to the case at its URL; 1 if any was carried. */
static int carry_http(case_engine *e, int64_t now) {
  int any = 0;
  while (json_array_size(outgoing) > 0) {
    json_t *p = json_incref(json_array_get(outgoing, 0));
    json_array_remove(outgoing, 0);
    const char *target = json_string_value(json_object_get(p, "target"));
    const char *req = json_string_value(json_object_get(p, "request"));
    if (target && req && strncmp(target, HTTP_BASE, strlen(HTTP_BASE)) == 0) {
      case_instance *c = case_instance_find(e, target + strlen(HTTP_BASE));
      if (c && !case_instance_done(c)) {
        if (verbose) printf("    http: %s\n", req);
        if (case_instance_fire_http(c, req, strlen(req), now) != CASE_OK && verbose)
          printf("    http refused: %s\n", case_errmsg(e));
        any = 1;
      }
    }
    json_decref(p);
  }
  return any;
}

typedef struct expect {
  char name[64];
  char reason[512];
  int seen;
} expect;

static void on_log(void *ud, const case_instance *c, const char *label, const char *text) {
  (void)ud;
  if (verbose) printf("    [%s] %s: %s\n", case_instance_id(c), label, text);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Runs one test; returns 1 pass, 0 fail; *why says why it failed. */
static int run_one(const char *dir, const char *file, char **subs, int nsubs, char *why,
                   size_t whylen) {
  case_engine *e = NULL;
  if (case_engine_open(&e) != CASE_OK) {
    snprintf(why, whylen, "no engine");
    return 0;
  }
  case_engine_set_log(e, on_log, NULL);
  case_engine_set_notify(e, on_notify, NULL);
  /* The sandbox prices a Lua pattern by its worst case (length to the power
   * of its quantifiers): test520's string.find over a whole HTTP request is
   * priced at millions of instructions it never runs.  The tests are no
   * runaway scripts; a host running such guards raises the budget too. */
  case_engine_limit(e, CASE_LIMIT_INSTRUCTIONS, 100000000);
  case_engine_set_http_base(e, HTTP_BASE);
  json_array_clear(outgoing);
  char path[4096];
  for (int i = 0; i < nsubs; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, subs[i]);
    case_def_load_scxml_file(e, path, NULL); /* a child that does not load fails its test */
  }
  snprintf(path, sizeof path, "%s/%s", dir, file);
  const case_def *d = NULL;
  int rc = case_def_load_scxml_file(e, path, &d);
  for (int i = 0; must_reject[i]; i++)
    if (strncmp(file, must_reject[i], strlen(must_reject[i])) == 0 &&
        file[strlen(must_reject[i])] == '.') {
      int ok = rc != CASE_OK;
      snprintf(why, whylen, ok ? "rejected: %s" : "loaded a document it must reject",
               case_errmsg(e));
      case_engine_close(e);
      return ok;
    }
  if (rc != CASE_OK) {
    snprintf(why, whylen, "does not load: %s", case_errmsg(e));
    case_engine_close(e);
    return 0;
  }
  if (verbose)
    for (int i = 0; i < case_def_warning_count(d); i++)
      printf("    warning: %s\n", case_def_warning(d, i));
  case_instance *c = NULL;
  int64_t now = T0;
  rc = case_instance_create(e, d, "test", NULL, NULL, now, &c);
  if (rc != CASE_OK) {
    snprintf(why, whylen, "does not start: %s", case_errmsg(e));
    case_engine_close(e);
    return 0;
  }
  why[0] = '\0';
  for (int round = 0; round < MAX_ROUNDS && !case_instance_done(c); round++) {
    rc = case_engine_tick(e, now, NULL);
    while (rc == CASE_OK && carry_http(e, now)) rc = case_engine_tick(e, now, NULL);
    if (rc != CASE_OK) {
      snprintf(why, whylen, "tick at +%llds: %s", (long long)(now - T0), case_errmsg(e));
      break;
    }
    if (case_instance_done(c)) break;
    int64_t due;
    if (case_engine_next_due(e, &due) != CASE_OK) break; /* nothing pending: stuck */
    if (due <= now) due = now + 1;
    if (due - T0 > HORIZON) break;
    now = due;
  }
  int pass = case_instance_done(c) && case_instance_in(c, "pass");
  if (!pass && !why[0]) {
    char *cfg = NULL;
    case_instance_configuration(c, &cfg);
    snprintf(why, whylen, "%s in %s", case_instance_done(c) ? "ended" : "stopped",
             cfg ? cfg : "?");
    case_free(cfg);
  }
  case_engine_close(e);
  return pass;
}

static int load_expected(const char *path, expect **out, int *n) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "w3c: cannot read the expected failures %s\n", path);
    return -1;
  }
  char line[1024];
  int cap = 0;
  *out = NULL;
  *n = 0;
  while (fgets(line, sizeof line, f)) {
    char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '#' || *p == '\n' || *p == '\0') continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 32;
      expect *v = realloc(*out, (size_t)cap * sizeof *v);
      if (!v) {
        fclose(f);
        return -1;
      }
      *out = v;
    }
    expect *x = &(*out)[(*n)++];
    memset(x, 0, sizeof *x);
    size_t k = strcspn(p, " \t\n");
    if (k >= sizeof x->name) k = sizeof x->name - 1;
    memcpy(x->name, p, k);
    p += k;
    while (*p == ' ' || *p == '\t') p++;
    snprintf(x->reason, sizeof x->reason, "%s", p);
    x->reason[strcspn(x->reason, "\n")] = '\0';
    if (!x->reason[0]) {
      fprintf(stderr, "w3c: %s: %s is listed without a reason\n", path, x->name);
      fclose(f);
      return -1;
    }
  }
  fclose(f);
  return 0;
}

int main(int argc, char **argv) {
  const char *only = NULL;
  int a = 1;
  for (; a < argc && argv[a][0] == '-'; a++) {
    if (strcmp(argv[a], "-v") == 0) verbose = 1;
    else if (strcmp(argv[a], "-o") == 0 && a + 1 < argc) only = argv[++a];
    else {
      fprintf(stderr, "usage: w3c_runner [-v] [-o TEST] DIR EXPECTED_FAILURES\n");
      return 2;
    }
  }
  if (argc - a != 2) {
    fprintf(stderr, "usage: w3c_runner [-v] [-o TEST] DIR EXPECTED_FAILURES\n");
    return 2;
  }
  const char *dir = argv[a], *list = argv[a + 1];
  outgoing = json_array();
  DIR *dh = opendir(dir);
  if (!dh) {
    fprintf(stderr, "w3c: the conformance tests are not at %s (set CASE_W3C_DIR to the "
            "w3c-lua folder of /work/shared/scxml): FAILED, not skipped\n", dir);
    return 1;
  }
  char **tests = NULL, **subs = NULL;
  int ntests = 0, nsubs = 0, cap = 0, capsub = 0;
  struct dirent *de;
  while ((de = readdir(dh))) {
    const char *n = de->d_name;
    if (strncmp(n, "test", 4) != 0 || !ends_with(n, ".scxml") || strncmp(n, "test-", 5) == 0)
      continue;
    int sub = ends_with(n, "sub1.scxml");
    char ***v = sub ? &subs : &tests;
    int *k = sub ? &nsubs : &ntests, *c = sub ? &capsub : &cap;
    if (*k == *c) {
      *c = *c ? 2 * *c : 256;
      char **p = realloc(*v, (size_t)*c * sizeof *p);
      if (!p) return 1;
      *v = p;
    }
    (*v)[(*k)++] = strdup(n);
  }
  closedir(dh);
  qsort(tests, (size_t)ntests, sizeof *tests, cmp_str);
  qsort(subs, (size_t)nsubs, sizeof *subs, cmp_str);
  expect *ex = NULL;
  int nex = 0;
  if (!only && load_expected(list, &ex, &nex) != 0) return 1;

  int passed = 0, failed = 0, bad = 0;
  for (int i = 0; i < ntests; i++) {
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(strlen(tests[i]) - 6), tests[i]);
    if (only && strcmp(only, name) != 0) continue;
    char why[1024];
    int ok = run_one(dir, tests[i], subs, nsubs, why, sizeof why);
    expect *x = NULL;
    for (int k = 0; k < nex; k++)
      if (strcmp(ex[k].name, name) == 0) x = &ex[k];
    if (x) x->seen = 1;
    if (ok) passed++;
    else failed++;
    if (ok && x) {
      printf("UNEXPECTED PASS %s (listed: %s): take it off %s\n", name, x->reason, list);
      bad++;
    } else if (!ok && !x && !only) {
      printf("FAIL %s: %s\n", name, why);
      bad++;
    } else if (verbose || only) {
      printf("%s %s%s%s\n", ok ? "pass" : "fail", name, ok ? "" : ": ", ok ? "" : why);
    }
  }
  for (int k = 0; k < nex; k++)
    if (!ex[k].seen) {
      printf("LISTED BUT MISSING %s: no such test in %s\n", ex[k].name, dir);
      bad++;
    }
  printf("%d passed, %d failed\n", passed, failed);
  if (!only && ntests != 183) {
    printf("expected the 183 runnable tests of the uSCXML Lua folder, found %d\n", ntests);
    bad++;
  }
  for (int i = 0; i < ntests; i++) free(tests[i]);
  for (int i = 0; i < nsubs; i++) free(subs[i]);
  free(tests);
  free(subs);
  free(ex);
  json_decref(outgoing);
  return bad ? 1 : 0;
}
