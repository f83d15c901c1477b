/*
 * Schedule text from outside: recurring expressions (cron in its three
 * dialects, rate(), the EventBridge forms), as task files, the CLI and
 * `moontask recurring add` pass them, and the one-off forms beside them
 * (a delay such as "1h30m", an RFC 3339 instant). Each input is tried as
 * every one of them.
 *
 * Beyond "no crash", the properties the headers promise:
 *   - a parsed expression's fires come strictly after the start and in
 *     order, inside years 0001-9999, a rate() one exactly its interval
 *     apart (scheduler/cron.h);
 *   - every EventBridge expression mt_ebs_recurring_expression() writes
 *     passes mt_ebs_expression_check(), and moontask reads it back with
 *     the same fires as the expression it came from, in UTC (no DST rule
 *     to differ on) (aws/scheduler.h);
 *   - an RFC 3339 instant in years 0001-9999 reads back from its own text.
 */
#include "fuzz.h"

#include "aws/scheduler.h"
#include "scheduler/catch_up.h"
#include "scheduler/cron.h"
#include "scheduler/scheduler.h"
#include "scheduler/tz.h"

#define FIRES 4

/* Zones loaded once and never changed: UTC, one with DST at 01:00 UTC, and
 * Lord Howe, whose DST shift is half an hour. */
static const char *const zone_names[] = {"UTC", "Europe/Oslo",
                                         "Australia/Lord_Howe"};
#define NZONES (sizeof zone_names / sizeof *zone_names)
static mt_tz_t *zones[NZONES];

/* Starts: a day with a spring-forward gap in Oslo, and one near the end of
 * EventBridge's years. */
static int64_t starts[2];

static void init(void) {
  mt_err_t err;
  for (size_t i = 0; i < NZONES; i++)
    if (mt_tz_load(zone_names[i], &zones[i], &err) != 0) {
      fprintf(stderr, "fuzz_cron: %s (is tzdata installed?)\n", err.msg);
      exit(1);
    }
  if (mt_time_parse_rfc3339("2026-03-29T00:30:00Z", &starts[0]) != 0 ||
      mt_time_parse_rfc3339("2199-12-30T12:00:00Z", &starts[1]) != 0)
    abort();
}

/* Up to FIRES fires of c in tz after start into out; returns how many. */
static int fires(const mt_cron_t *c, const mt_tz_t *tz, int64_t start,
                 int64_t out[FIRES]) {
  mt_err_t err;
  int64_t after = start, next;
  int n = 0;
  while (n < FIRES) {
    int rc = mt_cron_next(c, tz, after, &next, &err);
    if (rc == MT_ENOTFOUND)
      break;
    FUZZ_CHECK(rc == 0, "mt_cron_next: %s", err.msg);
    FUZZ_CHECK(next > after, "fire %lld not after %lld", (long long)next,
               (long long)after);
    FUZZ_CHECK(next <= MT_CRON_TIME_MAX, "fire %lld past year 9999",
               (long long)next);
    if (mt_cron_rate(c) > 0)
      FUZZ_CHECK(next == after + mt_cron_rate(c), "rate fire %lld after %lld",
                 (long long)next, (long long)after);
    out[n++] = after = next;
  }
  return n;
}

static void check_cron(const char *text) {
  mt_err_t err;
  mt_cron_t *c = NULL;
  int64_t got[FIRES];
  if (mt_cron_parse(text, &c, &err) != 0) {
    FUZZ_CHECK(c == NULL, "a refused expression came with a schedule");
    return;
  }
  FUZZ_CHECK(mt_cron_rate(c) >= 0, "negative rate");
  for (size_t z = 0; z < NZONES; z++)
    for (size_t s = 0; s < sizeof starts / sizeof *starts; s++)
      fires(c, zones[z], starts[s], got);

  /* The EventBridge form, where moontask can write one. */
  char eb[MT_EBS_EXPR_MAX];
  if (mt_ebs_recurring_expression(text, eb, &err) == 0) {
    mt_cron_t *back = NULL;
    int64_t want[FIRES];
    FUZZ_CHECK(mt_ebs_expression_check(eb, &err) == 0,
               "\"%s\" wrote \"%s\", which the check refuses: %s", text, eb,
               err.msg);
    FUZZ_CHECK(mt_cron_parse(eb, &back, &err) == 0,
               "\"%s\" wrote \"%s\", which moontask refuses: %s", text, eb,
               err.msg);
    int n = fires(c, zones[0], starts[0], want);
    int m = fires(back, zones[0], starts[0], got);
    FUZZ_CHECK(n == m && memcmp(want, got, (size_t)n * sizeof *got) == 0,
               "\"%s\" and its EventBridge form \"%s\" fire differently "
               "(%d and %d fires, first %lld and %lld)",
               text, eb, n, m, n > 0 ? (long long)want[0] : 0LL,
               m > 0 ? (long long)got[0] : 0LL);
    mt_cron_free(back);
  }
  mt_cron_free(c);
}

static void check_times(const char *text) {
  mt_err_t err;
  double seconds;
  int64_t t, again;
  mt_catch_up_t policy;
  char buf[40];
  if (mt_scheduler_parse_duration(text, &seconds, &err) == 0)
    FUZZ_CHECK(seconds >= 0 && seconds <= MT_SCHEDULER_MAX_DELAY,
               "duration \"%s\" read as %g s", text, seconds);
  if (mt_time_parse_rfc3339(text, &t) == 0 && t >= MT_CRON_TIME_MIN &&
      t <= MT_CRON_TIME_MAX) {
    mt_tz_format(zones[0], t, buf);
    FUZZ_CHECK(mt_time_parse_rfc3339(buf, &again) == 0 && again == t,
               "\"%s\" is %lld, written \"%s\", which does not read back", text,
               (long long)t, buf);
  }
  mt_ebs_expression_check(text, &err);
  mt_catch_up_parse(text, &policy, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  if (!ready) {
    init();
    ready = 1;
  }
  char *text = mt_fuzz_cstr(data, size);
  check_cron(text);
  check_times(text);
  free(text);
  return 0;
}
