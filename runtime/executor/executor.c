#include "executor/executor.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "executor/task_tx.h"
#include "lua/worker.h"
#include "postgres/pg.h"
#include "postgres/pg_backend.h"
#include "service/service.h"

/* The longest a retry waits, however many attempts came before. */
#define MAX_RETRY_DELAY 3600.0

typedef struct worker_s {
  mt_executor_t *ex;
  pthread_t thread;
  int index;
  mt_lua_worker_t *lua;
  PGconn *conn;
  unsigned int seed;
  int started;
  int64_t current; /* the task being run, 0 when idle; under ex->lock */
} worker_t;

struct mt_executor_s {
  mt_executor_opts_t opts;
  worker_t *workers;
  pthread_mutex_t lock;
  pthread_cond_t ready;
  mt_task_t *head, *tail; /* the queue */
  int queued, running;
  int64_t *done;
  size_t done_count, done_cap;
  int stopping;
  atomic_int abort;
};

/* Records a failed attempt outside the task's transaction: back to
 * `scheduled` with run_at pushed back, or `failed` once attempts are used up
 * (or at once when `permanent`). The NOTIFY wakes a runtime in time for the
 * retry. */
static const char fail_sql[] =
    "WITH t AS (\n"
    "  UPDATE moontask.tasks SET\n"
    "    state = CASE WHEN $6::bool OR attempts >= $3::int THEN 'failed'\n"
    "                 ELSE 'scheduled' END,\n"
    "    max_attempts = $3::int,\n"
    "    run_at = CASE WHEN $6::bool OR attempts >= $3::int THEN run_at\n"
    "                  ELSE now() + $4::float8 * interval '1 second' END,\n"
    "    finished_at = CASE WHEN $6::bool OR attempts >= $3::int THEN now() END,\n"
    "    last_error = $2, locked_by = NULL, locked_until = NULL\n"
    "  WHERE id = $1 AND state = 'running' AND locked_by = $5\n"
    "  RETURNING state, run_at)\n"
    "SELECT pg_notify('moontask_tasks', extract(epoch FROM run_at)::text)\n"
    "  FROM t WHERE state = 'scheduled'";

static double retry_delay(const mt_task_def_t *def, int attempt,
                          unsigned int *seed) {
  double delay = def->retry_delay * pow(2, attempt - 1);
  if (delay > MAX_RETRY_DELAY)
    delay = MAX_RETRY_DELAY;
  /* +-25% jitter keeps tasks that failed together from retrying together. */
  double jitter = 0.75 + 0.5 * ((double)rand_r(seed) / RAND_MAX);
  return delay * jitter;
}

static void record_outcome(worker_t *w, const char *sql, int nparams,
                           const char *const *params) {
  mt_err_t err;
  PGresult *res = mt_pg_exec(w->conn, sql, nparams, params, &err);
  if (res == NULL)
    fprintf(stderr, "moontask: worker %d: cannot record task state: %s\n",
            w->index, err.msg);
  PQclear(res);
}

static void record_failure(worker_t *w, const mt_task_t *task,
                           const mt_task_def_t *def, int permanent,
                           const char *message) {
  char id[32], max[16], delay[32];
  int max_attempts = task->max_attempts > 0 ? task->max_attempts
                     : def != NULL          ? def->max_attempts
                                            : MT_DEFAULT_MAX_ATTEMPTS;
  snprintf(id, sizeof id, "%" PRId64, task->id);
  snprintf(max, sizeof max, "%d", max_attempts);
  snprintf(delay, sizeof delay, "%.3f",
           def != NULL ? retry_delay(def, task->attempt, &w->seed) : 0);
  const char *params[] = {id,      message, max,
                          delay,   w->ex->opts.owner,
                          permanent ? "true" : "false"};
  record_outcome(w, fail_sql, 6, params);
  fprintf(stderr, "moontask: task %s #%s attempt %d/%d failed: %s\n",
          task->name, id, task->attempt, max_attempts, message);
}

static void release_task(worker_t *w, const mt_task_t *task) {
  char ids[40];
  snprintf(ids, sizeof ids, "{%" PRId64 "}", task->id);
  const char *params[] = {ids, w->ex->opts.owner};
  record_outcome(w, mt_pg_release_sql, 2, params);
}

static void add_done(mt_executor_t *ex, int64_t id) {
  pthread_mutex_lock(&ex->lock);
  if (ex->done_count == ex->done_cap) {
    size_t cap = ex->done_cap ? ex->done_cap * 2 : 256;
    int64_t *done = realloc(ex->done, cap * sizeof *done);
    if (done == NULL) {
      pthread_mutex_unlock(&ex->lock);
      /* Without memory the task stays `running`; its lease lapses and it
       * runs again, which at-least-once delivery allows. */
      return;
    }
    ex->done = done;
    ex->done_cap = cap;
  }
  ex->done[ex->done_count++] = id;
  pthread_mutex_unlock(&ex->lock);
}

/* Makes sure the worker has a live connection in a clean state (no open
 * transaction, no pipeline left over from a failure), reconnecting if not:
 * whatever a failed task left behind must not leak into the next one. */
static int ensure_connection(worker_t *w, mt_err_t *err) {
  if (w->conn != NULL && PQstatus(w->conn) == CONNECTION_OK &&
      PQtransactionStatus(w->conn) == PQTRANS_IDLE &&
      PQpipelineStatus(w->conn) == PQ_PIPELINE_OFF)
    return 0;
  PQfinish(w->conn);
  char app[64];
  snprintf(app, sizeof app, "moontask worker %d", w->index);
  w->conn = mt_pg_connect(w->ex->opts.database_url, app, err);
  return w->conn != NULL ? 0 : MT_EDB;
}

static void run_task(worker_t *w, mt_task_t *task) {
  mt_executor_t *ex = w->ex;
  mt_err_t err;
  if (ensure_connection(w, &err) != 0) {
    /* Leave the task to its lease: it returns once the lease lapses. */
    fprintf(stderr, "moontask: worker %d: %s\n", w->index, err.msg);
    return;
  }
  const mt_task_def_t *def =
      mt_registry_find(mt_lua_worker_registry(w->lua), task->name);
  mt_tx_t tx = {
      .conn = w->conn,
      .owner = ex->opts.owner,
      .registry = mt_lua_worker_registry(w->lua),
      .task_id = task->id,
      .deadline = mt_now() + (def ? def->timeout : ex->opts.defaults.timeout),
      .abort = &ex->abort,
  };
  /* A payload that reached the table without the TaskService's check (the
   * SQL function cannot see task files) fails at once, before its handler
   * ever runs. */
  int rc = def != NULL ? mt_service_validate(def, task->payload, &err) : 0;
  if (rc == 0)
    rc = mt_lua_worker_run(w->lua, task, &tx, &err);
  if (rc == 0 && mt_now() > tx.deadline)
    rc = MT_ETIMEDOUT; /* it returned, but too late to count */
  if (rc == 0 && tx.begun) {
    rc = mt_tx_commit(&tx, &err);
    if (rc != 0 && tx.sql_failed)
      mt_err_set(&err, rc,
                 "the handler returned after a SQL error aborted its "
                 "transaction: %s",
                 tx.first_error.msg);
  } else if (rc == 0) {
    add_done(ex, task->id);
    return;
  }
  if (rc == 0)
    return;
  mt_tx_rollback(&tx);
  if (atomic_load(&ex->abort)) {
    release_task(w, task);
  } else if (rc == MT_ETIMEDOUT) {
    char msg[128];
    snprintf(msg, sizeof msg, "task timed out after %gs",
             def ? def->timeout : ex->opts.defaults.timeout);
    record_failure(w, task, def, 0, msg);
  } else {
    record_failure(w, task, def, rc == MT_ENOTASK || rc == MT_EPAYLOAD,
                   err.msg);
  }
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  mt_executor_t *ex = w->ex;
  pthread_mutex_lock(&ex->lock);
  for (;;) {
    while (ex->head == NULL && !ex->stopping)
      pthread_cond_wait(&ex->ready, &ex->lock);
    if (ex->head == NULL)
      break;
    mt_task_t *task = ex->head;
    ex->head = task->next;
    if (ex->head == NULL)
      ex->tail = NULL;
    ex->queued--;
    ex->running++;
    w->current = task->id;
    pthread_mutex_unlock(&ex->lock);

    run_task(w, task);
    mt_task_free(task);

    pthread_mutex_lock(&ex->lock);
    w->current = 0;
    ex->running--;
    pthread_mutex_unlock(&ex->lock);
    ex->opts.wake(ex->opts.wake_arg);
    pthread_mutex_lock(&ex->lock);
  }
  pthread_mutex_unlock(&ex->lock);
  return NULL;
}

int mt_executor_start(mt_executor_t **out, const mt_executor_opts_t *opts,
                      mt_err_t *err) {
  int rc = 0;
  mt_executor_t *ex = calloc(1, sizeof *ex);
  if (ex == NULL)
    return MT_ENOMEM;
  ex->opts = *opts;
  pthread_mutex_init(&ex->lock, NULL);
  pthread_cond_init(&ex->ready, NULL);
  atomic_init(&ex->abort, 0);
  ex->workers = calloc((size_t)opts->workers, sizeof *ex->workers);
  if (ex->workers == NULL) {
    rc = MT_ENOMEM;
    goto fail;
  }
  for (int i = 0; i < opts->workers; i++) {
    worker_t *w = &ex->workers[i];
    w->ex = ex;
    w->index = i;
    w->seed = (unsigned int)time(NULL) ^ (unsigned int)(i * 2654435761u);
    if ((rc = mt_lua_worker_new(&w->lua, opts->tasks_dir, &opts->defaults,
                                err)) != 0 ||
        (rc = ensure_connection(w, err)) != 0)
      goto fail;
  }
  for (int i = 0; i < opts->workers; i++) {
    if (pthread_create(&ex->workers[i].thread, NULL, worker_main,
                       &ex->workers[i]) != 0) {
      rc = mt_err_set(err, MT_ESYS, "cannot start worker thread %d", i);
      goto fail;
    }
    ex->workers[i].started = 1;
  }
  *out = ex;
  return 0;
fail:
  mt_executor_stop(ex);
  return rc;
}

void mt_executor_submit(mt_executor_t *ex, mt_task_t *tasks) {
  if (tasks == NULL)
    return;
  int n = 0;
  mt_task_t *last = tasks;
  for (mt_task_t *t = tasks; t != NULL; t = t->next) {
    last = t;
    n++;
  }
  pthread_mutex_lock(&ex->lock);
  if (ex->tail != NULL)
    ex->tail->next = tasks;
  else
    ex->head = tasks;
  ex->tail = last;
  ex->queued += n;
  pthread_cond_broadcast(&ex->ready);
  pthread_mutex_unlock(&ex->lock);
}

void mt_executor_load(mt_executor_t *ex, int *queued, int *running) {
  pthread_mutex_lock(&ex->lock);
  *queued = ex->queued;
  *running = ex->running;
  pthread_mutex_unlock(&ex->lock);
}

size_t mt_executor_take_done(mt_executor_t *ex, int64_t **ids) {
  pthread_mutex_lock(&ex->lock);
  size_t n = ex->done_count;
  *ids = ex->done;
  ex->done = NULL;
  ex->done_count = ex->done_cap = 0;
  pthread_mutex_unlock(&ex->lock);
  return n;
}

size_t mt_executor_held(mt_executor_t *ex, int64_t **ids) {
  pthread_mutex_lock(&ex->lock);
  size_t cap = (size_t)ex->queued + (size_t)ex->opts.workers + ex->done_count;
  size_t n = 0;
  int64_t *held = malloc((cap ? cap : 1) * sizeof *held);
  if (held != NULL) {
    for (mt_task_t *t = ex->head; t != NULL; t = t->next)
      held[n++] = t->id;
    for (int i = 0; i < ex->opts.workers; i++)
      if (ex->workers[i].current != 0)
        held[n++] = ex->workers[i].current;
    for (size_t i = 0; i < ex->done_count; i++)
      held[n++] = ex->done[i];
  }
  pthread_mutex_unlock(&ex->lock);
  *ids = held;
  return held != NULL ? n : (size_t)-1;
}

mt_task_t *mt_executor_take_queued(mt_executor_t *ex) {
  pthread_mutex_lock(&ex->lock);
  mt_task_t *tasks = ex->head;
  ex->head = ex->tail = NULL;
  ex->queued = 0;
  pthread_mutex_unlock(&ex->lock);
  return tasks;
}

void mt_executor_abort(mt_executor_t *ex) { atomic_store(&ex->abort, 1); }

void mt_executor_stop(mt_executor_t *ex) {
  if (ex == NULL)
    return;
  pthread_mutex_lock(&ex->lock);
  ex->stopping = 1;
  pthread_cond_broadcast(&ex->ready);
  pthread_mutex_unlock(&ex->lock);
  for (int i = 0; ex->workers != NULL && i < ex->opts.workers; i++) {
    worker_t *w = &ex->workers[i];
    if (w->started)
      pthread_join(w->thread, NULL);
    mt_lua_worker_free(w->lua);
    PQfinish(w->conn);
  }
  for (mt_task_t *t = ex->head, *next; t != NULL; t = next) {
    next = t->next;
    mt_task_free(t);
  }
  free(ex->workers);
  free(ex->done);
  pthread_mutex_destroy(&ex->lock);
  pthread_cond_destroy(&ex->ready);
  free(ex);
}
