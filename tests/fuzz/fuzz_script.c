/*
 * Fuzz target: the Lua sandbox on any bytes.
 *
 *  - First byte even: the rest is a pattern and a subject (split at the first
 *    0xFF byte, or halfway) given to string.find, match, gmatch and gsub, as
 *    plain and as pattern; the pattern cost model (sandbox_lib.c) must parse
 *    whatever it gets, and the charges must stop any matcher run the budget
 *    cannot pay for (a slow input is a failure: run with -timeout).
 *  - First byte odd: the rest is the source of an action, compiled (the
 *    bytecode reader of luacode.c looks at whatever compiles) and run under
 *    small limits, twice, on two cases, with a check between that a plain
 *    guard still sees the sandbox as it was.
 *
 * Built like fuzz_definition.c (libFuzzer with -DCASE_FUZZ=ON, else a replay
 * driver run by CTest over tests/fuzz/scripts).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcase/libcase.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The bytes as a JSON array of integers: a payload any bytes fit in. */
static char *byte_array(const uint8_t *p, size_t n) {
  char *s = malloc(n * 4 + 3), *q = s;
  if (!s) return NULL;
  *q++ = '[';
  for (size_t i = 0; i < n; i++) q += sprintf(q, "%s%u", i ? "," : "", (unsigned)p[i]);
  *q++ = ']';
  *q = 0;
  return s;
}

static const char *PATTERNS =
    "workflow: fz\nversion: 1\nroles: [R]\n"
    "data: {n: {type: integer, default: 0}}\n"
    "initial: a\nstates:\n  a:\n    on:\n"
    "      go:\n"
    "        actions: |\n"
    "          local function str(t) local b = {} for i = 1, #t do b[i] = string.char(t[i]) end\n"
    "            return table.concat(b) end\n"
    "          local p, s = str(event.data.p), str(event.data.s)\n"
    "          local n = 0\n"
    "          for _, f in ipairs({string.find, string.match}) do\n"
    "            if pcall(f, s, p) then n = n + 1 end\n"
    "          end\n"
    "          if pcall(string.find, s, p, 1, true) then n = n + 1 end\n"
    "          pcall(function() for w in string.gmatch(s, p) do n = n + 1 end end)\n"
    "          pcall(string.gsub, s, p, '%0%0')\n"
    "          pcall(string.rep, s, #p)\n"
    "          case.n = n\n";

static const char *SCRIPT_HEAD =
    "workflow: fs\nversion: 1\nroles: [R]\n"
    "data: {n: {type: integer, default: 0}, s: {type: string}, l: {type: list}, any: {type: any}}\n"
    "initial: a\nstates:\n  a:\n    on:\n"
    "      check: {guard: \"string.upper('a') == 'A' and _VERSION == 'Lua 5.4' and "
    "rawget(_ENV, 'x') == nil\"}\n"
    "      go:\n"
    "        actions: |\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 4096) return 0;
  case_engine *e = NULL;
  if (case_engine_open(&e) != CASE_OK) return 0;
  case_engine_limit(e, CASE_LIMIT_INSTRUCTIONS, 200000);
  case_engine_limit(e, CASE_LIMIT_MEMORY, 4 << 20);
  case_engine_limit(e, CASE_LIMIT_MICROSTEPS, 50);
  const case_def *d = NULL;
  case_instance *c = NULL, *c2 = NULL;
  if (!(data[0] & 1)) {
    const uint8_t *p = data + 1, *sep = memchr(p, 0xFF, size - 1);
    size_t np = sep ? (size_t)(sep - p) : (size - 1) / 2;
    size_t ns = size - 1 - np - (sep ? 1 : 0);
    const uint8_t *s = p + np + (sep ? 1 : 0);
    char *jp = byte_array(p, np), *js = byte_array(s, ns);
    char *payload = jp && js ? malloc(strlen(jp) + strlen(js) + 16) : NULL;
    if (payload) sprintf(payload, "{\"p\":%s,\"s\":%s}", jp, js);
    if (payload && case_def_load_string(e, PATTERNS, strlen(PATTERNS), "fz.yaml", &d) == CASE_OK &&
        case_instance_create(e, d, "p", NULL, NULL, 1772442000, &c) == CASE_OK)
      case_instance_fire(c, "go", payload, "fuzz", "R", 1772442000);
    free(jp);
    free(js);
    free(payload);
  } else {
    /* The source, indented into the YAML block (a line with a tab or another
     * character YAML refuses just fails to load). */
    size_t cap = strlen(SCRIPT_HEAD) + (size - 1) * 11 + 32;
    char *y = malloc(cap);
    if (y) {
      char *q = y + sprintf(y, "%s          ", SCRIPT_HEAD);
      for (size_t i = 1; i < size; i++) {
        if (data[i] == 0) continue;
        *q++ = (char)data[i];
        if (data[i] == '\n') q += sprintf(q, "          ");
      }
      *q++ = '\n';
      *q = 0;
      if (case_def_load_string(e, y, strlen(y), "fs.yaml", &d) == CASE_OK &&
          case_instance_create(e, d, "s1", NULL, NULL, 1772442000, &c) == CASE_OK &&
          case_instance_create(e, d, "s2", NULL, NULL, 1772442000, &c2) == CASE_OK) {
        case_instance_fire(c, "go", "{\"k\":[1,2]}", "fuzz", "R", 1772442000);
        /* whatever the action did, the next case sees a clean sandbox */
        if (case_instance_fire(c2, "check", NULL, "fuzz", "R", 1772442001) != CASE_OK) {
          fprintf(stderr, "isolation broken: %s\n", case_errmsg(e));
          abort();
        }
        case_instance_fire(c2, "go", NULL, "fuzz", "R", 1772442002);
        char *s = NULL;
        case_instance_snapshot(c, &s);
        case_free(s);
      }
      free(y);
    }
  }
  case_engine_close(e);
  return 0;
}

#include "replay_main.h"
