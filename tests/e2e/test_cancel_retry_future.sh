# A future task is not run before its time; a cancelled one never runs;
# cancel and retry refuse tasks in the wrong state.
source "$(dirname "$0")/lib.sh"
reset_db
later=$(mt schedule e2e.insert '{"n": 1}' --in 1h)
soon=$(mt schedule e2e.insert '{"n": 2}' --in 1s)
gone=$(mt schedule e2e.insert '{"n": 3}' --at 2000-01-01T00:00:00Z)
mt cancel "$gone" >/dev/null
mt run --drain 2>>"$RUNTIME_LOG"
assert_eq scheduled "$(sql "SELECT state FROM moontask.tasks WHERE id = $later")" "future task"
assert_eq cancelled "$(sql "SELECT state FROM moontask.tasks WHERE id = $gone")" "cancelled task"
sleep 1.2
mt run --drain 2>>"$RUNTIME_LOG"
assert_eq completed "$(sql "SELECT state FROM moontask.tasks WHERE id = $soon")" "task due after 1s"
assert_eq 2 "$(sql "SELECT string_agg(n::text, ',') FROM e2e_rows")" "only the due task ran"
expect_exit 2 mt cancel "$soon"
assert_contains "$ERR" "is completed: only a scheduled task can be cancelled" "cancel completed"
expect_exit 2 mt retry "$later"
assert_contains "$ERR" "only a failed task can be retried" "retry scheduled"
