/* Whether a Lua value decoded by lua/json.c is the value json/doc.c read
 * from the same text: the property both tests/unit/test_json_agree.c (for
 * chosen cases) and the JSON fuzzer (tests/fuzz/fuzz_json.c) check, with
 * one definition. Header-only. */
#ifndef MT_TEST_JSON_SAME_H
#define MT_TEST_JSON_SAME_H

#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "json/doc.h"
#include "lua/json.h"

static inline int json_has_marker(lua_State *L, int idx, const char *name) {
  int yes = 0;
  if (lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, name);
    yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  return yes;
}

/* Is the Lua value at idx what the tree node v says? Numbers: a Lua integer
 * must be an exact int64 in the tree; a Lua float must have the very bits
 * of the tree's double (so -0.0 stays negative). The tree marks integral
 * doubles such as 1.0 as integers too, for JSON Schema; that is a view of
 * the same value, not a disagreement. Objects: Lua keeps the last of
 * duplicate names, the tree keeps them all. */
static inline int json_same(lua_State *L, int idx, const mt_jval_t *v) {
  idx = lua_absindex(L, idx);
  switch (v->type) {
  case MT_JV_NULL:
    return lua_islightuserdata(L, idx) && lua_touserdata(L, idx) == NULL;
  case MT_JV_BOOL:
    return lua_isboolean(L, idx) && lua_toboolean(L, idx) == v->u.b;
  case MT_JV_NUMBER:
    if (lua_isinteger(L, idx))
      return v->is_int && v->u.num.i == lua_tointeger(L, idx) &&
             v->u.num.d == (double)v->u.num.i;
    if (lua_type(L, idx) == LUA_TNUMBER) {
      double x = (double)lua_tonumber(L, idx);
      return memcmp(&x, &v->u.num.d, sizeof x) == 0;
    }
    return 0;
  case MT_JV_STRING: {
    size_t n = 0;
    const char *s =
        lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &n) : NULL;
    return s != NULL && n == v->len && memcmp(s, v->u.str, n) == 0 &&
           v->u.str[n] == '\0';
  }
  case MT_JV_ARRAY:
    if (!lua_istable(L, idx) || !json_has_marker(L, idx, MT_JSON_ARRAY) ||
        lua_rawlen(L, idx) != v->len)
      return 0;
    for (size_t i = 0; i < v->len; i++) {
      lua_rawgeti(L, idx, (lua_Integer)i + 1);
      int ok = json_same(L, -1, &v->u.items[i]);
      lua_pop(L, 1);
      if (!ok)
        return 0;
    }
    return 1;
  case MT_JV_OBJECT: {
    size_t distinct = 0, entries = 0;
    if (!lua_istable(L, idx) || !json_has_marker(L, idx, MT_JSON_OBJECT))
      return 0;
    for (size_t i = 0; i < v->len; i++) {
      const mt_jmember_t *m = &v->u.members[i];
      int later = 0;
      for (size_t j = i + 1; j < v->len && !later; j++)
        later = v->u.members[j].key_len == m->key_len &&
                memcmp(v->u.members[j].key, m->key, m->key_len) == 0;
      if (later)
        continue; /* Lua kept a later duplicate */
      distinct++;
      lua_pushlstring(L, m->key, m->key_len);
      lua_rawget(L, idx);
      int ok = json_same(L, -1, &m->value);
      lua_pop(L, 1);
      if (!ok)
        return 0;
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      entries++;
      lua_pop(L, 1);
    }
    return entries == distinct;
  }
  }
  return 0;
}

#endif
