/*
 * Thin helpers over libpq shared by every module that talks to PostgreSQL:
 * connecting, running a statement with its error copied into an mt_err_t,
 * and running a short pipeline of statements in one round trip with a
 * deadline. Callers own the PGconn and every PGresult they get back.
 */
#ifndef MT_PG_H
#define MT_PG_H

#include <libpq-fe.h>
#include <stdatomic.h>

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"

/* One statement of a pipeline; params are text, NULL entries are SQL NULL.
 * With a name, it runs as the statement prepared on the connection under
 * that name, which the pipeline first prepares from sql when `prepared` is
 * set, and then sets *prepared to whether that worked (a failure to
 * prepare is the statement's failure). */
typedef struct mt_pg_stmt_s {
  const char *sql;
  int nparams;
  const char *const *params;
  const char *name;
  int *prepared;
} mt_pg_stmt_t;

PGconn *mt_pg_connect(const char *url, const char *app_name, mt_err_t *err);

/* Runs one statement; returns its result, or NULL with err set (the message
 * carries the SQLSTATE). */
PGresult *mt_pg_exec(PGconn *conn, const char *sql, int nparams,
                     const char *const *params, mt_err_t *err);

/* mt_pg_exec of the statement prepared on conn under name. */
PGresult *mt_pg_exec_prepared(PGconn *conn, const char *name, int nparams,
                              const char *const *params, mt_err_t *err);

/* Sends n statements as one pipeline and waits for all results, cancelling
 * the server-side work if the monotonic deadline (mt_now(), 0 = none)
 * passes or *interrupt (may be NULL) becomes non-zero. results[i] receives each
 * statement's result (or NULL); the caller PQclear()s them. Returns 0, or
 * MT_EDB/MT_ETIMEDOUT with err naming the first statement that failed. */
int mt_pg_pipeline(PGconn *conn, const mt_pg_stmt_t *stmts, int n,
                   PGresult **results, double deadline,
                   const atomic_int *interrupt, mt_err_t *err);

/* Runs SQL text that may hold several statements (the simple query
 * protocol, one round trip), waiting at most until the monotonic deadline
 * (0 = none) before cancelling it. Returns 0, or MT_EDB/MT_ETIMEDOUT with
 * err naming the first statement's error; the later statements of the
 * text did not run then. */
int mt_pg_exec_script(PGconn *conn, const char *sql, double deadline,
                      mt_err_t *err);

/* Appends ids as a bigint[] literal, "{1,2,3}", the form every
 * statement here takes a list of ids in. Returns 0 or MT_ENOMEM. */
int mt_pg_id_array(mt_buf_t *buf, const int64_t *ids, size_t n);

/* Copies a failed result's message into err, prefixed with its SQLSTATE. */
int mt_pg_result_error(const PGresult *res, PGconn *conn, mt_err_t *err);

#endif
