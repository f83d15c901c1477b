#include "postgres/pg_session.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/utf8.h"
#include "postgres/pg.h"
#include "postgres/pg_backend.h"
#include "postgres/task_tx.h"

typedef struct pg_session_s {
  mt_session_t base;
  PGconn *conn;
  int owns_conn;
  char *url; /* NULL for a wrapped connection: it is not ours to renew */
  char *name;
  char *owner;
  mt_tx_t tx;
} pg_session_t;

/* Records a failed attempt: back to `scheduled` with run_at pushed back,
 * or `failed` once attempts are used up (or at once when `permanent`),
 * with the version that ran it ($7, NULL when not known). The NOTIFY wakes
 * a runtime in time for the retry. */
// clang-format off
static const char fail_sql[] =
    "WITH t AS (\n"
    "  UPDATE moontask.tasks SET\n"
    "    state = CASE WHEN $6::bool OR attempts >= $3::int THEN 'failed'\n"
    "                 ELSE 'scheduled' END,\n"
    "    max_attempts = $3::int,\n"
    "    run_at = CASE WHEN $6::bool OR attempts >= $3::int THEN run_at\n"
    "                  ELSE now() + $4::float8 * interval '1 second' END,\n"
    "    finished_at = CASE WHEN $6::bool OR attempts >= $3::int THEN now() END,\n"
    "    last_error = $2, locked_by = NULL, locked_until = NULL,\n"
    "    versions = array_append(versions, $7::text)\n"
    "  WHERE id = $1 AND " MT_PG_HELD_BY("$5") "\n"
    "  RETURNING state, run_at)\n"
    "SELECT pg_notify('moontask_tasks', extract(epoch FROM run_at)::text)\n"
    "  FROM t WHERE state = 'scheduled'";
// clang-format on

/* Whether the connection is open, idle and out of pipeline mode, as far as
 * libpq knows without looking at the socket. */
static int pg_idle(mt_session_t *base) {
  PGconn *conn = ((pg_session_t *)base)->conn;
  return conn != NULL && PQstatus(conn) == CONNECTION_OK &&
         PQtransactionStatus(conn) == PQTRANS_IDLE &&
         PQpipelineStatus(conn) == PQ_PIPELINE_OFF;
}

/* pg_idle, and not closed by the server while the worker waited: an idle
 * session killed by an administrator or a restart shows up as a readable
 * socket. A task that failed on a dead connection would cost an attempt. */
static int pg_alive(mt_session_t *base) {
  PGconn *conn = ((pg_session_t *)base)->conn;
  if (!pg_idle(base))
    return 0;
  /* A killed session first delivers its FATAL message, then the end of
   * the stream: read until nothing more is waiting, so that the end is
   * seen too. */
  struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
  for (int i = 0; i < 8 && poll(&pfd, 1, 0) > 0; i++)
    if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
      return 0;
  PGnotify *n;
  while ((n = PQnotifies(conn)) != NULL)
    PQfreemem(n);
  return 1;
}

/* Makes sure the session has a live connection in a clean state (no open
 * transaction, no pipeline left over from a failure), reconnecting if not:
 * whatever a failed task left behind must not leak into the next one. */
static int pg_connect(mt_session_t *base, mt_err_t *err) {
  pg_session_t *s = (pg_session_t *)base;
  if (pg_alive(base))
    return 0;
  /* MT_EIO: the connection is the trouble, and trying again later may
   * find it back (see mt_session_ops_t). */
  if (s->url == NULL) /* wrapped: not ours to replace */
    return mt_err_set(err, MT_EIO, "the connection was lost");
  PQfinish(s->conn);
  mt_stmt_cache_clear(&s->tx.stmts);
  s->conn = mt_pg_connect(s->url, s->name, err);
  s->tx.conn = s->conn;
  return s->conn != NULL ? 0 : MT_EIO;
}

static mt_tx_t *pg_begin(mt_session_t *base, const mt_tx_opts_t *opts) {
  pg_session_t *s = (pg_session_t *)base;
  /* Field by field: a compound literal would also clear the 4 KB of
   * first_error, for every task. */
  mt_tx_t *tx = &s->tx;
  tx->conn = s->conn;
  tx->owner = s->owner;
  tx->registry = opts->registry;
  tx->task_id = opts->task_id;
  tx->version = opts->version;
  tx->deadline = opts->deadline;
  tx->abort = opts->abort;
  tx->begun = opts->joined;
  tx->sql_failed = 0;
  tx->first_error.msg[0] = '\0';
  return &s->tx;
}

static void pg_tx_state(mt_session_t *base, mt_tx_state_t *out) {
  pg_session_t *s = (pg_session_t *)base;
  out->begun = s->tx.begun;
  out->sql_failed = s->tx.sql_failed;
  /* libpq knows without a round trip whether the last statement left the
   * transaction aborted. */
  out->aborted = s->tx.sql_failed && s->conn != NULL &&
                 PQtransactionStatus(s->conn) == PQTRANS_INERROR;
  /* 4 KB: copied only when there is an error to tell. */
  if (s->tx.sql_failed)
    out->first_error = s->tx.first_error;
  else
    out->first_error.msg[0] = '\0';
}

static int pg_commit(mt_session_t *base, mt_err_t *err) {
  return mt_tx_commit(&((pg_session_t *)base)->tx, err);
}

static int pg_snooze(mt_session_t *base, double seconds, mt_err_t *err) {
  return mt_tx_snooze(&((pg_session_t *)base)->tx, seconds, err);
}

static void pg_rollback(mt_session_t *base) {
  mt_tx_rollback(&((pg_session_t *)base)->tx);
}

/* Runs an outcome record: MT_EIO when the connection failed under it, so
 * that the caller reconnects and tries again. */
static int record(pg_session_t *s, const char *sql, int nparams,
                  const char *const *params, mt_err_t *err) {
  if (s->conn == NULL)
    return mt_err_set(err, MT_EIO, "no connection");
  PGresult *res = mt_pg_exec(s->conn, sql, nparams, params, err);
  if (res != NULL) {
    PQclear(res);
    return 0;
  }
  return PQstatus(s->conn) == CONNECTION_OK ? MT_EDB : MT_EIO;
}

static int pg_fail(mt_session_t *base, const mt_failure_t *f, mt_err_t *err) {
  pg_session_t *s = (pg_session_t *)base;
  /* The message is the handler's: PostgreSQL would refuse a byte that is
   * not UTF-8, and the task would lose its cause to "lease expired". */
  mt_buf_t message = MT_BUF_INIT;
  if (mt_utf8_sanitize(&message, f->message) != 0) {
    mt_buf_free(&message);
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  char id[32], max[16], delay[32];
  snprintf(id, sizeof id, "%" PRId64, f->id);
  snprintf(max, sizeof max, "%d", f->max_attempts);
  snprintf(delay, sizeof delay, "%.3f", f->retry_delay);
  const char *params[] = {id,        message.data,
                          max,       delay,
                          s->owner,  f->permanent ? "true" : "false",
                          f->version};
  int rc = record(s, fail_sql, 7, params, err);
  mt_buf_free(&message);
  return rc;
}

static int pg_release(mt_session_t *base, int64_t id, mt_err_t *err) {
  pg_session_t *s = (pg_session_t *)base;
  char ids[40];
  snprintf(ids, sizeof ids, "{%" PRId64 "}", id);
  const char *params[] = {ids, s->owner};
  return record(s, mt_pg_release_sql, 2, params, err);
}

static void pg_session_free(mt_session_t *base) {
  pg_session_t *s = (pg_session_t *)base;
  if (s == NULL)
    return;
  if (s->owns_conn)
    PQfinish(s->conn);
  mt_stmt_cache_clear(&s->tx.stmts);
  free(s->url);
  free(s->name);
  free(s->owner);
  free(s);
}

static const mt_session_ops_t pg_session_ops = {
    .idle = pg_idle,
    .alive = pg_alive,
    .connect = pg_connect,
    .begin = pg_begin,
    .tx_state = pg_tx_state,
    .commit = pg_commit,
    .snooze = pg_snooze,
    .rollback = pg_rollback,
    .fail = pg_fail,
    .release = pg_release,
    .free = pg_session_free,
};

static pg_session_t *session_alloc(const char *name, const char *owner) {
  pg_session_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->base.ops = &pg_session_ops;
  s->name = strdup(name);
  s->owner = strdup(owner);
  if (s->name == NULL || s->owner == NULL) {
    pg_session_free(&s->base);
    return NULL;
  }
  return s;
}

int mt_pg_session_new(mt_session_t **out, const char *url, const char *name,
                      const char *owner, mt_err_t *err) {
  pg_session_t *s = session_alloc(name, owner);
  if (s == NULL || (s->url = strdup(url)) == NULL) {
    pg_session_free(s ? &s->base : NULL);
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  s->owns_conn = 1;
  int rc = pg_connect(&s->base, err);
  if (rc != 0) {
    pg_session_free(&s->base);
    return rc;
  }
  *out = &s->base;
  return 0;
}

int mt_pg_session_wrap(mt_session_t **out, PGconn *conn, const char *owner,
                       mt_err_t *err) {
  pg_session_t *s = session_alloc("", owner);
  if (s == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  s->conn = conn;
  *out = &s->base;
  return 0;
}
