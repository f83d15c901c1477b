/*
 * Runtime configuration: the defaults, config.lua, the environment and the
 * command line, merged in that order of increasing precedence.
 *
 * config.lua is a Lua chunk returning a table; it runs in a small sandbox that
 * offers os.getenv so that it can read secrets from the environment. The
 * resulting mt_config_t is plain C and owns its strings, its aws table
 * included; mt_config_free() releases them.
 *
 * The aws table is read and checked whatever the backend, so that a typo in
 * it is found before the day it is switched on. Only its form is checked
 * here (a URL is a URL, an ARN starts with "arn:"); whether the queue and
 * the schedule group exist is `moontask check`'s question, since asking
 * would take the network on every command.
 */
#ifndef MT_CONFIG_H
#define MT_CONFIG_H

#include <stddef.h>

#include "common/error.h"
#include "service/registry.h"

/* The most worker threads a runtime may have (config and --workers), and
 * how many it has when neither says (a bare number: `moontask run --help`
 * prints it). Each worker is a connection and a Lua state of about 1 MB.
 * Eight is where row-inserting tasks stop gaining on a 2-core machine
 * (4, 8 and 16 workers: about 3.6k, 5.2k and 5.4k tasks/s), it leaves
 * twice the concurrency of 4 to handlers that wait on the network, and a
 * runtime's 11 connections (the workers', discovery's, the
 * acknowledgements' and the pruner's) are about a tenth of PostgreSQL's
 * default max_connections, room for several runtimes beside the
 * application. */
#define MT_WORKERS_MAX 1024
#define MT_WORKERS_DEFAULT 8

/* The most names config env may list. */
#define MT_CONFIG_ENV_MAX 1000

/* The `aws = {...}` table: where the AWS backend's queue and schedules are.
 * Every string is owned by the configuration; NULL means not given. */
typedef struct mt_config_aws_s {
  /* aws.region, else $AWS_REGION, else $AWS_DEFAULT_REGION, read when the
   * configuration is loaded; NULL when none of them is set (the AWS client
   * refuses to start then, and `moontask check` says so). */
  char *region;
  /* Where region came from, for messages: "aws.region", "AWS_REGION" or
   * "AWS_DEFAULT_REGION"; a static string, NULL with region. */
  const char *region_source;
  char *queue_url;      /* http(s)://host/<account>/<name> */
  char *schedule_group; /* "default" when not given */
  char *role_arn;       /* the role EventBridge assumes to send to the queue */
  char *endpoint;       /* every service at this URL; NULL: AWS's own */
  double direct_within; /* seconds; sooner tasks go straight to SQS */
  int keep_poison;      /* aws.poison = "keep" */
} mt_config_aws_t;

/* The `retention = {...}` table: how long finished tasks stay in
 * moontask.tasks, in seconds since they finished, by final state. A
 * negative period (retention.completed = false) keeps them for ever. */
#define MT_RETENTION_FOREVER (-1.0)
typedef struct mt_config_retention_s {
  double completed; /* default 7 days */
  double failed;    /* default 30 days: failures are read after the fact */
  double cancelled; /* default 7 days */
  /* Seconds between a runtime's prunes (default 60), each one jittered;
   * small values are for tests, the periods are what bound the table. */
  double interval;
} mt_config_retention_t;

/* The `http = {...}` table: the operators' endpoint (web/web.h). */
typedef struct mt_config_http_s {
  char *listen;      /* "host:port"; NULL: no endpoint */
  char *admin_token; /* NULL: the status page is read-only */
} mt_config_http_t;

/* The shortest admin token accepted: a guessable one would open retry and
 * cancel to anyone who can reach the port. */
#define MT_ADMIN_TOKEN_MIN 16

/* config.lua's `queues = {...}` table is an array of mt_queue_def_t
 * (service/registry.h), by name. */

typedef struct mt_config_s {
  char *config_file;  /* the file that was loaded, NULL when none */
  char *database_url; /* NULL: the embedded database */
  char *backend;      /* "postgres" or "aws" */
  char *tasks_dir;
  char *schemas_dir;
  /* Where require("lib.x") looks: config lib_dir; NULL: <tasks_dir>/lib,
   * so that --tasks carries its modules along. */
  char *lib_dir;
  /* The environment variables handlers may read with ctx.env: config env,
   * a NULL-terminated list of names; NULL when none is allowed. */
  char **env;
  int workers;
  double poll_interval;
  double lease_timeout;
  double task_timeout;
  double shutdown_grace;
  size_t memory_limit;  /* bytes per Lua state; a task file may override */
  int migrate_on_run;   /* `run` migrates first unless this is 0 */
  mt_config_aws_t *aws; /* NULL: config.lua has no aws table */
  mt_config_retention_t retention;
  mt_config_http_t http;
  mt_queue_def_t *queues; /* config queues, by name; NULL when none */
  size_t nqueues;
  int log_json;  /* log_format = "json" (default "logfmt") */
  int log_level; /* an mt_log_level_t (common/log.h); default info */
} mt_config_t;

/* Command-line values that override the file; NULL/0 means "not given". */
typedef struct mt_config_overrides_s {
  const char *config_file;
  const char *database_url;
  const char *tasks_dir;
  const char *schemas_dir;
  int workers;
} mt_config_overrides_t;

/* Fills *cfg. Returns 0, or MT_ECONFIG with a message naming the file and
 * the key (or the environment variable) that is wrong, or MT_ENOMEM. On
 * error *cfg may hold part of what was read: free it either way. */
int mt_config_load(mt_config_t *cfg, const mt_config_overrides_t *ov,
                   mt_err_t *err);
/* Frees what cfg owns and zeroes it; accepts NULL. */
void mt_config_free(mt_config_t *cfg);

#endif
