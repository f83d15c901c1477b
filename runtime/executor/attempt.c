#include "executor/attempt.h"

#include <stdio.h>

#include "common/clock.h"
#include "service/service.h"

/* The verdict on a failed attempt. Unknown tasks and invalid payloads fail
 * for good: running them again cannot change the answer. */
static mt_attempt_outcome_t judge(const mt_attempt_t *a) {
  if (a->abort != NULL && atomic_load(a->abort))
    return MT_ATTEMPT_ABORTED;
  if (a->rc == MT_ENOTASK || a->rc == MT_EPAYLOAD)
    return MT_ATTEMPT_PERMANENT;
  return MT_ATTEMPT_FAILED;
}

/* One message however the time ran out: in Lua, in SQL, after the handler
 * returned, or in its COMMIT. */
static void name_timeout(mt_attempt_t *a) {
  if (a->rc == MT_ETIMEDOUT && !(a->abort && atomic_load(a->abort)))
    mt_err_set(&a->err, MT_ETIMEDOUT, "task timed out after %gs", a->timeout);
}

/* A handler that caught a SQL error and returned anyway fails for that
 * error, whatever its COMMIT said later: say which error aborted it. */
static void name_sql_failure(mt_attempt_t *a) {
  a->rc = mt_err_set(&a->err, MT_EDB,
                     "the handler returned after a SQL error aborted its "
                     "transaction: %s",
                     a->tx.first_error.msg);
}

void mt_attempt_fail(mt_attempt_t *a, int rc, const mt_err_t *why) {
  a->rc = rc;
  if (why != &a->err)
    a->err = *why;
  if (a->rc != MT_ETIMEDOUT && a->tx.sql_failed)
    name_sql_failure(a);
  name_timeout(a);
  a->outcome = judge(a);
}

void mt_attempt_run(mt_attempt_t *a, mt_lua_worker_t *w, const mt_task_t *task,
                    const mt_attempt_env_t *env) {
  const mt_registry_t *reg = mt_lua_worker_registry(w);
  a->abort = env->abort;
  a->def = mt_registry_find(reg, task->name);
  a->timeout = a->def != NULL ? a->def->timeout : env->default_timeout;
  const mt_tx_opts_t opts = {
      .task_id = task->id,
      .registry = reg,
      .deadline = mt_now() + a->timeout,
      .abort = env->abort,
      .joined = env->joined,
      .version = mt_task_version(a->def),
  };
  mt_tx_t *tx = env->session->ops->begin(env->session, &opts);
  a->err.msg[0] = '\0';
  a->snooze = 0;
  a->rc =
      a->def != NULL ? mt_service_validate(a->def, task->payload, &a->err) : 0;
  if (a->rc == 0)
    a->rc = mt_lua_worker_run(w, task, tx, &a->snooze, &a->err);
  if (a->rc == 0 && mt_now() > opts.deadline)
    a->rc = MT_ETIMEDOUT; /* it returned, but too late to count */
  env->session->ops->tx_state(env->session, &a->tx);
  name_timeout(a);
  if (a->rc == 0 && a->tx.aborted)
    /* Its COMMIT would fail: the transaction is still aborted. (A handler
     * that rolled back to a savepoint after the error may commit.) */
    name_sql_failure(a);
  a->outcome = a->rc == 0 ? MT_ATTEMPT_DONE : judge(a);
}
