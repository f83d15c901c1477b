#include "lua/stdlib.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/text.h"
#include "lua/crypto.h"
#include "lua/env.h"
#include "lua/http.h"
#include "service/registry.h"

#define LIB_DIR_KEY "moontask.lib_dir"
#define ENV_FN_KEY "moontask.env_fn" /* ctx.env, made by configure */

static int ctx_env(lua_State *L);

/* Marks a module in a cache while it loads, to tell a require cycle from a
 * module that is simply loaded. */
static const char loading_mark = 0;

void mt_lua_stdlib_open(lua_State *L) {
  lua_createtable(L, 0, 3);
  mt_lua_http_open(L);
  lua_setfield(L, -2, "http");
  mt_lua_crypto_open(L);
  lua_setfield(L, -2, "crypto");
}

void mt_lua_lib_dir(const char *tasks_dir, const char *lib_dir, char *out,
                    size_t size) {
  if (lib_dir != NULL)
    snprintf(out, size, "%s", lib_dir);
  else
    snprintf(out, size, "%s/lib", tasks_dir != NULL ? tasks_dir : "tasks");
}

void mt_lua_stdlib_configure(lua_State *L, const char *tasks_dir,
                             const char *lib_dir, const char *const *env) {
  char lib[4096];
  mt_lua_lib_dir(tasks_dir, lib_dir, lib, sizeof lib);
  lua_pushstring(L, lib);
  lua_setfield(L, LUA_REGISTRYINDEX, LIB_DIR_KEY);
  /* ctx.env, one closure per state (it is on every task's path): its
   * upvalues are the allowed names and the names warned about. */
  lua_newtable(L);
  for (const char *const *n = env; n != NULL && *n != NULL; n++) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, *n);
  }
  lua_newtable(L);
  lua_pushcclosure(L, ctx_env, 2);
  lua_setfield(L, LUA_REGISTRYINDEX, ENV_FN_KEY);
}

const char *mt_lua_stdlib_lib_dir(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, LIB_DIR_KEY);
  const char *dir = lua_tostring(L, -1); /* the registry keeps it alive */
  lua_pop(L, 1);
  return dir;
}

/* ---- require ----------------------------------------------------------- */

/* "lib.billing.stripe": "lib", then one or more identifiers, dotted. The
 * grammar is the whole of the path check: it has no '/', no "..", no
 * empty part, so the file it names is inside the lib folder. */
static int module_name_valid(const char *s) {
  return strncmp(s, "lib.", 4) == 0 && mt_dotted_name_valid(s + 4);
}

/* Runs the module chunk on the stack (with its two arguments, as Lua's
 * require passes them: the name and the file) within the load time limit,
 * or the time the code around it has left if that is shorter. The limit
 * is the module's own: a module that loops is stopped and reported by
 * name, and the code that required it carries on with its own deadline.
 * Stack: chunk name file -> result (returns 0) | error (returns 1). */
static int run_module(lua_State *L, const char *name, const char *file) {
  mt_lua_guard_t *g = mt_lua_guard(L);
  double outer = g->deadline, own = mt_now() + MT_LUA_LOAD_TIMEOUT;
  int binds = outer == 0 || own < outer;
  if (binds)
    g->deadline = own;
  int status = lua_pcall(L, 2, 1, 0);
  g->deadline = outer;
  if (status == LUA_OK)
    return 0;
  if (binds && g->stopping == MT_LUA_TIMED_OUT &&
      (outer == 0 || mt_now() < outer)) {
    char secs[32];
    snprintf(secs, sizeof secs, "%g", MT_LUA_LOAD_TIMEOUT);
    g->stopping = MT_LUA_RUNNING;
    lua_pushfstring(L, "module %s (%s) did not finish loading within %ss", name,
                    file, secs);
    return 1;
  }
  /* A stop of the code around it (its deadline, the runtime's abort, the
   * memory limit) and errors that are not text pass on as they are. */
  if (g->stopping == MT_LUA_RUNNING && lua_type(L, -1) == LUA_TSTRING)
    lua_pushfstring(L, "module %s: %s", name, lua_tostring(L, -1));
  return 1;
}

/* Stack: unchanged. cache[name] = the value on top (popped), by index. */
static void cache_set(lua_State *L, int cache, int name) {
  lua_pushvalue(L, name);
  lua_insert(L, -2);
  lua_rawset(L, cache);
}

/* require(name) -> the module's value. Upvalue 1: the cache, shared by
 * the script that owns this require and every module it loads. */
static int sandbox_require(lua_State *L) {
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  lua_settop(L, 1);
  int cache = lua_upvalueindex(1);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, cache) != LUA_TNIL) {
    if (lua_touserdata(L, -1) == &loading_mark)
      return luaL_error(L, "module %s requires itself (a require cycle)", name);
    return 1;
  }
  lua_pop(L, 1);
  if (strlen(name) != len || !module_name_valid(name))
    return luaL_error(L,
                      "require: \"%s\" is not a module name (modules are "
                      "lib.<name>, the file <name>.lua in the lib folder, "
                      "with dots for subfolders: lib.billing.stripe)",
                      name);
  const char *dir = mt_lua_stdlib_lib_dir(L);
  if (dir == NULL)
    return luaL_error(L, "require: there is no lib folder here (modules "
                         "load in task files)");
  /* Stack: name -> name file */
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, dir);
  luaL_addchar(&b, '/');
  for (const char *p = name + 4; *p; p++)
    luaL_addchar(&b, *p == '.' ? '/' : *p);
  luaL_addstring(&b, ".lua");
  luaL_pushresult(&b);
  const char *file = lua_tostring(L, 2);
  if (!mt_lua_file_exists(L, file))
    return luaL_error(L, "module %s not found: no file %s", name, file);

  /* Stack: name file -> name file env chunk name file. The module's
   * globals are its own; its require shares this cache. */
  lua_pushlightuserdata(L, (void *)&loading_mark);
  cache_set(L, cache, 1);
  mt_lua_env_push(L);
  lua_pushvalue(L, cache);
  lua_pushcclosure(L, sandbox_require, 1);
  lua_setfield(L, -2, "require");
  mt_err_t err;
  int failed = mt_lua_load_file(L, file, -1, &err) != 0;
  if (failed)
    lua_pushfstring(L, "module %s: %s", name, err.msg);
  else {
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    failed = run_module(L, name, file);
  }
  if (failed) {
    /* Forgotten, so that a later require tries again. */
    lua_pushnil(L);
    cache_set(L, cache, 1);
    return lua_error(L);
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, -1);
  cache_set(L, cache, 1);
  return 1;
}

void mt_lua_require_push(lua_State *L) {
  lua_newtable(L);
  lua_pushcclosure(L, sandbox_require, 1);
}

/* ---- ctx.env ----------------------------------------------------------- */

/* Whether s is the value of a variable ctx.env may read: a handler that
 * passes a secret where a name belongs, ctx.env(ctx.env("KEY")), must not
 * get it printed in the warning below. Upvalue 1: the allowed names. */
static int is_allowed_value(lua_State *L, const char *s) {
  int found = 0;
  lua_pushnil(L);
  while (lua_next(L, lua_upvalueindex(1)) != 0) {
    lua_pop(L, 1);
    const char *v =
        lua_type(L, -1) == LUA_TSTRING ? getenv(lua_tostring(L, -1)) : NULL;
    found |= v != NULL && *v != '\0' && strcmp(v, s) == 0;
  }
  return found;
}

/* ctx.env(name) -> value | nil. Upvalues: the allowed names, the names
 * already warned about. The value is handed to the handler only: no
 * message here, or anywhere the function reaches, carries it. */
static int ctx_env(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_settop(L, 1);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TNIL) {
    lua_pushvalue(L, 1);
    if (lua_rawget(L, lua_upvalueindex(2)) == LUA_TNIL) {
      /* Once per name and state: a handler that reads an optional
       * setting on every run should not fill the log. */
      lua_pushvalue(L, 1);
      lua_pushboolean(L, 1);
      lua_rawset(L, lua_upvalueindex(2));
      mt_buf_t shown = MT_BUF_INIT;
      if (is_allowed_value(L, name)) {
        mt_buf_puts(&shown, "<the value of an allowed variable, withheld>");
      } else {
        mt_buf_putc(&shown, '"');
        mt_text_escape(&shown, name, 0);
        mt_buf_putc(&shown, '"');
      }
      mt_log(MT_LOG_WARN,
             "ctx.env(%.120s) reads nil: it is not in "
             "config.lua's env list",
             shown.data != NULL ? shown.data : "");
      mt_buf_free(&shown);
    }
    lua_pushnil(L);
    return 1;
  }
  const char *value = getenv(name);
  if (value != NULL)
    lua_pushstring(L, value);
  else
    lua_pushnil(L);
  return 1;
}

void mt_lua_ctx_env_push(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, ENV_FN_KEY);
}
