/* store_sqlite.c — the SQLite backend of the durable store (store_backend.h). */
#include "store_backend.h"

#include "libcase/libcase.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* 'LCAS': marks the file as a libcase store (PRAGMA application_id). */
#define APP_ID 0x4C434153

#if defined(__GNUC__) || defined(__clang__)
#define CASE_SQ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CASE_SQ_PRINTF(a, b)
#endif

/*
 * Schema migrations: migrations[i] brings user_version i to i + 1.  Never edit
 * a released entry; append a new one.
 */
static const char *const migrations[] = {
    /* 1: the first schema */
    "CREATE TABLE definitions("
    "  id TEXT NOT NULL, version INTEGER NOT NULL, hash TEXT NOT NULL,"
    "  source TEXT NOT NULL, file TEXT, added INTEGER NOT NULL,"
    "  PRIMARY KEY (id, version));"
    "CREATE TABLE cases("
    "  id TEXT PRIMARY KEY, workflow TEXT NOT NULL, version INTEGER NOT NULL,"
    "  hash TEXT NOT NULL, location TEXT, revision INTEGER NOT NULL,"
    "  configuration TEXT NOT NULL, done INTEGER NOT NULL, snapshot TEXT NOT NULL,"
    "  last_hash TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,"
    "  FOREIGN KEY (workflow, version) REFERENCES definitions(id, version));"
    "CREATE INDEX cases_workflow ON cases(workflow, version);"
    "CREATE TABLE journal("
    "  seq INTEGER PRIMARY KEY, case_id TEXT NOT NULL, revision INTEGER NOT NULL,"
    "  event TEXT NOT NULL, payload TEXT NOT NULL, actor TEXT, role TEXT,"
    "  time INTEGER NOT NULL, recorded INTEGER NOT NULL, configuration TEXT NOT NULL,"
    "  data TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,"
    "  UNIQUE (case_id, revision));"
    "CREATE TABLE refused("
    "  id INTEGER PRIMARY KEY, case_id TEXT NOT NULL, revision INTEGER NOT NULL,"
    "  event TEXT NOT NULL, payload TEXT, actor TEXT, role TEXT, time INTEGER NOT NULL,"
    "  recorded INTEGER NOT NULL, code INTEGER NOT NULL, message TEXT NOT NULL);"
    "CREATE INDEX refused_case ON refused(case_id);"
    "CREATE TABLE timers("
    "  case_id TEXT NOT NULL, timer_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    "  kind TEXT NOT NULL, name TEXT NOT NULL, due INTEGER NOT NULL, last_day TEXT,"
    "  fired INTEGER NOT NULL, PRIMARY KEY (case_id, timer_id));"
    "CREATE INDEX timers_due ON timers(fired, due, case_id, seq);"
    "CREATE TABLE idempotency("
    "  key TEXT PRIMARY KEY, case_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    "  recorded INTEGER NOT NULL);"
    "CREATE TABLE outbox("
    "  id INTEGER PRIMARY KEY, case_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    "  name TEXT NOT NULL, payload TEXT NOT NULL, created INTEGER NOT NULL,"
    "  delivered INTEGER);"
    "CREATE INDEX outbox_pending ON outbox(delivered, id);",
    /* 2: a definition's Lua modules are pinned with it (replay runs the same code) */
    "ALTER TABLE definitions ADD COLUMN modules TEXT;",
    /* 3: location profiles travel with the store */
    "CREATE TABLE profiles("
    "  name TEXT PRIMARY KEY, source TEXT NOT NULL, hash TEXT NOT NULL, file TEXT,"
    "  added INTEGER NOT NULL);",
    /* 4: holidays added by decree travel with the store */
    "CREATE TABLE holidays(day TEXT PRIMARY KEY, name TEXT, added INTEGER NOT NULL);",
    /* 5: an idempotency key remembers the request it was first used for */
    "ALTER TABLE idempotency ADD COLUMN request TEXT;",
    /* 6 (SB_SCHEMA_TREE): the journal's Merkle tree, one node per row (the
     * migration hook fills older rows); the store's identity, named by
     * checkpoints; the outbox by case, for verify */
    "ALTER TABLE journal ADD COLUMN node BLOB;"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT INTO meta(key, value) VALUES('store_id', lower(hex(randomblob(16))));"
    "CREATE INDEX outbox_case ON outbox(case_id, seq);",
    /* 7: access tokens of the agencies (casectl serve), kept only as hashes (IF NOT
     * EXISTS: a store rolled back to an older version and migrated again keeps them) */
    "CREATE TABLE IF NOT EXISTS tokens("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,"
    "  scopes INTEGER NOT NULL, hash TEXT NOT NULL UNIQUE, created INTEGER NOT NULL,"
    "  revoked INTEGER);"
    "CREATE UNIQUE INDEX IF NOT EXISTS tokens_active_name ON tokens(name) WHERE revoked IS NULL;",
    /* 8: location profiles are versioned, and a case is pinned to a version; the
     * profile stored until now becomes version 1 of its name, and the cases of
     * that location are pinned to it (an earlier, replaced text is lost).  Their
     * profile_first stays 0 (their creation leaf names no profile); their replay
     * starts on the version they were pinned to here (st_profile_start) */
    "CREATE TABLE profile_versions("
    "  name TEXT NOT NULL, version INTEGER NOT NULL, source TEXT NOT NULL, hash TEXT NOT NULL,"
    "  file TEXT, added INTEGER NOT NULL, PRIMARY KEY (name, version));"
    "INSERT INTO profile_versions(name,version,source,hash,file,added)"
    "  SELECT name,1,source,hash,file,added FROM profiles;"
    "DROP TABLE profiles;"
    "ALTER TABLE profile_versions RENAME TO profiles;"
    "ALTER TABLE cases ADD COLUMN profile_version INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE cases ADD COLUMN profile_first INTEGER NOT NULL DEFAULT 0;"
    "UPDATE cases SET profile_version=1 WHERE location IN (SELECT name FROM profiles);",
    /* 9: named outbox consumers: each consumer's cursor (every row up to `upto`
     * is done for it) and its rows in flight above it, leased or done */
    "CREATE TABLE IF NOT EXISTS outbox_consumers("
    "  name TEXT PRIMARY KEY, upto INTEGER NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS outbox_claims("
    "  consumer TEXT NOT NULL, outbox_id INTEGER NOT NULL, lease_until INTEGER NOT NULL,"
    "  done INTEGER, PRIMARY KEY (consumer, outbox_id));",
    /* 10 (issue 14): a case's state is its latest journal row, so that a fire
     * writes one journal row (and its index entry) and no case row.  The
     * journal gains done and state (the snapshot without what the case row
     * and the row's own columns hold; filled here for each case's latest row
     * from its old snapshot); the case row keeps what is fixed at creation
     * and its profile pin; timers and cases lose their rowid (one b-tree each
     * fewer to write).  case_state shows the old case row's columns. */
    "ALTER TABLE journal ADD COLUMN done INTEGER;"
    "ALTER TABLE journal ADD COLUMN state TEXT;"
    "UPDATE journal SET"
    "  done=(SELECT c.done FROM cases c WHERE c.id=journal.case_id),"
    "  state=(SELECT json_remove(c.snapshot,'$.format','$.workflow','$.version','$.hash',"
    "    '$.case','$.location','$.revision','$.done','$.configuration','$.data')"
    "    FROM cases c WHERE c.id=journal.case_id)"
    "  WHERE (case_id, revision) IN (SELECT id, revision FROM cases);"
    "CREATE TABLE cases10("
    "  id TEXT NOT NULL PRIMARY KEY, workflow TEXT NOT NULL, version INTEGER NOT NULL,"
    "  hash TEXT NOT NULL, location TEXT, created INTEGER NOT NULL,"
    "  profile_version INTEGER NOT NULL DEFAULT 0, profile_first INTEGER NOT NULL DEFAULT 0,"
    "  FOREIGN KEY (workflow, version) REFERENCES definitions(id, version)) WITHOUT ROWID;"
    "INSERT INTO cases10(id,workflow,version,hash,location,created,profile_version,profile_first)"
    "  SELECT id,workflow,version,hash,location,created,profile_version,profile_first FROM cases;"
    "DROP TABLE cases;"
    "ALTER TABLE cases10 RENAME TO cases;"
    "CREATE INDEX cases_workflow ON cases(workflow, version);"
    "CREATE TABLE timers10("
    "  case_id TEXT NOT NULL, timer_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    "  kind TEXT NOT NULL, name TEXT NOT NULL, due INTEGER NOT NULL, last_day TEXT,"
    "  fired INTEGER NOT NULL, PRIMARY KEY (case_id, timer_id)) WITHOUT ROWID;"
    "INSERT INTO timers10 SELECT case_id,timer_id,seq,kind,name,due,last_day,fired FROM timers;"
    "DROP TABLE timers;"
    "ALTER TABLE timers10 RENAME TO timers;"
    "CREATE INDEX timers_due ON timers(fired, due, case_id, seq);"
    "CREATE VIEW case_state AS SELECT c.id AS id, c.workflow AS workflow, c.version AS version,"
    "  c.hash AS hash, c.location AS location, j.revision AS revision,"
    "  j.configuration AS configuration, j.done AS done, j.data AS data, j.state AS state,"
    "  j.hash AS last_hash, j.seq AS last_seq, c.created AS created, j.recorded AS updated,"
    "  c.profile_version AS profile_version, c.profile_first AS profile_first"
    "  FROM cases c LEFT JOIN journal j ON j.seq=(SELECT k.seq FROM journal k"
    "  WHERE k.case_id=c.id ORDER BY k.revision DESC LIMIT 1);",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

enum {
  Q_DEF_GET, Q_DEF_PUT, Q_DEF_LIST, Q_CASE_GET, Q_CASE_INSERT, Q_CASE_UPDATE, Q_CASE_LIST,
  Q_JOURNAL_APPEND, Q_JOURNAL_CASE, Q_JOURNAL_FROM, Q_TIMERS_DELETE, Q_TIMER_INSERT,
  Q_TIMER_NEXT, Q_REFUSED_ADD, Q_IDEM_GET, Q_IDEM_PUT, Q_OUTBOX_ADD, Q_OUTBOX_LIST,
  Q_OUTBOX_ACK, Q_OUTBOX_GET, Q_BEGIN_READ, Q_BEGIN_WRITE, Q_COMMIT, Q_PROFILE_PUT,
  Q_PROFILE_LIST, Q_HOLIDAY_PUT, Q_HOLIDAY_LIST, Q_DEF_ROW, Q_DEF_KEYS, Q_JOURNAL_TAIL,
  Q_JOURNAL_NODE, Q_JOURNAL_SET_NODE, Q_JOURNAL_GET, Q_META_GET, Q_TIMERS_CASE, Q_IDEM_LIST,
  Q_OUTBOX_CASE, Q_TOKEN_PUT, Q_TOKEN_GET, Q_TOKEN_REVOKE, Q_TOKEN_LIST, Q_CASE_PAGE,
  Q_JOURNAL_CASE_PAGE, Q_LATEST_TIME, Q_PROFILE_GET, Q_PROFILE_LATEST, Q_TIMER_AFTER,
  Q_NEXT_DUE, Q_META_PUT, Q_REFUSED_FROM, Q_SAVEPOINT, Q_RELEASE, Q_ROLLBACK_TO, Q_CONSUMER_ADD, Q_CLAIM_LIST,
  Q_CLAIM_PUT, Q_CONSUMER_UPTO, Q_CLAIM_DONE, Q_CONSUMER_FOLD, Q_CLAIM_PRUNE, Q_COUNT
};

#define JOURNAL_COLS "seq,case_id,revision,event,payload,actor,role,time,recorded," \
                     "configuration,data,prev_hash,hash,node,done,state"

/* A case row with its latest journal row: the (case_id, revision) index gives
 * that row's seq at once (the index holds it), then one lookup by seq. */
#define CASE_JOIN "FROM cases c LEFT JOIN journal j ON j.seq=(SELECT k.seq FROM journal k " \
                  "WHERE k.case_id=c.id ORDER BY k.revision DESC LIMIT 1) "

static const char *const sql_text[Q_COUNT] = {
    [Q_DEF_GET] = "SELECT hash,modules FROM definitions WHERE id=?1 AND version=?2",
    [Q_DEF_PUT] = "INSERT INTO definitions(id,version,hash,source,file,added,modules) "
                  "VALUES(?1,?2,?3,?4,?5,strftime('%s','now'),?6)",
    [Q_DEF_LIST] = "SELECT id,version,hash,source,file,modules FROM definitions "
                   "ORDER BY id,version",
    [Q_DEF_ROW] = "SELECT id,version,hash,source,file,modules FROM definitions "
                  "WHERE id=?1 AND version=?2",
    [Q_DEF_KEYS] = "SELECT id,version FROM definitions WHERE ?1 IS NULL OR id=?1 "
                   "ORDER BY id,version",
    [Q_CASE_GET] = "SELECT c.id,c.workflow,c.version,c.hash,c.location,c.created,"
                   "c.profile_version,c.profile_first,j.revision,j.configuration,j.done,j.data,"
                   "j.state,j.hash,j.seq,j.recorded " CASE_JOIN "WHERE c.id=?1",
    [Q_CASE_INSERT] = "INSERT INTO cases(id,workflow,version,hash,location,created,"
                      "profile_version,profile_first) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
    [Q_CASE_UPDATE] = "UPDATE cases SET profile_version=?2,profile_first=?3 WHERE id=?1",
    [Q_CASE_LIST] = "SELECT id FROM cases ORDER BY id",
    /* Keyset pages over the primary key: each page is one index range, so a
     * listing costs what it lists, not the table before it. */
    [Q_CASE_PAGE] = "SELECT c.id,c.workflow,c.version,c.hash,c.location,c.created,"
                    "c.profile_version,c.profile_first,j.revision,j.configuration,j.done,NULL,"
                    "NULL,j.hash,j.seq,j.recorded " CASE_JOIN "WHERE c.id>?1 ORDER BY c.id "
                    "LIMIT ?2",
    [Q_LATEST_TIME] = "SELECT max(time) FROM journal",
    [Q_JOURNAL_APPEND] = "INSERT INTO journal(case_id,revision,event,payload,actor,role,time,"
                         "recorded,configuration,data,prev_hash,hash,node,seq,done,state) "
                         "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)",
    [Q_JOURNAL_CASE] = "SELECT " JOURNAL_COLS " FROM journal WHERE case_id=?1 ORDER BY revision",
    [Q_JOURNAL_FROM] = "SELECT " JOURNAL_COLS " FROM journal WHERE seq>?1 ORDER BY seq LIMIT ?2",
    [Q_JOURNAL_GET] = "SELECT " JOURNAL_COLS " FROM journal WHERE seq=?1",
    [Q_JOURNAL_TAIL] = "SELECT seq,node FROM journal ORDER BY seq DESC LIMIT 1",
    [Q_JOURNAL_NODE] = "SELECT node FROM journal WHERE seq=?1",
    [Q_JOURNAL_SET_NODE] = "UPDATE journal SET node=?2 WHERE seq=?1",
    [Q_META_GET] = "SELECT value FROM meta WHERE key=?1",
    [Q_TIMERS_CASE] = "SELECT case_id,timer_id,seq,kind,name,due,last_day,fired FROM timers "
                      "WHERE case_id=?1 ORDER BY seq,timer_id",
    [Q_IDEM_LIST] = "SELECT key,case_id,seq FROM idempotency ORDER BY key",
    [Q_OUTBOX_CASE] = "SELECT id,case_id,seq,name,payload,created,delivered FROM outbox "
                      "WHERE case_id=?1 ORDER BY id",
    [Q_META_PUT] = "INSERT INTO meta(key,value) VALUES(?1,?2) "
                   "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
    [Q_REFUSED_FROM] = "SELECT id,case_id,revision,event,payload,actor,role,time,recorded,code,"
                       "message FROM refused WHERE id>?1 ORDER BY id LIMIT ?2",
    /* One case's rows: a range of the (case_id, revision) index. */
    [Q_JOURNAL_CASE_PAGE] = "SELECT " JOURNAL_COLS " FROM journal "
                            "WHERE case_id=?1 AND revision>?2 ORDER BY revision LIMIT ?3",
    [Q_TIMERS_DELETE] = "DELETE FROM timers WHERE case_id=?1",
    [Q_TIMER_INSERT] = "INSERT INTO timers(case_id,timer_id,seq,kind,name,due,last_day,fired) "
                       "VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
    /* Two statements, not one with "?2 IS NULL OR ...": SQLite seeks the
     * timers_due index past the cursor only with the row value alone in the
     * WHERE clause; with the OR it scanned every due row from the first on
     * each call (those a tick left alone were read again and again). */
    [Q_TIMER_NEXT] = "SELECT case_id,timer_id,seq,kind,name,due,last_day,fired FROM timers "
                     "WHERE fired=0 AND due<=?1 ORDER BY due,case_id,seq LIMIT 1",
    [Q_TIMER_AFTER] = "SELECT case_id,timer_id,seq,kind,name,due,last_day,fired FROM timers "
                      "WHERE fired=0 AND due<=?1 AND (due,case_id,seq)>(?2,?3,?4) "
                      "ORDER BY due,case_id,seq LIMIT 1",
    [Q_NEXT_DUE] = "SELECT min(due) FROM timers WHERE fired=0",
    [Q_REFUSED_ADD] = "INSERT INTO refused(case_id,revision,event,payload,actor,role,time,"
                      "recorded,code,message) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    [Q_IDEM_GET] = "SELECT case_id,seq,request FROM idempotency WHERE key=?1",
    [Q_IDEM_PUT] = "INSERT INTO idempotency(key,case_id,seq,recorded,request) "
                   "VALUES(?1,?2,?3,?4,?5)",
    [Q_OUTBOX_ADD] = "INSERT INTO outbox(case_id,seq,name,payload,created) "
                     "VALUES(?1,?2,?3,?4,?5)",
    [Q_OUTBOX_LIST] = "SELECT id,case_id,seq,name,payload,created FROM outbox "
                      "WHERE delivered IS NULL ORDER BY id LIMIT ?1",
    [Q_OUTBOX_ACK] = "UPDATE outbox SET delivered=?2 WHERE id=?1 AND delivered IS NULL",
    [Q_OUTBOX_GET] = "SELECT id FROM outbox WHERE id=?1",
    [Q_CONSUMER_ADD] = "INSERT INTO outbox_consumers(name,upto,created) VALUES(?1,0,?2) "
                       "ON CONFLICT(name) DO NOTHING",
    [Q_CLAIM_LIST] = "SELECT o.id,o.case_id,o.seq,o.name,o.payload,o.created "
                     "FROM outbox o, outbox_consumers c WHERE c.name=?1 AND o.id>c.upto "
                     "AND NOT EXISTS (SELECT 1 FROM outbox_claims d WHERE d.consumer=?1 "
                     "AND d.outbox_id=o.id AND (d.done IS NOT NULL OR d.lease_until>?2)) "
                     "ORDER BY o.id LIMIT ?3",
    [Q_CLAIM_PUT] = "INSERT INTO outbox_claims(consumer,outbox_id,lease_until,done) "
                    "VALUES(?1,?2,?3,NULL) ON CONFLICT(consumer,outbox_id) "
                    "DO UPDATE SET lease_until=excluded.lease_until",
    [Q_CONSUMER_UPTO] = "SELECT upto FROM outbox_consumers WHERE name=?1",
    [Q_CLAIM_DONE] = "INSERT INTO outbox_claims(consumer,outbox_id,lease_until,done) "
                     "VALUES(?1,?2,?3,?3) ON CONFLICT(consumer,outbox_id) "
                     "DO UPDATE SET done=coalesce(done,excluded.done)",
    [Q_CONSUMER_FOLD] = "UPDATE outbox_consumers SET upto=coalesce("
                        "(SELECT min(o.id)-1 FROM outbox o WHERE o.id>outbox_consumers.upto "
                        "AND NOT EXISTS (SELECT 1 FROM outbox_claims d WHERE d.consumer=?1 "
                        "AND d.outbox_id=o.id AND d.done IS NOT NULL)),"
                        "(SELECT max(id) FROM outbox), upto) WHERE name=?1",
    [Q_CLAIM_PRUNE] = "DELETE FROM outbox_claims WHERE consumer=?1 AND outbox_id<="
                      "(SELECT upto FROM outbox_consumers WHERE name=?1)",
    [Q_PROFILE_PUT] = "INSERT INTO profiles(name,version,source,hash,file,added) "
                      "VALUES(?1,?2,?3,?4,?5,strftime('%s','now'))",
    [Q_PROFILE_LIST] = "SELECT p.name,p.version,p.source,p.hash,p.file FROM profiles p "
                       "WHERE p.version=(SELECT max(q.version) FROM profiles q "
                       "WHERE q.name=p.name) ORDER BY p.name",
    [Q_PROFILE_GET] = "SELECT name,version,source,hash,file FROM profiles "
                      "WHERE name=?1 AND version=?2",
    [Q_PROFILE_LATEST] = "SELECT name,version,source,hash,file FROM profiles WHERE name=?1 "
                         "ORDER BY version DESC LIMIT 1",
    [Q_HOLIDAY_PUT] = "INSERT INTO holidays(day,name,added) VALUES(?1,?2,?3) "
                      "ON CONFLICT(day) DO UPDATE SET name=excluded.name",
    [Q_HOLIDAY_LIST] = "SELECT day,name,added FROM holidays ORDER BY day",
    [Q_TOKEN_PUT] = "INSERT INTO tokens(name,role,scopes,hash,created) VALUES(?1,?2,?3,?4,?5)",
    [Q_TOKEN_GET] = "SELECT id,name,role,scopes,hash,created,revoked FROM tokens "
                    "WHERE hash=?1 AND revoked IS NULL",
    [Q_TOKEN_REVOKE] = "UPDATE tokens SET revoked=?2 WHERE name=?1 AND revoked IS NULL",
    [Q_TOKEN_LIST] = "SELECT id,name,role,scopes,hash,created,revoked FROM tokens ORDER BY id",
    /* Prepared once like the rest: parsing them on every fire cost about 5% of
     * its instructions (bench/, docs/performance.md). */
    [Q_BEGIN_READ] = "BEGIN",
    [Q_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_SAVEPOINT] = "SAVEPOINT lc",
    [Q_RELEASE] = "RELEASE lc",
    [Q_ROLLBACK_TO] = "ROLLBACK TO lc",
};

struct sb_db {
  sqlite3 *db;
  sqlite3_stmt *q[Q_COUNT];
  int readonly;
  int batch; /* a batch's transaction is open (sq_batch) */
  int depth; /* savepoints open inside it */
  char err[512];
};

static const sb_ops sqlite_ops;

/* ------------------------------------------------------------------ */
/* Errors and statements                                               */
/* ------------------------------------------------------------------ */

static int rc_of(int src) {
  switch (src & 0xff) {
  case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return CASE_OK;
  case SQLITE_BUSY: case SQLITE_LOCKED: return CASE_BUSY;
  case SQLITE_NOMEM: return CASE_NOMEM;
  case SQLITE_CORRUPT: case SQLITE_NOTADB: return CASE_CORRUPT;
  case SQLITE_CONSTRAINT: return CASE_EXISTS;
  case SQLITE_READONLY: return CASE_IO; /* the file cannot be written: not the caller's misuse */
  default: return CASE_IO;
  }
}

static int fail(sb_db *b, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b->err, sizeof b->err, fmt, ap);
  va_end(ap);
  return rc;
}

/* The error of the last SQLite call on the connection. */
static int sqlfail(sb_db *b, int src, const char *what) {
  return fail(b, rc_of(src), "store: %s: %s", what, sqlite3_errmsg(b->db));
}

static sqlite3_stmt *stmt(sb_db *b, int q) {
  if (!b->q[q]) {
    int src = sqlite3_prepare_v3(b->db, sql_text[q], -1, SQLITE_PREPARE_PERSISTENT, &b->q[q],
                                 NULL);
    if (src != SQLITE_OK) {
      sqlfail(b, src, "prepare");
      b->q[q] = NULL;
      return NULL;
    }
  }
  return b->q[q];
}

static void done(sqlite3_stmt *s) {
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
}

static void bind_text(sqlite3_stmt *s, int i, const char *v) {
  if (v) sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
  else sqlite3_bind_null(s, i);
}

/* Runs a statement that returns no rows. */
static int exec_stmt(sb_db *b, sqlite3_stmt *s, const char *what) {
  int src = sqlite3_step(s);
  int rc = src == SQLITE_DONE ? CASE_OK : sqlfail(b, src, what);
  done(s);
  return rc;
}

static int exec(sb_db *b, const char *sql, const char *what) {
  int src = sqlite3_exec(b->db, sql, NULL, NULL, NULL);
  return src == SQLITE_OK ? CASE_OK : sqlfail(b, src, what);
}

static char *col_dup(sqlite3_stmt *s, int i) {
  if (sqlite3_column_type(s, i) == SQLITE_NULL) return NULL;
  const unsigned char *t = sqlite3_column_text(s, i);
  if (!t) return NULL;
  size_t n = (size_t)sqlite3_column_bytes(s, i);
  char *p = malloc(n + 1);
  if (!p) return NULL;
  memcpy(p, t, n);
  p[n] = '\0';
  return p;
}

static const char *col_text(sqlite3_stmt *s, int i) {
  return (const char *)sqlite3_column_text(s, i);
}

/* ------------------------------------------------------------------ */
/* Open, configure, migrate                                            */
/* ------------------------------------------------------------------ */

static const char *sq_errmsg(sb_db *b) { return b->err; }

static void sq_close(sb_db *b) {
  if (!b) return;
  for (int i = 0; i < Q_COUNT; i++) sqlite3_finalize(b->q[i]);
  sqlite3_close(b->db);
  free(b);
}

static int sq_configure(sb_db *b, int sync_full, int busy_ms) {
  if (busy_ms >= 0) {
    int src = sqlite3_busy_timeout(b->db, busy_ms);
    if (src != SQLITE_OK) return sqlfail(b, src, "busy timeout");
  }
  if (sync_full >= 0)
    return exec(b, sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                "synchronous");
  return CASE_OK;
}

static int pragma_int(sb_db *b, const char *sql, int *out) {
  sqlite3_stmt *s;
  int src = sqlite3_prepare_v2(b->db, sql, -1, &s, NULL);
  if (src != SQLITE_OK) return sqlfail(b, src, "read the schema version");
  src = sqlite3_step(s);
  *out = src == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
  int rc = (src == SQLITE_ROW || src == SQLITE_DONE) ? CASE_OK : sqlfail(b, src, "read pragma");
  sqlite3_finalize(s);
  return rc;
}

/* Version and identity checks; *version gets user_version. */
static int check_identity(sb_db *b, int *version) {
  int app = 0, tables = 0;
  int rc = pragma_int(b, "PRAGMA application_id", &app);
  if (rc == CASE_OK) rc = pragma_int(b, "PRAGMA user_version", version);
  if (rc == CASE_OK) rc = pragma_int(b, "SELECT count(*) FROM sqlite_master", &tables);
  if (rc != CASE_OK) return rc;
  if (app != 0 && app != APP_ID)
    return fail(b, CASE_CORRUPT, "is not a libcase store: an SQLite database of another "
                "program (application_id %#x)", (unsigned)app);
  if (app == 0 && (*version != 0 || tables != 0))
    return fail(b, CASE_CORRUPT, "is not a libcase store: an SQLite database with other tables");
  if (*version > SCHEMA_VERSION)
    return fail(b, CASE_CORRUPT, "store: schema version %d is newer than this library's (%d)",
                *version, SCHEMA_VERSION);
  return CASE_OK;
}

static int sq_migrate(sb_db *b, int readonly, sb_migrated_fn hook, void *ud) {
  int version = 0;
  int rc = check_identity(b, &version);
  if (rc != CASE_OK) return rc;
  if (version == SCHEMA_VERSION) return CASE_OK;
  if (readonly)
    return fail(b, CASE_CORRUPT, "store: schema version %d needs migrating to %d; open the store "
                "for writing once", version, SCHEMA_VERSION);
  /* One writer migrates; the others wait and find the work done. */
  int src = sqlite3_exec(b->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (src != SQLITE_OK) return sqlfail(b, src, "begin migration");
  rc = check_identity(b, &version);
  for (int v = version; rc == CASE_OK && v < SCHEMA_VERSION; v++) {
    rc = exec(b, migrations[v], "migrate");
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", v + 1);
    if (rc == CASE_OK) rc = exec(b, sql, "set the schema version");
  }
  /* The hooks run once the schema is the current one (their queries are this
   * library's), still inside the migration's transaction. */
  for (int v = version; rc == CASE_OK && hook && v < SCHEMA_VERSION; v++) rc = hook(ud, v + 1);
  if (rc == CASE_OK && version == 0) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA application_id=%d", APP_ID);
    rc = exec(b, sql, "set the application id");
  }
  if (rc == CASE_OK) rc = exec(b, "COMMIT", "commit migration");
  if (rc != CASE_OK) sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Read-only stores (docs/store.md, "Read-only stores")                */
/* ------------------------------------------------------------------ */

/* A "file:" URI for `path` with `query`; malloc'd, NULL without memory. */
static char *file_uri(const char *path, const char *query) {
  size_t n = strlen(path);
  char *u = malloc(8 + 3 * n + 1 + strlen(query) + 1);
  if (!u) return NULL;
  char *p = u + sprintf(u, path[0] == '/' ? "file://" : "file:");
  for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
    if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
        strchr("/._~-", *c))
      *p++ = (char)*c;
    else
      p += sprintf(p, "%%%02X", *c);
  }
  sprintf(p, "?%s", query);
  return u;
}

/* 1 if this process may create files next to `path` and write `path` itself. */
static int may_write_beside(const char *path) {
  if (access(path, W_OK) != 0) return 0;
  const char *slash = strrchr(path, '/');
  if (!slash) return access(".", W_OK) == 0;
  if (slash == path) return access("/", W_OK) == 0;
  char *dir = malloc((size_t)(slash - path) + 1);
  if (!dir) return 0;
  memcpy(dir, path, (size_t)(slash - path));
  dir[slash - path] = '\0';
  int ok = access(dir, W_OK) == 0;
  free(dir);
  return ok;
}

/* The size of `path` + `suffix`, or -1 when there is no such file. */
static long long side_file(const char *path, const char *suffix) {
  char p[4200];
  if (snprintf(p, sizeof p, "%s%s", path, suffix) >= (int)sizeof p) return -1;
  struct stat st;
  return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/*
 * Opens `path` for reading only.  A WAL-mode file needs its -shm (the WAL
 * index) to be read: SQLite uses existing -shm and -wal files even when they
 * are read-only (since 3.22.0), or creates them when it may write beside the
 * file.  When neither is possible and the -wal is absent or empty (every
 * transaction is in the main file: the last writer checkpointed), the file is
 * opened `immutable=1`: no -shm, no locks.  A -wal with transactions in it and
 * no way to index it cannot be read correctly and is refused.  So that a
 * reader never leaves -shm/-wal files behind that the file's owner may not
 * write, immutable is used at once when this process may not write the file
 * and no -shm exists yet.
 */
static int open_readonly(sb_db *b, const char *path, char *err, size_t errlen) {
  long long wal = side_file(path, "-wal"), shm = side_file(path, "-shm");
  int immutable = !may_write_beside(path) && shm < 0;
  for (;;) {
    if (immutable && wal > 0) {
      snprintf(err, errlen, "store '%s': its write-ahead log (%s-wal, %lld bytes) holds "
               "transactions not yet in the file, and there is no %s-shm that this process may "
               "use or create (the file or its directory is read-only for it): it cannot be "
               "read correctly; open it once for writing as a user who may (any casectl "
               "command that writes merges the log), or copy the files to a writable place",
               path, path, wal, path);
      return CASE_IO;
    }
    char *uri = file_uri(path, immutable ? "mode=ro&immutable=1" : "mode=ro");
    if (!uri) {
      snprintf(err, errlen, "out of memory");
      return CASE_NOMEM;
    }
    int src = sqlite3_open_v2(uri, &b->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
                                               SQLITE_OPEN_NOMUTEX, NULL);
    free(uri);
    if (src == SQLITE_OK) {
      sqlite3_extended_result_codes(b->db, 0);
      /* The first read sets up the WAL index: it fails here when it cannot. */
      src = sqlite3_exec(b->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
      if (src == SQLITE_OK) return CASE_OK;
    }
    int code = src & 0xff;
    if (!immutable && (code == SQLITE_READONLY || code == SQLITE_CANTOPEN)) {
      sqlite3_close(b->db);
      b->db = NULL;
      immutable = 1; /* no -shm to be had: the file alone, if that is all there is */
      continue;
    }
    snprintf(err, errlen, "store '%s': %s", path, b->db ? sqlite3_errmsg(b->db) : "cannot open");
    return rc_of(src) == CASE_MISUSE ? CASE_IO : rc_of(src);
  }
}

/*
 * What a path given as the store is, before SQLite sees it, so that each kind
 * of wrong file gets its own message (SQLite would say "disk I/O error", or
 * "file is not a database" from whichever pragma ran first): a directory, an
 * empty file (a store only with SB_CREATE: SQLite makes one in it), a file that
 * is not an SQLite database.  Returns CASE_OK when SQLite may open it.
 */
static int classify(const char *path, int flags, char *err, size_t errlen) {
  struct stat st;
  if (stat(path, &st) != 0) return CASE_OK; /* no file: SQLite says, or creates it */
  if (S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "store '%s': is a directory, not a store (expected the SQLite file "
             "the store is kept in)", path);
    return CASE_IO;
  }
  if (!S_ISREG(st.st_mode)) return CASE_OK;
  if (st.st_size == 0) {
    if ((flags & SB_CREATE) || side_file(path, "-wal") > 0) return CASE_OK;
    snprintf(err, errlen, "store '%s': is an empty file (0 bytes), not a libcase store (create "
             "the store in it first: casectl init, or CASE_STORE_CREATE)", path);
    return CASE_CORRUPT;
  }
  FILE *f = fopen(path, "rb");
  if (!f) return CASE_OK; /* unreadable: SQLite's open says so */
  unsigned char head[16];
  size_t n = fread(head, 1, sizeof head, f);
  fclose(f);
  if (n == sizeof head && memcmp(head, "SQLite format 3", 16) == 0) return CASE_OK;
  char shown[40];
  size_t k = 0;
  for (size_t i = 0; i < n && k + 5 < sizeof shown; i++) {
    unsigned char c = head[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') shown[k++] = (char)c;
    else k += (size_t)snprintf(shown + k, sizeof shown - k, "\\x%02x", c);
  }
  shown[k] = '\0';
  snprintf(err, errlen, "store '%s': is not a libcase store: not an SQLite database (it starts "
           "with \"%s\")", path, shown);
  return CASE_CORRUPT;
}

int sb_sqlite_open(const char *path, int flags, const sb_ops **ops, sb_db **out, char *err,
                   size_t errlen) {
  *out = NULL;
  *ops = &sqlite_ops;
  int crc = classify(path, flags, err, errlen);
  if (crc != CASE_OK) return crc;
  sb_db *b = calloc(1, sizeof *b);
  if (!b) {
    snprintf(err, errlen, "out of memory");
    return CASE_NOMEM;
  }
  b->readonly = (flags & SB_READONLY) != 0;
  int oflags = b->readonly ? SQLITE_OPEN_READONLY
                           : SQLITE_OPEN_READWRITE | ((flags & SB_CREATE) ? SQLITE_OPEN_CREATE : 0);
  oflags |= SQLITE_OPEN_NOMUTEX;
  int rc = CASE_OK, src;
  if (b->readonly && access(path, F_OK) == 0) {
    rc = open_readonly(b, path, err, errlen);
    if (rc != CASE_OK) {
      sq_close(b);
      return rc;
    }
    src = SQLITE_OK;
  } else {
    src = sqlite3_open_v2(path, &b->db, oflags, NULL);
  }
  if (src != SQLITE_OK) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    rc = (!f && !(flags & SB_CREATE)) ? CASE_NOTFOUND : CASE_IO;
    snprintf(err, errlen, "store '%s': %s", path,
             rc == CASE_NOTFOUND ? "no such file" : (b->db ? sqlite3_errmsg(b->db) : "cannot open"));
    sq_close(b);
    return rc;
  }
  sqlite3_extended_result_codes(b->db, 0);
  if (!b->readonly && sqlite3_db_readonly(b->db, "main") == 1) {
    /* SQLite opens a file it may not write read-only without a word; a command
     * that changes the store would then fail at its first write. */
    snprintf(err, errlen, "store '%s': is read-only for this user, and this command changes "
             "the store (the commands that only read, such as list, show and verify, work on "
             "it)", path);
    sq_close(b);
    return CASE_IO;
  }
  rc = sq_configure(b, 0, 5000);
  int version = 0;
  if (rc == CASE_OK) rc = check_identity(b, &version);
  if (rc == CASE_OK && !b->readonly) {
    /* WAL: readers never block the writer; set outside any transaction. */
    sqlite3_stmt *s;
    src = sqlite3_prepare_v2(b->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
    if (src == SQLITE_OK) {
      src = sqlite3_step(s);
      const char *mode = src == SQLITE_ROW ? col_text(s, 0) : NULL;
      if (!mode || strcmp(mode, "wal") != 0)
        rc = fail(b, CASE_IO, "store: cannot switch to WAL mode (%s)", mode ? mode : sqlite3_errmsg(b->db));
      sqlite3_finalize(s);
    } else {
      rc = sqlfail(b, src, "journal mode");
    }
  }
  if (rc == CASE_OK) rc = exec(b, "PRAGMA foreign_keys=ON", "foreign keys");
  if (rc != CASE_OK) {
    /* The user's words, not the step that met the problem ("store: synchronous: "). */
    const char *m = b->err;
    if (rc == CASE_CORRUPT && strstr(m, "file is not a database"))
      m = "is not a libcase store: not an SQLite database (or a damaged one)";
    else if (strncmp(m, "store: ", 7) == 0)
      m += 7;
    snprintf(err, errlen, "store '%s': %s", path, m);
    sq_close(b);
    return rc;
  }
  *out = b;
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                        */
/* ------------------------------------------------------------------ */

/*
 * Inside a batch (sq_batch) every transaction store.c begins is a savepoint
 * of the batch's one transaction: begin is SAVEPOINT, commit RELEASE (it
 * cannot fail for want of the disk: the batch's COMMIT does that), rollback
 * ROLLBACK TO and RELEASE, so a failing call leaves the batch as it was before
 * the call.  A rollback with no savepoint open does nothing: it must not undo
 * the batch.
 */
static int sq_begin(sb_db *b, int write) {
  if (b->batch) {
    sqlite3_stmt *s = stmt(b, Q_SAVEPOINT);
    int rc = s ? exec_stmt(b, s, "savepoint") : rc_of(sqlite3_errcode(b->db));
    if (rc == CASE_OK) b->depth++;
    return rc;
  }
  sqlite3_stmt *s = stmt(b, write ? Q_BEGIN_WRITE : Q_BEGIN_READ);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  return exec_stmt(b, s, "begin");
}

static int sq_commit(sb_db *b) {
  if (b->batch) {
    if (b->depth == 0) return CASE_OK;
    sqlite3_stmt *s = stmt(b, Q_RELEASE);
    int rc = s ? exec_stmt(b, s, "release savepoint") : rc_of(sqlite3_errcode(b->db));
    if (rc == CASE_OK) b->depth--;
    return rc;
  }
  sqlite3_stmt *s = stmt(b, Q_COMMIT);
  int rc = s ? exec_stmt(b, s, "commit") : rc_of(sqlite3_errcode(b->db));
  if (rc != CASE_OK && !sqlite3_get_autocommit(b->db))
    sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

static int sq_rollback(sb_db *b) {
  if (b->batch) {
    if (b->depth == 0) return CASE_OK;
    sqlite3_stmt *r = stmt(b, Q_ROLLBACK_TO), *rel = stmt(b, Q_RELEASE);
    int rc = r && rel ? exec_stmt(b, r, "roll back to the savepoint") : rc_of(sqlite3_errcode(b->db));
    if (rc == CASE_OK) rc = exec_stmt(b, rel, "release savepoint");
    b->depth--;
    return rc;
  }
  if (sqlite3_get_autocommit(b->db)) return CASE_OK;
  return exec(b, "ROLLBACK", "rollback");
}

static int sq_batch(sb_db *b, int op) {
  switch (op) {
  case SB_BATCH_BEGIN: {
    if (b->batch) return fail(b, CASE_MISUSE, "store: a batch is already open");
    sqlite3_stmt *s = stmt(b, Q_BEGIN_WRITE);
    int rc = s ? exec_stmt(b, s, "begin the batch") : rc_of(sqlite3_errcode(b->db));
    if (rc == CASE_OK) {
      b->batch = 1;
      b->depth = 0;
    }
    return rc;
  }
  case SB_BATCH_COMMIT: {
    if (!b->batch) return fail(b, CASE_MISUSE, "store: no batch is open");
    b->batch = 0;
    b->depth = 0;
    return sq_commit(b); /* on failure the batch is rolled back */
  }
  default:
    if (!b->batch) return CASE_OK;
    b->batch = 0;
    b->depth = 0;
    return sq_rollback(b);
  }
}

/* ------------------------------------------------------------------ */
/* Definitions                                                         */
/* ------------------------------------------------------------------ */

static int sq_def_put(sb_db *b, const sb_def_row *r) {
  sqlite3_stmt *s = stmt(b, Q_DEF_GET);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, r->id);
  sqlite3_bind_int(s, 2, r->version);
  int src = sqlite3_step(s);
  if (src == SQLITE_ROW) {
    int same = strcmp(col_text(s, 0), r->hash) == 0;
    const char *mods = (const char *)sqlite3_column_text(s, 1);
    int same_mods = !mods || !r->modules || strcmp(mods, r->modules) == 0;
    done(s);
    if (!same)
      return fail(b, CASE_EXISTS, "store: workflow '%s' version %d is stored with another hash",
                  r->id, r->version);
    if (!same_mods)
      return fail(b, CASE_EXISTS, "store: the Lua modules of workflow '%s' version %d differ "
                  "from the ones stored with it; changed code needs a new version",
                  r->id, r->version);
    return CASE_OK;
  }
  done(s);
  if (src != SQLITE_DONE) return sqlfail(b, src, "read definition");
  s = stmt(b, Q_DEF_PUT);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, r->id);
  sqlite3_bind_int(s, 2, r->version);
  bind_text(s, 3, r->hash);
  sqlite3_bind_text(s, 4, r->source, (int)r->source_len, SQLITE_STATIC);
  bind_text(s, 5, r->file);
  bind_text(s, 6, r->modules);
  return exec_stmt(b, s, "store definition");
}

static int sq_def_get(sb_db *b, const char *id, int version, sb_def_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_DEF_ROW);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, id);
  sqlite3_bind_int(s, 2, version);
  int src = sqlite3_step(s), rc;
  if (src == SQLITE_ROW) {
    sb_def_row r = {(char *)col_text(s, 0), sqlite3_column_int(s, 1), (char *)col_text(s, 2),
                    (char *)col_text(s, 3), (size_t)sqlite3_column_bytes(s, 3),
                    (char *)col_text(s, 4), (char *)sqlite3_column_text(s, 5)};
    rc = fn(ud, &r);
  } else if (src == SQLITE_DONE) {
    rc = fail(b, CASE_NOTFOUND, "store: no workflow '%s' version %d", id, version);
  } else {
    rc = sqlfail(b, src, "read definition");
  }
  done(s);
  return rc;
}

static int sq_def_keys(sb_db *b, const char *id, sb_def_key_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_DEF_KEYS);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, id);
  int src, rc = CASE_OK;
  while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW)
    rc = fn(ud, col_text(s, 0), sqlite3_column_int(s, 1));
  if (rc == CASE_OK && src != SQLITE_DONE) rc = sqlfail(b, src, "list definitions");
  done(s);
  return rc;
}

static int sq_def_list(sb_db *b, sb_def_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_DEF_LIST);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  int src, rc = CASE_OK;
  while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
    sb_def_row r = {(char *)col_text(s, 0), sqlite3_column_int(s, 1), (char *)col_text(s, 2),
                    (char *)col_text(s, 3), (size_t)sqlite3_column_bytes(s, 3),
                    (char *)col_text(s, 4), (char *)sqlite3_column_text(s, 5)};
    rc = fn(ud, &r);
  }
  if (rc == CASE_OK && src != SQLITE_DONE) rc = sqlfail(b, src, "list definitions");
  done(s);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Location profiles                                                   */
/* ------------------------------------------------------------------ */

static sb_profile_row profile_row(sqlite3_stmt *s) {
  sb_profile_row r = {(char *)col_text(s, 0), sqlite3_column_int(s, 1), (char *)col_text(s, 2),
                      (size_t)sqlite3_column_bytes(s, 2), (char *)col_text(s, 3),
                      (char *)sqlite3_column_text(s, 4)};
  return r;
}

static int sq_profile_get(sb_db *b, const char *name, int version, sb_profile_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, version > 0 ? Q_PROFILE_GET : Q_PROFILE_LATEST);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, name);
  if (version > 0) sqlite3_bind_int(s, 2, version);
  int src = sqlite3_step(s), rc;
  if (src == SQLITE_ROW) {
    sb_profile_row r = profile_row(s);
    rc = fn(ud, &r);
  } else if (src == SQLITE_DONE) {
    rc = version > 0 ? fail(b, CASE_NOTFOUND, "store: no version %d of location profile '%s'",
                            version, name)
                     : fail(b, CASE_NOTFOUND, "store: no location profile '%s'", name);
  } else {
    rc = sqlfail(b, src, "read profile");
  }
  done(s);
  return rc;
}


typedef struct latest_row {
  int version;
  char hash[65];
} latest_row;

static int keep_latest(void *ud, const sb_profile_row *r) {
  latest_row *l = ud;
  l->version = r->version;
  snprintf(l->hash, sizeof l->hash, "%s", r->hash ? r->hash : "");
  return CASE_OK;
}

static int sq_profile_put(sb_db *b, const sb_profile_row *r, int *version) {
  latest_row l = {0, ""};
  int rc = sq_profile_get(b, r->name, 0, keep_latest, &l);
  if (rc != CASE_OK && rc != CASE_NOTFOUND) return rc;
  if (rc == CASE_OK && strcmp(l.hash, r->hash) == 0) {
    *version = l.version; /* the same text as the latest: nothing to add */
    return CASE_OK;
  }
  sqlite3_stmt *s = stmt(b, Q_PROFILE_PUT);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, r->name);
  sqlite3_bind_int(s, 2, l.version + 1);
  sqlite3_bind_text(s, 3, r->source, (int)r->source_len, SQLITE_STATIC);
  bind_text(s, 4, r->hash);
  bind_text(s, 5, r->file);
  rc = exec_stmt(b, s, "store profile");
  if (rc == CASE_OK) *version = l.version + 1;
  return rc;
}

static int sq_profile_list(sb_db *b, sb_profile_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_PROFILE_LIST);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  int src, rc = CASE_OK;
  while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
    sb_profile_row r = profile_row(s);
    rc = fn(ud, &r);
  }
  if (rc == CASE_OK && src != SQLITE_DONE) rc = sqlfail(b, src, "list profiles");
  done(s);
  return rc;
}

static int sq_holiday_put(sb_db *b, const char *day, const char *name, int64_t added) {
  sqlite3_stmt *s = stmt(b, Q_HOLIDAY_PUT);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, day);
  bind_text(s, 2, name);
  sqlite3_bind_int64(s, 3, added);
  return exec_stmt(b, s, "store holiday");
}

static int sq_holiday_list(sb_db *b, sb_holiday_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_HOLIDAY_LIST);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  int src, rc = CASE_OK;
  while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW)
    rc = fn(ud, col_text(s, 0), (const char *)sqlite3_column_text(s, 1),
            sqlite3_column_int64(s, 2));
  if (rc == CASE_OK && src != SQLITE_DONE) rc = sqlfail(b, src, "list holidays");
  done(s);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Cases                                                               */
/* ------------------------------------------------------------------ */

int sb_case_row_loadable(const sb_case_row *r, char *err, size_t errlen) {
  if (r->revision < 0) {
    snprintf(err, errlen, "store: case '%s' has no journal row", r->id);
    return CASE_CORRUPT;
  }
  if (!r->configuration || !r->data || !r->state || !r->last_hash) {
    snprintf(err, errlen, "store: case '%s': its latest journal row (seq %lld) has no state (or "
             "an empty column)", r->id, (long long)r->last_seq);
    return CASE_CORRUPT;
  }
  return CASE_OK;
}

void sb_case_row_free(sb_case_row *r) {
  if (!r) return;
  free(r->id);
  free(r->workflow);
  free(r->hash);
  free(r->location);
  free(r->configuration);
  free(r->data);
  free(r->state);
  free(r->last_hash);
  memset(r, 0, sizeof *r);
}

/* The columns of Q_CASE_GET / Q_CASE_PAGE, borrowed from the statement. */
static void case_cols(sqlite3_stmt *s, sb_case_row *r) {
  memset(r, 0, sizeof *r);
  r->id = (char *)col_text(s, 0);
  r->workflow = (char *)col_text(s, 1);
  r->version = sqlite3_column_int(s, 2);
  r->hash = (char *)col_text(s, 3);
  r->location = (char *)col_text(s, 4);
  r->created = sqlite3_column_int64(s, 5);
  r->profile_version = sqlite3_column_int(s, 6);
  r->profile_first = sqlite3_column_int(s, 7);
  r->revision = sqlite3_column_type(s, 8) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 8);
  r->configuration = (char *)col_text(s, 9);
  r->done = sqlite3_column_int(s, 10);
  r->data = (char *)col_text(s, 11);
  r->state = (char *)col_text(s, 12);
  r->last_hash = (char *)col_text(s, 13);
  r->last_seq = sqlite3_column_int64(s, 14);
  r->updated = sqlite3_column_int64(s, 15);
}

static char *dup_or_null(const char *v, int *nomem) {
  if (!v) return NULL;
  char *p = strdup(v);
  if (!p) *nomem = 1;
  return p;
}

static int sq_case_get(sb_db *b, const char *id, sb_case_row *out) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *s = stmt(b, Q_CASE_GET);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, id);
  int src = sqlite3_step(s);
  if (src == SQLITE_DONE) {
    done(s);
    return fail(b, CASE_NOTFOUND, "store: no case '%s'", id);
  }
  if (src != SQLITE_ROW) {
    int rc = sqlfail(b, src, "read case");
    done(s);
    return rc;
  }
  sb_case_row r;
  case_cols(s, &r);
  if (!r.id || !r.workflow || !r.hash) {
    done(s);
    return fail(b, CASE_CORRUPT, "store: case '%s': its case row has an empty column", id);
  }
  int nomem = 0;
  *out = r;
  out->id = dup_or_null(r.id, &nomem);
  out->workflow = dup_or_null(r.workflow, &nomem);
  out->hash = dup_or_null(r.hash, &nomem);
  out->location = dup_or_null(r.location, &nomem);
  out->configuration = dup_or_null(r.configuration, &nomem);
  out->data = dup_or_null(r.data, &nomem);
  out->state = dup_or_null(r.state, &nomem);
  out->last_hash = dup_or_null(r.last_hash, &nomem);
  done(s);
  if (nomem) {
    sb_case_row_free(out);
    return fail(b, CASE_NOMEM, "out of memory");
  }
  return CASE_OK;
}

static int sq_case_insert(sb_db *b, const sb_case_row *r) {
  sqlite3_stmt *s = stmt(b, Q_CASE_INSERT);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, r->id);
  bind_text(s, 2, r->workflow);
  sqlite3_bind_int(s, 3, r->version);
  bind_text(s, 4, r->hash);
  bind_text(s, 5, r->location);
  sqlite3_bind_int64(s, 6, r->created);
  sqlite3_bind_int(s, 7, r->profile_version);
  sqlite3_bind_int(s, 8, r->profile_first);
  int rc = exec_stmt(b, s, "insert case");
  if (rc == CASE_EXISTS) return fail(b, CASE_EXISTS, "store: case '%s' exists", r->id);
  return rc;
}

static int sq_case_update(sb_db *b, const sb_case_row *r, int64_t old_revision) {
  (void)old_revision;
  sqlite3_stmt *s = stmt(b, Q_CASE_UPDATE);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, r->id);
  sqlite3_bind_int(s, 2, r->profile_version);
  sqlite3_bind_int(s, 3, r->profile_first);
  int rc = exec_stmt(b, s, "update case");
  if (rc == CASE_OK && sqlite3_changes(b->db) != 1)
    return fail(b, CASE_NOTFOUND, "store: no case '%s'", r->id);
  return rc;
}

static int sq_case_list(sb_db *b, sb_case_id_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_CASE_LIST);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  int src, rc = CASE_OK;
  while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW) rc = fn(ud, col_text(s, 0));
  if (rc == CASE_OK && src != SQLITE_DONE) rc = sqlfail(b, src, "list cases");
  done(s);
  return rc;
}

static int sq_case_page(sb_db *b, const char *after, int limit, sb_case_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_CASE_PAGE);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  /* "" sorts before every id (ids are not empty); no "?1 IS NULL OR": with
   * it SQLite scans the index from the start instead of seeking. */
  bind_text(s, 1, after ? after : "");
  sqlite3_bind_int64(s, 2, limit > 0 ? limit : -1);
  int src, rc = CASE_OK;
  while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
    sb_case_row r;
    case_cols(s, &r);
    if (r.revision < 0) { /* no journal row: a damaged store, still listed */
      r.configuration = "[]";
      r.last_hash = "";
    }
    if (!r.id || !r.workflow || !r.configuration) {
      rc = fail(b, CASE_CORRUPT, "store: a case row has an empty column");
      break;
    }
    rc = fn(ud, &r);
  }
  if (rc == CASE_OK && src != SQLITE_DONE) rc = sqlfail(b, src, "list cases");
  done(s);
  return rc;
}

static int sq_latest_time(sb_db *b, int64_t *t, int *any) {
  *t = 0;
  *any = 0;
  sqlite3_stmt *s = stmt(b, Q_LATEST_TIME);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  int src = sqlite3_step(s);
  int rc = CASE_OK;
  if (src == SQLITE_ROW) {
    *any = sqlite3_column_type(s, 0) != SQLITE_NULL;
    *t = sqlite3_column_int64(s, 0);
  } else if (src != SQLITE_DONE) {
    rc = sqlfail(b, src, "read the journal's latest time");
  }
  done(s);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Journal                                                             */
/* ------------------------------------------------------------------ */

static int sq_journal_append(sb_db *b, sb_journal_row *r) {
  sqlite3_stmt *s = stmt(b, Q_JOURNAL_APPEND);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, r->case_id);
  sqlite3_bind_int64(s, 2, r->revision);
  bind_text(s, 3, r->event);
  bind_text(s, 4, r->payload);
  bind_text(s, 5, r->actor);
  bind_text(s, 6, r->role);
  sqlite3_bind_int64(s, 7, r->time);
  sqlite3_bind_int64(s, 8, r->recorded);
  bind_text(s, 9, r->configuration);
  bind_text(s, 10, r->data);
  bind_text(s, 11, r->prev_hash);
  bind_text(s, 12, r->hash);
  if (r->node) sqlite3_bind_blob(s, 13, r->node, 32, SQLITE_STATIC);
  else sqlite3_bind_null(s, 13);
  if (r->seq > 0) sqlite3_bind_int64(s, 14, r->seq);
  else sqlite3_bind_null(s, 14);
  sqlite3_bind_int(s, 15, r->done ? 1 : 0);
  bind_text(s, 16, r->state);
  int rc = exec_stmt(b, s, "append to the journal");
  if (rc == CASE_EXISTS)
    return fail(b, CASE_CONFLICT, "store: case '%s' already has journal revision %lld (or journal "
                "seq %lld is taken)", r->case_id, (long long)r->revision, (long long)r->seq);
  if (rc == CASE_OK) r->seq = sqlite3_last_insert_rowid(b->db);
  return rc;
}

static int journal_rows(sb_db *b, sqlite3_stmt *s, sb_journal_fn fn, void *ud) {
  int src, rc = CASE_OK;
  while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
    sb_journal_row r;
    r.seq = sqlite3_column_int64(s, 0);
    r.case_id = (char *)col_text(s, 1);
    r.revision = sqlite3_column_int64(s, 2);
    r.event = (char *)col_text(s, 3);
    r.payload = (char *)col_text(s, 4);
    r.actor = (char *)col_text(s, 5);
    r.role = (char *)col_text(s, 6);
    r.time = sqlite3_column_int64(s, 7);
    r.recorded = sqlite3_column_int64(s, 8);
    r.configuration = (char *)col_text(s, 9);
    r.data = (char *)col_text(s, 10);
    r.prev_hash = (char *)col_text(s, 11);
    r.hash = (char *)col_text(s, 12);
    r.node = sqlite3_column_blob(s, 13);
    r.node_len = sqlite3_column_bytes(s, 13);
    r.done = sqlite3_column_int(s, 14);
    r.state = (char *)col_text(s, 15);
    if (!r.case_id || !r.event || !r.payload || !r.configuration || !r.data || !r.prev_hash ||
        !r.hash) {
      rc = fail(b, CASE_CORRUPT, "store: journal row %lld has an empty column",
                (long long)r.seq);
      break;
    }
    rc = fn(ud, &r);
  }
  if (rc == CASE_OK && src != SQLITE_DONE) rc = sqlfail(b, src, "read the journal");
  done(s);
  return rc;
}

static int sq_journal_case(sb_db *b, const char *case_id, sb_journal_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_JOURNAL_CASE);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, case_id);
  return journal_rows(b, s, fn, ud);
}

static int sq_journal_case_page(sb_db *b, const char *case_id, int64_t after, int limit,
                                sb_journal_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_JOURNAL_CASE_PAGE);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, case_id);
  sqlite3_bind_int64(s, 2, after);
  sqlite3_bind_int64(s, 3, limit > 0 ? limit : -1);
  return journal_rows(b, s, fn, ud);
}

static int sq_journal_from(sb_db *b, int64_t after, int limit, sb_journal_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_JOURNAL_FROM);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  sqlite3_bind_int64(s, 1, after);
  sqlite3_bind_int64(s, 2, limit > 0 ? limit : -1);
  return journal_rows(b, s, fn, ud);
}

typedef struct one_row {
  sb_journal_fn fn;
  void *ud;
  int seen;
} one_row;

static int count_row(void *ud, const sb_journal_row *r) {
  one_row *o = ud;
  o->seen = 1;
  return o->fn(o->ud, r);
}

static int sq_journal_get(sb_db *b, int64_t seq, sb_journal_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_JOURNAL_GET);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  sqlite3_bind_int64(s, 1, seq);
  one_row o = {fn, ud, 0};
  int rc = journal_rows(b, s, count_row, &o);
  if (rc == CASE_OK && !o.seen)
    return fail(b, CASE_NOTFOUND, "store: no journal row %lld", (long long)seq);
  return rc;
}

/* A node column of 32 bytes into node; 0 when it is NULL or of another length. */
static int node_of(sqlite3_stmt *s, int col, unsigned char node[32]) {
  if (sqlite3_column_type(s, col) != SQLITE_BLOB || sqlite3_column_bytes(s, col) != 32) return 0;
  memcpy(node, sqlite3_column_blob(s, col), 32);
  return 1;
}

static int sq_data_version(sb_db *b, uint64_t *version) {
  unsigned int v = 0;
  if (sqlite3_file_control(b->db, "main", SQLITE_FCNTL_DATA_VERSION, &v) != SQLITE_OK)
    return fail(b, CASE_NOTFOUND, "store: no data version");
  *version = v;
  return CASE_OK;
}

static int sq_journal_tail(sb_db *b, int64_t *seq, unsigned char node[32], int *have) {
  *seq = 0;
  *have = 0;
  sqlite3_stmt *s = stmt(b, Q_JOURNAL_TAIL);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  int src = sqlite3_step(s);
  int rc = CASE_OK;
  if (src == SQLITE_ROW) {
    *seq = sqlite3_column_int64(s, 0);
    *have = node_of(s, 1, node);
  } else if (src != SQLITE_DONE) {
    rc = sqlfail(b, src, "read the journal's last row");
  }
  done(s);
  return rc;
}

static int sq_journal_node(sb_db *b, int64_t seq, unsigned char node[32]) {
  sqlite3_stmt *s = stmt(b, Q_JOURNAL_NODE);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  sqlite3_bind_int64(s, 1, seq);
  int src = sqlite3_step(s);
  int rc = CASE_NOTFOUND;
  if (src == SQLITE_ROW) {
    if (node_of(s, 0, node)) rc = CASE_OK;
  } else if (src != SQLITE_DONE) {
    rc = sqlfail(b, src, "read a journal node");
  }
  done(s);
  if (rc == CASE_NOTFOUND) fail(b, rc, "store: journal row %lld has no tree node", (long long)seq);
  return rc;
}

static int sq_journal_set_node(sb_db *b, int64_t seq, const unsigned char node[32]) {
  sqlite3_stmt *s = stmt(b, Q_JOURNAL_SET_NODE);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  sqlite3_bind_int64(s, 1, seq);
  sqlite3_bind_blob(s, 2, node, 32, SQLITE_STATIC);
  return exec_stmt(b, s, "store a journal node");
}

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/* ------------------------------------------------------------------ */

void sb_timer_row_free(sb_timer_row *r) {
  if (!r) return;
  free(r->case_id);
  free(r->timer_id);
  free(r->kind);
  free(r->name);
  free(r->last_day);
  memset(r, 0, sizeof *r);
}

static int sq_timers_replace(sb_db *b, const char *case_id, const sb_timer_row *rows, int n) {
  sqlite3_stmt *s = stmt(b, Q_TIMERS_DELETE);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, case_id);
  int rc = exec_stmt(b, s, "delete timers");
  for (int i = 0; rc == CASE_OK && i < n; i++) {
    s = stmt(b, Q_TIMER_INSERT);
    if (!s) return rc_of(sqlite3_errcode(b->db));
    bind_text(s, 1, case_id);
    bind_text(s, 2, rows[i].timer_id);
    sqlite3_bind_int64(s, 3, rows[i].seq);
    bind_text(s, 4, rows[i].kind);
    bind_text(s, 5, rows[i].name);
    sqlite3_bind_int64(s, 6, rows[i].due);
    bind_text(s, 7, rows[i].last_day);
    sqlite3_bind_int(s, 8, rows[i].fired);
    rc = exec_stmt(b, s, "insert timer");
  }
  return rc;
}

static int sq_timer_next(sb_db *b, int64_t now, const sb_timer_row *after, sb_timer_row *out) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *s = stmt(b, after ? Q_TIMER_AFTER : Q_TIMER_NEXT);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  sqlite3_bind_int64(s, 1, now);
  if (after) {
    sqlite3_bind_int64(s, 2, after->due);
    bind_text(s, 3, after->case_id);
    sqlite3_bind_int64(s, 4, after->seq);
  }
  int src = sqlite3_step(s);
  if (src == SQLITE_DONE) {
    done(s);
    return CASE_NOTFOUND;
  }
  if (src != SQLITE_ROW) {
    int rc = sqlfail(b, src, "read timers");
    done(s);
    return rc;
  }
  out->case_id = col_dup(s, 0);
  out->timer_id = col_dup(s, 1);
  out->seq = sqlite3_column_int64(s, 2);
  out->kind = col_dup(s, 3);
  out->name = col_dup(s, 4);
  out->due = sqlite3_column_int64(s, 5);
  out->last_day = col_dup(s, 6);
  out->fired = sqlite3_column_int(s, 7);
  done(s);
  if (!out->case_id || !out->timer_id || !out->kind || !out->name) {
    sb_timer_row_free(out);
    return fail(b, CASE_NOMEM, "out of memory");
  }
  return CASE_OK;
}

static int sq_next_due(sb_db *b, int64_t *due, int *any) {
  *due = 0;
  *any = 0;
  sqlite3_stmt *s = stmt(b, Q_NEXT_DUE);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  int src = sqlite3_step(s);
  int rc = CASE_OK;
  if (src == SQLITE_ROW) {
    *any = sqlite3_column_type(s, 0) != SQLITE_NULL;
    *due = sqlite3_column_int64(s, 0);
  } else if (src != SQLITE_DONE) {
    rc = sqlfail(b, src, "read the next due timer");
  }
  done(s);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Access tokens                                                       */
/* ------------------------------------------------------------------ */

static int sq_token_put(sb_db *b, sb_token_row *r) {
  sqlite3_stmt *s = stmt(b, Q_TOKEN_PUT);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, r->name);
  bind_text(s, 2, r->role);
  sqlite3_bind_int(s, 3, r->scopes);
  bind_text(s, 4, r->hash);
  sqlite3_bind_int64(s, 5, r->created);
  int rc = exec_stmt(b, s, "store the access token");
  if (rc == CASE_EXISTS) return fail(b, rc, "an access token named '%s' is in use", r->name);
  if (rc == CASE_OK) r->id = sqlite3_last_insert_rowid(b->db);
  return rc;
}

static void token_of(sqlite3_stmt *s, sb_token_row *r) {
  r->id = sqlite3_column_int64(s, 0);
  r->name = (char *)col_text(s, 1);
  r->role = (char *)col_text(s, 2);
  r->scopes = sqlite3_column_int(s, 3);
  r->hash = (char *)col_text(s, 4);
  r->created = sqlite3_column_int64(s, 5);
  r->revoked = sqlite3_column_type(s, 6) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, 6);
}

static int sq_token_get(sb_db *b, const char *hash, sb_token_row *out) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *s = stmt(b, Q_TOKEN_GET);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, hash);
  int src = sqlite3_step(s);
  int rc = CASE_NOTFOUND;
  if (src == SQLITE_ROW) {
    token_of(s, out);
    out->name = col_dup(s, 1);
    out->role = col_dup(s, 2);
    out->hash = col_dup(s, 4);
    rc = out->name && out->role && out->hash ? CASE_OK : fail(b, CASE_NOMEM, "out of memory");
    if (rc != CASE_OK) sb_token_row_free(out);
  } else if (src != SQLITE_DONE) {
    rc = sqlfail(b, src, "read an access token");
  }
  done(s);
  return rc;
}

static int sq_token_revoke(sb_db *b, const char *name, int64_t at) {
  sqlite3_stmt *s = stmt(b, Q_TOKEN_REVOKE);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, name);
  sqlite3_bind_int64(s, 2, at);
  int rc = exec_stmt(b, s, "revoke the access token");
  if (rc == CASE_OK && sqlite3_changes(b->db) == 0)
    rc = fail(b, CASE_NOTFOUND, "no access token named '%s' is in use", name);
  return rc;
}

static int sq_token_list(sb_db *b, sb_token_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_TOKEN_LIST);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  int src, rc = CASE_OK;
  while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
    sb_token_row r;
    token_of(s, &r);
    rc = fn(ud, &r);
  }
  if (rc == CASE_OK && src != SQLITE_DONE) rc = sqlfail(b, src, "list the access tokens");
  done(s);
  return rc;
}

void sb_token_row_free(sb_token_row *r) {
  if (!r) return;
  free(r->name);
  free(r->role);
  free(r->hash);
  memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ */
/* Refused events, idempotency keys, outbox                            */
/* ------------------------------------------------------------------ */

static int sq_refused_add(sb_db *b, const sb_refused_row *r) {
  sqlite3_stmt *s = stmt(b, Q_REFUSED_ADD);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, r->case_id);
  sqlite3_bind_int64(s, 2, r->revision);
  bind_text(s, 3, r->event);
  bind_text(s, 4, r->payload);
  bind_text(s, 5, r->actor);
  bind_text(s, 6, r->role);
  sqlite3_bind_int64(s, 7, r->time);
  sqlite3_bind_int64(s, 8, r->recorded);
  sqlite3_bind_int(s, 9, r->code);
  bind_text(s, 10, r->message ? r->message : "");
  return exec_stmt(b, s, "record the refused event");
}

static int sq_idem_get(sb_db *b, const char *key, char **case_id, int64_t *seq,
                       char **request) {
  *case_id = NULL;
  *request = NULL;
  sqlite3_stmt *s = stmt(b, Q_IDEM_GET);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, key);
  int src = sqlite3_step(s);
  int rc = CASE_NOTFOUND;
  if (src == SQLITE_ROW) {
    *case_id = col_dup(s, 0);
    *seq = sqlite3_column_int64(s, 1);
    *request = col_dup(s, 2);
    rc = *case_id && (*request || sqlite3_column_type(s, 2) == SQLITE_NULL)
             ? CASE_OK : fail(b, CASE_NOMEM, "out of memory");
    if (rc != CASE_OK) {
      free(*case_id);
      free(*request);
      *case_id = *request = NULL;
    }
  } else if (src != SQLITE_DONE) {
    rc = sqlfail(b, src, "read idempotency key");
  }
  done(s);
  return rc;
}

static int sq_idem_put(sb_db *b, const char *key, const char *case_id, int64_t seq,
                       const char *request, int64_t recorded) {
  sqlite3_stmt *s = stmt(b, Q_IDEM_PUT);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, key);
  bind_text(s, 2, case_id);
  sqlite3_bind_int64(s, 3, seq);
  sqlite3_bind_int64(s, 4, recorded);
  bind_text(s, 5, request);
  return exec_stmt(b, s, "store idempotency key");
}

static int sq_outbox_add(sb_db *b, sb_outbox_row *r) {
  sqlite3_stmt *s = stmt(b, Q_OUTBOX_ADD);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, r->case_id);
  sqlite3_bind_int64(s, 2, r->seq);
  bind_text(s, 3, r->name);
  bind_text(s, 4, r->payload);
  sqlite3_bind_int64(s, 5, r->created);
  int rc = exec_stmt(b, s, "add to the outbox");
  if (rc == CASE_OK) r->id = sqlite3_last_insert_rowid(b->db);
  return rc;
}

static int sq_outbox_list(sb_db *b, int limit, sb_outbox_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_OUTBOX_LIST);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  sqlite3_bind_int64(s, 1, limit > 0 ? limit : -1);
  int src, rc = CASE_OK;
  while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
    sb_outbox_row r = {sqlite3_column_int64(s, 0), (char *)col_text(s, 1),
                       sqlite3_column_int64(s, 2), (char *)col_text(s, 3),
                       (char *)col_text(s, 4), sqlite3_column_int64(s, 5), 0};
    rc = fn(ud, &r);
  }
  if (rc == CASE_OK && src != SQLITE_DONE) rc = sqlfail(b, src, "read the outbox");
  done(s);
  return rc;
}

static int sq_outbox_ack(sb_db *b, int64_t id, int64_t at) {
  sqlite3_stmt *s = stmt(b, Q_OUTBOX_ACK);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  sqlite3_bind_int64(s, 1, id);
  sqlite3_bind_int64(s, 2, at);
  int rc = exec_stmt(b, s, "acknowledge outbox row");
  if (rc != CASE_OK || sqlite3_changes(b->db) == 1) return rc;
  /* Already delivered is fine; an unknown id is not. */
  s = stmt(b, Q_OUTBOX_GET);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  sqlite3_bind_int64(s, 1, id);
  int src = sqlite3_step(s);
  done(s);
  if (src == SQLITE_ROW) return CASE_OK;
  if (src == SQLITE_DONE) return fail(b, CASE_NOTFOUND, "store: no outbox row %lld", (long long)id);
  return sqlfail(b, src, "read outbox row");
}

/* Named consumers: the rows to claim are read first, then leased, then handed
 * out (the callback may not call the store; the claim is all-or-nothing). */
typedef struct claim_buf {
  sb_outbox_row *v;
  int n;
} claim_buf;

static void claim_buf_free(claim_buf *c) {
  for (int i = 0; i < c->n; i++) {
    free(c->v[i].case_id);
    free(c->v[i].name);
    free(c->v[i].payload);
  }
  free(c->v);
}

static int sq_outbox_claim(sb_db *b, const char *consumer, int limit, int64_t now,
                           int64_t lease_until, sb_outbox_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_CONSUMER_ADD);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, consumer);
  sqlite3_bind_int64(s, 2, now);
  int rc = exec_stmt(b, s, "add an outbox consumer");
  if (rc != CASE_OK) return rc;
  claim_buf c = {calloc((size_t)limit, sizeof(sb_outbox_row)), 0};
  if (!c.v) return fail(b, CASE_NOMEM, "out of memory");
  s = stmt(b, Q_CLAIM_LIST);
  if (!s) {
    free(c.v);
    return rc_of(sqlite3_errcode(b->db));
  }
  bind_text(s, 1, consumer);
  sqlite3_bind_int64(s, 2, now);
  sqlite3_bind_int64(s, 3, limit);
  int src = SQLITE_DONE;
  while (rc == CASE_OK && c.n < limit && (src = sqlite3_step(s)) == SQLITE_ROW) {
    sb_outbox_row *r = &c.v[c.n++];
    r->id = sqlite3_column_int64(s, 0);
    r->case_id = col_dup(s, 1);
    r->seq = sqlite3_column_int64(s, 2);
    r->name = col_dup(s, 3);
    r->payload = col_dup(s, 4);
    r->created = sqlite3_column_int64(s, 5);
    if (!r->case_id || !r->name || !r->payload) rc = fail(b, CASE_NOMEM, "out of memory");
  }
  if (rc == CASE_OK && c.n < limit && src != SQLITE_DONE) rc = sqlfail(b, src, "read the outbox");
  done(s);
  for (int i = 0; rc == CASE_OK && i < c.n; i++) {
    s = stmt(b, Q_CLAIM_PUT);
    if (!s) {
      rc = rc_of(sqlite3_errcode(b->db));
      break;
    }
    bind_text(s, 1, consumer);
    sqlite3_bind_int64(s, 2, c.v[i].id);
    sqlite3_bind_int64(s, 3, lease_until);
    rc = exec_stmt(b, s, "lease an outbox row");
  }
  for (int i = 0; rc == CASE_OK && i < c.n; i++) rc = fn(ud, &c.v[i]);
  claim_buf_free(&c);
  return rc;
}

static int sq_outbox_done(sb_db *b, const char *consumer, int64_t id, int64_t at) {
  sqlite3_stmt *s = stmt(b, Q_OUTBOX_GET);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  sqlite3_bind_int64(s, 1, id);
  int src = sqlite3_step(s);
  done(s);
  if (src == SQLITE_DONE) return fail(b, CASE_NOTFOUND, "store: no outbox row %lld", (long long)id);
  if (src != SQLITE_ROW) return sqlfail(b, src, "read outbox row");
  s = stmt(b, Q_CONSUMER_ADD);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, consumer);
  sqlite3_bind_int64(s, 2, at);
  int rc = exec_stmt(b, s, "add an outbox consumer");
  if (rc != CASE_OK) return rc;
  s = stmt(b, Q_CONSUMER_UPTO);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, consumer);
  src = sqlite3_step(s);
  int64_t upto = src == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
  done(s);
  if (src != SQLITE_ROW) return sqlfail(b, src, "read an outbox consumer");
  if (id <= upto) return CASE_OK; /* done already, and folded */
  static const int steps[] = {Q_CLAIM_DONE, Q_CONSUMER_FOLD, Q_CLAIM_PRUNE};
  for (int i = 0; rc == CASE_OK && i < 3; i++) {
    s = stmt(b, steps[i]);
    if (!s) return rc_of(sqlite3_errcode(b->db));
    bind_text(s, 1, consumer);
    if (steps[i] == Q_CLAIM_DONE) {
      sqlite3_bind_int64(s, 2, id);
      sqlite3_bind_int64(s, 3, at);
    }
    rc = exec_stmt(b, s, "mark an outbox row done");
  }
  return rc;
}

/* ------------------------------------------------------------------ */
/* For verify: definitions, meta, per-case rows, orphans               */
/* ------------------------------------------------------------------ */

static int sq_meta_get(sb_db *b, const char *key, char **value) {
  *value = NULL;
  sqlite3_stmt *s = stmt(b, Q_META_GET);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, key);
  int src = sqlite3_step(s);
  int rc = CASE_OK;
  if (src == SQLITE_ROW) {
    *value = col_dup(s, 0);
    if (!*value) rc = fail(b, CASE_NOMEM, "out of memory");
  } else if (src == SQLITE_DONE) {
    rc = fail(b, CASE_NOTFOUND, "store: no '%s' in the meta table", key);
  } else {
    rc = sqlfail(b, src, "read the meta table");
  }
  done(s);
  return rc;
}

static int sq_timers_case(sb_db *b, const char *case_id, sb_timer_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_TIMERS_CASE);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, case_id);
  int src, rc = CASE_OK;
  while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
    sb_timer_row r = {(char *)col_text(s, 0), (char *)col_text(s, 1), sqlite3_column_int64(s, 2),
                      (char *)col_text(s, 3), (char *)col_text(s, 4), sqlite3_column_int64(s, 5),
                      (char *)sqlite3_column_text(s, 6), sqlite3_column_int(s, 7)};
    rc = fn(ud, &r);
  }
  if (rc == CASE_OK && src != SQLITE_DONE) rc = sqlfail(b, src, "read timers");
  done(s);
  return rc;
}

static int sq_idem_list(sb_db *b, sb_idem_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_IDEM_LIST);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  int src, rc = CASE_OK;
  while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW)
    rc = fn(ud, col_text(s, 0), col_text(s, 1), sqlite3_column_int64(s, 2));
  if (rc == CASE_OK && src != SQLITE_DONE) rc = sqlfail(b, src, "read idempotency keys");
  done(s);
  return rc;
}

static int sq_outbox_case(sb_db *b, const char *case_id, sb_outbox_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_OUTBOX_CASE);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, case_id);
  int src, rc = CASE_OK;
  while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
    sb_outbox_row r = {sqlite3_column_int64(s, 0), (char *)col_text(s, 1),
                       sqlite3_column_int64(s, 2), (char *)col_text(s, 3),
                       (char *)col_text(s, 4), sqlite3_column_int64(s, 5),
                       sqlite3_column_int64(s, 6)};
    rc = fn(ud, &r);
  }
  if (rc == CASE_OK && src != SQLITE_DONE) rc = sqlfail(b, src, "read the outbox");
  done(s);
  return rc;
}

static int sq_meta_put(sb_db *b, const char *key, const char *value) {
  sqlite3_stmt *s = stmt(b, Q_META_PUT);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  bind_text(s, 1, key);
  bind_text(s, 2, value);
  return exec_stmt(b, s, "write the meta table");
}

static int sq_refused_from(sb_db *b, int64_t after, int limit, sb_refused_fn fn, void *ud) {
  sqlite3_stmt *s = stmt(b, Q_REFUSED_FROM);
  if (!s) return rc_of(sqlite3_errcode(b->db));
  sqlite3_bind_int64(s, 1, after);
  sqlite3_bind_int64(s, 2, limit > 0 ? limit : -1);
  int src, rc = CASE_OK;
  while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
    sb_refused_row r = {(char *)col_text(s, 1), sqlite3_column_int64(s, 2),
                        (char *)col_text(s, 3), (char *)sqlite3_column_text(s, 4),
                        (char *)sqlite3_column_text(s, 5), (char *)sqlite3_column_text(s, 6),
                        sqlite3_column_int64(s, 7), sqlite3_column_int64(s, 8),
                        sqlite3_column_int(s, 9), (char *)col_text(s, 10),
                        sqlite3_column_int64(s, 0)};
    rc = fn(ud, &r);
  }
  if (rc == CASE_OK && src != SQLITE_DONE) rc = sqlfail(b, src, "read the refused events");
  done(s);
  return rc;
}

static int sq_orphans(sb_db *b, sb_orphan_fn fn, void *ud) {
  static const char *const tables[] = {"timers", "outbox", "idempotency", "refused"};
  int rc = CASE_OK;
  for (size_t i = 0; rc == CASE_OK && i < sizeof tables / sizeof tables[0]; i++) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT case_id, count(*) FROM %s WHERE case_id NOT IN (SELECT id FROM cases) "
             "GROUP BY case_id ORDER BY case_id",
             tables[i]);
    sqlite3_stmt *s;
    int src = sqlite3_prepare_v2(b->db, sql, -1, &s, NULL);
    if (src != SQLITE_OK) continue; /* a missing table: check() reports it */
    while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW)
      rc = fn(ud, tables[i], col_text(s, 0), sqlite3_column_int64(s, 1));
    if (rc == CASE_OK && src != SQLITE_DONE) rc = sqlfail(b, src, "look for rows without a case");
    sqlite3_finalize(s);
  }
  return rc;
}

/* ------------------------------------------------------------------ */
/* The store's own checks                                              */
/* ------------------------------------------------------------------ */

/* "type name" -> a description of its columns or definition, for one schema. */
typedef struct schema_obj {
  char *key;  /* "table journal" */
  char *desc; /* its columns (tables) or SQL (indexes) */
} schema_obj;

typedef struct schema_list {
  schema_obj *v;
  int n, cap;
} schema_list;

static void schema_free(schema_list *l) {
  for (int i = 0; i < l->n; i++) {
    free(l->v[i].key);
    free(l->v[i].desc);
  }
  free(l->v);
  memset(l, 0, sizeof *l);
}

static char *strdup_printf(const char *fmt, ...) CASE_SQ_PRINTF(1, 2);
static char *strdup_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *p = malloc((size_t)n + 1);
  if (!p) return NULL;
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

/* Appends text to *acc (realloc'd); 0 or -1. */
static int append(char **acc, const char *text) {
  size_t a = *acc ? strlen(*acc) : 0, t = strlen(text);
  char *p = realloc(*acc, a + t + 1);
  if (!p) return -1;
  memcpy(p + a, text, t + 1);
  *acc = p;
  return 0;
}

/* Reads the objects of `db`'s schema (user tables and indexes, triggers, views). */
static int schema_read(sqlite3 *db, schema_list *l) {
  sqlite3_stmt *s;
  int src = sqlite3_prepare_v2(db,
                               "SELECT type, name, tbl_name, sql FROM sqlite_master "
                               "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
                               -1, &s, NULL);
  if (src != SQLITE_OK) return src;
  while ((src = sqlite3_step(s)) == SQLITE_ROW) {
    const char *type = col_text(s, 0), *name = col_text(s, 1), *tbl = col_text(s, 2);
    const char *sql = col_text(s, 3);
    if (!type || !name) continue;
    char *desc = NULL;
    if (strcmp(type, "table") == 0) {
      sqlite3_stmt *c;
      int csrc = sqlite3_prepare_v2(db,
                                    "SELECT name, type, \"notnull\", dflt_value, pk "
                                    "FROM pragma_table_info(?1) ORDER BY cid",
                                    -1, &c, NULL);
      if (csrc != SQLITE_OK) {
        src = csrc;
        break;
      }
      sqlite3_bind_text(c, 1, name, -1, SQLITE_TRANSIENT);
      while (sqlite3_step(c) == SQLITE_ROW) {
        char *col = strdup_printf("%s%s %s%s%s%s%s", desc ? ", " : "", col_text(c, 0),
                                  col_text(c, 1) ? col_text(c, 1) : "",
                                  sqlite3_column_int(c, 2) ? " NOT NULL" : "",
                                  col_text(c, 3) ? " DEFAULT " : "",
                                  col_text(c, 3) ? col_text(c, 3) : "",
                                  sqlite3_column_int(c, 4) ? " KEY" : "");
        if (!col || append(&desc, col) != 0) {
          free(col);
          sqlite3_finalize(c);
          sqlite3_finalize(s);
          free(desc);
          return SQLITE_NOMEM;
        }
        free(col);
      }
      sqlite3_finalize(c);
    } else {
      desc = strdup_printf("on %s: %s", tbl ? tbl : "?", sql ? sql : "(automatic)");
    }
    if (l->n == l->cap) {
      int cap = l->cap ? 2 * l->cap : 16;
      schema_obj *v = realloc(l->v, (size_t)cap * sizeof *v);
      if (!v) {
        free(desc);
        src = SQLITE_NOMEM;
        break;
      }
      l->v = v;
      l->cap = cap;
    }
    l->v[l->n].key = strdup_printf("%s %s", type, name);
    l->v[l->n].desc = desc ? desc : strdup_printf("%s", "");
    if (!l->v[l->n].key || !l->v[l->n].desc) {
      free(l->v[l->n].key);
      free(l->v[l->n].desc);
      src = SQLITE_NOMEM;
      break;
    }
    l->n++;
  }
  sqlite3_finalize(s);
  return src == SQLITE_DONE ? SQLITE_OK : src;
}

static const schema_obj *schema_find(const schema_list *l, const char *key) {
  for (int i = 0; i < l->n; i++)
    if (strcmp(l->v[i].key, key) == 0) return &l->v[i];
  return NULL;
}

/* The table an object key names ("table journal" -> "journal"; an index: its table). */
static const char *key_table(const schema_obj *o, char *buf, size_t n) {
  const char *sp = strchr(o->key, ' ');
  if (strncmp(o->key, "table ", 6) == 0) return sp + 1;
  if (strncmp(o->desc, "on ", 3) == 0) {
    const char *colon = strchr(o->desc, ':');
    size_t len = colon ? (size_t)(colon - o->desc - 3) : 0;
    if (len && len < n) {
      memcpy(buf, o->desc + 3, len);
      buf[len] = '\0';
      return buf;
    }
  }
  return NULL;
}

/* Compares the store's schema with the one the migrations make. */
static int check_schema(sb_db *b, sb_finding_fn fn, void *ud) {
  sqlite3 *mem = NULL;
  schema_list want = {0}, have = {0};
  int rc = CASE_OK;
  int src = sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  for (int v = 0; src == SQLITE_OK && v < SCHEMA_VERSION; v++)
    src = sqlite3_exec(mem, migrations[v], NULL, NULL, NULL);
  if (src == SQLITE_OK) src = schema_read(mem, &want);
  if (src != SQLITE_OK) {
    rc = src == SQLITE_NOMEM ? fail(b, CASE_NOMEM, "out of memory")
                             : fail(b, CASE_IO, "store: cannot build the reference schema: %s",
                                    mem ? sqlite3_errmsg(mem) : "no memory");
    goto out;
  }
  src = schema_read(b->db, &have);
  if (src != SQLITE_OK) {
    if (src == SQLITE_NOMEM) {
      rc = fail(b, CASE_NOMEM, "out of memory");
      goto out;
    }
    char msg[600];
    snprintf(msg, sizeof msg, "the schema cannot be read: %s", sqlite3_errmsg(b->db));
    rc = fn(ud, "integrity", NULL, msg);
    goto out;
  }
  char tbl[128], msg[1200];
  for (int i = 0; rc == CASE_OK && i < want.n; i++) {
    const schema_obj *h = schema_find(&have, want.v[i].key);
    if (!h)
      snprintf(msg, sizeof msg, "%s is missing", want.v[i].key);
    else if (strcmp(h->desc, want.v[i].desc) != 0)
      snprintf(msg, sizeof msg, "%s differs from the schema: it has (%.500s), the schema (%.500s)",
               want.v[i].key, h->desc, want.v[i].desc);
    else
      continue;
    rc = fn(ud, "schema", key_table(&want.v[i], tbl, sizeof tbl), msg);
  }
  for (int i = 0; rc == CASE_OK && i < have.n; i++) {
    if (schema_find(&want, have.v[i].key)) continue;
    snprintf(msg, sizeof msg, "%s is not part of the schema (%.500s)", have.v[i].key,
             have.v[i].desc);
    rc = fn(ud, "schema", key_table(&have.v[i], tbl, sizeof tbl), msg);
  }
out:
  schema_free(&want);
  schema_free(&have);
  sqlite3_close(mem);
  return rc;
}

static int sq_check(sb_db *b, int full, sb_finding_fn fn, void *ud) {
  sqlite3_stmt *s;
  int rc = CASE_OK;
  /* At most 100 findings: a badly damaged file gives thousands. */
  int src = sqlite3_prepare_v2(b->db, full ? "PRAGMA integrity_check(100)" : "PRAGMA quick_check(100)",
                               -1, &s, NULL);
  if (src == SQLITE_OK) {
    while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
      const char *m = col_text(s, 0);
      if (m && strcmp(m, "ok") != 0) rc = fn(ud, "integrity", NULL, m);
    }
    sqlite3_finalize(s);
  }
  if (rc == CASE_OK && src != SQLITE_DONE) {
    char msg[600];
    snprintf(msg, sizeof msg, "%s failed: %s", full ? "integrity_check" : "quick_check",
             sqlite3_errmsg(b->db));
    rc = fn(ud, "integrity", NULL, msg);
  }
  if (rc == CASE_OK) {
    src = sqlite3_prepare_v2(b->db, "PRAGMA foreign_key_check", -1, &s, NULL);
    if (src == SQLITE_OK) {
      while (rc == CASE_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
        char msg[400];
        snprintf(msg, sizeof msg, "row %lld of %s refers to a row of %s that does not exist",
                 (long long)sqlite3_column_int64(s, 1), col_text(s, 0) ? col_text(s, 0) : "?",
                 col_text(s, 2) ? col_text(s, 2) : "?");
        rc = fn(ud, "integrity", col_text(s, 0), msg);
      }
      sqlite3_finalize(s);
    }
    if (rc == CASE_OK && src != SQLITE_DONE) {
      char msg[600];
      snprintf(msg, sizeof msg, "foreign_key_check failed: %s", sqlite3_errmsg(b->db));
      rc = fn(ud, "integrity", NULL, msg);
    }
  }
  if (rc == CASE_OK) rc = check_schema(b, fn, ud);
  return rc;
}

/* SQLite waits for locks itself (the busy timeout): nothing is retried above it. */
static int sq_retryable(sb_db *b) {
  (void)b;
  return 0;
}

/* No notifications between processes: the journal's tail is read every 50 ms
 * (one index lookup). */
static int sq_wait(sb_db *b, int64_t after, int timeout_ms, int *ready) {
  *ready = 0;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    int64_t last = 0;
    unsigned char node[32];
    int have = 0;
    int rc = sq_journal_tail(b, &last, node, &have);
    if (rc != CASE_OK) return rc;
    if (last > after) {
      *ready = 1;
      return CASE_OK;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (timeout_ms >= 0 && ms >= timeout_ms) return CASE_OK;
    struct timespec nap = {0, 50 * 1000000L};
    nanosleep(&nap, NULL);
  }
}

static const sb_ops sqlite_ops = {
    .name = "sqlite",
    .errmsg = sq_errmsg,
    .close = sq_close,
    .configure = sq_configure,
    .migrate = sq_migrate,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .batch = sq_batch,
    .def_put = sq_def_put,
    .def_list = sq_def_list,
    .def_get = sq_def_get,
    .def_keys = sq_def_keys,
    .profile_put = sq_profile_put,
    .profile_list = sq_profile_list,
    .profile_get = sq_profile_get,
    .holiday_put = sq_holiday_put,
    .holiday_list = sq_holiday_list,
    .case_get = sq_case_get,
    .case_insert = sq_case_insert,
    .case_update = sq_case_update,
    .case_list = sq_case_list,
    .case_page = sq_case_page,
    .latest_time = sq_latest_time,
    .journal_case_page = sq_journal_case_page,
    .journal_append = sq_journal_append,
    .journal_case = sq_journal_case,
    .journal_from = sq_journal_from,
    .timers_replace = sq_timers_replace,
    .timer_next = sq_timer_next,
    .next_due = sq_next_due,
    .refused_add = sq_refused_add,
    .idem_get = sq_idem_get,
    .idem_put = sq_idem_put,
    .outbox_add = sq_outbox_add,
    .outbox_list = sq_outbox_list,
    .outbox_ack = sq_outbox_ack,
    .check = sq_check,
    .meta_get = sq_meta_get,
    .meta_put = sq_meta_put,
    .refused_from = sq_refused_from,
    .data_version = sq_data_version,
    .journal_tail = sq_journal_tail,
    .journal_node = sq_journal_node,
    .journal_set_node = sq_journal_set_node,
    .journal_get = sq_journal_get,
    .timers_case = sq_timers_case,
    .idem_list = sq_idem_list,
    .outbox_case = sq_outbox_case,
    .outbox_claim = sq_outbox_claim,
    .outbox_done = sq_outbox_done,
    .orphans = sq_orphans,
    .token_put = sq_token_put,
    .token_get = sq_token_get,
    .token_revoke = sq_token_revoke,
    .token_list = sq_token_list,
    .retryable = sq_retryable,
    .wait = sq_wait,
};
