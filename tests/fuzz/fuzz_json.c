/*
 * JSON text from outside (payloads, AWS responses) through both decoders:
 * json/doc.c (the validator's C tree) and lua/json.c (the values a handler
 * gets), and the object check the hot paths use.
 *
 * The properties, from json/read.h and lua/json.h:
 *   - both decoders accept the same texts, refuse the others with the same
 *     code and message, and read the same values (as
 *     tests/unit/test_json_agree.c checks for chosen cases);
 *   - mt_json_check_object() accepts exactly the texts that parse to an
 *     object, and refuses a malformed one with the decoders' message;
 *   - whatever was decoded encodes, the encoding decodes to the same
 *     value, and encoding that again gives the same bytes (keys are
 *     sorted), so a payload survives any number of round trips.
 */
#include "fuzz.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "json/doc.h"
#include "json/read.h"
#include "lua/json.h"

#include "../unit/json_same.h"

static lua_State *L;

typedef struct decode_s {
  const char *text;
  size_t len;
  mt_err_t *err;
  int rc;
} decode_t;

/* Under lua_pcall, so that a Lua memory error is an answer, not a panic.
 * Stack: [decode_t*] -> [value or nothing]. */
static int decode_cb(lua_State *Ls) {
  decode_t *d = lua_touserdata(Ls, 1);
  lua_pop(Ls, 1);
  d->rc = mt_json_decode(Ls, d->text, d->len, d->err);
  return d->rc == 0 ? 1 : 0;
}

/* Stack: -> [value] on success, nothing on failure. Returns decode's rc. */
static int lua_decode(const char *text, size_t len, mt_err_t *err) {
  decode_t d = {text, len, err, MT_ENOMEM};
  lua_pushcfunction(L, decode_cb);
  lua_pushlightuserdata(L, &d);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
    lua_pop(L, 1);
    return MT_ENOMEM;
  }
  return d.rc;
}

static void round_trip(size_t len) {
  mt_buf_t e1 = MT_BUF_INIT, e2 = MT_BUF_INIT;
  mt_jdoc_t *doc1 = NULL;
  mt_err_t err;
  /* Stack: [v] */
  FUZZ_CHECK(mt_json_encode(L, -1, &e1, &err) == 0,
             "decoded from %zu bytes but does not encode: %s", len, err.msg);
  FUZZ_CHECK(mt_jdoc_parse(e1.data, e1.len, &doc1, &err) == 0,
             "the encoding does not parse: %s", err.msg);
  FUZZ_CHECK(json_same(L, -1, mt_jdoc_root(doc1)),
             "the encoding reads as another value: %.200s", e1.data);
  FUZZ_CHECK(lua_decode(e1.data, e1.len, &err) == 0,
             "the encoding does not decode: %s", err.msg);
  FUZZ_CHECK(mt_json_encode(L, -1, &e2, &err) == 0, "second encoding: %s",
             err.msg);
  FUZZ_CHECK(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0,
             "encodings differ: %.200s / %.200s", e1.data, e2.data);
  lua_pop(L, 1);
  mt_jdoc_free(doc1);
  mt_buf_free(&e1);
  mt_buf_free(&e2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (L == NULL) {
    L = luaL_newstate();
    if (L == NULL)
      abort();
    luaL_openlibs(L);
  }
  /* An exact copy, so that ASan sees any read past the end. */
  char *text = malloc(size > 0 ? size : 1);
  if (text == NULL)
    abort();
  memcpy(text, data, size);

  static mt_err_t derr, lerr, cerr;
  mt_jdoc_t *doc = NULL;
  derr.msg[0] = lerr.msg[0] = '\0';
  int drc = mt_jdoc_parse(text, size, &doc, &derr);
  int lrc = lua_decode(text, size, &lerr);
  FUZZ_CHECK(drc == lrc, "the tree says %d (%s), Lua says %d (%s)", drc,
             derr.msg, lrc, lerr.msg);
  if (drc != 0) {
    FUZZ_CHECK(drc == MT_EPAYLOAD, "refused with %d: %s", drc, derr.msg);
    FUZZ_CHECK(strcmp(derr.msg, lerr.msg) == 0,
               "the tree says \"%s\", Lua says \"%s\"", derr.msg, lerr.msg);
  } else {
    FUZZ_CHECK(json_same(L, -1, mt_jdoc_root(doc)),
               "the decoders read other values");
    mt_buf_t shown = MT_BUF_INIT;
    mt_jval_write(&shown, mt_jdoc_root(doc), 64);
    mt_buf_free(&shown);
    round_trip(size);
  }

  /* The object check reads a C string: only texts without a NUL. */
  if (memchr(data, '\0', size) == NULL) {
    char *cstr = mt_fuzz_cstr(data, size);
    int crc = mt_json_check_object(cstr, &cerr);
    int is_object = drc == 0 && mt_jdoc_root(doc)->type == MT_JV_OBJECT;
    FUZZ_CHECK((crc == 0) == is_object, "check_object says %d (%s)", crc,
               cerr.msg);
    if (drc != 0)
      FUZZ_CHECK(strcmp(cerr.msg, derr.msg) == 0,
                 "check_object says \"%s\", the decoders \"%s\"", cerr.msg,
                 derr.msg);
    free(cstr);
  }
  mt_jdoc_free(doc);
  free(text);
  lua_settop(L, 0);
  return 0;
}
