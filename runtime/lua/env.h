/*
 * The Lua environment task scripts run in: an allow-listed sandbox (no io,
 * no os.execute, no debug, no loading of bytecode), the `json` library, and
 * the one protected-call helper every call from C into Lua goes through.
 */
#ifndef MT_LUA_ENV_H
#define MT_LUA_ENV_H

#include <lua.h>

#include "common/error.h"

/* A flag a state's owner raises to stop the running script for good. The
 * sandbox's pcall, xpcall and coroutine.resume re-raise errors while it is
 * set, so a script cannot catch its own timeout. The owner stores a pointer
 * to its guard in the state's extra space (lua_getextraspace). */
typedef struct mt_lua_guard_s {
  int stopping;
} mt_lua_guard_t;

/* Opens the safe standard libraries and builds the shared sandbox base.
 * Call once per lua_State, before loading scripts. */
void mt_lua_env_open(lua_State *L);

/* Stack: -> env. Pushes a fresh global table for one script; reads fall back
 * to the sandbox base, writes stay in the script's own table. */
void mt_lua_env_push(lua_State *L);

/* Loads a file in text mode as a chunk whose _ENV is the table at env_idx.
 * Stack: -> chunk on success; nothing on error (err has file:line). */
int mt_lua_load_file(lua_State *L, const char *path, int env_idx, mt_err_t *err);

/* lua_pcall with a message handler that appends a traceback. On error, err
 * receives the message and the stack holds nothing of the call. */
int mt_lua_pcall(lua_State *L, int nargs, int nresults, mt_err_t *err);

#endif
