/*
 * TaskScheduler: when a task should run. For one-off tasks that is an
 * instant given as RFC 3339 text, epoch seconds, or a delay from now, all
 * normalised here to the RFC 3339 text that moontask.schedule() takes.
 * (Recurring schedules will live here too.) Plain C, no I/O.
 */
#ifndef MT_SCHEDULER_H
#define MT_SCHEDULER_H

#include <stddef.h>

/* Big enough for "2026-11-27T17:20:01.123456Z". */
#define MT_RUN_AT_MAX 40

/* Parses "90", "90s", "15m", "2h", "1d", "1h30m" into seconds. Returns 0,
 * or -1 when s is not a duration. */
int mt_scheduler_parse_duration(const char *s, double *seconds);

/* Formats epoch seconds as RFC 3339 in UTC with microseconds. */
void mt_scheduler_format_epoch(double epoch, char buf[MT_RUN_AT_MAX]);

/* The instant `delay` seconds from now, as RFC 3339. */
void mt_scheduler_after(double delay, char buf[MT_RUN_AT_MAX]);

#endif
