# Sourced after lib.sh by the tests of the AWS backend. It gives a test:
#   - a moto_server: the suite's ($MT_TEST_AWS_ENDPOINT, which scripts/test
#     starts) or, run alone, one of the test's own on 127.0.0.1, stopped by
#     its PID on exit; $MOTO is its URL and $MOTO_PORT its port;
#   - AWS credentials and a region for it, and nothing of this machine's
#     AWS set-up (no AWS_* variable but ours, no shared files, no instance
#     metadata);
#   - aws_setup PREFIX [VISIBILITY]: queues, a schedule group and a role of
#     the test's own (tests/aws/moto_ctl.py setup), as $STD_URL, $STD_ARN,
#     $DLQ_URL, $FIFO_URL, $GROUP and $ROLE_ARN;
#   - aws_config FILE ENDPOINT [LUA]: a config.lua for the aws backend
#     against ENDPOINT (moto, or a proxy in front of it), with LUA added to
#     the aws table;
#   - ctl ARGS: moto_ctl.py against moto itself; fire: tests/aws/fire.py,
#     which plays EventBridge Scheduler's part, for the test's group;
#   - start_proxy [PORT [ARGS...]]: tests/aws/sigcheck_proxy.py in front of
#     moto, on PORT (a free one when 0 or none), with ARGS added (--strict,
#     --throttle N, ...); its checks are appended to $PROXY_LOG. It sets
#     $PROXY_PID, $PROXY_PORT and $PROXY_URL. stop_proxy stops it by its
#     PID (the exit trap does too); started again on the same port, it
#     answers where it answered before, as an endpoint coming back would.
# Skips the test where moto_server or boto3 is missing.

command -v moto_server >/dev/null ||
  skip "moto_server is not installed (pip install 'moto[server]==5.2.1')"
python3 -c 'import boto3' 2>/dev/null ||
  skip "python3 has no boto3 (pip install 'moto[server]==5.2.1')"

for name in $(compgen -e AWS_); do unset "$name"; done
export AWS_SHARED_CREDENTIALS_FILE=$E2E_TMP/aws-credentials
export AWS_CONFIG_FILE=$E2E_TMP/aws-config
export AWS_EC2_METADATA_DISABLED=true
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=moontask-test AWS_SECRET_ACCESS_KEY=moontask-test

# A free port on 127.0.0.1, for moto or a proxy.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Whether something answers HTTP on the port.
http_answers() {
  local line
  line=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" &&
    printf 'GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
    read -r -t 5 line <&3 && echo "$line") 2>/dev/null) || return 1
  [[ $line == HTTP/1.?" "[0-9]* ]]
}

OWN_MOTO_PID=""
stop_own_moto() {
  [ -n "$OWN_MOTO_PID" ] || return 0
  kill -TERM "$OWN_MOTO_PID" 2>/dev/null
  wait "$OWN_MOTO_PID" 2>/dev/null
  OWN_MOTO_PID=""
}

if [ -n "${MT_TEST_AWS_ENDPOINT:-}" ]; then
  MOTO=$MT_TEST_AWS_ENDPOINT
else
  on_exit stop_own_moto
  port=$(free_port)
  moto_server -H 127.0.0.1 -p "$port" >"$E2E_TMP/moto.log" 2>&1 </dev/null &
  OWN_MOTO_PID=$!
  for _ in $(seq 300); do
    http_answers "$port" && break
    sleep 0.1
  done
  http_answers "$port" || fail "moto_server did not answer: $(tail -n 5 "$E2E_TMP/moto.log")"
  MOTO=http://127.0.0.1:$port
fi
MOTO_PORT=${MOTO##*:}

ctl() { python3 tests/aws/moto_ctl.py "$MOTO_PORT" "$@"; }
fire() { python3 tests/aws/fire.py --endpoint "$MOTO" --group "$GROUP" --state "$E2E_TMP/fired.json" "$@"; }
json_field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

aws_setup() {
  local setup
  setup=$(ctl setup "$1" "${2:-30}")
  STD_URL=$(json_field "$setup" std_url)
  STD_ARN=$(json_field "$setup" std_arn)
  DLQ_URL=$(json_field "$setup" dlq_url)
  FIFO_URL=$(json_field "$setup" fifo_url)
  GROUP=$(json_field "$setup" group)
  ROLE_ARN=$(json_field "$setup" role_arn)
}

aws_config() {
  local file=$1 endpoint=$2 extra=${3:-}
  # The queue URL moto answers with names moto's own host; through a proxy
  # the runtime must reach it at the proxy's.
  local queue=$endpoint${STD_URL#"$MOTO"}
  cat >"$file" <<EOF
return {
  backend = "aws",
  tasks_dir = "tests/e2e/tasks",
  schemas_dir = "tests/e2e/schemas",
  workers = 4,
  poll_interval = 0.2,
  lease_timeout = 3,
  task_timeout = 10,
  shutdown_grace = 5,
  aws = { region = "us-east-1", endpoint = "$endpoint", queue_url = "$queue",
          schedule_group = "$GROUP", role_arn = "$ROLE_ARN", $extra },
}
EOF
}

PROXY_PID=""
PROXY_LOG=$E2E_TMP/proxy.log
PROXY_STARTS=0
stop_proxy() {
  [ -n "$PROXY_PID" ] || return 0
  kill -TERM "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true
  PROXY_PID=""
}
on_exit stop_proxy

start_proxy() {
  local port=${1:-0} out
  shift || true
  [ -z "$PROXY_PID" ] || fail "start_proxy: the proxy (PID $PROXY_PID) is running already"
  PROXY_STARTS=$((PROXY_STARTS + 1))
  out=$E2E_TMP/proxy-$PROXY_STARTS.out
  python3 tests/aws/sigcheck_proxy.py --upstream "$MOTO" --log "$PROXY_LOG" \
    --port "$port" "$@" >"$out" 2>&1 </dev/null &
  PROXY_PID=$!
  for _ in $(seq 100); do
    grep -q '^PORT' "$out" && break
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '^PORT' "$out" || fail "the proxy did not start: $(cat "$out")"
  PROXY_PORT=$(sed -n 's/^PORT //p' "$out")
  PROXY_URL=http://127.0.0.1:$PROXY_PORT
}

# Queue counts as JSON fields: visible, not_visible, delayed.
queue_count() { json_field "$(ctl counts "${2:-$STD_URL}")" "$1"; }
