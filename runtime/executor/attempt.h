/*
 * The task-run policy: how one attempt of a task runs and what it came to.
 * The executor's workers and `moontask try` both run handlers through it, so
 * that a spec sees the same timeout, the same validation and the same
 * verdict as the runtime.
 *
 * The policy decides:
 *   - the timeout: the task definition's, else the configured task_timeout;
 *   - the transaction: the handler gets the session's transaction (begun
 *     lazily, or joining one the caller opened);
 *   - validation: a payload that does not match the task's schema fails
 *     before its handler runs (the SQL function cannot see task files, so a
 *     row written by hand may carry anything);
 *   - the outcome (mt_attempt_outcome_t), including the handler that returns
 *     too late or after a SQL error aborted its transaction.
 * It does not end the transaction: the executor commits it through the
 * session (which marks the task completed with it, or snoozed when the
 * handler returned ctx.snooze) or rolls back and records the failure
 * outside it; `try` rolls back to a savepoint instead.
 */
#ifndef MT_ATTEMPT_H
#define MT_ATTEMPT_H

#include <stdatomic.h>

#include "backend.h"
#include "common/error.h"
#include "lua/worker.h"
#include "task.h"

typedef enum mt_attempt_outcome_e {
  MT_ATTEMPT_DONE,      /* the handler returned in time; tx may be committed */
  MT_ATTEMPT_FAILED,    /* failed; retried while attempts remain */
  MT_ATTEMPT_PERMANENT, /* failed in a way no retry can fix: unknown task,
                           payload that is not valid */
  MT_ATTEMPT_ABORTED,   /* stopped by the runtime's shutdown: not the task's
                           fault, so it goes back unstarted */
} mt_attempt_outcome_t;

typedef struct mt_attempt_s {
  atomic_int *abort;        /* the runtime's shutdown flag */
  const mt_task_def_t *def; /* the definition it ran, or NULL: unknown */
  double timeout;           /* seconds */
  mt_tx_state_t tx;         /* how far the handler's transaction got */
  mt_attempt_outcome_t outcome;
  /* DONE: the seconds of the ctx.snooze(seconds) the handler returned, for
   * which its task goes back to `scheduled` instead of completing (the
   * session's snooze); 0: it completes. */
  double snooze;
  int rc;       /* 0, or the error code behind the outcome */
  mt_err_t err; /* why, when rc != 0; the message to record */
} mt_attempt_t;

/* Where an attempt runs. */
typedef struct mt_attempt_env_s {
  mt_session_t *session;  /* the worker's; the handler's tx is its */
  int joined;             /* the session has a transaction open for it */
  double default_timeout; /* task_timeout, for a task with no definition */
  atomic_int *abort;      /* the runtime's shutdown flag */
} mt_attempt_env_t;

/* Runs one attempt of task on w and fills a. */
void mt_attempt_run(mt_attempt_t *a, mt_lua_worker_t *w, const mt_task_t *task,
                    const mt_attempt_env_t *env);

/* Turns a DONE attempt into a failure after the fact (its commit failed):
 * the error that failed it is rc/why. */
void mt_attempt_fail(mt_attempt_t *a, int rc, const mt_err_t *why);

#endif
