/* `moontask queues`: each queue with its limits and how many of its tasks
 * are running, due, and scheduled for later (mt_store_list_queues), or the
 * same as JSON (--json). The limits are the database's, as the last
 * runtime to start wrote them from its config.lua, not this folder's
 * config.lua: they are what claims obey. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/text.h"

/* mt_store_list_queues' columns: name, concurrency, rate, running, due,
 * later. */
#define QUEUE_COLS 6

typedef struct queues_ctx_s {
  int rows;
  mt_buf_t name; /* the row's name, escaped for the terminal */
} queues_ctx_t;

static void print_header(void) {
  printf("%-24s %-11s %-10s %-8s %-8s %s\n", "QUEUE", "CONCURRENCY", "RATE",
         "RUNNING", "DUE", "LATER");
}

/* One queue: a line of the table. */
static int print_queue(void *arg, int n, const char *const *names,
                       const char *const *cols, mt_err_t *err) {
  queues_ctx_t *ctx = arg;
  (void)names;
  if (n != QUEUE_COLS)
    return mt_err_set(err, MT_EINVAL, "a queue row of %d columns", n);
  const char *concurrency = cols[1], *rate = cols[2];
  if (ctx->rows++ == 0)
    print_header();
  /* A queue with tasks but no row is named by whatever text the tasks
   * hold: escaped, as every value from the database. */
  mt_buf_reset(&ctx->name);
  if (mt_text_escape(&ctx->name, cols[0], 0) != 0)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  printf("%-24s %-11s %-10s %-8s %-8s %s\n", ctx->name.data,
         concurrency ? concurrency : "-", rate ? rate : "-", cols[3], cols[4],
         cols[5]);
  return 0;
}

int mt_cmd_queues(mt_cli_t *cli) {
  mt_err_t err = {{0}};
  mt_store_t *store = NULL;
  queues_ctx_t ctx = {0};
  char *json = NULL;
  int as_json = 0, rc;
  if ((rc = mt_cli_json_only(cli, 1, "queues", &as_json, &err)) != 0 ||
      (rc = mt_cli_connect(cli, &store, &err)) != 0)
    goto done;
  /* The rows reach print_queue once the query is done: a query that
   * fails prints nothing, not a header alone. */
  if (as_json && (rc = mt_store_list_queues_json(store, &json, &err)) == 0)
    printf("%s\n", json);
  else if (!as_json)
    rc = mt_store_list_queues(store, print_queue, &ctx, &err);
done:
  free(json);
  mt_buf_free(&ctx.name);
  mt_store_free(store);
  return rc ? mt_cli_fail(rc, &err) : 0;
}
