# `moontask try` and the runtime run a handler under one task-run policy
# (executor/attempt.h): the same timeout (the task's, else the configured
# task_timeout), the same payload validation and the same verdict and
# message. Each case runs both ways and compares what try reports with what
# the runtime recorded in last_error.
source "$(dirname "$0")/lib.sh"
reset_db
work=$E2E_TMP
mkdir -p "$work/tasks/policy"
cat >"$work/tasks/policy/spin.lua" <<'LUA'
-- No timeout of its own: the configured task_timeout applies.
return {
  max_attempts = 1,
  handler = function() while true do end end,
}
LUA
cat >"$work/tasks/policy/swallow.lua" <<'LUA'
-- Catches a SQL error and returns as if nothing happened.
return {
  max_attempts = 1,
  handler = function(tx) pcall(tx.exec, tx, "SELECT 1/0") end,
}
LUA
cat >"$work/tasks/policy/recover.lua" <<'LUA'
-- Catches a SQL error after a savepoint and rolls back to it: the
-- transaction is usable again, so the task completes.
return {
  max_attempts = 1,
  handler = function(tx)
    tx:exec("SAVEPOINT before")
    pcall(tx.exec, tx, "SELECT 1/0")
    tx:exec("ROLLBACK TO SAVEPOINT before")
  end,
}
LUA
cat >"$work/config.lua" <<LUA
return { tasks_dir = "$work/tasks", task_timeout = 1, poll_interval = 0.2 }
LUA
pmt() { "$MOONTASK_BIN" --config "$work/config.lua" --database-url "$DATABASE_URL" "$@"; }
try_error() {
  pmt try "$1" '{}' --json | lua5.4 -e '
    local s = io.read("a")
    print(((s:match([["error":"(.-)","snooze"]]) or "none"):gsub("\\n", "\n")))'
}

spin_try=$(try_error policy.spin)
assert_eq "task timed out after 1s" "$spin_try" "try on a task without a timeout of its own"
swallow_try=$(try_error policy.swallow)
assert_contains "$swallow_try" "the handler returned after a SQL error aborted its transaction" "try on a swallowed SQL error"
assert_contains "$swallow_try" "division by zero" "try names the SQL error"
recover_try=$(try_error policy.recover)
assert_eq "none" "$recover_try" "try on an error recovered with a savepoint"

spin=$(pmt schedule policy.spin '{}')
recover=$(pmt schedule policy.recover '{}')
swallow=$(pmt schedule policy.swallow '{}')
pmt run --drain 2>>"$RUNTIME_LOG"
assert_eq "failed|$spin_try" "$(sql "SELECT state, last_error FROM moontask.tasks WHERE id = $spin")" "the runtime's verdict on the spinning task"
assert_eq "failed|$swallow_try" "$(sql "SELECT state, last_error FROM moontask.tasks WHERE id = $swallow")" "the runtime's verdict on the swallowed error"
assert_eq "completed|" "$(sql "SELECT state, coalesce(last_error, '') FROM moontask.tasks WHERE id = $recover")" "the runtime's verdict on the recovered error"
