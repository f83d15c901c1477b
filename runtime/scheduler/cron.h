/*
 * Recurring schedules: parses cron and rate expressions and computes the
 * next fire instant in an IANA time zone. Plain C, no Lua, no I/O, no
 * process-wide state: a parsed mt_cron_t and a loaded mt_tz_t are immutable,
 * so any number of threads may call mt_cron_next() on them at once. The
 * caller owns both and frees them.
 *
 * The dialect is told by the form of the expression: `cron(...)` and
 * `rate(...)` are EventBridge; six fields are Unix cron with a leading
 * seconds field; five fields or an @macro are classic Unix (Vixie) cron.
 * Semantics, including the DST rule (a wall time inside a spring-forward gap
 * fires once, shifted past the gap; a time repeated by a fall-back fires once
 * unless the hour field is `*`, in which case both passes fire), are those of
 * ../shared/conformance/cron/README.md.
 */
#ifndef MT_CRON_H
#define MT_CRON_H

#include <stdint.h>

#include "common/error.h"
#include "scheduler/tz.h"

typedef struct mt_cron_s mt_cron_t;

/* The instants RFC 3339 text can write, years 0001-9999, in epoch seconds:
 * mt_cron_next() takes a start and gives answers only in this span. */
#define MT_CRON_TIME_MIN (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define MT_CRON_TIME_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */

/* Parses expr. A bad expression is refused with MT_EINVAL and a message
 * naming the field and the token that are wrong, e.g.
 * `minute: "60" is out of range 0-59`. A rate() interval may be at most
 * MT_SCHEDULER_MAX_DELAY (scheduler/scheduler.h). */
int mt_cron_parse(const char *expr, mt_cron_t **out, mt_err_t *err);
void mt_cron_free(mt_cron_t *c);

/* The seconds between two fires of a rate() schedule, or 0 for a cron
 * one: a rate is anchored at its previous fire rather than at wall-clock
 * fields, and the catch-up arithmetic (scheduler/fires.h) must know. */
int64_t mt_cron_rate(const mt_cron_t *c);

/* The first fire strictly after `after` (epoch seconds, UTC) with wall-clock
 * fields read in tz. Returns 0 and *next, or MT_ENOTFOUND when there is none
 * (a year list in the past, an impossible date such as Feb 30, a rate()
 * fire past year 9999). rate() schedules are anchored at `after`: the
 * answer is after + the interval. A start outside MT_CRON_TIME_MIN..MAX is
 * MT_EINVAL. */
int mt_cron_next(const mt_cron_t *c, const mt_tz_t *tz, int64_t after,
                 int64_t *next, mt_err_t *err);

#endif
