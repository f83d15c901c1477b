/* The administrative commands: migrate, check, db. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/text.h"
#include "lua/tasks.h"
#include "postgres/embedded.h"
#include "postgres/store.h"
#ifdef MT_WITH_AWS
#include "aws/client.h"
#include "aws/credentials.h"
#include "aws/scheduler.h"
#include "aws/sqs.h"
#endif

static int no_arguments(mt_cli_t *cli, mt_err_t *err) {
  if (cli->argc > 1)
    return mt_err_set(err, MT_EINVAL, "%s: unexpected argument \"%s\"",
                      cli->argv[0], cli->argv[1]);
  return 0;
}

int mt_cmd_migrate(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_store_t *store = NULL;
  const char *url;
  int applied = 0;
  int rc = no_arguments(cli, &err);
  if (rc != 0 || (rc = mt_cli_database_url(cli, &url, &err)) != 0 ||
      (rc = mt_store_open(&store, url, "moontask migrate", &err)) != 0 ||
      (rc = mt_store_migrate(store, &applied, &err)) != 0)
    goto done;
  printf(applied ? "applied %d migration%s\n" : "schema is up to date\n",
         applied, applied == 1 ? "" : "s");
done:
  mt_store_free(store);
  return rc ? mt_cli_fail(rc, &err) : 0;
}

static void print_problem(void *arg, const char *problem) {
  (void)arg;
  fprintf(stderr, "%s\n", problem);
}

/* ---- check's AWS part ---------------------------------------------------- */

/* What the AWS checks found. A problem is either the configuration's or
 * what AWS answered about it (bad input, exit 2), or AWS could not be
 * asked at all (a runtime failure, exit 1): an endpoint that does not
 * answer says nothing about the queue. */
typedef struct aws_check_s {
  const char *file; /* config.lua, for messages that name a key */
  int bad;
  int unreachable;
} aws_check_t;

/* Prints one line to out, prefix and the formatted text, with control
 * characters escaped: AWS's messages and the configured values are not
 * ours to send to a terminal raw. */
static void vsay(FILE *out, const char *prefix, const char *fmt, va_list ap) {
  char line[2 * MT_ERR_MAX];
  mt_buf_t text = MT_BUF_INIT;
  vsnprintf(line, sizeof line, fmt, ap);
  mt_text_escape(&text, line, 0);
  /* In order with the ok lines when both streams go to one file. */
  if (out == stderr)
    fflush(stdout);
  fprintf(out, "%s%s\n", prefix, text.data != NULL ? text.data : line);
  mt_buf_free(&text);
}

/* "warning: aws ..." on stderr: works, but not as one would want. */
static void aws_warn(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void aws_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsay(stderr, "warning: aws ", fmt, ap);
  va_end(ap);
}

#ifdef MT_WITH_AWS
/* "ok aws ..." on stdout: what was checked and found right. */
static void aws_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void aws_ok(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsay(stdout, "ok aws ", fmt, ap);
  va_end(ap);
}

/* A problem, on stderr, counted as bad input or, with unreachable, as a
 * check AWS gave no answer to. */
static void aws_problem(aws_check_t *chk, int unreachable, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void aws_problem(aws_check_t *chk, int unreachable, const char *fmt,
                        ...) {
  va_list ap;
  if (unreachable)
    chk->unreachable++;
  else
    chk->bad++;
  va_start(ap, fmt);
  vsay(stderr, "", fmt, ap);
  va_end(ap);
}

/* A check asks once, briefly: `moontask check` should say "cannot reach"
 * within seconds, not after the runtime's patient retries. */
static const mt_http_opts_t check_http = {
    .max_attempts = 2, .connect_timeout_ms = 3000, .timeout_ms = 10000};

/* Whether an AWS call failed for want of an answer rather than by one. */
static int no_answer(const mt_aws_result_t *res) {
  return res->kind == MT_AWS_ENORESPONSE || res->kind == MT_AWS_ETHROTTLED ||
         res->kind == MT_AWS_ESERVER;
}

/* Reports a call about what ("queue https://...", under config key key)
 * that failed other than by finding nothing, which the caller words
 * itself. */
static void aws_call_problem(aws_check_t *chk, const char *key,
                             const char *what, const mt_aws_result_t *res,
                             const char *creds_source) {
  if (no_answer(res))
    aws_problem(chk, 1, "%s: %s: cannot reach AWS to check %s: %s", chk->file,
                key, what, res->err.msg);
  else if (res->kind == MT_AWS_EAUTH)
    aws_problem(chk, 0,
                "%s: %s: AWS refused the credentials from %s to read %s "
                "(%s%s%s)",
                chk->file, key, creds_source, what, res->code,
                res->message[0] ? ": " : "", res->message);
  else
    aws_problem(chk, 0, "%s: %s: cannot read %s: %s", chk->file, key, what,
                res->err.msg);
}

static void check_queue(aws_check_t *chk, mt_aws_t *aws, const mt_config_t *cfg,
                        const char *creds_source) {
  const char *url = cfg->aws->queue_url;
  char what[512];
  mt_sqs_queue_attrs_t q;
  mt_aws_result_t res;
  snprintf(what, sizeof what, "queue %s", url);
  if (mt_sqs_queue_attributes_sync(aws, url, &q, &res) == 0) {
    char dlq[384] = "no dead-letter queue";
    if (q.dead_letter_arn[0])
      snprintf(dlq, sizeof dlq, "dead-letter queue %s after %ld receive%s",
               q.dead_letter_arn, q.max_receive_count,
               q.max_receive_count == 1 ? "" : "s");
    aws_ok("queue %s (%s, %s, visibility timeout %ld s for task_timeout %g s, "
           "%s)",
           url, q.arn != NULL ? q.arn : "no ARN",
           q.fifo ? (q.content_dedup ? "FIFO with content-based deduplication"
                                     : "FIFO")
                  : "standard",
           q.visibility_timeout, cfg->task_timeout, dlq);
    /* The runtime extends the visibility of a long task's message, but
     * only while it keeps running: the queue's own timeout is what a
     * stalled runtime's task gets before another runtime receives it. */
    if ((double)q.visibility_timeout < cfg->task_timeout)
      aws_warn("queue %s: visibility timeout %ld s is shorter than "
               "task_timeout %g s: a longer task's message is received again "
               "unless the runtime extends its visibility in time",
               url, q.visibility_timeout, cfg->task_timeout);
  } else if (res.kind == MT_AWS_ENOTFOUND) {
    aws_problem(chk, 0, "%s: aws.queue_url: queue %s does not exist (%s)",
                chk->file, url, res.code[0] ? res.code : "not found");
  } else {
    aws_call_problem(chk, "aws.queue_url", what, &res, creds_source);
  }
  mt_aws_result_free(&res);
}

static void check_group(aws_check_t *chk, mt_aws_t *aws, const mt_config_t *cfg,
                        const char *creds_source) {
  const char *name = cfg->aws->schedule_group;
  char what[128];
  mt_ebs_group_t g;
  mt_aws_result_t res;
  snprintf(what, sizeof what, "schedule group \"%s\"", name);
  if (mt_ebs_group_get_sync(aws, name, &g, &res) == 0) {
    if (g.state != NULL && strcmp(g.state, "ACTIVE") != 0)
      aws_problem(chk, 0,
                  "%s: aws.schedule_group: schedule group \"%s\" is %s, not "
                  "ACTIVE",
                  chk->file, name, g.state);
    else
      aws_ok("schedule group %s (%s)", name, g.arn != NULL ? g.arn : "no ARN");
  } else if (res.kind == MT_AWS_ENOTFOUND) {
    aws_problem(
        chk, 0, "%s: aws.schedule_group: schedule group \"%s\" not found (%s)",
        chk->file, name, res.code[0] ? res.code : "ResourceNotFoundException");
  } else {
    aws_call_problem(chk, "aws.schedule_group", what, &res, creds_source);
  }
  mt_aws_result_free(&res);
}
#endif

/* Checks the configuration's aws table against AWS itself: the region,
 * the credentials (naming their source, never a secret), the queue, the
 * schedule group and the role. Prints "ok aws ..." lines on stdout and
 * each problem on stderr, and counts the problems into *chk. */
static void check_aws(const mt_config_t *cfg, aws_check_t *chk) {
  const mt_config_aws_t *conf = cfg->aws;
#ifdef MT_WITH_AWS
  mt_aws_creds_provider_t *creds = NULL;
  mt_aws_t *aws = NULL;
  mt_err_t err = {{0}};
  int rc;
  if (conf->region == NULL)
    aws_problem(chk, 0,
                "%s: aws.region is not set, nor AWS_REGION or "
                "AWS_DEFAULT_REGION",
                chk->file);
  else
    aws_ok("region %s (from %s)", conf->region, conf->region_source);
  if (conf->queue_url == NULL)
    aws_problem(chk, 0,
                "%s: aws.queue_url is not set: the queue that delivers tasks",
                chk->file);
  if (conf->role_arn == NULL)
    aws_problem(chk, 0,
                "%s: aws.role_arn is not set: the role EventBridge Scheduler "
                "assumes to send to the queue",
                chk->file);

  mt_aws_creds_opts_t opts = {.region = conf->region};
  if ((rc = mt_aws_creds_open(&opts, &creds, &err)) != 0) {
    aws_problem(chk, mt_exit_code(rc) == 1, "aws credentials: %s", err.msg);
  } else {
    aws_ok("credentials from %s", mt_aws_creds_source(creds));
  }
  if (creds == NULL || conf->region == NULL) {
    aws_warn("queue and schedule group not checked without %s",
             creds == NULL ? "credentials" : "a region");
    goto done;
  }
  mt_aws_conf_t aws_conf = {.region = conf->region,
                            .endpoint = conf->endpoint,
                            .queue_url = conf->queue_url,
                            .schedule_group = conf->schedule_group,
                            .role_arn = conf->role_arn};
  if ((rc = mt_aws_new(NULL, &aws_conf, creds, &check_http, &aws, &err)) != 0) {
    aws_problem(chk, mt_exit_code(rc) == 1, "%s: aws: %s", chk->file, err.msg);
    goto done;
  }
  /* Where the checks went: aws.endpoint, AWS_ENDPOINT_URL* or AWS. */
  const char *sqs_at = mt_aws_endpoint(aws, MT_AWS_SQS);
  const char *ebs_at = mt_aws_endpoint(aws, MT_AWS_SCHEDULER);
  if (strcmp(sqs_at, ebs_at) == 0)
    aws_ok("endpoint %s", sqs_at);
  else
    aws_ok("endpoints %s (SQS), %s (EventBridge Scheduler)", sqs_at, ebs_at);
  if (conf->queue_url != NULL)
    check_queue(chk, aws, cfg, mt_aws_creds_source(creds));
  check_group(chk, aws, cfg, mt_aws_creds_source(creds));
done:
  /* Whether EventBridge may assume the role only shows when a schedule
   * fires; reading the role would need IAM rights the runtime never
   * does. */
  if (conf->role_arn != NULL)
    aws_ok("role_arn %s (given; EventBridge assumes it when a schedule "
           "fires)",
           conf->role_arn);
  mt_aws_free(aws);
  mt_aws_creds_close(creds);
#else
  (void)chk;
  (void)conf;
  aws_warn("table not checked: this moontask was built without AWS (cmake "
           "-DMT_AWS=ON builds it)");
#endif
}

/* On the aws backend a task file's recurring schedules become EventBridge
 * schedules: one EventBridge cannot express (a seconds field, both day
 * fields restricted) is a problem of the task file. Returns how many. */
static int check_aws_schedules(const mt_config_t *cfg,
                               const mt_task_def_t *def) {
  int problems = 0;
#ifdef MT_WITH_AWS
  if (strcmp(cfg->backend, "aws") != 0)
    return 0;
  for (size_t k = 0; k < def->nschedules; k++) {
    char expr[MT_EBS_EXPR_MAX];
    mt_err_t why;
    if (mt_ebs_recurring_expression(def->schedules[k].expression, expr, &why) !=
        0) {
      fprintf(stderr, "%s: schedule %zu: %s\n", def->file, k + 1, why.msg);
      problems++;
    }
  }
#else
  (void)cfg;
  (void)def;
#endif
  return problems;
}

int mt_cmd_check(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_registry_t reg = {0};
  aws_check_t aws = {.file = cli->cfg.config_file};
  int rc = no_arguments(cli, &err);
  if (rc != 0)
    return mt_cli_fail(rc, &err);
  mt_task_defaults_t defaults = mt_cli_task_defaults(cli);
  int problems =
      mt_lua_tasks_check(cli->cfg.tasks_dir, &defaults, print_problem, NULL);
  if (problems == 0) {
    if ((rc = mt_cli_registry(cli, &reg, &err)) == 0)
      for (size_t i = 0; i < reg.count; i++) {
        printf("ok %s (%s%s%s)\n", reg.defs[i].name, reg.defs[i].file,
               reg.defs[i].schema_name ? ", schema " : "",
               reg.defs[i].schema_name ? reg.defs[i].schema_name : "");
        problems += check_aws_schedules(&cli->cfg, &reg.defs[i]);
      }
    mt_registry_free(&reg);
    if (rc != 0)
      return mt_cli_fail(rc, &err);
  }
  /* The aws table is checked whatever the tasks gave, so that one run
   * names every problem. */
  if (cli->cfg.aws != NULL)
    check_aws(&cli->cfg, &aws);
  int total = problems + aws.bad + aws.unreachable;
  if (total > 0) {
    fflush(stdout);
    fprintf(stderr, "moontask: %d problem%s\n", total, total == 1 ? "" : "s");
    return problems + aws.bad > 0 ? 2 : 1;
  }
  return 0;
}

int mt_cmd_db(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_embedded_t db;
  const char *action = cli->argc > 1 ? cli->argv[1] : "";
  int rc;
  if (cli->argc != 2)
    return mt_cli_fail(
        mt_err_set(&err, MT_EINVAL, "usage: moontask db start|stop|status|url"),
        &err);
  if ((rc = mt_embedded_locate(&db, NULL, &err)) != 0)
    return mt_cli_fail(rc, &err);
  if (strcmp(action, "start") == 0) {
    if ((rc = mt_embedded_start(&db, &err)) == 0)
      printf("%s\n", db.url);
  } else if (strcmp(action, "stop") == 0) {
    rc = mt_embedded_stop(&db, &err);
  } else if (strcmp(action, "status") == 0) {
    int running = 0;
    long pid = 0;
    if ((rc = mt_embedded_status(&db, &running, &pid, &err)) == 0) {
      if (running)
        printf("running (pid %ld) in %s\n%s\n", pid, db.root, db.url);
      else
        printf("stopped (%s)\n", db.root);
      return 0;
    }
  } else if (strcmp(action, "url") == 0) {
    printf("%s\n", db.url);
  } else {
    rc = mt_err_set(&err, MT_EINVAL,
                    "db: unknown action \"%s\" (start, stop, status, url)",
                    action);
  }
  return rc ? mt_cli_fail(rc, &err) : 0;
}
