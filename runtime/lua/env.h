/*
 * The Lua environment scripts run in, and the guard that bounds them.
 *
 * Every lua_State moontask creates (a worker's, the CLI's throwaway states,
 * config.lua's) comes from mt_lua_state_new and carries an mt_lua_guard_t,
 * owned by the state's creator, that limits the time and the memory of the
 * code it runs. Task and schema scripts then load into the sandbox: an
 * allow-listed set of globals (no io, no os.execute, no debug, no loading
 * of bytecode) plus the `json` library and the handlers' toolkit
 * (`moontask`, `require`: lua/stdlib.h), in an environment of their own.
 */
#ifndef MT_LUA_ENV_H
#define MT_LUA_ENV_H

#include <lua.h>
#include <stdatomic.h>
#include <stddef.h>

#include "common/error.h"

/* Operator files (config.lua, task and schema files) must finish loading
 * within this many seconds: a loop at load time is a broken file, and it
 * must not hang `moontask check`, `list` or a runtime's start. */
#define MT_LUA_LOAD_TIMEOUT 5.0

/* Default memory limit of one Lua state, in bytes (config memory_limit). */
#define MT_LUA_DEFAULT_MEMORY_LIMIT (64.0 * 1024 * 1024)

/* Why a guarded script was stopped. */
typedef enum mt_lua_stop_e {
  MT_LUA_RUNNING = 0,
  MT_LUA_TIMED_OUT,
  MT_LUA_ABORTED,       /* the owner's abort flag was raised */
  MT_LUA_OUT_OF_MEMORY, /* the memory limit was reached */
} mt_lua_stop_t;

/* The limits of one lua_State. Its creator owns it, keeps it alive as long
 * as the state, and arms it around each piece of code the state runs.
 *
 * Once a limit is hit the guard is `stopping` until it is armed again: the
 * count hook (installed on every coroutine, since new threads inherit it)
 * raises every few thousand instructions, the sandbox's pcall, xpcall and
 * coroutine.resume hand the error on instead of catching it, and xpcall
 * message handlers are skipped, so nothing a script does can outlast it. */
typedef struct mt_lua_guard_s {
  double deadline;         /* mt_now() seconds; 0: no time limit */
  const atomic_int *abort; /* stops the script when non-zero; may be NULL */
  size_t used;             /* bytes allocated by the state */
  size_t limit;            /* bytes, while armed; 0: no memory limit */
  size_t load_limit;       /* what mt_lua_pcall_load arms with */
  int refused;             /* the last allocation that grew was refused */
  mt_lua_stop_t stopping;
} mt_lua_guard_t;

/* Creates a state whose allocations are counted against guard->limit and
 * whose code is bounded by the guard's deadline and abort flag. The guard
 * starts disarmed (no deadline, no limit). Returns NULL without memory. */
lua_State *mt_lua_state_new(mt_lua_guard_t *guard);

/* The guard of a state made by mt_lua_state_new. */
mt_lua_guard_t *mt_lua_guard(lua_State *L);

/* Starts a guarded stretch: seconds from now (0: none), memory limit in
 * bytes (0: none), abort flag (may be NULL). Clears a previous stop. */
void mt_lua_guard_arm(mt_lua_guard_t *g, double seconds, size_t limit,
                      const atomic_int *abort);

/* Ends a guarded stretch: no deadline, no abort flag, no memory limit.
 * The limits hold only inside protected calls: the C code around them
 * (pushing a handler, reading a file's table) must never meet a refused
 * allocation, which would raise where nothing can catch it. */
void mt_lua_guard_disarm(mt_lua_guard_t *g);

/* For C functions that can run long without returning to the VM (pattern
 * matching): raises the guard's error if the script must stop now. */
void mt_lua_guard_check(lua_State *L);

/* What stopped the script, for messages: "timed out", "memory limit of 64
 * MiB exceeded", ... */
const char *mt_lua_guard_reason(const mt_lua_guard_t *g, char *buf,
                                size_t size);

/* Opens the safe standard libraries and builds the sandbox's template.
 * Call once per state, before loading scripts. */
void mt_lua_env_open(lua_State *L);

/* Stack: -> env. Pushes a fresh global table for one script, holding its
 * own copies of the allowed globals and library tables (moontask's
 * sub-tables included, and a require with a module cache of its own):
 * nothing in it is shared with another script, and it has no metatable to
 * reach through. */
void mt_lua_env_push(lua_State *L);

/* Stack: -> t[key]. lua_getfield without metamethods, for reading the
 * table an operator file returned: C code reading it runs outside any
 * protected call and any time limit, so it must run none of the file's
 * code (an __index that raises or loops). Returns the value's type. */
int mt_lua_rawfield(lua_State *L, int idx, const char *key);

/* Stack: t -> t. Reads the optional number t[field] (raw) of an operator
 * file into *slot. It must lie in [min, max], and be whole when integer is
 * set (5.0 is as whole as 5); otherwise MT_ECONFIG names file, field and
 * range. An absent field leaves *slot. */
int mt_lua_read_number(lua_State *L, const char *file, const char *field,
                       double *slot, double min, double max, int integer,
                       mt_err_t *err);

/* Makes the state read the operator's script files from a snapshot
 * (lua/sources.h) rather than from disk: mt_lua_load_file, mt_lua_file_
 * exists and the task loader's listing all go through it, so that a
 * state loads exactly the version that was validated. The state keeps a
 * reference until it is closed. Call once, before loading anything. */
struct mt_sources_s;
int mt_lua_sources_attach(lua_State *L, struct mt_sources_s *s);

/* The snapshot the state reads from, or NULL: the disk. */
const struct mt_sources_s *mt_lua_sources(lua_State *L);

/* Whether a regular file is at path, in the state's snapshot or on disk. */
int mt_lua_file_exists(lua_State *L, const char *path);

/* Loads a file in text mode as a chunk whose _ENV is the table at env_idx.
 * Stack: -> chunk on success; nothing on error (err has file:line). */
int mt_lua_load_file(lua_State *L, const char *path, int env_idx,
                     mt_err_t *err);

/* lua_pcall with a message handler that appends a traceback. On error, err
 * receives the message and the stack holds nothing of the call. */
int mt_lua_pcall(lua_State *L, int nargs, int nresults, mt_err_t *err);

/* Runs an operator file's chunk (on the stack, below its nargs arguments)
 * under the load time limit: mt_lua_pcall inside an armed guard. A file
 * that loops is reported as "<what>: did not finish loading within 10s". */
int mt_lua_pcall_load(lua_State *L, const char *what, int nargs, int nresults,
                      mt_err_t *err);

#endif
