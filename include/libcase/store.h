/*
 * libcase durable store: cases, their journal, timers and an outbox in one
 * SQLite file (WAL mode), shared safely by several processes.
 *
 * The conventions of libcase.h hold here too (result codes, errors on the
 * engine handle, ownership, UTC seconds, one thread per engine).  A store is
 * bound to one engine: definitions it holds are loaded into that engine, and
 * cases it hands out are owned by it.
 *
 * One accepted fire is one SQLite transaction: the journal row, the case's new
 * snapshot, its timers and its outbox rows commit together or not at all.
 */
#ifndef LIBCASE_STORE_H
#define LIBCASE_STORE_H

#include "libcase/libcase.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A durable store on one file. */
typedef struct case_store case_store;

/* Flags for case_store_open(). */
#define CASE_STORE_CREATE   0x1 /* create the file if it does not exist */
#define CASE_STORE_READONLY 0x2 /* open for reading only (verify, follow, show); needs
                                   no write access to the file or its directory
                                   (docs/store.md, "Read-only stores") */

/**
 * Opens (with CASE_STORE_CREATE: creates) the store at `path` for engine `e`,
 * migrating its schema to the current version (PRAGMA user_version).  `path`
 * is an SQLite file, or a PostgreSQL location (case_store_backend()): a
 * postgresql:// URI or conninfo, with an optional `schema=NAME` (default
 * "libcase") that names the PostgreSQL schema the store lives in; the same
 * calls then work on that database (docs/store.md, "PostgreSQL").  There the
 * errors are CASE_INVALID (not a URI or conninfo, a bad schema name),
 * CASE_DENIED (the server refused the login), CASE_IO (no server answers),
 * CASE_NOTFOUND (no such database, or no store in the schema without
 * CASE_STORE_CREATE), CASE_CORRUPT (the schema holds other tables, or a
 * newer schema version), each "store 'LOCATION': " (password shown as ***)
 * with what to do.  The
 * definitions it holds are loaded into `e` lazily, each when first needed and
 * not before: a case of it is loaded (case_store_get(), fire, tick, verify),
 * case_def_find() or case_def_in_force() asks for its id, or case_def_next()
 * lists them all (those already loaded with the same hash are shared).
 * Opening parses none, so its cost does not grow with the number of stored
 * definitions.  A definition `e` loaded before the call must match the stored
 * one of its id and version (CASE_EXISTS below).  While the store is open a
 * stored definition that does not load (its text changed behind the store's
 * back) makes those lookups fail with the error on the engine, and
 * case_store_verify() checks every stored definition.  Sets WAL mode,
 * synchronous=NORMAL and a busy timeout
 * of 5000 ms (see case_store_config()).  On success stores the handle in *out;
 * the caller closes it with case_store_close() before closing the engine.
 *
 * With CASE_STORE_READONLY the store is never migrated and nothing is written
 * to it or next to it when the process may not write there: a store on
 * read-only media, or a file the user may only read, is read through SQLite's
 * `immutable=1` when its write-ahead log is empty (docs/store.md, "Read-only
 * stores"); a non-empty log that cannot be indexed without write access is
 * CASE_IO.
 *
 * Errors (message on the engine, each starting "store 'PATH': "): CASE_IO
 * (cannot open or create; "is a directory, not a store ..."; without
 * CASE_STORE_READONLY, a file this process may not write: "is read-only for
 * this user, and this command changes the store ..."), CASE_CORRUPT ("is an
 * empty file (0 bytes), not a libcase store ..." unless CASE_STORE_CREATE,
 * which makes a store in it; "is not a libcase store: not an SQLite database
 * (it starts with "...")"; "is not a libcase store: an SQLite database with
 * other tables" or "of another program"; a schema newer than this library),
 * CASE_NOTFOUND (no file and no CASE_STORE_CREATE), CASE_EXISTS (a stored
 * definition's id and version is loaded in `e` with other content),
 * CASE_NOMEM, CASE_MISUSE.  A write that the file refuses later (its
 * permissions changed) is CASE_IO, never CASE_MISUSE.
 */
CASE_API int case_store_open(case_engine *e, const char *path, int flags, case_store **out);

/**
 * The backend a store location names: "postgresql" for a postgresql:// or
 * postgres:// URI, or libpq conninfo whose first word is one of its keywords
 * ("host=... dbname=..."); "sqlite" for anything else (a file path).  The
 * result is a static string; NULL gives "sqlite".  Pure and thread-safe.
 * docs/store.md, "PostgreSQL", gives the syntax (the `schema` option too).
 */
CASE_API const char *case_store_backend(const char *location);

/**
 * `location` as a message may show it: a PostgreSQL location with its password
 * (conninfo `password=...`, a URI's `user:PASSWORD@` or `?password=`) replaced
 * by "***", as the store's own messages show it; a file path unchanged.
 * Returns a caller-owned string (free with case_free()), or NULL when
 * `location` is NULL or memory runs out.  Pure and thread-safe.  A program
 * that prints the location it was given (casectl does) prints this instead.
 */
CASE_API char *case_store_shown_location(const char *location);

/** Closes the store.  Cases it loaded stay on the engine.  NULL does nothing. */
CASE_API void case_store_close(case_store *s);

/**
 * Copies everything store `from` holds into store `to`, which must be empty
 * (a new store): the definitions with their Lua modules, every version of
 * every location profile (under the same version numbers), the holidays, the
 * case rows, the journal (every row as stored: its sequence number, hashes,
 * recording time and Merkle node, so the copy verifies as the original does
 * and the original's signed checkpoints hold for it), the timers, the outbox
 * (delivered rows stay delivered), idempotency keys, refused events, access
 * tokens (revoked ones stay revoked) and the store's identity (meta
 * store_id).  The stores may be of any backends (SQLite to PostgreSQL and
 * back, or the same kind); only the storage interface is used, no definition
 * is loaded and nothing is replayed.  `from` is read in one snapshot (open it
 * with CASE_STORE_READONLY); `to` is written in one transaction: on any
 * failure nothing of the copy remains.  Check the copy with
 * case_store_verify() (casectl copy does).
 *
 * *counts_json (may be NULL) gets a caller-owned JSON object of what was
 * copied: {"definitions":n,"profiles":n,"holidays":n,"cases":n,"journal":n,
 * "timers":n,"outbox":n,"idempotency":n,"refused":n,"tokens":n}.  Errors are
 * on `from`'s engine.  Returns CASE_OK; CASE_EXISTS (`to` is not empty:
 * nothing written); CASE_MISUSE (NULL store, the same store twice, `to`
 * read-only); the backends' codes (CASE_IO, CASE_BUSY, CASE_CORRUPT,
 * CASE_DENIED ...), the message saying whether the source or the target
 * failed; CASE_NOMEM.
 */
CASE_API int case_store_copy(case_store *from, case_store *to, char **counts_json);

/* Settings for case_store_config(). */
#define CASE_STORE_SYNC_NORMAL 0 /* PRAGMA synchronous=NORMAL (default; WAL-safe) */
#define CASE_STORE_SYNC_FULL   1 /* PRAGMA synchronous=FULL */

/**
 * Sets the durability level (`sync`: CASE_STORE_SYNC_*) and the busy timeout in
 * milliseconds (`busy_ms` < 0 leaves it).  Returns CASE_OK, CASE_INVALID or CASE_MISUSE.
 */
CASE_API int case_store_config(case_store *s, int sync, int busy_ms);

/** The store's clock: returns the current time in UTC seconds. */
typedef int64_t (*case_clock_fn)(void *ud);

/**
 * Sets the store's clock, the time against which event times are checked
 * (case_store_set_future_limit()).  By default (and after `fn` NULL) it is the
 * wall clock of the machine the program runs on, time(NULL) in UTC seconds,
 * read at every call.  It is not the latest event time in the journal: that
 * would let one far-future row move the bound along with it.  Tests and
 * simulations give their own.  `ud` is passed back to `fn` and stays the
 * caller's.  Nothing else reads this clock (event times are the caller's `at`;
 * the informational `recorded` columns are the wall clock).
 * Returns CASE_OK or CASE_MISUSE (NULL store).
 */
CASE_API int case_store_set_clock(case_store *s, case_clock_fn fn, void *ud);

/** The store's clock now (UTC seconds); 0 for a NULL store. */
CASE_API int64_t case_store_clock(case_store *s);

/** The default far-future limit: one day, in seconds. */
#define CASE_STORE_FUTURE_LIMIT 86400

/**
 * Sets how far ahead of the store's clock (case_store_set_clock()) an event
 * time may be: case_store_create(), case_store_fire() / _v2() with an `at`, and
 * case_store_tick() with a `now`, more than `seconds` after the clock are
 * refused with CASE_INVALID (the message gives both times), nothing written.
 * One such row would otherwise move the whole store: the next tick fires every
 * timer of every case due before it.  `seconds` < 0 removes the limit (what
 * casectl --allow-future does); 0 refuses any time after the clock.  The
 * default is CASE_STORE_FUTURE_LIMIT (a day: enough for a clock or time zone
 * mistake, not for a wrong year).  Times in the past are never refused by this
 * rule.  The setting lives on this handle only.  Returns the limit before the
 * call (-1: none), or -1 for a NULL store.
 */
CASE_API int64_t case_store_set_future_limit(case_store *s, int64_t seconds);

/** The far-future limit in seconds (-1: none; -1 also for a NULL store). */
CASE_API int64_t case_store_future_limit(const case_store *s);

/**
 * Stores a definition loaded on the store's engine (source text and hash), so
 * that cases can be pinned to it and other programs can load it.  Storing the
 * same id, version and hash again does nothing.  Returns CASE_OK, CASE_EXISTS
 * (the id and version is stored with another hash), CASE_MISUSE (definition of
 * another engine), CASE_BUSY, CASE_IO, CASE_NOMEM.
 */
CASE_API int case_store_add_def(case_store *s, const case_def *d);

/**
 * Stores the location profile `name`, already loaded on the store's engine with
 * case_engine_load_profile(), in the store (its Lua text), so that every program
 * that opens the store (and verify's replay) uses it without the file.  Every
 * definition stored is loaded and checked against the profile first
 * (case_def_check_profile()): one the profile breaks refuses it with
 * CASE_INVALID and the profile's position, and nothing is stored.
 *
 * Profiles are versioned like definitions, and nothing is ever overwritten
 * (schema 8): storing a text that differs from the latest stored version of
 * `name` adds version latest + 1 (the first is 1); storing the latest text again
 * adds nothing.  Every stored case is pinned to the version it was created with
 * (case_store_create() stores the engine's profile as a new version first if it
 * is not the latest), runs on it in every program (fire, tick, available,
 * explain) and replays on it in case_store_verify().  A new version therefore
 * applies to new cases only; a running case moves to it only by the explicit,
 * journalled case_store_set_profile().  Opening a store makes the latest stored
 * version of each name the engine's profile for new cases, unless the program
 * loaded one of that name itself (then its own is used for new cases, and stored
 * as a new version when a case is created on it).
 * Returns CASE_OK, CASE_NOTFOUND (no such profile loaded), CASE_INVALID (as
 * above), CASE_MISUSE (read-only store), CASE_BUSY, CASE_IO, CASE_NOMEM.
 */
CASE_API int case_store_add_profile(case_store *s, const char *name);

/**
 * Moves stored case `id` to version `version` of its location's profile (0: the
 * latest stored version), as one journalled step: a journal row with event
 * "libcase:profile" (a name no definition can use), payload
 *   {"location":"budel","from":1,"to":2,"hash":"<hex SHA-256 of version 2's text>"}
 * ("from" 0 for a case that was not pinned: created before schema 8 with no
 * stored profile), `actor` and `role` as given (journalled, not checked against
 * the definition), time `at`, the case's configuration and data unchanged and
 * its revision + 1.  Timers of the case due at or before `at` fire first, each
 * journalled, as before any event.  From then on the case runs on the new
 * version; its earlier rows still replay on the version they ran with, because
 * verify's replay switches at this row.  Nothing is overwritten.  Terms already
 * running keep their due times; terms started later use the new params.
 *
 * A case already on that version: CASE_OK, nothing written, *seq (may be NULL)
 * 0; otherwise *seq gets the row's journal sequence.  Returns CASE_OK,
 * CASE_NOTFOUND (no such case, or no such stored version of its profile),
 * CASE_INVALID (a negative version, a case without a location, `at` before the
 * case's last event or too far ahead of the store's clock, text that is not
 * UTF-8), CASE_DONE (the case is closed), CASE_LIMIT (its due timers keep
 * running out), CASE_MISUSE (read-only store, NULL id), CASE_BUSY, CASE_IO,
 * CASE_CORRUPT (the stored version's text does not match its hash), CASE_NOMEM.
 */
CASE_API int case_store_set_profile(case_store *s, const char *id, int version,
                                    const char *actor, const char *role, int64_t at,
                                    int64_t *seq);

/**
 * Adds a holiday added by Royal Decree (Algemene termijnenwet art. 3(3)) to the
 * engine's calendar, as case_engine_add_holiday() does, and stores it, so that
 * every program that opens the store (and verify's replay) counts terms with
 * it.  `date` is "YYYY-MM-DD" (Europe/Amsterdam); `name` may be NULL.  Adding a
 * stored date again updates its name.  Terms already running keep their last
 * day; terms computed afterwards see the holiday.  It is stored with the time
 * it counts from (`holidays.added`, the wall clock, later than the `recorded`
 * of every journal row before it: the call waits for the next second if the
 * last row was recorded in this one), and verify's replay counts it for the
 * rows recorded from then on only, as the live run did: a term computed
 * before the decree replays to the last day it had.
 * Returns CASE_OK, CASE_INVALID (not a date), CASE_MISUSE (read-only store),
 * CASE_BUSY, CASE_IO, CASE_NOMEM.
 */
CASE_API int case_store_add_holiday(case_store *s, const char *date, const char *name);

/**
 * Creates a case durably, as case_instance_create() does, pinned to definition
 * `d` (which must be stored: case_store_add_def()).  The creation is the
 * case's first journal row (revision 0, event "create", the initial data as
 * payload), with `actor` and `role`.  `role` must be one of d's roles
 * (`roles:`); NULL creates the case as the system (journalled without a role,
 * as case_store_fire() fires with a NULL role): hosts acting for a person
 * always pass the role.  `id` must pass case_id_check().
 * Returns the codes of case_instance_create() plus CASE_BUSY and CASE_IO;
 * CASE_EXISTS if the id is taken in the store; CASE_DENIED (nothing written)
 * for a role the definition does not declare; CASE_INVALID (nothing written)
 * for an id case_id_check() refuses, a location, actor or role that is not
 * UTF-8, or the actor "timer" (reserved for the clock's rows).  On success the
 * case is on the engine; *out (may be NULL)
 * borrows it.
 */
CASE_API int case_store_create(case_store *s, const case_def *d, const char *id,
                               const char *location, const char *data_json, const char *actor,
                               const char *role, int64_t at, case_instance **out);

/**
 * Fires an event at stored case `id` in one transaction, on the case as stored
 * now (re-read if another writer changed it).
 *
 * `expected_revision` >= 0 is an optimistic lock: if the stored case's revision
 * differs, nothing is written and CASE_CONFLICT is returned (read again and
 * retry); -1 fires on whatever revision is current.  `idempotency_key` (may be
 * NULL; not "") makes a retry safe, as an HTTP Idempotency-Key does: the first
 * accepted fire with a key stores the key with its request (the case id, event,
 * payload, actor and role; see case_store_fire_v2() for the time), and a later
 * fire with the same key and the same request writes nothing and returns
 * CASE_OK with the first fire's journal sequence in *seq.  The same key with
 * another request is refused with CASE_EXISTS (the message names the first use
 * and what differs), nothing written.  A refused event does not use up its key.
 * On success *seq (may be NULL) gets the new journal sequence number.  This is
 * case_store_fire_v2() with flags 0 and no `replayed` output.
 *
 * The case id, event, actor, role and key must be UTF-8 (they go into the
 * hashed journal row): other bytes are CASE_INVALID, nothing written.
 *
 * A refused event (CASE_NOTHANDLED, CASE_DENIED, CASE_GUARD, CASE_SCRIPT,
 * CASE_LIMIT, CASE_INVALID) is recorded in the refused-events table with its
 * reason and never changes the case.  The row keeps at most 1024 bytes of the
 * event name, actor and message; a longer payload is kept as
 * {"refused_payload_cut": {"bytes": N, "sha256": "<hex of the whole>",
 * "head": "<its first 512 bytes>"}}, so refusals cannot grow the store by more
 * than a few KiB each.  The actor "timer" is reserved for the clock's journal
 * rows: with a role it is refused with CASE_INVALID (without one, CASE_MISUSE),
 * before anything is read or written.  Returns CASE_OK, those codes,
 * CASE_NOTFOUND (unknown case), CASE_CONFLICT, CASE_EXISTS (the idempotency
 * key was used for another request), CASE_BUSY, CASE_IO, CASE_CORRUPT,
 * CASE_NOMEM, CASE_MISUSE.
 */
CASE_API int case_store_fire(case_store *s, const char *id, const char *event,
                             const char *payload_json, const char *actor, const char *role,
                             int64_t at, int64_t expected_revision, const char *idempotency_key,
                             int64_t *seq);

/* Flags for case_store_fire_v2(). */
#define CASE_FIRE_KEY_TIME 0x1 /* the event time is part of the request the key names */

/**
 * case_store_fire() that also says whether the call was a retry, and takes flags.
 *
 * The request an idempotency key names is the case id, the event, the payload
 * (as JSON: the same value in other spacing or key order is the same payload;
 * NULL and "null" are the same), the actor and the role (NULL differs from any
 * string).  The event time is not part of it by default, because a retry
 * usually takes "now" again: the first fire's time stands.  With
 * CASE_FIRE_KEY_TIME (for hosts whose `at` is the event's own time, the same on
 * every retry, as an import's rows are) the time must also equal the first
 * fire's, else CASE_EXISTS.  `expected_revision` is a precondition, not part of
 * the request: a retry of a fire that moved the case on is still a retry.
 * Keys stored before schema 5 carry no request; for them only the case id is
 * compared.
 *
 * *replayed (may be NULL) gets 1 when the key had been used for this same
 * request (nothing was written; *seq is the first fire's journal sequence), 0
 * when the event was fired now.  Unknown bits in `flags` are CASE_MISUSE.
 * Other arguments, results and errors as case_store_fire().
 */
CASE_API int case_store_fire_v2(case_store *s, const char *id, const char *event,
                                const char *payload_json, const char *actor, const char *role,
                                int64_t at, int64_t expected_revision,
                                const char *idempotency_key, int flags, int64_t *seq,
                                int *replayed);

/**
 * Fires every stored timer and deadline due at or before `now`, over all cases,
 * in order of due time (then case id, then timer id), each as its own
 * transaction and journal row with the due time as event time and actor
 * "timer".  Safe under an at-least-once scheduler: a timer that was cancelled
 * (its state left) or already fired is skipped.  *fired (may be NULL) gets the
 * number fired.  Returns CASE_OK or the first failure's code.
 */
CASE_API int case_store_tick(case_store *s, int64_t now, int *fired);

/** The timers per transaction case_store_tick_v2() takes when given 0. */
#define CASE_STORE_TICK_BATCH 100

/**
 * case_store_tick() with the due timers fired in batches: up to `per_txn`
 * timers share one transaction (case_store_batch_begin()), each in a
 * savepoint of its own, so one whose macrostep fails is recorded as refused
 * and rolled back alone, never taking the others with it; the batch commits
 * and the next one begins until nothing due is left.  `per_txn` 0 takes
 * CASE_STORE_TICK_BATCH; 1 is case_store_tick().  Inside a batch the caller
 * opened, every timer runs in that batch (and commits with it).  The
 * durability trade-off of batches: a crash or a failed commit loses the
 * uncommitted batch's timers (never part of one), which stay due and fire
 * at the next tick.  *fired (may be NULL) gets the number fired and
 * committed.  Returns as case_store_tick(), plus CASE_INVALID (per_txn < 0);
 * when a batch's commit fails its code is returned and *fired counts the
 * batches before it.
 */
CASE_API int case_store_tick_v2(case_store *s, int64_t now, int per_txn, int *fired);

/**
 * Batches: many calls in one transaction, each call all-or-nothing.
 *
 * case_store_batch_begin() takes the store's write lock and opens one
 * transaction; every writing call on the store until case_store_batch_commit()
 * (case_store_create(), case_store_fire() / _v2(), case_store_tick() / _v2(),
 * case_store_set_profile(), case_store_add_def(), ...) runs in it, each in a
 * savepoint of its own: a call that fails or is refused is rolled back to its
 * savepoint, leaving the batch as it was before the call, so a refused or
 * failing fire never takes its neighbours with it (its refusal is recorded in
 * the batch).  Reads in the batch see its calls.  Notifications of the calls
 * are held and handed to the host after the batch commits, in call order;
 * the cases the batch used stay loaded until it ends (the case cache is
 * trimmed then), so memory grows with the batch: keep batches to hundreds of
 * calls.
 *
 * The durability trade-off: a call that returns CASE_OK inside a batch has
 * written nothing durable yet.  Only case_store_batch_commit() returning
 * CASE_OK makes every call of the batch durable (at the store's synchronous
 * level); a crash before it, or a commit that fails, loses every call of the
 * batch, and never part of a call: each fire's journal row, case, timers,
 * outbox rows and idempotency key are in the batch or not.  A host that
 * answers requests must not answer before the commit.  What a batch buys:
 * one commit (and one WAL sync under FULL) for all its calls, several times
 * the rate of calls committed one by one (docs/performance.md).  Other
 * writers wait while a batch is open (the busy timeout applies to them).
 *
 * Returns CASE_OK; CASE_MISUSE (a batch is open already, or a read-only
 * store), CASE_BUSY, CASE_IO, CASE_NOMEM.
 */
CASE_API int case_store_batch_begin(case_store *s);

/**
 * Commits the open batch: every call of it becomes durable at once; then the
 * held notifications go to the host.  When the commit fails the whole batch is
 * rolled back (as case_store_batch_rollback()) and its code returned.  Returns
 * CASE_OK, CASE_MISUSE (no batch is open), CASE_BUSY, CASE_IO, CASE_NOMEM.
 */
CASE_API int case_store_batch_commit(case_store *s);

/**
 * Rolls the open batch back: nothing of it is written (its refusals neither),
 * its notifications are dropped, and the cases it changed on the engine are
 * freed (pointers to them from calls in the batch are no longer valid; the
 * next call restores them from the store).  No batch open: does nothing.
 * case_store_close() rolls back a batch left open.  Returns CASE_OK,
 * CASE_IO, CASE_MISUSE (NULL store).
 */
CASE_API int case_store_batch_rollback(case_store *s);

/** 1 while a batch is open on the store, else 0 (also for NULL). */
CASE_API int case_store_in_batch(const case_store *s);

/**
 * When the next stored timer or deadline runs out: the due time (UTC seconds)
 * of the unfired one due first, over all cases, in *due; case_store_tick()
 * with a `now` before it fires nothing (and takes no write lock).  A scheduler
 * can sleep until then; a deadline that ran out and was fired is not counted.
 * One index lookup.  Returns CASE_OK, CASE_NOTFOUND (no timer is running;
 * *due 0), CASE_IO, CASE_MISUSE.
 */
CASE_API int case_store_next_due(case_store *s, int64_t *due);

/**
 * Loads stored case `id` onto the engine (or refreshes the engine's copy if the
 * store has a newer revision) and stores a borrowed pointer in *out, valid until
 * the next call on the store or the case is freed.  Returns CASE_OK,
 * CASE_NOTFOUND, CASE_CORRUPT, CASE_NOMEM, CASE_MISUSE.
 */
CASE_API int case_store_get(case_store *s, const char *id, case_instance **out);

/** The default size of a store's case cache (case_store_set_cache()), in cases. */
#define CASE_STORE_CACHE_DEFAULT 1000

/**
 * Sets the size of the store's case cache: how many of the cases this handle
 * restored from the store or created (case_store_get(), case_store_create(),
 * case_store_fire(), case_store_tick(), ...) stay loaded on its engine once a
 * call returns.  Beyond it the least recently used are freed, as
 * case_instance_free() frees them, when a call on the store returns; the case
 * that call hands out or fired is always kept, so a pointer the store gives
 * stays valid until the next call on the store, as case_store_get() says.  An
 * evicted case is restored from its stored snapshot when next used, as a case
 * another process changed is: eviction changes the cost of a call, never its
 * result.  So a host that runs for months and touches millions of cases holds
 * at most `cases` of them (an idle case takes 0.5 to 2 KiB, docs/performance.md).
 * Cases the host created or restored on the engine itself are never in the
 * cache and never freed by the store; case_instance_free() of a cached case
 * takes it out of the cache.  When the store is closed, the cases in its cache
 * stay on the engine as the host's.
 *
 * `cases` 0 keeps only the case of the last call; < 0 removes the bound (every
 * case stays loaded, the behaviour before the cache).  The default is
 * CASE_STORE_CACHE_DEFAULT.  Setting a smaller size evicts at once.  Returns
 * the size before the call, or -1 (no bound, or a NULL store).
 */
CASE_API long case_store_set_cache(case_store *s, long cases);

/**
 * The case cache's size (-1: no bound, or a NULL store); *loaded (may be NULL)
 * gets how many cases are in it now.
 */
CASE_API long case_store_cache(const case_store *s, long *loaded);

/**
 * Checks everything the store holds against its journal, as
 * case_store_verify_v2() with no options: the database's own integrity, every
 * journal row's hash and the hash chains, the journal's Merkle tree, a replay
 * of every case, and every table derived from the journal (the case rows,
 * timers, outbox, idempotency keys) compared with what the replay gives.
 */
CASE_API int case_store_verify(case_store *s, char **report);

/**
 * Verifies the store (docs/store.md, "Verify"), in one read transaction: a
 * problem never stops the others.
 *
 * `options_json` (NULL for the defaults) is a JSON object; every key is optional:
 *   "integrity": "full" (PRAGMA integrity_check, the default), "quick"
 *                (quick_check: no index contents) or "none"
 *   "checkpoint": the text of a checkpoint file (case_store_checkpoint()): the
 *                journal must extend it (its first `size` rows give its root),
 *                its signature must be valid and it must be of this store
 *   "public_key": PEM text of the Ed25519 public key the checkpoint must be
 *                signed with (without it the key in the checkpoint is used
 *                and the report says "trusted_key": false)
 *
 * *report (caller-owned, free with case_free) gets a JSON object
 *   {"cases":N,"events":M,"tree":{"size":M,"root":"<hex>","complete":true},
 *    "checkpoint":{"origin":..,"size":..,"time":..,"root":..,"key":..,
 *                  "signature":"valid"|"invalid","trusted_key":bool,
 *                  "calendar":"matches"|"differs"|"not checked"|null (a
 *                  checkpoint from before the calendar was signed),
 *                  "consistent":bool,"proof":["<hex>",...]},
 *    "problems":[{"case":"Z1"|null,"seq":7,"problem":"...","table":"journal"|null,
 *                 "column":"data"|null,"message":"..."}],
 *    "problems_omitted":n}
 * "checkpoint" only with that option; "proof" is the consistency proof from
 * the checkpoint to the tree of today ("tree"), computed from the store.
 * "problem" is one of "integrity" (the database's own check, or a read that
 * failed), "schema" (a table, column or index missing, changed or added),
 * "corrupt" (a value that is not UTF-8 or not JSON), "hash", "chain", "order"
 * (missing seqs, a case's rows out of seq order), "tree" (a stored tree node
 * that the rows do not give), "missing" (journal rows without a case row, a
 * case row without journal, rows of other tables without a case), "replay",
 * "state" (a column of the case row), "timers", "outbox", "idempotency",
 * "checkpoint".  "case" is null and "seq" 0 where they do not apply.  At
 * most 1000 problems are listed; "problems_omitted" counts the rest.
 *
 * Returns CASE_OK when there is no problem, CASE_CORRUPT when there is one (the
 * report says which); CASE_INVALID (bad options: the message names the key;
 * no report); CASE_IO, CASE_NOMEM, CASE_MISUSE (no report).  The host's cases
 * are not touched (replay runs on a separate engine).  Takes time linear in
 * the store's size; one thread at a time per store, as everything else.
 */
CASE_API int case_store_verify_v2(case_store *s, const char *options_json, char **report);

/* ------------------------------------------------------------------ */
/* The journal's Merkle tree and signed checkpoints (docs/store.md)     */
/* ------------------------------------------------------------------ */

/**
 * The head of the journal's Merkle tree (RFC 6962) as the store keeps it:
 * *size gets the number of journal rows, root (65 bytes, the caller's) the
 * hex MTH of them.  Reads O(log size) stored nodes; it does not check them
 * against the rows (case_store_verify() does).  Returns CASE_OK, CASE_CORRUPT
 * (a row or node is missing: run verify), CASE_IO, CASE_MISUSE (NULL
 * argument).
 */
CASE_API int case_store_tree_head(case_store *s, int64_t *size, char root[65]);

/**
 * Signs `len` bytes of `message` with Ed25519 and writes the 64-byte
 * signature.  Returns 0 on success, anything else to refuse.  Called once,
 * on the caller's thread, with no store transaction open.
 */
typedef int (*case_sign_fn)(void *ud, const unsigned char *message, size_t len,
                            unsigned char signature[64]);

/**
 * A checkpoint: the tree head (case_store_tree_head()) with the store's id
 * and time `at` (UTC seconds), signed with the Ed25519 private key in PEM
 * file `key_file` (`openssl genpkey -algorithm ed25519 -out KEY` or
 * case_key_generate()).  The key is read for this call only and never stored.
 * With `previous` (the text of an earlier checkpoint of this store, or NULL)
 * the checkpoint also carries the consistency proof from it, so that whoever
 * holds both can check with case_checkpoint_check() that no row the earlier
 * one covers was changed, removed or moved, without the store.  The
 * holidays the covered rows were computed with are signed too ("calendar",
 * docs/store.md), so verify with the checkpoint sees one added, removed or
 * dated back.
 *
 * *checkpoint gets the checkpoint file's text (JSON, caller-owned, free with
 * case_free; docs/store.md "Checkpoints" gives the format and the signed
 * message).  Returns CASE_OK; CASE_NOTFOUND (no key file); CASE_INVALID (not
 * an Ed25519 private key; `previous` not a valid checkpoint of this store);
 * CASE_CORRUPT (the journal does not extend `previous`, or its tree cannot be
 * computed); CASE_IO; CASE_NOMEM; CASE_MISUSE (NULL argument).  Writes
 * nothing to the store.
 */
CASE_API int case_store_checkpoint(case_store *s, const char *key_file, int64_t at,
                                   const char *previous, char **checkpoint);

/**
 * case_store_checkpoint() with a signature made by the host (a key in an HSM,
 * a KMS, an agent): `sign` is called once with the message; `public_key` (32
 * bytes, raw Ed25519) is the key it signs with, stored in the checkpoint; the
 * signature is checked against it before the checkpoint is returned.  Returns
 * the codes of case_store_checkpoint(), and CASE_DENIED when `sign` refused,
 * CASE_INVALID when its signature does not verify with `public_key`.
 */
CASE_API int case_store_checkpoint_sign(case_store *s, const unsigned char public_key[32],
                                        case_sign_fn sign, void *ud, int64_t at,
                                        const char *previous, char **checkpoint);

/**
 * Checks, without any store, that checkpoint `newer` extends checkpoint
 * `older`: both signatures valid (with `public_key_pem`, PEM text of the
 * Ed25519 public key both must be signed with, or NULL: both with the same
 * key, the one in `older`), the same store, and `newer`'s consistency proof
 * from `older`'s size and root holds (equal sizes need equal roots).
 * *report (caller-owned, free with case_free) gets
 *   {"consistent":bool,"older":{..head..},"newer":{..head..},"problems":["..."]}.
 * Returns CASE_OK (consistent), CASE_CORRUPT (not: the report says why),
 * CASE_INVALID (a checkpoint or the key does not parse; no report),
 * CASE_NOMEM, CASE_MISUSE.  Errors go to engine `e`, which is otherwise unused.
 */
CASE_API int case_checkpoint_check(case_engine *e, const char *older, const char *newer,
                                   const char *public_key_pem, char **report);

/**
 * The audit path (RFC 6962 inclusion proof) of journal row `seq` in the tree of
 * the first `size` rows (0: of every row now), from the stored nodes in
 * O(log n) reads.  *proof (caller-owned, free with case_free) gets
 *   {"proof":"libcase.inclusion.v1","seq":7,"size":3901,"leaf":"<the leaf entry>",
 *    "leaf_hash":"<hex>","path":["<hex>",...],"root":"<hex>","row":{...}}
 * with the row as case_store_follow() gives it, so that whoever holds a
 * checkpoint of that size can check the row with case_checkpoint_check_row()
 * alone.  Returns CASE_OK; CASE_NOTFOUND (no such row in that tree);
 * CASE_INVALID (`size` larger than the journal); CASE_CORRUPT (a row or node
 * the proof needs is missing: run verify); CASE_IO; CASE_NOMEM; CASE_MISUSE.
 */
CASE_API int case_store_prove(case_store *s, int64_t seq, int64_t size, char **proof);

/**
 * Checks, without any store, a proof of case_store_prove() against checkpoint
 * `checkpoint`: its signature (with `public_key_pem`, PEM text, or NULL: the
 * key in the checkpoint), that the proof is for the checkpoint's size, that
 * the row's content gives the row hash its leaf names (with its seq and
 * recorded time), and that the audit path leads from the leaf to the
 * checkpoint's root.  *report (caller-owned) gets
 *   {"included":bool,"seq":7,"case":"Z1","size":..,"checkpoint":{..},"problems":["..."]}.
 * Returns CASE_OK (the row is in the journal the checkpoint signed, as it is
 * shown), CASE_CORRUPT (not: the report says why), CASE_INVALID (the
 * checkpoint, proof or key does not parse; no report), CASE_NOMEM,
 * CASE_MISUSE.  Errors go to engine `e`, which is otherwise unused.
 */
CASE_API int case_checkpoint_check_row(case_engine *e, const char *checkpoint, const char *proof,
                                       const char *public_key_pem, char **report);

/**
 * Generates an Ed25519 key pair for checkpoints: the private key as PEM
 * (PKCS#8, unencrypted) in a new file `private_path` with mode 0600, and the
 * public key as PEM in a new file `public_path` (may be NULL).  Never
 * overwrites a file.  Returns CASE_OK, CASE_EXISTS (a file exists), CASE_IO,
 * CASE_NOMEM, CASE_MISUSE; the message is on `e`.
 */
CASE_API int case_key_generate(case_engine *e, const char *private_path,
                               const char *public_path);

/** Called by case_store_follow() once per journal row, in sequence order. */
typedef int (*case_feed_fn)(void *ud, int64_t seq, const char *row_json);

/**
 * The change feed: calls `fn` for every journal row with sequence > `after`, in
 * order, at most `limit` rows (0: no limit).  `row_json` is
 *   {"seq":8,"case":"Z1","revision":3,"event":"...","payload":...,"actor":"...",
 *    "role":"IND","time":1790000000,"recorded":1790000050,"configuration":[...],
 *    "data":{...},"hash":"...","prev":"..."}
 * owned by the library for the call only.  A row with a column that cannot be
 * read (text that is not UTF-8, JSON that does not parse: a damaged store) is
 * delivered all the same, that column as JSON null (a text column: its text
 * with U+FFFD for each byte that is not UTF-8), with one more member
 * "corrupt":{"data":"not JSON",...} naming the columns; case_store_verify()
 * reports them.  A non-zero return from `fn` stops the feed and is returned.
 * *last (may be NULL) gets the last sequence delivered.
 */
CASE_API int case_store_follow(case_store *s, int64_t after, int limit, case_feed_fn fn,
                               void *ud, int64_t *last);

/**
 * Waits until the journal has a row with sequence > `after` (*ready 1) or
 * `timeout_ms` milliseconds passed (*ready 0; `timeout_ms` < 0 waits without
 * bound, 0 only looks).  On PostgreSQL the wait sleeps on the connection's
 * socket until the server notifies a commit that appended to the journal
 * (LISTEN/NOTIFY on the channel "libcase.<schema>"), so a row another program
 * commits is seen within milliseconds; on SQLite the journal's last sequence
 * is read every 50 ms.  Then case_store_follow() from `after` delivers the
 * rows.  A connection lost while waiting is re-established (waiting up to the
 * busy timeout); a signal does not end the wait before the timeout, so a host
 * that must react to signals waits in short slices.  Must not be called inside
 * a callback of this store.  Returns CASE_OK, CASE_IO, CASE_MISUSE (NULL s or
 * ready).
 */
CASE_API int case_store_wait(case_store *s, int64_t after, int timeout_ms, int *ready);

/**
 * One case's history: calls `fn` for each journal row of stored case `id` with
 * a revision above `after` (-1: from its creation, revision 0), in revision
 * order, with the row's journal sequence and the same JSON as
 * case_store_follow() gives (`row_json` owned by the library for the call
 * only).  It reads only that case's rows (an index range), so it costs what
 * the case's history costs, whatever the size of the store; rows are read a
 * page (256) at a time before they are handed out, so `fn` may call the store.
 * A non-zero return from `fn` stops the read and is returned.  *last (may be
 * NULL) gets the revision of the last row delivered (`after` when none).
 * Returns CASE_OK, CASE_NOTFOUND (no such case), CASE_IO, CASE_CORRUPT,
 * CASE_NOMEM, CASE_MISUSE (NULL s, id or fn), or `fn`'s non-zero value.
 */
CASE_API int case_store_history(case_store *s, const char *id, int64_t after, case_feed_fn fn,
                                void *ud, int64_t *last);

/** Called by case_store_list() once per stored case, in id order. */
typedef int (*case_list_fn)(void *ud, const char *id, const char *row_json);

/**
 * The stored cases in id order (byte order of the UTF-8 ids), streamed: calls
 * `fn` for each case with an id after `after` (NULL: from the first), at most
 * `limit` (0: no limit).  `row_json` (owned by the library for the call only)
 * is what the case row holds, without loading the case:
 *   {"case":"Z1","workflow":"asielprocedure","version":1,"location":"ter_apel",
 *    "revision":3,"done":false,"configuration":["..."],"created":1790000000,
 *    "updated":1790000050}
 * (location null when none; created and updated are the wall clock of the
 * writes, informational).  Memory stays one page of 256 rows however many
 * cases there are, and the rows are read before they are handed out, so `fn`
 * may call the store (case_store_get() for what the row does not say; the
 * case cache keeps that bounded too).  Each page is read on its own: a case
 * created or changed while the list runs is listed as it was when its page was
 * read, or not at all if its id comes before the page being read.  A
 * non-zero return from `fn` stops the list and is returned; to go on later,
 * pass the last id seen as `after`.  Returns CASE_OK, CASE_IO, CASE_CORRUPT,
 * CASE_NOMEM, CASE_INVALID (negative limit), CASE_MISUSE (NULL s or fn), or
 * `fn`'s non-zero value.
 */
CASE_API int case_store_list(case_store *s, const char *after, long limit, case_list_fn fn,
                             void *ud);

/**
 * The latest event time in the journal (UTC seconds, the largest `time` of
 * any row) in *t.  It reads the time of every row (no JSON), about a second
 * per million rows.  Returns CASE_OK, CASE_NOTFOUND (an empty journal; *t 0),
 * CASE_IO, CASE_MISUSE.
 */
CASE_API int case_store_latest_time(case_store *s, int64_t *t);

/**
 * Outbox: notifications emitted by committed events, not yet marked delivered,
 * as a JSON array [{"id":3,"case":"Z1","seq":8,"name":"...","payload":...}],
 * oldest first, at most `limit` (0: all).  Caller-owned string in *json.
 */
CASE_API int case_store_outbox(case_store *s, int limit, char **json);

/** Marks outbox row `id` delivered.  Returns CASE_OK or CASE_NOTFOUND. */
CASE_API int case_store_outbox_ack(case_store *s, int64_t id);

/** The lease of an outbox claim when case_store_outbox_claim() gets 0 (seconds). */
#define CASE_OUTBOX_LEASE_DEFAULT 60

/**
 * Named outbox consumers, so that several programs (and several processes of
 * one program) drain the outbox at once: every consumer gets every
 * notification, and none is handed to the same consumer twice while it is
 * being delivered.
 *
 * Claims for consumer `consumer` (1 to 128 bytes of UTF-8, e.g. "ind-mailer")
 * at most `limit` (1 to 10000) notifications it has neither marked done
 * (case_store_outbox_done()) nor claimed in a lease still running, oldest
 * first, and leases them to this call for `lease_seconds` (0:
 * CASE_OUTBOX_LEASE_DEFAULT; at most 86400) from the store's clock
 * (case_store_clock(), UTC seconds).  *json (caller-owned, free with
 * case_free) gets the array case_store_outbox() gives, [] when there is
 * nothing.  A consumer that does not exist yet is created and starts at the
 * first row of the outbox.  Two processes claiming for the same consumer at the
 * same moment get different rows (the claim is one write transaction: on
 * SQLite under the file's write lock, on PostgreSQL under the store's write
 * lock); a row whose lease ran out without being marked done (the process
 * died) is handed out again, so delivery is at least once per consumer, and
 * exactly once for a consumer that marks each row done before its lease ends.
 * Consumers are independent of each other and of the unnamed
 * case_store_outbox()/case_store_outbox_ack() (its `delivered` column).
 * Returns CASE_OK; CASE_INVALID (consumer not 1-128 bytes of UTF-8, limit or
 * lease out of range); CASE_BUSY; CASE_DENIED (PostgreSQL: a login without
 * the grants of case_store_grant()); CASE_IO; CASE_NOMEM; CASE_MISUSE (NULL
 * argument, a read-only store, inside a batch).  Thread safety: one thread per
 * store, as everything else.
 */
CASE_API int case_store_outbox_claim(case_store *s, const char *consumer, int limit,
                                     int lease_seconds, char **json);

/**
 * Marks outbox row `id` done for `consumer`: it is never handed to that
 * consumer again (whether this process claimed it or not, and after its lease
 * ran out too).  Marking a row done twice is fine.  A consumer's claims and
 * marks below its oldest row not yet done are folded into one number, so what
 * the store keeps per consumer stays as small as what is in flight.  Returns
 * CASE_OK; CASE_NOTFOUND (no outbox row `id`); CASE_INVALID (consumer);
 * CASE_BUSY; CASE_DENIED; CASE_IO; CASE_NOMEM; CASE_MISUSE (as above).
 */
CASE_API int case_store_outbox_done(case_store *s, const char *consumer, int64_t id);

/**
 * The caseload report at reference time `at` (UTC seconds), computed from the
 * journal: for each case, its rows with event time <= `at` (cases created
 * later are left out) give its configuration, data and lead time; running
 * terms come from the stored cases as they are now (case_instance_timers()),
 * measured against `at`, so tick the store to `at` first.  `e` is the engine
 * the store was opened on.
 *
 * `options_json` (NULL for the defaults) is a JSON object; every key is optional:
 *   "track_field": data field whose value is the case's track    (default "spoor")
 *   "lane_field": boolean data field; a case that had it true in any row is
 *                 in the "accelerated" lane, otherwise "regular"  (default "interventieteam")
 *   "appeal_event": the event that lodges an appeal               (default "beroep_ingesteld")
 *   "outcome_events": {event: outcome}, the first one after the appeal decides
 *                 (default uitspraak_[rvs_]gegrond -> "gegrond", uitspraak_[rvs_]ongegrond -> "ongegrond")
 *   "region": the state whose active atomic descendant is the case's state (default
 *                 "procedure"; a closed case's state is its top-level final state)
 *   "transferred_states": final states that count as transferred  (default ["overgedragen"])
 *   "deadline_agencies": {deadline: agency} (default: the roles of the transitions
 *                 with a target that leave the deadline's state, joined with "/")
 *   "horizon_days": terms running out within this many days count as due soon (default 7)
 *
 * *json gets a caller-owned JSON object (free with case_free()):
 *   {"report":"libcase.report.v1","at":...,"date":"2023-06-15","track_field":"spoor",
 *    "cases":{"total":260,"open":80,"closed":180},
 *    "by_track":{"1":{"cases":90,"open":..,"closed":..,"states":{"dublin_overdracht":3,...}},...},
 *    "by_state":{"beroep":50,...}, "closed":{"total":180,"by_state":{"vertrokken":..,...}},
 *    "transferred":10, "appeals":{"lodged":100,"open":50,"outcomes":{"ongegrond":30,...}},
 *    "new_per_week":{"2022-W36":12,...},
 *    "lead_time_days":[{"track":"1","lane":"accelerated","cases":n,"median":..,"p90":..,
 *                       "mean":..,"min":..,"max":..}, ... {"track":"all",...}],
 *    "deadlines":{"horizon_days":7,"due_soon":n,"overdue":m,
 *                 "by_agency":{"IND":{"due_soon":..,"overdue":..,"deadlines":{name:n}}},
 *                 "items":[{"case":..,"agency":..,"deadline":..,"state":..,"due":..,
 *                           "last_day":..,"source":..,"status":"overdue"|"due_soon"}]},
 *    "options":{...}}
 * Lead time is the days from the creation row to the row that reached a
 * top-level final state; median is the middle value (mean of the two middle
 * ones for an even count), p90 the nearest-rank 90th percentile, both rounded
 * to 0.1 day.  Appeal outcomes also count "open" (no ruling, case open) and
 * "ended_without_ruling" (the case closed without one).
 *
 * Returns CASE_OK; CASE_INVALID (options not an object, an unknown key or a
 * wrong type: the message names it); the codes of case_store_follow() and
 * case_store_get(); CASE_NOMEM; CASE_MISUSE (NULL s, e or json).
 */
CASE_API int case_store_report(case_store *s, case_engine *e, int64_t at,
                               const char *options_json, char **json);

/**
 * The caseload overview at reference time `at` (UTC seconds), version 2: what
 * each case's definition declares in its `report:` section
 * (docs/workflow-format.md) decides what is grouped and counted, and both the
 * cases and their running terms are as they were at `at`.  Every case's journal
 * rows with event time <= `at` are replayed on a separate engine (the
 * definitions with their pinned Lua modules, the stored location profiles and
 * holidays), so the report at a past date shows the terms that ran then, not
 * the store's current ones; cases created after `at` are left out.  Terms due at
 * or before `at` count as overdue whether or not the store was ticked.  Nothing
 * is written.  Cost: one replay of the journal (about as long as
 * case_store_verify() without its hashing).
 *
 * `options_json` (NULL for none) is a JSON object; every key is optional:
 *   "horizon_days": terms whose last day is within this many days of `at`'s date are
 *                   due soon (default: the first declared `horizon_days`, else 7)
 *   "filter": {"location":L, "agency":A, "procesregisseur":P, "track":T}: keeps in
 *             "open_cases" and "terms.items" only what matches (the agency must be one
 *             of those that must act); the summary sections count every case, and
 *             "selection" counts what the filter keeps
 *   "sort": the order of "open_cases": "urgency" (default: overdue first, the most
 *           overdue first, then due today, then by due time, cases without a term
 *           last), "case", "location", "procesregisseur", "state", "days" (longest
 *           open first), "track" or "agency"; ties by urgency, then case id
 *
 * *json gets a caller-owned JSON object (free with case_free()):
 *   {"report":"libcase.report.v2","at":...,"date":"2023-06-15",
 *    "workflows":{"asielprocedure@1":260}, "cases":{"total":..,"open":..,"closed":..},
 *    "track":{"label":"spoor","lane":"interventieteam"} | null (none declared),
 *    "by_track":{"4":{"cases":..,"open":..,"closed":..,"states":{..}}},
 *    "open_by_state":{"beroep_kort":40,...}, "closed":{"total":..,"by_state":{..}},
 *    "counts":[{"name":"overgedragen","label":"..","cases":10},
 *              {"name":"beroep","label":"..","cases":100,"open":50,
 *               "outcomes":{"ongegrond":30,"gegrond":8,"ended_without_ruling":12,"open":50}}],
 *    "state_labels":{state:words},
 *    "signal_events":{"signaal_politie":["AVIM","POLITIE"],...} (every loaded workflow's
 *               declared signals, with the roles that may fire each), "choices":{"location":{value:open cases},"agency":{..},
 *               "procesregisseur":{..},"track":{..}},
 *    "open_cases":[{"case":..,"workflow":"asielprocedure@1","location":..,"location_label":..,
 *                   "procesregisseur":..|null,"state":..,"state_label":..,"track":..,
 *                   "lane":"accelerated"|"regular","days_open":N (days since the creation),
 *                   "next_term":{"name":..,"state":..,"source":..,"due":..,"last_day":..,
 *                                "status":"overdue"|"due_today"|"due_soon"|"running",
 *                                "days_overdue"|"days_left":N,"court":bool,"agency":..}|null,
 *                   "must_act":"IND/COA","signals":N}],
 *    "terms":{"horizon_days":7,"overdue":n,"court_overdue":n,"due_today":n,"due_soon":n,
 *             "by_agency":{"RECHTBANK":{"overdue":..,"due_today":..,"due_soon":..,
 *                          "court":true,"deadlines":{name:n}}},
 *             "items":[{"case":..,"location":..,"procesregisseur":..,"track":..,"deadline":..,
 *                       "state":..,"agency":..,"court":bool,"due":..,"last_day":..,"source":..,
 *                       "status":..,"days_overdue"|"days_left":N}]},
 *    "by_location":{"ter_apel":{"label":"COL Ter Apel","cases":..,"open":..,"closed":..,"overdue":..,
 *                   "court_overdue":..,"due_today":..,"due_soon":..,"signals":..,
 *                   "new_last_7_days":..,"lead_time_days":{stats}|null}},
 *    "problems":[{"case":..,"problem":".."}], "filter":{..},
 *    "selection":{"filtered":bool,"open":n,"closed":n,"new_last_7_days":n,"overdue":n,
 *                 "court_overdue":n,"due_today":n,"due_soon":n} (the key figures of what
 *                 the filter keeps: the open cases and terms listed; closed cases match on
 *                 location, procesregisseur and track, and none under an agency filter,
 *                 since nobody must act on a closed case; without a filter the totals),
 *    "sort":"urgency",
 *    "lead_time_days":[{"track":..,"lane":..,"cases":n,"median":..,"p90":..,"mean":..,
 *                       "min":..,"max":..}],
 *    "trends":{"lead_time_per_month":[{"month":"2022-10",stats}],
 *              "new_per_week":[{"week":"2022-W36","cases":n}],
 *              "overdue_per_week":[{"week":..,"date":..,"overdue":n,"court":n}],
 *              "signals_per_source":{"COA":{"total":n,"per_week":{week:n}}},
 *              "recent_signals":[{"case":..,"event":..,"source":..,"time":..,"date":..,
 *                                 "actor":..,"payload":..}]}}
 * The location label is the declared `location_label` param as the location's
 * profile sets it (else the location id).  Terms are the definitions'
 * `deadlines:` (not delayed transitions).  A term is overdue once its due time
 * (local midnight after its last day) is at or before `at`; days_overdue counts the days after the last day.  "due_today": the last
 * day is `at`'s date.  Who must act: the declared `agencies:` entry, else the
 * roles of the transitions with a target that leave the term's state (or, for a
 * case without a running term, its state), joined with "/"; a term is a court
 * term when every such role is a declared court.  overdue_per_week counts the
 * terms overdue at the end of each ISO week (at `at` for the last one).  Lead
 * times as in case_store_report(), per track and lane when declared ("all"
 * otherwise), per month of closing, per location.  A case whose journal does not
 * replay is listed in "problems"; its terms come from the stored case when
 * nothing happened to it after `at`, else it has none in the report.
 *
 * Thread safety: as every store function, one thread per store and engine.
 * Returns CASE_OK; CASE_INVALID (options not an object, an unknown key, filter
 * or sort, a wrong type: the message names it); the codes of
 * case_store_follow() and case_store_get(); CASE_NOMEM; CASE_MISUSE (NULL s or
 * json).
 */
CASE_API int case_store_report_v2(case_store *s, int64_t at, const char *options_json,
                                  char **json);

/**
 * PostgreSQL only (issue 10): lets database login `login` write to the store as
 * role `role` (a role of the workflows, e.g. "IND"), enforced by the server
 * itself, so that a host program that skips the library's role check, or sends a
 * forged role, is still refused.  Each agency's tool connects with a login of
 * its own; the store's owner (the login that created the schema) maps them:
 *
 *   case_store_grant(s, "IND", "ind_login");
 *   case_store_grant(s, "COA", "coa_login");
 *
 * The first call installs, in the store's schema and idempotently, the table
 * `grants` (login, role, granted), row-level security and triggers
 * (docs/store.md, "Who may write what"); every call adds the mapping and gives
 * the login the table privileges a fire needs.  What a mapped login may then
 * do, whatever SQL it sends:
 *  - read every case, journal row, timer, outbox row, definition, profile and
 *    holiday (the shared record is the point); never `grants` nor `tokens`;
 *  - append journal rows (and refused rows) only under a role mapped to it
 *    (the session's login, PostgreSQL's session_user), or with no role for the
 *    store's own rows (actor "timer", or "#_scxml_..." for mail between cases);
 *    each row must follow its case's last row (revision and prev_hash);
 *  - never UPDATE, DELETE or TRUNCATE journal rows, delete cases, or write
 *    definitions, profiles, holidays, meta, tokens or grants (the owner loads
 *    definitions and profiles);
 *  - move a case row only to a new revision whose journal row exists with
 *    the case row's last_hash, keeping its workflow, version, hash, created and
 *    profile_first; and write a case's timers, outbox rows and idempotency keys
 *    only in a transaction that moved that case on;
 *  - mark outbox rows delivered (the `delivered` column only) and claim them
 *    as a named consumer (case_store_outbox_claim()).
 * A refusal reaches the library as CASE_DENIED with the server's message.
 * The server cannot run a statechart: whether an event was allowed in the case's
 * configuration is checked by case_store_verify()'s replay, and every row names
 * the role that was mapped to the login that wrote it.
 *
 * `role`: 1 to 64 bytes of UTF-8 without control characters; `login`: an
 * existing PostgreSQL role (created by the database administrator, CREATE ROLE
 * ... LOGIN: the store never creates logins).  A login may hold several roles and
 * a role several logins.  Granting a mapping that exists is CASE_OK and changes
 * nothing.  Must be called by the schema's owner, outside a batch.  Returns
 * CASE_OK; CASE_INVALID (an SQLite store: grants are PostgreSQL-only, an SQLite
 * store is one file whose access is the file's mode; a role or login that is not
 * valid); CASE_NOTFOUND (no such login); CASE_DENIED (the connection's login is
 * not the schema's owner); CASE_BUSY; CASE_IO; CASE_NOMEM; CASE_MISUSE (NULL
 * argument, a read-only store, inside a batch).  Thread safety: one thread per
 * store, as everything else.
 */
CASE_API int case_store_grant(case_store *s, const char *role, const char *login);

/**
 * PostgreSQL only: removes the mapping of `role` to `login`; a login left with no
 * role loses every privilege on the store's schema (it can then not even read
 * it).  Rows it wrote stay.  Returns CASE_OK; CASE_NOTFOUND (no such mapping);
 * and the codes of case_store_grant().
 */
CASE_API int case_store_revoke(case_store *s, const char *role, const char *login);

/**
 * PostgreSQL only: the mappings, as a caller-owned JSON array in *json (free with
 * case_free), in (login, role) order:
 *   [{"login":"ind_login","role":"IND","granted":1790000000}]
 * ([] when case_store_grant() was never called).  Only the owner may read them.
 * Returns CASE_OK; CASE_INVALID (SQLite); CASE_DENIED; CASE_IO; CASE_NOMEM;
 * CASE_MISUSE.
 */
CASE_API int case_store_grants(case_store *s, char **json);

/* Scopes of an access token (case_store_token_create()). */
#define CASE_TOKEN_READ   0x1 /* may read the overview (casectl serve's pages and JSON) */
#define CASE_TOKEN_SIGNAL 0x2 /* may submit signals, fired as events of its role */

/**
 * Creates an access token for an agency's tool or person: `name` says who holds
 * it (1 to 64 letters, digits, '.', '_', '@', '-'; unique among the tokens in
 * use, and the actor journalled for what is done with it), `role` the role its
 * signals are fired as (declared by some workflow loaded on the store's engine),
 * `scopes` CASE_TOKEN_READ, CASE_TOKEN_SIGNAL or both.  *token gets the secret
 * ("lct_" and 43 base64url characters: 256 random bits from OpenSSL's
 * RAND_bytes), caller-owned (free with case_free()); it is shown once: the store
 * keeps only its SHA-256 (schema 7, table `tokens`), so a lost token cannot be
 * recovered, only revoked and replaced.  Creation time: the store's clock.
 * Returns CASE_OK; CASE_INVALID (a bad name or scopes, an undeclared role: the
 * message says which); CASE_EXISTS (a token in use has the name); CASE_MISUSE
 * (NULL argument, read-only store); CASE_BUSY, CASE_IO (also: no random bytes),
 * CASE_NOMEM.
 */
CASE_API int case_store_token_create(case_store *s, const char *name, const char *role,
                                     int scopes, char **token);

/**
 * Revokes the token in use named `name` (at the store's clock): from then on
 * case_store_token_check() refuses it.  The name may be given to a new token.
 * Returns CASE_OK, CASE_NOTFOUND (no token in use has the name), CASE_MISUSE,
 * CASE_BUSY, CASE_IO.
 */
CASE_API int case_store_token_revoke(case_store *s, const char *name);

/**
 * Checks a presented token: on success *json (caller-owned) gets
 *   {"id":3,"name":"politie-noord","role":"POLITIE","scopes":["signal"],"created":...}
 * Returns CASE_OK; CASE_DENIED (not of the token's form, unknown or revoked: the
 * message does not say which part was wrong); CASE_MISUSE (NULL s or json);
 * CASE_BUSY, CASE_IO, CASE_NOMEM.  Tokens are compared by their SHA-256 only.
 */
CASE_API int case_store_token_check(case_store *s, const char *token, char **json);

/**
 * Every token, in use or revoked, by id, as a caller-owned JSON array of the
 * objects of case_store_token_check() ("revoked": time, when revoked).  No
 * secret or hash is in it.  Returns CASE_OK, CASE_MISUSE, CASE_BUSY, CASE_IO,
 * CASE_NOMEM.
 */
CASE_API int case_store_token_list(case_store *s, char **json);

#ifdef __cplusplus
}
#endif
#endif /* LIBCASE_STORE_H */
