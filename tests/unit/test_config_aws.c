/*
 * The aws table of config.lua (config/config.c): a good table is read
 * whole, the region falls back to the environment in the SDKs' order, the
 * schedule group to "default", and each wrong key or value is refused with
 * a message naming the file and the key. The files are written under a
 * fresh temporary folder, never in the source tree; every case starts with
 * no AWS region in its environment (each runs in a process of its own).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config_test.h"
#include "test.h"

/* Writes config.lua, first clearing the region variables the case may set
 * itself. */
static const char *write_config(const char *text) {
  static int cleared;
  if (!cleared) {
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    cleared = 1;
  }
  return config_write(text);
}

static int load(const char *text, mt_config_t *cfg, mt_err_t *err) {
  write_config(text);
  return config_load(text, cfg, err);
}

/* As config_refused; and a password in a URL never reaches a message. */
static void refused(const char *text, const char *want) {
  write_config(text);
  const char *msg = config_refused(text, want);
  if (strstr(msg, "secret") != NULL)
    MT__FAIL("%s: message \"%s\" quotes the secret", text, msg);
}

TEST(config_aws_good_table) {
  mt_config_t cfg;
  mt_err_t err;
  int rc = load("return { aws = {\n"
                "  region = 'eu-west-1',\n"
                "  queue_url = "
                "'https://sqs.eu-west-1.amazonaws.com/123456789012/tasks',\n"
                "  schedule_group = 'moontask',\n"
                "  role_arn = 'arn:aws:iam::123456789012:role/scheduler',\n"
                "  endpoint = 'http://127.0.0.1:5000',\n"
                "} }\n",
                &cfg, &err);
  if (rc != 0)
    MT__FAIL("load: %s", err.msg);
  ASSERT_TRUE(cfg.aws != NULL);
  ASSERT_EQ_STR("eu-west-1", cfg.aws->region);
  ASSERT_EQ_STR("aws.region", cfg.aws->region_source);
  ASSERT_EQ_STR("https://sqs.eu-west-1.amazonaws.com/123456789012/tasks",
                cfg.aws->queue_url);
  ASSERT_EQ_STR("moontask", cfg.aws->schedule_group);
  ASSERT_EQ_STR("arn:aws:iam::123456789012:role/scheduler", cfg.aws->role_arn);
  ASSERT_EQ_STR("http://127.0.0.1:5000", cfg.aws->endpoint);
  /* The table is read whatever the backend; this one stays postgres. */
  ASSERT_EQ_STR("postgres", cfg.backend);
  mt_config_free(&cfg);
  ASSERT_TRUE(cfg.aws == NULL);
}

TEST(config_aws_absent_and_defaults) {
  mt_config_t cfg;
  mt_err_t err;
  ASSERT_EQ_INT(0, load("return { workers = 2 }\n", &cfg, &err));
  ASSERT_TRUE(cfg.aws == NULL);
  mt_config_free(&cfg);

  /* An empty table: no region anywhere (check says so), the group
   * EventBridge's own default, nothing else set. */
  ASSERT_EQ_INT(0, load("return { aws = {} }\n", &cfg, &err));
  ASSERT_TRUE(cfg.aws != NULL);
  ASSERT_TRUE(cfg.aws->region == NULL);
  ASSERT_TRUE(cfg.aws->region_source == NULL);
  ASSERT_EQ_STR("default", cfg.aws->schedule_group);
  ASSERT_TRUE(cfg.aws->queue_url == NULL);
  ASSERT_TRUE(cfg.aws->role_arn == NULL);
  ASSERT_TRUE(cfg.aws->endpoint == NULL);
  mt_config_free(&cfg);
}

TEST(config_aws_region_from_environment) {
  mt_config_t cfg;
  mt_err_t err;
  const char *text = "return { aws = { queue_url = 'https://q.example/1/q' } }";
  write_config(text); /* clears the variables first */

  setenv("AWS_DEFAULT_REGION", "us-west-2", 1);
  ASSERT_EQ_INT(0, load(text, &cfg, &err));
  ASSERT_EQ_STR("us-west-2", cfg.aws->region);
  ASSERT_EQ_STR("AWS_DEFAULT_REGION", cfg.aws->region_source);
  mt_config_free(&cfg);

  /* AWS_REGION comes first, as in the SDKs. */
  setenv("AWS_REGION", "ap-southeast-2", 1);
  ASSERT_EQ_INT(0, load(text, &cfg, &err));
  ASSERT_EQ_STR("ap-southeast-2", cfg.aws->region);
  ASSERT_EQ_STR("AWS_REGION", cfg.aws->region_source);
  mt_config_free(&cfg);

  /* An empty variable counts as unset. */
  setenv("AWS_REGION", "", 1);
  ASSERT_EQ_INT(0, load(text, &cfg, &err));
  ASSERT_EQ_STR("us-west-2", cfg.aws->region);
  mt_config_free(&cfg);

  /* The file's own region beats both. */
  setenv("AWS_REGION", "ap-southeast-2", 1);
  ASSERT_EQ_INT(0,
                load("return { aws = { region = 'eu-north-1' } }", &cfg, &err));
  ASSERT_EQ_STR("eu-north-1", cfg.aws->region);
  ASSERT_EQ_STR("aws.region", cfg.aws->region_source);
  mt_config_free(&cfg);

  /* A variable that cannot be a region is named as what it is. */
  setenv("AWS_REGION", "EU West", 1);
  refused(text, "aws.region is not set, and AWS_REGION \"EU West\" is not a "
                "region name");
}

TEST(config_aws_unknown_keys_suggest) {
  refused("return { aws = { regoin = 'eu-west-1' } }",
          "unknown setting \"aws.regoin\" (did you mean aws.region?)");
  refused("return { aws = { queue_ulr = 'x' } }",
          "unknown setting \"aws.queue_ulr\" (did you mean aws.queue_url?)");
  /* A short form of one key is taken for it. */
  refused("return { aws = { queue = 'x' } }",
          "unknown setting \"aws.queue\" (did you mean aws.queue_url?)");
  refused("return { aws = { group = 'x' } }",
          "unknown setting \"aws.group\" (did you mean aws.schedule_group?)");
  /* Nothing near: no suggestion. */
  refused("return { aws = { bucket = 'x' } }",
          "unknown setting \"aws.bucket\"");
  mt_config_t cfg;
  mt_err_t err;
  ASSERT_EQ_INT(MT_ECONFIG,
                load("return { aws = { bucket = 'x' } }", &cfg, &err));
  mt_config_free(&cfg);
  ASSERT_TRUE(strstr(err.msg, "did you mean") == NULL);
  /* The table's own name is suggested at the top level. */
  refused("return { asw = {} }", "unknown setting \"asw\" (did you mean aws?)");
  refused("return { aws = { 'eu-west-1' } }",
          "the aws table must have only named settings");
}

TEST(config_aws_bad_values) {
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"aws = 'eu-west-1'", "aws must be a table, not string"},
      {"aws = { region = 1 }", "aws.region must be a string, not number"},
      {"aws = { queue_url = true }",
       "aws.queue_url must be a string, not boolean"},
      {"aws = { role_arn = {} }", "aws.role_arn must be a string, not table"},
      {"aws = { region = '' }", "aws.region must not be empty"},
      {"aws = { region = 'EU-West-1' }",
       "aws.region \"EU-West-1\" is not a region name (such as eu-west-1)"},
      {"aws = { region = 'eu-west-1-' }",
       "aws.region \"eu-west-1-\" is not a region name"},
      {"aws = { region = 'eu-west-1\\n' }",
       "aws.region \"eu-west-1\n\" must not contain blanks, control or "
       "non-ASCII characters"},
      {"aws = { queue_url = 'sqs.eu-west-1.amazonaws.com/1/q' }",
       "aws.queue_url \"sqs.eu-west-1.amazonaws.com/1/q\" is not an http:// "
       "or https:// URL"},
      {"aws = { queue_url = 'https:///1/q' }", "has no host"},
      {"aws = { queue_url = 'https://sqs.eu-west-1.amazonaws.com/' }",
       "names no queue (it ends in /<account id>/<queue name>)"},
      {"aws = { queue_url = 'https://sqs.example/1/q?x=1' }",
       "may have a path but no query, fragment or blank"},
      {"aws = { queue_url = 'https://sqs.example/1/my queue' }",
       "must not contain blanks"},
      {"aws = { schedule_group = 'tasks/daily' }",
       "aws.schedule_group \"tasks/daily\" must be 1 to 64 letters, digits, "
       "'-', '_' or '.'"},
      {"aws = { schedule_group = string.rep('g', 65) }",
       "must be 1 to 64 letters"},
      {"aws = { schedule_group = '' }", "aws.schedule_group must not be empty"},
      {"aws = { role_arn = 'scheduler-role' }",
       "aws.role_arn \"scheduler-role\" is not an ARN"},
      {"aws = { endpoint = 'localhost:5000' }",
       "aws.endpoint \"localhost:5000\" is not an http:// or https:// URL"},
      {"aws = { endpoint = 'http://key:secret@localhost:5000' }",
       "has user information"},
      {"aws = { endpoint = 'http://:5000' }", "has no host"},
  };
  char text[512];
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    snprintf(text, sizeof text, "return { %s }\n", cases[i].text);
    refused(text, cases[i].want);
  }
  /* The edges that are fine: a 64-character group, an https endpoint with
   * a base path, a FIFO queue URL. */
  mt_config_t cfg;
  mt_err_t err;
  int rc = load("return { aws = { schedule_group = string.rep('g', 64),\n"
                "  endpoint = 'https://vpce.example:8443/base',\n"
                "  queue_url = 'http://localhost:4566/000000000000/t.fifo',\n"
                "  region = 'us-gov-west-1' } }",
                &cfg, &err);
  if (rc != 0)
    MT__FAIL("load: %s", err.msg);
  ASSERT_EQ_INT(64, strlen(cfg.aws->schedule_group));
  mt_config_free(&cfg);
}

TEST(config_aws_backend_needs_its_table) {
  mt_config_t cfg;
  mt_err_t err;
  int rc = load("return { backend = 'aws' }", &cfg, &err);
  mt_config_free(&cfg);
#ifdef MT_WITH_AWS
  ASSERT_EQ_INT(MT_ECONFIG, rc);
  ASSERT_TRUE(strstr(err.msg, "backend \"aws\" needs an aws table") != NULL);
  rc = load("return { backend = 'aws', aws = { region = 'eu-west-1' } }", &cfg,
            &err);
  if (rc != 0)
    MT__FAIL("load: %s", err.msg);
  ASSERT_EQ_STR(cfg.backend, "aws");
  /* The delivery settings' defaults: SQS's longest delay, poison deleted. */
  ASSERT_TRUE(cfg.aws->direct_within == 900);
  ASSERT_EQ_INT(0, cfg.aws->keep_poison);
  mt_config_free(&cfg);
#else
  ASSERT_EQ_INT(MT_ECONFIG, rc);
  ASSERT_TRUE(strstr(err.msg, "backend \"aws\" is not available") != NULL);
#endif
}

TEST(config_aws_delivery_settings) {
  mt_config_t cfg;
  mt_err_t err;
  int rc = load("return { aws = { direct_within = 60, poison = 'keep' } }",
                &cfg, &err);
  if (rc != 0)
    MT__FAIL("load: %s", err.msg);
  ASSERT_TRUE(cfg.aws->direct_within == 60);
  ASSERT_EQ_INT(1, cfg.aws->keep_poison);
  mt_config_free(&cfg);
  ASSERT_EQ_INT(MT_ECONFIG,
                load("return { aws = { direct_within = 901 } }", &cfg, &err));
  mt_config_free(&cfg);
  ASSERT_TRUE(strstr(err.msg, "aws.direct_within must be a number of seconds "
                              "from 0 to 900") != NULL);
  ASSERT_EQ_INT(MT_ECONFIG,
                load("return { aws = { poison = 'drop' } }", &cfg, &err));
  mt_config_free(&cfg);
  ASSERT_TRUE(strstr(err.msg, "aws.poison must be \"delete\" or \"keep\"") !=
              NULL);
}
