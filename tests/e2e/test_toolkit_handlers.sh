# The handlers' toolkit in a running runtime: a task that reads its API's
# address and secret with ctx.env (config env), signs its request with a
# module from the configured lib folder (config lib_dir, inside the tasks
# folder: never taken for a task), posts JSON with moontask.http and keeps
# the decoded answer; a task whose server runs past the task's deadline
# ends with "timed out" at the deadline, and its worker serves the next
# task; and no secret reaches a log or last_error, even from a failure.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 runs the fake API (testkit/moontask/fake_http.py)"
reset_db
sql "DROP TABLE IF EXISTS toolkit_results;
     CREATE TABLE toolkit_results (task_id bigint, result jsonb)" >/dev/null
on_exit 'sql "DROP TABLE IF EXISTS toolkit_results" >/dev/null'

SECRET=s3cr3t-e2e-7c4a8d09ca3762af
FAKES=()
# Starts a fake API under $E2E_TMP/$1, answering $2 (a JSON list of
# replies); sets FAKE_URL.
fake() {
  local dir=$E2E_TMP/$1 i
  mkdir -p "$dir"
  printf '%s' "$2" >"$dir/replies.json"
  python3 testkit/moontask/fake_http.py --dir "$dir" --owner $$ 2>"$dir/log" &
  FAKES+=("$!")
  on_exit "kill ${FAKES[-1]} 2>/dev/null"
  for i in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.05; done
  [ -s "$dir/port" ] || fail "the fake API in $dir did not start: $(cat "$dir/log")"
  FAKE_URL=http://127.0.0.1:$(cat "$dir/port")
}
fake api '[{"status": 201, "headers": {"Content-Type": "application/json"},
            "body": "{\"id\": 9007199254740993, \"items\": []}"}]'
API=$FAKE_URL
fake slow '[{"status": 200, "body": "late", "delay": 30}]'
SLOW=$FAKE_URL

T=$E2E_TMP/tasks
mkdir -p "$T/common" "$T/kit"
# A module of the lib folder: it returns no task, and would stop the load
# if the scanner took it for one.
cat >"$T/common/sign.lua" <<'EOF'
local crypto = moontask.crypto
return {
  signature = function(secret, body)
    return crypto.hex_encode(crypto.hmac_sha256(secret, body))
  end,
}
EOF
cat >"$T/kit/call.lua" <<'EOF'
local sign = require("lib.sign")
return {
  max_attempts = 1,
  handler = function(tx, payload, ctx)
    local body = moontask.json.encode({ task = ctx.id, note = payload.note })
    local res, err, code = moontask.http.post(ctx.env("TOOLKIT_URL") .. "/hooks?k=1", body, {
      headers = { ["Content-Type"] = "application/json",
                  ["X-Signature"] = sign.signature(ctx.env("TOOLKIT_SECRET"), body) },
      json = true,
    })
    assert(res, err)
    tx:exec("INSERT INTO toolkit_results VALUES ($1, $2)", ctx.id,
            { status = res.status, id = res.json.id, items = res.json.items,
              allowed_unset = ctx.env("TOOLKIT_UNSET") == nil,
              not_allowed = ctx.env("HOME") == nil })
  end,
}
EOF
cat >"$T/kit/slow.lua" <<'EOF'
return {
  max_attempts = 1,
  timeout = 1,
  handler = function(tx, payload, ctx)
    -- pcall cannot keep a task past its deadline.
    local ok, err = pcall(moontask.http.get, ctx.env("TOOLKIT_SLOW"))
    tx:exec("INSERT INTO toolkit_results VALUES ($1, '\"went on\"')", ctx.id)
  end,
}
EOF
cat >"$T/kit/leak.lua" <<'EOF'
return {
  max_attempts = 1,
  handler = function(tx, payload, ctx)
    local secret = ctx.env("TOOLKIT_SECRET")
    ctx.env(secret) -- a secret where a name belongs: warned about, not shown
    local res, err = moontask.http.get("http://127.0.0.1:1/x?token=" .. secret,
      { headers = { Authorization = "Bearer " .. secret } })
    error("the call failed: " .. err)
  end,
}
EOF
cat >"$E2E_TMP/config.lua" <<EOF
return {
  tasks_dir = "$T",
  lib_dir = "$T/common",
  schemas_dir = "tests/e2e/schemas",
  workers = 2,
  poll_interval = 0.2,
  task_timeout = 10,
  env = { "TOOLKIT_URL", "TOOLKIT_SECRET", "TOOLKIT_SLOW", "TOOLKIT_UNSET" },
}
EOF
run() {
  TOOLKIT_URL=$API TOOLKIT_SECRET=$SECRET TOOLKIT_SLOW=$SLOW/wait \
    "$MOONTASK_BIN" --config "$E2E_TMP/config.lua" --database-url "$DATABASE_URL" "$@"
}

"$MOONTASK_BIN" --config "$E2E_TMP/config.lua" check >/dev/null 2>&1 ||
  fail "moontask check: $("$MOONTASK_BIN" --config "$E2E_TMP/config.lua" check 2>&1)"
call=$(run schedule kit.call '{"note": "hello"}')
slow=$(run schedule kit.slow '{}')
next=$(run schedule kit.call '{"note": "after the slow one"}')
leak=$(run schedule kit.leak '{}')
start=$(date +%s.%N)
run run --drain --workers 1 2>>"$RUNTIME_LOG"
took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
echo "drain with the slow task took ${took}s"

assert_eq "completed|completed" \
  "$(sql "SELECT string_agg(state, '|' ORDER BY id) FROM moontask.tasks WHERE id IN ($call, $next)")" "the calls"
assert_eq '{"id": 9007199254740993, "items": [], "status": 201, "not_allowed": true, "allowed_unset": true}' \
  "$(sql "SELECT result FROM toolkit_results WHERE task_id = $call")" "the decoded answer"

# What the fake API received from the first task: the JSON body, signed
# with the secret. (Tasks due together may run in any order.)
sent=$(cat "$E2E_TMP/api/requests.jsonl")
python3 - "$sent" "$SECRET" "$call" <<'EOF' || fail "the requests the API received: $sent"
import hashlib, hmac, json, sys
secret, task = sys.argv[2].encode(), int(sys.argv[3])
sent = [json.loads(line) for line in sys.argv[1].splitlines()]
assert len(sent) == 2, sent
r = next(r for r in sent if json.loads(r["body"])["task"] == task)
assert r["method"] == "POST" and r["path"] == "/hooks?k=1", r
assert json.loads(r["body"]) == {"task": task, "note": "hello"}, r["body"]
want = hmac.new(secret, r["body"].encode(), hashlib.sha256).hexdigest()
assert r["headers"]["x-signature"] == want, (r["headers"], want)
EOF

# The slow server: the task ends at its 1 s deadline, not the server's 30 s.
assert_eq "failed" "$(sql "SELECT state FROM moontask.tasks WHERE id = $slow")" "the slow task"
assert_contains "$(sql "SELECT last_error FROM moontask.tasks WHERE id = $slow")" "timed out after 1s" "its error"
assert_eq 0 "$(sql "SELECT count(*) FROM toolkit_results WHERE task_id = $slow")" "it went no further"
ran=$(sql "SELECT extract(epoch FROM finished_at - started_at) FROM moontask.tasks WHERE id = $slow")
echo "the slow task ran for ${ran}s (timeout 1 s; the server answers after 30 s)"
awk -v t="$ran" 'BEGIN { exit !(t < 2.5) }' || fail "the slow task ran ${ran}s"
awk -v t="$took" 'BEGIN { exit !(t < 15) }' || fail "the drain took ${took}s"

# No secret anywhere: not in last_error, not in the runtime's log.
assert_eq "failed" "$(sql "SELECT state FROM moontask.tasks WHERE id = $leak")" "the leaking task"
err=$(sql "SELECT last_error FROM moontask.tasks WHERE id = $leak")
assert_contains "$err" "the call failed: GET http://127.0.0.1:1: " "its error"
[[ "$err$(cat "$RUNTIME_LOG")" != *"$SECRET"* ]] || fail "the secret was printed: $err"
assert_contains "$(cat "$RUNTIME_LOG")" "<the value of an allowed variable, withheld>" "the warning"
assert_contains "$(cat "$RUNTIME_LOG")" 'level=warn msg="ctx.env(\"HOME\") reads nil: it is not in config.lua'"'"'s env list"' "the warning for HOME"
