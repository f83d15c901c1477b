# A failing handler's writes roll back; each attempt is recorded outside the
# transaction, retried, and the task ends `failed` after max_attempts.
source "$(dirname "$0")/lib.sh"
reset_db
id=$(mt schedule e2e.fail '{}')
mt run --drain 2>>"$RUNTIME_LOG"
assert_eq "failed|3|3" "$(sql "SELECT state, attempts, max_attempts FROM moontask.tasks WHERE id = $id")" "state after attempts"
assert_eq 0 "$(sql "SELECT count(*) FROM e2e_rows")" "rows left by failed attempts"
err=$(sql "SELECT last_error FROM moontask.tasks WHERE id = $id")
assert_contains "$err" "failing on purpose, attempt 3" "last_error message"
assert_contains "$err" "stack traceback" "last_error traceback"
assert_contains "$err" "tasks/e2e/fail.lua:7" "last_error names file and line"
[ -n "$(sql "SELECT finished_at FROM moontask.tasks WHERE id = $id")" ] || fail "finished_at not set"
# retry gives it fresh attempts
mt retry "$id" >/dev/null
assert_eq "scheduled|0" "$(sql "SELECT state, attempts FROM moontask.tasks WHERE id = $id")" "after retry"
