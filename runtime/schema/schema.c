#include "schema/schema.h"

#define PCRE2_CODE_UNIT_WIDTH 8

#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "json/limits.h"
#include "json/doc.h"

/* Validation spends schema levels (nesting plus $ref hops) under two
 * budgets. MAX_SCHEMA_DEPTH bounds those spent at one place in the
 * instance: stepping into an item or a member starts a fresh count, so a
 * recursive schema follows a payload as deep as the parsers accept
 * (MT_JSON_MAX_DEPTH), while a $ref cycle that consumes no instance depth
 * stops here instead of recursing forever. MAX_FRAMES bounds all of them at
 * once, for the C stack's sake: 4 per instance level, twice what a plain
 * recursive schema spends (the member's {"$ref"} and its target; a nullable
 * child's anyOf adds one). A level costs up to 250 bytes of stack (500
 * under AddressSanitizer), so a whole budget stays near 1 MB (2 MB). */
#define MAX_SCHEMA_DEPTH 512
#define MAX_FRAMES (4 * MT_JSON_MAX_DEPTH + MAX_SCHEMA_DEPTH)
/* Enum and const values quoted in messages are cut after this many bytes. */
#define QUOTE_MAX 120

enum {
  T_NULL = 1 << 0,
  T_BOOLEAN = 1 << 1,
  T_OBJECT = 1 << 2,
  T_ARRAY = 1 << 3,
  T_NUMBER = 1 << 4,
  T_STRING = 1 << 5,
  T_INTEGER = 1 << 6
};

static const char *const type_names[] = {"null",   "boolean", "object", "array",
                                         "number", "string",  "integer"};

typedef struct node_s node_t;

typedef struct prop_s {
  const char *name;
  size_t len;
  node_t *schema;
} prop_t;

typedef struct pprop_s {
  pcre2_code *re;
  const char *src;
  node_t *schema;
} pprop_t;

typedef struct dep_s {
  const char *name;
  size_t len;
  const mt_jval_t *names; /* an array of strings, in the schema document */
} dep_t;

typedef struct nodes_s {
  node_t **v;
  size_t n;
} nodes_t;

/* A compiled schema. Values (enum, const, bounds) point into the schema
 * document, which lives as long as the schema. */
struct node_s {
  node_t *next_alloc; /* every node, for mt_schema_free() */
  int boolean;        /* -1: an object schema; 0/1: false/true */
  unsigned types;     /* T_* mask; 0 when there is no "type" */
  const mt_jval_t *enum_vals, *const_val;
  const mt_jval_t *minimum, *maximum, *xminimum, *xmaximum, *multiple_of;
  int64_t min_len, max_len, min_items, max_items, min_props, max_props;
  int64_t min_contains, max_contains;
  int unique_items;
  int format;
  pcre2_code *pattern;
  const char *pattern_src;
  prop_t *props; /* sorted by (len, bytes) for binary search */
  size_t nprops;
  pprop_t *pprops;
  size_t npprops;
  node_t *additional, *property_names, *items, *contains;
  node_t *not_, *if_, *then_, *else_, *ref;
  const mt_jval_t *required;
  dep_t *dep_required;
  size_t ndep_required;
  prop_t *dep_schemas;
  size_t ndep_schemas;
  nodes_t prefix, all_of, any_of, one_of;
};

struct mt_schema_s {
  mt_jdoc_t *doc;
  node_t *nodes;
  node_t *root;
};

/* ======================================================================
 * Compilation
 * ====================================================================== */

/* What the compiler knows about one schema value of the document: its base
 * URI (from the index pass) and its node once compiled. */
typedef struct entry_s {
  const mt_jval_t *key;
  const char *base;
  node_t *node;
} entry_t;

typedef struct named_s {
  const char *uri; /* a resource URI, or "<uri>#<anchor>" */
  const mt_jval_t *js;
} named_t;

typedef struct pending_s {
  node_t *node;
  const char *ref, *base;
  char *path;
} pending_t;

typedef struct compiler_s {
  mt_schema_t *s;
  mt_err_t *err;
  mt_buf_t path; /* schema path of the value being compiled */
  entry_t *map;
  size_t mapcap, mapn;
  named_t *named;
  size_t nnamed, capnamed;
  pending_t *pending;
  size_t npending, cappending;
  const char *base; /* base URI of the schema being compiled */
  char **strs;      /* URIs made while compiling, freed at the end */
  size_t nstrs, capstrs;
} compiler_t;

static int grow(void **v, size_t *cap, size_t n, size_t size) {
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

static int bad(compiler_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int bad(compiler_t *c, const char *fmt, ...) {
  char reason[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof(reason), fmt, ap);
  va_end(ap);
  return mt_err_set(c->err, MT_ECONFIG, "invalid schema at %s: %s",
                    c->path.len ? c->path.data : "(root)", reason);
}

static int oom(compiler_t *c) {
  return mt_err_set(c->err, MT_ENOMEM, "out of memory compiling a schema");
}

/* Appends "/<escaped segment>" to the schema path; returns the old length
 * for path_pop(). */
static size_t path_push(compiler_t *c, const char *seg, size_t n) {
  size_t mark = c->path.len;
  mt_buf_putc(&c->path, '/');
  for (size_t i = 0; i < n; i++) {
    if (seg[i] == '~')
      mt_buf_puts(&c->path, "~0");
    else if (seg[i] == '/')
      mt_buf_puts(&c->path, "~1");
    else
      mt_buf_putc(&c->path, seg[i]);
  }
  return mark;
}

static size_t path_push_index(compiler_t *c, size_t i) {
  size_t mark = c->path.len;
  mt_buf_printf(&c->path, "/%zu", i);
  return mark;
}

static void path_pop(compiler_t *c, size_t mark) {
  if (c->path.data != NULL) {
    c->path.len = mark;
    c->path.data[mark] = '\0';
  }
}

/* ---- the value -> entry map (open addressing on pointers) ---- */

static size_t hash_ptr(const void *p) {
  return (size_t)(((uintptr_t)p >> 3) * 0x9E3779B97F4A7C15ull);
}

static entry_t *map_find(compiler_t *c, const mt_jval_t *key) {
  if (c->mapcap == 0)
    return NULL;
  size_t i = hash_ptr(key) & (c->mapcap - 1);
  while (c->map[i].key != NULL) {
    if (c->map[i].key == key)
      return &c->map[i];
    i = (i + 1) & (c->mapcap - 1);
  }
  return NULL;
}

static entry_t *map_add(compiler_t *c, const mt_jval_t *key) {
  entry_t *e = map_find(c, key);
  if (e != NULL)
    return e;
  if ((c->mapn + 1) * 2 > c->mapcap) {
    size_t ncap = c->mapcap ? c->mapcap * 2 : 64;
    entry_t *old = c->map, *fresh = calloc(ncap, sizeof(*fresh));
    size_t oldcap = c->mapcap;
    if (fresh == NULL)
      return NULL;
    c->map = fresh;
    c->mapcap = ncap;
    for (size_t i = 0; i < oldcap; i++) {
      if (old[i].key == NULL)
        continue;
      size_t j = hash_ptr(old[i].key) & (ncap - 1);
      while (fresh[j].key != NULL)
        j = (j + 1) & (ncap - 1);
      fresh[j] = old[i];
    }
    free(old);
  }
  size_t i = hash_ptr(key) & (c->mapcap - 1);
  while (c->map[i].key != NULL)
    i = (i + 1) & (c->mapcap - 1);
  c->map[i].key = key;
  c->mapn++;
  return &c->map[i];
}

/* ---- URIs (RFC 3986 reference resolution, enough for $id and $ref) ---- */

typedef struct span_s {
  const char *s;
  size_t n;
  int has;
} span_t;

typedef struct uri_s {
  span_t scheme, auth, path, query, frag;
} uri_t;

static void uri_split(const char *u, uri_t *out) {
  memset(out, 0, sizeof(*out));
  const char *p = u;
  size_t k = strcspn(p, ":/?#");
  if (p[k] == ':' && k > 0) {
    out->scheme = (span_t){p, k, 1};
    p += k + 1;
  }
  if (p[0] == '/' && p[1] == '/') {
    p += 2;
    k = strcspn(p, "/?#");
    out->auth = (span_t){p, k, 1};
    p += k;
  }
  k = strcspn(p, "?#");
  out->path = (span_t){p, k, 1};
  p += k;
  if (*p == '?') {
    k = strcspn(++p, "#");
    out->query = (span_t){p, k, 1};
    p += k;
  }
  if (*p == '#')
    out->frag = (span_t){p + 1, strlen(p + 1), 1};
}

/* RFC 3986 5.2.4, on a path held in b from offset start. */
static void remove_dots(mt_buf_t *b, const char *in, size_t n) {
  size_t start = b->len;
  size_t i = 0;
  while (i < n) {
    const char *s = in + i;
    size_t rest = n - i;
    if (rest >= 3 && memcmp(s, "../", 3) == 0) {
      i += 3;
    } else if (rest >= 2 && memcmp(s, "./", 2) == 0) {
      i += 2;
    } else if ((rest >= 3 && memcmp(s, "/./", 3) == 0) ||
               (rest == 2 && memcmp(s, "/.", 2) == 0)) {
      i += 2;
      if (rest == 2)
        mt_buf_putc(b, '/');
    } else if ((rest >= 4 && memcmp(s, "/../", 4) == 0) ||
               (rest == 3 && memcmp(s, "/..", 3) == 0)) {
      i += 3;
      while (b->len > start && b->data[b->len - 1] != '/')
        b->len--;
      if (b->len > start)
        b->len--;
      if (rest == 3)
        mt_buf_putc(b, '/');
    } else if ((rest == 1 && s[0] == '.') ||
               (rest == 2 && s[0] == '.' && s[1] == '.')) {
      i = n;
    } else {
      size_t k = 1;
      while (k < rest && s[k] != '/')
        k++;
      mt_buf_append(b, s, k);
      i += k;
    }
  }
  if (b->data != NULL)
    b->data[b->len] = '\0';
}

static void put_span(mt_buf_t *b, const char *pre, span_t sp) {
  if (!sp.has)
    return;
  mt_buf_puts(b, pre);
  mt_buf_append(b, sp.s, sp.n);
}

/* Resolves ref against base into a new string the compiler owns. */
static const char *uri_resolve(compiler_t *c, const char *base,
                               const char *ref) {
  uri_t b, r;
  mt_buf_t out = MT_BUF_INIT;
  uri_split(base, &b);
  uri_split(ref, &r);
  const uri_t *auth_from = r.scheme.has || r.auth.has ? &r : &b;
  put_span(&out, "", r.scheme.has ? r.scheme : b.scheme);
  if (out.len > 0)
    mt_buf_putc(&out, ':');
  put_span(&out, "//", auth_from->auth);
  if (r.scheme.has || r.auth.has || (r.path.n > 0 && r.path.s[0] == '/')) {
    remove_dots(&out, r.path.s, r.path.n);
    put_span(&out, "?", r.query);
  } else if (r.path.n == 0) {
    mt_buf_append(&out, b.path.s, b.path.n);
    put_span(&out, "?", r.query.has ? r.query : b.query);
  } else {
    mt_buf_t merged = MT_BUF_INIT;
    if (b.auth.has && b.path.n == 0) {
      mt_buf_putc(&merged, '/');
    } else {
      size_t k = b.path.n;
      while (k > 0 && b.path.s[k - 1] != '/')
        k--;
      mt_buf_append(&merged, b.path.s, k);
    }
    mt_buf_append(&merged, r.path.s, r.path.n);
    remove_dots(&out, merged.data, merged.len);
    mt_buf_free(&merged);
    put_span(&out, "?", r.query);
  }
  put_span(&out, "#", r.frag);
  mt_buf_putc(&out, '\0'); /* makes an empty result non-NULL */
  if (out.data == NULL ||
      grow((void **)&c->strs, &c->capstrs, c->nstrs, sizeof(char *)) != 0) {
    mt_buf_free(&out);
    return NULL;
  }
  c->strs[c->nstrs++] = out.data;
  return out.data;
}

/* A copy of uri without its fragment, owned by the compiler. */
static const char *uri_strip_frag(compiler_t *c, const char *uri) {
  size_t n = strcspn(uri, "#");
  char *s = strndup(uri, n);
  if (s == NULL ||
      grow((void **)&c->strs, &c->capstrs, c->nstrs, sizeof(char *)) != 0) {
    free(s);
    return NULL;
  }
  c->strs[c->nstrs++] = s;
  return s;
}

static int add_named(compiler_t *c, const char *uri, const mt_jval_t *js) {
  if (grow((void **)&c->named, &c->capnamed, c->nnamed, sizeof(named_t)))
    return oom(c);
  c->named[c->nnamed++] = (named_t){uri, js};
  return 0;
}

static const mt_jval_t *find_named(compiler_t *c, const char *uri) {
  for (size_t i = 0; i < c->nnamed; i++)
    if (strcmp(c->named[i].uri, uri) == 0)
      return c->named[i].js;
  return NULL;
}

/* ---- index pass: base URIs, $id resources and $anchors ---- */

static const char *const sub_single[] = {"additionalProperties",
                                         "propertyNames",
                                         "items",
                                         "contains",
                                         "not",
                                         "if",
                                         "then",
                                         "else",
                                         "unevaluatedItems",
                                         "unevaluatedProperties",
                                         "contentSchema",
                                         NULL};
static const char *const sub_map[] = {
    "properties",  "patternProperties", "$defs",
    "definitions", "dependentSchemas",  NULL};
static const char *const sub_list[] = {"prefixItems", "allOf", "anyOf", "oneOf",
                                       NULL};

static int in_list(const char *const *list, const char *key) {
  for (; *list != NULL; list++)
    if (strcmp(*list, key) == 0)
      return 1;
  return 0;
}

static int index_schema(compiler_t *c, const mt_jval_t *js, const char *base);

static int index_children(compiler_t *c, const mt_jval_t *js,
                          const char *base) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < js->len; i++) {
    const mt_jmember_t *m = &js->u.members[i];
    const mt_jval_t *v = &m->value;
    if (in_list(sub_single, m->key)) {
      rc = index_schema(c, v, base);
    } else if (in_list(sub_map, m->key) && v->type == MT_JV_OBJECT) {
      for (size_t k = 0; rc == 0 && k < v->len; k++)
        rc = index_schema(c, &v->u.members[k].value, base);
    } else if (in_list(sub_list, m->key) && v->type == MT_JV_ARRAY) {
      for (size_t k = 0; rc == 0 && k < v->len; k++)
        rc = index_schema(c, &v->u.items[k], base);
    }
  }
  return rc;
}

static int index_schema(compiler_t *c, const mt_jval_t *js, const char *base) {
  if (map_find(c, js) != NULL)
    return 0;
  if (js->type == MT_JV_OBJECT) {
    const mt_jval_t *id = mt_jval_get(js, "$id");
    if (id != NULL && id->type == MT_JV_STRING) {
      const char *abs = uri_resolve(c, base, id->u.str);
      base = abs ? uri_strip_frag(c, abs) : NULL;
      if (base == NULL || add_named(c, base, js) != 0)
        return oom(c);
    }
    const mt_jval_t *anchor = mt_jval_get(js, "$anchor");
    if (anchor != NULL && anchor->type == MT_JV_STRING) {
      mt_buf_t name = MT_BUF_INIT;
      mt_buf_printf(&name, "%s#%s", base, anchor->u.str);
      const char *uri = name.data ? uri_resolve(c, "", name.data) : NULL;
      mt_buf_free(&name);
      if (uri == NULL || add_named(c, uri, js) != 0)
        return oom(c);
    }
  }
  entry_t *e = map_add(c, js);
  if (e == NULL)
    return oom(c);
  e->base = base;
  return js->type == MT_JV_OBJECT ? index_children(c, js, base) : 0;
}

/* ---- keyword compilers ---- */

static int compile_schema(compiler_t *c, const mt_jval_t *js, node_t **out);

static int as_count(compiler_t *c, const mt_jval_t *v, int64_t *out) {
  if (v->type != MT_JV_NUMBER || !v->is_int || v->u.num.i < 0)
    return bad(c, "must be a non-negative integer");
  *out = v->u.num.i;
  return 0;
}

static int as_number(compiler_t *c, const mt_jval_t *v, const mt_jval_t **out) {
  if (v->type != MT_JV_NUMBER)
    return bad(c, "must be a number");
  *out = v;
  return 0;
}

static int as_strings(compiler_t *c, const mt_jval_t *v) {
  if (v->type != MT_JV_ARRAY)
    return bad(c, "must be an array of strings");
  for (size_t i = 0; i < v->len; i++)
    if (v->u.items[i].type != MT_JV_STRING)
      return bad(c, "must be an array of strings (item %zu is not a string)",
                 i);
  return 0;
}

/* ECMA-262 spells Unicode properties by their long names (\p{Letter},
 * \p{Script=Greek}); this PCRE2 knows only the short ones, so the pattern
 * is rewritten into out before compiling. */
static void ecma_to_pcre(const char *src, size_t n, mt_buf_t *out) {
  static const char *const names[][2] = {
      {"Letter", "L"},
      {"Cased_Letter", "L&"},
      {"Uppercase_Letter", "Lu"},
      {"Lowercase_Letter", "Ll"},
      {"Titlecase_Letter", "Lt"},
      {"Modifier_Letter", "Lm"},
      {"Other_Letter", "Lo"},
      {"Mark", "M"},
      {"Nonspacing_Mark", "Mn"},
      {"Spacing_Mark", "Mc"},
      {"Enclosing_Mark", "Me"},
      {"Number", "N"},
      {"Decimal_Number", "Nd"},
      {"Letter_Number", "Nl"},
      {"Other_Number", "No"},
      {"Punctuation", "P"},
      {"Symbol", "S"},
      {"Separator", "Z"},
      {"Space_Separator", "Zs"},
      {"Other", "C"},
      {"Control", "Cc"},
  };
  for (size_t i = 0; i < n; i++) {
    const char *close;
    if (src[i] != '\\' || i + 2 >= n ||
        (src[i + 1] != 'p' && src[i + 1] != 'P') || src[i + 2] != '{' ||
        (close = memchr(src + i + 3, '}', n - i - 3)) == NULL) {
      if (src[i] == '\\' && i + 1 < n)
        mt_buf_putc(out, src[i++]); /* keep escapes whole */
      mt_buf_putc(out, src[i]);
      continue;
    }
    const char *name = src + i + 3;
    size_t len = (size_t)(close - name);
    const char *eq = memchr(name, '=', len);
    if (eq != NULL) { /* gc=X, General_Category=X, sc=X, Script=X */
      len -= (size_t)(eq + 1 - name);
      name = eq + 1;
    }
    const char *mapped = NULL;
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
      if (strlen(names[k][0]) == len && memcmp(names[k][0], name, len) == 0)
        mapped = names[k][1];
    mt_buf_printf(out, "\\%c{", src[i + 1]);
    if (mapped != NULL)
      mt_buf_puts(out, mapped);
    else
      mt_buf_append(out, name, len);
    mt_buf_putc(out, '}');
    i = (size_t)(close - src);
  }
}

static int compile_regex(compiler_t *c, const char *src, size_t n,
                         pcre2_code **out) {
  int code;
  PCRE2_SIZE off;
  mt_buf_t pat = MT_BUF_INIT;
  ecma_to_pcre(src, n, &pat);
  if (pat.data == NULL && n > 0)
    return oom(c);
  /* ECMA-262 patterns: \d and \w stay ASCII (no PCRE2_UCP), \uXXXX is an
   * escape (PCRE2_ALT_BSUX). */
  pcre2_code *re =
      pcre2_compile((PCRE2_SPTR)(pat.data ? pat.data : ""), pat.len,
                    PCRE2_UTF | PCRE2_ALT_BSUX, &code, &off, NULL);
  mt_buf_free(&pat);
  if (re == NULL) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(code, msg, sizeof(msg));
    return bad(c, "invalid regular expression \"%s\": %s at offset %zu", src,
               (const char *)msg, (size_t)off);
  }
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* the interpreter is fallback */
  *out = re;
  return 0;
}

static int kw_type(compiler_t *c, node_t *n, const mt_jval_t *v) {
  const mt_jval_t *names = v;
  size_t count = 1;
  if (v->type == MT_JV_ARRAY) {
    names = v->u.items;
    count = v->len;
  }
  for (size_t i = 0; i < count; i++) {
    const mt_jval_t *name = &names[i];
    if (name->type != MT_JV_STRING)
      return bad(c, "must be a type name or an array of type names");
    size_t t = 0;
    while (t < 7 && strcmp(type_names[t], name->u.str) != 0)
      t++;
    if (t == 7)
      return bad(c, "unknown type \"%s\"", name->u.str);
    n->types |= 1u << t;
  }
  return 0;
}

static int kw_enum(compiler_t *c, node_t *n, const mt_jval_t *v) {
  if (v->type != MT_JV_ARRAY)
    return bad(c, "must be an array");
  n->enum_vals = v;
  return 0;
}

static int kw_const(compiler_t *c, node_t *n, const mt_jval_t *v) {
  (void)c;
  n->const_val = v;
  return 0;
}

static int kw_minimum(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return as_number(c, v, &n->minimum);
}
static int kw_maximum(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return as_number(c, v, &n->maximum);
}
static int kw_xminimum(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return as_number(c, v, &n->xminimum);
}
static int kw_xmaximum(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return as_number(c, v, &n->xmaximum);
}
static int kw_multiple_of(compiler_t *c, node_t *n, const mt_jval_t *v) {
  if (v->type != MT_JV_NUMBER || v->u.num.d <= 0)
    return bad(c, "must be a number greater than 0");
  n->multiple_of = v;
  return 0;
}
static int kw_min_length(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return as_count(c, v, &n->min_len);
}
static int kw_max_length(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return as_count(c, v, &n->max_len);
}
static int kw_min_items(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return as_count(c, v, &n->min_items);
}
static int kw_max_items(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return as_count(c, v, &n->max_items);
}
static int kw_min_props(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return as_count(c, v, &n->min_props);
}
static int kw_max_props(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return as_count(c, v, &n->max_props);
}
static int kw_min_contains(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return as_count(c, v, &n->min_contains);
}
static int kw_max_contains(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return as_count(c, v, &n->max_contains);
}

static int kw_unique_items(compiler_t *c, node_t *n, const mt_jval_t *v) {
  if (v->type != MT_JV_BOOL)
    return bad(c, "must be a boolean");
  n->unique_items = v->u.b;
  return 0;
}

static int kw_format(compiler_t *c, node_t *n, const mt_jval_t *v) {
  if (v->type != MT_JV_STRING)
    return bad(c, "must be a string");
  n->format = mt__schema_format_id(v->u.str); /* unknown: an annotation */
  return 0;
}

static int kw_pattern(compiler_t *c, node_t *n, const mt_jval_t *v) {
  if (v->type != MT_JV_STRING)
    return bad(c, "must be a string");
  n->pattern_src = v->u.str;
  return compile_regex(c, v->u.str, v->len, &n->pattern);
}

static int kw_required(compiler_t *c, node_t *n, const mt_jval_t *v) {
  n->required = v;
  return as_strings(c, v);
}

static int sub_node(compiler_t *c, const mt_jval_t *v, node_t **out) {
  if (v->type != MT_JV_OBJECT && v->type != MT_JV_BOOL)
    return bad(c, "must be a schema (an object or a boolean)");
  return compile_schema(c, v, out);
}

static int kw_additional(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return sub_node(c, v, &n->additional);
}
static int kw_property_names(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return sub_node(c, v, &n->property_names);
}
static int kw_items(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return sub_node(c, v, &n->items);
}
static int kw_contains(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return sub_node(c, v, &n->contains);
}
static int kw_not(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return sub_node(c, v, &n->not_);
}
static int kw_if(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return sub_node(c, v, &n->if_);
}
static int kw_then(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return sub_node(c, v, &n->then_);
}
static int kw_else(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return sub_node(c, v, &n->else_);
}

static int sub_list_of(compiler_t *c, const mt_jval_t *v, nodes_t *out) {
  if (v->type != MT_JV_ARRAY)
    return bad(c, "must be an array of schemas");
  out->v = calloc(v->len ? v->len : 1, sizeof(node_t *));
  if (out->v == NULL)
    return oom(c);
  for (size_t i = 0; i < v->len; i++) {
    size_t mark = path_push_index(c, i);
    int rc = sub_node(c, &v->u.items[i], &out->v[i]);
    if (rc != 0)
      return rc;
    path_pop(c, mark);
    out->n++;
  }
  return 0;
}

static int kw_prefix_items(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return sub_list_of(c, v, &n->prefix);
}
static int kw_all_of(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return sub_list_of(c, v, &n->all_of);
}
static int kw_any_of(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return sub_list_of(c, v, &n->any_of);
}
static int kw_one_of(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return sub_list_of(c, v, &n->one_of);
}

static int prop_cmp(const void *a, const void *b) {
  const prop_t *x = a, *y = b;
  if (x->len != y->len)
    return x->len < y->len ? -1 : 1;
  return memcmp(x->name, y->name, x->len);
}

/* Compiles an object of name -> schema (properties, dependentSchemas). */
static int sub_map_of(compiler_t *c, const mt_jval_t *v, prop_t **out,
                      size_t *nout) {
  if (v->type != MT_JV_OBJECT)
    return bad(c, "must be an object of schemas");
  *out = calloc(v->len ? v->len : 1, sizeof(prop_t));
  if (*out == NULL)
    return oom(c);
  for (size_t i = 0; i < v->len; i++) {
    const mt_jmember_t *m = &v->u.members[i];
    prop_t *p = &(*out)[i];
    size_t mark = path_push(c, m->key, m->key_len);
    p->name = m->key;
    p->len = m->key_len;
    int rc = sub_node(c, &m->value, &p->schema);
    if (rc != 0)
      return rc;
    path_pop(c, mark);
    (*nout)++;
  }
  qsort(*out, *nout, sizeof(prop_t), prop_cmp);
  return 0;
}

static int kw_properties(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return sub_map_of(c, v, &n->props, &n->nprops);
}
static int kw_dep_schemas(compiler_t *c, node_t *n, const mt_jval_t *v) {
  return sub_map_of(c, v, &n->dep_schemas, &n->ndep_schemas);
}

static int kw_pattern_props(compiler_t *c, node_t *n, const mt_jval_t *v) {
  if (v->type != MT_JV_OBJECT)
    return bad(c, "must be an object of schemas");
  n->pprops = calloc(v->len ? v->len : 1, sizeof(pprop_t));
  if (n->pprops == NULL)
    return oom(c);
  for (size_t i = 0; i < v->len; i++) {
    const mt_jmember_t *m = &v->u.members[i];
    pprop_t *p = &n->pprops[i];
    size_t mark = path_push(c, m->key, m->key_len);
    p->src = m->key;
    int rc = compile_regex(c, m->key, m->key_len, &p->re);
    n->npprops += p->re != NULL;
    if (rc == 0)
      rc = sub_node(c, &m->value, &p->schema);
    if (rc != 0)
      return rc;
    path_pop(c, mark);
  }
  return 0;
}

static int kw_dep_required(compiler_t *c, node_t *n, const mt_jval_t *v) {
  if (v->type != MT_JV_OBJECT)
    return bad(c, "must be an object of string arrays");
  n->dep_required = calloc(v->len ? v->len : 1, sizeof(dep_t));
  if (n->dep_required == NULL)
    return oom(c);
  for (size_t i = 0; i < v->len; i++) {
    const mt_jmember_t *m = &v->u.members[i];
    size_t mark = path_push(c, m->key, m->key_len);
    int rc = as_strings(c, &m->value);
    if (rc != 0)
      return rc;
    path_pop(c, mark);
    n->dep_required[n->ndep_required++] =
        (dep_t){m->key, m->key_len, &m->value};
  }
  return 0;
}

static int kw_ref(compiler_t *c, node_t *n, const mt_jval_t *v) {
  if (v->type != MT_JV_STRING)
    return bad(c, "must be a string");
  if (grow((void **)&c->pending, &c->cappending, c->npending,
           sizeof(pending_t)) != 0)
    return oom(c);
  /* Resolved once the whole document is compiled: the target may not have
   * been reached yet, or may be this very schema. */
  pending_t *p = &c->pending[c->npending];
  p->node = n;
  p->ref = v->u.str;
  p->base = c->base;
  p->path = strdup(c->path.data ? c->path.data : "");
  if (p->path == NULL)
    return oom(c);
  c->npending++;
  return 0;
}

typedef int (*kw_fn)(compiler_t *c, node_t *n, const mt_jval_t *v);

static const struct {
  const char *name;
  kw_fn fn;
} keywords[] = {
    {"type", kw_type},
    {"enum", kw_enum},
    {"const", kw_const},
    {"minimum", kw_minimum},
    {"maximum", kw_maximum},
    {"exclusiveMinimum", kw_xminimum},
    {"exclusiveMaximum", kw_xmaximum},
    {"multipleOf", kw_multiple_of},
    {"minLength", kw_min_length},
    {"maxLength", kw_max_length},
    {"pattern", kw_pattern},
    {"format", kw_format},
    {"minItems", kw_min_items},
    {"maxItems", kw_max_items},
    {"uniqueItems", kw_unique_items},
    {"prefixItems", kw_prefix_items},
    {"items", kw_items},
    {"contains", kw_contains},
    {"minContains", kw_min_contains},
    {"maxContains", kw_max_contains},
    {"properties", kw_properties},
    {"patternProperties", kw_pattern_props},
    {"additionalProperties", kw_additional},
    {"propertyNames", kw_property_names},
    {"required", kw_required},
    {"dependentRequired", kw_dep_required},
    {"dependentSchemas", kw_dep_schemas},
    {"minProperties", kw_min_props},
    {"maxProperties", kw_max_props},
    {"allOf", kw_all_of},
    {"anyOf", kw_any_of},
    {"oneOf", kw_one_of},
    {"not", kw_not},
    {"if", kw_if},
    {"then", kw_then},
    {"else", kw_else},
    {"$ref", kw_ref},
};

static node_t *node_new(compiler_t *c) {
  node_t *n = calloc(1, sizeof(*n));
  if (n == NULL)
    return NULL;
  n->next_alloc = c->s->nodes;
  c->s->nodes = n;
  n->boolean = -1;
  n->min_len = n->min_items = n->min_props = -1;
  n->max_len = n->max_items = n->max_props = -1;
  n->min_contains = n->max_contains = -1;
  return n;
}

static int compile_keywords(compiler_t *c, node_t *n, const mt_jval_t *js) {
  for (size_t i = 0; i < js->len; i++) {
    const mt_jmember_t *m = &js->u.members[i];
    for (size_t k = 0; k < sizeof(keywords) / sizeof(keywords[0]); k++) {
      if (strcmp(keywords[k].name, m->key) != 0)
        continue;
      size_t mark = path_push(c, m->key, m->key_len);
      int rc = keywords[k].fn(c, n, &m->value);
      if (rc != 0)
        return rc;
      path_pop(c, mark);
      break;
    }
  }
  return 0;
}

static int compile_schema(compiler_t *c, const mt_jval_t *js, node_t **out) {
  entry_t *e = map_find(c, js);
  if (e != NULL && e->node != NULL) {
    *out = e->node;
    return 0;
  }
  if (js->type != MT_JV_OBJECT && js->type != MT_JV_BOOL)
    return bad(c, "a schema must be an object or a boolean");
  node_t *n = node_new(c);
  if (n == NULL || (e == NULL && (e = map_add(c, js)) == NULL))
    return oom(c);
  e->node = n;
  *out = n;
  if (js->type == MT_JV_BOOL) {
    n->boolean = js->u.b;
    return 0;
  }
  const char *outer = c->base;
  c->base = e->base ? e->base : outer;
  int rc = compile_keywords(c, n, js);
  c->base = outer;
  return rc;
}

/* ---- $ref resolution ---- */

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* Percent-decodes s in place (URI fragments may escape '%' and '"'). */
static void percent_decode(char *s) {
  char *o = s;
  for (; *s; s++) {
    if (s[0] == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
      *o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
      s += 2;
    } else {
      *o++ = *s;
    }
  }
  *o = '\0';
}

/* Follows a JSON pointer ("/a/0/b~1c") from v; NULL if it leads nowhere. */
static const mt_jval_t *follow_pointer(const mt_jval_t *v, const char *ptr) {
  while (v != NULL && *ptr == '/') {
    ptr++;
    size_t n = strcspn(ptr, "/");
    char tok[1024];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < sizeof(tok); i++) {
      if (ptr[i] == '~' && i + 1 < n &&
          (ptr[i + 1] == '0' || ptr[i + 1] == '1'))
        tok[k++] = ptr[++i] == '0' ? '~' : '/';
      else
        tok[k++] = ptr[i];
    }
    tok[k] = '\0';
    ptr += n;
    if (v->type == MT_JV_OBJECT) {
      const mt_jval_t *next = NULL;
      for (size_t i = 0; i < v->len && next == NULL; i++)
        if (v->u.members[i].key_len == k &&
            memcmp(v->u.members[i].key, tok, k) == 0)
          next = &v->u.members[i].value;
      v = next;
    } else if (v->type == MT_JV_ARRAY) {
      char *end;
      unsigned long long i = strtoull(tok, &end, 10);
      v = k > 0 && *end == '\0' && i < v->len ? &v->u.items[i] : NULL;
    } else {
      v = NULL;
    }
  }
  return v != NULL && *ptr == '\0' ? v : NULL;
}

static const mt_jval_t *resolve_target(compiler_t *c, const char *abs,
                                       const char **target_base) {
  size_t n = strcspn(abs, "#");
  char *docuri = strndup(abs, n);
  char *frag = strdup(abs[n] == '#' ? abs + n + 1 : "");
  const mt_jval_t *doc = NULL, *v = NULL;
  if (docuri == NULL || frag == NULL)
    goto done;
  percent_decode(frag);
  doc = find_named(c, docuri);
  if (doc == NULL)
    goto done;
  if (frag[0] == '\0')
    v = doc;
  else if (frag[0] == '/')
    v = follow_pointer(doc, frag);
  else
    v = find_named(c, abs);
  *target_base = uri_strip_frag(c, abs);
done:
  free(docuri);
  free(frag);
  return v;
}

static int resolve_refs(compiler_t *c) {
  /* Compiling a target may add refs of its own, hence no cached count. */
  for (size_t i = 0; i < c->npending; i++) {
    pending_t *p = &c->pending[i];
    const char *base = p->base ? p->base : "";
    const char *abs = uri_resolve(c, base, p->ref), *tbase = base;
    if (abs == NULL)
      return oom(c);
    const mt_jval_t *target = resolve_target(c, abs, &tbase);
    mt_buf_reset(&c->path);
    mt_buf_puts(&c->path, p->path);
    if (target == NULL)
      return bad(c, "cannot resolve $ref \"%s\"", p->ref);
    int rc = 0;
    if (map_find(c, target) == NULL)
      rc = index_schema(c, target, tbase ? tbase : base);
    if (rc == 0)
      rc = compile_schema(c, target, &c->pending[i].node->ref);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static void compiler_free(compiler_t *c) {
  for (size_t i = 0; i < c->npending; i++)
    free(c->pending[i].path);
  for (size_t i = 0; i < c->nstrs; i++)
    free(c->strs[i]);
  free(c->pending);
  free(c->strs);
  free(c->named);
  free(c->map);
  mt_buf_free(&c->path);
}

int mt_schema_compile(const char *json, size_t len, mt_schema_t **out,
                      mt_err_t *err) {
  compiler_t c = {.err = err};
  mt_err_t perr;
  int rc;
  *out = NULL;
  c.s = calloc(1, sizeof(*c.s));
  if (c.s == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory compiling a schema");
  rc = mt_jdoc_parse(json, len, &c.s->doc, &perr);
  if (rc != 0) {
    rc = mt_err_set(err, rc == MT_ENOMEM ? MT_ENOMEM : MT_ECONFIG,
                    "invalid schema: %s", perr.msg);
    goto fail;
  }
  const mt_jval_t *root = mt_jdoc_root(c.s->doc);
  rc = index_schema(&c, root, "");
  if (rc == 0 && find_named(&c, "") == NULL)
    rc = add_named(&c, "", root); /* "#..." refs when the root has no $id */
  if (rc == 0)
    rc = compile_schema(&c, root, &c.s->root);
  if (rc == 0)
    rc = resolve_refs(&c);
  if (rc != 0)
    goto fail;
  compiler_free(&c);
  *out = c.s;
  return 0;
fail:
  compiler_free(&c);
  mt_schema_free(c.s);
  return rc;
}

static void node_free(node_t *n) {
  pcre2_code_free(n->pattern);
  for (size_t i = 0; i < n->npprops; i++)
    pcre2_code_free(n->pprops[i].re);
  free(n->pprops);
  free(n->props);
  free(n->dep_required);
  free(n->dep_schemas);
  free(n->prefix.v);
  free(n->all_of.v);
  free(n->any_of.v);
  free(n->one_of.v);
  free(n);
}

void mt_schema_free(mt_schema_t *s) {
  if (s == NULL)
    return;
  node_t *n = s->nodes;
  while (n != NULL) {
    node_t *next = n->next_alloc;
    node_free(n);
    n = next;
  }
  mt_jdoc_free(s->doc);
  free(s);
}

/* ======================================================================
 * Validation
 * ====================================================================== */

typedef struct seg_s {
  const char *key; /* NULL: an array index */
  size_t len;      /* key length, or the index */
} seg_t;

typedef struct vctx_s {
  int quiet;  /* > 0 while probing (anyOf, not, if...): record nothing */
  int depth;  /* schema levels open at the current instance location */
  int frames; /* schema levels open in all */
  /* A budget ran out: the verdict is "invalid" whatever a probe or a
   * "not" would make of it, and the walk ends. */
  int too_deep;
  int oom;
  seg_t *path;
  size_t npath, cappath;
  seg_t path0[32];
  mt_schema_error_t *errs;
  size_t nerrs, caperrs;
  pcre2_match_data *md;
} vctx_t;

static int validate(vctx_t *v, const node_t *n, const mt_jval_t *x);

static int path_enter(vctx_t *v, const char *key, size_t len) {
  if (v->npath == v->cappath) {
    size_t cap = v->cappath * 2;
    seg_t *p = v->path == v->path0 ? malloc(cap * sizeof(seg_t))
                                   : realloc(v->path, cap * sizeof(seg_t));
    if (p == NULL) {
      v->oom = 1;
      return -1;
    }
    if (v->path == v->path0)
      memcpy(p, v->path0, sizeof(v->path0));
    v->path = p;
    v->cappath = cap;
  }
  v->path[v->npath++] = (seg_t){key, len};
  return 0;
}

static char *pointer_string(const vctx_t *v) {
  mt_buf_t b = MT_BUF_INIT;
  mt_buf_putc(&b, '\0'); /* the root is "" and still allocated */
  b.len = 0;
  for (size_t i = 0; i < v->npath; i++) {
    const seg_t *s = &v->path[i];
    if (s->key == NULL) {
      mt_buf_printf(&b, "/%zu", s->len);
      continue;
    }
    mt_buf_putc(&b, '/');
    for (size_t k = 0; k < s->len; k++) {
      if (s->key[k] == '~')
        mt_buf_puts(&b, "~0");
      else if (s->key[k] == '/')
        mt_buf_puts(&b, "~1");
      else
        mt_buf_putc(&b, s->key[k]);
    }
  }
  return b.data;
}

static void report(vctx_t *v, const char *keyword, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(vctx_t *v, const char *keyword, const char *fmt, ...) {
  /* After a budget ran out, the callers unwinding from it (an anyOf that
   * "matched none") would only repeat it in other words. */
  if (v->quiet > 0 || v->too_deep)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
  char *ptr = pointer_string(v);
  if (text == NULL || ptr == NULL ||
      grow((void **)&v->errs, &v->caperrs, v->nerrs, sizeof(*v->errs)) != 0) {
    free(text);
    free(ptr);
    v->oom = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(text, (size_t)n + 1, fmt, ap);
  va_end(ap);
  v->errs[v->nerrs++] = (mt_schema_error_t){ptr, keyword, text};
}

/* Quotes a schema value for a message into a caller-freed string. */
static char *quote(const mt_jval_t *x) {
  mt_buf_t b = MT_BUF_INIT;
  mt_jval_write(&b, x, QUOTE_MAX);
  if (b.data == NULL)
    return strdup("...");
  return b.data;
}

static int probe(vctx_t *v, const node_t *n, const mt_jval_t *x) {
  v->quiet++;
  int ok = validate(v, n, x);
  v->quiet--;
  return ok;
}

/* Validates an item or member: one level deeper in the instance, so the
 * schema levels spent at this location are counted afresh there. */
static int child(vctx_t *v, const node_t *n, const mt_jval_t *x,
                 const char *key, size_t len) {
  if (path_enter(v, key, len) != 0)
    return 0;
  int depth = v->depth;
  v->depth = 0;
  int ok = validate(v, n, x);
  v->depth = depth;
  v->npath--;
  return ok;
}

static unsigned type_of(const mt_jval_t *x) {
  switch (x->type) {
  case MT_JV_NULL:
    return T_NULL;
  case MT_JV_BOOL:
    return T_BOOLEAN;
  case MT_JV_NUMBER:
    return T_NUMBER | (mt_jval_is_integral(x) ? T_INTEGER : 0);
  case MT_JV_STRING:
    return T_STRING;
  case MT_JV_ARRAY:
    return T_ARRAY;
  case MT_JV_OBJECT:
    return T_OBJECT;
  }
  return 0;
}

/* The checks that never recurse are kept out of validate()'s frame
 * (NOINLINE), so that their message buffers do not ride along on every level
 * of a deep instance: that halves the stack a deep payload costs. */
#define NOINLINE __attribute__((noinline))

static NOINLINE int check_type(vctx_t *v, const node_t *n, const mt_jval_t *x) {
  if (n->types == 0 || (n->types & type_of(x)) != 0)
    return 1;
  if (v->quiet)
    return 0;
  char names[128] = "";
  for (size_t t = 0; t < 7; t++) {
    if (!(n->types & (1u << t)))
      continue;
    size_t k = strlen(names);
    snprintf(names + k, sizeof(names) - k, "%s\"%s\"", k ? " or " : "",
             type_names[t]);
  }
  report(v, "type", "is not of type %s", names);
  return 0;
}

static NOINLINE int check_enum_const(vctx_t *v, const node_t *n,
                                     const mt_jval_t *x) {
  int ok = 1;
  if (n->const_val != NULL && !mt_jval_equal(n->const_val, x)) {
    char *q = v->quiet ? NULL : quote(n->const_val);
    report(v, "const", "does not equal the constant %s", q ? q : "");
    free(q);
    ok = 0;
  }
  if (n->enum_vals != NULL && (ok || !v->quiet)) {
    const mt_jval_t *e = n->enum_vals;
    size_t i = 0;
    while (i < e->len && !mt_jval_equal(&e->u.items[i], x))
      i++;
    if (i == e->len) {
      char *q = v->quiet ? NULL : quote(e);
      report(v, "enum", "is not one of the allowed values %s", q ? q : "");
      free(q);
      ok = 0;
    }
  }
  return ok;
}

/* multipleOf: exact on integers; on doubles the quotient must be within
 * rounding error of an integer, so that 0.0075 is a multiple of 0.0001 as
 * the decimal texts say even though the doubles disagree. */
static int is_multiple(const mt_jval_t *x, const mt_jval_t *m) {
  if (x->is_int && m->is_int)
    return m->u.num.i == -1 || x->u.num.i % m->u.num.i == 0;
  double q = x->u.num.d / m->u.num.d;
  if (!isfinite(q))
    return 0;
  double r = round(q);
  return fabs(q - r) <= 1e-9 * fmax(1.0, fabs(r));
}

static void bound_failed(vctx_t *v, const char *keyword, const char *op,
                         const mt_jval_t *bound) {
  char *q = v->quiet ? NULL : quote(bound);
  report(v, keyword, "must be %s %s", op, q ? q : "");
  free(q);
}

static NOINLINE int check_number(vctx_t *v, const node_t *n,
                                 const mt_jval_t *x) {
  int ok = 1;
  if (n->minimum && mt_jval_num_cmp(x, n->minimum) < 0) {
    bound_failed(v, "minimum", ">=", n->minimum);
    ok = 0;
  }
  if (n->maximum && mt_jval_num_cmp(x, n->maximum) > 0) {
    bound_failed(v, "maximum", "<=", n->maximum);
    ok = 0;
  }
  if (n->xminimum && mt_jval_num_cmp(x, n->xminimum) <= 0) {
    bound_failed(v, "exclusiveMinimum", ">", n->xminimum);
    ok = 0;
  }
  if (n->xmaximum && mt_jval_num_cmp(x, n->xmaximum) >= 0) {
    bound_failed(v, "exclusiveMaximum", "<", n->xmaximum);
    ok = 0;
  }
  if (n->multiple_of && (ok || !v->quiet) && !is_multiple(x, n->multiple_of)) {
    char *q = v->quiet ? NULL : quote(n->multiple_of);
    report(v, "multipleOf", "is not a multiple of %s", q ? q : "");
    free(q);
    ok = 0;
  }
  return ok;
}

static size_t utf8_length(const char *s, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < n; i++)
    count += ((unsigned char)s[i] & 0xC0) != 0x80;
  return count;
}

static int regex_match(vctx_t *v, pcre2_code *re, const char *s, size_t n) {
  if (v->md == NULL) {
    v->md = pcre2_match_data_create(1, NULL);
    if (v->md == NULL) {
      v->oom = 1;
      return 0;
    }
  }
  /* The parser already checked the UTF-8. Patterns are not anchored: a
   * match anywhere in the string counts. */
  return pcre2_match(re, (PCRE2_SPTR)s, n, 0, PCRE2_NO_UTF_CHECK, v->md,
                     NULL) >= 0;
}

static NOINLINE int check_string(vctx_t *v, const node_t *n,
                                 const mt_jval_t *x) {
  int ok = 1;
  if (n->min_len >= 0 || n->max_len >= 0) {
    size_t len = utf8_length(x->u.str, x->len);
    if (n->min_len >= 0 && len < (uint64_t)n->min_len) {
      report(v, "minLength", "is shorter than %lld characters",
             (long long)n->min_len);
      ok = 0;
    }
    if (n->max_len >= 0 && len > (uint64_t)n->max_len) {
      report(v, "maxLength", "is longer than %lld characters",
             (long long)n->max_len);
      ok = 0;
    }
    if (!ok && v->quiet)
      return 0;
  }
  if (n->pattern && !regex_match(v, n->pattern, x->u.str, x->len)) {
    report(v, "pattern", "does not match pattern %s", n->pattern_src);
    ok = 0;
  }
  if (n->format && !mt__schema_format_check(n->format, x->u.str, x->len)) {
    report(v, "format", "is not a valid \"%s\"",
           mt__schema_format_name(n->format));
    ok = 0;
  }
  return ok;
}

static int check_contains(vctx_t *v, const node_t *n, const mt_jval_t *x) {
  size_t matches = 0;
  for (size_t i = 0; i < x->len; i++)
    matches += (size_t)probe(v, n->contains, &x->u.items[i]);
  int64_t min = n->min_contains >= 0 ? n->min_contains : 1;
  if ((int64_t)matches < min) {
    if (min == 1)
      report(v, "contains",
             "does not contain an item matching the contains schema");
    else
      report(v, "minContains",
             "contains %zu matching items, fewer than minContains %lld",
             matches, (long long)min);
    return 0;
  }
  if (n->max_contains >= 0 && (int64_t)matches > n->max_contains) {
    report(v, "maxContains",
           "contains %zu matching items, more than maxContains %lld", matches,
           (long long)n->max_contains);
    return 0;
  }
  return 1;
}

static NOINLINE int check_unique(vctx_t *v, const mt_jval_t *x) {
  for (size_t i = 0; i < x->len; i++)
    for (size_t k = i + 1; k < x->len; k++)
      if (mt_jval_equal(&x->u.items[i], &x->u.items[k])) {
        report(v, "uniqueItems", "has equal items at %zu and %zu", i, k);
        return 0;
      }
  return 1;
}

static int check_array(vctx_t *v, const node_t *n, const mt_jval_t *x) {
  int ok = 1;
  if (n->min_items >= 0 && x->len < (uint64_t)n->min_items) {
    report(v, "minItems", "has fewer than %lld items", (long long)n->min_items);
    ok = 0;
  }
  if (n->max_items >= 0 && x->len > (uint64_t)n->max_items) {
    report(v, "maxItems", "has more than %lld items", (long long)n->max_items);
    ok = 0;
  }
  if (n->unique_items && (ok || !v->quiet))
    ok &= check_unique(v, x);
  for (size_t i = 0; i < x->len && (ok || !v->quiet); i++) {
    const node_t *item = i < n->prefix.n ? n->prefix.v[i] : n->items;
    if (item != NULL)
      ok &= child(v, item, &x->u.items[i], NULL, i);
  }
  if (n->contains && (ok || !v->quiet))
    ok &= check_contains(v, n, x);
  return ok;
}

static const prop_t *find_prop(const prop_t *props, size_t n, const char *key,
                               size_t len) {
  prop_t probe_key = {key, len, NULL};
  return n ? bsearch(&probe_key, props, n, sizeof(prop_t), prop_cmp) : NULL;
}

static int has_member(const mt_jval_t *x, const char *key, size_t len) {
  for (size_t i = 0; i < x->len; i++)
    if (x->u.members[i].key_len == len &&
        memcmp(x->u.members[i].key, key, len) == 0)
      return 1;
  return 0;
}

/* properties, patternProperties and additionalProperties for one member. */
static int check_member(vctx_t *v, const node_t *n, const mt_jmember_t *m) {
  int ok = 1, matched = 0;
  const prop_t *p = find_prop(n->props, n->nprops, m->key, m->key_len);
  if (p != NULL) {
    matched = 1;
    ok &= child(v, p->schema, &m->value, m->key, m->key_len);
  }
  for (size_t i = 0; i < n->npprops && (ok || !v->quiet); i++) {
    if (!regex_match(v, n->pprops[i].re, m->key, m->key_len))
      continue;
    matched = 1;
    ok &= child(v, n->pprops[i].schema, &m->value, m->key, m->key_len);
  }
  if (matched || n->additional == NULL || !(ok || !v->quiet))
    return ok;
  if (n->additional->boolean == 0) {
    if (path_enter(v, m->key, m->key_len) == 0) {
      report(v, "additionalProperties", "additional property is not allowed");
      v->npath--;
    }
    return 0;
  }
  return ok & child(v, n->additional, &m->value, m->key, m->key_len);
}

static int check_property_name(vctx_t *v, const node_t *n,
                               const mt_jmember_t *m) {
  mt_jval_t name = {.type = MT_JV_STRING, .len = m->key_len};
  name.u.str = (char *)m->key;
  if (probe(v, n->property_names, &name))
    return 1;
  report(v, "propertyNames", "property name \"%s\" is not allowed", m->key);
  return 0;
}

static int check_dependencies(vctx_t *v, const node_t *n, const mt_jval_t *x) {
  int ok = 1;
  for (size_t i = 0; i < n->ndep_required && (ok || !v->quiet); i++) {
    const dep_t *d = &n->dep_required[i];
    if (!has_member(x, d->name, d->len))
      continue;
    for (size_t k = 0; k < d->names->len; k++) {
      const mt_jval_t *r = &d->names->u.items[k];
      if (has_member(x, r->u.str, r->len))
        continue;
      report(v, "dependentRequired",
             "missing property \"%s\", required when \"%s\" is present",
             r->u.str, d->name);
      ok = 0;
    }
  }
  for (size_t i = 0; i < n->ndep_schemas && (ok || !v->quiet); i++) {
    const prop_t *d = &n->dep_schemas[i];
    if (has_member(x, d->name, d->len))
      ok &= validate(v, d->schema, x);
  }
  return ok;
}

static int check_object(vctx_t *v, const node_t *n, const mt_jval_t *x) {
  int ok = 1;
  if (n->min_props >= 0 && x->len < (uint64_t)n->min_props) {
    report(v, "minProperties", "has fewer than %lld properties",
           (long long)n->min_props);
    ok = 0;
  }
  if (n->max_props >= 0 && x->len > (uint64_t)n->max_props) {
    report(v, "maxProperties", "has more than %lld properties",
           (long long)n->max_props);
    ok = 0;
  }
  if (n->required != NULL) {
    for (size_t i = 0; i < n->required->len && (ok || !v->quiet); i++) {
      const mt_jval_t *r = &n->required->u.items[i];
      if (has_member(x, r->u.str, r->len))
        continue;
      report(v, "required", "missing required property \"%s\"", r->u.str);
      ok = 0;
    }
  }
  int per_member = n->nprops || n->npprops || n->additional;
  for (size_t i = 0; i < x->len && (ok || !v->quiet); i++) {
    if (per_member)
      ok &= check_member(v, n, &x->u.members[i]);
    if (n->property_names && (ok || !v->quiet))
      ok &= check_property_name(v, n, &x->u.members[i]);
  }
  if (ok || !v->quiet)
    ok &= check_dependencies(v, n, x);
  return ok;
}

/* When no branch of anyOf/oneOf matched and exactly one branch accepts the
 * instance's type, that branch's own errors say more than "matched none"
 * (oneOf [null, {string, format: email}] given "x" reports the email). */
static const node_t *only_plausible(const nodes_t *list, const mt_jval_t *x) {
  const node_t *hit = NULL;
  for (size_t i = 0; i < list->n; i++) {
    const node_t *b = list->v[i];
    if (b->boolean == 0 || (b->types != 0 && !(b->types & type_of(x))))
      continue;
    if (hit != NULL || b->types == 0)
      return NULL;
    hit = b;
  }
  return hit;
}

static int check_any_of(vctx_t *v, const node_t *n, const mt_jval_t *x) {
  for (size_t i = 0; i < n->any_of.n; i++)
    if (probe(v, n->any_of.v[i], x))
      return 1;
  const node_t *only = v->quiet ? NULL : only_plausible(&n->any_of, x);
  if (only != NULL)
    return validate(v, only, x);
  report(v, "anyOf", "does not match any of the anyOf schemas");
  return 0;
}

static int check_one_of(vctx_t *v, const node_t *n, const mt_jval_t *x) {
  size_t first = 0, matches = 0;
  for (size_t i = 0; i < n->one_of.n; i++) {
    if (!probe(v, n->one_of.v[i], x))
      continue;
    if (++matches == 2) {
      report(v, "oneOf",
             "matches more than one of the oneOf schemas (%zu and %zu)", first,
             i);
      return 0;
    }
    first = i;
  }
  if (matches == 1)
    return 1;
  const node_t *only = v->quiet ? NULL : only_plausible(&n->one_of, x);
  if (only != NULL)
    return validate(v, only, x);
  report(v, "oneOf", "does not match any of the oneOf schemas");
  return 0;
}

static int check_applicators(vctx_t *v, const node_t *n, const mt_jval_t *x) {
  int ok = 1;
  for (size_t i = 0; i < n->all_of.n && (ok || !v->quiet); i++)
    ok &= validate(v, n->all_of.v[i], x);
  if (n->any_of.n && (ok || !v->quiet))
    ok &= check_any_of(v, n, x);
  if (n->one_of.n && (ok || !v->quiet))
    ok &= check_one_of(v, n, x);
  if (n->not_ && (ok || !v->quiet) && probe(v, n->not_, x)) {
    report(v, "not", "must not match the \"not\" schema");
    ok = 0;
  }
  if (n->if_ && (ok || !v->quiet)) {
    const node_t *branch = probe(v, n->if_, x) ? n->then_ : n->else_;
    if (branch != NULL)
      ok &= validate(v, branch, x);
  }
  return ok;
}

static int validate(vctx_t *v, const node_t *n, const mt_jval_t *x) {
  if (n->boolean >= 0) {
    if (!n->boolean)
      report(v, "false", "is not allowed (the schema is false)");
    return n->boolean;
  }
  if (v->too_deep)
    return 0;
  if (v->depth >= MAX_SCHEMA_DEPTH || v->frames >= MAX_FRAMES) {
    int quiet = v->quiet;
    v->quiet = 0; /* reported even inside a probe: it decides the verdict */
    if (v->depth >= MAX_SCHEMA_DEPTH)
      report(v, "$ref",
             "schema nesting deeper than %d levels at one place in the "
             "payload (a $ref cycle?)",
             MAX_SCHEMA_DEPTH);
    else
      report(v, "$ref",
             "deeper than %d schema levels in all; the payload nests too "
             "deep for this schema",
             MAX_FRAMES);
    v->quiet = quiet;
    v->too_deep = 1;
    return 0;
  }
  v->depth++;
  v->frames++;
  int ok = 1;
  if (n->ref)
    ok &= validate(v, n->ref, x);
  if (ok || !v->quiet)
    ok &= check_type(v, n, x);
  if ((ok || !v->quiet) && (n->enum_vals || n->const_val))
    ok &= check_enum_const(v, n, x);
  if (ok || !v->quiet) {
    switch (x->type) {
    case MT_JV_NUMBER:
      ok &= check_number(v, n, x);
      break;
    case MT_JV_STRING:
      ok &= check_string(v, n, x);
      break;
    case MT_JV_ARRAY:
      ok &= check_array(v, n, x);
      break;
    case MT_JV_OBJECT:
      ok &= check_object(v, n, x);
      break;
    default:
      break;
    }
  }
  if (ok || !v->quiet)
    ok &= check_applicators(v, n, x);
  v->depth--;
  v->frames--;
  return ok;
}

/* ---- entry points ---- */

void mt_schema_errors_free(mt_schema_error_t *errors, size_t n) {
  if (errors == NULL)
    return;
  for (size_t i = 0; i < n; i++) {
    free(errors[i].pointer);
    free(errors[i].message);
  }
  free(errors);
}

/* A pointer into a deeply nested payload can outgrow the whole message
 * buffer; in messages it keeps its first and last segments within about
 * POINTER_END bytes each ("/a/a/.../a/b"). The structured errors keep it
 * whole. Returns the length of the head; *tail is where the tail starts,
 * or NULL when the pointer is short enough to show whole. */
#define POINTER_END 80
static size_t pointer_ends(const char *ptr, const char **tail) {
  size_t len = strlen(ptr), head = POINTER_END;
  *tail = NULL;
  if (len <= 2 * POINTER_END + 4)
    return len;
  while (head > 1 && ptr[head] != '/')
    head--;
  const char *t = ptr + len - POINTER_END;
  while (*t != '\0' && *t != '/')
    t++;
  *tail = *t != '\0' ? t : ptr + len - POINTER_END;
  return head > 1 ? head : POINTER_END;
}

/* Writes the violations into err->msg, one per line, ending with
 * "... and N more" when they do not all fit. */
static void format_errors(const vctx_t *v, mt_err_t *err) {
  if (err == NULL)
    return;
  const size_t reserve = 40; /* room for the "... and N more" line */
  size_t used = 0, i;
  err->msg[0] = '\0';
  for (i = 0; i < v->nerrs; i++) {
    const mt_schema_error_t *e = &v->errs[i];
    const char *ptr = e->pointer[0] ? e->pointer : "(root)", *tail;
    size_t head = pointer_ends(ptr, &tail);
    size_t need = head + (tail ? strlen(tail) + 4 : 0) + strlen(e->message) + 3;
    if (used + need + reserve >= MT_ERR_MAX)
      break;
    used += (size_t)snprintf(err->msg + used, MT_ERR_MAX - used,
                             "%s%.*s%s%s: %s", i ? "\n" : "", (int)head, ptr,
                             tail ? "/..." : "", tail ? tail : "", e->message);
  }
  if (i < v->nerrs)
    snprintf(err->msg + used, MT_ERR_MAX - used, "%s... and %zu more",
             i ? "\n" : "", v->nerrs - i);
}

int mt_schema_validate(const mt_schema_t *s, const char *json, size_t len,
                       mt_schema_error_t **errors, size_t *nerrors,
                       mt_err_t *err) {
  vctx_t v = {.cappath = 32};
  mt_jdoc_t *doc = NULL;
  int rc;
  v.path = v.path0;
  if (errors != NULL) {
    *errors = NULL;
    *nerrors = 0;
  }
  rc = mt_jdoc_parse(json, len, &doc, err);
  if (rc != 0)
    goto done;
  int ok = validate(&v, s->root, mt_jdoc_root(doc)) && !v.too_deep;
  if (v.oom) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory validating a payload");
    goto done;
  }
  if (ok) {
    rc = 0;
    goto done;
  }
  rc = MT_EPAYLOAD;
  format_errors(&v, err);
  if (errors != NULL) {
    *errors = v.errs;
    *nerrors = v.nerrs;
    v.errs = NULL;
  }
done:
  mt_schema_errors_free(v.errs, v.nerrs);
  if (v.path != v.path0)
    free(v.path);
  pcre2_match_data_free(v.md);
  mt_jdoc_free(doc);
  return rc;
}

int mt_schema_check(const mt_schema_t *s, const char *json, size_t len,
                    mt_err_t *err) {
  return mt_schema_validate(s, json, len, NULL, NULL, err);
}
