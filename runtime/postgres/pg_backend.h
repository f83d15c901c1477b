/*
 * The PostgreSQL backend: tasks are rows of moontask.tasks, claimed with
 * FOR UPDATE SKIP LOCKED over the index of available tasks, and runtimes are
 * woken by NOTIFY on channel moontask_tasks. A claimed task carries a lease
 * (locked_by, locked_until) that the heartbeat extends; a lapsed lease
 * returns the task to `scheduled`.
 */
#ifndef MT_PG_BACKEND_H
#define MT_PG_BACKEND_H

#include "backend.h"
#include "service/registry.h"

/* Gives claimed tasks back unstarted: $1 their ids as a bigint[] literal,
 * $2 the owner holding them. The attempt they were claimed for never ran to
 * an end, so it does not count. Shared with the worker's session
 * (pg_session.c), which releases a task aborted at shutdown on its own
 * connection. */
extern const char mt_pg_release_sql[];

/* Opens the backend for conf (backends/backends.h calls it): it claims
 * only tasks named in conf->registry, the ones this runtime can run. */
int mt_pg_backend_open(const mt_backend_conf_t *conf, mt_backend_t **out,
                       mt_err_t *err);

#endif
