#include "common/metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct family_s {
  const char *name, *help, *type;
  const char *label1, *label2; /* NULL where there are fewer labels */
} family_t;

/* Every family the process reports, in the order /metrics prints them. */
static const family_t families[MT_METRIC_COUNT] = {
    [MT_METRIC_EXECUTIONS] = {"moontask_executions_total",
                              "Task attempts run by this runtime, by task "
                              "and outcome (completed, failed, retried, "
                              "released, snoozed).",
                              "counter", "name", "outcome"},
    [MT_METRIC_HANDLER_SECONDS] = {"moontask_handler_duration_seconds",
                                   "Time from a task's start to its commit "
                                   "or failure, by task.",
                                   "histogram", "name", NULL},
    [MT_METRIC_RELOADS] = {"moontask_reloads_total",
                           "Hot reloads of the task files that took effect.",
                           "counter", NULL, NULL},
    [MT_METRIC_RELOAD_ERRORS] = {"moontask_reload_errors_total",
                                 "Hot reloads refused because the new task "
                                 "files did not load.",
                                 "counter", NULL, NULL},
    [MT_METRIC_AWS_REQUESTS] = {"moontask_aws_requests_total",
                                "Requests made to AWS, by operation.",
                                "counter", "operation", NULL},
    [MT_METRIC_AWS_ERRORS] = {"moontask_aws_errors_total",
                              "AWS requests that failed, by operation.",
                              "counter", "operation", NULL},
    [MT_METRIC_DB_RECONNECTS] = {"moontask_db_reconnects_total",
                                 "Database connections made again after "
                                 "one was lost.",
                                 "counter", NULL, NULL},
    [MT_METRIC_PRUNED] = {"moontask_pruned_total",
                          "Finished tasks deleted by retention, by state.",
                          "counter", "state", NULL},
};

/* Histogram bucket bounds, in seconds: from a no-op handler's tens of
 * microseconds to the default task_timeout of a minute. */
static const double bounds[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05,
                                0.1,    0.5,    1,     5,     10,   60};
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

typedef struct series_s {
  struct series_s *next_in_bucket, *next_in_family;
  mt_metric_t family;
  char *l1, *l2;
  uint64_t hash;
  double value; /* a counter's value, a histogram's sum */
  uint64_t count, buckets[NBOUNDS];
} series_t;

#define HASH_BUCKETS 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static series_t *table[HASH_BUCKETS];
static series_t *first[MT_METRIC_COUNT], **last[MT_METRIC_COUNT];
static size_t series_count[MT_METRIC_COUNT];

static uint64_t fnv(uint64_t h, const char *s) {
  for (; s != NULL && *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211u;
  return (h ^ 0xff) * 1099511628211u; /* "a","bc" differs from "ab","c" */
}

static int same(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The series for the label values, created on first sight. Called with
 * lock held. NULL when out of memory: the observation is lost. */
static series_t *find(mt_metric_t m, const char *l1, const char *l2) {
  if (series_count[m] >= MT_METRIC_SERIES_MAX) {
    l1 = l1 ? "_other" : NULL;
    l2 = l2 ? "_other" : NULL;
  }
  uint64_t h = fnv(fnv(14695981039346656037u + (uint64_t)m, l1), l2);
  series_t **slot = &table[h % HASH_BUCKETS];
  for (series_t *s = *slot; s != NULL; s = s->next_in_bucket)
    if (s->hash == h && s->family == m && same(s->l1, l1) && same(s->l2, l2))
      return s;
  series_t *s = calloc(1, sizeof *s);
  if (s == NULL || (l1 && (s->l1 = strdup(l1)) == NULL) ||
      (l2 && (s->l2 = strdup(l2)) == NULL)) {
    if (s != NULL)
      free(s->l1);
    free(s);
    return NULL;
  }
  s->family = m;
  s->hash = h;
  s->next_in_bucket = *slot;
  *slot = s;
  if (last[m] == NULL)
    last[m] = &first[m];
  *last[m] = s;
  last[m] = &s->next_in_family;
  series_count[m]++;
  return s;
}

void mt_metric_add(mt_metric_t m, const char *l1, const char *l2, double v) {
  pthread_mutex_lock(&lock);
  series_t *s = find(m, l1, l2);
  if (s != NULL)
    s->value += v;
  pthread_mutex_unlock(&lock);
}

void mt_metric_observe(mt_metric_t m, const char *l1, const char *l2,
                       double v) {
  pthread_mutex_lock(&lock);
  series_t *s = find(m, l1, l2);
  if (s != NULL) {
    s->value += v;
    s->count++;
    for (size_t i = 0; i < NBOUNDS; i++)
      if (v <= bounds[i])
        s->buckets[i]++;
  }
  pthread_mutex_unlock(&lock);
}

int mt_metrics_label(mt_buf_t *out, const char *v) {
  int rc = mt_buf_putc(out, '"');
  for (; rc == 0 && *v; v++) {
    if (*v == '\\' || *v == '"')
      rc = mt_buf_putc(out, '\\') || mt_buf_putc(out, *v);
    else if (*v == '\n')
      rc = mt_buf_puts(out, "\\n");
    else
      rc = mt_buf_putc(out, *v);
  }
  return rc || mt_buf_putc(out, '"');
}

/* name{l1="v1",l2="v2"[,le="..."]} with the family's label names; extra
 * is the `le` bound of a bucket, or NULL. */
static int put_series(mt_buf_t *out, const family_t *f, const char *suffix,
                      const series_t *s, const char *le) {
  int rc = mt_buf_printf(out, "%s%s", f->name, suffix);
  const char *keys[] = {f->label1, f->label2, le ? "le" : NULL};
  const char *values[] = {s->l1, s->l2, le};
  int any = 0;
  for (int i = 0; rc == 0 && i < 3; i++) {
    if (keys[i] == NULL || values[i] == NULL)
      continue;
    rc = mt_buf_printf(out, "%s%s=", any ? "," : "{", keys[i]) ||
         mt_metrics_label(out, values[i]);
    any = 1;
  }
  return rc || (any && mt_buf_putc(out, '}')) || mt_buf_putc(out, ' ');
}

int mt_metrics_render(mt_buf_t *out) {
  int rc = 0;
  pthread_mutex_lock(&lock);
  for (int m = 0; rc == 0 && m < MT_METRIC_COUNT; m++) {
    const family_t *f = &families[m];
    rc = mt_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help,
                       f->name, f->type);
    int histogram = strcmp(f->type, "histogram") == 0;
    /* A family without labels reads 0 before its first event, as
     * Prometheus expects of a counter that exists. */
    if (rc == 0 && first[m] == NULL && f->label1 == NULL && !histogram)
      rc = mt_buf_printf(out, "%s 0\n", f->name);
    for (series_t *s = first[m]; rc == 0 && s != NULL; s = s->next_in_family) {
      if (!histogram) {
        rc = put_series(out, f, "", s, NULL) ||
             mt_buf_printf(out, "%.17g\n", s->value);
        continue;
      }
      for (size_t i = 0; rc == 0 && i < NBOUNDS; i++) {
        char le[32];
        snprintf(le, sizeof le, "%g", bounds[i]);
        rc = put_series(out, f, "_bucket", s, le) ||
             mt_buf_printf(out, "%llu\n", (unsigned long long)s->buckets[i]);
      }
      rc = rc || put_series(out, f, "_bucket", s, "+Inf") ||
           mt_buf_printf(out, "%llu\n", (unsigned long long)s->count) ||
           put_series(out, f, "_sum", s, NULL) ||
           mt_buf_printf(out, "%.17g\n", s->value) ||
           put_series(out, f, "_count", s, NULL) ||
           mt_buf_printf(out, "%llu\n", (unsigned long long)s->count);
    }
  }
  pthread_mutex_unlock(&lock);
  return rc ? -1 : 0;
}
