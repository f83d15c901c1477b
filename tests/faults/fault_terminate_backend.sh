# The runtime's connections killed with pg_terminate_backend, again and
# again, at random moments of a run of row-inserting tasks: discovery's and
# every worker's, mid-claim, mid-handler and mid-commit. The runtime
# reconnects by itself (the same process throughout), and every task
# completes with its row written exactly once.
source "$(dirname "$0")/lib.sh"
faults_seed
rounds=$(fast_or_full 8 25)
tasks=$((rounds * 100))
mtf migrate >/dev/null
reset_db
schedule_inserts "$tasks" 0.05
mt_start run --workers 4
pid=$MT_PID
killed=0
for ((round = 1; round <= rounds; round++)); do
  # Discovery's heartbeat reconnects it within a second.
  wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'moontask discovery'" 30
  sleep "0.$(rand_between 1 9)$(rand_between 0 9)"
  n=$(sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE application_name LIKE 'moontask %'")
  killed=$((killed + n))
done
done_during=$(count_where "state = 'completed'")
echo "$rounds rounds, $killed sessions terminated; $done_during of $tasks tasks completed meanwhile"
[ "$done_during" -lt "$tasks" ] || fail "the run ended before the last round: nothing was cut off mid-run (raise the task count)"
alive "$pid" || fail "the runtime exited after its connections were killed"
assert_exactly_once "$tasks"
# Some attempts were cut off, or the test proved nothing.
[ "$(sql "SELECT sum(attempts) FROM moontask.tasks")" -gt "$tasks" ] ||
  fail "no attempt was cut off by the terminated sessions"
assert_logged "$MT_LOG" "the terminated sessions" \
  "terminating connection due to administrator command" "server closed the connection unexpectedly"
stop_runtime "$pid"
