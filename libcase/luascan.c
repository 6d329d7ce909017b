/*
 * luascan.c — what a guard or action refers to, found from its Lua source
 * (lscan_*), so that the loader can refuse `case.nosuchfield` or `params.nosuch`
 * before any case runs into them.
 *
 * Stock Lua 5.4 keeps a chunk's constants (the field names of `case.x`) where
 * only its internals reach them, so this is a lexical scan instead: a lexer
 * with Lua's own rules (names and keywords, numbers, short strings with their
 * escapes, long brackets [==[ ]==], short and long comments), then a look at
 * the token stream.  Scope is not tracked: a name declared anywhere in the
 * script as a local, parameter or loop variable is left alone everywhere, so
 * the scan can miss a reference but does not invent one.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef enum tok_kind { T_NAME, T_KEYWORD, T_STRING, T_NUMBER, T_OP } tok_kind;

typedef struct tok {
  tok_kind kind;
  size_t off, len;   /* the token in the text */
  size_t soff, slen; /* strings: the content between the quotes */
  int escaped;       /* strings: holds a backslash escape */
} tok;

typedef struct toks {
  tok *v;
  int n, cap;
} toks;

static int push(toks *t, tok x) {
  if (t->n == t->cap) {
    int cap = t->cap ? t->cap * 2 : 64;
    tok *v = realloc(t->v, (size_t)cap * sizeof *v);
    if (!v) return CASE_NOMEM;
    t->v = v;
    t->cap = cap;
  }
  t->v[t->n++] = x;
  return CASE_OK;
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alnum(char c) { return is_alpha(c) || is_digit(c); }

static int is_keyword(const char *s, size_t n) {
  static const char *const kw[] = {"and", "break", "do", "else", "elseif", "end", "false",
                                   "for", "function", "goto", "if", "in", "local", "nil",
                                   "not", "or", "repeat", "return", "then", "true", "until",
                                   "while", NULL};
  for (int i = 0; kw[i]; i++)
    if (strlen(kw[i]) == n && memcmp(kw[i], s, n) == 0) return 1;
  return 0;
}

/* At `[`: the level of a long bracket ([[ is 0, [==[ is 2), or -1 if none. */
static int long_open(const char *t, size_t len, size_t i) {
  if (i >= len || t[i] != '[') return -1;
  size_t j = i + 1;
  int level = 0;
  while (j < len && t[j] == '=') j++, level++;
  return j < len && t[j] == '[' ? level : -1;
}

/* Skips a long bracket of `level` opening at i; returns the index after it, or
 * 0 when it does not close.  *content gets where the content starts. */
static size_t long_skip(const char *t, size_t len, size_t i, int level, size_t *content,
                        size_t *clen) {
  size_t j = i + 2 + (size_t)level;
  if (j < len && t[j] == '\r') j++; /* a first newline is skipped */
  if (j < len && t[j] == '\n') j++;
  *content = j;
  for (; j < len; j++) {
    if (t[j] != ']') continue;
    size_t k = j + 1;
    int l = 0;
    while (k < len && t[k] == '=') k++, l++;
    if (l == level && k < len && t[k] == ']') {
      *clen = j - *content;
      return k + 1;
    }
  }
  return 0;
}

static int lex(const char *t, size_t len, toks *out) {
  size_t i = 0;
  while (i < len) {
    char c = t[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      i++;
      continue;
    }
    if (c == '-' && i + 1 < len && t[i + 1] == '-') { /* comment */
      int level = long_open(t, len, i + 2);
      if (level >= 0) {
        size_t content, clen;
        size_t end = long_skip(t, len, i + 2, level, &content, &clen);
        if (!end) return CASE_INVALID;
        i = end;
      } else {
        while (i < len && t[i] != '\n' && t[i] != '\r') i++;
      }
      continue;
    }
    tok x;
    memset(&x, 0, sizeof x);
    x.off = i;
    if (is_alpha(c)) {
      size_t j = i;
      while (j < len && is_alnum(t[j])) j++;
      x.kind = is_keyword(t + i, j - i) ? T_KEYWORD : T_NAME;
      x.len = j - i;
      i = j;
    } else if (is_digit(c) || (c == '.' && i + 1 < len && is_digit(t[i + 1]))) {
      size_t j = i;
      int hex = c == '0' && i + 1 < len && (t[i + 1] == 'x' || t[i + 1] == 'X');
      if (hex) j += 2;
      for (; j < len; j++) {
        char d = t[j];
        if ((d == '+' || d == '-') && j > i &&
            (hex ? (t[j - 1] == 'p' || t[j - 1] == 'P') : (t[j - 1] == 'e' || t[j - 1] == 'E')))
          continue;
        if (!is_alnum(d) && d != '.') break;
      }
      x.kind = T_NUMBER;
      x.len = j - i;
      i = j;
    } else if (c == '"' || c == '\'') {
      size_t j = i + 1;
      for (;;) {
        if (j >= len || t[j] == '\n' || t[j] == '\r') return CASE_INVALID; /* unfinished */
        if (t[j] == '\\') {
          x.escaped = 1;
          j++;
          if (j < len && t[j] == '\r' && j + 1 < len && t[j + 1] == '\n') j++;
          j++;
          continue;
        }
        if (t[j] == c) break;
        j++;
      }
      x.kind = T_STRING;
      x.soff = i + 1;
      x.slen = j - i - 1;
      x.len = j + 1 - i;
      i = j + 1;
    } else if (c == '[' && long_open(t, len, i) >= 0) {
      int level = long_open(t, len, i);
      size_t end = long_skip(t, len, i, level, &x.soff, &x.slen);
      if (!end) return CASE_INVALID;
      x.kind = T_STRING;
      x.escaped = 1; /* a long string's content is not a plain name anyway */
      x.len = end - i;
      i = end;
    } else {
      static const char *const ops[] = {"...", "..", "==", "~=", "<=", ">=", "//", "::",
                                        "<<", ">>", NULL};
      size_t n = 1;
      for (int k = 0; ops[k]; k++) {
        size_t l = strlen(ops[k]);
        if (i + l <= len && memcmp(t + i, ops[k], l) == 0) {
          n = l;
          break;
        }
      }
      x.kind = T_OP;
      x.len = n;
      i += n;
    }
    if (push(out, x) != CASE_OK) return CASE_NOMEM;
  }
  return CASE_OK;
}

static int tok_is(const char *t, const tok *x, tok_kind k, const char *s) {
  size_t n = strlen(s);
  return x->kind == k && x->len == n && memcmp(t + x->off, s, n) == 0;
}

static int op(const char *t, const toks *v, int i, const char *s) {
  return i >= 0 && i < v->n && tok_is(t, &v->v[i], T_OP, s);
}

static int kw(const char *t, const toks *v, int i, const char *s) {
  return i >= 0 && i < v->n && tok_is(t, &v->v[i], T_KEYWORD, s);
}

/* Names the script declares: locals, parameters, loop variables, labels. */
typedef struct names {
  const tok **v;
  int n, cap;
} names;

static int declare(names *d, const tok *x) {
  if (d->n == d->cap) {
    int cap = d->cap ? d->cap * 2 : 16;
    const tok **v = realloc(d->v, (size_t)cap * sizeof *v);
    if (!v) return CASE_NOMEM;
    d->v = v;
    d->cap = cap;
  }
  d->v[d->n++] = x;
  return CASE_OK;
}

static int declared(const char *t, const names *d, const char *s, size_t n) {
  for (int i = 0; i < d->n; i++)
    if (d->v[i]->len == n && memcmp(t + d->v[i]->off, s, n) == 0) return 1;
  return 0;
}

/* A name list after `local`, `for` or in a parameter list: NAME {, NAME}, with
 * `<attrib>` after local names.  Returns the index after it. */
static int name_list(const char *t, const toks *v, int i, names *d, int *rc) {
  while (i < v->n && v->v[i].kind == T_NAME) {
    if ((*rc = declare(d, &v->v[i])) != CASE_OK) return i;
    i++;
    if (op(t, v, i, "<") && i + 2 < v->n && op(t, v, i + 2, ">")) i += 3;
    if (!op(t, v, i, ",")) break;
    i++;
  }
  return i;
}

static int collect_declared(const char *t, const toks *v, names *d) {
  int rc = CASE_OK;
  for (int i = 0; i < v->n && rc == CASE_OK; i++) {
    if (kw(t, v, i, "local")) {
      if (kw(t, v, i + 1, "function")) {
        if (i + 2 < v->n && v->v[i + 2].kind == T_NAME) rc = declare(d, &v->v[i + 2]);
      } else {
        name_list(t, v, i + 1, d, &rc);
      }
    } else if (kw(t, v, i, "for")) {
      name_list(t, v, i + 1, d, &rc);
    } else if (kw(t, v, i, "function")) {
      int j = i + 1;
      while (j < v->n && !op(t, v, j, "(")) j++; /* function a.b:c ( */
      if (j < v->n) name_list(t, v, j + 1, d, &rc);
    }
  }
  return rc;
}

static int add_ref(lscan_ref **out, int *n, int *cap, lscan_kind kind, size_t off, size_t len,
                   int write, int indexed) {
  if (*n == *cap) {
    int c = *cap ? *cap * 2 : 16;
    lscan_ref *v = realloc(*out, (size_t)c * sizeof *v);
    if (!v) return CASE_NOMEM;
    *out = v;
    *cap = c;
  }
  (*out)[*n].kind = kind;
  (*out)[*n].off = off;
  (*out)[*n].len = len;
  (*out)[*n].write = write;
  (*out)[*n].indexed = indexed;
  ++*n;
  return CASE_OK;
}

/* 1 if `s` (n bytes) is a Lua name. */
static int plain_name(const char *s, size_t n) {
  if (n == 0 || !is_alpha(s[0])) return 0;
  for (size_t i = 1; i < n; i++)
    if (!is_alnum(s[i])) return 0;
  return !is_keyword(s, n);
}

int lscan_refs(const char *text, size_t len, lscan_ref **out, int *nout) {
  *out = NULL;
  *nout = 0;
  toks v = {0};
  int rc = lex(text, len, &v);
  names d = {0};
  if (rc == CASE_OK) rc = collect_declared(text, &v, &d);
  int n = 0, cap = 0;
  /* brace[k]: the kind of bracket open at depth k ('{', '(' or '[') */
  char *brace = rc == CASE_OK ? malloc((size_t)v.n + 1) : NULL;
  if (rc == CASE_OK && !brace) rc = CASE_NOMEM;
  int depth = 0;
  for (int i = 0; i < v.n && rc == CASE_OK; i++) {
    const tok *x = &v.v[i];
    if (x->kind == T_OP) {
      char c = text[x->off];
      if (x->len == 1 && (c == '{' || c == '(' || c == '[')) brace[depth++] = c;
      else if (x->len == 1 && (c == '}' || c == ')' || c == ']') && depth > 0) depth--;
      continue;
    }
    if (x->kind != T_NAME) continue;
    /* a field, method or label name, not a variable */
    if (op(text, &v, i - 1, ".") || op(text, &v, i - 1, ":") || op(text, &v, i - 1, "::") ||
        kw(text, &v, i - 1, "goto"))
      continue;
    /* a key in a table constructor: { name = ... } */
    if (depth > 0 && brace[depth - 1] == '{' && op(text, &v, i + 1, "=") &&
        (op(text, &v, i - 1, "{") || op(text, &v, i - 1, ",") || op(text, &v, i - 1, ";")))
      continue;
    if (declared(text, &d, text + x->off, x->len)) continue;
    lscan_kind kind = LSCAN_GLOBAL;
    if (tok_is(text, x, T_NAME, "case")) kind = LSCAN_CASE;
    else if (tok_is(text, x, T_NAME, "params")) kind = LSCAN_PARAMS;
    else if (tok_is(text, x, T_NAME, "event")) kind = LSCAN_EVENT;
    if (kind == LSCAN_GLOBAL) {
      int write = op(text, &v, i + 1, "=") && !(i > 0 && kw(text, &v, i - 1, "function"));
      int indexed = op(text, &v, i + 1, ".") || op(text, &v, i + 1, "[") ||
                    op(text, &v, i + 1, ":");
      rc = add_ref(out, &n, &cap, LSCAN_GLOBAL, x->off, x->len, write, indexed);
      continue;
    }
    /* case.NAME or case["NAME"] */
    if (op(text, &v, i + 1, ".") && i + 2 < v.n && v.v[i + 2].kind == T_NAME) {
      const tok *f = &v.v[i + 2];
      rc = add_ref(out, &n, &cap, kind, f->off, f->len, op(text, &v, i + 3, "="), 0);
    } else if (op(text, &v, i + 1, "[") && i + 3 < v.n && v.v[i + 2].kind == T_STRING &&
               !v.v[i + 2].escaped && op(text, &v, i + 3, "]") &&
               plain_name(text + v.v[i + 2].soff, v.v[i + 2].slen)) {
      const tok *f = &v.v[i + 2];
      rc = add_ref(out, &n, &cap, kind, f->soff, f->slen, op(text, &v, i + 4, "="), 0);
    }
  }
  free(brace);
  free(v.v);
  free(d.v);
  if (rc != CASE_OK) {
    free(*out);
    *out = NULL;
    return rc;
  }
  *nout = n;
  return CASE_OK;
}

/* Where `key` is set in the table constructor assigned to `table` (as in
 * `return { params = { drempel = 16 } }`): the offset of the key name (or of
 * its string in ["key"] = ...).  Falls back to any `key =` in the text, then
 * to `table`.  Returns 1 and stores the offset, or 0 when none is found. */
int lscan_table_key(const char *text, size_t len, const char *table, const char *key,
                    size_t *off) {
  toks v = {0};
  if (lex(text, len, &v) != CASE_OK) {
    free(v.v);
    return 0;
  }
  int found = 0;
  size_t any = 0, tab = 0;
  int have_any = 0, have_tab = 0;
  size_t klen = strlen(key);
  for (int i = 0; i < v.n && !found; i++) {
    const tok *x = &v.v[i];
    if (x->kind == T_NAME && x->len == klen && memcmp(text + x->off, key, klen) == 0 &&
        op(text, &v, i + 1, "=") && !have_any) {
      any = x->off;
      have_any = 1;
    }
    if (!(tok_is(text, x, T_NAME, table) && op(text, &v, i + 1, "=") && op(text, &v, i + 2, "{")))
      continue;
    if (!have_tab) tab = x->off, have_tab = 1;
    int depth = 0;
    for (int j = i + 2; j < v.n; j++) {
      const tok *y = &v.v[j];
      if (y->kind == T_OP && y->len == 1 && strchr("{([", text[y->off])) depth++;
      else if (y->kind == T_OP && y->len == 1 && strchr("})]", text[y->off])) {
        if (--depth == 0) break;
      }
      if (depth != 1) continue;
      int after_sep = op(text, &v, j - 1, "{") || op(text, &v, j - 1, ",") ||
                      op(text, &v, j - 1, ";");
      if (after_sep && y->kind == T_NAME && y->len == klen &&
          memcmp(text + y->off, key, klen) == 0 && op(text, &v, j + 1, "=")) {
        *off = y->off;
        found = 1;
        break;
      }
      if (after_sep && op(text, &v, j, "[") && j + 3 < v.n && v.v[j + 1].kind == T_STRING &&
          v.v[j + 1].slen == klen && memcmp(text + v.v[j + 1].soff, key, klen) == 0 &&
          op(text, &v, j + 2, "]") && op(text, &v, j + 3, "=")) {
        *off = v.v[j + 1].soff;
        found = 1;
        break;
      }
    }
  }
  free(v.v);
  if (!found && have_any) *off = any, found = 1;
  if (!found && have_tab) *off = tab, found = 1;
  return found;
}

/* ------------------------------------------------------------------ */
/* Functions of lua: modules                                           */
/* ------------------------------------------------------------------ */

/* One function definition in a module: its name, where its parameters are
 * (token indexes), where its body is, and the table it is defined in
 * (`function M.x`: M; none for `local function x` or `x = function`). */
typedef struct fn_def {
  int name;        /* token of the name, or -1 */
  int qual;        /* token of the qualifier (M in function M.x), or -1 */
  int local;       /* local function x / local x = function */
  int p0, np;      /* its parameters: tokens p0, p0 + 2, ... (NAME , NAME ...) */
  int body, end;   /* tokens of the body: [body, end) */
} fn_def;

typedef struct fn_defs {
  fn_def *v;
  int n, cap;
} fn_defs;

/* The token after the `end` that closes the block opened before i; -1 when
 * it does not close.  Blocks: function, if, do (for/while ... do), repeat
 * (closed by until). */
static int block_end(const char *t, const toks *v, int i) {
  int depth = 1;
  for (; i < v->n; i++) {
    if (kw(t, v, i, "function") || kw(t, v, i, "if") || kw(t, v, i, "do") ||
        kw(t, v, i, "repeat"))
      depth++;
    else if (kw(t, v, i, "end") || kw(t, v, i, "until"))
      if (--depth == 0) return i;
  }
  return -1;
}

static int find_functions(const char *t, const toks *v, fn_defs *out) {
  for (int i = 0; i < v->n; i++) {
    if (!kw(t, v, i, "function")) continue;
    fn_def f = {-1, -1, 0, 0, 0, 0, 0};
    int j = i + 1;
    if (j < v->n && v->v[j].kind == T_NAME) { /* function a.b.c(  /  function a:b( */
      int last = j, prev = -1, method = 0;
      while (op(t, v, j + 1, ".") || op(t, v, j + 1, ":")) {
        method = op(t, v, j + 1, ":");
        if (j + 2 >= v->n || v->v[j + 2].kind != T_NAME) break;
        prev = j;
        j += 2;
        last = j;
      }
      if (method) continue; /* an implicit self moves the parameters: no claims */
      f.name = last;
      f.qual = prev == i + 1 ? prev : -1; /* only one level: function M.x */
      f.local = kw(t, v, i - 1, "local");
      j++;
    } else if (op(t, v, i - 1, "=")) { /* x = function( / M.x = function( / ["x"] = function( */
      if (i >= 2 && v->v[i - 2].kind == T_NAME) {
        f.name = i - 2;
        if (op(t, v, i - 3, ".") && i >= 4 && v->v[i - 4].kind == T_NAME &&
            !op(t, v, i - 5, "."))
          f.qual = i - 4;
        f.local = kw(t, v, i - 3, "local");
      } else if (op(t, v, i - 2, "]") && i >= 4 && v->v[i - 3].kind == T_STRING &&
                 op(t, v, i - 4, "[")) {
        f.name = i - 3;
      }
    }
    if (!op(t, v, j, "(")) continue;
    f.p0 = j + 1;
    int k = j + 1;
    while (k < v->n && v->v[k].kind == T_NAME) {
      f.np++;
      if (!op(t, v, k + 1, ",")) {
        k++;
        break;
      }
      k += 2;
    }
    if (!op(t, v, k, ")")) continue; /* ... or something the scan does not follow */
    f.body = k + 1;
    f.end = block_end(t, v, k + 1);
    if (f.end < 0) continue;
    if (out->n == out->cap) {
      int cap = out->cap ? out->cap * 2 : 32;
      fn_def *nv = realloc(out->v, (size_t)cap * sizeof *nv);
      if (!nv) return CASE_NOMEM;
      out->v = nv;
      out->cap = cap;
    }
    out->v[out->n++] = f;
  }
  return CASE_OK;
}

/* The text of token x: for a string its content. */
static void tok_text(const char *t, const tok *x, const char **s, size_t *n) {
  if (x->kind == T_STRING) *s = t + x->soff, *n = x->slen;
  else *s = t + x->off, *n = x->len;
}

static int same_text(const char *t, const tok *a, const tok *b) {
  const char *s1, *s2;
  size_t n1, n2;
  tok_text(t, a, &s1, &n1);
  tok_text(t, b, &s2, &n2);
  return n1 == n2 && memcmp(s1, s2, n1) == 0;
}

/* 1 when token k is the `(` of a function's parameter list
 * (function (, function x (, function a.b (). */
static int param_list(const char *t, const toks *v, int k) {
  if (!op(t, v, k, "(")) return 0;
  int j = k - 1;
  while (j >= 0 && (v->v[j].kind == T_NAME || op(t, v, j, ".") || op(t, v, j, ":"))) j--;
  return kw(t, v, j, "function");
}

/* 1 when the body of f declares the name of token p again (a local, a
 * parameter of an inner function, a loop variable) or assigns it: then the
 * name no longer surely holds what was passed in. */
static int rebound(const char *t, const toks *v, const fn_def *f, const tok *p) {
  for (int i = f->body; i < f->end; i++) {
    const tok *x = &v->v[i];
    if (x->kind != T_NAME || !same_text(t, x, p) || op(t, v, i - 1, ".") || op(t, v, i - 1, ":"))
      continue;
    /* in a name list: local a, p / for k, p in / function(a, p) / a, p = ... */
    int k = i - 1;
    while (k >= f->body && (v->v[k].kind == T_NAME || op(t, v, k, ","))) k--;
    int j = i + 1;
    while (j + 1 < f->end && op(t, v, j, ",") && v->v[j + 1].kind == T_NAME) j += 2;
    if (kw(t, v, k, "local") || kw(t, v, k, "for") || param_list(t, v, k)) return 1;
    if (op(t, v, j, "=") && !op(t, v, k, "{")) return 1; /* not a key of { p = ... } */
  }
  return 0;
}

typedef struct fn_scan {
  const char *t;
  const toks *v;
  const fn_defs *fns;
  unsigned char *seen; /* per function: the roles (bits) it was scanned with */
  lscan_ref *out;
  int n, cap;
} fn_scan;

/* Roles of a parameter: what the caller passes in it. */
enum { ROLE_CASE = 1, ROLE_EVENT = 2, ROLE_PARAMS = 4 };

static int scan_fn(fn_scan *S, int fi, const int *roles, int depth);

/* In f's body, a call of another function of the module that passes one of
 * f's role parameters on: scan that function with the role at that place. */
static int follow_call(fn_scan *S, const fn_def *f, int i, const int *roles, int depth) {
  const char *t = S->t;
  const toks *v = S->v;
  const tok *x = &v->v[i];
  int qual = op(t, v, i - 1, ".") && i >= 2 && v->v[i - 2].kind == T_NAME ? i - 2 : -1;
  if (op(t, v, i - 1, ":") || (op(t, v, i - 1, ".") && qual < 0)) return CASE_OK;
  if (qual >= 0 && op(t, v, qual - 1, ".")) return CASE_OK;
  int target = -1;
  for (int k = 0; k < S->fns->n && target < 0; k++) {
    const fn_def *g = &S->fns->v[k];
    if (g->name < 0 || !same_text(t, &v->v[g->name], x)) continue;
    if ((qual < 0) != (g->qual < 0)) continue;
    if (qual >= 0 && !same_text(t, &v->v[g->qual], &v->v[qual])) continue;
    target = k;
  }
  if (target < 0) return CASE_OK;
  int sub[16] = {0}, any = 0, arg = 0;
  int j = i + 2, pdepth = 0;
  for (; j < f->end && arg < 16; j++) {
    const tok *y = &v->v[j];
    if (y->kind == T_OP && y->len == 1 && strchr("({[", t[y->off])) pdepth++;
    else if (y->kind == T_OP && y->len == 1 && strchr(")}]", t[y->off])) {
      if (pdepth-- == 0) break;
    }
    if (pdepth == 0 && y->kind == T_NAME && !op(t, v, j - 1, ".") && !op(t, v, j - 1, ":") &&
        (op(t, v, j - 1, "(") || op(t, v, j - 1, ",")) &&
        (op(t, v, j + 1, ",") || op(t, v, j + 1, ")")))
      for (int p = 0; p < f->np && p < 3; p++)
        if (roles[p] && same_text(t, y, &v->v[f->p0 + 2 * p])) sub[arg] = roles[p], any = 1;
    if (pdepth == 0 && op(t, v, j, ",")) arg++;
  }
  return any ? scan_fn(S, target, sub, depth + 1) : CASE_OK;
}

/*
 * Which tokens of f's body run only on a branch a param decides: inside an
 * if/elseif chain one of whose conditions reads (or passes on) the params
 * parameter (`if
 * params.pact then ... else ... end`: a module shared by two versions of a
 * workflow branches on a param one of them sets), and after such an `if`
 * whose branch returns (`if params.x ~= 'AMMR' then return 'DIII' end`).  A
 * reference there is not claimed: the scan does not know the param's value.
 * cond[i - f->body] is 1 for such a token.
 */
static char *param_branches(const char *t, const toks *v, const fn_def *f, const int *use) {
  int n = f->end - f->body;
  char *cond = calloc((size_t)n + 1, 1);
  int *kind = malloc(((size_t)n + 2) * sizeof *kind); /* 1 if, 0 other block */
  char *c = malloc((size_t)n + 2), *ret = malloc((size_t)n + 2), *after = malloc((size_t)n + 2);
  if (!cond || !kind || !c || !ret || !after) {
    free(cond), free(kind), free(c), free(ret), free(after);
    return NULL;
  }
  int top = 0; /* entry 0: the function's own block */
  kind[0] = 0, c[0] = 0, ret[0] = 0, after[0] = 0;
  for (int i = f->body; i < f->end; i++) {
    int on = 0;
    for (int k = 0; k <= top && !on; k++) on = c[k] || after[k];
    cond[i - f->body] = (char)on;
    int opens_if = kw(t, v, i, "if"), elif = kw(t, v, i, "elseif");
    if (opens_if || elif) {
      if (opens_if) {
        top++;
        kind[top] = 1, c[top] = 0, ret[top] = 0, after[top] = 0;
      }
      for (int j = i + 1; j < f->end && !kw(t, v, j, "then"); j++) {
        const tok *x = &v->v[j];
        if (x->kind != T_NAME || op(t, v, j - 1, ".") || op(t, v, j - 1, ":")) continue;
        int is_params = tok_is(t, x, T_NAME, "params");
        for (int p = 0; p < f->np && p < 16 && !is_params; p++)
          is_params = use[p] == ROLE_PARAMS && same_text(t, x, &v->v[f->p0 + 2 * p]);
        if (is_params) c[top] = 1; /* params.x, or params passed to a function that reads it */
      }
    } else if (kw(t, v, i, "function") || kw(t, v, i, "do") || kw(t, v, i, "repeat")) {
      top++;
      kind[top] = 0, c[top] = 0, ret[top] = 0, after[top] = 0;
    } else if (kw(t, v, i, "return") && top > 0) {
      ret[top] = 1;
    } else if ((kw(t, v, i, "end") || kw(t, v, i, "until")) && top > 0) {
      if (kind[top] == 1 && c[top] && ret[top]) after[top - 1] = 1;
      top--;
    }
  }
  free(kind), free(c), free(ret), free(after);
  return cond;
}

static int scan_fn(fn_scan *S, int fi, const int *roles, int depth) {
  const char *t = S->t;
  const toks *v = S->v;
  const fn_def *f = &S->fns->v[fi];
  if (depth > 8) return CASE_OK;
  unsigned char mask = 0;
  for (int p = 0; p < f->np && p < 16; p++)
    if (roles[p]) mask |= (unsigned char)roles[p];
  if ((S->seen[fi] & mask) == mask) return CASE_OK; /* scanned so already */
  S->seen[fi] |= mask;
  int use[16] = {0};
  for (int p = 0; p < f->np && p < 16; p++)
    use[p] = roles[p] && !rebound(t, v, f, &v->v[f->p0 + 2 * p]) ? roles[p] : 0;
  char *cond = param_branches(t, v, f, use);
  if (!cond) return CASE_NOMEM;
  int rc = CASE_OK;
  for (int i = f->body; i < f->end && rc == CASE_OK; i++) {
    const tok *x = &v->v[i];
    if (x->kind != T_NAME || cond[i - f->body]) continue; /* cond: a branch a param decides */
    if (op(t, v, i + 1, "(")) { /* h(...) or M.h(...): follow_call sorts them out */
      rc = follow_call(S, f, i, use, depth);
      continue;
    }
    if (op(t, v, i - 1, ".") || op(t, v, i - 1, ":")) continue;
    int role = 0;
    for (int p = 0; p < f->np && p < 16 && !role; p++)
      if (use[p] && same_text(t, x, &v->v[f->p0 + 2 * p])) role = use[p];
    if (!role) continue;
    lscan_kind kind = role == ROLE_CASE ? LSCAN_CASE
                      : role == ROLE_PARAMS ? LSCAN_PARAMS : LSCAN_EVENT;
    if (op(t, v, i + 1, ".") && i + 2 < v->n && v->v[i + 2].kind == T_NAME &&
        !op(t, v, i + 3, "(")) {
      const tok *fld = &v->v[i + 2];
      rc = add_ref(&S->out, &S->n, &S->cap, kind, fld->off, fld->len,
                   op(t, v, i + 3, "="), 0);
    } else if (op(t, v, i + 1, "[") && i + 3 < v->n && v->v[i + 2].kind == T_STRING &&
               !v->v[i + 2].escaped && op(t, v, i + 3, "]") &&
               plain_name(t + v->v[i + 2].soff, v->v[i + 2].slen)) {
      const tok *fld = &v->v[i + 2];
      rc = add_ref(&S->out, &S->n, &S->cap, kind, fld->soff, fld->slen,
                   op(t, v, i + 4, "="), 0);
    }
  }
  free(cond);
  return rc;
}

struct lscan_module {
  const char *text;
  toks v;
  fn_defs fns;
  unsigned char *seen;
};

int lscan_module_open(const char *text, size_t len, lscan_module **out) {
  *out = NULL;
  lscan_module *m = calloc(1, sizeof *m);
  if (!m) return CASE_NOMEM;
  m->text = text;
  int rc = lex(text, len, &m->v);
  if (rc == CASE_OK) rc = find_functions(text, &m->v, &m->fns);
  if (rc == CASE_OK && m->fns.n > 0 && !(m->seen = calloc((size_t)m->fns.n, 1))) rc = CASE_NOMEM;
  if (rc != CASE_OK) {
    lscan_module_close(m);
    return rc;
  }
  *out = m;
  return CASE_OK;
}

void lscan_module_close(lscan_module *m) {
  if (!m) return;
  free(m->seen);
  free(m->fns.v);
  free(m->v.v);
  free(m);
}

int lscan_module_refs(lscan_module *m, const char *fname, lscan_ref **out, int *nout,
                      int *found) {
  *out = NULL;
  *nout = 0;
  *found = 0;
  const char *text = m->text;
  if (m->fns.n > 0) memset(m->seen, 0, (size_t)m->fns.n);
  fn_scan S = {text, &m->v, &m->fns, m->seen, NULL, 0, 0};
  size_t flen = strlen(fname);
  int rc = CASE_OK;
  /* the function the definition names: an entry of the module's table (not
   * a local helper of the same name) */
  for (int k = 0; rc == CASE_OK && k < m->fns.n && !*found; k++) {
    const fn_def *f = &m->fns.v[k];
    if (f->name < 0 || f->local) continue;
    const char *s;
    size_t n;
    tok_text(text, &m->v.v[f->name], &s, &n);
    if (n != flen || memcmp(s, fname, n) != 0) continue;
    *found = 1;
    static const int roles[16] = {ROLE_CASE, ROLE_EVENT, ROLE_PARAMS};
    rc = scan_fn(&S, k, roles, 0);
  }
  if (rc != CASE_OK) {
    free(S.out);
    return rc;
  }
  *out = S.out;
  *nout = S.n;
  return CASE_OK;
}

int lscan_function_refs(const char *text, size_t len, const char *fname, lscan_ref **out,
                        int *nout, int *found) {
  *out = NULL;
  *nout = 0;
  *found = 0;
  lscan_module *m = NULL;
  int rc = lscan_module_open(text, len, &m);
  if (rc == CASE_OK) rc = lscan_module_refs(m, fname, out, nout, found);
  lscan_module_close(m);
  return rc;
}
