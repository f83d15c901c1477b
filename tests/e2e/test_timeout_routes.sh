# A timeout is absolute: a looping xpcall message handler, coroutines made
# at load time, a to-be-closed variable and an error object whose
# metamethods loop, and backtracking pattern matches are all stopped at the
# task's timeout (1s); each attempt is recorded as timed out, and the one
# worker serves the next task.
source "$(dirname "$0")/lib.sh"
probe_setup
ids=()
ids+=("$(probe schedule probe.xpcall_loop '{}')")
ids+=("$(probe schedule probe.coroutine_loop '{}')")
ids+=("$(probe schedule probe.coroutine_loop '{"wrap": true}')")
ids+=("$(probe schedule probe.coroutine_loop '{"close": true}')")
ids+=("$(probe schedule probe.c_loops '{"op": "move"}')")
ids+=("$(probe schedule probe.c_loops '{"op": "remove"}')")
ids+=("$(probe schedule probe.close_loop '{}')")
ids+=("$(probe schedule probe.close_loop '{"tostring": true}')")
ids+=("$(probe schedule probe.pattern '{}')")
ids+=("$(probe schedule probe.pattern '{"method": true}')")
# string.rep of empty strings returns at once instead of looping.
rep=$(probe schedule probe.c_loops '{"op": "rep"}')
last=$(probe schedule probe.noop '{"n": 1}')
start=$(date +%s.%N)
probe run --workers 1 --drain 2>>"$RUNTIME_LOG"
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
echo "${#ids[@]} runaway tasks with a 1s timeout stopped in ${elapsed}s on one worker"
for id in "${ids[@]}"; do
  assert_eq "failed|1|task timed out after 1s" \
    "$(sql "SELECT state, attempts, last_error FROM moontask.tasks WHERE id = $id")" "task $id"
done
assert_eq "completed" "$(sql "SELECT state FROM moontask.tasks WHERE id = $rep")" "string.rep of nothing"
assert_eq "completed" "$(sql "SELECT state FROM moontask.tasks WHERE id = $last")" "the task after them"
# Generous: each should end within its 1s plus a few milliseconds.
[ "$(echo "$elapsed < 60" | bc)" = 1 ] || fail "took ${elapsed}s"

# SIGTERM reaches the same places: a handler looping in an xpcall message
# handler is aborted once shutdown_grace (5s) is over, rolled back, and
# released with its attempt not counted.
probe_setup
stuck=$(probe schedule probe.stuck '{}')
mt_start --tasks tests/e2e/hardening run --workers 1
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'moontask worker 0' AND state = 'idle in transaction'" 20
start=$SECONDS
kill -TERM $MT_PID
wait $MT_PID || true
echo "stopped $((SECONDS - start))s after SIGTERM (shutdown_grace 5s)"
[ $((SECONDS - start)) -le 30 ] || fail "SIGTERM took $((SECONDS - start))s"
assert_eq "scheduled|0" "$(sql "SELECT state, attempts FROM moontask.tasks WHERE id = $stuck")" "the aborted task"
assert_eq 0 "$(sql "SELECT count(*) FROM probe_log")" "the aborted task's row"
