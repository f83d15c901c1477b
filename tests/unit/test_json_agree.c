/* The two JSON decoders, json/doc.c (the validator's C tree) and lua/json.c
 * (Lua values for handlers), must accept the same documents and read them
 * as the same values, or a payload could pass validation and then mean
 * something else to the task. Each case goes to both and expects the same
 * refusal, word for word, or equal values; the expected answer is spelt out
 * too, so that both going wrong the same way still fails. */
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>

#include "json/doc.h"
#include "json_same.h"
#include "lua/json.h"
#include "test.h"

/* Text for failure messages, with bytes outside printable ASCII as \xNN. */
static const char *shown(const char *s, size_t n) {
  static char out[200];
  size_t o = 0;
  for (size_t i = 0; i < n && o + 8 < sizeof out; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f)
      out[o++] = (char)c;
    else
      o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02X", c);
  }
  if (o + 8 >= sizeof out)
    strcpy(out + o, "...");
  else
    out[o] = '\0';
  return out;
}

/* Feeds text to both decoders. Refused: same code and message from both.
 * Accepted: equal values. Returns the tree (the Lua value is left on top of
 * L) or NULL when refused; expect_ok says which answer is right. */
static mt_jdoc_t *agree(lua_State *L, const char *text, size_t len,
                        int expect_ok) {
  static mt_err_t derr, lerr;
  mt_jdoc_t *doc = NULL;
  int top = lua_gettop(L);
  derr.msg[0] = lerr.msg[0] = '\0';
  int drc = mt_jdoc_parse(text, len, &doc, &derr);
  int lrc = mt_json_decode(L, text, len, &lerr);
  if (drc != lrc)
    MT__FAIL("<%s>: the tree says %d (%s), Lua says %d (%s)", shown(text, len),
             drc, derr.msg, lrc, lerr.msg);
  if (drc != 0) {
    ASSERT_EQ_INT(drc, MT_EPAYLOAD);
    ASSERT_EQ_INT(lua_gettop(L), top);
    if (strcmp(derr.msg, lerr.msg) != 0)
      MT__FAIL("<%s>: the tree says \"%s\", Lua says \"%s\"", shown(text, len),
               derr.msg, lerr.msg);
    if (strstr(derr.msg, "at byte ") == NULL)
      MT__FAIL("<%s>: no byte offset in \"%s\"", shown(text, len), derr.msg);
    if (expect_ok)
      MT__FAIL("<%s> should be accepted: %s", shown(text, len), derr.msg);
    return NULL;
  }
  ASSERT_EQ_INT(lua_gettop(L), top + 1);
  if (!expect_ok)
    MT__FAIL("<%s> should be refused", shown(text, len));
  if (!json_same(L, -1, mt_jdoc_root(doc)))
    MT__FAIL("<%s>: the decoders read different values", shown(text, len));
  return doc;
}

/* Runs agree() and drops both results. */
static void check(lua_State *L, const char *text, size_t len, int expect_ok) {
  mt_jdoc_t *doc = agree(L, text, len, expect_ok);
  if (doc != NULL) {
    lua_pop(L, 1);
    mt_jdoc_free(doc);
  }
}

/* The message both decoders give for text, which must be refused. */
static const char *refusal(lua_State *L, const char *text) {
  static mt_err_t err;
  mt_jdoc_t *doc = NULL;
  ASSERT_TRUE(agree(L, text, strlen(text), 0) == NULL);
  ASSERT_TRUE(mt_jdoc_parse(text, strlen(text), &doc, &err) != 0);
  return err.msg;
}

typedef struct agree_case_s {
  const char *text;
  size_t len; /* sizeof, so that a NUL inside counts */
  int ok;
} agree_case_t;

#define OK(s) \
  { s, sizeof(s) - 1, 1 }
#define BAD(s) \
  { s, sizeof(s) - 1, 0 }

TEST(json_agree_edge_cases) {
  /* clang-format off */
  static const agree_case_t cases[] = {
      /* \u escapes: pairs combine, a lone half of one is refused. */
      OK("\"\\ud83d\\ude00\""),   OK("\"\\uD83D\\uDE00x\""),
      BAD("\"\\ud800\""),         BAD("\"\\udc00\""),
      BAD("{\"a\":\"\\ud800\"}"), BAD("\"\\ud800\\u0041\""),
      BAD("\"\\ud800\\ud800\""),  BAD("\"\\ude00\\ud83d\""),
      BAD("\"\\ud800x\""),        OK("\"\\u00e9\\u20AC\\u0000\\/\""),
      BAD("\"\\u12\""),           BAD("\"\\u12g4\""),  BAD("\"\\x\""),
      BAD("\"\\U00e9\""),
      /* Raw UTF-8: RFC 3629 strict, in keys as in values. */
      OK("\"h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\""),
      OK("\"\xF4\x8F\xBF\xBF\""), /* U+10FFFF */
      BAD("\"\xC0\x80\""),        BAD("\"\xE0\x80\x80\""),
      BAD("\"\xC0\xAF\""),        BAD("\"\xF0\x80\x80\x80\""),
      BAD("\"\xFF\""),            BAD("\"\x80\""),     BAD("\"\xE2\x82\""),
      BAD("\"\xED\xA0\x80\""),    BAD("\"\xF4\x90\x80\x80\""),
      BAD("{\"\xC0\x80\":1}"),    BAD("\xC3\xA9"),
      /* Raw control characters must be escaped; DEL need not be. */
      BAD("\"a\tb\""),            BAD("\"\x01\""),     BAD("\"\x1F\""),
      BAD("\"a\nb\""),            BAD("\"a\0b\""),     OK("\"\x7F\""),
      OK("\"\\t\\u001f\""),
      /* Numbers. */
      OK("9223372036854775807"),  OK("9223372036854775808"),
      OK("-9223372036854775808"), OK("-9223372036854775809"),
      OK("123456789012345678901234567890"),
      BAD("1e400"),               BAD("-1e400"),       OK("1e-400"),
      OK("-0"),                   OK("-0.0"),          OK("0e0"),
      OK("1.5e-10"),              OK("1E+2"),          OK("1.0"),
      OK("[0.1,2.5,-3.75e2]"),
      BAD("01"),                  BAD("-01"),          BAD("00"),
      BAD("[01]"),                BAD("1."),           BAD(".5"),
      BAD("-"),                   BAD("+1"),           BAD("1e"),
      BAD("1e+"),                 BAD("NaN"),          BAD("Infinity"),
      BAD("-Infinity"),           BAD("0x10"),         BAD("1,5"),
      /* Trailing garbage and what is not JSON. */
      BAD("[1] x"),               BAD("{} {}"),        BAD("1 2"),
      BAD("truex"),               BAD("1x"),           BAD("1\0"),
      BAD("[1,2,]"),              BAD("{\"a\":1,}"),   BAD("{a:1}"),
      BAD("'a'"),                 BAD("// c\n1"),      BAD("[1 2]"),
      BAD("{\"a\" 1}"),           BAD("{1:2}"),        BAD("True"),
      OK(" \t\r\n[ 1 , {} ] \n"), BAD("\f1"),          BAD("\xC2\xA0" "1"),
      /* Empty input and a byte order mark. */
      BAD(""),                    BAD("   "),          BAD("\xEF\xBB\xBF{}"),
      BAD("\xEF\xBB\xBF"),
      /* Truncated documents. */
      BAD("["),                   BAD("{"),            BAD("[1,"),
      BAD("{\"a\":"),             BAD("{\"a\""),       BAD("{\"a"),
      BAD("\"ab"),                BAD("\"\\"),         BAD("\"\\u12"),
      BAD("tru"),                 BAD("nul"),          BAD("[[1]"),
      /* Duplicate names: both accept; see json_agree_duplicate_keys. */
      OK("{\"a\":1,\"a\":2}"),
      OK("{\"a\":{\"b\":1},\"c\":[],\"a\":[null,true,false]}"),
  };
  /* clang-format on */
  lua_State *L = luaL_newstate();
  ASSERT_TRUE(L != NULL);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check(L, cases[i].text, cases[i].len, cases[i].ok);
  ASSERT_EQ_INT(lua_gettop(L), 0);
  lua_close(L);
}

/* The messages are one grammar's: these are the ones a sender sees. */
TEST(json_agree_messages) {
  lua_State *L = luaL_newstate();
  ASSERT_TRUE(L != NULL);
  ASSERT_EQ_STR(refusal(L, "\"\\ud800\""),
                "invalid JSON at byte 7: expected a \\u low surrogate after a "
                "high surrogate");
  ASSERT_EQ_STR(refusal(L, "[\"\\udc00\"]"),
                "invalid JSON at byte 2: expected a high surrogate before this "
                "low surrogate");
  ASSERT_EQ_STR(refusal(L, "\"\xC0\x80\""),
                "invalid JSON at byte 1: expected valid UTF-8");
  ASSERT_EQ_STR(refusal(L, "\"a\tb\""),
                "invalid JSON at byte 2: expected an escape for the control "
                "character");
  ASSERT_EQ_STR(refusal(L, "1e400"),
                "invalid JSON at byte 0: number too large for a double");
  ASSERT_EQ_STR(
      refusal(L, "01"),
      "invalid JSON at byte 1: expected end of input after the value");
  ASSERT_EQ_STR(refusal(L, ""),
                "invalid JSON at byte 0: expected a value, found end of "
                "input");
  ASSERT_EQ_STR(refusal(L, "\xEF\xBB\xBF{}"),
                "invalid JSON at byte 0: expected a value");
  ASSERT_EQ_STR(refusal(L, "{\"a\":"),
                "invalid JSON at byte 5: expected a value, found end of "
                "input");
  ASSERT_EQ_STR(refusal(L, "{\"a\" 1}"),
                "invalid JSON at byte 5: expected ':' after the key");
  ASSERT_EQ_STR(refusal(L, "{1:2}"),
                "invalid JSON at byte 1: expected a string key");
  ASSERT_EQ_STR(refusal(L, "[1 2]"),
                "invalid JSON at byte 3: expected ',' or ']'");
  ASSERT_EQ_STR(refusal(L, "{\"a\":1 2}"),
                "invalid JSON at byte 7: expected ',' or '}'");
  lua_close(L);
}

/* The values behind the agreement: exact where int64 can be, the nearest
 * double otherwise, and -0 an integer while -0.0 is a negative float. */
TEST(json_agree_numbers) {
  static const struct {
    const char *text;
    int is_int;
    int64_t i;
    double d;
  } nums[] = {
      {"9223372036854775807", 1, INT64_MAX, 0},
      {"9223372036854775808", 0, 0, 9223372036854775808.0},
      {"-9223372036854775808", 1, INT64_MIN, 0},
      {"-9223372036854775809", 0, 0, -9223372036854775808.0},
      {"9007199254740993", 1, 9007199254740993LL, 0},
      {"-0", 1, 0, 0},
      {"-0.0", 0, 0, -0.0},
      {"1.5e-10", 0, 0, 1.5e-10},
      {"1e-400", 0, 0, 0.0},
      {"2.5", 0, 0, 2.5},
      {"1.0", 0, 0, 1.0},
  };
  lua_State *L = luaL_newstate();
  ASSERT_TRUE(L != NULL);
  for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
    const char *t = nums[k].text;
    mt_jdoc_t *doc = agree(L, t, strlen(t), 1);
    const mt_jval_t *v = mt_jdoc_root(doc);
    ASSERT_EQ_INT(v->type, MT_JV_NUMBER);
    if (nums[k].is_int) {
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) != nums[k].i)
        MT__FAIL("%s: not the integer it says", t);
      ASSERT_TRUE(v->is_int && v->u.num.i == nums[k].i);
    } else {
      double want = nums[k].d;
      if (lua_isinteger(L, -1) || memcmp(&v->u.num.d, &want, sizeof want) != 0)
        MT__FAIL("%s: not the float %g", t, want);
    }
    lua_pop(L, 1);
    mt_jdoc_free(doc);
  }
  lua_close(L);
}

/* RFC 8259 leaves duplicate names to the parser. Both accept them. Lua
 * keeps the last value (a table has one slot per key), as PostgreSQL's
 * jsonb does with the stored payload; the tree keeps every member in text
 * order, so the validator checks each value, and mt_jval_get finds the
 * first. */
TEST(json_agree_duplicate_keys) {
  const char *text = "{\"a\":1,\"b\":0,\"a\":2}";
  lua_State *L = luaL_newstate();
  ASSERT_TRUE(L != NULL);
  mt_jdoc_t *doc = agree(L, text, strlen(text), 1);
  const mt_jval_t *root = mt_jdoc_root(doc);
  ASSERT_EQ_INT(root->len, 3);
  ASSERT_EQ_STR(root->u.members[0].key, "a");
  ASSERT_EQ_INT(root->u.members[0].value.u.num.i, 1);
  ASSERT_EQ_STR(root->u.members[2].key, "a");
  ASSERT_EQ_INT(root->u.members[2].value.u.num.i, 2);
  ASSERT_EQ_INT(mt_jval_get(root, "a")->u.num.i, 1);
  ASSERT_EQ_INT(lua_getfield(L, -1, "a"), LUA_TNUMBER);
  ASSERT_EQ_INT(lua_tointeger(L, -1), 2);
  lua_pop(L, 2);
  mt_jdoc_free(doc);
  lua_close(L);
}

/* n containers: "[" n times then "]" n times, or {"a":...{"a":1}...}. */
static char *nested(size_t n, int objects, size_t *len) {
  size_t unit = objects ? 5 : 1;
  char *s = malloc(n * (unit + 1) + 2);
  ASSERT_TRUE(s != NULL);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    memcpy(s + o, objects ? "{\"a\":" : "[", unit);
    o += unit;
  }
  s[o++] = '1';
  for (size_t i = 0; i < n; i++)
    s[o++] = objects ? '}' : ']';
  *len = o;
  return s;
}

TEST(json_agree_nesting_limit) {
  lua_State *L = luaL_newstate();
  ASSERT_TRUE(L != NULL);
  for (int objects = 0; objects <= 1; objects++) {
    size_t len;
    char *s = nested(MT_JSON_MAX_DEPTH, objects, &len);
    check(L, s, len, 1);
    free(s);
    s = nested(MT_JSON_MAX_DEPTH + 1, objects, &len);
    mt_jdoc_t *doc;
    mt_err_t err;
    check(L, s, len, 0);
    ASSERT_TRUE(mt_jdoc_parse(s, len, &doc, &err) != 0);
    ASSERT_TRUE(strstr(err.msg, "nested deeper than the limit of 1000 "
                                "levels") != NULL);
    free(s);
    /* Far past the limit, and unterminated: still one error, no crash. */
    s = nested(200000, objects, &len);
    check(L, s, objects ? 5 * (size_t)200000 : 200000, 0);
    free(s);
  }
  lua_close(L);
}

/* Finds a locale whose decimal point is not '.' and makes it LC_NUMERIC;
 * returns its name, or NULL (and the C locale) if none is installed. */
static const char *comma_locale(void) {
  static const char *guesses[] = {"de_DE.UTF-8", "de_DE.utf8",  "fr_FR.UTF-8",
                                  "fr_FR.utf8",  "nl_NL.UTF-8", "ru_RU.UTF-8"};
  static char name[256];
  for (size_t i = 0; i < sizeof guesses / sizeof guesses[0]; i++)
    if (setlocale(LC_NUMERIC, guesses[i]) != NULL &&
        strcmp(localeconv()->decimal_point, ".") != 0)
      return guesses[i];
  FILE *list = popen("locale -a 2>/dev/null", "r");
  const char *found = NULL;
  while (list != NULL && found == NULL && fgets(name, sizeof name, list)) {
    name[strcspn(name, "\r\n")] = '\0';
    if (setlocale(LC_NUMERIC, name) != NULL &&
        strcmp(localeconv()->decimal_point, ".") != 0)
      found = name;
  }
  if (list != NULL)
    pclose(list);
  if (found == NULL)
    setlocale(LC_NUMERIC, "C");
  return found;
}

/* Both decoders read, and both writers write, JSON numbers under whatever
 * LC_NUMERIC is current: 1.5 is 1.5 and 1,5 is refused. */
static void check_numbers(void) {
  static const struct {
    const char *text;
    double d;
  } nums[] = {{"1.5", 1.5},   {"-2.5e-3", -2.5e-3},   {"0.1", 0.1},
              {"1e2", 100.0}, {"123.456e1", 1234.56}, {"-0.0", -0.0}};
  lua_State *L = luaL_newstate();
  ASSERT_TRUE(L != NULL);
  for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
    const char *t = nums[k].text;
    mt_jdoc_t *doc = agree(L, t, strlen(t), 1);
    double want = nums[k].d;
    if (memcmp(&mt_jdoc_root(doc)->u.num.d, &want, sizeof want) != 0)
      MT__FAIL("%s read as %g", t, mt_jdoc_root(doc)->u.num.d);
    lua_pop(L, 1);
    mt_jdoc_free(doc);
  }
  check(L, "1,5", 3, 0);
  check(L, "[1,5]", 5, 1);
  /* Writing back stays JSON too: the encoder and the tree's writer. */
  mt_buf_t out = MT_BUF_INIT;
  mt_err_t err;
  mt_jdoc_t *doc = agree(L, "[1.5,-0.25]", 11, 1);
  ASSERT_EQ_INT(mt_json_encode(L, -1, &out, &err), 0);
  ASSERT_EQ_STR(out.data, "[1.5,-0.25]");
  mt_buf_reset(&out);
  ASSERT_EQ_INT(mt_jval_write(&out, mt_jdoc_root(doc), 100), 0);
  ASSERT_EQ_STR(out.data, "[1.5,-0.25]");
  mt_buf_free(&out);
  mt_jdoc_free(doc);
  lua_close(L);
  setlocale(LC_NUMERIC, "C");
}

TEST(json_numbers_c_locale) {
  setlocale(LC_NUMERIC, "C");
  check_numbers();
}

/* strtod and printf follow LC_NUMERIC; JSON does not. scripts/test installs
 * a locale whose decimal point is ',' (MT_TEST_LOCALE in scripts/lib.sh). */
TEST(json_agree_locale_independent) {
  const char *loc = comma_locale();
  if (loc == NULL)
    SKIP("no locale with a ',' decimal point is installed (locale -a); "
         "scripts/lib.sh generates one as root");
  fprintf(stderr, "checking under LC_NUMERIC=%s (decimal point \"%s\")\n", loc,
          localeconv()->decimal_point);
  check_numbers();
}
