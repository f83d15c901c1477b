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
ids+=("$(probe schedule probe.close_loop '{}')")
ids+=("$(probe schedule probe.close_loop '{"tostring": true}')")
ids+=("$(probe schedule probe.pattern '{}')")
ids+=("$(probe schedule probe.pattern '{"method": true}')")
last=$(probe schedule probe.noop '{"n": 1}')
start=$(date +%s.%N)
probe run --workers 1 --drain 2>/dev/null
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
echo "${#ids[@]} runaway tasks with a 1s timeout stopped in ${elapsed}s on one worker"
for id in "${ids[@]}"; do
  assert_eq "failed|1|task timed out after 1s" \
    "$(sql "SELECT state, attempts, last_error FROM moontask.tasks WHERE id = $id")" "task $id"
done
assert_eq "completed" "$(sql "SELECT state FROM moontask.tasks WHERE id = $last")" "the task after them"
# Generous: each should end within its 1s plus a few milliseconds.
[ "$(echo "$elapsed < 60" | bc)" = 1 ] || fail "took ${elapsed}s"
