/*
 * The catch-up policy of a recurring schedule: what happens to the fires
 * missed while no runtime was up. The one parser of its names ('once',
 * 'skip', 'all'), so that the task files, the CLI and the backends agree on
 * them; the database's CHECK constraint on moontask.schedules.catch_up is
 * its own copy of the same rule. scheduler/fires.h applies it.
 */
#ifndef MT_CATCH_UP_H
#define MT_CATCH_UP_H

#include "common/error.h"

typedef enum {
  MT_CATCH_UP_ONCE, /* one task, at the latest missed fire (the default) */
  MT_CATCH_UP_SKIP, /* none; only a fire that is merely late still runs */
  MT_CATCH_UP_ALL   /* one task per missed fire, the latest MT_FIRES_MAX */
} mt_catch_up_t;

/* Reads "once", "skip" or "all" (exactly, lower case) into *out. Anything
 * else is MT_EINVAL with the message `"<s>" is not once, skip or all`, which
 * callers prefix with where the value came from. */
int mt_catch_up_parse(const char *s, mt_catch_up_t *out, mt_err_t *err);

/* The policy's name as mt_catch_up_parse() reads it and the database's
 * catch_up column stores it; "once" for a value outside the enum. */
const char *mt_catch_up_name(mt_catch_up_t policy);

#endif
