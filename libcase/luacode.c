/*
 * luacode.c — reading the bytecode that Lua 5.4's lua_dump() writes, to learn
 * what a function can do without running it (lc_*).
 *
 * The sandbox uses it for two questions:
 *
 *  - Which upvalues of a function can its code (or the code of a function
 *    nested in it) assign?  A function kept between evaluations (a module
 *    function, a location profile's function, a compiled guard or action) must
 *    not assign an upvalue that outlives the call: that would be state one
 *    case leaves behind for the next.  Assigning an upvalue is one instruction,
 *    OP_SETUPVAL, so the answer is exact, not a guess.
 *  - Which event names does a function pass literally to the global raise()?
 *    (`raise('x')` compiles to GETTABUP _ENV "raise" followed by LOADK "x".)
 *
 * The format is the one of ldump.c in Lua 5.4: a header, then the main
 * function; each function is its source, lines, arity, code, constants,
 * upvalue descriptors, nested functions and debug information.  Sizes are
 * written 7 bits a byte, most significant first, the last byte marked with
 * 0x80.  Only Lua 5.4's opcode numbers are known here; the sandbox checks them
 * against the linked library once (sbx_open) before trusting an answer.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Lua 5.4 (lopcodes.h): the opcodes used here and the instruction layout. */
#define OP_LOADK 3
#define OP_SETUPVAL 10
#define OP_GETTABUP 11
#define ABSLINEINFO (-0x80)
#define GET_OP(i) ((int)((i) & 0x7F))
#define GET_A(i) ((int)(((i) >> 7) & 0xFF))
#define GET_B(i) ((int)(((i) >> 16) & 0xFF))
#define GET_C(i) ((int)(((i) >> 24) & 0xFF))
#define GET_BX(i) ((int)((i) >> 15))

/* Constant tags (lobject.h: makevariant) */
#define K_NIL 0x00
#define K_FALSE 0x01
#define K_TRUE 0x11
#define K_INT 0x03
#define K_FLT 0x13
#define K_SHRSTR 0x04
#define K_LNGSTR 0x14

typedef struct rd {
  const unsigned char *p, *end;
  int bad;
  lc_report *out;
  int depth;
} rd;

typedef struct kstr {
  const char *s; /* NULL: not a string */
  size_t len;
} kstr;

static void need(rd *r, size_t n) {
  if (r->bad || (size_t)(r->end - r->p) < n) {
    r->bad = 1;
    r->p = r->end;
  }
}

static int rd_byte(rd *r) {
  need(r, 1);
  if (r->bad) return 0;
  return *r->p++;
}

static size_t rd_size(rd *r) {
  size_t x = 0;
  int b;
  do {
    need(r, 1);
    if (r->bad) return 0;
    b = *r->p++;
    if (x > ((size_t)-1 >> 8)) {
      r->bad = 1;
      return 0;
    }
    x = (x << 7) | (size_t)(b & 0x7f);
  } while (!(b & 0x80));
  return x;
}

static int rd_int(rd *r) {
  size_t x = rd_size(r);
  if (x > 0x7fffffff) r->bad = 1;
  return r->bad ? 0 : (int)x;
}

/* A string: its bytes stay in the buffer.  *len 0 and NULL for "no string". */
static const char *rd_str(rd *r, size_t *len) {
  size_t n = rd_size(r);
  *len = 0;
  if (r->bad || n == 0) return NULL;
  n--;
  need(r, n);
  if (r->bad) return NULL;
  const char *s = (const char *)r->p;
  r->p += n;
  *len = n;
  return s;
}

static void skip(rd *r, size_t n) {
  need(r, n);
  if (!r->bad) r->p += n;
}

static int add_raised(lc_report *o, const char *s, size_t len) {
  for (int i = 0; i < o->nraised; i++)
    if (strlen(o->raised[i]) == len && !memcmp(o->raised[i], s, len)) return 0;
  char **v = realloc(o->raised, (size_t)(o->nraised + 1) * sizeof *v);
  if (!v) return -1;
  o->raised = v;
  v[o->nraised] = xstrndup(s, len);
  if (!v[o->nraised]) return -1;
  o->nraised++;
  return 0;
}

/* The line of instruction pc (ldebug.c: luaG_getfuncline). */
static int line_of(int pc, int linedefined, const signed char *li, int nli, const int *abs_pc,
                   const int *abs_line, int nabs) {
  if (!li || pc >= nli) return 0;
  int base = linedefined, basepc = -1;
  for (int i = 0; i < nabs; i++) {
    if (abs_pc[i] > pc) break;
    base = abs_line[i];
    basepc = abs_pc[i];
  }
  while (++basepc <= pc) {
    if (li[basepc] == ABSLINEINFO) return base; /* not expected: abs entries cover these */
    base += li[basepc];
  }
  return base;
}

/* One function.  `root` maps the parent's upvalues to the top function's (-1: a
 * local of some function in between, made afresh by each of its calls); NULL
 * for the top function itself. */
static void rd_function(rd *r, const int *parent_root, int parent_nup, int top) {
  if (++r->depth > 250) {
    r->bad = 1;
    return;
  }
  size_t len;
  rd_str(r, &len); /* source */
  int linedefined = rd_int(r);
  rd_int(r); /* lastlinedefined */
  rd_byte(r);
  rd_byte(r);
  rd_byte(r);
  int ncode = rd_int(r);
  need(r, (size_t)ncode * 4);
  if (r->bad) return;
  const unsigned char *code = r->p;
  r->p += (size_t)ncode * 4;

  int nk = rd_int(r);
  kstr *k = r->bad ? NULL : calloc((size_t)(nk ? nk : 1), sizeof *k);
  if (!k) {
    r->bad = 1;
    return;
  }
  for (int i = 0; i < nk && !r->bad; i++) {
    switch (rd_byte(r)) {
    case K_NIL: case K_FALSE: case K_TRUE: break;
    case K_INT: case K_FLT: skip(r, 8); break;
    case K_SHRSTR: case K_LNGSTR: k[i].s = rd_str(r, &k[i].len); break;
    default: r->bad = 1; break;
    }
  }

  int nup = rd_int(r);
  int *root = r->bad ? NULL : malloc((size_t)(nup ? nup : 1) * sizeof *root);
  if (!root) r->bad = 1;
  for (int i = 0; i < nup && !r->bad; i++) {
    int instack = rd_byte(r), idx = rd_byte(r);
    rd_byte(r); /* kind */
    if (top) root[i] = i;
    else if (instack) root[i] = -1;
    else root[i] = parent_root && idx < parent_nup ? parent_root[idx] : -1;
  }
  if (top && !r->bad) {
    r->out->nupvalues = nup;
    r->out->assigned = calloc((size_t)(nup ? nup : 1), sizeof *r->out->assigned);
    r->out->names = calloc((size_t)(nup ? nup : 1), sizeof *r->out->names);
    if (!r->out->assigned || !r->out->names) r->bad = 1;
  }

  int nprotos = rd_int(r);
  for (int i = 0; i < nprotos && !r->bad; i++) rd_function(r, root, nup, 0);

  /* Debug information: lines, locals, upvalue names. */
  int nli = rd_int(r);
  need(r, (size_t)nli);
  const signed char *li = r->bad ? NULL : (const signed char *)r->p;
  if (!r->bad) r->p += nli;
  int nabs = rd_int(r);
  int *abs_pc = r->bad ? NULL : malloc((size_t)(nabs ? nabs : 1) * sizeof *abs_pc);
  int *abs_line = r->bad ? NULL : malloc((size_t)(nabs ? nabs : 1) * sizeof *abs_line);
  if (!abs_pc || !abs_line) r->bad = 1;
  for (int i = 0; i < nabs && !r->bad; i++) {
    abs_pc[i] = rd_int(r);
    abs_line[i] = rd_int(r);
  }
  int nloc = rd_int(r);
  for (int i = 0; i < nloc && !r->bad; i++) {
    rd_str(r, &len);
    rd_int(r);
    rd_int(r);
  }
  int nnames = rd_int(r);
  const char **names = r->bad ? NULL : calloc((size_t)(nnames ? nnames : 1), sizeof *names);
  size_t *nlen = r->bad ? NULL : calloc((size_t)(nnames ? nnames : 1), sizeof *nlen);
  if (!names || !nlen) r->bad = 1;
  for (int i = 0; i < nnames && !r->bad; i++) names[i] = rd_str(r, &nlen[i]);
  if (top && !r->bad) {
    for (int i = 0; i < nup && i < nnames; i++)
      if (names[i]) {
        r->out->names[i] = xstrndup(names[i], nlen[i]);
        if (!r->out->names[i]) r->bad = 1;
      }
  }

  /* The code. */
  for (int pc = 0; pc < ncode && !r->bad; pc++) {
    uint32_t ins;
    memcpy(&ins, code + (size_t)pc * 4, 4);
    int op = GET_OP(ins);
    if (op == OP_SETUPVAL) {
      int b = GET_B(ins);
      if (b >= nup) {
        r->bad = 1;
        break;
      }
      if (root[b] >= 0 && !r->out->assigned[root[b]]) {
        int line = line_of(pc, linedefined, li, nli, abs_pc, abs_line, nabs);
        r->out->assigned[root[b]] = line > 0 ? line : -1;
      }
    } else if (op == OP_GETTABUP && pc + 1 < ncode) {
      int b = GET_B(ins), c = GET_C(ins), a = GET_A(ins);
      uint32_t next;
      memcpy(&next, code + (size_t)(pc + 1) * 4, 4);
      if (b < nnames && names[b] && nlen[b] == 4 && !memcmp(names[b], "_ENV", 4) && c < nk &&
          k[c].s && k[c].len == 5 && !memcmp(k[c].s, "raise", 5) && GET_OP(next) == OP_LOADK &&
          GET_A(next) == a + 1 && GET_BX(next) < nk && k[GET_BX(next)].s) {
        if (add_raised(r->out, k[GET_BX(next)].s, k[GET_BX(next)].len) != 0) r->bad = 1;
      }
    }
  }
  free(k);
  free(root);
  free(abs_pc);
  free(abs_line);
  free(names);
  free(nlen);
  r->depth--;
}

int lc_analyse(const void *buf, size_t len, lc_report *out) {
  memset(out, 0, sizeof *out);
  static const unsigned char head[] = {0x1b, 'L', 'u', 'a', 0x54, 0x00,
                                       0x19, 0x93, '\r', '\n', 0x1a, '\n', 4, 8, 8};
  rd r = {buf, (const unsigned char *)buf + len, 0, out, 0};
  need(&r, sizeof head + 16 + 1);
  if (r.bad || memcmp(r.p, head, sizeof head)) return -1;
  r.p += sizeof head;
  /* LUAC_INT (0x5678) and LUAC_NUM (370.5), in this machine's byte order */
  int64_t i;
  double d;
  memcpy(&i, r.p, 8);
  memcpy(&d, r.p + 8, 8);
  if (i != 0x5678 || d != 370.5) return -1;
  r.p += 16;
  rd_byte(&r); /* number of upvalues of the main function */
  rd_function(&r, NULL, 0, 1);
  if (r.bad) {
    lc_report_free(out);
    return -1;
  }
  return 0;
}

void lc_report_free(lc_report *o) {
  if (!o) return;
  for (int i = 0; o->names && i < o->nupvalues; i++) free(o->names[i]);
  free(o->names);
  free(o->assigned);
  for (int i = 0; i < o->nraised; i++) free(o->raised[i]);
  free(o->raised);
  memset(o, 0, sizeof *o);
}
