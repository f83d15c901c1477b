/*
 * JSON <-> Lua 5.4 conversion, written for task payloads that must survive a
 * round trip unchanged. Integers that fit int64 stay Lua integers, `[]` and
 * `{}` stay distinct (decoded tables carry a marker metatable), and JSON null
 * is the sentinel json.null (a NULL light userdata), never a hole.
 *
 * Decoding reads the text through json/read.h, the one JSON grammar, which
 * the validator's document parser (json/doc.h) uses too; strings are
 * written with json/write.h's escaper.
 *
 * The C functions never raise on bad input: they return MT_EPAYLOAD with a
 * message in the caller's mt_err_t. Only a Lua memory error can still unwind
 * through them, as with any Lua API call. The caller owns the output buffer;
 * decoded values belong to the Lua state.
 */
#ifndef MT_LUA_JSON_H
#define MT_LUA_JSON_H

#include <stddef.h>

#include <lua.h>

#include "common/buf.h"
#include "common/error.h"
#include "json/limits.h"

/* Registry names of the marker metatables. They hold only __name. */
#define MT_JSON_ARRAY "moontask.json.array"
#define MT_JSON_OBJECT "moontask.json.object"

/* Pushes the Lua value of the JSON text onto L. On bad JSON returns
 * MT_EPAYLOAD with a message naming the byte offset and what was expected,
 * and pushes nothing. */
int mt_json_decode(lua_State *L, const char *text, size_t len, mt_err_t *err);

/* Appends the JSON encoding of the value at stack index idx to out. Returns
 * MT_EPAYLOAD for values JSON cannot carry (functions, NaN, cycles, keys that
 * are neither strings nor integers, ...) and leaves out as it was. Leaves the
 * stack as it was. */
int mt_json_encode(lua_State *L, int idx, mt_buf_t *out, mt_err_t *err);

/* Registers the marker metatables and pushes the library table: decode,
 * encode, null, array, object, is_array. Usable as a luaopen_ function. */
int mt_json_open(lua_State *L);

#endif
