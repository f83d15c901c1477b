/*
 * The AWS backend: EventBridge Scheduler decides when a task runs, SQS
 * delivers it, and PostgreSQL (the application's database) still holds the
 * task rows, their states and the handlers' transactions, exactly as with
 * the PostgreSQL backend (postgres/pg_backend.h's task store does all of
 * that here too).
 *
 * Producing: moontask.schedule() and every other change of a task writes
 * a row of the transactional outbox in the same transaction
 * (postgres/outbox.h). A relay, active on one runtime per database, reads
 * the outbox after commit and publishes:
 *   - a task due within direct_within seconds (at most SQS's 900): an SQS
 *     message with DelaySeconds, body {"task_id":N}; on a FIFO queue,
 *     which takes no per-message delay, only a task due now;
 *   - a later one: an EventBridge schedule "mt-<id>", at(...) in UTC,
 *     FlexibleTimeWindow OFF, ActionAfterCompletion DELETE, whose target
 *     sends {"task_id":N,"via":"schedule"} to the queue;
 *   - a finished or cancelled task: deletes its schedule (gone already is
 *     done);
 *   - a recurring schedule: an EventBridge cron()/rate() schedule
 *     (mt_ebs_recurring_name) whose Input is {"schedule":NAME,"fire_at":
 *     <aws.scheduler.scheduled-time>}, so each fire becomes its own task
 *     row, one per (schedule, fire time); a removed one is deleted.
 * Calls that fail (no answer, throttling, 5xx, refusals) leave their rows
 * for a later try with a growing delay: nothing is lost while AWS is away.
 *
 * Consuming: SQS is long-polled (20 s, up to 10 messages) on a thread of
 * the backend's own, which also runs the relay; received messages wait in
 * an inbox and wake discovery through an eventfd (wake_fd). claim claims
 * their task rows in PostgreSQL; a message is deleted, in batches, once
 * its attempt has a durable outcome (a commit, a failure or release
 * record, or the acknowledgement of a handler that wrote nothing), and its
 * visibility is extended while a long task runs. A message for a finished
 * task, a duplicate, or one that meets its task running under a live lease
 * is deleted; one for a task not yet due is hidden until then; a poison
 * message (malformed, or naming no task) is logged and deleted, or left to
 * the queue's dead-letter queue with keep_poison. A runtime that dies
 * mid-task leaves its message to come back after the visibility timeout,
 * and the lease rescue publishes the task anew: it runs again once its
 * lease has lapsed, and the lease check in the commit keeps its effects to
 * exactly once.
 */
#ifndef MT_AWS_BACKEND_H
#define MT_AWS_BACKEND_H

#include "backend.h"

/* Opens the backend for conf (backends/backends.h calls it; conf->aws is
 * required). It checks the queue (GetQueueAttributes) before returning,
 * so a wrong queue or credentials fail here, naming what is wrong. */
int mt_aws_backend_open(const mt_backend_conf_t *conf, mt_backend_t **out,
                        mt_err_t *err);

#endif
