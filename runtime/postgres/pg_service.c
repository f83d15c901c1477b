#include "postgres/pg_service.h"

#include <stdio.h>
#include <stdlib.h>

#include "postgres/pg.h"

const char mt_pg_schedule_sql[] =
    "SELECT moontask.schedule($1, $2::jsonb, coalesce($3::timestamptz, now()),\n"
    "                         $4, $5::int, $6, $7::bool)";

void mt_pg_schedule_params(const mt_schedule_req_t *req,
                           char priority[MT_PG_PRIORITY_LEN],
                           const char *params[MT_PG_SCHEDULE_PARAMS]) {
  snprintf(priority, MT_PG_PRIORITY_LEN, "%d", req->priority);
  params[0] = req->name;
  params[1] = req->payload;
  params[2] = req->run_at;
  params[3] = req->key;
  params[4] = req->has_priority ? priority : NULL;
  params[5] = req->queue;
  params[6] = req->replace ? "true" : "false";
}

int mt_pg_schedule(const mt_registry_t *reg, PGconn *conn,
                   const mt_schedule_req_t *req, int64_t *id, mt_err_t *err) {
  int rc = mt_service_check(reg, req, err);
  if (rc != 0)
    return rc;
  const char *params[MT_PG_SCHEDULE_PARAMS];
  char priority[MT_PG_PRIORITY_LEN];
  mt_pg_schedule_params(req, priority, params);
  PGresult *res =
      mt_pg_exec(conn, mt_pg_schedule_sql, MT_PG_SCHEDULE_PARAMS, params, err);
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
