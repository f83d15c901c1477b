/* The recurring-schedule engine: parse errors, DST, calendar edges,
 * EventBridge specials, and the time-zone loader. */
#include <stdint.h>
#include <string.h>

#include "scheduler/cron.h"
#include "test.h"

/* The next fire of expr in zone after `after`, as RFC 3339 text, or the
 * error message. */
static const char *next_fire(const char *expr, const char *zone,
                             const char *after, char buf[MT_ERR_MAX]) {
  mt_err_t err = {{0}};
  mt_cron_t *c = NULL;
  mt_tz_t *tz = NULL;
  int64_t t, next;
  if (mt_time_parse_rfc3339(after, &t) != 0)
    snprintf(buf, MT_ERR_MAX, "bad start %s", after);
  else if (mt_cron_parse(expr, &c, &err) != 0 ||
           mt_tz_load(zone, &tz, &err) != 0 ||
           mt_cron_next(c, tz, t, &next, &err) != 0)
    snprintf(buf, MT_ERR_MAX, "%s", err.msg);
  else
    mt_tz_format(tz, next, buf);
  mt_cron_free(c);
  mt_tz_free(tz);
  return buf;
}

static const char *parse_error(const char *expr, char buf[MT_ERR_MAX]) {
  mt_err_t err = {{0}};
  mt_cron_t *c = NULL;
  int rc = mt_cron_parse(expr, &c, &err);
  snprintf(buf, MT_ERR_MAX, "%s",
           rc == MT_EINVAL && c == NULL ? err.msg : "ok");
  mt_cron_free(c);
  return buf;
}

TEST(cron_error_names_field_and_token) {
  char b[MT_ERR_MAX];
  ASSERT_EQ_STR(parse_error("60 * * * *", b),
                "minute: \"60\" is out of range 0-59");
  ASSERT_EQ_STR(parse_error("0 0 * JANUARY *", b),
                "month: \"JANUARY\" is not a month name (JAN-DEC)");
  ASSERT_EQ_STR(parse_error("*/0 * * * * *", b),
                "second: \"*/0\" has a step of 0; it must be at least 1");
  ASSERT_EQ_STR(parse_error("cron(0 12 * * ? 2200)", b),
                "year: \"2200\" is out of range 1970-2199");
  ASSERT_EQ_STR(parse_error("cron(0 12 ? * 2W *)", b),
                "day-of-week: \"2W\" uses W, which is only allowed in "
                "day-of-month");
  /* A day name with a W in it is a name, not nW. */
  ASSERT_EQ_STR(parse_error("cron(0 12 ? * WED *)", b), "ok");
  ASSERT_EQ_STR(
      next_fire("cron(0 12 ? * wed *)", "UTC", "2026-03-10T00:00:00Z", b),
      "2026-03-11T12:00:00Z");
  ASSERT_TRUE(strstr(parse_error("rate(5 seconds)", b), "\"seconds\"") != NULL);
  ASSERT_EQ_STR(parse_error("@hourly", b), "ok");
}

TEST(cron_unix_basics_in_utc) {
  char b[MT_ERR_MAX];
  /* Vixie: both day fields restricted, so either matches. The 13th of
   * March 2026 is a Friday, before the first Monday after the 10th. */
  ASSERT_EQ_STR(next_fire("0 0 13 * MON", "UTC", "2026-03-10T00:00:00Z", b),
                "2026-03-13T00:00:00Z");
  /* 7 and 0 are both Sunday. */
  ASSERT_EQ_STR(next_fire("0 12 * * 7", "UTC", "2026-03-10T00:00:00Z", b),
                "2026-03-15T12:00:00Z");
  ASSERT_EQ_STR(next_fire("*/10 * * * * *", "UTC", "2026-12-31T23:59:55Z", b),
                "2027-01-01T00:00:00Z");
}

TEST(cron_leap_day) {
  char b[MT_ERR_MAX];
  ASSERT_EQ_STR(next_fire("0 0 29 2 *", "UTC", "2025-01-01T00:00:00Z", b),
                "2028-02-29T00:00:00Z");
  /* 2100 is not a leap year. */
  ASSERT_EQ_STR(next_fire("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", b),
                "2104-02-29T00:00:00Z");
  ASSERT_EQ_STR(next_fire("0 0 30 2 *", "UTC", "2025-01-01T00:00:00Z", b),
                "the schedule has no fire time after the start");
}

TEST(cron_dst_gap_and_overlap_oslo) {
  char b[MT_ERR_MAX];
  /* 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist, fires once
   * shifted past the gap, then normally the next day. */
  ASSERT_EQ_STR(
      next_fire("30 2 * * *", "Europe/Oslo", "2026-03-29T01:00:00+01:00", b),
      "2026-03-29T03:30:00+02:00");
  ASSERT_EQ_STR(
      next_fire("30 2 * * *", "Europe/Oslo", "2026-03-29T03:30:00+02:00", b),
      "2026-03-30T02:30:00+02:00");
  /* 2026-10-25 03:00 CEST -> 02:00 CET: a fixed hour fires on the first
   * pass only, a `*` hour fires on both. */
  ASSERT_EQ_STR(
      next_fire("30 2 * * *", "Europe/Oslo", "2026-10-25T02:30:00+02:00", b),
      "2026-10-26T02:30:00+01:00");
  ASSERT_EQ_STR(
      next_fire("*/30 * * * *", "Europe/Oslo", "2026-10-25T02:30:00+02:00", b),
      "2026-10-25T02:00:00+01:00");
}

TEST(cron_southern_hemisphere_sydney) {
  char b[MT_ERR_MAX];
  /* Sydney springs forward in October and falls back in April. */
  ASSERT_EQ_STR(next_fire("30 2 * * *", "Australia/Sydney",
                          "2026-10-04T00:00:00+10:00", b),
                "2026-10-04T03:30:00+11:00");
  ASSERT_EQ_STR(next_fire("*/20 * * * *", "Australia/Sydney",
                          "2026-04-05T02:50:00+11:00", b),
                "2026-04-05T02:00:00+10:00");
  /* Far past the last table entry, the footer rule still applies. */
  ASSERT_EQ_STR(next_fire("0 9 1 1 *", "Australia/Sydney",
                          "2090-06-01T00:00:00+10:00", b),
                "2091-01-01T09:00:00+11:00");
}

TEST(cron_eventbridge_l_w_hash) {
  char b[MT_ERR_MAX];
  /* Last day of February 2028 (leap year). */
  ASSERT_EQ_STR(
      next_fire("cron(0 10 L * ? *)", "UTC", "2028-02-01T00:00:00Z", b),
      "2028-02-29T10:00:00Z");
  /* 2026-08-01 is a Saturday: 1W moves forward to Monday the 3rd. */
  ASSERT_EQ_STR(
      next_fire("cron(0 10 1W * ? *)", "UTC", "2026-07-31T00:00:00Z", b),
      "2026-08-03T10:00:00Z");
  /* Third Friday (6 = FRI) of March 2026 is the 20th. */
  ASSERT_EQ_STR(
      next_fire("cron(0 10 ? * 6#3 *)", "UTC", "2026-03-01T00:00:00Z", b),
      "2026-03-20T10:00:00Z");
  /* Last Monday (2L) of May 2026 is the 25th. */
  ASSERT_EQ_STR(
      next_fire("cron(0 10 ? * 2L *)", "UTC", "2026-05-01T00:00:00Z", b),
      "2026-05-25T10:00:00Z");
  /* A year list in the past has no next fire. */
  ASSERT_EQ_STR(
      next_fire("cron(0 10 * * ? 2020)", "UTC", "2026-01-01T00:00:00Z", b),
      "the schedule has no fire time after the start");
}

TEST(cron_rate_is_elapsed_time) {
  char b[MT_ERR_MAX];
  /* A day is 24 h even across the spring-forward. */
  ASSERT_EQ_STR(
      next_fire("rate(1 day)", "Europe/Oslo", "2026-03-28T12:00:00+01:00", b),
      "2026-03-29T13:00:00+02:00");
  ASSERT_EQ_STR(next_fire("rate(90 minutes)", "UTC", "2026-01-01T23:00:00Z", b),
                "2026-01-02T00:30:00Z");
}

TEST(cron_tz_load_and_rfc3339) {
  mt_err_t err = {{0}};
  mt_tz_t *tz = NULL;
  int64_t t;
  char buf[40];
  ASSERT_EQ_INT(mt_tz_load("Nowhere/Atlantis", &tz, &err), MT_EINVAL);
  ASSERT_TRUE(strstr(err.msg, "Nowhere/Atlantis") != NULL);
  ASSERT_EQ_INT(mt_tz_load("../../etc/passwd", &tz, &err), MT_EINVAL);
  ASSERT_EQ_INT(mt_time_parse_rfc3339("2026-02-30T00:00:00Z", &t), MT_EINVAL);
  ASSERT_EQ_INT(mt_time_parse_rfc3339("2026-03-29T03:30:00.75+02:00", &t), 0);
  ASSERT_EQ_INT(t, 1774747800);
  ASSERT_EQ_INT(mt_tz_load("Asia/Kolkata", &tz, &err), 0);
  mt_tz_format(tz, t, buf);
  ASSERT_EQ_STR(buf, "2026-03-29T07:00:00+05:30");
  mt_tz_free(tz);
  mt_tz_free(NULL);
  mt_cron_free(NULL);
}

TEST(cron_rate_limit) {
  char b[MT_ERR_MAX];
  /* At most MT_SCHEDULER_MAX_DELAY (100 years) between fires, whatever
   * the unit; no number wraps around on the way. */
  ASSERT_EQ_STR(parse_error("rate(36524 days)", b), "ok");
  ASSERT_EQ_STR(parse_error("rate(876582 hours)", b), "ok");
  ASSERT_EQ_STR(parse_error("rate(52594920 minutes)", b), "ok");
  ASSERT_EQ_STR(parse_error("rate(36525 days)", b),
                "rate: \"36525\" is out of range 1-36524 for days (at most "
                "100 years between fires)");
  ASSERT_EQ_STR(parse_error("rate(99999999999999999999 days)", b),
                "rate: \"99999999999999999999\" is out of range 1-36524 for "
                "days (at most 100 years between fires)");
  ASSERT_TRUE(strstr(parse_error("rate(876583 hours)", b),
                     "out of range 1-876582 for hours") != NULL);
  ASSERT_TRUE(strstr(parse_error("rate(52594921 minute)", b),
                     "out of range 1-52594920 for minute") != NULL);
  ASSERT_TRUE(strstr(parse_error("rate(0 days)", b), "positive") != NULL);
  ASSERT_TRUE(strstr(parse_error("rate(000000000000000000000 days)", b),
                     "positive") != NULL);
}

TEST(cron_next_at_the_end_of_time) {
  char b[MT_ERR_MAX];
  /* A rate() fire past 9999-12-31 cannot be written: the schedule ends. */
  ASSERT_EQ_STR(next_fire("rate(36524 days)", "UTC", "9950-01-01T00:00:00Z", b),
                "the schedule's next fire would be after 9999-12-31T23:59:59, "
                "the last time RFC 3339 can write");
  ASSERT_EQ_STR(next_fire("rate(1 minute)", "UTC", "9999-12-31T23:58:59Z", b),
                "9999-12-31T23:59:59Z");
  ASSERT_TRUE(
      strstr(next_fire("rate(1 minute)", "UTC", "9999-12-31T23:59:00Z", b),
             "after 9999-12-31T23:59:59") != NULL);
  /* Nor past it as wall time in a zone ahead of UTC. */
  ASSERT_TRUE(
      strstr(next_fire("rate(1 hour)", "Asia/Tokyo", "9999-12-31T14:30:00Z", b),
             "after 9999-12-31T23:59:59") != NULL);
  /* Calendar schedules end with their year field (at most 2199). */
  ASSERT_EQ_STR(
      next_fire("cron(0 0 1 1 ? 2199)", "UTC", "2199-06-01T00:00:00Z", b),
      "the schedule has no fire time after the start");
  ASSERT_EQ_STR(next_fire("* * * * *", "UTC", "9999-12-31T23:59:59Z", b),
                "the schedule has no fire time after the start");
  /* A start outside RFC 3339's years is refused, naming the span. */
  ASSERT_TRUE(strstr(next_fire("* * * * *", "UTC", "0000-06-01T00:00:00Z", b),
                     "outside years 0001-9999") != NULL);
}
