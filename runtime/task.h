/*
 * A claimed task as the executor sees it: plain data copied out of the
 * backend's result, owned by whoever holds the pointer (discovery, then the
 * executor's queue, then one worker).
 */
#ifndef MT_TASK_H
#define MT_TASK_H

#include <stdint.h>

typedef struct mt_task_s {
  int64_t id;
  char *name;
  char *payload;    /* JSON text */
  char *run_at;     /* RFC 3339, UTC */
  int attempt;      /* 1 for the first run */
  int max_attempts; /* 0: take the task definition's */
  /* Of a named queue: its limits count it from its claim, so it runs
   * before the tasks already waiting in the runtime (mt_executor_submit)
   * rather than holding a place, or a rate's slot, while it waits. */
  int limited;
  struct mt_task_s *next;
} mt_task_t;

mt_task_t *mt_task_new(int64_t id, const char *name, const char *payload,
                       const char *run_at, int attempt, int max_attempts);
void mt_task_free(mt_task_t *task);

#endif
