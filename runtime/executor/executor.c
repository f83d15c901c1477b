#include "executor/executor.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "executor/attempt.h"
#include "lua/sources.h"
#include "lua/worker.h"

typedef struct worker_s {
  mt_executor_t *ex;
  pthread_t thread;
  int index;
  mt_lua_worker_t *lua;
  mt_session_t *session; /* its connection, the handler's transaction */
  unsigned int seed;
  int started;
  int offline;         /* no connection: takes no task; under ex->lock */
  double backoff;      /* seconds until the next connection attempt */
  double verified;     /* mt_now() when the connection was last checked */
  int64_t current;     /* the task being run, 0 when idle; under ex->lock */
  unsigned generation; /* the task set its Lua state holds (see reload) */
  /* The task_timeout that goes with that set (for a task with no
   * definition), copied under ex->lock when the set is taken. A task runs
   * without the lock, and reading ex->opts.defaults there raced with
   * mt_executor_reload rewriting it (found by ThreadSanitizer). */
  double default_timeout;
} worker_t;

struct mt_executor_s {
  mt_executor_opts_t opts;
  worker_t *workers;
  pthread_mutex_t lock;
  /* Two conditions, so that a task can wake one worker: `work` is waited
   * on by idle workers alone (worker_main), and signalled once per task
   * queued; `ready` by workers backing off without a connection, and
   * broadcast on an abort. Stopping broadcasts both, and a new task set
   * `work`. */
  pthread_cond_t ready;
  pthread_cond_t work;
  mt_task_t *head, *tail; /* the queue */
  int queued, running;
  int offline;               /* workers without a connection */
  mt_task_t *given_back;     /* claimed tasks no worker can run, for release */
  atomic_int any_given_back; /* given_back != NULL, read without the lock */
  mt_done_t *done; /* finished without a transaction, to acknowledge */
  size_t done_count, done_cap;
  int done_told;       /* discovery was woken for the done list as it is */
  int wake_below;      /* see mt_executor_wake_below */
  double task_seconds; /* see mt_executor_task_seconds */
  int stopping;
  atomic_int abort;
  /* Hot reload: the task set workers load (opts.defaults, whose snapshot
   * the executor holds a reference to) and its generation; a worker whose
   * generation is older loads the new set at its next idle point. */
  unsigned generation;
};

static double retry_delay(const mt_task_def_t *def, int attempt,
                          unsigned int *seed) {
  double delay = def->retry_delay * pow(2, attempt - 1);
  if (delay > MT_RETRY_DELAY_MAX)
    delay = MT_RETRY_DELAY_MAX;
  /* +-25% jitter keeps tasks that failed together from retrying together. */
  double jitter = 0.75 + 0.5 * ((double)rand_r(seed) / RAND_MAX);
  return delay * jitter;
}

/* Connection attempts of a worker that has none back off from this to at
 * most BACKOFF_MAX seconds. */
#define BACKOFF_MIN 0.1
#define BACKOFF_MAX 5.0

/* How long a connection found alive is trusted before the worker looks
 * again (a poll() per task costs 7-9% of the no-op throughput). A worker
 * that waited for work always looks. */
#define VERIFY_INTERVAL 0.1

/* A live session in a clean state, reconnecting if need be (the session's
 * connect). */
static int ensure_connection(worker_t *w, mt_err_t *err) {
  return w->session->ops->connect(w->session, err);
}

/* Sleeps until the worker's next connection attempt, or until the
 * executor stops (or aborts, when abortable). Called and returns with
 * ex->lock held. */
static void wait_backoff(worker_t *w, int abortable) {
  mt_executor_t *ex = w->ex;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  double at = (double)until.tv_sec + (double)until.tv_nsec / 1e9 + w->backoff;
  until.tv_sec = (time_t)at;
  until.tv_nsec = (long)((at - (double)until.tv_sec) * 1e9);
  while (!ex->stopping && !(abortable && atomic_load(&ex->abort)) &&
         pthread_cond_timedwait(&ex->ready, &ex->lock, &until) != ETIMEDOUT)
    ;
  w->backoff = w->backoff * 2 < BACKOFF_MAX ? w->backoff * 2 : BACKOFF_MAX;
}

/* Records the outcome of a task the worker holds. The statement must
 * reach the database: when the connection is gone (what failed the task
 * may have killed it), the worker reconnects and retries, backing off,
 * still holding the task, so that its lease is kept and last_error gets
 * the real cause rather than "lease expired". Only the shutdown's abort
 * (or the executor stopping) gives up; the lease then returns the task. */
static void record_outcome(worker_t *w, const mt_failure_t *failure,
                           int64_t release_id) {
  mt_executor_t *ex = w->ex;
  mt_session_t *s = w->session;
  mt_err_t err;
  w->backoff = BACKOFF_MIN;
  for (;;) {
    int rc = ensure_connection(w, &err);
    if (rc == 0)
      rc = failure != NULL ? s->ops->fail(s, failure, &err)
                           : s->ops->release(s, release_id, &err);
    if (rc == 0)
      return;
    if (rc != MT_EIO) {
      /* The store refused the record itself: retrying would not help. */
      mt_log(MT_LOG_ERROR, "worker %d: cannot record task state: %s", w->index,
             err.msg);
      return;
    }
    mt_log(MT_LOG_WARN,
           "worker %d: cannot record task state: %s; retrying in %gs", w->index,
           err.msg, w->backoff);
    pthread_mutex_lock(&ex->lock);
    if (!atomic_load(&ex->abort))
      wait_backoff(w, 1);
    int give_up = atomic_load(&ex->abort) || ex->stopping;
    pthread_mutex_unlock(&ex->lock);
    if (give_up)
      return;
  }
}

/* Records the failure outside the handler's transaction. Returns whether
 * the task will run again (attempts remain). */
static int record_failure(worker_t *w, const mt_task_t *task,
                          const mt_task_def_t *def, int permanent,
                          const char *message) {
  mt_failure_t f = {
      .id = task->id,
      .message = message,
      .max_attempts = task->max_attempts > 0 ? task->max_attempts
                      : def != NULL          ? def->max_attempts
                                             : MT_DEFAULT_MAX_ATTEMPTS,
      .retry_delay =
          def != NULL ? retry_delay(def, task->attempt, &w->seed) : 0,
      .permanent = permanent,
      .version = mt_task_version(def),
  };
  record_outcome(w, &f, 0);
  return !permanent && task->attempt < f.max_attempts;
}

static void release_task(worker_t *w, const mt_task_t *task) {
  record_outcome(w, NULL, task->id);
}

static void add_done(mt_executor_t *ex, int64_t id, const char *version) {
  pthread_mutex_lock(&ex->lock);
  if (ex->done_count == ex->done_cap) {
    size_t cap = ex->done_cap ? ex->done_cap * 2 : 256;
    mt_done_t *done = realloc(ex->done, cap * sizeof *done);
    if (done == NULL) {
      pthread_mutex_unlock(&ex->lock);
      /* Without memory the task stays `running`; its lease lapses and it
       * runs again, which at-least-once delivery allows. */
      return;
    }
    ex->done = done;
    ex->done_cap = cap;
  }
  mt_done_t *d = &ex->done[ex->done_count++];
  d->id = id;
  if (version != NULL)
    memcpy(d->version, version, sizeof d->version);
  else
    d->version[0] = '\0';
  pthread_mutex_unlock(&ex->lock);
}

/* One line and one count per attempt: how it ended and how long it took.
 * error is the handler's message (the log escapes it), NULL on success;
 * snooze the seconds a snoozed task was put off for, else 0. */
static void report_run(const mt_task_t *task, const char *outcome,
                       mt_log_level_t level, double started, const char *error,
                       double snooze) {
  double seconds = mt_now() - started;
  mt_metric_add(MT_METRIC_EXECUTIONS, task->name, outcome, 1);
  mt_metric_observe(MT_METRIC_HANDLER_SECONDS, task->name, NULL, seconds);
  const mt_log_field_t fields[] = {
      MT_LOG_I("id", task->id),
      MT_LOG_S("name", task->name),
      MT_LOG_I("attempt", task->attempt),
      MT_LOG_S("outcome", outcome),
      MT_LOG_N("duration_ms", seconds * 1000),
      MT_LOG_S("error", error),
      MT_LOG_N("snooze_s", snooze), /* last: left out unless snoozed */
  };
  size_t n = sizeof fields / sizeof fields[0];
  mt_log_fields(level, "task run", fields, snooze > 0 ? n : n - 1);
}

/* Runs one claimed task under the task-run policy (executor/attempt.h) and
 * ends it: commit (or snooze) through the session, or an acknowledgement
 * for a handler that opened no transaction and did not snooze; otherwise
 * roll back and record the failure outside the transaction, or give the
 * task back at shutdown. */
static void run_task(worker_t *w, mt_task_t *task) {
  mt_executor_t *ex = w->ex;
  mt_attempt_t at;
  const mt_attempt_env_t env = {
      .session = w->session,
      .default_timeout = w->default_timeout,
      .abort = &ex->abort,
  };
  double started = mt_now();
  mt_attempt_run(&at, w->lua, task, &env);
  if (at.outcome == MT_ATTEMPT_DONE) {
    if (!at.tx.begun && at.snooze == 0) {
      add_done(ex, task->id, mt_task_version(at.def));
      report_run(task, "completed", MT_LOG_INFO, started, NULL, 0);
      return;
    }
    mt_err_t why;
    mt_session_t *s = w->session;
    int rc = at.snooze > 0 ? s->ops->snooze(s, at.snooze, &why)
                           : s->ops->commit(s, &why);
    if (rc == 0) {
      report_run(task, at.snooze > 0 ? "snoozed" : "completed", MT_LOG_INFO,
                 started, NULL, at.snooze);
      return;
    }
    mt_attempt_fail(&at, rc, &why);
  }
  w->session->ops->rollback(w->session);
  if (at.rc == MT_ENOTASK) {
    /* Claimed before a reload removed its definition: back to `scheduled`
     * unstarted, where it waits for its file to return (claims leave a
     * name this runtime does not know alone). */
    release_task(w, task);
    report_run(task, "released", MT_LOG_WARN, started,
               "no such task in the tasks now loaded; it stays scheduled "
               "until its file comes back",
               0);
  } else if (at.outcome == MT_ATTEMPT_ABORTED) {
    release_task(w, task);
    report_run(task, "released", MT_LOG_INFO, started, at.err.msg, 0);
  } else if (record_failure(w, task, at.def, at.outcome == MT_ATTEMPT_PERMANENT,
                            at.err.msg)) {
    report_run(task, "retried", MT_LOG_WARN, started, at.err.msg, 0);
  } else {
    report_run(task, "failed", MT_LOG_ERROR, started, at.err.msg, 0);
  }
  if (at.rc == MT_ENOMEM) {
    /* Whatever the handler kept reachable goes with the old state. at.def
     * points into it: nothing below may use it. */
    mt_err_t why;
    if (mt_lua_worker_renew(w->lua, &why) != 0)
      mt_log(MT_LOG_ERROR,
             "worker %d: cannot reload tasks after a memory limit was hit: "
             "%s",
             w->index, why.msg);
  }
}

/* Called with ex->lock held when a worker finds it has no connection: it
 * takes no task until it has one again. When no worker has one, the queued
 * tasks are handed back to discovery, which releases them unstarted (their
 * attempt not counted) instead of leaving them to their lease. */
static void go_offline(worker_t *w, const mt_err_t *err) {
  mt_executor_t *ex = w->ex;
  if (!w->offline) {
    w->offline = 1;
    ex->offline++;
    w->backoff = BACKOFF_MIN;
  }
  mt_log(MT_LOG_WARN, "worker %d: %s; taking no tasks, retrying in %gs",
         w->index, err->msg, w->backoff);
  if (ex->offline == ex->opts.workers && ex->head != NULL) {
    mt_task_t **end = &ex->given_back;
    while (*end != NULL)
      end = &(*end)->next;
    *end = ex->head; /* under ex->lock, as mt_executor_give_back would */
    ex->head = ex->tail = NULL;
    ex->queued = 0;
    atomic_store(&ex->any_given_back, 1);
  } else if (ex->head != NULL) {
    /* This worker may have been the one woken for the task: pass it on
     * to an idle one that has a connection. */
    pthread_cond_signal(&ex->work);
  }
  pthread_mutex_unlock(&ex->lock);
  ex->opts.wake(ex->opts.wake_arg);
  pthread_mutex_lock(&ex->lock);
  wait_backoff(w, 0);
}

/* Loads the executor's current task set into a new Lua state and swaps it
 * in. Called and returns with ex->lock held; loads without it. Should the
 * load fail (the set was validated, so: memory), the worker keeps the
 * state it has until the next reload. */
static void swap_task_set(worker_t *w) {
  mt_executor_t *ex = w->ex;
  unsigned generation = ex->generation;
  mt_task_defaults_t defaults = ex->opts.defaults;
  if (defaults.sources != NULL)
    mt_sources_ref(defaults.sources);
  pthread_mutex_unlock(&ex->lock);
  mt_lua_worker_t *fresh = NULL;
  mt_err_t err;
  int rc = mt_lua_worker_new(&fresh, ex->opts.tasks_dir, &defaults, &err);
  mt_sources_unref(defaults.sources);
  if (rc == 0) {
    mt_lua_worker_free(w->lua);
    w->lua = fresh;
  } else {
    mt_log(MT_LOG_ERROR, "worker %d: cannot load the new tasks: %s", w->index,
           err.msg);
  }
  pthread_mutex_lock(&ex->lock);
  w->generation = generation;
  w->default_timeout = defaults.timeout;
}

/* A task's worker time in ex->task_seconds, a moving average weighing
 * this task 1/TASK_SECONDS_WEIGHT. Called under ex->lock. */
#define TASK_SECONDS_WEIGHT 16
static void count_task_seconds(mt_executor_t *ex, double took) {
  if (ex->task_seconds == 0)
    ex->task_seconds = took;
  else
    ex->task_seconds += (took - ex->task_seconds) / TASK_SECONDS_WEIGHT;
}

/* Whether discovery has something to do now that a task ended: claim into
 * a queue that ran low, arm the acknowledgement of a done list it has not
 * heard of, see that all is idle (a drain's end), or stop. Waking it after
 * every task instead cost a context switch of the loop's thread per task,
 * a tenth of the runtime's CPU at thousands of tasks a second. Called under
 * ex->lock. */
static int discovery_needed(mt_executor_t *ex) {
  if (ex->stopping || ex->queued < ex->wake_below ||
      (ex->queued == 0 && ex->running == 0))
    return 1;
  if (ex->done_count > 0 && !ex->done_told) {
    ex->done_told = 1;
    return 1;
  }
  return 0;
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  mt_executor_t *ex = w->ex;
  pthread_mutex_lock(&ex->lock);
  for (;;) {
    while (ex->head == NULL && !ex->stopping && !w->offline &&
           w->generation == ex->generation) {
      pthread_cond_wait(&ex->work, &ex->lock);
      w->verified = 0;
    }
    /* An idle point: a new task set is loaded between tasks, never under
     * one, so that every task runs on one whole version. */
    if (w->generation != ex->generation && !ex->stopping) {
      swap_task_set(w);
      continue;
    }
    /* A worker without a connection has nothing to finish. */
    if (ex->stopping && (ex->head == NULL || w->offline))
      break;
    /* A connection first: a task taken without one would be lost to its
     * lease, and an attempt with it. The check does not block, so it is
     * made under the lock; connecting is not. */
    double now = mt_now();
    int usable = !w->offline && w->session->ops->idle(w->session) &&
                 now - w->verified <= VERIFY_INTERVAL;
    if (!usable && !w->offline && w->session->ops->alive(w->session)) {
      w->verified = now;
      usable = 1;
    }
    if (!usable) {
      pthread_mutex_unlock(&ex->lock);
      mt_err_t err;
      int connected = ensure_connection(w, &err) == 0;
      w->verified = mt_now();
      pthread_mutex_lock(&ex->lock);
      if (!connected) {
        go_offline(w, &err);
        continue;
      }
      if (w->offline) {
        w->offline = 0;
        ex->offline--;
        mt_log(MT_LOG_INFO, "worker %d: connected again", w->index);
        mt_metric_add(MT_METRIC_DB_RECONNECTS, NULL, NULL, 1);
        pthread_mutex_unlock(&ex->lock);
        ex->opts.wake(ex->opts.wake_arg); /* there is room to claim into */
        pthread_mutex_lock(&ex->lock);
      }
      if (ex->head == NULL)
        continue;
    }
    mt_task_t *task = ex->head;
    ex->head = task->next;
    if (ex->head == NULL)
      ex->tail = NULL;
    ex->queued--;
    ex->running++;
    w->current = task->id;
    pthread_mutex_unlock(&ex->lock);

    double took = mt_now();
    run_task(w, task);
    mt_task_free(task);
    took = mt_now() - took;

    pthread_mutex_lock(&ex->lock);
    w->current = 0;
    ex->running--;
    count_task_seconds(ex, took);
    int tell = discovery_needed(ex);
    pthread_mutex_unlock(&ex->lock);
    if (tell)
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
  ex->wake_below = INT_MAX; /* until discovery says */
  if (opts->defaults.sources != NULL)
    mt_sources_ref(opts->defaults.sources);
  pthread_mutex_init(&ex->lock, NULL);
  pthread_cond_init(&ex->ready, NULL);
  pthread_cond_init(&ex->work, NULL);
  atomic_init(&ex->abort, 0);
  atomic_init(&ex->any_given_back, 0);
  ex->workers = calloc((size_t)opts->workers, sizeof *ex->workers);
  if (ex->workers == NULL) {
    rc = MT_ENOMEM;
    goto fail;
  }
  for (int i = 0; i < opts->workers; i++) {
    worker_t *w = &ex->workers[i];
    w->ex = ex;
    w->index = i;
    w->seed = (unsigned int)time(NULL) ^ (unsigned int)i * 2654435761u;
    w->default_timeout = opts->defaults.timeout;
    char name[64];
    snprintf(name, sizeof name, "moontask worker %d", i);
    mt_backend_t *b = opts->backend;
    if ((rc = mt_lua_worker_new(&w->lua, opts->tasks_dir, &opts->defaults,
                                err)) != 0 ||
        (rc = b->ops->session(b, name, &w->session, err)) != 0)
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
  /* Tasks of a named queue go before the others already waiting (after
   * those of named queues, in order): their queue's limits count them
   * from their claim (task.h). The rest queue up at the back. */
  int n = 0;
  mt_task_t *limited = NULL, *llast = NULL, *rest = NULL, *rlast = NULL;
  for (mt_task_t *t = tasks, *next; t != NULL; t = next, n++) {
    next = t->next;
    t->next = NULL;
    mt_task_t **first = t->limited ? &limited : &rest;
    mt_task_t **last = t->limited ? &llast : &rlast;
    if (*last != NULL)
      (*last)->next = t;
    else
      *first = t;
    *last = t;
  }
  pthread_mutex_lock(&ex->lock);
  if (limited != NULL) {
    mt_task_t **at = &ex->head;
    while (*at != NULL && (*at)->limited)
      at = &(*at)->next;
    llast->next = *at;
    *at = limited;
    if (llast->next == NULL)
      ex->tail = llast;
  }
  if (rest != NULL) {
    if (ex->tail != NULL)
      ex->tail->next = rest;
    else
      ex->head = rest;
    ex->tail = rlast;
  }
  ex->queued += n;
  /* As many idle workers as there are new tasks, not all of them: a
   * broadcast for one task woke all eight, which then took the lock one
   * after another on two cores, the one that got the task not always
   * first. */
  if (n >= ex->opts.workers)
    pthread_cond_broadcast(&ex->work);
  else
    for (int i = 0; i < n; i++)
      pthread_cond_signal(&ex->work);
  pthread_mutex_unlock(&ex->lock);
}

void mt_executor_load(mt_executor_t *ex, int *queued, int *running,
                      int *online) {
  pthread_mutex_lock(&ex->lock);
  *queued = ex->queued;
  *running = ex->running;
  *online = ex->opts.workers - ex->offline;
  pthread_mutex_unlock(&ex->lock);
}

double mt_executor_task_seconds(mt_executor_t *ex) {
  pthread_mutex_lock(&ex->lock);
  double seconds = ex->task_seconds;
  pthread_mutex_unlock(&ex->lock);
  return seconds;
}

void mt_executor_give_back(mt_executor_t *ex, mt_task_t *tasks) {
  pthread_mutex_lock(&ex->lock);
  mt_task_t **end = &ex->given_back;
  while (*end != NULL)
    end = &(*end)->next;
  *end = tasks;
  atomic_store(&ex->any_given_back, ex->given_back != NULL);
  pthread_mutex_unlock(&ex->lock);
}

mt_task_t *mt_executor_take_given_back(mt_executor_t *ex) {
  /* Called on every tick; almost always there is nothing: no lock then. */
  if (!atomic_load(&ex->any_given_back))
    return NULL;
  pthread_mutex_lock(&ex->lock);
  mt_task_t *tasks = ex->given_back;
  ex->given_back = NULL;
  atomic_store(&ex->any_given_back, 0);
  pthread_mutex_unlock(&ex->lock);
  return tasks;
}

size_t mt_executor_take_done(mt_executor_t *ex, mt_done_t **done) {
  pthread_mutex_lock(&ex->lock);
  size_t n = ex->done_count;
  *done = ex->done;
  ex->done = NULL;
  ex->done_count = ex->done_cap = 0;
  ex->done_told = 0;
  pthread_mutex_unlock(&ex->lock);
  return n;
}

void mt_executor_wake_below(mt_executor_t *ex, int queued) {
  pthread_mutex_lock(&ex->lock);
  ex->wake_below = queued;
  pthread_mutex_unlock(&ex->lock);
}

size_t mt_executor_held(mt_executor_t *ex, int64_t **ids) {
  pthread_mutex_lock(&ex->lock);
  size_t cap = (size_t)ex->queued + (size_t)ex->opts.workers + ex->done_count;
  for (mt_task_t *t = ex->given_back; t != NULL; t = t->next)
    cap++;
  size_t n = 0;
  int64_t *held = malloc((cap ? cap : 1) * sizeof *held);
  if (held != NULL) {
    for (mt_task_t *t = ex->head; t != NULL; t = t->next)
      held[n++] = t->id;
    for (mt_task_t *t = ex->given_back; t != NULL; t = t->next)
      held[n++] = t->id;
    for (int i = 0; i < ex->opts.workers; i++)
      if (ex->workers[i].current != 0)
        held[n++] = ex->workers[i].current;
    for (size_t i = 0; i < ex->done_count; i++)
      held[n++] = ex->done[i].id;
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

mt_task_t *mt_executor_take_queued_after(mt_executor_t *ex, int keep, int *n) {
  pthread_mutex_lock(&ex->lock);
  mt_task_t **at = &ex->head, *last = NULL;
  for (int i = 0; i < keep && *at != NULL; i++) {
    last = *at;
    at = &last->next;
  }
  mt_task_t *tasks = *at;
  *at = NULL;
  ex->tail = last;
  *n = 0;
  for (mt_task_t *t = tasks; t != NULL; t = t->next)
    (*n)++;
  ex->queued -= *n;
  pthread_mutex_unlock(&ex->lock);
  return tasks;
}

void mt_executor_abort(mt_executor_t *ex) {
  atomic_store(&ex->abort, 1);
  /* A worker backing off in record_outcome gives up at once. */
  pthread_mutex_lock(&ex->lock);
  pthread_cond_broadcast(&ex->ready);
  pthread_mutex_unlock(&ex->lock);
}

void mt_executor_stop(mt_executor_t *ex) {
  if (ex == NULL)
    return;
  pthread_mutex_lock(&ex->lock);
  ex->stopping = 1;
  pthread_cond_broadcast(&ex->ready);
  pthread_cond_broadcast(&ex->work);
  pthread_mutex_unlock(&ex->lock);
  for (int i = 0; ex->workers != NULL && i < ex->opts.workers; i++) {
    worker_t *w = &ex->workers[i];
    if (w->started)
      pthread_join(w->thread, NULL);
    mt_lua_worker_free(w->lua);
    if (w->session != NULL)
      w->session->ops->free(w->session);
  }
  for (mt_task_t *t = ex->head, *next; t != NULL; t = next) {
    next = t->next;
    mt_task_free(t);
  }
  for (mt_task_t *t = ex->given_back, *next; t != NULL; t = next) {
    next = t->next;
    mt_task_free(t);
  }
  free(ex->workers);
  free(ex->done);
  mt_sources_unref(ex->opts.defaults.sources);
  pthread_mutex_destroy(&ex->lock);
  pthread_cond_destroy(&ex->ready);
  pthread_cond_destroy(&ex->work);
  free(ex);
}

void mt_executor_reload(mt_executor_t *ex, const mt_task_defaults_t *defaults) {
  if (defaults->sources != NULL)
    mt_sources_ref(defaults->sources);
  pthread_mutex_lock(&ex->lock);
  mt_sources_t *old = ex->opts.defaults.sources;
  ex->opts.defaults = *defaults;
  ex->generation++;
  pthread_cond_broadcast(&ex->work); /* idle workers load it now */
  pthread_mutex_unlock(&ex->lock);
  mt_sources_unref(old);
}
