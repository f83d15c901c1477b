/*
 * Running Lua snippets in the handlers' sandbox, for the toolkit's tests
 * (test_toolkit_*.c): a state opened as a worker's is (mt_lua_env_open,
 * then mt_lua_stdlib_configure), a fresh script environment per snippet,
 * and the guard armed around it as a handler's would be.
 *
 * Header-only (static functions), since the unit-test build compiles the
 * .c files of tests/unit alone.
 */
#ifndef MT_TESTS_UNIT_TOOLKIT_TEST_H
#define MT_TESTS_UNIT_TOOLKIT_TEST_H

#include <lauxlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "lua/env.h"
#include "lua/stdlib.h"
#include "test.h"

typedef struct kit_s {
  mt_lua_guard_t guard;
  lua_State *L;
  atomic_int abort; /* the runtime's abort flag, as a handler sees it */
} kit_t;

/* Opens a sandboxed state whose require looks in lib_dir (NULL:
 * <tasks_dir>/lib) and whose ctx.env may read env (NULL-terminated). */
static inline void kit_open(kit_t *k, const char *tasks_dir,
                            const char *lib_dir, const char *const *env) {
  memset(k, 0, sizeof *k);
  k->L = mt_lua_state_new(&k->guard);
  ASSERT_TRUE(k->L != NULL);
  k->guard.load_limit = 64 * 1024 * 1024;
  mt_lua_env_open(k->L);
  mt_lua_stdlib_configure(k->L, tasks_dir, lib_dir, env);
}

static inline void kit_close(kit_t *k) {
  if (k->L != NULL)
    lua_close(k->L);
  k->L = NULL;
}

/* Runs src as a handler would run: in a script environment of its own,
 * with a global `ctx` holding ctx.env, under the guard armed with seconds
 * (0: no deadline) and a 64 MiB memory limit. Returns 0 with nresults
 * results on the stack, or an MT_E* code with the message (and
 * traceback) in err. */
static inline int kit_run(kit_t *k, const char *src, double seconds,
                          int nresults, mt_err_t *err) {
  lua_State *L = k->L;
  mt_lua_env_push(L);
  lua_newtable(L);
  mt_lua_ctx_env_push(L);
  lua_setfield(L, -2, "env");
  lua_setfield(L, -2, "ctx");
  if (luaL_loadbufferx(L, src, strlen(src), "=snippet", "t") != LUA_OK) {
    mt_err_set(err, MT_ELUA, "%s", lua_tostring(L, -1));
    lua_pop(L, 2);
    return MT_ELUA;
  }
  lua_pushvalue(L, -2);
  lua_setupvalue(L, -2, 1);
  lua_remove(L, -2);
  mt_lua_guard_arm(&k->guard, seconds, 64 * 1024 * 1024, &k->abort);
  int rc = mt_lua_pcall(L, 0, nresults, err);
  mt_lua_guard_disarm(&k->guard);
  k->guard.stopping = MT_LUA_RUNNING;
  return rc;
}

/* Runs src, which must succeed and return one string; returns a copy of
 * it, valid until the next call. */
static inline const char *kit_string(kit_t *k, const char *src) {
  static char out[8192];
  mt_err_t err;
  if (kit_run(k, src, 10, 1, &err) != 0)
    MT__FAIL("snippet failed: %s\n--- snippet:\n%s", err.msg, src);
  if (lua_type(k->L, -1) != LUA_TSTRING)
    MT__FAIL("snippet returned %s, not a string\n--- snippet:\n%s",
             luaL_typename(k->L, -1), src);
  snprintf(out, sizeof out, "%s", lua_tostring(k->L, -1));
  lua_pop(k->L, 1);
  return out;
}

/* Runs src, which must succeed (its asserts hold). */
static inline void kit_ok(kit_t *k, const char *src) {
  mt_err_t err;
  if (kit_run(k, src, 10, 0, &err) != 0)
    MT__FAIL("snippet failed: %s\n--- snippet:\n%s", err.msg, src);
}

/* Runs src, which must raise an error containing want. */
static inline void kit_raises(kit_t *k, const char *src, const char *want) {
  mt_err_t err;
  if (kit_run(k, src, 10, 0, &err) == 0)
    MT__FAIL("snippet did not raise (wanted \"%s\")\n--- snippet:\n%s", want,
             src);
  if (strstr(err.msg, want) == NULL)
    MT__FAIL("error \"%s\" lacks \"%s\"\n--- snippet:\n%s", err.msg, want, src);
}

#endif
