/*
 * SigV4 canonicalisation of a request whose method, path, query, headers
 * and body come from outside (a path or query built from a task's data,
 * headers from configuration). The input reads like an HTTP request:
 *
 *   METHOD PATH[?QUERY]
 *   Name: value
 *    folded continuation of the value above
 *
 *   body
 *
 * and is signed twice: as SQS and Scheduler are (flags 0, a session
 * token), and with every flag and no token.
 *
 * The properties, from aws/sigv4.h: a refusal never quotes the secret or
 * the token (unless the input put their text in a header name, which is
 * quoted by design); a signature is 64 hex digits; signing the same request
 * again into the same result (a retry does) gives the same texts.
 */
#include "fuzz.h"

#include "aws/sigv4.h"

#define MAX_HEADERS 64

static const mt_aws_creds_t with_token = {
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "FwoGZXIvYXdzEFUaDFuzzSessionTokenForTheHarness0123456789"};
static const mt_aws_creds_t without_token = {
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL};

static int hex64(const char *s) {
  size_t n = strspn(s, "0123456789abcdef");
  return n == 64 && s[64] == '\0';
}

static void sign(const mt_sigv4_req_t *req, const mt_aws_creds_t *creds) {
  mt_sigv4_t sig;
  static mt_err_t err;
  memset(&sig, 0, sizeof sig);
  err.msg[0] = '\0';
  int rc = mt_sigv4_sign(req, creds, &sig, &err);
  if (rc != 0) {
    FUZZ_CHECK(rc == MT_EINVAL, "rc %d: %s", rc, err.msg);
    /* Header names are quoted, as not secret; the input may have put a
     * secret's text in one. */
    int named = 0;
    for (size_t i = 0; i < req->nheaders; i++)
      named |= strstr(req->headers[i].name, creds->secret_access_key) != NULL ||
               (creds->session_token != NULL &&
                strstr(req->headers[i].name, creds->session_token) != NULL);
    FUZZ_CHECK(named || (strstr(err.msg, creds->secret_access_key) == NULL &&
                         (creds->session_token == NULL ||
                          strstr(err.msg, creds->session_token) == NULL)),
               "a secret in the message: %s", err.msg);
    mt_sigv4_free(&sig);
    return;
  }
  FUZZ_CHECK(hex64(sig.signature), "signature \"%s\"", sig.signature);
  FUZZ_CHECK(hex64(sig.payload_hash), "payload hash \"%s\"", sig.payload_hash);
  /* Signed again into the same struct, as a retry does. */
  mt_buf_t cr = MT_BUF_INIT;
  mt_buf_append(&cr, sig.canonical_request.data, sig.canonical_request.len);
  char first[65];
  memcpy(first, sig.signature, sizeof first);
  FUZZ_CHECK(mt_sigv4_sign(req, creds, &sig, &err) == 0, "again: %s", err.msg);
  FUZZ_CHECK(strcmp(first, sig.signature) == 0 &&
                 cr.len == sig.canonical_request.len &&
                 memcmp(cr.data, sig.canonical_request.data, cr.len) == 0,
             "signing again differs");
  mt_buf_free(&cr);
  mt_sigv4_free(&sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = mt_fuzz_cstr(data, size);
  /* Lines end at '\n', which becomes the NUL that ends each string. */
  char *body = NULL, *line = text, *next;
  char *names[MAX_HEADERS], *values[MAX_HEADERS];
  size_t n = 0;

  /* The request line: METHOD PATH[?QUERY]. */
  next = strchr(line, '\n');
  if (next != NULL)
    *next++ = '\0';
  char *path = strchr(line, ' ');
  if (path != NULL)
    *path++ = '\0';
  else
    path = line + strlen(line); /* "" */
  char *query = strchr(path, '?');
  if (query != NULL)
    *query++ = '\0';
  const char *method = line;

  /* Headers, up to an empty line; a line that starts with a blank folds
   * into the value before it (the fold is kept, as it came). */
  for (line = next; line != NULL; line = next) {
    next = strchr(line, '\n');
    if (next != NULL)
      *next++ = '\0';
    if (*line == '\0') {
      body = next;
      break;
    }
    if ((*line == ' ' || *line == '\t') && n > 0) {
      line[-1] = '\n'; /* the fold joins the value, line break and all */
      continue;
    }
    char *colon = strchr(line, ':');
    if (colon == NULL || n == MAX_HEADERS)
      continue;
    *colon = '\0';
    names[n] = line;
    values[n] = colon + 1;
    n++;
  }

  mt_aws_header_t headers[MAX_HEADERS];
  for (size_t i = 0; i < n; i++)
    headers[i] = (mt_aws_header_t){names[i], values[i]};
  mt_sigv4_req_t req = {0};
  req.method = method;
  req.path = path;
  req.query = query;
  req.headers = n > 0 ? headers : NULL;
  req.nheaders = n;
  req.body = body;
  req.body_len = body != NULL ? size - (size_t)(body - text) : 0;
  req.region = "us-east-1";
  req.service = "sqs";
  req.time = 1440938160; /* 2015-08-30T12:36:00Z */

  sign(&req, &with_token);
  req.flags =
      MT_SIGV4_NO_NORMALIZE | MT_SIGV4_CONTENT_SHA256 | MT_SIGV4_UNSIGNED_TOKEN;
  sign(&req, &without_token);
  free(text);
  return 0;
}
