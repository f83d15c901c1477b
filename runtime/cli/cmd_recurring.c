/* The recurring command: adds, lists and removes recurring schedules
 * (moontask.schedules). The runtimes turn their fires into tasks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/text.h"
#include "json/read.h"
#include "json/write.h"
#include "lua/json.h"
#include "postgres/pg.h"
#include "scheduler/catch_up.h"
#include "scheduler/cron.h"
#include "service/service.h"

#define ADD_USAGE                                                  \
  "usage: moontask recurring add NAME TASK JSON EXPR [--tz ZONE] " \
  "[--catch-up once|skip|all]"

/* Checks everything a runtime would refuse later, so that a schedule that
 * can never fire is refused now (exit 2) rather than marked with an error. */
static int check_add(mt_cli_t *cli, const char *task, const char *payload,
                     const char *expr, const char *zone, char next[40],
                     mt_err_t *err) {
  mt_registry_t reg = {0};
  mt_cron_t *cron = NULL;
  mt_tz_t *tz = NULL;
  mt_schedule_req_t req = {.name = task, .payload = payload};
  int64_t at;
  int rc;
  if ((rc = mt_cron_parse(expr, &cron, err)) != 0 ||
      (rc = mt_tz_load(zone, &tz, err)) != 0 ||
      (rc = mt_cli_registry(cli, &reg, err)) != 0 ||
      (rc = mt_json_check_object(payload, err)) != 0 ||
      (rc = mt_service_check(&reg, &req, err)) != 0)
    goto done;
  rc = mt_cron_next(cron, tz, (int64_t)time(NULL), &at, err);
  if (rc == MT_ENOTFOUND)
    rc = mt_err_set(err, MT_EINVAL, "\"%s\" never fires again", expr);
  if (rc == 0)
    mt_tz_format(tz, at, next);
done:
  mt_cron_free(cron);
  mt_tz_free(tz);
  mt_registry_free(&reg);
  return rc;
}

static int cmd_add(mt_cli_t *cli, mt_err_t *err) {
  const char *zone = "UTC", *catch_up = NULL, *pos[4];
  int npos = 0, rc = 0;
  PGconn *conn = NULL;
  PGresult *res = NULL;
  char next[40];
  for (int i = 2; rc == 0 && i < cli->argc; i++) {
    int r;
    if ((r = mt_cli_option(cli->argc, cli->argv, &i, "--tz", &zone)) ||
        (r = mt_cli_option(cli->argc, cli->argv, &i, "--catch-up",
                           &catch_up))) {
      if (r < 0)
        rc = mt_err_set(err, MT_EINVAL, "%s needs a value", cli->argv[i]);
    } else if (npos < 4 && strncmp(cli->argv[i], "--", 2) != 0) {
      pos[npos++] = cli->argv[i];
    } else {
      rc =
          mt_err_set(err, MT_EINVAL,
                     "recurring add: unexpected argument \"%s\"", cli->argv[i]);
    }
  }
  if (rc == 0 && npos < 4)
    rc = mt_err_set(err, MT_EINVAL, ADD_USAGE);
  mt_catch_up_t policy = MT_CATCH_UP_ONCE;
  mt_err_t why;
  if (rc == 0 && catch_up != NULL &&
      mt_catch_up_parse(catch_up, &policy, &why) != 0)
    rc = mt_err_set(err, MT_EINVAL, "--catch-up: %s", why.msg);
  if (rc == 0 && (pos[0][0] == '\0' || strlen(pos[0]) > 200))
    rc =
        mt_err_set(err, MT_EINVAL, "schedule name must be 1 to 200 characters");
  if (rc != 0 ||
      (rc = check_add(cli, pos[1], pos[2], pos[3], zone, next, err)) != 0 ||
      (rc = mt_cli_connect(cli, &conn, err)) != 0)
    goto done;
  /* One transaction: the definition and its catch-up policy appear
   * together to the runtimes. */
  const char *params[] = {pos[0], pos[1], pos[2], pos[3], zone};
  /* The name that goes to the database is the parsed one, so the column
   * only ever receives what mt_catch_up_parse() accepted. */
  const char *cparams[] = {pos[0], mt_catch_up_name(policy)};
  if ((res = mt_pg_exec(conn, "BEGIN", 0, NULL, err)) == NULL)
    goto db_fail;
  PQclear(res);
  if ((res = mt_pg_exec(conn,
                        "SELECT moontask.schedule_recurring($1, $2, "
                        "$3::jsonb, $4, $5)",
                        5, params, err)) == NULL)
    goto db_fail;
  PQclear(res);
  if (catch_up != NULL) {
    if ((res = mt_pg_exec(conn,
                          "UPDATE moontask.schedules SET catch_up = $2 "
                          "WHERE name = $1",
                          2, cparams, err)) == NULL)
      goto db_fail;
    PQclear(res);
  }
  if ((res = mt_pg_exec(conn, "COMMIT", 0, NULL, err)) == NULL)
    goto db_fail;
  PQclear(res);
  res = NULL;
  printf("%s: next fire %s\n", pos[0], next);
done:
  PQfinish(conn);
  return rc;
db_fail:
  rc = MT_EDB;
  goto done;
}

/* Appends s as a JSON string, or null when s is NULL (a NULL column). */
static int json_str_or_null(mt_buf_t *b, const char *s) {
  return s == NULL ? mt_buf_puts(b, "null")
                   : mt_json_write_string(b, s, strlen(s));
}

/* Formats an epoch column in the schedule's zone, or NULL when the column
 * is NULL. A zone this machine lacks falls back to UTC. */
static const char *fire_text(PGresult *res, int r, int c, const mt_tz_t *tz,
                             char buf[40]) {
  if (PQgetisnull(res, r, c))
    return NULL;
  mt_tz_format(tz, strtoll(PQgetvalue(res, r, c), NULL, 10), buf);
  return buf;
}

int mt_cli_print_schedules(PGconn *conn, const char *task, int json,
                           int heading, mt_err_t *err) {
  PGresult *res = NULL;
  mt_buf_t out = MT_BUF_INIT;
  mt_buf_t esc[5] = {MT_BUF_INIT, MT_BUF_INIT, MT_BUF_INIT, MT_BUF_INIT,
                     MT_BUF_INIT};
  int rc = 0;
  const char *params[] = {task};
  if ((res = mt_pg_exec(
           conn,
           "SELECT name, task, expression, tz, catch_up,\n"
           "       floor(extract(epoch FROM next_fire_at))::bigint,\n"
           "       floor(extract(epoch FROM last_fire_at))::bigint,\n"
           "       error, payload::text\n"
           "  FROM moontask.schedules\n"
           " WHERE $1::text IS NULL OR task = $1 ORDER BY name",
           1, params, err)) == NULL) {
    rc = MT_EDB;
    goto done;
  }
  if (json)
    rc = mt_buf_putc(&out, '[');
  else if (PQntuples(res) > 0 || !heading)
    printf("%s%-24s %-24s %-18s %-16s %-25s %-25s %s\n",
           heading ? "\nRECURRING\n" : "", "NAME", "TASK", "EXPRESSION", "TZ",
           "NEXT FIRE", "LAST FIRE", "ERROR");
  for (int r = 0; rc == 0 && r < PQntuples(res); r++) {
    mt_tz_t *tz = NULL;
    mt_err_t ignored;
    if (mt_tz_load(PQgetvalue(res, r, 3), &tz, &ignored) != 0 &&
        (rc = mt_tz_load("UTC", &tz, err)) != 0)
      break;
    char nbuf[40], lbuf[40];
    const char *next = fire_text(res, r, 5, tz, nbuf);
    const char *last = fire_text(res, r, 6, tz, lbuf);
    const char *error = PQgetisnull(res, r, 7) ? NULL : PQgetvalue(res, r, 7);
    if (json) {
      static const char *const keys[] = {"name", "task", "expression", "tz",
                                         "catch_up"};
      rc = mt_buf_puts(&out, r ? ",{" : "{");
      for (int k = 0; rc == 0 && k < 5; k++)
        if ((rc = mt_buf_printf(&out, "\"%s\":", keys[k])) == 0)
          rc = json_str_or_null(&out, PQgetvalue(res, r, k)) ||
               mt_buf_putc(&out, ',');
      if (rc == 0)
        rc = mt_buf_printf(&out, "\"payload\":%s,\"next_fire_at\":",
                           PQgetvalue(res, r, 8)) ||
             json_str_or_null(&out, next) ||
             mt_buf_puts(&out, ",\"last_fire_at\":") ||
             json_str_or_null(&out, last) || mt_buf_puts(&out, ",\"error\":") ||
             json_str_or_null(&out, error) || mt_buf_putc(&out, '}');
    } else {
      /* Names, expression, zone and error come from the database, the
       * error possibly from a handler or a hand-made row: each is escaped
       * onto one line, so one schedule is one line. */
      const char *col[] = {PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
                           PQgetvalue(res, r, 2), PQgetvalue(res, r, 3), error};
      for (int k = 0; rc == 0 && k < 5; k++) {
        mt_buf_reset(&esc[k]);
        rc = mt_text_escape(&esc[k], col[k], 0);
      }
      /* "pending": no runtime has computed the next fire yet. */
      if (rc == 0)
        printf("%-24s %-24s %-18s %-16s %-25s %-25s %s\n", esc[0].data,
               esc[1].data, esc[2].data, esc[3].data,
               next ? next : (error ? "-" : "pending"), last ? last : "-",
               esc[4].data);
    }
    mt_tz_free(tz);
  }
  if (rc == 0 && json && (rc = mt_buf_putc(&out, ']')) == 0)
    printf("%s\n", out.data);
  if (rc > 0 || rc == MT_ENOMEM) /* the || chains above yield 1 */
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
done:
  for (int k = 0; k < 5; k++)
    mt_buf_free(&esc[k]);
  mt_buf_free(&out);
  PQclear(res);
  return rc;
}

static int cmd_list(mt_cli_t *cli, mt_err_t *err) {
  int json = 0, rc = 0;
  PGconn *conn = NULL;
  for (int i = 2; rc == 0 && i < cli->argc; i++) {
    if (strcmp(cli->argv[i], "--json") == 0)
      json = 1;
    else
      rc = mt_err_set(err, MT_EINVAL,
                      "recurring list: unexpected argument \"%s\"",
                      cli->argv[i]);
  }
  if (rc == 0 && (rc = mt_cli_connect(cli, &conn, err)) == 0)
    rc = mt_cli_print_schedules(conn, NULL, json, 0, err);
  PQfinish(conn);
  return rc;
}

static int cmd_remove(mt_cli_t *cli, mt_err_t *err) {
  PGconn *conn = NULL;
  PGresult *res = NULL;
  int rc = 0;
  if (cli->argc != 3)
    return mt_err_set(err, MT_EINVAL, "usage: moontask recurring remove NAME");
  if ((rc = mt_cli_connect(cli, &conn, err)) != 0)
    goto done;
  const char *params[] = {cli->argv[2]};
  if ((res = mt_pg_exec(conn, "SELECT moontask.unschedule_recurring($1)", 1,
                        params, err)) == NULL) {
    rc = MT_EDB;
    goto done;
  }
  if (PQgetvalue(res, 0, 0)[0] != 't')
    rc = mt_err_set(err, MT_ENOTFOUND, "recurring schedule \"%s\" not found",
                    cli->argv[2]);
  else
    printf("%s\n", cli->argv[2]);
done:
  PQclear(res);
  PQfinish(conn);
  return rc;
}

int mt_cmd_recurring(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  const char *sub = cli->argc > 1 ? cli->argv[1] : "";
  int rc;
  if (strcmp(sub, "add") == 0)
    rc = cmd_add(cli, &err);
  else if (strcmp(sub, "list") == 0)
    rc = cmd_list(cli, &err);
  else if (strcmp(sub, "remove") == 0)
    rc = cmd_remove(cli, &err);
  else
    rc = mt_err_set(&err, MT_EINVAL,
                    "usage: moontask recurring add|list|remove ...");
  return rc != 0 ? mt_cli_fail(rc, &err) : 0;
}
