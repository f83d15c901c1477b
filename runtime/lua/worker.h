/*
 * One worker's Lua state: the loaded tasks, the sandbox, and the machinery
 * to run one handler within its limits. The state's guard (lua/env.h)
 * bounds every handler: its deadline and the runtime's abort flag stop it
 * wherever it runs (any coroutine, an xpcall message handler, a long
 * pattern match), and its memory limit stops it before it takes the
 * process down. The worker owns the state, its guard and its registry.
 */
#ifndef MT_LUA_WORKER_H
#define MT_LUA_WORKER_H

#include "backend.h"
#include "common/error.h"
#include "lua/tasks.h"
#include "task.h"

typedef struct mt_lua_worker_s mt_lua_worker_t;

int mt_lua_worker_new(mt_lua_worker_t **out, const char *tasks_dir,
                      const mt_task_defaults_t *defaults, mt_err_t *err);
void mt_lua_worker_free(mt_lua_worker_t *w);

/* The worker's own copy of the task definitions. */
const mt_registry_t *mt_lua_worker_registry(const mt_lua_worker_t *w);

/* The longest a handler may put its task off with ctx.snooze: longer is a
 * task to reschedule, not to snooze. */
#define MT_SNOOZE_MAX (30 * 86400.0)

/* Runs task's handler with tx (whose deadline bounds it). Returns 0 when the
 * handler returned, MT_ENOTASK when no such task is loaded, MT_EPAYLOAD when
 * the payload is not JSON, MT_ETIMEDOUT when it ran out of time or the
 * runtime aborted it, MT_ENOMEM when it passed its memory limit, MT_ELUA
 * when it raised; err then carries the message and the Lua traceback.
 * *snooze is the seconds of the ctx.snooze(seconds) the handler returned,
 * or 0 (always 0 unless it returned). */
int mt_lua_worker_run(mt_lua_worker_t *w, const mt_task_t *task, mt_tx_t *tx,
                      double *snooze, mt_err_t *err);

/* Replaces the worker's Lua state with a fresh one, loaded from the same
 * files: after a handler passed its memory limit, whatever it left
 * reachable (in its file's globals, say) is given back. Definitions
 * obtained from mt_lua_worker_registry before the call are gone after it.
 * On failure the old state stays. */
int mt_lua_worker_renew(mt_lua_worker_t *w, mt_err_t *err);

#endif
