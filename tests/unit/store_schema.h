/* store_schema.h — SQL that turns a store of the current schema back into an
 * older one, for the migration tests (each older schema is how a store of
 * that version looked: migrating it must give what the library writes). */
#ifndef LIBCASE_TEST_STORE_SCHEMA_H
#define LIBCASE_TEST_STORE_SCHEMA_H

/* Schema 10 -> 9: the case row holds the case's state again (revision,
 * configuration, done, snapshot, last_hash, updated, from each case's latest
 * journal row), the journal loses done and state, timers and cases their
 * WITHOUT ROWID, the case_state view goes.  Then user_version is 9. */
#define UNDO_SCHEMA_10                                                                          \
  "DROP VIEW case_state;"                                                                      \
  "CREATE TABLE cases8(id TEXT PRIMARY KEY, workflow TEXT NOT NULL, version INTEGER NOT NULL," \
  "  hash TEXT NOT NULL, location TEXT, revision INTEGER NOT NULL,"                            \
  "  configuration TEXT NOT NULL, done INTEGER NOT NULL, snapshot TEXT NOT NULL,"              \
  "  last_hash TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,"             \
  "  profile_version INTEGER NOT NULL DEFAULT 0, profile_first INTEGER NOT NULL DEFAULT 0,"    \
  "  FOREIGN KEY (workflow, version) REFERENCES definitions(id, version));"                    \
  "INSERT INTO cases8 SELECT c.id, c.workflow, c.version, c.hash, c.location, j.revision,"     \
  "  j.configuration, j.done, json_set(j.state, '$.format', 1, '$.workflow', c.workflow,"      \
  "  '$.version', c.version, '$.hash', c.hash, '$.case', c.id, '$.location', c.location,"      \
  "  '$.revision', j.revision, '$.done', json(CASE j.done WHEN 1 THEN 'true' ELSE 'false' END)," \
  "  '$.configuration', json(j.configuration), '$.data', json(j.data)), j.hash, c.created,"    \
  "  j.recorded, c.profile_version, c.profile_first FROM cases c JOIN journal j ON j.seq ="    \
  "  (SELECT k.seq FROM journal k WHERE k.case_id = c.id ORDER BY k.revision DESC LIMIT 1);"   \
  "DROP TABLE cases; ALTER TABLE cases8 RENAME TO cases;"                                      \
  "CREATE INDEX cases_workflow ON cases(workflow, version);"                                   \
  "CREATE TABLE timers8(case_id TEXT NOT NULL, timer_id TEXT NOT NULL, seq INTEGER NOT NULL,"  \
  "  kind TEXT NOT NULL, name TEXT NOT NULL, due INTEGER NOT NULL, last_day TEXT,"             \
  "  fired INTEGER NOT NULL, PRIMARY KEY (case_id, timer_id));"                                \
  "INSERT INTO timers8 SELECT case_id, timer_id, seq, kind, name, due, last_day, fired FROM timers;" \
  "DROP TABLE timers; ALTER TABLE timers8 RENAME TO timers;"                                   \
  "CREATE INDEX timers_due ON timers(fired, due, case_id, seq);"                               \
  "ALTER TABLE journal DROP COLUMN state; ALTER TABLE journal DROP COLUMN done;"               \
  "PRAGMA user_version=9;"

#endif
