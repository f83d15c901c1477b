/*
 * The JSON lexer: the one place that decides what a JSON token is. Both
 * decoders (json/doc.c builds a C tree, lua/json.c pushes Lua values) read
 * their input through it, by way of the grammar in json/read.h, so they
 * accept the same texts and turn them into the same values.
 *
 * A token is validated when mt_jlex_next() returns it: strings are checked
 * for escapes, surrogate pairs, control characters and UTF-8, numbers are
 * converted. The lexer allocates nothing that outlives a call and never
 * reads past `len`, so the text need not be NUL-terminated. Tokens point
 * into the caller's text, which must outlive them; decoded strings go into
 * a buffer the caller owns.
 */
#ifndef MT_JSON_LEX_H
#define MT_JSON_LEX_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef enum mt_jtok_type_e {
  MT_JT_END,     /* no input left but whitespace */
  MT_JT_INVALID, /* a byte no token starts with, or a misspelt literal */
  MT_JT_LBRACKET,
  MT_JT_RBRACKET,
  MT_JT_LBRACE,
  MT_JT_RBRACE,
  MT_JT_COMMA,
  MT_JT_COLON,
  MT_JT_STRING,
  MT_JT_NUMBER,
  MT_JT_TRUE,
  MT_JT_FALSE,
  MT_JT_NULL
} mt_jtok_type_t;

typedef struct mt_jtok_s {
  mt_jtok_type_t type;
  size_t pos; /* byte offset of the token's first byte */
  /* Strings: the bytes between the quotes and the length they decode to.
   * Every escape is longer than what it stands for, so len == raw_len
   * means raw is already the decoded text. */
  const char *raw;
  size_t raw_len, len;
  /* Numbers: an integer literal that fits int64 is is_int with its exact
   * value in i; anything else is the nearest double. d is always set. */
  int is_int;
  int64_t i;
  double d;
} mt_jtok_t;

typedef struct mt_jlex_s {
  const char *text;
  size_t len, pos; /* pos: the first byte not yet read */
  mt_err_t *err;
} mt_jlex_t;

void mt_jlex_init(mt_jlex_t *lx, const char *text, size_t len, mt_err_t *err);

/* Skips whitespace and reads the next token into tok. Returns 0, also for
 * MT_JT_END and MT_JT_INVALID (only the grammar knows what it expected
 * there), or MT_EPAYLOAD for a malformed string or number, with a message
 * naming the byte offset, or MT_ENOMEM. */
int mt_jlex_next(mt_jlex_t *lx, mt_jtok_t *tok);

/* Skips whitespace and says which token starts there, from its first byte
 * alone (a misspelt literal still peeks as the literal), with its offset in
 * *pos. The grammar checks the kind of token before mt_jlex_next() scans
 * it, so that a token in the wrong place is reported as misplaced rather
 * than for whatever is wrong inside it. */
mt_jtok_type_t mt_jlex_peek(mt_jlex_t *lx, size_t *pos);

/* Writes the decoded bytes of a string token, tok->len of them and no NUL,
 * to dst. Cannot fail: mt_jlex_next() validated the token. */
void mt_jlex_string(const mt_jtok_t *tok, char *dst);

/* Sets the error "invalid JSON at byte <pos>: expected <what>" (with ",
 * found end of input" when pos is at the end) and returns MT_EPAYLOAD. */
int mt_jlex_fail(const mt_jlex_t *lx, size_t pos, const char *what);

#endif
