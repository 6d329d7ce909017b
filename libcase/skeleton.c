/*
 * skeleton.c — a shortest event path to a transition, written as a scenario
 * skeleton (case_coverage_skeleton(), docs/process-tests.md "Skeletons").
 *
 * A breadth-first search over what a case can be: its configuration, history
 * values and which timers run or have run out.  Each move is one macrostep of
 * the real algorithm (chart.c) in the probe's abstract mode: guards answer from
 * `force` (the move's aimed transition and the target hold, every other guard
 * fails), actions do not run but their literal raise('x') calls are followed.
 * Moves are an event fired by a role the aimed transition allows, or the clock
 * reaching the next timer (timers run out in time order, as a tick fires them).
 * Data is never known, so the skeleton carries TODOs for it.
 */
#include "internal.h"
#include "libcase/scenario.h"

#include <stdlib.h>
#include <string.h>

#define MAX_NODES 200000

enum { MOVE_START, MOVE_EVENT, MOVE_TICK };

typedef struct node {
  cs_status st;
  int64_t now;       /* the step's time: events happen then, timers due by then have fired */
  int parent;
  int kind;          /* MOVE_* */
  int trans;         /* the aimed transition, or -1 (a tick no transition handles) */
  int timer;         /* MOVE_TICK: index in def->timers */
  int64_t due;       /* MOVE_TICK: when it ran out */
  cal_day last_day;  /* MOVE_TICK: its last day, or CAL_NO_DAY */
  char *event;       /* MOVE_EVENT: the name fired */
  const char *role;  /* MOVE_EVENT: borrowed from the definition */
  int *trace;        /* the macrostep's guard results (trace entries), owned */
  int ntrace;
  unsigned hash;
} node;

typedef struct search {
  case_engine *e;
  const case_def *d;
  int target;
  case_instance c;   /* the abstract case the moves run on (not on the engine's list) */
  cs_probe probe;
  unsigned char *force;
  node *nodes;
  int n, cap;
  int *table;        /* open addressing over node indices + 1 */
  size_t tcap;
  int twords;        /* words of a timer bitset */
  uint64_t *key, *key2; /* scratch keys */
  size_t keylen;     /* in words */
  int found;         /* index of the node whose move took the target, or -1 */
} search;

static inline int has(const uint64_t *b, int i) { return (int)((b[i >> 6] >> (i & 63)) & 1u); }

/* The key of a status: configuration, history values, and per timer whether
 * it runs and whether it has run out. */
static void make_key(search *s, const cs_status *st, uint64_t *key) {
  const case_def *d = s->d;
  size_t w = (size_t)d->words, k = 0;
  memcpy(key, st->config, w * sizeof *key);
  k += w;
  if (d->nhistory) {
    memcpy(key + k, st->history, (size_t)d->nhistory * w * sizeof *key);
    k += (size_t)d->nhistory * w;
  }
  uint64_t *run = key + k, *out = key + k + s->twords;
  memset(run, 0, 2 * (size_t)s->twords * sizeof *key);
  for (int i = 0; i < st->ntimers; i++) {
    int t = st->timers[i].timer;
    run[t >> 6] |= (uint64_t)1 << (t & 63);
    if (st->timers[i].fired) out[t >> 6] |= (uint64_t)1 << (t & 63);
  }
  key[s->keylen - 1] = (uint64_t)st->done;
}

static unsigned hash_key(const uint64_t *k, size_t n) {
  uint64_t h = 1469598103934665603u;
  for (size_t i = 0; i < n; i++) {
    h ^= k[i];
    h *= 1099511628211u;
    h ^= h >> 29;
  }
  return (unsigned)(h ^ (h >> 32));
}

/* 1 if a node with this key exists. */
static int seen(search *s, const uint64_t *key, unsigned h) {
  uint64_t *other = s->key2;
  int found = 0;
  if (s->tcap == 0) return 0;
  for (size_t i = h & (s->tcap - 1);; i = (i + 1) & (s->tcap - 1)) {
    int x = s->table[i];
    if (!x) break;
    if (s->nodes[x - 1].hash != h) continue;
    make_key(s, &s->nodes[x - 1].st, other);
    if (memcmp(other, key, s->keylen * sizeof *key) == 0) {
      found = 1;
      break;
    }
  }
  return found;
}

static int table_add(search *s, int idx) {
  if ((size_t)(s->n + 1) * 2 > s->tcap) {
    size_t cap = s->tcap ? s->tcap * 2 : 1024;
    int *t = calloc(cap, sizeof *t);
    if (!t) return CASE_NOMEM;
    for (size_t i = 0; i < s->tcap; i++) {
      int x = s->table[i];
      if (!x) continue;
      size_t j = s->nodes[x - 1].hash & (cap - 1);
      while (t[j]) j = (j + 1) & (cap - 1);
      t[j] = x;
    }
    free(s->table);
    s->table = t;
    s->tcap = cap;
  }
  size_t j = s->nodes[idx].hash & (s->tcap - 1);
  while (s->table[j]) j = (j + 1) & (s->tcap - 1);
  s->table[j] = idx + 1;
  return CASE_OK;
}

static int taken(const cs_trace *t, int trans) {
  for (int i = 0; i < t->n; i++)
    if ((t->v[i] & 7) == TR_TAKEN && (t->v[i] >> 3) == trans) return 1;
  return 0;
}

/* Keeps c.st (the result of the move just run) as a new node, unless a node
 * with its key exists.  Takes c.st either way. */
static int keep(search *s, int parent, int kind, int trans, int timer, int64_t due,
                cal_day last_day, const char *event, const char *role, int64_t now) {
  uint64_t *key = s->key;
  make_key(s, &s->c.st, key);
  unsigned h = hash_key(key, s->keylen);
  int hit = taken(&s->probe.last, s->target);
  if (!hit && seen(s, key, h)) {
    chart_status_free(&s->c.st);
    return CASE_OK;
  }
  if (s->n >= MAX_NODES) {
    chart_status_free(&s->c.st);
    return eng_err(s->e, CASE_LIMIT, "no path found within %d configurations of workflow '%s'",
                   MAX_NODES, s->d->id);
  }
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 256;
    node *v = realloc(s->nodes, (size_t)cap * sizeof *v);
    if (!v) {
      chart_status_free(&s->c.st);
      return eng_err(s->e, CASE_NOMEM, "out of memory");
    }
    s->nodes = v;
    s->cap = cap;
  }
  node *nd = &s->nodes[s->n];
  memset(nd, 0, sizeof *nd);
  nd->st = s->c.st;
  memset(&s->c.st, 0, sizeof s->c.st);
  nd->now = now;
  nd->parent = parent;
  nd->kind = kind;
  nd->trans = trans;
  nd->timer = timer;
  nd->due = due;
  nd->last_day = last_day;
  nd->role = role;
  nd->hash = h;
  if (event && !(nd->event = xstrdup(event))) return eng_err(s->e, CASE_NOMEM, "out of memory");
  /* The guard results of the move, for the skeleton's notes. */
  int ng = 0;
  for (int i = 0; i < s->probe.last.n; i++) ng += (s->probe.last.v[i] & 7) <= TR_GUARD_FALSE;
  if (ng) {
    nd->trace = malloc((size_t)ng * sizeof *nd->trace);
    if (!nd->trace) return eng_err(s->e, CASE_NOMEM, "out of memory");
    for (int i = 0; i < s->probe.last.n; i++)
      if ((s->probe.last.v[i] & 7) <= TR_GUARD_FALSE) nd->trace[nd->ntrace++] = s->probe.last.v[i];
  }
  s->n++;
  if (hit) {
    s->found = s->n - 1;
    return CASE_OK;
  }
  return table_add(s, s->n - 1) == CASE_OK ? CASE_OK : eng_err(s->e, CASE_NOMEM, "out of memory");
}

/* The time a tick step goes to so that the timer due at `due` has run out:
 * 10:00 that local day when the timer is due by then and no other timer
 * would run out in between, else the due time itself (to the minute). */
static int64_t tick_time(const cs_status *st, int64_t due) {
  cal_day day = cal_local_day(due);
  int64_t ten = cal_local_midnight(day) + 10 * 3600;
  /* cal_local_midnight + 10 h is 10:00 except on DST days, where it is 09:00 or
   * 11:00 local: near enough, the check below keeps it exact. */
  if (due <= ten) {
    int other = 0;
    for (int i = 0; i < st->ntimers && !other; i++)
      other = !st->timers[i].fired && st->timers[i].due > due && st->timers[i].due <= ten;
    char buf[24];
    scenario_format_time(ten, buf);
    if (!other && strlen(buf) == 10) return ten;
  }
  return (due + 59) / 60 * 60;
}

/* Runs one move from node `from`: an event (timer < 0) or the timer instance
 * `ti` running out, aiming at transition `trans` (-1: none). */
static int move(search *s, int from, int trans, const char *event, const char *role, int ti) {
  const node *src = &s->nodes[from];
  int rc = chart_status_copy(s->d, &s->c.st, &src->st);
  if (rc != CASE_OK) return eng_err(s->e, CASE_NOMEM, "out of memory");
  free(s->probe.last.v);
  memset(&s->probe.last, 0, sizeof s->probe.last);
  if (trans >= 0) s->force[trans] = 1;
  int64_t now = src->now, due = 0;
  int timer = -1;
  cal_day last_day = CAL_NO_DAY;
  if (ti < 0) {
    rc = chart_macrostep(&s->c, event, NULL, NULL, role, now, 0);
  } else {
    cs_timer_inst *x = &s->c.st.timers[ti];
    timer = x->timer;
    due = x->due;
    last_day = x->last_day;
    int64_t seq = x->seq;
    const cs_timer *tm = &s->d->timers[timer];
    x->fired = 1;
    now = tick_time(&s->c.st, due);
    if (tm->event) rc = chart_macrostep(&s->c, tm->event, NULL, NULL, NULL, due, 1);
    if (rc == CASE_OK && tm->kind == TIMER_AFTER) {
      for (int k = 0; k < s->c.st.ntimers; k++) {
        if (s->c.st.timers[k].seq != seq) continue;
        free(s->c.st.timers[k].id);
        memmove(&s->c.st.timers[k], &s->c.st.timers[k + 1],
                (size_t)(s->c.st.ntimers - k - 1) * sizeof s->c.st.timers[0]);
        s->c.st.ntimers--;
        break;
      }
    }
  }
  if (trans >= 0 && trans != s->target) s->force[trans] = 0;
  if (rc == CASE_NOMEM) {
    chart_status_free(&s->c.st);
    return rc;
  }
  if (rc != CASE_OK || (trans >= 0 && !taken(&s->probe.last, trans))) {
    /* Not possible here (preempted, refused, a term that cannot be counted). */
    chart_status_free(&s->c.st);
    return CASE_OK;
  }
  return keep(s, from, ti < 0 ? MOVE_EVENT : MOVE_TICK, trans, timer, due, last_day, event, role,
              now);
}

/* The name to fire for an event descriptor, or NULL ("*", reserved names). */
static char *fire_name(const char *desc) {
  if (strcmp(desc, "*") == 0) return NULL;
  size_t n = strlen(desc);
  if (n >= 2 && desc[n - 1] == '*' && desc[n - 2] == '.') n -= 2;
  char *name = xstrndup(desc, n);
  if (name && event_name_problem(name)) {
    free(name);
    return NULL;
  }
  return name;
}

static int expand(search *s, int from) {
  const case_def *d = s->d;
  /* The timer the clock reaches next: due first, then by id (as a tick fires them). */
  const cs_status *st = &s->nodes[from].st;
  if (st->done) return CASE_OK;
  int next = -1;
  for (int i = 0; i < st->ntimers; i++) {
    const cs_timer_inst *t = &st->timers[i];
    if (t->fired) continue;
    if (next < 0 || t->due < st->timers[next].due ||
        (t->due == st->timers[next].due && t->seq < st->timers[next].seq))
      next = i;
  }
  int rc = CASE_OK;
  int overdue = next >= 0 && st->timers[next].due <= s->nodes[from].now;
  if (next >= 0) {
    /* The clock runs on: the timer runs out, aiming at each transition for its
     * event in turn, and at none (every such guard false). */
    const cs_timer *tm = &d->timers[st->timers[next].timer];
    for (int i = 0; tm->event && i < d->ntransitions && rc == CASE_OK && s->found < 0; i++) {
      const cs_transition *t = &d->transitions[i];
      if (!has(s->nodes[from].st.config, t->source)) continue;
      int hit = 0;
      for (int k = 0; k < t->nevents && !hit; k++) hit = event_matches(t->events[k], tm->event);
      if (hit) rc = move(s, from, i, NULL, NULL, next);
    }
    if (rc == CASE_OK && s->found < 0) rc = move(s, from, -1, NULL, NULL, next);
  }
  /* Events, unless a timer due by now must fire first. */
  for (int i = 0; i < d->ntransitions && !overdue && rc == CASE_OK && s->found < 0; i++) {
    const cs_transition *t = &d->transitions[i];
    if (t->nevents == 0 || t->timer >= 0 || t->system) continue;
    if (!has(s->nodes[from].st.config, t->source)) continue;
    const char *role = t->nroles ? d->roles[t->roles[0]] : d->nroles ? d->roles[0] : NULL;
    for (int k = 0; k < t->nevents && rc == CASE_OK && s->found < 0; k++) {
      char *name = fire_name(t->events[k]);
      if (!name) continue;
      rc = move(s, from, i, name, role, -1);
      free(name);
    }
  }
  return rc;
}

/* ---- writing the skeleton ---- */

static void yaml_quoted(sbuf *b, const char *s) {
  sbuf_puts(b, "\"");
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') sbuf_printf(b, "\\%c", *s);
    else if (*s == '\n') sbuf_puts(b, "\\n");
    else if ((unsigned char)*s < 0x20) sbuf_printf(b, "\\x%02x", (unsigned char)*s);
    else sbuf_add(b, s, 1);
  }
  sbuf_puts(b, "\"");
}

/* Script text on one line for a comment, at most 80 characters. */
static void one_line(sbuf *b, const char *s) {
  int n = 0, space = 0;
  for (; *s && n < 80; s++) {
    if (*s == '\n' || *s == '\r' || *s == '\t' || *s == ' ') {
      space = n > 0;
      continue;
    }
    if (space) sbuf_puts(b, " "), n++;
    space = 0;
    sbuf_add(b, s, 1);
    n++;
  }
  if (*s) sbuf_puts(b, "...");
}

static void describe(sbuf *b, const case_def *d, const cs_transition *t, const char *file) {
  if (t->nevents == 0) sbuf_puts(b, "eventless transition");
  else {
    sbuf_puts(b, "transition on");
    for (int i = 0; i < t->nevents; i++) sbuf_printf(b, " '%s'", t->events[i]);
  }
  sbuf_printf(b, " from '%s'", d->states[t->source].id);
  for (int i = 0; i < t->ntargets; i++)
    sbuf_printf(b, "%s'%s'", i ? ", " : " to ", d->states[t->targets[i]].id);
  if (!t->ntargets) sbuf_puts(b, " (targetless)");
  sbuf_printf(b, " at %s:%d:%d", file, t->pos.line, t->pos.col);
}

static void leaves(sbuf *b, const case_def *d, const cs_status *st) {
  sbuf_puts(b, "    configuration: {includes: [");
  int k = 0;
  for (int s = 1; s < d->nstates; s++) {
    if (!has(st->config, s)) continue;
    if (d->states[s].kind != CS_ATOMIC && d->states[s].kind != CS_FINAL) continue;
    sbuf_printf(b, "%s%s", k++ ? ", " : "", d->states[s].id);
  }
  sbuf_puts(b, "]}\n");
}

static void guard_notes(sbuf *b, search *s, const node *nd, const char *file) {
  const case_def *d = s->d;
  for (int i = 0; i < nd->ntrace; i++) {
    int kind = nd->trace[i] & 7, ti = nd->trace[i] >> 3;
    int dup = 0;
    for (int j = 0; j < i && !dup; j++) dup = nd->trace[j] == nd->trace[i];
    if (dup) continue;
    const cs_transition *t = &d->transitions[ti];
    if (kind == TR_GUARD_FALSE) {
      /* Only the guards that competed for this step's event: an eventless
       * guard that stays false is the ordinary case. */
      const char *ev = nd->kind == MOVE_EVENT ? nd->event
                       : nd->kind == MOVE_TICK ? d->timers[nd->timer].event : NULL;
      int competes = 0;
      for (int k = 0; ev && k < t->nevents && !competes; k++) competes = event_matches(t->events[k], ev);
      if (!competes) continue;
    }
    sbuf_printf(b, "    # TODO: guard '");
    one_line(b, t->guard->text);
    sbuf_printf(b, "' (%s:%d:%d) must be %s\n", file, t->guard->pos.line, t->guard->pos.col,
                kind == TR_GUARD_TRUE ? "true" : "false");
  }
}

static int write_skeleton(search *s, const char *wpath, const char *location, char **out) {
  const case_def *d = s->d;
  char *file = cov_tidy_path(d->file ? d->file : "?"); /* as the report writes it */
  if (!file) return eng_err(s->e, CASE_NOMEM, "out of memory");
  int nsteps = 0;
  for (int x = s->found; x > 0; x = s->nodes[x].parent) nsteps++;
  int *path = malloc((size_t)(nsteps ? nsteps : 1) * sizeof *path);
  if (!path) {
    free(file);
    return eng_err(s->e, CASE_NOMEM, "out of memory");
  }
  int k = nsteps;
  for (int x = s->found; x > 0; x = s->nodes[x].parent) path[--k] = x;
  const cs_transition *target = &d->transitions[s->target];
  sbuf b;
  sbuf_init(&b);
  sbuf_puts(&b, "# Scenario skeleton written by libcase (case_coverage_skeleton): a shortest event\n"
                "# path from the initial configuration of ");
  sbuf_printf(&b, "%s version %d to the\n# ", d->id, d->version);
  describe(&b, d, target, file);
  sbuf_puts(&b, ".\n"
                "# Guards were taken as unknown and actions did not run: fill in every TODO (the\n"
                "# starting data and payloads that make the named guards true or false), work each\n"
                "# date out by hand (docs/process-tests.md, \"Writing expected dates\"), add what the\n"
                "# scenario must show, and give it a name.\n");
  sbuf_puts(&b, "scenario: ");
  sbuf sc;
  sbuf_init(&sc);
  sbuf_puts(&sc, "TODO: reach the ");
  describe(&sc, d, target, file);
  char *title = sbuf_take(&sc);
  yaml_quoted(&b, title ? title : "TODO");
  free(title);
  sbuf_puts(&b, "\nworkflow: ");
  yaml_quoted(&b, wpath ? wpath : d->file);
  sbuf_printf(&b, "\nversion: %d\n", d->version);
  if (location) {
    sbuf_puts(&b, "location: ");
    yaml_quoted(&b, location);
    sbuf_puts(&b, "\n");
  }
  char when[24];
  scenario_format_time(s->nodes[0].now, when);
  sbuf_printf(&b, "start: \"%s\"\n", when);
  sbuf_puts(&b, "data: {}  # TODO: the starting data the guards below need\n");
  if (nsteps == 0) {
    sbuf_puts(&b, "# The initial configuration already takes the target.\n"
                  "steps: []\n");
  } else {
    sbuf_puts(&b, "steps:\n");
  }
  for (int i = 0; i < nsteps; i++) {
    const node *nd = &s->nodes[path[i]];
    const node *pr = &s->nodes[nd->parent];
    if (nd->kind == MOVE_EVENT) {
      const cs_transition *t = &d->transitions[nd->trans];
      sbuf_printf(&b, "  - event: %s\n", nd->event);
      if (nd->role) {
        sbuf_printf(&b, "    role: %s", nd->role);
        if (t->nroles > 1) {
          sbuf_puts(&b, "  # or");
          for (int r = 1; r < t->nroles; r++) sbuf_printf(&b, " %s", d->roles[t->roles[r]]);
        } else if (t->nroles == 0) {
          sbuf_puts(&b, "  # the transition is open to every role");
        }
        sbuf_puts(&b, "\n");
      }
      scenario_format_time(nd->now, when);
      sbuf_printf(&b, "    date: \"%s\"  # TODO: when this happens\n", when);
      if (t->guard || t->nactions)
        sbuf_puts(&b, "    payload: {}  # TODO: the event's data\n");
      sbuf_puts(&b, "    # ");
      describe(&b, d, t, file);
      sbuf_puts(&b, "\n");
    } else {
      const cs_timer *tm = &d->timers[nd->timer];
      scenario_format_time(nd->now, when);
      sbuf_printf(&b, "  - tick: \"%s\"\n", when);
      if (tm->kind == TIMER_DEADLINE) {
        sbuf_printf(&b, "    # term '%s' of '%s' (%s:%d:%d) runs out", tm->name,
                    d->states[tm->state].id, file, tm->pos.line, tm->pos.col);
        if (nd->last_day != CAL_NO_DAY) {
          char day[11];
          cal_format_date(nd->last_day, day);
          sbuf_printf(&b, ": last day %s", day);
        }
        sbuf_puts(&b, " (TODO: work it out by hand)\n");
      } else {
        sbuf_printf(&b, "    # the delay of '%s' (%s:%d:%d) has passed\n", tm->name, file,
                    tm->pos.line, tm->pos.col);
      }
      if (nd->trans >= 0) {
        sbuf_puts(&b, "    # ");
        describe(&b, d, &d->transitions[nd->trans], file);
        sbuf_puts(&b, "\n");
      }
      (void)pr;
    }
    guard_notes(&b, s, nd, file);
    if (i == nsteps - 1) sbuf_puts(&b, "    # this step takes the target transition\n");
    leaves(&b, d, &nd->st);
  }
  free(path);
  free(file);
  char *text = sbuf_take(&b);
  if (!text) return eng_err(s->e, CASE_NOMEM, "out of memory");
  *out = text;
  return CASE_OK;
}

/* ---- the search ---- */

static void search_free(search *s) {
  for (int i = 0; i < s->n; i++) {
    chart_status_free(&s->nodes[i].st);
    free(s->nodes[i].event);
    free(s->nodes[i].trace);
  }
  free(s->nodes);
  free(s->table);
  free(s->key);
  free(s->force);
  free(s->probe.last.v);
  chart_status_free(&s->c.st);
}

int case_coverage_skeleton(case_engine *e, const case_def *d, int line, int column,
                           const char *workflow_path, const char *location, int64_t start,
                           char **yaml) {
  if (yaml) *yaml = NULL;
  if (!e) return CASE_MISUSE;
  if (!d || !yaml) return eng_err(e, CASE_MISUSE, "case_coverage_skeleton: NULL argument");
  if (d->engine != e)
    return eng_err(e, CASE_MISUSE, "case_coverage_skeleton: the definition belongs to another engine");
  if (e->probe && e->probe->abstract)
    return eng_err(e, CASE_MISUSE, "case_coverage_skeleton: called during a skeleton search");
  /* The transition at that position. */
  int target = -1, nline = 0;
  sbuf which;
  sbuf_init(&which);
  for (int i = 0; i < d->ntransitions; i++) {
    const cs_transition *t = &d->transitions[i];
    if (t->pos.line != line) continue;
    nline++;
    sbuf_printf(&which, "%s%d:%d", nline > 1 ? ", " : "", t->pos.line, t->pos.col);
    if (column <= 0 || t->pos.col == column) target = target < 0 ? i : target;
  }
  char *file = cov_tidy_path(d->file ? d->file : "?");
  if (!file) {
    sbuf_free(&which);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  int rc = CASE_OK;
  if (target < 0)
    rc = eng_err(e, CASE_NOTFOUND, "%s:%d:%d: no transition of workflow '%s' version %d here",
                 file, line, column > 0 ? column : 1, d->id, d->version);
  else if (column <= 0 && nline > 1)
    rc = eng_err(e, CASE_INVALID, "%s:%d: %d transitions on this line (at %s): give the column",
                 file, line, nline, which.p ? which.p : "");
  sbuf_free(&which);
  if (rc != CASE_OK) {
    free(file);
    return rc;
  }
  search s;
  memset(&s, 0, sizeof s);
  s.e = e;
  s.d = d;
  s.target = target;
  s.found = -1;
  s.twords = (d->ntimers + 63) / 64;
  s.keylen = (size_t)d->words * (1 + (size_t)d->nhistory) + 2 * (size_t)s.twords + 1;
  s.key = malloc(2 * s.keylen * sizeof *s.key);
  s.key2 = s.key ? s.key + s.keylen : NULL;
  s.force = calloc((size_t)d->ntransitions + 1, 1);
  s.probe.abstract = 1;
  s.c.engine = e;
  s.c.def = d;
  s.c.id = "skeleton";
  s.c.location = (char *)(location && eng_profile_find(e, location) ? location : NULL);
  if (!s.key || !s.force || chart_status_init(d, &s.c.st) != CASE_OK) {
    search_free(&s);
    free(file);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  s.force[target] = 1;
  s.probe.force = s.force;
  cs_probe *saved = e->probe;
  e->probe = &s.probe;
  rc = chart_macrostep(&s.c, NULL, NULL, NULL, NULL, start, 0);
  if (rc == CASE_OK) rc = keep(&s, -1, MOVE_START, -1, -1, 0, CAL_NO_DAY, NULL, NULL, start);
  else rc = eng_err(e, rc == CASE_NOMEM ? CASE_NOMEM : CASE_NOTFOUND,
                    "%s: the initial configuration of workflow '%s' cannot be entered: %s", file,
                    d->id, case_errmsg(e));
  for (int head = 0; rc == CASE_OK && s.found < 0 && head < s.n; head++) rc = expand(&s, head);
  e->probe = saved;
  if (rc == CASE_OK && s.found < 0) {
    sbuf t;
    sbuf_init(&t);
    describe(&t, d, &d->transitions[target], file);
    char *what = sbuf_take(&t);
    rc = eng_err(e, CASE_NOTFOUND,
                 "%s:%d:%d: no event path from the initial configuration takes the %s (%d "
                 "configurations searched; guards taken either way, events raised by Lua "
                 "module functions not followed)",
                 file, d->transitions[target].pos.line, d->transitions[target].pos.col,
                 what ? what : "transition", s.n);
    free(what);
  }
  if (rc == CASE_OK) rc = write_skeleton(&s, workflow_path, location, yaml);
  search_free(&s);
  free(file);
  if (rc == CASE_OK) eng_ok(e);
  return rc;
}
