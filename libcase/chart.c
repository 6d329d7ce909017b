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
#include <stddef.h>
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
  /* Most pairs differ in their first byte: only "*" can match then. */
  if (desc[0] != name[0])
    return desc[0] == '*' && desc[1] == '\0' && strncmp(name, "after.", 6) != 0;
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
   * role may fire it.  The same event name handled elsewhere stays open.
   * Likewise one that only listens to events the definition raises itself
   * (a literal raise('x') in its actions or modules): it is the workflow's
   * own step, taken when raised, never fired by a role nor offered to one. */
  for (int i = 0; i < d->ntransitions; i++) {
    cs_transition *t = &d->transitions[i];
    int all_timer = t->nevents > 0 && t->nroles == 0, timer_seen = 0;
    for (int k = 0; k < t->nevents && all_timer; k++) {
      int hit = 0;
      for (int m = 0; m < d->ntimers && !hit; m++) {
        const cs_timer *tm = &d->timers[m];
        hit = tm->event && strcmp(tm->event, t->events[k]) == 0 &&
              (tm->state == t->source || def_is_descendant(d, tm->state, t->source) ||
               def_is_descendant(d, t->source, tm->state));
      }
      timer_seen |= hit;
      for (int m = 0; m < d->nraised && !hit; m++) hit = !strcmp(d->raised[m], t->events[k]);
      all_timer = hit;
    }
    t->system = all_timer ? (timer_seen ? 1 : 2) : 0;
  }
  for (int i = 0; i < d->nstates; i++) {
    d->states[i].eventless = 0;
    for (int k = 0; k < d->states[i].ntransitions; k++)
      if (d->transitions[d->states[i].transitions[k]].nevents == 0) d->states[i].eventless = 1;
  }
  for (int i = 0; i < d->nstates; i++)
    for (int a = i; a >= 0; a = d->states[a].parent)
      if (d->states[a].eventless & 1) d->states[i].eventless |= 2;
  /* Descendant sets, so the exit and entry sets are computed a word at a time. */
  size_t w = (size_t)d->words;
  d->desc = calloc((size_t)d->nstates * w, sizeof *d->desc);
  d->leaves = calloc(w, sizeof *d->leaves);
  if (!d->desc || !d->leaves) {
    chart_unprepare(d);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  for (int i = 1; i < d->nstates; i++) {
    for (int p = d->states[i].parent; p >= 0; p = d->states[p].parent)
      d->desc[(size_t)p * w + (size_t)(i >> 6)] |= (uint64_t)1 << (i & 63);
    if (d->states[i].kind == CS_ATOMIC || d->states[i].kind == CS_FINAL)
      d->leaves[i >> 6] |= (uint64_t)1 << (i & 63);
  }
  return CASE_OK;
}

void chart_unprepare(case_def *d) {
  free(d->history_slot);
  d->history_slot = NULL;
  free(d->desc);
  d->desc = NULL;
  free(d->leaves);
  d->leaves = NULL;
}

void chart_status_free(cs_status *st) {
  free(st->config);
  free(st->history);
  data_release(st->data);
  for (int i = 0; i < st->ntimers; i++) {
    free(st->timers[i].id);
    json_decref(st->timers[i].send);
  }
  free(st->timers);
  if (st->sx) { /* SCXML's: NULL for most cases */
    json_decref(st->sx->invokes);
    free(st->sx->bound);
    free(st->sx);
  }
  memset(st, 0, sizeof *st);
}

int chart_status_init(const case_def *d, cs_status *st) {
  memset(st, 0, sizeof *st);
  st->config = calloc((size_t)d->words, sizeof *st->config);
  if (d->nhistory > 0)
    st->history = calloc((size_t)d->nhistory * (size_t)d->words, sizeof *st->history);
  st->data = data_new(d);
  int sx = d->late_binding || d->ninvokes > 0;
  if (sx && (st->sx = calloc(1, sizeof *st->sx)) && d->late_binding)
    st->sx->bound = calloc((size_t)d->words, sizeof *st->sx->bound);
  if (!st->config || (d->nhistory > 0 && !st->history) || !st->data || (sx && !st->sx) ||
      (d->late_binding && !st->sx->bound)) {
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
  dst->data = data_share(src->data); /* shared until an action writes: own_data() */
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
    json_incref(dst->timers[i].send);
    dst->ntimers = i + 1;
    if (!dst->timers[i].id) goto fail;
  }
  if (src->sx) {
    if (!(dst->sx = calloc(1, sizeof *dst->sx))) goto fail;
    if (src->sx->bound) {
      if (!(dst->sx->bound = malloc(w * sizeof *dst->sx->bound))) goto fail;
      memcpy(dst->sx->bound, src->sx->bound, w * sizeof *dst->sx->bound);
    }
    dst->sx->invokes = json_incref(src->sx->invokes);
  }
  dst->timer_seq = src->timer_seq;
  dst->last_time = src->last_time;
  dst->revision = src->revision;
  dst->done = src->done;
  dst->cancelled = src->cancelled;
  dst->data_size = src->data_size;
  return CASE_OK;
fail:
  chart_status_free(dst);
  return CASE_NOMEM;
}

/* ------------------------------------------------------------------ */
/* A running macrostep                                                 */
/* ------------------------------------------------------------------ */

enum { BS_EXIT, BS_ENTER, BS_DEFAULT, BS_DEFHIST, BS_EFF, BS_TMP, BS_TMP2, BS_INVOKE, BS_COUNT };

/* exec_block()'s code for "an error became an event: stop this block". */
#define EXEC_ABORT (-1)

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
  int64_t data_delta;     /* what the writes changed in the data's JSON length */
  int by_hand;            /* selecting for an external event fired by a host, not a timer */
  cs_probe *probe;        /* e->probe for a macrostep (coverage, skeleton search); else NULL */
  cs_trace trace;         /* what this macrostep did, for the probe */
  const char *evtype;     /* _event.type of the event being processed; NULL: unbound */
  const json_t *meta;     /* its other _event fields, or NULL */
  json_t *mail;           /* messages to other cases, sent when the macrostep commits */
  cs_plist logs;          /* <log> lines, delivered when the macrostep commits */
  int invoking;           /* some state entered in this macrostep has invokes */
  int explaining;         /* explain/available: guard errors are reported, not raised */
  const char *error_sendid; /* the sendid of the send whose error is being raised */
  int became_done;        /* this macrostep entered a top-level final state */
  json_t *final_data;     /* its donedata, for done.invoke */
  /* Charts of up to 256 states use these instead of two allocations a
   * macrostep (last: run_init() does not clear them). */
  uint64_t small_bs[BS_COUNT * 4];
  int small_enabled[2 * 257];
} run;

static int run_init(run *r, case_instance *c, cs_status *w) {
  memset(r, 0, offsetof(run, small_bs));
  r->e = c->engine;
  r->c = c;
  r->d = c->def;
  r->w = w;
  r->words = r->d->words;
  r->profile = eng_case_profile(c);
  r->role_idx = -1;
  uint64_t *mem = r->words <= 4 ? r->small_bs
                                 : calloc((size_t)r->words * BS_COUNT, sizeof *mem);
  if (mem == r->small_bs) memset(mem, 0, (size_t)r->words * BS_COUNT * sizeof *mem);
  r->enabled = r->d->nstates < 257 ? r->small_enabled
                                   : malloc(((size_t)r->d->nstates + 1) * 2 * sizeof *r->enabled);
  if (!mem || !r->enabled) {
    if (mem != r->small_bs) free(mem);
    if (r->enabled != r->small_enabled) free(r->enabled);
    return CASE_NOMEM;
  }
  for (int i = 0; i < BS_COUNT; i++) r->bs[i] = mem + (size_t)i * (size_t)r->words;
  r->scratch = r->enabled + r->d->nstates + 1;
  return CASE_OK;
}

static void run_free(run *r) {
  if (r->bs[0] != r->small_bs) free(r->bs[0]);
  if (r->enabled != r->small_enabled) free(r->enabled);
  plist_clear(&r->queue);
  free(r->queue.v);
  plist_clear(&r->emitted);
  free(r->emitted.v);
  free(r->trace.v);
  if (r->logs.v) { /* what SCXML's content made: nothing for most charts */
    plist_clear(&r->logs);
    free(r->logs.v);
  }
  json_decref(r->mail);
  json_decref(r->final_data);
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
  call->data_delta = &r->data_delta;
  call->evtype = r->evtype;
  call->meta = r->meta;
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

/* The working status shares the case's data block until the first action
 * runs: guards only read it, and most macrosteps of a chain have no actions.
 * The copy is of the slots (a pointer per field): actions replace a field's
 * value as a whole (the sandbox and case_call_set() store new JSON values),
 * they never change one in place, so the values themselves stay shared with
 * the committed status. */
static int own_data(run *r) {
  if (r->data_owned) return CASE_OK;
  if (data_own(&r->w->data) != 0) return eng_err(r->e, CASE_NOMEM, "out of memory");
  r->data_owned = 1;
  return CASE_OK;
}


/* CASE_LIMIT_DATA: every write to the working data (data_set) adds what it
 * changes in the data's JSON length to r->data_delta, so the check costs what
 * changed, not the size of the whole case.  Refused when the data would be
 * above the limit and above what it was. */
static int check_data_size(run *r, cs_status *w) {
  const cs_status *old = &r->c->st;
  if (!r->data_owned) return CASE_OK; /* the data is the committed one */
  int64_t before = old->data_size > 0 ? old->data_size : data_json_size(old->data, r->d);
  int64_t after = before + r->data_delta;
  w->data_size = after;
  long long lim = r->e->limits[CASE_LIMIT_DATA];
  if (lim > 0 && after > lim && after > before)
    return eng_err(r->e, CASE_LIMIT, "case '%s': its data would take %lld bytes as JSON, more "
                   "than the limit of %lld (CASE_LIMIT_DATA)", r->c->id, (long long)after, lim);
  return CASE_OK;
}

static int run_script(run *r, const cs_script *s, int is_guard, int *result) {
  if (!is_guard && own_data(r) != CASE_OK) return CASE_NOMEM;
  case_call call;
  call_setup(r, &call, s, is_guard);
  int rc;
  if (s->error) { /* a compile error kept for run time (errors: events) */
    rc = CASE_SCRIPT;
    call.errmsg = xstrdup(s->error);
  } else if (s->kind == SCRIPT_NATIVE) {
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

static int exec_block(run *r, const cs_script *v, int n);

#if defined(__GNUC__)
#define COLD __attribute__((noinline, cold))
#define HOT_INLINE inline __attribute__((always_inline))
#else
#define COLD
#define HOT_INLINE inline
#endif

/* An executable content block (entry, exit, transition, finalize, ...) of a
 * definition with executable content or errors as events: an error that
 * became an event stops the block, not the macrostep. */
static COLD int run_block(run *r, const cs_script *v, int n) {
  int rc = exec_block(r, v, n);
  return rc == EXEC_ABORT ? CASE_OK : rc;
}

static HOT_INLINE int run_actions(run *r, const cs_script *v, int n) {
  if (r->probe && r->probe->abstract) return probe_actions(r->probe, v, n, &r->queue);
  if (r->d->exec_content) return n ? run_block(r, v, n) : CASE_OK;
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

static int raise_error(run *r, const char *name, const char *msg);
static int recoverable(int rc);

/* SCXML 5.9 (errors: events): a condition that cannot be evaluated is false,
 * and error.execution is placed in the internal queue. */
static COLD int guard_error(run *r, int rc, int *ok) {
  if (!recoverable(rc) || r->explaining) return rc;
  *ok = 0;
  return raise_error(r, "error.execution", case_errmsg(r->e));
}

static HOT_INLINE int guard_holds(run *r, const cs_transition *t, int *ok) {
  *ok = 1;
  if (!t->guard) return CASE_OK;
  if (!r->probe) {
    int rc = run_script(r, t->guard, 1, ok);
    return rc == CASE_OK || !r->d->errors_events ? rc : guard_error(r, rc, ok);
  }
  int rc = CASE_OK;
  if (r->probe->abstract) *ok = r->probe->force[t->index];
  else rc = run_script(r, t->guard, 1, ok);
  if (rc != CASE_OK && r->d->errors_events) rc = guard_error(r, rc, ok);
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

/* The proper descendants of state s (a bitset). */
static inline const uint64_t *desc_of(const case_def *d, int s) {
  return d->desc + (size_t)s * (size_t)d->words;
}

/* 1 if every state of `set` (the root's bit aside) is a proper descendant of a. */
static int all_within(const case_def *d, const uint64_t *set, int a) {
  const uint64_t *in = desc_of(d, a);
  for (int k = 0; k < d->words; k++)
    if (set[k] & ~in[k] & (k == 0 ? ~(uint64_t)1 : ~(uint64_t)0)) return 0;
  return 1;
}

/* findLCCA: the nearest proper ancestor of `first` that is compound (or the
 * root) and contains every state of `others`. */
static int find_lcca(run *r, int first, const uint64_t *others) {
  for (int a = r->d->states[first].parent; a >= 0; a = r->d->states[a].parent) {
    if (a != 0 && !is_compound(r->d, a)) continue;
    if (all_within(r->d, others, a)) return a;
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
  if (t->internal && is_compound(r->d, t->source) && all_within(r->d, eff, t->source))
    return t->source;
  return find_lcca(r, t->source, eff);
}

/* computeExitSet for one transition, added to `out`. */
static void exit_set_one(run *r, const cs_transition *t, uint64_t *out) {
  int dom = transition_domain(r, t);
  if (dom < 0) return;
  const uint64_t *in = desc_of(r->d, dom);
  for (int k = 0; k < r->words; k++) out[k] |= r->w->config[k] & in[k];
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
  for (int wi = 0; wi < d->words; wi++)
  for (uint64_t bits = r->w->config[wi]; bits; bits &= bits - 1) {
    int s = wi * 64 + __builtin_ctzll(bits); /* the active states, in document order */
    if (s == 0) continue;
    if (d->states[s].kind != CS_ATOMIC && d->states[s].kind != CS_FINAL) continue;
    if (!event && !(d->states[s].eventless & 2)) continue; /* none on its way up */
    int found = 0;
    for (int a = s; a > 0 && !found; a = d->states[a].parent) {
      const cs_state *st = &d->states[a];
      if (!event && !(st->eventless & 1)) continue;
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
  const cs_profile *p = eng_case_profile(c);
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
    ti->due_ms = due * 1000;
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
  ti->due_ms = due * 1000;
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

static int cancel_invokes(run *r, int s);

static int exit_states(run *r) {
  const case_def *d = r->d;
  uint64_t *ex = r->bs[BS_EXIT];
  bs_zero(ex, r->words);
  for (int i = 0; i < r->nenabled; i++) exit_set_one(r, &d->transitions[r->enabled[i]], ex);
  /* Record history for every state being exited, before anything leaves. */
  for (int s = d->nhistory > 0 ? d->nstates - 1 : 0; s > 0; s--) {
    if (!bs_has(ex, s)) continue;
    const cs_state *st = &d->states[s];
    for (int k = 0; k < st->nchildren; k++) {
      int h = st->children[k];
      if (!is_history(d, h)) continue;
      uint64_t *hv = history_bits(r, h);
      bs_zero(hv, r->words);
      const uint64_t *in = desc_of(d, s);
      for (int wk = 0; wk < r->words; wk++) {
        uint64_t bits = r->w->config[wk] & in[wk];
        if (d->states[h].kind == CS_HISTORY_DEEP) {
          hv[wk] = bits & d->leaves[wk];
          continue;
        }
        for (; bits; bits &= bits - 1) {
          int x = wk * 64 + __builtin_ctzll(bits);
          if (d->states[x].parent == s) bs_set(hv, x);
        }
      }
    }
  }
  /* Exit innermost first: reverse document order. */
  for (int k = r->words - 1; k >= 0; k--)
  for (uint64_t bits = ex[k]; bits; bits &= ~((uint64_t)1 << (63 - __builtin_clzll(bits)))) {
    int s = k * 64 + 63 - __builtin_clzll(bits);
    if (s == 0) continue;
    int rc = run_actions(r, d->states[s].onexit, d->states[s].nonexit);
    if (rc == CASE_OK && d->states[s].ninvokes > 0) rc = cancel_invokes(r, s);
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

/* done.state.<id>, with the donedata of the final state (stolen, may be NULL). */
static int raise_done(run *r, int s, json_t *data) {
  char *name = malloc(strlen(r->d->states[s].id) + sizeof "done.state.");
  if (!name) {
    json_decref(data);
    return eng_err(r->e, CASE_NOMEM, "out of memory");
  }
  strcpy(name, "done.state.");
  strcat(name, r->d->states[s].id);
  int rc = plist_push(&r->queue, name, data);
  free(name);
  return rc == CASE_OK ? CASE_OK : eng_err(r->e, rc, "out of memory");
}

static int bind_data(run *r, int s);
static int eval_donedata(run *r, const cs_exec *x, json_t **out);
static int top_final(run *r, json_t *donedata);
static int start_invokes(run *r);

/* After state s's entry content, what SCXML adds: its invokes start when the
 * macrostep is stable, and the content of its <initial> transition runs when
 * it is entered by default. */
static COLD int entered_extras(run *r, int s) {
  const cs_state *st = &r->d->states[s];
  if (st->ninvokes > 0) {
    bs_set(r->bs[BS_INVOKE], s);
    r->invoking = 1;
  }
  if (st->kind == CS_COMPOUND && st->ninitial_actions > 0 && bs_has(r->bs[BS_DEFAULT], s))
    return run_actions(r, st->initial_actions, st->ninitial_actions);
  return CASE_OK;
}

/* Enters the states of BS_ENTER, outermost first (document order). */
static int enter_computed(run *r) {
  const case_def *d = r->d;
  const uint64_t *en = r->bs[BS_ENTER]; /* not changed while the states are entered */
  for (int wk = 0; wk < r->words; wk++)
  for (uint64_t bits = en[wk]; bits; bits &= bits - 1) {
    int s = wk * 64 + __builtin_ctzll(bits);
    if (s == 0) continue;
    const cs_state *st = &d->states[s];
    bs_set(r->w->config, s);
    if (r->probe) trace_add(&r->trace, TR_ENTERED, s);
    int rc = CASE_OK;
    if (st->extras && r->d->late_binding && !bs_has(r->w->sx->bound, s)) rc = bind_data(r, s);
    if (rc == CASE_OK) rc = start_timers(r, s);
    if (rc == CASE_OK) rc = run_actions(r, st->onentry, st->nonentry);
    if (rc == CASE_OK && st->extras) rc = entered_extras(r, s);
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
      json_t *dd = NULL;
      if (st->donedata) {
        rc = eval_donedata(r, st->donedata, &dd);
        if (rc == EXEC_ABORT) rc = CASE_OK;
        if (rc != CASE_OK) return rc;
      }
      if (parent == 0) {
        r->w->done = 1; /* finish_case() ends it when the macrostep is over */
        r->became_done = 1;
        json_decref(r->final_data);
        r->final_data = dd;
      } else {
        rc = raise_done(r, parent, dd);
        if (rc != CASE_OK) return rc;
        int gp = d->states[parent].parent;
        if (gp > 0 && d->states[gp].kind == CS_PARALLEL && in_final_state(r, gp)) {
          rc = raise_done(r, gp, NULL);
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
    for (int k = 0; k < r->words; k++)
      for (uint64_t bits = r->bs[BS_EFF][k]; bits; bits &= bits - 1) {
        int s = k * 64 + __builtin_ctzll(bits);
        if (s > 0) add_ancestors(r, s, dom);
      }
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
      if (r->qhead >= r->queue.n) {
        /* SCXML: the states entered in this macrostep start their invokes
         * once it is stable; an error that raises starts another round. */
        if (!r->invoking) break;
        rc = start_invokes(r);
        if (rc != CASE_OK || r->qhead >= r->queue.n) break;
        continue;
      }
      cs_pending *ie = &r->queue.v[r->qhead++];
      r->event = ie->name;
      r->payload = ie->payload;
      r->meta = ie->meta;
      r->evtype = ie->meta && json_string_value(json_object_get(ie->meta, "type"))
                      ? json_string_value(json_object_get(ie->meta, "type"))
                      : "internal";
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

static int init_datamodel(run *r);
static int before_event(run *r);
static int finish_case(run *r);

/* Hands the committed macrostep's <log> lines to the engine's log callback. */
static void deliver_logs(run *r) {
  if (!r->e->log) return;
  for (int i = 0; i < r->logs.n; i++) {
    const char *v = json_string_value(r->logs.v[i].payload);
    r->e->log(r->e->log_ud, r->c, r->logs.v[i].name, v ? v : "");
  }
}

int chart_macrostep(case_instance *c, const char *event, json_t *payload, const char *actor,
                    const char *role, int64_t at, int is_timer) {
  return chart_macrostep_ex(c, event, payload, NULL, actor, role, at, is_timer);
}

int chart_macrostep_ex(case_instance *c, const char *event, json_t *payload, const json_t *meta,
                       const char *actor, const char *role, int64_t at, int is_timer) {
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
  r.meta = meta;
  r.evtype = NULL; /* _event is unbound until the first event */
  if (event) {
    const char *t = meta ? json_string_value(json_object_get(meta, "type")) : NULL;
    r.evtype = t ? t : "external";
  }
  int rc = CASE_OK;
  if (!event) {
    rc = init_datamodel(&r);
    if (rc == CASE_OK) rc = enter_initial(&r);
    if (rc == CASE_OK) rc = run_to_completion(&r);
  } else {
    if (w.sx && w.sx->invokes) rc = before_event(&r); /* finalize, autoforward */
    r.by_hand = !is_timer;
    if (rc == CASE_OK) rc = select_transitions(&r, event);
    r.by_hand = 0;
    /* Refused: nothing enabled, and no error became an event meanwhile. */
    if (rc == CASE_OK && r.nenabled == 0 && !is_timer && r.queue.n == 0) {
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
  if (rc == CASE_OK && r.became_done) rc = finish_case(&r);
  if (rc != CASE_OK) {
    run_free(&r);
    chart_status_free(&w);
    return rc;
  }
  rc = check_data_size(&r, &w);
  if (rc == CASE_OK && event && w.revision >= CASE_COUNTER_MAX)
    rc = eng_err(e, CASE_LIMIT, "case '%s': its revision %lld is at the largest a case may "
                 "reach", c->id, (long long)w.revision);
  if (rc != CASE_OK) {
    run_free(&r);
    chart_status_free(&w);
    return rc;
  }
  if (r.mail && json_array_size(r.mail) > 0) {
    if (!e->mail && !(e->mail = json_array())) rc = CASE_NOMEM;
    if (rc == CASE_OK && json_array_extend(e->mail, r.mail) != 0) rc = CASE_NOMEM;
    if (rc != CASE_OK) {
      run_free(&r);
      chart_status_free(&w);
      return eng_err(e, CASE_NOMEM, "out of memory");
    }
  }
  if (event) w.revision++;
  if (at > w.last_time) w.last_time = at;
  if (r.probe) probe_commit(r.probe, c, event, &r.trace, 0);
  chart_status_free(&c->st);
  c->st = w;
  eng_ok(e);
  deliver_logs(&r);
  deliver(&r);
  run_free(&r);
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* Executable content (SCXML section 4) and errors as events           */
/* ------------------------------------------------------------------ */

#define SCXML_TYPE "http://www.w3.org/TR/scxml/#SCXMLEventProcessor"
#define BASICHTTP_TYPE "http://www.w3.org/TR/scxml/#BasicHTTPEventProcessor"

/* Codes an `errors: events` definition turns into error.execution: a script
 * that fails, a bad value, a missing name.  Limits and memory always refuse. */
static int recoverable(int rc) {
  return rc == CASE_SCRIPT || rc == CASE_INVALID || rc == CASE_NOTFOUND || rc == CASE_ERROR ||
         rc == CASE_MISUSE;
}

/* Places error.execution / error.communication (a platform event) in the
 * internal queue; its data is the message.  r->error_sendid (a failing
 * send's id) goes with it. */
static int raise_error(run *r, const char *name, const char *msg) {
  json_t *meta = json_pack("{s:s, s:s?}", "type", "platform", "sendid", r->error_sendid);
  json_t *data = json_string(msg ? msg : "");
  if (!data) data = json_null();
  if (!meta || plist_push_meta(&r->queue, name, data, meta) != CASE_OK)
    return eng_err(r->e, CASE_NOMEM, "out of memory");
  return CASE_OK;
}

/* A failed step of executable content: with errors: events it becomes the
 * error event and stops the block (EXEC_ABORT); otherwise the macrostep fails
 * with the engine error already set. */
static int exec_fail(run *r, int rc, const char *event) {
  if (r->d->errors_events && recoverable(rc)) {
    int rc2 = raise_error(r, event, case_errmsg(r->e));
    eng_ok(r->e);
    return rc2 == CASE_OK ? EXEC_ABORT : rc2;
  }
  return rc;
}

static int exec_err(run *r, const cs_script *s, int rc, const char *event, const char *fmt, ...)
    CASE_PRINTF(5, 6);
static int exec_err(run *r, const cs_script *s, int rc, const char *event, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  eng_err_at(r->e, rc, r->d->file, s->pos, "%s", msg);
  return exec_fail(r, rc, event);
}

/* Evaluates expression x to JSON (nil gives null). */
static int eval_json(run *r, const cs_script *x, json_t **out) {
  *out = NULL;
  if (own_data(r) != CASE_OK) return CASE_NOMEM;
  case_call call;
  call_setup(r, &call, x, 0);
  int rc;
  if (x->error) {
    rc = CASE_SCRIPT;
    call.errmsg = xstrdup(x->error);
  } else {
    rc = sbx_eval(r->e->sandbox, &call, x, out);
  }
  if (rc != CASE_OK) call_fail(r, &call, rc, "expression");
  call_done(&call);
  return rc;
}

/* Evaluates x to a string (numbers are written as Lua would). *out is malloc'd. */
static int eval_text(run *r, const cs_script *x, const char *what, char **out) {
  *out = NULL;
  json_t *v;
  int rc = eval_json(r, x, &v);
  if (rc != CASE_OK) return rc;
  char buf[64];
  const char *t = NULL;
  if (json_is_string(v)) t = json_string_value(v);
  else if (json_is_integer(v)) snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v)), t = buf;
  else if (json_is_real(v)) {
    c_loc loc;
    c_locale_enter(&loc);
    snprintf(buf, sizeof buf, "%.14g", json_real_value(v));
    c_locale_leave(&loc);
    t = buf;
  }
  if (!t) {
    json_decref(v);
    return eng_err_at(r->e, CASE_INVALID, r->d->file, x->pos, "%s '%s' is not a string", what,
                      x->text ? x->text : "");
  }
  *out = xstrdup(t);
  json_decref(v);
  return *out ? CASE_OK : eng_err(r->e, CASE_NOMEM, "out of memory");
}

/* Runs a compiled "<location> = ..." chunk with `value` as its argument. */
static int assign_json(run *r, const cs_script *chunk, json_t *value) {
  if (own_data(r) != CASE_OK) return CASE_NOMEM;
  case_call call;
  call_setup(r, &call, chunk, 0);
  int rc;
  if (chunk->error) {
    rc = CASE_SCRIPT;
    call.errmsg = xstrdup(chunk->error);
  } else {
    rc = sbx_exec(r->e->sandbox, &call, chunk, &value, 1);
  }
  if (rc != CASE_OK) call_fail(r, &call, rc, "assignment");
  call_done(&call);
  return rc;
}

/* The event data of a send, an invoke's params or a donedata: namelist and
 * params as an object, or the content's value. */
static int eval_names(run *r, const cs_namevalue *v, int n, const cs_script *content,
                      const json_t *value, json_t **out) {
  *out = NULL;
  if (value) {
    *out = json_incref((json_t *)value);
    return CASE_OK;
  }
  if (content) return eval_json(r, content, out);
  if (n == 0) {
    *out = json_null();
    return CASE_OK;
  }
  json_t *o = json_object();
  if (!o) return eng_err(r->e, CASE_NOMEM, "out of memory");
  for (int i = 0; i < n; i++) {
    json_t *x;
    int rc = eval_json(r, v[i].expr, &x);
    if (rc != CASE_OK) {
      json_decref(o);
      return rc;
    }
    if (json_object_set_new(o, v[i].name, x) != 0) {
      json_decref(o);
      return eng_err(r->e, CASE_NOMEM, "out of memory");
    }
  }
  *out = o;
  return CASE_OK;
}

static int eval_donedata(run *r, const cs_exec *x, json_t **out) {
  int rc = eval_names(r, x->names, x->nnames, x->content, x->content_value, out);
  if (rc == CASE_OK) return CASE_OK;
  return exec_fail(r, rc, "error.execution");
}

/* A delay: CSS2 ("5s", ".5s", "200ms"), a bare number of milliseconds, or a
 * libcase duration ("2 days"; counted on the definition's clock). */
int chart_parse_delay(const char *s, int64_t *ms) {
  while (*s == ' ' || *s == '\t') s++;
  char *end;
  double v = c_strtod(s, &end);
  if (end == s || v < 0 || !(v < 1e15)) return -1;
  while (*end == ' ') end++;
  double mult;
  if (*end == '\0' || strcmp(end, "ms") == 0) mult = 1;
  else if (strcmp(end, "s") == 0) mult = 1000;
  else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0) mult = 60000;
  else if (strcmp(end, "h") == 0) mult = 3600000;
  else if (strcmp(end, "d") == 0) mult = 86400000;
  else return -2; /* not CSS2: maybe a libcase duration */
  *ms = (int64_t)(v * mult + 0.5);
  return 0;
}

/* The due time (ms) of a send made now with delay text `t`. */
static int delay_due(run *r, const cs_script *where, const char *t, const cs_duration *dur,
                     int64_t *due_ms) {
  int64_t ms = 0;
  if (dur) {
    int64_t due;
    cal_day last;
    if (cal_term(r->e->calendar, dur->clock, r->time, dur->amount, dur->unit, dur->same_day,
                 &due, &last) != CASE_OK)
      return eng_err_at(r->e, CASE_INVALID, r->d->file, where->pos,
                        "cannot count the delay '%s'", t ? t : "");
    *due_ms = due * 1000;
    return CASE_OK;
  }
  int k = chart_parse_delay(t, &ms);
  if (k == -2) {
    long amount;
    cs_unit unit;
    if (cal_duration_parse(t, &amount, NULL, &unit) == 0) {
      cs_duration d2 = {amount, NULL, unit, r->d->clock, 0, where->pos};
      return delay_due(r, where, t, &d2, due_ms);
    }
  }
  if (k != 0)
    return eng_err_at(r->e, CASE_INVALID, r->d->file, where->pos,
                      "bad delay '%s' (expected a CSS2 time such as \"5s\" or \"500ms\", or a "
                      "duration such as \"2 days\")", t);
  *due_ms = r->time * 1000 + ms;
  return CASE_OK;
}

static int is_scxml_type(const char *t) {
  return !t || !*t || strcmp(t, "scxml") == 0 || strcmp(t, SCXML_TYPE) == 0 ||
         strcmp(t, "http://www.w3.org/TR/scxml/") == 0 ||
         strcmp(t, "http://www.w3.org/TR/scxml") == 0;
}

/* The running invoke entry of this case with invokeid `id`, or NULL. */
static json_t *find_invoke(const cs_status *w, const char *key, const char *val) {
  size_t i;
  json_t *it;
  json_array_foreach(w->sx ? w->sx->invokes : NULL, i, it) {
    const char *v = json_string_value(json_object_get(it, key));
    if (v && strcmp(v, val) == 0) return it;
  }
  return NULL;
}

static int add_mail(run *r, json_t *m) {
  if (!m) return eng_err(r->e, CASE_NOMEM, "out of memory");
  if (!r->mail && !(r->mail = json_array())) {
    json_decref(m);
    return eng_err(r->e, CASE_NOMEM, "out of memory");
  }
  if (json_array_append_new(r->mail, m) != 0) return eng_err(r->e, CASE_NOMEM, "out of memory");
  return CASE_OK;
}

/* A send timer of this case: the message fires as an external event of the
 * case itself (to NULL) or is mailed to case `to` when due. */
static int add_send_timer(run *r, json_t *msg, int64_t due_ms) {
  cs_status *w = r->w;
  if (r->d->send_timer < 0) {
    json_decref(msg);
    return eng_err(r->e, CASE_MISUSE, "workflow '%s' has no send timer", r->d->id);
  }
  if (w->ntimers == w->cap_timers) {
    int cap = w->cap_timers ? 2 * w->cap_timers : 4;
    cs_timer_inst *v = realloc(w->timers, (size_t)cap * sizeof *v);
    if (!v) {
      json_decref(msg);
      return eng_err(r->e, CASE_NOMEM, "out of memory");
    }
    w->timers = v;
    w->cap_timers = cap;
  }
  char id[32];
  int64_t seq = ++w->timer_seq;
  snprintf(id, sizeof id, "t%lld", (long long)seq);
  cs_timer_inst *ti = &w->timers[w->ntimers];
  memset(ti, 0, sizeof *ti);
  ti->id = xstrdup(id);
  if (!ti->id) {
    json_decref(msg);
    return eng_err(r->e, CASE_NOMEM, "out of memory");
  }
  ti->seq = seq;
  ti->timer = r->d->send_timer;
  ti->started = r->time;
  if (due_ms < r->time * 1000) due_ms = r->time * 1000;
  ti->due_ms = due_ms;
  ti->due = (due_ms + 999) / 1000;
  ti->last_day = CAL_NO_DAY;
  ti->send = msg;
  w->ntimers++;
  return CASE_OK;
}

static int exec_send(run *r, const cs_script *s) {
  const cs_exec *x = s->exec;
  char *name = NULL, *target = NULL, *type = NULL, *delay = NULL, *sendid = NULL;
  json_t *data = NULL;
  int rc = CASE_OK;
  if (x->eventexpr) rc = eval_text(r, x->eventexpr, "eventexpr", &name);
  else if (x->event && !(name = xstrdup(x->event))) rc = eng_err(r->e, CASE_NOMEM, "out of memory");
  if (rc == CASE_OK && x->targetexpr) rc = eval_text(r, x->targetexpr, "targetexpr", &target);
  else if (rc == CASE_OK && x->target && !(target = xstrdup(x->target)))
    rc = eng_err(r->e, CASE_NOMEM, "out of memory");
  if (rc == CASE_OK && x->typeexpr) rc = eval_text(r, x->typeexpr, "typeexpr", &type);
  else if (rc == CASE_OK && x->type && !(type = xstrdup(x->type)))
    rc = eng_err(r->e, CASE_NOMEM, "out of memory");
  if (rc == CASE_OK && x->delayexpr) rc = eval_text(r, x->delayexpr, "delayexpr", &delay);
  if (rc == CASE_OK) rc = eval_names(r, x->names, x->nnames, x->content, x->content_value, &data);
  if (rc != CASE_OK) goto fail;
  if (type && strcmp(type, BASICHTTP_TYPE) == 0) {
    /* the host carries it: a "basichttp" notification saying what to POST */
    if (!target) {
      rc = eng_err_at(r->e, CASE_INVALID, r->d->file, s->pos,
                      "send of type BasicHTTP without a target");
      goto fail_comm;
    }
    if (delay || x->delay || x->dur || x->delayexpr) {
      rc = eng_err_at(r->e, CASE_INVALID, r->d->file, s->pos,
                      "send of type BasicHTTP with a delay (libcase sends those at once)");
      goto fail;
    }
    json_t *content = x->content || x->content_value ? data : NULL;
    json_t *req = http_request(target, name, content ? NULL : data, content, x->id);
    rc = req ? plist_push(&r->emitted, "basichttp", req) : CASE_NOMEM;
    if (rc != CASE_OK) rc = eng_err(r->e, CASE_NOMEM, "out of memory");
    free(name), free(target), free(type), free(delay), free(sendid);
    json_decref(data);
    return rc;
  }
  if (!name && (x->content || x->content_value)) name = xstrdup("");
  if (!name) {
    rc = eng_err_at(r->e, CASE_INVALID, r->d->file, s->pos, "send without an event name");
    goto fail;
  }
  if (*name) {
    const char *why = event_name_problem(name);
    if (why) {
      rc = eng_err_at(r->e, CASE_INVALID, r->d->file, s->pos, "send: event '%s': %s", name, why);
      goto fail;
    }
  }
  if (!is_scxml_type(type) && strcmp(type, "libcase:host") != 0) {
    rc = eng_err_at(r->e, CASE_INVALID, r->d->file, s->pos,
                    "send: the event I/O processor '%s' is not supported (expected %s)", type,
                    SCXML_TYPE);
    goto fail;
  }
  int64_t due_ms = r->time * 1000;
  if (delay || x->delay || x->dur) {
    rc = delay_due(r, s, delay ? delay : x->delay, delay ? NULL : x->dur, &due_ms);
    if (rc != CASE_OK) goto fail;
  }
  /* The sendid: as written, or generated for idlocation. */
  if (x->id) {
    sendid = xstrdup(x->id);
  } else if (x->idlocation) {
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "%s.%lld", r->c->id, (long long)(r->w->timer_seq + 1));
    sendid = sbuf_take(&b);
    if (sendid) {
      json_t *v = json_string(sendid);
      rc = v ? assign_json(r, x->idassign, v) : CASE_NOMEM;
      json_decref(v);
      if (rc != CASE_OK) goto fail;
    }
  }
  if ((x->id || x->idlocation) && !sendid) {
    rc = eng_err(r->e, CASE_NOMEM, "out of memory");
    goto fail;
  }
  int internal = target && strcmp(target, "#_internal") == 0;
  int host = (type && strcmp(type, "libcase:host") == 0) || (target && strcmp(target, "#_host") == 0);
  const char *to = NULL;       /* another case */
  const char *invokeid = NULL; /* the receiver's view: a child's invokeid */
  char *own = NULL;
  if (target && !internal && !host) {
    if (strncmp(target, "#_scxml_", 8) == 0) {
      if (strcmp(target + 8, r->c->id) != 0) to = target + 8;
    } else if (strcmp(target, "#_parent") == 0) {
      if (!r->c->parent) {
        rc = eng_err_at(r->e, CASE_NOTFOUND, r->d->file, s->pos,
                        "send to #_parent: case '%s' has no parent", r->c->id);
        goto fail_comm;
      }
      to = r->c->parent;
      invokeid = r->c->invokeid;
    } else if (target[0] == '#' && target[1] == '_') {
      json_t *inv = r->w->sx ? find_invoke(r->w, "id", target + 2) : NULL;
      if (!inv) {
        rc = eng_err_at(r->e, CASE_NOTFOUND, r->d->file, s->pos,
                        "send to %s: no running invoke '%s'", target, target + 2);
        goto fail_comm;
      }
      to = json_string_value(json_object_get(inv, "case"));
    } else {
      rc = eng_err_at(r->e, CASE_INVALID, r->d->file, s->pos,
                      "send: target '%s' is not one libcase delivers to (expected #_internal, "
                      "#_parent, #_<invokeid>, #_scxml_<case id> or #_host)", target);
      goto fail;
    }
  }
  if (to && !invokeid && strncmp(target, "#_scxml_", 8) == 0 &&
      !case_instance_find(r->e, to) && !r->e->manual_mail) {
    rc = eng_err_at(r->e, CASE_NOTFOUND, r->d->file, s->pos, "send to %s: no case '%s'",
                    target, to);
    goto fail_comm;
  }
  if (internal) {
    json_t *meta = json_pack("{s:s, s:s?}", "type", "internal", "sendid", sendid);
    rc = meta ? plist_push_meta(&r->queue, name, data, meta) : CASE_NOMEM;
    data = NULL;
    if (rc != CASE_OK) rc = eng_err(r->e, CASE_NOMEM, "out of memory");
  } else if (host) {
    rc = plist_push(&r->emitted, name, data);
    data = NULL;
    if (rc != CASE_OK) rc = eng_err(r->e, CASE_NOMEM, "out of memory");
  } else {
    if (!(own = malloc(strlen(r->c->id) + 9))) {
      rc = eng_err(r->e, CASE_NOMEM, "out of memory");
      goto fail;
    }
    strcpy(own, "#_scxml_");
    strcat(own, r->c->id);
    json_t *msg = json_pack("{s:s, s:o, s:s?, s:s, s:s, s:s?, s:s?}", "event", name, "data",
                            data ? data : json_null(), "sendid", sendid, "origin", own,
                            "origintype", SCXML_TYPE, "to", to, "invokeid", invokeid);
    data = NULL;
    free(own);
    if (!msg) rc = eng_err(r->e, CASE_NOMEM, "out of memory");
    else if (to && due_ms <= r->time * 1000) {
      json_object_set_new(msg, "kind", json_string("event"));
      json_object_set_new(msg, "from", json_string(r->c->id));
      json_object_set_new(msg, "time", json_integer((json_int_t)r->time));
      rc = add_mail(r, msg);
    } else {
      rc = add_send_timer(r, msg, due_ms);
    }
  }
  free(name), free(target), free(type), free(delay), free(sendid);
  json_decref(data);
  return rc;
fail_comm:
  r->error_sendid = sendid;
  rc = exec_fail(r, rc, "error.communication");
  r->error_sendid = NULL;
  free(name), free(target), free(type), free(delay), free(sendid);
  json_decref(data);
  return rc;
fail:
  r->error_sendid = sendid;
  rc = exec_fail(r, rc, "error.execution");
  r->error_sendid = NULL;
  free(name), free(target), free(type), free(delay), free(sendid);
  json_decref(data);
  return rc;
}

static int exec_cancel(run *r, const cs_script *s) {
  const cs_exec *x = s->exec;
  char *id = NULL;
  int rc = CASE_OK;
  if (x->idexpr) rc = eval_text(r, x->idexpr, "sendidexpr", &id);
  else if (!(id = xstrdup(x->id ? x->id : ""))) rc = eng_err(r->e, CASE_NOMEM, "out of memory");
  if (rc != CASE_OK) return exec_fail(r, rc, "error.execution");
  cs_status *w = r->w;
  int k = 0;
  for (int i = 0; i < w->ntimers; i++) {
    const char *sid = w->timers[i].send
                          ? json_string_value(json_object_get(w->timers[i].send, "sendid"))
                          : NULL;
    if (sid && strcmp(sid, id) == 0) {
      free(w->timers[i].id);
      json_decref(w->timers[i].send);
      continue;
    }
    w->timers[k++] = w->timers[i];
  }
  w->ntimers = k;
  free(id);
  return CASE_OK;
}

static int exec_log(run *r, const cs_script *s) {
  const cs_exec *x = s->exec;
  char *text = NULL;
  if (x->expr) {
    json_t *v;
    int rc = eval_json(r, x->expr, &v);
    if (rc != CASE_OK) return exec_fail(r, rc, "error.execution");
    text = json_is_string(v) ? xstrdup(json_string_value(v))
                             : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
  } else {
    text = xstrdup("");
  }
  json_t *t = text ? json_string(text) : NULL;
  free(text);
  if (!t) t = json_string("?");
  if (plist_push(&r->logs, x->label ? x->label : "", t) != CASE_OK)
    return eng_err(r->e, CASE_NOMEM, "out of memory");
  return CASE_OK;
}

static int exec_assign(run *r, const cs_script *s) {
  const cs_exec *x = s->exec;
  int rc;
  if (x->expr) {
    /* "<location> = (<expr>)" compiled as one chunk */
    rc = assign_json(r, x->assign, NULL);
  } else if (x->content_value || !x->content) {
    rc = assign_json(r, x->assign, x->content_value);
  } else {
    json_t *v;
    rc = eval_json(r, x->content, &v);
    if (rc == CASE_OK) {
      rc = assign_json(r, x->assign, v);
      json_decref(v);
    }
  }
  return rc == CASE_OK ? CASE_OK : exec_fail(r, rc, "error.execution");
}

static int exec_if(run *r, const cs_script *s) {
  const cs_exec *x = s->exec;
  for (int i = 0; i < x->nbranches; i++) {
    int ok = 1;
    if (x->conds[i]) {
      int rc = run_script(r, x->conds[i], 1, &ok);
      if (rc != CASE_OK) {
        rc = exec_fail(r, rc, "error.execution");
        if (rc != EXEC_ABORT) return rc;
        ok = 0; /* SCXML 5.9: false, and error.execution */
      }
    }
    if (ok) return exec_block(r, x->blocks[i], x->nblock[i]);
  }
  return CASE_OK;
}

static int exec_foreach(run *r, const cs_script *s) {
  const cs_exec *x = s->exec;
  json_t *arr;
  int rc = eval_json(r, x->array, &arr);
  if (rc != CASE_OK) return exec_fail(r, rc, "error.execution");
  if (!json_is_array(arr) && !json_is_object(arr)) {
    json_decref(arr);
    return exec_err(r, s, CASE_INVALID, "error.execution",
                    "foreach: array '%s' is not a list", x->array->text);
  }
  if (x->assign->error || (x->index_assign && x->index_assign->error)) {
    json_decref(arr);
    return exec_err(r, s, CASE_INVALID, "error.execution", "foreach: item '%s' or index "
                    "'%s' is not a location", x->location, x->index ? x->index : "");
  }
  /* The list is a copy taken now: the content may change the original. */
  size_t n = json_is_array(arr) ? json_array_size(arr) : json_object_size(arr);
  const char *key;
  json_t *val;
  void *it = json_is_object(arr) ? json_object_iter(arr) : NULL;
  for (size_t i = 0; i < n && rc == CASE_OK; i++) {
    json_t *idx;
    if (json_is_array(arr)) {
      val = json_array_get(arr, i);
      idx = json_integer((json_int_t)i + 1);
    } else {
      key = json_object_iter_key(it);
      val = json_object_iter_value(it);
      idx = json_string(key);
      it = json_object_iter_next(arr, it);
    }
    rc = assign_json(r, x->assign, val);
    if (rc == CASE_OK && x->index_assign) rc = assign_json(r, x->index_assign, idx);
    json_decref(idx);
    if (rc != CASE_OK) {
      rc = exec_fail(r, rc, "error.execution");
      break;
    }
    rc = exec_block(r, x->blocks[0], x->nblock[0]);
  }
  json_decref(arr);
  return rc;
}

static int exec_block(run *r, const cs_script *v, int n) {
  for (int i = 0; i < n; i++) {
    const cs_script *s = &v[i];
    int rc;
    switch (s->kind) {
    case EXEC_RAISE:
      rc = plist_push(&r->queue, s->exec->event, NULL);
      if (rc != CASE_OK) rc = eng_err(r->e, CASE_NOMEM, "out of memory");
      break;
    case EXEC_SEND: rc = exec_send(r, s); break;
    case EXEC_CANCEL: rc = exec_cancel(r, s); break;
    case EXEC_LOG: rc = exec_log(r, s); break;
    case EXEC_ASSIGN: rc = exec_assign(r, s); break;
    case EXEC_IF: rc = exec_if(r, s); break;
    case EXEC_FOREACH: rc = exec_foreach(r, s); break;
    case EXEC_BLOCK:
      rc = exec_block(r, s->exec->blocks[0], s->exec->nblock[0]);
      if (rc == EXEC_ABORT) rc = CASE_OK;
      break;
    default:
      rc = run_script(r, s, 0, NULL);
      if (rc != CASE_OK) rc = exec_fail(r, rc, "error.execution");
      break;
    }
    if (rc != CASE_OK) return rc;
  }
  return CASE_OK;
}

/* ---- the datamodel: binding, top-level scripts ---- */

/* Binds the data declared in state s (0: the document's): each field with an
 * initial value expression gets its value, unless the host gave one. */
static int bind_fields(run *r, int s) {
  const case_def *d = r->d;
  for (int i = 0; i < d->nfields; i++) {
    const cs_field *f = &d->fields[i];
    if (f->state != s || !f->expr) continue;
    if (r->c->given && json_object_get(r->c->given, f->name)) continue;
    json_t *v;
    int rc = eval_json(r, f->expr, &v);
    if (rc != CASE_OK) {
      rc = exec_fail(r, rc, "error.execution"); /* the variable stays unbound */
      if (rc != EXEC_ABORT) return rc;
      continue;
    }
    if (own_data(r) != CASE_OK) {
      json_decref(v);
      return CASE_NOMEM;
    }
    if (data_set_slot(r->w->data, i, v, &r->data_delta) != 0)
      return eng_err(r->e, CASE_NOMEM, "out of memory");
  }
  return CASE_OK;
}

static int bind_data(run *r, int s) {
  bs_set(r->w->sx->bound, s);
  return bind_fields(r, s);
}

static int init_datamodel(run *r) {
  const case_def *d = r->d;
  int rc = CASE_OK;
  if (d->late_binding) {
    rc = bind_fields(r, 0);
  } else {
    for (int s = 0; s < d->nstates && rc == CASE_OK; s++) rc = bind_fields(r, s);
  }
  if (rc == CASE_OK && d->nscripts > 0) rc = run_actions(r, d->scripts, d->nscripts);
  return rc;
}

/* ---- invoke: child cases ---- */

/* Replaces w->invokes by a copy without entry `drop` and/or with `add` (stolen). */
static int invokes_update(run *r, const json_t *drop, json_t *add) {
  json_t *a = json_array();
  if (!a) {
    json_decref(add);
    return eng_err(r->e, CASE_NOMEM, "out of memory");
  }
  size_t i;
  json_t *it;
  json_array_foreach(r->w->sx->invokes, i, it)
    if (it != drop && json_array_append(a, it) != 0) goto nomem;
  if (add && json_array_append_new(a, add) != 0) {
    add = NULL;
    goto nomem;
  }
  json_decref(r->w->sx->invokes);
  r->w->sx->invokes = json_array_size(a) ? a : NULL;
  if (!r->w->sx->invokes) json_decref(a);
  return CASE_OK;
nomem:
  json_decref(a);
  json_decref(add);
  return eng_err(r->e, CASE_NOMEM, "out of memory");
}

static int mail_cancel(run *r, const json_t *inv) {
  return add_mail(r, json_pack("{s:s, s:s, s:O, s:I}", "kind", "cancel", "from", r->c->id,
                               "to", json_object_get(inv, "case"), "time",
                               (json_int_t)r->time));
}

/* Leaving state s cancels its running invokes. */
static int cancel_invokes(run *r, int s) {
  bs_clr(r->bs[BS_INVOKE], s);
  if (!r->w->sx || !r->w->sx->invokes) return CASE_OK;
  for (;;) {
    json_t *hit = NULL;
    size_t i;
    json_t *it;
    json_array_foreach(r->w->sx->invokes, i, it)
      if (json_integer_value(json_object_get(it, "state")) == s) {
        hit = it;
        break;
      }
    if (!hit) return CASE_OK;
    int rc = mail_cancel(r, hit);
    if (rc == CASE_OK) rc = invokes_update(r, hit, NULL);
    if (rc != CASE_OK) return rc;
  }
}

/* The case reached a top-level final state: its children are cancelled and
 * its parent gets done.invoke.<id> with the donedata (stolen). */
static int top_final(run *r, json_t *donedata) {
  while (r->w->sx && r->w->sx->invokes) {
    json_t *it = json_array_get(r->w->sx->invokes, 0);
    int rc = mail_cancel(r, it);
    if (rc == CASE_OK) rc = invokes_update(r, it, NULL);
    if (rc != CASE_OK) {
      json_decref(donedata);
      return rc;
    }
  }
  if (!r->c->parent) {
    json_decref(donedata);
    return CASE_OK;
  }
  sbuf b;
  sbuf_init(&b);
  sbuf_printf(&b, "done.invoke.%s", r->c->invokeid ? r->c->invokeid : "");
  char *name = sbuf_take(&b);
  sbuf_init(&b);
  sbuf_printf(&b, "#_scxml_%s", r->c->id);
  char *own = sbuf_take(&b);
  json_t *m = name && own ? json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s?, s:I}", "kind",
                                      "event", "from", r->c->id, "to", r->c->parent, "event",
                                      name, "data", donedata ? donedata : json_null(), "origin",
                                      own, "origintype", SCXML_TYPE, "invokeid",
                                      r->c->invokeid, "time", (json_int_t)r->time)
                          : NULL;
  if (!m) json_decref(donedata);
  free(name);
  free(own);
  return add_mail(r, m);
}

/* The case reached a top-level final state (SCXML exitInterpreter): the
 * final state's exit content runs, the case's children are cancelled and its
 * parent gets done.invoke with the donedata.  The configuration keeps the
 * final state: it is where the case ended. */
static int finish_case(run *r) {
  const case_def *d = r->d;
  for (int k = 0; k < d->states[0].nchildren; k++) {
    int s = d->states[0].children[k];
    if (!bs_has(r->w->config, s)) continue;
    int rc = run_actions(r, d->states[s].onexit, d->states[s].nonexit);
    if (rc != CASE_OK) return rc;
  }
  json_t *dd = r->final_data;
  r->final_data = NULL;
  return top_final(r, dd);
}

/* A child case its parent cancels (the parent left the invoking state, or
 * ended) runs the exit content of its active states, innermost first, as
 * SCXML 6.4 says ("the Processor MUST execute the <onexit> handlers for all
 * active states in the invoked session"), and cancels its own children.  The
 * content's data writes, <log> lines, host notifications and messages to
 * other cases are kept; events it raises are not processed (the case is
 * ending), and what it sends its parent is dropped on delivery, as every
 * event from a cancelled child.  When the content fails (errors: refuse) or
 * passes a limit, nothing of it is kept and the log callback says so: the
 * cancel itself always happens.  The configuration is left as it was (where
 * the case stopped); chart_cancel_case() then marks the case done. */
int chart_exit_cancelled(case_instance *c, int64_t at) {
  case_engine *e = c->engine;
  const case_def *d = c->def;
  int any = 0;
  for (int s = 1; s < d->nstates && !any; s++)
    any = bs_has(c->st.config, s) && d->states[s].nonexit > 0;
  if (!any) return CASE_OK;
  cs_status w;
  if (chart_status_copy(d, &w, &c->st) != CASE_OK) return eng_err(e, CASE_NOMEM, "out of memory");
  run r;
  if (run_init(&r, c, &w) != CASE_OK) {
    chart_status_free(&w);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  json_t *nullv = json_null();
  r.time = at;
  r.event = "";
  r.payload = nullv;
  int rc = CASE_OK;
  for (int s = d->nstates - 1; rc == CASE_OK && s > 0; s--) {
    if (!bs_has(w.config, s)) continue;
    rc = run_actions(&r, d->states[s].onexit, d->states[s].nonexit);
    if (rc == CASE_OK && d->states[s].ninvokes > 0) rc = cancel_invokes(&r, s);
  }
  if (rc == CASE_OK) rc = check_data_size(&r, &w);
  if (rc == CASE_OK && r.mail && json_array_size(r.mail) > 0) {
    if ((!e->mail && !(e->mail = json_array())) || json_array_extend(e->mail, r.mail) != 0)
      rc = eng_err(e, CASE_NOMEM, "out of memory");
  }
  if (rc != CASE_OK) {
    if (rc != CASE_NOMEM && e->log) {
      char msg[700];
      snprintf(msg, sizeof msg, "case '%s' was cancelled; its exit content failed and is not "
               "kept: %s", c->id, case_errmsg(e));
      e->log(e->log_ud, c, "libcase", msg);
    }
    run_free(&r);
    chart_status_free(&w);
    return rc == CASE_NOMEM ? rc : eng_ok(e);
  }
  chart_status_free(&c->st);
  c->st = w;
  deliver_logs(&r);
  deliver(&r);
  run_free(&r);
  return eng_ok(e);
}

/* The definition that `src` names: a loaded definition whose file is src
 * ("file:" stripped, relative to this definition's directory) or whose
 * workflow id is src. */
static const case_def *resolve_src(run *r, const char *src) {
  const char *p = strncmp(src, "file:", 5) == 0 ? src + 5 : src;
  if (strncmp(p, "//", 2) == 0) p += 2;
  sbuf b;
  sbuf_init(&b);
  if (p[0] != '/' && r->d->dir) sbuf_printf(&b, "%s/%s", r->d->dir, p);
  else sbuf_puts(&b, p);
  char *path = sbuf_take(&b);
  const case_def *found = NULL;
  for (const case_def *d = r->e->defs; d && !found; d = d->next)
    if (path && d->file && strcmp(d->file, path) == 0) found = d;
  free(path);
  if (!found) found = case_def_find(r->e, src, 0);
  return found;
}

static int start_one(run *r, int s, int k) {
  const case_def *d = r->d;
  const cs_invoke *inv = &d->invokes[k];
  char *id = NULL, *type = NULL, *src = NULL, *child = NULL;
  json_t *data = NULL;
  const case_def *cd = NULL;
  int rc = CASE_OK;
  if (inv->id) {
    id = xstrdup(inv->id);
  } else {
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "%s.%lld", d->states[s].id, (long long)++r->w->timer_seq);
    id = sbuf_take(&b);
  }
  if (!id) return eng_err(r->e, CASE_NOMEM, "out of memory");
  if (inv->idlocation) {
    json_t *v = json_string(id);
    rc = v ? assign_json(r, inv->idassign, v) : CASE_NOMEM;
    json_decref(v);
  }
  if (rc == CASE_OK && inv->typeexpr) rc = eval_text(r, inv->typeexpr, "typeexpr", &type);
  if (rc == CASE_OK && !is_scxml_type(type ? type : inv->type))
    rc = eng_err_at(r->e, CASE_INVALID, d->file, inv->pos, "invoke: type '%s' is not "
                    "supported (expected %s)", type ? type : inv->type, SCXML_TYPE);
  if (rc == CASE_OK && inv->contentexpr) {
    /* The document is a value now: loaded as a definition of its own, named
     * after its parent and its content's hash (the same text is one
     * definition, shared). */
    rc = eval_text(r, inv->contentexpr, "content expr", &src);
    if (rc == CASE_OK) {
      char h[65];
      sbuf b;
      sbuf_init(&b);
      if (sha256_hex(src, strlen(src), h) == 0) sbuf_printf(&b, "%s_content_%.12s", d->id, h);
      char *name = sbuf_take(&b);
      case_def *nd = NULL;
      rc = name ? scxml_parse(r->e, src, strlen(src), name, d->dir, NULL, &nd)
                : eng_err(r->e, CASE_NOMEM, "out of memory");
      if (rc == CASE_OK) rc = eng_add_def(r->e, nd, &cd);
      else if (rc != CASE_NOMEM)
        rc = eng_err_at(r->e, rc, d->file, inv->pos, "invoke: the content is no definition: %s",
                        case_errmsg(r->e));
      free(name);
    }
  } else if (rc == CASE_OK && inv->srcexpr) {
    rc = eval_text(r, inv->srcexpr, "srcexpr", &src);
    if (rc == CASE_OK && !(cd = resolve_src(r, src)))
      rc = eng_err_at(r->e, CASE_NOTFOUND, d->file, inv->pos, "invoke: no loaded definition "
                      "is '%s' (load the definitions a case invokes before it runs)", src);
  } else if (rc == CASE_OK) {
    cd = inv->version > 0 ? case_def_find(r->e, inv->workflow, inv->version)
                          : case_def_in_force(r->e, inv->workflow, r->time);
    if (!cd || (inv->version > 0 && cd->version != inv->version))
      rc = eng_err_at(r->e, CASE_NOTFOUND, d->file, inv->pos, "invoke: workflow '%s' is not "
                      "loaded", inv->workflow);
  }
  if (rc == CASE_OK) rc = eval_names(r, inv->names, inv->nnames, NULL, NULL, &data);
  if (rc != CASE_OK) {
    free(id), free(type), free(src);
    json_decref(data);
    rc = exec_fail(r, rc, "error.execution");
    return rc == EXEC_ABORT ? CASE_OK : rc;
  }
  sbuf b;
  sbuf_init(&b);
  sbuf_printf(&b, "%s.%s", r->c->id, id);
  child = sbuf_take(&b);
  json_t *entry = child ? json_pack("{s:s, s:s, s:i, s:i}", "id", id, "case", child, "invoke", k,
                                    "state", s)
                        : NULL;
  rc = entry ? invokes_update(r, NULL, entry) : eng_err(r->e, CASE_NOMEM, "out of memory");
  if (rc == CASE_OK)
    rc = add_mail(r, json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:o, s:I}", "kind", "invoke",
                               "from", r->c->id, "to", child, "invokeid", id, "workflow",
                               cd->id, "version", cd->version, "data",
                               json_is_object(data) ? json_incref(data) : json_object(), "time",
                               (json_int_t)r->time));
  free(id), free(type), free(src), free(child);
  json_decref(data);
  return rc;
}

static int start_invokes(run *r) {
  const case_def *d = r->d;
  r->invoking = 0;
  for (int s = 1; s < d->nstates; s++) {
    if (!bs_has(r->bs[BS_INVOKE], s)) continue;
    bs_clr(r->bs[BS_INVOKE], s);
    if (!bs_has(r->w->config, s)) continue;
    for (int k = 0; k < d->states[s].ninvokes; k++) {
      int rc = start_one(r, s, d->states[s].invokes[k]);
      if (rc != CASE_OK) return rc;
    }
  }
  return CASE_OK;
}

/* Before an external event is processed: the finalize content of the invoke it
 * comes from, and copies to the children that autoforward. */
static int before_event(run *r) {
  const char *from = r->meta ? json_string_value(json_object_get(r->meta, "invokeid")) : NULL;
  json_t *list = json_incref(r->w->sx->invokes);
  size_t i;
  json_t *it;
  int rc = CASE_OK;
  json_array_foreach(list, i, it) {
    const cs_invoke *inv = &r->d->invokes[json_integer_value(json_object_get(it, "invoke"))];
    const char *id = json_string_value(json_object_get(it, "id"));
    if (from && id && strcmp(from, id) == 0) {
      rc = run_actions(r, inv->finalize, inv->nfinalize);
      if (rc == CASE_OK && strncmp(r->event, "done.invoke.", 12) == 0)
        rc = invokes_update(r, it, NULL); /* the child is done */
      if (rc != CASE_OK) break;
    }
    if (inv->autoforward && strncmp(r->event, "done.invoke.", 12) != 0) {
      json_t *m = json_pack("{s:s, s:s, s:O, s:s, s:O, s:I}", "kind", "event", "from", r->c->id,
                            "to", json_object_get(it, "case"), "event", r->event, "data",
                            r->payload, "time", (json_int_t)r->time);
      if (m && r->meta) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)r->meta, k, v)
          if (strcmp(k, "type") != 0) json_object_set(m, k, v);
      }
      rc = add_mail(r, m);
      if (rc != CASE_OK) break;
    }
  }
  json_decref(list);
  return rc;
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
    if (t->system == 2) {
      sbuf_printf(&m, "in '%s', '%s' is raised by the workflow's own actions, not fired by a "
                  "role", src, u->event);
    } else if (t->system) {
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
    r.explaining = 1;
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
  r.explaining = 1;
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
