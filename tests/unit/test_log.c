/* The runtime's log lines and metrics (common/log.c, common/metrics.c). */
#include <fcntl.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "json/doc.h"
#include "test.h"

static const char *redact(mt_buf_t *b, const char *s) {
  mt_buf_reset(b);
  ASSERT_EQ_INT(0, mt_log_redact(b, s));
  return b->data ? b->data : "";
}

TEST(log_redacts_passwords) {
  mt_buf_t b = MT_BUF_INIT;
  ASSERT_EQ_STR(redact(&b, "postgresql://app:s3cret@db:5432/app?x=1"),
                "postgresql://app:***@db:5432/app?x=1");
  ASSERT_EQ_STR(redact(&b, "cannot connect to postgres://u:p%40ss@h/d: no"),
                "cannot connect to postgres://u:***@h/d: no");
  ASSERT_EQ_STR(redact(&b, "host=db password=s3cret user=app"),
                "host=db password=*** user=app");
  ASSERT_EQ_STR(redact(&b, "password='two words' dbname=x"),
                "password=*** dbname=x");
  ASSERT_EQ_STR(redact(&b, "postgresql://h/d?user=a&password=s3cret&x=1"),
                "postgresql://h/d?user=a&password=***&x=1");
  /* Two in one line, and what has no password, untouched. */
  ASSERT_EQ_STR(redact(&b, "a://x:1@h b://y:2@h"), "a://x:***@h b://y:***@h");
  ASSERT_EQ_STR(redact(&b, "postgresql:///moontask?host=%2Fvar%2Ftmp"),
                "postgresql:///moontask?host=%2Fvar%2Ftmp");
  ASSERT_EQ_STR(redact(&b, "https://user@host/p and 10:30 at noon"),
                "https://user@host/p and 10:30 at noon");
  ASSERT_EQ_STR(redact(&b, ""), "");
  mt_buf_free(&b);
}

/* What one call writes to stderr, as a string (static). */
static const char *capture(void (*emit)(void)) {
  static char out[4096];
  char path[] = "/tmp/mt-unit-log.XXXXXX";
  int fd = mkstemp(path);
  ASSERT_TRUE(fd >= 0);
  unlink(path);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  emit();
  dup2(saved, STDERR_FILENO);
  close(saved);
  ssize_t n = pread(fd, out, sizeof out - 1, 0);
  close(fd);
  out[n > 0 ? n : 0] = '\0';
  return out;
}

static void emit_task_run(void) {
  mt_log_event(MT_LOG_INFO, "task run", MT_LOG_I("id", 42),
               MT_LOG_S("name", "billing.send invoice"),
               MT_LOG_N("duration_ms", 1.5), MT_LOG_S("skipped", NULL),
               MT_LOG_S("error", "line 1\n\tline \"2\" \\ \x1b[2J"),
               MT_LOG_S("url", "postgresql://app:hunter2@db/app"));
}

TEST(log_logfmt_line) {
  mt_log_configure(MT_LOG_LOGFMT, MT_LOG_INFO);
  const char *line = capture(emit_task_run);
  ASSERT_TRUE(strncmp(line, "ts=", 3) == 0);
  const char *rest = strstr(line, " level=");
  ASSERT_TRUE(rest != NULL);
  ASSERT_EQ_STR(rest, " level=info msg=\"task run\" id=42 "
                      "name=\"billing.send invoice\" duration_ms=1.5 "
                      "error=\"line 1\\n\\tline \\\"2\\\" \\\\ \\\\x1b[2J\" "
                      "url=postgresql://app:***@db/app\n");
}

TEST(log_json_line) {
  mt_log_configure(MT_LOG_JSON, MT_LOG_INFO);
  const char *line = capture(emit_task_run);
  mt_jdoc_t *doc;
  mt_err_t err;
  ASSERT_EQ_INT(0, mt_jdoc_parse(line, strlen(line), &doc, &err));
  const mt_jval_t *root = mt_jdoc_root(doc);
  ASSERT_EQ_STR(mt_jval_get(root, "level")->u.str, "info");
  ASSERT_EQ_STR(mt_jval_get(root, "msg")->u.str, "task run");
  ASSERT_EQ_INT(42, (int)mt_jval_get(root, "id")->u.num.i);
  ASSERT_EQ_STR(mt_jval_get(root, "name")->u.str, "billing.send invoice");
  ASSERT_TRUE(mt_jval_get(root, "skipped") == NULL);
  /* Newline and tab stay themselves; the escape sequence is shown, not
   * sent. */
  ASSERT_EQ_STR(mt_jval_get(root, "error")->u.str,
                "line 1\n\tline \"2\" \\ \\x1b[2J");
  ASSERT_EQ_STR(mt_jval_get(root, "url")->u.str, "postgresql://app:***@db/app");
  ASSERT_TRUE(line[strlen(line) - 1] == '\n');
  mt_jdoc_free(doc);
}

static void emit_levels(void) {
  mt_log(MT_LOG_INFO, "quiet %d", 1);
  mt_log(MT_LOG_WARN, "loud %d", 2);
}

TEST(log_level_filters) {
  mt_log_configure(MT_LOG_LOGFMT, MT_LOG_WARN);
  const char *out = capture(emit_levels);
  ASSERT_TRUE(strstr(out, "quiet") == NULL);
  ASSERT_TRUE(strstr(out, "level=warn msg=\"loud 2\"\n") != NULL);
  ASSERT_EQ_INT(MT_LOG_ERROR, mt_log_level_parse("error"));
  ASSERT_EQ_INT(-1, mt_log_level_parse("verbose"));
}

TEST(metrics_render_prometheus_text) {
  mt_metric_add(MT_METRIC_EXECUTIONS, "odd\"name\\", "completed", 2);
  mt_metric_add(MT_METRIC_EXECUTIONS, "odd\"name\\", "completed", 1);
  mt_metric_observe(MT_METRIC_HANDLER_SECONDS, "t", NULL, 0.002);
  mt_metric_observe(MT_METRIC_HANDLER_SECONDS, "t", NULL, 3);
  mt_buf_t b = MT_BUF_INIT;
  ASSERT_EQ_INT(0, mt_metrics_render(&b));
  const char *text = b.data;
  ASSERT_TRUE(strstr(text, "# TYPE moontask_executions_total counter\n"));
  ASSERT_TRUE(strstr(text, "moontask_executions_total{name=\"odd\\\"name\\\\\","
                           "outcome=\"completed\"} 3\n"));
  /* Buckets count every observation at or under their bound. */
  ASSERT_TRUE(strstr(text,
                     "moontask_handler_duration_seconds_bucket{name=\"t\","
                     "le=\"0.001\"} 0\n"));
  ASSERT_TRUE(strstr(text,
                     "moontask_handler_duration_seconds_bucket{name=\"t\","
                     "le=\"0.005\"} 1\n"));
  ASSERT_TRUE(strstr(text,
                     "moontask_handler_duration_seconds_bucket{name=\"t\","
                     "le=\"5\"} 2\n"));
  ASSERT_TRUE(strstr(text,
                     "moontask_handler_duration_seconds_bucket{name=\"t\","
                     "le=\"+Inf\"} 2\n"));
  ASSERT_TRUE(strstr(text, "moontask_handler_duration_seconds_count{name=\"t\"}"
                           " 2\n"));
  /* A counter without labels reads 0 before its first event. */
  ASSERT_TRUE(strstr(text, "\nmoontask_reloads_total 0\n"));
  mt_buf_free(&b);
}

TEST(metrics_cap_label_sets) {
  char name[32];
  for (int i = 0; i < MT_METRIC_SERIES_MAX + 10; i++) {
    snprintf(name, sizeof name, "task%d", i);
    mt_metric_add(MT_METRIC_AWS_REQUESTS, name, NULL, 1);
  }
  mt_buf_t b = MT_BUF_INIT;
  ASSERT_EQ_INT(0, mt_metrics_render(&b));
  ASSERT_TRUE(strstr(b.data, "moontask_aws_requests_total{operation=\"_other\"}"
                             " 10\n"));
  ASSERT_TRUE(strstr(b.data, "{operation=\"task1009\"}") == NULL);
  mt_buf_free(&b);
}
