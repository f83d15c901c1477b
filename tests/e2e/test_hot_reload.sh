# Hot reload: a runtime picks up changed, new and removed task files
# without a restart, from a change on disk, SIGHUP or `moontask reload`.
# Asserted on the rows each version writes:
#   - a changed file runs its new version (the watcher, no signal);
#   - a broken version is refused: the running one keeps running, and the
#     refusal names file and line;
#   - a new file is runnable at once;
#   - a removed task's tasks stay scheduled, not failed, and run once its
#     file comes back;
#   - a file that loops while it loads is refused, and the runtime serves on;
#   - a task file's recurring schedules follow, a deleted file's included;
#   - SIGHUP and `moontask reload` reload by themselves (a change no
#     watcher sees: a symlinked file's target rewritten);
#   - every attempt records the version it ran (the one the reload logged),
#     whether it committed, ran no transaction or failed, and `moontask
#     show` names it;
#   - a pid file left by a runtime that died is never signalled: its pid
#     may be another process's by now.
source "$(dirname "$0")/lib.sh"

reset_db
dir=$E2E_TMP/tasks
mkdir -p "$dir/rl"
version() { # file n: a task that writes n
  cat >"$1" <<LUA
return {
  handler = function(tx, payload, ctx)
    tx:exec("INSERT INTO e2e_rows (task_id, n) VALUES (\$1, $2)", ctx.id)
  end,
}
LUA
}
version "$dir/rl/echo.lua" 1
cat >"$E2E_TMP/config.lua" <<EOF
return { tasks_dir = "$dir", schemas_dir = "$E2E_TMP/schemas", workers = 2,
         poll_interval = 0.2, lease_timeout = 3, task_timeout = 10,
         shutdown_grace = 5 }
EOF
cfg() { "$MOONTASK_BIN" --config "$E2E_TMP/config.lua" --database-url "$DATABASE_URL" "$@"; }
MT_CONFIG=$E2E_TMP/config.lua mt_start run
RUNTIME=$MT_PID

# n written by the task scheduled now, once it ran.
run_once() { # name -> n
  local id
  id=$(sql "SELECT moontask.schedule('$1', '{}')")
  wait_for "SELECT state = 'completed' FROM moontask.tasks WHERE id = $id" 10
  sql "SELECT n FROM e2e_rows WHERE task_id = $id"
}
assert_eq 1 "$(run_once rl.echo)" "the first version"

# A save is picked up by the watcher.
version "$dir/rl/echo.lua" 2
wait_logged "$MT_LOG" 'changed rl.echo' 10
assert_eq 2 "$(run_once rl.echo)" "the saved version"
# Each attempt recorded the version it ran: those the reload logged.
changed=$(grep -o 'changed rl.echo ([0-9a-f]*, was [0-9a-f]*)' "$MT_LOG")
v2=$(sed 's/.*(\([0-9a-f]*\), was.*/\1/' <<<"$changed")
v1=$(sed 's/.*was \([0-9a-f]*\))/\1/' <<<"$changed")
[ ${#v1} -eq 16 ] && [ ${#v2} -eq 16 ] && [ "$v1" != "$v2" ] || fail "versions in the log: '$changed'"
ran() { # n -> the versions recorded by the task that wrote n
  sql "SELECT array_to_string(t.versions, ',', 'NULL') FROM moontask.tasks t JOIN e2e_rows r ON r.task_id = t.id WHERE r.n = $1"
}
assert_eq "$v1" "$(ran 1)" "the version the first task ran"
assert_eq "$v2" "$(ran 2)" "the version the saved task ran"
v2_id=$(sql "SELECT task_id FROM e2e_rows WHERE n = 2")
assert_contains "$(cfg show "$v2_id")" "versions      $v2" "moontask show"

# A broken version is refused whole; the running one stays.
printf 'return {\n  handler = function(tx)\n    this is not lua\n  end,\n}\n' >"$dir/rl/echo.lua"
wait_logged "$MT_LOG" 'reload refused' 10
assert_contains "$(grep 'reload refused' "$MT_LOG")" "rl/echo.lua:3:" "the refusal names file and line"
assert_eq 2 "$(run_once rl.echo)" "the running version after a broken save"

# A new file is runnable without a restart.
version "$dir/rl/echo.lua" 3
version "$dir/rl/fresh.lua" 30
# Two more: one that runs no transaction (acknowledged by the next claim)
# and one that fails (recorded outside its transaction).
printf 'return { handler = function() end }\n' >"$dir/rl/quiet.lua"
printf 'return { max_attempts = 1, handler = function() error("boom") end }\n' >"$dir/rl/boom.lua"
for name in fresh quiet boom; do wait_logged "$MT_LOG" "added rl.$name " 10; done
assert_eq 30 "$(run_once rl.fresh)" "a new task"
assert_eq 3 "$(run_once rl.echo)" "the version saved with it"
for outcome in quiet:completed boom:failed; do
  name=${outcome%:*}
  v=$(grep -o "added rl.$name ([0-9a-f]*)" "$MT_LOG" | grep -o '[0-9a-f]\{16\}')
  id=$(sql "SELECT moontask.schedule('rl.$name', '{}')")
  wait_for "SELECT state IN ('completed', 'failed') FROM moontask.tasks WHERE id = $id" 10
  assert_eq "${outcome#*:}|$v" "$(sql "SELECT state || '|' || array_to_string(versions, ',', 'NULL') FROM moontask.tasks WHERE id = $id")" \
    "rl.$name's outcome and the version it ran"
done

# A removed task's tasks wait, scheduled, until it comes back.
rm "$dir/rl/fresh.lua"
wait_logged "$MT_LOG" 'removed rl.fresh' 10
ID=$(sql "SELECT moontask.schedule('rl.fresh', '{}')")
sleep 1.5
assert_eq "scheduled|0" "$(sql "SELECT state || '|' || attempts FROM moontask.tasks WHERE id = $ID")" "a removed task's task"
# Back (the watcher).
version "$dir/rl/fresh.lua" 31
wait_for "SELECT state = 'completed' FROM moontask.tasks WHERE id = $ID" 10
assert_eq 31 "$(sql "SELECT n FROM e2e_rows WHERE task_id = $ID")" "the removed task, back"

# A file that loops while it loads is refused (the load-time limit), and
# does not hang the runtime: the running version keeps serving.
printf 'while true do end\nreturn { handler = function() end }\n' >"$dir/rl/spin.lua"
wait_logged "$MT_LOG" 'reload refused.*spin.lua' 20
assert_eq 31 "$(run_once rl.fresh)" "the running version while a file loops"
rm "$dir/rl/spin.lua"

# A task file's recurring schedules follow the reload, a deleted file's
# included.
cat >"$dir/rl/tick.lua" <<'LUA'
return {
  schedule = { { cron = "0 9 * * *" } },
  handler = function(tx, payload, ctx) end,
}
LUA
wait_for "SELECT count(*) = 1 FROM moontask.schedules WHERE name = 'rl.tick:1'" 15
rm "$dir/rl/tick.lua"
wait_for "SELECT count(*) = 0 FROM moontask.schedules WHERE name = 'rl.tick:1'" 15

# SIGHUP and `moontask reload` reload by themselves: the task file is a
# symlink to a file outside the watched folders, so that rewriting its
# target is a change no watcher sees (shown: the old version still runs).
mkdir -p "$E2E_TMP/outside"
version "$E2E_TMP/outside/sig.lua" 40
ln -s "$E2E_TMP/outside/sig.lua" "$dir/rl/sig.lua"
wait_logged "$MT_LOG" 'added rl.sig ' 10
assert_eq 40 "$(run_once rl.sig)" "the linked task"
version "$E2E_TMP/outside/sig.lua" 41
sleep 0.5 # longer than the watcher's debounce
assert_eq 40 "$(run_once rl.sig)" "the linked task, its target rewritten unseen"
# Tasks scheduled one after another until one runs version n.
runs_soon() { # n name what
  local deadline=$((SECONDS + 10))
  until [ "$(run_once "$2")" = "$1" ]; do
    [ $SECONDS -lt $deadline ] || fail "$3 did not load version $1: $(tail -n 5 "$MT_LOG")"
  done
}
kill -HUP "$RUNTIME"
runs_soon 41 rl.sig "SIGHUP"
version "$E2E_TMP/outside/sig.lua" 42
cfg reload >"$E2E_TMP/reload.out"
assert_contains "$(cat "$E2E_TMP/reload.out")" "reload sent to runtime $RUNTIME" "moontask reload"
runs_soon 42 rl.sig "moontask reload"

# (The newest file by this pid: a runtime killed before may have left one
# of the same number under another configuration's folder.)
pid_file=$(ls -td "${XDG_RUNTIME_DIR:-/tmp}"/moontask-"$(id -u)"/*/"$RUNTIME" | head -n 1)
kill -TERM "$RUNTIME"
rc=0
wait "$RUNTIME" || rc=$?
assert_eq 0 "$rc" "the runtime's exit status"
# Its pid file went with it: nothing left to reload.
expect_exit 2 cfg reload
assert_contains "$ERR" "no running runtime found" "reload without a runtime"
# A runtime that died left its pid file, and the pid went to another
# process: `moontask reload` sees no live runtime behind it (nobody holds
# its lock), removes it, and signals nothing.
sleep 60 &
other=$!
on_exit "kill $other 2>/dev/null"
echo "$other" >"${pid_file%/*}/$other"
expect_exit 2 cfg reload
kill -0 "$other" || fail "moontask reload signalled a process that is no runtime"
[ ! -e "${pid_file%/*}/$other" ] || fail "the stale pid file is still there"
