#include "lua/worker.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/env.h"
#include "lua/json.h"
#include "lua/tx.h"
#include "postgres/pg.h"

/* How often, in VM instructions, the hook looks at the clock. Reading the
 * monotonic clock costs some tens of nanoseconds; every 1000 instructions
 * keeps that well under 1% while stopping a runaway loop within microseconds
 * of its deadline. */
#define HOOK_INTERVAL 1000

struct mt_lua_worker_s {
  mt_lua_guard_t guard; /* first: the state's extra space points here */
  lua_State *L;
  mt_registry_t registry;
  mt_tx_t *running; /* the task in progress, for the hook */
};

static mt_lua_worker_t *worker_of(lua_State *L) {
  return (mt_lua_worker_t *)*(mt_lua_guard_t **)lua_getextraspace(L);
}

static void deadline_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  mt_lua_worker_t *w = worker_of(L);
  mt_tx_t *tx = w->running;
  if (tx == NULL)
    return;
  if (!w->guard.stopping &&
      (mt_now() > tx->deadline || atomic_load(tx->abort)))
    w->guard.stopping = 1;
  if (w->guard.stopping)
    luaL_error(L, atomic_load(tx->abort)
                      ? "the runtime is shutting down: task aborted"
                      : "task timed out");
}

/* ctx.log(level, fmt, ...): one line on stderr naming the task. */
static int ctx_log(lua_State *L) {
  const char *level = luaL_checkstring(L, 1);
  luaL_checkstring(L, 2);
  int n = lua_gettop(L);
  lua_getglobal(L, "string");
  lua_getfield(L, -1, "format");
  for (int i = 2; i <= n; i++)
    lua_pushvalue(L, i);
  lua_call(L, n - 1, 1);
  fprintf(stderr, "moontask: [%s #%s] %s: %s\n",
          lua_tostring(L, lua_upvalueindex(1)),
          lua_tostring(L, lua_upvalueindex(2)), level, lua_tostring(L, -1));
  return 0;
}

/* Stack: -> ctx */
static void push_ctx(lua_State *L, const mt_task_t *task,
                     const mt_task_def_t *def) {
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, task->id);
  lua_setfield(L, -2, "id");
  lua_pushstring(L, task->name);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, task->attempt);
  lua_setfield(L, -2, "attempt");
  lua_pushinteger(L, task->max_attempts > 0 ? task->max_attempts
                                            : def->max_attempts);
  lua_setfield(L, -2, "max_attempts");
  lua_pushstring(L, task->run_at);
  lua_setfield(L, -2, "run_at");
  lua_pushstring(L, task->name);
  lua_pushinteger(L, task->id);
  lua_pushcclosure(L, ctx_log, 2);
  lua_setfield(L, -2, "log");
}

int mt_lua_worker_new(mt_lua_worker_t **out, const char *tasks_dir,
                      const mt_task_defaults_t *defaults, mt_err_t *err) {
  int rc;
  mt_lua_worker_t *w = calloc(1, sizeof *w);
  if (w == NULL)
    return MT_ENOMEM;
  if ((w->L = luaL_newstate()) == NULL) {
    rc = MT_ENOMEM;
    goto fail;
  }
  *(mt_lua_guard_t **)lua_getextraspace(w->L) = &w->guard;
  mt_lua_env_open(w->L);
  mt_lua_tx_open(w->L);
  if ((rc = mt_lua_tasks_load(w->L, tasks_dir, defaults, &w->registry, err)))
    goto fail;
  *out = w;
  return 0;
fail:
  mt_lua_worker_free(w);
  return rc;
}

void mt_lua_worker_free(mt_lua_worker_t *w) {
  if (w == NULL)
    return;
  if (w->L != NULL)
    lua_close(w->L);
  mt_registry_free(&w->registry);
  free(w);
}

const mt_registry_t *mt_lua_worker_registry(const mt_lua_worker_t *w) {
  return &w->registry;
}

int mt_lua_worker_run(mt_lua_worker_t *w, const mt_task_t *task, mt_tx_t *tx,
                      mt_err_t *err) {
  lua_State *L = w->L;
  int top = lua_gettop(L);
  const mt_task_def_t *def = mt_registry_find(&w->registry, task->name);
  if (def == NULL || !mt_lua_tasks_push_handler(L, task->name))
    return mt_err_set(err, MT_ENOTASK,
                      "unknown task \"%s\": no task file defines it",
                      task->name);
  mt_lua_tx_push(L, tx);
  int tx_idx = lua_gettop(L);
  if (mt_json_decode(L, task->payload, strlen(task->payload), err) != 0) {
    lua_settop(L, top);
    return MT_EPAYLOAD;
  }
  push_ctx(L, task, def);

  /* Stack: handler tx payload ctx. The tx stays referenced below the call
   * so that it can be closed after the handler returns. */
  lua_pushvalue(L, tx_idx);
  lua_insert(L, tx_idx - 1);
  w->running = tx;
  w->guard.stopping = 0;
  lua_sethook(L, deadline_hook, LUA_MASKCOUNT, HOOK_INTERVAL);
  int rc = mt_lua_pcall(L, 3, 0, err);
  lua_sethook(L, NULL, 0, 0);
  if (rc != 0 && w->guard.stopping)
    rc = MT_ETIMEDOUT;
  w->running = NULL;
  mt_lua_tx_close(L, -1);
  lua_settop(L, top);
  return rc;
}
