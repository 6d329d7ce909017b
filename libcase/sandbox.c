/*
 * sandbox.c — the Lua sandbox: modules, profiles, compile, guard/action calls.
 *
 * One lua_State per engine.  Only base, string, table, math and utf8 are
 * opened (luaL_requiref, never luaL_openlibs); user code is loaded as text
 * only (mode "t").  All scripts of all definitions share one environment
 * table that scripts cannot change; per-call values are set into it raw.
 *
 * What a script sees (docs/lua-sandbox.md says the same for process designers):
 *
 *   case      the case data.  case.x reads field x of the working data (JSON
 *             converted to Lua: objects -> tables, arrays -> sequences,
 *             null -> nil, integers -> integers, reals -> floats).  Reading an
 *             undeclared field is an error.  Actions may assign declared fields
 *             (type-checked, converted back to JSON); a table read from `case`
 *             in an action and changed in place is written back when the
 *             action ends.  Guards may not assign.
 *   event     read-only: name, data (the payload, converted), time, role, actor.
 *   params    read-only: the definition's params, overridden by the case's
 *             location profile.  Reading an unknown param is an error.
 *   now       the event time, integer seconds UTC: the only clock.
 *   today     the Europe/Amsterdam date of `now`, "YYYY-MM-DD".
 *   raise(name [, payload])   actions only: an internal event.
 *   emit(name [, payload])    actions only: a notification for the host.
 *   module functions          every function of the definition's `lua:`
 *             modules, as a global; a location profile's functions shadow
 *             same-named module functions.  A named guard or action is called
 *             as fn(case, event, params); a guard's result is its truthiness.
 *   Lua       assert error getmetatable ipairs pairs pcall rawequal rawget
 *             rawlen select setmetatable tonumber tostring type xpcall
 *             _VERSION and read-only string, table, math, utf8.
 *
 * Not there (reading the name raises "'x' is not available in the sandbox"):
 * dofile loadfile load require print collectgarbage rawset next io os debug
 * package coroutine, string.dump, math.random, math.randomseed.  `pairs`
 * visits keys in sorted order (numbers ascending, then strings bytewise, then
 * false, true) because Lua seeds its string hash randomly; tostring() of a
 * table or function gives no address, and string.format refuses %p, for the
 * same reason.  setmetatable refuses __gc and __mode (the garbage collector's
 * timing is not deterministic).  Assigning a global is an error.
 *
 * Limits per call: an instruction budget (count hook, re-armed with count 1
 * once tripped so a pcall in the script cannot swallow it) and a cap on the
 * growth of the Lua heap during the call (the lua_Alloc counts bytes).
 *
 * Every call into Lua goes through lua_pcall of a C function; C code that
 * owns memory (JSON values under construction) calls no Lua function that
 * can raise.
 */
#include "internal.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 200        /* nesting of tables converted to JSON */
#define EVENT_DATA_KEY 0     /* integer key of the event payload in the cache */
#define HOOK_STEP (1 << 30)  /* largest count given to lua_sethook */

struct sbx {
  case_engine *e;
  lua_State *L;

  size_t used;       /* bytes the Lua heap holds */
  size_t base, cap;  /* during a call: usage at its start, allowed growth (0: none) */
  int mem_tripped;

  long long left;    /* instructions left of the budget */
  int step;          /* count the hook was armed with */
  int instr_tripped;

  case_call *call;   /* the running call, NULL outside calls */
  int guard;         /* the running call is a guard */
  int fail_rc;       /* code of a refused operation (sticky for the call) */
  char fail_msg[256];
  int cache_used;

  int env_ref, case_ref, event_ref, params_ref, cache_ref, objmark_ref;
  long long json_left; /* values one conversion to JSON may still produce */
};

static const char *const forbidden[] = {
  "dofile", "loadfile", "load", "loadstring", "require", "print", "collectgarbage",
  "rawset", "next", "io", "os", "debug", "package", "coroutine", "module",
  "setfenv", "getfenv", "_G", NULL
};

static const char *const reserved[] = {
  "case", "event", "params", "now", "today", "raise", "emit",
  "_event", "_sessionid", "_name", "_ioprocessors", "In", NULL
};

/* SCXML's system variables (5.10): read-only, in every definition. */
static const char *const sysvars[] = {
  "_event", "_sessionid", "_name", "_ioprocessors", "In", NULL
};
#define EVENT_TABLE_KEY (-1)  /* cache key of the _event table of a call */
#define IOPROC_TABLE_KEY (-2) /* cache key of the _ioprocessors table */

static sbx *get_sbx(lua_State *L)
{
  return *(sbx **)lua_getextraspace(L);
}

/* ------------------------------------------------------------------ */
/* Allocator and hook                                                  */
/* ------------------------------------------------------------------ */

static void *counted_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
  sbx *s = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    s->used -= old;
    return NULL;
  }
  if (nsize > old && s->cap) {
    size_t grown = s->used + (nsize - old);
    if (grown > s->base && grown - s->base > s->cap) {
      s->mem_tripped = 1;
      return NULL;
    }
  }
  void *p = realloc(ptr, nsize);
  if (p) s->used = s->used - old + nsize;
  return p;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
  CASE_UNUSED(ar);
  sbx *s = get_sbx(L);
  if (!s->instr_tripped) {
    s->left -= s->step;
    if (s->left > 0) {
      if (s->left < s->step) {
        s->step = (int)s->left;
        lua_sethook(L, count_hook, LUA_MASKCOUNT, s->step);
      }
      return;
    }
    s->instr_tripped = 1;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
  }
  luaL_error(L, "instruction budget exceeded");
}

static void arm_limits(sbx *s)
{
  long long budget = s->e->limits[CASE_LIMIT_INSTRUCTIONS];
  long long mem = s->e->limits[CASE_LIMIT_MEMORY];
  s->instr_tripped = 0;
  s->mem_tripped = 0;
  s->base = s->used;
  s->cap = mem > 0 ? (size_t)mem : 0;
  if (budget > 0) {
    s->left = budget;
    s->step = budget > HOOK_STEP ? HOOK_STEP : (int)budget;
    lua_sethook(s->L, count_hook, LUA_MASKCOUNT, s->step);
  } else {
    lua_sethook(s->L, NULL, 0, 0);
  }
}

static void disarm_limits(sbx *s)
{
  lua_sethook(s->L, NULL, 0, 0);
  s->cap = 0;
}

/* ------------------------------------------------------------------ */
/* Errors raised from C functions called by scripts                    */
/* ------------------------------------------------------------------ */

/* Records a refusal (its code wins over CASE_SCRIPT for this call, even if a
 * pcall in the script catches it) and raises it as a Lua error. */
static int refuse(lua_State *L, int rc, const char *fmt, ...) CASE_PRINTF(3, 4);
static int refuse(lua_State *L, int rc, const char *fmt, ...)
{
  sbx *s = get_sbx(L);
  char msg[sizeof s->fail_msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!s->fail_rc) {
    s->fail_rc = rc;
    memcpy(s->fail_msg, msg, sizeof msg);
  }
  luaL_where(L, 1);
  lua_pushstring(L, msg);
  lua_concat(L, 2);
  return lua_error(L);
}

static case_call *need_call(lua_State *L, const char *what)
{
  sbx *s = get_sbx(L);
  if (!s->call)
    luaL_error(L, "'%s' is only available in guards and actions", what);
  return s->call;
}

/* ------------------------------------------------------------------ */
/* JSON <-> Lua                                                        */
/* ------------------------------------------------------------------ */

static void set_value_eq(lua_State *L);

/* Pushes the Lua form of j.  May raise (inside protected code only).  In the
 * globals datamodel a table compares by value: two variables holding the same
 * data are equal, as two copies of _event are (SCXML 5.10). */
static void push_json(lua_State *L, sbx *s, const json_t *j, int depth)
{
  luaL_checkstack(L, 4, "JSON nested too deeply");
  if (depth > MAX_DEPTH) luaL_error(L, "JSON nested too deeply");
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    const char *k;
    json_t *v;
    lua_createtable(L, 0, (int)json_object_size(j));
    json_object_foreach((json_t *)j, k, v) {
      if (json_is_null(v)) continue;
      lua_pushstring(L, k);
      push_json(L, s, v, depth + 1);
      lua_rawset(L, -3);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->objmark_ref);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    if (s->call && s->call->def->globals) set_value_eq(L);
    break;
  }
  case JSON_ARRAY: {
    size_t n = json_array_size(j);
    lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 0);
    for (size_t i = 0; i < n; i++) {
      json_t *v = json_array_get(j, i);
      if (json_is_null(v)) continue;
      push_json(L, s, v, depth + 1);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    if (s->call && s->call->def->globals) set_value_eq(L);
    break;
  }
  case JSON_STRING:
    lua_pushlstring(L, json_string_value(j), json_string_length(j));
    break;
  case JSON_INTEGER:
    lua_pushinteger(L, (lua_Integer)json_integer_value(j));
    break;
  case JSON_REAL:
    lua_pushnumber(L, json_real_value(j));
    break;
  case JSON_TRUE:
    lua_pushboolean(L, 1);
    break;
  case JSON_FALSE:
    lua_pushboolean(L, 0);
    break;
  default:
    lua_pushnil(L);
    break;
  }
}

typedef struct kv {
  const char *k;
  size_t len;
  json_t *v;
} kv;

static int kv_cmp(const void *a, const void *b)
{
  const kv *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->k, y->k, n);
  if (c) return c;
  return (x->len > y->len) - (x->len < y->len);
}

static void kv_free(kv *v, size_t n)
{
  for (size_t i = 0; i < n; i++) json_decref(v[i].v);
  free(v);
}

/*
 * The JSON form of the Lua value at idx, or NULL with a message in err.
 * Raises no Lua error (it owns JSON values while it runs).  `as_map` says an
 * empty table becomes {} (else [] unless the table came from a JSON object).
 */
static json_t *to_json(lua_State *L, sbx *s, int idx, int as_map, int depth, char *err,
                       size_t errlen)
{
  idx = lua_absindex(L, idx);
  /* A table shared at every level ({t, t} twenty times) is small in Lua and
   * exponential as JSON: bound the values one conversion produces. */
  if (depth == 0) {
    long long mem = s->e->limits[CASE_LIMIT_MEMORY];
    s->json_left = mem > 0 ? (mem / 64 > 100000 ? mem / 64 : 100000) : 10000000;
  }
  if (--s->json_left < 0) {
    snprintf(err, errlen, "value too large to store (more than %lld elements; tables shared "
             "at several places are copied at each)",
             (long long)(s->e->limits[CASE_LIMIT_MEMORY] > 0
                             ? (s->e->limits[CASE_LIMIT_MEMORY] / 64 > 100000
                                    ? s->e->limits[CASE_LIMIT_MEMORY] / 64 : 100000)
                             : 10000000));
    return NULL;
  }
  switch (lua_type(L, idx)) {
  case LUA_TNONE:
  case LUA_TNIL:
    return json_null();
  case LUA_TBOOLEAN:
    return json_boolean(lua_toboolean(L, idx));
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      json_t *j = json_integer((json_int_t)lua_tointeger(L, idx));
      if (!j) snprintf(err, errlen, "out of memory");
      return j;
    } else {
      double d = lua_tonumber(L, idx);
      if (!isfinite(d)) {
        snprintf(err, errlen, "cannot store %s in case data", isnan(d) ? "nan" : "inf");
        return NULL;
      }
      json_t *j = json_real(d);
      if (!j) snprintf(err, errlen, "out of memory");
      return j;
    }
  case LUA_TSTRING: {
    size_t len;
    const char *p = lua_tolstring(L, idx, &len);
    json_t *j = json_stringn(p, len);
    if (!j) snprintf(err, errlen, "string is not valid UTF-8");
    return j;
  }
  case LUA_TTABLE:
    break;
  default:
    snprintf(err, errlen, "cannot store a %s in case data", luaL_typename(L, idx));
    return NULL;
  }

  if (depth > MAX_DEPTH || !lua_checkstack(L, 6)) {
    snprintf(err, errlen, "table nested too deeply (or cyclic)");
    return NULL;
  }
  /* Classify the keys. */
  size_t nstr = 0, nint = 0;
  lua_Integer maxk = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int t = lua_type(L, -1);
    if (t == LUA_TSTRING) {
      nstr++;
    } else if (t == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0) {
      nint++;
      if (lua_tointeger(L, -1) > maxk) maxk = lua_tointeger(L, -1);
    } else {
      lua_pop(L, 1);
      snprintf(err, errlen, "table keys must be strings or positive integers to be stored");
      return NULL;
    }
  }
  if (nstr && nint) {
    snprintf(err, errlen, "a table with both string and integer keys cannot be stored");
    return NULL;
  }
  if (nint) {
    if ((size_t)maxk > 2 * nint + 16) {
      snprintf(err, errlen, "sparse array cannot be stored (largest index %lld)",
               (long long)maxk);
      return NULL;
    }
    json_t *a = json_array();
    if (!a) {
      snprintf(err, errlen, "out of memory");
      return NULL;
    }
    for (lua_Integer i = 1; i <= maxk; i++) {
      lua_rawgeti(L, idx, i);
      json_t *v = to_json(L, s, -1, 0, depth + 1, err, errlen);
      lua_pop(L, 1);
      if (!v || json_array_append_new(a, v)) {
        if (v) snprintf(err, errlen, "out of memory");
        json_decref(a);
        return NULL;
      }
    }
    return a;
  }
  if (!nstr) {
    int mark = as_map;
    if (!mark) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, s->objmark_ref);
      lua_pushvalue(L, idx);
      lua_rawget(L, -2);
      mark = lua_toboolean(L, -1);
      lua_pop(L, 2);
    }
    json_t *j = mark ? json_object() : json_array();
    if (!j) snprintf(err, errlen, "out of memory");
    return j;
  }
  kv *v = calloc(nstr, sizeof *v);
  json_t *o = json_object();
  if (!v || !o) {
    free(v);
    json_decref(o);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    /* keys are strings here: the table did not change since counting */
    v[n].k = lua_tolstring(L, -2, &v[n].len); /* anchored by the table */
    v[n].v = to_json(L, s, -1, 0, depth + 1, err, errlen);
    lua_pop(L, 1);
    if (!v[n].v) {
      lua_pop(L, 1);
      kv_free(v, n);
      json_decref(o);
      return NULL;
    }
    n++;
  }
  qsort(v, n, sizeof *v, kv_cmp);
  for (size_t i = 0; i < n; i++) {
    json_t *val = v[i].v;
    v[i].v = NULL;
    if (json_object_setn_new(o, v[i].k, v[i].len, val)) {
      snprintf(err, errlen, "table key is not valid UTF-8 (or out of memory)");
      kv_free(v, n);
      json_decref(o);
      return NULL;
    }
  }
  free(v);
  return o;
}

/* ------------------------------------------------------------------ */
/* Deterministic pairs                                                 */
/* ------------------------------------------------------------------ */

typedef struct skey {
  int kind; /* 0 number, 1 string, 2 false, 3 true */
  int isint;
  lua_Integer i;
  lua_Number f;
  const char *s;
  size_t len;
  int pos;  /* index in the unsorted key table */
} skey;

static int skey_cmp(const void *a, const void *b)
{
  const skey *x = a, *y = b;
  if (x->kind != y->kind) return x->kind - y->kind;
  if (x->kind == 0) {
    if (x->isint && y->isint) return (x->i > y->i) - (x->i < y->i);
    lua_Number p = x->isint ? (lua_Number)x->i : x->f;
    lua_Number q = y->isint ? (lua_Number)y->i : y->f;
    if (p != q) return p < q ? -1 : 1;
    return y->isint - x->isint; /* integer first on a tie */
  }
  if (x->kind == 1) {
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
  }
  return 0;
}

/* upvalues: 1 table, 2 sorted keys, 3 position */
static int sorted_iter(lua_State *L)
{
  lua_Integer i = lua_tointeger(L, lua_upvalueindex(3));
  for (;;) {
    i++;
    if (lua_rawgeti(L, lua_upvalueindex(2), i) == LUA_TNIL) {
      lua_pushinteger(L, i - 1);
      lua_replace(L, lua_upvalueindex(3));
      return 1;
    }
    lua_pushvalue(L, -1);
    if (lua_gettable(L, lua_upvalueindex(1)) != LUA_TNIL) break; /* skip removed keys */
    lua_pop(L, 2);
  }
  lua_pushinteger(L, i);
  lua_replace(L, lua_upvalueindex(3));
  return 2;
}

/* Pushes an iterator over table `idx` (raw keys; values read through the
 * table so proxies work) and the control values for a generic for. */
static int push_sorted_pairs(lua_State *L, int idx, int keys_of)
{
  idx = lua_absindex(L, idx);
  keys_of = lua_absindex(L, keys_of);
  lua_newtable(L); /* unsorted keys */
  int ut = lua_gettop(L);
  lua_Integer n = 0;
  lua_pushnil(L);
  while (lua_next(L, keys_of)) {
    lua_pop(L, 1);
    int t = lua_type(L, -1);
    if (t != LUA_TNUMBER && t != LUA_TSTRING && t != LUA_TBOOLEAN)
      return luaL_error(L, "pairs: keys of type %s have no deterministic order "
                        "(use numbers, strings or booleans)", lua_typename(L, t));
    lua_pushvalue(L, -1);
    lua_rawseti(L, ut, ++n);
  }
  skey *k = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *k, 0);
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, ut, i + 1);
    skey *e = &k[i];
    memset(e, 0, sizeof *e);
    e->pos = (int)i + 1;
    switch (lua_type(L, -1)) {
    case LUA_TNUMBER:
      e->kind = 0;
      e->isint = lua_isinteger(L, -1);
      if (e->isint) e->i = lua_tointeger(L, -1);
      else e->f = lua_tonumber(L, -1);
      break;
    case LUA_TSTRING:
      e->kind = 1;
      e->s = lua_tolstring(L, -1, &e->len); /* anchored in ut */
      break;
    default:
      e->kind = lua_toboolean(L, -1) ? 3 : 2;
      break;
    }
    lua_pop(L, 1);
  }
  qsort(k, (size_t)n, sizeof *k, skey_cmp);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, ut, k[i].pos);
    lua_rawseti(L, -2, i + 1);
  }
  /* stack: ut, userdata, sorted */
  lua_pushvalue(L, idx);
  lua_pushvalue(L, -2);
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, sorted_iter, 3);
  lua_replace(L, ut);
  lua_pop(L, 2);
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  return 3;
}

static int l_pairs(lua_State *L)
{
  luaL_checkany(L, 1);
  if (luaL_getmetafield(L, 1, "__pairs") != LUA_TNIL) {
    lua_pushvalue(L, 1);
    lua_call(L, 1, 3);
    return 3;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  return push_sorted_pairs(L, 1, 1);
}

/* __pairs of the read-only library proxies: sorted pairs over the target. */
static int proxy_pairs(lua_State *L)
{
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__index");
  return push_sorted_pairs(L, 1, -1);
}

/* ------------------------------------------------------------------ */
/* Replaced and refused library functions                              */
/* ------------------------------------------------------------------ */

static int l_unavailable(lua_State *L)
{
  return luaL_error(L, "'%s' is not available in the sandbox",
                    lua_tostring(L, lua_upvalueindex(1)));
}

static int l_tostring(lua_State *L)
{
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  int t = lua_type(L, 1);
  if (t == LUA_TTABLE || t == LUA_TFUNCTION || t == LUA_TUSERDATA || t == LUA_TTHREAD ||
      t == LUA_TLIGHTUSERDATA) {
    if (luaL_getmetafield(L, 1, "__tostring") != LUA_TNIL) {
      lua_settop(L, 1);
      luaL_tolstring(L, 1, NULL); /* the script's own __tostring */
      return 1;
    }
    /* No address, ever (luaL_tolstring prints "name: 0x...", which differs
     * between runs and would break replay): the __name or the type name. */
    if (luaL_getmetafield(L, 1, "__name") == LUA_TSTRING) return 1;
    lua_settop(L, 1);
    lua_pushstring(L, luaL_typename(L, 1));
    return 1;
  }
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* Charges `cost` instructions to the budget of the running call, for work done
 * inside C library functions that the count hook does not see. */
static void charge(lua_State *L, double cost)
{
  sbx *s = get_sbx(L);
  if (s->e->limits[CASE_LIMIT_INSTRUCTIONS] <= 0 || !s->call) return;
  if (s->instr_tripped || cost >= (double)s->left) {
    s->instr_tripped = 1;
    s->left = 0;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "instruction budget exceeded");
  }
  s->left -= (long long)cost;
}

/* string.rep: an empty result is returned at once (Lua would loop n times
 * copying nothing); copying costs one instruction per 64 bytes. */
static int l_rep(lua_State *L)
{
  size_t l, lsep = 0;
  luaL_checklstring(L, 1, &l);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &lsep);
  if (n <= 0 || l + lsep == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  charge(L, (double)n * (double)(l + lsep) / 64.0);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* table.move: one instruction per element moved. */
static int l_move(lua_State *L)
{
  lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
  if (e >= f) charge(L, (double)e - (double)f + 1.0);
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

/* string.find/match/gmatch/gsub: Lua's matcher backtracks inside C, where the
 * count hook cannot stop it ("(.-)(.-)(.-)x" on a long subject runs for
 * hours).  Each call is charged its worst case up front:
 * len^(quantifiers) (times len when not anchored) / 100 instructions. */
static int l_pattern(lua_State *L)
{
  size_t len, plen;
  luaL_checklstring(L, 1, &len);
  const char *p = luaL_checklstring(L, 2, &plen);
  int plain = lua_toboolean(L, lua_upvalueindex(2)) && lua_toboolean(L, 4); /* find(s,p,i,true) */
  if (!plain) {
    int q = 0;
    for (size_t i = 0; i < plen; i++) {
      if (p[i] == '%') {
        i++;
        continue;
      }
      if (p[i] == '*' || p[i] == '+' || p[i] == '-' || p[i] == '?') q++;
    }
    if (q > 4) q = 4;
    double cost = plen && p[0] == '^' ? 1.0 : (double)len + 1.0;
    for (int i = 0; i < q; i++) cost *= (double)len + 1.0;
    charge(L, cost / 100.0);
  }
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

static int l_format(lua_State *L)
{
  size_t len;
  const char *f = luaL_checklstring(L, 1, &len);
  for (size_t i = 0; i + 1 < len; i++) {
    if (f[i] != '%') continue;
    size_t j = i + 1;
    if (f[j] == '%') {
      i = j;
      continue;
    }
    while (j < len && strchr("-+ #0123456789.", f[j])) j++;
    if (j < len && f[j] == 'p')
      return luaL_error(L, "string.format: '%%p' is not available in the sandbox");
    i = j;
  }
  int n = lua_gettop(L);
  for (int i = 2; i <= n; i++) {
    int t = lua_type(L, i);
    if (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN && t != LUA_TNIL) {
      lua_pushcfunction(L, l_tostring);
      lua_pushvalue(L, i);
      lua_call(L, 1, 1);
      lua_replace(L, i);
    }
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, 1);
  return 1;
}

static int l_setmetatable(lua_State *L)
{
  if (lua_type(L, 2) == LUA_TTABLE) {
    if (lua_getfield(L, 2, "__gc") != LUA_TNIL)
      return luaL_error(L, "setmetatable: '__gc' is not available in the sandbox");
    if (lua_getfield(L, 2, "__mode") != LUA_TNIL)
      return luaL_error(L, "setmetatable: '__mode' is not available in the sandbox");
    lua_pop(L, 2);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int readonly_newindex(lua_State *L)
{
  const char *name = lua_tostring(L, lua_upvalueindex(1));
  if (lua_type(L, 2) == LUA_TSTRING)
    return luaL_error(L, "'%s' is read-only (cannot set %s.%s)", name, name,
                      lua_tostring(L, 2));
  return luaL_error(L, "'%s' is read-only", name);
}

/* Pushes a read-only proxy of the table at idx, named `name` in messages. */
static void push_readonly(lua_State *L, int idx, const char *name)
{
  idx = lua_absindex(L, idx);
  lua_newtable(L);
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, name);
  lua_pushcclosure(L, readonly_newindex, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, proxy_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushstring(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
}

/* ------------------------------------------------------------------ */
/* Globals: the shared environment                                     */
/* ------------------------------------------------------------------ */

static int is_listed(const char *const *list, const char *k)
{
  for (int i = 0; list[i]; i++)
    if (!strcmp(list[i], k)) return 1;
  return 0;
}

/* Pushes the function `name` for a call: profile first, then modules. */
static int push_function(lua_State *L, const case_call *c, const char *name)
{
  if (c->profile && c->profile->functions_ref > 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->profile->functions_ref);
    int t = lua_getfield(L, -1, name);
    lua_remove(L, -2);
    if (t != LUA_TNIL) return 1;
    lua_pop(L, 1);
  }
  if (c->def && c->def->functions_ref > 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->def->functions_ref);
    int t = lua_getfield(L, -1, name);
    lua_remove(L, -2);
    if (t != LUA_TNIL) return 1;
    lua_pop(L, 1);
  }
  return 0;
}

static int push_sysvar(lua_State *L, sbx *s, const char *k);
static int data_global(lua_State *L, sbx *s, const char *k);

static int env_index(lua_State *L)
{
  sbx *s = get_sbx(L);
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  const char *k = lua_tostring(L, 2);
  if (s->call && s->call->def->globals && data_global(L, s, k)) return 1;
  if (k[0] == '_' || k[0] == 'I') {
    if (push_sysvar(L, s, k)) return 1;
  }
  if (!strcmp(k, "today") || !strcmp(k, "now")) {
    case_call *c = need_call(L, k);
    if (k[0] == 'n') {
      lua_pushinteger(L, (lua_Integer)c->time);
      return 1;
    }
    char buf[11];
    cal_format_date(cal_local_day(c->time), buf);
    lua_pushstring(L, buf);
    return 1;
  }
  if (s->call && push_function(L, s->call, k)) return 1;
  if (is_listed(forbidden, k))
    return luaL_error(L, "'%s' is not available in the sandbox", k);
  return 0;
}

static int global_assign(lua_State *L, sbx *s, const char *k);

static int env_newindex(lua_State *L)
{
  sbx *s = get_sbx(L);
  if (lua_type(L, 2) == LUA_TSTRING && s->call && s->call->def->globals)
    return global_assign(L, s, lua_tostring(L, 2));
  if (lua_type(L, 2) == LUA_TSTRING && is_listed(sysvars, lua_tostring(L, 2)))
    return refuse(L, CASE_SCRIPT, "cannot assign %s: it is a system variable",
                  lua_tostring(L, 2));
  if (lua_type(L, 2) == LUA_TSTRING)
    return luaL_error(L, "assignment to undeclared global '%s' (use case.%s or a local)",
                      lua_tostring(L, 2), lua_tostring(L, 2));
  return luaL_error(L, "assignment to a global (use case.<field> or a local)");
}

/* ------------------------------------------------------------------ */
/* case, event, params proxies                                         */
/* ------------------------------------------------------------------ */

static int field_index(const case_def *d, const char *name)
{
  if (!d) return -1;
  for (int i = 0; i < d->nfields; i++)
    if (!strcmp(d->fields[i].name, name)) return i;
  return -1;
}

static void push_cache(lua_State *L, sbx *s)
{
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->cache_ref);
}

static int case_index(lua_State *L)
{
  sbx *s = get_sbx(L);
  case_call *c = need_call(L, "case");
  const char *k = luaL_checkstring(L, 2);
  push_cache(L, s);
  if (lua_getfield(L, -1, k) != LUA_TNIL) return 1; /* a materialised table */
  lua_pop(L, 1);
  json_t *v = c->data ? json_object_get(c->data, k) : NULL;
  if (!v) {
    if (field_index(c->def, k) < 0)
      return luaL_error(L, "case has no field '%s' (not declared under data:)", k);
    lua_pushnil(L);
    return 1;
  }
  push_json(L, s, v, 0);
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, k);
    s->cache_used = 1;
  }
  return 1;
}

/* The JSON of the value at idx for field f, type-checked.  Raises (after
 * freeing) on failure. */
static json_t *field_json(lua_State *L, sbx *s, const cs_field *f, int idx)
{
  char err[160];
  err[0] = 0;
  if (f->type == TYPE_INTEGER && lua_type(L, idx) == LUA_TNUMBER && !lua_isinteger(L, idx)) {
    lua_Number d = lua_tonumber(L, idx);
    lua_Integer i;
    if (lua_numbertointeger(floor(d), &i) && (lua_Number)i == d) {
      json_t *j = json_integer((json_int_t)i);
      if (!j) refuse(L, CASE_NOMEM, "out of memory");
      return j;
    }
  }
  json_t *j = to_json(L, s, idx, f->type == TYPE_MAP, 0, err, sizeof err);
  if (!j) {
    if (!strcmp(err, "out of memory")) refuse(L, CASE_NOMEM, "out of memory");
    refuse(L, strncmp(err, "value too large", 15) ? CASE_INVALID : CASE_LIMIT, "case.%s: %s",
           f->name, err);
  }
  if (!type_accepts(f->type, j)) {
    const char *got = luaL_typename(L, idx);
    json_decref(j);
    refuse(L, CASE_INVALID, "case.%s must be %s %s (got %s)", f->name,
           (f->type == TYPE_INTEGER || f->type == TYPE_ANY) ? "an" : "a", type_name(f->type),
           got);
  }
  return j;
}

static int case_newindex(lua_State *L)
{
  sbx *s = get_sbx(L);
  case_call *c = need_call(L, "case");
  if (lua_type(L, 2) != LUA_TSTRING) return luaL_error(L, "case fields are named by strings");
  const char *k = lua_tostring(L, 2);
  if (s->guard)
    return refuse(L, CASE_SCRIPT, "guards are pure: cannot assign case.%s in a guard", k);
  int fi = field_index(c->def, k);
  if (fi < 0)
    return refuse(L, CASE_INVALID, "cannot assign case.%s: not a declared field "
                  "(declare it under data:)", k);
  json_t *j = field_json(L, s, &c->def->fields[fi], 3);
  if (!c->data || json_object_set_new(c->data, k, j))
    return refuse(L, CASE_NOMEM, "out of memory");
  push_cache(L, s);
  lua_pushvalue(L, 2);
  if (lua_type(L, 3) == LUA_TTABLE) {
    lua_pushvalue(L, 3); /* later changes in place are written back */
    s->cache_used = 1;
  } else {
    lua_pushnil(L);
  }
  lua_rawset(L, -3);
  return 0;
}

/* pairs(case): declared fields with a value, in name order. */
static int case_next(lua_State *L)
{
  case_call *c = need_call(L, "case");
  const char *prev = lua_isnil(L, 2) ? NULL : luaL_checkstring(L, 2);
  const case_def *d = c->def;
  for (;;) {
    const char *best = NULL;
    for (int i = 0; d && i < d->nfields; i++) {
      const char *nm = d->fields[i].name;
      if (prev && strcmp(nm, prev) <= 0) continue;
      if (!best || strcmp(nm, best) < 0) best = nm;
    }
    if (!best) return 0;
    lua_pushstring(L, best);
    lua_pushvalue(L, -1);
    lua_gettable(L, 1);
    if (!lua_isnil(L, -1)) return 2;
    lua_pop(L, 2);
    prev = best;
  }
}

static int case_pairs(lua_State *L)
{
  lua_pushcfunction(L, case_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

static int event_index(lua_State *L)
{
  sbx *s = get_sbx(L);
  case_call *c = need_call(L, "event");
  const char *k = luaL_checkstring(L, 2);
  if (!strcmp(k, "name")) {
    lua_pushstring(L, c->event ? c->event : "");
  } else if (!strcmp(k, "time")) {
    lua_pushinteger(L, (lua_Integer)c->time);
  } else if (!strcmp(k, "role")) {
    if (c->role) lua_pushstring(L, c->role);
    else lua_pushnil(L);
  } else if (!strcmp(k, "actor")) {
    if (c->actor) lua_pushstring(L, c->actor);
    else lua_pushnil(L);
  } else if (!strcmp(k, "type")) {
    if (c->evtype) lua_pushstring(L, c->evtype);
    else lua_pushnil(L);
  } else if (!strcmp(k, "sendid") || !strcmp(k, "origin") || !strcmp(k, "origintype") ||
             !strcmp(k, "invokeid")) {
    const char *v = c->meta ? json_string_value(json_object_get(c->meta, k)) : NULL;
    if (v) lua_pushstring(L, v);
    else lua_pushnil(L);
  } else if (!strcmp(k, "data")) {
    push_cache(L, s);
    if (lua_rawgeti(L, -1, EVENT_DATA_KEY) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    if (!c->payload) {
      lua_pushnil(L);
      return 1;
    }
    push_json(L, s, c->payload, 0);
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, -3, EVENT_DATA_KEY);
      s->cache_used = 1;
    }
  } else {
    lua_pushnil(L);
  }
  return 1;
}

/* pairs(event): its fields in name order. */
static int event_next(lua_State *L)
{
  static const char *const keys[] = {"actor",  "data", "invokeid", "name", "origin",
                                     "origintype", "role", "sendid",   "time", "type", NULL};
  const char *prev = lua_isnil(L, 2) ? NULL : luaL_checkstring(L, 2);
  int i = 0;
  if (prev)
    while (keys[i] && strcmp(keys[i], prev) <= 0) i++;
  for (; keys[i]; i++) {
    lua_pushstring(L, keys[i]);
    lua_pushvalue(L, -1);
    lua_gettable(L, 1);
    if (!lua_isnil(L, -1)) return 2;
    lua_pop(L, 2);
  }
  return 0;
}

static int event_pairs(lua_State *L)
{
  lua_pushcfunction(L, event_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}


static int params_index(lua_State *L)
{
  case_call *c = need_call(L, "params");
  const char *k = luaL_checkstring(L, 2);
  json_t *v = NULL;
  if (c->profile && c->profile->params) v = json_object_get(c->profile->params, k);
  for (int i = 0; !v && c->def && i < c->def->nparams; i++)
    if (!strcmp(c->def->params[i].name, k)) v = c->def->params[i].value;
  if (!v) return luaL_error(L, "unknown param '%s' (not declared under params:)", k);
  push_json(L, get_sbx(L), v, 0);
  return 1;
}

static int param_next(lua_State *L)
{
  case_call *c = need_call(L, "params");
  const char *prev = lua_isnil(L, 2) ? NULL : luaL_checkstring(L, 2);
  const char *best = NULL;
  for (int i = 0; c->def && i < c->def->nparams; i++) {
    const char *nm = c->def->params[i].name;
    if (prev && strcmp(nm, prev) <= 0) continue;
    if (!best || strcmp(nm, best) < 0) best = nm;
  }
  if (c->profile && c->profile->params) {
    const char *nm;
    json_t *v;
    json_object_foreach(c->profile->params, nm, v) {
      if (prev && strcmp(nm, prev) <= 0) continue;
      if (!best || strcmp(nm, best) < 0) best = nm;
    }
  }
  if (!best) return 0;
  lua_pushstring(L, best);
  lua_pushvalue(L, -1);
  lua_gettable(L, 1);
  return 2;
}

static int params_pairs(lua_State *L)
{
  lua_pushcfunction(L, param_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

static int ro_newindex_named(lua_State *L)
{
  sbx *s = get_sbx(L);
  const char *name = lua_tostring(L, lua_upvalueindex(1));
  if (s->guard && s->call)
    return refuse(L, CASE_SCRIPT, "guards are pure: cannot change %s", name);
  return luaL_error(L, "'%s' is read-only", name);
}

/* Pushes a proxy table whose metatable has the given __index/__pairs. */
static void push_proxy(lua_State *L, const char *name, lua_CFunction index,
                       lua_CFunction newindex, lua_CFunction pairs)
{
  lua_newtable(L);
  lua_createtable(L, 0, 5);
  lua_pushcfunction(L, index);
  lua_setfield(L, -2, "__index");
  if (newindex) {
    lua_pushcfunction(L, newindex);
  } else {
    lua_pushstring(L, name);
    lua_pushcclosure(L, ro_newindex_named, 1);
  }
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushstring(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
}

/* ------------------------------------------------------------------ */
/* SCXML: system variables and the globals datamodel                   */
/* ------------------------------------------------------------------ */

/* Deep equality of two tables (raw), for the __eq of _event and
 * _ioprocessors: a copy of them in a variable compares equal to them. */
static int deep_equal(lua_State *L, int a, int b, int depth)
{
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  if (lua_type(L, a) != LUA_TTABLE || lua_type(L, b) != LUA_TTABLE)
    return lua_rawequal(L, a, b);
  if (lua_rawequal(L, a, b)) return 1;
  if (depth > MAX_DEPTH || !lua_checkstack(L, 4)) return 0;
  for (int pass = 0; pass < 2; pass++) {
    int x = pass ? b : a, y = pass ? a : b;
    lua_pushnil(L);
    while (lua_next(L, x)) {
      lua_pushvalue(L, -2);
      lua_rawget(L, y);
      int same = pass ? !lua_isnil(L, -1) : deep_equal(L, -1, -2, depth + 1);
      lua_pop(L, 2);
      if (!same) {
        lua_pop(L, 1);
        return 0;
      }
    }
  }
  return 1;
}

static int value_eq(lua_State *L)
{
  lua_pushboolean(L, deep_equal(L, 1, 2, 0));
  return 1;
}

/* Gives the table on top a metatable with value equality, hidden. */
static void set_value_eq(lua_State *L)
{
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, value_eq);
  lua_setfield(L, -2, "__eq");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
}

static void set_string(lua_State *L, const char *k, const char *v)
{
  if (!v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* In(stateid): is the state active (in the configuration as the macrostep
 * has changed it so far)? */
static int l_in(lua_State *L)
{
  case_call *c = need_call(L, "In");
  const char *id = luaL_checkstring(L, 1);
  int st = def_state_find(c->def, id);
  const uint64_t *cfg = c->status ? c->status->config : c->inst ? c->inst->st.config : NULL;
  lua_pushboolean(L, st > 0 && cfg && ((cfg[st >> 6] >> (st & 63)) & 1u));
  return 1;
}

static int push_sysvar(lua_State *L, sbx *s, const char *k)
{
  case_call *c = s->call;
  if (!c || !is_listed(sysvars, k)) return 0;
  if (!strcmp(k, "In")) {
    lua_pushcfunction(L, l_in);
    return 1;
  }
  if (!strcmp(k, "_sessionid")) {
    if (c->inst) lua_pushstring(L, c->inst->id);
    else lua_pushnil(L);
    return 1;
  }
  if (!strcmp(k, "_name")) {
    lua_pushstring(L, c->def->name ? c->def->name : c->def->id);
    return 1;
  }
  int key = !strcmp(k, "_event") ? EVENT_TABLE_KEY : IOPROC_TABLE_KEY;
  if (key == EVENT_TABLE_KEY && !c->evtype) { /* unbound before the first event */
    lua_pushnil(L);
    return 1;
  }
  push_cache(L, s);
  if (lua_rawgeti(L, -1, key) != LUA_TNIL) {
    lua_remove(L, -2);
    return 1;
  }
  lua_pop(L, 1);
  if (key == EVENT_TABLE_KEY) {
    lua_createtable(L, 0, 8);
    set_string(L, "name", c->event ? c->event : "");
    set_string(L, "type", c->evtype);
    static const char *const metas[] = {"sendid", "origin", "origintype", "invokeid", "raw",
                                        NULL};
    for (int i = 0; c->meta && metas[i]; i++)
      set_string(L, metas[i], json_string_value(json_object_get(c->meta, metas[i])));
    if (c->payload && !json_is_null(c->payload)) {
      push_json(L, s, c->payload, 0);
      lua_setfield(L, -2, "data");
    }
  } else {
    lua_createtable(L, 0, 2);
    lua_createtable(L, 0, 1);
    lua_pushfstring(L, "#_scxml_%s", c->inst ? c->inst->id : "");
    lua_setfield(L, -2, "location");
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "scxml");
    lua_setfield(L, -2, "http://www.w3.org/TR/scxml/#SCXMLEventProcessor");
    char *loc = c->inst ? http_location(s->e, c->inst->id) : NULL;
    lua_createtable(L, 0, 1);
    lua_pushstring(L, loc ? loc : "");
    free(loc);
    lua_setfield(L, -2, "location");
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "basichttp");
    lua_setfield(L, -2, "http://www.w3.org/TR/scxml/#BasicHTTPEventProcessor");
  }
  set_value_eq(L);
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, key);
  s->cache_used = 1;
  lua_remove(L, -2);
  return 1;
}

/* The globals datamodel (SCXML documents): a data variable read as a global.
 * Pushes it and returns 1, or 0 when `k` is no variable of the case. */
static int data_global(lua_State *L, sbx *s, const char *k)
{
  case_call *c = s->call;
  push_cache(L, s);
  if (lua_getfield(L, -1, k) != LUA_TNIL) { /* a table read earlier in this call */
    lua_remove(L, -2);
    return 1;
  }
  lua_pop(L, 2);
  json_t *v = c->data ? json_object_get(c->data, k) : NULL;
  if (!v) return 0;
  push_json(L, s, v, 0);
  if (lua_type(L, -1) == LUA_TTABLE) {
    push_cache(L, s);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, k);
    lua_pop(L, 1);
    s->cache_used = 1;
  }
  return 1;
}

/* Assignment to a global in the globals datamodel: the variable is set
 * (created when undeclared, as SCXML's Lua datamodel does); system variables
 * and the sandbox's own names cannot be assigned. */
static int global_assign(lua_State *L, sbx *s, const char *k)
{
  case_call *c = s->call;
  if (is_listed(sysvars, k) || is_listed(reserved, k) || is_listed(forbidden, k))
    return refuse(L, CASE_SCRIPT, "cannot assign %s: it is a system variable", k);
  if (s->guard)
    return refuse(L, CASE_SCRIPT, "guards are pure: cannot assign %s in a guard", k);
  if (!is_identifier(k, 0)) return luaL_error(L, "'%s' is not a variable name", k);
  int fi = field_index(c->def, k);
  cs_field any = {(char *)k, TYPE_ANY, NULL, NULL, {0, 0}, 0, NULL, NULL, NULL};
  json_t *j = field_json(L, s, fi >= 0 ? &c->def->fields[fi] : &any, 3);
  if (!c->data || json_object_set_new(c->data, k, j))
    return refuse(L, CASE_NOMEM, "out of memory");
  push_cache(L, s);
  lua_pushvalue(L, 2);
  if (lua_type(L, 3) == LUA_TTABLE) {
    lua_pushvalue(L, 3); /* later changes in place are written back */
    s->cache_used = 1;
  } else {
    lua_pushnil(L);
  }
  lua_rawset(L, -3);
  return 0;
}

/* raise(name [, payload]) / emit(name [, payload]); upvalue 1: 0 raise, 1 emit */
static int l_raise_emit(lua_State *L)
{
  sbx *s = get_sbx(L);
  int is_emit = (int)lua_tointeger(L, lua_upvalueindex(1));
  const char *fn = is_emit ? "emit" : "raise";
  case_call *c = need_call(L, fn);
  if (s->guard)
    return refuse(L, CASE_SCRIPT, "guards are pure: %s() is not allowed in a guard", fn);
  if (lua_type(L, 1) != LUA_TSTRING || lua_rawlen(L, 1) == 0)
    return luaL_error(L, "%s: the first argument must be a non-empty %s name", fn,
                      is_emit ? "notification" : "event");
  const char *bad = is_emit ? NULL : event_name_problem(lua_tostring(L, 1));
  if (bad) return luaL_error(L, "raise('%s'): %s", lua_tostring(L, 1), bad);
  cs_plist *list = is_emit ? c->emitted : c->raised;
  if (!list) return luaL_error(L, "%s() is not available here", fn);
  char err[160];
  err[0] = 0;
  json_t *payload = to_json(L, s, 2, 0, 0, err, sizeof err);
  if (!payload) {
    if (!strcmp(err, "out of memory")) return refuse(L, CASE_NOMEM, "out of memory");
    return refuse(L, strncmp(err, "value too large", 15) ? CASE_INVALID : CASE_LIMIT,
                  "%s: payload: %s", fn, err);
  }
  if (plist_push(list, lua_tostring(L, 1), payload) != CASE_OK)
    return refuse(L, CASE_NOMEM, "out of memory");
  return 0;
}

/* ---- store: deadline changes (extend_deadline / set_deadline) --------- */
/* extend_deadline(name, "9 months"): the term counted on from the deadline's
 * current last day; set_deadline(name, "18 months"): the term recounted from
 * the deadline's start.  Actions only; the change is part of the event, so it
 * is journalled with it.  The C side is chart_deadline_change() in chart.c.
 * upvalue 1: 0 extend, 1 set. */
static int l_deadline_change(lua_State *L)
{
  sbx *s = get_sbx(L);
  int from_start = (int)lua_tointeger(L, lua_upvalueindex(1));
  const char *fn = from_start ? "set_deadline" : "extend_deadline";
  case_call *c = need_call(L, fn);
  if (s->guard)
    return refuse(L, CASE_SCRIPT, "guards are pure: %s() is not allowed in a guard", fn);
  const char *name = luaL_checkstring(L, 1);
  const char *dur = luaL_checkstring(L, 2);
  char msg[256];
  int rc = chart_deadline_change(c, name, dur, from_start, msg, sizeof msg);
  if (rc == CASE_OK) return 0;
  return refuse(L, rc == CASE_INVALID || rc == CASE_NOMEM ? rc : CASE_SCRIPT, "%s", msg);
}
/* ---- end store block ------------------------------------------------- */

/* ------------------------------------------------------------------ */
/* Opening the state                                                   */
/* ------------------------------------------------------------------ */

static int setup(lua_State *L)
{
  sbx *s = lua_touserdata(L, 1);
  static const luaL_Reg libs[] = {
    {"_G", luaopen_base},        {LUA_STRLIBNAME, luaopen_string},
    {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8}, {NULL, NULL}};
  for (const luaL_Reg *l = libs; l->name; l++) {
    luaL_requiref(L, l->name, l->func, 1);
    lua_pop(L, 1);
  }
  lua_pushglobaltable(L);
  int G = lua_gettop(L);

  /* Refused library functions become stubs naming themselves. */
  static const char *const stubs[][2] = {
    {LUA_STRLIBNAME, "dump"}, {LUA_MATHLIBNAME, "random"}, {LUA_MATHLIBNAME, "randomseed"}};
  for (size_t i = 0; i < sizeof stubs / sizeof stubs[0]; i++) {
    lua_getfield(L, G, stubs[i][0]);
    lua_pushfstring(L, "%s.%s", stubs[i][0], stubs[i][1]);
    lua_pushcclosure(L, l_unavailable, 1);
    lua_setfield(L, -2, stubs[i][1]);
    lua_pop(L, 1);
  }
  lua_getfield(L, G, LUA_STRLIBNAME);
  lua_getfield(L, -1, "format");
  lua_pushcclosure(L, l_format, 1);
  lua_setfield(L, -2, "format");
  lua_getfield(L, -1, "rep");
  lua_pushcclosure(L, l_rep, 1);
  lua_setfield(L, -2, "rep");
  static const char *const patfns[] = {"find", "match", "gmatch", "gsub", NULL};
  for (int i = 0; patfns[i]; i++) {
    lua_getfield(L, -1, patfns[i]);
    lua_pushboolean(L, i == 0); /* only find has the plain flag */
    lua_pushcclosure(L, l_pattern, 2);
    lua_setfield(L, -2, patfns[i]);
  }
  lua_pop(L, 1);
  lua_getfield(L, G, LUA_TABLIBNAME);
  lua_getfield(L, -1, "move");
  lua_pushcclosure(L, l_move, 1);
  lua_setfield(L, -2, "move");
  lua_pop(L, 1);

  /* The environment. */
  lua_newtable(L);
  int env = lua_gettop(L);
  static const char *const keep[] = {
    "assert", "error", "getmetatable", "ipairs", "pcall", "rawequal", "rawget", "rawlen",
    "select", "tonumber", "type", "xpcall", "_VERSION", NULL};
  for (int i = 0; keep[i]; i++) {
    lua_getfield(L, G, keep[i]);
    lua_setfield(L, env, keep[i]);
  }
  lua_pushcfunction(L, l_pairs);
  lua_setfield(L, env, "pairs");
  lua_pushcfunction(L, l_tostring);
  lua_setfield(L, env, "tostring");
  lua_getfield(L, G, "setmetatable");
  lua_pushcclosure(L, l_setmetatable, 1);
  lua_setfield(L, env, "setmetatable");
  static const char *const shared[] = {
    LUA_STRLIBNAME, LUA_TABLIBNAME, LUA_MATHLIBNAME, LUA_UTF8LIBNAME, NULL};
  for (int i = 0; shared[i]; i++) {
    lua_getfield(L, G, shared[i]);
    push_readonly(L, -1, shared[i]);
    lua_setfield(L, env, shared[i]);
    lua_pop(L, 1);
  }

  /* Protect the string metatable: getmetatable("") gives a read-only
   * stand-in whose __index is the read-only string table. */
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_createtable(L, 0, 1);
  lua_getfield(L, env, LUA_STRLIBNAME);
  lua_setfield(L, -2, "__index");
  push_readonly(L, -1, "string metatable");
  lua_setfield(L, -3, "__metatable");
  lua_pop(L, 3);

  push_proxy(L, "case", case_index, case_newindex, case_pairs);
  lua_pushvalue(L, -1);
  s->case_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_setfield(L, env, "case");
  push_proxy(L, "event", event_index, NULL, event_pairs);
  lua_pushvalue(L, -1);
  s->event_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_setfield(L, env, "event");
  push_proxy(L, "params", params_index, NULL, params_pairs);
  lua_pushvalue(L, -1);
  s->params_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_setfield(L, env, "params");

  lua_pushinteger(L, 0);
  lua_pushcclosure(L, l_raise_emit, 1);
  lua_setfield(L, env, "raise");
  lua_pushinteger(L, 1);
  lua_pushcclosure(L, l_raise_emit, 1);
  lua_setfield(L, env, "emit");
  /* store: deadline changes */
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, l_deadline_change, 1);
  lua_setfield(L, env, "extend_deadline");
  lua_pushinteger(L, 1);
  lua_pushcclosure(L, l_deadline_change, 1);
  lua_setfield(L, env, "set_deadline");

  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, env_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, env_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushstring(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, env);
  lua_pushvalue(L, env);
  s->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  lua_newtable(L);
  s->cache_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  s->objmark_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

int sbx_open(case_engine *e, sbx **out)
{
  if (!out) return CASE_MISUSE;
  *out = NULL;
  sbx *s = calloc(1, sizeof *s);
  if (!s) return CASE_NOMEM;
  s->e = e;
  s->L = lua_newstate(counted_alloc, s);
  if (!s->L) {
    free(s);
    return CASE_NOMEM;
  }
  *(sbx **)lua_getextraspace(s->L) = s;
  lua_pushcfunction(s->L, setup);
  lua_pushlightuserdata(s->L, s);
  if (lua_pcall(s->L, 1, 0, 0) != LUA_OK) {
    lua_close(s->L);
    free(s);
    return CASE_NOMEM;
  }
  *out = s;
  return CASE_OK;
}

void sbx_close(sbx *s)
{
  if (!s) return;
  lua_close(s->L);
  free(s);
}

void sbx_unref(sbx *s, int ref)
{
  if (s && ref > 0) luaL_unref(s->L, LUA_REGISTRYINDEX, ref);
}


/* ------------------------------------------------------------------ */
/* Protected jobs                                                      */
/* ------------------------------------------------------------------ */

/* Runs f(ud) with lua_pcall; on error leaves the message (a string) on the
 * stack and returns the Lua status. */
static int protect(sbx *s, lua_CFunction f, void *ud)
{
  lua_State *L = s->L;
  if (!lua_checkstack(L, 4)) return LUA_ERRMEM;
  lua_pushcfunction(L, f);
  lua_pushlightuserdata(L, ud);
  int rc = lua_pcall(L, 1, 0, 0);
  if (rc != LUA_OK && lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushliteral(L, "(error object is not a string)");
  }
  return rc;
}

static char *msgf(const char *fmt, ...) CASE_PRINTF(1, 2);
static char *msgf(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *p = malloc((size_t)n + 1);
  if (!p) return NULL;
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

/* What a job that fails on purpose reports (else the Lua message counts). */
typedef struct job {
  sbx *s;
  int rc;
  char msg[512];
} job;

static int job_fail(lua_State *L, job *j, int rc, const char *fmt, ...) CASE_PRINTF(4, 5);
static int job_fail(lua_State *L, job *j, int rc, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  j->rc = rc;
  vsnprintf(j->msg, sizeof j->msg, fmt, ap);
  va_end(ap);
  return luaL_error(L, "%s", j->msg);
}

/* Runs f under lua_pcall with `ud` (which starts with a job) and turns a
 * failure into the engine error; `what` prefixes limit messages. */
static int run_job(sbx *s, lua_CFunction f, job *j, const char *what)
{
  lua_State *L = s->L;
  j->s = s;
  j->rc = CASE_OK;
  j->msg[0] = 0;
  if (!lua_checkstack(L, 4)) return eng_err(s->e, CASE_NOMEM, "out of memory");
  int top = lua_gettop(L);
  lua_pushcfunction(L, f);
  lua_pushlightuserdata(L, j);
  int st = lua_pcall(L, 1, 0, 0);
  disarm_limits(s);
  int rc = CASE_OK;
  if (st != LUA_OK) {
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error";
    if (s->instr_tripped)
      rc = eng_err(s->e, CASE_LIMIT, "%s: exceeded the instruction budget (%lld)", what,
                   s->e->limits[CASE_LIMIT_INSTRUCTIONS]);
    else if (s->mem_tripped)
      rc = eng_err(s->e, CASE_LIMIT, "%s: exceeded the memory limit (%lld bytes)", what,
                   s->e->limits[CASE_LIMIT_MEMORY]);
    else if (j->rc)
      rc = eng_err(s->e, j->rc, "%s", j->msg);
    else if (st == LUA_ERRMEM)
      rc = eng_err(s->e, CASE_NOMEM, "out of memory");
    else
      rc = eng_err(s->e, CASE_SCRIPT, "%s", m);
  }
  s->instr_tripped = s->mem_tripped = 0;
  lua_settop(L, top);
  return rc;
}

static char *read_file(const char *path, size_t *len, int *err)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    *err = errno;
    return NULL;
  }
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      size_t nc = cap ? cap * 2 : 8192;
      char *p = realloc(buf, nc);
      if (!p) {
        free(buf);
        fclose(f);
        *err = ENOMEM;
        return NULL;
      }
      buf = p;
      cap = nc;
    }
    size_t r = fread(buf + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    *err = EIO;
    return NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

static int file_error(sbx *s, const char *path, int err)
{
  if (err == ENOMEM) return eng_err(s->e, CASE_NOMEM, "out of memory");
  return eng_err(s->e, CASE_IO, "%s: cannot read: %s", path, strerror(err));
}

/* Loads and runs a Lua file in the sandbox under the limits; pushes the
 * table it returns (raises otherwise). */
static void run_file(lua_State *L, job *j, const char *path, const char *text, size_t len,
                     const char *kind)
{
  sbx *s = j->s;
  lua_pushfstring(L, "@%s", path);
  int st = luaL_loadbufferx(L, text, len, lua_tostring(L, -1), "t");
  lua_remove(L, -2);
  if (st != LUA_OK) {
    if (st == LUA_ERRMEM) lua_error(L);
    job_fail(L, j, CASE_SCRIPT, "%s does not compile: %s", kind, lua_tostring(L, -1));
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->env_ref);
  lua_setupvalue(L, -2, 1);
  arm_limits(s);
  lua_call(L, 0, 1);
  disarm_limits(s);
  if (!lua_istable(L, -1))
    job_fail(L, j, CASE_SCRIPT, "%s: a %s must return a table (it returned %s)", path, kind,
             luaL_typename(L, -1));
}

/* Is `k` a name a function table may not use (it would hide a global)? */
static int hides_global(lua_State *L, sbx *s, const char *k)
{
  if (is_listed(reserved, k) || is_listed(forbidden, k)) return 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->env_ref);
  lua_pushstring(L, k);
  int t = lua_rawget(L, -2);
  lua_pop(L, 2);
  return t != LUA_TNIL;
}

/* Copies the functions of the table at `src` into `dst`; `owners` (may be
 * 0) maps each name to the module number that defined it. */
static void copy_functions(lua_State *L, job *j, int src, int dst, int owners, int modno,
                           char **paths, const char *path)
{
  src = lua_absindex(L, src);
  lua_pushnil(L);
  while (lua_next(L, src)) {
    if (lua_type(L, -2) != LUA_TSTRING || !is_identifier(lua_tostring(L, -2), 0))
      job_fail(L, j, CASE_SCRIPT, "%s: function names must be identifiers (found a %s key)",
               path, luaL_typename(L, -2));
    const char *k = lua_tostring(L, -2);
    if (!lua_isfunction(L, -1))
      job_fail(L, j, CASE_SCRIPT, "%s: '%s' must be a function (it is a %s)", path, k,
               luaL_typename(L, -1));
    if (hides_global(L, j->s, k))
      job_fail(L, j, CASE_SCRIPT, "%s: function '%s' would hide the sandbox global '%s'",
               path, k, k);
    if (owners) {
      if (lua_getfield(L, owners, k) != LUA_TNIL) {
        int other = (int)lua_tointeger(L, -1);
        job_fail(L, j, CASE_SCRIPT, "function '%s' is defined in two lua: modules: %s and %s",
                 k, paths[other], path);
      }
      lua_pop(L, 1);
      lua_pushinteger(L, modno);
      lua_setfield(L, owners, k);
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, dst);
  }
}

typedef struct modjob {
  job j;
  case_def *d;
  char **texts;
  size_t *lens;
} modjob;

static int do_modules(lua_State *L)
{
  modjob *m = lua_touserdata(L, 1);
  lua_newtable(L);
  int dst = lua_gettop(L);
  lua_newtable(L);
  int owners = lua_gettop(L);
  for (int i = 0; i < m->d->nmodules; i++) {
    run_file(L, &m->j, m->d->modules[i], m->texts[i], m->lens[i], "lua module");
    copy_functions(L, &m->j, -1, dst, owners, i, m->d->modules, m->d->modules[i]);
    lua_pop(L, 1);
  }
  lua_pushvalue(L, dst);
  m->d->functions_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

int sbx_load_modules(sbx *s, case_def *d)
{
  if (!s || !d) return CASE_MISUSE;
  d->functions_ref = -1;
  if (d->nmodules <= 0) return CASE_OK;
  modjob m;
  memset(&m, 0, sizeof m);
  m.d = d;
  m.texts = calloc((size_t)d->nmodules, sizeof *m.texts);
  m.lens = calloc((size_t)d->nmodules, sizeof *m.lens);
  int rc = CASE_OK;
  if (!m.texts || !m.lens) rc = eng_err(s->e, CASE_NOMEM, "out of memory");
  for (int i = 0; rc == CASE_OK && i < d->nmodules; i++) {
    if (d->module_src && d->module_src[i]) {
      /* pinned source (def_parse_pinned): used as given */
      m.texts[i] = malloc(d->module_len[i] + 1);
      if (!m.texts[i]) {
        rc = eng_err(s->e, CASE_NOMEM, "out of memory");
        break;
      }
      memcpy(m.texts[i], d->module_src[i], d->module_len[i]);
      m.texts[i][d->module_len[i]] = '\0';
      m.lens[i] = d->module_len[i];
      continue;
    }
    int err = 0;
    m.texts[i] = read_file(d->modules[i], &m.lens[i], &err);
    if (!m.texts[i]) {
      rc = file_error(s, d->modules[i], err);
      break;
    }
    /* Keep the source: it is part of the definition a store pins. */
    if (d->module_src) {
      d->module_src[i] = malloc(m.lens[i] + 1);
      if (!d->module_src[i]) {
        rc = eng_err(s->e, CASE_NOMEM, "out of memory");
        break;
      }
      memcpy(d->module_src[i], m.texts[i], m.lens[i]);
      d->module_src[i][m.lens[i]] = '\0';
      d->module_len[i] = m.lens[i];
    }
  }
  if (rc == CASE_OK) rc = run_job(s, do_modules, &m.j, d->modules[0]);
  for (int i = 0; m.texts && i < d->nmodules; i++) free(m.texts[i]);
  free(m.texts);
  free(m.lens);
  if (rc != CASE_OK) {
    sbx_unref(s, d->functions_ref);
    d->functions_ref = -1;
  }
  return rc;
}

/* ------------------------------------------------------------------ */
/* Profiles                                                            */
/* ------------------------------------------------------------------ */

typedef struct profjob {
  job j;
  const char *path;
  char *text;
  size_t len;
  json_t *params; /* owned by the job until handed over */
  int functions_ref;
} profjob;

static int do_profile(lua_State *L)
{
  profjob *p = lua_touserdata(L, 1);
  run_file(L, &p->j, p->path, p->text, p->len, "location profile");
  int t = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (!k || (strcmp(k, "params") && strcmp(k, "functions")))
      job_fail(L, &p->j, CASE_SCRIPT, "%s: unknown key '%s' in the returned table "
               "(expected params, functions)", p->path, k ? k : luaL_typename(L, -1));
  }
  int pt = lua_getfield(L, t, "params");
  if (pt != LUA_TNIL) {
    if (pt != LUA_TTABLE)
      job_fail(L, &p->j, CASE_SCRIPT, "%s: params must be a table (it is a %s)", p->path,
               luaL_typename(L, -1));
    int pi = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, pi)) {
      int vt = lua_type(L, -1);
      if (lua_type(L, -2) != LUA_TSTRING || !is_identifier(lua_tostring(L, -2), 0))
        job_fail(L, &p->j, CASE_INVALID, "%s: param names must be identifiers", p->path);
      if (vt != LUA_TBOOLEAN && vt != LUA_TNUMBER && vt != LUA_TSTRING)
        job_fail(L, &p->j, CASE_INVALID, "%s: param '%s' must be a boolean, number or "
                 "string (it is a %s)", p->path, lua_tostring(L, -2), luaL_typename(L, -1));
      lua_pop(L, 1);
    }
    char err[160];
    err[0] = 0;
    p->params = to_json(L, p->j.s, pi, 1, 0, err, sizeof err);
    if (!p->params) job_fail(L, &p->j, CASE_INVALID, "%s: params: %s", p->path, err);
  }
  lua_settop(L, t);
  int ft = lua_getfield(L, t, "functions");
  if (ft != LUA_TNIL) {
    if (ft != LUA_TTABLE)
      job_fail(L, &p->j, CASE_SCRIPT, "%s: functions must be a table (it is a %s)", p->path,
               luaL_typename(L, -1));
    lua_newtable(L);
    copy_functions(L, &p->j, -2, lua_gettop(L), 0, 0, NULL, p->path);
    p->functions_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 0;
}

int sbx_load_profile(sbx *s, const char *name, const char *path, cs_profile **out)
{
  if (!s || !name || !path || !out) return CASE_MISUSE;
  *out = NULL;
  int err = 0;
  size_t len = 0;
  char *text = read_file(path, &len, &err);
  if (!text) return file_error(s, path, err);
  int rc = sbx_load_profile_text(s, name, path, text, len, out);
  free(text);
  return rc;
}

int sbx_load_profile_text(sbx *s, const char *name, const char *path, const char *text,
                          size_t len, cs_profile **out)
{
  if (!s || !name || !path || !text || !out) return CASE_MISUSE;
  *out = NULL;
  profjob p;
  memset(&p, 0, sizeof p);
  p.path = path;
  p.functions_ref = -1;
  p.text = malloc(len + 1);
  if (!p.text) return eng_err(s->e, CASE_NOMEM, "out of memory");
  memcpy(p.text, text, len);
  p.text[len] = '\0';
  p.len = len;
  int rc = run_job(s, do_profile, &p.j, path);
  cs_profile *pr = NULL;
  if (rc == CASE_OK) {
    pr = calloc(1, sizeof *pr);
    if (pr) {
      pr->name = xstrdup(name);
      pr->path = xstrdup(path);
      pr->params = p.params ? p.params : json_object();
      pr->source = p.text; /* kept: a store pins the profile's text */
      pr->source_len = len;
      p.text = NULL;
    }
    if (!pr || !pr->name || !pr->path || !pr->params) {
      if (pr) {
        if (pr->params == p.params) p.params = NULL;
        free(pr->name);
        free(pr->path);
        free(pr->source);
        json_decref(pr->params);
        free(pr);
      }
      rc = eng_err(s->e, CASE_NOMEM, "out of memory");
    } else {
      pr->functions_ref = p.functions_ref;
      *out = pr;
      return CASE_OK;
    }
  }
  free(p.text);
  json_decref(p.params);
  sbx_unref(s, p.functions_ref);
  return rc;
}

void sbx_profile_free(sbx *s, cs_profile *p)
{
  if (!p) return;
  sbx_unref(s, p->functions_ref);
  json_decref(p->params);
  free(p->name);
  free(p->path);
  free(p->source);
  free(p);
}

/* ------------------------------------------------------------------ */
/* Compiling guards and actions                                        */
/* ------------------------------------------------------------------ */

static const char *file_of(const case_def *d)
{
  return d && d->file ? d->file : "<string>";
}

/* If `msg` starts with "<chunk id of file>:<N>: ", stores N and returns the
 * text after it; else returns msg.  The chunk id is "=file" as Lua prints
 * it (cut to LUA_IDSIZE - 1 bytes). */
static const char *strip_where(const char *msg, const char *file, int *line)
{
  size_t n = strlen(file);
  if (n > LUA_IDSIZE - 1) n = LUA_IDSIZE - 1;
  if (strncmp(msg, file, n) || msg[n] != ':') return msg;
  const char *p = msg + n + 1;
  char *end;
  long v = strtol(p, &end, 10);
  if (end == p || end[0] != ':' || end[1] != ' ' || v <= 0 || v > INT_MAX) return msg;
  *line = (int)v;
  return end + 2;
}

typedef struct compjob {
  job j;
  const char *text;
  size_t len;
  const char *chunk;
  int status;
  int ref;
  const char *name; /* SCRIPT_NAMED: the name to check */
  int functions_ref;
  int found;
} compjob;

static int do_compile(lua_State *L)
{
  compjob *c = lua_touserdata(L, 1);
  if (c->name) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->functions_ref);
    c->found = lua_istable(L, -1) && lua_getfield(L, -1, c->name) != LUA_TNIL;
    return 0;
  }
  c->status = luaL_loadbufferx(L, c->text, c->len, c->chunk, "t");
  if (c->status != LUA_OK) return lua_error(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->j.s->env_ref);
  lua_setupvalue(L, -2, 1);
  c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static void module_list(const case_def *d, char *out, size_t n)
{
  size_t used = 0;
  out[0] = 0;
  for (int i = 0; i < d->nmodules && used + 1 < n; i++) {
    int w = snprintf(out + used, n - used, "%s%s", i ? ", " : "", d->modules[i]);
    if (w < 0) break;
    used += (size_t)w;
  }
}

int sbx_compile(sbx *s, case_def *d, cs_script *script, int is_guard)
{
  if (!s || !d || !script || !script->text) return CASE_MISUSE;
  const char *what = is_guard ? "guard" : "action";
  const char *file = file_of(d);
  lua_State *L = s->L;
  compjob c;
  memset(&c, 0, sizeof c);
  c.j.s = s;

  if (script->kind == SCRIPT_NATIVE) return CASE_OK;
  if (script->kind == SCRIPT_NAMED) {
    char mods[512];
    if (d->functions_ref <= 0)
      return eng_err_at(s->e, CASE_INVALID, file, script->pos,
                        "unknown %s function '%s' (the definition has no lua: modules)", what,
                        script->text);
    c.name = script->text;
    c.functions_ref = d->functions_ref;
    int top = lua_gettop(L);
    int st = protect(s, do_compile, &c);
    lua_settop(L, top);
    if (st != LUA_OK) return eng_err(s->e, CASE_NOMEM, "out of memory");
    if (!c.found) {
      module_list(d, mods, sizeof mods);
      return eng_err_at(s->e, CASE_INVALID, file, script->pos,
                        "unknown %s function '%s' (not in the lua: modules %s)", what,
                        script->text, mods);
    }
    return CASE_OK;
  }
  if (script->ref > 0) return CASE_OK; /* compiled once */

  /* Leading newlines make Lua's line numbers the YAML's. */
  int pad = script->pos.line > 1 ? script->pos.line - 1 : 0;
  size_t tlen = strlen(script->text);
  int expr = script->kind == SCRIPT_EXPR;
  size_t len = (size_t)pad + tlen + (expr ? 10 : 0);
  char *buf = malloc(len + 1);
  char *chunk = msgf("=%s", file);
  if (!buf || !chunk) {
    free(buf);
    free(chunk);
    return eng_err(s->e, CASE_NOMEM, "out of memory");
  }
  memset(buf, '\n', (size_t)pad);
  char *p = buf + pad;
  if (expr) {
    memcpy(p, "return (", 8);
    p += 8;
  }
  memcpy(p, script->text, tlen);
  p += tlen;
  if (expr) {
    memcpy(p, "\n)", 2);
    p += 2;
  }
  *p = 0;
  c.text = buf;
  c.len = (size_t)(p - buf);
  c.chunk = chunk;
  c.ref = -1;
  int top = lua_gettop(L);
  int st = protect(s, do_compile, &c);
  int rc = CASE_OK;
  if (st != LUA_OK) {
    if (st == LUA_ERRMEM || c.status == LUA_ERRMEM) {
      rc = eng_err(s->e, CASE_NOMEM, "out of memory");
    } else {
      int line = 0;
      const char *m = strip_where(lua_tostring(L, -1), file, &line);
      /* Lua's line (after the padding) is a line of the script's text; the
       * loader's line map places it in the YAML through the scalar's folding
       * and escapes.  The closing ")" of an expression counts as its last line. */
      cs_pos at = line > pad ? script_line_pos(script, line - pad) : script->pos;
      rc = eng_err_at(s->e, CASE_SCRIPT, file, at, "%s does not compile: %s", what, m);
    }
  } else {
    script->ref = c.ref;
  }
  lua_settop(L, top);
  free(buf);
  free(chunk);
  return rc;
}

typedef struct knownjob {
  sbx *s;
  const case_def *d;
  const char *name;
  int found;
} knownjob;

static int do_known(lua_State *L)
{
  knownjob *k = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, k->s->env_ref);
  k->found = lua_getfield(L, -1, k->name) != LUA_TNIL; /* as a script would see it */
  if (!k->found && k->d && k->d->functions_ref > 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, k->d->functions_ref);
    lua_pushstring(L, k->name);
    k->found = lua_istable(L, -2) && lua_rawget(L, -2) != LUA_TNIL;
  }
  return 0;
}

int sbx_global_known(sbx *s, const case_def *d, const char *name)
{
  if (!s || !name) return 0;
  if (!strcmp(name, "today") || !strcmp(name, "now")) return 1; /* computed per call */
  if (is_listed(sysvars, name)) return 1;                       /* SCXML's, per call */
  knownjob k = {s, d, name, 0};
  int top = lua_gettop(s->L);
  int st = protect(s, do_known, &k);
  lua_settop(s->L, top);
  return st == LUA_OK && k.found;
}

/* ------------------------------------------------------------------ */
/* Guard and action calls                                              */
/* ------------------------------------------------------------------ */

typedef struct calljob {
  sbx *s;
  case_call *call;
  const cs_script *sc;
  int result;
  json_t *const *args; /* sbx_exec: the chunk's ... */
  int nargs;
  json_t **out;        /* sbx_eval: the value as JSON */
} calljob;

static void clear_cache(lua_State *L, sbx *s)
{
  push_cache(L, s);
  int t = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushnil(L);
    lua_rawset(L, t);
  }
  lua_pop(L, 1);
  s->cache_used = 0;
}

/* Writes back every table-valued field the action read or assigned. */
static void write_back(lua_State *L, sbx *s, case_call *c)
{
  push_cache(L, s);
  int t = lua_gettop(L);
  if (c->def->globals) {
    /* Every table the call read or assigned, declared or not. */
    lua_pushnil(L);
    while (lua_next(L, t)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE) {
        const char *name = lua_tostring(L, -2);
        int fi = field_index(c->def, name);
        cs_field any = {(char *)name, TYPE_ANY, NULL, NULL, {0, 0}, 0, NULL, NULL, NULL};
        json_t *j = field_json(L, s, fi >= 0 ? &c->def->fields[fi] : &any, -1);
        if (json_object_set_new(c->data, name, j)) refuse(L, CASE_NOMEM, "out of memory");
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return;
  }
  for (int i = 0; i < c->def->nfields; i++) {
    const cs_field *f = &c->def->fields[i];
    if (lua_getfield(L, t, f->name) == LUA_TTABLE) {
      json_t *j = field_json(L, s, f, -1);
      if (json_object_set_new(c->data, f->name, j))
        refuse(L, CASE_NOMEM, "out of memory");
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static int do_call(lua_State *L)
{
  calljob *j = lua_touserdata(L, 1);
  sbx *s = j->s;
  const cs_script *sc = j->sc;
  int nargs = 0;
  if (s->cache_used) clear_cache(L, s);
  if (sc->kind == SCRIPT_NAMED) {
    if (!push_function(L, j->call, sc->text))
      return luaL_error(L, "function '%s' is not defined (not in the lua: modules or the "
                        "location profile)", sc->text);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->case_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->event_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->params_ref);
    nargs = 3;
  } else if (lua_rawgeti(L, LUA_REGISTRYINDEX, sc->ref) != LUA_TFUNCTION) {
    return luaL_error(L, "script was not compiled");
  }
  for (int i = 0; i < j->nargs; i++) {
    if (j->args[i]) push_json(L, s, j->args[i], 0);
    else lua_pushnil(L);
    nargs++;
  }
  arm_limits(s);
  lua_call(L, nargs, 1);
  j->result = lua_toboolean(L, -1);
  if (j->out) {
    char err[160];
    err[0] = 0;
    json_t *v = to_json(L, s, -1, 0, 0, err, sizeof err);
    if (!v) {
      if (!strcmp(err, "out of memory")) refuse(L, CASE_NOMEM, "out of memory");
      refuse(L, strncmp(err, "value too large", 15) ? CASE_INVALID : CASE_LIMIT, "%s", err);
    }
    *j->out = v;
  }
  lua_pop(L, 1);
  if (!s->guard && s->cache_used && j->call->data) write_back(L, s, j->call);
  disarm_limits(s);
  return 0;
}

static void describe(const cs_script *sc, char *out, size_t n)
{
  const char *t = sc->text ? sc->text : "";
  while (*t == ' ' || *t == '\n' || *t == '\t') t++;
  size_t len = strcspn(t, "\n");
  int cut = t[len] != 0 && t[len + 1] != 0;
  if (len > 40) {
    len = 40;
    cut = 1;
  }
  while (cut && len > 0 && t[len - 1] == ' ') len--;
  snprintf(out, n, "%.*s%s", (int)len, t, cut ? "..." : "");
}

static int run_call_ex(sbx *s, case_call *call, const cs_script *sc, int is_guard, int *result,
                       json_t *const *args, int nargs, json_t **out);

static int run_call(sbx *s, case_call *call, const cs_script *sc, int is_guard, int *result)
{
  return run_call_ex(s, call, sc, is_guard, result, NULL, 0, NULL);
}

int sbx_eval(sbx *s, case_call *call, const cs_script *x, json_t **out)
{
  if (!out) return CASE_MISUSE;
  *out = NULL;
  if (!x || x->kind != SCRIPT_EXPR) return CASE_MISUSE;
  int rc = run_call_ex(s, call, x, 0, NULL, NULL, 0, out);
  if (rc != CASE_OK) {
    json_decref(*out);
    *out = NULL;
  }
  return rc;
}

int sbx_exec(sbx *s, case_call *call, const cs_script *b, json_t *const *args, int nargs)
{
  if (!b || b->kind != SCRIPT_BLOCK || nargs < 0 || (nargs > 0 && !args)) return CASE_MISUSE;
  return run_call_ex(s, call, b, 0, NULL, args, nargs, NULL);
}

static int run_call_ex(sbx *s, case_call *call, const cs_script *sc, int is_guard, int *result,
                       json_t *const *args, int nargs, json_t **out)
{
  if (!s || !call || !sc || !call->def) return CASE_MISUSE;
  if (s->call) return CASE_MISUSE; /* no nested calls */
  if (sc->kind == SCRIPT_NATIVE || (sc->kind == SCRIPT_BLOCK && is_guard) ||
      (sc->kind != SCRIPT_NAMED && sc->ref <= 0) || (sc->kind == SCRIPT_NAMED && !sc->text))
    return CASE_MISUSE;
  lua_State *L = s->L;
  calljob j = {s, call, sc, 0, args, nargs, out};
  s->call = call;
  s->guard = is_guard;
  s->fail_rc = 0;
  s->fail_msg[0] = 0;
  int top = lua_gettop(L);
  int st = protect(s, do_call, &j);
  disarm_limits(s);
  s->call = NULL;
  int rc = CASE_OK;
  if (st == LUA_OK && !s->fail_rc && !s->instr_tripped && !s->mem_tripped) {
    if (result) *result = j.result;
  } else {
    const char *what = is_guard ? "guard" : "action";
    const char *file = file_of(call->def);
    const char *m = st != LUA_OK ? lua_tostring(L, -1) : s->fail_msg;
    char desc[64];
    cs_pos at = sc->pos;
    describe(sc, desc, sizeof desc);
    char *text;
    if (s->instr_tripped || s->mem_tripped) {
      rc = CASE_LIMIT;
      if (s->instr_tripped)
        text = msgf("%s:%d:%d: %s '%s' exceeded the instruction budget (%lld)", file, at.line,
                    at.col, what, desc, s->e->limits[CASE_LIMIT_INSTRUCTIONS]);
      else
        text = msgf("%s:%d:%d: %s '%s' exceeded the memory limit (%lld bytes)", file,
                    at.line, at.col, what, desc, s->e->limits[CASE_LIMIT_MEMORY]);
    } else {
      if (s->fail_rc) rc = s->fail_rc;
      else if (st == LUA_ERRMEM) rc = CASE_NOMEM;
      else rc = CASE_SCRIPT;
      int line = 0;
      m = strip_where(m ? m : "error", file, &line);
      /* As for compile errors: Lua's line through the script's line map, so a
       * one-line guard is not reported on the line of its closing ")". */
      int pad = sc->pos.line > 1 ? sc->pos.line - 1 : 0;
      if (line > pad && sc->kind != SCRIPT_NAMED) at = script_line_pos(sc, line - pad);
      text = msgf("%s:%d:%d: %s '%s' failed: %s", file, at.line, at.col, what, desc, m);
    }
    free(call->errmsg);
    call->errmsg = text;
  }
  s->instr_tripped = s->mem_tripped = 0;
  s->fail_rc = 0;
  lua_settop(L, top);
  return rc;
}

int sbx_guard(sbx *s, case_call *call, const cs_script *g, int *result)
{
  if (!result) return CASE_MISUSE;
  *result = 0;
  return run_call(s, call, g, 1, result);
}

int sbx_action(sbx *s, case_call *call, const cs_script *a)
{
  return run_call(s, call, a, 0, NULL);
}
