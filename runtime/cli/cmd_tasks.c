/* The task commands: schedule, list, show, cancel, retry. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/text.h"
#include "json/read.h"
#include "lua/json.h"
#include "postgres/pg.h"
#include "postgres/pg_service.h"
#include "scheduler/scheduler.h"
#include "service/service.h"

int mt_cmd_schedule(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_registry_t reg = {0};
  mt_schedule_req_t req = {0};
  PGconn *conn = NULL;
  const char *at = NULL, *in = NULL, *positional[2];
  int npositional = 0, rc = 0;
  char run_at[MT_RUN_AT_MAX];

  for (int i = 1; rc == 0 && i < cli->argc; i++) {
    int r;
    if ((r = mt_cli_option(cli->argc, cli->argv, &i, "--at", &at)) ||
        (r = mt_cli_option(cli->argc, cli->argv, &i, "--in", &in)) ||
        (r = mt_cli_option(cli->argc, cli->argv, &i, "--key", &req.key))) {
      if (r < 0)
        rc = mt_err_set(&err, MT_EINVAL, "%s needs a value", cli->argv[i]);
    } else if (npositional < 2 && strncmp(cli->argv[i], "--", 2) != 0) {
      positional[npositional++] = cli->argv[i];
    } else {
      rc = mt_err_set(&err, MT_EINVAL, "schedule: unexpected argument \"%s\"",
                      cli->argv[i]);
    }
  }
  if (rc == 0 && npositional < 2)
    rc = mt_err_set(&err, MT_EINVAL,
                    "usage: moontask schedule NAME JSON [--at RFC3339 | --in "
                    "DURATION] [--key K]");
  if (rc == 0 && at != NULL && in != NULL)
    rc = mt_err_set(&err, MT_EINVAL, "give --at or --in, not both");
  if (rc == 0 && in != NULL) {
    double seconds;
    mt_err_t why;
    /* The parser names the text and, for a delay too long, the limit
     * (MT_SCHEDULER_MAX_DELAY); here it only gains the option's name. */
    if (mt_scheduler_parse_duration(in, &seconds, &why) != 0)
      rc = mt_err_set(&err, MT_EINVAL, "--in: %s", why.msg);
    else if (mt_scheduler_after(seconds, run_at) != 0) /* a clock past 9899 */
      rc = mt_err_set(&err, MT_EINVAL,
                      "--in: \"%s\" from now is past year 9999", in);
  }
  if (rc != 0)
    goto done;
  req.name = positional[0];
  req.payload = positional[1];
  if ((rc = mt_cli_registry(cli, &reg, &err)) != 0 ||
      (rc = mt_json_check_object(req.payload, &err)) != 0 ||
      (rc = mt_service_check(&reg, &req, &err)) != 0 ||
      (rc = mt_cli_connect(cli, &conn, &err)) != 0)
    goto done;
  req.run_at = in != NULL ? run_at : at;
  int64_t id;
  if ((rc = mt_pg_schedule(&reg, conn, &req, &id, &err)) != 0)
    goto done;
  printf("%" PRId64 "\n", id);
done:
  PQfinish(conn);
  mt_registry_free(&reg);
  return rc ? mt_cli_fail(rc, &err) : 0;
}

int mt_cmd_validate(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_registry_t reg = {0};
  int rc = 0;
  if (cli->argc != 3)
    rc = mt_err_set(&err, MT_EINVAL, "usage: moontask validate NAME JSON");
  mt_schedule_req_t req = {.name = cli->argc > 1 ? cli->argv[1] : NULL,
                           .payload = cli->argc > 2 ? cli->argv[2] : NULL};
  if (rc == 0 && (rc = mt_cli_registry(cli, &reg, &err)) == 0 &&
      (rc = mt_json_check_object(req.payload, &err)) == 0 &&
      (rc = mt_service_check(&reg, &req, &err)) == 0)
    printf("valid\n");
  mt_registry_free(&reg);
  return rc ? mt_cli_fail(rc, &err) : 0;
}

/* Parses a task id argument. */
static int task_id_arg(mt_cli_t *cli, const char **id, int *json,
                       mt_err_t *err) {
  *id = NULL;
  for (int i = 1; i < cli->argc; i++) {
    const char *a = cli->argv[i];
    if (json != NULL && strcmp(a, "--json") == 0)
      *json = 1;
    else if (*id == NULL && *a && strspn(a, "0123456789") == strlen(a) &&
             strlen(a) <= 18)
      *id = a;
    else
      return mt_err_set(err, MT_EINVAL, "%s: \"%s\" is not a task id",
                        cli->argv[0], a);
  }
  if (*id == NULL)
    return mt_err_set(err, MT_EINVAL, "usage: moontask %s ID", cli->argv[0]);
  return 0;
}

static const char list_sql[] =
    /* max_attempts is known once the runtime has used the task file's. */
    "SELECT id, name, state, attempts || coalesce('/' || max_attempts, ''),\n"
    "  to_char(run_at, 'YYYY-MM-DD HH24:MI:SSOF'),\n"
    /* The first line only, cut by characters so that no UTF-8 sequence
     * is split; mt_text_escape() then defuses what is left. */
    "  left(coalesce(split_part(last_error, E'\\n', 1), ''), 60)\n"
    "  FROM moontask.tasks\n"
    " WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR name = $2)\n"
    " ORDER BY id DESC LIMIT $3::int";

static const char list_json_sql[] =
    "SELECT coalesce(json_agg(t ORDER BY t.id DESC), '[]') FROM (\n"
    "  SELECT id, name, payload, state, run_at, attempts, max_attempts,\n"
    "         last_error, key, created_at, started_at, finished_at\n"
    "    FROM moontask.tasks\n"
    "   WHERE ($1::text IS NULL OR state = $1)\n"
    "     AND ($2::text IS NULL OR name = $2)\n"
    "   ORDER BY id DESC LIMIT $3::int) t";

static int valid_state(const char *s) {
  static const char *const states[] = {"scheduled", "running", "completed",
                                       "failed", "cancelled"};
  for (size_t i = 0; i < sizeof states / sizeof *states; i++)
    if (strcmp(s, states[i]) == 0)
      return 1;
  return 0;
}

/* Escapes columns 0..n-1 of row r, each onto one line, into esc[0..n-1]
 * (reused from row to row) and points col[] at them; NULL reads as "". */
static int escape_row(PGresult *res, int r, int n, mt_buf_t *esc,
                      const char **col, mt_err_t *err) {
  for (int c = 0; c < n; c++) {
    mt_buf_reset(&esc[c]);
    if (mt_text_escape(&esc[c], PQgetvalue(res, r, c), 0) != 0)
      return mt_err_set(err, MT_ENOMEM, "out of memory");
    col[c] = esc[c].data;
  }
  return 0;
}

int mt_cmd_list(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  PGconn *conn = NULL;
  PGresult *res = NULL;
  mt_buf_t esc[6] = {MT_BUF_INIT, MT_BUF_INIT, MT_BUF_INIT,
                     MT_BUF_INIT, MT_BUF_INIT, MT_BUF_INIT};
  const char *state = NULL, *name = NULL, *limit = "50";
  int json = 0, rc = 0;
  for (int i = 1; rc == 0 && i < cli->argc; i++) {
    int r;
    if ((r = mt_cli_option(cli->argc, cli->argv, &i, "--state", &state)) ||
        (r = mt_cli_option(cli->argc, cli->argv, &i, "--name", &name)) ||
        (r = mt_cli_option(cli->argc, cli->argv, &i, "--limit", &limit))) {
      if (r < 0)
        rc = mt_err_set(&err, MT_EINVAL, "%s needs a value", cli->argv[i]);
    } else if (strcmp(cli->argv[i], "--json") == 0) {
      json = 1;
    } else {
      rc = mt_err_set(&err, MT_EINVAL, "list: unexpected argument \"%s\"",
                      cli->argv[i]);
    }
  }
  if (rc == 0 && state != NULL && !valid_state(state))
    rc = mt_err_set(&err, MT_EINVAL,
                    "--state: \"%s\" is not a state (scheduled, running, "
                    "completed, failed, cancelled)",
                    state);
  if (rc == 0 && (strspn(limit, "0123456789") != strlen(limit) || !*limit ||
                  strlen(limit) > 9))
    rc = mt_err_set(&err, MT_EINVAL, "--limit: \"%s\" is not a number", limit);
  if (rc != 0 || (rc = mt_cli_connect(cli, &conn, &err)) != 0)
    goto done;
  const char *params[] = {state, name, limit};
  if ((res = mt_pg_exec(conn, json ? list_json_sql : list_sql, 3, params,
                        &err)) == NULL) {
    rc = MT_EDB;
    goto done;
  }
  if (json) {
    printf("%s\n", PQgetvalue(res, 0, 0));
    goto done;
  }
  printf("%-8s %-28s %-10s %-8s %-25s %s\n", "ID", "NAME", "STATE", "ATTEMPTS",
         "RUN AT", "LAST ERROR");
  for (int r = 0; r < PQntuples(res); r++) {
    /* Every column is text from the database, the error a handler's own
     * words: escaped, one line per task. */
    const char *col[6];
    if ((rc = escape_row(res, r, 6, esc, col, &err)) != 0)
      goto done;
    printf("%-8s %-28s %-10s %-8s %-25s %s\n", col[0], col[1], col[2], col[3],
           col[4], col[5]);
  }
  /* The next fires are the tasks to come: show them under the list. */
  if (state == NULL || strcmp(state, "scheduled") == 0)
    rc = mt_cli_print_schedules(conn, name, 0, 1, &err);
done:
  for (int c = 0; c < 6; c++)
    mt_buf_free(&esc[c]);
  PQclear(res);
  PQfinish(conn);
  return rc ? mt_cli_fail(rc, &err) : 0;
}

int mt_cmd_show(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  PGconn *conn = NULL;
  PGresult *res = NULL;
  mt_buf_t text = MT_BUF_INIT;
  const char *id;
  int json = 0;
  int rc = task_id_arg(cli, &id, &json, &err);
  if (rc != 0 || (rc = mt_cli_connect(cli, &conn, &err)) != 0)
    goto done;
  const char *params[] = {id};
  res = mt_pg_exec(conn,
                   "SELECT id, name, state, payload, run_at, attempts,\n"
                   "       max_attempts, key, created_at, started_at,\n"
                   "       finished_at, locked_by, locked_until, last_error,\n"
                   "       row_to_json(t)\n"
                   "  FROM moontask.tasks t WHERE id = $1::bigint",
                   1, params, &err);
  if (res == NULL) {
    rc = MT_EDB;
    goto done;
  }
  if (PQntuples(res) == 0) {
    rc = mt_err_set(&err, MT_ENOTFOUND, "task %s not found", id);
    goto done;
  }
  if (json) {
    printf("%s\n", PQgetvalue(res, 0, PQnfields(res) - 1));
    goto done;
  }
  for (int c = 0; c < PQnfields(res) - 1; c++) {
    if (PQgetisnull(res, 0, c)) {
      printf("%-13s -\n", PQfname(res, c));
      continue;
    }
    /* last_error keeps its lines (it carries a traceback); nothing else
     * spans lines, and no column may reach the terminal unescaped. */
    mt_buf_reset(&text);
    if (mt_text_escape(&text, PQgetvalue(res, 0, c),
                       strcmp(PQfname(res, c), "last_error") == 0) != 0) {
      rc = mt_err_set(&err, MT_ENOMEM, "out of memory");
      goto done;
    }
    printf("%-13s %s\n", PQfname(res, c), text.data);
  }
done:
  mt_buf_free(&text);
  PQclear(res);
  PQfinish(conn);
  return rc ? mt_cli_fail(rc, &err) : 0;
}

/* Runs a state change on one task; when it touches no row, explains why. */
static int change_state(mt_cli_t *cli, const char *sql, const char *wanted) {
  mt_err_t err = {{0}};
  PGconn *conn = NULL;
  PGresult *res = NULL;
  const char *id;
  int rc = task_id_arg(cli, &id, NULL, &err);
  if (rc != 0 || (rc = mt_cli_connect(cli, &conn, &err)) != 0)
    goto done;
  const char *params[] = {id};
  if ((res = mt_pg_exec(conn, sql, 1, params, &err)) == NULL) {
    rc = (strncmp(err.msg, "23505", 5) == 0)
             ? mt_err_set(&err, MT_ESTATE,
                          "task %s: another live task holds its key", id)
             : MT_EDB;
    goto done;
  }
  if (PQntuples(res) == 1) {
    printf("%s\n", id);
    goto done;
  }
  PQclear(res);
  res =
      mt_pg_exec(conn, "SELECT state FROM moontask.tasks WHERE id = $1::bigint",
                 1, params, &err);
  if (res == NULL)
    rc = MT_EDB;
  else if (PQntuples(res) == 0)
    rc = mt_err_set(&err, MT_ENOTFOUND, "task %s not found", id);
  else
    rc = mt_err_set(&err, MT_ESTATE, "task %s is %s: only a %s task can be %s",
                    id, PQgetvalue(res, 0, 0), wanted,
                    strcmp(cli->argv[0], "cancel") == 0 ? "cancelled"
                                                        : "retried");
done:
  PQclear(res);
  PQfinish(conn);
  return rc ? mt_cli_fail(rc, &err) : 0;
}

int mt_cmd_cancel(mt_cli_t *cli) {
  return change_state(cli,
                      "UPDATE moontask.tasks SET state = 'cancelled',\n"
                      "       finished_at = now()\n"
                      " WHERE id = $1::bigint AND state = 'scheduled'\n"
                      "RETURNING id",
                      "scheduled");
}

int mt_cmd_retry(mt_cli_t *cli) {
  return change_state(
      cli,
      "WITH t AS (\n"
      "  UPDATE moontask.tasks SET state = 'scheduled',\n"
      "         run_at = now(), attempts = 0, finished_at = NULL\n"
      "   WHERE id = $1::bigint AND state = 'failed'\n"
      "  RETURNING id)\n"
      "SELECT id, pg_notify('moontask_tasks', '') FROM t",
      "failed");
}
