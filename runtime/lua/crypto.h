/*
 * moontask.crypto: what a handler needs to sign a request or check a
 * webhook's signature, on OpenSSL. Digests and MACs return raw bytes (a
 * Lua string of 32 bytes), which hex_encode or base64_encode turn into
 * text; equal compares in constant time; random draws from RAND_bytes.
 *
 * Every function is bounded by the size of its input, which the Lua
 * state's memory limit bounds in turn, so none needs the guard's clock.
 * Misuse (a number where a string belongs, a negative count) raises; text
 * that does not decode returns nil and a message, in the Lua manner.
 */
#ifndef MT_LUA_CRYPTO_H
#define MT_LUA_CRYPTO_H

#include <lua.h>

/* The most bytes crypto.random hands out in one call. */
#define MT_CRYPTO_RANDOM_MAX (1024 * 1024)

/* Stack: -> crypto. Pushes the library table: sha256, hmac_sha256, equal,
 * random, hex_encode, hex_decode, base64_encode, base64_decode. */
int mt_lua_crypto_open(lua_State *L);

#endif
