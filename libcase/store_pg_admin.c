/*
 * store_pg_admin.c — what only the PostgreSQL backend can do, beside the
 * storage interface of store_pg.c (issue 10, points 3 and 4):
 *
 *  - Grants (case_store_grant/_revoke/_grants): each agency's tool connects
 *    with a login of its own; the store's owner maps logins to the roles they
 *    may act as, and the server enforces it with table privileges, row-level
 *    security and triggers, whatever SQL a host sends (docs/store.md, "Who may
 *    write what").
 *  - The live feed (sb_pg_wait): LISTEN on "libcase.<schema>", which the
 *    schema's statement trigger on the journal notifies in the transaction that
 *    appends, so a waiting program wakes when another one commits.
 *  - Named outbox consumers on PostgreSQL (sb_pg_outbox_claim/_done).
 *
 * Everything here talks to the backend's connection (sb_pg_conn) inside the
 * backend's own transactions (ops->begin/commit/rollback), so the write lock
 * and the transaction state stay the backend's.
 */
#include "store_int.h"
#include "store_pg.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Errors and SQL helpers                                              */
/* ------------------------------------------------------------------ */

/* The code for a failed result: a refusal by privileges, RLS or the triggers
 * below (SQLSTATE 42501) is CASE_DENIED; a lock or serialization failure
 * CASE_BUSY; anything else CASE_IO. */
static int pg_code(PGconn *c, const PGresult *r) {
  if (PQstatus(c) != CONNECTION_OK) return CASE_IO;
  const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  if (!st) return CASE_IO;
  if (!strcmp(st, "42501")) return CASE_DENIED;
  if (!strcmp(st, "40001") || !strcmp(st, "40P01") || !strcmp(st, "55P03")) return CASE_BUSY;
  if (!strcmp(st, "23505")) return CASE_EXISTS;
  return CASE_IO;
}

/* Runs `sql` (with `n` text parameters); on failure sets the engine error
 * "store SCHEMA: WHAT: <server message>" and returns its code.  *out (may be
 * NULL) gets the result of a statement that returns rows. */
static int run(case_store *s, const char *what, const char *sql, int n, const char *const *params,
               PGresult **out) {
  PGconn *c = sb_pg_conn(s->db);
  if (out) *out = NULL;
  /* Without parameters, PQexec: it runs several statements in one string. */
  PGresult *r = n ? PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0) : PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    if (out) *out = r;
    else PQclear(r);
    return CASE_OK;
  }
  int rc = r ? pg_code(c, r) : CASE_NOMEM;
  const char *msg = r ? PQresultErrorMessage(r) : "out of memory";
  size_t len = strlen(msg);
  while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' ')) len--;
  eng_err(s->e, rc, "store %s: %s: %.*s", sb_pg_schema(s->db), what, (int)len, msg);
  PQclear(r);
  return rc;
}

/* `tmpl` with every @S@ replaced by `schema` (a quoted identifier) and every
 * @O@ by `owner` (a quoted literal); malloc'd. */
static char *subst(const char *tmpl, const char *schema, const char *owner) {
  size_t n = 0, ls = strlen(schema), lo = owner ? strlen(owner) : 0;
  for (const char *p = tmpl; *p; p++) {
    if (!strncmp(p, "@S@", 3)) n += ls, p += 2;
    else if (!strncmp(p, "@O@", 3)) n += lo, p += 2;
    else n++;
  }
  char *out = malloc(n + 1), *q = out;
  if (!out) return NULL;
  for (const char *p = tmpl; *p; p++) {
    if (!strncmp(p, "@S@", 3)) memcpy(q, schema, ls), q += ls, p += 2;
    else if (!strncmp(p, "@O@", 3)) memcpy(q, owner, lo), q += lo, p += 2;
    else *q++ = *p;
  }
  *q = '\0';
  return out;
}

/* The schema name as a quoted identifier (malloc'd by libpq: PQfreemem). */
static char *schema_ident(case_store *s) {
  return PQescapeIdentifier(sb_pg_conn(s->db), sb_pg_schema(s->db), strlen(sb_pg_schema(s->db)));
}

static int pg_only(case_store *s, const char *fn) {
  if (!sb_pg_is(s->ops))
    return eng_err(s->e, CASE_INVALID,
                   "%s: grants are PostgreSQL-only: an SQLite store is one file, and who may "
                   "write it is the file's mode (chmod/chown); give --store postgresql://...",
                   fn);
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* Grants and row-level security (point 4)                             */
/* ------------------------------------------------------------------ */

/*
 * Installed once by the owner (idempotent; every call of case_store_grant()
 * runs it again, so a store migrated since gets the rules for its new
 * tables).  @S@ is the schema, @O@ the owner: the triggers skip the owner,
 * who loads definitions, copies stores and migrates them.
 *
 * What a login may do is said in include/libcase/store.h (case_store_grant)
 * and docs/store.md; the rules key on the journal only, so they hold for the
 * case row of schema 8 (updated on every fire) and of schema 10 (fixed at
 * creation but for the profile pin).
 */
static const char SECURE_SQL[] =
    /* `grants` itself is part of the schema (store_pg.c, migration 10). */
    "REVOKE ALL ON @S@.grants FROM PUBLIC;\n"
    /* The session's login (session_user: SET ROLE does not change it) may act
     * as the role.  SECURITY DEFINER: the login cannot read `grants`. */
    "CREATE OR REPLACE FUNCTION @S@.may_act(p_role text) RETURNS boolean"
    "  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog AS"
    "  $$BEGIN RETURN EXISTS (SELECT 1 FROM @S@.grants WHERE login = session_user"
    "                         AND role = p_role); END$$;\n"
    /* A row's actor and role: a role mapped to the login, or no role for the
     * store's own rows (timers, mail between cases), which no login may sign
     * with a role.  (PL/pgSQL, not SQL: a SQL function with a SET clause is
     * planned again at every call; these run for every row a fire writes.) */
    "CREATE OR REPLACE FUNCTION @S@.may_write(p_role text, p_actor text) RETURNS boolean"
    "  LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS"
    "  $$BEGIN IF p_role IS NULL THEN"
    "    RETURN coalesce(p_actor = 'timer' OR p_actor LIKE '#\\_scxml\\_%', false); END IF;"
    "  RETURN @S@.may_act(p_role) AND p_actor IS DISTINCT FROM 'timer'"
    "    AND coalesce(p_actor NOT LIKE '#\\_scxml\\_%', true); END$$;\n"
    /* A row version this transaction wrote (in a savepoint too): a visible
     * version whose xmin is still in progress can only be our own.  xmin is a
     * 32-bit xid: its epoch is the current transaction's (or the next one). */
    "CREATE OR REPLACE FUNCTION @S@.own_xid(x xid) RETURNS boolean"
    "  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS"
    "  $$DECLARE c bigint := pg_current_xact_id()::text::bigint; v bigint := x::text::bigint;"
    "  BEGIN"
    "    IF v < (c & 4294967295) - 2147483648 THEN v := v + 4294967296; END IF;"
    "    RETURN pg_xact_status((((c >> 32) << 32) + v)::text::xid8) = 'in progress';"
    "  END$$;\n"
    /* The case's latest journal row was appended by this transaction. */
    "CREATE OR REPLACE FUNCTION @S@.moved_here(p_case text) RETURNS boolean"
    "  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS"
    "  $$DECLARE x xid;"
    "  BEGIN"
    "    SELECT j.xmin INTO x FROM @S@.journal j WHERE j.case_id = p_case"
    "      ORDER BY j.revision DESC LIMIT 1;"
    "    RETURN x IS NOT NULL AND @S@.own_xid(x);"
    "  END$$;\n"
    /* journal: each row follows its case's previous one. */
    "CREATE OR REPLACE FUNCTION @S@.journal_check() RETURNS trigger"
    "  LANGUAGE plpgsql SET search_path = pg_catalog AS $$\n"
    "BEGIN\n"
    "  IF NEW.revision = 0 THEN\n"
    "    IF NEW.prev_hash <> '' THEN\n"
    "      RAISE EXCEPTION 'libcase: journal row of case % revision 0 has a prev_hash: refused for login %',\n"
    "        NEW.case_id, session_user USING ERRCODE = 'insufficient_privilege';\n"
    "    END IF;\n"
    "  ELSIF NOT EXISTS (SELECT 1 FROM @S@.journal j WHERE j.case_id = NEW.case_id\n"
    "                    AND j.revision = NEW.revision - 1 AND j.hash = NEW.prev_hash) THEN\n"
    "    RAISE EXCEPTION 'libcase: journal row of case % revision % does not follow revision % "
    "(no such row, or its hash is not the prev_hash): refused for login %',\n"
    "      NEW.case_id, NEW.revision, NEW.revision - 1, session_user\n"
    "      USING ERRCODE = 'insufficient_privilege';\n"
    "  END IF;\n"
    /* No row more than the library's future limit (CASE_STORE_FUTURE_LIMIT, a
     * day) after the server's clock: a login that lifts the limit (casectl
     * --allow-future, or a host that skips the library) would otherwise fire
     * other agencies' terms early under the store's own actor "timer". */
    "  IF NEW.time > extract(epoch FROM statement_timestamp())::bigint + 86400 THEN\n"
    "    RAISE EXCEPTION 'libcase: journal row of case % revision % is dated % s after the server''s "
    "clock, more than a day: refused for login %',\n"
    "      NEW.case_id, NEW.revision, NEW.time - extract(epoch FROM statement_timestamp())::bigint,\n"
    "      session_user USING ERRCODE = 'insufficient_privilege';\n"
    "  END IF;\n"
    "  RETURN NEW;\n"
    "END $$;\n"
    /* cases: created with its first journal row, changed only in the
     * transaction that appended the case's latest row, and then only in the
     * columns that follow the journal (schema 8: revision, configuration, done,
     * snapshot, last_hash, updated; both: profile_version), with last_hash the
     * hash of the row of that revision. */
    "CREATE OR REPLACE FUNCTION @S@.case_check() RETURNS trigger"
    "  LANGUAGE plpgsql SET search_path = pg_catalog AS $$\n"
    "DECLARE n jsonb := to_jsonb(NEW);\n"
    "  moving text[] := ARRAY['revision','configuration','done','snapshot','last_hash','updated',"
    "'profile_version'];\n"
    "BEGIN\n"
    "  IF TG_OP = 'UPDATE' AND (n - moving) IS DISTINCT FROM (to_jsonb(OLD) - moving) THEN\n"
    "    RAISE EXCEPTION 'libcase: case %: only the columns that follow its journal may change: "
    "refused for login %', OLD.id, session_user USING ERRCODE = 'insufficient_privilege';\n"
    "  END IF;\n"
    "  IF NOT @S@.moved_here(NEW.id) THEN\n"
    "    RAISE EXCEPTION 'libcase: case %: a case row is written only with a journal row of the case "
    "in the same transaction: refused for login %', NEW.id, session_user\n"
    "      USING ERRCODE = 'insufficient_privilege';\n"
    "  END IF;\n"
    "  IF n ? 'last_hash' AND NOT EXISTS (SELECT 1 FROM @S@.journal j WHERE j.case_id = NEW.id\n"
    "      AND j.revision = (n->>'revision')::bigint AND j.hash = n->>'last_hash') THEN\n"
    "    RAISE EXCEPTION 'libcase: case %: no journal row of revision % with its last_hash: "
    "refused for login %', NEW.id, n->>'revision', session_user\n"
    "      USING ERRCODE = 'insufficient_privilege';\n"
    "  END IF;\n"
    "  RETURN NEW;\n"
    "END $$;\n"
    /* timers, outbox, idempotency: only for a case this transaction moved on. */
    "CREATE OR REPLACE FUNCTION @S@.touch_check() RETURNS trigger"
    "  LANGUAGE plpgsql SET search_path = pg_catalog AS $$\n"
    "DECLARE id text;\n"
    "BEGIN\n"
    "  IF TG_OP = 'DELETE' THEN id := OLD.case_id; ELSE id := NEW.case_id; END IF;\n"
    "  IF NOT @S@.moved_here(id) THEN\n"
    "    RAISE EXCEPTION 'libcase: % on %: case % was not moved on by this transaction (its journal "
    "row comes first): refused for login %', TG_OP, TG_TABLE_NAME, id, session_user\n"
    "      USING ERRCODE = 'insufficient_privilege';\n"
    "  END IF;\n"
    "  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;\n"
    "  RETURN NEW;\n"
    "END $$;\n"
    "ALTER TABLE @S@.journal ENABLE ROW LEVEL SECURITY;\n"
    "DROP POLICY IF EXISTS libcase_read ON @S@.journal;\n"
    "CREATE POLICY libcase_read ON @S@.journal FOR SELECT USING (true);\n"
    "DROP POLICY IF EXISTS libcase_append ON @S@.journal;\n"
    "CREATE POLICY libcase_append ON @S@.journal FOR INSERT WITH CHECK (@S@.may_write(role, actor));\n"
    "ALTER TABLE @S@.refused ENABLE ROW LEVEL SECURITY;\n"
    "DROP POLICY IF EXISTS libcase_read ON @S@.refused;\n"
    "CREATE POLICY libcase_read ON @S@.refused FOR SELECT USING (true);\n"
    "DROP POLICY IF EXISTS libcase_append ON @S@.refused;\n"
    "CREATE POLICY libcase_append ON @S@.refused FOR INSERT"
    "  WITH CHECK (role IS NULL OR @S@.may_act(role));\n"
    "DROP TRIGGER IF EXISTS libcase_chain ON @S@.journal;\n"
    "CREATE TRIGGER libcase_chain BEFORE INSERT ON @S@.journal FOR EACH ROW"
    "  WHEN (current_user <> @O@) EXECUTE FUNCTION @S@.journal_check();\n"
    "DROP TRIGGER IF EXISTS libcase_chain ON @S@.cases;\n"
    "CREATE TRIGGER libcase_chain BEFORE INSERT OR UPDATE ON @S@.cases FOR EACH ROW"
    "  WHEN (current_user <> @O@) EXECUTE FUNCTION @S@.case_check();\n"
    "DROP TRIGGER IF EXISTS libcase_touch ON @S@.timers;\n"
    "CREATE TRIGGER libcase_touch BEFORE INSERT OR UPDATE OR DELETE ON @S@.timers FOR EACH ROW"
    "  WHEN (current_user <> @O@) EXECUTE FUNCTION @S@.touch_check();\n"
    "DROP TRIGGER IF EXISTS libcase_touch ON @S@.outbox;\n"
    "CREATE TRIGGER libcase_touch BEFORE INSERT ON @S@.outbox FOR EACH ROW"
    "  WHEN (current_user <> @O@) EXECUTE FUNCTION @S@.touch_check();\n"
    "DROP TRIGGER IF EXISTS libcase_touch ON @S@.idempotency;\n"
    "CREATE TRIGGER libcase_touch BEFORE INSERT ON @S@.idempotency FOR EACH ROW"
    "  WHEN (current_user <> @O@) EXECUTE FUNCTION @S@.touch_check();\n";

/* Tables a login may write, and how; the others (and every view) it may only
 * read, except these it may not even read. */
static const char *const HIDDEN[] = {"grants", "tokens", NULL};
static const struct {
  const char *table, *privs;
} WRITES[] = {
    {"journal", "INSERT"},
    {"cases", "INSERT, UPDATE"},
    {"timers", "INSERT, UPDATE, DELETE"},
    {"outbox", "UPDATE (delivered)"},
    {"outbox", "INSERT"},
    {"idempotency", "INSERT"},
    {"refused", "INSERT"},
    {"outbox_consumers", "INSERT, UPDATE"},
    {"outbox_claims", "INSERT, UPDATE, DELETE"},
};

static int check_role_name(case_store *s, const char *what, const char *v, size_t max) {
  size_t n = strlen(v), at = 0;
  if (n == 0 || n > max)
    return eng_err(s->e, CASE_INVALID, "%s '%s': %zu bytes (1 to %zu)", what, v, n, max);
  if (utf8_problem(v, &at))
    return eng_err(s->e, CASE_INVALID, "%s: byte %zu (0x%02X) is not valid UTF-8", what, at + 1,
                   (unsigned)(unsigned char)v[at]);
  for (const unsigned char *p = (const unsigned char *)v; *p; p++)
    if (*p < 0x20 || *p == 0x7f)
      return eng_err(s->e, CASE_INVALID, "%s: byte %zu is a control character", what,
                     (size_t)(p - (const unsigned char *)v) + 1);
  return CASE_OK;
}

/* CASE_OK when the connection's login owns the store's schema (or is a
 * superuser); *owner (malloc'd) gets the owner's name. */
static int owner_check(case_store *s, const char *fn, char **owner) {
  *owner = NULL;
  const char *p[1] = {sb_pg_schema(s->db)};
  PGresult *r;
  int rc = run(s, fn,
               "SELECT n.nspowner::regrole::text, current_user::text,"
               " pg_has_role(current_user, n.nspowner, 'USAGE')"
               " FROM pg_namespace n WHERE n.nspname = $1",
               1, p, &r);
  if (rc != CASE_OK) return rc;
  if (PQntuples(r) != 1) {
    PQclear(r);
    return eng_err(s->e, CASE_NOTFOUND, "store %s: %s: the schema does not exist", p[0], fn);
  }
  int ok = !strcmp(PQgetvalue(r, 0, 2), "t");
  if (!ok)
    rc = eng_err(s->e, CASE_DENIED,
                 "store %s: %s: only the schema's owner (%s) may change its grants; connected as %s",
                 p[0], fn, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
  else if (!(*owner = strdup(PQgetvalue(r, 0, 0))))
    rc = st_nomem(s->e);
  PQclear(r);
  return rc;
}

/* Installs the rules (SECURE_SQL) with the owner `owner`. */
static int secure(case_store *s, const char *owner) {
  PGconn *c = sb_pg_conn(s->db);
  char *sch = schema_ident(s);
  char *lit = PQescapeLiteral(c, owner, strlen(owner));
  char *own = lit ? malloc(strlen(lit) + 8) : NULL;
  if (own) snprintf(own, strlen(lit) + 8, "%s::name", lit);
  char *sql = sch && own ? subst(SECURE_SQL, sch, own) : NULL;
  int rc;
  if (!sql) {
    rc = st_nomem(s->e);
  } else {
    /* The notices of DROP ... IF EXISTS are noise here. */
    PQclear(PQexec(c, "SET LOCAL client_min_messages TO warning"));
    rc = run(s, "install the grant rules", sql, 0, NULL, NULL);
  }
  free(sql);
  free(own);
  PQfreemem(lit);
  PQfreemem(sch);
  return rc;
}

/* Gives `login` (a quoted identifier) the privileges of a mapped login on
 * every table that exists now. */
static int give(case_store *s, const char *login) {
  char *sch = schema_ident(s);
  if (!sch) return st_nomem(s->e);
  const char *p[1] = {sb_pg_schema(s->db)};
  PGresult *r;
  int rc = run(s, "list the tables",
               "SELECT c.relname::text, c.relkind::text FROM pg_class c JOIN pg_namespace n"
               " ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r','v','p','S')"
               " ORDER BY 1",
               1, p, &r);
  char sql[1024];
  if (rc == CASE_OK) {
    snprintf(sql, sizeof sql, "GRANT USAGE ON SCHEMA %s TO %s", sch, login);
    rc = run(s, "grant", sql, 0, NULL, NULL);
  }
  for (int i = 0; rc == CASE_OK && i < PQntuples(r); i++) {
    const char *t = PQgetvalue(r, i, 0);
    int hidden = 0;
    for (int h = 0; HIDDEN[h]; h++) hidden |= !strcmp(t, HIDDEN[h]);
    if (hidden || !strncmp(t, "tokens_", 7)) continue; /* a token sequence too */
    PGconn *c = sb_pg_conn(s->db);
    char *tq = PQescapeIdentifier(c, t, strlen(t));
    if (!tq) {
      rc = st_nomem(s->e);
      break;
    }
    if (PQgetvalue(r, i, 1)[0] == 'S') {
      snprintf(sql, sizeof sql, "GRANT USAGE ON SEQUENCE %s.%s TO %s", sch, tq, login);
      rc = run(s, "grant", sql, 0, NULL, NULL);
    } else {
      snprintf(sql, sizeof sql, "GRANT SELECT ON %s.%s TO %s", sch, tq, login);
      rc = run(s, "grant", sql, 0, NULL, NULL);
      for (size_t w = 0; rc == CASE_OK && w < sizeof WRITES / sizeof WRITES[0]; w++) {
        if (strcmp(WRITES[w].table, t) != 0) continue;
        snprintf(sql, sizeof sql, "GRANT %s ON %s.%s TO %s", WRITES[w].privs, sch, tq, login);
        rc = run(s, "grant", sql, 0, NULL, NULL);
      }
    }
    PQfreemem(tq);
  }
  PQclear(r);
  PQfreemem(sch);
  return rc;
}

/* Takes every privilege on the schema from `login` (a quoted identifier). */
static int take(case_store *s, const char *login) {
  char *sch = schema_ident(s);
  if (!sch) return st_nomem(s->e);
  char sql[1024];
  snprintf(sql, sizeof sql,
           "REVOKE ALL ON ALL TABLES IN SCHEMA %s FROM %s;"
           "REVOKE ALL ON ALL SEQUENCES IN SCHEMA %s FROM %s;"
           "REVOKE ALL ON SCHEMA %s FROM %s",
           sch, login, sch, login, sch, login);
  int rc = run(s, "revoke", sql, 0, NULL, NULL);
  PQfreemem(sch);
  return rc;
}

/* The common frame of grant and revoke: checks, the store's write
 * transaction, the owner, the rules installed; then `op` (0 grant, 1 revoke). */
static int change_grant(case_store *s, const char *role, const char *login, int op) {
  const char *fn = op ? "case_store_revoke" : "case_store_grant";
  if (!s) return CASE_MISUSE;
  if (!role || !login) return eng_err(s->e, CASE_MISUSE, "%s: NULL argument", fn);
  int rc = pg_only(s, fn);
  if (rc != CASE_OK) return rc;
  if (s->readonly) return eng_err(s->e, CASE_MISUSE, "%s: the store was opened read-only", fn);
  if (s->batch) return eng_err(s->e, CASE_MISUSE, "%s: not inside a batch", fn);
  if ((rc = check_role_name(s, "role", role, 64)) != CASE_OK) return rc;
  if ((rc = check_role_name(s, "login", login, 63)) != CASE_OK) return rc;
  char *owner = NULL, *lq = NULL;
  rc = s->ops->begin(s->db, 1);
  if (rc != CASE_OK) {
    st_berr(s, rc);
    return rc;
  }
  rc = owner_check(s, fn, &owner);
  const char *p[3] = {login, role, NULL};
  PGresult *r = NULL;
  if (rc == CASE_OK) {
    rc = run(s, fn, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", 1, p, &r);
    if (rc == CASE_OK && PQntuples(r) == 0 && !op)
      rc = eng_err(s->e, CASE_NOTFOUND,
                   "store %s: %s: there is no PostgreSQL role '%s': the database administrator "
                   "creates the login first (CREATE ROLE %s LOGIN ...)",
                   sb_pg_schema(s->db), fn, login, login);
    PQclear(r);
    r = NULL;
  }
  if (rc == CASE_OK && !(lq = PQescapeIdentifier(sb_pg_conn(s->db), login, strlen(login))))
    rc = st_nomem(s->e);
  if (rc == CASE_OK) rc = secure(s, owner);
  if (rc == CASE_OK && !op) {
    char now[32];
    snprintf(now, sizeof now, "%lld", (long long)case_store_clock(s));
    p[2] = now;
    char *sch = schema_ident(s);
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO %s.grants(login, role, granted) VALUES($1, $2, $3)"
             " ON CONFLICT (login, role) DO NOTHING",
             sch ? sch : "libcase");
    PQfreemem(sch);
    rc = run(s, fn, sql, 3, p, NULL);
    if (rc == CASE_OK) rc = give(s, lq);
  } else if (rc == CASE_OK) {
    char *sch = schema_ident(s);
    char sql[512];
    snprintf(sql, sizeof sql, "DELETE FROM %s.grants WHERE login = $1 AND role = $2",
             sch ? sch : "libcase");
    rc = run(s, fn, sql, 2, p, &r);
    if (rc == CASE_OK && atoi(PQcmdTuples(r)) == 0)
      rc = eng_err(s->e, CASE_NOTFOUND, "store %s: %s: login '%s' is not mapped to role '%s'",
                   sb_pg_schema(s->db), fn, login, role);
    PQclear(r);
    r = NULL;
    if (rc == CASE_OK) {
      snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.grants WHERE login = $1",
               sch ? sch : "libcase");
      rc = run(s, fn, sql, 1, p, &r);
      if (rc == CASE_OK && atoi(PQgetvalue(r, 0, 0)) == 0) rc = take(s, lq);
      PQclear(r);
    }
    PQfreemem(sch);
  }
  if (rc == CASE_OK) {
    rc = s->ops->commit(s->db);
    if (rc != CASE_OK) st_berr(s, rc);
  }
  if (rc != CASE_OK) s->ops->rollback(s->db);
  PQfreemem(lq);
  free(owner);
  return rc == CASE_OK ? eng_ok(s->e) : rc;
}

int case_store_grant(case_store *s, const char *role, const char *login) {
  return change_grant(s, role, login, 0);
}

int case_store_revoke(case_store *s, const char *role, const char *login) {
  return change_grant(s, role, login, 1);
}

int case_store_grants(case_store *s, char **json) {
  if (json) *json = NULL;
  if (!s) return CASE_MISUSE;
  if (!json) return eng_err(s->e, CASE_MISUSE, "case_store_grants: NULL json");
  int rc = pg_only(s, "case_store_grants");
  if (rc != CASE_OK) return rc;
  char *sch = schema_ident(s);
  if (!sch) return st_nomem(s->e);
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT login, role, granted FROM %s.grants ORDER BY login, role",
           sch);
  PGresult *r = NULL;
  rc = run(s, "case_store_grants", sql, 0, NULL, &r);
  PQfreemem(sch);
  if (rc != CASE_OK) return rc;
  json_t *a = json_array();
  for (int i = 0; a && r && i < PQntuples(r); i++) {
    json_t *o = json_pack("{s:s, s:s, s:I}", "login", PQgetvalue(r, i, 0), "role",
                          PQgetvalue(r, i, 1), "granted",
                          (json_int_t)strtoll(PQgetvalue(r, i, 2), NULL, 10));
    if (!o || json_array_append_new(a, o) != 0) {
      json_decref(a);
      a = NULL;
    }
  }
  PQclear(r);
  *json = a ? json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(a);
  return *json ? eng_ok(s->e) : st_nomem(s->e);
}

/* ------------------------------------------------------------------ */
/* The live feed (point 3)                                             */
/* ------------------------------------------------------------------ */

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The journal's last seq on the backend's connection (outside a transaction). */
static int tail(sb_db *db, int64_t *last, char *err, size_t errlen) {
  PGresult *r = PQexec(sb_pg_conn(db), "SELECT coalesce(max(seq), 0) FROM journal");
  int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  if (ok) *last = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  else snprintf(err, errlen, "%s", PQerrorMessage(sb_pg_conn(db)));
  PQclear(r);
  return ok ? CASE_OK : CASE_IO;
}

static int wait_listening(sb_db *db, int64_t after, int timeout_ms, int *ready) {
  *ready = 0;
  char err[512] = "";
  int64_t end = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
  for (;;) {
    PGconn *c = sb_pg_conn(db);
    if (PQstatus(c) != CONNECTION_OK && sb_pg_reconnect(db) != CASE_OK) {
      if (timeout_ms >= 0 && now_ms() >= end) return sb_pg_fail(db, CASE_IO, sb_pg_errmsg(db));
      struct timespec nap = {0, 100 * 1000000L};
      nanosleep(&nap, NULL);
      continue;
    }
    c = sb_pg_conn(db);
    /* LISTEN first, then look: a commit between the two is not missed.
     * LISTEN on a channel already listened to is a no-op. */
    char chan[128];
    snprintf(chan, sizeof chan, "libcase.%s", sb_pg_schema(db));
    char *q = PQescapeIdentifier(c, chan, strlen(chan));
    if (!q) return sb_pg_fail(db, CASE_NOMEM, "out of memory");
    char sql[200];
    snprintf(sql, sizeof sql, "LISTEN %s", q);
    PQfreemem(q);
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) snprintf(err, sizeof err, "%s", PQerrorMessage(c));
    PQclear(r);
    int64_t last = 0;
    if (ok && tail(db, &last, err, sizeof err) != CASE_OK) ok = 0;
    if (!ok) {
      if (PQstatus(c) != CONNECTION_OK) continue; /* lost: reconnect above */
      return sb_pg_fail(db, CASE_IO, err);
    }
    PGnotify *n;
    while ((n = PQnotifies(c)) != NULL) PQfreemem(n); /* seen by the look above */
    if (last > after) {
      *ready = 1;
      return CASE_OK;
    }
    /* Sleep on the socket until a notification (or the end). */
    for (;;) {
      int64_t left = end == INT64_MAX ? 1000 : end - now_ms();
      if (left <= 0) return CASE_OK;
      struct pollfd pfd = {PQsocket(c), POLLIN, 0};
      int pr = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
      if (pr < 0 && errno != EINTR) return sb_pg_fail(db, CASE_IO, strerror(errno));
      if (pr <= 0) continue;
      if (!PQconsumeInput(c)) break; /* lost: the outer loop reconnects */
      int got = 0;
      while ((n = PQnotifies(c)) != NULL) {
        got = 1;
        PQfreemem(n);
      }
      if (got) break; /* look again */
    }
  }
}

/* Listens only while it waits: between waits nothing queues up on the
 * connection (a session is sent its own commits' notifications too), and a
 * commit between two waits is still seen, each wait reading the tail after
 * its LISTEN. */
int sb_pg_wait(sb_db *db, int64_t after, int timeout_ms, int *ready) {
  int rc = wait_listening(db, after, timeout_ms, ready);
  PGconn *c = sb_pg_conn(db);
  if (PQstatus(c) == CONNECTION_OK) {
    PQclear(PQexec(c, "UNLISTEN *"));
    PGnotify *n;
    while ((n = PQnotifies(c)) != NULL) PQfreemem(n);
  }
  return rc;
}

/* ------------------------------------------------------------------ */
/* Named outbox consumers on PostgreSQL                                */
/* ------------------------------------------------------------------ */

/* As store_sqlite.c's, in one statement each: under the store's write lock
 * (begin(write=1) holds it) no other writer adds or claims meanwhile. */
int sb_pg_outbox_claim(sb_db *db, const char *consumer, int limit, int64_t now,
                       int64_t lease_until, sb_outbox_fn fn, void *ud) {
  PGconn *c = sb_pg_conn(db);
  char a[32], b[32], l[16];
  snprintf(a, sizeof a, "%lld", (long long)now);
  snprintf(b, sizeof b, "%lld", (long long)lease_until);
  snprintf(l, sizeof l, "%d", limit);
  const char *p[4] = {consumer, a, l, b};
  PGresult *r = PQexecParams(c,
                             "INSERT INTO outbox_consumers(name, upto, created) VALUES($1, 0, $2)"
                             " ON CONFLICT (name) DO NOTHING",
                             2, NULL, p, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    int rc = pg_code(c, r);
    PQclear(r);
    return sb_pg_fail(db, rc, PQerrorMessage(c));
  }
  PQclear(r);
  r = PQexecParams(
      c,
      "WITH pick AS (SELECT o.id FROM outbox o, outbox_consumers k WHERE k.name = $1"
      "   AND o.id > k.upto AND NOT EXISTS (SELECT 1 FROM outbox_claims d WHERE d.consumer = $1"
      "   AND d.outbox_id = o.id AND (d.done IS NOT NULL OR d.lease_until > $2::bigint))"
      "   ORDER BY o.id LIMIT $3::int),"
      " lease AS (INSERT INTO outbox_claims(consumer, outbox_id, lease_until, done)"
      "   SELECT $1, id, $4::bigint, NULL FROM pick ON CONFLICT (consumer, outbox_id)"
      "   DO UPDATE SET lease_until = excluded.lease_until RETURNING outbox_id)"
      " SELECT o.id, o.case_id, o.seq, o.name, o.payload, o.created FROM outbox o"
      " JOIN lease ON lease.outbox_id = o.id ORDER BY o.id",
      4, NULL, p, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    int rc = pg_code(c, r);
    PQclear(r);
    return sb_pg_fail(db, rc, PQerrorMessage(c));
  }
  int rc = CASE_OK;
  for (int i = 0; rc == CASE_OK && i < PQntuples(r); i++) {
    sb_outbox_row o = {strtoll(PQgetvalue(r, i, 0), NULL, 10), PQgetvalue(r, i, 1),
                       strtoll(PQgetvalue(r, i, 2), NULL, 10), PQgetvalue(r, i, 3),
                       PQgetvalue(r, i, 4), strtoll(PQgetvalue(r, i, 5), NULL, 10), 0};
    rc = fn(ud, &o);
  }
  PQclear(r);
  return rc;
}

int sb_pg_outbox_done(sb_db *db, const char *consumer, int64_t id, int64_t at) {
  PGconn *c = sb_pg_conn(db);
  char i[32], a[32];
  snprintf(i, sizeof i, "%lld", (long long)id);
  snprintf(a, sizeof a, "%lld", (long long)at);
  static const struct {
    const char *sql;
    int n;
    int p[3]; /* 0 consumer, 1 id, 2 at */
  } steps[] = {
      {"SELECT 1 FROM outbox WHERE id = $1::bigint", 1, {1}},
      {"INSERT INTO outbox_consumers(name, upto, created) VALUES($1, 0, $2::bigint)"
       " ON CONFLICT (name) DO NOTHING", 2, {0, 2}},
      {"INSERT INTO outbox_claims(consumer, outbox_id, lease_until, done)"
       " SELECT $1, $2::bigint, $3::bigint, $3::bigint FROM outbox_consumers"
       " WHERE name = $1 AND upto < $2::bigint"
       " ON CONFLICT (consumer, outbox_id) DO UPDATE SET done = coalesce(outbox_claims.done,"
       " excluded.done)", 3, {0, 1, 2}},
      {"UPDATE outbox_consumers k SET upto = coalesce((SELECT min(o.id) - 1 FROM outbox o"
       " WHERE o.id > k.upto AND NOT EXISTS (SELECT 1 FROM outbox_claims d WHERE d.consumer = $1"
       " AND d.outbox_id = o.id AND d.done IS NOT NULL)), (SELECT max(id) FROM outbox), k.upto)"
       " WHERE k.name = $1", 1, {0}},
      {"DELETE FROM outbox_claims WHERE consumer = $1 AND outbox_id <= (SELECT upto FROM"
       " outbox_consumers WHERE name = $1)", 1, {0}},
  };
  const char *all[3] = {consumer, i, a};
  for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
    const char *p[3];
    for (int j = 0; j < steps[k].n; j++) p[j] = all[steps[k].p[j]];
    PGresult *r = PQexecParams(c, steps[k].sql, steps[k].n, NULL, p, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      int rc = pg_code(c, r);
      PQclear(r);
      return sb_pg_fail(db, rc, PQerrorMessage(c));
    }
    int none = k == 0 && PQntuples(r) == 0;
    PQclear(r);
    if (none) {
      char msg[64];
      snprintf(msg, sizeof msg, "store: no outbox row %lld", (long long)id);
      return sb_pg_fail(db, CASE_NOTFOUND, msg);
    }
  }
  return CASE_OK;
}
