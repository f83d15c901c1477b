/*
 * Which fires of a recurring schedule to turn into tasks. Given plain
 * values (the expression, its zone, the catch-up policy, the first fire not
 * yet materialised, the database's clock and a grace period) it answers
 * with the fires to insert and the next fire to wait for; it never touches
 * a database, so the backends keep their SQL and their exactly-once rules
 * (a unique key on schedule and fire time) and only ask this unit for the
 * arithmetic. Plain C, no Lua, no I/O.
 *
 * Ownership: an mt_fires_cache_t is owned by whoever embeds it (one per
 * backend connection, not shared between threads) and holds parsed
 * expressions and loaded zones until mt_fires_cache_clear(). An mt_fires_t
 * is a plain value the caller provides.
 */
#ifndef MT_FIRES_H
#define MT_FIRES_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "scheduler/catch_up.h"
#include "scheduler/cron.h"
#include "scheduler/tz.h"

/* The most fires one schedule materialises at once: the cap on 'all'. */
#define MT_FIRES_MAX 100

/* One due schedule, as the backend read it. */
typedef struct mt_fires_req_s {
  const char *name;       /* the schedule's name: the cache keys on it */
  const char *expression; /* cron or rate expression (scheduler/cron.h) */
  const char *tz;         /* IANA zone its wall-clock fields are read in */
  mt_catch_up_t catch_up;
  int64_t due;  /* first fire not yet materialised (the schedule's
                 * next_fire_at), epoch seconds; -1: never computed */
  double now;   /* the clock that decides what is due: the database's */
  double grace; /* seconds a fire may be late and still run under 'skip' */
} mt_fires_req_t;

/* The answer: fires to materialise and where the schedule goes next. */
typedef struct mt_fires_s {
  int64_t at[MT_FIRES_MAX]; /* epoch seconds, oldest first */
  int n;
  int64_t next; /* the first fire after now; -1 when there is none */
} mt_fires_t;

/* Parsed schedules kept while their definition is unchanged, so that a
 * poll does not reparse every schedule and reread tzdata. Zero-initialise
 * it (MT_FIRES_CACHE_INIT). An entry is keyed by name, expression and zone
 * together: a redefined schedule gets a new entry, and the stale one goes
 * when the cache starts over on reaching MT_FIRES_CACHE_MAX entries. */
typedef struct mt_fires_entry_s {
  char *key; /* name, expression and zone, separated by \x1f */
  mt_cron_t *cron;
  mt_tz_t *tz;
} mt_fires_entry_t;

typedef struct mt_fires_cache_s {
  mt_fires_entry_t *entries;
  size_t count;
} mt_fires_cache_t;

#define MT_FIRES_CACHE_INIT \
  { NULL, 0 }
#define MT_FIRES_CACHE_MAX 256

/* Frees every entry; the cache is empty and usable again. NULL is a no-op. */
void mt_fires_cache_clear(mt_fires_cache_t *cache);

/* Computes req's fires into *out. With req->due < 0 nothing fires and only
 * out->next is computed, from now. Otherwise the fires from req->due up to
 * now are enumerated (the latest ones only, however long the outage) and
 * kept by policy: 'once' the latest, 'all' the latest MT_FIRES_MAX, 'skip'
 * the latest only if it is no older than now - grace.
 *
 * cache may be NULL (the expression and zone are then parsed for this call
 * alone). A bad expression or zone is never cached and is MT_EINVAL with
 * the parser's message; MT_ENOMEM when memory ran out; another error of
 * mt_cron_next() is passed on. out->n is 0 on any error. */
int mt_fires_compute(mt_fires_cache_t *cache, const mt_fires_req_t *req,
                     mt_fires_t *out, mt_err_t *err);

#endif
