/* The administrative commands: migrate, check, db. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lua/tasks.h"
#include "postgres/embedded.h"
#include "postgres/store.h"

static int no_arguments(mt_cli_t *cli, mt_err_t *err) {
  if (cli->argc > 1)
    return mt_err_set(err, MT_EINVAL, "%s: unexpected argument \"%s\"",
                      cli->argv[0], cli->argv[1]);
  return 0;
}

int mt_cmd_migrate(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_store_t *store = NULL;
  const char *url;
  int applied = 0;
  int rc = no_arguments(cli, &err);
  if (rc != 0 || (rc = mt_cli_database_url(cli, &url, &err)) != 0 ||
      (rc = mt_store_open(&store, url, "moontask migrate", &err)) != 0 ||
      (rc = mt_store_migrate(store, &applied, &err)) != 0)
    goto done;
  printf(applied ? "applied %d migration%s\n" : "schema is up to date\n",
         applied, applied == 1 ? "" : "s");
done:
  mt_store_free(store);
  return rc ? mt_cli_fail(rc, &err) : 0;
}

static void print_problem(void *arg, const char *problem) {
  (void)arg;
  fprintf(stderr, "%s\n", problem);
}

int mt_cmd_check(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_registry_t reg = {0};
  int rc = no_arguments(cli, &err);
  if (rc != 0)
    return mt_cli_fail(rc, &err);
  mt_task_defaults_t defaults = mt_cli_task_defaults(cli);
  int problems =
      mt_lua_tasks_check(cli->cfg.tasks_dir, &defaults, print_problem, NULL);
  if (problems > 0) {
    fprintf(stderr, "moontask: %d problem%s\n", problems,
            problems == 1 ? "" : "s");
    return 2;
  }
  if ((rc = mt_cli_registry(cli, &reg, &err)) == 0)
    for (size_t i = 0; i < reg.count; i++)
      printf("ok %s (%s%s%s)\n", reg.defs[i].name, reg.defs[i].file,
             reg.defs[i].schema_name ? ", schema " : "",
             reg.defs[i].schema_name ? reg.defs[i].schema_name : "");
  mt_registry_free(&reg);
  return rc ? mt_cli_fail(rc, &err) : 0;
}

int mt_cmd_db(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_embedded_t db;
  const char *action = cli->argc > 1 ? cli->argv[1] : "";
  int rc;
  if (cli->argc != 2)
    return mt_cli_fail(
        mt_err_set(&err, MT_EINVAL, "usage: moontask db start|stop|status|url"),
        &err);
  if ((rc = mt_embedded_locate(&db, NULL, &err)) != 0)
    return mt_cli_fail(rc, &err);
  if (strcmp(action, "start") == 0) {
    if ((rc = mt_embedded_start(&db, &err)) == 0)
      printf("%s\n", db.url);
  } else if (strcmp(action, "stop") == 0) {
    rc = mt_embedded_stop(&db, &err);
  } else if (strcmp(action, "status") == 0) {
    int running = 0;
    long pid = 0;
    if ((rc = mt_embedded_status(&db, &running, &pid, &err)) == 0) {
      if (running)
        printf("running (pid %ld) in %s\n%s\n", pid, db.root, db.url);
      else
        printf("stopped (%s)\n", db.root);
      return 0;
    }
  } else if (strcmp(action, "url") == 0) {
    printf("%s\n", db.url);
  } else {
    rc = mt_err_set(&err, MT_EINVAL,
                    "db: unknown action \"%s\" (start, stop, status, url)",
                    action);
  }
  return rc ? mt_cli_fail(rc, &err) : 0;
}
