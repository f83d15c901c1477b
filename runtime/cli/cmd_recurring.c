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
  mt_store_t *store = NULL;
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
      (rc = mt_cli_connect(cli, &store, err)) != 0)
    goto done;
  const mt_store_recurring_t def = {
      .name = pos[0],
      .task = pos[1],
      .payload = pos[2],
      .expression = pos[3],
      .tz = zone,
      .catch_up = catch_up != NULL ? &policy : NULL,
  };
  if ((rc = mt_store_add_recurring(store, &def, err)) == 0)
    printf("%s: next fire %s\n", pos[0], next);
done:
  mt_store_free(store);
  return rc;
}

/* Appends s as a JSON string, or null when s is NULL (a NULL column). */
static int json_str_or_null(mt_buf_t *b, const char *s) {
  return s == NULL ? mt_buf_puts(b, "null")
                   : mt_json_write_string(b, s, strlen(s));
}

/* Formats an epoch column in the schedule's zone, or NULL when the column
 * is NULL. */
static const char *fire_text(const char *epoch, const mt_tz_t *tz,
                             char buf[40]) {
  if (epoch == NULL)
    return NULL;
  mt_tz_format(tz, strtoll(epoch, NULL, 10), buf);
  return buf;
}

/* The next fire of a schedule no runtime has computed one for (a new
 * one; or any on the aws backend, where EventBridge fires and runtimes
 * compute nothing): from now, as a runtime would. NULL if the expression
 * does not parse or never fires again. */
static const char *next_from_now(const char *expr, const mt_tz_t *tz,
                                 char buf[40]) {
  mt_cron_t *cron = NULL;
  mt_err_t ignored;
  int64_t at;
  const char *out = NULL;
  if (mt_cron_parse(expr, &cron, &ignored) == 0 &&
      mt_cron_next(cron, tz, (int64_t)time(NULL), &at, &ignored) == 0) {
    mt_tz_format(tz, at, buf);
    out = buf;
  }
  mt_cron_free(cron);
  return out;
}

typedef struct schedules_ctx_s {
  int json;
  int heading; /* a RECURRING heading above the table, and only with rows */
  int header;  /* the table's header line is out */
  int rows;
  mt_buf_t out; /* the JSON array */
  mt_buf_t esc[5];
} schedules_ctx_t;

static void print_schedules_header(schedules_ctx_t *ctx) {
  printf("%s%-24s %-24s %-18s %-16s %-25s %-25s %s\n",
         ctx->heading ? "\nRECURRING\n" : "", "NAME", "TASK", "EXPRESSION",
         "TZ", "NEXT FIRE", "LAST FIRE", "ERROR");
  ctx->header = 1;
}

/* One schedule (mt_store_list_recurring's columns): a line of the table, or
 * an object of the JSON array. */
static int print_schedule(void *arg, int n, const char *const *names,
                          const char *const *cols, mt_err_t *err) {
  schedules_ctx_t *ctx = arg;
  mt_tz_t *tz = NULL;
  mt_err_t ignored;
  int rc = 0;
  (void)n;
  (void)names;
  /* The first five columns are NOT NULL in the table. */
  const char *text[5];
  for (int k = 0; k < 5; k++)
    text[k] = cols[k] != NULL ? cols[k] : "";
  /* A zone this machine lacks falls back to UTC. */
  if (mt_tz_load(text[3], &tz, &ignored) != 0 &&
      (rc = mt_tz_load("UTC", &tz, err)) != 0)
    return rc;
  char nbuf[40], lbuf[40];
  const char *error = cols[7];
  const char *next = fire_text(cols[5], tz, nbuf);
  if (next == NULL && error == NULL)
    next = next_from_now(text[2], tz, nbuf);
  const char *last = fire_text(cols[6], tz, lbuf);
  if (ctx->json) {
    static const char *const keys[] = {"name", "task", "expression", "tz",
                                       "catch_up"};
    rc = mt_buf_puts(&ctx->out, ctx->rows++ ? ",{" : "{");
    for (int k = 0; rc == 0 && k < 5; k++)
      if ((rc = mt_buf_printf(&ctx->out, "\"%s\":", keys[k])) == 0)
        rc =
            json_str_or_null(&ctx->out, text[k]) || mt_buf_putc(&ctx->out, ',');
    if (rc == 0)
      rc = mt_buf_printf(&ctx->out, "\"payload\":%s,\"next_fire_at\":",
                         cols[8] != NULL ? cols[8] : "") ||
           json_str_or_null(&ctx->out, next) ||
           mt_buf_puts(&ctx->out, ",\"last_fire_at\":") ||
           json_str_or_null(&ctx->out, last) ||
           mt_buf_puts(&ctx->out, ",\"error\":") ||
           json_str_or_null(&ctx->out, error) || mt_buf_putc(&ctx->out, '}');
  } else {
    if (!ctx->header)
      print_schedules_header(ctx);
    /* Names, expression, zone and error come from the database, the
     * error possibly from a handler or a hand-made row: each is escaped
     * onto one line, so one schedule is one line. */
    const char *col[] = {text[0], text[1], text[2], text[3], error};
    for (int k = 0; rc == 0 && k < 5; k++) {
      mt_buf_reset(&ctx->esc[k]);
      rc = mt_text_escape(&ctx->esc[k], col[k], 0);
    }
    if (rc == 0)
      printf("%-24s %-24s %-18s %-16s %-25s %-25s %s\n", ctx->esc[0].data,
             ctx->esc[1].data, ctx->esc[2].data, ctx->esc[3].data,
             next ? next : "-", last ? last : "-", ctx->esc[4].data);
  }
  mt_tz_free(tz);
  if (rc > 0 || rc == MT_ENOMEM) /* the || chains above yield 1 */
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
  return rc;
}

int mt_cli_print_schedules(mt_store_t *store, const char *task, int json,
                           int heading, mt_err_t *err) {
  schedules_ctx_t ctx = {.json = json, .heading = heading};
  int rc = json ? mt_buf_putc(&ctx.out, '[') : 0;
  if (rc == 0)
    rc = mt_store_list_recurring(store, task, print_schedule, &ctx, err);
  /* Without a heading the table shows its header even when empty. */
  if (rc == 0 && !json && !ctx.header && !heading)
    print_schedules_header(&ctx);
  if (rc == 0 && json && (rc = mt_buf_putc(&ctx.out, ']')) == 0)
    printf("%s\n", ctx.out.data);
  if (rc > 0 || rc == MT_ENOMEM)
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
  for (int k = 0; k < 5; k++)
    mt_buf_free(&ctx.esc[k]);
  mt_buf_free(&ctx.out);
  return rc;
}

static int cmd_list(mt_cli_t *cli, mt_err_t *err) {
  int json = 0, rc;
  mt_store_t *store = NULL;
  if ((rc = mt_cli_json_only(cli, 2, "recurring list", &json, err)) == 0 &&
      (rc = mt_cli_connect(cli, &store, err)) == 0)
    rc = mt_cli_print_schedules(store, NULL, json, 0, err);
  mt_store_free(store);
  return rc;
}

static int cmd_remove(mt_cli_t *cli, mt_err_t *err) {
  mt_store_t *store = NULL;
  if (cli->argc != 3)
    return mt_err_set(err, MT_EINVAL, "usage: moontask recurring remove NAME");
  int rc = mt_cli_connect(cli, &store, err);
  if (rc == 0 &&
      (rc = mt_store_remove_recurring(store, cli->argv[2], err)) == 0)
    printf("%s\n", cli->argv[2]);
  mt_store_free(store);
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
