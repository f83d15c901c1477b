/*
 * The runtime owns a task's transaction: it begins it, and it alone ends it,
 * together with the task's `completed` mark. This unit reads SQL text the
 * way PostgreSQL's lexer splits it (quotes, dollar quotes, comments,
 * semicolons) and refuses any statement that would end, chain or prepare
 * that transaction: COMMIT, END, ROLLBACK (other than ROLLBACK TO a
 * savepoint), ABORT, PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED, and
 * BEGIN/START TRANSACTION. Savepoints stay allowed: they live inside the
 * transaction. Other ways out (a procedure that commits, a DO block that
 * does) are refused by PostgreSQL itself inside a transaction block.
 *
 * It also refuses PREPARE and DEALLOCATE: the runtime prepares statements on
 * the task's connection and keeps them across tasks (stmt_cache.h), and a
 * statement a handler prepared would outlive its task. (Dynamic SQL in a
 * function gets past any reading of the text; task_tx.c recovers should it
 * drop the runtime's statements.)
 */
#ifndef MT_SQL_GUARD_H
#define MT_SQL_GUARD_H

#include "common/error.h"

/* Returns 0 when no statement in sql controls the transaction or prepared
 * statements, else MT_EINVAL with err naming the statement. */
int mt_sql_guard_check(const char *sql, mt_err_t *err);

#endif
