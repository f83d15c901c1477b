/*
 * string.find, string.match, string.gmatch and string.gsub with Lua 5.4's
 * pattern semantics, results and error messages, but interruptible. Lua's
 * own matcher backtracks in C without ever returning to the VM, so a count
 * hook cannot stop ("a"):rep(200000):find(".-.-.-.-b"), which runs for hours.
 * This one calls a check callback every MT_LUA_PATTERN_CHECK_STEPS steps of
 * matching, and the callback may raise a Lua error to end the match.
 *
 * Because a check may unwind the matcher at any point, the matcher owns no
 * memory: its captures live in a struct on the C stack, results go on the
 * Lua stack, and gsub builds its result in a luaL_Buffer, which Lua owns.
 * The check callback belongs to the functions installed by
 * mt_lua_pattern_open (one per state, never a global); the subject and
 * pattern strings belong to the caller's Lua stack or to gmatch's iterator.
 */
#ifndef MT_LUA_PATTERN_H
#define MT_LUA_PATTERN_H

#include <lua.h>

/* Steps of matching between two checks. A step is one attempt to match the
 * rest of a pattern at some position, or one subject byte scanned by a
 * repetition, a %b or a back-reference: a few nanoseconds each, so a check
 * that reads the clock costs well under 1% while a runaway match stops
 * within microseconds of its deadline. */
#define MT_LUA_PATTERN_CHECK_STEPS 1000

/* Called every MT_LUA_PATTERN_CHECK_STEPS steps of matching, with the state
 * the string function runs in. It may raise a Lua error (luaL_error) to stop
 * a match that runs too long; if it returns, matching goes on. */
typedef void (*mt_lua_pattern_check_cb)(lua_State *L);

/* Stack: strlib -> strlib. Replaces find, match, gmatch and gsub in the
 * string library table at idx with bounded versions that call check. With
 * check NULL they are never interrupted. Strings' methods ("x"):find() go
 * through the same table when idx is the library the string metatable's
 * __index points at. */
void mt_lua_pattern_open(lua_State *L, int idx, mt_lua_pattern_check_cb check);

#endif
