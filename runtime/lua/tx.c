#include "lua/tx.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "json/read.h"
#include "lua/env.h"
#include "lua/json.h"
#include "postgres/pg_service.h"
#include "scheduler/scheduler.h"
#include "service/service.h"

#define TX_META "moontask.tx"

/* PostgreSQL type OIDs that map to Lua types other than string. */
enum {
  OID_BOOL = 16,
  OID_INT8 = 20,
  OID_INT2 = 21,
  OID_INT4 = 23,
  OID_OID = 26,
  OID_JSON = 114,
  OID_FLOAT4 = 700,
  OID_FLOAT8 = 701,
  OID_NUMERIC = 1700,
  OID_JSONB = 3802,
};

typedef struct tx_handle_s {
  mt_tx_t *tx; /* NULL once closed */
} tx_handle_t;

static mt_tx_t *check_tx(lua_State *L) {
  tx_handle_t *h = luaL_checkudata(L, 1, TX_META);
  if (h->tx == NULL)
    luaL_error(L, "attempt to use a closed transaction");
  return h->tx;
}

/* Converts the Lua arguments from index `first` on into text parameters.
 * Strings are kept by the Lua stack; other values are formatted into bufs,
 * which the caller frees. */
static int collect_params(lua_State *L, int first, const char ***out,
                          mt_buf_t **bufs_out) {
  int n = lua_gettop(L) - first + 1;
  if (n < 0)
    n = 0;
  size_t slots = (size_t)n + 1;
  const char **params = lua_newuserdatauv(L, sizeof *params * slots, 0);
  mt_buf_t *bufs = lua_newuserdatauv(L, sizeof *bufs * slots, 0);
  memset(bufs, 0, sizeof *bufs * slots);
  for (int i = 0; i < n; i++) {
    int idx = first + i;
    mt_err_t err;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: params[i] = NULL; break;
    case LUA_TBOOLEAN:
      params[i] = lua_toboolean(L, idx) ? "true" : "false";
      break;
    case LUA_TNUMBER:
      /* lua_tostring keeps 14 digits of a float; a parameter needs all. */
      if (lua_isinteger(L, idx))
        mt_buf_printf(&bufs[i], LUA_INTEGER_FMT, lua_tointeger(L, idx));
      else
        mt_buf_printf(&bufs[i], "%.17g", lua_tonumber(L, idx));
      params[i] = bufs[i].data;
      break;
    case LUA_TSTRING: params[i] = lua_tostring(L, idx); break;
    case LUA_TTABLE:
      if (mt_json_encode(L, idx, &bufs[i], &err) != 0) {
        for (int j = 0; j <= i; j++)
          mt_buf_free(&bufs[j]);
        return luaL_error(L, "parameter $%d: %s", i + 1, err.msg);
      }
      params[i] = bufs[i].data;
      break;
    default:
      if (lua_touserdata(L, idx) == NULL && lua_islightuserdata(L, idx)) {
        params[i] = NULL; /* json.null */
        break;
      }
      for (int j = 0; j < i; j++)
        mt_buf_free(&bufs[j]);
      return luaL_error(L, "parameter $%d: cannot bind a %s", i + 1,
                        luaL_typename(L, idx));
    }
  }
  *out = params;
  *bufs_out = bufs;
  return n;
}

static void free_bufs(mt_buf_t *bufs, int n) {
  for (int i = 0; i < n; i++)
    mt_buf_free(&bufs[i]);
}

/* Stack: -> value. Pushes one field of a row as its Lua value. */
static void push_value(lua_State *L, const PGresult *res, int row, int col) {
  if (PQgetisnull(res, row, col)) {
    lua_pushnil(L);
    return;
  }
  const char *text = PQgetvalue(res, row, col);
  size_t len = (size_t)PQgetlength(res, row, col);
  mt_err_t err;
  switch (PQftype(res, col)) {
  case OID_BOOL: lua_pushboolean(L, text[0] == 't'); break;
  case OID_INT2:
  case OID_INT4:
  case OID_INT8:
  case OID_OID:
  case OID_FLOAT4:
  case OID_FLOAT8:
  case OID_NUMERIC:
    if (lua_stringtonumber(L, text) == 0)
      lua_pushlstring(L, text, len); /* NaN, Infinity */
    break;
  case OID_JSON:
  case OID_JSONB:
    if (mt_json_decode(L, text, len, &err) != 0)
      lua_pushlstring(L, text, len);
    break;
  default: lua_pushlstring(L, text, len);
  }
}

/* Raises the error of a failed statement as "SQLSTATE: message". A
 * timeout also marks the state as stopping, so that the sandbox's pcall
 * cannot swallow it and let the handler commit late. */
static int raise_sql_error(lua_State *L, int rc, const mt_err_t *err) {
  if (rc == MT_ETIMEDOUT) {
    mt_lua_guard_t *guard = mt_lua_guard(L);
    if (guard->stopping == MT_LUA_RUNNING)
      guard->stopping = MT_LUA_TIMED_OUT;
  }
  return luaL_error(L, "%s", err->msg);
}

/* Runs tx:method(sql, ...) in the task's transaction; raises on error. */
static PGresult *run_statement(lua_State *L) {
  mt_tx_t *tx = check_tx(L);
  const char *sql = luaL_checkstring(L, 2);
  const char **params = NULL;
  mt_buf_t *bufs = NULL;
  int n = collect_params(L, 3, &params, &bufs);
  PGresult *res = NULL;
  mt_err_t err;
  int rc = mt_tx_query(tx, sql, n, params, &res, &err);
  free_bufs(bufs, n);
  if (rc != 0)
    raise_sql_error(L, rc, &err);
  return res;
}

/* tx:query(sql, ...) -> { {col = value, ...}, ... } */
static int tx_query(lua_State *L) {
  PGresult *res = run_statement(L);
  int rows = PQntuples(res), cols = PQnfields(res);
  lua_createtable(L, rows, 0);
  for (int r = 0; r < rows; r++) {
    lua_createtable(L, 0, cols);
    for (int c = 0; c < cols; c++) {
      push_value(L, res, r, c);
      lua_setfield(L, -2, PQfname(res, c));
    }
    lua_rawseti(L, -2, r + 1);
  }
  PQclear(res);
  return 1;
}

/* tx:exec(sql, ...) -> number of rows affected */
static int tx_exec(lua_State *L) {
  PGresult *res = run_statement(L);
  const char *tuples = PQcmdTuples(res);
  lua_Integer count = *tuples ? strtoll(tuples, NULL, 10) : PQntuples(res);
  PQclear(res);
  lua_pushinteger(L, count);
  return 1;
}

/* Reads opts.run_at / opts.delay into RFC 3339 text (or NULL: now). */
static const char *schedule_run_at(lua_State *L, int opts,
                                   char buf[MT_RUN_AT_MAX]) {
  if (lua_isnoneornil(L, opts))
    return NULL;
  luaL_checktype(L, opts, LUA_TTABLE);
  const char *result = NULL;
  int has_run_at = 1;
  switch (lua_getfield(L, opts, "run_at")) {
  case LUA_TSTRING:
    snprintf(buf, MT_RUN_AT_MAX, "%s", lua_tostring(L, -1));
    result = buf;
    break;
  case LUA_TNUMBER:
    if (mt_scheduler_format_epoch(lua_tonumber(L, -1), buf) != 0)
      luaL_argerror(L, opts, "run_at is not an epoch in years 0001-9999");
    result = buf;
    break;
  case LUA_TNIL: has_run_at = 0; break;
  default:
    luaL_argerror(L, opts,
                  "run_at must be an RFC 3339 string or epoch seconds");
  }
  lua_pop(L, 1);
  int type = lua_getfield(L, opts, "delay");
  if (type == LUA_TNUMBER) {
    double delay = lua_tonumber(L, -1);
    if (!(delay >= 0 && delay <= MT_SCHEDULER_MAX_DELAY))
      luaL_argerror(L, opts,
                    lua_pushfstring(L,
                                    "delay must be from 0 to %f seconds "
                                    "(100 years)",
                                    (lua_Number)MT_SCHEDULER_MAX_DELAY));
    if (has_run_at)
      luaL_argerror(L, opts, "give run_at or delay, not both");
    mt_scheduler_after(delay, buf);
    result = buf;
  } else if (type != LUA_TNIL) {
    luaL_argerror(L, opts, "delay must be a number of seconds");
  }
  lua_pop(L, 1);
  return result;
}

/* Reads tx:schedule's opts other than the time (schedule_run_at) into
 * req. The strings stay alive: opts still holds them. */
static void schedule_opts(lua_State *L, int opts, mt_schedule_req_t *req) {
  if (!lua_istable(L, opts))
    return;
  if (lua_getfield(L, opts, "key") == LUA_TSTRING)
    req->key = lua_tostring(L, -1);
  else if (!lua_isnil(L, -1))
    luaL_argerror(L, opts, "key must be a string");
  lua_pop(L, 1);
  if (lua_getfield(L, opts, "queue") == LUA_TSTRING)
    req->queue = lua_tostring(L, -1);
  else if (!lua_isnil(L, -1))
    luaL_argerror(L, opts, "queue must be a string");
  lua_pop(L, 1);
  int type = lua_getfield(L, opts, "priority");
  if (type != LUA_TNIL) {
    int exact = 0;
    lua_Integer p = type == LUA_TNUMBER ? lua_tointegerx(L, -1, &exact) : 0;
    /* Checked here, before the cast to int can wrap a huge number into
     * the range. */
    if (!exact || p < MT_PRIORITY_MIN || p > MT_PRIORITY_MAX)
      luaL_argerror(L, opts,
                    lua_pushfstring(L,
                                    "priority must be an integer from %d to "
                                    "%d",
                                    MT_PRIORITY_MIN, MT_PRIORITY_MAX));
    req->has_priority = 1;
    req->priority = (int)p;
  }
  lua_pop(L, 1);
  type = lua_getfield(L, opts, "replace");
  if (type == LUA_TBOOLEAN)
    req->replace = lua_toboolean(L, -1);
  else if (type != LUA_TNIL)
    luaL_argerror(L, opts, "replace must be a boolean");
  lua_pop(L, 1);
}

/* tx:schedule(name, payload, opts) -> task id */
static int tx_schedule(lua_State *L) {
  mt_tx_t *tx = check_tx(L);
  mt_schedule_req_t req = {0};
  char run_at[MT_RUN_AT_MAX];
  req.name = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  req.run_at = schedule_run_at(L, 4, run_at);
  schedule_opts(L, 4, &req);
  mt_buf_t payload = MT_BUF_INIT;
  mt_err_t err;
  if (mt_json_encode(L, 3, &payload, &err) != 0) {
    mt_buf_free(&payload);
    return luaL_error(L, "tx:schedule(%s): payload: %s", req.name, err.msg);
  }
  req.payload = payload.data;
  int rc = mt_service_check(tx->registry, &req, &err);
  PGresult *res = NULL;
  if (rc == 0) {
    const char *params[MT_PG_SCHEDULE_PARAMS];
    char priority[MT_PG_PRIORITY_LEN];
    mt_pg_schedule_params(&req, priority, params);
    rc = mt_tx_query(tx, mt_pg_schedule_sql, MT_PG_SCHEDULE_PARAMS, params,
                     &res, &err);
  }
  mt_buf_free(&payload);
  if (rc == MT_ETIMEDOUT)
    return raise_sql_error(L, rc, &err);
  if (rc != 0)
    return luaL_error(L, "tx:schedule(%s): %s", req.name, err.msg);
  lua_Integer id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  lua_pushinteger(L, id);
  return 1;
}

/* The functions of the SQL interface that a handler reaches through its
 * tx (README "Reference: SQL"), in its transaction: what it cancels,
 * moves or reads commits or rolls back with the rest of its work. A task's
 * fields come back as tx:query's would, run_at in RFC 3339 UTC as ctx.run_at
 * has it (so that it can be handed back as a run_at). */
// clang-format off
#define TASK_FIELDS                                                           \
  "id, name, state,\n"                                                        \
  "  to_char(run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')\n" \
  "    AS run_at,\n"                                                          \
  "  attempts, max_attempts, last_error, key, queue, priority, payload"
// clang-format on
static const char get_sql[] =
    "SELECT " TASK_FIELDS " FROM moontask.get($1::bigint)";
static const char find_sql[] = "SELECT " TASK_FIELDS " FROM moontask.find($1)";
static const char name_sql[] = "SELECT name FROM moontask.get($1::bigint)";
static const char cancel_sql[] = "SELECT moontask.cancel($1::bigint)";
static const char cancel_key_sql[] = "SELECT moontask.cancel_key($1)";
static const char reschedule_sql[] =
    "SELECT moontask.reschedule($1::bigint, $2::timestamptz, $3::jsonb)";

/* Stack: -> boolean. The one boolean a call returned. */
static int push_result_boolean(lua_State *L, PGresult *res) {
  lua_pushboolean(L, PQntuples(res) > 0 && PQgetvalue(res, 0, 0)[0] == 't');
  PQclear(res);
  return 1;
}

/* The text of an id argument, checked as an integer. */
static const char *id_arg(lua_State *L, int arg, char buf[24]) {
  snprintf(buf, 24, LUA_INTEGER_FMT, luaL_checkinteger(L, arg));
  return buf;
}

/* The calls that take one argument, a task's id or a key, and return a
 * boolean (whether the task changed) or the task (a table, or nil). */
typedef struct task_call_s {
  const char *name; /* the method, as tx:<name> */
  const char *sql;  /* one of the statements above */
  int by_id;        /* the argument is an id, else a key */
  int task;         /* it returns the task, else a boolean */
} task_call_t;

static const task_call_t task_calls[] = {
    {"cancel", cancel_sql, 1, 0}, /* whether a scheduled task was cancelled */
    {"cancel_key", cancel_key_sql, 0, 0}, /* the same, by its key */
    {"get", get_sql, 1, 1},
    {"find", find_sql, 0, 1}, /* the live task with the key, or the latest */
};

/* tx:<call>(id or key): the call is the closure's upvalue. Runs in the
 * task's transaction; raises as tx:schedule does, naming the call. */
static int tx_call(lua_State *L) {
  const task_call_t *call = lua_touserdata(L, lua_upvalueindex(1));
  mt_tx_t *tx = check_tx(L);
  char id[24];
  const char *param = call->by_id ? id_arg(L, 2, id) : luaL_checkstring(L, 2);
  PGresult *res = NULL;
  mt_err_t err;
  int rc = mt_tx_query(tx, call->sql, 1, &param, &res, &err);
  if (rc == MT_ETIMEDOUT)
    return raise_sql_error(L, rc, &err);
  if (rc != 0)
    return luaL_error(L, "tx:%s: %s", call->name, err.msg);
  if (!call->task)
    return push_result_boolean(L, res);
  if (PQntuples(res) == 0) {
    PQclear(res);
    lua_pushnil(L);
    return 1;
  }
  /* The task's fields, those that are NULL absent. */
  int cols = PQnfields(res);
  lua_createtable(L, 0, cols);
  for (int c = 0; c < cols; c++) {
    push_value(L, res, 0, c);
    lua_setfield(L, -2, PQfname(res, c));
  }
  PQclear(res);
  return 1;
}

/* Checks a new payload for task id against its task's schema, as
 * tx:schedule checks one, before the task is changed: the task's name is
 * read in the handler's transaction. *found is 0 when the handler can see
 * no such task (then nothing was checked). */
static int check_new_payload(mt_tx_t *tx, const char *id, const char *payload,
                             int *found, mt_err_t *err) {
  PGresult *res = NULL;
  const char *params[] = {id};
  int rc = mt_json_check_object(payload, err);
  if (rc == 0)
    rc = mt_tx_query(tx, name_sql, 1, params, &res, err);
  if (rc != 0)
    return rc;
  *found = PQntuples(res) > 0;
  if (*found) {
    const char *name = PQgetvalue(res, 0, 0);
    const mt_task_def_t *def = mt_registry_find(tx->registry, name);
    rc = def != NULL ? mt_service_validate(def, payload, err)
                     : mt_err_set(err, MT_ENOTASK,
                                  "unknown task \"%s\": no task file "
                                  "defines it",
                                  name);
  }
  PQclear(res);
  return rc;
}

/* tx:reschedule(id, opts) -> whether a scheduled task was changed.
 * opts.run_at or opts.delay move it (as tx:schedule's do; without them it
 * keeps its time); opts.payload replaces its payload. */
static int tx_reschedule(lua_State *L) {
  mt_tx_t *tx = check_tx(L);
  char id[24], run_at[MT_RUN_AT_MAX];
  id_arg(L, 2, id);
  luaL_checktype(L, 3, LUA_TTABLE);
  const char *when = schedule_run_at(L, 3, run_at);
  int type = lua_getfield(L, 3, "payload");
  if (type != LUA_TNIL && type != LUA_TTABLE)
    luaL_argerror(L, 3, "payload must be a table");
  if (type == LUA_TNIL && when == NULL)
    luaL_argerror(L, 3, "nothing to change: give run_at, delay or payload");
  mt_buf_t payload = MT_BUF_INIT;
  PGresult *res = NULL;
  mt_err_t err;
  int found = 1, rc = 0;
  if (type == LUA_TTABLE && (rc = mt_json_encode(L, -1, &payload, &err)) == 0)
    rc = check_new_payload(tx, id, payload.data, &found, &err);
  if (rc == 0 && found) {
    const char *params[] = {id, when, payload.data};
    rc = mt_tx_query(tx, reschedule_sql, 3, params, &res, &err);
  }
  mt_buf_free(&payload);
  if (rc == MT_ETIMEDOUT)
    return raise_sql_error(L, rc, &err);
  if (rc != 0)
    return luaL_error(L, "tx:reschedule(%s): %s", id, err.msg);
  if (!found) {
    lua_pushboolean(L, 0);
    return 1;
  }
  return push_result_boolean(L, res);
}

static int tx_gc(lua_State *L) {
  tx_handle_t *h = luaL_checkudata(L, 1, TX_META);
  h->tx = NULL;
  return 0;
}

static int tx_tostring(lua_State *L) {
  tx_handle_t *h = luaL_checkudata(L, 1, TX_META);
  if (h->tx == NULL)
    lua_pushliteral(L, "transaction (closed)");
  else
    lua_pushfstring(L, "transaction (task %I)", (lua_Integer)h->tx->task_id);
  return 1;
}

static const luaL_Reg methods[] = {
    {"query", tx_query},           {"exec", tx_exec}, {"schedule", tx_schedule},
    {"reschedule", tx_reschedule}, {NULL, NULL},
};

static const luaL_Reg metameth[] = {
    {"__index", NULL}, /* placeholder */
    {"__gc", tx_gc},   {"__close", tx_gc}, {"__tostring", tx_tostring},
    {NULL, NULL},
};

void mt_lua_tx_open(lua_State *L) {
  luaL_newmetatable(L, TX_META);
  luaL_setfuncs(L, metameth, 0);
  luaL_newlibtable(L, methods);
  luaL_setfuncs(L, methods, 0);
  for (size_t i = 0; i < sizeof task_calls / sizeof task_calls[0]; i++) {
    lua_pushlightuserdata(L, (void *)&task_calls[i]);
    lua_pushcclosure(L, tx_call, 1);
    lua_setfield(L, -2, task_calls[i].name);
  }
  lua_setfield(L, -2, "__index");
  /* Every task's handle shares this metatable: getmetatable(tx) must not
   * hand it out, or one task could replace tx.exec for all the others. */
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

void mt_lua_tx_push(lua_State *L, mt_tx_t *tx) {
  /* Created closed, then bound, so that a failure in between leaves a
   * handle that is safe to collect. */
  tx_handle_t *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->tx = NULL;
  luaL_setmetatable(L, TX_META);
  h->tx = tx;
}

void mt_lua_tx_close(lua_State *L, int idx) {
  tx_handle_t *h = luaL_checkudata(L, idx, TX_META);
  h->tx = NULL;
}
