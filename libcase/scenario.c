/* scenario.c — process tests: run a YAML scenario against a workflow (docs/process-tests.md). */
#include "internal.h"
#include "libcase/scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 64

typedef struct sc_case {
  char *id;
  const char *location; /* borrowed from the YAML document */
  json_t *data;         /* initial data, owned */
  int64_t start;
  cs_pos pos;
  const case_def *def;  /* the version this case runs on */
  case_instance *c;
} sc_case;

typedef struct run {
  case_engine *e;
  const char *file;
  char *dir;            /* the scenario's directory, or NULL */
  yaml_document_t doc;
  int dry;              /* 1: check the steps only; 0: run them */
  const case_def *def;
  sc_case *cases;
  int ncases;
  int64_t now;          /* time of the previous step */
  int nsteps, failures;
  sbuf report;
  sbuf fail;            /* failures of the current step */
  json_t *emitted;      /* names emitted during the current step */
  /* Location profiles this scenario loaded, each with the engine's profile of that
   * name before it (or NULL), put back when the scenario ends: a scenario's profiles
   * never carry over to the next scenario run on the same engine. */
  struct sc_profile {
    char *name, *path;
    cs_profile *before;
  } *profiles;
  int nprofiles;
} run;

/* ---- YAML nodes ---- */

static yaml_node_t *node(run *r, int i) { return i ? yaml_document_get_node(&r->doc, i) : NULL; }

static cs_pos npos(const yaml_node_t *n) {
  cs_pos p = {0, 0};
  if (n) {
    p.line = (int)n->start_mark.line + 1;
    p.col = (int)n->start_mark.column + 1;
  }
  return p;
}

static int bad(run *r, const yaml_node_t *n, const char *fmt, ...) CASE_PRINTF(3, 4);
static int bad(run *r, const yaml_node_t *n, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return eng_err_at(r->e, CASE_INVALID, r->file, npos(n), "%s", msg);
}

static const char *scalar(const yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *get(run *r, const yaml_node_t *m, const char *key) {
  if (!m || m->type != YAML_MAPPING_NODE) return NULL;
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    const char *k = scalar(node(r, p->key));
    if (k && strcmp(k, key) == 0) return node(r, p->value);
  }
  return NULL;
}

static int nitems(const yaml_node_t *n) {
  if (n->type == YAML_SEQUENCE_NODE) return (int)(n->data.sequence.items.top - n->data.sequence.items.start);
  if (n->type == YAML_MAPPING_NODE) return (int)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
  return 0;
}

static yaml_node_t *item(run *r, const yaml_node_t *seq, int i) {
  return node(r, seq->data.sequence.items.start[i]);
}

/* Keys must be scalars from `allowed` (NULL-terminated), each at most once. */
static int check_keys(run *r, const yaml_node_t *m, const char *where, const char *const *allowed) {
  if (!m || m->type != YAML_MAPPING_NODE) return bad(r, m, "%s must be a map", where);
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = node(r, p->key);
    const char *k = scalar(kn);
    if (!k) return bad(r, kn, "a key in %s must be a plain name", where);
    int ok = 0;
    for (int i = 0; allowed[i]; i++) ok |= strcmp(k, allowed[i]) == 0;
    if (!ok) {
      sbuf l;
      sbuf_init(&l);
      for (int i = 0; allowed[i]; i++) sbuf_printf(&l, "%s%s", i ? ", " : "", allowed[i]);
      int rc = bad(r, kn, "unknown key '%s' in %s (expected one of: %s)", k, where,
                   l.p ? l.p : "");
      sbuf_free(&l);
      return rc;
    }
    for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++) {
      const char *k2 = scalar(node(r, q->key));
      if (k2 && strcmp(k, k2) == 0) return bad(r, kn, "duplicate key '%s' in %s", k, where);
    }
  }
  return CASE_OK;
}

static int want_text(run *r, const yaml_node_t *n, const char *what, const char **out) {
  *out = scalar(n);
  if (!*out) return bad(r, n, "%s must be a text (got a %s)", what,
                        n->type == YAML_MAPPING_NODE ? "map" : "list");
  return CASE_OK;
}

/* Scalars are typed as the loader types them (docs/workflow-format.md, "YAML rules"). */
static json_t *scalar_json(const yaml_node_t *n) {
  const char *s = scalar(n);
  if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return json_string(s);
  if (!*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0) return json_null();
  if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return json_true();
  if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) return json_false();
  const char *d = s + (*s == '-' || *s == '+');
  size_t nd = strspn(d, "0123456789");
  if (nd > 0 && nd <= 18 && d[nd] == '\0') return json_integer(strtoll(s, NULL, 10));
  if (nd > 0 || *d == '.') {
    char *end = NULL;
    double v = c_strtod(s, &end);
    if (end && *end == '\0' && strpbrk(s, ".eE")) return json_real(v);
  }
  return json_string(s);
}

static int to_json(run *r, const yaml_node_t *n, int depth, json_t **out) {
  *out = NULL;
  if (depth > MAX_DEPTH) return bad(r, n, "value nested deeper than %d levels", MAX_DEPTH);
  json_t *v = NULL;
  if (n->type == YAML_SCALAR_NODE) {
    v = scalar_json(n);
  } else if (n->type == YAML_SEQUENCE_NODE) {
    v = json_array();
    for (int i = 0; v && i < nitems(n); i++) {
      json_t *x;
      int rc = to_json(r, item(r, n, i), depth + 1, &x);
      if (rc != CASE_OK) { json_decref(v); return rc; }
      if (json_array_append_new(v, x) != 0) { json_decref(v); v = NULL; }
    }
  } else {
    v = json_object();
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; v && p < n->data.mapping.pairs.top; p++) {
      const char *k = scalar(node(r, p->key));
      if (!k) { json_decref(v); return bad(r, node(r, p->key), "a map key must be a text"); }
      json_t *x;
      int rc = to_json(r, node(r, p->value), depth + 1, &x);
      if (rc != CASE_OK) { json_decref(v); return rc; }
      if (json_object_set_new(v, k, x) != 0) { json_decref(v); v = NULL; }
    }
  }
  if (!v) return eng_err(r->e, CASE_NOMEM, "out of memory reading %s", r->file);
  *out = v;
  return CASE_OK;
}

/* Aliases make one node the child of two parents: refuse them (as the loader does). */
static int check_aliases(run *r) {
  int n = (int)(r->doc.nodes.top - r->doc.nodes.start);
  unsigned char *seen = calloc((size_t)n + 1, 1);
  if (!seen) return eng_err(r->e, CASE_NOMEM, "out of memory reading %s", r->file);
  int rc = CASE_OK;
  for (int i = 1; i <= n && rc == CASE_OK; i++) {
    yaml_node_t *x = node(r, i);
    int kids[2] = {0, 0};
    int m = x->type == YAML_SEQUENCE_NODE ? nitems(x) : x->type == YAML_MAPPING_NODE ? 2 * nitems(x) : 0;
    for (int k = 0; k < m && rc == CASE_OK; k++) {
      int c;
      if (x->type == YAML_SEQUENCE_NODE) {
        c = x->data.sequence.items.start[k];
      } else {
        yaml_node_pair_t *p = x->data.mapping.pairs.start + k / 2;
        kids[0] = p->key;
        kids[1] = p->value;
        c = kids[k % 2];
      }
      if (c < 1 || c > n) continue;
      if (seen[c]++) rc = bad(r, node(r, c), "anchors and aliases are not allowed in a scenario");
    }
  }
  free(seen);
  return rc;
}

/* ---- dates ---- */

/* "YYYY-MM-DD" (10:00 local) or "YYYY-MM-DD HH:MM" / "YYYY-MM-DDTHH:MM" (local time). */
static int parse_time(run *r, const yaml_node_t *n, int64_t *out) {
  const char *s = scalar(n);
  if (!s) return bad(r, n, "a date must be a text (expected YYYY-MM-DD or YYYY-MM-DD HH:MM)");
  char day[11];
  size_t len = strlen(s);
  int hh = 10, mm = 0;
  if (len < 10) goto fail;
  memcpy(day, s, 10);
  day[10] = '\0';
  cal_day d;
  if (cal_parse_date(day, &d) != 0) goto fail;
  if (len > 10) {
    if (len != 16 || (s[10] != ' ' && s[10] != 'T') || s[13] != ':') goto fail;
    for (int i = 11; i < 16; i++)
      if (i != 13 && (s[i] < '0' || s[i] > '9')) goto fail;
    hh = (s[11] - '0') * 10 + (s[12] - '0');
    mm = (s[14] - '0') * 10 + (s[15] - '0');
    if (hh > 23 || mm > 59) goto fail;
  }
  /* The offset of local midnight, or of the next one once a DST switch (at 02:00/03:00) is past. */
  int64_t mid = cal_local_midnight(d);
  int64_t off = (int64_t)d * 86400 - mid;
  if (hh >= 3) off = (int64_t)(d + 1) * 86400 - cal_local_midnight(d + 1);
  *out = (int64_t)d * 86400 + hh * 3600 + mm * 60 - off;
  return CASE_OK;
fail:
  return bad(r, n, "bad date '%s' (expected YYYY-MM-DD or YYYY-MM-DD HH:MM, a real date)", s);
}

void scenario_format_time(int64_t t, char out[24]) {
  cal_day d = cal_local_day(t);
  char day[11];
  cal_format_date(d, day);
  int64_t off = (int64_t)d * 86400 - cal_local_midnight(d);
  int64_t secs = t + off - (int64_t)d * 86400;
  unsigned hh = (unsigned)(secs / 3600) % 24u, mm = (unsigned)(secs / 60) % 60u;
  if (secs == 10 * 3600) snprintf(out, 24, "%s", day);
  else snprintf(out, 24, "%s %02u:%02u", day, hh, mm);
}

/* ---- result codes by name ---- */

/* A result code from its case_errname() name, or -1. */
static int code_parse(const char *s) {
  for (int rc = CASE_OK; rc <= CASE_DONE; rc++)
    if (strcmp(case_errname(rc), s) == 0) return rc;
  return -1;
}

/* ---- paths ---- */

static int readable(const char *p) {
  FILE *f = fopen(p, "rb");
  if (!f) return 0;
  fclose(f);
  return 1;
}

/* Next to the scenario first, then under the Lua root.  Caller frees. */
static char *resolve(run *r, const char *rel) {
  if (rel[0] == '/') return xstrdup(rel);
  const char *bases[2] = {r->dir, r->e->lua_root ? r->e->lua_root : "."};
  for (int i = 0; i < 2; i++) {
    if (!bases[i]) continue;
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "%s/%s", bases[i], rel);
    char *p = sbuf_take(&b);
    if (!p) return NULL;
    if (readable(p)) return p;
    free(p);
  }
  return xstrdup(""); /* not found: "" */
}

static int load_workflow(run *r, const yaml_node_t *n, const case_def **last) {
  const char *rel;
  int rc = want_text(r, n, "workflow", &rel);
  if (rc != CASE_OK) return rc;
  char *p = resolve(r, rel);
  if (!p) return eng_err(r->e, CASE_NOMEM, "out of memory");
  if (!*p) {
    free(p);
    return eng_err_at(r->e, CASE_IO, r->file, npos(n),
                      "workflow file '%s' not found (next to the scenario or under the Lua root '%s')",
                      rel, r->e->lua_root ? r->e->lua_root : ".");
  }
  rc = case_def_load_file(r->e, p, last);
  free(p);
  return rc;
}

/* The engine's profile NAME, taken out of its list (NULL if there is none). */
static cs_profile *take_profile(case_engine *e, const char *name) {
  for (cs_profile **pp = &e->profiles; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->name, name) == 0) {
      cs_profile *p = *pp;
      *pp = p->next;
      p->next = NULL;
      return p;
    }
  return NULL;
}

/* Puts back what the engine had before the scenario loaded its profiles. */
static void restore_profiles(run *r) {
  for (int i = r->nprofiles; i-- > 0;) {
    struct sc_profile *sp = &r->profiles[i];
    cs_profile *mine = take_profile(r->e, sp->name);
    if (mine) sbx_profile_free(r->e->sandbox, mine);
    if (sp->before) {
      sp->before->next = r->e->profiles;
      r->e->profiles = sp->before;
    }
    free(sp->name);
    free(sp->path);
  }
  free(r->profiles);
  r->profiles = NULL;
  r->nprofiles = 0;
}

/*
 * The profile of a case's location.  A `profile:` path is loaded for this scenario;
 * without one, a profile the host already gave the engine under the location's name
 * is used (casectl --profile), else lua/locations/<location>.lua is loaded.  What this
 * scenario loads is undone when it ends (restore_profiles), so two scenarios that give
 * one location different profiles each see their own.
 */
static int load_profile(run *r, const char *location, const yaml_node_t *profile_node,
                        const yaml_node_t *at) {
  if (!location) return CASE_OK;
  sbuf b;
  sbuf_init(&b);
  const char *rel;
  if (profile_node) {
    int rc = want_text(r, profile_node, "profile", &rel);
    if (rc != CASE_OK) return rc;
    sbuf_puts(&b, rel);
  } else {
    sbuf_printf(&b, "lua/locations/%s.lua", location);
  }
  char *relp = sbuf_take(&b);
  if (!relp) return eng_err(r->e, CASE_NOMEM, "out of memory");
  for (int i = 0; i < r->nprofiles; i++) {
    if (strcmp(r->profiles[i].name, location) != 0) continue;
    int same = strcmp(r->profiles[i].path, relp) == 0;
    int rc = same ? CASE_OK
                  : eng_err_at(r->e, CASE_INVALID, r->file, npos(profile_node ? profile_node : at),
                               "location '%s' already has the profile '%s' in this scenario "
                               "(one profile per location)", location, r->profiles[i].path);
    free(relp);
    return rc;
  }
  if (!profile_node && eng_profile_find(r->e, location)) {
    free(relp);
    return CASE_OK; /* the host's own profile for this location */
  }
  struct sc_profile *v = realloc(r->profiles, sizeof *v * (size_t)(r->nprofiles + 1));
  char *p = resolve(r, relp);
  char *name = xstrdup(location);
  if (v) r->profiles = v;
  int rc;
  if (!v || !p || !name) rc = eng_err(r->e, CASE_NOMEM, "out of memory");
  else if (!*p)
    rc = eng_err_at(r->e, CASE_IO, r->file, npos(profile_node ? profile_node : at),
                    "location profile '%s' not found (next to the scenario or under the Lua root)",
                    relp);
  else {
    cs_profile *before = take_profile(r->e, location);
    rc = case_engine_load_profile(r->e, location, p);
    if (rc == CASE_OK) {
      r->profiles[r->nprofiles++] = (struct sc_profile){name, relp, before};
      name = relp = NULL;
    } else if (before) { /* nothing was installed: the old one goes back as it was */
      before->next = r->e->profiles;
      r->e->profiles = before;
    }
  }
  free(name);
  free(p);
  free(relp);
  return rc;
}

/* ---- expectations ---- */

static void failf(run *r, const char *fmt, ...) CASE_PRINTF(2, 3);
static void failf(run *r, const char *fmt, ...) {
  if (r->fail.len) sbuf_puts(&r->fail, "; ");
  va_list ap;
  va_start(ap, fmt);
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sbuf_puts(&r->fail, msg);
}

static int state_list(run *r, const yaml_node_t *n, const char *what) {
  if (n->type != YAML_SEQUENCE_NODE) return bad(r, n, "%s must be a list of state ids", what);
  for (int i = 0; i < nitems(n); i++) {
    const char *s = scalar(item(r, n, i));
    if (!s) return bad(r, item(r, n, i), "%s must be a list of state ids", what);
    if (def_state_find(r->def, s) < 1) return bad(r, item(r, n, i), "unknown state '%s' in %s", s, what);
  }
  return CASE_OK;
}

static int expect_configuration(run *r, const yaml_node_t *n, case_instance *c) {
  static const char *const keys[] = {"exactly", "includes", "excludes", NULL};
  const yaml_node_t *inc = n, *exc = NULL, *exact = NULL;
  if (n->type == YAML_MAPPING_NODE) {
    int rc = check_keys(r, n, "configuration", keys);
    if (rc != CASE_OK) return rc;
    inc = get(r, n, "includes");
    exc = get(r, n, "excludes");
    exact = get(r, n, "exactly");
  }
  const yaml_node_t *lists[3] = {inc, exc, exact};
  for (int i = 0; i < 3; i++) {
    if (!lists[i]) continue;
    int rc = state_list(r, lists[i], "configuration");
    if (rc != CASE_OK) return rc;
  }
  if (r->dry) return CASE_OK;
  char *cfg = NULL;
  case_instance_configuration(c, &cfg);
  for (int i = 0; inc && i < nitems(inc); i++) {
    const char *s = scalar(item(r, inc, i));
    if (!case_instance_in(c, s)) failf(r, "expected state '%s' active, got %s", s, cfg ? cfg : "?");
  }
  for (int i = 0; exc && i < nitems(exc); i++) {
    const char *s = scalar(item(r, exc, i));
    if (case_instance_in(c, s)) failf(r, "expected state '%s' not active, got %s", s, cfg ? cfg : "?");
  }
  if (exact) {
    json_t *got = cfg ? json_loads(cfg, 0, NULL) : NULL;
    int same = got && (int)json_array_size(got) == nitems(exact);
    for (int i = 0; same && i < nitems(exact); i++)
      same = case_instance_in(c, scalar(item(r, exact, i)));
    if (!same) {
      sbuf w;
      sbuf_init(&w);
      for (int i = 0; i < nitems(exact); i++)
        sbuf_printf(&w, "%s\"%s\"", i ? "," : "", scalar(item(r, exact, i)));
      failf(r, "expected configuration exactly [%s], got %s", w.p ? w.p : "", cfg ? cfg : "?");
      sbuf_free(&w);
    }
    json_decref(got);
  }
  case_free(cfg);
  return CASE_OK;
}

static int same_value(const json_t *a, const json_t *b) {
  if (json_is_number(a) && json_is_number(b)) return json_number_value(a) == json_number_value(b);
  return json_equal(a, b);
}

static int expect_data(run *r, const yaml_node_t *n, case_instance *c) {
  if (n->type != YAML_MAPPING_NODE) return bad(r, n, "data must be a map of field -> value");
  json_t *data = NULL;
  if (!r->dry) {
    char *s = NULL;
    if (case_instance_data(c, &s) == CASE_OK) data = json_loads(s, 0, NULL);
    case_free(s);
    if (!data) return eng_err(r->e, CASE_NOMEM, "out of memory");
  }
  int rc = CASE_OK;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top && rc == CASE_OK; p++) {
    const char *k = scalar(node(r, p->key));
    if (!k || def_field_find(r->def, k) < 0) {
      rc = bad(r, node(r, p->key), "unknown data field '%s' (not declared by the workflow)", k ? k : "?");
      break;
    }
    json_t *want;
    rc = to_json(r, node(r, p->value), 0, &want);
    if (rc != CASE_OK || r->dry) { json_decref(want); continue; }
    json_t *got = json_object_get(data, k);
    if (!got) got = json_null();
    if (!same_value(want, got)) {
      char *ws = json_dumps(want, JSON_ENCODE_ANY | JSON_COMPACT);
      char *gs = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
      failf(r, "expected data %s = %s, got %s", k, ws ? ws : "?", gs ? gs : "?");
      free(ws);
      free(gs);
    }
    json_decref(want);
  }
  json_decref(data);
  return rc;
}

/* deadlines: name -> "YYYY-MM-DD" | absent | present | {last_day, overdue} */
static int expect_deadlines(run *r, const yaml_node_t *n, case_instance *c) {
  static const char *const keys[] = {"last_day", "overdue", NULL};
  if (n->type != YAML_MAPPING_NODE) return bad(r, n, "deadlines must be a map of name -> last day");
  json_t *timers = NULL;
  if (!r->dry) {
    char *s = NULL;
    if (case_instance_timers(c, &s) == CASE_OK) timers = json_loads(s, 0, NULL);
    case_free(s);
    if (!timers) return eng_err(r->e, CASE_NOMEM, "out of memory");
  }
  int rc = CASE_OK;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    const char *name = scalar(node(r, p->key));
    yaml_node_t *v = node(r, p->value);
    const char *day = NULL;
    int want_overdue = -1, absent = 0, present = 0;
    if (!name) { rc = bad(r, node(r, p->key), "a deadline name must be a text"); break; }
    if (v->type == YAML_MAPPING_NODE) {
      if ((rc = check_keys(r, v, "a deadline expectation", keys)) != CASE_OK) break;
      yaml_node_t *ld = get(r, v, "last_day"), *od = get(r, v, "overdue");
      if (ld) day = scalar(ld);
      if (od) {
        const char *o = scalar(od);
        if (!o || (strcmp(o, "true") && strcmp(o, "false"))) { rc = bad(r, od, "overdue must be true or false"); break; }
        want_overdue = o[0] == 't';
      }
      if (!ld) present = 1;
    } else {
      day = scalar(v);
      if (!day || !*day || !strcmp(day, "absent") || !strcmp(day, "~") || !strcmp(day, "null")) {
        if (!day) { rc = bad(r, v, "a deadline expectation must be a date, absent, present or a map"); break; }
        absent = 1;
        day = NULL;
      } else if (!strcmp(day, "present")) {
        present = 1;
        day = NULL;
      }
    }
    cal_day dd;
    if (day && cal_parse_date(day, &dd) != 0) {
      rc = bad(r, v, "bad last day '%s' for deadline '%s' (expected YYYY-MM-DD, absent or present)", day, name);
      break;
    }
    if (r->dry) continue;
    sbuf got;
    sbuf_init(&got);
    int found = 0, match = 0;
    size_t i;
    json_t *t;
    json_array_foreach(timers, i, t) {
      if (strcmp(json_string_value(json_object_get(t, "name")) ? json_string_value(json_object_get(t, "name")) : "", name) != 0) continue;
      found++;
      const char *ld = json_string_value(json_object_get(t, "last_day"));
      int od = json_is_true(json_object_get(t, "overdue"));
      sbuf_printf(&got, "%s%s%s", found > 1 ? ", " : "", ld ? ld : "(no last day)", od ? " (overdue)" : "");
      if ((!day || (ld && !strcmp(ld, day))) && (want_overdue < 0 || want_overdue == od)) match = 1;
    }
    if (absent && found) failf(r, "expected no running deadline '%s', got last day %s", name, got.p);
    if (!absent && !match) {
      if (!found) failf(r, "expected deadline '%s'%s%s, got no running deadline of that name", name,
                        day ? " with last day " : "", day ? day : "");
      else failf(r, "expected deadline '%s' with last day %s%s, got %s", name, day ? day : "(any)",
                 want_overdue < 0 ? "" : want_overdue ? " (overdue)" : " (not overdue)", got.p);
    }
    (void)present;
    sbuf_free(&got);
  }
  json_decref(timers);
  return rc;
}

/* available: {role, events | includes | excludes}, or a list of such maps. */
static int expect_available(run *r, const yaml_node_t *n, case_instance *c, int64_t at) {
  static const char *const keys[] = {"role", "events", "includes", "excludes", NULL};
  if (n->type == YAML_SEQUENCE_NODE) {
    for (int i = 0; i < nitems(n); i++) {
      int rc = expect_available(r, item(r, n, i), c, at);
      if (rc != CASE_OK) return rc;
    }
    return CASE_OK;
  }
  int rc = check_keys(r, n, "available", keys);
  if (rc != CASE_OK) return rc;
  const yaml_node_t *rn = get(r, n, "role");
  const char *role;
  if (!rn) return bad(r, n, "available needs a role");
  if ((rc = want_text(r, rn, "role", &role)) != CASE_OK) return rc;
  if (def_role_find(r->def, role) < 0) return bad(r, rn, "unknown role '%s'", role);
  const char *kinds[3] = {"events", "includes", "excludes"};
  const yaml_node_t *ls[3];
  for (int k = 0; k < 3; k++) {
    ls[k] = get(r, n, kinds[k]);
    if (!ls[k]) continue;
    if (ls[k]->type != YAML_SEQUENCE_NODE) return bad(r, ls[k], "%s must be a list of event names", kinds[k]);
    for (int i = 0; i < nitems(ls[k]); i++)
      if (!scalar(item(r, ls[k], i))) return bad(r, item(r, ls[k], i), "an event name must be a text");
  }
  if (r->dry) return CASE_OK;
  char *s = NULL;
  rc = case_instance_available(c, role, at, &s);
  if (rc != CASE_OK) {
    failf(r, "available for %s failed: %s", role, case_errmsg(r->e));
    return CASE_OK;
  }
  json_t *arr = json_loads(s, 0, NULL);
  sbuf names;
  sbuf_init(&names);
  size_t i;
  json_t *x;
  json_array_foreach(arr, i, x) {
    const char *ev = json_string_value(json_object_get(x, "event"));
    sbuf_printf(&names, "%s%s", i ? "," : "", ev ? ev : "?");
  }
  const char *got = names.p ? names.p : "";
  for (int k = 0; k < 3; k++) {
    if (!ls[k]) continue;
    for (int j = 0; j < nitems(ls[k]); j++) {
      const char *want = scalar(item(r, ls[k], j));
      int has = 0;
      json_array_foreach(arr, i, x) has |= !strcmp(json_string_value(json_object_get(x, "event")) ? json_string_value(json_object_get(x, "event")) : "", want);
      if (k < 2 && !has) failf(r, "expected %s may fire '%s', got [%s]", role, want, got);
      if (k == 2 && has) failf(r, "expected %s may not fire '%s', got [%s]", role, want, got);
    }
    if (k == 0) { /* exact: nothing else */
      json_array_foreach(arr, i, x) {
        const char *ev = json_string_value(json_object_get(x, "event"));
        int listed = 0;
        for (int j = 0; j < nitems(ls[0]); j++) listed |= ev && !strcmp(ev, scalar(item(r, ls[0], j)));
        if (!listed) { failf(r, "expected %s may fire only the listed events, got also '%s'", role, ev ? ev : "?"); break; }
      }
    }
  }
  sbuf_free(&names);
  json_decref(arr);
  case_free(s);
  return CASE_OK;
}

static int expect_emitted(run *r, const yaml_node_t *n) {
  if (n->type != YAML_SEQUENCE_NODE) return bad(r, n, "emitted must be a list of notification names");
  for (int i = 0; i < nitems(n); i++) {
    const char *want = scalar(item(r, n, i));
    if (!want) return bad(r, item(r, n, i), "a notification name must be a text");
    if (r->dry) continue;
    int has = 0;
    size_t j;
    json_t *x;
    json_array_foreach(r->emitted, j, x) has |= !strcmp(json_string_value(x), want);
    if (!has) {
      char *g = json_dumps(r->emitted, JSON_COMPACT);
      failf(r, "expected notification '%s', got %s", want, g ? g : "?");
      free(g);
    }
  }
  return CASE_OK;
}

static void on_notify(void *ud, const case_instance *c, const char *name, const char *payload) {
  (void)c;
  (void)payload;
  run *r = ud;
  json_array_append_new(r->emitted, json_string(name));
}

/* ---- steps ---- */

static const char *const step_keys[] = {
    "event", "tick", "case", "role", "actor", "date", "payload", "description",
    "configuration", "data", "deadlines", "refused", "available", "emitted", "done", NULL};

static int find_case(run *r, const char *id) {
  for (int i = 0; i < r->ncases; i++)
    if (!strcmp(r->cases[i].id, id)) return i;
  return -1;
}

/* The cases a step acts on: `case:` (one id or a list); default the first case, or all for a tick. */
static int step_cases(run *r, const yaml_node_t *st, int is_tick, int *sel) {
  memset(sel, 0, sizeof(int) * (size_t)r->ncases);
  const yaml_node_t *cn = get(r, st, "case");
  if (!cn) {
    for (int i = 0; i < r->ncases; i++) sel[i] = is_tick || i == 0;
    return CASE_OK;
  }
  int n = cn->type == YAML_SEQUENCE_NODE ? nitems(cn) : 1;
  for (int i = 0; i < n; i++) {
    const yaml_node_t *x = cn->type == YAML_SEQUENCE_NODE ? item(r, cn, i) : cn;
    const char *id = scalar(x);
    int k = id ? find_case(r, id) : -1;
    if (k < 0) return bad(r, x, "unknown case '%s' (declared under cases:)", id ? id : "?");
    sel[k] = 1;
  }
  return CASE_OK;
}

static int check_refused(run *r, const yaml_node_t *ref, int *want_rc, const char **want_msg) {
  static const char *const keys[] = {"code", "message", NULL};
  *want_rc = -1;
  *want_msg = NULL;
  if (!ref) return CASE_OK;
  const yaml_node_t *cn = ref;
  if (ref->type == YAML_MAPPING_NODE) {
    int rc = check_keys(r, ref, "refused", keys);
    if (rc != CASE_OK) return rc;
    cn = get(r, ref, "code");
    const yaml_node_t *mn = get(r, ref, "message");
    if (mn && !(*want_msg = scalar(mn))) return bad(r, mn, "message must be a text");
    if (!cn) return bad(r, ref, "refused needs a code");
  }
  const char *code = scalar(cn);
  if (!code || (*want_rc = code_parse(code)) <= 0)
    return bad(r, cn, "unknown result code '%s' (expected guard, denied, not_handled, script, done, invalid, ...)",
               code ? code : "?");
  return CASE_OK;
}

static int run_step(run *r, const yaml_node_t *st, int index) {
  int rc = check_keys(r, st, "a step", step_keys);
  if (rc != CASE_OK) return rc;
  const yaml_node_t *ev = get(r, st, "event"), *tick = get(r, st, "tick");
  if (!ev == !tick) return bad(r, st, "a step has either event: or tick:");
  const char *event = NULL, *role = NULL, *actor = NULL;
  int64_t at = r->now;
  if (ev && (rc = want_text(r, ev, "event", &event)) != CASE_OK) return rc;
  const yaml_node_t *dn = tick ? tick : get(r, st, "date");
  if (dn && (rc = parse_time(r, dn, &at)) != CASE_OK) return rc;
  if (at < r->now) return bad(r, dn, "step %d goes back in time (the previous step was later)", index);
  r->now = at;
  const yaml_node_t *rn = get(r, st, "role"), *an = get(r, st, "actor");
  if (rn && (rc = want_text(r, rn, "role", &role)) != CASE_OK) return rc;
  if (role && def_role_find(r->def, role) < 0) return bad(r, rn, "unknown role '%s'", role);
  if (an && (rc = want_text(r, an, "actor", &actor)) != CASE_OK) return rc;
  if (tick && (rn || an || get(r, st, "payload") || get(r, st, "refused")))
    return bad(r, st, "a tick step has no role, actor, payload or refused");
  const yaml_node_t *ref = get(r, st, "refused");
  int want_rc;
  const char *want_msg;
  if ((rc = check_refused(r, ref, &want_rc, &want_msg)) != CASE_OK) return rc;
  char *payload = NULL;
  const yaml_node_t *pn = get(r, st, "payload");
  if (pn) {
    json_t *pj;
    if ((rc = to_json(r, pn, 0, &pj)) != CASE_OK) return rc;
    payload = json_dumps(pj, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(pj);
    if (!payload) return eng_err(r->e, CASE_NOMEM, "out of memory");
  }
  const yaml_node_t *done = get(r, st, "done");
  if (done && (!scalar(done) || (strcmp(scalar(done), "true") && strcmp(scalar(done), "false")))) {
    free(payload);
    return bad(r, done, "done must be true or false");
  }
  int *sel = calloc((size_t)r->ncases, sizeof *sel);
  if (!sel) { free(payload); return eng_err(r->e, CASE_NOMEM, "out of memory"); }
  rc = step_cases(r, st, tick != NULL, sel);
  char when[24];
  scenario_format_time(at, when);
  for (int k = 0; k < r->ncases && rc == CASE_OK; k++) {
    if (!sel[k]) continue;
    case_instance *c = r->cases[k].c;
    r->def = r->cases[k].def;
    sbuf_free(&r->fail);
    if (!r->dry) {
      json_array_clear(r->emitted);
      int fired = 0;
      int trc = case_instance_tick(c, at, &fired);
      if (trc != CASE_OK) failf(r, "a timer due by %s failed: %s: %s", when, case_errname(trc), case_errmsg(r->e));
      if (event) {
        int frc = case_instance_fire(c, event, payload, actor, role, at);
        const char *msg = case_errmsg(r->e);
        if (want_rc < 0 && frc != CASE_OK)
          failf(r, "expected the event to be accepted, got %s: %s", case_errname(frc), msg);
        else if (want_rc >= 0 && frc == CASE_OK)
          failf(r, "expected refusal '%s', got accepted", case_errname(want_rc));
        else if (want_rc >= 0 && frc != want_rc)
          failf(r, "expected refusal '%s', got %s: %s", case_errname(want_rc), case_errname(frc), msg);
        else if (want_rc >= 0 && want_msg && !strstr(msg, want_msg))
          failf(r, "expected a refusal message containing \"%s\", got \"%s\"", want_msg, msg);
      }
    }
    const yaml_node_t *x;
    if (rc == CASE_OK && (x = get(r, st, "configuration"))) rc = expect_configuration(r, x, c);
    if (rc == CASE_OK && (x = get(r, st, "data"))) rc = expect_data(r, x, c);
    if (rc == CASE_OK && (x = get(r, st, "deadlines"))) rc = expect_deadlines(r, x, c);
    if (rc == CASE_OK && (x = get(r, st, "available"))) rc = expect_available(r, x, c, at);
    if (rc == CASE_OK && (x = get(r, st, "emitted"))) rc = expect_emitted(r, x);
    if (rc == CASE_OK && done && !r->dry) {
      int want = scalar(done)[0] == 't';
      if (case_instance_done(c) != want)
        failf(r, "expected the case %s, got %s", want ? "done" : "not done",
              case_instance_done(c) ? "done" : "not done");
    }
    if (rc == CASE_OK && !r->dry && r->fail.len) {
      r->failures++;
      sbuf_printf(&r->report, "%s:%d: step %d (", r->file, npos(st).line, index);
      if (event) sbuf_printf(&r->report, "event %s as %s on %s", event, role ? role : "-", when);
      else sbuf_printf(&r->report, "tick to %s", when);
      if (r->ncases > 1) sbuf_printf(&r->report, ", case %s", r->cases[k].id);
      sbuf_printf(&r->report, "): %s\n", r->fail.p);
    }
  }
  free(sel);
  free(payload);
  return rc;
}

/* ---- the scenario file ---- */

static const char *const top_keys[] = {"scenario", "description", "workflow", "version",
                                       "location", "profile", "start", "case", "data",
                                       "cases", "steps", NULL};
static const char *const case_keys[] = {"id", "version", "location", "profile", "start", "data", NULL};

/* A `version:` node: the loaded definition of that version of the scenario's workflow. */
static int pick_version(run *r, const yaml_node_t *vn, const case_def **out) {
  json_t *v = scalar(vn) ? scalar_json(vn) : NULL;
  long long ver = json_is_integer(v) ? json_integer_value(v) : 0;
  json_decref(v);
  if (ver < 1 || ver > 2147483647) return bad(r, vn, "version must be a whole number from 1");
  *out = case_def_find(r->e, case_def_id(r->def), (int)ver);
  if (!*out) return bad(r, vn, "workflow '%s' version %lld is not among the loaded files",
                        case_def_id(r->def), ver);
  return CASE_OK;
}

static int add_case_rest(run *r, const yaml_node_t *m, const yaml_node_t *top,
                         const yaml_node_t *src, sc_case *c);

static int add_case(run *r, const yaml_node_t *m, const yaml_node_t *top) {
  /* m: a map of case_keys, or NULL for the single case described at top level */
  const yaml_node_t *src = m ? m : top;
  int rc;
  if (m && (rc = check_keys(r, m, "a case", case_keys)) != CASE_OK) return rc;
  sc_case *v = realloc(r->cases, sizeof *v * (size_t)(r->ncases + 1));
  if (!v) return eng_err(r->e, CASE_NOMEM, "out of memory");
  r->cases = v;
  sc_case *c = &v[r->ncases];
  memset(c, 0, sizeof *c);
  c->pos = npos(src);
  c->def = r->def;
  const yaml_node_t *vn = m ? get(r, m, "version") : NULL;
  if (vn && (rc = pick_version(r, vn, &c->def)) != CASE_OK) return rc;
  const case_def *top_def = r->def;
  r->def = c->def; /* data fields are checked against the case's version */
  rc = add_case_rest(r, m, top, src, c);
  r->def = top_def;
  if (rc == CASE_OK && !vn && !get(r, top, "version")) {
    /* No version named: the one in force on the case's application date. */
    const case_def *d = case_def_in_force(r->e, case_def_id(c->def), c->start);
    if (!d) return bad(r, src, "no version of workflow '%s' is in force on the start date",
                       case_def_id(c->def));
    c->def = d;
  }
  return rc;
}

static int add_case_rest(run *r, const yaml_node_t *m, const yaml_node_t *top,
                         const yaml_node_t *src, sc_case *c) {
  int rc;
  const yaml_node_t *idn = get(r, src, m ? "id" : "case");
  const char *id = "case";
  if (idn && (rc = want_text(r, idn, "case id", &id)) != CASE_OK) return rc;
  if (find_case(r, id) >= 0) return bad(r, idn, "case '%s' declared twice", id);
  if (!(c->id = xstrdup(id))) return eng_err(r->e, CASE_NOMEM, "out of memory");
  r->ncases++;
  const yaml_node_t *ln = get(r, src, "location");
  if (!ln && m) ln = get(r, top, "location");
  if (ln && (rc = want_text(r, ln, "location", &c->location)) != CASE_OK) return rc;
  const yaml_node_t *pn = get(r, src, "profile");
  if (!pn && m) pn = get(r, top, "profile");
  if ((rc = load_profile(r, c->location, pn, ln)) != CASE_OK) return rc;
  const yaml_node_t *sn = get(r, src, "start");
  if (!sn && m) sn = get(r, top, "start");
  if (!sn) return bad(r, src, "a case needs a start date (start: YYYY-MM-DD)");
  if ((rc = parse_time(r, sn, &c->start)) != CASE_OK) return rc;
  const yaml_node_t *dn = get(r, src, "data");
  if (!dn && m) dn = get(r, top, "data");
  if (dn) {
    if (dn->type != YAML_MAPPING_NODE) return bad(r, dn, "data must be a map of field -> value");
    for (yaml_node_pair_t *p = dn->data.mapping.pairs.start; p < dn->data.mapping.pairs.top; p++) {
      const char *k = scalar(node(r, p->key));
      if (!k || def_field_find(r->def, k) < 0)
        return bad(r, node(r, p->key), "unknown data field '%s' (not declared by the workflow)", k ? k : "?");
    }
    if ((rc = to_json(r, dn, 0, &c->data)) != CASE_OK) return rc;
  }
  return CASE_OK;
}

static int setup(run *r, const yaml_node_t *top) {
  int rc = check_keys(r, top, "the scenario", top_keys);
  if (rc != CASE_OK) return rc;
  const yaml_node_t *wf = get(r, top, "workflow");
  if (!wf) return bad(r, top, "missing workflow (the path of the workflow definition file)");
  const case_def *last = NULL;
  if (wf->type == YAML_SEQUENCE_NODE) {
    if (!nitems(wf)) return bad(r, wf, "workflow: an empty list");
    for (int i = 0; i < nitems(wf) && rc == CASE_OK; i++) rc = load_workflow(r, item(r, wf, i), &last);
  } else {
    rc = load_workflow(r, wf, &last);
  }
  if (rc != CASE_OK) return rc;
  r->def = last;
  const yaml_node_t *vn = get(r, top, "version");
  if (vn && (rc = pick_version(r, vn, &r->def)) != CASE_OK) return rc;
  const yaml_node_t *cs = get(r, top, "cases");
  if (cs) {
    if (cs->type != YAML_SEQUENCE_NODE || !nitems(cs))
      return bad(r, cs, "cases must be a non-empty list of {id, location, start, data}");
    for (int i = 0; i < nitems(cs) && rc == CASE_OK; i++) rc = add_case(r, item(r, cs, i), top);
  } else {
    rc = add_case(r, NULL, top);
  }
  if (rc != CASE_OK) return rc;
  const yaml_node_t *steps = get(r, top, "steps");
  if (!steps || steps->type != YAML_SEQUENCE_NODE)
    return bad(r, steps ? steps : top, "missing steps (a list of events and ticks)");
  return CASE_OK;
}

static int run_all(run *r, const yaml_node_t *top) {
  const yaml_node_t *steps = get(r, top, "steps");
  int64_t first = r->cases[0].start;
  for (int i = 1; i < r->ncases; i++) first = r->cases[i].start < first ? r->cases[i].start : first;
  r->now = first;
  for (int i = 0; i < nitems(steps); i++) {
    int rc = run_step(r, item(r, steps, i), i + 1);
    if (rc != CASE_OK) return rc;
  }
  r->nsteps = nitems(steps);
  return CASE_OK;
}

static int create_cases(run *r) {
  for (int i = 0; i < r->ncases; i++) {
    sc_case *c = &r->cases[i];
    char *data = c->data ? json_dumps(c->data, JSON_COMPACT) : NULL;
    if (c->data && !data) return eng_err(r->e, CASE_NOMEM, "out of memory");
    int rc = case_instance_create(r->e, c->def, c->id, c->location, data, c->start, &c->c);
    free(data);
    if (rc != CASE_OK) {
      char when[24];
      scenario_format_time(c->start, when);
      r->failures++;
      sbuf_printf(&r->report, "%s:%d: case %s (created on %s): expected the case to be created, got %s: %s\n",
                  r->file, c->pos.line, c->id, when, case_errname(rc), case_errmsg(r->e));
      return rc;
    }
  }
  return CASE_OK;
}

static int read_doc(run *r) {
  FILE *f = fopen(r->file, "rb");
  if (!f) return eng_err(r->e, CASE_IO, "%s: cannot open the scenario file", r->file);
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) {
    fclose(f);
    return eng_err(r->e, CASE_NOMEM, "out of memory");
  }
  yaml_parser_set_input_file(&p, f);
  int rc = CASE_OK;
  if (!yaml_parser_load(&p, &r->doc)) {
    cs_pos pos = {(int)p.problem_mark.line + 1, (int)p.problem_mark.column + 1};
    rc = p.error == YAML_MEMORY_ERROR
             ? eng_err(r->e, CASE_NOMEM, "out of memory reading %s", r->file)
             : eng_err_at(r->e, CASE_INVALID, r->file, pos, "%s%s%s", p.problem ? p.problem : "YAML error",
                          p.context ? " " : "", p.context ? p.context : "");
    memset(&r->doc, 0, sizeof r->doc);
  } else {
    yaml_document_t second;
    if (yaml_parser_load(&p, &second)) {
      yaml_node_t *root2 = yaml_document_get_root_node(&second);
      if (root2) rc = eng_err_at(r->e, CASE_INVALID, r->file, npos(root2), "a second YAML document (one scenario per file)");
      yaml_document_delete(&second);
    }
  }
  yaml_parser_delete(&p);
  fclose(f);
  return rc;
}

int case_scenario_run_file(case_engine *e, const char *path, int *failures, char **report) {
  if (failures) *failures = 0;
  if (report) *report = NULL;
  if (!e) return CASE_MISUSE;
  if (!path) return eng_err(e, CASE_MISUSE, "case_scenario_run_file: path is NULL");
  run r;
  memset(&r, 0, sizeof r);
  r.e = e;
  r.file = path;
  const char *slash = strrchr(path, '/');
  r.dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup(".");
  r.emitted = json_array();
  if (!r.dir || !r.emitted) {
    free(r.dir);
    json_decref(r.emitted);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  case_notify_fn saved = e->notify;
  void *saved_ud = e->notify_ud;
  int rc = read_doc(&r);
  yaml_node_t *top = rc == CASE_OK ? yaml_document_get_root_node(&r.doc) : NULL;
  if (rc == CASE_OK && !top) rc = eng_err_at(e, CASE_INVALID, path, (cs_pos){1, 1}, "empty scenario file");
  if (rc == CASE_OK) rc = check_aliases(&r);
  if (rc == CASE_OK) rc = setup(&r, top);
  if (rc == CASE_OK) {
    r.dry = 1;
    rc = run_all(&r, top);
    r.dry = 0;
  }
  if (rc == CASE_OK) {
    e->notify = on_notify;
    e->notify_ud = &r;
    if (create_cases(&r) == CASE_OK) rc = run_all(&r, top);
    e->notify = saved;
    e->notify_ud = saved_ud;
  }
  if (rc == CASE_OK) {
    sbuf_printf(&r.report, "%s: %d steps, %d failing\n", path, r.nsteps, r.failures);
    char *text = sbuf_take(&r.report);
    if (!text) rc = eng_err(e, CASE_NOMEM, "out of memory");
    else if (report) *report = text;
    else free(text);
    if (rc == CASE_OK && failures) *failures = r.failures;
  }
  for (int i = 0; i < r.ncases; i++) {
    case_instance_free(r.cases[i].c);
    free(r.cases[i].id);
    json_decref(r.cases[i].data);
  }
  free(r.cases);
  restore_profiles(&r);
  sbuf_free(&r.report);
  sbuf_free(&r.fail);
  json_decref(r.emitted);
  yaml_document_delete(&r.doc);
  free(r.dir);
  if (rc == CASE_OK) eng_ok(e);
  return rc;
}
