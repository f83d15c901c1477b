#include "aws/sigv4.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALGORITHM "AWS4-HMAC-SHA256"

/* 9999-12-31T23:59:59Z: X-Amz-Date has room for four digits of year. */
#define MAX_TIME INT64_C(253402300799)

/* A header to sign: its lower-case name, its value as the caller gave it,
 * and its place in the request, which orders values of a repeated name. */
typedef struct hdr_s {
  const char *name;
  const char *value;
  size_t order;
} hdr_t;

/* A query parameter, encoded. The offsets are into the buffer the encoding
 * is written to; the pointers are set once it stops growing, for sorting. */
typedef struct qparam_s {
  size_t key_off, key_len, val_off, val_len;
  const char *key, *val;
} qparam_t;

/* ASCII classes spelt out: <ctype.h> answers by locale, and a signature
 * must not change with LC_CTYPE. */
static int is_alnum(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9');
}

static int is_unreserved(unsigned char c) {
  return is_alnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

/* RFC 9110 token characters: what a method or a header name is made of. */
static int is_token(const char *s) {
  if (*s == '\0')
    return 0;
  for (; *s != '\0'; s++)
    if (!is_alnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
      return 0;
  return 1;
}

/* Region and service names go into the credential scope between '/'
 * separators, so they are held to the letters AWS uses in them. */
static int is_scope_part(const char *s) {
  if (*s == '\0')
    return 0;
  for (; *s != '\0'; s++)
    if (!is_alnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
      return 0;
  return 1;
}

static int is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

/* True if v can go into a header: no control characters but tab, and a
 * line break only where it folds the value onto a continuation line (one
 * that begins with a space or a tab). A bare line break would end the
 * header, letting a value smuggle in headers of its own. */
static int is_header_value(const char *v) {
  for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
    if (*p == '\r') {
      if (p[1] != '\n')
        return 0;
    } else if (*p == '\n') {
      if (p[1] != ' ' && p[1] != '\t')
        return 0;
    } else if (is_control(*p) && *p != '\t') {
      return 0;
    }
  }
  return 1;
}

static int is_lws(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void hex_lower(const unsigned char *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Appends c as itself if unreserved, else as %XX with upper-case hex, as
 * SigV4's URI encoding wants. */
static int append_encoded(mt_buf_t *b, unsigned char c) {
  static const char digits[] = "0123456789ABCDEF";
  if (is_unreserved(c))
    return mt_buf_putc(b, (char)c);
  char esc[3] = {'%', digits[c >> 4], digits[c & 15]};
  return mt_buf_append(b, esc, sizeof esc);
}

static int sha256_hex(const void *data, size_t n, char hex[65], mt_err_t *err) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(n > 0 ? data : "", n, md, &len, EVP_sha256(), NULL) != 1 ||
      len != 32)
    return mt_err_set(err, MT_ESYS, "libcrypto: SHA-256 failed");
  hex_lower(md, 32, hex);
  return 0;
}

/* out = HMAC-SHA256(key, msg); 0 or -1. */
static int hmac(const unsigned char *key, size_t key_len, const char *msg,
                size_t msg_len, unsigned char out[32]) {
  unsigned int len = 0;
  if (key_len > INT_MAX)
    return -1;
  if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, msg_len,
           out, &len) == NULL ||
      len != 32)
    return -1;
  return 0;
}

int mt_sigv4_signing_key(const char *secret, const char *date,
                         const char *region, const char *service,
                         unsigned char key[MT_SIGV4_KEY_LEN], mt_err_t *err) {
  /* Two buffers taken in turn: HMAC() is not documented to allow its
   * output to overlap its key. */
  unsigned char a[32], b[32];
  size_t n = strlen(secret);
  unsigned char *k_secret = malloc(n + 4);
  int rc = 0;
  if (k_secret == NULL) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory deriving a signing key");
    goto done;
  }
  memcpy(k_secret, "AWS4", 4);
  memcpy(k_secret + 4, secret, n);
  if (hmac(k_secret, n + 4, date, strlen(date), a) != 0 ||
      hmac(a, 32, region, strlen(region), b) != 0 ||
      hmac(b, 32, service, strlen(service), a) != 0 ||
      hmac(a, 32, "aws4_request", 12, key) != 0)
    rc = mt_err_set(err, MT_ESYS, "libcrypto: HMAC-SHA256 failed");
done:
  /* Whoever has these can sign as the key's owner for the day. */
  if (k_secret != NULL)
    OPENSSL_cleanse(k_secret, n + 4);
  free(k_secret);
  OPENSSL_cleanse(a, sizeof a);
  OPENSSL_cleanse(b, sizeof b);
  return rc;
}

/* Everything that can be wrong with the input, found before any work is
 * done. Messages name the field, never its value: a value may be a secret,
 * or a secret pasted into the wrong field. */
static int check_input(const mt_sigv4_req_t *req, const mt_aws_creds_t *creds,
                       mt_err_t *err) {
  if (req->method == NULL || !is_token(req->method))
    return mt_err_set(err, MT_EINVAL, "sigv4: the method is not an HTTP token");
  if (req->path == NULL)
    return mt_err_set(err, MT_EINVAL, "sigv4: no path");
  if (req->path[0] != '\0' && req->path[0] != '/')
    return mt_err_set(err, MT_EINVAL,
                      "sigv4: the path does not begin with '/'");
  if (strpbrk(req->path, "?#") != NULL)
    return mt_err_set(err, MT_EINVAL,
                      "sigv4: the path holds '?' or '#' (pass the query "
                      "string apart, without '?')");
  if (req->nheaders > 0 && req->headers == NULL)
    return mt_err_set(err, MT_EINVAL, "sigv4: headers counted but not given");
  if (req->body == NULL && req->body_len > 0)
    return mt_err_set(err, MT_EINVAL, "sigv4: body length without a body");
  if (req->region == NULL || !is_scope_part(req->region))
    return mt_err_set(err, MT_EINVAL,
                      "sigv4: the region is empty or has characters other "
                      "than letters, digits, '-', '_' and '.'");
  if (req->service == NULL || !is_scope_part(req->service))
    return mt_err_set(err, MT_EINVAL,
                      "sigv4: the service name is empty or has characters "
                      "other than letters, digits, '-', '_' and '.'");
  if (req->time < 0 || req->time > MAX_TIME)
    return mt_err_set(err, MT_EINVAL,
                      "sigv4: the time is outside years 1970 to 9999");
  const char *id = creds->access_key_id;
  if (id == NULL || *id == '\0')
    return mt_err_set(err, MT_EINVAL, "sigv4: no access key id");
  for (const char *p = id; *p != '\0'; p++)
    if (is_control((unsigned char)*p) || strchr(" ,/", *p) != NULL)
      return mt_err_set(err, MT_EINVAL,
                        "sigv4: the access key id has a space, ',', '/' or "
                        "a control character");
  if (creds->secret_access_key == NULL || *creds->secret_access_key == '\0')
    return mt_err_set(err, MT_EINVAL, "sigv4: no secret access key");
  if (strlen(creds->secret_access_key) > INT_MAX - 4)
    return mt_err_set(err, MT_EINVAL,
                      "sigv4: the secret access key is too long");
  const char *token = creds->session_token;
  for (const char *p = token ? token : ""; *p != '\0'; p++)
    if (is_control((unsigned char)*p))
      return mt_err_set(err, MT_EINVAL,
                        "sigv4: the session token has a control character");
  return 0;
}

/* The canonical URI. Normalised, it is the path with empty and "."
 * segments dropped and each ".." taking the segment before it away; a
 * trailing '/' stays, unless nothing is left but the root. Unlike RFC
 * 3986, "/a/b/.." gives "/a", not "/a/": that is what AWS's SDKs (botocore,
 * aws-c-auth) sign. Each segment is URI-encoded, which for a path already
 * encoded for the wire is the double encoding services other than S3
 * check. */
static int append_canonical_uri(mt_buf_t *cr, const char *path, int normalize) {
  size_t start = cr->len;
  int rc = 0;
  if (!normalize) {
    for (const char *p = path; *p != '\0' && rc == 0; p++)
      rc = *p == '/' ? mt_buf_putc(cr, '/')
                     : append_encoded(cr, (unsigned char)*p);
    if (rc == 0 && cr->len == start)
      rc = mt_buf_putc(cr, '/');
    return rc;
  }
  const char *p = path;
  while (*p != '\0' && rc == 0) {
    const char *end = strchr(p, '/');
    if (end == NULL)
      end = p + strlen(p);
    size_t n = (size_t)(end - p);
    if (n == 2 && p[0] == '.' && p[1] == '.') {
      /* Back to the '/' that began the last segment written; the encoded
       * segments hold no '/' of their own. Above the root there is
       * nothing to take away. */
      while (cr->len > start && cr->data[cr->len - 1] != '/')
        cr->len--;
      if (cr->len > start) {
        cr->len--;
        cr->data[cr->len] = '\0';
      }
    } else if (n > 0 && !(n == 1 && p[0] == '.')) {
      rc = mt_buf_putc(cr, '/');
      for (size_t i = 0; i < n && rc == 0; i++)
        rc = append_encoded(cr, (unsigned char)p[i]);
    }
    p = *end == '/' ? end + 1 : end;
  }
  size_t plen = strlen(path);
  if (rc == 0 && (cr->len == start || (plen > 0 && path[plen - 1] == '/')))
    rc = mt_buf_putc(cr, '/');
  return rc;
}

/* Appends s[0, n) percent-decoded and encoded again. Returns 0, MT_ENOMEM,
 * or MT_EINVAL for a '%' without two hex digits after it. */
static int append_reencoded(mt_buf_t *b, const char *s, size_t n) {
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
      int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
      if (lo < 0)
        return MT_EINVAL;
      c = (unsigned char)(hi << 4 | lo);
      i += 2;
    }
    rc = append_encoded(b, c);
  }
  return rc;
}

static int qparam_cmp(const void *pa, const void *pb) {
  const qparam_t *a = pa, *b = pb;
  size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
  int c = memcmp(a->key, b->key, n);
  if (c != 0 || a->key_len != b->key_len)
    return c != 0 ? c : (a->key_len < b->key_len ? -1 : 1);
  n = a->val_len < b->val_len ? a->val_len : b->val_len;
  c = memcmp(a->val, b->val, n);
  if (c != 0 || a->val_len == b->val_len)
    return c;
  return a->val_len < b->val_len ? -1 : 1;
}

/* The canonical query string: parameters encoded, sorted by key then by
 * value (byte order of the encoded text, as AWS compares), each written
 * key=value even when the value is empty, joined with '&'. Empty
 * parameters ("a&&b", a trailing '&') are dropped: they do not reach the
 * service as parameters. */
static int append_canonical_query(mt_buf_t *cr, const char *query,
                                  mt_err_t *err) {
  mt_buf_t enc = MT_BUF_INIT;
  qparam_t *params = NULL;
  size_t n = 0, max = 1;
  int rc = 0;
  if (query == NULL || *query == '\0')
    return 0;
  for (const char *p = query; *p != '\0'; p++)
    max += *p == '&';
  params = calloc(max, sizeof *params);
  if (params == NULL) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory signing a request");
    goto done;
  }
  for (const char *p = query; *p != '\0';) {
    size_t len = strcspn(p, "&");
    if (len > 0) {
      const char *eq = memchr(p, '=', len);
      size_t klen = eq != NULL ? (size_t)(eq - p) : len;
      qparam_t *q = &params[n++];
      q->key_off = enc.len;
      rc = append_reencoded(&enc, p, klen);
      q->key_len = enc.len - q->key_off;
      q->val_off = enc.len;
      if (rc == 0 && eq != NULL)
        rc = append_reencoded(&enc, eq + 1, len - klen - 1);
      q->val_len = enc.len - q->val_off;
      if (rc == MT_EINVAL) {
        rc = mt_err_set(err, MT_EINVAL,
                        "sigv4: query parameter %zu has a '%%' that is not "
                        "followed by two hex digits",
                        n);
        goto done;
      }
      if (rc != 0) {
        rc = mt_err_set(err, rc, "out of memory signing a request");
        goto done;
      }
    }
    p += len;
    p += *p == '&';
  }
  /* Parameters that are all empty ("=", "&=") encode to nothing, leaving
   * enc.data NULL, and NULL + 0 is undefined behaviour (UBSan found it
   * under the sigv4 fuzzer): they point into "" then. */
  const char *base = enc.data != NULL ? enc.data : "";
  for (size_t i = 0; i < n; i++) {
    params[i].key = base + params[i].key_off;
    params[i].val = base + params[i].val_off;
  }
  qsort(params, n, sizeof *params, qparam_cmp);
  for (size_t i = 0; i < n && rc == 0; i++) {
    if ((i > 0 && (rc = mt_buf_putc(cr, '&')) != 0) ||
        (rc = mt_buf_append(cr, params[i].key, params[i].key_len)) != 0 ||
        (rc = mt_buf_putc(cr, '=')) != 0)
      break;
    rc = mt_buf_append(cr, params[i].val, params[i].val_len);
  }
  if (rc != 0)
    rc = mt_err_set(err, rc, "out of memory signing a request");
done:
  free(params);
  mt_buf_free(&enc);
  return rc;
}

static int hdr_cmp(const void *pa, const void *pb) {
  const hdr_t *a = pa, *b = pb;
  int c = strcmp(a->name, b->name);
  if (c != 0)
    return c;
  /* qsort is not stable; the request's order breaks the tie, so that
   * repeated headers keep their values in the order they are sent. */
  return a->order < b->order ? -1 : a->order > b->order;
}

/* True if the lower-case name is one of the headers the signer adds. */
static int is_ours(const char *name, unsigned flags) {
  return strcmp(name, "authorization") == 0 ||
         strcmp(name, "x-amz-date") == 0 ||
         strcmp(name, "x-amz-security-token") == 0 ||
         ((flags & MT_SIGV4_CONTENT_SHA256) &&
          strcmp(name, "x-amz-content-sha256") == 0);
}

/* Gathers the headers to sign into *out (one block: the array, then the
 * caller's names lower-cased), sorted by name: the caller's, which must
 * include Host and none of the ones we add, and ours. */
static int collect_headers(const mt_sigv4_req_t *req, const char *token,
                           const mt_sigv4_t *sig, hdr_t **out, size_t *count,
                           mt_err_t *err) {
  size_t names_len = 0, n = 0;
  int has_host = 0, rc = 0;
  for (size_t i = 0; i < req->nheaders; i++) {
    const mt_aws_header_t *h = &req->headers[i];
    if (h->name == NULL || !is_token(h->name))
      return mt_err_set(err, MT_EINVAL,
                        "sigv4: header %zu has an empty or invalid name",
                        i + 1);
    /* Header names are not secret; values may be, and are not quoted. */
    if (h->value == NULL || !is_header_value(h->value))
      return mt_err_set(err, MT_EINVAL,
                        "sigv4: header %s has no value, a control character "
                        "or a line break that is not a fold",
                        h->name);
    names_len += strlen(h->name) + 1;
  }
  size_t max = req->nheaders + 3;
  hdr_t *hs = malloc(max * sizeof *hs + names_len);
  if (hs == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory signing a request");
  char *names = (char *)(hs + max);
  for (size_t i = 0; i < req->nheaders; i++) {
    const char *name = req->headers[i].name;
    size_t len = strlen(name);
    /* By hand rather than tolower(), which answers by locale. */
    for (size_t j = 0; j <= len; j++) {
      char c = name[j];
      names[j] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    if (is_ours(names, req->flags)) {
      rc = mt_err_set(err, MT_EINVAL, "sigv4: header %s is one the signer adds",
                      name);
      goto done;
    }
    has_host |= strcmp(names, "host") == 0;
    hs[n] = (hdr_t){names, req->headers[i].value, n};
    n++;
    names += len + 1;
  }
  if (!has_host) {
    rc = mt_err_set(err, MT_EINVAL,
                    "sigv4: the request has no Host header, which SigV4 "
                    "always signs");
    goto done;
  }
  /* Ours come after the caller's, whose names all differ from them. */
  hs[n] = (hdr_t){"x-amz-date", sig->amz_date, n};
  n++;
  if (token != NULL && !(req->flags & MT_SIGV4_UNSIGNED_TOKEN)) {
    hs[n] = (hdr_t){"x-amz-security-token", token, n};
    n++;
  }
  if (req->flags & MT_SIGV4_CONTENT_SHA256) {
    hs[n] = (hdr_t){"x-amz-content-sha256", sig->payload_hash, n};
    n++;
  }
  qsort(hs, n, sizeof *hs, hdr_cmp);
done:
  if (rc != 0) {
    free(hs);
    hs = NULL;
    n = 0;
  }
  *out = hs;
  *count = n;
  return rc;
}

/* Appends v trimmed, with each run of whitespace inside it (folds
 * included) made one space. */
static int append_trimmed(mt_buf_t *b, const char *v) {
  int rc = 0, space = 0, any = 0;
  for (const char *p = v; *p != '\0' && rc == 0; p++) {
    if (is_lws(*p)) {
      space = 1;
      continue;
    }
    if (space && any)
      rc = mt_buf_putc(b, ' ');
    if (rc == 0)
      rc = mt_buf_putc(b, *p);
    space = 0;
    any = 1;
  }
  return rc;
}

/* The canonical headers ("name:value\n" each, values of a repeated name
 * joined with ',') and, into signed_list, their names joined with ';'. */
static int append_canonical_headers(mt_buf_t *cr, mt_buf_t *signed_list,
                                    const hdr_t *hs, size_t n) {
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0;) {
    size_t j = i;
    if ((i > 0 && (rc = mt_buf_putc(signed_list, ';')) != 0) ||
        (rc = mt_buf_puts(signed_list, hs[i].name)) != 0 ||
        (rc = mt_buf_printf(cr, "%s:", hs[i].name)) != 0)
      break;
    for (; j < n && strcmp(hs[j].name, hs[i].name) == 0 && rc == 0; j++) {
      if (j > i)
        rc = mt_buf_putc(cr, ',');
      if (rc == 0)
        rc = append_trimmed(cr, hs[j].value);
    }
    if (rc == 0)
      rc = mt_buf_putc(cr, '\n');
    i = j;
  }
  return rc;
}

static int format_date(int64_t t, char out[17]) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (gmtime_r(&tt, &tm) == NULL ||
      strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
    return -1;
  return 0;
}

/* Task 1 of the signing: the canonical request, into out, and the signed
 * header list, into signed_list. */
static int build_canonical_request(const mt_sigv4_req_t *req, const hdr_t *hs,
                                   size_t nhs, mt_buf_t *cr,
                                   mt_buf_t *signed_list, const char *hash,
                                   mt_err_t *err) {
  const char *path = req->path[0] != '\0' ? req->path : "/";
  int normalize = !(req->flags & MT_SIGV4_NO_NORMALIZE);
  int rc;
  if ((rc = mt_buf_printf(cr, "%s\n", req->method)) != 0 ||
      (rc = append_canonical_uri(cr, path, normalize)) != 0 ||
      (rc = mt_buf_putc(cr, '\n')) != 0)
    return mt_err_set(err, rc, "out of memory signing a request");
  if ((rc = append_canonical_query(cr, req->query, err)) != 0)
    return rc;
  if ((rc = mt_buf_putc(cr, '\n')) != 0 ||
      (rc = append_canonical_headers(cr, signed_list, hs, nhs)) != 0 ||
      (rc = mt_buf_printf(cr, "\n%s\n%s", signed_list->data, hash)) != 0)
    return mt_err_set(err, rc, "out of memory signing a request");
  return 0;
}

int mt_sigv4_sign(const mt_sigv4_req_t *req, const mt_aws_creds_t *creds,
                  mt_sigv4_t *out, mt_err_t *err) {
  mt_buf_t signed_list = MT_BUF_INIT;
  hdr_t *hs = NULL;
  size_t nhs = 0;
  unsigned char key[MT_SIGV4_KEY_LEN], mac[32];
  char cr_hash[65], date[9];
  const char *token;
  int rc;

  if (req == NULL || creds == NULL || out == NULL)
    return mt_err_set(err, MT_EINVAL,
                      "sigv4: no request, credentials or result");
  /* A result passed again keeps its buffers for this one. */
  mt_buf_reset(&out->authorization);
  mt_buf_reset(&out->canonical_request);
  mt_buf_reset(&out->string_to_sign);
  out->nheaders = 0;
  token = creds->session_token;
  if (token != NULL && *token == '\0')
    token = NULL;
  if ((rc = check_input(req, creds, err)) != 0)
    goto done;
  if (format_date(req->time, out->amz_date) != 0) {
    rc = mt_err_set(err, MT_ESYS, "sigv4: cannot format the time");
    goto done;
  }
  memcpy(date, out->amz_date, 8);
  date[8] = '\0';
  rc = sha256_hex(req->body, req->body_len, out->payload_hash, err);
  if (rc != 0 || (rc = collect_headers(req, token, out, &hs, &nhs, err)) != 0)
    goto done;

  rc = build_canonical_request(req, hs, nhs, &out->canonical_request,
                               &signed_list, out->payload_hash, err);
  if (rc != 0 ||
      (rc = sha256_hex(out->canonical_request.data, out->canonical_request.len,
                       cr_hash, err)) != 0)
    goto done;

  /* Task 2: the string to sign. */
  rc = mt_buf_printf(&out->string_to_sign,
                     ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", out->amz_date,
                     date, req->region, req->service, cr_hash);
  if (rc != 0) {
    rc = mt_err_set(err, rc, "out of memory signing a request");
    goto done;
  }

  /* Task 3: the signature, with a key derived for the request's day. */
  rc = mt_sigv4_signing_key(creds->secret_access_key, date, req->region,
                            req->service, key, err);
  if (rc != 0)
    goto done;
  if (hmac(key, sizeof key, out->string_to_sign.data, out->string_to_sign.len,
           mac) != 0) {
    rc = mt_err_set(err, MT_ESYS, "libcrypto: HMAC-SHA256 failed");
    goto done;
  }
  hex_lower(mac, sizeof mac, out->signature);
  rc = mt_buf_printf(&out->authorization,
                     ALGORITHM " Credential=%s/%s/%s/%s/aws4_request, "
                               "SignedHeaders=%s, Signature=%s",
                     creds->access_key_id, date, req->region, req->service,
                     signed_list.data, out->signature);
  if (rc != 0) {
    rc = mt_err_set(err, rc, "out of memory signing a request");
    goto done;
  }

  /* The headers to send. The token goes out even when it is not signed:
   * the service needs it to find the temporary key. */
  mt_aws_header_t *add = out->headers;
  add[out->nheaders++] = (mt_aws_header_t){"X-Amz-Date", out->amz_date};
  if (token != NULL)
    add[out->nheaders++] = (mt_aws_header_t){"X-Amz-Security-Token", token};
  if (req->flags & MT_SIGV4_CONTENT_SHA256)
    add[out->nheaders++] =
        (mt_aws_header_t){"x-amz-content-sha256", out->payload_hash};
  add[out->nheaders++] =
      (mt_aws_header_t){"Authorization", out->authorization.data};

done:
  OPENSSL_cleanse(key, sizeof key);
  OPENSSL_cleanse(mac, sizeof mac);
  free(hs);
  mt_buf_free(&signed_list);
  if (rc != 0)
    mt_sigv4_free(out);
  return rc;
}

void mt_sigv4_free(mt_sigv4_t *out) {
  if (out == NULL)
    return;
  mt_buf_free(&out->authorization);
  mt_buf_free(&out->canonical_request);
  mt_buf_free(&out->string_to_sign);
  memset(out, 0, sizeof *out);
}
