#include "scheduler/scheduler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "scheduler/tz.h"

/* The span RFC 3339 text can write: 0001-01-01T00:00:00Z up to (not
 * including) 10000-01-01T00:00:00Z, in epoch seconds. */
#define EPOCH_MIN (-62135596800.0)
#define EPOCH_END 253402300800.0
/* A Gregorian year in seconds, for naming the limit in messages. */
#define YEAR (365.2425 * 86400)

int mt_scheduler_parse_duration(const char *s, double *seconds, mt_err_t *err) {
  double total = 0;
  const char *p = s;
  if (*p == '\0')
    goto not_duration;
  while (*p) {
    char *end;
    double n = strtod(p, &end);
    if (end == p || !isfinite(n) || n < 0 || *p == '+' || *p == '-')
      goto not_duration;
    switch (*end) {
    case '\0': break;
    case 's': end++; break;
    case 'm': n *= 60, end++; break;
    case 'h': n *= 3600, end++; break;
    case 'd': n *= 86400, end++; break;
    default: goto not_duration;
    }
    /* Checked per term, before the sum can reach infinity. */
    total += n;
    if (!(total <= MT_SCHEDULER_MAX_DELAY))
      return mt_err_set(err, MT_EINVAL,
                        "\"%s\" is longer than the limit of %.0f years "
                        "(%.0f seconds)",
                        s, MT_SCHEDULER_MAX_DELAY / YEAR,
                        MT_SCHEDULER_MAX_DELAY);
    p = end;
  }
  *seconds = total;
  return 0;
not_duration:
  return mt_err_set(err, MT_EINVAL,
                    "\"%s\" is not a duration (e.g. 90s, 15m, 2h, 1d)", s);
}

int mt_scheduler_format_epoch(double epoch, char buf[MT_RUN_AT_MAX]) {
  buf[0] = '\0';
  /* The negated test also refuses NaN. */
  if (!(epoch >= EPOCH_MIN && epoch < EPOCH_END))
    return MT_EINVAL;
  /* Whole seconds round down, so the fraction is never negative; the
   * calendar is our own (tz.c), not gmtime() and strftime(), whose %Y
   * writes year 1 as "1" rather than "0001". */
  double whole = floor(epoch);
  int64_t secs = (int64_t)whole;
  int micros = (int)((epoch - whole) * 1e6);
  if (micros > 999999) /* cannot happen, but a digit too many would */
    micros = 999999;
  int64_t days = secs / 86400, sod = secs % 86400, y;
  if (sod < 0)
    days -= 1, sod += 86400;
  int m, d;
  mt__civil_from_days(days, &y, &m, &d);
  snprintf(buf, MT_RUN_AT_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", (int)y, m,
           d, (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), micros);
  return 0;
}

int mt_scheduler_after(double delay, char buf[MT_RUN_AT_MAX]) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return mt_scheduler_format_epoch(
      (double)now.tv_sec + (double)now.tv_nsec / 1e9 + delay, buf);
}
