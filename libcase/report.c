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
  if (options_json) {
    json_error_t jerr;
    opts = json_loads(options_json, 0, &jerr);
    if (!opts || !json_is_object(opts)) {
      json_decref(opts);
      return eng_err(e, CASE_INVALID, "report options: not a JSON object (line %d, column %d: %s)",
                     jerr.line, jerr.column, opts ? "not an object" : jerr.text);
    }
  }
  int rc = parse_opts(&r, opts);
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
