#include "lua/env.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/json.h"

#define SANDBOX_KEY "moontask.sandbox"

/* Globals a task may use. Everything else of the base library is left out
 * (load, loadfile, dofile, collectgarbage, require). */
static const char *const safe_globals[] = {
    "assert", "error",  "ipairs",   "next",         "pairs",
    "pcall",  "select", "tonumber", "tostring",     "type",
    "xpcall", "rawequal", "rawget", "rawset",       "rawlen",
    "setmetatable", "getmetatable", "_VERSION", NULL};

/* Wrappers that hand errors to the caller as usual, except while the
 * state's guard says it is stopping: then they raise again. Written in Lua
 * so that they keep pcall's behaviour across coroutine yields. */
static const char guarded_calls[] =
    "local pcall, xpcall, resume, error, stopping = ...\n"
    "local function pass(ok, ...)\n"
    "  if not ok and stopping() then error((...), 0) end\n"
    "  return ok, ...\n"
    "end\n"
    "return function(f, ...) return pass(pcall(f, ...)) end,\n"
    "  function(f, h, ...) return pass(xpcall(f, h, ...)) end,\n"
    "  function(co, ...) return pass(resume(co, ...)) end\n";

static int guard_stopping(lua_State *L) {
  mt_lua_guard_t *guard = *(mt_lua_guard_t **)lua_getextraspace(L);
  lua_pushboolean(L, guard != NULL && guard->stopping);
  return 1;
}

/* Replaces base.pcall, base.xpcall and base.coroutine.resume with guarded
 * versions. */
static void install_guarded_calls(lua_State *L, int base) {
  if (luaL_loadbufferx(L, guarded_calls, sizeof guarded_calls - 1,
                       "=moontask", "t") != LUA_OK)
    lua_error(L);
  lua_getglobal(L, "pcall");
  lua_getglobal(L, "xpcall");
  lua_getglobal(L, "coroutine");
  lua_getfield(L, -1, "resume");
  lua_remove(L, -2);
  lua_getglobal(L, "error");
  lua_pushcfunction(L, guard_stopping);
  lua_call(L, 5, 3);
  lua_getfield(L, base, "coroutine");
  lua_insert(L, -2);
  lua_setfield(L, -2, "resume");
  lua_pop(L, 1);
  lua_setfield(L, base, "xpcall");
  lua_setfield(L, base, "pcall");
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

/* Stack: lib -> (copy set on base as name). */
static void copy_fields(lua_State *L, int base, const char *libname,
                        const char *const *names) {
  lua_getglobal(L, libname);
  lua_newtable(L);
  for (const char *const *n = names; *n; n++) {
    lua_getfield(L, -2, *n);
    lua_setfield(L, -2, *n);
  }
  lua_setfield(L, base, libname);
  lua_pop(L, 1);
}

/* Stack: -> copy. Copies a library table so that a script cannot change the
 * one other scripts see. */
static void copy_library(lua_State *L, int base, const char *libname) {
  lua_getglobal(L, libname);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, -3) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_settable(L, -4);
  }
  lua_setfield(L, base, libname);
  lua_pop(L, 1);
}

void mt_lua_env_open(lua_State *L) {
  luaL_openlibs(L);
  lua_newtable(L);
  int base = lua_gettop(L);
  for (const char *const *n = safe_globals; *n; n++) {
    lua_getglobal(L, *n);
    lua_setfield(L, base, *n);
  }
  lua_pushcfunction(L, sandbox_print);
  lua_setfield(L, base, "print");
  copy_library(L, base, "string");
  copy_library(L, base, "table");
  copy_library(L, base, "math");
  copy_library(L, base, "utf8");
  copy_library(L, base, "coroutine");
  copy_fields(L, base, "os", safe_os);
  install_guarded_calls(L, base);
  mt_json_open(L);
  lua_setfield(L, base, "json");
  lua_setfield(L, LUA_REGISTRYINDEX, SANDBOX_KEY);
}

void mt_lua_env_push(lua_State *L) {
  lua_newtable(L);
  lua_newtable(L);
  lua_getfield(L, LUA_REGISTRYINDEX, SANDBOX_KEY);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
}

int mt_lua_load_file(lua_State *L, const char *path, int env_idx,
                     mt_err_t *err) {
  env_idx = lua_absindex(L, env_idx);
  /* Text mode only: precompiled bytecode can break the VM's invariants. */
  if (luaL_loadfilex(L, path, "t") != LUA_OK) {
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
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
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
  mt_err_set(err, MT_ELUA, "%s", lua_tostring(L, -1));
  lua_pop(L, 1);
  return MT_ELUA;
}
