# `moontask check` verifies the aws table of config.lua against AWS itself:
# here a moto_server of the test's own (127.0.0.1, a free port, stopped by
# its PID on exit), with a queue, a FIFO queue and a schedule group made by
# boto3 (tests/aws/moto_ctl.py). A good table passes and names the
# credentials' source and the queue's ARN; a missing queue, a missing group,
# missing credentials, a missing role_arn and an endpoint that does not
# answer are each named, and make check exit non-zero after it has reported
# every problem. Without an aws table check says nothing about AWS.
# Skipped where moto_server or boto3 is missing.
source "$(dirname "$0")/lib.sh"

command -v moto_server >/dev/null ||
  skip "moto_server is not installed (pip install 'moto[server]==5.2.1')"
python3 -c 'import boto3' 2>/dev/null ||
  skip "python3 has no boto3 (pip install 'moto[server]==5.2.1')"

# Nothing of this machine's AWS set-up may reach the test: no AWS_*
# variable but ours, no shared files, no instance metadata.
for name in $(compgen -e AWS_); do unset "$name"; done
export AWS_SHARED_CREDENTIALS_FILE=$E2E_TMP/aws-credentials
export AWS_CONFIG_FILE=$E2E_TMP/aws-config
export AWS_EC2_METADATA_DISABLED=true
export AWS_REGION=eu-west-1
SECRET=e2e-secret-key-never-printed-0123456789
export AWS_ACCESS_KEY_ID=AKIDE2ECHECK AWS_SECRET_ACCESS_KEY=$SECRET

# moto answers HTTP once it has imported itself (a second or two).
moto_answers() {
  local line
  line=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" &&
    printf 'GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
    read -r -t 5 line <&3 && echo "$line") 2>/dev/null) || return 1
  [[ $line == HTTP/1.?" "[0-9]* ]]
}

# Whether moto is still running: our child, so once it exits it lingers
# as a zombie (which kill -0 would still find) until the wait.
MOTO_PID=""
moto_alive() {
  local stat
  stat=$(ps -o stat= -p "$MOTO_PID" 2>/dev/null) && [[ $stat != *Z* ]]
}

# Stops moto by its PID, from the exit trap.
stop_moto() {
  [ -n "$MOTO_PID" ] || return 0
  kill -TERM "$MOTO_PID" 2>/dev/null
  for _ in $(seq 50); do
    moto_alive || break
    sleep 0.1
  done
  kill -KILL "$MOTO_PID" 2>/dev/null
  wait "$MOTO_PID" 2>/dev/null
  MOTO_PID=""
}
on_exit stop_moto

# The port is free when we look; should something take it before moto
# binds it, moto exits and the next try picks another.
for try in 1 2 3; do
  PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  moto_server -H 127.0.0.1 -p "$PORT" >"$E2E_TMP/moto.log" 2>&1 </dev/null &
  MOTO_PID=$!
  for _ in $(seq 300); do
    moto_answers "$PORT" && break
    moto_alive || break
    sleep 0.1
  done
  moto_answers "$PORT" && break
  stop_moto
  [ "$try" -lt 3 ] || fail "moto_server did not answer: $(tail -n 5 "$E2E_TMP/moto.log")"
done
ENDPOINT=http://127.0.0.1:$PORT

# mt-std (visibility 30 s, redriven to mt-dlq), mt-group and a role, by
# boto3; and a FIFO queue whose visibility is shorter than task_timeout.
SETUP=$(python3 tests/aws/moto_ctl.py "$PORT" setup)
field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$SETUP" "$1"; }
STD_URL=$(field std_url)
STD_ARN=$(field std_arn)
DLQ_ARN=$(field dlq_arn)
ROLE_ARN=$(field role_arn)
SHORT_URL=$(python3 -c '
import sys, boto3
sqs = boto3.client("sqs", endpoint_url=sys.argv[1], region_name="eu-west-1")
print(sqs.create_queue(QueueName="mt-short.fifo",
      Attributes={"FifoQueue": "true", "VisibilityTimeout": "5"})["QueueUrl"])
' "$ENDPOINT")
ACCOUNT_URL=${STD_URL%/mt-std}

# No schemas folder: the task has no schema. (An empty one trips UBSan in
# mt_lua_tasks_check, qsort of a NULL array; reported, not this test's.)
mkdir -p "$E2E_TMP/tasks"
echo 'return { handler = function(tx, payload, ctx) end }' >"$E2E_TMP/tasks/hello.lua"

# config QUEUE_URL GROUP [ROLE_LINE] [ENDPOINT]: writes $E2E_TMP/config.lua
# with that aws table.
CONFIG=$E2E_TMP/config.lua
config() {
  local role=${3-"role_arn = \"$ROLE_ARN\","}
  cat >"$CONFIG" <<EOF
return {
  tasks_dir = "$E2E_TMP/tasks",
  schemas_dir = "$E2E_TMP/schemas",
  task_timeout = 10,
  aws = {
    region = "eu-west-1",
    queue_url = "$1",
    schedule_group = "$2",
    $role
    endpoint = "${4:-$ENDPOINT}",
  },
}
EOF
}

# Runs `moontask check` with $CONFIG: its stdout in $OUT, stderr in $ERR,
# exit code in $RC.
check() {
  RC=0
  "$MOONTASK_BIN" --config "$CONFIG" check >"$E2E_TMP/out" 2>"$E2E_TMP/err" || RC=$?
  OUT=$(cat "$E2E_TMP/out")
  ERR=$(cat "$E2E_TMP/err")
  ALL+="$OUT$ERR"
}
ALL=""

# 1. Everything is there: exit 0, each check named, nothing on stderr.
config "$STD_URL" mt-group
check
assert_eq 0 "$RC" "check of a good aws table (stderr: $ERR)"
assert_eq "" "$ERR" "stderr of a good check"
assert_contains "$OUT" "ok hello (" "the tasks are still checked"
assert_contains "$OUT" "ok aws region eu-west-1 (from aws.region)" "region"
assert_contains "$OUT" "ok aws credentials from environment" "credentials source"
assert_contains "$OUT" "ok aws endpoint $ENDPOINT" "endpoint"
assert_contains "$OUT" "ok aws queue $STD_URL ($STD_ARN, standard, visibility timeout 30 s for task_timeout 10 s, dead-letter queue $DLQ_ARN after 5 receives)" "queue"
assert_contains "$OUT" "ok aws schedule group mt-group (arn:aws:scheduler:eu-west-1:" "group"
assert_contains "$OUT" "ok aws role_arn $ROLE_ARN" "role"

# 2. A FIFO queue whose visibility timeout is shorter than task_timeout:
# a warning, not a problem; and no dead-letter queue.
config "$SHORT_URL" mt-group
check
assert_eq 0 "$RC" "check with a short visibility timeout (stderr: $ERR)"
assert_contains "$OUT" "ok aws queue $SHORT_URL (arn:aws:sqs:eu-west-1:123456789012:mt-short.fifo, FIFO, visibility timeout 5 s for task_timeout 10 s, no dead-letter queue)" "FIFO queue"
assert_contains "$ERR" "warning: aws queue $SHORT_URL: visibility timeout 5 s is shorter than task_timeout 10 s" "visibility warning"

# 3. A queue that does not exist.
config "$ACCOUNT_URL/mt-missing" mt-group
check
assert_eq 2 "$RC" "exit code for a missing queue (stderr: $ERR)"
assert_contains "$ERR" "$CONFIG: aws.queue_url: queue $ACCOUNT_URL/mt-missing does not exist (" "missing queue"
assert_contains "$ERR" "moontask: 1 problem" "problem count"
assert_contains "$OUT" "ok aws schedule group mt-group" "the group is still checked"

# 4. A schedule group that does not exist.
config "$STD_URL" mt-missing-group
check
assert_eq 2 "$RC" "exit code for a missing group (stderr: $ERR)"
assert_contains "$ERR" "$CONFIG: aws.schedule_group: schedule group \"mt-missing-group\" not found (ResourceNotFoundException)" "missing group"
assert_contains "$ERR" "moontask: 1 problem" "problem count"

# 5. Every problem is reported in one run: a task that does not load, a
# missing queue, a missing group, no role_arn.
echo 'return { handler = 42 }' >"$E2E_TMP/tasks/broken.lua"
config "$ACCOUNT_URL/mt-missing" mt-missing-group ""
check
rm "$E2E_TMP/tasks/broken.lua"
assert_eq 2 "$RC" "exit code for several problems (stderr: $ERR)"
assert_contains "$ERR" "broken.lua" "the broken task"
assert_contains "$ERR" "queue $ACCOUNT_URL/mt-missing does not exist" "missing queue among others"
assert_contains "$ERR" "schedule group \"mt-missing-group\" not found" "missing group among others"
assert_contains "$ERR" "$CONFIG: aws.role_arn is not set" "missing role_arn"
assert_contains "$ERR" "moontask: 4 problems" "problem count"

# 6. No credentials anywhere: named with every source looked at; the queue
# and the group cannot be asked about.
config "$STD_URL" mt-group
RC=0
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
  "$MOONTASK_BIN" --config "$CONFIG" check >"$E2E_TMP/out" 2>"$E2E_TMP/err" || RC=$?
ERR=$(cat "$E2E_TMP/err")
assert_eq 2 "$RC" "exit code without credentials (stderr: $ERR)"
assert_contains "$ERR" "aws credentials: no AWS credentials found: environment: AWS_ACCESS_KEY_ID is not set; shared files: no profile \"default\" in $AWS_SHARED_CREDENTIALS_FILE" "missing credentials"
assert_contains "$ERR" "EC2 instance metadata: disabled by AWS_EC2_METADATA_DISABLED" "every source is named"
assert_contains "$ERR" "queue and schedule group not checked without credentials" "what was not checked"
assert_contains "$ERR" "moontask: 1 problem" "problem count"

# 7. Credentials from a profile are named by profile and file.
printf '[default]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = %s\n' "$SECRET" >"$AWS_SHARED_CREDENTIALS_FILE"
RC=0
OUT=$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
  "$MOONTASK_BIN" --config "$CONFIG" check 2>&1) || RC=$?
ALL+=$OUT
assert_eq 0 "$RC" "check with a profile (output: $OUT)"
assert_contains "$OUT" "ok aws credentials from profile \"default\" in $AWS_SHARED_CREDENTIALS_FILE" "profile source"

# 8. An endpoint that does not answer: a runtime failure (exit 1), not a
# verdict on the queue.
config "$STD_URL" mt-group "role_arn = \"$ROLE_ARN\"," "http://127.0.0.1:1"
check
assert_eq 1 "$RC" "exit code when AWS does not answer (stderr: $ERR)"
assert_contains "$ERR" "aws.queue_url: cannot reach AWS to check queue $STD_URL" "unreachable queue"
assert_contains "$ERR" "aws.schedule_group: cannot reach AWS to check schedule group \"mt-group\"" "unreachable group"

# 9. With backend = "aws", a task file's schedule that EventBridge cannot
# express (a seconds field) is a problem of that file; the same file is
# fine on the postgres backend (case 1's configuration).
cat >"$E2E_TMP/tasks/tick.lua" <<'LUA'
return {
  schedule = { { cron = "*/2 * * * * *" }, { cron = "0 9 * * MON" } },
  handler = function(tx, payload, ctx) end,
}
LUA
config "$STD_URL" mt-group
check
assert_eq 0 "$RC" "a seconds schedule on the postgres backend (stderr: $ERR)"
sed -i 's/^return {$/return { backend = "aws",/' "$CONFIG"
check
rm "$E2E_TMP/tasks/tick.lua"
assert_eq 2 "$RC" "exit code for a schedule EventBridge cannot express (stderr: $ERR)"
assert_contains "$ERR" "$E2E_TMP/tasks/tick.lua: schedule 1: \"*/2 * * * * *\": EventBridge Scheduler fires at minute precision" "the refused schedule"
[[ $ERR != *"schedule 2"* ]] || fail "a schedule EventBridge can express was refused: $ERR"
assert_contains "$ERR" "moontask: 1 problem" "problem count"

# 10. Without an aws table, check is what it was.
cat >"$CONFIG" <<EOF
return { tasks_dir = "$E2E_TMP/tasks", schemas_dir = "$E2E_TMP/schemas" }
EOF
check
assert_eq 0 "$RC" "check without an aws table (stderr: $ERR)"
assert_eq "ok hello ($E2E_TMP/tasks/hello.lua)" "$OUT" "output without an aws table"
assert_eq "" "$ERR" "stderr without an aws table"

# The secret key never appears, whatever happened.
[[ $ALL != *"$SECRET"* ]] || fail "the secret access key was printed"
echo "ok: check names the credentials, queue and group, and each problem"
