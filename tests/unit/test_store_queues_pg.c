/* The store's queues and task defaults (postgres/store.h): config.lua's
 * queues brought into moontask.queues, the task files' defaults into
 * moontask.definitions, and the queues listed with their counts. Against
 * the test database (MT_TEST_DATABASE_URL, set by scripts/test): a case
 * skips without that variable. Each case leaves moontask.queues empty, as
 * a configuration without queues would. */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "postgres/pg.h"
#include "postgres/store.h"
#include "test.h"

static mt_store_t *test_store(void) {
  const char *url = getenv("MT_TEST_DATABASE_URL");
  if (url == NULL || *url == '\0')
    SKIP("MT_TEST_DATABASE_URL is not set: point it at a PostgreSQL "
         "database (scripts/test starts one and sets it)");
  mt_store_t *s = NULL;
  mt_err_t err;
  if (mt_store_open(&s, url, "unit test", &err) != 0)
    MT__FAIL("%s", err.msg);
  ASSERT_EQ_INT(0, mt_store_migrate(s, NULL, &err));
  return s;
}

/* The one value of sql (a malloc'd string the caller frees); "" for no
 * row. */
static char *value(mt_store_t *s, const char *sql) {
  mt_err_t err;
  char *out = NULL;
  int rc = mt_store_query_value(s, sql, &out, &err);
  if (rc == MT_ENOTFOUND)
    return strdup("");
  if (rc != 0)
    MT__FAIL("%s: %s", sql, err.msg);
  return out;
}

#define ASSERT_VALUE(s, sql, want)  \
  do {                              \
    char *got_ = value((s), (sql)); \
    ASSERT_EQ_STR(got_, (want));    \
    free(got_);                     \
  } while (0)

static void exec_ok(mt_store_t *s, const char *sql) {
  mt_err_t err;
  if (mt_store_exec_guarded(s, sql, &err) != 0)
    MT__FAIL("%s: %s", sql, err.msg);
}

/* moontask.queues as one line: name|concurrency|rate_limit|rate_period,
 * by name. */
#define QUEUES_SQL                                                          \
  "SELECT coalesce(string_agg(concat_ws('|', name, concurrency, "           \
  "rate_limit, rate_period), ',' ORDER BY name), '') FROM moontask.queues " \
  "WHERE name LIKE 'unit\\_%'"

static void clean(mt_store_t *s) {
  mt_err_t err;
  exec_ok(s, "DELETE FROM moontask.tasks WHERE name LIKE 'unit.queues%'");
  ASSERT_EQ_INT(0, mt_store_sync_queues(s, NULL, 0, &err));
}

TEST(store_sync_queues_writes_limits) {
  mt_store_t *s = test_store();
  mt_err_t err;
  clean(s);
  mt_queue_def_t q[] = {
      {.name = "unit_bulk", .concurrency = 4},
      {.name = "unit_label"},
      {.name = "unit_pay",
       .concurrency = 2,
       .rate_limit = 25,
       .rate_period = 1},
  };
  ASSERT_EQ_INT(0, mt_store_sync_queues(s, q, 3, &err));
  ASSERT_VALUE(s, QUEUES_SQL, "unit_bulk|4,unit_label,unit_pay|2|25|1");
  /* A rate that stays keeps its next start: runtimes restarting let no
   * burst through. One that changes starts afresh. */
  exec_ok(s, "UPDATE moontask.queues SET next_start = now() + interval '1h',"
             " updated_at = '2000-01-01' WHERE name IN ('unit_pay', "
             "'unit_bulk')");
  q[0].concurrency = 5;
  ASSERT_EQ_INT(0, mt_store_sync_queues(s, q, 3, &err));
  ASSERT_VALUE(s, QUEUES_SQL, "unit_bulk|5,unit_label,unit_pay|2|25|1");
  ASSERT_VALUE(s,
               "SELECT next_start IS NOT NULL FROM moontask.queues "
               "WHERE name = 'unit_pay'",
               "t");
  /* An unchanged row is not written at all. */
  ASSERT_VALUE(s,
               "SELECT string_agg(name || '=' || (updated_at > '2000-01-01'),"
               " ',' ORDER BY name) FROM moontask.queues WHERE name IN "
               "('unit_pay', 'unit_bulk')",
               "unit_bulk=true,unit_pay=false");
  q[2].rate_limit = 50;
  ASSERT_EQ_INT(0, mt_store_sync_queues(s, q, 3, &err));
  ASSERT_VALUE(s,
               "SELECT next_start IS NULL FROM moontask.queues "
               "WHERE name = 'unit_pay'",
               "t");
  /* Dropping a limit writes NULL, not 0. */
  q[2].rate_limit = 0;
  q[2].rate_period = 0;
  ASSERT_EQ_INT(0, mt_store_sync_queues(s, q, 3, &err));
  ASSERT_VALUE(s, QUEUES_SQL, "unit_bulk|5,unit_label,unit_pay|2");
  clean(s);
  ASSERT_VALUE(s, QUEUES_SQL, "");
  mt_store_free(s);
}

TEST(store_sync_queues_keeps_dropped_queues_with_tasks) {
  mt_store_t *s = test_store();
  mt_err_t err;
  clean(s);
  mt_queue_def_t q[] = {
      {.name = "unit_busy",
       .concurrency = 1,
       .rate_limit = 1,
       .rate_period = 60},
      {.name = "unit_idle", .concurrency = 3},
      {.name = "unit_ran", .concurrency = 3},
  };
  ASSERT_EQ_INT(0, mt_store_sync_queues(s, q, 3, &err));
  exec_ok(s, "SELECT moontask.schedule('unit.queues', '{}', queue => "
             "'unit_busy');"
             "SELECT moontask.schedule('unit.queues', '{}', queue => "
             "'unit_ran');"
             "UPDATE moontask.tasks SET state = 'completed' "
             "WHERE queue = 'unit_ran'");
  /* Only unit_idle stays declared: unit_busy keeps its row, without
   * limits, for its waiting task; unit_ran's tasks are done, so it goes. */
  ASSERT_EQ_INT(0, mt_store_sync_queues(s, &q[1], 1, &err));
  ASSERT_VALUE(s, QUEUES_SQL, "unit_busy,unit_idle|3");
  /* Once the task is gone, the next sync deletes the row. */
  exec_ok(s, "UPDATE moontask.tasks SET state = 'cancelled' "
             "WHERE queue = 'unit_busy'");
  ASSERT_EQ_INT(0, mt_store_sync_queues(s, &q[1], 1, &err));
  ASSERT_VALUE(s, QUEUES_SQL, "unit_idle|3");
  /* A name the table refuses rolls the whole sync back. */
  mt_queue_def_t bad[] = {{.name = "unit_new"}, {.name = "default"}};
  ASSERT_EQ_INT(MT_EDB, mt_store_sync_queues(s, bad, 2, &err));
  ASSERT_VALUE(s, QUEUES_SQL, "unit_idle|3");
  clean(s);
  mt_store_free(s);
}

TEST(store_sync_definitions_upserts) {
  mt_store_t *s = test_store();
  mt_err_t err;
  mt_registry_t reg = {0};
  mt_task_def_t a = {.name = "unit.queues_a", .file = "a.lua"};
  mt_task_def_t b = {.name = "unit.queues_b",
                     .file = "b.lua",
                     .queue = "unit_q",
                     .priority = 7};
  ASSERT_EQ_INT(0, mt_registry_add(&reg, &b));
  ASSERT_EQ_INT(0, mt_registry_add(&reg, &a));
  exec_ok(s, "DELETE FROM moontask.definitions WHERE name LIKE 'unit.%';"
             "INSERT INTO moontask.definitions (name, queue, priority) "
             "VALUES ('unit.queues_other', 'x', 1)");
  ASSERT_EQ_INT(0, mt_store_sync_definitions(s, &reg, &err));
#define DEFS_SQL                                                           \
  "SELECT string_agg(concat_ws('|', name, queue, priority), ',' ORDER BY " \
  "name) FROM moontask.definitions WHERE name LIKE 'unit.queues%'"
  /* Another runtime's task keeps its row. */
  ASSERT_VALUE(s, DEFS_SQL,
               "unit.queues_a|default|0,unit.queues_b|unit_q|7,"
               "unit.queues_other|x|1");
  reg.defs[0].priority = -3; /* unit.queues_b, added first */
  ASSERT_EQ_INT(0, mt_store_sync_definitions(s, &reg, &err));
  ASSERT_VALUE(s, DEFS_SQL,
               "unit.queues_a|default|0,unit.queues_b|unit_q|-3,"
               "unit.queues_other|x|1");
  mt_registry_t none = {0};
  ASSERT_EQ_INT(0, mt_store_sync_definitions(s, &none, &err));
  exec_ok(s, "DELETE FROM moontask.definitions WHERE name LIKE 'unit.%'");
  mt_registry_free(&reg);
  mt_store_free(s);
}

/* Appends each row of mt_store_list_queues as "a|b|...;" ("-" for NULL). */
static int collect(void *arg, int n, const char *const *names,
                   const char *const *cols, mt_err_t *err) {
  mt_buf_t *b = arg;
  (void)names;
  (void)err;
  for (int c = 0; c < n; c++)
    mt_buf_printf(b, "%s%s", c ? "|" : "", cols[c] ? cols[c] : "-");
  return mt_buf_putc(b, ';');
}

TEST(store_list_queues_counts) {
  mt_store_t *s = test_store();
  mt_err_t err;
  mt_buf_t rows = MT_BUF_INIT;
  clean(s);
  mt_queue_def_t q[] = {
      {.name = "unit_a", .concurrency = 2, .rate_limit = 25, .rate_period = 1},
      {.name = "unit_b", .rate_limit = 100, .rate_period = 10},
      {.name = "unit_c", .rate_limit = 5, .rate_period = 7200},
  };
  ASSERT_EQ_INT(0, mt_store_sync_queues(s, q, 3, &err));
  exec_ok(s, "SELECT moontask.schedule('unit.queues', '{}', queue => 'unit_a')"
             "  FROM generate_series(1, 3);"
             "SELECT moontask.schedule('unit.queues', '{}', now() + "
             "interval '1h', queue => 'unit_a');"
             "UPDATE moontask.tasks SET state = 'running', locked_by = 'unit',"
             " locked_until = now() + interval '1h' WHERE id = "
             "(SELECT min(id) FROM moontask.tasks WHERE queue = 'unit_a');"
             /* A queue that lost its row while tasks waited in it. */
             "SELECT moontask.schedule('unit.queues', '{}', queue => 'unit_b');"
             "DELETE FROM moontask.queues WHERE name = 'unit_b';"
             /* Finished tasks count nowhere. */
             "SELECT moontask.schedule('unit.queues', '{}', queue => 'unit_c');"
             "UPDATE moontask.tasks SET state = 'failed' WHERE queue = "
             "'unit_c'");
  ASSERT_EQ_INT(0, mt_store_list_queues(s, collect, &rows, &err));
  /* Default first, whatever other cases left in it; then by name. */
  ASSERT_TRUE(strncmp(rows.data, "default|-|-|", 12) == 0);
  const char *unit = strstr(rows.data, ";unit_");
  ASSERT_TRUE(unit != NULL);
  ASSERT_EQ_STR(unit + 1, "unit_a|2|25/s|1|2|1;"
                          "unit_b|-|-|0|1|0;"
                          "unit_c|-|5/2h|0|0|0;");
  clean(s);
  mt_buf_free(&rows);
  mt_store_free(s);
}
