/*
 * The tampering catalogue (issue 15 §7, issue 12 §10): every edit in
 * tests/data/tamper/catalogue.txt is applied with the sqlite3 library to a copy
 * of one populated store, and verify must find it, without a checkpoint and
 * with one signed before the edit, as docs/store.md's threat model says.
 * Also: checkpoints, their consistency proofs and their check without a store.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "libcase/libcase.h"
#include "store_schema.h"
#include "libcase/store.h"
#include "store_int.h"

#define T0 INT64_C(1772442000)
#define DUE_AFTER INT64_C(1772665200)

static const char *ZAAK =
    "workflow: zaak\n"
    "version: 1\n"
    "roles: [IND, COA]\n"
    "data:\n"
    "  n: {type: integer, default: 0}\n"
    "  note: {type: string}\n"
    "initial: open\n"
    "states:\n"
    "  open:\n"
    "    after:\n"
    "      - {delay: 2 days, target: wacht}\n"
    "    on:\n"
    "      tel: {roles: [IND], actions: [\"case.n = case.n + 1\", \"emit('geteld', {n = case.n})\"]}\n"
    "      notitie: {actions: [case.note = event.data.tekst]}\n"
    "      sluit: {guard: case.n > 0, target: dicht}\n"
    "      nee: {roles: [COA], target: dicht}\n"
    "  wacht:\n"
    "    deadlines:\n"
    "      termijn: {after: 8 weeks, clock: atw, source: Awb art. 4:13, on_expiry: verlopen}\n"
    "    on:\n"
    "      verlopen: te_laat\n"
    "      tel: {actions: [case.n = case.n + 1]}\n"
    "  te_laat: {}\n"
    "  dicht: {final: true}\n";

typedef struct world {
  char dir[128];
  char master[200], copy[200], key[200], pub[200];
  char *checkpoint; /* signed after populating */
  char *pubpem;
} world;

static world W;

static void die_sql(sqlite3 *db, const char *what) {
  fail_msg("%s: %s", what, sqlite3_errmsg(db));
}

static char *slurp(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
  p[n] = '\0';
  fclose(fp);
  return p;
}

static void copy_file(const char *from, const char *to) {
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  assert_non_null(a);
  assert_non_null(b);
  char buf[8192];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, a)) > 0) assert_int_equal(fwrite(buf, 1, n, b), n);
  fclose(a);
  assert_int_equal(fclose(b), 0);
}

static void remove_db(const char *path) {
  char p[300];
  unlink(path);
  snprintf(p, sizeof p, "%s-wal", path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", path);
  unlink(p);
}

static void fire(case_store *s, case_engine *e, const char *id, const char *ev, const char *payload,
                 const char *role, int64_t at, const char *key) {
  int rc = case_store_fire(s, id, ev, payload, "tester", role, at, -1, key, NULL);
  if (rc != CASE_OK) fail_msg("fire %s %s: %s", id, ev, case_errmsg(e));
}

/* The store every entry starts from (its seqs are listed in catalogue.txt). */
static void populate(void) {
  case_engine *e;
  case_store *s;
  const case_def *d;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  assert_int_equal(case_store_open(e, W.master, CASE_STORE_CREATE, &s), CASE_OK);
  assert_int_equal(case_def_load_string(e, ZAAK, strlen(ZAAK), "zaak.yaml", &d), CASE_OK);
  assert_int_equal(case_store_add_def(s, d), CASE_OK);
  assert_int_equal(case_store_create(s, d, "z1", NULL, NULL, "tester", "IND", T0, NULL), CASE_OK);
  assert_int_equal(case_store_create(s, d, "z2", NULL, NULL, "tester", "IND", T0, NULL), CASE_OK);
  fire(s, e, "z1", "tel", NULL, "IND", T0 + 60, NULL);
  assert_int_equal(case_store_create(s, d, "z3", NULL, "{\"n\":3}", "tester", "IND", T0, NULL),
                   CASE_OK);
  fire(s, e, "z2", "tel", NULL, "IND", T0 + 60, NULL);
  fire(s, e, "z1", "notitie", "{\"tekst\":\"hallo\"}", "COA", T0 + 120, NULL);
  assert_int_equal(case_store_create(s, d, "z4", NULL, NULL, "tester", "IND", T0, NULL), CASE_OK);
  fire(s, e, "z4", "tel", NULL, "IND", T0 + 60, "k-z4");
  assert_int_equal(case_store_fire(s, "z4", "nee", NULL, "tester", "IND", T0 + 90, -1, NULL, NULL),
                   CASE_DENIED);
  fire(s, e, "z2", "sluit", NULL, "IND", T0 + 180, NULL);
  fire(s, e, "z1", "tel", NULL, "IND", T0 + 180, NULL);
  /* The 2-day timer fires first (seq 11), then tel in wacht (seq 12). */
  fire(s, e, "z3", "tel", NULL, "IND", DUE_AFTER + 60, NULL);
  assert_int_equal(case_store_create(s, d, "last", NULL, NULL, "tester", "IND", T0, NULL),
                   CASE_OK);
  char *rep = NULL;
  int rc = case_store_verify(s, &rep);
  if (rc != CASE_OK) fail_msg("the populated store does not verify: %s", rep);
  assert_non_null(strstr(rep, "\"cases\":5,\"events\":13,\"tree\":{\"size\":13"));
  case_free(rep);
  /* A key pair for checkpoints, kept outside the store. */
  assert_int_equal(case_key_generate(e, W.key, W.pub), CASE_OK);
  struct stat st;
  assert_int_equal(stat(W.key, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(case_key_generate(e, W.key, NULL), CASE_EXISTS);
  rc = case_store_checkpoint(s, W.key, T0 + 3600, NULL, &W.checkpoint);
  if (rc != CASE_OK) fail_msg("checkpoint: %s", case_errmsg(e));
  case_store_close(s);
  case_engine_close(e);
  W.pubpem = slurp(W.pub);
  assert_non_null(W.pubpem);
}

static int setup_world(void **state) {
  (void)state;
  snprintf(W.dir, sizeof W.dir, "/tmp/test_tamper_%ld", (long)getpid());
  mkdir(W.dir, 0700);
  snprintf(W.master, sizeof W.master, "%s/master.db", W.dir);
  snprintf(W.copy, sizeof W.copy, "%s/copy.db", W.dir);
  snprintf(W.key, sizeof W.key, "%s/key.pem", W.dir);
  snprintf(W.pub, sizeof W.pub, "%s/pub.pem", W.dir);
  remove_db(W.master);
  unlink(W.key);
  unlink(W.pub);
  populate();
  return 0;
}

static int teardown_world(void **state) {
  (void)state;
  remove_db(W.master);
  remove_db(W.copy);
  unlink(W.key);
  unlink(W.pub);
  rmdir(W.dir);
  free(W.checkpoint);
  free(W.pubpem);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Edits                                                               */
/* ------------------------------------------------------------------ */

static void exec_on(const char *path, const char *sql) {
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) fail_msg("sql %s: %s", sql, err);
  sqlite3_close(db);
}

static char *col(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return t ? strdup((const char *)t) : NULL;
}

/* Recomputes a case's chain as docs/store.md says (with the library's own
 * serialisation, which the docs describe), and its case row's last_hash. */
static void rehash(const char *path, const char *case_id) {
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_stmt *st, *up;
  if (sqlite3_prepare_v2(db,
                         "SELECT seq,case_id,revision,event,payload,actor,role,time,"
                         "configuration,data FROM journal WHERE case_id=?1 ORDER BY revision",
                         -1, &st, NULL) != SQLITE_OK)
    die_sql(db, "prepare");
  assert_int_equal(sqlite3_prepare_v2(db, "UPDATE journal SET prev_hash=?2, hash=?3 WHERE seq=?1",
                                      -1, &up, NULL),
                   SQLITE_OK);
  sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
  char prev[65] = "";
  while (sqlite3_step(st) == SQLITE_ROW) {
    sb_journal_row r;
    memset(&r, 0, sizeof r);
    r.seq = sqlite3_column_int64(st, 0);
    r.case_id = col(st, 1);
    r.revision = sqlite3_column_int64(st, 2);
    r.event = col(st, 3);
    r.payload = col(st, 4);
    r.actor = col(st, 5);
    r.role = col(st, 6);
    r.time = sqlite3_column_int64(st, 7);
    r.configuration = col(st, 8);
    r.data = col(st, 9);
    r.prev_hash = prev;
    char h[65];
    assert_int_equal(st_row_hash(&r, h), CASE_OK);
    sqlite3_bind_int64(up, 1, r.seq);
    sqlite3_bind_text(up, 2, prev, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(up, 3, h, -1, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(up), SQLITE_DONE);
    sqlite3_reset(up);
    memcpy(prev, h, 65);
    free(r.case_id);
    free(r.event);
    free(r.payload);
    free(r.actor);
    free(r.role);
    free(r.configuration);
    free(r.data);
  }
  sqlite3_finalize(st);
  sqlite3_finalize(up);
  /* The case's last hash is its latest row's (schema 10): nothing more to write. */
  sqlite3_close(db);
}

/* Renumbers the journal to seq 1..n, and the seqs that name its rows. */
static void close_gaps(const char *path) {
  exec_on(path,
          "BEGIN;"
          "CREATE TEMP TABLE m AS SELECT seq AS old, row_number() OVER (ORDER BY seq) AS new "
          "FROM journal;"
          "UPDATE journal SET seq=-seq;"
          "UPDATE journal SET seq=(SELECT new FROM m WHERE old=-journal.seq);"
          "UPDATE outbox SET seq=(SELECT new FROM m WHERE old=outbox.seq);"
          "UPDATE idempotency SET seq=(SELECT new FROM m WHERE old=idempotency.seq);"
          "COMMIT;");
}

/* Every tree node recomputed from the rows: the store taken back to schema 5
 * and migrated, its id kept. */
static void rebuild_tree(const char *path) {
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='store_id'", -1, &st,
                                      NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  char *id = col(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  /* Back to schema 5 (schema 7's profile versions undone too, a case's pin kept
   * in the case row), so that opening migrates and fills the tree afresh. */
  exec_on(path, UNDO_SCHEMA_10
                "CREATE TABLE p6(name TEXT PRIMARY KEY, source TEXT NOT NULL, hash TEXT NOT NULL, "
                "file TEXT, added INTEGER NOT NULL);"
                "INSERT INTO p6 SELECT name,source,hash,file,added FROM profiles WHERE version=1;"
                "DROP TABLE profiles; ALTER TABLE p6 RENAME TO profiles;"
                "ALTER TABLE cases DROP COLUMN profile_version;"
                "ALTER TABLE cases DROP COLUMN profile_first;"
                "ALTER TABLE journal DROP COLUMN node; DROP TABLE meta; DROP INDEX outbox_case; "
                "PRAGMA user_version=5;");
  case_engine *e;
  case_store *s;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  int rc = case_store_open(e, path, 0, &s);
  if (rc != CASE_OK) fail_msg("rebuild: %s", case_errmsg(e));
  case_store_close(s);
  case_engine_close(e);
  char sql[200];
  snprintf(sql, sizeof sql, "UPDATE meta SET value='%s' WHERE key='store_id'", id);
  exec_on(path, sql);
  free(id);
}

static uint64_t rng_state;
static uint32_t rnd(void) {
  rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (uint32_t)(rng_state >> 33);
}

/* The file's logical content and SQLite's verdict on it. */
static char *dump(const char *path) {
  sqlite3 *db;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    return strdup("(no database)");
  }
  static const char *const q[] = {
      "SELECT quote(seq)||quote(case_id)||quote(revision)||quote(event)||quote(payload)||"
      "quote(actor)||quote(role)||quote(time)||quote(recorded)||quote(configuration)||"
      "quote(data)||quote(prev_hash)||quote(hash)||quote(node)||quote(done)||quote(state) "
      "FROM journal ORDER BY seq",
      "SELECT quote(id)||quote(workflow)||quote(version)||quote(hash)||quote(location)||"
      "quote(created)||quote(profile_version)||quote(profile_first) FROM cases ORDER BY id",
      "SELECT quote(case_id)||quote(timer_id)||quote(seq)||quote(kind)||quote(name)||quote(due)"
      "||quote(last_day)||quote(fired) FROM timers ORDER BY case_id, timer_id",
      "SELECT quote(id)||quote(case_id)||quote(seq)||quote(name)||quote(payload)||"
      "quote(created)||quote(delivered) FROM outbox ORDER BY id",
      "SELECT quote(key)||quote(case_id)||quote(seq) FROM idempotency ORDER BY key",
      "PRAGMA integrity_check",
  };
  size_t cap = 1 << 16, len = 0;
  char *out = malloc(cap);
  assert_non_null(out);
  out[0] = '\0';
  for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, q[i], -1, &st, NULL) != SQLITE_OK) {
      len += (size_t)snprintf(out + len, cap - len, "[error %zu]", i);
      continue;
    }
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
      const char *t = (const char *)sqlite3_column_text(st, 0);
      size_t n = t ? strlen(t) : 0;
      while (len + n + 16 > cap) {
        cap *= 2;
        out = realloc(out, cap);
        assert_non_null(out);
      }
      memcpy(out + len, t ? t : "", n);
      len += n;
      out[len++] = '\n';
      out[len] = '\0';
    }
    if (src != SQLITE_DONE) len += (size_t)snprintf(out + len, cap - len, "[error %d]", src);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

/* The pages of one b-tree, and the page size. */
static int pages_of(const char *path, const char *name, long *pages, int max, long *page_size) {
  sqlite3 *db;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT pageno FROM dbstat WHERE name=?1 ORDER BY pageno",
                                      -1, &st, NULL),
                   SQLITE_OK);
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int n = 0;
  while (sqlite3_step(st) == SQLITE_ROW && n < max) pages[n++] = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  *page_size = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  if (n == 0) fail_msg("no pages of %s", name);
  return n;
}

static void write_at(const char *path, long off, const unsigned char *bytes, size_t n) {
  FILE *fp = fopen(path, "r+b");
  assert_non_null(fp);
  assert_int_equal(fseek(fp, off, SEEK_SET), 0);
  assert_int_equal(fwrite(bytes, 1, n, fp), n);
  assert_int_equal(fclose(fp), 0);
}

static void read_at(const char *path, long off, unsigned char *bytes, size_t n) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  assert_int_equal(fseek(fp, off, SEEK_SET), 0);
  assert_int_equal(fread(bytes, 1, n, fp), n);
  fclose(fp);
}

/*
 * `n` random bytes somewhere among a b-tree's cells (between the start of a
 * page's cell content area and its end).  Bytes that land where nothing is
 * stored (a freed cell) change no row and are not tampering: such a try is
 * undone and another place is chosen, so that every entry changes something.
 */
static void corrupt(const char *path, const char *name, int n, uint64_t seed) {
  long pages[256], psize;
  int np = pages_of(path, name, pages, 256, &psize);
  char *before = dump(path);
  rng_state = seed;
  for (int attempt = 0; attempt < 50; attempt++) {
    long page = pages[rnd() % (uint32_t)np];
    long base = (page - 1) * psize, hdr = page == 1 ? 100 : 0;
    unsigned char h[8];
    read_at(path, base + hdr, h, 8);
    long content = (long)(h[5] << 8 | h[6]);
    if (content == 0) content = 65536;
    if (content < hdr + 8 || content >= psize) content = hdr + 8;
    if (psize - content < (long)n) continue; /* fewer stored bytes than n: another page */
    long off = base + content + (long)(rnd() % (uint32_t)(psize - content - n + 1));
    unsigned char old[64], bytes[64];
    read_at(path, off, old, (size_t)n);
    for (int i = 0; i < n; i++) bytes[i] = (unsigned char)rnd();
    write_at(path, off, bytes, (size_t)n);
    char *after = dump(path);
    int changed = strcmp(before, after) != 0;
    free(after);
    if (changed) {
      print_message("    %d byte(s) at %ld (page %ld of %s)\n", n, off, page, name);
      free(before);
      return;
    }
    write_at(path, off, old, (size_t)n);
  }
  free(before);
  fail_msg("no place among %s's cells changed anything", name);
}

static void overwrite_page(const char *path, const char *name, uint64_t seed) {
  long pages[256], psize;
  int np = pages_of(path, name, pages, 256, &psize);
  rng_state = seed;
  long page = pages[rnd() % (uint32_t)np];
  unsigned char *bytes = malloc((size_t)psize);
  assert_non_null(bytes);
  for (long i = 0; i < psize; i++) bytes[i] = (unsigned char)rnd();
  write_at(path, (page - 1) * psize, bytes, (size_t)psize);
  print_message("    page %ld of %s overwritten\n", page, name);
  free(bytes);
}

/* ------------------------------------------------------------------ */
/* The catalogue                                                       */
/* ------------------------------------------------------------------ */

typedef struct entry {
  char name[200];
  char steps[16][1024]; /* "sql: ...", "rehash: z1", ... in order */
  int nsteps;
  char expect[200], expect_cp[200];
  char where[8][300], where_cp[8][300];
  int nwhere, nwhere_cp;
  int line;
} entry;

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) s[--n] = '\0';
  return s;
}

static int read_catalogue(entry **out) {
  char path[512];
  snprintf(path, sizeof path, "%s/tamper/catalogue.txt", CASE_TEST_DATA);
  FILE *fp = fopen(path, "r");
  if (!fp) fail_msg("%s: %s", path, strerror(errno));
  entry *v = calloc(200, sizeof *v);
  assert_non_null(v);
  int n = -1, lineno = 0;
  char line[2048];
  while (fgets(line, sizeof line, fp)) {
    lineno++;
    char *l = trim(line);
    if (!*l || *l == '#') continue;
    if (strncmp(l, "== ", 3) == 0) {
      assert_true(++n < 200);
      snprintf(v[n].name, sizeof v[n].name, "%s", l + 3);
      v[n].line = lineno;
      continue;
    }
    if (n < 0) fail_msg("catalogue.txt:%d: a line before the first entry", lineno);
    entry *e = &v[n];
    if (strncmp(l, "expect: ", 8) == 0) snprintf(e->expect, sizeof e->expect, "%s", l + 8);
    else if (strncmp(l, "expect-cp: ", 11) == 0)
      snprintf(e->expect_cp, sizeof e->expect_cp, "%s", l + 11);
    else if (strncmp(l, "where: ", 7) == 0 && e->nwhere < 8)
      snprintf(e->where[e->nwhere++], sizeof e->where[0], "%s", l + 7);
    else if (strncmp(l, "where-cp: ", 10) == 0 && e->nwhere_cp < 8)
      snprintf(e->where_cp[e->nwhere_cp++], sizeof e->where_cp[0], "%s", l + 10);
    else if (e->nsteps < 16)
      snprintf(e->steps[e->nsteps++], sizeof e->steps[0], "%s", l);
    else
      fail_msg("catalogue.txt:%d: too many steps", lineno);
  }
  fclose(fp);
  *out = v;
  return n + 1;
}

static void apply(const entry *e, int index) {
  for (int i = 0; i < e->nsteps; i++) {
    const char *s = e->steps[i];
    char name[64];
    int k;
    if (strncmp(s, "sql: ", 5) == 0) exec_on(W.copy, s + 5);
    else if (strncmp(s, "rehash: ", 8) == 0) rehash(W.copy, s + 8);
    else if (strcmp(s, "close-gaps") == 0) close_gaps(W.copy);
    else if (strcmp(s, "rebuild-tree") == 0) rebuild_tree(W.copy);
    else if (sscanf(s, "corrupt: %63s %d", name, &k) == 2)
      corrupt(W.copy, name, k, 0x9e3779b97f4a7c15ULL * (uint64_t)(index + 1));
    else if (sscanf(s, "overwrite-page: %63s", name) == 1)
      overwrite_page(W.copy, name, 0x51ed270b27ULL * (uint64_t)(index + 1));
    else
      fail_msg("catalogue.txt:%d (%s): unknown step '%s'", e->line, e->name, s);
  }
}

/* Runs verify on the copy; *opened 0 when the store does not even open. */
static char *verify_copy(const char *options, int *rc_out, int *opened) {
  case_engine *e;
  case_store *s;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  int rc = case_store_open(e, W.copy, CASE_STORE_READONLY, &s);
  char *rep = NULL;
  *opened = rc == CASE_OK;
  if (rc == CASE_OK) {
    rc = case_store_verify_v2(s, options, &rep);
    if (rc != CASE_OK && rc != CASE_CORRUPT) fail_msg("verify: %s", case_errmsg(e));
    case_store_close(s);
  } else if (rc != CASE_CORRUPT) {
    fail_msg("open: %d %s", rc, case_errmsg(e));
  } else {
    rep = strdup(case_errmsg(e));
  }
  case_engine_close(e);
  *rc_out = rc;
  return rep;
}

static int check_expect(const entry *e, const char *expect, const char *rep, int rc, int opened,
                        const char *run) {
  char buf[200];
  snprintf(buf, sizeof buf, "%s", expect);
  int ok = 1;
  if (strcmp(buf, "none") == 0) {
    if (rc != CASE_OK) {
      print_error("catalogue.txt:%d %s (%s): expected no problem, got %s\n", e->line, e->name, run,
                  rep);
      ok = 0;
    }
    return ok;
  }
  if (rc == CASE_OK) {
    print_error("catalogue.txt:%d %s (%s): not detected: %s\n", e->line, e->name, run, rep);
    return 0;
  }
  if (strcmp(buf, "any") == 0 || (strcmp(buf, "open") == 0)) return 1;
  if (!opened) {
    print_error("catalogue.txt:%d %s (%s): the store did not open: %s\n", e->line, e->name, run, rep);
    return 0;
  }
  for (char *t = strtok(buf, " "); t; t = strtok(NULL, " ")) {
    char want[80];
    snprintf(want, sizeof want, "\"problem\":\"%s\"", t);
    if (!strstr(rep, want)) {
      print_error("catalogue.txt:%d %s (%s): no \"%s\" problem in %s\n", e->line, e->name, run, t,
                  rep);
      ok = 0;
    }
  }
  return ok;
}

static void test_catalogue(void **state) {
  (void)state;
  entry *v;
  int n = read_catalogue(&v);
  assert_true(n >= 60);
  json_t *o = json_pack("{s:s, s:s}", "checkpoint", W.checkpoint, "public_key", W.pubpem);
  char *cp_options = json_dumps(o, 0);
  json_decref(o);
  int failed = 0, rewrites = 0;
  for (int i = 0; i < n; i++) {
    entry *e = &v[i];
    print_message("[%2d] %s\n", i + 1, e->name);
    remove_db(W.copy);
    copy_file(W.master, W.copy);
    apply(e, i);
    if (!e->expect[0]) fail_msg("catalogue.txt:%d: %s has no expect:", e->line, e->name);
    if (!e->expect_cp[0]) snprintf(e->expect_cp, sizeof e->expect_cp, "%s", e->expect);
    if (strcmp(e->expect, "none") == 0) rewrites++;
    int rc, opened;
    char *rep = verify_copy(NULL, &rc, &opened);
    if (getenv("TAMPER_VERBOSE")) print_message("    %s\n", rep);
    int ok = check_expect(e, e->expect, rep, rc, opened, "without a checkpoint");
    for (int w = 0; w < e->nwhere; w++)
      if (!strstr(rep, e->where[w])) {
        print_error("catalogue.txt:%d %s: the report does not say %s: %s\n", e->line, e->name,
                    e->where[w], rep);
        ok = 0;
      }
    free(rep);
    rep = verify_copy(cp_options, &rc, &opened);
    ok = check_expect(e, e->expect_cp, rep, rc, opened, "with the checkpoint") && ok;
    for (int w = 0; w < e->nwhere_cp; w++)
      if (!strstr(rep, e->where_cp[w])) {
        print_error("catalogue.txt:%d %s: the report with the checkpoint does not say %s: %s\n",
                    e->line, e->name, e->where_cp[w], rep);
        ok = 0;
      }
    free(rep);
    if (!ok) failed++;
  }
  print_message("%d edits, %d of them consistent rewrites only a checkpoint detects\n", n,
                rewrites);
  free(cp_options);
  free(v);
  assert_true(rewrites >= 5);
  if (failed) fail_msg("%d of %d catalogue entries failed", failed, n);
}

/* docs/store.md's example leaf: the bytes and the hash the docs give. */
static void test_leaf_example(void **state) {
  (void)state;
  mk_hasher h;
  assert_int_equal(mk_hasher_init(&h), 0);
  st_pin pin = {"zaak", 1, "9b0f1f3c0d5ab1bd2ad4ec0e4d6b6a3a5f0f1fd3c23d4b0a76b1f7e6c9d1e2f3",
                "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", NULL};
  unsigned char leaf[MK_HASH_LEN];
  assert_int_equal(st_leaf_hash(&h, 1, 1772442005,
                                "64e6403a1fb3e80b2ff706c287a468a3e969846af4a750eda4bdd256241b5d54",
                                &pin, leaf),
                   CASE_OK);
  char hex[65];
  mk_to_hex(leaf, hex);
  assert_string_equal(hex, "ae96959607b00254e4889322098833dfcb9e121771587f10817a9d01a378c4b8");
  /* The stored modules text of a definition without modules is "{}": the hash above. */
  char m[65];
  assert_int_equal(sha256_hex("{}", 2, m), 0);
  assert_string_equal(m, pin.modules);
  mk_hasher_free(&h);
}

/* Issue 15 §9: a damaged row is named, the feed and the report go on. */
static int collect(void *ud, int64_t seq, const char *row) {
  (void)seq;
  char **all = ud;
  size_t a = *all ? strlen(*all) : 0, b = strlen(row);
  *all = realloc(*all, a + b + 2);
  memcpy(*all + a, row, b);
  (*all)[a + b] = '\n';
  (*all)[a + b + 1] = '\0';
  return 0;
}

static void test_damaged_rows_readable(void **state) {
  (void)state;
  remove_db(W.copy);
  copy_file(W.master, W.copy);
  /* Row 6, not a case's latest row: that one is the case's state (schema 10),
   * which a damaged row would leave unloadable (and the report with it). */
  exec_on(W.copy, "UPDATE journal SET data='{\"n\":' WHERE seq=6;"
                  "UPDATE journal SET actor=CAST(X'C3' AS TEXT) WHERE seq=3");
  case_engine *e;
  case_store *s;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  assert_int_equal(case_store_open(e, W.copy, CASE_STORE_READONLY, &s), CASE_OK);
  char *all = NULL;
  int64_t last = 0;
  assert_int_equal(case_store_follow(s, 0, 0, collect, &all, &last), CASE_OK);
  assert_int_equal(last, 13);
  assert_non_null(strstr(all, "\"seq\":6,\"case\":\"z1\""));
  assert_non_null(strstr(all, "\"data\":null,"));
  assert_non_null(strstr(all, "\"corrupt\":{\"data\":\"not JSON\"}"));
  assert_non_null(strstr(all, "\"actor\":\"\xEF\xBF\xBD\"")); /* U+FFFD for the byte */
  assert_non_null(strstr(all, "\"corrupt\":{\"actor\":\"not UTF-8\"}"));
  free(all);
  char *rep = NULL;
  assert_int_equal(case_store_report(s, e, T0 + 86400, NULL, &rep), CASE_OK);
  if (!strstr(rep, "\"total\": 5")) fail_msg("report: %s", rep);
  case_free(rep);
  assert_int_equal(case_store_verify(s, &rep), CASE_CORRUPT);
  assert_non_null(strstr(rep, "{\"case\":\"z1\",\"seq\":6,\"problem\":\"corrupt\",\"table\":\"journal\",\"column\":\"data\""));
  assert_non_null(strstr(rep, "{\"case\":\"z1\",\"seq\":3,\"problem\":\"corrupt\",\"table\":\"journal\",\"column\":\"actor\""));
  case_free(rep);
  case_store_close(s);
  case_engine_close(e);
}

/* A deleted journal row and the stored nodes removed leave the tree without a
 * leaf.  The store goes on
 * writing (a fire may not fail on an old row's damage), its new rows store no
 * node, and verify still names the gap after them.  The handle keeps the tree
 * it knows to be incomplete, as it keeps a complete one, so such a store does
 * not rebuild the tree from every leaf at each write (bench: a tick of 1,000
 * timers among 20,000 took 28 s that way, 0.09 s on a whole store). */
static void test_writes_after_a_deleted_row(void **state) {
  (void)state;
  remove_db(W.copy);
  copy_file(W.master, W.copy);
  /* Without the stored nodes the tree must be recomputed from the leaves, and
   * row 6's is gone (with the nodes, the frontier needs no leaf: seq 8's node
   * covers rows 1-8). */
  exec_on(W.copy, "DELETE FROM journal WHERE seq=6; UPDATE journal SET node=NULL");
  case_engine *e;
  case_store *s;
  const case_def *d;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  assert_int_equal(case_store_open(e, W.copy, 0, &s), CASE_OK);
  assert_int_equal(case_def_load_string(e, ZAAK, strlen(ZAAK), "zaak.yaml", &d), CASE_OK);
  for (int i = 0; i < 3; i++) fire(s, e, "z4", "tel", NULL, "IND", T0 + 600 + i, NULL);
  assert_int_equal(case_store_batch_begin(s), CASE_OK);
  for (int i = 0; i < 3; i++) fire(s, e, "z4", "tel", NULL, "IND", T0 + 700 + i, NULL);
  assert_int_equal(case_store_batch_commit(s), CASE_OK);
  assert_int_equal(case_store_create(s, d, "z5", NULL, NULL, "tester", "IND", T0, NULL), CASE_OK);
  case_store_close(s);
  case_engine_close(e);

  sqlite3 *db;
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_open(W.copy, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db,
                                      "SELECT count(*), count(node), min(seq), max(seq) FROM "
                                      "journal WHERE seq > 13",
                                      -1, &st, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(st, 0), 7); /* 6 fires and a creation */
  assert_int_equal(sqlite3_column_int(st, 1), 0); /* none with a node */
  assert_int_equal(sqlite3_column_int(st, 2), 14);
  assert_int_equal(sqlite3_column_int(st, 3), 20);
  sqlite3_finalize(st);
  sqlite3_close(db);

  assert_int_equal(case_engine_open(&e), CASE_OK);
  assert_int_equal(case_store_open(e, W.copy, CASE_STORE_READONLY, &s), CASE_OK);
  char *rep = NULL;
  assert_int_equal(case_store_verify(s, &rep), CASE_CORRUPT);
  if (!strstr(rep, "\"case\":\"z1\",\"seq\":7") && !strstr(rep, "\"seq\":7,"))
    fail_msg("verify does not name the row after the gap: %s", rep);
  assert_non_null(strstr(rep, "\"problem\":\"order\""));
  case_free(rep);
  case_store_close(s);
  case_engine_close(e);
}

/* A host that keeps its key elsewhere (an HSM, a KMS) signs through a callback. */
typedef struct signer {
  EVP_PKEY *pk;
  int calls, refuse;
} signer;

static int host_sign(void *ud, const unsigned char *msg, size_t len, unsigned char sig[64]) {
  signer *g = ud;
  g->calls++;
  if (g->refuse) return -1;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  size_t n = 64;
  int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, g->pk) == 1 &&
           EVP_DigestSign(ctx, sig, &n, msg, len) == 1;
  EVP_MD_CTX_free(ctx);
  return ok ? 0 : -1;
}

static void test_sign_callback(void **state) {
  (void)state;
  /* RFC 8032 §7.1 TEST 1's secret key, so the public key is known. */
  static const unsigned char secret[32] = {
      0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
      0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
  static const unsigned char public[32] = {
      0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
      0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
  signer g = {EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, secret, 32), 0, 0};
  assert_non_null(g.pk);
  case_engine *e;
  case_store *s;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  assert_int_equal(case_store_open(e, W.master, CASE_STORE_READONLY, &s), CASE_OK);
  char *cp = NULL;
  assert_int_equal(case_store_checkpoint_sign(s, public, host_sign, &g, T0, NULL, &cp), CASE_OK);
  assert_int_equal(g.calls, 1);
  assert_non_null(strstr(cp, "\"key\": \"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\""));
  assert_non_null(strstr(cp, "\"size\": 13"));
  /* It checks like one signed with a key file. */
  char *rep = NULL;
  char *cp2 = NULL;
  assert_int_equal(case_store_checkpoint_sign(s, public, host_sign, &g, T0 + 1, cp, &cp2), CASE_OK);
  assert_int_equal(case_checkpoint_check(e, cp, cp2, NULL, &rep), CASE_OK);
  case_free(rep);
  /* A callback that refuses, and one whose signature is not for the key it names. */
  g.refuse = 1;
  char *none = NULL;
  assert_int_equal(case_store_checkpoint_sign(s, public, host_sign, &g, T0, NULL, &none),
                   CASE_DENIED);
  assert_null(none);
  g.refuse = 0;
  unsigned char other[32];
  memcpy(other, public, 32);
  other[0] ^= 1;
  assert_int_equal(case_store_checkpoint_sign(s, other, host_sign, &g, T0, NULL, &none),
                   CASE_INVALID);
  assert_null(none);
  assert_non_null(strstr(case_errmsg(e), "does not verify"));
  /* A previous checkpoint of another store, or altered, is refused. */
  char *bad = strdup(cp);
  char *o = strstr(bad, "\"origin\": \"");
  o[12] = o[12] == 'a' ? 'b' : 'a';
  assert_int_equal(case_store_checkpoint_sign(s, public, host_sign, &g, T0, bad, &none),
                   CASE_INVALID);
  free(bad);
  /* The calendar is signed (v2): a checkpoint whose calendar line was changed
   * no longer verifies. */
  assert_non_null(strstr(cp, "\"checkpoint\": \"libcase.checkpoint.v2\""));
  bad = strdup(cp);
  char *c = strstr(bad, "\"calendar\": \"");
  assert_non_null(c);
  c[13] = c[13] == 'a' ? 'b' : 'a';
  char *opts = NULL;
  json_t *o2 = json_pack("{s:s}", "checkpoint", bad);
  opts = json_dumps(o2, JSON_COMPACT);
  json_decref(o2);
  assert_int_equal(case_store_verify_v2(s, opts, &rep), CASE_CORRUPT);
  assert_non_null(strstr(rep, "\"signature\":\"invalid\""));
  case_free(rep);
  free(opts);
  free(bad);
  /* A checkpoint signed before the calendar was (v1: five lines) still checks;
   * its report says the calendar is not covered (null). */
  cp_head h;
  char err[300];
  assert_int_equal(cp_parse(cp, &h, err, sizeof err), CASE_OK);
  char root[65], msg[512], sighex[129], keyhex[65];
  mk_to_hex(h.root, root);
  int n = snprintf(msg, sizeof msg, "libcase.checkpoint.v1\norigin %s\nsize %lld\ntime %lld\n"
                   "root %s\n", h.origin, (long long)h.size, (long long)h.time, root);
  unsigned char sig[64];
  assert_int_equal(host_sign(&g, (const unsigned char *)msg, (size_t)n, sig), 0);
  for (int i = 0; i < 64; i++) snprintf(sighex + 2 * i, 3, "%02x", sig[i]);
  for (int i = 0; i < 32; i++) snprintf(keyhex + 2 * i, 3, "%02x", public[i]);
  json_t *v1 = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s}", "checkpoint",
                         "libcase.checkpoint.v1", "origin", h.origin, "size", (json_int_t)h.size,
                         "time", (json_int_t)h.time, "root", root, "key", keyhex, "signature",
                         sighex);
  char *v1text = json_dumps(v1, 0);
  json_decref(v1);
  o2 = json_pack("{s:s}", "checkpoint", v1text);
  opts = json_dumps(o2, JSON_COMPACT);
  json_decref(o2);
  assert_int_equal(case_store_verify_v2(s, opts, &rep), CASE_OK);
  assert_non_null(strstr(rep, "\"signature\":\"valid\""));
  assert_non_null(strstr(rep, "\"calendar\":null"));
  assert_non_null(strstr(rep, "\"consistent\":true"));
  case_free(rep);
  free(opts);
  /* and a v2 checkpoint extends it */
  char *cp3 = NULL;
  assert_int_equal(case_store_checkpoint_sign(s, public, host_sign, &g, T0 + 2, v1text, &cp3),
                   CASE_OK);
  assert_int_equal(case_checkpoint_check(e, v1text, cp3, NULL, &rep), CASE_OK);
  case_free(rep);
  case_free(cp3);
  free(v1text);
  case_free(cp);
  case_free(cp2);
  case_store_close(s);
  case_engine_close(e);
  EVP_PKEY_free(g.pk);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sign_callback),
      cmocka_unit_test(test_leaf_example),
      cmocka_unit_test(test_damaged_rows_readable),
      cmocka_unit_test(test_writes_after_a_deleted_row),
      cmocka_unit_test(test_catalogue),
  };
  return cmocka_run_group_tests(tests, setup_world, teardown_world);
}
