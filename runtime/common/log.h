/*
 * The runtime's log: one line per event on stderr, in logfmt
 *
 *   ts=2026-12-01T08:30:00.123Z level=info msg="task completed" id=42 ...
 *
 * or, with log_format = "json", one JSON object per line with the same
 * keys. A line is built whole and written with one write(2), so that lines
 * from worker threads never interleave.
 *
 * Secrets never reach the log: every string (the message and each value)
 * goes through mt_log_redact first, which masks the password of a URL
 * ("postgresql://app:***@db/app") and a conninfo's password=... . The
 * rest is the caller's care: no field may carry a credential.
 *
 * The settings are process-wide, set once at start-up (mt_log_configure)
 * before any thread logs; until then lines are logfmt at level info.
 */
#ifndef MT_LOG_H
#define MT_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef enum mt_log_level_e {
  MT_LOG_DEBUG,
  MT_LOG_INFO,
  MT_LOG_WARN,
  MT_LOG_ERROR,
} mt_log_level_t;

typedef enum mt_log_format_e { MT_LOG_LOGFMT, MT_LOG_JSON } mt_log_format_t;

/* One key=value of a line. The strings are the caller's; a NULL string
 * value is left out of the line. */
typedef struct mt_log_field_s {
  const char *key;
  enum { MT_LOG_STR, MT_LOG_INT, MT_LOG_NUM } kind;
  const char *s;
  int64_t i;
  double n;
} mt_log_field_t;

#define MT_LOG_S(k, v) \
  ((mt_log_field_t){.key = (k), .kind = MT_LOG_STR, .s = (v)})
#define MT_LOG_I(k, v) \
  ((mt_log_field_t){.key = (k), .kind = MT_LOG_INT, .i = (int64_t)(v)})
#define MT_LOG_N(k, v) \
  ((mt_log_field_t){.key = (k), .kind = MT_LOG_NUM, .n = (double)(v)})

void mt_log_configure(mt_log_format_t format, mt_log_level_t level);

/* Parses "debug", "info", "warn" or "error"; -1 for anything else. */
int mt_log_level_parse(const char *name);

/* A line whose message is printf-formatted and has no other fields. */
void mt_log(mt_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A line with message msg and n fields. */
void mt_log_fields(mt_log_level_t level, const char *msg,
                   const mt_log_field_t *fields, size_t n);

/* mt_log_event(level, msg, MT_LOG_S("name", name), MT_LOG_I("id", id)) */
#define mt_log_event(level, msg, ...)                                  \
  mt_log_fields((level), (msg), (const mt_log_field_t[]){__VA_ARGS__}, \
                sizeof((const mt_log_field_t[]){__VA_ARGS__}) /        \
                    sizeof(mt_log_field_t))

/* Appends s to out with secrets masked (see above). Returns 0 or -1 when
 * out of memory. */
int mt_log_redact(mt_buf_t *out, const char *s);

#endif
