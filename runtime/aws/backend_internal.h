/*
 * The AWS backend's private vocabulary, shared by the .c files of
 * runtime/aws/ that make up the backend only (the public API is
 * aws_backend.h):
 *   aws_backend.c  the backend's ops on the loop thread, the workers'
 *                  sessions, the AWS thread's consumer side (the long
 *                  poll, the inbox, deletions and visibility changes),
 *                  opening and stopping;
 *   relay.c        the outbox relay on the AWS thread: publishing tasks
 *                  and recurring schedules, and the sweep.
 * Both run on the AWS thread (the loop b->loop) except where a function
 * says otherwise; the fields under b->lock are shared with the discovery
 * loop and the workers.
 */
#ifndef MT_AWS_BACKEND_INTERNAL_H
#define MT_AWS_BACKEND_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "aws/client.h"
#include "aws/credentials.h"
#include "backend.h"
#include "postgres/outbox.h"

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

/* ---- aws_backend.c, for relay.c ---- */

/* One line for a call that failed: "moontask: aws: <what>: <why>". */
void mt__aws_log(const char *what, const mt_aws_result_t *res);

/* Stopping: closes everything once no call is out and no relay round
 * runs. */
void mt__aws_maybe_finish_stop(aws_backend_t *b);

/* uv_close's callback for a handle made with malloc. */
void mt__aws_free_handle(uv_handle_t *h);

/* ---- relay.c ---- */

/* Starts the relay on the AWS thread: the watch on the outbox
 * connection, a first round, and the sweep's timer. */
void mt__aws_relay_start(aws_backend_t *b);

/* The relay's fallback poll (b->relay_timer's callback): a round, and the
 * watch re-made on a new outbox connection. */
void mt__aws_relay_on_timer(uv_timer_t *t);

#endif
