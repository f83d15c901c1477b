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
#include "scheduler/scheduler.h"
#include "service/service.h"

#define SCHEDULE_USAGE                                                        \
  "usage: moontask schedule NAME JSON [--at RFC3339 | --in DURATION] [--key " \
  "K [--replace]] [--priority N] [--queue Q]"

/* Reads --priority's value: a whole number in the column's range, written
 * plainly (no sign but '-', no spaces), since a typo must not schedule a
 * task at another priority than meant. */
static int parse_priority(const char *text, int *priority, mt_err_t *err) {
  const char *digits = text + (*text == '-');
  size_t n = strlen(digits);
  /* Six digits cover the range; more cannot be in it, and stopping there
   * keeps strtol's result exact. */
  long v = n > 0 && n <= 6 && strspn(digits, "0123456789") == n
               ? strtol(text, NULL, 10)
               : MT_PRIORITY_MAX + 1L;
  if (v < MT_PRIORITY_MIN || v > MT_PRIORITY_MAX)
    return mt_err_set(err, MT_EINVAL,
                      "--priority must be a whole number from %d to %d "
                      "(higher runs first), not \"%s\"",
                      MT_PRIORITY_MIN, MT_PRIORITY_MAX, text);
  *priority = (int)v;
  return 0;
}

int mt_cmd_schedule(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_registry_t reg = {0};
  mt_schedule_req_t req = {0};
  mt_store_t *store = NULL;
  const char *at = NULL, *in = NULL, *priority = NULL, *positional[2];
  int npositional = 0, rc = 0;
  char run_at[MT_RUN_AT_MAX];

  for (int i = 1; rc == 0 && i < cli->argc; i++) {
    int r;
    if ((r = mt_cli_option(cli->argc, cli->argv, &i, "--at", &at)) ||
        (r = mt_cli_option(cli->argc, cli->argv, &i, "--in", &in)) ||
        (r = mt_cli_option(cli->argc, cli->argv, &i, "--key", &req.key)) ||
        (r = mt_cli_option(cli->argc, cli->argv, &i, "--priority",
                           &priority)) ||
        (r = mt_cli_option(cli->argc, cli->argv, &i, "--queue", &req.queue))) {
      if (r < 0)
        rc = mt_err_set(&err, MT_EINVAL, "%s needs a value", cli->argv[i]);
    } else if (strcmp(cli->argv[i], "--replace") == 0) {
      req.replace = 1;
    } else if (npositional < 2 && strncmp(cli->argv[i], "--", 2) != 0) {
      positional[npositional++] = cli->argv[i];
    } else {
      rc = mt_err_set(&err, MT_EINVAL, "schedule: unexpected argument \"%s\"",
                      cli->argv[i]);
    }
  }
  if (rc == 0 && npositional < 2)
    rc = mt_err_set(&err, MT_EINVAL, SCHEDULE_USAGE);
  if (rc == 0 && at != NULL && in != NULL)
    rc = mt_err_set(&err, MT_EINVAL, "give --at or --in, not both");
  if (rc == 0 && priority != NULL &&
      (rc = parse_priority(priority, &req.priority, &err)) == 0)
    req.has_priority = 1;
  /* --replace without --key and a --queue that is no name are the
   * TaskService's to refuse (mt_store_schedule checks the request). */
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
      (rc = mt_cli_connect(cli, &store, &err)) != 0)
    goto done;
  req.run_at = in != NULL ? run_at : at;
  int64_t id;
  if ((rc = mt_store_schedule(store, &reg, &req, &id, &err)) != 0)
    goto done;
  printf("%" PRId64 "\n", id);
done:
  mt_store_free(store);
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

static int valid_state(const char *s) {
  static const char *const states[] = {"scheduled", "running", "completed",
                                       "failed", "cancelled"};
  for (size_t i = 0; i < sizeof states / sizeof *states; i++)
    if (strcmp(s, states[i]) == 0)
      return 1;
  return 0;
}

typedef struct list_ctx_s {
  int header; /* the header line is out */
  mt_buf_t esc[6];
} list_ctx_t;

static void print_list_header(list_ctx_t *ctx) {
  printf("%-8s %-28s %-10s %-8s %-25s %s\n", "ID", "NAME", "STATE", "ATTEMPTS",
         "RUN AT", "LAST ERROR");
  ctx->header = 1;
}

/* Prints one task (mt_store_list_tasks' six columns) as one line of the
 * table, the header above the first. */
static int print_task_line(void *arg, int n, const char *const *names,
                           const char *const *cols, mt_err_t *err) {
  list_ctx_t *ctx = arg;
  const char *col[6];
  (void)names;
  if (!ctx->header)
    print_list_header(ctx);
  /* Every column is text from the database, the error a handler's own
   * words: escaped, one line per task. */
  for (int c = 0; c < 6; c++) {
    mt_buf_reset(&ctx->esc[c]);
    if (mt_text_escape(&ctx->esc[c], c < n && cols[c] ? cols[c] : "", 0) != 0)
      return mt_err_set(err, MT_ENOMEM, "out of memory");
    col[c] = ctx->esc[c].data;
  }
  printf("%-8s %-28s %-10s %-8s %-25s %s\n", col[0], col[1], col[2], col[3],
         col[4], col[5]);
  return 0;
}

int mt_cmd_list(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_store_t *store = NULL;
  list_ctx_t ctx = {0};
  char *json_text = NULL;
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
  /* Nine digits at most, so that the number fits an int. */
  if (rc == 0 && (strspn(limit, "0123456789") != strlen(limit) || !*limit ||
                  strlen(limit) > 9))
    rc = mt_err_set(&err, MT_EINVAL, "--limit: \"%s\" is not a number", limit);
  if (rc != 0 || (rc = mt_cli_connect(cli, &store, &err)) != 0)
    goto done;
  const mt_store_task_filter_t filter = {
      .state = state, .name = name, .limit = atoi(limit)};
  if (json) {
    if ((rc = mt_store_list_tasks_json(store, &filter, &json_text, &err)) == 0)
      printf("%s\n", json_text);
    goto done;
  }
  if ((rc = mt_store_list_tasks(store, &filter, print_task_line, &ctx, &err)) !=
      0)
    goto done;
  if (!ctx.header) /* no task: the header alone */
    print_list_header(&ctx);
  /* The next fires are the tasks to come: show them under the list. */
  if (state == NULL || strcmp(state, "scheduled") == 0)
    rc = mt_cli_print_schedules(store, name, 0, 1, &err);
done:
  for (int c = 0; c < 6; c++)
    mt_buf_free(&ctx.esc[c]);
  free(json_text);
  mt_store_free(store);
  return rc ? mt_cli_fail(rc, &err) : 0;
}

/* Prints each column of one task on a line of its own, "-" for NULL. */
static int print_task_fields(void *arg, int n, const char *const *names,
                             const char *const *cols, mt_err_t *err) {
  mt_buf_t *text = arg;
  for (int c = 0; c < n; c++) {
    if (cols[c] == NULL) {
      printf("%-13s -\n", names[c]);
      continue;
    }
    /* last_error keeps its lines (it carries a traceback); nothing else
     * spans lines, and no column may reach the terminal unescaped. */
    mt_buf_reset(text);
    if (mt_text_escape(text, cols[c], strcmp(names[c], "last_error") == 0) != 0)
      return mt_err_set(err, MT_ENOMEM, "out of memory");
    printf("%-13s %s\n", names[c], text->data);
  }
  return 0;
}

int mt_cmd_show(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_store_t *store = NULL;
  mt_buf_t text = MT_BUF_INIT;
  char *json_text = NULL;
  const char *id;
  int json = 0;
  int rc = task_id_arg(cli, &id, &json, &err);
  if (rc != 0 || (rc = mt_cli_connect(cli, &store, &err)) != 0)
    goto done;
  int64_t task_id = strtoll(id, NULL, 10); /* at most 18 digits */
  if (json) {
    if ((rc = mt_store_get_task_json(store, task_id, &json_text, &err)) == 0)
      printf("%s\n", json_text);
  } else {
    rc = mt_store_get_task(store, task_id, print_task_fields, &text, &err);
  }
  /* The message names the id as it was given. */
  if (rc == MT_ENOTFOUND)
    rc = mt_err_set(&err, MT_ENOTFOUND, "task %s not found", id);
done:
  mt_buf_free(&text);
  free(json_text);
  mt_store_free(store);
  return rc ? mt_cli_fail(rc, &err) : 0;
}

/* Runs a state change on one task; when it changed nothing, explains why. */
static int change_state(mt_cli_t *cli,
                        int (*change)(mt_store_t *, int64_t,
                                      mt_store_change_t *, mt_err_t *),
                        const char *wanted) {
  mt_err_t err = {{0}};
  mt_store_t *store = NULL;
  mt_store_change_t found;
  const char *id;
  int rc = task_id_arg(cli, &id, NULL, &err);
  if (rc != 0 || (rc = mt_cli_connect(cli, &store, &err)) != 0 ||
      (rc = change(store, strtoll(id, NULL, 10), &found, &err)) != 0)
    goto done;
  switch (found.outcome) {
  case MT_STORE_CHANGED: printf("%s\n", id); break;
  case MT_STORE_KEY_TAKEN:
    rc = mt_err_set(&err, MT_ESTATE, "task %s: another live task holds its key",
                    id);
    break;
  case MT_STORE_NO_TASK:
    rc = mt_err_set(&err, MT_ENOTFOUND, "task %s not found", id);
    break;
  case MT_STORE_WRONG_STATE:
    rc = mt_err_set(&err, MT_ESTATE, "task %s is %s: only a %s task can be %s",
                    id, found.state, wanted,
                    strcmp(cli->argv[0], "cancel") == 0 ? "cancelled"
                                                        : "retried");
    break;
  }
done:
  mt_store_free(store);
  return rc ? mt_cli_fail(rc, &err) : 0;
}

int mt_cmd_cancel(mt_cli_t *cli) {
  return change_state(cli, mt_store_cancel_task, "scheduled");
}

int mt_cmd_retry(mt_cli_t *cli) {
  return change_state(cli, mt_store_retry_task, "failed");
}
