/* The catch-up arithmetic of recurring schedules (scheduler/fires.h),
 * without a database: which fires a runtime materialises after a gap under
 * each policy, the cap on 'all', the grace of 'skip', rate() anchoring, DST
 * through the zone code, and the cache of parsed schedules. */
#include <stdint.h>
#include <string.h>

#include "scheduler/fires.h"
#include "test.h"

/* Epoch seconds of RFC 3339 text; a typo in a test fails the test. */
static int64_t at(const char *text) {
  int64_t t;
  if (mt_time_parse_rfc3339(text, &t) != 0)
    MT__FAIL("bad time in test: %s", text);
  return t;
}

/* A request for schedule "s" in `zone`, first fire due at `due`, now at
 * `now` (both RFC 3339), a grace of one second. */
static mt_fires_req_t req_of(const char *expr, const char *zone,
                             mt_catch_up_t policy, const char *due,
                             const char *now) {
  mt_fires_req_t r = {.name = "s",
                      .expression = expr,
                      .tz = zone,
                      .catch_up = policy,
                      .due = due ? at(due) : -1,
                      .now = (double)at(now),
                      .grace = 1};
  return r;
}

static mt_fires_t compute_ok(const mt_fires_req_t *r) {
  mt_fires_t f;
  mt_err_t err = {{0}};
  int rc = mt_fires_compute(NULL, r, &f, &err);
  if (rc != 0)
    MT__FAIL("mt_fires_compute: %d %s", rc, err.msg);
  return f;
}

TEST(fires_catch_up_names) {
  static const char *const names[] = {"once", "skip", "all"};
  static const mt_catch_up_t values[] = {MT_CATCH_UP_ONCE, MT_CATCH_UP_SKIP,
                                         MT_CATCH_UP_ALL};
  for (int i = 0; i < 3; i++) {
    mt_catch_up_t p = (mt_catch_up_t)-1;
    ASSERT_EQ_INT(mt_catch_up_parse(names[i], &p, NULL), 0);
    ASSERT_EQ_INT(p, values[i]);
    ASSERT_EQ_STR(mt_catch_up_name(values[i]), names[i]);
  }
  /* Exact names only: the database's CHECK would refuse the others. */
  static const char *const bad[] = {"ONCE", "", "all ", "sometimes"};
  for (int i = 0; i < 4; i++) {
    mt_err_t err = {{0}};
    mt_catch_up_t p = MT_CATCH_UP_SKIP;
    ASSERT_EQ_INT(mt_catch_up_parse(bad[i], &p, &err), MT_EINVAL);
    ASSERT_EQ_INT(p, MT_CATCH_UP_SKIP); /* untouched on error */
  }
  mt_err_t err = {{0}};
  mt_catch_up_t p;
  mt_catch_up_parse("sometimes", &p, &err);
  ASSERT_EQ_STR(err.msg, "\"sometimes\" is not once, skip or all");
}

TEST(fires_once_after_a_gap_runs_the_latest_missed_fire) {
  mt_fires_req_t r = req_of("0 * * * *", "UTC", MT_CATCH_UP_ONCE,
                            "2026-05-04T10:00:00Z", "2026-05-04T15:30:00Z");
  mt_fires_t f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 1);
  ASSERT_EQ_INT(f.at[0], at("2026-05-04T15:00:00Z"));
  ASSERT_EQ_INT(f.next, at("2026-05-04T16:00:00Z"));
}

TEST(fires_skip_after_a_gap_runs_nothing) {
  mt_fires_req_t r = req_of("0 * * * *", "UTC", MT_CATCH_UP_SKIP,
                            "2026-05-04T10:00:00Z", "2026-05-04T15:30:00Z");
  mt_fires_t f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 0);
  /* The schedule still moves on. */
  ASSERT_EQ_INT(f.next, at("2026-05-04T16:00:00Z"));
}

TEST(fires_all_after_a_gap_runs_each_missed_fire) {
  mt_fires_req_t r = req_of("0 * * * *", "UTC", MT_CATCH_UP_ALL,
                            "2026-05-04T10:00:00Z", "2026-05-04T15:30:00Z");
  mt_fires_t f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 6);
  for (int i = 0; i < 6; i++)
    ASSERT_EQ_INT(f.at[i], at("2026-05-04T10:00:00Z") + i * 3600);
  ASSERT_EQ_INT(f.next, at("2026-05-04T16:00:00Z"));
}

TEST(fires_on_time_fire_runs_under_every_policy) {
  static const mt_catch_up_t all[] = {MT_CATCH_UP_ONCE, MT_CATCH_UP_SKIP,
                                      MT_CATCH_UP_ALL};
  for (int i = 0; i < 3; i++) {
    mt_fires_req_t r = req_of("*/5 * * * *", "UTC", all[i],
                              "2026-05-04T10:05:00Z", "2026-05-04T10:05:00Z");
    mt_fires_t f = compute_ok(&r);
    ASSERT_EQ_INT(f.n, 1);
    ASSERT_EQ_INT(f.at[0], at("2026-05-04T10:05:00Z"));
    ASSERT_EQ_INT(f.next, at("2026-05-04T10:10:00Z"));
  }
}

TEST(fires_all_is_capped_at_the_latest_hundred) {
  /* A day of missed minutes: only the latest MT_FIRES_MAX, oldest first,
   * ending at the minute now is in. */
  mt_fires_req_t r = req_of("* * * * *", "UTC", MT_CATCH_UP_ALL,
                            "2026-05-03T12:00:00Z", "2026-05-04T12:00:30Z");
  mt_fires_t f = compute_ok(&r);
  int64_t last = at("2026-05-04T12:00:00Z");
  ASSERT_EQ_INT(MT_FIRES_MAX, 100);
  ASSERT_EQ_INT(f.n, MT_FIRES_MAX);
  ASSERT_EQ_INT(f.at[0], last - 99 * 60);
  ASSERT_EQ_INT(f.at[f.n - 1], last);
  for (int i = 1; i < f.n; i++)
    ASSERT_EQ_INT(f.at[i] - f.at[i - 1], 60);
  ASSERT_EQ_INT(f.next, last + 60);
}

TEST(fires_skip_runs_a_fire_late_by_less_than_grace) {
  /* The loop may have been busy: a fire found within `grace` of its time
   * is late, not missed. */
  mt_fires_req_t r = req_of("0 * * * *", "UTC", MT_CATCH_UP_SKIP,
                            "2026-05-04T15:00:00Z", "2026-05-04T15:00:00Z");
  r.now += 0.75;
  mt_fires_t f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 1);
  ASSERT_EQ_INT(f.at[0], at("2026-05-04T15:00:00Z"));
  /* Exactly at the edge of the grace still counts. */
  r.now = (double)at("2026-05-04T15:00:03Z");
  r.grace = 3;
  f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 1);
  /* Past it, the fire is missed. */
  r.now = (double)at("2026-05-04T15:00:03Z") + 0.25;
  f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 0);
  ASSERT_EQ_INT(f.next, at("2026-05-04T16:00:00Z"));
  /* 'once' does not look at the grace. */
  r.catch_up = MT_CATCH_UP_ONCE;
  f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 1);
  ASSERT_EQ_INT(f.at[0], at("2026-05-04T15:00:00Z"));
}

TEST(fires_never_computed_only_finds_the_next_fire) {
  mt_fires_req_t r =
      req_of("0 * * * *", "UTC", MT_CATCH_UP_ALL, NULL, "2026-05-04T15:00:00Z");
  mt_fires_t f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 0);
  /* Strictly after now, even when now is itself a fire time. */
  ASSERT_EQ_INT(f.next, at("2026-05-04T16:00:00Z"));
}

TEST(fires_rate_stays_anchored_at_its_fires) {
  /* 1000 minutes down on a 5-minute rate: 200 intervals, and now is 30 s
   * past the latest. The fires keep the anchor of the schedule's own
   * fires, not of the clock. */
  int64_t d = at("2026-05-04T10:02:17Z");
  mt_fires_req_t r = {.name = "s",
                      .expression = "rate(5 minutes)",
                      .tz = "UTC",
                      .catch_up = MT_CATCH_UP_ALL,
                      .due = d,
                      .now = (double)(d + 1000 * 60 + 30),
                      .grace = 1};
  mt_fires_t f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, MT_FIRES_MAX);
  ASSERT_EQ_INT(f.at[0], d + 101 * 300);
  ASSERT_EQ_INT(f.at[f.n - 1], d + 200 * 300);
  ASSERT_EQ_INT(f.next, d + 201 * 300);
  r.catch_up = MT_CATCH_UP_ONCE;
  f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 1);
  ASSERT_EQ_INT(f.at[0], d + 200 * 300);
  ASSERT_EQ_INT(f.next, d + 201 * 300);
  r.catch_up = MT_CATCH_UP_SKIP;
  f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 0);
  ASSERT_EQ_INT(f.next, d + 201 * 300);
  /* ...unless the latest is within the grace. */
  r.grace = 30;
  f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 1);
  ASSERT_EQ_INT(f.at[0], d + 200 * 300);
}

TEST(fires_rate_with_leading_blank_is_still_a_rate) {
  /* The parsed form decides, not the text: a tab before rate( once sent
   * the arithmetic down the wall-clock path. */
  int64_t d = at("2026-05-04T10:02:17Z");
  mt_fires_req_t r = {.name = "s",
                      .expression = "\trate(1 hour)",
                      .tz = "UTC",
                      .catch_up = MT_CATCH_UP_ONCE,
                      .due = d,
                      .now = (double)(d + 3 * 86400 + 60),
                      .grace = 1};
  mt_fires_t f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 1);
  ASSERT_EQ_INT(f.at[0], d + 72 * 3600);
  ASSERT_EQ_INT(f.next, d + 73 * 3600);
}

TEST(fires_schedule_that_ended) {
  /* The one fire of a year list in the past still runs under 'once'; then
   * there is no next fire. */
  mt_fires_req_t r = req_of("cron(0 12 1 1 ? 2020)", "UTC", MT_CATCH_UP_ONCE,
                            "2020-01-01T12:00:00Z", "2026-05-04T15:00:00Z");
  mt_fires_t f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 1);
  ASSERT_EQ_INT(f.at[0], at("2020-01-01T12:00:00Z"));
  ASSERT_EQ_INT(f.next, -1);
}

TEST(fires_all_through_a_fall_back_overlap) {
  /* Oslo, 2026-10-25: 03:00 CEST goes back to 02:00 CET. With the hour
   * `*`, 02:30 fires on both passes; with a fixed hour, on the first. */
  mt_fires_req_t r =
      req_of("30 * * * *", "Europe/Oslo", MT_CATCH_UP_ALL,
             "2026-10-25T01:30:00+02:00", "2026-10-25T03:45:00+01:00");
  mt_fires_t f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 4);
  ASSERT_EQ_INT(f.at[0], at("2026-10-24T23:30:00Z"));
  ASSERT_EQ_INT(f.at[1], at("2026-10-25T02:30:00+02:00"));
  ASSERT_EQ_INT(f.at[2], at("2026-10-25T02:30:00+01:00"));
  ASSERT_EQ_INT(f.at[3], at("2026-10-25T03:30:00+01:00"));
  ASSERT_EQ_INT(f.next, at("2026-10-25T04:30:00+01:00"));

  r = req_of("30 2 * * *", "Europe/Oslo", MT_CATCH_UP_ALL,
             "2026-10-24T02:30:00+02:00", "2026-10-25T04:00:00+01:00");
  f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 2);
  ASSERT_EQ_INT(f.at[0], at("2026-10-24T02:30:00+02:00"));
  ASSERT_EQ_INT(f.at[1], at("2026-10-25T02:30:00+02:00"));
  ASSERT_EQ_INT(f.next, at("2026-10-26T02:30:00+01:00"));
}

TEST(fires_all_through_a_spring_forward_gap) {
  /* Oslo, 2026-03-29: 02:00 CET jumps to 03:00 CEST, so 02:30 does not
   * exist that day; it fires once, shifted past the gap, at 03:30 CEST. */
  mt_fires_req_t r =
      req_of("30 2 * * *", "Europe/Oslo", MT_CATCH_UP_ALL,
             "2026-03-28T02:30:00+01:00", "2026-03-29T14:00:00+02:00");
  mt_fires_t f = compute_ok(&r);
  ASSERT_EQ_INT(f.n, 2);
  ASSERT_EQ_INT(f.at[0], at("2026-03-28T02:30:00+01:00"));
  ASSERT_EQ_INT(f.at[1], at("2026-03-29T03:30:00+02:00"));
  ASSERT_EQ_INT(f.next, at("2026-03-30T02:30:00+02:00"));
}

TEST(fires_bad_definition_is_an_error) {
  mt_err_t err = {{0}};
  mt_fires_t f;
  mt_fires_req_t r = req_of("61 * * * *", "UTC", MT_CATCH_UP_ONCE,
                            "2026-05-04T10:00:00Z", "2026-05-04T15:30:00Z");
  ASSERT_EQ_INT(mt_fires_compute(NULL, &r, &f, &err), MT_EINVAL);
  ASSERT_EQ_STR(err.msg, "minute: \"61\" is out of range 0-59");
  ASSERT_EQ_INT(f.n, 0);
  r.expression = "0 * * * *";
  r.tz = "Nowhere/Atlantis";
  ASSERT_EQ_INT(mt_fires_compute(NULL, &r, &f, &err), MT_EINVAL);
  ASSERT_TRUE(strstr(err.msg, "Nowhere/Atlantis") != NULL);
  ASSERT_EQ_INT(f.n, 0);
}

TEST(fires_cache_follows_a_changed_expression) {
  mt_fires_cache_t cache = MT_FIRES_CACHE_INIT;
  mt_err_t err = {{0}};
  mt_fires_t f;
  mt_fires_req_t r = req_of("0 * * * *", "UTC", MT_CATCH_UP_ONCE,
                            "2026-05-04T10:00:00Z", "2026-05-04T15:30:00Z");
  ASSERT_EQ_INT(mt_fires_compute(&cache, &r, &f, &err), 0);
  ASSERT_EQ_INT(cache.count, 1);
  ASSERT_EQ_INT(f.at[0], at("2026-05-04T15:00:00Z"));
  /* The same definition again is a hit, not a second entry. */
  ASSERT_EQ_INT(mt_fires_compute(&cache, &r, &f, &err), 0);
  ASSERT_EQ_INT(cache.count, 1);
  /* Redefined under the same name: the new expression decides at once. */
  r.expression = "15 * * * *";
  ASSERT_EQ_INT(mt_fires_compute(&cache, &r, &f, &err), 0);
  ASSERT_EQ_INT(cache.count, 2);
  ASSERT_EQ_INT(f.n, 1);
  ASSERT_EQ_INT(f.at[0], at("2026-05-04T15:15:00Z"));
  ASSERT_EQ_INT(f.next, at("2026-05-04T16:15:00Z"));
  /* And so does a new zone. */
  r.tz = "Europe/Oslo";
  ASSERT_EQ_INT(mt_fires_compute(&cache, &r, &f, &err), 0);
  ASSERT_EQ_INT(cache.count, 3);
  ASSERT_EQ_INT(f.next, at("2026-05-04T16:15:00Z")); /* whole-hour offset */
  /* A bad redefinition is refused every time and never cached. */
  r.expression = "0 25 * * *";
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ_INT(mt_fires_compute(&cache, &r, &f, &err), MT_EINVAL);
    ASSERT_EQ_INT(cache.count, 3);
  }
  mt_fires_cache_clear(&cache);
  ASSERT_EQ_INT(cache.count, 0);
  ASSERT_TRUE(cache.entries == NULL);
  mt_fires_cache_clear(&cache); /* an empty cache clears again */
  mt_fires_cache_clear(NULL);
}

TEST(fires_cache_starts_over_when_full) {
  mt_fires_cache_t cache = MT_FIRES_CACHE_INIT;
  mt_err_t err = {{0}};
  mt_fires_t f;
  char name[32];
  mt_fires_req_t r = req_of("0 * * * *", "UTC", MT_CATCH_UP_ONCE,
                            "2026-05-04T10:00:00Z", "2026-05-04T15:30:00Z");
  r.name = name;
  for (int i = 0; i < MT_FIRES_CACHE_MAX; i++) {
    snprintf(name, sizeof name, "s%d", i);
    ASSERT_EQ_INT(mt_fires_compute(&cache, &r, &f, &err), 0);
  }
  ASSERT_EQ_INT(cache.count, MT_FIRES_CACHE_MAX);
  /* Removed and redefined schedules must not pile up: one more starts the
   * cache over with just the new entry, which still answers right. */
  snprintf(name, sizeof name, "one more");
  ASSERT_EQ_INT(mt_fires_compute(&cache, &r, &f, &err), 0);
  ASSERT_EQ_INT(cache.count, 1);
  ASSERT_EQ_INT(f.n, 1);
  ASSERT_EQ_INT(f.at[0], at("2026-05-04T15:00:00Z"));
  mt_fires_cache_clear(&cache);
}
