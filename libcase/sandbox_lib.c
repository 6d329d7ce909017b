/*
 * sandbox_lib.c — Lua's C library as scripts get it: every function whose
 * work grows with its input is charged that work before it runs (sbx_charge),
 * so the instruction budget bounds the whole call, not only the VM
 * instructions the count hook sees; table.sort is replaced by a stable merge
 * sort (Lua's quicksort picks a pivot from the clock when a partition is
 * unbalanced, which makes the order of equal elements differ between runs).
 *
 * The costs (docs/lua-sandbox.md, "Limits", says the same for process
 * designers), in instructions:
 *
 *   string.find/match/gmatch/gsub   the matcher's worst case for this pattern
 *                         on this subject (pattern_cost below); a find that is
 *                         a plain search (the plain flag, or a pattern with no
 *                         special characters) costs (n - m + 1) * m / 64
 *   string.rep            result bytes / 64 (an empty result is immediate)
 *   string.sub            result bytes / 64
 *   string.upper/lower/reverse, pack/unpack   input bytes / 64
 *   string.byte, utf8.codepoint   one per value returned
 *   utf8.len, utf8.offset, tonumber(string)   bytes scanned / 16
 *   table.concat, table.unpack, table.move    one per element
 *   table.insert(t, pos, v), table.remove(t, pos)   one per element moved
 *   table.sort            n * ceil(log2 n) + n (the comparator's own
 *                         instructions count as well)
 */
#include "internal.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <string.h>

enum {
  K_REP, K_MOVE, K_BYTES, K_SUB, K_BYTE, K_UTF8LEN, K_UTF8CP, K_UTF8OFF, K_CONCAT, K_INSERT,
  K_REMOVE, K_UNPACK, K_TONUMBER, K_PACK
};

/* Lua's string.sub rule for a position relative to a string of length len. */
static lua_Integer pos_rel(lua_Integer pos, size_t len) {
  if (pos >= 0) return pos;
  if ((size_t)-pos > len) return 0;
  return (lua_Integer)len + pos + 1;
}

/* Bytes i..j of a string of length len, as string.sub counts them. */
static double span(lua_Integer i, lua_Integer j, size_t len) {
  i = pos_rel(i, len);
  j = pos_rel(j, len);
  if (i < 1) i = 1;
  if (j > (lua_Integer)len) j = (lua_Integer)len;
  return i > j ? 0.0 : (double)j - (double)i + 1.0;
}

static double len_of(lua_State *L, int idx) {
  return (double)luaL_len(L, idx);
}

/* upvalue 1: the library's function; upvalue 2: what to charge (K_*) */
static int l_charged(lua_State *L) {
  int kind = (int)lua_tointeger(L, lua_upvalueindex(2));
  double cost = 0;
  size_t l = 0, lsep = 0;
  switch (kind) {
  case K_REP: {
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || l + lsep == 0) { /* Lua would loop n times copying nothing */
      lua_pushliteral(L, "");
      return 1;
    }
    cost = (double)n * (double)(l + lsep) / 64.0;
    break;
  }
  case K_MOVE: {
    lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
    if (e >= f) cost = (double)e - (double)f + 1.0;
    break;
  }
  case K_BYTES:
    for (int i = 1; i <= lua_gettop(L); i++)
      if (lua_type(L, i) == LUA_TSTRING) cost += (double)lua_rawlen(L, i) / 64.0;
    break;
  case K_SUB:
    luaL_checklstring(L, 1, &l);
    cost = span(luaL_optinteger(L, 2, 1), luaL_optinteger(L, 3, -1), l) / 64.0;
    break;
  case K_BYTE: {
    luaL_checklstring(L, 1, &l);
    lua_Integer i = luaL_optinteger(L, 2, 1);
    cost = span(i, luaL_optinteger(L, 3, i), l);
    break;
  }
  case K_UTF8LEN:
    luaL_checklstring(L, 1, &l);
    cost = span(luaL_optinteger(L, 2, 1), luaL_optinteger(L, 3, -1), l) / 16.0;
    break;
  case K_UTF8CP: {
    luaL_checklstring(L, 1, &l);
    lua_Integer i = luaL_optinteger(L, 2, 1);
    cost = span(i, luaL_optinteger(L, 3, i), l);
    break;
  }
  case K_UTF8OFF:
    luaL_checklstring(L, 1, &l);
    cost = (double)l / 16.0;
    break;
  case K_CONCAT: {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    double j = lua_isnoneornil(L, 4) ? len_of(L, 1) : (double)luaL_checkinteger(L, 4);
    if (j >= (double)i) cost = j - (double)i + 1.0;
    break;
  }
  case K_INSERT:
  case K_REMOVE: {
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = lua_gettop(L);
    if ((kind == K_INSERT && n == 3) || (kind == K_REMOVE && n >= 2)) {
      double size = len_of(L, 1);
      double pos = (double)luaL_checkinteger(L, 2);
      if (size >= pos) cost = size - pos + 1.0;
    }
    cost += 1.0;
    break;
  }
  case K_UNPACK: {
    lua_Integer i = luaL_optinteger(L, 2, 1);
    double j = lua_isnoneornil(L, 3) ? len_of(L, 1) : (double)luaL_checkinteger(L, 3);
    if (j >= (double)i) cost = j - (double)i + 1.0;
    break;
  }
  case K_TONUMBER:
    if (lua_type(L, 1) == LUA_TSTRING) cost = (double)lua_rawlen(L, 1) / 16.0;
    break;
  case K_PACK:
    for (int i = 1; i <= lua_gettop(L); i++)
      if (lua_type(L, i) == LUA_TSTRING) cost += (double)lua_rawlen(L, i) / 64.0;
    break;
  }
  sbx_charge(L, cost);
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

/* ------------------------------------------------------------------ */
/* Patterns                                                            */
/* ------------------------------------------------------------------ */

/* Does byte c belong to the class %<cl>?  (The same ctype functions as
 * Lua's matcher, so the same locale.) */
static int esc_has(int c, int cl) {
  int r;
  switch (tolower(cl)) {
  case 'a': r = isalpha(c); break;
  case 'c': r = iscntrl(c); break;
  case 'd': r = isdigit(c); break;
  case 'g': r = isgraph(c); break;
  case 'l': r = islower(c); break;
  case 'p': r = ispunct(c); break;
  case 's': r = isspace(c); break;
  case 'u': r = isupper(c); break;
  case 'w': r = isalnum(c); break;
  case 'x': r = isxdigit(c); break;
  default: return cl == c;
  }
  if (isupper(cl)) r = !r;
  return r != 0;
}

/* A set "[...]" from p (at '[') to ec (at its ']'). */
static int set_has(int c, const char *p, const char *ec) {
  int sig = 1;
  p++;
  if (*p == '^') {
    sig = 0;
    p++;
  }
  while (p < ec) {
    if (*p == '%' && p + 1 < ec) {
      p++;
      if (esc_has(c, (unsigned char)*p)) return sig;
      p++;
    } else if (p + 2 < ec && p[1] == '-') {
      if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2]) return sig;
      p += 3;
    } else {
      if ((unsigned char)*p == c) return sig;
      p++;
    }
  }
  return !sig;
}

typedef struct pitem {
  char kind;  /* 's' single-character class, 'b' %b, 'f' %f, 'r' back-reference, '$' end */
  char quant; /* '*', '+', '-', '?' or 0 */
  const char *cls, *end; /* the class text of an 's' item */
} pitem;

static int item_has(const pitem *it, int c) {
  const char *p = it->cls;
  switch (*p) {
  case '.': return 1;
  case '%': return esc_has(c, (unsigned char)p[1]);
  case '[': return set_has(c, p, it->end - 1);
  default: return (unsigned char)*p == c;
  }
}

/* The longest run of subject bytes in the item's class (the most one
 * quantified item can ever expand to). */
static double longest_run(const pitem *it, const char *s, size_t n) {
  if (it->cls[0] == '.') return (double)n;
  size_t best = 0, cur = 0;
  for (size_t i = 0; i < n; i++) {
    if (item_has(it, (unsigned char)s[i])) {
      if (++cur > best) best = cur;
    } else {
      cur = 0;
    }
  }
  return (double)best;
}

static int disjoint(const pitem *a, const pitem *b) {
  for (int c = 0; c < 256; c++)
    if (item_has(a, c) && item_has(b, c)) return 0;
  return 1;
}

/* Splits a pattern into items; returns their number (-2 if there are more
 * than `max`).  A malformed item (Lua raises when its matcher reaches it, which
 * may be after all the backtracking the items before it cost) ends the list,
 * with *malformed set. */
static int parse_pattern(const char *p, size_t plen, int gmatch, pitem *v, int max,
                         int *anchored, int *malformed) {
  size_t i = 0;
  int n = 0;
  *anchored = 0;
  *malformed = 0;
  if (!gmatch && plen && p[0] == '^') {
    *anchored = 1;
    i = 1;
  }
  while (i < plen) {
    if (n >= max) return -2;
    pitem it = {'s', 0, p + i, NULL};
    char c = p[i];
    if (c == '(') {
      i += (i + 1 < plen && p[i + 1] == ')') ? 2 : 1;
      continue;
    }
    if (c == ')') {
      i++;
      continue;
    }
    if (c == '$' && i + 1 == plen) {
      it.kind = '$';
      v[n++] = it;
      i++;
      continue;
    }
    size_t e;
    if (c == '%') {
      if (i + 1 >= plen) goto bad;
      char d = p[i + 1];
      if (d == 'b') {
        if (i + 3 >= plen) goto bad;
        it.kind = 'b';
        v[n++] = it;
        i += 4;
        continue;
      }
      if (d == 'f') {
        i += 2;
        if (i >= plen || p[i] != '[') goto bad;
        it.kind = 'f';
        /* skip the set as below */
      } else if (d >= '0' && d <= '9') {
        it.kind = 'r';
        v[n++] = it;
        i += 2;
        continue;
      } else {
        e = i + 2;
        goto quant;
      }
    }
    if (p[i] == '[') {
      size_t j = i + 1;
      if (j < plen && p[j] == '^') j++;
      do { /* the first character of a set is always part of it */
        if (j >= plen) goto bad;
        if (p[j++] == '%' && j < plen) j++;
      } while (j >= plen || p[j] != ']');
      e = j + 1;
      if (it.kind == 'f') {
        v[n++] = it;
        i = e;
        continue;
      }
      it.cls = p + i;
    } else {
      e = i + 1;
    }
  quant:
    it.end = p + e;
    if (e < plen && (p[e] == '*' || p[e] == '+' || p[e] == '-' || p[e] == '?')) {
      it.quant = p[e];
      e++;
    }
    v[n++] = it;
    i = e;
  }
  return n;
bad:
  *malformed = 1;
  return n;
}

/*
 * The most steps Lua's matcher can take for pattern p over a subject s of n
 * bytes, counted from the last item back: reaching the end costs 1; a plain
 * item 1 plus the rest; `?` tries the rest twice; `*`, `+` and `-` try the
 * rest after each of at most r+1 expansions, r the longest run of subject
 * bytes in the item's class (when the next item is a character the class
 * cannot match, only one expansion goes on: r+1 plus the rest); %b and a
 * back-reference scan at most n bytes once.  An unanchored search tries every
 * one of the n+1 starts; a pattern that is one item (a run such as %s+ or
 * [^,]+) costs two steps a byte at most, whatever the starts.
 */
static double pattern_cost(lua_State *L, const char *s, size_t n, const char *p, size_t plen,
                           int gmatch) {
  double dn = (double)n + 1.0;
  int max = plen > 4096 ? 4096 : (int)plen + 1;
  pitem *v = lua_newuserdatauv(L, (size_t)max * sizeof *v, 0);
  int anchored, malformed;
  int k = parse_pattern(p, plen, gmatch, v, max, &anchored, &malformed);
  if (k < 0) {
    lua_pop(L, 1);
    return dn * (double)plen * dn; /* a huge pattern: its worst case, roughly */
  }
  if (malformed) {
    if (k >= max) k = max - 1;
    v[k].kind = '$'; /* where Lua raises: the end of the search, at a cost of 1 */
    v[k].quant = 0;
    k++;
  }
  double scan = 0; /* our own scans of the subject */
  double rest = 1.0;
  int items = 0, runs = 0;
  for (int i = k - 1; i >= 0; i--) {
    const pitem *it = &v[i];
    if (it->kind != '$') items++;
    if (it->kind == 's') runs++;
    double c;
    switch (it->kind) {
    case '$': c = 1.0; break;
    case 'b': case 'r': c = dn + rest; break;
    case 'f': c = 1.0 + rest; break;
    default:
      if (!it->quant) {
        c = 1.0 + rest;
      } else if (it->quant == '?') {
        c = 1.0 + 2.0 * rest;
      } else {
        double r = longest_run(it, s, n) + 1.0;
        scan += (double)n / 64.0;
        const pitem *next = i + 1 < k ? &v[i + 1] : NULL;
        if (next && next->kind == 's' && (!next->quant || next->quant == '+') &&
            r * rest > 4096.0 && disjoint(it, next))
          c = r + rest;
        else
          c = r * rest;
      }
      break;
    }
    if (c > 1e30) c = 1e30;
    rest = c;
  }
  lua_pop(L, 1);
  double total;
  if (items == 1 && runs == 1 && !anchored) total = 2.0 * dn;
  else total = anchored ? rest : dn * rest;
  return total + scan;
}

/* The characters that make a pattern more than a plain search (lstrlib). */
static int has_specials(const char *p, size_t l) {
  for (size_t i = 0; i < l; i++)
    if (strchr("^$*+?.([%-", p[i])) return 1;
  return 0;
}

/* string.find/match/gmatch/gsub.  upvalue 1: the library's function;
 * upvalue 2: 0 find, 1 match, 2 gmatch, 3 gsub. */
static int l_pattern(lua_State *L) {
  size_t len, plen;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *p = luaL_checklstring(L, 2, &plen);
  int which = (int)lua_tointeger(L, lua_upvalueindex(2));
  double cost;
  if (which == 0 && (lua_toboolean(L, 4) || !has_specials(p, plen)))
    cost = plen > len ? 1.0 : ((double)(len - plen) + 1.0) * ((double)plen + 1.0) / 64.0;
  else
    cost = pattern_cost(L, s, len, p, plen, which == 2);
  sbx_charge(L, cost);
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

/* ------------------------------------------------------------------ */
/* table.sort: a stable merge sort                                     */
/* ------------------------------------------------------------------ */

/* Is the value at a before the one at b?  (comparator at index 2, or <) */
static int before(lua_State *L, int has_cmp, int a, int b) {
  if (!has_cmp) return lua_compare(L, a, b, LUA_OPLT);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, a);
  lua_pushvalue(L, b);
  lua_call(L, 2, 1);
  int r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

static int l_sort(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  if (n < 2) return 0;
  luaL_argcheck(L, n < INT_MAX, 1, "array too big");
  int has_cmp = !lua_isnoneornil(L, 2);
  if (has_cmp) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  sbx_charge(L, (double)n * ceil(log2((double)n)) + (double)n);
  luaL_checkstack(L, 8, "sort");
  lua_createtable(L, (int)n, 0); /* 3: elements */
  lua_createtable(L, (int)n, 0); /* 4: merge buffer */
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 1, i);
    lua_rawseti(L, 3, i);
  }
  int src = 3, dst = 4;
  for (lua_Integer w = 1; w < n; w *= 2) {
    for (lua_Integer lo = 1; lo <= n; lo += 2 * w) {
      lua_Integer mid = lo + w > n + 1 ? n + 1 : lo + w;
      lua_Integer hi = lo + 2 * w > n + 1 ? n + 1 : lo + 2 * w;
      lua_Integer i = lo, j = mid;
      for (lua_Integer k = lo; k < hi; k++) {
        int take_left;
        if (i >= mid) take_left = 0;
        else if (j >= hi) take_left = 1;
        else {
          lua_rawgeti(L, src, j);
          lua_rawgeti(L, src, i);
          int top = lua_gettop(L); /* right only when strictly before left */
          take_left = !before(L, has_cmp, top - 1, top);
          lua_pop(L, 2);
        }
        lua_rawgeti(L, src, take_left ? i++ : j++);
        lua_rawseti(L, dst, k);
      }
    }
    int t = src;
    src = dst;
    dst = t;
  }
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, src, i);
    lua_seti(L, 1, i);
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Installing                                                          */
/* ------------------------------------------------------------------ */

static void wrap(lua_State *L, int lib, const char *name, lua_CFunction f, int kind) {
  lua_getfield(L, lib, name);
  lua_pushinteger(L, kind);
  lua_pushcclosure(L, f, 2);
  lua_setfield(L, lib, name);
}

void sbx_lib_install(lua_State *L, int G) {
  G = lua_absindex(L, G);
  lua_getfield(L, G, LUA_STRLIBNAME);
  int str = lua_gettop(L);
  wrap(L, str, "rep", l_charged, K_REP);
  wrap(L, str, "sub", l_charged, K_SUB);
  wrap(L, str, "byte", l_charged, K_BYTE);
  static const char *const bytes[] = {"upper", "lower", "reverse", NULL};
  for (int i = 0; bytes[i]; i++) wrap(L, str, bytes[i], l_charged, K_BYTES);
  static const char *const packs[] = {"pack", "unpack", "packsize", NULL};
  for (int i = 0; packs[i]; i++) wrap(L, str, packs[i], l_charged, K_PACK);
  static const char *const patfns[] = {"find", "match", "gmatch", "gsub", NULL};
  for (int i = 0; patfns[i]; i++) wrap(L, str, patfns[i], l_pattern, i);
  lua_pop(L, 1);

  lua_getfield(L, G, LUA_TABLIBNAME);
  int tab = lua_gettop(L);
  wrap(L, tab, "move", l_charged, K_MOVE);
  wrap(L, tab, "concat", l_charged, K_CONCAT);
  wrap(L, tab, "insert", l_charged, K_INSERT);
  wrap(L, tab, "remove", l_charged, K_REMOVE);
  wrap(L, tab, "unpack", l_charged, K_UNPACK);
  lua_pushcfunction(L, l_sort);
  lua_setfield(L, tab, "sort");
  lua_pop(L, 1);

  lua_getfield(L, G, LUA_UTF8LIBNAME);
  int u = lua_gettop(L);
  wrap(L, u, "len", l_charged, K_UTF8LEN);
  wrap(L, u, "codepoint", l_charged, K_UTF8CP);
  wrap(L, u, "offset", l_charged, K_UTF8OFF);
  lua_pop(L, 1);

  wrap(L, G, "tonumber", l_charged, K_TONUMBER);
}
