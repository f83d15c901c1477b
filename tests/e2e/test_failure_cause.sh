# last_error records the real cause of a failed attempt, also when the
# failure killed the worker's connection (idle_in_transaction_session_timeout
# terminates the session with 25P03).
source "$(dirname "$0")/lib.sh"
probe_setup
id=$(probe schedule probe.idle '{}')
after=$(probe schedule probe.noop '{"n": 1}')
probe run --workers 1 --drain 2>>"$RUNTIME_LOG"
assert_eq "failed|1" "$(sql "SELECT state, attempts FROM moontask.tasks WHERE id = $id")" "idle task"
err=$(sql "SELECT last_error FROM moontask.tasks WHERE id = $id")
assert_contains "$err" "25P03" "the real cause"
[[ "$err" != *"lease expired"* ]] || fail "last_error blames the lease: $err"
assert_eq "completed" "$(sql "SELECT state FROM moontask.tasks WHERE id = $after")" "the next task, on a new connection"
