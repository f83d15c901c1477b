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

int mt_stmt_cache_find(mt_stmt_cache_t *c, const char *sql, int nparams,
                       char name[MT_STMT_NAME_MAX], int *add) {
  uint64_t h = hash_text(sql);
  *add = 0;
  for (int i = 0; i < c->count; i++) {
    const mt_stmt_entry_t *e = &c->entries[i];
    if (e->hash == h && e->nparams == nparams && strcmp(e->sql, sql) == 0) {
      make_name(name, e->serial);
      return 1;
    }
  }
  name[0] = '\0';
  if (c->count < MT_STMT_CACHE_SIZE) {
    make_name(name, c->next_serial);
    *add = 1;
  }
  return 0;
}

int mt_stmt_cache_add(mt_stmt_cache_t *c, const char *sql, int nparams) {
  if (c->count >= MT_STMT_CACHE_SIZE)
    return -1;
  /* The name is used up either way: the server has the statement. */
  unsigned serial = c->next_serial++;
  char *copy = strdup(sql);
  if (copy == NULL)
    return -1;
  c->entries[c->count++] = (mt_stmt_entry_t){
      .hash = hash_text(sql),
      .sql = copy,
      .nparams = nparams,
      .serial = serial,
  };
  return 0;
}

void mt_stmt_cache_clear(mt_stmt_cache_t *c) {
  for (int i = 0; i < c->count; i++)
    free(c->entries[i].sql);
  c->count = 0;
}
