/*
 * What SQS and EventBridge Scheduler (or anything that answers in their
 * place: a proxy, moto, a captive portal) send back, through the code that
 * reads it: the header lines (aws/http.c), the retry classifier, the
 * result with AWS's error code and message (aws/client.c), and the typed
 * answers of every operation (aws/sqs.c, aws/scheduler.c). The input is
 * the operation, then the response as it came off the wire:
 *
 *   sqs.DeleteMessageBatch 3
 *   HTTP/1.1 200 OK
 *   x-amzn-RequestId: 5f0c...
 *
 *   {"Successful":[{"Id":"0"}],"Failed":[]}
 *
 * The first line names the operation by its label (aws/sqs.c's and
 * aws/scheduler.c's op_labels) and, for a batch, how many entries were
 * sent (1-10; default 10).
 *
 * The properties: what aws_shims.h's callbacks check of each answer, and
 * client.h's promise that the attempt's secret key and session token never
 * appear in a result's code, message or log line, whatever the body says.
 */
#include "fuzz.h"

#include "aws/client.h"
#include "aws/http.h"
#include "aws_shims.h"

static const mt_aws_creds_t creds = {
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "FwoGZXIvYXdzEFUaDFuzzSessionTokenForTheHarness0123456789"};

static void no_secret(const char *what, const char *s) {
  FUZZ_CHECK(strstr(s, creds.secret_access_key) == NULL &&
                 strstr(s, creds.session_token) == NULL,
             "a secret in the result's %s: %s", what, s);
}

/* The next line of [*p, end) including its '\n', or NULL at the end. */
static const char *next_line(const char **p, const char *end, size_t *len) {
  const char *line = *p;
  if (line >= end)
    return NULL;
  const char *nl = memchr(line, '\n', (size_t)(end - line));
  *p = nl != NULL ? nl + 1 : end;
  *len = (size_t)(*p - line);
  return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = (const char *)data, *end = p + size, *line;
  size_t len;
  char label[64] = "", *sp;
  size_t n = 10;

  if ((line = next_line(&p, end, &len)) == NULL)
    return 0;
  snprintf(label, sizeof label, "%.*s", (int)len, line);
  label[strcspn(label, "\r\n")] = '\0';
  if ((sp = strchr(label, ' ')) != NULL) {
    long v = atol(sp + 1);
    n = v >= 1 && v <= 10 ? (size_t)v : 10;
    *sp = '\0';
  }

  /* The status line and the headers, each handed over as curl does, the
   * blank line that ends them included; after a 1xx another block comes. */
  mt_http_resp_t resp;
  memset(&resp, 0, sizeof resp);
  resp.attempts = 1;
  resp.status = 200;
  int block_start = 1;
  while ((line = next_line(&p, end, &len)) != NULL) {
    if (block_start && len > 12 && memcmp(line, "HTTP/", 5) == 0) {
      const char *s = memchr(line, ' ', len);
      if (s != NULL && s + 4 <= line + len && s[1] >= '1' && s[1] <= '9' &&
          s[2] >= '0' && s[2] <= '9' && s[3] >= '0' && s[3] <= '9')
        resp.status = (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    }
    block_start = 0;
    mt_fuzz_http_header(&resp, line, len);
    if (len <= 2 && (line[0] == '\n' || (line[0] == '\r' && len == 2))) {
      if (resp.status >= 200)
        break;
      block_start = 1;
    }
  }
  /* The body, in a buffer of exactly its size (mt_buf_t's NUL after it),
   * so that ASan sees any read past the end. */
  size_t blen = (size_t)(end - p);
  resp.body.data = malloc(blen + 1);
  if (resp.body.data == NULL)
    abort();
  memcpy(resp.body.data, p, blen);
  resp.body.data[blen] = '\0';
  resp.body.len = blen;
  resp.body.cap = blen + 1;

  mt_http_aws_retryable(&resp);
  mt_aws_result_t res;
  /* In the log line the operation is ours, not the input's. */
  mt_fuzz_aws_result("fuzz.Operation", "POST", "https://example.com/", &creds,
                     &resp, &res);
  FUZZ_CHECK((res.rc == 0) == (res.kind == MT_AWS_OK), "rc %d, kind %s", res.rc,
             mt_aws_kind_name(res.kind));
  FUZZ_CHECK(res.rc != 0 || (res.doc != NULL && res.json != NULL),
             "ok without a document");
  no_secret("code", res.code);
  no_secret("message", res.message);
  no_secret("log line", res.err.msg);
  if (mt_fuzz_sqs_done(label, n, &res) != 0)
    mt_fuzz_ebs_done(label, &res);
  mt_aws_result_free(&res);
  mt_http_resp_free(&resp);
  return 0;
}
