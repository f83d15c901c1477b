/*
 * Schema compilation: JSON Schema text -> a graph of node_t (internal.h),
 * done once per schema so that validation never reads schema text again.
 *
 * mt_schema_compile() works in three steps over the parsed document:
 *
 *   1. Index. Walk every subschema once, giving each its base URI and
 *      recording the resources ($id) and anchors ($anchor) it declares. A
 *      $ref may name an identifier declared anywhere, later or deeper in
 *      the document, so all of them must be known before any ref resolves.
 *   2. Compile. Turn each schema object into a node, keyword by keyword,
 *      refusing malformed keyword values with the schema path of the
 *      problem. A $ref is only queued here.
 *   3. Resolve. Follow each queued $ref to its target value and point the
 *      node at the target's node, compiling the target first if nothing
 *      else has (a $defs entry, say). Deferring this step is what lets a
 *      schema refer to itself: the target's node may be the one holding
 *      the ref.
 *
 * Every step keys its knowledge by the address of the JSON value (the
 * value -> entry map), so one value becomes one node however many parents
 * and refs reach it: shared subtrees are compiled once and cycles end.
 *
 * Ownership: the compiler_t and everything in it (map, URI strings, the
 * queue) live only for one mt_schema_compile() call. The schema returned
 * owns its document and every node; mt_schema_free() releases them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/internal.h"

const char *const mt__schema_type_names[MT__TYPE_COUNT] = {
    "null", "boolean", "object", "array", "number", "string", "integer"};

/* What the compiler knows about one schema value of the document: its base
 * URI (from the index pass) and its node once compiled. */
typedef struct entry_s {
  const mt_jval_t *key;
  const char *base;
  node_t *node;
} entry_t;

/* An identifier a $ref can name: a resource's absolute URI (no fragment)
 * or "<resource URI>#<anchor>". */
typedef struct named_s {
  const char *uri;
  const mt_jval_t *js;
} named_t;

/* A $ref waiting for step 3, with what it needs to be resolved and
 * reported on: the base URI in force where it was written, and its
 * schema path. */
typedef struct pending_s {
  node_t *node;
  const char *ref, *base;
  char *path;
} pending_t;

typedef struct compiler_s {
  mt_schema_t *s;
  mt_err_t *err;
  mt_buf_t path; /* schema path of the value being compiled */
  entry_t *map;  /* open addressing, mapcap a power of two */
  size_t mapcap, mapn;
  named_t *named;
  size_t nnamed, capnamed;
  pending_t *pending;
  size_t npending, cappending;
  const char *base; /* base URI of the schema being compiled */
  char **strs;      /* URIs made while compiling, freed at the end */
  size_t nstrs, capstrs;
} compiler_t;

static int bad(compiler_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Refuses the schema: MT_ECONFIG, naming the schema path in c->path. */
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

/* ---- the schema path, for messages ----
 * Pushed on the way into a keyword or member and popped on the way out.
 * An error returns without popping: the path then names where it was. */

/* Appends "/<escaped segment>"; returns the old length for path_pop(). */
static size_t path_push(compiler_t *c, const char *seg, size_t n) {
  size_t mark = c->path.len;
  mt__schema_pointer_append(&c->path, seg, n);
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

/* ---- the value -> entry map ---- */

/* An mt_jval_t holds int64s and pointers, so its address is 8-byte
 * aligned: the low bits carry nothing, and the Fibonacci multiplier
 * (2^64 / golden ratio) spreads the rest over the table. */
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

/* The entry for key, added empty if there is none; NULL if out of memory.
 * The table doubles at half full, which keeps the probe runs short. */
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

/* ---- URIs and identifiers ----
 * Base URIs are shared by every entry under a resource, so they are
 * allocated once, kept in c->strs, and freed with the compiler. */

/* Takes ownership of s (which may be NULL) and returns it, or NULL if it
 * could not be kept (s is then freed). */
static const char *keep(compiler_t *c, char *s) {
  if (s == NULL || mt__schema_grow((void **)&c->strs, &c->capstrs, c->nstrs,
                                   sizeof(char *)) != 0) {
    free(s);
    return NULL;
  }
  c->strs[c->nstrs++] = s;
  return s;
}

/* Resolves ref against base into a new string the compiler owns. */
static const char *uri_resolve(compiler_t *c, const char *base,
                               const char *ref) {
  mt_buf_t out = MT_BUF_INIT;
  mt__schema_uri_resolve(base, ref, &out);
  mt_buf_putc(&out, '\0'); /* makes an empty result non-NULL */
  return keep(c, out.data);
}

/* A copy of uri without its fragment, owned by the compiler. */
static const char *uri_strip_frag(compiler_t *c, const char *uri) {
  return keep(c, strndup(uri, strcspn(uri, "#")));
}

static int add_named(compiler_t *c, const char *uri, const mt_jval_t *js) {
  if (mt__schema_grow((void **)&c->named, &c->capnamed, c->nnamed,
                      sizeof(named_t)))
    return oom(c);
  c->named[c->nnamed++] = (named_t){uri, js};
  return 0;
}

/* A linear search: a document declares a handful of identifiers, and
 * lookups happen once per $ref at compile time. */
static const mt_jval_t *find_named(compiler_t *c, const char *uri) {
  for (size_t i = 0; i < c->nnamed; i++)
    if (strcmp(c->named[i].uri, uri) == 0)
      return c->named[i].js;
  return NULL;
}

/* ---- step 1: index base URIs, $id resources and $anchors ---- */

/* The keywords whose values are subschemas, by shape. The index pass walks
 * only these, because an "$id" anywhere else (inside "const", "enum" or an
 * unknown keyword) is data, not a resource. It includes keywords that are
 * not compiled (unevaluated*, contentSchema) so that identifiers declared
 * under them are still found, and draft-07's "definitions", which schemas
 * written for the older draft still use as a $defs. */
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

/* Records js under base, which js's own $id replaces for it and everything
 * below. Values of any type are recorded (a malformed subschema is refused
 * later, by the compile step, with its path). A value indexed before keeps
 * the base it had. */
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
      /* Put through the resolver so that the name is spelled exactly as a
       * $ref to it will be once resolved. */
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

/* ---- step 2: keyword compilers ----
 * One kw_* function per supported keyword, each given the keyword's value
 * with c->path pointing at it. They check the value's shape, since a
 * schema with a wrong keyword value is refused rather than half-applied. */

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

static int compile_regex(compiler_t *c, const char *src, size_t n,
                         pcre2_code **out) {
  char why[320];
  int rc = mt__schema_regex_compile(src, n, out, why, sizeof(why));
  if (rc == MT_ENOMEM)
    return oom(c);
  if (rc != 0)
    return bad(c, "invalid regular expression \"%s\": %s", src, why);
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
    while (t < MT__TYPE_COUNT &&
           strcmp(mt__schema_type_names[t], name->u.str) != 0)
      t++;
    if (t == MT__TYPE_COUNT)
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

/* The numeric bounds keep the JSON value, not a double, so that an int64
 * bound compares exactly against an int64 instance (mt_jval_num_cmp). */
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

/* A keyword whose value is one subschema. */
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

/* A keyword whose value is an array of subschemas. out->n counts only the
 * compiled ones, so a node refused halfway is still freed correctly. */
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

int mt__schema_prop_cmp(const void *a, const void *b) {
  const prop_t *x = a, *y = b;
  if (x->len != y->len)
    return x->len < y->len ? -1 : 1;
  return memcmp(x->name, y->name, x->len);
}

/* Compiles an object of name -> schema (properties, dependentSchemas),
 * sorted for the binary search validation does per instance member. */
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
  qsort(*out, *nout, sizeof(prop_t), mt__schema_prop_cmp);
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
    n->npprops += p->re != NULL; /* counted as soon as there is one to free */
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
  if (mt__schema_grow((void **)&c->pending, &c->cappending, c->npending,
                      sizeof(pending_t)) != 0)
    return oom(c);
  /* Resolved in step 3, once the whole document is compiled: the target
   * may not have been reached yet, or may be this very schema. */
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

/* The keywords that are compiled. $id and $anchor were read by the index
 * pass. Anything else is an annotation and is ignored: title, $comment,
 * $schema, unknown "x-" keys, but also $dynamicRef/$dynamicAnchor and
 * unevaluated*, which are not supported (schema.h says so), and $defs,
 * whose entries are compiled only when a $ref reaches them. */
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

/* A node with every keyword absent, linked into the schema's list at once
 * so that mt_schema_free() finds it whatever fails later. */
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
  /* The document keeps duplicate names, and each keyword fills its slot of
   * the node once: a second "properties" would be counted onto the first
   * one's array (a heap overflow the schema fuzzer found). A keyword given
   * twice is ambiguous anyway, so it is refused. */
  unsigned char seen[sizeof(keywords) / sizeof(keywords[0])] = {0};
  for (size_t i = 0; i < js->len; i++) {
    const mt_jmember_t *m = &js->u.members[i];
    for (size_t k = 0; k < sizeof(keywords) / sizeof(keywords[0]); k++) {
      if (strcmp(keywords[k].name, m->key) != 0)
        continue;
      size_t mark = path_push(c, m->key, m->key_len);
      if (seen[k]++)
        return bad(c, "the keyword is given twice");
      int rc = keywords[k].fn(c, n, &m->value);
      if (rc != 0)
        return rc;
      path_pop(c, mark);
      break;
    }
  }
  return 0;
}

/* The node for the schema value js: the one made before, if js was reached
 * already (a $ref target is usually also reached through its parent, and
 * maybe through other $refs), else a new one, compiled now. */
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
  /* The base from the index pass is the one $refs in js resolve against;
   * it is restored on the way out, like the path. */
  const char *outer = c->base;
  c->base = e->base ? e->base : outer;
  int rc = compile_keywords(c, n, js);
  c->base = outer;
  return rc;
}

/* ---- step 3: $ref resolution ---- */

/* Finds the value the absolute URI abs names: the part before '#' must be
 * a resource of this document (remote documents are not fetched); the
 * fragment is then empty (the resource itself), a JSON Pointer from the
 * resource, or an anchor name. *target_base is set to the resource's URI,
 * the base for a target the index pass did not reach. */
static const mt_jval_t *resolve_target(compiler_t *c, const char *abs,
                                       const char **target_base) {
  size_t n = strcspn(abs, "#");
  char *docuri = strndup(abs, n);
  char *frag = strdup(abs[n] == '#' ? abs + n + 1 : "");
  const mt_jval_t *doc = NULL, *v = NULL;
  if (docuri == NULL || frag == NULL)
    goto done;
  mt__schema_percent_decode(frag);
  doc = find_named(c, docuri);
  if (doc == NULL)
    goto done;
  if (frag[0] == '\0')
    v = doc;
  else if (frag[0] == '/')
    v = mt__schema_pointer_follow(doc, frag);
  else
    v = find_named(c, abs); /* anchors are recorded as "<uri>#<name>" */
  *target_base = uri_strip_frag(c, abs);
done:
  free(docuri);
  free(frag);
  return v;
}

/* Points every queued $ref's node at its target's node. A target not
 * compiled yet (a $defs entry; a pointer into a place the index pass does
 * not walk, which is indexed first) is compiled now, with c->path set to
 * the $ref's path: the one path known to lead to it, so a problem inside
 * it is reported below the $ref that brought it in. */
static int resolve_refs(compiler_t *c) {
  /* Compiling a target may queue refs of its own, hence no cached count. */
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

/* ---- entry points ---- */

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
  /* A root without $id is still the document "#..." refs resolve in. */
  if (rc == 0 && find_named(&c, "") == NULL)
    rc = add_named(&c, "", root);
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

/* Frees what a node owns; the subnodes it points to are in the schema's
 * list and freed in their own turn, which is why cycles are harmless. */
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
