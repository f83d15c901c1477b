/* require("lib.x"): modules from the lib folder and nowhere else, cached
 * per script, run in the sandbox within the load time limit, and errors
 * that name the module and its file and line. The task scanner leaves the
 * lib folder alone. */
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "lua/tasks.h"
#include "test.h"
#include "toolkit_test.h"

static char dir[64];
static char tasks[128];

static void write_file(const char *rel, const char *text) {
  mt_test_write_file(dir, rel, text);
}

/* A fresh folder with tasks/ in it, and the usual modules. */
static void fresh_dir(void) {
  mt_test_tmpdir(dir, "require");
  snprintf(tasks, sizeof tasks, "%s/tasks", dir);
  write_file("tasks/lib/money.lua",
             "local M = {}\n"
             "function M.format(ore)\n"
             "  return ('%d.%02d'):format(ore // 100, ore % 100)\n"
             "end\n"
             "return M\n");
  write_file("tasks/lib/billing/stripe.lua",
             "local money = require('lib.money')\n"
             "return { money = money, amount = function(ore) return "
             "money.format(ore) .. ' NOK' end }\n");
}

TEST(require_resolves_dotted_names_under_lib) {
  fresh_dir();
  kit_t k;
  kit_open(&k, tasks, NULL, NULL);
  ASSERT_EQ_STR("123.45", kit_string(&k, "return require('lib.money')"
                                         ".format(12345)"));
  ASSERT_EQ_STR("0.50 NOK", kit_string(&k, "return require('lib.billing."
                                           "stripe').amount(50)"));
  kit_close(&k);
}

TEST(require_uses_the_configured_lib_dir) {
  fresh_dir();
  write_file("shared/money.lua", "return { from = 'shared' }\n");
  char shared[128];
  snprintf(shared, sizeof shared, "%s/shared", dir);
  kit_t k;
  kit_open(&k, tasks, shared, NULL);
  ASSERT_EQ_STR("shared", kit_string(&k, "return require('lib.money').from"));
  /* tasks/lib is no module folder then. */
  kit_raises(&k, "return require('lib.billing.stripe')",
             "module lib.billing.stripe not found: no file");
  kit_close(&k);
}

TEST(require_caches_per_script) {
  fresh_dir();
  kit_t k;
  kit_open(&k, tasks, NULL, NULL);
  mt_err_t err;
  /* One script: one copy, shared with the modules it loads. */
  kit_ok(&k, "local a, b = require('lib.money'), require('lib.money')\n"
             "assert(rawequal(a, b), 'loaded twice')\n"
             "assert(rawequal(require('lib.billing.stripe').money, a),\n"
             "  'a module got a copy of its own')\n");
  /* Two scripts: a copy each, so one cannot change what the other runs. */
  const char *src = "local m = require('lib.money')\n"
                    "local before = m.format(100)\n"
                    "m.format = function() return 'poisoned' end\n"
                    "return m, before\n";
  ASSERT_EQ_INT(0, kit_run(&k, src, 10, 2, &err));
  ASSERT_EQ_STR("1.00", lua_tostring(k.L, -1));
  lua_pop(k.L, 1);
  ASSERT_EQ_INT(0, kit_run(&k, src, 10, 2, &err));
  ASSERT_EQ_STR("1.00", lua_tostring(k.L, -1));
  lua_pop(k.L, 1);
  ASSERT_TRUE(!lua_rawequal(k.L, -1, -2));
  lua_pop(k.L, 2);
  kit_close(&k);
}

TEST(require_refuses_names_outside_lib) {
  fresh_dir();
  write_file("tasks/secret.lua", "return 'should never load'\n");
  write_file("outside.lua", "return 'should never load'\n");
  kit_t k;
  kit_open(&k, tasks, NULL, NULL);
  const char *names[] = {"money",     "lib",        "lib.",        "lib..money",
                         "lib/money", "lib.../x",   "../outside",  "lib.x/../y",
                         "lib.1x",    "lib.money.", ".lib.money",  "os",
                         "",          "lib.mo ney", "lib.money\\0"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    char src[128];
    snprintf(src, sizeof src, "return require('%s')", names[i]);
    kit_raises(&k, src, "is not a module name");
  }
  kit_raises(&k, "return require()", "bad argument #1 to 'require'");
  kit_raises(&k, "return require({})", "bad argument #1 to 'require'");
  kit_close(&k);
}

TEST(require_names_the_missing_file) {
  fresh_dir();
  kit_t k;
  kit_open(&k, tasks, NULL, NULL);
  char want[512];
  snprintf(want, sizeof want,
           "snippet:1: module lib.billing.paypal not found: no file "
           "%s/lib/billing/paypal.lua",
           tasks);
  kit_raises(&k, "return require('lib.billing.paypal')", want);
  /* A folder is not a module. */
  kit_raises(&k, "return require('lib.billing')",
             "module lib.billing not found");
  kit_close(&k);
}

TEST(require_errors_name_module_file_and_line) {
  fresh_dir();
  write_file("tasks/lib/bad.lua", "return {\n  x = ,\n}\n");
  write_file("tasks/lib/boom.lua", "local x = 1\nerror('kaput')\n");
  write_file("tasks/lib/cycle_a.lua", "return require('lib.cycle_b')\n");
  write_file("tasks/lib/cycle_b.lua", "return require('lib.cycle_a')\n");
  kit_t k;
  kit_open(&k, tasks, NULL, NULL);
  char want[512];
  snprintf(want, sizeof want, "module lib.bad: %s/lib/bad.lua:2:", tasks);
  kit_raises(&k, "return require('lib.bad')", want);
  snprintf(want, sizeof want, "module lib.boom: %s/lib/boom.lua:2: kaput",
           tasks);
  kit_raises(&k, "return require('lib.boom')", want);
  kit_raises(&k, "return require('lib.cycle_a')",
             "module lib.cycle_a requires itself (a require cycle)");
  /* A failed module is not cached: the next require tries again. */
  kit_ok(&k, "local ok1 = pcall(require, 'lib.boom')\n"
             "local ok2, err = pcall(require, 'lib.boom')\n"
             "assert(not ok1 and not ok2 and err:find('kaput'), err)\n");
  kit_close(&k);
}

TEST(require_runs_modules_in_the_sandbox) {
  fresh_dir();
  write_file("tasks/lib/probe.lua",
             "leaked = 'from the module'\n"
             "return { io = io, execute = os.execute, getenv = os.getenv,\n"
             "  package = package, load = load, dofile = dofile, debug = "
             "debug,\n"
             "  loadfile = loadfile, collectgarbage = collectgarbage,\n"
             "  time = os.time, json = json, toolkit = moontask,\n"
             "  require = require }\n");
  kit_t k;
  kit_open(&k, tasks, NULL, NULL);
  kit_ok(&k, "local p = require('lib.probe')\n"
             "for _, name in ipairs({ 'io', 'execute', 'getenv', 'package',\n"
             "    'load', 'dofile', 'debug', 'loadfile', 'collectgarbage' })"
             " do\n"
             "  assert(p[name] == nil, name .. ' reached a module')\n"
             "end\n"
             "assert(p.time and p.json and p.toolkit.crypto and p.require)\n"
             /* Its globals are its own. */
             "assert(leaked == nil, 'a module wrote the global table of the "
             "script that required it')\n");
  kit_close(&k);
}

/* A module that loops while it loads is stopped by its own limit (5 s),
 * named, and the handler that required it carries on with its own time. */
TEST(require_stops_a_module_that_loops_by_name) {
  fresh_dir();
  write_file("tasks/lib/loop.lua", "local n = 0\nwhile true do n = n + 1 "
                                   "end\n");
  kit_t k;
  kit_open(&k, tasks, NULL, NULL);
  mt_err_t err;
  double start = mt_now();
  ASSERT_EQ_INT(0, kit_run(&k,
                           "local ok, err = pcall(require, 'lib.loop')\n"
                           "assert(not ok)\n"
                           "local n = 0\n"
                           "for i = 1, 1000 do n = n + i end\n"
                           "return err .. ' | carried on: ' .. n",
                           30, 1, &err));
  double took = mt_now() - start;
  char want[512];
  snprintf(want, sizeof want,
           "module lib.loop (%s/lib/loop.lua) did not finish loading within "
           "5s | carried on: 500500",
           tasks);
  const char *got = lua_tostring(k.L, -1);
  if (strstr(got, want) == NULL)
    MT__FAIL("\"%s\" lacks \"%s\"", got, want);
  ASSERT_TRUE(took >= 4.9 && took < 8);
  lua_pop(k.L, 1);
  /* With less time left than that, the handler's own deadline stops it. */
  start = mt_now();
  ASSERT_TRUE(kit_run(&k, "return require('lib.loop')", 0.3, 1, &err) != 0);
  ASSERT_TRUE(mt_now() - start < 1.5);
  if (strstr(err.msg, "timed out") == NULL)
    MT__FAIL("\"%s\" lacks \"timed out\"", err.msg);
  kit_close(&k);
}

TEST(require_works_in_task_files_and_lib_is_no_task) {
  fresh_dir();
  /* Modules are not tasks, whatever they return; a task uses them. */
  write_file("tasks/lib/not_a_task.lua", "return 42\n");
  write_file("tasks/billing/charge.lua",
             "local stripe = require('lib.billing.stripe')\n"
             "return { handler = function(tx, payload, ctx)\n"
             "  return stripe.amount(payload.ore)\n"
             "end }\n");
  /* The lib folder linked in elsewhere is still the lib folder. */
  char link[256], target[256];
  snprintf(target, sizeof target, "%s/lib", tasks);
  snprintf(link, sizeof link, "%s/billing/shared", tasks);
  ASSERT_EQ_INT(0, symlink(target, link));
  mt_registry_t reg = {0};
  mt_task_defaults_t defaults = {.timeout = 60};
  mt_err_t err;
  if (mt_lua_registry_load(tasks, &defaults, &reg, &err) != 0)
    MT__FAIL("load: %s", err.msg);
  ASSERT_EQ_INT(1, reg.count);
  ASSERT_TRUE(mt_registry_find(&reg, "billing.charge") != NULL);
  mt_registry_free(&reg);
}

static void count_problem(void *arg, const char *problem) {
  fprintf(stderr, "problem: %s\n", problem);
  (*(int *)arg)++;
}

TEST(require_failure_at_load_names_the_task_file_and_module) {
  fresh_dir();
  write_file("tasks/t.lua", "local nope = require('lib.nope')\n"
                            "return { handler = function() end }\n");
  mt_registry_t reg = {0};
  mt_task_defaults_t defaults = {.timeout = 60, .memory_limit = 64 << 20};
  mt_err_t err;
  ASSERT_EQ_INT(MT_ECONFIG, mt_lua_registry_load(tasks, &defaults, &reg, &err));
  char want[512];
  snprintf(want, sizeof want,
           "%s/t.lua:1: module lib.nope not found: no file %s/lib/nope.lua",
           tasks, tasks);
  if (strstr(err.msg, want) == NULL)
    MT__FAIL("\"%s\" lacks \"%s\"", err.msg, want);
  mt_registry_free(&reg);
  /* moontask check reports it, and nothing of lib/. */
  int problems = 0;
  ASSERT_EQ_INT(1,
                mt_lua_tasks_check(tasks, &defaults, count_problem, &problems));
  ASSERT_EQ_INT(1, problems);
}
