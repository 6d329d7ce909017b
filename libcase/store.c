/*
 * store.c — the durable store: cases, their hash-chained journal, timers,
 * refused events, idempotency keys and an outbox, over the narrow storage
 * interface of store_backend.h (SQLite by default).  docs/store.md describes
 * the schema, the transactions and the hash serialisation.
 *
 * The rule everything here follows: memory never runs ahead of disk.  A case
 * on the engine is used for a fire only when its revision equals the stored
 * one; if anything fails after the engine changed it, the in-memory case is
 * dropped so that the next call restores it from the stored snapshot.
 */
#include "internal.h"
#include "libcase/store.h"
#include "store_backend.h"
#include "store_int.h"
#include "store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A notification a call inside a batch emitted: held until the batch commits. */
typedef struct held_note {
  char *case_id;
  char *name;
  json_t *payload;
} held_note;

struct st_batch {
  int appended;   /* a call in it appended journal rows (the tree frontier moved) */
  held_note *notes;
  int nnotes, cap_notes;
  char **touched; /* ids of the cases its calls changed or loaded */
  int ntouched, cap_touched;
  long calls;     /* calls run in it */
};

int st_nomem(case_engine *e) { return eng_err(e, CASE_NOMEM, "out of memory"); }

case_engine *store_engine(const case_store *s) { return s ? s->e : NULL; }

int st_berr(case_store *s, int rc) { return eng_err(s->e, rc, "%s", s->ops->errmsg(s->db)); }

static int writable(case_store *s) {
  if (s->readonly) return eng_err(s->e, CASE_MISUSE, "the store was opened read-only");
  return CASE_OK;
}

/* How often a transaction that failed without writing anything is run again. */
#define ST_RETRIES 4

/*
 * 1 when the transaction that just failed with `rc` wrote nothing and may run
 * again (the backend says so: a deadlock or serialization failure, a
 * connection lost before COMMIT; SQLite waits for its locks itself and never
 * asks), after a pause that grows with `attempt` (0, 1, ...).
 */
static int should_retry(case_store *s, int rc, int attempt) {
  if (attempt >= ST_RETRIES || (rc != CASE_BUSY && rc != CASE_IO)) return 0;
  if (s->batch) return 0; /* the batch's transaction is lost: its commit says so */
  if (!s->ops->retryable || !s->ops->retryable(s->db)) return 0;
  struct timespec nap = {0, (long)(5 * 1000000L) << attempt};
  nanosleep(&nap, NULL);
  return 1;
}

/*
 * Every string that goes into a journal row must be UTF-8: the row is hashed
 * as JSON, and JSON cannot carry other bytes.  Nor may it hold a control
 * character, a line break or an invisible formatting character: an actor
 * "a\n     9 ...  timer" printed a forged history line (a person's row that
 * looked fired by the clock) in casectl show, and an escape sequence reached
 * the terminal.  CASE_INVALID naming the argument, the byte and the
 * character, or CASE_OK (NULL is fine: an absent value).  Rows stored before
 * this rule still load and replay: only these entry points check.  A case
 * id given to fire is only checked for UTF-8 (check_id_utf8): the id rule
 * is case_id_check()'s, applied at creation, and a case stored before it
 * must stay reachable.
 */
static int check_id_utf8(case_store *s, const char *what, const char *v) {
  size_t at = 0;
  if (v && utf8_problem(v, &at))
    return eng_err(s->e, CASE_INVALID, "%s: byte %zu (0x%02X) is not valid UTF-8", what, at + 1,
                   (unsigned)(unsigned char)v[at]);
  return CASE_OK;
}

static int check_utf8(case_store *s, const char *what, const char *v) {
  char why[160];
  if (!v || case_text_check(v, why, sizeof why) == CASE_OK) return CASE_OK;
  return eng_err(s->e, CASE_INVALID, "%s: %s", what, why);
}

/* Canonical JSON text: compact, keys sorted, ASCII only (docs/store.md). */
char *st_canon(const json_t *v) {
  return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
}

json_t *st_parse_any(const char *text) {
  return text ? json_loads(text, JSON_DECODE_ANY, NULL) : json_null();
}

/* ------------------------------------------------------------------ */
/* The store's clock and the far-future bound                          */
/* ------------------------------------------------------------------ */

int case_store_set_clock(case_store *s, case_clock_fn fn, void *ud) {
  if (!s) return CASE_MISUSE;
  s->clock = fn;
  s->clock_ud = fn ? ud : NULL;
  return eng_ok(s->e);
}

int64_t case_store_clock(case_store *s) {
  if (!s) return 0;
  return s->clock ? s->clock(s->clock_ud) : (int64_t)time(NULL);
}

int64_t case_store_set_future_limit(case_store *s, int64_t seconds) {
  if (!s) return -1;
  int64_t old = s->future_limit;
  s->future_limit = seconds < 0 ? -1 : seconds;
  return old;
}

int64_t case_store_future_limit(const case_store *s) { return s ? s->future_limit : -1; }

/* "2026-12-02T03:19:02Z" */
static void utc_text(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (gmtime_r(&tt, &tm) && strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0) return;
  snprintf(out, 32, "@%lld", (long long)t);
}

/*
 * CASE_INVALID when `at` (`what`: "event time", "tick time") is more than the
 * future limit after the store's clock: one such row would move every case's
 * clock with it (the next tick fires every timer due before it).  Else CASE_OK.
 */
static int check_future(case_store *s, const char *what, int64_t at) {
  if (s->future_limit < 0) return CASE_OK;
  int64_t now = case_store_clock(s);
  if (at <= now || at - now <= s->future_limit) return CASE_OK;
  char a[32], b[32], lim[48];
  utc_text(at, a);
  utc_text(now, b);
  if (s->future_limit > 0 && s->future_limit % 86400 == 0)
    snprintf(lim, sizeof lim, "%lld day(s)", (long long)(s->future_limit / 86400));
  else
    snprintf(lim, sizeof lim, "%lld second(s)", (long long)s->future_limit);
  return eng_err(s->e, CASE_INVALID,
                 "the %s %s is more than %s after the store's clock (%s): refused, nothing "
                 "written (is the date right? a time that far ahead needs "
                 "case_store_set_future_limit(), casectl --allow-future)",
                 what, a, lim, b);
}

/* Canonical text of optional JSON text ("null" for NULL); NULL if invalid or no memory. */
static char *canon_text(const char *text) {
  json_t *v = st_parse_any(text);
  if (!v) return NULL;
  char *c = st_canon(v);
  json_decref(v);
  return c;
}

/*
 * The row hash: SHA-256 over the canonical JSON array
 *   ["libcase.journal.v1", case, revision, event, payload, actor, role, time,
 *    configuration, data, prev_hash]
 * Returns CASE_OK, CASE_CORRUPT (a JSON column does not parse) or CASE_NOMEM.
 */
int st_row_hash(const sb_journal_row *r, char out[65]) {
  json_t *payload = st_parse_any(r->payload), *cfg = st_parse_any(r->configuration),
         *data = st_parse_any(r->data);
  if (!payload || !cfg || !data) {
    json_decref(payload);
    json_decref(cfg);
    json_decref(data);
    return CASE_CORRUPT;
  }
  json_t *a = json_pack("[s, s, I, s, o, s?, s?, I, o, o, s]", HASH_TAG, r->case_id,
                        (json_int_t)r->revision, r->event, payload, r->actor, r->role,
                        (json_int_t)r->time, cfg, data, r->prev_hash ? r->prev_hash : "");
  if (!a) return CASE_NOMEM;
  char *text = st_canon(a);
  json_decref(a);
  if (!text) return CASE_NOMEM;
  int ok = sha256_hex(text, strlen(text), out) == 0;
  free(text);
  return ok ? CASE_OK : CASE_NOMEM;
}

/*
 * st_json_string(): the canonical JSON text of string `s` (JSON null for NULL).  A
 * string of printable ASCII other than '"' and '\\' is its own text between
 * quotes (jansson escapes nothing else in it: '/' only with JSON_ESCAPE_SLASH);
 * any other string goes through jansson.  Returns 0 when `s` is not UTF-8 or
 * memory ran out, as json_pack() in st_row_hash() fails then.
 */
int st_json_string(sbuf *b, const char *s) {
  if (!s) {
    sbuf_puts(b, "null");
    return 1;
  }
  const unsigned char *p = (const unsigned char *)s;
  while (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') p++;
  if (*p == '\0') {
    sbuf_add(b, "\"", 1);
    sbuf_add(b, s, (size_t)(p - (const unsigned char *)s));
    sbuf_add(b, "\"", 1);
    return 1;
  }
  json_t *v = json_string(s);
  char *t = v ? st_canon(v) : NULL;
  json_decref(v);
  if (!t) return 0;
  sbuf_puts(b, t);
  free(t);
  return 1;
}

/*
 * st_row_hash() for a row whose payload, configuration and data are canonical
 * JSON text already (persist() made them with st_canon()): the same bytes are
 * hashed, joined as text instead of parsed and serialised a second time
 * (about a tenth of a durable fire's time).  Builds with assertions enabled
 * (Debug, the sanitizer build) check it against st_row_hash() on every row.
 */
static int row_hash_canonical(mk_hasher *h, const sb_journal_row *r, char out[65]) {
  sbuf b;
  sbuf_init(&b);
  sbuf_puts(&b, "[\"" HASH_TAG "\",");
  char num[32];
  int ok = st_json_string(&b, r->case_id);
  snprintf(num, sizeof num, ",%lld,", (long long)r->revision);
  sbuf_puts(&b, num);
  ok = ok && st_json_string(&b, r->event);
  sbuf_puts(&b, ",");
  sbuf_puts(&b, r->payload);
  sbuf_puts(&b, ",");
  ok = ok && st_json_string(&b, r->actor);
  sbuf_puts(&b, ",");
  ok = ok && st_json_string(&b, r->role);
  snprintf(num, sizeof num, ",%lld,", (long long)r->time);
  sbuf_puts(&b, num);
  sbuf_puts(&b, r->configuration);
  sbuf_puts(&b, ",");
  sbuf_puts(&b, r->data);
  sbuf_puts(&b, ",");
  ok = ok && st_json_string(&b, r->prev_hash ? r->prev_hash : "");
  sbuf_puts(&b, "]");
  size_t n = b.len;
  char *text = sbuf_take(&b);
  if (!ok || !text) {
    free(text);
    return CASE_NOMEM;
  }
  /* The store's hasher: EVP_Digest() fetches SHA-256 anew on every call. */
  unsigned char md[MK_HASH_LEN];
  ok = mk_sha256(h, text, n, md) == 0;
  free(text);
  if (!ok) return CASE_NOMEM;
  mk_to_hex(md, out);
#ifndef NDEBUG
  char slow[65];
  if (st_row_hash(r, slow) == CASE_OK && strcmp(slow, out) != 0) return CASE_CORRUPT;
#endif
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* The journal's Merkle tree                                           */
/* ------------------------------------------------------------------ */

json_t *st_json_text(const char *s) {
  if (!s) return json_null();
  if (!utf8_problem(s, NULL)) return json_string(s);
  sbuf b;
  sbuf_init(&b);
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    size_t at = 0;
    const char *rest = (const char *)p;
    if (!utf8_problem(rest, &at)) {
      sbuf_puts(&b, rest);
      break;
    }
    sbuf_add(&b, rest, at);
    sbuf_puts(&b, "\xEF\xBF\xBD"); /* U+FFFD for the byte that is not UTF-8 */
    p += at + 1;
  }
  char *t = sbuf_take(&b);
  json_t *j = t ? json_string(t) : NULL;
  free(t);
  return j;
}

/* Appends the decimal digits of v. */
static void add_int(sbuf *b, int64_t v) {
  char buf[24], *p = buf + sizeof buf;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do *--p = (char)('0' + u % 10);
  while ((u /= 10) != 0);
  if (v < 0) *--p = '-';
  sbuf_add(b, p, (size_t)(buf + sizeof buf - p));
}

int st_leaf_hash(mk_hasher *h, int64_t seq, int64_t recorded, const char *row_hash,
                 const st_pin *pin, unsigned char out[MK_HASH_LEN]) {
  /* The entry of an ordinary row fits on the stack (about 110 bytes). */
  char stack[256];
  stack[0] = '\0';
  sbuf b;
  sbuf_init(&b);
  b.p = stack;
  b.cap = sizeof stack;
  b.borrowed = 1;
  sbuf_puts(&b, "[\"" LEAF_TAG "\",");
  add_int(&b, seq);
  sbuf_add(&b, ",", 1);
  add_int(&b, recorded);
  sbuf_add(&b, ",", 1);
  int ok = st_json_string(&b, row_hash);
  if (!pin) {
    sbuf_puts(&b, ",null]");
  } else {
    sbuf_puts(&b, ",{\"definition\":");
    ok = ok && st_json_string(&b, pin->definition);
    sbuf_puts(&b, ",\"location\":");
    ok = ok && st_json_string(&b, pin->location);
    sbuf_puts(&b, ",\"modules\":");
    ok = ok && st_json_string(&b, pin->modules);
    if (pin->profile > 0) { /* schema 8: the profile version it was created on */
      sbuf_puts(&b, ",\"profile\":{\"hash\":");
      ok = ok && st_json_string(&b, pin->profile_hash);
      sbuf_puts(&b, ",\"version\":");
      add_int(&b, pin->profile);
      sbuf_puts(&b, "}");
    }
    sbuf_puts(&b, ",\"version\":");
    add_int(&b, pin->version);
    sbuf_puts(&b, ",\"workflow\":");
    ok = ok && st_json_string(&b, pin->workflow);
    sbuf_puts(&b, "}]");
  }
  int rc = b.failed ? CASE_NOMEM : !ok ? CASE_CORRUPT : CASE_OK;
  if (rc == CASE_OK && mk_leaf_hash(h, b.p, b.len, out) != 0) rc = CASE_NOMEM;
  sbuf_free(&b);
  return rc;
}

typedef struct def_texts {
  char *hash, *modules;
} def_texts;

static int grab_def_texts(void *ud, const sb_def_row *r) {
  def_texts *t = ud;
  t->hash = xstrdup(r->hash);
  t->modules = r->modules ? xstrdup(r->modules) : NULL;
  return t->hash && (t->modules || !r->modules) ? CASE_OK : CASE_NOMEM;
}

int st_def_texts(case_store *s, const char *id, int version, char **hash, char **modules) {
  def_texts t = {NULL, NULL};
  int rc = s->ops->def_get(s->db, id, version, grab_def_texts, &t);
  if (rc != CASE_OK) {
    free(t.hash);
    free(t.modules);
    t.hash = t.modules = NULL;
  }
  *hash = t.hash;
  *modules = t.modules;
  return rc;
}

int st_modules_hash(case_store *s, const char *id, int version, int fresh, char hex[65],
                    int *has) {
  *has = 0;
  hex[0] = '\0';
  for (int i = 0; !fresh && i < s->nmods; i++)
    if (s->mods[i].version == version && strcmp(s->mods[i].workflow, id) == 0) {
      *has = s->mods[i].has;
      memcpy(hex, s->mods[i].hex, 65);
      return CASE_OK;
    }
  char *hash = NULL, *mods = NULL;
  int rc = st_def_texts(s, id, version, &hash, &mods);
  if (rc != CASE_OK) return rc;
  if (mods) {
    *has = 1;
    if (sha256_hex(mods, strlen(mods), hex) != 0) rc = CASE_NOMEM;
  }
  free(hash);
  free(mods);
  if (rc != CASE_OK || fresh) return rc;
  st_modhash *v = realloc(s->mods, (size_t)(s->nmods + 1) * sizeof *v);
  if (!v) return CASE_OK; /* the cache is only a cache */
  s->mods = v;
  v[s->nmods].workflow = xstrdup(id);
  if (!v[s->nmods].workflow) return CASE_OK;
  v[s->nmods].version = version;
  v[s->nmods].has = *has;
  memcpy(v[s->nmods].hex, hex, 65);
  s->nmods++;
  return CASE_OK;
}

void st_pin_free(st_pinbuf *p) { sb_case_row_free(&p->row); }

static int keep_phash(void *ud, const sb_profile_row *r) {
  snprintf(ud, 65, "%s", r->hash ? r->hash : "");
  return CASE_OK;
}

int st_pin_of_case(case_store *s, const char *case_id, int fresh, st_pinbuf *p) {
  memset(p, 0, sizeof *p);
  int rc = s->ops->case_get(s->db, case_id, &p->row);
  if (rc != CASE_OK) return rc;
  int has = 0;
  rc = st_modules_hash(s, p->row.workflow, p->row.version, fresh, p->mods, &has);
  if (rc == CASE_NOTFOUND) rc = CASE_OK; /* no definition row: the pin names no modules */
  if (rc != CASE_OK) sb_case_row_free(&p->row);
  p->pin.workflow = p->row.workflow;
  p->pin.version = p->row.version;
  p->pin.definition = p->row.hash;
  p->pin.modules = has ? p->mods : NULL;
  p->pin.location = p->row.location;
  if (rc == CASE_OK && p->row.profile_first > 0 && p->row.location) {
    int r2 = s->ops->profile_get(s->db, p->row.location, p->row.profile_first, keep_phash,
                                 p->phash);
    if (r2 == CASE_OK) {
      p->pin.profile = p->row.profile_first;
      p->pin.profile_hash = p->phash;
    } else if (r2 != CASE_NOTFOUND) { /* a missing version: the leaf names none (verify says) */
      sb_case_row_free(&p->row);
      rc = r2;
    }
  }
  return rc;
}

/* The leaf of stored row `seq`, from its stored hash (proofs, the backfill). */
typedef struct leaf_read {
  case_store *s;
  unsigned char *out;
  int rc;
} leaf_read;

static int leaf_of_row(void *ud, const sb_journal_row *r) {
  leaf_read *l = ud;
  st_pinbuf p;
  int have_pin = 0;
  if (r->revision == 0) {
    l->rc = st_pin_of_case(l->s, r->case_id, 0, &p);
    if (l->rc == CASE_NOTFOUND) l->rc = CASE_OK; /* no case row: the leaf has no pin */
    else have_pin = l->rc == CASE_OK;
  }
  if (l->rc == CASE_OK)
    l->rc = st_leaf_hash(&l->s->h, r->seq, r->recorded, r->hash, have_pin ? &p.pin : NULL, l->out);
  if (r->revision == 0) sb_case_row_free(&p.row);
  return l->rc;
}

int st_tree_subtree(case_store *s, int level, uint64_t index, unsigned char out[MK_HASH_LEN]) {
  uint64_t end = (index + 1) << level; /* the seq of its last row */
  if (end > (uint64_t)INT64_MAX) return CASE_NOTFOUND;
  int rc;
  if (mk_ctz(end) == level) {
    rc = s->ops->journal_node(s->db, (int64_t)end, out);
    if (rc != CASE_NOTFOUND) return rc;
  }
  if (level == 0) {
    leaf_read l = {s, out, CASE_OK};
    rc = s->ops->journal_get(s->db, (int64_t)end, leaf_of_row, &l);
    return rc == CASE_OK ? l.rc : rc;
  }
  /* A node of a lower level than the row stores, or a missing one: from its children. */
  unsigned char left[MK_HASH_LEN], right[MK_HASH_LEN];
  rc = st_tree_subtree(s, level - 1, 2 * index, left);
  if (rc == CASE_OK) rc = st_tree_subtree(s, level - 1, 2 * index + 1, right);
  if (rc == CASE_OK && mk_node_hash(&s->h, left, right, out) != 0) rc = CASE_NOMEM;
  return rc;
}

/*
 * The frontier of the stored tree (the roots of the perfect subtrees its size
 * splits into), read from the stored nodes: O(log n) point reads.  *complete
 * 0 when a node it needs is missing (a damaged store).
 */
static int load_frontier(case_store *s, mk_frontier *f, int *complete) {
  mk_frontier_init(f);
  *complete = 1;
  int64_t size = 0;
  unsigned char tail[MK_HASH_LEN];
  int have = 0;
  int rc = s->ops->journal_tail(s->db, &size, tail, &have);
  if (rc != CASE_OK) return rc;
  uint64_t start = 0;
  for (int bit = 62; bit >= 0; bit--) {
    uint64_t w = (uint64_t)1 << bit;
    if (!((uint64_t)size & w)) continue;
    rc = st_tree_subtree(s, bit, start >> bit, f->h[f->n]);
    if (rc == CASE_NOTFOUND) {
      *complete = 0;
      rc = CASE_OK;
    }
    if (rc != CASE_OK) return rc;
    f->n++;
    start += w;
  }
  f->size = (uint64_t)size;
  return CASE_OK;
}

/*
 * The node a new row `j` (its hash set) stores: its leaf added to the tree's
 * frontier, which gives the perfect subtree of level ctz(seq) that ends at it
 * (on average one hash besides the leaf's).  Sets j->seq to the next seq.  The
 * frontier is the handle's own from its last commit while no other connection
 * wrote (the backend's data version says), else it is read from the stored
 * nodes.  *have 0: a node it needs is missing (a damaged store), so the row
 * stores none; verify reports it.
 */
static int tree_node(case_store *s, sb_journal_row *j, const case_instance *created,
                     unsigned char node[MK_HASH_LEN], int *have) {
  *have = 0;
  int rc;
  if (!s->txn_tree_ok) {
    uint64_t ver = 0;
    int vrc = s->ops->data_version(s->db, &ver);
    /* In a batch that appended rows, the handle's frontier is behind. */
    if (vrc == CASE_OK && s->tree_ok && ver == s->tree_version &&
        !(s->batch && s->batch->appended)) {
      s->txn_tree = s->tree;
      s->txn_complete = s->tree_complete;
    } else if ((rc = load_frontier(s, &s->txn_tree, &s->txn_complete)) != CASE_OK) {
      return rc;
    }
    s->txn_tree_ok = 1;
  }
  j->seq = (int64_t)s->txn_tree.size + 1;
  st_pin pin, *pp = NULL;
  char mods[65];
  if (created) {
    int has = 0;
    rc = st_modules_hash(s, created->def->id, created->def->version, 0, mods, &has);
    if (rc == CASE_NOTFOUND) rc = CASE_OK;
    if (rc != CASE_OK) return rc;
    pin = (st_pin){created->def->id, created->def->version, created->def->hash,
                   has ? mods : NULL, created->location, 0, NULL};
    if (created->profile_first > 0 && created->profile) {
      pin.profile = created->profile_first;
      pin.profile_hash = created->profile->hash;
    }
    pp = &pin;
  }
  rc = st_leaf_hash(&s->h, j->seq, j->recorded, j->hash, pp, node);
  if (rc != CASE_OK) return rc;
  if (!s->txn_complete) {
    s->txn_tree.size++;
    return CASE_OK;
  }
  if (mk_frontier_add(&s->h, &s->txn_tree, node, node, NULL) != 0) return CASE_NOMEM;
  *have = 1;
  return CASE_OK;
}

/* A write transaction that may append journal rows (in a batch: a savepoint
 * of the batch's transaction, whose frontier goes on from call to call). */
static void rec_begin(case_store *s) {
  s->rec_now = (int64_t)time(NULL);
  cal_set_asof(s->e->calendar, s->rec_now);
}

static void rec_end(case_store *s) {
  s->rec_now = 0;
  cal_set_asof(s->e->calendar, INT64_MAX);
}

static int load_holidays(case_store *s);

static int write_begin(case_store *s) {
  rec_begin(s);
  if (!s->batch) {
    /* A transaction that used the tree and was not committed through
     * write_commit() (rolled back, or ended elsewhere) leaves the cache unsure. */
    if (s->txn_tree_ok) s->tree_ok = 0;
    s->txn_tree_ok = 0;
  }
  int rc = s->ops->begin(s->db, 1);
  if (rc != CASE_OK) {
    rec_end(s);
    return rc;
  }
  /* A holiday another program stored since this handle read them counts for
   * what this transaction computes (its rows replay with it).  The backend's
   * data version changes only with another connection's commits; without one
   * (PostgreSQL) the holidays are read at every write transaction. */
  uint64_t ver = 0;
  int vrc = s->ops->data_version(s->db, &ver);
  if (vrc != CASE_OK || !s->hol_known || ver != s->hol_version) {
    rc = load_holidays(s);
    if (rc != CASE_OK) {
      s->ops->rollback(s->db);
      rec_end(s);
      return rc;
    }
    s->hol_known = vrc == CASE_OK;
    s->hol_version = ver;
  }
  return CASE_OK;
}

/* Rolls back the transaction (in a batch: to the call's savepoint).  The
 * frontier of the transaction is then unsure: the next row reads it again. */
static int st_rollback(case_store *s) {
  rec_end(s);
  if (s->batch) {
    if (s->txn_tree_ok) s->batch->appended = 1;
    s->txn_tree_ok = 0;
  }
  return s->ops->rollback(s->db);
}

static int write_commit(case_store *s) {
  rec_end(s);
  if (s->batch) { /* RELEASE: durable only when the batch commits */
    int rc = s->ops->commit(s->db);
    if (s->txn_tree_ok) s->batch->appended = 1;
    return rc;
  }
  int rc = s->ops->commit(s->db);
  if (s->txn_tree_ok) {
    s->tree_ok = 0;
    if (rc == CASE_OK && s->ops->data_version(s->db, &s->tree_version) == CASE_OK) {
      s->tree = s->txn_tree;
      s->tree_complete = s->txn_complete;
      s->tree_ok = 1;
    }
  }
  s->txn_tree_ok = 0;
  return rc;
}

/* The migration to SB_SCHEMA_TREE: every older row gets its node, in seq order. */
typedef struct backfill {
  case_store *s;
  int64_t *seq, *recorded, *revision;
  char **hash, **case_id;
  int n, cap;
} backfill;

static int backfill_row(void *ud, const sb_journal_row *r) {
  backfill *b = ud;
  int i = b->n++;
  b->seq[i] = r->seq;
  b->recorded[i] = r->recorded;
  b->revision[i] = r->revision;
  b->hash[i] = xstrdup(r->hash);
  b->case_id[i] = xstrdup(r->case_id);
  return b->hash[i] && b->case_id[i] ? CASE_OK : CASE_NOMEM;
}

static int backfill_tree(case_store *s) {
  enum { BATCH = 4096 };
  backfill b = {s, calloc(BATCH, sizeof(int64_t)), calloc(BATCH, sizeof(int64_t)),
                calloc(BATCH, sizeof(int64_t)), calloc(BATCH, sizeof(char *)),
                calloc(BATCH, sizeof(char *)), 0, BATCH};
  int rc = b.seq && b.recorded && b.revision && b.hash && b.case_id ? CASE_OK : CASE_NOMEM;
  mk_frontier f;
  mk_frontier_init(&f);
  int64_t after = 0;
  int gap = 0;
  while (rc == CASE_OK && !gap) {
    b.n = 0;
    rc = s->ops->journal_from(s->db, after, BATCH, backfill_row, &b);
    for (int i = 0; rc == CASE_OK && i < b.n; i++) {
      if (b.seq[i] != (int64_t)f.size + 1) {
        gap = 1; /* rows were removed: leave the rest without nodes (verify says so) */
        break;
      }
      st_pinbuf p;
      int have_pin = 0;
      if (b.revision[i] == 0) {
        rc = st_pin_of_case(s, b.case_id[i], 0, &p);
        if (rc == CASE_NOTFOUND) rc = CASE_OK;
        else have_pin = rc == CASE_OK;
      }
      unsigned char leaf[MK_HASH_LEN], node[MK_HASH_LEN];
      if (rc == CASE_OK)
        rc = st_leaf_hash(&s->h, b.seq[i], b.recorded[i], b.hash[i], have_pin ? &p.pin : NULL,
                          leaf);
      if (b.revision[i] == 0) sb_case_row_free(&p.row);
      if (rc == CASE_OK && mk_frontier_add(&s->h, &f, leaf, node, NULL) != 0) rc = CASE_NOMEM;
      if (rc == CASE_OK) rc = s->ops->journal_set_node(s->db, b.seq[i], node);
    }
    for (int i = 0; i < b.n; i++) {
      free(b.hash[i]);
      free(b.case_id[i]);
    }
    if (b.n < BATCH) break;
    after = b.seq[b.n - 1];
  }
  free(b.seq);
  free(b.recorded);
  free(b.revision);
  free(b.hash);
  free(b.case_id);
  return rc;
}

int st_tree_backfill(case_store *s) {
  if (!s) return CASE_MISUSE;
  int rc = writable(s);
  if (rc != CASE_OK) return rc;
  if (s->batch) return eng_err(s->e, CASE_MISUSE, "st_tree_backfill: a batch is open");
  s->tree_ok = s->txn_tree_ok = 0;
  if ((rc = s->ops->begin(s->db, 1)) != CASE_OK) return st_berr(s, rc);
  rc = backfill_tree(s);
  if (rc == CASE_OK) rc = s->ops->commit(s->db);
  else s->ops->rollback(s->db);
  return rc == CASE_OK ? eng_ok(s->e) : st_berr(s, rc);
}

static int on_migrated(void *ud, int version) {
  case_store *s = ud;
  if (version != SB_SCHEMA_TREE) return CASE_OK;
  int rc = backfill_tree(s);
  return rc == CASE_OK ? CASE_OK : rc;
}

/* ------------------------------------------------------------------ */
/* Notifications: collected during a fire, forwarded after COMMIT      */
/* ------------------------------------------------------------------ */

typedef struct collector {
  cs_plist list;
  int failed;
  case_notify_fn host;
  void *host_ud;
} collector;

static void collect(void *ud, const case_instance *c, const char *name, const char *payload) {
  CASE_UNUSED(c);
  collector *k = ud;
  json_t *p = st_parse_any(payload);
  if (!p || plist_push(&k->list, name, p) != CASE_OK) k->failed = 1;
}

static void collect_start(case_engine *e, collector *k) {
  memset(k, 0, sizeof *k);
  k->host = e->notify;
  k->host_ud = e->notify_ud;
  e->notify = collect;
  e->notify_ud = k;
}

static void collect_stop(case_engine *e, collector *k) {
  e->notify = k->host;
  e->notify_ud = k->host_ud;
}

static void collect_free(collector *k) {
  plist_clear(&k->list);
  free(k->list.v);
  k->list.v = NULL;
}

/* ------------------------------------------------------------------ */
/* Batches: many calls in one transaction, a savepoint each            */
/* ------------------------------------------------------------------ */

static int batch_note(struct st_batch *b, const case_instance *c, const char *name,
                      json_t *payload) {
  if (b->nnotes == b->cap_notes) {
    int cap = b->cap_notes ? 2 * b->cap_notes : 16;
    held_note *v = realloc(b->notes, (size_t)cap * sizeof *v);
    if (!v) return CASE_NOMEM;
    b->notes = v;
    b->cap_notes = cap;
  }
  held_note *h = &b->notes[b->nnotes];
  h->case_id = xstrdup(c->id);
  h->name = xstrdup(name);
  if (!h->case_id || !h->name) {
    free(h->case_id);
    free(h->name);
    return CASE_NOMEM;
  }
  h->payload = json_incref(payload);
  b->nnotes++;
  return CASE_OK;
}

/* Case `id` was loaded or changed by a call in the batch: if the batch does
 * not commit, its copy on the engine is ahead of the disk and is dropped. */
static void batch_touch(struct st_batch *b, const char *id) {
  for (int i = b->ntouched - 1; i >= 0 && i >= b->ntouched - 4; i--)
    if (strcmp(b->touched[i], id) == 0) return; /* the usual repeat: the same case */
  if (b->ntouched == b->cap_touched) {
    int cap = b->cap_touched ? 2 * b->cap_touched : 16;
    char **v = realloc(b->touched, (size_t)cap * sizeof *v);
    if (!v) return; /* then the batch's failure drops every cached case (below) */
    b->touched = v;
    b->cap_touched = cap;
  }
  char *copy = xstrdup(id);
  if (copy) b->touched[b->ntouched++] = copy;
}

/* The notifications of a committed call (or batch) to the host; in a batch,
 * held until it commits. */
static void forward(case_store *s, const collector *k, const case_instance *c) {
  if (s->batch) {
    for (int i = 0; i < k->list.n; i++)
      if (batch_note(s->batch, c, k->list.v[i].name, k->list.v[i].payload) != CASE_OK) break;
    return;
  }
  if (!k->host) return;
  for (int i = 0; i < k->list.n; i++) {
    char *p = json_dumps(k->list.v[i].payload, JSON_COMPACT | JSON_ENCODE_ANY);
    k->host(k->host_ud, c, k->list.v[i].name, p ? p : "null");
    free(p);
  }
}

/* ------------------------------------------------------------------ */
/* Definitions                                                         */
/* ------------------------------------------------------------------ */

/* The stored module sources of a row as a JSON object, or NULL (none stored). */
static json_t *row_modules(const sb_def_row *r) {
  return r->modules ? json_loads(r->modules, 0, NULL) : NULL;
}

static int load_def_row(void *ud, const sb_def_row *r) {
  case_store *s = ud;
  const case_def *d = eng_def_loaded(s->e, r->id, r->version);
  json_t *mods = row_modules(r);
  if (d) {
    int rc = CASE_OK;
    if (strcmp(d->hash, r->hash) != 0) {
      rc = eng_err(s->e, CASE_EXISTS,
                   "store: workflow '%s' version %d is loaded with hash %.12s, the store "
                   "holds %.12s",
                   r->id, r->version, d->hash, r->hash);
    } else if (mods) {
      json_t *mine = def_modules_json(d);
      if (!mine) rc = eng_err(s->e, CASE_NOMEM, "out of memory");
      else if (!json_equal(mine, mods))
        rc = eng_err(s->e, CASE_EXISTS,
                     "store: workflow '%s' version %d is loaded with other Lua module code "
                     "than the store pinned it with; changed code needs a new version",
                     r->id, r->version);
      json_decref(mine);
    }
    json_decref(mods);
    return rc;
  }
  /* Reload with the module code the definition was stored with. */
  int rc = eng_def_load_pinned(s->e, r->source, r->source_len, r->file, mods, &d);
  json_decref(mods);
  if (rc != CASE_OK) return rc;
  if (strcmp(d->hash, r->hash) != 0)
    return eng_err(s->e, CASE_CORRUPT, "store: workflow '%s' version %d: stored hash %.12s does "
                   "not match its source (%.12s)", r->id, r->version, r->hash, d->hash);
  return CASE_OK;
}

/*
 * Lazy loading (issue 12 §14): opening a store parses no definition.  The
 * engine asks its sources (eng_def_need) when a lookup misses: a case being
 * loaded, case_def_find() / case_def_in_force() of an id, case_def_next() over
 * all of them.  Only what is stored and not loaded yet is read and parsed.
 */
typedef struct def_keys {
  case_store *s;
  struct { char *id; int version; } *v;
  int n, cap;
} def_keys;

static int want_key(void *ud, const char *id, int version) {
  def_keys *k = ud;
  if (eng_def_loaded(k->s->e, id, version)) return CASE_OK;
  if (k->n == k->cap) {
    int cap = k->cap ? 2 * k->cap : 8;
    void *v = realloc(k->v, (size_t)cap * sizeof *k->v);
    if (!v) return CASE_NOMEM;
    k->v = v;
    k->cap = cap;
  }
  if (!(k->v[k->n].id = xstrdup(id))) return CASE_NOMEM;
  k->v[k->n++].version = version;
  return CASE_OK;
}

/* Loads stored definition `id` `version` (0: every version; id NULL: every
 * definition) that the engine has not loaded.  A cs_def_need_fn. */
static int need_defs(void *ud, const char *id, int version) {
  case_store *s = ud;
  int rc, was = s->e->sourcing;
  s->e->sourcing = 1; /* loading one must not ask the sources again */
  if (id && version > 0) {
    rc = eng_def_loaded(s->e, id, version) ? CASE_OK
                                           : s->ops->def_get(s->db, id, version, load_def_row, s);
    if (rc == CASE_NOTFOUND) rc = CASE_OK; /* not ours */
  } else {
    def_keys k = {s, NULL, 0, 0};
    rc = s->ops->def_keys(s->db, id, want_key, &k);
    for (int i = 0; rc == CASE_OK && i < k.n; i++)
      rc = s->ops->def_get(s->db, k.v[i].id, k.v[i].version, load_def_row, s);
    for (int i = 0; i < k.n; i++) free(k.v[i].id);
    free(k.v);
  }
  s->e->sourcing = was;
  if (rc == CASE_NOMEM && case_errcode(s->e) != rc) return st_nomem(s->e);
  if (rc != CASE_OK && case_errcode(s->e) != rc) st_berr(s, rc);
  return rc;
}

int st_load_defs(case_store *s, const char *id, int version) {
  return need_defs(s, id, version);
}

/* A definition the program loaded before opening the store must match what the
 * store holds under its id and version (same check as load_def_row). */
static int check_loaded_defs(case_store *s) {
  for (const case_def *d = s->e->defs; d; d = d->next) {
    int rc = s->ops->def_get(s->db, d->id, d->version, load_def_row, s);
    if (rc == CASE_NOTFOUND) continue;
    if (rc != CASE_OK) {
      if (case_errcode(s->e) != rc) st_berr(s, rc);
      return rc;
    }
  }
  return CASE_OK;
}

/* The latest stored version of a profile the engine does not have yet becomes
 * its current profile of that name (what new cases get); one the program
 * loaded itself is kept (new cases get that, stored as a new version). */
typedef struct profile_need {
  case_store *s;
  const char *name; /* NULL: every stored profile */
} profile_need;

static int load_profile_row(void *ud, const sb_profile_row *r) {
  profile_need *q = ud;
  if (q->name && strcmp(q->name, r->name) != 0) return CASE_OK;
  if (eng_profile_find(q->s->e, r->name)) return CASE_OK;
  return eng_profile_load_text(q->s->e, r->name, r->file ? r->file : r->name, r->source,
                               r->source_len);
}

/* Lazily, as need_defs loads definitions: opening a store parses no profile
 * (its Lua runs in the sandbox), a command loads the ones it uses. */
int st_need_profiles(case_store *s, const char *name) {
  if (s->profiles_loaded || (name && eng_profile_find(s->e, name))) return CASE_OK;
  profile_need q = {s, name};
  int rc = s->ops->profile_list(s->db, load_profile_row, &q);
  if (rc != CASE_OK && case_errcode(s->e) != rc) st_berr(s, rc);
  if (rc == CASE_OK && !name) s->profiles_loaded = 1;
  return rc;
}

/* A stored holiday counts from when it was stored: what the store's programs
 * computed before it did not see it, and verify's replay must not either. */
static int load_holiday_row(void *ud, const char *day, const char *name, int64_t added) {
  case_store *s = ud;
  return eng_add_holiday_from(s->e, day, name, added);
}

static int load_holidays(case_store *s) {
  int rc = s->ops->holiday_list(s->db, load_holiday_row, s);
  if (rc != CASE_OK && case_errcode(s->e) != rc) st_berr(s, rc);
  return rc;
}

typedef struct stored_day {
  const char *day;
  int64_t added;
} stored_day;

static int find_day(void *ud, const char *day, const char *name, int64_t added) {
  CASE_UNUSED(name);
  stored_day *sd = ud;
  if (strcmp(day, sd->day) == 0) sd->added = added;
  return CASE_OK;
}

static int recorded_of(void *ud, const sb_journal_row *r) {
  *(int64_t *)ud = r->recorded;
  return CASE_OK;
}

int case_store_add_holiday(case_store *s, const char *date, const char *name) {
  if (!s) return CASE_MISUSE;
  cal_day d;
  if (!date || cal_parse_date(date, &d) != 0) return case_engine_add_holiday(s->e, date, name);
  int rc = writable(s);
  if (rc != CASE_OK) return rc;
  char day[11];
  cal_format_date(d, day);
  /* It counts for the rows recorded from its `added` on (their `recorded`, the
   * wall clock), here and in verify's replay, so `added` must be later than
   * every row before it.  Under the write lock no row can be appended
   * meanwhile; if the last row was recorded in this second, wait for the next
   * (a last row from a clock that runs ahead: the second after it). */
  int64_t now = (int64_t)time(NULL), last = INT64_MIN;
  rc = s->ops->begin(s->db, 1);
  int64_t tail = 0;
  int have = 0;
  unsigned char node[32];
  /* A day stored already keeps its time (only its name may change): no wait,
   * so that casectl --holiday on every command costs nothing. */
  stored_day sd = {day, INT64_MIN};
  if (rc == CASE_OK) rc = s->ops->holiday_list(s->db, find_day, &sd);
  if (rc == CASE_OK && sd.added != INT64_MIN) now = sd.added;
  else if (rc == CASE_OK) rc = s->ops->journal_tail(s->db, &tail, node, &have);
  if (rc == CASE_OK && tail > 0) rc = s->ops->journal_get(s->db, tail, recorded_of, &last);
  while (rc == CASE_OK && now == last) {
    struct timespec nap = {0, 20 * 1000000L};
    nanosleep(&nap, NULL);
    now = (int64_t)time(NULL);
  }
  if (last != INT64_MIN && now <= last) now = last + 1;
  if (rc == CASE_OK) rc = s->ops->holiday_put(s->db, day, name, now);
  if (rc == CASE_OK) rc = eng_add_holiday_from(s->e, date, name, now);
  if (rc == CASE_OK) rc = s->ops->commit(s->db);
  if (rc != CASE_OK) {
    st_berr(s, rc);
    st_rollback(s);
    return rc;
  }
  return eng_ok(s->e);
}

int case_store_add_profile(case_store *s, const char *name) {
  if (!s) return CASE_MISUSE;
  if (!name) return eng_err(s->e, CASE_MISUSE, "case_store_add_profile: NULL name");
  const cs_profile *p = eng_profile_find(s->e, name);
  if (!p) return eng_err(s->e, CASE_NOTFOUND, "no location profile '%s' is loaded", name);
  if (!p->source) return eng_err(s->e, CASE_MISUSE, "profile '%s' has no source text", name);
  int rc = writable(s);
  if (rc != CASE_OK) return rc;
  /* Every stored workflow meets the profile once it is stored: load them all
   * (opening the store loaded none), so that one the profile breaks (a param of
   * the wrong type, profcheck.c) refuses it now rather than a case later. */
  if ((rc = st_load_defs(s, NULL, 0)) != CASE_OK) return rc;
  sb_profile_row r = {(char *)p->name, 0, p->source, p->source_len, (char *)p->hash, p->path};
  int version = 0;
  rc = s->ops->begin(s->db, 1);
  if (rc == CASE_OK) rc = s->ops->profile_put(s->db, &r, &version);
  if (rc == CASE_OK) rc = s->ops->commit(s->db);
  if (rc != CASE_OK) {
    st_berr(s, rc);
    st_rollback(s);
    return rc;
  }
  return eng_ok(s->e);
}

static int put_def(case_store *s, const case_def *d) {
  json_t *mods = def_modules_json(d);
  char *text = mods ? json_dumps(mods, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(mods);
  if (!text) return eng_err(s->e, CASE_NOMEM, "out of memory");
  sb_def_row r = {d->id, d->version, (char *)d->hash, d->source, d->source_len, d->file, text};
  int rc = s->ops->def_put(s->db, &r);
  free(text);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Open, close, config                                                 */
/* ------------------------------------------------------------------ */

int case_store_open(case_engine *e, const char *path, int flags, case_store **out) {
  if (out) *out = NULL;
  if (!e) return CASE_MISUSE;
  if (!path || !out) return eng_err(e, CASE_MISUSE, "case_store_open: NULL argument");
  if ((flags & CASE_STORE_READONLY) && (flags & CASE_STORE_CREATE))
    return eng_err(e, CASE_MISUSE, "case_store_open: CREATE and READONLY together");
  case_store *s = calloc(1, sizeof *s);
  if (!s) return st_nomem(e);
  s->e = e;
  s->readonly = (flags & CASE_STORE_READONLY) != 0;
  s->future_limit = CASE_STORE_FUTURE_LIMIT;
  if (mk_hasher_init(&s->h) != 0) {
    free(s);
    return st_nomem(e);
  }
  s->cache_max = CASE_STORE_CACHE_DEFAULT;
  char err[600];
  int bflags = (s->readonly ? SB_READONLY : 0) | ((flags & CASE_STORE_CREATE) ? SB_CREATE : 0);
  /* A postgresql:// URI or conninfo: the PostgreSQL backend; else a file. */
  int rc = sb_pg_location(path) ? sb_pg_open(path, bflags, &s->ops, &s->db, err, sizeof err)
                                : sb_sqlite_open(path, bflags, &s->ops, &s->db, err, sizeof err);
  if (rc != CASE_OK) {
    mk_hasher_free(&s->h);
    free(s);
    return eng_err(e, rc, "%s", err);
  }
  rc = s->ops->migrate(s->db, s->readonly, on_migrated, s);
  if (rc != CASE_OK) st_berr(s, rc);
  if (rc == CASE_OK) rc = check_loaded_defs(s);
  if (rc == CASE_OK) rc = eng_def_source_add(e, need_defs, s);
  if (rc == CASE_OK) rc = load_holidays(s);
  if (rc != CASE_OK) {
    case_store_close(s);
    return rc;
  }
  *out = s;
  return eng_ok(e);
}

const char *case_store_backend(const char *location) {
  return sb_pg_location(location) ? "postgresql" : "sqlite";
}

char *case_store_shown_location(const char *location) {
  if (!location) return NULL;
  if (sb_pg_location(location)) return sb_pg_shown_location(location);
  char *c = malloc(strlen(location) + 1);
  if (c) strcpy(c, location);
  return c;
}

void case_store_close(case_store *s) {
  if (!s) return;
  if (s->batch) case_store_batch_rollback(s); /* never committed: nothing of it stays */
  /* Its cases stay on the engine, as the host's from now on. */
  while (s->lru_head) store_cache_drop(s->lru_head);
  eng_def_source_remove(s->e, s);
  s->ops->close(s->db);
  mk_hasher_free(&s->h);
  for (int i = 0; i < s->nmods; i++) free(s->mods[i].workflow);
  free(s->mods);
  free(s);
}

int case_store_config(case_store *s, int sync, int busy_ms) {
  if (!s) return CASE_MISUSE;
  if (sync != CASE_STORE_SYNC_NORMAL && sync != CASE_STORE_SYNC_FULL)
    return eng_err(s->e, CASE_INVALID, "case_store_config: unknown sync level %d", sync);
  int rc = s->ops->configure(s->db, sync == CASE_STORE_SYNC_FULL, busy_ms);
  return rc == CASE_OK ? eng_ok(s->e) : st_berr(s, rc);
}

int case_store_add_def(case_store *s, const case_def *d) {
  if (!s) return CASE_MISUSE;
  if (!d) return eng_err(s->e, CASE_MISUSE, "case_store_add_def: NULL definition");
  if (d->engine != s->e)
    return eng_err(s->e, CASE_MISUSE, "the definition belongs to another engine");
  int rc = writable(s);
  if (rc != CASE_OK) return rc;
  /* The stored profiles meet it (profcheck.c): one it breaks refuses it now. */
  if ((rc = st_need_profiles(s, NULL)) != CASE_OK) return rc;
  rc = s->ops->begin(s->db, 1);
  if (rc == CASE_OK) rc = put_def(s, d);
  if (rc == CASE_OK) rc = s->ops->commit(s->db);
  if (rc != CASE_OK) {
    st_berr(s, rc);
    st_rollback(s);
    return rc;
  }
  return eng_ok(s->e);
}

/* ------------------------------------------------------------------ */
/* Cases in memory and on disk                                         */
/* ------------------------------------------------------------------ */

/*
 * Makes the engine's copy of stored case `row` current: the case on the engine
 * when its definition and revision match, else a fresh restore of the stored
 * snapshot (loading definitions another program stored since we opened).
 */
/* ------------------------------------------------------------------ */
/* Profile versions                                                    */
/* ------------------------------------------------------------------ */

typedef struct profile_req {
  case_engine *e;
  const cs_profile *p;
  int version;
  char hash[65];
} profile_req;

static int adopt_profile_row(void *ud, const sb_profile_row *r) {
  profile_req *q = ud;
  q->version = r->version;
  snprintf(q->hash, sizeof q->hash, "%s", r->hash ? r->hash : "");
  int rc = eng_profile_adopt_text(q->e, r->name, r->file ? r->file : r->name, r->source,
                                  r->source_len, &q->p);
  if (rc == CASE_OK && strcmp(q->p->hash, q->hash) != 0)
    rc = eng_err(q->e, CASE_CORRUPT, "store: location profile '%s' version %d: its stored hash "
                 "%.12s does not match its text (%.12s)", r->name, r->version, q->hash,
                 q->p->hash);
  return rc;
}

int st_profile_version(case_store *s, case_engine *e, const char *name, int version,
                       const cs_profile **out) {
  *out = NULL;
  if (!name || version <= 0) return CASE_OK;
  profile_req q = {e, NULL, 0, ""};
  int rc = s->ops->profile_get(s->db, name, version, adopt_profile_row, &q);
  if (rc != CASE_OK) {
    if (case_errcode(e) != rc) eng_err(e, rc, "%s", s->ops->errmsg(s->db));
    return rc;
  }
  *out = q.p;
  return CASE_OK;
}

/*
 * The version of location `location`'s profile a new case is pinned to: the
 * engine's current profile of that name, stored as a new version first when
 * its text is not the latest stored one (inside the caller's write
 * transaction, as put_def() pins the definition).  CASE_NOTFOUND when the
 * location has no profile, stored or loaded; *p NULL and *version 0 when it
 * has no text.
 */
static int pin_profile(case_store *s, const char *location, const cs_profile **p, int *version) {
  *p = NULL;
  *version = 0;
  if (!location) return CASE_OK;
  int rc = st_need_profiles(s, location);
  if (rc != CASE_OK) return rc;
  const cs_profile *cur = eng_profile_find(s->e, location);
  if (!cur)
    return eng_err(s->e, CASE_NOTFOUND, "no location profile '%s' is stored or loaded (store "
                   "it first: case_store_add_profile(), casectl init --profile %s=FILE)",
                   location, location);
  if (!cur->source || !cur->hash[0]) return CASE_OK;
  sb_profile_row r = {(char *)cur->name, 0, cur->source, cur->source_len, (char *)cur->hash,
                      cur->path};
  rc = s->ops->profile_put(s->db, &r, version);
  if (rc != CASE_OK) return st_berr(s, rc);
  *p = cur;
  return CASE_OK;
}

static int load_case(case_store *s, const sb_case_row *row, case_instance **out) {
  *out = NULL;
  case_instance *c = case_instance_find(s->e, row->id);
  if (c && c->st.revision == row->revision && c->def->version == row->version &&
      strcmp(c->def->id, row->workflow) == 0 && c->profile_version == row->profile_version) {
    st_cache_touch(s, c, 0);
    *out = c;
    return CASE_OK;
  }
  case_instance_free(c);
  char why[300];
  if (sb_case_row_loadable(row, why, sizeof why) != CASE_OK)
    return eng_err(s->e, CASE_CORRUPT, "%s", why);
  /* Its definition, loaded from the store on first use (with its error), and
   * the version of its location's profile it is pinned to. */
  int rc = eng_def_loaded(s->e, row->workflow, row->version)
               ? CASE_OK : need_defs(s, row->workflow, row->version);
  const cs_profile *p = NULL;
  if (rc == CASE_OK) rc = st_profile_version(s, s->e, row->location, row->profile_version, &p);
  /* a case pinned to no version runs on the location's current profile */
  if (rc == CASE_OK && !p && row->location) rc = st_need_profiles(s, row->location);
  if (rc == CASE_OK) {
    eng_parts parts = {row->workflow, row->hash, row->id, row->location, row->version,
                       row->revision, row->done, row->configuration, row->data, row->state};
    rc = eng_instance_restore_parts(s->e, &parts, p, &c);
    /* What the store holds cannot be invalid input: a latest journal row whose
     * state, data or configuration does not restore is damage (casectl verify). */
    if (rc == CASE_INVALID) {
      char why2[512];
      snprintf(why2, sizeof why2, "%s", case_errmsg(s->e));
      return eng_err(s->e, CASE_CORRUPT, "its latest journal row (revision %lld) is damaged: "
                     "%s (casectl verify names the row)", (long long)row->revision, why2);
    }
  }
  if (rc != CASE_OK) return rc;
  c->profile_version = p ? row->profile_version : 0;
  c->profile_first = p ? row->profile_first : 0;
  st_cache_touch(s, c, 1);
  *out = c;
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* The case cache                                                      */
/* ------------------------------------------------------------------ */

static void lru_unlink(case_store *s, case_instance *c) {
  if (c->lru_prev) c->lru_prev->lru_next = c->lru_next;
  else s->lru_head = c->lru_next;
  if (c->lru_next) c->lru_next->lru_prev = c->lru_prev;
  else s->lru_tail = c->lru_prev;
  c->lru_prev = c->lru_next = NULL;
  s->lru_n--;
}

void st_cache_touch(case_store *s, case_instance *c, int adopt) {
  if (s->batch) batch_touch(s->batch, c->id);
  if (c->cached_by != s) {
    if (!adopt || c->cached_by) return; /* the host's own case, or another store's */
    c->cached_by = s;
    s->lru_n++;
  } else if (s->lru_head == c) {
    return;
  } else {
    s->lru_n++; /* lru_unlink counts it out */
    lru_unlink(s, c);
  }
  c->lru_prev = NULL;
  c->lru_next = s->lru_head;
  if (s->lru_head) s->lru_head->lru_prev = c;
  else s->lru_tail = c;
  s->lru_head = c;
}

void st_cache_trim(case_store *s, const case_instance *keep) {
  if (s->cache_max < 0 || s->batch) return; /* a batch keeps its cases until it ends */
  case_instance *c = s->lru_tail;
  while (c && s->lru_n > s->cache_max) {
    case_instance *prev = c->lru_prev;
    if (c != keep) case_instance_free(c); /* leaves the list through store_cache_drop */
    c = prev;
  }
}

void store_cache_drop(case_instance *c) {
  case_store *s = c->cached_by;
  lru_unlink(s, c);
  c->cached_by = NULL;
}

long case_store_set_cache(case_store *s, long cases) {
  if (!s) return -1;
  long old = s->cache_max;
  s->cache_max = cases < 0 ? -1 : cases;
  st_cache_trim(s, NULL);
  return old;
}

long case_store_cache(const case_store *s, long *loaded) {
  if (loaded) *loaded = s ? s->lru_n : 0;
  return s ? s->cache_max : -1;
}

/* ------------------------------------------------------------------ */
/* Idempotency keys                                                    */
/* ------------------------------------------------------------------ */

/* An idempotency key and the hash of the request it comes with. */
typedef struct idem_req {
  const char *key;
  char hash[65];
} idem_req;

/* The tag of the request serialisation (docs/store.md, "Idempotency keys"). */
#define REQUEST_TAG "libcase.request.v1"

/*
 * The identity of a fire an idempotency key names: SHA-256 (hex) over the
 * canonical JSON array
 *   ["libcase.request.v1", case, event, payload, actor, role]
 * with payload as a JSON value (null when absent), actor and role null when
 * absent.  The time is not in it (a retry usually takes "now" again); with
 * CASE_FIRE_KEY_TIME it is compared with the first use's journal row instead.
 * The expected revision is a precondition, not part of the request.  Returns
 * CASE_OK, CASE_INVALID (payload not JSON) or CASE_NOMEM, engine error set.
 */
static int request_hash(case_store *s, const char *id, const char *event, const char *payload,
                        const char *actor, const char *role, char out[65]) {
  json_t *p = st_parse_any(payload);
  if (!p) return eng_err(s->e, CASE_INVALID, "the payload is not valid JSON");
  json_t *a = json_pack("[s, s, s, o, s?, s?]", REQUEST_TAG, id, event, p, actor, role);
  char *text = a ? st_canon(a) : NULL;
  json_decref(a);
  int ok = text && sha256_hex(text, strlen(text), out) == 0;
  free(text);
  return ok ? CASE_OK : st_nomem(s->e);
}

/* What a reused key's first journal row says, to compare a request with it. */
typedef struct first_row {
  int found, nomem;
  char *case_id, *event, *payload, *actor, *role;
  int64_t time;
} first_row;

static int keep_first_row(void *ud, const sb_journal_row *r) {
  first_row *f = ud;
  f->found = 1;
  f->case_id = xstrdup(r->case_id);
  f->event = xstrdup(r->event);
  f->payload = xstrdup(r->payload);
  f->actor = r->actor ? xstrdup(r->actor) : NULL;
  f->role = r->role ? xstrdup(r->role) : NULL;
  f->time = r->time;
  f->nomem = !f->case_id || !f->event || !f->payload || (r->actor && !f->actor) ||
             (r->role && !f->role);
  return 1; /* stop: one row is enough */
}

static void first_row_free(first_row *f) {
  free(f->case_id);
  free(f->event);
  free(f->payload);
  free(f->actor);
  free(f->role);
}

static int same_str(const char *a, const char *b) {
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/*
 * A key that is already stored: *replay = 1 when this is the same request
 * (same hash; for a key stored before schema 5, the same case; with
 * CASE_FIRE_KEY_TIME also the same event time as the first use's row), and
 * CASE_OK.  Otherwise CASE_EXISTS with a message naming the first use and what
 * differs from it.  Called inside the fire's transaction.
 */
static int key_check(case_store *s, const char *key, const char *first_case, int64_t first_seq,
                     const char *first_hash, const char *hash, const char *id, const char *event,
                     const char *payload, const char *actor, const char *role, int64_t at,
                     int with_time, int *replay) {
  *replay = 0;
  int same = first_hash ? strcmp(first_hash, hash) == 0 : strcmp(first_case, id) == 0;
  first_row f;
  memset(&f, 0, sizeof f);
  if (!same || with_time) {
    int rc = s->ops->journal_from(s->db, first_seq - 1, 1, keep_first_row, &f);
    if (f.nomem || (rc != CASE_OK && rc != 1)) { /* 1: keep_first_row stopped the read */
      first_row_free(&f);
      return f.nomem || rc == CASE_NOMEM ? st_nomem(s->e) : st_berr(s, rc);
    }
    if (!f.found) {
      first_row_free(&f);
      return eng_err(s->e, CASE_CORRUPT, "idempotency key '%s' names journal seq %lld, which "
                     "does not exist", key, (long long)first_seq);
    }
    if (same && with_time && f.time != at) same = 0;
  }
  if (same) {
    first_row_free(&f);
    *replay = 1;
    return CASE_OK;
  }
  const char *names[6];
  int n = 0;
  char *mine = canon_text(payload);
  if (!same_str(f.case_id, id)) names[n++] = "case";
  if (!same_str(f.event, event)) names[n++] = "event";
  if (!mine || !f.payload || strcmp(mine, f.payload) != 0) names[n++] = "payload";
  if (!same_str(f.actor, actor)) names[n++] = "actor";
  if (!same_str(f.role, role)) names[n++] = "role";
  if (with_time && f.time != at) names[n++] = "time";
  free(mine);
  sbuf what;
  sbuf_init(&what);
  for (int i = 0; i < n; i++)
    sbuf_printf(&what, "%s%s", i == 0 ? "" : i == n - 1 ? " and " : ", ", names[i]);
  if (n == 0) sbuf_puts(&what, "request");
  char *w = sbuf_take(&what);
  int rc = eng_err(s->e, CASE_EXISTS,
                   "idempotency key '%s' was first used for event '%s' on case '%s' (journal "
                   "seq %lld); this request differs in its %s: refused, nothing written (a "
                   "new request needs a new key)",
                   key, f.event ? f.event : "?", first_case, (long long)first_seq,
                   w ? w : "request");
  free(w);
  first_row_free(&f);
  return rc;
}

/* Owned strings of one journal row and the matching case row. */
typedef struct pending_write {
  sb_journal_row j;
  sb_case_row cr;
  char hash[65];
  char *payload, *config, *data, *state;
  sb_timer_row *timers;
  int ntimers;
} pending_write;

static void timer_rows_free(sb_timer_row *v, int n) {
  for (int i = 0; i < n; i++) {
    free(v[i].timer_id);
    free(v[i].last_day);
  }
  free(v);
}

static void pending_free(pending_write *w) {
  free(w->payload);
  free(w->config);
  free(w->data);
  free(w->state);
  timer_rows_free(w->timers, w->ntimers);
  memset(w, 0, sizeof *w);
}

void st_timers_free(st_timers *m) {
  timer_rows_free(m->v, m->n);
  memset(m, 0, sizeof *m);
}

/* 1 when the rows `v` are the mirror's, field by field and in order. */
static int timers_same(const st_timers *m, const sb_timer_row *v, int n) {
  if (!m->known || m->n != n) return 0;
  for (int i = 0; i < n; i++) {
    const sb_timer_row *a = &m->v[i], *b = &v[i];
    if (a->seq != b->seq || a->due != b->due || a->fired != b->fired ||
        strcmp(a->timer_id, b->timer_id) != 0 || strcmp(a->kind, b->kind) != 0 ||
        strcmp(a->name, b->name) != 0 || !a->last_day != !b->last_day ||
        (a->last_day && strcmp(a->last_day, b->last_day) != 0))
      return 0;
  }
  return 1;
}

/* The timer rows mirroring the case's running timers (none once done). */
static int timer_rows(const case_instance *c, pending_write *w) {
  if (c->st.done || c->st.ntimers == 0) return CASE_OK;
  w->timers = calloc((size_t)c->st.ntimers, sizeof *w->timers);
  if (!w->timers) return CASE_NOMEM;
  for (int i = 0; i < c->st.ntimers; i++) {
    const cs_timer_inst *ti = &c->st.timers[i];
    const cs_timer *tm = &c->def->timers[ti->timer];
    sb_timer_row *r = &w->timers[w->ntimers++];
    r->case_id = c->id;
    r->timer_id = xstrdup(ti->id);
    r->seq = ti->seq;
    r->kind = (char *)chart_timer_kind(tm);
    r->name = (char *)chart_timer_name(c->def, ti);
    r->due = ti->due;
    r->fired = ti->fired;
    if (ti->last_day != CAL_NO_DAY) {
      r->last_day = malloc(11);
      if (r->last_day) cal_format_date(ti->last_day, r->last_day);
    }
    if (!r->timer_id || (ti->last_day != CAL_NO_DAY && !r->last_day)) return CASE_NOMEM;
  }
  return CASE_OK;
}

int st_timers_capture(const case_instance *c, st_timers *m) {
  memset(m, 0, sizeof *m);
  pending_write w;
  memset(&w, 0, sizeof w);
  int rc = timer_rows(c, &w);
  if (rc != CASE_OK) {
    pending_free(&w);
    return rc;
  }
  m->v = w.timers;
  m->n = w.ntimers;
  m->known = 1;
  return CASE_OK;
}

/*
 * Writes what an accepted macrostep produced, inside the caller's write
 * transaction: the journal row (hash-chained to `prev_hash`), the case row
 * (inserted when old_revision < 0, else updated only while still at
 * old_revision), the case's timers, its outbox rows and the idempotency key
 * with the hash of its request.
 * On success *seq gets the journal sequence.  Sets the engine error on failure.
 */
static int persist(case_store *s, case_instance *c, const char *event, const char *payload_json,
                   const char *actor, const char *role, int64_t at, int64_t old_revision,
                   const char *prev_hash, const collector *k, const idem_req *key, int64_t *seq,
                   char *hash_out /* [65] or NULL: the new row's hash */, st_timers *mirror,
                   int repin) {
  case_engine *e = s->e;
  pending_write w;
  memset(&w, 0, sizeof w);
  int rc = CASE_NOMEM;
  json_t *cfg = NULL;
  char *cfg_text = NULL;
  int64_t now = s->rec_now ? s->rec_now : (int64_t)time(NULL);
  if (k->failed) goto out;
  w.payload = canon_text(payload_json);
  if (!w.payload) {
    rc = eng_err(e, CASE_INVALID, "the payload is not valid JSON");
    goto out;
  }
  if (case_instance_configuration(c, &cfg_text) != CASE_OK) goto out;
  cfg = json_loads(cfg_text, 0, NULL);
  w.config = cfg ? st_canon(cfg) : NULL;
  json_t *data = data_json(c->st.data, c->def);
  w.data = data ? st_canon(data) : NULL;
  json_decref(data);
  if (!w.config || !w.data || eng_instance_state(c, &w.state) != CASE_OK) goto out;
  if (timer_rows(c, &w) != CASE_OK) goto out;

  w.j.case_id = c->id;
  w.j.revision = c->st.revision;
  w.j.event = (char *)event;
  w.j.payload = w.payload;
  w.j.actor = (char *)actor;
  w.j.role = (char *)role;
  w.j.time = at;
  w.j.recorded = now;
  w.j.configuration = w.config;
  w.j.data = w.data;
  w.j.prev_hash = (char *)prev_hash;
  w.j.done = c->st.done != 0;
  w.j.state = w.state;
  rc = row_hash_canonical(&s->h, &w.j, w.hash);
  if (rc == CASE_CORRUPT) {
    rc = eng_err(e, CASE_CORRUPT, "store: the journal hash of case '%s' revision %lld differs "
                 "between its two serialisations (a bug)", c->id, (long long)c->st.revision);
    goto out;
  }
  if (rc != CASE_OK) {
    rc = st_nomem(e);
    goto out;
  }
  w.j.hash = w.hash;
  unsigned char node[MK_HASH_LEN];
  int have_node = 0;
  rc = tree_node(s, &w.j, old_revision < 0 ? c : NULL, node, &have_node);
  if (rc == CASE_CORRUPT) {
    rc = eng_err(e, CASE_INVALID, "store: case '%s': a text is not UTF-8", c->id);
    goto out;
  }
  w.j.node = have_node ? node : NULL;
  if (rc == CASE_OK) rc = s->ops->journal_append(s->db, &w.j);

  /* The case row changes only at its creation and when its profile pin does
   * (schema 10): the journal row is the case's state. */
  w.cr.id = c->id;
  w.cr.workflow = c->def->id;
  w.cr.version = c->def->version;
  w.cr.hash = (char *)c->def->hash;
  w.cr.location = c->location;
  w.cr.created = now;
  w.cr.profile_version = c->profile_version;
  w.cr.profile_first = c->profile_first;
  if (rc == CASE_OK && old_revision < 0) rc = s->ops->case_insert(s->db, &w.cr);
  else if (rc == CASE_OK && repin) rc = s->ops->case_update(s->db, &w.cr, old_revision);
  /* Timer rows only when they changed: most fires start and stop no timer. */
  st_timers none = {NULL, 0, 1};
  const st_timers *was = mirror ? mirror : old_revision < 0 ? &none : NULL;
  if (rc == CASE_OK && !(was && timers_same(was, w.timers, w.ntimers))) {
    rc = s->ops->timers_replace(s->db, c->id, w.timers, w.ntimers);
    if (rc == CASE_OK && mirror) { /* the rows now stored */
      st_timers_free(mirror);
      mirror->v = w.timers;
      mirror->n = w.ntimers;
      mirror->known = 1;
      w.timers = NULL;
      w.ntimers = 0;
    }
  }
  for (int i = 0; rc == CASE_OK && i < k->list.n; i++) {
    char *p = st_canon(k->list.v[i].payload);
    if (!p) {
      rc = st_nomem(e);
      goto out;
    }
    sb_outbox_row o = {0, c->id, w.j.seq, k->list.v[i].name, p, now, 0};
    rc = s->ops->outbox_add(s->db, &o);
    free(p);
  }
  if (rc == CASE_OK && key)
    rc = s->ops->idem_put(s->db, key->key, c->id, w.j.seq, key->hash, now);
  if (rc != CASE_OK) {
    st_berr(s, rc);
    goto out;
  }
  *seq = w.j.seq;
  if (hash_out) memcpy(hash_out, w.hash, 65);
out:
  if (rc == CASE_NOMEM && case_errcode(e) != CASE_NOMEM) st_nomem(e);
  free(cfg_text);
  json_decref(cfg);
  pending_free(&w);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Mail between stored cases (issue 13)                                */
/* ------------------------------------------------------------------ */

/* While a store call runs, the engine leaves the mail to the store, which
 * delivers it message by message inside the call's transaction: each message
 * becomes a journal row of the case it changes (a child's "create" row, an
 * event from another case, a "cancel.invoke"), with actor "#_scxml_<sender>",
 * so every case's journal holds exactly what changed it. */
typedef struct mail_run {
  int saved;               /* e->manual_mail before the call */
  case_instance **touched; /* cases the deliveries changed in memory */
  int ntouched;
  collector notes;         /* their notifications, forwarded after commit */
  const case_instance **note_case; /* per note: whose it is */
} mail_run;

#define STORE_MAIL_MAX 100000

static void mail_begin(case_store *s, mail_run *m) {
  memset(m, 0, sizeof *m);
  m->saved = s->e->manual_mail;
  s->e->manual_mail = 1;
}

/* The call failed: what its macrosteps mailed is void, and the cases changed
 * in memory are dropped (the next call restores them from their rows).
 * Returns 1 when `own` (the caller's case) was one of them and is freed. */
static int mail_abort(case_store *s, mail_run *m, const case_instance *own) {
  case_engine *e = s->e;
  int gone = 0;
  json_decref(e->mail);
  e->mail = NULL;
  for (int i = 0; i < m->ntouched; i++) {
    int dup = 0;
    for (int k = 0; k < i; k++) dup |= m->touched[k] == m->touched[i];
    if (dup) continue;
    gone |= m->touched[i] == own;
    case_instance_free(m->touched[i]);
  }
  free(m->touched);
  free(m->note_case);
  collect_free(&m->notes);
  e->manual_mail = m->saved;
  memset(m, 0, sizeof *m);
  return gone;
}

/* Committed: the deliveries' notifications go to the host. */
static void mail_done(case_store *s, mail_run *m) {
  case_engine *e = s->e;
  e->manual_mail = m->saved;
  if (s->batch) {
    for (int i = 0; i < m->ntouched; i++) batch_touch(s->batch, m->touched[i]->id);
    for (int i = 0; i < m->notes.list.n; i++)
      batch_note(s->batch, m->note_case[i], m->notes.list.v[i].name,
                 m->notes.list.v[i].payload);
  } else if (e->notify)
    for (int i = 0; i < m->notes.list.n; i++) {
      char *p = json_dumps(m->notes.list.v[i].payload, JSON_COMPACT | JSON_ENCODE_ANY);
      e->notify(e->notify_ud, m->note_case[i], m->notes.list.v[i].name, p ? p : "null");
      free(p);
    }
  free(m->touched);
  free(m->note_case);
  collect_free(&m->notes);
  memset(m, 0, sizeof *m);
}

/* Delivers the engine's mail inside the caller's write transaction. */
static int mail_deliver(case_store *s, mail_run *m) {
  case_engine *e = s->e;
  for (int n = 0; e->mail; n++) {
    if (n >= STORE_MAIL_MAX)
      return eng_err(e, CASE_LIMIT, "more than %d messages between cases in one call: cases "
                     "keep sending to each other; nothing was written", STORE_MAIL_MAX);
    json_t *first = json_array_get(e->mail, 0);
    const char *to = json_string_value(json_object_get(first, "to"));
    const char *kind = json_string_value(json_object_get(first, "kind"));
    sb_case_row row;
    memset(&row, 0, sizeof row);
    int have = 0, rc = to ? s->ops->case_get(s->db, to, &row) : CASE_NOTFOUND;
    if (rc == CASE_OK) {
      have = 1;
      case_instance *tc = NULL;
      rc = load_case(s, &row, &tc); /* the stored case, current */
    } else if (rc == CASE_NOTFOUND) {
      rc = CASE_OK;
    } else {
      st_berr(s, rc);
    }
    if (rc == CASE_OK && !have && (!kind || strcmp(kind, "invoke") != 0)) {
      json_array_remove(e->mail, 0); /* for no stored case: dropped */
      if (json_array_size(e->mail) == 0) {
        json_decref(e->mail);
        e->mail = NULL;
      }
      continue;
    }
    collector k;
    case_instance *target = NULL;
    char *event = NULL, *actor = NULL;
    json_t *payload = NULL;
    if (rc == CASE_OK) {
      collect_start(e, &k);
      rc = eng_deliver_one(e, &target, &event, &payload, &actor);
      collect_stop(e, &k);
    } else {
      memset(&k, 0, sizeof k);
    }
    if (rc == CASE_OK && target) {
      case_instance **t = realloc(m->touched, (size_t)(m->ntouched + 1) * sizeof *t);
      if (t) {
        m->touched = t;
        m->touched[m->ntouched++] = target;
      }
      char *ptext = payload ? json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
      int64_t seq = 0;
      if (!t || (payload && !ptext) || !event) {
        rc = st_nomem(e);
      } else if (strcmp(event, "create") == 0) {
        /* a child case: its own journal, pinned to its own definition */
        rc = put_def(s, target->def);
        if (rc != CASE_OK) st_berr(s, rc);
        else
          rc = persist(s, target, "create", ptext, actor, NULL, target->st.last_time, -1, "",
                       &k, NULL, &seq, NULL, NULL, 0);
      } else {
        rc = persist(s, target, event, ptext, actor, NULL, target->st.last_time, row.revision,
                     row.last_hash ? row.last_hash : "", &k, NULL, &seq, NULL, NULL, 0);
      }
      free(ptext);
      for (int i = 0; rc == CASE_OK && i < k.list.n; i++) {
        const case_instance **nc =
            realloc(m->note_case, (size_t)(m->notes.list.n + 1) * sizeof *nc);
        if (!nc || plist_push(&m->notes.list, k.list.v[i].name,
                              json_incref(k.list.v[i].payload)) != CASE_OK) {
          if (nc) m->note_case = nc;
          rc = st_nomem(e);
          break;
        }
        m->note_case = nc;
        m->note_case[m->notes.list.n - 1] = target;
      }
    }
    collect_free(&k);
    free(event);
    free(actor);
    json_decref(payload);
    sb_case_row_free(&row);
    if (rc != CASE_OK) return rc;
  }
  return CASE_OK;
}

/* A refused row keeps texts of at most REFUSED_KEEP bytes: a role that may not
 * act must not be able to grow the store by more than that per attempt. */
#define REFUSED_KEEP 1024

/* The first bytes of s, at most max and cut at a UTF-8 boundary. */
static size_t utf8_cut(const char *s, size_t len, size_t max) {
  if (len <= max) return len;
  size_t n = max;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
  return n;
}

/* A text for a refused row: itself when short, else its first bytes (NULL
 * stays NULL).  Caller frees. */
static char *bounded(const char *s) {
  if (!s) return NULL;
  size_t len = strlen(s);
  return xstrndup(s, utf8_cut(s, len, REFUSED_KEEP));
}

/* A payload for a refused row: itself when short; else a JSON object saying
 * how long it was, its SHA-256 and its first bytes:
 *   {"refused_payload_cut": {"bytes": N, "sha256": "...", "head": "..."}} */
static char *bounded_payload(const char *p) {
  if (!p) return NULL;
  size_t len = strlen(p);
  if (len <= REFUSED_KEEP) return xstrdup(p);
  char hex[65] = "";
  if (sha256_hex(p, len, hex) != 0) hex[0] = 0;
  json_t *head = json_stringn(p, utf8_cut(p, len, REFUSED_KEEP / 2));
  json_t *o = json_pack("{s:{s:I, s:s, s:o*}}", "refused_payload_cut", "bytes", (json_int_t)len,
                        "sha256", hex, "head", head);
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return text;
}

/* Records a refused event in its own small transaction; keeps the engine error. */
static void record_refusal(case_store *s, const char *id, int64_t revision, const char *event,
                           const char *payload, const char *actor, const char *role, int64_t at,
                           int code) {
  char *full = xstrdup(case_errmsg(s->e));
  char *msg = bounded(full), *ev = bounded(event), *who = bounded(actor);
  char *pl = bounded_payload(payload);
  sb_refused_row r = {(char *)id, revision, ev ? ev : "", pl, who, (char *)role, at,
                      (int64_t)time(NULL), code, msg ? msg : "", 0};
  int rc = (payload && !pl) || (event && !ev) || (actor && !who) ? CASE_NOMEM : CASE_OK;
  if (rc == CASE_OK) rc = s->ops->begin(s->db, 1);
  if (rc == CASE_OK) rc = s->ops->refused_add(s->db, &r);
  if (rc == CASE_OK) rc = s->ops->commit(s->db);
  if (rc != CASE_OK) st_rollback(s);
  /* The refusal is the caller's answer; restore its message. */
  eng_err(s->e, code, "%s", full ? full : case_errstr(code));
  free(full);
  free(msg);
  free(ev);
  free(who);
  free(pl);
}

static int is_refusal(int rc) {
  return rc == CASE_NOTHANDLED || rc == CASE_DENIED || rc == CASE_GUARD || rc == CASE_SCRIPT ||
         rc == CASE_LIMIT || rc == CASE_INVALID || rc == CASE_DONE;
}

/* ------------------------------------------------------------------ */
/* Create, fire, get                                                   */
/* ------------------------------------------------------------------ */

static int create_once(case_store *s, const case_def *d, const char *id,
                       const char *location, const char *data_json, const char *actor,
                       const char *role, int64_t at, case_instance **out);

int case_store_create(case_store *s, const case_def *d, const char *id, const char *location,
                      const char *data_json, const char *actor, const char *role, int64_t at,
                      case_instance **out) {
  int rc;
  for (int attempt = 0;; attempt++) {
    rc = create_once(s, d, id, location, data_json, actor, role, at, out);
    if (rc == CASE_OK || !s || !should_retry(s, rc, attempt)) return rc;
  }
}

/* One attempt of case_store_create(): one transaction. */
static int create_once(case_store *s, const case_def *d, const char *id,
                       const char *location, const char *data_json, const char *actor,
                       const char *role, int64_t at, case_instance **out) {
  if (out) *out = NULL;
  if (!s) return CASE_MISUSE;
  case_engine *e = s->e;
  if (!d || !id) return eng_err(e, CASE_MISUSE, "case_store_create: NULL argument");
  if (d->engine != e) return eng_err(e, CASE_MISUSE, "the definition belongs to another engine");
  if (actor && strcmp(actor, TIMER_ACTOR) == 0)
    return eng_err(e, CASE_INVALID, "actor '%s' is reserved for the clock: a case is not "
                   "created by it", TIMER_ACTOR);
  int rc = writable(s);
  if (rc != CASE_OK) return rc;
  char why[160];
  if (case_id_check(id, why, sizeof why) != CASE_OK) return eng_err(e, CASE_INVALID, "%s", why);
  if ((rc = check_utf8(s, "the location", location)) != CASE_OK ||
      (rc = check_utf8(s, "the actor", actor)) != CASE_OK ||
      (rc = check_utf8(s, "the role", role)) != CASE_OK ||
      (rc = check_future(s, "event time", at)) != CASE_OK)
    return rc;
  if (role && def_role_find(d, role) < 0) {
    /* The journal would say a role the workflow does not know created the case. */
    sbuf b;
    sbuf_init(&b);
    for (int i = 0; i < d->nroles; i++) sbuf_printf(&b, "%s%s", i ? ", " : "", d->roles[i]);
    char *list = sbuf_take(&b);
    eng_err(e, CASE_DENIED, "case '%s': role '%s' is not declared by workflow '%s' (roles: %s); "
            "nothing was written", id, role, d->id, list && *list ? list : "none");
    free(list);
    return CASE_DENIED;
  }
  rc = write_begin(s);
  if (rc != CASE_OK) return st_berr(s, rc);
  /* Pin the definition: storing it again is a no-op. */
  rc = put_def(s, d);
  sb_case_row row;
  if (rc == CASE_OK) {
    rc = s->ops->case_get(s->db, id, &row);
    if (rc == CASE_OK) {
      sb_case_row_free(&row);
      st_rollback(s);
      return eng_err(e, CASE_EXISTS, "a case with id '%s' is already stored", id);
    }
    if (rc == CASE_NOTFOUND) rc = CASE_OK;
  }
  if (rc != CASE_OK) {
    st_berr(s, rc);
    st_rollback(s);
    return rc;
  }
  /* Pin the location's profile: the engine's current one, as a stored version. */
  const cs_profile *prof = NULL;
  int pver = 0;
  rc = pin_profile(s, location, &prof, &pver);
  if (rc != CASE_OK) {
    st_rollback(s);
    return rc;
  }
  collector k;
  mail_run mr;
  mail_begin(s, &mr);
  collect_start(e, &k);
  case_instance *c = NULL;
  rc = eng_instance_create(e, d, id, location, prof, data_json, at, &c);
  collect_stop(e, &k);
  if (rc != CASE_OK) {
    st_rollback(s);
    mail_abort(s, &mr, NULL);
    collect_free(&k);
    return rc;
  }
  c->profile_version = c->profile_first = pver;
  int64_t seq = 0;
  rc = persist(s, c, "create", data_json, actor, role, at, -1, "", &k, NULL, &seq, NULL, NULL, 0);
  if (rc == CASE_OK && e->mail) rc = mail_deliver(s, &mr);
  if (rc == CASE_OK) {
    rc = write_commit(s);
    if (rc != CASE_OK) st_berr(s, rc);
  }
  if (rc != CASE_OK) {
    st_rollback(s);
    if (!mail_abort(s, &mr, c)) case_instance_free(c);
    collect_free(&k);
    return rc;
  }
  mail_done(s, &mr);
  eng_ok(e);
  st_cache_touch(s, c, 1);
  forward(s, &k, c);
  collect_free(&k);
  st_cache_trim(s, c);
  if (out) *out = c;
  return CASE_OK;
}

int case_store_fire(case_store *s, const char *id, const char *event, const char *payload_json,
                    const char *actor, const char *role, int64_t at, int64_t expected_revision,
                    const char *idempotency_key, int64_t *seq) {
  return case_store_fire_v2(s, id, event, payload_json, actor, role, at, expected_revision,
                            idempotency_key, 0, seq, NULL);
}

/*
 * Fires every timer of stored case `c` due at or before `at`, in due order,
 * each journalled as its own timer row inside the caller's write transaction
 * (what a fire at `at` does before its event, so that replay meets them in the
 * same order).  *cur_rev and cur_hash follow the rows written; `later` (set up
 * here) collects their notifications, for the caller to forward after commit
 * and free.  Returns CASE_OK; CASE_LIMIT with *cur_rev >= 0 when there were
 * more than CASE_LIMIT_EXPIRIES expiries (the message says which timer; `c` is
 * as the rows written left it); or a timer's failure with *cur_rev = -1 (`c`
 * changed in memory only).  On failure the caller rolls back and frees `c`
 * unless it is still as stored.
 */
static int fire_due_timers(case_store *s, case_instance *c, int64_t at, int64_t *cur_rev,
                           char cur_hash[65], collector *later, st_timers *mirror) {
  case_engine *e = s->e;
  memset(later, 0, sizeof *later);
  later->host = e->notify;
  later->host_ud = e->notify_ud;
  long long expiries = 0;
  int rc = CASE_OK;
  while (at >= c->st.last_time) {
    int i = chart_timer_next(c, at);
    if (i < 0) break;
    if (++expiries > e->limits[CASE_LIMIT_EXPIRIES]) {
      /* The case's timers keep running out: nothing of this fire is kept. */
      const cs_timer *tm = &c->def->timers[c->st.timers[i].timer];
      return eng_err_at(e, CASE_LIMIT, c->def->file, tm->pos,
                        "case '%s': more than %lld timer expiries in one fire ('%s' of state "
                        "'%s' keeps running out: a delay of 0 that re-enters its state?); "
                        "nothing was written (raise CASE_LIMIT_EXPIRIES if the timers are "
                        "meant)",
                        c->id, e->limits[CASE_LIMIT_EXPIRIES], tm->name,
                        c->def->states[tm->state].id);
    }
    char *tev = st_timer_event(c, i);
    int64_t due = c->st.timers[i].due;
    collector tk;
    collect_start(e, &tk);
    int one = 0;
    rc = tev ? chart_tick_one(c, at, &one) : st_nomem(e);
    collect_stop(e, &tk);
    int64_t tseq = 0;
    if (rc == CASE_OK)
      rc = persist(s, c, tev, NULL, TIMER_ACTOR, NULL, due, *cur_rev, cur_hash, &tk, NULL, &tseq,
                   cur_hash, mirror, 0);
    free(tev);
    for (int m = 0; rc == CASE_OK && m < tk.list.n; m++) {
      rc = plist_push(&later->list, tk.list.v[m].name, json_incref(tk.list.v[m].payload));
      if (rc != CASE_OK) st_nomem(e);
    }
    collect_free(&tk);
    if (rc != CASE_OK) {
      *cur_rev = -1; /* a timer failed, the case changed in memory: the caller frees it */
      return rc;
    }
    *cur_rev = c->st.revision;
  }
  return CASE_OK;
}

static int fire_once(case_store *s, const char *id, const char *event,
                     const char *payload_json, const char *actor, const char *role, int64_t at,
                     int64_t expected_revision, const char *idempotency_key, int flags,
                     int64_t *seq, int *replayed);

int case_store_fire_v2(case_store *s, const char *id, const char *event,
                       const char *payload_json, const char *actor, const char *role, int64_t at,
                       int64_t expected_revision, const char *idempotency_key, int flags,
                       int64_t *seq, int *replayed) {
  int rc;
  for (int attempt = 0;; attempt++) {
    rc = fire_once(s, id, event, payload_json, actor, role, at, expected_revision,
                   idempotency_key, flags, seq, replayed);
    if (rc == CASE_OK || !s || !should_retry(s, rc, attempt)) return rc;
  }
}

/* One attempt of case_store_fire_v2(): one transaction. */
static int fire_once(case_store *s, const char *id, const char *event,
                     const char *payload_json, const char *actor, const char *role, int64_t at,
                     int64_t expected_revision, const char *idempotency_key, int flags,
                     int64_t *seq, int *replayed) {
  if (seq) *seq = 0;
  if (replayed) *replayed = 0;
  if (!s) return CASE_MISUSE;
  case_engine *e = s->e;
  if (!id || !event || !*event) return eng_err(e, CASE_MISUSE, "case_store_fire: NULL argument");
  if (!role && actor && strcmp(actor, TIMER_ACTOR) == 0)
    return eng_err(e, CASE_MISUSE, "actor '%s' without a role is reserved for timers",
                   TIMER_ACTOR);
  if (actor && strncmp(actor, "#_scxml_", 8) == 0)
    return eng_err(e, CASE_INVALID, "actor '%s': actors starting with #_scxml_ are the "
                   "cases that send to each other (the journal's delivery rows)", actor);
  if (actor && strcmp(actor, TIMER_ACTOR) == 0)
    return eng_err(e, CASE_INVALID, "actor '%s' is reserved for the clock: the journal's timer "
                   "rows are the clock's, a person (role %s) cannot act as it", TIMER_ACTOR, role);
  int rc = writable(s);
  if (rc != CASE_OK) return rc;
  if ((rc = check_id_utf8(s, "the case id", id)) != CASE_OK ||
      (rc = check_utf8(s, "the event", event)) != CASE_OK ||
      (rc = check_utf8(s, "the actor", actor)) != CASE_OK ||
      (rc = check_utf8(s, "the role", role)) != CASE_OK ||
      (rc = check_utf8(s, "the idempotency key", idempotency_key)) != CASE_OK ||
      (rc = check_future(s, "event time", at)) != CASE_OK)
    return rc;
  if (flags & ~CASE_FIRE_KEY_TIME)
    return eng_err(e, CASE_MISUSE, "case_store_fire_v2: unknown flags %#x", (unsigned)flags);
  idem_req key_req, *key = NULL;
  if (idempotency_key) {
    if (!*idempotency_key)
      return eng_err(e, CASE_INVALID, "an idempotency key must not be empty");
    key_req.key = idempotency_key;
    rc = request_hash(s, id, event, payload_json, actor, role, key_req.hash);
    if (rc != CASE_OK) return rc;
    key = &key_req;
  }
  rc = write_begin(s);
  if (rc != CASE_OK) return st_berr(s, rc);
  if (key) {
    char *used_by = NULL, *first_hash = NULL;
    int64_t first = 0;
    rc = s->ops->idem_get(s->db, idempotency_key, &used_by, &first, &first_hash);
    if (rc == CASE_OK) {
      int replay = 0;
      rc = key_check(s, idempotency_key, used_by, first, first_hash, key->hash, id, event,
                     payload_json, actor, role, at, (flags & CASE_FIRE_KEY_TIME) != 0, &replay);
      st_rollback(s);
      free(used_by);
      free(first_hash);
      if (rc != CASE_OK) return rc;
      if (seq) *seq = first;
      if (replayed) *replayed = 1;
      return eng_ok(e);
    }
    if (rc != CASE_NOTFOUND) {
      st_berr(s, rc);
      st_rollback(s);
      return rc;
    }
  }
  sb_case_row row;
  rc = s->ops->case_get(s->db, id, &row);
  if (rc != CASE_OK) {
    st_berr(s, rc);
    st_rollback(s);
    return rc;
  }
  if (expected_revision >= 0 && row.revision != expected_revision) {
    st_rollback(s);
    rc = eng_err(e, CASE_CONFLICT, "case '%s' is at revision %lld, not %lld: read it again",
                 id, (long long)row.revision, (long long)expected_revision);
    sb_case_row_free(&row);
    return rc;
  }
  case_instance *c;
  rc = load_case(s, &row, &c);
  if (rc != CASE_OK) {
    st_rollback(s);
    sb_case_row_free(&row);
    return rc;
  }
  /* Events are processed in time order: terms that ran out before `at` fire
   * first, each journalled as its own timer row in this same transaction, so
   * replay meets them in the same order. */
  int64_t cur_rev = row.revision;
  char cur_hash[65];
  snprintf(cur_hash, sizeof cur_hash, "%s", row.last_hash ? row.last_hash : "");
  collector later; /* notifications of those timers, forwarded after commit */
  mail_run mr;
  mail_begin(s, &mr);
  st_timers mirror; /* the timer rows stored now: rewritten only when they change */
  if (st_timers_capture(c, &mirror) != CASE_OK) mirror.known = 0;
  rc = fire_due_timers(s, c, at, &cur_rev, cur_hash, &later, &mirror);
  if (rc != CASE_OK) {
    st_timers_free(&mirror);
    st_rollback(s);
    int too_many = rc == CASE_LIMIT && cur_rev >= 0;
    if (!mail_abort(s, &mr, c) && cur_rev != row.revision)
      case_instance_free(c); /* memory ran ahead of disk */
    if (too_many)
      record_refusal(s, id, row.revision, event, payload_json, actor, role, at, CASE_LIMIT);
    sb_case_row_free(&row);
    collect_free(&later);
    return rc;
  }
  collector k;
  collect_start(e, &k);
  rc = case_instance_fire(c, event, payload_json, actor, role, at);
  collect_stop(e, &k);
  if (rc != CASE_OK) {
    st_timers_free(&mirror);
    st_rollback(s);
    if (!mail_abort(s, &mr, c) && cur_rev != row.revision)
      case_instance_free(c); /* timers fired in memory only */
    if (is_refusal(rc))
      record_refusal(s, id, row.revision, event, payload_json, actor, role, at, rc);
    sb_case_row_free(&row);
    collect_free(&k);
    collect_free(&later);
    return rc;
  }
  int64_t n = 0;
  rc = persist(s, c, event, payload_json, actor, role, at, cur_rev, cur_hash, &k, key, &n,
               NULL, &mirror, 0);
  st_timers_free(&mirror);
  if (rc == CASE_OK && e->mail) rc = mail_deliver(s, &mr);
  if (rc == CASE_OK) {
    rc = write_commit(s);
    if (rc != CASE_OK) st_berr(s, rc);
  }
  sb_case_row_free(&row);
  if (rc != CASE_OK) {
    st_rollback(s);
    if (!mail_abort(s, &mr, c)) case_instance_free(c); /* memory must not run ahead of disk */
    collect_free(&k);
    collect_free(&later);
    return rc;
  }
  eng_ok(e);
  forward(s, &later, c);
  forward(s, &k, c);
  mail_done(s, &mr);
  collect_free(&k);
  collect_free(&later);
  st_cache_trim(s, c);
  if (seq) *seq = n;
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* Moving a running case to another profile version                    */
/* ------------------------------------------------------------------ */

typedef struct first_move {
  int found, from;
} first_move;

static int find_first_move(void *ud, const sb_journal_row *r) {
  first_move *m = ud;
  if (strcmp(r->event, PROFILE_EVENT) != 0) return CASE_OK;
  json_t *pl = st_parse_any(r->payload);
  m->found = 1;
  m->from = (int)json_integer_value(json_object_get(pl, "from"));
  json_decref(pl);
  return 1; /* stop at the first */
}

int st_profile_start(case_store *s, const char *case_id, int profile_first, int profile_version,
                     int *start) {
  *start = profile_first > 0 ? profile_first : 0;
  if (profile_first > 0 || profile_version <= 0) return CASE_OK;
  first_move m = {0, 0};
  int rc = s->ops->journal_case(s->db, case_id, find_first_move, &m);
  if (rc != CASE_OK && rc != 1) return rc;
  *start = m.found ? m.from : profile_version;
  return CASE_OK;
}

void st_apply_profile(case_instance *c, const cs_profile *p, int version, int64_t at) {
  c->profile = p;
  c->profile_version = version;
  c->st.revision++;
  if (at > c->st.last_time) c->st.last_time = at;
}

int case_store_set_profile(case_store *s, const char *id, int version, const char *actor,
                           const char *role, int64_t at, int64_t *seq) {
  if (seq) *seq = 0;
  if (!s) return CASE_MISUSE;
  case_engine *e = s->e;
  if (!id) return eng_err(e, CASE_MISUSE, "case_store_set_profile: NULL case id");
  if (version < 0)
    return eng_err(e, CASE_INVALID, "case_store_set_profile: version %d (expected 0 for the "
                   "latest, or 1 or more)", version);
  int rc = writable(s);
  if (rc != CASE_OK) return rc;
  if ((rc = check_id_utf8(s, "the case id", id)) != CASE_OK ||
      (rc = check_utf8(s, "the actor", actor)) != CASE_OK ||
      (rc = check_utf8(s, "the role", role)) != CASE_OK ||
      (rc = check_future(s, "event time", at)) != CASE_OK)
    return rc;
  rec_begin(s);
  rc = s->ops->begin(s->db, 1);
  if (rc != CASE_OK) {
    rec_end(s);
    return st_berr(s, rc);
  }
  sb_case_row row;
  rc = s->ops->case_get(s->db, id, &row);
  if (rc != CASE_OK) {
    st_berr(s, rc);
    st_rollback(s);
    return rc;
  }
  case_instance *c = NULL;
  const cs_profile *p = NULL;
  collector later, none;
  memset(&later, 0, sizeof later);
  memset(&none, 0, sizeof none);
  int64_t cur_rev = row.revision, n = 0;
  char cur_hash[65];
  snprintf(cur_hash, sizeof cur_hash, "%s", row.last_hash ? row.last_hash : "");
  rc = load_case(s, &row, &c);
  if (rc != CASE_OK) goto fail;
  if (!c->location) {
    rc = eng_err(e, CASE_INVALID, "case '%s' has no location, so no location profile", id);
    goto fail;
  }
  if (c->st.done) {
    rc = eng_err(e, CASE_DONE, "case '%s' is closed: its profile no longer matters", id);
    goto fail;
  }
  if (version == 0) { /* the latest stored version */
    profile_req q = {e, NULL, 0, ""};
    rc = s->ops->profile_get(s->db, c->location, 0, adopt_profile_row, &q);
    if (rc != CASE_OK) {
      if (case_errcode(e) != rc) st_berr(s, rc);
      goto fail;
    }
    p = q.p;
    version = q.version;
  } else if ((rc = st_profile_version(s, e, c->location, version, &p)) != CASE_OK) {
    goto fail;
  }
  if (version == c->profile_version) { /* already there: nothing to journal */
    st_rollback(s);
    sb_case_row_free(&row);
    return eng_ok(e);
  }
  if (at < c->st.last_time) {
    rc = eng_err(e, CASE_INVALID, "case '%s': a profile change at %lld is earlier than the "
                 "case's last event (%lld): events are processed in time order", id,
                 (long long)at, (long long)c->st.last_time);
    goto fail;
  }
  /* Terms that ran out before `at` happen first, as for any event. */
  rc = fire_due_timers(s, c, at, &cur_rev, cur_hash, &later, NULL);
  if (rc != CASE_OK) goto fail;
  json_t *pl = json_pack("{s:s, s:i, s:i, s:s}", "location", c->location, "from",
                         c->profile_version, "to", version, "hash", p->hash);
  char *payload = pl ? st_canon(pl) : NULL;
  json_decref(pl);
  if (!payload) {
    rc = st_nomem(e);
    goto fail;
  }
  int64_t before = cur_rev; /* the stored revision after the timer rows */
  st_apply_profile(c, p, version, at);
  cur_rev = -1; /* memory is ahead of disk from here until the commit */
  rc = persist(s, c, PROFILE_EVENT, payload, actor, role, at, before, cur_hash, &none, NULL, &n,
               NULL, NULL, 1);
  free(payload);
  if (rc == CASE_OK) {
    rec_end(s);
    rc = s->ops->commit(s->db);
    if (rc != CASE_OK) st_berr(s, rc);
  }
  if (rc != CASE_OK) goto fail;
  sb_case_row_free(&row);
  eng_ok(e);
  forward(s, &later, c);
  collect_free(&later);
  st_cache_trim(s, c);
  if (seq) *seq = n;
  return CASE_OK;
fail:
  st_rollback(s);
  if (c && cur_rev != row.revision) case_instance_free(c); /* memory must not run ahead of disk */
  sb_case_row_free(&row);
  collect_free(&later);
  return rc;
}

int case_store_get(case_store *s, const char *id, case_instance **out) {
  if (out) *out = NULL;
  if (!s) return CASE_MISUSE;
  if (!id || !out) return eng_err(s->e, CASE_MISUSE, "case_store_get: NULL argument");
  sb_case_row row;
  int rc = s->ops->case_get(s->db, id, &row);
  if (rc != CASE_OK) return st_berr(s, rc);
  rc = load_case(s, &row, out);
  sb_case_row_free(&row);
  if (rc != CASE_OK) return rc;
  st_cache_trim(s, *out);
  return eng_ok(s->e);
}

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/* ------------------------------------------------------------------ */

/* The journal event name of a timer: its event, or "deadline.<name>". */
char *st_timer_event(const case_instance *c, int i) {
  const cs_timer *tm = &c->def->timers[c->st.timers[i].timer];
  if (tm->kind == TIMER_SEND) /* a send coming due: the event it carries */
    return xstrdup(json_string_value(json_object_get(c->st.timers[i].send, "event")));
  if (tm->event) return xstrdup(tm->event);
  sbuf b;
  sbuf_init(&b);
  sbuf_printf(&b, "deadline.%s", tm->name);
  return sbuf_take(&b);
}

/* The cases a tick has looked at: checked (their due timers stay within
 * CASE_LIMIT_EXPIRIES) or over the limit (skipped for the rest of the tick).
 * An open-addressing set of ids; slots hold malloc'd ids. */
typedef struct case_set {
  char **id;
  unsigned char *over;
  size_t cap, n;
  size_t kept; /* entries left after the last set_forget_checked() */
} case_set;

static size_t set_hash(const char *s) {
  size_t h = 1469598103934665603u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
  return h;
}

/* The slot of `id`, or of the empty slot where it would go. */
static size_t set_slot(const case_set *set, const char *id) {
  size_t i = set_hash(id) & (set->cap - 1);
  while (set->id[i] && strcmp(set->id[i], id) != 0) i = (i + 1) & (set->cap - 1);
  return i;
}

/* -1 not in the set, 0 checked, 1 over the limit. */
static int set_get(const case_set *set, const char *id) {
  if (!set->cap) return -1;
  size_t i = set_slot(set, id);
  return set->id[i] ? set->over[i] : -1;
}

static int set_put(case_set *set, const char *id, int over) {
  if ((set->n + 1) * 2 > set->cap) {
    size_t cap = set->cap ? set->cap * 2 : 64;
    case_set bigger = {calloc(cap, sizeof(char *)), calloc(cap, 1), cap, 0, set->kept};
    if (!bigger.id || !bigger.over) {
      free(bigger.id);
      free(bigger.over);
      return CASE_NOMEM;
    }
    for (size_t k = 0; k < set->cap; k++) {
      if (!set->id[k]) continue;
      size_t j = set_slot(&bigger, set->id[k]);
      bigger.id[j] = set->id[k];
      bigger.over[j] = set->over[k];
      bigger.n++;
    }
    free(set->id);
    free(set->over);
    *set = bigger;
  }
  size_t i = set_slot(set, id);
  if (!set->id[i]) {
    if (!(set->id[i] = xstrdup(id))) return CASE_NOMEM;
    set->n++;
  }
  set->over[i] = (unsigned char)over;
  return CASE_OK;
}

/* How many cases found within CASE_LIMIT_EXPIRIES a tick remembers. */
#define SEEN_CHECKED_MAX 4096

/* Drops the entries marked checked (0), keeping those over the limit (1). */
static void set_forget_checked(case_set *set) {
  case_set kept = {NULL, NULL, 0, 0, 0};
  int ok = 1;
  for (size_t k = 0; ok && k < set->cap; k++)
    if (set->id[k] && set->over[k]) ok = set_put(&kept, set->id[k], 1) == CASE_OK;
  if (!ok) { /* no memory for the copy: keep everything, it only costs memory */
    for (size_t k = 0; k < kept.cap; k++) free(kept.id[k]);
    free(kept.id);
    free(kept.over);
    return;
  }
  for (size_t k = 0; k < set->cap; k++) free(set->id[k]);
  free(set->id);
  free(set->over);
  *set = kept;
  set->kept = set->n;
}

static void set_free(case_set *set) {
  for (size_t k = 0; k < set->cap; k++) free(set->id[k]);
  free(set->id);
  free(set->over);
  memset(set, 0, sizeof *set);
}

/*
 * Fires the earliest due stored timer after the cursor, if any, and moves the
 * cursor to it.  The first time a tick meets a case, the case's due timers are
 * counted on a copy (chart_expiries): a case that would have more than
 * CASE_LIMIT_EXPIRIES fires none of them in this tick (a refusal is recorded,
 * CASE_LIMIT returned for it and the others go on).  *fired: 1 fired, 0 none left, -1 looked at one but fired
 * nothing (a stale mirror row, or a timer whose macrostep failed: recorded as
 * refused and returned as the code, so that it does not hold up the others).
 */
static int tick_one(case_store *s, int64_t now, sb_timer_row *cursor, case_set *seen,
                    int *fired) {
  case_engine *e = s->e;
  *fired = 0;
  int rc = write_begin(s);
  if (rc != CASE_OK) return st_berr(s, rc);
  sb_timer_row t;
  rc = s->ops->timer_next(s->db, now, cursor->case_id ? cursor : NULL, &t);
  if (rc == CASE_NOTFOUND) {
    st_rollback(s);
    return CASE_OK;
  }
  if (rc != CASE_OK) {
    st_berr(s, rc);
    st_rollback(s);
    return rc;
  }
  /* New timers started by this firing are due at or after it, and a timer of
   * the same case due at the same time has a higher seq: all after the cursor. */
  free(cursor->case_id);
  cursor->case_id = xstrdup(t.case_id);
  cursor->due = t.due;
  cursor->seq = t.seq;
  if (!cursor->case_id) {
    st_rollback(s);
    sb_timer_row_free(&t);
    return st_nomem(e);
  }
  sb_case_row row;
  memset(&row, 0, sizeof row);
  case_instance *c = NULL;
  char *event = NULL;
  collector k;
  memset(&k, 0, sizeof k);
  int known = set_get(seen, t.case_id);
  if (known < 0 && seen->n >= seen->kept + SEEN_CHECKED_MAX) {
    /* Forget the cases found within the limit (the over-limit ones stay):
     * checked again, a case can only have fewer expiries left, so memory
     * stays flat however many cases a tick touches. */
    set_forget_checked(seen);
  }
  if (known == 1) { /* over the limit earlier in this tick: left alone */
    st_rollback(s);
    *fired = -1;
    goto out;
  }
  rc = s->ops->case_get(s->db, t.case_id, &row);
  if (rc != CASE_OK) st_berr(s, rc);
  if (rc == CASE_OK) rc = load_case(s, &row, &c);
  if (rc != CASE_OK) goto fail;
  if (known < 0) {
    long long limit = e->limits[CASE_LIMIT_EXPIRIES], n = 0;
    rc = chart_expiries(c, now, limit, &n);
    if (rc == CASE_OK) rc = set_put(seen, c->id, n > limit);
    if (rc != CASE_OK) {
      rc = st_nomem(e);
      goto fail;
    }
    if (n > limit) {
      int i = chart_timer_next(c, now);
      const cs_timer *tm = &c->def->timers[c->st.timers[i].timer];
      char *ev = st_timer_event(c, i);
      st_rollback(s);
      eng_err_at(e, CASE_LIMIT, c->def->file, tm->pos,
                 "case '%s': more than %lld timer expiries in one tick ('%s' of state '%s' "
                 "keeps running out: a delay of 0 that re-enters its state?); none of its "
                 "timers fired (raise CASE_LIMIT_EXPIRIES if the timers are meant)",
                 c->id, limit, tm->name, c->def->states[tm->state].id);
      record_refusal(s, c->id, row.revision, ev ? ev : "tick", NULL, TIMER_ACTOR, NULL,
                     t.due, CASE_LIMIT);
      free(ev);
      rc = CASE_LIMIT;
      *fired = -1;
      goto out;
    }
  }
  int i = chart_timer_next(c, t.due);
  if (i < 0 || strcmp(c->st.timers[i].id, t.timer_id) != 0) {
    /* The mirror disagrees with the snapshot (a timer cancelled or fired
     * elsewhere): rewrite the case's timer rows and go on. */
    pending_write w;
    memset(&w, 0, sizeof w);
    rc = timer_rows(c, &w);
    if (rc == CASE_OK) {
      rc = s->ops->timers_replace(s->db, c->id, w.timers, w.ntimers);
      if (rc != CASE_OK) st_berr(s, rc);
    } else {
      st_nomem(e);
    }
    pending_free(&w);
    if (rc == CASE_OK) rc = write_commit(s);
    if (rc != CASE_OK) goto fail;
    *fired = -1; /* nothing fired, but look again */
    goto out;
  }
  event = st_timer_event(c, i);
  if (!event) {
    rc = st_nomem(e);
    goto fail;
  }
  int one = 0;
  mail_run mr;
  mail_begin(s, &mr);
  collect_start(e, &k);
  rc = chart_tick_one(c, t.due, &one);
  collect_stop(e, &k);
  if (rc != CASE_OK) {
    st_rollback(s);
    mail_abort(s, &mr, NULL);
    if (is_refusal(rc))
      record_refusal(s, c->id, row.revision, event, NULL, TIMER_ACTOR, NULL, t.due, rc);
    *fired = -1;
    goto out;
  }
  int64_t seq;
  rc = persist(s, c, event, NULL, TIMER_ACTOR, NULL, t.due, row.revision, row.last_hash, &k,
               NULL, &seq, NULL, NULL, 0); /* a timer fired: its rows change */
  if (rc == CASE_OK && e->mail) rc = mail_deliver(s, &mr);
  if (rc == CASE_OK) {
    rc = write_commit(s);
    if (rc != CASE_OK) st_berr(s, rc);
  }
  if (rc != CASE_OK) {
    st_rollback(s);
    if (!mail_abort(s, &mr, c)) case_instance_free(c);
    c = NULL;
    goto fail;
  }
  *fired = 1;
  forward(s, &k, c);
  mail_done(s, &mr);
  st_cache_trim(s, c);
  goto out;
fail:
  st_rollback(s);
out:
  collect_free(&k);
  free(event);
  sb_timer_row_free(&t);
  sb_case_row_free(&row);
  return rc;
}

/* A tick's progress, kept across the batches of case_store_tick_v2(). */
typedef struct tick_run {
  sb_timer_row cursor;
  case_set seen;
  int first, failures;
  char *first_msg;
} tick_run;

static void tick_run_free(tick_run *t) {
  sb_timer_row_free(&t->cursor);
  set_free(&t->seen);
  free(t->first_msg);
}

/*
 * Fires due timers from the cursor on until none is left (*more 0) or `max`
 * have fired (max 0: no bound; *more 1).  *fired gets how many fired.  A
 * timer whose macrostep fails is recorded (t->first, t->failures) and passed
 * over.  Returns CASE_OK or the error that stopped it.
 */
static int tick_steps(case_store *s, int64_t now, tick_run *t, int max, int *fired,
                      int *more) {
  int n = 0, attempt = 0, rc;
  *more = 0;
  for (;;) {
    if (max > 0 && n >= max) {
      *more = 1;
      rc = CASE_OK;
      break;
    }
    int one = 0;
    /* Where the cursor was: a timer whose transaction failed without writing
     * (a deadlock, a lost connection) is taken again from there. */
    int had = t->cursor.case_id != NULL;
    char *was_case = had ? xstrdup(t->cursor.case_id) : NULL;
    int64_t was_due = t->cursor.due, was_seq = t->cursor.seq;
    rc = tick_one(s, now, &t->cursor, &t->seen, &one);
    if (rc != CASE_OK && !is_refusal(rc) && (!had || was_case) &&
        should_retry(s, rc, attempt)) {
      attempt++;
      free(t->cursor.case_id);
      t->cursor.case_id = was_case;
      t->cursor.due = was_due;
      t->cursor.seq = was_seq;
      continue;
    }
    free(was_case);
    attempt = 0;
    if (rc != CASE_OK && is_refusal(rc)) {
      /* This timer's macrostep (or case) failed; the others still fire. */
      if (t->first == CASE_OK) {
        t->first = rc;
        t->first_msg = xstrdup(case_errmsg(s->e));
      }
      t->failures++;
      continue;
    }
    if (rc != CASE_OK || one == 0) break;
    if (one > 0) n++;
  }
  *fired = n;
  return rc;
}

/* The tick's answer: CASE_OK, or its first failure with the count of the others. */
static int tick_result(case_store *s, const tick_run *t) {
  if (t->first == CASE_OK) return eng_ok(s->e);
  if (t->failures > 1)
    return eng_err(s->e, t->first,
                   "%s (and %d more failures in this tick: see the refused events)",
                   t->first_msg ? t->first_msg : case_errstr(t->first), t->failures - 1);
  return eng_err(s->e, t->first, "%s", t->first_msg ? t->first_msg : case_errstr(t->first));
}

int case_store_tick(case_store *s, int64_t now, int *fired) {
  if (fired) *fired = 0;
  if (!s) return CASE_MISUSE;
  int rc = writable(s);
  if (rc != CASE_OK) return rc;
  if ((rc = check_future(s, "tick time", now)) != CASE_OK) return rc;
  /* Nothing due: done without taking the write lock (an import ticks before
   * every row; a scheduler polls). */
  int64_t due = 0;
  int any = 0;
  rc = s->ops->next_due(s->db, &due, &any);
  if (rc != CASE_OK) return st_berr(s, rc);
  if (!any || due > now) return eng_ok(s->e);
  tick_run t;
  memset(&t, 0, sizeof t);
  int n = 0, more = 0;
  rc = tick_steps(s, now, &t, 0, &n, &more);
  st_cache_trim(s, NULL);
  if (fired) *fired = n;
  if (rc == CASE_OK) rc = tick_result(s, &t);
  tick_run_free(&t);
  return rc;
}

int case_store_next_due(case_store *s, int64_t *due) {
  if (due) *due = 0;
  if (!s) return CASE_MISUSE;
  if (!due) return eng_err(s->e, CASE_MISUSE, "case_store_next_due: NULL argument");
  int any = 0;
  int rc = s->ops->next_due(s->db, due, &any);
  if (rc != CASE_OK) return st_berr(s, rc);
  if (!any) return eng_err(s->e, CASE_NOTFOUND, "no timer is running");
  return eng_ok(s->e);
}

/* ------------------------------------------------------------------ */
/* Batches                                                             */
/* ------------------------------------------------------------------ */

static void batch_free(struct st_batch *b) {
  if (!b) return;
  for (int i = 0; i < b->nnotes; i++) {
    free(b->notes[i].case_id);
    free(b->notes[i].name);
    json_decref(b->notes[i].payload);
  }
  free(b->notes);
  for (int i = 0; i < b->ntouched; i++) free(b->touched[i]);
  free(b->touched);
  free(b);
}

int case_store_batch_begin(case_store *s) {
  if (!s) return CASE_MISUSE;
  int rc = writable(s);
  if (rc != CASE_OK) return rc;
  if (s->batch) return eng_err(s->e, CASE_MISUSE, "case_store_batch_begin: a batch is open");
  struct st_batch *b = calloc(1, sizeof *b);
  if (!b) return st_nomem(s->e);
  /* The frontier of the last commit goes on in the batch's transaction. */
  if (s->txn_tree_ok) s->tree_ok = 0;
  s->txn_tree_ok = 0;
  rc = s->ops->batch(s->db, SB_BATCH_BEGIN);
  if (rc != CASE_OK) {
    free(b);
    return st_berr(s, rc);
  }
  s->batch = b;
  return eng_ok(s->e);
}

int case_store_in_batch(const case_store *s) { return s && s->batch ? 1 : 0; }

/* The batch did not commit: what its calls changed on the engine is ahead of
 * the disk, so those cases are dropped (the next call restores them). */
static void batch_drop(case_store *s, struct st_batch *b) {
  for (int i = 0; i < b->ntouched; i++) case_instance_free(case_instance_find(s->e, b->touched[i]));
  if (b->cap_touched && b->ntouched == b->cap_touched) {
    /* The list may have lost an id (no memory): drop every cached case. */
    while (s->lru_head) case_instance_free(s->lru_head);
  }
  s->txn_tree_ok = 0; /* the handle's frontier of the last commit still holds */
}

int case_store_batch_commit(case_store *s) {
  if (!s) return CASE_MISUSE;
  if (!s->batch) return eng_err(s->e, CASE_MISUSE, "case_store_batch_commit: no batch is open");
  struct st_batch *b = s->batch;
  int rc = s->ops->batch(s->db, SB_BATCH_COMMIT);
  s->batch = NULL;
  if (rc != CASE_OK) { /* rolled back: nothing of the batch was written */
    st_berr(s, rc);
    if (s->txn_tree_ok || b->appended) s->tree_ok = 0;
    batch_drop(s, b);
    batch_free(b);
    return rc;
  }
  /* The handle's frontier is the batch's. */
  if (s->txn_tree_ok) {
    s->tree_ok = 0;
    if (s->ops->data_version(s->db, &s->tree_version) == CASE_OK) {
      s->tree = s->txn_tree;
      s->tree_complete = s->txn_complete;
      s->tree_ok = 1;
    }
  } else if (b->appended) {
    s->tree_ok = 0;
  }
  s->txn_tree_ok = 0;
  eng_ok(s->e);
  case_engine *e = s->e;
  for (int i = 0; e->notify && i < b->nnotes; i++) {
    case_instance *c = case_instance_find(e, b->notes[i].case_id);
    if (!c && case_store_get(s, b->notes[i].case_id, &c) != CASE_OK) c = NULL;
    if (!c) continue; /* not even in the store any more; the outbox has it */
    char *p = json_dumps(b->notes[i].payload, JSON_COMPACT | JSON_ENCODE_ANY);
    e->notify(e->notify_ud, c, b->notes[i].name, p ? p : "null");
    free(p);
  }
  batch_free(b);
  st_cache_trim(s, NULL);
  return eng_ok(s->e);
}

int case_store_batch_rollback(case_store *s) {
  if (!s) return CASE_MISUSE;
  if (!s->batch) return eng_ok(s->e);
  struct st_batch *b = s->batch;
  int rc = s->ops->batch(s->db, SB_BATCH_ROLLBACK);
  s->batch = NULL;
  batch_drop(s, b);
  batch_free(b);
  st_cache_trim(s, NULL);
  return rc == CASE_OK ? eng_ok(s->e) : st_berr(s, rc);
}

int case_store_tick_v2(case_store *s, int64_t now, int per_txn, int *fired) {
  if (fired) *fired = 0;
  if (!s) return CASE_MISUSE;
  if (per_txn < 0)
    return eng_err(s->e, CASE_INVALID, "case_store_tick_v2: %d timers per transaction", per_txn);
  if (per_txn == 0) per_txn = CASE_STORE_TICK_BATCH;
  if (per_txn == 1 || s->batch) return case_store_tick(s, now, fired);
  int rc = writable(s);
  if (rc != CASE_OK) return rc;
  if ((rc = check_future(s, "tick time", now)) != CASE_OK) return rc;
  int64_t due = 0;
  int any = 0;
  rc = s->ops->next_due(s->db, &due, &any);
  if (rc != CASE_OK) return st_berr(s, rc);
  if (!any || due > now) return eng_ok(s->e);
  /* Batches of up to per_txn fired timers, each timer still all-or-nothing
   * (its savepoint), the cursor going on from batch to batch. */
  tick_run t;
  memset(&t, 0, sizeof t);
  int total = 0, more = 1;
  while (more) {
    if ((rc = case_store_batch_begin(s)) != CASE_OK) break;
    int n = 0;
    rc = tick_steps(s, now, &t, per_txn, &n, &more);
    if (rc != CASE_OK) {
      case_store_batch_rollback(s);
      break;
    }
    if ((rc = case_store_batch_commit(s)) != CASE_OK) break;
    total += n;
  }
  if (fired) *fired = total;
  if (rc == CASE_OK) rc = tick_result(s, &t);
  tick_run_free(&t);
  return rc;
}

/* ------------------------------------------------------------------ */
/* The change feed and the outbox                                      */
/* ------------------------------------------------------------------ */

typedef struct feed {
  case_feed_fn fn;
  void *ud;
  int64_t last;
  int stopped;
} feed;

/* A JSON column of a feed row: its value, or JSON null with why in `corrupt`. */
static json_t *feed_json(const char *text, const char *column, json_t *corrupt) {
  json_t *v = st_parse_any(text);
  if (v) return v;
  json_object_set_new(corrupt, column,
                      json_string(utf8_problem(text, NULL) ? "not UTF-8" : "not JSON"));
  return json_null();
}

/* A text column: itself, or with U+FFFD for bytes that are not UTF-8 (and why in `corrupt`). */
static json_t *feed_text(const char *text, const char *column, json_t *corrupt) {
  if (!text) return json_null();
  if (!utf8_problem(text, NULL)) return json_string(text);
  json_object_set_new(corrupt, column, json_string("not UTF-8"));
  return st_json_text(text);
}

/*
 * A journal row as the feed's JSON.  A column that cannot be read (issue 15
 * §9: a damaged row) does not stop the feed: it is given as well as it can be
 * and named in "corrupt"; verify reports it.
 */
char *st_feed_row_text(const sb_journal_row *r) {
  json_t *corrupt = json_object(), *o = json_object();
  int bad = !corrupt || !o;
  struct {
    const char *key;
    json_t *v;
  } f[] = {
      {"seq", json_integer(r->seq)},
      {"case", feed_text(r->case_id, "case", corrupt)},
      {"revision", json_integer(r->revision)},
      {"event", feed_text(r->event, "event", corrupt)},
      {"payload", feed_json(r->payload, "payload", corrupt)},
      {"actor", feed_text(r->actor, "actor", corrupt)},
      {"role", feed_text(r->role, "role", corrupt)},
      {"time", json_integer(r->time)},
      {"recorded", json_integer(r->recorded)},
      {"configuration", feed_json(r->configuration, "configuration", corrupt)},
      {"data", feed_json(r->data, "data", corrupt)},
      {"hash", feed_text(r->hash, "hash", corrupt)},
      {"prev", feed_text(r->prev_hash, "prev_hash", corrupt)},
  };
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
    if (bad || !f[i].v) {
      bad = 1;
      json_decref(f[i].v);
    } else if (json_object_set_new(o, f[i].key, f[i].v) != 0) {
      bad = 1; /* set_new took the value and freed it */
    }
  if (!bad && json_object_size(corrupt) > 0) {
    bad = json_object_set(o, "corrupt", corrupt) != 0;
  }
  json_decref(corrupt);
  char *text = bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  return text;
}

static int feed_row(void *ud, const sb_journal_row *r) {
  feed *f = ud;
  char *text = st_feed_row_text(r);
  if (!text) return CASE_NOMEM;
  int rc = f->fn(f->ud, r->seq, text);
  free(text);
  if (rc != 0) {
    f->stopped = 1;
    return rc;
  }
  f->last = r->seq;
  return CASE_OK;
}

int case_store_follow(case_store *s, int64_t after, int limit, case_feed_fn fn, void *ud,
                      int64_t *last) {
  if (last) *last = after;
  if (!s) return CASE_MISUSE;
  if (!fn) return eng_err(s->e, CASE_MISUSE, "case_store_follow: no callback");
  if (limit < 0) return eng_err(s->e, CASE_INVALID, "case_store_follow: negative limit");
  feed f = {fn, ud, after, 0};
  int rc = s->ops->begin(s->db, 0);
  if (rc == CASE_OK) rc = s->ops->journal_from(s->db, after, limit, feed_row, &f);
  st_rollback(s);
  if (last) *last = f.last;
  if (f.stopped) return rc;
  if (rc == CASE_NOMEM) return st_nomem(s->e);
  if (rc != CASE_OK) return st_berr(s, rc);
  return eng_ok(s->e);
}

int case_store_wait(case_store *s, int64_t after, int timeout_ms, int *ready) {
  if (ready) *ready = 0;
  if (!s) return CASE_MISUSE;
  if (!ready) return eng_err(s->e, CASE_MISUSE, "case_store_wait: NULL ready");
  int rc = s->ops->wait(s->db, after, timeout_ms, ready);
  return rc == CASE_OK ? eng_ok(s->e) : st_berr(s, rc);
}

/* ------------------------------------------------------------------ */
/* Reads in pages: one case's journal, the list of cases               */
/* ------------------------------------------------------------------ */

/* A page of rows as JSON texts, read before any is handed to the caller: the
 * caller's callback may then call the store (even read the same thing again)
 * without disturbing a read in progress, and memory stays one page. */
enum { PAGE_ROWS = 256 };

typedef struct page {
  char *text[PAGE_ROWS];
  char *key[PAGE_ROWS];   /* case ids (list) */
  int64_t num[PAGE_ROWS]; /* seq (history) or revision */
  int64_t rev[PAGE_ROWS];
  int n;
} page;

static void page_clear(page *p) {
  for (int i = 0; i < p->n; i++) {
    free(p->text[i]);
    free(p->key[i]);
  }
  p->n = 0;
}

static int history_row(void *ud, const sb_journal_row *r) {
  page *p = ud;
  char *text = st_feed_row_text(r); /* a damaged row as the feed gives it */
  if (!text) return CASE_NOMEM;
  p->text[p->n] = text;
  p->key[p->n] = NULL;
  p->num[p->n] = r->seq;
  p->rev[p->n++] = r->revision;
  return CASE_OK;
}

int case_store_history(case_store *s, const char *id, int64_t after, case_feed_fn fn, void *ud,
                       int64_t *last) {
  if (last) *last = after;
  if (!s) return CASE_MISUSE;
  if (!id || !fn) return eng_err(s->e, CASE_MISUSE, "case_store_history: NULL argument");
  page *p = calloc(1, sizeof *p);
  if (!p) return st_nomem(s->e);
  sb_case_row row;
  int rc = s->ops->case_get(s->db, id, &row); /* CASE_NOTFOUND for no such case */
  if (rc != CASE_OK) {
    free(p);
    return st_berr(s, rc);
  }
  sb_case_row_free(&row);
  int64_t from = after < 0 ? -1 : after;
  for (;;) {
    rc = s->ops->journal_case_page(s->db, id, from, PAGE_ROWS, history_row, p);
    if (rc != CASE_OK) {
      page_clear(p);
      free(p);
      return rc == CASE_NOMEM ? st_nomem(s->e) : st_berr(s, rc);
    }
    int n = p->n, stop = 0;
    for (int i = 0; i < n && !stop; i++) {
      int r = fn(ud, p->num[i], p->text[i]);
      from = p->rev[i];
      if (last) *last = from;
      if (r != 0) {
        stop = 1;
        rc = r;
      }
    }
    page_clear(p);
    if (stop || n < PAGE_ROWS) break;
  }
  free(p);
  if (rc != CASE_OK) return rc;
  return eng_ok(s->e);
}

static int list_row(void *ud, const sb_case_row *r) {
  page *p = ud;
  /* Joined as text (a million rows are listed at SQLite's pace, not
   * jansson's); the stored configuration is kept as it is when it is JSON. */
  json_t *cfg = json_loads(r->configuration, JSON_DECODE_ANY, NULL);
  sbuf b;
  sbuf_init(&b);
  sbuf_puts(&b, "{\"case\":");
  int ok = st_json_string(&b, r->id);
  sbuf_puts(&b, ",\"workflow\":");
  ok = ok && st_json_string(&b, r->workflow);
  sbuf_printf(&b, ",\"version\":%d,\"location\":", r->version);
  ok = ok && st_json_string(&b, r->location);
  sbuf_printf(&b, ",\"revision\":%lld,\"done\":%s,\"configuration\":", (long long)r->revision,
              r->done ? "true" : "false");
  sbuf_puts(&b, cfg ? r->configuration : "null");
  sbuf_printf(&b, ",\"created\":%lld,\"updated\":%lld}", (long long)r->created,
              (long long)r->updated);
  char *text = sbuf_take(&b);
  if (!ok) {
    /* A text column that is not UTF-8 (a damaged row): given as well as it
     * can be and named in "corrupt", as the feed does; the list goes on. */
    free(text);
    text = NULL;
    json_t *o = json_object(), *bad = json_object();
    const struct { const char *key, *v; } cols[] = {
        {"case", r->id}, {"workflow", r->workflow}, {"location", r->location}};
    for (size_t i = 0; o && bad && i < sizeof cols / sizeof cols[0]; i++) {
      json_object_set_new(o, cols[i].key, st_json_text(cols[i].v));
      if (cols[i].v && utf8_problem(cols[i].v, NULL))
        json_object_set_new(bad, cols[i].key, json_string("not UTF-8"));
    }
    if (o && bad) {
      json_object_set_new(o, "version", json_integer(r->version));
      json_object_set_new(o, "revision", json_integer(r->revision));
      json_object_set_new(o, "done", json_boolean(r->done));
      json_object_set(o, "configuration", cfg ? cfg : json_null());
      json_object_set_new(o, "created", json_integer(r->created));
      json_object_set_new(o, "updated", json_integer(r->updated));
      json_object_set(o, "corrupt", bad);
      text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    }
    json_decref(o);
    json_decref(bad);
  }
  json_decref(cfg);
  char *key = xstrdup(r->id);
  if (!text || !key) {
    free(text);
    free(key);
    return CASE_NOMEM;
  }
  p->text[p->n] = text;
  p->key[p->n] = key;
  p->num[p->n] = r->revision;
  p->rev[p->n++] = r->revision;
  return CASE_OK;
}

int case_store_list(case_store *s, const char *after, long limit, case_list_fn fn, void *ud) {
  if (!s) return CASE_MISUSE;
  if (!fn) return eng_err(s->e, CASE_MISUSE, "case_store_list: no callback");
  if (limit < 0) return eng_err(s->e, CASE_INVALID, "case_store_list: negative limit");
  page *p = calloc(1, sizeof *p);
  char *from = after ? xstrdup(after) : NULL;
  if (!p || (after && !from)) {
    free(p);
    free(from);
    return st_nomem(s->e);
  }
  int rc = CASE_OK;
  long left = limit > 0 ? limit : -1;
  while (left != 0) {
    int want = left < 0 || left > PAGE_ROWS ? PAGE_ROWS : (int)left;
    rc = s->ops->case_page(s->db, from, want, list_row, p);
    if (rc != CASE_OK) {
      rc = rc == CASE_NOMEM ? st_nomem(s->e) : st_berr(s, rc);
      break;
    }
    int n = p->n, stop = 0;
    for (int i = 0; i < n && !stop; i++) {
      int r = fn(ud, p->key[i], p->text[i]);
      if (left > 0) left--;
      if (r != 0) {
        stop = 1;
        rc = r;
      }
    }
    if (n > 0) {
      free(from);
      from = p->key[n - 1];
      p->key[n - 1] = NULL;
    }
    page_clear(p);
    if (stop || n < want) break;
  }
  free(from);
  free(p);
  if (rc != CASE_OK) return rc;
  return eng_ok(s->e);
}

int case_store_latest_time(case_store *s, int64_t *t) {
  if (t) *t = 0;
  if (!s) return CASE_MISUSE;
  if (!t) return eng_err(s->e, CASE_MISUSE, "case_store_latest_time: NULL argument");
  int any = 0;
  int rc = s->ops->latest_time(s->db, t, &any);
  if (rc != CASE_OK) return st_berr(s, rc);
  if (!any) return eng_err(s->e, CASE_NOTFOUND, "the journal is empty");
  return eng_ok(s->e);
}

static int outbox_item(void *ud, const sb_outbox_row *r) {
  json_t *o = json_pack("{s:I, s:s, s:I, s:s, s:o, s:I}", "id", (json_int_t)r->id, "case",
                        r->case_id, "seq", (json_int_t)r->seq, "name", r->name, "payload",
                        st_parse_any(r->payload), "created", (json_int_t)r->created);
  if (!o || json_array_append_new(ud, o) != 0) return CASE_NOMEM;
  return CASE_OK;
}

int case_store_outbox(case_store *s, int limit, char **json) {
  if (json) *json = NULL;
  if (!s) return CASE_MISUSE;
  if (!json) return eng_err(s->e, CASE_MISUSE, "case_store_outbox: json is NULL");
  json_t *a = json_array();
  if (!a) return st_nomem(s->e);
  int rc = s->ops->outbox_list(s->db, limit, outbox_item, a);
  if (rc != CASE_OK) {
    json_decref(a);
    return rc == CASE_NOMEM ? st_nomem(s->e) : st_berr(s, rc);
  }
  *json = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(a);
  return *json ? eng_ok(s->e) : st_nomem(s->e);
}

int case_store_outbox_ack(case_store *s, int64_t id) {
  if (!s) return CASE_MISUSE;
  int rc = writable(s);
  if (rc != CASE_OK) return rc;
  rc = s->ops->begin(s->db, 1);
  if (rc == CASE_OK) rc = s->ops->outbox_ack(s->db, id, (int64_t)time(NULL));
  if (rc == CASE_OK) rc = s->ops->commit(s->db);
  if (rc != CASE_OK) {
    st_berr(s, rc);
    st_rollback(s);
    return rc;
  }
  return eng_ok(s->e);
}

/* ------------------------------------------------------------------ */
/* Named outbox consumers (schema 9)                                   */
/* ------------------------------------------------------------------ */

#define OUTBOX_CLAIM_MAX 10000
#define OUTBOX_LEASE_MAX 86400

static int check_consumer(case_store *s, const char *consumer) {
  size_t n = strlen(consumer), at = 0;
  if (n == 0 || n > 128)
    return eng_err(s->e, CASE_INVALID, "outbox consumer: %zu bytes; a consumer's name has 1 to 128",
                   n);
  if (utf8_problem(consumer, &at))
    return eng_err(s->e, CASE_INVALID, "outbox consumer: byte %zu (0x%02X) is not valid UTF-8",
                   at + 1, (unsigned)(unsigned char)consumer[at]);
  return CASE_OK;
}

int case_store_outbox_claim(case_store *s, const char *consumer, int limit, int lease_seconds,
                            char **json) {
  if (json) *json = NULL;
  if (!s) return CASE_MISUSE;
  if (!consumer || !json) return eng_err(s->e, CASE_MISUSE, "case_store_outbox_claim: NULL argument");
  int rc = writable(s);
  if (rc == CASE_OK) rc = check_consumer(s, consumer);
  if (rc != CASE_OK) return rc;
  if (limit < 1 || limit > OUTBOX_CLAIM_MAX)
    return eng_err(s->e, CASE_INVALID, "case_store_outbox_claim: limit %d (1 to %d)", limit,
                   OUTBOX_CLAIM_MAX);
  if (lease_seconds == 0) lease_seconds = CASE_OUTBOX_LEASE_DEFAULT;
  if (lease_seconds < 0 || lease_seconds > OUTBOX_LEASE_MAX)
    return eng_err(s->e, CASE_INVALID, "case_store_outbox_claim: a lease of %d seconds (1 to %d)",
                   lease_seconds, OUTBOX_LEASE_MAX);
  int64_t now = case_store_clock(s);
  for (int attempt = 0;; attempt++) {
    json_t *a = json_array();
    if (!a) return st_nomem(s->e);
    rc = s->ops->begin(s->db, 1);
    if (rc == CASE_OK)
      rc = s->ops->outbox_claim(s->db, consumer, limit, now, now + lease_seconds, outbox_item, a);
    if (rc == CASE_OK) rc = s->ops->commit(s->db);
    if (rc == CASE_OK) {
      *json = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
      json_decref(a);
      return *json ? eng_ok(s->e) : st_nomem(s->e);
    }
    json_decref(a);
    if (rc != CASE_NOMEM) st_berr(s, rc);
    st_rollback(s);
    if (!should_retry(s, rc, attempt)) return rc == CASE_NOMEM ? st_nomem(s->e) : rc;
  }
}

int case_store_outbox_done(case_store *s, const char *consumer, int64_t id) {
  if (!s) return CASE_MISUSE;
  if (!consumer) return eng_err(s->e, CASE_MISUSE, "case_store_outbox_done: NULL consumer");
  int rc = writable(s);
  if (rc == CASE_OK) rc = check_consumer(s, consumer);
  if (rc != CASE_OK) return rc;
  int64_t now = case_store_clock(s);
  for (int attempt = 0;; attempt++) {
    rc = s->ops->begin(s->db, 1);
    if (rc == CASE_OK) rc = s->ops->outbox_done(s->db, consumer, id, now);
    if (rc == CASE_OK) rc = s->ops->commit(s->db);
    if (rc == CASE_OK) return eng_ok(s->e);
    st_berr(s, rc);
    st_rollback(s);
    if (!should_retry(s, rc, attempt)) return rc;
  }
}
