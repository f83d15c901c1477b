/*
 * TaskScheduler: when a task should run. For one-off tasks that is an
 * instant given as RFC 3339 text, epoch seconds, or a delay from now, all
 * normalised here to the RFC 3339 text that moontask.schedule() takes.
 * Recurring schedules live beside it: cron.h parses expressions and finds
 * the next fire, fires.h decides which fires a runtime materialises. Plain
 * C, no I/O; the caller owns every buffer.
 */
#ifndef MT_SCHEDULER_H
#define MT_SCHEDULER_H

#include <stddef.h>

#include "common/error.h"

/* Big enough for "2026-11-27T17:20:01.123456Z". */
#define MT_RUN_AT_MAX 40

/* The longest delay from now, and the longest interval between two fires
 * of a rate() schedule: 100 Gregorian years (365.2425 days), in seconds.
 * Nothing real waits longer, so a bigger number is a typo or an attack; and
 * a bound this size keeps now + delay far inside both the four-digit years
 * RFC 3339 text can write (up to 9999) and PostgreSQL's timestamptz (up to
 * year 294276), with every whole second exact in a double. */
#define MT_SCHEDULER_MAX_DELAY 3155695200.0

/* Parses "90", "90s", "15m", "2h", "1d", "1h30m" into seconds. Returns 0;
 * MT_EINVAL when s is not a duration, or when it is longer than
 * MT_SCHEDULER_MAX_DELAY, with a message quoting s (and the limit). */
int mt_scheduler_parse_duration(const char *s, double *seconds, mt_err_t *err);

/* Formats epoch seconds as RFC 3339 in UTC with microseconds. Any double is
 * safe: an instant outside years 0001-9999 (RFC 3339 has four-digit years),
 * NaN or an infinity writes "" and returns MT_EINVAL; otherwise 0. */
int mt_scheduler_format_epoch(double epoch, char buf[MT_RUN_AT_MAX]);

/* The instant `delay` seconds from now, as RFC 3339; "" and MT_EINVAL when
 * it is not writable (see mt_scheduler_format_epoch). */
int mt_scheduler_after(double delay, char buf[MT_RUN_AT_MAX]);

#endif
