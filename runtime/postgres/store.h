/*
 * The task store: the tables every backend keeps in the application's
 * PostgreSQL database (moontask.tasks, moontask.schedules, moontask.queues,
 * moontask.definitions), as the command line reads and changes them. Task rows
 * stay in PostgreSQL whatever backend schedules them, so nothing here asks
 * which backend runs; the SQL and libpq live here so that the command line
 * holds none of either.
 *
 * Ownership: an mt_store_t owns its connection (mt_store_free closes it,
 * and accepts NULL). Functions hand back plain C data: strings the caller
 * free()s, or rows passed to a callback whose strings live only until the
 * callback returns. The caller does all formatting and output. Errors are
 * MT_EDB with the server's message (its SQLSTATE first) unless a function
 * says otherwise.
 */
#ifndef MT_STORE_H
#define MT_STORE_H

#include <stdint.h>

#include "backend.h"
#include "common/error.h"
#include "postgres/retention.h"
#include "scheduler/catch_up.h"
#include "service/registry.h"
#include "service/service.h"
#include "task.h"

typedef struct mt_store_s mt_store_t;

/* Connects to url as application app_name (how it shows in
 * pg_stat_activity). Checks nothing about the schema. */
int mt_store_open(mt_store_t **out, const char *url, const char *app_name,
                  mt_err_t *err);
void mt_store_free(mt_store_t *s);

/* Applies every migration newer than the database's version (postgres/
 * migrate.h); *applied receives how many ran (may be NULL). */
int mt_store_migrate(mt_store_t *s, int *applied, mt_err_t *err);

/* Fails, telling to run `moontask migrate`, when the schema is missing or
 * older than this binary expects. */
int mt_store_check_schema(mt_store_t *s, mt_err_t *err);

/* One row of a result: n text values (NULL for SQL NULL) in the order the
 * function that calls it documents, with the columns' names. A non-zero
 * return stops the rows, and the calling function returns it. */
typedef int (*mt_store_row_cb)(void *arg, int n, const char *const *names,
                               const char *const *cols, mt_err_t *err);

/* --- Tasks (moontask.tasks) --------------------------------------------- */

/* Checks the request (service/service.h) and persists it; *id receives the
 * task's id, or that of the live task already holding req->key. A payload
 * or run_at the server cannot read is MT_EPAYLOAD. */
int mt_store_schedule(mt_store_t *s, const mt_registry_t *reg,
                      const mt_schedule_req_t *req, int64_t *id, mt_err_t *err);

typedef struct mt_store_task_filter_s {
  const char *state; /* NULL: any */
  const char *name;  /* NULL: any */
  int limit;
} mt_store_task_filter_t;

/* The tasks that pass f, newest first, one row each: id, name, state,
 * attempts ("2/5", or "2" while the runtime has not yet used the task
 * file's maximum), run_at (YYYY-MM-DD HH:MM:SS+OF), and the first line of
 * last_error cut to 60 characters ("" when none). */
int mt_store_list_tasks(mt_store_t *s, const mt_store_task_filter_t *f,
                        mt_store_row_cb cb, void *arg, mt_err_t *err);

/* The same tasks as one JSON array of whole rows (malloc'd into *json). */
int mt_store_list_tasks_json(mt_store_t *s, const mt_store_task_filter_t *f,
                             char **json, mt_err_t *err);

/* One task in full, as one row whose columns carry their names: id, name,
 * state, queue, priority, payload, run_at, attempts, max_attempts,
 * versions, key, created_at, started_at, finished_at, locked_by,
 * locked_until, last_error.
 * MT_ENOTFOUND when no task has that id. */
int mt_store_get_task(mt_store_t *s, int64_t id, mt_store_row_cb cb, void *arg,
                      mt_err_t *err);

/* One task as a JSON object (malloc'd into *json); MT_ENOTFOUND as above. */
int mt_store_get_task_json(mt_store_t *s, int64_t id, char **json,
                           mt_err_t *err);

/* What a state change found. */
typedef struct mt_store_change_s {
  enum {
    MT_STORE_CHANGED,     /* the task was in the state the change needs */
    MT_STORE_NO_TASK,     /* no task has that id */
    MT_STORE_WRONG_STATE, /* the task is in `state`, which the change refuses */
    MT_STORE_KEY_TAKEN    /* another live task holds the task's key */
  } outcome;
  char state[16];
} mt_store_change_t;

/* Cancels a scheduled task (it will not run). */
int mt_store_cancel_task(mt_store_t *s, int64_t id, mt_store_change_t *out,
                         mt_err_t *err);

/* Schedules a failed task to run again now, with fresh attempts, and wakes
 * the runtimes. */
int mt_store_retry_task(mt_store_t *s, int64_t id, mt_store_change_t *out,
                        mt_err_t *err);

/* Deletes the finished tasks older than their state's period (postgres/
 * retention.h: in batches, each its own transaction), or with dry_run only
 * counts them; *n receives the rows by state, also on an error. */
int mt_store_prune(mt_store_t *s, const mt_retention_periods_t *p, int dry_run,
                   mt_retention_counts_t *n, mt_err_t *err);

/* --- Recurring schedules (moontask.schedules) --------------------------- */

typedef struct mt_store_recurring_s {
  const char *name;
  const char *task;
  const char *payload; /* a JSON object */
  const char *expression;
  const char *tz;
  const mt_catch_up_t *catch_up; /* NULL: a new schedule's default, or what
                                    the schedule had */
} mt_store_recurring_t;

/* Creates or redefines schedule r->name, in one transaction. */
int mt_store_add_recurring(mt_store_t *s, const mt_store_recurring_t *r,
                           mt_err_t *err);

/* Deletes schedule name; MT_ENOTFOUND when there is none. */
int mt_store_remove_recurring(mt_store_t *s, const char *name, mt_err_t *err);

/* The schedules of task (all when NULL), by name, one row each: name, task,
 * expression, tz, catch_up, next_fire_at and last_fire_at (epoch seconds,
 * NULL when unknown), error (NULL when none), payload (JSON text). */
int mt_store_list_recurring(mt_store_t *s, const char *task, mt_store_row_cb cb,
                            void *arg, mt_err_t *err);

/* Brings the schedules declared in task files into moontask.schedules, as
 * "<task>:<index>" (1-based), and removes the ones a task file no longer
 * declares, in one transaction. */
int mt_store_sync_file_schedules(mt_store_t *s, const mt_registry_t *reg,
                                 mt_err_t *err);

/* --- Queues and task defaults (moontask.queues, moontask.definitions) --- */

/* Brings the n queues of q (config.lua's, sorted by name) into
 * moontask.queues, in one transaction: each one's limits are written (a
 * rate that changed starts afresh), and a row that q no longer declares is
 * deleted, or, while tasks of its queue are scheduled or running, kept
 * without limits so that they are still claimed. Rows are locked in name
 * order, as claims lock them. */
int mt_store_sync_queues(mt_store_t *s, const mt_queue_def_t *q, size_t n,
                         mt_err_t *err);

/* Writes each task of reg's queue and priority into moontask.definitions,
 * which moontask.schedule reads for a caller that gives neither. Rows of
 * tasks reg lacks stay: another runtime sharing the database may have
 * them. */
int mt_store_sync_definitions(mt_store_t *s, const mt_registry_t *reg,
                              mt_err_t *err);

/* One row per queue, "default" first and then by name: every declared
 * queue and every queue that holds scheduled or running tasks. Columns:
 * name, concurrency (NULL: no limit), rate ("25/s", "100/10s"; NULL: none),
 * running, due (scheduled with run_at now or past) and later (scheduled
 * for the future), the counts as decimal text. */
int mt_store_list_queues(mt_store_t *s, mt_store_row_cb cb, void *arg,
                         mt_err_t *err);

/* The same queues as one JSON array of objects with those names
 * (malloc'd into *json). */
int mt_store_list_queues_json(mt_store_t *s, char **json, mt_err_t *err);

/* --- One transaction that is never committed (`moontask try`) ---------- */

int mt_store_begin(mt_store_t *s, mt_err_t *err);

/* Rolls back whatever transaction is open; s may be NULL. */
void mt_store_rollback(mt_store_t *s);

/* Whether no transaction is open (so none is left to roll back to). */
int mt_store_idle(const mt_store_t *s);

/* Runs SQL text that may hold several statements, refusing any that would
 * end, chain or prepare the transaction (postgres/sql_guard.h: MT_EINVAL). */
int mt_store_exec_guarded(mt_store_t *s, const char *sql, mt_err_t *err);

/* Sets the one savepoint, and rolls back to it. */
int mt_store_savepoint(mt_store_t *s, mt_err_t *err);
int mt_store_rollback_to_savepoint(mt_store_t *s, mt_err_t *err);

/* Persists req unchecked (the caller checked it) and returns the task as a
 * backend would have claimed it: first attempt, run_at as RFC 3339 UTC. */
int mt_store_insert_task(mt_store_t *s, const mt_schedule_req_t *req,
                         mt_task_t **task, mt_err_t *err);

/* The tasks with an id above `after`, in id order, as a JSON array of
 * {name, payload, run_at, key} (malloc'd into *json). */
int mt_store_scheduled_after(mt_store_t *s, int64_t after, char **json,
                             mt_err_t *err);

/* Runs query and returns its rows as a JSON array of objects (malloc'd into
 * *json). */
int mt_store_query_json(mt_store_t *s, const char *query, char **json,
                        mt_err_t *err);

/* Runs sql, a statement of the runtime's own that returns one text (or
 * json) value, and copies it into *out (malloc'd); MT_ENOTFOUND when it
 * returns no row. */
int mt_store_query_value(mt_store_t *s, const char *sql, char **out,
                         mt_err_t *err);

/* A session (backend.h) over the store's connection, recording outcomes as
 * lease holder owner. The store keeps the connection: free the session
 * before the store. */
int mt_store_session(mt_store_t *s, const char *owner, mt_session_t **out,
                     mt_err_t *err);

#endif
