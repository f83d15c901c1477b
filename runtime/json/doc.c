#include "json/doc.h"

#include "common/utf8.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The arena: values, strings and arrays are carved out of large chunks so
 * that a payload costs a handful of mallocs instead of one per value, which
 * matters when every scheduled task is parsed and validated. */
typedef struct chunk_s {
  struct chunk_s *next;
  size_t used, cap;
  _Alignas(16) char data[];
} chunk_t;

struct mt_jdoc_s {
  chunk_t *chunks;
  mt_jval_t root;
};

typedef struct parser_s {
  const char *s;
  size_t len, pos;
  int depth;
  mt_jdoc_t *doc;
  mt_err_t *err;
  /* Scratch stacks: the children of every open container, copied into the
   * arena in one piece when the container closes. */
  mt_jval_t *vals;
  size_t nvals, capvals;
  mt_jmember_t *mems;
  size_t nmems, capmems;
} parser_t;

static void *arena_alloc(mt_jdoc_t *doc, size_t n) {
  n = (n + 15) & ~(size_t)15;
  chunk_t *c = doc->chunks;
  if (c == NULL || c->cap - c->used < n) {
    size_t cap = c ? c->cap * 2 : 4096;
    if (cap < n)
      cap = n;
    chunk_t *fresh = malloc(sizeof(*fresh) + cap);
    if (fresh == NULL)
      return NULL;
    fresh->next = c;
    fresh->used = 0;
    fresh->cap = cap;
    doc->chunks = c = fresh;
  }
  void *p = c->data + c->used;
  c->used += n;
  return p;
}

void mt_jdoc_free(mt_jdoc_t *doc) {
  if (doc == NULL)
    return;
  chunk_t *c = doc->chunks;
  while (c != NULL) {
    chunk_t *next = c->next;
    free(c);
    c = next;
  }
  free(doc);
}

const mt_jval_t *mt_jdoc_root(const mt_jdoc_t *doc) { return &doc->root; }

static int fail(parser_t *p, const char *what) {
  if (p->pos >= p->len)
    return mt_err_set(p->err, MT_EPAYLOAD,
                      "invalid JSON: unexpected end of text, expected %s",
                      what);
  return mt_err_set(p->err, MT_EPAYLOAD,
                    "invalid JSON at byte %zu: expected %s", p->pos, what);
}

static int nomem(parser_t *p) {
  return mt_err_set(p->err, MT_ENOMEM, "out of memory parsing JSON");
}

static void skip_ws(parser_t *p) {
  while (p->pos < p->len) {
    char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      break;
    p->pos++;
  }
}

static int literal(parser_t *p, const char *word, mt_jval_t *out,
                   mt_jtype_t type, int b) {
  size_t n = strlen(word);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
    return fail(p, "a JSON value");
  p->pos += n;
  out->type = type;
  out->u.b = b;
  return 0;
}

/* ---- numbers ---- */

static size_t scan_digits(parser_t *p) {
  size_t start = p->pos;
  while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
    p->pos++;
  return p->pos - start;
}

/* Exact int64 from plain integer text; 0 if it does not fit. */
static int parse_int64(const char *s, size_t n, int64_t *out) {
  int neg = s[0] == '-';
  uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  uint64_t v = 0;
  for (size_t i = (size_t)neg; i < n; i++) {
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (limit - d) / 10)
      return 0;
    v = v * 10 + d;
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 1;
}

static int parse_number(parser_t *p, mt_jval_t *out) {
  size_t start = p->pos;
  int plain = 1;
  if (p->s[p->pos] == '-')
    p->pos++;
  if (p->pos < p->len && p->s[p->pos] == '0')
    p->pos++;
  else if (scan_digits(p) == 0)
    return fail(p, "a digit");
  if (p->pos < p->len && p->s[p->pos] == '.') {
    p->pos++;
    plain = 0;
    if (scan_digits(p) == 0)
      return fail(p, "a digit after the decimal point");
  }
  if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
    p->pos++;
    plain = 0;
    if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
      p->pos++;
    if (scan_digits(p) == 0)
      return fail(p, "a digit in the exponent");
  }
  size_t n = p->pos - start;
  out->type = MT_JV_NUMBER;
  if (plain && parse_int64(p->s + start, n, &out->u.num.i)) {
    out->is_int = 1;
    out->u.num.d = (double)out->u.num.i;
    return 0;
  }
  /* strtod needs a terminated copy; numbers are short, the arena is cheap. */
  char *copy = arena_alloc(p->doc, n + 1);
  if (copy == NULL)
    return nomem(p);
  memcpy(copy, p->s + start, n);
  copy[n] = '\0';
  double d = strtod(copy, NULL);
  out->u.num.d = d;
  /* 1.0 and 1e2 are integers to JSON Schema; storing them exactly makes
   * equality and comparisons with integer text trivial. */
  if (isfinite(d) && d == floor(d) && fabs(d) < 9223372036854775808.0) {
    out->is_int = 1;
    out->u.num.i = (int64_t)d;
  }
  return 0;
}

/* ---- strings ---- */

static int hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (unsigned)(c - 'A' + 10);
    else
      return -1;
  }
  *out = v;
  return 0;
}

/* Decodes one escape at p->pos (just after the backslash) into o. */
static int unescape(parser_t *p, char *o, size_t *olen) {
  char c = p->s[p->pos++];
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  const char *hit = c != '\0' ? strchr(from, c) : NULL;
  if (hit != NULL) {
    *o = to[hit - from];
    *olen = 1;
    return 0;
  }
  unsigned cp, lo;
  if (c != 'u' || p->len - p->pos < 4 || hex4(p->s + p->pos, &cp) != 0)
    return fail(p, "a valid escape sequence");
  p->pos += 4;
  if (cp >= 0xD800 && cp <= 0xDBFF && p->len - p->pos >= 6 &&
      p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u' &&
      hex4(p->s + p->pos + 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
    p->pos += 6;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  } else if (cp >= 0xD800 && cp <= 0xDFFF) {
    cp = 0xFFFD; /* a lone surrogate has no UTF-8 form */
  }
  *olen = mt_utf8_put(o, cp);
  return 0;
}

/* Parses the string whose opening quote is at p->pos. */
static int parse_string(parser_t *p, char **out, size_t *outlen) {
  size_t start = ++p->pos, end = start;
  /* Find the closing quote first: the raw span bounds the decoded size. */
  while (end < p->len && p->s[end] != '"')
    end += p->s[end] == '\\' ? 2 : 1;
  if (end >= p->len) {
    p->pos = p->len;
    return fail(p, "a closing quote");
  }
  char *o = arena_alloc(p->doc, end - start + 1);
  if (o == NULL)
    return nomem(p);
  size_t n = 0;
  while (p->pos < end) {
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c == '\\') {
      p->pos++;
      size_t k = 0;
      int rc = unescape(p, o + n, &k);
      if (rc != 0)
        return rc;
      n += k;
    } else if (c < 0x20) {
      return fail(p, "no control characters in a string");
    } else {
      size_t k = mt_utf8_seq((const unsigned char *)p->s + p->pos, end - p->pos);
      if (k == 0)
        return fail(p, "valid UTF-8");
      memcpy(o + n, p->s + p->pos, k);
      n += k;
      p->pos += k;
    }
  }
  p->pos = end + 1;
  o[n] = '\0';
  *out = o;
  *outlen = n;
  return 0;
}

/* ---- containers ---- */

static int parse_value(parser_t *p, mt_jval_t *out);

static int push_val(parser_t *p, const mt_jval_t *v) {
  if (p->nvals == p->capvals) {
    size_t cap = p->capvals ? p->capvals * 2 : 64;
    mt_jval_t *vals = realloc(p->vals, cap * sizeof(*vals));
    if (vals == NULL)
      return nomem(p);
    p->vals = vals;
    p->capvals = cap;
  }
  p->vals[p->nvals++] = *v;
  return 0;
}

static int push_mem(parser_t *p, const mt_jmember_t *m) {
  if (p->nmems == p->capmems) {
    size_t cap = p->capmems ? p->capmems * 2 : 32;
    mt_jmember_t *mems = realloc(p->mems, cap * sizeof(*mems));
    if (mems == NULL)
      return nomem(p);
    p->mems = mems;
    p->capmems = cap;
  }
  p->mems[p->nmems++] = *m;
  return 0;
}

static int parse_array(parser_t *p, mt_jval_t *out) {
  size_t mark = p->nvals;
  p->pos++;
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == ']') {
    p->pos++;
  } else {
    for (;;) {
      mt_jval_t v;
      int rc = parse_value(p, &v);
      if (rc == 0)
        rc = push_val(p, &v);
      if (rc != 0)
        return rc;
      skip_ws(p);
      if (p->pos < p->len && p->s[p->pos] == ',') {
        p->pos++;
        continue;
      }
      if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        break;
      }
      return fail(p, "',' or ']'");
    }
  }
  out->type = MT_JV_ARRAY;
  out->len = p->nvals - mark;
  out->u.items = NULL;
  if (out->len > 0) {
    out->u.items = arena_alloc(p->doc, out->len * sizeof(mt_jval_t));
    if (out->u.items == NULL)
      return nomem(p);
    memcpy(out->u.items, p->vals + mark, out->len * sizeof(mt_jval_t));
  }
  p->nvals = mark;
  return 0;
}

static int parse_member(parser_t *p) {
  mt_jmember_t m;
  char *key;
  skip_ws(p);
  if (p->pos >= p->len || p->s[p->pos] != '"')
    return fail(p, "a property name");
  int rc = parse_string(p, &key, &m.key_len);
  if (rc != 0)
    return rc;
  m.key = key;
  skip_ws(p);
  if (p->pos >= p->len || p->s[p->pos] != ':')
    return fail(p, "':'");
  p->pos++;
  rc = parse_value(p, &m.value);
  return rc != 0 ? rc : push_mem(p, &m);
}

static int parse_object(parser_t *p, mt_jval_t *out) {
  size_t mark = p->nmems;
  p->pos++;
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == '}') {
    p->pos++;
  } else {
    for (;;) {
      int rc = parse_member(p);
      if (rc != 0)
        return rc;
      skip_ws(p);
      if (p->pos < p->len && p->s[p->pos] == ',') {
        p->pos++;
        continue;
      }
      if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        break;
      }
      return fail(p, "',' or '}'");
    }
  }
  out->type = MT_JV_OBJECT;
  out->len = p->nmems - mark;
  out->u.members = NULL;
  if (out->len > 0) {
    out->u.members = arena_alloc(p->doc, out->len * sizeof(mt_jmember_t));
    if (out->u.members == NULL)
      return nomem(p);
    memcpy(out->u.members, p->mems + mark, out->len * sizeof(mt_jmember_t));
  }
  p->nmems = mark;
  return 0;
}

static int parse_value(parser_t *p, mt_jval_t *out) {
  memset(out, 0, sizeof(*out));
  skip_ws(p);
  if (p->pos >= p->len)
    return fail(p, "a JSON value");
  char c = p->s[p->pos];
  int rc;
  switch (c) {
  case '{':
  case '[':
    if (++p->depth > MT_JSON_MAX_DEPTH)
      return mt_err_set(p->err, MT_EPAYLOAD,
                        "invalid JSON at byte %zu: nested deeper than the "
                        "limit of %d levels",
                        p->pos, MT_JSON_MAX_DEPTH);
    rc = c == '{' ? parse_object(p, out) : parse_array(p, out);
    p->depth--;
    return rc;
  case '"':
    out->type = MT_JV_STRING;
    return parse_string(p, &out->u.str, &out->len);
  case 't':
    return literal(p, "true", out, MT_JV_BOOL, 1);
  case 'f':
    return literal(p, "false", out, MT_JV_BOOL, 0);
  case 'n':
    return literal(p, "null", out, MT_JV_NULL, 0);
  default:
    if (c == '-' || (c >= '0' && c <= '9'))
      return parse_number(p, out);
    return fail(p, "a JSON value");
  }
}

int mt_jdoc_parse(const char *text, size_t len, mt_jdoc_t **out,
                  mt_err_t *err) {
  parser_t p = {.s = text, .len = len, .err = err};
  int rc;
  *out = NULL;
  p.doc = calloc(1, sizeof(*p.doc));
  if (p.doc == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory parsing JSON");
  rc = parse_value(&p, &p.doc->root);
  if (rc != 0)
    goto fail;
  skip_ws(&p);
  if (p.pos != p.len) {
    rc = fail(&p, "the end of the text");
    goto fail;
  }
  free(p.vals);
  free(p.mems);
  *out = p.doc;
  return 0;
fail:
  free(p.vals);
  free(p.mems);
  mt_jdoc_free(p.doc);
  return rc;
}

/* ---- queries ---- */

const mt_jval_t *mt_jval_get(const mt_jval_t *obj, const char *key) {
  if (obj == NULL || obj->type != MT_JV_OBJECT)
    return NULL;
  size_t n = strlen(key);
  for (size_t i = 0; i < obj->len; i++) {
    const mt_jmember_t *m = &obj->u.members[i];
    if (m->key_len == n && memcmp(m->key, key, n) == 0)
      return &m->value;
  }
  return NULL;
}

int mt_jval_is_integral(const mt_jval_t *num) {
  double d = num->u.num.d;
  return num->is_int || (isfinite(d) && d == floor(d));
}

int mt_jval_num_cmp(const mt_jval_t *a, const mt_jval_t *b) {
  if (a->is_int && b->is_int)
    return (a->u.num.i > b->u.num.i) - (a->u.num.i < b->u.num.i);
  /* long double holds every int64 exactly on the platforms we build for, so
   * 2^63-1 against a double is still ordered correctly. */
  long double x = a->is_int ? (long double)a->u.num.i : a->u.num.d;
  long double y = b->is_int ? (long double)b->u.num.i : b->u.num.d;
  return (x > y) - (x < y);
}

static const mt_jval_t *find_member(const mt_jval_t *obj, const char *key,
                                    size_t n) {
  for (size_t i = 0; i < obj->len; i++) {
    const mt_jmember_t *m = &obj->u.members[i];
    if (m->key_len == n && memcmp(m->key, key, n) == 0)
      return &m->value;
  }
  return NULL;
}

int mt_jval_equal(const mt_jval_t *a, const mt_jval_t *b) {
  if (a->type != b->type)
    return 0;
  switch (a->type) {
  case MT_JV_NULL:
    return 1;
  case MT_JV_BOOL:
    return a->u.b == b->u.b;
  case MT_JV_NUMBER:
    return mt_jval_num_cmp(a, b) == 0;
  case MT_JV_STRING:
    return a->len == b->len && memcmp(a->u.str, b->u.str, a->len) == 0;
  case MT_JV_ARRAY:
    if (a->len != b->len)
      return 0;
    for (size_t i = 0; i < a->len; i++)
      if (!mt_jval_equal(&a->u.items[i], &b->u.items[i]))
        return 0;
    return 1;
  case MT_JV_OBJECT:
    if (a->len != b->len)
      return 0;
    for (size_t i = 0; i < a->len; i++) {
      const mt_jmember_t *m = &a->u.members[i];
      const mt_jval_t *other = find_member(b, m->key, m->key_len);
      if (other == NULL || !mt_jval_equal(&m->value, other))
        return 0;
    }
    return 1;
  }
  return 0;
}

/* ---- writing (for messages) ---- */

static int write_string(mt_buf_t *out, const char *s, size_t n) {
  int rc = mt_buf_putc(out, '"');
  for (size_t i = 0; rc == 0 && i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      rc = mt_buf_printf(out, "\\%c", c);
    else if (c < 0x20)
      rc = mt_buf_printf(out, "\\u%04x", c);
    else
      rc = mt_buf_putc(out, (char)c);
  }
  return rc != 0 ? rc : mt_buf_putc(out, '"');
}

static int write_number(mt_buf_t *out, const mt_jval_t *v) {
  if (v->is_int)
    return mt_buf_printf(out, "%lld", (long long)v->u.num.i);
  /* The shortest of %.15g and %.17g that reads back as the same double. */
  char tmp[32];
  snprintf(tmp, sizeof(tmp), "%.15g", v->u.num.d);
  if (strtod(tmp, NULL) != v->u.num.d)
    snprintf(tmp, sizeof(tmp), "%.17g", v->u.num.d);
  return mt_buf_puts(out, tmp);
}

int mt_jval_write(mt_buf_t *out, const mt_jval_t *v, size_t max) {
  if (out->len > max)
    return mt_buf_puts(out, "...");
  int rc = 0;
  switch (v->type) {
  case MT_JV_NULL:
    return mt_buf_puts(out, "null");
  case MT_JV_BOOL:
    return mt_buf_puts(out, v->u.b ? "true" : "false");
  case MT_JV_NUMBER:
    return write_number(out, v);
  case MT_JV_STRING:
    return write_string(out, v->u.str, v->len);
  case MT_JV_ARRAY:
    rc = mt_buf_putc(out, '[');
    for (size_t i = 0; rc == 0 && i < v->len; i++) {
      if (i > 0)
        rc = mt_buf_putc(out, ',');
      if (rc == 0)
        rc = mt_jval_write(out, &v->u.items[i], max);
    }
    return rc != 0 ? rc : mt_buf_putc(out, ']');
  case MT_JV_OBJECT:
    rc = mt_buf_putc(out, '{');
    for (size_t i = 0; rc == 0 && i < v->len; i++) {
      const mt_jmember_t *m = &v->u.members[i];
      if (i > 0)
        rc = mt_buf_putc(out, ',');
      if (rc == 0)
        rc = write_string(out, m->key, m->key_len);
      if (rc == 0)
        rc = mt_buf_putc(out, ':');
      if (rc == 0)
        rc = mt_jval_write(out, &m->value, max);
    }
    return rc != 0 ? rc : mt_buf_putc(out, '}');
  }
  return rc;
}
