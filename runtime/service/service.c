#include "service/service.h"

#include <ctype.h>
#include <string.h>

int mt_service_check(const mt_registry_t *reg, const mt_schedule_req_t *req,
                     mt_err_t *err) {
  if (req->name == NULL || *req->name == '\0')
    return mt_err_set(err, MT_EINVAL, "a task name is required");
  const mt_task_def_t *def = mt_registry_find(reg, req->name);
  if (def == NULL)
    return mt_err_set(err, MT_ENOTASK,
                      "unknown task \"%s\": no task file defines it",
                      req->name);
  const char *p = req->payload;
  while (p != NULL && isspace((unsigned char)*p))
    p++;
  /* Here the payload only has to look like an object: its syntax is
   * checked where it is parsed, by the schema check below when the task
   * has a schema, and by the backend that stores it in any case
   * (postgres/pg_service.c casts it to jsonb in the same statement). */
  if (p == NULL || *p != '{')
    return mt_err_set(err, MT_EPAYLOAD, "payload of %s must be a JSON object",
                      req->name);
  if (req->key != NULL && *req->key == '\0')
    return mt_err_set(err, MT_EINVAL, "a key must not be empty");
  if (req->replace && req->key == NULL)
    return mt_err_set(err, MT_EINVAL,
                      "replace needs a key: it replaces the task waiting "
                      "under that key");
  if (req->has_priority &&
      (req->priority < MT_PRIORITY_MIN || req->priority > MT_PRIORITY_MAX))
    return mt_err_set(err, MT_EINVAL, "priority %d is out of range (%d to %d)",
                      req->priority, MT_PRIORITY_MIN, MT_PRIORITY_MAX);
  /* Whether the queue is declared is the database's to say (moontask.
   * queues): config.lua's queues reach it when a runtime starts. */
  if (req->queue != NULL && !mt_queue_name_valid(req->queue))
    return mt_err_set(err, MT_EINVAL,
                      "invalid queue name \"%s\": a queue is named by an "
                      "identifier (letters, digits and _, not starting with "
                      "a digit)",
                      req->queue);
  return mt_service_validate(def, req->payload, err);
}

int mt_service_validate(const mt_task_def_t *def, const char *payload,
                        mt_err_t *err) {
  if (def->schema == NULL)
    return 0;
  mt_err_t detail;
  if (mt_schema_check(def->schema, payload, strlen(payload), &detail) == 0)
    return 0;
  return mt_err_set(
      err, MT_EPAYLOAD, "payload of %s does not match schema %s:\n%s",
      def->name, def->schema_name ? def->schema_name : "(inline)", detail.msg);
}
