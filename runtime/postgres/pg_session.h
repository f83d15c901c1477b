/*
 * A worker's session on PostgreSQL (the mt_session_t of backend.h): one
 * connection of its own, the handler's transaction on it (task_tx.h), and
 * the records of failed and released attempts, written outside that
 * transaction so that they survive its rollback. The session owns its
 * connection, unless it wraps one the caller owns (`moontask try`).
 */
#ifndef MT_PG_SESSION_H
#define MT_PG_SESSION_H

#include <libpq-fe.h>

#include "backend.h"
#include "common/error.h"

/* A session that connects to url as application `name`, recording
 * outcomes as lease holder `owner`. Connects before it returns. */
int mt_pg_session_new(mt_session_t **out, const char *url, const char *name,
                      const char *owner, mt_err_t *err);

/* A session over a connection the caller owns and keeps (it never
 * reconnects, and freeing the session leaves the connection open). */
int mt_pg_session_wrap(mt_session_t **out, PGconn *conn, const char *owner,
                       mt_err_t *err);

#endif
