# The status page at / in a real headless Chromium (tests/e2e/browser.py),
# against a real runtime:
#   - it shows counts by state and task, a failed task with its error and
#     traceback, a recurring schedule, and the task files with versions;
#   - a task's error is user input: markup in it shows as text, and makes
#     no element;
#   - read-only until the admin token is given: no buttons before, Retry
#     after signing in; clicking it runs the task again (in the database:
#     its attempts start over and it finishes anew);
#   - a screenshot of the page with the failed task and its error is saved
#     as build/status-page.png (next to the binary under test).
source "$(dirname "$0")/lib.sh"
command -v chromium >/dev/null || skip "chromium is not installed (Debian's chromium package)"
mt migrate >/dev/null
reset_db

# A task that fails with whatever text its payload gives, once.
mkdir -p "$E2E_TMP/tasks/page"
cat >"$E2E_TMP/tasks/page/boom.lua" <<'EOF'
return {
  max_attempts = 1,
  handler = function(tx, payload, ctx)
    error(payload.message)
  end,
}
EOF
cat >"$E2E_TMP/tasks/page/ok.lua" <<'EOF'
return { handler = function(tx, payload, ctx) end }
EOF
port=$(free_port)
token=page-token-$RANDOM-0123456789abcdef
cat >"$E2E_TMP/config.lua" <<EOF
return {
  tasks_dir = "$E2E_TMP/tasks", schemas_dir = "$E2E_TMP/schemas",
  workers = 2, poll_interval = 0.2, lease_timeout = 3, shutdown_grace = 5,
  http = { listen = "127.0.0.1:$port", admin_token = "$token" },
}
EOF
pg() { "$MOONTASK_BIN" --config "$E2E_TMP/config.lua" --database-url "$DATABASE_URL" "$@"; }
for i in 1 2 3; do pg schedule page.ok '{}' >/dev/null; done
id=$(pg schedule page.boom '{"message": "card declined <b class=injected>bold</b> & <script>document.title=1</script>"}')
pg recurring add nightly-report page.ok '{}' '0 3 * * *' --tz Europe/Paris >/dev/null
MT_CONFIG=$E2E_TMP/config.lua mt_start run
wait_for "SELECT state = 'failed' FROM moontask.tasks WHERE id = $id" 30
wait_for "SELECT count(*) = 3 FROM moontask.tasks WHERE name = 'page.ok' AND state = 'completed'" 30
first_finish=$(sql "SELECT finished_at FROM moontask.tasks WHERE id = $id")

shot=$(dirname "$MOONTASK_BIN")/status-page.png
rm -f "$shot"
cat >"$E2E_TMP/script.json" <<EOF
[
  {"open": "/"},
  {"text": ["Tasks by state", "page.boom", "page.ok", "Recent failures",
            "card declined <b class=injected>bold</b> & <script>",
            "stack traceback", "nightly-report", "0 3 * * *", "Europe/Paris",
            "Task files", "$E2E_TMP/tasks/page/boom.lua"]},
  {"count": [".injected", 0]},
  {"count": ["#failures script", 0]},
  {"count": ["#task-$id button", 0]},
  {"fill": ["input[name=token]", "$token"]},
  {"click": "form[action='/login'] button"},
  {"count": ["input[name=token]", 0]},
  {"count": ["#task-$id form[action='/tasks/$id/retry'] button", 1]},
  {"screenshot": "$shot"},
  {"click": "#task-$id form[action='/tasks/$id/retry'] button"},
  {"text": ["Tasks by state"]}
]
EOF
python3 tests/e2e/browser.py "http://127.0.0.1:$port" "$E2E_TMP/script.json" ||
  fail "the browser steps failed (see above)"

# The click ran the task again: a new finish, after a fresh first attempt.
wait_for "SELECT state = 'failed' AND finished_at > '$first_finish' FROM moontask.tasks WHERE id = $id" 30
[ -s "$shot" ] || fail "no screenshot at $shot"
python3 -c 'import sys; d = open(sys.argv[1], "rb").read(24); sys.exit(d[:8] != b"\x89PNG\r\n\x1a\n")' "$shot" ||
  fail "$shot is not a PNG"
echo "ok: the page shows what it should, escapes the error, retries with the token; screenshot in $shot"
