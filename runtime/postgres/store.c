#include "postgres/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "postgres/migrate.h"
#include "postgres/pg.h"
#include "postgres/pg_service.h"
#include "postgres/pg_session.h"
#include "postgres/sql_guard.h"

/* The store's own statements have at most this many columns. */
#define ROW_COLS_MAX 24

struct mt_store_s {
  PGconn *conn;
};

int mt_store_open(mt_store_t **out, const char *url, const char *app_name,
                  mt_err_t *err) {
  mt_store_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  if ((s->conn = mt_pg_connect(url, app_name, err)) == NULL) {
    free(s);
    return MT_EDB;
  }
  *out = s;
  return 0;
}

void mt_store_free(mt_store_t *s) {
  if (s == NULL)
    return;
  PQfinish(s->conn);
  free(s);
}

int mt_store_migrate(mt_store_t *s, int *applied, mt_err_t *err) {
  return mt_pg_migrate(s->conn, applied, err);
}

int mt_store_check_schema(mt_store_t *s, mt_err_t *err) {
  return mt_pg_check_schema(s->conn, err);
}

/* Runs one statement and drops its result. */
static int exec_one(mt_store_t *s, const char *sql, int n,
                    const char *const *params, mt_err_t *err) {
  PGresult *res = mt_pg_exec(s->conn, sql, n, params, err);
  PQclear(res);
  return res != NULL ? 0 : MT_EDB;
}

/* Runs one statement and hands each of its rows to cb; *nrows (may be
 * NULL) receives how many it returned. */
static int each_row(mt_store_t *s, const char *sql, int nparams,
                    const char *const *params, mt_store_row_cb cb, void *arg,
                    int *nrows, mt_err_t *err) {
  PGresult *res = mt_pg_exec(s->conn, sql, nparams, params, err);
  if (res == NULL)
    return MT_EDB;
  int n = PQnfields(res), rc = 0;
  const char *names[ROW_COLS_MAX], *cols[ROW_COLS_MAX];
  if (n > ROW_COLS_MAX) {
    rc = mt_err_set(err, MT_EINVAL, "a row of %d columns", n);
    goto done;
  }
  for (int c = 0; c < n; c++)
    names[c] = PQfname(res, c);
  for (int r = 0; rc == 0 && r < PQntuples(res); r++) {
    for (int c = 0; c < n; c++)
      cols[c] = PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
    rc = cb(arg, n, names, cols, err);
  }
  if (nrows != NULL)
    *nrows = PQntuples(res);
done:
  PQclear(res);
  return rc;
}

/* Runs a statement that returns one text value (JSON here) and copies it
 * into *out; MT_ENOTFOUND when it returns no row. */
static int one_value(mt_store_t *s, const char *sql, int nparams,
                     const char *const *params, char **out, mt_err_t *err) {
  PGresult *res = mt_pg_exec(s->conn, sql, nparams, params, err);
  if (res == NULL)
    return MT_EDB;
  int rc = 0;
  if (PQntuples(res) == 0)
    rc = mt_err_set(err, MT_ENOTFOUND, "no row");
  else if ((*out = strdup(PQgetvalue(res, 0, 0))) == NULL)
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
  PQclear(res);
  return rc;
}

/* --- Tasks --------------------------------------------------------------- */

int mt_store_schedule(mt_store_t *s, const mt_registry_t *reg,
                      const mt_schedule_req_t *req, int64_t *id,
                      mt_err_t *err) {
  return mt_pg_schedule(reg, s->conn, req, id, err);
}

static const char list_sql[] =
    /* max_attempts is known once the runtime has used the task file's. */
    "SELECT id, name, state, attempts || coalesce('/' || max_attempts, ''),\n"
    "  to_char(run_at, 'YYYY-MM-DD HH24:MI:SSOF'),\n"
    /* The first line only, cut by characters so that no UTF-8 sequence
     * is split; the caller's escaping then defuses what is left. */
    "  left(coalesce(split_part(last_error, E'\\n', 1), ''), 60)\n"
    "  FROM moontask.tasks\n"
    " WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR name = $2)\n"
    " ORDER BY id DESC LIMIT $3::int";

static const char list_json_sql[] =
    "SELECT coalesce(json_agg(t ORDER BY t.id DESC), '[]') FROM (\n"
    "  SELECT id, name, queue, priority, payload, state, run_at, attempts,\n"
    "         max_attempts, last_error, key, created_at, started_at,\n"
    "         finished_at\n"
    "    FROM moontask.tasks\n"
    "   WHERE ($1::text IS NULL OR state = $1)\n"
    "     AND ($2::text IS NULL OR name = $2)\n"
    "   ORDER BY id DESC LIMIT $3::int) t";

int mt_store_list_tasks(mt_store_t *s, const mt_store_task_filter_t *f,
                        mt_store_row_cb cb, void *arg, mt_err_t *err) {
  char limit[16];
  snprintf(limit, sizeof limit, "%d", f->limit);
  const char *params[] = {f->state, f->name, limit};
  return each_row(s, list_sql, 3, params, cb, arg, NULL, err);
}

int mt_store_list_tasks_json(mt_store_t *s, const mt_store_task_filter_t *f,
                             char **json, mt_err_t *err) {
  char limit[16];
  snprintf(limit, sizeof limit, "%d", f->limit);
  const char *params[] = {f->state, f->name, limit};
  return one_value(s, list_json_sql, 3, params, json, err);
}

int mt_store_get_task(mt_store_t *s, int64_t id, mt_store_row_cb cb, void *arg,
                      mt_err_t *err) {
  char idtext[32];
  snprintf(idtext, sizeof idtext, "%" PRId64, id);
  const char *params[] = {idtext};
  int nrows = 0;
  int rc = each_row(s,
                    "SELECT id, name, state, queue, priority, payload,\n"
                    "       run_at, attempts,\n"
                    "       max_attempts,\n"
                    /* The version each attempt ran, oldest first. */
                    "       array_to_string(versions, ', ', 'unknown')\n"
                    "         AS versions,\n"
                    "       key, created_at, started_at,\n"
                    "       finished_at, locked_by, locked_until, last_error\n"
                    "  FROM moontask.tasks WHERE id = $1::bigint",
                    1, params, cb, arg, &nrows, err);
  if (rc == 0 && nrows == 0)
    rc = mt_err_set(err, MT_ENOTFOUND, "task %" PRId64 " not found", id);
  return rc;
}

int mt_store_get_task_json(mt_store_t *s, int64_t id, char **json,
                           mt_err_t *err) {
  char idtext[32];
  snprintf(idtext, sizeof idtext, "%" PRId64, id);
  const char *params[] = {idtext};
  int rc = one_value(
      s, "SELECT row_to_json(t) FROM moontask.tasks t WHERE id = $1::bigint", 1,
      params, json, err);
  if (rc == MT_ENOTFOUND)
    rc = mt_err_set(err, MT_ENOTFOUND, "task %" PRId64 " not found", id);
  return rc;
}

/* Runs a state change on one task (sql returns a row when it changed it);
 * when it touches no row, finds out why. */
static int change_state(mt_store_t *s, const char *sql, int64_t id,
                        mt_store_change_t *out, mt_err_t *err) {
  mt_err_t local = {{0}};
  mt_err_t *e = err != NULL ? err : &local;
  char idtext[32];
  snprintf(idtext, sizeof idtext, "%" PRId64, id);
  const char *params[] = {idtext};
  memset(out, 0, sizeof *out);
  PGresult *res = mt_pg_exec(s->conn, sql, 1, params, e);
  if (res == NULL) {
    /* 23505, unique_violation: the task's key is held again, by a live
     * task scheduled since this one failed. */
    if (strncmp(e->msg, "23505", 5) != 0)
      return MT_EDB;
    out->outcome = MT_STORE_KEY_TAKEN;
    return 0;
  }
  int changed = PQntuples(res) == 1;
  PQclear(res);
  if (changed) {
    out->outcome = MT_STORE_CHANGED;
    return 0;
  }
  res = mt_pg_exec(s->conn,
                   "SELECT state FROM moontask.tasks WHERE id = $1::bigint", 1,
                   params, e);
  if (res == NULL)
    return MT_EDB;
  if (PQntuples(res) == 0) {
    out->outcome = MT_STORE_NO_TASK;
  } else {
    out->outcome = MT_STORE_WRONG_STATE;
    snprintf(out->state, sizeof out->state, "%s", PQgetvalue(res, 0, 0));
  }
  PQclear(res);
  return 0;
}

int mt_store_cancel_task(mt_store_t *s, int64_t id, mt_store_change_t *out,
                         mt_err_t *err) {
  return change_state(s,
                      "UPDATE moontask.tasks SET state = 'cancelled',\n"
                      "       finished_at = now()\n"
                      " WHERE id = $1::bigint AND state = 'scheduled'\n"
                      "RETURNING id",
                      id, out, err);
}

int mt_store_retry_task(mt_store_t *s, int64_t id, mt_store_change_t *out,
                        mt_err_t *err) {
  return change_state(
      s,
      "WITH t AS (\n"
      "  UPDATE moontask.tasks SET state = 'scheduled',\n"
      "         run_at = now(), attempts = 0, finished_at = NULL\n"
      "   WHERE id = $1::bigint AND state = 'failed'\n"
      "  RETURNING id)\n"
      "SELECT id, pg_notify('moontask_tasks', '') FROM t",
      id, out, err);
}

int mt_store_prune(mt_store_t *s, const mt_retention_periods_t *p, int dry_run,
                   mt_retention_counts_t *n, mt_err_t *err) {
  return mt_retention_prune(s->conn, p, dry_run, NULL, n, err);
}

/* --- Recurring schedules ------------------------------------------------- */

static const char schedule_recurring_sql[] =
    "SELECT moontask.schedule_recurring($1, $2, $3::jsonb, $4, $5)";

int mt_store_add_recurring(mt_store_t *s, const mt_store_recurring_t *r,
                           mt_err_t *err) {
  /* One transaction: the definition and its catch-up policy appear
   * together to the runtimes. */
  const char *params[] = {r->name, r->task, r->payload, r->expression, r->tz};
  int rc = exec_one(s, "BEGIN", 0, NULL, err);
  if (rc == 0)
    rc = exec_one(s, schedule_recurring_sql, 5, params, err);
  if (rc == 0 && r->catch_up != NULL) {
    /* The name that goes to the database is the parsed one, so the column
     * only ever receives what mt_catch_up_parse() accepted. */
    const char *cparams[] = {r->name, mt_catch_up_name(*r->catch_up)};
    rc = exec_one(s,
                  "UPDATE moontask.schedules SET catch_up = $2 "
                  "WHERE name = $1",
                  2, cparams, err);
  }
  if (rc == 0)
    return exec_one(s, "COMMIT", 0, NULL, err);
  exec_one(s, "ROLLBACK", 0, NULL, NULL);
  return rc;
}

int mt_store_remove_recurring(mt_store_t *s, const char *name, mt_err_t *err) {
  const char *params[] = {name};
  PGresult *res = mt_pg_exec(
      s->conn, "SELECT moontask.unschedule_recurring($1)", 1, params, err);
  if (res == NULL)
    return MT_EDB;
  int removed = PQgetvalue(res, 0, 0)[0] == 't';
  PQclear(res);
  return removed ? 0
                 : mt_err_set(err, MT_ENOTFOUND,
                              "recurring schedule \"%s\" not found", name);
}

int mt_store_list_recurring(mt_store_t *s, const char *task, mt_store_row_cb cb,
                            void *arg, mt_err_t *err) {
  const char *params[] = {task};
  return each_row(s,
                  "SELECT name, task, expression, tz, catch_up,\n"
                  "       floor(extract(epoch FROM next_fire_at))::bigint,\n"
                  "       floor(extract(epoch FROM last_fire_at))::bigint,\n"
                  "       error, payload::text\n"
                  "  FROM moontask.schedules\n"
                  " WHERE $1::text IS NULL OR task = $1 ORDER BY name",
                  1, params, cb, arg, NULL, err);
}

/* schedule_recurring keeps a schedule's next fire when its expression and
 * zone are unchanged, so a restart neither re-fires nor forgets the fires
 * missed while no runtime ran. One transaction: runtimes starting together
 * see one version or the other, never a mix. */
int mt_store_sync_file_schedules(mt_store_t *s, const mt_registry_t *reg,
                                 mt_err_t *err) {
  int rc = exec_one(s, "BEGIN", 0, NULL, err);
  for (size_t i = 0; rc == 0 && i < reg->count; i++) {
    const mt_task_def_t *def = &reg->defs[i];
    char count[24];
    snprintf(count, sizeof count, "%zu", def->nschedules);
    for (size_t j = 0; rc == 0 && j < def->nschedules; j++) {
      const mt_task_sched_t *sc = &def->schedules[j];
      char name[600];
      snprintf(name, sizeof name, "%s:%zu", def->name, j + 1);
      const char *params[] = {name, def->name, sc->payload, sc->expression,
                              sc->tz};
      const char *cparams[] = {name, mt_catch_up_name(sc->catch_up)};
      if ((rc = exec_one(s, schedule_recurring_sql, 5, params, err)) == 0)
        rc = exec_one(s,
                      "UPDATE moontask.schedules SET catch_up = $2 "
                      "WHERE name = $1 AND catch_up <> $2",
                      2, cparams, err);
    }
    /* Names "<task>:<n>" past the file's count were declared by an older
     * version of the file. */
    const char *dparams[] = {def->name, count};
    if (rc == 0)
      rc = exec_one(s,
                    "DELETE FROM moontask.schedules\n"
                    " WHERE task = $1 AND split_part(name, ':', 1) = $1\n"
                    /* CASE: the cast must not see other names. */
                    "   AND CASE WHEN name ~ '^[^:]+:[0-9]{1,9}$'\n"
                    "       THEN split_part(name, ':', 2)::int > $2::int\n"
                    "       ELSE false END",
                    2, dparams, err);
  }
  if (rc == 0)
    return exec_one(s, "COMMIT", 0, NULL, err);
  exec_one(s, "ROLLBACK", 0, NULL, NULL);
  return rc;
}

/* --- Queues and task defaults -------------------------------------------- */

/* Appends s to b as an element of a text[] literal. Every element is
 * quoted: an unquoted NULL would read as SQL NULL. */
static int array_add(mt_buf_t *b, const char *s) {
  int rc = mt_buf_puts(b, b->len > 1 ? ",\"" : "\"");
  for (; rc == 0 && *s; s++)
    rc = (*s == '"' || *s == '\\' ? mt_buf_putc(b, '\\') : 0) ||
         mt_buf_putc(b, *s);
  return rc == 0 ? mt_buf_putc(b, '"') : MT_ENOMEM;
}

static const char queue_upsert_sql[] =
    "INSERT INTO moontask.queues AS q (name, concurrency, rate_limit,\n"
    "                                  rate_period)\n"
    "VALUES ($1, $2::int, $3::int, $4::float8)\n"
    "ON CONFLICT (name) DO UPDATE\n"
    "  SET concurrency = EXCLUDED.concurrency,\n"
    "      rate_limit = EXCLUDED.rate_limit,\n"
    "      rate_period = EXCLUDED.rate_period,\n"
    /* A new rate spaces starts afresh; an unchanged one keeps its next
     * start, so that runtimes restarting let no burst through. */
    "      next_start = CASE WHEN (q.rate_limit, q.rate_period)\n"
    "                        IS NOT DISTINCT FROM\n"
    "                        (EXCLUDED.rate_limit, EXCLUDED.rate_period)\n"
    "                   THEN q.next_start END,\n"
    "      updated_at = now()\n"
    /* Unchanged rows are left alone: every start writes them. */
    "  WHERE (q.concurrency, q.rate_limit, q.rate_period) IS DISTINCT FROM\n"
    "        (EXCLUDED.concurrency, EXCLUDED.rate_limit, EXCLUDED.rate_period)";

int mt_store_sync_queues(mt_store_t *s, const mt_queue_def_t *q, size_t n,
                         mt_err_t *err) {
  mt_buf_t names = MT_BUF_INIT;
  int rc = mt_buf_putc(&names, '{');
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = array_add(&names, q[i].name);
  if (rc != 0 || (rc = mt_buf_putc(&names, '}')) != 0) {
    mt_buf_free(&names);
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  const char *declared[] = {names.data};
  /* Claims lock a limited queue's row, one queue after another in name
   * order; taking every row at once, sorted the same way, before any is
   * written keeps this transaction from closing a cycle with one. */
  if ((rc = exec_one(s, "BEGIN", 0, NULL, err)) == 0)
    rc = exec_one(s, "SELECT FROM moontask.queues ORDER BY name FOR UPDATE", 0,
                  NULL, err);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char concurrency[16], limit[16], period[32];
    snprintf(concurrency, sizeof concurrency, "%d", q[i].concurrency);
    snprintf(limit, sizeof limit, "%d", q[i].rate_limit);
    snprintf(period, sizeof period, "%.17g", q[i].rate_period);
    const char *params[] = {q[i].name,
                            q[i].concurrency > 0 ? concurrency : NULL,
                            q[i].rate_limit > 0 ? limit : NULL,
                            q[i].rate_limit > 0 ? period : NULL};
    rc = exec_one(s, queue_upsert_sql, 4, params, err);
  }
  /* A queue config.lua dropped goes, unless tasks wait in it or run:
   * claims visit only the queues that have a row, so it stays for them,
   * without limits, until they are done and the next start deletes it. */
  if (rc == 0)
    rc = exec_one(s,
                  "DELETE FROM moontask.queues q\n"
                  " WHERE q.name <> ALL($1::text[])\n"
                  "   AND NOT EXISTS (SELECT FROM moontask.tasks t\n"
                  "                    WHERE t.queue = q.name\n"
                  "                      AND t.state IN ('scheduled', "
                  "'running'))",
                  1, declared, err);
  if (rc == 0)
    rc = exec_one(s,
                  "UPDATE moontask.queues\n"
                  "   SET concurrency = NULL, rate_limit = NULL,\n"
                  "       rate_period = NULL, next_start = NULL,\n"
                  "       updated_at = now()\n"
                  " WHERE name <> ALL($1::text[])\n"
                  "   AND (concurrency IS NOT NULL OR rate_limit IS NOT NULL)",
                  1, declared, err);
  mt_buf_free(&names);
  if (rc == 0)
    return exec_one(s, "COMMIT", 0, NULL, err);
  exec_one(s, "ROLLBACK", 0, NULL, NULL);
  return rc;
}

int mt_store_sync_definitions(mt_store_t *s, const mt_registry_t *reg,
                              mt_err_t *err) {
  mt_buf_t names = MT_BUF_INIT, queues = MT_BUF_INIT, prios = MT_BUF_INIT;
  int rc = 0;
  if (reg->count == 0)
    return 0;
  rc = mt_buf_putc(&names, '{') || mt_buf_putc(&queues, '{') ||
       mt_buf_putc(&prios, '{');
  for (size_t i = 0; rc == 0 && i < reg->count; i++) {
    const mt_task_def_t *def = &reg->defs[i];
    rc = array_add(&names, def->name) ||
         array_add(&queues, def->queue ? def->queue : MT_DEFAULT_QUEUE) ||
         mt_buf_printf(&prios, "%s%d", i ? "," : "", def->priority);
  }
  if (rc == 0)
    rc = mt_buf_putc(&names, '}') || mt_buf_putc(&queues, '}') ||
         mt_buf_putc(&prios, '}');
  if (rc != 0) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto done;
  }
  const char *params[] = {names.data, queues.data, prios.data};
  /* One statement, rows in name order: runtimes starting together with
   * the same tasks lock the same rows in the same order, and wait for
   * each other rather than deadlock. Unchanged rows are left alone. */
  rc =
      exec_one(s,
               "INSERT INTO moontask.definitions AS d (name, queue, priority)\n"
               "SELECT u.name, u.queue, u.priority\n"
               "  FROM unnest($1::text[], $2::text[], $3::smallint[])\n"
               "       AS u(name, queue, priority)\n"
               " ORDER BY u.name\n"
               "ON CONFLICT (name) DO UPDATE\n"
               "  SET queue = EXCLUDED.queue, priority = EXCLUDED.priority,\n"
               "      updated_at = now()\n"
               "  WHERE (d.queue, d.priority) IS DISTINCT FROM\n"
               "        (EXCLUDED.queue, EXCLUDED.priority)",
               3, params, err);
done:
  mt_buf_free(&names);
  mt_buf_free(&queues);
  mt_buf_free(&prios);
  return rc;
}

/* The queues with their limits and counts (mt_store_list_queues). */
static const char queues_sql[] =
    "WITH counts AS (\n"
    "  SELECT queue,\n"
    "         count(*) FILTER (WHERE state = 'running') AS running,\n"
    "         count(*) FILTER (WHERE state = 'scheduled'\n"
    "                            AND run_at <= now()) AS due,\n"
    "         count(*) FILTER (WHERE state = 'scheduled'\n"
    "                            AND run_at > now()) AS later\n"
    "    FROM moontask.tasks WHERE state IN ('scheduled', 'running')\n"
    "   GROUP BY queue),\n"
    /* A queue with tasks but no row (one config.lua dropped while its
     * tasks waited, cleared by hand) is listed too. */
    "names AS (\n"
    "  SELECT 'default' AS name UNION SELECT name FROM moontask.queues\n"
    "  UNION SELECT queue FROM counts)\n"
    "SELECT n.name, q.concurrency,\n"
    /* The rate as config.lua writes it, in the largest whole unit. */
    "       q.rate_limit || '/' || CASE\n"
    "         WHEN q.rate_period = 1 THEN 's'\n"
    "         WHEN q.rate_period = 60 THEN 'm'\n"
    "         WHEN q.rate_period = 3600 THEN 'h'\n"
    "         WHEN q.rate_period = 86400 THEN 'd'\n"
    "         WHEN q.rate_period::numeric % 3600 = 0\n"
    "           THEN (q.rate_period / 3600)::bigint || 'h'\n"
    "         WHEN q.rate_period::numeric % 60 = 0\n"
    "           THEN (q.rate_period / 60)::bigint || 'm'\n"
    "         ELSE q.rate_period || 's' END AS rate,\n"
    "       coalesce(c.running, 0) AS running, coalesce(c.due, 0) AS due,\n"
    "       coalesce(c.later, 0) AS later\n"
    "  FROM names n\n"
    "  LEFT JOIN moontask.queues q ON q.name = n.name\n"
    "  LEFT JOIN counts c ON c.queue = n.name\n"
    " ORDER BY n.name <> 'default', n.name";

int mt_store_list_queues(mt_store_t *s, mt_store_row_cb cb, void *arg,
                         mt_err_t *err) {
  return each_row(s, queues_sql, 0, NULL, cb, arg, NULL, err);
}

int mt_store_list_queues_json(mt_store_t *s, char **json, mt_err_t *err) {
  return mt_store_query_json(s, queues_sql, json, err);
}

/* --- One transaction that is never committed ---------------------------- */

int mt_store_begin(mt_store_t *s, mt_err_t *err) {
  return mt_pg_exec_script(s->conn, "BEGIN", 0, err);
}

void mt_store_rollback(mt_store_t *s) {
  if (s == NULL || PQtransactionStatus(s->conn) == PQTRANS_IDLE)
    return;
  PGresult *res = PQexec(s->conn, "ROLLBACK");
  PQclear(res);
}

int mt_store_idle(const mt_store_t *s) {
  return PQtransactionStatus(s->conn) == PQTRANS_IDLE;
}

int mt_store_exec_guarded(mt_store_t *s, const char *sql, mt_err_t *err) {
  int rc = mt_sql_guard_check(sql, err);
  return rc != 0 ? rc : mt_pg_exec_script(s->conn, sql, 0, err);
}

/* Named for its one user, `moontask try`: the handler's own savepoints
 * live beside it. */
int mt_store_savepoint(mt_store_t *s, mt_err_t *err) {
  return mt_pg_exec_script(s->conn, "SAVEPOINT moontask_try", 0, err);
}

int mt_store_rollback_to_savepoint(mt_store_t *s, mt_err_t *err) {
  return mt_pg_exec_script(s->conn, "ROLLBACK TO SAVEPOINT moontask_try", 0,
                           err);
}

int mt_store_insert_task(mt_store_t *s, const mt_schedule_req_t *req,
                         mt_task_t **task, mt_err_t *err) {
  const char *params[MT_PG_SCHEDULE_PARAMS];
  char priority[MT_PG_PRIORITY_LEN];
  mt_pg_schedule_params(req, priority, params);
  PGresult *res = mt_pg_exec(s->conn, mt_pg_schedule_sql, MT_PG_SCHEDULE_PARAMS,
                             params, err);
  if (res == NULL)
    return MT_EDB;
  int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  char idtext[32];
  snprintf(idtext, sizeof idtext, "%" PRId64, id);
  const char *idparam[] = {idtext};
  /* The same format as the backend's claim, so ctx.run_at reads the same. */
  res = mt_pg_exec(s->conn,
                   "SELECT to_char(run_at AT TIME ZONE 'UTC',\n"
                   "               'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')\n"
                   "  FROM moontask.tasks WHERE id = $1::bigint",
                   1, idparam, err);
  if (res == NULL)
    return MT_EDB;
  *task = mt_task_new(id, req->name, req->payload, PQgetvalue(res, 0, 0), 1, 0);
  PQclear(res);
  return *task != NULL ? 0 : MT_ENOMEM;
}

int mt_store_scheduled_after(mt_store_t *s, int64_t after, char **json,
                             mt_err_t *err) {
  char idtext[32];
  snprintf(idtext, sizeof idtext, "%" PRId64, after);
  const char *params[] = {idtext};
  return one_value(
      s,
      "SELECT coalesce(json_agg(json_build_object('name', name,\n"
      "         'payload', payload, 'run_at', run_at, 'key', key)\n"
      "         ORDER BY id), '[]')\n"
      "  FROM moontask.tasks WHERE id > $1::bigint",
      1, params, json, err);
}

int mt_store_query_json(mt_store_t *s, const char *query, char **json,
                        mt_err_t *err) {
  /* The server returns the rows as one JSON array; a trailing semicolon
   * would end the subquery early, so it goes. */
  mt_buf_t sql = MT_BUF_INIT;
  size_t n = strlen(query);
  while (n > 0 &&
         (query[n - 1] == ';' || query[n - 1] == ' ' || query[n - 1] == '\n' ||
          query[n - 1] == '\t' || query[n - 1] == '\r'))
    n--;
  int rc = mt_buf_printf(&sql,
                         "SELECT coalesce(json_agg(t), '[]') FROM (\n%.*s\n) t",
                         (int)n, query);
  if (rc == 0)
    rc = one_value(s, sql.data, 0, NULL, json, err);
  mt_buf_free(&sql);
  return rc;
}

int mt_store_query_value(mt_store_t *s, const char *sql, char **out,
                         mt_err_t *err) {
  return one_value(s, sql, 0, NULL, out, err);
}

int mt_store_session(mt_store_t *s, const char *owner, mt_session_t **out,
                     mt_err_t *err) {
  return mt_pg_session_wrap(out, s->conn, owner, err);
}
