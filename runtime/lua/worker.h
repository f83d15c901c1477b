/*
 * One worker's Lua state: the loaded tasks, the sandbox, and the machinery
 * to run one handler with a deadline. A count hook checks the deadline (and
 * the shutdown abort flag) every few thousand VM instructions, so a handler
 * stuck in a Lua loop is stopped too; the hook keeps raising until the
 * handler has unwound, so a pcall inside the handler cannot swallow it.
 */
#ifndef MT_LUA_WORKER_H
#define MT_LUA_WORKER_H

#include "common/error.h"
#include "executor/task.h"
#include "executor/task_tx.h"
#include "lua/tasks.h"

typedef struct mt_lua_worker_s mt_lua_worker_t;

int mt_lua_worker_new(mt_lua_worker_t **out, const char *tasks_dir,
                      const mt_task_defaults_t *defaults, mt_err_t *err);
void mt_lua_worker_free(mt_lua_worker_t *w);

/* The worker's own copy of the task definitions. */
const mt_registry_t *mt_lua_worker_registry(const mt_lua_worker_t *w);

/* Runs task's handler with tx (whose deadline bounds it). Returns 0 when the
 * handler returned, MT_ENOTASK when no such task is loaded, MT_EPAYLOAD when
 * the payload is not JSON, MT_ETIMEDOUT when it was stopped, MT_ELUA when it
 * raised; err then carries the message and the Lua traceback. */
int mt_lua_worker_run(mt_lua_worker_t *w, const mt_task_t *task, mt_tx_t *tx,
                      mt_err_t *err);

#endif
