/* `moontask run`: wires configuration, backend, discovery and executor. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/backends.h"
#include "cli/cli.h"
#include "cli/reload.h"
#include "common/log.h"
#include "discovery/discovery.h"
#include "executor/executor.h"
#include "postgres/store.h"
#include "web/web.h"

static int parse_run_args(mt_cli_t *cli, int *drain, mt_err_t *err) {
  for (int i = 1; i < cli->argc; i++) {
    const char *v = NULL;
    int r = mt_cli_option(cli->argc, cli->argv, &i, "--workers", &v);
    if (r < 0)
      return mt_err_set(err, MT_EINVAL, "--workers needs a number");
    if (r > 0) {
      char *end;
      long n = strtol(v, &end, 10);
      if (*end != '\0' || n < 1 || n > MT_WORKERS_MAX)
        return mt_err_set(err, MT_EINVAL,
                          "--workers must be a number from 1 to %d, not "
                          "\"%s\"",
                          MT_WORKERS_MAX, v);
      cli->cfg.workers = (int)n;
    } else if (strcmp(cli->argv[i], "--drain") == 0) {
      *drain = 1;
    } else {
      return mt_err_set(err, MT_EINVAL, "run: unexpected argument \"%s\"",
                        cli->argv[i]);
    }
  }
  return 0;
}

/* Migrates (unless configured not to) or checks that the schema is current,
 * then brings the task files' schedules into the database: as
 * "<task>:<index>", the ones a file no longer declares removed, in one
 * transaction, so that runtimes starting together see one version or the
 * other, never a mix (mt_store_sync_file_schedules). Then config.lua's
 * queues and the task files' queues and priorities, which claims and
 * moontask.schedule read from the database. */
static int prepare_schema(mt_cli_t *cli, const char *url,
                          const mt_registry_t *reg, mt_err_t *err) {
  mt_store_t *store;
  int rc = mt_store_open(&store, url, "moontask migrate", err);
  if (rc != 0)
    return rc;
  rc = cli->cfg.migrate_on_run ? mt_store_migrate(store, NULL, err)
                               : mt_store_check_schema(store, err);
  if (rc == 0)
    rc = mt_store_sync_file_schedules(store, reg, err);
  if (rc == 0)
    rc = mt_store_sync_queues(store, cli->cfg.queues, cli->cfg.nqueues, err);
  if (rc == 0)
    rc = mt_store_sync_definitions(store, reg, err);
  mt_store_free(store);
  return rc;
}

int mt_cmd_run(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_reload_t version = {.cli = cli};
  char pid_file[4096] = "";
  int pid_fd = -1;
  mt_backend_t *backend = NULL;
  mt_discovery_t *discovery = NULL;
  mt_executor_t *executor = NULL;
  mt_web_t *web = NULL;
  mt_retention_t *retention = NULL;
  const char *url;
  int drain = 0, rc;
  char owner[128], host[64] = "localhost";

  /* The first version of the task files, as a snapshot: a hot reload
   * replaces it whole (cli/reload.h). */
  if ((rc = parse_run_args(cli, &drain, &err)) != 0 ||
      (rc = mt_reload_load(&version, &err)) != 0 ||
      (rc = mt_cli_database_url(cli, &url, &err)) != 0 ||
      (rc = prepare_schema(cli, url, &version.reg, &err)) != 0)
    goto done;
  version.url = url;
  const mt_registry_t *reg = &version.reg;

  /* The lease name shows in moontask.tasks.locked_by: which runtime holds
   * a task, and which one died holding it. The random part keeps two
   * runtimes apart that share a hostname and a pid (containers). */
  gethostname(host, sizeof host - 1);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  unsigned int seed = (unsigned int)(ts.tv_nsec ^ getpid());
  snprintf(owner, sizeof owner, "%s:%ld:%04x", host, (long)getpid(),
           (unsigned)rand_r(&seed) & 0xffff);

  const mt_config_aws_t *ca = cli->cfg.aws;
  const mt_backend_aws_conf_t aws = {
      .region = ca ? ca->region : NULL,
      .queue_url = ca ? ca->queue_url : NULL,
      .schedule_group = ca ? ca->schedule_group : NULL,
      .role_arn = ca ? ca->role_arn : NULL,
      .endpoint = ca ? ca->endpoint : NULL,
      .direct_within = ca ? ca->direct_within : 900,
      .keep_poison = ca ? ca->keep_poison : 0,
  };
  const mt_backend_conf_t bconf = {
      .kind = cli->cfg.backend,
      .database_url = url,
      .owner = owner,
      .lease_timeout = cli->cfg.lease_timeout,
      .poll_interval = cli->cfg.poll_interval,
      .workers = cli->cfg.workers,
      .registry = reg,
      .aws = &aws,
  };
  if ((rc = mt_backend_open(&bconf, &backend, &err)) != 0)
    goto done;
  version.backend = backend;
  /* A draining runtime runs what is there and exits: no reload. */
  mt_discovery_opts_t dopts = {
      .backend = backend,
      .workers = cli->cfg.workers,
      .poll_interval = cli->cfg.poll_interval,
      .lease_timeout = cli->cfg.lease_timeout,
      .shutdown_grace = cli->cfg.shutdown_grace,
      .drain = drain,
      .reload_prepare = drain ? NULL : mt_reload_prepare,
      .reload_apply = mt_reload_apply,
      .reload_arg = &version,
      .watch = drain ? NULL : version.folders,
  };
  if ((rc = mt_discovery_new(&discovery, &dopts, &err)) != 0)
    goto done;
  mt_executor_opts_t eopts = {
      .backend = backend,
      .tasks_dir = cli->cfg.tasks_dir,
      .workers = cli->cfg.workers,
      .defaults = mt_reload_defaults(&version),
      .wake = mt_discovery_wake,
      .wake_arg = discovery,
  };
  if ((rc = mt_executor_start(&executor, &eopts, &err)) != 0)
    goto done;
  version.executor = executor;
  /* A draining runtime leaves when the work is done: `moontask prune` is
   * how a one-off run prunes. */
  if (!drain && (rc = mt_cli_retention_start(cli, url, &retention, &err)) != 0)
    goto done;
  if (cli->cfg.http.listen != NULL) {
    const mt_web_opts_t wopts = {
        .listen = cli->cfg.http.listen,
        .admin_token = cli->cfg.http.admin_token,
        .database_url = url,
        .executor = executor,
        .workers = cli->cfg.workers,
        .describe_tasks = mt_reload_describe,
        .describe_arg = &version,
    };
    if ((rc = mt_web_start(&web, mt_discovery_loop(discovery), &wopts, &err)) !=
        0)
      goto done;
  }
  /* Without a pid file SIGHUP and the watcher still reload: a warning. */
  /* Until discovery handles SIGHUP, a reload must not end the runtime
   * (SIGHUP's default): it is ignored, and the files read at start are
   * the version. */
  signal(SIGHUP, SIG_IGN);
  if (!drain && mt_reload_pid_file(cli, pid_file, &pid_fd, &err) != 0) {
    mt_log(MT_LOG_WARN,
           "`moontask reload` will not find this "
           "runtime: %s",
           err.msg);
    pid_file[0] = '\0';
  }
  mt_log(MT_LOG_INFO, "%s: %zu task%s from %s/ (version %s), %d workers%s",
         owner, reg->count, reg->count == 1 ? "" : "s", cli->cfg.tasks_dir,
         mt_reload_version(&version), cli->cfg.workers,
         drain ? ", draining" : "");
  rc = mt_discovery_run(discovery, executor, &err);
done:
  mt_web_close(web); /* its handles close in the loop's last run, below */
  mt_retention_stop(retention);
  mt_executor_stop(executor);
  mt_discovery_free(discovery);
  mt_web_free(web);
  if (backend != NULL)
    backend->ops->free(backend);
  mt_reload_free(&version);
  if (*pid_file)
    unlink(pid_file);
  if (pid_fd >= 0)
    close(pid_fd);
  return rc ? mt_cli_fail(rc, &err) : 0;
}
