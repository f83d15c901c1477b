#include "postgres/migrate.h"

#include <stdio.h>
#include <stdlib.h>

#include "postgres/pg.h"

/* Taken around migrations so that concurrent `moontask migrate` runs queue
 * up. The number is arbitrary but fixed: "moontask" in ASCII, truncated. */
#define MT_MIGRATE_LOCK "7885667961616273"

/* The argument checks of moontask.schedule and moontask.schedule_recurring:
 * migrations 1 and 2 created the functions with them, and migration 3
 * recreates the functions with the same checks. */
#define SCHEDULE_ARG_CHECKS                                                                    \
  "  IF name IS NULL OR name !~ '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$' THEN\n" \
  "    RAISE EXCEPTION 'moontask.schedule: invalid task name %',\n"                            \
  "      coalesce(quote_literal(name), 'NULL') USING ERRCODE = '22023';\n"                     \
  "  END IF;\n"                                                                                \
  "  IF payload IS NULL OR jsonb_typeof(payload) <> 'object' THEN\n"                           \
  "    RAISE EXCEPTION 'moontask.schedule: payload must be a JSON object, not %',\n"           \
  "      coalesce(jsonb_typeof(payload), 'NULL') USING ERRCODE = '22023';\n"                   \
  "  END IF;\n"

/* moontask.schedule's key check (migration 3, whose comment says why),
 * kept by migration 7's schedule. */
#define SCHEDULE_KEY_CHECK                                                              \
  "  IF octet_length(key) > 512 THEN\n"                                                 \
  "    RAISE EXCEPTION 'moontask.schedule: key is % bytes, at most 512 are allowed',\n" \
  "      octet_length(key) USING ERRCODE = '22023';\n"                                  \
  "  END IF;\n"

/* Wakes the runtimes for a task due at `due` (a plpgsql variable): an
 * empty payload means "due now", otherwise the epoch it falls due at
 * (pg_backend.c reads it). Identical payloads coalesce within a
 * transaction, so a bulk insert sends one notification. */
#define NOTIFY_DUE                                                         \
  "  PERFORM pg_notify('moontask_tasks', CASE WHEN due <= now() THEN ''\n" \
  "    ELSE extract(epoch FROM due)::text END);\n"

/* A task's public fields, moontask.task's attributes from migration 7 on,
 * as get and find select them from moontask.tasks t. */
#define TASK_PUBLIC_COLUMNS                                       \
  "t.id, t.name, t.payload, t.state, t.run_at, t.attempts,\n"     \
  "         t.max_attempts, t.last_error, t.key, t.created_at,\n" \
  "         t.started_at, t.finished_at, t.queue, t.priority::integer"

#define SCHEDULE_RECURRING_ARG_CHECKS                                                          \
  "  IF name IS NULL OR btrim(name) = '' OR length(name) > 200 THEN\n"                         \
  "    RAISE EXCEPTION 'moontask.schedule_recurring: invalid schedule name %',\n"              \
  "      coalesce(quote_literal(name), 'NULL') USING ERRCODE = '22023';\n"                     \
  "  END IF;\n"                                                                                \
  "  IF task IS NULL OR task !~ '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$' THEN\n" \
  "    RAISE EXCEPTION 'moontask.schedule_recurring: invalid task name %',\n"                  \
  "      coalesce(quote_literal(task), 'NULL') USING ERRCODE = '22023';\n"                     \
  "  END IF;\n"                                                                                \
  "  IF payload IS NULL OR jsonb_typeof(payload) <> 'object' THEN\n"                           \
  "    RAISE EXCEPTION 'moontask.schedule_recurring: payload must be a JSON object, not %',\n" \
  "      coalesce(jsonb_typeof(payload), 'NULL') USING ERRCODE = '22023';\n"                   \
  "  END IF;\n"                                                                                \
  "  IF expression IS NULL OR btrim(expression) = '' THEN\n"                                   \
  "    RAISE EXCEPTION 'moontask.schedule_recurring: an expression is required'\n"             \
  "      USING ERRCODE = '22023';\n"                                                           \
  "  END IF;\n"                                                                                \
  "  IF tz IS NULL OR btrim(tz) = '' THEN\n"                                                   \
  "    RAISE EXCEPTION 'moontask.schedule_recurring: a time zone is required'\n"               \
  "      USING ERRCODE = '22023';\n"                                                           \
  "  END IF;\n"

typedef struct migration_s {
  int version;
  const char *sql;
} migration_t;

// clang-format off
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
     "BEGIN\n" SCHEDULE_ARG_CHECKS
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
     NOTIFY_DUE
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
     "BEGIN\n" SCHEDULE_RECURRING_ARG_CHECKS
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
    {3,
     /* Least privilege. Applications reach tasks only through the functions
      * below, which run as their owner, the role that ran `moontask
      * migrate`: an application role is granted EXECUTE on them and nothing
      * on the tables. A SECURITY DEFINER function runs with the owner's
      * rights, so each one fixes its search_path: otherwise a caller could
      * put a schema of its own in front of pg_catalog and have the owner
      * run its jsonb_typeof() or now(). pg_temp goes last for the same
      * reason (it would otherwise be searched first for tables). Bodies
      * name moontask's objects with their schema.
      *
      * created_by is the login role (session_user) of whoever scheduled the
      * task: inside these functions current_user is the owner, but
      * session_user is still the caller's. Existing rows get the role that
      * runs this migration. A schedule's fires carry its created_by. */
     "ALTER TABLE moontask.tasks\n"
     "  ADD COLUMN created_by text NOT NULL DEFAULT session_user;\n"
     "ALTER TABLE moontask.schedules\n"
     "  ADD COLUMN created_by text NOT NULL DEFAULT session_user;\n"
     "\n"
     /* Whether the caller may see or change a row created by `creator`: the
      * caller is a member of that role, or of the owner (the runtime's
      * role, which reads the tables directly anyway). A creator role that
      * was dropped makes to_regrole NULL, where pg_has_role by name would
      * raise. */
     "CREATE FUNCTION moontask.owned_by_caller(creator text)\n"
     "RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "  SELECT pg_has_role(session_user, current_user, 'MEMBER')\n"
     "      OR coalesce(pg_has_role(session_user,\n"
     "           to_regrole(quote_ident(creator))::oid, 'MEMBER'), false)\n"
     "$fn$;\n"
     "\n"
     "CREATE OR REPLACE FUNCTION moontask.schedule(name text, payload jsonb,\n"
     "    run_at timestamptz DEFAULT now(), key text DEFAULT NULL)\n"
     "RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "#variable_conflict use_column\n"
     "DECLARE\n"
     "  task_id bigint;\n"
     "  due timestamptz := coalesce(run_at, now());\n"
     "BEGIN\n" SCHEDULE_ARG_CHECKS
     /* A key names a task ("invoice:42:reminder", a hash): 512 bytes is
      * ample for that and well below the ~2700 bytes a btree entry of
      * tasks_live_key may take, so the caller meets this message instead
      * of the index's "index row requires N bytes" (54000). Bytes, not
      * characters, because the index counts bytes. The rest is migration
      * 1's. */
     SCHEDULE_KEY_CHECK
     "  LOOP\n"
     "    INSERT INTO moontask.tasks AS t (name, payload, run_at, key, created_by)\n"
     "    VALUES ($1, $2, due, $4, session_user)\n"
     "    ON CONFLICT (key) WHERE key IS NOT NULL AND state IN ('scheduled', 'running')\n"
     "    DO NOTHING RETURNING t.id INTO task_id;\n"
     "    EXIT WHEN task_id IS NOT NULL;\n"
     "    SELECT t.id INTO task_id FROM moontask.tasks t\n"
     "     WHERE t.key = $4 AND t.state IN ('scheduled', 'running');\n"
     "    EXIT WHEN task_id IS NOT NULL;\n"
     "  END LOOP;\n"
     NOTIFY_DUE
     "  RETURN task_id;\n"
     "END\n"
     "$fn$;\n"
     "\n"
     /* The public fields of a task, as moontask.get returns them (a
      * RETURNS TABLE would clash with the parameter's name, id). */
     "CREATE TYPE moontask.task AS (id bigint, name text, payload jsonb,\n"
     "  state text, run_at timestamptz, attempts integer, max_attempts integer,\n"
     "  last_error text, key text, created_at timestamptz,\n"
     "  started_at timestamptz, finished_at timestamptz);\n"
     "\n"
     /* No row for a task that does not exist and for another role's task
      * alike: a caller cannot tell them apart. */
     "CREATE FUNCTION moontask.get(id bigint)\n"
     "RETURNS SETOF moontask.task LANGUAGE sql STABLE ROWS 1 SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "  SELECT t.id, t.name, t.payload, t.state, t.run_at, t.attempts,\n"
     "         t.max_attempts, t.last_error, t.key, t.created_at,\n"
     "         t.started_at, t.finished_at\n"
     "    FROM moontask.tasks t\n"
     "   WHERE t.id = $1 AND moontask.owned_by_caller(t.created_by)\n"
     "$fn$;\n"
     "\n"
     /* Only a scheduled task: a running one is in a handler's hands. A
      * concurrent claim holds the row; once it commits the row is running
      * and this returns false. */
     "CREATE FUNCTION moontask.cancel(id bigint)\n"
     "RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "BEGIN\n"
     "  UPDATE moontask.tasks t SET state = 'cancelled', finished_at = now()\n"
     "   WHERE t.id = $1 AND t.state = 'scheduled'\n"
     "     AND moontask.owned_by_caller(t.created_by);\n"
     "  RETURN FOUND;\n"
     "END\n"
     "$fn$;\n"
     "\n"
     /* Schedule names are one namespace for every role. Redefining
      * another role's schedule would replace its task and payload with the
      * caller's, so it is refused. Whoever last defined a schedule owns it
      * and its future fires (a runtime's task-file schedules are the
      * runtime's). */
     "CREATE OR REPLACE FUNCTION moontask.schedule_recurring(name text, task text,\n"
     "    payload jsonb, expression text, tz text DEFAULT 'UTC')\n"
     "RETURNS void LANGUAGE plpgsql SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "#variable_conflict use_column\n"
     "BEGIN\n" SCHEDULE_RECURRING_ARG_CHECKS
     "  INSERT INTO moontask.schedules AS s\n"
     "    (name, task, payload, expression, tz, created_by)\n"
     "  VALUES ($1, $2, $3, $4, $5, session_user)\n"
     "  ON CONFLICT (name) DO UPDATE SET\n"
     "    task = excluded.task, payload = excluded.payload,\n"
     "    expression = excluded.expression, tz = excluded.tz,\n"
     "    created_by = excluded.created_by,\n"
     "    next_fire_at = CASE WHEN s.expression = excluded.expression\n"
     "                         AND s.tz = excluded.tz AND s.error IS NULL\n"
     "                        THEN s.next_fire_at END,\n"
     "    error = NULL, updated_at = now()\n"
     "  WHERE moontask.owned_by_caller(s.created_by);\n"
     "  IF NOT FOUND THEN\n"
     "    RAISE EXCEPTION 'moontask.schedule_recurring: schedule % belongs to another role',\n"
     "      quote_literal(name) USING ERRCODE = '42501';\n"
     "  END IF;\n"
     "  PERFORM pg_notify('moontask_tasks', '');\n"
     "END\n"
     "$fn$;\n"
     "\n"
     /* Another role's schedule is, to the caller, no schedule: false. */
     "CREATE OR REPLACE FUNCTION moontask.unschedule_recurring(name text)\n"
     "RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "BEGIN\n"
     "  DELETE FROM moontask.schedules s\n"
     "   WHERE s.name = $1 AND moontask.owned_by_caller(s.created_by);\n"
     "  RETURN FOUND;\n"
     "END\n"
     "$fn$;\n"
     "\n"
     /* complete's body already names moontask.tasks; it is the runtime's
      * alone and is granted to no application. */
     "ALTER FUNCTION moontask.complete(bigint, text) SECURITY DEFINER\n"
     "  SET search_path = pg_catalog, pg_temp;\n"
     "\n"
     /* New functions are executable by PUBLIC by default, and the
      * functions above are now the way around the tables' privileges: each
      * role gets only what the README's grants give it. */
     "REVOKE ALL ON ALL FUNCTIONS IN SCHEMA moontask FROM PUBLIC;\n"
     "REVOKE ALL ON ALL TABLES IN SCHEMA moontask FROM PUBLIC;\n"
     "REVOKE ALL ON ALL SEQUENCES IN SCHEMA moontask FROM PUBLIC;\n"
     "REVOKE ALL ON SCHEMA moontask FROM PUBLIC;\n"
     /* Meant to do the same for the functions later migrations add; it
      * does not (a schema's default privileges only add to the global
      * ones), so each migration revokes its new functions by name (7). */
     "ALTER DEFAULT PRIVILEGES IN SCHEMA moontask\n"
     "  REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;\n"},
    {4,
     /* The transactional outbox of a backend that delivers tasks through
      * another system (the AWS backend: postgres/outbox.h). Each row says
      * "bring the other system in line with this task, or this recurring
      * schedule, as it is now": the relay reads the row's current state when
      * it publishes, so rows are idempotent and a later one supersedes an
      * earlier one. Triggers write them in the transaction that made the
      * change, whoever made it (moontask.schedule from an application, a
      * retry record, a lease rescue, the CLI), so a rolled-back change
      * never reaches AWS and a committed one always does. A `cleanup` row
      * (a runtime's, for a finished task whose schedule must go) only ever
      * withdraws. */
     "CREATE TABLE moontask.outbox (\n"
     "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
     "  task_id bigint,\n"
     "  schedule_name text,\n"
     "  cleanup boolean NOT NULL DEFAULT false,\n"
     "  created_at timestamptz NOT NULL DEFAULT now(),\n"
     "  attempts integer NOT NULL DEFAULT 0,\n"
     "  not_before timestamptz NOT NULL DEFAULT now(),\n"
     "  last_error text,\n"
     "  CHECK ((task_id IS NULL) <> (schedule_name IS NULL))\n"
     ");\n"
     "CREATE INDEX outbox_not_before ON moontask.outbox (not_before);\n"
     "\n"
     "CREATE FUNCTION moontask.outbox_task() RETURNS trigger\n"
     "LANGUAGE plpgsql SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "BEGIN\n"
     "  INSERT INTO moontask.outbox (task_id)\n"
     "  VALUES (CASE TG_OP WHEN 'DELETE' THEN OLD.id ELSE NEW.id END);\n"
     "  PERFORM pg_notify('moontask_outbox', '');\n"
     "  RETURN NULL;\n"
     "END\n"
     "$fn$;\n"
     "\n"
     "CREATE FUNCTION moontask.outbox_schedule() RETURNS trigger\n"
     "LANGUAGE plpgsql SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "BEGIN\n"
     "  INSERT INTO moontask.outbox (schedule_name)\n"
     "  VALUES (CASE TG_OP WHEN 'DELETE' THEN OLD.name ELSE NEW.name END);\n"
     "  PERFORM pg_notify('moontask_outbox', '');\n"
     "  RETURN NULL;\n"
     "END\n"
     "$fn$;\n"
     "\n"
     /* A task needs publishing when it becomes scheduled or its run_at
      * moves (new, retried, released, rescued, retried by hand), and its
      * schedule withdrawing when it is cancelled or deleted while
      * scheduled. Claims and completions match no WHEN, so they call
      * nothing. */
     "CREATE TRIGGER tasks_outbox_insert AFTER INSERT ON moontask.tasks\n"
     "  FOR EACH ROW WHEN (NEW.state = 'scheduled')\n"
     "  EXECUTE FUNCTION moontask.outbox_task();\n"
     "CREATE TRIGGER tasks_outbox_update AFTER UPDATE OF state, run_at\n"
     "  ON moontask.tasks FOR EACH ROW\n"
     "  WHEN (NEW.state = 'scheduled' AND (OLD.state <> 'scheduled'\n"
     "                                     OR OLD.run_at <> NEW.run_at)\n"
     "        OR NEW.state = 'cancelled' AND OLD.state = 'scheduled')\n"
     "  EXECUTE FUNCTION moontask.outbox_task();\n"
     "CREATE TRIGGER tasks_outbox_delete AFTER DELETE ON moontask.tasks\n"
     "  FOR EACH ROW WHEN (OLD.state = 'scheduled')\n"
     "  EXECUTE FUNCTION moontask.outbox_task();\n"
     "CREATE TRIGGER schedules_outbox_write AFTER INSERT OR DELETE\n"
     "  ON moontask.schedules FOR EACH ROW\n"
     "  EXECUTE FUNCTION moontask.outbox_schedule();\n"
     /* A redefinition, and one that clears an error (schedule_recurring
      * does, with the same definition too): the relay looks again, and
      * records the error again if it still holds. Its own recording of an
      * error matches neither. */
     "CREATE TRIGGER schedules_outbox_update\n"
     "  AFTER UPDATE OF task, payload, expression, tz, error\n"
     "  ON moontask.schedules FOR EACH ROW\n"
     "  WHEN ((OLD.task, OLD.payload, OLD.expression, OLD.tz)\n"
     "         IS DISTINCT FROM (NEW.task, NEW.payload, NEW.expression, NEW.tz)\n"
     "        OR OLD.error IS NOT NULL AND NEW.error IS NULL)\n"
     "  EXECUTE FUNCTION moontask.outbox_schedule();\n"
     /* Off until a runtime of the AWS backend turns them on: the PostgreSQL
      * backend pays nothing for them (mt_outbox_set_mode). */
     "ALTER TABLE moontask.tasks DISABLE TRIGGER tasks_outbox_insert,\n"
     "  DISABLE TRIGGER tasks_outbox_update,\n"
     "  DISABLE TRIGGER tasks_outbox_delete;\n"
     "ALTER TABLE moontask.schedules DISABLE TRIGGER schedules_outbox_write,\n"
     "  DISABLE TRIGGER schedules_outbox_update;\n"
     /* Nobody calls them: a trigger runs its function without asking for
      * EXECUTE. (Migration 3's default privileges cover only functions
      * made by the role that ran it.) */
     "REVOKE ALL ON moontask.outbox FROM PUBLIC;\n"
     "REVOKE ALL ON FUNCTION moontask.outbox_task(), moontask.outbox_schedule()\n"
     "  FROM PUBLIC;\n"},
    {5,
     /* The version of its task definition (a content hash, registry.h)
      * that each attempt ran, in attempt order. An attempt's end appends
      * it: moontask.complete below, a failure record, the runtime's
      * acknowledgement of a handler that ran no transaction; NULL for one
      * whose runtime stopped before it could say. A retry by hand keeps
      * the list: it is the task's whole history. NULL before any attempt
      * ended. */
     "ALTER TABLE moontask.tasks ADD COLUMN versions text[];\n"
     "\n"
     /* A task's lease is held exactly while it runs. The runtime's
      * statements test the lease alone (MT_PG_HELD_BY says why), which
      * this keeps sound whoever writes the table: an operator's UPDATE,
      * or a handler, whose connection has the owner's rights. (Checking
      * the existing rows reads the table once, under the migration's
      * lock.) */
     "ALTER TABLE moontask.tasks ADD CONSTRAINT tasks_lease_held\n"
     "  CHECK ((state = 'running') = (locked_by IS NOT NULL));\n"
     "\n"
     /* Migration 1's complete with the version: the runtime's alone,
      * granted to no application. The old one stays for a runtime of the
      * previous release during a rolling deploy. */
     "CREATE FUNCTION moontask.complete(task_id bigint, owner text,\n"
     "    version text)\n"
     "RETURNS void LANGUAGE plpgsql SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "BEGIN\n"
     "  UPDATE moontask.tasks SET state = 'completed', finished_at = now(),\n"
     "         locked_by = NULL, locked_until = NULL, last_error = NULL,\n"
     "         versions = array_append(versions, version)\n"
     /* The lease test alone, as MT_PG_HELD_BY says why (a migration
      * keeps its text: no macro here). */
     "   WHERE id = task_id AND locked_by = owner;\n"
     "  IF NOT FOUND THEN\n"
     "    RAISE EXCEPTION 'moontask: task % is no longer held by this runtime', task_id\n"
     "      USING ERRCODE = '55000';\n"
     "  END IF;\n"
     "END\n"
     "$fn$;\n"
     "REVOKE ALL ON FUNCTION moontask.complete(bigint, text, text) FROM PUBLIC;\n"},
    {6,
     /* Retention (postgres/retention.h) deletes the finished tasks of one
      * state older than a cut-off, a few hundred at a time: this index
      * hands it exactly those, oldest first, however many newer or live
      * rows the table holds. Live tasks are outside its predicate, so a
      * claim pays nothing for it; a task's end adds one entry (its UPDATE
      * changes state, so it writes new entries in every index anyway). A
      * plain CREATE INDEX, as a migration runs in a transaction: on a big
      * table it holds writes off while it builds. */
     "CREATE INDEX tasks_finished ON moontask.tasks (state, finished_at)\n"
     "  WHERE state IN ('completed', 'failed', 'cancelled');\n"},
    {7,
     /* Queues, priorities and limits (README "Queues and priorities"). A
      * task's queue and priority are fixed when it is scheduled: given by
      * the caller, or else its task file's (moontask.definitions below),
      * or else 'default' and 0. Adding a column with a constant default
      * rewrites nothing. */
     "ALTER TABLE moontask.tasks\n"
     "  ADD COLUMN queue text NOT NULL DEFAULT 'default',\n"
     "  ADD COLUMN priority smallint NOT NULL DEFAULT 0;\n"
     "\n"
     /* Claims read this index: one queue's due tasks in the order they
      * run, higher priority first, then run_at. tasks_available stays for
      * the questions asked by run_at alone (the queue lag, whether
      * --drain is done). Claims walk it one priority at a time
      * (migration 8 says why). */
     "CREATE INDEX tasks_ready ON moontask.tasks (queue, priority DESC, run_at, id)\n"
     "  WHERE state = 'scheduled';\n"
     /* moontask.find(key) returns a finished task too, which
      * tasks_live_key no longer holds. */
     "CREATE INDEX tasks_key ON moontask.tasks (key, id)\n"
     "  WHERE key IS NOT NULL;\n"
     "\n"
     /* The named queues and their limits, as config.lua's `queues` declares
      * them (a runtime writes them at start: mt_store_sync_queues). The
      * limits are in the database because they hold across every runtime
      * sharing it. A rate of rate_limit starts per rate_period seconds is
      * kept as spacing: next_start is the earliest the next start may be.
      * 'default' has no row and no limit. */
     "CREATE TABLE moontask.queues (\n"
     "  name text PRIMARY KEY CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]*$' AND name <> 'default'),\n"
     "  concurrency integer CHECK (concurrency >= 1),\n"
     "  rate_limit integer CHECK (rate_limit >= 1),\n"
     "  rate_period float8 CHECK (rate_period > 0),\n"
     "  next_start timestamptz,\n"
     "  updated_at timestamptz NOT NULL DEFAULT now(),\n"
     "  CHECK ((rate_limit IS NULL) = (rate_period IS NULL))\n"
     ");\n"
     "\n"
     /* What the runtimes' task files say of each task name that
      * moontask.schedule needs, for a caller that does not say it
      * (mt_store_sync_definitions). */
     "CREATE TABLE moontask.definitions (\n"
     "  name text PRIMARY KEY,\n"
     "  queue text NOT NULL DEFAULT 'default',\n"
     "  priority smallint NOT NULL DEFAULT 0,\n"
     "  updated_at timestamptz NOT NULL DEFAULT now()\n"
     ");\n"
     "\n"
     /* schedule gains priority, queue and replace. A second function of the
      * same name with more defaults would make every call of the old one
      * ambiguous, so the old one goes, and the roles granted EXECUTE on it
      * are granted the new one: an application keeps working across the
      * upgrade. Existing 4-argument calls reach the new one unchanged. */
     "CREATE TEMP TABLE moontask_schedule_grants ON COMMIT DROP AS\n"
     "  SELECT a.grantee::regrole::text AS grantee\n"
     "    FROM pg_proc p, aclexplode(p.proacl) a\n"
     "   WHERE p.oid = 'moontask.schedule(text, jsonb, timestamptz, text)'::regprocedure\n"
     "     AND a.privilege_type = 'EXECUTE' AND a.grantee NOT IN (0, p.proowner);\n"
     "DROP FUNCTION moontask.schedule(text, jsonb, timestamptz, text);\n"
     "CREATE FUNCTION moontask.schedule(name text, payload jsonb,\n"
     "    run_at timestamptz DEFAULT now(), key text DEFAULT NULL,\n"
     "    priority integer DEFAULT NULL, queue text DEFAULT NULL,\n"
     "    replace boolean DEFAULT false)\n"
     "RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "#variable_conflict use_column\n"
     "DECLARE\n"
     "  task_id bigint;\n"
     "  due timestamptz := coalesce(run_at, now());\n"
     "  q text := queue;\n"
     "  prio integer := priority;\n"
     "BEGIN\n" SCHEDULE_ARG_CHECKS SCHEDULE_KEY_CHECK
     "  IF replace AND key IS NULL THEN\n"
     "    RAISE EXCEPTION 'moontask.schedule: replace needs a key'\n"
     "      USING ERRCODE = '22023';\n"
     "  END IF;\n"
     "  IF q IS NULL OR prio IS NULL THEN\n"
     "    SELECT coalesce(q, d.queue), coalesce(prio, d.priority) INTO q, prio\n"
     "      FROM (SELECT) AS one LEFT JOIN moontask.definitions d ON d.name = $1;\n"
     "  END IF;\n"
     "  q := coalesce(q, 'default');\n"
     "  prio := coalesce(prio, 0);\n"
     "  IF prio NOT BETWEEN -32768 AND 32767 THEN\n"
     "    RAISE EXCEPTION 'moontask.schedule: priority % is out of range (-32768 to 32767)',\n"
     "      prio USING ERRCODE = '22023';\n"
     "  END IF;\n"
     /* KEY SHARE: a runtime's sync that would delete the queue's row, for
      * want of tasks in it, waits for this transaction and then sees its
      * task (mt_store_sync_queues locks the rows FOR UPDATE first). Claims
      * lock the row FOR NO KEY UPDATE, which this does not hold up. */
     "  IF q <> 'default' THEN\n"
     "    PERFORM FROM moontask.queues x WHERE x.name = q FOR KEY SHARE;\n"
     "    IF NOT FOUND THEN\n"
     "      RAISE EXCEPTION 'moontask.schedule: unknown queue %: declare it in config.lua''s queues',\n"
     "        quote_literal(q) USING ERRCODE = '22023';\n"
     "    END IF;\n"
     "  END IF;\n"
     "  LOOP\n"
     "    INSERT INTO moontask.tasks AS t (name, payload, run_at, key, created_by, queue, priority)\n"
     "    VALUES ($1, $2, due, $4, session_user, q, prio)\n"
     "    ON CONFLICT (key) WHERE key IS NOT NULL AND state IN ('scheduled', 'running')\n"
     "    DO NOTHING RETURNING t.id INTO task_id;\n"
     "    EXIT WHEN task_id IS NOT NULL;\n"
     "    IF NOT replace THEN\n"
     "      SELECT t.id INTO task_id FROM moontask.tasks t\n"
     "       WHERE t.key = $4 AND t.state IN ('scheduled', 'running');\n"
     "      EXIT WHEN task_id IS NOT NULL;\n"
     "      CONTINUE;\n"
     "    END IF;\n"
     "    UPDATE moontask.tasks t SET name = $1, payload = $2, run_at = due,\n"
     "           queue = q, priority = prio, attempts = 0, max_attempts = NULL,\n"
     "           last_error = NULL\n"
     "     WHERE t.key = $4 AND t.state = 'scheduled'\n"
     "       AND moontask.owned_by_caller(t.created_by)\n"
     "    RETURNING t.id INTO task_id;\n"
     "    EXIT WHEN task_id IS NOT NULL;\n"
     "    UPDATE moontask.tasks t SET key = NULL\n"
     "     WHERE t.key = $4 AND t.state = 'running'\n"
     "       AND moontask.owned_by_caller(t.created_by);\n"
     "    IF NOT FOUND AND EXISTS (SELECT FROM moontask.tasks t WHERE t.key = $4\n"
     "                              AND t.state IN ('scheduled', 'running')) THEN\n"
     "      RAISE EXCEPTION 'moontask.schedule: key % is held by another role''s task',\n"
     "        quote_literal(key) USING ERRCODE = '42501';\n"
     "    END IF;\n"
     "  END LOOP;\n"
     NOTIFY_DUE
     "  RETURN task_id;\n"
     "END\n"
     "$fn$;\n"
     "\n"
     "DO $grant$\n"
     "DECLARE\n"
     "  r record;\n"
     "BEGIN\n"
     "  FOR r IN SELECT grantee FROM pg_temp.moontask_schedule_grants LOOP\n"
     "    EXECUTE format('GRANT EXECUTE ON FUNCTION moontask.schedule(text, jsonb,'\n"
     "                   ' timestamptz, text, integer, text, boolean) TO %s', r.grantee);\n"
     "  END LOOP;\n"
     "END\n"
     "$grant$;\n"
     "\n"
     /* get and find return the task's queue and priority too. */
     "ALTER TYPE moontask.task ADD ATTRIBUTE queue text, ADD ATTRIBUTE priority integer;\n"
     "\n"
     "CREATE OR REPLACE FUNCTION moontask.get(id bigint)\n"
     "RETURNS SETOF moontask.task LANGUAGE sql STABLE ROWS 1 SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "  SELECT " TASK_PUBLIC_COLUMNS "\n"
     "    FROM moontask.tasks t\n"
     "   WHERE t.id = $1 AND moontask.owned_by_caller(t.created_by)\n"
     "$fn$;\n"
     "\n"
     /* The task that holds key: the live one, or else the latest that did. */
     "CREATE FUNCTION moontask.find(key text)\n"
     "RETURNS SETOF moontask.task LANGUAGE sql STABLE ROWS 1 SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "  SELECT " TASK_PUBLIC_COLUMNS "\n"
     "    FROM moontask.tasks t\n"
     "   WHERE t.key = $1 AND moontask.owned_by_caller(t.created_by)\n"
     "   ORDER BY t.state IN ('scheduled', 'running') DESC, t.id DESC\n"
     "   LIMIT 1\n"
     "$fn$;\n"
     "\n"
     /* cancel, by the key of the scheduled task. */
     "CREATE FUNCTION moontask.cancel_key(key text)\n"
     "RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "BEGIN\n"
     "  UPDATE moontask.tasks t SET state = 'cancelled', finished_at = now()\n"
     "   WHERE t.key = $1 AND t.state = 'scheduled'\n"
     "     AND moontask.owned_by_caller(t.created_by);\n"
     "  RETURN FOUND;\n"
     "END\n"
     "$fn$;\n"
     "\n"
     /* Moves a scheduled task and, with a payload, changes what it will be
      * run with (the runtime validates it against the task's schema when
      * it claims the task, as for a scheduled one). NULL run_at keeps the
      * task's. The task keeps its id, attempts and key: "cancel the merge
      * task and schedule another" in one statement. */
     "CREATE FUNCTION moontask.reschedule(id bigint, run_at timestamptz,\n"
     "    payload jsonb DEFAULT NULL)\n"
     "RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "DECLARE\n"
     "  due timestamptz;\n"
     "BEGIN\n"
     "  IF payload IS NOT NULL AND jsonb_typeof(payload) <> 'object' THEN\n"
     "    RAISE EXCEPTION 'moontask.reschedule: payload must be a JSON object, not %',\n"
     "      jsonb_typeof(payload) USING ERRCODE = '22023';\n"
     "  END IF;\n"
     "  UPDATE moontask.tasks t SET run_at = coalesce($2, t.run_at),\n"
     "         payload = coalesce($3, t.payload)\n"
     "   WHERE t.id = $1 AND t.state = 'scheduled'\n"
     "     AND moontask.owned_by_caller(t.created_by)\n"
     "  RETURNING t.run_at INTO due;\n"
     "  IF NOT FOUND THEN\n"
     "    RETURN false;\n"
     "  END IF;\n"
     NOTIFY_DUE
     "  RETURN true;\n"
     "END\n"
     "$fn$;\n"
     "\n"
     /* A handler's `return ctx.snooze(s)`: in the handler's transaction,
      * like complete, the task goes back to `scheduled` for s seconds,
      * its effects commit with it, and the attempt it ran is not counted.
      * The runtime's alone, granted to no application. */
     "CREATE FUNCTION moontask.snooze(task_id bigint, owner text, seconds float8)\n"
     "RETURNS void LANGUAGE plpgsql SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "DECLARE\n"
     "  due timestamptz;\n"
     "BEGIN\n"
     "  UPDATE moontask.tasks SET state = 'scheduled',\n"
     "         run_at = now() + seconds * interval '1 second',\n"
     "         attempts = attempts - 1, started_at = NULL,\n"
     "         locked_by = NULL, locked_until = NULL\n"
     "   WHERE id = task_id AND locked_by = owner\n"
     "  RETURNING run_at INTO due;\n"
     "  IF NOT FOUND THEN\n"
     "    RAISE EXCEPTION 'moontask: task % is no longer held by this runtime', task_id\n"
     "      USING ERRCODE = '55000';\n"
     "  END IF;\n"
     "  PERFORM pg_notify('moontask_tasks', extract(epoch FROM due)::text);\n"
     "END\n"
     "$fn$;\n"
     "\n"
     /* A claim's rows (CLAIMED_COLUMNS in pg_backend.c), and rows whose
      * only value is wait_until: when a rate-limited queue may start
      * again (epoch seconds), for the runtime's timer. */
     /* What pick_queued returns: a task it picked, or (id NULL) when a
      * rate-limited queue may start again, in epoch seconds, for the
      * runtime's timer. */
     "CREATE TYPE moontask.pick AS (id bigint, wait_until float8);\n"
     "\n"
     /* Picks the due tasks of the named queues that the claim statement
      * (pg_backend.c) then claims, with the default queue's, in its one
      * UPDATE: up to room in all and within each queue's limits. Each queue
      * gets at most an equal share of room (default counting as one), so
      * no queue starves another. The picked rows stay locked until that
      * statement commits.
      *
      * A limited queue's row is locked first, FOR NO KEY UPDATE, until the
      * claim commits: claims of that queue, by every runtime, go one at a
      * time, and each counts the queue's running tasks in a new snapshot
      * taken after the lock (a plpgsql statement takes one each), which
      * sees the claims committed before it. Scheduling into the queue holds
      * KEY SHARE, which that lock does not wait for. Queues are locked in
      * name order: two claims never deadlock. A rate picks at most one task
      * per claim and spaces starts rate_period / rate_limit seconds apart,
      * by the server's clock. With only_ids, only those tasks (the AWS
      * backend's deliveries). */
     "CREATE FUNCTION moontask.pick_queued(room integer, names text[],\n"
     "    only_ids bigint[] DEFAULT NULL)\n"
     "RETURNS SETOF moontask.pick LANGUAGE plpgsql SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "DECLARE\n"
     "  q moontask.queues;\n"
     "  share integer;\n"
     "  free integer;\n"
     "  n integer;\n"
     "  clock timestamptz;\n"
     "BEGIN\n"
     "  SELECT count(*) INTO share FROM moontask.queues;\n"
     "  share := greatest(1, ceil(room::numeric / (share + 1)));\n"
     "  FOR q IN SELECT * FROM moontask.queues ORDER BY name LOOP\n"
     "    EXIT WHEN room <= 0;\n"
     /* Nothing due: the queue's row is not locked for nothing. */
     "    CONTINUE WHEN NOT EXISTS (\n"
     "      SELECT FROM moontask.tasks t\n"
     "       WHERE t.state = 'scheduled' AND t.queue = q.name\n"
     "         AND t.run_at <= now() AND t.name = ANY(names)\n"
     "         AND (only_ids IS NULL OR t.id = ANY(only_ids)));\n"
     "    free := least(room, share);\n"
     "    IF q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL THEN\n"
     "      SELECT * INTO q FROM moontask.queues x WHERE x.name = q.name\n"
     "         FOR NO KEY UPDATE;\n"
     "      CONTINUE WHEN NOT FOUND;\n"
     "      IF q.concurrency IS NOT NULL THEN\n"
     "        free := least(free, q.concurrency - (\n"
     "          SELECT count(*) FROM moontask.tasks t\n"
     "           WHERE t.state = 'running' AND t.queue = q.name));\n"
     "      END IF;\n"
     "      IF q.rate_limit IS NOT NULL THEN\n"
     "        clock := clock_timestamp();\n"
     "        IF q.next_start > clock THEN\n"
     "          RETURN NEXT ROW(NULL, extract(epoch FROM q.next_start))::moontask.pick;\n"
     "          free := 0;\n"
     "        END IF;\n"
     "        free := least(free, 1);\n"
     "      END IF;\n"
     "    END IF;\n"
     "    CONTINUE WHEN free <= 0;\n"
     /* tasks_ready, in the order the queue runs. */
     "    RETURN QUERY\n"
     "      SELECT t.id, NULL::float8 FROM moontask.tasks t\n"
     "       WHERE t.state = 'scheduled' AND t.queue = q.name\n"
     "         AND t.run_at <= now() AND t.name = ANY(names)\n"
     "         AND (only_ids IS NULL OR t.id = ANY(only_ids))\n"
     "       ORDER BY t.priority DESC, t.run_at, t.id LIMIT free\n"
     "       FOR UPDATE SKIP LOCKED;\n"
     "    GET DIAGNOSTICS n = ROW_COUNT;\n"
     "    room := room - n;\n"
     "    IF q.rate_limit IS NOT NULL AND n > 0 THEN\n"
     "      UPDATE moontask.queues x\n"
     "         SET next_start = clock + q.rate_period / q.rate_limit * interval '1 second'\n"
     "       WHERE x.name = q.name\n"
     "      RETURNING x.next_start INTO clock;\n"
     "      RETURN NEXT ROW(NULL, extract(epoch FROM clock))::moontask.pick;\n"
     "    END IF;\n"
     "  END LOOP;\n"
     "END\n"
     "$fn$;\n"
     "\n"
     /* A task of a named queue that stops running frees a place in its
      * queue: wake the runtimes, which may be waiting for one. Default's
      * tasks match no WHEN and call nothing. */
     "CREATE FUNCTION moontask.queue_freed() RETURNS trigger\n"
     "LANGUAGE plpgsql SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "BEGIN\n"
     "  PERFORM pg_notify('moontask_tasks', '');\n"
     "  RETURN NULL;\n"
     "END\n"
     "$fn$;\n"
     "\n"
     "CREATE TRIGGER tasks_queue_freed AFTER UPDATE OF state ON moontask.tasks\n"
     "  FOR EACH ROW WHEN (OLD.state = 'running' AND NEW.state <> 'running'\n"
     "                     AND OLD.queue <> 'default')\n"
     "  EXECUTE FUNCTION moontask.queue_freed();\n"
     "\n"
     /* The runtime reads and writes these; applications only through the
      * functions. */
     "REVOKE ALL ON moontask.queues, moontask.definitions FROM PUBLIC;\n"
     "\n"
     /* Migration 3's ALTER DEFAULT PRIVILEGES ... IN SCHEMA cannot take
      * away what is granted globally (a schema's default privileges only
      * add to the global ones), so PUBLIC would run a new function:
      * each is revoked here by name. */
     "REVOKE ALL ON FUNCTION\n"
     "    moontask.schedule(text, jsonb, timestamptz, text, integer, text, boolean),\n"
     "    moontask.find(text), moontask.cancel_key(text),\n"
     "    moontask.reschedule(bigint, timestamptz, jsonb),\n"
     "    moontask.snooze(bigint, text, float8),\n"
     "    moontask.pick_queued(integer, text[], bigint[]),\n"
     "    moontask.queue_freed()\n"
     "  FROM PUBLIC;\n"},
    {8,
     /* tasks_ready orders a queue by priority before run_at, so a scan for
      * the due tasks (run_at <= now()) cannot stop at the first future one:
      * when fewer were due than it wanted, it walked every future task of
      * the queue, and a claim with five million tasks due in a year took
      * 200 to 800 ms. A queue is walked one priority at a time instead
      * (claim_sql does the same for the default queue): the distinct
      * priorities come from one probe of tasks_ready each (the recursive
      * query below, highest first), and within one priority the index is
      * in run_at order, so each walk stops at its first future task.
      * Otherwise pick_queued is migration 7's. The signature is the same,
      * so the grants stay. */
     "CREATE OR REPLACE FUNCTION moontask.pick_queued(room integer, names text[],\n"
     "    only_ids bigint[] DEFAULT NULL)\n"
     "RETURNS SETOF moontask.pick LANGUAGE plpgsql SECURITY DEFINER\n"
     "SET search_path = pg_catalog, pg_temp AS $fn$\n"
     "DECLARE\n"
     "  q moontask.queues;\n"
     "  share integer;\n"
     "  free integer;\n"
     "  n integer;\n"
     "  picked integer;\n"
     "  clock timestamptz;\n"
     "  levels smallint[];\n"
     "  level smallint;\n"
     "BEGIN\n"
     "  SELECT count(*) INTO share FROM moontask.queues;\n"
     "  share := greatest(1, ceil(room::numeric / (share + 1)));\n"
     "  FOR q IN SELECT * FROM moontask.queues ORDER BY name LOOP\n"
     "    EXIT WHEN room <= 0;\n"
     /* The priorities the queue's scheduled tasks have, highest first. */
     "    levels := ARRAY(\n"
     "      WITH RECURSIVE l(priority) AS (\n"
     "        (SELECT t.priority FROM moontask.tasks t\n"
     "          WHERE t.state = 'scheduled' AND t.queue = q.name\n"
     "          ORDER BY t.priority DESC LIMIT 1)\n"
     "        UNION ALL\n"
     "        SELECT (SELECT t.priority FROM moontask.tasks t\n"
     "                 WHERE t.state = 'scheduled' AND t.queue = q.name\n"
     "                   AND t.priority < l.priority\n"
     "                 ORDER BY t.priority DESC LIMIT 1)\n"
     "          FROM l WHERE l.priority IS NOT NULL)\n"
     "      SELECT l.priority FROM l WHERE l.priority IS NOT NULL);\n"
     /* Nothing due: the queue's row is not locked for nothing. */
     "    CONTINUE WHEN NOT EXISTS (\n"
     "      SELECT FROM unnest(levels) AS l(priority), moontask.tasks t\n"
     "       WHERE t.state = 'scheduled' AND t.queue = q.name\n"
     "         AND t.priority = l.priority AND t.run_at <= now()\n"
     "         AND t.name = ANY(names)\n"
     "         AND (only_ids IS NULL OR t.id = ANY(only_ids)));\n"
     "    free := least(room, share);\n"
     "    IF q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL THEN\n"
     "      SELECT * INTO q FROM moontask.queues x WHERE x.name = q.name\n"
     "         FOR NO KEY UPDATE;\n"
     "      CONTINUE WHEN NOT FOUND;\n"
     "      IF q.concurrency IS NOT NULL THEN\n"
     "        free := least(free, q.concurrency - (\n"
     "          SELECT count(*) FROM moontask.tasks t\n"
     "           WHERE t.state = 'running' AND t.queue = q.name));\n"
     "      END IF;\n"
     "      IF q.rate_limit IS NOT NULL THEN\n"
     "        clock := clock_timestamp();\n"
     "        IF q.next_start > clock THEN\n"
     "          RETURN NEXT ROW(NULL, extract(epoch FROM q.next_start))::moontask.pick;\n"
     "          free := 0;\n"
     "        END IF;\n"
     "        free := least(free, 1);\n"
     "      END IF;\n"
     "    END IF;\n"
     "    picked := 0;\n"
     /* tasks_ready, in the order the queue runs. */
     "    FOREACH level IN ARRAY levels LOOP\n"
     "      EXIT WHEN free <= 0;\n"
     "      RETURN QUERY\n"
     "        SELECT t.id, NULL::float8 FROM moontask.tasks t\n"
     "         WHERE t.state = 'scheduled' AND t.queue = q.name\n"
     "           AND t.priority = level AND t.run_at <= now()\n"
     "           AND t.name = ANY(names)\n"
     "           AND (only_ids IS NULL OR t.id = ANY(only_ids))\n"
     "         ORDER BY t.run_at, t.id LIMIT free\n"
     "         FOR UPDATE SKIP LOCKED;\n"
     "      GET DIAGNOSTICS n = ROW_COUNT;\n"
     "      free := free - n;\n"
     "      picked := picked + n;\n"
     "    END LOOP;\n"
     "    room := room - picked;\n"
     "    IF q.rate_limit IS NOT NULL AND picked > 0 THEN\n"
     "      UPDATE moontask.queues x\n"
     "         SET next_start = clock + q.rate_period / q.rate_limit * interval '1 second'\n"
     "       WHERE x.name = q.name\n"
     "      RETURNING x.next_start INTO clock;\n"
     "      RETURN NEXT ROW(NULL, extract(epoch FROM clock))::moontask.pick;\n"
     "    END IF;\n"
     "  END LOOP;\n"
     "END\n"
     "$fn$;\n"},
};
// clang-format on

#define MIGRATION_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

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
  if ((rc = mt_pg_exec_script(
           conn, "SELECT pg_advisory_lock(" MT_MIGRATE_LOCK ")", 0, err)) != 0)
    return rc;
  if ((rc = mt_pg_exec_script(conn,
                              "CREATE SCHEMA IF NOT EXISTS moontask;"
                              "CREATE TABLE IF NOT EXISTS moontask.migrations ("
                              " version integer PRIMARY KEY,"
                              " applied_at timestamptz NOT NULL DEFAULT now())",
                              0, err)) != 0)
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
    if ((rc = mt_pg_exec_script(conn, "BEGIN", 0, err)) != 0)
      goto done;
    if ((rc = mt_pg_exec_script(conn, migrations[i].sql, 0, err)) != 0 ||
        (rc = mt_pg_exec_script(conn, record, 0, err)) != 0) {
      char detail[MT_ERR_MAX];
      snprintf(detail, sizeof detail, "%s", err ? err->msg : "");
      mt_pg_exec_script(conn, "ROLLBACK", 0, NULL);
      rc = mt_err_set(err, MT_EDB, "migration %d failed: %s",
                      migrations[i].version, detail);
      goto done;
    }
    if ((rc = mt_pg_exec_script(conn, "COMMIT", 0, err)) != 0)
      goto done;
    count++;
  }
done:
  mt_pg_exec_script(conn, "SELECT pg_advisory_unlock(" MT_MIGRATE_LOCK ")", 0,
                    NULL);
  if (applied != NULL)
    *applied = count;
  return rc;
}

int mt_pg_check_schema(PGconn *conn, mt_err_t *err) {
  int version = 0;
  int want = migrations[MIGRATION_COUNT - 1].version;
  PGresult *res =
      mt_pg_exec(conn, "SELECT to_regclass('moontask.migrations') IS NOT NULL",
                 0, NULL, err);
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
