/* The endpoint's server: connections on the loop, requests parsed by
 * llhttp, routed to the pages (pages.c) in the thread pool, answered from
 * the loop. */
#include <arpa/inet.h>
#include <llhttp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "web/internal.h"
#include "web/web.h"

#define MAX_CONNECTIONS 64
#define MAX_URL 2048
#define MAX_HEADERS 16384 /* bytes of header names and values together */
#define MAX_BODY 4096
#define IDLE_MS 10000 /* a request must arrive whole within this */

typedef enum route_e {
  ROUTE_NONE,
  ROUTE_STATUS,
  ROUTE_METRICS,
  ROUTE_READY,
  ROUTE_ACT,
} route_t;

typedef struct conn_s conn_t;

struct mt_web_s {
  mt_web_opts_t opts;
  uv_loop_t *loop;
  uv_tcp_t listener;
  conn_t *conns; /* every open connection */
  int nconns;
  int pending; /* requests in the thread pool */
  int closed;  /* mt_web_close was called: answer nothing more */
  int handles; /* handles closing or open, the listener's included */
  llhttp_settings_t settings;
  /* The endpoint's connection, used by one request at a time. */
  pthread_mutex_t db_lock;
  mt_store_t *store;
};

struct conn_s {
  conn_t *next, *prev;
  mt_web_t *web;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shutdown;
  uv_write_t write;
  int handles; /* of tcp and timer, still open */
  int working; /* in the thread pool */
  int closing;
  int answered; /* a response is on its way: read no more */
  llhttp_t parser;
  mt_buf_t url, field, value, body;
  size_t header_bytes;
  char *authorization, *cookie;
  int complete;
  int refused; /* the status of the limit a callback refused over */
  /* The routed request. */
  route_t route;
  const char *action;
  int64_t id;
  mt_web_snapshot_t snap;
  uv_work_t work;
  mt_web_response_t res;
  mt_buf_t out; /* the response's bytes */
};

static void conn_close(conn_t *c);
static void on_timeout(uv_timer_t *timer);

/* ---- answering --------------------------------------------------------- */

static const char *reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 303: return "See Other";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 431: return "Request Header Fields Too Large";
  case 503: return "Service Unavailable";
  default: return "Internal Server Error";
  }
}

void mt_web_text(mt_web_response_t *r, int status, const char *text) {
  r->status = status;
  r->content_type = "text/plain; charset=utf-8";
  mt_buf_reset(&r->body);
  mt_buf_printf(&r->body, "%s\n", text);
}

static void conn_free(conn_t *c) {
  mt_buf_free(&c->url);
  mt_buf_free(&c->field);
  mt_buf_free(&c->value);
  mt_buf_free(&c->body);
  mt_buf_free(&c->res.body);
  mt_buf_free(&c->out);
  free(c->authorization);
  free(c->cookie);
  free(c->snap.tasks_json);
  free(c);
}

/* A connection is freed once both its handles closed and the thread pool
 * is done with it, whichever comes last. */
static void on_closed(uv_handle_t *handle) {
  conn_t *c = handle->data;
  c->web->handles--;
  if (--c->handles == 0 && !c->working)
    conn_free(c);
}

static void conn_close(conn_t *c) {
  if (c->closing)
    return;
  c->closing = 1;
  mt_web_t *w = c->web;
  if (c->prev)
    c->prev->next = c->next;
  else
    w->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  w->nconns--;
  uv_close((uv_handle_t *)&c->timer, on_closed);
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  conn_close(req->data);
}

static void on_written(uv_write_t *req, int status) {
  conn_t *c = req->data;
  /* Shut the sending side and close after: closing at once, with a request
   * still unread, would reset the connection and could lose the answer. */
  if (status != 0 || c->closing ||
      uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
    conn_close(c);
}

/* Sends c->res. Called on the loop. */
static void respond(conn_t *c) {
  mt_web_response_t *r = &c->res;
  c->answered = 1;
  if (c->closing)
    return;
  int head = llhttp_get_method(&c->parser) == HTTP_HEAD;
  mt_buf_reset(&c->out);
  int rc = mt_buf_printf(&c->out,
                         "HTTP/1.1 %d %s\r\n"
                         "Content-Type: %s\r\n"
                         "Content-Length: %zu\r\n"
                         "Connection: close\r\n"
                         "Cache-Control: no-store\r\n"
                         "X-Content-Type-Options: nosniff\r\n"
                         "Referrer-Policy: no-referrer\r\n",
                         r->status, reason(r->status),
                         r->content_type ? r->content_type : "text/plain",
                         r->body.len);
  /* The page runs no script and loads nothing: a task's error text that
   * slipped through escaping still could not act. */
  if (rc == 0 && r->content_type &&
      strncmp(r->content_type, "text/html", 9) == 0)
    rc = mt_buf_puts(&c->out, "Content-Security-Policy: default-src 'none'; "
                              "style-src 'unsafe-inline'; form-action 'self'; "
                              "frame-ancestors 'none'; base-uri 'none'\r\n");
  if (rc == 0 && r->location)
    rc = mt_buf_printf(&c->out, "Location: %s\r\n", r->location);
  if (rc == 0 && r->set_cookie)
    rc = mt_buf_printf(&c->out, "Set-Cookie: %s\r\n", r->set_cookie);
  if (rc == 0)
    rc = mt_buf_puts(&c->out, "\r\n");
  if (rc == 0 && !head && r->body.len)
    rc = mt_buf_append(&c->out, r->body.data, r->body.len);
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_timer_start(&c->timer, on_timeout, IDLE_MS, 0);
  uv_buf_t buf = uv_buf_init(c->out.data, (unsigned)c->out.len);
  c->write.data = c;
  c->shutdown.data = c;
  if (rc != 0 ||
      uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0)
    conn_close(c);
}

static void respond_text(conn_t *c, int status, const char *text) {
  mt_web_text(&c->res, status, text);
  respond(c);
}

/* ---- the thread pool --------------------------------------------------- */

static void run_page(uv_work_t *req) {
  conn_t *c = req->data;
  mt_web_t *w = c->web;
  mt_err_t err = {{0}};
  pthread_mutex_lock(&w->db_lock);
  if (w->store == NULL && mt_store_open(&w->store, w->opts.database_url,
                                        "moontask http", &err) != 0)
    w->store = NULL;
  const char *db_error = w->store ? NULL : err.msg;
  int rc = 0;
  switch (c->route) {
  case ROUTE_STATUS:
    rc = mt_web_page_status(w->store, db_error, &c->snap, &c->res);
    break;
  case ROUTE_METRICS:
    rc = mt_web_page_metrics(w->store, db_error, &c->snap, &c->res);
    break;
  case ROUTE_READY:
    rc = mt_web_page_ready(w->store, db_error, &c->snap, &c->res);
    break;
  case ROUTE_ACT:
    rc = mt_web_page_act(w->store, db_error, c->action, c->id, &c->res);
    break;
  case ROUTE_NONE: break;
  }
  /* A failed call may have lost the connection: the next request makes a
   * new one rather than finding out again. */
  if (rc != 0) {
    mt_store_free(w->store);
    w->store = NULL;
  }
  pthread_mutex_unlock(&w->db_lock);
}

static void after_page(uv_work_t *req, int status) {
  (void)status;
  conn_t *c = req->data;
  mt_web_t *w = c->web;
  w->pending--;
  c->working = 0;
  if (!c->closing && !w->closed)
    respond(c);
  else if (c->handles == 0) /* both closed meanwhile */
    conn_free(c);
}

/* ---- routing ----------------------------------------------------------- */

/* Whether the request carries the admin token, as a bearer token or the
 * cookie /login sets. Compared in constant time. */
static int token_equal(const char *given, size_t n, const char *token) {
  size_t len = strlen(token);
  unsigned char diff = (unsigned char)(n != len);
  for (size_t i = 0; i < n && i < len; i++)
    diff |= (unsigned char)(given[i] ^ token[i]);
  return diff == 0;
}

static int authorized(const conn_t *c) {
  const char *token = c->web->opts.admin_token;
  if (token == NULL || *token == '\0')
    return 0;
  const char *a = c->authorization;
  if (a != NULL && strncmp(a, "Bearer ", 7) == 0 &&
      token_equal(a + 7, strlen(a + 7), token))
    return 1;
  for (const char *k = c->cookie; k != NULL && *k;) {
    k += strspn(k, " ;");
    size_t len = strcspn(k, ";");
    if (strncmp(k, "moontask_admin=", 15) == 0 && len >= 15 &&
        token_equal(k + 15, len - 15, token))
      return 1;
    k += len;
  }
  return 0;
}

/* The value of `token` in an application/x-www-form-urlencoded body,
 * decoded into out (at most size - 1 bytes). */
static void form_token(const char *body, char *out, size_t size) {
  size_t n = 0;
  out[0] = '\0';
  for (const char *p = body; p != NULL && *p; p = strchr(p, '&')) {
    p += *p == '&';
    if (strncmp(p, "token=", 6) != 0)
      continue;
    for (p += 6; *p && *p != '&' && n + 1 < size; p++) {
      unsigned hex;
      if (*p == '+')
        out[n++] = ' ';
      else if (*p == '%' && p[1] && p[2] && sscanf(p + 1, "%2x", &hex) == 1) {
        out[n++] = (char)hex;
        p += 2;
      } else
        out[n++] = *p;
    }
    out[n] = '\0';
    return;
  }
}

static void login(conn_t *c) {
  const char *token = c->web->opts.admin_token;
  char given[512];
  form_token(c->body.data, given, sizeof given);
  if (token == NULL || *token == '\0') {
    respond_text(c, 403,
                 "read-only: no admin token is configured (http.admin_token)");
    return;
  }
  if (!token_equal(given, strlen(given), token)) {
    respond_text(c, 403, "wrong admin token");
    return;
  }
  /* The cookie is the token itself: nothing to keep on the server, and
   * changing the token in config.lua signs every browser out. */
  snprintf(c->res.cookie, sizeof c->res.cookie,
           "moontask_admin=%s; Path=/; HttpOnly; SameSite=Strict", given);
  c->res.set_cookie = c->res.cookie;
  c->res.status = 303;
  c->res.location = "/";
  c->res.content_type = "text/plain; charset=utf-8";
  respond(c);
}

/* /tasks/<id>/<action> */
static int parse_act(conn_t *c, const char *path) {
  char action[16];
  char *end;
  if (strncmp(path, "/tasks/", 7) != 0)
    return 0;
  long long id = strtoll(path + 7, &end, 10);
  if (end == path + 7 || id <= 0 || *end != '/' ||
      strlen(end + 1) >= sizeof action)
    return 0;
  strcpy(action, end + 1);
  if (strcmp(action, "retry") == 0)
    c->action = "retry";
  else if (strcmp(action, "cancel") == 0)
    c->action = "cancel";
  else
    return 0;
  c->id = id;
  return 1;
}

static void route(conn_t *c) {
  mt_web_t *w = c->web;
  int method = llhttp_get_method(&c->parser);
  int get = method == HTTP_GET || method == HTTP_HEAD;
  char path[MAX_URL + 1];
  size_t n = strcspn(c->url.data ? c->url.data : "", "?#");
  memcpy(path, c->url.data ? c->url.data : "", n);
  path[n] = '\0';

  int status = 0;
  const char *text = NULL;
  if (strcmp(path, "/healthz") == 0) {
    status = get ? 200 : 405;
    text = get ? "ok" : "use GET";
  } else if (strcmp(path, "/login") == 0) {
    if (method == HTTP_POST) {
      login(c);
      return;
    }
    status = 405;
    text = "use POST";
  } else if (strcmp(path, "/") == 0 || strcmp(path, "/metrics") == 0 ||
             strcmp(path, "/readyz") == 0) {
    c->route = path[1] == '\0'  ? ROUTE_STATUS
               : path[1] == 'm' ? ROUTE_METRICS
                                : ROUTE_READY;
    if (!get) {
      status = 405;
      text = "use GET";
    }
  } else if (parse_act(c, path)) {
    c->route = ROUTE_ACT;
    if (method != HTTP_POST) {
      status = 405;
      text = "use POST";
    } else if (w->opts.admin_token == NULL || *w->opts.admin_token == '\0') {
      status = 403;
      text = "read-only: no admin token is configured (http.admin_token)";
    } else if (!authorized(c)) {
      status = 401;
      text = "this needs the admin token";
    }
  } else {
    status = 404;
    text = "not found";
  }
  if (status != 0) {
    respond_text(c, status, text);
    return;
  }

  /* What the page needs from the loop's side, read here. */
  c->snap.workers = w->opts.workers;
  c->snap.admin = w->opts.admin_token != NULL && *w->opts.admin_token;
  c->snap.authorized = authorized(c);
  if (w->opts.executor != NULL) {
    int online;
    mt_executor_load(w->opts.executor, &c->snap.queued, &c->snap.busy, &online);
  }
  if (w->opts.describe_tasks != NULL)
    c->snap.tasks_json = w->opts.describe_tasks(w->opts.describe_arg);
  c->work.data = c;
  if (uv_queue_work(w->loop, &c->work, run_page, after_page) != 0) {
    respond_text(c, 503, "busy");
    return;
  }
  c->working = 1;
  w->pending++;
  uv_read_stop((uv_stream_t *)&c->tcp); /* one request per connection */
}

/* ---- parsing ----------------------------------------------------------- */

static conn_t *conn_of(llhttp_t *p) { return p->data; }

static int on_url(llhttp_t *p, const char *at, size_t len) {
  conn_t *c = conn_of(p);
  if (c->url.len + len > MAX_URL) {
    c->refused = 414;
    return HPE_USER;
  }
  return mt_buf_append(&c->url, at, len) ? HPE_USER : 0;
}

/* A piece of a header's name or value, counted against MAX_HEADERS. */
static int header_piece(conn_t *c, mt_buf_t *into, const char *at, size_t len) {
  c->header_bytes += len;
  if (c->header_bytes > MAX_HEADERS) {
    c->refused = 431;
    return HPE_USER;
  }
  return mt_buf_append(into, at, len) ? HPE_USER : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  return header_piece(conn_of(p), &conn_of(p)->field, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  return header_piece(conn_of(p), &conn_of(p)->value, at, len);
}

/* Keeps the two headers the endpoint reads; the first of each counts. */
static int on_header_value_complete(llhttp_t *p) {
  conn_t *c = conn_of(p);
  const char *field = c->field.data ? c->field.data : "";
  char **slot = strcasecmp(field, "Authorization") == 0 ? &c->authorization
                : strcasecmp(field, "Cookie") == 0      ? &c->cookie
                                                        : NULL;
  if (slot != NULL && *slot == NULL)
    *slot = strdup(c->value.data ? c->value.data : "");
  mt_buf_reset(&c->field);
  mt_buf_reset(&c->value);
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  conn_t *c = conn_of(p);
  if (c->body.len + len > MAX_BODY) {
    c->refused = 413;
    return HPE_USER;
  }
  return mt_buf_append(&c->body, at, len) ? HPE_USER : 0;
}

static int on_message_complete(llhttp_t *p) {
  conn_of(p)->complete = 1;
  return HPE_PAUSED; /* one request; what follows is not read */
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)handle;
  buf->base = malloc(suggested);
  buf->len = buf->base ? suggested : 0;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = stream->data;
  if (nread < 0 || c->answered) {
    free(buf->base);
    if (nread < 0)
      conn_close(c); /* the client went away (or sent only half) */
    return;
  }
  llhttp_errno_t e = llhttp_execute(&c->parser, buf->base, (size_t)nread);
  free(buf->base);
  if (e == HPE_PAUSED && c->complete)
    route(c);
  else if (e == HPE_USER && c->refused)
    respond_text(c, c->refused, "request too large");
  else if (e == HPE_USER)
    respond_text(c, 503, "out of memory");
  else if (e != HPE_OK)
    respond_text(c, 400, llhttp_get_error_reason(&c->parser));
}

/* The connection's clock: a request must arrive whole within IDLE_MS, and
 * its answer be taken within as long again; a page in the pool waits for
 * the database, whose own timeouts bound it. */
static void on_timeout(uv_timer_t *timer) {
  conn_t *c = timer->data;
  if (c->working)
    uv_timer_start(&c->timer, on_timeout, IDLE_MS, 0);
  else if (c->answered)
    conn_close(c); /* a client that does not read its answer */
  else
    respond_text(c, 408, "request timed out");
}

static void on_connection(uv_stream_t *server, int status) {
  mt_web_t *w = server->data;
  if (status != 0)
    return;
  conn_t *c = calloc(1, sizeof *c);
  if (c == NULL || uv_tcp_init(w->loop, &c->tcp) != 0) {
    free(c);
    return;
  }
  c->web = w;
  c->tcp.data = c;
  c->handles = 1;
  w->handles++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
      w->nconns >= MAX_CONNECTIONS) {
    /* Over the limit: refused by closing, before reading a byte. */
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  uv_timer_init(w->loop, &c->timer);
  c->timer.data = c;
  c->handles++;
  w->handles++;
  c->next = w->conns;
  if (w->conns)
    w->conns->prev = c;
  w->conns = c;
  w->nconns++;
  llhttp_init(&c->parser, HTTP_REQUEST, &w->settings);
  c->parser.data = c;
  uv_timer_start(&c->timer, on_timeout, IDLE_MS, 0);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- the endpoint ------------------------------------------------------ */

/* "host:port" or "[v6]:port" into addr; "localhost" is 127.0.0.1. */
static int parse_listen(const char *listen, struct sockaddr_storage *addr,
                        mt_err_t *err) {
  char host[256];
  const char *colon = strrchr(listen, ':');
  char *end;
  long port = colon ? strtol(colon + 1, &end, 10) : -1;
  size_t hlen = colon ? (size_t)(colon - listen) : 0;
  if (colon == NULL || colon[1] == '\0' || *end != '\0' || port < 0 ||
      port > 65535 || hlen == 0 || hlen >= sizeof host)
    return mt_err_set(err, MT_ECONFIG,
                      "http.listen: \"%s\" is not host:port (such as "
                      "127.0.0.1:9464 or [::1]:9464)",
                      listen);
  memcpy(host, listen, hlen);
  host[hlen] = '\0';
  int rc;
  if (host[0] == '[' && host[hlen - 1] == ']') {
    host[hlen - 1] = '\0';
    rc = uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)addr);
  } else {
    rc = uv_ip4_addr(strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
                     (int)port, (struct sockaddr_in *)addr);
  }
  if (rc != 0)
    return mt_err_set(err, MT_ECONFIG,
                      "http.listen: \"%s\" is not an IP address (a name "
                      "other than localhost is not looked up)",
                      host);
  return 0;
}

static void on_listener_closed(uv_handle_t *handle) {
  mt_web_t *w = handle->data;
  w->handles--;
}

static void on_failed_listener_closed(uv_handle_t *handle) {
  mt_web_t *w = handle->data;
  pthread_mutex_destroy(&w->db_lock);
  free(w);
}

int mt_web_start(mt_web_t **out, uv_loop_t *loop, const mt_web_opts_t *opts,
                 mt_err_t *err) {
  struct sockaddr_storage addr;
  int rc = parse_listen(opts->listen, &addr, err);
  if (rc != 0)
    return rc;
  mt_web_t *w = calloc(1, sizeof *w);
  if (w == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  w->opts = *opts;
  w->loop = loop;
  pthread_mutex_init(&w->db_lock, NULL);
  llhttp_settings_init(&w->settings);
  w->settings.on_url = on_url;
  w->settings.on_header_field = on_header_field;
  w->settings.on_header_value = on_header_value;
  w->settings.on_header_value_complete = on_header_value_complete;
  w->settings.on_body = on_body;
  w->settings.on_message_complete = on_message_complete;
  uv_tcp_init(loop, &w->listener);
  w->listener.data = w;
  w->handles = 1;
  int e = uv_tcp_bind(&w->listener, (const struct sockaddr *)&addr, 0);
  if (e == 0)
    e = uv_listen((uv_stream_t *)&w->listener, 128, on_connection);
  if (e != 0) {
    /* The listener is the loop's until it has closed: the endpoint goes
     * with it, when the loop runs next (mt_discovery_free at the latest). */
    uv_close((uv_handle_t *)&w->listener, on_failed_listener_closed);
    return mt_err_set(err, MT_ESYS, "http.listen: cannot listen on %s: %s",
                      opts->listen, uv_strerror(e));
  }
  struct sockaddr_storage bound;
  int len = sizeof bound;
  char host[64] = "?";
  int port = 0;
  if (uv_tcp_getsockname(&w->listener, (struct sockaddr *)&bound, &len) == 0) {
    if (bound.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&bound, host, sizeof host);
      port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&bound, host, sizeof host);
      port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    }
  }
  mt_log_event(MT_LOG_INFO, "http: listening", MT_LOG_S("address", host),
               MT_LOG_I("port", port),
               MT_LOG_S("admin", w->opts.admin_token ? "token" : "read-only"));
  *out = w;
  return 0;
}

void mt_web_close(mt_web_t *w) {
  if (w == NULL)
    return;
  w->closed = 1;
  if (!uv_is_closing((uv_handle_t *)&w->listener))
    uv_close((uv_handle_t *)&w->listener, on_listener_closed);
  while (w->conns != NULL)
    conn_close(w->conns);
}

void mt_web_free(mt_web_t *w) {
  if (w == NULL)
    return;
  /* A handle still open, or a page still in the pool, would point into
   * freed memory: better leak the endpoint than that. */
  if (w->handles > 0 || w->pending > 0)
    return;
  mt_store_free(w->store);
  pthread_mutex_destroy(&w->db_lock);
  free(w);
}
