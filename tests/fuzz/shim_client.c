/* aws/client.c with make_result() exported: see aws_shims.h. */
#include "aws/client.c"

#include "aws_shims.h"

void mt_fuzz_aws_result(const char *op, const char *method, const char *url,
                        const mt_aws_creds_t *creds, const mt_http_resp_t *resp,
                        mt_aws_result_t *out) {
  call_t c;
  memset(&c, 0, sizeof c);
  snprintf(c.op, sizeof c.op, "%s", op);
  /* make_result() only reads them. */
  c.method = (char *)method;
  c.url = (char *)url;
  c.creds.creds = *creds;
  make_result(&c, 0, resp, NULL);
  *out = c.res;
}
