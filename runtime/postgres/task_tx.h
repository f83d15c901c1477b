/*
 * The executor's side of a task's own transaction (the seed's "executor
 * context"). The transaction begins lazily: a handler that never touches the
 * database costs no round trip, and the first statement travels in one
 * pipeline with its BEGIN. Completion is marked in the same pipeline as
 * COMMIT, by an UPDATE of the task's row held to the lease as
 * moontask.complete() is, so a task's effects and its `completed` state
 * commit together or not at all; a snooze travels the same way.
 */
#ifndef MT_TASK_TX_H
#define MT_TASK_TX_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/error.h"
#include "postgres/stmt_cache.h"
#include "service/registry.h"

typedef struct mt_tx_s {
  PGconn *conn;
  const char *owner;             /* this runtime's lease name */
  const mt_registry_t *registry; /* for tx:schedule */
  int64_t task_id;
  const char *version; /* of the definition that runs (registry.h), which
                          moontask.complete records; NULL: not known */
  double deadline;     /* monotonic; the task's timeout */
  atomic_int *abort;   /* set when shutdown's grace ran out */
  int begun;
  /* The first statement error: a handler that catches it and carries on
   * fails later with "transaction is aborted", and this says why. */
  int sql_failed;
  mt_err_t first_error;
  /* What this connection has prepared; outlives the task, and is cleared
   * by whoever replaces the connection. */
  mt_stmt_cache_t stmts;
} mt_tx_t;

/* Runs one statement in the task's transaction, beginning it first if need
 * be, as a statement prepared on the connection (stmt_cache.h). *out
 * receives the result on success. A statement that would end, chain or
 * prepare the transaction, or prepare or drop statements, is refused
 * (postgres/sql_guard.h). */
int mt_tx_query(mt_tx_t *tx, const char *sql, int nparams,
                const char *const *params, PGresult **out, mt_err_t *err);

/* Marks the task completed and commits, in one round trip that also resets
 * whatever the handler did to its session (settings, role, locks, ...), so
 * that the next task starts clean. */
int mt_tx_commit(mt_tx_t *tx, mt_err_t *err);

/* For a handler that returned ctx.snooze(seconds): puts the task back to
 * `scheduled` in that many seconds, its attempt not counted, and commits
 * the handler's effects with it, in one round trip that resets the
 * session as mt_tx_commit does (and begins the transaction first when the
 * handler ran no statement). */
int mt_tx_snooze(mt_tx_t *tx, double seconds, mt_err_t *err);

/* Rolls back if a transaction is open, and when the handler ran any SQL,
 * clears what it may have left in the session (DISCARD ALL, which also
 * drops the prepared statements). */
void mt_tx_rollback(mt_tx_t *tx);

#endif
