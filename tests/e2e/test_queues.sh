# Queues and priorities, measured from inside the handlers (e2e.span
# records each run's start and end by the database's clock):
#   - one worker runs 1,000 due tasks of mixed priorities in priority order,
#     then run_at order;
#   - three runtimes of 4 workers share one database: a queue with
#     concurrency = 2 never has more than 2 handlers running at once over
#     500 tasks, while the default queue, beside it, runs many at once;
#   - a queue with rate = "20/s" starts at most 21 of 200 tasks in any
#     one-second window, across the three runtimes;
#   - every task ran exactly once.
source "$(dirname "$0")/lib.sh"
reset_db
sql "DROP TABLE IF EXISTS e2e_spans;
     CREATE TABLE e2e_spans (task_id bigint, started timestamptz, ended timestamptz)" >/dev/null
on_exit 'sql "DROP TABLE IF EXISTS e2e_spans" >/dev/null'
cfg=$E2E_TMP/config.lua
e2e_config "$cfg" '  queues = {
    limited = { concurrency = 2 },
    paced = { rate = "20/s" },
    label = {},
  },'
mq() { "$MOONTASK_BIN" --config "$cfg" --database-url "$DATABASE_URL" "$@"; }

# A runtime brings config.lua's queues into the database as it starts.
mq run --drain 2>>"$RUNTIME_LOG"
assert_eq "label|||,limited|2||,paced||20|1" \
  "$(sql "SELECT string_agg(format('%s|%s|%s|%s', name, concurrency, rate_limit, rate_period), ',' ORDER BY name) FROM moontask.queues")" \
  "moontask.queues after a start"

# --- Priority: one worker, 1,000 due tasks -------------------------------
# Half in the default queue, half in a named one (claimed by pick_queued),
# beside future tasks of a higher priority and of one in between, which a
# claim walks past one priority at a time and must leave alone.
sql "SELECT moontask.schedule('e2e.span', '{}', now() - (i * interval '1 ms'),
                              queue => CASE WHEN i % 2 = 0 THEN 'default' ELSE 'label' END,
                              priority => (i * 7919) % 11 - 5)
       FROM generate_series(1, 1000) AS i;
     SELECT moontask.schedule('e2e.span', '{}', now() + interval '1 hour',
                              queue => q, priority => p)
       FROM unnest('{default,label}'::text[]) AS q, unnest('{9,2}'::int[]) AS p,
            generate_series(1, 20)" >/dev/null
mq run --drain --workers 1 2>>"$RUNTIME_LOG"
assert_eq 1000 "$(sql "SELECT count(*) FROM e2e_spans")" "priority: every task ran once"
assert_eq "80|0" "$(sql "SELECT count(*), count(s.task_id) FROM moontask.tasks t LEFT JOIN e2e_spans s ON s.task_id = t.id
                         WHERE t.run_at > now() AND t.state = 'scheduled'")" "future tasks left alone"
# The order the handlers of each queue started in, against the order the
# README promises.
out_of_order=$(sql "
  SELECT count(*) FROM (
    SELECT row_number() OVER (PARTITION BY t.queue ORDER BY s.started) AS ran,
           row_number() OVER (PARTITION BY t.queue ORDER BY t.priority DESC, t.run_at, t.id) AS promised
      FROM e2e_spans s JOIN moontask.tasks t ON t.id = s.task_id) x
   WHERE ran <> promised")
assert_eq 0 "$out_of_order" "tasks started out of priority, run_at order"
assert_eq "11|11" "$(sql "SELECT count(DISTINCT priority) FILTER (WHERE queue = 'default'),
                                count(DISTINCT priority) FILTER (WHERE queue = 'label')
                           FROM moontask.tasks WHERE run_at <= now()")" "priorities in play"
reset_db
sql "DELETE FROM e2e_spans" >/dev/null
mq run --drain 2>>"$RUNTIME_LOG" # the queues again, after reset_db

# --- Global concurrency and rate limits: three runtimes ------------------
sql "SELECT moontask.schedule('e2e.span', '{\"seconds\": 0.02}', queue => 'limited')
       FROM generate_series(1, 500);
     SELECT moontask.schedule('e2e.span', '{}', queue => 'paced')
       FROM generate_series(1, 200);
     SELECT moontask.schedule('e2e.span', '{\"seconds\": 0.02}')
       FROM generate_series(1, 500)" >/dev/null
MT_CONFIG=$cfg mt_start run; p1=$MT_PID
MT_CONFIG=$cfg mt_start run; p2=$MT_PID
MT_CONFIG=$cfg mt_start run; p3=$MT_PID
wait_for "SELECT count(*) = 0 FROM moontask.tasks WHERE state <> 'completed'" 60
kill -TERM $p1 $p2 $p3
wait $p1 $p2 $p3

# How many handlers of a queue ran at once, at most: at each start, the
# spans of that queue that cover it.
overlap() {
  sql "SELECT max((SELECT count(*) FROM e2e_spans b JOIN moontask.tasks tb ON tb.id = b.task_id
                    WHERE tb.queue = '$1' AND b.started <= a.started AND b.ended > a.started))
         FROM e2e_spans a JOIN moontask.tasks ta ON ta.id = a.task_id WHERE ta.queue = '$1'"
}
assert_eq 1200 "$(sql "SELECT count(*) FROM e2e_spans")" "limits: every task ran"
assert_eq 1200 "$(sql "SELECT count(DISTINCT task_id) FROM e2e_spans")" "limits: each exactly once"
limited=$(overlap limited)
default=$(overlap default)
echo "at once, at most: limited $limited, default $default"
[ "$limited" -le 2 ] || fail "queue limited (concurrency = 2) ran $limited at once"
[ "$limited" -eq 2 ] || fail "queue limited never ran 2 at once ($limited): the limit is not used"
[ "$default" -gt 2 ] || fail "the default queue ran at most $default at once beside a limited queue"
# Starts of the paced queue in any one-second window (from each start on).
paced=$(sql "SELECT max((SELECT count(*) FROM e2e_spans b JOIN moontask.tasks tb ON tb.id = b.task_id
                          WHERE tb.queue = 'paced' AND b.started >= a.started
                            AND b.started < a.started + interval '1 second'))
               FROM e2e_spans a JOIN moontask.tasks ta ON ta.id = a.task_id WHERE ta.queue = 'paced'")
span=$(sql "SELECT round(extract(epoch FROM max(s.started) - min(s.started))::numeric, 2)
              FROM e2e_spans s JOIN moontask.tasks t ON t.id = s.task_id WHERE t.queue = 'paced'")
echo "paced: at most $paced starts in one second; 200 starts over ${span} s"
[ "$paced" -le 21 ] || fail "queue paced (rate = 20/s) started $paced tasks in one second"
[ "$paced" -ge 15 ] || fail "queue paced started at most $paced in one second: far below its rate"
