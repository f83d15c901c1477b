/*
 * What fuzz_aws_response reaches inside the AWS layer. The response
 * handling it fuzzes is static in aws/http.c (header lines), aws/client.c
 * (status and body into a result, AWS's error codes and messages),
 * aws/sqs.c and aws/scheduler.c (typed answers), reached in production
 * only through a live HTTP exchange. Each shim_*.c includes one of those
 * files whole and exports a small entry point to its statics; the
 * archive's own copy of that object is then never linked (every symbol it
 * defines is defined already), as tests/unit/test_discovery.c replaces the
 * executor.
 *
 * The typed callbacks live in the shims: they read every field of the
 * answer, so that ASan sees a string that points into freed or foreign
 * memory, and check what the headers promise of it.
 */
#ifndef MT_FUZZ_AWS_SHIMS_H
#define MT_FUZZ_AWS_SHIMS_H

#include <stddef.h>
#include <string.h>

#include "aws/client.h"
#include "aws/http.h"

/* aws/http.c's header callback: one line as curl hands it over (status
 * lines included, line break included) into resp's content_type and
 * request_id. */
void mt_fuzz_http_header(mt_http_resp_t *resp, const char *line, size_t len);

/* aws/client.c: the result of a call labelled op that got resp, signed
 * with creds (whose secrets must be cut out of any message). *out owns its
 * document; free it with mt_aws_result_free(). */
void mt_fuzz_aws_result(const char *op, const char *method, const char *url,
                        const mt_aws_creds_t *creds, const mt_http_resp_t *resp,
                        mt_aws_result_t *out);

/* aws/sqs.c: hands res to the typed callback of the SQS operation called
 * label (a batch of n entries, 1-10), as a response to it would. Returns 0,
 * or -1 for a label that is not an SQS operation. */
int mt_fuzz_sqs_done(const char *label, size_t n, mt_aws_result_t *res);

/* aws/scheduler.c: the same for EventBridge Scheduler's operations. */
int mt_fuzz_ebs_done(const char *label, mt_aws_result_t *res);

/* Reads all of s, so that ASan checks it is a live string. */
static inline void mt_fuzz_touch(const char *s) {
  if (s != NULL) {
    volatile size_t n = strlen(s);
    (void)n;
  }
}

#endif
