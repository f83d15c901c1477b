# kill -9 of the runtime while 50 one-second tasks are in flight: after the
# lease timeout a new runtime completes every task, each row exactly once
# (the killed attempts' writes rolled back with their connections).
source "$(dirname "$0")/lib.sh"
reset_db
sql "SELECT count(moontask.schedule('e2e.sleep', '{\"seconds\": 1}')) FROM generate_series(1, 50)" >/dev/null
mt_start run --workers 50
pid=$MT_PID
# All 50 handlers have written their row and sit in pg_sleep, uncommitted.
wait_for "SELECT count(*) = 50 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'" 20
kill -9 $pid
wait $pid 2>/dev/null || true
assert_eq 50 "$(sql "SELECT count(*) FROM moontask.tasks WHERE state = 'running'")" "tasks left running by the dead runtime"
assert_eq 0 "$(sql "SELECT count(*) FROM e2e_rows")" "rows of killed attempts"
# The dead runtime's leases lapse after lease_timeout (3s here); --drain
# waits for them, since they count as running until then.
start=$SECONDS
mt run --drain --workers 4 2>>"$RUNTIME_LOG"
[ $((SECONDS - start)) -ge 2 ] || fail "tasks ran again before their lease lapsed"
assert_eq "completed|50" "$(sql "SELECT state, count(*) FROM moontask.tasks GROUP BY state")" "states"
assert_eq 50 "$(sql "SELECT count(*) FROM e2e_rows")" "rows"
assert_eq 50 "$(sql "SELECT count(DISTINCT task_id) FROM e2e_rows")" "distinct rows"
assert_eq 50 "$(sql "SELECT count(*) FROM e2e_rows WHERE n = 2")" "every row from the second attempt"
# The killed attempts' versions died with their runtime; the second's is known.
assert_eq 50 "$(sql "SELECT count(*) FROM moontask.tasks WHERE array_length(versions, 1) = 2 AND versions[1] IS NULL AND versions[2] ~ '^[0-9a-f]{16}\$'")" \
  "tasks with an unknown and a known version"
