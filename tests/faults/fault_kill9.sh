# kill -9 of the runtime at 20 random moments of a run of row-inserting
# tasks: while it starts, claims, runs handlers, commits. Each time a new
# runtime takes over at once; the dead one's tasks come back when their
# lease lapses. In the end every task has completed, with its row written
# exactly once, by its last attempt, and the runtimes said what they
# rescued.
source "$(dirname "$0")/lib.sh"
faults_seed
kills=20
# Kill moments up to 1 s (2 s in the full run) after each start.
window=$(fast_or_full 1000 2000)
tasks=$(fast_or_full 1000 2000)
mtf migrate >/dev/null
reset_db
schedule_inserts "$tasks" 0.05
killed=""
for ((k = 1; k <= kills; k++)); do
  mt_start run --workers 4
  killed+=" $MT_PID"
  # Anywhere from its first instant on: startup, claims, handlers and
  # commits all get their share.
  ms=$(rand_between 0 "$window")
  sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
  kill -KILL "$MT_PID"
  wait "$MT_PID" 2>/dev/null || true
  echo "kill $k at ${ms} ms: $(sql "SELECT string_agg(state || ' ' || n, ', ' ORDER BY state)
                                     FROM (SELECT state, count(*) n FROM moontask.tasks GROUP BY state) s")"
done
left=$(count_where "state <> 'completed'")
[ "$left" -gt 0 ] || fail "the run ended before the last kill (raise the task count)"
[ "$(count_where "state = 'running' OR attempts > 1")" -gt 0 ] ||
  fail "no kill found a task claimed: the kills tested nothing"
mt_start run --workers 4
survivor=$MT_PID
assert_leases_returned "$killed" 30
assert_exactly_once "$tasks" 180
echo "$(count_where "attempts > 1") tasks ran more than one attempt; $left were left after the last kill"
cat "${E2E_LOGS[@]}" >"$E2E_TMP/all.log"
assert_logged "$E2E_TMP/all.log" "the rescue of the killed runtimes' tasks" "lease expired on [0-9]+ tasks?"
stop_runtime "$survivor"
