/* `moontask status [--json]`: the status page's summary in the terminal,
 * from the same reading of the database (postgres/status.h), with the task
 * files of this folder in place of the running version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/reload.h"
#include "common/buf.h"
#include "common/text.h"
#include "json/doc.h"
#include "postgres/status.h"

static const char *const states[] = {"scheduled", "running", "completed",
                                     "failed", "cancelled"};
#define NSTATES 5

static size_t len_of(const mt_jval_t *obj, const char *key) {
  const mt_jval_t *a = mt_jval_get_array(obj, key);
  return a != NULL ? a->len : 0;
}

static const mt_jval_t *item(const mt_jval_t *obj, const char *key, size_t i) {
  return &mt_jval_get(obj, key)->u.items[i];
}

/* A value from the database, made safe for the terminal (common/text.h),
 * its first line only when first_line is set. */
static const char *safe(mt_buf_t *b, const char *s, int first_line) {
  mt_buf_reset(b);
  if (s == NULL)
    return "";
  char *copy = strdup(s);
  if (copy != NULL && first_line)
    copy[strcspn(copy, "\n")] = '\0';
  mt_text_escape(b, copy != NULL ? copy : "", 0);
  free(copy);
  return b->data != NULL ? b->data : "";
}

static void age_text(char *buf, size_t size, double seconds) {
  if (seconds < 120)
    snprintf(buf, size, "%.1fs", seconds);
  else if (seconds < 7200)
    snprintf(buf, size, "%.0fm", seconds / 60);
  else
    snprintf(buf, size, "%.1fh", seconds / 3600);
}

static void print_counts(const mt_jval_t *root, mt_buf_t *b) {
  double total[NSTATES] = {0};
  size_t n = len_of(root, "counts");
  printf("%-32s", "TASK");
  for (int s = 0; s < NSTATES; s++)
    printf(" %10s", states[s]);
  printf("\n");
  for (size_t i = 0; i < n;) {
    const char *name = mt_jval_get_str(item(root, "counts", i), "name");
    double row[NSTATES] = {0};
    for (; i < n; i++) {
      const mt_jval_t *c = item(root, "counts", i);
      const char *cname = mt_jval_get_str(c, "name"),
                 *state = mt_jval_get_str(c, "state");
      if (cname == NULL || name == NULL || strcmp(cname, name) != 0)
        break;
      for (int s = 0; s < NSTATES; s++)
        if (state != NULL && strcmp(state, states[s]) == 0) {
          row[s] = mt_jval_get_num(c, "count", 0);
          total[s] += row[s];
        }
    }
    if (name == NULL) /* not the status's shape: nothing more to group */
      break;
    printf("%-32s", safe(b, name, 1));
    for (int s = 0; s < NSTATES; s++)
      printf(" %10.0f", row[s]);
    printf("\n");
  }
  printf("%-32s", "(all)");
  for (int s = 0; s < NSTATES; s++)
    printf(" %10.0f", total[s]);
  char age[32] = "none";
  double lag = mt_jval_get_num(root, "oldest_due_seconds", -1);
  if (lag >= 0)
    age_text(age, sizeof age, lag);
  printf("\noldest due task waiting: %s\n", age);
}

static void print_running(const mt_jval_t *root, mt_buf_t *b) {
  size_t n = len_of(root, "running");
  printf("\nRUNNING (%zu%s)\n", n, n == 50 ? " or more" : "");
  for (size_t i = 0; i < n; i++) {
    const mt_jval_t *t = item(root, "running", i);
    char age[32];
    age_text(age, sizeof age, mt_jval_get_num(t, "age_seconds", 0));
    printf("  #%-10.0f %-32s attempt %-3.0f %8s  ", mt_jval_get_num(t, "id", 0),
           safe(b, mt_jval_get_str(t, "name"), 1),
           mt_jval_get_num(t, "attempts", 0), age);
    printf("%s\n", safe(b, mt_jval_get_str(t, "locked_by"), 1));
  }
}

static void print_failures(const mt_jval_t *root, mt_buf_t *b) {
  size_t n = len_of(root, "failures");
  printf("\nRECENT FAILURES (%zu)\n", n);
  for (size_t i = 0; i < n; i++) {
    const mt_jval_t *f = item(root, "failures", i);
    const char *state = mt_jval_get_str(f, "state");
    int failed = state != NULL && strcmp(state, "failed") == 0;
    printf("  #%-10.0f %-32s %-10s attempt %.0f", mt_jval_get_num(f, "id", 0),
           safe(b, mt_jval_get_str(f, "name"), 1),
           failed ? "failed" : "will retry", mt_jval_get_num(f, "attempts", 0));
    if (mt_jval_get_num(f, "max_attempts", -1) > 0)
      printf(" of %.0f", mt_jval_get_num(f, "max_attempts", 0));
    printf("  %s\n", safe(b, mt_jval_get_str(f, "at"), 1));
    printf("      %s\n", safe(b, mt_jval_get_str(f, "last_error"), 1));
  }
}

static void print_schedules(const mt_jval_t *root, mt_buf_t *b) {
  size_t n = len_of(root, "schedules");
  if (n == 0)
    return;
  printf("\nRECURRING (%zu)\n", n);
  for (size_t i = 0; i < n; i++) {
    const mt_jval_t *s = item(root, "schedules", i);
    printf("  %-24s", safe(b, mt_jval_get_str(s, "name"), 1));
    printf(" %-24s", safe(b, mt_jval_get_str(s, "task"), 1));
    printf(" next %s", safe(b, mt_jval_get_str(s, "next_fire_at"), 1));
    const char *error = mt_jval_get_str(s, "error");
    if (error != NULL)
      printf("  error: %s", safe(b, error, 1));
    printf("\n");
  }
}

/* The task files of this folder, read as a runtime started here would
 * (cli/reload.h), so that the versions are the ones a runtime logs: as
 * JSON ({version, tasks: [{name, version, file}], error}) into json, or
 * printed. */
static int task_files(mt_cli_t *cli, mt_buf_t *json, mt_buf_t *b) {
  mt_reload_t files = {.cli = cli};
  mt_err_t err = {{0}};
  int rc = mt_reload_load(&files, &err);
  if (rc != 0)
    snprintf(files.refused, sizeof files.refused, "%s", err.msg);
  if (json == NULL) {
    printf("\nTASK FILES in %s/", cli->cfg.tasks_dir);
    if (rc != 0)
      printf(": do not load: %s\n", safe(b, err.msg, 0));
    else
      printf(" (%zu, version %s)\n", files.reg.count,
             mt_reload_version(&files));
    for (size_t i = 0; rc == 0 && i < files.reg.count; i++) {
      const mt_task_def_t *d = &files.reg.defs[i];
      printf("  %-32s %s  %s\n", d->name, d->version, d->file ? d->file : "");
    }
    mt_reload_free(&files);
    return 0;
  }
  char *described = mt_reload_describe(&files);
  int e = described == NULL || mt_buf_puts(json, described);
  free(described);
  mt_reload_free(&files);
  return e ? MT_ENOMEM : 0;
}

int mt_cmd_status(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_store_t *store = NULL;
  mt_jdoc_t *doc = NULL;
  mt_buf_t b = MT_BUF_INIT, files = MT_BUF_INIT;
  char *json = NULL;
  int as_json = 0, rc;
  if ((rc = mt_cli_json_only(cli, 1, "status", &as_json, &err)) != 0 ||
      (rc = mt_cli_connect(cli, &store, &err)) != 0 ||
      (rc = mt_status_read(store, MT_STATUS_FULL, &json, &err)) != 0)
    goto done;
  if (as_json) {
    /* The status object, with the task files as one more member. */
    size_t len = strlen(json);
    if ((rc = task_files(cli, &files, &b)) != 0)
      goto done;
    printf("%.*s,\"task_files\":%s}\n", (int)(len - 1), json, files.data);
    goto done;
  }
  if ((rc = mt_jdoc_parse(json, strlen(json), &doc, &err)) != 0)
    goto done;
  const mt_jval_t *root = mt_jdoc_root(doc);
  print_counts(root, &b);
  print_running(root, &b);
  print_failures(root, &b);
  print_schedules(root, &b);
  rc = task_files(cli, NULL, &b);
done:
  free(json);
  mt_jdoc_free(doc);
  mt_buf_free(&b);
  mt_buf_free(&files);
  mt_store_free(store);
  return rc ? mt_cli_fail(rc, &err) : 0;
}
