#include "postgres/stmt_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a: compares 64 bits before a whole text. */
static uint64_t hash_text(const char *s) {
  uint64_t h = 14695981039346656037ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static void make_name(char name[MT_STMT_NAME_MAX], unsigned serial) {
  snprintf(name, MT_STMT_NAME_MAX, "moontask_%u", serial);
}

int mt_stmt_cache_get(mt_stmt_cache_t *c, const char *sql, int nparams,
                      char name[MT_STMT_NAME_MAX], int *fresh) {
  uint64_t h = hash_text(sql);
  *fresh = 0;
  for (int i = 0; i < c->count; i++) {
    const mt_stmt_entry_t *e = &c->entries[i];
    if (e->hash == h && e->nparams == nparams && strcmp(e->sql, sql) == 0) {
      make_name(name, e->serial);
      return 0;
    }
  }
  name[0] = '\0';
  char *copy;
  if (c->count >= MT_STMT_CACHE_SIZE || (copy = strdup(sql)) == NULL)
    return -1;
  mt_stmt_entry_t *e = &c->entries[c->count++];
  *e = (mt_stmt_entry_t){
      .hash = h, .sql = copy, .nparams = nparams, .serial = c->next_serial++};
  make_name(name, e->serial);
  *fresh = 1;
  return 0;
}

void mt_stmt_cache_forget(mt_stmt_cache_t *c, const char *name) {
  for (int i = 0; i < c->count; i++) {
    char mine[MT_STMT_NAME_MAX];
    make_name(mine, c->entries[i].serial);
    if (strcmp(mine, name) == 0) {
      free(c->entries[i].sql);
      c->entries[i] = c->entries[--c->count];
      return;
    }
  }
}

void mt_stmt_cache_clear(mt_stmt_cache_t *c) {
  for (int i = 0; i < c->count; i++)
    free(c->entries[i].sql);
  c->count = 0;
}
