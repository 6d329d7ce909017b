/* instance.c — cases: creation, firing, timers, reads, snapshots; the native call API. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define SNAPSHOT_FORMAT 1

static int nomem(case_engine *e) { return eng_err(e, CASE_NOMEM, "out of memory"); }

/* Notifications of several macrosteps held back until they all completed
 * (a tick or fire that fails leaves the case as it was: nothing is told). */
typedef struct held {
  cs_plist list;
  case_notify_fn host;
  void *host_ud;
  int nomem;
} held;

static void hold_one(void *ud, const case_instance *c, const char *name, const char *payload) {
  (void)c;
  held *h = ud;
  json_t *p = json_loads(payload, JSON_DECODE_ANY, NULL);
  if (!p || plist_push(&h->list, name, p) != CASE_OK) h->nomem = 1;
}

static void hold_start(case_engine *e, held *h) {
  memset(h, 0, sizeof *h);
  h->host = e->notify;
  h->host_ud = e->notify_ud;
  if (!h->host) return; /* nobody listens: nothing to hold */
  e->notify = hold_one;
  e->notify_ud = h;
}

static void hold_stop(case_engine *e, held *h) {
  e->notify = h->host;
  e->notify_ud = h->host_ud;
}

static void hold_forward(const held *h, const case_instance *c) {
  if (!h->host) return;
  for (int i = 0; i < h->list.n; i++) {
    char *p = json_dumps(h->list.v[i].payload, JSON_COMPACT | JSON_ENCODE_ANY);
    h->host(h->host_ud, c, h->list.v[i].name, p ? p : "null");
    free(p);
  }
}

static void hold_free(held *h) {
  plist_clear(&h->list);
  free(h->list.v);
  memset(&h->list, 0, sizeof h->list);
}

static int tick_all(case_instance *c, int64_t now, const char *during, int *fired, int *over);

static int json_out(case_engine *e, json_t *v, char **out) {
  *out = NULL;
  if (!v) return nomem(e);
  char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(v);
  if (!s) return nomem(e);
  *out = s;
  return eng_ok(e);
}

/* Parses optional JSON text; "what" names it in messages. */
static int parse_json(case_engine *e, const char *text, const char *what, json_t **out) {
  *out = NULL;
  if (!text) return CASE_OK;
  json_error_t err;
  json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
  if (!v)
    return eng_err(e, CASE_INVALID, "%s is not valid JSON: line %d, column %d: %s", what,
                   err.line, err.column, err.text);
  *out = v;
  return CASE_OK;
}

/* The data object: every declared field with its default, then `given`.  From
 * an invoking parent (`from_parent`) a name the definition does not declare
 * is left out, as SCXML 6.4 says; from a host it is an error. */
static int initial_data(case_engine *e, const case_def *d, const json_t *given, cs_data *data,
                        int from_parent) {
  /* The defaults are shared with the definition: no value is ever changed in
   * place (data.c). */
  for (int i = 0; i < d->nfields; i++)
    if (d->fields[i].def) data_set_slot(data, i, json_incref(d->fields[i].def), NULL);
  if (!given) return CASE_OK;
  if (!json_is_object(given))
    return eng_err(e, CASE_INVALID, "initial data must be a JSON object");
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)given, k, v) {
    int f = def_field_find(d, k);
    if (f < 0 && from_parent) continue;
    if (f < 0)
      return eng_err(e, CASE_INVALID, "initial data: '%s' is not a data field of workflow '%s'",
                     k, d->id);
    if (!type_accepts(d->fields[f].type, v))
      return eng_err(e, CASE_INVALID, "initial data: field '%s' must be a %s", k,
                     type_name(d->fields[f].type));
    data_set_slot(data, f, json_incref((json_t *)v), NULL);
  }
  return CASE_OK;
}

/* The engine's cases: a list (for closing) and a hash index by id, so a store
 * with a million cases loaded still finds one in constant time. */
static size_t hash_id(const char *s) {
  size_t h = 1469598103934665603u; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
  return h;
}

static void bucket_add(case_engine *e, case_instance *c) {
  size_t b = hash_id(c->id) & (e->nbuckets - 1);
  c->hnext = e->buckets[b];
  e->buckets[b] = c;
}

/* Doubles the index (or makes the first); on no memory keeps the old one,
 * whose chains just get longer. */
static void index_grow(case_engine *e) {
  size_t n = e->nbuckets ? e->nbuckets * 2 : 64;
  case_instance **b = calloc(n, sizeof *b);
  if (!b) return;
  free(e->buckets);
  e->buckets = b;
  e->nbuckets = n;
  for (case_instance *c = e->cases; c; c = c->next) bucket_add(e, c);
}

static void link_case(case_engine *e, case_instance *c) {
  c->prev = NULL;
  c->next = e->cases;
  if (e->cases) e->cases->prev = c;
  e->cases = c;
  e->ncases++;
  if (e->ncases > e->nbuckets) {
    size_t before = e->nbuckets;
    index_grow(e); /* rehashes every case, this one too */
    if (e->nbuckets != before) return;
  }
  if (e->buckets) bucket_add(e, c);
}

static void unlink_case(case_instance *c) {
  case_engine *e = c->engine;
  if (c->prev) c->prev->next = c->next;
  else if (e->cases == c) e->cases = c->next;
  else return; /* never linked (a failed create) */
  if (c->next) c->next->prev = c->prev;
  e->ncases--;
  if (e->buckets) {
    case_instance **pp = &e->buckets[hash_id(c->id) & (e->nbuckets - 1)];
    while (*pp && *pp != c) pp = &(*pp)->hnext;
    if (*pp) *pp = c->hnext;
  }
  if (e->ncases == 0) {
    free(e->buckets);
    e->buckets = NULL;
    e->nbuckets = 0;
  }
}

static void case_destroy(case_instance *c) {
  chart_status_free(&c->st);
  free(c->parent);
  free(c->invokeid);
  free(c->id);
  free(c->location);
  free(c);
}

static int new_case(case_engine *e, const case_def *d, const char *id, const char *location,
                    const cs_profile *profile, case_instance **out) {
  *out = NULL;
  if (case_instance_find(e, id))
    return eng_err(e, CASE_EXISTS, "a case with id '%s' already exists", id);
  if (location && !profile && !eng_profile_find(e, location))
    return eng_err(e, CASE_NOTFOUND, "no location profile '%s' is loaded", location);
  case_instance *c = calloc(1, sizeof *c);
  if (!c) return nomem(e);
  c->engine = e;
  c->def = d;
  c->id = xstrdup(id);
  c->location = location ? xstrdup(location) : NULL;
  c->profile = location ? profile : NULL;
  if (!c->id || (location && !c->location) || chart_status_init(d, &c->st) != CASE_OK) {
    case_destroy(c);
    return nomem(e);
  }
  *out = c;
  return CASE_OK;
}

int chart_case_create(case_engine *e, const case_def *d, const char *id, const char *location,
                      const json_t *given, const char *parent, const char *invokeid, int64_t at,
                      case_instance **out) {
  return chart_case_create_pinned(e, d, id, location, NULL, given, parent, invokeid, at, out);
}

int chart_case_create_pinned(case_engine *e, const case_def *d, const char *id,
                             const char *location, const cs_profile *profile,
                             const json_t *given, const char *parent, const char *invokeid,
                             int64_t at, case_instance **out) {
  *out = NULL;
  case_instance *c;
  int rc = new_case(e, d, id, location, profile, &c);
  if (rc == CASE_OK && parent) {
    c->parent = xstrdup(parent);
    c->invokeid = xstrdup(invokeid ? invokeid : "");
    if (!c->parent || !c->invokeid) rc = nomem(e);
  }
  if (rc == CASE_OK) rc = initial_data(e, d, given, c->st.data, parent != NULL);
  if (rc == CASE_OK) {
    c->st.data_size = data_json_size(c->st.data, d);
    long long lim = e->limits[CASE_LIMIT_DATA];
    if (lim > 0 && c->st.data_size > lim)
      rc = eng_err(e, CASE_LIMIT, "case '%s': its initial data takes %lld bytes as JSON, more "
                   "than the limit of %lld (CASE_LIMIT_DATA)", id, (long long)c->st.data_size,
                   lim);
  }
  if (rc == CASE_OK) {
    c->given = given;
    rc = chart_macrostep(c, NULL, NULL, NULL, NULL, at, 0);
    c->given = NULL;
  }
  if (rc != CASE_OK) {
    if (c) case_destroy(c);
    return rc;
  }
  link_case(e, c);
  *out = c;
  return CASE_OK;
}

/* Delivers what the call's macrosteps mailed to other cases (in memory; a
 * store delivers its own, one case per transaction). */
static void deliver_mail(case_engine *e) {
  if (e->mail && !e->manual_mail) eng_deliver(e);
}

/* Drops the mail added since it had `n` messages (a call that is undone). */
static void mail_truncate(case_engine *e, size_t n) {
  while (json_array_size(e->mail) > n) json_array_remove(e->mail, json_array_size(e->mail) - 1);
  if (e->mail && json_array_size(e->mail) == 0) {
    json_decref(e->mail);
    e->mail = NULL;
  }
}

int case_instance_create(case_engine *e, const case_def *d, const char *id, const char *location,
                         const char *data_json, int64_t at, case_instance **out) {
  return eng_instance_create(e, d, id, location, NULL, data_json, at, out);
}

int eng_instance_create(case_engine *e, const case_def *d, const char *id, const char *location,
                        const cs_profile *profile, const char *data_json, int64_t at,
                        case_instance **out) {
  if (out) *out = NULL;
  if (!e) return CASE_MISUSE;
  if (!d || !id || !out) return eng_err(e, CASE_MISUSE, "case_instance_create: NULL argument");
  if (d->engine != e) return eng_err(e, CASE_MISUSE, "the definition belongs to another engine");
  char why[160];
  if (case_id_check(id, why, sizeof why) != CASE_OK) return eng_err(e, CASE_INVALID, "%s", why);
  json_t *given = NULL;
  int rc = parse_json(e, data_json, "initial data", &given);
  if (rc != CASE_OK) return rc;
  case_instance *c;
  rc = chart_case_create_pinned(e, d, id, location, profile, given, NULL, NULL, at, &c);
  json_decref(given);
  if (rc != CASE_OK) return rc;
  deliver_mail(e);
  *out = c;
  return eng_ok(e);
}

void case_instance_free(case_instance *c) {
  if (!c) return;
  if (c->cached_by) store_cache_drop(c);
  unlink_case(c);
  case_destroy(c);
}

case_instance *case_instance_find(case_engine *e, const char *id) {
  if (!e || !id) return NULL;
  if (e->buckets) {
    for (case_instance *c = e->buckets[hash_id(id) & (e->nbuckets - 1)]; c; c = c->hnext)
      if (strcmp(c->id, id) == 0) return c;
    return NULL;
  }
  for (case_instance *c = e->cases; c; c = c->next)
    if (strcmp(c->id, id) == 0) return c;
  return NULL;
}

const char *case_instance_id(const case_instance *c) { return c ? c->id : NULL; }
const case_def *case_instance_def(const case_instance *c) { return c ? c->def : NULL; }
const char *case_instance_location(const case_instance *c) { return c ? c->location : NULL; }
int case_instance_done(const case_instance *c) { return c ? c->st.done : 0; }
int case_instance_profile_version(const case_instance *c) { return c ? c->profile_version : 0; }
int64_t case_instance_revision(const case_instance *c) { return c ? c->st.revision : 0; }
const char *case_instance_invokeid(const case_instance *c) { return c ? c->invokeid : NULL; }
case_instance *case_instance_parent(const case_instance *c) {
  return c && c->parent ? case_instance_find(c->engine, c->parent) : NULL;
}

int case_instance_fire(case_instance *c, const char *event, const char *payload_json,
                       const char *actor, const char *role, int64_t at) {
  if (!c) return CASE_MISUSE;
  case_engine *e = c->engine;
  if (!event) return eng_err(e, CASE_MISUSE, "case_instance_fire: event is NULL");
  const char *why = event_name_problem(event);
  if (why) return eng_err(e, CASE_INVALID, "case '%s': cannot fire '%s': %s", c->id, event, why);
  if (at < c->st.last_time) {
    char a[11], b[11];
    cal_format_date(cal_local_day(at), a);
    cal_format_date(cal_local_day(c->st.last_time), b);
    return eng_err(e, CASE_INVALID,
                   "case '%s': event '%s' at %s (%lld) is earlier than the case's last event at "
                   "%s (%lld): events are processed in time order",
                   c->id, event, a, (long long)at, b, (long long)c->st.last_time);
  }
  long long lim = e->limits[CASE_LIMIT_PAYLOAD];
  size_t plen = payload_json ? strlen(payload_json) : 0;
  if (lim > 0 && plen > (unsigned long long)lim)
    return eng_err(e, CASE_LIMIT, "case '%s': the payload of '%s' takes %zu bytes, more than "
                   "the limit of %lld (CASE_LIMIT_PAYLOAD)", c->id, event, plen, lim);
  json_t *payload = NULL;
  int rc = parse_json(e, payload_json, "the event payload", &payload);
  if (rc != CASE_OK) return rc;
  /* Terms that ran out before `at` happened first: fire them in due order.
   * If they or the event fail, the case is left as it was before the call
   * (and their notifications are dropped). */
  if (chart_timer_next(c, at) < 0) {
    rc = chart_macrostep(c, event, payload, actor, role, at, 0);
    json_decref(payload);
    if (rc == CASE_OK && e->mail) {
      deliver_mail(e);
      eng_ok(e);
    }
    return rc;
  }
  size_t mark = json_array_size(e->mail);
  cs_status saved;
  if (chart_status_copy(c->def, &saved, &c->st) != CASE_OK) {
    json_decref(payload);
    return nomem(e);
  }
  held h;
  hold_start(e, &h);
  int n = 0, over = 0;
  rc = tick_all(c, at, "fire", &n, &over);
  if (rc == CASE_OK) rc = chart_macrostep(c, event, payload, actor, role, at, 0);
  hold_stop(e, &h);
  json_decref(payload);
  if (rc == CASE_OK && h.nomem) rc = nomem(e);
  if (rc != CASE_OK) {
    chart_status_free(&c->st);
    c->st = saved;
    hold_free(&h);
    mail_truncate(e, mark);
    return rc;
  }
  chart_status_free(&saved);
  hold_forward(&h, c);
  hold_free(&h);
  if (e->mail) {
    deliver_mail(e);
    eng_ok(e);
  }
  return CASE_OK;
}

/* The index of the timer due first (due time, then sequence), or -1. */
static int next_due(const cs_status *st, int64_t now) {
  int best = -1;
  for (int i = 0; i < st->ntimers; i++) {
    const cs_timer_inst *t = &st->timers[i];
    if (t->due > now || t->fired) continue;
    if (best < 0 || t->due_ms < st->timers[best].due_ms ||
        (t->due_ms == st->timers[best].due_ms && t->seq < st->timers[best].seq))
      best = i;
  }
  return best;
}

int chart_timer_next(const case_instance *c, int64_t now) {
  if (!c || c->st.done) return -1;
  return next_due(&c->st, now);
}

/* Fires the first due timer only (due time, then sequence): the store fires
 * timers one per transaction over all cases. */
int chart_tick_one(case_instance *c, int64_t now, int *fired) {
  *fired = 0;
  int i = chart_timer_next(c, now);
  if (i < 0) return CASE_OK;
  cs_timer_inst *ti = &c->st.timers[i];
  const cs_timer *tm = &c->def->timers[ti->timer];
  int timer = ti->timer;
  int64_t due = ti->due;
  int64_t seq = ti->seq;
  /* Mark the timer consumed in the committed status first; the macrostep
   * copies it, and a failure restores the mark below. */
  ti->fired = 1;
  int rc = CASE_OK;
  if (tm->kind == TIMER_SEND) {
    json_t *msg = json_incref(ti->send);
    const char *to = json_string_value(json_object_get(msg, "to"));
    if (to) {
      /* A delayed send to another case: mailed now (the case's own state
       * changes only by losing the timer). */
      json_t *m = json_copy(msg);
      if (m) {
        json_object_set_new(m, "kind", json_string("event"));
        json_object_set_new(m, "from", json_string(c->id));
        json_object_set_new(m, "time", json_integer((json_int_t)due));
      }
      if (!m || (!c->engine->mail && !(c->engine->mail = json_array())) ||
          json_array_append_new(c->engine->mail, m) != 0)
        rc = nomem(c->engine);
      else
        c->st.revision++;
    } else {
      json_t *meta = json_pack("{s:s, s:O?, s:O?, s:O?}", "type", "external", "sendid",
                               json_object_get(msg, "sendid"), "origin",
                               json_object_get(msg, "origin"), "origintype",
                               json_object_get(msg, "origintype"));
      rc = meta ? chart_macrostep_ex(c, json_string_value(json_object_get(msg, "event")),
                                     json_object_get(msg, "data"), meta, NULL, NULL, due, 1)
                : nomem(c->engine);
      json_decref(meta);
    }
    json_decref(msg);
  } else if (tm->event) {
    rc = chart_macrostep(c, tm->event, NULL, NULL, NULL, due, 1);
  } else {
    c->st.revision++; /* a deadline without event: it now shows as overdue */
  }
  if (rc != CASE_OK) {
    for (int k = 0; k < c->st.ntimers; k++)
      if (c->st.timers[k].seq == seq) c->st.timers[k].fired = 0;
    return rc;
  }
  if (c->engine->probe) probe_expired(c->engine->probe, c, timer);
  /* An `after` timer or a send is used up; a deadline stays listed (overdue)
   * until its state is left. */
  if (tm->kind == TIMER_AFTER || tm->kind == TIMER_SEND) {
    for (int k = 0; k < c->st.ntimers; k++) {
      if (c->st.timers[k].seq != seq) continue;
      free(c->st.timers[k].id);
      json_decref(c->st.timers[k].send);
      memmove(&c->st.timers[k], &c->st.timers[k + 1],
              (size_t)(c->st.ntimers - k - 1) * sizeof c->st.timers[0]);
      c->st.ntimers--;
      break;
    }
  }
  *fired = 1;
  return CASE_OK;
}

/* The CASE_LIMIT error of a case whose timers keep running out; `i` is the
 * next due timer. */
static int expiry_limit(case_instance *c, int i, const char *during) {
  const cs_timer *tm = &c->def->timers[c->st.timers[i].timer];
  long long limit = c->engine->limits[CASE_LIMIT_EXPIRIES];
  return eng_err_at(c->engine, CASE_LIMIT, c->def->file, tm->pos,
                    "case '%s': more than %lld timer expiries in one %s ('%s' of state '%s' "
                    "keeps running out: a delay of 0 that re-enters its state?); nothing of "
                    "this %s was kept for the case (raise CASE_LIMIT_EXPIRIES if the timers "
                    "are meant)",
                    c->id, limit, during, tm->name, c->def->states[tm->state].id, during);
}

/* Fires every due timer, at most CASE_LIMIT_EXPIRIES of them, counting them
 * in *fired.  Past the limit sets *over and returns CASE_LIMIT having fired
 * nothing more (the caller rolls the case back). */
static int tick_all(case_instance *c, int64_t now, const char *during, int *fired, int *over) {
  long long limit = c->engine->limits[CASE_LIMIT_EXPIRIES];
  *fired = 0;
  *over = 0;
  for (;;) {
    int i = chart_timer_next(c, now);
    if (i < 0) break;
    if (*fired >= limit) {
      *over = 1;
      return expiry_limit(c, i, during);
    }
    int one = 0;
    int rc = chart_tick_one(c, now, &one);
    if (rc != CASE_OK) return rc;
    if (!one) break;
    ++*fired;
  }
  return CASE_OK;
}

int case_instance_tick(case_instance *c, int64_t now, int *fired) {
  if (fired) *fired = 0;
  if (!c) return CASE_MISUSE;
  case_engine *e = c->engine;
  if (chart_timer_next(c, now) < 0) return eng_ok(e);
  cs_status saved;
  if (chart_status_copy(c->def, &saved, &c->st) != CASE_OK) return nomem(e);
  size_t mark = json_array_size(e->mail);
  held h;
  hold_start(e, &h);
  int n = 0, over = 0;
  int rc = tick_all(c, now, "tick", &n, &over);
  hold_stop(e, &h);
  if (over || h.nomem) {
    /* Past the expiry limit: nothing of this tick is kept. */
    chart_status_free(&c->st);
    c->st = saved;
    hold_free(&h);
    mail_truncate(e, mark);
    return over ? rc : nomem(e);
  }
  chart_status_free(&saved);
  hold_forward(&h, c); /* the macrosteps that completed stay, so do their notifications */
  hold_free(&h);
  if (fired) *fired = n;
  deliver_mail(e);
  return rc == CASE_OK ? eng_ok(e) : rc;
}

int chart_shadow_at(case_instance *c, int64_t at, case_instance *shadow) {
  case_engine *e = c->engine;
  *shadow = *c; /* the same case on a throw-away status */
  if (chart_status_copy(c->def, &shadow->st, &c->st) != CASE_OK) {
    memset(&shadow->st, 0, sizeof shadow->st);
    return nomem(e);
  }
  if (at < c->st.last_time || chart_timer_next(c, at) < 0) return CASE_OK;
  case_notify_fn fn = e->notify;
  void *ud = e->notify_ud;
  e->notify = NULL; /* nothing of this is told */
  e->notify_ud = NULL;
  int n = 0, over = 0;
  int rc = tick_all(shadow, at, "fire", &n, &over);
  e->notify = fn;
  e->notify_ud = ud;
  if (rc != CASE_OK) chart_status_free(&shadow->st);
  return rc;
}

int chart_expiries(case_instance *c, int64_t now, long long cap, long long *count) {
  *count = 0;
  if (chart_timer_next(c, now) < 0) return CASE_OK;
  case_engine *e = c->engine;
  case_instance shadow = *c; /* the same case on a throw-away status */
  if (chart_status_copy(c->def, &shadow.st, &c->st) != CASE_OK) return nomem(e);
  case_notify_fn fn = e->notify;
  void *ud = e->notify_ud;
  case_log_fn log = e->log;
  size_t mark = json_array_size(e->mail);
  e->notify = NULL; /* a dry run delivers nothing */
  e->notify_ud = NULL;
  e->log = NULL;
  long long n = 0;
  while (n <= cap) {
    int one = 0;
    if (chart_tick_one(&shadow, now, &one) != CASE_OK || !one) break;
    n++;
  }
  e->notify = fn;
  e->notify_ud = ud;
  e->log = log;
  mail_truncate(e, mark);
  chart_status_free(&shadow.st);
  *count = n;
  return eng_ok(e);
}

static json_t *config_json(const case_instance *c) {
  json_t *a = json_array();
  for (int s = 1; a && s < c->def->nstates; s++)
    if ((c->st.config[s >> 6] >> (s & 63)) & 1u) json_array_append_new(a, json_string(c->def->states[s].id));
  return a;
}

int case_instance_configuration(const case_instance *c, char **json) {
  if (!c) return CASE_MISUSE;
  if (!json) return eng_err(c->engine, CASE_MISUSE, "json is NULL");
  return json_out(c->engine, config_json(c), json);
}

int case_instance_in(const case_instance *c, const char *state_id) {
  if (!c || !state_id) return 0;
  int s = def_state_find(c->def, state_id);
  return s > 0 && ((c->st.config[s >> 6] >> (s & 63)) & 1u);
}

int case_instance_data(const case_instance *c, char **json) {
  if (!c) return CASE_MISUSE;
  if (!json) return eng_err(c->engine, CASE_MISUSE, "json is NULL");
  return json_out(c->engine, data_json(c->st.data, c->def), json);
}

int case_instance_available(case_instance *c, const char *role, int64_t at, char **json) {
  if (!c) return CASE_MISUSE;
  if (!json) return eng_err(c->engine, CASE_MISUSE, "json is NULL");
  *json = NULL;
  json_t *v;
  int rc = chart_available(c, role, NULL, at, &v);
  if (rc != CASE_OK) return rc;
  return json_out(c->engine, v, json);
}

int case_instance_available_v2(case_instance *c, const char *role, const char *actor, int64_t at,
                               char **json) {
  if (json) *json = NULL;
  if (!c) return CASE_MISUSE;
  if (!json) return eng_err(c->engine, CASE_MISUSE, "json is NULL");
  cs_ask ask = {actor, NULL, 1};
  json_t *v;
  int rc = chart_available(c, role, &ask, at, &v);
  if (rc != CASE_OK) return rc;
  return json_out(c->engine, v, json);
}

int case_instance_explain_v2(case_instance *c, const char *event, const char *role,
                             const char *actor, const char *payload_json, int64_t at,
                             char **json) {
  if (json) *json = NULL;
  if (!c) return CASE_MISUSE;
  if (!json || !event)
    return eng_err(c->engine, CASE_MISUSE, "case_instance_explain_v2: NULL argument");
  json_t *payload = NULL;
  int rc = parse_json(c->engine, payload_json, "the event payload", &payload);
  if (rc != CASE_OK) return rc;
  cs_ask ask = {actor, payload, 1};
  json_t *v;
  rc = chart_explain(c, event, role, &ask, at, &v);
  json_decref(payload);
  if (rc != CASE_OK) return rc;
  return json_out(c->engine, v, json);
}

int case_instance_explain(case_instance *c, const char *event, const char *role, int64_t at,
                          char **json) {
  if (!c) return CASE_MISUSE;
  if (!json || !event) return eng_err(c->engine, CASE_MISUSE, "case_instance_explain: NULL argument");
  *json = NULL;
  json_t *v;
  int rc = chart_explain(c, event, role, NULL, at, &v);
  if (rc != CASE_OK) return rc;
  return json_out(c->engine, v, json);
}

const char *chart_timer_kind(const cs_timer *tm) {
  return tm->kind == TIMER_AFTER ? "after" : tm->kind == TIMER_SEND ? "send" : "deadline";
}

const char *chart_timer_name(const case_def *d, const cs_timer_inst *ti) {
  const cs_timer *tm = &d->timers[ti->timer];
  if (tm->kind != TIMER_SEND) return tm->name;
  const char *ev = json_string_value(json_object_get(ti->send, "event"));
  return ev ? ev : tm->name;
}

static json_t *timer_json(const case_instance *c, const cs_timer_inst *ti) {
  const cs_timer *tm = &c->def->timers[ti->timer];
  if (tm->kind == TIMER_SEND) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:O, s:I, s:I, s:I}", "id", ti->id, "kind", "send",
                          "name", chart_timer_name(c->def, ti),
                          "event", json_object_get(ti->send, "event"), "started",
                          (json_int_t)ti->started, "due", (json_int_t)ti->due, "due_ms",
                          (json_int_t)ti->due_ms);
    const json_t *v;
    if (o && (v = json_object_get(ti->send, "sendid"))) json_object_set(o, "sendid", (json_t *)v);
    if (o && (v = json_object_get(ti->send, "to"))) json_object_set(o, "to", (json_t *)v);
    return o;
  }
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "id", ti->id, "kind",
                        chart_timer_kind(tm), "name", tm->name, "state",
                        c->def->states[tm->state].id, "started", (json_int_t)ti->started, "due",
                        (json_int_t)ti->due, "clock", cal_clock_name(tm->dur.clock));
  if (!o) return NULL;
  if (ti->last_day != CAL_NO_DAY) {
    char day[11];
    cal_format_date(ti->last_day, day);
    json_object_set_new(o, "last_day", json_string(day));
  }
  if (tm->source) json_object_set_new(o, "source", json_string(tm->source));
  if (tm->event) json_object_set_new(o, "event", json_string(tm->event));
  if (tm->kind == TIMER_DEADLINE) json_object_set_new(o, "overdue", json_boolean(ti->fired));
  return o;
}

static int cmp_timer(const void *a, const void *b) {
  const cs_timer_inst *x = *(const cs_timer_inst *const *)a, *y = *(const cs_timer_inst *const *)b;
  if (x->due_ms != y->due_ms) return x->due_ms < y->due_ms ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static json_t *timers_json(const case_instance *c) {
  const cs_status *st = &c->st;
  json_t *a = json_array();
  if (!a || st->ntimers == 0) return a;
  const cs_timer_inst **v = malloc((size_t)st->ntimers * sizeof *v);
  if (!v) {
    json_decref(a);
    return NULL;
  }
  for (int i = 0; i < st->ntimers; i++) v[i] = &st->timers[i];
  qsort(v, (size_t)st->ntimers, sizeof *v, cmp_timer);
  for (int i = 0; i < st->ntimers; i++) {
    json_t *o = timer_json(c, v[i]);
    if (!o || json_array_append_new(a, o) != 0) {
      free(v);
      json_decref(a);
      return NULL;
    }
  }
  free(v);
  return a;
}

int case_instance_timers(const case_instance *c, char **json) {
  if (!c) return CASE_MISUSE;
  if (!json) return eng_err(c->engine, CASE_MISUSE, "json is NULL");
  return json_out(c->engine, timers_json(c), json);
}

/* ------------------------------------------------------------------ */
/* Snapshots                                                           */
/* ------------------------------------------------------------------ */

/*
 * The snapshot as a JSON object.  `whole` 0 leaves out what a store keeps in
 * columns of its own (format, workflow, version, hash, case, location,
 * revision, done, configuration, data): the journal's `state` column
 * (docs/store.md), which eng_instance_restore_parts() completes again.
 */
static json_t *snapshot_json(const case_instance *c, int whole) {
  const case_def *d = c->def;
  json_t *hist = json_object();
  for (int s = 1; hist && s < d->nstates; s++) {
    if (d->history_slot[s] < 0) continue;
    const uint64_t *hv = c->st.history + (size_t)d->history_slot[s] * (size_t)d->words;
    json_t *a = json_array();
    for (int x = 1; a && x < d->nstates; x++)
      if ((hv[x >> 6] >> (x & 63)) & 1u) json_array_append_new(a, json_string(d->states[x].id));
    if (a && json_array_size(a) > 0) json_object_set_new(hist, d->states[s].id, a);
    else json_decref(a);
  }
  json_t *timers = json_array();
  for (int i = 0; timers && i < c->st.ntimers; i++) {
    const cs_timer_inst *ti = &c->st.timers[i];
    const cs_timer *tm = &d->timers[ti->timer];
    if (tm->kind == TIMER_SEND) {
      json_array_append_new(timers, json_pack("{s:s, s:s, s:I, s:I, s:I, s:O}", "id", ti->id,
                                              "kind", "send", "started", (json_int_t)ti->started,
                                              "due", (json_int_t)ti->due, "due_ms",
                                              (json_int_t)ti->due_ms, "message", ti->send));
      continue;
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:b}", "id", ti->id, "kind",
                          chart_timer_kind(tm), "name", tm->name,
                          "state", d->states[tm->state].id, "started", (json_int_t)ti->started,
                          "due", (json_int_t)ti->due, "fired", ti->fired);
    if (o && ti->last_day != CAL_NO_DAY) {
      char day[11];
      cal_format_date(ti->last_day, day);
      json_object_set_new(o, "last_day", json_string(day));
    }
    json_array_append_new(timers, o);
  }
  json_t *snap;
  if (whole)
    snap = json_pack("{s:i, s:s, s:i, s:s, s:s, s:s?, s:I, s:b, s:o, s:o, s:o, s:[], s:o, s:I}",
                     "format", SNAPSHOT_FORMAT, "workflow", d->id, "version", d->version, "hash",
                     d->hash, "case", c->id, "location", c->location, "revision",
                     (json_int_t)c->st.revision, "done", c->st.done, "configuration",
                     config_json(c), "history", hist, "data", data_json(c->st.data, d),
                     "internal_queue", "timers", timers, "timer_seq", (json_int_t)c->st.timer_seq);
  else
    snap = json_pack("{s:o, s:[], s:o, s:I}", "history", hist, "internal_queue", "timers",
                     timers, "timer_seq", (json_int_t)c->st.timer_seq);
  if (snap) json_object_set_new(snap, "time", json_integer((json_int_t)c->st.last_time));
  /* Only what a case uses is written: snapshots of other cases stay as they were. */
  if (snap && c->parent) {
    json_object_set_new(snap, "parent", json_string(c->parent));
    json_object_set_new(snap, "invokeid", json_string(c->invokeid));
  }
  if (snap && c->st.sx && c->st.sx->invokes) json_object_set(snap, "invokes", c->st.sx->invokes);
  if (snap && c->st.cancelled) json_object_set_new(snap, "cancelled", json_true());
  if (snap && c->st.sx && c->st.sx->bound) {
    json_t *b = json_array();
    for (int s = 1; b && s < d->nstates; s++)
      if ((c->st.sx->bound[s >> 6] >> (s & 63)) & 1u)
        json_array_append_new(b, json_string(d->states[s].id));
    json_object_set_new(snap, "bound", b);
  }
  return snap;
}

int case_instance_snapshot(const case_instance *c, char **json) {
  if (!c) return CASE_MISUSE;
  case_engine *e = c->engine;
  if (!json) return eng_err(e, CASE_MISUSE, "json is NULL");
  return json_out(e, snapshot_json(c, 1), json);
}

int eng_instance_state(const case_instance *c, char **json) {
  *json = NULL;
  json_t *v = snapshot_json(c, 0);
  if (!v) return nomem(c->engine);
  *json = json_dumps(v, JSON_COMPACT);
  json_decref(v);
  return *json ? CASE_OK : nomem(c->engine);
}

static int snap_err(case_engine *e, int rc, const char *fmt, const char *arg) {
  return eng_err(e, rc, fmt, arg);
}

/* A configuration is legal when it contains every ancestor of its states, one
 * child of each active compound state and every child of each active
 * parallel state, and no history pseudo-state. */
static int legal_configuration(const case_def *d, const uint64_t *cfg, const char **why) {
  int any = 0;
  for (int s = 1; s < d->nstates; s++) {
    int on = (int)((cfg[s >> 6] >> (s & 63)) & 1u);
    if (!on) continue;
    any = 1;
    const cs_state *st = &d->states[s];
    *why = st->id;
    if (st->kind == CS_HISTORY_SHALLOW || st->kind == CS_HISTORY_DEEP) return 0;
    if (st->parent > 0 && !((cfg[st->parent >> 6] >> (st->parent & 63)) & 1u)) return 0;
    int active = 0, regions = 0;
    for (int k = 0; k < st->nchildren; k++) {
      int ch = st->children[k];
      if (d->states[ch].kind == CS_HISTORY_SHALLOW || d->states[ch].kind == CS_HISTORY_DEEP) continue;
      regions++;
      active += (int)((cfg[ch >> 6] >> (ch & 63)) & 1u);
    }
    if (st->kind == CS_COMPOUND && active != 1) return 0;
    if (st->kind == CS_PARALLEL && active != regions) return 0;
  }
  /* exactly one top-level state */
  int top = 0;
  for (int k = 0; k < d->states[0].nchildren; k++) {
    int ch = d->states[0].children[k];
    top += (int)((cfg[ch >> 6] >> (ch & 63)) & 1u);
  }
  *why = "(top level)";
  return any && top == 1;
}

static int restore_into(case_engine *e, const case_def *d, json_t *snap, case_instance *c) {
  cs_status *st = &c->st;
  json_t *cfg = json_object_get(snap, "configuration");
  if (!json_is_array(cfg)) return eng_err(e, CASE_INVALID, "snapshot: no configuration array");
  size_t i;
  json_t *v;
  json_array_foreach(cfg, i, v) {
    int s = def_state_find(d, json_string_value(v));
    if (s < 0)
      return snap_err(e, CASE_NOTFOUND,
                      "snapshot: state '%s' no longer exists in the definition",
                      json_is_string(v) ? json_string_value(v) : "?");
    st->config[s >> 6] |= (uint64_t)1 << (s & 63);
  }
  const char *why = "";
  if (!legal_configuration(d, st->config, &why))
    return snap_err(e, CASE_CORRUPT, "snapshot: not a legal configuration (at state '%s')", why);
  json_t *hist = json_object_get(snap, "history");
  const char *k;
  json_object_foreach(hist, k, v) {
    int h = def_state_find(d, k);
    if (h < 0 || d->history_slot[h] < 0)
      return snap_err(e, CASE_NOTFOUND, "snapshot: history state '%s' no longer exists", k);
    uint64_t *hv = st->history + (size_t)d->history_slot[h] * (size_t)d->words;
    size_t j;
    json_t *x;
    json_array_foreach(v, j, x) {
      int s = def_state_find(d, json_string_value(x));
      if (s < 0)
        return snap_err(e, CASE_NOTFOUND, "snapshot: state '%s' (a history value) no longer exists",
                        json_is_string(x) ? json_string_value(x) : "?");
      int parent = d->states[h].parent;
      int ok = d->states[h].kind == CS_HISTORY_DEEP
                   ? def_is_descendant(d, s, parent) &&
                         (d->states[s].kind == CS_ATOMIC || d->states[s].kind == CS_FINAL)
                   : d->states[s].parent == parent;
      if (!ok)
        return eng_err(e, CASE_CORRUPT, "snapshot: history '%s' holds a state outside its "
                       "parent (or not a %s)", k,
                       d->states[h].kind == CS_HISTORY_DEEP ? "leaf" : "child");
      hv[s >> 6] |= (uint64_t)1 << (s & 63);
    }
  }
  /* A case between macrosteps has no pending internal events. */
  if (json_array_size(json_object_get(snap, "internal_queue")) > 0)
    return eng_err(e, CASE_CORRUPT, "snapshot: pending internal events (a case between "
                   "macrosteps has none)");
  json_t *data = json_object_get(snap, "data");
  if (!json_is_object(data)) return eng_err(e, CASE_INVALID, "snapshot: no data object");
  json_object_foreach(data, k, v) {
    int f = def_field_find(d, k);
    if (f < 0 && d->globals) continue; /* a variable a script created */
    if (f < 0) return snap_err(e, CASE_NOTFOUND, "snapshot: data field '%s' no longer exists", k);
    if (!type_accepts(d->fields[f].type, v))
      return snap_err(e, CASE_CORRUPT, "snapshot: data field '%s' has the wrong type", k);
  }
  /* Fields added to the definition since the snapshot get their defaults. */
  cs_data *slots;
  if (data_from_object(d, data, &slots) != 0) return nomem(e);
  data_release(st->data);
  st->data = slots;
  json_t *timers = json_object_get(snap, "timers");
  size_t nt = json_array_size(timers);
  if (nt > 0) {
    st->timers = calloc(nt, sizeof *st->timers);
    if (!st->timers) return nomem(e);
    st->cap_timers = (int)nt;
  }
  json_array_foreach(timers, i, v) {
    const char *id = json_string_value(json_object_get(v, "id"));
    const char *kind = json_string_value(json_object_get(v, "kind"));
    if (kind && strcmp(kind, "send") == 0) {
      json_t *msg = json_object_get(v, "message");
      json_t *due = json_object_get(v, "due"), *due_ms = json_object_get(v, "due_ms");
      if (!id || id[0] != 't' || !json_is_object(msg) ||
          !json_is_string(json_object_get(msg, "event")) || !json_is_integer(due) ||
          !json_is_integer(due_ms))
        return eng_err(e, CASE_INVALID, "snapshot: send %zu is incomplete", i);
      if (d->send_timer < 0)
        return eng_err(e, CASE_CORRUPT, "snapshot: a pending send, but workflow '%s' sends "
                       "nothing", d->id);
      for (int k2 = 0; k2 < st->ntimers; k2++)
        if (strcmp(st->timers[k2].id, id) == 0)
          return snap_err(e, CASE_CORRUPT, "snapshot: timer id '%s' appears twice", id);
      cs_timer_inst *x = &st->timers[st->ntimers];
      memset(x, 0, sizeof *x);
      x->id = xstrdup(id);
      if (!x->id) return nomem(e);
      st->ntimers++;
      x->seq = strtoll(id + 1, NULL, 10);
      x->timer = d->send_timer;
      x->due = json_integer_value(due);
      x->due_ms = json_integer_value(due_ms);
      json_t *started = json_object_get(v, "started");
      x->started = json_is_integer(started) ? json_integer_value(started) : x->due;
      x->last_day = CAL_NO_DAY;
      x->send = json_deep_copy(msg);
      if (!x->send) return nomem(e);
      continue;
    }
    const char *name = json_string_value(json_object_get(v, "name"));
    const char *state = json_string_value(json_object_get(v, "state"));
    json_t *due = json_object_get(v, "due"), *started = json_object_get(v, "started");
    if (!id || !name || !state || !json_is_integer(due) || id[0] != 't')
      return eng_err(e, CASE_INVALID, "snapshot: timer %zu is incomplete", i);
    int s = def_state_find(d, state);
    if (s < 0) return snap_err(e, CASE_NOTFOUND, "snapshot: state '%s' of a timer no longer exists", state);
    int ti = -1;
    for (int t = 0; t < d->ntimers; t++)
      if (d->timers[t].state == s && strcmp(d->timers[t].name, name) == 0) ti = t;
    if (ti < 0) return snap_err(e, CASE_NOTFOUND, "snapshot: timer '%s' no longer exists", name);
    if (!((st->config[s >> 6] >> (s & 63)) & 1u))
      return snap_err(e, CASE_CORRUPT, "snapshot: timer '%s' runs in a state that is not "
                      "active", name);
    for (int k2 = 0; k2 < st->ntimers; k2++)
      if (strcmp(st->timers[k2].id, id) == 0)
        return snap_err(e, CASE_CORRUPT, "snapshot: timer id '%s' appears twice", id);
    cs_timer_inst *x = &st->timers[st->ntimers];
    x->id = xstrdup(id);
    if (!x->id) return nomem(e);
    st->ntimers++;
    x->seq = strtoll(id + 1, NULL, 10);
    x->timer = ti;
    x->due = json_integer_value(due);
    x->started = json_is_integer(started) ? json_integer_value(started) : x->due;
    x->fired = json_is_true(json_object_get(v, "fired"));
    x->due_ms = x->due * 1000;
    x->last_day = CAL_NO_DAY;
    const char *ld = json_string_value(json_object_get(v, "last_day"));
    cal_day day;
    if (ld && cal_parse_date(ld, &day) == 0) x->last_day = day;
  }
  st->timer_seq = json_integer_value(json_object_get(snap, "timer_seq"));
  for (int k2 = 0; k2 < st->ntimers; k2++)
    if (st->timers[k2].seq <= 0 || st->timers[k2].seq > st->timer_seq)
      return snap_err(e, CASE_CORRUPT, "snapshot: timer id '%s' is not below timer_seq",
                      st->timers[k2].id);
  st->last_time = json_integer_value(json_object_get(snap, "time")); /* 0 when absent */
  st->revision = json_integer_value(json_object_get(snap, "revision"));
  if (st->revision < 0 || st->revision >= CASE_COUNTER_MAX || st->timer_seq < 0 ||
      st->timer_seq >= CASE_COUNTER_MAX)
    return eng_err(e, CASE_CORRUPT, "snapshot: revision %lld or timer_seq %lld is out of the "
                   "range a run reaches (0 to 2^62)", (long long)st->revision,
                   (long long)st->timer_seq);
  st->done = json_is_true(json_object_get(snap, "done"));
  st->cancelled = json_is_true(json_object_get(snap, "cancelled"));
  const char *parent = json_string_value(json_object_get(snap, "parent"));
  if (parent) {
    c->parent = xstrdup(parent);
    c->invokeid = xstrdup(json_string_value(json_object_get(snap, "invokeid")) ?
                              json_string_value(json_object_get(snap, "invokeid")) : "");
    if (!c->parent || !c->invokeid) return nomem(e);
  }
  json_t *invs = json_object_get(snap, "invokes");
  if (json_array_size(invs) > 0) {
    json_array_foreach(invs, i, v) {
      json_int_t k2 = json_integer_value(json_object_get(v, "invoke"));
      json_int_t s2 = json_integer_value(json_object_get(v, "state"));
      if (!json_is_string(json_object_get(v, "id")) || !json_is_string(json_object_get(v, "case")) ||
          k2 < 0 || k2 >= d->ninvokes || s2 <= 0 || s2 >= d->nstates ||
          d->invokes[k2].state != (int)s2)
        return eng_err(e, CASE_CORRUPT, "snapshot: running invoke %zu does not match the "
                       "definition", i);
    }
    if (!st->sx) return eng_err(e, CASE_CORRUPT, "snapshot: running invokes, but workflow '%s' "
                                "invokes nothing", d->id);
    st->sx->invokes = json_deep_copy(invs);
    if (!st->sx->invokes) return nomem(e);
  }
  json_t *bound = json_object_get(snap, "bound");
  if (st->sx && st->sx->bound) {
    json_array_foreach(bound, i, v) {
      int s2 = def_state_find(d, json_string_value(v));
      if (s2 < 0) return snap_err(e, CASE_NOTFOUND, "snapshot: state '%s' no longer exists",
                                  json_is_string(v) ? json_string_value(v) : "?");
      st->sx->bound[s2 >> 6] |= (uint64_t)1 << (s2 & 63);
    }
  }
  int final_active = 0;
  for (int k2 = 0; k2 < d->states[0].nchildren; k2++) {
    int ch = d->states[0].children[k2];
    if (d->states[ch].kind == CS_FINAL && ((st->config[ch >> 6] >> (ch & 63)) & 1u))
      final_active = 1;
  }
  if (final_active != st->done && !st->cancelled)
    return eng_err(e, CASE_CORRUPT, "snapshot: 'done' is %s but the configuration %s a final "
                   "top-level state", st->done ? "true" : "false",
                   final_active ? "has" : "has no");
  return CASE_OK;
}

int case_instance_restore(case_engine *e, const char *json, case_instance **out) {
  return eng_instance_restore(e, json, NULL, out);
}

/* Restores from the snapshot object `snap` (its reference is taken). */
static int restore_json(case_engine *e, json_t *snap, const cs_profile *profile,
                        case_instance **out) {
  int rc;
  const char *wf = json_string_value(json_object_get(snap, "workflow"));
  const char *hash = json_string_value(json_object_get(snap, "hash"));
  const char *id = json_string_value(json_object_get(snap, "case"));
  const char *loc = json_string_value(json_object_get(snap, "location"));
  json_t *ver = json_object_get(snap, "version");
  if (!json_is_object(snap) || json_integer_value(json_object_get(snap, "format")) != SNAPSHOT_FORMAT ||
      !wf || !hash || !id || !json_is_integer(ver)) {
    json_decref(snap);
    return eng_err(e, CASE_INVALID, "not a libcase snapshot (format %d)", SNAPSHOT_FORMAT);
  }
  const case_def *d = case_def_find(e, wf, (int)json_integer_value(ver));
  if (!d || d->version != (int)json_integer_value(ver)) {
    rc = eng_err(e, CASE_NOTFOUND, "snapshot of case '%s': workflow '%s' version %d is not loaded",
                 id, wf, (int)json_integer_value(ver));
    json_decref(snap);
    return rc;
  }
  case_instance *c;
  rc = new_case(e, d, id, loc, profile, &c);
  if (rc == CASE_OK) {
    /* Names first, so a definition that lost a state says which one. */
    rc = restore_into(e, d, snap, c);
    if (rc == CASE_OK && strcmp(d->hash, hash) != 0)
      rc = eng_err(e, CASE_CORRUPT,
                   "snapshot of case '%s': workflow '%s' version %d has hash %.12s, the "
                   "snapshot was taken on %.12s",
                   id, wf, d->version, d->hash, hash);
    if (rc != CASE_OK) case_destroy(c);
  }
  json_decref(snap);
  if (rc != CASE_OK) return rc;
  link_case(e, c);
  *out = c;
  return eng_ok(e);
}

int eng_instance_restore(case_engine *e, const char *json, const cs_profile *profile,
                         case_instance **out) {
  if (out) *out = NULL;
  if (!e) return CASE_MISUSE;
  if (!json || !out) return eng_err(e, CASE_MISUSE, "case_instance_restore: NULL argument");
  json_t *snap;
  int rc = parse_json(e, json, "the snapshot", &snap);
  if (rc != CASE_OK) return rc;
  return restore_json(e, snap, profile, out);
}

int eng_instance_restore_parts(case_engine *e, const eng_parts *p, const cs_profile *profile,
                               case_instance **out) {
  *out = NULL;
  json_t *snap, *cfg, *data;
  int rc = parse_json(e, p->state, "the stored state", &snap);
  if (rc != CASE_OK) return rc;
  if (!json_is_object(snap)) {
    json_decref(snap);
    return eng_err(e, CASE_INVALID, "case '%s': the stored state is not a JSON object", p->id);
  }
  if ((rc = parse_json(e, p->configuration, "the stored configuration", &cfg)) != CASE_OK) {
    json_decref(snap);
    return rc;
  }
  if ((rc = parse_json(e, p->data, "the stored data", &data)) != CASE_OK) {
    json_decref(snap);
    json_decref(cfg);
    return rc;
  }
  int bad = json_object_set_new(snap, "format", json_integer(SNAPSHOT_FORMAT)) ||
            json_object_set_new(snap, "workflow", json_string(p->workflow)) ||
            json_object_set_new(snap, "version", json_integer(p->version)) ||
            json_object_set_new(snap, "hash", json_string(p->hash)) ||
            json_object_set_new(snap, "case", json_string(p->id)) ||
            json_object_set_new(snap, "location", p->location ? json_string(p->location)
                                                              : json_null()) ||
            json_object_set_new(snap, "revision", json_integer((json_int_t)p->revision)) ||
            json_object_set_new(snap, "done", json_boolean(p->done)) ||
            json_object_set_new(snap, "configuration", cfg) ||
            json_object_set_new(snap, "data", data);
  if (bad) {
    json_decref(snap);
    return nomem(e);
  }
  return restore_json(e, snap, profile, out);
}

/* ------------------------------------------------------------------ */
/* The native call context                                             */
/* ------------------------------------------------------------------ */

const char *case_call_event(const case_call *call) { return call ? call->event : NULL; }
int64_t case_call_time(const case_call *call) { return call ? call->time : 0; }
const char *case_call_role(const case_call *call) { return call ? call->role : NULL; }

static const char *hand_out(case_call *call, const json_t *v) {
  char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!text) return NULL;
  char **list = realloc(call->scratch, (size_t)(call->nscratch + 1) * sizeof *list);
  if (!list) {
    free(text);
    return NULL;
  }
  call->scratch = list;
  call->scratch[call->nscratch++] = text;
  return text;
}

const char *case_call_get(case_call *call, const char *field) {
  if (!call) return NULL;
  if (!field) {
    json_t *all = data_json(call->data, call->def);
    const char *text = all ? hand_out(call, all) : NULL;
    json_decref(all);
    return text;
  }
  const json_t *v = data_get(call->data, call->def, field);
  return v ? hand_out(call, v) : NULL;
}

const char *case_call_payload(case_call *call) {
  if (!call) return NULL;
  return hand_out(call, call->payload);
}

int case_call_set(case_call *call, const char *field, const char *json) {
  if (!call || !field || !json) return CASE_MISUSE;
  if (call->is_guard) return CASE_MISUSE;
  int f = def_field_find(call->def, field);
  if (f < 0) return CASE_NOTFOUND;
  json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
  if (!v) return CASE_INVALID;
  if (!type_accepts(call->def->fields[f].type, v)) {
    json_decref(v);
    return CASE_INVALID;
  }
  if (!call->data) {
    json_decref(v);
    return CASE_MISUSE;
  }
  return data_set_slot(call->data, f, v, call->data_delta) == 0 ? CASE_OK : CASE_NOMEM;
}

static int push(case_call *call, cs_plist *l, const char *name, const char *payload_json) {
  if (!call || !name || !*name) return CASE_MISUSE;
  if (call->is_guard) return CASE_MISUSE;
  json_t *p = NULL;
  if (payload_json) {
    long long lim = call->engine ? call->engine->limits[CASE_LIMIT_PAYLOAD] : 0;
    if (lim > 0 && strlen(payload_json) > (unsigned long long)lim) return CASE_LIMIT;
    p = json_loads(payload_json, JSON_DECODE_ANY, NULL);
    if (!p) return CASE_INVALID;
  }
  return plist_push(l, name, p);
}

int case_call_raise(case_call *call, const char *event, const char *payload_json) {
  if (call && event && event_name_problem(event)) return CASE_INVALID;
  return push(call, call ? call->raised : NULL, event, payload_json);
}

int case_call_emit(case_call *call, const char *name, const char *payload_json) {
  return push(call, call ? call->emitted : NULL, name, payload_json);
}

void case_call_error(case_call *call, const char *message) {
  if (!call) return;
  free(call->errmsg);
  call->errmsg = xstrdup(message ? message : "");
}
