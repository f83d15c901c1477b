#include "aws/aws_backend.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <uv.h>

#include "aws/client.h"
#include "aws/credentials.h"
#include "aws/scheduler.h"
#include "aws/sqs.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/utf8.h"
#include "json/doc.h"
#include "json/write.h"
#include "postgres/outbox.h"
#include "postgres/pg_backend.h"
#include "scheduler/tz.h"

/* Outbox rows the relay reads and publishes at a time, concurrently. */
#define RELAY_BATCH 64

/* A failed publish is tried again after 2^attempts seconds, up to this. */
#define RELAY_BACKOFF_MAX 300.0

/* A message for a task this runtime has no handler for is published
 * again after this many seconds, for a runtime that has one. */
#define PARK_FOREIGN 60

/* The sweep for tasks whose message went missing: every this many
 * seconds, those overdue by more than SWEEP_OVERDUE, up to SWEEP_MAX. */
#define SWEEP_EVERY_MS (5 * 60 * 1000)
#define SWEEP_OVERDUE (10 * 60.0)
#define SWEEP_MAX 1000

/* SQS's limit on a MessageGroupId. */
#define GROUP_ID_MAX 128

/* Extend a held message's visibility when less than this many seconds of
 * it are left: two heartbeats, which come at most every 5 s. */
#define EXTEND_WITHIN 10.0

/* Deletions wait this long for a batch of ten to fill. */
#define FLUSH_DELAY_MS 20

/* How long stopping waits for the last deletions before it gives up on
 * them (their messages come back and meet finished tasks). */
#define STOP_WAIT_MS 5000

/* A received message, from the inbox to its deletion. */
typedef struct message_s {
  struct message_s *next;
  int64_t task_id;   /* a one-off task, else 0 */
  char *schedule;    /* or a recurring schedule's fire ... */
  char *fire_at;     /* ... at this time (RFC 3339) */
  int via_schedule;  /* sent by the task's own schedule, "mt-<id>" */
  int poison;        /* a body we do not understand */
  char *receipt;     /* the receipt handle */
  char *message_id;  /* for logs */
  double visible_at; /* epoch seconds when SQS shows it again */
} message_t;

/* A visibility change to make. */
typedef struct hide_s {
  struct hide_s *next;
  message_t *msg; /* owned, unless `held` */
  int seconds;
  int held; /* the message stays in the held list: only read its receipt */
  char *receipt;
} hide_t;

typedef struct relay_op_s relay_op_t;

typedef struct aws_backend_s {
  mt_backend_t base;
  mt_backend_t *store; /* PostgreSQL: claims, leases, outcomes, sessions */
  mt_aws_creds_provider_t *creds;
  mt_aws_t *aws; /* on loop; its calls and callbacks on the AWS thread */
  char *queue_arn;
  int fifo;
  long visibility; /* the queue's VisibilityTimeout, seconds */
  double direct_within;
  int keep_poison;
  double poll_interval;
  int inbox_cap;

  /* Shared by the loop thread, the workers and the AWS thread. */
  pthread_mutex_t lock;
  message_t *inbox, **inbox_tail; /* received, not yet claimed */
  int inbox_n;
  message_t *held;    /* claimed: their tasks are running here */
  message_t *deletes; /* attempts that ended: delete the messages */
  int ndeletes;
  hide_t *hides;
  int64_t *cleanup; /* finished tasks whose schedule must go */
  size_t ncleanup, cleanup_cap;
  struct park_s {
    int64_t id;
    double delay;
  } * parks; /* dropped messages whose tasks must be published again */
  size_t nparks, parks_cap;
  int stopping;
  int wake_fd; /* eventfd: the inbox has messages */

  /* The AWS thread's own. */
  uv_loop_t loop;
  uv_thread_t thread;
  int thread_started;
  uv_async_t kick;
  uv_timer_t receive_timer, relay_timer, flush_timer, stop_timer, sweep_timer;
  uv_poll_t *outbox_poll;
  int outbox_fd;
  unsigned outbox_gen;
  mt_outbox_t *outbox;
  int receiving;      /* a long poll is out */
  int receive_errors; /* in a row, for the backoff */
  int pending;        /* calls out, the long poll aside */
  int closing;        /* stopping: no new calls */
  int closed;         /* the client freed and the handles closing */
  /* The relay's round: the rows read, the operations they became, and how
   * many are still out. */
  mt_outbox_batch_t batch;
  relay_op_t *ops;
  size_t nops, ops_left;
  int relaying, relay_again, leading;
} aws_backend_t;

/* One publishing operation: the latest state of one task or schedule,
 * settling every outbox row about it in this round. */
struct relay_op_s {
  aws_backend_t *b;
  const mt_outbox_entry_t *e; /* the latest row */
  int64_t *ids;
  size_t nids;
  int attempts;     /* the most any of its rows has had */
  int cleanup_only; /* every row is a clean-up: withdraw, never publish */
  int defer;        /* failed: try again later */
  char error[512];
};

static void message_free(message_t *m) {
  if (m == NULL)
    return;
  free(m->schedule);
  free(m->fire_at);
  free(m->receipt);
  free(m->message_id);
  free(m);
}

static void message_list_free(message_t *m) {
  while (m != NULL) {
    message_t *next = m->next;
    message_free(m);
    m = next;
  }
}

/* Wakes the AWS thread to send what the other threads queued. */
static void kick(aws_backend_t *b) { uv_async_send(&b->kick); }

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

static void hide_list_free(hide_t *h) {
  while (h != NULL) {
    hide_t *next = h->next;
    message_free(h->msg);
    free(h->receipt);
    free(h);
    h = next;
  }
}

/* ---- queued work, from any thread (under lock) -------------------------- */

/* Removes and returns the held message of task id, or NULL. */
static message_t *take_held(aws_backend_t *b, int64_t id) {
  for (message_t **p = &b->held; *p != NULL; p = &(*p)->next) {
    if ((*p)->task_id == id) {
      message_t *m = *p;
      *p = m->next;
      return m;
    }
  }
  return NULL;
}

/* Has the task of a dropped message published again in delay seconds.
 * Without memory it waits for the sweep. */
static void queue_park(aws_backend_t *b, int64_t id, double delay) {
  if (b->nparks == b->parks_cap) {
    size_t cap = b->parks_cap ? b->parks_cap * 2 : 16;
    struct park_s *grown = realloc(b->parks, cap * sizeof *grown);
    if (grown == NULL)
      return;
    b->parks = grown;
    b->parks_cap = cap;
  }
  b->parks[b->nparks].id = id;
  b->parks[b->nparks++].delay = delay;
}

static void queue_delete(aws_backend_t *b, message_t *m) {
  m->next = b->deletes;
  b->deletes = m;
  b->ndeletes++;
  if (!m->via_schedule)
    return;
  if (b->ncleanup == b->cleanup_cap) {
    size_t cap = b->cleanup_cap ? b->cleanup_cap * 2 : 64;
    int64_t *grown = realloc(b->cleanup, cap * sizeof *grown);
    if (grown == NULL)
      return; /* ActionAfterCompletion deletes the schedule anyway */
    b->cleanup = grown;
    b->cleanup_cap = cap;
  }
  b->cleanup[b->ncleanup++] = m->task_id;
}

static void queue_hide(aws_backend_t *b, message_t *m, double seconds,
                       int held) {
  hide_t *h = calloc(1, sizeof *h);
  char *receipt = held ? strdup(m->receipt) : NULL;
  if (h == NULL || (held && receipt == NULL)) {
    /* Without memory the message simply comes back when its visibility
     * runs out. */
    free(h);
    free(receipt);
    if (!held)
      message_free(m);
    return;
  }
  long s = (long)ceil(seconds);
  h->seconds = s < 0                       ? 0
               : s > MT_SQS_MAX_VISIBILITY ? MT_SQS_MAX_VISIBILITY
                                           : (int)s;
  h->msg = held ? NULL : m;
  h->receipt = held ? receipt : NULL;
  h->held = held;
  h->next = b->hides;
  b->hides = h;
}

/* The attempt of task id ended with a durable outcome: its message goes. */
static void ack(aws_backend_t *b, int64_t id) {
  pthread_mutex_lock(&b->lock);
  message_t *m = take_held(b, id);
  if (m != NULL)
    queue_delete(b, m);
  pthread_mutex_unlock(&b->lock);
  kick(b);
}

/* ---- the relay (AWS thread) --------------------------------------------- */

static void relay_round(aws_backend_t *b);
static void maybe_finish_stop(aws_backend_t *b);

static void watch_outbox(aws_backend_t *b);

/* The relay's fallback poll, which also re-makes a lost connection (and
 * the watch on its new socket). */
static void on_relay_timer(uv_timer_t *t) {
  relay_round(t->data);
  watch_outbox(t->data);
}

static void log_aws(const char *what, const mt_aws_result_t *res) {
  fprintf(stderr, "moontask: aws: %s: %s\n", what, res->err.msg);
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
    fprintf(stderr, "moontask: outbox: %s (those rows are published again)\n",
            err.msg);
  for (size_t i = 0; i < b->nops; i++) {
    relay_op_t *op = &b->ops[i];
    if (!op->defer)
      continue;
    double delay = pow(2, op->attempts < 9 ? op->attempts : 9);
    if (delay > RELAY_BACKOFF_MAX)
      delay = RELAY_BACKOFF_MAX;
    if (mt_outbox_defer(b->outbox, op->ids, op->nids, delay, op->error, &err) !=
        0)
      fprintf(stderr, "moontask: outbox: %s (tried again at once)\n", err.msg);
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
    maybe_finish_stop(b);
    return;
  }
  /* The next round starts from the loop rather than from here, which may
   * be inside the round before. */
  uint64_t every = (uint64_t)(b->poll_interval * 1000);
  if (full || b->relay_again) {
    b->relay_again = 0;
    uv_timer_start(&b->relay_timer, on_relay_timer, 0, every);
  } else if (wait >= 0 && wait * 1000 < uv_timer_get_due_in(&b->relay_timer)) {
    uv_timer_start(&b->relay_timer, on_relay_timer, (uint64_t)(wait * 1000) + 1,
                   every);
  }
}

static void op_done(relay_op_t *op, const mt_aws_result_t *res, int settled) {
  aws_backend_t *b = op->b;
  b->pending--;
  if (!settled) {
    op->defer = 1;
    copy_text(op->error, sizeof op->error, res->err.msg);
    if (op->e->task_id)
      fprintf(stderr, "moontask: outbox: task %" PRId64 ": %s\n",
              op->e->task_id, res->err.msg);
    else
      fprintf(stderr, "moontask: outbox: schedule \"%s\": %s\n", op->e->name,
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
    fprintf(stderr, "moontask: schedule \"%s\": %s\n", e->name, why.msg);
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
    fprintf(stderr, "moontask: outbox: %s\n", err.msg);
    return; /* the relay timer tries again */
  }
  if (leading && !b->leading)
    fprintf(stderr, "moontask: outbox: this runtime publishes to AWS\n");
  b->leading = leading;
  if (!leading)
    return;
  if (mt_outbox_fetch(b->outbox, RELAY_BATCH, &b->batch, &err) != 0) {
    fprintf(stderr, "moontask: outbox: %s\n", err.msg);
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
      fprintf(stderr, "moontask: outbox: %s\n", err.msg);
    }
    b->ops_left--;
  }
  if (--b->ops_left == 0)
    relay_settle(b);
}

static void free_handle(uv_handle_t *h) { free(h); }

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
    uv_close((uv_handle_t *)b->outbox_poll, free_handle);
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

/* ---- receiving (AWS thread) --------------------------------------------- */

static void receive(aws_backend_t *b);

static void on_receive_timer(uv_timer_t *t) { receive(t->data); }

/* Reads a message's body: {"task_id":N[,"via":"schedule"]} or
 * {"schedule":NAME,"fire_at":RFC3339}. Anything else is poison. */
static void parse_body(message_t *m, const char *body, size_t len) {
  mt_jdoc_t *doc = NULL;
  mt_err_t err;
  m->poison = 1;
  if (mt_jdoc_parse(body, len, &doc, &err) != 0)
    return;
  const mt_jval_t *root = mt_jdoc_root(doc);
  const mt_jval_t *id = mt_jval_get(root, "task_id");
  const mt_jval_t *via = mt_jval_get(root, "via");
  const mt_jval_t *sched = mt_jval_get(root, "schedule");
  const mt_jval_t *at = mt_jval_get(root, "fire_at");
  if (id != NULL && id->type == MT_JV_NUMBER && id->is_int && id->u.num.i > 0) {
    m->task_id = id->u.num.i;
    m->via_schedule = via != NULL && via->type == MT_JV_STRING &&
                      strcmp(via->u.str, "schedule") == 0;
    m->poison = 0;
  } else if (sched != NULL && sched->type == MT_JV_STRING && sched->len > 0 &&
             at != NULL && at->type == MT_JV_STRING) {
    /* The time goes to PostgreSQL as a timestamptz: only the form
     * EventBridge writes, yyyy-mm-ddThh:mm:ssZ, and a real instant (no
     * month 13), so that no odd text fails in the store. */
    const char *t = at->u.str, *form = "dddd-dd-ddTdd:dd:ddZ";
    int64_t instant;
    int ok = at->len == strlen(form);
    for (size_t i = 0; ok && form[i]; i++)
      ok = form[i] == 'd' ? t[i] >= '0' && t[i] <= '9' : t[i] == form[i];
    if (ok && mt_time_parse_rfc3339(t, &instant) == 0 &&
        strlen(sched->u.str) == sched->len &&
        (m->schedule = strdup(sched->u.str)) != NULL &&
        (m->fire_at = strdup(t)) != NULL)
      m->poison = 0;
  }
  mt_jdoc_free(doc);
}

static void send_hides(aws_backend_t *b);

static void on_received(const mt_aws_result_t *res,
                        const mt_sqs_received_t *out, void *arg) {
  aws_backend_t *b = arg;
  b->receiving = 0;
  if (b->closed)
    return;
  if (res->rc != 0) {
    if (b->closing)
      return;
    /* The HTTP client already retried; wait a while longer, up to 30 s. */
    int n = b->receive_errors < 5 ? ++b->receive_errors : 5;
    log_aws("receiving from the queue", res);
    uv_timer_start(&b->receive_timer, on_receive_timer, 1000u << n, 0);
    return;
  }
  b->receive_errors = 0;
  double now = mt_epoch_now();
  message_t *got = NULL, **tail = &got;
  int n = 0;
  for (size_t i = 0; i < out->n; i++) {
    const mt_sqs_message_t *sm = &out->messages[i];
    message_t *m = calloc(1, sizeof *m);
    if (m == NULL || (m->receipt = strdup(sm->receipt_handle)) == NULL ||
        (m->message_id = strdup(sm->message_id ? sm->message_id : "?")) ==
            NULL) {
      message_free(m); /* it comes back after its visibility timeout */
      continue;
    }
    m->visible_at = now + (double)b->visibility;
    parse_body(m, sm->body, sm->body_len);
    *tail = m;
    tail = &m->next;
    n++;
  }
  if (n > 0 && b->closing) {
    /* Stopping: back to the queue at once, for the runtimes that stay. */
    pthread_mutex_lock(&b->lock);
    while (got != NULL) {
      message_t *next = got->next;
      queue_hide(b, got, 0, 0);
      got = next;
    }
    pthread_mutex_unlock(&b->lock);
    send_hides(b);
    return;
  }
  if (n > 0) {
    pthread_mutex_lock(&b->lock);
    *b->inbox_tail = got;
    b->inbox_tail = tail;
    b->inbox_n += n;
    pthread_mutex_unlock(&b->lock);
    uint64_t one = 1;
    ssize_t w = write(b->wake_fd, &one, sizeof one);
    (void)w; /* an eventfd only fails when its counter is full: awake */
  }
  receive(b);
}

/* Keeps one long poll out while the inbox has room. */
static void receive(aws_backend_t *b) {
  if (b->closing || b->receiving ||
      uv_is_active((uv_handle_t *)&b->receive_timer))
    return;
  pthread_mutex_lock(&b->lock);
  int room = b->inbox_n < b->inbox_cap;
  pthread_mutex_unlock(&b->lock);
  if (!room)
    return; /* a claim makes room and kicks */
  mt_sqs_receive_t req = {.max_messages = MT_SQS_MAX_BATCH,
                          .wait_seconds = MT_SQS_MAX_WAIT};
  mt_err_t err;
  if (mt_sqs_receive(b->aws, &req, on_received, b, &err) != 0) {
    fprintf(stderr, "moontask: aws: receiving from the queue: %s\n", err.msg);
    uv_timer_start(&b->receive_timer, on_receive_timer, 5000, 0);
    return;
  }
  b->receiving = 1;
}

/* ---- deletions and visibility (AWS thread) ------------------------------ */

typedef struct batch_call_s {
  aws_backend_t *b;
  message_t *msgs; /* deletions: freed with the answer */
  hide_t *hides;   /* visibility changes: likewise */
} batch_call_t;

static void on_batch(const mt_aws_result_t *res, const mt_sqs_batch_t *out,
                     void *arg) {
  batch_call_t *c = arg;
  aws_backend_t *b = c->b;
  b->pending--;
  /* A message that could not be deleted comes back and meets a finished
   * task (deleted then); one that could not be hidden comes back early and
   * is hidden again. Either way only a log line. */
  if (res->rc != 0)
    log_aws(c->msgs ? "deleting messages" : "changing visibility", res);
  else if (out->failed > 0)
    for (size_t i = 0; i < out->n; i++)
      if (!out->entries[i].ok &&
          strcmp(out->entries[i].code, "ReceiptHandleIsInvalid") != 0)
        fprintf(stderr, "moontask: aws: %s: %s: %s\n",
                c->msgs ? "deleting a message" : "changing visibility",
                out->entries[i].code, out->entries[i].message);
  message_list_free(c->msgs);
  hide_list_free(c->hides);
  free(c);
  maybe_finish_stop(b);
}

static void flush(aws_backend_t *b, int all);

static void on_flush_timer(uv_timer_t *t) { flush(t->data, 1); }

/* Sends queued deletions in batches of ten. Without `all`, a last batch of
 * fewer waits FLUSH_DELAY_MS for company. */
static void flush(aws_backend_t *b, int all) {
  mt_err_t err;
  for (;;) {
    pthread_mutex_lock(&b->lock);
    if (b->ndeletes == 0 || (!all && b->ndeletes < MT_SQS_MAX_BATCH)) {
      int left = b->ndeletes;
      pthread_mutex_unlock(&b->lock);
      if (left > 0 && !uv_is_active((uv_handle_t *)&b->flush_timer))
        uv_timer_start(&b->flush_timer, on_flush_timer, FLUSH_DELAY_MS, 0);
      break;
    }
    batch_call_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
      pthread_mutex_unlock(&b->lock);
      break;
    }
    c->b = b;
    const char *handles[MT_SQS_MAX_BATCH];
    size_t n = 0;
    while (n < MT_SQS_MAX_BATCH && b->deletes != NULL) {
      message_t *m = b->deletes;
      b->deletes = m->next;
      b->ndeletes--;
      /* SQS refuses a batch that names one handle twice. */
      int twice = 0;
      for (size_t k = 0; k < n; k++)
        twice |= strcmp(handles[k], m->receipt) == 0;
      m->next = c->msgs;
      c->msgs = m;
      if (!twice)
        handles[n++] = m->receipt;
    }
    pthread_mutex_unlock(&b->lock);
    if (mt_sqs_delete_batch(b->aws, NULL, handles, n, on_batch, c, &err) != 0) {
      fprintf(stderr, "moontask: aws: deleting messages: %s\n", err.msg);
      message_list_free(c->msgs);
      free(c);
    } else {
      b->pending++;
    }
  }
}

static void send_hides(aws_backend_t *b) {
  mt_err_t err;
  pthread_mutex_lock(&b->lock);
  hide_t *all = b->hides;
  b->hides = NULL;
  pthread_mutex_unlock(&b->lock);
  while (all != NULL && !b->closed) {
    batch_call_t *c = calloc(1, sizeof *c);
    mt_sqs_visibility_t entries[MT_SQS_MAX_BATCH];
    size_t n = 0;
    if (c == NULL)
      break;
    c->b = b;
    while (n < MT_SQS_MAX_BATCH && all != NULL) {
      hide_t *h = all;
      all = h->next;
      entries[n].receipt_handle = h->held ? h->receipt : h->msg->receipt;
      entries[n].timeout = h->seconds;
      int twice = 0;
      for (size_t k = 0; k < n; k++)
        twice |=
            strcmp(entries[k].receipt_handle, entries[n].receipt_handle) == 0;
      h->next = c->hides;
      c->hides = h;
      if (!twice)
        n++;
    }
    if (mt_sqs_visibility_batch(b->aws, NULL, entries, n, on_batch, c, &err) !=
        0) {
      /* They come back when their visibility runs out. */
      fprintf(stderr, "moontask: aws: changing visibility: %s\n", err.msg);
      hide_list_free(c->hides);
      free(c);
    } else {
      b->pending++;
    }
  }
  hide_list_free(all); /* without memory, or closed: they come back */
}

/* Finished tasks that came by their own schedule: a clean-up row each, so
 * that the relay deletes the schedule in order with whatever else the task
 * goes through (a retry's new schedule has the same name). Then the tasks
 * of dropped messages, to be published again after their delay. */
static void send_notes(aws_backend_t *b) {
  mt_err_t err;
  for (;;) {
    int64_t ids[64];
    pthread_mutex_lock(&b->lock);
    size_t n = b->ncleanup < 64 ? b->ncleanup : 64;
    if (n > 0)
      memcpy(ids, b->cleanup + b->ncleanup - n, n * sizeof *ids);
    b->ncleanup -= n;
    pthread_mutex_unlock(&b->lock);
    if (n == 0)
      break;
    if (mt_outbox_note_tasks(b->outbox, ids, n, 1, 0, &err) != 0)
      fprintf(stderr,
              "moontask: outbox: %s (the schedules of %zu finished tasks "
              "stay until ActionAfterCompletion removes them)\n",
              err.msg, n);
  }
  for (;;) {
    pthread_mutex_lock(&b->lock);
    struct park_s park = b->nparks ? b->parks[--b->nparks] : (struct park_s){0};
    pthread_mutex_unlock(&b->lock);
    if (park.id == 0)
      return;
    if (mt_outbox_note_tasks(b->outbox, &park.id, 1, 0, park.delay, &err) != 0)
      fprintf(stderr,
              "moontask: outbox: %s (task %" PRId64 " waits for the sweep)\n",
              err.msg, park.id);
  }
}

/* ---- the AWS thread ----------------------------------------------------- */

static void close_all(aws_backend_t *b);

static void on_stop_timer(uv_timer_t *t) { close_all(t->data); }

static void on_kick(uv_async_t *a) {
  aws_backend_t *b = a->data;
  pthread_mutex_lock(&b->lock);
  int stopping = b->stopping;
  pthread_mutex_unlock(&b->lock);
  send_notes(b);
  send_hides(b);
  flush(b, stopping);
  if (!stopping) {
    receive(b);
    return;
  }
  if (!b->closing) {
    b->closing = 1;
    /* Messages received but never claimed go back to the queue at once,
     * for the runtimes that stay. */
    pthread_mutex_lock(&b->lock);
    message_t *m = b->inbox;
    b->inbox = NULL;
    b->inbox_tail = &b->inbox;
    b->inbox_n = 0;
    while (m != NULL) {
      message_t *next = m->next;
      queue_hide(b, m, 0, 0);
      m = next;
    }
    pthread_mutex_unlock(&b->lock);
    send_hides(b);
    uv_timer_stop(&b->relay_timer);
    uv_timer_stop(&b->receive_timer);
    uv_timer_stop(&b->sweep_timer);
    uv_timer_start(&b->stop_timer, on_stop_timer, STOP_WAIT_MS, 0);
  }
  maybe_finish_stop(b);
}

static void maybe_finish_stop(aws_backend_t *b) {
  if (b->closing && b->pending == 0 && !b->relaying)
    close_all(b);
}

/* Frees the client (its pending calls answer from inside, with no
 * response) and closes this backend's handles; the HTTP client closes its
 * own. The thread's loop ends once all are closed. */
static void close_all(aws_backend_t *b) {
  if (b->closed)
    return;
  b->closing = b->closed = 1;
  /* Cleared first: the answers given from inside come back here. */
  mt_aws_t *aws = b->aws;
  b->aws = NULL;
  mt_aws_free(aws);
  uv_handle_t *mine[] = {
      (uv_handle_t *)&b->kick,        (uv_handle_t *)&b->receive_timer,
      (uv_handle_t *)&b->relay_timer, (uv_handle_t *)&b->flush_timer,
      (uv_handle_t *)&b->stop_timer,  (uv_handle_t *)&b->sweep_timer};
  for (size_t i = 0; i < sizeof mine / sizeof *mine; i++)
    if (!uv_is_closing(mine[i]))
      uv_close(mine[i], NULL);
  if (b->outbox_poll != NULL)
    uv_close((uv_handle_t *)b->outbox_poll, free_handle);
  b->outbox_poll = NULL;
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
    fprintf(stderr, "moontask: outbox: sweep: %s\n", err.msg);
  else if (swept > 0)
    fprintf(stderr,
            "moontask: outbox: %ld tasks overdue by more than %.0f s had no "
            "message in sight: published again\n",
            swept, overdue);
}

static void thread_main(void *arg) {
  aws_backend_t *b = arg;
  watch_outbox(b);
  relay_round(b);
  receive(b);
  uv_timer_start(&b->sweep_timer, on_sweep_timer, SWEEP_EVERY_MS,
                 SWEEP_EVERY_MS);
  uv_run(&b->loop, UV_RUN_DEFAULT);
}

/* ---- the backend's ops (loop thread) ------------------------------------ */

static int aws_wake_fd(mt_backend_t *base, unsigned *generation) {
  *generation = 1;
  return ((aws_backend_t *)base)->wake_fd;
}

static int aws_read_wakeups(mt_backend_t *base, int *due_now, double *next_due,
                            mt_err_t *err) {
  (void)next_due;
  (void)err;
  aws_backend_t *b = (aws_backend_t *)base;
  uint64_t count;
  ssize_t r = read(b->wake_fd, &count, sizeof count);
  (void)r; /* EAGAIN: nothing new; the inbox tells anyway */
  pthread_mutex_lock(&b->lock);
  if (b->inbox_n > 0)
    *due_now = 1;
  pthread_mutex_unlock(&b->lock);
  return 0;
}

/* Settles one delivery that was not claimed, under the lock. Nothing is
 * hidden to come back later: every receive counts towards the queue's
 * maxReceiveCount, and a message that came back often enough would land
 * in the dead-letter queue with a good task in it. A task that must run
 * later is published again through the outbox instead. */
static void settle_delivery(aws_backend_t *b, message_t *m,
                            const mt_delivery_t *d) {
  int keep = 0;
  switch (d->verdict) {
  case MT_DELIVERY_CLAIMED:
  case MT_DELIVERY_PENDING: return; /* the caller keeps it */
  case MT_DELIVERY_FINISHED:
  case MT_DELIVERY_BUSY:
    /* A duplicate, a fire already run or handed over, or a message that
     * meets its task running under a live lease: the holder's own message
     * and, should the holder die, the lease rescue's new one cover the
     * task. */
    break;
  case MT_DELIVERY_MISSING:
    keep = b->keep_poison;
    fprintf(stderr, "moontask: aws: message %s: %s; %s\n", m->message_id,
            m->poison ? "not a moontask message"
                      : "it names no task of this database, or a fire the "
                        "database refused",
            keep ? "left for the queue's dead-letter queue" : "deleted");
    break;
  case MT_DELIVERY_FOREIGN:
    /* Another runtime may have the handler (a deploy in progress). */
    queue_park(b, m->task_id, PARK_FOREIGN);
    break;
  case MT_DELIVERY_NOT_DUE:
    /* Early (a clock apart) or stale: the relay publishes the task for
     * the run_at it has now. */
    queue_park(b, m->task_id, 0);
    break;
  }
  if (keep) {
    message_free(m); /* it comes back after its visibility timeout */
    return;
  }
  m->via_schedule = 0; /* only a finished attempt cleans up its schedule */
  queue_delete(b, m);
}

/* Takes up to max messages from the inbox, in order. */
static message_t *take_inbox(aws_backend_t *b, int max, int *n) {
  message_t *taken = NULL, **tail = &taken;
  *n = 0;
  pthread_mutex_lock(&b->lock);
  while (*n < max && b->inbox != NULL) {
    message_t *m = b->inbox;
    b->inbox = m->next;
    b->inbox_n--;
    m->next = NULL;
    *tail = m;
    tail = &m->next;
    (*n)++;
  }
  if (b->inbox == NULL)
    b->inbox_tail = &b->inbox;
  pthread_mutex_unlock(&b->lock);
  return taken;
}

/* Puts messages back in front of the inbox (under the lock): the next
 * claim looks at them first. */
static void return_to_inbox(aws_backend_t *b, message_t *back) {
  message_t **tail = &back;
  int n = 0;
  for (; *tail != NULL; tail = &(*tail)->next)
    n++;
  if (n == 0)
    return;
  *tail = b->inbox;
  if (b->inbox == NULL)
    b->inbox_tail = tail;
  b->inbox = back;
  b->inbox_n += n;
}

static int aws_claim(mt_backend_t *base, const int64_t *done, size_t ndone,
                     int max, mt_task_t **tasks, int *count, mt_err_t *err) {
  aws_backend_t *b = (aws_backend_t *)base;
  int n, acked = 0;
  *tasks = NULL;
  *count = 0;
  message_t *taken = take_inbox(b, max, &n);
  if (ndone == 0 && n == 0)
    return 0;
  mt_delivery_t *d = calloc(n ? (size_t)n : 1, sizeof *d);
  message_t **msgs = calloc(n ? (size_t)n : 1, sizeof *msgs);
  if (d == NULL || msgs == NULL) {
    free(d);
    free(msgs);
    pthread_mutex_lock(&b->lock);
    return_to_inbox(b, taken);
    pthread_mutex_unlock(&b->lock);
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  int i = 0;
  for (message_t *m = taken; m != NULL; m = m->next, i++) {
    msgs[i] = m;
    d[i].task_id = m->task_id;
    d[i].schedule = m->schedule;
    d[i].fire_at = m->fire_at;
  }
  int rc =
      mt_pg_claim_delivered(b->store, done, ndone, d, (size_t)n, &acked, err);

  mt_task_t *head = NULL, **ttail = &head;
  message_t *back = NULL, **btail = &back;
  pthread_mutex_lock(&b->lock);
  for (i = 0; i < n; i++) {
    message_t *m = msgs[i];
    m->next = NULL;
    if (m->poison)
      d[i].verdict = MT_DELIVERY_MISSING;
    if (d[i].verdict == MT_DELIVERY_CLAIMED && d[i].task != NULL) {
      m->task_id = d[i].task->id; /* a fire's task is new */
      m->next = b->held;
      b->held = m;
      *ttail = d[i].task;
      ttail = &d[i].task->next;
      (*count)++;
    } else if (d[i].verdict == MT_DELIVERY_PENDING ||
               d[i].verdict == MT_DELIVERY_CLAIMED) {
      /* Not looked at (the store failed first), or claimed without memory
       * for the task (its lease brings it back): looked at again. */
      *btail = m;
      btail = &m->next;
    } else {
      settle_delivery(b, m, &d[i]);
    }
  }
  return_to_inbox(b, back);
  /* The tasks acknowledged on the way ended their attempts. */
  for (size_t k = 0; acked && k < ndone; k++) {
    message_t *m = take_held(b, done[k]);
    if (m != NULL)
      queue_delete(b, m);
  }
  pthread_mutex_unlock(&b->lock);
  free(d);
  free(msgs);
  *tasks = head;
  kick(b);
  return rc;
}

static int aws_release(mt_backend_t *base, mt_task_t *tasks, mt_err_t *err) {
  aws_backend_t *b = (aws_backend_t *)base;
  int rc = b->store->ops->release(b->store, tasks, err);
  /* Back to `scheduled`, which the outbox publishes anew. */
  for (mt_task_t *t = tasks; rc == 0 && t != NULL; t = t->next)
    ack(b, t->id);
  return rc;
}

static int aws_heartbeat(mt_backend_t *base, const int64_t *ids, size_t n,
                         mt_err_t *err) {
  aws_backend_t *b = (aws_backend_t *)base;
  int rc = b->store->ops->heartbeat(b->store, ids, n, err);
  double now = mt_epoch_now();
  int any = 0;
  pthread_mutex_lock(&b->lock);
  for (message_t *m = b->held; m != NULL; m = m->next) {
    if (m->visible_at - now >= EXTEND_WITHIN)
      continue;
    int running = 0;
    for (size_t i = 0; i < n && !running; i++)
      running = ids[i] == m->task_id;
    if (!running)
      continue;
    queue_hide(b, m, (double)b->visibility, 1);
    m->visible_at = now + (double)b->visibility;
    any = 1;
  }
  pthread_mutex_unlock(&b->lock);
  if (any)
    kick(b);
  return rc;
}

static int aws_outstanding(mt_backend_t *base, long *count, mt_err_t *err) {
  aws_backend_t *b = (aws_backend_t *)base;
  return b->store->ops->outstanding(b->store, count, err);
}

/* ---- the worker's session: the store's, telling when an attempt ends --- */

typedef struct aws_session_s {
  mt_session_t base;
  mt_session_t *inner;
  aws_backend_t *b;
  int64_t task_id; /* of the transaction begun last */
} aws_session_t;

static mt_session_t *inner_of(mt_session_t *s) {
  return ((aws_session_t *)s)->inner;
}

static int s_idle(mt_session_t *s) {
  return inner_of(s)->ops->idle(inner_of(s));
}

static int s_alive(mt_session_t *s) {
  return inner_of(s)->ops->alive(inner_of(s));
}

static int s_connect(mt_session_t *s, mt_err_t *err) {
  return inner_of(s)->ops->connect(inner_of(s), err);
}

static mt_tx_t *s_begin(mt_session_t *s, const mt_tx_opts_t *opts) {
  ((aws_session_t *)s)->task_id = opts->task_id;
  return inner_of(s)->ops->begin(inner_of(s), opts);
}

static void s_tx_state(mt_session_t *s, mt_tx_state_t *out) {
  inner_of(s)->ops->tx_state(inner_of(s), out);
}

static int s_commit(mt_session_t *s, mt_err_t *err) {
  aws_session_t *as = (aws_session_t *)s;
  int rc = as->inner->ops->commit(as->inner, err);
  if (rc == 0) /* a failed commit is followed by a failure record */
    ack(as->b, as->task_id);
  return rc;
}

static void s_rollback(mt_session_t *s) {
  inner_of(s)->ops->rollback(inner_of(s));
}

/* MT_EIO: the executor reconnects and records it again; anything else is
 * the end of this attempt (a record the store refused leaves the task to
 * its lease, which brings it back through the outbox). */
static int s_fail(mt_session_t *s, const mt_failure_t *f, mt_err_t *err) {
  aws_session_t *as = (aws_session_t *)s;
  int rc = as->inner->ops->fail(as->inner, f, err);
  if (rc != MT_EIO)
    ack(as->b, f->id);
  return rc;
}

static int s_release(mt_session_t *s, int64_t id, mt_err_t *err) {
  aws_session_t *as = (aws_session_t *)s;
  int rc = as->inner->ops->release(as->inner, id, err);
  if (rc != MT_EIO)
    ack(as->b, id);
  return rc;
}

static void s_free(mt_session_t *s) {
  if (s == NULL)
    return;
  inner_of(s)->ops->free(inner_of(s));
  free(s);
}

static const mt_session_ops_t session_ops = {
    .idle = s_idle,
    .alive = s_alive,
    .connect = s_connect,
    .begin = s_begin,
    .tx_state = s_tx_state,
    .commit = s_commit,
    .rollback = s_rollback,
    .fail = s_fail,
    .release = s_release,
    .free = s_free,
};

static int aws_session(mt_backend_t *base, const char *name, mt_session_t **out,
                       mt_err_t *err) {
  aws_backend_t *b = (aws_backend_t *)base;
  aws_session_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  int rc = b->store->ops->session(b->store, name, &s->inner, err);
  if (rc != 0) {
    free(s);
    return rc;
  }
  s->base.ops = &session_ops;
  s->b = b;
  *out = &s->base;
  return 0;
}

/* ---- opening and closing ------------------------------------------------ */

static void aws_free(mt_backend_t *base) {
  aws_backend_t *b = (aws_backend_t *)base;
  if (b == NULL)
    return;
  if (b->thread_started) {
    pthread_mutex_lock(&b->lock);
    b->stopping = 1;
    pthread_mutex_unlock(&b->lock);
    kick(b);
    uv_thread_join(&b->thread);
  } else if (b->loop.data == b) {
    close_all(b);
    uv_run(&b->loop, UV_RUN_DEFAULT);
  }
  if (b->loop.data == b)
    uv_loop_close(&b->loop);
  mt_aws_free(b->aws);
  mt_aws_creds_close(b->creds);
  mt_outbox_free(b->outbox);
  if (b->store != NULL)
    b->store->ops->free(b->store);
  message_list_free(b->inbox);
  message_list_free(b->held);
  message_list_free(b->deletes);
  hide_list_free(b->hides);
  if (b->wake_fd >= 0)
    close(b->wake_fd);
  free(b->cleanup);
  free(b->parks);
  free(b->queue_arn);
  pthread_mutex_destroy(&b->lock);
  free(b);
}

static const mt_backend_ops_t aws_ops = {
    .name = "aws",
    .wake_fd = aws_wake_fd,
    .read_wakeups = aws_read_wakeups,
    .claim = aws_claim,
    .release = aws_release,
    .heartbeat = aws_heartbeat,
    .fire_schedules = NULL, /* EventBridge fires them */
    .session = aws_session,
    .outstanding = aws_outstanding,
    .free = aws_free,
};

/* Reads the queue's ARN (the schedules' target), kind and visibility
 * timeout, which also proves the queue and the credentials. */
static int look_at_queue(aws_backend_t *b, const char *url, mt_err_t *err) {
  mt_sqs_queue_attrs_t attrs;
  mt_aws_result_t res;
  int rc = mt_sqs_queue_attributes_sync(b->aws, NULL, &attrs, &res);
  if (rc != 0) {
    mt_err_set(err, rc, "aws.queue_url %s: %s", url, res.err.msg);
  } else if (attrs.arn == NULL || (b->queue_arn = strdup(attrs.arn)) == NULL) {
    rc = mt_err_set(err, attrs.arn ? MT_ENOMEM : MT_EIO, "aws.queue_url %s: %s",
                    url, attrs.arn ? "out of memory" : "SQS sent no QueueArn");
  } else {
    b->fifo = attrs.fifo;
    b->visibility =
        attrs.visibility_timeout > 0 ? attrs.visibility_timeout : 30;
  }
  mt_aws_result_free(&res);
  return rc;
}

int mt_aws_backend_open(const mt_backend_conf_t *conf, mt_backend_t **out,
                        mt_err_t *err) {
  const mt_backend_aws_conf_t *ac = conf->aws;
  if (ac == NULL || ac->queue_url == NULL)
    return mt_err_set(err, MT_ECONFIG,
                      "backend \"aws\" needs aws.queue_url: the queue that "
                      "delivers tasks");
  if (ac->role_arn == NULL)
    return mt_err_set(err, MT_ECONFIG,
                      "backend \"aws\" needs aws.role_arn: the role "
                      "EventBridge Scheduler assumes to send to the queue");
  aws_backend_t *b = calloc(1, sizeof *b);
  if (b == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  int rc;
  b->base.ops = &aws_ops;
  b->wake_fd = -1;
  b->outbox_fd = -1;
  b->inbox_tail = &b->inbox;
  b->direct_within = ac->direct_within;
  b->keep_poison = ac->keep_poison;
  b->poll_interval = conf->poll_interval > 0 ? conf->poll_interval : 1;
  /* Enough to keep every worker busy while the next receive is out, and
   * few enough that messages do not wait here while their visibility
   * runs. */
  b->inbox_cap = conf->workers * 2 > MT_SQS_MAX_BATCH ? conf->workers * 2
                                                      : MT_SQS_MAX_BATCH;
  pthread_mutex_init(&b->lock, NULL);
  if ((b->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
    rc = mt_err_set(err, MT_ESYS, "eventfd: %s", strerror(errno));
    goto fail;
  }
  if (uv_loop_init(&b->loop) != 0) {
    rc = mt_err_set(err, MT_ESYS, "cannot create the AWS event loop");
    goto fail;
  }
  b->loop.data = b;
  uv_async_init(&b->loop, &b->kick, on_kick);
  b->kick.data = b;
  uv_timer_t *timers[] = {&b->receive_timer, &b->relay_timer, &b->flush_timer,
                          &b->stop_timer, &b->sweep_timer};
  for (size_t i = 0; i < sizeof timers / sizeof *timers; i++) {
    uv_timer_init(&b->loop, timers[i]);
    timers[i]->data = b;
  }
  if ((rc = mt_pg_store_open(conf, &b->store, err)) != 0 ||
      (rc = mt_outbox_open(&b->outbox, conf->database_url, "moontask outbox",
                           err)) != 0)
    goto fail;
  mt_aws_creds_opts_t copts = {.region = ac->region};
  if ((rc = mt_aws_creds_open(&copts, &b->creds, err)) != 0)
    goto fail;
  mt_aws_conf_t aconf = {.region = ac->region,
                         .endpoint = ac->endpoint,
                         .queue_url = ac->queue_url,
                         .schedule_group = ac->schedule_group,
                         .role_arn = ac->role_arn};
  /* Fewer and shorter tries than the client's defaults: the outbox tries a
   * publish again itself, with a longer backoff, and a relay round waits
   * for its slowest call. */
  const mt_http_opts_t http = {.max_attempts = 3, .timeout_ms = 15000};
  if ((rc = mt_aws_new(&b->loop, &aconf, b->creds, &http, &b->aws, err)) != 0 ||
      (rc = look_at_queue(b, ac->queue_url, err)) != 0)
    goto fail;
  uv_timer_start(&b->relay_timer, on_relay_timer,
                 (uint64_t)(b->poll_interval * 1000),
                 (uint64_t)(b->poll_interval * 1000));
  if (uv_thread_create(&b->thread, thread_main, b) != 0) {
    rc = mt_err_set(err, MT_ESYS, "cannot start the AWS thread");
    goto fail;
  }
  b->thread_started = 1;
  *out = &b->base;
  return 0;
fail:
  aws_free(&b->base);
  return rc;
}
