/*
 * TaskDiscovery: the runtime's event loop. It decides when to look for due
 * tasks (a wake-up from the backend, a worker becoming free, the timer of the
 * earliest future task, or the fallback poll), claims them in batches for
 * the executor, acknowledges tasks completed without a transaction, keeps
 * this runtime's leases alive, and runs the shutdown sequence on SIGTERM or
 * SIGINT. Only this loop talks to the backend, so idle workers never poll.
 */
#ifndef MT_DISCOVERY_H
#define MT_DISCOVERY_H

#include "backend.h"
#include "common/error.h"
#include "executor/executor.h"

typedef struct mt_discovery_s mt_discovery_t;

typedef struct mt_discovery_opts_s {
  mt_backend_t *backend;
  int workers;
  double poll_interval;
  double lease_timeout;
  double shutdown_grace;
  int drain; /* exit once nothing is due or running */
} mt_discovery_opts_t;

int mt_discovery_new(mt_discovery_t **out, const mt_discovery_opts_t *opts,
                     mt_err_t *err);

/* For mt_executor_opts_t.wake: safe to call from any thread. */
void mt_discovery_wake(void *discovery);

/* Runs until drained or shut down. Returns 0 on a clean exit. */
int mt_discovery_run(mt_discovery_t *d, mt_executor_t *ex, mt_err_t *err);

void mt_discovery_free(mt_discovery_t *d);

#endif
