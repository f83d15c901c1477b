#include "scheduler/fires.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

/* ---- the cache of parsed schedules -------------------------------------- */

void mt_fires_cache_clear(mt_fires_cache_t *cache) {
  if (cache == NULL)
    return;
  for (size_t i = 0; i < cache->count; i++) {
    free(cache->entries[i].key);
    mt_cron_free(cache->entries[i].cron);
    mt_tz_free(cache->entries[i].tz);
  }
  free(cache->entries);
  cache->entries = NULL;
  cache->count = 0;
}

/* Finds or makes the parsed form of req's schedule. The entry stays valid
 * until the next call or mt_fires_cache_clear(): growing the array moves
 * it. A bad expression or zone is not cached: the backend marks the
 * schedule with the error and does not look at it again until it is
 * redefined, so there is nothing to gain from remembering the failure. */
static int cache_get(mt_fires_cache_t *cache, const mt_fires_req_t *req,
                     const mt_fires_entry_t **out, mt_err_t *err) {
  mt_buf_t key = MT_BUF_INIT;
  mt_fires_entry_t e = {0};
  int rc;
  if (mt_buf_printf(&key, "%s\x1f%s\x1f%s", req->name, req->expression,
                    req->tz) != 0) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto fail;
  }
  for (size_t i = 0; i < cache->count; i++) {
    if (strcmp(cache->entries[i].key, key.data) == 0) {
      *out = &cache->entries[i];
      mt_buf_free(&key);
      return 0;
    }
  }
  if ((rc = mt_cron_parse(req->expression, &e.cron, err)) != 0 ||
      (rc = mt_tz_load(req->tz, &e.tz, err)) != 0)
    goto fail;
  /* Schedules that were removed or redefined must not pile up in a
   * long-lived runtime; starting over costs one reparse per schedule. */
  if (cache->count >= MT_FIRES_CACHE_MAX)
    mt_fires_cache_clear(cache);
  mt_fires_entry_t *grown =
      realloc(cache->entries, (cache->count + 1) * sizeof *grown);
  if (grown == NULL) {
    rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    goto fail;
  }
  cache->entries = grown;
  e.key = key.data;
  cache->entries[cache->count] = e;
  *out = &cache->entries[cache->count++];
  return 0;
fail:
  mt_buf_free(&key);
  mt_cron_free(e.cron);
  mt_tz_free(e.tz);
  return rc;
}

/* ---- the arithmetic ------------------------------------------------------ */

/* Enumerates the fires from *f (itself a fire) up to now, keeping the
 * latest `keep` in ring (slot total % keep). *f ends on the first fire after
 * now, or -1 when the schedule has none. */
static int scan_fires(const mt_cron_t *cron, const mt_tz_t *tz, int64_t *f,
                      int64_t now, int keep, int64_t *ring, long *total,
                      mt_err_t *err) {
  *total = 0;
  while (*f <= now) {
    ring[*total % keep] = *f;
    (*total)++;
    int rc = mt_cron_next(cron, tz, *f, f, err);
    if (rc == MT_ENOTFOUND) {
      *f = -1;
      return 0;
    }
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* The fires of one due schedule under its catch-up policy; see
 * mt_fires_compute(). */
static int compute(const mt_cron_t *cron, const mt_tz_t *tz,
                   const mt_fires_req_t *req, mt_fires_t *out, mt_err_t *err) {
  int64_t now = (int64_t)floor(req->now), first = req->due;
  /* Widening windows back from now: a long outage of a frequent schedule
   * needs only the latest fires, not a walk over every missed one. */
  static const int64_t windows[] = {60,         3600,        86400,
                                    32 * 86400, 367 * 86400, 0};
  int64_t ring[MT_FIRES_MAX];
  int keep = req->catch_up == MT_CATCH_UP_ALL ? MT_FIRES_MAX : 1;
  long total = 0;
  int rc = 0;
  if (first < 0) {
    rc = mt_cron_next(cron, tz, now, &out->next, err);
    if (rc == MT_ENOTFOUND) {
      out->next = -1;
      rc = 0;
    }
    return rc;
  }
  if (mt_cron_rate(cron) > 0) {
    /* A rate is anchored at its previous fire, so a window cannot start
     * anywhere: skip whole intervals instead. */
    int64_t second;
    if ((rc = mt_cron_next(cron, tz, first, &second, err)) != 0)
      return rc;
    int64_t step = second - first;
    if (step > 0 && (now - first) / step > keep)
      first += ((now - first) / step - keep) * step;
    out->next = first;
    rc = scan_fires(cron, tz, &out->next, now, keep, ring, &total, err);
  } else {
    for (size_t w = 0; w < sizeof windows / sizeof *windows; w++) {
      int64_t f = first;
      if (windows[w] != 0 && now - windows[w] > first) {
        rc = mt_cron_next(cron, tz, now - windows[w], &f, err);
        if (rc == MT_ENOTFOUND)
          continue;
        if (rc != 0)
          return rc;
      }
      int64_t start = f;
      if ((rc = scan_fires(cron, tz, &f, now, keep, ring, &total, err)) != 0)
        return rc;
      out->next = f;
      /* Enough fires in this window, or it reached back to the first one
       * due, so a wider window could add nothing. */
      if (total >= keep || start == first)
        break;
    }
  }
  if (rc != 0 || total == 0)
    return rc;
  int64_t latest = ring[(total - 1) % keep];
  if (keep > 1) {
    long kept = total < keep ? total : keep;
    for (long j = 0; j < kept; j++)
      out->at[out->n++] = ring[(total - kept + j) % keep];
  } else if (req->catch_up != MT_CATCH_UP_SKIP ||
             (double)latest >= req->now - req->grace) {
    /* 'once' runs the latest missed fire; 'skip' only a fire that is
     * merely late, not missed. */
    out->at[out->n++] = latest;
  }
  return 0;
}

int mt_fires_compute(mt_fires_cache_t *cache, const mt_fires_req_t *req,
                     mt_fires_t *out, mt_err_t *err) {
  mt_fires_entry_t own = {0};
  const mt_fires_entry_t *s = &own;
  int rc;
  out->n = 0;
  out->next = -1;
  if (cache != NULL)
    rc = cache_get(cache, req, &s, err);
  else if ((rc = mt_cron_parse(req->expression, &own.cron, err)) == 0)
    rc = mt_tz_load(req->tz, &own.tz, err);
  if (rc == 0)
    rc = compute(s->cron, s->tz, req, out, err);
  if (rc != 0)
    out->n = 0;
  mt_cron_free(own.cron);
  mt_tz_free(own.tz);
  return rc;
}
