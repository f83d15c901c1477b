/*
 * moontask.http: HTTP for handlers, on libcurl's easy interface.
 *
 * A request runs on the calling worker's thread, inside the handler, and
 * blocks it until the answer is in: a handler runs one thing at a time, and
 * a worker serves one handler, so there is nothing for an event loop to
 * overlap. What bounds it is the Lua state's guard (lua/env.h): the
 * transfer's total time is the task's remaining time (or the call's own
 * `timeout`, if shorter), and a progress callback stops it on the
 * runtime's abort flag. No Lua hook runs while libcurl works, so these two
 * are what keep a slow server from holding the task past its deadline.
 *
 * Each Lua state keeps one easy handle in its registry (made on first use,
 * cleaned up with the state), so that calls from the same worker reuse
 * connections and TLS sessions. Buffers of one call belong to a
 * to-be-closed userdata, freed however the call ends.
 *
 * Expected failures (DNS, refused connections, TLS, the call's timeout, a
 * body past its limit) return nil, a message and a short code; misuse (a
 * bad option, a header with a line break) raises; and the task's own
 * deadline or the runtime's abort ends the task as any timeout does.
 */
#ifndef MT_LUA_HTTP_H
#define MT_LUA_HTTP_H

#include <lua.h>

/* The largest response body a call accepts unless it says otherwise
 * (`max_body`); never more than the Lua state's memory limit. */
#define MT_HTTP_MAX_BODY (10 * 1024 * 1024)

/* Redirects followed unless a call says otherwise, and the most it may. */
#define MT_HTTP_REDIRECTS 5
#define MT_HTTP_REDIRECTS_MAX 20

/* A call's time limit when the state has no deadline armed (never so in a
 * handler, whose guard always carries the task's deadline). */
#define MT_HTTP_DEFAULT_TIMEOUT 30.0

/* Stack: -> http. Pushes the library table: request, get, post. Call once
 * per state (it initialises libcurl the first time in the process). */
int mt_lua_http_open(lua_State *L);

#endif
