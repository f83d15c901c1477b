/* What each route of the endpoint answers, built from one reading of
 * postgres/status.h (and, for the page, the task files the runtime runs).
 * Runs in the thread pool. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"
#include "json/doc.h"
#include "postgres/status.h"
#include "web/internal.h"

/* ---- reading the status ------------------------------------------------ */

/* Reads the status and parses it. 0, or the failed call's code with a line
 * of why in *why. */
static int read_status(mt_store_t *store, const char *db_error, int brief,
                       mt_jdoc_t **doc, mt_err_t *why) {
  char *json = NULL;
  int rc;
  *doc = NULL;
  if (store == NULL)
    return mt_err_set(why, MT_EDB, "%s", db_error ? db_error : "no database");
  if ((rc = mt_status_read(store, brief, &json, why)) == 0)
    rc = mt_jdoc_parse(json, strlen(json), doc, why);
  free(json);
  return rc;
}

static const char *or_empty(const char *s) { return s ? s : ""; }

/* ---- /metrics ---------------------------------------------------------- */

static int gauge(mt_buf_t *out, const char *name, const char *help,
                 double value) {
  return mt_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name,
                       help, name, name, value);
}

int mt_web_page_metrics(mt_store_t *store, const char *db_error,
                        const mt_web_snapshot_t *snap, mt_web_response_t *r) {
  mt_jdoc_t *doc;
  mt_err_t why;
  int rc = read_status(store, db_error, MT_STATUS_BRIEF, &doc, &why);
  const mt_jval_t *root = doc ? mt_jdoc_root(doc) : NULL;
  mt_buf_t *out = &r->body;
  /* What this process counted comes whatever the database says; what the
   * database holds only when it answered (database_up says which). */
  int e = mt_metrics_render(out) ||
          gauge(out, "moontask_workers", "Worker threads of this runtime.",
                snap->workers) ||
          gauge(out, "moontask_workers_busy",
                "Workers running a task right now.", snap->busy) ||
          gauge(out, "moontask_tasks_queued_locally",
                "Tasks claimed by this runtime and waiting for a worker.",
                snap->queued) ||
          gauge(out, "moontask_database_up",
                "Whether the database answered this scrape (1) or not (0).",
                rc == 0);
  const mt_jval_t *counts = mt_jval_get_array(root, "counts");
  if (!e && counts != NULL) {
    e = mt_buf_puts(out, "# HELP moontask_tasks Tasks in the database, by "
                         "task and state.\n# TYPE moontask_tasks gauge\n");
    for (size_t i = 0; !e && i < counts->len; i++) {
      const mt_jval_t *c = &counts->u.items[i];
      const char *name = mt_jval_get_str(c, "name"),
                 *state = mt_jval_get_str(c, "state");
      e = mt_buf_puts(out, "moontask_tasks{name=") ||
          mt_metrics_label(out, name ? name : "") ||
          mt_buf_puts(out, ",state=") ||
          mt_metrics_label(out, state ? state : "") ||
          mt_buf_printf(out, "} %.17g\n", mt_jval_get_num(c, "count", 0));
    }
  }
  if (!e && root != NULL)
    e = gauge(out, "moontask_queue_lag_seconds",
              "How long the oldest due task has waited to start (0: none "
              "waits).",
              mt_jval_get_num(root, "oldest_due_seconds", 0));
  mt_jdoc_free(doc);
  r->status = e ? 500 : 200;
  r->content_type = "text/plain; version=0.0.4; charset=utf-8";
  return rc;
}

/* ---- /readyz ----------------------------------------------------------- */

int mt_web_page_ready(mt_store_t *store, const char *db_error,
                      const mt_web_snapshot_t *snap, mt_web_response_t *r) {
  mt_err_t why;
  char line[4400];
  if (store == NULL) {
    snprintf(line, sizeof line, "not ready: database: %s",
             db_error ? db_error : "no connection");
    mt_web_text(r, 503, line);
    return 0;
  }
  int rc = mt_store_check_schema(store, &why);
  if (rc != 0) {
    snprintf(line, sizeof line, "not ready: %s%s",
             rc == MT_EDB ? "database: " : "", why.msg);
    mt_web_text(r, 503, line);
    return rc;
  }
  mt_jdoc_t *doc = NULL;
  const mt_jval_t *tasks = NULL;
  if (snap->tasks_json != NULL &&
      mt_jdoc_parse(snap->tasks_json, strlen(snap->tasks_json), &doc, &why) ==
          0)
    tasks = mt_jval_get_array(mt_jdoc_root(doc), "tasks");
  if (tasks == NULL)
    snprintf(line, sizeof line, "not ready: the task files are not loaded");
  else
    snprintf(line, sizeof line,
             "ready: database reachable, schema current, %zu task%s loaded "
             "(version %s)",
             tasks->len, tasks->len == 1 ? "" : "s",
             mt_jval_get_str(mt_jdoc_root(doc), "version")
                 ? mt_jval_get_str(mt_jdoc_root(doc), "version")
                 : "?");
  mt_web_text(r, tasks ? 200 : 503, line);
  mt_jdoc_free(doc);
  return 0;
}

/* ---- POST /tasks/<id>/retry|cancel ------------------------------------- */

int mt_web_page_act(mt_store_t *store, const char *db_error, const char *action,
                    int64_t id, mt_web_response_t *r) {
  mt_store_change_t change;
  mt_err_t why;
  char line[4400];
  if (store == NULL) {
    snprintf(line, sizeof line, "database: %s",
             db_error ? db_error : "no connection");
    mt_web_text(r, 503, line);
    return 0;
  }
  int rc = strcmp(action, "retry") == 0
               ? mt_store_retry_task(store, id, &change, &why)
               : mt_store_cancel_task(store, id, &change, &why);
  if (rc != 0) {
    snprintf(line, sizeof line, "%s task %" PRId64 ": %s", action, id, why.msg);
    mt_web_text(r, 503, line);
    return rc;
  }
  switch (change.outcome) {
  case MT_STORE_CHANGED:
    /* Back to the page, which shows the change (POST, redirect, GET). */
    r->status = 303;
    r->location = "/";
    r->content_type = "text/plain; charset=utf-8";
    return 0;
  case MT_STORE_NO_TASK:
    snprintf(line, sizeof line, "no task %" PRId64, id);
    mt_web_text(r, 404, line);
    return 0;
  case MT_STORE_WRONG_STATE:
    snprintf(line, sizeof line, "task %" PRId64 " is %s: %s refused", id,
             change.state, action);
    break;
  case MT_STORE_KEY_TAKEN:
    snprintf(line, sizeof line,
             "task %" PRId64 ": another live task holds its key", id);
    break;
  }
  mt_web_text(r, 409, line);
  return 0;
}

/* ---- the status page --------------------------------------------------- */

/* Appends s with &, <, >, " and ' as entities: everything the page prints
 * from the database or the task files goes through here (a task's error
 * is user input). */
static int html(mt_buf_t *out, const char *s) {
  int e = 0;
  for (; !e && s != NULL && *s; s++) {
    switch (*s) {
    case '&': e = mt_buf_puts(out, "&amp;"); break;
    case '<': e = mt_buf_puts(out, "&lt;"); break;
    case '>': e = mt_buf_puts(out, "&gt;"); break;
    case '"': e = mt_buf_puts(out, "&quot;"); break;
    case '\'': e = mt_buf_puts(out, "&#39;"); break;
    default: e = mt_buf_putc(out, *s);
    }
  }
  return e;
}

static int cell(mt_buf_t *out, const char *s) {
  return mt_buf_puts(out, "<td>") || html(out, s ? s : "") ||
         mt_buf_puts(out, "</td>");
}

static int num_cell(mt_buf_t *out, double v) {
  return mt_buf_printf(out, "<td class=n>%.15g</td>", v);
}

/* "3 s", "2 min", "4.5 h" */
static void age_text(char *buf, size_t size, double seconds) {
  if (seconds < 120)
    snprintf(buf, size, "%.1f s", seconds);
  else if (seconds < 7200)
    snprintf(buf, size, "%.0f min", seconds / 60);
  else
    snprintf(buf, size, "%.1f h", seconds / 3600);
}

static const char *const states[] = {"scheduled", "running", "completed",
                                     "failed", "cancelled"};
#define NSTATES 5

static const char style[] =
    "body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;padding:8px;"
    "max-width:1100px;color:#222}"
    "h1{font-size:1.4em;margin:.3em 0}h2{font-size:1.1em;margin:1.2em 0 .3em}"
    "table{border-collapse:collapse;width:100%}"
    "td,th{border-bottom:1px solid #ddd;padding:3px 6px;text-align:left;"
    "vertical-align:top}"
    "td.n,th.n{text-align:right}"
    ".wrap{overflow-x:auto}"
    "pre{white-space:pre-wrap;word-break:break-word;margin:2px 0;"
    "font-size:.85em;background:#f6f6f6;padding:4px}"
    ".bad{color:#a00}.note{color:#666}"
    "form{display:inline}button{margin:2px}"
    ".failure{border-bottom:1px solid #ddd;padding:4px 0}";

static int page_head(mt_buf_t *out) {
  return mt_buf_printf(
      out,
      "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
      "<meta name=viewport content=\"width=device-width,initial-scale=1\">"
      "<meta http-equiv=refresh content=10>"
      "<title>moontask</title><style>%s</style></head><body>\n"
      "<h1>moontask</h1>\n",
      style);
}

static int summary(mt_buf_t *out, const mt_jval_t *root,
                   const mt_web_snapshot_t *snap) {
  char age[32] = "none";
  double lag = mt_jval_get_num(root, "oldest_due_seconds", -1);
  if (lag >= 0)
    age_text(age, sizeof age, lag);
  int e = mt_buf_printf(out,
                        "<p id=summary>Workers busy: %d of %d &middot; "
                        "claimed and waiting: %d &middot; oldest due task "
                        "waiting: %s</p>\n",
                        snap->busy, snap->workers, snap->queued, age);
  if (!e && !snap->admin)
    e = mt_buf_puts(out, "<p class=note>Read-only: no admin token is "
                         "configured (http.admin_token).</p>\n");
  else if (!e && !snap->authorized)
    e = mt_buf_puts(out, "<form method=post action=/login>"
                         "<label>Admin token <input type=password name=token "
                         "autocomplete=current-password></label> "
                         "<button>Sign in</button></form>\n");
  return e;
}

/* Counts by state, then by task and state, from `counts`. */
static int counts_tables(mt_buf_t *out, const mt_jval_t *counts) {
  double total[NSTATES] = {0};
  int e = mt_buf_puts(out, "<h2>Tasks by name</h2><div class=wrap>"
                           "<table id=by-task><tr><th>task</th>");
  for (int s = 0; !e && s < NSTATES; s++)
    e = mt_buf_printf(out, "<th class=n>%s</th>", states[s]);
  e = e || mt_buf_puts(out, "</tr>\n");
  /* counts is ordered by name, then state: one row per name. */
  for (size_t i = 0; !e && counts && i < counts->len;) {
    const char *name = mt_jval_get_str(&counts->u.items[i], "name");
    double row[NSTATES] = {0};
    for (; i < counts->len &&
           strcmp(or_empty(mt_jval_get_str(&counts->u.items[i], "name")),
                  or_empty(name)) == 0;
         i++) {
      const char *state = mt_jval_get_str(&counts->u.items[i], "state");
      for (int s = 0; s < NSTATES; s++)
        if (state && strcmp(state, states[s]) == 0) {
          row[s] = mt_jval_get_num(&counts->u.items[i], "count", 0);
          total[s] += row[s];
        }
    }
    e = mt_buf_puts(out, "<tr>") || cell(out, name);
    for (int s = 0; !e && s < NSTATES; s++)
      e = num_cell(out, row[s]);
    e = e || mt_buf_puts(out, "</tr>\n");
  }
  e = e || mt_buf_puts(out, "</table></div>\n");
  /* The totals go first on the page: build them aside, then insert. */
  mt_buf_t head = MT_BUF_INIT;
  e = e || mt_buf_puts(&head, "<h2>Tasks by state</h2><table id=by-state>");
  for (int s = 0; !e && s < NSTATES; s++)
    e = mt_buf_printf(&head, "<tr><td>%s</td>", states[s]) ||
        num_cell(&head, total[s]) || mt_buf_puts(&head, "</tr>");
  e = e || mt_buf_puts(&head, "</table>\n");
  if (!e) {
    mt_buf_t rest = *out;
    *out = head;
    e = mt_buf_append(out, rest.data, rest.len);
    mt_buf_free(&rest);
  } else {
    mt_buf_free(&head);
  }
  return e;
}

static int button(mt_buf_t *out, const char *action, const char *id) {
  return mt_buf_printf(out,
                       "<form method=post action=\"/tasks/%s/%s\">"
                       "<button>%s</button></form>",
                       id, action,
                       strcmp(action, "retry") == 0 ? "Retry" : "Cancel");
}

static int failures_section(mt_buf_t *out, const mt_jval_t *failures,
                            const mt_web_snapshot_t *snap) {
  int e = mt_buf_puts(out, "<h2>Recent failures</h2><div id=failures>\n");
  if (!e && (failures == NULL || failures->len == 0))
    e = mt_buf_puts(out, "<p class=note>None.</p>\n");
  for (size_t i = 0; !e && failures && i < failures->len; i++) {
    const mt_jval_t *f = &failures->u.items[i];
    const char *state = mt_jval_get_str(f, "state");
    int failed = state && strcmp(state, "failed") == 0;
    char id[32];
    snprintf(id, sizeof id, "%.0f", mt_jval_get_num(f, "id", 0));
    e = mt_buf_printf(out, "<div class=failure id=\"task-%s\"><b>#%s</b> ", id,
                      id) ||
        html(out, mt_jval_get_str(f, "name")) ||
        mt_buf_printf(out, " &middot; <span class=%s>%s</span>",
                      failed ? "bad" : "note",
                      failed ? "failed" : "will retry") ||
        mt_buf_printf(out, " &middot; attempt %.0f",
                      mt_jval_get_num(f, "attempts", 0));
    double max = mt_jval_get_num(f, "max_attempts", -1);
    if (!e && max > 0)
      e = mt_buf_printf(out, " of %.0f", max);
    e = e || mt_buf_puts(out, " &middot; ") ||
        html(out, mt_jval_get_str(f, "at")) || mt_buf_puts(out, " ");
    if (!e && snap->authorized)
      e = failed ? button(out, "retry", id) : button(out, "cancel", id);
    e = e || mt_buf_puts(out, "<pre>") ||
        html(out, mt_jval_get_str(f, "last_error")) ||
        mt_buf_puts(out, "</pre></div>\n");
  }
  return e || mt_buf_puts(out, "</div>\n");
}

/* No cancel here: a running task's transaction is its handler's, and
 * cancel refuses anything but a waiting task. */
static int running_section(mt_buf_t *out, const mt_jval_t *running) {
  int e = mt_buf_puts(out, "<h2>Running</h2>");
  if (!e && (running == NULL || running->len == 0))
    return mt_buf_puts(out, "<p class=note>None.</p>\n");
  e = e || mt_buf_puts(out, "<div class=wrap><table id=running><tr><th>id</th>"
                            "<th>task</th><th class=n>attempt</th>"
                            "<th class=n>age</th><th>runtime</th></tr>\n");
  for (size_t i = 0; !e && i < running->len; i++) {
    const mt_jval_t *t = &running->u.items[i];
    char id[32], age[32];
    snprintf(id, sizeof id, "%.0f", mt_jval_get_num(t, "id", 0));
    age_text(age, sizeof age, mt_jval_get_num(t, "age_seconds", 0));
    e = mt_buf_printf(out, "<tr><td>%s</td>", id) ||
        cell(out, mt_jval_get_str(t, "name")) ||
        num_cell(out, mt_jval_get_num(t, "attempts", 0)) ||
        mt_buf_printf(out, "<td class=n>%s</td>", age) ||
        cell(out, mt_jval_get_str(t, "locked_by")) ||
        mt_buf_puts(out, "</tr>\n");
  }
  return e || mt_buf_puts(out, "</table></div>\n");
}

static int schedules_section(mt_buf_t *out, const mt_jval_t *schedules) {
  int e = mt_buf_puts(out, "<h2>Recurring schedules</h2>");
  if (!e && (schedules == NULL || schedules->len == 0))
    return mt_buf_puts(out, "<p class=note>None.</p>\n");
  e = e || mt_buf_puts(out, "<div class=wrap><table id=schedules><tr>"
                            "<th>name</th><th>task</th><th>expression</th>"
                            "<th>zone</th><th>next fire (UTC)</th>"
                            "<th>last fire (UTC)</th><th>error</th></tr>\n");
  for (size_t i = 0; !e && i < schedules->len; i++) {
    const mt_jval_t *s = &schedules->u.items[i];
    e = mt_buf_puts(out, "<tr>") || cell(out, mt_jval_get_str(s, "name")) ||
        cell(out, mt_jval_get_str(s, "task")) ||
        cell(out, mt_jval_get_str(s, "expression")) ||
        cell(out, mt_jval_get_str(s, "tz")) ||
        cell(out, mt_jval_get_str(s, "next_fire_at")) ||
        cell(out, mt_jval_get_str(s, "last_fire_at")) ||
        mt_buf_puts(out, "<td class=bad>") ||
        html(out, mt_jval_get_str(s, "error")) ||
        mt_buf_puts(out, "</td></tr>\n");
  }
  return e || mt_buf_puts(out, "</table></div>\n");
}

/* The task files the runtime runs: its version, each task's, and why the
 * last reload was refused, if it was. */
static int tasks_section(mt_buf_t *out, const char *tasks_json) {
  mt_jdoc_t *doc = NULL;
  mt_err_t why;
  int e = mt_buf_puts(out, "<h2>Task files</h2>");
  if (tasks_json == NULL ||
      mt_jdoc_parse(tasks_json, strlen(tasks_json), &doc, &why) != 0)
    return e || mt_buf_puts(out, "<p class=note>Unknown.</p>\n");
  const mt_jval_t *root = mt_jdoc_root(doc);
  const mt_jval_t *tasks = mt_jval_get_array(root, "tasks");
  const char *error = mt_jval_get_str(root, "error");
  e = e || mt_buf_puts(out, "<p>Version <code>") ||
      html(out, mt_jval_get_str(root, "version")) ||
      mt_buf_puts(out, "</code></p>\n");
  if (!e && error != NULL)
    e = mt_buf_puts(out, "<p class=bad id=load-error>The last reload was "
                         "refused, and this version kept running:</p><pre>") ||
        html(out, error) || mt_buf_puts(out, "</pre>\n");
  e = e || mt_buf_puts(out, "<div class=wrap><table id=task-files><tr>"
                            "<th>task</th><th>version</th><th>file</th>"
                            "</tr>\n");
  for (size_t i = 0; !e && tasks && i < tasks->len; i++) {
    const mt_jval_t *t = &tasks->u.items[i];
    e = mt_buf_puts(out, "<tr>") || cell(out, mt_jval_get_str(t, "name")) ||
        mt_buf_puts(out, "<td><code>") ||
        html(out, mt_jval_get_str(t, "version")) ||
        mt_buf_puts(out, "</code></td>") ||
        cell(out, mt_jval_get_str(t, "file")) || mt_buf_puts(out, "</tr>\n");
  }
  mt_jdoc_free(doc);
  return e || mt_buf_puts(out, "</table></div>\n");
}

int mt_web_page_status(mt_store_t *store, const char *db_error,
                       const mt_web_snapshot_t *snap, mt_web_response_t *r) {
  mt_jdoc_t *doc;
  mt_err_t why;
  int rc = read_status(store, db_error, MT_STATUS_FULL, &doc, &why);
  const mt_jval_t *root = doc ? mt_jdoc_root(doc) : NULL;
  mt_buf_t body = MT_BUF_INIT;
  int e = page_head(&body);
  if (!e && root == NULL)
    e = mt_buf_puts(&body, "<p class=bad id=db-error>The database did not "
                           "answer: ") ||
        html(&body, why.msg) || mt_buf_puts(&body, "</p>\n");
  if (!e && root != NULL) {
    mt_buf_t sections = MT_BUF_INIT;
    e = counts_tables(&sections, mt_jval_get_array(root, "counts")) ||
        failures_section(&sections, mt_jval_get_array(root, "failures"),
                         snap) ||
        running_section(&sections, mt_jval_get_array(root, "running")) ||
        schedules_section(&sections, mt_jval_get_array(root, "schedules"));
    e = e || summary(&body, root, snap) ||
        mt_buf_append(&body, sections.data, sections.len);
    mt_buf_free(&sections);
  }
  e = e || tasks_section(&body, snap->tasks_json) ||
      mt_buf_puts(&body, "</body></html>\n");
  mt_jdoc_free(doc);
  mt_buf_free(&r->body);
  r->body = body;
  r->status = e ? 500 : root != NULL ? 200 : 503;
  r->content_type = "text/html; charset=utf-8";
  return rc;
}
