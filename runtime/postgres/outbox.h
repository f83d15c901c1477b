/*
 * The transactional outbox (migration 4's moontask.outbox): how a backend
 * that delivers tasks through another system (the AWS backend) hears of
 * every change that system must follow, in the transaction that made it.
 *
 * Triggers on moontask.tasks and moontask.schedules write one row per
 * change, whoever made it: moontask.schedule() in an application's
 * transaction, a retry record, a lease rescue, the CLI, a delete. A rolled-back
 * change leaves no row; a committed one always leaves one. The triggers are
 * off unless the database is in the outbox mode (mt_outbox_set_mode), so
 * the PostgreSQL backend pays nothing for them.
 *
 * A row means "bring the other system in line with this task (or
 * recurring schedule) as it is now". The relay reads the current state
 * with the row (mt_outbox_fetch), so rows are idempotent: publishing twice
 * does no harm, and of several rows for one task the last one tells.
 *
 * One relay per database publishes (mt_outbox_lead: a session advisory
 * lock, lost with its connection, so another runtime takes over); any
 * runtime may add rows (mt_outbox_note_tasks). An mt_outbox_t is one
 * connection and belongs to one thread; its calls block for a round trip.
 */
#ifndef MT_OUTBOX_H
#define MT_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct mt_outbox_s mt_outbox_t;
struct pg_conn; /* libpq's PGconn */

/* Turns the outbox triggers on (on = 1, the AWS backend) or off (the
 * PostgreSQL backend), if they are not so already, in one transaction on
 * conn. Turning them on also queues every scheduled task and every
 * recurring schedule, so that what was scheduled before the switch is
 * published too; turning them off drops the rows left unpublished (the
 * PostgreSQL backend finds due tasks in the table itself). *changed (may
 * be NULL) is set when the mode changed. Needs the tables' owner, the role
 * that ran `moontask migrate`. (struct pg_conn is libpq's PGconn: the
 * AWS backend includes this header, and only postgres/ includes libpq.) */
int mt_outbox_set_mode(struct pg_conn *conn, int on, int *changed,
                       mt_err_t *err);

/* A connection of its own; it listens on channel moontask_outbox once it
 * leads (mt_outbox_lead). While it is open, a runtime of the postgres
 * backend refuses to turn the outbox off (mt_outbox_set_mode). */
int mt_outbox_open(mt_outbox_t **out, const char *url, const char *app_name,
                   mt_err_t *err);
void mt_outbox_free(mt_outbox_t *ob);

/* The connection's socket (readable on a NOTIFY) and its generation, which
 * changes with every new connection; -1 while there is none. */
int mt_outbox_fd(mt_outbox_t *ob, unsigned *generation);

/* Reads what the socket has; returns 1 if a change was announced, 0 if
 * not, and reconnects (returning 1: something may have been missed) if
 * the connection was lost. */
int mt_outbox_heard(mt_outbox_t *ob);

/* Takes the relay's part if no other connection holds it (reconnecting
 * first if needed): *leading is 1 while this connection holds it. */
int mt_outbox_lead(mt_outbox_t *ob, int *leading, mt_err_t *err);

/* One row to publish, with the current state of what it names. */
typedef struct mt_outbox_entry_s {
  int64_t id;       /* the outbox row */
  int attempts;     /* publishing attempts that failed so far */
  int64_t task_id;  /* a task's row: its id, else 0 */
  const char *name; /* the task's name, or the schedule's */
  int cleanup;      /* a runtime's row that only withdraws (note_tasks) */
  /* A task: its state, or NULL when the row is gone. */
  const char *state;
  double run_at; /* epoch seconds */
  /* A recurring schedule: its definition, or expression NULL when it was
   * removed. */
  const char *task, *payload, *expression, *tz;
} mt_outbox_entry_t;

typedef struct mt_outbox_batch_s {
  mt_outbox_entry_t *entries; /* in the order the rows were written */
  size_t n;
  double now;  /* the database's clock, epoch seconds */
  double wait; /* seconds until a deferred row is due, or -1 */
  void *res;   /* owns the strings */
} mt_outbox_batch_t;

/* Reads up to max rows that are due (deferred rows wait for their
 * not_before). Free the batch with mt_outbox_batch_free. */
int mt_outbox_fetch(mt_outbox_t *ob, int max, mt_outbox_batch_t *out,
                    mt_err_t *err);
void mt_outbox_batch_free(mt_outbox_batch_t *b);

/* Deletes published rows. */
int mt_outbox_done(mt_outbox_t *ob, const int64_t *ids, size_t n,
                   mt_err_t *err);

/* Defers rows that could not be published by delay seconds, counting the
 * attempt and keeping error (one line) for `moontask` to show. */
int mt_outbox_defer(mt_outbox_t *ob, const int64_t *ids, size_t n, double delay,
                    const char *error, mt_err_t *err);

/* Records why a recurring schedule cannot be published (its expression is
 * one the other system cannot express); it shows as the schedule's error. */
int mt_outbox_schedule_error(mt_outbox_t *ob, const char *name,
                             const char *error, mt_err_t *err);

/* Adds a row for each task, due in delay seconds, for what no trigger
 * sees: with cleanup, a finished task whose schedule must go (the row
 * never publishes); without, a task whose message was dropped and must be
 * published again (one not due yet, or one no runtime here could run). */
int mt_outbox_note_tasks(mt_outbox_t *ob, const int64_t *ids, size_t n,
                         int cleanup, double delay, mt_err_t *err);

/* Adds a row for each task scheduled and overdue by more than `overdue`
 * seconds that has none, up to max, and says how many: the safety net for
 * a message lost outside the runtime's control (purged, expired, moved to
 * the dead-letter queue). */
int mt_outbox_sweep(mt_outbox_t *ob, double overdue, int max, long *swept,
                    mt_err_t *err);

#endif
