/*
 * casectl copy: a whole store into a new one, between backends
 * (case_store_copy()), ending with verify on the copy.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casectl.h"

enum { C_FROM = 256, C_TO };

static struct {
  const char *from, *to;
} co;

static const struct option copy_options[] = {
    {"from", required_argument, NULL, C_FROM},
    {"to", required_argument, NULL, C_TO},
    {NULL, 0, NULL, 0},
};

static int copy_option(ctx *c, int code, const char *arg) {
  (void)c;
  if (code == C_FROM) co.from = arg;
  else if (code == C_TO) co.to = arg;
  else return usage_error(c, "unexpected option");
  return EX_OK;
}

/* Opens `where` on a fresh engine (its own: the two stores' definitions never
 * meet); prints the failure naming the store. */
static int open_one(ctx *c, const char *location, const char *where, int flags,
                    case_engine **e, case_store **s) {
  *s = NULL;
  int rc = case_engine_open(e);
  if (rc != CASE_OK) return fail(c, EX_STORE, "cannot open an engine: %s", case_errstr(rc));
  if (c->lua_root && (rc = case_engine_set_lua_root(*e, c->lua_root)) != CASE_OK)
    return fail_engine(c, rc, "--lua-root");
  rc = case_store_open(*e, location, flags, s);
  if (rc != CASE_OK) {
    char named[4200];
    snprintf(named, sizeof named, "store '%s'", where);
    const char *msg = case_errmsg(*e);
    if (strstr(msg, named))
      fprintf(stderr, "%s %s: %s (%s)\n", c->prog, c->cmd, msg, case_errstr(rc));
    else
      fprintf(stderr, "%s %s: %s: %s (%s)\n", c->prog, c->cmd, where, msg, case_errstr(rc));
    return rc_exit(rc);
  }
  return EX_OK;
}

static int run_copy(ctx *c, int argc, char **argv) {
  (void)argv;
  if (argc != 0) return usage_error(c, "copy takes no arguments (--from and --to name the stores)");
  if (!co.from || !co.to) return usage_error(c, "copy needs --from STORE and --to STORE");
  if (strcmp(co.from, co.to) == 0)
    return usage_error(c, "--from and --to name the same store");
  /* Messages name the stores as shown: a password as ***. */
  char *from = case_store_shown_location(co.from), *to = case_store_shown_location(co.to);
  if (!from || !to) {
    case_free(from);
    case_free(to);
    return fail(c, EX_STORE, "out of memory");
  }
  case_engine *fe = NULL, *te = NULL, *ve = NULL;
  case_store *fs = NULL, *ts = NULL, *vs = NULL;
  char *counts = NULL, *report = NULL;
  int ex = open_one(c, co.from, from, CASE_STORE_READONLY, &fe, &fs);
  if (ex == EX_OK) ex = open_one(c, co.to, to, CASE_STORE_CREATE, &te, &ts);
  if (ex == EX_OK) {
    int rc = case_store_copy(fs, ts, &counts);
    if (rc != CASE_OK) {
      fprintf(stderr, "%s %s: %s -> %s: %s (%s)\n", c->prog, c->cmd, from, to,
              case_errmsg(fe), case_errstr(rc));
      ex = rc_exit(rc);
    }
  }
  case_store_close(ts);
  case_engine_close(te);
  case_store_close(fs);
  case_engine_close(fe);
  /* The copy as any later program sees it: opened afresh, every row checked. */
  int rc = CASE_OK;
  if (ex == EX_OK) ex = open_one(c, co.to, to, CASE_STORE_READONLY, &ve, &vs);
  if (ex == EX_OK) {
    rc = case_store_verify(vs, &report);
    if (rc != CASE_OK && rc != CASE_CORRUPT) ex = fail_engine(c, rc, "verify the copy");
  }
  if (ex == EX_OK) {
    json_t *cj = json_loads(counts ? counts : "{}", 0, NULL);
    json_t *rj = json_loads(report ? report : "{}", 0, NULL);
    if (c->json) {
      print_json(json_pack("{s:s, s:s, s:o, s:o}", "from", from, "to", to, "copied",
                           cj ? cj : json_object(), "verify", rj ? rj : json_object()));
    } else {
      size_t i;
      json_t *v;
      json_array_foreach(json_object_get(rj, "problems"), i, v)
        fprintf(stderr, "%s: %s: %s\n", to, json_string_value(json_object_get(v, "problem")),
                json_string_value(json_object_get(v, "message")));
      if (!c->quiet) {
        printf("copied %s to %s:", from, to);
        const char *key;
        int first = 1;
        json_object_foreach(cj, key, v) {
          printf("%s %lld %s", first ? "" : ",", (long long)json_integer_value(v), key);
          first = 0;
        }
        printf("\n%s: %lld case(s), %lld journal row(s), %zu problem(s)\n", to,
               (long long)json_integer_value(json_object_get(rj, "cases")),
               (long long)json_integer_value(json_object_get(rj, "events")),
               json_array_size(json_object_get(rj, "problems")));
      }
      json_decref(cj);
      json_decref(rj);
    }
    if (rc != CASE_OK) ex = EX_REFUSED;
  }
  case_free(from);
  case_free(to);
  case_free(counts);
  case_free(report);
  case_store_close(vs);
  case_engine_close(ve);
  return ex;
}

const command cmd_copy = {
    "copy", "copy a whole store into a new one (SQLite, PostgreSQL)",
    "usage: casectl copy --from STORE --to STORE\n"
    "  Copies everything a store holds (definitions with their Lua modules, every\n"
    "  version of the location profiles, holidays, cases, the journal with its hashes\n"
    "  and tree, timers, the outbox, idempotency keys, refused events, access tokens,\n"
    "  and the store's identity) into a new store, in one transaction: all of it or\n"
    "  nothing.  Each STORE is a file (SQLite) or a postgresql:// URI or conninfo\n"
    "  (PostgreSQL); the target may not exist yet, or must be empty.  Then the copy\n"
    "  is opened afresh and verified (as casectl verify): exit 1 when verify finds a\n"
    "  problem, 5 when the target is not empty.  --store is not used.\n",
    copy_options, copy_option, run_copy, 0};
