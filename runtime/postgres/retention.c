#include "postgres/retention.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/stringify.h"
#include "postgres/pg.h"

/* A batch is a few milliseconds of work; one still running after this is
 * waiting behind a lock on the whole table (a migration, an operator's
 * LOCK TABLE), and is better cancelled and tried at the next prune. */
#define BATCH_DEADLINE 30.0

/* The state is written into the statement rather than passed, so that the
 * planner can tell the rows lie inside the predicate of tasks_finished
 * (migration 6) and reads that index only. The cut-off is the batch's own
 * now(): a task that finishes during a prune is younger than any period. */
// clang-format off
#define OLD_ROWS(state)                                                        \
  "SELECT id FROM moontask.tasks\n"                                            \
  " WHERE state = '" state "'\n"                                               \
  "   AND finished_at < now() - $1::float8 * interval '1 second'"

/* SKIP LOCKED: a row another transaction holds (an operator's retry, or
 * another runtime's prune) is left to it, so that a prune never waits and
 * two prunes never delete the same rows. The lock also re-reads each row,
 * so one retried since the statement's snapshot (failed -> scheduled) no
 * longer matches and stays. */
#define DELETE_SQL(state)                                                      \
  "WITH old AS (" OLD_ROWS(state) "\n"                                         \
  "  LIMIT " MT_STR(MT_RETENTION_BATCH) " FOR UPDATE SKIP LOCKED)\n"           \
  "DELETE FROM moontask.tasks t USING old WHERE t.id = old.id"

#define COUNT_SQL(state) "SELECT count(*) FROM (" OLD_ROWS(state) ") old"
// clang-format on

static const struct {
  const char *state;
  const char *delete_sql;
  const char *count_sql;
} statements[] = {
    {"completed", DELETE_SQL("completed"), COUNT_SQL("completed")},
    {"failed", DELETE_SQL("failed"), COUNT_SQL("failed")},
    {"cancelled", DELETE_SQL("cancelled"), COUNT_SQL("cancelled")},
};

#define STATE_COUNT (sizeof statements / sizeof statements[0])

/* Runs sql (one parameter) as a statement of its own transaction with a
 * deadline, cancelled when *stop is raised. */
static int run(PGconn *conn, const char *sql, const char *param,
               const atomic_int *stop, PGresult **res, mt_err_t *err) {
  const char *params[] = {param};
  mt_pg_stmt_t st = {.sql = sql, .nparams = 1, .params = params};
  int rc =
      mt_pg_pipeline(conn, &st, 1, res, mt_now() + BATCH_DEADLINE, stop, err);
  if (rc != 0) {
    PQclear(*res);
    *res = NULL;
  }
  return rc;
}

/* Deletes batch after batch until one comes back short: then nothing
 * older is left that another transaction does not hold. */
static int delete_old(PGconn *conn, const char *sql, const char *secs,
                      const atomic_int *stop, int64_t *deleted, mt_err_t *err) {
  long rows;
  do {
    if (stop != NULL && atomic_load(stop))
      return 0;
    PGresult *res;
    int rc = run(conn, sql, secs, stop, &res, err);
    if (rc != 0)
      return rc;
    rows = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    *deleted += rows;
  } while (rows >= MT_RETENTION_BATCH);
  return 0;
}

static int count_old(PGconn *conn, const char *sql, const char *secs,
                     const atomic_int *stop, int64_t *count, mt_err_t *err) {
  PGresult *res;
  int rc = run(conn, sql, secs, stop, &res, err);
  if (rc != 0)
    return rc;
  *count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  return 0;
}

int mt_retention_prune(struct pg_conn *conn, const mt_retention_periods_t *p,
                       int dry_run, const atomic_int *stop,
                       mt_retention_counts_t *n, mt_err_t *err) {
  const double periods[STATE_COUNT] = {p->completed, p->failed, p->cancelled};
  int64_t *counts[STATE_COUNT] = {&n->completed, &n->failed, &n->cancelled};
  memset(n, 0, sizeof *n);
  for (size_t i = 0; i < STATE_COUNT; i++) {
    char secs[32];
    int rc;
    if (periods[i] < 0)
      continue; /* kept for ever */
    snprintf(secs, sizeof secs, "%.3f", periods[i]);
    rc = dry_run ? count_old(conn, statements[i].count_sql, secs, stop,
                             counts[i], err)
                 : delete_old(conn, statements[i].delete_sql, secs, stop,
                              counts[i], err);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* ---- the pruning thread ------------------------------------------------- */

struct mt_retention_s {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake; /* on the monotonic clock; signalled by stop */
  atomic_int stop;
  char *url;
  PGconn *conn; /* the thread's once it runs; NULL between a failure and
                   the next prune */
  mt_retention_periods_t periods;
  double interval;
  unsigned int seed;
};

static int connect_pruner(mt_retention_t *r, mt_err_t *err) {
  r->conn = mt_pg_connect(r->url, "moontask retention", err);
  if (r->conn == NULL)
    return MT_EDB;
  /* A delete lost in a server crash is made again by the next prune, so
   * these commits need not wait for the WAL to reach the disk: that saves
   * a disk flush per batch, the part of a batch that competes most with
   * the handlers' own commits. */
  PGresult *res = mt_pg_exec(
      r->conn, "SELECT set_config('synchronous_commit', 'off', false)", 0, NULL,
      err);
  if (res == NULL) {
    PQfinish(r->conn);
    r->conn = NULL;
    return MT_EDB;
  }
  PQclear(res);
  return 0;
}

/* A fraction in [0, 1). */
static double draw(mt_retention_t *r) {
  return rand_r(&r->seed) / ((double)RAND_MAX + 1);
}

/* Waits seconds, or until stopped; returns whether it was stopped. */
static int wait_or_stop(mt_retention_t *r, double seconds) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  double whole = (double)(long)seconds;
  until.tv_sec += (time_t)whole;
  until.tv_nsec += (long)((seconds - whole) * 1e9);
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&r->lock);
  while (!atomic_load(&r->stop) &&
         pthread_cond_timedwait(&r->wake, &r->lock, &until) == 0)
    ;
  int stopped = atomic_load(&r->stop);
  pthread_mutex_unlock(&r->lock);
  return stopped;
}

static void prune_once(mt_retention_t *r) {
  mt_err_t err = {{0}};
  mt_retention_counts_t n = {0};
  int rc = r->conn == NULL ? connect_pruner(r, &err) : 0;
  if (rc == 0)
    rc = mt_retention_prune(r->conn, &r->periods, 0, &r->stop, &n, &err);
  const int64_t rows[STATE_COUNT] = {n.completed, n.failed, n.cancelled};
  /* What went before an error is committed, and said all the same. */
  for (size_t i = 0; i < STATE_COUNT; i++) {
    if (rows[i] == 0)
      continue;
    mt_metric_add(MT_METRIC_PRUNED, statements[i].state, NULL, (double)rows[i]);
    mt_log_event(MT_LOG_INFO, "pruned", MT_LOG_S("state", statements[i].state),
                 MT_LOG_I("rows", rows[i]));
  }
  if (rc == 0)
    return;
  /* A stop cancels the batch in flight: that is no error to report. */
  if (!atomic_load(&r->stop))
    mt_log_event(MT_LOG_WARN, "prune failed", MT_LOG_S("error", err.msg));
  /* The connection may be broken, or mid-pipeline after a cancel; a new
   * one for the next prune, a minute later, costs nothing worth keeping
   * it for. */
  PQfinish(r->conn);
  r->conn = NULL;
}

static void *prune_main(void *arg) {
  mt_retention_t *r = arg;
  /* The first prune comes anywhere within the first interval, and each
   * later one between half and one and a half intervals after the last:
   * runtimes started together (a deploy) drift apart instead of pruning
   * in step, and the mean stays one interval. */
  double wait = r->interval * draw(r);
  while (!wait_or_stop(r, wait)) {
    prune_once(r);
    wait = r->interval * (0.5 + draw(r));
  }
  PQfinish(r->conn);
  r->conn = NULL;
  return NULL;
}

int mt_retention_start(mt_retention_t **out, const char *url,
                       const mt_retention_periods_t *p, double interval,
                       mt_err_t *err) {
  int rc = 0, have_lock = 0, have_cond = 0;
  pthread_condattr_t attr;
  mt_retention_t *r = calloc(1, sizeof *r);
  *out = NULL;
  if (r == NULL || (r->url = strdup(url)) == NULL) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto fail;
  }
  r->periods = *p;
  r->interval = interval;
  r->seed = (unsigned int)(mt_now() * 1e6) ^ (unsigned int)getpid() ^
            (unsigned int)(uintptr_t)r;
  atomic_init(&r->stop, 0);
  if (pthread_mutex_init(&r->lock, NULL) != 0) {
    rc = mt_err_set(err, MT_ESYS, "cannot create the pruner's lock");
    goto fail;
  }
  have_lock = 1;
  /* The waits are on the monotonic clock, as every deadline is: a wall
   * clock set back would otherwise hold the next prune off. */
  if (pthread_condattr_init(&attr) != 0) {
    rc = mt_err_set(err, MT_ESYS, "cannot create the pruner's condition");
    goto fail;
  }
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  have_cond = pthread_cond_init(&r->wake, &attr) == 0;
  pthread_condattr_destroy(&attr);
  if (!have_cond) {
    rc = mt_err_set(err, MT_ESYS, "cannot create the pruner's condition");
    goto fail;
  }
  /* Connected here, where a failure stops the start with its message; the
   * thread connects again only after an error. */
  if ((rc = connect_pruner(r, err)) != 0)
    goto fail;
  if (pthread_create(&r->thread, NULL, prune_main, r) != 0) {
    rc = mt_err_set(err, MT_ESYS, "cannot start the pruning thread");
    goto fail;
  }
  *out = r;
  return 0;
fail:
  if (r != NULL) {
    PQfinish(r->conn);
    if (have_cond)
      pthread_cond_destroy(&r->wake);
    if (have_lock)
      pthread_mutex_destroy(&r->lock);
    free(r->url);
    free(r);
  }
  return rc;
}

void mt_retention_stop(mt_retention_t *r) {
  if (r == NULL)
    return;
  pthread_mutex_lock(&r->lock);
  atomic_store(&r->stop, 1);
  pthread_cond_signal(&r->wake);
  pthread_mutex_unlock(&r->lock);
  pthread_join(r->thread, NULL);
  pthread_cond_destroy(&r->wake);
  pthread_mutex_destroy(&r->lock);
  free(r->url);
  free(r);
}
