/*
 * AWS Signature Version 4, header form: signs an HTTP request for a region
 * and a service with an access key, the way SQS and EventBridge Scheduler
 * check it. Our own code on OpenSSL's libcrypto (SHA-256, HMAC), because
 * curl's built-in signer (7.88) orders query parameters wrongly.
 *
 * The caller owns everything it passes in (request, headers, credentials);
 * mt_sigv4_sign() fills an mt_sigv4_t whose buffers it owns until
 * mt_sigv4_free(). Beside the headers to send, the result keeps the
 * canonical request and the string to sign, the two texts AWS's error
 * responses and the conformance suite talk about.
 *
 * Secrets (the secret access key, the session token) never appear in an
 * error message, and the key material derived from the secret is wiped
 * from memory once the signature is made.
 */
#ifndef MT_AWS_SIGV4_H
#define MT_AWS_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"

/* Credentials: plain strings the caller owns. session_token is NULL (or "")
 * for long-term keys and set for temporary ones (STS, instance roles). */
typedef struct mt_aws_creds_s {
  const char *access_key_id;
  const char *secret_access_key;
  const char *session_token;
} mt_aws_creds_t;

/* One HTTP header; the strings belong to whoever filled the struct. */
typedef struct mt_aws_header_s {
  const char *name;
  const char *value;
} mt_aws_header_t;

/* Request flags. Zero is right for SQS and EventBridge Scheduler. */
enum {
  /* Sign the path as given, without removing "." and ".." segments or
   * collapsing "//". S3 wants this (it does not normalise paths); every
   * other service normalises. (S3 also wants the path encoded once, not
   * twice; we do not sign for S3 and this flag does not cover that.) */
  MT_SIGV4_NO_NORMALIZE = 1 << 0,
  /* Add x-amz-content-sha256 (the payload hash) as a signed header, as S3
   * requires. */
  MT_SIGV4_CONTENT_SHA256 = 1 << 1,
  /* Send X-Amz-Security-Token outside the signature rather than as a
   * signed header, as AWS IoT wants. SQS and Scheduler want it signed. */
  MT_SIGV4_UNSIGNED_TOKEN = 1 << 2
};

/* The request to sign.
 *
 * path is exactly what goes on the request line: already percent-encoded by
 * the caller ("/queue%20name"), "" meaning "/". Services other than S3
 * check a canonical path whose segments are encoded once more, so the
 * signer encodes the given path again ("%20" becomes "%2520"); a raw byte
 * such as a space or UTF-8 is encoded once, as the conformance suite
 * expects.
 *
 * query is the query string as sent, without '?', or NULL. Each key and
 * value is percent-decoded and encoded again with the unreserved set, so
 * "%41" and "A" sign alike. '+' is a literal plus (AWS does not read it as
 * a space): write a space as %20.
 *
 * Every header in headers is signed, and Host must be among them. Leave out
 * headers that something between us and AWS may rewrite (User-Agent, say)
 * and send them unsigned. The headers the signer adds (Authorization,
 * X-Amz-Date, X-Amz-Security-Token, x-amz-content-sha256 with its flag) are
 * refused here. */
typedef struct mt_sigv4_req_s {
  const char *method;
  const char *path;
  const char *query;
  const mt_aws_header_t *headers;
  size_t nheaders;
  const void *body; /* may be NULL when body_len is 0 */
  size_t body_len;
  const char *region;  /* "eu-west-1" */
  const char *service; /* "sqs", "scheduler" */
  int64_t time;        /* seconds since the epoch, UTC */
  unsigned flags;      /* MT_SIGV4_* */
} mt_sigv4_req_t;

/* At most: X-Amz-Date, X-Amz-Security-Token, x-amz-content-sha256 and
 * Authorization. */
#define MT_SIGV4_MAX_HEADERS 4

typedef struct mt_sigv4_s {
  /* The headers to add to the request, in this order. Their values point
   * into this struct and into creds->session_token, so they are valid
   * while both are: use them in place, do not copy the struct. */
  mt_aws_header_t headers[MT_SIGV4_MAX_HEADERS];
  size_t nheaders;
  char amz_date[17];      /* "20150830T123600Z", the X-Amz-Date value */
  char payload_hash[65];  /* hex SHA-256 of the body */
  char signature[65];     /* hex HMAC-SHA256 of the string to sign */
  mt_buf_t authorization; /* the Authorization value */
  /* For tests and debugging: AWS's SignatureDoesNotMatch response quotes
   * both, so they are what one compares. */
  mt_buf_t canonical_request;
  mt_buf_t string_to_sign;
} mt_sigv4_t;

/* Signs req with creds. out must be zeroed before its first use; a struct
 * that holds an earlier result may be passed again (a retry signs with a
 * new time) and its buffers are reused. Returns 0, MT_EINVAL naming what is
 * wrong with the request or the credentials (never quoting a secret or a
 * header value), MT_ENOMEM, or MT_ESYS if libcrypto fails. On failure *out
 * is left freed and zeroed. */
int mt_sigv4_sign(const mt_sigv4_req_t *req, const mt_aws_creds_t *creds,
                  mt_sigv4_t *out, mt_err_t *err);

/* Releases the buffers of out and zeroes it; accepts NULL and a zeroed
 * struct. */
void mt_sigv4_free(mt_sigv4_t *out);

#define MT_SIGV4_KEY_LEN 32

/* The signing key for one day ("YYYYMMDD"), region and service: HMAC-SHA256
 * chained from "AWS4" + secret through date, region, service and
 * "aws4_request". It stays valid for the whole day, which is why SDKs cache
 * it; mt_sigv4_sign() derives it each time. Returns 0, MT_ENOMEM or
 * MT_ESYS. The caller should wipe key when done with it. */
int mt_sigv4_signing_key(const char *secret, const char *date,
                         const char *region, const char *service,
                         unsigned char key[MT_SIGV4_KEY_LEN], mt_err_t *err);

#endif
