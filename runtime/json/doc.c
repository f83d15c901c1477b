#include "json/doc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/read.h"
#include "json/write.h"

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

/* The builder: children of the open containers wait on scratch stacks and
 * are copied into the arena in one piece when their container closes (the
 * reader says how many there are). A member is pushed at its key, and its
 * value filled in when that value completes. */
typedef struct builder_s {
  mt_jdoc_t *doc;
  mt_err_t *err;
  mt_jval_t *vals;
  size_t nvals, capvals;
  mt_jmember_t *mems;
  size_t nmems, capmems;
} builder_t;

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

static int nomem(builder_t *b) {
  return mt_err_set(b->err, MT_ENOMEM, "out of memory parsing JSON");
}

static int push_val(builder_t *b, const mt_jval_t *v) {
  if (b->nvals == b->capvals) {
    size_t cap = b->capvals ? b->capvals * 2 : 64;
    mt_jval_t *vals = realloc(b->vals, cap * sizeof(*vals));
    if (vals == NULL)
      return nomem(b);
    b->vals = vals;
    b->capvals = cap;
  }
  b->vals[b->nvals++] = *v;
  return 0;
}

static int push_mem(builder_t *b, const mt_jmember_t *m) {
  if (b->nmems == b->capmems) {
    size_t cap = b->capmems ? b->capmems * 2 : 32;
    mt_jmember_t *mems = realloc(b->mems, cap * sizeof(*mems));
    if (mems == NULL)
      return nomem(b);
    b->mems = mems;
    b->capmems = cap;
  }
  b->mems[b->nmems++] = *m;
  return 0;
}

/* Copies the decoded string of tok into the arena, NUL-terminated. */
static int string_value(builder_t *b, const mt_jtok_t *tok, char **out) {
  char *o = arena_alloc(b->doc, tok->len + 1);
  if (o == NULL)
    return nomem(b);
  mt_jlex_string(tok, o);
  o[tok->len] = '\0';
  *out = o;
  return 0;
}

static int scalar_value(builder_t *b, const mt_jtok_t *tok, mt_jval_t *v) {
  switch (tok->type) {
  case MT_JT_STRING:
    v->type = MT_JV_STRING;
    v->len = tok->len;
    return string_value(b, tok, &v->u.str);
  case MT_JT_NUMBER:
    v->type = MT_JV_NUMBER;
    v->is_int = tok->is_int;
    v->u.num.i = tok->i;
    v->u.num.d = tok->d;
    /* 1.0 and 1e2 are integers to JSON Schema; storing them exactly makes
     * equality and comparisons with integer text trivial. */
    if (!v->is_int && isfinite(tok->d) && tok->d == floor(tok->d) &&
        fabs(tok->d) < 9223372036854775808.0) {
      v->is_int = 1;
      v->u.num.i = (int64_t)tok->d;
    }
    return 0;
  case MT_JT_TRUE:
  case MT_JT_FALSE:
    v->type = MT_JV_BOOL;
    v->u.b = tok->type == MT_JT_TRUE;
    return 0;
  default: v->type = MT_JV_NULL; return 0;
  }
}

/* Turns the last r->count children on the scratch stacks into the container
 * that just closed. */
static int container_value(builder_t *b, const mt_jread_t *r, mt_jval_t *v) {
  size_t n = r->count;
  v->len = n;
  if (r->tok.type == MT_JT_RBRACKET) {
    v->type = MT_JV_ARRAY;
    v->u.items = NULL;
    if (n > 0) {
      if ((v->u.items = arena_alloc(b->doc, n * sizeof(mt_jval_t))) == NULL)
        return nomem(b);
      memcpy(v->u.items, b->vals + b->nvals - n, n * sizeof(mt_jval_t));
    }
    b->nvals -= n;
    return 0;
  }
  v->type = MT_JV_OBJECT;
  v->u.members = NULL;
  if (n > 0) {
    if ((v->u.members = arena_alloc(b->doc, n * sizeof(mt_jmember_t))) == NULL)
      return nomem(b);
    memcpy(v->u.members, b->mems + b->nmems - n, n * sizeof(mt_jmember_t));
  }
  b->nmems -= n;
  return 0;
}

/* Duplicate member names are all kept, in text order (mt_jval_get finds
 * the first); the validator therefore checks every one of them, while the
 * Lua decoder, like PostgreSQL's jsonb, keeps the last. */
int mt_jdoc_parse(const char *text, size_t len, mt_jdoc_t **out,
                  mt_err_t *err) {
  builder_t b = {.err = err};
  mt_jread_t r;
  mt_jevent_t ev;
  int rc;
  *out = NULL;
  b.doc = calloc(1, sizeof(*b.doc));
  if (b.doc == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory parsing JSON");
  mt_jread_init(&r, text, len, err);
  while ((rc = mt_jread_next(&r, &ev)) == 0 && ev != MT_JE_DONE) {
    mt_jval_t v;
    memset(&v, 0, sizeof v);
    if (ev == MT_JE_ARRAY || ev == MT_JE_OBJECT)
      continue; /* its children come first */
    if (ev == MT_JE_KEY) {
      mt_jmember_t m;
      char *key = NULL;
      memset(&m, 0, sizeof m);
      if ((rc = string_value(&b, &r.tok, &key)) != 0)
        break;
      m.key = key;
      m.key_len = r.tok.len;
      if ((rc = push_mem(&b, &m)) != 0)
        break;
      continue;
    }
    rc = ev == MT_JE_SCALAR ? scalar_value(&b, &r.tok, &v)
                            : container_value(&b, &r, &v);
    if (rc != 0)
      break;
    if (r.depth == 0)
      b.doc->root = v;
    else if (r.in_object)
      b.mems[b.nmems - 1].value = v;
    else if ((rc = push_val(&b, &v)) != 0)
      break;
  }
  free(b.vals);
  free(b.mems);
  if (rc != 0) {
    mt_jdoc_free(b.doc);
    return rc;
  }
  *out = b.doc;
  return 0;
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

const char *mt_jval_get_str(const mt_jval_t *obj, const char *key) {
  const mt_jval_t *v = mt_jval_get(obj, key);
  return v != NULL && v->type == MT_JV_STRING ? v->u.str : NULL;
}

double mt_jval_get_num(const mt_jval_t *obj, const char *key, double dflt) {
  const mt_jval_t *v = mt_jval_get(obj, key);
  return v != NULL && v->type == MT_JV_NUMBER ? v->u.num.d : dflt;
}

const mt_jval_t *mt_jval_get_array(const mt_jval_t *obj, const char *key) {
  const mt_jval_t *v = mt_jval_get(obj, key);
  return v != NULL && v->type == MT_JV_ARRAY ? v : NULL;
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
  case MT_JV_NULL: return 1;
  case MT_JV_BOOL: return a->u.b == b->u.b;
  case MT_JV_NUMBER: return mt_jval_num_cmp(a, b) == 0;
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

static int write_number(mt_buf_t *out, const mt_jval_t *v) {
  if (v->is_int)
    return mt_buf_printf(out, "%lld", (long long)v->u.num.i);
  return mt_json_write_double(out, v->u.num.d, 0);
}

int mt_jval_write(mt_buf_t *out, const mt_jval_t *v, size_t max) {
  if (out->len > max)
    return mt_buf_puts(out, "...");
  int rc = 0;
  switch (v->type) {
  case MT_JV_NULL: return mt_buf_puts(out, "null");
  case MT_JV_BOOL: return mt_buf_puts(out, v->u.b ? "true" : "false");
  case MT_JV_NUMBER: return write_number(out, v);
  case MT_JV_STRING: return mt_json_write_string(out, v->u.str, v->len);
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
        rc = mt_json_write_string(out, m->key, m->key_len);
      if (rc == 0)
        rc = mt_buf_putc(out, ':');
      if (rc == 0)
        rc = mt_jval_write(out, &m->value, max);
    }
    return rc != 0 ? rc : mt_buf_putc(out, '}');
  }
  return rc;
}
