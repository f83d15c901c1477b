/*
 * TaskService: the one way tasks are checked before they are persisted. It
 * resolves the task definition and validates the payload against the task's
 * schema. Writing the checked task belongs to the backend that holds the
 * tasks: postgres/pg_service.h writes it with moontask.schedule() inside the
 * caller's own transaction, so a caller that rolls back leaves no task
 * behind.
 */
#ifndef MT_SERVICE_H
#define MT_SERVICE_H

#include "common/error.h"
#include "service/registry.h"

typedef struct mt_schedule_req_s {
  const char *name;
  const char *payload; /* JSON text; must be an object */
  const char *run_at;  /* a timestamptz literal (RFC 3339); NULL: now */
  const char *key;     /* NULL: no de-duplication */
  /* With key: a task already waiting under the key takes this one's
   * name, payload, run_at, queue and priority (a debounce), where by
   * default the waiting task is kept as it is. */
  int replace;
  const char *queue; /* NULL: the task file's, else "default" */
  int has_priority;  /* priority was given; else the task file's, else 0 */
  int priority;      /* MT_PRIORITY_MIN..MT_PRIORITY_MAX, higher first */
} mt_schedule_req_t;

/* Validates a request against the registry without touching the database. */
int mt_service_check(const mt_registry_t *reg, const mt_schedule_req_t *req,
                     mt_err_t *err);

/* Validates a payload (JSON text) against the task's schema, if it has
 * one: MT_EPAYLOAD with every violation, one per line, when it does not
 * match. */
int mt_service_validate(const mt_task_def_t *def, const char *payload,
                        mt_err_t *err);

#endif
