#include "lua/crypto.h"

#include <lauxlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* crypto.sha256(msg) -> 32 raw bytes */
static int crypto_sha256(lua_State *L) {
  size_t len;
  const char *msg = luaL_checklstring(L, 1, &len);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (EVP_Digest(msg, len, md, &mdlen, EVP_sha256(), NULL) != 1)
    return luaL_error(L, "sha256: OpenSSL failed to compute the digest");
  lua_pushlstring(L, (const char *)md, mdlen);
  return 1;
}

/* crypto.hmac_sha256(key, msg) -> 32 raw bytes. HMAC() is OpenSSL's
 * one-shot form, not deprecated in 3.0 (unlike HMAC_CTX). */
static int crypto_hmac_sha256(lua_State *L) {
  size_t klen, mlen;
  const char *key = luaL_checklstring(L, 1, &klen);
  const char *msg = luaL_checklstring(L, 2, &mlen);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  /* A key longer than INT_MAX bytes is not a key; HMAC takes an int. */
  luaL_argcheck(L, klen <= 0x7fffffff, 1, "key too long");
  if (HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, md,
           &mdlen) == NULL)
    return luaL_error(L, "hmac_sha256: OpenSSL failed to compute the MAC");
  lua_pushlstring(L, (const char *)md, mdlen);
  return 1;
}

/* crypto.equal(a, b) -> boolean. The time taken depends on the lengths
 * only, never on where the strings differ, so comparing a signature an
 * attacker sent with the one expected tells them nothing about the latter
 * (strings of different lengths are unequal at once: lengths of MACs are
 * public). */
static int crypto_equal(lua_State *L) {
  size_t alen, blen;
  const char *a = luaL_checklstring(L, 1, &alen);
  const char *b = luaL_checklstring(L, 2, &blen);
  lua_pushboolean(L, alen == blen && CRYPTO_memcmp(a, b, alen) == 0);
  return 1;
}

/* crypto.random(n) -> n bytes from OpenSSL's CSPRNG. */
static int crypto_random(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0 && n <= MT_CRYPTO_RANDOM_MAX, 1,
                "must be a count of bytes from 0 to 1048576");
  luaL_Buffer b;
  unsigned char *p =
      (unsigned char *)luaL_buffinitsize(L, &b, n > 0 ? (size_t)n : 1);
  /* A CSPRNG that cannot seed itself is a broken host, not an expected
   * failure for a handler to carry on from. */
  if (n > 0 && RAND_bytes(p, (int)n) != 1)
    return luaL_error(L, "random: OpenSSL's random generator failed");
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

static const char hex_digits[] = "0123456789abcdef";

/* crypto.hex_encode(s) -> lowercase hex */
static int crypto_hex_encode(lua_State *L) {
  size_t len;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, len <= ((size_t)-1) / 2 - 1, 1, "too long");
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, len * 2 + 1);
  for (size_t i = 0; i < len; i++) {
    p[2 * i] = hex_digits[s[i] >> 4];
    p[2 * i + 1] = hex_digits[s[i] & 15];
  }
  luaL_pushresultsize(&b, len * 2);
  return 1;
}

static int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* crypto.hex_decode(s) -> bytes | nil, message. Either case; nothing but
 * hex digits, in pairs. */
static int crypto_hex_decode(lua_State *L) {
  size_t len;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
  if (len % 2 != 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "hex_decode: odd number of digits (%d)", (int)len);
    return 2;
  }
  for (size_t i = 0; i < len; i++)
    if (hex_value(s[i]) < 0) {
      luaL_pushfail(L);
      lua_pushfstring(L, "hex_decode: byte %d is not a hex digit", (int)i + 1);
      return 2;
    }
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, len / 2 + 1);
  for (size_t i = 0; i < len / 2; i++)
    p[i] = (char)(hex_value(s[2 * i]) << 4 | hex_value(s[2 * i + 1]));
  luaL_pushresultsize(&b, len / 2);
  return 1;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* crypto.base64_encode(s) -> RFC 4648 base64, standard alphabet, padded */
static int crypto_base64_encode(lua_State *L) {
  size_t len;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, len <= ((size_t)-1) / 4 * 3 - 3, 1, "too long");
  size_t out = (len + 2) / 3 * 4;
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, out + 1);
  size_t o = 0, i = 0;
  for (; i + 2 < len; i += 3) {
    unsigned long v =
        (unsigned long)s[i] << 16 | (unsigned long)s[i + 1] << 8 | s[i + 2];
    p[o++] = b64_alphabet[v >> 18 & 63];
    p[o++] = b64_alphabet[v >> 12 & 63];
    p[o++] = b64_alphabet[v >> 6 & 63];
    p[o++] = b64_alphabet[v & 63];
  }
  if (i < len) {
    unsigned long v = (unsigned long)s[i] << 16;
    if (i + 1 < len)
      v |= (unsigned long)s[i + 1] << 8;
    p[o++] = b64_alphabet[v >> 18 & 63];
    p[o++] = b64_alphabet[v >> 12 & 63];
    p[o++] = i + 1 < len ? b64_alphabet[v >> 6 & 63] : '=';
    p[o++] = '=';
  }
  luaL_pushresultsize(&b, o);
  return 1;
}

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Stack: -> nil, message */
static int b64_fail(lua_State *L, const char *why, size_t at) {
  luaL_pushfail(L);
  if (at > 0)
    lua_pushfstring(L, "base64_decode: %s at byte %d", why, (int)at);
  else
    lua_pushfstring(L, "base64_decode: %s", why);
  return 2;
}

/* crypto.base64_decode(s) -> bytes | nil, message. The standard alphabet;
 * the padding may be left out (many APIs do), but what is there must be
 * whole: no whitespace, no stray '=', and the unused bits of the last
 * digit zero, so that one byte string has exactly one encoding. */
static int crypto_base64_decode(lua_State *L) {
  size_t len;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
  size_t n = len;
  if (n % 4 == 0 && n > 0 && s[n - 1] == '=')
    n -= s[n - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < n; i++)
    if (b64_value(s[i]) < 0)
      return b64_fail(
          L, s[i] == '=' ? "padding in the middle" : "not a base64 digit",
          i + 1);
  if (n % 4 == 1)
    return b64_fail(L, "truncated input", 0);
  /* The bits past the last whole byte must be zero. */
  if ((n % 4 == 2 && (b64_value(s[n - 1]) & 15) != 0) ||
      (n % 4 == 3 && (b64_value(s[n - 1]) & 3) != 0))
    return b64_fail(L, "non-zero bits after the last byte", n);
  size_t out = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, out + 1);
  size_t o = 0;
  unsigned long acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    acc = (acc << 6 | (unsigned long)b64_value(s[i])) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      p[o++] = (char)(acc >> bits & 0xff);
    }
  }
  luaL_pushresultsize(&b, o);
  return 1;
}

static const luaL_Reg crypto_funcs[] = {{"sha256", crypto_sha256},
                                        {"hmac_sha256", crypto_hmac_sha256},
                                        {"equal", crypto_equal},
                                        {"random", crypto_random},
                                        {"hex_encode", crypto_hex_encode},
                                        {"hex_decode", crypto_hex_decode},
                                        {"base64_encode", crypto_base64_encode},
                                        {"base64_decode", crypto_base64_decode},
                                        {NULL, NULL}};

int mt_lua_crypto_open(lua_State *L) {
  luaL_newlib(L, crypto_funcs);
  return 1;
}
