/*
 * The Lua transaction handle `tx` given to handlers: tx:query, tx:exec,
 * tx:schedule and the task calls (cancel, cancel_key, reschedule, get,
 * find) over an mt_tx_t that the executor owns. The userdata only
 * borrows the mt_tx_t; once the task ends the executor closes the handle and
 * any further use raises "attempt to use a closed transaction".
 */
#ifndef MT_LUA_TX_H
#define MT_LUA_TX_H

#include <lua.h>

#include "postgres/task_tx.h"

/* Registers the "moontask.tx" metatable. */
void mt_lua_tx_open(lua_State *L);

/* Stack: -> tx. Pushes a handle bound to tx. */
void mt_lua_tx_push(lua_State *L, mt_tx_t *tx);

/* Detaches the handle at idx from its mt_tx_t. */
void mt_lua_tx_close(lua_State *L, int idx);

#endif
