/*
 * store_int.h — what the durable store's files share (not public): the store
 * handle and the helpers of store.c used by verify.c.
 */
#ifndef LIBCASE_STORE_INT_H
#define LIBCASE_STORE_INT_H

#include "internal.h"
#include "libcase/store.h"
#include "merkle.h"
#include "store_backend.h"

/* The hash of a definition's stored Lua modules, once per store handle. */
typedef struct st_modhash {
  char *workflow;
  int version;
  int has;       /* 0: no modules stored (a row from before schema 2) */
  char hex[65];
} st_modhash;

struct case_store {
  case_engine *e;
  const sb_ops *ops;
  sb_db *db;
  int readonly;
  /* The stored location profiles' latest versions are loaded into the engine
   * when something needs them (st_need_profiles), not at open. */
  int profiles_loaded;
  /* The store's clock (case_store_set_clock(); NULL: the wall clock) and how
   * far ahead of it an event time may be (case_store_set_future_limit()). */
  case_clock_fn clock;
  void *clock_ud;
  /* The `recorded` time of the rows the write transaction under way appends
   * (time(NULL) read when it began; 0 outside one).  The engine's calendar is
   * set to it (cal_set_asof) while the transaction runs, so a holiday stored
   * later counts neither here nor in verify's replay of these rows. */
  int64_t rec_now;
  int64_t future_limit; /* seconds; < 0: no limit */
  mk_hasher h;         /* SHA-256 for the journal's Merkle tree */
  /* The tree's frontier after the last journal row this handle committed, and
   * the backend's data version then: while no other connection wrote, a fire
   * needs no read to compute its row's node (docs/store.md). */
  mk_frontier tree;
  uint64_t tree_version;
  /* The backend's data version when the holidays were last read (hol_known 1):
   * a write transaction reads them again when another connection may have
   * stored one since, so no fire computes a term without a holiday that its
   * row's replay counts (docs/store.md, holidays). */
  uint64_t hol_version;
  int hol_known;
  int tree_ok;
  /* tree's nodes were all there (0: a row is missing, so rows get no node;
   * kept too, so that such a store does not rebuild its tree from every leaf
   * at each write; verify reports the gap) */
  int tree_complete;
  mk_frontier txn_tree; /* inside the current write transaction */
  int txn_tree_ok;      /* txn_tree is loaded for it */
  int txn_complete;     /* every node it needs was there (else rows get none) */
  st_modhash *mods;    /* cache of st_modules_hash() */
  int nmods;
  /* The case cache (case_store_set_cache()): the cases this handle restored
   * or created that are still on the engine, most recently used first.  A
   * call trims it to cache_max (< 0: no bound) when it returns. */
  case_instance *lru_head, *lru_tail;
  long lru_n, cache_max;
  /* An open batch (case_store_batch_begin()), NULL outside one. */
  struct st_batch *batch;
};

/* Case `c` was just used by the store: it becomes the most recent entry of
 * the cache (entering it when `adopt` and it is no other store's). */
void st_cache_touch(case_store *s, case_instance *c, int adopt);
/* Frees the least recently used cases beyond the cache's size, keeping `keep`
 * (may be NULL: the case the call hands out). */
void st_cache_trim(case_store *s, const case_instance *keep);

/* The prefix of the hashed serialisation of a journal row (docs/store.md). */
#define HASH_TAG "libcase.journal.v1"
/* Actor of timer rows; with no role it marks a row fired by case_store_tick(). */
#define TIMER_ACTOR "timer"

/* CASE_NOMEM with "out of memory" on the engine. */
int st_nomem(case_engine *e);
/* The backend's message as the engine error; returns rc. */
int st_berr(case_store *s, int rc);
/* Canonical JSON text: compact, keys sorted, ASCII only (docs/store.md); malloc'd. */
char *st_canon(const json_t *v);
/* JSON text (any value) parsed; JSON null for NULL text; NULL if invalid. */
json_t *st_parse_any(const char *text);
/*
 * The row hash: lowercase hex SHA-256 of the canonical JSON array of
 * docs/store.md.  Returns CASE_OK, CASE_CORRUPT (a JSON column does not parse)
 * or CASE_NOMEM.
 */
int st_row_hash(const sb_journal_row *r, char out[65]);
/* The timer rows a case has stored, as persist() compares them (it writes
 * them only when they change): known 0 means unknown (always written). */
typedef struct st_timers {
  sb_timer_row *v; /* timer_id and last_day owned; case_id, kind, name borrowed */
  int n, known;
} st_timers;
/* The rows of `c`'s running timers, as stored after its last write; CASE_OK
 * or CASE_NOMEM (m then unknown). */
int st_timers_capture(const case_instance *c, st_timers *m);
void st_timers_free(st_timers *m);
/* Loads stored definition `id` `version` (0: every version; id NULL: every
 * definition) the engine has not loaded yet: definitions are loaded lazily.
 * CASE_OK or the error (a stored definition that does not parse or whose hash
 * does not match: CASE_CORRUPT / CASE_INVALID ...) with the message set. */
int st_load_defs(case_store *s, const char *id, int version);
/* Version `version` of location profile `name`, as a profile object on engine
 * `e` (the store's engine or a replay engine; loaded from the stored text on
 * first use, alive until `e` closes).  version 0 or name NULL: *out NULL and
 * CASE_OK.  CASE_NOTFOUND (no such version), CASE_CORRUPT (text and hash
 * differ), the profile's load error, with the message on `e`. */
/* Loads the latest stored version of location profile `name` (NULL: of every
 * stored profile) as the engine's current profile of that name, unless the
 * engine has one already (one the program loaded itself is kept).  What a new
 * case is pinned to, what the report's location labels and a definition
 * being stored are checked against.  CASE_OK or the backend's/loader's code. */
int st_need_profiles(case_store *s, const char *name);
int st_profile_version(case_store *s, case_engine *e, const char *name, int version,
                       const cs_profile **out);
/* The profile version the replay of a stored case starts on: its
 * profile_first when it has one; for a case from before schema 8 (profile_first
 * 0) the version its first libcase:profile row moved it from, or, without such
 * a row, the version it is pinned to now (the one text its store had at the
 * migration).  CASE_OK or the backend's code. */
int st_profile_start(case_store *s, const char *case_id, int profile_first, int profile_version,
                     int *start);
/* What a profile migration row does to a case: pinned to `p` (`version`), one
 * revision more, its last event time `at`.  Data and configuration stay. */
void st_apply_profile(case_instance *c, const cs_profile *p, int version, int64_t at);
/* The journal event of a profile migration (case_store_set_profile()): no
 * definition can use it, an event name being dotted words. */
#define PROFILE_EVENT "libcase:profile"
/* The journal event name of timer `i` of `c`: its event, or "deadline.<name>" (malloc'd). */
char *st_timer_event(const case_instance *c, int i);

/*
 * Appends the canonical JSON text of string `s` (JSON null for NULL) to b.
 * Returns 0 when `s` is not UTF-8 or memory ran out.
 */
int st_json_string(sbuf *b, const char *s);

/* What a case's creation row binds in its leaf: the pinned definition and location. */
typedef struct st_pin {
  const char *workflow;
  int version;
  const char *definition; /* the definition's hash */
  const char *modules;    /* hex SHA-256 of its stored modules text, or NULL */
  const char *location;   /* may be NULL */
  int profile;            /* the location profile's version the case was created on; 0: none */
  const char *profile_hash; /* that version's hash (when profile > 0) */
} st_pin;

/* The pin of a stored case, read from its case row and definition row. */
typedef struct st_pinbuf {
  st_pin pin;
  sb_case_row row;
  char mods[65];
  char phash[65];
} st_pinbuf;

/* Reads the pin of stored case `case_id` (fresh: no cached modules hash).
 * CASE_OK (free with st_pin_free), CASE_NOTFOUND (no case row), or the
 * backend's code. */
int st_pin_of_case(case_store *s, const char *case_id, int fresh, st_pinbuf *p);
void st_pin_free(st_pinbuf *p);

/* A JSON string of `s`, bytes that are not UTF-8 replaced by U+FFFD (a
 * damaged row shown as well as it can be); NULL only without memory. */
json_t *st_json_text(const char *s);

/* A journal row as case_store_follow() gives it (malloc'd JSON text; NULL
 * without memory). */
char *st_feed_row_text(const sb_journal_row *r);

/* The prefix of a leaf entry (docs/store.md, "The journal's Merkle tree"). */
#define LEAF_TAG "libcase.leaf.v1"

/*
 * The leaf hash of a journal row: SHA-256(0x00 || entry), the entry being the
 * canonical JSON text ["libcase.leaf.v1", seq, recorded, row_hash, pin] (pin:
 * JSON null, or for a creation row the object {"definition", "location",
 * "modules", "version", "workflow"}, with "profile": {"hash", "version"} after
 * "modules" for a case created on a stored profile version (schema 8)).
 * Returns CASE_OK, CASE_CORRUPT (a pin
 * string is not UTF-8) or CASE_NOMEM.
 */
int st_leaf_hash(mk_hasher *h, int64_t seq, int64_t recorded, const char *row_hash,
                 const st_pin *pin, unsigned char out[MK_HASH_LEN]);

/*
 * Computes and stores the tree node of every journal row, from seq 1 on, in one
 * write transaction, as the migration to schema 6 does (stopping at the first
 * gap in seq).  For rows written without libcase: the benchmarks copy template
 * rows with SQL (bench/bench.c), which leaves them without nodes, and a store
 * without nodes recomputes its tree from the leaves.  Not thread-safe (as the
 * handle).  Returns CASE_OK, CASE_MISUSE (NULL, or a batch is open),
 * CASE_READONLY, CASE_NOMEM or the backend's code.
 */
int st_tree_backfill(case_store *s);

/* A definition row's hash and modules text (owned; *modules NULL when none is
 * stored).  CASE_OK, CASE_NOTFOUND, CASE_NOMEM or the backend's code. */
int st_def_texts(case_store *s, const char *id, int version, char **hash, char **modules);

/*
 * The hash of the stored modules of workflow `id` version `version` (hex
 * SHA-256 of the stored text) into hex, *has 0 when none is stored; cached on
 * the handle unless `fresh`.  Returns CASE_OK, CASE_NOTFOUND (no such
 * definition row), CASE_NOMEM or the backend's code; sets no engine error.
 */
int st_modules_hash(case_store *s, const char *id, int version, int fresh, char hex[65], int *has);

/*
 * The perfect subtree (level, index) of the journal's Merkle tree from the
 * stored nodes (the leaf of an even row recomputed from its stored hash);
 * a missing node is recomputed from its children.  Returns CASE_OK,
 * CASE_NOTFOUND (a row is missing), CASE_CORRUPT, CASE_NOMEM, CASE_IO; the
 * backend's message says what.
 */
int st_tree_subtree(case_store *s, int level, uint64_t index, unsigned char out[MK_HASH_LEN]);

/* ------------------------------------------------------------------ */
/* Checkpoints (checkpoint.c)                                          */
/* ------------------------------------------------------------------ */

#define CP_TAG "libcase.checkpoint.v1"  /* five signed lines */
#define CP_TAG2 "libcase.checkpoint.v2" /* and the calendar's line */

/* A signed tree head as a checkpoint file holds it. */
typedef struct cp_head {
  char origin[65];          /* the store's id (meta.store_id) */
  int64_t size;             /* journal rows */
  int64_t time;             /* UTC seconds */
  unsigned char root[MK_HASH_LEN];
  unsigned char key[32];    /* Ed25519 public key */
  unsigned char sig[64];
  /* v2: the hash of the holidays that count for the first `size` rows
   * (st_calendar_hash()), signed with the head. */
  int has_calendar;
  unsigned char calendar[MK_HASH_LEN];
  /* An optional consistency proof from an earlier head. */
  int has_proof;
  int64_t from_size;
  unsigned char from_root[MK_HASH_LEN];
  unsigned char proof[MK_MAX_PATH][MK_HASH_LEN];
  int nproof;
} cp_head;

/* The hash of the holidays that count for the first `size` journal rows, inside
 * the caller's transaction: every stored holiday whose `added` is at or before
 * the `recorded` of row `size` (none for 0 rows), as SHA-256 of the canonical
 * JSON ["libcase.calendar.v1", [[day, added], ...]] in day order (names are
 * not covered: storing a day again may rename it).  *count gets how many.
 * CASE_OK, CASE_NOTFOUND (row `size` is missing), CASE_NOMEM, a backend code. */
int st_calendar_hash(case_store *s, int64_t size, unsigned char out[MK_HASH_LEN], int *count);
/* Parses checkpoint JSON text; CASE_OK or CASE_INVALID with a message in err. */
int cp_parse(const char *text, cp_head *h, char *err, size_t errlen);
/* Reads an Ed25519 public key (PEM SubjectPublicKeyInfo, or a private key
 * PEM whose public half is taken); CASE_OK or CASE_INVALID. */
int cp_pubkey_pem(const char *pem, unsigned char key[32], char *err, size_t errlen);
/* 1 when h's signature is valid for h's key, 0 when not, -1 libcrypto failed. */
int cp_signature_valid(const cp_head *h);

#endif /* LIBCASE_STORE_INT_H */
