/*
 * Versioned migrations of schema `moontask`. Each migration runs in its own
 * transaction and records its version; a session-level advisory lock makes
 * two processes migrating at once take turns instead of racing.
 */
#ifndef MT_MIGRATE_H
#define MT_MIGRATE_H

#include <libpq-fe.h>

#include "common/error.h"

/* Applies every migration newer than the database's version; *applied
 * receives how many ran (may be NULL). */
int mt_pg_migrate(PGconn *conn, int *applied, mt_err_t *err);

/* Fails with a message telling to run `moontask migrate` when the schema is
 * missing or older than this binary expects. */
int mt_pg_check_schema(PGconn *conn, mt_err_t *err);

#endif
