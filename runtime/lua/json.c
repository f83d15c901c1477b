#include "lua/json.h"

#include "common/utf8.h"

#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

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

typedef struct json_dec_s {
  lua_State *L;
  const char *start, *p, *end;
  int depth;
  int mt_array, mt_object; /* stack slots of the marker metatables */
  mt_err_t *err;
} json_dec_t;

static int dec_fail(json_dec_t *d, const char *at, const char *what) {
  if (at >= d->end)
    return mt_err_set(
        d->err, MT_EPAYLOAD,
        "invalid JSON at byte %zu: expected %s, found end of input",
        (size_t)(at - d->start), what);
  return mt_err_set(d->err, MT_EPAYLOAD,
                    "invalid JSON at byte %zu: expected %s",
                    (size_t)(at - d->start), what);
}

static void dec_skip_ws(json_dec_t *d) {
  while (d->p < d->end &&
         (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r'))
    d->p++;
}

static int dec_value(json_dec_t *d);

static int hex4(const char *p, const char *end, unsigned *out) {
  unsigned v = 0;
  if (end - p < 4)
    return -1;
  for (int i = 0; i < 4; i++) {
    int c = (unsigned char)p[i];
    if (!isxdigit(c))
      return -1;
    v = v << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  *out = v;
  return 0;
}

/* Decodes the escape at d->p (just past the backslash) into b. */
static int dec_escape(json_dec_t *d, luaL_Buffer *b) {
  const char *esc = d->p - 1;
  unsigned cp, lo;
  if (d->p >= d->end)
    return dec_fail(d, d->p, "an escape character");
  switch (*d->p++) {
  case '"': luaL_addchar(b, '"'); return 0;
  case '\\': luaL_addchar(b, '\\'); return 0;
  case '/': luaL_addchar(b, '/'); return 0;
  case 'b': luaL_addchar(b, '\b'); return 0;
  case 'f': luaL_addchar(b, '\f'); return 0;
  case 'n': luaL_addchar(b, '\n'); return 0;
  case 'r': luaL_addchar(b, '\r'); return 0;
  case 't': luaL_addchar(b, '\t'); return 0;
  case 'u': break;
  default:
    return dec_fail(d, esc, "one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u");
  }
  if (hex4(d->p, d->end, &cp) != 0)
    return dec_fail(d, esc, "four hex digits after \\u");
  d->p += 4;
  if (cp >= 0xDC00 && cp <= 0xDFFF)
    return dec_fail(d, esc, "a high surrogate before this low surrogate");
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    /* Characters outside the BMP arrive as a UTF-16 surrogate pair; a lone
     * half has no UTF-8 form, so it is an error rather than mojibake. */
    if (d->end - d->p < 6 || d->p[0] != '\\' || d->p[1] != 'u' ||
        hex4(d->p + 2, d->end, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
      return dec_fail(d, d->p, "a \\u low surrogate after a high surrogate");
    d->p += 6;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  /* luaL_addvalue() is the one buffer call that allows a pushed value. */
  lua_pushfstring(d->L, "%U", (long)cp);
  luaL_addvalue(b);
  return 0;
}

/* Decodes the string starting at the opening quote at d->p.
 * Stack: [] -> [string]; on error the stack may hold a buffer box, which the
 * caller's final lua_settop() removes. */
static int dec_string(json_dec_t *d) {
  lua_State *L = d->L;
  luaL_Buffer b;
  int buffered = 0, rc;
  const char *run = ++d->p; /* start of the bytes not yet copied */
  for (;;) {
    if (d->p >= d->end)
      return dec_fail(d, d->p, "'\"' to close the string");
    unsigned char c = (unsigned char)*d->p;
    if (c == '"')
      break;
    if (c < 0x20)
      return dec_fail(d, d->p, "an escape for the control character");
    if (c >= 0x80) {
      size_t n = mt_utf8_seq((const unsigned char *)d->p, (size_t)(d->end - d->p));
      if (n == 0)
        return dec_fail(d, d->p, "valid UTF-8");
      d->p += n;
      continue;
    }
    if (c != '\\') {
      d->p++;
      continue;
    }
    /* Only strings with escapes pay for a buffer; plain ones are pushed
     * straight from the input below. */
    if (!buffered) {
      luaL_buffinit(L, &b);
      buffered = 1;
    }
    luaL_addlstring(&b, run, (size_t)(d->p - run));
    d->p++;
    if ((rc = dec_escape(d, &b)) != 0)
      return rc;
    run = d->p;
  }
  if (buffered) {
    luaL_addlstring(&b, run, (size_t)(d->p - run));
    luaL_pushresult(&b);
  } else {
    lua_pushlstring(L, run, (size_t)(d->p - run));
  }
  d->p++;
  return 0;
}

/* Decodes a number. Integer literals that fit int64 become Lua integers so
 * that ids such as 9007199254740993 survive; everything else is a double.
 * Stack: [] -> [number] */
static int dec_number(json_dec_t *d) {
  const char *s = d->p, *p = d->p;
  int neg = 0, integral = 1;
  if (p < d->end && *p == '-')
    neg = 1, p++;
  if (p < d->end && *p == '0')
    p++;
  else if (p < d->end && *p >= '1' && *p <= '9')
    while (p < d->end && *p >= '0' && *p <= '9')
      p++;
  else
    return dec_fail(d, p, "a digit");
  if (p < d->end && *p == '.') {
    integral = 0, p++;
    if (p >= d->end || *p < '0' || *p > '9')
      return dec_fail(d, p, "a digit after '.'");
    while (p < d->end && *p >= '0' && *p <= '9')
      p++;
  }
  if (p < d->end && (*p == 'e' || *p == 'E')) {
    integral = 0, p++;
    if (p < d->end && (*p == '+' || *p == '-'))
      p++;
    if (p >= d->end || *p < '0' || *p > '9')
      return dec_fail(d, p, "a digit in the exponent");
    while (p < d->end && *p >= '0' && *p <= '9')
      p++;
  }
  d->p = p;
  if (integral) {
    uint64_t u = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    const char *q = s + neg;
    for (; q < p; q++) {
      unsigned digit = (unsigned)(*q - '0');
      if (u > (limit - digit) / 10)
        break;
      u = u * 10 + digit;
    }
    if (q == p) {
      lua_pushinteger(d->L, neg ? (lua_Integer)(0 - u) : (lua_Integer)u);
      return 0;
    }
  }
  /* strtod needs a NUL-terminated copy (the input may not be terminated) and
   * the locale's decimal point, as Lua's own lua_str2number does. */
  size_t len = (size_t)(p - s);
  char small[64], *copy = len < sizeof small ? small : malloc(len + 1);
  if (copy == NULL)
    return mt_err_set(d->err, MT_ENOMEM, "out of memory decoding a number");
  memcpy(copy, s, len);
  copy[len] = '\0';
  char point = localeconv()->decimal_point[0];
  for (char *c = copy; *c; c++)
    if (*c == '.')
      *c = point;
  errno = 0;
  double x = strtod(copy, NULL);
  int range = errno == ERANGE && isinf(x);
  if (copy != small)
    free(copy);
  if (range)
    return mt_err_set(d->err, MT_EPAYLOAD,
                      "invalid JSON at byte %zu: number too large for a double",
                      (size_t)(s - d->start));
  lua_pushnumber(d->L, (lua_Number)x);
  return 0;
}

/* Stack: [] -> [array table] */
static int dec_array(json_dec_t *d) {
  lua_State *L = d->L;
  lua_Integer n = 0;
  int rc;
  d->p++;
  lua_newtable(L);
  lua_pushvalue(L, d->mt_array);
  lua_setmetatable(L, -2);
  dec_skip_ws(d);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
    return 0;
  }
  for (;;) {
    if ((rc = dec_value(d)) != 0)
      return rc;
    lua_rawseti(L, -2, ++n);
    dec_skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
    } else if (d->p < d->end && *d->p == ']') {
      d->p++;
      return 0;
    } else {
      return dec_fail(d, d->p, "',' or ']'");
    }
  }
}

/* Duplicate names keep the last value, as most parsers do.
 * Stack: [] -> [object table] */
static int dec_object(json_dec_t *d) {
  lua_State *L = d->L;
  int rc;
  d->p++;
  lua_newtable(L);
  lua_pushvalue(L, d->mt_object);
  lua_setmetatable(L, -2);
  dec_skip_ws(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    return 0;
  }
  for (;;) {
    dec_skip_ws(d);
    if (d->p >= d->end || *d->p != '"')
      return dec_fail(d, d->p, "a string key");
    if ((rc = dec_string(d)) != 0)
      return rc;
    dec_skip_ws(d);
    if (d->p >= d->end || *d->p != ':')
      return dec_fail(d, d->p, "':' after the key");
    d->p++;
    if ((rc = dec_value(d)) != 0)
      return rc;
    lua_rawset(L, -3);
    dec_skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
    } else if (d->p < d->end && *d->p == '}') {
      d->p++;
      return 0;
    } else {
      return dec_fail(d, d->p, "',' or '}'");
    }
  }
}

static int dec_literal(json_dec_t *d, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
    return dec_fail(d, d->p, "a value");
  d->p += n;
  return 0;
}

/* Stack: [] -> [value] */
static int dec_value(json_dec_t *d) {
  int rc;
  dec_skip_ws(d);
  if (d->p >= d->end)
    return dec_fail(d, d->p, "a value");
  switch (*d->p) {
  case '[':
  case '{':
    if (d->depth >= MT_JSON_MAX_DEPTH)
      return mt_err_set(
          d->err, MT_EPAYLOAD,
          "invalid JSON at byte %zu: nested deeper than the limit of %d "
          "levels",
          (size_t)(d->p - d->start), MT_JSON_MAX_DEPTH);
    /* Each level holds a table, a key and a value (or a string buffer). */
    if (!lua_checkstack(d->L, 8))
      return mt_err_set(d->err, MT_ENOMEM, "Lua stack overflow decoding JSON");
    d->depth++;
    rc = *d->p == '[' ? dec_array(d) : dec_object(d);
    d->depth--;
    return rc;
  case '"': return dec_string(d);
  case 't':
    if ((rc = dec_literal(d, "true")) == 0)
      lua_pushboolean(d->L, 1);
    return rc;
  case 'f':
    if ((rc = dec_literal(d, "false")) == 0)
      lua_pushboolean(d->L, 0);
    return rc;
  case 'n':
    if ((rc = dec_literal(d, "null")) == 0)
      lua_pushlightuserdata(d->L, NULL);
    return rc;
  default:
    if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9'))
      return dec_number(d);
    return dec_fail(d, d->p, "a value");
  }
}

int mt_json_decode(lua_State *L, const char *text, size_t len, mt_err_t *err) {
  int base = lua_gettop(L), rc;
  json_dec_t d = {L, text, text, text + len, 0, base + 1, base + 2, err};
  if (!lua_checkstack(L, 6))
    return mt_err_set(err, MT_ENOMEM, "Lua stack overflow decoding JSON");
  json_marker(L, MT_JSON_ARRAY);
  json_marker(L, MT_JSON_OBJECT);
  rc = dec_value(&d);
  if (rc == 0) {
    dec_skip_ws(&d);
    if (d.p < d.end)
      rc = dec_fail(&d, d.p, "end of input after the value");
  }
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

static int enc_string(json_enc_t *e, const char *s, size_t len,
                      const json_path_t *path) {
  static const char hex[] = "0123456789abcdef";
  size_t run = 0, i = 0;
  if (enc_puts(e, "\"") != 0)
    return MT_ENOMEM;
  while (i < len) {
    unsigned char c = (unsigned char)s[i];
    char esc[7] = {'\\', 0};
    size_t elen = 2;
    if (c >= 0x80) {
      size_t n = mt_utf8_seq((const unsigned char *)s + i, len - i);
      if (n == 0)
        return enc_fail(e, path, "a string that is not valid UTF-8");
      i += n;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') {
      i++;
      continue;
    }
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    default:
      memcpy(esc + 1, "u00", 3);
      esc[4] = hex[c >> 4], esc[5] = hex[c & 15], elen = 6;
    }
    if (enc_put(e, s + run, i - run) != 0 || enc_put(e, esc, elen) != 0)
      return MT_ENOMEM;
    run = ++i;
  }
  if (enc_put(e, s + run, len - run) != 0)
    return MT_ENOMEM;
  return enc_puts(e, "\"");
}

/* Floats print in the shortest of %.14g and %.17g that reads back to the
 * same double, with ".0" added to integral values so they decode as floats. */
static int enc_float(json_enc_t *e, lua_Number x, const json_path_t *path) {
  char num[40], point = localeconv()->decimal_point[0];
  if (isnan(x))
    return enc_fail(e, path, "NaN");
  if (isinf(x))
    return enc_fail(e, path, "an infinite number");
  snprintf(num, sizeof num, "%.14g", (double)x);
  if (strtod(num, NULL) != (double)x)
    snprintf(num, sizeof num, "%.17g", (double)x);
  for (char *c = num; *c; c++)
    if (*c == point)
      *c = '.';
  if (num[strspn(num, "-0123456789")] == '\0')
    strcat(num, ".0");
  return enc_puts(e, num);
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

int mt_json_check_object(const char *text, mt_err_t *err) {
  lua_State *L = luaL_newstate();
  if (L == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  int rc = mt_json_decode(L, text, strlen(text), err);
  if (rc == 0 && !(lua_istable(L, -1) && luaL_getmetafield(L, -1, "__name") &&
                   strcmp(lua_tostring(L, -1), MT_JSON_OBJECT) == 0))
    rc = mt_err_set(err, MT_EPAYLOAD, "the payload must be a JSON object");
  lua_close(L);
  return rc;
}
