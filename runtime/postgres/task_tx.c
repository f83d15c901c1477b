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
 * tables; session advisory locks are released by the statement that ends
 * the task. It is DISCARD ALL less DISCARD PLANS (plans change no result)
 * and less DEALLOCATE ALL (the runtime's own statements are kept; a
 * handler may not PREPARE or DEALLOCATE, sql_guard.h). Unlike DISCARD ALL
 * it may run inside the transaction, so it travels in the commit's round
 * trip. */
// clang-format off
static const char *const reset_sql[] = {
    "CLOSE ALL",
    "SET SESSION AUTHORIZATION DEFAULT",
    "RESET ALL",
    "UNLISTEN *",
    "DISCARD TEMP",
    "DISCARD SEQUENCES",
};
// clang-format on
#define RESET_STMTS ((int)(sizeof reset_sql / sizeof reset_sql[0]))

/* Then the task's `completed` mark: the UPDATE itself rather than a call
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
static const char complete_sql[] =
    "WITH done AS (\n"
    "  UPDATE moontask.tasks SET state = 'completed', finished_at = now(),\n"
    "         locked_by = NULL, locked_until = NULL, last_error = NULL,\n"
    "         versions = array_append(versions, $3::text)\n"
    "   WHERE id = $1::bigint AND " MT_PG_HELD_BY("$2::text") " RETURNING id)\n"
    "SELECT pg_advisory_unlock_all(),\n"
    "       CASE WHEN NOT EXISTS (SELECT FROM done)\n"
    "            THEN moontask.complete($1, $2, $3) END";
// clang-format on

/* Or, for a handler that returned ctx.snooze(s), the task back to
 * `scheduled` in $3 seconds with its attempt not counted, by the one
 * function that does it (migration 7), which raises 55000 when the task
 * is no longer held, as complete does. A snoozed attempt records no
 * version, as a released one does not: it is not counted. */
static const char snooze_sql[] =
    "SELECT pg_advisory_unlock_all(),\n"
    "       moontask.snooze($1::bigint, $2::text, $3::float8)";

/* BEGIN (when the handler ran no statement), the reset, the task's end,
 * COMMIT. */
#define FINISH_STMTS_MAX (RESET_STMTS + 3)

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

/* Ends the task's transaction with end_sql (complete_sql or snooze_sql,
 * whose parameters are params) and commits, in one round trip. A handler
 * that ran no statement has no transaction yet: it is begun in the same
 * round trip. */
static int finish(mt_tx_t *tx, const char *end_sql, int nparams,
                  const char *const *params, mt_err_t *err) {
  mt_pg_stmt_t stmts[FINISH_STMTS_MAX];
  char names[FINISH_STMTS_MAX][MT_STMT_NAME_MAX];
  int fresh[FINISH_STMTS_MAX] = {0}, prepared[FINISH_STMTS_MAX];
  PGresult *results[FINISH_STMTS_MAX];
  int n = 0;
  if (!tx->begun) {
    stmts[n++] = (mt_pg_stmt_t){.sql = "BEGIN"};
    tx->begun = 1; /* so that a failure's rollback resets the session */
  }
  for (int i = 0; i <= RESET_STMTS + 1; i++, n++) {
    const char *sql = i < RESET_STMTS    ? reset_sql[i]
                      : i == RESET_STMTS ? end_sql
                                         : "COMMIT";
    int np = i == RESET_STMTS ? nparams : 0;
    int cached =
        mt_stmt_cache_get(&tx->stmts, sql, np, names[n], &fresh[n]) == 0;
    stmts[n] = (mt_pg_stmt_t){
        .sql = sql,
        .nparams = np,
        .params = np > 0 ? params : NULL,
        .name = cached ? names[n] : NULL,
        .prepared = fresh[n] ? &prepared[n] : NULL,
    };
  }
  /* Committing is not interrupted: a handler that finished has earned it. */
  int rc =
      mt_pg_pipeline(tx->conn, stmts, n, results, tx->deadline + 30, NULL, err);
  for (int i = 0; i < n; i++) {
    if (fresh[i] && !prepared[i])
      mt_stmt_cache_forget(&tx->stmts, names[i]);
    if (rc != 0 && stmts[i].name != NULL && !fresh[i] &&
        statement_missing(results[i]))
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

int mt_tx_commit(mt_tx_t *tx, mt_err_t *err) {
  char id[24];
  snprintf(id, sizeof id, "%" PRId64, tx->task_id);
  const char *params[] = {id, tx->owner, tx->version};
  return finish(tx, complete_sql, 3, params, err);
}

int mt_tx_snooze(mt_tx_t *tx, double seconds, mt_err_t *err) {
  char id[24], delay[32];
  snprintf(id, sizeof id, "%" PRId64, tx->task_id);
  snprintf(delay, sizeof delay, "%.17g", seconds);
  const char *params[] = {id, tx->owner, delay};
  return finish(tx, snooze_sql, 3, params, err);
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
