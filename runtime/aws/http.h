/*
 * An HTTP client for the AWS backend: libcurl's multi interface driven by a
 * libuv loop (a uv_poll_t per socket curl opens, one uv_timer_t for curl's
 * timeout, as curl's multi-uv.c example does), so that many requests are in
 * flight on the loop thread and none of them blocks it.
 *
 * One client is one curl multi handle: its connections are kept alive and
 * reused by every request it sends. TLS peers are verified (host and
 * chain); curl never raises signals. A request is retried, with exponential
 * backoff and full jitter on the loop's timers, after a network error, a
 * 429, a 5xx other than 501, or a response its classifier calls retryable
 * (by default mt_http_aws_retryable(): AWS's throttling codes, which come as
 * 400s). An optional prepare callback runs before every attempt, so that a
 * retry carries a fresh signature. Attempts, retries and errors are counted
 * per operation label ("sqs.ReceiveMessage").
 *
 * Threads: a client belongs to the thread that runs its loop. Every call
 * below that takes an mt_http_t runs on that thread, and so do the prepare
 * and completion callbacks; the exception is mt_http_stats(), which any
 * thread may call while the client lives. mt_http_fetch_sync() makes a
 * private loop and client, so any thread may call it, concurrently too.
 *
 * Ownership: mt_http_send() copies the request (strings, headers, body), so
 * the caller may release its own copy as soon as send returns. The response
 * handed to a completion callback belongs to the client and lives until the
 * callback returns; the callback may move the body out of it (take
 * resp->body and leave MT_BUF_INIT in its place).
 *
 * Error messages name the method and the URL, so do not put a secret in a
 * URL: send it in a header or the body, which are never quoted.
 */
#ifndef MT_AWS_HTTP_H
#define MT_AWS_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/error.h"

typedef struct mt_http_s mt_http_t;

/* One header; the strings belong to whoever filled the struct. */
typedef struct mt_http_header_s {
  const char *name;
  const char *value;
} mt_http_header_t;

/* A list of headers that owns its strings; prepare callbacks add to one.
 * Zero it before use (MT_HTTP_HEADERS_INIT). */
typedef struct mt_http_headers_s {
  mt_http_header_t *v;
  size_t n, cap;
} mt_http_headers_t;

// clang-format off
#define MT_HTTP_HEADERS_INIT {NULL, 0, 0}
// clang-format on

/* Appends a copy of name and value. Returns 0, MT_EINVAL for a name or value
 * that would break the header block (a CR, an LF, a colon in the name), or
 * MT_ENOMEM. */
int mt_http_headers_add(mt_http_headers_t *h, const char *name,
                        const char *value);

/* The value of the first header called name (case-insensitive), or NULL. */
const char *mt_http_headers_get(const mt_http_headers_t *h, const char *name);

/* Releases the copies and zeroes the list; accepts NULL. */
void mt_http_headers_free(mt_http_headers_t *h);

/* What came back. status is 0 when no HTTP response arrived at all. */
typedef struct mt_http_resp_s {
  long status;
  int attempts; /* made, the first one included */
  /* The headers the AWS layer reads, "" when absent; longer values are
   * cut short. request_id is x-amzn-RequestId, else x-amz-request-id. */
  char content_type[128];
  char request_id[128];
  mt_buf_t body;
} mt_http_resp_t;

/* Releases the body and zeroes resp; accepts NULL. */
void mt_http_resp_free(mt_http_resp_t *resp);

typedef struct mt_http_req_s mt_http_req_t;

/* Called before each attempt, the first and every retry, with the client's
 * copy of the request. It adds headers to `add` (empty at each call), sent
 * after req->headers: the AWS layer signs here, so that each attempt
 * carries its own X-Amz-Date and signature. A non-zero return (with err
 * set) ends the request with that code: from mt_http_send() itself for the
 * first attempt, through the completion callback for a retry. */
typedef int (*mt_http_prepare_cb)(const mt_http_req_t *req,
                                  mt_http_headers_t *add, void *arg,
                                  mt_err_t *err);

/* Says whether a response that is neither 2xx, 429 nor 5xx is worth
 * another attempt (1) or final (0). */
typedef int (*mt_http_retryable_cb)(const mt_http_resp_t *resp);

/* Called exactly once per request sent, when it is over. rc is 0 when an
 * HTTP response came back, whatever its status (the last attempt's, should
 * the retries run out), and otherwise MT_ETIMEDOUT (the total or connect
 * timeout), MT_EIO (any other transport failure, or the client freed with
 * the request pending), or what prepare returned; err then says what
 * happened, naming the method, URL and attempt. */
typedef void (*mt_http_done_cb)(int rc, mt_http_resp_t *resp,
                                const mt_err_t *err, void *arg);

struct mt_http_req_s {
  const char *method; /* "GET", "POST", "PUT", ...; NULL: "GET" */
  const char *url;
  const mt_http_header_t *headers; /* sent on every attempt */
  size_t nheaders;
  const char *body; /* may be NULL when body_len is 0 */
  size_t body_len;
  /* The label attempts and errors are counted under, e.g.
   * "sqs.ReceiveMessage"; NULL counts under "other". At most 63 bytes. */
  const char *op;
  mt_http_prepare_cb prepare; /* NULL: nothing to add */
  void *prepare_arg;
  mt_http_retryable_cb retryable; /* NULL: mt_http_aws_retryable */
  /* 0 takes the client's defaults (mt_http_opts_t). */
  int max_attempts;
  long connect_timeout_ms;
  long timeout_ms; /* per attempt, from connecting to the last byte */
};

typedef struct mt_http_opts_s {
  int max_attempts;         /* 0: 5 */
  long connect_timeout_ms;  /* 0: 5000 */
  long timeout_ms;          /* 0: 30000 */
  unsigned backoff_base_ms; /* 0: 100 */
  unsigned backoff_cap_ms;  /* 0: 20000 */
  const char *ca_file;      /* tests only: trust this PEM bundle instead */
  /* The jitter's random source, a number in [0, 1). NULL: the client's own
   * generator. Tests pin it near 1 to see the ceilings themselves. */
  double (*random)(void *arg);
  void *random_arg;
} mt_http_opts_t;

/* Makes a client on loop (which the caller owns and runs); opts may be
 * NULL for the defaults. Returns 0, MT_ENOMEM or MT_EIO (curl could not be
 * set up). */
int mt_http_new(uv_loop_t *loop, const mt_http_opts_t *opts, mt_http_t **out,
                mt_err_t *err);

/* Sends req. Returns 0, and done(…, arg) will be called exactly once on a
 * later turn of the loop; or an error (MT_EINVAL for a request without a
 * URL, MT_ESTATE once mt_http_free() has begun, MT_ENOMEM, or what the
 * first prepare returned) and done is never called. */
int mt_http_send(mt_http_t *h, const mt_http_req_t *req, mt_http_done_cb done,
                 void *arg, mt_err_t *err);

/* Frees the client, accepting NULL. Every request still pending is
 * cancelled, and its completion callback called at once, from inside this
 * call, with MT_EIO and a message saying the client was closed: callers
 * that hold state per request get it back exactly once either way. Those
 * callbacks may not send on this client (MT_ESTATE). The libuv handles close
 * as libuv's do: the memory is released when the loop next runs, so run it
 * (uv_run) before uv_loop_close(). */
void mt_http_free(mt_http_t *h);

/* The counts for one operation label. */
typedef struct mt_http_stat_s {
  char op[64];
  uint64_t attempts; /* requests put on the wire, retries included */
  uint64_t retries;  /* attempts after the first */
  uint64_t errors;   /* requests that ended without a 2xx response */
} mt_http_stat_t;

/* Copies up to max labels' counts into out, in the order the labels were
 * first seen, and returns how many labels there are (possibly more than
 * max). Safe from any thread while the client lives. */
size_t mt_http_stats(mt_http_t *h, mt_http_stat_t *out, size_t max);

/* Sends req on a private loop and client and waits for the outcome: the
 * same retries, backoff and timeouts, blocking the calling thread, for the
 * CLI and for credential fetches on a background thread. Returns as the
 * completion callback's rc would; *out (which the caller frees with
 * mt_http_resp_free) receives the response, or status 0 if none came.
 * The private client's defaults are mt_http_opts_t's (the request's own
 * limits apply), and its counts go with it. */
int mt_http_fetch_sync(const mt_http_req_t *req, mt_http_resp_t *out,
                       mt_err_t *err);

/* The default classifier: 1 when the body of an error response names one of
 * AWS's throttling or transient error codes (ThrottlingException,
 * Throttling, RequestThrottled, TooManyRequestsException, SlowDown,
 * RequestLimitExceeded, ...), read from a JSON body's "__type" or "code"
 * (a "com.amazonaws.sqs#" prefix or ":" suffix aside) or an XML body's
 * <Code>. */
int mt_http_aws_retryable(const mt_http_resp_t *resp);

/* The backoff before the retry that follows attempt number `attempt`
 * (1 for the first): u * min(cap, base * 2^(attempt - 1)) milliseconds,
 * u in [0, 1), the "full jitter" of AWS's architecture blog. */
uint64_t mt_http_backoff_ms(unsigned base_ms, unsigned cap_ms, int attempt,
                            double u);

#endif
