/* Loading task scripts: names from paths, definitions, and errors that name
 * the file and line. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lua/tasks.h"
#include "test.h"

static char dir[64];

static void write_file(const char *rel, const char *text) {
  mt_test_write_file(dir, rel, text);
}

static void fresh_dir(void) { mt_test_tmpdir(dir, "tasks"); }

TEST(tasks_names_and_defaults_from_files) {
  fresh_dir();
  write_file("attendance/merge_pools.lua",
             "return { max_attempts = 5, timeout = 2.5,\n"
             "  handler = function(tx, payload, ctx) end }\n");
  write_file("other.lua",
             "return { name = \"custom.name\", handler = function() end }\n");
  mt_registry_t reg = {0};
  mt_task_defaults_t defaults = {.timeout = 60};
  mt_err_t err;
  ASSERT_EQ_INT(0, mt_lua_registry_load(dir, &defaults, &reg, &err));
  ASSERT_EQ_INT(2, reg.count);
  const mt_task_def_t *a = mt_registry_find(&reg, "attendance.merge_pools");
  ASSERT_TRUE(a != NULL);
  ASSERT_EQ_INT(5, a->max_attempts);
  ASSERT_TRUE(a->timeout == 2.5);
  const mt_task_def_t *b = mt_registry_find(&reg, "custom.name");
  ASSERT_TRUE(b != NULL);
  ASSERT_EQ_INT(25, b->max_attempts);
  ASSERT_TRUE(b->timeout == 60);
  mt_registry_free(&reg);
}

TEST(tasks_syntax_error_names_file_and_line) {
  fresh_dir();
  write_file("broken.lua",
             "return {\n  handler = function(tx payload) end\n}\n");
  mt_registry_t reg = {0};
  mt_task_defaults_t defaults = {.timeout = 60};
  mt_err_t err;
  ASSERT_EQ_INT(MT_ECONFIG, mt_lua_registry_load(dir, &defaults, &reg, &err));
  ASSERT_TRUE(strstr(err.msg, "broken.lua:2:") != NULL);
  mt_registry_free(&reg);
}

TEST(tasks_bad_definitions_are_refused) {
  const char *cases[][2] = {
      {"return 42\n", "must return a table"},
      {"return { handler = 1 }\n", "handler must be a function"},
      {"return { handler = function() end, max_attempts = 0 }\n",
       "max_attempts must be a whole number from 1 to 10000, not 0"},
      {"return { handler = function() end, max_attempts = 1e12 }\n",
       "max_attempts must be a whole number from 1 to 10000, not 1000000000000.0"},
      {"return { handler = function() end, max_attempts = 2.5 }\n",
       "max_attempts must be a whole number from 1 to 10000, not 2.5"},
      {"return { handler = function() end, timeout = 1e9 }\n",
       "timeout must be a number from 0.001 to 86400, not 1000000000.0"},
      {"return { handler = function() end, memory_limit = 64 }\n",
       "memory_limit must be a whole number from 1048576 to"},
      {"return { handler = function() end, name = \"bad name\" }\n",
       "not a valid task name"},
      {"error('boom at load')\n", "boom at load"},
      {"return { handler = function() end, x = io.open }\n", "io"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fresh_dir();
    write_file("t.lua", cases[i][0]);
    mt_registry_t reg = {0};
    mt_task_defaults_t defaults = {.timeout = 60};
    mt_err_t err;
    ASSERT_EQ_INT(MT_ECONFIG, mt_lua_registry_load(dir, &defaults, &reg, &err));
    if (strstr(err.msg, cases[i][1]) == NULL)
      MT__FAIL("case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i][1]);
    mt_registry_free(&reg);
  }
}

TEST(tasks_symlink_loop_is_refused) {
  fresh_dir();
  write_file("a/b.lua", "return { handler = function() end }\n");
  char link[600];
  snprintf(link, sizeof link, "%s/a/again", dir);
  ASSERT_EQ_INT(0, symlink("..", link));
  mt_registry_t reg = {0};
  mt_task_defaults_t defaults = {.timeout = 60};
  mt_err_t err;
  ASSERT_EQ_INT(MT_ECONFIG, mt_lua_registry_load(dir, &defaults, &reg, &err));
  if (strstr(err.msg, "a/again: a symlink loop") == NULL)
    MT__FAIL("\"%s\" does not name the loop", err.msg);
  mt_registry_free(&reg);
}

TEST(tasks_duplicate_names_are_refused) {
  fresh_dir();
  write_file("a/b.lua", "return { handler = function() end }\n");
  write_file("c.lua", "return { name = 'a.b', handler = function() end }\n");
  mt_registry_t reg = {0};
  mt_task_defaults_t defaults = {.timeout = 60};
  mt_err_t err;
  ASSERT_EQ_INT(MT_ECONFIG, mt_lua_registry_load(dir, &defaults, &reg, &err));
  ASSERT_TRUE(strstr(err.msg, "already defined") != NULL);
  mt_registry_free(&reg);
}

TEST(tasks_schedule_catch_up_is_parsed_once) {
  fresh_dir();
  write_file("tick.lua",
             "return { handler = function() end, schedule = {\n"
             "  { cron = '0 9 * * MON', catch_up = 'all' },\n"
             "  { cron = '0 9 * * TUE' },\n"
             "  { cron = 'rate(5 minutes)', catch_up = 'skip' } } }\n");
  mt_registry_t reg = {0};
  mt_task_defaults_t defaults = {.timeout = 60};
  mt_err_t err;
  ASSERT_EQ_INT(0, mt_lua_registry_load(dir, &defaults, &reg, &err));
  const mt_task_def_t *d = mt_registry_find(&reg, "tick");
  ASSERT_TRUE(d != NULL);
  ASSERT_EQ_INT(3, d->nschedules);
  ASSERT_EQ_INT(MT_CATCH_UP_ALL, d->schedules[0].catch_up);
  ASSERT_EQ_INT(MT_CATCH_UP_ONCE, d->schedules[1].catch_up); /* the default */
  ASSERT_EQ_INT(MT_CATCH_UP_SKIP, d->schedules[2].catch_up);
  ASSERT_EQ_STR("UTC", d->schedules[1].tz);
  mt_registry_free(&reg);

  const char *cases[][2] = {
      {"return { handler = function() end,\n"
       "  schedule = { cron = '0 9 * * *', catch_up = 'never' } }\n",
       "schedule[1].catch_up: \"never\" is not once, skip or all"},
      {"return { handler = function() end,\n"
       "  schedule = { { cron = '0 9 * * *' },\n"
       "               { cron = '0 9 * * *', catch_up = 'All' } } }\n",
       "schedule[2].catch_up: \"All\" is not once, skip or all"},
      {"return { handler = function() end,\n"
       "  schedule = { cron = '0 9 * * *', catch_up = true } }\n",
       "schedule[1]: tz and catch_up must be strings"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fresh_dir();
    write_file("t.lua", cases[i][0]);
    mt_registry_t bad = {0};
    ASSERT_EQ_INT(MT_ECONFIG, mt_lua_registry_load(dir, &defaults, &bad, &err));
    if (strstr(err.msg, cases[i][1]) == NULL)
      MT__FAIL("case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i][1]);
    mt_registry_free(&bad);
  }
}

TEST(tasks_queue_and_priority) {
  fresh_dir();
  write_file("a.lua", "return { queue = 'payments', priority = -32768,\n"
                      "  handler = function() end }\n");
  write_file("b.lua", "return { queue = 'default', priority = 32767.0,\n"
                      "  handler = function() end }\n");
  write_file("c.lua", "return { handler = function() end }\n");
  mt_registry_t reg = {0};
  mt_task_defaults_t defaults = {.timeout = 60};
  mt_err_t err;
  ASSERT_EQ_INT(0, mt_lua_registry_load(dir, &defaults, &reg, &err));
  const mt_task_def_t *a = mt_registry_find(&reg, "a");
  const mt_task_def_t *b = mt_registry_find(&reg, "b");
  const mt_task_def_t *c = mt_registry_find(&reg, "c");
  ASSERT_TRUE(a != NULL && b != NULL && c != NULL);
  ASSERT_EQ_STR("payments", a->queue);
  ASSERT_EQ_INT(-32768, a->priority);
  /* "default" is the queue of a task that names none. */
  ASSERT_TRUE(b->queue == NULL);
  ASSERT_EQ_INT(32767, b->priority);
  ASSERT_TRUE(c->queue == NULL);
  ASSERT_EQ_INT(0, c->priority);
  mt_registry_free(&reg);

  const char *cases[][2] = {
      {"return { handler = function() end, priority = 32768 }\n",
       "t.lua: priority must be a whole number from -32768 to 32767, not "
       "32768"},
      {"return { handler = function() end, priority = 1.5 }\n",
       "t.lua: priority must be a whole number from -32768 to 32767, not 1.5"},
      {"return { handler = function() end, priority = 'high' }\n",
       "t.lua: priority must be a whole number from -32768 to 32767, not "
       "high"},
      {"return { handler = function() end, queue = 'pay.ments' }\n",
       "t.lua: queue \"pay.ments\" is not a queue name"},
      {"return { handler = function() end, queue = '' }\n",
       "t.lua: queue \"\" is not a queue name"},
      {"return { handler = function() end, queue = 'pay\\0ments' }\n",
       "t.lua: queue \"pay\" is not a queue name"},
      {"return { handler = function() end, queue = 7 }\n",
       "t.lua: queue must be a string naming a queue, not number"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fresh_dir();
    write_file("t.lua", cases[i][0]);
    mt_registry_t bad = {0};
    ASSERT_EQ_INT(MT_ECONFIG, mt_lua_registry_load(dir, &defaults, &bad, &err));
    if (strstr(err.msg, cases[i][1]) == NULL)
      MT__FAIL("case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i][1]);
    mt_registry_free(&bad);
  }
}
