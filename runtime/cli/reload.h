/*
 * Hot reload for `moontask run`: the version of the task files a runtime
 * runs (a snapshot of the tasks, schemas and lib folders, lua/sources.h,
 * and the definitions loaded from it), and the two halves of replacing it
 * that discovery calls (discovery.h): prepare reads and checks a new
 * snapshot off the loop and brings the task files' recurring schedules in
 * line; apply, on the loop, swaps it in only if it is whole: the backend
 * claims the new names, each worker loads the new snapshot at its next idle
 * point, and the change is logged with versions. A refused version leaves
 * the running one in place and says why, file and line.
 *
 * `moontask reload` reaches the runtimes started from the same config.lua
 * (or, without one, the same working folder) through their pid files, in
 * a private folder under $XDG_RUNTIME_DIR or /tmp: SIGHUP each.
 */
#ifndef MT_CLI_RELOAD_H
#define MT_CLI_RELOAD_H

#include "backend.h"
#include "cli/cli.h"
#include "executor/executor.h"
#include "service/registry.h"

typedef struct mt_reload_s {
  mt_cli_t *cli;
  const char *url;
  mt_backend_t *backend;        /* set before the run */
  mt_executor_t *executor;      /* likewise */
  mt_registry_t reg;            /* the running version's definitions */
  struct mt_sources_s *sources; /* the running version */
  /* The folders whose files make a version, NULL-terminated: tasks,
   * schemas and the lib folder (mt_lua_lib_dir); what the runtime
   * watches. Set by mt_reload_load. */
  const char *folders[4];
  char lib_dir[4096];
  /* Why the last reload was refused, file and line; empty once a reload
   * takes effect. Read and written on the loop thread. */
  char refused[MT_ERR_MAX];
} mt_reload_t;

/* Reads and loads the first version (r->cli and r->url set). */
int mt_reload_load(mt_reload_t *r, mt_err_t *err);

/* The task defaults of the running version: the CLI's, with its
 * snapshot. */
mt_task_defaults_t mt_reload_defaults(const mt_reload_t *r);
void mt_reload_free(mt_reload_t *r);

/* The running version's hash, for logs. */
const char *mt_reload_version(const mt_reload_t *r);

/* The running version as JSON, for the status page (web/web.h's
 * describe_tasks, with arg an mt_reload_t, on the loop thread) and
 * `moontask status`: {version, tasks: [{name, version, file}], error: the
 * last refusal, or null}; version is null when none loaded. Malloc'd; NULL
 * without memory. */
char *mt_reload_describe(void *arg);

/* discovery.h's reload_prepare and reload_apply, with arg an
 * mt_reload_t. */
void *mt_reload_prepare(void *arg);
void mt_reload_apply(void *arg, void *prepared, int apply);

/* Writes this process's pid file and holds a lock on it for as long as
 * *fd stays open (close it after removing the file at exit); *path
 * receives its name. `moontask reload` signals only the pids of files
 * whose lock is held: a file left by a runtime that died names a pid that
 * another process may have by now. */
int mt_reload_pid_file(const mt_cli_t *cli, char path[4096], int *fd,
                       mt_err_t *err);

#endif
