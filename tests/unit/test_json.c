/* Unit tests for runtime/lua/json.c: exact integers, [] vs {}, null, Unicode,
 * strict parsing and the errors the encoder must return instead of raising. */
#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "json/read.h"
#include "lua/json.h"
#include "test.h"

/* A fresh state with the standard libraries and `json` as a global. */
static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  ASSERT_TRUE(L != NULL);
  luaL_openlibs(L);
  luaL_requiref(L, "json", mt_json_open, 1);
  lua_pop(L, 1);
  return L;
}

/* Runs a chunk whose `assert`s carry the test; a Lua error fails the case. */
static void run_lua(lua_State *L, const char *chunk) {
  if (luaL_dostring(L, chunk) != LUA_OK)
    MT__FAIL("Lua: %s", lua_tostring(L, -1));
  lua_settop(L, 0);
}

/* Decodes text and re-encodes it; returns the JSON or "ERROR: message". The
 * result lives in a static buffer, so compare it before the next call. */
static const char *reencode(lua_State *L, const char *text) {
  static mt_buf_t result = MT_BUF_INIT;
  mt_buf_t out = MT_BUF_INIT;
  mt_err_t err;
  int top = lua_gettop(L);
  int rc = mt_json_decode(L, text, strlen(text), &err);
  if (rc == 0) {
    ASSERT_EQ_INT(lua_gettop(L), top + 1);
    rc = mt_json_encode(L, -1, &out, &err);
    ASSERT_EQ_INT(lua_gettop(L), top + 1);
    lua_pop(L, 1);
  }
  ASSERT_EQ_INT(lua_gettop(L), top);
  mt_buf_reset(&result);
  if (rc != 0)
    mt_buf_printf(&result, "ERROR: %s", err.msg);
  else
    mt_buf_append(&result, out.data, out.len);
  mt_buf_free(&out);
  return result.data;
}

/* Decodes text that must be rejected and returns the message. */
static const char *decode_error(lua_State *L, const char *text, size_t len) {
  static mt_err_t err;
  int top = lua_gettop(L);
  err.msg[0] = '\0';
  int rc = mt_json_decode(L, text, len, &err);
  if (rc == 0)
    MT__FAIL("decoding <%.*s> should fail", (int)len, text);
  ASSERT_EQ_INT(rc, MT_EPAYLOAD);
  ASSERT_EQ_INT(lua_gettop(L), top);
  ASSERT_TRUE(strstr(err.msg, "at byte ") != NULL);
  return err.msg;
}

/* Encodes the value returned by a Lua expression; returns the error message. */
static const char *encode_error(lua_State *L, const char *expr) {
  static mt_err_t err;
  mt_buf_t out = MT_BUF_INIT;
  char chunk[512];
  snprintf(chunk, sizeof chunk, "return %s", expr);
  if (luaL_dostring(L, chunk) != LUA_OK)
    MT__FAIL("Lua: %s", lua_tostring(L, -1));
  ASSERT_TRUE(mt_buf_puts(&out, "kept") == 0);
  int top = lua_gettop(L);
  ASSERT_EQ_INT(mt_json_encode(L, -1, &out, &err), MT_EPAYLOAD);
  ASSERT_EQ_INT(lua_gettop(L), top);
  ASSERT_EQ_STR(out.data, "kept"); /* no partial output after a failure */
  mt_buf_free(&out);
  lua_settop(L, 0);
  return err.msg;
}

TEST(json_decode_big_integer) {
  lua_State *L = new_state();
  mt_err_t err;
  const char *max = "9223372036854775807";
  ASSERT_EQ_INT(mt_json_decode(L, max, strlen(max), &err), 0);
  ASSERT_TRUE(lua_isinteger(L, -1));
  ASSERT_EQ_INT(lua_tointeger(L, -1), INT64_MAX);
  lua_pop(L, 1);
  run_lua(L, "local v = json.decode('9007199254740993')\n"
             "assert(math.type(v) == 'integer' and v == 9007199254740993)\n"
             "v = json.decode('-9223372036854775808')\n"
             "assert(math.type(v) == 'integer' and v == math.mininteger)\n"
             "v = json.decode('[9223372036854775808, -9223372036854775809]')\n"
             "assert(math.type(v[1]) == 'float' and v[1] == 2^63)\n"
             "assert(math.type(v[2]) == 'float' and v[2] == -2^63)\n"
             "assert(math.type(json.decode('-0')) == 'integer')\n");
  ASSERT_EQ_STR(reencode(L, "[9223372036854775807,-9223372036854775808]"),
                "[9223372036854775807,-9223372036854775808]");
  ASSERT_EQ_STR(reencode(L, "9007199254740993"), "9007199254740993");
  lua_close(L);
}

TEST(json_decode_floats) {
  lua_State *L = new_state();
  run_lua(L, "local v = json.decode('[1.5, 1e2, -0.25E-1, 0.0, 1E+2]')\n"
             "assert(math.type(v[1]) == 'float' and v[1] == 1.5)\n"
             "assert(math.type(v[2]) == 'float' and v[2] == 100.0)\n"
             "assert(v[3] == -0.025 and v[4] == 0.0 and v[5] == 100.0)\n");
  ASSERT_EQ_STR(reencode(L, "[1.5,1e2,0.1,-0.0,1e300,1e-7]"),
                "[1.5,100.0,0.1,-0.0,1e+300,1e-07]");
  /* A double that needs 17 digits must read back to the same bits. */
  run_lua(L, "local x = 1/3\n"
             "assert(json.decode(json.encode(x)) == x)\n"
             "assert(json.encode(0.1 + 0.2) == '0.30000000000000004')\n");
  const char *huge = "1e400";
  ASSERT_TRUE(strstr(decode_error(L, huge, strlen(huge)), "too large") != NULL);
  lua_close(L);
}

TEST(json_empty_containers_round_trip) {
  lua_State *L = new_state();
  ASSERT_EQ_STR(reencode(L, "[]"), "[]");
  ASSERT_EQ_STR(reencode(L, "{}"), "{}");
  ASSERT_EQ_STR(reencode(L, "{\"a\":[],\"b\":{},\"c\":[{},[[]],{\"d\":[]}]}"),
                "{\"a\":[],\"b\":{},\"c\":[{},[[]],{\"d\":[]}]}");
  run_lua(L,
          "assert(json.is_array(json.decode('[]')))\n"
          "assert(not json.is_array(json.decode('{}')))\n"
          "assert(not json.is_array({}) and not json.is_array(1))\n"
          "local mt = getmetatable(json.decode('[]'))\n"
          "assert(mt.__name == 'moontask.json.array' and mt.__index == nil)\n"
          "assert(getmetatable(json.decode('{}')).__name == "
          "'moontask.json.object')\n"
          "assert(json.encode(json.array()) == '[]')\n"
          "assert(json.encode(json.object()) == '{}')\n"
          "assert(json.encode({}) == '{}')\n");
  lua_close(L);
}

TEST(json_null_in_arrays_and_objects) {
  lua_State *L = new_state();
  mt_err_t err;
  ASSERT_EQ_STR(reencode(L, "[null,1,null]"), "[null,1,null]");
  ASSERT_EQ_STR(reencode(L, "{\"a\":null}"), "{\"a\":null}");
  ASSERT_EQ_STR(reencode(L, "null"), "null");
  ASSERT_EQ_INT(mt_json_decode(L, " null ", 6, &err), 0);
  ASSERT_EQ_INT(lua_type(L, -1), LUA_TLIGHTUSERDATA);
  ASSERT_TRUE(lua_touserdata(L, -1) == NULL);
  lua_pop(L, 1);
  run_lua(L, "local t = json.decode('[null,1,null]')\n"
             "assert(#t == 3 and t[1] == json.null and t[3] == json.null)\n"
             "local o = json.decode('{\"a\":null}')\n"
             "assert(o.a == json.null and next(o) == 'a')\n"
             "assert(json.decode('null') == json.null)\n"
             "assert(json.encode(nil) == 'null')\n"
             "assert(json.encode(json.null) == 'null')\n"
             "assert(json.encode(json.array({1, nil, 3})) == '[1,null,3]')\n");
  lua_close(L);
}

TEST(json_decode_unicode_escapes) {
  lua_State *L = new_state();
  run_lua(L,
          "assert(json.decode([[\"\\u00e9\\u20AC\"]]) == '\\u{e9}\\u{20ac}')\n"
          "local s = json.decode([[\"\\uD83D\\uDE00\"]])\n"
          "assert(s == '\\xF0\\x9F\\x98\\x80')\n"
          "assert(json.decode([[\"a\\u0000b\"]]) == 'a\\0b')\n"
          "assert(json.decode([[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]]) == "
          "'\"\\\\/\\b\\f\\n\\r\\t')\n");
  /* Escapes decode to raw UTF-8, which the encoder keeps unescaped. */
  ASSERT_EQ_STR(reencode(L, "\"\\uD83D\\uDE00 \\u00e9\""),
                "\"\xF0\x9F\x98\x80 \xC3\xA9\"");
  lua_close(L);
}

TEST(json_raw_utf8_round_trip) {
  lua_State *L = new_state();
  const char *text =
      "{\"cl\xC3\xA9\":\"h\xC3\xA9llo \xF0\x9F\x98\x80 \xE2\x82\xAC\"}";
  ASSERT_EQ_STR(reencode(L, text), text);
  run_lua(L, "assert(json.encode('a\"b\\\\c\\n\\1/\\127') == "
             "[[\"a\\\"b\\\\c\\n\\u0001/\177\"]])\n");
  lua_close(L);
}

TEST(json_decode_invalid_inputs) {
  lua_State *L = new_state();
  /* clang-format off */
  static const char *bad[] = {
      "",          "   ",        "[1,2,]",       "{\"a\":1,}",   "\"abc",
      "\"\\x\"",   "\"\\u12\"",  "\"\\uD83D\"",  "\"\\uDE00\"",  "\"\\uD83Dx\"",
      "[1] x",     "{} {}",      "[1 2]",        "{a:1}",        "{\"a\" 1}",
      "{\"a\":}",  "[",          "{",            "nul",          "True",
      "01",        "1.",         ".5",           "-",            "+1",
      "1e",        "NaN",        "// c\n1",      "/* c */1",     "'a'",
      "\"\t\"",    "\"\xFF\"",   "\"\xC0\xAF\"", "\"\xED\xA0\x80\"",
      "\xEF\xBB\xBF{}",
  };
  /* clang-format on */
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    decode_error(L, bad[i], strlen(bad[i]));
  /* A NUL byte is not whitespace: the length, not strlen, bounds the input. */
  decode_error(L, "1\0", 2);
  ASSERT_EQ_STR(decode_error(L, "[1,2,]", 6),
                "invalid JSON at byte 5: expected a value");
  ASSERT_EQ_STR(decode_error(L, "\"abc", 4),
                "invalid JSON at byte 4: expected '\"' to close the string, "
                "found end of input");
  ASSERT_EQ_STR(
      decode_error(L, "[1] x", 5),
      "invalid JSON at byte 4: expected end of input after the value");
  ASSERT_TRUE(
      strstr(decode_error(L, "\"\\q\"", 4), "byte 1: expected one of") != NULL);
  run_lua(L, "local v, msg = json.decode('{\"a\":1,}')\n"
             "assert(v == nil and msg:find('byte 7', 1, true))\n");
  lua_close(L);
}

TEST(json_decode_deep_nesting) {
  lua_State *L = new_state();
  mt_err_t err;
  size_t n = 100000;
  char *text = malloc(2 * n);
  ASSERT_TRUE(text != NULL);
  /* Exactly the limit decodes; one level more is an error, not a crash. */
  memset(text, '[', MT_JSON_MAX_DEPTH);
  memset(text + MT_JSON_MAX_DEPTH, ']', MT_JSON_MAX_DEPTH);
  ASSERT_EQ_INT(mt_json_decode(L, text, 2 * MT_JSON_MAX_DEPTH, &err), 0);
  mt_buf_t out = MT_BUF_INIT;
  ASSERT_EQ_INT(mt_json_encode(L, -1, &out, &err), 0);
  ASSERT_EQ_INT(out.len, 2 * MT_JSON_MAX_DEPTH);
  mt_buf_free(&out);
  lua_pop(L, 1);
  memset(text, '[', MT_JSON_MAX_DEPTH + 1);
  memset(text + MT_JSON_MAX_DEPTH + 1, ']', MT_JSON_MAX_DEPTH + 1);
  const char *msg = decode_error(L, text, 2 * (MT_JSON_MAX_DEPTH + 1));
  ASSERT_TRUE(strstr(msg, "deeper than the limit of 1000 levels") != NULL);
  memset(text, '{', n);
  decode_error(L, text, n);
  for (size_t i = 0; i < n; i++)
    text[i] = i % 6 == 5 ? '[' : "{\"a\":"[i % 6];
  decode_error(L, text, n);
  free(text);
  lua_close(L);
}

TEST(json_encode_errors) {
  lua_State *L = new_state();
  ASSERT_EQ_STR(encode_error(L, "{a = {1, print}}"),
                "cannot encode a function value at $.a[2]");
  ASSERT_EQ_STR(encode_error(L, "0/0"), "cannot encode NaN at $");
  ASSERT_TRUE(strstr(encode_error(L, "{x = math.huge}"), "infinite") != NULL);
  ASSERT_TRUE(strstr(encode_error(L, "{[true] = 1}"), "neither a string") !=
              NULL);
  ASSERT_TRUE(strstr(encode_error(L, "{[1.5] = 1}"), "neither a string") !=
              NULL);
  ASSERT_TRUE(strstr(encode_error(L, "(function() local t = {} t.self = t "
                                     "return t end)()"),
                     "cycle") != NULL);
  ASSERT_TRUE(strstr(encode_error(L, "{[1] = 'a', ['1'] = 'b'}"),
                     "duplicates") != NULL);
  ASSERT_TRUE(strstr(encode_error(L, "json.array({x = 1})"),
                     "positive integer") != NULL);
  ASSERT_TRUE(
      strstr(encode_error(L, "json.array({[1000000] = 1})"), "sparse") != NULL);
  ASSERT_TRUE(strstr(encode_error(L, "'\\xFF'"), "UTF-8") != NULL);
  ASSERT_TRUE(strstr(encode_error(L, "coroutine.create(print)"), "thread") !=
              NULL);
  ASSERT_TRUE(strstr(encode_error(L, "io.stdout"), "userdata") != NULL);
  /* Nesting past the limit is refused without a cycle being involved. */
  const char *deep = "(function() local t = {} for i = 1, 1001 do t = {t} end "
                     "return t end)()";
  ASSERT_TRUE(strstr(encode_error(L, deep),
                     "deeper than the limit of 1000 levels") != NULL);
  run_lua(
      L,
      "local s, msg = json.encode({f = print})\n"
      "assert(s == nil and msg == 'cannot encode a function value at $.f')\n");
  lua_close(L);
}

TEST(json_encode_tables) {
  lua_State *L = new_state();
  run_lua(
      L,
      "assert(json.encode({1, 2, 3}) == '[1,2,3]')\n"
      "assert(json.encode({b = 1, a = 2, [3] = true}) == "
      "'{\"3\":true,\"a\":2,\"b\":1}')\n"
      "assert(json.encode({[2] = 1}) == '{\"2\":1}')\n"
      "assert(json.encode({[0] = 'z', 'a'}) == '{\"0\":\"z\",\"1\":\"a\"}')\n"
      "assert(json.encode(json.object({1, 2})) == '{\"1\":1,\"2\":2}')\n"
      "assert(json.encode({1.0, 2, true, 'x'}) == '[1.0,2,true,\"x\"]')\n"
      "assert(json.encode(math.mininteger) == '-9223372036854775808')\n"
      "local t = json.array({1}); t[3] = 3\n"
      "assert(json.encode(t) == '[1,null,3]')\n"
      "local shared = {1}\n"
      "assert(json.encode({shared, shared}) == '[[1],[1]]')\n");
  lua_close(L);
}

TEST(json_round_trip_canonical) {
  lua_State *L = new_state();
  ASSERT_EQ_STR(
      reencode(L, " { \"b\" : [ 1 , 2.5 , \"x\" , true , false , null ] ,\n"
                  "\t\"a\" : { } , \"\" : -1 }\r\n"),
      "{\"\":-1,\"a\":{},\"b\":[1,2.5,\"x\",true,false,null]}");
  /* Canonical output is a fixed point of decode + encode. */
  const char *canon = "{\"k\":[{\"x\":[1,2,{}]},[],\"\\u0001\\n\"],\"z\":0.5}";
  ASSERT_EQ_STR(reencode(L, canon), canon);
  run_lua(L, "local v = json.decode('{\"dup\":1,\"dup\":2}')\n"
             "assert(v.dup == 2)\n");
  lua_close(L);
}

/* mt_json_check_object runs the same grammar without building anything:
 * syntax errors first, then the object rule. */
TEST(json_check_object) {
  mt_err_t err;
  ASSERT_EQ_INT(mt_json_check_object("{}", &err), 0);
  ASSERT_EQ_INT(mt_json_check_object(" {\"a\":[1,{\"b\":null}]}\n", &err), 0);
  ASSERT_EQ_INT(mt_json_check_object("[1, 2]", &err), MT_EPAYLOAD);
  ASSERT_EQ_STR(err.msg, "the payload must be a JSON object");
  ASSERT_EQ_INT(mt_json_check_object("\"{}\"", &err), MT_EPAYLOAD);
  ASSERT_EQ_STR(err.msg, "the payload must be a JSON object");
  ASSERT_EQ_INT(mt_json_check_object("[1,", &err), MT_EPAYLOAD);
  ASSERT_EQ_STR(err.msg, "invalid JSON at byte 3: expected a value, "
                         "found end of input");
  ASSERT_EQ_INT(mt_json_check_object("{\"n\": 1,}", &err), MT_EPAYLOAD);
  ASSERT_EQ_STR(err.msg, "invalid JSON at byte 8: expected a string key");
  ASSERT_EQ_INT(mt_json_check_object("{} {}", &err), MT_EPAYLOAD);
  ASSERT_EQ_STR(
      err.msg, "invalid JSON at byte 3: expected end of input after the value");
  ASSERT_EQ_INT(mt_json_check_object("{\"s\":\"\\udc00\"}", &err), MT_EPAYLOAD);
  ASSERT_TRUE(strstr(err.msg, "byte 6: expected a high surrogate") != NULL);
  /* The limit, at the bracket that goes one level too far. */
  size_t unit = strlen("{\"child\":"), n = MT_JSON_MAX_DEPTH + 1;
  char *text = malloc(n * (unit + 1) + 3);
  ASSERT_TRUE(text != NULL);
  for (size_t i = 0; i < n; i++)
    memcpy(text + i * unit, "{\"child\":", unit);
  strcpy(text + n * unit, "{}");
  memset(text + n * unit + 2, '}', n);
  text[n * unit + 2 + n] = '\0';
  ASSERT_EQ_INT(mt_json_check_object(text, &err), MT_EPAYLOAD);
  ASSERT_EQ_STR(err.msg, "invalid JSON at byte 9000: nested deeper than the "
                         "limit of 1000 levels");
  free(text);
}
