# The AWS backend when AWS throttles it, against moto behind
# tests/aws/sigcheck_proxy.py --throttle, which answers the first N
# requests of each operation with AWS's throttling error (SQS: 400
# ThrottlingException; EventBridge Scheduler: 429) instead of forwarding
# them. aws.direct_within = 0, so that a task not due at once goes through
# an EventBridge schedule of its own. The budgets are chosen so that every
# kind of call meets throttling, whatever the AWS client's number of
# attempts per call (3 at the time of writing) between 3 and 5:
#   - 2 of every other operation (opening's GetQueueAttributes, the first
#     ReceiveMessage, the fired schedules' DeleteSchedule, ...): fewer
#     than the client's attempts, so the call gets through on a retry;
#   - SendMessage 200 and CreateSchedule 20 (10 per task): every task's
#     first two publishes at least fail all their attempts, so the relay
#     keeps the outbox rows and tries them again later, with its backoff;
#   - DeleteMessageBatch 8: the first batch (or two) fails all its
#     attempts, so its messages come back (4 s visibility timeout) to
#     finished tasks.
# Asserted on PostgreSQL's and AWS's state (boto3) and on the proxy's log:
#   - the outbox holds every task's row, attempts > 0 and a last_error of
#     throttling, while the relay waits to try again;
#   - every task runs exactly once (one row each, attempts = 1), the two
#     later ones through their fired schedules, which then go; the queue,
#     its dead-letter queue and the outbox end empty; the runtime exits
#     cleanly;
#   - the proxy throttled exactly the budgets above (each had to be used
#     up before any call of its operation could succeed, so the test
#     cannot pass without throttling), and every request was signed as
#     botocore signs.
source "$(dirname "$0")/lib.sh"
source "$E2E_DIR/aws_lib.sh"

reset_db
mt migrate >/dev/null
aws_setup "th$$" 4
start_proxy 0 --throttle 2 --throttle SendMessage=200 --throttle CreateSchedule=20 \
  --throttle DeleteMessageBatch=8
aws_config "$E2E_TMP/config.lua" "$PROXY_URL" "direct_within = 0"

queue_state() { echo "$(queue_count visible)/$(queue_count not_visible)/$(queue_count delayed)"; }
dlq_state() { echo "$(queue_count visible "$DLQ_URL")/$(queue_count not_visible "$DLQ_URL")"; }
schedules() { json_field "$(ctl list-schedules "$GROUP")" names; }
sorted_schedules() { python3 -c 'import ast, sys; print(sorted(ast.literal_eval(sys.argv[1])))' "$(schedules)"; }
wait_until() { # command seconds what [a command that shows what is]
  local deadline=$((SECONDS + $2))
  until eval "$1"; do
    [ $SECONDS -lt $deadline ] || fail "timed out waiting for $3${4:+ (now: $(eval "$4"))}"
    sleep 0.2
  done
}
# Throttled requests per operation in the proxy's log, as {op: n}.
throttled() {
  python3 - "$PROXY_LOG" <<'EOF'
import collections, json, sys
n = collections.Counter(c["op"] for c in map(json.loads, open(sys.argv[1])) if c.get("throttled"))
print(dict(sorted(n.items())))
EOF
}

# One transaction: the relay meets all 22 rows in one round.
LATER=$(sql "BEGIN;
  SELECT moontask.schedule('e2e.insert', json_build_object('n', i)::jsonb) FROM generate_series(1, 20) AS i;
  SELECT string_agg(moontask.schedule('e2e.insert', json_build_object('n', 100 + i)::jsonb,
                                      now() + interval '15 seconds')::text, ' ')
    FROM generate_series(1, 2) AS i;
  COMMIT" | tail -n 1)
[[ $LATER =~ ^[0-9]+\ [0-9]+$ ]] || fail "the later tasks' ids: '$LATER'"
MT_CONFIG=$E2E_TMP/config.lua mt_start run
RUNTIME=$MT_PID

# --- throttled publishes wait in the outbox ---
wait_for "SELECT count(*) = 22 AND bool_and(attempts > 0 AND last_error LIKE '%Rate exceeded%')
            FROM moontask.outbox" 20
assert_eq 0 "$(sql "SELECT count(*) FROM e2e_rows")" "rows before anything was published"

# --- then every task runs once ---
wait_for "SELECT count(*) = 20 FROM moontask.tasks WHERE state = 'completed'" 30
EXPECT=$(python3 -c 'import sys; print(sorted("mt-" + i for i in sys.argv[1:]))' $LATER)
wait_until '[ "$(sorted_schedules)" = "$EXPECT" ]' 20 "the later tasks' schedules $EXPECT" schedules
# at() has whole seconds, rounded up: the schedules are due a second later.
wait_for "SELECT bool_and(run_at + interval '1 second' <= now()) FROM moontask.tasks WHERE id IN (${LATER// /,})" 20
fire >"$E2E_TMP/fire.out"
for id in $LATER; do
  assert_contains "$(cat "$E2E_TMP/fire.out")" "schedule=$GROUP/mt-$id" "what fire.py sent"
done
wait_for "SELECT count(*) = 22 FROM moontask.tasks WHERE state = 'completed'" 20
assert_eq "22/22/22" "$(sql "SELECT count(*) || '/' || count(DISTINCT task_id) || '/' || count(DISTINCT n) FROM e2e_rows")" \
  "rows / tasks / payloads run"
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks WHERE attempts <> 1")" "tasks run more than once"
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks t WHERE NOT EXISTS (SELECT 1 FROM e2e_rows r WHERE r.task_id = t.id)")" \
  "tasks that ran nothing"
wait_until '[ "$(schedules)" = "[]" ]' 20 "the schedules' deletion" schedules
wait_for "SELECT count(*) = 0 FROM moontask.outbox" 20
wait_until '[ "$(queue_state)" = 0/0/0 ]' 20 "an empty queue (visible/not visible/delayed)" queue_state
assert_eq 0/0 "$(dlq_state)" "the dead-letter queue (visible/not visible)"
# Still nothing run twice, once every message is gone.
assert_eq 22 "$(sql "SELECT count(*) FROM e2e_rows")" "rows once the queue is empty"

kill -0 "$RUNTIME" || fail "the runtime died"
kill -TERM "$RUNTIME"
rc=0
wait "$RUNTIME" || rc=$?
assert_eq 0 "$rc" "the runtime's exit status"

# --- the proxy did throttle, as much as it was told to ---
# Visibility changes (a heartbeat's, for a message held) may or may not
# have come; every other operation used its budget up.
assert_eq "{'CreateSchedule': 20, 'DeleteMessageBatch': 8, 'DeleteSchedule': 2, 'GetQueueAttributes': 2, 'ReceiveMessage': 2, 'SendMessage': 200}" \
  "$(throttled | python3 -c 'import ast, sys; d = ast.literal_eval(sys.stdin.read()); d.pop("ChangeMessageVisibilityBatch", None); print(d)')" \
  "throttled requests per operation"
python3 - "$PROXY_LOG" <<'EOF' || fail "signatures: $(tail -n 3 "$PROXY_LOG")"
import json, sys
bad = [c for c in map(json.loads, open(sys.argv[1])) if not c["ok"]]
if bad:
    print("bad:", bad[:3])
    sys.exit(1)
EOF
