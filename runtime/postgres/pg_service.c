#include "postgres/pg_service.h"

#include <stdlib.h>

#include "postgres/pg.h"

const char mt_pg_schedule_sql[] =
    "SELECT moontask.schedule($1, $2::jsonb, coalesce($3::timestamptz, now()), $4)";

void mt_pg_schedule_params(const mt_schedule_req_t *req,
                           const char *params[4]) {
  params[0] = req->name;
  params[1] = req->payload;
  params[2] = req->run_at;
  params[3] = req->key;
}

int mt_pg_schedule(const mt_registry_t *reg, PGconn *conn,
                   const mt_schedule_req_t *req, int64_t *id, mt_err_t *err) {
  int rc = mt_service_check(reg, req, err);
  if (rc != 0)
    return rc;
  const char *params[4];
  mt_pg_schedule_params(req, params);
  PGresult *res = mt_pg_exec(conn, mt_pg_schedule_sql, 4, params, err);
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
