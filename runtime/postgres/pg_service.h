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

/* The statement that persists a task, with MT_PG_SCHEDULE_PARAMS
 * parameters in this order: name, payload, run_at, key, priority, queue,
 * replace. Exposed for callers that must run it through their own
 * connection wrapper (the Lua transaction handle). */
extern const char mt_pg_schedule_sql[];
#define MT_PG_SCHEDULE_PARAMS 7
#define MT_PG_PRIORITY_LEN 16

/* Fills params for mt_pg_schedule_sql; priority is the room for the
 * priority's text, which params then points into. */
void mt_pg_schedule_params(const mt_schedule_req_t *req,
                           char priority[MT_PG_PRIORITY_LEN],
                           const char *params[MT_PG_SCHEDULE_PARAMS]);

/* The C API: checks the request (mt_service_check) and schedules it on conn,
 * in the caller's open transaction (or autocommit, if none is open). */
int mt_pg_schedule(const mt_registry_t *reg, PGconn *conn,
                   const mt_schedule_req_t *req, int64_t *id, mt_err_t *err);

#endif
