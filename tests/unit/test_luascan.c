/*
 * luascan.c: what a script refers to, found with Lua's lexical rules, and
 * scalarmap.c: where each byte of a YAML scalar's value comes from.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The references of `text` as "c:name p:name e:name g:name" (w for writes, i
 * for indexed globals). */
static char *refs_of(const char *text) {
  lscan_ref *r = NULL;
  int n = 0;
  int rc = lscan_refs(text, strlen(text), &r, &n);
  if (rc != CASE_OK) {
    free(r);
    return strdup(rc == CASE_INVALID ? "<invalid>" : "<nomem>");
  }
  sbuf b;
  sbuf_init(&b);
  for (int i = 0; i < n; i++) {
    char k = r[i].kind == LSCAN_CASE ? 'c' : r[i].kind == LSCAN_PARAMS ? 'p'
             : r[i].kind == LSCAN_EVENT ? 'e' : 'g';
    sbuf_printf(&b, "%s%c%s%s:%.*s", i ? " " : "", k, r[i].write ? "w" : "",
                r[i].indexed ? "i" : "", (int)r[i].len, text + r[i].off);
  }
  free(r);
  char *s = sbuf_take(&b);
  return s ? s : strdup("");
}

static void expect_refs(const char *text, const char *want) {
  char *got = refs_of(text);
  if (strcmp(got, want) != 0) fail_msg("%s\n  got:  %s\n  want: %s", text, got, want);
  free(got);
}

static void test_fields_and_params(void **state) {
  (void)state;
  expect_refs("case.a > params.b", "c:a p:b");
  expect_refs("case . a == event.data.x", "c:a e:data");
  expect_refs("case.a = case.b + 1", "cw:a c:b");
  expect_refs("case[\"x\"] = 1; case['y']", "cw:x c:y");
  /* not plain names: a computed key, an escaped string */
  expect_refs("case[k] = case[\"a\\\"b\"]", "g:k");
  expect_refs("case.a.b.c", "c:a");
}

static void test_strings_and_comments_hide_names(void **state) {
  (void)state;
  expect_refs("-- case.nope\ncase.a", "c:a");
  expect_refs("--[==[ case.nope\n ]] still ]==] case.b", "c:b");
  expect_refs("x = \"case.nope\" .. 'params.nope'", "gw:x");
  expect_refs("local s = [[case.nope]] .. [=[params.x]=]", "");
  expect_refs("local s = 'a\\'case.x'", "");
  expect_refs("case.a --[[ params.x ]] + params.y", "c:a p:y");
  /* an unfinished string or comment does not lex (the compiler says so) */
  char *got = refs_of("case.a = 'open");
  assert_string_equal(got, "<invalid>");
  free(got);
  got = refs_of("--[[ open");
  assert_string_equal(got, "<invalid>");
  free(got);
}

static void test_fields_of_others_and_locals(void **state) {
  (void)state;
  expect_refs("t.case.x", "gi:t");         /* t's field named case */
  expect_refs("obj:case()", "gi:obj");
  expect_refs("local case = {}; case.x = 1", "");
  expect_refs("for _, params in ipairs(x) do params.y() end", "g:ipairs g:x");
  expect_refs("local f = function(event) return event.zzz end", "");
  expect_refs("{case = 1, params = 2}", "");  /* constructor keys */
  expect_refs("string.format('%d', case.n)", "gi:string c:n");
  expect_refs("goto done; ::done::", "");
  expect_refs("x = 0x1p+4 + 1e-3 + .5", "gw:x");
  expect_refs("not cse.klaar", "gi:cse");
}

/* ---- scalarmap ---- */

/* The value and positions of the first scalar after "k: " in the one-key
 * document `yaml`, rebuilt by smap_build from marks found with libyaml. */
#include <yaml.h>

static cs_pos *map_of(const char *yaml, char **value, int *style_out) {
  yaml_parser_t p;
  assert_true(yaml_parser_initialize(&p));
  yaml_parser_set_input_string(&p, (const unsigned char *)yaml, strlen(yaml));
  int scalars = 0;
  cs_pos *map = NULL;
  for (;;) {
    yaml_event_t ev;
    assert_true(yaml_parser_parse(&p, &ev));
    if (ev.type == YAML_SCALAR_EVENT && ++scalars == 2) {
      int style = SMAP_PLAIN;
      switch (ev.data.scalar.style) {
      case YAML_SINGLE_QUOTED_SCALAR_STYLE: style = SMAP_SINGLE; break;
      case YAML_DOUBLE_QUOTED_SCALAR_STYLE: style = SMAP_DOUBLE; break;
      case YAML_LITERAL_SCALAR_STYLE: style = SMAP_LITERAL; break;
      case YAML_FOLDED_SCALAR_STYLE: style = SMAP_FOLDED; break;
      default: break;
      }
      *style_out = style;
      *value = strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
      int rc = smap_build(yaml, strlen(yaml), style, (int)ev.start_mark.line,
                          (int)ev.start_mark.column, (int)ev.end_mark.line,
                          (int)ev.end_mark.column, *value, ev.data.scalar.length, &map);
      if (rc != CASE_OK) fail_msg("no map for %s", yaml);
    }
    int end = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
    if (end) break;
  }
  yaml_parser_delete(&p);
  return map;
}

/* Byte `at` of the value is `c` and comes from line:col. */
static void expect_at(const char *yaml, size_t at, char c, int line, int col) {
  char *value = NULL;
  int style = 0;
  cs_pos *m = map_of(yaml, &value, &style);
  assert_non_null(m);
  if (value[at] != c) fail_msg("%s: byte %zu is '%c', not '%c'", yaml, at, value[at], c);
  if (m[at].line != line || m[at].col != col)
    fail_msg("%s: byte %zu ('%c') at %d:%d, expected %d:%d", yaml, at, c, m[at].line,
             m[at].col, line, col);
  free(m);
  free(value);
}

static void test_scalar_maps(void **state) {
  (void)state;
  /* plain, folded over lines: "a > 1 and b" */
  expect_at("k: a > 1 and\n  b\n", 10, 'b', 2, 3);
  expect_at("k: a\n\n  b\n", 1, '\n', 2, 1);
  expect_at("k: a\n\n  b\n", 2, 'b', 3, 3);
  /* single-quoted: '' is one quote */
  expect_at("k: 'it''s x'\n", 5, 'x', 1, 11);
  /* double-quoted: escapes are one byte where they stand; \n does not move lines */
  expect_at("k: \"a\\nb\\tc\"\n", 2, 'b', 1, 8);
  expect_at("k: \"a\\nb\\tc\"\n", 4, 'c', 1, 11);
  expect_at("k: \"a \\\n   b\"\n", 2, 'b', 2, 4); /* escaped line break joins */
  expect_at("k: \"x\\u00e9y\"\n", 3, 'y', 1, 12);  /* é is two bytes from one escape */
  expect_at("k: \"a\n  b\"\n", 2, 'b', 2, 3);
  /* literal block: one value line per source line */
  expect_at("k: |\n  a\n    b\n  c\n", 4, 'b', 3, 5);
  expect_at("k: |\n  a\n    b\n  c\n", 6, 'c', 4, 3);
  /* folded block: lines join with a space, an empty line is a newline */
  expect_at("k: >\n  a\n  b\n\n  c\n", 2, 'b', 3, 3);
  expect_at("k: >\n  a\n  b\n\n  c\n", 4, 'c', 5, 3);
  /* line starts as Lua counts them */
  char *value = NULL;
  int style = 0;
  const char *y = "k: \"one\\ntwo\n  three\\nfour\"\n";
  cs_pos *m = map_of(y, &value, &style);
  cs_pos *lines = NULL;
  int n = 0;
  cs_pos first = {1, 5};
  assert_int_equal(smap_line_starts(value, strlen(value), m, first, &lines, &n), CASE_OK);
  assert_int_equal(n, 3); /* "one", "two three", "four" */
  assert_int_equal(lines[0].line, 1);
  assert_int_equal(lines[0].col, 5);
  assert_int_equal(lines[1].line, 1);
  assert_int_equal(lines[1].col, 10);
  assert_int_equal(lines[2].line, 2);
  assert_int_equal(lines[2].col, 10);
  free(lines);
  free(m);
  free(value);
}

/* The references of module function `fn` in `text`, as refs_of gives them. */
static void expect_fn_refs(const char *text, const char *fn, const char *want) {
  lscan_ref *r = NULL;
  int n = 0, found = 0;
  int rc = lscan_function_refs(text, strlen(text), fn, &r, &n, &found);
  sbuf b;
  sbuf_init(&b);
  if (rc != CASE_OK) sbuf_puts(&b, "<error>");
  else if (!found) sbuf_puts(&b, "<not found>");
  for (int i = 0; rc == CASE_OK && i < n; i++) {
    char k = r[i].kind == LSCAN_CASE ? 'c' : r[i].kind == LSCAN_PARAMS ? 'p'
             : r[i].kind == LSCAN_EVENT ? 'e' : 'g';
    sbuf_printf(&b, "%s%c%s:%.*s", i ? " " : "", k, r[i].write ? "w" : "", (int)r[i].len,
                text + r[i].off);
  }
  free(r);
  char *got = sbuf_take(&b);
  if (strcmp(got ? got : "", want) != 0) fail_msg("%s\n  got:  %s\n  want: %s", text, got, want);
  free(got);
}

/* Issue 12.3: functions of lua: modules, called as fn(case, event, params). */
static void test_module_functions(void **state) {
  (void)state;
  /* the parameters by place, whatever their names; every way to define one */
  expect_fn_refs("local M = {}\nfunction M.f(z, e, p) z.a = p.b return e.data end\nreturn M",
                 "f", "cw:a p:b e:data");
  expect_fn_refs("return { f = function(case, event, params) return case['x'] end }", "f",
                 "c:x");
  expect_fn_refs("return { [\"f\"] = function(c) return c.x end }", "f", "c:x");
  expect_fn_refs("local M = {}\nM.f = function(c) return c.x end\nreturn M", "f", "c:x");
  /* a local helper of the same name is not the function the definition names */
  expect_fn_refs("local function f(c) return c.x end\nreturn {}", "f", "<not found>");
  /* helpers the case or the params are passed to, by place; M.g too */
  expect_fn_refs("local M = {}\nlocal function h(n, z) return z.y end\n"
                 "function M.g(q) return q.w end\n"
                 "function M.f(c, e, p) return h(1, c) or M.g(p) end\nreturn M",
                 "f", "c:y p:w");
  /* a method or a field called as a function is no reference; string.len is no helper */
  expect_fn_refs("local M = {}\nfunction M.f(c) return c.x(1) or string.len(c) end\nreturn M",
                 "f", "");
  /* rebound: no claims */
  expect_fn_refs("local M = {}\nfunction M.f(c) c = {} return c.x end\nreturn M", "f", "");
  expect_fn_refs("local M = {}\nfunction M.f(c) for _, c in pairs({}) do end return c.x end\n"
                 "return M", "f", "");
  /* a branch a param decides, and what follows an early return in one */
  expect_fn_refs("local M = {}\nfunction M.f(c, e, p)\n  if p.nieuw then c.a = 1 "
                 "else c.b = 1 end\n  return c.d\nend\nreturn M", "f", "c:d");
  expect_fn_refs("local M = {}\nfunction M.f(c, e, p)\n  if p.nieuw then return c.a "
                 "else c.b = 1 end\n  return c.d\nend\nreturn M", "f", "");
  expect_fn_refs("local M = {}\nfunction M.f(c, e, p)\n  if p.x ~= 1 then return 0 end\n"
                 "  return c.a\nend\nreturn M", "f", "");
  expect_fn_refs("local M = {}\nfunction M.f(c, e, p)\n  if c.k then return c.a end\n"
                 "  return c.b\nend\nreturn M", "f", "c:k c:a c:b");
  /* recursion ends */
  expect_fn_refs("local M = {}\nfunction M.f(c) return M.f(c) or c.x end\nreturn M", "f",
                 "c:x");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fields_and_params),
      cmocka_unit_test(test_module_functions),
      cmocka_unit_test(test_strings_and_comments_hide_names),
      cmocka_unit_test(test_fields_of_others_and_locals),
      cmocka_unit_test(test_scalar_maps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
