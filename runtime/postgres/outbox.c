#include "postgres/outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "postgres/pg.h"

/* The relay's lock: one publisher per database. Fixed and arbitrary, like
 * migrate.c's, and apart from it. */
#define RELAY_LOCK "7885667961616274"

/* Serialises mode switches of runtimes starting together. */
#define MODE_LOCK "7885667961616275"

/* Held, shared, by every connection of a runtime that relies on the
 * outbox (mt_outbox_open): turning the outbox off under one would leave it
 * publishing nothing. */
#define USER_LOCK "7885667961616276"

struct mt_outbox_s {
  PGconn *conn;
  char *url;
  char *app_name;
  unsigned generation;
  int leading;
};

static const char mode_sql[] = "SELECT tgenabled <> 'D' FROM pg_trigger\n"
                               " WHERE tgrelid = 'moontask.tasks'::regclass\n"
                               "   AND tgname = 'tasks_outbox_insert'";

static const char enable_sql[] =
    "ALTER TABLE moontask.tasks ENABLE TRIGGER tasks_outbox_insert,\n"
    "  ENABLE TRIGGER tasks_outbox_update, ENABLE TRIGGER tasks_outbox_delete;\n"
    "ALTER TABLE moontask.schedules ENABLE TRIGGER schedules_outbox_write,\n"
    "  ENABLE TRIGGER schedules_outbox_update;\n"
    "INSERT INTO moontask.outbox (task_id)\n"
    "  SELECT id FROM moontask.tasks WHERE state = 'scheduled' ORDER BY id;\n"
    "INSERT INTO moontask.outbox (schedule_name)\n"
    "  SELECT name FROM moontask.schedules ORDER BY name;\n"
    "SELECT pg_notify('moontask_outbox', '')";

static const char disable_sql[] =
    "ALTER TABLE moontask.tasks DISABLE TRIGGER tasks_outbox_insert,\n"
    "  DISABLE TRIGGER tasks_outbox_update, DISABLE TRIGGER tasks_outbox_delete;\n"
    "ALTER TABLE moontask.schedules DISABLE TRIGGER schedules_outbox_write,\n"
    "  DISABLE TRIGGER schedules_outbox_update;\n"
    "DELETE FROM moontask.outbox";

static int mode_is_on(PGconn *conn, int *on, mt_err_t *err) {
  PGresult *res = mt_pg_exec(conn, mode_sql, 0, NULL, err);
  if (res == NULL)
    return MT_EDB;
  *on = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
  PQclear(res);
  return 0;
}

/* Refuses to turn the outbox off while a runtime that relies on it is
 * connected (it holds USER_LOCK shared). */
static int refuse_if_used(PGconn *conn, mt_err_t *err) {
  PGresult *res = mt_pg_exec(
      conn, "SELECT pg_try_advisory_xact_lock(" USER_LOCK ")", 0, NULL, err);
  if (res == NULL)
    return MT_EDB;
  int free_to_switch = PQgetvalue(res, 0, 0)[0] == 't';
  PQclear(res);
  if (free_to_switch)
    return 0;
  return mt_err_set(err, MT_ECONFIG,
                    "runtimes of the aws backend are running against this "
                    "database, and a runtime of the postgres backend would "
                    "turn off the outbox they publish from: stop them first, "
                    "or give this runtime backend = \"aws\" too");
}

int mt_outbox_set_mode(PGconn *conn, int on, int *changed, mt_err_t *err) {
  int rc, now_on = 0;
  if (changed != NULL)
    *changed = 0;
  /* The usual case, a runtime starting in the mode the database is in,
   * costs one look and takes no lock: ALTER TABLE would wait for every
   * transaction that touched the tables. */
  if ((rc = mode_is_on(conn, &now_on, err)) != 0 || now_on == on)
    return rc;
  if ((rc = mt_pg_exec_script(
           conn, "BEGIN; SELECT pg_advisory_xact_lock(" MODE_LOCK ")", 0,
           err)) != 0)
    return rc;
  if ((rc = mode_is_on(conn, &now_on, err)) == 0 && now_on != on && !on)
    rc = refuse_if_used(conn, err);
  if (rc == 0 && now_on != on) {
    rc = mt_pg_exec_script(conn, on ? enable_sql : disable_sql, 0, err);
    if (rc == 0 && changed != NULL)
      *changed = 1;
  }
  if (rc != 0) {
    mt_pg_exec_script(conn, "ROLLBACK", 0, NULL);
    return rc;
  }
  return mt_pg_exec_script(conn, "COMMIT", 0, err);
}

static int reconnect(mt_outbox_t *ob, mt_err_t *err) {
  PQfinish(ob->conn);
  ob->leading = 0; /* the lock went with the old connection */
  ob->generation++;
  if ((ob->conn = mt_pg_connect(ob->url, ob->app_name, err)) == NULL)
    return MT_EDB;
  return mt_pg_exec_script(
      ob->conn, "SELECT pg_advisory_lock_shared(" USER_LOCK ")", 0, err);
}

int mt_outbox_open(mt_outbox_t **out, const char *url, const char *app_name,
                   mt_err_t *err) {
  mt_outbox_t *ob = calloc(1, sizeof *ob);
  if (ob == NULL || (ob->url = strdup(url)) == NULL ||
      (ob->app_name = strdup(app_name)) == NULL) {
    mt_outbox_free(ob);
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  int rc = reconnect(ob, err);
  if (rc != 0) {
    mt_outbox_free(ob);
    return rc;
  }
  *out = ob;
  return 0;
}

void mt_outbox_free(mt_outbox_t *ob) {
  if (ob == NULL)
    return;
  PQfinish(ob->conn);
  free(ob->url);
  free(ob->app_name);
  free(ob);
}

int mt_outbox_fd(mt_outbox_t *ob, unsigned *generation) {
  *generation = ob->generation;
  return ob->conn != NULL && PQstatus(ob->conn) == CONNECTION_OK
             ? PQsocket(ob->conn)
             : -1;
}

int mt_outbox_heard(mt_outbox_t *ob) {
  if (ob->conn == NULL || !PQconsumeInput(ob->conn)) {
    mt_err_t ignored;
    reconnect(ob, &ignored); /* failing, the relay's timer tries again */
    return 1;
  }
  int heard = 0;
  PGnotify *n;
  while ((n = PQnotifies(ob->conn)) != NULL) {
    heard = 1;
    PQfreemem(n);
  }
  return heard;
}

/* Runs a statement, reconnecting first if the connection was lost (the
 * statement itself is not repeated: the caller's next turn does that). */
static PGresult *run(mt_outbox_t *ob, const char *sql, int n,
                     const char *const *params, mt_err_t *err) {
  if ((ob->conn == NULL || PQstatus(ob->conn) != CONNECTION_OK) &&
      reconnect(ob, err) != 0)
    return NULL;
  PGresult *res = mt_pg_exec(ob->conn, sql, n, params, err);
  if (res == NULL && PQstatus(ob->conn) != CONNECTION_OK)
    ob->leading = 0;
  return res;
}

int mt_outbox_lead(mt_outbox_t *ob, int *leading, mt_err_t *err) {
  if (ob->leading && PQstatus(ob->conn) == CONNECTION_OK) {
    *leading = 1;
    return 0;
  }
  PGresult *res =
      run(ob, "SELECT pg_try_advisory_lock(" RELAY_LOCK ")", 0, NULL, err);
  *leading = 0;
  if (res == NULL)
    return MT_EDB;
  int won = PQgetvalue(res, 0, 0)[0] == 't';
  PQclear(res);
  /* Only the relay listens: the others would be woken by every change
   * for nothing. */
  if (won && mt_pg_exec_script(ob->conn, "LISTEN moontask_outbox", 0, err) != 0)
    return MT_EDB;
  *leading = ob->leading = won;
  return 0;
}

/* Each row with the current state of its task or schedule; the last
 * column, on every row, is when the next deferred row falls due. */
static const char fetch_sql[] =
    "SELECT o.id, o.attempts, o.task_id, coalesce(t.name, o.schedule_name),\n"
    "       o.cleanup,\n"
    "       t.state, extract(epoch FROM t.run_at)::float8,\n"
    "       s.task, s.payload::text, s.expression, s.tz,\n"
    "       extract(epoch FROM now())::float8,\n"
    "       (SELECT extract(epoch FROM min(not_before) - now())::float8\n"
    "          FROM moontask.outbox WHERE not_before > now())\n"
    "  FROM moontask.outbox o\n"
    "  LEFT JOIN moontask.tasks t ON t.id = o.task_id\n"
    "  LEFT JOIN moontask.schedules s ON s.name = o.schedule_name\n"
    " WHERE o.not_before <= now()\n"
    " ORDER BY o.id LIMIT $1";

static const char *value(PGresult *res, int row, int col) {
  return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

int mt_outbox_fetch(mt_outbox_t *ob, int max, mt_outbox_batch_t *out,
                    mt_err_t *err) {
  char limit[16];
  snprintf(limit, sizeof limit, "%d", max);
  const char *params[] = {limit};
  memset(out, 0, sizeof *out);
  out->wait = -1;
  PGresult *res = run(ob, fetch_sql, 1, params, err);
  if (res == NULL)
    return MT_EDB;
  int rows = PQntuples(res);
  out->res = res;
  out->entries = calloc(rows ? (size_t)rows : 1, sizeof *out->entries);
  if (out->entries == NULL) {
    mt_outbox_batch_free(out);
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  for (int i = 0; i < rows; i++) {
    mt_outbox_entry_t *e = &out->entries[i];
    e->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    e->attempts = atoi(PQgetvalue(res, i, 1));
    e->task_id =
        PQgetisnull(res, i, 2) ? 0 : strtoll(PQgetvalue(res, i, 2), NULL, 10);
    e->name = value(res, i, 3);
    e->cleanup = PQgetvalue(res, i, 4)[0] == 't';
    e->state = value(res, i, 5);
    e->run_at = e->state != NULL ? strtod(PQgetvalue(res, i, 6), NULL) : 0;
    e->task = value(res, i, 7);
    e->payload = value(res, i, 8);
    e->expression = value(res, i, 9);
    e->tz = value(res, i, 10);
    out->now = strtod(PQgetvalue(res, i, 11), NULL);
    if (!PQgetisnull(res, i, 12))
      out->wait = strtod(PQgetvalue(res, i, 12), NULL);
  }
  out->n = (size_t)rows;
  return 0;
}

void mt_outbox_batch_free(mt_outbox_batch_t *b) {
  if (b == NULL)
    return;
  PQclear(b->res);
  free(b->entries);
  memset(b, 0, sizeof *b);
}

/* Runs sql with the ids as $1 and up to two more parameters. */
static int with_ids(mt_outbox_t *ob, const char *sql, const int64_t *ids,
                    size_t n, const char *p2, const char *p3, mt_err_t *err) {
  mt_buf_t list = MT_BUF_INIT;
  if (mt_pg_id_array(&list, ids, n) != 0) {
    mt_buf_free(&list);
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  const char *params[] = {list.data, p2, p3};
  PGresult *res = run(ob, sql, 1 + (p2 != NULL) + (p3 != NULL), params, err);
  mt_buf_free(&list);
  if (res == NULL)
    return MT_EDB;
  PQclear(res);
  return 0;
}

int mt_outbox_done(mt_outbox_t *ob, const int64_t *ids, size_t n,
                   mt_err_t *err) {
  if (n == 0)
    return 0;
  return with_ids(ob,
                  "DELETE FROM moontask.outbox WHERE id = ANY($1::bigint[])",
                  ids, n, NULL, NULL, err);
}

int mt_outbox_defer(mt_outbox_t *ob, const int64_t *ids, size_t n, double delay,
                    const char *error, mt_err_t *err) {
  char secs[32];
  snprintf(secs, sizeof secs, "%.3f", delay);
  if (n == 0)
    return 0;
  return with_ids(
      ob,
      "UPDATE moontask.outbox SET attempts = attempts + 1,\n"
      "       not_before = now() + $2::float8 * interval '1 second',\n"
      "       last_error = $3\n"
      " WHERE id = ANY($1::bigint[])",
      ids, n, secs, error != NULL ? error : "", err);
}

int mt_outbox_schedule_error(mt_outbox_t *ob, const char *name,
                             const char *error, mt_err_t *err) {
  const char *params[] = {name, error};
  /* error is no column the outbox triggers watch: no new row. */
  PGresult *res =
      run(ob, "UPDATE moontask.schedules SET error = $2 WHERE name = $1", 2,
          params, err);
  if (res == NULL)
    return MT_EDB;
  PQclear(res);
  return 0;
}

int mt_outbox_note_tasks(mt_outbox_t *ob, const int64_t *ids, size_t n,
                         int cleanup, double delay, mt_err_t *err) {
  char secs[32];
  snprintf(secs, sizeof secs, "%.3f", delay);
  if (n == 0)
    return 0;
  return with_ids(
      ob,
      "WITH o AS (INSERT INTO moontask.outbox (task_id, cleanup, not_before)\n"
      "           SELECT unnest($1::bigint[]), $2::bool,\n"
      "                  now() + $3::float8 * interval '1 second'\n"
      "           RETURNING 1)\n"
      "SELECT pg_notify('moontask_outbox', '') FROM o LIMIT 1",
      ids, n, cleanup ? "true" : "false", secs, err);
}

/* Overdue and not in the outbox: a task whose message went missing. At
 * most max at a time, oldest first, so that a long backlog of messages
 * that are merely waiting in the queue is not doubled all at once. */
static const char sweep_sql[] =
    "WITH lost AS (\n"
    "  SELECT t.id FROM moontask.tasks t\n"
    "   WHERE t.state = 'scheduled'\n"
    "     AND t.run_at < now() - $1::float8 * interval '1 second'\n"
    "     AND NOT EXISTS (SELECT FROM moontask.outbox o WHERE o.task_id = t.id)\n"
    "   ORDER BY t.run_at LIMIT $2::int),\n"
    "o AS (INSERT INTO moontask.outbox (task_id) SELECT id FROM lost\n"
    "      RETURNING 1)\n"
    "SELECT count(*) FROM o";

int mt_outbox_sweep(mt_outbox_t *ob, double overdue, int max, long *swept,
                    mt_err_t *err) {
  char secs[32], limit[16];
  snprintf(secs, sizeof secs, "%.3f", overdue);
  snprintf(limit, sizeof limit, "%d", max);
  const char *params[] = {secs, limit};
  PGresult *res = run(ob, sweep_sql, 2, params, err);
  if (res == NULL)
    return MT_EDB;
  *swept = strtol(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  return 0;
}
