#include "aws/http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json/doc.h"

#define DEFAULT_MAX_ATTEMPTS 5
#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_BACKOFF_BASE_MS 100
#define DEFAULT_BACKOFF_CAP_MS 20000

/* No AWS answer we read comes near this; a server that streams without end
 * must not take the process's memory with it. */
#define MAX_BODY (64u << 20)

/* One socket curl asked us to watch. */
typedef struct sock_s {
  uv_poll_t poll;
  curl_socket_t fd;
  mt_http_t *h;
  struct sock_s *prev, *next;
} sock_t;

/* A request from mt_http_send() until its completion callback: the copy of
 * what the caller asked for, the curl handle its attempts reuse, and the
 * backoff timer that waits between them. */
typedef struct request_s {
  mt_http_t *h;
  struct request_s *prev, *next;
  mt_http_req_t req; /* the caller's, pointing into the copies below */
  char *method, *url, *body;
  mt_http_headers_t headers;
  int max_attempts;
  size_t stat; /* index into h->stats */
  CURL *easy;
  int in_multi;
  int body_too_large;
  struct curl_slist *sent; /* this attempt's header lines */
  mt_http_resp_t resp;
  char errbuf[CURL_ERROR_SIZE];
  uv_timer_t backoff;
  mt_http_done_cb done;
  void *arg;
} request_t;

struct mt_http_s {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer; /* curl's timeout */
  mt_http_opts_t opts;
  char *ca_file;
  request_t *requests; /* sent, not yet completed */
  sock_t *socks;
  /* Handles not yet closed (the timer, sockets, requests' backoff timers):
   * the struct outlives mt_http_free() until the last close callback. */
  unsigned open_handles;
  int closing;
  uint64_t rng;
  /* The one part other threads read (mt_http_stats). */
  pthread_mutex_t stats_lock;
  mt_http_stat_t *stats;
  size_t nstats, stats_cap;
};

/* ---- headers ---------------------------------------------------------- */

int mt_http_headers_add(mt_http_headers_t *h, const char *name,
                        const char *value) {
  if (name == NULL || *name == '\0' || strpbrk(name, ":\r\n \t") != NULL ||
      value == NULL || strpbrk(value, "\r\n") != NULL)
    return MT_EINVAL;
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 8;
    mt_http_header_t *v = realloc(h->v, cap * sizeof *v);
    if (v == NULL)
      return MT_ENOMEM;
    h->v = v;
    h->cap = cap;
  }
  char *n = strdup(name), *val = strdup(value);
  if (n == NULL || val == NULL) {
    free(n);
    free(val);
    return MT_ENOMEM;
  }
  h->v[h->n].name = n;
  h->v[h->n].value = val;
  h->n++;
  return 0;
}

const char *mt_http_headers_get(const mt_http_headers_t *h, const char *name) {
  for (size_t i = 0; i < h->n; i++)
    if (strcasecmp(h->v[i].name, name) == 0)
      return h->v[i].value;
  return NULL;
}

void mt_http_headers_free(mt_http_headers_t *h) {
  if (h == NULL)
    return;
  /* The list made these copies itself; the const is for its readers.
   * Values may be secrets (a security token, an authorization token). */
  for (size_t i = 0; i < h->n; i++) {
    char *value = (char *)h->v[i].value;
    explicit_bzero(value, strlen(value));
    free((char *)h->v[i].name);
    free(value);
  }
  free(h->v);
  h->v = NULL;
  h->n = h->cap = 0;
}

void mt_http_resp_free(mt_http_resp_t *resp) {
  if (resp == NULL)
    return;
  mt_buf_free(&resp->body);
  memset(resp, 0, sizeof *resp);
}

/* ---- retry policy ----------------------------------------------------- */

uint64_t mt_http_backoff_ms(unsigned base_ms, unsigned cap_ms, int attempt,
                            double u) {
  uint64_t ceiling = base_ms;
  for (int i = 1; i < attempt && ceiling < cap_ms; i++)
    ceiling *= 2;
  if (ceiling > cap_ms)
    ceiling = cap_ms;
  if (!(u > 0))
    u = 0;
  if (u >= 1)
    u = 0.999999;
  return (uint64_t)(u * (double)ceiling);
}

/* AWS's throttling and transient error codes, as the SDKs' standard retry
 * mode lists them. They arrive as 400s (a 5xx would be retried anyway),
 * so only the code in the body tells them from a request that is wrong. */
static const char *const retryable_codes[] = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "IDPCommunicationError", /* STS, when the identity provider is slow */
};

/* Whether the error code in s[0..len) is one of the above, once stripped of
 * a namespace ("com.amazonaws.sqs#", "AWS.SimpleQueueService.") and a
 * suffix (":http://internal.amazon.com/..."). */
static int code_retryable(const char *s, size_t len) {
  const char *end = memchr(s, ':', len);
  if (end != NULL)
    len = (size_t)(end - s);
  for (size_t i = len; i > 0; i--)
    if (s[i - 1] == '#' || s[i - 1] == '.') {
      len -= i;
      s += i;
      break;
    }
  while (len > 0 && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')) {
    s++;
    len--;
  }
  while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\n' ||
                     s[len - 1] == '\r' || s[len - 1] == '\t'))
    len--;
  for (size_t i = 0; i < sizeof retryable_codes / sizeof *retryable_codes; i++)
    if (strlen(retryable_codes[i]) == len &&
        memcmp(retryable_codes[i], s, len) == 0)
      return 1;
  return 0;
}

static int json_code_retryable(const char *body, size_t len) {
  mt_jdoc_t *doc = NULL;
  int retry = 0;
  if (mt_jdoc_parse(body, len, &doc, NULL) != 0)
    goto done;
  const mt_jval_t *root = mt_jdoc_root(doc), *code = NULL;
  if (root->type != MT_JV_OBJECT)
    goto done;
  /* JSON protocols put the code in "__type"; query-compatible services
   * and some others in "code" or "Code", alone or under "Error". */
  static const char *const keys[] = {"__type", "code", "Code"};
  const mt_jval_t *error = mt_jval_get(root, "Error");
  for (size_t i = 0; code == NULL && i < 3; i++) {
    code = mt_jval_get(root, keys[i]);
    if (code == NULL && error != NULL && error->type == MT_JV_OBJECT)
      code = mt_jval_get(error, keys[i]);
    if (code != NULL && code->type != MT_JV_STRING)
      code = NULL;
  }
  retry = code != NULL && code_retryable(code->u.str, code->len);
done:
  mt_jdoc_free(doc);
  return retry;
}

static int xml_code_retryable(const char *body, size_t len) {
  const char *open = memmem(body, len, "<Code>", 6);
  if (open == NULL)
    return 0;
  open += 6;
  const char *close = memmem(open, len - (size_t)(open - body), "</Code>", 7);
  return close != NULL && code_retryable(open, (size_t)(close - open));
}

int mt_http_aws_retryable(const mt_http_resp_t *resp) {
  const char *s = resp->body.data;
  size_t len = resp->body.len;
  if (s == NULL)
    return 0;
  while (len > 0 && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')) {
    s++;
    len--;
  }
  if (len > 0 && *s == '{')
    return json_code_retryable(s, len);
  if (len > 0 && *s == '<')
    return xml_code_retryable(s, len);
  return 0;
}

static int status_retryable(const request_t *r) {
  long status = r->resp.status;
  if (status >= 200 && status < 300)
    return 0;
  /* 501 says the server does not do what was asked; asking again cannot
   * change that. Every other 5xx is the server's passing trouble. */
  if (status == 429 || (status >= 500 && status < 600 && status != 501))
    return 1;
  mt_http_retryable_cb retryable =
      r->req.retryable ? r->req.retryable : mt_http_aws_retryable;
  return retryable(&r->resp);
}

/* Transport failures are worth another attempt unless they come from the
 * request or this machine's set-up rather than the network: a malformed
 * URL, or a certificate that failed verification, fails the same way
 * again, and retrying would only delay the error. */
static int result_retryable(const request_t *r, CURLcode result) {
  if (r->body_too_large)
    return 0;
  switch (result) {
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT:
  case CURLE_NOT_BUILT_IN:
  case CURLE_OUT_OF_MEMORY:
  case CURLE_BAD_FUNCTION_ARGUMENT:
  case CURLE_ABORTED_BY_CALLBACK:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS: return 0;
  default: return 1;
  }
}

/* xorshift64*: jitter needs no more, and each client has its own state,
 * so clients on different threads never share one. */
static double random01(mt_http_t *h) {
  if (h->opts.random != NULL)
    return h->opts.random(h->opts.random_arg);
  h->rng ^= h->rng >> 12;
  h->rng ^= h->rng << 25;
  h->rng ^= h->rng >> 27;
  return (double)((h->rng * 0x2545F4914F6CDD1Dull) >> 11) * 0x1.0p-53;
}

/* ---- stats ------------------------------------------------------------ */

/* The index of op's counters, made on first use. */
static int stat_index(mt_http_t *h, const char *op, size_t *out) {
  int rc = 0;
  pthread_mutex_lock(&h->stats_lock);
  size_t i;
  for (i = 0; i < h->nstats; i++)
    if (strncmp(h->stats[i].op, op, sizeof h->stats[i].op - 1) == 0)
      goto done;
  if (h->nstats == h->stats_cap) {
    size_t cap = h->stats_cap ? h->stats_cap * 2 : 8;
    mt_http_stat_t *v = realloc(h->stats, cap * sizeof *v);
    if (v == NULL) {
      rc = MT_ENOMEM;
      goto done;
    }
    h->stats = v;
    h->stats_cap = cap;
  }
  memset(&h->stats[i], 0, sizeof h->stats[i]);
  snprintf(h->stats[i].op, sizeof h->stats[i].op, "%s", op);
  h->nstats++;
done:
  pthread_mutex_unlock(&h->stats_lock);
  *out = i;
  return rc;
}

static void stat_add(mt_http_t *h, size_t i, int attempts, int retries,
                     int errors) {
  pthread_mutex_lock(&h->stats_lock);
  h->stats[i].attempts += (uint64_t)attempts;
  h->stats[i].retries += (uint64_t)retries;
  h->stats[i].errors += (uint64_t)errors;
  pthread_mutex_unlock(&h->stats_lock);
}

size_t mt_http_stats(mt_http_t *h, mt_http_stat_t *out, size_t max) {
  pthread_mutex_lock(&h->stats_lock);
  size_t n = h->nstats;
  for (size_t i = 0; i < n && i < max; i++)
    out[i] = h->stats[i];
  pthread_mutex_unlock(&h->stats_lock);
  return n;
}

/* ---- the client's lifetime -------------------------------------------- */

static void release_handle(mt_http_t *h) {
  if (--h->open_handles > 0 || !h->closing)
    return;
  pthread_mutex_destroy(&h->stats_lock);
  free(h->stats);
  free(h->ca_file);
  free(h);
}

static void on_timer_closed(uv_handle_t *handle) {
  release_handle(handle->data);
}

static void on_sock_closed(uv_handle_t *handle) {
  sock_t *s = handle->data;
  mt_http_t *h = s->h;
  free(s);
  release_handle(h);
}

static void sock_close(sock_t *s) {
  mt_http_t *h = s->h;
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    h->socks = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* Header lines and bodies may carry tokens (container credentials' and
 * web identity's): they are wiped before their memory is given back. */
static void wipe_lines(struct curl_slist *lines) {
  for (; lines != NULL; lines = lines->next)
    explicit_bzero(lines->data, strlen(lines->data));
}

static void on_request_closed(uv_handle_t *handle) {
  request_t *r = handle->data;
  mt_http_t *h = r->h;
  free(r);
  release_handle(h);
}

/* Frees what the request holds and closes its timer; the struct goes in
 * the close callback. The request must be unlinked and out of the multi
 * handle, or never have been in either. */
static void request_release(request_t *r) {
  curl_easy_cleanup(r->easy);
  wipe_lines(r->sent);
  curl_slist_free_all(r->sent);
  if (r->body != NULL)
    explicit_bzero(r->body, r->req.body_len);
  mt_http_headers_free(&r->headers);
  mt_http_resp_free(&r->resp);
  free(r->method);
  free(r->url);
  free(r->body);
  uv_close((uv_handle_t *)&r->backoff, on_request_closed);
}

static void request_unlink(request_t *r) {
  mt_http_t *h = r->h;
  if (r->prev != NULL)
    r->prev->next = r->next;
  else
    h->requests = r->next;
  if (r->next != NULL)
    r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

/* Ends the request: counts it, tells the caller, releases it. */
static void finish(request_t *r, int rc, const mt_err_t *err) {
  mt_http_t *h = r->h;
  mt_err_t none;
  none.msg[0] = '\0';
  request_unlink(r);
  int failed = rc != 0 || r->resp.status < 200 || r->resp.status >= 300;
  stat_add(h, r->stat, 0, 0, failed);
  r->done(rc, &r->resp, err != NULL ? err : &none, r->arg);
  request_release(r);
}

/* ---- curl and libuv --------------------------------------------------- */

static void check_done(mt_http_t *h);

static void on_poll(uv_poll_t *poll, int status, int events) {
  sock_t *s = poll->data;
  mt_http_t *h = s->h;
  int flags = 0, running;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  /* curl may stop watching this socket in here, and s is gone after. */
  curl_multi_socket_action(h->multi, s->fd, flags, &running);
  check_done(h);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
                          void *socketp) {
  (void)easy;
  mt_http_t *h = userp;
  sock_t *s = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (s == NULL)
      return 0;
    /* While mt_http_free() cleans the multi handle up, curl reports the
     * sockets it closes; the handle is on its way out, so leave it be. */
    if (!h->closing)
      curl_multi_assign(h->multi, fd, NULL);
    sock_close(s);
    return 0;
  }
  if (s == NULL) {
    s = calloc(1, sizeof *s);
    if (s == NULL)
      return -1;
    if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->poll.data = s;
    s->fd = fd;
    s->h = h;
    s->next = h->socks;
    if (h->socks != NULL)
      h->socks->prev = s;
    h->socks = s;
    h->open_handles++;
    curl_multi_assign(h->multi, fd, s);
  }
  int events = 0;
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

static void on_timeout(uv_timer_t *timer) {
  mt_http_t *h = timer->data;
  int running;
  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(h);
}

/* curl asks for its timeout here but must not be called back from inside
 * this function, so even "now" (0) goes through the loop. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  mt_http_t *h = userp;
  if (timeout_ms < 0)
    uv_timer_stop(&h->timer);
  else
    uv_timer_start(&h->timer, on_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
  request_t *r = arg;
  size_t len = size * n;
  if (r->resp.body.len + len > MAX_BODY) {
    r->body_too_large = 1;
    return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
  }
  if (mt_buf_append(&r->resp.body, data, len) != 0)
    return 0;
  return len;
}

/* Copies value (up to the end of the line, trimmed) into dst. */
static void copy_header_value(char *dst, size_t cap, const char *v,
                              size_t len) {
  while (len > 0 && (*v == ' ' || *v == '\t')) {
    v++;
    len--;
  }
  while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' ||
                     v[len - 1] == ' ' || v[len - 1] == '\t'))
    len--;
  if (len >= cap)
    len = cap - 1;
  memcpy(dst, v, len);
  dst[len] = '\0';
}

static size_t on_header(char *line, size_t size, size_t n, void *arg) {
  request_t *r = arg;
  size_t len = size * n;
  /* A status line starts a new header block (after a 100 Continue, say):
   * only the final response's headers count. */
  if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
    r->resp.content_type[0] = '\0';
    r->resp.request_id[0] = '\0';
    return len;
  }
  const char *colon = memchr(line, ':', len);
  if (colon == NULL)
    return len;
  size_t name_len = (size_t)(colon - line);
  const char *v = colon + 1;
  size_t vlen = len - name_len - 1;
#define IS(lit) \
  (name_len == sizeof lit - 1 && strncasecmp(line, lit, name_len) == 0)
  if (IS("content-type"))
    copy_header_value(r->resp.content_type, sizeof r->resp.content_type, v,
                      vlen);
  else if (IS("x-amzn-requestid"))
    copy_header_value(r->resp.request_id, sizeof r->resp.request_id, v, vlen);
  else if (IS("x-amz-request-id") && r->resp.request_id[0] == '\0')
    copy_header_value(r->resp.request_id, sizeof r->resp.request_id, v, vlen);
#undef IS
  return len;
}

static int start_attempt(request_t *r, mt_err_t *err);

static void on_backoff(uv_timer_t *timer) {
  request_t *r = timer->data;
  mt_err_t err;
  int rc = start_attempt(r, &err);
  if (rc != 0)
    finish(r, rc, &err);
}

/* Names what failed for an error message: "GET http://...". */
#define REQ_FMT "%s %s"
#define REQ_ARGS(r) (r)->req.method, (r)->req.url

/* One attempt is over (curl is done with it): finish, or wait and retry. */
static void attempt_done(request_t *r, CURLcode result) {
  mt_http_t *h = r->h;
  mt_err_t err;
  int rc = 0, retry;
  err.msg[0] = '\0';
  if (result == CURLE_OK) {
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->resp.status);
    retry = status_retryable(r);
  } else {
    /* What did arrive of a broken response is no response. */
    r->resp.status = 0;
    r->resp.content_type[0] = r->resp.request_id[0] = '\0';
    mt_buf_reset(&r->resp.body);
    retry = result_retryable(r, result);
    const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(result);
    if (r->body_too_large)
      rc = mt_err_set(&err, MT_EIO,
                      REQ_FMT ": response body larger than %u bytes",
                      REQ_ARGS(r), MAX_BODY);
    else if (result == CURLE_OPERATION_TIMEDOUT)
      rc = mt_err_set(
          &err, MT_ETIMEDOUT,
          REQ_FMT
          ": timed out (connect timeout %ld ms, timeout %ld ms; attempt %d of %d): %s",
          REQ_ARGS(r), r->req.connect_timeout_ms, r->req.timeout_ms,
          r->resp.attempts, r->max_attempts, detail);
    else
      rc = mt_err_set(&err, MT_EIO, REQ_FMT ": %s (attempt %d of %d)",
                      REQ_ARGS(r), detail, r->resp.attempts, r->max_attempts);
  }
  if (!retry || r->resp.attempts >= r->max_attempts) {
    finish(r, rc, &err);
    return;
  }
  uint64_t ms =
      mt_http_backoff_ms(h->opts.backoff_base_ms, h->opts.backoff_cap_ms,
                         r->resp.attempts, random01(h));
  /* The loop's clock was read before this turn's callbacks ran; a timer
   * counted from it would fire early by however long they took. */
  uv_update_time(h->loop);
  uv_timer_start(&r->backoff, on_backoff, ms, 0);
}

static void check_done(mt_http_t *h) {
  CURLMsg *msg;
  int left;
  /* A completion callback may free the client, multi handle and all. */
  while (!h->closing && (msg = curl_multi_info_read(h->multi, &left)) != NULL) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    CURL *easy = msg->easy_handle;
    CURLcode result = msg->data.result; /* msg dies with the removal */
    void *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    request_t *r = priv;
    curl_multi_remove_handle(h->multi, easy);
    r->in_multi = 0;
    attempt_done(r, result);
  }
}

/* Builds this attempt's header lines and puts the handle on the wire. */
static int start_attempt(request_t *r, mt_err_t *err) {
  mt_http_t *h = r->h;
  mt_http_headers_t add = MT_HTTP_HEADERS_INIT;
  struct curl_slist *lines = NULL;
  mt_buf_t line = MT_BUF_INIT;
  int rc = 0;
  if (r->req.prepare != NULL) {
    mt_err_t why;
    why.msg[0] = '\0';
    rc = r->req.prepare(&r->req, &add, r->req.prepare_arg, &why);
    if (rc != 0) {
      rc = mt_err_set(err, rc, REQ_FMT ": preparing attempt %d: %s",
                      REQ_ARGS(r), r->resp.attempts + 1, why.msg);
      goto done;
    }
  }
  const mt_http_headers_t *lists[] = {&r->headers, &add};
  for (size_t l = 0; l < 2; l++)
    for (size_t i = 0; i < lists[l]->n; i++) {
      const mt_http_header_t *hd = &lists[l]->v[i];
      mt_buf_reset(&line);
      /* "Name;" is curl's way to send a header with an empty value. */
      if ((*hd->value == '\0'
               ? mt_buf_printf(&line, "%s;", hd->name)
               : mt_buf_printf(&line, "%s: %s", hd->name, hd->value)) != 0)
        goto nomem;
      struct curl_slist *next = curl_slist_append(lines, line.data);
      if (next == NULL)
        goto nomem;
      lines = next;
    }
  /* curl would otherwise ask for "100 Continue" before a body over 1 KB and
   * wait a second for a server that never sends it. */
  if (r->body != NULL) {
    struct curl_slist *next = curl_slist_append(lines, "Expect:");
    if (next == NULL)
      goto nomem;
    lines = next;
  }
  curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, lines);
  wipe_lines(r->sent);
  curl_slist_free_all(r->sent);
  r->sent = lines;
  lines = NULL;
  r->errbuf[0] = '\0';
  r->resp.status = 0;
  r->resp.content_type[0] = r->resp.request_id[0] = '\0';
  mt_buf_reset(&r->resp.body);
  CURLMcode mc = curl_multi_add_handle(h->multi, r->easy);
  if (mc != CURLM_OK) {
    rc = mt_err_set(err, MT_EIO, REQ_FMT ": %s", REQ_ARGS(r),
                    curl_multi_strerror(mc));
    goto done;
  }
  r->in_multi = 1;
  r->resp.attempts++;
  stat_add(h, r->stat, 1, r->resp.attempts > 1, 0);
  goto done;
nomem:
  rc = mt_err_set(err, MT_ENOMEM, REQ_FMT ": out of memory", REQ_ARGS(r));
done:
  wipe_lines(lines);
  curl_slist_free_all(lines);
  if (line.data != NULL)
    explicit_bzero(line.data, line.cap);
  mt_buf_free(&line);
  mt_http_headers_free(&add);
  return rc;
}

/* The curl handle every attempt of r reuses; the per-attempt part (headers)
 * is set by start_attempt(). */
static int setup_easy(request_t *r, mt_err_t *err) {
  mt_http_t *h = r->h;
  CURL *e = r->easy = curl_easy_init();
  if (e == NULL)
    return mt_err_set(err, MT_ENOMEM, REQ_FMT ": out of memory", REQ_ARGS(r));
  curl_easy_setopt(e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  /* Signals would interrupt the loop's thread; timeouts work without. */
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (h->ca_file != NULL)
    curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r->req.connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->req.timeout_ms);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "moontask");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)r);
  if (strcmp(r->method, "GET") == 0 && r->body == NULL) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(r->method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    /* Any other method sends the body as given, also an empty one (an
     * IMDS token PUT), so that Content-Length is always there. */
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)r->req.body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
    if (strcmp(r->method, "POST") != 0)
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
  }
  return 0;
}

/* Copies req into a new request, ready for its first attempt. */
static int request_new(mt_http_t *h, const mt_http_req_t *req, request_t **out,
                       mt_err_t *err) {
  const char *method = req->method != NULL ? req->method : "GET";
  request_t *r = calloc(1, sizeof *r);
  int rc = 0;
  if (r == NULL)
    return mt_err_set(err, MT_ENOMEM, "%s %s: out of memory", method, req->url);
  r->h = h;
  r->req = *req;
  r->method = strdup(method);
  r->url = strdup(req->url);
  if (req->body_len > 0 && (r->body = malloc(req->body_len)) != NULL)
    memcpy(r->body, req->body, req->body_len);
  if (r->method == NULL || r->url == NULL ||
      (req->body_len > 0 && r->body == NULL)) {
    rc = mt_err_set(err, MT_ENOMEM, "%s %s: out of memory", method, req->url);
    goto fail;
  }
  r->req.method = r->method;
  r->req.url = r->url;
  r->req.body = r->body;
  for (size_t i = 0; i < req->nheaders; i++)
    if ((rc = mt_http_headers_add(&r->headers, req->headers[i].name,
                                  req->headers[i].value)) != 0) {
      rc = mt_err_set(
          err, rc, REQ_FMT ": header %zu (%s) %s", REQ_ARGS(r), i + 1,
          req->headers[i].name ? req->headers[i].name : "NULL",
          rc == MT_ENOMEM ? "out of memory" : "has a bad name or value");
      goto fail;
    }
  r->req.headers = r->headers.v;
  r->req.nheaders = r->headers.n;
  r->req.op = req->op != NULL ? req->op : "other";
  r->max_attempts =
      req->max_attempts > 0 ? req->max_attempts : h->opts.max_attempts;
  r->req.max_attempts = r->max_attempts;
  if (r->req.connect_timeout_ms <= 0)
    r->req.connect_timeout_ms = h->opts.connect_timeout_ms;
  if (r->req.timeout_ms <= 0)
    r->req.timeout_ms = h->opts.timeout_ms;
  if ((rc = stat_index(h, r->req.op, &r->stat)) != 0) {
    rc = mt_err_set(err, rc, REQ_FMT ": out of memory", REQ_ARGS(r));
    goto fail;
  }
  if ((rc = setup_easy(r, err)) != 0)
    goto fail;
  *out = r;
  return 0;
fail:
  curl_easy_cleanup(r->easy);
  mt_http_headers_free(&r->headers);
  free(r->method);
  free(r->url);
  free(r->body);
  free(r);
  return rc;
}

int mt_http_send(mt_http_t *h, const mt_http_req_t *req, mt_http_done_cb done,
                 void *arg, mt_err_t *err) {
  const char *method = req->method != NULL ? req->method : "GET";
  request_t *r = NULL;
  int rc;
  if (req->url == NULL || *req->url == '\0')
    return mt_err_set(err, MT_EINVAL, "%s: a request needs a URL", method);
  if (done == NULL)
    return mt_err_set(err, MT_EINVAL, "%s %s: no completion callback", method,
                      req->url);
  if (h->closing)
    return mt_err_set(err, MT_ESTATE, "%s %s: the HTTP client is being freed",
                      method, req->url);
  if ((rc = request_new(h, req, &r, err)) != 0)
    return rc;
  r->done = done;
  r->arg = arg;
  uv_timer_init(h->loop, &r->backoff);
  r->backoff.data = r;
  h->open_handles++;
  r->next = h->requests;
  if (h->requests != NULL)
    h->requests->prev = r;
  h->requests = r;
  if ((rc = start_attempt(r, err)) != 0) {
    request_unlink(r);
    request_release(r);
  }
  return rc;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

/* curl_global_init is not thread-safe before 7.84; once is enough anyway. */
static void curl_init(void) {
  curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int mt_http_new(uv_loop_t *loop, const mt_http_opts_t *opts, mt_http_t **out,
                mt_err_t *err) {
  *out = NULL;
  pthread_once(&curl_once, curl_init);
  if (curl_init_result != CURLE_OK)
    return mt_err_set(err, MT_EIO, "cannot initialise libcurl: %s",
                      curl_easy_strerror(curl_init_result));
  mt_http_t *h = calloc(1, sizeof *h);
  if (h == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  if (opts != NULL)
    h->opts = *opts;
  if (h->opts.max_attempts <= 0)
    h->opts.max_attempts = DEFAULT_MAX_ATTEMPTS;
  if (h->opts.connect_timeout_ms <= 0)
    h->opts.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
  if (h->opts.timeout_ms <= 0)
    h->opts.timeout_ms = DEFAULT_TIMEOUT_MS;
  if (h->opts.backoff_base_ms == 0)
    h->opts.backoff_base_ms = DEFAULT_BACKOFF_BASE_MS;
  if (h->opts.backoff_cap_ms == 0)
    h->opts.backoff_cap_ms = DEFAULT_BACKOFF_CAP_MS;
  if (h->opts.ca_file != NULL &&
      (h->ca_file = strdup(h->opts.ca_file)) == NULL) {
    free(h);
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  h->opts.ca_file = h->ca_file;
  if ((h->multi = curl_multi_init()) == NULL) {
    free(h->ca_file);
    free(h);
    return mt_err_set(err, MT_EIO, "cannot make a curl multi handle");
  }
  pthread_mutex_init(&h->stats_lock, NULL);
  h->loop = loop;
  h->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)h ^ 0x9E3779B97F4A7C15ull;
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  h->open_handles = 1;
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, (void *)h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, (void *)h);
  *out = h;
  return 0;
}

void mt_http_free(mt_http_t *h) {
  if (h == NULL || h->closing)
    return;
  h->closing = 1;
  while (h->requests != NULL) {
    request_t *r = h->requests;
    mt_err_t err;
    if (r->in_multi)
      curl_multi_remove_handle(h->multi, r->easy);
    r->in_multi = 0;
    uv_timer_stop(&r->backoff);
    mt_err_set(&err, MT_EIO,
               REQ_FMT
               ": cancelled after %d attempt(s): the HTTP client was freed",
               REQ_ARGS(r), r->resp.attempts);
    r->resp.status = 0;
    finish(r, MT_EIO, &err);
  }
  /* Closes the kept-alive connections, reporting their sockets to
   * on_curl_socket; any it does not report are closed after. */
  curl_multi_cleanup(h->multi);
  h->multi = NULL;
  while (h->socks != NULL)
    sock_close(h->socks);
  uv_timer_stop(&h->timer);
  uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}

/* ---- blocking ----------------------------------------------------------- */

typedef struct sync_s {
  int finished;
  int rc;
  mt_http_resp_t *out;
  mt_err_t *err;
} sync_t;

static void on_sync_done(int rc, mt_http_resp_t *resp, const mt_err_t *err,
                         void *arg) {
  sync_t *s = arg;
  s->finished = 1;
  s->rc = rc;
  *s->out = *resp;
  resp->body = (mt_buf_t)MT_BUF_INIT; /* moved to *out */
  if (rc != 0 && s->err != NULL)
    snprintf(s->err->msg, sizeof s->err->msg, "%s", err->msg);
}

int mt_http_fetch_sync(const mt_http_req_t *req, mt_http_resp_t *out,
                       mt_err_t *err) {
  uv_loop_t loop;
  mt_http_t *h = NULL;
  sync_t s = {0, 0, out, err};
  int rc;
  memset(out, 0, sizeof *out);
  if ((rc = uv_loop_init(&loop)) != 0)
    return mt_err_set(err, MT_ESYS, "cannot make an event loop: %s",
                      uv_strerror(rc));
  if ((rc = mt_http_new(&loop, NULL, &h, err)) != 0)
    goto done;
  if ((rc = mt_http_send(h, req, on_sync_done, &s, err)) != 0)
    goto done;
  /* A pending request always keeps a timer or a socket active; should the
   * loop run dry anyway, mt_http_free() calls back with an error. */
  while (!s.finished && uv_run(&loop, UV_RUN_ONCE) != 0)
    ;
  mt_http_free(h);
  h = NULL;
  rc = s.rc;
done:
  mt_http_free(h);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rc;
}
