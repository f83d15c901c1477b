/*
 * Retention: deleting finished tasks from moontask.tasks once they are
 * older than their state's period, so that the table stops growing with
 * its history. A task's age is counted from finished_at; scheduled and
 * running tasks are never touched.
 *
 * Deletes go in batches of MT_RETENTION_BATCH rows, each its own short
 * transaction that locks only the rows it deletes and skips the ones
 * another transaction holds (FOR UPDATE SKIP LOCKED): nothing waits on a
 * prune, and runtimes that prune at the same moment share the work rather
 * than queue behind each other. Migration 6's index tasks_finished finds
 * the old rows of a state without reading the rest of the table.
 *
 * Nothing else needs the rows once the task finished: no foreign key
 * points at moontask.tasks, a recurring schedule's next fire is kept in
 * moontask.schedules (a fire already inserted is never inserted again
 * after its task is gone), and the AWS backend's outbox rows name their
 * task only to read its current state, where a missing task reads as a
 * finished one (its EventBridge schedule is withdrawn).
 *
 * Two ways in: mt_retention_prune, one prune on a connection the caller
 * owns (`moontask prune`, through postgres/store.h); and mt_retention_start,
 * a thread of its own with a connection of its own that prunes every
 * interval until mt_retention_stop, off the discovery loop and the
 * workers. The thread owns its connection and the copy of the periods.
 */
#ifndef MT_RETENTION_H
#define MT_RETENTION_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/error.h"

/* Rows per transaction: a few milliseconds of work, short enough that no
 * lock is held for long, large enough that a backlog goes in few round
 * trips. */
#define MT_RETENTION_BATCH 500

/* Seconds a task of each final state is kept after it finished; a
 * negative period keeps that state for ever. */
typedef struct mt_retention_periods_s {
  double completed;
  double failed;
  double cancelled;
} mt_retention_periods_t;

/* Rows deleted (or, in a dry run, that would be), by state. */
typedef struct mt_retention_counts_s {
  int64_t completed;
  int64_t failed;
  int64_t cancelled;
} mt_retention_counts_t;

struct pg_conn; /* libpq's PGconn: only postgres/ includes libpq */

/* One prune on conn, state by state, batch after batch until a batch
 * deletes fewer than MT_RETENTION_BATCH rows. With dry_run it only counts.
 * A raised *stop (may be NULL) ends the prune early: between batches
 * with 0, and by cancelling the batch in flight with MT_EDB (SQLSTATE
 * 57014). *n receives what was deleted, also on an error (the batches
 * before it are committed). Returns 0, MT_EDB or MT_ETIMEDOUT (a batch
 * that ran past its deadline, most likely behind a lock on the whole
 * table). */
int mt_retention_prune(struct pg_conn *conn, const mt_retention_periods_t *p,
                       int dry_run, const atomic_int *stop,
                       mt_retention_counts_t *n, mt_err_t *err);

typedef struct mt_retention_s mt_retention_t;

/* Starts the pruning thread: it connects to url, then prunes every
 * interval seconds, each wait drawn between half and one and a half
 * intervals (the first between none and one interval) so that runtimes
 * started together do not prune together. It logs each state it deleted
 * rows of (and counts them in metric moontask_pruned_total), and each
 * error; an error costs that prune only, and the connection is made again
 * for the next. Fails only when the thread or the first connection cannot
 * be made. */
int mt_retention_start(mt_retention_t **out, const char *url,
                       const mt_retention_periods_t *p, double interval,
                       mt_err_t *err);

/* Stops the thread (a batch in flight is cancelled and rolls back) and
 * frees r; accepts NULL. It returns within a round trip, or, while the
 * thread is connecting to a database that does not answer, within
 * libpq's connect_timeout (10 s, postgres/pg.h). */
void mt_retention_stop(mt_retention_t *r);

#endif
