/*
 * The retention table of config.lua (config/config.c): the defaults (7, 30
 * and 7 days, a prune a minute), periods as seconds or as `schedule --in`
 * text, false for ever, and each wrong key or value refused with a message
 * naming the file and retention.<key>.
 */
#include <string.h>

#include "config/config.h"
#include "config_test.h"
#include "test.h"

static void load_ok(const char *text, mt_config_t *cfg) {
  mt_err_t err;
  if (config_load(text, cfg, &err) != 0)
    MT__FAIL("%s: %s", text, err.msg);
}

TEST(config_retention_defaults) {
  mt_config_t cfg;
  load_ok("return {}", &cfg);
  ASSERT_TRUE(cfg.retention.completed == 7 * 86400.0);
  ASSERT_TRUE(cfg.retention.failed == 30 * 86400.0);
  ASSERT_TRUE(cfg.retention.cancelled == 7 * 86400.0);
  ASSERT_TRUE(cfg.retention.interval == 60);
  mt_config_free(&cfg);
  /* A table that names one state leaves the others at their default. */
  load_ok("return { retention = { failed = 90 } }", &cfg);
  ASSERT_TRUE(cfg.retention.failed == 90);
  ASSERT_TRUE(cfg.retention.completed == 7 * 86400.0);
  mt_config_free(&cfg);
}

TEST(config_retention_forms) {
  mt_config_t cfg;
  load_ok("return { retention = { completed = '12h', failed = '1d6h',\n"
          "  cancelled = false, interval = '2m' } }",
          &cfg);
  ASSERT_TRUE(cfg.retention.completed == 12 * 3600.0);
  ASSERT_TRUE(cfg.retention.failed == 30 * 3600.0);
  ASSERT_TRUE(cfg.retention.cancelled == MT_RETENTION_FOREVER);
  ASSERT_TRUE(cfg.retention.interval == 120);
  mt_config_free(&cfg);
  /* 0 prunes at the first prune after the task finished. */
  load_ok("return { retention = { completed = 0, interval = 1 } }", &cfg);
  ASSERT_TRUE(cfg.retention.completed == 0);
  ASSERT_TRUE(cfg.retention.interval == 1);
  mt_config_free(&cfg);
}

TEST(config_retention_refused) {
  config_refused("return { retention = { complete = 60 } }",
                 "unknown setting \"retention.complete\" (did you mean "
                 "retention.completed?)");
  config_refused("return { retention = { every = 60 } }",
                 "unknown setting \"retention.every\"");
  config_refused("return { retension = {} }",
                 "unknown setting \"retension\" (did you mean retention?)");
  config_refused("return { retention = 7 }",
                 "retention must be a table, not number");
  config_refused("return { retention = { completed = -1 } }",
                 "retention.completed must be a duration");
  config_refused("return { retention = { failed = '7 days' } }",
                 "retention.failed must be a duration");
  config_refused("return { retention = { cancelled = true } }",
                 "retention.cancelled must be a duration");
  config_refused("return { retention = { completed = 0/0 } }",
                 "retention.completed must be a duration");
  config_refused("return { retention = { completed = 1e12 } }",
                 "retention.completed must be a duration of at most 100 "
                 "years");
  /* The interval has no "for ever", and a floor: a prune a second at most. */
  const char *msg =
      config_refused("return { retention = { interval = false } }",
                     "retention.interval must be a duration "
                     "from 1 to 86400 seconds");
  ASSERT_TRUE(strstr(msg, "for ever") == NULL);
  config_refused("return { retention = { interval = 0.5 } }",
                 "retention.interval must be a duration from 1 to 86400");
}
