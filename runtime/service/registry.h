/*
 * The task registry: what the runtime knows about each task definition
 * (name, file, limits), in plain C so that the TaskService and the executor
 * can consult it without a Lua state. The Lua loader (lua/tasks.h) fills it;
 * the registry owns its strings.
 */
#ifndef MT_REGISTRY_H
#define MT_REGISTRY_H

#include <stddef.h>

#include "scheduler/catch_up.h"
#include "schema/schema.h"

#define MT_DEFAULT_MAX_ATTEMPTS 25

/* The hex digits of a task's version (mt_task_def_t.version). */
#define MT_TASK_VERSION_HEX 16

/* The ranges a task file's (and config.lua's) limits must lie in. Past
 * them a value is a typo or a unit mistake, not a wish: a timeout of more
 * than a day holds a transaction open for that long, a retry is never
 * delayed more than an hour (the backoff is capped there), and a memory
 * limit below 1 MiB cannot even hold the sandbox. */
#define MT_ATTEMPTS_MAX 10000
#define MT_TIMEOUT_MIN 0.001
#define MT_TIMEOUT_MAX 86400.0
#define MT_RETRY_DELAY_MAX 3600.0
#define MT_MEMORY_LIMIT_MIN (1024.0 * 1024)
#define MT_MEMORY_LIMIT_MAX (1024.0 * 1024 * 1024 * 1024)

/* A task's priority: higher runs first among its queue's due tasks (the
 * column is a smallint). */
#define MT_PRIORITY_MIN (-32768)
#define MT_PRIORITY_MAX 32767

/* The queue of a task that names none; it has no limits. */
#define MT_DEFAULT_QUEUE "default"

/* A named queue and its limits, as config.lua's `queues = {...}` declares
 * it. The limits hold across every runtime sharing the database
 * (moontask.queues, which a runtime brings in line with its config when it
 * starts). */
typedef struct mt_queue_def_s {
  char *name;         /* an identifier, not "default" (which has no limit) */
  int concurrency;    /* tasks running at once, everywhere; 0: no limit */
  int rate_limit;     /* starts per rate_period; 0: no rate */
  double rate_period; /* seconds */
} mt_queue_def_t;

/* A recurring schedule declared in a task file (`schedule = {...}`); the
 * runtime keeps moontask.schedules row "<task>:<index>" in step with it. */
typedef struct mt_task_sched_s {
  char *expression;       /* cron/rate expression, already parsed once */
  char *tz;               /* IANA zone, already loaded once */
  char *payload;          /* JSON object text */
  mt_catch_up_t catch_up; /* parsed once, from the task file's name */
} mt_task_sched_t;

typedef struct mt_task_def_s {
  char *name;          /* dotted, e.g. "attendance.merge_pools" */
  char *file;          /* the script that defines it */
  int max_attempts;    /* attempts before the task is failed */
  double timeout;      /* seconds a handler may run */
  double retry_delay;  /* base of the exponential backoff, seconds */
  size_t memory_limit; /* bytes the worker's Lua state may hold meanwhile */
  char *schema_name;   /* "attendance.merge_pools", "(inline)", or NULL */
  mt_schema_t *schema; /* the payload schema, compiled; NULL: any object */
  char *queue;         /* the queue its tasks go in when scheduled without one
                          (config.lua declares it); NULL: MT_DEFAULT_QUEUE */
  int priority;        /* likewise their priority; 0 when the file gives none */
  mt_task_sched_t *schedules; /* recurring schedules from the task file */
  size_t nschedules;
  /* The content hash of what it runs: its file, its named schema's file and
   * the lib folder (lua/tasks.h). Each attempt records the version it ran.
   * "" when the definition was not loaded from a snapshot. */
  char version[MT_TASK_VERSION_HEX + 1];
} mt_task_def_t;

typedef struct mt_registry_s {
  mt_task_def_t *defs;
  size_t count;
} mt_registry_t;

/* Whether s is a dotted name, one or more identifiers joined by dots
 * ("attendance.merge_pools"): the grammar of task, schema and module
 * names. */
int mt_dotted_name_valid(const char *s);

/* Whether s names a queue: an identifier ("payments"). */
int mt_queue_name_valid(const char *s);

const mt_task_def_t *mt_registry_find(const mt_registry_t *reg,
                                      const char *name);

/* def's version, or NULL where there is none to record: no definition, or
 * one not loaded from a snapshot. The one place "" becomes NULL. */
static inline const char *mt_task_version(const mt_task_def_t *def) {
  return def != NULL && def->version[0] != '\0' ? def->version : NULL;
}
/* Copies def's strings and takes ownership of def->schema and
 * def->schedules (also when it fails). */
int mt_registry_add(mt_registry_t *reg, const mt_task_def_t *def);
void mt_registry_free(mt_registry_t *reg);
void mt_task_scheds_free(mt_task_sched_t *s, size_t n);

#endif
