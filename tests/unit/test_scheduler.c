/* One-off scheduling: durations and instants. */
#include <math.h>

#include "scheduler/scheduler.h"
#include "test.h"

TEST(scheduler_parses_durations) {
  double s;
  mt_err_t err;
  ASSERT_EQ_INT(0, mt_scheduler_parse_duration("90", &s, &err));
  ASSERT_TRUE(s == 90);
  ASSERT_EQ_INT(0, mt_scheduler_parse_duration("1h30m", &s, &err));
  ASSERT_TRUE(s == 5400);
  ASSERT_EQ_INT(0, mt_scheduler_parse_duration("1.5s", &s, &err));
  ASSERT_TRUE(s == 1.5);
  ASSERT_EQ_INT(0, mt_scheduler_parse_duration("2d", &s, &err));
  ASSERT_TRUE(s == 172800);
  ASSERT_EQ_INT(MT_EINVAL, mt_scheduler_parse_duration("", &s, &err));
  ASSERT_EQ_INT(MT_EINVAL, mt_scheduler_parse_duration("soon", &s, &err));
  ASSERT_EQ_STR(err.msg, "\"soon\" is not a duration (e.g. 90s, 15m, 2h, 1d)");
  ASSERT_EQ_INT(MT_EINVAL, mt_scheduler_parse_duration("5x", &s, &err));
  ASSERT_EQ_INT(MT_EINVAL, mt_scheduler_parse_duration("-5m", &s, &err));
}

TEST(scheduler_duration_limit) {
  double s;
  mt_err_t err;
  /* Exactly the limit is allowed, a second more is not. */
  ASSERT_EQ_INT(0, mt_scheduler_parse_duration("3155695200", &s, &err));
  ASSERT_TRUE(s == MT_SCHEDULER_MAX_DELAY);
  ASSERT_EQ_INT(0, mt_scheduler_parse_duration("36524d", &s, &err));
  ASSERT_EQ_INT(MT_EINVAL,
                mt_scheduler_parse_duration("3155695201s", &s, &err));
  ASSERT_EQ_STR(err.msg, "\"3155695201s\" is longer than the limit of 100 "
                         "years (3155695200 seconds)");
  ASSERT_EQ_INT(MT_EINVAL,
                mt_scheduler_parse_duration("25000000000h", &s, &err));
  ASSERT_EQ_INT(MT_EINVAL,
                mt_scheduler_parse_duration("99999999999999999999d", &s, &err));
  ASSERT_TRUE(strstr(err.msg, "limit of 100 years") != NULL);
  /* Terms that overflow a double in their sum, or one by one. */
  ASSERT_EQ_INT(MT_EINVAL,
                mt_scheduler_parse_duration("1e308d1e308d", &s, &err));
  ASSERT_EQ_INT(MT_EINVAL, mt_scheduler_parse_duration("36524d1d", &s, &err));
  ASSERT_EQ_INT(MT_EINVAL, mt_scheduler_parse_duration("infd", &s, &err));
  ASSERT_EQ_INT(MT_EINVAL, mt_scheduler_parse_duration("nan", &s, &err));
}

TEST(scheduler_formats_epochs_as_rfc3339) {
  char buf[MT_RUN_AT_MAX];
  ASSERT_EQ_INT(0, mt_scheduler_format_epoch(0, buf));
  ASSERT_EQ_STR("1970-01-01T00:00:00.000000Z", buf);
  ASSERT_EQ_INT(0, mt_scheduler_format_epoch(1795000000.25, buf));
  ASSERT_EQ_STR("2026-11-18T11:06:40.250000Z", buf);
  ASSERT_EQ_INT(0, mt_scheduler_format_epoch(-0.5, buf));
  ASSERT_EQ_STR("1969-12-31T23:59:59.500000Z", buf);
  /* The ends of four-digit years, both written in full. */
  ASSERT_EQ_INT(0, mt_scheduler_format_epoch(-62135596800.0, buf));
  ASSERT_EQ_STR("0001-01-01T00:00:00.000000Z", buf);
  ASSERT_EQ_INT(0, mt_scheduler_format_epoch(253402300799.0, buf));
  ASSERT_EQ_STR("9999-12-31T23:59:59.000000Z", buf);
}

TEST(scheduler_format_refuses_what_it_cannot_write) {
  /* Any double: never garbled text, "" and an error instead. */
  static const double bad[] = {253402300800.0, -62135596801.0, 1e20,
                               -1e20,          1e308,          -1e308};
  char buf[MT_RUN_AT_MAX];
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    buf[0] = 'x';
    ASSERT_EQ_INT(MT_EINVAL, mt_scheduler_format_epoch(bad[i], buf));
    ASSERT_EQ_STR("", buf);
  }
  ASSERT_EQ_INT(MT_EINVAL, mt_scheduler_format_epoch(NAN, buf));
  ASSERT_EQ_INT(MT_EINVAL, mt_scheduler_format_epoch(INFINITY, buf));
  ASSERT_EQ_INT(MT_EINVAL, mt_scheduler_format_epoch(-INFINITY, buf));
  ASSERT_EQ_STR("", buf);
  ASSERT_EQ_INT(MT_EINVAL, mt_scheduler_after(1e12, buf));
  ASSERT_EQ_INT(0, mt_scheduler_after(MT_SCHEDULER_MAX_DELAY, buf));
  ASSERT_TRUE(strlen(buf) == 27 && buf[4] == '-' && buf[26] == 'Z');
}
