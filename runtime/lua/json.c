#include "lua/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "common/utf8.h"
#include "json/read.h"
#include "json/write.h"

/* ---- shared helpers ---------------------------------------------------- */

/* Pushes the marker metatable called name, creating it on first use so that
 * the C API works even when mt_json_open() was never called.
 * Stack: [] -> [mt] */
static void json_marker(lua_State *L, const char *name) {
  if (luaL_getmetatable(L, name) != LUA_TTABLE) {
    lua_pop(L, 1);
    luaL_newmetatable(L, name); /* sets __name, which tostring() shows */
  }
}

/* ---- decoding ---------------------------------------------------------- */

/* Pushes the decoded string of tok. A string without escapes is its raw
 * bytes, pushed straight from the input; the others decode into a Lua
 * buffer, which a memory error cannot leak.
 * Stack: [] -> [string] */
static void dec_string(lua_State *L, const mt_jtok_t *tok) {
  luaL_Buffer b;
  if (tok->len == tok->raw_len) {
    lua_pushlstring(L, tok->raw, tok->len);
    return;
  }
  mt_jlex_string(tok, luaL_buffinitsize(L, &b, tok->len));
  luaL_pushresultsize(&b, tok->len);
}

/* Stack: [] -> [value] */
static void dec_scalar(lua_State *L, const mt_jtok_t *tok) {
  switch (tok->type) {
  case MT_JT_STRING: dec_string(L, tok); break;
  case MT_JT_NUMBER:
    if (tok->is_int)
      lua_pushinteger(L, (lua_Integer)tok->i);
    else
      lua_pushnumber(L, (lua_Number)tok->d);
    break;
  case MT_JT_TRUE: lua_pushboolean(L, 1); break;
  case MT_JT_FALSE: lua_pushboolean(L, 0); break;
  default: lua_pushlightuserdata(L, NULL); /* json.null */
  }
}

/* Builds the value on the Lua stack as the reader walks the text: every
 * open container is a table on the stack, with its pending key above it in
 * an object, and a value that completes is stored into the table below
 * it. Duplicate names keep the last value, as most parsers do. */
int mt_json_decode(lua_State *L, const char *text, size_t len, mt_err_t *err) {
  int base = lua_gettop(L), rc;
  mt_jread_t r;
  mt_jevent_t ev;
  if (!lua_checkstack(L, 6))
    return mt_err_set(err, MT_ENOMEM, "Lua stack overflow decoding JSON");
  json_marker(L, MT_JSON_ARRAY);  /* base + 1 */
  json_marker(L, MT_JSON_OBJECT); /* base + 2 */
  mt_jread_init(&r, text, len, err);
  while ((rc = mt_jread_next(&r, &ev)) == 0 && ev != MT_JE_DONE) {
    switch (ev) {
    case MT_JE_ARRAY:
    case MT_JE_OBJECT:
      /* A level holds its table and a key; a string being decoded above
       * them takes a buffer box, whose creation uses a few slots more. */
      if (!lua_checkstack(L, 8)) {
        rc = mt_err_set(err, MT_ENOMEM, "Lua stack overflow decoding JSON");
        goto done;
      }
      lua_newtable(L);
      lua_pushvalue(L, ev == MT_JE_ARRAY ? base + 1 : base + 2);
      lua_setmetatable(L, -2);
      continue;
    case MT_JE_KEY: dec_string(L, &r.tok); continue;
    case MT_JE_SCALAR: dec_scalar(L, &r.tok); break;
    default: /* MT_JE_END: the finished table is on top already */ break;
    }
    if (r.depth == 0)
      continue;
    if (r.in_object)
      lua_rawset(L, -3);
    else
      lua_rawseti(L, -2, (lua_Integer)r.index);
  }
done:
  if (rc != 0) {
    lua_settop(L, base);
    return rc;
  }
  lua_replace(L, base + 1); /* the value takes the first marker's slot */
  lua_settop(L, base + 1);
  return 0;
}

/* ---- encoding ---------------------------------------------------------- */

typedef struct json_enc_s {
  lua_State *L;
  mt_buf_t *out;
  mt_err_t *err;
  int mt_array, mt_object;
} json_enc_t;

/* The chain of containers from the root to the value being encoded, kept on
 * the C stack. It finds cycles and lets errors name where they happened. */
typedef struct json_path_s {
  const struct json_path_s *up;
  const void *table; /* the table at this position, or NULL */
  const char *key;   /* object key, or NULL for an array index */
  size_t klen;
  lua_Integer index;
  int depth;
} json_path_t;

/* An object member, sorted by key bytes so that output is deterministic.
 * Integer keys keep their decimal form inside the member, so str is NULL
 * for them: qsort() moves members, and a pointer to num would go stale. */
typedef struct json_member_s {
  const char *str;
  size_t len;
  lua_Integer ikey;
  char num[24];
} json_member_t;

#define MEMBER_KEY(m) ((m)->str != NULL ? (m)->str : (m)->num)

static size_t path_format(const json_path_t *p, char *buf, size_t cap) {
  size_t n = p->up ? path_format(p->up, buf, cap) : 0;
  int w;
  if (p->up == NULL)
    w = snprintf(buf, cap, "$");
  else if (n >= cap - 1)
    return n;
  else if (p->key != NULL)
    w = snprintf(buf + n, cap - n, ".%.*s", (int)p->klen, p->key);
  else
    w = snprintf(buf + n, cap - n, "[%lld]", (long long)p->index);
  n += w > 0 ? (size_t)w : 0;
  return n < cap ? n : cap - 1;
}

static int enc_fail(json_enc_t *e, const json_path_t *p, const char *what) {
  char where[256];
  path_format(p, where, sizeof where);
  return mt_err_set(e->err, MT_EPAYLOAD, "cannot encode %s at %s", what, where);
}

static int enc_value(json_enc_t *e, int idx, json_path_t *path);

static int enc_put(json_enc_t *e, const char *s, size_t n) {
  if (mt_buf_append(e->out, s, n) != 0)
    return mt_err_set(e->err, MT_ENOMEM, "out of memory encoding JSON");
  return 0;
}

static int enc_puts(json_enc_t *e, const char *s) {
  return enc_put(e, s, strlen(s));
}

/* Strings must be valid UTF-8, by the rule the decoder applies, so that
 * what we write reads back; the check comes first so that the error can
 * name the path, and the escaping is the one every JSON writer shares. */
static int enc_string(json_enc_t *e, const char *s, size_t len,
                      const json_path_t *path) {
  for (size_t i = 0; i < len;) {
    size_t n = mt_utf8_seq((const unsigned char *)s + i, len - i);
    if (n == 0)
      return enc_fail(e, path, "a string that is not valid UTF-8");
    i += n;
  }
  if (mt_json_write_string(e->out, s, len) != 0)
    return mt_err_set(e->err, MT_ENOMEM, "out of memory encoding JSON");
  return 0;
}

/* Floats print as json/write.h writes them, with ".0" added to integral
 * values so that they decode as floats again. */
static int enc_float(json_enc_t *e, lua_Number x, const json_path_t *path) {
  if (isnan(x))
    return enc_fail(e, path, "NaN");
  if (isinf(x))
    return enc_fail(e, path, "an infinite number");
  if (mt_json_write_double(e->out, (double)x, 1) != 0)
    return mt_err_set(e->err, MT_ENOMEM, "out of memory encoding JSON");
  return 0;
}

static int member_cmp(const void *a, const void *b) {
  const json_member_t *x = a, *y = b;
  int c =
      memcmp(MEMBER_KEY(x), MEMBER_KEY(y), x->len < y->len ? x->len : y->len);
  return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* Encodes the table at idx as an object with sorted keys. Key strings stay
 * valid while we hold their pointers because the table, which anchors them,
 * is on the stack and is not modified.
 * Stack: [] -> [] */
static int enc_object(json_enc_t *e, int idx, size_t count, json_path_t *path) {
  lua_State *L = e->L;
  json_member_t *m = lua_newuserdatauv(L, count * sizeof *m + 1, 0);
  size_t n = 0;
  int rc;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      m[n].str = lua_tolstring(L, -2, &m[n].len);
    } else {
      m[n].str = NULL;
      m[n].ikey = lua_tointeger(L, -2);
      m[n].len = (size_t)snprintf(m[n].num, sizeof m[n].num, LUA_INTEGER_FMT,
                                  (LUAI_UACINT)m[n].ikey);
    }
    n++;
    lua_pop(L, 1);
  }
  qsort(m, n, sizeof *m, member_cmp);
  if (enc_puts(e, "{") != 0)
    return MT_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const char *key = MEMBER_KEY(&m[i]);
    json_path_t child = {path, NULL, key, m[i].len, 0, path->depth + 1};
    if (i > 0 && member_cmp(&m[i - 1], &m[i]) == 0)
      return enc_fail(e, &child, "an integer key that duplicates a string key");
    if (i > 0 && enc_puts(e, ",") != 0)
      return MT_ENOMEM;
    if ((rc = enc_string(e, key, m[i].len, &child)) != 0)
      return rc;
    if (enc_puts(e, ":") != 0)
      return MT_ENOMEM;
    if (m[i].str == NULL)
      lua_pushinteger(L, m[i].ikey);
    else
      lua_pushlstring(L, m[i].str, m[i].len);
    lua_rawget(L, idx);
    if ((rc = enc_value(e, lua_gettop(L), &child)) != 0)
      return rc;
    lua_pop(L, 1);
  }
  lua_pop(L, 1); /* the member array */
  return enc_puts(e, "}");
}

/* Chooses array or object for the table at idx and encodes it. A marker
 * decides when present; otherwise a proper sequence 1..n is an array and
 * anything else, including the empty table, is an object.
 * Stack: [] -> [] */
static int enc_table(json_enc_t *e, int idx, json_path_t *path) {
  lua_State *L = e->L;
  enum { UNMARKED, ARRAY, OBJECT } kind = UNMARKED;
  size_t count = 0;
  lua_Integer max = 0;
  int only_index_keys = 1, rc;
  for (const json_path_t *p = path->up; p != NULL; p = p->up)
    if (p->table == path->table)
      return enc_fail(e, path, "a table that contains itself (a cycle)");
  if (path->depth > MT_JSON_MAX_DEPTH) {
    char what[64];
    snprintf(what, sizeof what,
             "a table nested deeper than the limit of %d levels",
             MT_JSON_MAX_DEPTH);
    return enc_fail(e, path, what);
  }
  /* A level holds a member array, a key and a value, plus a metatable. */
  if (!lua_checkstack(L, 8))
    return mt_err_set(e->err, MT_ENOMEM, "Lua stack overflow encoding JSON");
  if (lua_getmetatable(L, idx)) {
    if (lua_rawequal(L, -1, e->mt_array))
      kind = ARRAY;
    else if (lua_rawequal(L, -1, e->mt_object))
      kind = OBJECT;
    lua_pop(L, 1);
  }
  /* One pass validates the keys and measures the table. */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    count++;
    lua_pop(L, 1);
    if (lua_isinteger(L, -1)) {
      lua_Integer k = lua_tointeger(L, -1);
      if (k < 1)
        only_index_keys = 0;
      else if (k > max)
        max = k;
    } else if (lua_type(L, -1) == LUA_TSTRING) {
      only_index_keys = 0;
    } else {
      return enc_fail(e, path,
                      "a table key that is neither a string nor an integer");
    }
  }
  if (kind == UNMARKED)
    kind = count > 0 && only_index_keys && (lua_Unsigned)max == count ? ARRAY
                                                                      : OBJECT;
  if (kind == OBJECT)
    return enc_object(e, idx, count, path);
  /* A marked array may have holes, which become null; string keys would be
   * silently lost, and a huge sparse index would print millions of nulls. */
  if (!only_index_keys)
    return enc_fail(e, path,
                    "an array with a key that is not a positive integer");
  if ((lua_Unsigned)max > 2 * (lua_Unsigned)count + 16)
    return enc_fail(e, path, "an array that is too sparse");
  if (enc_puts(e, "[") != 0)
    return MT_ENOMEM;
  for (lua_Integer i = 1; i <= max; i++) {
    json_path_t child = {path, NULL, NULL, 0, i, path->depth + 1};
    if (i > 1 && enc_puts(e, ",") != 0)
      return MT_ENOMEM;
    lua_rawgeti(L, idx, i);
    if ((rc = enc_value(e, lua_gettop(L), &child)) != 0)
      return rc;
    lua_pop(L, 1);
  }
  return enc_puts(e, "]");
}

static int enc_value(json_enc_t *e, int idx, json_path_t *path) {
  lua_State *L = e->L;
  const char *s;
  size_t len;
  char buf[64];
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return enc_puts(e, "null");
  case LUA_TBOOLEAN:
    return enc_puts(e, lua_toboolean(L, idx) ? "true" : "false");
  case LUA_TNUMBER:
    if (!lua_isinteger(L, idx))
      return enc_float(e, lua_tonumber(L, idx), path);
    snprintf(buf, sizeof buf, LUA_INTEGER_FMT,
             (LUAI_UACINT)lua_tointeger(L, idx));
    return enc_puts(e, buf);
  case LUA_TSTRING:
    s = lua_tolstring(L, idx, &len);
    return enc_string(e, s, len, path);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) /* json.null */
      return enc_puts(e, "null");
    return enc_fail(e, path, "a light userdata other than json.null");
  case LUA_TTABLE:
    path->table = lua_topointer(L, idx);
    return enc_table(e, idx, path);
  default:
    snprintf(buf, sizeof buf, "a %s value", luaL_typename(L, idx));
    return enc_fail(e, path, buf);
  }
}

int mt_json_encode(lua_State *L, int idx, mt_buf_t *out, mt_err_t *err) {
  int base = lua_gettop(L), rc;
  size_t start = out->len;
  json_enc_t e = {L, out, err, base + 1, base + 2};
  json_path_t root = {NULL, NULL, NULL, 0, 0, 1};
  idx = lua_absindex(L, idx);
  if (!lua_checkstack(L, 6))
    return mt_err_set(err, MT_ENOMEM, "Lua stack overflow encoding JSON");
  json_marker(L, MT_JSON_ARRAY);
  json_marker(L, MT_JSON_OBJECT);
  rc = enc_value(&e, idx, &root);
  lua_settop(L, base);
  if (rc != 0 && out->data != NULL) {
    out->len = start; /* a failed encode leaves no partial text behind */
    out->data[start] = '\0';
  }
  return rc;
}

/* ---- Lua library ------------------------------------------------------- */

/* json.decode(s) -> value | nil, message */
static int json_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  mt_err_t err;
  if (mt_json_decode(L, s, len, &err) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, err.msg);
    return 2;
  }
  return 1;
}

/* json.encode(v) -> string | nil, message. A Lua memory error raised while
 * encoding would leak the C buffer; that is the one failure we let unwind. */
static int json_encode(lua_State *L) {
  mt_buf_t out = MT_BUF_INIT;
  mt_err_t err;
  luaL_checkany(L, 1);
  if (mt_json_encode(L, 1, &out, &err) != 0) {
    mt_buf_free(&out);
    luaL_pushfail(L);
    lua_pushstring(L, err.msg);
    return 2;
  }
  lua_pushlstring(L, out.data, out.len);
  mt_buf_free(&out);
  return 1;
}

/* Sets the marker metatable name on the table argument, or on a new table.
 * Stack: [t?] -> [t] */
static int json_mark(lua_State *L, const char *name) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  json_marker(L, name);
  lua_setmetatable(L, 1);
  return 1;
}

static int json_array(lua_State *L) { return json_mark(L, MT_JSON_ARRAY); }

static int json_object(lua_State *L) { return json_mark(L, MT_JSON_OBJECT); }

/* json.is_array(v) -> true only for tables carrying the array marker, so a
 * decoded `[]` answers true and a decoded `{}` false. */
static int json_is_array(lua_State *L) {
  int marked = 0;
  luaL_checkany(L, 1);
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    json_marker(L, MT_JSON_ARRAY);
    marked = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, marked);
  return 1;
}

static const luaL_Reg json_funcs[] = {{"decode", json_decode},
                                      {"encode", json_encode},
                                      {"array", json_array},
                                      {"object", json_object},
                                      {"is_array", json_is_array},
                                      {"null", NULL}, /* placeholder */
                                      {NULL, NULL}};

int mt_json_open(lua_State *L) {
  json_marker(L, MT_JSON_ARRAY);
  json_marker(L, MT_JSON_OBJECT);
  lua_pop(L, 2);
  luaL_newlib(L, json_funcs);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
