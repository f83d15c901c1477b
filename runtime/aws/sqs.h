/*
 * Typed SQS calls over the JSON protocol (AWS JSON 1.0: POST / with
 * X-Amz-Target: AmazonSQS.<Op> and Content-Type application/x-amz-json-1.0),
 * the five operations the AWS backend needs: SendMessage, ReceiveMessage,
 * DeleteMessageBatch, ChangeMessageVisibilityBatch and GetQueueAttributes.
 *
 * Each call checks its request first and refuses, with MT_EINVAL and
 * nothing sent, what SQS would refuse anyway (a delay over 900 seconds, a
 * batch of more than ten, a FIFO message without a group). Requests are
 * copied, so the caller's structs may go as soon as a call returns.
 *
 * A callback receives the raw result (aws/client.h: rc, kind, AWS's code
 * and message) and, when rc is 0, the typed answer; its strings point into
 * res->doc and live until the callback returns (or longer if the callback
 * takes res->doc). A queue_url of NULL means the client's configured one.
 *
 * Threads: as aws/client.h says. The async calls and their callbacks run
 * on the client's loop thread; mt_sqs_queue_attributes_sync() blocks and
 * is for the CLI (`moontask check`).
 */
#ifndef MT_AWS_SQS_H
#define MT_AWS_SQS_H

#include <stddef.h>
#include <stdint.h>

#include "aws/client.h"

/* SQS's own limits. */
#define MT_SQS_MAX_DELAY 900 /* SendMessage DelaySeconds */
#define MT_SQS_MAX_BATCH 10  /* entries per batch, messages per receive */
#define MT_SQS_MAX_WAIT 20   /* ReceiveMessage WaitTimeSeconds */
#define MT_SQS_MAX_VISIBILITY 43200 /* VisibilityTimeout, 12 hours */

/* ---- SendMessage ---- */

typedef struct mt_sqs_send_s {
  const char *queue_url;
  const char *body; /* the message, non-empty text */
  /* 0-900 seconds; 0 sends none, so the queue's own delay applies. FIFO
   * queues take no per-message delay (refused here). */
  int delay_seconds;
  /* FIFO queues: MessageGroupId (required) and MessageDeduplicationId
   * (required unless the queue deduplicates by content). NULL: none. */
  const char *group_id;
  const char *dedup_id;
} mt_sqs_send_t;

typedef struct mt_sqs_sent_s {
  const char *message_id;
  const char *sequence_number; /* FIFO only, else NULL */
} mt_sqs_sent_t;

typedef void (*mt_sqs_send_cb)(const mt_aws_result_t *res,
                               const mt_sqs_sent_t *out, void *arg);

int mt_sqs_send(mt_aws_t *aws, const mt_sqs_send_t *req, mt_sqs_send_cb cb,
                void *arg, mt_err_t *err);

/* ---- ReceiveMessage ---- */

typedef struct mt_sqs_receive_s {
  const char *queue_url;
  int max_messages; /* 1-10; 0: SQS's default, one */
  /* Long polling: 1-20 seconds; 0 sends none, so the queue's
   * ReceiveMessageWaitTimeSeconds applies (a short poll if that is 0). The
   * request's timeout is set to outlast the wait. */
  int wait_seconds;
  /* Seconds the received messages stay hidden: 1-43200; 0 sends none, so
   * the queue's VisibilityTimeout applies. (SQS would take 0 as "visible
   * again at once", which a zeroed struct should not mean.) */
  int visibility_timeout;
} mt_sqs_receive_t;

typedef struct mt_sqs_message_s {
  const char *message_id;
  const char *receipt_handle;
  const char *body;
  size_t body_len;
  long receive_count;     /* ApproximateReceiveCount; 0 if not sent */
  const char *group_id;   /* MessageGroupId (FIFO), else NULL */
  int64_t sent_timestamp; /* SentTimestamp, ms since the epoch; 0: none */
} mt_sqs_message_t;

typedef struct mt_sqs_received_s {
  mt_sqs_message_t *messages;
  size_t n; /* 0 when the wait ended with none */
} mt_sqs_received_t;

typedef void (*mt_sqs_receive_cb)(const mt_aws_result_t *res,
                                  const mt_sqs_received_t *out, void *arg);

int mt_sqs_receive(mt_aws_t *aws, const mt_sqs_receive_t *req,
                   mt_sqs_receive_cb cb, void *arg, mt_err_t *err);

/* ---- DeleteMessageBatch and ChangeMessageVisibilityBatch ---- */

/* The outcome of one entry of a batch, in the order the entries were
 * given. A whole batch can succeed at the HTTP level (rc 0) with some of
 * its entries failed: check each. */
typedef struct mt_sqs_entry_result_s {
  int ok;
  int sender_fault;    /* the entry was wrong, not SQS */
  const char *code;    /* "ReceiptHandleIsInvalid", ...; NULL when ok */
  const char *message; /* NULL when ok */
} mt_sqs_entry_result_t;

typedef struct mt_sqs_batch_s {
  mt_sqs_entry_result_t *entries;
  size_t n;      /* as many as were sent */
  size_t failed; /* how many of them are not ok */
} mt_sqs_batch_t;

typedef void (*mt_sqs_batch_cb)(const mt_aws_result_t *res,
                                const mt_sqs_batch_t *out, void *arg);

/* Deletes up to ten messages by receipt handle. An entry SQS leaves out of
 * both its lists counts as failed, code "Missing". The handles must be
 * distinct (SQS refuses the whole batch otherwise). */
int mt_sqs_delete_batch(mt_aws_t *aws, const char *queue_url,
                        const char *const *receipt_handles, size_t n,
                        mt_sqs_batch_cb cb, void *arg, mt_err_t *err);

typedef struct mt_sqs_visibility_s {
  const char *receipt_handle;
  int timeout; /* 0-43200 seconds from now; 0 makes it visible again */
} mt_sqs_visibility_t;

/* Sets the visibility timeout of up to ten received messages (extends the
 * lease of a long task, or hands a message back early). */
int mt_sqs_visibility_batch(mt_aws_t *aws, const char *queue_url,
                            const mt_sqs_visibility_t *entries, size_t n,
                            mt_sqs_batch_cb cb, void *arg, mt_err_t *err);

/* ---- GetQueueAttributes ---- */

typedef struct mt_sqs_queue_attrs_s {
  const char *arn; /* QueueArn: the target of a schedule */
  long visibility_timeout;
  int fifo;
  int content_dedup;          /* ContentBasedDeduplication */
  const char *redrive_policy; /* the JSON text, NULL if none */
  char dead_letter_arn[256];  /* from the redrive policy, "" if none */
  long max_receive_count;     /* from the redrive policy, 0 if none */
} mt_sqs_queue_attrs_t;

typedef void (*mt_sqs_attrs_cb)(const mt_aws_result_t *res,
                                const mt_sqs_queue_attrs_t *out, void *arg);

int mt_sqs_queue_attributes(mt_aws_t *aws, const char *queue_url,
                            mt_sqs_attrs_cb cb, void *arg, mt_err_t *err);

/* The blocking form. *res receives the result (free it with
 * mt_aws_result_free: out's strings point into it); returns res->rc, or
 * MT_EINVAL with res->err set for a request refused before sending. */
int mt_sqs_queue_attributes_sync(mt_aws_t *aws, const char *queue_url,
                                 mt_sqs_queue_attrs_t *out,
                                 mt_aws_result_t *res);

/* Whether a queue URL names a FIFO queue (its name ends in ".fifo"). */
int mt_sqs_url_is_fifo(const char *queue_url);

#endif
