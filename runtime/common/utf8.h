/*
 * UTF-8 as both JSON modules (the Lua one and the validator's document
 * parser) and the format checks need it: strict decoding of one sequence and
 * encoding of one code point. Plain functions, no state.
 */
#ifndef MT_UTF8_H
#define MT_UTF8_H

#include <stddef.h>

/* Length of the well-formed UTF-8 sequence at s (at most n bytes, n >= 1),
 * or 0. RFC 3629 forbids overlong forms, encoded surrogates and code points
 * past U+10FFFF; rejecting them keeps our output readable by strict peers
 * and lets regexes run on checked strings. */
size_t mt_utf8_seq(const unsigned char *s, size_t n);

/* Writes code point cp (at most U+10FFFF) to o as 1 to 4 bytes; returns
 * how many. */
size_t mt_utf8_put(char *o, unsigned cp);

/* Appends s to out with every byte that does not start a well-formed
 * sequence replaced by U+FFFD: for text bound for a store that refuses
 * invalid UTF-8 (a handler's error message, say), where losing a byte beats
 * losing the record. Returns 0 or MT_ENOMEM. */
struct mt_buf_s;
int mt_utf8_sanitize(struct mt_buf_s *out, const char *s);

#endif
