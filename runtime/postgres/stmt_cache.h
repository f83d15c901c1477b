/*
 * The statements a task's connection has prepared, by their SQL text, so
 * that a handler's statement is parsed and planned once per connection
 * rather than once per task (a row-inserting task spent a third of its
 * server time there). Owned by the connection's session (task_tx.h): it is
 * cleared whenever the server may have dropped the statements (a new
 * connection, DISCARD ALL, a statement found missing).
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

/* Looks sql (with nparams parameters) up. Returns 1 and fills name when it
 * is prepared; returns 0 and, when there is room for it, fills name with
 * the name to prepare it under and sets *add, for mt_stmt_cache_add once
 * it prepared; name is "" when it should run unprepared. */
int mt_stmt_cache_find(mt_stmt_cache_t *c, const char *sql, int nparams,
                       char name[MT_STMT_NAME_MAX], int *add);

/* Records sql as prepared under the name mt_stmt_cache_find gave. Returns
 * 0, or -1 out of memory (the statement then stays unrecorded). */
int mt_stmt_cache_add(mt_stmt_cache_t *c, const char *sql, int nparams);

/* Forgets every statement: the server no longer has them. */
void mt_stmt_cache_clear(mt_stmt_cache_t *c);

#endif
