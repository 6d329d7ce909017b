/*
 * lcase.c — the Lua 5.4 module `libcase` (require "libcase").
 *
 * Handles are full userdata with metatables (__gc, __close, __tostring):
 *
 *   libcase.engine   case_engine; uservalue 1 = the notification function (or nil)
 *   libcase.store    case_store; uservalue 1 = its engine (keeps it alive)
 *   libcase.def      a definition; uservalue 1 = its engine
 *   libcase.case     a case, named by id (the engine owns the case and may free and
 *                    restore it, so the handle looks it up on every use);
 *                    uservalue 1 = its engine, 2 = its store (or nil)
 *   libcase.coverage case_coverage (reference-counted by the library: engines
 *                    it is set on keep it alive)
 *
 * Rules kept throughout (docs/lua.md says why):
 *  - no global or static mutable state: everything lives on the handles and in
 *    the Lua registry of the state that loaded the module;
 *  - no Lua error (longjmp) crosses a libcase frame: arguments are converted and
 *    checked before the library is called, callbacks from the library run Lua
 *    only under lua_pcall, and the library is never re-entered from them;
 *  - no Lua error skips a free: memory the binding owns while Lua may raise sits
 *    in a "box" userdata whose __gc frees it.
 *
 * Library failures are raised as a libcase.error table {code=, rc=, message=,
 * file=, line=, column=} with a __tostring.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>

#include "libcase/libcase.h"
#include "libcase/scenario.h"
#include "libcase/store.h"

#define MT_ENGINE "libcase.engine"
#define MT_STORE "libcase.store"
#define MT_DEF "libcase.def"
#define MT_CASE "libcase.case"
#define MT_ERROR "libcase.error"
#define MT_BOX "libcase.box"
#define MT_ARRAY "libcase.array"
#define MT_COVERAGE "libcase.coverage"

/* Deepest JSON or Lua table nesting converted either way. */
#define MAX_DEPTH 200
/* Journal rows read per case_store_follow() call by the feed iterator. */
#define FEED_BATCH 64

static const char *const CODE_NAMES[] = {
    "ok",         "error",   "invalid", "nomem",    "misuse", "notfound",
    "exists",     "nothandled", "denied", "guard",  "script", "limit",
    "conflict",   "io",      "corrupt", "busy",     "done"};
#define NCODES ((int)(sizeof CODE_NAMES / sizeof CODE_NAMES[0]))

struct lstore;

typedef struct lengine {
  case_engine *e;
  struct lstore *stores; /* open stores of this engine, closed before it */
  int busy;              /* inside a library call that may call back */
  lua_State *L;          /* during such a call: the state to call back into */
  int notify_idx;        /* stack index of the notification function, 0 for none */
  int err_idx;           /* stack index of the first callback error (nil if none) */
} lengine;

typedef struct lstore {
  case_store *s;
  lengine *eng;
  struct lstore *next;
} lstore;

typedef struct ldef {
  const case_def *d;
  lengine *eng;
} ldef;

typedef struct lcase {
  lengine *eng;
  lstore *st; /* NULL: an engine case */
  char id[];
} lcase;

typedef struct box {
  void *p;
  void (*fn)(void *);
} box;

/* ------------------------------------------------------------------ boxes */

static int box_gc(lua_State *L) {
  box *b = luaL_checkudata(L, 1, MT_BOX);
  if (b->p) b->fn(b->p);
  b->p = NULL;
  return 0;
}

/* Pushes an empty box; call before acquiring what it will own. */
static box *box_new(lua_State *L) {
  box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->p = NULL;
  b->fn = NULL;
  luaL_setmetatable(L, MT_BOX);
  return b;
}

static void box_set(box *b, void *p, void (*fn)(void *)) {
  b->p = p;
  b->fn = fn;
}

static void box_free(box *b) {
  if (b->p) b->fn(b->p);
  b->p = NULL;
}

static void json_free(void *p) { json_decref(p); }
static void lib_free(void *p) { case_free(p); }

/* ------------------------------------------------------------------ errors */

static const char *code_name(int rc) {
  return rc >= 0 && rc < NCODES ? CODE_NAMES[rc] : "error";
}

/* Pushes an error object. */
static void push_error(lua_State *L, int rc, const char *msg, const case_engine *e) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, code_name(rc));
  lua_setfield(L, -2, "code");
  lua_pushinteger(L, rc);
  lua_setfield(L, -2, "rc");
  lua_pushstring(L, msg && *msg ? msg : case_errstr(rc));
  lua_setfield(L, -2, "message");
  const char *file = NULL;
  int line = 0, column = 0;
  if (e && case_errpos(e, &file, &line, &column) == CASE_OK) {
    if (file) {
      lua_pushstring(L, file);
      lua_setfield(L, -2, "file");
    }
    lua_pushinteger(L, line);
    lua_setfield(L, -2, "line");
    lua_pushinteger(L, column);
    lua_setfield(L, -2, "column");
  }
  luaL_setmetatable(L, MT_ERROR);
}

/* Raises the engine's last error for result `rc`.  Free everything first. */
static int raise_rc(lua_State *L, const lengine *eng, int rc) {
  push_error(L, rc, eng && eng->e ? case_errmsg(eng->e) : NULL, eng ? eng->e : NULL);
  return lua_error(L);
}

/* Raises an error object with a message of the binding's own. */
static int raise_msg(lua_State *L, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const char *msg = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  push_error(L, rc, msg, NULL);
  return lua_error(L);
}

static int error_tostring(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "message");
  lua_getfield(L, 1, "code");
  lua_pushfstring(L, "libcase: %s (%s)", luaL_optstring(L, -2, "?"), luaL_optstring(L, -1, "?"));
  return 1;
}

/* ------------------------------------------------------------------ JSON -> Lua */

static void push_json(lua_State *L, json_t *v, int depth, int in_array) {
  luaL_checkstack(L, 4, "JSON nested too deeply");
  if (depth > MAX_DEPTH) raise_msg(L, CASE_LIMIT, "JSON nested deeper than %d", MAX_DEPTH);
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    lua_createtable(L, 0, (int)json_object_size(v));
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
      if (json_is_null(x)) continue;
      push_json(L, x, depth + 1, 0);
      lua_setfield(L, -2, k);
    }
    break;
  }
  case JSON_ARRAY: {
    size_t n = json_array_size(v);
    lua_createtable(L, n > INT32_MAX ? 0 : (int)n, 0);
    for (size_t i = 0; i < n; i++) {
      push_json(L, json_array_get(v, i), depth + 1, 1);
      lua_seti(L, -2, (lua_Integer)i + 1);
    }
    luaL_setmetatable(L, MT_ARRAY);
    break;
  }
  case JSON_STRING:
    lua_pushlstring(L, json_string_value(v), json_string_length(v));
    break;
  case JSON_INTEGER:
    lua_pushinteger(L, (lua_Integer)json_integer_value(v));
    break;
  case JSON_REAL:
    lua_pushnumber(L, json_real_value(v));
    break;
  case JSON_TRUE:
    lua_pushboolean(L, 1);
    break;
  case JSON_FALSE:
    lua_pushboolean(L, 0);
    break;
  default:
    if (in_array)
      lua_pushlightuserdata(L, NULL); /* libcase.null */
    else
      lua_pushnil(L);
    break;
  }
}

/* Pushes the Lua value of JSON text `s` (NULL gives nil). */
static void push_json_text(lua_State *L, const char *s) {
  if (!s) {
    lua_pushnil(L);
    return;
  }
  box *b = box_new(L);
  json_error_t err;
  json_t *v = json_loads(s, JSON_DECODE_ANY, &err);
  if (!v) raise_msg(L, CASE_INVALID, "bad JSON at line %d column %d: %s", err.line, err.column,
                    err.text);
  box_set(b, v, json_free);
  push_json(L, v, 0, 0);
  box_free(b);
  lua_remove(L, -2);
}

/* Pushes the Lua value of caller-owned library JSON `s` and frees it, also on errors. */
static void push_lib_json(lua_State *L, box *b) {
  const char *s = b->p;
  push_json_text(L, s);
  box_free(b);
}

/* ------------------------------------------------------------------ Lua -> JSON */

static int is_array_mt(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, MT_ARRAY);
  int r = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return r;
}

/* A new JSON value for the Lua value at `idx`: containers come back empty. */
static json_t *json_shell(lua_State *L, int idx, int *kind) {
  *kind = 0;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    return json_null();
  case LUA_TBOOLEAN:
    return json_boolean(lua_toboolean(L, idx));
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) return json_integer((json_int_t)lua_tointeger(L, idx));
    if (!isfinite(lua_tonumber(L, idx)))
      raise_msg(L, CASE_INVALID, "cannot convert %s to JSON", lua_tostring(L, idx));
    return json_real(lua_tonumber(L, idx));
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    json_t *v = json_stringn(s, n);
    if (!v) raise_msg(L, CASE_INVALID, "string is not UTF-8 text: cannot convert it to JSON");
    return v;
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) return json_null();
    break;
  case LUA_TTABLE: {
    if (is_array_mt(L, idx)) {
      *kind = 1;
      return json_array();
    }
    lua_Integer n = 0, count = 0;
    int strings = 0, others = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lua_pop(L, 1);
      count++;
      if (lua_type(L, -1) == LUA_TSTRING)
        strings++;
      else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0) {
        if (lua_tointeger(L, -1) > n) n = lua_tointeger(L, -1);
      } else
        others++;
    }
    if (others || (strings && strings != count))
      raise_msg(L, CASE_INVALID, "cannot convert a table with mixed keys to JSON");
    if (count > 0 && !strings) {
      if (n != count) raise_msg(L, CASE_INVALID, "cannot convert a sparse array to JSON");
      *kind = 1;
      return json_array();
    }
    *kind = 2;
    return json_object();
  }
  default:
    break;
  }
  raise_msg(L, CASE_INVALID, "cannot convert a %s to JSON", luaL_typename(L, idx));
  return NULL;
}

static void fill_json(lua_State *L, int idx, json_t *c, int kind, int depth);

/* Converts the value on top of the stack, adds it to container `parent` (under
 * `key` for an object) and pops it.  Everything made is owned by `parent`. */
static void add_json(lua_State *L, json_t *parent, const char *key, int depth) {
  if (depth > MAX_DEPTH) raise_msg(L, CASE_LIMIT, "table nested deeper than %d", MAX_DEPTH);
  int kind;
  int idx = lua_gettop(L);
  json_t *v = json_shell(L, idx, &kind);
  if (!v) raise_msg(L, CASE_NOMEM, "out of memory");
  int r = key ? json_object_set_new(parent, key, v) : json_array_append_new(parent, v);
  if (r != 0) raise_msg(L, CASE_NOMEM, "out of memory");
  if (kind) fill_json(L, idx, v, kind, depth + 1);
  lua_pop(L, 1);
}

static void fill_json(lua_State *L, int idx, json_t *c, int kind, int depth) {
  luaL_checkstack(L, 4, "table nested too deeply");
  if (kind == 1) {
    lua_Integer n = (lua_Integer)luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, idx, i);
      add_json(L, c, NULL, depth);
    }
    return;
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = lua_tostring(L, -2); /* keys are strings: checked */
    add_json(L, c, k, depth);
  }
}

/* Converts the Lua value at `idx` to compact JSON text held by a new box pushed
 * on the stack; returns the text. */
static const char *to_json(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  box *b = box_new(L);
  int kind;
  json_t *root = json_shell(L, idx, &kind);
  if (!root) raise_msg(L, CASE_NOMEM, "out of memory");
  box_set(b, root, json_free);
  if (kind) fill_json(L, idx, root, kind, 1);
  char *text = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
  box_free(b);
  if (!text) raise_msg(L, CASE_NOMEM, "out of memory");
  box_set(b, text, free);
  return text;
}

/* Pushes opts[name] without metamethods, so that strings read from an options
 * table stay alive as long as the table holds them. */
static int rawfield(lua_State *L, int opts, const char *name) {
  lua_pushstring(L, name);
  return lua_rawget(L, opts);
}

/* JSON text from options table `opts`: field `name` as a Lua value or
 * `name_json` as text.  Pushes one value (a box or nil) so that the stack
 * shape is the same either way; returns NULL when neither is given. */
static const char *opt_json(lua_State *L, int opts, const char *name) {
  if (opts == 0) {
    lua_pushnil(L);
    return NULL;
  }
  char key[64];
  snprintf(key, sizeof key, "%s_json", name);
  if (rawfield(L, opts, key) != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "option '%s' must be a string", key), NULL;
    return lua_tostring(L, -1);
  }
  lua_pop(L, 1);
  if (rawfield(L, opts, name) == LUA_TNIL) return NULL; /* leaves the nil */
  const char *s = to_json(L, -1);
  lua_remove(L, -2);
  return s;
}

static const char *opt_string(lua_State *L, int opts, const char *name, const char *def) {
  if (opts == 0) return def;
  rawfield(L, opts, name);
  const char *s = def;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "option '%s' must be a string", name);
    s = lua_tostring(L, -1);
  }
  lua_pop(L, 1); /* the string stays alive: the options table holds it */
  return s;
}

static lua_Integer opt_integer(lua_State *L, int opts, const char *name, lua_Integer def) {
  if (opts == 0) return def;
  rawfield(L, opts, name);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "option '%s' must be an integer", name);
  }
  lua_pop(L, 1);
  return v;
}

static int opt_bool(lua_State *L, int opts, const char *name, int def) {
  if (opts == 0) return def;
  rawfield(L, opts, name);
  int v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* The options table at `idx` (0 if absent). */
static int opt_table(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  return lua_absindex(L, idx);
}

/* A time argument: an integer count of UTC seconds; absent means now. */
static int64_t opt_time(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return (int64_t)time(NULL);
  return (int64_t)luaL_checkinteger(L, idx);
}

/* ------------------------------------------------------------------ engine */

static lengine *check_engine(lua_State *L, int idx) {
  lengine *eng = luaL_checkudata(L, idx, MT_ENGINE);
  if (!eng->e) raise_msg(L, CASE_MISUSE, "the engine is closed");
  if (eng->busy)
    raise_msg(L, CASE_MISUSE, "the engine is busy: a notification function may not call it");
  return eng;
}

/* Notification from the library.  Runs the host's function under lua_pcall:
 * nothing here may raise. */
typedef struct notify_args {
  const char *case_id, *name, *payload;
} notify_args;

static int notify_call(lua_State *L) {
  notify_args *a = lua_touserdata(L, 2);
  lua_pushvalue(L, 1);
  lua_pushstring(L, a->case_id);
  lua_pushstring(L, a->name);
  push_json_text(L, a->payload);
  lua_call(L, 3, 0);
  return 0;
}

static void on_notify(void *ud, const case_instance *c, const char *name, const char *payload) {
  lengine *eng = ud;
  lua_State *L = eng->L;
  if (!L || !eng->notify_idx) return;
  if (!lua_isnil(L, eng->err_idx)) return; /* an earlier one failed: skip the rest */
  if (!lua_checkstack(L, 4)) return;
  notify_args a = {case_instance_id(c), name, payload};
  lua_pushcfunction(L, notify_call);
  lua_pushvalue(L, eng->notify_idx);
  lua_pushlightuserdata(L, &a);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_replace(L, eng->err_idx);
}

/* Before a library call that may notify: pushes the notification function and
 * an error slot.  engine_end() after the call, before anything may raise. */
static void engine_begin(lua_State *L, lengine *eng, int engine_idx) {
  luaL_checkstack(L, 8, NULL);
  lua_getiuservalue(L, engine_idx, 1);
  eng->notify_idx = lua_isnil(L, -1) ? 0 : lua_gettop(L);
  lua_pushnil(L);
  eng->err_idx = lua_gettop(L);
  eng->L = L;
  eng->busy = 1;
}

static void engine_end(lengine *eng) {
  eng->busy = 0;
  eng->L = NULL;
  eng->notify_idx = 0;
}

/* After engine_end() and frees: raises a notification function's error. */
static void raise_notify_error(lua_State *L, int err_idx) {
  if (!lua_isnil(L, err_idx)) {
    lua_pushvalue(L, err_idx);
    lua_error(L);
  }
}

static void close_stores(lengine *eng) {
  while (eng->stores) {
    lstore *st = eng->stores;
    eng->stores = st->next;
    case_store_close(st->s);
    st->s = NULL;
    st->next = NULL;
  }
}

static int engine_close(lua_State *L) {
  lengine *eng = luaL_checkudata(L, 1, MT_ENGINE);
  if (eng->busy) raise_msg(L, CASE_MISUSE, "the engine is busy: cannot close it now");
  close_stores(eng);
  case_engine_close(eng->e);
  eng->e = NULL;
  return 0;
}

static int engine_tostring(lua_State *L) {
  lengine *eng = luaL_checkudata(L, 1, MT_ENGINE);
  lua_pushfstring(L, "libcase.engine (%s)", eng->e ? "open" : "closed");
  return 1;
}

static int l_open(lua_State *L) {
  int opts = opt_table(L, 1);
  lengine *eng = lua_newuserdatauv(L, sizeof *eng, 1);
  memset(eng, 0, sizeof *eng);
  luaL_setmetatable(L, MT_ENGINE);
  int rc = case_engine_open(&eng->e);
  if (rc != CASE_OK) raise_msg(L, rc, "cannot open an engine: %s", case_errstr(rc));
  case_engine_set_notify(eng->e, on_notify, eng);
  const char *root = opt_string(L, opts, "lua_root", NULL);
  if (root && (rc = case_engine_set_lua_root(eng->e, root)) != CASE_OK) raise_rc(L, eng, rc);
  return 1;
}

static int engine_set_lua_root(lua_State *L) {
  lengine *eng = check_engine(L, 1);
  int rc = case_engine_set_lua_root(eng->e, luaL_checkstring(L, 2));
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  lua_settop(L, 1);
  return 1;
}

static int engine_add_holiday(lua_State *L) {
  lengine *eng = check_engine(L, 1);
  int rc = case_engine_add_holiday(eng->e, luaL_checkstring(L, 2), luaL_optstring(L, 3, NULL));
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  lua_settop(L, 1);
  return 1;
}

static int engine_limit(lua_State *L) {
  static const char *const names[] = {"instructions", "memory", "microsteps", "depth",
                                      "expiries", "time", "payload", "data", NULL};
  lengine *eng = check_engine(L, 1);
  int which = luaL_checkoption(L, 2, NULL, names);
  lua_Integer v = luaL_optinteger(L, 3, -1);
  lua_pushinteger(L, (lua_Integer)case_engine_limit(eng->e, which, (long long)v));
  return 1;
}

static int engine_load_profile(lua_State *L) {
  lengine *eng = check_engine(L, 1);
  int rc = case_engine_load_profile(eng->e, luaL_checkstring(L, 2), luaL_checkstring(L, 3));
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  lua_settop(L, 1);
  return 1;
}

static void push_def(lua_State *L, int engine_idx, const case_def *d) {
  lengine *eng = lua_touserdata(L, engine_idx);
  ldef *ld = lua_newuserdatauv(L, sizeof *ld, 1);
  ld->d = d;
  ld->eng = eng;
  luaL_setmetatable(L, MT_DEF);
  lua_pushvalue(L, engine_idx);
  lua_setiuservalue(L, -2, 1);
}

static int engine_load(lua_State *L) {
  lengine *eng = check_engine(L, 1);
  const char *path = luaL_checkstring(L, 2);
  const case_def *d = NULL;
  int rc = case_def_load_file(eng->e, path, &d);
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  push_def(L, 1, d);
  return 1;
}

static int engine_load_string(lua_State *L) {
  lengine *eng = check_engine(L, 1);
  size_t n;
  const char *text = luaL_checklstring(L, 2, &n);
  const char *name = luaL_optstring(L, 3, NULL);
  const case_def *d = NULL;
  int rc = case_def_load_string(eng->e, text, n, name, &d);
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  push_def(L, 1, d);
  return 1;
}

static int engine_find(lua_State *L) {
  lengine *eng = check_engine(L, 1);
  const case_def *d = case_def_find(eng->e, luaL_checkstring(L, 2), (int)luaL_optinteger(L, 3, 0));
  if (!d) {
    lua_pushnil(L);
    return 1;
  }
  push_def(L, 1, d);
  return 1;
}

static int engine_on_notify(lua_State *L) {
  check_engine(L, 1);
  if (!lua_isnil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 1);
  lua_settop(L, 1);
  return 1;
}

/* Pushes a case handle for `id`: engine at engine_idx, store at store_idx (0: none). */
static void push_case(lua_State *L, int engine_idx, int store_idx, const char *id) {
  size_t n = strlen(id);
  lcase *c = lua_newuserdatauv(L, sizeof *c + n + 1, 2);
  c->eng = lua_touserdata(L, engine_idx);
  c->st = store_idx ? lua_touserdata(L, store_idx) : NULL;
  memcpy(c->id, id, n + 1);
  luaL_setmetatable(L, MT_CASE);
  lua_pushvalue(L, engine_idx);
  lua_setiuservalue(L, -2, 1);
  if (store_idx) {
    lua_pushvalue(L, store_idx);
    lua_setiuservalue(L, -2, 2);
  }
}

static ldef *check_def(lua_State *L, int idx, lengine *eng) {
  ldef *ld = luaL_checkudata(L, idx, MT_DEF);
  if (!ld->eng->e) raise_msg(L, CASE_MISUSE, "the definition's engine is closed");
  if (eng && ld->eng != eng)
    raise_msg(L, CASE_MISUSE, "the definition belongs to another engine");
  return ld;
}

/* engine:create(def, id [, {location=, data= | data_json=, at=}]) */
/* A new case's id at idx: a string case_id_check() accepts.  Lua strings may
 * hold NUL bytes, which C would cut the id at: refused too. */
static const char *check_new_id(lua_State *L, int idx) {
  size_t len;
  const char *id = luaL_checklstring(L, idx, &len);
  char why[160];
  if (strlen(id) != len) raise_msg(L, CASE_INVALID, "the case id holds a NUL byte");
  if (case_id_check(id, why, sizeof why) != CASE_OK) raise_msg(L, CASE_INVALID, "%s", why);
  return id;
}

static int engine_create(lua_State *L) {
  lengine *eng = check_engine(L, 1);
  ldef *ld = check_def(L, 2, eng);
  const char *id = check_new_id(L, 3);
  int opts = opt_table(L, 4);
  lua_settop(L, 4);
  const char *location = opt_string(L, opts, "location", NULL);
  int64_t at = (int64_t)opt_integer(L, opts, "at", (lua_Integer)time(NULL));
  const char *data = opt_json(L, opts, "data");
  int top = lua_gettop(L);
  engine_begin(L, eng, 1);
  case_instance *c = NULL;
  int rc = case_instance_create(eng->e, ld->d, id, location, data, at, &c);
  engine_end(eng);
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  raise_notify_error(L, top + 2);
  push_case(L, 1, 0, id);
  return 1;
}

static int engine_case(lua_State *L) {
  lengine *eng = check_engine(L, 1);
  const char *id = luaL_checkstring(L, 2);
  if (!case_instance_find(eng->e, id)) {
    lua_pushnil(L);
    return 1;
  }
  push_case(L, 1, 0, id);
  return 1;
}

/* engine:restore(snapshot): a JSON string or a table as case:snapshot() gives. */
static int engine_restore(lua_State *L) {
  lengine *eng = check_engine(L, 1);
  lua_settop(L, 2);
  const char *json = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : to_json(L, 2);
  case_instance *c = NULL;
  int rc = case_instance_restore(eng->e, json, &c);
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  push_case(L, 1, 0, case_instance_id(c));
  return 1;
}

/* engine:run_scenario(path) -> failures, report */
static int engine_run_scenario(lua_State *L) {
  lengine *eng = check_engine(L, 1);
  const char *path = luaL_checkstring(L, 2);
  box *b = box_new(L);
  int failures = 0;
  char *report = NULL;
  eng->busy = 1;
  int rc = case_scenario_run_file(eng->e, path, &failures, &report);
  eng->busy = 0;
  box_set(b, report, lib_free);
  if (rc != CASE_OK) {
    box_free(b);
    raise_rc(L, eng, rc);
  }
  lua_pushinteger(L, failures);
  lua_pushstring(L, report ? report : "");
  box_free(b);
  return 2;
}

/* ------------------------------------------------------------------ coverage */

typedef struct lcoverage {
  case_coverage *cov;
} lcoverage;

static lcoverage *check_coverage(lua_State *L, int idx) {
  lcoverage *lc = luaL_checkudata(L, idx, MT_COVERAGE);
  if (!lc->cov) raise_msg(L, CASE_MISUSE, "the coverage record is closed");
  return lc;
}

/* libcase.coverage() -> a coverage record */
static int l_coverage(lua_State *L) {
  lcoverage *lc = lua_newuserdatauv(L, sizeof *lc, 0);
  lc->cov = NULL;
  luaL_setmetatable(L, MT_COVERAGE);
  int rc = case_coverage_open(&lc->cov);
  if (rc != CASE_OK) raise_msg(L, rc, "cannot open a coverage record: %s", case_errstr(rc));
  return 1;
}

static int coverage_close(lua_State *L) {
  lcoverage *lc = luaL_checkudata(L, 1, MT_COVERAGE);
  case_coverage_close(lc->cov);
  lc->cov = NULL;
  return 0;
}

static int coverage_tostring(lua_State *L) {
  lcoverage *lc = luaL_checkudata(L, 1, MT_COVERAGE);
  lua_pushfstring(L, "libcase.coverage (%s)", lc->cov ? "open" : "closed");
  return 1;
}

/* cov:report(["text"]) -> the text; cov:report("json") -> the report as a table */
static int coverage_report(lua_State *L) {
  lcoverage *lc = check_coverage(L, 1);
  static const char *const formats[] = {"text", "json", NULL};
  int json = luaL_checkoption(L, 2, "text", formats);
  box *b = box_new(L);
  char *out = NULL;
  int rc = case_coverage_report(lc->cov, json ? CASE_COVERAGE_JSON : CASE_COVERAGE_TEXT, &out);
  if (rc != CASE_OK) raise_msg(L, rc, "coverage report: %s", case_errstr(rc));
  box_set(b, out, lib_free);
  if (json) {
    push_lib_json(L, b);
  } else {
    lua_pushstring(L, out);
    box_free(b);
  }
  return 1;
}

/* engine:set_coverage(cov | nil) -> engine */
static int engine_set_coverage(lua_State *L) {
  lengine *eng = check_engine(L, 1);
  case_coverage *cov = lua_isnoneornil(L, 2) ? NULL : check_coverage(L, 2)->cov;
  int rc = case_engine_set_coverage(eng->e, cov);
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  lua_settop(L, 1);
  return 1;
}

static int def_skeleton(lua_State *L);

/* ------------------------------------------------------------------ definitions */

static int def_graph(lua_State *L);
static int def_check_profile(lua_State *L);

static int def_index(lua_State *L) {
  ldef *ld = luaL_checkudata(L, 1, MT_DEF);
  const char *k = luaL_checkstring(L, 2);
  if (!ld->eng->e) raise_msg(L, CASE_MISUSE, "the definition's engine is closed");
  if (strcmp(k, "id") == 0)
    lua_pushstring(L, case_def_id(ld->d));
  else if (strcmp(k, "version") == 0)
    lua_pushinteger(L, case_def_version(ld->d));
  else if (strcmp(k, "hash") == 0)
    lua_pushstring(L, case_def_hash(ld->d));
  else if (strcmp(k, "graph") == 0)
    lua_pushcfunction(L, def_graph);
  else if (strcmp(k, "skeleton") == 0)
    lua_pushcfunction(L, def_skeleton);
  else if (strcmp(k, "check_profile") == 0)
    lua_pushcfunction(L, def_check_profile);
  else if (strcmp(k, "warnings") == 0) {
    int n = case_def_warning_count(ld->d);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
      lua_pushstring(L, case_def_warning(ld->d, i));
      lua_seti(L, -2, i + 1);
    }
  } else
    lua_pushnil(L);
  return 1;
}

/* def:graph(["dot"|"mermaid" [, configuration]]) -> text; configuration is a
 * list of state ids (as case:configuration()) or JSON text. */
static int def_graph(lua_State *L) {
  static const char *const formats[] = {"dot", "mermaid", NULL};
  ldef *ld = check_def(L, 1, NULL);
  int format = luaL_checkoption(L, 2, "dot", formats);
  lua_settop(L, 3);
  const char *conf = NULL;
  if (lua_type(L, 3) == LUA_TSTRING)
    conf = lua_tostring(L, 3);
  else if (!lua_isnil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    conf = luaL_len(L, 3) == 0 ? "[]" : to_json(L, 3); /* {} would be an object */
  }
  box *b = box_new(L);
  char *out = NULL;
  int rc = case_def_graph(ld->d, format == 0 ? CASE_GRAPH_DOT : CASE_GRAPH_MERMAID, conf, &out);
  box_set(b, out, lib_free);
  if (rc != CASE_OK) {
    box_free(b);
    raise_rc(L, ld->eng, rc);
  }
  lua_pushstring(L, out);
  box_free(b);
  return 1;
}

/* def:skeleton(line [, column] [, {workflow_path=, location=, start=}]) -> YAML text */
static int def_skeleton(lua_State *L) {
  ldef *ld = check_def(L, 1, NULL);
  if (ld->eng->busy)
    raise_msg(L, CASE_MISUSE, "the engine is busy: a notification function may not call it");
  int line = (int)luaL_checkinteger(L, 2);
  int column = 0, opts = 0;
  if (lua_type(L, 3) == LUA_TTABLE) {
    opts = opt_table(L, 3);
  } else {
    column = (int)luaL_optinteger(L, 3, 0);
    opts = opt_table(L, 4);
  }
  const char *wpath = opt_string(L, opts, "workflow_path", NULL);
  const char *location = opt_string(L, opts, "location", NULL);
  int64_t start = (int64_t)opt_integer(L, opts, "start", (lua_Integer)time(NULL));
  box *b = box_new(L);
  char *yaml = NULL;
  int rc = case_coverage_skeleton(ld->eng->e, ld->d, line, column, wpath, location, start, &yaml);
  box_set(b, yaml, lib_free);
  if (rc != CASE_OK) {
    box_free(b);
    raise_rc(L, ld->eng, rc);
  }
  lua_pushstring(L, yaml);
  box_free(b);
  return 1;
}

/* def:check_profile(name) -> list of {severity, file, line, column, message}
 * (case_def_check_profile()). */
static int def_check_profile(lua_State *L) {
  ldef *ld = check_def(L, 1, NULL);
  const char *name = luaL_checkstring(L, 2);
  box *b = box_new(L);
  char *out = NULL;
  int rc = case_def_check_profile(ld->d, name, &out);
  box_set(b, out, lib_free);
  if (rc != CASE_OK) {
    box_free(b);
    raise_rc(L, ld->eng, rc);
  }
  push_lib_json(L, b);
  return 1;
}

static int def_tostring(lua_State *L) {
  ldef *ld = luaL_checkudata(L, 1, MT_DEF);
  if (!ld->eng->e)
    lua_pushstring(L, "libcase.def (engine closed)");
  else
    lua_pushfstring(L, "libcase.def %s v%d", case_def_id(ld->d), case_def_version(ld->d));
  return 1;
}

/* ------------------------------------------------------------------ stores */

static lstore *check_store(lua_State *L, int idx) {
  lstore *st = luaL_checkudata(L, idx, MT_STORE);
  if (!st->s) raise_msg(L, CASE_MISUSE, "the store is closed");
  if (st->eng->busy)
    raise_msg(L, CASE_MISUSE, "the engine is busy: a notification function may not call it");
  return st;
}

static void store_unlink(lstore *st) {
  for (lstore **p = &st->eng->stores; *p; p = &(*p)->next)
    if (*p == st) {
      *p = st->next;
      break;
    }
  st->next = NULL;
}

static int store_close(lua_State *L) {
  lstore *st = luaL_checkudata(L, 1, MT_STORE);
  if (st->eng && st->eng->busy) raise_msg(L, CASE_MISUSE, "the engine is busy: cannot close now");
  if (st->s) {
    store_unlink(st);
    case_store_close(st->s);
    st->s = NULL;
  }
  return 0;
}

static int store_tostring(lua_State *L) {
  lstore *st = luaL_checkudata(L, 1, MT_STORE);
  lua_pushfstring(L, "libcase.store (%s)", st->s ? "open" : "closed");
  return 1;
}

/* Opens a store on the engine at engine_idx; pushes it. */
static int open_store_on(lua_State *L, int engine_idx, const char *path, int opts) {
  lengine *eng = lua_touserdata(L, engine_idx);
  int flags = 0;
  if (opt_bool(L, opts, "create", 0)) flags |= CASE_STORE_CREATE;
  if (opt_bool(L, opts, "readonly", 0)) flags |= CASE_STORE_READONLY;
  lstore *st = lua_newuserdatauv(L, sizeof *st, 1);
  memset(st, 0, sizeof *st);
  st->eng = eng;
  luaL_setmetatable(L, MT_STORE);
  lua_pushvalue(L, engine_idx);
  lua_setiuservalue(L, -2, 1);
  int allow_future = opt_bool(L, opts, "allow_future", 0);
  int rc = case_store_open(eng->e, path, flags, &st->s);
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  if (allow_future) case_store_set_future_limit(st->s, -1);
  st->next = eng->stores;
  eng->stores = st;
  return 1;
}

/* engine:open_store(path [, {create=, readonly=, allow_future=}]) */
static int engine_open_store(lua_State *L) {
  check_engine(L, 1);
  const char *path = luaL_checkstring(L, 2);
  int opts = opt_table(L, 3);
  return open_store_on(L, 1, path, opts);
}

/* libcase.open_store(path [, {create=, readonly=, allow_future=, lua_root=}]): its own engine. */
static int l_open_store(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int opts = opt_table(L, 2);
  lua_settop(L, 2);
  lua_pushcfunction(L, l_open);
  lua_pushvalue(L, 2);
  lua_call(L, 1, 1); /* engine at 3 */
  return open_store_on(L, 3, path, opts);
}

static int store_engine(lua_State *L) {
  luaL_checkudata(L, 1, MT_STORE);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

static int store_add_def(lua_State *L) {
  lstore *st = check_store(L, 1);
  ldef *ld = check_def(L, 2, st->eng);
  int rc = case_store_add_def(st->s, ld->d);
  if (rc != CASE_OK) raise_rc(L, st->eng, rc);
  lua_settop(L, 1);
  return 1;
}

static int store_config(lua_State *L) {
  lstore *st = check_store(L, 1);
  int opts = opt_table(L, 2);
  static const char *const syncs[] = {"normal", "full", NULL};
  int sync = CASE_STORE_SYNC_NORMAL;
  const char *s = opt_string(L, opts, "sync", "normal");
  for (sync = 0; syncs[sync] && strcmp(syncs[sync], s) != 0; sync++) {
  }
  if (!syncs[sync]) raise_msg(L, CASE_INVALID, "sync must be \"normal\" or \"full\", not \"%s\"", s);
  int busy_ms = (int)opt_integer(L, opts, "busy_ms", -1);
  int rc = case_store_config(st->s, sync, busy_ms);
  if (rc != CASE_OK) raise_rc(L, st->eng, rc);
  lua_settop(L, 1);
  return 1;
}

/* store:set_profile(id [, {version=, actor=, role=, at=}]) -> seq (0: already on it) */
static int store_set_profile(lua_State *L) {
  lstore *st = check_store(L, 1);
  const char *id = luaL_checkstring(L, 2);
  int opts = opt_table(L, 3);
  lua_settop(L, 3);
  int version = (int)opt_integer(L, opts, "version", 0);
  const char *actor = opt_string(L, opts, "actor", NULL);
  const char *role = opt_string(L, opts, "role", NULL);
  int64_t at = (int64_t)opt_integer(L, opts, "at", (lua_Integer)time(NULL));
  lua_getiuservalue(L, 1, 1);
  lengine *eng = st->eng;
  int64_t seq = 0;
  engine_begin(L, eng, 4);
  int rc = case_store_set_profile(st->s, id, version, actor, role, at, &seq);
  engine_end(eng);
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  raise_notify_error(L, 6);
  lua_pushinteger(L, (lua_Integer)seq);
  return 1;
}

/* store:set_future_limit(seconds) -> the limit before (-1: none); negative: no limit. */
static int store_set_future_limit(lua_State *L) {
  lstore *st = check_store(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  lua_pushinteger(L, (lua_Integer)case_store_set_future_limit(st->s, (int64_t)n));
  return 1;
}

static const char SYSTEM_ROLE;
/* The role= of store:create: a role name or libcase.SYSTEM (NULL); else raises. */
static const char *check_create_role(lua_State *L, int idx) {
  int t = idx ? lua_type(L, idx) : LUA_TNIL;
  if (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == (void *)&SYSTEM_ROLE) return NULL;
  if (t == LUA_TSTRING && lua_rawlen(L, idx) > 0) return lua_tostring(L, idx);
  raise_msg(L, CASE_INVALID,
            "store:create needs role= (the role that creates the case, got %s; pass "
            "role = libcase.SYSTEM to create it as the system)",
            t == LUA_TSTRING ? "an empty string" : lua_typename(L, t));
  return NULL;
}

/* store:create(def, id, {role=, location=, data=|data_json=, actor=, at=}) */
static int store_create(lua_State *L) {
  lstore *st = check_store(L, 1);
  ldef *ld = check_def(L, 2, st->eng);
  const char *id = check_new_id(L, 3);
  int opts = opt_table(L, 4);
  lua_settop(L, 4);
  const char *location = opt_string(L, opts, "location", NULL);
  const char *actor = opt_string(L, opts, "actor", NULL);
  /* Who creates the case is journalled: a role name, or libcase.SYSTEM; an
   * omitted role never creates silently as the system. */
  const char *role = NULL;
  if (opts) {
    lua_getfield(L, opts, "role");
    role = check_create_role(L, lua_gettop(L));
    lua_pop(L, 1);
  } else {
    check_create_role(L, 0);
  }
  int64_t at = (int64_t)opt_integer(L, opts, "at", (lua_Integer)time(NULL));
  const char *data = opt_json(L, opts, "data");
  int top = lua_gettop(L);
  lua_getiuservalue(L, 1, 1); /* the engine */
  int eidx = lua_gettop(L);
  lengine *eng = st->eng;
  engine_begin(L, eng, eidx);
  int rc = case_store_create(st->s, ld->d, id, location, data, actor, role, at, NULL);
  engine_end(eng);
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  raise_notify_error(L, top + 3);
  push_case(L, eidx, 1, id);
  return 1;
}

/* libcase.SYSTEM: the role argument that fires an event as the system (no role
 * checks, as a timer does).  Its identity is the address of this constant. */
static const char SYSTEM_ROLE = 0; /* declared above for store:create */

/* The role argument of a fire: a role name, or libcase.SYSTEM for NULL.  nil,
 * "" or another type raises an invalid error: an omitted role must never fire
 * silently as the system.  Raises before anything is allocated. */
static const char *check_role_arg(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == (void *)&SYSTEM_ROLE)
    return NULL;
  if (lua_type(L, idx) == LUA_TSTRING && lua_rawlen(L, idx) > 0) return lua_tostring(L, idx);
  raise_msg(L, CASE_INVALID,
            "bad argument #%d to 'fire' (a role name expected, got %s; pass libcase.SYSTEM "
            "to fire as the system, without role checks)",
            idx, lua_type(L, idx) == LUA_TSTRING ? "an empty string" : luaL_typename(L, idx));
  return NULL;
}

/* store:fire(id, event, role [, {payload=|payload_json=, actor=, at=,
 * expected_revision=, key=, key_time=}]) -> seq, replayed */
static int store_fire_at(lua_State *L, int sidx, const char *id, int arg) {
  lstore *st = lua_touserdata(L, sidx);
  const char *event = luaL_checkstring(L, arg);
  const char *role = check_role_arg(L, arg + 1);
  int opts = opt_table(L, arg + 2);
  lua_settop(L, arg + 2);
  const char *actor = opt_string(L, opts, "actor", NULL);
  int64_t at = (int64_t)opt_integer(L, opts, "at", (lua_Integer)time(NULL));
  int64_t expected = (int64_t)opt_integer(L, opts, "expected_revision", -1);
  const char *key = opt_string(L, opts, "key", NULL);
  int flags = opt_bool(L, opts, "key_time", 0) ? CASE_FIRE_KEY_TIME : 0;
  const char *payload = opt_json(L, opts, "payload");
  int top = lua_gettop(L);
  lua_getiuservalue(L, sidx, 1);
  int eidx = lua_gettop(L);
  lengine *eng = st->eng;
  int64_t seq = 0;
  int replayed = 0;
  engine_begin(L, eng, eidx);
  int rc = case_store_fire_v2(st->s, id, event, payload, actor, role, at, expected, key, flags,
                              &seq, &replayed);
  engine_end(eng);
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  raise_notify_error(L, top + 3);
  lua_pushinteger(L, (lua_Integer)seq);
  lua_pushboolean(L, replayed);
  return 2;
}

static int store_fire(lua_State *L) {
  check_store(L, 1);
  const char *id = luaL_checkstring(L, 2);
  return store_fire_at(L, 1, id, 3);
}

/* store:tick([now [, per_txn]]): per_txn (case_store_tick_v2) timers to a
 * transaction, 1 (the default) each alone. */
static int store_tick(lua_State *L) {
  lstore *st = check_store(L, 1);
  int64_t now = opt_time(L, 2);
  lua_Integer per = luaL_optinteger(L, 3, 1);
  if (per < 0 || per > INT32_MAX) raise_msg(L, CASE_INVALID, "tick: per_txn must be 0 or more");
  lua_settop(L, 2);
  lua_getiuservalue(L, 1, 1);
  lengine *eng = st->eng;
  int fired = 0;
  engine_begin(L, eng, 3);
  int rc = case_store_tick_v2(st->s, now, (int)per, &fired);
  engine_end(eng);
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  raise_notify_error(L, 5);
  lua_pushinteger(L, fired);
  return 1;
}

/* ---- batches ---- */

static int store_begin_batch(lua_State *L) {
  lstore *st = check_store(L, 1);
  int rc = case_store_batch_begin(st->s);
  if (rc != CASE_OK) raise_rc(L, st->eng, rc);
  lua_settop(L, 1);
  return 1;
}

/* Commits; the held notifications run now (their functions' errors are raised). */
static int store_commit_batch(lua_State *L) {
  lstore *st = check_store(L, 1);
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, 1); /* 2: the engine */
  lengine *eng = st->eng;
  engine_begin(L, eng, 2); /* 3 notify, 4 err */
  int rc = case_store_batch_commit(st->s);
  engine_end(eng);
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  raise_notify_error(L, 4);
  lua_settop(L, 1);
  return 1;
}

static int store_rollback_batch(lua_State *L) {
  lstore *st = check_store(L, 1);
  int rc = case_store_batch_rollback(st->s);
  if (rc != CASE_OK) raise_rc(L, st->eng, rc);
  lua_settop(L, 1);
  return 1;
}

static int store_in_batch(lua_State *L) {
  lstore *st = check_store(L, 1);
  lua_pushboolean(L, case_store_in_batch(st->s));
  return 1;
}

/* store:batch(fn, ...): fn(...) inside a batch; committed when fn returns,
 * rolled back (and the error raised again) when it raises.  Returns fn's
 * results. */
static int store_batch(lua_State *L) {
  lstore *st = check_store(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int rc = case_store_batch_begin(st->s);
  if (rc != CASE_OK) raise_rc(L, st->eng, rc);
  int base = 2; /* fn and its arguments from here */
  int status = lua_pcall(L, lua_gettop(L) - base, LUA_MULTRET, 0);
  if (status != LUA_OK) {
    if (st->s) case_store_batch_rollback(st->s);
    return lua_error(L);
  }
  if (!st->s) raise_msg(L, CASE_MISUSE, "the store was closed inside its batch");
  int nres = lua_gettop(L) - 1;
  lua_pushcfunction(L, store_commit_batch);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  return nres;
}

static int store_get(lua_State *L) {
  lstore *st = check_store(L, 1);
  const char *id = luaL_checkstring(L, 2);
  case_instance *c = NULL;
  int rc = case_store_get(st->s, id, &c);
  if (rc != CASE_OK) raise_rc(L, st->eng, rc);
  lua_getiuservalue(L, 1, 1);
  push_case(L, lua_gettop(L), 1, id);
  return 1;
}

/* store:verify([options]) -> ok, report (a table).  options: a table or JSON
 * text as case_store_verify_v2() takes ({checkpoint=TEXT, public_key=PEM,
 * integrity="quick"}). */
static int store_verify(lua_State *L) {
  lstore *st = check_store(L, 1);
  lua_settop(L, 2);
  const char *opts = NULL;
  if (lua_type(L, 2) == LUA_TSTRING)
    opts = lua_tostring(L, 2);
  else if (!lua_isnil(L, 2))
    opts = to_json(L, 2);
  box *b = box_new(L);
  char *report = NULL;
  st->eng->busy = 1;
  int rc = case_store_verify_v2(st->s, opts, &report);
  st->eng->busy = 0;
  box_set(b, report, lib_free);
  if (rc != CASE_OK && rc != CASE_CORRUPT) {
    box_free(b);
    raise_rc(L, st->eng, rc);
  }
  lua_pushboolean(L, rc == CASE_OK);
  push_lib_json(L, b);
  return 2;
}

/* store:tree() -> size, root: the head of the journal's Merkle tree. */
static int store_tree(lua_State *L) {
  lstore *st = check_store(L, 1);
  int64_t size = 0;
  char root[65];
  int rc = case_store_tree_head(st->s, &size, root);
  if (rc != CASE_OK) raise_rc(L, st->eng, rc);
  lua_pushinteger(L, (lua_Integer)size);
  lua_pushstring(L, root);
  return 2;
}

/* store:checkpoint{key=FILE [, at=T] [, since=TEXT]} -> the checkpoint's text */
static int store_checkpoint(lua_State *L) {
  lstore *st = check_store(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int opts = lua_absindex(L, 2);
  const char *key = opt_string(L, opts, "key", NULL);
  const char *since = opt_string(L, opts, "since", NULL);
  int64_t at = (int64_t)opt_integer(L, opts, "at", (lua_Integer)time(NULL));
  if (!key) raise_msg(L, CASE_MISUSE, "checkpoint: key= (an Ed25519 private key file) is required");
  box *b = box_new(L);
  char *cp = NULL;
  int rc = case_store_checkpoint(st->s, key, at, since, &cp);
  box_set(b, cp, lib_free);
  if (rc != CASE_OK) {
    box_free(b);
    raise_rc(L, st->eng, rc);
  }
  lua_pushstring(L, cp);
  box_free(b);
  return 1;
}

/* store:prove(seq [, size]) -> the audit path's text (JSON) */
static int store_prove(lua_State *L) {
  lstore *st = check_store(L, 1);
  int64_t seq = (int64_t)luaL_checkinteger(L, 2);
  int64_t size = (int64_t)luaL_optinteger(L, 3, 0);
  box *b = box_new(L);
  char *proof = NULL;
  int rc = case_store_prove(st->s, seq, size, &proof);
  box_set(b, proof, lib_free);
  if (rc != CASE_OK) {
    box_free(b);
    raise_rc(L, st->eng, rc);
  }
  lua_pushstring(L, proof);
  box_free(b);
  return 1;
}

/* The checks that need no store run on an engine of their own, for its message. */
typedef int (*check_fn)(case_engine *e, const char *a, const char *b, const char *key,
                        char **report);

static int check_two(lua_State *L, check_fn fn) {
  const char *a = luaL_checkstring(L, 1), *b2 = luaL_checkstring(L, 2);
  const char *key = luaL_optstring(L, 3, NULL);
  lengine *eng = lua_newuserdatauv(L, sizeof *eng, 1);
  memset(eng, 0, sizeof *eng);
  luaL_setmetatable(L, MT_ENGINE);
  int rc = case_engine_open(&eng->e);
  if (rc != CASE_OK) raise_msg(L, rc, "cannot open an engine: %s", case_errstr(rc));
  box *b = box_new(L);
  char *report = NULL;
  rc = fn(eng->e, a, b2, key, &report);
  box_set(b, report, lib_free);
  if (rc != CASE_OK && rc != CASE_CORRUPT) {
    box_free(b);
    raise_rc(L, eng, rc);
  }
  lua_pushboolean(L, rc == CASE_OK);
  push_lib_json(L, b);
  return 2;
}

/* libcase.check_checkpoint(older, newer [, public_key_pem]) -> ok, report */
static int l_check_checkpoint(lua_State *L) { return check_two(L, case_checkpoint_check); }

/* libcase.check_row(checkpoint, proof [, public_key_pem]) -> ok, report */
static int l_check_row(lua_State *L) { return check_two(L, case_checkpoint_check_row); }

/* libcase.keygen(private_file [, public_file]) */
static int l_keygen(lua_State *L) {
  const char *priv = luaL_checkstring(L, 1), *pub = luaL_optstring(L, 2, NULL);
  lengine *eng = lua_newuserdatauv(L, sizeof *eng, 1);
  memset(eng, 0, sizeof *eng);
  luaL_setmetatable(L, MT_ENGINE);
  int rc = case_engine_open(&eng->e);
  if (rc != CASE_OK) raise_msg(L, rc, "cannot open an engine: %s", case_errstr(rc));
  rc = case_key_generate(eng->e, priv, pub);
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  return 0;
}

static int store_outbox(lua_State *L) {
  lstore *st = check_store(L, 1);
  int limit = (int)luaL_optinteger(L, 2, 0);
  box *b = box_new(L);
  char *json = NULL;
  int rc = case_store_outbox(st->s, limit, &json);
  box_set(b, json, lib_free);
  if (rc != CASE_OK) {
    box_free(b);
    raise_rc(L, st->eng, rc);
  }
  push_lib_json(L, b);
  return 1;
}

static int store_ack(lua_State *L) {
  lstore *st = check_store(L, 1);
  int rc = case_store_outbox_ack(st->s, (int64_t)luaL_checkinteger(L, 2));
  if (rc != CASE_OK) raise_rc(L, st->eng, rc);
  lua_settop(L, 1);
  return 1;
}

/* store:claim(consumer [, limit [, lease_seconds]]) -> the notifications leased to
 * this named consumer (case_store_outbox_claim; limit 100 by default);
 * store:done(consumer, id) marks one done for it. */
static int store_claim(lua_State *L) {
  lstore *st = check_store(L, 1);
  const char *consumer = luaL_checkstring(L, 2);
  int limit = (int)luaL_optinteger(L, 3, 100);
  int lease = (int)luaL_optinteger(L, 4, 0);
  box *b = box_new(L);
  char *json = NULL;
  int rc = case_store_outbox_claim(st->s, consumer, limit, lease, &json);
  box_set(b, json, lib_free);
  if (rc != CASE_OK) {
    box_free(b);
    raise_rc(L, st->eng, rc);
  }
  push_lib_json(L, b);
  return 1;
}

static int store_done(lua_State *L) {
  lstore *st = check_store(L, 1);
  int rc = case_store_outbox_done(st->s, luaL_checkstring(L, 2), (int64_t)luaL_checkinteger(L, 3));
  if (rc != CASE_OK) raise_rc(L, st->eng, rc);
  lua_settop(L, 1);
  return 1;
}

/* store:report([at [, options]]) -> the caseload report as a table (v1);
 * store:report_v2([at [, options]]) -> case_store_report_v2()'s report as a table
 * (the overview of casectl report and casectl serve: open cases, terms by urgency,
 * per location, trends, the filter's selection).  options: a table or JSON text. */
static int store_report_common(lua_State *L, int v2) {
  lstore *st = check_store(L, 1);
  int64_t at = opt_time(L, 2);
  lua_settop(L, 3);
  const char *opts = NULL;
  if (lua_type(L, 3) == LUA_TSTRING)
    opts = lua_tostring(L, 3);
  else if (!lua_isnil(L, 3))
    opts = to_json(L, 3);
  box *b = box_new(L);
  char *json = NULL;
  st->eng->busy = 1;
  int rc = v2 ? case_store_report_v2(st->s, at, opts, &json)
              : case_store_report(st->s, st->eng->e, at, opts, &json);
  st->eng->busy = 0;
  box_set(b, json, lib_free);
  if (rc != CASE_OK) {
    box_free(b);
    raise_rc(L, st->eng, rc);
  }
  push_lib_json(L, b);
  return 1;
}

static int store_report(lua_State *L) { return store_report_common(L, 0); }
static int store_report_v2(lua_State *L) { return store_report_common(L, 1); }

/* ---- the change feed: rows are copied in C, converted after the store returns */

typedef struct rowbuf {
  int n, cap, nomem;
  int64_t *seq;
  char **row;
} rowbuf;

static void rowbuf_free(void *p) {
  rowbuf *r = p;
  for (int i = 0; i < r->n; i++) free(r->row[i]);
  free(r->seq);
  free(r->row);
  free(r);
}

static int collect_row(void *ud, int64_t seq, const char *row_json) {
  rowbuf *r = ud;
  if (r->n == r->cap) {
    int cap = r->cap ? r->cap * 2 : 16;
    int64_t *s = realloc(r->seq, (size_t)cap * sizeof *s);
    if (!s) return r->nomem = 1;
    r->seq = s;
    char **w = realloc(r->row, (size_t)cap * sizeof *w);
    if (!w) return r->nomem = 1;
    r->row = w;
    r->cap = cap;
  }
  size_t n = strlen(row_json);
  char *copy = malloc(n + 1);
  if (!copy) return r->nomem = 1;
  memcpy(copy, row_json, n + 1);
  r->seq[r->n] = seq;
  r->row[r->n++] = copy;
  return 0;
}

/* Reads up to `limit` rows after `after`; pushes a table {seq1, row1, seq2, row2, ...}
 * of integers and JSON strings. */
static void read_feed(lua_State *L, lstore *st, int64_t after, int limit) {
  box *b = box_new(L);
  rowbuf *r = calloc(1, sizeof *r);
  if (!r) raise_msg(L, CASE_NOMEM, "out of memory");
  box_set(b, r, rowbuf_free);
  st->eng->busy = 1;
  int rc = case_store_follow(st->s, after, limit, collect_row, r, NULL);
  st->eng->busy = 0;
  if (r->nomem) {
    box_free(b);
    raise_msg(L, CASE_NOMEM, "out of memory reading the feed");
  }
  if (rc != CASE_OK) {
    box_free(b);
    raise_rc(L, st->eng, rc);
  }
  lua_createtable(L, 2 * r->n, 0);
  for (int i = 0; i < r->n; i++) {
    lua_pushinteger(L, (lua_Integer)r->seq[i]);
    lua_seti(L, -2, 2 * i + 1);
    lua_pushstring(L, r->row[i]);
    lua_seti(L, -2, 2 * i + 2);
  }
  box_free(b);
  lua_remove(L, -2);
}

/* Upvalues: 1 store, 2 last seq, 3 rows left (-1: no limit), 4 batch, 5 position. */
static int feed_next(lua_State *L) {
  lstore *st = lua_touserdata(L, lua_upvalueindex(1));
  if (!st->s) raise_msg(L, CASE_MISUSE, "the store is closed");
  lua_Integer left = lua_tointeger(L, lua_upvalueindex(3));
  if (left == 0) return 0;
  lua_Integer pos = lua_tointeger(L, lua_upvalueindex(5));
  lua_pushvalue(L, lua_upvalueindex(4));
  if (lua_isnil(L, -1) || pos > (lua_Integer)lua_rawlen(L, -1)) {
    lua_pop(L, 1);
    int limit = left < 0 || left > FEED_BATCH ? FEED_BATCH : (int)left;
    read_feed(L, st, (int64_t)lua_tointeger(L, lua_upvalueindex(2)), limit);
    lua_pushvalue(L, -1);
    lua_replace(L, lua_upvalueindex(4));
    pos = 1;
    if (lua_rawlen(L, -1) == 0) {
      lua_pushinteger(L, 0);
      lua_replace(L, lua_upvalueindex(3)); /* the end: stay ended */
      return 0;
    }
  }
  lua_rawgeti(L, -1, pos);    /* seq */
  lua_rawgeti(L, -2, pos + 1); /* row JSON */
  lua_pushinteger(L, pos + 2);
  lua_replace(L, lua_upvalueindex(5));
  lua_pushvalue(L, -2);
  lua_replace(L, lua_upvalueindex(2));
  if (left > 0) {
    lua_pushinteger(L, left - 1);
    lua_replace(L, lua_upvalueindex(3));
  }
  const char *json = lua_tostring(L, -1);
  push_json_text(L, json);
  lua_remove(L, -2);
  return 2;
}

/* store:follow(after [, limit]) -> iterator of seq, row */
static int store_follow(lua_State *L) {
  check_store(L, 1);
  lua_Integer after = luaL_optinteger(L, 2, 0);
  lua_Integer limit = luaL_optinteger(L, 3, 0);
  lua_pushvalue(L, 1);
  lua_pushinteger(L, after);
  lua_pushinteger(L, limit > 0 ? limit : -1);
  lua_pushnil(L);
  lua_pushinteger(L, 1);
  lua_pushcclosure(L, feed_next, 5);
  return 1;
}

/* Collects case_store_list() rows (their JSON) for a page of store:cases(). */
static int collect_case(void *ud, const char *id, const char *row_json) {
  (void)id;
  return collect_row(ud, 0, row_json);
}

/* The last journal row of a case, for store:cases(). */
static int keep_last(void *ud, int64_t seq, const char *row_json) {
  rowbuf *r = ud;
  for (int i = 0; i < r->n; i++) free(r->row[i]);
  r->n = 0;
  return collect_row(ud, seq, row_json);
}

/* store:cases() -> array of {id=, workflow=, version=, location=, revision=, done=,
 * configuration=, data=, timers=, updated=}, by id.  Reads the case rows a page at
 * a time and, per case, its last journal row and its timers. */
static int store_cases(lua_State *L) {
  lstore *st = check_store(L, 1);
  lua_settop(L, 1);
  lua_newtable(L); /* 2: result */
  lua_Integer n = 0;
  box *b = box_new(L); /* 3: the page */
  rowbuf *page = calloc(1, sizeof *page);
  if (!page) raise_msg(L, CASE_NOMEM, "out of memory");
  box_set(b, page, rowbuf_free);
  box *lb = box_new(L); /* 4: one case's last row */
  rowbuf *last = calloc(1, sizeof *last);
  if (!last) raise_msg(L, CASE_NOMEM, "out of memory");
  box_set(lb, last, rowbuf_free);
  lua_pushnil(L); /* 5: the last id of the previous page */
  for (;;) {
    for (int i = 0; i < page->n; i++) free(page->row[i]);
    page->n = 0;
    st->eng->busy = 1;
    int rc = case_store_list(st->s, lua_tostring(L, 5), 256, collect_case, page);
    st->eng->busy = 0;
    if (page->nomem) raise_msg(L, CASE_NOMEM, "out of memory listing the cases");
    if (rc != CASE_OK) raise_rc(L, st->eng, rc);
    for (int i = 0; i < page->n; i++) {
      push_json_text(L, page->row[i]); /* the list row */
      lua_getfield(L, -1, "case");
      const char *id = lua_tostring(L, -1);
      lua_setfield(L, -2, "id");
      lua_pushnil(L);
      lua_setfield(L, -2, "case");
      lua_pushnil(L);
      lua_setfield(L, -2, "created");
      lua_getfield(L, -1, "id");
      lua_replace(L, 5);
      id = lua_tostring(L, 5);
      lua_getfield(L, -1, "revision");
      int64_t revision = (int64_t)lua_tointeger(L, -1);
      lua_pop(L, 1);
      for (int k = 0; k < last->n; k++) free(last->row[k]);
      last->n = 0;
      st->eng->busy = 1;
      rc = case_store_history(st->s, id, revision - 1, keep_last, last, NULL);
      st->eng->busy = 0;
      if (last->nomem) raise_msg(L, CASE_NOMEM, "out of memory reading the journal");
      if (rc != CASE_OK) raise_rc(L, st->eng, rc);
      if (last->n == 1) {
        push_json_text(L, last->row[0]);
        lua_getfield(L, -1, "data");
        lua_setfield(L, -3, "data");
        lua_getfield(L, -1, "time");
        lua_setfield(L, -3, "updated");
        lua_pop(L, 1);
      } else {
        lua_pushnil(L);
        lua_setfield(L, -2, "updated");
      }
      case_instance *c = NULL;
      if (case_store_get(st->s, id, &c) == CASE_OK) {
        box *tb = box_new(L);
        char *json = NULL;
        if (case_instance_timers(c, &json) == CASE_OK) {
          box_set(tb, json, lib_free);
          push_lib_json(L, tb);
          lua_setfield(L, -3, "timers");
        }
        lua_pop(L, 1); /* box */
      }
      lua_seti(L, 2, ++n);
    }
    if (page->n < 256) break;
  }
  lua_settop(L, 2);
  return 1;
}

/* ------------------------------------------------------------------ cases */

/* The case behind handle `idx`: refreshed from its store if it has one. */
static case_instance *check_case(lua_State *L, int idx, lcase **out) {
  lcase *c = luaL_checkudata(L, idx, MT_CASE);
  if (!c->eng->e) raise_msg(L, CASE_MISUSE, "the case's engine is closed");
  if (c->eng->busy)
    raise_msg(L, CASE_MISUSE, "the engine is busy: a notification function may not call it");
  case_instance *ci = NULL;
  if (c->st) {
    if (!c->st->s) raise_msg(L, CASE_MISUSE, "the case's store is closed");
    int rc = case_store_get(c->st->s, c->id, &ci);
    if (rc != CASE_OK) raise_rc(L, c->eng, rc);
  } else {
    ci = case_instance_find(c->eng->e, c->id);
    if (!ci) raise_msg(L, CASE_NOTFOUND, "no case \"%s\" on the engine", c->id);
  }
  if (out) *out = c;
  return ci;
}

static int case_fire(lua_State *L) {
  lcase *c;
  case_instance *ci = check_case(L, 1, &c);
  if (c->st) {
    lua_settop(L, 4);
    lua_getiuservalue(L, 1, 2);
    lua_rotate(L, 1, 1); /* store, case (kept: it holds the id), event, role, opts */
    return store_fire_at(L, 1, c->id, 3);
  }
  const char *event = luaL_checkstring(L, 2);
  const char *role = check_role_arg(L, 3);
  int opts = opt_table(L, 4);
  lua_settop(L, 4);
  const char *actor = opt_string(L, opts, "actor", NULL);
  int64_t at = (int64_t)opt_integer(L, opts, "at", (lua_Integer)time(NULL));
  const char *payload = opt_json(L, opts, "payload");
  int top = lua_gettop(L);
  lua_getiuservalue(L, 1, 1);
  lengine *eng = c->eng;
  engine_begin(L, eng, top + 1);
  int rc = case_instance_fire(ci, event, payload, actor, role, at);
  engine_end(eng);
  if (rc != CASE_OK) raise_rc(L, eng, rc);
  raise_notify_error(L, top + 3);
  lua_pushinteger(L, (lua_Integer)case_instance_revision(ci));
  return 1;
}

static int case_tick(lua_State *L) {
  lcase *c;
  case_instance *ci = check_case(L, 1, &c);
  if (c->st) raise_msg(L, CASE_MISUSE, "a stored case's timers fire with store:tick()");
  int64_t now = opt_time(L, 2);
  lua_settop(L, 2);
  lua_getiuservalue(L, 1, 1);
  int fired = 0;
  engine_begin(L, c->eng, 3);
  int rc = case_instance_tick(ci, now, &fired);
  engine_end(c->eng);
  if (rc != CASE_OK) raise_rc(L, c->eng, rc);
  raise_notify_error(L, 5);
  lua_pushinteger(L, fired);
  return 1;
}

typedef int (*json_getter)(const case_instance *, char **);

static void push_getter(lua_State *L, lengine *eng, case_instance *ci, json_getter fn) {
  box *b = box_new(L);
  char *json = NULL;
  int rc = fn(ci, &json);
  box_set(b, json, lib_free);
  if (rc != CASE_OK) {
    box_free(b);
    raise_rc(L, eng, rc);
  }
  push_lib_json(L, b);
  lua_remove(L, -2);
}

static int case_configuration(lua_State *L) {
  lcase *c;
  case_instance *ci = check_case(L, 1, &c);
  push_getter(L, c->eng, ci, case_instance_configuration);
  return 1;
}

static int case_data(lua_State *L) {
  lcase *c;
  case_instance *ci = check_case(L, 1, &c);
  push_getter(L, c->eng, ci, case_instance_data);
  return 1;
}

static int case_timers(lua_State *L) {
  lcase *c;
  case_instance *ci = check_case(L, 1, &c);
  push_getter(L, c->eng, ci, case_instance_timers);
  return 1;
}

/* case:snapshot() -> JSON text */
static int case_snapshot(lua_State *L) {
  lcase *c;
  case_instance *ci = check_case(L, 1, &c);
  box *b = box_new(L);
  char *json = NULL;
  int rc = case_instance_snapshot(ci, &json);
  box_set(b, json, lib_free);
  if (rc != CASE_OK) {
    box_free(b);
    raise_rc(L, c->eng, rc);
  }
  lua_pushstring(L, json);
  box_free(b);
  return 1;
}

static int case_show(lua_State *L) {
  lcase *c;
  case_instance *ci = check_case(L, 1, &c);
  lua_settop(L, 1);
  lua_createtable(L, 0, 10);
  lua_pushstring(L, c->id);
  lua_setfield(L, 2, "id");
  const case_def *d = case_instance_def(ci);
  lua_pushstring(L, case_def_id(d));
  lua_setfield(L, 2, "workflow");
  lua_pushinteger(L, case_def_version(d));
  lua_setfield(L, 2, "version");
  if (case_instance_location(ci)) {
    lua_pushstring(L, case_instance_location(ci));
    lua_setfield(L, 2, "location");
  }
  lua_pushinteger(L, (lua_Integer)case_instance_revision(ci));
  lua_setfield(L, 2, "revision");
  lua_pushboolean(L, case_instance_done(ci));
  lua_setfield(L, 2, "done");
  push_getter(L, c->eng, ci, case_instance_configuration);
  lua_setfield(L, 2, "configuration");
  push_getter(L, c->eng, ci, case_instance_data);
  lua_setfield(L, 2, "data");
  push_getter(L, c->eng, ci, case_instance_timers);
  lua_setfield(L, 2, "timers");
  return 1;
}

static int case_in(lua_State *L) {
  case_instance *ci = check_case(L, 1, NULL);
  lua_pushboolean(L, case_instance_in(ci, luaL_checkstring(L, 2)));
  return 1;
}

/* The at and actor of available/explain: a number (at) or a table {at=, actor=,
 * payload=|payload_json=} at idx; payload (explain only) into *payload. */
static void ask_args(lua_State *L, int idx, int64_t *at, const char **actor,
                     const char **payload) {
  *actor = NULL;
  if (payload) *payload = NULL;
  if (lua_type(L, idx) == LUA_TTABLE) {
    int opts = lua_absindex(L, idx);
    *at = (int64_t)opt_integer(L, opts, "at", (lua_Integer)time(NULL));
    *actor = opt_string(L, opts, "actor", NULL);
    if (payload) *payload = opt_json(L, opts, "payload");
  } else {
    *at = opt_time(L, idx);
  }
}

/* case:available(role [, at | {at=, actor=}]) -> array of {event=, source=, target={...}}
 * (case_instance_available_v2: the actor, and the terms due by `at`, count). */
static int case_available(lua_State *L) {
  lcase *c;
  case_instance *ci = check_case(L, 1, &c);
  const char *role = luaL_checkstring(L, 2);
  int64_t at;
  const char *actor;
  ask_args(L, 3, &at, &actor, NULL);
  box *b = box_new(L);
  char *json = NULL;
  c->eng->busy = 1;
  int rc = case_instance_available_v2(ci, role, actor, at, &json);
  c->eng->busy = 0;
  box_set(b, json, lib_free);
  if (rc != CASE_OK) {
    box_free(b);
    raise_rc(L, c->eng, rc);
  }
  push_lib_json(L, b);
  return 1;
}

/* case:explain(event, role [, at | {at=, actor=, payload=}]) -> {event=, role=, possible=,
 * blockers={...}} (case_instance_explain_v2). */
static int case_explain(lua_State *L) {
  lcase *c;
  case_instance *ci = check_case(L, 1, &c);
  const char *event = luaL_checkstring(L, 2);
  const char *role = luaL_checkstring(L, 3);
  int64_t at;
  const char *actor, *payload;
  ask_args(L, 4, &at, &actor, &payload);
  box *b = box_new(L);
  char *json = NULL;
  c->eng->busy = 1;
  int rc = case_instance_explain_v2(ci, event, role, actor, payload, at, &json);
  c->eng->busy = 0;
  box_set(b, json, lib_free);
  if (rc != CASE_OK) {
    box_free(b);
    raise_rc(L, c->eng, rc);
  }
  push_lib_json(L, b);
  return 1;
}

/* case:free(): removes an engine case from its engine. */
static int case_free_(lua_State *L) {
  lcase *c;
  case_instance *ci = check_case(L, 1, &c);
  if (c->st) raise_msg(L, CASE_MISUSE, "a stored case stays in its store");
  case_instance_free(ci);
  return 0;
}

static int case_index(lua_State *L) {
  lcase *c = luaL_checkudata(L, 1, MT_CASE);
  const char *k = luaL_checkstring(L, 2);
  if (lua_getmetatable(L, 1)) {
    lua_getfield(L, -1, "__methods");
    lua_getfield(L, -1, k);
    if (!lua_isnil(L, -1)) return 1;
    lua_pop(L, 3);
  }
  if (strcmp(k, "id") == 0) {
    lua_pushstring(L, c->id);
    return 1;
  }
  if (strcmp(k, "stored") == 0) {
    lua_pushboolean(L, c->st != NULL);
    return 1;
  }
  if (strcmp(k, "profile_version") == 0) {
    lua_pushinteger(L, case_instance_profile_version(check_case(L, 1, NULL)));
    return 1;
  }
  if (strcmp(k, "revision") == 0 || strcmp(k, "done") == 0 || strcmp(k, "location") == 0 ||
      strcmp(k, "workflow") == 0 || strcmp(k, "version") == 0) {
    case_instance *ci = check_case(L, 1, NULL);
    if (k[0] == 'r')
      lua_pushinteger(L, (lua_Integer)case_instance_revision(ci));
    else if (k[0] == 'd')
      lua_pushboolean(L, case_instance_done(ci));
    else if (k[0] == 'l')
      lua_pushstring(L, case_instance_location(ci));
    else if (k[0] == 'w')
      lua_pushstring(L, case_def_id(case_instance_def(ci)));
    else
      lua_pushinteger(L, case_def_version(case_instance_def(ci)));
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

static int case_tostring(lua_State *L) {
  lcase *c = luaL_checkudata(L, 1, MT_CASE);
  lua_pushfstring(L, "libcase.case %s%s", c->id, c->st ? " (stored)" : "");
  return 1;
}

/* ------------------------------------------------------------------ module */

static int l_errstr(lua_State *L) {
  lua_pushstring(L, case_errstr((int)luaL_checkinteger(L, 1)));
  return 1;
}

static int l_decode(lua_State *L) {
  push_json_text(L, luaL_checkstring(L, 1));
  return 1;
}

static int l_encode(lua_State *L) {
  lua_settop(L, 1);
  lua_pushstring(L, to_json(L, 1));
  return 1;
}

static int l_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_setmetatable(L, MT_ARRAY);
  return 1;
}

static int l_is_error(lua_State *L) {
  int r = 0;
  if (lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, MT_ERROR);
    r = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, r);
  return 1;
}

/* Creates metatable `name` with `methods` reachable through __index (and as
 * __methods), plus the metamethods in `meta`. */
static void new_class(lua_State *L, const char *name, const luaL_Reg *meta,
                      const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, meta, 0);
  if (methods) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "__methods");
    if (lua_getfield(L, -2, "__index") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_setfield(L, -2, "__index");
    } else
      lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

#if defined(__GNUC__)
#define LCASE_EXPORT __attribute__((visibility("default")))
#else
#define LCASE_EXPORT
#endif

LCASE_EXPORT int luaopen_libcase(lua_State *L);

LCASE_EXPORT int luaopen_libcase(lua_State *L) {
  static const luaL_Reg engine_meta[] = {
      {"__gc", engine_close}, {"__close", engine_close}, {"__tostring", engine_tostring},
      {NULL, NULL}};
  static const luaL_Reg engine_methods[] = {{"close", engine_close},
                                            {"load", engine_load},
                                            {"load_string", engine_load_string},
                                            {"find", engine_find},
                                            {"load_profile", engine_load_profile},
                                            {"set_lua_root", engine_set_lua_root},
                                            {"add_holiday", engine_add_holiday},
                                            {"limit", engine_limit},
                                            {"on_notify", engine_on_notify},
                                            {"create", engine_create},
                                            {"case", engine_case},
                                            {"restore", engine_restore},
                                            {"open_store", engine_open_store},
                                            {"run_scenario", engine_run_scenario},
                                            {"set_coverage", engine_set_coverage},
                                            {NULL, NULL}};
  static const luaL_Reg store_meta[] = {
      {"__gc", store_close}, {"__close", store_close}, {"__tostring", store_tostring},
      {NULL, NULL}};
  static const luaL_Reg store_methods[] = {
      {"close", store_close},   {"engine", store_engine}, {"add_def", store_add_def},
      {"config", store_config}, {"create", store_create}, {"fire", store_fire},
      {"tick", store_tick},     {"get", store_get},       {"verify", store_verify},
      {"follow", store_follow}, {"outbox", store_outbox}, {"ack", store_ack},
      {"claim", store_claim}, {"done", store_done},
      {"cases", store_cases},   {"report", store_report},  {"report_v2", store_report_v2},
      {"tree", store_tree},     {"checkpoint", store_checkpoint}, {"prove", store_prove},
      {"set_future_limit", store_set_future_limit}, {"set_profile", store_set_profile},
      {"batch", store_batch}, {"begin_batch", store_begin_batch},
      {"commit_batch", store_commit_batch}, {"rollback_batch", store_rollback_batch},
      {"in_batch", store_in_batch},
      {NULL, NULL}};
  static const luaL_Reg def_meta[] = {
      {"__index", def_index}, {"__tostring", def_tostring}, {NULL, NULL}};
  static const luaL_Reg case_meta[] = {
      {"__index", case_index}, {"__tostring", case_tostring}, {NULL, NULL}};
  static const luaL_Reg case_methods[] = {
      {"fire", case_fire},         {"tick", case_tick},
      {"show", case_show},         {"configuration", case_configuration},
      {"data", case_data},         {"timers", case_timers},
      {"snapshot", case_snapshot}, {"is_in", case_in},
      {"available", case_available}, {"explain", case_explain},
      {"free", case_free_},        {NULL, NULL}};
  static const luaL_Reg coverage_meta[] = {
      {"__gc", coverage_close}, {"__close", coverage_close}, {"__tostring", coverage_tostring},
      {NULL, NULL}};
  static const luaL_Reg coverage_methods[] = {
      {"report", coverage_report}, {"close", coverage_close}, {NULL, NULL}};
  static const luaL_Reg error_meta[] = {{"__tostring", error_tostring}, {NULL, NULL}};
  static const luaL_Reg box_meta[] = {{"__gc", box_gc}, {NULL, NULL}};
  static const luaL_Reg array_meta[] = {{NULL, NULL}};
  static const luaL_Reg funcs[] = {
      {"open", l_open},     {"open_store", l_open_store}, {"errstr", l_errstr},
      {"decode", l_decode}, {"encode", l_encode},         {"array", l_array},
      {"is_error", l_is_error}, {"coverage", l_coverage},
      {"check_checkpoint", l_check_checkpoint}, {"check_row", l_check_row},
      {"keygen", l_keygen}, {NULL, NULL}};

  luaL_checkversion(L);
  new_class(L, MT_ENGINE, engine_meta, engine_methods);
  new_class(L, MT_STORE, store_meta, store_methods);
  new_class(L, MT_DEF, def_meta, NULL);
  new_class(L, MT_CASE, case_meta, case_methods);
  new_class(L, MT_COVERAGE, coverage_meta, coverage_methods);
  new_class(L, MT_ERROR, error_meta, NULL);
  new_class(L, MT_BOX, box_meta, NULL);
  new_class(L, MT_ARRAY, array_meta, NULL);

  luaL_newlib(L, funcs);
  lua_pushstring(L, case_libversion());
  lua_setfield(L, -2, "version");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_pushlightuserdata(L, (void *)&SYSTEM_ROLE);
  lua_setfield(L, -2, "SYSTEM");
  lua_createtable(L, 0, NCODES);
  for (int i = 0; i < NCODES; i++) {
    lua_pushinteger(L, i);
    lua_setfield(L, -2, CODE_NAMES[i]);
  }
  lua_setfield(L, -2, "codes");
  return 1;
}
