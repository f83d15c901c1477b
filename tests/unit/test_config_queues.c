/*
 * The queues table of config.lua (config/config.c): none by default; each
 * queue read with its limits, the list sorted by name; each wrong name, key
 * or value refused with a message naming the file and the key.
 */
#include "config/config.h"
#include "config_test.h"
#include "test.h"

TEST(config_queues_default_none) {
  mt_config_t cfg;
  mt_err_t err;
  ASSERT_EQ_INT(0, config_load("return {}", &cfg, &err));
  ASSERT_TRUE(cfg.queues == NULL);
  ASSERT_EQ_INT(0, (int)cfg.nqueues);
  mt_config_free(&cfg);
  ASSERT_EQ_INT(0, config_load("return { queues = {} }", &cfg, &err));
  ASSERT_EQ_INT(0, (int)cfg.nqueues);
  mt_config_free(&cfg);
}

TEST(config_queues_read_sorted) {
  mt_config_t cfg;
  mt_err_t err;
  ASSERT_EQ_INT(0,
                config_load("return { queues = {\n"
                            "  payments = { concurrency = 2, rate = '25/s' },\n"
                            "  bulk = { concurrency = 4 },\n"
                            "  reports = {},\n"
                            "  mail = { rate = '100/10s' },\n"
                            "  digest = { rate = '5/1m' },\n"
                            "  hourly = { rate = '3/h', concurrency = 1.0 },\n"
                            "} }",
                            &cfg, &err));
  ASSERT_EQ_INT(6, (int)cfg.nqueues);
  const char *names[] = {"bulk", "digest",   "hourly",
                         "mail", "payments", "reports"};
  for (int i = 0; i < 6; i++)
    ASSERT_EQ_STR(cfg.queues[i].name, names[i]);
  /* bulk: a concurrency, no rate. */
  ASSERT_EQ_INT(4, cfg.queues[0].concurrency);
  ASSERT_EQ_INT(0, cfg.queues[0].rate_limit);
  /* digest: 5 per minute, written as a duration. */
  ASSERT_EQ_INT(0, cfg.queues[1].concurrency);
  ASSERT_EQ_INT(5, cfg.queues[1].rate_limit);
  ASSERT_TRUE(cfg.queues[1].rate_period == 60);
  ASSERT_EQ_INT(1, cfg.queues[2].concurrency);
  ASSERT_EQ_INT(3, cfg.queues[2].rate_limit);
  ASSERT_TRUE(cfg.queues[2].rate_period == 3600);
  ASSERT_EQ_INT(100, cfg.queues[3].rate_limit);
  ASSERT_TRUE(cfg.queues[3].rate_period == 10);
  ASSERT_EQ_INT(2, cfg.queues[4].concurrency);
  ASSERT_EQ_INT(25, cfg.queues[4].rate_limit);
  ASSERT_TRUE(cfg.queues[4].rate_period == 1);
  /* reports: a label, with neither limit. */
  ASSERT_EQ_INT(0, cfg.queues[5].concurrency);
  ASSERT_EQ_INT(0, cfg.queues[5].rate_limit);
  ASSERT_TRUE(cfg.queues[5].rate_period == 0);
  mt_config_free(&cfg);
}

TEST(config_queues_refusals) {
  config_refused("return { queues = 'payments' }",
                 "queues must be a table of queue names to their limits");
  config_refused("return { queues = { 'payments' } }",
                 "queues must name each queue");
  config_refused("return { queues = { default = { concurrency = 2 } } }",
                 "queues.default: the default queue has no limits");
  config_refused("return { queues = { ['pay ments'] = {} } }",
                 "queues: \"pay ments\" is not a queue name");
  config_refused("return { queues = { ['2fast'] = {} } }",
                 "\"2fast\" is not a queue name");
  config_refused("return { queues = { [string.rep('q', 64)] = {} } }",
                 "is not a queue name");
  /* A NUL would end the name early in C, and in the database. */
  config_refused("return { queues = { ['pay\\0ments'] = {} } }",
                 "is not a queue name");
  config_refused("return { queues = { bulk = { rate = '25/s\\0x' } } }",
                 "queues.bulk.rate must be text");
  config_refused("return { queues = { payments = 2 } }",
                 "queues.payments must be a table of limits");
  config_refused("return { queues = { payments = { concurency = 2 } } }",
                 "unknown setting \"queues.payments.concurency\" (did you "
                 "mean queues.payments.concurrency?)");
  config_refused("return { queues = { payments = { [1] = 2 } } }",
                 "the queues.payments table must have only named settings");
  config_refused("return { queus = {} }",
                 "unknown setting \"queus\" (did you mean queues?)");
}

TEST(config_queues_refuses_bad_limits) {
  const char *concurrency[] = {"0", "-1", "10001", "2.5", "'2'", "true", "0/0"};
  for (size_t i = 0; i < sizeof concurrency / sizeof *concurrency; i++) {
    char text[128];
    snprintf(text, sizeof text,
             "return { queues = { payments = { concurrency = %s } } }",
             concurrency[i]);
    config_refused(text, "queues.payments.concurrency must be a whole number "
                         "from 1 to 10000");
  }
  const char *rates[] = {"'25'",        "'/s'",     "'0/s'",   "'-1/s'",
                         "'25/x'",      "'25/'",    "'25/0s'", "'1.5/s'",
                         "'25/ s'",     "'25 / s'", "25",      "'10000000/s'",
                         "'1000001/s'", "'25/-1m'", "'+5/s'",  "{}"};
  for (size_t i = 0; i < sizeof rates / sizeof *rates; i++) {
    char text[128];
    snprintf(text, sizeof text, "return { queues = { bulk = { rate = %s } } }",
             rates[i]);
    config_refused(text, "queues.bulk.rate must be text such as \"25/s\"");
  }
  /* The value refused is quoted back. */
  const char *msg = config_refused(
      "return { queues = { bulk = { rate = '25/x' } } }", "not \"25/x\"");
  ASSERT_TRUE(msg != NULL);
}

TEST(config_queues_bounds) {
  mt_config_t cfg;
  mt_err_t err;
  ASSERT_EQ_INT(0, config_load("return { queues = { a = { concurrency = 1,\n"
                               "  rate = '1/d' }, b = { concurrency = 10000,\n"
                               "  rate = '1000000/s' } } }",
                               &cfg, &err));
  ASSERT_EQ_INT(2, (int)cfg.nqueues);
  ASSERT_EQ_INT(1, cfg.queues[0].rate_limit);
  ASSERT_TRUE(cfg.queues[0].rate_period == 86400);
  ASSERT_EQ_INT(10000, cfg.queues[1].concurrency);
  ASSERT_EQ_INT(1000000, cfg.queues[1].rate_limit);
  mt_config_free(&cfg);
  /* One more than the most a config may declare. */
  config_refused("local q = {}\n"
                 "for i = 1, 101 do q['q' .. i] = {} end\n"
                 "return { queues = q }",
                 "queues may declare at most 100 queues");
}
