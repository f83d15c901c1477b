# SIGTERM: the tasks in flight finish and commit, nothing new is claimed,
# claimed-but-unstarted tasks are released, and the runtime exits 0.
source "$(dirname "$0")/lib.sh"
reset_db
sql "SELECT count(moontask.schedule('e2e.sleep', '{\"seconds\": 1.5}')) FROM generate_series(1, 12)" >/dev/null
mt_start run --workers 4
pid=$MT_PID
# Wait for the first four to be inside their statement: then SIGTERM.
wait_for "SELECT count(*) = 4 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'" 20
kill -TERM $pid
rc=0
wait $pid || rc=$?
assert_eq 0 "$rc" "exit code after SIGTERM"
assert_eq 4 "$(sql "SELECT count(*) FROM moontask.tasks WHERE state = 'completed'")" "in-flight tasks completed"
assert_eq 8 "$(sql "SELECT count(*) FROM moontask.tasks WHERE state = 'scheduled' AND attempts = 0 AND locked_by IS NULL")" "the rest released untouched"
assert_eq 4 "$(sql "SELECT count(*) FROM e2e_rows")" "rows"
