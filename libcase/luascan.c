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
