#include "executor/task_tx.h"

#include <inttypes.h>
#include <stdio.h>

#include "postgres/pg.h"

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
  if (rc != 0)
    return rc;
  mt_pg_stmt_t stmts[2] = {{"BEGIN", 0, NULL}, {sql, nparams, params}};
  PGresult *results[2];
  int skip = tx->begun ? 1 : 0;
  rc = mt_pg_pipeline(tx->conn, stmts + skip, 2 - skip, results + skip,
                      tx->deadline, tx->abort, err);
  if (!skip) {
    tx->begun = 1;
    PQclear(results[0]);
  }
  if (rc == MT_ETIMEDOUT)
    mt_err_set(err, MT_ETIMEDOUT, "task timed out during a SQL statement");
  if (rc != 0) {
    PQclear(results[1]);
    if (!tx->sql_failed && err != NULL) {
      tx->sql_failed = 1;
      tx->first_error = *err;
    }
    return rc;
  }
  if (PQtransactionStatus(tx->conn) != PQTRANS_INTRANS) {
    /* COMMIT or ROLLBACK in a handler would separate its effects from its
     * `completed` mark; what ran so far cannot be taken back, but the task
     * fails loudly instead of carrying on outside a transaction. */
    PQclear(results[1]);
    return mt_err_set(err, MT_EINVAL,
                      "a handler must not end its transaction (COMMIT, "
                      "ROLLBACK): the task's transaction ends with it");
  }
  *out = results[1];
  return 0;
}

int mt_tx_commit(mt_tx_t *tx, mt_err_t *err) {
  char id[32];
  snprintf(id, sizeof id, "%" PRId64, tx->task_id);
  const char *params[] = {id, tx->owner};
  mt_pg_stmt_t stmts[2] = {
      {"SELECT moontask.complete($1, $2)", 2, params},
      {"COMMIT", 0, NULL},
  };
  PGresult *results[2];
  /* Committing is not interrupted: a handler that finished has earned it. */
  int rc = mt_pg_pipeline(tx->conn, stmts, 2, results, tx->deadline + 30,
                          NULL, err);
  PQclear(results[0]);
  PQclear(results[1]);
  tx->begun = 0;
  if (rc != 0 && PQtransactionStatus(tx->conn) != PQTRANS_IDLE) {
    PGresult *res = PQexec(tx->conn, "ROLLBACK");
    PQclear(res);
  }
  return rc;
}

void mt_tx_rollback(mt_tx_t *tx) {
  if (PQtransactionStatus(tx->conn) != PQTRANS_IDLE) {
    PGresult *res = PQexec(tx->conn, "ROLLBACK");
    PQclear(res);
  }
  tx->begun = 0;
}
