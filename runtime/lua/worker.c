#include "lua/worker.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "lua/env.h"
#include "lua/json.h"
#include "lua/sources.h"
#include "lua/stdlib.h"
#include "lua/tx.h"

struct mt_lua_worker_s {
  mt_lua_guard_t *guard; /* the state's limits and its allocator's count */
  lua_State *L;
  mt_registry_t registry;
  char *tasks_dir;
  mt_task_defaults_t defaults;
};

/* ctx.log(level, fmt, ...): one line of the runtime's log naming the
 * task. The level is the log's ("debug", "info", "warn", "error"); another
 * word logs at info and keeps the word. The text is the handler's: the log
 * escapes its control characters, so that it cannot drive the operator's
 * terminal, and masks what looks like a password in a URL. */
static int ctx_log(lua_State *L) {
  const char *level = luaL_checkstring(L, 1);
  luaL_checkstring(L, 2);
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(3)); /* string.format */
  for (int i = 2; i <= n; i++)
    lua_pushvalue(L, i);
  lua_call(L, n - 1, 1);
  int known = mt_log_level_parse(level);
  mt_log_event(known >= 0 ? (mt_log_level_t)known : MT_LOG_INFO,
               lua_tostring(L, -1),
               MT_LOG_S("task", lua_tostring(L, lua_upvalueindex(1))),
               MT_LOG_S("id", lua_tostring(L, lua_upvalueindex(2))),
               MT_LOG_S("handler_level", known >= 0 ? NULL : level));
  return 0;
}

#define SNOOZE_META "moontask.snooze"

/* ctx.snooze(seconds) -> a value for the handler to return: its task goes
 * back to `scheduled` for that long, with its transaction's effects, and
 * the attempt does not count. A value returned rather than an error
 * raised: a pcall in the handler cannot swallow it, and the handler says
 * plainly where it ends. */
static int ctx_snooze(lua_State *L) {
  lua_Number seconds = lua_type(L, 1) == LUA_TNUMBER ? lua_tonumber(L, 1) : 0;
  /* Also refuses NaN, which fails every comparison. */
  if (!(seconds > 0 && seconds <= MT_SNOOZE_MAX))
    return luaL_argerror(L, 1,
                         lua_pushfstring(L,
                                         "seconds must be a number more than "
                                         "0 and at most %d (30 days), not %s",
                                         (int)MT_SNOOZE_MAX,
                                         luaL_tolstring(L, 1, NULL)));
  lua_Number *slot = lua_newuserdatauv(L, sizeof *slot, 0);
  *slot = seconds;
  luaL_setmetatable(L, SNOOZE_META);
  return 1;
}

static int snooze_tostring(lua_State *L) {
  lua_Number *slot = luaL_checkudata(L, 1, SNOOZE_META);
  lua_pushfstring(L, "snooze (%f s)", *slot);
  return 1;
}

/* Registers the metatable that marks ctx.snooze's values. Every task's
 * snoozes share it, so getmetatable must not hand it out. */
static void snooze_open(lua_State *L) {
  luaL_newmetatable(L, SNOOZE_META);
  lua_pushcfunction(L, snooze_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

/* Stack: -> ctx */
static void push_ctx(lua_State *L, const mt_task_t *task,
                     const mt_task_def_t *def) {
  lua_createtable(L, 0, 8);
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
  /* The real string.format: no script can reach, let alone replace, it. */
  lua_getglobal(L, "string");
  lua_getfield(L, -1, "format");
  lua_remove(L, -2);
  lua_pushcclosure(L, ctx_log, 3);
  lua_setfield(L, -2, "log");
  mt_lua_ctx_env_push(L);
  lua_setfield(L, -2, "env");
  lua_pushcfunction(L, ctx_snooze);
  lua_setfield(L, -2, "snooze");
}

/* Makes a state (and its guard) with every task loaded into it and reg. */
static int load_state(const mt_lua_worker_t *w, lua_State **L_out,
                      mt_lua_guard_t **guard_out, mt_registry_t *reg,
                      mt_err_t *err) {
  int rc;
  lua_State *L = NULL;
  mt_lua_guard_t *guard = malloc(sizeof *guard);
  if (guard == NULL || (L = mt_lua_state_new(guard)) == NULL) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto fail;
  }
  guard->load_limit = w->defaults.memory_limit;
  mt_lua_env_open(L);
  mt_lua_tx_open(L);
  snooze_open(L);
  if ((rc = mt_lua_tasks_load(L, w->tasks_dir, &w->defaults, reg, err)) != 0)
    goto fail;
  *L_out = L;
  *guard_out = guard;
  return 0;
fail:
  if (L != NULL)
    lua_close(L);
  free(guard);
  return rc;
}

/* A copy of a NULL-terminated list of strings (NULL for NULL), or NULL
 * without memory (*ok is then 0). */
static char **strv_dup(const char *const *v, int *ok) {
  size_t n = 0;
  *ok = 1;
  if (v == NULL)
    return NULL;
  while (v[n] != NULL)
    n++;
  char **copy = calloc(n + 1, sizeof *copy);
  for (size_t i = 0; copy != NULL && i < n; i++)
    if ((copy[i] = strdup(v[i])) == NULL) {
      while (i > 0)
        free(copy[--i]);
      free(copy);
      copy = NULL;
    }
  *ok = copy != NULL;
  return copy;
}

static void strv_free(const char *const *v) {
  for (size_t i = 0; v != NULL && v[i] != NULL; i++)
    free((char *)v[i]);
  free((void *)v);
}

int mt_lua_worker_new(mt_lua_worker_t **out, const char *tasks_dir,
                      const mt_task_defaults_t *defaults, mt_err_t *err) {
  int rc = 0;
  mt_lua_worker_t *w = calloc(1, sizeof *w);
  if (w == NULL || (w->tasks_dir = strdup(tasks_dir)) == NULL) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto fail;
  }
  /* The defaults are kept for mt_lua_worker_renew, with copies of the
   * caller's strings. */
  w->defaults = *defaults;
  w->defaults.schemas_dir = NULL;
  w->defaults.lib_dir = NULL;
  if (defaults->sources != NULL)
    mt_sources_ref(defaults->sources);
  int ok;
  w->defaults.env = (const char *const *)strv_dup(defaults->env, &ok);
  if (!ok ||
      (defaults->schemas_dir != NULL &&
       (w->defaults.schemas_dir = strdup(defaults->schemas_dir)) == NULL) ||
      (defaults->lib_dir != NULL &&
       (w->defaults.lib_dir = strdup(defaults->lib_dir)) == NULL)) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto fail;
  }
  if ((rc = load_state(w, &w->L, &w->guard, &w->registry, err)) != 0)
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
  free(w->guard);
  mt_registry_free(&w->registry);
  free(w->tasks_dir);
  free((char *)w->defaults.schemas_dir);
  free((char *)w->defaults.lib_dir);
  strv_free(w->defaults.env);
  mt_sources_unref(w->defaults.sources);
  free(w);
}

const mt_registry_t *mt_lua_worker_registry(const mt_lua_worker_t *w) {
  return &w->registry;
}

int mt_lua_worker_renew(mt_lua_worker_t *w, mt_err_t *err) {
  mt_registry_t reg = {0};
  lua_State *L;
  mt_lua_guard_t *guard;
  int rc = load_state(w, &L, &guard, &reg, err);
  if (rc != 0) {
    /* The files no longer load: keep serving the old definitions, with
     * what the collector can give back. */
    mt_registry_free(&reg);
    lua_gc(w->L, LUA_GCCOLLECT);
    return rc;
  }
  lua_close(w->L);
  free(w->guard);
  mt_registry_free(&w->registry);
  w->L = L;
  w->guard = guard;
  w->registry = reg;
  return 0;
}

/* What call_handler needs, passed as a light userdata. */
typedef struct handler_call_s {
  const mt_task_t *task;
  const mt_task_def_t *def;
  mt_err_t *err;
  int rc;        /* MT_EPAYLOAD when the payload is not JSON */
  double snooze; /* what the handler returned ctx.snooze for, or 0 */
} handler_call_t;

/* Stack: call handler tx -> (whatever). Decodes the payload, builds ctx
 * and runs the handler. It runs inside mt_lua_pcall with the task's limits
 * armed, so that a payload too big for the memory limit fails the task
 * instead of raising where nothing catches it. */
static int call_handler(lua_State *L) {
  handler_call_t *c = lua_touserdata(L, 1);
  if (mt_json_decode(L, c->task->payload, strlen(c->task->payload), c->err)) {
    c->rc = MT_EPAYLOAD;
    return 0;
  }
  push_ctx(L, c->task, c->def);
  lua_call(L, 3, 1); /* handler(tx, payload, ctx) */
  /* Whatever else a handler returns means nothing. */
  lua_Number *snooze = luaL_testudata(L, -1, SNOOZE_META);
  if (snooze != NULL)
    c->snooze = *snooze;
  return 0;
}

int mt_lua_worker_run(mt_lua_worker_t *w, const mt_task_t *task, mt_tx_t *tx,
                      double *snooze, mt_err_t *err) {
  lua_State *L = w->L;
  mt_lua_guard_t *guard = w->guard;
  int top = lua_gettop(L);
  const mt_task_def_t *def = mt_registry_find(&w->registry, task->name);
  *snooze = 0;
  if (def == NULL || !mt_lua_tasks_push_handler(L, task->name))
    return mt_err_set(err, MT_ENOTASK,
                      "unknown task \"%s\": no task file defines it",
                      task->name);
  /* Stack: handler tx. The tx stays referenced below the call so that it
   * can be closed after the handler returns, however it returns. */
  mt_lua_tx_push(L, tx);
  int tx_idx = lua_gettop(L);
  handler_call_t call = {task, def, err, 0, 0};
  lua_pushcfunction(L, call_handler);
  lua_pushlightuserdata(L, &call);
  lua_pushvalue(L, tx_idx - 1);
  lua_pushvalue(L, tx_idx);
  mt_lua_guard_arm(guard, 0, def->memory_limit, tx->abort);
  guard->deadline = tx->deadline;
  int rc = mt_lua_pcall(L, 3, 0, err);
  if (rc == 0)
    rc = call.rc;
  if (rc == 0)
    *snooze = call.snooze;
  mt_lua_tx_close(L, tx_idx);
  char reason[64];
  if (rc != 0 && guard->stopping == MT_LUA_OUT_OF_MEMORY) {
    rc = mt_err_set(err, MT_ENOMEM, "%s",
                    mt_lua_guard_reason(guard, reason, sizeof reason));
  } else if (rc == MT_ENOMEM) {
    /* Refused once and not caught: the same limit, reached in one go. */
    guard->stopping = MT_LUA_OUT_OF_MEMORY;
    rc = mt_err_set(err, MT_ENOMEM, "%s",
                    mt_lua_guard_reason(guard, reason, sizeof reason));
  } else if (rc != 0 && rc != MT_EPAYLOAD &&
             guard->stopping != MT_LUA_RUNNING) {
    rc = MT_ETIMEDOUT;
  }
  mt_lua_guard_disarm(guard);
  lua_settop(L, top);
  return rc;
}
