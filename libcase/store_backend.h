/*
 * store_backend.h — the one narrow storage interface under the durable store.
 *
 * store.c holds the logic (transactions around a fire, the journal and its
 * hash chain, replay, tick, idempotency, outbox, feed) and talks to storage
 * only through a `sb_ops` table of function pointers and an opaque `sb_db`.
 * store_sqlite.c is the embedded default; another backend (PostgreSQL) fills
 * the same table and needs no change to the engine or to store.c.
 *
 * Conventions for every function of the table:
 *  - Returns a CASE_* code: CASE_OK, CASE_NOTFOUND (no such row), CASE_EXISTS
 *    (a unique key is taken), CASE_CONFLICT (a guarded update matched no row),
 *    CASE_BUSY (locked by another writer after the busy timeout), CASE_IO,
 *    CASE_CORRUPT, CASE_NOMEM.  On failure `errmsg(db)` says what.
 *  - Strings given to the backend are borrowed for the call.  Rows handed to a
 *    callback are borrowed for the callback only.  Rows filled into an out
 *    parameter own their strings: free them with the matching sb_*_free().
 *  - JSON columns hold compact JSON text; times are int64 UTC seconds.
 *  - Nothing is written outside begin(write=1) ... commit/rollback, except
 *    what configure() and migrate() do themselves.
 */
#ifndef LIBCASE_STORE_BACKEND_H
#define LIBCASE_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct sb_db sb_db;

typedef struct sb_def_row {
  char *id;
  int version;
  char *hash;     /* hex SHA-256 of the source */
  char *source;
  size_t source_len;
  char *file;     /* the file name the definition was loaded from, or its string name */
  char *modules;  /* JSON object: `lua:` entry as written -> module source; NULL: none
                     stored (a store from before schema 2) */
} sb_def_row;

/*
 * A case (schema 10): the case row holds what is fixed at its creation and its
 * profile pin; everything else is its latest journal row's (the one with the
 * largest revision), which case_get() and case_page() join in.  A fire writes
 * no case row (docs/store.md, "What a fire writes").
 */
typedef struct sb_case_row {
  /* The case row's columns. */
  char *id;
  char *workflow;
  int version;
  char *hash;          /* the definition's hash */
  char *location;      /* may be NULL */
  int64_t created;
  int profile_version; /* the version of its location's profile it runs with; 0: none pinned */
  int profile_first;   /* the version it was created with (replay starts there); 0: none */
  /* Its latest journal row's (ignored by case_insert and case_update). */
  int64_t revision;
  char *configuration; /* JSON array of state ids */
  int done;
  char *data;          /* JSON object (the row's data); NULL from case_page */
  char *state;         /* the row's state (sb_journal_row.state); NULL from case_page */
  char *last_hash;     /* the row's hash */
  int64_t last_seq;    /* the row's seq */
  int64_t updated;     /* the row's recorded */
} sb_case_row;

typedef struct sb_journal_row {
  int64_t seq;         /* global, assigned by journal_append */
  char *case_id;
  int64_t revision;    /* per case: 0 for the creation */
  char *event;
  char *payload;       /* JSON */
  char *actor;         /* may be NULL */
  char *role;          /* may be NULL */
  int64_t time;        /* event time */
  int64_t recorded;    /* wall clock, informational */
  char *configuration; /* JSON array */
  char *data;          /* JSON object */
  char *prev_hash;     /* "" for the first row of a case */
  char *hash;
  /* The journal's Merkle tree (docs/store.md): the hash of the perfect subtree
   * of level ctz(seq) that ends at this row; NULL when none is stored.  On
   * append: 32 bytes or NULL; on read: node_len bytes as stored. */
  const unsigned char *node;
  int node_len;
  /* The case after this row (schema 10): done 1 when it is done; state the
   * snapshot (case_instance_snapshot()) without format, workflow, version,
   * hash, case, location, revision, done, configuration and data, which are
   * the case row's or this row's own columns.  Not part of the row's hash.
   * On read, state NULL (and done 0) for rows written before schema 10, except
   * each case's latest row then, which migration 10 filled. */
  int done;
  char *state;
} sb_journal_row;

typedef struct sb_timer_row {
  char *case_id;
  char *timer_id;  /* "t<seq>" */
  int64_t seq;
  char *kind;      /* "after" | "deadline" | "send" */
  char *name;
  int64_t due;
  char *last_day;  /* "YYYY-MM-DD" or NULL */
  int fired;
} sb_timer_row;

typedef struct sb_refused_row {
  char *case_id;
  int64_t revision; /* the case's revision when refused */
  char *event, *payload, *actor, *role;
  int64_t time, recorded;
  int code;
  char *message;
  int64_t id;       /* set by refused_from (copy); ignored by refused_add */
} sb_refused_row;

typedef struct sb_outbox_row {
  int64_t id;      /* assigned by outbox_add */
  char *case_id;
  int64_t seq;     /* journal row that emitted it */
  char *name;
  char *payload;   /* JSON */
  int64_t created;
  int64_t delivered; /* when it was acknowledged; 0: not yet (outbox_case only) */
} sb_outbox_row;

typedef struct sb_profile_row {
  char *name;     /* the location */
  int version;    /* 1, 2, ... per name (schema 8) */
  char *source;   /* the profile's Lua text */
  size_t source_len;
  char *hash;     /* hex SHA-256 of source */
  char *file;     /* the file it was loaded from (informational) */
} sb_profile_row;

typedef struct sb_token_row {
  int64_t id;      /* assigned by token_put */
  char *name;      /* who holds it ("politie-noord"); unique among tokens in use */
  char *role;      /* the role its signals are fired as */
  int scopes;      /* CASE_TOKEN_READ | CASE_TOKEN_SIGNAL */
  char *hash;      /* hex SHA-256 of the secret: the secret itself is never stored */
  int64_t created;
  int64_t revoked; /* 0 while in use */
} sb_token_row;

typedef int (*sb_def_fn)(void *ud, const sb_def_row *row);
typedef int (*sb_def_key_fn)(void *ud, const char *id, int version);
typedef int (*sb_token_fn)(void *ud, const sb_token_row *row);
typedef int (*sb_refused_fn)(void *ud, const sb_refused_row *row);
typedef int (*sb_profile_fn)(void *ud, const sb_profile_row *row);
/* `added`: when the holiday was stored (UTC seconds, the store's clock): it
 * counts for rows recorded at or after it (verify's replay). */
typedef int (*sb_holiday_fn)(void *ud, const char *day, const char *name, int64_t added);
typedef int (*sb_case_id_fn)(void *ud, const char *case_id);
typedef int (*sb_case_fn)(void *ud, const sb_case_row *row);
typedef int (*sb_journal_fn)(void *ud, const sb_journal_row *row);
typedef int (*sb_outbox_fn)(void *ud, const sb_outbox_row *row);
typedef int (*sb_timer_fn)(void *ud, const sb_timer_row *row);
typedef int (*sb_idem_fn)(void *ud, const char *key, const char *case_id, int64_t seq);
/* A finding of check(): `table` may be NULL (the whole file). */
typedef int (*sb_finding_fn)(void *ud, const char *kind, const char *table, const char *message);
/* Rows of `table` whose case has no case row: `n` of them for `case_id`. */
typedef int (*sb_orphan_fn)(void *ud, const char *table, const char *case_id, int64_t n);
/* Called by migrate() inside its transaction after the schema reached `version`. */
typedef int (*sb_migrated_fn)(void *ud, int version);

/* The schema version that added journal.node (the Merkle tree): migrate()
 * calls its hook with it so that store.c fills the nodes of older rows. */
#define SB_SCHEMA_TREE 6

#define SB_BATCH_BEGIN 1
#define SB_BATCH_COMMIT 2
#define SB_BATCH_ROLLBACK 3

#define SB_READONLY 0x1
#define SB_CREATE   0x2

typedef struct sb_ops {
  const char *name;
  const char *(*errmsg)(sb_db *db);
  void (*close)(sb_db *db);
  /* Durability (0 normal, 1 full) and lock wait in ms (< 0 leaves it). */
  int (*configure)(sb_db *db, int sync_full, int busy_ms);
  /* Brings the schema to the current version; CASE_CORRUPT for a newer one.
   * `hook` (may be NULL) runs in the migration's transaction once for each
   * version reached, after the last migration (so the schema it sees is the
   * current one); its failure rolls the whole migration back. */
  int (*migrate)(sb_db *db, int readonly, sb_migrated_fn hook, void *ud);
  /* The store's own checks, each finding to fn (kind "integrity": the
   * database's own check (full: PRAGMA integrity_check, else quick_check) and
   * its foreign keys; "schema": a table, column or index missing, changed or
   * added).  Returns CASE_OK when the checks ran, whatever they found. */
  int (*check)(sb_db *db, int full, sb_finding_fn fn, void *ud);
  /* A value of the meta table ("store_id"): owned string in *value, or
   * CASE_NOTFOUND. */
  int (*meta_get)(sb_db *db, const char *key, char **value);
  /* Sets a value of the meta table (a copy keeps the store's identity). */
  int (*meta_put)(sb_db *db, const char *key, const char *value);

  /* write=1 takes the write lock at once (SQLite BEGIN IMMEDIATE). */
  int (*begin)(sb_db *db, int write);
  int (*commit)(sb_db *db);
  int (*rollback)(sb_db *db); /* harmless without a transaction */
  /* A batch (op SB_BATCH_*): BEGIN takes the write lock and opens one
   * transaction; until COMMIT or ROLLBACK, begin() opens a savepoint in it,
   * commit() releases it and rollback() rolls back to it (nothing when none
   * is open), so each call's writes stay all-or-nothing inside the batch.
   * COMMIT makes the batch durable or, failing, rolls it all back. */
  int (*batch)(sb_db *db, int op);

  int (*def_put)(sb_db *db, const sb_def_row *row); /* same id+version+hash: CASE_OK, no-op */
  int (*def_list)(sb_db *db, sb_def_fn fn, void *ud);
  /* One definition row (CASE_NOTFOUND when there is none). */
  int (*def_get)(sb_db *db, const char *id, int version, sb_def_fn fn, void *ud);
  /* The id and version of every stored definition of `id` (NULL: of every id),
   * in (id, version) order, without their sources. */
  int (*def_keys)(sb_db *db, const char *id, sb_def_key_fn fn, void *ud);

  /* Location profiles, versioned per name: a put whose hash differs from the
   * name's latest version adds version latest + 1; one with the latest's hash
   * adds nothing.  *version gets the version that holds the text.  Nothing is
   * ever overwritten. */
  int (*profile_put)(sb_db *db, const sb_profile_row *row, int *version);
  /* The latest version of every name, in name order. */
  int (*profile_list)(sb_db *db, sb_profile_fn fn, void *ud);
  /* One version (0: the latest) of `name`; CASE_NOTFOUND when there is none. */
  int (*profile_get)(sb_db *db, const char *name, int version, sb_profile_fn fn, void *ud);

  /* Holidays added by decree (Atw art. 3(3)): "YYYY-MM-DD", a name and when it
   * was stored (`added`, UTC seconds; a day stored again keeps its first
   * `added` and takes the new name). */
  int (*holiday_put)(sb_db *db, const char *day, const char *name, int64_t added);
  int (*holiday_list)(sb_db *db, sb_holiday_fn fn, void *ud);

  /* The case row joined with its latest journal row (sb_case_row).
   * CASE_NOTFOUND without a case row.  A case row without a journal row
   * (a damaged store) is returned with revision -1 and the row's columns
   * NULL; a latest row without state (likewise) with state NULL:
   * sb_case_row_loadable() says whether a case can be loaded from it. */
  int (*case_get)(sb_db *db, const char *id, sb_case_row *out);
  /* Inserts the case row's own columns (the creation's journal row is
   * appended in the same transaction). */
  int (*case_insert)(sb_db *db, const sb_case_row *row);
  /* Writes the row's profile_version and profile_first, the only columns of a
   * case row that change; `old_revision` is not looked at (the journal's
   * UNIQUE (case_id, revision) keeps two writers of one revision apart).
   * CASE_NOTFOUND when there is no such case row. */
  int (*case_update)(sb_db *db, const sb_case_row *row, int64_t old_revision);
  int (*case_list)(sb_db *db, sb_case_id_fn fn, void *ud); /* ids in id order */
  /* At most `limit` (<= 0: every) cases with an id after `after` (NULL: from
   * the first), in id order, as case_get() without data and state (NULL); a
   * case without a journal row has revision -1 and configuration "[]". Rows
   * are borrowed for the callback, whose non-zero return stops the read and
   * is returned. */
  int (*case_page)(sb_db *db, const char *after, int limit, sb_case_fn fn, void *ud);
  /* The latest event time in the journal; *any 0 for an empty journal. */
  int (*latest_time)(sb_db *db, int64_t *t, int *any);

  /* Appends a row at row->seq when it is > 0 (the caller read journal_tail
   * under the write lock), else at the next seq, which it sets. */
  int (*journal_append)(sb_db *db, sb_journal_row *row);
  /* A number that changes whenever the database changes, by this connection
   * or any other (SQLite's data version); CASE_NOTFOUND when the backend
   * cannot tell (the store then reads the tree's frontier on every fire). */
  int (*data_version)(sb_db *db, uint64_t *version);
  /* The largest seq (0: empty journal) and that row's node (*have 0 when
   * it has none of 32 bytes). */
  int (*journal_tail)(sb_db *db, int64_t *seq, unsigned char node[32], int *have);
  /* The node of row `seq`: CASE_NOTFOUND when there is no such row or it has
   * no node of 32 bytes. */
  int (*journal_node)(sb_db *db, int64_t seq, unsigned char node[32]);
  int (*journal_set_node)(sb_db *db, int64_t seq, const unsigned char node[32]);
  /* Row `seq` to fn, or CASE_NOTFOUND. */
  int (*journal_get)(sb_db *db, int64_t seq, sb_journal_fn fn, void *ud);
  int (*journal_case)(sb_db *db, const char *case_id, sb_journal_fn fn, void *ud);
  int (*journal_from)(sb_db *db, int64_t after, int limit, sb_journal_fn fn, void *ud);
  /* At most `limit` (<= 0: every) rows of one case with a revision above
   * `after` (-1: from the creation), in revision order. */
  int (*journal_case_page)(sb_db *db, const char *case_id, int64_t after, int limit,
                           sb_journal_fn fn, void *ud);

  /* Replaces every timer row of the case with `rows` (store.c calls it only
   * when they differ from the stored ones). */
  int (*timers_replace)(sb_db *db, const char *case_id, const sb_timer_row *rows, int n);
  /* The unfired timer due first at or before `now` in (due, case id, seq)
   * order, strictly after `after` in that order when `after` is not NULL.
   * CASE_NOTFOUND when there is none. */
  int (*timer_next)(sb_db *db, int64_t now, const sb_timer_row *after, sb_timer_row *out);
  /* The due time of the unfired timer due first; *any 0 when there is none. */
  int (*next_due)(sb_db *db, int64_t *due, int *any);
  /* Every timer row of the case, in seq order. */
  int (*timers_case)(sb_db *db, const char *case_id, sb_timer_fn fn, void *ud);

  int (*refused_add)(sb_db *db, const sb_refused_row *row);
  /* At most `limit` refused rows with an id above `after`, in id order (copy). */
  int (*refused_from)(sb_db *db, int64_t after, int limit, sb_refused_fn fn, void *ud);

  /* An idempotency key's first result: the case, the journal seq and the
   * request's hash (*request NULL for a key stored before schema 5).  Both
   * strings are the caller's to free.  CASE_NOTFOUND for an unused key. */
  int (*idem_get)(sb_db *db, const char *key, char **case_id, int64_t *seq, char **request);
  int (*idem_put)(sb_db *db, const char *key, const char *case_id, int64_t seq,
                  const char *request, int64_t recorded);
  int (*idem_list)(sb_db *db, sb_idem_fn fn, void *ud);

  int (*outbox_add)(sb_db *db, sb_outbox_row *row); /* sets row->id */
  int (*outbox_list)(sb_db *db, int limit, sb_outbox_fn fn, void *ud);
  int (*outbox_ack)(sb_db *db, int64_t id, int64_t at);
  /* Every outbox row of the case, delivered or not, in id order. */
  int (*outbox_case)(sb_db *db, const char *case_id, sb_outbox_fn fn, void *ud);
  /* Named consumers (schema 9), inside begin(write=1).  claim: creates the
   * consumer if it is new, then hands to fn (row->delivered 0) at most `limit`
   * outbox rows, in id order, that `consumer` has neither marked done nor
   * leased until after `now`, and leases each until `lease_until`.  done:
   * marks row `id` done for the consumer (CASE_NOTFOUND: no outbox row `id`)
   * and folds the consumer's done rows below its oldest row not done into its
   * cursor.  Correct only while every outbox row is added under the write lock
   * (ids then commit in order). */
  int (*outbox_claim)(sb_db *db, const char *consumer, int limit, int64_t now,
                      int64_t lease_until, sb_outbox_fn fn, void *ud);
  int (*outbox_done)(sb_db *db, const char *consumer, int64_t id, int64_t at);

  /* Rows of timers, outbox, idempotency and refused whose case has no case row. */
  int (*orphans)(sb_db *db, sb_orphan_fn fn, void *ud);

  /* Access tokens (schema 7).  put: CASE_EXISTS when a token in use has the
   * name; sets row->id.  get: the token in use with that hash, CASE_NOTFOUND
   * otherwise (the row owns its strings: sb_token_row_free).  revoke: marks the
   * name's token in use revoked at `at`, CASE_NOTFOUND if there is none.  list:
   * every token, revoked ones too, by id. */
  int (*token_put)(sb_db *db, sb_token_row *row);
  int (*token_get)(sb_db *db, const char *hash, sb_token_row *out);
  int (*token_revoke)(sb_db *db, const char *name, int64_t at);
  int (*token_list)(sb_db *db, sb_token_fn fn, void *ud);

  /* 1 when the last failure left nothing written and the whole transaction may
   * run again (a deadlock or serialization failure, a connection lost before
   * COMMIT, a key stored by another writer at the same moment); 0 otherwise. */
  int (*retryable)(sb_db *db);
  /* Waits, outside a transaction, until the journal has a row after `after`
   * (*ready 1) or `timeout_ms` passed (*ready 0; < 0 waits without bound). */
  int (*wait)(sb_db *db, int64_t after, int timeout_ms, int *ready);
} sb_ops;

void sb_case_row_free(sb_case_row *r);
/* CASE_OK when `r` (from case_get) has what a case is loaded from: a latest
 * journal row with configuration, data, state and hash; else CASE_CORRUPT
 * with the reason in err. */
int sb_case_row_loadable(const sb_case_row *r, char *err, size_t errlen);
void sb_timer_row_free(sb_timer_row *r);
void sb_token_row_free(sb_token_row *r);

/*
 * Opens the SQLite backend on `path` (flags SB_READONLY, SB_CREATE).
 * On success stores the table in *ops and the handle in *db.  On failure
 * returns CASE_NOTFOUND (no file, no SB_CREATE), CASE_IO, CASE_CORRUPT or
 * CASE_NOMEM with a message in err.
 */
int sb_sqlite_open(const char *path, int flags, const sb_ops **ops, sb_db **db, char *err,
                   size_t errlen);

#endif /* LIBCASE_STORE_BACKEND_H */
