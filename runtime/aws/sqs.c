#include "aws/sqs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "json/doc.h"

typedef enum op_kind_e {
  OP_SEND,
  OP_RECEIVE,
  OP_DELETE,
  OP_VISIBILITY,
  OP_ATTRS
} op_kind_t;

/* What a call needs back on the loop: the caller's callback and how many
 * entries a batch had. */
typedef struct sqs_op_s {
  op_kind_t kind;
  union {
    mt_sqs_send_cb send;
    mt_sqs_receive_cb receive;
    mt_sqs_batch_cb batch;
    mt_sqs_attrs_cb attrs;
  } cb;
  void *arg;
  size_t n;
} sqs_op_t;

static const char *const op_labels[] = {
    "sqs.SendMessage", "sqs.ReceiveMessage", "sqs.DeleteMessageBatch",
    "sqs.ChangeMessageVisibilityBatch", "sqs.GetQueueAttributes"};
static const char *const op_targets[] = {
    "AmazonSQS.SendMessage", "AmazonSQS.ReceiveMessage",
    "AmazonSQS.DeleteMessageBatch", "AmazonSQS.ChangeMessageVisibilityBatch",
    "AmazonSQS.GetQueueAttributes"};

int mt_sqs_url_is_fifo(const char *queue_url) {
  size_t n = queue_url != NULL ? strlen(queue_url) : 0;
  return n >= 5 && strcmp(queue_url + n - 5, ".fifo") == 0;
}

static const char *queue_of(mt_aws_t *aws, const char *queue_url) {
  return queue_url != NULL ? queue_url : mt_aws_conf(aws)->queue_url;
}

/* ---- parsing ------------------------------------------------------------ */

static int parse_received(const mt_jval_t *root, mt_sqs_received_t *out) {
  const mt_jval_t *msgs = root != NULL && root->type == MT_JV_OBJECT
                              ? mt_jval_get(root, "Messages")
                              : NULL;
  memset(out, 0, sizeof *out);
  if (msgs == NULL || msgs->type != MT_JV_ARRAY || msgs->len == 0)
    return 0;
  if ((out->messages = calloc(msgs->len, sizeof *out->messages)) == NULL)
    return MT_ENOMEM;
  for (size_t i = 0; i < msgs->len; i++) {
    const mt_jval_t *m = &msgs->u.items[i];
    const mt_jval_t *attrs =
        m->type == MT_JV_OBJECT ? mt_jval_get(m, "Attributes") : NULL;
    const mt_jval_t *body =
        m->type == MT_JV_OBJECT ? mt_jval_get(m, "Body") : NULL;
    mt_sqs_message_t *o = &out->messages[out->n];
    o->message_id = mt__aws_jstr(m, "MessageId");
    o->receipt_handle = mt__aws_jstr(m, "ReceiptHandle");
    /* A message we could not delete is no use to anyone: skip it, and
     * the queue's redrive policy deals with it. */
    if (o->message_id == NULL || o->receipt_handle == NULL)
      continue;
    if (body != NULL && body->type == MT_JV_STRING) {
      o->body = body->u.str;
      o->body_len = body->len;
    } else {
      o->body = "";
    }
    o->receive_count = mt__aws_jlong(attrs, "ApproximateReceiveCount", 0);
    o->group_id = mt__aws_jstr(attrs, "MessageGroupId");
    o->sent_timestamp = mt__aws_jlong(attrs, "SentTimestamp", 0);
    out->n++;
  }
  return 0;
}

/* Reads a batch entry's Id back into its index: we number them "0".."9". */
static int entry_index(const mt_jval_t *e, size_t n, size_t *i) {
  const char *id = mt__aws_jstr(e, "Id");
  char *end;
  if (id == NULL || *id < '0' || *id > '9')
    return 0;
  errno = 0;
  unsigned long v = strtoul(id, &end, 10);
  if (errno != 0 || *end != '\0' || v >= n)
    return 0;
  *i = v;
  return 1;
}

static int parse_batch(const mt_jval_t *root, size_t n, mt_sqs_batch_t *out) {
  memset(out, 0, sizeof *out);
  if ((out->entries = calloc(n, sizeof *out->entries)) == NULL)
    return MT_ENOMEM;
  out->n = n;
  /* An entry SQS names in neither list has not been done: say so rather
   * than let the caller take silence for success. */
  for (size_t i = 0; i < n; i++) {
    out->entries[i].code = "Missing";
    out->entries[i].message = "the entry is in neither list of the response";
  }
  const mt_jval_t *ok = mt_jval_get(root, "Successful");
  const mt_jval_t *failed = mt_jval_get(root, "Failed");
  for (size_t k = 0; ok != NULL && ok->type == MT_JV_ARRAY && k < ok->len;
       k++) {
    size_t i;
    if (entry_index(&ok->u.items[k], n, &i)) {
      out->entries[i].ok = 1;
      out->entries[i].code = out->entries[i].message = NULL;
    }
  }
  for (size_t k = 0;
       failed != NULL && failed->type == MT_JV_ARRAY && k < failed->len; k++) {
    const mt_jval_t *f = &failed->u.items[k];
    const mt_jval_t *sf = mt_jval_get(f, "SenderFault");
    size_t i;
    if (!entry_index(f, n, &i))
      continue;
    out->entries[i].ok = 0;
    out->entries[i].code = mt__aws_jstr(f, "Code");
    out->entries[i].message = mt__aws_jstr(f, "Message");
    if (out->entries[i].code == NULL)
      out->entries[i].code = "";
    if (out->entries[i].message == NULL)
      out->entries[i].message = "";
    /* JSON says true; the query protocol said "true". */
    out->entries[i].sender_fault =
        sf != NULL &&
        ((sf->type == MT_JV_BOOL && sf->u.b) ||
         (sf->type == MT_JV_STRING && strcmp(sf->u.str, "true") == 0));
  }
  for (size_t i = 0; i < n; i++)
    out->failed += !out->entries[i].ok;
  return 0;
}

static void parse_attrs(const mt_jval_t *root, mt_sqs_queue_attrs_t *out) {
  const mt_jval_t *a = root != NULL && root->type == MT_JV_OBJECT
                           ? mt_jval_get(root, "Attributes")
                           : NULL;
  const char *s;
  memset(out, 0, sizeof *out);
  out->arn = mt__aws_jstr(a, "QueueArn");
  out->visibility_timeout = mt__aws_jlong(a, "VisibilityTimeout", 0);
  out->fifo =
      (s = mt__aws_jstr(a, "FifoQueue")) != NULL && strcmp(s, "true") == 0;
  out->content_dedup =
      (s = mt__aws_jstr(a, "ContentBasedDeduplication")) != NULL &&
      strcmp(s, "true") == 0;
  out->redrive_policy = mt__aws_jstr(a, "RedrivePolicy");
  /* The policy is JSON inside a string: {"deadLetterTargetArn": "...",
   * "maxReceiveCount": 5} (the count a number or, from older endpoints, a
   * string). One unreadable is reported as none. */
  mt_jdoc_t *doc = NULL;
  if (out->redrive_policy != NULL &&
      mt_jdoc_parse(out->redrive_policy, strlen(out->redrive_policy), &doc,
                    NULL) == 0) {
    const mt_jval_t *p = mt_jdoc_root(doc);
    const char *dlq = mt__aws_jstr(p, "deadLetterTargetArn");
    if (dlq != NULL)
      snprintf(out->dead_letter_arn, sizeof out->dead_letter_arn, "%s", dlq);
    out->max_receive_count = mt__aws_jlong(p, "maxReceiveCount", 0);
  }
  mt_jdoc_free(doc);
}

/* ---- calls -------------------------------------------------------------- */

static void on_done(mt_aws_result_t *res, void *arg) {
  sqs_op_t *op = arg;
  const mt_aws_result_t *r = res;
  switch (op->kind) {
  case OP_SEND: {
    mt_sqs_sent_t out = {NULL, NULL};
    if (r->rc == 0) {
      out.message_id = mt__aws_jstr(r->json, "MessageId");
      out.sequence_number = mt__aws_jstr(r->json, "SequenceNumber");
    }
    op->cb.send(r, r->rc == 0 ? &out : NULL, op->arg);
    break;
  }
  case OP_RECEIVE: {
    mt_sqs_received_t out = {NULL, 0};
    if (r->rc == 0 && parse_received(r->json, &out) != 0) {
      /* The messages come back after their visibility timeout. */
      res->rc = MT_ENOMEM;
      res->kind = MT_AWS_EPROTOCOL;
      mt_err_set(&res->err, MT_ENOMEM, "%s: out of memory",
                 op_labels[op->kind]);
    }
    op->cb.receive(r, r->rc == 0 ? &out : NULL, op->arg);
    free(out.messages);
    break;
  }
  case OP_DELETE:
  case OP_VISIBILITY: {
    mt_sqs_batch_t out = {NULL, 0, 0};
    if (r->rc == 0 && parse_batch(r->json, op->n, &out) != 0) {
      res->rc = MT_ENOMEM;
      res->kind = MT_AWS_EPROTOCOL;
      mt_err_set(&res->err, MT_ENOMEM, "%s: out of memory",
                 op_labels[op->kind]);
    }
    op->cb.batch(r, r->rc == 0 ? &out : NULL, op->arg);
    free(out.entries);
    break;
  }
  case OP_ATTRS: {
    mt_sqs_queue_attrs_t out;
    if (r->rc == 0)
      parse_attrs(r->json, &out);
    op->cb.attrs(r, r->rc == 0 ? &out : NULL, op->arg);
    break;
  }
  }
  free(op);
}

/* Sends body (which this consumes) as operation kind. */
static int sqs_call(mt_aws_t *aws, op_kind_t kind, mt_buf_t *body,
                    long timeout_ms, sqs_op_t *tmpl, mt_err_t *err) {
  sqs_op_t *op = NULL;
  int rc;
  if (body->data == NULL) {
    rc = mt_err_set(err, MT_ENOMEM, "%s: out of memory", op_labels[kind]);
    goto done;
  }
  if ((op = malloc(sizeof *op)) == NULL) {
    rc = mt_err_set(err, MT_ENOMEM, "%s: out of memory", op_labels[kind]);
    goto done;
  }
  *op = *tmpl;
  op->kind = kind;
  mt_aws_req_t req = {
      .service = MT_AWS_SQS,
      .op = op_labels[kind],
      .method = "POST",
      .path = "/",
      .target = op_targets[kind],
      .body = body->data,
      .body_len = body->len,
      .timeout_ms = timeout_ms,
  };
  if ((rc = mt_aws_call(aws, &req, on_done, op, err)) == 0)
    op = NULL; /* on_done frees it */
done:
  free(op);
  mt_buf_free(body);
  return rc;
}

/* Writes {"QueueUrl":"..." into b (the object left open). */
static void open_body(mt_buf_t *b, const char *queue_url) {
  if (mt_buf_putc(b, '{') != 0 ||
      mt__aws_jkey_str(b, 1, "QueueUrl", queue_url) != 0)
    mt_buf_free(b);
}

/* Finishes b, or frees it if anything ran out of memory on the way (the
 * caller sees data == NULL). */
static void close_body(mt_buf_t *b, int rc) {
  if (rc != 0 || b->data == NULL || mt_buf_putc(b, '}') != 0)
    mt_buf_free(b);
}

/* The checks every call makes before it builds a request: a callback to
 * answer, and a queue to ask. MT_EINVAL with err set (mt__aws_refuse) when
 * one fails, else 0. */
static int refused(const char *op, int has_cb, const char *q, mt_err_t *err) {
  if (!has_cb)
    return mt__aws_refuse(err, op, "no callback");
  if (q == NULL)
    return mt__aws_refuse(err, op, "no queue URL (set aws.queue_url)");
  return 0;
}

int mt_sqs_send(mt_aws_t *aws, const mt_sqs_send_t *req, mt_sqs_send_cb cb,
                void *arg, mt_err_t *err) {
  const char *op = op_labels[OP_SEND];
  const char *q = queue_of(aws, req->queue_url);
  mt_buf_t b = MT_BUF_INIT;
  int rc = 0;
  if (refused(op, cb != NULL, q, err))
    return MT_EINVAL;
  if (req->body == NULL || *req->body == '\0')
    return mt__aws_refuse(err, op, "an empty message body");
  if (req->delay_seconds < 0 || req->delay_seconds > MT_SQS_MAX_DELAY)
    return mt__aws_refuse(err, op, "DelaySeconds %d is not within 0-%d",
                          req->delay_seconds, MT_SQS_MAX_DELAY);
  if (mt_sqs_url_is_fifo(q) && (req->group_id == NULL || !*req->group_id))
    return mt__aws_refuse(err, op, "a FIFO queue needs a MessageGroupId");
  if (mt_sqs_url_is_fifo(q) && req->delay_seconds > 0)
    return mt__aws_refuse(err, op,
                          "a FIFO queue takes no per-message DelaySeconds");
  open_body(&b, q);
  if (b.data != NULL)
    rc = mt__aws_jkey_str(&b, 0, "MessageBody", req->body);
  if (rc == 0 && b.data != NULL && req->delay_seconds > 0)
    rc = mt_buf_printf(&b, ",\"DelaySeconds\":%d", req->delay_seconds);
  if (rc == 0 && b.data != NULL && req->group_id != NULL)
    rc = mt__aws_jkey_str(&b, 0, "MessageGroupId", req->group_id);
  if (rc == 0 && b.data != NULL && req->dedup_id != NULL)
    rc = mt__aws_jkey_str(&b, 0, "MessageDeduplicationId", req->dedup_id);
  close_body(&b, rc);
  sqs_op_t t = {.cb.send = cb, .arg = arg};
  return sqs_call(aws, OP_SEND, &b, 0, &t, err);
}

int mt_sqs_receive(mt_aws_t *aws, const mt_sqs_receive_t *req,
                   mt_sqs_receive_cb cb, void *arg, mt_err_t *err) {
  const char *op = op_labels[OP_RECEIVE];
  const char *q = queue_of(aws, req->queue_url);
  mt_buf_t b = MT_BUF_INIT;
  int rc = 0;
  if (refused(op, cb != NULL, q, err))
    return MT_EINVAL;
  if (req->max_messages < 0 || req->max_messages > MT_SQS_MAX_BATCH)
    return mt__aws_refuse(err, op, "MaxNumberOfMessages %d is not within 1-%d",
                          req->max_messages, MT_SQS_MAX_BATCH);
  if (req->wait_seconds < 0 || req->wait_seconds > MT_SQS_MAX_WAIT)
    return mt__aws_refuse(err, op, "WaitTimeSeconds %d is not within 0-%d",
                          req->wait_seconds, MT_SQS_MAX_WAIT);
  if (req->visibility_timeout < 0 ||
      req->visibility_timeout > MT_SQS_MAX_VISIBILITY)
    return mt__aws_refuse(err, op, "VisibilityTimeout %d is not within 0-%d",
                          req->visibility_timeout, MT_SQS_MAX_VISIBILITY);
  open_body(&b, q);
  if (b.data != NULL && req->max_messages > 0)
    rc = mt_buf_printf(&b, ",\"MaxNumberOfMessages\":%d", req->max_messages);
  if (rc == 0 && b.data != NULL && req->wait_seconds > 0)
    rc = mt_buf_printf(&b, ",\"WaitTimeSeconds\":%d", req->wait_seconds);
  if (rc == 0 && b.data != NULL && req->visibility_timeout > 0)
    rc =
        mt_buf_printf(&b, ",\"VisibilityTimeout\":%d", req->visibility_timeout);
  /* MessageSystemAttributeNames replaced AttributeNames for these in
   * 2024; SQS reads either, moto both. */
  if (rc == 0 && b.data != NULL)
    rc = mt_buf_puts(&b, ",\"MessageSystemAttributeNames\":["
                         "\"ApproximateReceiveCount\",\"MessageGroupId\","
                         "\"SentTimestamp\"]");
  close_body(&b, rc);
  /* Outlast the longest wait the queue itself may impose, with time to
   * answer: a timeout mid-poll would lose nothing but waste the poll. */
  long wait = req->wait_seconds > 0 ? req->wait_seconds : MT_SQS_MAX_WAIT;
  sqs_op_t t = {.cb.receive = cb, .arg = arg};
  return sqs_call(aws, OP_RECEIVE, &b, (wait + 10) * 1000, &t, err);
}

int mt_sqs_delete_batch(mt_aws_t *aws, const char *queue_url,
                        const char *const *receipt_handles, size_t n,
                        mt_sqs_batch_cb cb, void *arg, mt_err_t *err) {
  const char *op = op_labels[OP_DELETE];
  const char *q = queue_of(aws, queue_url);
  mt_buf_t b = MT_BUF_INIT;
  int rc = 0;
  if (refused(op, cb != NULL, q, err))
    return MT_EINVAL;
  if (n == 0 || n > MT_SQS_MAX_BATCH)
    return mt__aws_refuse(err, op, "%zu entries; a batch has 1-%d", n,
                          MT_SQS_MAX_BATCH);
  for (size_t i = 0; i < n; i++)
    if (receipt_handles[i] == NULL || *receipt_handles[i] == '\0')
      return mt__aws_refuse(err, op, "entry %zu has no receipt handle", i);
  open_body(&b, q);
  if (b.data != NULL)
    rc = mt_buf_puts(&b, ",\"Entries\":[");
  for (size_t i = 0; rc == 0 && b.data != NULL && i < n; i++) {
    rc = mt_buf_printf(&b, "%s{\"Id\":\"%zu\"", i ? "," : "", i);
    if (rc == 0)
      rc = mt__aws_jkey_str(&b, 0, "ReceiptHandle", receipt_handles[i]);
    if (rc == 0)
      rc = mt_buf_putc(&b, '}');
  }
  if (rc == 0 && b.data != NULL)
    rc = mt_buf_putc(&b, ']');
  close_body(&b, rc);
  sqs_op_t t = {.cb.batch = cb, .arg = arg, .n = n};
  return sqs_call(aws, OP_DELETE, &b, 0, &t, err);
}

int mt_sqs_visibility_batch(mt_aws_t *aws, const char *queue_url,
                            const mt_sqs_visibility_t *entries, size_t n,
                            mt_sqs_batch_cb cb, void *arg, mt_err_t *err) {
  const char *op = op_labels[OP_VISIBILITY];
  const char *q = queue_of(aws, queue_url);
  mt_buf_t b = MT_BUF_INIT;
  int rc = 0;
  if (refused(op, cb != NULL, q, err))
    return MT_EINVAL;
  if (n == 0 || n > MT_SQS_MAX_BATCH)
    return mt__aws_refuse(err, op, "%zu entries; a batch has 1-%d", n,
                          MT_SQS_MAX_BATCH);
  for (size_t i = 0; i < n; i++) {
    if (entries[i].receipt_handle == NULL || *entries[i].receipt_handle == '\0')
      return mt__aws_refuse(err, op, "entry %zu has no receipt handle", i);
    if (entries[i].timeout < 0 || entries[i].timeout > MT_SQS_MAX_VISIBILITY)
      return mt__aws_refuse(
          err, op, "entry %zu: VisibilityTimeout %d is not within 0-%d", i,
          entries[i].timeout, MT_SQS_MAX_VISIBILITY);
  }
  open_body(&b, q);
  if (b.data != NULL)
    rc = mt_buf_puts(&b, ",\"Entries\":[");
  for (size_t i = 0; rc == 0 && b.data != NULL && i < n; i++) {
    rc = mt_buf_printf(&b, "%s{\"Id\":\"%zu\"", i ? "," : "", i);
    if (rc == 0)
      rc = mt__aws_jkey_str(&b, 0, "ReceiptHandle", entries[i].receipt_handle);
    if (rc == 0)
      rc = mt_buf_printf(&b, ",\"VisibilityTimeout\":%d}", entries[i].timeout);
  }
  if (rc == 0 && b.data != NULL)
    rc = mt_buf_putc(&b, ']');
  close_body(&b, rc);
  sqs_op_t t = {.cb.batch = cb, .arg = arg, .n = n};
  return sqs_call(aws, OP_VISIBILITY, &b, 0, &t, err);
}

/* "All" rather than a list: SQS refuses names it does not know for the
 * queue's type, and All returns what the queue has (FifoQueue only for
 * FIFO queues, RedrivePolicy only when set). */
static int attrs_body(const char *q, mt_buf_t *b) {
  int rc = 0;
  open_body(b, q);
  if (b->data != NULL)
    rc = mt_buf_puts(b, ",\"AttributeNames\":[\"All\"]");
  close_body(b, rc);
  return b->data != NULL ? 0 : MT_ENOMEM;
}

int mt_sqs_queue_attributes(mt_aws_t *aws, const char *queue_url,
                            mt_sqs_attrs_cb cb, void *arg, mt_err_t *err) {
  const char *op = op_labels[OP_ATTRS];
  const char *q = queue_of(aws, queue_url);
  mt_buf_t b = MT_BUF_INIT;
  if (refused(op, cb != NULL, q, err))
    return MT_EINVAL;
  attrs_body(q, &b);
  sqs_op_t t = {.cb.attrs = cb, .arg = arg};
  return sqs_call(aws, OP_ATTRS, &b, 0, &t, err);
}

int mt_sqs_queue_attributes_sync(mt_aws_t *aws, const char *queue_url,
                                 mt_sqs_queue_attrs_t *out,
                                 mt_aws_result_t *res) {
  const char *op = op_labels[OP_ATTRS];
  const char *q = queue_of(aws, queue_url);
  mt_buf_t b = MT_BUF_INIT;
  memset(res, 0, sizeof *res);
  memset(out, 0, sizeof *out);
  if (q == NULL) {
    res->kind = MT_AWS_ENORESPONSE;
    return res->rc = mt__aws_refuse(&res->err, op,
                                    "no queue URL (set aws.queue_url)");
  }
  if (attrs_body(q, &b) != 0) {
    res->kind = MT_AWS_ENORESPONSE;
    return res->rc = mt_err_set(&res->err, MT_ENOMEM, "%s: out of memory", op);
  }
  mt_aws_req_t req = {
      .service = MT_AWS_SQS,
      .op = op,
      .method = "POST",
      .path = "/",
      .target = op_targets[OP_ATTRS],
      .body = b.data,
      .body_len = b.len,
  };
  mt_aws_call_sync(aws, &req, res);
  mt_buf_free(&b);
  if (res->rc == 0)
    parse_attrs(res->json, out);
  return res->rc;
}
