/*
 * casectl commands over the journal as a whole: list, import, verify, follow
 * (test, over scenario files, is in cmd_test.c).
 */
#include <csv.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "casectl.h"

/* ------------------------------------------------------------------ case ids */

int latest_event_time(ctx *c, int64_t *t) {
  int rc = case_store_latest_time(c->s, t);
  if (rc == CASE_NOTFOUND) {
    *t = 0; /* an empty journal */
    return EX_OK;
  }
  if (rc != CASE_OK) return fail_engine(c, rc, "journal");
  return EX_OK;
}

/* ------------------------------------------------------------------ list */

enum { L_STATE = 256, L_LOCATION, L_ROLE, L_OVERDUE, L_OPEN, I_FORMAT, I_UNTIL, I_NOTICK,
       I_STOP, F_AFTER, F_LIMIT, F_POLL, T_VERBOSE, I_ALLOW_FUTURE, L_ACTOR, F_WAIT, I_BATCH };

static struct {
  const char *state, *location, *role, *actor, *format, *until;
  int overdue, open, notick, stop, verbose, wait;
  long long after, limit, batch;
  double poll;
} lo;

static int data_option(ctx *c, int code, const char *arg) {
  char *end;
  switch (code) {
  case L_STATE: lo.state = arg; return EX_OK;
  case L_LOCATION: lo.location = arg; return EX_OK;
  case L_ROLE: lo.role = arg; return EX_OK;
  case L_ACTOR: lo.actor = arg; return EX_OK;
  case L_OVERDUE: lo.overdue = 1; return EX_OK;
  case L_OPEN: lo.open = 1; return EX_OK;
  case I_FORMAT:
    if (strcmp(arg, "csv") && strcmp(arg, "jsonl"))
      return usage_error(c, "--format: '%s' (expected csv or jsonl)", arg);
    lo.format = arg;
    return EX_OK;
  case I_UNTIL: lo.until = arg; return EX_OK;
  case I_NOTICK: lo.notick = 1; return EX_OK;
  case I_STOP: lo.stop = 1; return EX_OK;
  case I_BATCH: {
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || *end || v < 1 || v > 100000)
      return usage_error(c, "--batch: '%s' (expected rows per transaction, 1 to 100000)", arg);
    lo.batch = v;
    return EX_OK;
  }
  case T_VERBOSE: lo.verbose = 1; return EX_OK;
  case I_ALLOW_FUTURE: c->allow_future = 1; return EX_OK;
  case F_AFTER:
  case F_LIMIT:
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || *end || v < 0) return usage_error(c, "'%s' is not a non-negative number", arg);
    if (code == F_AFTER) lo.after = v; else lo.limit = v;
    return EX_OK;
  case F_WAIT:
    if (lo.poll > 0) return usage_error(c, "--wait and --poll: give one of them");
    lo.wait = 1;
    return EX_OK;
  case F_POLL:
    if (lo.wait) return usage_error(c, "--wait and --poll: give one of them");
    lo.poll = strtod(arg, &end);
    if (*end || lo.poll <= 0) return usage_error(c, "--poll: '%s' is not a number of seconds", arg);
    return EX_OK;
  default: return usage_error(c, "unexpected option");
  }
}

static int has_overdue(case_instance *inst, int64_t at) {
  char *tj = NULL;
  if (case_instance_timers(inst, &tj) != CASE_OK) return 0;
  json_t *t = json_loads(tj, 0, NULL);
  case_free(tj);
  size_t i;
  json_t *v;
  int over = 0;
  json_array_foreach(t, i, v) {
    const char *kind = json_string_value(json_object_get(v, "kind"));
    if (kind && !strcmp(kind, "deadline") &&
        (json_is_true(json_object_get(v, "overdue")) ||
         json_integer_value(json_object_get(v, "due")) <= at))
      over = 1;
  }
  json_decref(t);
  return over;
}

static const struct option list_options[] = {
    {"state", required_argument, NULL, L_STATE},
    {"location", required_argument, NULL, L_LOCATION},
    {"role", required_argument, NULL, L_ROLE},
    {"actor", required_argument, NULL, L_ACTOR},
    {"overdue", no_argument, NULL, L_OVERDUE},
    {"open", no_argument, NULL, L_OPEN},
    {NULL, 0, NULL, 0},
};

/* One listed case: the filters, then its line (or JSON item) printed at once,
 * so that memory does not grow with the store. */
typedef struct lister {
  ctx *c;
  size_t n;
  int ex;
} lister;

static int config_has(json_t *cfg, const char *state) {
  size_t i;
  json_t *v;
  json_array_foreach(cfg, i, v) if (!strcmp(json_string_value(v) ? json_string_value(v) : "", state))
      return 1;
  return 0;
}

static int list_one(void *ud, const char *id, const char *row_json) {
  lister *l = ud;
  ctx *c = l->c;
  json_t *row = json_loads(row_json, 0, NULL);
  if (!row) return CASE_NOMEM;
  warn_corrupt_row(c, row); /* a damaged case row: listed as well as it can be */
  json_t *cfg = json_object_get(row, "configuration");
  const char *loc = json_string_value(json_object_get(row, "location"));
  int done = json_is_true(json_object_get(row, "done"));
  json_t *may = NULL;
  int keep = !(lo.open && done) && !(lo.state && !config_has(cfg, lo.state)) &&
             !(lo.location && (!loc || strcmp(loc, lo.location) != 0));
  if (keep && (lo.overdue || lo.role)) {
    /* What the row does not say: the case itself (the store's cache bounds them). */
    case_instance *inst = NULL;
    int rc = case_store_get(c->s, id, &inst);
    if (rc != CASE_OK) {
      json_decref(row);
      l->ex = fail_engine(c, rc, id);
      return 1;
    }
    if (lo.overdue && !has_overdue(inst, c->at)) keep = 0;
    if (keep && lo.role) {
      char *av = NULL;
      if (case_instance_available_v2(inst, lo.role, lo.actor, c->at, &av) != CASE_OK) keep = 0;
      else may = json_loads(av, 0, NULL);
      case_free(av);
      if (keep && json_array_size(may) == 0) keep = 0;
    }
  }
  if (!keep) {
    json_decref(may);
    json_decref(row);
    return 0;
  }
  const char *wf = json_string_value(json_object_get(row, "workflow"));
  json_int_t version = json_integer_value(json_object_get(row, "version"));
  json_int_t revision = json_integer_value(json_object_get(row, "revision"));
  json_t *evs = NULL;
  if (may) {
    evs = json_array();
    size_t k;
    json_t *v;
    json_array_foreach(may, k, v) json_array_append(evs, json_object_get(v, "event"));
    json_decref(may);
  }
  if (c->json) {
    json_t *item = json_pack("{s:s, s:s, s:I, s:s?, s:I, s:b, s:O}", "case", id, "workflow", wf,
                             "version", version, "location", loc, "revision", revision, "done",
                             done, "configuration", cfg);
    if (item && evs) json_object_set_new(item, "may_fire", evs);
    else json_decref(evs);
    char *text = item ? json_dumps(item, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(item);
    if (!text) {
      json_decref(row);
      return CASE_NOMEM;
    }
    /* The items of one JSON array, indented as print_json() indents it. */
    fputs(l->n ? ",\n  " : "[\n  ", stdout);
    for (const char *p = text; *p;) {
      const char *nl = strchr(p, '\n');
      size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
      fwrite(p, 1, n, stdout);
      if (nl) fputs("  ", stdout);
      p += n;
    }
    free(text);
  } else {
    char *cfgs = json_dumps(cfg, JSON_COMPACT);
    printf("%-16s %-10s %s v%lld rev %-4lld %s%s", id, loc ? loc : "-", wf ? wf : "?",
           (long long)version, (long long)revision, cfgs ? cfgs : "?", done ? " (done)" : "");
    free(cfgs);
    if (evs) {
      char *ms = json_dumps(evs, JSON_COMPACT);
      printf("  %s may: %s", lo.role, ms ? ms : "?");
      free(ms);
      json_decref(evs);
    }
    printf("\n");
  }
  l->n++;
  json_decref(row);
  return 0;
}

static int run_list(ctx *c, int argc, char **argv) {
  (void)argv;
  if (argc != 0) return usage_error(c, "list takes no arguments, only filters");
  int ex;
  if (lo.role && (ex = check_role(c, lo.role)) != EX_OK) return ex;
  if (lo.actor && !lo.role) return usage_error(c, "--actor needs --role (who may act, as whom)");
  if (lo.state && (ex = check_state(c, lo.state)) != EX_OK) return ex;
  lister l = {c, 0, EX_OK};
  int rc = case_store_list(c->s, NULL, 0, list_one, &l);
  if (c->json) fputs(l.n ? "\n]\n" : "[]\n", stdout);
  if (l.ex != EX_OK) return l.ex;
  if (rc != CASE_OK) return fail_engine(c, rc, "list");
  if (!c->quiet && !c->json) fprintf(stderr, "%zu case(s)\n", l.n);
  return EX_OK;
}

const command cmd_list = {
    "list", "list cases by state, location, role able to act, overdue",
    "usage: casectl list [--state ID] [--location NAME] [--role ROLE [--actor WHO]]\n"
    "                    [--overdue] [--open] [--at WHEN] [--json]\n"
    "  Lists the stored cases that pass every filter given, in id order, one line\n"
    "  each (the id, location, workflow, revision and configuration), as it reads\n"
    "  them: memory stays flat however many cases there are.\n"
    "  --state ID      cases with state ID active (any level of nesting)\n"
    "  --location L    cases at location L\n"
    "  --role R        cases where R may fire an event at --at (listed per case; the\n"
    "                  terms due by --at count, as a fire would find the case)\n"
    "  --actor WHO     with --role: as this person (guards may read event.actor)\n"
    "  --overdue       cases with a legal term that has run out by --at\n"
    "  --open          cases not yet in a final state\n",
    list_options, data_option, run_list, 3};

/* ------------------------------------------------------------------ import */

typedef struct irow {
  long line;
  int64_t time;
  char *cas, *event, *role, *actor, *payload, *workflow, *location, *data;
  int version;
  char digest[65]; /* SHA-256 of the row's canonical form (hex) */
  long occurrence; /* 1 + the number of identical rows before it in the file */
} irow;

typedef struct irows {
  irow *v;
  size_t n, cap;
  const char *file;
  int ex;     /* first error */
  ctx *c;
} irows;

static void irow_free(irow *r) {
  free(r->cas);
  free(r->event);
  free(r->role);
  free(r->actor);
  free(r->payload);
  free(r->workflow);
  free(r->location);
  free(r->data);
}

static int row_error(irows *rs, long line, const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "%s:%ld: ", rs->file, line);
  fprintf(stderr, fmt, a ? a : "", b ? b : "");
  fputc('\n', stderr);
  if (rs->ex == EX_OK) rs->ex = EX_INVALID;
  return -1;
}

static char *dup_or_null(const char *s) { return s && *s ? strdup(s) : NULL; }

/* 1 if s is well-formed UTF-8 (jansson checks it as libcase does). */
static int utf8_valid(const char *s) {
  json_t *v = json_string(s);
  json_decref(v);
  return v != NULL;
}

/* Adds a row from its named fields (strings; "" means absent). */
static int add_row(irows *rs, long line, const char *time_s, const char *cas, const char *event,
                   const char *role, const char *actor, const char *payload, const char *workflow,
                   const char *version, const char *location, const char *data) {
  irow r;
  memset(&r, 0, sizeof r);
  r.line = line;
  if (!time_s || !*time_s) return row_error(rs, line, "missing time%s%s", NULL, NULL);
  if (parse_time(time_s, &r.time) != 0)
    return row_error(rs, line, "time '%s' is not a date or time%s", time_s, NULL);
  if (!cas || !*cas) return row_error(rs, line, "missing case%s%s", NULL, NULL);
  char why[160];
  if (case_id_check(cas, why, sizeof why) != CASE_OK)
    return row_error(rs, line, "invalid case id: %s%s", why, NULL);
  int create = event && !strcmp(event, "create");
  if (!event || !*event) return row_error(rs, line, "missing event%s%s", NULL, NULL);
  /* The texts a journal row shows: one line of printable text (checked here
   * too, so that a bad row stops the import before anything is written). */
  const struct { const char *name, *v; } texts[] = {
      {"actor", actor}, {"role", role}, {"location", location}};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
    if (texts[i].v && *texts[i].v && case_text_check(texts[i].v, why, sizeof why) != CASE_OK)
      return row_error(rs, line, "column '%s': %s", texts[i].name, why);
  if (actor && !strcmp(actor, "timer") && (!role || !*role))
    return row_error(rs, line, "a row by actor \"timer\" without a role: timers are fired by the "
                     "clock (the store is ticked to each row's time), not imported; drop the row%s%s",
                     NULL, NULL);
  if (actor && !strcmp(actor, "timer"))
    return row_error(rs, line, "actor \"timer\" is reserved for the clock's rows: a row with a "
                     "role is a person's; name the person%s%s", NULL, NULL);
  if (!role || !*role)
    return row_error(rs, line, "%s without a role: every row needs the role that acted (an "
                     "event without one would skip every role check)%s",
                     create ? "a create row" : "an event", NULL);
  char where[64];
  snprintf(where, sizeof where, "%s:%ld: time", rs->file, line);
  if (check_future(rs->c, where, r.time) != EX_OK) {
    if (rs->ex == EX_OK) rs->ex = EX_INVALID;
    return -1;
  }
  if (rs->n && r.time < rs->v[rs->n - 1].time)
    return row_error(rs, line, "time %s is before the previous row's (rows must be in time order)%s",
                     time_s, NULL);
  if (create && (!workflow || !*workflow))
    return row_error(rs, line, "a create row needs a workflow%s%s", NULL, NULL);
  if (version && *version) {
    char *end;
    errno = 0;
    long long v = strtoll(version, &end, 10);
    if (*end || end == version || v < 1)
      return row_error(rs, line, "version '%s' is not a number%s", version, NULL);
    if (errno == ERANGE || v > INT_MAX)
      return row_error(rs, line, "version '%s' is too large (at most 2147483647)%s", version,
                       NULL);
    r.version = (int)v;
  }
  const char *js[2] = {payload, data};
  for (int k = 0; k < 2; k++) {
    if (!js[k] || !*js[k]) continue;
    json_error_t jerr;
    json_t *v = json_loads(js[k], JSON_DECODE_ANY, &jerr);
    if (!v) return row_error(rs, line, "%s is not JSON: %s", k ? "data" : "payload", jerr.text);
    json_decref(v);
  }
  if (rs->n == rs->cap) {
    size_t cap = rs->cap ? rs->cap * 2 : 1024;
    irow *v = realloc(rs->v, cap * sizeof *v);
    if (!v) return row_error(rs, line, "out of memory%s%s", NULL, NULL);
    rs->v = v;
    rs->cap = cap;
  }
  r.cas = strdup(cas);
  r.event = strdup(event);
  r.role = dup_or_null(role);
  r.actor = dup_or_null(actor);
  r.payload = dup_or_null(payload);
  r.workflow = dup_or_null(workflow);
  r.location = dup_or_null(location);
  r.data = dup_or_null(data);
  rs->v[rs->n++] = r;
  return 0;
}

/* The fields of an import row: CSV columns and JSON Lines keys alike. */
enum { C_TIME, C_CASE, C_EVENT, C_ROLE, C_ACTOR, C_PAYLOAD, C_WORKFLOW, C_VERSION, C_LOCATION,
       C_DATA, C_N };
static const char *const column_names[C_N] = {"time", "case", "event", "role", "actor",
                                              "payload", "workflow", "version", "location", "data"};
#define COLUMN_LIST "time, case, event, role, actor, payload, workflow, version, location, data"

/* The C_* index of a field name of `len` bytes, or -1. */
static int column_index(const char *name, size_t len) {
  for (int i = 0; i < C_N; i++)
    if (strlen(column_names[i]) == len && !memcmp(column_names[i], name, len)) return i;
  return -1;
}

/* JSON Lines: one object per line; blank lines and lines starting with # are skipped. */
static void read_jsonl(irows *rs, FILE *f) {
  char *line = NULL;
  size_t cap = 0;
  long lineno = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    char *text = line;
    /* A UTF-8 byte-order mark (as some editors write) before the first line. */
    if (lineno == 1 && !strncmp(text, "\xEF\xBB\xBF", 3)) text += 3;
    char *p = text;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '\n' || *p == '\r' || *p == 0 || *p == '#') continue;
    json_error_t jerr;
    /* A key given twice is an error (as a CSV column named twice is), not "last wins".
     * By length, not as a C string: a NUL byte is an error, not the line's end. */
    json_t *o = json_loadb(text, (size_t)len - (size_t)(text - line), JSON_REJECT_DUPLICATES,
                           &jerr);
    if (!o || !json_is_object(o)) {
      /* Columns are 1-based; jansson gives 0 or -1 at the end of a line or for
       * a value that parsed but is not an object: fall back on the byte position,
       * or the first non-blank character. */
      size_t n = strcspn(text, "\r\n");
      long col = o ? (long)(p - text) + 1 : jerr.column > 0 ? jerr.column : (long)jerr.position;
      if (col < 1) col = 1;
      if (col > (long)n + 1) col = (long)n + 1;
      fprintf(stderr, "%s:%ld:%ld: not a JSON object: %s\n", rs->file, lineno, col,
              o ? (json_is_array(o) ? "an array" : "another JSON value") : jerr.text);
      if (rs->ex == EX_OK) rs->ex = EX_INVALID;
      json_decref(o);
      continue;
    }
    const char *strfields[] = {"case", "event", "role", "actor", "workflow", "location"};
    int badfield = 0;
    for (size_t k = 0; k < sizeof strfields / sizeof strfields[0]; k++) {
      json_t *v = json_object_get(o, strfields[k]);
      if (v && !json_is_null(v) && !json_is_string(v)) {
        row_error(rs, lineno, "\"%s\" must be a string%s", strfields[k], NULL);
        badfield = 1;
      }
    }
    /* Unknown keys are refused, as unknown CSV columns are: a misspelt key
     * ("paylaod") would otherwise drop its value without a word. */
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val) {
      if (column_index(key, strlen(key)) < 0) {
        row_error(rs, lineno, "unknown key \"%s\" (expected " COLUMN_LIST ")%s", key, NULL);
        badfield = 1;
      }
    }
    json_t *tv = json_object_get(o, "time"), *vv = json_object_get(o, "version");
    if (tv && !json_is_null(tv) && !json_is_string(tv) && !json_is_integer(tv)) {
      row_error(rs, lineno, "\"time\" must be a string or an integer (seconds)%s%s", NULL, NULL);
      badfield = 1;
    }
    if (vv && !json_is_null(vv) && !json_is_integer(vv)) {
      row_error(rs, lineno, "\"version\" must be an integer%s%s", NULL, NULL);
      badfield = 1;
    }
    if (badfield) {
      json_decref(o);
      continue;
    }
    char tbuf[32] = "", vbuf[32] = "";
    json_t *t = json_object_get(o, "time");
    if (json_is_integer(t))
      snprintf(tbuf, sizeof tbuf, "@%lld", (long long)json_integer_value(t));
    json_t *ver = json_object_get(o, "version");
    if (json_is_integer(ver)) snprintf(vbuf, sizeof vbuf, "%lld", (long long)json_integer_value(ver));
    json_t *pl = json_object_get(o, "payload"), *da = json_object_get(o, "data");
    char *pls = pl && !json_is_null(pl) ? json_dumps(pl, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *das = da && !json_is_null(da) ? json_dumps(da, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    add_row(rs, lineno, json_is_string(t) ? json_string_value(t) : tbuf,
            json_string_value(json_object_get(o, "case")),
            json_string_value(json_object_get(o, "event")),
            json_string_value(json_object_get(o, "role")),
            json_string_value(json_object_get(o, "actor")), pls,
            json_string_value(json_object_get(o, "workflow")), vbuf,
            json_string_value(json_object_get(o, "location")), das);
    free(pls);
    free(das);
    json_decref(o);
  }
  free(line);
}


/* CSV (RFC 4180, parsed by libcsv): a header row names the columns (any order;
 * time, case and event required).  An unknown column or one named twice is an
 * error, as an unknown or repeated key is in JSON Lines. */
typedef struct csvstate {
  irows *rs;
  long line;      /* line being fed */
  int header_done;
  int map[64];    /* column index -> C_* or -1 */
  int seen[C_N];  /* how often the header named each field */
  int ncols;
  char *field[C_N];
  int col;        /* current column */
} csvstate;

static void csv_field(void *s, size_t len, void *ud) {
  csvstate *cs = ud;
  if (!cs->header_done) {
    int k = column_index(s ? s : "", len);
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(len < 60 ? len : 60), s ? (const char *)s : "");
    if (cs->col >= 64) {
      if (cs->col == 64)
        fprintf(stderr, "%s:%ld: more than 64 columns\n", cs->rs->file, cs->line);
      cs->rs->ex = EX_INVALID;
    } else {
      cs->map[cs->col] = k;
    }
    if (k < 0) {
      fprintf(stderr, "%s:%ld: unknown column '%s' (expected " COLUMN_LIST ")\n", cs->rs->file,
              cs->line, name);
      cs->rs->ex = EX_INVALID;
    } else if (cs->seen[k]++) {
      fprintf(stderr, "%s:%ld: column '%s' is named twice\n", cs->rs->file, cs->line, name);
      cs->rs->ex = EX_INVALID;
    }
  } else if (cs->col < 64 && cs->col < cs->ncols && cs->map[cs->col] >= 0) {
    int k = cs->map[cs->col];
    free(cs->field[k]);
    cs->field[k] = strndup(s ? s : "", len);
    /* JSON Lines cannot carry bytes that are not UTF-8; neither may CSV. */
    if (s && memchr(s, 0, len)) {
      fprintf(stderr, "%s:%ld: column '%s' holds a NUL byte\n", cs->rs->file, cs->line,
              column_names[k]);
      if (cs->rs->ex == EX_OK) cs->rs->ex = EX_INVALID;
    } else if (cs->field[k] && !utf8_valid(cs->field[k])) {
      fprintf(stderr, "%s:%ld: column '%s' is not valid UTF-8\n", cs->rs->file, cs->line,
              column_names[k]);
      if (cs->rs->ex == EX_OK) cs->rs->ex = EX_INVALID;
    }
  }
  cs->col++;
}

static void csv_row(int term, void *ud) {
  (void)term;
  csvstate *cs = ud;
  if (!cs->header_done) {
    cs->header_done = 1;
    cs->ncols = cs->col;
    int have[C_N] = {0};
    for (int i = 0; i < cs->ncols && i < 64; i++)
      if (cs->map[i] >= 0) have[cs->map[i]] = 1;
    if (!have[C_TIME] || !have[C_CASE] || !have[C_EVENT]) {
      fprintf(stderr, "%s:%ld: the header must name the columns time, case and event\n",
              cs->rs->file, cs->line);
      cs->rs->ex = EX_INVALID;
    }
  } else if (cs->rs->ex != EX_INVALID || 1) {
    if (cs->col != cs->ncols) {
      fprintf(stderr, "%s:%ld: %d field(s), the header has %d\n", cs->rs->file, cs->line,
              cs->col, cs->ncols);
      if (cs->rs->ex == EX_OK) cs->rs->ex = EX_INVALID;
    } else {
      char **f = cs->field;
      add_row(cs->rs, cs->line, f[C_TIME], f[C_CASE], f[C_EVENT], f[C_ROLE], f[C_ACTOR],
              f[C_PAYLOAD], f[C_WORKFLOW], f[C_VERSION], f[C_LOCATION], f[C_DATA]);
    }
  }
  for (int i = 0; i < C_N; i++) {
    free(cs->field[i]);
    cs->field[i] = NULL;
  }
  cs->col = 0;
}

static void read_csv(irows *rs, FILE *f) {
  struct csv_parser p;
  if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL) != 0) {
    rs->ex = fail(rs->c, EX_STORE, "out of memory");
    return;
  }
  csvstate cs;
  memset(&cs, 0, sizeof cs);
  cs.rs = rs;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) >= 0) {
    cs.line++;
    char *text = line;
    /* Excel's "CSV UTF-8" starts with a byte-order mark: skip it. */
    if (cs.line == 1 && len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
      text += 3;
      len -= 3;
    }
    if (csv_parse(&p, text, (size_t)len, csv_field, csv_row, &cs) != (size_t)len) {
      fprintf(stderr, "%s:%ld: CSV error: %s\n", rs->file, cs.line, csv_strerror(csv_error(&p)));
      rs->ex = EX_INVALID;
      break;
    }
  }
  if (rs->ex != EX_INVALID && csv_fini(&p, csv_field, csv_row, &cs) != 0) {
    fprintf(stderr, "%s:%ld: CSV error: %s\n", rs->file, cs.line, csv_strerror(csv_error(&p)));
    rs->ex = EX_INVALID;
  }
  csv_free(&p);
  free(line);
  for (int i = 0; i < C_N; i++) free(cs.field[i]);
}

/* ------------------------------------------------------------------ import keys */

/* A JSON text in canonical form (compact, keys sorted), or JSON null for NULL. */
static json_t *canonical_json(const char *text) {
  if (!text) return json_null();
  json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
  return v ? v : json_string(text);
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

/* The row's digest: SHA-256 over the canonical JSON of what the row says
 * (case, event, time, role, actor, payload; for a create also workflow,
 * version, location and data).  0 or -1 (out of memory, OpenSSL failure). */
static int row_digest(irow *r) {
  int create = !strcmp(r->event, "create");
  json_t *a = json_pack("[s, s, s, I, o, o, o]", "import-row-1", r->cas, r->event,
                        (json_int_t)r->time, str_or_null(r->role), str_or_null(r->actor),
                        canonical_json(r->payload));
  if (a && create) {
    json_array_append_new(a, str_or_null(r->workflow));
    json_array_append_new(a, json_integer(r->version));
    json_array_append_new(a, str_or_null(r->location));
    json_array_append_new(a, canonical_json(r->data));
  }
  char *text = a ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
  json_decref(a);
  if (!text) return -1;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  int ok = EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32;
  free(text);
  if (!ok) return -1;
  static const char hex[] = "0123456789abcdef"; /* not snprintf: 32 calls a row */
  for (unsigned i = 0; i < 32; i++) {
    r->digest[2 * i] = hex[md[i] >> 4];
    r->digest[2 * i + 1] = hex[md[i] & 15];
  }
  r->digest[64] = '\0';
  return 0;
}

static int cmp_by_digest(const void *a, const void *b) {
  const irow *x = *(irow *const *)a, *y = *(irow *const *)b;
  int c = strcmp(x->digest, y->digest);
  if (c) return c;
  return (x->line > y->line) - (x->line < y->line);
}

/* Digests every row and numbers identical rows 1, 2, ... in file order, so the
 * idempotency key "import:DIGEST:N" names a row by its content: the same file
 * again (or another file repeating rows) adds nothing, a file with new rows
 * imports them whatever it is called.  0 or -1 (out of memory). */
static int number_rows(irows *rs) {
  if (rs->n == 0) return 0;
  irow **idx = malloc(rs->n * sizeof *idx);
  if (!idx) return -1;
  for (size_t i = 0; i < rs->n; i++) {
    if (row_digest(&rs->v[i]) != 0) {
      free(idx);
      return -1;
    }
    idx[i] = &rs->v[i];
  }
  qsort(idx, rs->n, sizeof *idx, cmp_by_digest);
  for (size_t i = 0; i < rs->n; i++)
    idx[i]->occurrence = i > 0 && !strcmp(idx[i]->digest, idx[i - 1]->digest)
                             ? idx[i - 1]->occurrence + 1 : 1;
  free(idx);
  return 0;
}

static const struct option import_options[] = {
    {"format", required_argument, NULL, I_FORMAT},
    {"until", required_argument, NULL, I_UNTIL},
    {"no-tick", no_argument, NULL, I_NOTICK},
    {"stop-on-error", no_argument, NULL, I_STOP},
    {"batch", required_argument, NULL, I_BATCH},
    {"allow-future", no_argument, NULL, I_ALLOW_FUTURE},
    {NULL, 0, NULL, 0},
};

static int run_import(ctx *c, int argc, char **argv) {
  if (argc != 1) return usage_error(c, "give one event log file (CSV or JSON Lines)");
  const char *file = argv[0];
  const char *fmt = lo.format;
  if (!fmt) {
    size_t n = strlen(file);
    fmt = n > 4 && !strcmp(file + n - 4, ".csv") ? "csv" : "jsonl";
  }
  int64_t until = 0;
  if (lo.until && parse_time(lo.until, &until) != 0)
    return usage_error(c, "--until: '%s' is not a date or time", lo.until);
  if (lo.until && check_future(c, "--until", until) != EX_OK) return EX_INVALID;
  FILE *f = fopen(file, "r");
  if (!f) return fail(c, errno == ENOENT ? EX_NOTFOUND : EX_STORE, "%s: cannot open: %s", file,
                      strerror(errno));
  irows rs;
  memset(&rs, 0, sizeof rs);
  rs.file = file;
  rs.c = c;
  if (!strcmp(fmt, "csv")) read_csv(&rs, f);
  else read_jsonl(&rs, f);
  fclose(f);
  if (rs.ex != EX_OK) {
    for (size_t i = 0; i < rs.n; i++) irow_free(&rs.v[i]);
    free(rs.v);
    fprintf(stderr, "%s import: %s: nothing imported\n", c->prog, file);
    return rs.ex;
  }
  int rc0 = number_rows(&rs) != 0 ? CASE_NOMEM : CASE_OK;
  if (rc0 != CASE_OK) {
    for (size_t i = 0; i < rs.n; i++) irow_free(&rs.v[i]);
    free(rs.v);
    return fail_engine(c, rc0, file);
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  progress p;
  progress_start(&p, "import", (long)rs.n);
  long created = 0, fired = 0, refused = 0, skipped = 0;
  int timers = 0;
  int ex = EX_OK;
  /* Rows go in batches (--batch, default 100): one transaction for many
   * rows, each row in a savepoint of its own, so a refused row is rolled
   * back alone; the counts of a batch count once it commits. */
  long per = lo.batch > 0 ? (long)lo.batch : 100, in_batch = 0;
  long b_created = 0, b_fired = 0, b_skipped = 0, lost = 0;
  int b_timers = 0, open = 0;
  for (size_t i = 0; i < rs.n; i++) {
    irow *r = &rs.v[i];
    if (lo.until && r->time > until) break;
    int rc;
    if (!open && per > 1) {
      rc = case_store_batch_begin(c->s);
      if (rc != CASE_OK) {
        ex = fail_engine(c, rc, "import");
        break;
      }
      open = 1;
    }
    if (!lo.notick) {
      int n = 0;
      /* Inside the batch: its savepoints, and nothing at all when no timer
       * is due by this row (one index lookup). */
      rc = case_store_tick(c->s, r->time, &n);
      b_timers += n;
      if (rc != CASE_OK)
        fprintf(stderr, "%s:%ld: tick before this row: %s (%s)\n", file, r->line,
                case_errmsg(c->e), case_errstr(rc));
    }
    if (!strcmp(r->event, "create")) {
      const case_def *d = r->version ? case_def_find(c->e, r->workflow, r->version)
                                     : case_def_in_force(c->e, r->workflow, r->time);
      if (!d) {
        fprintf(stderr, "%s:%ld: %s: no workflow %s%s%d in the store\n", file, r->line, r->cas,
                r->workflow, r->version ? " version " : "", r->version);
        ex = EX_NOTFOUND;
        refused++;
      } else {
        rc = case_store_create(c->s, d, r->cas, r->location, r->data, r->actor, r->role, r->time,
                               NULL);
        if (rc == CASE_OK) b_created++;
        else if (rc == CASE_EXISTS) b_skipped++;
        else {
          fprintf(stderr, "%s:%ld: %s: create: %s (%s)\n", file, r->line, r->cas,
                  case_errmsg(c->e), case_errstr(rc));
          refused++;
          if (ex == EX_OK) ex = rc_exit(rc) == EX_USAGE ? EX_INVALID : rc_exit(rc);
        }
      }
    } else {
      char key[96];
      snprintf(key, sizeof key, "import:%s:%ld", r->digest, r->occurrence);
      int64_t seq = 0;
      int replayed = 0;
      /* The key is the row's content, time included: a row seen before writes
       * nothing and says so. */
      rc = case_store_fire_v2(c->s, r->cas, r->event, r->payload, r->actor, r->role, r->time, -1,
                              key, CASE_FIRE_KEY_TIME, &seq, &replayed);
      if (rc == CASE_OK) {
        if (replayed) b_skipped++;
        else b_fired++;
      } else {
        int rx = rc_exit(rc);
        fprintf(stderr, "%s:%ld: %s: %s as %s %s: %s (%s)\n", file, r->line, r->cas, r->event,
                r->role, rx == EX_REFUSED ? "refused" : "failed", case_errmsg(c->e),
                case_errstr(rc));
        refused++;
        if (ex == EX_OK) ex = rx == EX_USAGE ? EX_INVALID : rx;
      }
    }
    in_batch++;
    int last = ex != EX_OK && lo.stop;
    if (!open || in_batch >= per || last || i + 1 == rs.n) {
      rc = open ? case_store_batch_commit(c->s) : CASE_OK;
      open = 0;
      if (rc != CASE_OK) { /* the batch is lost, its rows not imported */
        lost += in_batch;
        fprintf(stderr, "%s:%ld: the batch of %ld row(s) up to this one did not commit: %s "
                "(%s); they are not imported\n", file, r->line, in_batch, case_errmsg(c->e),
                case_errstr(rc));
        ex = rc_exit(rc);
        break;
      }
      created += b_created;
      fired += b_fired;
      skipped += b_skipped;
      timers += b_timers;
      b_created = b_fired = b_skipped = 0;
      b_timers = 0;
      in_batch = 0;
    }
    if (last) break;
    char note[16];
    format_date(r->time, note, sizeof note);
    progress_update(&p, (long)i + 1, note);
  }
  if (open) { /* stopped early (--until): what the batch holds */
    int rc = case_store_batch_commit(c->s);
    if (rc != CASE_OK) {
      lost += in_batch;
      fprintf(stderr, "%s: the last batch of %ld row(s) did not commit: %s (%s)\n", file,
              in_batch, case_errmsg(c->e), case_errstr(rc));
      ex = rc_exit(rc);
    } else {
      created += b_created;
      fired += b_fired;
      skipped += b_skipped;
      timers += b_timers;
    }
  }
  if (lo.until && !lo.notick && !lost) {
    int n = 0;
    case_store_tick_v2(c->s, until, 0, &n);
    timers += n;
  }
  progress_end(&p);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  long rows = (long)rs.n;
  for (size_t i = 0; i < rs.n; i++) irow_free(&rs.v[i]);
  free(rs.v);
  if (c->json) {
    print_json(json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:f}", "file", file, "rows",
                         (json_int_t)rows, "created", (json_int_t)created, "fired",
                         (json_int_t)fired, "refused", (json_int_t)refused, "skipped",
                         (json_int_t)skipped, "timers", timers, "seconds", secs));
  } else if (!c->quiet) {
    printf("imported %s: %ld row(s): %ld case(s) created, %ld event(s) fired, %d timer(s) fired, "
           "%ld refused, %ld already there; %.2f s (%.0f rows/s)\n",
           file, rows, created, fired, timers, refused, skipped, secs,
           secs > 0 ? (double)rows / secs : 0.0);
  }
  return ex;
}

const command cmd_import = {
    "import", "import an event log (CSV or JSON Lines) into the store",
    "usage: casectl import [--format csv|jsonl] [--until WHEN] [--no-tick]\n"
    "                      [--stop-on-error] [--batch N] [--json] FILE\n"
    "  Each row: time, case, event, role, actor, payload (JSON); a row with event\n"
    "  \"create\" creates the case (workflow, version, location, data).  Rows must be\n"
    "  in time order.  Before each row the clock is ticked to its time, so terms\n"
    "  that run out in between fire as they would have (--no-tick: do not).\n"
    "  Every row needs a role (timers are the clock's, not imported).  Each event\n"
    "  carries an idempotency key made from the row's content (SHA-256 of case,\n"
    "  event, time, role, actor, payload, and the number of identical rows before\n"
    "  it), so importing the same rows again, under any file name, adds nothing and\n"
    "  counts them as already there; a case id that exists is skipped on create.\n"
    "  Refused rows are reported as FILE:LINE and make the exit code 1 (a bad row:\n"
    "  5, nothing imported); --stop-on-error stops at the first refusal.\n"
    "  --format F      csv or jsonl (default: by the file name, .csv or else jsonl)\n"
    "  --batch N       rows per transaction (default 100; 1: each row alone).  Each\n"
    "                  row is all-or-nothing either way (a savepoint); a crash loses at\n"
    "                  most the batch being written, which importing again adds\n"
    "  --until WHEN    import rows up to WHEN and tick the clock to it\n"
    "  --allow-future  accept rows (and --until) more than a day after now (the\n"
    "                  store's clock); without it such a row is a bad row (exit 5)\n",
    import_options, data_option, run_import, 1};

/* ------------------------------------------------------------------ verify */

enum { V_CHECKPOINT = 300, V_PUBKEY, V_QUICK };
static struct {
  const char *checkpoint, *pubkey;
  int quick;
} vo;

static int verify_option(ctx *c, int code, const char *arg) {
  switch (code) {
  case V_CHECKPOINT: vo.checkpoint = arg; return EX_OK;
  case V_PUBKEY: vo.pubkey = arg; return EX_OK;
  case V_QUICK: vo.quick = 1; return EX_OK;
  default: return usage_error(c, "unexpected option");
  }
}

static const struct option verify_options[] = {
    {"checkpoint", required_argument, NULL, V_CHECKPOINT},
    {"pubkey", required_argument, NULL, V_PUBKEY},
    {"quick", no_argument, NULL, V_QUICK},
    {NULL, 0, NULL, 0},
};

/* The options of case_store_verify_v2() from the command line; NULL and *ex set on failure. */
static char *verify_options_json(ctx *c, int *ex) {
  *ex = EX_OK;
  if (vo.pubkey && !vo.checkpoint) {
    *ex = usage_error(c, "--pubkey needs --checkpoint");
    return NULL;
  }
  json_t *o = json_object();
  if (vo.quick) json_object_set_new(o, "integrity", json_string("quick"));
  const char *files[2] = {vo.checkpoint, vo.pubkey}, *keys[2] = {"checkpoint", "public_key"};
  for (int i = 0; i < 2 && *ex == EX_OK; i++) {
    if (!files[i]) continue;
    int err = 0;
    char *t = read_whole_file(files[i], &err);
    if (!t) {
      *ex = fail(c, err == ENOENT ? EX_NOTFOUND : EX_STORE, "%s: %s", files[i], strerror(err));
      break;
    }
    json_object_set_new(o, keys[i], json_string(t));
    free(t);
  }
  char *text = *ex == EX_OK ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (*ex == EX_OK && !text) *ex = fail(c, EX_STORE, "out of memory");
  return text;
}

static int run_verify(ctx *c, int argc, char **argv) {
  (void)argv;
  if (argc != 0) return usage_error(c, "verify takes no arguments");
  int ex;
  char *options = verify_options_json(c, &ex);
  if (ex != EX_OK) return ex;
  char *report = NULL;
  int rc = case_store_verify_v2(c->s, options, &report);
  free(options);
  if (rc != CASE_OK && rc != CASE_CORRUPT) return fail_engine(c, rc, "verify");
  json_t *r = json_loads(report ? report : "{}", 0, NULL);
  case_free(report);
  if (c->json) {
    print_json(r);
  } else {
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r, "problems"), i, v) {
      /* case, seq, table and column where they apply: "case Z1 seq 7 journal.data" */
      const char *id = json_string_value(json_object_get(v, "case"));
      const char *table = json_string_value(json_object_get(v, "table"));
      const char *column = json_string_value(json_object_get(v, "column"));
      long long seq = (long long)json_integer_value(json_object_get(v, "seq"));
      char where[512] = "";
      size_t n = 0;
      if (id) n += (size_t)snprintf(where + n, sizeof where - n, "case %s ", id);
      if (seq && n < sizeof where) n += (size_t)snprintf(where + n, sizeof where - n, "seq %lld ", seq);
      if (table && n < sizeof where)
        n += (size_t)snprintf(where + n, sizeof where - n, "%s%s%s ", table, column ? "." : "",
                              column ? column : "");
      if (n && n < sizeof where) where[n - 1] = ':';
      fprintf(stderr, "%s: %s%s%s: %s\n", c->store_shown, where, n ? " " : "",
              json_string_value(json_object_get(v, "problem")),
              json_string_value(json_object_get(v, "message")));
    }
    json_t *omitted = json_object_get(r, "problems_omitted");
    if (omitted)
      fprintf(stderr, "%s: %lld more problem(s) not listed\n", c->store_shown,
              (long long)json_integer_value(omitted));
    json_t *cp = json_object_get(r, "checkpoint");
    if (!c->quiet && cp)
      printf("%s: checkpoint of %lld row(s) at %lld: signature %s%s, %s\n", c->store_shown,
             (long long)json_integer_value(json_object_get(cp, "size")),
             (long long)json_integer_value(json_object_get(cp, "time")),
             json_string_value(json_object_get(cp, "signature")),
             json_is_true(json_object_get(cp, "trusted_key")) ? " (the key given)"
                                                             : " (the key in the checkpoint)",
             json_is_true(json_object_get(cp, "consistent")) ? "the journal extends it"
                                                            : "the journal does NOT extend it");
    if (!c->quiet)
      printf("%s: %lld case(s), %lld journal row(s), %zu problem(s)\n", c->store_shown,
             (long long)json_integer_value(json_object_get(r, "cases")),
             (long long)json_integer_value(json_object_get(r, "events")),
             json_array_size(json_object_get(r, "problems")) +
                 (size_t)json_integer_value(json_object_get(r, "problems_omitted")));
    json_decref(r);
  }
  return rc == CASE_OK ? EX_OK : EX_REFUSED;
}

const command cmd_verify = {
    "verify", "check the store: integrity, hashes, tree, replay",
    "usage: casectl verify [--checkpoint FILE [--pubkey PUB]] [--quick] [--json]\n"
    "  Checks the database's integrity and schema, every journal row's hash and the hash\n"
    "  chains, the journal's Merkle tree, replays every case and compares every derived\n"
    "  table (cases, timers, outbox, idempotency keys) with the replay.  Exit 1 when a\n"
    "  problem is found, each on stderr: case, seq, table.column, what.\n"
    "  --checkpoint FILE  also prove that the journal extends this checkpoint (made with\n"
    "                     `casectl checkpoint`): signature, store and root\n"
    "  --pubkey PUB       the public key the checkpoint must be signed with (PEM)\n"
    "  --quick            PRAGMA quick_check instead of integrity_check (no index contents)\n",
    verify_options, verify_option, run_verify, 3};

/* ------------------------------------------------------------------ follow */

static volatile sig_atomic_t stop_follow;
static void on_signal(int sig) {
  (void)sig;
  stop_follow = 1;
}

static int64_t followed; /* the last seq printed */

static int on_follow_row(void *ud, int64_t seq, const char *row_json) {
  followed = seq;
  /* ',"corrupt":{' with its quotes bare is no text inside a JSON string. */
  if (strstr(row_json, ",\"corrupt\":{")) {
    json_t *row = json_loads(row_json, 0, NULL);
    warn_corrupt_row(ud, row);
    json_decref(row);
  }
  fputs(row_json, stdout);
  fputc('\n', stdout);
  return ferror(stdout) ? CASE_IO : 0;
}

static const struct option follow_options[] = {
    {"after", required_argument, NULL, F_AFTER},
    {"limit", required_argument, NULL, F_LIMIT},
    {"poll", required_argument, NULL, F_POLL},
    {"wait", no_argument, NULL, F_WAIT},
    {NULL, 0, NULL, 0},
};

/* follow --wait lost its store (a server stopped or restarting): says so once,
 * then waits a second before the caller tries again. */
static void follow_lost(ctx *c, int *lost) {
  if (!*lost)
    fprintf(stderr, "%s %s: %s (%s); waiting for the store to answer again (Ctrl-C ends)\n",
            c->prog, c->cmd, case_errmsg(c->e), case_errstr(CASE_IO));
  *lost = 1;
  struct timespec ts = {1, 0};
  if (!stop_follow) nanosleep(&ts, NULL);
}

static int run_follow(ctx *c, int argc, char **argv) {
  (void)argv;
  if (argc != 0) return usage_error(c, "follow takes no arguments");
  int64_t after = lo.after;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  int lost = 0; /* --wait: the server went away; waiting for it to answer again */
  for (;;) {
    int64_t last = after;
    int rc = case_store_follow(c->s, after, (int)lo.limit, on_follow_row, c, &last);
    fflush(stdout);
    if (rc == CASE_IO && lo.wait && !stop_follow && !ferror(stdout)) {
      /* A watcher outlives a server restart: on from the last row it printed. */
      follow_lost(c, &lost);
      if (followed > after) after = followed;
      continue;
    }
    if (rc != CASE_OK) return fail_engine(c, rc, "follow");
    if (lo.limit) break;
    after = last;
    if (lo.wait) {
      /* Until a commit appends to the journal (LISTEN/NOTIFY on PostgreSQL), in
       * slices of a second so that an interrupt ends it. */
      int ready = 0;
      while (!ready && !stop_follow) {
        rc = case_store_wait(c->s, after, 1000, &ready);
        if (rc == CASE_IO) {
          follow_lost(c, &lost);
          continue;
        }
        if (rc != CASE_OK) return fail_engine(c, rc, "follow --wait");
        if (lost) {
          fprintf(stderr, "%s %s: %s: the store answers again; following on after seq %lld\n",
                  c->prog, c->cmd, c->store_shown, (long long)after);
          lost = 0;
        }
      }
      if (stop_follow) break;
      continue;
    }
    if (lo.poll <= 0 || stop_follow) break;
    struct timespec ts = {(time_t)lo.poll, (long)((lo.poll - (double)(time_t)lo.poll) * 1e9)};
    nanosleep(&ts, NULL);
    if (stop_follow) break;
  }
  return EX_OK;
}

const command cmd_follow = {
    "follow", "the change feed: journal rows as JSON Lines",
    "usage: casectl follow [--after SEQ] [--limit N] [--poll SECONDS | --wait]\n"
    "  Prints every journal row with seq > SEQ (default 0) as one JSON object per\n"
    "  line.  --poll keeps watching for new rows until interrupted; remember the last\n"
    "  seq you processed and pass it as --after to continue.  --wait watches too,\n"
    "  printing each row as soon as it is committed: on a PostgreSQL store the server\n"
    "  notifies every commit (LISTEN/NOTIFY), so another agency's mutation shows\n"
    "  within a second; on SQLite the journal is looked at every 50 ms.\n",
    follow_options, data_option, run_follow, 3};
