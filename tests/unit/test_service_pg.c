/* TaskService through its C API, against the test database
 * (MT_TEST_DATABASE_URL, set by scripts/test). A case that needs the
 * database skips without that variable; one that cannot reach the database
 * the variable names fails. */
#include <stdlib.h>
#include <string.h>

#include "postgres/migrate.h"
#include "postgres/pg.h"
#include "postgres/pg_service.h"
#include "service/service.h"
#include "test.h"

static mt_registry_t one_task(void) {
  mt_registry_t reg = {0};
  mt_task_def_t def = {.name = "unit.job",
                       .file = "tasks/unit/job.lua",
                       .max_attempts = 3,
                       .timeout = 5,
                       .retry_delay = 1};
  ASSERT_EQ_INT(0, mt_registry_add(&reg, &def));
  return reg;
}

static PGconn *test_conn(void) {
  const char *url = getenv("MT_TEST_DATABASE_URL");
  if (url == NULL || *url == '\0')
    SKIP("MT_TEST_DATABASE_URL is not set: point it at a PostgreSQL "
         "database (scripts/test starts one and sets it)");
  mt_err_t err;
  PGconn *conn = mt_pg_connect(url, "unit test", &err);
  if (conn == NULL)
    MT__FAIL("%s", err.msg);
  ASSERT_EQ_INT(0, mt_pg_migrate(conn, NULL, &err));
  return conn;
}

static long count_key(PGconn *conn, const char *key) {
  const char *params[] = {key};
  mt_err_t err;
  PGresult *res =
      mt_pg_exec(conn, "SELECT count(*) FROM moontask.tasks WHERE key = $1", 1,
                 params, &err);
  ASSERT_TRUE(res != NULL);
  long n = atol(PQgetvalue(res, 0, 0));
  PQclear(res);
  return n;
}

static void exec_ok(PGconn *conn, const char *sql) {
  mt_err_t err;
  PGresult *res = mt_pg_exec(conn, sql, 0, NULL, &err);
  if (res == NULL)
    MT__FAIL("%s: %s", sql, err.msg);
  PQclear(res);
}

TEST(service_check_rejects_bad_requests) {
  mt_registry_t reg = one_task();
  mt_err_t err;
  mt_schedule_req_t unknown = {.name = "unit.nope", .payload = "{}"};
  ASSERT_EQ_INT(MT_ENOTASK, mt_service_check(&reg, &unknown, &err));
  ASSERT_TRUE(strstr(err.msg, "unit.nope") != NULL);
  mt_schedule_req_t array = {.name = "unit.job", .payload = " [1]"};
  ASSERT_EQ_INT(MT_EPAYLOAD, mt_service_check(&reg, &array, &err));
  mt_schedule_req_t empty_key = {
      .name = "unit.job", .payload = "{}", .key = ""};
  ASSERT_EQ_INT(MT_EINVAL, mt_service_check(&reg, &empty_key, &err));
  mt_schedule_req_t ok = {.name = "unit.job", .payload = "{\"a\": 1}"};
  ASSERT_EQ_INT(0, mt_service_check(&reg, &ok, &err));
  mt_registry_free(&reg);
}

TEST(service_schedule_rolls_back_with_caller) {
  mt_registry_t reg = one_task();
  PGconn *conn = test_conn();
  mt_err_t err;
  int64_t id = 0;
  mt_schedule_req_t req = {
      .name = "unit.job", .payload = "{}", .key = "unit-rollback"};
  exec_ok(conn, "BEGIN");
  ASSERT_EQ_INT(0, mt_pg_schedule(&reg, conn, &req, &id, &err));
  ASSERT_TRUE(id > 0);
  ASSERT_EQ_INT(1, count_key(conn, "unit-rollback"));
  exec_ok(conn, "ROLLBACK");
  ASSERT_EQ_INT(0, count_key(conn, "unit-rollback"));
  PQfinish(conn);
  mt_registry_free(&reg);
}

TEST(service_schedule_deduplicates_keys) {
  mt_registry_t reg = one_task();
  PGconn *conn = test_conn();
  mt_err_t err;
  int64_t first = 0, second = 0;
  mt_schedule_req_t req = {.name = "unit.job",
                           .payload = "{}",
                           .run_at = "2999-01-01T00:00:00Z",
                           .key = "unit-dedup"};
  exec_ok(conn, "BEGIN");
  ASSERT_EQ_INT(0, mt_pg_schedule(&reg, conn, &req, &first, &err));
  ASSERT_EQ_INT(0, mt_pg_schedule(&reg, conn, &req, &second, &err));
  ASSERT_EQ_INT(first, second);
  ASSERT_EQ_INT(1, count_key(conn, "unit-dedup"));
  exec_ok(conn, "ROLLBACK");
  PQfinish(conn);
  mt_registry_free(&reg);
}

TEST(service_schedule_reports_bad_json_as_bad_input) {
  mt_registry_t reg = one_task();
  PGconn *conn = test_conn();
  mt_err_t err;
  mt_schedule_req_t req = {.name = "unit.job", .payload = "{\"a\": }"};
  ASSERT_EQ_INT(MT_EPAYLOAD, mt_pg_schedule(&reg, conn, &req, NULL, &err));
  ASSERT_TRUE(strstr(err.msg, "22P02") != NULL);
  mt_schedule_req_t bad_time = {
      .name = "unit.job", .payload = "{}", .run_at = "yesterday-ish"};
  ASSERT_EQ_INT(MT_EPAYLOAD, mt_pg_schedule(&reg, conn, &bad_time, NULL, &err));
  PQfinish(conn);
  mt_registry_free(&reg);
}
