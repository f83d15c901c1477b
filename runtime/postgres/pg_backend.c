#include "postgres/pg_backend.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/stringify.h"
#include "postgres/outbox.h"
#include "postgres/pg.h"
#include "postgres/pg_session.h"
#include "scheduler/fires.h"

typedef struct pg_backend_s {
  mt_backend_t base;
  PGconn *conn; /* LISTENs and claims (and acknowledges, see pg_claim); one
                  query at a time */
  /* Acknowledges while conn claims (pg_claim): NULL until first needed,
   * and after a failure until ack_retry_at (mt_now()). */
  PGconn *ack_conn;
  double ack_retry_at;
  char *url;
  char *owner;
  char lease[32];      /* lease_timeout in seconds, as a parameter */
  char *names;         /* the task names this runtime can run, as a text[] */
  char *max_attempts;  /* their max_attempts, as an int[] in the same order */
  unsigned generation; /* counts connections, for wake_fd */
  int listen; /* LISTEN for wake-ups: not when another system delivers */
  mt_fires_cache_t cache; /* parsed schedules, for fire_one */
} pg_backend_t;

/* What a claim returns of each task (task_from_row): what mt_task_new
 * takes, and whether the task is a named queue's (mt_task_t.limited). */
#define CLAIMED_COLUMNS                                                            \
  "t.id, t.name, t.payload::text, t.attempts,\n"                                   \
  "  coalesce(t.max_attempts, 0),\n"                                               \
  "  to_char(t.run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),\n" \
  "  t.queue <> '" MT_DEFAULT_QUEUE "'"
/* claim_sql's rows with no task: when a rate-limited queue may start
 * again, in this column (after CLAIMED_COLUMNS and the two it orders by). */
#define CLAIMED_RETRY_AT 9

/* A claim: the task is running under this runtime's lease ($2 the owner,
 * $3 the lease in seconds) and its attempt is counted; d is the task
 * file's row of unnest($4 names, $6 max_attempts). The task file's
 * max_attempts is recorded at the first claim, so that a task whose
 * runtime keeps dying under it still ends `failed`. */
#define CLAIM_SET                                                       \
  "state = 'running', attempts = t.attempts + 1, started_at = now(),\n" \
  "         locked_by = $2,\n"                                          \
  "         locked_until = now() + $3::float8 * interval '1 second',\n" \
  "         max_attempts = coalesce(t.max_attempts, d.max_attempts)"

/* Acknowledges the tasks whose handlers ran no transaction (they had no
 * effects to commit with): $5 their ids, $7 the versions that ran them
 * (done_arrays), $2 the owner. The versions are one for all, the usual
 * case, or one per id in the same order, and then each row finds its own
 * with array_position rather than by a join with unnest($5, $7): the
 * planner drives such a join from the running tasks and scans the unnested
 * lists once for each, which cost a third of the no-op throughput. The
 * lookup walks both lists for each row, so the usual case skips it: on a
 * 20,000-task no-op drain (some 200 acknowledged at a time) that took the
 * acknowledgement from about 14.7 to 12.7 microseconds of server time a
 * task. */
// clang-format off
#define DONE_CTE(owner, ids, versions)                                         \
  "done AS (\n"                                                                \
  "  UPDATE moontask.tasks SET state = 'completed', finished_at = now(),\n"    \
  "         locked_by = NULL, locked_until = NULL, last_error = NULL,\n"       \
  "         versions = array_append(versions,\n"                               \
  "           CASE WHEN cardinality(" versions "::text[]) = 1\n"               \
  "                THEN (" versions "::text[])[1]\n"                           \
  "                ELSE (" versions "::text[])[array_position(" ids "::bigint[], id)] END)\n"\
  "   WHERE id = ANY(" ids "::bigint[]) AND " MT_PG_HELD_BY(owner) "\n"       \
  "  RETURNING id)"
// clang-format on

/* The acknowledgement alone, on its own connection (ack_conn): $1 the
 * owner, $2 the ids, $3 the versions. */
static const char ack_sql[] =
    "WITH " DONE_CTE("$1", "$2", "$3") " SELECT count(*) FROM done";

/* ack_sql's name as a prepared statement on the acknowledging connection. */
#define ACK_STMT "moontask_ack"

/* How long a runtime acknowledges in the claim's own statement after its
 * acknowledging connection could not be had, before trying again. */
#define ACK_CONN_RETRY 5.0

/* Completes the tasks whose handlers ran no transaction (they had no
 * effects to commit with), then claims due tasks, in one statement: one
 * round trip and one commit per batch. (pg_claim gives the completions to
 * the acknowledging connection instead when it has one.)
 *
 * The named queues are picked first, by moontask.pick_queued (migration 7
 * says how it keeps their limits), and the default queue fills the room
 * they leave; one UPDATE claims both. Only when moontask.queues has a
 * row: the condition is a one-time filter, so with no named queue the
 * function is never called and a claim costs what it did before queues.
 * Rows with no task carry only a time for the rate limits' timer.
 *
 * The default queue is walked one priority at a time (levels, then due),
 * as pick_queued walks the named ones since migration 8, which says why:
 * in tasks_ready's order, priority before run_at, a single scan for the
 * due tasks went on through every future one whenever fewer were due
 * than the claim had room for.
 *
 * The UPDATE finds its rows by id = ANY(ARRAY(...)), a walk of the
 * primary key under the settings connect_and_listen gives the session.
 * Joined with the CTEs instead, it was planned from the table's
 * statistics, and with them stale (ANALYZE run while the table was nearly
 * empty, then a burst scheduled) the plan read the whole table for every
 * claim: after 10 million rows were deleted, 20,000 row tasks on 4
 * workers ran at 350 a second instead of 5,000. An UPDATE's RETURNING
 * comes in no set order, so the rows are sorted at the end, in the order
 * the workers take them (mt_executor_submit keeps it, with a named
 * queue's tasks first): priority, then run_at and id. */
// clang-format off
static const char claim_sql[] =
    "WITH RECURSIVE " DONE_CTE("$2", "$5", "$7") ",\n"
    "queued AS (\n"
    "  SELECT * FROM moontask.pick_queued($1::int, $4::text[])\n"
    "   WHERE EXISTS (SELECT FROM moontask.queues)),\n"
    /* The default queue's priorities, one probe of tasks_ready each,
     * found lowest first and walked highest first (due sorts them). A
     * probe for the lowest reads the index backwards, from a priority's
     * newest entries, which are live; the entries of claimed and finished
     * tasks stay at the oldest end until a vacuum, and a probe for the
     * highest first steps over all of them. On a 20,000-task no-op drain
     * that took the claim from 17 to 15 microseconds of server time a
     * task (pg_stat_statements). pick_queued still probes highest first
     * (migration 8): the same walk at a higher price, left until the
     * function changes for a reason of its own. */
    "levels(priority) AS (\n"
    "  (SELECT priority FROM moontask.tasks\n"
    "    WHERE state = 'scheduled' AND queue = '" MT_DEFAULT_QUEUE "'\n"
    "    ORDER BY priority LIMIT 1)\n"
    "  UNION ALL\n"
    "  SELECT (SELECT t.priority FROM moontask.tasks t\n"
    "           WHERE t.state = 'scheduled' AND t.queue = '" MT_DEFAULT_QUEUE "'\n"
    "             AND t.priority > l.priority\n"
    "           ORDER BY t.priority LIMIT 1)\n"
    "    FROM levels l WHERE l.priority IS NOT NULL),\n"
    "due AS (\n"
    "  SELECT d.id FROM (SELECT priority FROM levels\n"
    "                     WHERE priority IS NOT NULL\n"
    "                     ORDER BY priority DESC) l CROSS JOIN LATERAL (\n"
    "    SELECT id FROM moontask.tasks\n"
    "     WHERE state = 'scheduled' AND queue = '" MT_DEFAULT_QUEUE "'\n"
    "       AND priority = l.priority AND run_at <= now()\n"
    /* Only tasks this runtime has a handler for: during a deploy an older
     * runtime leaves new task names to the newer ones. */
    "       AND name = ANY($4::text[])\n"
    "     ORDER BY run_at, id\n"
    "     LIMIT greatest($1::int - (SELECT count(id) FROM queued), 0)\n"
    "     FOR UPDATE SKIP LOCKED) d\n"
    "   LIMIT greatest($1::int - (SELECT count(id) FROM queued), 0)),\n"
    "claimed AS (\n"
    "  UPDATE moontask.tasks t SET " CLAIM_SET "\n"
    "    FROM unnest($4::text[], $6::int[]) AS d(name, max_attempts)\n"
    "   WHERE t.id = ANY(ARRAY(SELECT id FROM due UNION ALL\n"
    "                          SELECT id FROM queued WHERE id IS NOT NULL))\n"
    "     AND d.name = t.name\n"
    "  RETURNING " CLAIMED_COLUMNS ", t.priority, t.run_at)\n"
    "SELECT *, NULL::float8 FROM claimed\n"
    "UNION ALL\n"
    "SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, wait_until\n"
    "  FROM queued WHERE id IS NULL\n"
    "ORDER BY 8 DESC, 9, 1";
// clang-format on

/* claim_sql's name as a prepared statement on the backend's connection. */
#define CLAIM_STMT "moontask_claim"

// clang-format off
const char mt_pg_release_sql[] =
    "WITH t AS (\n"
    "  UPDATE moontask.tasks SET state = 'scheduled', attempts = attempts - 1,\n"
    "         started_at = NULL, locked_by = NULL, locked_until = NULL\n"
    "   WHERE id = ANY($1::bigint[]) AND " MT_PG_HELD_BY("$2") "\n"
    "  RETURNING id)\n"
    "SELECT pg_notify('moontask_tasks', '') FROM t LIMIT 1";

static const char extend_sql[] =
    "UPDATE moontask.tasks\n"
    "   SET locked_until = now() + $2::float8 * interval '1 second'\n"
    " WHERE id = ANY($3::bigint[]) AND " MT_PG_HELD_BY("$1");
// clang-format on

/* A runtime that died leaves `running` tasks whose lease lapses; they go
 * back to `scheduled` (or to `failed` when that was their last attempt).
 * Their partial effects were rolled back with the dead connection. (Laid
 * out by hand: clang-format cannot place a macro between string pieces.) */
// clang-format off
static const char rescue_sql[] =
    "WITH t AS (\n"
    "  UPDATE moontask.tasks SET\n"
    "    state = CASE WHEN attempts >= coalesce(max_attempts, "
    MT_STR(MT_DEFAULT_MAX_ATTEMPTS) ")\n"
    "                 THEN 'failed' ELSE 'scheduled' END,\n"
    "    finished_at = CASE WHEN attempts >= coalesce(max_attempts, "
    MT_STR(MT_DEFAULT_MAX_ATTEMPTS) ")\n"
    "                       THEN now() END,\n"
    "    last_error = 'lease expired: the runtime ' || locked_by ||\n"
    "                 ' stopped while running attempt ' || attempts,\n"
    /* Which version that attempt ran died with its runtime. */
    "    versions = array_append(versions, NULL),\n"
    "    locked_by = NULL, locked_until = NULL\n"
    "   WHERE state = 'running' AND locked_until < now()\n"
    "  RETURNING state),\n"
    "woken AS (SELECT pg_notify('moontask_tasks', '') FROM t\n"
    "           WHERE state = 'scheduled' LIMIT 1)\n"
    /* How many went back and how many failed, for the log. */
    "SELECT count(*) FILTER (WHERE state = 'scheduled'),\n"
    "       count(*) FILTER (WHERE state = 'failed'),\n"
    "       (SELECT count(*) FROM woken)\n"
    "  FROM t";
// clang-format on

/* Whether a task is running or due: two looks, each into its partial
 * index, rather than one OR that scans the whole table, finished history
 * included. Whether, not how many: the generic plan of a count of the due
 * tasks read all of tasks_ready, 430 ms beside five million future tasks,
 * where EXISTS stops at the first due one in tasks_available. */
static const char outstanding_sql[] =
    "SELECT (EXISTS (SELECT FROM moontask.tasks\n"
    "                 WHERE state = 'running' AND name = ANY($1::text[]))\n"
    "     OR EXISTS (SELECT FROM moontask.tasks\n"
    "                 WHERE state = 'scheduled' AND run_at <= now()\n"
    "                   AND name = ANY($1::text[])))";

/* The cheap look that runs on every poll: is any schedule due (or not yet
 * computed), and when is the next fire? One round trip, no locks. Schedules
 * with an error wait until schedule_recurring redefines them. */
static const char schedules_due_sql[] =
    "SELECT extract(epoch FROM min(next_fire_at)\n"
    "         FILTER (WHERE next_fire_at > now()))::float8,\n"
    "       count(*) FILTER (WHERE next_fire_at IS NULL OR next_fire_at <= now())\n"
    "  FROM moontask.schedules\n"
    " WHERE task = ANY($1::text[]) AND error IS NULL";

/* SKIP LOCKED: a schedule another runtime is materialising is its
 * business; if that runtime dies its transaction rolls back and the
 * schedule is due again for everyone. */
static const char schedules_lock_sql[] =
    "SELECT name, task, payload::text, expression, tz, catch_up,\n"
    "       floor(extract(epoch FROM next_fire_at))::bigint,\n"
    "       extract(epoch FROM now())::float8\n"
    "  FROM moontask.schedules\n"
    " WHERE task = ANY($1::text[]) AND error IS NULL\n"
    "   AND (next_fire_at IS NULL OR next_fire_at <= now())\n"
    " ORDER BY name FOR UPDATE SKIP LOCKED";

/* Inserts a schedule's fires as ordinary tasks and moves the schedule on.
 * The unique key on (schedule_name, fire_at) makes a fire that some runtime
 * already inserted a no-op, so no fire is ever doubled. */
static const char fire_sql[] =
    "WITH fired AS (\n"
    "  INSERT INTO moontask.tasks\n"
    "    (name, payload, run_at, schedule_name, fire_at, created_by, queue,\n"
    "     priority)\n"
    /* The fires belong to whoever defined the schedule, not to the runtime:
     * that role's moontask.get and cancel reach them. The row is locked by
     * this transaction, so it is there. */
    "  SELECT $2, $3::jsonb, to_timestamp(f), $1, to_timestamp(f), s.created_by,\n"
    "         coalesce(def.queue, '" MT_DEFAULT_QUEUE
    "'), coalesce(def.priority, 0)\n"
    "    FROM unnest($4::bigint[]) AS f, moontask.schedules s\n"
    /* A fire goes in its task file's queue, with its priority. */
    "    LEFT JOIN moontask.definitions def ON def.name = s.task\n"
    "   WHERE s.name = $1\n"
    "  ON CONFLICT (schedule_name, fire_at) WHERE schedule_name IS NOT NULL\n"
    "  DO NOTHING RETURNING 1),\n"
    /* Other runtimes may claim the new tasks too, once this commits. */
    "woken AS (SELECT pg_notify('moontask_tasks', '') FROM fired LIMIT 1)\n"
    "UPDATE moontask.schedules SET\n"
    "    last_fire_at = coalesce(to_timestamp($5::bigint), last_fire_at),\n"
    "    next_fire_at = to_timestamp($6::bigint), error = $7\n"
    " WHERE name = $1\n"
    "RETURNING (SELECT count(*) FROM fired), (SELECT count(*) FROM woken)";

/* The settings connect_and_listen explains, on a connection of this
 * backend's (synchronous_commit as given). */
static int tune_session(PGconn *conn, const char *sync, mt_err_t *err) {
  const char *params[] = {sync};
  PGresult *res =
      mt_pg_exec(conn,
                 "SELECT set_config('synchronous_commit', $1, false),"
                 "       set_config('enable_seqscan', 'off', false),"
                 "       set_config('enable_bitmapscan', 'off', false),"
                 "       set_config('enable_sort', 'off', false),"
                 "       set_config('enable_hashjoin', 'off', false),"
                 "       set_config('enable_mergejoin', 'off', false),"
                 "       set_config('jit', 'off', false),"
                 "       set_config('plan_cache_mode', 'force_generic_plan',"
                 "                  false)",
                 1, params, err);
  PQclear(res);
  return res != NULL ? 0 : MT_EDB;
}

static int connect_and_listen(pg_backend_t *b, mt_err_t *err) {
  PQfinish(b->conn);
  b->conn = mt_pg_connect(b->url, "moontask discovery", err);
  b->generation++;
  if (b->conn == NULL)
    return MT_EDB;
  /* Every connection made after the first replaces one that was lost. */
  if (b->generation > 1)
    mt_metric_add(MT_METRIC_DB_RECONNECTS, NULL, NULL, 1);
  /* This connection's writes are bookkeeping that may be lost in a server
   * crash without losing a task: a lost claim leaves the task `scheduled`
   * (or, once a handler commits, is flushed by that commit, since WAL is
   * flushed in order), and a lost acknowledgement of a handler that wrote
   * nothing makes the task run again, as any at-least-once runtime may.
   * Not waiting for the WAL flush here saves a disk sync per batch; every
   * handler's transaction, with its `completed` mark, still commits
   * synchronously on the workers' connections. */
  /* The claim must walk an index of the due tasks in the order they run
   * and stop after LIMIT rows. With statistics taken while the queue was
   * small the planner prefers a bitmap scan of every due task plus a sort,
   * which costs milliseconds per claim on a long queue; a queue's size
   * changes too fast for ANALYZE to keep up, so this connection simply
   * does without those plans. Likewise the claimed and acknowledged ids
   * are found through the primary key: a hash join would read the whole
   * table, a plan that the generic plan of the prepared claim (below)
   * chose, since it cannot know how small LIMIT is. So would a sequential
   * scan, which the planner took for cheaper when ANALYZE had seen a few
   * live rows on many pages (a queue just drained) and 60,000 tasks had
   * been scheduled since: they ran at 3,000 a second instead of 60,000.
   * (Turned off, a plan is only made the last resort: a table with no
   * usable index is still read.) Every statement here touches tasks
   * by id or through a partial index, a few hundred rows at most, which
   * is also why JIT is off: on a table of ten million rows the generic
   * plan's estimates crossed jit_above_cost, and compiling it took 250 ms
   * of each 1 ms claim. */
  /* (A task store for another system's deliveries keeps synchronous
   * commits: there a claim or an acknowledgement is followed by deleting
   * the message, and one lost in a crash would strand its task.) */
  if (tune_session(b->conn, b->listen ? "off" : "on", err) != 0)
    return MT_EDB;
  if (!b->listen)
    return 0;
  /* The claim (only this backend's own: a store for another system claims
   * by id) runs hundreds of times a second under load: parsed and planned
   * once per connection instead of on each call, which was a sixth of its
   * cost. Its plan does not depend on the parameters' values (the settings
   * above rule out the plans that would), so the generic plan is forced:
   * left to choose, PostgreSQL went on planning a custom one for every
   * call when the done list was long. (The setting holds for every
   * parameterised statement on this connection: all of them are the
   * lookups by id and partial index described above.) */
  PGresult *res = PQprepare(b->conn, CLAIM_STMT, claim_sql, 7, NULL);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    mt_pg_result_error(res, b->conn, err);
    PQclear(res);
    return MT_EDB;
  }
  PQclear(res);
  res = mt_pg_exec(b->conn, "LISTEN moontask_tasks", 0, NULL, err);
  if (res == NULL)
    return MT_EDB;
  PQclear(res);
  return 0;
}

/* Runs a statement, reconnecting once if the connection was lost. */
static PGresult *run(pg_backend_t *b, const char *sql, int n,
                     const char *const *params, mt_err_t *err) {
  if (PQstatus(b->conn) != CONNECTION_OK && connect_and_listen(b, err) != 0)
    return NULL;
  return mt_pg_exec(b->conn, sql, n, params, err);
}

static int pg_wake_fd(mt_backend_t *base, unsigned *generation) {
  pg_backend_t *b = (pg_backend_t *)base;
  *generation = b->generation;
  return b->conn != NULL ? PQsocket(b->conn) : -1;
}

static int pg_read_wakeups(mt_backend_t *base, int *due_now, double *next_due,
                           mt_err_t *err) {
  pg_backend_t *b = (pg_backend_t *)base;
  if (!PQconsumeInput(b->conn)) {
    int rc = connect_and_listen(b, err);
    *due_now = 1; /* notifications may have been lost: look now */
    return rc;
  }
  PGnotify *n;
  while ((n = PQnotifies(b->conn)) != NULL) {
    if (n->extra[0] == '\0') {
      *due_now = 1;
    } else {
      double at = strtod(n->extra, NULL);
      if (at < *next_due)
        *next_due = at;
    }
    PQfreemem(n);
  }
  return 0;
}

/* The task of a claim's row, from column `col` on (CLAIMED_COLUMNS). */
static mt_task_t *task_from_row(PGresult *res, int i, int col) {
  mt_task_t *t = mt_task_new(
      strtoll(PQgetvalue(res, i, col), NULL, 10), PQgetvalue(res, i, col + 1),
      PQgetvalue(res, i, col + 2), PQgetvalue(res, i, col + 5),
      atoi(PQgetvalue(res, i, col + 3)), atoi(PQgetvalue(res, i, col + 4)));
  if (t != NULL)
    t->limited = PQgetvalue(res, i, col + 6)[0] == 't';
  return t;
}

/* The done list as DONE_CTE's two arrays: the ids, and the versions (NULL
 * where not known): one when every task ran under the same, else one per
 * id in the same order. Versions are hex digits, which an array literal
 * takes as they are. */
static int done_arrays(mt_buf_t *ids, mt_buf_t *versions, const mt_done_t *done,
                       size_t n) {
  size_t same = 1;
  while (same < n && strcmp(done[same].version, done[0].version) == 0)
    same++;
  int rc = mt_buf_putc(ids, '{') || mt_buf_putc(versions, '{');
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = mt_buf_printf(ids, "%s%" PRId64, i ? "," : "", done[i].id) ||
         ((i == 0 || same < n) &&
          mt_buf_printf(versions, "%s%s", i ? "," : "",
                        done[i].version[0] ? done[i].version : "NULL"));
  return rc || mt_buf_putc(ids, '}') || mt_buf_putc(versions, '}');
}

/* The acknowledging connection, connected and prepared if need be, or NULL
 * when it cannot be had now (the claim's own statement acknowledges then).
 * Its commits are as asynchronous as the claims' (connect_and_listen). */
static PGconn *ack_conn(pg_backend_t *b) {
  if (b->ack_conn != NULL && PQstatus(b->ack_conn) == CONNECTION_OK)
    return b->ack_conn;
  PQfinish(b->ack_conn);
  b->ack_conn = NULL;
  if (mt_now() < b->ack_retry_at)
    return NULL;
  mt_err_t err;
  PGconn *conn = mt_pg_connect(b->url, "moontask acknowledgements", &err);
  PGresult *res = NULL;
  if (conn != NULL && tune_session(conn, "off", &err) == 0)
    res = PQprepare(conn, ACK_STMT, ack_sql, 3, NULL);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    if (res != NULL)
      mt_pg_result_error(res, conn, &err);
    mt_log(MT_LOG_WARN,
           "no connection for acknowledgements (claims carry "
           "them meanwhile): %s",
           err.msg);
    PQclear(res);
    PQfinish(conn);
    b->ack_retry_at = mt_now() + ACK_CONN_RETRY;
    return NULL;
  }
  PQclear(res);
  b->ack_conn = conn;
  return conn;
}

/* Waits for the acknowledgement sent on ack_conn. Returns 0, or MT_EDB
 * and drops the connection (the next claim makes another). */
static int ack_wait(pg_backend_t *b) {
  int ok = 1;
  PGresult *res;
  while ((res = PQgetResult(b->ack_conn)) != NULL) {
    ok = ok && PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
  }
  if (ok && PQstatus(b->ack_conn) == CONNECTION_OK)
    return 0;
  PQfinish(b->ack_conn);
  b->ack_conn = NULL;
  return MT_EDB;
}

/* With a done list and tasks to claim, the acknowledgement goes to its own
 * connection and runs while this one claims: under a stream of short tasks
 * the one statement that did both kept one server process busy, marking
 * rows completed half of the time, while the other core idled, and no-op
 * tasks ran at the pace of that one process. Should the acknowledgement
 * fail, the claim's connection makes it after the claim. */
static int pg_claim(mt_backend_t *base, const mt_done_t *done, size_t ndone,
                    int max, mt_task_t **tasks, int *count, double *retry_at,
                    mt_err_t *err) {
  pg_backend_t *b = (pg_backend_t *)base;
  char limit[16];
  mt_buf_t done_ids = MT_BUF_INIT, done_versions = MT_BUF_INIT;
  snprintf(limit, sizeof limit, "%d", max);
  *tasks = NULL;
  *count = 0;
  if (!b->listen) /* a store for another system: mt_pg_claim_delivered */
    return 0;
  if (done_arrays(&done_ids, &done_versions, done, ndone) != 0) {
    mt_buf_free(&done_ids);
    mt_buf_free(&done_versions);
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  int conn_ok =
      PQstatus(b->conn) == CONNECTION_OK || connect_and_listen(b, err) == 0;
  PGconn *acker = conn_ok && ndone > 0 && max > 0 ? ack_conn(b) : NULL;
  const char *ack_params[] = {b->owner, done_ids.data, done_versions.data};
  if (acker != NULL &&
      !PQsendQueryPrepared(acker, ACK_STMT, 3, ack_params, NULL, NULL, 0)) {
    PQfinish(b->ack_conn);
    b->ack_conn = acker = NULL;
  }
  const char *params[] = {limit,
                          b->owner,
                          b->lease,
                          b->names,
                          acker != NULL ? "{}" : done_ids.data,
                          b->max_attempts,
                          acker != NULL ? "{}" : done_versions.data};
  PGresult *res =
      conn_ok ? mt_pg_exec_prepared(b->conn, CLAIM_STMT, 7, params, err) : NULL;
  if (acker != NULL && ack_wait(b) != 0 && res != NULL) {
    const char *zero[] = {
        "0",           b->owner,        b->lease,          b->names,
        done_ids.data, b->max_attempts, done_versions.data};
    mt_err_t ack_err;
    PQclear(mt_pg_exec_prepared(b->conn, CLAIM_STMT, 7, zero, &ack_err));
  }
  mt_buf_free(&done_ids);
  mt_buf_free(&done_versions);
  if (res == NULL)
    return MT_EDB;
  int rc = 0, rows = PQntuples(res);
  mt_task_t *head = NULL, **tail = &head;
  for (int i = 0; i < rows; i++) {
    if (PQgetisnull(res, i, 0)) { /* a rate limit's time */
      double at = strtod(PQgetvalue(res, i, CLAIMED_RETRY_AT), NULL);
      if (at < *retry_at)
        *retry_at = at;
      continue;
    }
    mt_task_t *t = task_from_row(res, i, 0);
    if (t == NULL) {
      /* Tasks we could not take in stay `running` under our lease until it
       * lapses, then run again. */
      rc = MT_ENOMEM;
      break;
    }
    *tail = t;
    tail = &t->next;
    (*count)++;
  }
  PQclear(res);
  *tasks = head;
  return rc;
}

static int pg_release(mt_backend_t *base, mt_task_t *tasks, mt_err_t *err) {
  pg_backend_t *b = (pg_backend_t *)base;
  size_t n = 0;
  for (mt_task_t *t = tasks; t != NULL; t = t->next)
    n++;
  int64_t *ids = malloc((n ? n : 1) * sizeof *ids);
  mt_buf_t buf = MT_BUF_INIT;
  int rc = ids ? 0 : MT_ENOMEM;
  n = 0;
  for (mt_task_t *t = tasks; rc == 0 && t != NULL; t = t->next)
    ids[n++] = t->id;
  if (rc == 0 && (rc = mt_pg_id_array(&buf, ids, n)) == 0) {
    const char *params[] = {buf.data, b->owner};
    PGresult *res = run(b, mt_pg_release_sql, 2, params, err);
    rc = res ? 0 : MT_EDB;
    PQclear(res);
  }
  free(ids);
  mt_buf_free(&buf);
  return rc;
}

static int pg_heartbeat(mt_backend_t *base, const int64_t *ids, size_t n,
                        mt_err_t *err) {
  pg_backend_t *b = (pg_backend_t *)base;
  mt_buf_t held = MT_BUF_INIT;
  if (mt_pg_id_array(&held, ids, n) != 0)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  const char *params[] = {b->owner, b->lease, held.data};
  PGresult *res = run(b, extend_sql, 3, params, err);
  mt_buf_free(&held);
  if (res == NULL)
    return MT_EDB;
  PQclear(res);
  res = run(b, rescue_sql, 0, NULL, err);
  if (res == NULL)
    return MT_EDB;
  /* A rescue is the only trace a runtime that died (or stopped, or lost
   * the database) leaves in the others' logs: say so. */
  long back = strtol(PQgetvalue(res, 0, 0), NULL, 10);
  long failed = strtol(PQgetvalue(res, 0, 1), NULL, 10);
  if (back + failed > 0)
    mt_log(MT_LOG_WARN,
           "lease expired on %ld task%s (the runtime holding "
           "them stopped or lost the database): %ld scheduled again, %ld "
           "failed with no attempt left",
           back + failed, back + failed == 1 ? "" : "s", back, failed);
  PQclear(res);
  return 0;
}

static int pg_outstanding(mt_backend_t *base, int *any, mt_err_t *err) {
  pg_backend_t *b = (pg_backend_t *)base;
  const char *params[] = {b->names};
  PGresult *res = run(b, outstanding_sql, 1, params, err);
  if (res == NULL)
    return MT_EDB;
  *any = PQgetvalue(res, 0, 0)[0] == 't';
  PQclear(res);
  return 0;
}

/* Materialises one locked schedule (row i of res) inside the open
 * transaction. */
static int fire_one(pg_backend_t *b, PGresult *res, int i, double grace,
                    double *next_fire, mt_err_t *err) {
  mt_fires_req_t req = {
      .name = PQgetvalue(res, i, 0),
      .expression = PQgetvalue(res, i, 3),
      .tz = PQgetvalue(res, i, 4),
      .due = PQgetisnull(res, i, 6) ? -1
                                    : strtoll(PQgetvalue(res, i, 6), NULL, 10),
      .now = strtod(PQgetvalue(res, i, 7), NULL),
      .grace = grace,
  };
  mt_fires_t fires = {.n = 0, .next = -1};
  mt_err_t why = {{0}};
  const char *error = NULL;
  /* The column's CHECK admits only the three names; a row that somehow
   * holds another is marked with the error like a bad expression. */
  int rc = mt_catch_up_parse(PQgetvalue(res, i, 5), &req.catch_up, &why);
  if (rc == 0)
    rc = mt_fires_compute(&b->cache, &req, &fires, &why);
  if (rc == MT_ENOMEM)
    return mt_err_set(err, rc, "out of memory");
  if (rc != 0)
    error = why.msg;
  else if (fires.next < 0)
    error = "the schedule has no more fire times";
  if (error != NULL)
    mt_log(MT_LOG_WARN, "schedule %s: %s", req.name, error);

  mt_buf_t ids = MT_BUF_INIT;
  char last[32], nextbuf[32];
  snprintf(last, sizeof last, "%" PRId64, fires.n ? fires.at[fires.n - 1] : 0);
  snprintf(nextbuf, sizeof nextbuf, "%" PRId64, fires.next);
  if (mt_pg_id_array(&ids, fires.at, (size_t)fires.n) != 0) {
    mt_buf_free(&ids);
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  const char *params[] = {
      req.name, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
      ids.data, fires.n ? last : NULL, fires.next >= 0 ? nextbuf : NULL,
      error};
  PGresult *r = mt_pg_exec(b->conn, fire_sql, 7, params, err);
  mt_buf_free(&ids);
  if (r == NULL)
    return MT_EDB;
  PQclear(r);
  if (fires.next >= 0 && (double)fires.next < *next_fire)
    *next_fire = (double)fires.next;
  return 0;
}

static int pg_fire_schedules(mt_backend_t *base, double grace,
                             double *next_fire, mt_err_t *err) {
  pg_backend_t *b = (pg_backend_t *)base;
  const char *params[] = {b->names};
  PGresult *res = run(b, schedules_due_sql, 1, params, err), *r;
  if (res == NULL)
    return MT_EDB;
  if (!PQgetisnull(res, 0, 0)) {
    double at = strtod(PQgetvalue(res, 0, 0), NULL);
    if (at < *next_fire)
      *next_fire = at;
  }
  long due = strtol(PQgetvalue(res, 0, 1), NULL, 10);
  PQclear(res);
  res = NULL;
  if (due == 0)
    return 0;
  /* One transaction: the row locks keep other runtimes off these
   * schedules until the fires and the schedules' new next_fire_at commit
   * together. A runtime killed in between loses nothing: its transaction
   * rolls back and the schedules are due again. No reconnect inside it. */
  int rc = 0;
  if ((r = mt_pg_exec(b->conn, "BEGIN", 0, NULL, err)) == NULL)
    return MT_EDB;
  PQclear(r);
  if ((res = mt_pg_exec(b->conn, schedules_lock_sql, 1, params, err)) == NULL) {
    rc = MT_EDB;
    goto fail;
  }
  for (int i = 0; i < PQntuples(res); i++)
    if ((rc = fire_one(b, res, i, grace, next_fire, err)) != 0)
      goto fail;
  PQclear(res);
  res = NULL;
  if ((r = mt_pg_exec(b->conn, "COMMIT", 0, NULL, err)) == NULL)
    return MT_EDB;
  PQclear(r);
  return 0;
fail:
  PQclear(res);
  if (PQstatus(b->conn) == CONNECTION_OK)
    PQclear(PQexec(b->conn, "ROLLBACK"));
  return rc;
}

static void pg_free(mt_backend_t *base) {
  pg_backend_t *b = (pg_backend_t *)base;
  if (b == NULL)
    return;
  PQfinish(b->conn);
  PQfinish(b->ack_conn);
  free(b->url);
  free(b->owner);
  free(b->names);
  free(b->max_attempts);
  mt_fires_cache_clear(&b->cache);
  free(b);
}

static char *names_array(const mt_registry_t *reg);
static char *max_attempts_array(const mt_registry_t *reg);

static int pg_retarget(mt_backend_t *base, const mt_registry_t *reg,
                       mt_err_t *err) {
  pg_backend_t *b = (pg_backend_t *)base;
  char *names = names_array(reg), *max_attempts = max_attempts_array(reg);
  if (names == NULL || max_attempts == NULL) {
    free(names);
    free(max_attempts);
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  }
  free(b->names);
  free(b->max_attempts);
  b->names = names;
  b->max_attempts = max_attempts;
  return 0;
}

static int pg_session(mt_backend_t *base, const char *name, mt_session_t **out,
                      mt_err_t *err) {
  pg_backend_t *b = (pg_backend_t *)base;
  return mt_pg_session_new(out, b->url, name, b->owner, err);
}

static const mt_backend_ops_t pg_ops = {
    .name = "postgres",
    .wake_fd = pg_wake_fd,
    .read_wakeups = pg_read_wakeups,
    .claim = pg_claim,
    .release = pg_release,
    .heartbeat = pg_heartbeat,
    .fire_schedules = pg_fire_schedules,
    .session = pg_session,
    .retarget = pg_retarget,
    .outstanding = pg_outstanding,
    .free = pg_free,
};

/* Task names are dotted identifiers, so they need no quoting in an array
 * literal; quoting them anyway costs nothing. */
static char *names_array(const mt_registry_t *reg) {
  mt_buf_t buf = MT_BUF_INIT;
  int rc = mt_buf_putc(&buf, '{');
  for (size_t i = 0; rc == 0 && i < reg->count; i++)
    rc = mt_buf_printf(&buf, "%s\"%s\"", i ? "," : "", reg->defs[i].name);
  if (rc == 0 && (rc = mt_buf_putc(&buf, '}')) == 0)
    return buf.data;
  mt_buf_free(&buf);
  return NULL;
}

static char *max_attempts_array(const mt_registry_t *reg) {
  mt_buf_t buf = MT_BUF_INIT;
  int rc = mt_buf_putc(&buf, '{');
  for (size_t i = 0; rc == 0 && i < reg->count; i++)
    rc = mt_buf_printf(&buf, "%s%d", i ? "," : "", reg->defs[i].max_attempts);
  if (rc == 0 && (rc = mt_buf_putc(&buf, '}')) == 0)
    return buf.data;
  mt_buf_free(&buf);
  return NULL;
}

static int open_backend(const mt_backend_conf_t *conf, int listen,
                        mt_backend_t **out, mt_err_t *err) {
  int rc;
  pg_backend_t *b = calloc(1, sizeof *b);
  if (b == NULL)
    return MT_ENOMEM;
  b->base.ops = &pg_ops;
  b->listen = listen;
  b->names = names_array(conf->registry);
  b->max_attempts = max_attempts_array(conf->registry);
  b->url = strdup(conf->database_url);
  b->owner = strdup(conf->owner);
  snprintf(b->lease, sizeof b->lease, "%.3f", conf->lease_timeout);
  if (b->url == NULL || b->owner == NULL || b->names == NULL ||
      b->max_attempts == NULL) {
    rc = MT_ENOMEM;
    goto fail;
  }
  if ((rc = connect_and_listen(b, err)) != 0)
    goto fail;
  /* The database is in one mode for every runtime sharing it: a runtime
   * of this backend turns the outbox off, one delivering through another
   * system turns it on (postgres/outbox.h). */
  int changed = 0;
  if ((rc = mt_outbox_set_mode(b->conn, !listen, &changed, err)) != 0)
    goto fail;
  if (changed && listen)
    mt_log(MT_LOG_INFO,
           "the database was last run with a backend that "
           "delivers through another system (aws): its outbox is now off "
           "and this runtime finds due tasks in the table; schedules "
           "already published there stay until they fire");
  *out = &b->base;
  return 0;
fail:
  pg_free(&b->base);
  return rc;
}

int mt_pg_backend_open(const mt_backend_conf_t *conf, mt_backend_t **out,
                       mt_err_t *err) {
  return open_backend(conf, 1, out, err);
}

int mt_pg_store_open(const mt_backend_conf_t *conf, mt_backend_t **out,
                     mt_err_t *err) {
  return open_backend(conf, 0, out, err);
}

/* ---- claims of delivered tasks ------------------------------------------ */

/* Claims the delivered tasks ($1) that are due, or whose lease lapsed with
 * attempts left (the message came back after a runtime died holding the
 * task), acknowledging done ($5) on the way; then says of each other id
 * why it was not claimed. The verdicts read the snapshot from before the
 * claim: right for an id the claim left alone for its state. One left
 * alone because another runtime claimed (or cancelled) it meanwhile reads
 * as it was, `not_due` with no wait, and is simply published again. */
// clang-format off
static const char claim_ids_sql[] =
    "WITH " DONE_CTE("$2", "$5", "$7") ",\n"
    "m AS (SELECT DISTINCT unnest($1::bigint[]) AS id),\n"
    /* The deliveries of named queues that fit their limits (pick_queued,
     * as claim_sql uses it). */
    "queued AS (\n"
    "  SELECT * FROM moontask.pick_queued(cardinality($1::bigint[]),\n"
    "                                     $4::text[], $1::bigint[])\n"
    "   WHERE EXISTS (SELECT FROM moontask.queues)),\n"
    "claimed AS (\n"
    "  UPDATE moontask.tasks t SET " CLAIM_SET ",\n"
    /* A lapsed lease taken over: the attempt before it ran a version
     * that died with its runtime, as the rescue would record. */
    "         versions = CASE WHEN t.state = 'running'\n"
    "                         THEN array_append(t.versions, NULL)\n"
    "                         ELSE t.versions END\n"
    /* By the primary key whatever the statistics say (claim_sql). */
    "    FROM unnest($4::text[], $6::int[]) AS d(name, max_attempts)\n"
    "   WHERE t.id = ANY($1::bigint[]) AND d.name = t.name\n"
    "     AND (t.state = 'scheduled' AND t.run_at <= now()\n"
    "          AND (t.queue = '" MT_DEFAULT_QUEUE "'\n"
    "               OR t.id IN (SELECT id FROM queued))\n"
    "          OR t.state = 'running' AND t.locked_until < now()\n"
    "             AND t.attempts < coalesce(t.max_attempts, d.max_attempts))\n"
    "  RETURNING " CLAIMED_COLUMNS ")\n"
    "SELECT 'claimed', 0::float8, c.* FROM claimed c\n"
    "UNION ALL\n"
    "SELECT CASE WHEN t.id IS NULL THEN 'missing'\n"
    "            WHEN t.state IN ('completed', 'failed', 'cancelled')\n"
    "              THEN 'finished'\n"
    "            WHEN t.name <> ALL($4::text[]) THEN 'foreign'\n"
    /* due, but its queue at a limit */
    "            WHEN t.state = 'scheduled' AND t.run_at <= now() THEN 'held'\n"
    "            WHEN t.state = 'scheduled' THEN 'not_due'\n"
    "            WHEN t.locked_until >= now() THEN 'busy'\n"
    /* running, its lease lapsed with no attempt left (the rescue fails
     * it), or with attempts left but claimed meanwhile by another runtime */
    "            ELSE 'finished' END,\n"
    /* Held: until its queue's rate allows a start, or HELD_RETRY seconds
     * for a full queue (a place frees when one of its tasks ends, which
     * the runtime holding that task does not announce to the other
     * system). */
    "       greatest(CASE WHEN t.state = 'scheduled' AND t.run_at <= now() THEN\n"
    "         least(coalesce((SELECT min(wait_until) FROM queued)\n"
    "                        - extract(epoch FROM now()), $8::float8),\n"
    "               $8::float8)\n"
    "       ELSE extract(epoch FROM CASE WHEN t.state = 'scheduled'\n"
    "         THEN t.run_at ELSE t.locked_until END - now())::float8 END, 0),\n"
    "       m.id, NULL, NULL, NULL, NULL, NULL, NULL\n"
    "  FROM m LEFT JOIN moontask.tasks t ON t.id = m.id\n"
    " WHERE m.id NOT IN (SELECT id FROM claimed)";
// clang-format on

/* A recurring schedule's fire, delivered: inserted as its own task, and
 * claimed, in one statement. The unique (schedule_name, fire_at) makes a
 * fire delivered twice one task. A fire of a task this runtime cannot run
 * is inserted `scheduled` instead, and the outbox publishes it for the
 * runtimes that can. No row: a duplicate, or a schedule removed (or
 * marked with an error) since it fired. */
static const char claim_fire_sql[] =
    "WITH fired AS (\n"
    "  INSERT INTO moontask.tasks AS t (name, payload, run_at, schedule_name,\n"
    "      fire_at, created_by, state, attempts, started_at, locked_by,\n"
    "      locked_until, max_attempts, queue, priority)\n"
    "  SELECT s.task, s.payload, $2::timestamptz, s.name, $2::timestamptz,\n"
    "         s.created_by,\n"
    "         CASE WHEN d.name IS NULL THEN 'scheduled' ELSE 'running' END,\n"
    "         CASE WHEN d.name IS NULL THEN 0 ELSE 1 END,\n"
    "         CASE WHEN d.name IS NOT NULL THEN now() END,\n"
    "         CASE WHEN d.name IS NOT NULL THEN $3 END,\n"
    "         CASE WHEN d.name IS NOT NULL\n"
    "              THEN now() + $4::float8 * interval '1 second' END,\n"
    "         d.max_attempts, coalesce(def.queue, '" MT_DEFAULT_QUEUE "'),\n"
    "         coalesce(def.priority, 0)\n"
    "    FROM moontask.schedules s\n"
    /* A fire of a named queue is inserted `scheduled`, like one of a task
     * this runtime cannot run: its queue's limits decide when it starts,
     * once the outbox has published it and it comes back by id. */
    "    LEFT JOIN moontask.definitions def ON def.name = s.task\n"
    "    LEFT JOIN unnest($5::text[], $6::int[]) AS d(name, max_attempts)\n"
    "      ON d.name = s.task\n"
    "     AND coalesce(def.queue, '" MT_DEFAULT_QUEUE "') = '" MT_DEFAULT_QUEUE
    "'\n"
    "   WHERE s.name = $1 AND s.error IS NULL\n"
    "  ON CONFLICT (schedule_name, fire_at) WHERE schedule_name IS NOT NULL\n"
    "  DO NOTHING\n"
    "  RETURNING t.state, " CLAIMED_COLUMNS "),\n"
    /* For `moontask recurring list`, as on the PostgreSQL backend. */
    "fire AS (\n"
    "  UPDATE moontask.schedules\n"
    "     SET last_fire_at = greatest(last_fire_at, $2::timestamptz)\n"
    "   WHERE name = $1 AND EXISTS (SELECT FROM fired))\n"
    "SELECT * FROM fired";

static mt_delivery_verdict_t verdict_of(const char *s) {
  static const struct {
    const char *name;
    mt_delivery_verdict_t v;
  } verdicts[] = {
      {"claimed", MT_DELIVERY_CLAIMED}, {"finished", MT_DELIVERY_FINISHED},
      {"missing", MT_DELIVERY_MISSING}, {"foreign", MT_DELIVERY_FOREIGN},
      {"not_due", MT_DELIVERY_NOT_DUE}, {"busy", MT_DELIVERY_BUSY},
      {"held", MT_DELIVERY_HELD},
  };
  for (size_t i = 0; i < sizeof verdicts / sizeof *verdicts; i++)
    if (strcmp(s, verdicts[i].name) == 0)
      return verdicts[i].v;
  return MT_DELIVERY_MISSING;
}

/* Claims one fire. A statement the server refuses (a fire time it cannot
 * read, say) makes that one delivery poison and leaves the others alone;
 * a lost connection is MT_EDB. */
static int claim_fire(pg_backend_t *b, mt_delivery_t *d, mt_err_t *err) {
  const char *params[] = {d->schedule, d->fire_at, b->owner,
                          b->lease,    b->names,   b->max_attempts};
  mt_err_t why;
  PGresult *res = run(b, claim_fire_sql, 6, params, &why);
  if (res == NULL) {
    if (PQstatus(b->conn) != CONNECTION_OK)
      return mt_err_set(err, MT_EDB, "%s", why.msg);
    d->verdict = MT_DELIVERY_MISSING;
    return 0;
  }
  d->verdict = MT_DELIVERY_FINISHED;
  if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "running") == 0) {
    d->verdict = MT_DELIVERY_CLAIMED;
    if ((d->task = task_from_row(res, 0, 1)) == NULL) {
      PQclear(res);
      return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
  }
  PQclear(res);
  return 0;
}

/* How long a delivered task whose queue is at its concurrency limit waits
 * to be delivered again (claim_ids_sql's $8). */
#define HELD_RETRY "5"

int mt_pg_claim_delivered(mt_backend_t *base, const mt_done_t *done,
                          size_t ndone, mt_delivery_t *d, size_t n, int *acked,
                          mt_err_t *err) {
  pg_backend_t *b = (pg_backend_t *)base;
  *acked = 0;
  mt_buf_t done_ids = MT_BUF_INIT, done_versions = MT_BUF_INIT,
           ids = MT_BUF_INIT;
  int rc = done_arrays(&done_ids, &done_versions, done, ndone);
  /* The tasks' ids, as an array literal of those that name one. */
  if (rc == 0)
    rc = mt_buf_putc(&ids, '{');
  for (size_t i = 0, k = 0; rc == 0 && i < n; i++) {
    d[i].verdict = MT_DELIVERY_PENDING;
    d[i].wait = 0;
    d[i].task = NULL;
    if (d[i].task_id > 0)
      rc = mt_buf_printf(&ids, k++ ? ",%" PRId64 : "%" PRId64, d[i].task_id);
  }
  if (rc == 0)
    rc = mt_buf_putc(&ids, '}');
  if (rc != 0) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto done;
  }
  const char *params[] = {ids.data,           b->owner,      b->lease,
                          b->names,           done_ids.data, b->max_attempts,
                          done_versions.data, HELD_RETRY};
  PGresult *res = run(b, claim_ids_sql, 8, params, err);
  if (res == NULL) {
    rc = MT_EDB;
    goto done;
  }
  *acked = 1;
  /* Each row answers for one id; the first delivery of an id takes the
   * claimed task, any other delivery of it in the batch is a duplicate. */
  for (int r = 0; r < PQntuples(res); r++) {
    int64_t id = strtoll(PQgetvalue(res, r, 2), NULL, 10);
    mt_delivery_verdict_t v = verdict_of(PQgetvalue(res, r, 0));
    double wait = strtod(PQgetvalue(res, r, 1), NULL);
    int taken = 0;
    for (size_t i = 0; i < n; i++) {
      if (d[i].task_id != id)
        continue;
      if (v == MT_DELIVERY_CLAIMED && taken) {
        d[i].verdict = MT_DELIVERY_FINISHED;
        continue;
      }
      d[i].verdict = v;
      d[i].wait = wait;
      if (v == MT_DELIVERY_CLAIMED) {
        taken = 1;
        /* Without memory the task stays claimed under our lease, and runs
         * again once the lease lapses. */
        if ((d[i].task = task_from_row(res, r, 2)) == NULL)
          rc = mt_err_set(err, MT_ENOMEM, "out of memory");
      }
    }
  }
  PQclear(res);
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (d[i].task_id <= 0 && d[i].schedule != NULL && d[i].fire_at != NULL)
      rc = claim_fire(b, &d[i], err);
done:
  mt_buf_free(&done_ids);
  mt_buf_free(&done_versions);
  mt_buf_free(&ids);
  return rc;
}
