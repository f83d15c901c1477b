/*
 * TaskService: the one way tasks are persisted. It resolves the task
 * definition, validates the payload against the task's schema, and writes
 * the task with moontask.schedule() on a connection the caller owns, inside
 * whatever transaction the caller has open there, so a caller that rolls
 * back leaves no task behind.
 */
#ifndef MT_SERVICE_H
#define MT_SERVICE_H

#include <libpq-fe.h>
#include <stdint.h>

#include "common/error.h"
#include "service/registry.h"

typedef struct mt_schedule_req_s {
  const char *name;
  const char *payload; /* JSON text; must be an object */
  const char *run_at;  /* a timestamptz literal (RFC 3339); NULL: now */
  const char *key;     /* NULL: no de-duplication */
} mt_schedule_req_t;

/* The statement that persists a task, with parameters in this order:
 * name, payload, run_at, key. Exposed for callers that must run it through
 * their own connection wrapper (the Lua transaction handle). */
extern const char mt_service_schedule_sql[];

/* Validates a request against the registry without touching the database. */
int mt_service_check(const mt_registry_t *reg, const mt_schedule_req_t *req,
                     mt_err_t *err);

/* Validates a payload (JSON text) against the task's schema, if it has
 * one: MT_EPAYLOAD with every violation, one per line, when it does not
 * match. */
int mt_service_validate(const mt_task_def_t *def, const char *payload,
                        mt_err_t *err);

/* Fills params[4] for mt_service_schedule_sql. */
void mt_service_params(const mt_schedule_req_t *req, const char *params[4]);

/* The C API: checks the request and schedules it on conn, in the caller's
 * open transaction (or autocommit, if none is open). */
int mt_service_schedule(const mt_registry_t *reg, PGconn *conn,
                        const mt_schedule_req_t *req, int64_t *id,
                        mt_err_t *err);

#endif
