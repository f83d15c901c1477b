/* The AWS backend's outbox relay (aws_backend.h says what it publishes,
 * backend_internal.h how the files share the backend): on the AWS thread,
 * one round at a time, active on one runtime per database. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/backend_internal.h"
#include "aws/scheduler.h"
#include "aws/sqs.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/utf8.h"
#include "json/write.h"

/* Outbox rows the relay reads and publishes at a time, concurrently. */
#define RELAY_BATCH 64

/* A failed publish is tried again after 2^attempts seconds, up to this. */
#define RELAY_BACKOFF_MAX 300.0

/* The sweep for tasks whose message went missing: every this many
 * seconds, those overdue by more than SWEEP_OVERDUE, up to SWEEP_MAX. */
#define SWEEP_EVERY_MS (5 * 60 * 1000)
#define SWEEP_OVERDUE (10 * 60.0)
#define SWEEP_MAX 1000

/* SQS's limit on a MessageGroupId. */
#define GROUP_ID_MAX 128

/* Copies src into dst (cap bytes) whole or cut at a character boundary,
 * any byte that is not well-formed UTF-8 made '?': the text goes to a
 * PostgreSQL column, which refuses broken UTF-8. */
static void copy_text(char *dst, size_t cap, const char *src) {
  size_t i = 0, o = 0;
  while (src[i] != '\0') {
    size_t n = mt_utf8_seq((const unsigned char *)src + i, strlen(src + i));
    if (o + (n ? n : 1) >= cap)
      break;
    if (n == 0) {
      dst[o++] = '?';
      i++;
    } else {
      memcpy(dst + o, src + i, n);
      o += n;
      i += n;
    }
  }
  dst[o] = '\0';
}

/* ---- the relay (AWS thread) --------------------------------------------- */

static void relay_round(aws_backend_t *b);

static void watch_outbox(aws_backend_t *b);

/* The relay's fallback poll, which also re-makes a lost connection (and
 * the watch on its new socket). */
void mt__aws_relay_on_timer(uv_timer_t *t) {
  relay_round(t->data);
  watch_outbox(t->data);
}

/* Settles the round once every operation answered: published rows go,
 * failed ones wait, and the next round starts at once if this one was
 * full. */
static void relay_settle(aws_backend_t *b) {
  mt_err_t err;
  size_t nok = 0;
  int64_t *ok = malloc((b->batch.n ? b->batch.n : 1) * sizeof *ok);
  int rc = ok != NULL ? 0 : MT_ENOMEM;
  /* Published rows go first, whatever becomes of the others: a deferral
   * that fails must not have every published row published again. */
  for (size_t i = 0; ok != NULL && i < b->nops; i++) {
    relay_op_t *op = &b->ops[i];
    if (!op->defer) {
      memcpy(ok + nok, op->ids, op->nids * sizeof *ok);
      nok += op->nids;
    }
  }
  if (rc == 0 && (rc = mt_outbox_done(b->outbox, ok, nok, &err)) != 0)
    mt_log(MT_LOG_WARN, "outbox: %s (those rows are published again)", err.msg);
  for (size_t i = 0; i < b->nops; i++) {
    relay_op_t *op = &b->ops[i];
    if (!op->defer)
      continue;
    double delay = pow(2, op->attempts < 9 ? op->attempts : 9);
    if (delay > RELAY_BACKOFF_MAX)
      delay = RELAY_BACKOFF_MAX;
    if (mt_outbox_defer(b->outbox, op->ids, op->nids, delay, op->error, &err) !=
        0)
      mt_log(MT_LOG_WARN, "outbox: %s (tried again at once)", err.msg);
  }
  free(ok);
  /* Changes announced while the round's statements ran wait in libpq's
   * queue, where the socket no longer shows them. */
  int full = b->batch.n == RELAY_BATCH || mt_outbox_heard(b->outbox);
  double wait = b->batch.wait;
  for (size_t i = 0; i < b->nops; i++)
    free(b->ops[i].ids);
  free(b->ops);
  b->ops = NULL;
  b->nops = 0;
  mt_outbox_batch_free(&b->batch);
  b->relaying = 0;
  if (b->closing) {
    mt__aws_maybe_finish_stop(b);
    return;
  }
  /* The next round starts from the loop rather than from here, which may
   * be inside the round before. */
  uint64_t every = (uint64_t)(b->poll_interval * 1000);
  if (full || b->relay_again) {
    b->relay_again = 0;
    uv_timer_start(&b->relay_timer, mt__aws_relay_on_timer, 0, every);
  } else if (wait >= 0 &&
             wait * 1000 < (double)uv_timer_get_due_in(&b->relay_timer)) {
    uv_timer_start(&b->relay_timer, mt__aws_relay_on_timer,
                   (uint64_t)(wait * 1000) + 1, every);
  }
}

static void op_done(relay_op_t *op, const mt_aws_result_t *res, int settled) {
  aws_backend_t *b = op->b;
  b->pending--;
  if (!settled) {
    op->defer = 1;
    copy_text(op->error, sizeof op->error, res->err.msg);
    if (op->e->task_id)
      mt_log(MT_LOG_WARN, "outbox: task %" PRId64 ": %s", op->e->task_id,
             res->err.msg);
    else
      mt_log(MT_LOG_WARN, "outbox: schedule \"%s\": %s", op->e->name,
             res->err.msg);
  }
  if (--b->ops_left == 0)
    relay_settle(b);
}

static void on_sent(const mt_aws_result_t *res, const mt_sqs_sent_t *out,
                    void *arg) {
  (void)out;
  op_done(arg, res, res->rc == 0);
}

static void on_written(const mt_aws_result_t *res, const mt_ebs_written_t *out,
                       void *arg) {
  (void)out;
  op_done(arg, res, res->rc == 0);
}

/* Gone already (ActionAfterCompletion, an earlier delete) is done too. */
static void on_deleted(const mt_aws_result_t *res, void *arg) {
  op_done(arg, res, res->rc == 0 || res->kind == MT_AWS_ENOTFOUND);
}

static int write_task_schedule(aws_backend_t *b, relay_op_t *op, int update,
                               mt_err_t *err);

/* A create that meets ConflictException found a schedule of this name:
 * one an earlier attempt made whose answer was lost, or the schedule of an
 * earlier run_at not yet fired. Updating it to the task as it is now
 * settles both. */
static void on_created(const mt_aws_result_t *res, const mt_ebs_written_t *out,
                       void *arg) {
  relay_op_t *op = arg;
  mt_err_t err;
  if (res->kind != MT_AWS_ECONFLICT || op->b->closing) {
    on_written(res, out, arg);
    return;
  }
  if (write_task_schedule(op->b, op, 1, &err) != 0)
    op_done(op, &(mt_aws_result_t){.rc = MT_EIO, .err = err}, 0);
}

/* A FIFO queue's MessageGroupId for a task: its name, cut to SQS's limit
 * (task names are ASCII). */
static const char *group_id(const aws_backend_t *b, const char *task,
                            char out[GROUP_ID_MAX + 1]) {
  if (!b->fifo)
    return NULL;
  snprintf(out, GROUP_ID_MAX + 1, "%s", task);
  return out;
}

/* Creates (or, update, updates) the at() schedule "mt-<id>" of a task.
 * Its target sends {"task_id":N,"via":"schedule","exec":<the invocation's
 * id>}: a body of its own each time, or a FIFO queue, which deduplicates
 * by content for five minutes even after a message was deleted, would
 * swallow a retry's message. The common case, a new task, costs one
 * request. */
static int write_task_schedule(aws_backend_t *b, relay_op_t *op, int update,
                               mt_err_t *err) {
  const mt_outbox_entry_t *e = op->e;
  char name[MT_EBS_NAME_MAX + 1], at[32], body[160], group[GROUP_ID_MAX + 1];
  mt_ebs_task_name(e->task_id, name);
  /* at() has whole seconds: round up, never early. */
  int rc = mt_ebs_at_expression(ceil(e->run_at), at);
  if (rc != 0)
    return mt_err_set(err, rc,
                      "task %" PRId64 ": run_at %.0f cannot be "
                      "written as at()",
                      e->task_id, e->run_at);
  snprintf(body, sizeof body,
           "{\"task_id\":%" PRId64 ",\"via\":\"schedule\","
           "\"exec\":\"<aws.scheduler.execution-id>\"}",
           e->task_id);
  mt_ebs_schedule_t s = {
      .name = name,
      .expression = at,
      .target_arn = b->queue_arn,
      .input = body,
      .message_group_id = group_id(b, e->name, group),
  };
  return update ? mt_ebs_schedule_update(b->aws, &s, on_written, op, err)
                : mt_ebs_schedule_create(b->aws, &s, on_created, op, err);
}

/* Publishes one task as it is now. Returns 0 with a call out, 1 when
 * nothing needed sending, or an error code with err set. */
static int publish_task(aws_backend_t *b, relay_op_t *op, mt_err_t *err) {
  const mt_outbox_entry_t *e = op->e;
  char name[MT_EBS_NAME_MAX + 1], body[96], dedup[64], group[GROUP_ID_MAX + 1];
  int live = e->state != NULL && (strcmp(e->state, "running") == 0 ||
                                  strcmp(e->state, "scheduled") == 0);
  if (live && op->cleanup_only)
    return 1; /* a retry's own row publishes it, not the clean-up */
  if (e->state != NULL && strcmp(e->state, "running") == 0)
    return 1; /* its message is here; its end decides what follows */
  if (e->state == NULL || strcmp(e->state, "scheduled") != 0) {
    mt_ebs_task_name(e->task_id, name);
    return mt_ebs_schedule_delete(b->aws, NULL, name, NULL, on_deleted, op,
                                  err);
  }
  double delay = e->run_at - b->batch.now;
  /* DelaySeconds is whole seconds: round up, never early. */
  int delay_s = delay > 0 ? (int)ceil(delay) : 0;
  if (delay > b->direct_within || (b->fifo && delay_s > 0))
    return write_task_schedule(b, op, 0, err);
  snprintf(body, sizeof body, "{\"task_id\":%" PRId64 "}", e->task_id);
  snprintf(dedup, sizeof dedup, "%" PRId64 "-%" PRId64, e->task_id, e->id);
  mt_sqs_send_t req = {
      .body = body,
      .delay_seconds = delay_s > MT_SQS_MAX_DELAY ? MT_SQS_MAX_DELAY : delay_s,
      .group_id = group_id(b, e->name, group),
      .dedup_id = b->fifo ? dedup : NULL,
  };
  return mt_sqs_send(b->aws, &req, on_sent, op, err);
}

/* Publishes one recurring schedule as it is now. */
static int publish_schedule(aws_backend_t *b, relay_op_t *op, mt_err_t *err) {
  const mt_outbox_entry_t *e = op->e;
  char name[MT_EBS_NAME_MAX + 1], expr[MT_EBS_EXPR_MAX],
      group[GROUP_ID_MAX + 1];
  int rc = mt_ebs_recurring_name(e->name, name);
  if (rc != 0)
    return mt_err_set(err, rc, "cannot name the schedule");
  if (e->expression == NULL)
    return mt_ebs_schedule_delete(b->aws, NULL, name, NULL, on_deleted, op,
                                  err);
  mt_err_t why;
  if (mt_ebs_recurring_expression(e->expression, expr, &why) != 0) {
    /* Trying again would not help: the schedule shows the error until it
     * is redefined, which writes a new row. An EventBridge schedule of its
     * previous definition goes, as on PostgreSQL a schedule with an error
     * does not fire. */
    mt_log(MT_LOG_WARN, "schedule \"%s\": %s", e->name, why.msg);
    if (mt_outbox_schedule_error(b->outbox, e->name, why.msg, err) != 0)
      return MT_EDB;
    return mt_ebs_schedule_delete(b->aws, NULL, name, NULL, on_deleted, op,
                                  err);
  }
  mt_buf_t input = MT_BUF_INIT;
  rc = mt_buf_puts(&input, "{\"schedule\":");
  if (rc == 0)
    rc = mt_json_write_string(&input, e->name, strlen(e->name));
  if (rc == 0)
    rc =
        mt_buf_puts(&input, ",\"fire_at\":\"<aws.scheduler.scheduled-time>\"}");
  if (rc != 0) {
    mt_buf_free(&input);
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  mt_ebs_schedule_t s = {
      .name = name,
      .expression = expr,
      .timezone = e->tz,
      .target_arn = b->queue_arn,
      .input = input.data,
      .message_group_id = group_id(b, e->task, group),
  };
  /* Upsert: a recurring schedule is rewritten far more often than made. */
  rc = mt_ebs_schedule_upsert(b->aws, &s, on_written, op, err);
  mt_buf_free(&input);
  return rc;
}

/* Groups the batch by what the rows name (a task, or a schedule): one
 * operation each, for the latest row. */
static int plan(aws_backend_t *b) {
  b->ops = calloc(b->batch.n ? b->batch.n : 1, sizeof *b->ops);
  if (b->ops == NULL)
    return MT_ENOMEM;
  for (size_t i = 0; i < b->batch.n; i++) {
    const mt_outbox_entry_t *e = &b->batch.entries[i];
    relay_op_t *op = NULL;
    for (size_t k = 0; k < b->nops && op == NULL; k++) {
      const mt_outbox_entry_t *o = b->ops[k].e;
      if (e->task_id ? o->task_id == e->task_id
                     : o->task_id == 0 && strcmp(o->name, e->name) == 0)
        op = &b->ops[k];
    }
    if (op == NULL) {
      op = &b->ops[b->nops++];
      op->b = b;
      op->cleanup_only = 1;
      if ((op->ids = calloc(b->batch.n, sizeof *op->ids)) == NULL)
        return MT_ENOMEM;
    }
    op->e = e;
    op->ids[op->nids++] = e->id;
    op->cleanup_only &= e->cleanup;
    if (e->attempts > op->attempts)
      op->attempts = e->attempts;
  }
  return 0;
}

static void relay_round(aws_backend_t *b) {
  mt_err_t err;
  if (b->closing)
    return;
  if (b->relaying) {
    b->relay_again = 1;
    return;
  }
  int leading = 0;
  if (mt_outbox_lead(b->outbox, &leading, &err) != 0) {
    mt_log(MT_LOG_WARN, "outbox: %s", err.msg);
    return; /* the relay timer tries again */
  }
  if (leading && !b->leading)
    mt_log(MT_LOG_INFO, "outbox: this runtime publishes to AWS");
  b->leading = leading;
  if (!leading)
    return;
  if (mt_outbox_fetch(b->outbox, RELAY_BATCH, &b->batch, &err) != 0) {
    mt_log(MT_LOG_WARN, "outbox: %s", err.msg);
    return;
  }
  if (b->batch.n == 0 || plan(b) != 0) {
    b->ops_left = 0;
    b->relaying = 1;
    if (b->batch.n != 0) /* out of memory: every row waits a while */
      for (size_t i = 0; i < b->nops; i++)
        b->ops[i].defer = 1;
    relay_settle(b);
    return;
  }
  b->relaying = 1;
  /* Counted before any call goes out: a call may answer from inside. */
  b->ops_left = b->nops + 1;
  for (size_t i = 0; i < b->nops; i++) {
    relay_op_t *op = &b->ops[i];
    int rc = op->e->task_id ? publish_task(b, op, &err)
                            : publish_schedule(b, op, &err);
    if (rc == 0) {
      b->pending++;
      continue;
    }
    if (rc != 1) {
      op->defer = 1;
      copy_text(op->error, sizeof op->error, err.msg);
      mt_log(MT_LOG_WARN, "outbox: %s", err.msg);
    }
    b->ops_left--;
  }
  if (--b->ops_left == 0)
    relay_settle(b);
}

static void on_outbox_readable(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  aws_backend_t *b = p->data;
  if (mt_outbox_heard(b->outbox))
    relay_round(b);
  watch_outbox(b);
}

/* (Re)watches the outbox connection's socket for NOTIFY, by generation as
 * discovery watches its wake-up descriptor: a new connection's socket
 * often has the old one's number. */
static void watch_outbox(aws_backend_t *b) {
  unsigned gen;
  int fd = mt_outbox_fd(b->outbox, &gen);
  if (fd == b->outbox_fd && gen == b->outbox_gen)
    return;
  if (b->outbox_poll != NULL)
    uv_close((uv_handle_t *)b->outbox_poll, mt__aws_free_handle);
  b->outbox_poll = NULL;
  b->outbox_fd = -1;
  if (fd < 0 || b->closing)
    return;
  uv_poll_t *p = malloc(sizeof *p);
  if (p == NULL || uv_poll_init_socket(&b->loop, p, fd) != 0) {
    free(p); /* the relay timer still polls */
    return;
  }
  p->data = b;
  uv_poll_start(p, UV_READABLE, on_outbox_readable);
  b->outbox_poll = p;
  b->outbox_fd = fd;
  b->outbox_gen = gen;
}

/* The safety net for messages lost where the runtime cannot see (purged,
 * expired, moved to the dead-letter queue by hand): the relay publishes
 * again what is long overdue and has no outbox row. A task that is merely
 * waiting in a long backlog may get a second message this way, which its
 * claim then drops as a duplicate. */
static void on_sweep_timer(uv_timer_t *t) {
  aws_backend_t *b = t->data;
  mt_err_t err;
  long swept = 0;
  double overdue = 2.0 * (double)b->visibility;
  if (!b->leading || b->closing)
    return;
  if (overdue < SWEEP_OVERDUE)
    overdue = SWEEP_OVERDUE;
  if (mt_outbox_sweep(b->outbox, overdue, SWEEP_MAX, &swept, &err) != 0)
    mt_log(MT_LOG_WARN, "outbox: sweep: %s", err.msg);
  else if (swept > 0)
    mt_log(MT_LOG_INFO,
           "outbox: %ld tasks overdue by more than %.0f s had no "
           "message in sight: published again",
           swept, overdue);
}

void mt__aws_relay_start(aws_backend_t *b) {
  watch_outbox(b);
  relay_round(b);
  uv_timer_start(&b->sweep_timer, on_sweep_timer, SWEEP_EVERY_MS,
                 SWEEP_EVERY_MS);
}
