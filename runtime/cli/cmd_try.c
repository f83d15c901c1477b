/* `moontask try`: runs one task's handler against the real database inside a
 * transaction that is always rolled back, and reports what it did as JSON.
 * It is the engine of the Lua test kit (testkit/moontask/testkit.lua): a
 * spec's setup rows, the handler's writes, its follow-up tasks and the
 * spec's check queries all live in one transaction, so specs need no
 * cleanup and never see each other's rows.
 *
 * The handler runs exactly as the executor runs it (the same task-run
 * policy, executor/attempt.h: worker state, timeout, payload validation and
 * verdict), except that the transaction is begun here and never committed:
 * moontask.complete() is not called. */
#include <lauxlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/text.h"
#include "executor/attempt.h"
#include "json/read.h"
#include "json/write.h"
#include "lua/json.h"
#include "lua/worker.h"
#include "service/service.h"
#include "task.h"

typedef struct try_args_s {
  const char *name;
  const char *payload;
  const char **setup; /* --sql statements, in order */
  int nsetup;
  const char **checks; /* --check queries, in order */
  int nchecks;
  int json;
} try_args_t;

/* What the run found out; the strings are owned by the buffers. */
typedef struct try_result_s {
  int valid;
  int ok;
  double snooze; /* ok: the seconds the handler snoozed for, or 0 */
  int has_error;
  mt_err_t error;
  char *scheduled; /* JSON array text (malloc'd), or NULL: [] */
  char **checks;   /* one JSON array text per check (malloc'd) */
  int nchecks;
} try_result_t;

static const char usage_text[] =
    "usage: moontask try NAME JSON [--sql SETUP]... [--check SQL]... [--json]";

static int parse_try_args(mt_cli_t *cli, try_args_t *a, mt_err_t *err) {
  /* Every argument could be a --sql or --check: argc bounds both lists. */
  a->setup = calloc((size_t)cli->argc, sizeof *a->setup);
  a->checks = calloc((size_t)cli->argc, sizeof *a->checks);
  if (a->setup == NULL || a->checks == NULL)
    return MT_ENOMEM;
  int npositional = 0;
  for (int i = 1; i < cli->argc; i++) {
    const char *v = NULL;
    int r;
    if ((r = mt_cli_option(cli->argc, cli->argv, &i, "--sql", &v)) != 0) {
      if (r < 0)
        return mt_err_set(err, MT_EINVAL, "--sql needs a statement");
      a->setup[a->nsetup++] = v;
    } else if ((r = mt_cli_option(cli->argc, cli->argv, &i, "--check", &v)) !=
               0) {
      if (r < 0)
        return mt_err_set(err, MT_EINVAL, "--check needs a query");
      a->checks[a->nchecks++] = v;
    } else if (strcmp(cli->argv[i], "--json") == 0) {
      a->json = 1;
    } else if (npositional < 2 && strncmp(cli->argv[i], "--", 2) != 0) {
      if (npositional++ == 0)
        a->name = cli->argv[i];
      else
        a->payload = cli->argv[i];
    } else {
      return mt_err_set(err, MT_EINVAL, "try: unexpected argument \"%s\"",
                        cli->argv[i]);
    }
  }
  if (npositional < 2)
    return mt_err_set(err, MT_EINVAL, "%s", usage_text);
  return 0;
}

/* Runs the handler under the executor's own task-run policy
 * (executor/attempt.h), and leaves the transaction as the runtime would: a
 * failed handler's writes are undone (to a savepoint, so that the setup rows
 * stay for the checks). */
static int run_handler(mt_store_t *store, mt_lua_worker_t *w,
                       const mt_task_t *task, double default_timeout,
                       try_result_t *out, mt_err_t *err) {
  atomic_int abort_flag = 0;
  int rc = mt_store_savepoint(store, err);
  if (rc != 0)
    return rc;
  mt_session_t *session;
  if ((rc = mt_store_session(store, "moontask try", &session, err)) != 0)
    return rc;
  const mt_attempt_env_t env = {
      .session = session,
      .joined = 1, /* BEGIN was sent here: the handler joins it */
      .default_timeout = default_timeout,
      .abort = &abort_flag,
  };
  mt_attempt_t at;
  mt_attempt_run(&at, w, task, &env);
  session->ops->free(session);
  out->ok = at.outcome == MT_ATTEMPT_DONE;
  out->snooze = out->ok ? at.snooze : 0;
  out->has_error = !out->ok;
  if (out->ok)
    return 0;
  out->error = at.err;
  if (mt_store_idle(store))
    /* The handler ended the transaction itself (the runtime refuses that
     * too); there is nothing left to roll back to or to check in. */
    return mt_err_set(err, MT_EDB,
                      "%s\n(the handler ended the transaction: try cannot "
                      "undo what it committed)",
                      out->error.msg);
  return mt_store_rollback_to_savepoint(store, err);
}

static void print_json(const try_result_t *r) {
  printf("{\"valid\":%s,\"ok\":%s,\"error\":", r->valid ? "true" : "false",
         r->ok ? "true" : "false");
  mt_buf_t error = MT_BUF_INIT;
  if (r->has_error &&
      mt_json_write_string(&error, r->error.msg, strlen(r->error.msg)) == 0)
    fputs(error.data, stdout);
  else
    fputs("null", stdout);
  mt_buf_free(&error);
  if (r->snooze > 0)
    printf(",\"snooze\":%.17g", r->snooze);
  else
    fputs(",\"snooze\":null", stdout);
  printf(",\"scheduled\":%s,\"checks\":[", r->scheduled ? r->scheduled : "[]");
  for (int i = 0; i < r->nchecks; i++)
    printf("%s%s", i ? "," : "", r->checks[i]);
  printf("]}\n");
}

static void print_text(const try_result_t *r) {
  printf("valid: %s\nok: %s\n", r->valid ? "yes" : "no", r->ok ? "yes" : "no");
  if (r->has_error) {
    mt_buf_t text = MT_BUF_INIT;
    mt_text_escape(&text, r->error.msg, 1);
    printf("error: %s\n", text.data != NULL ? text.data : r->error.msg);
    mt_buf_free(&text);
  }
  if (r->snooze > 0)
    printf("snooze: %gs\n", r->snooze);
  printf("scheduled: %s\n", r->scheduled ? r->scheduled : "[]");
  for (int i = 0; i < r->nchecks; i++)
    printf("check %d: %s\n", i + 1, r->checks[i]);
}

int mt_cmd_try(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  try_args_t a = {0};
  try_result_t r = {0};
  mt_registry_t reg = {0};
  mt_lua_worker_t *w = NULL;
  mt_task_t *task = NULL;
  mt_store_t *store = NULL;
  int rc;

  if ((rc = parse_try_args(cli, &a, &err)) != 0)
    goto done;
  mt_task_defaults_t defaults = mt_cli_task_defaults(cli);
  if ((rc = mt_cli_registry(cli, &reg, &err)) != 0 ||
      (rc = mt_lua_worker_new(&w, cli->cfg.tasks_dir, &defaults, &err)) != 0 ||
      (rc = mt_cli_connect(cli, &store, &err)) != 0 ||
      (rc = mt_store_begin(store, &err)) != 0)
    goto done;
  for (int i = 0; i < a.nsetup; i++) {
    /* Setup shares the handler's transaction, and the same rule: a
     * COMMIT here would leave rows behind in a real database. */
    if ((rc = mt_store_exec_guarded(store, a.setup[i], &err)) != 0) {
      mt_err_t detail = err;
      rc = mt_err_set(&err, rc, "setup statement %d: %s", i + 1, detail.msg);
      goto done;
    }
  }

  /* The TaskService's checks: an invalid request never reaches a handler,
   * and is an answer (valid = false), not a failure of this command. */
  mt_schedule_req_t req = {.name = a.name, .payload = a.payload};
  r.valid = mt_json_check_object(a.payload, &r.error) == 0 &&
            mt_service_check(&reg, &req, &r.error) == 0;
  r.has_error = !r.valid;
  if (r.valid) {
    /* The task's own row, so that ctx.id names a real task (handlers
     * store it, e.g. as outbox.task_id) and the follow-ups it schedules
     * can be told apart by id. */
    if ((rc = mt_store_insert_task(store, &req, &task, &err)) != 0 ||
        (rc = run_handler(store, w, task, defaults.timeout, &r, &err)) != 0 ||
        (rc = mt_store_scheduled_after(store, task->id, &r.scheduled, &err)) !=
            0)
      goto done;
  }

  r.checks = calloc((size_t)a.nchecks + 1, sizeof *r.checks);
  if (r.checks == NULL) {
    rc = MT_ENOMEM;
    goto done;
  }
  for (; r.nchecks < a.nchecks; r.nchecks++) {
    if ((rc = mt_store_query_json(store, a.checks[r.nchecks],
                                  &r.checks[r.nchecks], &err)) != 0) {
      mt_err_t detail = err;
      rc = mt_err_set(&err, rc, "check %d: %s", r.nchecks + 1, detail.msg);
      goto done;
    }
  }
  if (a.json)
    print_json(&r);
  else
    print_text(&r);
done:
  /* Everything, setup included, goes: that is the point of `try`. */
  mt_store_rollback(store);
  mt_store_free(store);
  mt_task_free(task);
  mt_lua_worker_free(w);
  mt_registry_free(&reg);
  for (int i = 0; i < r.nchecks; i++)
    free(r.checks[i]);
  free(r.checks);
  free(r.scheduled);
  free(a.setup);
  free(a.checks);
  return rc ? mt_cli_fail(rc, &err) : 0;
}
