# PostgreSQL restarted mid-run, down for a few seconds each time (longer
# than the lease): by a fast shutdown (sessions terminated, transactions
# rolled back) and by an immediate one (a crash: no checkpoint, recovery
# from the WAL at the next start, discovery's asynchronous commits possibly
# lost). The runtime is never restarted: it reconnects by itself, and
# every task completes with its row written exactly once. The test runs
# its own server, to restart it.
source "$(dirname "$0")/lib.sh"
faults_seed
own_db
rounds=$(fast_or_full 2 4)
schedule_inserts 200 0.05
mt_start run --workers 4
pid=$MT_PID
for ((round = 1; round <= rounds; round++)); do
  before=$(count_where "state = 'completed'")
  wait_for "SELECT count(*) >= $before + 20 FROM moontask.tasks WHERE state = 'completed'" 60
  down=$(rand_between 3 5)
  # Tasks falling due while the server is down.
  schedule_inserts 100 0.05 "$down"
  sleep "0.$(rand_between 0 9)"
  if ((round % 2)); then mode=fast signal=INT; else mode=immediate signal=QUIT; fi
  own_db_stop "$signal"
  echo "restart $round: $mode shutdown, down for $down s"
  sleep "$down"
  own_db_start
done
tasks=$((200 + rounds * 100))
alive "$pid" || fail "the runtime exited while the server was down"
[ "$(count_where "state <> 'completed'")" -gt 0 ] || fail "the run ended before the last restart (raise the task count)"
assert_no_lapsed_lease "after the last restart" 30
assert_exactly_once "$tasks" 120
assert_logged "$MT_LOG" "the lost connection" \
  "terminating connection due to administrator command" "server closed the connection unexpectedly" \
  "cannot connect to the database"
stop_runtime "$pid"
