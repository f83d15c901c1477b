/* Running a handler in a worker's Lua state (lua/worker.h): what a handler
 * returns, and ctx.snooze's value, which the executor turns into a snooze
 * instead of a completion. These handlers touch no data, so the transaction
 * is a bare one that nothing sends a statement on. */
#include <stdatomic.h>
#include <string.h>

#include "common/clock.h"
#include "lua/worker.h"
#include "postgres/task_tx.h"
#include "test.h"

static char dir[64];

/* Runs the handler of task t (tasks/t.lua, written from src) once, with
 * payload, and returns mt_lua_worker_run's code. */
static int run_once(const char *src, const char *payload, double *snooze,
                    mt_err_t *err) {
  mt_test_tmpdir(dir, "worker");
  mt_test_write_file(dir, "t.lua", src);
  mt_task_defaults_t defaults = {.timeout = 10,
                                 .memory_limit = 64 * 1024 * 1024};
  mt_lua_worker_t *w = NULL;
  mt_err_t why;
  if (mt_lua_worker_new(&w, dir, &defaults, &why) != 0)
    MT__FAIL("%s", why.msg);
  atomic_int abort_flag = 0;
  mt_tx_t tx = {.deadline = mt_now() + 10, .abort = &abort_flag};
  mt_task_t *task = mt_task_new(1, "t", payload, "2026-01-01T00:00:00Z", 1, 0);
  ASSERT_TRUE(task != NULL);
  *snooze = -1; /* the call must set it */
  int rc = mt_lua_worker_run(w, task, &tx, snooze, err);
  mt_task_free(task);
  mt_lua_worker_free(w);
  return rc;
}

TEST(worker_snooze_is_returned) {
  double snooze;
  mt_err_t err;
  ASSERT_EQ_INT(0, run_once("return { handler = function(tx, p, ctx)\n"
                            "  return ctx.snooze(p.s) end }\n",
                            "{\"s\": 2.5}", &snooze, &err));
  ASSERT_TRUE(snooze == 2.5);
  /* The most it takes: 30 days. */
  ASSERT_EQ_INT(0, run_once("return { handler = function(tx, p, ctx)\n"
                            "  return ctx.snooze(p.s) end }\n",
                            "{\"s\": 2592000}", &snooze, &err));
  ASSERT_TRUE(snooze == MT_SNOOZE_MAX);
}

TEST(worker_snooze_only_counts_when_returned) {
  double snooze;
  mt_err_t err;
  /* Made and dropped, or returned in second place: a completion. */
  ASSERT_EQ_INT(0, run_once("return { handler = function(tx, p, ctx)\n"
                            "  local s = ctx.snooze(5)\n"
                            "  return 1, s end }\n",
                            "{}", &snooze, &err));
  ASSERT_TRUE(snooze == 0);
  /* Returned by a handler that then raised? It cannot: a raise is a
   * failure, and a failure never snoozes. */
  ASSERT_EQ_INT(MT_ELUA, run_once("return { handler = function(tx, p, ctx)\n"
                                  "  local s = ctx.snooze(5)\n"
                                  "  error('no') end }\n",
                                  "{}", &snooze, &err));
  ASSERT_TRUE(snooze == 0);
}

TEST(worker_snooze_value_is_sealed) {
  double snooze;
  mt_err_t err;
  /* Its metatable is shared by every task: not handed out. */
  ASSERT_EQ_INT(
      0, run_once("return { handler = function(tx, p, ctx)\n"
                  "  local s = ctx.snooze(5)\n"
                  "  assert(getmetatable(s) == false)\n"
                  "  assert(tostring(s) == 'snooze (5.0 s)', tostring(s))\n"
                  "end }\n",
                  "{}", &snooze, &err));
}

TEST(worker_snooze_refuses_bad_seconds) {
  const char *cases[][2] = {
      {"0", "not 0"},
      {"-1", "not -1"},
      {"2592000.5", "not 2592000.5"},
      {"math.huge", "not inf"},
      {"0/0", "not "},
      {"'5'", "not 5"},
      {"nil", "not nil"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char src[256];
    snprintf(src, sizeof src,
             "return { handler = function(tx, p, ctx)\n"
             "  return ctx.snooze(%s) end }\n",
             cases[i][0]);
    double snooze;
    mt_err_t err;
    ASSERT_EQ_INT(MT_ELUA, run_once(src, "{}", &snooze, &err));
    ASSERT_TRUE(snooze == 0);
    if (strstr(err.msg, "bad argument #1 to 'snooze' (seconds must be a "
                        "number more than 0 and at most 2592000 (30 "
                        "days), ") == NULL ||
        strstr(err.msg, cases[i][1]) == NULL)
      MT__FAIL("case %s: \"%s\"", cases[i][0], err.msg);
  }
}
