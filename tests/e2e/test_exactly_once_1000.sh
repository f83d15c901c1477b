# 1000 tasks that each insert a row, 4 workers in two runtimes: every task completes and its
# row exists exactly once.
source "$(dirname "$0")/lib.sh"
reset_db
sql "SELECT count(moontask.schedule('e2e.insert', jsonb_build_object('n', i))) FROM generate_series(1, 1000) i" >/dev/null
# Two runtimes at once: SKIP LOCKED must hand each task to exactly one.
mt_start run --drain --workers 2
first=$MT_PID
mt run --drain --workers 2 2>>"$RUNTIME_LOG"
wait $first || fail "the first runtime failed"
assert_eq 1000 "$(sql "SELECT count(*) FROM e2e_rows")" "rows"
assert_eq 1000 "$(sql "SELECT count(DISTINCT task_id) FROM e2e_rows")" "distinct tasks in rows"
assert_eq "completed|1000" "$(sql "SELECT state, count(*) FROM moontask.tasks GROUP BY state")" "states"
assert_eq 1000 "$(sql "SELECT count(*) FROM moontask.tasks WHERE attempts = 1")" "one attempt each"
