/*
 * A small read-only JSON document model for plain-C code (the schema
 * validator) that must look at JSON without a Lua state.
 *
 * mt_jdoc_parse() turns JSON text into a tree of mt_jval_t, reading it
 * through json/read.h, the grammar the Lua decoder uses too, so the
 * validator sees exactly the documents a task can decode. Numbers keep
 * their exact value when they are integers that fit int64 (`is_int`); every
 * number also carries its double. Strings are decoded UTF-8, NUL-terminated
 * but measured by `len` since "\u0000" may appear inside. Object members keep
 * their text order, duplicate names included, and `[]` and `{}` are
 * different types.
 *
 * The document owns every value, string and array in one arena:
 * mt_jdoc_free() releases them all at once, and pointers into the tree are
 * valid until then. The parser never reads past `len` and never needs the
 * text to be NUL-terminated.
 */
#ifndef MT_JSON_DOC_H
#define MT_JSON_DOC_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"
#include "json/limits.h"

typedef enum mt_jtype_e {
  MT_JV_NULL,
  MT_JV_BOOL,
  MT_JV_NUMBER,
  MT_JV_STRING,
  MT_JV_ARRAY,
  MT_JV_OBJECT
} mt_jtype_t;

typedef struct mt_jval_s mt_jval_t;
typedef struct mt_jmember_s mt_jmember_t;

struct mt_jval_s {
  mt_jtype_t type;
  int is_int; /* numbers: `i` holds the exact integer value */
  size_t len; /* strings: bytes; arrays: items; objects: members */
  union {
    int b;
    struct {
      int64_t i;
      double d; /* always set, also for integers */
    } num;
    char *str;
    mt_jval_t *items;
    mt_jmember_t *members;
  } u;
};

struct mt_jmember_s {
  const char *key;
  size_t key_len;
  mt_jval_t value;
};

typedef struct mt_jdoc_s mt_jdoc_t;

/* Parses text. On bad JSON returns MT_EPAYLOAD with a message naming the
 * byte offset and the problem; MT_ENOMEM if memory runs out. */
int mt_jdoc_parse(const char *text, size_t len, mt_jdoc_t **out, mt_err_t *err);
const mt_jval_t *mt_jdoc_root(const mt_jdoc_t *doc);
void mt_jdoc_free(mt_jdoc_t *doc);

/* The member named key (first one if duplicated), or NULL. */
const mt_jval_t *mt_jval_get(const mt_jval_t *obj, const char *key);

/* The member named key when it is a string (its text), a number (its
 * double, else dflt) or an array (else NULL); obj may be NULL or not an
 * object. For reading documents of a known shape. */
const char *mt_jval_get_str(const mt_jval_t *obj, const char *key);
double mt_jval_get_num(const mt_jval_t *obj, const char *key, double dflt);
const mt_jval_t *mt_jval_get_array(const mt_jval_t *obj, const char *key);

/* True if the number has no fractional part (1.0 counts as an integer). */
int mt_jval_is_integral(const mt_jval_t *num);

/* Orders two numbers exactly (int64 against double included): <0, 0, >0. */
int mt_jval_num_cmp(const mt_jval_t *a, const mt_jval_t *b);

/* JSON equality: 1 == 1.0, objects compare regardless of member order,
 * true is not 1. */
int mt_jval_equal(const mt_jval_t *a, const mt_jval_t *b);

/* Appends compact JSON text for v to out, stopping (with "...") once out
 * grows past max bytes; for messages, not for round trips. */
int mt_jval_write(mt_buf_t *out, const mt_jval_t *v, size_t max);

#endif
