# A task that outlives shutdown_grace is rolled back and released: its write
# is gone and the attempt is not counted.
source "$(dirname "$0")/lib.sh"
reset_db
cat > "$E2E_TMP/grace.lua" <<'CFG'
return { tasks_dir = "tests/e2e/tasks", schemas_dir = "tests/e2e/schemas", shutdown_grace = 1, poll_interval = 0.2 }
CFG
id=$(mt schedule e2e.sleep '{"seconds": 20}')
MT_CONFIG=$E2E_TMP/grace.lua mt_start run
pid=$MT_PID
wait_for "SELECT state = 'running' FROM moontask.tasks WHERE id = $id" 10
sleep 0.3
start=$SECONDS
kill -TERM $pid
rc=0
wait $pid || rc=$?
assert_eq 0 "$rc" "exit code"
[ $((SECONDS - start)) -le 5 ] || fail "shutdown took $((SECONDS - start))s with a 1s grace"
assert_eq "scheduled|0" "$(sql "SELECT state, attempts FROM moontask.tasks WHERE id = $id")" "released task"
assert_eq 0 "$(sql "SELECT count(*) FROM e2e_rows")" "rolled-back write"
