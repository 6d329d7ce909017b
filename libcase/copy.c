/*
 * copy.c — case_store_copy(): a whole store from one backend into another
 * (SQLite to PostgreSQL, PostgreSQL to SQLite, or the same kind), over the
 * storage interface of store_backend.h only, so that any pair of backends
 * works.  Rows are copied as stored: the journal keeps its sequence numbers,
 * hashes, recording times and Merkle nodes, so the copy verifies exactly as
 * the original does and checkpoints signed over the original hold for it (the
 * store's identity, meta.store_id, is copied too).
 */
#include "internal.h"
#include "libcase/store.h"
#include "store_backend.h"
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct copier {
  case_store *from, *to;
  long long n[10];
  int rc;             /* the first failure */
  int on_target;      /* the failure came from the target */
  char **ids;         /* a page of case ids */
  int nids;
} copier;

enum { C_DEFS, C_PROFILES, C_HOLIDAYS, C_CASES, C_JOURNAL, C_TIMERS, C_OUTBOX, C_KEYS,
       C_REFUSED, C_TOKENS };
static const char *const count_names[] = {"definitions", "profiles", "holidays", "cases",
                                          "journal", "timers", "outbox", "idempotency",
                                          "refused", "tokens"};

/* A target write's result: remembered as the target's failure. */
static int target(copier *k, int rc) {
  if (rc != CASE_OK && k->rc == CASE_OK) {
    k->rc = rc;
    k->on_target = 1;
  }
  return rc;
}

#define TO(k) ((k)->to->ops)
#define TDB(k) ((k)->to->db)
#define FROM(k) ((k)->from->ops)
#define FDB(k) ((k)->from->db)

/* ---- the target must hold nothing ---- */

static int any_row(void *ud) {
  *(int *)ud = 1;
  return 1; /* stop */
}

static int any_def(void *ud, const char *id, int version) {
  (void)id;
  (void)version;
  return any_row(ud);
}
static int any_case(void *ud, const sb_case_row *r) {
  (void)r;
  return any_row(ud);
}
static int any_profile(void *ud, const sb_profile_row *r) {
  (void)r;
  return any_row(ud);
}
static int any_token(void *ud, const sb_token_row *r) {
  (void)r;
  return any_row(ud);
}

/* CASE_OK when the target store holds no definition, case, journal row,
 * profile or token; CASE_EXISTS with a message otherwise. */
static int target_empty(copier *k) {
  int any = 0, rc;
  int64_t tail = 0;
  unsigned char node[32];
  int have = 0;
  rc = TO(k)->journal_tail(TDB(k), &tail, node, &have);
  if (rc != CASE_OK) return target(k, rc);
  if (tail > 0) any = 1;
  if (!any && (rc = TO(k)->def_keys(TDB(k), NULL, any_def, &any)) != CASE_OK && rc != 1)
    return target(k, rc);
  if (!any && (rc = TO(k)->case_page(TDB(k), NULL, 1, any_case, &any)) != CASE_OK && rc != 1)
    return target(k, rc);
  if (!any && (rc = TO(k)->profile_list(TDB(k), any_profile, &any)) != CASE_OK && rc != 1)
    return target(k, rc);
  if (!any && (rc = TO(k)->token_list(TDB(k), any_token, &any)) != CASE_OK && rc != 1)
    return target(k, rc);
  if (any)
    return eng_err(k->from->e, CASE_EXISTS, "the target store is not empty (it holds "
                   "definitions, cases, journal rows, profiles or tokens): a copy goes into a "
                   "new store only, nothing was written");
  return CASE_OK;
}

/* ---- definitions, profiles, holidays, tokens ---- */

static int copy_def(void *ud, const sb_def_row *r) {
  copier *k = ud;
  k->n[C_DEFS]++;
  return target(k, TO(k)->def_put(TDB(k), r));
}

typedef struct prof_latest {
  char **name;
  int *version;
  int n, cap;
} prof_latest;

static int note_profile(void *ud, const sb_profile_row *r) {
  prof_latest *p = ud;
  if (p->n == p->cap) {
    int cap = p->cap ? 2 * p->cap : 8;
    char **nv = realloc(p->name, (size_t)cap * sizeof *nv);
    if (!nv) return CASE_NOMEM;
    p->name = nv;
    int *vv = realloc(p->version, (size_t)cap * sizeof *vv);
    if (!vv) return CASE_NOMEM;
    p->version = vv;
    p->cap = cap;
  }
  if (!(p->name[p->n] = xstrdup(r->name))) return CASE_NOMEM;
  p->version[p->n++] = r->version;
  return CASE_OK;
}

typedef struct prof_put {
  copier *k;
  int want;
} prof_put;

static int copy_profile(void *ud, const sb_profile_row *r) {
  prof_put *p = ud;
  int got = 0;
  int rc = target(p->k, TO(p->k)->profile_put(TDB(p->k), r, &got));
  if (rc != CASE_OK) return rc;
  p->k->n[C_PROFILES]++;
  if (got != p->want)
    return target(p->k, eng_err(p->k->from->e, CASE_CORRUPT, "profile '%s' version %d became "
                                "version %d in the copy (two versions in a row with the same "
                                "text?)", r->name, p->want, got));
  return CASE_OK;
}

/* Every version of every profile, in version order, so they keep their numbers. */
static int copy_profiles(copier *k) {
  prof_latest p = {NULL, NULL, 0, 0};
  int rc = FROM(k)->profile_list(FDB(k), note_profile, &p);
  for (int i = 0; rc == CASE_OK && i < p.n; i++)
    for (int v = 1; rc == CASE_OK && v <= p.version[i]; v++) {
      prof_put pp = {k, v};
      rc = FROM(k)->profile_get(FDB(k), p.name[i], v, copy_profile, &pp);
    }
  for (int i = 0; i < p.n; i++) free(p.name[i]);
  free(p.name);
  free(p.version);
  return rc;
}

static int copy_holiday(void *ud, const char *day, const char *name, int64_t added) {
  copier *k = ud;
  k->n[C_HOLIDAYS]++;
  return target(k, TO(k)->holiday_put(TDB(k), day, name, added));
}

static int copy_token(void *ud, const sb_token_row *r) {
  copier *k = ud;
  sb_token_row t = *r;
  int rc = target(k, TO(k)->token_put(TDB(k), &t));
  if (rc == CASE_OK && r->revoked) rc = target(k, TO(k)->token_revoke(TDB(k), r->name, r->revoked));
  if (rc == CASE_OK) k->n[C_TOKENS]++;
  return rc;
}

/* ---- cases with their timers and outbox ---- */


typedef struct timer_buf {
  sb_timer_row *v;
  int n, cap, nomem;
} timer_buf;

static int copy_timer_row(void *ud, const sb_timer_row *r) {
  timer_buf *t = ud;
  if (t->n == t->cap) {
    int cap = t->cap ? 2 * t->cap : 8;
    sb_timer_row *v = realloc(t->v, (size_t)cap * sizeof *v);
    if (!v) return CASE_NOMEM;
    t->v = v;
    t->cap = cap;
  }
  sb_timer_row *c = &t->v[t->n];
  memset(c, 0, sizeof *c);
  c->case_id = xstrdup(r->case_id);
  c->timer_id = xstrdup(r->timer_id);
  c->seq = r->seq;
  c->kind = xstrdup(r->kind);
  c->name = xstrdup(r->name);
  c->due = r->due;
  c->last_day = r->last_day ? xstrdup(r->last_day) : NULL;
  c->fired = r->fired;
  t->n++;
  if (!c->case_id || !c->timer_id || !c->kind || !c->name || (r->last_day && !c->last_day))
    return CASE_NOMEM;
  return CASE_OK;
}

static int copy_outbox_row(void *ud, const sb_outbox_row *r) {
  copier *k = ud;
  sb_outbox_row o = *r;
  int rc = target(k, TO(k)->outbox_add(TDB(k), &o));
  if (rc == CASE_OK && r->delivered) rc = target(k, TO(k)->outbox_ack(TDB(k), o.id, r->delivered));
  if (rc == CASE_OK) k->n[C_OUTBOX]++;
  return rc;
}

static int copy_one_case(copier *k, const char *id) {
  sb_case_row row;
  int rc = FROM(k)->case_get(FDB(k), id, &row);
  if (rc != CASE_OK) return rc;
  rc = target(k, TO(k)->case_insert(TDB(k), &row));
  sb_case_row_free(&row);
  if (rc != CASE_OK) return rc;
  k->n[C_CASES]++;
  timer_buf t = {NULL, 0, 0, 0};
  rc = FROM(k)->timers_case(FDB(k), id, copy_timer_row, &t);
  if (rc == CASE_OK && t.n > 0) rc = target(k, TO(k)->timers_replace(TDB(k), id, t.v, t.n));
  if (rc == CASE_OK) k->n[C_TIMERS] += t.n;
  for (int i = 0; i < t.n; i++) sb_timer_row_free(&t.v[i]);
  free(t.v);
  if (rc == CASE_OK) rc = FROM(k)->outbox_case(FDB(k), id, copy_outbox_row, k);
  return rc;
}

static int note_case(void *ud, const sb_case_row *r) {
  copier *k = ud;
  if (!(k->ids[k->nids] = xstrdup(r->id))) return CASE_NOMEM;
  k->nids++;
  return CASE_OK;
}

enum { CASE_PAGE = 256, JOURNAL_PAGE = 1024 };

static int copy_cases(copier *k) {
  char *ids[CASE_PAGE];
  char *after = NULL;
  int rc = CASE_OK;
  k->ids = ids;
  for (;;) {
    k->nids = 0;
    rc = FROM(k)->case_page(FDB(k), after, CASE_PAGE, note_case, k);
    int n = k->nids;
    for (int i = 0; rc == CASE_OK && i < n; i++) rc = copy_one_case(k, ids[i]);
    free(after);
    after = n > 0 ? ids[n - 1] : NULL;
    for (int i = 0; i < n - 1; i++) free(ids[i]);
    if (rc != CASE_OK || n < CASE_PAGE) break;
  }
  free(after);
  return rc;
}

/* ---- the journal, idempotency keys, refused events ---- */

typedef struct journal_page {
  copier *k;
  int64_t last;
  int n;
} journal_page;

static int copy_journal_row(void *ud, const sb_journal_row *r) {
  journal_page *p = ud;
  sb_journal_row j = *r;
  if (j.node_len != 32) j.node = NULL; /* none (or a damaged one: verify says so) */
  int rc = target(p->k, TO(p->k)->journal_append(TDB(p->k), &j));
  if (rc != CASE_OK) return rc;
  if (j.seq != r->seq)
    return target(p->k, eng_err(p->k->from->e, CASE_CORRUPT, "journal row %lld became row %lld "
                                "in the copy", (long long)r->seq, (long long)j.seq));
  p->last = r->seq;
  p->n++;
  p->k->n[C_JOURNAL]++;
  return CASE_OK;
}

static int copy_journal(copier *k) {
  journal_page p = {k, 0, 0};
  for (;;) {
    p.n = 0;
    int rc = FROM(k)->journal_from(FDB(k), p.last, JOURNAL_PAGE, copy_journal_row, &p);
    if (rc != CASE_OK) return rc;
    if (p.n < JOURNAL_PAGE) return CASE_OK;
  }
}

static int copy_key(void *ud, const char *key, const char *case_id, int64_t seq) {
  copier *k = ud;
  char *first_case = NULL, *request = NULL;
  int64_t first_seq = seq;
  int rc = FROM(k)->idem_get(FDB(k), key, &first_case, &first_seq, &request);
  if (rc == CASE_OK)
    rc = target(k, TO(k)->idem_put(TDB(k), key, case_id, seq, request, (int64_t)time(NULL)));
  free(first_case);
  free(request);
  if (rc == CASE_OK) k->n[C_KEYS]++;
  return rc;
}

typedef struct refused_page {
  copier *k;
  int64_t last;
  int n;
} refused_page;

static int copy_refused_row(void *ud, const sb_refused_row *r) {
  refused_page *p = ud;
  int rc = target(p->k, TO(p->k)->refused_add(TDB(p->k), r));
  if (rc != CASE_OK) return rc;
  p->last = r->id;
  p->n++;
  p->k->n[C_REFUSED]++;
  return CASE_OK;
}

static int copy_refused(copier *k) {
  refused_page p = {k, 0, 0};
  for (;;) {
    p.n = 0;
    int rc = FROM(k)->refused_from(FDB(k), p.last, JOURNAL_PAGE, copy_refused_row, &p);
    if (rc != CASE_OK) return rc;
    if (p.n < JOURNAL_PAGE) return CASE_OK;
  }
}

/* ---- the whole copy ---- */

int case_store_copy(case_store *from, case_store *to, char **counts_json) {
  if (counts_json) *counts_json = NULL;
  if (!from || !to) return CASE_MISUSE;
  case_engine *e = from->e;
  if (from == to) return eng_err(e, CASE_MISUSE, "case_store_copy: the same store twice");
  if (to->readonly)
    return eng_err(e, CASE_MISUSE, "case_store_copy: the target store was opened read-only");
  copier k;
  memset(&k, 0, sizeof k);
  k.from = from;
  k.to = to;
  /* One snapshot of the source, one transaction on the target: all or nothing. */
  int rc = FROM(&k)->begin(FDB(&k), 0);
  if (rc != CASE_OK) return st_berr(from, rc);
  rc = TO(&k)->begin(TDB(&k), 1);
  if (rc != CASE_OK) {
    FROM(&k)->rollback(FDB(&k));
    return st_berr(to, rc);
  }
  rc = target_empty(&k);
  char *store_id = NULL;
  if (rc == CASE_OK) {
    rc = FROM(&k)->meta_get(FDB(&k), "store_id", &store_id);
    if (rc == CASE_OK) rc = target(&k, TO(&k)->meta_put(TDB(&k), "store_id", store_id));
    else if (rc == CASE_NOTFOUND) rc = CASE_OK;
  }
  free(store_id);
  if (rc == CASE_OK) rc = FROM(&k)->def_list(FDB(&k), copy_def, &k);
  if (rc == CASE_OK) rc = copy_profiles(&k);
  if (rc == CASE_OK) rc = FROM(&k)->holiday_list(FDB(&k), copy_holiday, &k);
  if (rc == CASE_OK) rc = copy_cases(&k);
  if (rc == CASE_OK) rc = copy_journal(&k);
  if (rc == CASE_OK) rc = FROM(&k)->idem_list(FDB(&k), copy_key, &k);
  if (rc == CASE_OK) rc = copy_refused(&k);
  if (rc == CASE_OK) rc = FROM(&k)->token_list(FDB(&k), copy_token, &k);
  if (rc == CASE_OK) rc = target(&k, TO(&k)->commit(TDB(&k)));
  FROM(&k)->rollback(FDB(&k));
  if (rc != CASE_OK) {
    /* The message: an engine error set above, or the backend's. */
    if (case_errcode(e) != rc) {
      if (rc == CASE_NOMEM) st_nomem(e);
      else if (k.on_target) eng_err(e, rc, "copy: the target: %s", TO(&k)->errmsg(TDB(&k)));
      else eng_err(e, rc, "copy: the source: %s", FROM(&k)->errmsg(FDB(&k)));
    }
    TO(&k)->rollback(TDB(&k));
    return rc;
  }
  /* The target's handle knows nothing of what was written behind it. */
  to->tree_ok = 0;
  if (counts_json) {
    json_t *o = json_object();
    for (int i = 0; o && i < (int)(sizeof count_names / sizeof count_names[0]); i++)
      json_object_set_new(o, count_names[i], json_integer(k.n[i]));
    *counts_json = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!*counts_json) return st_nomem(e);
  }
  return eng_ok(e);
}
