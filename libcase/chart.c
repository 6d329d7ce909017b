/*
 * chart.c — the statechart algorithm of the W3C SCXML recommendation,
 * Appendix D, on the definition model of internal.h.
 *
 * A macrostep works on a copy of the case's status (configuration, history
 * values, data, timers).  Only when every guard and action succeeded does the
 * copy replace the case's status; otherwise it is thrown away, so a refused or
 * failed event leaves the case exactly as it was.  Deviations from SCXML are
 * listed in docs/semantics.md.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Model helpers                                                       */
/* ------------------------------------------------------------------ */

int def_state_find(const case_def *d, const char *id) {
  if (!id || !*id) return -1;
  for (int i = 1; i < d->nstates; i++)
    if (strcmp(d->states[i].id, id) == 0) return i;
  return -1;
}

int def_field_find(const case_def *d, const char *name) {
  if (!name) return -1;
  for (int i = 0; i < d->nfields; i++)
    if (strcmp(d->fields[i].name, name) == 0) return i;
  return -1;
}

int def_param_find(const case_def *d, const char *name) {
  if (!name) return -1;
  for (int i = 0; i < d->nparams; i++)
    if (strcmp(d->params[i].name, name) == 0) return i;
  return -1;
}

int def_role_find(const case_def *d, const char *name) {
  if (!name) return -1;
  for (int i = 0; i < d->nroles; i++)
    if (strcmp(d->roles[i], name) == 0) return i;
  return -1;
}

int def_is_descendant(const case_def *d, int a, int b) {
  if (a < 0 || b < 0) return 0;
  for (int p = d->states[a].parent; p >= 0; p = d->states[p].parent)
    if (p == b) return 1;
  return 0;
}

int event_matches(const char *desc, const char *name) {
  /* A delayed transition's event belongs to its own transition alone: no
   * wildcard or prefix takes it (user descriptors may not start with after). */
  if (strncmp(name, "after.", 6) == 0) return strcmp(desc, name) == 0;
  if (strcmp(desc, "*") == 0) return 1;
  size_t n = strlen(desc);
  if (n >= 2 && desc[n - 1] == '*' && desc[n - 2] == '.') n -= 2; /* "a.*" == "a" */
  if (strncmp(desc, name, n) != 0) return 0;
  return name[n] == '\0' || name[n] == '.';
}

const char *event_name_problem(const char *name) {
  if (!name || !*name) return "an event name must not be empty";
  if (strncmp(name, "after.", 6) == 0)
    return "event names starting with 'after.' belong to delayed transitions";
  if (strcmp(name, "done.state") == 0 || strncmp(name, "done.state.", 11) == 0 ||
      strncmp(name, "done.invoke", 11) == 0)
    return "done.state.* events are raised by the engine when a state completes (SCXML)";
  if (*name == '.') return "an event name is dotted words of letters, digits, _ or -";
  for (const char *p = name; *p; p++) {
    if (*p == '.') {
      if (!p[1] || p[1] == '.') return "an event name is dotted words of letters, digits, _ or -";
      continue;
    }
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '_' || *p == '-'))
      return "an event name is dotted words of letters, digits, _ or -";
  }
  return NULL;
}

const char *type_name(cs_type t) {
  switch (t) {
  case TYPE_ANY: return "any";
  case TYPE_STRING: return "string";
  case TYPE_INTEGER: return "integer";
  case TYPE_NUMBER: return "number";
  case TYPE_BOOLEAN: return "boolean";
  case TYPE_DATE: return "date";
  case TYPE_LIST: return "list";
  case TYPE_MAP: return "map";
  }
  return "?";
}

int type_accepts(cs_type t, const json_t *v) {
  if (!v || json_is_null(v)) return 1;
  switch (t) {
  case TYPE_ANY: return 1;
  case TYPE_STRING: return json_is_string(v);
  case TYPE_INTEGER: return json_is_integer(v);
  case TYPE_NUMBER: return json_is_number(v);
  case TYPE_BOOLEAN: return json_is_boolean(v);
  case TYPE_DATE: {
    cal_day day;
    return json_is_string(v) && cal_parse_date(json_string_value(v), &day) == 0;
  }
  case TYPE_LIST: return json_is_array(v);
  case TYPE_MAP: return json_is_object(v);
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Bitsets over states                                                 */
/* ------------------------------------------------------------------ */

static inline int bs_has(const uint64_t *b, int i) { return (int)((b[i >> 6] >> (i & 63)) & 1u); }
static inline void bs_set(uint64_t *b, int i) { b[i >> 6] |= (uint64_t)1 << (i & 63); }
static inline void bs_clr(uint64_t *b, int i) { b[i >> 6] &= ~((uint64_t)1 << (i & 63)); }
static inline void bs_zero(uint64_t *b, int w) { memset(b, 0, (size_t)w * sizeof *b); }
static int bs_any(const uint64_t *b, int w) {
  for (int i = 0; i < w; i++)
    if (b[i]) return 1;
  return 0;
}
static int bs_intersects(const uint64_t *a, const uint64_t *b, int w) {
  for (int i = 0; i < w; i++)
    if (a[i] & b[i]) return 1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Preparation and status copies                                       */
/* ------------------------------------------------------------------ */

int chart_prepare(case_engine *e, case_def *d) {
  d->words = (d->nstates + 63) / 64;
  d->history_slot = malloc((size_t)d->nstates * sizeof *d->history_slot);
  if (!d->history_slot) return eng_err(e, CASE_NOMEM, "out of memory");
  d->nhistory = 0;
  for (int i = 0; i < d->nstates; i++) {
    cs_kind k = d->states[i].kind;
    d->history_slot[i] = (k == CS_HISTORY_SHALLOW || k == CS_HISTORY_DEEP) ? d->nhistory++ : -1;
  }
  /* A transition without roles that only listens to the events of timers
   * running in its own part of the chart (after.*, a deadline's on_expiry in
   * its source state, an ancestor or a descendant) belongs to the clock: no
   * role may fire it.  The same event name handled elsewhere stays open. */
  for (int i = 0; i < d->ntransitions; i++) {
    cs_transition *t = &d->transitions[i];
    int all_timer = t->nevents > 0 && t->nroles == 0;
    for (int k = 0; k < t->nevents && all_timer; k++) {
      int hit = 0;
      for (int m = 0; m < d->ntimers && !hit; m++) {
        const cs_timer *tm = &d->timers[m];
        hit = tm->event && strcmp(tm->event, t->events[k]) == 0 &&
              (tm->state == t->source || def_is_descendant(d, tm->state, t->source) ||
               def_is_descendant(d, t->source, tm->state));
      }
      all_timer = hit;
    }
    t->system = all_timer;
  }
  return CASE_OK;
}

void chart_unprepare(case_def *d) {
  free(d->history_slot);
  d->history_slot = NULL;
}

void chart_status_free(cs_status *st) {
  free(st->config);
  free(st->history);
  json_decref(st->data);
  for (int i = 0; i < st->ntimers; i++) free(st->timers[i].id);
  free(st->timers);
  memset(st, 0, sizeof *st);
}

int chart_status_init(const case_def *d, cs_status *st) {
  memset(st, 0, sizeof *st);
  st->config = calloc((size_t)d->words, sizeof *st->config);
  if (d->nhistory > 0)
    st->history = calloc((size_t)d->nhistory * (size_t)d->words, sizeof *st->history);
  st->data = json_object();
  if (!st->config || (d->nhistory > 0 && !st->history) || !st->data) {
    chart_status_free(st);
    return CASE_NOMEM;
  }
  return CASE_OK;
}

int chart_status_copy(const case_def *d, cs_status *dst, const cs_status *src) {
  memset(dst, 0, sizeof *dst);
  size_t w = (size_t)d->words;
  dst->config = malloc(w * sizeof *dst->config);
  if (d->nhistory > 0) dst->history = malloc((size_t)d->nhistory * w * sizeof *dst->history);
  dst->data = json_incref(src->data); /* shared until an action writes: own_data() */
  if (src->ntimers > 0) dst->timers = malloc((size_t)src->ntimers * sizeof *dst->timers);
  if (!dst->config || (d->nhistory > 0 && !dst->history) || !dst->data ||
      (src->ntimers > 0 && !dst->timers))
    goto fail;
  memcpy(dst->config, src->config, w * sizeof *dst->config);
  if (d->nhistory > 0)
    memcpy(dst->history, src->history, (size_t)d->nhistory * w * sizeof *dst->history);
  dst->cap_timers = src->ntimers;
  for (int i = 0; i < src->ntimers; i++) {
    dst->timers[i] = src->timers[i];
    dst->timers[i].id = xstrdup(src->timers[i].id);
    dst->ntimers = i + 1;
    if (!dst->timers[i].id) goto fail;
  }
  dst->timer_seq = src->timer_seq;
  dst->last_time = src->last_time;
  dst->revision = src->revision;
  dst->done = src->done;
  return CASE_OK;
fail:
  chart_status_free(dst);
  return CASE_NOMEM;
}

/* ------------------------------------------------------------------ */
/* A running macrostep                                                 */
/* ------------------------------------------------------------------ */

enum { BS_EXIT, BS_ENTER, BS_DEFAULT, BS_DEFHIST, BS_EFF, BS_TMP, BS_TMP2, BS_COUNT };

typedef struct run {
  case_engine *e;
  case_instance *c;
  const case_def *d;
  cs_status *w;           /* the working status */
  int words;
  const cs_profile *profile;
  const char *actor;
  const char *role;       /* role of the external event; NULL for system events */
  int role_idx;
  int64_t time;
  const char *event;      /* the event being processed ("" while entering the initial config) */
  json_t *payload;        /* borrowed */
  cs_plist queue;         /* internal events */
  int qhead;
  cs_plist emitted;
  int steps;
  uint64_t *bs[BS_COUNT];
  int *enabled;           /* transition indices */
  int nenabled;
  int *scratch;           /* transition indices, for conflict removal */
  int data_owned;         /* w->data is this macrostep's private copy */
  int by_hand;            /* selecting for an external event fired by a host, not a timer */
  cs_probe *probe;        /* e->probe for a macrostep (coverage, skeleton search); else NULL */
  cs_trace trace;         /* what this macrostep did, for the probe */
} run;

static int run_init(run *r, case_instance *c, cs_status *w) {
  memset(r, 0, sizeof *r);
  r->e = c->engine;
  r->c = c;
  r->d = c->def;
  r->w = w;
  r->words = r->d->words;
  r->profile = eng_profile_find(r->e, c->location);
  r->role_idx = -1;
  uint64_t *mem = calloc((size_t)r->words * BS_COUNT, sizeof *mem);
  r->enabled = malloc(((size_t)r->d->nstates + 1) * 2 * sizeof *r->enabled);
  if (!mem || !r->enabled) {
    free(mem);
    free(r->enabled);
    return CASE_NOMEM;
  }
  for (int i = 0; i < BS_COUNT; i++) r->bs[i] = mem + (size_t)i * (size_t)r->words;
  r->scratch = r->enabled + r->d->nstates + 1;
  return CASE_OK;
}

static void run_free(run *r) {
  free(r->bs[0]);
  free(r->enabled);
  plist_clear(&r->queue);
  free(r->queue.v);
  plist_clear(&r->emitted);
  free(r->emitted.v);
  free(r->trace.v);
}

static void call_setup(run *r, case_call *call, const cs_script *s, int is_guard) {
  memset(call, 0, sizeof *call);
  call->engine = r->e;
  call->def = r->d;
  call->inst = r->c;
  call->profile = r->profile;
  call->data = r->w->data;
  call->event = r->event;
  call->payload = r->payload;
  call->actor = r->actor;
  call->role = r->role;
  call->time = r->time;
  call->is_guard = is_guard;
  call->raised = &r->queue;
  call->emitted = &r->emitted;
  call->script = s;
  call->status = r->w;
}

/* Turns a failed call into the engine error. */
static int call_fail(run *r, case_call *call, int rc, const char *what) {
  const cs_script *s = call->script;
  if (call->errmsg && s && s->kind == SCRIPT_NATIVE)
    eng_err_at(r->e, rc, r->d->file, s->pos, "native %s '%s' failed: %s", what, s->text,
               call->errmsg);
  else if (call->errmsg) {
    /* The sandbox's message already starts with file:line:col; keep the
     * position for case_errpos() too. */
    eng_err(r->e, rc, "%s", call->errmsg);
    if (s) {
      free(r->e->errfile);
      r->e->errfile = xstrdup(r->d->file);
      r->e->errline = s->pos.line;
      r->e->errcol = s->pos.col;
      /* the line the sandbox found (through the script's line map) */
      size_t fl = strlen(r->d->file);
      int line, col, used = 0;
      if (strncmp(call->errmsg, r->d->file, fl) == 0 && call->errmsg[fl] == ':' &&
          sscanf(call->errmsg + fl + 1, "%d:%d:%n", &line, &col, &used) == 2 && used > 0 &&
          line > 0 && col > 0) {
        r->e->errline = line;
        r->e->errcol = col;
      }
    }
  }
  else if (s)
    eng_err_at(r->e, rc, r->d->file, s->pos, "%s '%s' failed: %s", what, s->text,
               case_errstr(rc));
  else
    eng_err(r->e, rc, "%s failed: %s", what, case_errstr(rc));
  return rc;
}

static void call_done(case_call *call) {
  free(call->errmsg);
  for (int i = 0; i < call->nscratch; i++) free(call->scratch[i]);
  free(call->scratch);
  call->scratch = NULL;
  call->nscratch = 0;
  call->errmsg = NULL;
}

/* The working status shares the case's data until the first action runs:
 * guards only read it, and most macrosteps of a chain have no actions.  The
 * copy is shallow: actions replace a field's value as a whole (the sandbox
 * and case_call_set() store new JSON values), they never change one in place,
 * so the values themselves can stay shared with the committed status. */
static int own_data(run *r) {
  if (r->data_owned) return CASE_OK;
  json_t *copy = json_copy(r->w->data);
  if (!copy) return eng_err(r->e, CASE_NOMEM, "out of memory");
  json_decref(r->w->data);
  r->w->data = copy;
  r->data_owned = 1;
  return CASE_OK;
}

static int run_script(run *r, const cs_script *s, int is_guard, int *result) {
  if (!is_guard && own_data(r) != CASE_OK) return CASE_NOMEM;
  case_call call;
  call_setup(r, &call, s, is_guard);
  int rc;
  if (s->kind == SCRIPT_NATIVE) {
    const cs_native *n = (s->ref >= 0 && s->ref < r->e->nnatives) ? &r->e->natives[s->ref] : NULL;
    if (!n) {
      rc = CASE_MISUSE;
      call.errmsg = xstrdup("native function is no longer registered");
    } else if (is_guard) {
      int res = 0;
      rc = n->guard(n->ud, &call, &res);
      if (rc == CASE_OK) *result = res != 0;
    } else {
      rc = n->action(n->ud, &call);
    }
    if (rc < 0 || rc > CASE_DONE) { /* not a result code: report it, as an error */
      if (!call.errmsg) {
        char buf[64];
        snprintf(buf, sizeof buf, "returned %d, which is not a result code", rc);
        call.errmsg = xstrdup(buf);
      }
      rc = CASE_ERROR;
    }
    if (rc != CASE_OK && !call.errmsg) call.errmsg = xstrdup(case_errstr(rc));
  } else if (is_guard) {
    rc = sbx_guard(r->e->sandbox, &call, s, result);
  } else {
    rc = sbx_action(r->e->sandbox, &call, s);
  }
  if (rc != CASE_OK) call_fail(r, &call, rc, is_guard ? "guard" : "action");
  call_done(&call);
  return rc;
}

static int run_actions(run *r, const cs_script *v, int n) {
  if (r->probe && r->probe->abstract) return probe_actions(r->probe, v, n, &r->queue);
  for (int i = 0; i < n; i++) {
    int rc = run_script(r, &v[i], 0, NULL);
    if (rc != CASE_OK) return rc;
  }
  return CASE_OK;
}

/* ---- event/role/guard matching ---- */

static int matches_event(const cs_transition *t, const char *event) {
  if (!event) return t->nevents == 0;
  for (int i = 0; i < t->nevents; i++)
    if (event_matches(t->events[i], event)) return 1;
  return 0;
}

static int role_allows(const run *r, const cs_transition *t) {
  if (t->system && r->by_hand) return 0; /* the clock's transitions: timers only */
  if (!r->role) return 1;           /* system events: timers, internal events */
  if (t->system) return 0;
  if (t->nroles == 0) return 1;     /* open to every role */
  for (int i = 0; i < t->nroles; i++)
    if (t->roles[i] == r->role_idx) return 1;
  return 0;
}

static int guard_holds(run *r, const cs_transition *t, int *ok) {
  *ok = 1;
  if (!t->guard) return CASE_OK;
  if (!r->probe) return run_script(r, t->guard, 1, ok);
  int rc = CASE_OK;
  if (r->probe->abstract) *ok = r->probe->force[t->index];
  else rc = run_script(r, t->guard, 1, ok);
  if (rc == CASE_OK) trace_add(&r->trace, *ok ? TR_GUARD_TRUE : TR_GUARD_FALSE, t->index);
  return rc;
}

/* ---- SCXML helper functions (Appendix D) ---- */

static int is_history(const case_def *d, int s) {
  return d->states[s].kind == CS_HISTORY_SHALLOW || d->states[s].kind == CS_HISTORY_DEEP;
}

static int is_compound(const case_def *d, int s) { return d->states[s].kind == CS_COMPOUND; }

static uint64_t *history_bits(run *r, int h) {
  return r->w->history + (size_t)r->d->history_slot[h] * (size_t)r->words;
}

/* Adds the effective target states of transition t to bitset `out`. */
static void effective_targets(run *r, const cs_transition *t, uint64_t *out) {
  for (int i = 0; i < t->ntargets; i++) {
    int s = t->targets[i];
    if (is_history(r->d, s)) {
      uint64_t *hv = history_bits(r, s);
      if (bs_any(hv, r->words)) {
        for (int k = 0; k < r->words; k++) out[k] |= hv[k];
      } else {
        const cs_state *h = &r->d->states[s];
        for (int j = 0; j < h->ninitial; j++) bs_set(out, h->initial[j]);
      }
    } else {
      bs_set(out, s);
    }
  }
}

/* findLCCA: the nearest proper ancestor of `first` that is compound (or the
 * root) and contains every state of `others`. */
static int find_lcca(run *r, int first, const uint64_t *others) {
  for (int a = r->d->states[first].parent; a >= 0; a = r->d->states[a].parent) {
    if (a != 0 && !is_compound(r->d, a)) continue;
    int all = 1;
    for (int s = 1; s < r->d->nstates && all; s++)
      if (bs_has(others, s) && !def_is_descendant(r->d, s, a)) all = 0;
    if (all) return a;
  }
  return 0;
}

/* getTransitionDomain: -1 for a targetless transition. */
static int transition_domain(run *r, const cs_transition *t) {
  uint64_t *eff = r->bs[BS_EFF];
  bs_zero(eff, r->words); /* callers read BS_EFF: never leave another transition's there */
  if (t->ntargets == 0) return -1;
  effective_targets(r, t, eff);
  if (t->source == 0) return 0;
  if (t->internal && is_compound(r->d, t->source)) {
    int all = 1;
    for (int s = 1; s < r->d->nstates && all; s++)
      if (bs_has(eff, s) && !def_is_descendant(r->d, s, t->source)) all = 0;
    if (all) return t->source;
  }
  return find_lcca(r, t->source, eff);
}

/* computeExitSet for one transition, added to `out`. */
static void exit_set_one(run *r, const cs_transition *t, uint64_t *out) {
  int dom = transition_domain(r, t);
  if (dom < 0) return;
  for (int s = 1; s < r->d->nstates; s++)
    if (bs_has(r->w->config, s) && def_is_descendant(r->d, s, dom)) bs_set(out, s);
}

/* removeConflictingTransitions, in place on r->enabled. */
static void remove_conflicts(run *r) {
  int n = 0;
  int *filtered = r->scratch;
  uint64_t *x1 = r->bs[BS_TMP], *x2 = r->bs[BS_TMP2];
  for (int i = 0; i < r->nenabled; i++) {
    const cs_transition *t1 = &r->d->transitions[r->enabled[i]];
    int preempted = 0;
    bs_zero(x1, r->words);
    exit_set_one(r, t1, x1);
    int keep = 0;
    /* First pass: does anything preempt t1? */
    for (int j = 0; j < n && !preempted; j++) {
      const cs_transition *t2 = &r->d->transitions[filtered[j]];
      bs_zero(x2, r->words);
      exit_set_one(r, t2, x2);
      if (bs_intersects(x1, x2, r->words) && !def_is_descendant(r->d, t1->source, t2->source))
        preempted = 1;
    }
    if (preempted) continue;
    /* Second pass: drop the transitions t1 preempts (t1's source is deeper). */
    for (int j = 0; j < n; j++) {
      const cs_transition *t2 = &r->d->transitions[filtered[j]];
      bs_zero(x2, r->words);
      exit_set_one(r, t2, x2);
      if (!bs_intersects(x1, x2, r->words)) filtered[keep++] = filtered[j];
    }
    n = keep;
    filtered[n++] = r->enabled[i];
  }
  memcpy(r->enabled, filtered, (size_t)n * sizeof *filtered);
  r->nenabled = n;
}

/*
 * selectTransitions / selectEventlessTransitions.  `event` NULL selects
 * eventless transitions.  Role checks apply to external events only
 * (r->role set).
 */
static int select_transitions(run *r, const char *event) {
  r->nenabled = 0;
  const case_def *d = r->d;
  for (int s = 1; s < d->nstates; s++) {
    if (!bs_has(r->w->config, s)) continue;
    if (d->states[s].kind != CS_ATOMIC && d->states[s].kind != CS_FINAL) continue;
    int found = 0;
    for (int a = s; a > 0 && !found; a = d->states[a].parent) {
      const cs_state *st = &d->states[a];
      for (int k = 0; k < st->ntransitions; k++) {
        const cs_transition *t = &d->transitions[st->transitions[k]];
        if (!matches_event(t, event) || !role_allows(r, t)) continue;
        int ok;
        int rc = guard_holds(r, t, &ok);
        if (rc != CASE_OK) return rc;
        if (!ok) continue;
        int dup = 0;
        for (int m = 0; m < r->nenabled; m++)
          if (r->enabled[m] == t->index) dup = 1;
        if (!dup) r->enabled[r->nenabled++] = t->index;
        found = 1;
        break;
      }
    }
  }
  if (r->nenabled > 1) remove_conflicts(r);
  return CASE_OK;
}

/* ---- timers ---- */

int chart_param_long(const case_instance *c, const char *name, long *out) {
  const json_t *v = NULL;
  const cs_profile *p = eng_profile_find(c->engine, c->location);
  if (p && p->params) v = json_object_get(p->params, name);
  if (!v) {
    int i = def_param_find(c->def, name);
    if (i >= 0) v = c->def->params[i].value;
  }
  if (!v) return CASE_NOTFOUND;
  if (json_is_integer(v)) {
    *out = (long)json_integer_value(v);
    return CASE_OK;
  }
  if (json_is_real(v)) {
    double x = json_real_value(v);
    if (x == (double)(long)x) {
      *out = (long)x;
      return CASE_OK;
    }
  }
  return CASE_INVALID;
}

static int start_timers(run *r, int s) {
  const cs_state *st = &r->d->states[s];
  cs_status *w = r->w;
  for (int i = 0; i < st->ntimers; i++) {
    const cs_timer *tm = &r->d->timers[st->timers[i]];
    long amount = tm->dur.amount;
    if (tm->dur.param) {
      int rc = chart_param_long(r->c, tm->dur.param, &amount);
      if (rc != CASE_OK)
        return eng_err_at(r->e, rc == CASE_NOTFOUND ? CASE_NOTFOUND : CASE_INVALID, r->d->file,
                          tm->dur.pos, "param '%s' of %s '%s' is %s (expected an integer)",
                          tm->dur.param, tm->kind == TIMER_AFTER ? "delay" : "deadline", tm->name,
                          rc == CASE_NOTFOUND ? "not defined" : "not an integer");
    }
    int64_t due;
    cal_day last;
    int rc = cal_term(r->e->calendar, tm->dur.clock, r->time, amount, tm->dur.unit,
                      tm->dur.same_day, &due, &last);
    if (rc != CASE_OK)
      return eng_err_at(r->e, rc, r->d->file, tm->dur.pos, "cannot compute the term of '%s': "
                        "%ld %s on the %s clock", tm->name, amount, cal_unit_name(tm->dur.unit),
                        cal_clock_name(tm->dur.clock));
    if (w->ntimers == w->cap_timers) {
      int cap = w->cap_timers ? 2 * w->cap_timers : 4;
      cs_timer_inst *v = realloc(w->timers, (size_t)cap * sizeof *v);
      if (!v) return eng_err(r->e, CASE_NOMEM, "out of memory");
      w->timers = v;
      w->cap_timers = cap;
    }
    char id[32];
    int64_t seq = ++w->timer_seq;
    snprintf(id, sizeof id, "t%lld", (long long)seq);
    cs_timer_inst *ti = &w->timers[w->ntimers];
    memset(ti, 0, sizeof *ti);
    ti->id = xstrdup(id);
    if (!ti->id) return eng_err(r->e, CASE_NOMEM, "out of memory");
    ti->seq = seq;
    ti->timer = st->timers[i];
    ti->started = r->time;
    ti->due = due;
    ti->last_day = last;
    w->ntimers++;
  }
  return CASE_OK;
}

/* ---- deadline changes from actions (extend_deadline / set_deadline) ---- */

int chart_deadline_change(case_call *call, const char *name, const char *duration,
                          int from_start, char *msg, size_t msglen) {
  const char *fn = from_start ? "set_deadline" : "extend_deadline";
  if (!call || !call->status || call->is_guard) {
    snprintf(msg, msglen, "%s: only actions may change a deadline", fn);
    return CASE_MISUSE;
  }
  cs_status *w = call->status;
  const case_def *d = call->def;
  cs_timer_inst *ti = NULL;
  for (int i = 0; i < w->ntimers; i++) {
    const cs_timer *tm = &d->timers[w->timers[i].timer];
    if (tm->kind == TIMER_DEADLINE && strcmp(tm->name, name) == 0) ti = &w->timers[i];
  }
  if (!ti) {
    snprintf(msg, msglen, "%s: no running deadline '%s' (its state is not active)", fn, name);
    return CASE_NOTFOUND;
  }
  const cs_timer *tm = &d->timers[ti->timer];
  long amount;
  cs_unit unit;
  if (cal_duration_parse(duration, &amount, NULL, &unit) != 0) {
    snprintf(msg, msglen, "%s: bad duration '%s' (expected \"<number> <unit>\" with unit "
             "seconds, minutes, hours, days, working days, weeks, months or years)", fn, duration);
    return CASE_INVALID;
  }
  int64_t trigger;
  int same_day = 0;
  if (from_start) {
    trigger = ti->started;
    same_day = tm->dur.same_day;
  } else if (ti->last_day != CAL_NO_DAY) {
    trigger = cal_local_midnight(ti->last_day); /* day 1 is the day after the last day */
  } else {
    trigger = ti->due;
  }
  int64_t due;
  cal_day last;
  int rc = cal_term(call->engine->calendar, tm->dur.clock, trigger, amount, unit, same_day, &due,
                    &last);
  if (rc != CASE_OK) {
    snprintf(msg, msglen, "%s: cannot count %ld %s on the %s clock of deadline '%s'", fn, amount,
             cal_unit_name(unit), cal_clock_name(tm->dur.clock), name);
    return rc;
  }
  ti->due = due;
  ti->last_day = last;
  if (due > call->time) ti->fired = 0; /* running again */
  if (msglen) msg[0] = '\0';
  return CASE_OK;
}

static void cancel_timers(run *r, int s) {
  cs_status *w = r->w;
  int k = 0;
  for (int i = 0; i < w->ntimers; i++) {
    if (r->d->timers[w->timers[i].timer].state == s) {
      if (r->probe && !w->timers[i].fired) trace_add(&r->trace, TR_MET, w->timers[i].timer);
      free(w->timers[i].id);
      continue;
    }
    w->timers[k++] = w->timers[i];
  }
  w->ntimers = k;
}

/* ---- exit ---- */

static int exit_states(run *r) {
  const case_def *d = r->d;
  uint64_t *ex = r->bs[BS_EXIT];
  bs_zero(ex, r->words);
  for (int i = 0; i < r->nenabled; i++) exit_set_one(r, &d->transitions[r->enabled[i]], ex);
  /* Record history for every state being exited, before anything leaves. */
  for (int s = d->nstates - 1; s > 0; s--) {
    if (!bs_has(ex, s)) continue;
    const cs_state *st = &d->states[s];
    for (int k = 0; k < st->nchildren; k++) {
      int h = st->children[k];
      if (!is_history(d, h)) continue;
      uint64_t *hv = history_bits(r, h);
      bs_zero(hv, r->words);
      for (int x = 1; x < d->nstates; x++) {
        if (!bs_has(r->w->config, x)) continue;
        if (d->states[h].kind == CS_HISTORY_DEEP) {
          if ((d->states[x].kind == CS_ATOMIC || d->states[x].kind == CS_FINAL) &&
              def_is_descendant(d, x, s))
            bs_set(hv, x);
        } else if (d->states[x].parent == s) {
          bs_set(hv, x);
        }
      }
    }
  }
  /* Exit innermost first: reverse document order. */
  for (int s = d->nstates - 1; s > 0; s--) {
    if (!bs_has(ex, s)) continue;
    int rc = run_actions(r, d->states[s].onexit, d->states[s].nonexit);
    if (rc != CASE_OK) return rc;
    cancel_timers(r, s);
    bs_clr(r->w->config, s);
  }
  return CASE_OK;
}

/* ---- entry ---- */

static void add_descendants(run *r, int s);

static int enter_contains_descendant_of(run *r, int child) {
  const uint64_t *en = r->bs[BS_ENTER];
  for (int x = child; x < r->d->nstates; x++)
    if (bs_has(en, x) && (x == child || def_is_descendant(r->d, x, child))) return 1;
  return 0;
}

static void add_parallel_children(run *r, int p) {
  const cs_state *st = &r->d->states[p];
  for (int k = 0; k < st->nchildren; k++) {
    int ch = st->children[k];
    if (is_history(r->d, ch)) continue;
    if (!enter_contains_descendant_of(r, ch)) add_descendants(r, ch);
  }
}

static void add_ancestors(run *r, int s, int ancestor) {
  for (int a = r->d->states[s].parent; a > 0 && a != ancestor; a = r->d->states[a].parent) {
    bs_set(r->bs[BS_ENTER], a);
    if (r->d->states[a].kind == CS_PARALLEL) add_parallel_children(r, a);
  }
}

static void add_descendants(run *r, int s) {
  const case_def *d = r->d;
  const cs_state *st = &d->states[s];
  if (is_history(d, s)) {
    uint64_t *hv = history_bits(r, s);
    if (bs_any(hv, r->words)) {
      for (int x = 1; x < d->nstates; x++)
        if (bs_has(hv, x)) add_descendants(r, x);
      for (int x = 1; x < d->nstates; x++)
        if (bs_has(hv, x)) add_ancestors(r, x, st->parent);
    } else {
      bs_set(r->bs[BS_DEFHIST], s);
      for (int j = 0; j < st->ninitial; j++) add_descendants(r, st->initial[j]);
      for (int j = 0; j < st->ninitial; j++) add_ancestors(r, st->initial[j], st->parent);
    }
    return;
  }
  bs_set(r->bs[BS_ENTER], s);
  if (st->kind == CS_COMPOUND) {
    bs_set(r->bs[BS_DEFAULT], s);
    for (int j = 0; j < st->ninitial; j++) add_descendants(r, st->initial[j]);
    for (int j = 0; j < st->ninitial; j++) add_ancestors(r, st->initial[j], s);
  } else if (st->kind == CS_PARALLEL) {
    add_parallel_children(r, s);
  }
}

static int in_final_state(run *r, int s) {
  const cs_state *st = &r->d->states[s];
  if (st->kind == CS_COMPOUND || s == 0) {
    for (int k = 0; k < st->nchildren; k++) {
      int ch = st->children[k];
      if (r->d->states[ch].kind == CS_FINAL && bs_has(r->w->config, ch)) return 1;
    }
    return 0;
  }
  if (st->kind == CS_PARALLEL) {
    for (int k = 0; k < st->nchildren; k++) {
      int ch = st->children[k];
      if (is_history(r->d, ch)) continue;
      if (!in_final_state(r, ch)) return 0;
    }
    return 1;
  }
  return 0;
}

static int raise_done(run *r, int s) {
  char *name = malloc(strlen(r->d->states[s].id) + sizeof "done.state.");
  if (!name) return eng_err(r->e, CASE_NOMEM, "out of memory");
  strcpy(name, "done.state.");
  strcat(name, r->d->states[s].id);
  int rc = plist_push(&r->queue, name, NULL);
  free(name);
  return rc == CASE_OK ? CASE_OK : eng_err(r->e, rc, "out of memory");
}

/* Enters the states of BS_ENTER, outermost first (document order). */
static int enter_computed(run *r) {
  const case_def *d = r->d;
  for (int s = 1; s < d->nstates; s++) {
    if (!bs_has(r->bs[BS_ENTER], s)) continue;
    const cs_state *st = &d->states[s];
    bs_set(r->w->config, s);
    if (r->probe) trace_add(&r->trace, TR_ENTERED, s);
    int rc = start_timers(r, s);
    if (rc == CASE_OK) rc = run_actions(r, st->onentry, st->nonentry);
    if (rc != CASE_OK) return rc;
    /* Default history content: the actions of the history default transition. */
    for (int k = 0; k < st->nchildren; k++) {
      int h = st->children[k];
      if (is_history(d, h) && bs_has(r->bs[BS_DEFHIST], h)) {
        rc = run_actions(r, d->states[h].initial_actions, d->states[h].ninitial_actions);
        if (rc != CASE_OK) return rc;
      }
    }
    if (st->kind == CS_FINAL) {
      int parent = st->parent;
      if (parent == 0) {
        r->w->done = 1;
      } else {
        rc = raise_done(r, parent);
        if (rc != CASE_OK) return rc;
        int gp = d->states[parent].parent;
        if (gp > 0 && d->states[gp].kind == CS_PARALLEL && in_final_state(r, gp)) {
          rc = raise_done(r, gp);
          if (rc != CASE_OK) return rc;
        }
      }
    }
  }
  return CASE_OK;
}

static void clear_entry_sets(run *r) {
  bs_zero(r->bs[BS_ENTER], r->words);
  bs_zero(r->bs[BS_DEFAULT], r->words);
  bs_zero(r->bs[BS_DEFHIST], r->words);
}

/* enterStates: computeEntrySet over the enabled transitions, then enter. */
static int enter_states(run *r) {
  const case_def *d = r->d;
  clear_entry_sets(r);
  for (int i = 0; i < r->nenabled; i++) {
    const cs_transition *t = &d->transitions[r->enabled[i]];
    if (t->ntargets == 0) continue; /* targetless: enters nothing */
    for (int j = 0; j < t->ntargets; j++) add_descendants(r, t->targets[j]);
    int dom = transition_domain(r, t); /* also fills BS_EFF with the effective targets */
    for (int s = 1; s < d->nstates; s++)
      if (bs_has(r->bs[BS_EFF], s)) add_ancestors(r, s, dom);
  }
  return enter_computed(r);
}

/* The initial transition of the document: the root's `initial` targets. */
static int enter_initial(run *r) {
  const cs_state *root = &r->d->states[0];
  clear_entry_sets(r);
  for (int j = 0; j < root->ninitial; j++) add_descendants(r, root->initial[j]);
  for (int j = 0; j < root->ninitial; j++) add_ancestors(r, root->initial[j], 0);
  return enter_computed(r);
}

static int microstep(run *r) {
  if (r->probe)
    for (int i = 0; i < r->nenabled; i++) trace_add(&r->trace, TR_TAKEN, r->enabled[i]);
  int rc = exit_states(r);
  for (int i = 0; i < r->nenabled && rc == CASE_OK; i++) {
    const cs_transition *t = &r->d->transitions[r->enabled[i]];
    rc = run_actions(r, t->actions, t->nactions);
  }
  if (rc == CASE_OK) rc = enter_states(r);
  return rc;
}

static int count_step(run *r) {
  long long limit = r->e->limits[CASE_LIMIT_MICROSTEPS];
  if (++r->steps > limit)
    return eng_err(r->e, CASE_LIMIT,
                   "case '%s': more than %lld microsteps in one macrostep (event '%s'): "
                   "eventless transitions or internal events keep firing; raise "
                   "CASE_LIMIT_MICROSTEPS or break the loop",
                   r->c->id, limit, r->event && *r->event ? r->event : "(initial)");
  return CASE_OK;
}

/* Eventless transitions until stable, then internal events, until both are
 * exhausted (the inner loop of SCXML's mainEventLoop). */
static int run_to_completion(run *r) {
  const char *ext_event = r->event;
  json_t *ext_payload = r->payload;
  int rc = CASE_OK;
  while (!r->w->done) {
    rc = select_transitions(r, NULL);
    if (rc != CASE_OK) break;
    if (r->nenabled == 0) {
      if (r->qhead >= r->queue.n) break;
      cs_pending *ie = &r->queue.v[r->qhead++];
      r->event = ie->name;
      r->payload = ie->payload;
      const char *save_role = r->role;
      r->role = NULL; /* internal events are not subject to roles */
      rc = select_transitions(r, ie->name);
      r->role = save_role;
      if (rc != CASE_OK) break;
      if (r->nenabled == 0) continue;
    }
    rc = count_step(r);
    if (rc == CASE_OK) rc = microstep(r);
    if (rc != CASE_OK) break;
  }
  r->event = ext_event;
  r->payload = ext_payload;
  return rc;
}

/* The message for a refused event, built from the blocker list (the guards
 * see the actor and payload of the refused fire). */
static int refuse(case_instance *c, const char *event, const char *role, const char *actor,
                  json_t *payload, int64_t at) {
  json_t *ex = NULL;
  cs_ask ask = {actor, payload, 0};
  int rc = chart_explain(c, event, role, &ask, at, &ex);
  if (rc != CASE_OK) return rc;
  json_t *bl = json_object_get(ex, "blockers");
  int code = CASE_NOTHANDLED;
  sbuf b;
  sbuf_init(&b);
  sbuf_printf(&b, "case '%s': event '%s' refused for role %s", c->id, event,
              role ? role : "(none)");
  size_t i;
  json_t *it;
  int seen_role = 0, seen_guard = 0, seen_error = 0;
  json_array_foreach(bl, i, it) {
    const char *k = json_string_value(json_object_get(it, "code"));
    const char *m = json_string_value(json_object_get(it, "message"));
    sbuf_printf(&b, "%s %s", i ? ";" : ":", m ? m : "");
    if (k && strcmp(k, "role") == 0) seen_role = 1;
    if (k && strcmp(k, "guard") == 0) seen_guard = 1;
    if (k && strcmp(k, "guard_error") == 0) seen_error = 1;
  }
  if (seen_error) code = CASE_SCRIPT;
  else if (seen_guard) code = CASE_GUARD;
  else if (seen_role) code = CASE_DENIED;
  json_decref(ex);
  char *msg = sbuf_take(&b);
  if (!msg) return eng_err(c->engine, CASE_NOMEM, "out of memory");
  eng_err(c->engine, code, "%s", msg);
  free(msg);
  return code;
}

static void deliver(run *r) {
  if (!r->e->notify) return;
  for (int i = 0; i < r->emitted.n; i++) {
    char *p = json_dumps(r->emitted.v[i].payload, JSON_COMPACT | JSON_ENCODE_ANY);
    r->e->notify(r->e->notify_ud, r->c, r->emitted.v[i].name, p ? p : "null");
    free(p);
  }
}

int chart_macrostep(case_instance *c, const char *event, json_t *payload, const char *actor,
                    const char *role, int64_t at, int is_timer) {
  case_engine *e = c->engine;
  if (c->st.done) return eng_err(e, CASE_DONE, "case '%s' is done: it reached a final state", c->id);
  if (role && def_role_find(c->def, role) < 0) {
    sbuf b;
    sbuf_init(&b);
    for (int i = 0; i < c->def->nroles; i++) sbuf_printf(&b, "%s%s", i ? ", " : "", c->def->roles[i]);
    char *list = sbuf_take(&b);
    eng_err(e, CASE_DENIED, "case '%s': role '%s' is not declared by workflow '%s' (roles: %s)",
            c->id, role, c->def->id, list ? list : "");
    free(list);
    return CASE_DENIED;
  }
  cs_status w;
  if (chart_status_copy(c->def, &w, &c->st) != CASE_OK) return eng_err(e, CASE_NOMEM, "out of memory");
  run r;
  if (run_init(&r, c, &w) != CASE_OK) {
    chart_status_free(&w);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  json_t *nullv = json_null();
  r.actor = actor;
  r.role = role;
  r.role_idx = def_role_find(c->def, role);
  r.time = at;
  r.event = event ? event : "";
  r.payload = payload ? payload : nullv;
  r.probe = e->probe;
  int rc = CASE_OK;
  if (!event) {
    rc = enter_initial(&r);
    if (rc == CASE_OK) rc = run_to_completion(&r);
  } else {
    r.by_hand = !is_timer;
    rc = select_transitions(&r, event);
    r.by_hand = 0;
    if (rc == CASE_OK && r.nenabled == 0 && !is_timer) {
      int abstract = r.probe && r.probe->abstract;
      if (r.probe) probe_commit(r.probe, c, event, &r.trace, 1);
      run_free(&r);
      chart_status_free(&w);
      if (abstract) return eng_err(e, CASE_NOTHANDLED, "no transition taken");
      return refuse(c, event, role, actor, payload, at);
    }
    if (rc == CASE_OK && r.nenabled > 0) {
      rc = count_step(&r);
      if (rc == CASE_OK) rc = microstep(&r);
    }
    if (rc == CASE_OK) rc = run_to_completion(&r);
  }
  if (rc != CASE_OK) {
    run_free(&r);
    chart_status_free(&w);
    return rc;
  }
  if (event) w.revision++;
  if (at > w.last_time) w.last_time = at;
  if (r.probe) probe_commit(r.probe, c, event, &r.trace, 0);
  chart_status_free(&c->st);
  c->st = w;
  eng_ok(e);
  deliver(&r);
  run_free(&r);
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* Explain and available                                               */
/* ------------------------------------------------------------------ */

static json_t *str_list(const case_def *d, const int *idx, int n, int roles) {
  json_t *a = json_array();
  for (int i = 0; a && i < n; i++)
    json_array_append_new(a, json_string(roles ? d->roles[idx[i]] : d->states[idx[i]].id));
  return a;
}

/* Visits each transition of the active states once (atomic states first,
 * then their ancestors), in the order selection would consider them. */
typedef int (*visit_fn)(run *r, const cs_transition *t, void *ud);

static int visit_active(run *r, visit_fn fn, void *ud) {
  const case_def *d = r->d;
  uint64_t *seen = r->bs[BS_TMP];
  bs_zero(seen, r->words);
  for (int s = 1; s < d->nstates; s++) {
    if (!bs_has(r->w->config, s)) continue;
    if (d->states[s].kind != CS_ATOMIC && d->states[s].kind != CS_FINAL) continue;
    for (int a = s; a > 0; a = d->states[a].parent) {
      if (bs_has(seen, a)) continue;
      bs_set(seen, a);
      const cs_state *st = &d->states[a];
      for (int k = 0; k < st->ntransitions; k++) {
        int rc = fn(r, &d->transitions[st->transitions[k]], ud);
        if (rc != CASE_OK) return rc;
      }
    }
  }
  return CASE_OK;
}

typedef struct explain_ud {
  const char *event;
  json_t *blockers;
  int possible;
} explain_ud;

static int explain_one(run *r, const cs_transition *t, void *ud_) {
  explain_ud *u = ud_;
  if (t->nevents == 0 || !matches_event(t, u->event)) return CASE_OK;
  const case_def *d = r->d;
  const char *src = d->states[t->source].id;
  json_t *b = NULL;
  if (!role_allows(r, t)) {
    sbuf m;
    sbuf_init(&m);
    if (t->system) {
      sbuf_printf(&m, "in '%s', '%s' is fired by a timer, not by a role", src, u->event);
    } else {
      sbuf_printf(&m, "in '%s', role %s may not fire '%s' (allowed:", src, r->role, u->event);
      for (int i = 0; i < t->nroles; i++) sbuf_printf(&m, " %s", d->roles[t->roles[i]]);
      sbuf_puts(&m, ")");
    }
    char *msg = sbuf_take(&m);
    b = json_pack("{s:s, s:s, s:o, s:s?}", "code", "role", "source", src, "allowed",
                  str_list(d, t->roles, t->nroles, 1), "message", msg);
    free(msg);
  } else {
    int ok = 1;
    int rc = guard_holds(r, t, &ok);
    if (rc == CASE_NOMEM) return rc;
    if (rc != CASE_OK) {
      b = json_pack("{s:s, s:s, s:s, s:s}", "code", "guard_error", "source", src, "guard",
                    t->guard->text, "message", case_errmsg(r->e));
    } else if (!ok) {
      sbuf m;
      sbuf_init(&m);
      sbuf_printf(&m, "in '%s', guard '%s' is false (%s:%d:%d)", src, t->guard->text, d->file,
                  t->guard->pos.line, t->guard->pos.col);
      char *msg = sbuf_take(&m);
      b = json_pack("{s:s, s:s, s:s, s:i, s:i, s:s?}", "code", "guard", "source", src, "guard",
                    t->guard->text, "line", t->guard->pos.line, "column", t->guard->pos.col,
                    "message", msg);
      free(msg);
    } else {
      u->possible = 1;
      return CASE_OK;
    }
  }
  if (!b || json_array_append_new(u->blockers, b) != 0) return CASE_NOMEM;
  return CASE_OK;
}

/* The declared roles, "IND, COA", for messages; NULL when out of memory. */
static char *role_list(const case_def *d) {
  sbuf b;
  sbuf_init(&b);
  for (int i = 0; i < d->nroles; i++) sbuf_printf(&b, "%s%s", i ? ", " : "", d->roles[i]);
  if (!d->nroles) sbuf_puts(&b, "none");
  return sbuf_take(&b);
}

static int add_blocker(json_t *blockers, const char *code, const char *fmt, ...)
    CASE_PRINTF(3, 4);
static int add_blocker(json_t *blockers, const char *code, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *b = json_pack("{s:s, s:s}", "code", code, "message", msg);
  if (!b || json_array_append_new(blockers, b) != 0) return CASE_NOMEM;
  return CASE_OK;
}

int chart_explain(case_instance *c, const char *event, const char *role, const cs_ask *ask,
                  int64_t at, json_t **out) {
  case_engine *e = c->engine;
  *out = NULL;
  explain_ud u = {event, json_array(), 0};
  json_t *res = json_pack("{s:s, s:s?}", "event", event, "role", role);
  if (!u.blockers || !res) {
    json_decref(u.blockers);
    json_decref(res);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  int v2 = ask && ask->due_timers;
  if (v2 && ask->actor) json_object_set_new(res, "actor", json_string(ask->actor));
  int rc = CASE_OK;
  const char *why = v2 ? event_name_problem(event) : NULL;
  case_instance shadow;
  int have_shadow = 0;
  if (why) {
    /* Every blocker: a reserved name is refused before anything else. */
    rc = add_blocker(u.blockers, "reserved", "'%s' cannot be fired: %s", event, why);
  } else if (v2 && at < c->st.last_time) {
    char a[11], b[11];
    cal_format_date(cal_local_day(at), a);
    cal_format_date(cal_local_day(c->st.last_time), b);
    rc = add_blocker(u.blockers, "time", "the time %s (%lld) is earlier than the case's last "
                     "event at %s (%lld): events are processed in time order", a,
                     (long long)at, b, (long long)c->st.last_time);
  } else if (c->st.done) {
    rc = add_blocker(u.blockers, "done", "the case has reached a final state");
  } else if (role && def_role_find(c->def, role) < 0) {
    char *list = role_list(c->def);
    rc = v2 ? add_blocker(u.blockers, "role", "role '%s' is not declared by workflow '%s' "
                          "(roles: %s)", role, c->def->id, list ? list : "?")
            : add_blocker(u.blockers, "role", "the role is not declared by the workflow");
    free(list);
  } else {
    /* Guards see the case as a fire would find it, on a throw-away copy: for
     * the _v2 question with the timers due by `at` fired first. */
    if (v2) {
      int trc = chart_shadow_at(c, at, &shadow);
      if (trc == CASE_NOMEM) {
        json_decref(u.blockers);
        json_decref(res);
        return trc;
      }
      if (trc != CASE_OK) {
        rc = add_blocker(u.blockers, "timer", "a timer due before %s fails, so the event "
                         "would not be processed: %s", event, case_errmsg(e));
      } else {
        have_shadow = 1;
      }
    } else {
      shadow = *c;
      if (chart_status_copy(c->def, &shadow.st, &c->st) == CASE_OK) have_shadow = 1;
      else rc = CASE_NOMEM;
    }
  }
  if (have_shadow && shadow.st.done) {
    rc = add_blocker(u.blockers, "done", "the case reaches a final state through the timers "
                     "due by then");
  } else if (have_shadow) {
    run r;
    if (run_init(&r, &shadow, &shadow.st) != CASE_OK) {
      chart_status_free(&shadow.st);
      json_decref(u.blockers);
      json_decref(res);
      return eng_err(e, CASE_NOMEM, "out of memory");
    }
    json_t *nullv = json_null();
    r.role = role;
    r.role_idx = def_role_find(c->def, role);
    r.actor = ask ? ask->actor : NULL;
    r.by_hand = 1;
    r.time = at;
    r.event = event;
    r.payload = ask && ask->payload ? ask->payload : nullv;
    rc = visit_active(&r, explain_one, &u);
    run_free(&r);
    if (rc == CASE_OK && !u.possible && json_array_size(u.blockers) == 0) {
      sbuf m;
      sbuf_init(&m);
      sbuf_printf(&m, "no transition for '%s' in the configuration", event);
      char *msg = sbuf_take(&m);
      json_array_append_new(u.blockers,
                            json_pack("{s:s, s:s?}", "code", "not_handled", "message", msg));
      free(msg);
    }
  }
  if (have_shadow) chart_status_free(&shadow.st);
  if (rc != CASE_OK) {
    json_decref(u.blockers);
    json_decref(res);
    return eng_err(e, rc, "out of memory");
  }
  if (u.possible) json_array_clear(u.blockers);
  json_object_set_new(res, "possible", json_boolean(u.possible));
  json_object_set_new(res, "blockers", u.blockers);
  *out = res;
  return eng_ok(e);
}

typedef struct avail_ud {
  json_t *list;
} avail_ud;

/* 1 if a person may fire an event of descriptor `desc`: not one the engine
 * raises itself (done.state.*, done.invoke.*, after.*), which a fire refuses. */
static int person_event(const char *desc) { return event_name_problem(desc) == NULL; }

static int avail_one(run *r, const cs_transition *t, void *ud_) {
  avail_ud *u = ud_;
  if (t->nevents == 0 || t->timer >= 0 || !role_allows(r, t)) return CASE_OK;
  int any = 0;
  for (int i = 0; i < t->nevents && !any; i++) any = person_event(t->events[i]);
  if (!any) return CASE_OK; /* only the engine's events: offered to nobody */
  int ok;
  int rc = guard_holds(r, t, &ok);
  if (rc != CASE_OK) return rc;
  if (!ok) return CASE_OK;
  for (int i = 0; i < t->nevents; i++) {
    if (!person_event(t->events[i])) continue;
    json_t *item = json_pack("{s:s, s:s, s:o}", "event", t->events[i], "source",
                             r->d->states[t->source].id, "target",
                             str_list(r->d, t->targets, t->ntargets, 0));
    if (!item || json_array_append_new(u->list, item) != 0) return eng_err(r->e, CASE_NOMEM, "out of memory");
  }
  return CASE_OK;
}

int chart_available(case_instance *c, const char *role, const cs_ask *ask, int64_t at,
                    json_t **out) {
  case_engine *e = c->engine;
  *out = NULL;
  avail_ud u = {json_array()};
  if (!u.list) return eng_err(e, CASE_NOMEM, "out of memory");
  int v2 = ask && ask->due_timers;
  if (c->st.done || (role && def_role_find(c->def, role) < 0) || (v2 && at < c->st.last_time)) {
    *out = u.list; /* nothing: a fire would be refused whatever the event */
    return eng_ok(e);
  }
  case_instance shadow;
  int rc;
  if (v2) {
    rc = chart_shadow_at(c, at, &shadow); /* as a fire at `at` would find the case */
  } else {
    shadow = *c;
    rc = chart_status_copy(c->def, &shadow.st, &c->st) == CASE_OK
             ? CASE_OK
             : eng_err(e, CASE_NOMEM, "out of memory");
  }
  if (rc != CASE_OK) {
    json_decref(u.list);
    return rc;
  }
  if (shadow.st.done) {
    chart_status_free(&shadow.st);
    *out = u.list;
    return eng_ok(e);
  }
  run r;
  if (run_init(&r, &shadow, &shadow.st) != CASE_OK) {
    chart_status_free(&shadow.st);
    json_decref(u.list);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  r.role = role;
  r.role_idx = def_role_find(c->def, role);
  r.actor = ask ? ask->actor : NULL;
  r.by_hand = 1;
  r.time = at;
  r.event = "";
  r.payload = json_null();
  rc = visit_active(&r, avail_one, &u);
  run_free(&r);
  chart_status_free(&shadow.st);
  if (rc != CASE_OK) {
    json_decref(u.list);
    return rc;
  }
  *out = u.list;
  return eng_ok(e);
}
