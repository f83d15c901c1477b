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

/* Claims only tasks named in reg: the ones this runtime can run. */
int mt_pg_backend_new(mt_backend_t **out, const char *url, const char *owner,
                      double lease_timeout, const mt_registry_t *reg,
                      mt_err_t *err);

#endif
