/*
 * The string work behind $id and $ref: RFC 3986 reference resolution,
 * percent-decoding of fragments, and JSON Pointers (RFC 6901), both
 * written (schema and instance locations in messages) and followed ($ref
 * fragments). Plain string code: it knows the schema document's value type
 * but nothing of nodes or compilation, and every result goes into a buffer
 * or a value the caller owns.
 *
 * Only what $id/$ref need is implemented. URIs are compared as written,
 * without RFC 3986 section 6 normalisation (case, percent-encoding): the
 * identifiers of one document are expected to be spelled one way.
 */
#include <stdlib.h>
#include <string.h>

#include "schema/internal.h"

/* ---- reference resolution (RFC 3986 section 5.2) ---- */

/* A component of a URI; `has` tells an empty component ("a:?#") from an
 * absent one, which resolution treats differently. */
typedef struct span_s {
  const char *s;
  size_t n;
  int has;
} span_t;

typedef struct uri_s {
  span_t scheme, auth, path, query, frag;
} uri_t;

/* Splits u into its five components (RFC 3986 appendix B, without the
 * regex). The spans point into u. */
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
  out->path = (span_t){p, k, 1}; /* a URI always has a path, maybe empty */
  p += k;
  if (*p == '?') {
    k = strcspn(++p, "#");
    out->query = (span_t){p, k, 1};
    p += k;
  }
  if (*p == '#')
    out->frag = (span_t){p + 1, strlen(p + 1), 1};
}

/* RFC 3986 5.2.4: appends the path in[0..n) to b with its "." and ".."
 * segments removed. The output so far in b (scheme, authority) is never
 * touched: ".." stops at the start of the path. */
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
      /* Drop the last output segment and its '/'. */
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

/* RFC 3986 5.2.2, "strict" (a scheme in ref always wins). Base may be ""
 * (a root schema without $id): then "#foo" resolves to "#foo" and a
 * relative path stays relative, which is all in-document refs need. */
void mt__schema_uri_resolve(const char *base, const char *ref, mt_buf_t *out) {
  uri_t b, r;
  uri_split(base, &b);
  uri_split(ref, &r);
  const uri_t *auth_from = r.scheme.has || r.auth.has ? &r : &b;
  put_span(out, "", r.scheme.has ? r.scheme : b.scheme);
  if (out->len > 0)
    mt_buf_putc(out, ':');
  put_span(out, "//", auth_from->auth);
  if (r.scheme.has || r.auth.has || (r.path.n > 0 && r.path.s[0] == '/')) {
    remove_dots(out, r.path.s, r.path.n);
    put_span(out, "?", r.query);
  } else if (r.path.n == 0) {
    /* Same document: "#frag" or "?query" against base. */
    mt_buf_append(out, b.path.s, b.path.n);
    put_span(out, "?", r.query.has ? r.query : b.query);
  } else {
    /* A relative path replaces base's last segment (5.2.3 "merge"). */
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
    remove_dots(out, merged.data, merged.len);
    mt_buf_free(&merged);
    put_span(out, "?", r.query);
  }
  put_span(out, "#", r.frag);
}

/* ---- percent-decoding ---- */

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* A fragment may escape characters a JSON Pointer segment holds ('%', '"',
 * spaces), so "#/$defs/a%25b" names the key "a%b". A '%' not followed by
 * two hex digits is kept as it is. */
void mt__schema_percent_decode(char *s) {
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

/* ---- JSON Pointers (RFC 6901) ---- */

void mt__schema_pointer_append(mt_buf_t *b, const char *seg, size_t n) {
  mt_buf_putc(b, '/');
  for (size_t i = 0; i < n; i++) {
    if (seg[i] == '~')
      mt_buf_puts(b, "~0");
    else if (seg[i] == '/')
      mt_buf_puts(b, "~1");
    else
      mt_buf_putc(b, seg[i]);
  }
}

/* Each segment is unescaped into a fixed buffer: a key longer than it is
 * cut, which only matters for a $ref into a member with a name over 1 KB.
 * On an array the segment must be a decimal index within bounds. */
const mt_jval_t *mt__schema_pointer_follow(const mt_jval_t *v,
                                           const char *ptr) {
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
