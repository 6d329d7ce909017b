/*
 * report.c — the caseload report of a store at a reference date
 * (case_store_report): cases per track and state, closed, transferred,
 * appeals and their outcomes, lead times per track and lane, running terms
 * that run out soon or have run out, per agency that must act.
 *
 * Every figure is computed from the journal (case_store_follow: each case's
 * rows up to the reference time) and, for running terms, from the stored cases
 * (case_store_get, case_instance_timers).  Nothing here writes to the store.
 */
#include "internal.h"
#include "libcase/store.h"
#include "store_int.h" /* st_profile_version: replay on the pinned profile versions */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DAY_SECONDS 86400

typedef struct rcase {
  char *id;
  int64_t created;     /* time of the creation row */
  int64_t last_time;   /* time of the last row <= at */
  json_t *config;      /* configuration of the last row <= at (owned) */
  json_t *data;        /* data of the last row <= at (owned) */
  int lane;            /* lane_field was true in some row <= at */
  int appeal;          /* an appeal event was accepted <= at */
  char *outcome;       /* value of the first outcome event after the appeal, or NULL */
} rcase;

typedef struct ropts {
  const char *track_field, *lane_field, *appeal_event, *region;
  json_t *outcome_events;     /* object event -> outcome name */
  json_t *transferred_states; /* array of state ids */
  json_t *deadline_agencies;  /* object deadline -> agency */
  int horizon_days;
} ropts;

typedef struct rstate {
  case_engine *e;
  int64_t at;
  ropts o;
  rcase *cases;
  size_t n, cap;
  int failed;  /* out of memory */
} rstate;

static rcase *find_case(rstate *r, const char *id) {
  /* Rows of one case come in order, and cases are mostly created in order:
   * look at the newest cases first. */
  for (size_t i = r->n; i-- > 0;)
    if (strcmp(r->cases[i].id, id) == 0) return &r->cases[i];
  return NULL;
}

static int on_row(void *ud, int64_t seq, const char *row_json) {
  (void)seq;
  rstate *r = ud;
  json_t *row = json_loads(row_json, 0, NULL);
  if (!row) {
    r->failed = 1;
    return CASE_NOMEM;
  }
  const char *id = json_string_value(json_object_get(row, "case"));
  const char *event = json_string_value(json_object_get(row, "event"));
  int64_t t = json_integer_value(json_object_get(row, "time"));
  int64_t rev = json_integer_value(json_object_get(row, "revision"));
  if (!id || !event || t > r->at) {
    json_decref(row);
    return 0;
  }
  rcase *c = rev == 0 ? NULL : find_case(r, id);
  if (!c) {
    if (r->n == r->cap) {
      size_t cap = r->cap ? r->cap * 2 : 256;
      rcase *v = realloc(r->cases, cap * sizeof *v);
      if (!v) goto nomem;
      r->cases = v;
      r->cap = cap;
    }
    c = &r->cases[r->n];
    memset(c, 0, sizeof *c);
    c->id = xstrdup(id);
    if (!c->id) goto nomem;
    r->n++;
    c->created = t;
  }
  c->last_time = t;
  json_decref(c->config);
  json_decref(c->data);
  c->config = json_incref(json_object_get(row, "configuration"));
  c->data = json_incref(json_object_get(row, "data"));
  if (json_is_true(json_object_get(c->data, r->o.lane_field))) c->lane = 1;
  if (r->o.appeal_event && strcmp(event, r->o.appeal_event) == 0) {
    c->appeal = 1;
    free(c->outcome);
    c->outcome = NULL;
  } else if (c->appeal && !c->outcome) {
    const char *out = json_string_value(json_object_get(r->o.outcome_events, event));
    if (out && !(c->outcome = xstrdup(out))) goto nomem;
  }
  json_decref(row);
  return 0;
nomem:
  json_decref(row);
  r->failed = 1;
  return CASE_NOMEM;
}

/* The top-level final state in the configuration, or NULL if the case is open. */
static const char *final_state(const case_def *d, const json_t *config) {
  size_t i;
  json_t *v;
  json_array_foreach(config, i, v) {
    int s = def_state_find(d, json_string_value(v));
    if (s > 0 && d->states[s].kind == CS_FINAL && d->states[s].parent == 0)
      return d->states[s].id;
  }
  return NULL;
}

/* The case's state for the report: the first atomic active state inside the
 * region (or anywhere, without a region), document order. */
static const char *report_state(const case_def *d, const json_t *config, int region) {
  size_t i;
  json_t *v;
  const char *fin = final_state(d, config);
  if (fin) return fin;
  json_array_foreach(config, i, v) {
    int s = def_state_find(d, json_string_value(v));
    if (s <= 0) continue;
    if (d->states[s].kind != CS_ATOMIC) continue;
    if (region > 0 && !def_is_descendant(d, s, region)) continue;
    return d->states[s].id;
  }
  return "(none)";
}

/* The track as text: the field's value, "none" when absent or null. */
static void track_of(const json_t *data, const char *field, char *buf, size_t len) {
  const json_t *v = json_object_get(data, field);
  if (json_is_integer(v))
    snprintf(buf, len, "%lld", (long long)json_integer_value(v));
  else if (json_is_string(v))
    snprintf(buf, len, "%s", json_string_value(v));
  else if (json_is_boolean(v))
    snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
  else
    snprintf(buf, len, "none");
}

/* Adds n to the integer at obj[key] (creating it). */
static int bump(json_t *obj, const char *key, json_int_t n) {
  json_t *v = json_object_get(obj, key);
  if (v) return json_integer_set(v, json_integer_value(v) + n);
  return json_object_set_new(obj, key, json_integer(n));
}

/* obj[key] as an object, created when missing; NULL when out of memory. */
static json_t *sub(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  if (v) return v;
  v = json_object();
  if (!v || json_object_set_new(obj, key, v) != 0) return NULL;
  return v;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median (mean of the two middle values for an even count) and the 90th
 * percentile by the nearest-rank method, rounded to 0.1 day. */
static json_t *lead_stats(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  size_t rank = (size_t)ceil(0.9 * (double)n);
  double p90 = v[rank ? rank - 1 : 0];
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += v[i];
  return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "cases", (json_int_t)n, "median",
                   round(med * 10) / 10, "p90", round(p90 * 10) / 10, "mean",
                   round(sum / (double)n * 10) / 10, "min", round(v[0] * 10) / 10, "max",
                   round(v[n - 1] * 10) / 10);
}

/* The agencies that must act on a running deadline: the configured one, or the
 * roles of the transitions with a target whose source is the deadline's state
 * (then any state inside it, then its nearest ancestor that has such
 * transitions), in document order, joined with "/". */
static void deadline_agency(const rstate *r, const case_def *d, const char *name,
                            const char *state, char *buf, size_t len) {
  const char *fixed = json_string_value(json_object_get(r->o.deadline_agencies, name));
  if (fixed) {
    snprintf(buf, len, "%s", fixed);
    return;
  }
  buf[0] = 0;
  int s = state ? def_state_find(d, state) : -1;
  if (s < 0) {
    snprintf(buf, len, "(unknown)");
    return;
  }
  unsigned char *seen = calloc((size_t)d->nroles + 1, 1);
  size_t used = 0;
  /* Pass 0: the state itself; 1: states inside it; then its ancestors, the
   * nearest first (a term on a sub-state is ended by its parent's transitions). */
  int anc = d->states[s].parent;
  for (int pass = 0; used == 0 && (pass < 2 || anc > 0); pass++) {
    int from = -1;
    if (pass >= 2) {
      from = anc;
      anc = d->states[anc].parent;
    }
    for (int t = 0; t < d->ntransitions; t++) {
      const cs_transition *tr = &d->transitions[t];
      int inside = pass == 0   ? tr->source == s
                   : pass == 1 ? def_is_descendant(d, tr->source, s)
                               : tr->source == from;
      if (!inside || tr->ntargets == 0) continue;
      for (int k = 0; k < tr->nroles; k++) {
        int role = tr->roles[k];
        if (seen && seen[role]) continue;
        if (seen) seen[role] = 1;
        int w = snprintf(buf + used, len - used, "%s%s", used ? "/" : "", d->roles[role]);
        if (w < 0 || (size_t)w >= len - used) break;
        used += (size_t)w;
      }
    }
  }
  free(seen);
  if (used == 0) snprintf(buf, len, "(none)");
}

static int parse_opts(rstate *r, json_t *opts) {
  ropts *o = &r->o;
  o->track_field = "spoor";
  o->lane_field = "interventieteam";
  o->appeal_event = "beroep_ingesteld";
  o->region = "procedure";
  o->horizon_days = 7;
  if (!opts) return CASE_OK;
  const char *key;
  json_t *v;
  json_object_foreach(opts, key, v) {
    const char **str = !strcmp(key, "track_field")    ? &o->track_field
                       : !strcmp(key, "lane_field")   ? &o->lane_field
                       : !strcmp(key, "appeal_event") ? &o->appeal_event
                       : !strcmp(key, "region")       ? &o->region
                                                      : NULL;
    if (str) {
      if (!json_is_string(v) && !json_is_null(v))
        return eng_err(r->e, CASE_INVALID, "report options: '%s' must be a string or null", key);
      *str = json_string_value(v);
    } else if (!strcmp(key, "horizon_days")) {
      if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 3660)
        return eng_err(r->e, CASE_INVALID,
                       "report options: 'horizon_days' must be an integer from 0 to 3660");
      o->horizon_days = (int)json_integer_value(v);
    } else if (!strcmp(key, "outcome_events") || !strcmp(key, "deadline_agencies")) {
      if (!json_is_object(v))
        return eng_err(r->e, CASE_INVALID, "report options: '%s' must be an object", key);
      if (!strcmp(key, "outcome_events")) o->outcome_events = v;
      else o->deadline_agencies = v;
    } else if (!strcmp(key, "transferred_states")) {
      if (!json_is_array(v))
        return eng_err(r->e, CASE_INVALID, "report options: '%s' must be an array", key);
      o->transferred_states = v;
    } else {
      return eng_err(r->e, CASE_INVALID,
                     "report options: unknown key '%s' (expected track_field, lane_field, "
                     "appeal_event, outcome_events, region, transferred_states, "
                     "deadline_agencies or horizon_days)", key);
    }
  }
  return CASE_OK;
}

static int is_transferred(const ropts *o, const char *state) {
  if (!o->transferred_states) return strcmp(state, "overgedragen") == 0;
  size_t i;
  json_t *v;
  json_array_foreach(o->transferred_states, i, v)
    if (json_is_string(v) && strcmp(json_string_value(v), state) == 0) return 1;
  return 0;
}

/* ISO week "YYYY-Www" of a local day. */
static void iso_week(cal_day day, char out[32]) {
  int wd = cal_weekday(day);            /* 0 = Monday */
  cal_day thursday = day - wd + 3;
  int y, m, dd;
  cal_to_ymd(thursday, &y, &m, &dd);
  cal_day jan1 = cal_from_ymd(y, 1, 1);
  int week = (int)((thursday - jan1) / 7) + 1;
  snprintf(out, 32, "%04d-W%02d", y, week);
}

/* Builds the report object from the collected cases. */
static int build(rstate *r, case_store *s, json_t **out) {
  case_engine *e = r->e;
  json_t *rep = json_object();
  json_t *by_track = json_object(), *by_state = json_object(), *closed_by = json_object();
  json_t *appeals = json_object(), *outcomes = json_object(), *weeks = json_object();
  json_t *agencies = json_object(), *items = json_array();
  json_t *leads = json_object(); /* "track\tlane" -> array of days */
  int rc = CASE_OK;
  if (!rep || !by_track || !by_state || !closed_by || !appeals || !outcomes || !weeks ||
      !agencies || !items || !leads)
    goto nomem;
  char date[11];
  cal_format_date(cal_local_day(r->at), date);
  json_int_t total = 0, open = 0, closed = 0, transferred = 0, lodged = 0, appeal_open = 0;
  json_int_t soon = 0, overdue = 0;
  for (size_t i = 0; i < r->n; i++) {
    rcase *c = &r->cases[i];
    case_instance *inst = NULL;
    rc = case_store_get(s, c->id, &inst);
    if (rc != CASE_OK) goto done;
    const case_def *d = case_instance_def(inst);
    int region = r->o.region ? def_state_find(d, r->o.region) : -1;
    char track[64];
    track_of(c->data, r->o.track_field ? r->o.track_field : "", track, sizeof track);
    const char *fin = final_state(d, c->config);
    const char *state = report_state(d, c->config, region);
    total++;
    json_t *t = sub(by_track, track);
    if (!t || bump(t, "cases", 1) || bump(t, fin ? "closed" : "open", 1)) goto nomem;
    json_t *ts = sub(t, "states");
    if (!ts || bump(ts, state, 1) || bump(by_state, state, 1)) goto nomem;
    char week[32];
    iso_week(cal_local_day(c->created), week);
    if (bump(weeks, week, 1)) goto nomem;
    if (fin) {
      closed++;
      if (bump(closed_by, fin, 1)) goto nomem;
      if (is_transferred(&r->o, fin)) transferred++;
      char key[128];
      snprintf(key, sizeof key, "%s\t%s", track, c->lane ? "accelerated" : "regular");
      json_t *arr = json_object_get(leads, key);
      if (!arr) {
        arr = json_array();
        if (!arr || json_object_set_new(leads, key, arr)) goto nomem;
      }
      if (json_array_append_new(arr, json_real((double)(c->last_time - c->created) /
                                               DAY_SECONDS)))
        goto nomem;
    } else {
      open++;
    }
    if (c->appeal) {
      lodged++;
      const char *oc = c->outcome ? c->outcome : fin ? "ended_without_ruling" : "open";
      if (!c->outcome && !fin) appeal_open++;
      if (bump(outcomes, oc, 1)) goto nomem;
    }
    /* Running terms, as stored now, measured against the reference time. */
    if (fin) continue;
    char *tj = NULL;
    rc = case_instance_timers(inst, &tj);
    if (rc != CASE_OK) goto done;
    json_t *timers = json_loads(tj, 0, NULL);
    case_free(tj);
    if (!timers) goto nomem;
    size_t k;
    json_t *tv;
    json_array_foreach(timers, k, tv) {
      const char *kind = json_string_value(json_object_get(tv, "kind"));
      if (!kind || strcmp(kind, "deadline") != 0) continue;
      int64_t due = json_integer_value(json_object_get(tv, "due"));
      int is_over = json_is_true(json_object_get(tv, "overdue")) || due <= r->at;
      int is_soon = !is_over && due <= r->at + (int64_t)r->o.horizon_days * DAY_SECONDS;
      if (!is_over && !is_soon) continue;
      const char *name = json_string_value(json_object_get(tv, "name"));
      char agency[128];
      deadline_agency(r, d, name, json_string_value(json_object_get(tv, "state")), agency,
                      sizeof agency);
      json_t *a = sub(agencies, agency);
      if (!a || bump(a, is_over ? "overdue" : "due_soon", 1) ||
          bump(a, is_over ? "due_soon" : "overdue", 0))
        goto nomem_timers;
      json_t *dl = sub(a, "deadlines");
      if (!dl || bump(dl, name, 1)) goto nomem_timers;
      if (is_over) overdue++;
      else soon++;
      json_t *it = json_pack("{s:s, s:s, s:s, s:O, s:I, s:O, s:O, s:s}", "case", c->id,
                             "agency", agency, "deadline", name, "state",
                             json_object_get(tv, "state"), "due", (json_int_t)due, "last_day",
                             json_object_get(tv, "last_day") ? json_object_get(tv, "last_day")
                                                             : json_null(),
                             "source", json_object_get(tv, "source") ? json_object_get(tv, "source")
                                                                     : json_null(),
                             "status", is_over ? "overdue" : "due_soon");
      if (!it || json_array_append_new(items, it)) goto nomem_timers;
      continue;
    nomem_timers:
      json_decref(timers);
      goto nomem;
    }
    json_decref(timers);
  }
  /* Lead times: per track and lane, then per lane over all tracks. */
  json_t *lead_list = json_array();
  if (!lead_list || json_object_set_new(rep, "lead_time_days", lead_list)) goto nomem;
  for (int pass = 0; pass < 2; pass++) {
    const char *lanes[2] = {"accelerated", "regular"};
    for (int ln = 0; ln < 2; ln++) {
      /* pass 0: each track; pass 1: all tracks together. */
      json_t *tracks = json_array();
      if (!tracks) goto nomem;
      const char *tk;
      json_t *tvv;
      if (pass == 0) {
        json_object_foreach(by_track, tk, tvv) json_array_append_new(tracks, json_string(tk));
      } else {
        json_array_append_new(tracks, json_string("all"));
      }
      size_t ti;
      json_t *tname;
      json_array_foreach(tracks, ti, tname) {
        size_t cnt = 0, cap = 0;
        double *vals = NULL;
        const char *key;
        json_t *arr;
        json_object_foreach(leads, key, arr) {
          const char *tab = strchr(key, '\t');
          if (!tab || strcmp(tab + 1, lanes[ln]) != 0) continue;
          if (pass == 0 && (strlen(json_string_value(tname)) != (size_t)(tab - key) ||
                            strncmp(key, json_string_value(tname), (size_t)(tab - key)) != 0))
            continue;
          size_t j;
          json_t *x;
          json_array_foreach(arr, j, x) {
            if (cnt == cap) {
              cap = cap ? cap * 2 : 64;
              double *nv = realloc(vals, cap * sizeof *nv);
              if (!nv) {
                free(vals);
                json_decref(tracks);
                goto nomem;
              }
              vals = nv;
            }
            vals[cnt++] = json_real_value(x);
          }
        }
        if (cnt > 0) {
          json_t *st = lead_stats(vals, cnt);
          if (!st || json_object_set_new(st, "track", json_string(json_string_value(tname))) ||
              json_object_set_new(st, "lane", json_string(lanes[ln])) ||
              json_array_append_new(lead_list, st)) {
            free(vals);
            json_decref(tracks);
            goto nomem;
          }
        }
        free(vals);
      }
      json_decref(tracks);
    }
  }
  json_t *cases = json_pack("{s:I, s:I, s:I}", "total", total, "open", open, "closed", closed);
  json_t *closed_o = json_pack("{s:I, s:O}", "total", closed, "by_state", closed_by);
  json_t *appeal_o = json_pack("{s:I, s:I, s:O}", "lodged", lodged, "open", appeal_open,
                               "outcomes", outcomes);
  json_t *dl_o = json_pack("{s:i, s:I, s:I, s:O, s:O}", "horizon_days", r->o.horizon_days,
                           "due_soon", soon, "overdue", overdue, "by_agency", agencies,
                           "items", items);
  if (!cases || !closed_o || !appeal_o || !dl_o ||
      json_object_set_new(rep, "report", json_string("libcase.report.v1")) ||
      json_object_set_new(rep, "at", json_integer(r->at)) ||
      json_object_set_new(rep, "date", json_string(date)) ||
      json_object_set_new(rep, "track_field", r->o.track_field ? json_string(r->o.track_field)
                                                               : json_null()) ||
      json_object_set_new(rep, "cases", cases) ||
      json_object_set_new(rep, "by_track", json_incref(by_track)) ||
      json_object_set_new(rep, "by_state", json_incref(by_state)) ||
      json_object_set_new(rep, "closed", closed_o) ||
      json_object_set_new(rep, "transferred", json_integer(transferred)) ||
      json_object_set_new(rep, "appeals", appeal_o) ||
      json_object_set_new(rep, "new_per_week", json_incref(weeks)) ||
      json_object_set_new(rep, "deadlines", dl_o)) {
    json_decref(cases);
    json_decref(closed_o);
    json_decref(appeal_o);
    json_decref(dl_o);
    goto nomem;
  }
  *out = rep;
  rep = NULL;
  rc = CASE_OK;
  goto done;
nomem:
  rc = eng_err(e, CASE_NOMEM, "out of memory");
done:
  json_decref(rep);
  json_decref(by_track);
  json_decref(by_state);
  json_decref(closed_by);
  json_decref(appeals);
  json_decref(outcomes);
  json_decref(weeks);
  json_decref(agencies);
  json_decref(items);
  json_decref(leads);
  return rc;
}

/* The options text as a JSON object (a new reference), or NULL with CASE_INVALID
 * on the engine saying where the text is wrong. */
static json_t *options_object(case_engine *e, const char *text) {
  json_error_t jerr;
  json_t *opts = json_loads(text, 0, &jerr);
  if (opts && json_is_object(opts)) return opts;
  if (opts)
    eng_err(e, CASE_INVALID, "report options: a JSON %s, not an object",
            json_is_array(opts) ? "array" : "value");
  else
    eng_err(e, CASE_INVALID, "report options: not JSON (line %d, column %d: %s)", jerr.line,
            jerr.column, jerr.text);
  json_decref(opts);
  return NULL;
}

int case_store_report(case_store *s, case_engine *e, int64_t at, const char *options_json,
                      char **json) {
  if (json) *json = NULL;
  if (!e) return CASE_MISUSE;
  if (!s || !json) return eng_err(e, CASE_MISUSE, "case_store_report: NULL argument");
  rstate r;
  memset(&r, 0, sizeof r);
  r.e = e;
  r.at = at;
  json_t *opts = NULL;
  if (options_json && !(opts = options_object(e, options_json))) return case_errcode(e);
  int rc = parse_opts(&r, opts);
  if (rc == CASE_OK && s->e == e) rc = st_need_profiles(s, NULL);
  json_t *default_outcomes = NULL;
  if (rc == CASE_OK && !r.o.outcome_events) {
    default_outcomes = json_pack("{s:s, s:s, s:s, s:s}", "uitspraak_gegrond", "gegrond",
                                 "uitspraak_ongegrond", "ongegrond", "uitspraak_rvs_gegrond",
                                 "gegrond", "uitspraak_rvs_ongegrond", "ongegrond");
    if (!default_outcomes) rc = eng_err(e, CASE_NOMEM, "out of memory");
    r.o.outcome_events = default_outcomes;
  }
  json_t *rep = NULL;
  if (rc == CASE_OK) {
    rc = case_store_follow(s, 0, 0, on_row, &r, NULL);
    if (r.failed) rc = eng_err(e, CASE_NOMEM, "out of memory");
  }
  if (rc == CASE_OK) rc = build(&r, s, &rep);
  if (rc == CASE_OK) {
    json_object_set_new(rep, "options", opts ? json_incref(opts) : json_object());
    *json = json_dumps(rep, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(rep);
    if (!*json) rc = eng_err(e, CASE_NOMEM, "out of memory");
    else eng_ok(e);
  }
  for (size_t i = 0; i < r.n; i++) {
    free(r.cases[i].id);
    free(r.cases[i].outcome);
    json_decref(r.cases[i].config);
    json_decref(r.cases[i].data);
  }
  free(r.cases);
  json_decref(default_outcomes);
  json_decref(opts);
  return rc;
}

/* ================================================================== */
/* Version 2: what the definitions declare, the open cases, terms by  */
/* urgency, per location and trends, everything as of `at`           */
/* ================================================================== */

#define PAGE_ROWS 512
#define RECENT_SIGNALS 50
#define NO_END INT64_MAX

typedef struct vcase {
  char *id;
  const case_def *def;   /* the host's definition of the case */
  char *location;        /* NULL: none */
  int64_t created, last_time;
  int64_t closed_time;   /* time of the row that reached a top-level final state, or -1 */
  json_t *config, *data; /* as of `at` (the journal row's) */
  int lane;
  char *regisseur;       /* from the declared assignment event, or NULL */
  json_t *marks;         /* event count name -> true (accepted) | outcome string */
  int nsignals;
  case_instance *rp;     /* the replay on the replay engine; NULL when it broke */
  char *problem;         /* why the replay broke, or NULL */
  json_t *open_iv;       /* running deadline id -> index in v2state.iv */
} vcase;

typedef struct interval {
  int64_t due, end; /* overdue from due (inclusive) to end (exclusive) */
  int court;
} interval;

typedef struct v2state {
  case_store *s;
  case_engine *e, *re;
  int64_t at;
  int horizon;
  json_t *filter; /* borrowed: the options' "filter" object or NULL */
  const char *sort;
  vcase *cases;
  size_t n, cap;
  json_t *index;  /* case id -> index in cases */
  interval *iv;
  size_t niv, capiv;
  json_t *signals;       /* source -> {"total":n,"per_week":{week:n}} */
  json_t *recent;        /* the latest signal rows, newest last */
  json_t *pages;         /* the rows of the page being read */
  json_t *corrupt;       /* problems of damaged rows of cases not in `cases` */
  int nomem;
} v2state;

static json_t *decl_of(const case_def *d, const char *key) {
  return d && d->report ? json_object_get(d->report, key) : NULL;
}

static int in_list(const json_t *arr, const char *s) {
  size_t i;
  json_t *v;
  if (!s) return 0;
  json_array_foreach(arr, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), s)) return 1;
  return 0;
}

/* 1 when every role of "A/B/C" is a declared court. */
static int is_court(const case_def *d, const char *agency) {
  const json_t *courts = decl_of(d, "courts");
  if (!courts || !agency || !*agency || *agency == '(') return 0;
  char part[128];
  for (const char *p = agency; *p;) {
    size_t len = strcspn(p, "/");
    snprintf(part, sizeof part, "%.*s", (int)(len < sizeof part ? len : sizeof part - 1), p);
    if (!in_list(courts, part)) return 0;
    p += len;
    if (*p) p++;
  }
  return 1;
}

/* Who must act on deadline `name` of state `state` (see deadline_agency). */
static void agency_v2(const case_def *d, const char *name, const char *state, char *buf,
                      size_t len) {
  rstate tmp;
  memset(&tmp, 0, sizeof tmp);
  tmp.o.deadline_agencies = decl_of(d, "agencies");
  deadline_agency(&tmp, d, name, state, buf, len);
}

/* The location in words: the declared location_label param of its profile, else
 * the location id. */
static const char *location_words(case_engine *e, const case_def *d, const char *loc) {
  const char *param = json_string_value(decl_of(d, "location_label"));
  const cs_profile *p = param ? eng_profile_find(e, loc) : NULL;
  const char *v = p ? json_string_value(json_object_get(p->params, param)) : NULL;
  return v ? v : loc;
}

static vcase *vfind(v2state *r, const char *id) {
  json_t *i = json_object_get(r->index, id);
  return i ? &r->cases[json_integer_value(i)] : NULL;
}

static int iv_add(v2state *r, int64_t due, int court, size_t *out) {
  if (r->niv == r->capiv) {
    size_t cap = r->capiv ? r->capiv * 2 : 256;
    interval *v = realloc(r->iv, cap * sizeof *v);
    if (!v) return CASE_NOMEM;
    r->iv = v;
    r->capiv = cap;
  }
  r->iv[r->niv] = (interval){due, NO_END, court};
  *out = r->niv++;
  return CASE_OK;
}

/* After a row: the running deadlines of the replayed case open and close
 * intervals; a deadline whose due time changed closes its interval and opens one. */
static int track_terms(v2state *r, vcase *c, int64_t t) {
  const case_instance *rp = c->rp;
  /* Close what is gone (or changed). */
  const char *key;
  json_t *v, *tmp;
  json_object_foreach_safe(c->open_iv, tmp, key, v) {
    size_t k = (size_t)json_integer_value(v);
    int still = 0;
    for (int i = 0; rp && !rp->st.done && i < rp->st.ntimers && !still; i++)
      still = !strcmp(rp->st.timers[i].id, key) && rp->st.timers[i].due == r->iv[k].due;
    if (!still) {
      r->iv[k].end = t;
      json_object_del(c->open_iv, key);
    }
  }
  if (!rp || rp->st.done) return CASE_OK;
  const case_def *d = rp->def;
  for (int i = 0; i < rp->st.ntimers; i++) {
    const cs_timer_inst *ti = &rp->st.timers[i];
    const cs_timer *tm = &d->timers[ti->timer];
    if (tm->kind != TIMER_DEADLINE || json_object_get(c->open_iv, ti->id)) continue;
    char agency[128];
    agency_v2(d, tm->name, d->states[tm->state].id, agency, sizeof agency);
    size_t k;
    if (iv_add(r, ti->due, is_court(d, agency), &k) != CASE_OK ||
        json_object_set_new(c->open_iv, ti->id, json_integer((json_int_t)k)))
      return CASE_NOMEM;
  }
  return CASE_OK;
}

static void replay_broke(v2state *r, vcase *c, const char *event) {
  if (!c->problem) {
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "event '%s' does not replay: %s", event, case_errmsg(r->re));
    c->problem = sbuf_take(&b);
  }
  case_instance_free(c->rp);
  c->rp = NULL;
}

static char *payload_text(const json_t *p) {
  return p && !json_is_null(p) ? json_dumps(p, JSON_COMPACT) : NULL;
}

/* The signal statistics: one more from `source` in the week of `t`. */
static int count_signal(v2state *r, vcase *c, const json_t *row, const char *event, int64_t t) {
  const char *role = json_string_value(json_object_get(row, "role"));
  const char *actor = json_string_value(json_object_get(row, "actor"));
  const char *source = role ? role : actor ? actor : "(unknown)";
  char week[32];
  iso_week(cal_local_day(t), week);
  json_t *src = sub(r->signals, source);
  if (!src || bump(src, "total", 1)) return CASE_NOMEM;
  json_t *pw = sub(src, "per_week");
  if (!pw || bump(pw, week, 1)) return CASE_NOMEM;
  c->nsignals++;
  char date[11];
  cal_format_date(cal_local_day(t), date);
  json_t *payload = json_object_get(row, "payload");
  json_t *it = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s?, s:O?}", "case", c->id, "event", event,
                         "source", source, "time", (json_int_t)t, "date", date, "actor", actor,
                         "payload", json_is_null(payload) ? NULL : payload);
  if (!it || json_array_append_new(r->recent, it)) return CASE_NOMEM;
  if (json_array_size(r->recent) > RECENT_SIGNALS) json_array_remove(r->recent, 0);
  return CASE_OK;
}

/* A damaged journal row (issue 15 §9: a column not UTF-8 or not JSON, marked
 * "corrupt" by the feed): the case's figures stop there, with the row named
 * among the report's problems; the other cases go on. */
static int v2_corrupt_row(v2state *r, const json_t *row, const json_t *bad) {
  const char *id = json_string_value(json_object_get(row, "case"));
  sbuf b;
  sbuf_init(&b);
  sbuf_printf(&b, "journal row seq %lld cannot be read:",
              (long long)json_integer_value(json_object_get(row, "seq")));
  const char *col;
  json_t *why;
  json_object_foreach((json_t *)bad, col, why) sbuf_printf(&b, " its %s is %s;", col, json_string_value(why));
  sbuf_puts(&b, " the case is counted as it was before it (casectl verify)");
  char *msg = sbuf_take(&b);
  if (!msg) return CASE_NOMEM;
  vcase *c = id && !json_object_get(bad, "case") ? vfind(r, id) : NULL;
  if (c) {
    if (!c->problem) c->problem = msg;
    else free(msg);
    case_instance_free(c->rp);
    c->rp = NULL;
    return CASE_OK;
  }
  json_t *p = json_pack("{s:s, s:s}", "case", id ? id : "", "problem", msg);
  free(msg);
  if (!p || json_array_append_new(r->corrupt, p)) return CASE_NOMEM;
  return CASE_OK;
}

static int v2_row_at(v2state *r, const json_t *row);

/* A row replays with the calendar as it was when it was recorded (verify.c). */
static int v2_row(v2state *r, const json_t *row) {
  cal_set_asof(r->re->calendar, json_integer_value(json_object_get(row, "recorded")));
  int rc = v2_row_at(r, row);
  cal_set_asof(r->re->calendar, INT64_MAX);
  return rc;
}

static int v2_row_at(v2state *r, const json_t *row) {
  const char *id = json_string_value(json_object_get(row, "case"));
  const char *event = json_string_value(json_object_get(row, "event"));
  int64_t t = json_integer_value(json_object_get(row, "time"));
  int64_t rev = json_integer_value(json_object_get(row, "revision"));
  const json_t *bad = json_object_get(row, "corrupt");
  if (bad) return v2_corrupt_row(r, row, bad);
  if (!id || !event || t > r->at) return CASE_OK;
  const json_t *payload = json_object_get(row, "payload");
  vcase *c = vfind(r, id);
  int rc;
  if (rev == 0 || !c) {
    if (rev != 0 || c) return CASE_OK; /* a journal that does not start with "create" */
    case_instance *host = NULL;
    rc = case_store_get(r->s, id, &host);
    if (rc == CASE_CORRUPT) {
      /* Its stored state is damaged: named among the problems, not counted; the
       * other cases go on (its later rows find no case and are passed over). */
      json_t *p = json_pack("{s:s, s:s}", "case", id, "problem", case_errmsg(r->e));
      if (!p || json_array_append_new(r->corrupt, p)) return CASE_NOMEM;
      return CASE_OK;
    }
    if (rc != CASE_OK) return rc;
    if (r->n == r->cap) {
      size_t cap = r->cap ? r->cap * 2 : 256;
      vcase *v = realloc(r->cases, cap * sizeof *v);
      if (!v) return CASE_NOMEM;
      r->cases = v;
      r->cap = cap;
    }
    c = &r->cases[r->n];
    memset(c, 0, sizeof *c);
    c->closed_time = -1;
    c->id = xstrdup(id);
    c->def = case_instance_def(host);
    const char *loc = case_instance_location(host);
    c->location = loc ? xstrdup(loc) : NULL;
    c->marks = json_object();
    c->open_iv = json_object();
    if (!c->id || (loc && !c->location) || !c->marks || !c->open_iv) {
      free(c->id);
      free(c->location);
      json_decref(c->marks);
      json_decref(c->open_iv);
      return CASE_NOMEM;
    }
    if (json_object_set_new(r->index, id, json_integer((json_int_t)r->n))) return CASE_NOMEM;
    r->n++;
    c->created = t;
    const case_def *rd = eng_replay_def(r->re, c->def);
    char *data = payload_text(payload);
    /* On the profile version the case was created with (store.h). */
    const cs_profile *pin = NULL;
    int start = 0;
    rc = rd ? st_profile_start(r->s, id, host->profile_first, host->profile_version, &start)
            : CASE_ERROR;
    if (rc == CASE_OK) rc = st_profile_version(r->s, r->re, loc, start, &pin);
    if (rc == CASE_OK) rc = eng_instance_create(r->re, rd, id, loc, pin, data, t, &c->rp);
    if (rc == CASE_OK) c->rp->profile_version = pin ? start : 0;
    free(data);
    if (rc == CASE_NOMEM) return rc;
    if (rc != CASE_OK) replay_broke(r, c, event);
  } else if (c->rp) {
    const char *role = json_string_value(json_object_get(row, "role"));
    const char *actor = json_string_value(json_object_get(row, "actor"));
    if (!role && actor && !strcmp(actor, "timer")) {
      int one = 0;
      rc = chart_tick_one(c->rp, t, &one);
      if (rc == CASE_OK && !one) rc = CASE_ERROR;
    } else if (!strcmp(event, PROFILE_EVENT)) {
      /* case_store_set_profile(): on to another version of its profile. */
      int to = (int)json_integer_value(json_object_get(payload, "to"));
      const cs_profile *pin = NULL;
      rc = st_profile_version(r->s, r->re, c->location, to, &pin);
      if (rc == CASE_OK && !pin) rc = CASE_CORRUPT;
      if (rc == CASE_OK) st_apply_profile(c->rp, pin, to, t);
    } else {
      char *p = payload_text(payload);
      rc = case_instance_fire(c->rp, event, p, actor, role, t);
      free(p);
    }
    if (rc == CASE_NOMEM) return rc;
    if (rc != CASE_OK) replay_broke(r, c, event);
  }
  c->last_time = t;
  json_decref(c->config);
  json_decref(c->data);
  c->config = json_incref(json_object_get(row, "configuration"));
  c->data = json_incref(json_object_get(row, "data"));
  const case_def *d = c->def;
  const char *lane = json_string_value(json_object_get(decl_of(d, "lane"), "field"));
  if (lane && json_is_true(json_object_get(c->data, lane))) c->lane = 1;
  if (c->closed_time < 0 && final_state(d, c->config)) c->closed_time = t;
  /* Counts by event: the event marks the case; the first outcome after it decides. */
  size_t i;
  json_t *cnt;
  json_array_foreach(decl_of(d, "counts"), i, cnt) {
    const char *ev = json_string_value(json_object_get(cnt, "event"));
    if (!ev) continue;
    const char *name = json_string_value(json_object_get(cnt, "name"));
    json_t *mark = json_object_get(c->marks, name);
    if (!strcmp(event, ev)) {
      if (json_object_set_new(c->marks, name, json_true())) return CASE_NOMEM;
    } else if (json_is_true(mark)) {
      const char *oc = json_string_value(json_object_get(json_object_get(cnt, "outcomes"), event));
      if (oc && json_object_set_new(c->marks, name, json_string(oc))) return CASE_NOMEM;
    }
  }
  const json_t *pr = decl_of(d, "procesregisseur");
  const char *pev = json_string_value(json_object_get(pr, "event"));
  if (pev && !strcmp(pev, event)) {
    const char *key = json_string_value(json_object_get(pr, "payload"));
    const char *who = json_string_value(json_object_get(payload, key));
    if (who) {
      char *w = xstrdup(who);
      if (!w) return CASE_NOMEM;
      free(c->regisseur);
      c->regisseur = w;
    }
  }
  if (in_list(decl_of(d, "signals"), event) && count_signal(r, c, row, event, t) != CASE_OK)
    return CASE_NOMEM;
  if (c->rp || c->problem) return track_terms(r, c, t);
  return CASE_OK;
}

static int v2_collect(void *ud, int64_t seq, const char *row_json) {
  (void)seq;
  v2state *r = ud;
  json_t *row = json_loads(row_json, 0, NULL);
  if (!row || json_array_append_new(r->pages, row)) {
    r->nomem = 1;
    return CASE_NOMEM;
  }
  return 0;
}

/* Reads the journal a page at a time and handles each page's rows outside the
 * feed callback, so that the rows may load cases (case_store_get) on any backend. */
static int v2_read(v2state *r) {
  int64_t after = 0;
  for (;;) {
    json_array_clear(r->pages);
    int64_t last = after;
    int rc = case_store_follow(r->s, after, PAGE_ROWS, v2_collect, r, &last);
    if (r->nomem) return CASE_NOMEM;
    if (rc != CASE_OK) return rc;
    size_t n = json_array_size(r->pages);
    for (size_t i = 0; i < n; i++) {
      rc = v2_row(r, json_array_get(r->pages, i));
      if (rc != CASE_OK) return rc;
    }
    if (n < PAGE_ROWS) return CASE_OK;
    after = last;
  }
}

/* ------------------------------------------------------------------ */
/* Building the v2 report                                               */
/* ------------------------------------------------------------------ */

typedef struct vterm {  /* a running deadline of an open case at `at` */
  const char *name, *state, *source;
  int64_t due;
  cal_day last_day;     /* CAL_NO_DAY for hour terms */
} vterm;

/* The case's state for the report: inside the declared region, else the first
 * active atomic state; a closed case's top-level final state. */
static const char *state_v2(const case_def *d, const json_t *config) {
  const char *region = json_string_value(decl_of(d, "region"));
  return report_state(d, config, region ? def_state_find(d, region) : -1);
}

static json_t *state_label(const case_def *d, const char *state) {
  const char *l = json_string_value(json_object_get(decl_of(d, "state_labels"), state));
  if (l) return json_string(l);
  char buf[256];
  snprintf(buf, sizeof buf, "%s", state);
  for (char *p = buf; *p; p++)
    if (*p == '_') *p = ' ';
  return json_string(buf);
}

/* "overdue", "due_today", "due_soon" (within the horizon) or "running". */
static const char *term_status(const v2state *r, const vterm *t, cal_day today, long *days) {
  if (t->due <= r->at) {
    *days = t->last_day != CAL_NO_DAY ? (long)(today - t->last_day)
                                      : (long)((r->at - t->due) / DAY_SECONDS);
    return "overdue";
  }
  cal_day last = t->last_day != CAL_NO_DAY ? t->last_day : cal_local_day(t->due - 1);
  *days = (long)(last - today);
  if (last <= today) return "due_today";
  if (last - today <= r->horizon) return "due_soon";
  return "running";
}

static int status_rank(const char *st) {
  return !strcmp(st, "overdue") ? 0 : !strcmp(st, "due_today") ? 1 : !strcmp(st, "due_soon") ? 2
                                                                                              : 3;
}

/* The running deadlines of case c at `at`: from the replay, or from the stored
 * case when the replay broke and nothing happened to the case after `at`. */
static int case_terms(v2state *r, vcase *c, vterm **out, int *n) {
  *out = NULL;
  *n = 0;
  const case_instance *src = c->rp;
  if (!src) {
    if (!c->problem) return CASE_OK;
    case_instance *host = NULL;
    if (case_store_get(r->s, c->id, &host) != CASE_OK) return CASE_OK;
    if (host->st.last_time > r->at) return CASE_OK; /* the stored case is past `at` */
    src = host;
  }
  if (src->st.done || src->st.ntimers == 0) return CASE_OK;
  vterm *v = calloc((size_t)src->st.ntimers, sizeof *v);
  if (!v) return CASE_NOMEM;
  const case_def *d = src->def;
  for (int i = 0; i < src->st.ntimers; i++) {
    const cs_timer_inst *ti = &src->st.timers[i];
    const cs_timer *tm = &d->timers[ti->timer];
    if (tm->kind != TIMER_DEADLINE) continue;
    v[*n] = (vterm){tm->name, d->states[tm->state].id, tm->source, ti->due, ti->last_day};
    (*n)++;
  }
  *out = v;
  return CASE_OK;
}

static const char *filter_str(const v2state *r, const char *key) {
  return r->filter ? json_string_value(json_object_get(r->filter, key)) : NULL;
}

/* 1 if "A/B" names role `who`. */
static int agency_has(const char *agency, const char *who) {
  size_t n = strlen(who);
  for (const char *p = agency; p && *p;) {
    size_t len = strcspn(p, "/");
    if (len == n && !strncmp(p, who, n)) return 1;
    p += len;
    if (*p) p++;
  }
  return 0;
}

static const char *jstr(const json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

/* An element being sorted, with the order asked for. */
typedef struct sitem {
  json_t *v;
  const char *how;
} sitem;

/* Text order, NULL (no value) last. */
static int cmp_text(const char *a, const char *b) {
  if (a && b) return strcmp(a, b);
  return a ? -1 : b ? 1 : 0;
}

static int urgency_cmp(const json_t *x, const json_t *y) {
  json_t *tx = json_object_get(x, "next_term"), *ty = json_object_get(y, "next_term");
  int rx = json_is_object(tx) ? status_rank(jstr(tx, "status")) : 4;
  int ry = json_is_object(ty) ? status_rank(jstr(ty, "status")) : 4;
  if (rx != ry) return rx < ry ? -1 : 1;
  if (rx == 4) return 0;
  json_int_t dx = json_integer_value(json_object_get(tx, "due"));
  json_int_t dy = json_integer_value(json_object_get(ty, "due"));
  return dx < dy ? -1 : dx > dy;
}

static int case_cmp(const void *a, const void *b) {
  const json_t *x = ((const sitem *)a)->v, *y = ((const sitem *)b)->v;
  const char *s = ((const sitem *)a)->how;
  int c = 0;
  if (!strcmp(s, "urgency")) c = urgency_cmp(x, y);
  else if (!strcmp(s, "days")) {
    json_int_t dx = json_integer_value(json_object_get(x, "days_open"));
    json_int_t dy = json_integer_value(json_object_get(y, "days_open"));
    c = dx > dy ? -1 : dx < dy;
  } else if (strcmp(s, "case") != 0) {
    const char *key = !strcmp(s, "agency") ? "must_act" : !strcmp(s, "state") ? "state_label" : s;
    c = cmp_text(jstr(x, key), jstr(y, key));
    if (!c) c = urgency_cmp(x, y);
  }
  return c ? c : strcmp(jstr(x, "case"), jstr(y, "case"));
}

/* Lead times: by track (numbers as numbers, "all" last), then lane. */
static int lead_cmp(const void *a, const void *b) {
  const json_t *x = ((const sitem *)a)->v, *y = ((const sitem *)b)->v;
  const char *tx = jstr(x, "track"), *ty = jstr(y, "track");
  int ax = !strcmp(tx, "all"), ay = !strcmp(ty, "all");
  if (ax != ay) return ax - ay;
  char *ex, *ey;
  long nx = strtol(tx, &ex, 10), ny = strtol(ty, &ey, 10);
  int c = (!*ex && !*ey && *tx && *ty) ? (nx > ny) - (nx < ny) : strcmp(tx, ty);
  return c ? c : strcmp(jstr(x, "lane"), jstr(y, "lane"));
}

static int term_cmp(const void *a, const void *b) {
  const json_t *x = ((const sitem *)a)->v, *y = ((const sitem *)b)->v;
  int rx = status_rank(jstr(x, "status")), ry = status_rank(jstr(y, "status"));
  if (rx != ry) return rx < ry ? -1 : 1;
  json_int_t dx = json_integer_value(json_object_get(x, "due"));
  json_int_t dy = json_integer_value(json_object_get(y, "due"));
  if (dx != dy) return dx < dy ? -1 : 1;
  return strcmp(jstr(x, "case"), jstr(y, "case"));
}

static int sort_array(json_t *arr, int (*cmp)(const void *, const void *), const char *how) {
  size_t n = json_array_size(arr);
  if (n < 2) return CASE_OK;
  sitem *v = malloc(n * sizeof *v);
  if (!v) return CASE_NOMEM;
  for (size_t i = 0; i < n; i++) v[i] = (sitem){json_incref(json_array_get(arr, i)), how};
  qsort(v, n, sizeof *v, cmp);
  json_array_clear(arr);
  int bad = 0;
  for (size_t i = 0; i < n; i++) bad |= json_array_append_new(arr, v[i].v);
  free(v);
  return bad ? CASE_NOMEM : CASE_OK;
}

/* Appends x to a growable array of doubles kept in a JSON array (simple, small). */
static int push_real(json_t *obj, const char *key, double x) {
  json_t *a = json_object_get(obj, key);
  if (!a) {
    a = json_array();
    if (!a || json_object_set_new(obj, key, a)) return CASE_NOMEM;
  }
  return json_array_append_new(a, json_real(x)) ? CASE_NOMEM : CASE_OK;
}

static json_t *stats_of(const json_t *arr) {
  size_t n = json_array_size(arr);
  if (!n) return json_null();
  double *v = malloc(n * sizeof *v);
  if (!v) return NULL;
  for (size_t i = 0; i < n; i++) v[i] = json_real_value(json_array_get(arr, i));
  json_t *s = lead_stats(v, n);
  free(v);
  return s;
}

/* The declared signal events of every loaded definition, each with the roles
 * that may fire it: {"signaal_politie":["AVIM","POLITIE"],...}. */
static json_t *signal_events(case_engine *e) {
  json_t *o = json_object();
  for (const case_def *d = case_def_next(e, NULL); o && d; d = case_def_next(e, d)) {
    size_t i;
    json_t *ev;
    json_array_foreach(decl_of(d, "signals"), i, ev) {
      const char *name = json_string_value(ev);
      json_t *roles = json_object_get(o, name);
      if (!roles) {
        roles = json_array();
        if (!roles || json_object_set_new(o, name, roles)) goto nomem;
      }
      for (int t = 0; t < d->ntransitions; t++) {
        const cs_transition *tr = &d->transitions[t];
        int takes = 0;
        for (int k = 0; k < tr->nevents && !takes; k++)
          takes = strcmp(tr->events[k], "*") != 0 && event_matches(tr->events[k], name);
        for (int k = 0; takes && k < tr->nroles; k++)
          if (!in_list(roles, d->roles[tr->roles[k]]) &&
              json_array_append_new(roles, json_string(d->roles[tr->roles[k]])))
            goto nomem;
      }
    }
  }
  return o;
nomem:
  json_decref(o);
  return NULL;
}

static int v2_build(v2state *r, json_t **out) {
  json_t *rep = json_object();
  json_t *open_cases = json_array(), *items = json_array(), *by_track = json_object();
  json_t *open_by_state = json_object(), *closed_by = json_object(), *counts = json_array();
  json_t *leads = json_object(), *months = json_object(), *weeks = json_object();
  json_t *locs = json_object(), *by_agency = json_object(), *problems = json_array();
  json_t *loc_leads = json_object(), *workflows = json_object();
  json_t *labels = json_object(), *choices = json_pack("{s:{}, s:{}, s:{}, s:{}}", "location",
                                                       "agency", "procesregisseur", "track");
  int rc = CASE_OK;
  vterm *terms = NULL;
  if (!rep || !open_cases || !items || !by_track || !open_by_state || !closed_by || !counts ||
      !leads || !months || !weeks || !locs || !by_agency || !problems || !loc_leads ||
      !workflows || !labels || !choices)
    goto nomem;
  cal_day today = cal_local_day(r->at);
  char date[11];
  cal_format_date(today, date);
  json_int_t total = 0, open = 0, closed = 0, overdue = 0, due_today = 0, due_soon = 0;
  json_int_t court_overdue = 0;
  /* The same figures for what the filter keeps ("selection"). */
  json_int_t s_open = 0, s_closed = 0, s_new = 0, s_overdue = 0, s_court = 0, s_today = 0,
             s_soon = 0;
  const char *track_label = NULL, *lane_label = NULL;
  const char *f_loc = filter_str(r, "location"), *f_ag = filter_str(r, "agency");
  const char *f_pr = filter_str(r, "procesregisseur"), *f_tr = filter_str(r, "track");
  int filtered = f_loc || f_ag || f_pr || f_tr;

  for (size_t i = 0; i < r->n; i++) {
    vcase *c = &r->cases[i];
    const case_def *d = c->def;
    const char *fin = final_state(d, c->config);
    const char *state = state_v2(d, c->config);
    const char *loc = c->location ? c->location : "(none)";
    const json_t *tdecl = decl_of(d, "track"), *ldecl = decl_of(d, "lane");
    char track[64] = "";
    if (tdecl) {
      track_of(c->data, jstr(tdecl, "field"), track, sizeof track);
      if (!track_label) track_label = jstr(tdecl, "label");
    }
    if (ldecl && !lane_label) lane_label = jstr(ldecl, "label");
    const char *lane = ldecl ? (c->lane ? "accelerated" : "regular") : NULL;
    const char *regisseur = c->regisseur;
    const json_t *pr = decl_of(d, "procesregisseur");
    if (jstr(pr, "field")) {
      const char *v = jstr(c->data, jstr(pr, "field"));
      if (v) regisseur = v;
    }
    total++;
    char wf[160];
    snprintf(wf, sizeof wf, "%s@%d", d->id, d->version);
    if (bump(workflows, wf, 1)) goto nomem;
    json_t *L = sub(locs, loc);
    const char *loc_label = c->location ? location_words(r->e, d, loc) : loc;
    if (L && !json_object_get(L, "label") &&
        json_object_set_new(L, "label", json_string(loc_label)))
      goto nomem;
    if (!L || bump(L, "cases", 1) || bump(L, fin ? "closed" : "open", 1) ||
        bump(L, fin ? "open" : "closed", 0) || bump(L, "overdue", 0) || bump(L, "court_overdue", 0) ||
        bump(L, "due_today", 0) || bump(L, "due_soon", 0) || bump(L, "signals", c->nsignals) ||
        bump(L, "new_last_7_days", c->created > r->at - 7 * DAY_SECONDS ? 1 : 0))
      goto nomem;
    if (tdecl) {
      json_t *t = sub(by_track, track);
      if (!t || bump(t, "cases", 1) || bump(t, fin ? "closed" : "open", 1) ||
          bump(t, fin ? "open" : "closed", 0))
        goto nomem;
      json_t *ts = sub(t, "states");
      if (!ts || bump(ts, state, 1)) goto nomem;
    }
    char week[32];
    iso_week(cal_local_day(c->created), week);
    if (bump(weeks, week, 1)) goto nomem;
    /* Declared counts. */
    size_t k;
    json_t *cnt;
    json_array_foreach(decl_of(d, "counts"), k, cnt) {
      const char *name = jstr(cnt, "name");
      json_t *slot = NULL;
      size_t j;
      json_t *x;
      json_array_foreach(counts, j, x) if (!strcmp(jstr(x, "name"), name)) slot = x;
      if (!slot) {
        slot = json_pack("{s:s, s:s, s:I}", "name", name, "label", jstr(cnt, "label"), "cases",
                         (json_int_t)0);
        if (!slot || json_array_append_new(counts, slot)) goto nomem;
        if (json_object_get(cnt, "outcomes") &&
            (json_object_set_new(slot, "outcomes", json_object()) || bump(slot, "open", 0)))
          goto nomem;
      }
      int hit = 0;
      const char *outcome = NULL;
      if (json_object_get(cnt, "states")) {
        size_t q;
        json_t *st;
        json_array_foreach(c->config, q, st) if (in_list(json_object_get(cnt, "states"),
                                                         json_string_value(st))) hit = 1;
      } else if (jstr(cnt, "field")) {
        hit = json_is_true(json_object_get(c->data, jstr(cnt, "field")));
      } else {
        json_t *m = json_object_get(c->marks, name);
        hit = m != NULL;
        if (hit && json_object_get(cnt, "outcomes"))
          outcome = json_is_string(m) ? json_string_value(m) : fin ? "ended_without_ruling"
                                                                   : "open";
      }
      if (!hit) continue;
      if (bump(slot, "cases", 1)) goto nomem;
      if (outcome) {
        if (bump(json_object_get(slot, "outcomes"), outcome, 1)) goto nomem;
        if (!strcmp(outcome, "open") && bump(slot, "open", 1)) goto nomem;
      }
    }
    if (c->problem) {
      json_t *p = json_pack("{s:s, s:s}", "case", c->id, "problem", c->problem);
      if (!p || json_array_append_new(problems, p)) goto nomem;
    }
    if (json_object_set_new(labels, state, state_label(d, state))) goto nomem;
    if (json_object_set_new(labels, state, state_label(d, state))) goto nomem;
    /* The filter's case-level part; a closed case has nobody who must act, so an
     * agency filter keeps none. */
    int case_match = (!f_loc || !strcmp(f_loc, loc)) &&
                     (!f_pr || (regisseur && !strcmp(f_pr, regisseur))) &&
                     (!f_tr || (tdecl && !strcmp(f_tr, track)));
    int is_new = c->created > r->at - 7 * DAY_SECONDS;
    if (fin) {
      closed++;
      if (case_match && !f_ag) s_closed++, s_new += is_new;
      if (bump(closed_by, fin, 1)) goto nomem;
      double days = (double)(c->closed_time - c->created) / DAY_SECONDS;
      char key[160], month[16];
      snprintf(key, sizeof key, "%s\t%s", tdecl ? track : "all", lane ? lane : "all");
      if (push_real(leads, key, days) || push_real(loc_leads, loc, days)) goto nomem;
      int y, m, dd;
      cal_to_ymd(cal_local_day(c->closed_time), &y, &m, &dd);
      snprintf(month, sizeof month, "%04d-%02d", y % 10000, m % 100);
      if (push_real(months, month, days)) goto nomem;
      continue;
    }
    open++;
    if (bump(open_by_state, state, 1)) goto nomem;
    /* The case's terms at `at`. */
    int nt = 0;
    free(terms);
    terms = NULL;
    if (case_terms(r, c, &terms, &nt) != CASE_OK) goto nomem;
    int next = -1;
    for (int q = 0; q < nt; q++)
      if (next < 0 || terms[q].due < terms[next].due) next = q;
    char must[128] = "";
    json_t *next_o = json_null();
    if (next >= 0) {
      long days;
      const char *st = term_status(r, &terms[next], today, &days);
      agency_v2(d, terms[next].name, terms[next].state, must, sizeof must);
      char ld[11] = "";
      if (terms[next].last_day != CAL_NO_DAY) cal_format_date(terms[next].last_day, ld);
      next_o = json_pack("{s:s, s:s, s:s?, s:I, s:s?, s:s, s:i, s:b, s:s}", "name",
                         terms[next].name, "state", terms[next].state, "source",
                         terms[next].source, "due", (json_int_t)terms[next].due, "last_day",
                         *ld ? ld : NULL, "status", st, !strcmp(st, "overdue") ? "days_overdue"
                                                                              : "days_left",
                         (int)days, "court", is_court(d, must), "agency", must);
      if (!next_o) goto nomem;
    } else {
      int s = def_state_find(d, state);
      if (s > 0) agency_v2(d, "", state, must, sizeof must);
      else snprintf(must, sizeof must, "(none)");
    }
    if (bump(json_object_get(choices, "location"), loc, 1) ||
        (regisseur && bump(json_object_get(choices, "procesregisseur"), regisseur, 1)) ||
        (tdecl && bump(json_object_get(choices, "track"), track, 1)))
      goto nomem;
    for (const char *p = must; *p && *p != '(';) {
      size_t len = strcspn(p, "/");
      char one[128];
      snprintf(one, sizeof one, "%.*s", (int)(len < sizeof one ? len : sizeof one - 1), p);
      if (bump(json_object_get(choices, "agency"), one, 1)) goto nomem;
      p += len;
      if (*p) p++;
    }
    int keep = (!f_loc || !strcmp(f_loc, loc)) && (!f_ag || agency_has(must, f_ag)) &&
               (!f_pr || (regisseur && !strcmp(f_pr, regisseur))) &&
               (!f_tr || (tdecl && !strcmp(f_tr, track)));
    json_t *oc = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:o, s:s?, s:s?, s:I, s:o, s:s, "
                           "s:i}",
                           "case", c->id, "workflow", wf, "location", loc, "location_label",
                           loc_label, "procesregisseur",
                           regisseur, "state", state, "state_label", state_label(d, state),
                           "track", tdecl ? track : NULL, "lane", lane, "days_open",
                           (json_int_t)(today - cal_local_day(c->created)), "next_term", next_o,
                           "must_act", must, "signals", c->nsignals);
    if (!oc) goto nomem;
    if (keep) s_open++, s_new += is_new;
    if (keep ? json_array_append_new(open_cases, oc) : (json_decref(oc), 0)) goto nomem;
    /* Every term due within the horizon or overdue. */
    for (int q = 0; q < nt; q++) {
      long days;
      const char *st = term_status(r, &terms[q], today, &days);
      if (!strcmp(st, "running")) continue;
      char ag[128];
      agency_v2(d, terms[q].name, terms[q].state, ag, sizeof ag);
      int court = is_court(d, ag);
      int over = !strcmp(st, "overdue");
      json_t *A = sub(by_agency, ag);
      if (!A || bump(A, st, 1) || bump(A, "overdue", 0) || bump(A, "due_today", 0) ||
          bump(A, "due_soon", 0) || json_object_set_new(A, "court", json_boolean(court)))
        goto nomem;
      json_t *dl = sub(A, "deadlines");
      if (!dl || bump(dl, terms[q].name, 1)) goto nomem;
      if (bump(L, st, 1) || (over && court && bump(L, "court_overdue", 1))) goto nomem;
      if (over) overdue++, court_overdue += court;
      else if (!strcmp(st, "due_today")) due_today++;
      else due_soon++;
      if (!((!f_loc || !strcmp(f_loc, loc)) && (!f_ag || agency_has(ag, f_ag)) &&
            (!f_pr || (regisseur && !strcmp(f_pr, regisseur))) &&
            (!f_tr || (tdecl && !strcmp(f_tr, track)))))
        continue;
      if (over) s_overdue++, s_court += court;
      else if (!strcmp(st, "due_today")) s_today++;
      else s_soon++;
      char ld[11] = "";
      if (terms[q].last_day != CAL_NO_DAY) cal_format_date(terms[q].last_day, ld);
      json_t *it = json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s, s:s, s:b, s:I, s:s?, s:s?, s:s, "
                             "s:i}",
                             "case", c->id, "location", loc, "procesregisseur", regisseur,
                             "track", tdecl ? track : NULL, "deadline", terms[q].name, "state",
                             terms[q].state, "agency", ag, "court", court, "due",
                             (json_int_t)terms[q].due, "last_day", *ld ? ld : NULL, "source",
                             terms[q].source, "status", st, over ? "days_overdue" : "days_left",
                             (int)days);
      if (!it || json_array_append_new(items, it)) goto nomem;
    }
  }
  free(terms);
  terms = NULL;
  const char *sort = r->sort ? r->sort : "urgency";
  if (sort_array(open_cases, case_cmp, sort) || sort_array(items, term_cmp, "urgency"))
    goto nomem;

  /* Lead times per track and lane (closed cases), then per lane. */
  json_t *lead_list = json_array();
  if (!lead_list || json_object_set_new(rep, "lead_time_days", lead_list)) goto nomem;
  {
    json_t *per_lane = json_object();
    if (!per_lane) goto nomem;
    const char *key;
    json_t *arr;
    json_object_foreach(leads, key, arr) {
      const char *tab = strchr(key, '\t');
      char tr[128];
      snprintf(tr, sizeof tr, "%.*s", (int)(tab - key), key);
      json_t *st = stats_of(arr);
      if (!st || json_object_set_new(st, "track", json_string(tr)) ||
          json_object_set_new(st, "lane", json_string(tab + 1)) ||
          json_array_append_new(lead_list, st)) {
        json_decref(per_lane);
        goto nomem;
      }
      size_t j;
      json_t *x;
      json_array_foreach(arr, j, x) if (push_real(per_lane, tab + 1, json_real_value(x))) {
        json_decref(per_lane);
        goto nomem;
      }
    }
    if (json_object_size(by_track) > 0) {
      json_object_foreach(per_lane, key, arr) {
        json_t *st = stats_of(arr);
        if (!st || json_object_set_new(st, "track", json_string("all")) ||
            json_object_set_new(st, "lane", json_string(key)) ||
            json_array_append_new(lead_list, st)) {
          json_decref(per_lane);
          goto nomem;
        }
      }
    }
    json_decref(per_lane);
  }
  if (sort_array(lead_list, lead_cmp, "")) goto nomem;
  /* Per location: lead time median of its closed cases. */
  {
    const char *key;
    json_t *L;
    json_object_foreach(locs, key, L) {
      json_t *st = stats_of(json_object_get(loc_leads, key));
      if (!st || json_object_set_new(L, "lead_time_days", st)) goto nomem;
    }
  }
  /* Trends. */
  json_t *trends = json_object();
  if (!trends || json_object_set_new(rep, "trends", trends)) goto nomem;
  {
    json_t *lm = json_array();
    if (!lm || json_object_set_new(trends, "lead_time_per_month", lm)) goto nomem;
    const char *key;
    json_t *arr;
    /* Month keys sort as text; jansson keeps insertion order, so sort them. */
    size_t nm = json_object_size(months), q = 0;
    const char **mk = nm ? malloc(nm * sizeof *mk) : NULL;
    if (nm && !mk) goto nomem;
    json_object_foreach(months, key, arr) mk[q++] = key;
    for (size_t a = 1; a < nm; a++)
      for (size_t b = a; b > 0 && strcmp(mk[b - 1], mk[b]) > 0; b--) {
        const char *t = mk[b];
        mk[b] = mk[b - 1];
        mk[b - 1] = t;
      }
    for (q = 0; q < nm; q++) {
      json_t *st = stats_of(json_object_get(months, mk[q]));
      if (!st || json_object_set_new(st, "month", json_string(mk[q])) ||
          json_array_append_new(lm, st)) {
        free(mk);
        goto nomem;
      }
    }
    free(mk);
  }
  {
    /* New cases and overdue terms per ISO week, every week from the first case's
     * to the reference date's (weeks without cases count 0). */
    json_t *nw = json_array(), *ow = json_array();
    if (!nw || !ow || json_object_set_new(trends, "new_per_week", nw) ||
        json_object_set_new(trends, "overdue_per_week", ow)) {
      json_decref(nw);
      json_decref(ow);
      goto nomem;
    }
    if (r->n > 0) {
      int64_t first = r->cases[0].created;
      for (size_t i = 1; i < r->n; i++)
        if (r->cases[i].created < first) first = r->cases[i].created;
      cal_day monday = cal_local_day(first);
      monday -= cal_weekday(monday);
      for (cal_day wk = monday; wk <= today; wk += 7) {
        char week[32];
        iso_week(wk, week);
        int64_t sample = cal_local_midnight(wk + 7);
        if (sample > r->at) sample = r->at;
        json_int_t over = 0, court = 0;
        for (size_t k = 0; k < r->niv; k++)
          if (r->iv[k].due <= sample && sample < r->iv[k].end) {
            over++;
            court += r->iv[k].court;
          }
        char sd[11];
        cal_format_date(cal_local_day(sample - 1), sd);
        json_t *a = json_pack("{s:s, s:I}", "week", week, "cases",
                              json_integer_value(json_object_get(weeks, week)));
        json_t *b = json_pack("{s:s, s:s, s:I, s:I}", "week", week, "date", sd, "overdue", over,
                              "court", court);
        if (!a || !b || json_array_append_new(nw, a) || json_array_append_new(ow, b)) {
          json_decref(b);
          goto nomem;
        }
      }
    }
    if (json_object_set(trends, "signals_per_source", r->signals) ||
        json_object_set(trends, "recent_signals", r->recent))
      goto nomem;
  }
  json_t *cases = json_pack("{s:I, s:I, s:I}", "total", total, "open", open, "closed", closed);
  json_t *closed_o = json_pack("{s:I, s:O}", "total", closed, "by_state", closed_by);
  if (json_array_extend(problems, r->corrupt)) goto nomem; /* damaged rows of unknown cases */
  json_t *terms_o = json_pack("{s:i, s:I, s:I, s:I, s:I, s:O, s:O}", "horizon_days", r->horizon,
                              "overdue", overdue, "court_overdue", court_overdue, "due_today",
                              due_today, "due_soon", due_soon, "by_agency", by_agency, "items",
                              items);
  json_t *sel_o = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "filtered", filtered,
                            "open", s_open, "closed", s_closed, "new_last_7_days", s_new,
                            "overdue", s_overdue, "court_overdue", s_court, "due_today",
                            s_today, "due_soon", s_soon);
  json_t *track_o = json_object_size(by_track) || track_label
                        ? json_pack("{s:s?, s:s?}", "label", track_label, "lane", lane_label)
                        : json_null();
  if (!cases || !closed_o || !terms_o || !track_o || !sel_o ||
      json_object_set_new(rep, "report", json_string("libcase.report.v2")) ||
      json_object_set_new(rep, "at", json_integer(r->at)) ||
      json_object_set_new(rep, "date", json_string(date)) ||
      json_object_set(rep, "workflows", workflows) ||
      json_object_set_new(rep, "cases", cases) ||
      json_object_set_new(rep, "track", track_o) ||
      json_object_set(rep, "by_track", by_track) ||
      json_object_set(rep, "open_by_state", open_by_state) ||
      json_object_set_new(rep, "closed", closed_o) ||
      json_object_set(rep, "counts", counts) ||
      json_object_set(rep, "state_labels", labels) ||
      json_object_set_new(rep, "signal_events", signal_events(r->e)) ||
      json_object_set(rep, "choices", choices) ||
      json_object_set(rep, "open_cases", open_cases) ||
      json_object_set_new(rep, "terms", terms_o) ||
      json_object_set(rep, "by_location", locs) ||
      json_object_set(rep, "problems", problems) ||
      json_object_set_new(rep, "filter", r->filter ? json_incref(r->filter) : json_object()) ||
      json_object_set(rep, "selection", sel_o) ||
      json_object_set_new(rep, "sort", json_string(sort))) {
    json_decref(sel_o);
    json_decref(cases);
    json_decref(closed_o);
    json_decref(terms_o);
    json_decref(track_o);
    goto nomem;
  }
  json_decref(sel_o);
  /* Keep "lead_time_days" and "trends" after the summary sections. */
  json_t *lt = json_incref(json_object_get(rep, "lead_time_days"));
  json_t *tr = json_incref(json_object_get(rep, "trends"));
  json_object_del(rep, "lead_time_days");
  json_object_del(rep, "trends");
  if (json_object_set_new(rep, "lead_time_days", lt) || json_object_set_new(rep, "trends", tr))
    goto nomem;
  *out = rep;
  rep = NULL;
  goto done;
nomem:
  rc = CASE_NOMEM;
done:
  free(terms);
  json_decref(rep);
  json_decref(open_cases);
  json_decref(items);
  json_decref(by_track);
  json_decref(open_by_state);
  json_decref(closed_by);
  json_decref(counts);
  json_decref(leads);
  json_decref(months);
  json_decref(weeks);
  json_decref(locs);
  json_decref(by_agency);
  json_decref(problems);
  json_decref(loc_leads);
  json_decref(workflows);
  json_decref(labels);
  json_decref(choices);
  return rc;
}

static int v2_options(v2state *r, json_t *opts) {
  case_engine *e = r->e;
  r->horizon = -1;
  const char *key;
  json_t *v;
  json_object_foreach(opts, key, v) {
    if (!strcmp(key, "horizon_days")) {
      if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 3660)
        return eng_err(e, CASE_INVALID,
                       "report options: 'horizon_days' must be an integer from 0 to 3660");
      r->horizon = (int)json_integer_value(v);
    } else if (!strcmp(key, "filter")) {
      if (!json_is_object(v))
        return eng_err(e, CASE_INVALID, "report options: 'filter' must be an object");
      const char *fk;
      json_t *fv;
      json_object_foreach(v, fk, fv) {
        if (strcmp(fk, "location") && strcmp(fk, "agency") && strcmp(fk, "procesregisseur") &&
            strcmp(fk, "track"))
          return eng_err(e, CASE_INVALID, "report options: unknown filter '%s' (expected "
                         "location, agency, procesregisseur or track)", fk);
        if (!json_is_string(fv))
          return eng_err(e, CASE_INVALID, "report options: filter '%s' must be a string", fk);
      }
      r->filter = v;
    } else if (!strcmp(key, "sort")) {
      static const char *const sorts[] = {"urgency", "case", "location", "procesregisseur",
                                          "state", "days", "track", "agency", NULL};
      const char *s = json_string_value(v);
      int ok = 0;
      for (int i = 0; s && sorts[i]; i++) ok |= !strcmp(s, sorts[i]);
      if (!ok)
        return eng_err(e, CASE_INVALID, "report options: 'sort' must be one of urgency, case, "
                       "location, procesregisseur, state, days, track or agency");
      r->sort = s;
    } else {
      return eng_err(e, CASE_INVALID, "report options: unknown key '%s' (expected "
                     "horizon_days, filter or sort)", key);
    }
  }
  return CASE_OK;
}

int case_store_report_v2(case_store *s, int64_t at, const char *options_json, char **json) {
  if (json) *json = NULL;
  case_engine *e = store_engine(s);
  if (!e) return CASE_MISUSE;
  if (!json) return eng_err(e, CASE_MISUSE, "case_store_report_v2: json is NULL");
  v2state r;
  memset(&r, 0, sizeof r);
  r.s = s;
  r.e = e;
  r.at = at;
  json_t *opts = NULL;
  if (options_json && !(opts = options_object(e, options_json))) return case_errcode(e);
  int rc = opts ? v2_options(&r, opts) : (r.horizon = -1, CASE_OK);
  r.index = json_object();
  r.signals = json_object();
  r.recent = json_array();
  r.pages = json_array();
  r.corrupt = json_array();
  if (rc == CASE_OK && (!r.index || !r.signals || !r.recent || !r.pages || !r.corrupt))
    rc = eng_err(e, CASE_NOMEM, "out of memory");
  /* the location labels and cases pinned to no version need the stored profiles */
  if (rc == CASE_OK) rc = st_need_profiles(s, NULL);
  if (rc == CASE_OK) rc = eng_replay_open(e, &r.re);
  if (rc == CASE_OK) {
    rc = v2_read(&r);
    if (rc == CASE_NOMEM) eng_err(e, rc, "out of memory");
  }
  if (rc == CASE_OK && r.horizon < 0) {
    /* The first declared horizon of the cases' definitions, else 7 days. */
    r.horizon = 7;
    for (size_t i = 0; i < r.n; i++) {
      json_t *h = decl_of(r.cases[i].def, "horizon_days");
      if (h) {
        r.horizon = (int)json_integer_value(h);
        break;
      }
    }
  }
  json_t *rep = NULL;
  if (rc == CASE_OK && (rc = v2_build(&r, &rep)) == CASE_NOMEM) eng_err(e, rc, "out of memory");
  if (rc == CASE_OK) {
    *json = json_dumps(rep, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(rep);
    rc = *json ? eng_ok(e) : eng_err(e, CASE_NOMEM, "out of memory");
  }
  for (size_t i = 0; i < r.n; i++) {
    vcase *c = &r.cases[i];
    free(c->id);
    free(c->location);
    free(c->regisseur);
    free(c->problem);
    json_decref(c->config);
    json_decref(c->data);
    json_decref(c->marks);
    json_decref(c->open_iv);
  }
  free(r.cases);
  free(r.iv);
  eng_replay_close(r.re); /* frees the replayed cases */
  json_decref(r.index);
  json_decref(r.signals);
  json_decref(r.recent);
  json_decref(r.pages);
  json_decref(r.corrupt);
  json_decref(opts);
  return rc;
}
