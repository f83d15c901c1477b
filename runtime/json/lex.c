#include "json/lex.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "json/c_locale.h"

void mt_jlex_init(mt_jlex_t *lx, const char *text, size_t len, mt_err_t *err) {
  lx->text = text;
  lx->len = len;
  lx->pos = 0;
  lx->err = err;
}

int mt_jlex_fail(const mt_jlex_t *lx, size_t pos, const char *what) {
  if (pos >= lx->len)
    return mt_err_set(
        lx->err, MT_EPAYLOAD,
        "invalid JSON at byte %zu: expected %s, found end of input", pos, what);
  return mt_err_set(lx->err, MT_EPAYLOAD,
                    "invalid JSON at byte %zu: expected %s", pos, what);
}

/* ---- strings ----------------------------------------------------------- */

static int hex4(const char *s, size_t avail, unsigned *out) {
  unsigned v = 0;
  if (avail < 4)
    return -1;
  for (int i = 0; i < 4; i++) {
    unsigned c = (unsigned char)s[i];
    if (c >= '0' && c <= '9')
      c -= '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
      c = (c | 0x20) - 'a' + 10;
    else
      return -1;
    v = v << 4 | c;
  }
  *out = v;
  return 0;
}

static int is_high(unsigned cp) { return cp >= 0xD800 && cp <= 0xDBFF; }
static int is_low(unsigned cp) { return cp >= 0xDC00 && cp <= 0xDFFF; }

/* The character a one-letter escape stands for, or -1. */
static int simple_escape(unsigned char c) {
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  const char *hit = c != '\0' ? strchr(from, c) : NULL;
  return hit != NULL ? to[hit - from] : -1;
}

/* Validates the string whose opening quote is at lx->pos and measures its
 * decoded length. The raw text must be well-formed UTF-8 by RFC 3629 (no
 * overlong forms, no encoded surrogates, nothing past U+10FFFF): that is
 * the rule the encoder applies to what it writes, so whatever we accept
 * can be written back unchanged. */
static int lex_string(mt_jlex_t *lx, mt_jtok_t *tok) {
  const char *s = lx->text;
  size_t p = lx->pos + 1, len = 0;
  tok->type = MT_JT_STRING;
  tok->raw = s + p;
  for (;;) {
    if (p >= lx->len)
      return mt_jlex_fail(lx, p, "'\"' to close the string");
    unsigned char c = (unsigned char)s[p];
    if (c == '"')
      break;
    if (c < 0x20)
      return mt_jlex_fail(lx, p, "an escape for the control character");
    if (c >= 0x80) {
      size_t n = mt_utf8_seq((const unsigned char *)s + p, lx->len - p);
      if (n == 0)
        return mt_jlex_fail(lx, p, "valid UTF-8");
      p += n, len += n;
      continue;
    }
    if (c != '\\') {
      p++, len++;
      continue;
    }
    size_t esc = p++;
    if (p >= lx->len)
      return mt_jlex_fail(lx, p, "an escape character");
    c = (unsigned char)s[p++];
    if (c != 'u') {
      if (simple_escape(c) < 0)
        return mt_jlex_fail(lx, esc,
                            "one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u");
      len++;
      continue;
    }
    unsigned cp, lo;
    if (hex4(s + p, lx->len - p, &cp) != 0)
      return mt_jlex_fail(lx, esc, "four hex digits after \\u");
    p += 4;
    /* A character outside the BMP arrives as a UTF-16 surrogate pair. A
     * lone half has no UTF-8 form: replacing it with U+FFFD would change
     * the data behind the sender's back, and keeping it would make a
     * string the encoder refuses, so the payload could not round-trip. */
    if (is_low(cp))
      return mt_jlex_fail(lx, esc,
                          "a high surrogate before this low surrogate");
    if (is_high(cp)) {
      if (lx->len - p < 6 || s[p] != '\\' || s[p + 1] != 'u' ||
          hex4(s + p + 2, lx->len - p - 2, &lo) != 0 || !is_low(lo))
        return mt_jlex_fail(lx, p,
                            "a \\u low surrogate after a high surrogate");
      p += 6, len += 4;
      continue;
    }
    len += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
  }
  tok->raw_len = p - (lx->pos + 1);
  tok->len = len;
  lx->pos = p + 1;
  return 0;
}

void mt_jlex_string(const mt_jtok_t *tok, char *dst) {
  const char *s = tok->raw, *end = tok->raw + tok->raw_len;
  if (tok->len == tok->raw_len) {
    memcpy(dst, s, tok->len);
    return;
  }
  while (s < end) {
    const char *run = s;
    while (s < end && *s != '\\')
      s++;
    memcpy(dst, run, (size_t)(s - run));
    dst += s - run;
    if (s == end)
      break;
    s++;                     /* the backslash */
    unsigned cp = 0, lo = 0; /* set by hex4, which cannot fail here */
    if (*s != 'u') {
      *dst++ = (char)simple_escape((unsigned char)*s++);
      continue;
    }
    hex4(s + 1, 4, &cp);
    s += 5;
    if (is_high(cp)) {
      hex4(s + 2, 4, &lo);
      s += 6;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    dst += mt_utf8_put(dst, cp);
  }
}

/* ---- numbers ----------------------------------------------------------- */

/* Converts the number text s[0..n) that the grammar has already checked. */
static int to_double(mt_jlex_t *lx, const char *s, size_t n, double *out) {
  char small[64], *copy = small;
  /* In the C locale, whatever the process's LC_NUMERIC (json/c_locale.h). */
  locale_t c_locale = mt_json_c_locale();
  if (c_locale == (locale_t)0)
    return mt_err_set(lx->err, MT_ENOMEM, "out of memory decoding a number");
  /* strtod needs a NUL-terminated copy: the input may not be terminated. */
  if (n >= sizeof small && (copy = malloc(n + 1)) == NULL)
    return mt_err_set(lx->err, MT_ENOMEM, "out of memory decoding a number");
  memcpy(copy, s, n);
  copy[n] = '\0';
  errno = 0;
  *out = strtod_l(copy, NULL, c_locale);
  int overflow = errno == ERANGE && isinf(*out);
  if (copy != small)
    free(copy);
  /* Underflow to zero or a subnormal is a fine approximation; overflow to
   * infinity is not a number JSON, Lua or the encoder can carry. */
  if (overflow)
    return mt_err_set(lx->err, MT_EPAYLOAD,
                      "invalid JSON at byte %zu: number too large for a double",
                      (size_t)(s - lx->text));
  return 0;
}

static int is_digit(const mt_jlex_t *lx, size_t p) {
  return p < lx->len && lx->text[p] >= '0' && lx->text[p] <= '9';
}

/* Scans the number at lx->pos. An integer literal that fits int64 stays
 * exact, so that ids such as 9007199254740993 survive; anything else,
 * including 1.0 and integers past int64, is a double. "-0" is the integer
 * 0: int64 has no negative zero, and "-0.0" is there for whoever wants
 * the double. */
static int lex_number(mt_jlex_t *lx, mt_jtok_t *tok) {
  const char *s = lx->text;
  size_t start = lx->pos, p = start;
  int neg = 0, integral = 1;
  tok->type = MT_JT_NUMBER;
  if (s[p] == '-')
    neg = 1, p++;
  if (p < lx->len && s[p] == '0')
    p++; /* a leading zero ends the integer part: "01" is two tokens */
  else if (is_digit(lx, p))
    while (is_digit(lx, p))
      p++;
  else
    return mt_jlex_fail(lx, p, "a digit");
  if (p < lx->len && s[p] == '.') {
    integral = 0, p++;
    if (!is_digit(lx, p))
      return mt_jlex_fail(lx, p, "a digit after '.'");
    while (is_digit(lx, p))
      p++;
  }
  if (p < lx->len && (s[p] == 'e' || s[p] == 'E')) {
    integral = 0, p++;
    if (p < lx->len && (s[p] == '+' || s[p] == '-'))
      p++;
    if (!is_digit(lx, p))
      return mt_jlex_fail(lx, p, "a digit in the exponent");
    while (is_digit(lx, p))
      p++;
  }
  lx->pos = p;
  if (integral) {
    uint64_t u = 0;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    size_t q = start + (size_t)neg;
    for (; q < p; q++) {
      unsigned digit = (unsigned)(s[q] - '0');
      if (u > (limit - digit) / 10)
        break;
      u = u * 10 + digit;
    }
    if (q == p) {
      tok->is_int = 1;
      tok->i = neg ? (int64_t)(0 - u) : (int64_t)u;
      tok->d = (double)tok->i;
      return 0;
    }
  }
  tok->is_int = 0;
  tok->i = 0;
  return to_double(lx, s + start, p - start, &tok->d);
}

/* ---- tokens ------------------------------------------------------------ */

/* Matches the literal word at lx->pos; a misspelling is MT_JT_INVALID. */
static int lex_word(mt_jlex_t *lx, mt_jtok_t *tok, const char *word,
                    mt_jtok_type_t type) {
  size_t n = strlen(word);
  if (lx->len - lx->pos < n || memcmp(lx->text + lx->pos, word, n) != 0) {
    tok->type = MT_JT_INVALID;
    return 0;
  }
  tok->type = type;
  lx->pos += n;
  return 0;
}

static void skip_space(mt_jlex_t *lx) {
  while (lx->pos < lx->len &&
         (lx->text[lx->pos] == ' ' || lx->text[lx->pos] == '\t' ||
          lx->text[lx->pos] == '\n' || lx->text[lx->pos] == '\r'))
    lx->pos++;
}

mt_jtok_type_t mt_jlex_peek(mt_jlex_t *lx, size_t *pos) {
  skip_space(lx);
  *pos = lx->pos;
  if (lx->pos >= lx->len)
    return MT_JT_END;
  char c = lx->text[lx->pos];
  switch (c) {
  case '[': return MT_JT_LBRACKET;
  case ']': return MT_JT_RBRACKET;
  case '{': return MT_JT_LBRACE;
  case '}': return MT_JT_RBRACE;
  case ',': return MT_JT_COMMA;
  case ':': return MT_JT_COLON;
  case '"': return MT_JT_STRING;
  case 't': return MT_JT_TRUE;
  case 'f': return MT_JT_FALSE;
  case 'n': return MT_JT_NULL;
  default:
    return c == '-' || (c >= '0' && c <= '9') ? MT_JT_NUMBER : MT_JT_INVALID;
  }
}

int mt_jlex_next(mt_jlex_t *lx, mt_jtok_t *tok) {
  mt_jtok_type_t punct;
  skip_space(lx);
  tok->pos = lx->pos;
  if (lx->pos >= lx->len) {
    tok->type = MT_JT_END;
    return 0;
  }
  char c = lx->text[lx->pos];
  switch (c) {
  case '[': punct = MT_JT_LBRACKET; break;
  case ']': punct = MT_JT_RBRACKET; break;
  case '{': punct = MT_JT_LBRACE; break;
  case '}': punct = MT_JT_RBRACE; break;
  case ',': punct = MT_JT_COMMA; break;
  case ':': punct = MT_JT_COLON; break;
  case '"': return lex_string(lx, tok);
  case 't': return lex_word(lx, tok, "true", MT_JT_TRUE);
  case 'f': return lex_word(lx, tok, "false", MT_JT_FALSE);
  case 'n': return lex_word(lx, tok, "null", MT_JT_NULL);
  default:
    if (c == '-' || (c >= '0' && c <= '9'))
      return lex_number(lx, tok);
    /* A BOM, a comment, a quote of the wrong kind: the grammar names what
     * it wanted here. */
    tok->type = MT_JT_INVALID;
    return 0;
  }
  tok->type = punct;
  lx->pos++;
  return 0;
}
