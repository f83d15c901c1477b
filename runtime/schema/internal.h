/*
 * The validator's private vocabulary, shared by the .c files of
 * runtime/schema/ only: nothing outside this folder includes it (the
 * public API is schema.h).
 *
 * The pieces and who owns what:
 *   compile.c   schema JSON -> a graph of node_t ($refs make it cyclic);
 *               owns the nodes and the schema document, and frees both
 *               in mt_schema_free().
 *   validate.c  walks that graph over an instance; owns the error list
 *               until it hands it to the caller.
 *   regex.c     ECMA-262 patterns on PCRE2 (compile flags, matching).
 *   format.c    the `format` assertions.
 *   uri.c       URI references, JSON Pointers and percent-decoding; pure
 *               string work that knows nothing of nodes.
 *
 * A compiled node never owns JSON values: enum, const, bounds and the
 * `required` arrays point into the schema document, which lives exactly as
 * long as the schema. What a node does own (regexes, its arrays) is
 * released by compile.c's node_free().
 */
#ifndef MT_SCHEMA_INTERNAL_H
#define MT_SCHEMA_INTERNAL_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif

#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/buf.h"
#include "json/doc.h"
#include "schema/schema.h"

/* ---- the compiled tree ---- */

/* The JSON Schema types as bits, in the order of mt__schema_type_names, so
 * that bit t names type t. "integer" is its own bit: an integral number
 * carries both MT__TYPE_NUMBER and MT__TYPE_INTEGER. */
enum {
  MT__TYPE_NULL = 1 << 0,
  MT__TYPE_BOOLEAN = 1 << 1,
  MT__TYPE_OBJECT = 1 << 2,
  MT__TYPE_ARRAY = 1 << 3,
  MT__TYPE_NUMBER = 1 << 4,
  MT__TYPE_STRING = 1 << 5,
  MT__TYPE_INTEGER = 1 << 6
};
#define MT__TYPE_COUNT 7
extern const char *const mt__schema_type_names[MT__TYPE_COUNT];

typedef struct node_s node_t;

/* A named subschema: a `properties` or `dependentSchemas` entry. */
typedef struct prop_s {
  const char *name;
  size_t len;
  node_t *schema;
} prop_t;

/* A `patternProperties` entry; src is the pattern text, for messages. */
typedef struct pprop_s {
  pcre2_code *re;
  const char *src;
  node_t *schema;
} pprop_t;

/* A `dependentRequired` entry: when `name` is present, so must be every
 * string of `names` (an array in the schema document). */
typedef struct dep_s {
  const char *name;
  size_t len;
  const mt_jval_t *names;
} dep_t;

typedef struct nodes_s {
  node_t **v;
  size_t n;
} nodes_t;

/* One compiled schema object or boolean. A keyword the schema does not use
 * is NULL, 0 or -1 (the counts, where 0 is a real bound), so validation
 * tests each field and skips what is absent. */
struct node_s {
  node_t *next_alloc; /* every node, for mt_schema_free() */
  int boolean;        /* -1: an object schema; 0/1: false/true */
  unsigned types;     /* MT__TYPE_* mask; 0 when there is no "type" */
  const mt_jval_t *enum_vals, *const_val;
  const mt_jval_t *minimum, *maximum, *xminimum, *xmaximum, *multiple_of;
  int64_t min_len, max_len, min_items, max_items, min_props, max_props;
  int64_t min_contains, max_contains;
  int unique_items;
  int format; /* MT__FMT_*; MT__FMT_NONE for formats not asserted */
  pcre2_code *pattern;
  const char *pattern_src;
  prop_t *props; /* sorted with mt__schema_prop_cmp, for bsearch() */
  size_t nprops;
  pprop_t *pprops;
  size_t npprops;
  node_t *additional, *property_names, *items, *contains;
  node_t *not_, *if_, *then_, *else_;
  /* The $ref target. A ref is a pointer like any other child, so a
   * recursive schema is a cycle in this graph: validation bounds it by
   * depth (validate.c), never by following it at compile time. */
  node_t *ref;
  const mt_jval_t *required;
  dep_t *dep_required;
  size_t ndep_required;
  prop_t *dep_schemas;
  size_t ndep_schemas;
  nodes_t prefix, all_of, any_of, one_of;
};

struct mt_schema_s {
  mt_jdoc_t *doc; /* the schema text, parsed; nodes point into it */
  node_t *nodes;  /* every node, linked through next_alloc */
  node_t *root;
};

/* Orders props by (length, bytes), for the binary search validation does
 * per instance member: cheaper than a string order, and right for names
 * that hold NUL bytes ("\u0000" is a valid key). */
int mt__schema_prop_cmp(const void *a, const void *b);

/* Makes room for item n in a growing array of `size`-byte items (*cap
 * doubles, from 16). Returns 0 or MT_ENOMEM, leaving *v intact. */
static inline int mt__schema_grow(void **v, size_t *cap, size_t n,
                                  size_t size) {
  if (n < *cap)
    return 0;
  size_t ncap = *cap ? *cap * 2 : 16;
  void *p = realloc(*v, ncap * size);
  if (p == NULL)
    return MT_ENOMEM;
  *v = p;
  *cap = ncap;
  return 0;
}

/* ---- regex.c ---- */

/* Compiles the ECMA-262 pattern src (n bytes) into *out. Returns 0,
 * MT_ENOMEM, or MT_ECONFIG with PCRE2's reason and offset in msg. */
int mt__schema_regex_compile(const char *src, size_t n, pcre2_code **out,
                             char *msg, size_t msgsize);
/* True if re matches anywhere in the valid UTF-8 string s (n bytes). md
 * needs room for one pair. */
int mt__schema_regex_match(const pcre2_code *re, pcre2_match_data *md,
                           const char *s, size_t n);

/* ---- format.c ---- */

/* The asserted formats; any other `format` value is an annotation. */
enum {
  MT__FMT_NONE,
  MT__FMT_DATE_TIME,
  MT__FMT_DATE,
  MT__FMT_TIME,
  MT__FMT_EMAIL,
  MT__FMT_UUID,
  MT__FMT_IPV4,
  MT__FMT_IPV6,
  MT__FMT_URI,
  MT__FMT_HOSTNAME,
  MT__FMT_DURATION
};
/* The MT__FMT_* id of a format name, MT__FMT_NONE if it is not asserted. */
int mt__schema_format_id(const char *name);
/* True if the UTF-8 string s (n bytes) is valid for the format. */
int mt__schema_format_check(int id, const char *s, size_t n);
/* The name of a MT__FMT_* id, for messages. */
const char *mt__schema_format_name(int id);

/* ---- uri.c ---- */

/* Appends ref resolved against base (RFC 3986 section 5.2) to out. Both
 * are taken as given: no case or percent-encoding normalisation. */
void mt__schema_uri_resolve(const char *base, const char *ref, mt_buf_t *out);
/* Percent-decodes the NUL-terminated s in place. */
void mt__schema_percent_decode(char *s);
/* Appends "/" and the JSON Pointer escape of one segment (n bytes) to b. */
void mt__schema_pointer_append(mt_buf_t *b, const char *seg, size_t n);
/* The value the JSON Pointer ptr ("/a/0/b~1c") names inside v, or NULL. */
const mt_jval_t *mt__schema_pointer_follow(const mt_jval_t *v, const char *ptr);

#endif
