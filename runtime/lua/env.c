#include "lua/env.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/log.h"
#include "lua/json.h"
#include "lua/pattern.h"
#include "lua/sources.h"
#include "lua/stdlib.h"

#define SANDBOX_KEY "moontask.sandbox"

/* How often, in VM instructions, the hook looks at the clock. Reading the
 * monotonic clock costs some tens of nanoseconds; every 1000 instructions
 * keeps that well under 1% while stopping a runaway loop within microseconds
 * of its deadline. */
#define HOOK_INTERVAL 1000

/* Once the memory limit is reached, unwinding still needs a little memory
 * (the error message, the traceback); this much more is allowed for it. */
#define UNWIND_HEADROOM (1024 * 1024)

/* ---- The guard --------------------------------------------------------- */

mt_lua_guard_t *mt_lua_guard(lua_State *L) {
  return *(mt_lua_guard_t **)lua_getextraspace(L);
}

/* Counts every byte the state holds. A growing allocation that would pass
 * the limit is refused; Lua then runs a full collection and asks again, so
 * only a second refusal in a row means the script's live data really is
 * too big, and stops it. Shrinking never fails, as Lua requires. */
static void *guarded_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  mt_lua_guard_t *g = ud;
  size_t old = ptr != NULL ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    g->used -= old;
    return NULL;
  }
  if (nsize > old && g->limit > 0) {
    size_t cap = g->limit;
    if (g->stopping == MT_LUA_OUT_OF_MEMORY)
      cap += UNWIND_HEADROOM;
    if (g->used - old + nsize > cap) {
      if (g->refused && g->stopping == MT_LUA_RUNNING)
        g->stopping = MT_LUA_OUT_OF_MEMORY;
      g->refused = 1;
      return NULL;
    }
  }
  void *p = realloc(ptr, nsize);
  if (p == NULL)
    return NULL;
  if (nsize > old)
    g->refused = 0;
  g->used = g->used - old + nsize;
  return p;
}

const char *mt_lua_guard_reason(const mt_lua_guard_t *g, char *buf,
                                size_t size) {
  switch (g->stopping) {
  case MT_LUA_TIMED_OUT: return "timed out";
  case MT_LUA_ABORTED: return "the runtime is shutting down: task aborted";
  case MT_LUA_OUT_OF_MEMORY:
    snprintf(buf, size, "memory limit of %.3g MiB exceeded",
             (double)g->limit / (1024 * 1024));
    return buf;
  default: return "running";
  }
}

/* Raises the guard's error once a limit is passed. Every path that could
 * keep a script going checks here: the count hook, and long C calls. */
static void check_guard(lua_State *L, mt_lua_guard_t *g) {
  if (g->stopping == MT_LUA_RUNNING) {
    if (g->abort != NULL && atomic_load(g->abort))
      g->stopping = MT_LUA_ABORTED;
    else if (g->deadline > 0 && mt_now() > g->deadline)
      g->stopping = MT_LUA_TIMED_OUT;
  }
  if (g->stopping != MT_LUA_RUNNING) {
    char buf[64];
    luaL_error(L, "%s", mt_lua_guard_reason(g, buf, sizeof buf));
  }
}

static void guard_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  check_guard(L, mt_lua_guard(L));
}

void mt_lua_guard_check(lua_State *L) { check_guard(L, mt_lua_guard(L)); }

/* An error outside any protected call is a bug in moontask, not in a
 * script: say what it was before aborting. */
static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  mt_log(MT_LOG_ERROR, "unprotected Lua error: %s",
         msg != NULL ? msg : "(not a string)");
  return 0; /* Lua aborts */
}

lua_State *mt_lua_state_new(mt_lua_guard_t *guard) {
  memset(guard, 0, sizeof *guard);
  lua_State *L = lua_newstate(guarded_alloc, guard);
  if (L == NULL)
    return NULL;
  *(mt_lua_guard_t **)lua_getextraspace(L) = guard;
  /* Installed for good, before any script runs: a coroutine copies its
   * creator's hook, so one made while a file loads is bounded too. With no
   * deadline armed the hook returns at once. */
  lua_sethook(L, guard_hook, LUA_MASKCOUNT, HOOK_INTERVAL);
  lua_atpanic(L, panic);
  return L;
}

void mt_lua_guard_arm(mt_lua_guard_t *g, double seconds, size_t limit,
                      const atomic_int *abort) {
  g->deadline = seconds > 0 ? mt_now() + seconds : 0;
  g->abort = abort;
  g->limit = limit;
  g->refused = 0;
  g->stopping = MT_LUA_RUNNING;
}

void mt_lua_guard_disarm(mt_lua_guard_t *g) {
  g->deadline = 0;
  g->abort = NULL;
  g->limit = 0;
}

/* ---- The sandbox ------------------------------------------------------- */

/* Globals a task may use. Everything else of the base library is left out
 * (load, loadfile, dofile, collectgarbage, require). */
static const char *const safe_globals[] = {
    "assert", "error",    "ipairs",   "next",         "pairs",    "pcall",
    "select", "tonumber", "tostring", "type",         "xpcall",   "rawequal",
    "rawget", "rawset",   "rawlen",   "getmetatable", "_VERSION", NULL};

/* Stack: -> chunk. Compiles one of the Lua sources below (ours: an error
 * here is a bug, raised as such). */
static void push_chunk(lua_State *L, const char *src, size_t len) {
  if (luaL_loadbufferx(L, src, len, "=moontask", "t") != LUA_OK)
    lua_error(L);
}

/* Wrappers that hand errors to the caller as usual, except while the
 * state's guard is stopping: then they raise again, and an xpcall message
 * handler is not even called (the error that stops a script may be raised
 * from the hook, where hooks are off, so a handler that loops would loop
 * for ever). A coroutine the guard stopped died in its hook, with hooks
 * off for good: closing it would run its __close handlers unbounded, so
 * coroutine.close refuses it and coroutine.wrap (rebuilt here on the
 * guarded resume) never closes it. Written in Lua so that they keep
 * pcall's behaviour across coroutine yields. */
static const char guarded_calls[] =
    "local pcall, xpcall, resume, create, close, error, type, select,\n"
    "  setmetatable, stopping = ...\n"
    "local stopped = setmetatable({}, { __mode = 'k' })\n"
    "local function pass(ok, ...)\n"
    "  if not ok and stopping() then error((...), 0) end\n"
    "  return ok, ...\n"
    "end\n"
    "local function pass_co(co, ok, ...)\n"
    "  if not ok and stopping() then stopped[co] = true; error((...), 0) end\n"
    "  return ok, ...\n"
    "end\n"
    "local function guarded_resume(co, ...) return pass_co(co, resume(co, ...)) end\n"
    "local function guarded_close(co)\n"
    "  if stopped[co] then return false, 'the coroutine was stopped by the runtime' end\n"
    "  return close(co)\n"
    "end\n"
    "local function unwrap(co, ok, ...)\n"
    "  if ok then return ... end\n"
    "  local err = select(2, close(co))\n" /* runs its __close handlers */
    "  if type(err) == 'string' then error(err, 2) end\n"
    "  error(err, 0)\n"
    "end\n"
    "local function guarded_wrap(f)\n"
    "  local co = create(f)\n"
    "  return function(...) return unwrap(co, guarded_resume(co, ...)) end\n"
    "end\n"
    "return function(f, ...) return pass(pcall(f, ...)) end,\n"
    "  function(f, h, ...)\n"
    "    return pass(xpcall(f, function(m)\n"
    "      if stopping() then return m end\n"
    "      return h(m)\n"
    "    end, ...))\n"
    "  end,\n"
    "  guarded_resume, guarded_close, guarded_wrap\n";

static int guard_stopping(lua_State *L) {
  mt_lua_guard_t *guard = mt_lua_guard(L);
  lua_pushboolean(L, guard != NULL && guard->stopping != MT_LUA_RUNNING);
  return 1;
}

/* Replaces base.pcall, base.xpcall and base.coroutine's resume, close and
 * wrap with guarded versions. */
static void install_guarded_calls(lua_State *L, int base) {
  push_chunk(L, guarded_calls, sizeof guarded_calls - 1);
  static const char *const globals[] = {"pcall", "xpcall"};
  static const char *const co_fields[] = {"resume", "create", "close"};
  static const char *const more[] = {"error", "type", "select", "setmetatable"};
  for (size_t i = 0; i < 2; i++)
    lua_getglobal(L, globals[i]);
  lua_getglobal(L, "coroutine");
  for (size_t i = 0; i < 3; i++)
    lua_getfield(L, -1 - (int)i, co_fields[i]);
  lua_remove(L, -4); /* the coroutine library */
  for (size_t i = 0; i < 4; i++)
    lua_getglobal(L, more[i]);
  lua_pushcfunction(L, guard_stopping);
  lua_call(L, 10, 5);
  /* Stack: pcall xpcall resume close wrap */
  lua_getfield(L, base, "coroutine");
  lua_insert(L, -4);
  lua_setfield(L, -4, "wrap");
  lua_setfield(L, -3, "close");
  lua_setfield(L, -2, "resume");
  lua_pop(L, 1);
  lua_setfield(L, base, "xpcall");
  lua_setfield(L, base, "pcall");
}

/* table.move, insert and remove loop in C over ranges a script chooses
 * (table.move({}, 1, math.maxinteger - 1, 2) is 2^63 steps that allocate
 * nothing), out of the hook's sight. These are the same functions written
 * in Lua, where every step is a VM instruction the hook counts. */
static const char guarded_table[] =
    "local tointeger, maxinteger, select, type, error = ...\n"
    "local function int(v, i, name)\n"
    "  local n = tointeger(v)\n"
    "  if n ~= nil then return n end\n"
    "  error(('bad argument #%d to \\'%s\\' (%s)'):format(i, name,\n"
    "    type(v) == 'number' and 'number has no integer representation'\n"
    "      or 'number expected, got ' .. (v == nil and 'no value' or type(v))), 3)\n"
    "end\n"
    "local function move(a1, f, e, t, a2)\n"
    "  f, e, t = int(f, 2, 'move'), int(e, 3, 'move'), int(t, 4, 'move')\n"
    "  if a2 == nil then a2 = a1 end\n"
    "  if e >= f then\n"
    "    if not (f > 0 or e < maxinteger + f) then\n"
    "      error(\"bad argument #3 to 'move' (too many elements to move)\", 2)\n"
    "    end\n"
    "    if t > maxinteger - (e - f) then\n"
    "      error(\"bad argument #4 to 'move' (destination wrap around)\", 2)\n"
    "    end\n"
    "    if t > e or t <= f or a1 ~= a2 then\n"
    "      for i = 0, e - f do a2[t + i] = a1[f + i] end\n"
    "    else\n"
    "      for i = e - f, 0, -1 do a2[t + i] = a1[f + i] end\n"
    "    end\n"
    "  end\n"
    "  return a2\n"
    "end\n"
    "local function insert(t, ...)\n"
    "  local n, e = select('#', ...), #t + 1\n"
    "  if n == 1 then t[e] = ...; return end\n"
    "  if n ~= 2 then error(\"wrong number of arguments to 'insert'\", 2) end\n"
    "  local pos, v = ...\n"
    "  pos = int(pos, 2, 'insert')\n"
    "  if pos < 1 or pos > e then\n"
    "    error(\"bad argument #2 to 'insert' (position out of bounds)\", 2)\n"
    "  end\n"
    "  for i = e, pos + 1, -1 do t[i] = t[i - 1] end\n"
    "  t[pos] = v\n"
    "end\n"
    "local function remove(t, pos)\n"
    "  local size = #t\n"
    "  if pos == nil then pos = size else pos = int(pos, 2, 'remove') end\n"
    "  if pos ~= size and (pos < 1 or pos > size + 1) then\n"
    "    error(\"bad argument #2 to 'remove' (position out of bounds)\", 2)\n"
    "  end\n"
    "  local v = t[pos]\n"
    "  while pos < size do t[pos] = t[pos + 1]; pos = pos + 1 end\n"
    "  t[pos] = nil\n"
    "  return v\n"
    "end\n"
    "return move, insert, remove\n";

/* Stack: -> (base.table's move, insert and remove replaced). */
static void install_guarded_table(lua_State *L, int base) {
  push_chunk(L, guarded_table, sizeof guarded_table - 1);
  lua_getglobal(L, "math");
  lua_getfield(L, -1, "tointeger");
  lua_getfield(L, -2, "maxinteger");
  lua_remove(L, -3);
  lua_getglobal(L, "select");
  lua_getglobal(L, "type");
  lua_getglobal(L, "error");
  lua_call(L, 5, 3);
  lua_getfield(L, base, "table");
  lua_insert(L, -4);
  lua_setfield(L, -4, "remove");
  lua_setfield(L, -3, "insert");
  lua_setfield(L, -2, "move");
  lua_pop(L, 1);
}

/* string.rep(s, n, sep) loops n times even when s and sep are empty,
 * allocating nothing: ("").rep("", math.maxinteger) would never return.
 * Otherwise the result's size bounds the loop, and the memory limit that. */
static int sandbox_rep(lua_State *L) {
  size_t l, lsep;
  luaL_checklstring(L, 1, &l);
  luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &lsep);
  if (l == 0 && lsep == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* setmetatable without __gc: a finalizer runs whenever the collector gets
 * to it, with hooks off, outside any task's time limit and possibly during
 * another task, so scripts may not install one. */
static int sandbox_setmetatable(lua_State *L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_argerror(L, 2,
                           "__gc metamethods are not available to tasks "
                           "(a finalizer would run outside the task's time "
                           "limit)");
    lua_pop(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static const char *const safe_os[] = {"time", "clock", "date", "difftime",
                                      NULL};

/* print() goes to stderr, one line, so it never mixes with the CLI's output. */
static int sandbox_print(lua_State *L) {
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1)
      luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  fprintf(stderr, "%s\n", lua_tostring(L, -1));
  return 0;
}

/* Stack: src -> src copy. A copy of a library table of the template,
 * with copies of the tables it holds (moontask.http, moontask.crypto): a
 * script that changes a function of its copy changes it for itself. The
 * template's tables hold no cycles. */
static void push_copy(lua_State *L) {
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, -3) != 0) {
    if (lua_type(L, -1) == LUA_TTABLE) {
      push_copy(L);
      lua_remove(L, -2);
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
}

/* Stack: src -> src, with a copy of src set at t[name]. */
static void set_copy(lua_State *L, int t, const char *name) {
  push_copy(L);
  lua_setfield(L, t, name);
}

/* Makes a metatable's owner unable to see or change it: getmetatable()
 * returns false and setmetatable() refuses. Stack: mt -> mt. */
static void protect_metatable(lua_State *L) {
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
}

void mt_lua_env_open(lua_State *L) {
  luaL_openlibs(L);
  /* The real string library stays the strings' metatable __index, so it
   * gets the bounded pattern functions, and the metatable is hidden: it
   * would otherwise hand any script the table every other script's
   * ("x"):upper() goes through. */
  lua_getglobal(L, "string");
  mt_lua_pattern_open(L, -1, mt_lua_guard_check);
  lua_getfield(L, -1, "rep");
  lua_pushcclosure(L, sandbox_rep, 1);
  lua_setfield(L, -2, "rep");
  lua_pop(L, 1);
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  protect_metatable(L);
  lua_pop(L, 2);

  /* The template every script's environment is copied from. It lives in
   * the registry only; scripts get copies. */
  lua_newtable(L);
  int base = lua_gettop(L);
  for (const char *const *n = safe_globals; *n; n++) {
    lua_getglobal(L, *n);
    lua_setfield(L, base, *n);
  }
  lua_pushcfunction(L, sandbox_print);
  lua_setfield(L, base, "print");
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, sandbox_setmetatable, 1);
  lua_setfield(L, base, "setmetatable");
  static const char *const libraries[] = {"string", "table",     "math",
                                          "utf8",   "coroutine", NULL};
  for (const char *const *n = libraries; *n; n++) {
    lua_getglobal(L, *n);
    set_copy(L, base, *n);
    lua_pop(L, 1);
  }
  lua_getglobal(L, "os");
  lua_newtable(L);
  for (const char *const *n = safe_os; *n; n++) {
    lua_getfield(L, -2, *n);
    lua_setfield(L, -2, *n);
  }
  lua_setfield(L, base, "os");
  lua_pop(L, 1);
  install_guarded_calls(L, base);
  install_guarded_table(L, base);
  mt_json_open(L);
  lua_setfield(L, base, "json");
  /* The handler's toolkit. require is not in the template: each script
   * gets its own, with its own module cache (mt_lua_env_push). */
  mt_lua_stdlib_open(L);
  lua_setfield(L, base, "moontask");
  /* Decoded arrays and objects of every task share these marker
   * metatables; a task must not be able to change them for the others. */
  luaL_getmetatable(L, MT_JSON_ARRAY);
  protect_metatable(L);
  luaL_getmetatable(L, MT_JSON_OBJECT);
  protect_metatable(L);
  lua_pop(L, 2);
  lua_setfield(L, LUA_REGISTRYINDEX, SANDBOX_KEY);
}

void mt_lua_env_push(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, SANDBOX_KEY);
  int template = lua_gettop(L);
  lua_createtable(L, 0, 32);
  int env = template + 1;
  lua_pushnil(L);
  while (lua_next(L, template) != 0) {
    if (lua_type(L, -1) == LUA_TTABLE) {
      /* A library: the script gets its own copy. */
      set_copy(L, env, lua_tostring(L, -2));
      lua_pop(L, 1);
    } else {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, env);
    }
  }
  lua_remove(L, template);
  env = lua_gettop(L);
  /* moontask.json is the script's json: one table under two names. */
  lua_getfield(L, env, "moontask");
  lua_getfield(L, env, "json");
  lua_setfield(L, -2, "json");
  lua_pop(L, 1);
  mt_lua_require_push(L);
  lua_setfield(L, env, "require");
}

int mt_lua_rawfield(lua_State *L, int idx, const char *key) {
  idx = lua_absindex(L, idx);
  lua_pushstring(L, key);
  return lua_rawget(L, idx);
}

int mt_lua_read_number(lua_State *L, const char *file, const char *field,
                       double *slot, double min, double max, int integer,
                       mt_err_t *err) {
  int rc = 0;
  int type = mt_lua_rawfield(L, -1, field);
  double v = lua_tonumber(L, -1);
  /* The range is checked first: only then is the cast defined. */
  if (type == LUA_TNUMBER && v >= min && v <= max &&
      (!integer || v == (double)(long long)v))
    *slot = v;
  else if (type != LUA_TNIL)
    rc = mt_err_set(
        err, MT_ECONFIG, "%s: %s must be %s from %.15g to %.15g, not %s", file,
        field, integer ? "a whole number" : "a number", min, max,
        type == LUA_TNUMBER || type == LUA_TSTRING ? lua_tostring(L, -1)
                                                   : lua_typename(L, type));
  lua_pop(L, 1);
  return rc;
}

#define SOURCES_KEY "moontask.sources"

static int sources_gc(lua_State *L) {
  mt_sources_t **slot = lua_touserdata(L, 1);
  mt_sources_unref(*slot);
  *slot = NULL;
  return 0;
}

int mt_lua_sources_attach(lua_State *L, mt_sources_t *s) {
  mt_sources_t **slot = lua_newuserdatauv(L, sizeof *slot, 0);
  *slot = mt_sources_ref(s);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, sources_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, SOURCES_KEY);
  return 0;
}

const mt_sources_t *mt_lua_sources(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, SOURCES_KEY);
  mt_sources_t **slot = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return slot != NULL ? *slot : NULL;
}

int mt_lua_file_exists(lua_State *L, const char *path) {
  const mt_sources_t *s = mt_lua_sources(L);
  size_t len;
  struct stat st;
  if (s != NULL)
    return mt_sources_get(s, path, &len) != NULL;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int mt_lua_load_file(lua_State *L, const char *path, int env_idx,
                     mt_err_t *err) {
  env_idx = lua_absindex(L, env_idx);
  const mt_sources_t *s = mt_lua_sources(L);
  size_t len;
  const char *text = s != NULL ? mt_sources_get(s, path, &len) : NULL;
  if (s != NULL && text == NULL)
    return mt_err_set(err, MT_ELUA, "cannot open %s", path);
  /* Text mode only: precompiled bytecode can break the VM's invariants.
   * From a snapshot the chunk is named "@path", as luaL_loadfilex names
   * it, so that messages read file:line alike. */
  lua_pushfstring(L, "@%s", path);
  int loaded = text != NULL
                   ? luaL_loadbufferx(L, text, len, lua_tostring(L, -1), "t")
                   : luaL_loadfilex(L, path, "t");
  lua_remove(L, -2);
  if (loaded != LUA_OK) {
    mt_err_set(err, MT_ELUA, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return MT_ELUA;
  }
  lua_pushvalue(L, env_idx);
  lua_setupvalue(L, -2, 1); /* the chunk's only upvalue is _ENV */
  return 0;
}

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg =
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int mt_lua_pcall(lua_State *L, int nargs, int nresults, mt_err_t *err) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  if (status == LUA_OK)
    return 0;
  const char *msg = lua_tostring(L, -1);
  mt_err_set(err, status == LUA_ERRMEM ? MT_ENOMEM : MT_ELUA, "%s",
             msg != NULL ? msg : "(error object is not a string)");
  lua_pop(L, 1);
  return status == LUA_ERRMEM ? MT_ENOMEM : MT_ELUA;
}

int mt_lua_pcall_load(lua_State *L, const char *what, int nargs, int nresults,
                      mt_err_t *err) {
  mt_lua_guard_t *g = mt_lua_guard(L);
  char buf[64];
  mt_lua_guard_arm(g, MT_LUA_LOAD_TIMEOUT, g->load_limit, NULL);
  int rc = mt_lua_pcall(L, nargs, nresults, err);
  if (rc != 0 && g->stopping == MT_LUA_TIMED_OUT)
    mt_err_set(err, MT_ECONFIG, "%s: did not finish loading within %gs", what,
               MT_LUA_LOAD_TIMEOUT);
  else if (rc != 0 && g->stopping == MT_LUA_OUT_OF_MEMORY)
    mt_err_set(err, MT_ECONFIG, "%s: %s while loading", what,
               mt_lua_guard_reason(g, buf, sizeof buf));
  mt_lua_guard_disarm(g);
  g->stopping = MT_LUA_RUNNING;
  return rc;
}
