/* The PostgreSQL session (postgres/pg_session.h) against the test database
 * (MT_TEST_DATABASE_URL, set by scripts/test): how it reports a record the
 * database refuses (give up) apart from a connection that died (reconnect
 * and try again), what it does with a handler's message that is not
 * UTF-8, and how a snooze ends the handler's transaction. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "postgres/migrate.h"
#include "postgres/pg.h"
#include "postgres/pg_session.h"
#include "postgres/task_tx.h"
#include "test.h"

#define OWNER "unit-test-owner"

static const char *test_url(void) {
  const char *url = getenv("MT_TEST_DATABASE_URL");
  if (url == NULL || *url == '\0')
    SKIP("MT_TEST_DATABASE_URL is not set: point it at a PostgreSQL "
         "database (scripts/test starts one and sets it)");
  return url;
}

static PGconn *admin_conn(const char *url) {
  mt_err_t err;
  PGconn *conn = mt_pg_connect(url, "unit test admin", &err);
  if (conn == NULL)
    MT__FAIL("%s", err.msg);
  ASSERT_EQ_INT(0, mt_pg_migrate(conn, NULL, &err));
  return conn;
}

static char *query1(PGconn *conn, const char *sql) {
  mt_err_t err;
  PGresult *res = mt_pg_exec(conn, sql, 0, NULL, &err);
  if (res == NULL)
    MT__FAIL("%s: %s", sql, err.msg);
  char *v = strdup(PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
  PQclear(res);
  return v;
}

/* A task `running` under OWNER, as a claim leaves it. */
static int64_t running_task(PGconn *conn) {
  char *id = query1(conn, "INSERT INTO moontask.tasks (name, payload, state, "
                          "attempts, locked_by, locked_until)\n"
                          "VALUES ('unit.session', '{}', 'running', 1, '" OWNER
                          "', now() + interval '1 minute') RETURNING id");
  int64_t v = strtoll(id, NULL, 10);
  free(id);
  return v;
}

TEST(session_refused_record_is_not_retried) {
  const char *url = test_url();
  PGconn *admin = admin_conn(url);
  mt_session_t *s = NULL;
  mt_err_t err;
  /* An owner that is not UTF-8: the server refuses the statement's
   * parameters while the connection stays fine. */
  ASSERT_EQ_INT(0, mt_pg_session_new(&s, url, "unit session", "\xff", &err));
  int rc = s->ops->release(s, running_task(admin), &err);
  ASSERT_TRUE(rc != 0 && rc != MT_EIO);
  ASSERT_TRUE(s->ops->idle(s));
  s->ops->free(s);
  PQfinish(admin);
}

TEST(session_lost_connection_is_retried) {
  const char *url = test_url();
  PGconn *admin = admin_conn(url);
  mt_session_t *s = NULL;
  mt_err_t err;
  ASSERT_EQ_INT(0,
                mt_pg_session_new(&s, url, "unit session killed", OWNER, &err));
  free(query1(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = 'unit session killed'"));
  int64_t id = running_task(admin);
  ASSERT_EQ_INT(MT_EIO, s->ops->release(s, id, &err));
  /* The executor's answer: reconnect, then the record lands. */
  ASSERT_EQ_INT(0, s->ops->connect(s, &err));
  ASSERT_EQ_INT(0, s->ops->release(s, id, &err));
  char sql[128];
  snprintf(sql, sizeof sql,
           "SELECT state || ' ' || attempts FROM moontask.tasks WHERE id = "
           "%" PRId64,
           id);
  char *state = query1(admin, sql);
  ASSERT_EQ_STR(state, "scheduled 0");
  free(state);
  s->ops->free(s);
  PQfinish(admin);
}

TEST(session_records_a_message_that_is_not_utf8) {
  const char *url = test_url();
  PGconn *admin = admin_conn(url);
  mt_session_t *s = NULL;
  mt_err_t err;
  ASSERT_EQ_INT(0, mt_pg_session_new(&s, url, "unit session", OWNER, &err));
  int64_t id = running_task(admin);
  mt_failure_t f = {.id = id, .message = "bad \xff byte", .max_attempts = 1};
  ASSERT_EQ_INT(0, s->ops->fail(s, &f, &err));
  char sql[128];
  snprintf(sql, sizeof sql,
           "SELECT state || ' ' || last_error FROM moontask.tasks WHERE id = "
           "%" PRId64,
           id);
  char *row = query1(admin, sql);
  ASSERT_EQ_STR(row, "failed bad \xef\xbf\xbd byte");
  free(row);
  s->ops->free(s);
  PQfinish(admin);
}

TEST(session_wrapping_a_connection_leaves_it_open) {
  const char *url = test_url();
  PGconn *conn = admin_conn(url);
  mt_session_t *s = NULL;
  mt_err_t err;
  ASSERT_EQ_INT(0, mt_pg_session_wrap(&s, conn, OWNER, &err));
  ASSERT_TRUE(s->ops->alive(s));
  s->ops->free(s);
  ASSERT_TRUE(PQstatus(conn) == CONNECTION_OK);
  free(query1(conn, "SELECT 1"));
  PQfinish(conn);
}

/* The handler's transaction, as the executor opens it for task id. */
static mt_tx_t *begin_task(mt_session_t *s, int64_t id, atomic_int *abort) {
  const mt_tx_opts_t opts = {
      .task_id = id, .deadline = mt_now() + 10, .abort = abort};
  return s->ops->begin(s, &opts);
}

static char *task_row(PGconn *admin, int64_t id) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT state || ' ' || attempts || ' ' || (locked_by IS NULL) "
           "|| ' ' || (run_at > now() + interval '59 seconds') "
           "FROM moontask.tasks WHERE id = %" PRId64,
           id);
  return query1(admin, sql);
}

/* Each case has a table of its own: ctest runs cases side by side, and two
 * CREATE TABLE IF NOT EXISTS of one name may collide. */
TEST(session_snooze_commits_the_handlers_effects_once) {
  const char *url = test_url();
  PGconn *admin = admin_conn(url);
  free(
      query1(admin, "CREATE TABLE IF NOT EXISTS unit_snooze (task_id bigint)"));
  mt_session_t *s = NULL;
  mt_err_t err;
  atomic_int abort_flag = 0;
  ASSERT_EQ_INT(0, mt_pg_session_new(&s, url, "unit session", OWNER, &err));

  /* A handler that wrote a row: the row commits with the snooze, and the
   * attempt it ran is given back. */
  int64_t id = running_task(admin);
  mt_tx_t *tx = begin_task(s, id, &abort_flag);
  char ids[24];
  snprintf(ids, sizeof ids, "%" PRId64, id);
  const char *params[] = {ids};
  PGresult *res = NULL;
  ASSERT_EQ_INT(0, mt_tx_query(tx, "INSERT INTO unit_snooze VALUES ($1)", 1,
                               params, &res, &err));
  PQclear(res);
  ASSERT_EQ_INT(0, s->ops->snooze(s, 60, &err));
  ASSERT_TRUE(s->ops->idle(s));
  char *row = task_row(admin, id);
  ASSERT_EQ_STR(row, "scheduled 0 true true");
  free(row);
  char sql[128];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM unit_snooze WHERE task_id = %" PRId64, id);
  row = query1(admin, sql);
  ASSERT_EQ_STR(row, "1");
  free(row);

  /* A handler that ran no SQL: the snooze begins the transaction. */
  id = running_task(admin);
  begin_task(s, id, &abort_flag);
  ASSERT_EQ_INT(0, s->ops->snooze(s, 60, &err));
  ASSERT_TRUE(s->ops->idle(s));
  row = task_row(admin, id);
  ASSERT_EQ_STR(row, "scheduled 0 true true");
  free(row);
  s->ops->free(s);
  PQfinish(admin);
}

TEST(session_snooze_of_a_task_no_longer_held_fails) {
  const char *url = test_url();
  PGconn *admin = admin_conn(url);
  free(query1(
      admin,
      "CREATE TABLE IF NOT EXISTS unit_snooze_refused (task_id bigint)"));
  mt_session_t *s = NULL;
  mt_err_t err;
  atomic_int abort_flag = 0;
  /* Another owner: as if the lease lapsed and another runtime took it. */
  ASSERT_EQ_INT(0,
                mt_pg_session_new(&s, url, "unit session", "elsewhere", &err));
  int64_t id = running_task(admin);
  mt_tx_t *tx = begin_task(s, id, &abort_flag);
  char ids[24];
  snprintf(ids, sizeof ids, "%" PRId64, id);
  const char *params[] = {ids};
  PGresult *res = NULL;
  ASSERT_EQ_INT(0,
                mt_tx_query(tx, "INSERT INTO unit_snooze_refused VALUES ($1)",
                            1, params, &res, &err));
  PQclear(res);
  ASSERT_TRUE(s->ops->snooze(s, 60, &err) != 0);
  if (strstr(err.msg, "no longer held") == NULL)
    MT__FAIL("\"%s\" does not say the task is no longer held", err.msg);
  s->ops->rollback(s); /* as the executor does */
  ASSERT_TRUE(s->ops->idle(s));
  /* Nothing of the handler's committed, and the task is as it was. */
  char sql[128];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM unit_snooze_refused WHERE task_id = %" PRId64,
           id);
  char *row = query1(admin, sql);
  ASSERT_EQ_STR(row, "0");
  free(row);
  row = task_row(admin, id);
  ASSERT_EQ_STR(row, "running 1 false false");
  free(row);
  s->ops->free(s);
  PQfinish(admin);
}
