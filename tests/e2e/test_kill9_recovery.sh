# kill -9 of the runtime while one-second tasks are in flight: after the
# lease timeout a new runtime completes every task, each row exactly once
# (the killed attempts' writes rolled back with their connections).
source "$(dirname "$0")/lib.sh"
reset_db
sql "SELECT count(moontask.schedule('e2e.sleep', '{\"seconds\": 1}')) FROM generate_series(1, 50)" >/dev/null
mt_start run --workers 4
pid=$MT_PID
wait_for "SELECT count(*) >= 4 FROM moontask.tasks WHERE state = 'completed'" 20
kill -9 $pid
wait $pid 2>/dev/null || true
running=$(sql "SELECT count(*) FROM moontask.tasks WHERE state = 'running'")
[ "$running" -gt 0 ] || fail "no task was in flight at the kill"
# Tasks claimed by the dead runtime return after lease_timeout (3s here);
# --drain waits for them since they count as running until then.
mt run --drain --workers 4 2>/dev/null
assert_eq "completed|50" "$(sql "SELECT state, count(*) FROM moontask.tasks GROUP BY state")" "states"
assert_eq 50 "$(sql "SELECT count(*) FROM e2e_rows")" "rows"
assert_eq 50 "$(sql "SELECT count(DISTINCT task_id) FROM e2e_rows")" "distinct rows"
rescued=$(sql "SELECT count(*) FROM moontask.tasks WHERE attempts = 2")
[ "$rescued" -ge 1 ] || fail "no task shows the rescued attempt"
