#include "task.h"

#include <stdlib.h>
#include <string.h>

mt_task_t *mt_task_new(int64_t id, const char *name, const char *payload,
                       const char *run_at, int attempt, int max_attempts) {
  mt_task_t *t = calloc(1, sizeof *t);
  if (t == NULL)
    return NULL;
  t->id = id;
  t->name = strdup(name);
  t->payload = strdup(payload);
  t->run_at = strdup(run_at);
  t->attempt = attempt;
  t->max_attempts = max_attempts;
  if (t->name == NULL || t->payload == NULL || t->run_at == NULL) {
    mt_task_free(t);
    return NULL;
  }
  return t;
}

void mt_task_free(mt_task_t *task) {
  if (task == NULL)
    return;
  free(task->name);
  free(task->payload);
  free(task->run_at);
  free(task);
}
