/*
 * A signed-request client for the two AWS APIs the backend speaks: SQS
 * (AWS JSON 1.0: POST / with X-Amz-Target) and EventBridge Scheduler
 * (REST-JSON: the operation is the method and the path). aws/sqs.h and
 * aws/scheduler.h build typed requests on top of mt_aws_call(); this layer
 * knows the endpoints, signs, sends, and turns what comes back into either
 * a parsed JSON document or an AWS error with its code and message.
 *
 * Every attempt is signed afresh in the HTTP client's prepare callback:
 * the current time and the provider's current credentials, so that a retry
 * after a backoff, or after the provider refreshed, is never refused for a
 * stale date or an expired token. Retries themselves are aws/http.h's
 * (throttling, 5xx, network errors).
 *
 * Ownership: mt_aws_new() copies the configuration. The credentials
 * provider is the caller's and must outlive the client. An mt_aws_result_t
 * owns its parsed document; the callback's result lives until the callback
 * returns, and the callback may keep the document by taking res->doc (and
 * leaving NULL in its place).
 *
 * Threads: a client made with a loop belongs to the loop's thread:
 * mt_aws_call(), mt_aws_free() and every callback run there, and nothing
 * here blocks it. The blocking calls (mt_aws_call_sync() and the typed
 * *_sync variants) make a private loop per call (mt_http_fetch_sync), read
 * only the client's configuration and the thread-safe provider, and may be
 * called from any thread, at once too, on a client made with or without a
 * loop; they are for the CLI (`moontask check`), never for a loop thread.
 *
 * Secrets never appear in a message: the secret key and session token of
 * the attempt are cut out of whatever AWS answered (its
 * SignatureDoesNotMatch can quote the canonical request, token and all)
 * before the text reaches a result.
 */
#ifndef MT_AWS_CLIENT_H
#define MT_AWS_CLIENT_H

#include <stddef.h>
#include <uv.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "common/error.h"
#include "json/doc.h"

typedef struct mt_aws_s mt_aws_t;

/* What the backend's `aws = {...}` configuration holds. Strings are copied
 * by mt_aws_new(); NULL means unset. */
typedef struct mt_aws_conf_s {
  /* "eu-west-1". NULL: $AWS_REGION, else $AWS_DEFAULT_REGION. */
  const char *region;
  /* NULL: each service at its AWS endpoint (https://sqs.<region>.
   * amazonaws.com, https://scheduler.<region>.amazonaws.com; .com.cn in
   * China), unless $AWS_ENDPOINT_URL_SQS / $AWS_ENDPOINT_URL_SCHEDULER or
   * $AWS_ENDPOINT_URL say otherwise, as the SDKs read them. Set: every
   * service at this URL (moto, LocalStack, a VPC endpoint), "http(s)://
   * host[:port][/base]". */
  const char *endpoint;
  /* Defaults for the typed calls that take NULL in their place. */
  const char *queue_url;
  const char *schedule_group; /* NULL: EventBridge's "default" group */
  const char *role_arn;       /* the role EventBridge assumes to send */
} mt_aws_conf_t;

typedef enum mt_aws_service_e { MT_AWS_SQS, MT_AWS_SCHEDULER } mt_aws_service_t;

/* What kind of outcome a call had, for decisions: callers branch on this,
 * not on message text. */
typedef enum mt_aws_kind_e {
  MT_AWS_OK,          /* 2xx, the JSON document parsed */
  MT_AWS_ENORESPONSE, /* no HTTP response: network, timeout, the client
                         closed, or no credentials to sign with */
  MT_AWS_EPROTOCOL,   /* 2xx whose body is not JSON */
  MT_AWS_ETHROTTLED,  /* throttling, still so when the retries ran out */
  MT_AWS_ESERVER,     /* 5xx, InternalFailure, ServiceUnavailable */
  MT_AWS_EAUTH,       /* signature, credentials or permissions refused */
  MT_AWS_EVALIDATION, /* a request AWS calls malformed or out of range */
  MT_AWS_ENOTFOUND,   /* ResourceNotFoundException, QueueDoesNotExist */
  MT_AWS_ECONFLICT,   /* ConflictException (the schedule exists) */
  MT_AWS_EOTHER       /* any other AWS error: see code */
} mt_aws_kind_t;

/* The outcome of one call. rc is 0 for MT_AWS_OK; otherwise MT_ENOTFOUND
 * (ENOTFOUND), MT_ESTATE (ECONFLICT), MT_EINVAL (EVALIDATION), MT_ECONFIG
 * (EAUTH), MT_EPAYLOAD (EPROTOCOL), for ENORESPONSE what aws/http.h
 * reported (MT_ETIMEDOUT, MT_EIO, or MT_ESTATE for credentials that
 * expired before a retry), and MT_EIO for the rest (throttled, server,
 * other). Branch on kind; rc is for mt_strerror() and exit codes. */
typedef struct mt_aws_result_s {
  int rc;
  mt_aws_kind_t kind;
  long status;  /* HTTP status; 0 when none came */
  int attempts; /* made, the first one included */
  /* AWS's error code without its namespace ("com.amazonaws.sqs#" and a
   * ":..." suffix go): "QueueDoesNotExist", "ConflictException",
   * "AWS.SimpleQueueService.NonExistentQueue". "" when there was none. */
  char code[128];
  char message[512]; /* AWS's message, on one line; may be "" */
  char request_id[128];
  /* MT_AWS_OK: the parsed body ("{}" when it was empty), and its root. */
  mt_jdoc_t *doc;
  const mt_jval_t *json;
  /* One line for a log: the operation, status, code, message, request id
   * and attempts, or what kept a response from coming. */
  mt_err_t err;
} mt_aws_result_t;

/* Releases the document (if still there) and zeroes res; accepts NULL. */
void mt_aws_result_free(mt_aws_result_t *res);

/* "ok", "no response", "throttled", "conflict", ... */
const char *mt_aws_kind_name(mt_aws_kind_t kind);

/* One request. */
typedef struct mt_aws_req_s {
  mt_aws_service_t service;
  /* The label http counts it under ("sqs.SendMessage"); at most 63
   * bytes. */
  const char *op;
  const char *method; /* NULL: "POST" */
  /* Percent-encoded path with an optional "?query", appended to the
   * endpoint's: "/", "/schedules/mt-42?groupName=g". */
  const char *path;
  const char *target; /* X-Amz-Target, or NULL */
  const char *body;   /* JSON text, or NULL for none */
  size_t body_len;
  /* 0: the client's (mt_http_opts_t). A long poll needs more than its
   * wait. */
  long timeout_ms;
  int max_attempts;
} mt_aws_req_t;

typedef void (*mt_aws_done_cb)(mt_aws_result_t *res, void *arg);

/* Makes a client. With loop, async calls go through an mt_http_t of its
 * own on that loop (http_opts may be NULL for the defaults); with loop
 * NULL, the client serves the blocking calls only. creds must outlive the
 * client. Returns 0, MT_ECONFIG for a missing region or an endpoint that
 * is not an http(s) URL (the message names it), MT_ENOMEM or MT_EIO. */
int mt_aws_new(uv_loop_t *loop, const mt_aws_conf_t *conf,
               mt_aws_creds_provider_t *creds, const mt_http_opts_t *http_opts,
               mt_aws_t **out, mt_err_t *err);

/* Frees the client, accepting NULL. The callback of every call still
 * pending runs from inside, with MT_AWS_ENORESPONSE (see mt_http_free);
 * run the loop afterwards so that the HTTP client's handles close. */
void mt_aws_free(mt_aws_t *aws);

/* The configuration as the client resolved it (region and endpoint
 * filled in); valid while the client lives. */
const mt_aws_conf_t *mt_aws_conf(const mt_aws_t *aws);

/* The base URL requests to service go to, without a trailing '/'. */
const char *mt_aws_endpoint(const mt_aws_t *aws, mt_aws_service_t service);

/* The HTTP client, for mt_http_stats() (requests per operation label);
 * NULL for a client made without a loop. */
mt_http_t *mt_aws_http(mt_aws_t *aws);

/* Sends req. Returns 0, and done(res, arg) is called exactly once on a
 * later turn of the loop; or MT_EINVAL (a request without a path),
 * MT_ESTATE (a client made without a loop, or being freed), MT_ENOMEM, or
 * what signing the first attempt returned (MT_ESTATE for credentials that
 * expired), and done is never called. */
int mt_aws_call(mt_aws_t *aws, const mt_aws_req_t *req, mt_aws_done_cb done,
                void *arg, mt_err_t *err);

/* Sends req and waits for its outcome, blocking the calling thread (any
 * thread but a loop's). *out (zeroed first) receives the result, which the
 * caller frees with mt_aws_result_free(); returns out->rc. */
int mt_aws_call_sync(mt_aws_t *aws, const mt_aws_req_t *req,
                     mt_aws_result_t *out);

/* ---- for aws/sqs.c and aws/scheduler.c -------------------------------- */

/* The string member key of obj, or NULL if obj is not an object or the
 * member is missing or not a string. */
const char *mt__aws_jstr(const mt_jval_t *obj, const char *key);

/* The member key as an integer, from a number or a decimal string (SQS
 * sends attributes as strings); dflt if it is missing or neither. */
long mt__aws_jlong(const mt_jval_t *obj, const char *key, long dflt);

/* Writes `"key":` and then the JSON string s into out, with a leading
 * comma unless first. Returns 0 or MT_ENOMEM. */
int mt__aws_jkey_str(mt_buf_t *out, int first, const char *key, const char *s);

/* Refuses a request before anything is sent: sets err to "op: ..." and
 * returns MT_EINVAL. */
int mt__aws_refuse(mt_err_t *err, const char *op, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
