/*
 * Validation: walks a compiled node graph (compile.c) over a parsed
 * instance and reports every violation with the JSON Pointer of the
 * offending value and the keyword that rejected it.
 *
 * The walk runs in one of two modes. Reporting, the default, runs every
 * check so that one pass lists every violation. Probing (v->quiet > 0) is
 * used where only a verdict is wanted: the branches of anyOf and oneOf, and
 * not, if, contains, propertyNames. A probe records nothing, and stops at
 * the first failure, since nothing more can change its answer. That is the
 * meaning of the `ok || !v->quiet` guard found before each further check.
 *
 * Everything a run changes is in its vctx_t, and the schema is only read,
 * so one compiled schema can serve several threads at once. The errors
 * array and its strings belong to the vctx_t until mt_schema_validate()
 * hands them to the caller (or frees them).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/limits.h"
#include "schema/internal.h"

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

/* One step of the instance location: a member name, or an array index. */
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
  /* The instance location as segments, turned into a pointer string only
   * when a violation is reported. The first 32 levels live in path0, so a
   * typical payload validates without allocating for it. */
  seg_t *path;
  size_t npath, cappath;
  seg_t path0[32];
  mt_schema_error_t *errs;
  size_t nerrs, caperrs;
  pcre2_match_data *md; /* made on the first regex match, reused after */
} vctx_t;

static int validate(vctx_t *v, const node_t *n, const mt_jval_t *x);

/* ---- instance locations and reports ---- */

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
    if (s->key == NULL)
      mt_buf_printf(&b, "/%zu", s->len);
    else
      mt__schema_pointer_append(&b, s->key, s->len);
  }
  return b.data;
}

static void report(vctx_t *v, const char *keyword, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records a violation at the current instance location. Out of memory is
 * remembered in v->oom, which the entry point turns into MT_ENOMEM. */
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
      mt__schema_grow((void **)&v->errs, &v->caperrs, v->nerrs,
                      sizeof(*v->errs)) != 0) {
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

/* ---- the walk ---- */

/* The verdict of n on x, without reporting anything. */
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
  case MT_JV_NULL: return MT__TYPE_NULL;
  case MT_JV_BOOL: return MT__TYPE_BOOLEAN;
  case MT_JV_NUMBER:
    /* 1.0 is an integer too, as the specification has it. */
    return MT__TYPE_NUMBER | (mt_jval_is_integral(x) ? MT__TYPE_INTEGER : 0);
  case MT_JV_STRING: return MT__TYPE_STRING;
  case MT_JV_ARRAY: return MT__TYPE_ARRAY;
  case MT_JV_OBJECT: return MT__TYPE_OBJECT;
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
  for (size_t t = 0; t < MT__TYPE_COUNT; t++) {
    if (!(n->types & (1u << t)))
      continue;
    size_t k = strlen(names);
    snprintf(names + k, sizeof(names) - k, "%s\"%s\"", k ? " or " : "",
             mt__schema_type_names[t]);
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
 * the decimal texts say even though the doubles disagree. The -1 test
 * keeps INT64_MIN % -1, which overflows, from ever running; the compiler
 * refuses divisors <= 0 today, so it is a guard, not a case. */
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

/* minLength and maxLength count code points, not bytes: every byte that
 * is not a UTF-8 continuation byte starts one. */
static size_t utf8_length(const char *s, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < n; i++)
    count += ((unsigned char)s[i] & 0xC0) != 0x80;
  return count;
}

static int regex_match(vctx_t *v, const pcre2_code *re, const char *s,
                       size_t n) {
  if (v->md == NULL) {
    v->md = pcre2_match_data_create(1, NULL);
    if (v->md == NULL) {
      v->oom = 1;
      return 0;
    }
  }
  return mt__schema_regex_match(re, v->md, s, n);
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

/* contains, minContains, maxContains. Every item is probed, even once the
 * minimum is met, because maxContains needs the full count. */
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

/* Pairwise, so quadratic: JSON equality (1 == 1.0, member order ignored)
 * has no cheap canonical form to hash, and the arrays of a task payload
 * are expected to be short. Reports the first equal pair only. */
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
  /* prefixItems covers the first items; `items` applies to the rest. */
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
  return n ? bsearch(&probe_key, props, n, sizeof(prop_t), mt__schema_prop_cmp)
           : NULL;
}

static int has_member(const mt_jval_t *x, const char *key, size_t len) {
  for (size_t i = 0; i < x->len; i++)
    if (x->u.members[i].key_len == len &&
        memcmp(x->u.members[i].key, key, len) == 0)
      return 1;
  return 0;
}

/* properties, patternProperties and additionalProperties for one member.
 * A member matched by properties or any pattern is not "additional"; all
 * matching patterns apply, not just the first. */
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
  /* additionalProperties: false gets a message of its own, at the
   * member, rather than "the schema is false". */
  if (n->additional->boolean == 0) {
    if (path_enter(v, m->key, m->key_len) == 0) {
      report(v, "additionalProperties", "additional property is not allowed");
      v->npath--;
    }
    return 0;
  }
  return ok & child(v, n->additional, &m->value, m->key, m->key_len);
}

/* propertyNames validates each name as a string instance, made on the
 * stack around the key; it is probed, and reported at the object. */
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
  /* dependentSchemas apply to the object itself, not to the member. */
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
 * (oneOf [null, {string, format: email}] given "x" reports the email). A
 * branch without "type" could be the one meant, so then there is no
 * single plausible branch. */
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
    return validate(v, only, x); /* fails again, reporting this time */
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
    return validate(v, only, x); /* fails again, reporting this time */
  report(v, "oneOf", "does not match any of the oneOf schemas");
  return 0;
}

/* The in-place applicators: subschemas applied to x itself. */
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

/* The verdict of node n on instance x, reporting violations unless
 * probing. The $ref target is applied first and alongside the node's own
 * keywords, as 2020-12 has it (siblings of $ref are not ignored). */
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
    /* Type-specific keywords ignore instances of other types. */
    switch (x->type) {
    case MT_JV_NUMBER: ok &= check_number(v, n, x); break;
    case MT_JV_STRING: ok &= check_string(v, n, x); break;
    case MT_JV_ARRAY: ok &= check_array(v, n, x); break;
    case MT_JV_OBJECT: ok &= check_object(v, n, x); break;
    default: break;
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
  /* A run that hit a budget is invalid even where the walk said otherwise
   * (a "not" around the exhausted branch, say). */
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
