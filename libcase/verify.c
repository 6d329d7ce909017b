/*
 * verify.c — case_store_verify(): the journal's hash chains recomputed and
 * every case replayed on a separate engine (docs/store.md, "Verify").
 */
#include "internal.h"
#include "libcase/store.h"
#include "store_backend.h"
#include "store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct verifier {
  case_store *s;
  case_engine *replay;      /* a separate engine: the host's cases stay untouched */
  json_t *problems;
  long events;
  /* per case */
  const sb_case_row *row;
  case_instance *c;         /* the replayed case */
  int broken;               /* replay stopped at a problem */
  int64_t next_revision;
  int64_t last_seq;
  char prev[65];
  char last_hash[65];
  int nomem;
} verifier;

static void problem(verifier *v, int64_t seq, const char *kind, const char *fmt, ...)
    CASE_PRINTF(4, 5);

static void problem(verifier *v, int64_t seq, const char *kind, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *p = json_pack("{s:s, s:I, s:s, s:s}", "case", v->row->id, "seq", (json_int_t)seq,
                        "problem", kind, "message", msg);
  if (!p || json_array_append_new(v->problems, p) != 0) v->nomem = 1;
}

static int replay_open(verifier *v) {
  int rc = eng_replay_open(v->s->e, &v->replay);
  if (rc != CASE_OK) return eng_err(v->s->e, rc, "verify: %s", case_errmsg(v->s->e));
  return CASE_OK;
}

static void replay_close(verifier *v) {
  eng_replay_close(v->replay);
  v->replay = NULL;
}

/* The pinned definition on the replay engine, loaded from the host's copy. */
static const case_def *replay_def(verifier *v, const char *id, int version, char *why,
                                  size_t n) {
  const case_def *h = case_def_find(v->s->e, id, version);
  if (!h || h->version != version) {
    snprintf(why, n, "workflow '%s' version %d is not loaded", id, version);
    return NULL;
  }
  /* The same YAML and the same module code the cases ran with (pinned in
   * the store and checked against the host's copy when it was opened). */
  const case_def *d = eng_replay_def(v->replay, h);
  if (!d)
    snprintf(why, n, "workflow '%s' version %d does not load for replay: %s", id, version,
             case_errmsg(v->replay));
  return d;
}

static int same_json(const char *text, char *(*get)(const case_instance *), const case_instance *c,
                     char **mine) {
  *mine = get(c);
  json_t *a = st_parse_any(text), *b = *mine ? st_parse_any(*mine) : NULL;
  int same = a && b && json_equal(a, b);
  json_decref(a);
  json_decref(b);
  return same;
}

static char *get_config(const case_instance *c) {
  char *s = NULL;
  case_instance_configuration(c, &s);
  return s;
}

static char *get_data(const case_instance *c) { return st_canon(c->st.data); }

/* Replays one journal row on v->c. */
static void replay_row(verifier *v, const sb_journal_row *r) {
  char why[512];
  int rc;
  case_engine *re = v->replay;
  if (r->revision == 0) {
    const case_def *d = replay_def(v, v->row->workflow, v->row->version, why, sizeof why);
    if (!d) {
      problem(v, r->seq, "replay", "%s", why);
      v->broken = 1;
      return;
    }
    const char *data = strcmp(r->payload, "null") == 0 ? NULL : r->payload;
    rc = case_instance_create(re, d, r->case_id, v->row->location, data, r->time, &v->c);
  } else if (!v->c) {
    problem(v, r->seq, "replay", "the journal does not start with the creation");
    v->broken = 1;
    return;
  } else if (!r->role && r->actor && strcmp(r->actor, TIMER_ACTOR) == 0) {
    int i = chart_timer_next(v->c, r->time);
    char *ev = i >= 0 ? st_timer_event(v->c, i) : NULL;
    if (i < 0 || !ev || strcmp(ev, r->event) != 0) {
      problem(v, r->seq, "replay", "timer event '%s' at %lld: replay has %s due", r->event,
              (long long)r->time, ev ? ev : "no timer");
      free(ev);
      v->broken = 1;
      return;
    }
    free(ev);
    int one = 0;
    rc = chart_tick_one(v->c, r->time, &one);
  } else {
    const char *payload = strcmp(r->payload, "null") == 0 ? NULL : r->payload;
    rc = case_instance_fire(v->c, r->event, payload, r->actor, r->role, r->time);
  }
  if (rc != CASE_OK) {
    problem(v, r->seq, "replay", "event '%s' fails in replay (%s): %s", r->event,
            case_errstr(rc), case_errmsg(re));
    v->broken = 1;
    return;
  }
  char *mine = NULL;
  if (!same_json(r->configuration, get_config, v->c, &mine)) {
    problem(v, r->seq, "replay", "configuration after '%s': journal %s, replay %s", r->event,
            r->configuration, mine ? mine : "?");
    v->broken = 1;
  }
  free(mine);
  mine = NULL;
  if (!v->broken && !same_json(r->data, get_data, v->c, &mine)) {
    problem(v, r->seq, "replay", "data after '%s': journal %.300s, replay %.300s", r->event,
            r->data, mine ? mine : "?");
    v->broken = 1;
  }
  free(mine);
}

static int verify_row(void *ud, const sb_journal_row *r) {
  verifier *v = ud;
  v->events++;
  v->last_seq = r->seq;
  char h[65];
  int rc = st_row_hash(r, h);
  if (rc == CASE_NOMEM) return rc;
  if (rc != CASE_OK)
    problem(v, r->seq, "hash", "revision %lld: a JSON column does not parse",
            (long long)r->revision);
  else if (strcmp(h, r->hash) != 0)
    problem(v, r->seq, "hash", "revision %lld: the row's content does not match its hash",
            (long long)r->revision);
  if (strcmp(r->prev_hash, v->prev) != 0)
    problem(v, r->seq, "chain", "revision %lld: prev_hash does not match the hash of the "
            "previous row of the case", (long long)r->revision);
  if (r->revision != v->next_revision)
    problem(v, r->seq, "chain", "revision %lld where %lld was expected", (long long)r->revision,
            (long long)v->next_revision);
  v->next_revision = r->revision + 1;
  snprintf(v->prev, sizeof v->prev, "%s", r->hash);
  snprintf(v->last_hash, sizeof v->last_hash, "%s", r->hash);
  if (!v->broken) replay_row(v, r);
  return v->nomem ? CASE_NOMEM : CASE_OK;
}

typedef struct id_list {
  char **v;
  int n, cap;
} id_list;

static int add_id(void *ud, const char *id) {
  id_list *l = ud;
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 16;
    char **p = realloc(l->v, (size_t)cap * sizeof *p);
    if (!p) return CASE_NOMEM;
    l->v = p;
    l->cap = cap;
  }
  if (!(l->v[l->n] = xstrdup(id))) return CASE_NOMEM;
  l->n++;
  return CASE_OK;
}

static int verify_case(verifier *v, const char *id) {
  sb_case_row row;
  int rc = v->s->ops->case_get(v->s->db, id, &row);
  if (rc != CASE_OK) return st_berr(v->s, rc);
  v->row = &row;
  v->c = NULL;
  v->broken = 0;
  v->next_revision = 0;
  v->last_seq = 0;
  v->prev[0] = v->last_hash[0] = '\0';
  rc = v->s->ops->journal_case(v->s->db, id, verify_row, v);
  if (rc == CASE_OK) {
    if (v->events == 0 || v->next_revision == 0)
      problem(v, 0, "chain", "the case has no journal rows");
    else if (strcmp(v->last_hash, row.last_hash) != 0)
      problem(v, v->last_seq, "chain", "the case row's last hash is not its last journal row's");
    if (v->next_revision - 1 != row.revision && v->next_revision > 0)
      problem(v, v->last_seq, "state", "the case is at revision %lld, its journal at %lld",
              (long long)row.revision, (long long)(v->next_revision - 1));
    else if (!v->broken && v->c) {
      char *snap = NULL;
      json_t *a = NULL, *b = st_parse_any(row.snapshot);
      if (case_instance_snapshot(v->c, &snap) == CASE_OK) a = st_parse_any(snap);
      if (!a || !b || !json_equal(a, b))
        problem(v, v->last_seq, "state", "the stored case differs from its replayed journal");
      json_decref(a);
      json_decref(b);
      free(snap);
    }
  } else if (rc != CASE_NOMEM) {
    st_berr(v->s, rc);
  }
  case_instance_free(v->c);
  v->c = NULL;
  sb_case_row_free(&row);
  return v->nomem ? CASE_NOMEM : rc;
}

int case_store_verify(case_store *s, char **report) {
  if (report) *report = NULL;
  if (!s) return CASE_MISUSE;
  case_engine *e = s->e;
  if (!report) return eng_err(e, CASE_MISUSE, "case_store_verify: report is NULL");
  verifier v;
  memset(&v, 0, sizeof v);
  v.s = s;
  v.problems = json_array();
  if (!v.problems) return st_nomem(e);
  id_list ids = {0};
  int rc = replay_open(&v);
  if (rc == CASE_OK) {
    rc = s->ops->begin(s->db, 0); /* one consistent read of the whole store */
    if (rc != CASE_OK) st_berr(s, rc);
  }
  /* Every stored definition must load and match its hash, used or not (they are
   * loaded lazily, so opening the store no longer checks them). */
  if (rc == CASE_OK) rc = st_load_defs(s, NULL, 0);
  if (rc == CASE_OK) {
    rc = s->ops->case_list(s->db, add_id, &ids);
    if (rc != CASE_OK) rc = rc == CASE_NOMEM ? st_nomem(e) : st_berr(s, rc);
  }
  long total = 0;
  for (int i = 0; rc == CASE_OK && i < ids.n; i++) {
    v.events = 0;
    rc = verify_case(&v, ids.v[i]);
    total += v.events;
    if (rc == CASE_NOMEM) st_nomem(e);
  }
  s->ops->rollback(s->db);
  replay_close(&v);
  for (int i = 0; i < ids.n; i++) free(ids.v[i]);
  free(ids.v);
  if (rc != CASE_OK) {
    json_decref(v.problems);
    return rc;
  }
  size_t np = json_array_size(v.problems);
  json_t *rep = json_pack("{s:i, s:I, s:o}", "cases", ids.n, "events", (json_int_t)total,
                          "problems", v.problems);
  char *text = rep ? json_dumps(rep, JSON_COMPACT) : NULL;
  json_decref(rep);
  if (!text) return st_nomem(e);
  *report = text;
  if (np == 0) return eng_ok(e);
  return eng_err(e, CASE_CORRUPT, "verify: %zu problem(s) found (see the report)", np);
}

