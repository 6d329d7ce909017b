/*
 * coverage.c — what process tests reached: the states entered, the transitions
 * taken, the guards seen true and false and the deadlines that ran out or were
 * met, per definition (case_coverage_*, docs/process-tests.md "Coverage").
 *
 * chart.c and instance.c call in here only while e->probe is set; each of
 * their sites tests that pointer and nothing else, so an engine that does not
 * collect pays one branch per site.
 */
#include "internal.h"
#include "libcase/scenario.h"

#include <stdlib.h>
#include <string.h>

/* What the report says about one definition: a copy, so that the counts
 * outlive the engines that ran its cases. */
typedef struct cov_state {
  char *id;
  cs_pos pos;
  int history;     /* a history pseudo-state: not counted */
} cov_state;

typedef struct cov_trans {
  const char *source;  /* borrowed from states[] */
  json_t *events;      /* array of names */
  json_t *targets;     /* array of state ids */
  cs_pos pos;
  char *guard;         /* NULL: none */
  cs_pos guard_pos;
} cov_trans;

typedef struct cov_timer {
  char *name;
  const char *state;   /* borrowed from states[] */
  int deadline;        /* TIMER_DEADLINE (the others are `after` delays) */
  cs_pos pos;
} cov_timer;

typedef struct cov_def {
  char *id;
  int version;
  char hash[65];
  char *file;          /* tidied */
  cov_state *states;
  int nstates;
  cov_trans *trans;
  int ntrans;
  cov_timer *timers;
  int ntimers;
  long cases;
  long *entered;   /* per state */
  long *taken;     /* per transition */
  long *gtrue;     /* per transition */
  long *gfalse;    /* per transition */
  long *ran_out;   /* per timer */
  long *met;       /* per timer */
} cov_def;

struct case_coverage {
  cs_probe probe;  /* what engines point at (e->probe) */
  int refs;        /* the caller's handle + each engine it is set on */
  cov_def *defs;   /* in the order first seen */
  int ndefs, cap;
  int incomplete;  /* a record was lost (out of memory) */
};

void trace_add(cs_trace *t, int kind, int index) {
  if (t->n == t->cap) {
    int cap = t->cap ? 2 * t->cap : 32;
    int *v = realloc(t->v, (size_t)cap * sizeof *v);
    if (!v) {
      t->failed = 1;
      return;
    }
    t->v = v;
    t->cap = cap;
  }
  t->v[t->n++] = (index << 3) | kind;
}

static void cov_def_free(cov_def *c) {
  for (int i = 0; i < c->nstates; i++) free(c->states[i].id);
  for (int i = 0; i < c->ntrans; i++) {
    json_decref(c->trans[i].events);
    json_decref(c->trans[i].targets);
    free(c->trans[i].guard);
  }
  for (int i = 0; i < c->ntimers; i++) free(c->timers[i].name);
  free(c->states);
  free(c->trans);
  free(c->timers);
  free(c->entered);
  free(c->id);
  free(c->file);
}

/* Copies what the report needs of d into c.  CASE_OK or CASE_NOMEM (c then
 * holds what cov_def_free frees). */
static int cov_def_fill(cov_def *c, const case_def *d) {
  memset(c, 0, sizeof *c);
  c->id = xstrdup(d->id);
  c->version = d->version;
  memcpy(c->hash, d->hash, sizeof c->hash);
  c->file = cov_tidy_path(d->file ? d->file : "?");
  c->states = calloc((size_t)d->nstates, sizeof *c->states);
  c->trans = calloc((size_t)d->ntransitions + 1, sizeof *c->trans);
  c->timers = calloc((size_t)d->ntimers + 1, sizeof *c->timers);
  size_t n = (size_t)d->nstates + 3 * (size_t)d->ntransitions + 2 * (size_t)d->ntimers;
  c->entered = calloc(n, sizeof *c->entered);
  if (!c->id || !c->file || !c->states || !c->trans || !c->timers || !c->entered)
    return CASE_NOMEM;
  c->taken = c->entered + d->nstates;
  c->gtrue = c->taken + d->ntransitions;
  c->gfalse = c->gtrue + d->ntransitions;
  c->ran_out = c->gfalse + d->ntransitions;
  c->met = c->ran_out + d->ntimers;
  for (int i = 0; i < d->nstates; i++, c->nstates++) {
    const cs_state *st = &d->states[i];
    c->states[i].pos = st->pos;
    c->states[i].history = i == 0 || st->kind == CS_HISTORY_SHALLOW || st->kind == CS_HISTORY_DEEP;
    if (!(c->states[i].id = xstrdup(st->id))) return CASE_NOMEM;
  }
  for (int i = 0; i < d->ntransitions; i++, c->ntrans++) {
    const cs_transition *t = &d->transitions[i];
    cov_trans *x = &c->trans[i];
    x->source = c->states[t->source].id;
    x->pos = t->pos;
    x->events = json_array();
    x->targets = json_array();
    if (!x->events || !x->targets) return CASE_NOMEM;
    for (int k = 0; k < t->nevents; k++)
      if (json_array_append_new(x->events, json_string(t->events[k]))) return CASE_NOMEM;
    for (int k = 0; k < t->ntargets; k++)
      if (json_array_append_new(x->targets, json_string(d->states[t->targets[k]].id)))
        return CASE_NOMEM;
    if (t->guard) {
      x->guard_pos = t->guard->pos;
      if (!(x->guard = xstrdup(t->guard->text ? t->guard->text : "?"))) return CASE_NOMEM;
    }
  }
  for (int i = 0; i < d->ntimers; i++, c->ntimers++) {
    const cs_timer *tm = &d->timers[i];
    c->timers[i].state = c->states[tm->state].id;
    c->timers[i].deadline = tm->kind == TIMER_DEADLINE;
    c->timers[i].pos = tm->pos;
    if (!(c->timers[i].name = xstrdup(tm->name))) return CASE_NOMEM;
  }
  return CASE_OK;
}

/* The record of definition d (the same id, version and content merge, from
 * whichever engine), created when missing.  NULL when out of memory. */
static cov_def *cov_find(case_coverage *cv, const case_def *d) {
  for (int i = 0; i < cv->ndefs; i++) {
    cov_def *c = &cv->defs[i];
    if (c->version == d->version && strcmp(c->hash, d->hash) == 0 && strcmp(c->id, d->id) == 0)
      return c;
  }
  if (cv->ndefs == cv->cap) {
    int cap = cv->cap ? 2 * cv->cap : 4;
    cov_def *v = realloc(cv->defs, (size_t)cap * sizeof *v);
    if (!v) return NULL;
    cv->defs = v;
    cv->cap = cap;
  }
  cov_def *c = &cv->defs[cv->ndefs];
  if (cov_def_fill(c, d) != CASE_OK) {
    cov_def_free(c);
    return NULL;
  }
  cv->ndefs++;
  return c;
}

static case_coverage *owner(cs_probe *p) { return (case_coverage *)p; }

void probe_def_added(cs_probe *p, const case_def *d) {
  if (p->abstract) return;
  if (!cov_find(owner(p), d)) owner(p)->incomplete = 1;
}

void probe_commit(cs_probe *p, const case_instance *c, const char *event, cs_trace *t,
                  int refused) {
  if (p->abstract) {
    if (refused) return;
    /* The skeleton search reads the trace of the macrostep it just ran. */
    free(p->last.v);
    p->last = *t;
    memset(t, 0, sizeof *t);
    return;
  }
  case_coverage *cv = owner(p);
  cov_def *cd = cov_find(cv, c->def);
  if (!cd || t->failed) cv->incomplete = 1;
  if (!cd) return;
  if (!event && !refused) cd->cases++;
  for (int i = 0; i < t->n; i++) {
    int kind = t->v[i] & 7, idx = t->v[i] >> 3;
    if (refused && kind != TR_GUARD_TRUE && kind != TR_GUARD_FALSE) continue;
    switch (kind) {
    case TR_GUARD_TRUE: cd->gtrue[idx]++; break;
    case TR_GUARD_FALSE: cd->gfalse[idx]++; break;
    case TR_TAKEN: cd->taken[idx]++; break;
    case TR_ENTERED: cd->entered[idx]++; break;
    case TR_MET: cd->met[idx]++; break;
    default: break;
    }
  }
}

void probe_expired(cs_probe *p, const case_instance *c, int timer) {
  if (p->abstract) return;
  cov_def *cd = cov_find(owner(p), c->def);
  if (!cd) {
    owner(p)->incomplete = 1;
    return;
  }
  cd->ran_out[timer]++;
}

static int name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* The names of the literal raise('name') / raise("name") calls in a script. */
static int queue_literal_raises(const char *text, cs_plist *queue) {
  for (const char *s = text; (s = strstr(s, "raise")) != NULL; s += 5) {
    if (s > text && (name_char(s[-1]) || s[-1] == '.' || s[-1] == ':'))
      continue; /* part of another name, or a method */
    const char *q = s + 5;
    while (*q == ' ') q++;
    if (*q++ != '(') continue;
    while (*q == ' ') q++;
    char quote = *q;
    if (quote != '\'' && quote != '"') continue;
    const char *end = strchr(q + 1, quote);
    if (!end) continue;
    char *name = xstrndup(q + 1, (size_t)(end - q - 1));
    if (!name) return CASE_NOMEM;
    int rc = event_name_problem(name) ? CASE_OK : plist_push(queue, name, NULL);
    free(name);
    if (rc != CASE_OK) return rc;
  }
  return CASE_OK;
}

int probe_actions(cs_probe *p, const cs_script *v, int n, cs_plist *queue) {
  (void)p;
  for (int i = 0; i < n; i++) {
    if (v[i].kind != SCRIPT_BLOCK || !v[i].text) continue;
    if (queue_literal_raises(v[i].text, queue) != CASE_OK) return CASE_NOMEM;
  }
  return CASE_OK;
}

static void coverage_unref(case_coverage *cv) {
  if (!cv || --cv->refs > 0) return;
  for (int i = 0; i < cv->ndefs; i++) cov_def_free(&cv->defs[i]);
  free(cv->defs);
  free(cv->probe.last.v);
  free(cv);
}

void probe_release(cs_probe *p) {
  if (p && !p->abstract) coverage_unref(owner(p));
}

/* ------------------------------------------------------------------ */
/* The public API                                                      */
/* ------------------------------------------------------------------ */

int case_coverage_open(case_coverage **out) {
  if (!out) return CASE_MISUSE;
  *out = calloc(1, sizeof **out);
  if (!*out) return CASE_NOMEM;
  (*out)->refs = 1;
  return CASE_OK;
}

void case_coverage_close(case_coverage *cv) { coverage_unref(cv); }

int case_engine_set_coverage(case_engine *e, case_coverage *cv) {
  if (!e) return CASE_MISUSE;
  if (e->probe && e->probe->abstract)
    return eng_err(e, CASE_MISUSE, "case_engine_set_coverage: called during a skeleton search");
  if (cv) {
    /* Every definition already loaded is reported, also when no case runs on it. */
    for (const case_def *d = e->defs; d; d = d->next)
      if (!cov_find(cv, d)) return eng_err(e, CASE_NOMEM, "out of memory");
    cv->refs++;
  }
  probe_release(e->probe);
  e->probe = cv ? &cv->probe : NULL;
  return eng_ok(e);
}

/* ---- the report ---- */

/* "a/b/../c" -> "a/c", "./a" -> "a": the file as a reader would write it. */
char *cov_tidy_path(const char *path) {
  size_t n = strlen(path);
  char *out = malloc(n + 2);
  char **seg = malloc((n / 2 + 2) * sizeof *seg);
  char *copy = xstrdup(path);
  if (!out || !seg || !copy) {
    free(out);
    free(seg);
    free(copy);
    return NULL;
  }
  int abs = path[0] == '/', ns = 0, up = 0; /* up: leading ".." kept */
  for (char *tok = strtok(copy, "/"); tok; tok = strtok(NULL, "/")) {
    if (strcmp(tok, ".") == 0) continue;
    if (strcmp(tok, "..") == 0 && ns > up) {
      ns--;
      continue;
    }
    if (strcmp(tok, "..") == 0 && abs) continue;
    if (strcmp(tok, "..") == 0) up++;
    seg[ns++] = tok;
  }
  char *o = out;
  if (abs) *o++ = '/';
  for (int i = 0; i < ns; i++) {
    size_t l = strlen(seg[i]);
    memcpy(o, seg[i], l);
    o += l;
    if (i + 1 < ns) *o++ = '/';
  }
  if (o == out) *o++ = '.';
  *o = '\0';
  free(seg);
  free(copy);
  return out;
}

/* One untested item, as JSON with its position. */
static int add_item(json_t *list, json_t *item, cs_pos pos) {
  if (!item) return CASE_NOMEM;
  json_object_set_new(item, "line", json_integer(pos.line));
  json_object_set_new(item, "column", json_integer(pos.col));
  return json_array_append_new(list, item) == 0 ? CASE_OK : CASE_NOMEM;
}

/* The report of one definition as JSON (see case_coverage_report()). */
static json_t *def_json(const cov_def *cd) {
  json_t *o = json_pack("{s:s, s:i, s:s, s:I}", "workflow", cd->id, "version", cd->version,
                        "file", cd->file, "cases", (json_int_t)cd->cases);
  json_t *su = json_array(), *tu = json_array(), *gu = json_array(), *du = json_array();
  if (!o || !su || !tu || !gu || !du) goto fail;
  int ns = 0, nsc = 0, ntc = 0, ng = 0, ngc = 0, nd = 0, nrun = 0, nmet = 0;
  for (int s = 0; s < cd->nstates; s++) {
    if (cd->states[s].history) continue;
    ns++;
    if (cd->entered[s]) { nsc++; continue; }
    if (add_item(su, json_pack("{s:s}", "state", cd->states[s].id), cd->states[s].pos)) goto fail;
  }
  for (int i = 0; i < cd->ntrans; i++) {
    const cov_trans *t = &cd->trans[i];
    if (cd->taken[i]) ntc++;
    else if (add_item(tu, json_pack("{s:s, s:O, s:O}", "source", t->source, "events", t->events,
                                    "targets", t->targets),
                      t->pos))
      goto fail;
    if (!t->guard) continue;
    ng++;
    if (cd->gtrue[i] && cd->gfalse[i]) { ngc++; continue; }
    if (add_item(gu, json_pack("{s:s, s:s, s:O, s:I, s:I}", "guard", t->guard, "source",
                               t->source, "events", t->events, "true", (json_int_t)cd->gtrue[i],
                               "false", (json_int_t)cd->gfalse[i]),
                 t->guard_pos))
      goto fail;
  }
  for (int i = 0; i < cd->ntimers; i++) {
    const cov_timer *tm = &cd->timers[i];
    if (!tm->deadline) continue;
    nd++;
    nrun += cd->ran_out[i] > 0;
    nmet += cd->met[i] > 0;
    if (cd->ran_out[i] && cd->met[i]) continue;
    if (add_item(du, json_pack("{s:s, s:s, s:I, s:I}", "deadline", tm->name, "state", tm->state,
                               "ran_out", (json_int_t)cd->ran_out[i], "met",
                               (json_int_t)cd->met[i]),
                 tm->pos))
      goto fail;
  }
  if (json_object_set_new(o, "states", json_pack("{s:i, s:i, s:o}", "total", ns, "covered", nsc,
                                                 "untested", su)) ||
      json_object_set_new(o, "transitions", json_pack("{s:i, s:i, s:o}", "total", cd->ntrans,
                                                      "covered", ntc, "untested", tu)) ||
      json_object_set_new(o, "guards", json_pack("{s:i, s:i, s:o}", "total", ng, "covered", ngc,
                                                 "untested", gu)) ||
      json_object_set_new(o, "deadlines", json_pack("{s:i, s:i, s:i, s:o}", "total", nd,
                                                    "ran_out", nrun, "met", nmet, "untested",
                                                    du))) {
    json_decref(o);
    return NULL;
  }
  return o;
fail:
  json_decref(o);
  json_decref(su);
  json_decref(tu);
  json_decref(gu);
  json_decref(du);
  return NULL;
}

static void pct(sbuf *b, int covered, int total) {
  if (total == 0) sbuf_puts(b, " (none)");
  else sbuf_printf(b, " (%.1f%%)", 100.0 * covered / total);
}

/* An untested line, sortable by position. */
typedef struct line_item {
  int line, col, order;
  char *text;
} line_item;

static int by_pos(const void *a, const void *b) {
  const line_item *x = a, *y = b;
  if (x->line != y->line) return x->line < y->line ? -1 : 1;
  if (x->col != y->col) return x->col < y->col ? -1 : 1;
  return x->order - y->order;
}

/* "transition on 'a' 'b'" or "eventless transition". */
static void transition_words(sbuf *b, const json_t *events) {
  size_t i;
  json_t *v;
  if (json_array_size(events) == 0) {
    sbuf_puts(b, "eventless transition");
    return;
  }
  sbuf_puts(b, "transition on");
  json_array_foreach(events, i, v) sbuf_printf(b, " '%s'", json_string_value(v));
}

static void times(sbuf *b, json_int_t n) {
  if (n == 1) sbuf_puts(b, "once");
  else sbuf_printf(b, "%lld times", (long long)n);
}

/* The text rendering of one definition's JSON (see case_coverage_report()). */
static int def_text(sbuf *b, const json_t *o) {
  const char *file = json_string_value(json_object_get(o, "file"));
  json_t *st = json_object_get(o, "states"), *tr = json_object_get(o, "transitions");
  json_t *gu = json_object_get(o, "guards"), *dl = json_object_get(o, "deadlines");
#define N(obj, k) ((int)json_integer_value(json_object_get(obj, k)))
  sbuf_printf(b, "%s version %d (%s): %d case%s\n", json_string_value(json_object_get(o, "workflow")),
              N(o, "version"), file, N(o, "cases"), N(o, "cases") == 1 ? "" : "s");
  sbuf_printf(b, "  states entered           %d/%d", N(st, "covered"), N(st, "total"));
  pct(b, N(st, "covered"), N(st, "total"));
  sbuf_printf(b, "\n  transitions taken        %d/%d", N(tr, "covered"), N(tr, "total"));
  pct(b, N(tr, "covered"), N(tr, "total"));
  sbuf_printf(b, "\n  guards true and false    %d/%d", N(gu, "covered"), N(gu, "total"));
  pct(b, N(gu, "covered"), N(gu, "total"));
  sbuf_printf(b, "\n  deadlines ran out        %d/%d", N(dl, "ran_out"), N(dl, "total"));
  pct(b, N(dl, "ran_out"), N(dl, "total"));
  sbuf_printf(b, "\n  deadlines met            %d/%d", N(dl, "met"), N(dl, "total"));
  pct(b, N(dl, "met"), N(dl, "total"));
  sbuf_puts(b, "\n");
  size_t total = json_array_size(json_object_get(st, "untested")) +
                 json_array_size(json_object_get(tr, "untested")) +
                 json_array_size(json_object_get(gu, "untested")) +
                 2 * json_array_size(json_object_get(dl, "untested"));
  if (total == 0) return CASE_OK;
  line_item *items = calloc(total, sizeof *items);
  if (!items) return CASE_NOMEM;
  size_t n = 0, i;
  json_t *x;
  int rc = CASE_OK;
  const char *kinds[4] = {"states", "transitions", "guards", "deadlines"};
  for (int k = 0; k < 4; k++) {
    json_array_foreach(json_object_get(json_object_get(o, kinds[k]), "untested"), i, x) {
      for (int half = 0; half < (k == 3 ? 2 : 1); half++) {
        sbuf t;
        sbuf_init(&t);
        if (k == 0) {
          sbuf_printf(&t, "state '%s' never entered", json_string_value(json_object_get(x, "state")));
        } else if (k == 1) {
          transition_words(&t, json_object_get(x, "events"));
          sbuf_printf(&t, " from '%s' ", json_string_value(json_object_get(x, "source")));
          json_t *tg = json_object_get(x, "targets");
          if (json_array_size(tg) == 0) sbuf_puts(&t, "(targetless)");
          size_t j;
          json_t *y;
          json_array_foreach(tg, j, y) sbuf_printf(&t, "%s'%s'", j ? ", " : "to ", json_string_value(y));
          sbuf_puts(&t, " never taken");
        } else if (k == 2) {
          json_int_t nt = json_integer_value(json_object_get(x, "true"));
          json_int_t nf = json_integer_value(json_object_get(x, "false"));
          sbuf_printf(&t, "guard '%s' (of the ", json_string_value(json_object_get(x, "guard")));
          transition_words(&t, json_object_get(x, "events"));
          sbuf_printf(&t, " from '%s') ", json_string_value(json_object_get(x, "source")));
          if (!nt && !nf) sbuf_puts(&t, "never evaluated");
          else {
            sbuf_printf(&t, "never %s (%s ", nf ? "true" : "false", nf ? "false" : "true");
            times(&t, nf ? nf : nt);
            sbuf_puts(&t, ")");
          }
        } else {
          json_int_t c = json_integer_value(json_object_get(x, half ? "met" : "ran_out"));
          if (c) { sbuf_free(&t); continue; }
          sbuf_printf(&t, "deadline '%s' of '%s' never %s",
                      json_string_value(json_object_get(x, "deadline")),
                      json_string_value(json_object_get(x, "state")),
                      half ? "met (its state left before it ran out)" : "ran out");
        }
        char *s = sbuf_take(&t);
        if (!s) { rc = CASE_NOMEM; goto done; }
        items[n].line = N(x, "line");
        items[n].col = N(x, "column");
        items[n].order = (int)n;
        items[n++].text = s;
      }
    }
  }
  qsort(items, n, sizeof *items, by_pos);
  sbuf_puts(b, "  untested:\n");
  for (i = 0; i < n; i++)
    sbuf_printf(b, "    %s:%d:%d: %s\n", file, items[i].line, items[i].col, items[i].text);
done:
  for (i = 0; i < n; i++) free(items[i].text);
  free(items);
  return rc;
#undef N
}

int case_coverage_report(case_coverage *cv, int format, char **out) {
  if (out) *out = NULL;
  if (!cv || !out || (format != CASE_COVERAGE_TEXT && format != CASE_COVERAGE_JSON))
    return CASE_MISUSE;
  json_t *defs = json_array();
  json_t *res = json_pack("{s:b, s:o}", "incomplete", cv->incomplete, "definitions", defs);
  if (!res) return CASE_NOMEM;
  for (int i = 0; i < cv->ndefs; i++) {
    json_t *o = def_json(&cv->defs[i]);
    if (!o || json_array_append_new(defs, o) != 0) {
      json_decref(res);
      return CASE_NOMEM;
    }
  }
  char *text = NULL;
  if (format == CASE_COVERAGE_JSON) {
    text = json_dumps(res, JSON_COMPACT);
  } else {
    sbuf b;
    sbuf_init(&b);
    size_t i;
    json_t *o;
    json_array_foreach(defs, i, o) {
      if (i) sbuf_puts(&b, "\n");
      if (def_text(&b, o) != CASE_OK) b.failed = 1;
    }
    if (cv->incomplete) sbuf_puts(&b, "(incomplete: some records were lost for want of memory)\n");
    text = sbuf_take(&b);
  }
  json_decref(res);
  if (!text) return CASE_NOMEM;
  *out = text;
  return CASE_OK;
}
