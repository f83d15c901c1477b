/* aws/http.c with its header callback exported: see aws_shims.h. */
#include "aws/http.c"

#include "aws_shims.h"

void mt_fuzz_http_header(mt_http_resp_t *resp, const char *line, size_t len) {
  request_t *r = calloc(1, sizeof *r);
  if (r == NULL)
    abort();
  memcpy(r->resp.content_type, resp->content_type, sizeof resp->content_type);
  memcpy(r->resp.request_id, resp->request_id, sizeof resp->request_id);
  /* curl's callback takes a char *, and on_header only reads it. */
  size_t used = on_header((char *)line, 1, len, r);
  if (used != len)
    abort();
  memcpy(resp->content_type, r->resp.content_type, sizeof resp->content_type);
  memcpy(resp->request_id, r->resp.request_id, sizeof resp->request_id);
  free(r);
}
