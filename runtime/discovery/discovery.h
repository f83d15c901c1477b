/*
 * TaskDiscovery: the runtime's event loop. It decides when to look for due
 * tasks (a wake-up from the backend, a worker becoming free, the timer of the
 * earliest future task, or the fallback poll), claims them in batches for
 * the executor, acknowledges tasks completed without a transaction, keeps
 * this runtime's leases alive, runs the shutdown sequence on SIGTERM or
 * SIGINT, and starts a hot reload on SIGHUP or when the task files change.
 * Only this loop talks to the backend, so idle workers never poll.
 */
#ifndef MT_DISCOVERY_H
#define MT_DISCOVERY_H

#include <uv.h>

#include "backend.h"
#include "common/error.h"
#include "executor/executor.h"

typedef struct mt_discovery_s mt_discovery_t;

/* Changes to the watched folders closer together than this are one change
 * (one save of several files): a reload reads the files again until two
 * reads this far apart agree (cli/reload.c), so that it never takes a save
 * half done. */
#define MT_RELOAD_SETTLE_MS 50

typedef struct mt_discovery_opts_s {
  mt_backend_t *backend;
  int workers;
  double poll_interval;
  double lease_timeout;
  double shutdown_grace;
  int drain; /* exit once nothing is due or running */
  /* Hot reload, on SIGHUP or a change under the watched folders (NULL
   * reload_prepare: none). prepare runs off the loop, in libuv's thread
   * pool (it reads and checks the task files, which may take seconds);
   * apply runs on the loop with what prepare returned, and frees it (with
   * apply 0, after the run, it only frees it). One reload at a time;
   * changes during one make another afterwards. */
  void *(*reload_prepare)(void *arg);
  void (*reload_apply)(void *arg, void *prepared, int apply);
  void *reload_arg;
  const char *const *watch; /* folders, NULL-terminated; NULL: none */
} mt_discovery_opts_t;

int mt_discovery_new(mt_discovery_t **out, const mt_discovery_opts_t *opts,
                     mt_err_t *err);

/* The loop, for what else a runtime serves on it (web/web.h). It runs
 * inside mt_discovery_run; whatever is added must be closed after that
 * returns and before mt_discovery_free. */
uv_loop_t *mt_discovery_loop(mt_discovery_t *d);

/* For mt_executor_opts_t.wake: safe to call from any thread. */
void mt_discovery_wake(void *discovery);

/* Runs until drained or shut down. Returns 0 on a clean exit. */
int mt_discovery_run(mt_discovery_t *d, mt_executor_t *ex, mt_err_t *err);

void mt_discovery_free(mt_discovery_t *d);

#endif
