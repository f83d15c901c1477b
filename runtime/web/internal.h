/*
 * What the endpoint's server (server.c: connections, parsing, routing) and
 * its pages (pages.c: what each route answers) share. Not for the rest of
 * the runtime, which sees web.h only.
 */
#ifndef MT_WEB_INTERNAL_H
#define MT_WEB_INTERNAL_H

#include <stdint.h>

#include "common/buf.h"
#include "postgres/store.h"

/* A response under construction: status line, type and body; server.c
 * adds the rest of the headers. */
typedef struct mt_web_response_s {
  int status;               /* 200, 303, 404, ... */
  const char *content_type; /* a static string */
  const char *location;     /* a 303's target, static */
  const char *set_cookie;   /* NULL, or a header value (owned: cookie) */
  char cookie[600];
  mt_buf_t body;
} mt_web_response_t;

/* What a page is built from, read on the loop before the request goes to
 * the thread pool. */
typedef struct mt_web_snapshot_s {
  char *tasks_json; /* opts.describe_tasks' answer (malloc'd), or NULL */
  int workers, busy, queued;
  int admin;      /* an admin token is configured */
  int authorized; /* and this request carried it */
} mt_web_snapshot_t;

/* The pages, run in the thread pool with the endpoint's connection (store
 * NULL when it could not be made; why in db_error). Each fills r, and
 * returns 0 or the code of a database call that failed, after which the
 * server makes a new connection for the next request. */
int mt_web_page_status(mt_store_t *store, const char *db_error,
                       const mt_web_snapshot_t *snap, mt_web_response_t *r);
int mt_web_page_metrics(mt_store_t *store, const char *db_error,
                        const mt_web_snapshot_t *snap, mt_web_response_t *r);
int mt_web_page_ready(mt_store_t *store, const char *db_error,
                      const mt_web_snapshot_t *snap, mt_web_response_t *r);
/* POST /tasks/<id>/retry or cancel (action "retry" or "cancel"). */
int mt_web_page_act(mt_store_t *store, const char *db_error, const char *action,
                    int64_t id, mt_web_response_t *r);

/* A plain-text answer: status and a line of text. */
void mt_web_text(mt_web_response_t *r, int status, const char *text);

#endif
