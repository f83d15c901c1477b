/* The cron command: shows when a schedule expression would fire. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "scheduler/cron.h"

int mt_cmd_cron(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_cron_t *cron = NULL;
  mt_tz_t *tz = NULL;
  mt_buf_t out = MT_BUF_INIT;
  const char *zone = "UTC", *after_text = NULL, *count_text = NULL;
  const char *expr = NULL;
  int rc = 0;
  long count = 5;

  if (cli->argc < 2 || strcmp(cli->argv[1], "next") != 0) {
    rc = mt_err_set(&err, MT_EINVAL,
                    "usage: moontask cron next EXPR [--tz ZONE] "
                    "[--after RFC3339] [--count N]");
    goto done;
  }
  for (int i = 2; rc == 0 && i < cli->argc; i++) {
    int r;
    if ((r = mt_cli_option(cli->argc, cli->argv, &i, "--tz", &zone)) ||
        (r = mt_cli_option(cli->argc, cli->argv, &i, "--after", &after_text)) ||
        (r = mt_cli_option(cli->argc, cli->argv, &i, "--count", &count_text))) {
      if (r < 0)
        rc = mt_err_set(&err, MT_EINVAL, "%s needs a value", cli->argv[i]);
    } else if (expr == NULL && strncmp(cli->argv[i], "--", 2) != 0) {
      expr = cli->argv[i];
    } else {
      rc = mt_err_set(&err, MT_EINVAL, "cron next: unexpected argument \"%s\"",
                      cli->argv[i]);
    }
  }
  if (rc == 0 && expr == NULL)
    rc = mt_err_set(&err, MT_EINVAL,
                    "usage: moontask cron next EXPR [--tz ZONE] "
                    "[--after RFC3339] [--count N]");
  if (rc == 0 && count_text != NULL) {
    char *end;
    count = strtol(count_text, &end, 10);
    if (*count_text == '\0' || *end != '\0' || count < 1 || count > 100000)
      rc = mt_err_set(&err, MT_EINVAL,
                      "--count: \"%s\" is not a number from 1 to 100000",
                      count_text);
  }
  int64_t t = (int64_t)time(NULL);
  if (rc == 0 && after_text != NULL &&
      mt_time_parse_rfc3339(after_text, &t) != 0)
    rc = mt_err_set(&err, MT_EINVAL,
                    "--after: \"%s\" is not an RFC 3339 time, e.g. "
                    "2026-03-29T01:00:00+01:00",
                    after_text);
  if (rc == 0 && (t < MT_CRON_TIME_MIN || t > MT_CRON_TIME_MAX))
    rc = mt_err_set(&err, MT_EINVAL,
                    "--after: \"%s\" is outside years 0001-9999 in UTC",
                    after_text);
  if (rc != 0 || (rc = mt_cron_parse(expr, &cron, &err)) != 0 ||
      (rc = mt_tz_load(zone, &tz, &err)) != 0)
    goto done;
  /* The fires are collected first and printed only once all is well, so
   * that an error never follows half an answer. */
  long found = 0;
  for (; found < count; found++) {
    char buf[40];
    if ((rc = mt_cron_next(cron, tz, t, &t, &err)) != 0)
      break;
    mt_tz_format(tz, t, buf);
    if (mt_buf_puts(&out, buf) != 0 || mt_buf_putc(&out, '\n') != 0) {
      rc = mt_err_set(&err, MT_ENOMEM, "out of memory");
      goto done;
    }
  }
  /* Running out of fires after finding some is the schedule's end, not an
   * error; none at all is reported. */
  if (rc == MT_ENOTFOUND && found > 0)
    rc = 0;
  if (rc == 0)
    fputs(out.data, stdout);
done:
  mt_buf_free(&out);
  mt_cron_free(cron);
  mt_tz_free(tz);
  return rc != 0 ? mt_cli_fail(rc, &err) : 0;
}
