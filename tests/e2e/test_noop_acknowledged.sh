# Handlers that never touch tx are completed in batches outside any task
# transaction: every one ends `completed` with its lease cleared, both when
# draining and when a runtime is stopped with SIGTERM right after.
source "$(dirname "$0")/lib.sh"
reset_db
sql "SELECT count(moontask.schedule('e2e.noop', '{}')) FROM generate_series(1, 500)" >/dev/null
mt run --drain 2>>"$RUNTIME_LOG"
assert_eq "completed|500" "$(sql "SELECT state, count(*) FROM moontask.tasks WHERE locked_by IS NULL AND finished_at IS NOT NULL GROUP BY state")" "drained no-op tasks"
# The batched acknowledgement records the version each one ran.
assert_eq 500 "$(sql "SELECT count(*) FROM moontask.tasks WHERE array_length(versions, 1) = 1 AND versions[1] ~ '^[0-9a-f]{16}\$'")" \
  "no-op tasks with their version"
# Two task files' no-op tasks taking turns: the acknowledgements carry
# both versions, and each task records its own file's.
sql "DELETE FROM moontask.tasks" >/dev/null
sql "SELECT count(moontask.schedule(CASE WHEN g % 2 = 0 THEN 'e2e.noop' ELSE 'e2e.sink' END, '{}'))
       FROM generate_series(1, 400) g" >/dev/null
mt run --drain 2>>"$RUNTIME_LOG"
assert_eq "e2e.noop|200|1
e2e.sink|200|1" "$(sql "SELECT name, count(*), count(DISTINCT versions[1]) FROM moontask.tasks
                          WHERE state = 'completed' AND array_length(versions, 1) = 1 GROUP BY name ORDER BY name")" \
  "tasks of two files, and the versions each ran"
assert_eq 2 "$(sql "SELECT count(DISTINCT versions[1]) FROM moontask.tasks")" "versions in all"

sql "DELETE FROM moontask.tasks" >/dev/null
mt_start run
pid=$MT_PID
sleep 0.5
sql "SELECT count(moontask.schedule('e2e.noop', '{}')) FROM generate_series(1, 300)" >/dev/null
wait_for "SELECT count(*) = 0 FROM moontask.tasks WHERE state = 'scheduled'" 10
kill -TERM $pid
wait $pid
assert_eq "completed|300" "$(sql "SELECT state, count(*) FROM moontask.tasks WHERE locked_by IS NULL GROUP BY state")" "no-op tasks acknowledged by shutdown"
