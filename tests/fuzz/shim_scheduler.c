/* aws/scheduler.c with its completion callback exported: see
 * aws_shims.h. */
#include "aws/scheduler.c"

#include "aws_shims.h"
#include "fuzz.h"

static void written(const mt_aws_result_t *res, const mt_ebs_written_t *out,
                    void *arg) {
  (void)arg;
  FUZZ_CHECK((res->rc == 0) == (out != NULL), "write: rc %d", res->rc);
  if (out != NULL)
    mt_fuzz_touch(out->arn);
}

static void got(const mt_aws_result_t *res, const mt_ebs_info_t *out,
                void *arg) {
  (void)arg;
  FUZZ_CHECK((res->rc == 0) == (out != NULL), "get: rc %d", res->rc);
  if (out == NULL)
    return;
  const char *fields[] = {out->arn,
                          out->name,
                          out->group,
                          out->expression,
                          out->timezone,
                          out->state,
                          out->action_after_completion,
                          out->flexible_mode,
                          out->target_arn,
                          out->role_arn,
                          out->input,
                          out->message_group_id};
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
    mt_fuzz_touch(fields[i]);
}

static void deleted(const mt_aws_result_t *res, void *arg) {
  (void)arg;
  mt_fuzz_touch(res->err.msg);
}

static void group(const mt_aws_result_t *res, const mt_ebs_group_t *out,
                  void *arg) {
  (void)arg;
  FUZZ_CHECK((res->rc == 0) == (out != NULL), "group: rc %d", res->rc);
  if (out != NULL) {
    mt_fuzz_touch(out->arn);
    mt_fuzz_touch(out->name);
    mt_fuzz_touch(out->state);
  }
}

int mt_fuzz_ebs_done(const char *label, mt_aws_result_t *res) {
  /* Upserts are left out: their next step sends a request. */
  static const op_kind_t kinds[] = {OP_CREATE, OP_UPDATE, OP_GET, OP_DELETE,
                                    OP_GROUP};
  size_t i = 0, n = sizeof kinds / sizeof *kinds;
  while (i < n && strcmp(op_labels[kinds[i]], label) != 0)
    i++;
  if (i == n)
    return -1;
  ebs_op_t *op = calloc(1, sizeof *op);
  if (op == NULL)
    abort();
  op->kind = kinds[i];
  switch (op->kind) {
  case OP_CREATE:
  case OP_UPDATE:
  case OP_UPSERT: op->cb.write = written; break;
  case OP_GET: op->cb.get = got; break;
  case OP_DELETE: op->cb.del = deleted; break;
  case OP_GROUP: op->cb.group = group; break;
  }
  on_done(res, op); /* frees op */
  return 0;
}
