/*
 * scalarmap.c — where each byte of a YAML scalar's value comes from (smap_*).
 *
 * A guard or action is the value of a YAML scalar, and Lua reports its errors by
 * line of that value.  For a literal block (`|`) value line n is source line n
 * after the indicator, but the other styles fold and escape: in a double-quoted
 * scalar `\n` starts a new value line on the same source line, and in plain,
 * quoted and folded (`>`) scalars a single line break becomes a space.  libyaml
 * gives the start and end marks of the scalar; from the raw text between them
 * this module rebuilds the value as YAML 1.1 does, recording the source
 * position (1-based line and column, columns in characters as libyaml counts
 * them) of every value byte.  The rebuilt value is compared with libyaml's: if
 * they differ (a corner of the spec not handled here) no map is returned and
 * the caller falls back to counting lines.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct walk {
  const char *t; /* the whole source */
  size_t len;
  size_t i;      /* current byte */
  int line, col; /* its position, 1-based */
  char *out;     /* value bytes rebuilt */
  cs_pos *pos;   /* their positions */
  size_t n, cap;
  int failed;
} walk;

static int is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

/* Advances one byte, keeping line and column (a column per character). */
static void step(walk *w) {
  if (w->i >= w->len) return;
  unsigned char c = (unsigned char)w->t[w->i++];
  if (c == '\n') {
    w->line++;
    w->col = 1;
  } else if (c == '\r') {
    if (w->i < w->len && w->t[w->i] == '\n') w->i++;
    w->line++;
    w->col = 1;
  } else if (!is_cont(c)) {
    w->col++;
  }
}

static void emit(walk *w, char c, int line, int col) {
  if (w->failed) return;
  if (w->n == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 64;
    char *o = realloc(w->out, cap);
    if (o) w->out = o;
    cs_pos *p = realloc(w->pos, cap * sizeof *p);
    if (p) w->pos = p;
    if (!o || !p) {
      w->failed = 1;
      return;
    }
    w->cap = cap;
  }
  w->out[w->n] = c;
  w->pos[w->n].line = line;
  w->pos[w->n].col = col;
  w->n++;
}

/* Emits the UTF-8 bytes of code point u, all at one position. */
static void emit_utf8(walk *w, unsigned long u, int line, int col) {
  if (u < 0x80) {
    emit(w, (char)u, line, col);
  } else if (u < 0x800) {
    emit(w, (char)(0xC0 | (u >> 6)), line, col);
    emit(w, (char)(0x80 | (u & 0x3F)), line, col);
  } else if (u < 0x10000) {
    emit(w, (char)(0xE0 | (u >> 12)), line, col);
    emit(w, (char)(0x80 | ((u >> 6) & 0x3F)), line, col);
    emit(w, (char)(0x80 | (u & 0x3F)), line, col);
  } else {
    emit(w, (char)(0xF0 | (u >> 18)), line, col);
    emit(w, (char)(0x80 | ((u >> 12) & 0x3F)), line, col);
    emit(w, (char)(0x80 | ((u >> 6) & 0x3F)), line, col);
    emit(w, (char)(0x80 | (u & 0x3F)), line, col);
  }
}

static int at_break(const walk *w) {
  return w->i < w->len && (w->t[w->i] == '\n' || w->t[w->i] == '\r');
}
static int at_blank(const walk *w) {
  return w->i < w->len && (w->t[w->i] == ' ' || w->t[w->i] == '\t');
}

/* Byte offset of (0-based line, 0-based column in characters). */
static size_t offset_of(const char *t, size_t len, size_t line, size_t col) {
  size_t i = 0, l = 0;
  while (i < len && l < line) {
    if (t[i] == '\n') l++;
    else if (t[i] == '\r' && !(i + 1 < len && t[i + 1] == '\n')) l++;
    i++;
  }
  size_t c = 0;
  while (i < len && c < col) {
    i++;
    while (i < len && is_cont((unsigned char)t[i])) i++;
    c++;
  }
  return i;
}

/*
 * The line breaks between two stretches of text in a flow scalar (plain or
 * quoted): at a break, trailing blanks were already dropped; skip the break,
 * count the empty lines after it, skip the next line's leading blanks.  One
 * break becomes a space, k > 0 empty lines become k newlines; each newline is
 * placed on the empty line it stands for (the last on the line after it).
 */
static void fold_flow(walk *w, size_t end) {
  int bl = w->line, bc = w->col; /* where the break is */
  step(w);
  int empty = 0, eline[64];
  for (;;) {
    while (w->i < end && at_blank(w)) step(w);
    if (w->i < end && at_break(w)) {
      if (empty < 64) eline[empty] = w->line;
      empty++;
      step(w);
      continue;
    }
    break;
  }
  if (empty == 0) {
    emit(w, ' ', bl, bc);
    return;
  }
  for (int k = 0; k < empty; k++) {
    /* the newline that ends value line k+1 belongs where that line ends;
     * what matters is where the next value line starts (the next byte). */
    emit(w, '\n', k < 64 ? eline[k] : bl, 1);
  }
}

static unsigned long hexval(walk *w, int digits, size_t end, int *ok) {
  unsigned long v = 0;
  for (int k = 0; k < digits; k++) {
    if (w->i >= end) {
      *ok = 0;
      return 0;
    }
    char c = w->t[w->i];
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (d < 0) {
      *ok = 0;
      return 0;
    }
    v = v * 16 + (unsigned long)d;
    step(w);
  }
  return v;
}

/* Plain (quote 0), single-quoted ('\'') or double-quoted ('"') scalar from w->i
 * (after the opening quote) to `end` (exclusive; the closing quote excluded). */
static void walk_flow(walk *w, size_t end, char quote) {
  while (w->i < end && !w->failed) {
    /* trailing blanks before a break are dropped */
    if (at_blank(w)) {
      size_t j = w->i;
      while (j < end && (w->t[j] == ' ' || w->t[j] == '\t')) j++;
      if (j < end && (w->t[j] == '\n' || w->t[j] == '\r')) {
        while (w->i < j) step(w);
        continue;
      }
      if (j >= end && quote == 0) { /* a plain scalar's end is never blank */
        while (w->i < j) step(w);
        continue;
      }
      emit(w, w->t[w->i], w->line, w->col);
      step(w);
      continue;
    }
    if (at_break(w)) {
      fold_flow(w, end);
      continue;
    }
    char c = w->t[w->i];
    int line = w->line, col = w->col;
    if (quote == '\'' && c == '\'' && w->i + 1 < end && w->t[w->i + 1] == '\'') {
      emit(w, '\'', line, col);
      step(w);
      step(w);
      continue;
    }
    if (quote == '"' && c == '\\') {
      step(w);
      if (w->i >= end) {
        w->failed = 1;
        return;
      }
      char x = w->t[w->i];
      if (x == '\n' || x == '\r') { /* escaped line break: joins the lines; */
        step(w);                       /* empty lines after it stay newlines */
        for (;;) {
          while (w->i < end && at_blank(w)) step(w);
          if (!(w->i < end && at_break(w))) break;
          emit(w, '\n', w->line, w->col);
          step(w);
        }
        continue;
      }
      step(w);
      int ok = 1;
      switch (x) {
      case '0': emit(w, '\0', line, col); break;
      case 'a': emit(w, '\a', line, col); break;
      case 'b': emit(w, '\b', line, col); break;
      case 't': case '\t': emit(w, '\t', line, col); break;
      case 'n': emit(w, '\n', line, col); break;
      case 'v': emit(w, '\v', line, col); break;
      case 'f': emit(w, '\f', line, col); break;
      case 'r': emit(w, '\r', line, col); break;
      case 'e': emit(w, '\x1b', line, col); break;
      case ' ': emit(w, ' ', line, col); break;
      case '"': emit(w, '"', line, col); break;
      case '/': emit(w, '/', line, col); break;
      case '\'': emit(w, '\'', line, col); break;
      case '\\': emit(w, '\\', line, col); break;
      case 'N': emit_utf8(w, 0x85, line, col); break;
      case '_': emit_utf8(w, 0xA0, line, col); break;
      case 'L': emit_utf8(w, 0x2028, line, col); break;
      case 'P': emit_utf8(w, 0x2029, line, col); break;
      case 'x': emit_utf8(w, hexval(w, 2, end, &ok), line, col); break;
      case 'u': emit_utf8(w, hexval(w, 4, end, &ok), line, col); break;
      case 'U': emit_utf8(w, hexval(w, 8, end, &ok), line, col); break;
      default: ok = 0; break;
      }
      if (!ok) w->failed = 1;
      continue;
    }
    emit(w, c, line, col);
    step(w);
  }
}

/* Block scalars: the lines after the indicator line, up to `end`. */
static void walk_block(walk *w, size_t end, int folded) {
  /* the indicator line */
  while (w->i < end && !at_break(w)) step(w);
  if (w->i < end) step(w);
  /* the indentation: of the first non-empty line */
  size_t j = w->i;
  int indent = 0;
  for (;;) {
    int k = 0;
    while (j + (size_t)k < end && w->t[j + (size_t)k] == ' ') k++;
    size_t e = j + (size_t)k;
    if (e < end && (w->t[e] == '\n' || w->t[e] == '\r')) {
      if (k > indent) indent = k;
      j = e + 1 + (w->t[e] == '\r' && e + 1 < end && w->t[e + 1] == '\n');
      continue;
    }
    if (k > indent) indent = k;
    break;
  }
  /* Each line: up to `indent` spaces of indentation, then content to the break. */
  int prev = -1;      /* kind of the previous non-empty line: 0 normal, 1 more indented */
  int pending = 0;    /* line breaks since the previous non-empty line */
  int pline[256];     /* lines of those breaks' empty lines */
  int bline = 0, bcol = 0;
  while (w->i < end && !w->failed) {
    int k = 0;
    while (k < indent && w->i < end && w->t[w->i] == ' ') step(w), k++;
    if (w->i >= end) break;
    if (at_break(w)) { /* an empty line */
      if (pending < 256) pline[pending] = w->line;
      pending++;
      if (!folded) emit(w, '\n', w->line, w->col);
      step(w);
      continue;
    }
    int kind = at_blank(w) ? 1 : 0;
    if (folded && prev >= 0) {
      /* the break that ended the previous line, and the empty lines */
      if (pending == 0 && prev == 0 && kind == 0) {
        emit(w, ' ', bline, bcol);
      } else {
        int nl = pending + ((prev == 1 || kind == 1) ? 1 : 0);
        if (pending == 0) nl = 1;
        for (int q = 0; q < nl; q++)
          emit(w, '\n', q < pending && q < 256 ? pline[q] : w->line, 1);
      }
    } else if (folded) {
      for (int q = 0; q < pending; q++) emit(w, '\n', q < 256 ? pline[q] : w->line, 1);
    }
    pending = 0;
    while (w->i < end && !at_break(w)) {
      emit(w, w->t[w->i], w->line, w->col);
      step(w);
    }
    bline = w->line;
    bcol = w->col;
    if (!folded && w->i < end) emit(w, '\n', w->line, w->col);
    if (w->i < end) step(w);
    prev = kind;
  }
  if (folded && prev >= 0) emit(w, '\n', bline, bcol); /* the final break (clip chomping) */
}

int smap_build(const char *text, size_t len, int style, int line0, int col0, int end_line0,
               int end_col0, const char *value, size_t vlen, cs_pos **out) {
  *out = NULL;
  if (!text || line0 < 0 || col0 < 0 || end_line0 < 0 || end_col0 < 0) return CASE_INVALID;
  walk w;
  memset(&w, 0, sizeof w);
  w.t = text;
  w.len = len;
  w.i = offset_of(text, len, (size_t)line0, (size_t)col0);
  w.line = line0 + 1;
  w.col = col0 + 1;
  size_t end = offset_of(text, len, (size_t)end_line0, (size_t)end_col0);
  if (end > len || end < w.i) return CASE_INVALID;
  switch (style) {
  case SMAP_PLAIN:
    walk_flow(&w, end, 0);
    break;
  case SMAP_SINGLE:
  case SMAP_DOUBLE:
    if (end <= w.i + 1) break;
    step(&w); /* the opening quote */
    walk_flow(&w, end - 1, style == SMAP_SINGLE ? '\'' : '"');
    break;
  case SMAP_LITERAL:
  case SMAP_FOLDED:
    walk_block(&w, end, style == SMAP_FOLDED);
    break;
  default:
    w.failed = 1;
  }
  /* Block scalars: chomping decides the trailing breaks; compare without them. */
  size_t n = w.n;
  if (!w.failed && (style == SMAP_LITERAL || style == SMAP_FOLDED)) {
    size_t m = vlen;
    while (n > 0 && w.out[n - 1] == '\n') n--;
    while (m > 0 && value[m - 1] == '\n') m--;
    if (n != m || (n && memcmp(w.out, value, n) != 0)) w.failed = 1;
  } else if (!w.failed) {
    if (w.n != vlen || (vlen && memcmp(w.out, value, vlen) != 0)) w.failed = 1;
    n = vlen;
  }
  if (w.failed || vlen + 1 > ((size_t)-1) / sizeof(cs_pos)) {
    free(w.out);
    free(w.pos);
    return CASE_INVALID; /* not rebuilt (or out of memory): the caller counts lines */
  }
  cs_pos *p = malloc((vlen + 1) * sizeof *p);
  if (!p) {
    free(w.out);
    free(w.pos);
    return CASE_NOMEM;
  }
  cs_pos last = {w.line, w.col};
  for (size_t i = 0; i < vlen; i++) p[i] = i < n ? w.pos[i] : (n ? w.pos[n - 1] : last);
  p[vlen] = last;
  free(w.out);
  free(w.pos);
  *out = p;
  return CASE_OK;
}

int smap_line_starts(const char *value, size_t vlen, const cs_pos *map, cs_pos first,
                     cs_pos **out, int *nout) {
  *out = NULL;
  *nout = 0;
  int n = 1;
  for (size_t i = 0; i < vlen; i++) {
    if (value[i] == '\n' || (value[i] == '\r' && !(i + 1 < vlen && value[i + 1] == '\n'))) n++;
  }
  cs_pos *v = malloc((size_t)n * sizeof *v);
  if (!v) return CASE_NOMEM;
  v[0] = map ? map[0] : first;
  if (vlen == 0 || !map) v[0] = first;
  int k = 1;
  for (size_t i = 0; i < vlen && k < n; i++) {
    if (value[i] == '\n' || (value[i] == '\r' && !(i + 1 < vlen && value[i + 1] == '\n'))) {
      if (map) {
        v[k] = map[i + 1];
      } else {
        v[k].line = first.line + k;
        v[k].col = first.col;
      }
      k++;
    }
  }
  *out = v;
  *nout = n;
  return CASE_OK;
}

cs_pos script_line_pos(const cs_script *s, int lua_line) {
  if (!s->lines || s->nlines <= 0) { /* one YAML line per line of the text */
    int n = 1;
    for (const char *q = s->text; q && *q; q++) n += *q == '\n';
    if (lua_line > n) lua_line = n;
    cs_pos p = s->pos;
    if (lua_line > 1) p.line += lua_line - 1;
    return p;
  }
  if (lua_line < 1) lua_line = 1;
  if (lua_line > s->nlines) lua_line = s->nlines;
  return s->lines[lua_line - 1];
}
