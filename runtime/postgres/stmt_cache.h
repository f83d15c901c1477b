/*
 * The statements a task's connection has prepared, by their SQL text, so
 * that a statement is parsed and planned once per connection rather than
 * once per task: the handler's, and the commit's own (task_tx.c). Owned by
 * the connection's session (task_tx.h): it is cleared whenever the server
 * may have dropped the statements (a new connection, DISCARD ALL, a
 * statement found missing).
 *
 * The cache stops growing at MT_STMT_CACHE_SIZE texts; later texts run
 * unprepared, as before there was a cache, so that SQL built anew for each
 * task cannot fill the server's memory with plans.
 */
#ifndef MT_STMT_CACHE_H
#define MT_STMT_CACHE_H

#include <stdint.h>

#define MT_STMT_CACHE_SIZE 64

/* "moontask_" and a serial: the names the runtime prepares under. */
#define MT_STMT_NAME_MAX 32

typedef struct mt_stmt_entry_s {
  uint64_t hash;
  char *sql; /* owned */
  int nparams;
  unsigned serial;
} mt_stmt_entry_t;

typedef struct mt_stmt_cache_s {
  mt_stmt_entry_t entries[MT_STMT_CACHE_SIZE];
  int count;
  unsigned next_serial; /* names are never reused on one connection */
} mt_stmt_cache_t;

/* The name sql (with nparams parameters) is prepared under. A text not
 * seen before is entered at once, under a new name, and *fresh set: the
 * caller prepares it, or mt_stmt_cache_forget()s it if that fails.
 * Returns 0, or -1 with name "" when the cache is full (or out of memory)
 * and sql should run unprepared. */
int mt_stmt_cache_get(mt_stmt_cache_t *c, const char *sql, int nparams,
                      char name[MT_STMT_NAME_MAX], int *fresh);

/* Removes the entry of a statement that could not be prepared. */
void mt_stmt_cache_forget(mt_stmt_cache_t *c, const char *name);

/* Forgets every statement: the server no longer has them. */
void mt_stmt_cache_clear(mt_stmt_cache_t *c);

#endif
