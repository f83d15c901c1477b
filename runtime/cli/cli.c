#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/stringify.h"
#include "common/text.h"
#include "lua/tasks.h"
#include "postgres/embedded.h"

/* The version is project(VERSION) in CMakeLists.txt, and only there. */
#ifndef MT_VERSION
#error "MT_VERSION is defined by CMakeLists.txt from project(VERSION)"
#endif

typedef struct command_s {
  const char *name;
  int (*run)(mt_cli_t *cli);
  const char *usage;
  const char *help;
} command_t;

static const command_t commands[] = {
    {"run", mt_cmd_run, "run [--workers N] [--drain]",
     "Runs the runtime: discovers due tasks and executes them.\n"
     // clang-format off
     "  --workers N  worker threads (config `workers`, default "
     MT_STR(MT_WORKERS_DEFAULT) ")\n"
     "  --drain      process every due task, then exit 0 once none is due\n"
     "               or running\n"
     "SIGTERM/SIGINT stop claiming and let tasks in flight finish within\n"
     "`shutdown_grace`; a second signal exits at once.\n"},
    // clang-format on
    {"reload", mt_cmd_reload, "reload",
     "Makes the runtimes started with the same config.lua load the\n"
     "task files again (they also do on SIGHUP, and when a file under the\n"
     "tasks or schemas folder changes). A version that does not load whole\n"
     "is refused, and the running one stays.\n"},
    {"schedule", mt_cmd_schedule,
     "schedule NAME JSON [--at RFC3339 | --in DURATION] [--key K [--replace]] "
     "[--priority N] [--queue Q]",
     "Schedules task NAME with payload JSON (an object) and prints its id.\n"
     "  --at T        run at T, e.g. 2026-12-01T09:00:00+01:00 (default: now)\n"
     "  --in D        run after D: 90, 90s, 15m, 2h, 1d, 1h30m\n"
     "  --key K       de-duplicate: if a live task holds K, print its id\n"
     "  --replace     with --key: a task waiting under K takes this one's\n"
     "                payload, run time, priority and queue instead\n"
     "  --priority N  -32768 to 32767, higher first among a queue's due\n"
     "                tasks (default: the task file's, else 0)\n"
     "  --queue Q     a queue config.lua declares (default: the task\n"
     "                file's, else \"default\")\n"},
    {"validate", mt_cmd_validate, "validate NAME JSON",
     "A dry run of the TaskService: checks that task NAME exists and that\n"
     "JSON is a valid payload for it. Exit 0 when valid, 2 with every\n"
     "violation (JSON Pointer and reason) when not. Writes nothing.\n"},
    {"list", mt_cmd_list, "list [--state S] [--name N] [--limit N] [--json]",
     "Lists tasks, newest first (default limit 50).\n"},
    {"show", mt_cmd_show, "show ID [--json]", "Shows one task in full.\n"},
    {"queues", mt_cmd_queues, "queues [--json]",
     "Lists the queues, \"default\" first, with their limits as the\n"
     "database holds them (config.lua's `queues`, written by the last\n"
     "runtime to start) and the count of their tasks running, due, and\n"
     "scheduled for later.\n"
     "  --json  one JSON array of {name, concurrency, rate, running, due,\n"
     "          later}; null for no limit\n"},
    {"cancel", mt_cmd_cancel, "cancel ID",
     "Cancels a scheduled task (it will not run).\n"},
    {"retry", mt_cmd_retry, "retry ID",
     "Schedules a failed task to run again now, with fresh attempts.\n"},
    {"prune", mt_cmd_prune, "prune [--dry-run]",
     "Deletes the finished tasks older than their state's period in\n"
     "config `retention` (by default completed 7 days, failed 30 days,\n"
     "cancelled 7 days), in small batches, and prints how many of each\n"
     "state went. A running runtime does the same every\n"
     "`retention.interval` seconds (default 60).\n"
     "  --dry-run  only count what would go\n"},
    {"status", mt_cmd_status, "status [--json]",
     "Summarises the tasks as the status page does: counts by task and\n"
     "state, how long the oldest due task has waited, running tasks with\n"
     "their age, recent failures with their error, the recurring\n"
     "schedules, and the task files of this folder with their versions.\n"
     "  --json  one JSON object: {now, counts, oldest_due_seconds, running,\n"
     "          failures, schedules, task_files}\n"},
    {"migrate", mt_cmd_migrate, "migrate",
     "Creates or upgrades schema `moontask` in the database.\n"},
    {"check", mt_cmd_check, "check",
     "Loads every task as the runtime would and reports problems. With an\n"
     "aws table in config.lua, also checks the credentials, the queue and\n"
     "the schedule group against AWS.\n"},
    {"try", mt_cmd_try,
     "try NAME JSON [--sql SETUP]... [--check SQL]... [--json]",
     "Runs task NAME's handler once on payload JSON inside a transaction\n"
     "that is rolled back at the end, and reports what it did: whether the\n"
     "payload is valid, whether the handler succeeded (its error and\n"
     "traceback if not), the tasks it scheduled and the rows of each check.\n"
     "  --sql SETUP  run SETUP in the transaction first (repeatable)\n"
     "  --check SQL  run query SQL after the handler, report its rows\n"
     "               (repeatable)\n"
     "  --json       one JSON object: {valid, ok, error, scheduled, checks}\n"
     "Exit 0 whatever the handler did; the test kit\n"
     "(testkit/moontask/testkit.lua) is built on it.\n"},
    {"new", mt_cmd_new, "new NAME [--force] [--specs DIR]",
     "Scaffolds task NAME (e.g. billing.send_invoice): a task file, a\n"
     "payload schema and a busted spec using the test kit, then checks that\n"
     "the task loads. Refuses to overwrite files unless --force.\n"
     "  --specs DIR  where the spec goes (default tests/spec)\n"},
    {"cron", mt_cmd_cron,
     "cron next EXPR [--tz ZONE] [--after RFC3339] [--count N]",
     "Prints the next N (default 5) fire times of a schedule expression as\n"
     "RFC 3339 with the zone's offset, one a line. EXPR is five-field Unix\n"
     "cron (or @hourly, @daily, ...), six fields with a leading second, or\n"
     "EventBridge cron(min hour dom mon dow year) / rate(N unit).\n"
     "  --tz ZONE      IANA time zone the fields are read in (default UTC)\n"
     "  --after T      start instant, exclusive (default: now)\n"
     "  --count N      how many fire times (default 5)\n"},
    {"recurring", mt_cmd_recurring,
     "recurring add NAME TASK JSON EXPR [--tz ZONE] [--catch-up P] | list "
     "[--json] | remove NAME",
     "Manages recurring schedules: each fire of EXPR (see `moontask cron`)\n"
     "becomes a task TASK with payload JSON, exactly once however many\n"
     "runtimes share the database.\n"
     "  add NAME TASK JSON EXPR  create or redefine schedule NAME\n"
     "    --tz ZONE        IANA time zone the fields are read in\n"
     "                     (default UTC)\n"
     "    --catch-up P     fires missed while no runtime ran: once (default,\n"
     "                     one task for the missed window), skip (none) or\n"
     "                     all (one task each, at most 100)\n"
     "  list [--json]      schedules with their next and last fire\n"
     "  remove NAME        delete schedule NAME (exit 2 if there is none)\n"},
    {"db", mt_cmd_db, "db start|stop|status|url",
     "Manages the embedded database used when no database URL is set.\n"},
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
  fprintf(out, "usage: moontask [global options] COMMAND [options]\n\n"
               "commands:\n");
  for (size_t i = 0; i < COMMAND_COUNT; i++)
    fprintf(out, "  moontask %s\n", commands[i].usage);
  fprintf(out,
          "\nglobal options (before or after the command):\n"
          "  --config F        configuration file (default ./config.lua)\n"
          "  --database-url U  PostgreSQL URL (else MOONTASK_DATABASE_URL,\n"
          "                    DATABASE_URL, config.lua, or the embedded db)\n"
          "  --tasks DIR       task scripts (default tasks)\n"
          "  --schemas DIR     payload schemas (default schemas)\n"
          "  --version         print the version and exit\n"
          "\nexit codes: 0 ok, 1 runtime failure, 2 bad input\n"
          "`moontask COMMAND --help` describes one command.\n");
}

int mt_cli_option(int argc, char **argv, int *i, const char *name,
                  const char **value) {
  size_t n = strlen(name);
  const char *arg = argv[*i];
  if (strncmp(arg, name, n) != 0)
    return 0;
  if (arg[n] == '=') {
    *value = arg + n + 1;
    return 1;
  }
  if (arg[n] != '\0')
    return 0;
  if (*i + 1 >= argc)
    return -1;
  *value = argv[++*i];
  return 1;
}

int mt_cli_json_only(const mt_cli_t *cli, int first, const char *what,
                     int *json, mt_err_t *err) {
  *json = 0;
  for (int i = first; i < cli->argc; i++) {
    if (strcmp(cli->argv[i], "--json") != 0)
      return mt_err_set(err, MT_EINVAL, "%s: unexpected argument \"%s\"", what,
                        cli->argv[i]);
    *json = 1;
  }
  return 0;
}

int mt_cli_fail(int rc, const mt_err_t *err) {
  /* Messages quote what they refuse (a task name, a database error about
   * a value): control characters in it must not reach the terminal. */
  mt_buf_t text = MT_BUF_INIT;
  mt_text_escape(&text, err->msg[0] ? err->msg : mt_strerror(rc), 1);
  fprintf(stderr, "moontask: %s\n", text.data != NULL ? text.data : err->msg);
  mt_buf_free(&text);
  return mt_exit_code(rc);
}

int mt_cli_database_url(mt_cli_t *cli, const char **url, mt_err_t *err) {
  static mt_embedded_t embedded;
  if (cli->cfg.database_url != NULL) {
    *url = cli->cfg.database_url;
    return 0;
  }
  int rc;
  if ((rc = mt_embedded_locate(&embedded, NULL, err)) != 0 ||
      (rc = mt_embedded_start(&embedded, err)) != 0)
    return rc;
  *url = embedded.url;
  return 0;
}

int mt_cli_connect(mt_cli_t *cli, mt_store_t **store, mt_err_t *err) {
  const char *url;
  int rc = mt_cli_database_url(cli, &url, err);
  if (rc != 0 || (rc = mt_store_open(store, url, "moontask cli", err)) != 0)
    return rc;
  if ((rc = mt_store_check_schema(*store, err)) != 0) {
    mt_store_free(*store);
    *store = NULL;
  }
  return rc;
}

mt_task_defaults_t mt_cli_task_defaults(const mt_cli_t *cli) {
  mt_task_defaults_t defaults = {.timeout = cli->cfg.task_timeout,
                                 .memory_limit = cli->cfg.memory_limit,
                                 .schemas_dir = cli->cfg.schemas_dir,
                                 .lib_dir = cli->cfg.lib_dir,
                                 .env = (const char *const *)cli->cfg.env};
  return defaults;
}

int mt_cli_registry(mt_cli_t *cli, mt_registry_t *reg, mt_err_t *err) {
  mt_task_defaults_t defaults = mt_cli_task_defaults(cli);
  return mt_lua_registry_load(cli->cfg.tasks_dir, &defaults, reg, err);
}

/* Pulls the global options out of argv wherever they stand, leaving the
 * subcommand and its own arguments in order. */
static int parse_globals(mt_cli_t *cli, int argc, char **argv, int *version,
                         mt_err_t *err) {
  cli->argv = calloc((size_t)argc + 1, sizeof *cli->argv);
  if (cli->argv == NULL)
    return MT_ENOMEM;
  for (int i = 1; i < argc; i++) {
    const char *v = NULL;
    int r;
    if ((r = mt_cli_option(argc, argv, &i, "--config", &v)) != 0)
      cli->ov.config_file = v;
    else if ((r = mt_cli_option(argc, argv, &i, "--database-url", &v)) != 0)
      cli->ov.database_url = v;
    else if ((r = mt_cli_option(argc, argv, &i, "--tasks", &v)) != 0)
      cli->ov.tasks_dir = v;
    else if ((r = mt_cli_option(argc, argv, &i, "--schemas", &v)) != 0)
      cli->ov.schemas_dir = v;
    else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
      cli->help = 1;
    else if (strcmp(argv[i], "--version") == 0)
      *version = 1;
    else
      cli->argv[cli->argc++] = argv[i];
    if (r < 0)
      return mt_err_set(err, MT_EINVAL, "%s needs a value", argv[i]);
  }
  return 0;
}

int mt_cli_main(int argc, char **argv) {
  mt_cli_t cli = {0};
  mt_err_t err = {{0}};
  int version = 0;
  int rc = parse_globals(&cli, argc, argv, &version, &err);
  if (rc != 0) {
    free(cli.argv);
    return mt_cli_fail(rc, &err);
  }
  /* Before the command and config.lua are looked at: a packaging check or
   * a bug report needs the version even where nothing else would load. */
  if (version) {
    printf("moontask %s\n", MT_VERSION);
    free(cli.argv);
    return 0;
  }
  const command_t *cmd = NULL;
  for (size_t i = 0; cli.argc > 0 && i < COMMAND_COUNT; i++)
    if (strcmp(cli.argv[0], commands[i].name) == 0)
      cmd = &commands[i];
  int code;
  if (cli.argc == 0) {
    usage(cli.help ? stdout : stderr);
    code = cli.help ? 0 : 2;
  } else if (cmd == NULL) {
    fprintf(stderr, "moontask: unknown command \"%s\"\n\n", cli.argv[0]);
    usage(stderr);
    code = 2;
  } else if (cli.help) {
    printf("usage: moontask %s\n\n%s", cmd->usage, cmd->help);
    code = 0;
  } else if ((rc = mt_config_load(&cli.cfg, &cli.ov, &err)) != 0) {
    code = mt_cli_fail(rc, &err);
  } else {
    mt_log_configure(cli.cfg.log_json ? MT_LOG_JSON : MT_LOG_LOGFMT,
                     (mt_log_level_t)cli.cfg.log_level);
    code = cmd->run(&cli);
  }
  mt_config_free(&cli.cfg);
  free(cli.argv);
  return code;
}
