/*
 * The backend interface: how discovery finds due tasks and reports back,
 * and how each worker runs a task's transaction and records its outcome,
 * whatever holds the schedule. A backend is a small vtable (the way Redis's
 * scripting engines are), opened by kind through backends/backends.h;
 * discovery and the executor never ask which one they run on.
 *
 * Producing. Every backend keeps the task rows, their states and the
 * recurring schedules in PostgreSQL, and every producer writes them there
 * in its own transaction: an application's moontask.schedule(), a
 * handler's tx:schedule, the CLI (postgres/store.h, for both backends),
 * a failure record, a lease rescue. Nothing here is called to announce a
 * task. A backend that delivers through another system hears of new,
 * retried and cancelled tasks, and of recurring schedules upserted or
 * removed, from the transactional outbox those writes fill in the same
 * transaction (postgres/outbox.h): a rolled-back producer is never
 * announced, and a committed one always is.
 *
 * Threads. A runtime has one loop thread (discovery's libuv loop) and one
 * thread per worker.
 *   - mt_backend_ops_t calls, except `session` and `free`, run on the loop
 *     thread, one at a time. They may block on the task store
 *     (PostgreSQL) for a few round trips (fire_schedules takes one per due
 *     schedule; a lost connection is re-made there), bounded by the
 *     connection's keepalives rather than a deadline, and on nothing else:
 *     a backend that waits on a remote queue does it without blocking the
 *     loop, on a thread of its own (aws/aws_backend.h), and makes wake_fd
 *     readable when it has heard something, which read_wakeups and claim
 *     then hand over.
 *   - `session` is called once per worker, before the loop and the workers
 *     start, on the thread that starts them; `free` after both stopped.
 *     The caller frees each session (ops->free) before the backend.
 *   - mt_session_ops_t calls run on one thread at a time: the worker's
 *     (free: the thread that stops the workers; `moontask try`: the main
 *     thread). They may block, and never touch the loop's state.
 */
#ifndef MT_BACKEND_H
#define MT_BACKEND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "service/registry.h"
#include "task.h"

typedef struct mt_backend_s mt_backend_t;
typedef struct mt_session_s mt_session_t;

/* What a backend is opened with (backends/backends.h picks the backend by
 * kind). Every backend keeps the task rows, their states and the handlers'
 * transactions in PostgreSQL, the application's database; a backend
 * decides when a task is due and how runtimes hear of it. */
typedef struct mt_backend_aws_conf_s mt_backend_aws_conf_t;

typedef struct mt_backend_conf_s {
  const char *kind;         /* "postgres", "aws" */
  const char *database_url; /* the task store */
  const char *owner;        /* this runtime's lease name */
  double lease_timeout;     /* seconds a claim holds without a heartbeat */
  double poll_interval;     /* seconds between looks when nothing is heard */
  int workers;              /* how many tasks may run at once */
  const struct mt_registry_s *registry; /* the tasks this runtime can run */
  const mt_backend_aws_conf_t *aws;     /* kind "aws" only */
} mt_backend_conf_t;

/* The AWS backend's settings, config.lua's `aws = {...}` (strings NULL
 * when not given; aws/aws_backend.h says how each is used). */
struct mt_backend_aws_conf_s {
  const char *region, *queue_url, *schedule_group, *role_arn, *endpoint;
  double direct_within; /* due sooner than this: straight to SQS */
  int keep_poison;      /* leave poison messages to the dead-letter queue */
};

/* The handler's transaction. Its layout is the task store's
 * (postgres/task_tx.h): only the session and the Lua `tx` binding look
 * inside; every backend keeps task rows in PostgreSQL. */
typedef struct mt_tx_s mt_tx_t;

/* The transaction a session opens for one task's handler. */
typedef struct mt_tx_opts_s {
  int64_t task_id;
  const struct mt_registry_s *registry; /* for tx:schedule */
  double deadline;                      /* monotonic (mt_now()) */
  atomic_int *abort;                    /* the runtime's shutdown flag */
  int joined;          /* the caller already opened a transaction: join it */
  const char *version; /* of the definition that runs (registry.h), for
                          the record; NULL: not known */
} mt_tx_opts_t;

/* How far the handler's transaction got, after the handler returned. */
typedef struct mt_tx_state_s {
  int begun;      /* it ran a statement: there is something to commit */
  int sql_failed; /* a statement failed (first_error says which) ... */
  int aborted;    /* ... and the transaction is still aborted by it (a
                     savepoint may have recovered it) */
  mt_err_t first_error;
} mt_tx_state_t;

/* A failed attempt, for the record kept outside the handler's transaction. */
typedef struct mt_failure_s {
  int64_t id;
  const char *message;
  int max_attempts;    /* failed for good once attempts reach this */
  double retry_delay;  /* seconds until the retry, if there is one */
  int permanent;       /* no retry whatever the attempts */
  const char *version; /* of the definition that ran (registry.h), or NULL */
} mt_failure_t;

/* A task whose handler ran no transaction, for claim to mark completed:
 * its id and the version of the definition that ran it (registry.h; ""
 * when not known). */
typedef struct mt_done_s {
  int64_t id;
  char version[MT_TASK_VERSION_HEX + 1];
} mt_done_t;

/* A worker's own session with the task store: its connection, the
 * handler's transaction, and the records of outcomes. One per worker (see
 * the threading contract above); its calls may block.
 *
 * fail and release return 0, MT_EIO when the connection is the trouble
 * (the caller reconnects and tries again: the record must land), or
 * another code when the store refused the record (trying again would not
 * help). connect fails with MT_EIO. commit and snooze are never tried
 * again: one cut off by a lost connection has an unknown outcome, and the
 * task's lease settles it. */
typedef struct mt_session_ops_s {
  /* Connected, with nothing left open, as far as the session knows
   * without I/O; cheap enough to ask under a lock. */
  int (*idle)(mt_session_t *s);
  /* idle, and the connection was not closed by the server while the
   * worker waited (a look at the socket that does not block). */
  int (*alive)(mt_session_t *s);
  /* Reconnects unless alive. */
  int (*connect)(mt_session_t *s, mt_err_t *err);
  /* Opens the handler's transaction for one task (lazily: a handler that
   * touches no data costs nothing). The session owns it. */
  mt_tx_t *(*begin)(mt_session_t *s, const mt_tx_opts_t *opts);
  void (*tx_state)(mt_session_t *s, mt_tx_state_t *out);
  /* Marks the task completed and commits, atomically with the handler's
   * effects. */
  int (*commit)(mt_session_t *s, mt_err_t *err);
  /* The handler returned ctx.snooze(seconds): puts the task back to
   * `scheduled` for that long, its attempt not counted, and commits,
   * atomically with the handler's effects (beginning the transaction when
   * the handler ran no SQL: the task's row changes either way). */
  int (*snooze)(mt_session_t *s, double seconds, mt_err_t *err);
  /* Undoes the handler's transaction and whatever it did to the session. */
  void (*rollback)(mt_session_t *s);
  /* Records a failed attempt: retried after f->retry_delay, or failed. */
  int (*fail)(mt_session_t *s, const mt_failure_t *f, mt_err_t *err);
  /* Gives a claimed task back unstarted: its attempt does not count. */
  int (*release)(mt_session_t *s, int64_t id, mt_err_t *err);
  void (*free)(mt_session_t *s);
} mt_session_ops_t;

struct mt_session_s {
  const mt_session_ops_t *ops;
};

typedef struct mt_backend_ops_s {
  const char *name;
  /* A descriptor that becomes readable when tasks may have become due (the
   * LISTEN connection's socket), or -1. *generation changes whenever the
   * descriptor is a new one, even if its number was reused. */
  int (*wake_fd)(mt_backend_t *b, unsigned *generation);
  /* Consumes pending wake-ups. *due_now is set when a task is due now;
   * *next_due (epoch seconds) lowered to the earliest future task heard of. */
  int (*read_wakeups)(mt_backend_t *b, int *due_now, double *next_due,
                      mt_err_t *err);
  /* Discover and acknowledge in one round trip: marks the tasks in done
   * completed (their handlers ran no transaction), then claims up to max due
   * tasks for this runtime (max may be 0), within the queues' limits.
   * *retry_at (epoch seconds) is lowered to when a queue held back by its
   * rate may start a task again: nothing else announces that moment. */
  int (*claim)(mt_backend_t *b, const mt_done_t *done, size_t ndone, int max,
               mt_task_t **tasks, int *count, double *retry_at, mt_err_t *err);
  /* Gives claimed tasks back unstarted. */
  int (*release)(mt_backend_t *b, mt_task_t *tasks, mt_err_t *err);
  /* Extends the leases of the tasks this runtime still holds (ids), and
   * rescues tasks whose lease lapsed, including ones this runtime claimed
   * but lost track of (a worker whose connection broke mid-task). */
  int (*heartbeat)(mt_backend_t *b, const int64_t *ids, size_t n,
                   mt_err_t *err);
  /* Materialises the due fires of recurring schedules as task rows, each
   * schedule's fires in one transaction (see moontask.schedules). grace is
   * how late a fire may be and still count as on time for catch_up 'skip'.
   * *next_fire (epoch seconds) is lowered to the earliest future fire known.
   * May be NULL for a backend without recurring schedules. */
  int (*fire_schedules)(mt_backend_t *b, double grace, double *next_fire,
                        mt_err_t *err);
  /* A new session for one worker (name: how it shows in the store's
   * activity, e.g. "moontask worker 2"), connected. Called before the
   * workers start, on the thread that starts them. */
  int (*session)(mt_backend_t *b, const char *name, mt_session_t **out,
                 mt_err_t *err);
  /* The tasks this runtime can run changed (a hot reload): from now on it
   * claims only tasks named in reg, with reg's max_attempts. */
  int (*retarget)(mt_backend_t *b, const struct mt_registry_s *reg,
                  mt_err_t *err);
  /* Whether any task this runtime can run is due or running anywhere
   * (for --drain): *any is 1 if so, else 0. Whether, not how many: a
   * backend need not walk them all. */
  int (*outstanding)(mt_backend_t *b, int *any, mt_err_t *err);
  void (*free)(mt_backend_t *b);
} mt_backend_ops_t;

struct mt_backend_s {
  const mt_backend_ops_t *ops;
};

#endif
