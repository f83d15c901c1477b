#include "service/registry.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

const mt_task_def_t *mt_registry_find(const mt_registry_t *reg,
                                      const char *name) {
  for (size_t i = 0; i < reg->count; i++)
    if (strcmp(reg->defs[i].name, name) == 0)
      return &reg->defs[i];
  return NULL;
}

int mt_registry_add(mt_registry_t *reg, const mt_task_def_t *def) {
  mt_task_def_t *defs =
      realloc(reg->defs, (reg->count + 1) * sizeof *reg->defs);
  if (defs == NULL) {
    mt_schema_free(def->schema);
    mt_task_scheds_free(def->schedules, def->nschedules);
    return MT_ENOMEM;
  }
  reg->defs = defs;
  mt_task_def_t *slot = &defs[reg->count];
  *slot = *def;
  slot->name = strdup(def->name);
  slot->file = strdup(def->file);
  slot->schema_name = def->schema_name ? strdup(def->schema_name) : NULL;
  slot->queue = def->queue ? strdup(def->queue) : NULL;
  if (slot->name == NULL || slot->file == NULL ||
      (def->schema_name != NULL && slot->schema_name == NULL) ||
      (def->queue != NULL && slot->queue == NULL)) {
    free(slot->name);
    free(slot->file);
    free(slot->schema_name);
    free(slot->queue);
    mt_schema_free(def->schema);
    mt_task_scheds_free(def->schedules, def->nschedules);
    return MT_ENOMEM;
  }
  reg->count++;
  return 0;
}

void mt_registry_free(mt_registry_t *reg) {
  if (reg == NULL)
    return;
  for (size_t i = 0; i < reg->count; i++) {
    free(reg->defs[i].name);
    free(reg->defs[i].file);
    free(reg->defs[i].schema_name);
    free(reg->defs[i].queue);
    mt_schema_free(reg->defs[i].schema);
    mt_task_scheds_free(reg->defs[i].schedules, reg->defs[i].nschedules);
  }
  free(reg->defs);
  reg->defs = NULL;
  reg->count = 0;
}

void mt_task_scheds_free(mt_task_sched_t *s, size_t n) {
  for (size_t i = 0; s != NULL && i < n; i++) {
    free(s[i].expression);
    free(s[i].tz);
    free(s[i].payload);
  }
  free(s);
}

int mt_dotted_name_valid(const char *s) {
  int start = 1;
  for (; *s; s++) {
    if (*s == '.') {
      if (start)
        return 0;
      start = 1;
    } else if (*s == '_' || (*s >= 'a' && *s <= 'z') ||
               (*s >= 'A' && *s <= 'Z') || (!start && *s >= '0' && *s <= '9')) {
      start = 0;
    } else {
      return 0;
    }
  }
  return !start;
}

/* An identifier, as moontask.queues' CHECK has it; 63 bytes at most, a
 * PostgreSQL identifier's length, as a name to read rather than a key. */
int mt_queue_name_valid(const char *s) {
  return strchr(s, '.') == NULL && strlen(s) <= 63 && mt_dotted_name_valid(s);
}
