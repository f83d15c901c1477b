# Several runtimes at once on one queue of row-inserting tasks, and one of
# them killed with kill -9 at a random moment while it holds tasks (in its
# handlers and claimed ahead); the full run kills a second one later, with
# a new runtime joining in between. The survivors rescue the dead ones'
# tasks when their lease lapses and say so; every task completes with its
# row written exactly once.
source "$(dirname "$0")/lib.sh"
faults_seed
mtf migrate >/dev/null
reset_db
kills=$(fast_or_full 1 2)
tasks=$(fast_or_full 1200 2400)
schedule_inserts "$tasks" 0.05
pids=()
for i in 1 2 3; do
  mt_start run --workers 3
  pids+=("$MT_PID")
done
# The process id is part of the lease name (host:pid:random).
held_by() { count_where "state = 'running' AND locked_by LIKE '%:$1:%'"; }
killed=""
for ((k = 1; k <= kills; k++)); do
  victim_index=$(rand_between 0 $((${#pids[@]} - 1)))
  victim=${pids[victim_index]}
  ms=$(rand_between 500 2500)
  sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
  wait_for "SELECT count(*) > 0 FROM moontask.tasks WHERE state = 'running' AND locked_by LIKE '%:$victim:%'" 30
  killed+=" $victim"
  kill -KILL "$victim"
  wait "$victim" 2>/dev/null || true
  echo "kill $k: runtime $victim after ${ms} ms, holding $(held_by "$victim") tasks"
  unset "pids[victim_index]"
  pids=("${pids[@]}")
  if ((k < kills)); then
    mt_start run --workers 3
    pids+=("$MT_PID")
  fi
done
[ "$(count_where "state <> 'completed'")" -gt 0 ] || fail "the run ended before the last kill (raise the task count)"
assert_leases_returned "$killed" 30
assert_exactly_once "$tasks" 120
[ "$(count_where "attempts > 1")" -gt 0 ] || fail "no task ran a second attempt: the kill cut nothing off"
for pid in "${pids[@]}"; do
  alive "$pid" || fail "runtime $pid, which was not killed, exited"
done
cat "${E2E_LOGS[@]}" >"$E2E_TMP/all.log"
assert_logged "$E2E_TMP/all.log" "the rescue of the killed runtime's tasks" "lease expired on [0-9]+ tasks?"
for pid in "${pids[@]}"; do
  stop_runtime "$pid"
done
