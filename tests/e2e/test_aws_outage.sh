# The AWS backend while AWS is unreachable for a few seconds, against moto
# behind tests/aws/sigcheck_proxy.py, which the test stops and starts
# again on the same port. aws.direct_within = 0, so that a task not due at
# once goes through an EventBridge schedule of its own. Asserted on
# PostgreSQL's and AWS's state (boto3), not on log lines:
#   - with AWS away, tasks scheduled meanwhile (20 due now, 2 due in 30 s)
#     stay `scheduled` and unrun, and their rows stay in moontask.outbox,
#     tried again with a growing delay (attempts > 1, a last_error naming
#     the unreachable endpoint, not_before ahead); nothing reaches AWS;
#   - once AWS is back, every task due now runs exactly once, the two later
#     ones become their schedules "mt-<id>" and, fired when due, run
#     exactly once; the schedules go, and the outbox, the queue and its
#     dead-letter queue end empty; the runtime carries on and exits
#     cleanly.
# The outage is kept to ~5-10 s: the relay waits 2^attempts s between
# tries (up to 300 s), and the receiver 2, 4, 8, ... s (up to 32 s), so a
# longer one would mostly test patience. So the relay's tries come 0, 1,
# 3, 7 and 15 s into the outage, and the first after AWS is back may be
# the one at 15 s (it was, where each boto3 call below took 1.4 s). The
# later tasks must still be ahead of their time then, or the relay sends
# them straight to SQS instead of to their schedules: 30 s.
source "$(dirname "$0")/lib.sh"
source "$E2E_DIR/aws_lib.sh"

reset_db
mt migrate >/dev/null
# A 4 s visibility timeout: the long poll the runtime had out when the
# connection broke may still take a message at moto (as at SQS) once AWS
# is back, with no one to hand it to; it comes back after this timeout.
aws_setup "ou$$" 4
start_proxy
aws_config "$E2E_TMP/config.lua" "$PROXY_URL" "direct_within = 0"
MT_CONFIG=$E2E_TMP/config.lua mt_start run
RUNTIME=$MT_PID

# One call of moto_ctl, not three: the outage lasts as long as the checks.
queue_state() {
  python3 -c 'import json, sys; c = json.loads(sys.argv[1]); print("%s/%s/%s" % (c["visible"], c["not_visible"], c["delayed"]))' \
    "$(ctl counts "$STD_URL")"
}
dlq_state() { echo "$(queue_count visible "$DLQ_URL")/$(queue_count not_visible "$DLQ_URL")"; }
schedules() { json_field "$(ctl list-schedules "$GROUP")" names; }
wait_until() { # command seconds what [a command that shows what is]
  local deadline=$((SECONDS + $2))
  until eval "$1"; do
    [ $SECONDS -lt $deadline ] || fail "timed out waiting for $3${4:+ (now: $(eval "$4"))}"
    sleep 0.2
  done
}

# The runtime is up and long-polling the queue through the proxy.
wait_until 'grep -q "\"op\": \"ReceiveMessage\"" "$PROXY_LOG"' 20 "the runtime's first receive"

# --- AWS goes away ---
stop_proxy
sql "SELECT moontask.schedule('e2e.insert', json_build_object('n', i)::jsonb)
       FROM generate_series(1, 20) AS i" >/dev/null
LATER=$(sql "SELECT string_agg(moontask.schedule('e2e.insert', json_build_object('n', 100 + i)::jsonb,
                                                 now() + interval '30 seconds')::text, ' ')
               FROM generate_series(1, 2) AS i")
assert_eq 22 "$(sql "SELECT count(*) FROM moontask.tasks WHERE state = 'scheduled'")" "tasks scheduled"
# The relay tries, fails, and tries again later: every row twice at least.
wait_for "SELECT count(*) = 22 AND bool_and(attempts >= 2) FROM moontask.outbox" 20
assert_eq 22 "$(sql "SELECT count(*) FROM moontask.outbox o JOIN moontask.tasks t ON t.id = o.task_id
                      WHERE t.state = 'scheduled'")" "the outbox's rows, one per task"
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.outbox
                     WHERE last_error IS NULL OR strpos(last_error, '127.0.0.1:$PROXY_PORT') = 0")" \
  "outbox rows without an error naming the unreachable endpoint ($(sql "SELECT last_error FROM moontask.outbox LIMIT 1"))"
# Held back 1 s after the first failure, 2 s after the second, ...: after
# k tries, 2^k - 1 s at least since the row was written.
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.outbox
                     WHERE not_before < created_at + (power(2, attempts) - 1) * interval '1 second'")" \
  "outbox rows tried again sooner than the backoff allows"
assert_eq 22 "$(sql "SELECT count(*) FROM moontask.tasks WHERE state = 'scheduled' AND attempts = 0")" \
  "tasks still scheduled, never attempted"
assert_eq 0 "$(sql "SELECT count(*) FROM e2e_rows")" "rows written while AWS was away"
assert_eq 0/0/0 "$(queue_state)" "the queue while the runtime cannot reach it"
assert_eq "[]" "$(schedules)" "schedules while the runtime cannot reach them"

# --- AWS comes back, where it was ---
start_proxy "$PROXY_PORT"
wait_for "SELECT count(*) = 20 FROM moontask.tasks WHERE state = 'completed'" 30
sorted_schedules() { python3 -c 'import ast, sys; print(sorted(ast.literal_eval(sys.argv[1])))' "$(schedules)"; }
EXPECT=$(python3 -c 'import sys; print(sorted("mt-" + i for i in sys.argv[1:]))' $LATER)
wait_until '[ "$(sorted_schedules)" = "$EXPECT" ]' 20 "the later tasks' schedules $EXPECT" schedules
assert_eq 2 "$(sql "SELECT count(*) FROM moontask.tasks WHERE state = 'scheduled' AND id IN (${LATER// /,})")" \
  "the later tasks, not yet due"
# at() has whole seconds, rounded up: the schedules are due a second later.
wait_for "SELECT bool_and(run_at + interval '1 second' <= now()) FROM moontask.tasks WHERE id IN (${LATER// /,})" 40
fire >"$E2E_TMP/fire.out"
for id in $LATER; do
  assert_contains "$(cat "$E2E_TMP/fire.out")" "schedule=$GROUP/mt-$id" "what fire.py sent"
done
wait_for "SELECT count(*) = 22 FROM moontask.tasks WHERE state = 'completed'" 20

# --- every task once; nothing left behind ---
assert_eq "22/22/22" "$(sql "SELECT count(*) || '/' || count(DISTINCT task_id) || '/' || count(DISTINCT n) FROM e2e_rows")" \
  "rows / tasks / payloads run"
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks WHERE attempts <> 1")" "tasks run more than once"
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks t WHERE NOT EXISTS (SELECT 1 FROM e2e_rows r WHERE r.task_id = t.id)")" \
  "tasks that ran nothing"
wait_until '[ "$(schedules)" = "[]" ]' 20 "the schedules' deletion" schedules
wait_for "SELECT count(*) = 0 FROM moontask.outbox" 20
wait_until '[ "$(queue_state)" = 0/0/0 ]' 20 "an empty queue (visible/not visible/delayed)" queue_state
assert_eq 0/0 "$(dlq_state)" "the dead-letter queue (visible/not visible)"

kill -0 "$RUNTIME" || fail "the runtime died"
kill -TERM "$RUNTIME"
rc=0
wait "$RUNTIME" || rc=$?
assert_eq 0 "$rc" "the runtime's exit status"
