/*
 * The http table and the log settings of config.lua (config/config.c): off
 * by default, read when given, and each wrong key or value refused with a
 * message naming the file and the key.
 */
#include "common/log.h"
#include "config/config.h"
#include "config_test.h"
#include "test.h"

TEST(config_http_and_log_defaults) {
  mt_config_t cfg;
  mt_err_t err;
  ASSERT_EQ_INT(0, config_load("return {}", &cfg, &err));
  ASSERT_TRUE(cfg.http.listen == NULL);
  ASSERT_TRUE(cfg.http.admin_token == NULL);
  ASSERT_EQ_INT(0, cfg.log_json);
  ASSERT_EQ_INT(MT_LOG_INFO, cfg.log_level);
  mt_config_free(&cfg);
  ASSERT_EQ_INT(0, config_load("return { http = { listen = '127.0.0.1:9464',\n"
                               "  admin_token = string.rep('x', 16) },\n"
                               "  log_format = 'json', log_level = 'warn' }",
                               &cfg, &err));
  ASSERT_EQ_STR(cfg.http.listen, "127.0.0.1:9464");
  ASSERT_EQ_STR(cfg.http.admin_token, "xxxxxxxxxxxxxxxx");
  ASSERT_EQ_INT(1, cfg.log_json);
  ASSERT_EQ_INT(MT_LOG_WARN, cfg.log_level);
  mt_config_free(&cfg);
}

TEST(config_http_refusals) {
  config_refused("return { http = '127.0.0.1:9464' }",
                 "http must be a table, not string");
  config_refused("return { http = { lisen = '127.0.0.1:9464' } }",
                 "unknown setting \"http.lisen\" (did you mean http.listen?)");
  config_refused("return { http = { admin_token = string.rep('x', 20) } }",
                 "http.listen is missing");
  config_refused("return { http = { listen = 9464 } }",
                 "http.listen must be a string, not number");
  config_refused("return { http = { listen = ':1', admin_token = 'short' } }",
                 "http.admin_token must be at least 16 characters");
  config_refused("return { http = { listen = ':1',\n"
                 "  admin_token = 'sixteen chars and a space' } }",
                 "http.admin_token may not hold spaces");
  config_refused("return { log_format = 'xml' }",
                 "log_format must be \"logfmt\" or \"json\", not \"xml\"");
  config_refused(
      "return { log_level = 'verbose' }",
      "log_level must be \"debug\", \"info\", \"warn\" or \"error\"");
  config_refused("return { log_levl = 'info' }",
                 "unknown setting \"log_levl\" (did you mean log_level?)");
}
