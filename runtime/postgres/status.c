#include "postgres/status.h"

#define UTC(col) \
  "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The parts /metrics needs too. */
#define BRIEF_PARTS                                                          \
  "'now', extract(epoch FROM now()),\n"                                      \
  "'counts', (SELECT coalesce(json_agg(c ORDER BY c.name, c.state), '[]')\n" \
  "             FROM (SELECT name, state, count(*) AS count\n"               \
  "                     FROM moontask.tasks GROUP BY name, state) c),\n"     \
  "'oldest_due_seconds', (SELECT extract(epoch FROM now() - min(run_at))\n"  \
  "                         FROM moontask.tasks\n"                           \
  "                        WHERE state = 'scheduled' AND run_at <= now())"

// clang-format off
static const char brief_sql[] = "SELECT json_build_object(\n" BRIEF_PARTS ")";

static const char full_sql[] =
    "SELECT json_build_object(\n" BRIEF_PARTS ",\n"
    "'running', (SELECT coalesce(json_agg(r), '[]') FROM (\n"
    "   SELECT id, name, attempts, " UTC("started_at") " AS started_at,\n"
    "          extract(epoch FROM now() - started_at) AS age_seconds,\n"
    "          locked_by\n"
    "     FROM moontask.tasks WHERE state = 'running'\n"
    "    ORDER BY started_at LIMIT 50) r),\n"
    /* A retrying task is back to scheduled with its error kept; a failed
     * one finished. */
    "'failures', (SELECT coalesce(json_agg(f), '[]') FROM (\n"
    "   SELECT id, name, state, attempts, max_attempts,\n"
    "          " UTC("coalesce(finished_at, started_at)") " AS at,\n"
    "          last_error\n"
    "     FROM moontask.tasks\n"
    "    WHERE last_error IS NOT NULL AND state IN ('failed', 'scheduled')\n"
    "    ORDER BY coalesce(finished_at, started_at) DESC NULLS LAST, id DESC\n"
    "    LIMIT 20) f),\n"
    "'schedules', (SELECT coalesce(json_agg(s ORDER BY s.name), '[]') FROM (\n"
    "   SELECT name, task, expression, tz,\n"
    "          " UTC("next_fire_at") " AS next_fire_at,\n"
    "          " UTC("last_fire_at") " AS last_fire_at, error\n"
    "     FROM moontask.schedules) s))";
// clang-format on

int mt_status_read(mt_store_t *store, int brief, char **json, mt_err_t *err) {
  return mt_store_query_value(store, brief ? brief_sql : full_sql, json, err);
}
