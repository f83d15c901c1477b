/*
 * The runtime's HTTP endpoint (config.lua `http = { listen = ... }`), for
 * operators: /metrics in the Prometheus text format, /healthz, /readyz, and
 * a status page at / with retry and cancel buttons for an admin.
 *
 * It runs on discovery's libuv loop and never blocks it: requests are read
 * there (llhttp parses them), and whatever needs the database (every page
 * but /healthz) runs in libuv's thread pool on a connection of the
 * endpoint's own, one request at a time, then answers from the loop. One
 * response per connection (Connection: close); a request that is too
 * large, too slow (10 s) or malformed gets its 4xx and the connection
 * ends; at most 64 connections are served at once.
 *
 * Without an admin token (http.admin_token) the page is read-only and the
 * POST routes answer 403. With one, POST /tasks/<id>/retry and
 * /tasks/<id>/cancel need it, as `Authorization: Bearer <token>` or as the
 * cookie POST /login sets (HttpOnly, SameSite=Strict, so that another site
 * cannot make the browser send it).
 *
 * Ownership: the endpoint keeps pointers to opts' strings and callbacks for
 * its life. Its handles are the loop's: mt_web_close() closes them, the
 * loop's last run (mt_discovery_free) finishes that, and mt_web_free()
 * frees what is left.
 */
#ifndef MT_WEB_H
#define MT_WEB_H

#include <uv.h>

#include "common/error.h"
#include "executor/executor.h"

typedef struct mt_web_s mt_web_t;

typedef struct mt_web_opts_s {
  const char *listen;       /* "host:port", an IPv4 or [IPv6] address */
  const char *admin_token;  /* NULL: read-only */
  const char *database_url; /* the endpoint's own connection */
  mt_executor_t *executor;  /* workers busy, for /metrics */
  int workers;
  /* The task files the runtime runs, as a JSON object {version, tasks:
   * [{name, version, file}], error} (error: why the last reload was
   * refused, or null), malloc'd. Called on the loop thread. */
  char *(*describe_tasks)(void *arg);
  void *describe_arg;
} mt_web_opts_t;

/* Listens on opts->listen. MT_ECONFIG naming `http.listen` when the
 * address is malformed, MT_ESYS when it cannot be bound. */
int mt_web_start(mt_web_t **out, uv_loop_t *loop, const mt_web_opts_t *opts,
                 mt_err_t *err);

/* Stops listening and ends every connection; a page still in the thread
 * pool finishes there and answers nothing. Call it on the loop's thread
 * once the loop has stopped (mt_discovery_run returned). Accepts NULL. */
void mt_web_close(mt_web_t *w);

/* Frees the endpoint, after mt_web_close and after the loop has run its
 * close callbacks and the pages' ends (mt_discovery_free does). Accepts
 * NULL. */
void mt_web_free(mt_web_t *w);

#endif
