/*
 * moontask's recurring expressions as EventBridge Scheduler expressions
 * (mt_ebs_recurring_expression, runtime/aws/scheduler.h): EventBridge's own
 * forms passed through, Vixie five-field cron and @macros rewritten, and
 * what EventBridge cannot express refused with a message saying why.
 *
 * Besides the exact strings, every conversion is checked twice more: the
 * result must pass mt_ebs_expression_check, and moontask's own cron engine
 * must find the same fire times in the result as in the expression it came
 * from (both dialects parse with mt_cron_parse), so that a day renumbered
 * wrongly cannot pass on a string that merely looks right.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "aws/scheduler.h"
#include "scheduler/cron.h"
#include "scheduler/tz.h"
#include "test.h"

/* 2024-01-01T00:00:00Z, a Monday. */
#define START 1704067200LL
/* Fires compared per expression: well over a year of a daily schedule. */
#define FIRES 500

/* Asserts that moontask fires a and b at the same instants, in UTC. */
static void same_fires(const char *a, const char *b) {
  mt_cron_t *ca = NULL, *cb = NULL;
  mt_tz_t *utc = NULL;
  mt_err_t err;
  if (mt_cron_parse(a, &ca, &err) != 0)
    MT__FAIL("%s: %s", a, err.msg);
  if (mt_cron_parse(b, &cb, &err) != 0)
    MT__FAIL("%s: %s", b, err.msg);
  ASSERT_EQ_INT(mt_tz_load("UTC", &utc, &err), 0);
  int64_t ta = START, tb = START;
  for (int i = 0; i < FIRES; i++) {
    int ra = mt_cron_next(ca, utc, ta, &ta, &err);
    int rb = mt_cron_next(cb, utc, tb, &tb, &err);
    ASSERT_EQ_INT(ra, rb);
    if (ra != 0) /* both past their last fire (a year list) */
      break;
    if (ta != tb)
      MT__FAIL("fire %d: %s at %lld, %s at %lld", i, a, (long long)ta, b,
               (long long)tb);
  }
  mt_cron_free(ca);
  mt_cron_free(cb);
  mt_tz_free(utc);
}

/* Asserts that in converts to want, which EventBridge's form check takes
 * and moontask fires as it fires in. */
static void converts(const char *in, const char *want) {
  char out[MT_EBS_EXPR_MAX];
  mt_err_t err;
  int rc = mt_ebs_recurring_expression(in, out, &err);
  if (rc != 0)
    MT__FAIL("\"%s\" refused: %s", in, err.msg);
  if (strcmp(out, want) != 0)
    MT__FAIL("\"%s\": got \"%s\", want \"%s\"", in, out, want);
  if (mt_ebs_expression_check(out, &err) != 0)
    MT__FAIL("\"%s\" gave \"%s\", which the check refuses: %s", in, out,
             err.msg);
  same_fires(in, out);
}

/* Asserts that in is refused with exactly msg, and out left empty. */
static void refuses(const char *in, const char *msg) {
  char out[MT_EBS_EXPR_MAX] = "untouched";
  mt_err_t err;
  int rc = mt_ebs_recurring_expression(in, out, &err);
  if (rc != MT_EINVAL)
    MT__FAIL("\"%s\": rc %d, out \"%s\"", in ? in : "(null)", rc, out);
  ASSERT_EQ_STR(err.msg, msg);
  ASSERT_EQ_STR(out, "");
}

TEST(ebs_expr_passes_eventbridge_forms_through) {
  const char *same[] = {
      "cron(0 12 * * ? *)",    "cron(0/15 8-17 ? * MON-FRI *)",
      "cron(0 10 L * ? 2030)", "cron(0 9 ? * 3#2 *)",
      "rate(1 minute)",        "rate(5 minutes)",
      "rate(2 days)"};
  for (size_t i = 0; i < sizeof same / sizeof *same; i++)
    converts(same[i], same[i]);
  /* Only the outer blanks go, as the parser ignores them. */
  converts("  rate(1 hour)\n", "rate(1 hour)");
  converts("\tcron(0 12 * * ? *) ", "cron(0 12 * * ? *)");
}

TEST(ebs_expr_converts_every_macro) {
  converts("@yearly", "cron(0 0 1 1 ? *)");
  converts("@annually", "cron(0 0 1 1 ? *)");
  converts("@monthly", "cron(0 0 1 * ? *)");
  converts("@weekly", "cron(0 0 ? * 1 *)");
  converts("@daily", "cron(0 0 * * ? *)");
  converts("@midnight", "cron(0 0 * * ? *)");
  converts("@hourly", "cron(0 * * * ? *)");
  /* The parser reads macros in any case. */
  converts("@Weekly", "cron(0 0 ? * 1 *)");
}

TEST(ebs_expr_question_mark_goes_to_the_free_day_field) {
  /* Both `*`: day-of-week becomes `?`. */
  converts("0 12 * * *", "cron(0 12 * * ? *)");
  /* Day-of-month restricted. */
  converts("0 12 1 * *", "cron(0 12 1 * ? *)");
  converts("30 2 1,15 * *", "cron(30 2 1,15 * ? *)");
  converts("0 0 */2 * *", "cron(0 0 */2 * ? *)");
  /* Day-of-week restricted. */
  converts("0 12 * * 1", "cron(0 12 ? * 2 *)");
  converts("0 12 * * MON-FRI", "cron(0 12 ? * MON-FRI *)");
}

TEST(ebs_expr_renumbers_day_of_week) {
  /* Vixie 0 and 7 are Sunday, EventBridge's 1. */
  converts("0 9 * * 0", "cron(0 9 ? * 1 *)");
  converts("0 9 * * 7", "cron(0 9 ? * 1 *)");
  converts("0 9 * * 6", "cron(0 9 ? * 7 *)");
  converts("0 9 * * 05", "cron(0 9 ? * 6 *)");
  /* Lists and ranges, number by number. */
  converts("0 9 * * 0,3,6", "cron(0 9 ? * 1,4,7 *)");
  converts("0 9 * * 1-5", "cron(0 9 ? * 2-6 *)");
  converts("0 9 * * 0-6", "cron(0 9 ? * 1-7 *)");
  converts("0 9 * * 0-7", "cron(0 9 ? * 1-7 *)");
  converts("0 9 * * 1-3,5", "cron(0 9 ? * 2-4,6 *)");
  converts("0 9 * * 7-7", "cron(0 9 ? * 1 *)");
  /* A range ending on Sunday as 7 would wrap: written as a list. */
  converts("0 9 * * 5-7", "cron(0 9 ? * 6-7,1 *)");
  converts("0 9 * * 6-7", "cron(0 9 ? * 7,1 *)");
  converts("0 9 * * 1-7", "cron(0 9 ? * 2-7,1 *)");
  converts("0 9 * * 5-0", "cron(0 9 ? * 6-7,1 *)");
  /* EventBridge has no step in day-of-week: the days are listed. */
  converts("0 9 * * 1-5/2", "cron(0 9 ? * 2,4,6 *)");
  converts("0 9 * * 1-7/2", "cron(0 9 ? * 2,4,6,1 *)");
  converts("0 9 * * 2/2", "cron(0 9 ? * 3,5,7 *)");
  converts("0 9 * * */2", "cron(0 9 ? * 1,3,5,7 *)");
  converts("0 9 * * */3", "cron(0 9 ? * 1,4,7 *)");
  converts("0 9 * * */7", "cron(0 9 ? * 1 *)");
  converts("0 9 * * */1", "cron(0 9 ? * 1,2,3,4,5,6,7 *)");
  /* `*` inside a list is a range like any other. */
  converts("0 9 * * 1,*", "cron(0 9 ? * 2,1-7 *)");
}

TEST(ebs_expr_keeps_day_names_upper_cased) {
  converts("0 9 * * MON-FRI", "cron(0 9 ? * MON-FRI *)");
  converts("0 9 * * mon-fri", "cron(0 9 ? * MON-FRI *)");
  converts("0 9 * * Sun", "cron(0 9 ? * SUN *)");
  converts("0 9 * * sun,Wed,sat", "cron(0 9 ? * SUN,WED,SAT *)");
  converts("0 9 * * SUN-SAT", "cron(0 9 ? * SUN-SAT *)");
  converts("0 9 * * FRI-SUN", "cron(0 9 ? * FRI-SAT,SUN *)");
  converts("0 9 * * SAT-SUN", "cron(0 9 ? * SAT,SUN *)");
  converts("0 9 * * MON-SUN", "cron(0 9 ? * MON-SAT,SUN *)");
  converts("0 9 * * MON-FRI/2", "cron(0 9 ? * MON,WED,FRI *)");
  /* A range mixing a name and a number is written in numbers. */
  converts("0 9 * * MON-5", "cron(0 9 ? * 2-6 *)");
  converts("0 9 * * mon,5", "cron(0 9 ? * MON,6 *)");
}

TEST(ebs_expr_keeps_minute_hour_day_and_month) {
  converts("*/15 8-17 * * 1-5", "cron(*/15 8-17 ? * 2-6 *)");
  converts("5/10 0-23/2 1-31/3 1-12/2 *",
           "cron(5/10 0-23/2 1-31/3 1-12/2 ? *)");
  converts("0,30 6,18 10-20 3 *", "cron(0,30 6,18 10-20 3 ? *)");
  converts("0 0 1 JAN-MAR *", "cron(0 0 1 JAN-MAR ? *)");
  converts("0 0 1 jan,Jul *", "cron(0 0 1 JAN,JUL ? *)");
  /* Blanks between and around fields are the parser's business. */
  converts("\t0  12 * *   1 \n", "cron(0 12 ? * 2 *)");
}

TEST(ebs_expr_refuses_both_day_fields) {
  refuses("0 12 1 * 1",
          "\"0 12 1 * 1\": day-of-month \"1\" and day-of-week \"1\" are both "
          "restricted: the schedule fires when either matches, which "
          "EventBridge Scheduler cannot express (one of them must be \"?\")");
  /* Only the literal `*` leaves a field free, as the parser reads it. */
  refuses("0 12 */1 * MON-FRI",
          "\"0 12 */1 * MON-FRI\": day-of-month \"*/1\" and day-of-week "
          "\"MON-FRI\" are both restricted: the schedule fires when either "
          "matches, which EventBridge Scheduler cannot express (one of them "
          "must be \"?\")");
}

TEST(ebs_expr_refuses_seconds_field) {
  refuses("*/30 * * * * *",
          "\"*/30 * * * * *\": EventBridge Scheduler fires at minute "
          "precision: a seconds field cannot be expressed");
  refuses(" 0 0 12 * * MON ",
          "\"0 0 12 * * MON\": EventBridge Scheduler fires at minute "
          "precision: a seconds field cannot be expressed");
}

TEST(ebs_expr_refuses_unknown_macros) {
  refuses("@reboot", "\"@reboot\" is not a supported macro (@yearly "
                     "@annually @monthly @weekly @daily @midnight @hourly)");
  refuses("@every 5m", "\"@every 5m\" is not a supported macro (@yearly "
                       "@annually @monthly @weekly @daily @midnight @hourly)");
}

TEST(ebs_expr_refuses_invalid_expressions) {
  /* The parser's message, the expression quoted before it unless the
   * message quotes it already. */
  refuses(NULL, "no schedule expression");
  refuses("61 * * * *", "\"61 * * * *\": minute: \"61\" is out of range 0-59");
  refuses("*/0 * * * *", "\"*/0 * * * *\": minute: \"*/0\" has a step of 0; "
                         "it must be at least 1");
  refuses("0 9 * * 8", "\"0 9 * * 8\": day-of-week: \"8\" is out of range 0-7");
  refuses("* * *",
          "expected 5 fields (minute hour day-of-month month day-of-week), 6 "
          "with a leading second, an @macro, cron(...) or rate(...); got 3 "
          "in \"* * *\"");
  refuses("", "expected 5 fields (minute hour day-of-month month "
              "day-of-week), 6 with a leading second, an @macro, cron(...) "
              "or rate(...); got 0 in \"\"");
  /* EventBridge's day specials are not Vixie syntax. */
  refuses("0 12 L * *", "\"0 12 L * *\": day-of-month: \"L\" uses L, which "
                        "is only allowed in EventBridge cron(...) "
                        "expressions");
  refuses("0 12 15W * *", "\"0 12 15W * *\": day-of-month: \"15W\" uses W, "
                          "which is only allowed in EventBridge cron(...) "
                          "expressions");
  refuses("0 12 * * 5L", "\"0 12 * * 5L\": day-of-week: \"5L\" uses L, "
                         "which is only allowed in EventBridge cron(...) "
                         "expressions");
  refuses("0 12 * * 5#2", "\"0 12 * * 5#2\": day-of-week: \"5#2\" uses #, "
                          "which is only allowed in EventBridge cron(...) "
                          "expressions");
  refuses("0 12 ? * 1", "\"0 12 ? * 1\": day-of-month: \"?\" is only "
                        "allowed in EventBridge cron(...) expressions");
  /* EventBridge's own forms: the parser first, then EventBridge's stricter
   * form check (moontask takes "5 minute", EventBridge does not). */
  refuses("cron(0 12 * * * *)",
          "\"cron(0 12 * * * *)\": day-of-month \"*\" and day-of-week \"*\": "
          "exactly one of them must be \"?\"");
  refuses("rate(5 minute)",
          "\"rate(5 minute)\": write rate(1 minute) or rate(<n> minutes)");
}

TEST(ebs_expr_refuses_results_too_long) {
  /* Valid for moontask, but 268 characters as cron(...), more than
   * EventBridge takes. */
  char in[400];
  size_t k = 0;
  for (int m = 0; m < 60; m++)
    k += (size_t)snprintf(in + k, sizeof in - k, "%s%d", m ? "," : "", m);
  for (int h = 0; h < 24; h++)
    k += (size_t)snprintf(in + k, sizeof in - k, "%s%d", h ? "," : " ", h);
  snprintf(in + k, sizeof in - k, " * 1,2,3,4,5,6,7,8,9,10,11,12 *");
  char want[600];
  snprintf(want, sizeof want,
           "\"%s\": a schedule expression has at most 256 characters", in);
  refuses(in, want);
}
