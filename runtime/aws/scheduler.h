/*
 * Typed EventBridge Scheduler calls over its REST-JSON API: schedules at
 * /schedules/<Name> (POST creates, PUT updates, GET reads, DELETE
 * deletes; the group in the body or as ?groupName=) and groups at
 * /schedule-groups/<Name>. The AWS backend makes one at(...) schedule per
 * one-off task and one cron(...)/rate(...) schedule per recurring one,
 * each targeting the queue. (The prefix is mt_ebs_, for EventBridge
 * Scheduler: mt_scheduler_ belongs to runtime/scheduler/, the cron and
 * time arithmetic.)
 *
 * Two outcomes are results, not failures, for a caller that retries:
 * a create that meets ConflictException (res->kind == MT_AWS_ECONFLICT)
 * found the schedule already made, by the earlier attempt whose answer was
 * lost; a delete that meets ResourceNotFoundException (MT_AWS_ENOTFOUND)
 * found it already gone, by ActionAfterCompletion or an earlier delete. An
 * outbox counts both as done. EventBridge sends 409 and 404 for them; the
 * kinds come from the code in the body or, when there is none, from the
 * status.
 *
 * Every call checks names (1-64 of [0-9A-Za-z_.-]), the expression's form
 * and the target first, and refuses with MT_EINVAL and nothing sent what
 * EventBridge would refuse: moto accepts anything, so this is also the
 * only check the tests can see. Requests are copied; strings in a typed
 * answer point into res->doc and live until the callback returns.
 *
 * Threads: as aws/client.h says; the *_sync forms block and are for the
 * CLI (`moontask check`).
 */
#ifndef MT_AWS_SCHEDULER_H
#define MT_AWS_SCHEDULER_H

#include <stdint.h>

#include "aws/client.h"

#define MT_EBS_NAME_MAX 64
/* A buffer for any expression EventBridge takes (at most 256 characters)
 * and its NUL. */
#define MT_EBS_EXPR_MAX 260

/* A schedule as CreateSchedule and UpdateSchedule take it. */
typedef struct mt_ebs_schedule_s {
  const char *name;
  const char *group; /* NULL: the client's schedule_group, else "default" */
  /* "at(2030-01-31T12:00:00)", "cron(0 12 * * ? *)", "rate(5 minutes)".
   * An at() schedule gets ActionAfterCompletion DELETE, so that
   * EventBridge removes it once it has fired (it bills active
   * schedules); the others get NONE. */
  const char *expression;
  const char *timezone; /* ScheduleExpressionTimezone; NULL: UTC */
  /* 0: FlexibleTimeWindow OFF, fire on time. 1-1440: FLEXIBLE within that
   * many minutes. */
  int flexible_minutes;
  const char *target_arn; /* the queue's ARN (GetQueueAttributes) */
  const char *role_arn;   /* NULL: the client's role_arn */
  const char *input;      /* Target.Input, the message body; NULL: none */
  /* Target.SqsParameters.MessageGroupId, required for a FIFO queue. */
  const char *message_group_id;
  int disabled; /* State DISABLED rather than ENABLED */
  /* Idempotency token (1-64 characters); NULL: EventBridge makes one. */
  const char *client_token;
} mt_ebs_schedule_t;

/* What a create, update or upsert returns. */
typedef struct mt_ebs_written_s {
  const char *arn; /* ScheduleArn */
  int created;     /* upsert: 1 if it had to create the schedule */
} mt_ebs_written_t;

typedef void (*mt_ebs_write_cb)(const mt_aws_result_t *res,
                                const mt_ebs_written_t *out, void *arg);

/* CreateSchedule. ConflictException comes back as res->kind
 * MT_AWS_ECONFLICT (out NULL): the name is taken. */
int mt_ebs_schedule_create(mt_aws_t *aws, const mt_ebs_schedule_t *s,
                           mt_ebs_write_cb cb, void *arg, mt_err_t *err);

/* UpdateSchedule: replaces every field of an existing schedule (those
 * left out return to their defaults). MT_AWS_ENOTFOUND if there is none.
 */
int mt_ebs_schedule_update(mt_aws_t *aws, const mt_ebs_schedule_t *s,
                           mt_ebs_write_cb cb, void *arg, mt_err_t *err);

/* Update, or create if there is none (out->created says which): for
 * recurring schedules, which the runtime writes whether or not they
 * exist. Should a create race with another writer (ConflictException), the
 * update is tried once more. Up to three requests. */
int mt_ebs_schedule_upsert(mt_aws_t *aws, const mt_ebs_schedule_t *s,
                           mt_ebs_write_cb cb, void *arg, mt_err_t *err);

/* A schedule as GetSchedule describes it. Strings are NULL when absent. */
typedef struct mt_ebs_info_s {
  const char *arn, *name, *group;
  const char *expression, *timezone;
  const char *state;                   /* "ENABLED", "DISABLED" */
  const char *action_after_completion; /* "DELETE", "NONE" */
  const char *flexible_mode;           /* "OFF", "FLEXIBLE" */
  const char *target_arn, *role_arn, *input;
  const char *message_group_id; /* Target.SqsParameters.MessageGroupId */
} mt_ebs_info_t;

typedef void (*mt_ebs_get_cb)(const mt_aws_result_t *res,
                              const mt_ebs_info_t *out, void *arg);

/* GetSchedule; group NULL as in mt_ebs_schedule_t. MT_AWS_ENOTFOUND if
 * there is no such schedule (or group). */
int mt_ebs_schedule_get(mt_aws_t *aws, const char *group, const char *name,
                        mt_ebs_get_cb cb, void *arg, mt_err_t *err);

/* The blocking form: *res receives the result (free it with
 * mt_aws_result_free; out points into it); returns res->rc. */
int mt_ebs_schedule_get_sync(mt_aws_t *aws, const char *group, const char *name,
                             mt_ebs_info_t *out, mt_aws_result_t *res);

typedef void (*mt_ebs_delete_cb)(const mt_aws_result_t *res, void *arg);

/* DeleteSchedule. ResourceNotFoundException comes back as res->kind
 * MT_AWS_ENOTFOUND: it was already gone. client_token may be NULL. */
int mt_ebs_schedule_delete(mt_aws_t *aws, const char *group, const char *name,
                           const char *client_token, mt_ebs_delete_cb cb,
                           void *arg, mt_err_t *err);

/* A schedule group as GetScheduleGroup describes it. */
typedef struct mt_ebs_group_s {
  const char *arn, *name;
  const char *state; /* "ACTIVE", "DELETING" */
} mt_ebs_group_t;

typedef void (*mt_ebs_group_cb)(const mt_aws_result_t *res,
                                const mt_ebs_group_t *out, void *arg);

/* GetScheduleGroup (group NULL: the client's, else "default"):
 * `moontask check` asks whether the configured group exists. */
int mt_ebs_group_get(mt_aws_t *aws, const char *group, mt_ebs_group_cb cb,
                     void *arg, mt_err_t *err);
int mt_ebs_group_get_sync(mt_aws_t *aws, const char *group, mt_ebs_group_t *out,
                          mt_aws_result_t *res);

/* ---- names and expressions ---------------------------------------------- */

/* 1 if name is 1-64 characters of [0-9A-Za-z_.-], what EventBridge takes
 * for schedule and group names. */
int mt_ebs_name_valid(const char *name);

/* The schedule name of a one-off task: "mt-<id>". Stable, so that a
 * retried create finds the first one (ConflictException), and a delete
 * needs nothing but the id. */
void mt_ebs_task_name(int64_t task_id, char out[MT_EBS_NAME_MAX + 1]);

/* The schedule name of a recurring schedule:
 *   "mtr-<name>"                 when name is already valid and fits
 *                                (at most 60 characters);
 *   "mth-<prefix>-<hash>"        otherwise: <prefix> is the first 39 bytes
 *                                of name with each byte outside the set
 *                                made '_', and <hash> the first 20 hex
 *                                digits (80 bits) of name's SHA-256.
 * The hash keeps names apart that the prefix would merge ("a b" and
 * "a:b"), the prefix keeps them readable in the console, and the two
 * prefixes keep a hashed name from ever equalling a kept one. Every
 * result is valid, at most 64 characters, and depends on name alone.
 * Returns 0, or MT_ESYS if libcrypto fails. */
int mt_ebs_recurring_name(const char *name, char out[MT_EBS_NAME_MAX + 1]);

/* "at(yyyy-mm-ddThh:mm:ss)" for a time in seconds since the epoch, in UTC
 * (EventBridge's at() has no zone of its own; ScheduleExpressionTimezone
 * defaults to UTC). Fractions of a second are dropped: EventBridge fires
 * at minute precision anyway. Returns 0, or MT_EINVAL for a time outside
 * years 1970-9999. */
int mt_ebs_at_expression(double epoch, char out[32]);

/* Checks the form of an expression: at() with a valid date and time,
 * rate(<n> <unit>) with minute(s)/hour(s)/day(s), singular for 1, or
 * cron() with six fields. It does not judge cron fields themselves (the
 * service does). Returns 0 or MT_EINVAL naming what is wrong. */
int mt_ebs_expression_check(const char *expr, mt_err_t *err);

/* The ScheduleExpression for a moontask recurring expression
 * (scheduler/cron.h). expr is first parsed as moontask would run it
 * (mt_cron_parse); one that moontask refuses comes back with the parser's
 * message, the expression quoted before it unless the message quotes it
 * already. Then, by form:
 *   cron(...), rate(...)  EventBridge's own: passed as written (outer
 *                         blanks dropped) if mt_ebs_expression_check
 *                         takes it;
 *   five fields, @macro   Vixie cron, rewritten as cron(min hour dom month
 *                         dow *): of the two day fields the one that is `*`
 *                         becomes `?` (day-of-week when both are);
 *                         day-of-week numbers go from Vixie's 0-7 (0 and 7
 *                         Sunday) to EventBridge's 1-7 (1 Sunday), a range
 *                         that would wrap past Saturday becomes a list
 *                         (5-7: 6-7,1) and a step its days listed (1-5/2:
 *                         2,4,6; EventBridge has no step there); month and
 *                         day names are upper-cased; the rest is the same
 *                         syntax in both and kept;
 *   refused               six fields (EventBridge Scheduler fires at minute
 *                         precision and has no seconds field), and both
 *                         day fields restricted (Vixie fires when either
 *                         matches, which EventBridge cannot express).
 * The fields stay wall-clock times, so the schedule's zone must go with it
 * as ScheduleExpressionTimezone; on days that DST skips or repeats an hour
 * EventBridge applies its own rule, not scheduler/cron.h's. Every result
 * passes mt_ebs_expression_check. Returns 0 and out, or MT_EINVAL (or
 * MT_ENOMEM) with out "" and a one-line message quoting expr. */
int mt_ebs_recurring_expression(const char *expr, char out[MT_EBS_EXPR_MAX],
                                mt_err_t *err);

#endif
