/*
 * loader.c — YAML workflow definitions -> case_def, validated with positions.
 *
 * Three stages:
 *  1. libyaml events -> a small node tree with 1-based positions.  Anchors,
 *     aliases, tags, duplicate keys and second documents are refused here.
 *  2. the tree -> the model: states in document pre-order (states[0] is the
 *     synthetic root), then per state its initial/default targets, scripts,
 *     transitions (`on`, `always`, `after`) and timers (`after`, `deadlines`).
 *  3. checks on the whole model (reachability, dead ends), then the Lua
 *     modules are loaded and every guard and action is compiled.
 *
 * The first error stops the load: it is reported through eng_err_at() with the
 * position of the offending node and the partly built definition is freed.
 * The format is documented in docs/workflow-format.md.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Nesting of YAML collections we accept at all, whatever the state depth limit:
 * bounds the recursion of every walk over the tree. */
#define YAML_DEPTH_CAP 1000
/* Largest amount in a duration ("100000000 seconds" is three years). */

/* ------------------------------------------------------------------ */
/* The node tree                                                       */
/* ------------------------------------------------------------------ */

typedef enum nkind { N_SCALAR, N_SEQ, N_MAP } nkind;

typedef struct node {
  nkind kind;
  cs_pos pos;       /* where the node starts */
  cs_pos text_pos;  /* scalars: where the text starts (block scalars: next line) */
  char *str;        /* scalar text, NUL-terminated */
  size_t len;
  int plain;        /* a plain (unquoted) scalar: typed by its content */
  int style;        /* scalars: SMAP_* */
  yaml_mark_t start, end; /* libyaml's marks (0-based), for scalarmap.c */
  int script;       /* a Lua expression or block as written, never a function name
                       (set by the SCXML reader: cond="flag" reads a variable) */
  struct node **kids; /* seq: items; map: key, value, key, value, ... */
  int n, cap;
} node;

typedef enum vtype { V_NULL, V_BOOL, V_INT, V_REAL, V_STR } vtype;

static void node_free(node *n) {
  if (!n) return;
  for (int i = 0; i < n->n; i++) node_free(n->kids[i]);
  free(n->kids);
  free(n->str);
  free(n);
}

static int node_push(node *parent, node *kid) {
  if (parent->n == parent->cap) {
    int cap = parent->cap ? parent->cap * 2 : 8;
    node **k = realloc(parent->kids, (size_t)cap * sizeof *k);
    if (!k) return -1;
    parent->kids = k;
    parent->cap = cap;
  }
  parent->kids[parent->n++] = kid;
  return 0;
}

static int npairs(const node *m) { return m && m->kind == N_MAP ? m->n / 2 : 0; }
static const node *pkey(const node *m, int i) { return m->kids[2 * i]; }
static const node *pval(const node *m, int i) { return m->kids[2 * i + 1]; }

static const node *map_get(const node *m, const char *key) {
  for (int i = 0; i < npairs(m); i++)
    if (strcmp(pkey(m, i)->str, key) == 0) return pval(m, i);
  return NULL;
}

typedef struct ld ld;
static int yaml_to_json(ld *L, const node *n, json_t **out);

static int is_digits(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

/* The type of a scalar as YAML 1.2's core schema sees it (quoted = string). */
static vtype scalar_type(const node *n) {
  if (!n || n->kind != N_SCALAR) return V_STR;
  if (!n->plain) return V_STR;
  const char *s = n->str;
  if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
    return V_NULL;
  if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE") || !strcmp(s, "false") ||
      !strcmp(s, "False") || !strcmp(s, "FALSE"))
    return V_BOOL;
  const char *p = s;
  if (*p == '-' || *p == '+') p++;
  if (is_digits(p)) return V_INT;
  /* [-+]? ( \.[0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
  int digits = 0;
  while (*p >= '0' && *p <= '9') p++, digits++;
  if (*p == '.') {
    p++;
    while (*p >= '0' && *p <= '9') p++, digits++;
  }
  if (!digits) return V_STR;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '-' || *p == '+') p++;
    if (!is_digits(p)) return V_STR;
    return V_REAL;
  }
  return *p ? V_STR : V_REAL;
}

static int scalar_bool(const node *n) { return n->str[0] == 't' || n->str[0] == 'T'; }

/* 0 and the value, or -1 when the integer does not fit a long long. */
static int scalar_int(const node *n, long long *out) {
  const char *p = n->str;
  int neg = 0;
  if (*p == '-' || *p == '+') neg = *p++ == '-';
  unsigned long long v = 0, lim = neg ? (unsigned long long)LLONG_MAX + 1ULL : LLONG_MAX;
  for (; *p; p++) {
    unsigned d = (unsigned)(*p - '0');
    if (v > (lim - d) / 10) return -1;
    v = v * 10 + d;
  }
  *out = neg ? (v == (unsigned long long)LLONG_MAX + 1ULL ? LLONG_MIN : -(long long)v)
             : (long long)v;
  return 0;
}

static const char *describe(const node *n) {
  if (!n) return "missing";
  switch (n->kind) {
  case N_MAP: return "a map";
  case N_SEQ: return "a list";
  case N_SCALAR: break;
  }
  switch (scalar_type(n)) {
  case V_NULL: return "empty";
  case V_BOOL: return "a boolean";
  case V_INT: return "an integer";
  case V_REAL: return "a number";
  case V_STR: break;
  }
  return "a string";
}

/* ------------------------------------------------------------------ */
/* The loader's context and errors                                     */
/* ------------------------------------------------------------------ */

struct ld {
  case_engine *e;
  case_def *d;
  const char *file;
  const char *text;
  size_t len;
  int depth_cap;      /* YAML nesting accepted */
  node *doc;          /* the document's root node */
  const node **snode; /* per state: its YAML map (NULL for {} / null / the root) */
  int cap_states, cap_transitions, cap_timers, cap_snode;
  const node *lua;    /* the top-level `lua:` list, for positions */
  const json_t *pinned; /* module sources to use instead of files (def_parse_pinned) */
  int *hslot;         /* state id index, see find_state() */
  size_t hcap;
  struct { cs_script *s; const node *n; int is_guard; } *scripts; /* every script, its node */
  int nscripts, cap_scripts;
  int cap_fields, cap_invokes;
  const char *dir;    /* the definition's directory for files it names, or NULL */
  int format;         /* DEF_FORMAT_*: the syntax the tree came from */
  int uses_sends;     /* an action sends or cancels: the definition gets its send timer */
  int uses_exec;      /* an action is executable content, or a script kept its error */
  const case_def *parent;  /* an inline child definition's parent, or NULL */
  const char *default_id;  /* its id when it names none */
  lscan_module **modscan;  /* per lua: module, lexed once for the reference check */
};

static int fail(ld *L, int rc, cs_pos pos, const char *fmt, ...) CASE_PRINTF(4, 5);

static int fail(ld *L, int rc, cs_pos pos, const char *fmt, ...) {
  char small[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return eng_err_at(L->e, rc, L->file, pos, "%s", "invalid definition");
  if ((size_t)n < sizeof small) return eng_err_at(L->e, rc, L->file, pos, "%s", small);
  char *big = malloc((size_t)n + 1);
  if (!big) return eng_err_at(L->e, rc, L->file, pos, "%s", small);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  eng_err_at(L->e, rc, L->file, pos, "%s", big);
  free(big);
  return rc;
}

static int oom(ld *L) { return eng_err(L->e, CASE_NOMEM, "out of memory loading %s", L->file); }

static cs_pos mark_pos(yaml_mark_t m) {
  cs_pos p = {(int)m.line + 1, (int)m.column + 1};
  return p;
}

/* Line and column (1-based, columns in bytes) of a byte offset in the text. */
static cs_pos offset_pos(const ld *L, size_t off) {
  cs_pos p = {1, 1};
  if (off > L->len) off = L->len;
  for (size_t i = 0; i < off; i++) {
    if (L->text[i] == '\n') {
      p.line++;
      p.col = 1;
    } else {
      p.col++;
    }
  }
  return p;
}

/* Block scalars (| and >) start their text on the line after the indicator:
 * the first non-blank character there, so that Lua line n is YAML line
 * text_pos.line + n - 1. */
static cs_pos block_text_pos(const ld *L, yaml_mark_t m) {
  cs_pos p = mark_pos(m);
  size_t i = 0;
  int line = 0;
  while (i < L->len && line < (int)m.line + 1) {
    if (L->text[i] == '\n') line++;
    i++;
  }
  if (line != (int)m.line + 1) return p;
  int col = 1;
  while (i < L->len && L->text[i] == ' ') i++, col++;
  cs_pos t = {p.line + 1, col};
  return t;
}

/* ------------------------------------------------------------------ */
/* Stage 1: YAML -> node tree                                          */
/* ------------------------------------------------------------------ */

static int yaml_error(ld *L, const yaml_parser_t *p) {
  if (p->error == YAML_MEMORY_ERROR) return oom(L);
  const char *problem = p->problem ? p->problem : "YAML syntax error";
  if (p->error == YAML_READER_ERROR) {
    cs_pos pos = offset_pos(L, p->problem_offset);
    if (p->problem_value != -1)
      return fail(L, CASE_INVALID, pos, "%s: #x%X (expected UTF-8 text)", problem,
                  (unsigned)p->problem_value);
    return fail(L, CASE_INVALID, pos, "%s (expected UTF-8 text)", problem);
  }
  cs_pos pos = mark_pos(p->problem_mark);
  if (p->context) {
    cs_pos c = mark_pos(p->context_mark);
    return fail(L, CASE_INVALID, pos, "YAML: %s (%s at line %d, column %d)", problem, p->context,
                c.line, c.col);
  }
  if (p->problem_mark.column > 1024 && strstr(problem, "mapping values"))
    return fail(L, CASE_INVALID, pos, "YAML: %s (a key is at most 1024 characters long)",
                problem);
  return fail(L, CASE_INVALID, pos, "YAML: %s", problem);
}

static int key_cmp(const void *a, const void *b) {
  const node *x = *(const node *const *)a, *y = *(const node *const *)b;
  int c = strcmp(x->str, y->str);
  if (c) return c;
  if (x->pos.line != y->pos.line) return x->pos.line < y->pos.line ? -1 : 1;
  return x->pos.col < y->pos.col ? -1 : x->pos.col > y->pos.col;
}

static int pos_before(cs_pos a, cs_pos b) {
  return a.line < b.line || (a.line == b.line && a.col < b.col);
}

/* Duplicate keys of a finished map: the first repeated key in document order. */
static int check_duplicates(ld *L, const node *m) {
  int n = npairs(m);
  if (n < 2) return CASE_OK;
  const node *dup = NULL, *first = NULL;
  if (n <= 16) {
    for (int i = 1; i < n && !dup; i++)
      for (int j = 0; j < i; j++)
        if (strcmp(pkey(m, i)->str, pkey(m, j)->str) == 0) {
          dup = pkey(m, i);
          first = pkey(m, j);
          break;
        }
  } else {
    const node **k = malloc((size_t)n * sizeof *k);
    if (!k) return oom(L);
    for (int i = 0; i < n; i++) k[i] = pkey(m, i);
    qsort(k, (size_t)n, sizeof *k, key_cmp);
    for (int i = 1; i < n; i++) {
      if (strcmp(k[i]->str, k[i - 1]->str) != 0) continue;
      if (!dup || pos_before(k[i]->pos, dup->pos)) {
        dup = k[i];
        int j = i - 1;
        while (j > 0 && strcmp(k[j - 1]->str, k[i]->str) == 0) j--;
        first = k[j];
      }
    }
    free(k);
  }
  if (!dup) return CASE_OK;
  return fail(L, CASE_INVALID, dup->pos, "duplicate key '%s' (first at line %d, column %d)",
              dup->str, first->pos.line, first->pos.col);
}

static int parse_yaml(ld *L) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) return oom(L);
  yaml_parser_set_input_string(&p, (const unsigned char *)L->text, L->len);
  node **stack = malloc((size_t)(L->depth_cap + 1) * sizeof *stack);
  if (!stack) {
    yaml_parser_delete(&p);
    return oom(L);
  }
  int sp = 0, docs = 0, rc = CASE_OK, done = 0;
  while (!done && rc == CASE_OK) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      rc = yaml_error(L, &p);
      break;
    }
    cs_pos pos = mark_pos(ev.start_mark);
    const char *anchor = NULL, *tag = NULL;
    nkind kind = N_SCALAR;
    int opens = 0;
    switch (ev.type) {
    case YAML_STREAM_END_EVENT:
      done = 1;
      break;
    case YAML_DOCUMENT_START_EVENT:
      if (docs++ > 0)
        rc = fail(L, CASE_INVALID, pos,
                  "a second YAML document (expected one definition per file)");
      break;
    case YAML_ALIAS_EVENT:
      rc = fail(L, CASE_INVALID, pos,
                "YAML alias '*%s' (anchors and aliases are not supported; write the value out)",
                (const char *)ev.data.alias.anchor);
      break;
    case YAML_SCALAR_EVENT:
      anchor = (const char *)ev.data.scalar.anchor;
      tag = (const char *)ev.data.scalar.tag;
      break;
    case YAML_SEQUENCE_START_EVENT:
      anchor = (const char *)ev.data.sequence_start.anchor;
      tag = (const char *)ev.data.sequence_start.tag;
      kind = N_SEQ;
      opens = 1;
      break;
    case YAML_MAPPING_START_EVENT:
      anchor = (const char *)ev.data.mapping_start.anchor;
      tag = (const char *)ev.data.mapping_start.tag;
      kind = N_MAP;
      opens = 1;
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      if (sp > 0) {
        node *m = stack[--sp];
        if (m->kind == N_MAP) rc = check_duplicates(L, m);
      }
      break;
    default:
      break;
    }
    int is_node = ev.type == YAML_SCALAR_EVENT || opens;
    if (rc == CASE_OK && is_node) {
      if (anchor)
        rc = fail(L, CASE_INVALID, pos,
                  "YAML anchor '&%s' (anchors and aliases are not supported; write the value out)",
                  anchor);
      else if (tag)
        rc = fail(L, CASE_INVALID, pos, "YAML tag '%s' (tags are not supported; quote a value "
                  "to make it a string)", tag);
      else if (sp > 0 && stack[sp - 1]->kind == N_MAP && stack[sp - 1]->n % 2 == 0 && opens)
        rc = fail(L, CASE_INVALID, pos, "a %s as a map key (expected a plain name)",
                  kind == N_MAP ? "map" : "list");
      else if (opens && sp >= L->depth_cap)
        rc = fail(L, CASE_LIMIT, pos, "nesting too deep (more than %d levels)", L->depth_cap);
    }
    if (rc == CASE_OK && is_node) {
      node *n = calloc(1, sizeof *n);
      if (!n) {
        rc = oom(L);
      } else {
        n->kind = kind;
        n->pos = n->text_pos = pos;
        if (kind == N_SCALAR) {
          n->len = ev.data.scalar.length;
          n->str = malloc(n->len + 1);
          if (n->str) {
            memcpy(n->str, ev.data.scalar.value, n->len);
            n->str[n->len] = '\0';
          }
          n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
          switch (ev.data.scalar.style) {
          case YAML_SINGLE_QUOTED_SCALAR_STYLE: n->style = SMAP_SINGLE; break;
          case YAML_DOUBLE_QUOTED_SCALAR_STYLE: n->style = SMAP_DOUBLE; break;
          case YAML_LITERAL_SCALAR_STYLE: n->style = SMAP_LITERAL; break;
          case YAML_FOLDED_SCALAR_STYLE: n->style = SMAP_FOLDED; break;
          default: n->style = SMAP_PLAIN; break;
          }
          n->start = ev.start_mark;
          n->end = ev.end_mark;
          if (ev.data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
              ev.data.scalar.style == YAML_FOLDED_SCALAR_STYLE)
            n->text_pos = block_text_pos(L, ev.start_mark);
          else if (!n->plain)
            n->text_pos.col++; /* after the quote */
        }
        int bad = kind == N_SCALAR && !n->str;
        if (!bad) {
          if (sp > 0)
            bad = node_push(stack[sp - 1], n) != 0;
          else if (!L->doc)
            L->doc = n;
          else
            bad = 1; /* cannot happen: one node per document, one document */
        }
        if (bad) {
          node_free(n);
          rc = oom(L);
        } else if (opens) {
          stack[sp++] = n;
        }
      }
    }
    yaml_event_delete(&ev);
  }
  free(stack);
  yaml_parser_delete(&p);
  if (rc != CASE_OK) return rc;
  if (!L->doc || scalar_type(L->doc) == V_NULL) {
    cs_pos one = {1, 1};
    return fail(L, CASE_INVALID, one,
                "empty definition (expected a map with workflow, version, initial and states)");
  }
  if (L->doc->kind != N_MAP)
    return fail(L, CASE_INVALID, L->doc->pos,
                "the definition is %s (expected a map with workflow, version, initial and states)",
                describe(L->doc));
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* Typed access with errors                                            */
/* ------------------------------------------------------------------ */

static int check_keys(ld *L, const node *m, const char *where, const char *const *allowed) {
  for (int i = 0; i < npairs(m); i++) {
    const node *k = pkey(m, i);
    int ok = 0;
    for (int j = 0; allowed[j] && !ok; j++) ok = strcmp(k->str, allowed[j]) == 0;
    if (ok) continue;
    char list[512];
    size_t used = 0;
    list[0] = '\0';
    for (int j = 0; allowed[j]; j++) {
      int w = snprintf(list + used, sizeof list - used, "%s%s", j ? ", " : "", allowed[j]);
      if (w < 0 || (size_t)w >= sizeof list - used) break;
      used += (size_t)w;
    }
    return fail(L, CASE_INVALID, k->pos, "unknown key '%s' in %s (expected one of: %s)", k->str,
                where, list);
  }
  return CASE_OK;
}

static int want_kind(ld *L, const node *n, nkind kind, const char *what) {
  if (n->kind == kind) return CASE_OK;
  return fail(L, CASE_INVALID, n->pos, "%s is %s (expected a %s)", what, describe(n),
              kind == N_MAP ? "map" : kind == N_SEQ ? "list" : "string");
}

/* Any non-empty scalar, as text (a free text, a name, a Lua snippet). */
static int want_text(ld *L, const node *n, const char *what, const char **out) {
  if (n->kind != N_SCALAR || scalar_type(n) == V_NULL)
    return fail(L, CASE_INVALID, n->pos, "%s is %s (expected a string)", what, describe(n));
  *out = n->str;
  return CASE_OK;
}

static int dup_text(ld *L, const node *n, const char *what, char **out) {
  const char *s = NULL;
  int rc = want_text(L, n, what, &s);
  if (rc != CASE_OK) return rc;
  *out = xstrdup(s);
  return *out ? CASE_OK : oom(L);
}

static int want_bool(ld *L, const node *n, const char *what, int *out) {
  if (n->kind != N_SCALAR || scalar_type(n) != V_BOOL)
    return fail(L, CASE_INVALID, n->pos, "%s is %s (expected a boolean: true or false)", what,
                describe(n));
  *out = scalar_bool(n);
  return CASE_OK;
}

static int want_ident(ld *L, const node *n, const char *what, const char **out) {
  int rc = want_text(L, n, what, out);
  if (rc != CASE_OK) return rc;
  if (!is_identifier(*out, 0))
    return fail(L, CASE_INVALID, n->text_pos,
                "%s '%s' is not a name (expected letters, digits and _, not starting with a digit)",
                what, *out);
  return CASE_OK;
}

/* Grows *arr (of elements `size`) to hold one more than *n; zeroes new space. */
static int grow(void **arr, int n, int *cap, size_t size) {
  if (n < *cap) return 0;
  int c = *cap ? *cap * 2 : 8;
  void *p = realloc(*arr, (size_t)c * size);
  if (!p) return -1;
  memset((char *)p + (size_t)*cap * size, 0, (size_t)(c - *cap) * size);
  *arr = p;
  *cap = c;
  return 0;
}

/* Appends v; the capacity is the next power of two, so it grows when n is 0
 * or a power of two. */
static int int_push(int **arr, int *n, int v) {
  if ((*n & (*n - 1)) == 0) {
    int *p = realloc(*arr, (size_t)(*n ? 2 * *n : 1) * sizeof *p);
    if (!p) return -1;
    *arr = p;
  }
  (*arr)[(*n)++] = v;
  return 0;
}

/* A list of nodes: a sequence's items, or one node standing for a list of one. */
static int as_list(const node *n, const node *const **items, const node **one) {
  if (n->kind == N_SEQ) {
    *items = (const node *const *)n->kids;
    return n->n;
  }
  *one = n;
  *items = one;
  return 1;
}

/* ------------------------------------------------------------------ */
/* Names, suggestions, the state tree                                  */
/* ------------------------------------------------------------------ */

/* State ids are looked up through an open-addressing hash table in the loader
 * context (slots hold index + 1; 0 is empty), so big definitions load in
 * linear time. */
static size_t hash_id(const char *s) {
  size_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static int find_state(const ld *L, const char *id) {
  if (!L->hcap) return -1;
  for (size_t i = hash_id(id) & (L->hcap - 1);; i = (i + 1) & (L->hcap - 1)) {
    int v = L->hslot[i];
    if (!v) return -1;
    if (v > 1 && strcmp(L->d->states[v - 1].id, id) == 0) return v - 1; /* slot 1: the root */
  }
}

static int index_state(ld *L, int st) {
  if ((size_t)(L->d->nstates + 1) * 2 > L->hcap) {
    size_t cap = L->hcap ? L->hcap * 2 : 64;
    while ((size_t)(L->d->nstates + 1) * 2 > cap) cap *= 2;
    int *slot = calloc(cap, sizeof *slot);
    if (!slot) return -1;
    for (size_t k = 0; k < L->hcap; k++) {
      int v = L->hslot[k];
      if (!v) continue;
      size_t i = hash_id(L->d->states[v - 1].id) & (cap - 1);
      while (slot[i]) i = (i + 1) & (cap - 1);
      slot[i] = v;
    }
    free(L->hslot);
    L->hslot = slot;
    L->hcap = cap;
  }
  size_t i = hash_id(L->d->states[st].id) & (L->hcap - 1);
  while (L->hslot[i]) i = (i + 1) & (L->hcap - 1);
  L->hslot[i] = st + 1;
  return 0;
}

/* 1 if a is a proper descendant of b. */
static int is_desc(const case_def *d, int a, int b) {
  for (int p = d->states[a].parent; p >= 0; p = d->states[p].parent)
    if (p == b) return 1;
  return 0;
}

/* The state id closest to `id`, if close enough to be a likely typo, else NULL. */
static const char *suggest_state(const case_def *d, const char *id) {
  const char *best = NULL;
  size_t bestd = (size_t)-1, len = strlen(id);
  size_t maxd = len < 6 ? 2 : len / 3;
  for (int i = 1; i < d->nstates; i++) {
    if (d->states[i].kind == CS_HISTORY_SHALLOW || d->states[i].kind == CS_HISTORY_DEEP) continue;
    size_t k = edit_distance(id, d->states[i].id);
    if (k < bestd) {
      bestd = k;
      best = d->states[i].id;
    }
  }
  if (best && bestd <= maxd) return best;
  /* A prefix of exactly one id ("rust" for "rust_en_voorbereiding"). */
  if (len >= 3) {
    const char *only = NULL;
    for (int i = 1; i < d->nstates; i++) {
      if (strncmp(d->states[i].id, id, len) != 0) continue;
      if (only) return NULL;
      only = d->states[i].id;
    }
    return only;
  }
  return NULL;
}

static int unknown_state(ld *L, const node *n, const char *what) {
  const char *s = suggest_state(L->d, n->str);
  if (s)
    return fail(L, CASE_INVALID, n->text_pos, "unknown %s '%s' (expected a state id; did you "
                "mean '%s'?)", what, n->str, s);
  return fail(L, CASE_INVALID, n->text_pos, "unknown %s '%s' (expected a state id)", what,
              n->str);
}

/* Resolves an id or a list of ids to state indices. */
static int resolve_ids(ld *L, const node *n, const char *what, int **out, int *nout) {
  const node *one;
  const node *const *items;
  if (n->kind == N_MAP)
    return fail(L, CASE_INVALID, n->pos, "%s is a map (expected a state id or a list of ids)",
                what);
  int k = as_list(n, &items, &one);
  if (k == 0)
    return fail(L, CASE_INVALID, n->pos, "%s is an empty list (expected a state id)", what);
  for (int i = 0; i < k; i++) {
    const char *id = NULL;
    int rc = want_text(L, items[i], what, &id);
    if (rc != CASE_OK) return rc;
    int s = find_state(L, id);
    if (s < 0) return unknown_state(L, items[i], what);
    if (int_push(out, nout, s)) return oom(L);
  }
  return CASE_OK;
}

static int lca(const case_def *d, int a, int b) {
  for (int p = d->states[a].parent; p >= 0; p = d->states[p].parent)
    if (is_desc(d, b, p)) return p;
  return 0;
}

/* Several targets must be able to be active together: not nested, and in
 * different regions of a parallel state. */
static int check_conflicts(ld *L, const int *t, int n, cs_pos pos) {
  const case_def *d = L->d;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < i; j++) {
      const char *a = d->states[t[j]].id, *b = d->states[t[i]].id;
      if (t[i] == t[j]) return fail(L, CASE_INVALID, pos, "target '%s' is listed twice", a);
      if (is_desc(d, t[i], t[j]) || is_desc(d, t[j], t[i]))
        return fail(L, CASE_INVALID, pos,
                    "ambiguous targets '%s' and '%s': one is inside the other (expected states "
                    "that are active together, one per region of a parallel state)",
                    a, b);
      int p = lca(d, t[i], t[j]);
      if (d->states[p].kind != CS_PARALLEL) {
        if (p == 0)
          return fail(L, CASE_INVALID, pos,
                      "ambiguous targets '%s' and '%s': both are top-level states and only one "
                      "can be active (expected states in different regions of a parallel state)",
                      a, b);
        return fail(L, CASE_INVALID, pos,
                    "ambiguous targets '%s' and '%s': both are in compound state '%s', which has "
                    "one active child (expected states in different regions of a parallel state)",
                    a, b, d->states[p].id);
      }
    }
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* Stage 2a: the states, in pre-order                                  */
/* ------------------------------------------------------------------ */

static const char *const state_keys[] = {
    "description", "initial", "states", "parallel", "final", "history", "default", "on",
    "always", "after", "deadlines", "entry", "exit", "transitions", "data", "invoke",
    "donedata", "editor", NULL};

static int is_history(const cs_state *s) {
  return s->kind == CS_HISTORY_SHALLOW || s->kind == CS_HISTORY_DEEP;
}

static int new_state(ld *L, int *out) {
  case_def *d = L->d;
  if (grow((void **)&d->states, d->nstates, &L->cap_states, sizeof *d->states)) return oom(L);
  if (L->cap_snode < L->cap_states) { /* snode grows alongside */
    const node **sn = realloc(L->snode, (size_t)L->cap_states * sizeof *sn);
    if (!sn) return oom(L);
    L->snode = sn;
    L->cap_snode = L->cap_states;
  }
  int i = d->nstates++;
  memset(&d->states[i], 0, sizeof d->states[i]);
  d->states[i].index = i;
  d->states[i].parent = -1;
  L->snode[i] = NULL;
  *out = i;
  return CASE_OK;
}

static int add_state(ld *L, const node *key, const node *val, int parent, int depth) {
  case_def *d = L->d;
  const char *id = key->str;
  if (!is_identifier(id, 0))
    return fail(L, CASE_INVALID, key->pos, "state id '%s' is not a name (expected letters, "
                "digits and _, not starting with a digit)", id);
  if (depth > L->e->limits[CASE_LIMIT_DEPTH])
    return fail(L, CASE_LIMIT, key->pos, "state '%s' is nested %d deep (the limit is %lld)", id,
                depth, L->e->limits[CASE_LIMIT_DEPTH]);
  int other = find_state(L, id);
  if (other >= 0)
    return fail(L, CASE_INVALID, key->pos,
                "duplicate state id '%s' (also at line %d, column %d; ids are unique in the "
                "whole definition)", id, d->states[other].pos.line, d->states[other].pos.col);
  if (val->kind == N_SCALAR && scalar_type(val) == V_NULL) val = NULL;
  if (val && val->kind != N_MAP)
    return fail(L, CASE_INVALID, val->pos,
                "state '%s' is %s (expected a map of state keys, or {} for a simple state)", id,
                describe(val));
  int rc;
  if (val && (rc = check_keys(L, val, "a state", state_keys)) != CASE_OK) return rc;

  int i;
  if ((rc = new_state(L, &i)) != CASE_OK) return rc;
  cs_state *s = &d->states[i];
  s->parent = parent;
  s->depth = depth;
  s->pos = key->pos;
  L->snode[i] = val;
  if (!(s->id = xstrdup(id)) || index_state(L, i)) return oom(L);
  const node *ed = map_get(val, "editor");
  if (ed && (rc = yaml_to_json(L, ed, &d->states[i].editor)) != CASE_OK) return rc;
  s = &d->states[i];
  if (int_push(&d->states[parent].children, &d->states[parent].nchildren, i)) return oom(L);
  s = &d->states[i];

  const node *hist = map_get(val, "history"), *states = map_get(val, "states");
  const node *par = map_get(val, "parallel"), *fin = map_get(val, "final");
  const node *desc = map_get(val, "description");
  int parallel = 0, final = 0;
  if (desc && (rc = dup_text(L, desc, "description", &s->description)) != CASE_OK) return rc;
  if (hist) {
    const char *h = NULL;
    if ((rc = want_text(L, hist, "history", &h)) != CASE_OK) return rc;
    if (strcmp(h, "shallow") == 0)
      s->kind = CS_HISTORY_SHALLOW;
    else if (strcmp(h, "deep") == 0)
      s->kind = CS_HISTORY_DEEP;
    else
      return fail(L, CASE_INVALID, hist->text_pos, "unknown history '%s' (expected shallow or "
                  "deep)", h);
    static const char *const hist_keys[] = {"history", "default", "description", "editor",
                                            NULL};
    if ((rc = check_keys(L, val, "a history state", hist_keys)) != CASE_OK) return rc;
    const cs_state *p = &d->states[parent];
    if (parent == 0 || (p->kind != CS_COMPOUND && p->kind != CS_PARALLEL))
      return fail(L, CASE_INVALID, key->pos, "history state '%s' is not inside a compound or "
                  "parallel state (expected it among the states: of the state it remembers)", id);
    return CASE_OK;
  }
  const node *dflt = map_get(val, "default");
  if (dflt)
    return fail(L, CASE_INVALID, dflt->pos,
                "default on state '%s', which is not a history state (expected history: "
                "shallow or deep with it)", id);
  if (par && (rc = want_bool(L, par, "parallel", &parallel)) != CASE_OK) return rc;
  if (fin && (rc = want_bool(L, fin, "final", &final)) != CASE_OK) return rc;
  if (parallel && final)
    return fail(L, CASE_INVALID, fin->pos, "state '%s' cannot be both parallel and final", id);
  if (states && scalar_type(states) == V_NULL && states->kind == N_SCALAR) states = NULL;
  if (states) {
    if ((rc = want_kind(L, states, N_MAP, "states")) != CASE_OK) return rc;
    if (final)
      return fail(L, CASE_INVALID, states->pos, "final state '%s' cannot have child states", id);
    if (npairs(states) == 0)
      return fail(L, CASE_INVALID, states->pos, "states of '%s' is empty (expected at least one "
                  "child state)", id);
  }
  if (parallel && !states)
    return fail(L, CASE_INVALID, key->pos, "parallel state '%s' has no regions (expected "
                "states: with one child state per region)", id);
  s->kind = parallel ? CS_PARALLEL : states ? CS_COMPOUND : final ? CS_FINAL : CS_ATOMIC;
  for (int k = 0; k < npairs(states); k++)
    if ((rc = add_state(L, pkey(states, k), pval(states, k), i, depth + 1)) != CASE_OK) return rc;
  s = &d->states[i];
  if (s->kind == CS_COMPOUND || s->kind == CS_PARALLEL) {
    int real = 0;
    for (int k = 0; k < s->nchildren; k++) real += !is_history(&d->states[s->children[k]]);
    if (!real)
      return fail(L, CASE_INVALID, key->pos, "state '%s' has only history states as children "
                  "(expected at least one real child state)", id);
  }
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* Stage 2b: scripts, durations, transitions, timers                    */
/* ------------------------------------------------------------------ */

static int is_lua_keyword(const char *s) {
  static const char *const kw[] = {"and", "break", "do", "else", "elseif", "end", "false",
                                   "for", "function", "goto", "if", "in", "local", "nil",
                                   "not", "or", "repeat", "return", "then", "true", "until",
                                   "while", NULL};
  for (int i = 0; kw[i]; i++)
    if (strcmp(s, kw[i]) == 0) return 1;
  return 0;
}

/* The byte map of a scalar (smap_build), or NULL when it cannot be rebuilt. */
static int scalar_map(ld *L, const node *n, cs_pos **map) {
  int rc = smap_build(L->text, L->len, n->style, (int)n->start.line, (int)n->start.column,
                      (int)n->end.line, (int)n->end.column, n->str, n->len, map);
  if (rc == CASE_NOMEM) return oom(L);
  return CASE_OK; /* CASE_INVALID: no map, lines are counted instead */
}

/* Where each line of a script starts in the YAML (cs_script.lines), and the
 * node it came from, for the reference scan after it compiled. */
static int script_lines(ld *L, const node *n, cs_script *sc, int is_guard) {
  cs_pos *map = NULL;
  int rc = scalar_map(L, n, &map);
  if (rc != CASE_OK) return rc;
  rc = smap_line_starts(n->str, n->len, map, n->text_pos, &sc->lines, &sc->nlines);
  free(map);
  if (rc != CASE_OK) return oom(L);
  if (grow((void **)&L->scripts, L->nscripts, &L->cap_scripts, sizeof *L->scripts)) return oom(L);
  L->scripts[L->nscripts].s = sc;
  L->scripts[L->nscripts].n = n;
  L->scripts[L->nscripts].is_guard = is_guard;
  L->nscripts++;
  return CASE_OK;
}

static int make_script(ld *L, const node *n, int is_action, cs_script *out) {
  const char *what = is_action ? "action" : "guard";
  out->ref = -1;
  if (n->kind != N_SCALAR || scalar_type(n) == V_NULL)
    return fail(L, CASE_INVALID, n->pos, "%s is %s (expected Lua %s or a function name)", what,
                describe(n), is_action ? "statements" : "expression");
  const char *t = n->str;
  while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r') t++;
  if (!*t)
    return fail(L, CASE_INVALID, n->pos, "empty %s (expected Lua %s or a function name)", what,
                is_action ? "statements" : "expression");
  if (!(out->text = xstrdup(n->str))) return oom(L);
  out->pos = n->text_pos;
  int rc = script_lines(L, n, out, !is_action);
  if (rc != CASE_OK) return rc;
  if (!n->script && is_identifier(n->str, 0) && !is_lua_keyword(n->str)) {
    int k = eng_native_find(L->e, n->str, is_action);
    out->kind = k >= 0 ? SCRIPT_NATIVE : SCRIPT_NAMED;
    out->ref = k >= 0 ? k : -1;
  } else {
    out->kind = is_action ? SCRIPT_BLOCK : SCRIPT_EXPR;
  }
  return CASE_OK;
}

static int make_exec(ld *L, const node *n, cs_script *out);

static int make_actions(ld *L, const node *n, cs_script **out, int *nout) {
  const node *one;
  const node *const *items;
  if (n->kind == N_MAP)
    return fail(L, CASE_INVALID, n->pos, "actions is a map (expected Lua statements, a function "
                "name or a list of them)");
  int k = as_list(n, &items, &one);
  if (k == 0) return CASE_OK;
  cs_script *v = calloc((size_t)k, sizeof *v);
  if (!v) return oom(L);
  for (int i = 0; i < k; i++) v[i].ref = -1;
  *out = v; /* owned by the model from here on, even half-filled */
  *nout = k;
  for (int i = 0; i < k; i++) {
    int rc = items[i]->kind == N_MAP ? make_exec(L, items[i], &v[i])
                                     : make_script(L, items[i], 1, &v[i]);
    if (rc != CASE_OK) return rc;
  }
  return CASE_OK;
}

static int bad_duration(ld *L, const node *n) {
  return fail(L, CASE_INVALID, n->text_pos,
              "bad duration '%s' (expected \"<number> <unit>\" or \"${param} <unit>\" with unit "
              "seconds, minutes, hours, days, working days, weeks, months or years)",
              n->kind == N_SCALAR ? n->str : describe(n));
}

static int parse_duration(ld *L, const node *n, cs_clock clock, cs_duration *out) {
  out->clock = clock;
  out->pos = n->text_pos;
  if (n->kind != N_SCALAR || scalar_type(n) == V_NULL) return bad_duration(L, n);
  int rc = cal_duration_parse(n->str, &out->amount, &out->param, &out->unit);
  if (rc == -3) return oom(L);
  if (rc == -2)
    return fail(L, CASE_INVALID, n->text_pos, "duration '%s' is too long (expected at most "
                "%ld units)", n->str, CAL_DURATION_MAX);
  if (rc != 0) return bad_duration(L, n);
  if (out->param) {
    const char *name = out->param;
    int k = -1;
    for (int i = 0; i < L->d->nparams; i++)
      if (strcmp(L->d->params[i].name, name) == 0) k = i;
    if (k < 0) {
      if (L->d->nparams == 0)
        return fail(L, CASE_INVALID, n->text_pos, "unknown param '%s' in duration (no params "
                    "are declared; expected one under params:)", name);
      return fail(L, CASE_INVALID, n->text_pos, "unknown param '%s' in duration (declared: "
                  "%s%s)", name, L->d->params[0].name, L->d->nparams > 1 ? ", ..." : "");
    }
    const json_t *v = L->d->params[k].value;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > CAL_DURATION_MAX)
      return fail(L, CASE_INVALID, n->text_pos, "param '%s' used in a duration is not a whole "
                  "number of units (expected an integer from 0 to %ld)", name, CAL_DURATION_MAX);
  }
  if (clock == CLOCK_PROCEDURE &&
      (out->unit == UNIT_WEEKS || out->unit == UNIT_MONTHS || out->unit == UNIT_YEARS))
    return fail(L, CASE_INVALID, n->text_pos, "'%s' cannot be counted on the procedure "
                "clock (expected days, working days or hours; AA procedure days, Vb 3.110)",
                n->str);
  if (!out->param) {
    /* A term the calendar cannot count would fail every case that enters
     * the state: refuse it now (counted from 1 January 2026). */
    int64_t due;
    cal_day last;
    if (cal_term(L->e->calendar, clock, INT64_C(1767222000), out->amount, out->unit, 0, &due,
                 &last) != CASE_OK)
      return fail(L, CASE_INVALID, n->text_pos, "'%s' cannot be counted on the %s clock (it "
                  "would end after 9999-12-31; expected a shorter term)", n->str,
                  cal_clock_name(clock));
  }
  return CASE_OK;
}

/* An event descriptor: "*", or dotted words of [A-Za-z0-9_-]; "x.*" means "x". */
static int event_ok(const char *s, int wildcard) {
  if (wildcard && strcmp(s, "*") == 0) return 1;
  if (!*s || *s == '.') return 0;
  for (const char *p = s; *p; p++) {
    if (*p == '.') {
      if (p[1] == '*' && p[2] == '\0' && wildcard) return 1;
      if (!p[1] || p[1] == '.') return 0;
      continue;
    }
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '_' || *p == '-'))
      return 0;
  }
  return 1;
}

typedef enum tkind { T_ON, T_ALWAYS, T_AFTER } tkind;

static int new_transition(ld *L, int src, cs_pos pos, int *out) {
  case_def *d = L->d;
  if (grow((void **)&d->transitions, d->ntransitions, &L->cap_transitions,
           sizeof *d->transitions))
    return oom(L);
  int t = d->ntransitions++;
  cs_transition *tr = &d->transitions[t];
  memset(tr, 0, sizeof *tr);
  tr->index = t;
  tr->source = src;
  tr->timer = -1;
  tr->pos = pos;
  if (int_push(&d->states[src].transitions, &d->states[src].ntransitions, t)) return oom(L);
  *out = t;
  return CASE_OK;
}

static int copy_events(ld *L, cs_transition *tr, char *const *ev, int n) {
  if (!n) return CASE_OK;
  tr->events = calloc((size_t)n, sizeof *tr->events);
  if (!tr->events) return oom(L);
  tr->nevents = n;
  for (int i = 0; i < n; i++)
    if (!(tr->events[i] = xstrdup(ev[i]))) return oom(L);
  return CASE_OK;
}

/* One transition of state `src` from node n: a target id or a map. */
static int parse_transition(ld *L, int src, const node *n, tkind kind, char *const *ev, int nev,
                            cs_pos pos, int *out) {
  static const char *const on_keys[] = {"target", "guard", "actions", "roles", "type",
                                        "description", "editor", NULL};
  static const char *const always_keys[] = {"target", "guard", "actions", "type", "description",
                                            "editor", NULL};
  static const char *const after_keys[] = {"delay", "target", "guard", "actions", "type",
                                           "description", "editor", NULL};
  case_def *d = L->d;
  int t = -1, rc;
  if (n->kind == N_SEQ || (n->kind == N_SCALAR && scalar_type(n) == V_NULL))
    return fail(L, CASE_INVALID, n->pos, "transition is %s (expected a target id or a map with "
                "target, guard, actions%s)", describe(n), kind == T_ON ? ", roles" : "");
  if (kind == T_AFTER && n->kind != N_MAP)
    return fail(L, CASE_INVALID, n->pos, "after entry is %s (expected a map with delay and "
                "target)", describe(n));
  if ((rc = new_transition(L, src, pos, &t)) != CASE_OK) return rc;
  if (out) *out = t;
  if ((rc = copy_events(L, &d->transitions[t], ev, nev)) != CASE_OK) return rc;
  const node *target = n;
  if (n->kind == N_MAP) {
    const char *const *keys = kind == T_ON ? on_keys : kind == T_ALWAYS ? always_keys : after_keys;
    const char *where = kind == T_ON ? "a transition" : kind == T_ALWAYS ? "an always transition"
                                                                         : "an after entry";
    if ((rc = check_keys(L, n, where, keys)) != CASE_OK) return rc;
    target = map_get(n, "target");
    const node *g = map_get(n, "guard"), *a = map_get(n, "actions"), *r = map_get(n, "roles");
    const node *ty = map_get(n, "type"), *de = map_get(n, "description");
    cs_transition *tr = &d->transitions[t];
    if (g) {
      if (!(tr->guard = calloc(1, sizeof *tr->guard))) return oom(L);
      tr->guard->ref = -1;
      if ((rc = make_script(L, g, 0, tr->guard)) != CASE_OK) return rc;
    }
    if (a && (rc = make_actions(L, a, &tr->actions, &tr->nactions)) != CASE_OK) return rc;
    if (de && (rc = dup_text(L, de, "description", &tr->description)) != CASE_OK) return rc;
    const node *ed = map_get(n, "editor");
    if (ed && (rc = yaml_to_json(L, ed, &d->transitions[t].editor)) != CASE_OK) return rc;
    if (ty) {
      const char *s = NULL;
      if ((rc = want_text(L, ty, "type", &s)) != CASE_OK) return rc;
      if (strcmp(s, "internal") == 0)
        tr->internal = 1;
      else if (strcmp(s, "external") != 0)
        return fail(L, CASE_INVALID, ty->text_pos, "unknown transition type '%s' (expected "
                    "external or internal)", s);
    }
    if (r) {
      const node *one;
      const node *const *items;
      if (r->kind == N_MAP)
        return fail(L, CASE_INVALID, r->pos, "roles is a map (expected a list of roles)");
      int k = as_list(r, &items, &one);
      if (k == 0)
        return fail(L, CASE_INVALID, r->pos, "roles is an empty list (expected at least one "
                    "declared role; leave roles out to open the transition to every declared "
                    "role; a transition no role may fire is the engine's: use always, after, a "
                    "deadline's on_expiry or an event raised by an action)");
      for (int i = 0; i < k; i++) {
        const char *role = NULL;
        if ((rc = want_text(L, items[i], "role", &role)) != CASE_OK) return rc;
        int found = -1;
        for (int j = 0; j < d->nroles; j++)
          if (strcmp(d->roles[j], role) == 0) found = j;
        if (found < 0) {
          if (!d->nroles)
            return fail(L, CASE_INVALID, items[i]->text_pos, "undeclared role '%s' (no roles "
                        "are declared; expected them under the top-level roles:)", role);
          sbuf b;
          sbuf_init(&b);
          for (int j = 0; j < d->nroles; j++) sbuf_printf(&b, "%s%s", j ? ", " : "", d->roles[j]);
          char *list = sbuf_take(&b);
          if (!list) return oom(L);
          rc = fail(L, CASE_INVALID, items[i]->text_pos, "undeclared role '%s' (declared: %s)",
                    role, list);
          free(list);
          return rc;
        }
        for (int j = 0; j < tr->nroles; j++)
          if (tr->roles[j] == found)
            return fail(L, CASE_INVALID, items[i]->text_pos, "role '%s' is listed twice", role);
        if (int_push(&tr->roles, &tr->nroles, found)) return oom(L);
      }
    }
  }
  if (target) {
    cs_transition *tr = &d->transitions[t];
    if ((rc = resolve_ids(L, target, "target", &tr->targets, &tr->ntargets)) != CASE_OK)
      return rc;
    if ((rc = check_conflicts(L, tr->targets, tr->ntargets, target->pos)) != CASE_OK) return rc;
  }
  return CASE_OK;
}

static int add_warning(ld *L, cs_pos pos, const char *text);
static int add_warning_in(ld *L, const char *file, cs_pos pos, const char *text);

/* A handler of done.state.X: X must be a state, and one that can complete
 * (a compound state with a final child, or a parallel state), or the engine
 * never raises the event. */
static int check_done_event(ld *L, const node *k, const char *ev) {
  const case_def *d = L->d;
  const char *id = ev + 11;
  if (strchr(id, '.')) return CASE_OK; /* done.state.X.more: a descriptor that never matches */
  int st = find_state(L, id);
  if (st < 0) {
    const char *sug = suggest_state(d, id);
    if (sug)
      return fail(L, CASE_INVALID, k->pos, "event '%s' names no state: there is no state '%s' "
                  "(did you mean 'done.state.%s'?)", ev, id, sug);
    return fail(L, CASE_INVALID, k->pos, "event '%s' names no state: there is no state '%s' "
                "(expected done.state.<id of a compound or parallel state>)", ev, id);
  }
  const cs_state *s = &d->states[st];
  int can = s->kind == CS_PARALLEL;
  for (int i = 0; s->kind == CS_COMPOUND && i < s->nchildren && !can; i++)
    can = d->states[s->children[i]].kind == CS_FINAL;
  if (can) return CASE_OK;
  sbuf b;
  sbuf_init(&b);
  sbuf_printf(&b, "event '%s' is never raised: the engine raises done.state.%s when %s reaches "
              "a final child state, and '%s' is %s", ev, id, id, id,
              s->kind == CS_COMPOUND ? "a compound state without a final child"
              : s->kind == CS_FINAL  ? "a final state"
                                     : "an atomic state");
  char *text = sbuf_take(&b);
  if (!text) return oom(L);
  int rc = add_warning(L, k->pos, text);
  free(text);
  return rc;
}

/* `on:` — a map event-descriptors -> transition(s). */
static int parse_on(ld *L, int src, const node *on) {
  int rc = want_kind(L, on, N_MAP, "on");
  if (rc != CASE_OK) return rc;
  for (int i = 0; i < npairs(on); i++) {
    const node *k = pkey(on, i), *v = pval(on, i);
    /* split the key into descriptors */
    char *ev[32];
    int nev = 0;
    const char *p = k->str;
    while (*p && rc == CASE_OK) {
      while (*p == ' ' || *p == '\t') p++;
      if (!*p) break;
      const char *q = p;
      while (*q && *q != ' ' && *q != '\t') q++;
      if (nev == (int)(sizeof ev / sizeof ev[0])) {
        rc = fail(L, CASE_INVALID, k->pos, "too many event names in one key (at most 32)");
        break;
      }
      char *one = xstrndup(p, (size_t)(q - p));
      if (!one) {
        rc = oom(L);
        break;
      }
      ev[nev++] = one;
      if (!event_ok(one, 1))
        rc = fail(L, CASE_INVALID, k->pos, "bad event name '%s' (expected dotted words of "
                  "letters, digits, _ or -, or *)", one);
      else if (strncmp(one, "after.", 6) == 0)
        rc = fail(L, CASE_INVALID, k->pos, "event '%s' is reserved: names starting with "
                  "'after.' belong to delayed transitions (expected after: on the state)", one);
      else if (strlen(one) > 2 && strcmp(one + strlen(one) - 2, ".*") == 0)
        one[strlen(one) - 2] = '\0'; /* SCXML: "x.*" is the same as "x" */
      if (rc == CASE_OK && strncmp(one, "done.state.", 11) == 0)
        rc = check_done_event(L, k, one);
      p = q;
    }
    if (rc == CASE_OK && nev == 0)
      rc = fail(L, CASE_INVALID, k->pos, "empty event name (expected an event name)");
    if (rc == CASE_OK) {
      if (v->kind == N_SEQ) {
        if (v->n == 0)
          rc = fail(L, CASE_INVALID, v->pos, "empty list of transitions for '%s'", k->str);
        for (int j = 0; j < v->n && rc == CASE_OK; j++)
          rc = parse_transition(L, src, v->kids[j], T_ON, ev, nev, v->kids[j]->pos, NULL);
      } else {
        rc = parse_transition(L, src, v, T_ON, ev, nev, k->pos, NULL);
      }
    }
    for (int j = 0; j < nev; j++) free(ev[j]);
    if (rc != CASE_OK) return rc;
  }
  return CASE_OK;
}

static int new_timer(ld *L, int state, cs_timer_kind kind, cs_pos pos, int *out) {
  case_def *d = L->d;
  if (grow((void **)&d->timers, d->ntimers, &L->cap_timers, sizeof *d->timers)) return oom(L);
  int t = d->ntimers++;
  memset(&d->timers[t], 0, sizeof d->timers[t]);
  d->timers[t].kind = kind;
  d->timers[t].state = state;
  d->timers[t].pos = pos;
  if (int_push(&d->states[state].timers, &d->states[state].ntimers, t)) return oom(L);
  *out = t;
  return CASE_OK;
}

/* A term of 0 runs out the moment its state is entered; an `after` of 0 that
 * re-enters its own state does so again at once, for ever (each tick or fire
 * stops it at CASE_LIMIT_EXPIRIES).  Worth a warning wherever it can happen:
 * a literal 0 or a param whose default is 0. */
static int warn_zero_term(ld *L, const cs_timer *tm, const node *n) {
  const case_def *d = L->d;
  const char *what = tm->kind == TIMER_AFTER ? "delay" : "deadline";
  const char *state = d->states[tm->state].id;
  sbuf b;
  sbuf_init(&b);
  if (tm->dur.param) {
    int k = def_param_find(d, tm->dur.param);
    if (k < 0 || !json_is_integer(d->params[k].value) ||
        json_integer_value(d->params[k].value) > 0)
      return CASE_OK;
    sbuf_printf(&b, "%s '%s' is zero: param '%s' defaults to %lld (at %d:%d), so the %s runs "
                "out as soon as '%s' is entered", what, n->str, tm->dur.param,
                (long long)json_integer_value(d->params[k].value), d->params[k].pos.line,
                d->params[k].pos.col, tm->kind == TIMER_AFTER ? "timer" : "term", state);
  } else {
    if (tm->dur.amount > 0) return CASE_OK;
    sbuf_printf(&b, "%s '%s' is zero: the %s runs out as soon as '%s' is entered", what, n->str,
                tm->kind == TIMER_AFTER ? "timer" : "term", state);
  }
  if (tm->kind == TIMER_AFTER)
    sbuf_puts(&b, " (if it leads back into the state it runs out again at once, for ever: "
              "each tick or fire stops at CASE_LIMIT_EXPIRIES and keeps nothing)");
  char *text = sbuf_take(&b);
  if (!text) return oom(L);
  int rc = add_warning(L, n->text_pos, text);
  free(text);
  return rc;
}

static int after_one(ld *L, int src, const node *it);

static int parse_after(ld *L, int src, const node *after) {
  const node *one;
  const node *const *items;
  int rc;
  if (after->kind == N_SCALAR)
    return fail(L, CASE_INVALID, after->pos, "after is %s (expected a list of maps with delay "
                "and target)", describe(after));
  int k = as_list(after, &items, &one);
  for (int i = 0; i < k; i++)
    if ((rc = after_one(L, src, items[i])) != CASE_OK) return rc;
  return CASE_OK;
}

/* One delayed transition of state src; its timer is the state's n-th. */
static int after_one(ld *L, int src, const node *it) {
  case_def *d = L->d;
  int rc;
  {
    if (it->kind != N_MAP)
      return fail(L, CASE_INVALID, it->pos, "after entry is %s (expected a map with delay and "
                  "target)", describe(it));
    const node *delay = map_get(it, "delay");
    if (!delay)
      return fail(L, CASE_INVALID, it->pos, "after entry without delay (expected delay: a "
                  "duration such as \"6 days\")");
    int n = 0;
    for (int t = 0; t < d->ntimers; t++)
      n += d->timers[t].state == src && d->timers[t].kind == TIMER_AFTER;
    int tm;
    if ((rc = new_timer(L, src, TIMER_AFTER, it->pos, &tm)) != CASE_OK) return rc;
    cs_timer *timer = &d->timers[tm];
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "after.%s.%d", d->states[src].id, n);
    if (!(timer->name = sbuf_take(&b)) || !(timer->event = xstrdup(timer->name))) return oom(L);
    if ((rc = parse_duration(L, delay, d->clock, &timer->dur)) != CASE_OK) return rc;
    if ((rc = warn_zero_term(L, timer, delay)) != CASE_OK) return rc;
    const node *de = map_get(it, "description");
    if (de && (rc = dup_text(L, de, "description", &timer->description)) != CASE_OK) return rc;
    char *ev = timer->event;
    int t;
    if ((rc = parse_transition(L, src, it, T_AFTER, &ev, 1, it->pos, &t)) != CASE_OK) return rc;
    d->transitions[t].timer = tm;
  }
  return CASE_OK;
}

static int parse_deadlines(ld *L, int src, const node *dl) {
  static const char *const keys[] = {"after", "clock", "source", "on_expiry", "start",
                                     "description", NULL};
  case_def *d = L->d;
  int rc = want_kind(L, dl, N_MAP, "deadlines");
  if (rc != CASE_OK) return rc;
  for (int i = 0; i < npairs(dl); i++) {
    const node *k = pkey(dl, i), *v = pval(dl, i);
    if (!is_identifier(k->str, 0))
      return fail(L, CASE_INVALID, k->pos, "deadline name '%s' is not a name (expected letters, "
                  "digits and _)", k->str);
    if (v->kind != N_MAP)
      return fail(L, CASE_INVALID, v->pos, "deadline '%s' is %s (expected a map with after, "
                  "source, on_expiry)", k->str, describe(v));
    if ((rc = check_keys(L, v, "a deadline", keys)) != CASE_OK) return rc;
    const node *aft = map_get(v, "after");
    if (!aft)
      return fail(L, CASE_INVALID, k->pos, "deadline '%s' has no after (expected a duration "
                  "such as \"8 weeks\")", k->str);
    int tm;
    if ((rc = new_timer(L, src, TIMER_DEADLINE, k->pos, &tm)) != CASE_OK) return rc;
    cs_timer *timer = &d->timers[tm];
    if (!(timer->name = xstrdup(k->str))) return oom(L);
    cs_clock clock = d->clock;
    const node *c = map_get(v, "clock");
    if (c) {
      const char *s = NULL;
      if ((rc = want_text(L, c, "clock", &s)) != CASE_OK) return rc;
      if (cal_clock_parse(s, &clock) != 0)
        return fail(L, CASE_INVALID, c->text_pos, "unknown clock '%s' (expected plain, atw, eu "
                    "or procedure)", s);
    }
    if ((rc = parse_duration(L, aft, clock, &timer->dur)) != CASE_OK) return rc;
    if ((rc = warn_zero_term(L, timer, aft)) != CASE_OK) return rc;
    const node *st = map_get(v, "start");
    if (st) {
      const char *s = NULL;
      if ((rc = want_text(L, st, "start", &s)) != CASE_OK) return rc;
      if (strcmp(s, "same_day") == 0)
        timer->dur.same_day = 1;
      else if (strcmp(s, "next_day") != 0)
        return fail(L, CASE_INVALID, st->text_pos, "unknown start '%s' (expected next_day or "
                    "same_day)", s);
    }
    const node *src_n = map_get(v, "source"), *ex = map_get(v, "on_expiry");
    const node *de = map_get(v, "description");
    if (src_n && (rc = dup_text(L, src_n, "source", &timer->source)) != CASE_OK) return rc;
    if (de && (rc = dup_text(L, de, "description", &timer->description)) != CASE_OK) return rc;
    if (ex) {
      if ((rc = dup_text(L, ex, "on_expiry", &timer->event)) != CASE_OK) return rc;
      timer->event_pos = ex->text_pos;
      if (!event_ok(timer->event, 0))
        return fail(L, CASE_INVALID, ex->text_pos, "bad event name '%s' in on_expiry (expected "
                    "dotted words of letters, digits, _ or -)", timer->event);
      const char *why = event_name_problem(timer->event);
      if (why)
        return fail(L, CASE_INVALID, ex->text_pos, "on_expiry '%s' of deadline '%s' is a "
                    "reserved name: %s (expected a name of your own, handled by an on: "
                    "transition)", timer->event, timer->name, why);
    }
  }
  return CASE_OK;
}

static int parse_fields(ld *L, const node *n, int state);
static int parse_donedata(ld *L, int state, const node *n);
static int parse_transition_list(ld *L, int src, const node *n);
static int parse_invokes(ld *L, int state, const node *n);

/* Everything of state i that refers to other states or holds scripts. */
static int fill_state(ld *L, int i) {
  case_def *d = L->d;
  const node *m = i == 0 ? L->doc : L->snode[i];
  int rc;
  cs_state *s = &d->states[i];
  const node *ini = map_get(m, "initial");
  if (ini && ini->kind == N_MAP && i > 0 && s->kind == CS_COMPOUND) {
    /* initial: {target, actions}: an <initial> element with content */
    static const char *const ikeys[] = {"target", "actions", NULL};
    if ((rc = check_keys(L, ini, "an initial transition", ikeys)) != CASE_OK) return rc;
    const node *acts = map_get(ini, "actions");
    if (acts && (rc = make_actions(L, acts, &s->initial_actions, &s->ninitial_actions)) != CASE_OK)
      return rc;
    s = &d->states[i];
    s->initial_elem = 1;
    ini = map_get(ini, "target");
    if (!ini)
      return fail(L, CASE_INVALID, s->pos, "initial of '%s' has no target (expected target: "
                  "the child state it starts in)", s->id);
  }
  if (s->kind == CS_COMPOUND) {
    if (!ini) {
      if (i == 0)
        return fail(L, CASE_INVALID, m->pos, "missing initial (expected the id of the top-level "
                    "state a case starts in)");
      return fail(L, CASE_INVALID, s->pos, "missing initial in compound state '%s' (expected "
                  "the id of the child state it starts in)", s->id);
    }
    if ((rc = resolve_ids(L, ini, "initial state", &s->initial, &s->ninitial)) != CASE_OK)
      return rc;
    s = &d->states[i];
    const node *one;
    const node *const *items;
    as_list(ini, &items, &one);
    for (int k = 0; k < s->ninitial; k++)
      if (!is_desc(d, s->initial[k], i))
        return fail(L, CASE_INVALID, items[k]->text_pos, "initial '%s' is not inside '%s' "
                    "(expected one of its descendants)", d->states[s->initial[k]].id,
                    i ? s->id : "the workflow");
    if ((rc = check_conflicts(L, s->initial, s->ninitial, ini->pos)) != CASE_OK) return rc;
  } else if (ini) {
    return fail(L, CASE_INVALID, ini->pos, "initial on %s state '%s' (only a compound state, "
                "with states:, has an initial state)",
                s->kind == CS_PARALLEL ? "parallel" : is_history(s) ? "history" : "atomic",
                s->id);
  }
  if (i == 0) return CASE_OK;

  if (is_history(s)) {
    const node *dflt = map_get(m, "default");
    int p = s->parent;
    if (dflt && dflt->kind == N_MAP) {
      /* default: {target, actions}: the history's transition with content */
      static const char *const dkeys[] = {"target", "actions", NULL};
      if ((rc = check_keys(L, dflt, "a history default", dkeys)) != CASE_OK) return rc;
      const node *acts = map_get(dflt, "actions");
      if (acts &&
          (rc = make_actions(L, acts, &s->initial_actions, &s->ninitial_actions)) != CASE_OK)
        return rc;
      s = &d->states[i];
      const node *t = map_get(dflt, "target");
      if (!t)
        return fail(L, CASE_INVALID, dflt->pos, "default of history '%s' has no target",
                    s->id);
      dflt = t;
    }
    if (dflt) {
      if ((rc = resolve_ids(L, dflt, "default", &s->initial, &s->ninitial)) != CASE_OK)
        return rc;
      s = &d->states[i];
      const node *one;
      const node *const *items;
      as_list(dflt, &items, &one);
      for (int k = 0; k < s->ninitial; k++)
        if (!is_desc(d, s->initial[k], p) || s->initial[k] == i)
          return fail(L, CASE_INVALID, items[k]->text_pos, "history default '%s' is not inside "
                      "'%s' (expected a state of the history's parent)",
                      d->states[s->initial[k]].id, d->states[p].id);
      return check_conflicts(L, s->initial, s->ninitial, dflt->pos);
    }
    /* No default: the parent's initial (compound) or all its regions (parallel). */
    const cs_state *ps = &d->states[p];
    if (ps->kind == CS_COMPOUND) {
      for (int k = 0; k < ps->ninitial; k++)
        if (int_push(&d->states[i].initial, &d->states[i].ninitial, ps->initial[k])) return oom(L);
    } else {
      for (int k = 0; k < ps->nchildren; k++)
        if (!is_history(&d->states[ps->children[k]]) &&
            int_push(&d->states[i].initial, &d->states[i].ninitial, ps->children[k]))
          return oom(L);
    }
    return CASE_OK;
  }

  const node *en = map_get(m, "entry"), *ex = map_get(m, "exit");
  if (en && (rc = make_actions(L, en, &s->onentry, &s->nonentry)) != CASE_OK) return rc;
  s = &d->states[i];
  if (ex && (rc = make_actions(L, ex, &s->onexit, &s->nonexit)) != CASE_OK) return rc;
  s = &d->states[i];

  const node *on = map_get(m, "on"), *al = map_get(m, "always"), *af = map_get(m, "after");
  const node *dl = map_get(m, "deadlines"), *tl = map_get(m, "transitions");
  const node *dm = map_get(m, "data"), *iv = map_get(m, "invoke"), *dd = map_get(m, "donedata");
  if (dm && (rc = parse_fields(L, dm, i)) != CASE_OK) return rc;
  if (dd && s->kind != CS_FINAL)
    return fail(L, CASE_INVALID, dd->pos, "donedata on state '%s', which is not final", s->id);
  if (dd && (rc = parse_donedata(L, i, dd)) != CASE_OK) return rc;
  s = &d->states[i];
  if (s->kind == CS_FINAL) {
    const node *bad = on ? on : al ? al : tl;
    if (iv)
      return fail(L, CASE_INVALID, iv->pos, "final state '%s' cannot invoke", s->id);
    if (bad)
      return fail(L, CASE_INVALID, bad->pos, "final state '%s' cannot have transitions (a case "
                  "in a final state is done there)", s->id);
    if (af)
      return fail(L, CASE_INVALID, af->pos, "final state '%s' cannot have after timers", s->id);
    if (dl)
      return fail(L, CASE_INVALID, dl->pos, "final state '%s' cannot have deadlines", s->id);
  }
  if (on && (rc = parse_on(L, i, on)) != CASE_OK) return rc;
  if (al) {
    const node *one;
    const node *const *items;
    if (al->kind == N_SCALAR && scalar_type(al) == V_NULL)
      return fail(L, CASE_INVALID, al->pos, "always is empty (expected a list of transitions)");
    int k = as_list(al, &items, &one);
    for (int j = 0; j < k; j++)
      if ((rc = parse_transition(L, i, items[j], T_ALWAYS, NULL, 0, items[j]->pos, NULL)) !=
          CASE_OK)
        return rc;
  }
  if (tl && (rc = parse_transition_list(L, i, tl)) != CASE_OK) return rc;
  if (af && (rc = parse_after(L, i, af)) != CASE_OK) return rc;
  if (dl && (rc = parse_deadlines(L, i, dl)) != CASE_OK) return rc;
  if (iv && (rc = parse_invokes(L, i, iv)) != CASE_OK) return rc;
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* Top level: roles, params, data, lua                                  */
/* ------------------------------------------------------------------ */

static int yaml_to_json(ld *L, const node *n, json_t **out) {
  *out = NULL;
  if (n->kind == N_SCALAR) {
    switch (scalar_type(n)) {
    case V_NULL: *out = json_null(); break;
    case V_BOOL: *out = json_boolean(scalar_bool(n)); break;
    case V_INT: {
      long long v;
      if (scalar_int(n, &v) != 0)
        return fail(L, CASE_INVALID, n->pos, "integer %s is out of range (expected at most 19 "
                    "digits)", n->str);
      *out = json_integer((json_int_t)v);
      break;
    }
    case V_REAL: {
      double x = c_strtod(n->str, NULL);
      if (!isfinite(x))
        return fail(L, CASE_INVALID, n->pos, "number %s is out of range (expected a finite "
                    "number)", n->str);
      *out = json_real(x);
      break;
    }
    case V_STR:
      *out = json_stringn(n->str, n->len);
      if (!*out)
        return fail(L, CASE_INVALID, n->pos, "string is not valid UTF-8 or holds a NUL byte");
      break;
    }
    return *out ? CASE_OK : oom(L);
  }
  json_t *c = n->kind == N_SEQ ? json_array() : json_object();
  if (!c) return oom(L);
  int step = n->kind == N_SEQ ? 1 : 2;
  for (int i = 0; i < n->n; i += step) {
    json_t *v;
    int rc = yaml_to_json(L, n->kids[i + step - 1], &v);
    if (rc != CASE_OK) {
      json_decref(c);
      return rc;
    }
    int bad = n->kind == N_SEQ ? json_array_append_new(c, v)
                               : json_object_setn_new(c, n->kids[i]->str, n->kids[i]->len, v);
    if (bad) {
      json_decref(c);
      return oom(L);
    }
  }
  *out = c;
  return CASE_OK;
}

static int parse_roles(ld *L, const node *n) {
  case_def *d = L->d;
  int rc = want_kind(L, n, N_SEQ, "roles");
  if (rc != CASE_OK) return rc;
  if (n->n == 0)
    return fail(L, CASE_INVALID, n->pos, "roles is an empty list (expected the roles that act "
                "on cases, e.g. roles: [IND, COA]; leave roles out when only the system fires "
                "events)");
  if (!(d->roles = calloc((size_t)n->n, sizeof *d->roles))) return oom(L);
  for (int i = 0; i < n->n; i++) {
    const char *r = NULL;
    if ((rc = want_ident(L, n->kids[i], "role", &r)) != CASE_OK) return rc;
    for (int j = 0; j < d->nroles; j++)
      if (strcmp(d->roles[j], r) == 0)
        return fail(L, CASE_INVALID, n->kids[i]->pos, "role '%s' is declared twice", r);
    if (!(d->roles[d->nroles] = xstrdup(r))) return oom(L);
    d->nroles++;
  }
  return CASE_OK;
}

static int parse_params(ld *L, const node *n) {
  static const char *const keys[] = {"value", "source", "unverified", "description", NULL};
  case_def *d = L->d;
  int rc = want_kind(L, n, N_MAP, "params");
  if (rc != CASE_OK) return rc;
  int k = npairs(n);
  if (!k) return CASE_OK;
  if (!(d->params = calloc((size_t)k, sizeof *d->params))) return oom(L);
  for (int i = 0; i < k; i++) {
    const node *key = pkey(n, i), *v = pval(n, i);
    cs_param *p = &d->params[d->nparams++];
    p->pos = key->pos;
    if (!is_identifier(key->str, 0))
      return fail(L, CASE_INVALID, key->pos, "param name '%s' is not a name (expected letters, "
                  "digits and _)", key->str);
    if (!(p->name = xstrdup(key->str))) return oom(L);
    const node *val = v;
    if (v->kind == N_MAP) {
      if ((rc = check_keys(L, v, "a param", keys)) != CASE_OK) return rc;
      val = map_get(v, "value");
      if (!val)
        return fail(L, CASE_INVALID, key->pos, "param '%s' has no value (expected value: a "
                    "string, number or boolean)", key->str);
      const node *s = map_get(v, "source"), *u = map_get(v, "unverified");
      const node *de = map_get(v, "description");
      if (s && (rc = dup_text(L, s, "source", &p->source)) != CASE_OK) return rc;
      if (de && (rc = dup_text(L, de, "description", &p->description)) != CASE_OK) return rc;
      if (u && (rc = want_bool(L, u, "unverified", &p->unverified)) != CASE_OK) return rc;
    }
    if (val->kind != N_SCALAR || scalar_type(val) == V_NULL)
      return fail(L, CASE_INVALID, val->pos, "param '%s' is %s (expected a string, number or "
                  "boolean)", key->str, describe(val));
    if ((rc = yaml_to_json(L, val, &p->value)) != CASE_OK) return rc;
  }
  return CASE_OK;
}

static int parse_type(ld *L, const node *n, const char *field, cs_type *out) {
  static const struct {
    const char *name;
    cs_type type;
  } types[] = {{"string", TYPE_STRING}, {"integer", TYPE_INTEGER}, {"number", TYPE_NUMBER},
               {"boolean", TYPE_BOOLEAN}, {"date", TYPE_DATE}, {"list", TYPE_LIST},
               {"map", TYPE_MAP}, {"any", TYPE_ANY}};
  const char *s = NULL;
  int rc = want_text(L, n, "type", &s);
  if (rc != CASE_OK) return rc;
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (strcmp(s, types[i].name) == 0) {
      *out = types[i].type;
      return CASE_OK;
    }
  return fail(L, CASE_INVALID, n->text_pos, "unknown data type '%s' for '%s' (expected string, "
              "integer, number, boolean, date, list, map or any)", s, field);
}

static int field_value(ld *L, cs_field *f, const char *text, size_t len, cs_pos pos);
static int ld_resource(ld *L, const node *name, char **text, size_t *len);

/* data: (top level, state 0) or a state's data: (SCXML <datamodel> in a state). */
static int parse_fields(ld *L, const node *n, int state) {
  static const char *const keys[] = {"type", "default", "description", "expr", "content", "src",
                                     NULL};
  case_def *d = L->d;
  int rc = want_kind(L, n, N_MAP, "data");
  if (rc != CASE_OK) return rc;
  int k = npairs(n);
  for (int i = 0; i < k; i++) {
    const node *key = pkey(n, i), *v = pval(n, i);
    if (grow((void **)&d->fields, d->nfields, &L->cap_fields, sizeof *d->fields)) return oom(L);
    cs_field *f = &d->fields[d->nfields++];
    f->pos = key->pos;
    f->state = state;
    if (!is_identifier(key->str, 0))
      return fail(L, CASE_INVALID, key->pos, "data field name '%s' is not a name (expected "
                  "letters, digits and _)", key->str);
    for (int j = 0; j < d->nfields - 1; j++)
      if (strcmp(d->fields[j].name, key->str) == 0)
        return fail(L, CASE_INVALID, key->pos, "data field '%s' is declared twice (also at "
                    "line %d, column %d)", key->str, d->fields[j].pos.line, d->fields[j].pos.col);
    if (!(f->name = xstrdup(key->str))) return oom(L);
    const node *type = v, *def = NULL, *ex = NULL, *ct = NULL, *src = NULL;
    if (v->kind == N_MAP) {
      if ((rc = check_keys(L, v, "a data field", keys)) != CASE_OK) return rc;
      type = map_get(v, "type");
      def = map_get(v, "default");
      ex = map_get(v, "expr");
      ct = map_get(v, "content");
      src = map_get(v, "src");
      const node *de = map_get(v, "description");
      if ((def != NULL) + (ex != NULL) + (ct != NULL) + (src != NULL) > 1)
        return fail(L, CASE_INVALID, key->pos, "data field '%s' has more than one of default, "
                    "expr, content and src (expected one initial value)", key->str);
      if (!type && !ex && !ct && !src)
        return fail(L, CASE_INVALID, key->pos, "data field '%s' has no type (expected type: "
                    "string, integer, number, boolean, date, list, map or any)", key->str);
      if (de && (rc = dup_text(L, de, "description", &f->description)) != CASE_OK) return rc;
    }
    f->type = TYPE_ANY;
    if (type && (rc = parse_type(L, type, key->str, &f->type)) != CASE_OK) return rc;
    if (ex) {
      if (!(f->expr = calloc(1, sizeof *f->expr))) return oom(L);
      f->expr->ref = -1;
      if ((rc = make_script(L, ex, 0, f->expr)) != CASE_OK) return rc;
      f->expr->kind = SCRIPT_EXPR; /* a value, never a function name */
    } else if (ct || src) {
      char *text = NULL;
      size_t len = 0;
      if (src) {
        if ((rc = dup_text(L, src, "src", &f->src)) != CASE_OK) return rc;
        if ((rc = ld_resource(L, src, &text, &len)) != CASE_OK) return rc;
      } else {
        if ((rc = dup_text(L, ct, "content", &f->content)) != CASE_OK) return rc;
        text = f->content;
        len = strlen(text);
      }
      rc = field_value(L, f, text, len, src ? src->text_pos : ct->text_pos);
      if (src) free(text);
      if (rc != CASE_OK) return rc;
    }
    if (def) {
      if ((rc = yaml_to_json(L, def, &f->def)) != CASE_OK) return rc;
      cal_day day;
      int ok = type_accepts(f->type, f->def);
      if (ok && f->type == TYPE_DATE && json_is_string(f->def))
        ok = cal_parse_date(json_string_value(f->def), &day) == 0;
      if (!ok)
        return fail(L, CASE_INVALID, def->pos, "default of '%s' is %s (expected %s%s)",
                    key->str, describe(def),
                    f->type == TYPE_DATE ? "a date \"YYYY-MM-DD\"" : "a value of type ",
                    f->type == TYPE_DATE ? "" : type_name(f->type));
    } else if (!f->def && !(f->def = json_null())) {
      return oom(L);
    }
  }
  return CASE_OK;
}

static int parse_lua(ld *L, const node *n) {
  case_def *d = L->d;
  int rc = want_kind(L, n, N_SEQ, "lua");
  if (rc != CASE_OK) return rc;
  L->lua = n;
  if (n->n == 0) return CASE_OK;
  d->modules = calloc((size_t)n->n, sizeof *d->modules);
  d->module_names = calloc((size_t)n->n, sizeof *d->module_names);
  d->module_src = calloc((size_t)n->n, sizeof *d->module_src);
  d->module_len = calloc((size_t)n->n, sizeof *d->module_len);
  if (!d->modules || !d->module_names || !d->module_src || !d->module_len) return oom(L);
  for (int i = 0; i < n->n; i++) {
    if ((rc = dup_text(L, n->kids[i], "Lua module path", &d->modules[i])) != CASE_OK) return rc;
    d->nmodules++;
    if (!(d->module_names[i] = xstrdup(d->modules[i]))) return oom(L);
  }
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* Top level: report (what the caseload report groups by and counts)   */
/* ------------------------------------------------------------------ */

/* The report section is checked against the finished model (states, data,
 * roles, events, deadlines) and kept as canonical JSON in d->report; report.c
 * reads it.  docs/workflow-format.md, "report". */

static int report_field(ld *L, const node *n, const char *what, int boolean, json_t *into) {
  static const char *const keys[] = {"field", "label", NULL};
  const node *f = n, *lab = NULL;
  int rc;
  if (n->kind == N_MAP) {
    if ((rc = check_keys(L, n, what, keys)) != CASE_OK) return rc;
    f = map_get(n, "field");
    lab = map_get(n, "label");
    if (!f)
      return fail(L, CASE_INVALID, n->pos, "%s has no field (expected field: a data field)",
                  what);
  }
  const char *name = NULL, *label = NULL;
  if ((rc = want_text(L, f, "field", &name)) != CASE_OK) return rc;
  if (lab && (rc = want_text(L, lab, "label", &label)) != CASE_OK) return rc;
  int fi = def_field_find(L->d, name);
  if (fi < 0)
    return fail(L, CASE_INVALID, f->text_pos, "%s: field '%s' is not declared in data", what,
                name);
  if (boolean && L->d->fields[fi].type != TYPE_BOOLEAN)
    return fail(L, CASE_INVALID, f->text_pos, "%s: field '%s' is of type %s (expected a "
                "boolean field)", what, name, type_name(L->d->fields[fi].type));
  if (json_object_set_new(into, "field", json_string(name)) ||
      json_object_set_new(into, "label", json_string(label ? label : name)))
    return oom(L);
  return CASE_OK;
}

/* 1 if some transition listens to `name` (a wildcard does not count). */
static int event_declared(const case_def *d, const char *name) {
  for (int t = 0; t < d->ntransitions; t++)
    for (int k = 0; k < d->transitions[t].nevents; k++) {
      const char *desc = d->transitions[t].events[k];
      if (strcmp(desc, "*") != 0 && event_matches(desc, name)) return 1;
    }
  for (int t = 0; t < d->ntimers; t++)
    if (d->timers[t].event && strcmp(d->timers[t].event, name) == 0) return 1;
  return 0;
}

static int report_event(ld *L, const node *n, const char *what, const char **out) {
  int rc = want_text(L, n, what, out);
  if (rc != CASE_OK) return rc;
  if (!event_declared(L->d, *out))
    return fail(L, CASE_INVALID, n->text_pos, "%s '%s' is not an event of any transition",
                what, *out);
  return CASE_OK;
}

static int report_state_id(ld *L, const node *n, const char *what, const char **out) {
  int rc = want_text(L, n, what, out);
  if (rc != CASE_OK) return rc;
  int s = find_state(L, *out);
  if (s <= 0 || is_history(&L->d->states[s])) return unknown_state(L, n, what);
  return CASE_OK;
}

/* A list of events (signals, count events) as a JSON array. */
static int report_events(ld *L, const node *n, const char *what, json_t **out) {
  const node *one;
  const node *const *items;
  if (n->kind == N_MAP)
    return fail(L, CASE_INVALID, n->pos, "%s is a map (expected an event or a list of events)",
                what);
  int k = as_list(n, &items, &one);
  if (!(*out = json_array())) return oom(L);
  for (int i = 0; i < k; i++) {
    const char *ev = NULL;
    int rc = report_event(L, items[i], "event", &ev);
    if (rc != CASE_OK) return rc;
    if (json_array_append_new(*out, json_string(ev))) return oom(L);
  }
  return CASE_OK;
}

static int report_count(ld *L, const node *key, const node *v, json_t *counts) {
  static const char *const keys[] = {"label", "states", "event", "outcomes", "field", NULL};
  int rc;
  if (!is_identifier(key->str, 0))
    return fail(L, CASE_INVALID, key->pos, "report count '%s' is not a name (expected letters, "
                "digits and _)", key->str);
  if ((rc = want_kind(L, v, N_MAP, "a report count")) != CASE_OK) return rc;
  if ((rc = check_keys(L, v, "a report count", keys)) != CASE_OK) return rc;
  const node *lab = map_get(v, "label"), *st = map_get(v, "states"), *ev = map_get(v, "event");
  const node *oc = map_get(v, "outcomes"), *fi = map_get(v, "field");
  if ((st != NULL) + (ev != NULL) + (fi != NULL) != 1)
    return fail(L, CASE_INVALID, key->pos, "report count '%s' needs exactly one of states, "
                "event or field (what it counts: cases in those states, cases where the event "
                "was accepted, cases whose boolean field is true)", key->str);
  if (oc && !ev)
    return fail(L, CASE_INVALID, oc->pos, "outcomes belong to a count by event (expected "
                "event: E beside outcomes)");
  json_t *c = json_object();
  if (!c || json_array_append_new(counts, c) || json_object_set_new(c, "name",
                                                                     json_string(key->str)))
    return oom(L);
  const char *label = key->str;
  if (lab && (rc = want_text(L, lab, "label", &label)) != CASE_OK) return rc;
  if (json_object_set_new(c, "label", json_string(label))) return oom(L);
  if (st) {
    const node *one;
    const node *const *items;
    if (st->kind == N_MAP)
      return fail(L, CASE_INVALID, st->pos, "states is a map (expected a state id or a list)");
    int k = as_list(st, &items, &one);
    json_t *a = json_array();
    if (!a || json_object_set_new(c, "states", a)) return oom(L);
    for (int i = 0; i < k; i++) {
      const char *id = NULL;
      if ((rc = report_state_id(L, items[i], "state", &id)) != CASE_OK) return rc;
      if (json_array_append_new(a, json_string(id))) return oom(L);
    }
  } else if (ev) {
    const char *name = NULL;
    if ((rc = report_event(L, ev, "event", &name)) != CASE_OK) return rc;
    if (json_object_set_new(c, "event", json_string(name))) return oom(L);
    if (oc) {
      if ((rc = want_kind(L, oc, N_MAP, "outcomes")) != CASE_OK) return rc;
      json_t *o = json_object();
      if (!o || json_object_set_new(c, "outcomes", o)) return oom(L);
      for (int i = 0; i < npairs(oc); i++) {
        const char *oev = NULL, *name2 = NULL;
        const node *k2 = pkey(oc, i);
        if (!event_declared(L->d, k2->str))
          return fail(L, CASE_INVALID, k2->pos, "outcome event '%s' is not an event of any "
                      "transition", k2->str);
        oev = k2->str;
        if ((rc = want_text(L, pval(oc, i), "outcome", &name2)) != CASE_OK) return rc;
        if (json_object_set_new(o, oev, json_string(name2))) return oom(L);
      }
    }
  } else {
    json_t *f = json_object();
    if (!f) return oom(L);
    rc = report_field(L, fi, "a report count", 1, f);
    if (rc == CASE_OK &&
        json_object_set(c, "field", json_object_get(f, "field")))
      rc = oom(L);
    json_decref(f);
    if (rc != CASE_OK) return rc;
  }
  return CASE_OK;
}

static int report_role(ld *L, const node *n, const char *what, const char *role) {
  if (def_role_find(L->d, role) >= 0) return CASE_OK;
  sbuf b;
  sbuf_init(&b);
  for (int j = 0; j < L->d->nroles; j++)
    sbuf_printf(&b, "%s%s", j ? ", " : "", L->d->roles[j]);
  char *list = sbuf_take(&b);
  int rc = fail(L, CASE_INVALID, n->text_pos, "%s: role '%s' is not declared (expected one of: "
                "%s)", what, role, list ? list : "");
  free(list);
  return rc;
}

static int parse_report(ld *L, const node *n) {
  static const char *const keys[] = {"region", "track", "lane", "procesregisseur",
                                     "state_labels", "counts", "signals", "courts",
                                     "agencies", "horizon_days", "location_label", NULL};
  case_def *d = L->d;
  int rc = want_kind(L, n, N_MAP, "report");
  if (rc != CASE_OK) return rc;
  if ((rc = check_keys(L, n, "report", keys)) != CASE_OK) return rc;
  json_t *r = json_object();
  if (!r) return oom(L);
  d->report = r;
  const node *v;
  const char *s = NULL;
  if ((v = map_get(n, "region"))) {
    if ((rc = report_state_id(L, v, "report region", &s)) != CASE_OK) return rc;
    if (json_object_set_new(r, "region", json_string(s))) return oom(L);
  }
  static const char *const fields[] = {"track", "lane"};
  for (int i = 0; i < 2; i++) {
    if (!(v = map_get(n, fields[i]))) continue;
    json_t *o = json_object();
    if (!o || json_object_set_new(r, fields[i], o)) return oom(L);
    char what[32];
    snprintf(what, sizeof what, "report %s", fields[i]);
    if ((rc = report_field(L, v, what, i == 1, o)) != CASE_OK) return rc;
  }
  if ((v = map_get(n, "procesregisseur"))) {
    static const char *const pkeys[] = {"field", "label", "event", "payload", NULL};
    json_t *o = json_object();
    if (!o || json_object_set_new(r, "procesregisseur", o)) return oom(L);
    const node *ev = v->kind == N_MAP ? map_get(v, "event") : NULL;
    if (ev) {
      if ((rc = check_keys(L, v, "report procesregisseur", pkeys)) != CASE_OK) return rc;
      const node *pl = map_get(v, "payload");
      if (map_get(v, "field"))
        return fail(L, CASE_INVALID, v->pos, "report procesregisseur: give field or event, "
                    "not both");
      if (!pl)
        return fail(L, CASE_INVALID, v->pos, "report procesregisseur: event needs payload "
                    "(the key of the event's payload that names the procesregisseur)");
      const char *e2 = NULL, *p = NULL;
      if ((rc = report_event(L, ev, "event", &e2)) != CASE_OK) return rc;
      if ((rc = want_text(L, pl, "payload", &p)) != CASE_OK) return rc;
      if (json_object_set_new(o, "event", json_string(e2)) ||
          json_object_set_new(o, "payload", json_string(p)))
        return oom(L);
    } else if ((rc = report_field(L, v, "report procesregisseur", 0, o)) != CASE_OK) {
      return rc;
    }
  }
  if ((v = map_get(n, "state_labels"))) {
    if ((rc = want_kind(L, v, N_MAP, "state_labels")) != CASE_OK) return rc;
    json_t *o = json_object();
    if (!o || json_object_set_new(r, "state_labels", o)) return oom(L);
    for (int i = 0; i < npairs(v); i++) {
      const char *id = NULL, *label = NULL;
      if ((rc = report_state_id(L, pkey(v, i), "state", &id)) != CASE_OK) return rc;
      if ((rc = want_text(L, pval(v, i), "label", &label)) != CASE_OK) return rc;
      if (json_object_set_new(o, id, json_string(label))) return oom(L);
    }
  }
  if ((v = map_get(n, "counts"))) {
    if ((rc = want_kind(L, v, N_MAP, "counts")) != CASE_OK) return rc;
    json_t *a = json_array();
    if (!a || json_object_set_new(r, "counts", a)) return oom(L);
    for (int i = 0; i < npairs(v); i++)
      if ((rc = report_count(L, pkey(v, i), pval(v, i), a)) != CASE_OK) return rc;
  }
  if ((v = map_get(n, "signals"))) {
    json_t *a = NULL;
    rc = report_events(L, v, "signals", &a);
    if (a && json_object_set_new(r, "signals", a)) return oom(L);
    if (rc != CASE_OK) return rc;
  }
  if ((v = map_get(n, "courts"))) {
    const node *one;
    const node *const *items;
    if (v->kind == N_MAP)
      return fail(L, CASE_INVALID, v->pos, "courts is a map (expected a role or a list)");
    int k = as_list(v, &items, &one);
    json_t *a = json_array();
    if (!a || json_object_set_new(r, "courts", a)) return oom(L);
    for (int i = 0; i < k; i++) {
      if ((rc = want_text(L, items[i], "court", &s)) != CASE_OK) return rc;
      if ((rc = report_role(L, items[i], "report courts", s)) != CASE_OK) return rc;
      if (json_array_append_new(a, json_string(s))) return oom(L);
    }
  }
  if ((v = map_get(n, "agencies"))) {
    if ((rc = want_kind(L, v, N_MAP, "agencies")) != CASE_OK) return rc;
    json_t *o = json_object();
    if (!o || json_object_set_new(r, "agencies", o)) return oom(L);
    for (int i = 0; i < npairs(v); i++) {
      const node *k = pkey(v, i);
      int found = 0;
      for (int t = 0; t < d->ntimers && !found; t++)
        found = d->timers[t].kind == TIMER_DEADLINE && strcmp(d->timers[t].name, k->str) == 0;
      if (!found)
        return fail(L, CASE_INVALID, k->pos, "report agencies: '%s' is not a deadline of the "
                    "workflow", k->str);
      const char *who = NULL;
      if ((rc = want_text(L, pval(v, i), "agency", &who)) != CASE_OK) return rc;
      /* "DTV/KMAR": every part a declared role. */
      char part[128];
      for (const char *p = who; *p;) {
        size_t len = strcspn(p, "/");
        snprintf(part, sizeof part, "%.*s", (int)(len < sizeof part ? len : sizeof part - 1), p);
        if ((rc = report_role(L, pval(v, i), "report agencies", part)) != CASE_OK) return rc;
        p += len;
        if (*p) p++;
      }
      if (json_object_set_new(o, k->str, json_string(who))) return oom(L);
    }
  }
  if ((v = map_get(n, "location_label"))) {
    if ((rc = want_text(L, v, "location_label", &s)) != CASE_OK) return rc;
    int pi = def_param_find(d, s);
    if (pi < 0)
      return fail(L, CASE_INVALID, v->text_pos, "report location_label: '%s' is not a param of "
                  "the workflow (expected the param each location profile names itself by)", s);
    if (!json_is_string(d->params[pi].value))
      return fail(L, CASE_INVALID, v->text_pos, "report location_label: param '%s' is not a "
                  "string", s);
    if (json_object_set_new(r, "location_label", json_string(s))) return oom(L);
  }
  if ((v = map_get(n, "horizon_days"))) {
    long long h = -1;
    if (v->kind != N_SCALAR || scalar_type(v) != V_INT)
      return fail(L, CASE_INVALID, v->pos, "horizon_days is %s (expected an integer from 0 to "
                  "3660: terms running out within this many days are due soon)", describe(v));
    if (scalar_int(v, &h) != 0 || h < 0 || h > 3660)
      return fail(L, CASE_INVALID, v->pos, "horizon_days %s is out of range (expected an "
                  "integer from 0 to 3660)", v->str);
    if (json_object_set_new(r, "horizon_days", json_integer((json_int_t)h))) return oom(L);
  }
  return CASE_OK;
}

static int file_exists(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  fclose(f);
  return 1;
}

static char *join_path(const char *dir, const char *rel) {
  sbuf b;
  sbuf_init(&b);
  sbuf_printf(&b, "%s/%s", dir, rel);
  return sbuf_take(&b);
}

/* Module paths: absolute as written; else next to the definition if there,
 * else under the engine's Lua root. */
static int resolve_modules(ld *L, const char *dir) {
  case_def *d = L->d;
  for (int i = 0; i < d->nmodules; i++) {
    const char *p = d->modules[i];
    const json_t *pinned = L->pinned ? json_object_get(L->pinned, d->module_names[i]) : NULL;
    if (json_is_string(pinned)) {
      /* Pinned source: no file is read; the path stays as written. */
      size_t n = json_string_length(pinned);
      if (!(d->module_src[i] = xstrndup(json_string_value(pinned), n))) return oom(L);
      d->module_len[i] = n;
      continue;
    }
    if (p[0] == '/') {
      if (!file_exists(p))
        return fail(L, CASE_IO, L->lua->kids[i]->text_pos, "Lua module '%s' not found", p);
      continue;
    }
    char *found = NULL;
    if (dir) {
      if (!(found = join_path(dir, p))) return oom(L);
      if (!file_exists(found)) {
        free(found);
        found = NULL;
      }
    }
    if (!found) {
      const char *root = L->e->lua_root ? L->e->lua_root : ".";
      if (!(found = join_path(root, p))) return oom(L);
      if (!file_exists(found)) {
        free(found);
        if (dir)
          return fail(L, CASE_IO, L->lua->kids[i]->text_pos, "Lua module '%s' not found (looked "
                      "in %s and in the Lua root %s)", p, dir, root);
        return fail(L, CASE_IO, L->lua->kids[i]->text_pos, "Lua module '%s' not found (looked "
                    "in the Lua root %s)", p, root);
      }
    }
    free(d->modules[i]);
    d->modules[i] = found;
  }
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* Stage 2c: SCXML semantics in the model (issue 13): executable       */
/* content, transition lists, invokes, donedata, files read at load     */
/* ------------------------------------------------------------------ */

/* A new script from scalar n: an expression (is_block 0) or Lua statements,
 * never a function name. */
static int make_lua(ld *L, const node *n, int is_block, const char *what, cs_script **out) {
  *out = NULL;
  if (n->kind != N_SCALAR || scalar_type(n) == V_NULL)
    return fail(L, CASE_INVALID, n->pos, "%s is %s (expected a Lua %s)", what, describe(n),
                is_block ? "block" : "expression");
  cs_script *sc = calloc(1, sizeof *sc);
  if (!sc) return oom(L);
  *out = sc;
  sc->ref = -1;
  sc->kind = is_block ? SCRIPT_BLOCK : SCRIPT_EXPR;
  sc->pos = n->text_pos;
  if (!(sc->text = xstrdup(n->str))) return oom(L);
  return CASE_OK;
}

/* A Lua block the loader writes (assignments to locations). */
static int make_chunk(ld *L, cs_pos pos, cs_script **out, const char *fmt, ...) CASE_PRINTF(4, 5);
static int make_chunk(ld *L, cs_pos pos, cs_script **out, const char *fmt, ...) {
  cs_script *sc = calloc(1, sizeof *sc);
  *out = sc;
  if (!sc) return oom(L);
  sc->ref = -1;
  sc->kind = SCRIPT_BLOCK;
  sc->pos = pos;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !(sc->text = malloc((size_t)n + 1))) return oom(L);
  va_start(ap, fmt);
  vsnprintf(sc->text, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return CASE_OK;
}

static int want_str(ld *L, const node *m, const char *key, char **out) {
  const node *n = map_get(m, key);
  if (!n) return CASE_OK;
  return dup_text(L, n, key, out);
}

static int want_expr(ld *L, const node *m, const char *key, cs_script **out) {
  const node *n = map_get(m, key);
  if (!n) return CASE_OK;
  return make_lua(L, n, 0, key, out);
}

/* Exactly one of key and keyexpr (or neither when optional). */
static int one_of(ld *L, const node *m, const char *key, const char *keyexpr, int required,
                  const char *what) {
  const node *a = map_get(m, key), *b = map_get(m, keyexpr);
  if (a && b)
    return fail(L, CASE_INVALID, b->pos, "%s has both %s and %s (expected one)", what, key,
                keyexpr);
  if (required && !a && !b)
    return fail(L, CASE_INVALID, m->pos, "%s without %s or %s", what, key, keyexpr);
  return CASE_OK;
}

/* A location (assign, foreach item/index, idlocation, namelist) is a Lua
 * lvalue; "<location> = ..." is compiled with it. */
static int location_chunk(ld *L, const node *n, const char *what, char **text,
                          cs_script **chunk) {
  int rc = dup_text(L, n, what, text);
  if (rc != CASE_OK) return rc;
  return make_chunk(L, n->text_pos, chunk, "%s = ...", *text);
}

/* Text with its runs of white space made one space, trimmed (SCXML: the
 * space-normalized string of content that is no value). */
static json_t *normalized(const char *s, size_t n) {
  char *buf = malloc(n + 1);
  if (!buf) return NULL;
  size_t k = 0;
  int space = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = k > 0;
      continue;
    }
    if (space) buf[k++] = ' ';
    space = 0;
    buf[k++] = c;
  }
  json_t *j = json_stringn(buf, k);
  free(buf);
  return j;
}

/* The value of inline content text: JSON when it is JSON; else (lua set) a
 * Lua expression when it compiles (decided at compile time); else the text
 * as a space-normalized string. */
static int content_value(ld *L, const char *text, size_t len, cs_pos pos, int lua,
                         json_t **value, cs_script **expr) {
  *value = NULL;
  *expr = NULL;
  size_t a = 0, b = len;
  while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\n' || text[a] == '\r')) a++;
  while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\n' ||
                   text[b - 1] == '\r'))
    b--;
  if (a == b) {
    *value = json_string("");
    return *value ? CASE_OK : oom(L);
  }
  json_t *j = json_loadb(text + a, b - a, JSON_DECODE_ANY, NULL);
  if (j) {
    *value = j;
    return CASE_OK;
  }
  if (!lua) {
    *value = normalized(text + a, b - a);
    return *value ? CASE_OK : oom(L);
  }
  cs_script *sc = calloc(1, sizeof *sc);
  if (!sc) return oom(L);
  *expr = sc;
  sc->ref = -1;
  sc->kind = SCRIPT_EXPR;
  sc->pos = pos;
  for (size_t i = 0; i < a; i++) sc->pos.line += text[i] == '\n';
  if (!(sc->text = xstrndup(text + a, b - a))) return oom(L);
  /* the fallback if it does not compile: the text as a string */
  *value = normalized(text + a, b - a);
  return *value ? CASE_OK : oom(L);
}

static int field_value(ld *L, cs_field *f, const char *text, size_t len, cs_pos pos) {
  json_t *v;
  cs_script *x;
  int rc = content_value(L, text, len, pos, 1, &v, &x);
  f->expr = x;
  json_decref(f->def);
  f->def = v;
  if (x) { /* the expression gives the value; compile_scripts() falls back to the text */
    json_decref(v);
    f->def = NULL;
  }
  return rc;
}

/* namelist: [locations] and params: [{name, expr|location}] (or a map
 * name -> expr), in that order. */
static int parse_names(ld *L, const node *m, cs_namevalue **out, int *nout) {
  const node *nl = map_get(m, "namelist"), *pl = map_get(m, "params");
  int cap = 0, rc;
  const node *one;
  const node *const *items;
  if (nl) {
    int k = as_list(nl, &items, &one);
    for (int i = 0; i < k; i++) {
      if (grow((void **)out, *nout, &cap, sizeof **out)) return oom(L);
      cs_namevalue *nv = &(*out)[(*nout)++];
      nv->location = 2; /* a namelist entry: the name is the location */
      if ((rc = dup_text(L, items[i], "namelist entry", &nv->name)) != CASE_OK) return rc;
      if ((rc = make_lua(L, items[i], 0, "namelist entry", &nv->expr)) != CASE_OK) return rc;
    }
  }
  if (!pl) return CASE_OK;
  if (pl->kind == N_MAP) {
    for (int i = 0; i < npairs(pl); i++) {
      if (grow((void **)out, *nout, &cap, sizeof **out)) return oom(L);
      cs_namevalue *nv = &(*out)[(*nout)++];
      if (!(nv->name = xstrdup(pkey(pl, i)->str))) return oom(L);
      if ((rc = make_lua(L, pval(pl, i), 0, "param", &nv->expr)) != CASE_OK) return rc;
    }
    return CASE_OK;
  }
  int k = as_list(pl, &items, &one);
  for (int i = 0; i < k; i++) {
    static const char *const keys[] = {"name", "expr", "location", NULL};
    const node *it = items[i];
    if (it->kind != N_MAP)
      return fail(L, CASE_INVALID, it->pos, "param is %s (expected a map with name and expr or "
                  "location)", describe(it));
    if ((rc = check_keys(L, it, "a param", keys)) != CASE_OK) return rc;
    if ((rc = one_of(L, it, "expr", "location", 1, "param")) != CASE_OK) return rc;
    const node *nm = map_get(it, "name");
    if (!nm) return fail(L, CASE_INVALID, it->pos, "param without name");
    if (grow((void **)out, *nout, &cap, sizeof **out)) return oom(L);
    cs_namevalue *nv = &(*out)[(*nout)++];
    if ((rc = dup_text(L, nm, "param name", &nv->name)) != CASE_OK) return rc;
    const node *v = map_get(it, "expr");
    if (!v) {
      v = map_get(it, "location");
      nv->location = 1;
    }
    if ((rc = make_lua(L, v, 0, "param", &nv->expr)) != CASE_OK) return rc;
  }
  return CASE_OK;
}

/* content: {expr: ...} or {text: ...} (of send, assign, donedata); the text
 * of send and donedata is a literal value, assign's may be Lua (lua set). */
static int parse_content(ld *L, const node *n, cs_exec *x, int lua) {
  static const char *const keys[] = {"expr", "text", "markup", NULL};
  int rc;
  if (n->kind != N_MAP)
    return fail(L, CASE_INVALID, n->pos, "content is %s (expected a map with expr or text)",
                describe(n));
  if ((rc = check_keys(L, n, "content", keys)) != CASE_OK) return rc;
  if ((rc = one_of(L, n, "expr", "text", 1, "content")) != CASE_OK) return rc;
  const node *e = map_get(n, "expr"), *t = map_get(n, "text"), *mk = map_get(n, "markup");
  if (mk && (rc = want_bool(L, mk, "markup", &x->content_xml)) != CASE_OK) return rc;
  if (e) return make_lua(L, e, 0, "content expr", &x->content);
  if (t->kind != N_SCALAR) return fail(L, CASE_INVALID, t->pos, "content text is %s", describe(t));
  if (!(x->content_text = xstrdup(t->str))) return oom(L);
  if (x->content_xml) {
    x->content_value = json_string(t->str);
    return x->content_value ? CASE_OK : oom(L);
  }
  return content_value(L, t->str, t->len, t->text_pos, lua, &x->content_value, &x->content);
}

static int parse_block(ld *L, const node *n, cs_script **out, int *nout) {
  if (!n) return CASE_OK;
  if (n->kind == N_SCALAR && scalar_type(n) == V_NULL) return CASE_OK;
  return make_actions(L, n, out, nout);
}

static int make_exec(ld *L, const node *n, cs_script *out) {
  out->ref = -1;
  out->pos = n->pos;
  if (npairs(n) < 1)
    return fail(L, CASE_INVALID, n->pos, "an empty map as an action (expected Lua, a function "
                "name, or one of raise, send, cancel, log, assign, if, foreach, script, call)");
  const char *k = pkey(n, 0)->str;
  const node *v = pval(n, 0);
  int rc;
  if (strcmp(k, "script") == 0 || strcmp(k, "call") == 0) {
    if (npairs(n) != 1)
      return fail(L, CASE_INVALID, pkey(n, 1)->pos, "unknown key '%s' with %s", pkey(n, 1)->str, k);
    if (strcmp(k, "call") == 0) {
      if ((rc = make_script(L, v, 1, out)) != CASE_OK) return rc;
      if (out->kind != SCRIPT_NAMED && out->kind != SCRIPT_NATIVE)
        return fail(L, CASE_INVALID, v->text_pos, "call: '%s' is not a function name", v->str);
      return CASE_OK;
    }
    if (v->kind == N_MAP) { /* script: {src: file} */
      const node *src = map_get(v, "src");
      if (!src || npairs(v) != 1)
        return fail(L, CASE_INVALID, v->pos, "script is a map (expected Lua text, or src: a "
                    "file of Lua)");
      char *text = NULL;
      size_t len = 0;
      if ((rc = ld_resource(L, src, &text, &len)) != CASE_OK) return rc;
      out->kind = SCRIPT_BLOCK;
      out->text = text;
      out->pos = src->text_pos;
      out->pos.line = 1;
      out->pos.col = 1;
      return dup_text(L, src, "src", &out->src);
    }
    if ((rc = make_script(L, v, 1, out)) != CASE_OK) return rc;
    out->kind = SCRIPT_BLOCK; /* script: text is Lua, even a single name */
    out->ref = -1;
    return CASE_OK;
  }
  cs_exec *x = calloc(1, sizeof *x);
  if (!x) return oom(L);
  out->exec = x;
  if (strcmp(k, "raise") == 0) {
    out->kind = EXEC_RAISE;
    if (npairs(n) != 1)
      return fail(L, CASE_INVALID, pkey(n, 1)->pos, "unknown key '%s' with raise", pkey(n, 1)->str);
    if ((rc = dup_text(L, v, "raise", &x->event)) != CASE_OK) return rc;
    const char *why = event_name_problem(x->event);
    if (why) return fail(L, CASE_INVALID, v->text_pos, "raise '%s': %s", x->event, why);
    return CASE_OK;
  }
  if (npairs(n) != 1 && strcmp(k, "if") != 0)
    return fail(L, CASE_INVALID, pkey(n, 1)->pos, "unknown key '%s' with %s", pkey(n, 1)->str, k);
  if (strcmp(k, "send") == 0) {
    static const char *const keys[] = {"event", "eventexpr", "target", "targetexpr", "type",
                                       "typeexpr", "id", "idlocation", "delay", "delayexpr",
                                       "namelist", "params", "content", NULL};
    out->kind = EXEC_SEND;
    if ((rc = want_kind(L, v, N_MAP, "send")) != CASE_OK) return rc;
    if ((rc = check_keys(L, v, "a send", keys)) != CASE_OK) return rc;
    if ((rc = one_of(L, v, "event", "eventexpr", 0, "send")) != CASE_OK ||
        (rc = one_of(L, v, "target", "targetexpr", 0, "send")) != CASE_OK ||
        (rc = one_of(L, v, "type", "typeexpr", 0, "send")) != CASE_OK ||
        (rc = one_of(L, v, "id", "idlocation", 0, "send")) != CASE_OK ||
        (rc = one_of(L, v, "delay", "delayexpr", 0, "send")) != CASE_OK)
      return rc;
    const node *ct = map_get(v, "content");
    if (ct && (map_get(v, "namelist") || map_get(v, "params")))
      return fail(L, CASE_INVALID, ct->pos, "send has content and namelist or params (SCXML "
                  "allows one of them)");
    if ((rc = want_str(L, v, "event", &x->event)) != CASE_OK ||
        (rc = want_expr(L, v, "eventexpr", &x->eventexpr)) != CASE_OK ||
        (rc = want_str(L, v, "target", &x->target)) != CASE_OK ||
        (rc = want_expr(L, v, "targetexpr", &x->targetexpr)) != CASE_OK ||
        (rc = want_str(L, v, "type", &x->type)) != CASE_OK ||
        (rc = want_expr(L, v, "typeexpr", &x->typeexpr)) != CASE_OK ||
        (rc = want_str(L, v, "id", &x->id)) != CASE_OK ||
        (rc = want_expr(L, v, "delayexpr", &x->delayexpr)) != CASE_OK)
      return rc;
    if (x->event) {
      const char *why = event_name_problem(x->event);
      if (why) return fail(L, CASE_INVALID, map_get(v, "event")->text_pos, "send '%s': %s",
                           x->event, why);
    }
    const node *il = map_get(v, "idlocation");
    if (il && (rc = location_chunk(L, il, "idlocation", &x->idlocation, &x->idassign)) != CASE_OK)
      return rc;
    const node *dl = map_get(v, "delay");
    if (dl) {
      if ((rc = dup_text(L, dl, "delay", &x->delay)) != CASE_OK) return rc;
      int k2 = chart_parse_delay(x->delay, &x->delay_ms);
      if (k2 == -2 || k2 == -1) {
        if (!(x->dur = calloc(1, sizeof *x->dur))) return oom(L);
        if ((rc = parse_duration(L, dl, L->d->clock, x->dur)) != CASE_OK) return rc;
        if (x->dur->param)
          return fail(L, CASE_INVALID, dl->text_pos, "a send delay cannot name a param (use "
                      "delayexpr)");
      }
    }
    if ((rc = parse_names(L, v, &x->names, &x->nnames)) != CASE_OK) return rc;
    if (ct && (rc = parse_content(L, ct, x, 0)) != CASE_OK) return rc;
    return CASE_OK;
  }
  if (strcmp(k, "cancel") == 0) {
    out->kind = EXEC_CANCEL;
    if (v->kind != N_MAP) return dup_text(L, v, "cancel", &x->id);
    static const char *const keys[] = {"sendid", "sendidexpr", NULL};
    if ((rc = check_keys(L, v, "a cancel", keys)) != CASE_OK) return rc;
    if ((rc = one_of(L, v, "sendid", "sendidexpr", 1, "cancel")) != CASE_OK) return rc;
    if ((rc = want_str(L, v, "sendid", &x->id)) != CASE_OK) return rc;
    return want_expr(L, v, "sendidexpr", &x->idexpr);
  }
  if (strcmp(k, "log") == 0) {
    static const char *const keys[] = {"label", "expr", NULL};
    out->kind = EXEC_LOG;
    if (v->kind != N_MAP) return make_lua(L, v, 0, "log", &x->expr);
    if ((rc = check_keys(L, v, "a log", keys)) != CASE_OK) return rc;
    if ((rc = want_str(L, v, "label", &x->label)) != CASE_OK) return rc;
    return want_expr(L, v, "expr", &x->expr);
  }
  if (strcmp(k, "assign") == 0) {
    static const char *const keys[] = {"location", "expr", "content", NULL};
    out->kind = EXEC_ASSIGN;
    if ((rc = want_kind(L, v, N_MAP, "assign")) != CASE_OK) return rc;
    if ((rc = check_keys(L, v, "an assign", keys)) != CASE_OK) return rc;
    const node *loc = map_get(v, "location"), *ex = map_get(v, "expr"), *ct = map_get(v, "content");
    if (!loc) return fail(L, CASE_INVALID, v->pos, "assign without location");
    if (ex && ct) return fail(L, CASE_INVALID, ct->pos, "assign has both expr and content");
    if ((rc = dup_text(L, loc, "location", &x->location)) != CASE_OK) return rc;
    if (ct) {
      if ((rc = parse_content(L, ct, x, 1)) != CASE_OK) return rc;
      return make_chunk(L, loc->text_pos, &x->assign, "%s = ...", x->location);
    }
    if (!ex) return fail(L, CASE_INVALID, v->pos, "assign without expr or content");
    if ((rc = make_lua(L, ex, 0, "expr", &x->expr)) != CASE_OK) return rc;
    /* One chunk: a bad location or a bad value is one error at run time. */
    return make_chunk(L, loc->text_pos, &x->assign, "%s = (%s\n)", x->location, x->expr->text);
  }
  if (strcmp(k, "if") == 0) {
    static const char *const keys[] = {"if", "then", "elseif", "else", NULL};
    out->kind = EXEC_IF;
    if ((rc = check_keys(L, n, "an if", keys)) != CASE_OK) return rc;
    const node *el = map_get(n, "elseif"), *es = map_get(n, "else");
    const node *one;
    const node *const *items = NULL;
    int nel = el ? as_list(el, &items, &one) : 0;
    int nb = 1 + nel + (es != NULL);
    x->conds = calloc((size_t)nb, sizeof *x->conds);
    x->blocks = calloc((size_t)nb, sizeof *x->blocks);
    x->nblock = calloc((size_t)nb, sizeof *x->nblock);
    if (!x->conds || !x->blocks || !x->nblock) return oom(L);
    x->nbranches = nb;
    if ((rc = make_lua(L, v, 0, "if", &x->conds[0])) != CASE_OK) return rc;
    if ((rc = parse_block(L, map_get(n, "then"), &x->blocks[0], &x->nblock[0])) != CASE_OK)
      return rc;
    for (int i = 0; i < nel; i++) {
      static const char *const ekeys[] = {"cond", "then", NULL};
      const node *it = items[i];
      if (it->kind != N_MAP)
        return fail(L, CASE_INVALID, it->pos, "elseif entry is %s (expected a map with cond "
                    "and then)", describe(it));
      if ((rc = check_keys(L, it, "an elseif", ekeys)) != CASE_OK) return rc;
      const node *c = map_get(it, "cond");
      if (!c) return fail(L, CASE_INVALID, it->pos, "elseif without cond");
      if ((rc = make_lua(L, c, 0, "cond", &x->conds[1 + i])) != CASE_OK) return rc;
      if ((rc = parse_block(L, map_get(it, "then"), &x->blocks[1 + i], &x->nblock[1 + i])) !=
          CASE_OK)
        return rc;
    }
    if (es && (rc = parse_block(L, es, &x->blocks[nb - 1], &x->nblock[nb - 1])) != CASE_OK)
      return rc;
    return CASE_OK;
  }
  if (strcmp(k, "block") == 0) {
    out->kind = EXEC_BLOCK;
    x->nbranches = 1;
    x->blocks = calloc(1, sizeof *x->blocks);
    x->nblock = calloc(1, sizeof *x->nblock);
    if (!x->blocks || !x->nblock) return oom(L);
    return parse_block(L, v, &x->blocks[0], &x->nblock[0]);
  }
  if (strcmp(k, "foreach") == 0) {
    static const char *const keys[] = {"array", "item", "index", "do", NULL};
    out->kind = EXEC_FOREACH;
    if ((rc = want_kind(L, v, N_MAP, "foreach")) != CASE_OK) return rc;
    if ((rc = check_keys(L, v, "a foreach", keys)) != CASE_OK) return rc;
    const node *ar = map_get(v, "array"), *it = map_get(v, "item"), *ix = map_get(v, "index");
    if (!ar || !it) return fail(L, CASE_INVALID, v->pos, "foreach without array or item");
    if ((rc = make_lua(L, ar, 0, "array", &x->array)) != CASE_OK) return rc;
    if ((rc = location_chunk(L, it, "item", &x->location, &x->assign)) != CASE_OK) return rc;
    if (ix && (rc = location_chunk(L, ix, "index", &x->index, &x->index_assign)) != CASE_OK)
      return rc;
    x->nbranches = 1;
    x->blocks = calloc(1, sizeof *x->blocks);
    x->nblock = calloc(1, sizeof *x->nblock);
    if (!x->blocks || !x->nblock) return oom(L);
    return parse_block(L, map_get(v, "do"), &x->blocks[0], &x->nblock[0]);
  }
  return fail(L, CASE_INVALID, pkey(n, 0)->pos, "unknown action '%s' (expected Lua, a function "
              "name, or one of raise, send, cancel, log, assign, if, foreach, block, script, "
              "call)", k);
}

static int parse_donedata(ld *L, int state, const node *n) {
  static const char *const keys[] = {"namelist", "params", "content", NULL};
  int rc = want_kind(L, n, N_MAP, "donedata");
  if (rc != CASE_OK) return rc;
  if ((rc = check_keys(L, n, "donedata", keys)) != CASE_OK) return rc;
  cs_exec *x = calloc(1, sizeof *x);
  if (!x) return oom(L);
  L->d->states[state].donedata = x;
  if ((rc = parse_names(L, n, &x->names, &x->nnames)) != CASE_OK) return rc;
  const node *ct = map_get(n, "content");
  if (ct && x->nnames)
    return fail(L, CASE_INVALID, ct->pos, "donedata has content and params (SCXML allows one)");
  return ct ? parse_content(L, ct, x, 0) : CASE_OK;
}

/* transitions: a list in document order, each with its own event (SCXML's
 * <transition> elements); an entry with delay: is a delayed transition. */
static int parse_transition_list(ld *L, int src, const node *n) {
  int rc = want_kind(L, n, N_SEQ, "transitions");
  if (rc != CASE_OK) return rc;
  for (int j = 0; j < n->n; j++) {
    const node *it = n->kids[j];
    if (it->kind != N_MAP)
      return fail(L, CASE_INVALID, it->pos, "transition is %s (expected a map with event, "
                  "target, guard, actions)", describe(it));
    const node *ev = map_get(it, "event");
    if (map_get(it, "delay")) {
      if (ev) return fail(L, CASE_INVALID, ev->pos, "a delayed transition has no event");
      if ((rc = after_one(L, src, it)) != CASE_OK) return rc;
      continue;
    }
    /* the same keys as on: entries, plus event (the map without it is parsed) */
    node copy = *it;
    node *kids[64];
    if (ev) {
      if (it->n > (int)(sizeof kids / sizeof kids[0]))
        return fail(L, CASE_INVALID, it->pos, "too many keys in a transition");
      int m = 0;
      for (int i = 0; i < npairs(it); i++) {
        if (strcmp(pkey(it, i)->str, "event") == 0) continue;
        kids[m++] = it->kids[2 * i];
        kids[m++] = it->kids[2 * i + 1];
      }
      copy.kids = kids;
      copy.n = m;
    }
    char *evs[32];
    int nev = 0;
    if (ev) {
      const char *text = NULL;
      if ((rc = want_text(L, ev, "event", &text)) != CASE_OK) return rc;
      for (const char *p = text; *p && rc == CASE_OK;) {
        while (*p == ' ' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        const char *q = p;
        while (*q && *q != ' ' && *q != '\t' && *q != '\n') q++;
        if (nev == 32) {
          rc = fail(L, CASE_INVALID, ev->pos, "too many event names in one transition (at most 32)");
          break;
        }
        char *one = xstrndup(p, (size_t)(q - p));
        if (!one) {
          rc = oom(L);
          break;
        }
        evs[nev++] = one;
        if (!event_ok(one, 1))
          rc = fail(L, CASE_INVALID, ev->text_pos, "bad event name '%s' (expected dotted words "
                    "of letters, digits, _ or -, or *)", one);
        else if (strncmp(one, "after.", 6) == 0)
          rc = fail(L, CASE_INVALID, ev->text_pos, "event '%s' is reserved: names starting with "
                    "'after.' belong to delayed transitions", one);
        else if (strlen(one) > 2 && strcmp(one + strlen(one) - 2, ".*") == 0)
          one[strlen(one) - 2] = '\0';
        p = q;
      }
      if (rc == CASE_OK && nev == 0)
        rc = fail(L, CASE_INVALID, ev->pos, "empty event (leave event out for an eventless "
                  "transition)");
    }
    if (rc == CASE_OK)
      rc = parse_transition(L, src, &copy, nev ? T_ON : T_ALWAYS, evs, nev, it->pos, NULL);
    for (int i = 0; i < nev; i++) free(evs[i]);
    if (rc != CASE_OK) return rc;
  }
  return CASE_OK;
}

/* Reads a file the definition names (<script src>, <data src>, <invoke src>):
 * from the pinned sources when the store gave them, else from next to the
 * definition (or the Lua root).  The text is kept in the definition so that
 * a store pins it.  *text is malloc'd for the caller. */
static int ld_resource(ld *L, const node *name, char **text, size_t *len) {
  case_def *d = L->d;
  const char *as_written = name->str;
  *text = NULL;
  *len = 0;
  const json_t *pin = L->pinned ? json_object_get(L->pinned, as_written) : NULL;
  char *buf = NULL;
  size_t n = 0;
  for (int i = 0; i < d->nres && !buf; i++)
    if (strcmp(d->res_names[i], as_written) == 0) {
      n = d->res_len[i];
      if (!(buf = xstrndup(d->res_src[i], n))) return oom(L);
      *text = buf;
      *len = n;
      return CASE_OK;
    }
  if (json_is_string(pin)) {
    n = json_string_length(pin);
    if (!(buf = xstrndup(json_string_value(pin), n))) return oom(L);
  } else {
    const char *p = as_written;
    if (strncmp(p, "file://", 7) == 0) p += 7;
    else if (strncmp(p, "file:", 5) == 0) p += 5;
    /* next to the definition, then (as a lua: module) under the Lua root */
    const char *root = L->e->lua_root ? L->e->lua_root : ".";
    sbuf path;
    sbuf_init(&path);
    if (p[0] == '/') sbuf_puts(&path, p);
    else sbuf_printf(&path, "%s/%s", L->dir ? L->dir : root, p);
    char *full = sbuf_take(&path);
    if (!full) return oom(L);
    FILE *f = fopen(full, "rb");
    if (!f && p[0] != '/' && L->dir && errno == ENOENT) {
      char *again = NULL;
      sbuf_init(&path);
      sbuf_printf(&path, "%s/%s", root, p);
      if (!(again = sbuf_take(&path))) {
        free(full);
        return oom(L);
      }
      if ((f = fopen(again, "rb"))) {
        free(full);
        full = again;
      } else {
        free(again);
        errno = ENOENT;
      }
    }
    if (!f) {
      int rc = L->dir && p[0] != '/' && errno == ENOENT
                   ? fail(L, CASE_IO, name->text_pos, "cannot read '%s' (%s, nor in the Lua root %s): %s",
                          as_written, full, root, strerror(errno))
                   : fail(L, CASE_IO, name->text_pos, "cannot read '%s' (%s): %s", as_written,
                          full, strerror(errno));
      free(full);
      return rc;
    }
    sbuf b;
    sbuf_init(&b);
    char chunk[8192];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) sbuf_add(&b, chunk, k);
    int bad = ferror(f);
    fclose(f);
    free(full);
    n = b.len;
    if (bad || b.failed) {
      sbuf_free(&b);
      return bad ? fail(L, CASE_IO, name->text_pos, "read error on '%s'", as_written) : oom(L);
    }
    buf = sbuf_take(&b);
    if (!buf) return oom(L);
  }
  char **nn = realloc(d->res_names, (size_t)(d->nres + 1) * sizeof *nn);
  if (nn) d->res_names = nn;
  char **ss = realloc(d->res_src, (size_t)(d->nres + 1) * sizeof *ss);
  if (ss) d->res_src = ss;
  size_t *ll = realloc(d->res_len, (size_t)(d->nres + 1) * sizeof *ll);
  if (ll) d->res_len = ll;
  char *keep = nn && ss && ll ? xstrndup(buf, n) : NULL;
  char *nm = keep ? xstrdup(as_written) : NULL;
  if (!nm) {
    free(keep);
    free(buf);
    return oom(L);
  }
  d->res_names[d->nres] = nm;
  d->res_src[d->nres] = keep;
  d->res_len[d->nres] = n;
  d->nres++;
  *text = buf;
  *len = n;
  return CASE_OK;
}

static int parse_tree_at(case_engine *e, node *doc, const char *text, size_t len, int format,
                         const char *file, const char *dir, const json_t *pinned,
                         const case_def *parent, case_def **out);

/* A definition read with this one: from a file (src) or written inline. */
static int add_subdef(ld *L, case_def *sub) {
  case_def *d = L->d;
  case_def **v = realloc(d->subdefs, (size_t)(d->nsubdefs + 1) * sizeof *v);
  if (!v) {
    def_free(sub);
    return oom(L);
  }
  d->subdefs = v;
  d->subdefs[d->nsubdefs++] = sub;
  d->subdefs_owned = 1;
  return CASE_OK;
}

static int parse_invokes(ld *L, int state, const node *n) {
  static const char *const keys[] = {"id", "idlocation", "type", "typeexpr", "src", "srcexpr",
                                     "workflow", "version", "namelist", "params", "autoforward",
                                     "finalize", "content", "contentexpr", "description",
                                     NULL};
  case_def *d = L->d;
  const node *one;
  const node *const *items;
  int rc;
  if (n->kind == N_SCALAR)
    return fail(L, CASE_INVALID, n->pos, "invoke is %s (expected a list of maps with workflow, "
                "src or content)", describe(n));
  int k = as_list(n, &items, &one);
  for (int i = 0; i < k; i++) {
    const node *it = items[i];
    if ((rc = want_kind(L, it, N_MAP, "invoke")) != CASE_OK) return rc;
    if ((rc = check_keys(L, it, "an invoke", keys)) != CASE_OK) return rc;
    if (grow((void **)&d->invokes, d->ninvokes, &L->cap_invokes, sizeof *d->invokes)) return oom(L);
    int iv = d->ninvokes++;
    cs_invoke *inv = &d->invokes[iv];
    inv->state = state;
    inv->pos = it->pos;
    if (int_push(&d->states[state].invokes, &d->states[state].ninvokes, iv)) return oom(L);
    if ((rc = one_of(L, it, "id", "idlocation", 0, "invoke")) != CASE_OK ||
        (rc = one_of(L, it, "type", "typeexpr", 0, "invoke")) != CASE_OK ||
        (rc = one_of(L, it, "src", "srcexpr", 0, "invoke")) != CASE_OK)
      return rc;
    const node *src = map_get(it, "src"), *sx = map_get(it, "srcexpr");
    const node *wf = map_get(it, "workflow"), *ct = map_get(it, "content");
    const node *cx = map_get(it, "contentexpr");
    if ((src != NULL) + (sx != NULL) + (wf != NULL) + (ct != NULL) + (cx != NULL) != 1)
      return fail(L, CASE_INVALID, it->pos, "invoke needs exactly one of workflow, src, srcexpr, "
                  "content and contentexpr (the definition the child case runs)");
    if (cx && (rc = make_lua(L, cx, 0, "contentexpr", &d->invokes[iv].contentexpr)) != CASE_OK)
      return rc;
    if ((rc = want_str(L, it, "id", &inv->id)) != CASE_OK ||
        (rc = want_str(L, it, "type", &inv->type)) != CASE_OK ||
        (rc = want_expr(L, it, "typeexpr", &inv->typeexpr)) != CASE_OK ||
        (rc = want_expr(L, it, "srcexpr", &inv->srcexpr)) != CASE_OK)
      return rc;
    const node *il = map_get(it, "idlocation");
    if (il && (rc = location_chunk(L, il, "idlocation", &inv->idlocation, &inv->idassign)) != CASE_OK)
      return rc;
    const node *af = map_get(it, "autoforward");
    if (af && (rc = want_bool(L, af, "autoforward", &inv->autoforward)) != CASE_OK) return rc;
    if ((rc = parse_names(L, it, &inv->names, &inv->nnames)) != CASE_OK) return rc;
    const node *fz = map_get(it, "finalize");
    if (fz && (rc = parse_block(L, fz, &inv->finalize, &inv->nfinalize)) != CASE_OK) return rc;
    inv = &d->invokes[iv];
    if (wf) {
      const char *w = NULL;
      if ((rc = want_ident(L, wf, "workflow", &w)) != CASE_OK) return rc;
      if (!(inv->workflow = xstrdup(w))) return oom(L);
      const node *ver = map_get(it, "version");
      if (ver) {
        long long v;
        if (ver->kind != N_SCALAR || scalar_type(ver) != V_INT || scalar_int(ver, &v) != 0 ||
            v < 1 || v > INT32_MAX)
          return fail(L, CASE_INVALID, ver->pos, "version is %s (expected an integer, 1 or "
                      "higher)", describe(ver));
        inv->version = (int)v;
      }
      continue;
    }
    if (map_get(it, "version"))
      return fail(L, CASE_INVALID, map_get(it, "version")->pos, "version goes with workflow");
    if (sx || cx) continue;
    case_def *sub = NULL;
    if (src) {
      if ((rc = dup_text(L, src, "src", &inv->src)) != CASE_OK) return rc;
      char *text = NULL;
      size_t len = 0;
      if ((rc = ld_resource(L, src, &text, &len)) != CASE_OK) return rc;
      /* the child document, relative to this one */
      const char *p = inv->src;
      if (strncmp(p, "file://", 7) == 0) p += 7;
      else if (strncmp(p, "file:", 5) == 0) p += 5;
      sbuf path;
      sbuf_init(&path);
      if (p[0] == '/' || !L->dir) sbuf_puts(&path, p);
      else sbuf_printf(&path, "%s/%s", L->dir, p);
      char *file = sbuf_take(&path);
      char *dir = file ? xstrdup(file) : NULL;
      if (dir) {
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else strcpy(dir, ".");
      }
      if (!file || !dir) rc = oom(L);
      else {
        size_t a = 0;
        while (a < len && (text[a] == ' ' || text[a] == '\n' || text[a] == '\r' ||
                           text[a] == '\t' || (unsigned char)text[a] == 0xEF ||
                           (unsigned char)text[a] == 0xBB || (unsigned char)text[a] == 0xBF))
          a++;
        int xml = a < len && text[a] == '<';
        rc = xml ? scxml_parse(L->e, text, len, file, L->dir ? dir : NULL, L->pinned, &sub)
                 : def_parse_pinned(L->e, text, len, file, L->dir ? dir : NULL, L->pinned, &sub);
        if (rc != CASE_OK) {
          /* the child's message names its own file; say who read it */
          char *msg = xstrdup(case_errmsg(L->e));
          rc = fail(L, rc, src->text_pos, "invoke src '%s': %s", inv->src, msg ? msg : "");
          free(msg);
        }
      }
      free(file);
      free(dir);
      free(text);
      if (rc != CASE_OK) return rc;
    } else {
      /* inline: a definition of its own, named after this state unless it says */
      if ((rc = want_kind(L, ct, N_MAP, "invoke content")) != CASE_OK) return rc;
      inv->inline_content = 1;
      rc = parse_tree_at(L->e, (node *)ct, L->text, L->len, L->format, L->file, L->dir,
                         L->pinned, d, &sub);
      if (rc != CASE_OK) return rc;
    }
    inv = &d->invokes[iv];
    if (!(inv->workflow = xstrdup(sub->id))) {
      def_free(sub);
      return oom(L);
    }
    inv->version = sub->version;
    if ((rc = add_subdef(L, sub)) != CASE_OK) return rc;
  }
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* Stage 3: reachability, dead ends, scripts                           */
/* ------------------------------------------------------------------ */

typedef struct reach {
  const case_def *d;
  char *reached, *expanded;
  int *jobs;   /* states to enter by default */
  int njobs, cap;
  int *fresh;  /* states reached whose transitions are not yet followed */
  int nfresh;  /* each state is added once: fresh has nstates slots */
} reach;

static int push_job(reach *r, int s) {
  if (r->expanded[s]) return 0;
  if (r->njobs == r->cap) {
    int cap = r->cap ? r->cap * 2 : 64;
    int *j = realloc(r->jobs, (size_t)cap * sizeof *j);
    if (!j) return -1;
    r->jobs = j;
    r->cap = cap;
  }
  r->jobs[r->njobs++] = s;
  return 0;
}

static void mark(reach *r, int s) {
  if (r->reached[s]) return;
  r->reached[s] = 1;
  r->fresh[r->nfresh++] = s;
}

/* Entering target t: t and its ancestors become active; other regions of
 * parallel ancestors are entered by default, and so is t itself. */
static int enter_target(reach *r, int t) {
  const case_def *d = r->d;
  for (int a = t; a >= 0; a = d->states[a].parent) {
    mark(r, a);
    int p = d->states[a].parent;
    if (p >= 0 && d->states[p].kind == CS_PARALLEL) {
      const cs_state *ps = &d->states[p];
      for (int k = 0; k < ps->nchildren; k++) {
        int c = ps->children[k];
        if (c != a && !is_history(&d->states[c]) && push_job(r, c)) return -1;
      }
    }
  }
  return push_job(r, t);
}

static int drain(reach *r) {
  const case_def *d = r->d;
  while (r->njobs > 0) {
    int s = r->jobs[--r->njobs];
    if (r->expanded[s]) continue;
    r->expanded[s] = 1;
    mark(r, s);
    const cs_state *st = &d->states[s];
    if (st->kind == CS_PARALLEL) {
      for (int k = 0; k < st->nchildren; k++)
        if (!is_history(&d->states[st->children[k]]) && push_job(r, st->children[k])) return -1;
    } else {
      for (int k = 0; k < st->ninitial; k++)
        if (enter_target(r, st->initial[k])) return -1;
    }
  }
  return 0;
}

/* Every state must be enterable from the initial configuration by some chain
 * of transitions (guards are not evaluated: any transition may be taken). */
static int check_reachable(ld *L) {
  const case_def *d = L->d;
  reach r;
  memset(&r, 0, sizeof r);
  r.d = d;
  r.reached = calloc((size_t)d->nstates, 1);
  r.expanded = calloc((size_t)d->nstates, 1);
  r.fresh = calloc((size_t)d->nstates, sizeof *r.fresh);
  int rc = CASE_OK, next = 0;
  if (!r.reached || !r.expanded || !r.fresh || push_job(&r, 0)) {
    rc = oom(L);
    goto out;
  }
  for (;;) {
    if (drain(&r)) {
      rc = oom(L);
      goto out;
    }
    if (next == r.nfresh) {
      /* A shallow history restores a child of its parent that was active
       * before, and enters that child's own initial states: every reached
       * child of a reached shallow history's parent is entered by default. */
      int more = 0;
      for (int h = 1; h < d->nstates; h++) {
        if (!r.reached[h] || d->states[h].kind != CS_HISTORY_SHALLOW) continue;
        const cs_state *ps = &d->states[d->states[h].parent];
        for (int k = 0; k < ps->nchildren; k++) {
          int c = ps->children[k];
          if (!r.reached[c] || r.expanded[c] || is_history(&d->states[c])) continue;
          if (push_job(&r, c)) {
            rc = oom(L);
            goto out;
          }
          more = 1;
        }
      }
      if (!more) break;
      continue;
    }
    const cs_state *st = &d->states[r.fresh[next++]];
    for (int k = 0; k < st->ntransitions; k++) {
      const cs_transition *t = &d->transitions[st->transitions[k]];
      for (int j = 0; j < t->ntargets; j++)
        if (enter_target(&r, t->targets[j])) {
          rc = oom(L);
          goto out;
        }
    }
  }
  /* Legal in SCXML, so a warning: a case never enters such a state. */
  for (int s = 1; s < d->nstates && rc == CASE_OK; s++) {
    const cs_state *st = &d->states[s];
    if (r.reached[s] || is_history(st)) continue;
    if (!r.reached[st->parent] && st->parent > 0) continue; /* the parent is reported */
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "state '%s' is unreachable (no initial, transition or history default "
                "leads into it)", st->id);
    char *text = sbuf_take(&b);
    rc = text ? add_warning(L, st->pos, text) : oom(L);
    free(text);
  }
out:
  free(r.reached);
  free(r.expanded);
  free(r.jobs);
  free(r.fresh);
  return rc;
}

/* A warning at a place in `file` (a lua: module, not the definition); the
 * same warning twice is kept once. */
static int add_warning_in(ld *L, const char *file, cs_pos pos, const char *text) {
  case_def *d = L->d;
  sbuf b;
  sbuf_init(&b);
  sbuf_printf(&b, "%s:%d:%d: %s", file, pos.line, pos.col, text);
  char *w = sbuf_take(&b);
  if (!w) return oom(L);
  for (int i = 0; i < d->nwarnings; i++)
    if (strcmp(d->warnings[i], w) == 0) {
      free(w);
      return CASE_OK;
    }
  char **v = realloc(d->warnings, (size_t)(d->nwarnings + 1) * sizeof *v);
  if (!v) {
    free(w);
    return oom(L);
  }
  d->warnings = v;
  d->warnings[d->nwarnings++] = w;
  return CASE_OK;
}

static int add_warning(ld *L, cs_pos pos, const char *text) {
  return add_warning_in(L, L->file, pos, text);
}

/* A deadline's on_expiry event is delivered to the case's configuration when
 * the term runs out, while the deadline's state is active: a transition of
 * that state, an enclosing one or one inside it must listen to it, or the
 * event does nothing (and the name is most likely a typo). */
static int check_expiry_handled(ld *L) {
  const case_def *d = L->d;
  for (int m = 0; m < d->ntimers; m++) {
    const cs_timer *tm = &d->timers[m];
    if (tm->kind != TIMER_DEADLINE || !tm->event) continue;
    int handled = 0, elsewhere = -1;
    for (int i = 0; i < d->ntransitions && !handled; i++) {
      const cs_transition *t = &d->transitions[i];
      int hit = 0;
      for (int k = 0; k < t->nevents && !hit; k++) hit = event_matches(t->events[k], tm->event);
      if (!hit) continue;
      if (t->source == tm->state || is_desc(d, tm->state, t->source) ||
          is_desc(d, t->source, tm->state))
        handled = 1;
      else if (elsewhere < 0)
        elsewhere = i;
    }
    if (handled) continue;
    const char *st = d->states[tm->state].id;
    if (elsewhere >= 0) {
      const cs_transition *t = &d->transitions[elsewhere];
      return fail(L, CASE_INVALID, tm->event_pos, "on_expiry '%s' of deadline '%s' is never "
                  "handled: the transition for it at %d:%d is on '%s', which is not '%s', an "
                  "enclosing state or one inside it (the event goes to the states active while "
                  "the term runs)", tm->event, tm->name, t->pos.line, t->pos.col,
                  d->states[t->source].id, st);
    }
    return fail(L, CASE_INVALID, tm->event_pos, "on_expiry '%s' of deadline '%s' is handled by "
                "no transition (expected an on: transition for '%s' on '%s', an enclosing state "
                "or one inside it; leave on_expiry out to only mark the case overdue)",
                tm->event, tm->name, tm->event, st);
  }
  return CASE_OK;
}

/* A transition is never taken when an earlier one of the same state takes
 * each of its events first without a guard and open to every role. */
static int warn_shadowed(ld *L) {
  const case_def *d = L->d;
  for (int s = 1; s < d->nstates; s++) {
    const cs_state *st = &d->states[s];
    for (int j = 1; j < st->ntransitions; j++) {
      const cs_transition *tj = &d->transitions[st->transitions[j]];
      if (tj->nevents == 0 || tj->timer >= 0) continue;
      for (int i = 0; i < j; i++) {
        const cs_transition *ti = &d->transitions[st->transitions[i]];
        if (ti->guard || ti->nroles > 0 || ti->nevents == 0 || ti->timer >= 0) continue;
        int all = 1;
        for (int b = 0; b < tj->nevents && all; b++) {
          int hit = 0;
          for (int a = 0; a < ti->nevents && !hit; a++)
            hit = event_matches(ti->events[a], tj->events[b]);
          all = hit;
        }
        if (!all) continue;
        sbuf m;
        sbuf_init(&m);
        sbuf_printf(&m, "this transition for '%s' in state '%s' is never taken: the one at "
                    "%d:%d takes the event first (it has no guard and is open to every role)",
                    tj->events[0], st->id, ti->pos.line, ti->pos.col);
        char *text = sbuf_take(&m);
        if (!text) return oom(L);
        int rc = add_warning(L, tj->pos, text);
        free(text);
        if (rc != CASE_OK) return rc;
        break;
      }
    }
  }
  return CASE_OK;
}

static int warn_dead_ends(ld *L) {
  const case_def *d = L->d;
  for (int s = 1; s < d->nstates; s++) {
    const cs_state *st = &d->states[s];
    if (st->kind != CS_ATOMIC) continue;
    int out = 0;
    for (int a = s; a > 0 && !out; a = d->states[a].parent) {
      const cs_state *as = &d->states[a];
      out = as->ntransitions > 0;
      for (int k = 0; k < as->ntimers && !out; k++) out = d->timers[as->timers[k]].event != NULL;
    }
    if (out) continue;
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "state '%s' has no way out: no transition, after or deadline with on_expiry "
                "on it or an enclosing state (add final: true if cases end here)", st->id);
    char *text = sbuf_take(&b);
    if (!text) return oom(L);
    int rc = add_warning(L, st->pos, text);
    free(text);
    if (rc != CASE_OK) return rc;
  }
  return CASE_OK;
}

/* The YAML position of byte `off` of a script's text: exact through the
 * scalar's map when it can be rebuilt, else its line start plus the column. */
static cs_pos script_byte_pos(const cs_script *sc, const cs_pos *map, size_t off) {
  if (map) return map[off];
  int line = 1;
  size_t start = 0;
  for (size_t i = 0; i < off; i++)
    if (sc->text[i] == '\n') line++, start = i + 1;
  cs_pos p = script_line_pos(sc, line);
  for (size_t i = start; i < off; i++)
    if (((unsigned char)sc->text[i] & 0xC0) != 0x80) p.col++;
  return p;
}

/* The declared names of a kind, comma-separated, for messages. */
static char *declared_list(const case_def *d, int params) {
  sbuf b;
  sbuf_init(&b);
  int n = params ? d->nparams : d->nfields;
  for (int i = 0; i < n && i < 12; i++)
    sbuf_printf(&b, "%s%s", i ? ", " : "", params ? d->params[i].name : d->fields[i].name);
  if (n > 12) sbuf_puts(&b, ", ...");
  if (!n) sbuf_puts(&b, "none");
  return sbuf_take(&b);
}

/* The declared name closest to `name` (a likely typo), or NULL. */
static const char *suggest_name(const case_def *d, int params, const char *name) {
  const char *best = NULL;
  size_t bestd = (size_t)-1, len = strlen(name);
  size_t maxd = len < 6 ? 2 : len / 3;
  int n = params ? d->nparams : d->nfields;
  for (int i = 0; i < n; i++) {
    const char *c = params ? d->params[i].name : d->fields[i].name;
    size_t k = edit_distance(name, c);
    if (k < bestd) bestd = k, best = c;
  }
  return best && bestd <= maxd ? best : NULL;
}

/*
 * What a compiled guard or action refers to (luascan.c): a case field or a
 * param that the definition does not declare fails every case that runs the
 * script, so it is an error at its position; an event field that does not
 * exist, or a global name nothing defines, is nil at run time: a warning.
 */
static int check_module_refs(ld *L, cs_script *sc, int is_guard);

static int check_refs(ld *L, cs_script *sc, const node *n, int is_guard) {
  if (sc->kind == SCRIPT_NAMED) return check_module_refs(L, sc, is_guard);
  if (sc->kind != SCRIPT_EXPR && sc->kind != SCRIPT_BLOCK) return CASE_OK;
  if (sc->error) return CASE_OK; /* it does not compile (errors: events): nothing to scan */
  const case_def *d = L->d;
  lscan_ref *refs = NULL;
  int nrefs = 0;
  int rc = lscan_refs(sc->text, strlen(sc->text), &refs, &nrefs);
  if (rc == CASE_NOMEM) return oom(L);
  if (rc != CASE_OK || nrefs == 0) {
    free(refs);
    return CASE_OK; /* it compiled, so a lexing difference is ours: no claims */
  }
  cs_pos *map = NULL;
  if ((rc = scalar_map(L, n, &map)) != CASE_OK) {
    free(refs);
    return rc;
  }
  const char *what = is_guard ? "guard" : "action";
  for (int i = 0; i < nrefs && rc == CASE_OK; i++) {
    const lscan_ref *r = &refs[i];
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(r->len < 100 ? r->len : 100), sc->text + r->off);
    cs_pos at = script_byte_pos(sc, map, r->off);
    if (r->kind == LSCAN_CASE || r->kind == LSCAN_PARAMS) {
      int params = r->kind == LSCAN_PARAMS;
      if ((params ? def_param_find(d, name) : def_field_find(d, name)) >= 0) continue;
      char *list = declared_list(d, params);
      const char *sug = suggest_name(d, params, name);
      if (!list) {
        rc = oom(L);
        break;
      }
      if (params)
        rc = fail(L, CASE_INVALID, at, "%s reads params.%s, which is not a declared param "
                  "(declared: %s%s%s%s; a location profile can only change a declared one)",
                  what, name, list, sug ? "; did you mean '" : "", sug ? sug : "",
                  sug ? "'?" : "");
      else
        rc = fail(L, CASE_INVALID, at, "%s %s case.%s, which is not a declared data field "
                  "(declared: %s%s%s%s)", what, r->write ? "assigns" : "reads", name, list,
                  sug ? "; did you mean '" : "", sug ? sug : "", sug ? "'?" : "");
      free(list);
    } else if (r->kind == LSCAN_EVENT) {
      static const char *const fields[] = {"name", "time", "role", "actor", "data", "type",
                                           "sendid", "origin", "origintype", "invokeid", "raw",
                                           NULL};
      int ok = 0;
      for (int k = 0; fields[k] && !ok; k++) ok = strcmp(fields[k], name) == 0;
      if (ok) continue;
      sbuf m;
      sbuf_init(&m);
      sbuf_printf(&m, "%s reads event.%s, which is always nil (an event has name, time, role, "
                  "actor and data, and SCXML's type, sendid, origin, origintype, invokeid and "
                  "raw; the payload is event.data.%s)", what, name, name);
      char *text = sbuf_take(&m);
      rc = text ? add_warning(L, at, text) : oom(L);
      free(text);
    } else if (d->globals) {
      continue; /* the globals datamodel: any global may be a variable a script makes */
    } else if (r->indexed && !r->write && !sbx_global_known(L->e->sandbox, d, name)) {
      /* nil.x fails every case; a profile can only add functions, not tables */
      rc = fail(L, CASE_INVALID, at, "%s indexes '%s', which is not a Lua or sandbox name or a "
                "function of the lua: modules (did you mean case, event or params?)", what,
                name);
    } else if (!r->write && !sbx_global_known(L->e->sandbox, d, name)) {
      sbuf m;
      sbuf_init(&m);
      sbuf_printf(&m, "%s reads '%s', which is not a Lua or sandbox name, a function of the "
                  "lua: modules or a local: it is nil unless a location profile defines a "
                  "function '%s'", what, name, name);
      char *text = sbuf_take(&m);
      rc = text ? add_warning(L, at, text) : oom(L);
      free(text);
    }
  }
  free(map);
  free(refs);
  return rc;
}

/*
 * The same check for a named guard or action that is a function of the lua:
 * modules: its body (and the module's functions it passes the case or the
 * params on to) is scanned (lscan_function_refs).  A `case.x` or `params.x`
 * that the definition does not declare fails every case that runs that line,
 * but a module may serve several definitions and take a branch by a param
 * (the asylum module reads version 1's fields only where params.pact is
 * false), so it is a warning at the name's place in the module, naming the
 * guard or action of the definition that calls it; an inline script's is an
 * error.  A function the scan does not find (made at run time, a method) is
 * not checked.
 */
static int check_module_refs(ld *L, cs_script *sc, int is_guard) {
  const case_def *d = L->d;
  if (!sc->text) return CASE_OK;
  for (int m = 0; m < d->nmodules; m++) {
    const char *src = d->module_src ? d->module_src[m] : NULL;
    if (!src) continue;
    lscan_ref *refs = NULL;
    int nrefs = 0, found = 0, rc = CASE_OK;
    if (!L->modscan[m]) {
      rc = lscan_module_open(src, d->module_len[m], &L->modscan[m]);
      if (rc == CASE_NOMEM) return oom(L);
      if (rc != CASE_OK) continue; /* it compiled, so a lexing difference is ours */
    }
    rc = lscan_module_refs(L->modscan[m], sc->text, &refs, &nrefs, &found);
    if (rc == CASE_NOMEM) return oom(L);
    if (rc != CASE_OK || !found) {
      free(refs);
      continue;
    }
    for (int i = 0; i < nrefs && rc == CASE_OK; i++) {
      const lscan_ref *r = &refs[i];
      if (r->kind != LSCAN_CASE && r->kind != LSCAN_PARAMS) continue;
      int params = r->kind == LSCAN_PARAMS;
      char name[128];
      snprintf(name, sizeof name, "%.*s", (int)(r->len < 100 ? r->len : 100), src + r->off);
      if ((params ? def_param_find(d, name) : def_field_find(d, name)) >= 0) continue;
      cs_pos at = {1, 1};
      for (size_t k = 0; k < r->off; k++) {
        if (src[k] == '\n') at.line++, at.col = 1;
        else at.col++;
      }
      char *list = declared_list(d, params);
      const char *sug = suggest_name(d, params, name);
      sbuf b;
      sbuf_init(&b);
      if (list)
        sbuf_printf(&b, "function %s (the %s at %s:%d:%d) %s %s.%s, which is not a declared %s "
                    "of %s version %d: a case that runs this line fails (declared: %s%s%s%s)",
                    sc->text, is_guard ? "guard" : "action", L->file, sc->pos.line,
                    sc->pos.col, params || !r->write ? "reads" : "assigns",
                    params ? "params" : "case", name, params ? "param" : "data field", d->id,
                    d->version, list, sug ? "; did you mean '" : "", sug ? sug : "",
                    sug ? "'?" : "");
      free(list);
      char *text = sbuf_take(&b);
      rc = text ? add_warning_in(L, d->modules[m], at, text) : oom(L);
      free(text);
    }
    free(refs);
    if (rc != CASE_OK) return rc;
    break; /* a name is defined by one module only */
  }
  return CASE_OK;
}

/* Compiles one Lua script.  A definition whose errors are events keeps a
 * script that does not compile, with its message: running it raises
 * error.execution (SCXML lets a document with a bad expression run until
 * the expression is evaluated); the load warns. */
static int compile_one(ld *L, cs_script *sc, int is_guard) {
  if (!sc || sc->kind == SCRIPT_NATIVE || sc->kind >= EXEC_RAISE) return CASE_OK;
  int rc = sbx_compile(L->e->sandbox, L->d, sc, is_guard);
  if (rc != CASE_SCRIPT || !L->d->errors_events || sc->kind == SCRIPT_NAMED) return rc;
  if (!(sc->error = xstrdup(case_errmsg(L->e)))) return oom(L);
  sbuf b;
  sbuf_init(&b);
  sbuf_printf(&b, "%s (with errors: events, evaluating it raises error.execution)",
              sc->error);
  char *w = sbuf_take(&b);
  if (!w) return oom(L);
  char **v = realloc(L->d->warnings, (size_t)(L->d->nwarnings + 1) * sizeof *v);
  if (!v) {
    free(w);
    return oom(L);
  }
  L->d->warnings = v;
  L->d->warnings[L->d->nwarnings++] = w; /* already "file:line:col: ..." */
  L->uses_exec = 1;
  eng_ok(L->e);
  return CASE_OK;
}

static int compile_list(ld *L, cs_script *v, int n, int is_guard);

static int compile_names(ld *L, cs_namevalue *v, int n) {
  for (int i = 0; i < n; i++) {
    int rc = compile_one(L, v[i].expr, 0);
    if (rc != CASE_OK) return rc;
  }
  return CASE_OK;
}

/* Inline content that is no Lua expression is its text, a string. */
static int compile_content(ld *L, cs_script **content, json_t *fallback) {
  if (!*content) return CASE_OK;
  if (!fallback) return compile_one(L, *content, 0);
  int rc = sbx_compile(L->e->sandbox, L->d, *content, 0);
  if (rc == CASE_SCRIPT) {
    eng_ok(L->e);
    cs_script *sc = *content;
    free(sc->text);
    free(sc);
    *content = NULL;
    return CASE_OK;
  }
  return rc;
}

static int compile_exec(ld *L, cs_script *sc) {
  cs_exec *x = sc->exec;
  int rc = CASE_OK;
  if (!x) return CASE_OK;
  if (sc->kind == EXEC_SEND || sc->kind == EXEC_CANCEL) L->uses_sends = 1;
  cs_script *one[] = {x->eventexpr, x->targetexpr, x->typeexpr, x->idexpr, x->idassign,
                      x->delayexpr, x->expr, x->assign, x->index_assign, x->array};
  for (size_t i = 0; rc == CASE_OK && i < sizeof one / sizeof one[0]; i++)
    rc = compile_one(L, one[i], 0);
  if (rc == CASE_OK) rc = compile_names(L, x->names, x->nnames);
  if (rc == CASE_OK) rc = compile_content(L, &x->content, x->content_value);
  if (rc == CASE_OK && x->content && x->content_value) {
    json_decref(x->content_value); /* the expression gives the value */
    x->content_value = NULL;
  }
  for (int i = 0; rc == CASE_OK && i < x->nbranches; i++) {
    if (x->conds && x->conds[i]) rc = compile_one(L, x->conds[i], 1);
    if (rc == CASE_OK) rc = compile_list(L, x->blocks[i], x->nblock[i], 0);
  }
  return rc;
}

static int compile_list(ld *L, cs_script *v, int n, int is_guard) {
  for (int i = 0; i < n; i++) {
    if (v[i].kind >= EXEC_RAISE) L->uses_exec = 1;
    int rc = v[i].kind >= EXEC_RAISE ? compile_exec(L, &v[i]) : compile_one(L, &v[i], is_guard);
    if (rc != CASE_OK) return rc;
  }
  return CASE_OK;
}

/* The one TIMER_SEND timer of a definition whose actions send or cancel. */
static int add_send_timer(ld *L) {
  case_def *d = L->d;
  if (grow((void **)&d->timers, d->ntimers, &L->cap_timers, sizeof *d->timers)) return oom(L);
  int t = d->ntimers++;
  memset(&d->timers[t], 0, sizeof d->timers[t]);
  d->timers[t].kind = TIMER_SEND;
  d->timers[t].state = 0; /* the root is never left: only <cancel> stops a send */
  d->timers[t].pos = d->states[0].pos;
  if (!(d->timers[t].name = xstrdup("send"))) return oom(L);
  d->send_timer = t;
  return CASE_OK;
}

static int compile_scripts(ld *L) {
  case_def *d = L->d;
  int rc;
  for (int i = 0; i < d->nstates; i++) {
    cs_state *s = &d->states[i];
    if ((rc = compile_list(L, s->onentry, s->nonentry, 0)) != CASE_OK ||
        (rc = compile_list(L, s->onexit, s->nonexit, 0)) != CASE_OK ||
        (rc = compile_list(L, s->initial_actions, s->ninitial_actions, 0)) != CASE_OK)
      return rc;
    if (s->donedata) {
      if ((rc = compile_names(L, s->donedata->names, s->donedata->nnames)) != CASE_OK) return rc;
      if ((rc = compile_content(L, &s->donedata->content, s->donedata->content_value)) != CASE_OK)
        return rc;
      if (s->donedata->content && s->donedata->content_value) {
        json_decref(s->donedata->content_value);
        s->donedata->content_value = NULL;
      }
    }
  }
  for (int i = 0; i < d->ntransitions; i++) {
    cs_transition *t = &d->transitions[i];
    if (t->guard && (rc = compile_list(L, t->guard, 1, 1)) != CASE_OK) return rc;
    if ((rc = compile_list(L, t->actions, t->nactions, 0)) != CASE_OK) return rc;
  }
  for (int i = 0; i < d->nfields; i++) {
    cs_field *f = &d->fields[i];
    if (!f->expr) continue;
    if (f->content || f->src) {
      /* content that is no Lua expression is its text, a string */
      json_t *text = json_string(f->expr->text);
      if (!text) return oom(L);
      cs_script *x = f->expr;
      rc = compile_content(L, &f->expr, text);
      if (rc == CASE_OK && !f->expr) {
        (void)x;
        json_decref(f->def);
        f->def = text;
        text = NULL;
      }
      json_decref(text);
      if (rc != CASE_OK) return rc;
      if (!f->def && !(f->def = json_null())) return oom(L);
    } else if ((rc = compile_one(L, f->expr, 0)) != CASE_OK) {
      return rc;
    }
  }
  if ((rc = compile_list(L, d->scripts, d->nscripts, 0)) != CASE_OK) return rc;
  for (int i = 0; i < d->ninvokes; i++) {
    cs_invoke *inv = &d->invokes[i];
    if ((rc = compile_one(L, inv->idassign, 0)) != CASE_OK ||
        (rc = compile_one(L, inv->typeexpr, 0)) != CASE_OK ||
        (rc = compile_one(L, inv->srcexpr, 0)) != CASE_OK ||
        (rc = compile_one(L, inv->contentexpr, 0)) != CASE_OK ||
        (rc = compile_names(L, inv->names, inv->nnames)) != CASE_OK ||
        (rc = compile_list(L, inv->finalize, inv->nfinalize, 0)) != CASE_OK)
      return rc;
  }
  /* All compile: now what they refer to, in document order. */
  if (d->nmodules > 0 && !(L->modscan = calloc((size_t)d->nmodules, sizeof *L->modscan)))
    return oom(L);
  for (int i = 0; i < L->nscripts && rc == CASE_OK; i++)
    rc = check_refs(L, L->scripts[i].s, L->scripts[i].n, L->scripts[i].is_guard);
  for (int m = 0; L->modscan && m < d->nmodules; m++) lscan_module_close(L->modscan[m]);
  free(L->modscan);
  L->modscan = NULL;
  if (rc != CASE_OK) return rc;
  if (L->uses_sends && d->send_timer < 0 && (rc = add_send_timer(L)) != CASE_OK) return rc;
  /* What the engine's plain paths need not look at (chart.c). */
  d->exec_content = L->uses_exec || d->errors_events;
  for (int i = 1; i < d->nstates; i++) {
    cs_state *s = &d->states[i];
    s->extras = d->late_binding || s->ninvokes > 0 ||
                (s->kind == CS_COMPOUND && s->ninitial_actions > 0);
  }
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* def_parse / def_free                                                */
/* ------------------------------------------------------------------ */

static int parse_settings(ld *L);

static int parse_top(ld *L, const char *dir) {
  static const char *const keys[] = {"workflow", "version", "description", "in_force_from",
                                     "clock", "calendar", "roles", "lua", "params", "data",
                                     "initial", "states", "report", "name", "errors",
                                     "datamodel", "binding", "script", "editor", NULL};
  case_def *d = L->d;
  const node *doc = L->doc;
  int rc = check_keys(L, doc, "the definition", keys);
  if (rc != CASE_OK) return rc;

  const node *wf = map_get(doc, "workflow");
  if (!wf && !L->default_id)
    return fail(L, CASE_INVALID, doc->pos, "missing workflow (expected workflow: <id>, the "
                "name of the process)");
  const char *id = L->default_id;
  if (wf && (rc = want_ident(L, wf, "workflow id", &id)) != CASE_OK) return rc;
  if (!(d->id = xstrdup(id))) return oom(L);

  const node *ver = map_get(doc, "version");
  if (!ver && L->parent) {
    d->version = L->parent->version;
  } else if (!ver) {
    return fail(L, CASE_INVALID, doc->pos, "missing version (expected version: 1 or higher)");
  }
  long long v = d->version;
  if (!ver) {
  } else if (ver->kind != N_SCALAR || scalar_type(ver) != V_INT)
    return fail(L, CASE_INVALID, ver->pos, "version is %s (expected an integer, 1 or higher)",
                describe(ver));
  if (ver && (scalar_int(ver, &v) != 0 || v < 1 || v > INT32_MAX))
    return fail(L, CASE_INVALID, ver->pos, "version %s is out of range (expected an integer "
                "from 1 to 2147483647)", ver->str);
  d->version = (int)v;

  const node *n;
  if ((n = map_get(doc, "description")) &&
      (rc = dup_text(L, n, "description", &d->description)) != CASE_OK)
    return rc;
  d->in_force_from = CAL_NO_DAY;
  if ((n = map_get(doc, "in_force_from"))) {
    const char *s = NULL;
    if ((rc = want_text(L, n, "in_force_from", &s)) != CASE_OK) return rc;
    if (cal_parse_date(s, &d->in_force_from) != 0)
      return fail(L, CASE_INVALID, n->text_pos, "in_force_from '%s' is not a date (expected "
                  "YYYY-MM-DD, the first day this version applies to new cases)", s);
    cal_format_date(d->in_force_from, d->in_force_from_text);
  }
  if ((n = map_get(doc, "clock"))) {
    const char *s = NULL;
    if ((rc = want_text(L, n, "clock", &s)) != CASE_OK) return rc;
    if (cal_clock_parse(s, &d->clock) != 0)
      return fail(L, CASE_INVALID, n->text_pos, "unknown clock '%s' (expected plain, atw, eu or "
                  "procedure)", s);
  }
  if ((n = map_get(doc, "calendar"))) {
    const char *s = NULL;
    if ((rc = want_text(L, n, "calendar", &s)) != CASE_OK) return rc;
    if (strcmp(s, "nl") != 0)
      return fail(L, CASE_INVALID, n->text_pos, "unknown calendar '%s' (expected nl)", s);
  }
  if ((rc = parse_settings(L)) != CASE_OK) return rc;
  if ((n = map_get(doc, "editor")) && (rc = yaml_to_json(L, n, &d->editor)) != CASE_OK) return rc;
  if ((n = map_get(doc, "roles")) && (rc = parse_roles(L, n)) != CASE_OK) return rc;
  if ((n = map_get(doc, "params")) && (rc = parse_params(L, n)) != CASE_OK) return rc;
  if ((n = map_get(doc, "data")) && (rc = parse_fields(L, n, 0)) != CASE_OK) return rc;
  if ((n = map_get(doc, "lua")) && (rc = parse_lua(L, n)) != CASE_OK) return rc;

  const node *states = map_get(doc, "states");
  if (!states)
    return fail(L, CASE_INVALID, doc->pos, "missing states (expected states: a map of the "
                "process's states)");
  if ((rc = want_kind(L, states, N_MAP, "states")) != CASE_OK) return rc;
  if (npairs(states) == 0)
    return fail(L, CASE_INVALID, states->pos, "states is empty (expected at least one state)");

  int root;
  if ((rc = new_state(L, &root)) != CASE_OK) return rc;
  d->states[root].kind = CS_COMPOUND;
  d->states[root].pos = doc->pos;
  if (!(d->states[root].id = xstrdup(""))) return oom(L);
  for (int k = 0; k < npairs(states); k++)
    if ((rc = add_state(L, pkey(states, k), pval(states, k), 0, 1)) != CASE_OK) return rc;
  for (int i = 0; i < d->nstates; i++)
    if ((rc = fill_state(L, i)) != CASE_OK) return rc;

  if ((n = map_get(doc, "script")) && (rc = make_actions(L, n, &d->scripts, &d->nscripts)) != CASE_OK)
    return rc;

  if ((rc = check_reachable(L)) != CASE_OK) return rc;
  if ((rc = check_expiry_handled(L)) != CASE_OK) return rc;
  if ((rc = warn_dead_ends(L)) != CASE_OK) return rc;
  if ((rc = warn_shadowed(L)) != CASE_OK) return rc;
  if ((n = map_get(doc, "report")) && (rc = parse_report(L, n)) != CASE_OK) return rc;
  if (n && (rc = yaml_to_json(L, n, &d->report_src)) != CASE_OK) return rc; /* for export */
  if ((rc = resolve_modules(L, dir)) != CASE_OK) return rc;
  if ((rc = sbx_load_modules(L->e->sandbox, d)) != CASE_OK) return rc;
  return compile_scripts(L);
}

/* name, errors, datamodel, binding: the SCXML settings. */
static int parse_settings(ld *L) {
  case_def *d = L->d;
  const node *doc = L->doc, *n;
  int rc;
  if ((n = map_get(doc, "name")) && (rc = dup_text(L, n, "name", &d->name)) != CASE_OK) return rc;
  if ((n = map_get(doc, "errors"))) {
    const char *s = NULL;
    if ((rc = want_text(L, n, "errors", &s)) != CASE_OK) return rc;
    if (strcmp(s, "events") == 0) d->errors_events = 1;
    else if (strcmp(s, "refuse") != 0)
      return fail(L, CASE_INVALID, n->text_pos, "unknown errors '%s' (expected refuse: a "
                  "failing script refuses the event, or events: it raises error.execution)", s);
  }
  if ((n = map_get(doc, "datamodel"))) {
    const char *s = NULL;
    if ((rc = want_text(L, n, "datamodel", &s)) != CASE_OK) return rc;
    if (strcmp(s, "globals") == 0) d->globals = 1;
    else if (strcmp(s, "case") != 0)
      return fail(L, CASE_INVALID, n->text_pos, "unknown datamodel '%s' (expected case: data "
                  "is case.<field>, or globals: data fields are Lua globals, as in SCXML)", s);
  }
  if ((n = map_get(doc, "binding"))) {
    const char *s = NULL;
    if ((rc = want_text(L, n, "binding", &s)) != CASE_OK) return rc;
    if (strcmp(s, "late") == 0) d->late_binding = 1;
    else if (strcmp(s, "early") != 0)
      return fail(L, CASE_INVALID, n->text_pos, "unknown binding '%s' (expected early or late)",
                  s);
  }
  return CASE_OK;
}

int def_parse(case_engine *e, const char *text, size_t len, const char *file, const char *dir,
              case_def **out) {
  return def_parse_pinned(e, text, len, file, dir, NULL, out);
}

/* The loader run shared by YAML text, a tree from another syntax and an
 * inline child definition (parent set: it gets its id and version from the
 * parent unless it says). */
static int build(case_engine *e, node *doc, const char *text, size_t len, int format,
                 const char *file, const char *dir, const json_t *modules, const case_def *parent,
                 const char *default_id, case_def **out) {
  *out = NULL;
  ld L;
  memset(&L, 0, sizeof L);
  L.e = e;
  L.file = file;
  L.text = text;
  L.len = len;
  L.pinned = modules;
  L.format = format;
  L.dir = dir;
  L.parent = parent;
  L.default_id = default_id;
  long long lim = e->limits[CASE_LIMIT_DEPTH];
  L.depth_cap = lim < (YAML_DEPTH_CAP - 16) / 2 ? (int)(2 * lim + 16) : YAML_DEPTH_CAP;

  case_def *d = calloc(1, sizeof *d);
  if (!d) return oom(&L);
  L.d = d;
  d->engine = e;
  d->functions_ref = -1;
  d->fields_ref = -1;
  d->send_timer = -1;
  d->clock = CLOCK_PLAIN;
  d->format = format;
  int rc = CASE_OK;
  d->file = xstrdup(file);
  d->dir = dir ? xstrdup(dir) : NULL;
  d->source = malloc(len + 1);
  if (!d->file || (dir && !d->dir) || !d->source) {
    rc = oom(&L);
  } else {
    memcpy(d->source, text, len);
    d->source[len] = '\0';
    d->source_len = len;
    if (sha256_hex(text, len, d->hash) != 0) rc = eng_err(e, CASE_NOMEM, "cannot hash %s", file);
  }
  L.doc = doc;
  if (rc == CASE_OK && !doc) rc = parse_yaml(&L);
  if (rc == CASE_OK && L.doc->kind != N_MAP)
    rc = fail(&L, CASE_INVALID, L.doc->pos, "the definition is %s (expected a map)",
              describe(L.doc));
  if (rc == CASE_OK) rc = parse_top(&L, dir);
  if (rc == CASE_OK) rc = model_finish(e, d);
  if (!parent) node_free(L.doc); /* an inline child's tree belongs to its parent's */
  free(L.snode);
  free(L.hslot);
  free(L.scripts);
  if (rc != CASE_OK) {
    def_free(d);
    return rc;
  }
  *out = d;
  return CASE_OK;
}

static int parse_tree_at(case_engine *e, node *doc, const char *text, size_t len, int format,
                         const char *file, const char *dir, const json_t *pinned,
                         const case_def *parent, case_def **out) {
  /* an inline child: named after its state unless it says */
  const cs_invoke *inv = &parent->invokes[parent->ninvokes - 1];
  sbuf b;
  sbuf_init(&b);
  sbuf_printf(&b, "%s_%s_%d", parent->id, parent->states[inv->state].id,
              parent->states[inv->state].ninvokes);
  char *id = sbuf_take(&b);
  if (!id) return eng_err(e, CASE_NOMEM, "out of memory");
  case_def *d = NULL;
  int rc = build(e, doc, text, len, format, file, dir, pinned, parent, id, &d);
  free(id);
  if (rc != CASE_OK) return rc;
  /* Its own source, so that a store can pin and reload it alone: the
   * definition as SCXML (the same model, whatever the parent was written in). */
  char *x = NULL;
  rc = case_def_export_scxml(d, &x);
  if (rc != CASE_OK) {
    def_free(d);
    return rc;
  }
  free(d->source);
  d->source = x;
  d->source_len = strlen(x);
  d->format = DEF_FORMAT_SCXML;
  if (sha256_hex(d->source, d->source_len, d->hash) != 0) {
    def_free(d);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  *out = d;
  return CASE_OK;
}

int def_parse_pinned(case_engine *e, const char *text, size_t len, const char *file,
                     const char *dir, const json_t *modules, case_def **out) {
  if (out) *out = NULL;
  if (!e || !out) return CASE_MISUSE;
  if (!text) return eng_err(e, CASE_MISUSE, "def_parse: text is NULL");
  if (!file) file = "<string>";
  /* A stored definition may be SCXML: its first character says (YAML cannot
   * start a definition with '<'). */
  size_t a = 0;
  if (len >= 3 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB &&
      (unsigned char)text[2] == 0xBF)
    a = 3;
  while (a < len && (text[a] == ' ' || text[a] == '\t' || text[a] == '\n' || text[a] == '\r')) a++;
  if (a < len && text[a] == '<') return scxml_parse(e, text, len, file, dir, modules, out);
  return build(e, NULL, text, len, DEF_FORMAT_YAML, file, dir, modules, NULL, NULL, out);
}

int def_parse_tree(case_engine *e, def_node *doc, const char *text, size_t len, int format,
                   const char *file, const char *dir, const json_t *pinned, case_def **out) {
  if (out) *out = NULL;
  if (!e || !out || !doc) {
    node_free(doc);
    return CASE_MISUSE;
  }
  return build(e, doc, text ? text : "", text ? len : 0, format, file ? file : "<string>", dir,
               pinned, NULL, NULL, out);
}

/* ---- the tree, for other syntaxes ---- */

static node *new_node(nkind kind, cs_pos pos) {
  node *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  n->kind = kind;
  n->pos = n->text_pos = pos;
  n->style = -1; /* not from YAML: no scalar map, lines are counted from pos */
  return n;
}

def_node *def_node_map(cs_pos pos) { return new_node(N_MAP, pos); }
def_node *def_node_seq(cs_pos pos) { return new_node(N_SEQ, pos); }

def_node *def_node_str(const char *s, size_t len, cs_pos pos) {
  node *n = new_node(N_SCALAR, pos);
  if (!n) return NULL;
  if (!(n->str = xstrndup(s, len))) {
    free(n);
    return NULL;
  }
  n->len = len;
  return n;
}

def_node *def_node_plain(const char *s, cs_pos pos) {
  node *n = def_node_str(s, strlen(s), pos);
  if (n) n->plain = 1;
  return n;
}

void def_node_script(def_node *n) {
  if (n) n->script = 1;
}

int def_node_add(def_node *parent, const char *key, cs_pos keypos, def_node *val) {
  if (!val) return -1;
  if (key) {
    node *k = def_node_str(key, strlen(key), keypos);
    if (!k || node_push(parent, k)) {
      node_free(k);
      node_free(val);
      return -1;
    }
  }
  if (node_push(parent, val)) {
    if (key) node_free(parent->kids[--parent->n]);
    node_free(val);
    return -1;
  }
  return 0;
}

def_node *def_node_get(def_node *map, const char *key) { return (def_node *)map_get(map, key); }

void def_node_free(def_node *n) { node_free(n); }

static void scripts_free(sbx *s, cs_script *v, int n);
static void exec_free(sbx *s, cs_exec *x);

static void script_free(sbx *s, cs_script *sc) {
  if (s && sc->kind != SCRIPT_NATIVE && sc->kind < EXEC_RAISE) sbx_unref(s, sc->ref);
  free(sc->text);
  free(sc->lines);
  free(sc->error);
  free(sc->src);
  exec_free(s, sc->exec);
}

static void scripts_free(sbx *s, cs_script *v, int n) {
  if (!v) return;
  for (int i = 0; i < n; i++) script_free(s, &v[i]);
  free(v);
}

/* A script of its own allocation (an expression inside an element). */
static void one_free(sbx *s, cs_script *sc) {
  if (!sc) return;
  script_free(s, sc);
  free(sc);
}

static void names_free(sbx *s, cs_namevalue *v, int n) {
  for (int i = 0; i < n; i++) {
    free(v[i].name);
    one_free(s, v[i].expr);
  }
  free(v);
}

static void exec_free(sbx *s, cs_exec *x) {
  if (!x) return;
  free(x->event);
  one_free(s, x->eventexpr);
  free(x->target);
  one_free(s, x->targetexpr);
  free(x->type);
  one_free(s, x->typeexpr);
  free(x->id);
  one_free(s, x->idexpr);
  free(x->idlocation);
  one_free(s, x->idassign);
  free(x->delay);
  if (x->dur) free(x->dur->param);
  free(x->dur);
  one_free(s, x->delayexpr);
  names_free(s, x->names, x->nnames);
  one_free(s, x->content);
  free(x->content_text);
  json_decref(x->content_value);
  free(x->label);
  one_free(s, x->expr);
  free(x->location);
  one_free(s, x->assign);
  free(x->index);
  one_free(s, x->index_assign);
  one_free(s, x->array);
  for (int i = 0; i < x->nbranches; i++) {
    if (x->conds) one_free(s, x->conds[i]);
    if (x->blocks) scripts_free(s, x->blocks[i], x->nblock[i]);
  }
  free(x->conds);
  free(x->blocks);
  free(x->nblock);
  free(x);
}

void def_free(case_def *d) {
  if (!d) return;
  for (int i = 0; i < d->nraised; i++) free(d->raised[i]);
  free(d->raised);
  sbx *s = d->engine ? d->engine->sandbox : NULL;
  for (int i = 0; i < d->nstates; i++) {
    cs_state *st = &d->states[i];
    free(st->id);
    free(st->children);
    free(st->initial);
    scripts_free(s, st->initial_actions, st->ninitial_actions);
    free(st->transitions);
    scripts_free(s, st->onentry, st->nonentry);
    scripts_free(s, st->onexit, st->nonexit);
    free(st->timers);
    free(st->invokes);
    json_decref(st->editor);
    exec_free(s, st->donedata);
    free(st->description);
  }
  free(d->states);
  for (int i = 0; i < d->ntransitions; i++) {
    cs_transition *t = &d->transitions[i];
    for (int k = 0; k < t->nevents; k++) free(t->events[k]);
    free(t->events);
    scripts_free(s, t->guard, t->guard ? 1 : 0);
    scripts_free(s, t->actions, t->nactions);
    free(t->targets);
    free(t->roles);
    json_decref(t->editor);
    free(t->description);
  }
  free(d->transitions);
  for (int i = 0; i < d->ntimers; i++) {
    cs_timer *t = &d->timers[i];
    free(t->name);
    free(t->dur.param);
    free(t->event);
    free(t->source);
    free(t->description);
  }
  free(d->timers);
  for (int i = 0; i < d->nfields; i++) {
    free(d->fields[i].name);
    json_decref(d->fields[i].def);
    free(d->fields[i].description);
    one_free(s, d->fields[i].expr);
    free(d->fields[i].src);
    free(d->fields[i].content);
  }
  free(d->fields);
  for (int i = 0; i < d->ninvokes; i++) {
    cs_invoke *inv = &d->invokes[i];
    free(inv->id);
    free(inv->idlocation);
    one_free(s, inv->idassign);
    free(inv->type);
    one_free(s, inv->typeexpr);
    free(inv->src);
    one_free(s, inv->srcexpr);
    one_free(s, inv->contentexpr);
    free(inv->workflow);
    names_free(s, inv->names, inv->nnames);
    scripts_free(s, inv->finalize, inv->nfinalize);
  }
  free(d->invokes);
  scripts_free(s, d->scripts, d->nscripts);
  for (int i = 0; i < d->nres; i++) {
    free(d->res_names[i]);
    free(d->res_src[i]);
  }
  free(d->res_names);
  free(d->res_src);
  free(d->res_len);
  if (d->subdefs_owned)
    for (int i = 0; i < d->nsubdefs; i++) def_free(d->subdefs[i]);
  free(d->subdefs);
  free(d->name);
  for (int i = 0; i < d->nparams; i++) {
    free(d->params[i].name);
    json_decref(d->params[i].value);
    free(d->params[i].source);
    free(d->params[i].description);
  }
  free(d->params);
  for (int i = 0; i < d->nroles; i++) free(d->roles[i]);
  free(d->roles);
  for (int i = 0; i < d->nmodules; i++) {
    free(d->modules[i]);
    if (d->module_names) free(d->module_names[i]);
    if (d->module_src) free(d->module_src[i]);
  }
  free(d->modules);
  free(d->module_names);
  free(d->module_src);
  free(d->module_len);
  if (s && d->functions_ref >= 0) sbx_unref(s, d->functions_ref);
  if (s && d->fields_ref >= 0) sbx_unref(s, d->fields_ref);
  for (int i = 0; i < d->nwarnings; i++) free(d->warnings[i]);
  free(d->warnings);
  free(d->id);
  free(d->file);
  free(d->dir);
  free(d->source);
  free(d->description);
  json_decref(d->report);
  json_decref(d->report_src);
  json_decref(d->editor);
  free(d);
}
