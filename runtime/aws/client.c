#include "aws/client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aws/sigv4.h"
#include "common/buf.h"
#include "common/metrics.h"
#include "common/url.h"
#include "json/write.h"

#define NSERVICES 2

/* The signing name and the host prefix are the same for both. */
static const char *const service_names[NSERVICES] = {"sqs", "scheduler"};
static const char *const content_types[NSERVICES] = {
    "application/x-amz-json-1.0", "application/json"};
static const char *const endpoint_envs[NSERVICES] = {
    "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SCHEDULER"};

/* Where one service's requests go. */
typedef struct endpoint_s {
  char *url;  /* "scheme://authority[/base]", no trailing '/' */
  char *host; /* the authority: the Host header we send and sign */
  char *base; /* "" or "/base", put before every path we sign */
} endpoint_t;

struct mt_aws_s {
  mt_http_t *http; /* NULL: blocking calls only */
  mt_aws_creds_provider_t *creds;
  mt_aws_conf_t conf; /* points at the copies below */
  char *region, *endpoint, *queue_url, *schedule_group, *role_arn;
  endpoint_t ep[NSERVICES];
  /* The blocking calls' limits: a private client per call has only the
   * defaults, so the request carries these. */
  int max_attempts;
  long connect_timeout_ms, timeout_ms;
  int closing;
};

/* One call from mt_aws_call() (or the blocking one) to its result. */
typedef struct call_s {
  mt_aws_t *aws;
  mt_aws_service_t service;
  char op[64];
  char *method, *url;
  char *sign_path; /* the endpoint's base and the path, no query */
  char *query;     /* after '?', or NULL */
  /* The last attempt's credentials, kept so that they can be cut out of
   * whatever the response quotes. */
  mt_aws_creds_copy_t creds;
  mt_sigv4_t sig;
  mt_aws_done_cb done;
  void *arg;
  mt_aws_result_t res;
} call_t;

/* The request handed to aws/http.h; it copies all of it. */
typedef struct wire_s {
  mt_http_req_t req;
  mt_http_header_t headers[3];
} wire_t;

/* ---- results ------------------------------------------------------------ */

void mt_aws_result_free(mt_aws_result_t *res) {
  if (res == NULL)
    return;
  mt_jdoc_free(res->doc);
  memset(res, 0, sizeof *res);
}

const char *mt_aws_kind_name(mt_aws_kind_t kind) {
  switch (kind) {
  case MT_AWS_OK: return "ok";
  case MT_AWS_ENORESPONSE: return "no response";
  case MT_AWS_EPROTOCOL: return "malformed response";
  case MT_AWS_ETHROTTLED: return "throttled";
  case MT_AWS_ESERVER: return "server error";
  case MT_AWS_EAUTH: return "not authorised";
  case MT_AWS_EVALIDATION: return "invalid request";
  case MT_AWS_ENOTFOUND: return "not found";
  case MT_AWS_ECONFLICT: return "conflict";
  case MT_AWS_EOTHER: return "error";
  }
  return "error";
}

/* AWS's error codes that decide what a caller does next. Both of SQS's
 * spellings are here: the JSON protocol's shape name (QueueDoesNotExist)
 * and the query protocol's code (AWS.SimpleQueueService.NonExistentQueue),
 * which endpoints that emulate the older protocol still send. A code not
 * listed is judged by the HTTP status (kind_of_status). */
static const struct {
  const char *code;
  mt_aws_kind_t kind;
} known_codes[] = {
    {"ConflictException", MT_AWS_ECONFLICT},
    {"ResourceNotFoundException", MT_AWS_ENOTFOUND},
    {"QueueDoesNotExist", MT_AWS_ENOTFOUND},
    {"AWS.SimpleQueueService.NonExistentQueue", MT_AWS_ENOTFOUND},
    {"NonExistentQueue", MT_AWS_ENOTFOUND},
    {"ThrottlingException", MT_AWS_ETHROTTLED},
    {"Throttling", MT_AWS_ETHROTTLED},
    {"ThrottledException", MT_AWS_ETHROTTLED},
    {"RequestThrottled", MT_AWS_ETHROTTLED},
    {"RequestThrottledException", MT_AWS_ETHROTTLED},
    {"TooManyRequestsException", MT_AWS_ETHROTTLED},
    {"RequestLimitExceeded", MT_AWS_ETHROTTLED},
    {"SlowDown", MT_AWS_ETHROTTLED},
    {"KmsThrottled", MT_AWS_ETHROTTLED},
    {"OverLimit", MT_AWS_ETHROTTLED},
    {"InternalFailure", MT_AWS_ESERVER},
    {"InternalError", MT_AWS_ESERVER},
    {"InternalServerException", MT_AWS_ESERVER},
    {"ServiceUnavailable", MT_AWS_ESERVER},
    {"ServiceUnavailableException", MT_AWS_ESERVER},
    {"AccessDenied", MT_AWS_EAUTH},
    {"AccessDeniedException", MT_AWS_EAUTH},
    {"SignatureDoesNotMatch", MT_AWS_EAUTH},
    {"InvalidSignatureException", MT_AWS_EAUTH},
    {"IncompleteSignature", MT_AWS_EAUTH},
    {"InvalidClientTokenId", MT_AWS_EAUTH},
    {"UnrecognizedClientException", MT_AWS_EAUTH},
    {"MissingAuthenticationToken", MT_AWS_EAUTH},
    {"InvalidAccessKeyId", MT_AWS_EAUTH},
    {"ExpiredToken", MT_AWS_EAUTH},
    {"ExpiredTokenException", MT_AWS_EAUTH},
    {"RequestExpired", MT_AWS_EAUTH},
    {"AuthFailure", MT_AWS_EAUTH},
    {"InvalidSecurity", MT_AWS_EAUTH},
    {"ValidationException", MT_AWS_EVALIDATION},
    {"SerializationException", MT_AWS_EVALIDATION},
    {"InvalidParameterValue", MT_AWS_EVALIDATION},
    {"InvalidParameterCombination", MT_AWS_EVALIDATION},
    {"MissingParameter", MT_AWS_EVALIDATION},
    {"InvalidAttributeName", MT_AWS_EVALIDATION},
    {"InvalidAttributeValue", MT_AWS_EVALIDATION},
    {"InvalidAddress", MT_AWS_EVALIDATION},
    {"InvalidMessageContents", MT_AWS_EVALIDATION},
    {"InvalidBatchEntryId", MT_AWS_EVALIDATION},
    {"BatchEntryIdsNotDistinct", MT_AWS_EVALIDATION},
    {"BatchRequestTooLong", MT_AWS_EVALIDATION},
    {"EmptyBatchRequest", MT_AWS_EVALIDATION},
    {"AWS.SimpleQueueService.EmptyBatchRequest", MT_AWS_EVALIDATION},
    {"TooManyEntriesInBatchRequest", MT_AWS_EVALIDATION},
    {"AWS.SimpleQueueService.TooManyEntriesInBatchRequest", MT_AWS_EVALIDATION},
    {"ReceiptHandleIsInvalid", MT_AWS_EVALIDATION},
    {"UnsupportedOperation", MT_AWS_EVALIDATION},
    {"AWS.SimpleQueueService.UnsupportedOperation", MT_AWS_EVALIDATION},
    {"InvalidAction", MT_AWS_EVALIDATION},
};

/* For a code we do not know, or no code at all (a REST error that says
 * only its status, a proxy's HTML page). */
static mt_aws_kind_t kind_of_status(long status) {
  if (status == 404)
    return MT_AWS_ENOTFOUND;
  if (status == 409)
    return MT_AWS_ECONFLICT;
  if (status == 401 || status == 403)
    return MT_AWS_EAUTH;
  if (status == 429)
    return MT_AWS_ETHROTTLED;
  if (status >= 500)
    return MT_AWS_ESERVER;
  return MT_AWS_EOTHER;
}

static mt_aws_kind_t kind_of(const char *code, long status) {
  for (size_t i = 0; i < sizeof known_codes / sizeof *known_codes; i++)
    if (strcmp(known_codes[i].code, code) == 0)
      return known_codes[i].kind;
  return kind_of_status(status);
}

static int rc_of(mt_aws_kind_t kind) {
  switch (kind) {
  case MT_AWS_OK: return 0;
  case MT_AWS_EPROTOCOL: return MT_EPAYLOAD;
  case MT_AWS_EAUTH: return MT_ECONFIG;
  case MT_AWS_EVALIDATION: return MT_EINVAL;
  case MT_AWS_ENOTFOUND: return MT_ENOTFOUND;
  case MT_AWS_ECONFLICT: return MT_ESTATE;
  default: return MT_EIO;
  }
}

/* Cuts every occurrence of secret out of b. */
static void redact(mt_buf_t *b, const char *secret) {
  static const char mark[] = "[redacted]";
  const size_t mlen = sizeof mark - 1;
  size_t slen = secret != NULL ? strlen(secret) : 0, from = 0;
  char *at;
  /* A secret this short would match ordinary text; real ones are 40
   * characters and more. */
  if (slen < 8 || b->data == NULL)
    return;
  /* memmem, not strstr: a NUL in the body must not hide what follows it,
   * which one_line() then prints (the AWS response fuzzer found that). */
  while ((at = memmem(b->data + from, b->len - from, secret, slen)) != NULL) {
    size_t pos = (size_t)(at - b->data), tail = b->len - pos - slen;
    if (slen >= mlen) {
      memcpy(at, mark, mlen);
      memmove(at + mlen, at + slen, tail + 1);
      b->len -= slen - mlen;
      from = pos + mlen;
    } else {
      /* Cannot grow without memory; blanking keeps the promise. */
      memset(at, '*', slen);
      from = pos + slen;
    }
  }
}

/* Copies text[0..len) into out (cap bytes) on one line: control characters
 * become spaces, runs of spaces one, and a cut never splits a UTF-8
 * sequence. */
static void one_line(char *out, size_t cap, const char *text, size_t len) {
  size_t n = 0;
  int space = 1; /* drops leading blanks */
  for (size_t i = 0; i < len && n + 1 < cap; i++) {
    unsigned char ch = (unsigned char)text[i];
    if (ch < 0x20 || ch == 0x7f || ch == ' ') {
      if (!space)
        out[n++] = ' ';
      space = 1;
      continue;
    }
    out[n++] = (char)ch;
    space = 0;
  }
  while (n > 0 && out[n - 1] == ' ')
    n--;
  /* Back off a sequence the cut left incomplete. */
  size_t k = n;
  while (k > 0 && ((unsigned char)out[k - 1] & 0xC0) == 0x80)
    k--;
  if (k > 0 && ((unsigned char)out[k - 1] & 0x80)) {
    unsigned char lead = (unsigned char)out[k - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (n - (k - 1) < want)
      n = k - 1;
  }
  out[n] = '\0';
}

/* Strips an error code's namespace ("com.amazonaws.sqs#") and suffix
 * (":http://internal.amazon.com/coral/...") into out. */
static void normalise_code(char *out, size_t cap, const char *code) {
  const char *hash = strrchr(code, '#');
  if (hash != NULL)
    code = hash + 1;
  size_t len = strcspn(code, ":");
  one_line(out, cap, code, len);
}

/* The text between <tag> and </tag>, XML's five entities decoded, into
 * out; 0 if there is no such element. */
static int xml_element(const char *body, const char *tag, mt_buf_t *out) {
  char open[32], close[32];
  snprintf(open, sizeof open, "<%s>", tag);
  snprintf(close, sizeof close, "</%s>", tag);
  const char *start = strstr(body, open), *end;
  if (start == NULL)
    return 0;
  start += strlen(open);
  if ((end = strstr(start, close)) == NULL)
    return 0;
  static const struct {
    const char *ent;
    char ch;
  } ents[] = {{"&lt;", '<'},
              {"&gt;", '>'},
              {"&amp;", '&'},
              {"&quot;", '"'},
              {"&apos;", '\''}};
  for (const char *p = start; p < end; p++) {
    size_t i = 0, n = sizeof ents / sizeof *ents;
    if (*p == '&')
      for (i = 0; i < n; i++)
        if (strncmp(p, ents[i].ent, strlen(ents[i].ent)) == 0)
          break;
    if (*p == '&' && i < n) {
      mt_buf_putc(out, ents[i].ch);
      p += strlen(ents[i].ent) - 1;
    } else {
      mt_buf_putc(out, *p);
    }
  }
  return 1;
}

/* Reads AWS's error code and message out of an error response: a JSON
 * body's "__type" (or "code") and "message" (either case), or an XML
 * body's <Code> and <Message> (the query protocol, and IAM-style auth
 * failures), or else the start of whatever the body is. The message comes
 * out redacted of the attempt's secrets and on one line. */
static void error_details(call_t *c, const mt_buf_t *body) {
  mt_aws_result_t *res = &c->res;
  mt_buf_t msg = MT_BUF_INIT, code = MT_BUF_INIT;
  mt_jdoc_t *doc = NULL;
  int raw = 0;
  const char *text = body->data != NULL ? body->data : "";
  size_t skip = strspn(text, " \t\r\n");
  if (text[skip] == '{' && mt_jdoc_parse(text, body->len, &doc, NULL) == 0) {
    const mt_jval_t *root = mt_jdoc_root(doc);
    const char *t = mt__aws_jstr(root, "__type");
    const char *m = mt__aws_jstr(root, "message");
    if (t == NULL)
      t = mt__aws_jstr(root, "code");
    if (t == NULL)
      t = mt__aws_jstr(root, "Code");
    if (m == NULL)
      m = mt__aws_jstr(root, "Message");
    if (t != NULL)
      mt_buf_puts(&code, t);
    if (m != NULL)
      mt_buf_puts(&msg, m);
  } else if (xml_element(text, "Code", &code)) {
    xml_element(text, "Message", &msg);
  } else {
    mt_buf_append(&msg, text, body->len);
    raw = 1;
  }
  mt_jdoc_free(doc);
  /* Before any cut: a secret cut in half would leak the half. */
  redact(&msg, c->creds.creds.secret_access_key);
  redact(&msg, c->creds.creds.session_token);
  redact(&code, c->creds.creds.secret_access_key);
  redact(&code, c->creds.creds.session_token);
  /* A proxy's page or a bare status line: its start says enough, and more
   * would flood a log. */
  if (raw && msg.len > 200) {
    msg.len = 200;
    msg.data[200] = '\0';
  }
  if (code.data != NULL)
    normalise_code(res->code, sizeof res->code, code.data);
  if (msg.data != NULL)
    one_line(res->message, sizeof res->message, msg.data, msg.len);
  mt_buf_free(&code);
  if (msg.data != NULL)
    explicit_bzero(msg.data, msg.cap);
  mt_buf_free(&msg);
}

/* Fills c->res from what aws/http.h reported. */
static void make_result(call_t *c, int rc, const mt_http_resp_t *resp,
                        const mt_err_t *herr) {
  mt_aws_result_t *res = &c->res;
  res->status = resp->status;
  res->attempts = resp->attempts;
  /* The request id is the server's text as much as its message is, and
   * goes into the log line: a proxy that echoes the request's headers
   * would put the session token there (the AWS response fuzzer did). */
  mt_buf_t id = MT_BUF_INIT;
  mt_buf_puts(&id, resp->request_id);
  redact(&id, c->creds.creds.secret_access_key);
  redact(&id, c->creds.creds.session_token);
  snprintf(res->request_id, sizeof res->request_id, "%s",
           id.data != NULL ? id.data : "");
  mt_buf_free(&id);
  if (rc != 0) {
    /* aws/http.h's message names the method, URL and attempt, and what
     * signing or the credentials said; neither quotes a secret. */
    res->kind = MT_AWS_ENORESPONSE;
    res->rc = rc;
    mt_err_set(&res->err, rc, "%s: %s", c->op, herr->msg);
    return;
  }
  if (resp->status >= 200 && resp->status < 300) {
    const char *body = resp->body.data != NULL ? resp->body.data : "";
    size_t len = resp->body.len;
    mt_err_t perr;
    /* Some successes have no body (DeleteSchedule's is "{}", but a proxy
     * may send nothing); callers always get an object to look into. */
    if (strspn(body, " \t\r\n") == len) {
      body = "{}";
      len = 2;
    }
    if (mt_jdoc_parse(body, len, &res->doc, &perr) != 0) {
      res->kind = MT_AWS_EPROTOCOL;
      res->rc = MT_EPAYLOAD;
      mt_err_set(&res->err, MT_EPAYLOAD,
                 "%s %s %s: HTTP %ld: the response is not JSON: %s", c->op,
                 c->method, c->url, resp->status, perr.msg);
      return;
    }
    res->json = mt_jdoc_root(res->doc);
    res->kind = MT_AWS_OK;
    res->rc = 0;
    res->err.msg[0] = '\0';
    return;
  }
  error_details(c, &resp->body);
  res->kind = kind_of(res->code, resp->status);
  res->rc = rc_of(res->kind);
  mt_err_set(&res->err, res->rc,
             "%s %s %s: HTTP %ld%s%s: %s (%s; request id %s; %d attempt%s)",
             c->op, c->method, c->url, resp->status, res->code[0] ? " " : "",
             res->code, res->message[0] ? res->message : "no message",
             mt_aws_kind_name(res->kind),
             res->request_id[0] ? res->request_id : "none", res->attempts,
             res->attempts == 1 ? "" : "s");
}

/* ---- signing ------------------------------------------------------------ */

/* aws/http.h's prepare callback: runs before every attempt, so that each
 * carries the time it is sent at and the credentials current then. */
static int sign_attempt(const mt_http_req_t *req, mt_http_headers_t *add,
                        void *arg, mt_err_t *err) {
  call_t *c = arg;
  mt_aws_header_t hs[4];
  size_t n = 0;
  int rc;
  mt_aws_creds_copy_free(&c->creds);
  if ((rc = mt_aws_creds_get(c->aws->creds, &c->creds, err)) != 0)
    return rc;
  for (size_t i = 0; i < req->nheaders && n < 4; i++) {
    hs[n].name = req->headers[i].name;
    hs[n].value = req->headers[i].value;
    n++;
  }
  mt_sigv4_req_t s = {
      .method = req->method,
      .path = c->sign_path,
      .query = c->query,
      .headers = hs,
      .nheaders = n,
      .body = req->body,
      .body_len = req->body_len,
      .region = c->aws->conf.region,
      .service = service_names[c->service],
      .time = (int64_t)time(NULL),
      .flags = 0,
  };
  if ((rc = mt_sigv4_sign(&s, &c->creds.creds, &c->sig, err)) != 0)
    return rc;
  for (size_t i = 0; i < c->sig.nheaders; i++)
    if ((rc = mt_http_headers_add(add, c->sig.headers[i].name,
                                  c->sig.headers[i].value)) != 0)
      return mt_err_set(err, rc, "cannot add the %s header",
                        c->sig.headers[i].name);
  return 0;
}

/* ---- calls -------------------------------------------------------------- */

static void call_free(call_t *c) {
  if (c == NULL)
    return;
  mt_aws_creds_copy_free(&c->creds);
  mt_sigv4_free(&c->sig);
  mt_aws_result_free(&c->res);
  free(c->method);
  free(c->url);
  free(c->sign_path);
  free(c->query);
  free(c);
}

/* Makes the call's state and the request aws/http.h will copy. */
static int call_new(mt_aws_t *aws, const mt_aws_req_t *req, call_t **out,
                    wire_t *w, mt_err_t *err) {
  const char *op = req->op != NULL ? req->op : "aws";
  *out = NULL;
  if ((unsigned)req->service >= NSERVICES)
    return mt_err_set(err, MT_EINVAL, "%s: unknown service %d", op,
                      (int)req->service);
  if (req->path == NULL || req->path[0] != '/')
    return mt_err_set(err, MT_EINVAL, "%s: the path must start with '/'", op);
  if (req->body == NULL && req->body_len > 0)
    return mt_err_set(err, MT_EINVAL, "%s: a body length without a body", op);
  const endpoint_t *ep = &aws->ep[req->service];
  call_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return mt_err_set(err, MT_ENOMEM, "%s: out of memory", op);
  c->aws = aws;
  c->service = req->service;
  snprintf(c->op, sizeof c->op, "%s", op);
  const char *q = strchr(req->path, '?');
  size_t plen = q != NULL ? (size_t)(q - req->path) : strlen(req->path);
  mt_buf_t b = MT_BUF_INIT;
  c->method = strdup(req->method != NULL ? req->method : "POST");
  if (mt_buf_printf(&b, "%s%s", ep->url, req->path) == 0)
    c->url = b.data;
  b = (mt_buf_t)MT_BUF_INIT;
  if (mt_buf_printf(&b, "%s%.*s", ep->base, (int)plen, req->path) == 0)
    c->sign_path = b.data;
  if (q != NULL && q[1] != '\0')
    c->query = strdup(q + 1);
  if (c->method == NULL || c->url == NULL || c->sign_path == NULL ||
      (q != NULL && q[1] != '\0' && c->query == NULL)) {
    call_free(c);
    return mt_err_set(err, MT_ENOMEM, "%s: out of memory", op);
  }
  memset(w, 0, sizeof *w);
  size_t n = 0;
  w->headers[n++] = (mt_http_header_t){"Host", ep->host};
  if (req->body != NULL)
    w->headers[n++] =
        (mt_http_header_t){"Content-Type", content_types[req->service]};
  if (req->target != NULL)
    w->headers[n++] = (mt_http_header_t){"X-Amz-Target", req->target};
  w->req.method = c->method;
  w->req.url = c->url;
  w->req.headers = w->headers;
  w->req.nheaders = n;
  w->req.body = req->body;
  w->req.body_len = req->body != NULL ? req->body_len : 0;
  w->req.op = c->op;
  w->req.prepare = sign_attempt;
  w->req.prepare_arg = c;
  w->req.max_attempts = req->max_attempts;
  w->req.timeout_ms = req->timeout_ms;
  *out = c;
  return 0;
}

/* Counts a finished call for /metrics: by operation, one per call
 * whatever its retries, and an error for any outcome but success. */
static void count_call(const call_t *c) {
  mt_metric_add(MT_METRIC_AWS_REQUESTS, c->op, NULL, 1);
  if (c->res.kind != MT_AWS_OK)
    mt_metric_add(MT_METRIC_AWS_ERRORS, c->op, NULL, 1);
}

static void on_http_done(int rc, mt_http_resp_t *resp, const mt_err_t *err,
                         void *arg) {
  call_t *c = arg;
  make_result(c, rc, resp, err);
  count_call(c);
  /* The callback may free the client; c is ours alone. */
  c->done(&c->res, c->arg);
  call_free(c);
}

int mt_aws_call(mt_aws_t *aws, const mt_aws_req_t *req, mt_aws_done_cb done,
                void *arg, mt_err_t *err) {
  call_t *c = NULL;
  wire_t w;
  int rc;
  if (aws->http == NULL)
    return mt_err_set(err, MT_ESTATE,
                      "%s: this AWS client has no loop (blocking calls only)",
                      req->op != NULL ? req->op : "aws");
  if (aws->closing)
    return mt_err_set(err, MT_ESTATE, "%s: the AWS client is being freed",
                      req->op != NULL ? req->op : "aws");
  if (done == NULL)
    return mt_err_set(err, MT_EINVAL, "%s: no completion callback",
                      req->op != NULL ? req->op : "aws");
  if ((rc = call_new(aws, req, &c, &w, err)) != 0)
    return rc;
  c->done = done;
  c->arg = arg;
  if ((rc = mt_http_send(aws->http, &w.req, on_http_done, c, err)) != 0)
    call_free(c);
  return rc;
}

int mt_aws_call_sync(mt_aws_t *aws, const mt_aws_req_t *req,
                     mt_aws_result_t *out) {
  call_t *c = NULL;
  wire_t w;
  mt_http_resp_t resp;
  mt_err_t herr;
  int rc;
  memset(out, 0, sizeof *out);
  if ((rc = call_new(aws, req, &c, &w, &out->err)) != 0) {
    out->rc = rc;
    out->kind = MT_AWS_ENORESPONSE;
    return rc;
  }
  if (w.req.max_attempts <= 0)
    w.req.max_attempts = aws->max_attempts;
  if (w.req.timeout_ms <= 0)
    w.req.timeout_ms = aws->timeout_ms;
  w.req.connect_timeout_ms = aws->connect_timeout_ms;
  herr.msg[0] = '\0';
  rc = mt_http_fetch_sync(&w.req, &resp, &herr);
  make_result(c, rc, &resp, &herr);
  count_call(c);
  *out = c->res;
  c->res.doc = NULL; /* moved to *out */
  mt_http_resp_free(&resp);
  call_free(c);
  return out->rc;
}

/* ---- the client --------------------------------------------------------- */

/* Splits "http(s)://authority[/base]" into ep (common/url.h: the same
 * reading the configuration checks aws.endpoint with). */
static int endpoint_parse(const char *url, endpoint_t *ep, mt_err_t *err) {
  mt_url_t u;
  const char *problem = mt_url_split(url, &u);
  if (problem != NULL)
    return mt_err_set(err, MT_ECONFIG, "AWS endpoint \"%s\" %s",
                      mt_url_shown(url), problem);
  size_t blen = strlen(u.path);
  while (blen > 0 && u.path[blen - 1] == '/')
    blen--;
  ep->url = strndup(url, (size_t)(u.path - url) + blen);
  ep->host = strndup(u.host, u.host_len);
  ep->base = strndup(u.path, blen);
  if (ep->url == NULL || ep->host == NULL || ep->base == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  return 0;
}

static const char *env_nonempty(const char *name) {
  const char *v = getenv(name);
  return v != NULL && *v != '\0' ? v : NULL;
}

static int dup_opt(char **dst, const char *src) {
  if (src == NULL)
    return 0;
  return (*dst = strdup(src)) != NULL ? 0 : MT_ENOMEM;
}

int mt_aws_new(uv_loop_t *loop, const mt_aws_conf_t *conf,
               mt_aws_creds_provider_t *creds, const mt_http_opts_t *http_opts,
               mt_aws_t **out, mt_err_t *err) {
  mt_aws_t *aws = NULL;
  int rc;
  *out = NULL;
  if (creds == NULL)
    return mt_err_set(err, MT_EINVAL, "AWS client: no credentials provider");
  const char *region = conf->region;
  if (region == NULL || *region == '\0')
    region = env_nonempty("AWS_REGION");
  if (region == NULL)
    region = env_nonempty("AWS_DEFAULT_REGION");
  if (region == NULL)
    return mt_err_set(err, MT_ECONFIG,
                      "no AWS region: set aws.region, AWS_REGION or "
                      "AWS_DEFAULT_REGION");
  /* The region becomes part of a host name. */
  if (strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(region))
    return mt_err_set(err, MT_ECONFIG, "AWS region \"%s\" is not a region name",
                      region);
  if ((aws = calloc(1, sizeof *aws)) == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  aws->creds = creds;
  if (dup_opt(&aws->region, region) != 0 ||
      dup_opt(&aws->endpoint, conf->endpoint) != 0 ||
      dup_opt(&aws->queue_url, conf->queue_url) != 0 ||
      dup_opt(&aws->schedule_group, conf->schedule_group) != 0 ||
      dup_opt(&aws->role_arn, conf->role_arn) != 0) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto fail;
  }
  aws->conf.region = aws->region;
  aws->conf.endpoint = aws->endpoint;
  aws->conf.queue_url = aws->queue_url;
  aws->conf.schedule_group = aws->schedule_group;
  aws->conf.role_arn = aws->role_arn;
  for (int s = 0; s < NSERVICES; s++) {
    const char *url = aws->endpoint;
    char dflt[256];
    if (url == NULL)
      url = env_nonempty(endpoint_envs[s]);
    if (url == NULL)
      url = env_nonempty("AWS_ENDPOINT_URL");
    if (url == NULL) {
      /* China's partition has a domain of its own. */
      snprintf(dflt, sizeof dflt, "https://%s.%s.amazonaws.com%s",
               service_names[s], region,
               strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
      url = dflt;
    }
    if ((rc = endpoint_parse(url, &aws->ep[s], err)) != 0)
      goto fail;
  }
  aws->max_attempts = http_opts != NULL ? http_opts->max_attempts : 0;
  aws->connect_timeout_ms =
      http_opts != NULL ? http_opts->connect_timeout_ms : 0;
  aws->timeout_ms = http_opts != NULL ? http_opts->timeout_ms : 0;
  if (loop != NULL && (rc = mt_http_new(loop, http_opts, &aws->http, err)) != 0)
    goto fail;
  *out = aws;
  return 0;
fail:
  mt_aws_free(aws);
  return rc;
}

void mt_aws_free(mt_aws_t *aws) {
  if (aws == NULL || aws->closing)
    return;
  aws->closing = 1;
  /* Calls back every pending call, which frees its own state. */
  mt_http_free(aws->http);
  for (int s = 0; s < NSERVICES; s++) {
    free(aws->ep[s].url);
    free(aws->ep[s].host);
    free(aws->ep[s].base);
  }
  free(aws->region);
  free(aws->endpoint);
  free(aws->queue_url);
  free(aws->schedule_group);
  free(aws->role_arn);
  free(aws);
}

const mt_aws_conf_t *mt_aws_conf(const mt_aws_t *aws) { return &aws->conf; }

const char *mt_aws_endpoint(const mt_aws_t *aws, mt_aws_service_t service) {
  return (unsigned)service < NSERVICES ? aws->ep[service].url : NULL;
}

mt_http_t *mt_aws_http(mt_aws_t *aws) { return aws->http; }

/* ---- helpers for the typed layers --------------------------------------- */

const char *mt__aws_jstr(const mt_jval_t *obj, const char *key) {
  return mt_jval_get_str(obj, key);
}

long mt__aws_jlong(const mt_jval_t *obj, const char *key, long dflt) {
  if (obj == NULL || obj->type != MT_JV_OBJECT)
    return dflt;
  const mt_jval_t *v = mt_jval_get(obj, key);
  if (v == NULL)
    return dflt;
  if (v->type == MT_JV_NUMBER && v->is_int)
    return (long)v->u.num.i;
  if (v->type == MT_JV_STRING && v->len > 0) {
    char *end;
    errno = 0;
    long n = strtol(v->u.str, &end, 10);
    if (errno == 0 && *end == '\0')
      return n;
  }
  return dflt;
}

int mt__aws_jkey_str(mt_buf_t *out, int first, const char *key, const char *s) {
  if ((!first && mt_buf_putc(out, ',') != 0) ||
      mt_json_write_string(out, key, strlen(key)) != 0 ||
      mt_buf_putc(out, ':') != 0 ||
      mt_json_write_string(out, s, strlen(s)) != 0)
    return MT_ENOMEM;
  return 0;
}

int mt__aws_refuse(mt_err_t *err, const char *op, const char *fmt, ...) {
  if (err != NULL) {
    char detail[MT_ERR_MAX - 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(err->msg, sizeof err->msg, "%s: %s", op, detail);
  }
  return MT_EINVAL;
}
