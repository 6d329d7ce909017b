/*
 * sandbox.c — the Lua sandbox: modules, profiles, compile, guard/action calls.
 *
 * One lua_State per engine.  Only base, string, table, math and utf8 are
 * opened (luaL_requiref, never luaL_openlibs); user code is loaded as text
 * only (mode "t").  The globals are in a base table no script can reach;
 * every script reads them through an environment that is an empty table
 * refusing every write (guards and actions share one; each module and profile
 * file has its own), and compiled code that would assign _ENV is refused, so
 * no evaluation can leave anything in it.  What modules and profiles keep
 * after loading is frozen (read-only proxies; functions that would assign an
 * upvalue outliving a call are refused, read from their bytecode by
 * luacode.c).
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
 * timing is not deterministic) and installs a copy of the metatable, so one
 * added later cannot make a weak table.  Assigning a global is an error.
 *
 * Limits per call: an instruction budget (count hook, re-armed with count 1
 * once tripped so a pcall in the script cannot swallow it; work inside Lua's C
 * library charged to it by sandbox_lib.c), a cap on the bytes the call
 * allocates (the lua_Alloc counts them; frees are not given back, so the
 * outcome does not depend on the collector) and a wall-clock backstop checked
 * in the hook.  xpcall's message handler is not run once a limit tripped.
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
#include <time.h>

#define MAX_DEPTH 200        /* nesting of tables converted to JSON */
#define EVENT_DATA_KEY 0     /* integer key of the event payload in the cache */
#define HOOK_STEP (1 << 30)  /* largest count given to lua_sethook */
#define TIME_STEP 10000      /* instructions between two looks at the clock */
#define MAX_MESSAGE 1024     /* bytes of a script's error message kept */

struct sbx {
  case_engine *e;
  lua_State *L;

  size_t used;       /* bytes the Lua heap holds */
  size_t grown, cap; /* during a call: bytes allocated so far, allowed (0: no cap) */
  int mem_tripped;

  long long left;    /* instructions left of the budget (LLONG_MAX: no budget) */
  int step;          /* count the hook was armed with */
  int instr_tripped;
  long long time_limit; /* wall-clock milliseconds per call (0: none) */
  int64_t t0;        /* monotonic ms at the first check of this call, 0 before */
  int time_tripped;
  int armed;         /* limits are armed (a call, or a module or profile loading) */

  case_call *call;   /* the running call, NULL outside calls */
  int guard;         /* the running call is a guard */
  int fail_rc;       /* code of a refused operation (sticky for the call) */
  char fail_msg[256];
  int cache_used;

  int base_ref;      /* the frozen globals every environment reads */
  int envmeta_ref;   /* metatable of environments: reads base, refuses writes */
  int env_ref;       /* the environment of guards and actions (always empty) */
  int case_ref, event_ref, params_ref, cache_ref, objmark_ref;
  int known_ref;     /* the sandbox's own functions (set): a module may keep these */
  int code_ok;       /* lc_analyse() reads this Lua's bytecode (checked at open) */
  long long json_left; /* values one conversion to JSON may still produce */
};

/* Keys (their addresses) no script can produce: FROZEN marks the metatable of
 * a read-only proxy (its value: the table the proxy reads, or true); MT_COPY
 * marks a metatable that setmetatable() copied (1, or 2 when the script
 * protected it with __metatable). */
static const char FROZEN = 0;
static const char MT_COPY = 0;

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

/* Counts the heap, and during a call the bytes it allocates: freed memory is
 * not given back to the call's allowance, so whether a call stays under the
 * cap does not depend on when the collector runs (which depends on every
 * earlier call on the engine). */
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
    if (s->grown + (nsize - old) > s->cap) {
      s->mem_tripped = 1;
      return NULL;
    }
    s->grown += nsize - old;
  }
  void *p = realloc(ptr, nsize);
  if (p) s->used = s->used - old + nsize;
  return p;
}

static void count_hook(lua_State *L, lua_Debug *ar);

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Has the call run past its time limit?  The clock starts at the first check
 * (the first TIME_STEP instructions or the first large charge). */
static int out_of_time(sbx *s)
{
  if (s->time_limit <= 0) return 0;
  int64_t now = mono_ms();
  if (!s->t0) s->t0 = now;
  return now - s->t0 > s->time_limit;
}

/* Once a limit tripped, every instruction fails: a pcall in the script
 * cannot swallow it (Redis re-arms its hook per line the same way). */
static int trip(lua_State *L, sbx *s, int *flag)
{
  *flag = 1;
  s->left = 0;
  lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
  return luaL_error(L, s->time_tripped ? "time limit exceeded" : "instruction budget exceeded");
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
  CASE_UNUSED(ar);
  sbx *s = get_sbx(L);
  if (s->instr_tripped || s->time_tripped)
    luaL_error(L, s->time_tripped ? "time limit exceeded" : "instruction budget exceeded");
  if (s->left != LLONG_MAX) s->left -= s->step;
  if (out_of_time(s)) trip(L, s, &s->time_tripped);
  if (s->left <= 0) trip(L, s, &s->instr_tripped);
  if (s->left < s->step) {
    s->step = (int)s->left;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, s->step);
  }
}

static void arm_limits(sbx *s)
{
  long long budget = s->e->limits[CASE_LIMIT_INSTRUCTIONS];
  long long mem = s->e->limits[CASE_LIMIT_MEMORY];
  s->instr_tripped = s->mem_tripped = s->time_tripped = 0;
  s->grown = 0;
  s->cap = mem > 0 ? (size_t)mem : 0;
  s->time_limit = s->e->limits[CASE_LIMIT_TIME];
  s->t0 = 0;
  s->armed = 1;
  s->left = budget > 0 ? budget : LLONG_MAX;
  if (budget > 0 || s->time_limit > 0) {
    long long step = s->left > HOOK_STEP ? HOOK_STEP : s->left;
    if (s->time_limit > 0 && step > TIME_STEP) step = TIME_STEP;
    s->step = (int)step;
    lua_sethook(s->L, count_hook, LUA_MASKCOUNT, s->step);
  } else {
    lua_sethook(s->L, NULL, 0, 0);
  }
}

static void disarm_limits(sbx *s)
{
  lua_sethook(s->L, NULL, 0, 0);
  s->cap = 0;
  s->time_limit = 0;
  s->armed = 0;
}

void sbx_charge(lua_State *L, double cost)
{
  sbx *s = get_sbx(L);
  if (!s->armed) return;
  if (s->instr_tripped || s->time_tripped)
    luaL_error(L, s->time_tripped ? "time limit exceeded" : "instruction budget exceeded");
  if (cost >= 1000.0 && out_of_time(s)) trip(L, s, &s->time_tripped);
  if (s->left == LLONG_MAX) return;
  if (cost >= (double)s->left) trip(L, s, &s->instr_tripped);
  s->left -= (long long)cost;
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
  /* A frozen module table: what its proxy reads. */
  if (lua_checkstack(L, 2) && lua_getmetatable(L, idx)) {
    if (lua_rawgetp(L, -1, &FROZEN) == LUA_TTABLE) {
      s->json_left++;
      json_t *j = to_json(L, s, -1, as_map, depth, err, errlen);
      lua_pop(L, 2);
      return j;
    }
    lua_pop(L, 2);
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
  /* Sorting costs n log n in C, on every call of pairs. */
  sbx_charge(L, (double)n * (n > 1 ? ceil(log2((double)n)) : 1.0) + (double)n);
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

/* The table a read-only proxy's metatable marks (its shadow, or the library
 * table it stands for) pushed, or nothing pushed and 0 when the table at idx
 * is not a proxy.  A proxy marked `true` (case, event, params, environments)
 * pushes nothing and returns 2. */
static int frozen_source(lua_State *L, int idx)
{
  if (!lua_getmetatable(L, idx)) return 0;
  int t = lua_rawgetp(L, -1, &FROZEN);
  if (t == LUA_TTABLE) {
    lua_remove(L, -2);
    return 1;
  }
  lua_pop(L, 2);
  return t == LUA_TNIL ? 0 : 2;
}

/*
 * setmetatable(t, mt) installs a copy of mt's fields, taken now: a field
 * added to mt later (say __mode, which would make t weak, and its contents
 * depend on the collector) never reaches t.  getmetatable(t) still gives mt
 * (the copy's __metatable), unless mt protects itself with its own
 * __metatable, which is then kept as Lua does.  __gc and __mode are refused.
 * A metatable is changed again only when this function installed it.
 */
static int l_setmetatable(lua_State *L)
{
  int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  lua_settop(L, 2);
  if (lua_getmetatable(L, 1)) {
    int mark = lua_rawgetp(L, -1, &MT_COPY) == LUA_TNUMBER ? (int)lua_tointeger(L, -1) : 0;
    if (mark != 1) return luaL_error(L, "cannot change a protected metatable");
    lua_pop(L, 2);
  }
  if (t == LUA_TNIL) {
    lua_setmetatable(L, 1);
    return 1;
  }
  int src = 2;
  if (frozen_source(L, 2) == 1) src = lua_gettop(L); /* a frozen table: what it holds */
  lua_newtable(L);
  int copy = lua_gettop(L);
  int protected = 0;
  double n = 0;
  lua_pushnil(L);
  while (lua_next(L, src)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      if (!strcmp(k, "__gc") || !strcmp(k, "__mode"))
        return luaL_error(L, "setmetatable: '%s' is not available in the sandbox", k);
      if (!strcmp(k, "__metatable")) protected = 1;
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, copy);
    n++;
  }
  sbx_charge(L, n);
  if (!protected) {
    lua_pushvalue(L, 2);
    lua_setfield(L, copy, "__metatable");
  }
  lua_pushinteger(L, protected ? 2 : 1);
  lua_rawsetp(L, copy, &MT_COPY);
  lua_pushvalue(L, copy);
  lua_setmetatable(L, 1);
  lua_settop(L, 1);
  return 1;
}

/* The message handler given to xpcall, wrapped: once a limit tripped (or a
 * write was refused) the script's handler is not run.  An error raised from
 * the count hook calls the handler inside the hook, where Lua runs no hooks,
 * so a handler that loops would never be stopped. */
static int handler_guard(lua_State *L)
{
  sbx *s = get_sbx(L);
  if (s->instr_tripped || s->time_tripped || s->mem_tripped || s->fail_rc) return 1;
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, 1);
  return 1;
}

/* upvalue 1: the base library's xpcall */
static int l_xpcall(lua_State *L)
{
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, handler_guard, 1);
  lua_replace(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
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
  lua_createtable(L, 0, 5);
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, name);
  lua_pushcclosure(L, readonly_newindex, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, proxy_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushstring(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pushvalue(L, idx);
  lua_rawsetp(L, -2, &FROZEN);
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
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *k = lua_tostring(L, 2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->base_ref);
    lua_pushvalue(L, 2);
    int t = lua_rawget(L, -2);
    if (t != LUA_TNIL || is_listed(reserved, k))
      return luaL_error(L, "'%s' is a sandbox global and cannot be assigned (every "
                        "evaluation sees the same, read-only globals)", k);
    return luaL_error(L, "assignment to undeclared global '%s' (use case.%s or a local)", k,
                      k);
  }
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

/* The slot of the declared field named by the string at idx, or -1: one
 * lookup in the definition's table of field names (made when it loaded). */
static int field_slot(lua_State *L, const case_def *d, int idx)
{
  if (!d) return -1;
  if (d->fields_ref <= 0) return field_index(d, lua_tostring(L, idx));
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, d->fields_ref);
  lua_pushvalue(L, idx);
  int slot = lua_rawget(L, -2) == LUA_TNUMBER ? (int)lua_tointeger(L, -1) : -1;
  lua_pop(L, 2);
  return slot;
}

static int case_index(lua_State *L)
{
  sbx *s = get_sbx(L);
  case_call *c = need_call(L, "case");
  const char *k = luaL_checkstring(L, 2);
  if (s->cache_used) {
    push_cache(L, s);
    if (lua_getfield(L, -1, k) != LUA_TNIL) return 1; /* a materialised table */
    lua_pop(L, 2);
  }
  /* The view: the field's slot, its value pushed as it is. */
  int slot = field_slot(L, c->def, 2);
  json_t *v = NULL;
  if (slot >= 0) v = c->data ? c->data->v[slot] : NULL;
  else if (c->data && c->data->extra) v = json_object_get(c->data->extra, k);
  if (!v) {
    if (slot < 0)
      return luaL_error(L, "case has no field '%s' (not declared under data:)", k);
    lua_pushnil(L);
    return 1;
  }
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
  int fi = field_slot(L, c->def, 2);
  if (fi < 0)
    return refuse(L, CASE_INVALID, "cannot assign case.%s: not a declared field "
                  "(declare it under data:)", k);
  json_t *j = field_json(L, s, &c->def->fields[fi], 3);
  if (!c->data) {
    json_decref(j);
    return refuse(L, CASE_MISUSE, "case data cannot be written here");
  }
  if (data_set_slot(c->data, fi, j, c->data_delta))
    return refuse(L, CASE_NOMEM, "out of memory");
  if (!s->cache_used && lua_type(L, 3) != LUA_TTABLE) return 0; /* nothing cached to drop */
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
  if (!strcmp(k, "data")) { /* the usual one first */
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
  } else if (!strcmp(k, "name")) {
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
    if (c->def->params[i].name[0] == k[0] && !strcmp(c->def->params[i].name, k))
      v = c->def->params[i].value;
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
  lua_pushboolean(L, 1);
  lua_rawsetp(L, -2, &FROZEN);
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
  json_t *v = c->data ? data_get(c->data, c->def, k) : NULL;
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
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->base_ref);
  lua_pushstring(L, k);
  int base = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  if (base)
    return luaL_error(L, "'%s' is a sandbox global and cannot be assigned (every "
                      "evaluation sees the same, read-only globals)", k);
  if (s->guard)
    return refuse(L, CASE_SCRIPT, "guards are pure: cannot assign %s in a guard", k);
  if (!is_identifier(k, 0)) return luaL_error(L, "'%s' is not a variable name", k);
  int fi = field_index(c->def, k);
  cs_field any = {(char *)k, TYPE_ANY, NULL, NULL, {0, 0}, 0, NULL, NULL, NULL};
  json_t *j = field_json(L, s, fi >= 0 ? &c->def->fields[fi] : &any, 3);
  if (!c->data) {
    json_decref(j);
    return refuse(L, CASE_MISUSE, "case data cannot be written here");
  }
  if (data_set(c->data, c->def, k, j, c->data_delta))
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
  long long lim = s->e->limits[CASE_LIMIT_PAYLOAD];
  if (lim > 0 && !json_is_null(payload)) {
    int64_t n = json_size(payload);
    if (n > lim) {
      json_decref(payload);
      return refuse(L, CASE_LIMIT, "%s: the payload takes %lld bytes as JSON, more than the "
                    "limit of %lld (CASE_LIMIT_PAYLOAD)", fn, (long long)n, lim);
    }
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

/* Pushes a new environment: an empty table that reads the base and refuses
 * every write.  Nothing can ever be stored in it (rawset is not available,
 * and compiled code that would assign _ENV is refused), so one environment
 * serves every evaluation as a fresh one would. */
static void push_env(lua_State *L, sbx *s)
{
  lua_newtable(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->envmeta_ref);
  lua_setmetatable(L, -2);
}

typedef struct dumpbuf {
  char *p;
  size_t n, cap;
  int failed;
} dumpbuf;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
  CASE_UNUSED(L);
  dumpbuf *b = ud;
  if (b->failed) return 1;
  if (b->n + sz > b->cap) {
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->n + sz) nc *= 2;
    char *q = realloc(b->p, nc);
    if (!q) {
      b->failed = 1;
      return 1;
    }
    b->p = q;
    b->cap = nc;
  }
  memcpy(b->p + b->n, p, sz);
  b->n += sz;
  return 0;
}

/* What the Lua function at idx can do (luacode.c).  0 and *rep filled (free it
 * with lc_report_free), or -1 (not a Lua function, unreadable bytecode, no
 * memory) with *rep empty.  Raises nothing. */
static int analyse(lua_State *L, sbx *s, int idx, lc_report *rep)
{
  memset(rep, 0, sizeof *rep);
  if (!s->code_ok || !lua_isfunction(L, idx) || lua_iscfunction(L, idx)) return -1;
  if (!lua_checkstack(L, 2)) return -1;
  dumpbuf b = {NULL, 0, 0, 0};
  lua_pushvalue(L, idx);
  int st = lua_dump(L, dump_writer, &b, 0);
  lua_pop(L, 1);
  int rc = (st != 0 || b.failed) ? -1 : lc_analyse(b.p, b.n, rep);
  free(b.p);
  return rc;
}

/* Records every function reachable from the table at idx (one level of
 * library tables) in the set at `known`: the sandbox's own functions, which a
 * module may keep in an upvalue (`local find = string.find`). */
static void add_known(lua_State *L, int known, int idx)
{
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_isfunction(L, -1)) {
      lua_pushvalue(L, -1);
      lua_pushboolean(L, 1);
      lua_rawset(L, known);
    } else if (lua_istable(L, -1) && lua_getmetatable(L, -1)) {
      /* a library proxy: the functions of the table it reads */
      if (lua_rawgetp(L, -1, &FROZEN) == LUA_TTABLE) {
        int lib = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, lib)) {
          if (lua_isfunction(L, -1)) {
            lua_pushvalue(L, -1);
            lua_pushboolean(L, 1);
            lua_rawset(L, known);
          }
          lua_pop(L, 1);
        }
      }
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
  }
}

/* Checks once that lc_analyse() reads this Lua's bytecode as it expects: an
 * assignment to an upvalue, a read of one, a literal raise(). */
static void self_test(lua_State *L, sbx *s)
{
  static const char src[] = "local a = 0\n"
                            "return function() a = 1 end, function() return a end,\n"
                            "  function() raise('zz') end\n";
  s->code_ok = 1;
  if (luaL_loadbufferx(L, src, sizeof src - 1, "=self-test", "t") != LUA_OK) {
    s->code_ok = 0;
    return;
  }
  lua_call(L, 0, 3);
  int top = lua_gettop(L);
  lc_report r;
  int ok = analyse(L, s, top - 2, &r) == 0 && r.nupvalues == 1 && r.assigned[0] == 2 &&
           r.names[0] && !strcmp(r.names[0], "a");
  lc_report_free(&r);
  ok = ok && analyse(L, s, top - 1, &r) == 0 && r.nupvalues == 1 && r.assigned[0] == 0 &&
       r.nraised == 0;
  lc_report_free(&r);
  ok = ok && analyse(L, s, top, &r) == 0 && r.nraised == 1 && !strcmp(r.raised[0], "zz") &&
       r.assigned[0] == 0;
  lc_report_free(&r);
  lua_settop(L, top - 3);
  s->code_ok = ok;
}

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
  lua_pop(L, 1);
  sbx_lib_install(L, G); /* work in C charged to the budget; a stable sort */

  /* The base: every global a script may read.  No script can reach it: an
   * environment reads it through its metatable's __index, which getmetatable
   * does not show. */
  lua_newtable(L);
  int base = lua_gettop(L);
  static const char *const keep[] = {
    "assert", "error", "getmetatable", "ipairs", "pcall", "rawequal", "rawget", "rawlen",
    "select", "tonumber", "type", "_VERSION", NULL};
  for (int i = 0; keep[i]; i++) {
    lua_getfield(L, G, keep[i]);
    lua_setfield(L, base, keep[i]);
  }
  lua_pushcfunction(L, l_pairs);
  lua_setfield(L, base, "pairs");
  lua_pushcfunction(L, l_tostring);
  lua_setfield(L, base, "tostring");
  lua_pushcfunction(L, l_setmetatable);
  lua_setfield(L, base, "setmetatable");
  lua_getfield(L, G, "xpcall");
  lua_pushcclosure(L, l_xpcall, 1);
  lua_setfield(L, base, "xpcall");
  static const char *const shared[] = {
    LUA_STRLIBNAME, LUA_TABLIBNAME, LUA_MATHLIBNAME, LUA_UTF8LIBNAME, NULL};
  for (int i = 0; shared[i]; i++) {
    lua_getfield(L, G, shared[i]);
    push_readonly(L, -1, shared[i]);
    lua_setfield(L, base, shared[i]);
    lua_pop(L, 1);
  }

  /* Protect the string metatable: getmetatable("") gives a read-only
   * stand-in whose __index is the read-only string table. */
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_createtable(L, 0, 1);
  lua_getfield(L, base, LUA_STRLIBNAME);
  lua_setfield(L, -2, "__index");
  push_readonly(L, -1, "string metatable");
  lua_setfield(L, -3, "__metatable");
  lua_pop(L, 3);

  push_proxy(L, "case", case_index, case_newindex, case_pairs);
  lua_pushvalue(L, -1);
  s->case_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_setfield(L, base, "case");
  push_proxy(L, "event", event_index, NULL, event_pairs);
  lua_pushvalue(L, -1);
  s->event_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_setfield(L, base, "event");
  push_proxy(L, "params", params_index, NULL, params_pairs);
  lua_pushvalue(L, -1);
  s->params_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_setfield(L, base, "params");

  lua_pushinteger(L, 0);
  lua_pushcclosure(L, l_raise_emit, 1);
  lua_setfield(L, base, "raise");
  lua_pushinteger(L, 1);
  lua_pushcclosure(L, l_raise_emit, 1);
  lua_setfield(L, base, "emit");
  /* store: deadline changes */
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, l_deadline_change, 1);
  lua_setfield(L, base, "extend_deadline");
  lua_pushinteger(L, 1);
  lua_pushcclosure(L, l_deadline_change, 1);
  lua_setfield(L, base, "set_deadline");

  /* What the base does not hold (now, today, module functions, refused
   * names) its own metatable answers. */
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, env_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, base);
  lua_pushvalue(L, base);
  s->base_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  /* The metatable of every environment: reads go to the base, writes are
   * refused, and the metatable itself is hidden and cannot be replaced. */
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, base);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, env_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushstring(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pushboolean(L, 1);
  lua_rawsetp(L, -2, &FROZEN);
  s->envmeta_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  push_env(L, s);
  s->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  lua_newtable(L);
  int known = lua_gettop(L);
  add_known(L, known, base);
  lua_pushvalue(L, known);
  s->known_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);

  lua_newtable(L);
  s->cache_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  s->objmark_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  self_test(L, s);
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

size_t sbx_heap_bytes(sbx *s)
{
  if (!s) return 0;
  lua_gc(s->L, LUA_GCCOLLECT);
  return s->used;
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
  c_loc loc; /* Lua's number formatting, strcoll and ctype follow the locale */
  c_locale_enter(&loc);
  int rc = lua_pcall(L, 1, 0, 0);
  c_locale_leave(&loc);
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
  c_loc loc; /* whatever the host's locale: tostring(1.5) is "1.5", '<' is bytewise */
  c_locale_enter(&loc);
  int st = lua_pcall(L, 1, 0, 0);
  c_locale_leave(&loc);
  disarm_limits(s);
  int rc = CASE_OK;
  if (st != LUA_OK) {
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error";
    if (s->instr_tripped)
      rc = eng_err(s->e, CASE_LIMIT, "%s: exceeded the instruction budget (%lld)", what,
                   s->e->limits[CASE_LIMIT_INSTRUCTIONS]);
    else if (s->time_tripped)
      rc = eng_err(s->e, CASE_LIMIT, "%s: exceeded the time limit (%lld ms)", what,
                   s->e->limits[CASE_LIMIT_TIME]);
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

/* ------------------------------------------------------------------ */
/* Freezing what modules and profiles keep                             */
/* ------------------------------------------------------------------ */

/*
 * A module's (or profile's) top level runs once; its functions are then called
 * by every case.  Whatever those functions can reach that outlives a call is
 * frozen before any case sees it:
 *
 *  - a table becomes a read-only proxy: an empty table whose metatable reads a
 *    shadow copy (whose tables are proxies in turn), refuses every write, gives
 *    its length and sorted pairs, and keeps the original's metamethods (called
 *    with the proxy, never the shadow);
 *  - a Lua function's code is read (luacode.c): if it, or a function nested in
 *    it, assigns one of its upvalues (a local of the file, or of a function
 *    that ran while the file loaded), loading fails, since the next call would
 *    see what the last one left; its table and function upvalues are frozen;
 *  - a C function may be kept only if it is one of the sandbox's own or has
 *    no upvalues: one with upvalues is an iterator with state (string.gmatch,
 *    pairs) and loading fails.
 *
 * Nothing mutable is left that one evaluation could change for the next.
 */
typedef struct freezer {
  job *j;
  int memo;         /* original -> frozen, for shared and cyclic values */
  const char *file; /* for messages */
  int depth;
} freezer;

static void freeze(lua_State *L, freezer *f, int idx, const char *what);

static int frozen_len(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
  return 1;
}

/* The __index function of a frozen table, called with the proxy (upvalue 2)
 * in place of the shadow. */
static int index_via_proxy(lua_State *L)
{
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushvalue(L, 2);
  lua_call(L, 2, 1);
  return 1;
}

static int is_known(lua_State *L, sbx *s, int idx)
{
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->known_ref);
  lua_pushvalue(L, idx);
  int t = lua_rawget(L, -2);
  lua_pop(L, 2);
  return t != LUA_TNIL;
}

static void freeze_function(lua_State *L, freezer *f, int idx, const char *what)
{
  sbx *s = f->j->s;
  lua_pushvalue(L, idx);
  lua_pushvalue(L, idx);
  lua_rawset(L, f->memo);
  if (lua_iscfunction(L, idx)) {
    if (is_known(L, s, idx) || !lua_getupvalue(L, idx, 1)) return;
    job_fail(L, f->j, CASE_SCRIPT, "%s: %s is a function with hidden state (an iterator made "
             "while the file ran, as string.gmatch and pairs return): it would carry state "
             "from one call to the next", f->file, what);
  }
  lc_report rep;
  if (analyse(L, s, idx, &rep) != 0)
    job_fail(L, f->j, CASE_SCRIPT, "%s: cannot check the code of %s (%s)", f->file, what,
             s->code_ok ? "unreadable bytecode or no memory"
                        : "the sandbox does not understand this Lua's bytecode");
  for (int i = 0; i < rep.nupvalues; i++) {
    if (!rep.assigned[i]) continue;
    char msg[sizeof f->j->msg];
    const char *nm = rep.names[i] ? rep.names[i] : "?";
    char line[24] = "";
    if (rep.assigned[i] > 0) snprintf(line, sizeof line, ":%d", rep.assigned[i]);
    snprintf(msg, sizeof msg, "%s%s: %s assigns '%s', a local of the file (or of a function "
             "run while it loaded), when it is called: that would carry state from one case "
             "to the next; use a local of the function, or case data", f->file, line, what,
             nm);
    lc_report_free(&rep);
    job_fail(L, f->j, CASE_SCRIPT, "%s", msg);
  }
  int nup = rep.nupvalues;
  lc_report_free(&rep);
  for (int i = 1; i <= nup; i++) {
    const char *name = lua_getupvalue(L, idx, i);
    if (!name) break;
    int t = lua_type(L, -1);
    if (t == LUA_TTABLE || t == LUA_TFUNCTION) {
      char sub[96];
      snprintf(sub, sizeof sub, "'%.80s'", *name ? name : "?");
      freeze(L, f, -1, sub);
      if (!lua_rawequal(L, -1, -2)) lua_setupvalue(L, idx, i);
      else lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

static void freeze_table(lua_State *L, freezer *f, int idx, const char *what)
{
  if (++f->depth > MAX_DEPTH)
    job_fail(L, f->j, CASE_SCRIPT, "%s: %s: tables nested more than %d levels deep",
             f->file, what, MAX_DEPTH);
  luaL_checkstack(L, 16, "tables nested too deeply");
  lua_newtable(L);
  int proxy = lua_gettop(L);
  lua_newtable(L);
  int shadow = lua_gettop(L);
  lua_pushvalue(L, idx);
  lua_pushvalue(L, proxy);
  lua_rawset(L, f->memo);
  lua_createtable(L, 0, 8);
  int meta = lua_gettop(L);
  lua_pushvalue(L, shadow);
  lua_setfield(L, meta, "__index");
  /* the name in messages: 'BRONNEN' is read-only (cannot set BRONNEN.x) */
  size_t wl = strlen(what);
  if (wl >= 2 && what[0] == '\'' && what[wl - 1] == '\'') lua_pushlstring(L, what + 1, wl - 2);
  else lua_pushstring(L, what);
  lua_pushcclosure(L, readonly_newindex, 1);
  lua_setfield(L, meta, "__newindex");
  lua_pushvalue(L, shadow);
  lua_pushcclosure(L, frozen_len, 1);
  lua_setfield(L, meta, "__len");
  lua_pushcfunction(L, proxy_pairs);
  lua_setfield(L, meta, "__pairs");
  lua_pushliteral(L, "locked");
  lua_setfield(L, meta, "__metatable");
  lua_pushvalue(L, shadow);
  lua_rawsetp(L, meta, &FROZEN);

  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int v = lua_gettop(L);
    freeze(L, f, v - 1, what);
    freeze(L, f, v, what);
    lua_rawset(L, shadow);
    lua_pop(L, 1);
  }
  if (lua_getmetatable(L, idx)) {
    int m = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, m)) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        const char *k = lua_tostring(L, -2);
        if (!strcmp(k, "__index")) {
          freeze(L, f, -1, what);
          if (lua_isfunction(L, -1)) {
            lua_pushvalue(L, proxy);
            lua_pushcclosure(L, index_via_proxy, 2);
          }
          lua_createtable(L, 0, 1);
          lua_insert(L, -2);
          lua_setfield(L, -2, "__index");
          lua_setmetatable(L, shadow);
        } else if (strcmp(k, "__newindex") && strcmp(k, "__gc") && strcmp(k, "__mode")) {
          freeze(L, f, -1, what);
          lua_setfield(L, meta, k);
        }
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pushvalue(L, meta);
  lua_setmetatable(L, proxy);
  lua_settop(L, proxy);
  f->depth--;
}

/* Pushes the frozen form of the value at idx. */
static void freeze(lua_State *L, freezer *f, int idx, const char *what)
{
  idx = lua_absindex(L, idx);
  int t = lua_type(L, idx);
  if (t == LUA_TTABLE || t == LUA_TFUNCTION) {
    lua_pushvalue(L, idx);
    if (lua_rawget(L, f->memo) != LUA_TNIL) return;
    lua_pop(L, 1);
    if (t == LUA_TTABLE) {
      if (lua_getmetatable(L, idx)) {
        int marked = lua_rawgetp(L, -1, &FROZEN) != LUA_TNIL;
        lua_pop(L, 2);
        if (marked) { /* already read-only: a library, case, an environment */
          lua_pushvalue(L, idx);
          return;
        }
      }
      freeze_table(L, f, idx, what);
      return;
    }
    freeze_function(L, f, idx, what);
  }
  lua_pushvalue(L, idx);
}

/* Appends the event names the Lua function at idx raises literally to d. */
static void note_raises(lua_State *L, sbx *s, int idx, case_def *d)
{
  lc_report rep;
  if (!d || analyse(L, s, idx, &rep) != 0) return;
  for (int i = 0; i < rep.nraised; i++) {
    int seen = 0;
    for (int k = 0; k < d->nraised && !seen; k++) seen = !strcmp(d->raised[k], rep.raised[i]);
    if (seen) continue;
    char **v = realloc(d->raised, (size_t)(d->nraised + 1) * sizeof *v);
    if (!v) break;
    d->raised = v;
    v[d->nraised] = rep.raised[i];
    rep.raised[i] = NULL; /* handed over */
    d->nraised++;
  }
  lc_report_free(&rep);
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

/* Loads and runs a Lua file in the sandbox under the limits, in an
 * environment of its own; pushes the table it returns (raises otherwise).
 * The literal raise() names of a module file are noted on `d` (may be NULL). */
static void run_file(lua_State *L, job *j, const char *path, const char *text, size_t len,
                     const char *kind, case_def *d)
{
  sbx *s = j->s;
  lua_pushfstring(L, "@%s", path);
  int st = luaL_loadbufferx(L, text, len, lua_tostring(L, -1), "t");
  lua_remove(L, -2);
  if (st != LUA_OK) {
    if (st == LUA_ERRMEM) lua_error(L);
    job_fail(L, j, CASE_SCRIPT, "%s does not compile: %s", kind, lua_tostring(L, -1));
  }
  note_raises(L, s, -1, d);
  push_env(L, s);
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
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->base_ref);
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
  lua_newtable(L);
  freezer fr = {j, lua_gettop(L), path, 0};
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
    char what[96];
    snprintf(what, sizeof what, "function '%.80s'", k);
    freeze(L, &fr, -1, what); /* the same function, its upvalues frozen */
    lua_pop(L, 1);
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, dst);
  }
  lua_pop(L, 1); /* the memo */
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
    run_file(L, &m->j, m->d->modules[i], m->texts[i], m->lens[i], "lua module", m->d);
    copy_functions(L, &m->j, -1, dst, owners, i, m->d->modules, m->d->modules[i]);
    lua_pop(L, 1);
  }
  lua_pushvalue(L, dst);
  m->d->functions_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* The definition's field names -> slot, for the case view (case_index). */
static int do_fieldmap(lua_State *L)
{
  case_def *d = lua_touserdata(L, 1);
  lua_createtable(L, 0, d->nfields);
  for (int i = 0; i < d->nfields; i++) {
    lua_pushinteger(L, i);
    lua_setfield(L, -2, d->fields[i].name);
  }
  d->fields_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

int sbx_load_modules(sbx *s, case_def *d)
{
  if (!s || !d) return CASE_MISUSE;
  d->functions_ref = -1;
  if (d->fields_ref < 0 && d->nfields > 0) {
    int top = lua_gettop(s->L);
    int st = protect(s, do_fieldmap, d);
    lua_settop(s->L, top);
    if (st != LUA_OK) {
      d->fields_ref = -1;
      return eng_err(s->e, CASE_NOMEM, "out of memory");
    }
  }
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
  run_file(L, &p->j, p->path, p->text, p->len, "location profile", NULL);
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
    /* Compiled code runs again for every case: it may not assign its _ENV
     * (the one upvalue a chunk has), which the next evaluation would see. */
    lc_report rep;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c.ref);
    if (analyse(L, s, -1, &rep) != 0) {
      rc = eng_err_at(s->e, CASE_SCRIPT, file, script->pos, "%s cannot be checked (%s)", what,
                      s->code_ok ? "unreadable bytecode or no memory"
                                 : "the sandbox does not understand this Lua's bytecode");
    } else if (rep.nupvalues > 0 && rep.assigned[0]) {
      cs_pos at = script->pos;
      if (rep.assigned[0] > pad) at.line = rep.assigned[0];
      rc = eng_err_at(s->e, CASE_SCRIPT, file, at, "%s assigns _ENV: the environment is the "
                      "same for every case and cannot be replaced (use local _ENV = ...)",
                      what);
    }
    lc_report_free(&rep);
    if (rc == CASE_OK && !is_guard) note_raises(L, s, -1, d);
    lua_pop(L, 1);
    if (rc == CASE_OK) script->ref = c.ref;
    else luaL_unref(L, LUA_REGISTRYINDEX, c.ref);
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
  if (!strcmp(name, "_ENV")) return 1;                             /* the environment itself */
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
        if (data_set(c->data, c->def, name, j, c->data_delta))
          refuse(L, CASE_NOMEM, "out of memory");
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return;
  }
  /* The fields the cache holds (a few), written back in declaration order. */
  int slots[32], n = 0, all = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) continue;
    int slot = field_slot(L, c->def, -1);
    if (slot < 0) continue;
    if (n == (int)(sizeof slots / sizeof slots[0])) all = 1;
    else slots[n++] = slot;
  }
  if (!all) {
    for (int i = 1; i < n; i++) /* insertion sort: n is small */
      for (int k = i; k > 0 && slots[k - 1] > slots[k]; k--) {
        int x = slots[k];
        slots[k] = slots[k - 1];
        slots[k - 1] = x;
      }
  } else {
    n = c->def->nfields; /* many: every field, in order */
  }
  for (int i = 0; i < n; i++) {
    int slot = all ? i : slots[i];
    const cs_field *f = &c->def->fields[slot];
    if (lua_getfield(L, t, f->name) == LUA_TTABLE) {
      json_t *j = field_json(L, s, f, -1);
      if (data_set_slot(c->data, slot, j, c->data_delta))
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
  if (st == LUA_OK && !s->fail_rc && !s->instr_tripped && !s->mem_tripped &&
      !s->time_tripped) {
    if (result) *result = j.result;
  } else {
    const char *what = is_guard ? "guard" : "action";
    const char *file = file_of(call->def);
    const char *m = st != LUA_OK ? lua_tostring(L, -1) : s->fail_msg;
    char desc[64];
    cs_pos at = sc->pos;
    describe(sc, desc, sizeof desc);
    char *text;
    if (s->instr_tripped || s->mem_tripped || s->time_tripped) {
      rc = CASE_LIMIT;
      if (s->instr_tripped)
        text = msgf("%s:%d:%d: %s '%s' exceeded the instruction budget (%lld)", file, at.line,
                    at.col, what, desc, s->e->limits[CASE_LIMIT_INSTRUCTIONS]);
      else if (s->time_tripped)
        text = msgf("%s:%d:%d: %s '%s' exceeded the time limit (%lld ms)", file, at.line,
                    at.col, what, desc, s->e->limits[CASE_LIMIT_TIME]);
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
      /* A script's own message (error(string.rep(...))) is cut: it ends up in
       * case_errmsg() and in the store's refused-event rows. */
      size_t ml = strlen(m), keep = ml > MAX_MESSAGE ? MAX_MESSAGE : ml;
      while (keep < ml && keep > 0 && ((unsigned char)m[keep] & 0xC0) == 0x80) keep--;
      text = msgf("%s:%d:%d: %s '%s' failed: %.*s%s", file, at.line, at.col, what, desc,
                  (int)keep, m, keep < ml ? "..." : "");
    }
    free(call->errmsg);
    call->errmsg = text;
  }
  s->instr_tripped = s->mem_tripped = s->time_tripped = 0;
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
