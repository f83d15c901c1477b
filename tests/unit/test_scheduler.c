/* One-off scheduling: durations and instants. */
#include "scheduler/scheduler.h"
#include "test.h"

TEST(scheduler_parses_durations) {
  double s;
  ASSERT_EQ_INT(0, mt_scheduler_parse_duration("90", &s));
  ASSERT_TRUE(s == 90);
  ASSERT_EQ_INT(0, mt_scheduler_parse_duration("1h30m", &s));
  ASSERT_TRUE(s == 5400);
  ASSERT_EQ_INT(0, mt_scheduler_parse_duration("1.5s", &s));
  ASSERT_TRUE(s == 1.5);
  ASSERT_EQ_INT(0, mt_scheduler_parse_duration("2d", &s));
  ASSERT_TRUE(s == 172800);
  ASSERT_EQ_INT(-1, mt_scheduler_parse_duration("", &s));
  ASSERT_EQ_INT(-1, mt_scheduler_parse_duration("soon", &s));
  ASSERT_EQ_INT(-1, mt_scheduler_parse_duration("5x", &s));
  ASSERT_EQ_INT(-1, mt_scheduler_parse_duration("-5m", &s));
}

TEST(scheduler_formats_epochs_as_rfc3339) {
  char buf[MT_RUN_AT_MAX];
  mt_scheduler_format_epoch(0, buf);
  ASSERT_EQ_STR("1970-01-01T00:00:00.000000Z", buf);
  mt_scheduler_format_epoch(1795000000.25, buf);
  ASSERT_EQ_STR("2026-11-18T11:06:40.250000Z", buf);
}
