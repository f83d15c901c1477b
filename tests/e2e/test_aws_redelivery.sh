# The AWS backend when a runtime dies mid-task, against moto: the queue's
# visibility timeout is 4 s, so the message the dead runtime held comes
# back within seconds, and the task must run again once (and only once) its
# lease has lapsed. Asserted on PostgreSQL's and SQS's state:
#   1. lease 3 s: runtime A runs e2e.sleep (a row written, then 5 s of
#      pg_sleep in the same transaction) and is killed with SIGKILL inside
#      it; runtime B gets the message back and runs the task again: it ends
#      `completed` with attempts = 2 and exactly one committed row, n = 2
#      (the first attempt's row went with A's connection), B's attempt
#      began only after A's lease had lapsed, a duplicate of the message
#      sent while B runs the task runs nothing, and the queue, its
#      dead-letter queue and the outbox end empty;
#   2. lease 6 s, longer than the visibility timeout: the message comes back
#      while the dead runtime's lease is still live; the task is not run
#      until the lease has lapsed (no second attempt alongside the first),
#      then once, with the same outcome.
source "$(dirname "$0")/lib.sh"
source "$E2E_DIR/aws_lib.sh"

reset_db
mt migrate >/dev/null
aws_setup "rd$$" 4
aws_config "$E2E_TMP/config.lua" "$MOTO"

queue_state() { echo "$(queue_count visible)/$(queue_count not_visible)/$(queue_count delayed)"; }
dlq_state() { echo "$(queue_count visible "$DLQ_URL")/$(queue_count not_visible "$DLQ_URL")"; }
wait_until() { # command seconds what [a command that shows what is]
  local deadline=$((SECONDS + $2))
  until eval "$1"; do
    [ $SECONDS -lt $deadline ] || fail "timed out waiting for $3${4:+ (now: $(eval "$4"))}"
    sleep 0.2
  done
}
# Whether a task's handler is inside its pg_sleep, having written its row
# (its transaction holds the INSERT's lock on this test's e2e_rows), not
# committed (another connection cannot see the row).
sleeping() {
  sql "SELECT count(*) = 1 FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
        WHERE l.relation = 'e2e_rows'::regclass AND l.mode = 'RowExclusiveLock'
          AND a.state = 'active' AND a.query LIKE 'SELECT pg_sleep%'"
}
# Kills runtime $1 with SIGKILL inside task $2's handler, just after a
# heartbeat renewed its lease; sets A_OWNER, A_UNTIL (the lease the dead
# runtime left, as an epoch) and KILLED_AT (an epoch). The dead runtime's
# transaction never commits: its backend may sleep on, but it goes with
# its connection.
kill_mid_task() { # pid task-id
  local lease
  wait_for "SELECT state = 'running' AND attempts = 1 FROM moontask.tasks WHERE id = $2" 20
  wait_until '[ "$(sleeping)" = t ]' 10 "the handler's pg_sleep"
  lease=$(sql "SELECT locked_until FROM moontask.tasks WHERE id = $2")
  wait_for "SELECT locked_until <> '$lease' FROM moontask.tasks WHERE id = $2" 10
  kill -KILL "$1"
  wait "$1" 2>/dev/null || true
  KILLED_AT=$(sql "SELECT extract(epoch FROM now())")
  assert_eq 0 "$(sql "SELECT count(*) FROM e2e_rows WHERE task_id = $2")" "rows after the kill"
  assert_eq "running/1" "$(sql "SELECT state || '/' || attempts FROM moontask.tasks WHERE id = $2")" "the task after the kill"
  A_OWNER=$(sql "SELECT locked_by FROM moontask.tasks WHERE id = $2")
  A_UNTIL=$(sql "SELECT extract(epoch FROM locked_until) FROM moontask.tasks WHERE id = $2")
}
# The task ran once more, after the dead runtime's lease, and only once.
assert_ran_again_once() { # task-id
  wait_for "SELECT state = 'completed' FROM moontask.tasks WHERE id = $1" 40
  assert_eq 2 "$(sql "SELECT attempts FROM moontask.tasks WHERE id = $1")" "attempts"
  # The dead runtime's attempt ran a version nobody recorded.
  assert_eq "t" "$(sql "SELECT versions[1] IS NULL AND versions[2] ~ '^[0-9a-f]{16}\$' AND array_length(versions, 1) = 2 FROM moontask.tasks WHERE id = $1")" \
    "the versions recorded"
  assert_eq "2" "$(sql "SELECT string_agg(n::text, ',') FROM e2e_rows WHERE task_id = $1")" "the committed rows' n"
  assert_eq t "$(sql "SELECT started_at >= to_timestamp($A_UNTIL) FROM moontask.tasks WHERE id = $1")" \
    "the second attempt began after the dead runtime's lease ($A_OWNER, until $A_UNTIL)"
  assert_eq t "$(sql "SELECT locked_by IS DISTINCT FROM '$A_OWNER' FROM moontask.tasks WHERE id = $1")" \
    "the second attempt ran elsewhere than the dead runtime"
  wait_until '[ "$(queue_state)" = 0/0/0 ]' 20 "an empty queue (visible/not visible/delayed)" queue_state
  assert_eq 0/0 "$(dlq_state)" "the dead-letter queue (visible/not visible)"
  wait_for "SELECT count(*) = 0 FROM moontask.outbox" 20
}

# --- 1. killed mid-task; the message comes back; the task runs once more ---
MT_CONFIG=$E2E_TMP/config.lua mt_start run
A=$MT_PID
ID=$(sql "SELECT moontask.schedule('e2e.sleep', '{\"seconds\": 5}')")
kill_mid_task "$A" "$ID"
MT_CONFIG=$E2E_TMP/config.lua mt_start run
B=$MT_PID
# While B runs the second attempt, a duplicate of the message arrives: the
# task is busy under B's live lease, so it is hidden, not run alongside.
wait_for "SELECT state = 'running' AND attempts = 2 FROM moontask.tasks WHERE id = $ID" 30
ctl send "$STD_URL" "{\"task_id\":$ID}" >/dev/null
assert_ran_again_once "$ID"
kill -0 "$B" || fail "runtime B died"
kill -TERM "$B"
rc=0
wait "$B" || rc=$?
assert_eq 0 "$rc" "runtime B's exit status"

# --- 2. the message comes back while the dead runtime's lease is live ---
# A queue of its own: the long poll runtime B had out when it stopped may
# still take a message of the old queue at moto (as at SQS), which would
# then come back only after its visibility timeout.
aws_setup "rl$$" 4
aws_config "$E2E_TMP/config-long.lua.in" "$MOTO"
sed 's/lease_timeout = 3,/lease_timeout = 6,/' "$E2E_TMP/config-long.lua.in" >"$E2E_TMP/config-long.lua"
grep -q 'lease_timeout = 6,' "$E2E_TMP/config-long.lua" || fail "could not lengthen the lease"
MT_CONFIG=$E2E_TMP/config-long.lua mt_start run
C=$MT_PID
ID2=$(sql "SELECT moontask.schedule('e2e.sleep', '{\"seconds\": 4}')")
kill_mid_task "$C" "$ID2"
# The message is visible again at most 4 s (the visibility timeout, last
# extended by the heartbeat just before the kill) after the kill; the
# lease, renewed by the same heartbeat, runs 6 s: the message meets a live
# lease.
assert_eq t "$(sql "SELECT $A_UNTIL > $KILLED_AT + 4")" "a lease that outlives the message's visibility"
MT_CONFIG=$E2E_TMP/config-long.lua mt_start run
D=$MT_PID
# Past the message's return, before the lease lapses: nothing ran it.
sleep "$(sql "SELECT greatest(0, $KILLED_AT + 4.5 - extract(epoch FROM now()))")"
assert_eq t "$(sql "SELECT now() < to_timestamp($A_UNTIL)")" "the lease still live"
assert_eq "running/1/$A_OWNER" "$(sql "SELECT state || '/' || attempts || '/' || locked_by FROM moontask.tasks WHERE id = $ID2")" \
  "the task while the dead runtime's lease is live"
assert_ran_again_once "$ID2"
kill -0 "$D" || fail "runtime D died"
