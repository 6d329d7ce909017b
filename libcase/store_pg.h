/*
 * store_pg.h — the PostgreSQL backend's own entry points (internal), for
 * store.c and for the PostgreSQL administration (store_pg_admin.c: grants,
 * row-level security, LISTEN/NOTIFY) that works on the same connection.
 */
#ifndef LIBCASE_STORE_PG_H
#define LIBCASE_STORE_PG_H

#include "store_backend.h"

#include <libpq-fe.h>
#include <stddef.h>

/* 1 when `location` names a PostgreSQL store: a postgresql:// or postgres://
 * URI, or libpq conninfo whose first word is one of its keywords ("host=...",
 * "dbname=..."); 0 for a file path.  Pure, thread-safe. */
int sb_pg_location(const char *location);
/* A copy of `location` (malloc) with its password replaced by "***"; NULL when
 * out of memory.  Pure, thread-safe. */
char *sb_pg_shown_location(const char *location);

/*
 * Opens the PostgreSQL backend on `location` (flags SB_READONLY, SB_CREATE):
 * connects, checks the schema's version (SB_CREATE: a missing store is made
 * by migrate()).  On failure returns CASE_INVALID (not a URI or conninfo, a
 * bad schema name), CASE_DENIED (the server refused the login), CASE_NOTFOUND
 * (no such database; no store in the schema without SB_CREATE), CASE_CORRUPT
 * (not a libcase schema, or a newer schema version), CASE_IO (no server
 * answers), CASE_NOMEM, with a message naming the store and what to do.
 */
int sb_pg_open(const char *location, int flags, const sb_ops **ops, sb_db **db, char *err,
               size_t errlen);

/* 1 when `ops` is the PostgreSQL backend's table. */
int sb_pg_is(const sb_ops *ops);
/* The backend's connection (borrowed: valid until close; a lost connection is
 * replaced at the next transaction, so do not keep it across calls). */
PGconn *sb_pg_conn(sb_db *db);
/* The store's schema name ("libcase" unless the location chose another). */
const char *sb_pg_schema(sb_db *db);
/* The location as messages show it (its password replaced by ***). */
const char *sb_pg_where(sb_db *db);

/* Sets the backend's message (errmsg) to `msg`; returns rc. */
int sb_pg_fail(sb_db *db, int rc, const char *msg);
/* The backend's message of the last failure. */
const char *sb_pg_errmsg(sb_db *db);
/* Opens the connection again (search_path, lock_timeout set up as at open);
 * the transaction state is reset.  CASE_OK or the connection's failure
 * (CASE_IO, CASE_DENIED ...) with the message set. */
int sb_pg_reconnect(sb_db *db);

/* store_pg_admin.c: the live feed (LISTEN on "libcase.<schema>") and named
 * outbox consumers, as the sb_ops entries wait, outbox_claim, outbox_done. */
int sb_pg_wait(sb_db *db, int64_t after, int timeout_ms, int *ready);
int sb_pg_outbox_claim(sb_db *db, const char *consumer, int limit, int64_t now,
                       int64_t lease_until, sb_outbox_fn fn, void *ud);
int sb_pg_outbox_done(sb_db *db, const char *consumer, int64_t id, int64_t at);

#endif /* LIBCASE_STORE_PG_H */
