/*
 * The runtime's own counters and histograms, for /metrics (web/): what
 * happened in this process since it started. What the database holds (tasks
 * by state, the oldest due task) is asked of it when scraped instead.
 *
 * Every family is declared once, in metrics.c's table: its name, help, type
 * and label names; a call site names the family by its enum and passes the
 * label values. Label values are strings of the caller's (a task name, an
 * AWS operation), copied on first sight; a family keeps at most
 * MT_METRIC_SERIES_MAX label sets and counts the rest under "_other", so
 * that a flood of names cannot grow the process without bound.
 *
 * Process-wide and thread-safe: workers, the loop and the AWS thread
 * update it, the HTTP endpoint reads it. One mutex guards it; an update is
 * a hash lookup and an add under it.
 */
#ifndef MT_METRICS_H
#define MT_METRICS_H

#include "common/buf.h"

typedef enum mt_metric_e {
  MT_METRIC_EXECUTIONS,      /* counter {name, outcome} */
  MT_METRIC_HANDLER_SECONDS, /* histogram {name} */
  MT_METRIC_RELOADS,         /* counter {} */
  MT_METRIC_RELOAD_ERRORS,   /* counter {} */
  MT_METRIC_AWS_REQUESTS,    /* counter {operation} */
  MT_METRIC_AWS_ERRORS,      /* counter {operation} */
  MT_METRIC_DB_RECONNECTS,   /* counter {} */
  MT_METRIC_PRUNED,          /* counter {state} */
  MT_METRIC_COUNT
} mt_metric_t;

#define MT_METRIC_SERIES_MAX 1000

/* Adds v to counter m's series for the label values (NULL where the family
 * has fewer labels). */
void mt_metric_add(mt_metric_t m, const char *l1, const char *l2, double v);

/* Records one observation v in histogram m's series. */
void mt_metric_observe(mt_metric_t m, const char *l1, const char *l2, double v);

/* Appends every family in the Prometheus text format (0.0.4). Returns 0,
 * or -1 when out of memory. */
int mt_metrics_render(mt_buf_t *out);

/* Appends v as a Prometheus label value: quoted, with \\, \" and \n
 * escaped. */
int mt_metrics_label(mt_buf_t *out, const char *v);

#endif
