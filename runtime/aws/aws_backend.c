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

#include "aws/backend_internal.h"
#include "aws/client.h"
#include "aws/credentials.h"
#include "aws/sqs.h"
#include "common/clock.h"
#include "common/log.h"
#include "json/doc.h"
#include "postgres/outbox.h"
#include "postgres/pg_backend.h"
#include "scheduler/tz.h"

/* A message for a task this runtime has no handler for is published
 * again after this many seconds, for a runtime that has one. */
#define PARK_FOREIGN 60

/* Extend a held message's visibility when less than this many seconds of
 * it are left: two heartbeats, which come at most every 5 s. */
#define EXTEND_WITHIN 10.0

/* Deletions wait this long for a batch of ten to fill. */
#define FLUSH_DELAY_MS 20

/* How long stopping waits for the last deletions before it gives up on
 * them (their messages come back and meet finished tasks). */
#define STOP_WAIT_MS 5000

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

void mt__aws_log(const char *what, const mt_aws_result_t *res) {
  mt_log(MT_LOG_WARN, "aws: %s: %s", what, res->err.msg);
}

void mt__aws_free_handle(uv_handle_t *h) { free(h); }

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
    mt__aws_log("receiving from the queue", res);
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
    mt_log(MT_LOG_WARN, "aws: receiving from the queue: %s", err.msg);
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
    mt__aws_log(c->msgs ? "deleting messages" : "changing visibility", res);
  else if (out->failed > 0)
    for (size_t i = 0; i < out->n; i++)
      if (!out->entries[i].ok &&
          strcmp(out->entries[i].code, "ReceiptHandleIsInvalid") != 0)
        mt_log(MT_LOG_WARN, "aws: %s: %s: %s",
               c->msgs ? "deleting a message" : "changing visibility",
               out->entries[i].code, out->entries[i].message);
  message_list_free(c->msgs);
  hide_list_free(c->hides);
  free(c);
  mt__aws_maybe_finish_stop(b);
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
      mt_log(MT_LOG_WARN, "aws: deleting messages: %s", err.msg);
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
      mt_log(MT_LOG_WARN, "aws: changing visibility: %s", err.msg);
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
      mt_log(MT_LOG_WARN,
             "outbox: %s (the schedules of %zu finished tasks "
             "stay until ActionAfterCompletion removes them)",
             err.msg, n);
  }
  for (;;) {
    pthread_mutex_lock(&b->lock);
    struct park_s park = b->nparks ? b->parks[--b->nparks] : (struct park_s){0};
    pthread_mutex_unlock(&b->lock);
    if (park.id == 0)
      return;
    if (mt_outbox_note_tasks(b->outbox, &park.id, 1, 0, park.delay, &err) != 0)
      mt_log(MT_LOG_WARN, "outbox: %s (task %" PRId64 " waits for the sweep)",
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
  mt__aws_maybe_finish_stop(b);
}

void mt__aws_maybe_finish_stop(aws_backend_t *b) {
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
    uv_close((uv_handle_t *)b->outbox_poll, mt__aws_free_handle);
  b->outbox_poll = NULL;
}

static void thread_main(void *arg) {
  aws_backend_t *b = arg;
  mt__aws_relay_start(b);
  receive(b);
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
  uint64_t count = 0;
  /* Only news wakes discovery (EAGAIN: none): messages already waiting
   * are claimed as workers finish, and discovery reads this after every
   * claim. */
  if (read(b->wake_fd, &count, sizeof count) != (ssize_t)sizeof count)
    return 0;
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
    mt_log(MT_LOG_WARN, "aws: message %s: %s; %s", m->message_id,
           m->poison ? "not a moontask message"
                     : "it names no task of this database, or a fire the "
                       "database refused",
           keep ? "left for the queue's dead-letter queue" : "deleted");
    break;
  case MT_DELIVERY_FOREIGN:
    /* Another runtime may have the handler (a deploy in progress). */
    queue_park(b, m->task_id, PARK_FOREIGN);
    break;
  case MT_DELIVERY_HELD:
    /* Its queue is at a limit: published again when a start may fit. */
    queue_park(b, m->task_id, d->wait);
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

static int aws_claim(mt_backend_t *base, const mt_done_t *done, size_t ndone,
                     int max, mt_task_t **tasks, int *count, double *retry_at,
                     mt_err_t *err) {
  (void)retry_at; /* a held task is published again (settle_delivery) */
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
    message_t *m = take_held(b, done[k].id);
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

static int aws_retarget(mt_backend_t *base, const mt_registry_t *reg,
                        mt_err_t *err) {
  aws_backend_t *b = (aws_backend_t *)base;
  return b->store->ops->retarget(b->store, reg, err);
}

static int aws_outstanding(mt_backend_t *base, int *any, mt_err_t *err) {
  aws_backend_t *b = (aws_backend_t *)base;
  return b->store->ops->outstanding(b->store, any, err);
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

/* As a retry's record: the task is scheduled again, which the outbox
 * publishes for its new run_at, and this delivery is done with. */
static int s_snooze(mt_session_t *s, double seconds, mt_err_t *err) {
  aws_session_t *as = (aws_session_t *)s;
  int rc = as->inner->ops->snooze(as->inner, seconds, err);
  if (rc == 0)
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
    .snooze = s_snooze,
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
    .retarget = aws_retarget,
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
  uv_timer_start(&b->relay_timer, mt__aws_relay_on_timer,
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
