#include "postgres/task_tx.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "postgres/pg.h"
#include "postgres/pg_backend.h"
#include "postgres/sql_guard.h"

/* The commit, one round trip of statements prepared once per connection
 * (stmt_cache.h) that parse and plan nothing per task.
 *
 * First, whatever a handler did to its session, undone inside its
 * transaction so that it commits with it: settings (RESET ALL), role and
 * session user, cursors held past the transaction, LISTENs and temporary
 * tables; session advisory locks are released by the statement that marks
 * the task completed. It is DISCARD ALL less DISCARD PLANS (plans change no
 * result) and less DEALLOCATE ALL (the runtime's own statements are kept;
 * a handler may not PREPARE or DEALLOCATE, sql_guard.h). Unlike DISCARD ALL
 * it may run inside the transaction, so it travels in the commit's round
 * trip.
 *
 * Then the task's `completed` mark: the UPDATE itself rather than a call
 * of moontask.complete(), which runs the same UPDATE through PL/pgSQL
 * under a search_path of its own (a setting saved and restored, and an SPI
 * call, per task). Prepared with the rest, it is planned once per
 * connection, as the function's was. The function stays the one place
 * that raises: it is called only when the UPDATE found the task no longer
 * held, finds the same, and its 55000 error turns the COMMIT after it into
 * nothing. (A data-modifying WITH
 * runs whether or not it is read, and the CASE calls the volatile function
 * only in that branch.) $1 the task's id, $2 this runtime's lease name, $3
 * the version (NULL: not known). */
// clang-format off
static const char *const commit_sql[] = {
    "CLOSE ALL",
    "SET SESSION AUTHORIZATION DEFAULT",
    "RESET ALL",
    "UNLISTEN *",
    "DISCARD TEMP",
    "DISCARD SEQUENCES",
    "WITH done AS (\n"
    "  UPDATE moontask.tasks SET state = 'completed', finished_at = now(),\n"
    "         locked_by = NULL, locked_until = NULL, last_error = NULL,\n"
    "         versions = array_append(versions, $3::text)\n"
    "   WHERE id = $1::bigint AND " MT_PG_HELD_BY("$2::text") " RETURNING id)\n"
    "SELECT pg_advisory_unlock_all(),\n"
    "       CASE WHEN NOT EXISTS (SELECT FROM done)\n"
    "            THEN moontask.complete($1, $2, $3) END",
    "COMMIT",
};
// clang-format on
#define COMMIT_STMTS ((int)(sizeof commit_sql / sizeof commit_sql[0]))
#define COMPLETE_STMT (COMMIT_STMTS - 2)

/* The SQLSTATE of a statement prepared earlier that the server no longer
 * has. */
#define SQLSTATE_NO_SUCH_STATEMENT "26000"

/* Seconds a rollback (and the session reset after it) may take. */
#define ROLLBACK_WAIT 10.0

/* Records a statement's failure as the transaction's first, if it is. */
static int record_failure(mt_tx_t *tx, int rc, mt_err_t *err) {
  if (!tx->sql_failed && err != NULL) {
    tx->sql_failed = 1;
    tx->first_error = *err;
  }
  return rc;
}

static int statement_missing(const PGresult *res) {
  const char *state =
      res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  return state != NULL && strcmp(state, SQLSTATE_NO_SUCH_STATEMENT) == 0;
}

static int check_usable(mt_tx_t *tx, mt_err_t *err) {
  if (atomic_load(tx->abort))
    return mt_err_set(err, MT_ETIMEDOUT,
                      "the runtime is shutting down: task aborted");
  if (mt_now() > tx->deadline)
    return mt_err_set(err, MT_ETIMEDOUT, "task timed out");
  return 0;
}

int mt_tx_query(mt_tx_t *tx, const char *sql, int nparams,
                const char *const *params, PGresult **out, mt_err_t *err) {
  int rc = check_usable(tx, err);
  if (rc != 0 || (rc = mt_sql_guard_check(sql, err)) != 0)
    return rc;
  char name[MT_STMT_NAME_MAX];
  int fresh, prepared = 0;
  int cached = mt_stmt_cache_get(&tx->stmts, sql, nparams, name, &fresh) == 0;
  mt_pg_stmt_t stmts[2] = {
      {.sql = "BEGIN"},
      {.sql = sql,
       .nparams = nparams,
       .params = params,
       .name = cached ? name : NULL,
       .prepared = fresh ? &prepared : NULL},
  };
  PGresult *results[2];
  int skip = tx->begun ? 1 : 0;
  rc = mt_pg_pipeline(tx->conn, stmts + skip, 2 - skip, results + skip,
                      tx->deadline, tx->abort, err);
  if (!skip) {
    tx->begun = 1;
    PQclear(results[0]);
  }
  if (fresh && !prepared)
    mt_stmt_cache_forget(&tx->stmts, name);
  if (rc != 0 && cached && !fresh && statement_missing(results[1])) {
    /* The runtime's statements are gone: the session was replaced under
     * the connection (a reset after a broken pipeline), or a handler's
     * dynamic SQL dropped them (EXECUTE 'DEALLOCATE ALL' in a function).
     * Should it be the transaction's first statement, nothing has
     * happened yet, and the task carries on as if the cache had been
     * empty; otherwise the statement fails, and the next one prepares
     * afresh. */
    PQclear(results[1]);
    mt_stmt_cache_clear(&tx->stmts);
    if (skip || mt_pg_exec_script(tx->conn, "ROLLBACK; DEALLOCATE ALL",
                                  tx->deadline, NULL) != 0)
      return record_failure(tx, rc, err);
    tx->begun = 0;
    return mt_tx_query(tx, sql, nparams, params, out, err);
  }
  if (rc == MT_ETIMEDOUT)
    mt_err_set(err, MT_ETIMEDOUT, "task timed out during a SQL statement");
  if (rc != 0) {
    PQclear(results[1]);
    return record_failure(tx, rc, err);
  }
  if (PQtransactionStatus(tx->conn) != PQTRANS_INTRANS) {
    /* The guard lets no transaction control through; should PostgreSQL
     * grow a new way out, the task still fails loudly rather than carry
     * on outside a transaction. */
    PQclear(results[1]);
    return mt_err_set(err, MT_EINVAL,
                      "the statement ended the task's transaction, which "
                      "only the runtime may do");
  }
  *out = results[1];
  return 0;
}

int mt_tx_commit(mt_tx_t *tx, mt_err_t *err) {
  char id[24];
  snprintf(id, sizeof id, "%" PRId64, tx->task_id);
  const char *params[] = {id, tx->owner, tx->version};
  mt_pg_stmt_t stmts[COMMIT_STMTS];
  char names[COMMIT_STMTS][MT_STMT_NAME_MAX];
  int fresh[COMMIT_STMTS], prepared[COMMIT_STMTS];
  PGresult *results[COMMIT_STMTS];
  for (int i = 0; i < COMMIT_STMTS; i++) {
    int nparams = i == COMPLETE_STMT ? 3 : 0;
    int cached = mt_stmt_cache_get(&tx->stmts, commit_sql[i], nparams, names[i],
                                   &fresh[i]) == 0;
    stmts[i] = (mt_pg_stmt_t){
        .sql = commit_sql[i],
        .nparams = nparams,
        .params = nparams > 0 ? params : NULL,
        .name = cached ? names[i] : NULL,
        .prepared = fresh[i] ? &prepared[i] : NULL,
    };
  }
  /* Committing is not interrupted: a handler that finished has earned it. */
  int rc = mt_pg_pipeline(tx->conn, stmts, COMMIT_STMTS, results,
                          tx->deadline + 30, NULL, err);
  for (int i = 0; i < COMMIT_STMTS; i++) {
    if (fresh[i] && !prepared[i])
      mt_stmt_cache_forget(&tx->stmts, names[i]);
    if (rc != 0 && !fresh[i] && statement_missing(results[i]))
      mt_err_set(err, MT_EDB,
                 "the task's transaction cannot commit: the runtime's "
                 "prepared statements are gone (dropped by a DEALLOCATE in "
                 "the handler's dynamic SQL, or lost with a connection "
                 "reset)");
    PQclear(results[i]);
  }
  if (rc != 0)
    mt_tx_rollback(tx);
  tx->begun = 0;
  return rc;
}

void mt_tx_rollback(mt_tx_t *tx) {
  /* Bounded like everything else on a task's path: a server that stopped
   * answering must not hold the worker. On a timeout the statement is
   * cancelled and the connection left busy, so the worker replaces it
   * before its next use. */
  double deadline = mt_now() + ROLLBACK_WAIT;
  if (PQstatus(tx->conn) == CONNECTION_OK &&
      PQtransactionStatus(tx->conn) != PQTRANS_IDLE)
    mt_pg_exec_script(tx->conn, "ROLLBACK", deadline, NULL);
  /* A rollback undoes settings but not everything: prepared statements,
   * session advisory locks and sequence state outlive it. The next task
   * gets a clean session either way; this path is not the hot one. */
  if (tx->begun && PQstatus(tx->conn) == CONNECTION_OK &&
      PQtransactionStatus(tx->conn) == PQTRANS_IDLE)
    mt_pg_exec_script(tx->conn, "DISCARD ALL", deadline, NULL);
  /* DISCARD ALL drops the prepared statements; a rollback that failed
   * leaves the connection to be replaced. Either way they are gone. */
  if (tx->begun)
    mt_stmt_cache_clear(&tx->stmts);
  tx->begun = 0;
}
