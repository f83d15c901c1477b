/*
 * The command line: global options, subcommand dispatch and what every
 * subcommand shares (configuration, the task store, the task registry).
 * Each subcommand is a function taking the parsed context and returning a
 * process exit code: 0 ok, 1 runtime failure, 2 bad input. The store
 * (postgres/store.h) runs every statement; the commands parse, check and
 * print.
 */
#ifndef MT_CLI_H
#define MT_CLI_H

#include "common/error.h"
#include "config/config.h"
#include "lua/tasks.h"
#include "postgres/store.h"
#include "service/registry.h"

typedef struct mt_cli_s {
  mt_config_overrides_t ov;
  mt_config_t cfg;
  int argc; /* the subcommand's own arguments, argv[0] its name */
  char **argv;
  int help; /* --help was given */
} mt_cli_t;

/* The database URL to use: the configured one, or the embedded database's,
 * started if need be. The string lives as long as cli. */
int mt_cli_database_url(mt_cli_t *cli, const char **url, mt_err_t *err);

/* Opens the task store and checks that its schema is migrated. The caller
 * frees *store (mt_store_free). */
int mt_cli_connect(mt_cli_t *cli, mt_store_t **store, mt_err_t *err);

int mt_cli_registry(mt_cli_t *cli, mt_registry_t *reg, mt_err_t *err);

/* What a task file leaves out takes these, from the configuration. The
 * strings are cli's. */
mt_task_defaults_t mt_cli_task_defaults(const mt_cli_t *cli);

/* Prints "moontask: <message>" to stderr and returns the exit code for rc. */
int mt_cli_fail(int rc, const mt_err_t *err);

/* Takes the value of option `name` at argv[*i] ("--name V" or "--name=V").
 * Returns 1 if argv[*i] was that option (advancing *i past a separate
 * value), 0 if not, -1 if its value is missing. */
int mt_cli_option(int argc, char **argv, int *i, const char *name,
                  const char **value);

/* The arguments of a command whose only option is --json, from argv[first]
 * on: sets *json, or fails naming the first other argument ("<what>:
 * unexpected argument ..."). */
int mt_cli_json_only(const mt_cli_t *cli, int first, const char *what,
                     int *json, mt_err_t *err);

/* Prints the recurring schedules (of task, or all when NULL) with their
 * next and last fire in each schedule's zone: a table (under a RECURRING
 * heading, and only if there are any, when heading is set) or a JSON
 * array. */
int mt_cli_print_schedules(mt_store_t *store, const char *task, int json,
                           int heading, mt_err_t *err);

/* Starts the runtime's pruning thread (postgres/retention.h) with config
 * retention's periods and interval; *out stays NULL when every state is
 * kept for ever. Stop it with mt_retention_stop. */
int mt_cli_retention_start(mt_cli_t *cli, const char *url, mt_retention_t **out,
                           mt_err_t *err);

int mt_cmd_run(mt_cli_t *cli);
int mt_cmd_reload(mt_cli_t *cli);
int mt_cmd_schedule(mt_cli_t *cli);
int mt_cmd_validate(mt_cli_t *cli);
int mt_cmd_list(mt_cli_t *cli);
int mt_cmd_status(mt_cli_t *cli);
int mt_cmd_queues(mt_cli_t *cli);
int mt_cmd_show(mt_cli_t *cli);
int mt_cmd_cancel(mt_cli_t *cli);
int mt_cmd_retry(mt_cli_t *cli);
int mt_cmd_prune(mt_cli_t *cli);
int mt_cmd_migrate(mt_cli_t *cli);
int mt_cmd_check(mt_cli_t *cli);
int mt_cmd_db(mt_cli_t *cli);
int mt_cmd_try(mt_cli_t *cli);
int mt_cmd_new(mt_cli_t *cli);
int mt_cmd_cron(mt_cli_t *cli);
int mt_cmd_recurring(mt_cli_t *cli);

int mt_cli_main(int argc, char **argv);

#endif
