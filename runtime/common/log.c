#include "common/log.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/text.h"

static mt_log_format_t log_format = MT_LOG_LOGFMT;
static mt_log_level_t log_level = MT_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void mt_log_configure(mt_log_format_t format, mt_log_level_t level) {
  log_format = format;
  log_level = level;
}

int mt_log_level_parse(const char *name) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, level_names[i]) == 0)
      return i;
  return -1;
}

int mt_log_redact(mt_buf_t *out, const char *s) {
  const char *p = s;
  while (*p) {
    /* scheme://user:password@host: the password is what lies between the
     * first ':' after "://" and the '@' that ends the authority. */
    const char *scheme_end = strstr(p, "://");
    const char *kw = strstr(p, "password=");
    const char *mask_from = NULL;
    size_t mask_len = 0;
    if (scheme_end != NULL && (kw == NULL || scheme_end < kw)) {
      const char *auth = scheme_end + 3;
      size_t auth_len = strcspn(auth, "/?# \t\"'");
      const char *at = memchr(auth, '@', auth_len);
      const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
      if (colon != NULL) {
        mask_from = colon + 1;
        mask_len = (size_t)(at - mask_from);
      }
      if (mask_from == NULL) {
        if (mt_buf_append(out, p, (size_t)(auth - p)) != 0)
          return -1;
        p = auth;
        continue;
      }
    } else if (kw != NULL) {
      /* conninfo's password=secret or password='sec ret', or a URL
       * query's password=secret. */
      mask_from = kw + strlen("password=");
      const char *close =
          *mask_from == '\'' ? strchr(mask_from + 1, '\'') : NULL;
      mask_len = *mask_from != '\'' ? strcspn(mask_from, " \t\"&")
                 : close != NULL    ? (size_t)(close + 1 - mask_from)
                                    : strlen(mask_from);
    } else {
      return mt_buf_puts(out, p);
    }
    if (mt_buf_append(out, p, (size_t)(mask_from - p)) != 0 ||
        mt_buf_puts(out, "***") != 0)
      return -1;
    p = mask_from + mask_len;
  }
  return 0;
}

/* A string value: redacted; control characters other than newline and tab,
 * and bytes that are not UTF-8, made visible as \xNN text
 * (mt_text_escape); then quoted where the format needs it, with \, ", and
 * newline and tab escaped as both JSON and logfmt read them. */
static int put_string(mt_buf_t *line, const char *s, int json) {
  mt_buf_t plain = MT_BUF_INIT, safe = MT_BUF_INIT;
  int rc = -1;
  if (mt_log_redact(&plain, s) != 0 ||
      mt_text_escape(&safe, plain.data ? plain.data : "", 1) != 0)
    goto done;
  const char *v = safe.data ? safe.data : "";
  int quote = json || *v == '\0' || strpbrk(v, " =\"\\\n\t") != NULL;
  rc = quote ? mt_buf_putc(line, '"') : 0;
  for (const char *c = v; rc == 0 && *c; c++) {
    if (*c == '\n')
      rc = mt_buf_puts(line, "\\n");
    else if (*c == '\t')
      rc = mt_buf_puts(line, "\\t");
    else if (*c == '"' || *c == '\\')
      rc = mt_buf_putc(line, '\\') || mt_buf_putc(line, *c);
    else
      rc = mt_buf_putc(line, *c);
  }
  if (rc == 0 && quote)
    rc = mt_buf_putc(line, '"');
done:
  mt_buf_free(&plain);
  mt_buf_free(&safe);
  return rc ? -1 : 0;
}

static int put_key(mt_buf_t *line, const char *key, int json) {
  if (json)
    return mt_buf_printf(line, ",\"%s\":", key);
  return mt_buf_printf(line, " %s=", key);
}

static int put_field(mt_buf_t *line, const mt_log_field_t *f, int json) {
  if (f->kind == MT_LOG_STR && f->s == NULL)
    return 0;
  if (put_key(line, f->key, json) != 0)
    return -1;
  switch (f->kind) {
  case MT_LOG_STR: return put_string(line, f->s, json);
  case MT_LOG_INT: return mt_buf_printf(line, "%lld", (long long)f->i);
  case MT_LOG_NUM:
    if (!isfinite(f->n))
      return mt_buf_puts(line, json ? "null" : "NaN");
    return mt_buf_printf(line, "%.6g", f->n);
  }
  return 0;
}

void mt_log_fields(mt_log_level_t level, const char *msg,
                   const mt_log_field_t *fields, size_t n) {
  if (level < log_level)
    return;
  int json = log_format == MT_LOG_JSON;
  struct timespec ts;
  struct tm tm;
  char stamp[40];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t len = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(stamp + len, sizeof stamp - len, ".%03ldZ", ts.tv_nsec / 1000000);

  mt_buf_t line = MT_BUF_INIT;
  int rc =
      json ? mt_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\"", stamp,
                           level_names[level])
           : mt_buf_printf(&line, "ts=%s level=%s", stamp, level_names[level]);
  if (rc == 0)
    rc = put_key(&line, "msg", json) || put_string(&line, msg, json);
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = put_field(&line, &fields[i], json);
  if (rc == 0)
    rc = mt_buf_puts(&line, json ? "}\n" : "\n");
  if (rc != 0) {
    /* Out of memory: the message alone, unformatted, is better than
     * nothing. */
    mt_buf_free(&line);
    fprintf(stderr, "level=%s msg=\"%s\" (out of memory)\n", level_names[level],
            msg);
    return;
  }
  /* One write: a whole line or nothing, never interleaved with another
   * thread's. A short write to a full pipe is finished off. */
  for (size_t off = 0; off < line.len;) {
    ssize_t w = write(STDERR_FILENO, line.data + off, line.len - off);
    if (w <= 0)
      break;
    off += (size_t)w;
  }
  mt_buf_free(&line);
}

void mt_log(mt_log_level_t level, const char *fmt, ...) {
  if (level < log_level)
    return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  mt_log_fields(level, msg, NULL, 0);
}
