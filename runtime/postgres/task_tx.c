#include "postgres/task_tx.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "postgres/pg.h"
#include "postgres/sql_guard.h"

/* Whatever a handler did to its session, undone inside its transaction so
 * that it commits with it: settings (RESET ALL), role and session user,
 * cursors held past the transaction, LISTENs and temporary tables; session
 * advisory locks are released by the SELECT that marks the task completed
 * (see mt_tx_commit). It is DISCARD ALL less DISCARD PLANS (plans change no
 * result, and keeping them keeps moontask.complete() planned) and less
 * DEALLOCATE ALL (the runtime's own statements, stmt_cache.h, are kept; a
 * handler may not PREPARE or DEALLOCATE, sql_guard.h). Unlike DISCARD ALL
 * it may run inside the transaction, so it travels in the commit's round
 * trip: one message of utility statements, measured at some tens of
 * microseconds. */
static const char reset_session_sql[] =
    "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; "
    "UNLISTEN *; DISCARD TEMP; DISCARD SEQUENCES; ";

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
  int add, prepared = 0;
  int cached = mt_stmt_cache_find(&tx->stmts, sql, nparams, name, &add);
  mt_pg_stmt_t stmts[2] = {
      {.sql = "BEGIN"},
      {.sql = sql,
       .nparams = nparams,
       .params = params,
       .name = name[0] != '\0' ? name : NULL,
       .prepared = add ? &prepared : NULL},
  };
  PGresult *results[2];
  int skip = tx->begun ? 1 : 0;
  rc = mt_pg_pipeline(tx->conn, stmts + skip, 2 - skip, results + skip,
                      tx->deadline, tx->abort, err);
  if (!skip) {
    tx->begun = 1;
    PQclear(results[0]);
  }
  if (prepared)
    mt_stmt_cache_add(&tx->stmts, sql, nparams);
  if (rc != 0 && cached && statement_missing(results[1])) {
    /* The runtime's statements are gone: only a handler's dynamic SQL
     * (EXECUTE 'DEALLOCATE ALL' in a function, say) can do that. Should
     * it be the transaction's first statement, nothing has happened yet,
     * and the task carries on as if the cache had been empty; otherwise
     * the statement fails, and the next one prepares afresh. */
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
  mt_buf_t sql = MT_BUF_INIT;
  char *owner = PQescapeLiteral(tx->conn, tx->owner, strlen(tx->owner));
  /* A version is hex digits (registry.h): quoted as it is. */
  int rc = owner == NULL || mt_buf_printf(&sql,
                                          "%sSELECT pg_advisory_unlock_all(), "
                                          "moontask.complete(%" PRId64
                                          ", %s, %s%s%s); COMMIT",
                                          reset_session_sql, tx->task_id, owner,
                                          tx->version ? "'" : "",
                                          tx->version ? tx->version : "NULL",
                                          tx->version ? "'" : "") != 0
               ? mt_err_set(err, MT_ENOMEM, "out of memory")
               : 0;
  PQfreemem(owner);
  /* Committing is not interrupted: a handler that finished has earned it. */
  if (rc == 0)
    rc = mt_pg_exec_script(tx->conn, sql.data, tx->deadline + 30, err);
  mt_buf_free(&sql);
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
