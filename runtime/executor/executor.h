/*
 * TaskExecutor: a pool of worker threads, each owning one Lua state and one
 * backend session (backend.h: its connection and the handler's
 * transaction), fed from a queue that discovery fills. Each task runs in a
 * transaction of its own, under the task-run policy of executor/attempt.h;
 * its failure, retry and dead-letter states are written outside that
 * transaction, after the rollback, so they survive it.
 *
 * Tasks whose handler never opened a transaction are not written one by one:
 * their ids are handed back to discovery (mt_executor_take_done), which marks
 * them completed in batches. Discovery owns the loop; the executor only
 * wakes it through the `wake` callback.
 */
#ifndef MT_EXECUTOR_H
#define MT_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "common/error.h"
#include "lua/tasks.h"
#include "task.h"

typedef struct mt_executor_s mt_executor_t;

typedef struct mt_executor_opts_s {
  mt_backend_t *backend; /* each worker's session comes from it */
  const char *tasks_dir;
  int workers;
  mt_task_defaults_t defaults;
  void (*wake)(void *arg); /* called from workers when a task ends */
  void *wake_arg;
} mt_executor_opts_t;

/* Starts the workers; each loads every task and connects before this
 * returns, so a broken script or an unreachable database fails here. */
int mt_executor_start(mt_executor_t **out, const mt_executor_opts_t *opts,
                      mt_err_t *err);

/* Queues a list of claimed tasks (linked by ->next); takes ownership. */
void mt_executor_submit(mt_executor_t *ex, mt_task_t *tasks);

/* Tasks queued and not yet started, those running, and the workers that
 * have a database connection (only they take tasks: claim for them). */
void mt_executor_load(mt_executor_t *ex, int *queued, int *running,
                      int *online);

/* How long a task has been keeping a worker, lately: a moving average of
 * the seconds from a worker taking a task to its being free again, over
 * the last few dozen tasks; 0 until a task has run. Discovery claims ahead
 * by it (discovery.c, prefetch). */
double mt_executor_task_seconds(mt_executor_t *ex);

/* Workers wake discovery (opts.wake) after a task when fewer than `queued`
 * tasks wait, besides when it must acknowledge, see the executor idle, or
 * stop: discovery passes the mark below which it claims. Until it does,
 * every task's end wakes it. */
void mt_executor_wake_below(mt_executor_t *ex, int queued);

/* Removes and returns the claimed tasks that no worker could run because
 * none had a connection. The caller releases them unstarted, so that their
 * attempt does not count, and frees them. */
mt_task_t *mt_executor_take_given_back(mt_executor_t *ex);

/* Puts tasks taken for release (mt_executor_take_given_back,
 * mt_executor_take_queued_after) back, when they could not be released
 * yet: they stay held (and leased), given back, until a later try. */
void mt_executor_give_back(mt_executor_t *ex, mt_task_t *tasks);

/* Moves the tasks completed without a transaction (their ids, and the
 * versions that ran them) into *done (caller frees). Returns their
 * number. */
size_t mt_executor_take_done(mt_executor_t *ex, mt_done_t **done);

/* The ids of every task this executor holds: queued, running, given back,
 * or finished but not yet acknowledged. Their leases are the ones to keep
 * alive. Returns their number, or (size_t)-1 without memory; *ids is the
 * caller's to free. */
size_t mt_executor_held(mt_executor_t *ex, int64_t **ids);

/* Removes and returns the tasks still queued (for release at shutdown). */
mt_task_t *mt_executor_take_queued(mt_executor_t *ex);

/* Removes and returns the queued tasks after the first `keep` (the last
 * that would run), *n of them. Discovery releases them when they were
 * claimed ahead at a pace the workers no longer keep (discovery.c, shed). */
mt_task_t *mt_executor_take_queued_after(mt_executor_t *ex, int keep, int *n);

/* Makes running handlers stop: Lua raises, SQL is cancelled; their tasks are
 * rolled back and released, not counted as failed attempts. */
void mt_executor_abort(mt_executor_t *ex);

/* A hot reload: each worker loads the tasks again with defaults (whose
 * snapshot, defaults->sources, holds the validated version) at its next
 * idle point, between two tasks; tasks in flight finish on the version
 * they started with. The strings in defaults must outlive the executor;
 * the snapshot is referenced. A task claimed for a name the new version
 * lacks is given back unstarted. */
void mt_executor_reload(mt_executor_t *ex, const mt_task_defaults_t *defaults);

/* Stops the workers once their current tasks end, and frees everything. */
void mt_executor_stop(mt_executor_t *ex);

#endif
