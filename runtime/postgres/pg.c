#include "postgres/pg.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void trim_newline(char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
    s[--n] = '\0';
}

int mt_pg_result_error(const PGresult *res, PGconn *conn, mt_err_t *err) {
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *msg =
      res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  if (msg == NULL)
    msg = res ? PQresultErrorMessage(res) : "";
  if (msg == NULL || *msg == '\0')
    msg = PQerrorMessage(conn);
  mt_err_set(err, MT_EDB, "%s%s%s", state ? state : "", state ? ": " : "", msg);
  if (err != NULL)
    trim_newline(err->msg);
  return MT_EDB;
}

/* Replaces every occurrence of secret (len bytes) in msg with "***". The
 * message only shrinks or keeps its length: secrets shorter than the mask
 * are masked as they are. */
static void blank_out(char *msg, const char *secret, size_t len) {
  if (len == 0)
    return;
  char *from = msg, *hit;
  while ((hit = memmem(from, strlen(from), secret, len)) != NULL) {
    size_t mask = len < 3 ? len : 3;
    memmove(hit + mask, hit + len, strlen(hit + len) + 1);
    memset(hit, '*', mask);
    from = hit + mask;
  }
}

static int hex_value(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

/* Blanks a secret as written in the URL and as libpq decodes it. */
static void blank_out_both(char *msg, const char *secret, size_t len) {
  char decoded[512];
  size_t n = 0;
  for (size_t i = 0; i < len && n < sizeof decoded; i++) {
    int hi, lo;
    if (secret[i] == '%' && i + 2 < len &&
        (hi = hex_value(secret[i + 1])) >= 0 &&
        (lo = hex_value(secret[i + 2])) >= 0) {
      decoded[n++] = (char)(hi * 16 + lo);
      i += 2;
    } else {
      decoded[n++] = secret[i];
    }
  }
  blank_out(msg, secret, len);
  blank_out(msg, decoded, n);
}

/* libpq's messages about a malformed URL or conninfo quote it, password
 * and all, and error messages end up in logs: every password the URL
 * carries (user:PASSWORD@ in a URL, password=... as a query parameter or
 * a conninfo keyword) is blanked out of msg. */
static void redact_password(const char *url, char *msg) {
  const char *scheme = strstr(url, "://");
  if (scheme != NULL) {
    const char *auth = scheme + 3;
    const char *end = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *q = auth; q < end; q++)
      if (*q == '@')
        at = q;
    const char *colon =
        at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon != NULL)
      blank_out_both(msg, colon + 1, (size_t)(at - colon - 1));
  }
  for (const char *p = url; (p = strstr(p, "password")) != NULL; p += 8) {
    const char *v = p + 8;
    while (*v == ' ')
      v++;
    if (*v != '=')
      continue;
    v++;
    while (*v == ' ')
      v++;
    if (*v == '\'') {
      const char *close = strchr(v + 1, '\'');
      blank_out_both(msg, v + 1,
                     close ? (size_t)(close - v - 1) : strlen(v + 1));
    } else {
      blank_out_both(msg, v, strcspn(v, " &#"));
    }
  }
}

PGconn *mt_pg_connect(const char *url, const char *app_name, mt_err_t *err) {
  /* A server that vanished without closing the socket (a network
   * partition, a host that lost power, a firewall that drops the flow) must
   * be noticed within seconds, not when the kernel gives up: libpq leaves
   * an idle connection to the kernel's two hours of keepalive silence, a
   * statement in flight to some fifteen minutes of retransmissions, and a
   * connection attempt to two minutes of unanswered SYNs. Until then
   * discovery's loop, or a worker holding a task, waits on a dead socket.
   * So: keepalive probes after 5 s of silence, every 2 s; data left
   * unacknowledged for 10 s (tcp_user_timeout, which also bounds the
   * probes) ends the connection; a connection attempt gives up after 10 s
   * (PGCONNECT_TIMEOUT, when set, keeps its say: libpq skips an empty
   * value). Keepalives and tcp_user_timeout do nothing on a Unix socket.
   * Values in the URL still win: expand_dbname applies them after these.
   * Settings go in the startup packet's options rather than a SET: they
   * become the session's defaults, which a RESET ALL (the session reset
   * between tasks) returns to. An explicit options replaces PGOPTIONS, so
   * the environment's is carried over. */
  char options[1024];
  const char *env_options = getenv("PGOPTIONS");
  snprintf(options, sizeof options, "%s -c client_min_messages=warning",
           env_options != NULL ? env_options : "");
  const char *keys[] = {"keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        "connect_timeout",
                        "options",
                        "dbname",
                        "application_name",
                        NULL};
  const char *connect_timeout = getenv("PGCONNECT_TIMEOUT") ? "" : "10";
  const char *values[] = {"1",     "5", "2",      "3", "10000", connect_timeout,
                          options, url, app_name, NULL};
  /* expand_dbname lets `url` be a URL or a conninfo string. */
  PGconn *conn = PQconnectdbParams(keys, values, 1);
  if (conn == NULL) {
    mt_err_set(err, MT_ENOMEM, "out of memory connecting to the database");
    return NULL;
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    mt_err_set(err, MT_EDB, "cannot connect to the database: %s",
               PQerrorMessage(conn));
    if (err != NULL) {
      trim_newline(err->msg);
      redact_password(url, err->msg);
    }
    PQfinish(conn);
    return NULL;
  }
  return conn;
}

/* res if it succeeded; otherwise NULL, its error copied into err. */
static PGresult *succeeded(PGresult *res, PGconn *conn, mt_err_t *err) {
  ExecStatusType st = PQresultStatus(res);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
    return res;
  mt_pg_result_error(res, conn, err);
  PQclear(res);
  return NULL;
}

PGresult *mt_pg_exec(PGconn *conn, const char *sql, int nparams,
                     const char *const *params, mt_err_t *err) {
  return succeeded(
      PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0), conn, err);
}

PGresult *mt_pg_exec_prepared(PGconn *conn, const char *name, int nparams,
                              const char *const *params, mt_err_t *err) {
  return succeeded(PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0),
                   conn, err);
}

/* How often a wait looks at the interrupt flag. */
#define INTERRUPT_CHECK_MS 50
#define CANCEL_WAIT_MS 10000

static void cancel_statement(PGconn *conn) {
  char buf[256];
  PGcancel *cancel = PQgetCancel(conn);
  if (cancel != NULL) {
    PQcancel(cancel, buf, sizeof buf);
    PQfreeCancel(cancel);
  }
}

/* Waits until libpq has a whole result to hand out. When the deadline passes
 * or the interrupt flag is raised it asks the server to cancel and keeps
 * reading: the cancelled statement still answers, with SQLSTATE 57014. */
static int wait_result(PGconn *conn, double deadline,
                       const atomic_int *interrupt, int *cancelled) {
  while (PQisBusy(conn)) {
    int timeout_ms = -1;
    if (!*cancelled) {
      double left = deadline > 0 ? deadline - mt_now() : -1;
      if ((deadline > 0 && left <= 0) ||
          (interrupt != NULL && atomic_load(interrupt))) {
        cancel_statement(conn);
        *cancelled = 1;
        continue;
      }
      if (deadline > 0)
        timeout_ms = (int)(left * 1000) + 1;
      if (interrupt != NULL &&
          (timeout_ms < 0 || timeout_ms > INTERRUPT_CHECK_MS))
        timeout_ms = INTERRUPT_CHECK_MS;
    }
    /* A cancelled statement answers at once; one that does not within
     * this long is on a connection that is gone. */
    if (*cancelled)
      timeout_ms = CANCEL_WAIT_MS;
    struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
    int n = poll(&pfd, 1, timeout_ms);
    if (n < 0 && errno != EINTR)
      return -1;
    if (n == 0 && *cancelled)
      return -1;
    if (n > 0 && !PQconsumeInput(conn))
      return -1;
  }
  return 0;
}

/* Leaves pipeline mode after a failure midway: sends the sync point if it
 * was not sent, reads every result up to it, so that no stale result is
 * paired with a later statement. A connection that cannot be brought back
 * to a clean state is reset: its transaction, if any, is gone with it. */
static void abandon_pipeline(PGconn *conn, int synced) {
  if (PQstatus(conn) == CONNECTION_OK && (synced || PQpipelineSync(conn))) {
    while (PQstatus(conn) == CONNECTION_OK) {
      PGresult *res = PQgetResult(conn);
      if (res == NULL)
        continue; /* the end of one statement's results */
      ExecStatusType st = PQresultStatus(res);
      PQclear(res);
      if (st == PGRES_PIPELINE_SYNC)
        break;
    }
  }
  if (!PQexitPipelineMode(conn))
    PQreset(conn);
}

/* Reads one statement's results in a pipeline: the first into *out (NULL
 * when the wait failed), then up to the NULL that ends them. */
static int read_results(PGconn *conn, double deadline,
                        const atomic_int *interrupt, int *timed_out,
                        PGresult **out) {
  *out = NULL;
  if (wait_result(conn, deadline, interrupt, timed_out) != 0)
    return -1;
  *out = PQgetResult(conn);
  wait_result(conn, deadline, interrupt, timed_out);
  PGresult *rest;
  while ((rest = PQgetResult(conn)) != NULL)
    PQclear(rest);
  return 0;
}

static int send_stmt(PGconn *conn, const mt_pg_stmt_t *st) {
  if (st->prepared != NULL &&
      !PQsendPrepare(conn, st->name, st->sql, st->nparams, NULL))
    return 0;
  return st->name != NULL ? PQsendQueryPrepared(conn, st->name, st->nparams,
                                                st->params, NULL, NULL, 0)
                          : PQsendQueryParams(conn, st->sql, st->nparams, NULL,
                                              st->params, NULL, NULL, 0);
}

int mt_pg_pipeline(PGconn *conn, const mt_pg_stmt_t *stmts, int n,
                   PGresult **results, double deadline,
                   const atomic_int *interrupt, mt_err_t *err) {
  int rc = 0, timed_out = 0, failed_at = -1;
  for (int i = 0; i < n; i++) {
    results[i] = NULL;
    if (stmts[i].prepared != NULL)
      *stmts[i].prepared = 0;
  }
  if (!PQenterPipelineMode(conn))
    return mt_err_set(err, MT_EDB, "cannot enter pipeline mode: %s",
                      PQerrorMessage(conn));
  for (int i = 0; i < n; i++) {
    if (!send_stmt(conn, &stmts[i])) {
      rc = mt_err_set(err, MT_EDB, "%s", PQerrorMessage(conn));
      abandon_pipeline(conn, 0);
      return rc;
    }
  }
  if (!PQpipelineSync(conn)) {
    rc = mt_err_set(err, MT_EDB, "%s", PQerrorMessage(conn));
    abandon_pipeline(conn, 0);
    return rc;
  }
  for (int i = 0; i < n; i++) {
    /* A statement prepared here has two sets of results: the prepare's
     * first, whose error (a syntax error, say) is the statement's. */
    for (int part = stmts[i].prepared != NULL ? 0 : 1; part < 2; part++) {
      PGresult *res;
      if (read_results(conn, deadline, interrupt, &timed_out, &res) != 0) {
        rc = mt_err_set(err, MT_EDB, "%s", PQerrorMessage(conn));
        abandon_pipeline(conn, 1);
        return rc;
      }
      ExecStatusType st = PQresultStatus(res);
      if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && failed_at < 0) {
        failed_at = i;
        if (st == PGRES_PIPELINE_ABORTED)
          mt_err_set(err, MT_EDB, "statement %d aborted by an earlier error",
                     i + 1);
        else
          mt_pg_result_error(res, conn, err);
      }
      if (part == 1) {
        results[i] = res;
      } else {
        *stmts[i].prepared = st == PGRES_COMMAND_OK;
        PQclear(res);
      }
    }
  }
  /* The sync point. */
  wait_result(conn, deadline, interrupt, &timed_out);
  PGresult *sync = PQgetResult(conn);
  PQclear(sync);
  if (failed_at >= 0)
    rc = timed_out ? MT_ETIMEDOUT : MT_EDB;
  if (!PQexitPipelineMode(conn))
    abandon_pipeline(conn, 1);
  return rc;
}

int mt_pg_exec_script(PGconn *conn, const char *sql, double deadline,
                      mt_err_t *err) {
  int rc = 0, cancelled = 0;
  if (!PQsendQuery(conn, sql))
    return mt_err_set(err, MT_EDB, "%s", PQerrorMessage(conn));
  for (;;) {
    if (wait_result(conn, deadline, NULL, &cancelled) != 0) {
      rc = mt_err_set(err, MT_EDB, "%s", PQerrorMessage(conn));
      if (err != NULL)
        trim_newline(err->msg);
      break;
    }
    PGresult *res = PQgetResult(conn);
    if (res == NULL)
      break;
    ExecStatusType st = PQresultStatus(res);
    if (rc == 0 && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
      rc = mt_pg_result_error(res, conn, err);
    PQclear(res);
  }
  return rc != 0 && cancelled ? MT_ETIMEDOUT : rc;
}

int mt_pg_id_array(mt_buf_t *buf, const int64_t *ids, size_t n) {
  int rc = mt_buf_putc(buf, '{');
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = mt_buf_printf(buf, i ? ",%" PRId64 : "%" PRId64, ids[i]);
  return rc ? rc : mt_buf_putc(buf, '}');
}
