/*
 * The PostgreSQL backend: tasks are rows of moontask.tasks, claimed with
 * FOR UPDATE SKIP LOCKED over the index of available tasks, and runtimes are
 * woken by NOTIFY on channel moontask_tasks. A claimed task carries a lease
 * (locked_by, locked_until) that the heartbeat extends; a lapsed lease
 * returns the task to `scheduled`.
 */
#ifndef MT_PG_BACKEND_H
#define MT_PG_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "service/registry.h"

/* The condition that the runtime named by the SQL expression `owner` holds
 * a task: the task's lease is that runtime's. locked_by is set exactly
 * while a task is `running` (the CHECK tasks_lease_held, migration 5), so
 * the condition tests no state, and must not: with `state = 'running'` the
 * planner picks the small partial index tasks_running and scans every
 * running task, of every runtime, and the dead entries of finished ones,
 * for the one id (EXPLAIN shows it), where the primary key finds it at
 * once. */
#define MT_PG_HELD_BY(owner) "locked_by = " owner

/* Gives claimed tasks back unstarted: $1 their ids as a bigint[] literal,
 * $2 the owner holding them. The attempt they were claimed for never ran to
 * an end, so it does not count. Shared with the worker's session
 * (pg_session.c), which releases a task aborted at shutdown on its own
 * connection. */
extern const char mt_pg_release_sql[];

/* Opens the backend for conf (backends/backends.h calls it): it claims
 * only tasks named in conf->registry, the ones this runtime can run. */
int mt_pg_backend_open(const mt_backend_conf_t *conf, mt_backend_t **out,
                       mt_err_t *err);

/* ---- for a backend that delivers through another system (aws/) ---- */

/* The task store of such a backend: the same claims, leases, outcomes,
 * sessions and counts as above, but no LISTEN (wake_fd is -1) and no
 * recurring fires (the other system fires them); it turns the database's
 * outbox on (postgres/outbox.h). Its claim op claims nothing by itself:
 * tasks are claimed as they are delivered, with mt_pg_claim_delivered. */
int mt_pg_store_open(const mt_backend_conf_t *conf, mt_backend_t **out,
                     mt_err_t *err);

/* What a delivery (a message naming a task) came to. */
typedef enum mt_delivery_verdict_e {
  MT_DELIVERY_PENDING,  /* not looked at: the store failed first */
  MT_DELIVERY_CLAIMED,  /* claimed for this runtime: run it */
  MT_DELIVERY_FINISHED, /* finished, a duplicate, or handed over: drop it */
  MT_DELIVERY_MISSING,  /* no such task, or a fire the store refused */
  MT_DELIVERY_FOREIGN,  /* a task this runtime has no handler for */
  MT_DELIVERY_NOT_DUE,  /* scheduled for later (wait: seconds until due) */
  MT_DELIVERY_BUSY,     /* running under a live lease */
  MT_DELIVERY_HELD      /* due, but its queue is at a limit (wait: seconds
                           until it is worth trying again) */
} mt_delivery_verdict_t;

typedef struct mt_delivery_s {
  /* In: a one-off task's id, or (task_id 0) a recurring schedule's fire. */
  int64_t task_id;
  const char *schedule; /* the schedule's name */
  const char *fire_at;  /* the fire time, RFC 3339 */
  /* Out. */
  mt_delivery_verdict_t verdict;
  double wait;     /* NOT_DUE, HELD: seconds to wait */
  mt_task_t *task; /* CLAIMED: the caller owns it */
} mt_delivery_t;

/* Acknowledges done as claim does (*acked is set once that committed),
 * then claims what each delivery names (a fire becomes its task row first)
 * and sets every verdict; deliveries looked at before a lost connection
 * keep theirs, the rest stay PENDING. Blocks for one round trip, and one
 * more per fire. */
int mt_pg_claim_delivered(mt_backend_t *store, const mt_done_t *done,
                          size_t ndone, mt_delivery_t *d, size_t n, int *acked,
                          mt_err_t *err);

#endif
