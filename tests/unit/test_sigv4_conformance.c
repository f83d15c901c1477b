/*
 * Runs AWS's SigV4 signing suite (aws-c-auth's
 * tests/aws-signing-test-suite/v4) against aws/sigv4.
 *
 * The suite lives outside the repository, in ../shared/conformance/sigv4
 * relative to the repository root (found from $MT_SOURCE_DIR, else the
 * checkout the tests were built from, else by walking up from the working
 * directory). When it is absent the test is skipped (exit 77), naming the
 * path it looked for.
 *
 * Every case folder holds context.json (credentials, region, service,
 * timestamp and the signer's options), request.txt (the request before
 * signing) and the expected texts. For header signing, the one we do, the
 * canonical request, the string to sign, the signature and the
 * Authorization header must all match, and the headers the signer says to
 * add must be the ones header-signed-request.txt adds. The query-*.txt
 * files are presigned URLs, which we do not make: each case's are listed as
 * not applicable, not counted as passed.
 */
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "aws/sigv4.h"
#include "json/doc.h"
#include "scheduler/tz.h"
#include "test.h"

#define SUITE_DIR "../shared/conformance/sigv4/tests/aws-signing-test-suite/v4"

/* More headers than any case has. */
#define MAX_HEADERS 32

typedef struct tally_s {
  int passed, failed;
} tally_t;

/* request.txt, parsed in place: the strings point into text. */
typedef struct request_s {
  char *text;
  const char *method, *path, *query, *body;
  size_t body_len;
  mt_aws_header_t headers[MAX_HEADERS];
  size_t nheaders;
} request_t;

/* The contents of dir/name with every '\r' dropped (the suite may be
 * checked out with CRLF line ends), or NULL if it cannot be read. */
static char *read_text(const char *dir, const char *name) {
  char path[PATH_MAX + 600];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  mt_buf_t b = MT_BUF_INIT;
  int c;
  while ((c = fgetc(f)) != EOF)
    if (c != '\r' && mt_buf_putc(&b, (char)c) != 0)
      break;
  fclose(f);
  if (b.data == NULL && mt_buf_puts(&b, "") != 0)
    return NULL;
  return b.data;
}

static int exists(const char *dir, const char *name) {
  char path[PATH_MAX + 600];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return stat(path, &st) == 0;
}

/* Drops trailing line ends: the expected texts may or may not end with
 * one, and none of the texts compared ends with one of its own. */
static void chomp(char *s) {
  size_t n = strlen(s);
  while (n > 0 && s[n - 1] == '\n')
    s[--n] = '\0';
}

/* Parses "METHOD target HTTP/1.1", header lines (a line that begins with
 * a space or a tab continues the one before, and the value keeps the line
 * break, as it would arrive), an empty line and the body. The target may
 * hold spaces (get-space-*), so it ends at the line's last space. Returns
 * NULL or what is wrong. */
static const char *parse_request(request_t *r) {
  char *p = r->text, *eol = strchr(p, '\n');
  if (eol == NULL)
    return "no request line";
  *eol = '\0';
  char *sp1 = strchr(p, ' '), *sp2 = strrchr(p, ' ');
  if (sp1 == NULL || sp2 == sp1 || strncmp(sp2 + 1, "HTTP/", 5) != 0)
    return "bad request line";
  *sp1 = *sp2 = '\0';
  r->method = p;
  r->path = sp1 + 1;
  char *q = strchr(sp1 + 1, '?');
  if (q != NULL) {
    *q = '\0';
    r->query = q + 1;
  }
  p = eol + 1;
  while (*p != '\0' && *p != '\n') {
    eol = strchr(p, '\n');
    while (eol != NULL && (eol[1] == ' ' || eol[1] == '\t'))
      eol = strchr(eol + 1, '\n');
    char *end = eol != NULL ? eol : p + strlen(p);
    char *colon = memchr(p, ':', (size_t)(end - p));
    if (colon == NULL)
      return "header line without ':'";
    if (r->nheaders == MAX_HEADERS)
      return "too many headers";
    *colon = '\0';
    r->headers[r->nheaders++] = (mt_aws_header_t){p, colon + 1};
    p = eol != NULL ? eol + 1 : end;
    *end = '\0';
  }
  if (*p == '\n') {
    r->body = p + 1;
    r->body_len = strlen(p + 1);
  }
  return NULL;
}

static const char *get_string(const mt_jval_t *obj, const char *key) {
  const mt_jval_t *v = mt_jval_get(obj, key);
  return v != NULL && v->type == MT_JV_STRING ? v->u.str : NULL;
}

static int get_bool(const mt_jval_t *obj, const char *key) {
  const mt_jval_t *v = mt_jval_get(obj, key);
  return v != NULL && v->type == MT_JV_BOOL && v->u.b;
}

/* Reads context.json into the request and credentials (strings point into
 * doc). A key we do not know fails the case: it would be an option of the
 * signer that we silently ignored. Returns NULL or what is wrong. */
static const char *read_context(const mt_jval_t *ctx, mt_sigv4_req_t *req,
                                mt_aws_creds_t *creds) {
  static const char *const known[] = {
      "credentials", "region", "service", "timestamp", "normalize", "sign_body",
      "omit_session_token",
      /* How long a presigned URL lives: query signing only. */
      "expiration_in_seconds"};
  if (ctx == NULL || ctx->type != MT_JV_OBJECT)
    return "context.json is not an object";
  for (size_t i = 0; i < ctx->len; i++) {
    size_t k = 0;
    while (k < sizeof known / sizeof *known &&
           strcmp(ctx->u.members[i].key, known[k]) != 0)
      k++;
    if (k == sizeof known / sizeof *known) {
      static char msg[160];
      snprintf(msg, sizeof msg,
               "context.json has key \"%.64s\", which this test does not "
               "know",
               ctx->u.members[i].key);
      return msg;
    }
  }
  const mt_jval_t *c = mt_jval_get(ctx, "credentials");
  const char *ts = get_string(ctx, "timestamp");
  if (c == NULL || ts == NULL)
    return "context.json lacks credentials or timestamp";
  creds->access_key_id = get_string(c, "access_key_id");
  creds->secret_access_key = get_string(c, "secret_access_key");
  creds->session_token = get_string(c, "token");
  req->region = get_string(ctx, "region");
  req->service = get_string(ctx, "service");
  if (mt_time_parse_rfc3339(ts, &req->time) != 0)
    return "context.json has a bad timestamp";
  /* normalize is the suite's default; the flag is its absence. */
  const mt_jval_t *norm = mt_jval_get(ctx, "normalize");
  if (norm != NULL && norm->type == MT_JV_BOOL && !norm->u.b)
    req->flags |= MT_SIGV4_NO_NORMALIZE;
  if (get_bool(ctx, "sign_body"))
    req->flags |= MT_SIGV4_CONTENT_SHA256;
  if (get_bool(ctx, "omit_session_token"))
    req->flags |= MT_SIGV4_UNSIGNED_TOKEN;
  return NULL;
}

/* The value of header name in a request text (first match), or NULL. The
 * returned text runs to the end of its line, which is cut there. */
static char *find_header(char *text, const char *name) {
  size_t n = strlen(name);
  for (char *line = strchr(text, '\n'); line != NULL && line[1] != '\n';
       line = strchr(line + 1, '\n')) {
    if (strncasecmp(line + 1, name, n) == 0 && line[1 + n] == ':') {
      char *v = line + 2 + n, *end = strchr(v, '\n');
      if (end != NULL)
        *end = '\0';
      return v;
    }
  }
  return NULL;
}

static int compare(const char *name, const char *what, char *expected,
                   const char *got) {
  if (expected == NULL) {
    printf("FAIL %s: %s: expected file missing\n", name, what);
    return 0;
  }
  chomp(expected);
  if (got != NULL && strcmp(expected, got) == 0)
    return 1;
  printf("FAIL %s: %s differs\n--- expected\n%s\n--- got\n%s\n---\n", name,
         what, expected, got ? got : "(null)");
  return 0;
}

/* Every header the signer says to add must be in the signed request with
 * the same value (the unsigned session token of post-sts-header-after
 * included). */
static int check_added(const char *name, const char *dir,
                       const mt_sigv4_t *sig) {
  int ok = 1;
  for (size_t i = 0; i < sig->nheaders; i++) {
    char *text = read_text(dir, "header-signed-request.txt");
    const char *v = text ? find_header(text, sig->headers[i].name) : NULL;
    if (v == NULL || strcmp(v, sig->headers[i].value) != 0) {
      printf("FAIL %s: header %s to add is %s in the signed request\n", name,
             sig->headers[i].name, v == NULL ? "missing" : "different");
      ok = 0;
    }
    free(text);
  }
  return ok;
}

static void run_case(const char *suite, const char *name, tally_t *t) {
  char dir[PATH_MAX + 512];
  mt_err_t err = {{0}};
  mt_jdoc_t *doc = NULL;
  request_t r = {0};
  mt_sigv4_req_t req = {0};
  mt_aws_creds_t creds = {0};
  mt_sigv4_t sig = {0};
  char *ctx_text = NULL, *cr = NULL, *sts = NULL, *signature = NULL,
       *signed_req = NULL;
  const char *why = NULL;
  int ok = 0;

  snprintf(dir, sizeof dir, "%s/%s", suite, name);
  if (exists(dir, "query-canonical-request.txt"))
    printf("not applicable: %s/query-*.txt: a presigned URL (query-string "
           "signing); we sign with the Authorization header only\n",
           name);
  if (!exists(dir, "header-canonical-request.txt")) {
    printf("not applicable: %s: no header-*.txt, nothing to compare for "
           "header signing\n",
           name);
    return;
  }
  ctx_text = read_text(dir, "context.json");
  r.text = read_text(dir, "request.txt");
  if (ctx_text == NULL || r.text == NULL)
    why = "context.json or request.txt unreadable";
  else if (mt_jdoc_parse(ctx_text, strlen(ctx_text), &doc, &err) != 0)
    why = err.msg;
  else if ((why = read_context(mt_jdoc_root(doc), &req, &creds)) == NULL &&
           (why = parse_request(&r)) == NULL) {
    req.method = r.method;
    req.path = r.path;
    req.query = r.query;
    req.headers = r.headers;
    req.nheaders = r.nheaders;
    req.body = r.body;
    req.body_len = r.body_len;
    if (mt_sigv4_sign(&req, &creds, &sig, &err) != 0)
      why = err.msg;
  }
  if (why != NULL) {
    printf("FAIL %s: %s\n", name, why);
    goto done;
  }
  cr = read_text(dir, "header-canonical-request.txt");
  sts = read_text(dir, "header-string-to-sign.txt");
  signature = read_text(dir, "header-signature.txt");
  signed_req = read_text(dir, "header-signed-request.txt");
  char *auth = signed_req ? find_header(signed_req, "Authorization") : NULL;
  /* Each compared, so that a failure shows every part that differs. */
  ok = compare(name, "canonical request", cr, sig.canonical_request.data);
  ok &= compare(name, "string to sign", sts, sig.string_to_sign.data);
  ok &= compare(name, "signature", signature, sig.signature);
  ok &= compare(name, "Authorization", auth, sig.authorization.data);
  ok &= check_added(name, dir, &sig);
done:
  if (ok)
    t->passed++;
  else
    t->failed++;
  mt_sigv4_free(&sig);
  mt_jdoc_free(doc);
  free(ctx_text);
  free(r.text);
  free(cr);
  free(sts);
  free(signature);
  free(signed_req);
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

TEST(sigv4_conformance) {
  char root[PATH_MAX], suite[PATH_MAX + 128];
  struct stat st;
  tally_t t = {0, 0};
  char **names = NULL;
  size_t n = 0, cap = 0;
  if (!mt_test_source_root(root))
    SKIP("repository root not found: set MT_SOURCE_DIR");
  snprintf(suite, sizeof suite, "%s/%s", root, SUITE_DIR);
  if (stat(suite, &st) != 0 || !S_ISDIR(st.st_mode))
    SKIP("SigV4 suite not found: %s (the conformance data belongs in "
         "../shared/conformance beside the repository)",
         suite);
  DIR *d = opendir(suite);
  ASSERT_TRUE(d != NULL);
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    char path[PATH_MAX + 512];
    snprintf(path, sizeof path, "%s/%s", suite, e->d_name);
    if (e->d_name[0] == '.' || stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      names = realloc(names, cap * sizeof *names);
      ASSERT_TRUE(names != NULL);
    }
    names[n] = strdup(e->d_name);
    ASSERT_TRUE(names[n] != NULL);
    n++;
  }
  closedir(d);
  /* readdir's order is the file system's; sorted, runs read alike. */
  qsort(names, n, sizeof *names, cmp_names);
  for (size_t i = 0; i < n; i++) {
    run_case(suite, names[i], &t);
    free(names[i]);
  }
  free(names);
  printf("%d passed, %d failed\n", t.passed, t.failed);
  ASSERT_TRUE(t.passed > 0);
  ASSERT_EQ_INT(t.failed, 0);
}
