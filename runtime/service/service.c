#include "service/service.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "postgres/pg.h"

const char mt_service_schedule_sql[] =
    "SELECT moontask.schedule($1, $2::jsonb, coalesce($3::timestamptz, now()), $4)";

int mt_service_check(const mt_registry_t *reg, const mt_schedule_req_t *req,
                     mt_err_t *err) {
  if (req->name == NULL || *req->name == '\0')
    return mt_err_set(err, MT_EINVAL, "a task name is required");
  const mt_task_def_t *def = mt_registry_find(reg, req->name);
  if (def == NULL)
    return mt_err_set(err, MT_ENOTASK,
                      "unknown task \"%s\": no task file defines it", req->name);
  const char *p = req->payload;
  while (p != NULL && isspace((unsigned char)*p))
    p++;
  /* The payload's syntax is checked by the jsonb cast in the same
   * statement; here it only has to be an object. */
  if (p == NULL || *p != '{')
    return mt_err_set(err, MT_EPAYLOAD,
                      "payload of %s must be a JSON object", req->name);
  if (req->key != NULL && *req->key == '\0')
    return mt_err_set(err, MT_EINVAL, "a key must not be empty");
  return mt_service_validate(def, req->payload, err);
}

int mt_service_validate(const mt_task_def_t *def, const char *payload,
                        mt_err_t *err) {
  if (def->schema == NULL)
    return 0;
  mt_err_t detail;
  if (mt_schema_check(def->schema, payload, strlen(payload), &detail) == 0)
    return 0;
  return mt_err_set(err, MT_EPAYLOAD,
                    "payload of %s does not match schema %s:\n%s", def->name,
                    def->schema_name ? def->schema_name : "(inline)",
                    detail.msg);
}

void mt_service_params(const mt_schedule_req_t *req, const char *params[4]) {
  params[0] = req->name;
  params[1] = req->payload;
  params[2] = req->run_at;
  params[3] = req->key;
}

int mt_service_schedule(const mt_registry_t *reg, PGconn *conn,
                        const mt_schedule_req_t *req, int64_t *id,
                        mt_err_t *err) {
  int rc = mt_service_check(reg, req, err);
  if (rc != 0)
    return rc;
  const char *params[4];
  mt_service_params(req, params);
  PGresult *res = mt_pg_exec(conn, mt_service_schedule_sql, 4, params, err);
  if (res == NULL) {
    /* Bad JSON or a bad timestamp is the caller's input, not a failure of
     * the database: class 22 is "data exception". */
    const char *msg = err ? err->msg : "";
    return (msg[0] == '2' && msg[1] == '2') ? MT_EPAYLOAD : MT_EDB;
  }
  if (id != NULL)
    *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  return 0;
}
