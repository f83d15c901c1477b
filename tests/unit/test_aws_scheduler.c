/*
 * The typed EventBridge Scheduler client (runtime/aws/scheduler.h): schedule
 * names made from task ids and recurring schedules' names, expressions
 * checked before anything is sent, and CreateSchedule, UpdateSchedule (and
 * the upsert on them), GetSchedule, DeleteSchedule and GetScheduleGroup
 * against a moto_server of the case's own (tests/aws/moto_ctl.h).
 *
 * What a call did is read back through boto3 (tests/aws/moto_ctl.py
 * get-schedule, list-schedules), not only through our own GetSchedule.
 * moto stores schedules without judging them (names, expressions, targets
 * all pass), so the checks of our own are tested without it: a request
 * they refuse never reaches the HTTP client.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "../aws/moto_ctl.h"
#include "aws/client.h"
#include "aws/http.h"
#include "aws/scheduler.h"
#include "json/doc.h"
#include "test.h"

#define ASSERT_CONTAINS(hay, needle)                     \
  do {                                                   \
    if (strstr((hay), (needle)) == NULL)                 \
      MT__FAIL("\"%s\" not in \"%s\"", (needle), (hay)); \
  } while (0)

/* What one callback saw, copied out before its strings went. */
typedef struct got_s {
  int calls;
  int rc;
  mt_aws_kind_t kind;
  long status;
  char code[128];
  char err[MT_ERR_MAX];
  char arn[256];
  int created;
  /* GetSchedule */
  char name[80], group[80], expression[128], timezone[64], state[16], after[16],
      flexible[16], target[256], role[256], input[256], message_group[64];
} got_t;

static void keep(got_t *g, const mt_aws_result_t *res) {
  g->calls++;
  g->rc = res->rc;
  g->kind = res->kind;
  g->status = res->status;
  snprintf(g->code, sizeof g->code, "%s", res->code);
  snprintf(g->err, sizeof g->err, "%s", res->err.msg);
  ASSERT_EQ_INT(res->rc == 0, res->kind == MT_AWS_OK);
}

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src) ? (src) : "")

static void on_written(const mt_aws_result_t *res, const mt_ebs_written_t *out,
                       void *arg) {
  got_t *g = arg;
  keep(g, res);
  ASSERT_EQ_INT(out != NULL, res->rc == 0);
  if (out != NULL) {
    COPY(g->arn, out->arn);
    g->created = out->created;
  }
}

static void on_get(const mt_aws_result_t *res, const mt_ebs_info_t *out,
                   void *arg) {
  got_t *g = arg;
  keep(g, res);
  ASSERT_EQ_INT(out != NULL, res->rc == 0);
  if (out == NULL)
    return;
  COPY(g->arn, out->arn);
  COPY(g->name, out->name);
  COPY(g->group, out->group);
  COPY(g->expression, out->expression);
  COPY(g->timezone, out->timezone);
  COPY(g->state, out->state);
  COPY(g->after, out->action_after_completion);
  COPY(g->flexible, out->flexible_mode);
  COPY(g->target, out->target_arn);
  COPY(g->role, out->role_arn);
  COPY(g->input, out->input);
  COPY(g->message_group, out->message_group_id);
}

static void on_deleted(const mt_aws_result_t *res, void *arg) {
  keep(arg, res);
}

static void on_group(const mt_aws_result_t *res, const mt_ebs_group_t *out,
                     void *arg) {
  got_t *g = arg;
  keep(g, res);
  ASSERT_EQ_INT(out != NULL, res->rc == 0);
  if (out != NULL) {
    COPY(g->arn, out->arn);
    COPY(g->name, out->name);
    COPY(g->state, out->state);
  }
}

enum { CREATE, UPDATE, UPSERT };

static void write_schedule(aws_fixture_t *f, int how,
                           const mt_ebs_schedule_t *s, got_t *g) {
  mt_err_t err;
  int rc;
  memset(g, 0, sizeof *g);
  rc = how == CREATE   ? mt_ebs_schedule_create(f->aws, s, on_written, g, &err)
       : how == UPDATE ? mt_ebs_schedule_update(f->aws, s, on_written, g, &err)
                       : mt_ebs_schedule_upsert(f->aws, s, on_written, g, &err);
  if (rc != 0)
    MT__FAIL("writing the schedule: %s", err.msg);
  aws_fixture_wait(f, &g->calls);
}

static void get_schedule(aws_fixture_t *f, const char *group, const char *name,
                         got_t *g) {
  mt_err_t err;
  memset(g, 0, sizeof *g);
  if (mt_ebs_schedule_get(f->aws, group, name, on_get, g, &err) != 0)
    MT__FAIL("mt_ebs_schedule_get: %s", err.msg);
  aws_fixture_wait(f, &g->calls);
}

static void delete_schedule(aws_fixture_t *f, const char *group,
                            const char *name, got_t *g) {
  mt_err_t err;
  memset(g, 0, sizeof *g);
  if (mt_ebs_schedule_delete(f->aws, group, name, "mt-delete-token-1",
                             on_deleted, g, &err) != 0)
    MT__FAIL("mt_ebs_schedule_delete: %s", err.msg);
  aws_fixture_wait(f, &g->calls);
}

#define ASSERT_OK(g)                           \
  do {                                         \
    if ((g)->rc != 0)                          \
      MT__FAIL("%s failed: %s", #g, (g)->err); \
  } while (0)

/* The schedule as boto3 reads it; the caller frees the document. */
static mt_jdoc_t *boto_schedule(aws_fixture_t *f, const char *group,
                                const char *name) {
  return moto_ctl(&f->moto, "get-schedule", group, name, NULL);
}

static const char *member(const mt_jval_t *v, const char *a, const char *b) {
  const mt_jval_t *x = mt_jval_get(v, a);
  if (b != NULL)
    x = mt_jval_get(x, b);
  return x != NULL && x->type == MT_JV_STRING ? x->u.str : NULL;
}

/* ---- names and expressions (no server) ---------------------------------- */

TEST(aws_ebs_schedule_names) {
  char a[MT_EBS_NAME_MAX + 1], b[MT_EBS_NAME_MAX + 1];
  mt_ebs_task_name(42, a);
  ASSERT_EQ_STR(a, "mt-42");
  mt_ebs_task_name(INT64_MAX, a);
  ASSERT_EQ_STR(a, "mt-9223372036854775807");
  ASSERT_TRUE(mt_ebs_name_valid(a));
  /* A valid recurring name is kept, readable. */
  ASSERT_EQ_INT(mt_ebs_recurring_name("attendance.nightly", a), 0);
  ASSERT_EQ_STR(a, "mtr-attendance.nightly");
  /* Unsafe characters and length are hashed, and the result is valid,
   * stable, and tells apart what sanitising alone would merge. */
  const char *hashed[] = {
      "reports: weekly summary",
      "reports/ weekly summary",
      "résumé",
      "",
      "a-very-long-recurring-schedule-name-that-goes-on-and-on-beyond-60",
      "a-very-long-recurring-schedule-name-that-goes-on-and-on-beyond-61",
  };
  size_t nh = sizeof hashed / sizeof *hashed;
  char out[sizeof hashed / sizeof *hashed][MT_EBS_NAME_MAX + 1];
  for (size_t i = 0; i < nh; i++) {
    ASSERT_EQ_INT(mt_ebs_recurring_name(hashed[i], out[i]), 0);
    ASSERT_TRUE(mt_ebs_name_valid(out[i]));
    ASSERT_TRUE(strncmp(out[i], "mth-", 4) == 0);
    ASSERT_EQ_INT(mt_ebs_recurring_name(hashed[i], b), 0);
    ASSERT_EQ_STR(out[i], b);
    for (size_t j = 0; j < i; j++)
      ASSERT_TRUE(strcmp(out[i], out[j]) != 0);
  }
  ASSERT_EQ_STR(out[0], "mth-reports__weekly_summary-7f8dbf4a49cee37d0063");
  ASSERT_EQ_INT(strlen(out[4]), MT_EBS_NAME_MAX);
  ASSERT_TRUE(
      strncmp(out[4], "mth-a-very-long-recurring-schedule-name-tha-", 44) == 0);
  /* 60 characters fit "mtr-"; 61 do not. */
  char sixty[61];
  memset(sixty, 'x', 60);
  sixty[60] = '\0';
  ASSERT_EQ_INT(mt_ebs_recurring_name(sixty, a), 0);
  ASSERT_EQ_INT(strlen(a), 64);
  ASSERT_TRUE(strncmp(a, "mtr-", 4) == 0);
  char sixty_one[62];
  memset(sixty_one, 'x', 61);
  sixty_one[61] = '\0';
  ASSERT_EQ_INT(mt_ebs_recurring_name(sixty_one, a), 0);
  ASSERT_TRUE(strncmp(a, "mth-", 4) == 0);
  ASSERT_TRUE(mt_ebs_name_valid(a));
  /* Validity as EventBridge defines it. */
  ASSERT_TRUE(mt_ebs_name_valid("Az09-_."));
  ASSERT_TRUE(!mt_ebs_name_valid(""));
  ASSERT_TRUE(!mt_ebs_name_valid(NULL));
  ASSERT_TRUE(!mt_ebs_name_valid("a b"));
  ASSERT_TRUE(!mt_ebs_name_valid("a/b"));
  memset(b, 'y', MT_EBS_NAME_MAX);
  b[MT_EBS_NAME_MAX] = '\0';
  ASSERT_TRUE(mt_ebs_name_valid(b));
  char longer[MT_EBS_NAME_MAX + 2];
  memset(longer, 'y', MT_EBS_NAME_MAX + 1);
  longer[MT_EBS_NAME_MAX + 1] = '\0';
  ASSERT_TRUE(!mt_ebs_name_valid(longer));
}

TEST(aws_ebs_expressions) {
  char at[32];
  mt_err_t err;
  ASSERT_EQ_INT(mt_ebs_at_expression(0, at), 0);
  ASSERT_EQ_STR(at, "at(1970-01-01T00:00:00)");
  ASSERT_EQ_INT(mt_ebs_at_expression(1893456000.75, at), 0);
  ASSERT_EQ_STR(at, "at(2030-01-01T00:00:00)");
  ASSERT_EQ_INT(mt_ebs_at_expression(951782400 + 86399, at), 0);
  ASSERT_EQ_STR(at, "at(2000-02-29T23:59:59)");
  ASSERT_EQ_INT(mt_ebs_at_expression(-1, at), MT_EINVAL);
  ASSERT_EQ_INT(mt_ebs_at_expression(1e12, at), MT_EINVAL);
  const char *good[] = {"at(2030-01-31T12:00:00)",
                        "at(2024-02-29T00:00:00)",
                        "rate(1 minute)",
                        "rate(5 minutes)",
                        "rate(1 hour)",
                        "rate(2 days)",
                        "cron(0 12 * * ? *)",
                        "cron(0/15 8-17 ? * MON-FRI *)"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    if (mt_ebs_expression_check(good[i], &err) != 0)
      MT__FAIL("%s refused: %s", good[i], err.msg);
  const char *bad[] = {"",
                       "at(2030-01-31 12:00:00)",
                       "at(2030-01-31T12:00)",
                       "at(2023-02-29T00:00:00)",
                       "at(2030-13-01T00:00:00)",
                       "at(2030-01-31T24:00:00)",
                       "rate(0 minutes)",
                       "rate(1 minutes)",
                       "rate(5 minute)",
                       "rate(5 seconds)",
                       "rate(05 minutes)",
                       "rate(minutes)",
                       "cron(0 12 * * ?)",
                       "cron(* * * * * * *)",
                       "cron(0 12 * * ? *",
                       "0 12 * * *",
                       "every day"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (mt_ebs_expression_check(bad[i], &err) != MT_EINVAL)
      MT__FAIL("\"%s\" accepted", bad[i]);
  mt_ebs_expression_check("rate(1 minutes)", &err);
  ASSERT_CONTAINS(err.msg, "rate(1 minute)");
  mt_ebs_expression_check("cron(0 12 * * ?)", &err);
  ASSERT_CONTAINS(err.msg, "six fields");
}

/* ---- against moto ------------------------------------------------------- */

TEST(aws_ebs_create_get_delete_with_conflict_and_not_found) {
  aws_fixture_t f;
  got_t w, g, d;
  char name[MT_EBS_NAME_MAX + 1], at[32];
  aws_fixture_start(&f);
  mt_ebs_task_name(1001, name);
  ASSERT_EQ_INT(mt_ebs_at_expression(1893456000, at), 0);
  mt_ebs_schedule_t s = {.name = name,
                         .expression = at,
                         .target_arn = f.std_arn,
                         .input = "{\"task_id\":1001}",
                         .client_token = "mt-create-1001"};
  /* group NULL and role NULL: the client's. */
  write_schedule(&f, CREATE, &s, &w);
  ASSERT_OK(&w);
  ASSERT_CONTAINS(w.arn, ":schedule/mt-group/mt-1001");
  /* Read back by boto3. */
  mt_jdoc_t *doc = boto_schedule(&f, "mt-group", name);
  const mt_jval_t *b = mt_jdoc_root(doc);
  ASSERT_EQ_STR(member(b, "ScheduleExpression", NULL),
                "at(2030-01-01T00:00:00)");
  ASSERT_EQ_STR(member(b, "ActionAfterCompletion", NULL), "DELETE");
  ASSERT_EQ_STR(member(b, "State", NULL), "ENABLED");
  ASSERT_EQ_STR(member(b, "FlexibleTimeWindow", "Mode"), "OFF");
  ASSERT_EQ_STR(member(b, "Target", "Arn"), f.std_arn);
  ASSERT_EQ_STR(member(b, "Target", "RoleArn"), f.role_arn);
  ASSERT_EQ_STR(member(b, "Target", "Input"), "{\"task_id\":1001}");
  ASSERT_TRUE(mt_jval_get(mt_jval_get(b, "Target"), "SqsParameters") == NULL);
  mt_jdoc_free(doc);
  /* And by ours. */
  get_schedule(&f, NULL, name, &g);
  ASSERT_OK(&g);
  ASSERT_EQ_STR(g.name, name);
  ASSERT_EQ_STR(g.group, "mt-group");
  ASSERT_EQ_STR(g.expression, at);
  ASSERT_EQ_STR(g.timezone, "UTC");
  ASSERT_EQ_STR(g.after, "DELETE");
  ASSERT_EQ_STR(g.flexible, "OFF");
  ASSERT_EQ_STR(g.target, f.std_arn);
  ASSERT_EQ_STR(g.role, f.role_arn);
  ASSERT_EQ_STR(g.input, "{\"task_id\":1001}");
  ASSERT_EQ_STR(g.message_group, "");
  /* A retried create meets the first one: a result of its own. */
  write_schedule(&f, CREATE, &s, &w);
  ASSERT_EQ_INT(w.kind, MT_AWS_ECONFLICT);
  ASSERT_EQ_INT(w.rc, MT_ESTATE);
  ASSERT_EQ_STR(w.code, "ConflictException");
  /* Delete, then delete again: gone is a result of its own too. */
  delete_schedule(&f, NULL, name, &d);
  ASSERT_OK(&d);
  doc = boto_schedule(&f, "mt-group", name);
  ASSERT_EQ_STR(member(mt_jdoc_root(doc), "error", NULL),
                "ResourceNotFoundException");
  mt_jdoc_free(doc);
  delete_schedule(&f, NULL, name, &d);
  ASSERT_EQ_INT(d.kind, MT_AWS_ENOTFOUND);
  ASSERT_EQ_INT(d.rc, MT_ENOTFOUND);
  ASSERT_EQ_INT(d.status, 404);
  ASSERT_EQ_STR(d.code, "ResourceNotFoundException");
  get_schedule(&f, NULL, name, &g);
  ASSERT_EQ_INT(g.kind, MT_AWS_ENOTFOUND);
  /* The blocking read, as `moontask check` would make it. */
  mt_ebs_info_t info;
  mt_aws_result_t res;
  ASSERT_EQ_INT(mt_ebs_schedule_get_sync(f.aws, NULL, name, &info, &res),
                MT_ENOTFOUND);
  mt_aws_result_free(&res);
  aws_fixture_stop(&f);
}

TEST(aws_ebs_fifo_target_carries_message_group_id) {
  aws_fixture_t f;
  got_t w, g;
  char name[MT_EBS_NAME_MAX + 1];
  aws_fixture_start(&f);
  mt_ebs_task_name(7, name);
  mt_ebs_schedule_t s = {.name = name,
                         .group = "default",
                         .expression = "at(2031-06-15T08:30:00)",
                         .target_arn = f.fifo_arn,
                         .role_arn = f.role_arn,
                         .input = "{\"task_id\":7}",
                         .message_group_id = "moontask"};
  write_schedule(&f, CREATE, &s, &w);
  ASSERT_OK(&w);
  ASSERT_CONTAINS(w.arn, ":schedule/default/mt-7");
  mt_jdoc_t *doc = boto_schedule(&f, "default", name);
  const mt_jval_t *b = mt_jdoc_root(doc);
  ASSERT_EQ_STR(member(b, "Target", "Arn"), f.fifo_arn);
  ASSERT_EQ_STR(
      member(mt_jval_get(b, "Target"), "SqsParameters", "MessageGroupId"),
      "moontask");
  mt_jdoc_free(doc);
  get_schedule(&f, "default", name, &g);
  ASSERT_OK(&g);
  ASSERT_EQ_STR(g.message_group, "moontask");
  /* The same name in another group is another schedule. */
  mt_jdoc_t *list = moto_ctl(&f.moto, "list-schedules", "mt-group", NULL);
  const mt_jval_t *names = mt_jval_get(mt_jdoc_root(list), "names");
  ASSERT_TRUE(names != NULL && names->type == MT_JV_ARRAY);
  ASSERT_EQ_INT(names->len, 0);
  mt_jdoc_free(list);
  aws_fixture_stop(&f);
}

TEST(aws_ebs_upsert_recurring_schedule) {
  aws_fixture_t f;
  got_t w, g;
  char name[MT_EBS_NAME_MAX + 1];
  aws_fixture_start(&f);
  ASSERT_EQ_INT(mt_ebs_recurring_name("reports.weekly", name), 0);
  mt_ebs_schedule_t s = {.name = name,
                         .expression = "cron(0 6 ? * MON *)",
                         .timezone = "Europe/Paris",
                         .target_arn = f.std_arn,
                         .input = "{\"schedule\":\"reports.weekly\",\"fire\":"
                                  "\"<aws.scheduler.scheduled-time>\"}"};
  /* Update alone finds nothing. */
  write_schedule(&f, UPDATE, &s, &w);
  ASSERT_EQ_INT(w.kind, MT_AWS_ENOTFOUND);
  /* Upsert: created. */
  write_schedule(&f, UPSERT, &s, &w);
  ASSERT_OK(&w);
  ASSERT_EQ_INT(w.created, 1);
  ASSERT_CONTAINS(w.arn, "mtr-reports.weekly");
  get_schedule(&f, NULL, name, &g);
  ASSERT_OK(&g);
  ASSERT_EQ_STR(g.expression, "cron(0 6 ? * MON *)");
  ASSERT_EQ_STR(g.timezone, "Europe/Paris");
  ASSERT_EQ_STR(g.after, "NONE");
  /* Upsert again with another expression: updated in place. */
  s.expression = "rate(2 hours)";
  s.timezone = NULL;
  s.flexible_minutes = 15;
  s.disabled = 1;
  write_schedule(&f, UPSERT, &s, &w);
  ASSERT_OK(&w);
  ASSERT_EQ_INT(w.created, 0);
  mt_jdoc_t *doc = boto_schedule(&f, "mt-group", name);
  const mt_jval_t *b = mt_jdoc_root(doc);
  ASSERT_EQ_STR(member(b, "ScheduleExpression", NULL), "rate(2 hours)");
  ASSERT_EQ_STR(member(b, "ScheduleExpressionTimezone", NULL), "UTC");
  ASSERT_EQ_STR(member(b, "State", NULL), "DISABLED");
  ASSERT_EQ_STR(member(b, "FlexibleTimeWindow", "Mode"), "FLEXIBLE");
  const mt_jval_t *win = mt_jval_get(mt_jval_get(b, "FlexibleTimeWindow"),
                                     "MaximumWindowInMinutes");
  ASSERT_TRUE(win != NULL && win->is_int && win->u.num.i == 15);
  ASSERT_EQ_STR(member(b, "Target", "Input"),
                "{\"schedule\":\"reports.weekly\",\"fire\":"
                "\"<aws.scheduler.scheduled-time>\"}");
  mt_jdoc_free(doc);
  /* Two requests for a create (update, create), one for an update. */
  mt_http_stat_t st[16];
  size_t n = mt_http_stats(mt_aws_http(f.aws), st, 16);
  uint64_t updates = 0, creates = 0;
  for (size_t i = 0; i < n && i < 16; i++) {
    if (strcmp(st[i].op, "scheduler.UpdateSchedule") == 0)
      updates = st[i].attempts;
    if (strcmp(st[i].op, "scheduler.CreateSchedule") == 0)
      creates = st[i].attempts;
  }
  ASSERT_EQ_INT(updates, 3);
  ASSERT_EQ_INT(creates, 1);
  aws_fixture_stop(&f);
}

TEST(aws_ebs_schedule_group) {
  aws_fixture_t f;
  got_t g;
  mt_err_t err;
  mt_ebs_group_t group;
  mt_aws_result_t res;
  aws_fixture_start(&f);
  memset(&g, 0, sizeof g);
  ASSERT_EQ_INT(mt_ebs_group_get(f.aws, NULL, on_group, &g, &err), 0);
  aws_fixture_wait(&f, &g.calls);
  ASSERT_OK(&g);
  ASSERT_EQ_STR(g.name, "mt-group");
  ASSERT_EQ_STR(g.state, "ACTIVE");
  ASSERT_CONTAINS(g.arn, ":schedule-group/mt-group");
  memset(&g, 0, sizeof g);
  ASSERT_EQ_INT(mt_ebs_group_get(f.aws, "no-such-group", on_group, &g, &err),
                0);
  aws_fixture_wait(&f, &g.calls);
  ASSERT_EQ_INT(g.kind, MT_AWS_ENOTFOUND);
  ASSERT_EQ_STR(g.code, "ResourceNotFoundException");
  /* Blocking, on a client without a loop, as `moontask check` asks. */
  mt_aws_t *cli = NULL;
  mt_aws_conf_t conf = {.endpoint = f.endpoint, .schedule_group = "mt-group"};
  if (mt_aws_new(NULL, &conf, f.creds, NULL, &cli, &err) != 0)
    MT__FAIL("mt_aws_new: %s", err.msg);
  ASSERT_EQ_INT(mt_ebs_group_get_sync(cli, NULL, &group, &res), 0);
  ASSERT_EQ_STR(group.name, "mt-group");
  mt_aws_result_free(&res);
  ASSERT_EQ_INT(mt_ebs_group_get_sync(cli, "default", &group, &res), 0);
  ASSERT_EQ_STR(group.name, "default");
  mt_aws_result_free(&res);
  ASSERT_EQ_INT(mt_ebs_group_get_sync(cli, "missing", &group, &res),
                MT_ENOTFOUND);
  ASSERT_CONTAINS(res.err.msg, "scheduler.GetScheduleGroup");
  ASSERT_CONTAINS(res.err.msg, "/schedule-groups/missing");
  mt_aws_result_free(&res);
  ASSERT_EQ_INT(mt_ebs_group_get_sync(cli, "bad name", &group, &res),
                MT_EINVAL);
  mt_aws_result_free(&res);
  mt_aws_free(cli);
  aws_fixture_stop(&f);
}

TEST(aws_ebs_refuses_bad_requests_before_sending) {
  aws_fixture_t f;
  got_t g;
  mt_err_t err;
  aws_fixture_start(&f);
  memset(&g, 0, sizeof g);
  mt_ebs_schedule_t ok = {
      .name = "mt-1", .expression = "rate(5 minutes)", .target_arn = f.std_arn};
  struct {
    const char *what;
    mt_ebs_schedule_t s;
    const char *says;
  } cases[] = {
      {"a name with a space", ok, "schedule name"},
      {"a name too long", ok, "schedule name"},
      {"a bad group", ok, "group name"},
      {"seconds in a cron", ok, "six fields"},
      {"no target", ok, "target"},
      {"a token with a dot", ok, "client token"},
      {"an empty input", ok, "Input"},
      {"a window of a day and more", ok, "flexible window"},
  };
  cases[0].s.name = "mt 1";
  cases[1].s.name =
      "mt-01234567890123456789012345678901234567890123456789012345678901";
  cases[2].s.group = "my/group";
  cases[3].s.expression = "cron(*/30 * * * * ? *)";
  cases[4].s.target_arn = NULL;
  cases[5].s.client_token = "a.b";
  cases[6].s.input = "";
  cases[7].s.flexible_minutes = 1441;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int rc = mt_ebs_schedule_create(f.aws, &cases[i].s, on_written, &g, &err);
    if (rc != MT_EINVAL)
      MT__FAIL("%s: rc %d", cases[i].what, rc);
    ASSERT_CONTAINS(err.msg, "scheduler.CreateSchedule");
    ASSERT_CONTAINS(err.msg, cases[i].says);
    ASSERT_EQ_INT(
        mt_ebs_schedule_upsert(f.aws, &cases[i].s, on_written, &g, &err),
        MT_EINVAL);
  }
  /* No role anywhere: the client has one, so take it away. */
  mt_aws_t *norole = NULL;
  mt_aws_conf_t conf = {.endpoint = f.endpoint};
  if (mt_aws_new(&f.loop, &conf, f.creds, NULL, &norole, &err) != 0)
    MT__FAIL("mt_aws_new: %s", err.msg);
  ASSERT_EQ_INT(mt_ebs_schedule_create(norole, &ok, on_written, &g, &err),
                MT_EINVAL);
  ASSERT_CONTAINS(err.msg, "aws.role_arn");
  mt_aws_free(norole);
  ASSERT_EQ_INT(mt_ebs_schedule_get(f.aws, NULL, "a b", on_get, &g, &err),
                MT_EINVAL);
  ASSERT_EQ_INT(
      mt_ebs_schedule_delete(f.aws, NULL, "a/b", NULL, on_deleted, &g, &err),
      MT_EINVAL);
  ASSERT_EQ_INT(mt_ebs_schedule_delete(f.aws, NULL, "mt-1", "bad token",
                                       on_deleted, &g, &err),
                MT_EINVAL);
  ASSERT_EQ_INT(g.calls, 0);
  mt_http_stat_t st[16];
  size_t n = mt_http_stats(mt_aws_http(f.aws), st, 16);
  for (size_t i = 0; i < n && i < 16; i++)
    ASSERT_EQ_INT(st[i].attempts, 0);
  /* The same schedule made valid goes through. */
  write_schedule(&f, CREATE, &ok, &g);
  ASSERT_OK(&g);
  aws_fixture_stop(&f);
}
