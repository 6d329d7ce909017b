/* engine.c — the engine handle: errors, limits, registries, definitions. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *case_libversion(void) { return CASE_VERSION; }
int case_libversion_number(void) { return CASE_VERSION_NUMBER; }

const char *case_errstr(int rc) {
  switch (rc) {
  case CASE_OK: return "not an error";
  case CASE_ERROR: return "error";
  case CASE_INVALID: return "invalid input";
  case CASE_NOMEM: return "out of memory";
  case CASE_MISUSE: return "library misuse";
  case CASE_NOTFOUND: return "not found";
  case CASE_EXISTS: return "already exists";
  case CASE_NOTHANDLED: return "event not handled";
  case CASE_DENIED: return "role not allowed";
  case CASE_GUARD: return "guard is false";
  case CASE_SCRIPT: return "script error";
  case CASE_LIMIT: return "limit exceeded";
  case CASE_CONFLICT: return "conflict";
  case CASE_IO: return "input/output error";
  case CASE_CORRUPT: return "corrupt data";
  case CASE_BUSY: return "busy";
  case CASE_DONE: return "case is done";
  default: return "unknown error";
  }
}

const char *case_errname(int rc) {
  static const char *const names[] = {
      [CASE_OK] = "ok",           [CASE_ERROR] = "error",     [CASE_INVALID] = "invalid",
      [CASE_NOMEM] = "nomem",     [CASE_MISUSE] = "misuse",   [CASE_NOTFOUND] = "not_found",
      [CASE_EXISTS] = "exists",   [CASE_NOTHANDLED] = "not_handled",
      [CASE_DENIED] = "denied",   [CASE_GUARD] = "guard",     [CASE_SCRIPT] = "script",
      [CASE_LIMIT] = "limit",     [CASE_CONFLICT] = "conflict", [CASE_IO] = "io",
      [CASE_CORRUPT] = "corrupt", [CASE_BUSY] = "busy",       [CASE_DONE] = "done"};
  if (rc < 0 || rc >= (int)(sizeof names / sizeof names[0]) || !names[rc]) return "unknown";
  return names[rc];
}

void case_free(void *p) { free(p); }

static const long long default_limits[CASE_NLIMITS] = {
    [CASE_LIMIT_INSTRUCTIONS] = 1000000,
    [CASE_LIMIT_MEMORY] = 8 * 1024 * 1024,
    [CASE_LIMIT_MICROSTEPS] = 1000,
    [CASE_LIMIT_DEPTH] = 64,
    [CASE_LIMIT_EXPIRIES] = 1000,
    [CASE_LIMIT_TIME] = 1000,
    [CASE_LIMIT_PAYLOAD] = 1024 * 1024,
    [CASE_LIMIT_DATA] = 4 * 1024 * 1024,
};

int case_engine_open(case_engine **out) {
  if (!out) return CASE_MISUSE;
  *out = NULL;
  case_engine *e = calloc(1, sizeof *e);
  if (!e) return CASE_NOMEM;
  memcpy(e->limits, default_limits, sizeof e->limits);
  e->errmsg = xstrdup("");
  e->lua_root = xstrdup(".");
  if (!e->errmsg || !e->lua_root || cal_open(&e->calendar) != CASE_OK ||
      sbx_open(e, &e->sandbox) != CASE_OK) {
    case_engine_close(e);
    return CASE_NOMEM;
  }
  *out = e;
  return CASE_OK;
}

void case_engine_close(case_engine *e) {
  if (!e) return;
  probe_release(e->probe);
  e->probe = NULL;
  while (e->cases) case_instance_free(e->cases);
  free(e->buckets);
  case_def *d = e->defs;
  while (d) {
    case_def *n = d->next;
    chart_unprepare(d);
    def_free(d);
    d = n;
  }
  for (int k = 0; k < 2; k++) {
    cs_profile *p = k ? e->kept_profiles : e->profiles;
    while (p) {
      cs_profile *n = p->next;
      sbx_profile_free(e->sandbox, p);
      p = n;
    }
  }
  for (int i = 0; i < e->nnatives; i++) free(e->natives[i].name);
  free(e->natives);
  free(e->def_sources);
  sbx_close(e->sandbox);
  cal_close(e->calendar);
  free(e->lua_root);
  free(e->http_base);
  json_decref(e->mail);
  free(e->errmsg);
  free(e->errfile);
  free(e);
}

int eng_replay_open(case_engine *e, case_engine **out) {
  *out = NULL;
  case_engine *r;
  int rc = case_engine_open(&r);
  if (rc != CASE_OK) return eng_err(e, CASE_NOMEM, "out of memory");
  memcpy(r->limits, e->limits, sizeof r->limits);
  /* Replay checks what was accepted: admission limits (sizes) may have been
   * lowered since, and the wall clock, a backstop that depends on the load,
   * gets ten times the room (the instruction budget still bounds the work). */
  r->limits[CASE_LIMIT_PAYLOAD] = r->limits[CASE_LIMIT_DATA] = 0;
  if (r->limits[CASE_LIMIT_TIME] > 0) r->limits[CASE_LIMIT_TIME] *= 10;
  r->own_calendar = r->calendar;
  r->calendar = e->calendar;
  for (int i = 0; rc == CASE_OK && i < e->nnatives; i++) {
    const cs_native *n = &e->natives[i];
    rc = n->is_action ? case_engine_register_action(r, n->name, n->action, n->ud)
                      : case_engine_register_guard(r, n->name, n->guard, n->ud);
  }
  for (const cs_profile *p = e->profiles; rc == CASE_OK && p; p = p->next)
    rc = p->source ? eng_profile_load_text(r, p->name, p->path, p->source, p->source_len)
                   : case_engine_load_profile(r, p->name, p->path);
  if (rc != CASE_OK) {
    rc = eng_err(e, rc, "cannot prepare the replay engine: %s", case_errmsg(r));
    eng_replay_close(r);
    return rc;
  }
  *out = r;
  return CASE_OK;
}

void eng_replay_close(case_engine *r) {
  if (!r) return;
  cal_set_asof(r->calendar, INT64_MAX); /* the host's calendar again as it is */
  if (r->own_calendar) {
    r->calendar = r->own_calendar;
    r->own_calendar = NULL;
  }
  case_engine_close(r);
}

const case_def *eng_replay_def(case_engine *r, const case_def *h) {
  const case_def *d = case_def_find(r, h->id, h->version);
  if (d && d->version == h->version) return d;
  json_t *mods = def_modules_json(h);
  if (!mods) {
    eng_err(r, CASE_NOMEM, "out of memory");
    return NULL;
  }
  int rc = eng_def_load_pinned(r, h->source, h->source_len, h->file, mods, &d);
  json_decref(mods);
  return rc == CASE_OK ? d : NULL;
}

static int set_error(case_engine *e, int rc, const char *file, cs_pos pos, const char *fmt,
                     va_list ap) {
  sbuf b;
  sbuf_init(&b);
  if (file && pos.line > 0) sbuf_printf(&b, "%s:%d:%d: ", file, pos.line, pos.col);
  else if (file) sbuf_printf(&b, "%s: ", file);
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  if (n >= 0) {
    char *tmp = malloc((size_t)n + 1);
    if (tmp) {
      vsnprintf(tmp, (size_t)n + 1, fmt, ap2);
      sbuf_add(&b, tmp, (size_t)n);
      free(tmp);
    } else {
      b.failed = 1;
    }
  }
  va_end(ap2);
  char *msg = sbuf_take(&b);
  free(e->errmsg);
  e->errmsg = msg ? msg : xstrdup(case_errstr(rc));
  free(e->errfile);
  e->errfile = file ? xstrdup(file) : NULL;
  e->errline = file ? pos.line : 0;
  e->errcol = file ? pos.col : 0;
  e->errcode = rc;
  return rc;
}

int eng_err(case_engine *e, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cs_pos none = {0, 0};
  set_error(e, rc, NULL, none, fmt, ap);
  va_end(ap);
  return rc;
}

int eng_err_at(case_engine *e, int rc, const char *file, cs_pos pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_error(e, rc, file ? file : "<string>", pos, fmt, ap);
  va_end(ap);
  return rc;
}

int eng_ok(case_engine *e) {
  if (e->errcode != CASE_OK || (e->errmsg && e->errmsg[0])) {
    char *empty = xstrdup("");
    if (empty) {
      free(e->errmsg);
      e->errmsg = empty;
    }
    free(e->errfile);
    e->errfile = NULL;
    e->errline = e->errcol = 0;
  }
  e->errcode = CASE_OK;
  return CASE_OK;
}

int case_errcode(const case_engine *e) { return e ? e->errcode : CASE_MISUSE; }

const char *case_errmsg(const case_engine *e) {
  if (!e) return "NULL engine handle";
  if (!e->errmsg) return case_errstr(e->errcode);
  return e->errmsg;
}

int case_errpos(const case_engine *e, const char **file, int *line, int *column) {
  if (!e) return CASE_MISUSE;
  if (!e->errfile || e->errline <= 0) return CASE_NOTFOUND;
  if (file) *file = e->errfile;
  if (line) *line = e->errline;
  if (column) *column = e->errcol;
  return CASE_OK;
}

long long case_engine_limit(case_engine *e, int which, long long value) {
  if (!e || which < 0 || which >= CASE_NLIMITS) return -1;
  long long old = e->limits[which];
  if (value >= 0) {
    if ((which == CASE_LIMIT_MICROSTEPS || which == CASE_LIMIT_DEPTH ||
         which == CASE_LIMIT_EXPIRIES) && value < 1)
      value = 1;
    e->limits[which] = value;
  }
  return old;
}

int case_engine_set_lua_root(case_engine *e, const char *dir) {
  if (!e) return CASE_MISUSE;
  if (!dir) return eng_err(e, CASE_MISUSE, "case_engine_set_lua_root: dir is NULL");
  char *d = xstrdup(dir);
  if (!d) return eng_err(e, CASE_NOMEM, "out of memory");
  free(e->lua_root);
  e->lua_root = d;
  return eng_ok(e);
}

int case_engine_add_holiday(case_engine *e, const char *date, const char *name) {
  return eng_add_holiday_from(e, date, name, INT64_MIN);
}

int eng_add_holiday_from(case_engine *e, const char *date, const char *name, int64_t from) {
  if (!e) return CASE_MISUSE;
  if (!date) return eng_err(e, CASE_MISUSE, "case_engine_add_holiday: date is NULL");
  cal_day day;
  if (cal_parse_date(date, &day) != 0)
    return eng_err(e, CASE_INVALID, "'%s' is not a date (expected YYYY-MM-DD)", date);
  if (cal_add_holiday_from(e->calendar, day, name, from) != CASE_OK)
    return eng_err(e, CASE_NOMEM, "out of memory");
  return eng_ok(e);
}

int case_engine_set_notify(case_engine *e, case_notify_fn fn, void *ud) {
  if (!e) return CASE_MISUSE;
  e->notify = fn;
  e->notify_ud = fn ? ud : NULL;
  return eng_ok(e);
}

/* ---- native guards and actions ---- */

int eng_native_find(const case_engine *e, const char *name, int is_action) {
  for (int i = 0; i < e->nnatives; i++)
    if (e->natives[i].is_action == is_action && strcmp(e->natives[i].name, name) == 0) return i;
  return -1;
}

static int register_native(case_engine *e, const char *name, int is_action, case_guard_fn g,
                           case_action_fn a, void *ud) {
  if (!e) return CASE_MISUSE;
  if (!name || (!g && !a))
    return eng_err(e, CASE_MISUSE, "register: name and function must not be NULL");
  static const char *const keywords[] = {"and", "break", "do", "else", "elseif", "end",
                                         "false", "for", "function", "goto", "if", "in",
                                         "local", "nil", "not", "or", "repeat", "return",
                                         "then", "true", "until", "while", NULL};
  int keyword = 0;
  for (int k = 0; keywords[k]; k++) keyword |= strcmp(name, keywords[k]) == 0;
  if (!is_identifier(name, 0) || keyword)
    return eng_err(e, CASE_INVALID, "'%s' is not a valid %s name (expected [A-Za-z_][A-Za-z0-9_]* "
                   "and not a Lua keyword)", name, is_action ? "action" : "guard");
  int i = eng_native_find(e, name, is_action);
  if (i < 0) {
    if (e->nnatives == e->cap_natives) {
      int cap = e->cap_natives ? 2 * e->cap_natives : 8;
      cs_native *v = realloc(e->natives, (size_t)cap * sizeof *v);
      if (!v) return eng_err(e, CASE_NOMEM, "out of memory");
      e->natives = v;
      e->cap_natives = cap;
    }
    char *n = xstrdup(name);
    if (!n) return eng_err(e, CASE_NOMEM, "out of memory");
    i = e->nnatives++;
    e->natives[i].name = n;
    e->natives[i].is_action = is_action;
  }
  e->natives[i].guard = g;
  e->natives[i].action = a;
  e->natives[i].ud = ud;
  return eng_ok(e);
}

int case_engine_register_guard(case_engine *e, const char *name, case_guard_fn fn, void *ud) {
  return register_native(e, name, 0, fn, NULL, ud);
}

int case_engine_register_action(case_engine *e, const char *name, case_action_fn fn, void *ud) {
  return register_native(e, name, 1, NULL, fn, ud);
}

/* ---- location profiles ---- */

const cs_profile *eng_profile_find(const case_engine *e, const char *name) {
  if (!name) return NULL;
  for (const cs_profile *p = e->profiles; p; p = p->next)
    if (strcmp(p->name, name) == 0) return p;
  return NULL;
}

static int install_profile(case_engine *e, const char *name, cs_profile *p);

const cs_profile *eng_case_profile(const case_instance *c) {
  return c->profile ? c->profile : eng_profile_find(c->engine, c->location);
}

const cs_profile *eng_profile_by_hash(const case_engine *e, const char *name, const char *hash) {
  for (int k = 0; k < 2; k++)
    for (const cs_profile *p = k ? e->kept_profiles : e->profiles; p; p = p->next)
      if (p->hash[0] && strcmp(p->hash, hash) == 0 && strcmp(p->name, name) == 0) return p;
  return NULL;
}

static void profile_hash(cs_profile *p) {
  p->hash[0] = '\0';
  if (p->source && sha256_hex(p->source, p->source_len, p->hash) != 0) p->hash[0] = '\0';
}

int eng_profile_adopt_text(case_engine *e, const char *name, const char *path, const char *text,
                           size_t len, const cs_profile **out) {
  char hash[65];
  if (sha256_hex(text, len, hash) != 0) return eng_err(e, CASE_NOMEM, "out of memory");
  if ((*out = eng_profile_by_hash(e, name, hash))) return CASE_OK;
  cs_profile *p = NULL;
  int rc = sbx_load_profile_text(e->sandbox, name, path, text, len, &p);
  if (rc != CASE_OK) return rc;
  profile_hash(p);
  p->next = e->kept_profiles;
  e->kept_profiles = p;
  *out = p;
  return CASE_OK;
}

int case_engine_load_profile(case_engine *e, const char *name, const char *path) {
  if (!e) return CASE_MISUSE;
  if (!name || !path) return eng_err(e, CASE_MISUSE, "case_engine_load_profile: NULL argument");
  cs_profile *p = NULL;
  int rc = sbx_load_profile(e->sandbox, name, path, &p);
  if (rc != CASE_OK) return rc; /* the sandbox set the message */
  return install_profile(e, name, p);
}

int eng_profile_load_text(case_engine *e, const char *name, const char *path, const char *text,
                          size_t len) {
  cs_profile *p = NULL;
  int rc = sbx_load_profile_text(e->sandbox, name, path, text, len, &p);
  if (rc != CASE_OK) return rc;
  return install_profile(e, name, p);
}

static int install_profile(case_engine *e, const char *name, cs_profile *p) {
  /* A profile that breaks a loaded workflow (a param of the wrong type, a term
   * param that is no whole number) is refused before anything uses it. */
  for (const case_def *d = e->defs; d; d = d->next) {
    int rc = pchk_enforce(e, p, d);
    if (rc != CASE_OK) {
      sbx_profile_free(e->sandbox, p);
      return rc;
    }
  }
  profile_hash(p);
  /* Replace a profile of the same name in place so cases keep finding it; the
   * old one stays alive for stored cases pinned to it (store.h). */
  cs_profile **pp = &e->profiles;
  while (*pp && strcmp((*pp)->name, name) != 0) pp = &(*pp)->next;
  if (*pp) {
    cs_profile *old = *pp;
    p->next = old->next;
    *pp = p;
    old->next = e->kept_profiles;
    e->kept_profiles = old;
  } else {
    p->next = e->profiles;
    e->profiles = p;
  }
  return eng_ok(e);
}

/* ---- definitions ---- */

/* 1 if two definitions carry the same Lua module sources. */
static int same_modules(const case_def *a, const case_def *b) {
  if (a->nmodules != b->nmodules) return 0;
  for (int i = 0; i < a->nmodules; i++) {
    const char *x = a->module_src ? a->module_src[i] : NULL;
    const char *y = b->module_src ? b->module_src[i] : NULL;
    if (!x || !y) continue; /* unknown on one side: nothing to compare */
    if (a->module_len[i] != b->module_len[i] || memcmp(x, y, a->module_len[i]) != 0) return 0;
  }
  return 1;
}

/* Module sources, then the files the definition (and the definitions read
 * with it) named, by the name as written; the first of a name wins. */
static int add_pins(json_t *o, const case_def *d) {
  for (int i = 0; i < d->nmodules; i++) {
    if (!d->module_src || !d->module_src[i] || json_object_get(o, d->module_names[i])) continue;
    json_t *v = json_stringn(d->module_src[i], d->module_len[i]);
    if (!v || json_object_set_new(o, d->module_names[i], v) != 0) return -1;
  }
  for (int i = 0; i < d->nres; i++) {
    if (json_object_get(o, d->res_names[i])) continue;
    json_t *v = json_stringn(d->res_src[i], d->res_len[i]);
    if (!v || json_object_set_new(o, d->res_names[i], v) != 0) return -1;
  }
  for (int i = 0; i < d->nsubdefs; i++)
    if (add_pins(o, d->subdefs[i]) != 0) return -1;
  return 0;
}

json_t *def_modules_json(const case_def *d) {
  json_t *o = json_object();
  if (o && add_pins(o, d) != 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

int eng_add_def(case_engine *e, case_def *d, const case_def **out) {
  if (out) *out = NULL;
  /* The definitions read with this one come first: its invokes name them. */
  for (int i = 0; d->subdefs_owned && i < d->nsubdefs; i++) {
    case_def *sub = d->subdefs[i];
    d->subdefs[i] = NULL;
    const case_def *reg = NULL;
    int rc = eng_add_def(e, sub, &reg);
    if (rc != CASE_OK) {
      for (int k = i + 1; k < d->nsubdefs; k++) def_free(d->subdefs[k]);
      d->nsubdefs = i; /* the ones before are the engine's now */
      d->subdefs_owned = 0;
      char *msg = xstrdup(case_errmsg(e));
      rc = eng_err(e, rc, "%s: %s", d->file, msg ? msg : case_errstr(rc));
      free(msg);
      def_free(d);
      return rc;
    }
    d->subdefs[i] = (case_def *)reg;
  }
  d->subdefs_owned = 0;
  for (case_def *o = e->defs; o; o = o->next) {
    if (strcmp(o->id, d->id) == 0 && o->version == d->version) {
      if (strcmp(o->hash, d->hash) == 0 && !same_modules(o, d)) {
        int rc = eng_err(e, CASE_EXISTS,
                         "%s: workflow '%s' version %d is loaded with other Lua module code; "
                         "changed guards or actions need a new version",
                         d->file, d->id, d->version);
        def_free(d);
        return rc;
      }
      if (strcmp(o->hash, d->hash) == 0) {
        def_free(d);
        if (out) *out = o;
        return eng_ok(e);
      }
      int rc = eng_err(e, CASE_EXISTS,
                       "%s: workflow '%s' version %d is already loaded with other content "
                       "(hash %.12s, from %s); give the new content a new version",
                       d->file, d->id, d->version, o->hash, o->file);
      def_free(d);
      return rc;
    }
  }
  /* The same check the other way round: a loaded profile that breaks it. */
  for (const cs_profile *p = e->profiles; p; p = p->next) {
    int rc = pchk_enforce(e, p, d);
    if (rc != CASE_OK) {
      def_free(d);
      return rc;
    }
  }
  int rc = chart_prepare(e, d);
  if (rc != CASE_OK) {
    chart_unprepare(d);
    def_free(d);
    return rc;
  }
  d->next = e->defs;
  e->defs = d;
  if (e->probe) probe_def_added(e->probe, d);
  if (out) *out = d;
  return eng_ok(e);
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return xstrdup(".");
  if (slash == path) return xstrdup("/");
  return xstrndup(path, (size_t)(slash - path));
}

int case_def_load_file(case_engine *e, const char *path, const case_def **out) {
  if (out) *out = NULL;
  if (!e) return CASE_MISUSE;
  if (!path) return eng_err(e, CASE_MISUSE, "case_def_load_file: path is NULL");
  FILE *f = fopen(path, "rb");
  if (!f) return eng_err(e, CASE_IO, "%s: cannot open: %s", path, strerror(errno));
  sbuf b;
  sbuf_init(&b);
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sbuf_add(&b, chunk, n);
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    sbuf_free(&b);
    return eng_err(e, CASE_IO, "%s: read error", path);
  }
  if (b.failed) {
    sbuf_free(&b);
    return eng_err(e, CASE_NOMEM, "out of memory reading %s", path);
  }
  size_t len = b.len;
  char *text = sbuf_take(&b);
  char *dir = dir_of(path);
  if (!text || !dir) {
    free(text);
    free(dir);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  case_def *d = NULL;
  int rc = def_parse(e, text, len, path, dir, &d);
  free(text);
  free(dir);
  if (rc != CASE_OK) return rc;
  return eng_add_def(e, d, out);
}

int case_def_load_string(case_engine *e, const char *text, size_t len, const char *name,
                         const case_def **out) {
  if (out) *out = NULL;
  if (!e) return CASE_MISUSE;
  if (!text) return eng_err(e, CASE_MISUSE, "case_def_load_string: text is NULL");
  case_def *d = NULL;
  int rc = def_parse(e, text, len, name ? name : "<string>", NULL, &d);
  if (rc != CASE_OK) return rc;
  return eng_add_def(e, d, out);
}

int eng_def_load_pinned(case_engine *e, const char *text, size_t len, const char *name,
                        const json_t *modules, const case_def **out) {
  if (out) *out = NULL;
  case_def *d = NULL;
  int rc = def_parse_pinned(e, text, len, name ? name : "<string>", NULL, modules, &d);
  if (rc != CASE_OK) return rc;
  return eng_add_def(e, d, out);
}

/* ---- lazy loading: definitions a store holds are loaded when asked for ---- */

int eng_def_source_add(case_engine *e, cs_def_need_fn fn, void *ud) {
  struct cs_def_source *v = realloc(e->def_sources, (size_t)(e->ndef_sources + 1) * sizeof *v);
  if (!v) return eng_err(e, CASE_NOMEM, "out of memory");
  v[e->ndef_sources].need = fn;
  v[e->ndef_sources].ud = ud;
  e->def_sources = v;
  e->ndef_sources++;
  return CASE_OK;
}

void eng_def_source_remove(case_engine *e, void *ud) {
  for (int i = 0; i < e->ndef_sources; i++) {
    if (e->def_sources[i].ud != ud) continue;
    memmove(&e->def_sources[i], &e->def_sources[i + 1],
            (size_t)(e->ndef_sources - i - 1) * sizeof e->def_sources[0]);
    e->ndef_sources--;
    return;
  }
}

int eng_def_need(case_engine *e, const char *id, int version) {
  if (e->sourcing || e->ndef_sources == 0) return CASE_OK;
  e->sourcing = 1;
  int rc = CASE_OK;
  for (int i = 0; rc == CASE_OK && i < e->ndef_sources; i++)
    rc = e->def_sources[i].need(e->def_sources[i].ud, id, version);
  e->sourcing = 0;
  return rc;
}

const case_def *eng_def_loaded(const case_engine *e, const char *id, int version) {
  for (const case_def *d = e->defs; d; d = d->next)
    if (d->version == version && strcmp(d->id, id) == 0) return d;
  return NULL;
}

const case_def *case_def_find(case_engine *e, const char *id, int version) {
  if (!e || !id) return NULL;
  if (version > 0) {
    const case_def *d = eng_def_loaded(e, id, version);
    if (d || eng_def_need(e, id, version) != CASE_OK) return d;
    return eng_def_loaded(e, id, version);
  }
  if (eng_def_need(e, id, 0) != CASE_OK) return NULL;
  const case_def *best = NULL;
  for (const case_def *d = e->defs; d; d = d->next) {
    if (strcmp(d->id, id) != 0) continue;
    if (version > 0 && d->version == version) return d;
    if (version <= 0 && (!best || d->version > best->version)) best = d;
  }
  return best;
}

const case_def *case_def_in_force(case_engine *e, const char *id, int64_t at) {
  if (!e || !id) return NULL;
  if (eng_def_need(e, id, 0) != CASE_OK) return NULL;
  cal_day day = cal_local_day(at);
  const case_def *best = NULL;
  for (const case_def *d = e->defs; d; d = d->next) {
    if (strcmp(d->id, id) != 0) continue;
    if (d->in_force_from != CAL_NO_DAY && d->in_force_from > day) continue;
    if (!best || d->version > best->version) best = d;
  }
  return best;
}

const char *case_def_in_force_from(const case_def *d) { return d ? d->in_force_from_text : NULL; }

const char *case_def_id(const case_def *d) { return d ? d->id : NULL; }
int case_def_version(const case_def *d) { return d ? d->version : 0; }
const char *case_def_hash(const case_def *d) { return d ? d->hash : NULL; }
const case_def *case_def_next(case_engine *e, const case_def *prev) {
  if (!e) return NULL;
  if (!prev && eng_def_need(e, NULL, 0) != CASE_OK) return NULL;
  return prev ? prev->next : e->defs;
}

/* States are reported without the synthetic root (index 0). */
int case_def_state_count(const case_def *d) { return d ? d->nstates - 1 : 0; }
const char *case_def_state_id(const case_def *d, int i) {
  if (!d || i < 0 || i >= d->nstates - 1) return NULL;
  return d->states[i + 1].id;
}
int case_def_role_count(const case_def *d) { return d ? d->nroles : 0; }
const char *case_def_role(const case_def *d, int i) {
  if (!d || i < 0 || i >= d->nroles) return NULL;
  return d->roles[i];
}

int case_def_warning_count(const case_def *d) { return d ? d->nwarnings : 0; }
const char *case_def_warning(const case_def *d, int i) {
  if (!d || i < 0 || i >= d->nwarnings) return NULL;
  return d->warnings[i];
}
