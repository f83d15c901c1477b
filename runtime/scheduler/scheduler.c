#include "scheduler/scheduler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int mt_scheduler_parse_duration(const char *s, double *seconds) {
  double total = 0;
  const char *p = s;
  if (*p == '\0')
    return -1;
  while (*p) {
    char *end;
    double n = strtod(p, &end);
    if (end == p || !isfinite(n) || n < 0 || *p == '+' || *p == '-')
      return -1;
    switch (*end) {
    case '\0':
      break;
    case 's':
      end++;
      break;
    case 'm':
      n *= 60, end++;
      break;
    case 'h':
      n *= 3600, end++;
      break;
    case 'd':
      n *= 86400, end++;
      break;
    default:
      return -1;
    }
    total += n;
    p = end;
  }
  *seconds = total;
  return 0;
}

void mt_scheduler_format_epoch(double epoch, char buf[MT_RUN_AT_MAX]) {
  time_t secs = (time_t)epoch;
  int micros = (int)((epoch - (double)secs) * 1e6);
  if (micros < 0) { /* before 1970: keep the fraction positive */
    secs -= 1;
    micros += 1000000;
  }
  struct tm tm;
  gmtime_r(&secs, &tm);
  char day[32];
  strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, MT_RUN_AT_MAX, "%.20s.%06dZ", day, micros);
}

void mt_scheduler_after(double delay, char buf[MT_RUN_AT_MAX]) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  mt_scheduler_format_epoch((double)now.tv_sec + now.tv_nsec / 1e9 + delay,
                            buf);
}
