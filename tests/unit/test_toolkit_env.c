/*
 * ctx.env and the config keys of the handlers' toolkit: config.lua's `env`
 * list (exact names) and `lib_dir`; ctx.env reads what the list allows,
 * returns nil for everything else with a warning that names the key, and
 * never prints a value. Each case runs in a process of its own, so the
 * variables it sets do not reach another.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config_test.h"
#include "test.h"
#include "toolkit_test.h"

TEST(config_env_and_lib_dir_are_read) {
  mt_config_t cfg;
  mt_err_t err;
  ASSERT_EQ_INT(0,
                config_load("return { env = { 'STRIPE_KEY', 'SMTP_PASSWORD', "
                            "'_x1' },\n"
                            "  lib_dir = 'shared/lua' }\n",
                            &cfg, &err));
  ASSERT_TRUE(cfg.env != NULL);
  ASSERT_EQ_STR("STRIPE_KEY", cfg.env[0]);
  ASSERT_EQ_STR("SMTP_PASSWORD", cfg.env[1]);
  ASSERT_EQ_STR("_x1", cfg.env[2]);
  ASSERT_TRUE(cfg.env[3] == NULL);
  ASSERT_EQ_STR("shared/lua", cfg.lib_dir);
  mt_config_free(&cfg);
  /* Neither given: nothing allowed, and require's default folder. */
  ASSERT_EQ_INT(0, config_load("return {}\n", &cfg, &err));
  ASSERT_TRUE(cfg.env == NULL);
  ASSERT_TRUE(cfg.lib_dir == NULL);
  mt_config_free(&cfg);
  ASSERT_EQ_INT(0, config_load("return { env = {} }\n", &cfg, &err));
  ASSERT_TRUE(cfg.env != NULL && cfg.env[0] == NULL);
  mt_config_free(&cfg);
}

TEST(config_env_refuses_what_is_not_a_list_of_names) {
  config_refused(
      "return { env = 'STRIPE_KEY' }\n",
      "env must be a list of environment variable names, like env = { "
      "\"STRIPE_KEY\" }, not string");
  config_refused("return { env = { STRIPE_KEY = true } }\n",
                 "env must be a list of names");
  config_refused("return { env = { 'A', 'B', x = 'C' } }\n",
                 "env must be a list of names");
  config_refused("return { env = { 'STRIPE-KEY' } }\n",
                 "env[1] \"STRIPE-KEY\" is not an environment variable name");
  config_refused("return { env = { 'OK', '1ABC' } }\n",
                 "env[2] \"1ABC\" is not an environment variable name");
  config_refused("return { env = { 'OK', '' } }\n",
                 "env[2] \"\" is not an environment variable name");
  config_refused("return { env = { 'STRIPE_*' } }\n",
                 "env[1] \"STRIPE_*\" is not an environment variable name");
  config_refused("return { env = { 42 } }\n",
                 "env[1] must be a variable name (a string), not number");
  config_refused("return { lib_dir = 5 }\n",
                 "lib_dir must be a string, not number");
  config_refused("return { envs = { 'A' } }\n",
                 "unknown setting \"envs\" (did you mean env?)");
}

TEST(ctx_env_reads_what_config_allows) {
  setenv("MT_TEST_TOOLKIT_KEY", "sk_test_4eC39HqLyjWDarjtT1zdp7dc", 1);
  setenv("MT_TEST_TOOLKIT_EMPTY", "", 1);
  unsetenv("MT_TEST_TOOLKIT_UNSET");
  const char *allow[] = {"MT_TEST_TOOLKIT_KEY", "MT_TEST_TOOLKIT_UNSET",
                         "MT_TEST_TOOLKIT_EMPTY", NULL};
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, allow);
  ASSERT_EQ_STR("sk_test_4eC39HqLyjWDarjtT1zdp7dc",
                kit_string(&k, "return ctx.env('MT_TEST_TOOLKIT_KEY')"));
  ASSERT_EQ_STR("nil", kit_string(&k, "return tostring(ctx.env("
                                      "'MT_TEST_TOOLKIT_UNSET'))"));
  ASSERT_EQ_STR("\"\"", kit_string(&k, "return ('%q'):format(ctx.env("
                                       "'MT_TEST_TOOLKIT_EMPTY'))"));
  kit_raises(&k, "return ctx.env()", "bad argument #1");
  kit_raises(&k, "return ctx.env({})", "bad argument #1");
  kit_close(&k);
}

/* Runs src with stderr captured; returns what was printed. */
static const char *captured(kit_t *k, const char *src) {
  static char out[4096];
  char file[] = "/tmp/mt-unit-stderr.XXXXXX";
  int fd = mkstemp(file);
  ASSERT_TRUE(fd >= 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  kit_ok(k, src);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  ssize_t n = pread(fd, out, sizeof out - 1, 0);
  out[n > 0 ? n : 0] = '\0';
  close(fd);
  unlink(file);
  return out;
}

TEST(ctx_env_refuses_names_config_does_not_list) {
  setenv("MT_TEST_TOOLKIT_KEY", "sk_test_allowed_value", 1);
  setenv("MT_TEST_TOOLKIT_SECRET", "hunter2_not_allowed", 1);
  setenv("PATH", getenv("PATH") ? getenv("PATH") : "/usr/bin", 1);
  const char *allow[] = {"MT_TEST_TOOLKIT_KEY", NULL};
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, allow);
  const char *log =
      captured(&k, "assert(ctx.env('MT_TEST_TOOLKIT_SECRET') == nil)\n"
                   "assert(ctx.env('MT_TEST_TOOLKIT_SECRET') == nil)\n"
                   "assert(ctx.env('PATH') == nil)\n"
                   /* Case matters, as it does to the environment. */
                   "assert(ctx.env('mt_test_toolkit_key') == nil)\n");
  /* One warning per name, naming the config key, with no value (the
   * log's quoting escapes the name's quotes). */
  const char *first =
      strstr(log, "level=warn msg=\"ctx.env(\\\"MT_TEST_TOOLKIT_SECRET\\\") "
                  "reads nil: it is not in config.lua's env list\"");
  if (first == NULL)
    MT__FAIL("no warning naming the config key in: %s", log);
  if (strstr(first + 40, "MT_TEST_TOOLKIT_SECRET") != NULL)
    MT__FAIL("warned twice about one name: %s", log);
  ASSERT_TRUE(strstr(log, "ctx.env(\\\"PATH\\\")") != NULL);
  ASSERT_TRUE(strstr(log, "hunter2") == NULL);
  ASSERT_TRUE(strstr(log, "sk_test_allowed_value") == NULL);
  /* A value passed where a name belongs is not printed either. */
  log = captured(&k, "local key = ctx.env('MT_TEST_TOOLKIT_KEY')\n"
                     "assert(ctx.env(key) == nil)\n");
  if (strstr(log, "sk_test_allowed_value") != NULL)
    MT__FAIL("a value was printed: %s", log);
  ASSERT_TRUE(strstr(log, "<the value of an allowed variable, withheld>") !=
              NULL);
  kit_close(&k);
}

TEST(ctx_env_allows_nothing_without_a_list) {
  setenv("HOME", "/root", 0);
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, NULL);
  captured(&k, "assert(ctx.env('HOME') == nil)\n");
  kit_close(&k);
}
