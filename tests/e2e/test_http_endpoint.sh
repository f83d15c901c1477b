# The operators' endpoint (config http = { listen = ... }) against a real
# runtime whose database sits behind a TCP proxy (tests/faults/tcp_proxy.py)
# that the test can switch off:
#   - /healthz answers; /readyz says ready, fails while the database is
#     unreachable and recovers with it, by itself;
#   - /metrics: the execution counters move by what ran (as the database
#     counts it), tasks by state match the table, workers are reported;
#   - retry and cancel need the admin token: 401 without it, and with it
#     the failed task is scheduled again (in the database);
#   - a request too large or malformed gets its 4xx, not a crash;
#   - the log: log_format = "json" gives one JSON object per line, a task
#     run names id, name, attempt, outcome and duration, and the password
#     of database_url never appears, not even in connection errors.
source "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"
mt migrate >/dev/null
reset_db

read -r sock db user < <(url_parts)
[ "$user" != "-" ] || user=$(sql "SELECT current_user")
[ "$db" != "-" ] || db=$(sql "SELECT current_database()")
if [ "$sock" = "-" ]; then # a server on TCP: the proxy relays to it
  sock=$(python3 -c 'import sys, urllib.parse; u = urllib.parse.urlsplit(sys.argv[1]); print("%s:%s" % (u.hostname or "127.0.0.1", u.port or 5432))' "$DATABASE_URL")
fi

control=$E2E_TMP/proxy.mode state=$E2E_TMP/proxy.state
echo forward >"$control"
db_port=$(free_port)
python3 tests/faults/tcp_proxy.py --listen "127.0.0.1:$db_port" --upstream "$sock" \
  --control "$control" --state "$state" >"$E2E_TMP/proxy.log" 2>&1 &
E2E_PIDS+=($!)
proxy_mode() {
  echo "$1" >"$control.tmp" && mv "$control.tmp" "$control"
  local deadline=$((SECONDS + 20))
  until [ "$(cat "$state" 2>/dev/null)" = "$1" ]; do
    [ $SECONDS -lt $deadline ] || fail "the proxy did not switch to $1"
    sleep 0.05
  done
}
proxy_mode forward

# The password is made up: the test server trusts local connections, so it
# is never checked, but a URL that carries one is what must not leak.
secret=Pw-$RANDOM-never-logged
web_port=$(free_port)
token=admin-token-$RANDOM-$RANDOM-0123456789
cat >"$E2E_TMP/config.lua" <<EOF
return {
  tasks_dir = "tests/e2e/tasks", schemas_dir = "tests/e2e/schemas",
  workers = 2, poll_interval = 0.2, lease_timeout = 3, shutdown_grace = 5,
  log_format = "json",
  http = { listen = "127.0.0.1:$web_port", admin_token = "$token" },
}
EOF
DATABASE_URL="postgresql://$user:$secret@127.0.0.1:$db_port/$db" MT_CONFIG=$E2E_TMP/config.lua mt_start run
base=http://127.0.0.1:$web_port

# Whether a path answers with this status; the body is in $BODY.
get() { # path [curl options...]
  local path=$1
  shift
  BODY=$(curl -s -o - -w '\n%{http_code}' --max-time 10 "$@" "$base$path") || BODY=$'\n000'
  CODE=${BODY##*$'\n'}
  BODY=${BODY%$'\n'*}
  BODY=${BODY%$'\n'} # the text answers' own line end
}
wait_status() { # path code seconds
  local deadline=$((SECONDS + $3))
  get "$1"
  until [ "$CODE" = "$2" ]; do
    [ $SECONDS -lt $deadline ] || fail "$1 answered $CODE, not $2, for $3 s: $BODY"
    sleep 0.2
    get "$1"
  done
}

wait_status /healthz 200 10
assert_eq ok "$BODY" "/healthz"
wait_status /readyz 200 10
# Every task file the e2e runtimes load, however many tests add.
ntasks=$(find tests/e2e/tasks -name '*.lua' | wc -l)
assert_contains "$BODY" "$ntasks tasks loaded" "/readyz names the loaded tasks"

# A metric's value, 0 when the series is not there yet.
metric() { # series (name{labels}) exactly as printed
  get /metrics
  assert_eq 200 "$CODE" "/metrics status"
  awk -v s="$1" '$1 == s { v = $2 } END { print v + 0 }' <<<"$BODY"
}
before=$(metric 'moontask_executions_total{name="e2e.noop",outcome="completed"}')
for i in $(seq 30); do mt schedule e2e.noop '{}' >/dev/null; done
failed_id=$(mt schedule e2e.fail '{}')
wait_for "SELECT count(*) = 30 FROM moontask.tasks WHERE name = 'e2e.noop' AND state = 'completed'" 30
wait_for "SELECT state = 'failed' FROM moontask.tasks WHERE id = $failed_id" 30
after=$(metric 'moontask_executions_total{name="e2e.noop",outcome="completed"}')
assert_eq 30 "$((after - before))" "completed executions counted by /metrics"
# e2e.fail has max_attempts 3: two attempts retried, the third failed.
assert_eq 2 "$(metric 'moontask_executions_total{name="e2e.fail",outcome="retried"}')" "retried attempts"
assert_eq 1 "$(metric 'moontask_executions_total{name="e2e.fail",outcome="failed"}')" "failed attempts"
assert_eq "$(sql "SELECT count(*) FROM moontask.tasks WHERE name = 'e2e.noop' AND state = 'completed'")" \
  "$(metric 'moontask_tasks{name="e2e.noop",state="completed"}')" "moontask_tasks matches the table"
assert_eq 2 "$(metric moontask_workers)" "moontask_workers"
assert_eq 1 "$(metric moontask_database_up)" "moontask_database_up"
assert_eq 30 "$(metric 'moontask_handler_duration_seconds_count{name="e2e.noop"}')" "handler duration observations"

# Retry and cancel: the token or nothing.
get "/tasks/$failed_id/retry" -X POST
assert_eq 401 "$CODE" "retry without the token"
get "/tasks/$failed_id/retry" -X POST -H "Authorization: Bearer wrong-$token"
assert_eq 401 "$CODE" "retry with a wrong token"
assert_eq failed "$(sql "SELECT state FROM moontask.tasks WHERE id = $failed_id")" "the refused retry changed nothing"
get "/tasks/$failed_id/retry" -X POST -H "Authorization: Bearer $token"
assert_eq 303 "$CODE" "retry with the token"
wait_for "SELECT attempts >= 1 AND state IN ('scheduled', 'running', 'failed') FROM moontask.tasks WHERE id = $failed_id" 10
get "/tasks/999999999/cancel" -X POST -H "Authorization: Bearer $token"
assert_eq 404 "$CODE" "cancel of a task that does not exist"
get "/tasks/$failed_id/retry"
assert_eq 405 "$CODE" "GET of an action"

# Bad requests.
get "/$(head -c 5000 /dev/zero | tr '\0' a)"
assert_eq 414 "$CODE" "a URL over the limit"
get /login -X POST --data "token=$(head -c 6000 /dev/zero | tr '\0' a)"
assert_eq 413 "$CODE" "a body over the limit"
raw=$(python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
print(s.recv(100).split(b"\r\n")[0].decode())' "$web_port")
assert_eq "HTTP/1.1 400 Bad Request" "$raw" "a malformed request"

# The database goes away: ready no more, while the loop stays alive; back
# again without a restart.
proxy_mode refuse
wait_status /readyz 503 30
assert_contains "$BODY" "not ready: database" "/readyz says why"
get /healthz
assert_eq 200 "$CODE" "/healthz while the database is down"
assert_eq 0 "$(metric moontask_database_up)" "moontask_database_up while it is down"
get /
assert_eq 503 "$CODE" "the status page while the database is down"
proxy_mode forward
wait_status /readyz 200 30

# The log: JSON lines, a task run with its fields, no password anywhere.
python3 - "$MT_LOG" <<'EOF' || fail "the JSON log: see above"
import json, sys
runs = 0
for n, line in enumerate(open(sys.argv[1]), 1):
    try:
        e = json.loads(line)
    except ValueError as err:
        sys.exit("line %d is not JSON (%s): %r" % (n, err, line))
    for k in ("ts", "level", "msg"):
        if k not in e:
            sys.exit("line %d has no %s: %r" % (n, k, line))
    if e["msg"] == "task run":
        runs += 1
        missing = [k for k in ("id", "name", "attempt", "outcome", "duration_ms") if k not in e]
        if missing:
            sys.exit("a task run line lacks %s: %r" % (missing, line))
if runs < 33:
    sys.exit("%d task run lines, expected at least 33" % runs)
EOF
if grep -q -- "$secret" "$MT_LOG"; then
  fail "the database password appears in the log: $(grep -m1 -- "$secret" "$MT_LOG")"
fi
grep -q '"level":"warn"' "$MT_LOG" || fail "the lost database was not logged as a warning"
echo "ok: endpoint, readiness through an outage, counters, admin token, JSON log without the password"
