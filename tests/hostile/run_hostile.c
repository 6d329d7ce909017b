/*
 * run_hostile — the catalogue of hostile scripts (tests/hostile/*.lua), each
 * run against a real engine through the public API, next to a victim workflow
 * whose guards check afterwards that nothing leaked.
 *
 *   run_hostile file.lua...
 *
 * A file is Lua with directives in leading comment lines:
 *
 *   -- kind: action|guard|module|profile   what the file is (default action)
 *   -- load: CODE [text]     result of loading it (default ok): a case_errname()
 *                            and a fragment of the message
 *   -- fire: CODE [text]     result of firing `go` at a hostile case (default ok)
 *   -- repeat: N             fire `go` N times (each must give the `fire` result)
 *   -- payload: JSON         the payload of `go`
 *   -- data: JSON            initial data of the hostile case
 *   -- limit: NAME=VALUE     an engine limit (instructions, memory, time,
 *                            payload, data) for the whole run
 *   -- check: EXPR           a guard that must be true afterwards, on a victim
 *                            case (another workflow, created before the attack)
 *                            and on a second hostile case created after it
 *   -- after: EXPR           a guard that must be true afterwards on the hostile
 *                            case itself (what the attack left in its data)
 *   -- payload-size: N       the payload of `go` is {"s": "xxx..."}, N bytes long
 *   -- heap: BYTES           after the repeats, the Lua heap (after a full
 *                            collection) grew by less than this
 *   -- message-max: BYTES    the message of the fire is at most this long
 *
 * kind action/guard: the body is the action or guard of `go` in workflow
 * `hostile`.  kind module: the file is the workflow's `lua:` module; `go`
 * runs its function `attack` as an action (`-- call: guard` for a guard).
 * kind profile: the file is the location profile of `hostile_loc`, where the
 * hostile cases live; the module defines a harmless `attack` it may replace.
 *
 * Every run has the engine's limits (the defaults unless a `limit` says
 * otherwise): a script that would run forever must come back CASE_LIMIT, so a
 * hang is a failure of the test (CTest's timeout), never a slow pass.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define MAXCHECK 16

typedef struct spec {
  char kind[16];
  char call[16];
  char load[256], fire[256];
  long repeat;
  char *payload, *data;
  char *checks[MAXCHECK];
  int nchecks;
  char *afters[MAXCHECK];
  int nafters;
  long long heap;
  long message_max;
  struct { int which; long long value; } limits[8];
  int nlimits;
} spec;

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
    free(p);
    p = NULL;
  }
  if (p) p[n] = 0;
  fclose(f);
  return p;
}

static int limit_id(const char *name) {
  static const char *const names[] = {"instructions", "memory", "microsteps", "depth",
                                      "expiries", "time", "payload", "data"};
  for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
    if (!strcmp(names[i], name)) return i;
  return -1;
}

static int parse_spec(const char *text, spec *s, const char *file) {
  memset(s, 0, sizeof *s);
  strcpy(s->kind, "action");
  strcpy(s->call, "action");
  strcpy(s->load, "ok");
  strcpy(s->fire, "ok");
  s->repeat = 1;
  const char *p = text;
  while (!strncmp(p, "--", 2)) {
    const char *eol = strchr(p, '\n');
    size_t n = eol ? (size_t)(eol - p) : strlen(p);
    char line[4096];
    if (n >= sizeof line) n = sizeof line - 1;
    memcpy(line, p, n);
    line[n] = 0;
    char *k = line + 2;
    while (*k == ' ') k++;
    char *colon = strchr(k, ':');
    if (colon) {
      *colon = 0;
      char *v = colon + 1;
      while (*v == ' ') v++;
      if (!strcmp(k, "kind")) snprintf(s->kind, sizeof s->kind, "%s", v);
      else if (!strcmp(k, "call")) snprintf(s->call, sizeof s->call, "%s", v);
      else if (!strcmp(k, "load")) snprintf(s->load, sizeof s->load, "%s", v);
      else if (!strcmp(k, "fire")) snprintf(s->fire, sizeof s->fire, "%s", v);
      else if (!strcmp(k, "repeat")) s->repeat = atol(v);
      else if (!strcmp(k, "payload")) s->payload = strdup(v);
      else if (!strcmp(k, "data")) s->data = strdup(v);
      else if (!strcmp(k, "heap")) s->heap = atoll(v);
      else if (!strcmp(k, "message-max")) s->message_max = atol(v);
      else if (!strcmp(k, "check") && s->nchecks < MAXCHECK) s->checks[s->nchecks++] = strdup(v);
      else if (!strcmp(k, "after") && s->nafters < MAXCHECK) s->afters[s->nafters++] = strdup(v);
      else if (!strcmp(k, "payload-size")) {
        long n = atol(v);
        free(s->payload);
        s->payload = malloc((size_t)n + 1);
        if (!s->payload || n < 10) return -1;
        memset(s->payload, 'x', (size_t)n);
        memcpy(s->payload, "{\"s\": \"", 7);
        memcpy(s->payload + n - 2, "\"}", 2);
        s->payload[n] = 0;
      }
      else if (!strcmp(k, "limit") && s->nlimits < 8) {
        char *eq = strchr(v, '=');
        int id = eq ? (*eq = 0, limit_id(v)) : -1;
        if (id < 0) {
          fprintf(stderr, "%s: unknown limit '%s'\n", file, v);
          return -1;
        }
        s->limits[s->nlimits].which = id;
        s->limits[s->nlimits++].value = atoll(eq + 1);
      } else if (strspn(k, "abcdefghijklmnopqrstuvwxyz-") == strlen(k)) {
        fprintf(stderr, "%s: unknown directive '%s'\n", file, k);
        return -1;
      } /* else prose that happens to hold a colon */
    }
    if (!eol) break;
    p = eol + 1;
  }
  return 0;
}

static void spec_free(spec *s) {
  free(s->payload);
  free(s->data);
  for (int i = 0; i < s->nchecks; i++) free(s->checks[i]);
  for (int i = 0; i < s->nafters; i++) free(s->afters[i]);
}

/* Does result rc with message msg match "CODE [text]"? */
static int matches(const char *want, int rc, const char *msg) {
  char code[32];
  size_t n = strcspn(want, " ");
  if (n >= sizeof code) return 0;
  memcpy(code, want, n);
  code[n] = 0;
  if (strcmp(code, case_errname(rc))) return 0;
  const char *text = want + n;
  while (*text == ' ') text++;
  return !*text || (msg && strstr(msg, text));
}

/* Appends `body` to b as a YAML block scalar indented by `ind` spaces. */
static void block(sbuf *b, const char *body, int ind) {
  sbuf_puts(b, "|\n");
  const char *p = body;
  while (*p) {
    const char *eol = strchr(p, '\n');
    size_t n = eol ? (size_t)(eol - p) : strlen(p);
    for (int i = 0; i < ind; i++) sbuf_add(b, " ", 1);
    sbuf_add(b, p, n);
    sbuf_add(b, "\n", 1);
    if (!eol) break;
    p = eol + 1;
  }
}

static const char *DATA =
    "data:\n"
    "  x: {type: integer, default: 0}\n"
    "  s: {type: string}\n"
    "  ok: {type: boolean, default: false}\n"
    "  list: {type: list, default: []}\n"
    "  any: {type: any}\n";

static char *hostile_yaml(const spec *s, const char *body, const char *module) {
  sbuf b;
  sbuf_init(&b);
  sbuf_puts(&b, "workflow: hostile\nversion: 1\nroles: [IND]\n");
  if (module) sbuf_printf(&b, "lua: [%s]\n", module);
  sbuf_puts(&b, DATA);
  sbuf_puts(&b, "initial: a\nstates:\n  a:\n    on:\n      go:\n");
  if (!strcmp(s->kind, "action")) {
    sbuf_puts(&b, "        actions: ");
    block(&b, body, 10);
  } else if (!strcmp(s->kind, "guard")) {
    sbuf_puts(&b, "        guard: ");
    block(&b, body, 10);
  } else {
    sbuf_printf(&b, "        %s: %s\n", !strcmp(s->call, "guard") ? "guard" : "actions",
                !strcmp(s->call, "guard") ? "attack" : "[attack]");
  }
  for (int i = 0; i < s->nafters; i++) {
    sbuf_printf(&b, "      check%d:\n        guard: ", i);
    block(&b, s->afters[i], 10);
  }
  return sbuf_take(&b);
}

static char *victim_yaml(const spec *s) {
  sbuf b;
  sbuf_init(&b);
  sbuf_puts(&b, "workflow: victim\nversion: 1\nroles: [IND]\n");
  sbuf_puts(&b, DATA);
  sbuf_puts(&b, "initial: a\nstates:\n  a:\n    on:\n      nothing: {}\n");
  for (int i = 0; i < s->nchecks; i++) {
    sbuf_printf(&b, "      check%d:\n        guard: ", i);
    block(&b, s->checks[i], 10);
  }
  return sbuf_take(&b);
}

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

/* Fires every check at case c; returns the number that failed. */
static int run_checks(case_engine *e, char *const *checks, int n, case_instance *c,
                      const char *file, const char *who) {
  int bad = 0;
  for (int i = 0; i < n; i++) {
    char ev[16];
    snprintf(ev, sizeof ev, "check%d", i);
    int rc = case_instance_fire(c, ev, NULL, "tester", "IND", 1800000000);
    if (rc != CASE_OK) {
      fprintf(stderr, "%s: check on %s failed (%s): %s\n  %s\n", file, who, case_errname(rc),
              checks[i], case_errmsg(e));
      bad++;
    }
  }
  return bad;
}

static int run_file(const char *file) {
  char *text = slurp(file);
  if (!text) {
    fprintf(stderr, "%s: cannot read\n", file);
    return 1;
  }
  spec s;
  if (parse_spec(text, &s, file) != 0) {
    free(text);
    return 1;
  }
  char dir[] = "/tmp/run_hostile.XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  char module[64] = "", stub[64] = "";
  int failed = 0;
  case_engine *e = NULL;
  case_engine_open(&e);
  for (int i = 0; i < s.nlimits; i++) case_engine_limit(e, s.limits[i].which, s.limits[i].value);
  size_t heap0 = sbx_heap_bytes(e->sandbox);

  /* The victim comes first: it must not notice what follows. */
  char *vy = victim_yaml(&s);
  const case_def *vd = NULL, *hd = NULL;
  case_instance *victim = NULL, *h = NULL;
  if (case_def_load_string(e, vy, strlen(vy), "victim.yaml", &vd) != CASE_OK ||
      case_instance_create(e, vd, "V1", NULL, NULL, 1700000000, &victim) != CASE_OK) {
    fprintf(stderr, "%s: the victim does not load: %s\n", file, case_errmsg(e));
    failed = 1;
    goto out;
  }

  const char *location = NULL;
  const char *mod = NULL;
  int rc = CASE_OK;
  if (!strcmp(s.kind, "module")) {
    snprintf(module, sizeof module, "%s/hostile.lua", dir);
    write_text(module, text);
    mod = module;
  } else if (!strcmp(s.kind, "profile")) {
    snprintf(stub, sizeof stub, "%s/stub.lua", dir);
    write_text(stub, "return {attack = function(case) end}\n");
    snprintf(module, sizeof module, "%s/profile.lua", dir);
    write_text(module, text);
    mod = stub;
    location = "hostile_loc";
    rc = case_engine_load_profile(e, location, module);
  }
  char *hy = hostile_yaml(&s, text, mod);
  if (rc == CASE_OK) rc = case_def_load_string(e, hy, strlen(hy), "hostile.yaml", &hd);
  free(hy);
  if (!matches(s.load, rc, case_errmsg(e))) {
    fprintf(stderr, "%s: loading gave %s (%s), expected %s\n", file, case_errname(rc),
            case_errmsg(e), s.load);
    failed = 1;
    goto out;
  }
  if (rc == CASE_OK) {
    rc = case_instance_create(e, hd, "H1", location, s.data, 1700000000, &h);
    if (rc != CASE_OK) {
      fprintf(stderr, "%s: creating the hostile case gave %s: %s\n", file, case_errname(rc),
              case_errmsg(e));
      failed = 1;
      goto out;
    }
    for (long i = 0; i < s.repeat && !failed; i++) {
      rc = case_instance_fire(h, "go", s.payload, "attacker", "IND", 1700000100 + i);
      if (!matches(s.fire, rc, case_errmsg(e))) {
        fprintf(stderr, "%s: firing go (%ld) gave %s (%s), expected %s\n", file, i + 1,
                case_errname(rc), case_errmsg(e), s.fire);
        failed = 1;
      }
      if (s.message_max > 0 && strlen(case_errmsg(e)) > (size_t)s.message_max) {
        fprintf(stderr, "%s: the message is %zu bytes long (bound %ld)\n", file,
                strlen(case_errmsg(e)), s.message_max);
        failed = 1;
      }
    }
  }
  if (s.heap > 0) {
    size_t heap1 = sbx_heap_bytes(e->sandbox);
    if (heap1 > heap0 && (long long)(heap1 - heap0) >= s.heap) {
      fprintf(stderr, "%s: the Lua heap grew by %zu bytes (bound %lld)\n", file, heap1 - heap0,
              s.heap);
      failed = 1;
    }
  }
  if (h) failed += run_checks(e, s.afters, s.nafters, h, file, "the hostile case");
  failed += run_checks(e, s.checks, s.nchecks, victim, file, "the victim");
  if (hd) {
    case_instance *h2 = NULL;
    if (case_instance_create(e, hd, "H2", location, NULL, 1800000000, &h2) == CASE_OK) {
      /* the checks run as the victim's guards; a second hostile case shows
       * the same through its own data */
      case_instance *v2 = NULL;
      if (case_instance_create(e, vd, "V2", location, NULL, 1800000000, &v2) == CASE_OK)
        failed += run_checks(e, s.checks, s.nchecks, v2, file,
                             "a victim at the hostile location");
    }
  }
out:
  free(vy);
  case_engine_close(e);
  if (*module) unlink(module);
  if (*stub) unlink(stub);
  rmdir(dir);
  spec_free(&s);
  free(text);
  if (!failed) printf("%s: ok\n", file);
  return failed != 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: run_hostile file.lua...\n");
    return 2;
  }
  int bad = 0;
  for (int i = 1; i < argc; i++) bad |= run_file(argv[i]);
  return bad;
}
