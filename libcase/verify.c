/*
 * verify.c — case_store_verify(): everything a store holds checked against the
 * journal (docs/store.md, "Verify").
 *
 *  1. The database's own checks: SQLite's integrity check, foreign keys, and
 *     the schema against the one the migrations make.
 *  2. The journal in seq order: no seq missing, every column readable, every
 *     row's hash recomputed, the Merkle tree recomputed from the rows and
 *     compared with the nodes stored with them (and with a checkpoint's root).
 *  3. Per case: the hash chain and revisions, then a replay on a separate
 *     engine; every derived table (the case row, its timers, its outbox rows)
 *     is compared with what the replay gives, column by column.
 *  4. Rows of other tables that name a case or journal row that is not there.
 *
 * A problem never stops the others: each is reported with its case, seq,
 * table and column, and verify goes on with the rest.
 */
#include "internal.h"
#include "libcase/store.h"
#include "store_backend.h"
#include "store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* More than this many problems are counted, not listed. */
#define MAX_PROBLEMS 1000

typedef struct id_list {
  char **v;
  int n, cap;
} id_list;

/* One notification as the store keeps it in the outbox. */
typedef struct note {
  int64_t seq;
  char *name, *payload; /* payload: canonical JSON text */
} note;

typedef struct verifier {
  case_store *s;
  case_engine *replay;      /* a separate engine: the host's cases stay untouched */
  json_t *problems;
  long nproblems;
  int nomem;
  int integrity;            /* 0 none, 1 quick_check, 2 integrity_check */
  id_list ids;              /* the case rows, in id order */
  id_list orphans;          /* cases with journal rows but no case row */
  /* the journal in seq order */
  int64_t rows;
  int64_t expected_seq;
  int scan_failed;
  mk_frontier tree;
  int tree_off;             /* rows are missing: stored nodes are no longer compared */
  int64_t tree_bad_from, tree_bad_to; /* the subtree of the last node reported */
  int have_cp;
  cp_head cp;
  int cp_reached;
  unsigned char cp_root[MK_HASH_LEN]; /* the recomputed root at the checkpoint's size */
  /* per case */
  const char *case_id;
  const sb_case_row *row;   /* NULL: the case has no case row */
  case_instance *c;         /* the replayed case */
  int broken;               /* replay stopped at a problem */
  long events;
  int64_t next_revision, last_seq;
  int64_t first_recorded, last_recorded;
  char prev[65], last_hash[65];
  note *notes;              /* notifications of the replay, in order */
  int nnotes, capnotes;
  int64_t cur_seq;          /* the row being replayed */
  int profile_start;        /* the profile version the case's replay starts on */
} verifier;

static void problem(verifier *v, const char *case_id, int64_t seq, const char *kind,
                    const char *table, const char *column, const char *fmt, ...)
    CASE_PRINTF(7, 8);

static void problem(verifier *v, const char *case_id, int64_t seq, const char *kind,
                    const char *table, const char *column, const char *fmt, ...) {
  v->nproblems++;
  if (v->nproblems > MAX_PROBLEMS) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* Texts that are not UTF-8 (a damaged row) are shown with U+FFFD. */
  json_t *p = json_object();
  if (!p || json_object_set_new(p, "case", case_id ? st_json_text(case_id) : json_null()) ||
      json_object_set_new(p, "seq", json_integer(seq)) ||
      json_object_set_new(p, "problem", json_string(kind)) ||
      json_object_set_new(p, "table", table ? json_string(table) : json_null()) ||
      json_object_set_new(p, "column", column ? json_string(column) : json_null()) ||
      json_object_set_new(p, "message", st_json_text(msg)) ||
      json_array_append_new(v->problems, p) != 0) {
    json_decref(p);
    v->nomem = 1;
  }
}

/* ------------------------------------------------------------------ */
/* Id lists                                                            */
/* ------------------------------------------------------------------ */

static int add_id(void *ud, const char *id) {
  id_list *l = ud;
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 16;
    char **p = realloc(l->v, (size_t)cap * sizeof *p);
    if (!p) return CASE_NOMEM;
    l->v = p;
    l->cap = cap;
  }
  if (!(l->v[l->n] = xstrdup(id ? id : ""))) return CASE_NOMEM;
  l->n++;
  return CASE_OK;
}

static void ids_free(id_list *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* Ids come from the store in id order (SQLite's BINARY collation is memcmp). */
static int has_id(const id_list *l, const char *id) {
  int lo = 0, hi = l->n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2, c = strcmp(l->v[mid], id);
    if (c == 0) return 1;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return 0;
}

static int has_id_linear(const id_list *l, const char *id) {
  for (int i = l->n - 1; i >= 0; i--)
    if (strcmp(l->v[i], id) == 0) return 1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* 1. The database's own checks                                        */
/* ------------------------------------------------------------------ */

static int on_finding(void *ud, const char *kind, const char *table, const char *message) {
  verifier *v = ud;
  problem(v, NULL, 0, kind, table, NULL, "%s", message);
  return v->nomem ? CASE_NOMEM : CASE_OK;
}

/* ------------------------------------------------------------------ */
/* 2. The journal in seq order                                         */
/* ------------------------------------------------------------------ */

/* Names the first column of row r that cannot be read, or NULL. */
static const char *bad_column(const sb_journal_row *r, const char **why) {
  static const char *const text_names[] = {"case_id", "event", "actor", "role", "prev_hash",
                                           "hash"};
  const char *text[] = {r->case_id, r->event, r->actor, r->role, r->prev_hash, r->hash};
  for (int i = 0; i < 6; i++)
    if (text[i] && utf8_problem(text[i], NULL)) {
      *why = "is not UTF-8";
      return text_names[i];
    }
  static const char *const json_names[] = {"payload", "configuration", "data"};
  const char *js[] = {r->payload, r->configuration, r->data};
  for (int i = 0; i < 3; i++) {
    if (utf8_problem(js[i], NULL)) {
      *why = "is not UTF-8";
      return json_names[i];
    }
    json_t *x = json_loads(js[i], JSON_DECODE_ANY, NULL);
    if (!x) {
      *why = "is not JSON";
      return json_names[i];
    }
    json_decref(x);
  }
  return NULL;
}

static int scan_row(void *ud, const sb_journal_row *r) {
  verifier *v = ud;
  case_store *s = v->s;
  v->rows++;
  if (r->seq != v->expected_seq) {
    if (r->seq > v->expected_seq)
      problem(v, r->case_id, r->seq, "order", "journal", "seq",
              "seq %lld follows seq %lld: %lld journal row(s) are missing", (long long)r->seq,
              (long long)v->expected_seq - 1, (long long)(r->seq - v->expected_seq));
    if (!v->tree_off)
      problem(v, r->case_id, r->seq, "tree", "journal", "node",
              "the tree nodes from seq %lld on are not compared: rows before it are missing",
              (long long)r->seq);
    v->tree_off = 1;
  }
  v->expected_seq = r->seq + 1;
  if (!has_id(&v->ids, r->case_id) && !has_id_linear(&v->orphans, r->case_id)) {
    if (add_id(&v->orphans, r->case_id) != CASE_OK) return CASE_NOMEM;
    problem(v, r->case_id, r->seq, "missing", "cases", NULL,
            "the case has journal rows (the first at seq %lld) but no case row",
            (long long)r->seq);
  }
  /* The row's hash, recomputed from its content. */
  char h[65];
  const char *why = NULL, *col = bad_column(r, &why);
  const char *row_hash = r->hash;
  if (col) {
    problem(v, r->case_id, r->seq, "corrupt", "journal", col, "revision %lld: %s %s",
            (long long)r->revision, col, why);
    if (utf8_problem(r->hash, NULL)) row_hash = ""; /* the leaf goes on without it */
  } else {
    int rc = st_row_hash(r, h);
    if (rc == CASE_NOMEM) return rc;
    if (rc != CASE_OK)
      problem(v, r->case_id, r->seq, "corrupt", "journal", NULL,
              "revision %lld: the row cannot be serialised", (long long)r->revision);
    else {
      if (strcmp(h, r->hash) != 0)
        problem(v, r->case_id, r->seq, "hash", "journal", "hash",
                "revision %lld: the row's content does not match its hash",
                (long long)r->revision);
      row_hash = h;
    }
  }
  /* Its leaf and the tree. */
  st_pinbuf pin;
  int have_pin = 0;
  if (r->revision == 0) {
    int rc = st_pin_of_case(s, r->case_id, 1, &pin);
    if (rc == CASE_OK) have_pin = 1;
    else if (rc == CASE_NOMEM) return rc;
    else if (rc != CASE_NOTFOUND)
      problem(v, r->case_id, r->seq, "integrity", "cases", NULL,
              "the case row cannot be read: %s", s->ops->errmsg(s->db));
  }
  unsigned char leaf[MK_HASH_LEN], node[MK_HASH_LEN];
  int rc = st_leaf_hash(&s->h, r->seq, r->recorded, row_hash, have_pin ? &pin.pin : NULL, leaf);
  if (have_pin) st_pin_free(&pin);
  if (rc == CASE_CORRUPT) {
    problem(v, r->case_id, r->seq, "corrupt", "cases", NULL,
            "the case row's workflow or location is not UTF-8");
    memset(leaf, 0, sizeof leaf);
  } else if (rc != CASE_OK) {
    return rc;
  }
  int level = 0;
  if (mk_frontier_add(&s->h, &v->tree, leaf, node, &level) != 0) return CASE_NOMEM;
  if (v->have_cp && v->tree.size == (uint64_t)v->cp.size) {
    if (mk_frontier_root(&s->h, &v->tree, v->cp_root) != 0) return CASE_NOMEM;
    v->cp_reached = 1;
  }
  if (!v->tree_off) {
    int64_t from = r->seq - ((int64_t)1 << level) + 1;
    int covered = v->tree_bad_to >= from && v->tree_bad_from <= r->seq;
    if (!r->node) {
      problem(v, r->case_id, r->seq, "tree", "journal", "node", "no tree node is stored");
    } else if (r->node_len != MK_HASH_LEN || memcmp(r->node, node, MK_HASH_LEN) != 0) {
      if (!covered)
        problem(v, r->case_id, r->seq, "tree", "journal", "node",
                "the stored tree node (rows %lld to %lld) differs from the one the rows give: "
                "a row in that range was changed, or the node",
                (long long)from, (long long)r->seq);
      v->tree_bad_from = from;
      v->tree_bad_to = r->seq;
    }
  }
  return v->nomem ? CASE_NOMEM : CASE_OK;
}

/* ------------------------------------------------------------------ */
/* 3. Per case: chain, replay, derived tables                          */
/* ------------------------------------------------------------------ */

/* A definition the replay needs that it has not loaded (a child case's, which
 * an invoke finds by workflow id): the host's copy of it (the same pinned text). */
static int replay_need(void *ud, const char *id, int version) {
  verifier *v = ud;
  case_engine *host = v->s->e;
  for (const case_def *h = host->defs; h; h = h->next)
    if (strcmp(h->id, id) == 0 && (version <= 0 || h->version == version))
      eng_replay_def(v->replay, h); /* a failure shows when it is used */
  return CASE_OK;
}

static int replay_open(verifier *v) {
  /* the stored profiles, for cases pinned to no version (loaded lazily) */
  int rc = st_need_profiles(v->s, NULL);
  if (rc != CASE_OK) return rc;
  rc = eng_replay_open(v->s->e, &v->replay);
  if (rc != CASE_OK) return eng_err(v->s->e, rc, "verify: %s", case_errmsg(v->s->e));
  /* Each case's journal is replayed on its own: what a case sent another is in
   * the other's journal, never delivered here. */
  v->replay->manual_mail = 1;
  if (eng_def_source_add(v->replay, replay_need, v) != CASE_OK)
    return eng_err(v->s->e, CASE_NOMEM, "out of memory");
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

static void notes_clear(verifier *v) {
  for (int i = 0; i < v->nnotes; i++) {
    free(v->notes[i].name);
    free(v->notes[i].payload);
  }
  v->nnotes = 0;
}

/* The replay engine's notification callback: what the store would put in the outbox. */
static void on_note(void *ud, const case_instance *c, const char *name, const char *payload) {
  CASE_UNUSED(c);
  verifier *v = ud;
  if (v->nnotes == v->capnotes) {
    int cap = v->capnotes ? 2 * v->capnotes : 8;
    note *p = realloc(v->notes, (size_t)cap * sizeof *p);
    if (!p) {
      v->nomem = 1;
      return;
    }
    v->notes = p;
    v->capnotes = cap;
  }
  json_t *j = st_parse_any(payload);
  note *n = &v->notes[v->nnotes];
  n->seq = v->cur_seq;
  n->name = xstrdup(name);
  n->payload = j ? st_canon(j) : NULL;
  json_decref(j);
  if (!n->name || !n->payload) {
    free(n->name);
    free(n->payload);
    v->nomem = 1;
    return;
  }
  v->nnotes++;
}

static int same_json(const char *text, const char *mine) {
  json_t *a = st_parse_any(text), *b = mine ? st_parse_any(mine) : NULL;
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

/* Replays one journal row on v->c. */
static void replay_row_at(verifier *v, const sb_journal_row *r);

/* A row replays with the calendar as it was when the row was recorded: a
 * holiday stored later (holidays.added) did not count for it live. */
static void replay_row(verifier *v, const sb_journal_row *r) {
  cal_set_asof(v->replay->calendar, r->recorded);
  replay_row_at(v, r);
  cal_set_asof(v->replay->calendar, INT64_MAX);
}

static void replay_row_at(verifier *v, const sb_journal_row *r) {
  char why[512];
  int rc;
  case_engine *re = v->replay;
  v->cur_seq = r->seq;
  if (r->revision == 0) {
    const case_def *d = replay_def(v, v->row->workflow, v->row->version, why, sizeof why);
    if (!d) {
      problem(v, v->case_id, r->seq, "replay", "cases", "workflow", "%s", why);
      v->broken = 1;
      return;
    }
    const char *data = strcmp(r->payload, "null") == 0 ? NULL : r->payload;
    /* On the profile version it was created with (the case row's profile_first;
     * a profile row later in the journal moves it on). */
    const cs_profile *p = NULL;
    rc = st_profile_version(v->s, re, v->row->location, v->profile_start, &p);
    if (rc != CASE_OK) {
      problem(v, v->case_id, r->seq, "replay", "cases", "profile_first",
              "profile '%s' version %d does not load for replay: %s",
              v->row->location ? v->row->location : "", v->profile_start, case_errmsg(re));
      v->broken = 1;
      return;
    }
    size_t np = r->actor && strncmp(r->actor, "#_scxml_", 8) == 0 ? strlen(r->actor + 8) : 0;
    if (np && !r->role && strncmp(r->case_id, r->actor + 8, np) == 0 && r->case_id[np] == '.') {
      /* a child case its parent invoked: "<parent>.<invokeid>" */
      json_t *given = data ? json_loads(data, JSON_DECODE_ANY, NULL) : NULL;
      char *parent = xstrndup(r->actor + 8, np);
      rc = parent ? chart_case_create_pinned(re, d, r->case_id, v->row->location, p, given,
                                             parent, r->case_id + np + 1, r->time, &v->c)
                  : CASE_NOMEM;
      free(parent);
      json_decref(given);
    } else {
      rc = eng_instance_create(re, d, r->case_id, v->row->location, p, data, r->time, &v->c);
    }
    if (rc == CASE_OK) {
      v->c->profile_version = p ? v->profile_start : 0;
      v->c->profile_first = v->row->profile_first;
    }
  } else if (!v->c) {
    problem(v, v->case_id, r->seq, "replay", "journal", "revision",
            "the journal does not start with the creation");
    v->broken = 1;
    return;
  } else if (!r->role && r->actor && strcmp(r->actor, TIMER_ACTOR) == 0) {
    int i = chart_timer_next(v->c, r->time);
    char *ev = i >= 0 ? st_timer_event(v->c, i) : NULL;
    if (i < 0 || !ev || strcmp(ev, r->event) != 0) {
      problem(v, v->case_id, r->seq, "replay", "journal", "event",
              "timer event '%s' at %lld: replay has %s due", r->event, (long long)r->time,
              ev ? ev : "no timer");
      free(ev);
      v->broken = 1;
      return;
    }
    free(ev);
    int one = 0;
    rc = chart_tick_one(v->c, r->time, &one);
  } else if (strcmp(r->event, PROFILE_EVENT) == 0) {
    /* case_store_set_profile(): the case moves to another profile version. */
    json_t *pl = st_parse_any(r->payload);
    const char *hash = json_string_value(json_object_get(pl, "hash"));
    int to = (int)json_integer_value(json_object_get(pl, "to"));
    int from = (int)json_integer_value(json_object_get(pl, "from"));
    const cs_profile *p = NULL;
    rc = CASE_CORRUPT;
    if (!hash || to <= 0 || from != v->c->profile_version)
      problem(v, v->case_id, r->seq, "replay", "journal", "payload",
              "profile change from version %d to %d: the case was on version %d", from, to,
              v->c->profile_version);
    else if ((rc = st_profile_version(v->s, re, v->row->location, to, &p)) != CASE_OK)
      problem(v, v->case_id, r->seq, "replay", "profiles", "source",
              "profile '%s' version %d does not load for replay: %s",
              v->row->location ? v->row->location : "", to, case_errmsg(re));
    else if (strcmp(p->hash, hash) != 0)
      problem(v, v->case_id, r->seq, "replay", "profiles", "hash",
              "profile '%s' version %d: the journal names text %.12s, the store holds %.12s",
              v->row->location, to, hash, p->hash), rc = CASE_CORRUPT;
    else if (r->time < v->c->st.last_time)
      problem(v, v->case_id, r->seq, "replay", "journal", "time",
              "profile change at %lld before the case's last event", (long long)r->time),
          rc = CASE_CORRUPT;
    else
      st_apply_profile(v->c, p, to, r->time);
    json_decref(pl);
    if (rc != CASE_OK) {
      v->broken = 1;
      return;
    }
  } else if (!r->role && r->actor && strncmp(r->actor, "#_scxml_", 8) == 0) {
    /* delivered by another case (its data and _event fields in the payload) */
    rc = chart_replay_delivery(v->c, r->event, r->payload, r->actor, r->time);
  } else {
    const char *payload = strcmp(r->payload, "null") == 0 ? NULL : r->payload;
    rc = case_instance_fire(v->c, r->event, payload, r->actor, r->role, r->time);
  }
  json_decref(re->mail); /* what it sent is in the receivers' journals */
  re->mail = NULL;
  if (rc != CASE_OK) {
    problem(v, v->case_id, r->seq, "replay", "journal", "event",
            "event '%s' fails in replay (%s): %s", r->event, case_errstr(rc), case_errmsg(re));
    v->broken = 1;
    return;
  }
  char *mine = get_config(v->c);
  if (!same_json(r->configuration, mine)) {
    problem(v, v->case_id, r->seq, "replay", "journal", "configuration",
            "configuration after '%s': journal %.300s, replay %.300s", r->event,
            r->configuration, mine ? mine : "?");
    v->broken = 1;
  }
  free(mine);
  if (!v->broken) {
    json_t *data = data_json(v->c->st.data, v->c->def);
    mine = data ? st_canon(data) : NULL;
    json_decref(data);
    if (!same_json(r->data, mine)) {
      problem(v, v->case_id, r->seq, "replay", "journal", "data",
              "data after '%s': journal %.300s, replay %.300s", r->event, r->data,
              mine ? mine : "?");
      v->broken = 1;
    }
    free(mine);
  }
  /* The case as the row stores it for loading (schema 10; not hashed): what a
   * fire after this row would start from.  Rows from before schema 10 have
   * none, except each case's latest (check_case_row). */
  if (!v->broken && r->state) {
    if ((r->done != 0) != (v->c->st.done != 0))
      problem(v, v->case_id, r->seq, "state", "journal", "done",
              "done is %d after '%s', the replay gives %d", r->done, r->event,
              v->c->st.done != 0);
    char *st = NULL;
    if (eng_instance_state(v->c, &st) != CASE_OK) {
      v->nomem = 1;
      return;
    }
    if (strcmp(st, r->state) != 0 && !same_json(r->state, st))
      problem(v, v->case_id, r->seq, "state", "journal", "state",
              "the stored state after '%s' differs from the replay's: %.300s", r->event, st);
    free(st);
  }
}

static int case_row(void *ud, const sb_journal_row *r) {
  verifier *v = ud;
  v->events++;
  if (r->revision != v->next_revision)
    problem(v, v->case_id, r->seq, "chain", "journal", "revision",
            "revision %lld where %lld was expected", (long long)r->revision,
            (long long)v->next_revision);
  if (v->last_seq && r->seq < v->last_seq)
    problem(v, v->case_id, r->seq, "order", "journal", "seq",
            "revision %lld has seq %lld, before the seq %lld of the revision before it: the "
            "journal's order was changed",
            (long long)r->revision, (long long)r->seq, (long long)v->last_seq);
  if (!r->prev_hash || strcmp(r->prev_hash, v->prev) != 0)
    problem(v, v->case_id, r->seq, "chain", "journal", "prev_hash",
            "revision %lld: prev_hash does not match the hash of the previous row of the case",
            (long long)r->revision);
  if (r->revision == 0) v->first_recorded = r->recorded;
  v->last_recorded = r->recorded;
  v->next_revision = r->revision + 1;
  v->last_seq = r->seq;
  snprintf(v->prev, sizeof v->prev, "%s", r->hash);
  snprintf(v->last_hash, sizeof v->last_hash, "%s", r->hash);
  const char *why;
  if (bad_column(r, &why)) v->broken = 1; /* reported by the scan */
  if (!v->broken && v->row) replay_row(v, r);
  return v->nomem ? CASE_NOMEM : CASE_OK;
}

/* The timer rows the store would write for the replayed case. */
typedef struct timer_cmp {
  verifier *v;
  int *seen; /* per replayed timer */
} timer_cmp;

static int timer_index(const case_instance *c, const char *id) {
  for (int i = 0; id && i < c->st.ntimers; i++)
    if (strcmp(c->st.timers[i].id, id) == 0) return i;
  return -1;
}

static int on_timer_row(void *ud, const sb_timer_row *t) {
  timer_cmp *k = ud;
  verifier *v = k->v;
  const case_instance *c = v->c;
  int i = c->st.done ? -1 : timer_index(c, t->timer_id);
  if (i < 0) {
    problem(v, v->case_id, v->last_seq, "timers", "timers", "timer_id",
            "timer row '%s' (%s %s due %lld) is not a running timer of the case",
            t->timer_id ? t->timer_id : "?", t->kind ? t->kind : "?", t->name ? t->name : "?",
            (long long)t->due);
    return v->nomem ? CASE_NOMEM : CASE_OK;
  }
  if (k->seen[i]++) {
    problem(v, v->case_id, v->last_seq, "timers", "timers", "timer_id",
            "timer '%s' has more than one row", t->timer_id);
    return v->nomem ? CASE_NOMEM : CASE_OK;
  }
  const cs_timer_inst *ti = &c->st.timers[i];
  const cs_timer *tm = &c->def->timers[ti->timer];
  const char *kind = chart_timer_kind(tm), *tname = chart_timer_name(c->def, ti);
  char day[11] = "";
  if (ti->last_day != CAL_NO_DAY) cal_format_date(ti->last_day, day);
  const char *col = NULL;
  char want[64] = "", got[64] = "";
  if (t->seq != ti->seq) {
    col = "seq";
    snprintf(want, sizeof want, "%lld", (long long)ti->seq);
    snprintf(got, sizeof got, "%lld", (long long)t->seq);
  } else if (!t->kind || strcmp(t->kind, kind) != 0) {
    col = "kind";
    snprintf(want, sizeof want, "%s", kind);
    snprintf(got, sizeof got, "%.60s", t->kind ? t->kind : "NULL");
  } else if (!t->name || strcmp(t->name, tname) != 0) {
    col = "name";
    snprintf(want, sizeof want, "%.60s", tname);
    snprintf(got, sizeof got, "%.60s", t->name ? t->name : "NULL");
  } else if (t->due != ti->due) {
    col = "due";
    snprintf(want, sizeof want, "%lld", (long long)ti->due);
    snprintf(got, sizeof got, "%lld", (long long)t->due);
  } else if (strcmp(t->last_day ? t->last_day : "", day) != 0) {
    col = "last_day";
    snprintf(want, sizeof want, "%s", day[0] ? day : "NULL");
    snprintf(got, sizeof got, "%.60s", t->last_day ? t->last_day : "NULL");
  } else if ((t->fired != 0) != (ti->fired != 0)) {
    col = "fired";
    snprintf(want, sizeof want, "%d", ti->fired != 0);
    snprintf(got, sizeof got, "%d", t->fired);
  }
  if (col)
    problem(v, v->case_id, v->last_seq, "timers", "timers", col,
            "timer '%s' (%s %s): %s is %s, the replayed journal gives %s", ti->id, kind,
            tname, col, got, want);
  return v->nomem ? CASE_NOMEM : CASE_OK;
}

static void check_timers(verifier *v) {
  case_store *s = v->s;
  const case_instance *c = v->c;
  int n = c->st.done ? 0 : c->st.ntimers;
  timer_cmp k = {v, calloc((size_t)(n ? n : 1), sizeof(int))};
  if (!k.seen) {
    v->nomem = 1;
    return;
  }
  int rc = s->ops->timers_case(s->db, v->case_id, on_timer_row, &k);
  if (rc == CASE_NOMEM) v->nomem = 1;
  else if (rc != CASE_OK)
    problem(v, v->case_id, v->last_seq, "integrity", "timers", NULL,
            "the timer rows cannot be read: %s", s->ops->errmsg(s->db));
  else
    for (int i = 0; i < n; i++) {
      if (k.seen[i]) continue;
      const cs_timer_inst *ti = &c->st.timers[i];
      const cs_timer *tm = &c->def->timers[ti->timer];
      problem(v, v->case_id, v->last_seq, "timers", "timers", NULL,
              "timer '%s' (%s %s, due %lld%s) has no row: the store would never fire it",
              ti->id, chart_timer_kind(tm), chart_timer_name(c->def, ti),
              (long long)ti->due, ti->fired ? ", fired" : "");
    }
  free(k.seen);
}

typedef struct outbox_cmp {
  verifier *v;
  int next;
} outbox_cmp;

static int on_outbox_row(void *ud, const sb_outbox_row *o) {
  outbox_cmp *k = ud;
  verifier *v = k->v;
  if (k->next >= v->nnotes) {
    problem(v, v->case_id, o->seq, "outbox", "outbox", "id",
            "outbox row %lld ('%s') is no notification of the replayed journal", (long long)o->id,
            o->name ? o->name : "?");
    return v->nomem ? CASE_NOMEM : CASE_OK;
  }
  const note *n = &v->notes[k->next++];
  const char *col = NULL;
  if (o->seq != n->seq) col = "seq";
  else if (!o->name || strcmp(o->name, n->name) != 0) col = "name";
  else if (!same_json(o->payload, n->payload)) col = "payload";
  if (col)
    problem(v, v->case_id, o->seq, "outbox", "outbox", col,
            "outbox row %lld: the replayed journal gives notification '%s' at seq %lld with "
            "payload %.200s",
            (long long)o->id, n->name, (long long)n->seq, n->payload);
  return v->nomem ? CASE_NOMEM : CASE_OK;
}

static void check_outbox(verifier *v) {
  case_store *s = v->s;
  outbox_cmp k = {v, 0};
  int rc = s->ops->outbox_case(s->db, v->case_id, on_outbox_row, &k);
  if (rc == CASE_NOMEM) {
    v->nomem = 1;
    return;
  }
  if (rc != CASE_OK) {
    problem(v, v->case_id, v->last_seq, "integrity", "outbox", NULL,
            "the outbox rows cannot be read: %s", s->ops->errmsg(s->db));
    return;
  }
  for (int i = k.next; i < v->nnotes; i++)
    problem(v, v->case_id, v->notes[i].seq, "outbox", "outbox", NULL,
            "notification '%s' of seq %lld has no outbox row: it was never delivered",
            v->notes[i].name, (long long)v->notes[i].seq);
}

/* The case row against the journal and the replay, column by column. */
static void check_case_row(verifier *v) {
  const sb_case_row *row = v->row;
  case_store *s = v->s;
  int64_t last_rev = v->next_revision - 1;
  if (row->revision < 0) return; /* no journal row: reported as missing */
  if (!row->last_hash || strcmp(v->last_hash, row->last_hash) != 0)
    problem(v, v->case_id, v->last_seq, "state", "cases", "last_hash",
            "the case row's last hash is not its last journal row's");
  if (last_rev != row->revision)
    problem(v, v->case_id, v->last_seq, "state", "cases", "revision",
            "the case is at revision %lld, its journal at %lld", (long long)row->revision,
            (long long)last_rev);
  if (row->created != v->first_recorded)
    problem(v, v->case_id, v->last_seq, "state", "cases", "created",
            "created is %lld, the creation row was recorded at %lld", (long long)row->created,
            (long long)v->first_recorded);
  if (row->updated != v->last_recorded)
    problem(v, v->case_id, v->last_seq, "state", "cases", "updated",
            "updated is %lld, the last journal row was recorded at %lld",
            (long long)row->updated, (long long)v->last_recorded);
  char *hash = NULL, *mods = NULL;
  int rc = st_def_texts(s, row->workflow, row->version, &hash, &mods);
  if (rc == CASE_NOMEM) {
    v->nomem = 1;
    return;
  }
  if (rc == CASE_OK && strcmp(hash, row->hash) != 0)
    problem(v, v->case_id, v->last_seq, "state", "cases", "hash",
            "the case row's definition hash is not the one of workflow '%s' version %d",
            row->workflow, row->version);
  free(hash);
  free(mods);
  if (v->broken || !v->c) return;
  char *cfg = get_config(v->c);
  if (!same_json(row->configuration, cfg))
    problem(v, v->case_id, v->last_seq, "state", "journal", "configuration",
            "configuration is %.300s, the replayed journal gives %.300s", row->configuration,
            cfg ? cfg : "?");
  free(cfg);
  /* The case as a fire loads it is its latest journal row (schema 10), whose
   * done and state replay_row() compared; a row without state cannot be
   * loaded at all. */
  if (!row->state)
    problem(v, v->case_id, row->last_seq, "state", "journal", "state",
            "the case's latest journal row (seq %lld) has no state: the case cannot be loaded",
            (long long)row->last_seq);
  if (v->c->profile_version != row->profile_version)
    problem(v, v->case_id, v->last_seq, "state", "cases", "profile_version",
            "the case is pinned to profile version %d, its journal leaves it on version %d",
            row->profile_version, v->c->profile_version);
  check_timers(v);
  check_outbox(v);
}

static int verify_case(verifier *v, const char *id, int has_row) {
  case_store *s = v->s;
  sb_case_row row;
  memset(&row, 0, sizeof row);
  v->case_id = id;
  v->row = NULL;
  if (has_row) {
    int rc = s->ops->case_get(s->db, id, &row);
    if (rc == CASE_NOMEM) return st_nomem(s->e);
    if (rc != CASE_OK) {
      problem(v, id, 0, "integrity", "cases", NULL, "the case row cannot be read: %s",
              s->ops->errmsg(s->db));
      return v->nomem ? CASE_NOMEM : CASE_OK;
    }
    v->row = &row;
  }
  v->c = NULL;
  v->broken = 0;
  v->next_revision = 0;
  v->last_seq = 0;
  v->first_recorded = v->last_recorded = 0;
  v->prev[0] = v->last_hash[0] = '\0';
  notes_clear(v);
  v->replay->notify = on_note;
  v->replay->notify_ud = v;
  v->profile_start = 0;
  int rc = v->row ? st_profile_start(s, id, v->row->profile_first, v->row->profile_version,
                                     &v->profile_start)
                  : CASE_OK;
  if (rc == CASE_OK) rc = s->ops->journal_case(s->db, id, case_row, v);
  if (rc == CASE_NOMEM || v->nomem) {
    rc = CASE_NOMEM;
  } else if (rc != CASE_OK) {
    problem(v, id, v->last_seq, "integrity", "journal", NULL,
            "the journal of the case cannot be read: %s", s->ops->errmsg(s->db));
    rc = CASE_OK;
  } else if (v->row) {
    if (v->next_revision == 0)
      problem(v, id, 0, "missing", "journal", NULL, "the case has no journal rows");
    else
      check_case_row(v);
  }
  case_instance_free(v->c);
  v->c = NULL;
  sb_case_row_free(&row);
  if (v->nomem) rc = CASE_NOMEM;
  return rc == CASE_NOMEM ? st_nomem(s->e) : CASE_OK;
}

/* ------------------------------------------------------------------ */
/* 4. Rows that name what is not there                                 */
/* ------------------------------------------------------------------ */

static int on_orphan(void *ud, const char *table, const char *case_id, int64_t n) {
  verifier *v = ud;
  problem(v, case_id, 0, "missing", table, "case_id",
          "%lld %s row(s) of a case that has no case row", (long long)n, table);
  return v->nomem ? CASE_NOMEM : CASE_OK;
}

typedef struct idem_check {
  verifier *v;
  const char *key, *case_id;
  int64_t seq;
} idem_check;

static int on_idem_target(void *ud, const sb_journal_row *r) {
  idem_check *k = ud;
  if (strcmp(r->case_id, k->case_id) != 0)
    problem(k->v, k->case_id, k->seq, "idempotency", "idempotency", "seq",
            "key '%.100s' names seq %lld, a row of case '%.100s'", k->key, (long long)k->seq,
            r->case_id);
  return k->v->nomem ? CASE_NOMEM : CASE_OK;
}

static int on_idem(void *ud, const char *key, const char *case_id, int64_t seq) {
  verifier *v = ud;
  idem_check k = {v, key ? key : "", case_id ? case_id : "", seq};
  int rc = v->s->ops->journal_get(v->s->db, seq, on_idem_target, &k);
  if (rc == CASE_NOTFOUND)
    problem(v, k.case_id, seq, "idempotency", "idempotency", "seq",
            "key '%.100s' names seq %lld, which is not in the journal", k.key, (long long)seq);
  else if (rc != CASE_OK)
    return rc;
  return v->nomem ? CASE_NOMEM : CASE_OK;
}

/* ------------------------------------------------------------------ */
/* Checkpoints                                                         */
/* ------------------------------------------------------------------ */

static int subtree_fn(void *ud, int level, uint64_t index, unsigned char out[MK_HASH_LEN]) {
  return st_tree_subtree(ud, level, index, out);
}

/* The checkpoint against the tree the rows give; its part of the report. */
static json_t *check_checkpoint(verifier *v, const unsigned char key[32], int have_key,
                                const unsigned char root[MK_HASH_LEN]) {
  case_store *s = v->s;
  const cp_head *cp = &v->cp;
  char hex[65];
  mk_to_hex(cp->root, hex);
  json_t *out = json_pack("{s:s, s:I, s:I, s:s}", "origin", cp->origin, "size",
                          (json_int_t)cp->size, "time", (json_int_t)cp->time, "root", hex);
  if (!out) {
    v->nomem = 1;
    return NULL;
  }
  char khex[65];
  mk_to_hex(cp->key, khex);
  json_object_set_new(out, "key", json_string(khex));
  int sig = cp_signature_valid(cp);
  if (sig < 0) v->nomem = 1;
  json_object_set_new(out, "signature", json_string(sig > 0 ? "valid" : "invalid"));
  if (sig == 0)
    problem(v, NULL, 0, "checkpoint", NULL, NULL,
            "the checkpoint's signature is not valid for its key: it was altered or forged");
  json_object_set_new(out, "trusted_key", json_boolean(have_key));
  if (have_key && memcmp(key, cp->key, 32) != 0)
    problem(v, NULL, 0, "checkpoint", NULL, NULL,
            "the checkpoint was signed with key %.16s..., not with the public key given", khex);
  char *origin = NULL;
  int rc = s->ops->meta_get(s->db, "store_id", &origin);
  if (rc == CASE_NOMEM) v->nomem = 1;
  if (rc != CASE_OK || strcmp(origin, cp->origin) != 0)
    problem(v, NULL, 0, "checkpoint", "meta", "value",
            "the checkpoint is of store '%s', this store is '%s'", cp->origin,
            origin ? origin : "(no id)");
  free(origin);
  int consistent = 0;
  if (!v->cp_reached) {
    problem(v, NULL, cp->size, "checkpoint", "journal", NULL,
            "the checkpoint covers %lld journal rows, the journal has %lld: rows were removed",
            (long long)cp->size, (long long)v->rows);
  } else if (memcmp(v->cp_root, cp->root, MK_HASH_LEN) != 0) {
    problem(v, NULL, cp->size, "checkpoint", "journal", NULL,
            "the first %lld journal rows do not give the checkpoint's root: a row before the "
            "checkpoint was changed, removed, added or moved",
            (long long)cp->size);
  } else {
    consistent = 1;
  }
  /* The holidays the covered rows were computed with (a v2 checkpoint signs
   * them): one added, removed or dated back moves terms without changing a row,
   * and the replay with the derived tables rewritten to match would not see it. */
  if (cp->has_calendar && v->cp_reached) {
    unsigned char cal[MK_HASH_LEN];
    int n = 0;
    rc = st_calendar_hash(s, cp->size, cal, &n);
    if (rc == CASE_NOMEM) v->nomem = 1;
    int same = rc == CASE_OK && memcmp(cal, cp->calendar, MK_HASH_LEN) == 0;
    json_object_set_new(out, "calendar", json_string(same ? "matches" : "differs"));
    if (!same) {
      consistent = 0;
      problem(v, NULL, cp->size, "checkpoint", "holidays", NULL,
              "the holidays that count for the first %lld journal rows (%d stored with an "
              "'added' up to row %lld's recorded time) are not those the checkpoint was signed "
              "with: a holiday was added, removed or dated back",
              (long long)cp->size, n, (long long)cp->size);
    }
  } else {
    json_object_set_new(out, "calendar", cp->has_calendar ? json_string("not checked")
                                                          : json_null());
  }
  json_object_set_new(out, "consistent", json_boolean(consistent && sig > 0));
  /* The consistency proof a third party can check with the old head alone. */
  if (consistent && v->tree.size >= (uint64_t)cp->size) {
    unsigned char p[MK_MAX_PATH][MK_HASH_LEN];
    int n = 0;
    rc = mk_consistency_proof(&s->h, subtree_fn, s, (uint64_t)cp->size, v->tree.size, p, &n);
    int ok = rc == 0 ? mk_check_consistency(&s->h, (uint64_t)cp->size, cp->root, v->tree.size,
                                            root, p, n)
                     : 0;
    if (ok < 0) v->nomem = 1;
    if (ok == 1) {
      json_t *a = json_array();
      for (int i = 0; a && i < n; i++) {
        mk_to_hex(p[i], hex);
        json_array_append_new(a, json_string(hex));
      }
      json_object_set_new(out, "proof", a ? a : json_null());
    } else {
      problem(v, NULL, 0, "tree", "journal", "node",
              "no consistency proof from the stored tree nodes: they do not match the rows");
    }
  }
  return out;
}

/* ------------------------------------------------------------------ */
/* The whole store                                                     */
/* ------------------------------------------------------------------ */

static int parse_options(verifier *v, const char *options_json, unsigned char key[32],
                         int *have_key) {
  case_engine *e = v->s->e;
  v->integrity = 2;
  *have_key = 0;
  if (!options_json) return CASE_OK;
  json_error_t jerr;
  json_t *o = json_loads(options_json, 0, &jerr);
  if (!json_is_object(o)) {
    json_decref(o);
    return eng_err(e, CASE_INVALID, "verify options: not a JSON object");
  }
  const char *k;
  json_t *val;
  int rc = CASE_OK;
  json_object_foreach(o, k, val) {
    if (strcmp(k, "integrity") == 0) {
      const char *m = json_string_value(val);
      if (m && strcmp(m, "full") == 0) v->integrity = 2;
      else if (m && strcmp(m, "quick") == 0) v->integrity = 1;
      else if (m && strcmp(m, "none") == 0) v->integrity = 0;
      else rc = eng_err(e, CASE_INVALID, "verify options: integrity is \"full\", \"quick\" or \"none\"");
    } else if (strcmp(k, "checkpoint") == 0) {
      char err[300];
      if (!json_is_string(val))
        rc = eng_err(e, CASE_INVALID, "verify options: checkpoint is the checkpoint's text");
      else if (cp_parse(json_string_value(val), &v->cp, err, sizeof err) != CASE_OK)
        rc = eng_err(e, CASE_INVALID, "verify options: checkpoint: %s", err);
      else
        v->have_cp = 1;
    } else if (strcmp(k, "public_key") == 0) {
      char err[300];
      if (!json_is_string(val))
        rc = eng_err(e, CASE_INVALID, "verify options: public_key is PEM text");
      else if (cp_pubkey_pem(json_string_value(val), key, err, sizeof err) != CASE_OK)
        rc = eng_err(e, CASE_INVALID, "verify options: public_key: %s", err);
      else
        *have_key = 1;
    } else {
      rc = eng_err(e, CASE_INVALID, "verify options: unknown key '%s'", k);
    }
    if (rc != CASE_OK) break;
  }
  json_decref(o);
  if (rc == CASE_OK && *have_key && !v->have_cp)
    rc = eng_err(e, CASE_INVALID, "verify options: public_key without a checkpoint");
  return rc;
}

int case_store_verify_v2(case_store *s, const char *options_json, char **report) {
  if (report) *report = NULL;
  if (!s) return CASE_MISUSE;
  case_engine *e = s->e;
  if (!report) return eng_err(e, CASE_MISUSE, "case_store_verify: report is NULL");
  verifier v;
  memset(&v, 0, sizeof v);
  v.s = s;
  unsigned char key[32];
  int have_key = 0;
  int rc = parse_options(&v, options_json, key, &have_key);
  if (rc != CASE_OK) return rc;
  v.problems = json_array();
  if (!v.problems) return st_nomem(e);
  mk_frontier_init(&v.tree);
  v.expected_seq = 1;
  json_t *cpj = NULL;
  long total = 0;
  rc = replay_open(&v);
  if (rc == CASE_OK) {
    rc = s->ops->begin(s->db, 0); /* one consistent read of the whole store */
    if (rc != CASE_OK) st_berr(s, rc);
  }
  /* 1 */
  if (rc == CASE_OK && v.integrity) {
    rc = s->ops->check(s->db, v.integrity == 2, on_finding, &v);
    if (rc != CASE_OK) rc = rc == CASE_NOMEM ? st_nomem(e) : st_berr(s, rc);
  }
  /* Every stored definition must load and match its hash, used or not (they are
   * loaded lazily, so opening the store does not check them). */
  if (rc == CASE_OK) {
    int lrc = st_load_defs(s, NULL, 0);
    if (lrc == CASE_NOMEM) rc = st_nomem(e);
    else if (lrc != CASE_OK)
      problem(&v, NULL, 0, "corrupt", "definitions", NULL, "%s", case_errmsg(e));
    if (v.nomem) rc = st_nomem(e);
  }
  int have_ids = 0;
  if (rc == CASE_OK) {
    rc = s->ops->case_list(s->db, add_id, &v.ids);
    if (rc == CASE_NOMEM) {
      st_nomem(e);
    } else if (rc != CASE_OK) {
      problem(&v, NULL, 0, "integrity", "cases", NULL, "the case rows cannot be listed: %s",
              s->ops->errmsg(s->db));
      rc = v.nomem ? st_nomem(e) : CASE_OK;
    } else {
      have_ids = 1;
    }
  }
  /* 2 */
  if (rc == CASE_OK) {
    rc = s->ops->journal_from(s->db, 0, 0, scan_row, &v);
    if (rc == CASE_NOMEM || v.nomem) {
      rc = st_nomem(e);
    } else if (rc != CASE_OK) {
      problem(&v, NULL, v.expected_seq, "integrity", "journal", NULL,
              "the journal cannot be read after seq %lld: %s", (long long)v.expected_seq - 1,
              s->ops->errmsg(s->db));
      v.scan_failed = 1;
      rc = v.nomem ? st_nomem(e) : CASE_OK;
    }
  }
  unsigned char root[MK_HASH_LEN];
  if (rc == CASE_OK && mk_frontier_root(&s->h, &v.tree, root) != 0) rc = st_nomem(e);
  /* 3 */
  for (int i = 0; rc == CASE_OK && have_ids && i < v.ids.n; i++) {
    v.events = 0;
    rc = verify_case(&v, v.ids.v[i], 1);
    total += v.events;
  }
  for (int i = 0; rc == CASE_OK && i < v.orphans.n; i++) rc = verify_case(&v, v.orphans.v[i], 0);
  /* 4 */
  if (rc == CASE_OK) {
    rc = s->ops->orphans(s->db, on_orphan, &v);
    if (rc == CASE_OK) rc = s->ops->idem_list(s->db, on_idem, &v);
    if (rc == CASE_NOMEM || v.nomem) {
      rc = st_nomem(e);
    } else if (rc != CASE_OK) {
      problem(&v, NULL, 0, "integrity", NULL, NULL, "%s", s->ops->errmsg(s->db));
      rc = v.nomem ? st_nomem(e) : CASE_OK;
    }
  }
  if (rc == CASE_OK && v.have_cp) {
    cpj = check_checkpoint(&v, key, have_key, root);
    if (v.nomem) rc = st_nomem(e);
  }
  s->ops->rollback(s->db);
  replay_close(&v);
  int ncases = v.ids.n;
  ids_free(&v.ids);
  ids_free(&v.orphans);
  notes_clear(&v);
  free(v.notes);
  if (rc != CASE_OK) {
    json_decref(cpj);
    json_decref(v.problems);
    return rc;
  }
  char hex[65];
  mk_to_hex(root, hex);
  long np = v.nproblems;
  json_t *rep = json_pack("{s:i, s:I, s:{s:I, s:s, s:b}}", "cases", ncases,
                          "events", (json_int_t)(v.scan_failed ? total : v.rows), "tree", "size",
                          (json_int_t)v.tree.size, "root", hex, "complete", !v.scan_failed);
  if (rep && cpj) json_object_set_new(rep, "checkpoint", cpj);
  else json_decref(cpj);
  if (rep) json_object_set_new(rep, "problems", v.problems);
  else json_decref(v.problems);
  if (rep && np > MAX_PROBLEMS) json_object_set_new(rep, "problems_omitted", json_integer(np - MAX_PROBLEMS));
  char *text = rep ? json_dumps(rep, JSON_COMPACT) : NULL;
  json_decref(rep);
  if (!text) return st_nomem(e);
  *report = text;
  if (np == 0) return eng_ok(e);
  return eng_err(e, CASE_CORRUPT, "verify: %ld problem(s) found (see the report)", np);
}

int case_store_verify(case_store *s, char **report) { return case_store_verify_v2(s, NULL, report); }
