/*
 * Loading task scripts. Every `*.lua` file under the tasks folder defines one
 * task named after its path (`attendance/merge_pools.lua` is
 * `attendance.merge_pools`) unless the returned table gives a `name`. Each
 * script runs in its own sandboxed global table.
 */
#ifndef MT_LUA_TASKS_H
#define MT_LUA_TASKS_H

#include <lua.h>

#include "common/error.h"
#include "service/registry.h"

typedef struct mt_task_defaults_s {
  double timeout;          /* config task_timeout */
  size_t memory_limit;     /* config memory_limit, bytes */
  const char *schemas_dir; /* where `schema = "a.b"` looks: <dir>/a/b.lua */
  const char *lib_dir;     /* where require("lib.x") looks; NULL: <dir>/lib */
  const char *const *env;  /* what ctx.env may read: names, NULL-terminated;
                              NULL: nothing */
  /* Where the script files are read from: a snapshot (lua/sources.h) that
   * each state loading tasks takes a reference to, or NULL: the disk. */
  struct mt_sources_s *sources;
} mt_task_defaults_t;

/* Loads every task under dir into L (the state must have been opened with
 * mt_lua_env_open) and, when reg is not NULL, records each definition in it.
 * Stops at the first broken script with an error naming its file (and line,
 * when Lua knows it). */
int mt_lua_tasks_load(lua_State *L, const char *dir,
                      const mt_task_defaults_t *defaults, mt_registry_t *reg,
                      mt_err_t *err);

/* `moontask check`: loads every task file and every schema file on its
 * own, as the runtime would, and reports each problem (file and line where
 * Lua knows it) instead of stopping at the first. Returns their number. */
int mt_lua_tasks_check(const char *tasks_dir,
                       const mt_task_defaults_t *defaults,
                       void (*report)(void *arg, const char *problem),
                       void *arg);

/* Stack: -> handler | nothing. Pushes the handler of task `name` and returns
 * 1, or returns 0 when no such task is loaded. */
int mt_lua_tasks_push_handler(lua_State *L, const char *name);

/* Loads the definitions alone, in a throwaway state: what the CLI and the
 * runtime's main thread need to know about tasks without running them. */
int mt_lua_registry_load(const char *dir, const mt_task_defaults_t *defaults,
                         mt_registry_t *reg, mt_err_t *err);

#endif
