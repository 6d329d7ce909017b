/*
 * casectl util: the engine and store of a command, exit codes, Europe/Amsterdam
 * dates, the progress bar and output helpers.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "casectl.h"

int rc_exit(int rc) {
  switch (rc) {
  case CASE_OK: return EX_OK;
  case CASE_NOTHANDLED:
  case CASE_DENIED:
  case CASE_GUARD:
  case CASE_SCRIPT:
  case CASE_LIMIT:
  case CASE_DONE: return EX_REFUSED;
  case CASE_NOTFOUND: return EX_NOTFOUND;
  case CASE_INVALID:
  case CASE_EXISTS: return EX_INVALID;
  case CASE_MISUSE: return EX_USAGE;
  default: return EX_STORE; /* CASE_IO, CASE_BUSY, CASE_CORRUPT, CASE_CONFLICT, CASE_NOMEM, ... */
  }
}

int file_exit(const char *path, int rc) {
  if (rc != CASE_OK && path && access(path, F_OK) != 0 && errno == ENOENT) return EX_NOTFOUND;
  return rc_exit(rc);
}

int fail(ctx *c, int ex, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s %s: ", c->prog, c->cmd ? c->cmd : "");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return ex;
}

int usage_error(ctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s %s: ", c->prog, c->cmd ? c->cmd : "");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (see casectl %s --help)\n", c->cmd ? c->cmd : "");
  va_end(ap);
  return EX_USAGE;
}

int fail_engine(ctx *c, int rc, const char *what) {
  const char *msg = c->e ? case_errmsg(c->e) : "";
  fprintf(stderr, "%s %s: %s%s%s (%s)\n", c->prog, c->cmd, what ? what : "", what ? ": " : "",
          *msg ? msg : case_errstr(rc), case_errstr(rc));
  return rc_exit(rc);
}

char *abs_path(const char *p) {
  if (!p) return NULL;
  char buf[PATH_MAX];
  if (realpath(p, buf)) return strdup(buf);
  if (p[0] == '/') return strdup(p);
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) return strdup(p);
  size_t n = strlen(cwd) + strlen(p) + 2;
  char *r = malloc(n);
  if (r) snprintf(r, n, "%s/%s", cwd, p);
  return r;
}

int add_profile(ctx *c, const char *spec) {
  const char *eq = strchr(spec, '=');
  if (!eq || eq == spec || !eq[1])
    return usage_error(c, "--profile: '%s' is not NAME=FILE", spec);
  size_t nlen = (size_t)(eq - spec);
  for (int i = 0; i < c->nprofiles; i++) {
    if (strlen(c->profile_name[i]) == nlen && !strncmp(c->profile_name[i], spec, nlen)) {
      free(c->profile_path[i]);
      c->profile_path[i] = abs_path(eq + 1);
      return EX_OK;
    }
  }
  if (c->nprofiles == MAX_PROFILES) return usage_error(c, "too many profiles (at most %d)", MAX_PROFILES);
  c->profile_name[c->nprofiles] = strndup(spec, nlen);
  c->profile_path[c->nprofiles] = abs_path(eq + 1);
  if (!c->profile_name[c->nprofiles] || !c->profile_path[c->nprofiles])
    return fail(c, EX_STORE, "out of memory");
  c->nprofiles++;
  return EX_OK;
}

/* ------------------------------------------------------------------ engine, store */

int add_holiday(ctx *c, const char *spec) {
  if (strlen(spec) < 10 || (spec[10] != '\0' && spec[10] != '='))
    return usage_error(c, "--holiday: '%s' is not YYYY-MM-DD or YYYY-MM-DD=NAME", spec);
  if (c->nholidays == MAX_PROFILES) return usage_error(c, "too many holidays (at most %d)", MAX_PROFILES);
  c->holiday[c->nholidays] = strdup(spec);
  if (!c->holiday[c->nholidays]) return fail(c, EX_STORE, "out of memory");
  c->nholidays++;
  return EX_OK;
}

/* Splits "DATE[=NAME]" into the engine call's arguments (date copied to `day`). */
static const char *holiday_parts(const char *spec, char day[11]) {
  memcpy(day, spec, 10);
  day[10] = '\0';
  return spec[10] == '=' ? spec + 11 : NULL;
}

int ctx_engine(ctx *c) {
  if (c->e) return EX_OK;
  int rc = case_engine_open(&c->e);
  if (rc != CASE_OK) return fail(c, EX_STORE, "cannot open an engine: %s", case_errstr(rc));
  if (c->lua_root && (rc = case_engine_set_lua_root(c->e, c->lua_root)) != CASE_OK)
    return fail_engine(c, rc, "--lua-root");
  for (int i = 0; i < c->nholidays; i++) {
    char day[11];
    const char *name = holiday_parts(c->holiday[i], day);
    if ((rc = case_engine_add_holiday(c->e, day, name)) != CASE_OK)
      return fail_engine(c, rc, "--holiday");
  }
  for (int i = 0; i < c->nprofiles; i++) {
    rc = case_engine_load_profile(c->e, c->profile_name[i], c->profile_path[i]);
    if (rc != CASE_OK) {
      fprintf(stderr, "%s %s: profile %s: %s (%s)\n", c->prog, c->cmd, c->profile_name[i],
              case_errmsg(c->e), case_errstr(rc));
      return rc_exit(rc);
    }
  }
  return EX_OK;
}

int ctx_store(ctx *c, int mode) {
  int pg = strcmp(case_store_backend(c->store_path), "postgresql") == 0;
  if (mode != 2 && !pg && access(c->store_path, F_OK) != 0)
    return fail(c, EX_NOTFOUND, "%s: no such store (create one with casectl init, or give "
                                "--store FILE or $CASECTL_STORE)", c->store_shown);
  int ex = ctx_engine(c);
  if (ex != EX_OK) return ex;
  int flags = mode == 2 ? CASE_STORE_CREATE : mode == 3 ? CASE_STORE_READONLY : 0;
  int rc = case_store_open(c->e, c->store_path, flags, &c->s);
  if (rc != CASE_OK) {
    /* The library's message names the store itself ("store 'x.db': is a directory ..."),
     * or it is about what the store holds: then say which store. */
    char named[4200];
    snprintf(named, sizeof named, "store '%s'", c->store_shown);
    const char *msg = case_errmsg(c->e);
    if (strstr(msg, named))
      fprintf(stderr, "%s %s: %s (%s)\n", c->prog, c->cmd, msg, case_errstr(rc));
    else
      fprintf(stderr, "%s %s: %s: %s (%s)\n", c->prog, c->cmd, c->store_shown, msg,
              case_errstr(rc));
    return rc_exit(rc);
  }
  if (c->allow_future) case_store_set_future_limit(c->s, -1);
  /* A command that writes stores the --profile files it was given, so that every
   * later program on the store (and a copy of it) loads them without the files;
   * opening the store has loaded the stored profiles these flags did not name. */
  for (int i = 0; mode != 3 && i < c->nholidays; i++) {
    char day[11];
    const char *name = holiday_parts(c->holiday[i], day);
    if ((rc = case_store_add_holiday(c->s, day, name)) != CASE_OK)
      return fail_engine(c, rc, "--holiday");
  }
  for (int i = 0; mode != 3 && i < c->nprofiles; i++) {
    rc = case_store_add_profile(c->s, c->profile_name[i]);
    if (rc != CASE_OK) {
      fprintf(stderr, "%s %s: %s: cannot store profile %s: %s (%s)\n", c->prog, c->cmd,
              c->store_shown, c->profile_name[i], case_errmsg(c->e), case_errstr(rc));
      return rc_exit(rc);
    }
  }
  return EX_OK;
}

int check_future(ctx *c, const char *where, int64_t t) {
  int64_t lim = case_store_future_limit(c->s), now = case_store_clock(c->s);
  if (!c->s || lim < 0 || t <= now || t - now <= lim) return EX_OK;
  char a[32], b[32];
  format_local(t, a, sizeof a);
  format_local(now, b, sizeof b);
  char span[48];
  if (lim == 86400) snprintf(span, sizeof span, "a day");
  else snprintf(span, sizeof span, "%lld second(s)", (long long)lim);
  fprintf(stderr, "%s %s is more than %s after now (%s, the store's clock): refused, nothing "
          "written; a row that far ahead would move every case's clock with it (check the date, "
          "or give --allow-future)\n", where, a, span, b);
  return EX_INVALID;
}

void ctx_close(ctx *c) {
  case_store_close(c->s);
  c->s = NULL;
  case_engine_close(c->e);
  c->e = NULL;
  free(c->lua_root);
  case_free(c->store_shown);
  c->store_shown = NULL;
  for (int i = 0; i < c->nholidays; i++) free(c->holiday[i]);
  c->nholidays = 0;
  c->lua_root = NULL;
  for (int i = 0; i < c->nprofiles; i++) {
    free(c->profile_name[i]);
    free(c->profile_path[i]);
  }
  c->nprofiles = 0;
}

/* ------------------------------------------------------------------ dates */

static int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t yy = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yy + (*m <= 2));
}

/* UTC instant at which summer time starts (last Sunday of March, 01:00 UTC)
 * or ends (last Sunday of October, 01:00 UTC) in year y (EU rule). */
static int64_t last_sunday_0100(int y, int month) {
  int64_t last = days_from_civil(y, month, 31);
  int wd = (int)(((last + 3) % 7 + 7) % 7); /* 0 = Monday; 1970-01-01 was a Thursday */
  return (last - (wd + 1) % 7) * 86400 + 3600;
}

static int offset_at(int64_t utc) {
  int y, m, d;
  civil_from_days(utc >= 0 ? utc / 86400 : (utc - 86399) / 86400, &y, &m, &d);
  return utc >= last_sunday_0100(y, 3) && utc < last_sunday_0100(y, 10) ? 7200 : 3600;
}

int64_t local_to_utc(int y, int m, int d, int hh, int mm, int ss) {
  int64_t local = days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
  int64_t summer = local - 7200;
  if (offset_at(summer) == 7200) return summer;
  return local - 3600;
}

void utc_to_local(int64_t t, int *y, int *m, int *d, int *hh, int *mi, int *ss) {
  int64_t l = t + offset_at(t);
  int64_t days = l >= 0 ? l / 86400 : (l - 86399) / 86400;
  int64_t sec = l - days * 86400;
  civil_from_days(days, y, m, d);
  *hh = (int)(sec / 3600);
  *mi = (int)(sec / 60 % 60);
  *ss = (int)(sec % 60);
}

void format_local(int64_t t, char *buf, size_t len) {
  int y, m, d, hh, mi, ss;
  utc_to_local(t, &y, &m, &d, &hh, &mi, &ss);
  snprintf(buf, len, "%04d-%02d-%02d %02d:%02d", y, m, d, hh, mi);
}

void format_date(int64_t t, char *buf, size_t len) {
  int y, m, d, hh, mi, ss;
  utc_to_local(t, &y, &m, &d, &hh, &mi, &ss);
  snprintf(buf, len, "%04d-%02d-%02d", y, m, d);
}

static int valid_ymd(int y, int m, int d) {
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1) return 0;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= mdays[m - 1] + (m == 2 && leap);
}

int parse_time(const char *s, int64_t *out) {
  if (!s || !*s) return -1;
  if (s[0] == '@') {
    char *end;
    errno = 0;
    long long v = strtoll(s + 1, &end, 10);
    if (errno || end == s + 1 || *end) return -1;
    /* the range of the date forms: 1970-01-01 to 9999-12-31 (UTC) */
    if (v < 0 || v > 253402300799LL) return -1;
    *out = v;
    return 0;
  }
  int y, m, d, hh = 10, mi = 0, ss = 0, n = 0;
  if (sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 || !valid_ymd(y, m, d)) return -1;
  const char *p = s + 10;
  int have_time = 0;
  if (*p == 'T' || *p == ' ') {
    int k = 0;
    if (sscanf(p + 1, "%2d:%2d%n", &hh, &mi, &k) != 2 || k != 5) return -1;
    p += 1 + k;
    if (*p == ':') {
      if (sscanf(p + 1, "%2d%n", &ss, &k) != 1 || k != 2) return -1;
      p += 3;
    }
    if (hh > 23 || mi > 59 || ss > 59) return -1;
    have_time = 1;
  }
  if (!*p) {
    *out = local_to_utc(y, m, d, hh, mi, ss);
    return 0;
  }
  if (!have_time) return -1;
  int off = 0;
  if (*p == 'Z' && !p[1]) {
    off = 0;
  } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
    int oh, om, k = 0;
    if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5 || oh > 14 || om > 59) return -1;
    off = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
  } else {
    return -1;
  }
  *out = days_from_civil(y, m, d) * 86400 + hh * 3600 + mi * 60 + ss - off;
  return 0;
}

/* ------------------------------------------------------------------ progress */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_start(progress *p, const char *label, long total) {
  memset(p, 0, sizeof *p);
  p->enabled = isatty(STDERR_FILENO) && !getenv("CASECTL_NO_PROGRESS");
  p->label = label;
  p->total = total;
  p->start = now_s();
}

void progress_update(progress *p, long done, const char *note) {
  if (!p->enabled) return;
  double t = now_s();
  if (t - p->start < 1.0 || (t - p->last < 0.1 && done < p->total)) return;
  p->last = t;
  p->shown = 1;
  int width = 30;
  int fill = p->total > 0 ? (int)((double)done * width / (double)p->total) : 0;
  if (fill > width) fill = width;
  char bar[64];
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
  bar[width] = 0;
  fprintf(stderr, "\r%-7s [%s] %ld/%ld %3d%% %s\033[K", p->label, bar, done, p->total,
          p->total > 0 ? (int)(done * 100 / p->total) : 0, note ? note : "");
  fflush(stderr);
}

void progress_end(progress *p) {
  if (p->enabled && p->shown) {
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
  }
}

/* ------------------------------------------------------------------ output */

void print_json(json_t *v) {
  if (!v) {
    fprintf(stderr, "casectl: out of memory\n");
    return;
  }
  json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  fputc('\n', stdout);
  json_decref(v);
}

json_t *parse_json_arg(ctx *c, const char *what, const char *text, int *ex) {
  json_error_t jerr;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
  if (!v) *ex = fail(c, EX_INVALID, "%s: not JSON: column %d: %s", what, jerr.column, jerr.text);
  return v;
}

int parse_workflow(const char *spec, char *id, size_t len, int *version) {
  const char *at = strchr(spec, '@');
  size_t n = at ? (size_t)(at - spec) : strlen(spec);
  if (n == 0 || n >= len) return -1;
  memcpy(id, spec, n);
  id[n] = 0;
  *version = 0;
  if (at) {
    char *end;
    long v = strtol(at + 1, &end, 10);
    if (*end || v < 1 || v > INT_MAX) return -1;
    *version = (int)v;
  }
  return 0;
}

int warn_corrupt_row(ctx *c, json_t *row) {
  json_t *bad = json_object_get(row, "corrupt");
  if (!json_is_object(bad)) return 0;
  const char *col;
  json_t *why;
  json_object_foreach(bad, col, why)
    fprintf(stderr, "%s %s: journal row seq %lld (case %s): its %s is %s (casectl verify "
            "reports every problem of the store)\n",
            c->prog, c->cmd ? c->cmd : "", (long long)json_integer_value(json_object_get(row, "seq")),
            json_string_value(json_object_get(row, "case")), col, json_string_value(why));
  return 1;
}
