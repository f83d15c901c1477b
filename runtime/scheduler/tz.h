/*
 * Time zones without the process-wide TZ: loads an IANA zone from the
 * system's tzdata (TZif v2+ files under $TZDIR or /usr/share/zoneinfo,
 * 64-bit section plus the POSIX TZ footer that covers instants past the last
 * transition) and converts between UTC instants and wall-clock time itself.
 * Nothing here calls tzset(), localtime() or reads TZ, so worker threads can
 * use zones concurrently. A loaded mt_tz_t is immutable and owned by whoever
 * loaded it; it may be shared across threads until mt_tz_free(). Also the
 * civil-calendar arithmetic and RFC 3339 text that the cron engine shares.
 */
#ifndef MT_TZ_H
#define MT_TZ_H

#include <stdint.h>

#include "common/error.h"

typedef struct mt_tz_s mt_tz_t;

/* Loads zone `name` ("Europe/Oslo"). "UTC" needs no files. An unknown or
 * malformed zone is MT_EINVAL with a message naming it. */
int mt_tz_load(const char *name, mt_tz_t **out, mt_err_t *err);
void mt_tz_free(mt_tz_t *tz);
const char *mt_tz_name(const mt_tz_t *tz);

/* The zone's UTC offset (seconds east of Greenwich) in force at instant t. */
int32_t mt_tz_offset(const mt_tz_t *tz, int64_t t);

/* Formats instant t as RFC 3339 with the zone's offset at t ("Z" for the UTC
 * zone), seconds precision: "2026-03-29T03:30:00+02:00". */
void mt_tz_format(const mt_tz_t *tz, int64_t t, char buf[40]);

/* Parses RFC 3339 ("2026-03-29T03:30:00+02:00", "...Z", fractional seconds
 * truncated) into epoch seconds. Returns 0 or MT_EINVAL. */
int mt_time_parse_rfc3339(const char *s, int64_t *out);

/* Proleptic Gregorian calendar helpers (days since 1970-01-01). */
int64_t mt__days_from_civil(int64_t y, int m, int d);
void mt__civil_from_days(int64_t days, int64_t *y, int *m, int *d);
int mt__weekday(int64_t days); /* 0 = Sunday */
int mt__days_in_month(int64_t y, int m);

#endif
