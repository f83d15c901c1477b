# The AWS backend end to end, against moto behind the proxy that checks
# every request's signature with botocore's signer
# (tests/aws/sigcheck_proxy.py), with tests/aws/fire.py playing
# EventBridge Scheduler. aws.direct_within = 0, so that every task not due
# at once goes through a schedule of its own. Asserted on PostgreSQL's and
# AWS's state (through boto3), not on log lines:
#   - a rolled-back moontask.schedule leaves no schedule and no message;
#   - a committed task due in a few seconds gets exactly one schedule,
#     "mt-<id>", at(...) with FlexibleTimeWindow OFF and
#     ActionAfterCompletion DELETE, targeting the queue with its id;
#   - fired, it runs once; then its schedule is gone and the queue empty;
#   - a duplicate of its message runs nothing; poison messages (not JSON,
#     an unknown task id, a fire time that is no time) are deleted and the
#     runtime carries on; a task no runtime here can run is published
#     again later rather than left to the dead-letter queue;
#   - a failing task's retries go back through the outbox until it fails
#     for good, and so does a snoozed task, its attempt not counted;
#     cancelling a task deletes its schedule;
#   - a recurring schedule becomes an EventBridge cron() schedule whose
#     fires become one task each, a fire delivered twice included; one with
#     a seconds field is refused with the reason (redefined so, one stops
#     firing), and removing one deletes its EventBridge schedule;
#   - a runtime of the postgres backend refuses to start beside it;
#   - every request the runtime made was signed as botocore signs.
source "$(dirname "$0")/lib.sh"
source "$E2E_DIR/aws_lib.sh"

reset_db
mt migrate >/dev/null
aws_setup "be$$"

PROXY_PORT=$(free_port)
python3 tests/aws/sigcheck_proxy.py --upstream "$MOTO" --log "$E2E_TMP/sig.log" \
  --port "$PROXY_PORT" >"$E2E_TMP/proxy.out" 2>&1 </dev/null &
PROXY_PID=$!
on_exit "kill $PROXY_PID 2>/dev/null; wait $PROXY_PID 2>/dev/null"
for _ in $(seq 100); do
  grep -q '^PORT' "$E2E_TMP/proxy.out" && break
  sleep 0.1
done
grep -q '^PORT' "$E2E_TMP/proxy.out" || fail "the proxy did not start: $(cat "$E2E_TMP/proxy.out")"

aws_config "$E2E_TMP/config.lua" "http://127.0.0.1:$PROXY_PORT" "direct_within = 0"
MT_CONFIG=$E2E_TMP/config.lua mt_start run
RUNTIME=$MT_PID

schedules() { json_field "$(ctl list-schedules "$GROUP")" names; }
queue_empty() {
  [ "$(queue_count visible)/$(queue_count not_visible)/$(queue_count delayed)" = 0/0/0 ]
}
wait_until() { # command seconds what
  local deadline=$((SECONDS + $2))
  until eval "$1"; do
    [ $SECONDS -lt $deadline ] || fail "timed out waiting for $3"
    sleep 0.2
  done
}

# --- a rolled-back caller leaves nothing; a committed one one schedule ---
sql "BEGIN;
     SELECT moontask.schedule('e2e.insert', '{\"n\": 1}', now() + interval '1 hour');
     SELECT moontask.schedule('e2e.insert', '{\"n\": 2}');
     ROLLBACK" >/dev/null
ID=$(sql "SELECT moontask.schedule('e2e.insert', '{\"n\": 3}', now() + interval '4 seconds')")
# The relay publishes in outbox order: once the committed task's schedule
# is there, the rolled-back ones would have been too.
wait_until '[ "$(schedules)" != "[]" ]' 20 "the task's schedule"
assert_eq "['mt-$ID']" "$(schedules)" "schedules after a rollback and a commit"
queue_empty || fail "the queue holds a message after the rollback"
wait_for "SELECT count(*) = 0 FROM moontask.outbox" 10
S=$(ctl get-schedule "$GROUP" "mt-$ID")
assert_eq "OFF" "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["FlexibleTimeWindow"]["Mode"])' "$S")" "FlexibleTimeWindow"
assert_eq "DELETE" "$(json_field "$S" ActionAfterCompletion)" "ActionAfterCompletion"
assert_contains "$(json_field "$S" ScheduleExpression)" "at(" "the schedule's expression"
assert_eq "$STD_ARN" "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["Target"]["Arn"])' "$S")" "the target"
assert_contains "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["Target"]["Input"])' "$S")" "\"task_id\":$ID" "the target's input"

# --- fired, it runs once; its schedule goes and the queue empties ---
# at() has whole seconds, rounded up: the schedule is due a second later.
wait_for "SELECT run_at + interval '1 second' < now() FROM moontask.tasks WHERE id = $ID" 10
fire >"$E2E_TMP/fire.out"
assert_contains "$(cat "$E2E_TMP/fire.out")" "schedule=$GROUP/mt-$ID" "what fire.py sent"
wait_for "SELECT state = 'completed' FROM moontask.tasks WHERE id = $ID" 20
assert_eq 1 "$(sql "SELECT count(*) FROM e2e_rows WHERE task_id = $ID")" "runs of the task"
wait_until queue_empty 20 "the message's deletion"
wait_until '[ "$(schedules)" = "[]" ]' 20 "the schedule's deletion"

# --- a duplicate message runs nothing ---
ctl send "$STD_URL" "{\"task_id\":$ID,\"via\":\"schedule\"}" >/dev/null
wait_until queue_empty 20 "the duplicate's deletion"
assert_eq 1 "$(sql "SELECT count(*) FROM e2e_rows WHERE task_id = $ID")" "runs after a duplicate"
assert_eq 1 "$(sql "SELECT attempts FROM moontask.tasks WHERE id = $ID")" "attempts after a duplicate"

# --- poison is deleted, and the runtime carries on ---
ctl send "$STD_URL" "this is not JSON" >/dev/null
ctl send "$STD_URL" '{"task_id": 987654321}' >/dev/null
ctl send "$STD_URL" '{"schedule": "no such schedule", "fire_at": "2026-01-01T00:00:00Z"}' >/dev/null
ctl send "$STD_URL" '{"schedule": "aws rec", "fire_at": "2026-13-01T00:00:00Z"}' >/dev/null
wait_until queue_empty 20 "the poison messages' deletion"
kill -0 "$RUNTIME" || fail "the runtime died of poison"
NOW_ID=$(sql "SELECT moontask.schedule('e2e.insert', '{\"n\": 4}')")
wait_for "SELECT state = 'completed' FROM moontask.tasks WHERE id = $NOW_ID" 20
assert_eq 1 "$(sql "SELECT count(*) FROM e2e_rows WHERE task_id = $NOW_ID")" "runs of a task due at once"

# A message for a task no runtime here can run is not hidden to come back
# (each receive counts towards the dead-letter queue): it goes, and the
# outbox publishes the task again a minute later, for a runtime that can.
ALIEN=$(sql "SELECT moontask.schedule('e2e.not_here', '{}')")
wait_for "SELECT count(*) = 1 FROM moontask.outbox WHERE task_id = $ALIEN AND not_before > now() + interval '30 seconds'" 20
wait_until queue_empty 20 "the foreign task's message's deletion"
assert_eq scheduled "$(sql "SELECT state FROM moontask.tasks WHERE id = $ALIEN")" "the foreign task's state"
sql "DELETE FROM moontask.tasks WHERE id = $ALIEN;
     DELETE FROM moontask.outbox WHERE task_id = $ALIEN AND not_before > now()" >/dev/null

# --- retries go back through the outbox; cancelling deletes a schedule ---
FAIL_ID=$(sql "SELECT moontask.schedule('e2e.fail', '{}')")
wait_for "SELECT state = 'failed' AND attempts = 3 FROM moontask.tasks WHERE id = $FAIL_ID" 30
assert_eq 0 "$(sql "SELECT count(*) FROM e2e_rows WHERE task_id = $FAIL_ID")" "rows of a failing task"
# Each attempt recorded its version: the committed one, the three failed.
assert_eq "1|3|1" "$(sql "SELECT (SELECT array_length(versions, 1) FROM moontask.tasks WHERE id = $ID),
    array_length(versions, 1), (SELECT count(DISTINCT v) FROM unnest(versions) v WHERE v ~ '^[0-9a-f]{16}\$')
  FROM moontask.tasks WHERE id = $FAIL_ID")" "versions of a committed and a failed task"
LATER=$(sql "SELECT moontask.schedule('e2e.insert', '{\"n\": 5}', now() + interval '1 hour')")
wait_until '[ "$(schedules)" = "['"'mt-$LATER'"']" ]' 20 "the later task's schedule"
assert_eq t "$(sql "SELECT moontask.cancel($LATER)")" "cancel"
wait_until '[ "$(schedules)" = "[]" ]' 20 "the cancelled task's schedule's deletion"
wait_until queue_empty 20 "the failing task's messages' deletion"

# --- a snooze goes back through the outbox, its attempt not counted ---
SN=$(sql "SELECT moontask.schedule('e2e.snooze', '{\"seconds\": 1}')")
wait_for "SELECT state = 'scheduled' AND attempts = 0 AND EXISTS (SELECT FROM e2e_rows WHERE task_id = $SN)
            FROM moontask.tasks WHERE id = $SN" 20
wait_until '[ "$(schedules)" = "['"'mt-$SN'"']" ]' 20 "the snoozed task's new schedule"
wait_for "SELECT run_at + interval '1 second' < now() FROM moontask.tasks WHERE id = $SN" 10
fire >/dev/null
wait_for "SELECT state = 'completed' AND attempts = 1 FROM moontask.tasks WHERE id = $SN" 20
assert_eq "1,101" "$(sql "SELECT string_agg(n::text, ',' ORDER BY n) FROM e2e_rows WHERE task_id = $SN")" \
  "rows of the snoozed task (attempt 1 both times)"
wait_until '[ "$(schedules)" = "[]" ]' 20 "the snoozed task's schedule's deletion"
wait_until queue_empty 20 "the snoozed task's messages' deletion"

# --- recurring schedules ---
sql "SELECT moontask.schedule_recurring('aws rec', 'e2e.insert', '{\"n\": 7}', '*/5 * * * *', 'Europe/Oslo')" >/dev/null
sql "SELECT moontask.schedule_recurring('aws-bad', 'e2e.insert', '{}', '*/30 * * * * *')" >/dev/null
wait_for "SELECT count(*) = 0 FROM moontask.outbox" 20
REC=$(schedules)
assert_contains "$REC" "mth-aws_rec-" "the recurring schedule's name (a blank is not allowed)"
[[ $REC != *aws-bad* ]] || fail "a schedule EventBridge cannot express was published: $REC"
assert_contains "$(sql "SELECT error FROM moontask.schedules WHERE name = 'aws-bad'")" "seconds" "the refused schedule's error"
REC_NAME=$(python3 -c 'import ast,sys; print([n for n in ast.literal_eval(sys.argv[1]) if n.startswith("mth-aws_rec-")][0])' "$REC")
S=$(ctl get-schedule "$GROUP" "$REC_NAME")
assert_eq "cron(*/5 * * * ? *)" "$(json_field "$S" ScheduleExpression)" "the recurring expression"
assert_eq "Europe/Oslo" "$(json_field "$S" ScheduleExpressionTimezone)" "the recurring time zone"
assert_contains "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["Target"]["Input"])' "$S")" "<aws.scheduler.scheduled-time>" "the recurring input"
# The first five-minute mark after the schedule was made (fire.py fires
# what fell due between its CreationDate and --now): from the clock of
# the moment, a schedule made just before a mark would fire twice.
AT=$(python3 -c 'import datetime as d, json, sys
t = d.datetime.fromisoformat(json.loads(sys.argv[1])["CreationDate"]).astimezone(d.timezone.utc)
t = t.replace(second=0, microsecond=0) + d.timedelta(minutes=5 - t.minute % 5)
print(t.strftime("%Y-%m-%dT%H:%M:%SZ"))' "$S")
fire --now "$AT" >"$E2E_TMP/fire-rec.out"
assert_contains "$(cat "$E2E_TMP/fire-rec.out")" "scheduled_time=$AT" "the recurring fire"
wait_for "SELECT count(*) = 1 FROM moontask.tasks WHERE schedule_name = 'aws rec' AND state = 'completed'" 20
assert_eq "$AT" "$(sql "SELECT to_char(fire_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM moontask.tasks WHERE schedule_name = 'aws rec'")" "the fire's time"
assert_eq "$AT" "$(sql "SELECT to_char(last_fire_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM moontask.schedules WHERE name = 'aws rec'")" "the schedule's last fire"
# No runtime computes next fires here (EventBridge fires): the list does.
LIST=$("$MOONTASK_BIN" --config "$E2E_TMP/config.lua" --database-url "$DATABASE_URL" recurring list --json)
python3 - "$LIST" <<'EOF' || fail "recurring list: $LIST"
import json, sys
s = {x["name"]: x for x in json.loads(sys.argv[1])}
assert s["aws rec"]["next_fire_at"] and s["aws rec"]["last_fire_at"], s["aws rec"]
assert s["aws-bad"]["next_fire_at"] is None and "seconds" in s["aws-bad"]["error"], s["aws-bad"]
EOF
ctl send "$STD_URL" "{\"schedule\":\"aws rec\",\"fire_at\":\"$AT\"}" >/dev/null
wait_until queue_empty 20 "the repeated fire's deletion"
assert_eq 1 "$(sql "SELECT count(*) FROM moontask.tasks WHERE schedule_name = 'aws rec'")" "tasks of a fire delivered twice"
assert_eq 1 "$(sql "SELECT count(*) FROM e2e_rows WHERE n = 7")" "runs of a fire delivered twice"
sql "SELECT moontask.unschedule_recurring('aws rec')" >/dev/null
wait_until '[ "$(schedules)" = "[]" ]' 20 "the recurring schedule's deletion"

# Redefined to what EventBridge cannot express, a schedule stops firing
# there too, as a schedule with an error does on PostgreSQL.
sql "SELECT moontask.schedule_recurring('aws-later', 'e2e.insert', '{}', '0 9 * * *')" >/dev/null
wait_until '[ "$(schedules)" = "['"'mtr-aws-later'"']" ]' 20 "the schedule on EventBridge"
sql "SELECT moontask.schedule_recurring('aws-later', 'e2e.insert', '{}', '0 9 * * * *')" >/dev/null
wait_until '[ "$(schedules)" = "[]" ]' 20 "the refused redefinition's deletion"
assert_contains "$(sql "SELECT error FROM moontask.schedules WHERE name = 'aws-later'")" "seconds" "the redefinition's error"

# A runtime of the postgres backend would turn off the outbox this one
# publishes from: it refuses to start while this one runs.
expect_exit 2 mt run --drain
assert_contains "$ERR" "runtimes of the aws backend are running against this database" "a postgres runtime beside an aws one"

# --- shutdown, and every signature ---
kill -TERM "$RUNTIME"
rc=0
wait "$RUNTIME" || rc=$?
assert_eq 0 "$rc" "the runtime's exit status"
python3 - "$E2E_TMP/sig.log" <<'EOF' || fail "signatures: $(tail -n 3 "$E2E_TMP/sig.log")"
import collections, json, sys
ops = collections.Counter()
bad = []
for line in open(sys.argv[1]):
    check = json.loads(line)
    ops[check["op"]] += 1
    if not check["ok"]:
        bad.append(check)
print("signed requests:", dict(ops))
want = {"GetQueueAttributes", "ReceiveMessage", "DeleteMessageBatch",
        "SendMessage", "CreateSchedule", "DeleteSchedule"}
missing = want - set(ops)
if bad or missing:
    print("bad:", bad[:3], "missing:", missing)
    sys.exit(1)
EOF
