/*
 * casectl test: process tests (scenario files), what they leave untested
 * (--coverage) and scenario skeletons that reach it (--skeleton, --skeletons).
 * docs/process-tests.md and docs/casectl.md describe the output.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "casectl.h"

enum { T_VERBOSE = 256, T_COVERAGE, T_SKELETON, T_SKELETONS, T_START, T_LOCATION };

static struct {
  int verbose, coverage;
  const char *skeleton;  /* FILE:LINE[:COL] */
  const char *skeletons; /* DIR */
  const char *location;
  int have_start;
  int64_t start;
} to;

static const struct option test_options[] = {
    {"verbose", no_argument, NULL, T_VERBOSE},
    {"coverage", no_argument, NULL, T_COVERAGE},
    {"skeleton", required_argument, NULL, T_SKELETON},
    {"skeletons", required_argument, NULL, T_SKELETONS},
    {"start", required_argument, NULL, T_START},
    {"location", required_argument, NULL, T_LOCATION},
    {NULL, 0, NULL, 0},
};

static int test_option(ctx *c, int code, const char *arg) {
  switch (code) {
  case T_VERBOSE: to.verbose = 1; return EX_OK;
  case T_COVERAGE: to.coverage = 1; return EX_OK;
  case T_SKELETON: to.skeleton = arg; return EX_OK;
  case T_SKELETONS: to.skeletons = arg; return EX_OK;
  case T_LOCATION: to.location = arg; return EX_OK;
  case T_START:
    if (parse_time(arg, &to.start) != 0)
      return usage_error(c, "--start: '%s' is not a date or time (expected YYYY-MM-DD or "
                            "YYYY-MM-DDTHH:MM)", arg);
    to.have_start = 1;
    return EX_OK;
  default: return usage_error(c, "unexpected option");
  }
}

/* The path of `file` relative to directory `dir` (both made absolute), or a
 * copy of the absolute path when that fails.  Caller frees. */
static char *relative_to(const char *dir, const char *file) {
  char *d = realpath(dir, NULL), *f = realpath(file, NULL);
  char *out = NULL;
  if (d && f) {
    /* common: where the longest run of whole components both share ends. */
    size_t common = 0, i = 0;
    for (; d[i] && d[i] == f[i]; i++)
      if (d[i] == '/') common = i;
    if (!d[i] && f[i] == '/') common = i;
    int ups = 0; /* one ".." per component of d after the common part */
    if (strcmp(d, "/") != 0)
      for (const char *p = d + common; *p; p++) ups += *p == '/';
    const char *rest = f + common + 1;
    out = malloc((size_t)ups * 3 + strlen(rest) + 1);
    if (out) {
      out[0] = '\0';
      for (int k = 0; k < ups; k++) strcat(out, "../");
      strcat(out, rest);
    }
  }
  if (!out) out = f ? strdup(f) : strdup(file);
  free(d);
  free(f);
  return out;
}

static int same_file(const char *a, const char *b) {
  char *x = realpath(a, NULL), *y = realpath(b, NULL);
  int same = x && y && strcmp(x, y) == 0;
  free(x);
  free(y);
  return same;
}

/* When a skeleton's case starts: --start, else the day the version comes
 * into force, else Monday 5 January 2026; at 10:00 local time. */
static int64_t skeleton_start(const case_def *d) {
  if (to.have_start) return to.start;
  const char *f = case_def_in_force_from(d);
  int64_t t;
  if (f && *f && parse_time(f, &t) == 0) return t;
  parse_time("2026-01-05", &t);
  return t;
}

/* One skeleton: printed (dir NULL) or written into dir.  Adds its record to out. */
static int one_skeleton(ctx *c, const json_t *def, int line, int col, const char *dir,
                        json_t *out, int *written) {
  const char *wf = json_string_value(json_object_get(def, "workflow"));
  int version = (int)json_integer_value(json_object_get(def, "version"));
  const char *file = json_string_value(json_object_get(def, "file"));
  const case_def *d = case_def_find(c->e, wf, version);
  if (!d) return fail(c, EX_NOTFOUND, "workflow '%s' version %d is not loaded", wf, version);
  int ex = EX_OK;
  char *path = NULL, *wpath = NULL;
  if (dir) {
    wpath = relative_to(dir, file);
    char name[PATH_MAX];
    snprintf(name, sizeof name, "%s/%s-v%d-%d-%d.yaml", dir, wf, version, line, col);
    path = strdup(name);
  }
  char *yaml = NULL;
  int rc = case_coverage_skeleton(c->e, d, line, col, dir ? wpath : file, to.location,
                                  skeleton_start(d), &yaml);
  json_t *rec = json_pack("{s:s, s:i, s:i, s:i}", "workflow", wf, "version", version, "line", line,
                          "column", col);
  if (rc != CASE_OK) {
    json_object_set_new(rec, "error", json_string(case_errname(rc)));
    json_object_set_new(rec, "message", json_string(case_errmsg(c->e)));
    if (!c->json) fprintf(stderr, "%s\n", case_errmsg(c->e));
    ex = rc_exit(rc);
  } else if (dir) {
    FILE *f = fopen(path, "w");
    if (!f || fputs(yaml, f) == EOF || fclose(f) != 0) {
      ex = fail(c, EX_STORE, "cannot write %s: %s", path, strerror(errno));
    } else {
      (*written)++;
      json_object_set_new(rec, "file", json_string(path));
      if (!c->json && !c->quiet) printf("wrote %s\n", path);
    }
  } else {
    json_object_set_new(rec, "yaml", json_string(yaml));
    if (!c->json) fputs(yaml, stdout);
  }
  json_array_append_new(out, rec);
  case_free(yaml);
  free(path);
  free(wpath);
  return ex;
}

/* --skeleton FILE:LINE[:COL] */
static int skeleton_at(ctx *c, const json_t *cov, json_t *out) {
  const char *spec = to.skeleton;
  const char *colon = strrchr(spec, ':');
  char *end;
  long a = -1, b = 0;
  size_t flen = 0;
  if (colon) {
    a = strtol(colon + 1, &end, 10);
    if (*end || a < 1) a = -1;
    flen = (size_t)(colon - spec);
    const char *c2 = NULL;
    for (const char *p = spec; p < spec + flen; p++)
      if (*p == ':') c2 = p;
    if (c2 && a > 0) {
      char *e2;
      long l = strtol(c2 + 1, &e2, 10);
      if (e2 == colon && l > 0) {
        b = a;
        a = l;
        flen = (size_t)(c2 - spec);
      }
    }
  }
  if (a < 1 || flen == 0)
    return usage_error(c, "--skeleton: '%s' (expected FILE:LINE or FILE:LINE:COLUMN, as the "
                          "coverage report prints them)", spec);
  char *file = strndup(spec, flen);
  size_t i;
  json_t *def, *hit = NULL;
  json_array_foreach(json_object_get(cov, "definitions"), i, def) {
    if (same_file(file, json_string_value(json_object_get(def, "file")))) hit = def;
  }
  int ex;
  if (!hit) {
    ex = fail(c, EX_NOTFOUND, "--skeleton: '%s' is not the file of a workflow the scenarios "
                              "loaded", file);
  } else {
    int written = 0;
    ex = one_skeleton(c, hit, (int)a, (int)b, NULL, out, &written);
  }
  free(file);
  return ex;
}

/* --skeletons DIR: one per untested transition. */
static int skeletons_into(ctx *c, const json_t *cov, json_t *out) {
  struct stat sb;
  if (stat(to.skeletons, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return fail(c, EX_NOTFOUND, "--skeletons: '%s' is not a directory", to.skeletons);
  size_t i, j;
  json_t *def, *t;
  int written = 0, missed = 0, ex = EX_OK;
  json_array_foreach(json_object_get(cov, "definitions"), i, def) {
    json_array_foreach(json_object_get(json_object_get(def, "transitions"), "untested"), j, t) {
      int x = one_skeleton(c, def, (int)json_integer_value(json_object_get(t, "line")),
                           (int)json_integer_value(json_object_get(t, "column")), to.skeletons,
                           out, &written);
      if (x == EX_NOTFOUND) missed++; /* no event path: reported, not an error */
      else if (x != EX_OK && ex == EX_OK) ex = x;
    }
  }
  if (!c->json && !c->quiet)
    printf("%d skeleton(s) written to %s; %d untested transition(s) no event path reaches\n",
           written, to.skeletons, missed);
  return ex;
}

static int run_test(ctx *c, int argc, char **argv) {
  if (argc < 1) return usage_error(c, "give one or more scenario files");
  int ex = ctx_engine(c);
  if (ex != EX_OK) return ex;
  int want_cov = to.coverage || to.skeleton || to.skeletons;
  case_coverage *cov = NULL;
  if (want_cov && case_coverage_open(&cov) != CASE_OK) return fail(c, EX_STORE, "out of memory");
  if (cov && case_engine_set_coverage(c->e, cov) != CASE_OK) {
    case_coverage_close(cov);
    return fail_engine(c, case_errcode(c->e), "test --coverage");
  }
  int failing = 0, errors = 0;
  json_t *out = json_array();
  for (int i = 0; i < argc; i++) {
    int failures = 0;
    char *report = NULL;
    int rc = case_scenario_run_file(c->e, argv[i], &failures, &report);
    if (rc != CASE_OK) {
      fprintf(stderr, "%s\n", case_errmsg(c->e));
      errors++;
      int fx = file_exit(argv[i], rc);
      if (ex == EX_OK || fx > ex) ex = fx;
      json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "file", argv[i], "error",
                                           case_errstr(rc), "message", case_errmsg(c->e)));
      continue;
    }
    if (failures) failing++;
    if (!c->json && (failures || to.verbose || !c->quiet)) {
      if (failures) fputs(report ? report : "", stderr);
      else if (!c->quiet) fputs(report ? report : "", stdout);
    }
    json_array_append_new(out, json_pack("{s:s, s:i, s:s}", "file", argv[i], "failures", failures,
                                         "report", report ? report : ""));
    case_free(report);
  }
  if (!c->json && !c->quiet)
    printf("%d scenario file(s): %d failing, %d could not run\n", argc, failing, errors);
  if (!want_cov) {
    if (c->json) print_json(out);
    else json_decref(out);
    if (ex != EX_OK) return ex;
    return failing ? EX_REFUSED : EX_OK;
  }
  char *text = NULL, *plain = NULL;
  json_t *report = NULL;
  int rc = case_coverage_report(cov, CASE_COVERAGE_JSON, &text);
  if (rc == CASE_OK) report = json_loads(text, 0, NULL);
  if (rc == CASE_OK && to.coverage && !c->json) rc = case_coverage_report(cov, CASE_COVERAGE_TEXT, &plain);
  case_free(text);
  case_coverage_close(cov);
  if (!report || rc != CASE_OK) {
    json_decref(out);
    json_decref(report);
    case_free(plain);
    return fail(c, EX_STORE, "test --coverage: %s", case_errstr(rc == CASE_OK ? CASE_NOMEM : rc));
  }
  if (plain) printf("\n%s", plain);
  case_free(plain);
  json_t *covj = report;
  json_t *skel = json_array();
  int sx = EX_OK;
  if (to.skeleton) sx = skeleton_at(c, covj, skel);
  if (to.skeletons && sx == EX_OK) sx = skeletons_into(c, covj, skel);
  if (c->json) {
    json_t *o = json_pack("{s:o}", "files", out);
    if (to.coverage) json_object_set(o, "coverage", covj);
    if (to.skeleton || to.skeletons) json_object_set(o, "skeletons", skel);
    print_json(o);
  } else {
    json_decref(out);
  }
  json_decref(skel);
  json_decref(covj);
  if (ex != EX_OK) return ex;
  if (sx != EX_OK) return sx;
  return failing ? EX_REFUSED : EX_OK;
}

const command cmd_test = {
    "test", "run process tests (scenario files, docs/process-tests.md)",
    "usage: casectl test [--lua-root DIR] [--verbose] [--json] [--coverage]\n"
    "                    [--skeleton FILE:LINE[:COL]] [--skeletons DIR]\n"
    "                    [--start DATE] [--location NAME] FILE...\n"
    "  Runs the scenarios in order on one engine (location profiles a scenario\n"
    "  loads do not carry over to the next); failing steps are printed as\n"
    "  file:line: step N ...: expected ..., got ....  Exit 1 when a step fails, 3 when\n"
    "  a file does not exist, 5 (or the error's code) when a file is not a valid\n"
    "  scenario.\n"
    "  --coverage     then report, per workflow version the scenarios loaded, the states\n"
    "                 entered, transitions taken, guards seen true and false and deadlines\n"
    "                 that ran out and were met, merged over all FILEs, with every\n"
    "                 untested one as file:line:col (with --json: {files, coverage}).\n"
    "  --skeleton FILE:LINE[:COL]  print a scenario skeleton: a shortest event path to\n"
    "                 the transition at that place of a workflow file (exit 3 when none).\n"
    "  --skeletons DIR  write one skeleton per untested transition into DIR, named\n"
    "                 WORKFLOW-vVERSION-LINE-COL.yaml.\n"
    "  --start DATE   when a skeleton's case starts (default: the version's\n"
    "                 in_force_from, else 2026-01-05); --location NAME: its location.\n",
    test_options, test_option, run_test, 0};
