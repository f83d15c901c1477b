/*
 * The runtime's summary as the database sees it, read in one statement so
 * that its parts agree: `moontask status`, the status page and /metrics
 * (web/) all print this one reading.
 *
 * mt_status_read() fills *json (malloc'd, the caller frees) with an object:
 *   now                 epoch seconds, the server's clock
 *   counts              [{name, state, count}], by task and state
 *   oldest_due_seconds  how long the oldest due task has waited, or null
 *   running             running tasks, oldest first (50 at most):
 *                       [{id, name, attempts, started_at, age_seconds,
 *                         locked_by}]
 *   failures            the 20 most recent failures, failed for good or
 *                       waiting for a retry: [{id, name, state, attempts,
 *                       max_attempts, at, last_error}]
 *   schedules           recurring schedules: [{name, task, expression, tz,
 *                       next_fire_at, last_fire_at, error}]
 * Instants are RFC 3339 in UTC. MT_STATUS_BRIEF reads only now, counts and
 * oldest_due_seconds (what /metrics needs).
 *
 * counts reads the whole table: its cost grows with the finished tasks that
 * retention keeps (postgres/retention.h), a few hundred milliseconds a
 * million rows.
 */
#ifndef MT_STATUS_H
#define MT_STATUS_H

#include "common/error.h"
#include "postgres/store.h"

#define MT_STATUS_FULL 0
#define MT_STATUS_BRIEF 1

int mt_status_read(mt_store_t *store, int brief, char **json, mt_err_t *err);

#endif
