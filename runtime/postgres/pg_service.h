/*
 * The TaskService's writing half on PostgreSQL: a checked task becomes a row
 * through moontask.schedule(), on a connection the caller owns and inside
 * whatever transaction the caller has open there, so a caller that rolls
 * back leaves no task behind. The checks themselves are service/service.h's.
 */
#ifndef MT_PG_SERVICE_H
#define MT_PG_SERVICE_H

#include <libpq-fe.h>
#include <stdint.h>

#include "common/error.h"
#include "service/service.h"

/* The statement that persists a task, with parameters in this order:
 * name, payload, run_at, key. Exposed for callers that must run it through
 * their own connection wrapper (the Lua transaction handle). */
extern const char mt_pg_schedule_sql[];

/* Fills params[4] for mt_pg_schedule_sql. */
void mt_pg_schedule_params(const mt_schedule_req_t *req, const char *params[4]);

/* The C API: checks the request (mt_service_check) and schedules it on conn,
 * in the caller's open transaction (or autocommit, if none is open). */
int mt_pg_schedule(const mt_registry_t *reg, PGconn *conn,
                   const mt_schedule_req_t *req, int64_t *id, mt_err_t *err);

#endif
