/* aws/sqs.c with its completion callback exported: see aws_shims.h. */
#include "aws/sqs.c"

#include "aws_shims.h"
#include "fuzz.h"

static void sent(const mt_aws_result_t *res, const mt_sqs_sent_t *out,
                 void *arg) {
  (void)arg;
  FUZZ_CHECK((res->rc == 0) == (out != NULL), "send: rc %d", res->rc);
  if (out != NULL) {
    mt_fuzz_touch(out->message_id);
    mt_fuzz_touch(out->sequence_number);
  }
}

static void received(const mt_aws_result_t *res, const mt_sqs_received_t *out,
                     void *arg) {
  (void)arg;
  FUZZ_CHECK((res->rc == 0) == (out != NULL), "receive: rc %d", res->rc);
  for (size_t i = 0; out != NULL && i < out->n; i++) {
    const mt_sqs_message_t *m = &out->messages[i];
    /* A message without both cannot be deleted, and is skipped. */
    FUZZ_CHECK(m->message_id != NULL && m->receipt_handle != NULL &&
                   m->body != NULL,
               "receive: message %zu lacks an id, handle or body", i);
    mt_fuzz_touch(m->message_id);
    mt_fuzz_touch(m->receipt_handle);
    mt_fuzz_touch(m->group_id);
    FUZZ_CHECK(m->body_len >= strlen(m->body), "receive: body length");
    if (m->body_len > 0) {
      volatile char last = m->body[m->body_len - 1];
      (void)last;
    }
  }
}

static size_t batch_n;

static void batched(const mt_aws_result_t *res, const mt_sqs_batch_t *out,
                    void *arg) {
  (void)arg;
  FUZZ_CHECK((res->rc == 0) == (out != NULL), "batch: rc %d", res->rc);
  if (out == NULL)
    return;
  size_t failed = 0;
  FUZZ_CHECK(out->n == batch_n, "batch: %zu entries for %zu", out->n, batch_n);
  for (size_t i = 0; i < out->n; i++) {
    const mt_sqs_entry_result_t *e = &out->entries[i];
    if (e->ok) {
      FUZZ_CHECK(e->code == NULL && e->message == NULL,
                 "batch: entry %zu ok with a code", i);
    } else {
      failed++;
      FUZZ_CHECK(e->code != NULL && e->message != NULL,
                 "batch: entry %zu failed without a code", i);
      mt_fuzz_touch(e->code);
      mt_fuzz_touch(e->message);
    }
  }
  FUZZ_CHECK(out->failed == failed, "batch: %zu failed, counted %zu", failed,
             out->failed);
}

static void attrs(const mt_aws_result_t *res, const mt_sqs_queue_attrs_t *out,
                  void *arg) {
  (void)arg;
  FUZZ_CHECK((res->rc == 0) == (out != NULL), "attributes: rc %d", res->rc);
  if (out == NULL)
    return;
  mt_fuzz_touch(out->arn);
  mt_fuzz_touch(out->redrive_policy);
  FUZZ_CHECK(memchr(out->dead_letter_arn, '\0', sizeof out->dead_letter_arn) !=
                 NULL,
             "attributes: dead-letter ARN not terminated");
}

int mt_fuzz_sqs_done(const char *label, size_t n, mt_aws_result_t *res) {
  size_t kind = 0, nkinds = sizeof op_labels / sizeof *op_labels;
  while (kind < nkinds && strcmp(op_labels[kind], label) != 0)
    kind++;
  if (kind == nkinds)
    return -1;
  sqs_op_t *op = calloc(1, sizeof *op);
  if (op == NULL)
    abort();
  op->kind = (op_kind_t)kind;
  op->n = batch_n = n;
  switch (op->kind) {
  case OP_SEND: op->cb.send = sent; break;
  case OP_RECEIVE: op->cb.receive = received; break;
  case OP_DELETE:
  case OP_VISIBILITY: op->cb.batch = batched; break;
  case OP_ATTRS: op->cb.attrs = attrs; break;
  }
  on_done(res, op); /* frees op */
  return 0;
}
