/*
 * The handler's toolkit: the `moontask` library table (http, crypto, json),
 * `require` for shared modules, and the reader behind `ctx.env`.
 *
 * Shared modules live in one folder, the lib folder (config lib_dir, by
 * default <tasks dir>/lib), and only there: `require("lib.money")` loads
 * <lib folder>/money.lua, `require("lib.billing.stripe")`
 * <lib folder>/billing/stripe.lua. No package.path, no C modules, and the
 * name's grammar (dotted identifiers) leaves no way to write `..`. A module
 * runs in the sandbox as a task file does, in a global table of its own,
 * and within the load time limit.
 *
 * Each script's environment (lua/env.c) gets a require of its own, with a
 * cache of its own that the modules it loads share: a task file and the
 * modules it requires see one copy of each module, and no other task file
 * sees that copy. A module's table is as mutable as any Lua table, so
 * sharing it between task files would let one task change what another
 * runs; the price is that a module used by N task files loads N times per
 * Lua state, at load time.
 *
 * What a state may read (its lib folder, the environment variables config
 * allows) is set once per state, by whoever loads its task files, with
 * mt_lua_stdlib_configure; it lives in the state's registry.
 */
#ifndef MT_LUA_STDLIB_H
#define MT_LUA_STDLIB_H

#include <lua.h>

#include "common/error.h"

/* Stack: -> moontask. The library table every script's copy is made from:
 * http and crypto. (Its json is the script's own json table, added by
 * mt_lua_env_push, so that moontask.json and json are one table.) */
void mt_lua_stdlib_open(lua_State *L);

/* The lib folder: lib_dir, or <tasks_dir>/lib when lib_dir is NULL (and
 * tasks/lib when both are). The one rule for it: require() looks there,
 * the task loader leaves it out, and a reload reads and watches it. */
void mt_lua_lib_dir(const char *tasks_dir, const char *lib_dir, char *out,
                    size_t size);

/* Sets where require looks and what ctx.env may read, for state L: the lib
 * folder is mt_lua_lib_dir's; env is the NULL-terminated list of variable
 * names config.lua allows (NULL: none), as config/config.h checked them.
 * Call before loading task files; calling again replaces the settings. */
void mt_lua_stdlib_configure(lua_State *L, const char *tasks_dir,
                             const char *lib_dir, const char *const *env);

/* The lib folder mt_lua_stdlib_configure set for L, or NULL. The string
 * belongs to the state and lives until the next configure. */
const char *mt_lua_stdlib_lib_dir(lua_State *L);

/* Stack: -> require. A require function with a module cache of its own,
 * for one script's environment. */
void mt_lua_require_push(lua_State *L);

/* Stack: -> env. The function a handler gets as ctx.env (the one
 * mt_lua_stdlib_configure made for L): ctx.env(NAME)
 * returns the variable's value when config.lua's `env` list names it (nil
 * when it is unset), and nil for any other name, with a warning naming
 * the config key the first time the state sees that name. It never
 * prints a value. */
void mt_lua_ctx_env_push(lua_State *L);

#endif
