/*
 * Tests of the Lua sandbox (libcase/sandbox.c), driven through sbx_* with a
 * definition built by hand: forbidden facilities, limits, error positions,
 * typed writes, nested tables, deterministic pairs, raise/emit, modules and
 * location profiles, compile-once.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SCRIPTS 256

typedef struct fx {
  case_engine *e;
  sbx *s;
  case_def *d;
  json_t *data;     /* the data as JSON, made from slots by fdata() */
  cs_data *slots;   /* the case data the calls see */
  json_t *payload;
  cs_plist raised, emitted;
  case_call call;
  cs_script *scripts[MAX_SCRIPTS];
  int nscripts;
  cs_profile *profiles[4];
  int nprofiles;
  char dir[64];
} fx;

/* ------------------------------------------------------------------ */
/* Fixture: an engine and a definition with every field type           */
/* ------------------------------------------------------------------ */

static void add_field(case_def *d, const char *name, cs_type t)
{
  cs_field *f = &d->fields[d->nfields++];
  f->name = strdup(name);
  f->type = t;
  f->def = json_null();
}

static void add_param(case_def *d, const char *name, json_t *v)
{
  cs_param *p = &d->params[d->nparams++];
  p->name = strdup(name);
  p->value = v;
}

static int setup(void **state)
{
  fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  assert_int_equal(case_engine_open(&f->e), CASE_OK);
  f->s = f->e->sandbox;
  assert_non_null(f->s);
  case_def *d = calloc(1, sizeof *d);
  d->engine = f->e;
  d->file = strdup("wf.yaml");
  d->functions_ref = -1;
  d->fields = calloc(16, sizeof *d->fields);
  add_field(d, "x", TYPE_INTEGER);
  add_field(d, "name", TYPE_STRING);
  add_field(d, "list", TYPE_LIST);
  add_field(d, "m", TYPE_MAP);
  add_field(d, "any", TYPE_ANY);
  add_field(d, "flag", TYPE_BOOLEAN);
  add_field(d, "datum", TYPE_DATE);
  add_field(d, "amount", TYPE_NUMBER);
  d->params = calloc(8, sizeof *d->params);
  add_param(d, "limit", json_integer(10));
  add_param(d, "label", json_string("standaard"));
  f->d = d;
  /* The case view's table of field names, as a loaded definition has it. */
  d->fields_ref = -1;
  assert_int_equal(sbx_load_modules(f->s, d), CASE_OK);
  assert_true(d->fields_ref > 0);

  json_error_t err;
  f->data = json_loads("{\"x\": 50, \"name\": \"Amira\", \"list\": [1, 2],"
                       " \"m\": {\"a\": {\"b\": 1}}, \"any\": {\"o\": {}, \"n\": null},"
                       " \"flag\": true, \"amount\": 1.5}", 0, &err);
  assert_non_null(f->data);
  assert_int_equal(data_from_object(d, f->data, &f->slots), 0);
  f->payload = json_loads("{\"n\": 3, \"tags\": [\"a\", \"b\"]}", 0, &err);
  assert_non_null(f->payload);

  case_call *c = &f->call;
  c->engine = f->e;
  c->def = d;
  c->data = f->slots;
  c->event = "aanvraag";
  c->payload = f->payload;
  c->actor = "medewerker-7";
  c->role = "IND";
  c->time = 1700002800; /* 2023-11-14T23:00:00Z = 2023-11-15 00:00 in Amsterdam */
  c->raised = &f->raised;
  c->emitted = &f->emitted;

  snprintf(f->dir, sizeof f->dir, "/tmp/test_sandbox.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  fx *f = *state;
  for (int i = 0; i < f->nscripts; i++) {
    sbx_unref(f->s, f->scripts[i]->ref);
    free(f->scripts[i]->text);
    free(f->scripts[i]);
  }
  for (int i = 0; i < f->nprofiles; i++) sbx_profile_free(f->s, f->profiles[i]);
  case_def *d = f->d;
  sbx_unref(f->s, d->functions_ref);
  sbx_unref(f->s, d->fields_ref);
  for (int i = 0; i < d->nfields; i++) {
    free(d->fields[i].name);
    json_decref(d->fields[i].def);
  }
  for (int i = 0; i < d->nparams; i++) {
    free(d->params[i].name);
    json_decref(d->params[i].value);
  }
  for (int i = 0; i < d->nmodules; i++) free(d->modules[i]);
  free(d->modules);
  for (int i = 0; i < d->nraised; i++) free(d->raised[i]);
  free(d->raised);
  free(d->fields);
  free(d->params);
  free(d->file);
  free(d);
  free(f->call.errmsg);
  plist_clear(&f->raised);
  free(f->raised.v);
  plist_clear(&f->emitted);
  free(f->emitted.v);
  json_decref(f->data);
  data_release(f->slots);
  json_decref(f->payload);
  case_engine_close(f->e);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static cs_script *new_script(fx *f, cs_script_kind kind, const char *text, int line, int col)
{
  assert_true(f->nscripts < MAX_SCRIPTS);
  cs_script *sc = calloc(1, sizeof *sc);
  sc->kind = kind;
  sc->text = strdup(text);
  sc->pos.line = line;
  sc->pos.col = col;
  sc->ref = -1;
  f->scripts[f->nscripts++] = sc;
  return sc;
}

static void reset_err(fx *f)
{
  free(f->call.errmsg);
  f->call.errmsg = NULL;
}

/* Compiles and runs a guard expression written at wf.yaml:3:12. */
static int guard(fx *f, const char *expr, int *result)
{
  cs_script *g = new_script(f, SCRIPT_EXPR, expr, 3, 12);
  int rc = sbx_compile(f->s, f->d, g, 1);
  if (rc != CASE_OK) return rc;
  reset_err(f);
  f->call.is_guard = 1;
  return sbx_guard(f->s, &f->call, g, result);
}

static int truth(fx *f, const char *expr)
{
  int r = -1;
  int rc = guard(f, expr, &r);
  if (rc != CASE_OK) fail_msg("guard '%s' failed: %s", expr, f->call.errmsg);
  return r;
}

/* Compiles and runs an action written at wf.yaml:7:9. */
static int action(fx *f, const char *code)
{
  cs_script *a = new_script(f, SCRIPT_BLOCK, code, 7, 9);
  int rc = sbx_compile(f->s, f->d, a, 0);
  if (rc != CASE_OK) return rc;
  reset_err(f);
  f->call.is_guard = 0;
  return sbx_action(f->s, &f->call, a);
}

static void ok_action(fx *f, const char *code)
{
  int rc = action(f, code);
  if (rc != CASE_OK)
    fail_msg("action '%s' failed (%d): %s / %s", code, rc, f->call.errmsg,
             case_errmsg(f->e));
}

/* The case data as a JSON object, as the engine would write it. */
static json_t *fdata(fx *f)
{
  json_decref(f->data);
  f->data = data_json(f->slots, f->d);
  assert_non_null(f->data);
  return f->data;
}

static void assert_contains(const char *hay, const char *needle)
{
  if (!hay || !strstr(hay, needle))
    fail_msg("expected \"%s\" in \"%s\"", needle, hay ? hay : "(null)");
}

static void assert_field_json(fx *f, const char *field, const char *json)
{
  char *got = json_dumps(json_object_get(fdata(f), field), JSON_ENCODE_ANY | JSON_COMPACT);
  assert_non_null(got);
  assert_string_equal(got, json);
  free(got);
}

static char *write_file(fx *f, const char *name, const char *text)
{
  char *path = malloc(strlen(f->dir) + strlen(name) + 2);
  sprintf(path, "%s/%s", f->dir, name);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
  return path;
}

static void use_modules(fx *f, int n, ...)
{
  va_list ap;
  va_start(ap, n);
  f->d->modules = calloc((size_t)n, sizeof(char *));
  f->d->nmodules = n;
  for (int i = 0; i < n; i++) {
    const char *name = va_arg(ap, const char *);
    const char *text = va_arg(ap, const char *);
    f->d->modules[i] = write_file(f, name, text);
  }
  va_end(ap);
}

static const char *module_a =
    "local M = {}\n"
    "function M.is_big(c, e, p) return c.x > p.limit end\n"
    "function M.double(n) return n * 2 end\n"
    "function M.mark(c, e, p) c.name = 'marked by ' .. e.name end\n"
    "function M.broken(c) local t = nil\n"
    "  return t.field end\n"
    "return M\n";

/* ------------------------------------------------------------------ */
/* Forbidden facilities                                                */
/* ------------------------------------------------------------------ */

static void forbidden_facilities(void **state)
{
  fx *f = *state;
  static const char *const cases[][2] = {
    {"io.write('x')", "'io' is not available"},
    {"os.time()", "'os' is not available"},
    {"require('os')", "'require' is not available"},
    {"load('return 1')", "'load' is not available"},
    {"loadfile('/etc/passwd')", "'loadfile' is not available"},
    {"dofile('/etc/passwd')", "'dofile' is not available"},
    {"debug.getinfo(1)", "'debug' is not available"},
    {"package.path = ''", "'package' is not available"},
    {"print('x')", "'print' is not available"},
    {"string.dump(function() end)", "'string.dump' is not available"},
    {"local s = ('x').dump(type)", "'string.dump' is not available"},
    {"collectgarbage()", "'collectgarbage' is not available"},
    {"math.random()", "'math.random' is not available"},
    {"math.randomseed(1)", "'math.randomseed' is not available"},
    {"rawset(_ENV, 'x', 1)", "'rawset' is not available"},
    {"next({})", "'next' is not available"},
    {"coroutine.create(print)", "'coroutine' is not available"},
    {"x = 1", "assignment to undeclared global 'x' (use case.x or a local)"},
    {"function helper() end", "assignment to undeclared global 'helper'"},
    {"string.upper = nil", "'string' is read-only (cannot set string.upper)"},
    {"math.pi = 3", "'math' is read-only"},
    {"table.insert = nil", "'table' is read-only"},
    {"utf8.char = nil", "'utf8' is read-only"},
    {"getmetatable('').__index.upper = function() return 'hacked' end",
     "'string' is read-only (cannot set string.upper)"},
    {"getmetatable('').__index = {}", "'string metatable' is read-only"},
    {"setmetatable(_ENV, {})", "cannot change a protected metatable"},
    {"params.limit = 1", "'params' is read-only"},
    {"event.name = 'x'", "'event' is read-only"},
    {"setmetatable({}, {__gc = function() end})", "'__gc' is not available"},
    {"setmetatable({}, {__mode = 'k'})", "'__mode' is not available"},
    {"local s = string.format('%p', {})", "'%p' is not available"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = action(f, cases[i][0]);
    if (rc != CASE_SCRIPT)
      fail_msg("'%s' gave %d (%s), expected CASE_SCRIPT", cases[i][0], rc, f->call.errmsg);
    assert_contains(f->call.errmsg, cases[i][1]);
    assert_contains(f->call.errmsg, "wf.yaml:7:9: action '");
  }
  /* Nothing shared changed. */
  assert_int_equal(truth(f, "('abc'):upper() == 'ABC' and string.upper('b') == 'B'"), 1);
  assert_int_equal(truth(f, "math.pi > 3.14 and x == nil and helper == nil"), 1);
  assert_int_equal(truth(f, "getmetatable(string) == 'locked'"), 1);
  /* tostring gives no addresses (they differ per run). */
  assert_int_equal(truth(f, "tostring({}) == 'table' and tostring(type) == 'function'"), 1);
  assert_int_equal(truth(f, "string.format('%s|%d|%5.1f', {}, 3, 2.25) == 'table|3|  2.2'"),
                   1);
}

/* ------------------------------------------------------------------ */
/* Limits                                                              */
/* ------------------------------------------------------------------ */

static void instruction_budget(void **state)
{
  fx *f = *state;
  case_engine_limit(f->e, CASE_LIMIT_INSTRUCTIONS, 100000);
  assert_int_equal(action(f, "while true do end"), CASE_LIMIT);
  assert_string_equal(f->call.errmsg,
                      "wf.yaml:7:9: action 'while true do end' exceeded the instruction "
                      "budget (100000)");

  /* A pcall in the script cannot swallow it, nor can a loop of pcalls. */
  assert_int_equal(action(f, "pcall(function() while true do end end)\ncase.x = 1"),
                   CASE_LIMIT);
  assert_contains(f->call.errmsg, "exceeded the instruction budget (100000)");
  assert_int_equal(action(f, "for i = 1, 10 do pcall(function() while true do end end) end\n"
                             "case.x = 2"), CASE_LIMIT);
  assert_int_equal(json_integer_value(json_object_get(fdata(f), "x")), 50);
  int r = -1;
  assert_int_equal(guard(f, "(function() while true do end end)()", &r), CASE_LIMIT);
  assert_contains(f->call.errmsg, "wf.yaml:3:12: guard '(function() while true do end end)()'"
                                  " exceeded the instruction budget");

  /* Work inside C library functions counts too (a tester's hangs): an empty
   * string.rep is immediate, a huge table.move and a backtracking pattern on
   * a long subject exceed the budget instead of running for hours. */
  ok_action(f, "local s = string.rep('', 1e15) case.x = #s");
  assert_int_equal(json_integer_value(json_object_get(fdata(f), "x")), 0);
  assert_int_equal(action(f, "local t = table.move({1}, 1, 1e12, 2)"), CASE_LIMIT);
  assert_int_equal(action(f, "string.find(string.rep('a', 20000), '.-.-.-b')"), CASE_LIMIT);
  assert_int_equal(action(f, "local s = ('a'):rep(20000) s:match('(.-)(.-)x')"), CASE_LIMIT);
  /* Ordinary pattern use stays well inside it. */
  ok_action(f, "case.x = select(2, string.gsub(string.rep('a b ', 200), '%s+', ' '))");
  assert_int_equal(json_integer_value(json_object_get(fdata(f), "x")), 400);
  ok_action(f, "case.x = string.find('IR-2026-113', '^IR%-%d+%-%d+$') and 1 or 0");
  assert_int_equal(json_integer_value(json_object_get(fdata(f), "x")), 1);
  ok_action(f, "case.x = string.find('a.b', '.', 1, true)");
  assert_int_equal(json_integer_value(json_object_get(fdata(f), "x")), 2);
  ok_action(f, "case.x = 50"); /* as the pcall loop above left it */

  /* The budget is per call: 1000 calls of a small guard are fine, and so is
   * a loop just under the budget. */
  cs_script *g = new_script(f, SCRIPT_EXPR, "case.x == 50", 3, 12);
  assert_int_equal(sbx_compile(f->s, f->d, g, 1), CASE_OK);
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(sbx_guard(f->s, &f->call, g, &r), CASE_OK);
    assert_int_equal(r, 1);
  }
  ok_action(f, "local n = 0 for i = 1, 10000 do n = n + i end case.x = n");
  assert_int_equal(json_integer_value(json_object_get(fdata(f), "x")), 50005000);

  /* Above INT_MAX the budget is counted in steps. */
  case_engine_limit(f->e, CASE_LIMIT_INSTRUCTIONS, 5000000000LL);
  ok_action(f, "case.x = 7");
  /* 0 means unlimited. */
  case_engine_limit(f->e, CASE_LIMIT_INSTRUCTIONS, 0);
  ok_action(f, "local n = 0 for i = 1, 3000000 do n = n + 1 end case.x = n");
  assert_int_equal(json_integer_value(json_object_get(fdata(f), "x")), 3000000);
}

static void memory_cap(void **state)
{
  {
    /* A table shared at every level is tiny in Lua and exponential as JSON
     * (a tester's bomb: 26 levels took 9 GB); storing it hits a limit. */
    fx *f0 = *state;
    assert_int_equal(action(f0, "local t = {1} for i = 1, 26 do t = {t, t} end case.any = t"),
                     CASE_LIMIT);
    assert_contains(f0->call.errmsg, "value too large to store");
    assert_int_equal(action(f0, "local t = {1} for i = 1, 26 do t = {t, t} end raise('x', t)"),
                     CASE_LIMIT);
    /* tostring never shows an address, even with __name. */
    ok_action(f0, "case.name = tostring(setmetatable({}, {__name = 'X'})) .. "
                  "string.format('%s', setmetatable({}, {__name = 'Y'}))");
    assert_string_equal(json_string_value(json_object_get(fdata(f0), "name")), "XY");
  }
  fx *f = *state;
  case_engine_limit(f->e, CASE_LIMIT_INSTRUCTIONS, 0);
  case_engine_limit(f->e, CASE_LIMIT_MEMORY, 1 << 20);
  assert_int_equal(action(f, "local t = {} for i = 1, 1e8 do t[i] = i end"), CASE_LIMIT);
  assert_contains(f->call.errmsg, "wf.yaml:7:9: action 'local t = {} for i = 1, 1e8 do t[i] = i...'"
                                  " exceeded the memory limit (1048576 bytes)");
  assert_int_equal(action(f, "local s = string.rep('x', 100000000)"), CASE_LIMIT);
  assert_contains(f->call.errmsg, "exceeded the memory limit");
  /* Caught by pcall: still over the limit for this call. */
  assert_int_equal(action(f, "pcall(string.rep, 'x', 100000000) case.x = 1"), CASE_LIMIT);
  assert_contains(f->call.errmsg, "exceeded the memory limit (1048576 bytes)");
  /* The state is usable afterwards, and a modest allocation passes. */
  ok_action(f, "local t = {} for i = 1, 1000 do t[i] = i end case.x = #t");
  assert_int_equal(json_integer_value(json_object_get(fdata(f), "x")), 1000);
}

/* Every allocation the sandbox makes during a call can fail: with caps from
 * 0 bytes up, each script either succeeds or reports CASE_LIMIT, and the
 * state stays usable. */
static void allocation_failures(void **state)
{
  fx *f = *state;
  static const char *const scripts[] = {
    "case.m.a.b = 3",
    "table.insert(case.list, {k = 'v'})",
    "raise('stap', {a = {1, 2}}) emit('n', event.data)",
    "case.any = {z = 1, a = {b = {c = 'd'}}}",
    "local k = {} for n in pairs({c = 1, b = 2, a = 3}) do k[#k + 1] = n end case.name = "
    "table.concat(k)",
    "case.name = string.format('%s-%d', today, now) .. tostring({})",
  };
  cs_script *sc[6];
  for (int i = 0; i < 6; i++) {
    sc[i] = new_script(f, SCRIPT_BLOCK, scripts[i], 4, 4);
    assert_int_equal(sbx_compile(f->s, f->d, sc[i], 0), CASE_OK);
  }
  int ok = 0, limited = 0;
  for (long long cap = 1; cap < 20000; cap = cap * 3 / 2 + 1) {
    case_engine_limit(f->e, CASE_LIMIT_MEMORY, cap);
    for (int i = 0; i < 6; i++) {
      reset_err(f);
      int rc = sbx_action(f->s, &f->call, sc[i]);
      if (rc == CASE_OK) ok++;
      else if (rc == CASE_LIMIT) limited++;
      else fail_msg("script %d with cap %lld gave %d: %s", i, cap, rc, f->call.errmsg);
      if (rc == CASE_LIMIT) assert_contains(f->call.errmsg, "exceeded the memory limit");
    }
  }
  assert_true(limited > 0);
  assert_true(ok > 0);
  case_engine_limit(f->e, CASE_LIMIT_MEMORY, 0);
  for (int i = 0; i < 6; i++) assert_int_equal(sbx_action(f->s, &f->call, sc[i]), CASE_OK);
  assert_field_json(f, "any", "{\"a\":{\"b\":{\"c\":\"d\"}},\"z\":1}");
  assert_field_json(f, "name", "\"2023-11-15-1700002800table\"");
}

/* ------------------------------------------------------------------ */
/* Errors and positions                                                */
/* ------------------------------------------------------------------ */

static void runtime_error_position(void **state)
{
  fx *f = *state;
  assert_int_equal(action(f, "case.x = 5\nerror('boom')"), CASE_SCRIPT);
  assert_string_equal(f->call.errmsg, "wf.yaml:8:9: action 'case.x = 5...' failed: boom");
  /* The working data is still a valid object (the engine discards it). */
  assert_true(json_is_object(fdata(f)));
  assert_int_equal(json_integer_value(json_object_get(fdata(f), "x")), 5);

  int r = -1;
  assert_int_equal(guard(f, "case.name > 3", &r), CASE_SCRIPT);
  assert_string_equal(f->call.errmsg, "wf.yaml:3:12: guard 'case.name > 3' failed: "
                                      "attempt to compare number with string");
  assert_int_equal(guard(f, "case.nope == nil", &r), CASE_SCRIPT);
  assert_contains(f->call.errmsg, "case has no field 'nope'");
  assert_int_equal(guard(f, "params.nope == nil", &r), CASE_SCRIPT);
  assert_contains(f->call.errmsg, "unknown param 'nope'");
  /* The sandbox keeps working. */
  assert_int_equal(truth(f, "case.x == 5"), 1);
}

static void compile_errors(void **state)
{
  fx *f = *state;
  cs_script *g = new_script(f, SCRIPT_EXPR, "case.x >", 12, 14);
  assert_int_equal(sbx_compile(f->s, f->d, g, 1), CASE_SCRIPT);
  assert_string_equal(case_errmsg(f->e),
                      "wf.yaml:12:14: guard does not compile: unexpected symbol near ')'");
  const char *file;
  int line, col;
  assert_int_equal(case_errpos(f->e, &file, &line, &col), CASE_OK);
  assert_string_equal(file, "wf.yaml");
  assert_int_equal(line, 12);
  assert_int_equal(col, 14);
  assert_true(g->ref <= 0);

  cs_script *a = new_script(f, SCRIPT_BLOCK, "case.x = 1\ncase.x = = 2\n", 20, 11);
  assert_int_equal(sbx_compile(f->s, f->d, a, 0), CASE_SCRIPT);
  assert_string_equal(case_errmsg(f->e),
                      "wf.yaml:21:11: action does not compile: unexpected symbol near '='");

  cs_script *b = new_script(f, SCRIPT_BLOCK, "if case.x then", 5, 3);
  assert_int_equal(sbx_compile(f->s, f->d, b, 0), CASE_SCRIPT);
  assert_string_equal(case_errmsg(f->e),
                      "wf.yaml:5:3: action does not compile: 'end' expected near <eof>");

  /* A trailing comment in an expression is fine. */
  assert_int_equal(truth(f, "case.x == 50 -- the usual case"), 1);
  /* Bytecode is refused: text mode only. */
  cs_script *bc = new_script(f, SCRIPT_BLOCK, "\x1bLua", 1, 1);
  assert_int_equal(sbx_compile(f->s, f->d, bc, 0), CASE_SCRIPT);
}

static void compiled_once(void **state)
{
  fx *f = *state;
  cs_script *g = new_script(f, SCRIPT_EXPR, "case.x == 50", 2, 5);
  assert_int_equal(sbx_compile(f->s, f->d, g, 1), CASE_OK);
  int ref = g->ref;
  assert_true(ref > 0);
  /* Compiling again keeps the chunk. */
  assert_int_equal(sbx_compile(f->s, f->d, g, 1), CASE_OK);
  assert_int_equal(g->ref, ref);
  /* Calls run the cached chunk, never the text: change the text and the
   * guard still gives the compiled answer. */
  free(g->text);
  g->text = strdup("error('recompiled')");
  for (int i = 0; i < 1000; i++) {
    int r = -1;
    assert_int_equal(sbx_guard(f->s, &f->call, g, &r), CASE_OK);
    assert_int_equal(r, 1);
  }
  assert_int_equal(g->ref, ref);
}

/* ------------------------------------------------------------------ */
/* Case data                                                           */
/* ------------------------------------------------------------------ */

static void reads_and_conversions(void **state)
{
  fx *f = *state;
  assert_int_equal(truth(f, "case.x == 50 and math.type(case.x) == 'integer'"), 1);
  assert_int_equal(truth(f, "case.amount == 1.5 and math.type(case.amount) == 'float'"), 1);
  assert_int_equal(truth(f, "case.flag == true and case.datum == nil"), 1);
  assert_int_equal(truth(f, "#case.list == 2 and case.list[2] == 2"), 1);
  assert_int_equal(truth(f, "case.m.a.b == 1 and case.any.n == nil"), 1);
  assert_int_equal(truth(f, "event.name == 'aanvraag' and event.data.n == 3 and "
                            "event.data.tags[2] == 'b' and event.role == 'IND' and "
                            "event.actor == 'medewerker-7' and event.time == 1700002800"), 1);
  assert_int_equal(truth(f, "now == 1700002800 and today == '2023-11-15'"), 1);
  assert_int_equal(truth(f, "params.limit == 10 and params.label == 'standaard'"), 1);
  /* A guard's result is its Lua truthiness. */
  assert_int_equal(truth(f, "0"), 1);
  assert_int_equal(truth(f, "nil"), 0);
  assert_int_equal(truth(f, "case.datum"), 0);
  /* No event payload: event.data is nil. */
  json_t *keep = f->call.payload;
  f->call.payload = json_null();
  assert_int_equal(truth(f, "event.data == nil"), 1);
  json_decref(f->call.payload);
  f->call.payload = keep;
}

static void typed_writes(void **state)
{
  fx *f = *state;
  ok_action(f, "case.x = 60 case.name = 'Bashir' case.flag = false case.datum = '2024-02-29'");
  assert_field_json(f, "x", "60");
  assert_field_json(f, "name", "\"Bashir\"");
  assert_field_json(f, "flag", "false");
  assert_field_json(f, "datum", "\"2024-02-29\"");
  ok_action(f, "case.x = 6.0 case.amount = 2 case.name = nil");
  assert_field_json(f, "x", "6");
  assert_field_json(f, "amount", "2");
  assert_field_json(f, "name", "null");

  assert_int_equal(action(f, "case.x = 'abc'"), CASE_INVALID);
  assert_string_equal(f->call.errmsg, "wf.yaml:7:9: action 'case.x = 'abc'' failed: "
                                      "case.x must be an integer (got string)");
  assert_int_equal(action(f, "case.x = 2.5"), CASE_INVALID);
  assert_int_equal(action(f, "case.datum = '2024-02-30'"), CASE_INVALID);
  assert_contains(f->call.errmsg, "case.datum must be a date");
  assert_int_equal(action(f, "case.list = {a = 1}"), CASE_INVALID);
  assert_contains(f->call.errmsg, "case.list must be a list");
  assert_int_equal(action(f, "case.any = print"), CASE_SCRIPT); /* print is refused first */
  assert_int_equal(action(f, "case.any = function() end"), CASE_INVALID);
  assert_contains(f->call.errmsg, "cannot store a function");
  assert_int_equal(action(f, "local t = {} t.t = t case.any = t"), CASE_INVALID);
  assert_contains(f->call.errmsg, "nested too deeply");
  assert_int_equal(action(f, "case.any = {1, 2, a = 3}"), CASE_INVALID);
  assert_int_equal(action(f, "case.any = 0/0"), CASE_INVALID);
  assert_int_equal(action(f, "case.nope = 1"), CASE_INVALID);
  assert_contains(f->call.errmsg, "cannot assign case.nope: not a declared field");
  /* A refused write cannot be swallowed by pcall. */
  assert_int_equal(action(f, "pcall(function() case.x = 'abc' end) case.name = 'z'"),
                   CASE_INVALID);
  assert_string_equal(f->call.errmsg, "wf.yaml:7:9: action 'pcall(function() case.x = 'abc' "
                                      "end) cas...' failed: case.x must be an integer (got string)");
  assert_int_equal(action(f, "pcall(function() case.x = 'abc' end)\ncase.nope = 1"),
                   CASE_INVALID);
  assert_contains(f->call.errmsg, "wf.yaml:8:9: action 'pcall(function() case.x = 'abc' end)...'"
                                  " failed: cannot assign case.nope");
  /* Guards are pure. */
  int r = -1;
  assert_int_equal(guard(f, "(function() case.x = 1 return true end)()", &r), CASE_SCRIPT);
  assert_contains(f->call.errmsg, "guards are pure: cannot assign case.x in a guard");
  assert_int_equal(guard(f, "raise('x') or true", &r), CASE_SCRIPT);
  assert_contains(f->call.errmsg, "guards are pure: raise() is not allowed in a guard");
  assert_int_equal(guard(f, "emit('x') or true", &r), CASE_SCRIPT);
  assert_contains(f->call.errmsg, "guards are pure: emit()");
  assert_field_json(f, "x", "6");
}

static void nested_tables(void **state)
{
  fx *f = *state;
  ok_action(f, "table.insert(case.list, 3)\ncase.m.a.b = 2\ncase.m.c = 'x'");
  assert_field_json(f, "list", "[1,2,3]");
  assert_field_json(f, "m", "{\"a\":{\"b\":2},\"c\":\"x\"}");
  ok_action(f, "local l = case.list l[#l + 1] = 9");
  assert_field_json(f, "list", "[1,2,3,9]");
  ok_action(f, "case.list = {} table.insert(case.list, 'a') table.insert(case.list, 'b')");
  assert_field_json(f, "list", "[\"a\",\"b\"]");
  /* Assigned and then replaced by a scalar: the scalar wins. */
  ok_action(f, "local m = case.m m.z = 1 case.any = 4");
  assert_field_json(f, "any", "4");
  assert_field_json(f, "m", "{\"a\":{\"b\":2},\"c\":\"x\",\"z\":1}");
  /* Empty tables: a map field stays an object, an empty JSON object too. */
  ok_action(f, "case.m = {}");
  assert_field_json(f, "m", "{}");
  ok_action(f, "case.any = {o = {}} local o = case.any.o");
  assert_field_json(f, "any", "{\"o\":[]}");
  data_set(f->slots, f->d, "any", json_pack("{s:{}}", "o"), NULL);
  ok_action(f, "local a = case.any");
  assert_field_json(f, "any", "{\"o\":{}}");
  /* Keys are written in sorted order, whatever the insertion order. */
  ok_action(f, "case.m = {zeta = 1, alpha = 2, Mid = 3}");
  assert_field_json(f, "m", "{\"Mid\":3,\"alpha\":2,\"zeta\":1}");
  /* A guard's table changes are not written. */
  assert_int_equal(truth(f, "table.insert(case.list, 'g') == nil"), 1);
  assert_field_json(f, "list", "[\"a\",\"b\"]");
  /* A failing action leaves a valid data object. */
  assert_int_equal(action(f, "table.insert(case.list, 'c') case.list.x = 1"), CASE_INVALID);
  assert_true(json_is_array(json_object_get(fdata(f), "list")));
}

static void deterministic_pairs(void **state)
{
  fx *f = *state;
  ok_action(f, "local keys = {}\n"
               "for k, v in pairs({b = 1, a = 2, [3] = 0, [1] = 0, B = 1, [2.5] = 0, "
               "[true] = 1, [false] = 0, [-1] = 0}) do keys[#keys + 1] = tostring(k) end\n"
               "case.name = table.concat(keys, ',')");
  assert_field_json(f, "name", "\"-1,1,2.5,3,B,a,b,false,true\"");
  ok_action(f, "local keys = {} for k in pairs(math) do keys[#keys + 1] = k end "
               "case.name = keys[1] .. ',' .. keys[#keys]");
  assert_field_json(f, "name", "\"abs,ult\"");
  ok_action(f, "local keys = {} for k, v in pairs(case) do keys[#keys + 1] = k end "
               "case.name = table.concat(keys, ',')");
  assert_field_json(f, "name", "\"amount,any,flag,list,m,name,x\"");
  ok_action(f, "local keys = {} for k, v in pairs(params) do keys[#keys + 1] = k .. '=' .. "
               "tostring(v) end case.name = table.concat(keys, ',')");
  assert_field_json(f, "name", "\"label=standaard,limit=10\"");
  ok_action(f, "local keys = {} for k in pairs(event) do keys[#keys + 1] = k end "
               "case.name = table.concat(keys, ',')");
  assert_field_json(f, "name", "\"actor,data,name,role,time\"");
  /* Removing keys while iterating is allowed. */
  ok_action(f, "local t = {a = 1, b = 2, c = 3} local n = 0 "
               "for k in pairs(t) do t.b = nil n = n + 1 end case.x = n");
  assert_field_json(f, "x", "2");
  assert_int_equal(action(f, "for k in pairs({[{}] = 1}) do end"), CASE_SCRIPT);
  assert_contains(f->call.errmsg, "no deterministic order");
}

static void raise_and_emit(void **state)
{
  fx *f = *state;
  ok_action(f, "raise('intern.stap', {n = 1, lijst = {1, 2}})\nemit('notify')\n"
               "emit('brief', 'verzonden')");
  assert_int_equal(f->raised.n, 1);
  assert_string_equal(f->raised.v[0].name, "intern.stap");
  char *p = json_dumps(f->raised.v[0].payload, JSON_COMPACT);
  assert_string_equal(p, "{\"lijst\":[1,2],\"n\":1}");
  free(p);
  assert_int_equal(f->emitted.n, 2);
  assert_string_equal(f->emitted.v[0].name, "notify");
  assert_true(json_is_null(f->emitted.v[0].payload));
  assert_string_equal(f->emitted.v[1].name, "brief");
  assert_string_equal(json_string_value(f->emitted.v[1].payload), "verzonden");
  assert_int_equal(action(f, "raise(42)"), CASE_SCRIPT);
  assert_contains(f->call.errmsg, "raise: the first argument must be a non-empty event name");
  assert_int_equal(action(f, "emit('x', {f = print})"), CASE_SCRIPT);
  assert_int_equal(action(f, "emit('x', {f = function() end})"), CASE_INVALID);
  assert_int_equal(f->emitted.n, 2);
}

/* ------------------------------------------------------------------ */
/* Modules and profiles                                                */
/* ------------------------------------------------------------------ */

static void modules_and_named_scripts(void **state)
{
  fx *f = *state;
  use_modules(f, 1, "asiel.lua", module_a);
  assert_int_equal(sbx_load_modules(f->s, f->d), CASE_OK);
  assert_true(f->d->functions_ref > 0);

  cs_script *g = new_script(f, SCRIPT_NAMED, "is_big", 9, 16);
  assert_int_equal(sbx_compile(f->s, f->d, g, 1), CASE_OK);
  int r = -1;
  assert_int_equal(sbx_guard(f->s, &f->call, g, &r), CASE_OK);
  assert_int_equal(r, 1); /* 50 > 10 */
  assert_int_equal(truth(f, "double(case.x) == 100"), 1);

  cs_script *a = new_script(f, SCRIPT_NAMED, "mark", 10, 16);
  assert_int_equal(sbx_compile(f->s, f->d, a, 0), CASE_OK);
  assert_int_equal(sbx_action(f->s, &f->call, a), CASE_OK);
  assert_field_json(f, "name", "\"marked by aanvraag\"");

  cs_script *b = new_script(f, SCRIPT_NAMED, "broken", 11, 16);
  assert_int_equal(sbx_compile(f->s, f->d, b, 1), CASE_OK);
  reset_err(f);
  assert_int_equal(sbx_guard(f->s, &f->call, b, &r), CASE_SCRIPT);
  assert_contains(f->call.errmsg, "wf.yaml:11:16: guard 'broken' failed: ");
  assert_contains(f->call.errmsg, "asiel.lua:6: attempt to index a nil value (local 't')");

  cs_script *u = new_script(f, SCRIPT_NAMED, "nope", 12, 16);
  assert_int_equal(sbx_compile(f->s, f->d, u, 1), CASE_INVALID);
  assert_contains(case_errmsg(f->e), "wf.yaml:12:16: unknown guard function 'nope' "
                                     "(not in the lua: modules ");
  assert_contains(case_errmsg(f->e), "asiel.lua)");
}

static void module_errors(void **state)
{
  fx *f = *state;
  use_modules(f, 2, "a.lua", module_a, "b.lua", "return { double = function(n) end }");
  assert_int_equal(sbx_load_modules(f->s, f->d), CASE_SCRIPT);
  assert_contains(case_errmsg(f->e), "function 'double' is defined in two lua: modules: ");
  assert_contains(case_errmsg(f->e), "/a.lua and ");
  assert_contains(case_errmsg(f->e), "/b.lua");
  assert_int_equal(f->d->functions_ref, -1);

  char *p = write_file(f, "syntax.lua", "local M = {}\nfunction M.f( return M\n");
  free(f->d->modules[1]);
  f->d->modules[1] = p;
  assert_int_equal(sbx_load_modules(f->s, f->d), CASE_SCRIPT);
  assert_contains(case_errmsg(f->e), "syntax.lua:2: ");

  p = write_file(f, "global.lua", "helper = 1\nreturn {}\n");
  free(f->d->modules[1]);
  f->d->modules[1] = p;
  assert_int_equal(sbx_load_modules(f->s, f->d), CASE_SCRIPT);
  assert_contains(case_errmsg(f->e), "global.lua:1: assignment to undeclared global 'helper'");

  p = write_file(f, "hide.lua", "return { pairs = function() end }\n");
  free(f->d->modules[1]);
  f->d->modules[1] = p;
  assert_int_equal(sbx_load_modules(f->s, f->d), CASE_SCRIPT);
  assert_contains(case_errmsg(f->e), "function 'pairs' would hide the sandbox global");

  p = write_file(f, "loop.lua", "while true do end\n");
  free(f->d->modules[1]);
  f->d->modules[1] = p;
  assert_int_equal(sbx_load_modules(f->s, f->d), CASE_LIMIT);

  free(f->d->modules[1]);
  f->d->modules[1] = strdup("/nonexistent/dir/x.lua");
  assert_int_equal(sbx_load_modules(f->s, f->d), CASE_IO);
  assert_contains(case_errmsg(f->e), "/nonexistent/dir/x.lua: cannot read");
}

static void profiles(void **state)
{
  fx *f = *state;
  use_modules(f, 1, "asiel.lua", module_a);
  assert_int_equal(sbx_load_modules(f->s, f->d), CASE_OK);
  char *path = write_file(f, "ter_apel.lua",
                          "local function big(c) return c.x > 100 end\n"
                          "return {\n"
                          "  params = { limit = 20, label = 'Ter Apel', strict = true },\n"
                          "  functions = { is_big = big },\n"
                          "}\n");
  cs_profile *p = NULL;
  assert_int_equal(sbx_load_profile(f->s, "ter_apel", path, &p), CASE_OK);
  free(path);
  f->profiles[f->nprofiles++] = p;
  assert_string_equal(p->name, "ter_apel");
  char *pj = json_dumps(p->params, JSON_COMPACT);
  assert_string_equal(pj, "{\"label\":\"Ter Apel\",\"limit\":20,\"strict\":true}");
  free(pj);

  cs_script *g = new_script(f, SCRIPT_NAMED, "is_big", 9, 16);
  assert_int_equal(sbx_compile(f->s, f->d, g, 1), CASE_OK);
  int r = -1;
  assert_int_equal(sbx_guard(f->s, &f->call, g, &r), CASE_OK);
  assert_int_equal(r, 1); /* the module's: 50 > 10 */
  assert_int_equal(truth(f, "params.limit == 10"), 1);

  f->call.profile = p;
  assert_int_equal(sbx_guard(f->s, &f->call, g, &r), CASE_OK);
  assert_int_equal(r, 0); /* the profile's: 50 > 100 is false */
  assert_int_equal(truth(f, "params.limit == 20 and params.label == 'Ter Apel' and "
                            "params.strict == true"), 1);
  assert_int_equal(truth(f, "is_big(case) == false and double(2) == 4"), 1);
  f->call.profile = NULL;
  assert_int_equal(truth(f, "is_big(case, event, params) == true"), 1);
}

static void profile_errors(void **state)
{
  fx *f = *state;
  cs_profile *p = (cs_profile *)1;
  char *path = write_file(f, "bad_param.lua", "return { params = { limit = {} } }\n");
  assert_int_equal(sbx_load_profile(f->s, "x", path, &p), CASE_INVALID);
  assert_null(p);
  assert_contains(case_errmsg(f->e), "bad_param.lua: param 'limit' must be a boolean, number "
                                     "or string (it is a table)");
  free(path);
  path = write_file(f, "syntax.lua", "return {\n  params = { limit = }\n}\n");
  assert_int_equal(sbx_load_profile(f->s, "x", path, &p), CASE_SCRIPT);
  assert_contains(case_errmsg(f->e), "syntax.lua:2: ");
  free(path);
  path = write_file(f, "runtime.lua", "local t = nil\nreturn t.x\n");
  assert_int_equal(sbx_load_profile(f->s, "x", path, &p), CASE_SCRIPT);
  assert_contains(case_errmsg(f->e), "runtime.lua:2: attempt to index a nil value");
  free(path);
  path = write_file(f, "notable.lua", "return 42\n");
  assert_int_equal(sbx_load_profile(f->s, "x", path, &p), CASE_SCRIPT);
  assert_contains(case_errmsg(f->e), "must return a table");
  free(path);
  path = write_file(f, "typo.lua", "return { param = {} }\n");
  assert_int_equal(sbx_load_profile(f->s, "x", path, &p), CASE_SCRIPT);
  assert_contains(case_errmsg(f->e), "unknown key 'param'");
  free(path);
  assert_int_equal(sbx_load_profile(f->s, "x", "/nonexistent/p.lua", &p), CASE_IO);
}

/* ------------------------------------------------------------------ */
/* Isolation between evaluations (issue 15, points 1-4)                */
/* ------------------------------------------------------------------ */

static const char *module_frozen =
    "local M = {}\n"
    "local LIMITS = {low = 1, high = {value = 9, tags = {'a', 'b'}}}\n"
    "local LIST = {'x', 'y', 'z'}\n"
    "local Name = {}\n"
    "Name.__index = Name\n"
    "function Name.new(s) return setmetatable({s = s}, Name) end\n"
    "function Name:show() return '<' .. self.s .. '>' end\n"
    "local Default = setmetatable({}, {__index = function(t, k) return k .. '?' end})\n"
    "local find = string.find\n"
    "function M.read(c)\n"
    "  return LIMITS.high.value == 9 and #LIST == 3 and LIST[3] == 'z'\n"
    "     and LIMITS.high.tags[2] == 'b' and find('abc', 'b') == 2\n"
    "end\n"
    "function M.keys() local k = {} for n in pairs(LIMITS) do k[#k + 1] = n end\n"
    "  return table.concat(k, ',') end\n"
    "function M.ipairs_list() local k = {} for _, v in ipairs(LIST) do k[#k + 1] = v end\n"
    "  return table.concat(k) .. table.concat(LIST, '-') end\n"
    "function M.name() return Name.new('n'):show() .. tostring(getmetatable(Name.new('m')) == Name) end\n"
    "function M.default() return Default.anything end\n"
    "function M.list() return LIST end\n"
    "function M.limits() return LIMITS end\n"
    "function M.write_top() LIMITS.low = 2 end\n"
    "function M.write_nested() LIMITS.high.tags[1] = 'q' end\n"
    "function M.insert() table.insert(LIST, 'w') end\n"
    "function M.sort() table.sort(LIST, function(a, b) return a > b end) end\n"
    "function M.class() Name.show = nil end\n"
    "function M.rawset_env() _ENV.x = 1 end\n"
    "function M.raises() raise('van.module') end\n"
    "return M\n";

static void isolated_globals(void **state)
{
  fx *f = *state;
  static const char *const cases[][2] = {
    {"string = {}", "'string' is a sandbox global and cannot be assigned"},
    {"_VERSION = event.data.n", "'_VERSION' is a sandbox global"},
    {"case = {}", "'case' is a sandbox global"},
    {"now = 1", "'now' is a sandbox global"},
    {"pairs = nil", "'pairs' is a sandbox global"},
    {"setmetatable(_ENV, nil)", "cannot change a protected metatable"},
    {"table.insert(_ENV, 1)", "assignment to a global"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = action(f, cases[i][0]);
    if (rc != CASE_SCRIPT)
      fail_msg("'%s' gave %d (%s), expected CASE_SCRIPT", cases[i][0], rc, f->call.errmsg);
    assert_contains(f->call.errmsg, cases[i][1]);
  }
  /* The environment holds nothing and shows nothing of the base. */
  assert_int_equal(truth(f, "rawget(_ENV, 'string') == nil and getmetatable(_ENV) == 'locked' "
                            "and _VERSION == 'Lua 5.4' and string.upper('a') == 'A'"), 1);
  /* Code that assigns _ENV does not compile: the environment is shared by every
   * case.  A local _ENV is the script's own. */
  cs_script *a = new_script(f, SCRIPT_BLOCK, "case.x = 1\n_ENV = {case = case}", 7, 9);
  assert_int_equal(sbx_compile(f->s, f->d, a, 0), CASE_SCRIPT);
  assert_contains(case_errmsg(f->e), "wf.yaml:8:9: action assigns _ENV");
  cs_script *g = new_script(f, SCRIPT_EXPR, "(function() _ENV = nil end)()", 3, 12);
  assert_int_equal(sbx_compile(f->s, f->d, g, 1), CASE_SCRIPT);
  assert_contains(case_errmsg(f->e), "guard assigns _ENV");
  ok_action(f, "local _ENV = {case = case} case.x = 3");
  assert_field_json(f, "x", "3");
  /* The event names an action raises literally are noted on the definition
   * (chart.c keeps such events from roles). */
  cs_script *r = new_script(f, SCRIPT_BLOCK, "raise('x.y') raise 'z' raise(event.name)", 7, 9);
  assert_int_equal(sbx_compile(f->s, f->d, r, 0), CASE_OK);
  assert_int_equal(f->d->nraised, 2);
  assert_string_equal(f->d->raised[0], "x.y");
  assert_string_equal(f->d->raised[1], "z");
  /* A closure's own upvalues are fresh per call: assigning them is fine. */
  ok_action(f, "local n = 0 local function add(k) n = n + k end add(2) add(3) case.x = n");
  assert_field_json(f, "x", "5");
}

static void frozen_module_state(void **state)
{
  fx *f = *state;
  use_modules(f, 1, "frozen.lua", module_frozen);
  assert_int_equal(sbx_load_modules(f->s, f->d), CASE_OK);
  assert_int_equal(f->d->nraised, 1);
  assert_string_equal(f->d->raised[0], "van.module");
  /* Reads work as before: fields, nesting, length, ipairs, sorted pairs,
   * classes, __index functions, kept library functions. */
  assert_int_equal(truth(f, "read()"), 1);
  assert_int_equal(truth(f, "keys() == 'high,low'"), 1);
  assert_int_equal(truth(f, "ipairs_list() == 'xyzx-y-z'"), 1);
  assert_int_equal(truth(f, "name() == '<n>true'"), 1);
  assert_int_equal(truth(f, "default() == 'anything?'"), 1);
  /* A frozen table is stored as its contents. */
  ok_action(f, "case.list = list() case.any = limits()");
  assert_field_json(f, "list", "[\"x\",\"y\",\"z\"]");
  assert_field_json(f, "any", "{\"high\":{\"tags\":[\"a\",\"b\"],\"value\":9},\"low\":1}");
  /* No write reaches them, at any depth, by any route. */
  static const char *const writes[][2] = {
    {"write_top()", "'LIMITS' is read-only (cannot set LIMITS.low)"},
    {"write_nested()", "is read-only"},
    {"insert()", "'LIST' is read-only"},
    {"sort()", "'LIST' is read-only"},
    {"class()", "'Name' is read-only"},
    {"rawset_env()", "assignment to undeclared global 'x'"},
    {"list()[1] = 'q'", "'LIST' is read-only"},
    {"setmetatable(list(), nil)", "cannot change a protected metatable"},
  };
  for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
    int rc = action(f, writes[i][0]);
    if (rc != CASE_SCRIPT)
      fail_msg("'%s' gave %d (%s), expected CASE_SCRIPT", writes[i][0], rc, f->call.errmsg);
    assert_contains(f->call.errmsg, writes[i][1]);
  }
  assert_int_equal(truth(f, "read() and keys() == 'high,low' and name() == '<n>true'"), 1);
}

static void module_state_refused(void **state)
{
  fx *f = *state;
  static const char *const mods[][2] = {
    {"local n = 0\nreturn {f = function() n = n + 1 end}\n",
     "m.lua:2: function 'f' assigns 'n', a local of the file"},
    {"local function mk() local n = 0 return function() n = n + 1 return n end end\n"
     "local c = mk()\nreturn {f = function() return c() end}\n",
     "m.lua:1: 'c' assigns 'n'"},
    {"local t = {}\nreturn {f = function() local function g() t = {} end g() end}\n",
     "m.lua:2: function 'f' assigns 't'"},
    {"return {f = function() _ENV = {} end}\n", "function 'f' assigns '_ENV'"},
    {"local it = string.gmatch('a b', '%a')\nreturn {f = function() return it() end}\n",
     "'it' is a function with hidden state"},
    {"local h = {fn = function() end}\nlocal x = 0\nh.fn = function() x = 1 end\n"
     "return {f = function() h.fn() end}\n",
     "m.lua:3: 'h' assigns 'x'"},
  };
  for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++) {
    for (int k = 0; k < f->d->nmodules; k++) free(f->d->modules[k]);
    free(f->d->modules);
    use_modules(f, 1, "m.lua", mods[i][0]);
    int rc = sbx_load_modules(f->s, f->d);
    if (rc != CASE_SCRIPT)
      fail_msg("module %zu gave %d (%s), expected CASE_SCRIPT", i, rc, case_errmsg(f->e));
    assert_contains(case_errmsg(f->e), mods[i][1]);
  }
  /* A per-call closure in a module function is fine, and so is a module that
   * only builds its tables while it loads. */
  for (int k = 0; k < f->d->nmodules; k++) free(f->d->modules[k]);
  free(f->d->modules);
  use_modules(f, 1, "m.lua",
              "local T = {}\nfor i = 1, 3 do T[i] = i * i end\nlocal total = 0\n"
              "for _, v in ipairs(T) do total = total + v end\n"
              "return {f = function() local s = 0 local function add(v) s = s + v end\n"
              "  for _, v in ipairs(T) do add(v) end return s == total end}\n");
  assert_int_equal(sbx_load_modules(f->s, f->d), CASE_OK);
  assert_int_equal(truth(f, "f()"), 1);
}

static void metatables_are_copied(void **state)
{
  fx *f = *state;
  /* A field added to the metatable afterwards does not reach the table: no
   * weak table, whatever the order. */
  ok_action(f, "local mt = {} local t = setmetatable({}, mt) mt.__mode = 'v' "
               "mt.__index = function() return 'late' end "
               "t[1] = {} for i = 1, 20000 do local g = {i} end "
               "case.flag = t[1] ~= nil and t.other == nil and getmetatable(t) == mt");
  assert_field_json(f, "flag", "true");
  /* Replacing or removing a metatable this function set still works, unless
   * the metatable protected itself. */
  ok_action(f, "local t = setmetatable({}, {__index = {a = 1}}) "
               "setmetatable(t, {__index = {a = 2}}) local a = t.a "
               "setmetatable(t, nil) case.x = a * 10 + (t.a or 0)");
  assert_field_json(f, "x", "20");
  ok_action(f, "local t = setmetatable({}, {__metatable = 'mine'}) "
               "case.name = getmetatable(t) .. tostring(pcall(setmetatable, t, nil))");
  assert_field_json(f, "name", "\"minefalse\"");
  assert_int_equal(action(f, "setmetatable({}, {__mode = 'k'})"), CASE_SCRIPT);
  assert_contains(f->call.errmsg, "'__mode' is not available");
  assert_int_equal(action(f, "setmetatable({}, {__gc = true})"), CASE_SCRIPT);
  /* Metamethods keep working. */
  ok_action(f, "local V = {} V.__index = V V.__add = function(a, b) return a.n + b.n end "
               "V.__tostring = function(v) return 'v' .. v.n end "
               "local a, b = setmetatable({n = 2}, V), setmetatable({n = 3}, V) "
               "case.name = tostring(a) .. '=' .. (a + b)");
  assert_field_json(f, "name", "\"v2=5\"");
}

static void handlers_stay_bounded(void **state)
{
  fx *f = *state;
  case_engine_limit(f->e, CASE_LIMIT_INSTRUCTIONS, 100000);
  static const char *const loops[] = {
    "xpcall(function() while true do end end, function() while true do end end)",
    "xpcall(error, function() while true do end end)",
    "local x <close> = setmetatable({}, {__close = function() while true do end end}) "
    "while true do end",
    "table.sort({3, 2, 1}, function() while true do end end)",
  };
  for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
    int rc = action(f, loops[i]);
    if (rc != CASE_LIMIT) fail_msg("'%s' gave %d (%s)", loops[i], rc, f->call.errmsg);
    assert_contains(f->call.errmsg, "exceeded the instruction budget (100000)");
  }
  /* A handler still runs for ordinary errors. */
  ok_action(f, "local ok, m = xpcall(error, function(e) return 'handled: ' .. e end, 'x') "
               "case.name = tostring(ok) .. ' ' .. m");
  assert_field_json(f, "name", "\"false handled: x\"");
  /* The wall clock stops what the budget does not see. */
  case_engine_limit(f->e, CASE_LIMIT_INSTRUCTIONS, 0);
  case_engine_limit(f->e, CASE_LIMIT_TIME, 50);
  assert_int_equal(action(f, "while true do end"), CASE_LIMIT);
  assert_string_equal(f->call.errmsg, "wf.yaml:7:9: action 'while true do end' exceeded the "
                                      "time limit (50 ms)");
  ok_action(f, "case.x = 1");
}

static void library_costs(void **state)
{
  fx *f = *state;
  case_engine_limit(f->e, CASE_LIMIT_INSTRUCTIONS, 100000);
  case_engine_limit(f->e, CASE_LIMIT_MEMORY, 0);
  /* Each is charged its input size before it runs: over the budget at once. */
  static const char *const costly[] = {
    "local s = ('a'):rep(30000) s:find(('a'):rep(10000) .. 'b', 1, true)",
    "local s = ('a'):rep(30000) s:find(('a'):rep(10000) .. 'b')",
    "string.find(('a'):rep(40), ('.-'):rep(12) .. 'x')",
    "(('('):rep(2000)):find('%b()')",
    "utf8.len(('x'):rep(2000000))",
    "local t = {} for i = 1, 2000 do t[i] = i end for i = 1, 60 do table.insert(t, 1, i) end",
    "table.concat({}, '', 1, 200000)",
    "table.unpack({}, 1, 200000)",
    "local t = {} for i = 1, 8000 do t[i] = -i end table.sort(t) table.sort(t)",
    "local t = {} for i = 1, 5000 do t[i] = i end for k = 1, 3 do for _ in pairs(t) do break end end",
    "tonumber(('1'):rep(2000000))",
    "string.byte(('x'):rep(200000), 1, -1)",
  };
  for (size_t i = 0; i < sizeof costly / sizeof costly[0]; i++) {
    int rc = action(f, costly[i]);
    if (rc != CASE_LIMIT) fail_msg("'%s' gave %d (%s)", costly[i], rc, f->call.errmsg);
    assert_contains(f->call.errmsg, "exceeded the instruction budget");
  }
  /* What they return is what Lua's own functions return. */
  ok_action(f, "local s = 'IR-2026-113'\n"
               "assert(s:sub(-3) == '113' and s:sub(4, 7) == '2026' and s:byte(-1) == 51)\n"
               "assert(select('#', s:byte(1, -1)) == 11 and utf8.len('\u00e9a') == 2)\n"
               "assert(utf8.codepoint('\u00e9') == 233 and utf8.offset('a\u00e9b', 3) == 4)\n"
               "local t = {1, 2, 3} table.insert(t, 1, 0) table.insert(t, 4)\n"
               "assert(table.concat(t, ',') == '0,1,2,3,4' and table.remove(t, 1) == 0)\n"
               "assert(table.remove(t) == 4 and select('#', table.unpack(t)) == 3)\n"
               "assert(tonumber('0x10') == 16 and tonumber('z', 36) == 35 and tonumber(nil) == nil"
               " or true)\n"
               "assert(('abc'):upper() == 'ABC' and ('x'):rep(3, ',') == 'x,x,x')\n"
               "assert(string.unpack('i4', string.pack('i4', 7)) == 7)\n"
               "local w = {} for a in ('een twee'):gmatch('%a+') do w[#w + 1] = a end\n"
               "case.name = table.concat(w, '+') .. select(2, ('a b c'):gsub(' ', ''))");
  assert_field_json(f, "name", "\"een+twee2\"");
  /* table.sort is stable and takes a comparator; errors come through. */
  ok_action(f, "local t = {} for i = 1, 300 do t[i] = {k = i % 4, n = i} end\n"
               "table.sort(t, function(a, b) return a.k < b.k end)\n"
               "for i = 2, #t do assert(t[i-1].k < t[i].k or (t[i-1].k == t[i].k and t[i-1].n < t[i].n)) end\n"
               "local u = {5, 3, 9, 1} table.sort(u) table.sort({}) table.sort({1})\n"
               "local v = {'b', 'a', 'c'} table.sort(v, function(a, b) return a > b end)\n"
               "case.name = table.concat(u, ',') .. table.concat(v)");
  assert_field_json(f, "name", "\"1,3,5,9cba\"");
  assert_int_equal(action(f, "table.sort({1, 'a'})"), CASE_SCRIPT);
  assert_contains(f->call.errmsg, "attempt to compare");
}

/* json_size() (util.c) is exact: the length json_dumps would write. */
static void json_sizes(void **state)
{
  (void)state;
  static const char *const texts[] = {
    "{}", "[]", "null", "true", "false", "0", "-1", "9223372036854775807",
    "-9223372036854775808", "1.5", "-0.0", "1e300", "3.14159", "\"\"", "\"a/b\"",
    "\"quote \\\" back \\\\ nl \\n tab \\t cr \\r bs \\b ff \\f bell \\u0007 del \\u007f\"",
    "\"\\u00e9\\u2028 \\ud83d\\ude00\"", "[1, [2, [3, {}]], {\"a\": null}]",
    "{\"k\\n\": [\"x\", 1.25, false], \"\\u00e9\": {\"z\": {}}, \"n\": -12}",
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    json_error_t err;
    json_t *v = json_loads(texts[i], JSON_DECODE_ANY, &err);
    if (!v) fail_msg("%s: %s", texts[i], err.text);
    char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(d);
    if ((int64_t)strlen(d) != json_size(v))
      fail_msg("%s: dumps %zu bytes, json_size says %lld", d, strlen(d), (long long)json_size(v));
    free(d);
    json_decref(v);
  }
  assert_int_equal(json_size(NULL), 4);
}

/* Not a benchmark, a smoke test: prints the guard rate. */
static void guard_rate(void **state)
{
  fx *f = *state;
  cs_script *g = new_script(f, SCRIPT_EXPR, "case.x > 1 and params.limit == 10", 2, 5);
  assert_int_equal(sbx_compile(f->s, f->d, g, 1), CASE_OK);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const int n = 200000;
  for (int i = 0; i < n; i++) {
    int r = 0;
    if (sbx_guard(f->s, &f->call, g, &r) != CASE_OK || !r) fail();
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("# %d guard calls in %.3f s: %.0f/s\n", n, secs, n / secs);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(forbidden_facilities, setup, teardown),
    cmocka_unit_test_setup_teardown(instruction_budget, setup, teardown),
    cmocka_unit_test_setup_teardown(memory_cap, setup, teardown),
    cmocka_unit_test_setup_teardown(allocation_failures, setup, teardown),
    cmocka_unit_test_setup_teardown(runtime_error_position, setup, teardown),
    cmocka_unit_test_setup_teardown(compile_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(compiled_once, setup, teardown),
    cmocka_unit_test_setup_teardown(reads_and_conversions, setup, teardown),
    cmocka_unit_test_setup_teardown(typed_writes, setup, teardown),
    cmocka_unit_test_setup_teardown(nested_tables, setup, teardown),
    cmocka_unit_test_setup_teardown(deterministic_pairs, setup, teardown),
    cmocka_unit_test_setup_teardown(raise_and_emit, setup, teardown),
    cmocka_unit_test_setup_teardown(modules_and_named_scripts, setup, teardown),
    cmocka_unit_test_setup_teardown(module_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(profiles, setup, teardown),
    cmocka_unit_test_setup_teardown(profile_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(isolated_globals, setup, teardown),
    cmocka_unit_test_setup_teardown(frozen_module_state, setup, teardown),
    cmocka_unit_test_setup_teardown(module_state_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(metatables_are_copied, setup, teardown),
    cmocka_unit_test_setup_teardown(handlers_stay_bounded, setup, teardown),
    cmocka_unit_test_setup_teardown(library_costs, setup, teardown),
    cmocka_unit_test(json_sizes),
    cmocka_unit_test_setup_teardown(guard_rate, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
