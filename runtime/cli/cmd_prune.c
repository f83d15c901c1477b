/* `moontask prune`: one retention pass (postgres/retention.h) now. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "postgres/store.h"

/* A period as config.lua would write it: "7d", "12h", "90s". */
static void format_period(char *buf, size_t size, double seconds) {
  static const struct {
    double unit;
    const char *suffix;
  } units[] = {{86400, "d"}, {3600, "h"}, {60, "m"}};
  for (size_t i = 0; i < sizeof units / sizeof *units; i++)
    if (seconds >= units[i].unit && fmod(seconds, units[i].unit) == 0) {
      snprintf(buf, size, "%.0f%s", seconds / units[i].unit, units[i].suffix);
      return;
    }
  snprintf(buf, size, "%gs", seconds);
}

/* config retention's periods, as postgres/retention.h takes them. */
static mt_retention_periods_t periods_of(const mt_cli_t *cli) {
  const mt_config_retention_t *r = &cli->cfg.retention;
  mt_retention_periods_t p = {
      .completed = r->completed,
      .failed = r->failed,
      .cancelled = r->cancelled,
  };
  return p;
}

/* One line per state, "completed 12 deleted (older than 7d)", so that a
 * script can read the count as the second field. */
static void print_counts(const mt_retention_periods_t *p,
                         const mt_retention_counts_t *n, int dry_run) {
  const char *states[] = {"completed", "failed", "cancelled"};
  const double periods[] = {p->completed, p->failed, p->cancelled};
  const int64_t counts[] = {n->completed, n->failed, n->cancelled};
  for (size_t i = 0; i < 3; i++) {
    char period[32];
    if (periods[i] < 0) {
      printf("%-9s 0 (kept for ever: retention.%s = false)\n", states[i],
             states[i]);
      continue;
    }
    format_period(period, sizeof period, periods[i]);
    printf("%-9s %" PRId64 " %s (older than %s)\n", states[i], counts[i],
           dry_run ? "to delete" : "deleted", period);
  }
}

int mt_cmd_prune(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_store_t *store = NULL;
  mt_retention_counts_t n = {0};
  int dry_run = 0, rc = 0;
  const mt_retention_periods_t periods = periods_of(cli);
  for (int i = 1; i < cli->argc && rc == 0; i++) {
    if (strcmp(cli->argv[i], "--dry-run") == 0)
      dry_run = 1;
    else
      rc = mt_err_set(&err, MT_EINVAL, "prune: unexpected argument \"%s\"",
                      cli->argv[i]);
  }
  if (rc != 0 || (rc = mt_cli_connect(cli, &store, &err)) != 0)
    goto done;
  rc = mt_store_prune(store, &periods, dry_run, &n, &err);
  /* The batches before an error are committed: they are printed too. */
  print_counts(&periods, &n, dry_run);
done:
  mt_store_free(store);
  return rc ? mt_cli_fail(rc, &err) : 0;
}

int mt_cli_retention_start(mt_cli_t *cli, const char *url, mt_retention_t **out,
                           mt_err_t *err) {
  const mt_retention_periods_t periods = periods_of(cli);
  *out = NULL;
  /* Nothing to delete, ever: no thread, and no connection held for it. */
  if (periods.completed < 0 && periods.failed < 0 && periods.cancelled < 0)
    return 0;
  return mt_retention_start(out, url, &periods, cli->cfg.retention.interval,
                            err);
}
