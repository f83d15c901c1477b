#include "postgres/migrate.h"

#include <stdio.h>
#include <stdlib.h>

#include "postgres/pg.h"

/* Taken around migrations so that concurrent `moontask migrate` runs queue
 * up. The number is arbitrary but fixed: "moontask" in ASCII, truncated. */
#define MT_MIGRATE_LOCK "7885667961616273"

typedef struct migration_s {
  int version;
  const char *sql;
} migration_t;

static const migration_t migrations[] = {
    {1,
     "CREATE TABLE moontask.tasks (\n"
     "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
     "  name text NOT NULL,\n"
     "  payload jsonb NOT NULL DEFAULT '{}',\n"
     "  state text NOT NULL DEFAULT 'scheduled' CHECK (state IN\n"
     "    ('scheduled', 'running', 'completed', 'failed', 'cancelled')),\n"
     "  run_at timestamptz NOT NULL DEFAULT now(),\n"
     "  attempts integer NOT NULL DEFAULT 0,\n"
     "  max_attempts integer CHECK (max_attempts >= 1),\n"
     "  last_error text,\n"
     "  key text,\n"
     "  created_at timestamptz NOT NULL DEFAULT now(),\n"
     "  started_at timestamptz,\n"
     "  finished_at timestamptz,\n"
     "  locked_by text,\n"
     "  locked_until timestamptz\n"
     ");\n"
     /* Discovery reads only this index: it holds nothing but available
      * tasks, so finished history never slows a claim down. */
     "CREATE INDEX tasks_available ON moontask.tasks (run_at, id)\n"
     "  WHERE state = 'scheduled';\n"
     "CREATE INDEX tasks_running ON moontask.tasks (locked_until)\n"
     "  WHERE state = 'running';\n"
     "CREATE UNIQUE INDEX tasks_live_key ON moontask.tasks (key)\n"
     "  WHERE key IS NOT NULL AND state IN ('scheduled', 'running');\n"
     "\n"
     "CREATE FUNCTION moontask.schedule(name text, payload jsonb,\n"
     "    run_at timestamptz DEFAULT now(), key text DEFAULT NULL)\n"
     "RETURNS bigint LANGUAGE plpgsql AS $fn$\n"
     "#variable_conflict use_column\n"
     "DECLARE\n"
     "  task_id bigint;\n"
     "  due timestamptz := coalesce(run_at, now());\n"
     "BEGIN\n"
     "  IF name IS NULL OR name !~ '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$' THEN\n"
     "    RAISE EXCEPTION 'moontask.schedule: invalid task name %',\n"
     "      coalesce(quote_literal(name), 'NULL') USING ERRCODE = '22023';\n"
     "  END IF;\n"
     "  IF payload IS NULL OR jsonb_typeof(payload) <> 'object' THEN\n"
     "    RAISE EXCEPTION 'moontask.schedule: payload must be a JSON object, not %',\n"
     "      coalesce(jsonb_typeof(payload), 'NULL') USING ERRCODE = '22023';\n"
     "  END IF;\n"
     /* A key already held by a live task returns that task. ON CONFLICT
      * waits for a concurrent insert of the same key to commit or roll back,
      * so the loop ends after at most one retry in practice. */
     "  LOOP\n"
     "    INSERT INTO moontask.tasks AS t (name, payload, run_at, key)\n"
     "    VALUES ($1, $2, due, $4)\n"
     "    ON CONFLICT (key) WHERE key IS NOT NULL AND state IN ('scheduled', 'running')\n"
     "    DO NOTHING RETURNING t.id INTO task_id;\n"
     "    EXIT WHEN task_id IS NOT NULL;\n"
     "    SELECT t.id INTO task_id FROM moontask.tasks t\n"
     "     WHERE t.key = $4 AND t.state IN ('scheduled', 'running');\n"
     "    EXIT WHEN task_id IS NOT NULL;\n"
     "  END LOOP;\n"
     /* Wake the runtimes: an empty payload means "due now", otherwise the
      * epoch at which the task falls due. Identical payloads coalesce within
      * a transaction, so a bulk insert sends one notification. */
     "  PERFORM pg_notify('moontask_tasks', CASE WHEN due <= now() THEN ''\n"
     "    ELSE extract(epoch FROM due)::text END);\n"
     "  RETURN task_id;\n"
     "END\n"
     "$fn$;\n"
     "\n"
     /* Marks a task completed inside its own transaction. It raises when the
      * runtime no longer holds the task (its lease expired and another
      * runtime took it), which aborts the transaction: the handler's effects
      * then roll back instead of being applied twice. */
     "CREATE FUNCTION moontask.complete(task_id bigint, owner text)\n"
     "RETURNS void LANGUAGE plpgsql AS $fn$\n"
     "BEGIN\n"
     "  UPDATE moontask.tasks SET state = 'completed', finished_at = now(),\n"
     "         locked_by = NULL, locked_until = NULL, last_error = NULL\n"
     "   WHERE id = task_id AND state = 'running' AND locked_by = owner;\n"
     "  IF NOT FOUND THEN\n"
     "    RAISE EXCEPTION 'moontask: task % is no longer held by this runtime', task_id\n"
     "      USING ERRCODE = '55000';\n"
     "  END IF;\n"
     "END\n"
     "$fn$;\n"},
    {2,
     /* Recurring schedules. A runtime turns each due fire into an ordinary
      * task row; next_fire_at is NULL until a runtime has computed it (a new
      * schedule, or one whose expression or zone changed), and error holds
      * why a runtime could not (a bad expression or an unknown zone). */
     "CREATE TABLE moontask.schedules (\n"
     "  name text PRIMARY KEY,\n"
     "  task text NOT NULL,\n"
     "  payload jsonb NOT NULL DEFAULT '{}'\n"
     "    CHECK (jsonb_typeof(payload) = 'object'),\n"
     "  expression text NOT NULL,\n"
     "  tz text NOT NULL DEFAULT 'UTC',\n"
     "  catch_up text NOT NULL DEFAULT 'once'\n"
     "    CHECK (catch_up IN ('once', 'skip', 'all')),\n"
     "  next_fire_at timestamptz,\n"
     "  last_fire_at timestamptz,\n"
     "  error text,\n"
     "  created_at timestamptz NOT NULL DEFAULT now(),\n"
     "  updated_at timestamptz NOT NULL DEFAULT now()\n"
     ");\n"
     "ALTER TABLE moontask.tasks ADD COLUMN schedule_name text,\n"
     "  ADD COLUMN fire_at timestamptz;\n"
     /* The exactly-once key: however many runtimes materialise fires, and
      * whichever of them dies halfway, a schedule's fire time has one task. */
     "CREATE UNIQUE INDEX tasks_schedule_fire ON moontask.tasks\n"
     "  (schedule_name, fire_at) WHERE schedule_name IS NOT NULL;\n"
     "\n"
     "CREATE FUNCTION moontask.schedule_recurring(name text, task text,\n"
     "    payload jsonb, expression text, tz text DEFAULT 'UTC')\n"
     "RETURNS void LANGUAGE plpgsql AS $fn$\n"
     "#variable_conflict use_column\n"
     "BEGIN\n"
     "  IF name IS NULL OR btrim(name) = '' OR length(name) > 200 THEN\n"
     "    RAISE EXCEPTION 'moontask.schedule_recurring: invalid schedule name %',\n"
     "      coalesce(quote_literal(name), 'NULL') USING ERRCODE = '22023';\n"
     "  END IF;\n"
     "  IF task IS NULL OR task !~ '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$' THEN\n"
     "    RAISE EXCEPTION 'moontask.schedule_recurring: invalid task name %',\n"
     "      coalesce(quote_literal(task), 'NULL') USING ERRCODE = '22023';\n"
     "  END IF;\n"
     "  IF payload IS NULL OR jsonb_typeof(payload) <> 'object' THEN\n"
     "    RAISE EXCEPTION 'moontask.schedule_recurring: payload must be a JSON object, not %',\n"
     "      coalesce(jsonb_typeof(payload), 'NULL') USING ERRCODE = '22023';\n"
     "  END IF;\n"
     "  IF expression IS NULL OR btrim(expression) = '' THEN\n"
     "    RAISE EXCEPTION 'moontask.schedule_recurring: an expression is required'\n"
     "      USING ERRCODE = '22023';\n"
     "  END IF;\n"
     "  IF tz IS NULL OR btrim(tz) = '' THEN\n"
     "    RAISE EXCEPTION 'moontask.schedule_recurring: a time zone is required'\n"
     "      USING ERRCODE = '22023';\n"
     "  END IF;\n"
     /* A changed expression or zone makes the old next fire meaningless:
      * NULL lets the next runtime recompute it from now, without firing
      * for the old definition. The error is cleared so that runtimes look
      * at the schedule again. */
     "  INSERT INTO moontask.schedules AS s (name, task, payload, expression, tz)\n"
     "  VALUES ($1, $2, $3, $4, $5)\n"
     "  ON CONFLICT (name) DO UPDATE SET\n"
     "    task = excluded.task, payload = excluded.payload,\n"
     "    expression = excluded.expression, tz = excluded.tz,\n"
     "    next_fire_at = CASE WHEN s.expression = excluded.expression\n"
     "                         AND s.tz = excluded.tz AND s.error IS NULL\n"
     "                        THEN s.next_fire_at END,\n"
     "    error = NULL, updated_at = now();\n"
     "  PERFORM pg_notify('moontask_tasks', '');\n"
     "END\n"
     "$fn$;\n"
     "\n"
     "CREATE FUNCTION moontask.unschedule_recurring(name text)\n"
     "RETURNS boolean LANGUAGE plpgsql AS $fn$\n"
     "BEGIN\n"
     "  DELETE FROM moontask.schedules s WHERE s.name = $1;\n"
     "  RETURN FOUND;\n"
     "END\n"
     "$fn$;\n"},
};

#define MIGRATION_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

static int exec_simple(PGconn *conn, const char *sql, mt_err_t *err) {
  PGresult *res = PQexec(conn, sql);
  ExecStatusType st = PQresultStatus(res);
  int rc = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
               ? 0
               : mt_pg_result_error(res, conn, err);
  PQclear(res);
  return rc;
}

static int current_version(PGconn *conn, int *version, mt_err_t *err) {
  PGresult *res = mt_pg_exec(
      conn, "SELECT coalesce(max(version), 0) FROM moontask.migrations", 0,
      NULL, err);
  if (res == NULL)
    return MT_EDB;
  *version = atoi(PQgetvalue(res, 0, 0));
  PQclear(res);
  return 0;
}

int mt_pg_migrate(PGconn *conn, int *applied, mt_err_t *err) {
  int rc, version = 0, count = 0;
  if ((rc = exec_simple(conn, "SELECT pg_advisory_lock(" MT_MIGRATE_LOCK ")",
                        err)) != 0)
    return rc;
  if ((rc = exec_simple(conn,
                        "CREATE SCHEMA IF NOT EXISTS moontask;"
                        "CREATE TABLE IF NOT EXISTS moontask.migrations ("
                        " version integer PRIMARY KEY,"
                        " applied_at timestamptz NOT NULL DEFAULT now())",
                        err)) != 0)
    goto done;
  if ((rc = current_version(conn, &version, err)) != 0)
    goto done;
  if (version > migrations[MIGRATION_COUNT - 1].version) {
    rc = mt_err_set(err, MT_EDB,
                    "the database schema (version %d) is newer than this "
                    "moontask (version %d)",
                    version, migrations[MIGRATION_COUNT - 1].version);
    goto done;
  }
  for (int i = 0; i < MIGRATION_COUNT; i++) {
    if (migrations[i].version <= version)
      continue;
    char record[128];
    snprintf(record, sizeof record,
             "INSERT INTO moontask.migrations (version) VALUES (%d)",
             migrations[i].version);
    if ((rc = exec_simple(conn, "BEGIN", err)) != 0)
      goto done;
    if ((rc = exec_simple(conn, migrations[i].sql, err)) != 0 ||
        (rc = exec_simple(conn, record, err)) != 0) {
      char detail[MT_ERR_MAX];
      snprintf(detail, sizeof detail, "%s", err ? err->msg : "");
      exec_simple(conn, "ROLLBACK", NULL);
      rc = mt_err_set(err, MT_EDB, "migration %d failed: %s",
                      migrations[i].version, detail);
      goto done;
    }
    if ((rc = exec_simple(conn, "COMMIT", err)) != 0)
      goto done;
    count++;
  }
done:
  exec_simple(conn, "SELECT pg_advisory_unlock(" MT_MIGRATE_LOCK ")", NULL);
  if (applied != NULL)
    *applied = count;
  return rc;
}

int mt_pg_check_schema(PGconn *conn, mt_err_t *err) {
  int version = 0;
  int want = migrations[MIGRATION_COUNT - 1].version;
  PGresult *res = mt_pg_exec(
      conn, "SELECT to_regclass('moontask.migrations') IS NOT NULL", 0, NULL,
      err);
  if (res == NULL)
    return MT_EDB;
  int exists = PQgetvalue(res, 0, 0)[0] == 't';
  PQclear(res);
  if (exists && current_version(conn, &version, err) != 0)
    return MT_EDB;
  if (version < want)
    return mt_err_set(err, MT_EDB,
                      "the database schema is at version %d, this moontask "
                      "needs %d: run `moontask migrate`",
                      version, want);
  return 0;
}
